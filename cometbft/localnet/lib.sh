# Functions shared by run.sh and e2e.sh (sourced, not run). They use the caller's arrays:
#   kinds[i]  stock | ringwire      ids[i]   node id       rpca[i]  host:port of node i's RPC
#   pids[i]   process id (0: down)  wrap[i]  optional command prefix node i starts under
#             (e2e.sh: "ip netns exec <ns>"; unset in run.sh)
# and the variables OUT, RINGWIRE_COMETBFT, COMETBFT, PROXY_APP (optional), TAG (the prefix of say/fail lines) and
# failed (set to 1 by fail).

say() { printf '%s: %s\n' "$TAG" "$*"; }
fail() { printf '%s: FAIL: %s\n' "$TAG" "$*" >&2; failed=1; }

# ln_homes n host...: validator homes node0..node<n-1> under OUT (wiped first) from
# `ringwire-cometbft testnet`, one host per node; fills ids[].
ln_homes() {
  local n=$1 i hosts=()
  shift
  for h in "$@"; do hosts+=(--hostname "$h"); done
  rm -rf "$OUT"
  mkdir -p "$OUT"
  "$RINGWIRE_COMETBFT" testnet --v "$n" --o "$OUT" "${hosts[@]}" >/dev/null
  ids=()
  for ((i = 0; i < n; i++)); do ids[i]=$("$RINGWIRE_COMETBFT" show-node-id --home "$OUT/node$i"); done
}

# ln_configure i p2p-host:port rpc-host:port peers timeout_commit pex: node i's config.toml;
# with GOSSIP_SLEEP set (e.g. 10ms), also the consensus reactor's peer_gossip_sleep_duration.
ln_configure() {
  local gossip=()
  [[ -n ${GOSSIP_SLEEP:-} ]] && gossip=(-e "s|^peer_gossip_sleep_duration = .*|peer_gossip_sleep_duration = \"$GOSSIP_SLEEP\"|")
  sed -i "${gossip[@]}" \
    -e "/^\[rpc\]/,/^\[/ s|^laddr = .*|laddr = \"tcp://$3\"|" \
    -e "/^\[p2p\]/,/^\[/ s|^laddr = .*|laddr = \"tcp://$2\"|" \
    -e "s|^persistent_peers = .*|persistent_peers = \"$4\"|" \
    -e "s|^timeout_commit = .*|timeout_commit = \"$5\"|" \
    -e "/^\[p2p\]/,/^\[/ s|^pex = .*|pex = $6|" \
    "$OUT/node$1/config/config.toml"
}

# start_node i: starts node i from its home with the built-in app PROXY_APP (default kvstore,
# in memory); appends to its log (a restart keeps the first run's lines).
start_node() {
  local i=$1 bin=$RINGWIRE_COMETBFT
  [[ ${kinds[i]} == stock ]] && bin=$COMETBFT
  # shellcheck disable=SC2086 # wrap is a command prefix, split on purpose
  ${wrap[i]:-} "$bin" start --home "$OUT/node$i" --proxy_app="${PROXY_APP:-kvstore}" --log_level="${LOG_LEVEL:-info}" >>"$OUT/node$i.log" 2>&1 &
  pids[i]=$!
  say "node$i: ${kinds[i]} $(basename "$bin") pid $! id ${ids[i]}"
}

# stop_nodes: SIGTERM to every running node, then waits for them.
stop_nodes() {
  local p
  for p in "${pids[@]}"; do [[ $p == 0 ]] || kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do [[ $p == 0 ]] || wait "$p" 2>/dev/null || true; done
  pids=()
}

rpc() { curl -sf --max-time 5 "http://${rpca[$1]}/$2"; }
# height i: node i's latest height (0 when its RPC does not answer).
height() {
  local h
  h=$(rpc "$1" status 2>/dev/null | jq -r '.result.sync_info.latest_block_height' 2>/dev/null || true)
  [[ $h =~ ^[0-9]+$ ]] && echo "$h" || echo 0
}

# alive: fails (and says which) when a node that should run has exited.
alive() {
  local i
  for ((i = 0; i < ${#kinds[@]}; i++)); do
    [[ ${pids[i]:-0} == 0 ]] && continue
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      fail "node$i (${kinds[i]}) exited; the end of its log:"
      tail -n 20 "$OUT/node$i.log" >&2
      return 1
    fi
  done
}

# same_block h: every node reports the same block hash and app hash at height h (fail otherwise).
same_block() {
  local h=$1 ref="" got i
  for ((i = 0; i < ${#kinds[@]}; i++)); do
    got=$(rpc "$i" "block?height=$h" | jq -r '.result.block_id.hash + " app_hash=" + .result.block.header.app_hash') || got="no answer"
    if [[ -z $ref ]]; then
      ref=$got
    elif [[ $got != "$ref" ]]; then
      fail "height $h: node$i has $got, node0 has $ref"
    fi
  done
  say "height $h: block $ref on all ${#kinds[@]} nodes"
}
