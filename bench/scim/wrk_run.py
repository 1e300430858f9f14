#!/usr/bin/env python3
"""Run one wrk scenario (an optional warm-up, then the measured run) and record its figures.

  wrk_run.py URL SCRIPT --name NAME [--duration 20s] [--warmup 5s] [--connections 32]
             [--threads 2] [--record FILE KEY]

SCRIPT is a Lua file of bench/scim/ (its environment variables pass through). Prints one
Markdown row (scenario, requests/s, p50, p99, non-2xx / socket errors); with --record, also
stores {rps, p50_ms, p99_ms, requests, non_2xx, socket_errors, ...} under KEY in the JSON
object of FILE (created if missing). Exits non-zero when wrk is missing or fails.
"""
import argparse, json, os, re, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def millis(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return round(float(m.group(1)) * UNITS[m.group(2)], 3) if m else None


def parse(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise ValueError("no Requests/sec in wrk output:\n" + out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": millis(lat.get("50", "")),
        "p90_ms": millis(lat.get("90", "")),
        "p99_ms": millis(lat.get("99", "")),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": dict(zip(["connect", "read", "write", "timeout"],
                                  map(int, errors.groups()))) if errors else {},
    }


def wrk(url, script, duration, connections, threads):
    # A 10 s timeout (wrk: 2 s) so that a slow peer answering in seconds is measured, not dropped.
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--timeout", "10s", "--latency",
           "-s", os.path.join(HERE, script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("script")
    p.add_argument("--name", required=True)
    p.add_argument("--duration", default="20s")
    p.add_argument("--warmup", default="5s", help="0 for none")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--record", nargs=2, metavar=("FILE", "KEY"))
    a = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    if a.warmup not in ("0", "0s", ""):
        wrk(a.url, a.script, a.warmup, a.connections, a.threads)
    figures = parse(wrk(a.url, a.script, a.duration, a.connections, a.threads))
    if figures["requests"] and figures["socket_errors"].get("timeout", 0) >= figures["requests"]:
        # wrk counts an answer slower than its timeout as a timeout and leaves it out of the
        # latency histogram: every answer took longer than the timeout.
        figures.update(p50_ms=None, p90_ms=None, p99_ms=None, every_answer_over_timeout=True)
    if not figures["requests"]:
        # Nothing answered within the timeout under this load: measure one request at a time,
        # so that the report can say what a single request costs.
        figures["one_connection"] = parse(wrk(a.url, a.script, a.duration, 1, 1))
    figures.update(name=a.name, script=a.script, duration=a.duration, warmup=a.warmup,
                   connections=a.connections, threads=a.threads)
    errors = ", ".join(f"{k} {v}" for k, v in figures["socket_errors"].items() if v)
    print(f"| {a.name} | {figures['rps']:,.0f} | {figures['p50_ms']} ms | {figures['p99_ms']} ms "
          f"| {figures['non_2xx']}{' / socket errors: ' + errors if errors else ''} |", flush=True)
    if "one_connection" in figures:
        one = figures["one_connection"]
        print(f"| {a.name}, one connection (nothing answered above) | {one['rps']:,.1f} | {one['p50_ms']} ms "
              f"| {one['p99_ms']} ms | {one['non_2xx']} |", flush=True)
    if a.record:
        path, key = a.record
        data = {}
        if os.path.exists(path) and os.path.getsize(path):
            with open(path) as f:
                data = json.load(f)
        data.setdefault("scenarios", {})[key] = figures
        with open(path, "w") as f:
            json.dump(data, f, indent=2)


if __name__ == "__main__":
    main()
