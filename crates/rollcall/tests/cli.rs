//! Black-box tests of the `rollcall` binary: the SPEC §11 command line, exit codes, and
//! `serve`'s operations endpoints.

mod common;

use std::process::Output;

use common::{Env, http, postgres_database};

const MAPPING: &str = r#"
[fields]
external_id  = "EmployeeNumber"
username     = "EmployeeNumber"
email        = "WorkEmail"
active       = "Active"
manager      = "ManagerEmployeeNumber"
phone_mobile = "Mobile"
[custom_fields]
CostCentre = "CostCentre"
"#;

const PEOPLE: &str = "EmployeeNumber,WorkEmail,Active,ManagerEmployeeNumber,Mobile,CostCentre\n\
1,jane@acme.com,true,2,+44 7495 944376,=cmd|' /C calc'!A0\n\
2,boss@acme.com,TRUE,,,CC2\n\
3,bad-email,true,1,,\n";

/// An organisation with an active sftp configuration "Payroll".
fn with_config(env: &Env, extra: &[&str]) -> String {
    let org = env
        .ok(&["org", "create", "--name", "Acme", "--provisioning"])
        .trim()
        .to_owned();
    let mapping = env.write("mapping.toml", MAPPING);
    let mut args = vec![
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Payroll",
        "--kind",
        "sftp",
        "--mode",
        "active",
        "--mapping",
    ];
    args.push(mapping.to_str().unwrap());
    args.extend_from_slice(extra);
    env.ok(&args);
    org
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2 with exactly one line on stderr that contains `expected`.
fn assert_usage_error(out: &Output, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.contains(expected), "expected {expected:?} in {err:?}");
}

#[test]
fn org_create_prints_an_id_and_refuses_duplicates() {
    let env = Env::new();
    let id = env.ok(&["org", "create", "--name", "Acme"]);
    assert_eq!(id.trim().len(), 36, "a UUID: {id}");
    assert_usage_error(
        &env.run(&["org", "create", "--name", "Acme"]),
        "already exists",
    );
    assert_usage_error(
        &env.run(&["org", "create", "--name", "  "]),
        "organisation name",
    );
}

#[test]
fn bad_configurations_exit_2_with_one_line_and_change_nothing() {
    let env = Env::new();
    env.ok(&["org", "create", "--name", "Acme"]);
    let cases: [(&str, &str); 4] = [
        ("[fields\n", "not valid TOML"),
        (
            "[fields]\nmail = \"Mail\"\n",
            "valid keys are: external_id, username, employee_id",
        ),
        (
            "[fields]\nexternal_id = \"Id\"\nusername = \"Id\"\n",
            "required field active not mapped",
        ),
        (
            "[fields]\nexternal_id = \"Id\"\nusername = \"User Name\"\nactive = \"A\"\n",
            "'UserName'",
        ),
    ];
    for (text, expected) in cases {
        let path = env.write("bad.toml", text);
        let out = env.run(&[
            "config",
            "create",
            "--org",
            "Acme",
            "--name",
            "Payroll",
            "--kind",
            "sftp",
            "--mapping",
            path.to_str().unwrap(),
        ]);
        assert_usage_error(&out, expected);
    }
    let good = env.write("good.toml", MAPPING);
    let good = good.to_str().unwrap();
    assert_usage_error(
        &env.run(&[
            "config",
            "create",
            "--org",
            "Nope",
            "--name",
            "Payroll",
            "--kind",
            "sftp",
            "--mapping",
            good,
        ]),
        "unknown organisation 'Nope'",
    );
    assert_usage_error(
        &env.run(&[
            "config",
            "create",
            "--org",
            "Acme",
            "--name",
            "S",
            "--kind",
            "scim",
            "--mapping",
            good,
        ]),
        "remove --mapping",
    );
    assert_usage_error(
        &env.run(&[
            "config", "create", "--org", "Acme", "--name", "P", "--kind", "sftp",
        ]),
        "needs --mapping",
    );
    assert_usage_error(
        &env.run(&[
            "config",
            "create",
            "--org",
            "Acme",
            "--name",
            "P",
            "--kind",
            "sftp",
            "--mapping",
            good,
            "--deactivation-threshold",
            "lots",
        ]),
        "not a deactivation threshold",
    );
    assert_usage_error(
        &env.run(&[
            "config",
            "create",
            "--org",
            "Acme",
            "--name",
            "P",
            "--kind",
            "sftp",
            "--mapping",
            good,
            "--phone-region",
            "XX",
        ]),
        "not a phone region",
    );
    assert_usage_error(
        &env.run(&[
            "config", "create", "--org", "Acme", "--name", "P", "--kind", "ftp",
        ]),
        "invalid value 'ftp'",
    );
    // Nothing was created: the name is still free, and a file sync finds no configuration.
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Payroll",
        "--kind",
        "sftp",
        "--mapping",
        good,
    ]);
    assert_usage_error(
        &env.run(&[
            "config",
            "create",
            "--org",
            "Acme",
            "--name",
            "Payroll",
            "--kind",
            "sftp",
            "--mapping",
            good,
        ]),
        "already exists",
    );
    let people = env.write("people.csv", PEOPLE);
    assert_usage_error(
        &env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "P",
            people.to_str().unwrap(),
        ]),
        "configurations: Payroll",
    );
}

