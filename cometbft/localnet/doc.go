// Package localnet holds run.sh, the local validator network of `make localnet` (stock
// `cometbft` and `ringwire-cometbft` nodes with the kvstore application), and its bounded
// test.
package localnet
