#!/usr/bin/env bash
# A local CometBFT validator network on loopback with the kvstore application, mixing stock
# `cometbft` (v0.40.0) and `ringwire-cometbft` nodes: homes from `ringwire-cometbft testnet`,
# each node on its own port pair. It waits until every node has committed BLOCKS blocks,
# checks that all nodes agree on the block and app hash at the same heights, sends a
# transaction to a stock node's RPC and reads it through a ringwire node's RPC (and the other
# way round), and reports which protocol each ringwire node speaks to each peer (native
# between ringwire nodes, stock framing to stock nodes), from the nodes' logs.
#
# Environment:
#   RINGWIRE_COMETBFT  the ringwire-cometbft binary (required)
#   COMETBFT           the stock cometbft v0.40.0 binary (required when MIX has a stock node)
#   MIX                node kinds in order (default "stock stock ringwire ringwire")
#   BLOCKS             blocks every node must commit (default 100)
#   TIMEOUT_COMMIT     consensus timeout_commit (default 200ms)
#   GOSSIP_SLEEP       consensus peer_gossip_sleep_duration of every node (default: the homes'
#                      100ms)
#   PEX                [p2p] pex of every node (default false: every node has the others as
#                      persistent peers; see docs/COMETBFT.md, "Known problems", for PEX)
#   DEADLINE           seconds to reach BLOCKS before giving up (default 600)
#   LATE               indices of nodes started only once the others have committed BLOCKS
#                      blocks; each must block-sync to the others' height and follow them
#                      (default none). With MIX "stock stock stock ringwire" and LATE=3 a
#                      ringwire node syncs from stock peers only; "ringwire ringwire ringwire
#                      stock" the other way round.
#   KILL               index of a node killed with SIGKILL once every node has committed BLOCKS
#                      blocks: the others must keep committing while it is down, and after its
#                      restart (same home) it must catch up with them (default none)
#   LOAD_SECONDS       after the checks above, offer transactions for this many seconds with
#                      LOADER (cometbft/cmd/localnet-load) and print its live table and summary
#                      (default 0: no load)
#   LOADER             the localnet-load binary (required with LOAD_SECONDS)
#   LOAD_RATE          transactions per second offered over all nodes (default 200)
#   LOAD_SIZE          bytes per transaction (default 256)
#   LOAD_TABLE         live table interval (default 2s; 0 for none)
#   LOAD_JSON          write the load summary as JSON to this file
#   LOG_LEVEL          every node's --log_level (default info; e.g. "consensus:debug,*:info")
#   OUT                where the homes and logs go (default ./localnet-out; wiped first)
#   BASE_PORT          node i listens on BASE_PORT+10i (p2p) and BASE_PORT+10i+1 (RPC)
#                      (default: a random base between 20000 and 31990, below the kernel's
#                      ephemeral ports)
# Exit status 0 when every check passed; the homes and node logs stay in OUT.
set -euo pipefail

: "${RINGWIRE_COMETBFT:?set RINGWIRE_COMETBFT to the ringwire-cometbft binary}"
MIX=${MIX:-"stock stock ringwire ringwire"}
BLOCKS=${BLOCKS:-100}
TIMEOUT_COMMIT=${TIMEOUT_COMMIT:-200ms}
PEX=${PEX:-false}
DEADLINE=${DEADLINE:-600}
OUT=${OUT:-./localnet-out}
BASE_PORT=${BASE_PORT:-$((20000 + (RANDOM % 1200) * 10))}

