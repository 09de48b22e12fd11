#!/usr/bin/env bash
# The perturbation suite (docs/E2E.md): a 4-validator CometBFT localnet with the kvstore app,
# stock `cometbft` and `ringwire-cometbft` mixed (MIX), every validator in its own network
# namespace joined by a veth pair to a bridge in the root namespace, persistent peers (PEX off),
# under a light transaction load (localnet-load). After a warm-up it runs PERTURBATIONS in turn:
#
# The warm-up (WARMUP s) ends with BURST s (default HOLD) of the saturating load below, uncapped.
#
#   kill-stock, kill-ringwire  SIGKILL of the first node of that kind; restarted after HOLD s
#   pause                      SIGSTOP of the last ringwire node for PAUSE s, then SIGCONT
#   link-down                  the veth of node 1 down for HOLD s (a partition of one), then up
#   split                      nodes 0,1 | nodes 2,3 for HOLD s (blackhole routes in each
#                              namespace): with half the voting power on each side the chain
#                              must halt; then healed, it must resume
#   bandwidth                  every node's link capped at CAP_MBIT Mbit/s each way (tc htb)
#                              under a saturating load (SAT_RATE tx/s of SAT_SIZE B) for HOLD s
#   proxy                      node PROXIED's peer connections, which always run through
#                              faultproxy (cometbft/cmd/faultproxy), get PROXY_FAULTS for HOLD s
#
# After each: every node must be 2 blocks past the height at the heal within RESUME_BOUND s, all
# nodes report the same block and app hash at that height, and the others must have kept
# committing while one node was down, paused or cut off (split: must not have). Every
# SAMPLE_EVERY s each node's VmRSS and open fds are sampled; after the last perturbation and a
# quiet FINAL s, each node's peak must stay within RSS_FACTOR x its warm-up peak + RSS_SLACK_MB
# and its fds within warm-up peak + FD_SLACK.
#
# With DURATION > 0 (seconds; `make soak`) the schedule repeats, QUIET s apart, until DURATION
# has passed; SERIES names the CSV the samples and the load's commit latency go to.
#
# The app is the persistent kvstore (PROXY_APP). The mempool of every node holds at most MEMPOOL_BYTES (8 MiB; stock's default is 1 GiB) and a
# block at most BLOCK_BYTES (1 MiB; the testnet genesis allows 53 MiB), so that a saturating load
# leaves a backlog the chain drains in a few blocks and blocks stay of a size a 50 Mbit/s link
# carries in a fraction of a second; offers beyond the mempool are refused, as a full mempool
# refuses them.
#
# Environment: RINGWIRE_COMETBFT, COMETBFT, LOADER (localnet-load) and PROXY (faultproxy)
# binaries (required); the rest as set below. REPORT: write REPORT.json and REPORT.md.
# OUT: homes, logs, samples (wiped first). Needs root, ip, tc, curl and jq. Every namespace,
# link and process it makes is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

: "${RINGWIRE_COMETBFT:?}" "${COMETBFT:?}" "${LOADER:?}" "${PROXY:?}"
MIX=${MIX:-"stock stock ringwire ringwire"}
PERTURBATIONS=${PERTURBATIONS:-"kill-stock kill-ringwire pause link-down split bandwidth proxy"}
DURATION=${DURATION:-0}
QUIET=${QUIET:-30}
OUT=${OUT:-./e2e-out}
REPORT=${REPORT:-}
SERIES=${SERIES:-}
TIMEOUT_COMMIT=${TIMEOUT_COMMIT:-200ms}
WARMUP=${WARMUP:-30}
HOLD=${HOLD:-20}
PAUSE=${PAUSE:-20}
OBSERVE=${OBSERVE:-10}
FINAL=${FINAL:-30}
RESUME_BOUND=${RESUME_BOUND:-90}
SAMPLE_EVERY=${SAMPLE_EVERY:-2}
LOAD_RATE=${LOAD_RATE:-50}
LOAD_SIZE=${LOAD_SIZE:-256}
CAP_MBIT=${CAP_MBIT:-50}
SAT_RATE=${SAT_RATE:-300}
SAT_SIZE=${SAT_SIZE:-16384}
BURST=${BURST:-$HOLD}
# The persistent kvstore keeps the app's state in goleveldb on disk: the in-memory one grows every
# node's heap with each committed transaction, which the memory checks would see as growth.
export PROXY_APP=${PROXY_APP:-persistent_kvstore}
MEMPOOL_BYTES=${MEMPOOL_BYTES:-8388608}
BLOCK_BYTES=${BLOCK_BYTES:-1048576}
PROXIED=${PROXIED:-3}
PROXY_FAULTS=${PROXY_FAULTS:-"delay=50ms jitter=30ms loss=0.02 rto=200ms hold=0.05 holdfor=150ms"}
RSS_FACTOR=${RSS_FACTOR:-2}
RSS_SLACK_MB=${RSS_SLACK_MB:-64}
FD_SLACK=${FD_SLACK:-32}

