//! SFTP drop folders and the run queue, against `rollcall serve`, driven by the real OpenSSH
//! `sftp` client (key sign-in, and password sign-in through sshpass) and by paramiko as a
//! second client implementation.
//!
//! The clients come from the machine (openssh-client, sshpass) and from the Python venv that
//! `.ci/run` makes; without them a test skips loudly, unless `ROLLCALL_REQUIRE_ALL=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server, have, missing};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

const MAPPING: &str = r#"
[fields]
external_id = "EmployeeNumber"
username    = "Username"
email       = "WorkEmail"
active      = "Active"
"#;

/// A CSV of people `from..to`, all active.
fn people(from: u32, to: u32) -> String {
    let mut csv = String::from("EmployeeNumber,Username,WorkEmail,Active\n");
    for n in from..to {
        csv.push_str(&format!("{n},user{n},user{n}@acme.example,true\n"));
    }
    csv
}

/// An organisation `Acme` with an active sftp configuration per `(name, login)`, each with
/// the same key pair and password.
struct Drop {
    env: Env,
    key: PathBuf,
}

impl Drop {
    fn new(configs: &[(&str, &str)]) -> Option<Drop> {
        if !have("sftp") || !have("ssh-keygen") {
            return None;
        }
        Some(Drop::in_env(Env::new(), configs))
    }

