//! Black-box tests of file sync (SPEC §2, §3, §5, §6, §11) through the `rollcall` binary:
//! `rollcall sync … --json` for the run's status and counts, and `rollcall runs logs` for the
//! exact log rows an admin downloads.
//!
//! CSV fixtures live in `tests/fixtures/files/`; binary and odd-encoding files (XLSX, Windows-1252,
//! zero-width characters, zip bombs) are generated here.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use serde_json::Value;

/// Every fixture is read through this mapping.
const MAPPING: &str = r#"
[fields]
external_id           = "EmployeeNumber"
username              = "Username"
email                 = "WorkEmail"
phone_mobile          = "Mobile"
active                = "Active"
manager               = "ManagerEmployeeNumber"
start_employment_date = "StartDate"
[custom_fields]
CostCentre = "CostCentre"
"#;

/// The header row of the fixtures, in the mapping's columns.
const HEADER: &str =
    "EmployeeNumber,Username,WorkEmail,Mobile,Active,ManagerEmployeeNumber,StartDate,CostCentre";
const COLUMNS: [&str; 8] = [
    "EmployeeNumber",
    "Username",
    "WorkEmail",
    "Mobile",
    "Active",
    "ManagerEmployeeNumber",
    "StartDate",
    "CostCentre",
];

const LOG_HEADERS: [&str; 8] = [
    "Row",
    "ExternalId",
    "Username",
    "Action",
    "ErrorType",
    "Message",
    "AdditionalData",
    "ChangedFields",
];

/// What a file-level failure leaves in the log besides the line, message and data.
const LOAD_FAILED: &str = "DATA_LOAD_FAILED";

/// Created users list these changed fields (custom fields last).
const CREATED_BASIC: &str = "external_id, username, email";

/// A CPU-bound guard against files built to exhaust memory or time: generous for a debug
/// build on a busy 2-core machine, far below what an allocation of the declared sizes takes.
const QUICK: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/files")
        .join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

fn write_bytes(env: &Env, name: &str, bytes: &[u8]) -> PathBuf {
    let path = env.path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn create_org(env: &Env, org: &str) -> String {
    env.ok(&["org", "create", "--name", org, "--provisioning"])
        .trim()
        .to_owned()
}

/// An active sftp configuration of `org` with [`MAPPING`].
fn create_config(env: &Env, org: &str, name: &str, extra: &[&str]) {
    let mapping = env.write("mapping.toml", MAPPING);
    let mut args = vec![
        "config",
        "create",
        "--org",
        org,
        "--name",
        name,
        "--kind",
        "sftp",
        "--mode",
        "active",
        "--mapping",
        mapping.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    env.ok(&args);
}

/// Organisation "Acme" with the active sftp configuration "Payroll".
fn acme() -> Env {
    let env = Env::new();
    create_org(&env, "Acme");
    create_config(&env, "Acme", "Payroll", &[]);
    env
}

/// The counts of a run, as `--json` and `runs list --json` give them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    created: u64,
    updated: u64,
    deactivated: u64,
    reactivated: u64,
    unchanged: u64,
    skipped: u64,
    failed: u64,
    warnings: u64,
    ignored_inactive: u64,
}

impl Counts {
    fn of(v: &Value) -> Counts {
        let n = |key: &str| {
            v[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
        };
        Counts {
            created: n("created"),
            updated: n("updated"),
            deactivated: n("deactivated"),
            reactivated: n("reactivated"),
            unchanged: n("unchanged"),
            skipped: n("skipped"),
            failed: n("failed"),
            warnings: n("warnings"),
            ignored_inactive: n("ignored_inactive"),
        }
    }
}

/// The outcome of one `rollcall sync … --json`.
struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn id(&self) -> String {
        self.json["run_id"].as_str().expect("run_id").to_owned()
    }

    fn status(&self) -> &str {
        self.json["status"].as_str().expect("status")
    }

    fn counts(&self) -> Counts {
        Counts::of(&self.json)
    }

    /// A run that completed: exit 0 and the status given.
    fn assert_completed(&self, status: &str, counts: Counts) {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        assert_eq!(self.status(), status, "{}", self.json);
        assert_eq!(self.counts(), counts, "{}", self.json);
    }

    /// A run that failed to load: exit 1, Data Load Failed, nothing counted.
    fn assert_load_failed(&self) {
        assert_eq!(self.code, Some(1), "stderr: {}", self.stderr);
        assert_eq!(self.status(), "data_load_failed", "{}", self.json);
        assert_eq!(self.json["status_label"], "Data Load Failed");
        assert_eq!(self.counts(), Counts::default(), "{}", self.json);
    }
}

fn sync_with(
    env: &Env,
    org: &str,
    config: &str,
    file: &Path,
    extra: &[&str],
    vars: &[(&str, &str)],
) -> Run {
    let mut args = vec![
        "sync",
        "--org",
        org,
        "--config",
        config,
        file.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut cmd = env.command(&args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json prints one JSON object on one line; stdout: {stdout:?}, stderr: {stderr}"
    );
    let json: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}; stderr: {stderr}"));
    assert!(json.is_object(), "{json}");
    Run {
        code: out.status.code(),
        json,
        stderr,
        elapsed,
    }
}

/// `rollcall sync --org Acme --config Payroll FILE --json`.
fn sync(env: &Env, file: &Path) -> Run {
    sync_with(env, "Acme", "Payroll", file, &[], &[])
}

/// The run's log as the CSV download gives it, parsed, without the header row (checked).
fn logs(env: &Env, run: &str) -> Vec<Vec<String>> {
    let path = env.path("logs.csv");
    env.ok(&[
        "runs",
        "logs",
        run,
        "--format",
        "csv",
        "--output",
        path.to_str().unwrap(),
    ]);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(&path)
        .unwrap();
    let mut rows = reader.records().map(|r| {
        r.unwrap_or_else(|e| panic!("the CSV log is not valid CSV: {e}"))
            .iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    });
    assert_eq!(rows.next().expect("a header row"), LOG_HEADERS);
    rows.collect()
}

/// Expected log rows, as `[Row, ExternalId, Username, Action, ErrorType, Message,
/// AdditionalData, ChangedFields]`.
fn rows(expected: &[[&str; 8]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

fn assert_logs(env: &Env, run: &Run, expected: &[[&str; 8]]) {
    assert_eq!(logs(env, &run.id()), rows(expected));
}

/// The error log row of a file-level problem.
fn problem<'a>(line: &'a str, message: &'a str, data: &'a str) -> [&'a str; 8] {
    [line, "", "", "Failed", LOAD_FAILED, message, data, ""]
}

/// The runs of Acme, newest first.
fn runs_list(env: &Env) -> Vec<Value> {
    let text = env.ok(&["runs", "list", "--org", "Acme", "--json"]);
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    v.as_array().expect("an array of runs").clone()
}

/// A CSV file of [`HEADER`] and the given lines.
fn csv_file(env: &Env, name: &str, lines: &[&str]) -> PathBuf {
    let mut text = format!("{HEADER}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    env.write(name, &text)
}

/// Run SQL on the test's embedded database, to set up what only the (future) admin panel can
/// make: unmanaged users. `None` when the sqlite3 shell is not installed.
fn sqlite(env: &Env, sql: &str) -> Option<()> {
    let db = env.path("data").join("rollcall.db");
    let out = match Command::new("sqlite3").arg(&db).arg(sql).output() {
        Ok(out) => out,
        Err(_) => {
            assert!(
                std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() != Ok("1"),
                "ROLLCALL_REQUIRE_ALL=1 but the sqlite3 shell is not installed"
            );
            eprintln!("SKIPPED: needs the sqlite3 shell to make unmanaged users");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

// --- XLSX -------------------------------------------------------------------------------------

fn write_row(sheet: &mut Worksheet, row: u32, cells: &[&str]) {
    for (c, text) in cells.iter().enumerate() {
        if !text.is_empty() {
            sheet.write_string(row, c as u16, *text).unwrap();
        }
    }
}

/// A workbook of one sheet: the mapping's header row, then `rows` of text cells.
fn simple_workbook(rows: &[[&str; 8]]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_row(sheet, 0, &COLUMNS);
    for (i, r) in rows.iter().enumerate() {
        write_row(sheet, i as u32 + 1, r);
    }
    workbook.save_to_buffer().unwrap()
}

/// The parts of a zip archive, in order: (name, uncompressed bytes).
fn zip_parts(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut part = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            part.read_to_end(&mut data).unwrap();
            (part.name().unwrap().into_owned(), data)
        })
        .collect()
}

fn zip_options() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
}

/// An archive of `parts`, deflated.
fn zip_archive(parts: &[(String, Vec<u8>)]) -> zip::ZipWriter<Cursor<Vec<u8>>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in parts {
        zip.start_file(name.as_str(), zip_options()).unwrap();
        zip.write_all(data).unwrap();
    }
    zip
}

/// Replace the value of the attribute ` name="…"` in `xml`.
fn set_attribute(xml: &str, name: &str, value: &str) -> String {
    let key = format!(" {name}=\"");
    let start = xml
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + key.len();
    let end = start + xml[start..].find('"').unwrap();
    format!("{}{value}{}", &xml[..start], &xml[end..])
}

/// A cell of a downloaded XLSX log, as text (row numbers are number cells).
fn xlsx_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Empty => String::new(),
        calamine::Data::String(s) => s.clone(),
        calamine::Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
        calamine::Data::Int(n) => n.to_string(),
        other => panic!("unexpected cell in the log: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. File-level failures: Data Load Failed, exit 1, an error log naming every problem
// ---------------------------------------------------------------------------------------------

#[test]
fn windows_1252_file_fails_naming_the_line_column_and_byte() {
    let env = acme();
    // "Café" saved as Windows-1252: é is the single byte 0xE9.
    let mut bytes = format!("{HEADER}\n1,jdoe,jane@acme.com,,true,,,Sales\n").into_bytes();
    bytes.extend_from_slice(b"2,bsmith,bob@acme.com,,true,,,Caf\xe9\n");
    let file = write_bytes(&env, "windows1252.csv", &bytes);
    let run = sync(&env, &file);
    run.assert_load_failed();
    let message =
        "Line 3 is not valid UTF-8 (column 8, byte 4 of the cell): save the file as \"CSV UTF-8\"";
    assert_logs(&env, &run, &[problem("3", message, "line=3")]);
    assert!(run.stderr.contains(message), "{}", run.stderr);

    // Nothing of the valid line 2 was applied: the run is all or nothing.
    let fixed = csv_file(
        &env,
        "fixed.csv",
        &[
            "1,jdoe,jane@acme.com,,true,,,Sales",
            "2,bsmith,bob@acme.com,,true,,,Café",
        ],
    );
    sync(&env, &fixed).assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
}

#[test]
fn semicolon_separated_file_fails_with_the_separator_message() {
    let env = acme();
    let run = sync(&env, &fixture("header_semicolon.csv"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "1",
            "The header row is one column containing ';' or tabs: the separator must be a comma",
            "header=EmployeeNumber;Username;WorkEmail;Mobile;Active;ManagerEmployeeNumber;StartDate;CostCentre",
        )],
    );
}

#[test]
fn tab_separated_file_fails_with_the_separator_message() {
    let env = acme();
    let run = sync(&env, &fixture("header_tab.csv"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "1",
            "The header row is one column containing ';' or tabs: the separator must be a comma",
            "header=EmployeeNumber\tUsername\tWorkEmail\tMobile\tActive\tManagerEmployeeNumber\tStartDate\tCostCentre",
        )],
    );
}

#[test]
fn headers_that_are_not_pascal_case_are_each_named_with_a_suggestion() {
    let env = acme();
    let run = sync(&env, &fixture("header_not_pascal_case.csv"));
    run.assert_load_failed();
    let bad = |header: &str, suggestion: &str| {
        format!(
            "Header '{header}' is not PascalCase ASCII (letters and digits, no spaces, accents or symbols): rename it to '{suggestion}'"
        )
    };
    let work_email = bad("Work Email", "WorkEmail");
    let cost_centre = bad("Cost Centre (EUR)", "CostCentreEur");
    let departement = bad("Département", "Departement");
    let first_name = bad("first_name", "FirstName");
    let location = bad("[Location]", "Location");
    assert_logs(
        &env,
        &run,
        &[
            problem("1", &work_email, "header=Work Email"),
            problem("1", &cost_centre, "header=Cost Centre (EUR)"),
            problem("1", &departement, "header=Département"),
            problem("1", &first_name, "header=first_name"),
            problem("1", &location, "header=[Location]"),
            // The misspelt mapped column is also missing.
            problem(
                "1",
                "Mapped column is missing: WorkEmail. Add it to the file or change the mapping",
                "column=WorkEmail",
            ),
        ],
    );
}

#[test]
fn duplicate_headers_fail_naming_both_columns() {
    let env = acme();
    let run = sync(&env, &fixture("header_duplicate.csv"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "1",
            "Header 'Active' appears twice (columns 5 and 9): keep one",
            "header=Active",
        )],
    );
}

