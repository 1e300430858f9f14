#!/usr/bin/env bash
# Runs page benchmark (issue 6): an organisation with RUNS runs (default 100,000) on SQLite; a
# release `rollcall serve`; the first page of the User Provisioning page and of its API, with
# and without filters, requested by wrk over one connection for DURATION each (one request at
# a time, so the latency is a page's own). Prints wrk's latency percentiles per URL.
#
#   bash bench/admin/run.sh
#   RUNS=10000 DURATION=5s bash bench/admin/run.sh
#   bash bench/admin/run.sh --json FILE   # also write the figures as JSON (bench/run.sh does)
#
# ROLLCALL_BIN names a binary already built (bench/run.sh builds once).
set -euo pipefail
cd "$(dirname "$0")/../.."
JSON=
while [ $# -gt 0 ]; do
  case $1 in
    --json) JSON=$2; shift 2 ;;
    *) echo "usage: bash bench/admin/run.sh [--json FILE]" >&2; exit 2 ;;
  esac
done
RUNS=${RUNS:-100000}
DURATION=${DURATION:-10s}
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 2; }
done

if [ -z "${ROLLCALL_BIN:-}" ]; then
  cargo build --release -q -p rollcall
  ROLLCALL_BIN=$PWD/target/release/rollcall
fi
BIN=$ROLLCALL_BIN
WORK=$(mktemp -d)
SERVER=
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
DATA=(--data-dir "$WORK/data")
cat > "$WORK/mapping.toml" <<'TOML'
[fields]
external_id = "EmployeeNumber"
username    = "UserName"
active      = "Active"
TOML
"$BIN" org create "${DATA[@]}" --name Bench --provisioning >/dev/null
for name in Payroll Contractors Interns; do
  "$BIN" config create "${DATA[@]}" --org Bench --name "$name" --kind sftp --mode active \
    --mapping "$WORK/mapping.toml" >/dev/null
done
echo 'a long benchmark password' | "$BIN" admin create "${DATA[@]}" --org Bench \
  --email people@bench.example --role people_admin --sync-access --password-stdin >/dev/null

# RUNS runs over the last 400 days, deterministic, written straight into the database.
python3 - "$WORK/data/rollcall.db" "$RUNS" <<'PY'
import random, sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
org = con.execute("SELECT id FROM organisations").fetchone()[0]
configs = [r[0] for r in con.execute("SELECT id FROM source_configs ORDER BY name")]
rng = random.Random(42)
now = int(time.time() * 1000)
statuses = ["success"] * 80 + ["needs_attention"] * 12 + ["data_load_failed"] * 5 + ["above_deactivation_threshold"] * 2 + ["cancelled"]
rows = []
for i in range(n):
    t = now - rng.randrange(400 * 86400 * 1000)
    status = rng.choice(statuses)
    rows.append((str(uuid.UUID(int=rng.getrandbits(128))), org, rng.choice(configs), "SFTP Sync", "sftp",
                 f"staff-{i}.csv", status, 0, t, t, t + rng.randrange(1000, 60000),
                 rng.randrange(100), rng.randrange(100), rng.randrange(5), 0, rng.randrange(10000), rng.randrange(10), 0))
con.executemany("""INSERT INTO sync_runs (id, org_id, config_id, connector, trigger_kind, file_name, status, dry_run,
    queued_at, started_at, ended_at, created, updated, deactivated, reactivated, unchanged, skipped, warnings)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
con.commit()
print(f"seeded {n} runs", file=sys.stderr)
PY

"$BIN" serve "${DATA[@]}" --http 127.0.0.1:0 --sftp 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do grep -q 'http listening' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^http listening on //p' "$WORK/serve.out")
COOKIE=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
  -d '{"email":"people@bench.example","password":"a long benchmark password"}' \
  "http://$ADDR/api/v1/session" | sed -n 's/^set-cookie: \(rollcall_session=[^;]*\).*/\1/ip' | tr -d '\r')
CONFIG=$(sqlite3 "$WORK/data/rollcall.db" "SELECT id FROM source_configs WHERE name = 'Contractors'" 2>/dev/null \
  || python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT id FROM source_configs WHERE name='Contractors'\").fetchone()[0])" "$WORK/data/rollcall.db")

echo "| URL (first page) | p50 | p90 | p99 | requests |"
echo "|---|---|---|---|---|"
for path in \
  "/api/v1/sync-runs" \
  "/api/v1/sync-runs?range=30d&status=needs_attention,data_load_failed" \
  "/api/v1/sync-runs?configuration=$CONFIG&sort=oldest" \
  "/admin/provisioning" \
  "/admin/provisioning?range=7d&status=success&configuration=$CONFIG"; do
  out=$(wrk -t1 -c1 -d"$DURATION" --latency -H "Cookie: $COOKIE" "http://$ADDR$path")
  p50=$(echo "$out" | awk '$1=="50%"{print $2}')
  p90=$(echo "$out" | awk '$1=="90%"{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  n=$(echo "$out" | awk '/requests in/{print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  echo "| \`${path/$CONFIG/CONFIG}\` | $p50 | $p90 | $p99 | $n${non2xx:+ ($non2xx non-2xx)} |"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${path/$CONFIG/CONFIG}" "$p50" "$p90" "$p99" "$n" "${non2xx:-0}" >> "$WORK/urls.tsv"
done
RSS=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$SERVER/status)
echo
echo "server peak RSS: $RSS MiB"
if [ -n "$JSON" ]; then
  python3 - "$WORK/urls.tsv" "$JSON" "$RSS" "$RUNS" "$DURATION" <<'PY'
import json, re, sys
def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 3) if m else None
urls = []
for line in open(sys.argv[1]):
    path, p50, p90, p99, n, bad = line.rstrip("\n").split("\t")
    urls.append({"url": path, "p50_ms": ms(p50), "p90_ms": ms(p90), "p99_ms": ms(p99),
                 "requests": int(n), "non_2xx": int(bad or 0)})
json.dump({"runs": int(sys.argv[4]), "duration": sys.argv[5], "connections": 1, "urls": urls,
           "peak_rss_mib": int(sys.argv[3])}, open(sys.argv[2], "w"), indent=2)
PY
fi
