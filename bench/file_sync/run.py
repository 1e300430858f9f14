#!/usr/bin/env python3
"""File-sync benchmark (issue 4): wall time and peak RSS of `rollcall sync` on SQLite.

  python3 bench/file_sync/run.py [--rows 1000000] [--xlsx-rows 200000] [--json FILE] [--venv DIR]

Generates the files deterministically (generate.py), measures the floors in the same run
(the csv crate alone; the sqlite3 shell importing the same rows into a table with three
unique indexes in one transaction), then:
  (a) the initial sync, (b) the same file again (all Unchanged), (c) the file with 1 % of
  rows changed, and the initial sync of an XLSX file, each in a fresh process.
Peak RSS is the process's own maximum resident set (wait4's ru_maxrss). Each step starts after
os.sync(), so that the kernel's write-back of an earlier step is not counted against it.
--json FILE also writes the figures as JSON (bench/run.sh reads it); --venv DIR keeps the
virtualenv with xlsxwriter there between runs instead of making one per run. With the
environment variable ROLLCALL_BIN set (bench/run.sh builds once), nothing is built here: the
binary is ROLLCALL_BIN and the floor target/release/examples/csv_floor.
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
    # The writes of earlier steps (generated files, the floor's database) are flushed first:
    # the kernel writing them back during a step would be counted against it.
    os.sync()
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
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--venv", help="a virtualenv folder for xlsxwriter, kept between runs")
    a = p.parse_args()
    binary = os.environ.get("ROLLCALL_BIN")
    if not binary:
        # Naming a target builds only that target: the binary and the floor are named both.
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "rollcall", "--bin", "rollcall",
                        "-p", "rollcall-hrfile", "--example", "csv_floor"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/release/rollcall")
    floor = os.path.join(ROOT, "target/release/examples/csv_floor")
    if not os.path.exists(floor):
        sys.exit(f"{floor} is missing: cargo build --release -p rollcall-hrfile --example csv_floor")
    work = tempfile.mkdtemp(prefix="rollcall-bench-")
    try:
        gen = [sys.executable, os.path.join(HERE, "generate.py")]
        people = os.path.join(work, "people.csv")
        changed = os.path.join(work, "people-changed.csv")
        subprocess.run(gen + ["csv", str(a.rows), people], check=True)
        subprocess.run(gen + ["csv", str(a.rows), changed, "--change", "1"], check=True)
        size = os.path.getsize(people)
        rows = []
        figures = {}

        wall, rss, out = measure([floor, people])
        rows.append(("floor: csv crate parses the file", wall, rss, out.strip()))
        figures["floor_csv_parse"] = {"wall_s": round(wall, 3), "rss_mib": round(rss), "note": out.strip()}
        cols = "EmployeeNumber,UserName,WorkEmail,FirstName,LastName,Mobile,WorkPhone,Manager,JobTitle,Location,Department,Company,About,Active,StartDate,EndDate,CostCentre"
        script = (f"CREATE TABLE people({cols});\n"
                  "CREATE UNIQUE INDEX p1 ON people(EmployeeNumber);\n"
                  "CREATE UNIQUE INDEX p2 ON people(UserName);\n"
                  "CREATE UNIQUE INDEX p3 ON people(WorkEmail);\n"
                  "BEGIN;\n.mode csv\n"
                  f".import --skip 1 {people} people\nCOMMIT;\n")
        if shutil.which("sqlite3"):
            os.sync()
            started = time.monotonic()
            proc = subprocess.Popen(["sqlite3", os.path.join(work, "floor.db")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            proc.stdin.write(script.encode()); proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                sys.exit(f"sqlite3 import floor failed ({code}): {proc.stderr.read().decode()[:500]}")
            rows.append(("floor: sqlite3 shell imports it (3 unique indexes, one transaction)",
                         time.monotonic() - started, usage.ru_maxrss / 1024, ""))
            figures["floor_sqlite_import"] = {"wall_s": round(rows[-1][1], 3),
                                              "rss_mib": round(rows[-1][2]), "note": ""}
        else:
            print("sqlite3 is not installed (apt-get install sqlite3): the import floor is left out",
                  file=sys.stderr)

        data = ["--data-dir", os.path.join(work, "data")]
        with open(os.path.join(work, "mapping.toml"), "w") as f:
            f.write(MAPPING)
        subprocess.run([binary, "org", "create", "--name", "Bench", "--provisioning"] + data,
                       check=True, capture_output=True)
        subprocess.run([binary, "config", "create", "--org", "Bench", "--name", "HR", "--kind", "sftp",
                        "--mapping", os.path.join(work, "mapping.toml"), "--mode", "active"] + data,
                       check=True, capture_output=True)
        sync = lambda path: [binary, "sync", "--org", "Bench", "--config", "HR", path, "--json"] + data
        for key, label, path in [("initial", "(a) initial sync", people),
                                 ("unchanged", "(b) same file again", people),
                                 ("changed_1pct", "(c) 1 % of rows changed", changed)]:
            wall, rss, out = measure(sync(path))
            try:
                r = json.loads(out)
                summary = (f"{r['status']}: created {r['created']}, updated {r['updated']}, "
                           f"unchanged {r['unchanged']}, skipped {r['skipped']}, warnings {r['warnings']}")
            except ValueError:
                summary = out.strip()[:200]
                r = {}
            rows.append((label, wall, rss, summary))
            figures[key] = {"wall_s": round(wall, 3), "rss_mib": round(rss), "note": summary,
                            "status": r.get("status")}

        if a.xlsx_rows:
            venv = os.path.abspath(a.venv) if a.venv else os.path.join(work, "venv")
            ready = subprocess.run([os.path.join(venv, "bin/python"), "-c", "import xlsxwriter"],
                                   capture_output=True).returncode == 0 if os.path.exists(venv) else False
            if not ready:
                subprocess.run([sys.executable, "-m", "venv", venv], check=True)
                subprocess.run([os.path.join(venv, "bin/pip"), "install", "-q", "--disable-pip-version-check",
                                "xlsxwriter==3.2.0"], check=True)
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
                r = {}
            figures["xlsx_initial"] = {"wall_s": round(wall, 3), "rss_mib": round(rss), "note": summary,
                                       "status": r.get("status"), "bytes": os.path.getsize(book)}
            rows.append((f"XLSX initial sync ({a.xlsx_rows:,} rows, {os.path.getsize(book) / 1e6:.1f} MB)",
                         wall, rss, summary))

        print(f"CSV: {a.rows:,} rows, 17 columns, {size / 1e6:.0f} MB\n")
        print("| step | wall | peak RSS | result |")
        print("|---|---|---|---|")
        for label, wall, rss, note in rows:
            print(f"| {label} | {wall:.1f} s | {rss:.0f} MiB | {note} |")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"rows": a.rows, "xlsx_rows": a.xlsx_rows, "csv_bytes": size,
                           "steps": figures}, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