#[test]
fn missing_mapped_columns_fail_naming_each_column() {
    let env = acme();
    let run = sync(&env, &fixture("header_missing_mapped_columns.csv"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "1",
            "Mapped columns are missing: Mobile, WorkEmail. Add them to the file or change the mapping",
            "column=Mobile; column=WorkEmail",
        )],
    );
}

#[test]
fn header_without_data_rows_fails_even_with_blank_rows() {
    let env = acme();
    for name in ["header_only.csv", "header_and_blank_rows.csv"] {
        let run = sync(&env, &fixture(name));
        run.assert_load_failed();
        assert_logs(
            &env,
            &run,
            &[problem(
                "",
                "The file has headers but no data rows: add at least one user",
                "",
            )],
        );
    }
}

#[test]
fn empty_file_fails_asking_for_headers() {
    let env = acme();
    let run = sync(&env, &fixture("empty.csv"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "The file is empty: the first row must hold the column headers",
            "",
        )],
    );
}

#[test]
fn unsupported_extension_fails_naming_the_file() {
    let env = acme();
    let run = sync(&env, &fixture("people.txt"));
    run.assert_load_failed();
    assert_eq!(run.json["file_name"], "people.txt");
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "'people.txt' is neither a .csv nor a .xlsx file: save the HR export as CSV (UTF-8, comma-separated) or as an Excel workbook (.xlsx)",
            "file=people.txt",
        )],
    );
}

#[test]
fn files_over_the_configured_byte_limit_fail_and_files_at_it_load() {
    let env = acme();
    let file = fixture("three_people.csv");
    let size = std::fs::metadata(&file).unwrap().len();
    let below = (size - 1).to_string();
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &file,
        &[],
        &[("ROLLCALL_MAX_FILE_BYTES", &below)],
    );
    run.assert_load_failed();
    let message =
        format!("The file is larger than {below} bytes, the limit: split it into several files");
    let data = format!("max_bytes={below}");
    assert_logs(&env, &run, &[problem("", &message, &data)]);

    // The same limit for a workbook.
    let xlsx = simple_workbook(&[["1", "jdoe", "jane@acme.com", "", "true", "", "", ""]]);
    let xlsx_below = (xlsx.len() - 1).to_string();
    let xlsx_file = write_bytes(&env, "people.xlsx", &xlsx);
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &xlsx_file,
        &[],
        &[("ROLLCALL_MAX_FILE_BYTES", &xlsx_below)],
    );
    run.assert_load_failed();
    let message = format!(
        "The file is larger than {xlsx_below} bytes, the limit: split it into several files"
    );
    let data = format!("max_bytes={xlsx_below}");
    assert_logs(&env, &run, &[problem("", &message, &data)]);

    // Exactly at the limit is allowed.
    let exact = size.to_string();
    sync_with(
        &env,
        "Acme",
        "Payroll",
        &file,
        &[],
        &[("ROLLCALL_MAX_FILE_BYTES", &exact)],
    )
    .assert_completed(
        "success",
        Counts {
            created: 3,
            ..Counts::default()
        },
    );
}

