# ringwire — build, test and benchmark entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
GO ?= go
# Fuzz targets need a nightly toolchain and cargo-fuzz; each runs this many seconds in `make test`.
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_TARGETS = $(shell ls fuzz/fuzz_targets 2>/dev/null | sed -n 's/\.rs$$//p')

.PHONY: all build run testnet tools test lint rust-test go-test fuzz-smoke fuzz-long bench-micro bench-smoke golden clean

all: build

build:
	$(CARGO) build --workspace --release

## run: the first thing to try. Builds what it needs (release), starts a local CometBFT validator
## network on loopback — 2 stock `cometbft` v0.40.0 and 2 `ringwire-cometbft` nodes with the
## kvstore app (RUN_MIX) — checks that they agree, offers RUN_RATE transactions per second of
## RUN_SIZE bytes for RUN_SECONDS with a live table (height, peers by protocol, tx/s, commit
## latency per node) and ends with a summary. Needs cargo, go, curl and jq.
RUN_MIX ?= stock stock ringwire ringwire
RUN_SECONDS ?= 30
RUN_RATE ?= 200
RUN_SIZE ?= 256
run: ringwire-cometbft cometbft-stock localnet-load
	@for t in curl jq; do command -v $$t >/dev/null || { echo "make run: needs $$t"; exit 1; }; done
	RINGWIRE_COMETBFT=$(COMETBFT_BIN)/ringwire-cometbft COMETBFT=$(COMETBFT_BIN)/cometbft \
	  LOADER=$(COMETBFT_BIN)/localnet-load MIX="$(RUN_MIX)" BLOCKS=5 LOAD_SECONDS=$(RUN_SECONDS) \
	  LOAD_RATE=$(RUN_RATE) LOAD_SIZE=$(RUN_SIZE) OUT=$(TARGET_DIR)/localnet cometbft/localnet/run.sh

## testnet: the engine-only demo: builds the `ringwire` command (release) and runs TESTNET_NODES
## nodes in one process on loopback for TESTNET_DURATION with consensus-like traffic, then a
## summary.
TESTNET_NODES ?= 4
TESTNET_DURATION ?= 10s
TESTNET_ARGS ?=
testnet:
	@command -v $(CARGO) >/dev/null || { echo "make testnet: needs cargo (https://rustup.rs)"; exit 1; }
	$(CARGO) build --release --locked -p ringwire-cli
	$(CARGO) run --release --locked -q -p ringwire-cli --bin ringwire -- testnet --nodes $(TESTNET_NODES) --duration $(TESTNET_DURATION) $(TESTNET_ARGS)

## tools: installs the pinned tools `make test` needs when they are missing (cbindgen).
tools:
	@$(CBINDGEN) --version 2>/dev/null | grep -qx "cbindgen $(CBINDGEN_VERSION)" || $(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked

## test: everything CI checks — formatting, lints, Rust tests, Go tests, fuzz and bench smoke runs.
test: tools lint rust-test go-test bench-smoke fuzz-smoke header-check c-example go-bindings cometbft-test
	@echo "make test: all checks passed"

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --locked
	cd fuzz && $(CARGO) fmt --check
	@test -z "$$(gofmt -l interop bindings-go examples/go)" || { echo "gofmt: these files need formatting:"; gofmt -l interop bindings-go examples/go; exit 1; }
	cd interop && $(GO) vet ./...
	cd interop/v038 && $(GO) vet ./...

## rust-test: every Rust test; then the engine's integration suite (node_*) once per driver.
rust-test:
	$(CARGO) test --workspace --locked
	for d in io_uring epoll; do \
	  echo "engine suite with RINGWIRE_DRIVER=$$d"; \
	  RINGWIRE_DRIVER=$$d $(CARGO) test --workspace --locked --test 'node_*' || exit 1; \
	done

## go-test: stock CometBFT code checks ringwire's bytes (e.g. that it accepts ringwire's NodeInfo)
## and runs against live ringwire nodes (interop/peer, built by the tests with cargo); see
## interop/README.md. -count=1: the Go test cache cannot see the Rust binary change.
## The process tests run twice: against CometBFT v0.40.0 (interop/) and v0.38.26 (interop/v038/,
## the same test files linked).
go-test:
	cd interop && $(GO) mod download && $(GO) test -count=1 ./...
	cd interop/v038 && $(GO) mod download && $(GO) test -count=1 ./...

## bench-smoke: every criterion micro-bench runs once and the end-to-end harness runs its
## seconds-long smoke (raw TCP and stock MConnection), so benches cannot rot.
bench-smoke:
	$(CARGO) bench -p ringwire-benches --locked -- --test
	$(CARGO) run --locked -p ringwire-benches --bin ringwire-bench -- --smoke

## fuzz-smoke: each cargo-fuzz target runs briefly (needs nightly + cargo-fuzz; .ci/run installs it).
fuzz-smoke:
	@if ! rustup run nightly rustc --version >/dev/null 2>&1 || ! command -v cargo-fuzz >/dev/null 2>&1; then \
	  echo "fuzz-smoke: SKIPPED — needs a nightly toolchain and cargo-fuzz (.ci/run installs cargo-fuzz)"; \
	else \
	  for t in $(FUZZ_TARGETS); do \
	    echo "fuzz-smoke: $$t"; \
	    (cd fuzz && $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SMOKE_SECONDS) -seed=1 2>&1 | grep -E '^(Done|==|INFO: -max_total_time)' || true); \
	    test -z "$$(ls fuzz/artifacts/$$t 2>/dev/null)" || { echo "fuzz-smoke: $$t found a crash"; exit 1; }; \
	  done; \
	fi

