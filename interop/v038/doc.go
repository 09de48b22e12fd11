// Package interop (v038) runs the process tests of ../ (the same files, linked) against the
// newest CometBFT v0.38 release instead of v0.40. The p2p protocol version is 8 in both, so
// this second run is a check of stock behaviour across releases, not of another protocol.
package interop