#[test]
fn admin_create_checks_role_email_and_password() {
    let env = Env::new();
    env.ok(&["org", "create", "--name", "Acme"]);
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "a@acme.com",
            "--role",
            "boss",
            "--password-stdin",
        ],
        "long enough password\n",
    );
    assert_usage_error(
        &out,
        "valid roles are organisation_admin, people_admin, support_admin",
    );
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "a@acme",
            "--role",
            "people_admin",
            "--password-stdin",
        ],
        "long enough password\n",
    );
    assert_usage_error(&out, "not a valid email");
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "a@acme.com",
            "--role",
            "people_admin",
            "--password-stdin",
        ],
        "",
    );
    assert_usage_error(&out, "empty");
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Nope",
            "--email",
            "a@acme.com",
            "--role",
            "people_admin",
            "--password-stdin",
        ],
        "long enough password\n",
    );
    assert_usage_error(&out, "unknown organisation");
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "a@acme.com",
            "--role",
            "people_admin",
            "--sync-access",
            "--password-stdin",
        ],
        "long enough password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "A@acme.com",
            "--role",
            "basic_user",
            "--password-stdin",
        ],
        "long enough password\n",
    );
    assert_usage_error(&out, "already exists");
}

#[test]
fn tokens_are_issued_for_scim_configurations_only() {
    let env = Env::new();
    with_config(&env, &[]);
    let token = env.ok(&["token", "create", "--org", "Acme"]);
    assert!(
        token.trim().starts_with("rc_") && token.trim().len() == 67,
        "{token}"
    );
    assert_usage_error(
        &env.run(&["token", "create", "--org", "Acme", "--config", "Payroll"]),
        "scim configuration",
    );
    // The default SCIM configuration now exists and gets the next token too.
    let second = env.ok(&["token", "create", "--org", "Acme", "--config", "SCIM"]);
    assert_ne!(token, second);
    assert_eq!(env.ok(&["token", "revoke", token.trim()]).trim(), "revoked");
    assert_usage_error(
        &env.run(&["token", "revoke", token.trim()]),
        "already revoked",
    );
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn sync_json_reports_counts_and_logs_download_neutralised() {
    let env = Env::new();
    with_config(&env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let out = env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["status"], "needs_attention");
    assert_eq!(v["created"], 2);
    assert_eq!(v["failed"], 1);
    for key in [
        "run_id",
        "updated",
        "deactivated",
        "reactivated",
        "unchanged",
        "warnings",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    let run = v["run_id"].as_str().unwrap().to_owned();

    // Again: all unchanged, the bad row still skipped.
    let again = json(&env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(again["unchanged"], 2);
    assert_eq!(again["created"], 0);

    let list = json(&env.ok(&["runs", "list", "--org", "Acme", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["run_id"], run.as_str(), "newest first");

    let csv_path = env.path("logs.csv");
    env.ok(&[
        "runs",
        "logs",
        &run,
        "--format",
        "csv",
        "--output",
        csv_path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Row,ExternalId,Username,Action,ErrorType,Message,AdditionalData,ChangedFields"
    );
    assert!(lines[1].starts_with("2,1,1,Created,,"), "{}", lines[1]);
    assert!(
        lines[3].starts_with("4,3,3,Failed,INVALID_EMAIL,"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains("email=bad-email"), "{}", lines[3]);
    let xlsx_path = env.path("logs.xlsx");
    let out = env.run(&[
        "runs",
        "logs",
        &run,
        "--format",
        "xlsx",
        "--output",
        xlsx_path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("Sync Logs - "), "{}", stderr(&out));
    assert_eq!(&std::fs::read(&xlsx_path).unwrap()[..2], b"PK");
    assert_usage_error(
        &env.run(&[
            "runs",
            "logs",
            "nope",
            "--format",
            "csv",
            "--output",
            csv_path.to_str().unwrap(),
        ]),
        "unknown run",
    );
}

#[test]
fn sync_exit_codes() {
    let env = Env::new();
    with_config(&env, &["--deactivation-threshold", "1"]);
    let people = env.write("people.csv", PEOPLE);
    let people = people.to_str().unwrap();
    // Needs Attention is still done: 0.
    assert!(
        env.run(&["sync", "--org", "Acme", "--config", "Payroll", people])
            .status
            .success()
    );
    // Data Load Failed: 1, with the problem on stderr.
    let semicolons = env.write(
        "semi.csv",
        "EmployeeNumber;WorkEmail;Active\n1;a@acme.com;true\n",
    );
    let out = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        semicolons.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the separator must be a comma"),
        "{}",
        stderr(&out)
    );
    let xlsx = env.write("people.xlsx", "not really");
    assert_eq!(
        env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            xlsx.to_str().unwrap()
        ])
        .status
        .code(),
        Some(1)
    );
    // Above the deactivation threshold: 1, and nothing applied.
    let leavers = env.write(
        "leavers.csv",
        "EmployeeNumber,WorkEmail,Active,ManagerEmployeeNumber,Mobile,CostCentre\n1,jane@acme.com,false,,,\n2,boss@acme.com,false,,,\n",
    );
    let out = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        leavers.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["status"],
        "above_deactivation_threshold"
    );
    assert!(
        stderr(&out).contains("would deactivate 2; the threshold is 1; nothing was applied"),
        "{}",
        stderr(&out)
    );
    let blocked_id = json(&String::from_utf8_lossy(&out.stdout))["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A blocked run has no log, as the page and the API say: no file is written.
    let no_log = env.path("blocked.csv");
    assert_usage_error(
        &env.run(&[
            "runs",
            "logs",
            &blocked_id,
            "--format",
            "csv",
            "--output",
            no_log.to_str().unwrap(),
        ]),
        "a run that is Above Deactivation Threshold has no log to download",
    );
    assert!(!no_log.exists());
    // A dry run of the same file is not blocked, but says that the real run would be.
    let dry_out = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        leavers.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(dry_out.status.success());
    let text = String::from_utf8_lossy(&dry_out.stdout);
    assert!(text.contains("Would deactivate  2"), "{text}");
    assert!(
        stderr(&dry_out).contains(
            "dry run: a real run would be blocked: it would deactivate 2, the threshold is 1"
        ),
        "{}",
        stderr(&dry_out)
    );
    let listed = json(&env.ok(&["runs", "list", "--org", "Acme", "--json"]));
    let dry_listed = &listed[0];
    assert_eq!(dry_listed["dry_run"], true);
    assert_eq!(dry_listed["threshold_hit"], "1");
    assert!(
        env.ok(&["runs", "list", "--org", "Acme"])
            .contains("Success (dry run)")
    );
    let dry = json(&env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people,
        "--json",
        "--dry-run",
    ]));
    assert_eq!(dry["unchanged"], 2, "the leavers were not applied");
    assert_eq!(dry["dry_run"], true);

    // The operator approves the blocked run: its own file is applied, even if the file on
    // disk has changed since; a second approval is refused.
    let blocked = json(&String::from_utf8_lossy(&out.stdout));
    let run_id = blocked["run_id"].as_str().unwrap().to_owned();
    std::fs::write(
        &leavers,
        "EmployeeNumber,WorkEmail,Active\n9,x@acme.com,true\n",
    )
    .unwrap();
    let approved = json(&env.ok(&["runs", "approve", &run_id, "--json"]));
    assert_eq!(approved["run_id"], run_id.as_str());
    assert_eq!(approved["status"], "success");
    assert_eq!(approved["deactivated"], 2);
    assert_eq!(approved["approved_by"], "operator via CLI");
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(approved[key].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(
        approved["duration_ms"].as_i64().unwrap(),
        at("ended_at") - at("approved_at"),
        "an approved run is timed from its approval"
    );
    let again = json(&env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people,
        "--json",
        "--dry-run",
    ]));
    assert_eq!(again["reactivated"], 2, "the leavers are now inactive");
    assert_usage_error(
        &env.run(&["runs", "approve", &run_id]),
        "only a run blocked by the deactivation threshold can be approved",
    );
    assert_usage_error(&env.run(&["runs", "approve", "no-such-run"]), "unknown run");
    // Bad usage: 2.
    assert_usage_error(
        &env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            "/no/such/file.csv",
        ]),
        "cannot open",
    );
}

