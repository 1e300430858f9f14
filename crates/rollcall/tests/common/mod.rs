//! Helpers shared by the black-box tests: a data directory, the binary, a running server and
//! a minimal HTTP/1.1 client (no client library needed for loopback tests).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh data directory (or PostgreSQL database) for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            database_url: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        cmd.args(args);
        // The data directory also holds the SFTP host key, the spool and the node id, so it
        // is given with PostgreSQL too (else they would land in the working directory).
        cmd.arg("--data-dir").arg(self.path("data"));
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env_remove("ROLLCALL_DATABASE_URL")
            .env_remove("ROLLCALL_DATA_DIR");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        output_with_stdin(self.command(args), stdin)
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Start `rollcall serve` on a free port.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    pub fn serve_with(&self, envs: &[(&str, &str)]) -> Server {
        self.start_serve(envs, Stdio::null())
    }

    /// [`Env::serve_with`], with the server's log (standard error) written to `log`.
    pub fn serve_logging(&self, envs: &[(&str, &str)], log: &Path) -> Server {
        self.start_serve(envs, std::fs::File::create(log).unwrap().into())
    }

    fn start_serve(&self, envs: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut cmd = self.command(&["serve", "--http", "127.0.0.1:0", "--sftp", "127.0.0.1:0"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("serve printed nothing").unwrap();
        let addr = line
            .strip_prefix("http listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        let line = lines.next().expect("serve printed one line").unwrap();
        let sftp_addr = line
            .strip_prefix("sftp listening on ")
            .unwrap_or_else(|| panic!("unexpected second line: {line}"))
            .to_owned();
        Server {
            child,
            addr,
            sftp_addr,
        }
    }
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub sftp_addr: String,
}

impl Server {
    pub fn sftp_port(&self) -> String {
        self.sftp_addr.rsplit(':').next().unwrap().to_owned()
    }

    /// A line of the server's `/proc/PID/status` in KiB: `VmRSS` (resident now) or `VmHWM`
    /// (the peak resident size).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Kill the process at once (SIGKILL): no graceful shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    try_http(addr, method, path, headers, body).unwrap()
}

/// [`http`], for a server that may be gone: an error when it cannot be reached or stops
/// reading the request; a status of 0 when it answered nothing.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    exchange(TcpStream::connect(addr)?, addr, method, path, headers, body)
}

/// [`http`] from the local address `from` (any of 127.0.0.0/8 on loopback), so that one test
/// can play clients at several addresses.
pub fn http_from(
    from: IpAddr,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let target: SocketAddr = addr.parse().unwrap();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket.connect(&target.into()).unwrap();
    exchange(socket.into(), addr, method, path, headers, body).unwrap()
}

fn exchange(
    mut stream: TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    if let Some(body) = body {
        // The server may answer (413) before reading everything.
        let _ = stream.write_all(body);
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A PostgreSQL database for one test, when `ROLLCALL_TEST_DATABASE_URL` names a server.
pub fn postgres_database(tag: &str) -> Option<String> {
    let Ok(admin) = std::env::var("ROLLCALL_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() != Ok("1"),
            "ROLLCALL_REQUIRE_ALL=1 but ROLLCALL_TEST_DATABASE_URL is not set"
        );
        eprintln!("SKIPPED: PostgreSQL test {tag} (set ROLLCALL_TEST_DATABASE_URL to run it)");
        return None;
    };
    let name = format!("rollcall_{tag}_{}", std::process::id());
    let status = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql is needed to create the test database");
    assert!(status.success());
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    Some(format!("{base}/{name}"))
}

const ADMIN_FIXTURE_MAPPING: &str = r#"
[fields]
external_id = "EmployeeNumber"
username    = "Username"
active      = "Active"
"#;

/// The admin panel's fixture: `Acme` (provisioning on) with configurations `Payroll` and
/// `Contractors`, a successful run on Payroll, a Needs Attention run on Contractors (it meets
/// Payroll's user) and a Data Load Failed run on Payroll; `Quiet` (provisioning off); `Other`
/// with its own run; admins of every kind, all with `password`.
pub fn seed_admin_fixture(env: &Env, password: &str) {
    let mapping = env.write("mapping.toml", ADMIN_FIXTURE_MAPPING);
    let good = env.write("good.csv", "EmployeeNumber,Username,Active\n1,ann,true\n");
    let bad = env.write("bad.txt", "not a spreadsheet");
    let other = env.write("other.csv", "EmployeeNumber,Username,Active\n9,zed,true\n");
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    env.ok(&["org", "create", "--name", "Quiet"]);
    env.ok(&["org", "create", "--name", "Other", "--provisioning"]);
    for (org, name) in [
        ("Acme", "Payroll"),
        ("Acme", "Contractors"),
        ("Other", "Payroll"),
    ] {
        env.ok(&[
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
        ]);
    }
    let sync = |org: &str, config: &str, file: &std::path::Path| {
        env.run(&[
            "sync",
            "--org",
            org,
            "--config",
            config,
            file.to_str().unwrap(),
        ]);
    };
    sync("Acme", "Payroll", &good);
    sync("Acme", "Contractors", &good);
    sync("Acme", "Payroll", &bad);
    sync("Other", "Payroll", &other);
    for (org, email, role, access) in [
        ("Acme", "people@acme.example", "people_admin", true),
        ("Acme", "owner@acme.example", "organisation_admin", true),
        ("Acme", "unset@acme.example", "people_admin", false),
        ("Acme", "basic@acme.example", "basic_user", true),
        ("Acme", "support@acme.example", "support_admin", true),
        ("Quiet", "people@quiet.example", "people_admin", true),
        ("Other", "people@other.example", "people_admin", true),
    ] {
        let mut args = vec![
            "admin",
            "create",
            "--org",
            org,
            "--email",
            email,
            "--role",
            role,
            "--password-stdin",
        ];
        if access {
            args.push("--sync-access");
        }
        let out = env.run_with_stdin(&args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run `command` with `stdin` on its standard input; its output captured.
pub fn output_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Something a test needs is absent: a failure in CI, a loud skip elsewhere.
pub fn missing(what: &str) {
    if std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("ROLLCALL_REQUIRE_ALL=1 but {what}: run `bash .ci/run` once to install it");
    }
    eprintln!(
        "SKIPPED: {what} (installed by .ci/run; ROLLCALL_REQUIRE_ALL=1 makes this a failure)"
    );
}

/// Whether a command-line tool is installed (saying so loudly when it is not).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        missing(&format!("`{tool}` is not installed"));
    }
    found
}