    fn in_env(env: Env, configs: &[(&str, &str)]) -> Drop {
        env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
        let key = env.path("id_ed25519");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let mapping = env.write("mapping.toml", MAPPING);
        for (name, login) in configs {
            let out = env.run_with_stdin(
                &[
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
                    "--sftp-user",
                    login,
                    "--sftp-password-stdin",
                    "--sftp-key",
                    &format!("{}.pub", key.display()),
                ],
                &format!("{PASSWORD}\n"),
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Drop { env, key }
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        self.env.write(name, content)
    }

    /// `sftp -b` with the key; the batch's relative local paths are in the test's folder.
    fn sftp(&self, server: &Server, login: &str, batch: &str) -> Output {
        let mut command = Command::new("sftp");
        command
            .current_dir(self.env.dir.path())
            .args(["-b", "-", "-i"])
            .arg(&self.key)
            .args(ssh_options())
            .args(["-o", "BatchMode=yes"])
            .args(["-P", &server.sftp_port(), &format!("{login}@127.0.0.1")]);
        common::output_with_stdin(command, batch)
    }

    fn sftp_ok(&self, server: &Server, login: &str, batch: &str) -> String {
        let out = self.sftp(server, login, batch);
        assert!(
            out.status.success(),
            "sftp failed on {batch:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The organisation's runs, oldest upload first.
    fn runs(&self) -> Vec<Value> {
        let text = self.env.ok(&["runs", "list", "--org", "Acme", "--json"]);
        let mut runs: Vec<Value> = serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        runs.sort_by(|a, b| {
            (a["queued_at"].as_str(), a["run_id"].as_str())
                .cmp(&(b["queued_at"].as_str(), b["run_id"].as_str()))
        });
        runs
    }

    /// Wait until `n` runs have ended.
    fn ended(&self, n: usize) -> Vec<Value> {
        self.wait(&format!("{n} ended runs"), |runs| {
            runs.iter().filter(|r| is_final(r)).count() >= n
        })
    }

    fn wait(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let runs = self.runs();
            if done(&runs) {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {runs:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Options for every client run; OpenSSH takes the first value of an option, so key-only runs
/// add `BatchMode=yes` after these and password runs `BatchMode=no`.
fn ssh_options() -> [&'static str; 10] {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=20",
    ]
}

/// `sftp` signing in with `password` only (sshpass answers the prompt), running `batch`.
fn sftp_with_password(server: &Server, dir: &Path, password: &str, batch: &str) -> Output {
    sftp_with_password_from("127.0.0.1", server, dir, password, batch)
}

/// [`sftp_with_password`] from the local address `from` (any of 127.0.0.0/8).
fn sftp_with_password_from(
    from: &str,
    server: &Server,
    dir: &Path,
    password: &str,
    batch: &str,
) -> Output {
    let mut command = Command::new("sshpass");
    command
        .current_dir(dir)
        .args(["-p", password, "sftp"])
        .args(ssh_options())
        .args(["-o", &format!("BindAddress={from}")])
        .args([
            "-o",
            "BatchMode=no",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-b",
            "-",
            "-P",
            &server.sftp_port(),
            "payroll@127.0.0.1",
        ]);
    common::output_with_stdin(command, batch)
}

/// The names an `ls -1` printed (the batch's own echoed commands left out).
fn listed(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("sftp>") && !l.trim().is_empty())
        .map(str::trim)
        .collect()
}

fn is_final(run: &Value) -> bool {
    !matches!(run["status"].as_str(), Some("queued" | "in_progress"))
}

fn count(run: &Value, what: &str) -> u64 {
    run[what].as_u64().unwrap()
}

fn time(run: &Value, what: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(run[what].as_str().unwrap()).unwrap()
}

#[test]
fn openssh_key_upload_creates_users_and_the_same_file_again_changes_nothing() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    drop.file("people.csv", &people(1, 4));
    drop.sftp_ok(&server, "payroll", "put people.csv\n");
    let runs = drop.ended(1);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(run["connector"], "SFTP Sync");
    assert_eq!(run["file_name"], "people.csv");
    assert_eq!(count(run, "created"), 3);

    // The folder shows nothing once the run is done; the same file again is a no-op.
    let listing = drop.sftp_ok(&server, "payroll", "ls -1\nput people.csv\n");
    assert!(listed(&listing).is_empty(), "{listing}");
    let runs = drop.ended(2);
    assert_eq!(runs[1]["status"], "success");
    assert_eq!(count(&runs[1], "unchanged"), 3);
    assert_eq!(count(&runs[1], "created"), 0);
}

#[test]
fn openssh_password_sign_in_through_sshpass() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    if !have("sshpass") {
        return;
    }
    let server = drop.env.serve();
    drop.file("people.csv", &people(1, 3));
    let sftp_with = |password: &str| {
        sftp_with_password(&server, drop.env.dir.path(), password, "put people.csv\n")
    };
    let wrong = sftp_with("not the password");
    assert!(!wrong.status.success());
    assert!(drop.runs().is_empty());
    let right = sftp_with(PASSWORD);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let runs = drop.ended(1);
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(count(&runs[0], "created"), 2);
}

/// paramiko, from the venv `.ci/run` makes.
fn paramiko_python() -> Option<PathBuf> {
    let path = std::env::var_os("ROLLCALL_PARAMIKO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/venv/bin/python"));
    let works = Command::new(&path)
        .args(["-c", "import paramiko"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Some(path)
    } else {
        missing(&format!(
            "paramiko is not importable with {}",
            path.display()
        ));
        None
    }
}

#[test]
fn paramiko_uploads_with_a_password_and_with_a_temporary_name() {
    let Some(python) = paramiko_python() else {
        return;
    };
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    let script = r#"
import sys, io, paramiko
port, password, data = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
transport = paramiko.Transport(("127.0.0.1", port))
transport.connect(username="payroll", password=password)
sftp = paramiko.SFTPClient.from_transport(transport)
print(sftp.normalize("."))
sftp.putfo(io.BytesIO(data), "people.csv.part", confirm=True)
print(sorted(sftp.listdir(".")))
sftp.rename("people.csv.part", "people.csv")
try:
    sftp.open("../escape.csv", "w")
    print("ESCAPED")
except IOError as e:
    print("refused:", e)
sftp.close()
transport.close()
"#;
    let out = Command::new(python)
        .args(["-c", script, &server.sftp_port(), PASSWORD, &people(1, 6)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "/");
    assert_eq!(lines[1], "['people.csv.part']");
    assert!(lines[2].starts_with("refused:"), "{stdout}");
    let runs = drop.ended(1);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["file_name"], "people.csv");
    assert_eq!(count(&runs[0], "created"), 5);
}

#[test]
fn a_winscp_style_upload_under_a_temporary_name_then_renamed_starts_exactly_one_run() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    drop.file("people.csv", &people(1, 4));
    // `put -p` also sets the file's times and mode: a harmless no-op here.
    let listing = drop.sftp_ok(
        &server,
        "payroll",
        "put -p people.csv people.csv.filepart\nls -1\nrename people.csv.filepart people.csv\n",
    );
    assert_eq!(listed(&listing), ["people.csv.filepart"], "{listing}");
    let runs = drop.ended(1);
    std::thread::sleep(Duration::from_millis(500));
    let runs_later = drop.runs();
    assert_eq!(runs_later.len(), 1, "{runs_later:#?}");
    assert_eq!(runs[0]["file_name"], "people.csv");
    assert_eq!(runs[0]["status"], "success");

    // A temporary upload that is never renamed starts nothing and is gone with its session.
    drop.sftp_ok(&server, "payroll", "put people.csv later.csv.filepart\n");
    let listing = drop.sftp_ok(&server, "payroll", "ls -1\n");
    assert!(listed(&listing).is_empty(), "{listing}");
    assert_eq!(drop.runs().len(), 1);
}

#[test]
fn one_configurations_uploads_run_in_order_while_another_configuration_runs_beside_them() {
    let Some(drop) = Drop::new(&[("Payroll A", "payroll-a"), ("Payroll B", "payroll-b")]) else {
        return;
    };
    let server = drop.env.serve();
    // Later files touch the same people, so their order shows in the users they leave.
    drop.file("a1.csv", &people(0, 3000));
    drop.file("a2.csv", &people(0, 3000).replace(",true\n", ",false\n"));
    drop.file("a3.csv", &people(0, 3000));
    drop.file("b1.csv", &people(10_000, 16_000));
    std::thread::scope(|s| {
        s.spawn(|| drop.sftp_ok(&server, "payroll-a", "put a1.csv\nput a2.csv\nput a3.csv\n"));
        s.spawn(|| drop.sftp_ok(&server, "payroll-b", "put b1.csv\n"));
    });
    let runs = drop.ended(4);
    let of = |config: &str| -> Vec<&Value> {
        runs.iter()
            .filter(|r| r["configuration"] == config)
            .collect()
    };
    let a = of("Payroll A");
    let b = of("Payroll B");
    assert_eq!(
        a.iter()
            .map(|r| r["file_name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a1.csv", "a2.csv", "a3.csv"]
    );
    for pair in a.windows(2) {
        assert!(
            time(pair[1], "started_at") >= time(pair[0], "ended_at"),
            "one at a time, in upload order: {pair:#?}"
        );
    }
    assert_eq!(count(a[0], "created"), 3000);
    assert_eq!(count(a[1], "deactivated"), 3000);
    assert_eq!(count(a[2], "reactivated"), 3000);
    let (b_start, b_end) = (time(b[0], "started_at"), time(b[0], "ended_at"));
    assert!(
        a.iter()
            .any(|r| time(r, "started_at") < b_end && b_start < time(r, "ended_at")),
        "B's run overlaps one of A's: {runs:#?}"
    );
}

#[test]
fn kill_9_during_a_run_then_restart_completes_the_run_once() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    // Large enough that the run is still in progress when the test looks.
    kill_and_restart(drop, 100_000);
}

#[test]
fn kill_9_during_a_run_then_restart_completes_the_run_once_on_postgres() {
    let Some(url) = common::postgres_database("sftp_kill") else {
        return;
    };
    if !have("sftp") || !have("ssh-keygen") {
        return;
    }
    let mut env = Env::new();
    env.database_url = Some(url);
    kill_and_restart(Drop::in_env(env, &[("Payroll", "payroll")]), 40_000);
}

fn kill_and_restart(drop: Drop, rows: u32) {
    let mut server = drop.env.serve();
    drop.file("people.csv", &people(0, rows));
    drop.sftp_ok(&server, "payroll", "put people.csv\n");
    drop.wait("the run in progress", |runs| {
        runs.first().is_some_and(|r| r["status"] == "in_progress")
    });
    server.kill();
    let interrupted = drop.runs();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0]["status"], "in_progress");

    let _server = drop.env.serve();
    let runs = drop.ended(1);
    assert_eq!(runs.len(), 1, "the run is not doubled: {runs:#?}");
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(count(&runs[0], "created"), u64::from(rows));
    assert_eq!(runs[0]["run_id"], interrupted[0]["run_id"]);

    // The users exist once each: the same file again changes nothing.
    drop.sftp_ok(&_server, "payroll", "put people.csv\n");
    let runs = drop.ended(2);
    assert_eq!(count(&runs[1], "unchanged"), u64::from(rows));
    assert_eq!(count(&runs[1], "created"), 0);
}

#[test]
fn paths_out_of_the_folder_links_and_folders_are_refused() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    drop.file("people.csv", &people(1, 3));
    for hostile in [
        "put people.csv ../escape.csv",
        "put people.csv /../../tmp/escape.csv",
        "put people.csv /tmp/escape.csv",
        "put people.csv sub/escape.csv",
        "ls ..",
        "ls /etc",
        "cd ..",
        "get /etc/passwd passwd",
        "get ../../etc/passwd passwd",
        "mkdir sub",
        "symlink people.csv link.csv",
        "ln -s /etc/passwd link.csv",
    ] {
        let out = drop.sftp(&server, "payroll", &format!("{hostile}\n"));
        assert!(!out.status.success(), "{hostile} was allowed");
    }
    assert!(!Path::new("/tmp/escape.csv").exists());
    assert!(!drop.env.path("passwd").exists());
    assert!(drop.runs().is_empty(), "{:#?}", drop.runs());
    let out = drop.sftp(&server, "payroll", "put people.csv ../escape.csv\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Permission denied") || stderr.contains("not allowed"),
        "{stderr}"
    );
}