#[test]
fn serve_answers_health_ready_and_metrics_then_stops_on_sigterm() {
    let env = Env::new();
    let mut server = env.serve();
    let addr = server.addr.clone();
    let (status, body) = get(&addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&addr, "/readyz");
    assert_eq!(status, 200);
    assert!(body.contains("\"database\":\"ok\""), "{body}");
    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("rollcall_http_requests_total"), "{body}");
    assert_eq!(get(&addr, "/nope").0, 404);
    assert!(server.terminate().success(), "graceful shutdown exits 0");
    assert!(
        env.path("data").join("rollcall.db").exists(),
        "the embedded database is in the data directory"
    );
}

#[test]
fn serve_refuses_a_busy_port_with_exit_2() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = env.run(&["serve", "--http", &port, "--sftp", "127.0.0.1:0"]);
    assert_usage_error(&out, "cannot listen for HTTP");
    let out = env.run(&["serve", "--http", "127.0.0.1:0", "--sftp", &port]);
    assert_usage_error(&out, "cannot listen for SFTP");
}

/// The same CLI flow on PostgreSQL, when a server is configured.
#[test]
fn the_cli_works_on_postgres() {
    let Some(url) = postgres_database("cli") else {
        return;
    };
    let mut env = Env::new();
    env.database_url = Some(url);
    with_config(&env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let v = json(&env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["created"], 2);
    let mut server = env.serve();
    let addr = server.addr.clone();
    assert_eq!(get(&addr, "/readyz").0, 200);
    assert!(server.terminate().success());
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let r = http(addr, "GET", path, &[], None);
    (r.status, r.body)
}

#[test]
fn computed_fields_come_from_the_row() {
    let env = Env::new();
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    let mapping = env.write(
        "computed.toml",
        r#"
[fields]
external_id = "EmployeeNumber"
username    = "EmployeeNumber"
[computed]
active      = 'Status == "Leaver" ? "false" : "true"'
job_title   = 'concat(trim(Grade), " ", upper(Team))'
start_employment_date = 'if Hours / 2 > 10 then "2024-01-31" else "2023-06-01"'
"#,
    );
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "HR",
        "--kind",
        "sftp",
        "--mode",
        "active",
        "--mapping",
        mapping.to_str().unwrap(),
    ]);
    let file = env.write(
        "people.csv",
        "EmployeeNumber,Status,Grade,Team,Hours\n1,Joiner, Senior ,ops,40\n2,Leaver,Junior,dev,10\n3,Joiner,Junior,dev,lots\n",
    );
    let out = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "HR",
        file.to_str().unwrap(),
        "--json",
    ]);
    let run = json(&String::from_utf8_lossy(&out.stdout));
    // The leaver is unknown, so ignored (never created); row 3's expression fails.
    assert_eq!(run["created"], 1, "{run}");
    assert_eq!(run["ignored_inactive"], 1, "{run}");
    assert_eq!(run["skipped"], 0, "{run}");
    assert_eq!(run["failed"], 1, "{run}");
    let logs = env.path("logs.csv");
    env.ok(&[
        "runs",
        "logs",
        run["run_id"].as_str().unwrap(),
        "--format",
        "csv",
        "--output",
        logs.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&logs).unwrap();
    assert!(
        text.contains("Start Employment Date could not be computed: 'lots' is not a number"),
        "{text}"
    );
    // The counts are the log's actions, word for word (SPEC §6): one Skipped, one Failed.
    let actions: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3))
        .collect();
    for (action, key) in [("Skipped", "skipped"), ("Failed", "failed")] {
        assert_eq!(
            actions.iter().filter(|a| **a == action).count() as u64,
            run[key].as_u64().unwrap(),
            "{text}"
        );
    }
    // The joiner's computed title is unchanged; the former leaver now joins.
    let again = env.write(
        "again.csv",
        "EmployeeNumber,Status,Grade,Team,Hours\n1,Joiner,Senior,ops,40\n2,Joiner,Junior,dev,10\n",
    );
    let run = json(&env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "HR",
        again.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        (run["unchanged"].as_u64(), run["created"].as_u64()),
        (Some(1), Some(1)),
        "{run}"
    );

    // A bad expression refuses the configuration, with the reason.
    let bad = env.write(
        "bad.toml",
        "[fields]\nexternal_id = \"Id\"\nusername = \"Id\"\n[computed]\nactive = 'Status =='\n",
    );
    let out = env.run(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Bad",
        "--kind",
        "sftp",
        "--mapping",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the expression computing 'active' is not valid"),
        "{}",
        stderr(&out)
    );
}

