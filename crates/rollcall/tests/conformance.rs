//! The real SCIM clients' own test suites (../shared/conformance: scim2-tester, Okta's SPEC
//! test, Microsoft's Entra reference collection) against a live `rollcall serve`.
//!
//! The suites need tools that `.ci/run` installs (a Python venv with scim2-tester, newman from
//! npm). Without them a test skips loudly, unless `ROLLCALL_REQUIRE_ALL=1`, as in CI, where a
//! missing tool fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Env;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skip (or, in CI, fail) when something the suite needs is absent.
fn missing(what: &str) {
    if std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("ROLLCALL_REQUIRE_ALL=1 but {what}: run `bash .ci/run` once to install it");
    }
    eprintln!("SKIPPED: {what} (set up by .ci/run; ROLLCALL_REQUIRE_ALL=1 makes this a failure)");
}

/// The suites: `ROLLCALL_CONFORMANCE_DIR`, or `../shared/conformance` beside the checkout.
fn suites() -> Option<PathBuf> {
    let dir = std::env::var_os("ROLLCALL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/conformance"));
    if dir.join("README.md").exists() {
        Some(dir)
    } else {
        missing(&format!(
            "the conformance suites are not at {}",
            dir.display()
        ));
        None
    }
}

/// A tool from the environment variable, or the copy `.ci/run` installs.
fn tool(var: &str, installed: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(installed));
    if path.exists() {
        Some(path)
    } else {
        missing(&format!(
            "{} is not installed (or set {var})",
            path.display()
        ));
        None
    }
}

/// A server with an empty organisation and its SCIM token.
struct Target {
    _env: Env,
    server: common::Server,
    token: String,
}

impl Target {
    fn start() -> Target {
        let env = Env::new();
        env.ok(&["org", "create", "--name", "Conformance", "--provisioning"]);
        let token = env
            .ok(&["token", "create", "--org", "Conformance"])
            .trim()
            .to_owned();
        let server = env.serve();
        Target {
            _env: env,
            server,
            token,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/scim/v2", self.server.addr)
    }
}

/// The runners end with a line `N passed, M failed[, K skipped]`.
fn summary(output: &Output) -> (u64, u64, String) {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" passed, ") && l.contains(" failed"))
        .unwrap_or_else(|| panic!("no summary line in the suite's output:\n{text}"));
    let number = |word: &str| -> u64 {
        line.split(',')
            .find(|part| part.trim().ends_with(word))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read '{word}' in: {line}"))
    };
    (number("passed"), number("failed"), text)
}

#[test]
fn scim2_tester_reports_no_failure() {
    let (Some(dir), Some(python)) = (
        suites(),
        tool("ROLLCALL_SCIM2_PYTHON", ".ci/venv/bin/python"),
    ) else {
        return;
    };
    let target = Target::start();
    let output = Command::new(python)
        .arg(dir.join("run_scim2_tester.py"))
        .arg(target.url())
        .args(["--token", &target.token])
        .output()
        .unwrap();
    let (passed, failed, text) = summary(&output);
    eprintln!("scim2-tester: {passed} passed, {failed} failed");
    assert!(passed > 0, "scim2-tester ran nothing:\n{text}");
    assert_eq!(failed, 0, "scim2-tester failures:\n{text}");
}

#[test]
fn okta_spec_test_reports_no_failure() {
    let Some(dir) = suites() else { return };
    let target = Target::start();
    let output = Command::new("python3")
        .arg(dir.join("run_runscope.py"))
        .arg(dir.join("okta/Okta-SCIM-20-SPEC-Test.json"))
        .args([
            "--base-url",
            &target.url(),
            "--token",
            &target.token,
            "--seed-user",
        ])
        .output()
        .unwrap();
    let (passed, failed, text) = summary(&output);
    eprintln!("Okta SPEC test: {passed} passed, {failed} failed");
    assert!(passed > 0, "the Okta test ran nothing:\n{text}");
    assert_eq!(failed, 0, "Okta SPEC test failures:\n{text}");
}

/// The failures docs/scim-compliance.md accepts: rows of its "Entra reference collection"
/// table, `| request | assertion | reason |`.
fn accepted_entra_failures() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/scim-compliance.md")).unwrap();
    let section = doc
        .split("<!-- entra-accepted:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- entra-accepted:end -->").next())
        .expect("docs/scim-compliance.md lacks the entra-accepted table");
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| request"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].trim_matches('`').to_owned(),
                cells[1].trim_matches('`').to_owned(),
            )
        })
        .collect()
}

#[test]
fn entra_reference_collection_fails_only_where_documented() {
    let (Some(dir), Some(newman)) = (
        suites(),
        tool("NEWMAN", ".ci/node/node_modules/.bin/newman"),
    ) else {
        return;
    };
    let target = Target::start();
    let out = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new("bash")
        .arg(dir.join("run_entra_postman.sh"))
        .args([&target.url(), &target.token])
        .arg(out.path())
        .env("NEWMAN", newman)
        .output()
        .unwrap();
    let (passed, failed, text) = summary(&output);
    eprintln!("Entra reference collection: {passed} passed, {failed} failed");
    assert!(passed > 0, "the Entra collection ran nothing:\n{text}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    let failures: Vec<(String, String)> = report["run"]["failures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|f| {
                    let request = f["source"]["name"].as_str().unwrap_or_default().to_owned();
                    let assertion = f["error"]["test"].as_str().unwrap_or_default().to_owned();
                    (request, assertion)
                })
                .collect()
        })
        .unwrap_or_default();
    let accepted = accepted_entra_failures();
    let unexpected: Vec<&(String, String)> =
        failures.iter().filter(|f| !accepted.contains(f)).collect();
    assert!(
        unexpected.is_empty(),
        "Entra collection failures not accepted in docs/scim-compliance.md: {unexpected:#?}\n{text}"
    );
}