## fuzz-long: the long runs behind the counts in docs/FUZZING.md (RUNS iterations per target).
RUNS ?= 1000000
fuzz-long:
	for t in $(FUZZ_TARGETS); do \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$t --release -- -runs=$(RUNS) -seed=7 2>&1 | tail -n 3); \
	done

## bench-micro: criterion micro-benches with full measurement (numbers for the notes).
bench-micro:
	$(CARGO) bench -p ringwire-benches --locked

## bench: the end-to-end harness (benches/README.md): raw TCP, stock CometBFT MConnection and
## ringwire side by side; writes benches/results/latest.{json,md} and PNG charts.
## BENCH_MODE=--full for the longer runs behind committed numbers.
BENCH_MODE ?= --quick
.PHONY: bench
bench:
	$(CARGO) run --release --locked -p ringwire-benches --bin ringwire-bench -- $(BENCH_MODE)

## golden: regenerate testdata/ from stock CometBFT's own code (see interop/cmd/golden).
golden:
	cd interop && $(GO) run ./cmd/golden -out ../testdata

clean:
	$(CARGO) clean
	rm -rf fuzz/target

## ---- C ABI (ffi/, include/ringwire.h, examples/c/) -------------------------------------------
## cbindgen is pinned (.ci/run installs exactly this version); the header is committed.
CBINDGEN ?= cbindgen
CBINDGEN_VERSION = 0.29.4
CC ?= cc
C_EXAMPLE_CFLAGS ?= -std=c11 -g -Wall -Wextra -Werror
C_LIBS = -lpthread -ldl -lm
# Cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config).
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
C_EXAMPLE_OUT = $(TARGET_DIR)/c-example
PREFIX ?= /usr/local

.PHONY: header header-check ffi-lib c-example c-example-installed install go-bindings go-outside

## header: regenerate include/ringwire.h from ffi/src.
header:
	@$(CBINDGEN) --version | grep -qx "cbindgen $(CBINDGEN_VERSION)" || { echo "header: needs cbindgen $(CBINDGEN_VERSION) (cargo install cbindgen --version $(CBINDGEN_VERSION) --locked)"; exit 1; }
	cd ffi && $(CBINDGEN) --config cbindgen.toml --quiet --output ../include/ringwire.h

## header-check: fails when the committed header differs from what ffi/src generates.
header-check:
	@$(CBINDGEN) --version | grep -qx "cbindgen $(CBINDGEN_VERSION)" || { echo "header-check: needs cbindgen $(CBINDGEN_VERSION) (cargo install cbindgen --version $(CBINDGEN_VERSION) --locked)"; exit 1; }
	cd ffi && $(CBINDGEN) --config cbindgen.toml --quiet --verify --output ../include/ringwire.h || { echo "header-check: include/ringwire.h is stale; run 'make header' and commit it"; exit 1; }

ffi-lib:
	$(CARGO) build --locked -p ringwire-ffi