#[test]
fn one_login_cannot_see_or_touch_another_configurations_folder() {
    let Some(drop) = Drop::new(&[("Payroll A", "payroll-a"), ("Payroll B", "payroll-b")]) else {
        return;
    };
    // No workers: uploads stay queued, so B's file stays in B's folder.
    let server = drop.env.serve_with(&[("ROLLCALL_RUN_WORKERS", "0")]);
    drop.file("people.csv", &people(1, 3));
    drop.sftp_ok(&server, "payroll-b", "put people.csv b-only.csv\n");
    let b_listing = drop.sftp_ok(&server, "payroll-b", "ls -1\n");
    assert_eq!(listed(&b_listing), ["b-only.csv"], "{b_listing}");

    let a_listing = drop.sftp_ok(&server, "payroll-a", "ls -1\n");
    assert!(listed(&a_listing).is_empty(), "{a_listing}");
    for attempt in [
        "get b-only.csv copy.csv",
        "rm b-only.csv",
        "rename b-only.csv mine.csv",
        "ls ../payroll-b",
        "get ../payroll-b/b-only.csv copy.csv",
        "rm /../payroll-b/b-only.csv",
    ] {
        let out = drop.sftp(&server, "payroll-a", &format!("{attempt}\n"));
        assert!(!out.status.success(), "{attempt} was allowed");
    }
    let runs = drop.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "queued");

    // B may take its own queued upload back: the run is cancelled.
    drop.sftp_ok(&server, "payroll-b", "rm b-only.csv\n");
    assert_eq!(drop.runs()[0]["status"], "cancelled");
}