/// The data folder holds every user's data, the uploads and the SFTP host key: what `serve`
/// creates there is for the service's own user only (0700 folders, 0600 files), whatever the
/// umask (SQLite gives its -wal and -shm files the database file's mode).
#[test]
fn the_data_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let server = env.serve();
    let data = env.path("data");
    let mode = |name: &str| {
        let path = data.join(name);
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    // The queue's workers make their folder once the server runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !data.join("work").exists() {
        assert!(std::time::Instant::now() < deadline, "no work folder");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for folder in ["", "spool", "work"] {
        assert_eq!(mode(folder), 0o700, "folder '{folder}'");
    }
    for file in [
        "rollcall.db",
        "rollcall.db-wal",
        "rollcall.db-shm",
        "ssh_host_ed25519_key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    drop(server);
}

/// A command refused for its own input opens no database: a mistyped first command leaves no
/// data folder behind.
#[test]
fn a_refused_command_creates_no_data_folder() {
    let env = Env::new();
    let refused = [
        vec!["org", "create", "--name", " "],
        vec![
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "not-an-email",
            "--role",
            "people_admin",
        ],
        vec![
            "config", "create", "--org", "Acme", "--name", "P", "--kind", "sftp", "--notify",
            "nope",
        ],
    ];
    for args in refused {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            !env.path("data").exists(),
            "{args:?} created the data folder"
        );
    }
    env.ok(&["org", "create", "--name", "Acme"]);
    assert!(env.path("data").join("rollcall.db").exists());
}