## c-example: builds examples/c/two_nodes.c against include/ringwire.h and the static library,
## runs it, then builds and runs it again under AddressSanitizer with leak detection, then once
## more against an installed copy (c-example-installed).
c-example: ffi-lib
	mkdir -p $(C_EXAMPLE_OUT)
	$(CC) $(C_EXAMPLE_CFLAGS) -Iinclude examples/c/two_nodes.c $(TARGET_DIR)/debug/libringwire_ffi.a $(C_LIBS) -o $(C_EXAMPLE_OUT)/two_nodes
	$(C_EXAMPLE_OUT)/two_nodes
	$(CC) $(C_EXAMPLE_CFLAGS) -fsanitize=address -fno-omit-frame-pointer -Iinclude examples/c/two_nodes.c $(TARGET_DIR)/debug/libringwire_ffi.a $(C_LIBS) -o $(C_EXAMPLE_OUT)/two_nodes_asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(C_EXAMPLE_OUT)/two_nodes_asan
	$(MAKE) --no-print-directory c-example-installed
	@echo "c-example: ok (plain, AddressSanitizer, and against the installed shared library)"

## install: the static and shared libraries (release build; FFI_PROFILE=debug for a quick
## one), the header and pkg-config files under PREFIX (default /usr/local), so that
## `cc app.c $$(pkg-config --cflags --libs --static ringwire)` builds C programs and Go programs
## using bindings-go find the library (`ringwire-static`) through PKG_CONFIG_PATH.
FFI_PROFILE ?= release
RINGWIRE_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
install:
	$(CARGO) build --locked -p ringwire-ffi $(if $(filter release,$(FFI_PROFILE)),--release,)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/ringwire.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(TARGET_DIR)/$(FFI_PROFILE)/libringwire_ffi.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(TARGET_DIR)/$(FFI_PROFILE)/libringwire_ffi.so $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(RINGWIRE_VERSION)|g' ffi/ringwire.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringwire.pc
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$${prefix}/lib|g' -e 's|@INCLUDEDIR@|$${prefix}/include|g' -e 's|@VERSION@|$(RINGWIRE_VERSION)|g' ffi/ringwire-static.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringwire-static.pc

## go-pc: a pkg-config file for Go builds inside this repository, pointing at the build tree
## (the FFI_PROFILE library of Cargo's target directory and include/): `make go-bindings` and
## `make go-bench` set PKG_CONFIG_PATH to its folder.
GO_PC_DIR = $(TARGET_DIR)/pkgconfig/$(FFI_PROFILE)
## cgo_env DIR: the environment of a Go build against the ringwire library that the
## pkg-config files in DIR name. Go's build cache keys a cgo package on its sources and the
## CGO_* variables, not on what pkg-config answers, so bindings-go built once against one
## library (the debug build, an installed prefix) would be reused, and that library linked,
## by a build pointing pkg-config elsewhere; CGO_LDFLAGS carries the answer into the key.
cgo_env = PKG_CONFIG_PATH="$(1)" CGO_LDFLAGS="$$(PKG_CONFIG_PATH=$(1) pkg-config --libs ringwire-static)"
.PHONY: go-pc
go-pc:
	$(CARGO) build --locked -p ringwire-ffi $(if $(filter release,$(FFI_PROFILE)),--release,)
	mkdir -p $(GO_PC_DIR)
	sed -e 's|@PREFIX@|$(CURDIR)|g' -e 's|@LIBDIR@|$(TARGET_DIR)/$(FFI_PROFILE)|g' -e 's|@INCLUDEDIR@|$(CURDIR)/include|g' -e 's|@VERSION@|$(RINGWIRE_VERSION)|g' ffi/ringwire-static.pc.in > $(GO_PC_DIR)/ringwire-static.pc

## c-example-installed: installs (debug profile) under a scratch PREFIX and builds the example
## with nothing but the installed header, shared library and pkg-config file.
c-example-installed:
	rm -rf $(TARGET_DIR)/c-install
	$(MAKE) --no-print-directory install FFI_PROFILE=debug PREFIX=$(TARGET_DIR)/c-install
	$(CC) $(C_EXAMPLE_CFLAGS) examples/c/two_nodes.c $$(PKG_CONFIG_PATH=$(TARGET_DIR)/c-install/lib/pkgconfig pkg-config --cflags --libs --static ringwire) -o $(TARGET_DIR)/c-install/two_nodes
	LD_LIBRARY_PATH=$(TARGET_DIR)/c-install/lib $(TARGET_DIR)/c-install/two_nodes

