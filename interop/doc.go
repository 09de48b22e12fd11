// Package interop holds checks in which stock CometBFT's own code judges the
// bytes ringwire produces. The golden vectors under testdata/ are generated
// by ./cmd/golden from the same stock release.
package interop