/// The byte limit cuts the file wherever it falls; what was read before the cut must not be
/// reported as a different problem than "too large".
#[test]
fn file_over_the_byte_limit_is_reported_as_too_large_wherever_the_limit_cuts() {
    let env = acme();
    let text = format!("{HEADER}\n1,jdoe,jane@acme.com,,true,,,Café Crème\n");
    let file = env.write("cafe.csv", &text);
    // The limit falls between the two bytes of the first "é" (C3 A9).
    let cut = text.find('é').unwrap() + 1;
    for limit in [cut, HEADER.len() / 2] {
        let limit = limit.to_string();
        let run = sync_with(
            &env,
            "Acme",
            "Payroll",
            &file,
            &[],
            &[("ROLLCALL_MAX_FILE_BYTES", &limit)],
        );
        run.assert_load_failed();
        let message = format!(
            "The file is larger than {limit} bytes, the limit: split it into several files"
        );
        let data = format!("max_bytes={limit}");
        assert_logs(&env, &run, &[problem("", &message, &data)]);
    }
}

#[test]
fn files_over_the_configured_row_limit_fail_and_blank_rows_do_not_count() {
    let env = acme();
    let file = fixture("three_people.csv");
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &file,
        &[],
        &[("ROLLCALL_MAX_FILE_ROWS", "2")],
    );
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "The file has more than 2 data rows, the limit: split it into several files",
            "max_rows=2",
        )],
    );

    // A workbook is limited the same way.
    let xlsx = simple_workbook(&[
        ["1", "jdoe", "jane@acme.com", "", "true", "", "", ""],
        ["2", "bsmith", "bob@acme.com", "", "true", "", "", ""],
        ["3", "csmith", "carol@acme.com", "", "true", "", "", ""],
    ]);
    let xlsx_file = write_bytes(&env, "three.xlsx", &xlsx);
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &xlsx_file,
        &[],
        &[("ROLLCALL_MAX_FILE_ROWS", "2")],
    );
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "The file has more than 2 data rows, the limit: split it into several files",
            "max_rows=2",
        )],
    );

    // Two data rows and blank rows: at the limit, loads.
    let two = csv_file(
        &env,
        "two.csv",
        &[
            "1,jdoe,jane@acme.com,,true,,,",
            ",,,,,,,",
            "2,bsmith,bob@acme.com,,true,,,",
            ",,,,,,,",
        ],
    );
    sync_with(
        &env,
        "Acme",
        "Payroll",
        &two,
        &[],
        &[("ROLLCALL_MAX_FILE_ROWS", "2")],
    )
    .assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
}

#[test]
fn xlsx_that_is_not_a_zip_archive_fails() {
    let env = acme();
    let run = sync(&env, &fixture("not_a_workbook.xlsx"));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "The file is not a valid .xlsx workbook: invalid Zip archive: Could not find EOCD. Open it in Excel and save it as \"Excel Workbook (.xlsx)\"",
            "",
        )],
    );

    // What Excel writes for a password-protected workbook (an OLE compound file).
    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.resize(4096, 0);
    let run = sync(&env, &write_bytes(&env, "protected.xlsx", &ole));
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[problem(
            "",
            "The file is not a valid .xlsx workbook: it is password-protected or an old .xls workbook. Remove the password, or save it as \"Excel Workbook (.xlsx)\". Open it in Excel and save it as \"Excel Workbook (.xlsx)\"",
            "",
        )],
    );
}

#[test]
fn xlsx_header_problems_are_reported_as_for_csv() {
    let env = acme();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_row(
        sheet,
        0,
        &[
            "EmployeeNumber",
            "Username",
            "Mobile",
            "Active",
            "ManagerEmployeeNumber",
            "StartDate",
            "CostCentre",
            "Cost Centre (EUR)",
        ],
    );
    write_row(sheet, 1, &["1", "jdoe", "", "true"]);
    let file = write_bytes(&env, "headers.xlsx", &workbook.save_to_buffer().unwrap());
    let run = sync(&env, &file);
    run.assert_load_failed();
    assert_logs(
        &env,
        &run,
        &[
            problem(
                "1",
                "Header 'Cost Centre (EUR)' is not PascalCase ASCII (letters and digits, no spaces, accents or symbols): rename it to 'CostCentreEur'",
                "header=Cost Centre (EUR)",
            ),
            problem(
                "1",
                "Mapped column is missing: WorkEmail. Add it to the file or change the mapping",
                "column=WorkEmail",
            ),
        ],
    );
}

/// A valid workbook with one more part: `size` zero bytes, which deflate to almost nothing.
fn zip_bomb(size: usize) -> Vec<u8> {
    let workbook = simple_workbook(&[["1", "jdoe", "jane@acme.com", "", "true", "", "", ""]]);
    let mut zip = zip_archive(&zip_parts(&workbook));
    // Deflate's best ratio, about 1,000 to 1, on zeros.
    let dense = zip_options().compression_level(Some(9));
    zip.start_file("xl/media/bomb.bin", dense).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        zip.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    zip.finish().unwrap().into_inner()
}

fn bomb_message(budget: u64) -> String {
    format!(
        "The workbook decompresses to more than {budget} bytes (at part 'xl/media/bomb.bin'), the limit for .xlsx files: it may be a zip bomb. Split the data into several files, or remove images and unused sheets"
    )
}

#[test]
fn xlsx_zip_bomb_is_refused_under_the_configured_decompressed_limit() {
    let env = acme();
    let bomb = zip_bomb(4 << 20);
    assert!(bomb.len() < 64 << 10, "a bomb: {} bytes", bomb.len());
    let file = write_bytes(&env, "bomb.xlsx", &bomb);
    let budget: u64 = 1 << 20;
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &file,
        &[],
        &[("ROLLCALL_MAX_XLSX_DECOMPRESSED_BYTES", &budget.to_string())],
    );
    run.assert_load_failed();
    let data = format!("max_xlsx_decompressed_bytes={budget}");
    assert_logs(&env, &run, &[problem("", &bomb_message(budget), &data)]);

    // The same workbook is fine under the default limit (512 MiB).
    sync(&env, &file).assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
}

#[test]
fn xlsx_zip_bomb_is_refused_under_the_default_limit_without_inflating_it() {
    let env = acme();
    // 600 MiB of zeros in well under 1 MiB.
    let bomb = zip_bomb(600 << 20);
    assert!(bomb.len() < 1 << 20, "a bomb: {} bytes", bomb.len());
    let file = write_bytes(&env, "bomb.xlsx", &bomb);
    let run = sync(&env, &file);
    run.assert_load_failed();
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    let budget: u64 = 512 << 20;
    let data = format!("max_xlsx_decompressed_bytes={budget}");
    assert_logs(&env, &run, &[problem("", &bomb_message(budget), &data)]);
}

#[test]
fn xlsx_claiming_a_cell_at_xfd1048576_is_read_row_by_row_quickly() {
    let env = acme();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_row(sheet, 0, &COLUMNS);
    write_row(sheet, 1, &["1", "jdoe", "jane@acme.com", "", "true"]);
    // The last cell of a sheet: the declared area is 1,048,576 × 16,384 cells.
    sheet.write_number(1_048_575, 16_383, 1.0).unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    assert!(bytes.len() < 16 << 10, "a few KB: {}", bytes.len());
    let parts = zip_parts(&bytes);
    let sheet_xml = &parts
        .iter()
        .find(|(n, _)| n == "xl/worksheets/sheet1.xml")
        .unwrap()
        .1;
    assert!(
        String::from_utf8_lossy(sheet_xml).contains("<dimension ref=\"A1:XFD1048576\"/>"),
        "the workbook declares the whole sheet"
    );
    let file = write_bytes(&env, "far.xlsx", &bytes);
    let run = sync(&env, &file);
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    // The far cell is a value in a column without a header, as a CSV row with one cell too many.
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "1048576",
                "",
                "",
                "Failed",
                "INVALID_VALUE",
                "Cell XFD1048576 has a value but its column has no header: give the column a header or clear the cell",
                "cell=XFD1048576",
                "",
            ],
        ],
    );
}

