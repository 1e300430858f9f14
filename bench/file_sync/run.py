#!/usr/bin/env python3
"""File-sync benchmark (issue 4): wall time and peak RSS of `rollcall sync` on SQLite.

  python3 bench/file_sync/run.py [--rows 1000000] [--xlsx-rows 200000]

Generates the files deterministically (generate.py), measures the floors in the same run
(the csv crate alone; the sqlite3 shell importing the same rows into a table with three
unique indexes in one transaction), then:
  (a) the initial sync, (b) the same file again (all Unchanged), (c) the file with 1 % of
  rows changed, and the initial sync of an XLSX file, each in a fresh process.
Peak RSS is the process's own maximum resident set (wait4's ru_maxrss).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAPPING = """[fields]
external_id = "EmployeeNumber"
username = "UserName"
email = "WorkEmail"
first_name = "FirstName"
second_name = "LastName"
phone_mobile = "Mobile"
phone_work = "WorkPhone"
manager = "Manager"
job_title = "JobTitle"
location = "Location"
department = "Department"
company = "Company"
description = "About"
active = "Active"
start_employment_date = "StartDate"
end_employment_date = "EndDate"
[custom_fields]
CostCentre = "CostCentre"
"""


def measure(cmd, **kw):
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0,):
        print(f"{cmd[0]} exited {code}: {err.strip()[:500]}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--xlsx-rows", type=int, default=200_000)
    a = p.parse_args()
    # Naming a target builds only that target: the binary and the floor are named both.
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "rollcall", "--bin", "rollcall",
                    "-p", "rollcall-hrfile", "--example", "csv_floor"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target/release/rollcall")
    floor = os.path.join(ROOT, "target/release/examples/csv_floor")
    work = tempfile.mkdtemp(prefix="rollcall-bench-")
    try:
        gen = [sys.executable, os.path.join(HERE, "generate.py")]
        people = os.path.join(work, "people.csv")
        changed = os.path.join(work, "people-changed.csv")
        subprocess.run(gen + ["csv", str(a.rows), people], check=True)
        subprocess.run(gen + ["csv", str(a.rows), changed, "--change", "1"], check=True)
        size = os.path.getsize(people)
        rows = []

        wall, rss, out = measure([floor, people])
        rows.append(("floor: csv crate parses the file", wall, rss, out.strip()))
        cols = "EmployeeNumber,UserName,WorkEmail,FirstName,LastName,Mobile,WorkPhone,Manager,JobTitle,Location,Department,Company,About,Active,StartDate,EndDate,CostCentre"
        script = (f"CREATE TABLE people({cols});\n"
                  "CREATE UNIQUE INDEX p1 ON people(EmployeeNumber);\n"
                  "CREATE UNIQUE INDEX p2 ON people(UserName);\n"
                  "CREATE UNIQUE INDEX p3 ON people(WorkEmail);\n"
                  "BEGIN;\n.mode csv\n"
                  f".import --skip 1 {people} people\nCOMMIT;\n")
        if shutil.which("sqlite3"):
            started = time.monotonic()
            proc = subprocess.Popen(["sqlite3", os.path.join(work, "floor.db")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            proc.stdin.write(script.encode()); proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
            rows.append(("floor: sqlite3 shell imports it (3 unique indexes, one transaction)",
                         time.monotonic() - started, usage.ru_maxrss / 1024, ""))

        data = ["--data-dir", os.path.join(work, "data")]
        with open(os.path.join(work, "mapping.toml"), "w") as f:
            f.write(MAPPING)
        subprocess.run([binary, "org", "create", "--name", "Bench", "--provisioning"] + data,
                       check=True, capture_output=True)
        subprocess.run([binary, "config", "create", "--org", "Bench", "--name", "HR", "--kind", "sftp",
                        "--mapping", os.path.join(work, "mapping.toml"), "--mode", "active"] + data,
                       check=True, capture_output=True)
        sync = lambda path: [binary, "sync", "--org", "Bench", "--config", "HR", path, "--json"] + data
        for label, path in [("(a) initial sync", people), ("(b) same file again", people),
                            ("(c) 1 % of rows changed", changed)]:
            wall, rss, out = measure(sync(path))
            try:
                r = json.loads(out)
                summary = (f"{r['status']}: created {r['created']}, updated {r['updated']}, "
                           f"unchanged {r['unchanged']}, skipped {r['skipped']}, warnings {r['warnings']}")
            except ValueError:
                summary = out.strip()[:200]
            rows.append((label, wall, rss, summary))

        if a.xlsx_rows:
            venv = os.path.join(work, "venv")
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin/pip"), "install", "-q", "xlsxwriter==3.2.0"], check=True)
            book = os.path.join(work, "people.xlsx")
            subprocess.run([os.path.join(venv, "bin/python"), os.path.join(HERE, "generate.py"),
                            "xlsx", str(a.xlsx_rows), book], check=True)
            data2 = ["--data-dir", os.path.join(work, "data-xlsx")]
            subprocess.run([binary, "org", "create", "--name", "Bench", "--provisioning"] + data2,
                           check=True, capture_output=True)
            subprocess.run([binary, "config", "create", "--org", "Bench", "--name", "HR", "--kind", "sftp",
                            "--mapping", os.path.join(work, "mapping.toml"), "--mode", "active"] + data2,
                           check=True, capture_output=True)
            wall, rss, out = measure([binary, "sync", "--org", "Bench", "--config", "HR", book, "--json"] + data2)
            try:
                r = json.loads(out)
                summary = f"{r['status']}: created {r['created']}, skipped {r['skipped']}"
            except ValueError:
                summary = out.strip()[:200]
            rows.append((f"XLSX initial sync ({a.xlsx_rows:,} rows, {os.path.getsize(book) / 1e6:.1f} MB)",
                         wall, rss, summary))

        print(f"CSV: {a.rows:,} rows, 17 columns, {size / 1e6:.0f} MB\n")
        print("| step | wall | peak RSS | result |")
        print("|---|---|---|---|")
        for label, wall, rss, note in rows:
            print(f"| {label} | {wall:.1f} s | {rss:.0f} MiB | {note} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