LATE=${LATE:-}
KILL=${KILL:-}
LOAD_SECONDS=${LOAD_SECONDS:-0}
LOAD_RATE=${LOAD_RATE:-200}
LOAD_SIZE=${LOAD_SIZE:-256}
LOAD_TABLE=${LOAD_TABLE:-2s}
LOAD_JSON=${LOAD_JSON:-}
if ((LOAD_SECONDS > 0)); then : "${LOADER:?set LOADER to the localnet-load binary}"; fi
read -ra kinds <<<"$MIX"
n=${#kinds[@]}
late=()
for ((i = 0; i < n; i++)); do late[i]=0; done
for i in $LATE; do
  ((i >= 0 && i < n)) || { echo "localnet: LATE index $i out of range" >&2; exit 2; }
  late[i]=1
done
if [[ -n $KILL ]] && ! ((KILL >= 0 && KILL < n)); then
  echo "localnet: KILL index $KILL out of range" >&2
  exit 2
fi
for k in "${kinds[@]}"; do
  case $k in
    stock) : "${COMETBFT:?set COMETBFT to the stock cometbft binary}" ;;
    ringwire) ;;
    *) echo "localnet: unknown node kind '$k' in MIX (stock or ringwire)" >&2; exit 2 ;;
  esac
done

TAG=localnet
failed=0
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

hosts=()
for ((i = 0; i < n; i++)); do hosts+=(127.0.0.1); done
ln_homes "$n" "${hosts[@]}"

p2p=() rpcp=() rpca=()
for ((i = 0; i < n; i++)); do
  p2p[i]=$((BASE_PORT + 10 * i))
  rpcp[i]=$((BASE_PORT + 10 * i + 1))
  rpca[i]=127.0.0.1:${rpcp[i]}
done
for ((i = 0; i < n; i++)); do
  peers=""
  for ((j = 0; j < n; j++)); do
    ((j == i)) && continue
    peers+="${peers:+,}${ids[j]}@127.0.0.1:${p2p[j]}"
  done
  ln_configure "$i" "127.0.0.1:${p2p[i]}" "${rpca[i]}" "$peers" "$TIMEOUT_COMMIT" "$PEX"
done

pids=()
trap stop_nodes EXIT

say "$n validators (${MIX}), kvstore, p2p ports ${p2p[*]}, RPC ports ${rpcp[*]}, timeout_commit $TIMEOUT_COMMIT, pex $PEX, homes and logs in $OUT"
for ((i = 0; i < n; i++)); do
  pids[i]=0
  if ((late[i])); then
    say "node$i: ${kinds[i]}, started late"
    continue
  fi
  start_node "$i"
done

# ---- wait for BLOCKS blocks on every node ----------------------------------------------------
# Once every node has a block, each gets a transaction (so the app hash moves off zero).
start=$SECONDS
last_report=-10
loaded=0
while :; do
  alive || exit 1
  hs=() min=-1
  for ((i = 0; i < n; i++)); do
    if [[ ${pids[i]} == 0 ]]; then
      hs+=("-")
      continue
    fi
    h=$(height "$i")
    [[ $h =~ ^[0-9]+$ ]] || h=0
    hs+=("$h")
    ((min < 0 || h < min)) && min=$h
  done
  if ((SECONDS - last_report >= 10)); then
    say "t=$((SECONDS - start))s heights: ${hs[*]}"
    last_report=$SECONDS
  fi
  if ((!loaded && min >= 1)); then
    for ((i = 0; i < n; i++)); do
      [[ ${pids[i]} == 0 ]] && continue
      rpc "$i" "broadcast_tx_sync?tx=%22load-node$i=$RANDOM%22" >/dev/null || fail "broadcast_tx_sync to node$i failed"
    done
    loaded=1
  fi
  ((min >= BLOCKS)) && break
  if ((SECONDS - start > DEADLINE)); then
    fail "heights ${hs[*]} after ${DEADLINE}s, want $BLOCKS on every node"
    exit 1
  fi
  sleep 1
done
elapsed=$((SECONDS - start))
say "every node committed $BLOCKS blocks in ${elapsed}s (heights ${hs[*]})"

