package rwnode

// This file is the only place that reaches into node.Node's unexported fields. It is written
// for CometBFT v0.40.0 (the version go.mod requires); TestNodeLayout fails when the module's
// version or the fields' names or types differ.

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
)

// CometBFTVersion is the CometBFT module version whose node.Node layout this package knows.
const CometBFTVersion = "v0.40.0"

// The unexported fields of node.Node the swap writes, and their types. Node.OnStart listens
// only when transport holds a *p2p.MultiplexTransport, then starts sw; Node.OnStop stops sw
// and closes transport only when it is a *p2p.MultiplexTransport; the RPC environment reads
// sw (built in OnStart, after the options ran).
var swappedFields = []struct {
	name string
	typ  reflect.Type
}{
	{"sw", reflect.TypeFor[p2p.Switcher]()},
	{"transport", reflect.TypeFor[p2p.Transport]()},
}

// CheckLayout says whether node.Node has the fields the swap writes, with their types.
func CheckLayout() error {
	t := reflect.TypeFor[node.Node]()
	for _, f := range swappedFields {
		sf, ok := t.FieldByName(f.name)
		if !ok {
			return fmt.Errorf("rwnode: node.Node has no field %q (written for CometBFT %s)", f.name, CometBFTVersion)
		}
		if sf.Type != f.typ {
			return fmt.Errorf("rwnode: node.Node.%s is a %v, not a %v (written for CometBFT %s)", f.name, sf.Type, f.typ, CometBFTVersion)
		}
	}
	return nil
}

// swapNetwork makes n run on sw: n.sw = sw, n.transport = nil (so OnStart does not listen
// with stock's transport and OnStop does not close it).
func swapNetwork(n *node.Node, sw p2p.Switcher) error {
	if err := CheckLayout(); err != nil {
		return err
	}
	v := reflect.ValueOf(n).Elem()
	field := func(name string) reflect.Value {
		f := v.FieldByName(name)
		// The field is unexported: write it through its address.
		return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	}
	field("sw").Set(reflect.ValueOf(&sw).Elem())
	field("transport").Set(reflect.Zero(reflect.TypeFor[p2p.Transport]()))
	return nil
}
