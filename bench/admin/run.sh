#!/usr/bin/env bash
# Runs page benchmark (issue 6): an organisation with RUNS runs (default 100,000) on SQLite; a
# release `rollcall serve`; the first page of the User Provisioning page and of its API, with
# and without filters, requested by wrk over one connection for DURATION each (one request at
# a time, so the latency is a page's own). Prints wrk's latency percentiles per URL.
#
#   bash bench/admin/run.sh
#   RUNS=10000 DURATION=5s bash bench/admin/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-100000}
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

cargo build --release -q -p rollcall
BIN=$PWD/target/release/rollcall
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
done
echo
echo "server peak RSS: $(grep VmHWM /proc/$SERVER/status | awk '{print $2 / 1024 " MiB"}')"
