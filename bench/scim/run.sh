#!/usr/bin/env bash
# SCIM benchmark (issue 3): a release `rollcall serve` on SQLite with USERS users, loaded by wrk
# from a separate process with CONNECTIONS connections.
#
#   bash bench/scim/run.sh                 # 100,000 users, 32 connections, 20 s per scenario
#   USERS=10000 bash bench/scim/run.sh     # the same at 10,000 users
#
# Needs wrk (Debian package `wrk`) and python3. Prints one Markdown row per scenario
# (requests/s, p50, p99, non-2xx) and the server's peak RSS (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${USERS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

cargo build --release -q -p rollcall
BIN=$PWD/target/release/rollcall
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
DATA=(--data-dir "$WORK/data")

# Seed the organisation from an HR file (the fastest way in), then a SCIM token.
python3 - "$USERS" > "$WORK/people.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("EmployeeNumber,UserName,WorkEmail,FirstName,LastName,Active")
for i in range(1, n + 1):
    print(f"E{i:07d},user{i:07d}@bench.example,user{i:07d}@bench.example,Given{i},Family{i},true")
PY
cat > "$WORK/mapping.toml" <<'TOML'
[fields]
external_id = "EmployeeNumber"
employee_id = "EmployeeNumber"
username    = "UserName"
email       = "WorkEmail"
first_name  = "FirstName"
second_name = "LastName"
active      = "Active"
TOML
$BIN org create "${DATA[@]}" --name Bench --provisioning >/dev/null
$BIN config create "${DATA[@]}" --org Bench --name HR --kind sftp --mapping "$WORK/mapping.toml" --mode active >/dev/null
seed_started=$(date +%s.%N)
$BIN sync "${DATA[@]}" --org Bench --config HR "$WORK/people.csv" --json >/dev/null
echo "seeded $USERS users in $(python3 -c "print(round($(date +%s.%N) - $seed_started, 1))") s" >&2
TOKEN=$($BIN token create "${DATA[@]}" --org Bench)
export TOKEN USERS

$BIN serve "${DATA[@]}" --http 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
SERVER=$!
for _ in $(seq 1 100); do grep -q "listening" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^http listening on //p' "$WORK/serve.out" | head -n1)
URL="http://$ADDR"

row() { # scenario, wrk output
  python3 - "$1" <<'PY' "$2"
import re, sys
name, out = sys.argv[1], open(sys.argv[2]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
print(f"| {name} | {float(rps):,.0f} | {lat.get('50')} | {lat.get('99')} | {bad.group(1) if bad else 0}{' / ' + errors.group(1) if errors else ''} |")
PY
}
bench() { # scenario, script
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "bench/scim/$2" "$URL" > "$WORK/$2.out"
  row "$1" "$WORK/$2.out"
}

echo "| scenario ($USERS users, $CONNECTIONS connections) | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
bench "GET userName eq (random user)" get_filter.lua
bench "POST new user" post.lua
# The users POSTed above are SCIM-managed: PATCH flips them.
python3 - "$URL" "$TOKEN" "$USERS" > "$WORK/ids.txt" <<'PY'
import json, sys, urllib.request
url, token, seeded = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = seeded + 1
for _ in range(50):
    req = urllib.request.Request(f"{url}/scim/v2/Users?startIndex={start}&count=200&attributes=id",
                                 headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    for r in page["Resources"]:
        print(r["id"])
    if len(page["Resources"]) < 200:
        break
    start += 200
PY
IDS_FILE="$WORK/ids.txt" bench "PATCH active \"False\"/\"True\" (Entra)" patch.lua
bench "GET page of 100 (random startIndex)" pages.lua
echo
echo "peak RSS of serve: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
