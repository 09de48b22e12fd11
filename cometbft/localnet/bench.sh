#!/usr/bin/env bash
# The 4-validator localnet (run.sh) under the same offered transaction load, all-stock, mixed
# and all-ringwire, for each transaction size: committed tx/s, commit latency p50/p99, block
# interval and CPU seconds per node, side by side. Writes RESULTS/localnet.json (every run's
# localnet-load summary) and RESULTS/localnet.md (the table and the command).
#
# Environment: RINGWIRE_COMETBFT, COMETBFT, LOADER (as run.sh), RATE (tx/s offered, default
# 200), SIZES (bytes per transaction, default "256 4096"), SECONDS_EACH (measured seconds per
# run, default 60), REPS (fresh networks per mix and size, default 3: one run's latency depends
# on where the consensus reactor's 100 ms gossip sleeps happen to fall, see docs/COMETBFT.md),
# TIMEOUT_COMMIT (default 200ms, as run.sh), GOSSIP_SLEEP (every node's consensus
# peer_gossip_sleep_duration; default the homes' 100ms, as run.sh), OUT (scratch, default
# ./localnet-bench), RESULTS (default benches/results).
set -euo pipefail
: "${RINGWIRE_COMETBFT:?}" "${COMETBFT:?}" "${LOADER:?}"
RATE=${RATE:-200}
SIZES=${SIZES:-"256 4096"}
SECONDS_EACH=${SECONDS_EACH:-60}
REPS=${REPS:-3}
TIMEOUT_COMMIT=${TIMEOUT_COMMIT:-200ms}
GOSSIP_SLEEP=${GOSSIP_SLEEP:-100ms}
export GOSSIP_SLEEP
OUT=${OUT:-./localnet-bench}
RESULTS=${RESULTS:-benches/results}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT" "$RESULTS"
runs=()
for size in $SIZES; do
  for mix in "stock stock stock stock" "stock stock ringwire ringwire" "ringwire ringwire ringwire ringwire"; do
    for ((rep = 1; rep <= REPS; rep++)); do
      tag="$(tr ' ' '-' <<<"$mix")-$size-$rep"
      echo "localnet-bench: $mix, $RATE tx/s of $size B for ${SECONDS_EACH}s, run $rep of $REPS"
      MIX="$mix" BLOCKS=5 TIMEOUT_COMMIT="$TIMEOUT_COMMIT" LOAD_SECONDS="$SECONDS_EACH" LOAD_RATE="$RATE" \
        LOAD_SIZE="$size" LOAD_TABLE=10s LOAD_JSON="$OUT/$tag.json" OUT="$OUT/$tag" "$here/run.sh"
      runs+=("$OUT/$tag.json")
    done
  done
done

jq -s '.' "${runs[@]}" >"$RESULTS/localnet.json"
{
  echo "# CometBFT localnet: all-stock, mixed and all-ringwire under the same load"
  echo
  echo "4 validators with the kvstore app on loopback (\`cometbft/localnet/run.sh\`), timeout_commit"
  echo "$TIMEOUT_COMMIT, peer_gossip_sleep_duration $GOSSIP_SLEEP, ${SECONDS_EACH} s measured after a 3 s warm-up, $RATE tx/s offered round-robin to the"
  echo "nodes' RPC, $REPS fresh networks per row (each figure is the median over them; every run's"
  echo "p99 is listed too). Commit latency: from a transaction's send to the moment the node it was sent to"
  echo "reports the block holding it (polled every 20 ms). CPU: user + system seconds of each node"
  echo "process over the window. Committed tx/s counts the commits that fall inside the window, so it"
  echo "moves by up to a block's transactions at the window's edges; committed / sent is the share of the"
  echo "transactions sent in the window that were committed (within 3 s of its end). Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%Y-%m-%d)."
  echo
  echo "Command: \`make localnet-bench BENCH_TX_RATE=$RATE BENCH_TX_SECONDS=$SECONDS_EACH BENCH_TX_REPS=$REPS BENCH_TX_SIZES=\"$SIZES\" BENCH_TX_GOSSIP_SLEEP=$GOSSIP_SLEEP BENCH_TX_RESULTS=$RESULTS\`"
  echo
  echo "| network | tx size | committed tx/s | committed / sent | commit p50 ms | commit p99 ms (each run) | block interval mean / p99 ms | CPU s per node (stock · ringwire) | not committed |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  jq -r '
    def median: sort | .[(length - 1) / 2 | floor];
    def r1: . * 10 | round / 10 | tostring;
    group_by([.tx_bytes, .label]) | sort_by(.[0].tx_bytes, (.[0].label | test("stock") | not), (.[0].label | test("ringwire"))) | .[] |
    . as $runs |
    [
      $runs[0].label,
      ($runs[0].tx_bytes | tostring) + " B",
      ([$runs[].committed_tx_per_s] | median | r1),
      (([$runs[].sent] | add) as $sent | if $sent > 0 then (([$runs[].committed] | add) * 1000 / $sent | floor / 10 | tostring) + " %" else "nothing sent" end),
      ([$runs[].commit_latency_p50_ms] | median | round | tostring),
      ([$runs[].commit_latency_p99_ms] | median | round | tostring) + " (" + ([$runs[].commit_latency_p99_ms | round | tostring] | join(", ")) + ")",
      ([$runs[].block_interval_mean_ms] | median | round | tostring) + " / " + ([$runs[].block_interval_p99_ms] | median | round | tostring),
      ([$runs[].nodes[] | select(.kind == "stock") | .cpu_s] | if length > 0 then median | r1 else "" end) + " · " +
        ([$runs[].nodes[] | select(.kind == "ringwire") | .cpu_s] | if length > 0 then median | r1 else "" end),
      ([$runs[].uncommitted] | add | tostring)
    ] | "| " + join(" | ") + " |"' "$RESULTS/localnet.json"
} >"$RESULTS/localnet.md"
cat "$RESULTS/localnet.md"