TAG=e2e
failed=0
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ $(id -u) != 0 ]]; then
  echo "e2e: needs root (network namespaces, veth pairs, tc)" >&2
  exit 2
fi
for t in ip tc curl jq; do command -v $t >/dev/null || { echo "e2e: needs $t" >&2; exit 2; }; done
read -ra kinds <<<"$MIX"
n=${#kinds[@]}
((n == 4)) || { echo "e2e: MIX must name 4 nodes (the split is 2|2)" >&2; exit 2; }

# ---- names, cleanup ----------------------------------------------------------------------------
id=$$
net=10.201.$((RANDOM % 250))
br=rwe${id}b
nsn=() hveth=() ips=() rpca=() wrap=() pids=()
for ((i = 0; i < n; i++)); do
  nsn[i]=rwe2e-$id-n$i
  hveth[i]=rwe${id}h$i
  ips[i]=$net.$((i + 1))
  rpca[i]=${ips[i]}:26657
  wrap[i]="ip netns exec ${nsn[i]}"
  pids[i]=0
done
gw=$net.254  # the root namespace's address on the bridge (RPC, load)
pxy=$net.253 # the proxy's address (listens and dials from it)
helpers=() # background processes of ours besides the nodes (sampler, proxy, loaders)

remove_stale() { # namespaces and bridges of earlier runs whose script is gone
  local x p
  for x in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^rwe2e-' || true); do
    p=$(cut -d- -f2 <<<"$x")
    kill -0 "$p" 2>/dev/null || ip netns del "$x" 2>/dev/null || true
  done
  for x in $(ip -o link show type bridge 2>/dev/null | grep -o 'rwe[0-9]*b' || true); do
    p=${x#rwe}
    p=${p%b}
    kill -0 "$p" 2>/dev/null || ip link del "$x" 2>/dev/null || true
  done
}
cleanup() {
  local rc=$? p i
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do [[ $p == 0 ]] || kill -CONT "$p" 2>/dev/null || true; done
  for p in "${helpers[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_nodes
  for p in "${helpers[@]}"; do wait "$p" 2>/dev/null || true; done
  # A namespace's veth end goes with the namespace only once the kernel's deferred cleanup of
  # it has run, which can be after this script ends: delete the host ends (and with them the
  # pairs) here.
  for ((i = 0; i < n; i++)); do
    ip link del "${hveth[i]}" 2>/dev/null || true
    ip netns del "${nsn[i]}" 2>/dev/null || true
  done
  ip link del "$br" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
remove_stale

# ---- network -------------------------------------------------------------------------------------
ip link add "$br" type bridge
ip addr add "$gw/24" dev "$br"
ip addr add "$pxy/24" dev "$br"
ip link set "$br" up
for ((i = 0; i < n; i++)); do
  ip netns add "${nsn[i]}"
  ip link add "${hveth[i]}" type veth peer name "rwe${id}n$i"
  ip link set "rwe${id}n$i" netns "${nsn[i]}"
  ip -n "${nsn[i]}" link set "rwe${id}n$i" name eth0
  ip -n "${nsn[i]}" addr add "${ips[i]}/24" dev eth0
  ip -n "${nsn[i]}" link set eth0 up
  ip -n "${nsn[i]}" link set lo up
  ip link set "${hveth[i]}" master "$br" up
done

# ---- homes, the proxy ----------------------------------------------------------------------------
ln_homes "$n" "${ips[@]}"
proxy_port() { echo $((36000 + $1)); }
for ((i = 0; i < n; i++)); do
  peers=""
  for ((j = 0; j < n; j++)); do
    ((j == i)) && continue
    addr=${ips[j]}:26656
    ((i == PROXIED || j == PROXIED)) && addr=$pxy:$(proxy_port "$j")
    peers+="${peers:+,}${ids[j]}@$addr"
  done
  ln_configure "$i" "${ips[i]}:26656" "${rpca[i]}" "$peers" "$TIMEOUT_COMMIT" false
  sed -i "/^\[mempool\]/,/^\[/ s|^max_txs_bytes = .*|max_txs_bytes = $MEMPOOL_BYTES|" "$OUT/node$i/config/config.toml"
  g=$OUT/node$i/config/genesis.json
  jq --arg b "$BLOCK_BYTES" '.consensus_params.block.max_bytes = $b' "$g" >"$g.tmp" && mv "$g.tmp" "$g"
done
routes=()
for ((j = 0; j < n; j++)); do routes+=(-route "$pxy:$(proxy_port "$j")=${ips[j]}:26656"); done
: >"$OUT/faults"
"$PROXY" "${routes[@]}" -bind "$pxy" -faults "$OUT/faults" -stats 1s 2>"$OUT/proxy.log" &
helpers+=($!)

# ---- sampling ------------------------------------------------------------------------------------
echo warm-up >"$OUT/phase"
save_pids() { echo "${pids[*]}" >"$OUT/pids.tmp" && mv "$OUT/pids.tmp" "$OUT/pids"; }
sampler() { # unix_s,phase,node,pid,rss_kb,fds,height every SAMPLE_EVERY s
  local i p r f h ph ps
  echo "unix_s,phase,node,pid,rss_kb,fds,height"
  while :; do
    read -ra ps <"$OUT/pids" || true
    ph=$(<"$OUT/phase")
    for ((i = 0; i < n; i++)); do
      p=${ps[i]:-0} r="" f="" h=""
      if [[ $p != 0 ]]; then
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        f=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true)
      fi
      h=$(curl -sf --max-time 1 "http://${rpca[i]}/status" 2>/dev/null | jq -r '.result.sync_info.latest_block_height' 2>/dev/null || true)
      echo "$(date +%s),$ph,$i,$p,${r:-},${f:-},${h:-}"
    done
    sleep "$SAMPLE_EVERY"
  done
}

# ---- heights ---------------------------------------------------------------------------------------
qheight() { # node i's height, 0 when its RPC does not answer within 1.5 s
  local h
  h=$(curl -sf --max-time 1.5 "http://${rpca[$1]}/status" 2>/dev/null | jq -r '.result.sync_info.latest_block_height' 2>/dev/null || true)
  [[ $h =~ ^[0-9]+$ ]] && echo "$h" || echo 0
}
top() { # the highest height of the nodes not named in $1 (a space-separated index list)
  local best=0 i h
  for ((i = 0; i < n; i++)); do
    [[ " ${1:-} " == *" $i "* ]] && continue
    h=$(qheight "$i")
    ((h > best)) && best=$h
  done
  echo "$best"
}
low() { # the lowest height over all nodes
  local lo=-1 i h
  for ((i = 0; i < n; i++)); do
    h=$(qheight "$i")
    ((lo < 0 || h < lo)) && lo=$h
  done
  echo "$lo"
}
first_of() { local i; for ((i = 0; i < n; i++)); do [[ ${kinds[i]} == "$1" ]] && { echo "$i"; return; }; done; echo 0; }
last_of() { local i; for ((i = n - 1; i >= 0; i--)); do [[ ${kinds[i]} == "$1" ]] && { echo "$i"; return; }; done; echo $((n - 1)); }

# ---- start ---------------------------------------------------------------------------------------
say "$n validators ($MIX) in namespaces ${nsn[*]} on bridge $br ($net.0/24); node$PROXIED's peer links through faultproxy; timeout_commit $TIMEOUT_COMMIT; homes and logs in $OUT"
for ((i = 0; i < n; i++)); do start_node "$i"; done
save_pids
sampler >"$OUT/samples.csv" &
helpers+=($!)
t0=$SECONDS
while (($(low) < 3)); do
  alive || exit 1
  ((SECONDS - t0 < 120)) || { fail "the network did not reach height 3 in 120 s"; exit 1; }
  sleep 1
done
join() { local IFS=,; echo "$*"; }
load_total=$((DURATION > 0 ? DURATION + 600 : 3600))
"$LOADER" -rpc "$(join "${rpca[@]}")" -kind "$(join "${kinds[@]}")" -rate "$LOAD_RATE" -size "$LOAD_SIZE" \
  -warmup 0s -duration "${load_total}s" -table 0 -label background ${SERIES:+-series "$OUT/latency.csv"} \
  -series-every "${SAMPLE_EVERY}s" >"$OUT/load.log" 2>&1 &
loader_pid=$!
helpers+=("$loader_pid")
say "network up at height $(top) after $((SECONDS - t0))s; background load $LOAD_RATE tx/s of $LOAD_SIZE B; warm-up ${WARMUP}s, the last ${BURST}s of it with the saturating load too"
# The warm-up ends with a burst of the saturating load (uncapped), so that the memory the
# heaviest workload of the run needs (a full mempool, large blocks) is in the warm-up peaks the
# final check compares against, and growth after it means something stayed behind.
sleep $((WARMUP > BURST ? WARMUP - BURST : 0))
if ((BURST > 0)); then
  "$LOADER" -rpc "$(join "${rpca[@]}")" -kind "$(join "${kinds[@]}")" -rate "$SAT_RATE" -size "$SAT_SIZE" \
    -warmup 0s -duration "${BURST}s" -table 0 -label burst >"$OUT/burst.log" 2>&1 || fail "the warm-up burst's load generator failed"
  h=$(top)
  while (($(low) < h + 2)); do
    alive || exit 1
    ((SECONDS - t0 < 300)) || { fail "the network did not absorb the warm-up burst"; exit 1; }
    sleep 1
  done
fi

# ---- perturbations -------------------------------------------------------------------------------
results="$OUT/results.jsonl"
: >"$results"
seq_no=0
# heal name node kind t_start top_start blocks_during extra-json: waits for every node to be 2
# blocks past the height at the heal, checks hashes there, observes, records.
heal() {
  local name=$1 node=$2 kind=$3 ts=$4 during_s=$5 blocks=$6 extra=$7 th h0 lo t_res=-1 h_end ok=true
  th=$SECONDS
  h0=$(top)
  while :; do
    alive || exit 1
    lo=$(low)
    if ((lo >= h0 + 2)); then
      t_res=$((SECONDS - th))
      break
    fi
    if ((SECONDS - th > RESUME_BOUND)); then
      fail "$name: the lowest node at $lo, $((SECONDS - th))s after the heal at height $h0 (bound ${RESUME_BOUND}s)"
      ok=false
      break
    fi
    sleep 1
  done
  if [[ $ok == true ]]; then
    local before=$failed
    same_block "$h0" >/dev/null
    ((failed == before)) || ok=false
  fi
  sleep "$OBSERVE"
  h_end=$(top)
  say "$name: resumed ${t_res}s after the heal (every node 2 blocks past height $h0); $blocks blocks during ${during_s}s; $((h_end - h0)) blocks in the $((SECONDS - th))s after the heal; hashes at $h0 $([[ $ok == true ]] && echo agree || echo 'NOT checked/agreeing')"
  jq -nc --arg name "$name" --argjson seq "$seq_no" --arg phase "$(<"$OUT/phase")" --argjson node "$node" --arg kind "$kind" \
    --argjson start "$ts" --argjson during "$during_s" --argjson blocks "$blocks" --argjson resume "$t_res" \
    --argjson heal_height "$h0" --argjson after "$((h_end - h0))" --argjson after_s "$((SECONDS - th))" \
    --argjson ok "$ok" --argjson extra "$extra" \
    '{name: $name, seq: $seq, phase: $phase, node: $node, kind: $kind, started_s: $start, during_s: $during,
      blocks_during: $blocks, resume_s: $resume, heal_height: $heal_height, blocks_after: $after,
      after_s: $after_s, hashes_agree: $ok, extra: $extra}' >>"$results"
}

p_kill() { # kind
  local k ts b0 b1
  k=$(first_of "$1")
  ts=$SECONDS
  b0=$(top "$k")
  kill -9 "${pids[k]}"
  wait "${pids[k]}" 2>/dev/null || true
  pids[k]=0
  save_pids
  say "kill-$1: node$k SIGKILLed at height $b0; restart in ${HOLD}s"
  sleep "$HOLD"
  alive || exit 1
  b1=$(top "$k")
  (((b1 - b0) >= 3)) || fail "kill-$1: the other 3 nodes committed $((b1 - b0)) blocks in ${HOLD}s with node$k down, want >= 3"
  start_node "$k"
  save_pids
  heal "kill-$1" "$k" "${kinds[k]}" "$ts" "$((SECONDS - ts))" "$((b1 - b0))" '{}'
}

p_pause() {
  local k ts b0 b1
  k=$(last_of ringwire)
  ts=$SECONDS
  b0=$(top "$k")
  kill -STOP "${pids[k]}"
  say "pause: node$k (${kinds[k]}) SIGSTOPped at height $b0 for ${PAUSE}s"
  sleep "$PAUSE"
  b1=$(top "$k")
  kill -CONT "${pids[k]}"
  (((b1 - b0) >= 3)) || fail "pause: the other 3 nodes committed $((b1 - b0)) blocks in ${PAUSE}s with node$k stopped, want >= 3"
  heal pause "$k" "${kinds[k]}" "$ts" "$((SECONDS - ts))" "$((b1 - b0))" '{}'
}

p_link_down() {
  local k=1 ts b0 b1
  ts=$SECONDS
  b0=$(top "$k")
  ip link set "${hveth[k]}" down
  say "link-down: node$k (${kinds[k]})'s link down at height $b0 for ${HOLD}s"
  sleep "$HOLD"
  b1=$(top "$k")
  ip link set "${hveth[k]}" up
  (((b1 - b0) >= 3)) || fail "link-down: the other 3 nodes committed $((b1 - b0)) blocks in ${HOLD}s with node$k cut off, want >= 3"
  heal link-down "$k" "${kinds[k]}" "$ts" "$((SECONDS - ts))" "$((b1 - b0))" '{}'
}

split_routes() { # add|del: blackhole routes between nodes 0,1 and nodes 2,3 (both directions)
  # Node PROXIED reaches its peers only through the proxy's address ($pxy), so the nodes on the
  # other side cut it by blackholing $pxy; every other cross pair by each other's address.
  local i j
  for ((i = 0; i < n; i++)); do
    ((i == PROXIED)) && continue
    for ((j = 0; j < n; j++)); do
      (((i < 2) != (j < 2))) || continue
      if ((j == PROXIED)); then
        ip -n "${nsn[i]}" route "$1" blackhole "$pxy/32"
      else
        ip -n "${nsn[i]}" route "$1" blackhole "${ips[j]}/32"
      fi
    done
  done
}

p_split() {
  local ts b0 b1
  ts=$SECONDS
  b0=$(top)
  split_routes add
  say "split: nodes 0,1 | nodes 2,3 at height $b0 for ${HOLD}s"
  sleep "$HOLD"
  b1=$(top)
  split_routes del
  (((b1 - b0) <= 1)) || fail "split: $((b1 - b0)) blocks committed during a 2|2 split, want at most 1 (the one in flight)"
  heal split -1 both "$ts" "$((SECONDS - ts))" "$((b1 - b0))" '{}'
}

tc_cap() { # add|del: htb at CAP_MBIT on both ends of every node's veth (egress each way)
  local i
  for ((i = 0; i < n; i++)); do
    if [[ $1 == add ]]; then
      ip netns exec "${nsn[i]}" tc qdisc add dev eth0 root handle 1: htb default 10 r2q 100
      ip netns exec "${nsn[i]}" tc class add dev eth0 parent 1: classid 1:10 htb rate "${CAP_MBIT}mbit" ceil "${CAP_MBIT}mbit"
      tc qdisc add dev "${hveth[i]}" root handle 1: htb default 10 r2q 100
      tc class add dev "${hveth[i]}" parent 1: classid 1:10 htb rate "${CAP_MBIT}mbit" ceil "${CAP_MBIT}mbit"
    else
      ip netns exec "${nsn[i]}" tc qdisc del dev eth0 root 2>/dev/null || true
      tc qdisc del dev "${hveth[i]}" root 2>/dev/null || true
    fi
  done
}
link_bytes() { # bytes through all nodes' links so far: node i's "out in" pairs, space-separated
  local i out=""
  for ((i = 0; i < n; i++)); do
    out+="$(<"/sys/class/net/${hveth[i]}/statistics/rx_bytes") $(<"/sys/class/net/${hveth[i]}/statistics/tx_bytes") "
  done
  echo "$out"
}

p_bandwidth() {
  local ts b0 b1 sat c0 c1 prev cur peak=0 i t mbit el
  ts=$SECONDS
  b0=$(top)
  tc_cap add
  "$LOADER" -rpc "$(join "${rpca[@]}")" -kind "$(join "${kinds[@]}")" -rate "$SAT_RATE" -size "$SAT_SIZE" \
    -warmup 0s -duration "${HOLD}s" -table 0 -label saturating -json "$OUT/saturating-$seq_no.json" \
    >"$OUT/saturating-$seq_no.log" 2>&1 &
  sat=$!
  helpers+=("$sat")
  say "bandwidth: every link capped at ${CAP_MBIT} Mbit/s each way at height $b0; $SAT_RATE tx/s of $SAT_SIZE B for ${HOLD}s"
  read -ra c0 <<<"$(link_bytes)"
  prev=("${c0[@]}")
  t=$SECONDS
  # Peak 2-second rate of any one link direction, Mbit/s.
  while ((SECONDS - t < HOLD)); do
    sleep 2
    read -ra cur <<<"$(link_bytes)"
    for ((i = 0; i < 2 * n; i++)); do
      mbit=$(((cur[i] - prev[i]) * 8 / 2 / 1000000))
      ((mbit > peak)) && peak=$mbit
    done
    prev=("${cur[@]}")
  done
  read -ra c1 <<<"$(link_bytes)"
  el=$((SECONDS - t))
  b1=$(top)
  wait "$sat" 2>/dev/null || true
  tc_cap del
  (((b1 - b0) >= 1)) || fail "bandwidth: $((b1 - b0)) blocks in ${el}s under the cap, want >= 1 (the chain keeps committing)"
  local mean=0 tot=0
  for ((i = 0; i < 2 * n; i++)); do
    mbit=$(((c1[i] - c0[i]) * 8 / el / 1000000))
    ((mbit > mean)) && mean=$mbit
    tot=$((tot + c1[i] - c0[i]))
  done
  local sj='{}'
  [[ -s $OUT/saturating-$seq_no.json ]] && sj=$(jq -c '{offered_tx_per_s, tx_bytes, sent, committed, committed_tx_per_s, commit_latency_p50_ms, commit_latency_p99_ms, offers_dropped, broadcasts_failed}' "$OUT/saturating-$seq_no.json")
  say "bandwidth: busiest link direction ${mean} Mbit/s mean, ${peak} Mbit/s peak over 2 s (cap ${CAP_MBIT}); load: $(jq -r '"\(.committed_tx_per_s|floor) tx/s committed, p99 \(.commit_latency_p99_ms|floor) ms"' <<<"$sj" 2>/dev/null || echo '?')"
  heal bandwidth -1 all "$ts" "$((SECONDS - ts))" "$((b1 - b0))" \
    "$(jq -nc --argjson cap "$CAP_MBIT" --argjson mean "$mean" --argjson peak "$peak" --argjson mb "$((tot / 1000000))" --argjson load "$sj" \
      '{cap_mbit: $cap, busiest_link_mean_mbit: $mean, busiest_link_peak_2s_mbit: $peak, link_megabytes_all: $mb, saturating_load: $load}')"
}

proxy_stats() { # the proxy's last stats line as "stalls holds chunks"
  grep 'faultproxy: stats' "$OUT/proxy.log" | tail -n 1 | sed -E 's/.*chunks=([0-9]+).*stalls=([0-9]+) holds=([0-9]+).*/\2 \3 \1/'
}
p_proxy() {
  local k=$PROXIED ts b0 b1 s0 s1 hk behind
  ts=$SECONDS
  b0=$(top)
  read -ra s0 <<<"$(proxy_stats)"
  echo "$PROXY_FAULTS" >"$OUT/faults"
  say "proxy: node$k (${kinds[k]})'s peer links get '$PROXY_FAULTS' at height $b0 for ${HOLD}s"
  sleep "$HOLD"
  b1=$(top)
  hk=$(qheight "$k")
  : >"$OUT/faults"
  sleep 1.5
  read -ra s1 <<<"$(proxy_stats)"
  behind=$((b1 - hk))
  (((b1 - b0) >= 3)) || fail "proxy: $((b1 - b0)) blocks in ${HOLD}s with faults on node$k's links, want >= 3"
  ((behind <= 3)) || fail "proxy: node$k at $hk, $behind behind the others at the end of the faults (want <= 3)"
  (((s1[0] - s0[0]) > 0 && (s1[1] - s0[1]) > 0)) || fail "proxy: no stall or no hold injected (stats ${s0[*]} -> ${s1[*]})"
  say "proxy: $((s1[2] - s0[2])) chunks, $((s1[0] - s0[0])) stalled (loss), $((s1[1] - s0[1])) held back; node$k $behind behind at the end"
  heal proxy "$k" "${kinds[k]}" "$ts" "$((SECONDS - ts))" "$((b1 - b0))" \
    "$(jq -nc --arg f "$PROXY_FAULTS" --argjson c "$((s1[2] - s0[2]))" --argjson st "$((s1[0] - s0[0]))" --argjson ho "$((s1[1] - s0[1]))" --argjson be "$behind" \
      '{faults: $f, chunks: $c, stalls: $st, holds: $ho, proxied_node_behind_at_end: $be}')"
}

run_one() {
  seq_no=$((seq_no + 1))
  echo "$seq_no:$1" >"$OUT/phase"
  case $1 in
    kill-stock) p_kill stock ;;
    kill-ringwire) p_kill ringwire ;;
    pause) p_pause ;;
    link-down) p_link_down ;;
    split) p_split ;;
    bandwidth) p_bandwidth ;;
    proxy) p_proxy ;;
    *) fail "unknown perturbation '$1'"; exit 2 ;;
  esac
}