## go-bindings: the Go binding (bindings-go/) against the debug static library (go-pc):
## vet, tests under the race detector, and tests again with the `debug` tag (a collection around
## every library call) and GOGC=1, so a missing runtime.KeepAlive shows up as a failure; then
## go-outside.
go-bindings:
	$(MAKE) --no-print-directory go-pc FFI_PROFILE=debug
	cd bindings-go && export $(call cgo_env,$(TARGET_DIR)/pkgconfig/debug) && $(GO) vet ./... && $(GO) test -race -count=1 ./... && GOGC=1 $(GO) test -count=1 -tags debug ./... && $(GO) test -count=1 -run XXX -bench . -benchtime 1x ./...
	$(MAKE) --no-print-directory go-outside

## go-outside: a Go program in a scratch folder outside this repository (examples/go), built as
## a library user builds one: the library installed under a scratch PREFIX (debug profile, to
## keep `make test` short; `make install` installs the optimised one), bindings-go required as a
## module, PKG_CONFIG_PATH pointing at the installed pkg-config files. Then it runs.
go-outside:
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	  $(MAKE) --no-print-directory install FFI_PROFILE=debug PREFIX="$$scratch/prefix" && \
	  mkdir "$$scratch/app" && cp examples/go/main.go "$$scratch/app/" && cd "$$scratch/app" && \
	  printf 'module example.com/outside\n\ngo 1.24\n\nrequire github.com/ringwire/ringwire/bindings-go v0.0.0\n\nreplace github.com/ringwire/ringwire/bindings-go => %s/bindings-go\n' "$(CURDIR)" > go.mod && \
	  echo "go-outside: building $$scratch/app against $$scratch/prefix" && \
	  $(call cgo_env,$$scratch/prefix/lib/pkgconfig) $(GO) build -o outside . && ./outside

## go-bench: GO_BENCH_ROUNDS rounds of the Rust engine's measurement of bindings-go's
## benchmark workload (node_throughput's go_binding_workload), each followed at once by
## BenchmarkGoToGo against the release library; the Go rows report x-rust, the Go/Rust ratio of
## msgs/s against that round's Rust figure. GO_BENCH_COUNT messages per measurement (a million:
## shorter runs swing by ±15 % on a 2-vCPU machine).
GO_BENCH_COUNT ?= 1000000
GO_BENCH_ROUNDS ?= 3
.PHONY: go-bench
go-bench:
	$(MAKE) --no-print-directory go-pc FFI_PROFILE=release
	$(CARGO) test --release --locked -p ringwire --test node_throughput --no-run
	@for r in $$(seq $(GO_BENCH_ROUNDS)); do \
	  echo "go-bench: round $$r"; \
	  RINGWIRE_BENCH_COUNT=$(GO_BENCH_COUNT) $(CARGO) test --release --locked -p ringwire --test node_throughput -- --ignored --exact go_binding_workload --nocapture 2>&1 | grep 'msg/s' | tee $(TARGET_DIR)/go-bench-rust.txt; \
	  (cd bindings-go && RINGWIRE_RUST_FIGURES=$(TARGET_DIR)/go-bench-rust.txt $(call cgo_env,$(TARGET_DIR)/pkgconfig/release) $(GO) test -count=1 -run XXX -bench GoToGo -benchtime $(GO_BENCH_COUNT)x . | grep Benchmark) || exit 1; \
	done

## ---- CometBFT on ringwire (cometbft/, docs/COMETBFT.md) -----------------------------------
## ringwire-cometbft: stock CometBFT v0.40's `cometbft` command whose node runs on ringwire,
## linked with the release library: $(COMETBFT_BIN)/ringwire-cometbft. cometbft-stock: stock
## `cometbft` v0.40.0 from the same module graph: $(COMETBFT_BIN)/cometbft.
COMETBFT_BIN = $(TARGET_DIR)/cometbft-bin
.PHONY: ringwire-cometbft cometbft-stock localnet cometbft-test

