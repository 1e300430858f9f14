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
        Target::start_with(&[])
    }

    /// With a SCIM configuration made with these extra `config create` options.
    fn start_with(options: &[&str]) -> Target {
        let env = Env::new();
        env.ok(&["org", "create", "--name", "Conformance", "--provisioning"]);
        let mut create = vec![
            "config",
            "create",
            "--org",
            "Conformance",
            "--name",
            "IdP",
            "--kind",
            "scim",
        ];
        create.extend_from_slice(options);
        env.ok(&create);
        let token = env
            .ok(&["token", "create", "--org", "Conformance", "--config", "IdP"])
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
fn scim2_tester_fails_only_where_documented() {
    let (Some(dir), Some(python)) = (
        suites(),
        tool("ROLLCALL_SCIM2_PYTHON", ".ci/venv/bin/python"),
    ) else {
        return;
    };
    let target = Target::start();
    let report = tempfile::tempdir().unwrap();
    let report = report.path().join("scim2-tester.json");
    let output = Command::new(python)
        .arg(dir.join("run_scim2_tester.py"))
        .arg(target.url())
        .args(["--token", &target.token, "--json"])
        .arg(&report)
        .output()
        .unwrap();
    let (passed, failed, text) = summary(&output);
    eprintln!("scim2-tester: {passed} passed, {failed} failed");
    assert!(passed > 0, "scim2-tester ran nothing:\n{text}");

    // A failure is accepted only when docs/scim-compliance.md lists its check with a text
    // its reason contains (the validation SPEC §2 requires).
    let accepted = accepted_failures("scim2-tester");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let unexpected: Vec<String> = results
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "failed")
        .map(|r| {
            let title = r["title"].as_str().unwrap_or_default();
            let reason = r["reason"].as_str().unwrap_or_default();
            (title.to_owned(), reason.to_owned())
        })
        .filter(|(title, reason)| {
            !accepted
                .iter()
                .any(|(check, needle)| check == title && reason.contains(needle.as_str()))
        })
        .map(|(title, reason)| format!("{title}: {reason}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "scim2-tester failures not accepted in docs/scim-compliance.md:\n{}\n\n{text}",
        unexpected.join("\n")
    );
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

/// The failures docs/scim-compliance.md accepts for a suite: the first two cells of the rows
/// of its table between `<!-- SUITE-accepted:begin -->` and `<!-- SUITE-accepted:end -->`.
fn accepted_failures(suite: &str) -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/scim-compliance.md")).unwrap();
    let begin = format!("<!-- {suite}-accepted:begin -->");
    let end = format!("<!-- {suite}-accepted:end -->");
    let section = doc
        .split(begin.as_str())
        .nth(1)
        .and_then(|rest| rest.split(end.as_str()).next())
        .unwrap_or_else(|| panic!("docs/scim-compliance.md lacks the {suite}-accepted table"));
    section
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let cell = |i: usize| cells.get(i).unwrap_or(&"").trim_matches('`').to_owned();
            (cell(0), cell(1))
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
    // A US customer's configuration: the collection's phone numbers are US national numbers.
    let target = Target::start_with(&["--phone-region", "US"]);
    let work = tempfile::tempdir().unwrap();
    // The collection writes every user's externalId as `${__UUID}`, a JMeter function that
    // Postman never substitutes, so all its users would share one externalId. Run a copy
    // where it is Postman's own `{{$guid}}`, as its authors meant (docs/scim-compliance.md).
    std::fs::create_dir(work.path().join("entra")).unwrap();
    let collection = std::fs::read_to_string(dir.join("entra/PostmanCollection.json")).unwrap();
    std::fs::write(
        work.path().join("entra/PostmanCollection.json"),
        collection.replace("${__UUID}", "{{$guid}}"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("run_entra_postman.sh"),
        work.path().join("run_entra_postman.sh"),
    )
    .unwrap();
    // The runner `require`s the report, so it needs a .json name.
    let out = work.path().join("newman.json");
    let output = Command::new("bash")
        .arg(work.path().join("run_entra_postman.sh"))
        .args([&target.url(), &target.token])
        .arg(&out)
        .env("NEWMAN", newman)
        .output()
        .unwrap();
    let (passed, failed, text) = summary(&output);
    eprintln!("Entra reference collection: {passed} passed, {failed} failed");
    assert!(passed > 0, "the Entra collection ran nothing:\n{text}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
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
    let accepted = accepted_failures("entra");
    let unexpected: Vec<&(String, String)> =
        failures.iter().filter(|f| !accepted.contains(f)).collect();
    assert!(
        unexpected.is_empty(),
        "Entra collection failures not accepted in docs/scim-compliance.md: {unexpected:#?}\n{text}"
    );
}
