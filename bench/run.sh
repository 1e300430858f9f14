#!/usr/bin/env bash
# The benchmark suite (issue 7): rollcall beside the limit of this machine and beside two
# open-source SCIM servers, in one run, so that every headline figure is a ratio.
#
#   bash bench/run.sh            # the full run: 100,000 SCIM users, 20 s per scenario, the
#                                # issues' file sizes (about 25 minutes on the 2-core VM)
#   bash bench/run.sh --quick    # small sizes and 3 s scenarios, under 3 minutes once built
#
# Builds rollcall, the csv floor and bench/limit in release mode once, then runs:
#   1. SCIM on rollcall (bench/scim/run.sh) and the limit (bench/limit: axum + one indexed
#      SQLite lookup + a fixed ListResponse) at the same size, under the same wrk load;
#      again at the peers' size (full run: 10,000 users);
#   2. the peers (bench/peers/run.sh: scim2-server from PyPI, SCIMMY from npm, installed into
#      target/bench-peers/), seeded over their own SCIM POST, with the Entra probe;
#   3. file sync (bench/file_sync/run.py, with its csv-parse and sqlite3-import floors);
#   4. SFTP upload (bench/sftp/run.sh); 5. the runs page (bench/admin/run.sh).
# Writes bench/results/latest.json and regenerates the summary at the top of bench/RESULTS.md
# (bench/report.py). Needs: cargo, wrk, python3 (+venv), node + npm, curl, sqlite3, OpenSSH's
# sftp and ssh-keygen, and the package registries (PyPI, npm, crates.io) on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "usage: bash bench/run.sh [--quick]" >&2; exit 2 ;;
  esac
done
COMMAND="bench/run.sh${*:+ $*}"

missing=()
for tool in cargo wrk python3 node npm curl sqlite3 sftp ssh-keygen; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/run.sh: missing ${missing[*]}." >&2
  echo "  Debian: apt-get install -y wrk python3-venv nodejs npm curl sqlite3 openssh-client; Rust from rustup" >&2
  exit 2
fi

if [ $QUICK = 1 ]; then
  MODE=quick SCIM_USERS=2000 PEER_USERS=2000 DURATION=3s WARMUP=1s
  FILE_ROWS=20000 XLSX_ROWS=5000 SFTP_MB=20 SFTP_ROUNDS=1 ADMIN_RUNS=10000 ADMIN_DURATION=2s
else
  MODE=full SCIM_USERS=100000 PEER_USERS=10000 DURATION=20s WARMUP=5s
  FILE_ROWS=1000000 XLSX_ROWS=200000 SFTP_MB=100 SFTP_ROUNDS=3 ADMIN_RUNS=100000 ADMIN_DURATION=10s
fi
CONNECTIONS=32
THREADS=2
export CONNECTIONS THREADS DURATION WARMUP

STARTED=$(date +%s.%N)
# Whether the tree differs from the commit, taken before this run writes its own results.
DIRTY=$(git status --porcelain --untracked-files=no | grep -c . || true)
WORK=$(mktemp -d)
LIMIT=
SAMPLER=
cleanup() {
  if [ -n "$LIMIT" ]; then kill "$LIMIT" 2>/dev/null || true; fi
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }


step "build (release): rollcall, the csv floor, bench/limit"
build_started=$(date +%s.%N)
cargo build --release --locked -q -p rollcall --bin rollcall -p rollcall-hrfile --example csv_floor \
  -p rollcall-bench-limit --bin rollcall-bench-limit
BUILD_S=$(python3 -c "print(round($(date +%s.%N) - $build_started, 1))")
export ROLLCALL_BIN=$PWD/target/release/rollcall
LIMIT_BIN=$PWD/target/release/rollcall-bench-limit
MEASURE_STARTED=$(date +%s.%N)

# Whether the machine was shared: every 5 s, the 1-minute load and whether a compiler or
# linker of someone else's build (rustc, cc1, ld: this script starts none after its build, when sampling starts) ran.
(
  while :; do
    others=$(ps -eo comm= | grep -cE '^(rustc|cc1|cc1plus|ld|ld\.lld|mold|clippy-driver)$' || true)
    printf '%s %s %s\n' "$(date +%s)" "$(cut -d' ' -f1 /proc/loadavg)" "$others"
    sleep 5
  done
) > "$WORK/load.txt" 2>/dev/null &
SAMPLER=$!

run_limit() { # users, json out
  local users=$1 out=$2
  "$LIMIT_BIN" --db "$WORK/limit-$users.db" --users "$users" > "$WORK/limit.out" 2>&1 &
  LIMIT=$!
  for _ in $(seq 1 600); do grep -q 'http listening' "$WORK/limit.out" 2>/dev/null && break; sleep 0.1; done
  local addr
  addr=$(sed -n 's/^http listening on //p' "$WORK/limit.out")
  [ -n "$addr" ] || { cat "$WORK/limit.out" >&2; echo "bench/run.sh: the limit did not start" >&2; exit 1; }
  curl -sf "http://$addr/scim/v2/Users?filter=userName+eq+%22USER0000001%40BENCH.EXAMPLE%22" | grep -q '"totalResults":1' \
    || { echo "bench/run.sh: the limit does not find user 1" >&2; exit 1; }
  echo "| scenario (limit, $users users, $CONNECTIONS connections) | requests/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|"
  USERS=$users TOKEN=unused python3 bench/scim/wrk_run.py "http://$addr" get_filter.lua \
    --name "limit: GET userName eq (random user)" --duration "$DURATION" --warmup "$WARMUP" \
    --connections "$CONNECTIONS" --threads "$THREADS" --record "$out" get_filter
  local rss
  rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$LIMIT/status")
  kill "$LIMIT"; wait "$LIMIT" 2>/dev/null || true; LIMIT=
  python3 - "$out" "$users" "$rss" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d.update(name="limit", users=int(sys.argv[2]), peak_rss_mib=int(sys.argv[3]))
json.dump(d, open(sys.argv[1], "w"), indent=2)
PY
}