#[test]
fn the_operator_cancels_a_queued_run() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve_with(&[("ROLLCALL_RUN_WORKERS", "0")]);
    drop.file("people.csv", &people(1, 3));
    drop.sftp_ok(&server, "payroll", "put people.csv\n");
    let run = drop.runs()[0]["run_id"].as_str().unwrap().to_owned();
    let out = drop.env.ok(&["runs", "cancel", &run, "--json"]);
    let cancelled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let again = drop.env.run(&["runs", "cancel", &run]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("only a queued run can be cancelled"),
        "{stderr}"
    );
    let unknown = drop.env.run(&["runs", "cancel", "no-such-run"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn a_disabled_configuration_cancels_its_queue_and_refuses_sign_in() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve_with(&[("ROLLCALL_RUN_WORKERS", "0")]);
    drop.file("people.csv", &people(1, 3));
    drop.sftp_ok(&server, "payroll", "put people.csv\n");
    assert_eq!(drop.runs()[0]["status"], "queued");
    let payroll = ["--org", "Acme", "--name", "Payroll"];
    drop.env
        .ok(&[&["config", "disable"][..], &payroll].concat());
    assert_eq!(
        drop.runs()[0]["status"],
        "cancelled",
        "its queued run is cancelled"
    );
    let refused = drop.sftp(&server, "payroll", "ls\n");
    assert!(
        !refused.status.success(),
        "a disabled configuration's login is refused"
    );
    drop.env.ok(&[&["config", "enable"][..], &payroll].concat());
    drop.sftp_ok(&server, "payroll", "ls\n");
}

#[test]
fn an_upload_over_the_size_limit_fails_and_starts_nothing() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve_with(&[("ROLLCALL_MAX_FILE_BYTES", "2000")]);
    drop.file("big.csv", &people(0, 500));
    let out = drop.sftp(&server, "payroll", "put big.csv\n");
    assert!(!out.status.success());
    drop.file("small.csv", &people(0, 3));
    drop.sftp_ok(&server, "payroll", "put small.csv\n");
    let runs = drop.ended(1);
    assert_eq!(runs.len(), 1, "only the small file ran: {runs:#?}");
    assert_eq!(runs[0]["file_name"], "small.csv");
}

