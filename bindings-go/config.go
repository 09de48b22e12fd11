package ringwire

/*
#include <stdlib.h>
#include "ringwire.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

// Driver picks the node's I/O driver.
type Driver uint32

// The I/O drivers.
const (
	// DriverAuto uses io_uring when the kernel allows it, epoll otherwise.
	DriverAuto Driver = C.RINGWIRE_DRIVER_AUTO
	// DriverIOUring uses io_uring only: the node does not start without it.
	DriverIOUring Driver = C.RINGWIRE_DRIVER_IO_URING
	// DriverEpoll uses epoll only.
	DriverEpoll Driver = C.RINGWIRE_DRIVER_EPOLL
)

// Config holds the settings of a node. It is turned into a ringwire_config (the C handle)
// inside NewNode, which frees that handle before it returns. The node is built by the library
// exactly as the `ringwire node` command builds it: the peer manager (40 inbound and 10
// outbound peers, one peer per IP address unless allow_duplicate_ip), admission limits, the
// simultaneous-dial tie-break and peer exchange on channel 0x00 all apply. A File or Home
// loads every section of a configuration; the other fields then adjust what was loaded.
type Config struct {
	// File is the path of ringwire's TOML configuration (see `ringwire config default`); its
	// node key file is loaded with it. Empty: the defaults, no node key.
	File string
	// Home is a CometBFT home directory (config/config.toml and config/node_key.json), used
	// when File is empty; the node keeps the node ID it has under CometBFT.
	Home string
	// Seed is a 32-byte ed25519 seed for the node key; set it, KeyFile, File or Home.
	Seed []byte
	// KeyFile is the path of a CometBFT node_key.json; used when Seed is empty.
	KeyFile string
	// Network is the network (chain ID); empty keeps the library's default.
	Network string
	// Listen is the listen address, such as "127.0.0.1:0"; empty: do not listen.
	Listen string
	// Shards is the number of shard threads (0 keeps the default: one, or a loaded file's).
	Shards uint32
	// Driver is the I/O driver.
	Driver Driver
	// OfferNative says whether to offer the native protocol to peers that advertise it;
	// nil keeps the library's default (offer it).
	OfferNative *bool
	// Capabilities are service capabilities announced to native peers.
	Capabilities []string
	// NodeInfo sets what the node announces about itself; nil keeps the defaults (or a
	// loaded file's moniker).
	NodeInfo *NodeInfoSettings
	// PersistentPeers ("ID@HOST:PORT") are dialled at start and redialled whenever their
	// connection ends; added to a loaded file's.
	PersistentPeers []string
	// UnconditionalPeerIDs are admitted even when the peer limits are reached.
	UnconditionalPeerIDs []NodeID
	// PrivatePeerIDs are never gossiped through peer exchange nor learned from hearsay.
	PrivatePeerIDs []NodeID
	// Channels are registered when the node starts, before it accepts or dials anyone, so the
	// NodeInfo of every connection lists them (a channel first opened after start is missing
	// from the connections made before). Open each with OpenChannel and the same ChannelDesc to
	// send and receive on it.
	Channels []ChannelDesc
}

// NodeInfoSettings is what a node announces about itself in NodeInfo, as a CometBFT node
// fills it. Empty strings and zero versions keep the defaults: moniker "ringwire" (or a
// loaded file's), the library's version, protocols p2p 8, block 11, app 0, tx_index "off",
// no RPC address.
type NodeInfoSettings struct {
	// Moniker is the human-readable node name (printable ASCII, at most 128 bytes).
	Moniker string
	// Version is the software version (CometBFT puts its own version here).
	Version string
	// P2PProtocol, BlockProtocol and AppProtocol are the protocol versions; a CometBFT node
	// takes the app version from its ABCI application.
	P2PProtocol, BlockProtocol, AppProtocol uint64
	// TxIndex is "on" or "off": whether the node indexes transactions.
	TxIndex string
	// RPCAddress is the node's RPC address, such as "tcp://0.0.0.0:26657".
	RPCAddress string
}

// apply sets s on cfg.
func (s *NodeInfoSettings) apply(cfg *C.ringwire_config) error {
	var cs C.ringwire_node_info_settings
	cs.size = C.size_t(unsafe.Sizeof(cs))
	cs.p2p_protocol = C.uint64_t(s.P2PProtocol)
	cs.block_protocol = C.uint64_t(s.BlockProtocol)
	cs.app_protocol = C.uint64_t(s.AppProtocol)
	var strs []*C.char
	text := func(v string) *C.char {
		if v == "" {
			return nil
		}
		countC(1)
		p := C.CString(v)
		strs = append(strs, p)
		return p
	}
	cs.moniker = text(s.Moniker)
	cs.version = text(s.Version)
	cs.tx_index = text(s.TxIndex)
	cs.rpc_address = text(s.RPCAddress)
	defer func() {
		for _, p := range strs {
			countC(1)
			C.free(unsafe.Pointer(p))
		}
	}()
	return call("config node info", func() C.ringwire_result { return C.ringwire_config_set_node_info(cfg, &cs) })
}

// errNoKey is returned when a Config names no node key.
var errNoKey = errors.New("ringwire: config has neither Seed nor KeyFile")

// build makes a C config from c. The caller frees it with C.ringwire_config_free.
func (c *Config) build() (*C.ringwire_config, error) {
	if len(c.Seed) == 0 && c.KeyFile == "" && c.File == "" && c.Home == "" {
		return nil, errNoKey
	}
	if len(c.Seed) != 0 && len(c.Seed) != 32 {
		return nil, &Error{Op: "config", Code: ErrInvalidArgument, Detail: "seed must be 32 bytes"}
	}
	var cfg *C.ringwire_config
	var err error
	switch {
	case c.File != "":
		err = withCString(c.File, func(s *C.char) error {
			return call("config file", func() C.ringwire_result { return C.ringwire_config_load_toml(s, &cfg) })
		})
	case c.Home != "":
		err = withCString(c.Home, func(s *C.char) error {
			return call("config home", func() C.ringwire_result { return C.ringwire_config_load_cometbft_home(s, &cfg) })
		})
	default:
		err = call("config new", func() C.ringwire_result { return C.ringwire_config_new(&cfg) })
	}
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			countC(1)
			C.ringwire_config_free(cfg)
		}
	}()
	if len(c.Seed) == 32 {
		seed := c.Seed
		err := call("config seed", func() C.ringwire_result {
			return C.ringwire_config_set_key_seed(cfg, (*C.uint8_t)(unsafe.Pointer(&seed[0])))
		})
		runtime.KeepAlive(seed)
		if err != nil {
			return nil, err
		}
	} else if c.KeyFile != "" {
		if err := withCString(c.KeyFile, func(s *C.char) error {
			return call("config key file", func() C.ringwire_result { return C.ringwire_config_set_key_file(cfg, s) })
		}); err != nil {
			return nil, err
		}
	}
	if c.Network != "" {
		if err := withCString(c.Network, func(s *C.char) error {
			return call("config network", func() C.ringwire_result { return C.ringwire_config_set_network(cfg, s) })
		}); err != nil {
			return nil, err
		}
	}
	if c.Listen != "" {
		if err := withCString(c.Listen, func(s *C.char) error {
			return call("config listen", func() C.ringwire_result { return C.ringwire_config_set_listen(cfg, s) })
		}); err != nil {
			return nil, err
		}
	}
	if c.Shards != 0 {
		if err := call("config shards", func() C.ringwire_result {
			return C.ringwire_config_set_shards(cfg, C.uint32_t(c.Shards))
		}); err != nil {
			return nil, err
		}
	}
	// A loaded file's driver stays unless one is asked for; DriverAuto is the zero value.
	if c.Driver != DriverAuto || (c.File == "" && c.Home == "") {
		if err := call("config driver", func() C.ringwire_result {
			return C.ringwire_config_set_driver(cfg, C.uint32_t(c.Driver))
		}); err != nil {
			return nil, err
		}
	}
	if c.OfferNative != nil {
		offer := C.bool(*c.OfferNative)
		if err := call("config native", func() C.ringwire_result { return C.ringwire_config_set_offer_native(cfg, offer) }); err != nil {
			return nil, err
		}
	}
	for _, capability := range c.Capabilities {
		if err := withCString(capability, func(s *C.char) error {
			return call("config capability", func() C.ringwire_result { return C.ringwire_config_add_capability(cfg, s) })
		}); err != nil {
			return nil, err
		}
	}
	if c.NodeInfo != nil {
		if err := c.NodeInfo.apply(cfg); err != nil {
			return nil, err
		}
	}
	for _, p := range c.PersistentPeers {
		if err := withCString(p, func(s *C.char) error {
			return call("config persistent peer", func() C.ringwire_result { return C.ringwire_config_add_persistent_peer(cfg, s) })
		}); err != nil {
			return nil, err
		}
	}
	for _, id := range c.UnconditionalPeerIDs {
		if err := call("config unconditional peer", func() C.ringwire_result {
			return C.ringwire_config_add_unconditional_peer_id(cfg, cID(&id))
		}); err != nil {
			return nil, err
		}
	}
	for _, id := range c.PrivatePeerIDs {
		if err := call("config private peer", func() C.ringwire_result {
			return C.ringwire_config_add_private_peer_id(cfg, cID(&id))
		}); err != nil {
			return nil, err
		}
	}
	for _, d := range c.Channels {
		opts := d.options()
		if err := call("config channel", func() C.ringwire_result {
			return C.ringwire_config_add_channel(cfg, C.uint8_t(d.ID), &opts)
		}); err != nil {
			return nil, err
		}
	}
	ok = true
	return cfg, nil
}

// withCString passes s to f as a NUL-terminated C string that lives for the call.
func withCString(s string, f func(*C.char) error) error {
	countC(2)
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return f(cs)
}