step "SCIM: rollcall, $SCIM_USERS users"
PROFILE=
if [ $QUICK = 0 ] && command -v perf >/dev/null; then PROFILE=$PWD/bench/results/profile-get-filter.txt; mkdir -p bench/results; fi
USERS=$SCIM_USERS PROFILE=$PROFILE bash bench/scim/run.sh --json "$WORK/rollcall-$SCIM_USERS.json"
step "SCIM: the limit, $SCIM_USERS users"
run_limit "$SCIM_USERS" "$WORK/limit-$SCIM_USERS.json"
if [ "$PEER_USERS" != "$SCIM_USERS" ]; then
  step "SCIM: rollcall, $PEER_USERS users"
  USERS=$PEER_USERS bash bench/scim/run.sh --json "$WORK/rollcall-$PEER_USERS.json"
  step "SCIM: the limit, $PEER_USERS users"
  run_limit "$PEER_USERS" "$WORK/limit-$PEER_USERS.json"
fi
step "SCIM: peers, $PEER_USERS users"
USERS=$PEER_USERS bash bench/peers/run.sh --json "$WORK/peers.json"
step "file sync: $FILE_ROWS-row CSV, $XLSX_ROWS-row XLSX"
python3 bench/file_sync/run.py --rows "$FILE_ROWS" --xlsx-rows "$XLSX_ROWS" \
  --venv target/bench-peers/xlsx-venv --json "$WORK/file_sync.json"
step "SFTP upload: $SFTP_MB MB x $SFTP_ROUNDS"
SIZE_MB=$SFTP_MB ROUNDS=$SFTP_ROUNDS bash bench/sftp/run.sh --json "$WORK/sftp.json"
step "runs page: $ADMIN_RUNS runs"
RUNS=$ADMIN_RUNS DURATION=$ADMIN_DURATION bash bench/admin/run.sh --json "$WORK/admin.json"

kill "$SAMPLER" 2>/dev/null || true; SAMPLER=
mkdir -p bench/results
python3 - "$WORK" "$MODE" "$COMMAND" "$STARTED" "$MEASURE_STARTED" "$BUILD_S" "$SCIM_USERS" "$PEER_USERS" "$DIRTY" <<'PY'
import json, os, platform, subprocess, sys, time, datetime
work, mode, command, started, measure_started, build_s, scim_users, peer_users, dirty = sys.argv[1:]
load = lambda name: json.load(open(os.path.join(work, name)))
def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
mem_kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
samples = [l.split() for l in open(os.path.join(work, "load.txt")) if len(l.split()) == 3]
loads = [float(s[1]) for s in samples]
foreign = sum(1 for s in samples if int(s[2]) > 0)
def os_name():
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except (OSError, AttributeError):
        return ""
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
users = sorted({int(scim_users), int(peer_users)}, reverse=True)
data = {
    "schema": 1,
    "mode": mode,
    "command": command,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": git("rev-parse", "HEAD"),
    "commit_subject": git("log", "-1", "--format=%s"),
    "dirty": int(dirty) > 0,
    "machine": {
        "cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1048576, 1),
        "kernel": platform.release(), "os": os_name(),
        "load_1m": {"min": min(loads, default=None), "max": max(loads, default=None),
                    "mean": round(sum(loads) / len(loads), 2) if loads else None},
        "samples": len(samples), "samples_with_foreign_builds": foreign,
        "shared": foreign > 0,
    },
    "duration_s": {"total": round(time.time() - float(started), 1), "build": float(build_s),
                   "measurements": round(time.time() - float(measure_started), 1)},
    "sizes": {"scim_users": int(scim_users), "peer_users": int(peer_users)},
    "scim": {
        "rollcall": {str(n): load(f"rollcall-{n}.json") for n in users},
        "limit": {str(n): load(f"limit-{n}.json") for n in users},
        "peers": load("peers.json"),
    },
    "file_sync": load("file_sync.json"),
    "sftp": load("sftp.json"),
    "admin": load("admin.json"),
}
json.dump(data, open("bench/results/latest.json", "w"), indent=2)
PY
# latest.json is the last run of either mode; <mode>.json keeps the last run of each.
python3 bench/report.py bench/results/latest.json bench/RESULTS.md
cp bench/results/latest.json "bench/results/$MODE.json"
echo "wrote bench/results/latest.json and the summary of bench/RESULTS.md in $(python3 -c "print(round($(date +%s.%N) - $STARTED))") s" >&2