#[test]
fn a_file_of_another_type_is_a_data_load_failed_run_naming_the_accepted_types() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    drop.file("people.txt", &people(1, 3));
    drop.sftp_ok(&server, "payroll", "put people.txt\n");
    let runs = drop.ended(1);
    assert_eq!(runs[0]["status"], "data_load_failed");
    let logs = drop.env.path("logs.csv");
    drop.env.ok(&[
        "runs",
        "logs",
        runs[0]["run_id"].as_str().unwrap(),
        "--format",
        "csv",
        "--output",
        logs.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(logs).unwrap();
    assert!(
        text.contains("'people.txt' is neither a .csv nor a .xlsx file"),
        "{text}"
    );
}

#[test]
fn there_is_no_shell_no_command_and_no_forwarding() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    let server = drop.env.serve();
    let ssh = |extra: &[&str]| {
        Command::new("ssh")
            .arg("-i")
            .arg(&drop.key)
            .args(ssh_options())
            .args(["-o", "BatchMode=yes"])
            .args(["-p", &server.sftp_port()])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let exec = ssh(&["payroll@127.0.0.1", "echo", "SHOULD-NOT-RUN"]);
    assert!(!exec.status.success());
    assert!(!String::from_utf8_lossy(&exec.stdout).contains("SHOULD-NOT-RUN"));
    let shell = ssh(&["-tt", "payroll@127.0.0.1"]);
    assert!(!shell.status.success());
    let forward = ssh(&["-W", &server.addr, "payroll@127.0.0.1"]);
    assert!(
        !forward.status.success(),
        "direct-tcpip forwarding was allowed"
    );
}

#[test]
fn the_operator_changes_a_logins_password_and_keys() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    if !have("sshpass") {
        return;
    }
    let server = drop.env.serve();
    let password_works = |password: &str| {
        sftp_with_password(&server, drop.env.dir.path(), password, "")
            .status
            .success()
    };
    let update = |args: &[&str], stdin: &str| {
        let mut all = vec!["config", "update", "--org", "Acme", "--name", "Payroll"];
        all.extend_from_slice(args);
        let out = drop.env.run_with_stdin(&all, stdin);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(password_works(PASSWORD));
    update(&["--sftp-password-stdin"], "a brand new password\n");
    assert!(!password_works(PASSWORD));
    assert!(password_works("a brand new password"));
    update(&["--sftp-no-password"], "");
    assert!(!password_works("a brand new password"));

    assert!(drop.sftp(&server, "payroll", "ls\n").status.success());
    update(&["--sftp-no-keys"], "");
    assert!(!drop.sftp(&server, "payroll", "ls\n").status.success());

    let short = drop.env.run_with_stdin(
        &[
            "config",
            "update",
            "--org",
            "Acme",
            "--name",
            "Payroll",
            "--sftp-password-stdin",
        ],
        "short\n",
    );
    assert_eq!(short.status.code(), Some(2));
    let nothing = drop
        .env
        .run(&["config", "update", "--org", "Acme", "--name", "Payroll"]);
    assert_eq!(nothing.status.code(), Some(2));
}

/// Issue 19, item 2: wrong passwords for a login, from one address, slow that address down
/// but never stop key sign-in, nor the right password from another address. Before, ten
/// wrong passwords refused the login's key sign-in too for ten minutes.
#[test]
fn wrong_passwords_do_not_stop_key_sign_in_or_other_addresses() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    if !have("sshpass") {
        return;
    }
    let server = drop.env.serve();
    let dir = drop.env.dir.path();
    for _ in 0..12 {
        let out = sftp_with_password_from("127.0.0.1", &server, dir, "guess", "");
        assert!(!out.status.success());
    }
    let attack_ended = Instant::now();
    drop.sftp_ok(&server, "payroll", "ls\n");
    eprintln!(
        "key sign-in {} ms after the wrong passwords",
        attack_ended.elapsed().as_millis()
    );
    let out = sftp_with_password_from("127.0.0.2", &server, dir, PASSWORD, "ls\n");
    assert!(
        out.status.success(),
        "the right password from another address: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 19, item 1: the attempt is reserved before the password is checked, so 40 wrong
/// passwords at once for one login from one address are mostly refused unchecked. Counted
/// in the server's log: each checked one is logged `wrong password`. Before: all 40.
#[test]
fn wrong_passwords_at_once_are_mostly_refused_unchecked() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    if !have("sshpass") {
        return;
    }
    let log = drop.env.path("serve.log");
    let server = drop.env.serve_logging(&[], &log);
    let start = std::sync::Barrier::new(40);
    std::thread::scope(|scope| {
        for _ in 0..40 {
            scope.spawn(|| {
                start.wait();
                let out = sftp_with_password(&server, drop.env.dir.path(), "guess", "");
                assert!(!out.status.success());
            });
        }
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let checked = text
        .lines()
        .filter(|l| l.contains("wrong password"))
        .count();
    let peak_mib = server.memory_kib("VmHWM") / 1024;
    eprintln!("{checked} of 40 checked; peak RSS {peak_mib} MiB");
    assert!(checked >= 1, "the log names wrong passwords");
    assert!(checked <= 10, "{checked} of 40 passwords were checked");
    assert!(peak_mib < 300, "peak RSS {peak_mib} MiB");
}

#[test]
fn the_host_key_is_the_same_after_a_restart() {
    let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
        return;
    };
    if !have("ssh-keyscan") {
        return;
    }
    let scan = |server: &Server| {
        let out = Command::new("ssh-keyscan")
            .args(["-t", "ed25519", "-p", &server.sftp_port(), "127.0.0.1"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    };
    let mut server = drop.env.serve();
    let before = scan(&server);
    assert!(before.starts_with("AAAA"), "{before}");
    server.terminate();
    let server = drop.env.serve();
    assert_eq!(scan(&server), before);
}

/// The run's log as the CSV download gives it, byte for byte.
fn log_bytes(env: &Env, run: &str) -> Vec<u8> {
    let path = env.path(&format!("{run}.csv"));
    env.ok(&[
        "runs",
        "logs",
        run,
        "--format",
        "csv",
        "--output",
        path.to_str().unwrap(),
    ]);
    std::fs::read(path).unwrap()
}

/// Counts and status of a run, as `runs list --json` gives them.
fn outcome(run: &Value) -> Vec<(String, Value)> {
    [
        "status",
        "created",
        "updated",
        "deactivated",
        "reactivated",
        "unchanged",
        "skipped",
        "warnings",
    ]
    .iter()
    .map(|k| (k.to_string(), run[*k].clone()))
    .collect()
}

/// One engine whatever the source: the same file, after the same earlier sync, gives the
/// same log rows and counts through `rollcall sync`, an SFTP upload run by the queue, and a
/// run the deactivation threshold blocked and an operator then approved.
#[test]
fn the_same_file_gives_the_same_log_through_sync_the_queue_and_approval() {
    // Ten people, then a file that keeps three unchanged, changes one, deactivates three,
    // brings two new ones, repeats a username and has an invalid email.
    let first = people(1, 11);
    let mut second = String::from("EmployeeNumber,Username,WorkEmail,Active\n");
    for n in 1..4 {
        second.push_str(&format!("{n},user{n},user{n}@acme.example,true\n"));
    }
    second.push_str("4,user4,renamed4@acme.example,true\n");
    for n in 5..8 {
        second.push_str(&format!("{n},user{n},user{n}@acme.example,false\n"));
    }
    second.push_str("11,user11,user11@acme.example,true\n");
    second.push_str("12,user11,user12@acme.example,true\n");
    second.push_str("13,user13,not-an-email,true\n");
    second.push_str("14,user14,user14@acme.example,true\n");

    let mut logs = Vec::new();
    let mut outcomes = Vec::new();

    // Through `rollcall sync`, then through the queue.
    for via_sftp in [false, true] {
        let Some(drop) = Drop::new(&[("Payroll", "payroll")]) else {
            return;
        };
        let base = drop.file("base.csv", &first);
        drop.env.ok(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            base.to_str().unwrap(),
        ]);
        let file = drop.file("people.csv", &second);
        let run = if via_sftp {
            let server = drop.env.serve();
            drop.sftp_ok(&server, "payroll", "put people.csv\n");
            drop.ended(2).pop().unwrap()
        } else {
            drop.env.run(&[
                "sync",
                "--org",
                "Acme",
                "--config",
                "Payroll",
                file.to_str().unwrap(),
            ]);
            drop.runs().pop().unwrap()
        };
        assert_eq!(run["file_name"], "people.csv", "{run:#}");
        logs.push(log_bytes(&drop.env, run["run_id"].as_str().unwrap()));
        outcomes.push(outcome(&run));
    }

    // Blocked by a threshold of two deactivations, then approved.
    let env = Env::new();
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    let mapping = env.write("mapping.toml", MAPPING);
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Payroll",
        "--kind",
        "workday",
        "--mode",
        "active",
        "--mapping",
        mapping.to_str().unwrap(),
        "--deactivation-threshold",
        "2",
    ]);
    let base = env.write("base.csv", &first);
    env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        base.to_str().unwrap(),
    ]);
    let file = env.write("people.csv", &second);
    let blocked = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        file.to_str().unwrap(),
        "--json",
    ]);
    let blocked: Value = serde_json::from_slice(&blocked.stdout).unwrap();
    assert_eq!(
        blocked["status"], "above_deactivation_threshold",
        "{blocked:#}"
    );
    let id = blocked["run_id"].as_str().unwrap();
    let approved: Value =
        serde_json::from_str(&env.ok(&["runs", "approve", id, "--json"])).unwrap();
    assert_eq!(approved["run_id"], id);
    logs.push(log_bytes(&env, id));
    outcomes.push(outcome(&approved));

    // The file did something of every kind, and all three agree byte for byte.
    let log = String::from_utf8(logs[0].clone()).unwrap();
    for action in ["Updated", "Deactivated", "Created", "Failed", "Unchanged"] {
        assert!(log.contains(action), "no {action} row in:\n{log}");
    }
    assert_eq!(outcomes[0][0].1, "needs_attention", "{:?}", outcomes[0]);
    assert_eq!(outcomes[0], outcomes[1], "sync and queue counts differ");
    assert_eq!(outcomes[0], outcomes[2], "sync and approval counts differ");
    assert_eq!(
        logs[0],
        logs[1],
        "sync and queue logs differ:\n{log}\n---\n{}",
        String::from_utf8_lossy(&logs[1])
    );
    assert_eq!(
        logs[0],
        logs[2],
        "sync and approval logs differ:\n{log}\n---\n{}",
        String::from_utf8_lossy(&logs[2])
    );
}