ringwire-cometbft:
	$(MAKE) --no-print-directory go-pc FFI_PROFILE=release
	mkdir -p $(COMETBFT_BIN)
	# Go's build cache does not see the static library's contents: the library's hash in the
	# link flags makes a rebuilt library relink the command.
	cd cometbft && $(call cgo_env,$(TARGET_DIR)/pkgconfig/release) $(GO) build \
	  -ldflags "-X main.ringwireLibrary=$$(sha256sum $(TARGET_DIR)/release/libringwire_ffi.a | cut -c1-16)" \
	  -o $(COMETBFT_BIN)/ringwire-cometbft ./cmd/ringwire-cometbft
	@lib=$$($(COMETBFT_BIN)/ringwire-cometbft ringwire-library) && echo "$$lib" && \
	  case "$$lib" in *"optimized build"*) ;; *) echo "ringwire-cometbft: linked a debug ringwire library"; exit 1;; esac

cometbft-stock:
	mkdir -p $(COMETBFT_BIN)
	cd cometbft && $(GO) build -o $(COMETBFT_BIN)/cometbft github.com/cometbft/cometbft/cmd/cometbft

## localnet-load: the transaction load generator and watcher of `make run` and `make localnet-bench`.
localnet-load:
	mkdir -p $(COMETBFT_BIN)
	cd cometbft && $(GO) build -o $(COMETBFT_BIN)/localnet-load ./cmd/localnet-load

## localnet-bench: the 4-validator localnet under the same offered load, all-stock, mixed and
## all-ringwire (BENCH_TX_RATE tx/s of 256 B, then of 4 KiB, BENCH_TX_SECONDS each, BENCH_TX_REPS
## fresh networks each; BENCH_TX_SIZES, BENCH_TX_RESULTS; BENCH_TX_GOSSIP_SLEEP, every node's
## consensus peer_gossip_sleep_duration, default 100ms as in the homes): committed
## tx/s, commit latency p50/p99, block interval and CPU seconds per node; writes
## BENCH_TX_RESULTS/localnet.md and .json (cometbft/localnet/bench.sh).
BENCH_TX_RATE ?= 200
BENCH_TX_SECONDS ?= 60
BENCH_TX_REPS ?= 3
BENCH_TX_SIZES ?= 256 4096
BENCH_TX_RESULTS ?= benches/results
BENCH_TX_GOSSIP_SLEEP ?= 100ms
.PHONY: localnet-load localnet-bench
localnet-bench: ringwire-cometbft cometbft-stock localnet-load
	RINGWIRE_COMETBFT=$(COMETBFT_BIN)/ringwire-cometbft COMETBFT=$(COMETBFT_BIN)/cometbft \
	  LOADER=$(COMETBFT_BIN)/localnet-load RATE=$(BENCH_TX_RATE) SECONDS_EACH=$(BENCH_TX_SECONDS) REPS=$(BENCH_TX_REPS) \
	  SIZES="$(BENCH_TX_SIZES)" GOSSIP_SLEEP=$(BENCH_TX_GOSSIP_SLEEP) \
	  OUT=$(TARGET_DIR)/localnet-bench RESULTS=$(BENCH_TX_RESULTS) cometbft/localnet/bench.sh

## faultproxy: the TCP fault proxy of `make e2e` (delay, jitter, loss as RTO stalls, reordering
## across connections; cometbft/cmd/faultproxy, docs/E2E.md).
.PHONY: faultproxy e2e soak
faultproxy:
	mkdir -p $(COMETBFT_BIN)
	cd cometbft && $(GO) build -o $(COMETBFT_BIN)/faultproxy ./cmd/faultproxy