# ---- late starters and a killed node ---------------------------------------------------------
top() { # the highest height among running nodes other than $1
  local best=0 i h
  for ((i = 0; i < n; i++)); do
    ((i == $1)) && continue
    [[ ${pids[i]} == 0 ]] && continue
    h=$(height "$i")
    [[ $h =~ ^[0-9]+$ ]] && ((h > best)) && best=$h
  done
  echo "$best"
}
catch_up() { # index what: waits until the node is within a block of the others and follows them
  local i=$1 what=$2 t0=$SECONDS target h
  target=$(($(top "$i") + 3))
  while :; do
    alive || exit 1
    h=$(height "$i")
    [[ $h =~ ^[0-9]+$ ]] || h=0
    ((h >= target)) && break
    if ((SECONDS - t0 > DEADLINE)); then
      fail "node$i ($what) at height $h after ${DEADLINE}s, the others at $(top "$i")"
      exit 1
    fi
    sleep 0.5
  done
  local synced
  synced=$(grep -c "Time to switch to consensus" "$OUT/node$i.log" || true)
  say "node$i (${kinds[i]}, $what) caught up in $((SECONDS - t0))s: height $h, the others at $(top "$i"); block sync handed over to consensus ${synced} time(s) in its log"
}
peers_of_kind() { # index: the kinds of the node's peers that are running
  local i=$1 j out=""
  for ((j = 0; j < n; j++)); do
    ((j == i)) && continue
    [[ ${pids[j]} == 0 ]] && continue
    out+="${out:+ }${kinds[j]}"
  done
  echo "$out"
}
for i in $LATE; do
  from=$(peers_of_kind "$i")
  say "node$i (${kinds[i]}) starts late at height $(top "$i"); its peers: $from"
  start_node "$i"
  catch_up "$i" "started late, synced from $(tr ' ' '\n' <<<"$from" | sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s=", "}')"
done
if [[ -n $KILL ]]; then
  k=$KILL
  h0=$(height "$k")
  kill -9 "${pids[k]}"
  wait "${pids[k]}" 2>/dev/null || true
  pids[k]=0
  t0=$SECONDS
  base=$(top "$k")
  say "node$k (${kinds[k]}) killed with SIGKILL at height $h0"
  while (($(top "$k") < base + 5)); do
    alive || exit 1
    if ((SECONDS - t0 > DEADLINE)); then
      fail "the chain halted at $(top "$k") with node$k down"
      exit 1
    fi
    sleep 0.5
  done
  say "with node$k down the others committed 5 more blocks in $((SECONDS - t0))s (height $(top "$k"))"
  start_node "$k"
  catch_up "$k" "restarted after SIGKILL"
fi

# ---- load --------------------------------------------------------------------------------------
if ((LOAD_SECONDS > 0)); then
  join() { local IFS=,; echo "$*"; }
  addrs=() logs=()
  for ((i = 0; i < n; i++)); do
    addrs+=("127.0.0.1:${rpcp[i]}")
    if [[ ${kinds[i]} == ringwire ]]; then logs+=("$OUT/node$i.log"); else logs+=(""); fi
  done
  say "offering $LOAD_RATE tx/s of $LOAD_SIZE B for ${LOAD_SECONDS}s"
  "$LOADER" -rpc "$(join "${addrs[@]}")" -kind "$(join "${kinds[@]}")" -pid "$(join "${pids[@]}")" \
    -log "$(join "${logs[@]}")" -rate "$LOAD_RATE" -size "$LOAD_SIZE" -duration "${LOAD_SECONDS}s" \
    -table "$LOAD_TABLE" -label "$MIX" ${LOAD_JSON:+-json "$LOAD_JSON"} || fail "the load generator failed"
fi

# ---- the same blocks and app hashes everywhere -----------------------------------------------
for h in 1 $((BLOCKS / 2)) "$BLOCKS"; do same_block "$h"; done