/// An operator lists and shows what they set up, changes organisations and admins, and every
/// change is recorded with who made it and what it changed.
fn operators_see_and_change_what_they_set_up(env: &Env) {
    with_config(env, &["--deactivation-threshold", "10%"]);
    env.ok(&["org", "create", "--name", "Globex"]);
    let orgs = json(&env.ok(&["org", "list", "--json"]));
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "Globex"]);
    assert_eq!(orgs[1]["provisioning"], false);
    assert!(env.ok(&["org", "list"]).contains("Globex"));

    let switched = json(&env.ok(&["org", "update", "Globex", "--provisioning", "on"]));
    assert_eq!(switched["provisioning"], true);
    env.ok(&["org", "update", "Globex", "--name", "Globex Corp"]);
    assert_usage_error(
        &env.run(&["org", "update", "Globex Corp"]),
        "nothing to change",
    );
    assert_usage_error(
        &env.run(&["org", "update", "Globex Corp", "--name", "Acme"]),
        "Acme",
    );
    assert_usage_error(
        &env.run(&["org", "update", "Globex", "--provisioning", "off"]),
        "unknown organisation 'Globex'",
    );

    let globex = json(&env.ok(&["org", "show", "Globex Corp", "--json"]));
    assert_eq!(globex["name"], "Globex Corp");
    assert_eq!(globex["provisioning"], true);
    let changes = globex["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0]["by"], "operator via CLI");
    assert_eq!(changes[0]["subject"], "organisation");
    assert_eq!(
        changes[0]["fields"],
        serde_json::json!([{"field": "name", "before": "Globex", "after": "Globex Corp"}])
    );
    assert_eq!(
        changes[1]["fields"],
        serde_json::json!([{"field": "provisioning", "before": "false", "after": "true"}])
    );
    assert_eq!(
        changes[2]["action"], "created",
        "creations are recorded too"
    );
    assert_eq!(
        changes[2]["fields"],
        serde_json::json!([
            {"field": "name", "before": null, "after": "Globex"},
            {"field": "provisioning", "before": null, "after": "false"}
        ])
    );

    let configs = json(&env.ok(&["config", "list", "--org", "Acme", "--json"]));
    assert_eq!(configs.as_array().unwrap().len(), 1);
    assert_eq!(configs[0]["name"], "Payroll");
    assert_eq!(configs[0]["kind"], "sftp");
    assert_eq!(configs[0]["deactivation_threshold"], "10%");
    let payroll = json(&env.ok(&[
        "config", "show", "--org", "Acme", "--name", "Payroll", "--json",
    ]));
    let mapping = payroll["mapping"].as_str().unwrap();
    assert!(mapping.contains("[fields]"), "{mapping}");
    // The mapping shown is a file that creates the same configuration again.
    let again = env.write("again.toml", mapping);
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Again",
        "--kind",
        "sftp",
        "--mapping",
        again.to_str().unwrap(),
    ]);
    let again = json(&env.ok(&[
        "config", "show", "--org", "Acme", "--name", "Again", "--json",
    ]));
    assert_eq!(again["mapping"], payroll["mapping"]);
    assert!(
        env.ok(&["config", "show", "--org", "Acme", "--name", "Payroll"])
            .contains("# mapping")
    );

    env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "Ann@Acme.example",
            "--role",
            "support_admin",
            "--password-stdin",
        ],
        "a long admin password\n",
    );
    let admins = json(&env.ok(&["admin", "list", "--org", "Acme", "--json"]));
    assert_eq!(admins[0]["email"], "Ann@Acme.example");
    assert_eq!(admins[0]["role"], "support_admin");
    assert_eq!(admins[0]["sync_access"], false);
    assert_eq!(admins[0]["disabled_at"], serde_json::Value::Null);
    let who = ["--org", "Acme", "--email", "ann@acme.example"];
    let updated = json(
        &env.ok(&[
            &[
                "admin",
                "update",
                "--role",
                "people_admin",
                "--sync-access",
                "on",
            ][..],
            &who,
        ]
        .concat()),
    );
    assert_eq!(updated["role"], "people_admin");
    assert_eq!(updated["sync_access"], true);
    assert_usage_error(
        &env.run(&[&["admin", "update", "--role", "boss"][..], &who].concat()),
        "valid roles are organisation_admin",
    );
    assert_usage_error(
        &env.run(&[&["admin", "update"][..], &who].concat()),
        "nothing to change",
    );
    assert_usage_error(
        &env.run(&[
            "admin",
            "disable",
            "--org",
            "Globex Corp",
            "--email",
            "ann@acme.example",
        ]),
        "no admin 'ann@acme.example'",
    );
    let disabled = json(&env.ok(&[&["admin", "disable"][..], &who].concat()));
    assert!(disabled["disabled_at"].is_string());
    assert!(
        env.ok(&["admin", "list", "--org", "Acme"])
            .contains("people_admin")
    );

    let acme = json(&env.ok(&["org", "show", "Acme", "--json"]));
    let actions: Vec<&str> = acme["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[..2], ["disabled", "updated"]);
    assert!(
        actions[2..].iter().all(|a| *a == "created"),
        "then the organisation, its configurations and its admin as created: {actions:?}"
    );
    assert_eq!(acme["changes"][1]["fields"][0]["field"], "role");
    assert_eq!(acme["configurations"].as_array().unwrap().len(), 2);
    let text = env.ok(&["org", "show", "Acme"]);
    assert!(text.contains("role support_admin → people_admin"), "{text}");
}

#[test]
fn operators_see_and_change_what_they_set_up_on_sqlite() {
    operators_see_and_change_what_they_set_up(&Env::new());
}

#[test]
fn operators_see_and_change_what_they_set_up_on_postgres() {
    on_postgres(
        "operator_changes",
        operators_see_and_change_what_they_set_up,
    );
}