/// A small workbook whose shared-strings part claims other counts than it holds.
fn with_shared_string_counts(count: Option<&str>, unique: Option<&str>) -> (Vec<u8>, u64, u64) {
    let workbook = simple_workbook(&[["1", "jdoe", "jane@acme.com", "", "true", "", "", ""]]);
    let mut parts = zip_parts(&workbook);
    let (_, sst) = parts
        .iter_mut()
        .find(|(n, _)| n == "xl/sharedStrings.xml")
        .expect("rust_xlsxwriter writes shared strings");
    let mut xml = String::from_utf8(sst.clone()).unwrap();
    if let Some(count) = count {
        xml = set_attribute(&xml, "count", count);
    }
    if let Some(unique) = unique {
        xml = set_attribute(&xml, "uniqueCount", unique);
    }
    *sst = xml.into_bytes();
    let sst_size = sst.len() as u64;
    let total: u64 = parts.iter().map(|(_, d)| d.len() as u64).sum();
    let bytes = zip_archive(&parts).finish().unwrap().into_inner();
    (bytes, sst_size, total)
}

#[test]
fn xlsx_with_an_absurd_shared_strings_unique_count_is_refused_quickly() {
    let env = acme();
    let (bytes, sst_size, _) = with_shared_string_counts(None, Some("4000000000"));
    let file = write_bytes(&env, "sst_unique.xlsx", &bytes);
    let run = sync(&env, &file);
    run.assert_load_failed();
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    let message = format!(
        "The file is not a valid .xlsx workbook: shared strings part 'xl/sharedStrings.xml' claims 4000000000 strings, more than its {sst_size} bytes can hold: the file is damaged or hostile. Open it in Excel and save it as \"Excel Workbook (.xlsx)\""
    );
    assert_logs(&env, &run, &[problem("", &message, "")]);
}

#[test]
fn xlsx_with_an_absurd_shared_strings_count_is_refused_quickly() {
    let env = acme();
    let (bytes, _, total) = with_shared_string_counts(Some("18446744073709551615"), None);
    let file = write_bytes(&env, "sst_count.xlsx", &bytes);
    let run = sync(&env, &file);
    run.assert_load_failed();
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    let message = format!(
        "The file is not a valid .xlsx workbook: shared strings part 'xl/sharedStrings.xml' claims 18446744073709551615 uses of strings, more than the workbook's {total} bytes can hold: the file is damaged or hostile. Open it in Excel and save it as \"Excel Workbook (.xlsx)\""
    );
    assert_logs(&env, &run, &[problem("", &message, "")]);
}

// ---------------------------------------------------------------------------------------------
// 2. Row errors and warnings (SPEC §3)
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_required_fields_fail_the_row() {
    let env = acme();
    let run = sync(&env, &fixture("row_missing_required_field.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 2,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "3",
                "2",
                "",
                "Failed",
                "MISSING_REQUIRED_FIELD",
                "Username is required: fill it in for this row",
                "username=",
                "",
            ],
            [
                "4",
                "",
                "csmith",
                "Failed",
                "MISSING_REQUIRED_FIELD",
                "External ID is required: fill it in for this row Active is required: fill it in for this row",
                "external_id=; active=",
                "",
            ],
        ],
    );
}

#[test]
fn invalid_emails_and_hyperlink_markup_fail_the_row() {
    let env = acme();
    let run = sync(&env, &fixture("row_invalid_email.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 3,
            ..Counts::default()
        },
    );
    let link = r#"<a href="mailto:carol@acme.com">carol@acme.com</a>"#;
    let link_message = format!(
        "Email: '{link}' is not a valid email address: it contains markup or a link; give the plain address only. Use the form name@company.com"
    );
    let link_data = format!("email={link}");
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_EMAIL",
                "Email: 'bob.acme.com' is not a valid email address: it has no '@'. Use the form name@company.com",
                "email=bob.acme.com",
                "",
            ],
            [
                "4",
                "3",
                "csmith",
                "Failed",
                "INVALID_EMAIL",
                &link_message,
                &link_data,
                "",
            ],
            [
                "5",
                "4",
                "dsmith",
                "Failed",
                "INVALID_EMAIL",
                "Email: 'mailto:dave@acme.com' is not a valid email address: the part before '@' contains a character that is not allowed. Use the form name@company.com",
                "email=mailto:dave@acme.com",
                "",
            ],
        ],
    );
}

#[test]
fn national_phone_numbers_fail_without_a_region_and_load_with_one() {
    let env = acme();
    let file = fixture("row_invalid_phone.csv");
    let run = sync(&env, &file);
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, phone_mobile",
            ],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_PHONE",
                "Phone Mobile: '07495 944377' is not a valid phone number: it is not in international form; use international form such as +447495944376 (national numbers need the configuration's phone region)",
                "phone_mobile=07495 944377",
                "",
            ],
        ],
    );

    // A configuration with a default region reads the national number.
    create_config(&env, "Acme", "Payroll GB", &["--phone-region", "GB"]);
    let national = csv_file(
        &env,
        "national.csv",
        &["2,bsmith,bob@acme.com,07495 944377,true,,,"],
    );
    sync_with(&env, "Acme", "Payroll GB", &national, &[], &[]).assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
}

#[test]
fn active_other_than_true_or_false_fails_the_row() {
    let env = acme();
    let run = sync(&env, &fixture("row_invalid_boolean.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_BOOLEAN",
                "Active: 'yes' is not a boolean: use true or false",
                "active=yes",
                "",
            ],
        ],
    );
}

#[test]
fn dates_other_than_iso_fail_the_row() {
    let env = acme();
    let run = sync(&env, &fixture("row_invalid_date.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 2,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, start_employment_date",
            ],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_DATE",
                "Start Employment Date: '31/01/2024' is not a date: use the ISO form YYYY-MM-DD, e.g. 2024-01-31",
                "start_employment_date=31/01/2024",
                "",
            ],
            [
                "4",
                "3",
                "csmith",
                "Failed",
                "INVALID_DATE",
                "Start Employment Date: '2023-02-29' is not a date: use the ISO form YYYY-MM-DD, e.g. 2024-01-31",
                "start_employment_date=2023-02-29",
                "",
            ],
        ],
    );
}

#[test]
fn a_row_with_an_unquoted_comma_fails_as_invalid_value() {
    let env = acme();
    let run = sync(&env, &fixture("row_invalid_value.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, CostCentre",
            ],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_VALUE",
                "Row has 9 cells but the header has 8: check for an unquoted comma or a missing cell",
                "cells=9",
                "",
            ],
        ],
    );
}

#[test]
fn rows_sharing_a_key_inside_the_file_all_fail() {
    let env = acme();
    let run = sync(&env, &fixture("row_duplicates.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 5,
            ..Counts::default()
        },
    );
    let email =
        "Duplicate Email in rows 2, 4: conflicting users don't sync; keep one row per person.";
    let external = "Duplicate External ID in rows 5, 6: conflicting users don't sync; keep one row per person.";
    let both = "Duplicate External ID in rows 5, 6: conflicting users don't sync; keep one row per person. Duplicate Phone Mobile in rows 6, 7: conflicting users don't sync; keep one row per person.";
    let phone = "Duplicate Phone Mobile in rows 6, 7: conflicting users don't sync; keep one row per person.";
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Failed",
                "ORGANISATION_CONFLICT",
                email,
                "email=Jane@Acme.com",
                "",
            ],
            ["3", "2", "bsmith", "Created", "", "", "", CREATED_BASIC],
            [
                "4",
                "3",
                "jdoe2",
                "Failed",
                "ORGANISATION_CONFLICT",
                email,
                "email=jane@acme.com",
                "",
            ],
            [
                "5",
                "4",
                "csmith",
                "Failed",
                "ORGANISATION_CONFLICT",
                external,
                "external_id=4",
                "",
            ],
            [
                "6",
                "4",
                "dsmith",
                "Failed",
                "ORGANISATION_CONFLICT",
                both,
                "external_id=4; phone_mobile=+44 7495 944376",
                "",
            ],
            [
                "7",
                "5",
                "esmith",
                "Failed",
                "ORGANISATION_CONFLICT",
                phone,
                "phone_mobile=+447495944376",
                "",
            ],
        ],
    );
}

