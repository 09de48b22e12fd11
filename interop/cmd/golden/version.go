package main

import (
	"fmt"
	"runtime/debug"
)

const cometBFTModule = "github.com/cometbft/cometbft"

// checkStockVersion makes sure the binary was built against the CometBFT
// release named in the vectors.
func checkStockVersion() error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("no build info; cannot confirm %s version", cometBFTModule)
	}
	for _, dep := range info.Deps {
		if dep.Path == cometBFTModule {
			if dep.Replace != nil {
				return fmt.Errorf("%s is replaced by %s; vectors must come from the released module", cometBFTModule, dep.Replace.Path)
			}
			if dep.Version != cometBFTVersion {
				return fmt.Errorf("built against %s %s, vectors are labelled %s", cometBFTModule, dep.Version, cometBFTVersion)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not found in build info", cometBFTModule)
}
