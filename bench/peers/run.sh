#!/usr/bin/env bash
# SCIM peers (issue 7): the SCIM workloads of bench/scim/ against two open-source SCIM servers a
# user could pick instead of rollcall, each with its own in-memory storage, installed from the
# package registries into a scratch folder (PEERS_DIR, default target/bench-peers/, gitignored):
#
#   scim2-server  PyPI scim2-server 0.8.3, its own `scim2-server` command (a threading WSGI
#                 server from the standard library, InMemoryStorage), base path /v2
#   scimmy        npm scimmy 1.3.5 + scimmy-routers 1.3.2 on express 4.21 (the version scimmy-routers is tested with), wired by
#                 bench/peers/scimmy-app.mjs (a Map as storage), base path /scim/v2
#
# Each peer is seeded with USERS users over its own SCIM POST (the same names as rollcall's
# seed), probed with bench/scim/entra_probe.py (which of Entra's requests it refuses), then
# loaded by wrk with bench/scim's Lua scripts. A peer that refuses Entra's string-boolean PATCH
# is also measured with RFC booleans (PATCH_FORM=rfc), reported separately.
#
#   bash bench/peers/run.sh [--json FILE]       # USERS=10000 DURATION=20s WARMUP=5s
set -euo pipefail
cd "$(dirname "$0")/../.."
JSON=
while [ $# -gt 0 ]; do
  case $1 in
    --json) JSON=$2; shift 2 ;;
    *) echo "usage: bash bench/peers/run.sh [--json FILE]" >&2; exit 2 ;;
  esac
done
USERS=${USERS:-10000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
THREADS=${THREADS:-2}
PEERS_DIR=${PEERS_DIR:-$PWD/target/bench-peers}
for tool in wrk python3 node npm curl; do
  command -v $tool >/dev/null || { echo "bench/peers: $tool is not installed (apt-get install wrk python3 python3-venv nodejs npm curl)" >&2; exit 2; }
done
mkdir -p "$PEERS_DIR"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)
HERE=$PWD/bench

# --- install (once; kept in PEERS_DIR) --------------------------------------------------
if ! "$PEERS_DIR/venv/bin/python" -c 'import scim2_server' 2>/dev/null; then
  echo "installing scim2-server 0.8.3 from PyPI into $PEERS_DIR/venv" >&2
  python3 -m venv "$PEERS_DIR/venv" || { echo "bench/peers: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 2; }
  "$PEERS_DIR/venv/bin/pip" install -q --disable-pip-version-check "scim2-server==0.8.3"
fi
if ! grep -qs '"version": "4.21.2"' "$PEERS_DIR/node/node_modules/express/package.json" \
   || [ ! -f "$PEERS_DIR/node/node_modules/scimmy-routers/package.json" ]; then
  echo "installing scimmy 1.3.5, scimmy-routers 1.3.2, express 4.21.2 from npm into $PEERS_DIR/node" >&2
  npm install --silent --no-audit --no-fund --prefix "$PEERS_DIR/node" \
    scimmy@1.3.5 scimmy-routers@1.3.2 express@4.21.2 </dev/null
fi
# The app's imports resolve from its own folder, so it runs beside node_modules.
cp bench/peers/scimmy-app.mjs "$PEERS_DIR/node/scimmy-app.mjs"

WORK=$(mktemp -d)
SERVER=
trap 'if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
TOKEN=bench-peer-token
export TOKEN USERS

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_peer() { # name, base path, command...
  local name=$1 base=$2; shift 2
  local out="$WORK/$name.json"
  echo "## $name ($USERS users, seeded over SCIM POST)" >&2
  "$@" > "$WORK/$name.log" 2>&1 &
  SERVER=$!
  local url="http://127.0.0.1:$PORT"
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$url$base/ServiceProviderConfig" && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$name.log" >&2; echo "bench/peers: $name did not start" >&2; exit 1; }
    sleep 0.1
  done
  local seed_s
  seed_s=$(python3 "$HERE/peers/seed.py" "$url$base" "$TOKEN" "$USERS" "$WORK/$name.ids")
  echo "seeded $USERS users in $seed_s s" >&2
  python3 "$HERE/scim/entra_probe.py" "$url$base" "$TOKEN" --json "$WORK/$name.probe.json" >&2
  export BASE=$base IDS_FILE="$WORK/$name.ids"
  local wrk=(python3 "$HERE/scim/wrk_run.py" "$url" --duration "$DURATION" --warmup "$WARMUP"
             --connections "$CONNECTIONS" --threads "$THREADS")
  echo "| scenario ($name, $USERS users, $CONNECTIONS connections) | requests/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|"
  "${wrk[@]}" get_filter.lua --name "GET userName eq (random user)" --record "$out" get_filter
  "${wrk[@]}" post.lua --name "POST new user" --record "$out" post
  "${wrk[@]}" patch.lua --name "PATCH active \"False\"/\"True\" (Entra)" --record "$out" patch
  if python3 -c 'import json, sys; sys.exit(0 if any(r["name"] == "patch_active_string_false" and not r["ok"] for r in json.load(open(sys.argv[1]))) else 1)' "$WORK/$name.probe.json"; then
    PATCH_FORM=rfc "${wrk[@]}" patch.lua --name "PATCH active false/true (RFC booleans)" --record "$out" patch_rfc
  fi
  "${wrk[@]}" pages.lua --name "GET page of 100 (random startIndex)" --record "$out" pages
  local rss
  rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status")
  echo "peak RSS of $name: $rss MiB" 
  echo
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  python3 - "$out" "$name" "$USERS" "$seed_s" "$rss" "$WORK/$name.probe.json" <<'PY'
import json, sys
out, name, users, seed_s, rss, probe = sys.argv[1:]
data = json.load(open(out))
data.update(name=name, users=int(users), seeded_by="SCIM POST", seed_s=float(seed_s),
            peak_rss_mib=int(rss), entra_probe=json.load(open(probe)))
json.dump(data, open(out, "w"), indent=2)
PY
}

PORT=$(free_port)
run_peer scim2-server /v2 "$PEERS_DIR/venv/bin/scim2-server" --hostname 127.0.0.1 --port "$PORT" --bearer-token "$TOKEN"
PORT=$(free_port)
run_peer scimmy /scim/v2 node "$PEERS_DIR/node/scimmy-app.mjs" "$PORT" "$TOKEN"

if [ -n "$JSON" ]; then
  python3 - "$JSON" "$WORK/scim2-server.json" "$WORK/scimmy.json" <<'PY'
import json, sys
peers = {}
for path in sys.argv[2:]:
    d = json.load(open(path))
    peers[d["name"]] = d
peers["scim2-server"]["version"] = "scim2-server 0.8.3 (PyPI), its scim2-server command"
peers["scimmy"]["version"] = "scimmy 1.3.5 + scimmy-routers 1.3.2 + express 4.21.2 (npm), bench/peers/scimmy-app.mjs"
json.dump(peers, open(sys.argv[1], "w"), indent=2)
PY
fi