/// `config update` changes every setting of a configuration, records each change, and a new
/// mapping is what the next run reads.
fn a_configuration_changes_after_setup(env: &Env) {
    with_config(env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let sync = || {
        json(&env.ok(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            people.to_str().unwrap(),
            "--json",
        ]))
    };
    let first = sync();
    assert_eq!(
        (first["created"].as_u64(), first["failed"].as_u64()),
        (Some(2), Some(1))
    );

    // The new mapping leaves the email out (row 3's bad email no longer fails it) and reads
    // the first name from the cost centre column.
    let new_mapping = env.write(
        "new.toml",
        &MAPPING.replace(
            "email        = \"WorkEmail\"\n",
            "first_name = \"CostCentre\"\n",
        ),
    );
    let update = |extra: &[&str]| {
        env.run(
            &[
                &["config", "update", "--org", "Acme", "--name", "Payroll"][..],
                extra,
            ]
            .concat(),
        )
    };
    assert!(
        update(&["--mapping", new_mapping.to_str().unwrap()])
            .status
            .success()
    );
    let second = sync();
    assert_eq!(second["created"], 1, "{second}");
    assert!(second["updated"].as_u64().unwrap() >= 1, "{second}");
    // Each run records the mapping it read with.
    let show = |run: &serde_json::Value| {
        json(&env.ok(&["runs", "show", run["run_id"].as_str().unwrap(), "--json"]))
    };
    let (first, second) = (show(&first), show(&second));
    assert!(
        first["mapping"].as_str().unwrap().contains("WorkEmail"),
        "{first}"
    );
    assert!(
        second["mapping"].as_str().unwrap().contains("first_name"),
        "{second}"
    );
    assert_eq!(first["mapping_digest"].as_str().unwrap().len(), 64);
    assert_ne!(first["mapping_digest"], second["mapping_digest"]);
    let text = env.ok(&["runs", "show", second["run_id"].as_str().unwrap()]);
    assert!(text.contains("# mapping (sha256 "), "{text}");

    let out = update(&[
        "--deactivation-threshold",
        "5%",
        "--notify",
        "hr@acme.example",
        "--phone-region",
        "gb",
        "--rename",
        "Payroll UK",
    ]);
    assert!(out.status.success(), "{out:?}");
    let shown = json(&env.ok(&[
        "config",
        "show",
        "--org",
        "Acme",
        "--name",
        "Payroll UK",
        "--json",
    ]));
    assert_eq!(shown["deactivation_threshold"], "5%");
    assert_eq!(shown["notify"], "hr@acme.example");
    assert_eq!(shown["phone_region"], "GB");
    assert!(
        shown["mapping"].as_str().unwrap().contains("first_name"),
        "{shown}"
    );
    let cleared = env.run(&[
        "config",
        "update",
        "--org",
        "Acme",
        "--name",
        "Payroll UK",
        "--notify",
        "none",
        "--deactivation-threshold",
        "none",
    ]);
    assert!(cleared.status.success(), "{cleared:?}");
    let shown = json(&env.ok(&[
        "config",
        "show",
        "--org",
        "Acme",
        "--name",
        "Payroll UK",
        "--json",
    ]));
    assert_eq!(shown["notify"], serde_json::Value::Null);
    assert_eq!(shown["deactivation_threshold"], serde_json::Value::Null);

    assert_usage_error(
        &env.run(&["config", "update", "--org", "Acme", "--name", "Payroll UK"]),
        "nothing to change",
    );
    assert_usage_error(
        &env.run(&[
            "config",
            "update",
            "--org",
            "Acme",
            "--name",
            "Payroll UK",
            "--deactivation-threshold",
            "lots",
        ]),
        "lots",
    );
    env.ok(&[
        "config", "create", "--org", "Acme", "--name", "Okta", "--kind", "scim",
    ]);
    assert_usage_error(
        &env.run(&[
            "config",
            "update",
            "--org",
            "Acme",
            "--name",
            "Okta",
            "--mapping",
            new_mapping.to_str().unwrap(),
        ]),
        "no mapping to change",
    );
    assert_usage_error(
        &env.run(&[
            "config",
            "update",
            "--org",
            "Acme",
            "--name",
            "Okta",
            "--rename",
            "Payroll UK",
        ]),
        "Payroll UK",
    );

    let changes = json(&env.ok(&["org", "show", "Acme", "--json"]))["changes"].clone();
    let fields: Vec<Vec<String>> = changes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "updated")
        .map(|c| {
            assert_eq!(c["subject"], "configuration");
            c["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        fields,
        [
            vec!["deactivation_threshold", "notify"],
            vec!["name", "deactivation_threshold", "notify", "phone_region"],
            vec!["mapping"],
        ]
    );
}

#[test]
fn a_configuration_changes_after_setup_on_sqlite() {
    a_configuration_changes_after_setup(&Env::new());
}

#[test]
fn a_configuration_changes_after_setup_on_postgres() {
    on_postgres("config_changes", a_configuration_changes_after_setup);
}

/// `runs list` filters by the User Provisioning page's rules, a run that needs attention says
/// where its rows are, `runs logs` writes the panel's download name (or standard output), and
/// a reader that goes away ends a command quietly.
fn operators_find_runs_and_their_logs(env: &Env) {
    with_config(env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let broken = env.write("broken.csv", "Nothing,Useful\n1,2\n");
    let sync = |file: &std::path::Path| {
        env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            file.to_str().unwrap(),
            "--json",
        ])
    };
    let without_json = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(
        stderr(&without_json).contains("see each row with `rollcall runs logs "),
        "{}",
        stderr(&without_json)
    );
    let attention = sync(&people);
    assert!(attention.status.success(), "{attention:?}");
    let run = json(&String::from_utf8_lossy(&attention.stdout))["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json(&String::from_utf8_lossy(&attention.stdout))["status"],
        "needs_attention"
    );
    // With --json, standard error stays for problems only.
    assert_eq!(stderr(&attention), "");
    let failed = sync(&broken);
    assert_eq!(failed.status.code(), Some(1));
    // Scripts see why it failed: the file's problems are in the JSON.
    let failed = json(&String::from_utf8_lossy(&failed.stdout));
    let errors = failed["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{failed}");
    assert!(
        errors[0]["message"].as_str().unwrap().len() > 10 && errors[0].get("line").is_some(),
        "{failed}"
    );
    let listed = json(&env.ok(&["runs", "list", "--org", "Acme", "--json"]));
    assert_eq!(
        listed[0]["errors"], failed["errors"],
        "runs list --json too"
    );
    assert_eq!(listed[1]["errors"], serde_json::json!([]));

    let list = |extra: &[&str]| {
        let out = env.ok(&[&["runs", "list", "--org", "Acme", "--json"][..], extra].concat());
        json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&[]),
        ["data_load_failed", "needs_attention", "needs_attention"]
    );
    assert_eq!(list(&["--status", "needs_attention"]).len(), 2);
    assert_eq!(
        list(&["--status", "success,data_load_failed"]),
        ["data_load_failed"]
    );
    assert_eq!(list(&["--config", "Payroll"]).len(), 3);
    assert_eq!(list(&["--since", "2999-01-01"]).len(), 0);
    assert_eq!(list(&["--since", "2000-01-01T00:00:00Z"]).len(), 3);
    assert_eq!(list(&["--bulk-update"]).len(), 0);
    let refused = |extra: &[&str], why: &str| {
        assert_usage_error(
            &env.run(&[&["runs", "list", "--org", "Acme"][..], extra].concat()),
            why,
        )
    };
    refused(&["--status", "bogus"], "--status 'bogus' is not one of");
    refused(
        &["--since", "yesterday"],
        "--since 'yesterday' is not a date",
    );
    refused(&["--config", "Nope"], "unknown configuration 'Nope'");
    let table = env.ok(&["runs", "list", "--org", "Acme"]);
    assert!(
        table.contains("TRIGGER") && table.contains(" cli "),
        "{table}"
    );

    // The panel's download name, in the current folder; never over an existing file.
    let folder = env.path("downloads");
    std::fs::create_dir(&folder).unwrap();
    let logs = || {
        env.command(&["runs", "logs", &run])
            .current_dir(&folder)
            .output()
            .unwrap()
    };
    assert!(logs().status.success());
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("Sync Logs - ") && names[0].ends_with(".csv"),
        "{names:?}"
    );
    assert_usage_error(&logs(), "already exists here");
    let to_stdout = env.ok(&["runs", "logs", &run, "--output", "-"]);
    assert!(to_stdout.contains("bad-email"), "{to_stdout}");
    assert_eq!(
        to_stdout.as_bytes(),
        std::fs::read(folder.join(&names[0])).unwrap()
    );

    // `rollcall runs list | head -1`: the reader is gone before the command writes.
    let mut child = env
        .command(&["runs", "list", "--org", "Acme"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_ne!(out.status.code(), Some(101), "{out:?}");
}

#[test]
fn operators_find_runs_and_their_logs_on_sqlite() {
    operators_find_runs_and_their_logs(&Env::new());
}

#[test]
fn operators_find_runs_and_their_logs_on_postgres() {
    on_postgres("runs_for_people", operators_find_runs_and_their_logs);
}

fn configurations_end_and_unmanaged_users_begin(env: &Env) {
    with_config(env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let sync = |config: &str| {
        env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            config,
            people.to_str().unwrap(),
            "--json",
        ])
    };
    let first = json(&String::from_utf8_lossy(&sync("Payroll").stdout));
    assert_eq!(first["created"], 2, "{first}");
    let users = |extra: &[&str]| {
        json(&env.ok(&[&["user", "list", "--org", "Acme", "--json"][..], extra].concat()))
    };

    // Unmanaged users: what the application's own sign-up makes, checked like a file's row.
    let carol = env.ok(&[
        "user",
        "create",
        "--org",
        "Acme",
        "--username",
        "carol",
        "--email",
        "carol@acme.com",
        "--first-name",
        "Carol",
        "--field",
        "department=Sales",
        "--json",
    ]);
    let carol = json(&carol);
    assert_eq!(carol["managed_by"], serde_json::Value::Null);
    assert_eq!(carol["fields"]["department"], "Sales");
    let taken = env.run(&[
        "user",
        "create",
        "--org",
        "Acme",
        "--username",
        "dave",
        "--email",
        "JANE@acme.com",
    ]);
    assert_usage_error(&taken, "email=JANE@acme.com");
    let bad = env.run(&[
        "user",
        "create",
        "--org",
        "Acme",
        "--username",
        "erin",
        "--email",
        "erin@",
        "--mobile",
        "12",
    ]);
    assert_usage_error(&bad, "Email");
    assert!(
        stderr(&bad).contains("phone_mobile=12"),
        "every problem is named"
    );
    assert_usage_error(
        &env.run(&[
            "user",
            "create",
            "--org",
            "Acme",
            "--username",
            "erin",
            "--field",
            "colour=red",
        ]),
        "unknown field 'colour'",
    );
    assert_eq!(
        users(&[]).as_array().unwrap().len(),
        3,
        "refused users are not created"
    );
    let unmanaged = users(&["--unmanaged"]);
    assert_eq!(unmanaged.as_array().unwrap().len(), 1, "{unmanaged}");
    assert_eq!(unmanaged[0]["fields"]["username"], "carol");
    let jane = users(&["--search", "jane"]);
    assert_eq!(jane[0]["managed_by"], "Payroll", "{jane}");

    // Disabled: nothing starts from the configuration until it is enabled again.
    let payroll = ["--org", "Acme", "--name", "Payroll"];
    let disabled = json(&env.ok(&[&["config", "disable"][..], &payroll].concat()));
    assert_eq!(disabled["disabled"], true);
    assert_usage_error(&sync("Payroll"), "is disabled");
    assert!(
        env.ok(&["config", "list", "--org", "Acme"])
            .contains("disabled")
    );
    env.ok(&[&["config", "enable"][..], &payroll].concat());
    assert!(sync("Payroll").status.success(), "enabled, it runs again");

    // Deleted: never with its users silently orphaned.
    let refused = env.run(&[&["config", "delete"][..], &payroll].concat());
    assert_usage_error(&refused, "manages 2 users");
    assert!(stderr(&refused).contains("--release-users"));
    assert_eq!(users(&["--unmanaged"]).as_array().unwrap().len(), 1);
    let deleted = env.ok(&[&["config", "delete"][..], &payroll, &["--release-users"]].concat());
    assert!(deleted.contains("2 users released"), "{deleted}");
    assert_eq!(users(&["--unmanaged"]).as_array().unwrap().len(), 3);
    let configs = json(&env.ok(&["config", "list", "--org", "Acme", "--json"]));
    assert!(
        configs
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "Payroll"),
        "{configs}"
    );
    assert_usage_error(&sync("Payroll"), "unknown configuration 'Payroll'");
    let runs = json(&env.ok(&["runs", "list", "--org", "Acme", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 2, "its runs stay: {runs}");

    // The name is free again, and the released users are taken by the new configuration
    // (linked by external ID) rather than refused as another configuration's.
    with_config_named(env, "Payroll");
    let again = json(&String::from_utf8_lossy(&sync("Payroll").stdout));
    assert_eq!(
        (again["created"].as_u64(), again["failed"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );
    assert_eq!(
        users(&["--unmanaged"]).as_array().unwrap().len(),
        1,
        "only carol is left unmanaged"
    );

    let changes = json(&env.ok(&["org", "show", "Acme", "--json"]))["changes"].clone();
    let seen: Vec<(String, String)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["subject"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("configuration", "deleted"),
        ("configuration", "enabled"),
        ("configuration", "disabled"),
        ("user", "created"),
        ("configuration", "created"),
        ("organisation", "created"),
    ] {
        assert!(
            seen.iter()
                .any(|(s, a)| (s.as_str(), a.as_str()) == expected),
            "{expected:?} in {seen:?}"
        );
    }
    let released = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "deleted")
        .unwrap();
    assert!(
        released["fields"].as_array().unwrap().contains(
            &serde_json::json!({"field": "users_released", "before": null, "after": "2"})
        ),
        "{released}"
    );
}

/// A second sftp configuration of Acme with the test mapping, active.
fn with_config_named(env: &Env, name: &str) {
    let mapping = env.write("mapping.toml", MAPPING);
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        name,
        "--kind",
        "sftp",
        "--mode",
        "active",
        "--mapping",
        mapping.to_str().unwrap(),
    ]);
}

