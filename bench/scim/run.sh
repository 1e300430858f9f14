#!/usr/bin/env bash
# SCIM benchmark (issue 3): a release `rollcall serve` on SQLite with USERS users, loaded by wrk
# from a separate process with CONNECTIONS connections.
#
#   bash bench/scim/run.sh                 # 100,000 users, 32 connections, 20 s per scenario
#   USERS=10000 bash bench/scim/run.sh     # the same at 10,000 users
#   bash bench/scim/run.sh --json FILE     # also write the figures as JSON (bench/run.sh does)
#
#   # PostgreSQL (issue 22): a fresh database on that server, seeded by the same `rollcall sync`
#   # and measured at once (nothing analysed by hand), dropped at the end. Needs psql.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test USERS=20000 SCENARIOS=get_filter \
#     bash bench/scim/run.sh
#
# PG_ANALYZE=1 runs `ANALYZE` by hand after the seed (the reference of issue 22: the same
# database once PostgreSQL has statistics). SCENARIOS picks some of `get_filter post patch
# pages` (default: all; patch needs post, whose users it flips).
#
# Each scenario runs WARMUP (default 5s; 0 for none) before its measured DURATION. Needs wrk
# (Debian package `wrk`) and python3. Prints one Markdown row per scenario (requests/s, p50,
# p99, non-2xx), the server's peak RSS (VmHWM) and which of Entra's requests it handles
# (bench/scim/entra_probe.py, sent after the load). ROLLCALL_BIN names a binary already built
# (bench/run.sh builds once); otherwise the release build is made here. PROFILE=FILE also writes
# a flat perf profile of the server under GET-by-filter load to FILE (needs perf).
set -euo pipefail
cd "$(dirname "$0")/../.."
JSON=
while [ $# -gt 0 ]; do
  case $1 in
    --json) JSON=$2; shift 2 ;;
    *) echo "usage: bash bench/scim/run.sh [--json FILE]" >&2; exit 2 ;;
  esac
done
USERS=${USERS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
THREADS=${THREADS:-2}
SCENARIOS=${SCENARIOS:-get_filter post patch pages}
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 2; }
done
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if want patch && ! want post; then
  echo "SCENARIOS: patch needs post (it flips the users POSTed)" >&2; exit 2
fi

if [ -z "${ROLLCALL_BIN:-}" ]; then
  cargo build --release -q -p rollcall
  ROLLCALL_BIN=$PWD/target/release/rollcall
fi
BIN=$ROLLCALL_BIN
WORK=$(mktemp -d)
SERVER=
BENCH_DB=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "$BENCH_DB" ]; then psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
DATA=(--data-dir "$WORK/data")
BACKEND=sqlite
if [ -n "${DATABASE_URL:-}" ]; then
  command -v psql >/dev/null || { echo "DATABASE_URL needs psql (apt-get install postgresql-client)" >&2; exit 2; }
  BENCH_DB=rollcall_bench_$$
  psql "$DATABASE_URL" -qc "CREATE DATABASE $BENCH_DB"
  DATA+=(--database-url "${DATABASE_URL%/*}/$BENCH_DB")
  BACKEND="postgres (autovacuum $(psql "$DATABASE_URL" -Atc 'SHOW autovacuum'))"
fi
echo "backend: $BACKEND" >&2

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
SEED_S=$(python3 -c "print(round($(date +%s.%N) - $seed_started, 1))")
echo "seeded $USERS users in $SEED_S s" >&2
if [ -n "$BENCH_DB" ] && [ "${PG_ANALYZE:-}" = 1 ]; then
  psql "${DATABASE_URL%/*}/$BENCH_DB" -qc "ANALYZE"
  echo "analysed by hand after the seed" >&2
fi
TOKEN=$($BIN token create "${DATA[@]}" --org Bench)
export TOKEN USERS

$BIN serve "${DATA[@]}" --http 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
SERVER=$!
for _ in $(seq 1 100); do grep -q "listening" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^http listening on //p' "$WORK/serve.out" | head -n1)
URL="http://$ADDR"
# The seed must be there: a filter that matches nobody also answers 200.
for probe_user in 1 "$USERS"; do
  name=$(printf 'USER%07d%%40BENCH.EXAMPLE' "$probe_user")
  curl -sf -H "Authorization: Bearer $TOKEN" "$URL/scim/v2/Users?filter=userName+eq+%22$name%22" \
    | grep -q '"totalResults":1' || { echo "bench/scim: seeded user $probe_user not found over SCIM" >&2; exit 1; }
done

OUT="$WORK/figures.json"
bench() { # scenario, script, key
  python3 bench/scim/wrk_run.py "$URL" "$2" --name "$1" --duration "$DURATION" --warmup "$WARMUP" \
    --connections "$CONNECTIONS" --threads "$THREADS" --record "$OUT" "$3"
}

echo "| scenario ($USERS users, $CONNECTIONS connections, $BACKEND) | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
if want get_filter; then bench "GET userName eq (random user)" get_filter.lua get_filter; fi
if want post; then bench "POST new user" post.lua post; fi
if want patch; then
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
IDS_FILE="$WORK/ids.txt" bench "PATCH active \"False\"/\"True\" (Entra)" patch.lua patch
fi
if want pages; then bench "GET page of 100 (random startIndex)" pages.lua pages; fi
RSS=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$SERVER/status)
if [ -n "${PROFILE:-}" ]; then
  # A flat perf profile of the server under 10 s more of the GET-by-filter load (not measured).
  command -v perf >/dev/null || { echo "PROFILE needs perf (apt-get install linux-perf)" >&2; exit 2; }
  perf record -q -F 499 -p "$SERVER" -o "$WORK/perf.data" -- sleep 10 2>/dev/null &
  PERF=$!
  wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s bench/scim/get_filter.lua "$URL" >/dev/null
  wait "$PERF" || true
  { echo "# perf record -F 499 of rollcall serve ($USERS users) under GET userName eq, 10 s, $(date -u +%FT%TZ)"
    perf report -i "$WORK/perf.data" --stdio --sort dso,symbol --percent-limit 0.7 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | sed 's/[[:space:]-]*$//' | head -60
  } > "$PROFILE"
  echo "profile of GET by filter: $PROFILE"
fi
echo
echo "peak RSS of serve: $RSS MiB"
echo "Entra's requests (bench/scim/entra_probe.py):"
python3 bench/scim/entra_probe.py "$URL/scim/v2" "$TOKEN" --json "$WORK/probe.json"
if [ -n "$JSON" ]; then
  python3 - "$OUT" "$JSON" "$USERS" "$SEED_S" "$RSS" "$WORK/probe.json" "$BACKEND" <<'PY'
import json, sys
out, dest, users, seed_s, rss, probe, backend = sys.argv[1:]
data = json.load(open(out))
data.update(name="rollcall", users=int(users), seeded_by="rollcall sync (HR file)",
            seed_s=float(seed_s), peak_rss_mib=int(rss), entra_probe=json.load(open(probe)),
            backend=backend)
json.dump(data, open(dest, "w"), indent=2)
PY
fi
