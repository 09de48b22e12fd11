// Command ringwire-cometbft is stock CometBFT v0.40's `cometbft` command whose node runs on
// ringwire: the same commands (init, node, testnet, show-node-id, …), home directory,
// config.toml, node ID and RPC. Only `node` (alias `start`, `run`) differs: its node is
// stock's DefaultNewNode with the reactors moved onto a ringwire switch (package rwnode).
// The engine reads config/config.toml's [p2p] section and config/node_key.json from the home
// directory; the RINGWIRE_* environment variables below are the only ringwire settings:
//
//	RINGWIRE_SHARDS        engine threads (default 1)
//	RINGWIRE_NATIVE        "false": speak stock framing to every peer (default: native to peers that offer it)
//	RINGWIRE_COMPRESS      comma-separated channel IDs compressed towards native peers, e.g. "0x40,0x21"
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	cmd "github.com/cometbft/cometbft/cmd/cometbft/commands"
	"github.com/cometbft/cometbft/cmd/cometbft/commands/debug"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/cli"
	"github.com/cometbft/cometbft/libs/log"
	nm "github.com/cometbft/cometbft/node"

	"github.com/spf13/cobra"

	ringwire "github.com/ringwire/ringwire/bindings-go"
	"github.com/ringwire/ringwire/cometbft/rwnode"
)

// ringwireLibrary is a short hash of the ringwire library linked in, set by `make
// ringwire-cometbft` (-ldflags -X) so that a rebuilt library relinks the command; empty
// when built otherwise.
var ringwireLibrary string

func main() {
	settings, err := settingsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ringwire-cometbft:", err)
		os.Exit(2)
	}
	rootCmd := cmd.RootCmd
	rootCmd.Use = "ringwire-cometbft"
	rootCmd.Short = "CometBFT on ringwire"
	rootCmd.AddCommand(
		cmd.GenValidatorCmd,
		cmd.InitFilesCmd,
		cmd.LightCmd,
		cmd.ReplayCmd,
		cmd.ReplayConsoleCmd,
		cmd.ResetAllCmd,
		cmd.ResetPrivValidatorCmd,
		cmd.ResetStateCmd,
		cmd.ShowValidatorCmd,
		cmd.TestnetFilesCmd,
		cmd.ShowNodeIDCmd,
		cmd.ReIndexEventCmd,
		cmd.GenNodeKeyCmd,
		cmd.VersionCmd,
		cmd.RollbackStateCmd,
		cmd.CompactGoLevelDBCmd,
		cmd.InspectCmd,
		debug.DebugCmd,
		cli.NewCompletionCmd(rootCmd, true),
		libraryCmd,
	)

	// Stock's main uses nm.DefaultNewNode here; the same node, on ringwire.
	nodeFunc := func(config *cfg.Config, logger log.Logger) (*nm.Node, error) {
		return rwnode.NewNodeWith(config, logger, settings)
	}
	rootCmd.AddCommand(cmd.NewRunNodeCmd(nodeFunc))

	c := cli.PrepareBaseCmd(rootCmd, "CMT", os.ExpandEnv(filepath.Join("$HOME", cfg.DefaultCometDir)))
	if err := c.Execute(); err != nil {
		panic(err)
	}
}

// libraryCmd reports the ringwire library linked in: its build (optimised or debug), C ABI
// version and hash. `make ringwire-cometbft` runs it and refuses a debug library.
var libraryCmd = &cobra.Command{
	Use:   "ringwire-library",
	Short: "Show the ringwire library linked in (optimised or debug build, ABI version)",
	Args:  cobra.NoArgs,
	RunE: func(*cobra.Command, []string) error {
		build := "debug"
		if ringwire.LibraryOptimized() {
			build = "optimized"
		}
		hash := ringwireLibrary
		if hash == "" {
			hash = "unknown"
		}
		fmt.Printf("ringwire library: %s build, C ABI %d, library hash %s\n", build, ringwire.ABIVersion(), hash)
		return nil
	},
}

// settingsFromEnv reads the RINGWIRE_* variables.
func settingsFromEnv() (rwnode.Settings, error) {
	var s rwnode.Settings
	if v := os.Getenv("RINGWIRE_SHARDS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return s, fmt.Errorf("RINGWIRE_SHARDS=%q: %w", v, err)
		}
		s.Shards = uint32(n)
	}
	if v := os.Getenv("RINGWIRE_NATIVE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("RINGWIRE_NATIVE=%q: %w", v, err)
		}
		s.OfferNative = &b
	}
	if v := os.Getenv("RINGWIRE_COMPRESS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 0, 8)
			if err != nil {
				return s, fmt.Errorf("RINGWIRE_COMPRESS: %q: %w", f, err)
			}
			s.Compress = append(s.Compress, byte(n))
		}
	}
	return s, nil
}