/// SPEC §3: rows that share an external ID all fail, "conflicting users don't sync". A twin
/// row that also fails validation is still a second row for the same person.
#[test]
fn a_duplicate_row_that_also_fails_validation_still_blocks_its_twin() {
    let env = acme();
    let run = sync(&env, &fixture("row_duplicate_with_invalid_twin.csv"));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.counts().created, 0, "{}", run.json);
    assert_eq!(run.counts().failed, 2, "{}", run.json);
    let log = logs(&env, &run.id());
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0][0], "2");
    assert_eq!(log[0][3], "Failed", "{log:?}");
    assert_eq!(log[0][4], "ORGANISATION_CONFLICT", "{log:?}");
    assert!(log[0][5].contains("rows 2, 3"), "{log:?}");
    assert_eq!(log[1][3], "Failed", "{log:?}");
}

#[test]
fn values_held_by_another_user_of_the_organisation_conflict() {
    let env = acme();
    sync(&env, &fixture("people_seed.csv")).assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
    let run = sync(&env, &fixture("row_organisation_conflict.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 3,
            ..Counts::default()
        },
    );
    let message = "Another user of the organisation already has this value: correct the source, or change or remove the other user";
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "2",
                "JDOE",
                "Failed",
                "ORGANISATION_CONFLICT",
                message,
                "username=JDOE",
                "",
            ],
            [
                "3",
                "3",
                "csmith",
                "Failed",
                "ORGANISATION_CONFLICT",
                message,
                "email=JANE@acme.com",
                "",
            ],
            [
                "4",
                "4",
                "dsmith",
                "Failed",
                "ORGANISATION_CONFLICT",
                message,
                "phone_mobile=+447495944376",
                "",
            ],
            ["5", "5", "esmith", "Created", "", "", "", CREATED_BASIC],
        ],
    );
}

#[test]
fn email_or_mobile_held_in_another_organisation_is_a_global_conflict_that_names_no_organisation() {
    let env = acme();
    let globex = create_org(&env, "Globex Secret Corp");
    create_config(&env, "Globex Secret Corp", "Payroll", &[]);
    sync_with(
        &env,
        "Globex Secret Corp",
        "Payroll",
        &fixture("people_seed.csv"),
        &[],
        &[],
    )
    .assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );

    let run = sync(&env, &fixture("row_global_conflict.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 2,
            ..Counts::default()
        },
    );
    let message = "This value already belongs to a user outside this organisation; emails and mobile numbers must be unique across all organisations: correct the source";
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Failed",
                "GLOBAL_CONFLICT",
                message,
                "email=JANE@ACME.COM",
                "",
            ],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "GLOBAL_CONFLICT",
                message,
                "phone_mobile=+447495944376",
                "",
            ],
            ["4", "3", "csmith", "Created", "", "", "", CREATED_BASIC],
        ],
    );
    let text = std::fs::read_to_string(env.path("logs.csv")).unwrap();
    assert!(!text.contains("Globex"), "{text}");
    assert!(!text.contains(&globex), "{text}");
}

#[test]
fn a_claim_candidate_that_contradicts_the_row_is_a_match_candidate_conflict() {
    let env = acme();
    sync(&env, &fixture("unmanaged_seed.csv")).assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    // As if an admin had created both users by hand.
    if sqlite(
        &env,
        "UPDATE users SET managed_by = NULL, external_id = NULL, email_from_source = 0",
    )
    .is_none()
    {
        return;
    }
    let run = sync(&env, &fixture("row_match_candidate_conflict.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            updated: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "10",
                "jane.doe",
                "Failed",
                "MATCH_CANDIDATE_CONFLICT",
                "An existing user matches by Email but has a different Username: check which person this is and correct the source or the existing user",
                "username=jane.doe",
                "",
            ],
            // The candidate that agrees is claimed.
            [
                "3",
                "11",
                "bsmith",
                "Updated",
                "",
                "Claimed an existing user matched by Email",
                "",
                "external_id, email",
            ],
        ],
    );
}

#[test]
fn a_user_managed_by_another_configuration_is_not_taken_over() {
    let env = acme();
    create_config(&env, "Acme", "Payroll 2", &[]);
    sync(&env, &fixture("people_seed.csv")).assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
    let run = sync_with(
        &env,
        "Acme",
        "Payroll 2",
        &fixture("row_managed_elsewhere.csv"),
        &[],
        &[],
    );
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Failed",
                "ORGANISATION_CONFLICT",
                "This user is managed by another source configuration of the organisation; remove the row here or stop managing the user there",
                "external_id=1",
                "",
            ],
            ["3", "2", "bsmith", "Created", "", "", "", CREATED_BASIC],
        ],
    );
    // The first configuration still manages its user, unchanged.
    sync(&env, &fixture("people_seed.csv")).assert_completed(
        "success",
        Counts {
            unchanged: 1,
            ..Counts::default()
        },
    );
}

#[test]
fn an_unknown_manager_is_a_warning_and_the_row_applies() {
    let env = acme();
    let run = sync(&env, &fixture("row_manager_not_found.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 3,
            warnings: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Created",
                "MANAGER_NOT_FOUND",
                "Manager '99' matches no user, so the manager was not changed: check the manager's External ID or add the manager to the source",
                "manager=99",
                CREATED_BASIC,
            ],
            // The manager comes later in the file and is found.
            [
                "3",
                "2",
                "bsmith",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, manager",
            ],
            ["4", "3", "boss", "Created", "", "", "", CREATED_BASIC],
        ],
    );
}

#[test]
fn a_manager_loop_is_a_warning_and_the_rows_apply() {
    let env = acme();
    let run = sync(&env, &fixture("row_manager_cycle.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 3,
            warnings: 3,
            ..Counts::default()
        },
    );
    let cycle = |manager: &str, path: &str| {
        format!(
            "Manager '{manager}' would make a reporting loop ({path}), so the manager was not changed: correct the managers in the source"
        )
    };
    let first = cycle("2", "1 → 2 → 1");
    let second = cycle("1", "1 → 2 → 1");
    let own = cycle("3", "3 → 3");
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1",
                "jdoe",
                "Created",
                "MANAGER_CYCLE",
                &first,
                "manager=2",
                CREATED_BASIC,
            ],
            [
                "3",
                "2",
                "boss",
                "Created",
                "MANAGER_CYCLE",
                &second,
                "manager=1",
                CREATED_BASIC,
            ],
            [
                "4",
                "3",
                "self",
                "Created",
                "MANAGER_CYCLE",
                &own,
                "manager=3",
                CREATED_BASIC,
            ],
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn a_leading_bom_is_accepted() {
    let env = acme();
    assert_eq!(
        &std::fs::read(fixture("bom.csv")).unwrap()[..3],
        b"\xEF\xBB\xBF"
    );
    let run = sync(&env, &fixture("bom.csv"));
    run.assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC]],
    );
}

