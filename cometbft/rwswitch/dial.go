package rwswitch

import (
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cometbft/cometbft/p2p"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// DialPeersAsync dials peers (id@host:port) in random order, each after a random wait of up
// to 3 s, skipping this node's own address and the peers the engine dials itself
// (Config.EnginePeers). Addresses whose host does not resolve are
// skipped; another bad address is returned and nothing is dialed (as stock).
func (sw *Switch) DialPeersAsync(peers []string) error {
	netAddrs, errs := p2p.NewNetAddressStrings(peers)
	for _, err := range errs {
		sw.Logger.Error("Error in peer's address", "err", err)
	}
	for _, err := range errs {
		if _, ok := err.(p2p.ErrNetAddressLookup); ok {
			continue
		}
		return err
	}
	for _, i := range rand.Perm(len(netAddrs)) {
		addr := netAddrs[i]
		if string(addr.ID) == sw.nodeID.String() {
			sw.Logger.Debug("Ignore attempt to connect to ourselves", "addr", addr)
			continue
		}
		if sw.engineDials(addr.ID) {
			sw.Logger.Debug("Leaving the dial to the engine (a persistent peer of its configuration)", "addr", addr)
			continue
		}
		go func() {
			sw.randomSleep(0)
			if !sw.IsRunning() {
				return
			}
			if err := sw.DialPeerWithAddress(addr); err != nil {
				var dialingOrExisting p2p.ErrCurrentlyDialingOrExistingAddress
				if errors.As(err, &dialingOrExisting) {
					sw.Logger.Debug("Error dialing peer", "err", err)
				} else {
					sw.Logger.Error("Error dialing peer", "err", err)
				}
			}
		}()
	}
	return nil
}

// DialPeerWithAddress dials addr and returns once the peer is added to the switch (or the
// dial failed). A peer already connected or being dialed is p2p.ErrCurrentlyDialingOrExistingAddress.
// A failed dial of a persistent peer starts the reconnect schedule (as stock).
func (sw *Switch) DialPeerWithAddress(addr *p2p.NetAddress) error {
	if sw.IsDialingOrExistingAddress(addr) {
		return p2p.ErrCurrentlyDialingOrExistingAddress{Addr: addr.String()}
	}
	if sw.node == nil || !sw.IsRunning() {
		return errors.New("ringwire switch is not running")
	}
	sw.dialing.Set(string(addr.ID), addr)
	defer sw.dialing.Delete(string(addr.ID))

	var want ringwire.NodeID
	if err := decodeID(addr.ID, &want); err != nil {
		return err
	}
	sw.Logger.Debug("Dialing peer", "address", addr)
	added := sw.awaitPeer(want)
	defer sw.forgetAwait(want, added)
	if _, err := sw.node.DialContext(sw.ctx, addr.DialString(), &want); err != nil {
		if sw.peers.Has(addr.ID) {
			// The engine connected it meanwhile (its own redial, or the peer dialed us).
			return p2p.ErrCurrentlyDialingOrExistingAddress{Addr: addr.String()}
		}
		if sw.IsPeerPersistent(addr) && !sw.engineDials(addr.ID) {
			go sw.reconnectToPeer(addr)
		}
		return err
	}
	// The engine has the peer up; the event loop adds it to the switch.
	if sw.peers.Has(addr.ID) {
		return nil
	}
	t := time.NewTimer(addWait)
	defer t.Stop()
	select {
	case err := <-added:
		return err
	case <-t.C:
		return errors.New("the dialed peer was not added to the switch in time")
	case <-sw.ctx.Done():
		return errors.New("ringwire switch stopped")
	}
}

// awaitPeer registers a wait for id's next up event to be handled: the channel receives nil
// once the peer is added, or why it was not.
func (sw *Switch) awaitPeer(id ringwire.NodeID) chan error {
	ch := make(chan error, 1)
	sw.mu.Lock()
	sw.awaiting[id] = append(sw.awaiting[id], ch)
	sw.mu.Unlock()
	return ch
}

// forgetAwait removes ch from id's waits.
func (sw *Switch) forgetAwait(id ringwire.NodeID, ch chan error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	ws := sw.awaiting[id]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(sw.awaiting, id)
	} else {
		sw.awaiting[id] = ws
	}
}

// settled tells the waits of id how its up event ended (nil: the peer was added).
func (sw *Switch) settled(id ringwire.NodeID, err error) {
	sw.mu.Lock()
	ws := sw.awaiting[id]
	delete(sw.awaiting, id)
	sw.mu.Unlock()
	for _, w := range ws {
		w <- err
	}
}

// IsDialingOrExistingAddress says whether addr's peer is being dialed or connected, or
// (without allow_duplicate_ip) whether a peer from its IP is (as stock).
func (sw *Switch) IsDialingOrExistingAddress(addr *p2p.NetAddress) bool {
	return sw.dialing.Has(string(addr.ID)) ||
		sw.peers.Has(addr.ID) ||
		(!sw.p2pCfg.AllowDuplicateIP && sw.peers.HasIP(addr.IP))
}

// reconnectToPeer is stock's: 20 tries 5 s apart (plus up to 3 s at random), then 10 with
// an exponential backoff, stopping once the peer is connected or being dialed.
func (sw *Switch) reconnectToPeer(addr *p2p.NetAddress) {
	if sw.reconnecting.Has(string(addr.ID)) {
		return
	}
	sw.reconnecting.Set(string(addr.ID), addr)
	defer sw.reconnecting.Delete(string(addr.ID))

	start := time.Now()
	sw.Logger.Info("Reconnecting to peer", "addr", addr)
	try := func() bool {
		err := sw.DialPeerWithAddress(addr)
		if err == nil {
			return true
		}
		var dialingOrExisting p2p.ErrCurrentlyDialingOrExistingAddress
		if errors.As(err, &dialingOrExisting) {
			return true
		}
		sw.Logger.Info("Error reconnecting to peer. Trying again", "err", err, "addr", addr)
		return false
	}
	for i := 0; i < reconnectAttempts; i++ {
		if !sw.IsRunning() {
			return
		}
		if try() {
			return
		}
		sw.randomSleep(reconnectInterval)
	}
	sw.Logger.Error("Failed to reconnect to peer. Beginning exponential backoff",
		"addr", addr, "elapsed", time.Since(start))
	for i := 1; i <= reconnectBackOffAttempts; i++ {
		if !sw.IsRunning() {
			return
		}
		sw.randomSleep(time.Duration(math.Pow(reconnectBackOffBaseSeconds, float64(i))) * time.Second)
		if try() {
			return
		}
	}
	sw.Logger.Error("Failed to reconnect to peer. Giving up", "addr", addr, "elapsed", time.Since(start))
}

// randomSleep sleeps interval plus a random part of dialRandomizerInterval, or less when
// the switch stops.
func (sw *Switch) randomSleep(interval time.Duration) {
	d := interval + time.Duration(rand.Int64N(int64(dialRandomizerInterval)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sw.ctx.Done():
	}
}

// decodeID parses a peer ID (40 hex characters) into out.
func decodeID(id p2p.ID, out *ringwire.NodeID) error {
	if err := validateID(id); err != nil {
		return err
	}
	_, err := hex.Decode(out[:], []byte(id))
	return err
}