suite_start=$SECONDS
if ((DURATION > 0)); then
  while ((SECONDS - suite_start < DURATION)); do
    for p in $PERTURBATIONS; do
      ((SECONDS - suite_start < DURATION)) || break
      run_one "$p"
      echo "quiet" >"$OUT/phase"
      sleep "$QUIET"
    done
  done
else
  for p in $PERTURBATIONS; do run_one "$p"; done
fi

# ---- after the last perturbation -----------------------------------------------------------------
echo final >"$OUT/phase"
say "final: ${FINAL}s under the background load"
sleep "$FINAL"
alive || exit 1
h=$(low)
for x in 2 $((h / 2)) "$h"; do same_block "$x"; done
kill -INT "$loader_pid" 2>/dev/null || true # SIGINT: it prints its summary
wait "$loader_pid" 2>/dev/null || true
sleep "$SAMPLE_EVERY"

# Per node and phase: peak RSS (MiB) and fds from the samples.
peaks=$(awk -F, 'NR > 1 && $5 != "" {
    k = $2 SUBSEP $3
    if ($5 > rss[k]) rss[k] = $5
    if ($6 > fd[k]) fd[k] = $6
  }
  END { for (k in rss) { split(k, a, SUBSEP); printf "%s %s %d %d\n", a[1], a[2], rss[k] / 1024, fd[k] } }' "$OUT/samples.csv")