#[test]
fn xlsx_first_sheet_cells_read_as_excel_shows_them() {
    let env = acme();
    let build = |active_jdoe: bool| {
        let mut workbook = Workbook::new();
        let people = workbook.add_worksheet();
        people.set_name("People").unwrap();
        write_row(people, 0, &COLUMNS);
        let shown_as = Format::new().set_num_format("dd/mm/yyyy");
        let iso = Format::new().set_num_format("yyyy-mm-dd");
        let padded = Format::new().set_num_format("00000");
        // Row 2: a 13-digit whole number, a boolean, a date cell, leading zeros typed as text.
        people.write_number(1, 0, 1_234_567_890_123.0).unwrap();
        people.write_string(1, 1, "jdoe").unwrap();
        people.write_string(1, 2, "jane@acme.com").unwrap();
        people.write_boolean(1, 4, active_jdoe).unwrap();
        let start = ExcelDateTime::from_ymd(2024, 1, 31).unwrap();
        people
            .write_datetime_with_format(1, 6, &start, &shown_as)
            .unwrap();
        people.write_string(1, 7, "00123").unwrap();
        // Row 3 is empty. Row 4: a number padded by its format, the manager as a number, a
        // whole number in a text field.
        people.write_number_with_format(3, 0, 42, &padded).unwrap();
        people.write_string(3, 1, "boss").unwrap();
        people.write_string(3, 2, "boss@acme.com").unwrap();
        people.write_boolean(3, 4, true).unwrap();
        people.write_number(3, 5, 1_234_567_890_123.0).unwrap();
        let start = ExcelDateTime::from_ymd(1999, 12, 31).unwrap();
        people
            .write_datetime_with_format(3, 6, &start, &iso)
            .unwrap();
        people.write_number(3, 7, 7.0).unwrap();
        // Row 5: a bad row keeps the sheet's row number.
        write_row(people, 4, &["E5", "cfail", "c@acme.com", "", "yes"]);
        // The second sheet, though active, is never read: its header would fail the mapping.
        let other = workbook.add_worksheet();
        other.set_name("Other").unwrap();
        write_row(other, 0, &["Something Else", "Not A Header"]);
        write_row(other, 1, &["x", "y"]);
        other.set_active(true);
        workbook.save_to_buffer().unwrap()
    };
    let file = write_bytes(&env, "people.xlsx", &build(true));
    let run = sync(&env, &file);
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 2,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            [
                "2",
                "1234567890123",
                "jdoe",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, start_employment_date, CostCentre",
            ],
            [
                "4",
                "00042",
                "boss",
                "Created",
                "",
                "",
                "",
                "external_id, username, email, manager, start_employment_date, CostCentre",
            ],
            [
                "5",
                "E5",
                "cfail",
                "Failed",
                "INVALID_BOOLEAN",
                "Active: 'yes' is not a boolean: use true or false",
                "active=yes",
                "",
            ],
        ],
    );

    // The same values typed as CSV text change nothing: the workbook gave exactly this text.
    let same = csv_file(
        &env,
        "same.csv",
        &[
            "1234567890123,jdoe,jane@acme.com,,true,,2024-01-31,00123",
            "00042,boss,boss@acme.com,,true,1234567890123,1999-12-31,7",
        ],
    );
    let run = sync(&env, &same);
    run.assert_completed(
        "success",
        Counts {
            unchanged: 2,
            ..Counts::default()
        },
    );

    // A boolean cell FALSE deactivates.
    let file = write_bytes(&env, "leaver.xlsx", &build(false));
    let run = sync(&env, &file);
    run.assert_completed(
        "needs_attention",
        Counts {
            deactivated: 1,
            unchanged: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_eq!(
        logs(&env, &run.id())[0],
        rows(&[[
            "2",
            "1234567890123",
            "jdoe",
            "Deactivated",
            "",
            "",
            "",
            "active"
        ]])[0]
    );
}

/// The workbook with the text of one part changed.
fn edit_part(bytes: &[u8], part: &str, change: impl Fn(&str) -> String) -> Vec<u8> {
    let mut parts = zip_parts(bytes);
    let (_, data) = parts
        .iter_mut()
        .find(|(n, _)| n == part)
        .unwrap_or_else(|| panic!("no part {part}"));
    let text = String::from_utf8(data.clone()).unwrap();
    let changed = change(&text);
    assert_ne!(changed, text, "the edit of {part} changed nothing");
    *data = changed.into_bytes();
    zip_archive(&parts).finish().unwrap().into_inner()
}

#[test]
fn xlsx_dates_honour_the_1904_date_system() {
    let env = acme();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_row(sheet, 0, &COLUMNS);
    write_row(sheet, 1, &["1", "jdoe", "jane@acme.com", "", "true"]);
    // Serial 43860: 2020-01-30 counted from 1900, 2024-01-31 counted from 1904.
    let date = Format::new().set_num_format("dd/mm/yyyy");
    sheet.write_number_with_format(1, 6, 43860, &date).unwrap();
    let in_1900 = workbook.save_to_buffer().unwrap();
    let in_1904 = edit_part(&in_1900, "xl/workbook.xml", |xml| {
        xml.replace("<workbookPr ", "<workbookPr date1904=\"1\" ")
    });

    sync(&env, &write_bytes(&env, "1900.xlsx", &in_1900)).assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
    let as_text = |date: &str| {
        let line = format!("1,jdoe,jane@acme.com,,true,,{date},");
        csv_file(&env, "dates.csv", &[line.as_str()])
    };
    sync(&env, &as_text("2020-01-30")).assert_completed(
        "success",
        Counts {
            unchanged: 1,
            ..Counts::default()
        },
    );
    let run = sync(&env, &write_bytes(&env, "1904.xlsx", &in_1904));
    run.assert_completed(
        "success",
        Counts {
            updated: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[[
            "2",
            "1",
            "jdoe",
            "Updated",
            "",
            "",
            "",
            "start_employment_date",
        ]],
    );
    sync(&env, &as_text("2024-01-31")).assert_completed(
        "success",
        Counts {
            unchanged: 1,
            ..Counts::default()
        },
    );
}

#[test]
fn xlsx_formula_cells_give_their_cached_value_and_fail_the_row_without_one() {
    let env = acme();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_row(sheet, 0, &COLUMNS);
    write_row(sheet, 1, &["1", "jdoe", "jane@acme.com"]);
    sheet
        .write_formula(1, 4, Formula::new("=TRUE()").set_result("TRUE"))
        .unwrap();
    write_row(sheet, 2, &["2", "bsmith", "bob@acme.com"]);
    sheet
        .write_formula(2, 4, Formula::new("=TRUE()").set_result("NOCACHE"))
        .unwrap();
    let bytes = edit_part(
        &workbook.save_to_buffer().unwrap(),
        "xl/worksheets/sheet1.xml",
        |xml| xml.replace("<v>NOCACHE</v>", ""),
    );
    let run = sync(&env, &write_bytes(&env, "formulas.xlsx", &bytes));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "3",
                "2",
                "bsmith",
                "Failed",
                "INVALID_VALUE",
                "Cell E3 has a formula with no saved value: open the file in Excel, save it and upload it again",
                "cell=E3",
                "",
            ],
        ],
    );
}

#[test]
fn quoted_csv_fields_hold_commas_quotes_and_line_breaks() {
    let env = acme();
    let run = sync(&env, &fixture("quoted_fields.csv"));
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 3,
            failed: 1,
            ..Counts::default()
        },
    );
    let with_cost_centre = "external_id, username, email, CostCentre";
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", with_cost_centre],
            ["3", "2", "o\"neil", "Created", "", "", "", with_cost_centre],
            ["4", "3", "bsmith", "Created", "", "", "", with_cost_centre],
            // Line 5 is the second line of the quoted field: this row starts on line 6.
            [
                "6",
                "4",
                "csmith",
                "Failed",
                "INVALID_EMAIL",
                "Email: 'bad-email' is not a valid email address: it has no '@'. Use the form name@company.com",
                "email=bad-email",
                "",
            ],
        ],
    );
    // The same values as workbook text cells change nothing: the CSV was read to the letter.
    let xlsx = simple_workbook(&[
        [
            "1",
            "jdoe",
            "jane@acme.com",
            "",
            "true",
            "",
            "",
            "Sales, EMEA",
        ],
        [
            "2",
            "o\"neil",
            "oneil@acme.com",
            "",
            "true",
            "",
            "",
            "He said \"hi\"",
        ],
        [
            "3",
            "bsmith",
            "bob@acme.com",
            "",
            "true",
            "",
            "",
            "Line one\nLine two",
        ],
    ]);
    let run = sync(&env, &write_bytes(&env, "same.xlsx", &xlsx));
    run.assert_completed(
        "success",
        Counts {
            unchanged: 3,
            ..Counts::default()
        },
    );
}

