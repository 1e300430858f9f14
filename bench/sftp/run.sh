#!/usr/bin/env bash
# SFTP upload benchmark (issue 5): a release `rollcall serve` on SQLite, and the OpenSSH `sftp`
# client uploading one SIZE_MB file over loopback, ROUNDS times. The time runs from the
# client's start to its exit, and `put` returns only after the server acknowledged the close,
# i.e. after the file is stored in the database with its queued run. Run workers are off
# (ROLLCALL_RUN_WORKERS=0) so that only the transfer is measured.
#
#   bash bench/sftp/run.sh             # 100 MB, 3 rounds
#   SIZE_MB=20 ROUNDS=1 bash bench/sftp/run.sh
#   bash bench/sftp/run.sh --json FILE # also write the figures as JSON (bench/run.sh does)
#
# ROLLCALL_BIN names a binary already built (bench/run.sh builds once).
set -euo pipefail
cd "$(dirname "$0")/../.."
JSON=
while [ $# -gt 0 ]; do
  case $1 in
    --json) JSON=$2; shift 2 ;;
    *) echo "usage: bash bench/sftp/run.sh [--json FILE]" >&2; exit 2 ;;
  esac
done
SIZE_MB=${SIZE_MB:-100}
ROUNDS=${ROUNDS:-3}
command -v sftp >/dev/null || { echo "sftp is not installed (apt-get install openssh-client)" >&2; exit 2; }
command -v ssh-keygen >/dev/null || { echo "ssh-keygen is not installed (apt-get install openssh-client)" >&2; exit 2; }

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
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
"$BIN" org create "${DATA[@]}" --name Bench --provisioning >/dev/null
"$BIN" config create "${DATA[@]}" --org Bench --name Payroll --kind sftp --mode active \
  --mapping "$WORK/mapping.toml" --sftp-user bench --sftp-key "$WORK/key.pub" >/dev/null

# A deterministic CSV of SIZE_MB megabytes (rows of people; content does not matter here).
python3 - "$SIZE_MB" > "$WORK/upload.csv" <<'PY'
import sys
target = int(sys.argv[1]) * 1000 * 1000
out = sys.stdout
out.write("EmployeeNumber,UserName,Active,Padding\n")
written, i = 0, 0
pad = "x" * 60
while written < target:
    line = f"E{i:09d},user{i:09d}@bench.example,true,{pad}\n"
    out.write(line)
    written += len(line)
    i += 1
PY
BYTES=$(stat -c %s "$WORK/upload.csv")

ROLLCALL_RUN_WORKERS=0 ROLLCALL_MAX_FILE_BYTES=$((2 * BYTES)) "$BIN" serve "${DATA[@]}" \
  --http 127.0.0.1:0 --sftp 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do grep -q 'sftp listening' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^sftp listening on .*:\([0-9]*\)$/\1/p' "$WORK/serve.out")

echo "| round | bytes | seconds | MB/s |"
echo "|---|---|---|---|"
best=0
for round in $(seq 1 "$ROUNDS"); do
  start=$(date +%s.%N)
  printf 'put %s upload-%s.csv\n' "$WORK/upload.csv" "$round" | sftp -q -b - -i "$WORK/key" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
    -o IdentitiesOnly=yes -P "$PORT" bench@127.0.0.1 >/dev/null
  end=$(date +%s.%N)
  python3 - "$BYTES" "$start" "$end" "$round" "$WORK/rounds.jsonl" <<'PY'
import json, sys
b, s, e, r = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
t = e - s
print(f"| {r} | {b:,} | {t:.2f} | {b / t / 1e6:.1f} |")
with open(sys.argv[5], "a") as f:
    f.write(json.dumps({"round": int(r), "bytes": b, "seconds": round(t, 3), "mb_per_s": round(b / t / 1e6, 1)}) + "\n")
PY
done
RSS=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$SERVER/status)
echo
echo "server peak RSS: $RSS MiB"
if [ -n "$JSON" ]; then
  python3 - "$WORK/rounds.jsonl" "$JSON" "$RSS" <<'PY'
import json, sys
rounds = [json.loads(line) for line in open(sys.argv[1])]
json.dump({"rounds": rounds, "peak_rss_mib": int(sys.argv[3]),
           "best_mb_per_s": max(r["mb_per_s"] for r in rounds),
           "median_mb_per_s": sorted(r["mb_per_s"] for r in rounds)[len(rounds) // 2]},
          open(sys.argv[2], "w"), indent=2)
PY
fi
"$BIN" runs list "${DATA[@]}" --org Bench | head -5
