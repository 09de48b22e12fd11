#!/usr/bin/env bash
# Renders the JSON report of e2e.sh (argument) as Markdown on stdout.
set -euo pipefail
j=$1
jq -r '
  "# End-to-end perturbations on the mixed CometBFT localnet\n",
  "4 validators (\(.mix)), the persistent kvstore app, timeout_commit \(.timeout_commit), each in its own network namespace on a bridge, persistent peers (PEX off), node 3'"'"'s peer links through `faultproxy`; background load \(.background_load). Machine: \(.machine); \(.date). Wall time \(.wall_s) s; \(if .passed then "passed" else "FAILED" end).\n",
  "Command: `make e2e` (cometbft/localnet/e2e.sh; docs/E2E.md explains the columns).\n",
  "Resume: seconds from the heal (restart, SIGCONT, link up, routes removed, cap or faults off) until every node is 2 blocks past the highest height at the heal (bound \(.resume_bound_s) s). During: blocks the unperturbed nodes committed while the perturbation lasted. After: blocks committed from the heal to the end of the observation. Hashes: block and app hash equal on all 4 nodes at the heal height.\n",
  "| # | perturbation | node | during s | blocks during | resume s | blocks after (s) | hashes | RSS peak MiB n0 · n1 · n2 · n3 | fds peak n0 · n1 · n2 · n3 |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  (.peaks as $pk | .perturbations[] | . as $p |
    ([$pk[] | select(.phase == $p.phase)] | sort_by(.node)) as $rows |
    "| \(.seq) | \(.name) | \(if .node < 0 then .kind else "node\(.node) (\(.kind))" end) | \(.during_s) | \(.blocks_during) | \(.resume_s) | \(.blocks_after) (\(.after_s)) | \(if .hashes_agree then "equal" else "NO" end) | \([$rows[].rss_peak_mib | tostring] | join(" · ")) | \([$rows[].fds_peak | tostring] | join(" · ")) |"),
  "",
  (.perturbations[] | select(.name == "bandwidth") | .extra |
    "Bandwidth: every link capped at \(.cap_mbit) Mbit/s each way (htb on both veth ends); busiest link direction \(.busiest_link_mean_mbit) Mbit/s mean, \(.busiest_link_peak_2s_mbit) Mbit/s peak over 2 s; \(.link_megabytes_all) MB through all links. Saturating load: \(.saturating_load.offered_tx_per_s) tx/s of \(.saturating_load.tx_bytes) B offered, \(.saturating_load.committed_tx_per_s | floor) tx/s committed, commit latency p50 \(.saturating_load.commit_latency_p50_ms | floor) ms, p99 \(.saturating_load.commit_latency_p99_ms | floor) ms, \(.saturating_load.offers_dropped) offers dropped, \(.saturating_load.broadcasts_failed) refused.\n"),
  (.perturbations[] | select(.name == "proxy") | .extra |
    "Proxy: `\(.faults)` on every peer link of node 3: \(.chunks) chunks, \(.stalls) stalled one RTO (loss), \(.holds) held back (reordering across connections); node 3 was \(.proxied_node_behind_at_end) blocks behind the others when the faults ended.\n"),
  "Memory and descriptors: peak during the warm-up against the peak in the quiet phase after the last perturbation.\n",
  "| node | kind | RSS MiB warm-up → final (bound) | fds warm-up → final (bound) |",
  "| --- | --- | --- | --- |",
  (.growth[] | "| node\(.node) | \(.kind) | \(.rss_warmup_mib) → \(.rss_final_mib) (\(.rss_bound_mib)) | \(.fds_warmup) → \(.fds_final) (\(.fds_bound)) |"),
  "",
  "Background load over the whole run: \(.background_summary). Its p99 is that of the transactions offered while the saturating load (warm-up burst, bandwidth) filled the mempools."
' "$j"