peaks_json=$(awk '{printf "{\"phase\":\"%s\",\"node\":%s,\"rss_peak_mib\":%s,\"fds_peak\":%s}\n", $1, $2, $3, $4}' <<<"$peaks" | jq -sc '.')
growth=()
for ((i = 0; i < n; i++)); do
  read -r _ _ wr wf < <(grep "^warm-up $i " <<<"$peaks" || echo "x x 0 0")
  read -r _ _ fr ff < <(grep "^final $i " <<<"$peaks" || echo "x x 0 0")
  lim_r=$(awk -v w="$wr" -v f="$RSS_FACTOR" -v s="$RSS_SLACK_MB" 'BEGIN { printf "%d", w * f + s }')
  lim_f=$((wf + FD_SLACK))
  say "node$i (${kinds[i]}): RSS peak ${wr} MiB in the warm-up, ${fr} MiB after the last perturbation (bound ${lim_r}); fds ${wf} -> ${ff} (bound ${lim_f})"
  ((wr > 0 && fr > 0)) || fail "node$i: no RSS samples for the warm-up or the final phase"
  ((fr <= lim_r)) || fail "node$i: RSS ${fr} MiB after the last perturbation, above ${lim_r} MiB (${RSS_FACTOR} x warm-up ${wr} + ${RSS_SLACK_MB})"
  ((ff <= lim_f)) || fail "node$i: ${ff} fds after the last perturbation, above ${lim_f} (warm-up ${wf} + ${FD_SLACK})"
  growth+=("$(jq -nc --argjson node "$i" --arg kind "${kinds[i]}" --argjson wr "$wr" --argjson fr "$fr" --argjson wf "$wf" --argjson ff "$ff" --argjson lr "$lim_r" --argjson lf "$lim_f" \
    '{node: $node, kind: $kind, rss_warmup_mib: $wr, rss_final_mib: $fr, rss_bound_mib: $lr, fds_warmup: $wf, fds_final: $ff, fds_bound: $lf}')")