# ---- transactions both ways ------------------------------------------------------------------
first_of() {
  for ((i = 0; i < n; i++)); do [[ ${kinds[i]} == "$1" ]] && { echo "$i"; return; }; done
  echo ""
}
s=$(first_of stock) r=$(first_of ringwire)
[[ -z $s ]] && s=0
[[ -z $r || $r == "$s" ]] && r=$((n - 1))
tx_roundtrip() { # from to key
  local from=$1 to=$2 key=$3 val res hash code txh q got i
  val=v$RANDOM$RANDOM
  res=$(rpc "$from" "broadcast_tx_commit?tx=%22$key=$val%22") || { fail "broadcast_tx_commit to node$from failed"; return; }
  hash=$(jq -r '.result.hash' <<<"$res")
  code=$(jq -r '.result.tx_result.code' <<<"$res")
  txh=$(jq -r '.result.height' <<<"$res")
  if [[ $code != 0 || $hash == null ]]; then
    fail "tx $key=$val via node$from: $res"
    return
  fi
  got=""
  for ((i = 0; i < 30; i++)); do
    got=$(rpc "$to" "tx?hash=0x$hash" 2>/dev/null | jq -r '.result.height' 2>/dev/null || true)
    [[ $got == "$txh" ]] && break
    sleep 0.5
  done
  if [[ $got != "$txh" ]]; then
    fail "tx $hash committed at $txh via node$from, node$to's /tx says '$got'"
    return
  fi
  q=$(rpc "$to" "abci_query?data=%22$key%22" | jq -r '.result.response.value' | base64 -d)
  if [[ $q != "$val" ]]; then
    fail "node$to's /abci_query $key = '$q', want '$val'"
    return
  fi
  say "tx $key=$val sent to node$from (${kinds[from]}), committed at height $txh, read back through node$to (${kinds[to]}): /tx height $got, /abci_query $key=$q"
}
tx_roundtrip "$s" "$r" "from-node$s"
tx_roundtrip "$r" "$s" "from-node$r"
# The block after the last transaction carries the app hash with both; every node has it.
last=$(($(height "$s") + 1))
for ((t = 0; t < 30; t++)); do
  low=$last
  for ((i = 0; i < n; i++)); do h=$(height "$i"); ((h < low)) && low=$h; done
  ((low >= last)) && break
  sleep 0.5
done
same_block "$last"

# ---- peers and protocols ---------------------------------------------------------------------
peers_ok=1
for ((i = 0; i < n; i++)); do
  ni=$(rpc "$i" net_info)
  np=$(jq -r '.result.n_peers' <<<"$ni")
  if [[ $np != $((n - 1)) ]]; then
    fail "node$i has $np peers in /net_info ($(jq -r '[.result.peers[].node_info.moniker] | join(",")' <<<"$ni")), want $((n - 1))"
    peers_ok=0
  fi
done
((peers_ok)) && say "every node has $((n - 1)) peers in /net_info"
for ((i = 0; i < n; i++)); do
  [[ ${kinds[i]} == ringwire ]] || continue
  line="node$i (ringwire) speaks:"
  for ((j = 0; j < n; j++)); do
    ((j == i)) && continue
    proto=$(grep -o "Added peer .*peer=${ids[j]} protocol=[a-z]*" "$OUT/node$i.log" | tail -n 1 | sed 's/.*protocol=//' || true)
    want=stock
    [[ ${kinds[j]} == ringwire ]] && want=native
    line+=" node$j=${proto:-none}"
    [[ $proto == "$want" ]] || fail "node$i talks '${proto:-nothing}' to node$j (${kinds[j]}), want $want"
  done
  say "$line"
done

stop_nodes
if ((failed)); then
  for ((i = 0; i < n; i++)); do
    say "node$i (${kinds[i]}) peer changes:"
    grep -E "Added peer|Peer disconnected|Stopping peer|Ignoring|rejected" "$OUT/node$i.log" | tail -n 12 | cut -c1-240 || true
  done
  say "FAILED (logs in $OUT)"
  exit 1
fi
say "OK: $n validators (${MIX}) committed $BLOCKS blocks in ${elapsed}s with equal block and app hashes; transactions crossed both ways"
