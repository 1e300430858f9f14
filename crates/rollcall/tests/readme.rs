//! The README's shell snippets, run as written and in order in an empty folder, with
//! `rollcall serve` running (issue 17): a reader who types them one after the other gets what
//! the README says. Two things are substituted, and only these: `rollcall` is the binary under
//! test with the test's data directory (the README's shell function builds it with cargo), and
//! the SFTP port is the test server's (the README's is the default, 2222). The quickstart's
//! `serve` and `cargo test` blocks are what CI itself runs.

mod common;

use std::process::Command;

use common::{Env, have};

/// The README's function that runs rollcall through cargo.
const CARGO_FUNCTION: &str = r#"rollcall() { cargo run -q --release -p rollcall -- "$@"; }"#;

/// The ```sh blocks of a Markdown text, in order.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_snippets_run_as_written() {
    if !have("sftp") || !have("ssh-keygen") || !have("bash") {
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let env = Env::new();
    let server = env.serve();
    let port = server.sftp_addr.rsplit(':').next().unwrap().to_owned();
    let data = env.path("data");
    let function = format!(
        "rollcall() {{ '{}' \"$@\" --data-dir '{}'; }}",
        env!("CARGO_BIN_EXE_rollcall"),
        data.display()
    );
    let blocks: Vec<String> = shell_blocks(&readme)
        .into_iter()
        .filter(|b| !b.contains("-- serve") && !b.contains("cargo test"))
        .collect();
    assert!(
        blocks.iter().any(|b| b.contains(CARGO_FUNCTION)),
        "the README no longer defines {CARGO_FUNCTION}: update this test"
    );
    assert!(blocks.iter().any(|b| b.contains("-P 2222")));
    let mut script = String::from("set -euo pipefail\n");
    for block in &blocks {
        script.push_str(
            &block
                .replace(CARGO_FUNCTION, &function)
                .replace("-P 2222", &format!("-P {port}")),
        );
    }
    let folder = env.path("reader");
    std::fs::create_dir(&folder).unwrap();
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&folder)
        // ssh keeps the server's key in the reader's own known_hosts.
        .env("HOME", &folder)
        .env_remove("ROLLCALL_DATABASE_URL")
        .env_remove("ROLLCALL_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's snippets failed:\n--- script\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the README says happened: the log was written under the panel's name, and the
    // file dropped over SFTP became a run the server took from the queue.
    let logs: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("Sync Logs - ") && n.ends_with(".xlsx"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let runs = env.ok(&["runs", "list", "--org", "Acme", "--json"]);
        let runs: serde_json::Value = serde_json::from_str(runs.trim()).unwrap();
        // The sync's run, then the dropped file's, both applied.
        let succeeded = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["file_name"] == "people.csv" && r["status"] == "success")
            .count();
        if succeeded == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped file's run: {runs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(server);
}