done
# (its CPU figure is left out: the load generator is not given the nodes' pids, which change)
bg=$(sed -n 's/^committed \(.*\)$/\1/p' "$OUT/load.log" | head -n 1 | sed 's/; CPU [0-9.]* s over all nodes//')
say "background load: ${bg:-no summary}"

if [[ -n $SERIES ]]; then
  cp "$OUT/samples.csv" "$SERIES"
  [[ -f $OUT/latency.csv ]] && cp "$OUT/latency.csv" "${SERIES%.csv}-latency.csv"
fi
if [[ -n $REPORT ]]; then
  mkdir -p "$(dirname "$REPORT")"
  jq -n --arg mix "$MIX" --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
    --argjson cores "$(nproc)" --arg tc "$TIMEOUT_COMMIT" --argjson hold "$HOLD" --argjson pause "$PAUSE" \
    --argjson bound "$RESUME_BOUND" --arg load "$LOAD_RATE tx/s of $LOAD_SIZE B" --arg bg "${bg:-}" \
    --argjson wall "$((SECONDS - suite_start))" --argjson ok "$((failed == 0))" \
    --slurpfile perts "$results" --argjson peaks "$peaks_json" --argjson growth "$(printf '%s\n' "${growth[@]}" | jq -sc '.')" \
    '{mix: $mix, date: $date, machine: ($cpu + ", " + ($cores|tostring) + " cores"), timeout_commit: $tc,
      hold_s: $hold, pause_s: $pause, resume_bound_s: $bound, background_load: $load, background_summary: $bg,
      wall_s: $wall, passed: ($ok == 1), perturbations: $perts, growth: $growth,
      peaks: $peaks}' >"$REPORT.json"
  "$here/e2e-report.sh" "$REPORT.json" >"$REPORT.md"
  say "report: $REPORT.md, $REPORT.json"
fi

if ((failed)); then
  say "FAILED (homes, logs and samples in $OUT)"
  exit 1
fi
say "OK: $(wc -l <"$results") perturbations on $MIX; every one resumed within ${RESUME_BOUND}s with equal hashes; no node's RSS or fds grew past its bound"