#[test]
fn configurations_end_and_unmanaged_users_begin_on_sqlite() {
    configurations_end_and_unmanaged_users_begin(&Env::new());
}

#[test]
fn configurations_end_and_unmanaged_users_begin_on_postgres() {
    on_postgres(
        "config_lifecycle",
        configurations_end_and_unmanaged_users_begin,
    );
}

/// A mobile number the file stops sending is cleared (SPEC §2), so that the next person given
/// that company phone can be synced with it.
#[test]
fn a_file_that_stops_sending_a_mobile_clears_it() {
    let env = Env::new();
    with_config(&env, &[]);
    let sync = |csv: &str| {
        let file = env.write("people.csv", csv);
        json(&env.ok(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            file.to_str().unwrap(),
            "--json",
        ]))
    };
    let header = "EmployeeNumber,WorkEmail,Active,ManagerEmployeeNumber,Mobile,CostCentre\n";
    sync(&format!(
        "{header}1,jane@acme.com,true,,+44 7495 944376,CC1\n"
    ));
    let second = sync(&format!("{header}1,jane@acme.com,true,,,CC1\n"));
    assert_eq!(second["updated"], 1, "{second}");
    let third = sync(&format!(
        "{header}1,jane@acme.com,true,,,CC1\n2,joe@acme.com,true,,+44 7495 944376,CC1\n"
    ));
    assert_eq!(
        (third["created"].as_u64(), third["failed"].as_u64()),
        (Some(1), Some(0)),
        "{third}"
    );
    let users = json(&env.ok(&["user", "list", "--org", "Acme", "--json"]));
    let mobile = |name: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["fields"]["username"] == name)
            .unwrap()["fields"]
            .get("phone_mobile")
            .cloned()
    };
    assert_eq!(mobile("1"), None, "{users}");
    assert_eq!(mobile("2"), Some(serde_json::json!("+44 7495 944376")));
}

