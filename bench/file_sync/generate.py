#!/usr/bin/env python3
"""Deterministic HR files for the file-sync benchmark (issue 4).

  generate.py csv  ROWS OUT.csv [--change PERCENT]   17 columns, ~200 bytes a row
  generate.py xlsx ROWS OUT.xlsx                      the same columns (needs xlsxwriter)

The same ROWS always give the same bytes; --change P alters the job title of P % of the rows
(every (100/P)-th row), as a day's HR changes would.
"""
import sys

HEADER = ["EmployeeNumber", "UserName", "WorkEmail", "FirstName", "LastName", "Mobile",
          "WorkPhone", "Manager", "JobTitle", "Location", "Department", "Company",
          "About", "Active", "StartDate", "EndDate", "CostCentre"]

DEPARTMENTS = ["Engineering", "Sales", "Finance", "Operations", "People", "Legal"]
CITIES = ["London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff"]


def row(i, change_every):
    n = f"{i:07d}"
    title = "Senior Engineer" if change_every and i % change_every == 0 else "Engineer"
    manager = f"E{(i // 10) + 1:07d}" if i > 10 else ""
    # Mobile numbers in the UK 07400-07999 range: valid for libphonenumber and unique per row.
    mobile = f"+447{400000000 + i:09d}"
    return [f"E{n}", f"user{n}@acme.example", f"user{n}@acme.example", f"Given{i}",
            f"Family{i}", mobile, "+44 20 7946 0000" if i % 2 else "", manager, title,
            CITIES[i % 6], DEPARTMENTS[i % 6], "Acme Ltd", f"Employee number {i}",
            "true", f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}", "", f"CC{i % 100:03d}"]


def main():
    kind, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    change = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--change" else 0
    change_every = int(round(100 / change)) if change else 0
    if kind == "csv":
        with open(out, "w", newline="") as f:
            f.write(",".join(HEADER) + "\n")
            for i in range(1, rows + 1):
                f.write(",".join(row(i, change_every)) + "\n")
    else:
        import xlsxwriter
        wb = xlsxwriter.Workbook(out, {"constant_memory": True})
        ws = wb.add_worksheet()
        ws.write_row(0, 0, HEADER)
        for i in range(1, rows + 1):
            ws.write_row(i, 0, row(i, change_every))
        wb.close()


if __name__ == "__main__":
    main()