## e2e: the perturbation suite (cometbft/localnet/e2e.sh, docs/E2E.md; root): 4 validators
## (E2E_MIX) in network namespaces under load, then kill -9 and restart of a stock and a ringwire
## node, SIGSTOP/SIGCONT, one node's link down and up, a 2|2 split, a 50 Mbit/s htb cap with a
## saturating load, and latency/jitter/loss/reordering through faultproxy; after each the chain
## must resume within a bound with equal app hashes, and no node's RSS or fds may keep growing.
## Writes benches/results/e2e.md and .json (E2E_REPORT). About 10 minutes.
E2E_MIX ?= stock stock ringwire ringwire
E2E_PERTURBATIONS ?= kill-stock kill-ringwire pause link-down split bandwidth proxy
E2E_REPORT ?= benches/results/e2e
e2e: ringwire-cometbft cometbft-stock localnet-load faultproxy
	RINGWIRE_COMETBFT=$(COMETBFT_BIN)/ringwire-cometbft COMETBFT=$(COMETBFT_BIN)/cometbft \
	  LOADER=$(COMETBFT_BIN)/localnet-load PROXY=$(COMETBFT_BIN)/faultproxy MIX="$(E2E_MIX)" \
	  PERTURBATIONS="$(E2E_PERTURBATIONS)" REPORT=$(E2E_REPORT) OUT=$(TARGET_DIR)/e2e cometbft/localnet/e2e.sh

## soak: the same localnet under load for DURATION (e.g. 1h, 5m) with perturbations repeating
## (SOAK_PERTURBATIONS, SOAK_QUIET seconds apart); samples RSS, fds, height and the load's commit
## latency p99 every SOAK_EVERY seconds into SOAK_OUT.csv, draws SOAK_OUT.png (soak-chart, Rust
## + plotters) and fails when a node's RSS or fds trend upwards after the warm-up.
DURATION ?= 1h
SOAK_PERTURBATIONS ?= kill-ringwire pause link-down split proxy
SOAK_QUIET ?= 60
SOAK_EVERY ?= 10
SOAK_OUT ?= benches/results/soak
soak: ringwire-cometbft cometbft-stock localnet-load faultproxy
	$(CARGO) build --release --locked -p ringwire-benches --bin soak-chart
	@secs=$$(( $$(echo "$(DURATION)" | sed -E 's/^([0-9]+)h$$/\1*3600/; s/^([0-9]+)m$$/\1*60/; s/^([0-9]+)s?$$/\1/') )) && \
	RINGWIRE_COMETBFT=$(COMETBFT_BIN)/ringwire-cometbft COMETBFT=$(COMETBFT_BIN)/cometbft \
	  LOADER=$(COMETBFT_BIN)/localnet-load PROXY=$(COMETBFT_BIN)/faultproxy MIX="$(E2E_MIX)" \
	  PERTURBATIONS="$(SOAK_PERTURBATIONS)" DURATION=$$secs QUIET=$(SOAK_QUIET) SAMPLE_EVERY=$(SOAK_EVERY) \
	  SERIES=$(SOAK_OUT).csv REPORT=$(SOAK_OUT)-run OUT=$(TARGET_DIR)/soak cometbft/localnet/e2e.sh
	$(TARGET_DIR)/release/soak-chart --samples $(SOAK_OUT).csv --latency $(SOAK_OUT)-latency.csv \
	  --png $(SOAK_OUT).png --md $(SOAK_OUT).md --title "make soak DURATION=$(DURATION)"

## localnet: 4 validators with the kvstore app on loopback, 2 stock `cometbft` and 2
## `ringwire-cometbft` (LOCALNET_MIX), until each has committed LOCALNET_BLOCKS blocks; checks
## equal block and app hashes, a transaction each way between a stock and a ringwire node's
## RPC, and the protocol between peers (cometbft/localnet/run.sh; homes and logs in
## $(TARGET_DIR)/localnet).
LOCALNET_MIX ?= stock stock ringwire ringwire
LOCALNET_BLOCKS ?= 100
localnet: ringwire-cometbft cometbft-stock
	RINGWIRE_COMETBFT=$(COMETBFT_BIN)/ringwire-cometbft COMETBFT=$(COMETBFT_BIN)/cometbft \
	  MIX="$(LOCALNET_MIX)" BLOCKS=$(LOCALNET_BLOCKS) OUT=$(TARGET_DIR)/localnet cometbft/localnet/run.sh

## cometbft-test: the cometbft/ module's tests (the switch against ringwire and stock switches,
## the node swap, and a bounded localnet run, mixed and all-ringwire) against the debug library.
cometbft-test:
	@test -z "$$(gofmt -l cometbft)" || { echo "gofmt: these files need formatting:"; gofmt -l cometbft; exit 1; }
	$(MAKE) --no-print-directory go-pc FFI_PROFILE=debug
	cd cometbft && export $(call cgo_env,$(TARGET_DIR)/pkgconfig/debug) && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...