#[test]
fn white_space_and_zero_width_characters_are_trimmed() {
    let env = acme();
    let file = csv_file(
        &env,
        "padded.csv",
        &[
            " \u{a0}1\u{200b} ,\u{feff}jdoe\u{a0},  jane@acme.com\u{200c},\u{2060}+44 7495 944376 , TRUE\u{200d} ,,\u{a0}2024-01-31 , Sales\u{a0}",
        ],
    );
    let run = sync(&env, &file);
    run.assert_completed(
        "success",
        Counts {
            created: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[[
            "2",
            "1",
            "jdoe",
            "Created",
            "",
            "",
            "",
            "external_id, username, email, phone_mobile, start_employment_date, CostCentre",
        ]],
    );
    // The clean values are those stored: nothing changes, no second user.
    let clean = csv_file(
        &env,
        "clean.csv",
        &["1,jdoe,jane@acme.com,+44 7495 944376,true,,2024-01-31,Sales"],
    );
    let run = sync(&env, &clean);
    run.assert_completed(
        "success",
        Counts {
            unchanged: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[["2", "1", "jdoe", "Unchanged", "", "", "", ""]],
    );
}

#[test]
fn empty_rows_are_skipped_silently_and_row_numbers_stay_the_files_own() {
    let env = acme();
    assert_empty_rows_log(&env, &sync(&env, &fixture("empty_rows.csv")));
}

/// The lines of `empty_rows.csv`, ended by `ending`: the data rows are on lines 2 and 7.
fn empty_rows_with(ending: &str) -> String {
    let text = std::fs::read_to_string(fixture("empty_rows.csv")).unwrap();
    text.lines().map(|l| format!("{l}{ending}")).collect()
}

fn assert_empty_rows_log(env: &Env, run: &Run) {
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 1,
            failed: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        env,
        run,
        &[
            ["2", "1", "jdoe", "Created", "", "", "", CREATED_BASIC],
            [
                "7",
                "2",
                "bsmith",
                "Failed",
                "INVALID_EMAIL",
                "Email: 'bad-email' is not a valid email address: it has no '@'. Use the form name@company.com",
                "email=bad-email",
                "",
            ],
        ],
    );
}

/// RFC 4180 lines end in CRLF, as Excel on Windows writes them.
#[test]
fn crlf_line_endings_keep_the_files_own_row_numbers() {
    let env = acme();
    let file = env.write("crlf.csv", &empty_rows_with("\r\n"));
    assert_empty_rows_log(&env, &sync(&env, &file));
}

/// Classic Mac line endings (CR only), which the CSV reader accepts.
#[test]
fn cr_line_endings_keep_the_files_own_row_numbers() {
    let env = acme();
    let file = env.write("cr.csv", &empty_rows_with("\r"));
    assert_empty_rows_log(&env, &sync(&env, &file));
}

#[test]
fn a_50_row_file_after_a_1000_row_file_touches_only_those_50() {
    let env = acme();
    let people = |n: usize, cost_centre: &str| {
        let lines: Vec<String> = (1..=n)
            .map(|i| format!("{i},user{i},user{i}@acme.com,,true,,,{cost_centre}"))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        refs.join("\n")
    };
    let thousand = env.write(
        "thousand.csv",
        &format!("{HEADER}\n{}\n", people(1000, "CC1")),
    );
    let fifty = env.write("fifty.csv", &format!("{HEADER}\n{}\n", people(50, "CC2")));

    sync(&env, &thousand).assert_completed(
        "success",
        Counts {
            created: 1000,
            ..Counts::default()
        },
    );
    let run = sync(&env, &fifty);
    run.assert_completed(
        "success",
        Counts {
            updated: 50,
            ..Counts::default()
        },
    );
    let log = logs(&env, &run.id());
    assert_eq!(log.len(), 50);
    for (i, row) in log.iter().enumerate() {
        let n = (i + 1).to_string();
        let line = (i + 2).to_string();
        let user = format!("user{n}");
        assert_eq!(
            row,
            &rows(&[[
                line.as_str(),
                n.as_str(),
                user.as_str(),
                "Updated",
                "",
                "",
                "",
                "CostCentre"
            ]])[0]
        );
    }
    let runs = runs_list(&env);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], run.id().as_str(), "newest first");
    assert_eq!(
        Counts::of(&runs[0]),
        Counts {
            updated: 50,
            ..Counts::default()
        }
    );
    assert_eq!(
        Counts::of(&runs[1]),
        Counts {
            created: 1000,
            ..Counts::default()
        }
    );

    // The other 950 kept CC1: the 1,000-row file again changes only the 50 back.
    let run = sync(&env, &thousand);
    run.assert_completed(
        "success",
        Counts {
            updated: 50,
            unchanged: 950,
            ..Counts::default()
        },
    );
    let log = logs(&env, &run.id());
    assert_eq!(log.len(), 1000);
    assert!(
        log[..50]
            .iter()
            .all(|r| r[3] == "Updated" && r[7] == "CostCentre")
    );
    assert!(
        log[50..]
            .iter()
            .all(|r| r[3] == "Unchanged" && r[7].is_empty())
    );
}

#[test]
fn active_false_deactivates_and_active_true_reactivates() {
    let env = acme();
    sync(&env, &fixture("leavers_v1.csv")).assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    let run = sync(&env, &fixture("leavers_v2.csv"));
    // A leaver the application never knew needs no account: ignored, which is no problem
    // (a full HR export with past leavers is a Success).
    run.assert_completed(
        "success",
        Counts {
            deactivated: 1,
            ignored_inactive: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Deactivated", "", "", "", "active"],
            [
                "3",
                "3",
                "csmith",
                "Ignored",
                "",
                "Inactive and unknown: not created (a person the application never had)",
                "",
                "",
            ],
        ],
    );
    let run = sync(&env, &fixture("leavers_v3.csv"));
    run.assert_completed(
        "success",
        Counts {
            reactivated: 1,
            ..Counts::default()
        },
    );
    assert_logs(
        &env,
        &run,
        &[["2", "1", "jdoe", "Reactivated", "", "", "", "active"]],
    );
    // bsmith, absent from the later files, was never deactivated.
    sync(&env, &fixture("leavers_v1.csv")).assert_completed(
        "success",
        Counts {
            unchanged: 2,
            ..Counts::default()
        },
    );
}

#[test]
fn dry_run_reports_everything_and_writes_nothing() {
    let env = acme();
    let file = fixture("twice.csv");
    for _ in 0..2 {
        let run = sync_with(&env, "Acme", "Payroll", &file, &["--dry-run"], &[]);
        run.assert_completed(
            "success",
            Counts {
                created: 2,
                ..Counts::default()
            },
        );
        assert_eq!(run.json["dry_run"], true);
        assert_logs(
            &env,
            &run,
            &[
                [
                    "2",
                    "1",
                    "jdoe",
                    "Created",
                    "",
                    "",
                    "",
                    "external_id, username, email, phone_mobile, manager, start_employment_date, CostCentre",
                ],
                [
                    "3",
                    "2",
                    "boss",
                    "Created",
                    "",
                    "",
                    "",
                    "external_id, username, email, CostCentre",
                ],
            ],
        );
    }
    let run = sync(&env, &file);
    run.assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    assert_eq!(run.json["dry_run"], false);
    let run = sync_with(&env, "Acme", "Payroll", &file, &["--dry-run"], &[]);
    run.assert_completed(
        "success",
        Counts {
            unchanged: 2,
            ..Counts::default()
        },
    );
}

#[test]
fn the_same_file_twice_is_all_unchanged_the_second_time() {
    let env = acme();
    let file = fixture("twice.csv");
    sync(&env, &file).assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    let run = sync(&env, &file);
    run.assert_completed(
        "success",
        Counts {
            unchanged: 2,
            ..Counts::default()
        },
    );
    assert_eq!(run.json["status_label"], "Success");
    assert_logs(
        &env,
        &run,
        &[
            ["2", "1", "jdoe", "Unchanged", "", "", "", ""],
            ["3", "2", "boss", "Unchanged", "", "", "", ""],
        ],
    );
}