/// On a terminal, a sync names each phase after reading, so that a large file's run is never
/// silent (`script` gives the command a terminal).
#[test]
fn a_sync_on_a_terminal_names_its_phases() {
    if !common::have("script") {
        return;
    }
    let env = Env::new();
    with_config(&env, &[]);
    let people = env.write("people.csv", PEOPLE);
    let bin = env!("CARGO_BIN_EXE_rollcall");
    let line = format!(
        "'{bin}' sync --org Acme --config Payroll '{}' --data-dir '{}'",
        people.display(),
        env.path("data").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("ROLLCALL_DATABASE_URL")
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    for phase in [
        "read the file in",
        "planning 3 records against the stored users",
        "applying 2 changes and writing the log (3 rows)",
    ] {
        assert!(seen.contains(phase), "{phase:?} in {seen}");
    }
    let dry = format!("{line} --dry-run");
    let out = std::process::Command::new("script")
        .args(["-qec", &dry, "/dev/null"])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("applying nothing"), "{seen}");
}

/// Run `test` in a fresh PostgreSQL database (skipped, loudly, without one).
fn on_postgres(tag: &str, test: fn(&Env)) {
    let Some(url) = postgres_database(tag) else {
        return;
    };
    let mut env = Env::new();
    env.database_url = Some(url);
    test(&env);
}