#[test]
fn formula_cells_are_neutralised_in_the_csv_and_xlsx_logs() {
    let env = acme();
    let run = sync(&env, &fixture("formula_cells.csv"));
    run.assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    let expected = [
        [
            "2",
            "'=cmd|' /C calc'!A0",
            "'@jdoe",
            "Created",
            "",
            "",
            "",
            CREATED_BASIC,
        ],
        ["3", "'-42", "'+boss", "Created", "", "", "", CREATED_BASIC],
    ];
    assert_logs(&env, &run, &expected);

    let path = env.path("logs.xlsx");
    env.ok(&[
        "runs",
        "logs",
        &run.id(),
        "--format",
        "xlsx",
        "--output",
        path.to_str().unwrap(),
    ]);
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::Xlsx::new(Cursor::new(std::fs::read(&path).unwrap())).unwrap();
    assert_eq!(workbook.sheet_names(), vec!["Sync Logs".to_owned()]);
    let range = workbook.worksheet_range("Sync Logs").unwrap();
    let cells: Vec<Vec<String>> = range
        .rows()
        .map(|r| {
            let mut row: Vec<String> = r.iter().map(xlsx_text).collect();
            row.resize(8, String::new());
            row
        })
        .collect();
    assert_eq!(cells[0], LOG_HEADERS);
    assert_eq!(cells[1..].to_vec(), rows(&expected));
}

/// `Sync Logs - 15 Jan 2024 10.30pm.csv` for a run that started at `started_at` (RFC 3339, UTC).
fn expected_log_name(started_at: &str, extension: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(started_at.ends_with("+00:00"), "UTC: {started_at}");
    let num = |range: std::ops::Range<usize>| -> u32 { started_at[range].parse().unwrap() };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute) = (num(11..13), num(14..16));
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let half = if hour < 12 { "am" } else { "pm" };
    format!(
        "Sync Logs - {day} {} {year} {hour12}.{minute:02}{half}.{extension}",
        MONTHS[month as usize - 1]
    )
}

#[test]
fn log_downloads_are_written_to_the_output_path_and_named_from_the_start_time() {
    let env = acme();
    let run = sync(&env, &fixture("twice.csv"));
    run.assert_completed(
        "success",
        Counts {
            created: 2,
            ..Counts::default()
        },
    );
    let started_at = run.json["started_at"].as_str().unwrap().to_owned();
    assert_eq!(runs_list(&env)[0]["started_at"], started_at.as_str());
    for extension in ["csv", "xlsx"] {
        let dir = env.path(&format!("out-{extension}"));
        std::fs::create_dir(&dir).unwrap();
        let output = dir.join(format!("my-logs.{extension}"));
        let out = env.run(&[
            "runs",
            "logs",
            &run.id(),
            "--format",
            extension,
            "--output",
            output.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "wrote 2 log rows to {} (download name: {})\n",
                output.display(),
                expected_log_name(&started_at, extension)
            )
        );
        // Exactly the given path, nothing else.
        let written: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(written, vec![format!("my-logs.{extension}")]);
    }
    let csv_text = std::fs::read_to_string(env.path("out-csv/my-logs.csv")).unwrap();
    assert!(csv_text.starts_with(&format!("{}\n", LOG_HEADERS.join(","))));
    assert_eq!(
        &std::fs::read(env.path("out-xlsx/my-logs.xlsx")).unwrap()[..2],
        b"PK"
    );

    // An output path that cannot be written: bad usage, one line.
    let missing = env.path("no/such/dir/logs.csv");
    let out = env.run(&[
        "runs",
        "logs",
        &run.id(),
        "--format",
        "csv",
        "--output",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot write {}", missing.display())),
        "{err}"
    );
}

#[test]
fn the_expected_log_name_helper_matches_the_spec_example() {
    assert_eq!(
        expected_log_name("2024-01-15T22:30:12.345+00:00", "csv"),
        "Sync Logs - 15 Jan 2024 10.30pm.csv"
    );
    assert_eq!(
        expected_log_name("2024-03-05T00:05:00+00:00", "xlsx"),
        "Sync Logs - 5 Mar 2024 12.05am.xlsx"
    );
    assert_eq!(
        expected_log_name("2024-03-05T12:00:00+00:00", "csv"),
        "Sync Logs - 5 Mar 2024 12.00pm.csv"
    );
}

#[test]
fn sync_json_prints_one_object_with_the_run_id_status_and_counts() {
    let env = acme();
    let run = sync(&env, &fixture("row_manager_not_found.csv"));
    for key in [
        "run_id",
        "status",
        "created",
        "updated",
        "deactivated",
        "reactivated",
        "unchanged",
        "skipped",
        "warnings",
    ] {
        assert!(run.json.get(key).is_some(), "{key} missing in {}", run.json);
    }
    run.assert_completed(
        "needs_attention",
        Counts {
            created: 3,
            warnings: 1,
            ..Counts::default()
        },
    );
    assert_eq!(run.json["status_label"], "Needs Attention");
    assert_eq!(run.json["file_name"], "row_manager_not_found.csv");
    assert_eq!(run.json["connector"], "SFTP Sync");
    assert_eq!(run.json["configuration"], "Payroll");
    assert_eq!(run.json["dry_run"], false);
    let listed = runs_list(&env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["run_id"], run.id().as_str());
    assert_eq!(listed[0]["status"], "needs_attention");
    assert_eq!(Counts::of(&listed[0]), run.counts());
    // No progress output mixed into stdout (checked by `sync`), and nothing on stderr.
    assert_eq!(run.stderr, "");
}

/// A first sync of a file of 8 MiB or more into an organisation without users is planned and
/// applied chunk by chunk (20,000 records; `rollcall_sync::initial`), with every manager named
/// by a later row, in a later chunk, set once the chunks are written.
#[test]
fn a_large_first_sync_is_applied_chunk_by_chunk_with_managers_named_by_later_rows() {
    let env = acme();
    const N: usize = 41_000;
    // Each row reports to the next one; row 100's manager exists nowhere. The unmapped
    // padding column brings the file over 8 MiB without slowing a debug build down.
    let padding = "x".repeat(160);
    let mut text = format!("{HEADER},Notes\n");
    for i in 0..N {
        let manager = match i {
            100 => "NOBODY".to_owned(),
            i if i + 1 < N => format!("E{}", i + 1),
            _ => String::new(),
        };
        text.push_str(&format!(
            "E{i},user{i},person{i}@acme.example,,true,{manager},,CC{},{padding}\n",
            i % 7
        ));
    }
    assert!(text.len() >= 8 << 20, "{} bytes", text.len());
    let file = env.write("everyone.csv", &text);
    let run = sync_with(
        &env,
        "Acme",
        "Payroll",
        &file,
        &[],
        &[("ROLLCALL_LOG", "rollcall_sync=debug")],
    );
    assert!(
        run.stderr.contains("chunks written"),
        "the chunked path: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.status(), "needs_attention", "{}", run.json);
    assert_eq!(
        run.counts(),
        Counts {
            created: N as u64,
            warnings: 1,
            ..Counts::default()
        }
    );
    let logs = logs(&env, &run.id());
    assert_eq!(logs.len(), N);
    // Row 2 of the file is E0, whose manager E1 came in the same chunk; E19999's manager
    // E20000 came in the next chunk; both are set, and logged among the changed fields.
    for (i, log) in [
        (0usize, &logs[0]),
        (19_999, &logs[19_999]),
        (20_000, &logs[20_000]),
    ] {
        assert_eq!(log[1], format!("E{i}"));
        assert_eq!(log[3], "Created");
        assert!(log[7].contains("manager"), "{log:?}");
    }
    assert_eq!(logs[100][4], "MANAGER_NOT_FOUND", "{:?}", logs[100]);
    assert!(!logs[100][7].contains("manager"), "{:?}", logs[100]);
    assert!(!logs[N - 1][7].contains("manager"), "{:?}", logs[N - 1]);
}
