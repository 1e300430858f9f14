//! The admin panel end to end in headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini: sign-in, every filter of the User Provisioning page with its pills, Clear
//! filters, the downloads, a run's detail, and what other roles see. Screenshots of each page
//! go to `target/tmp/screenshots/` for review.
//!
//! Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); without them the
//! test skips loudly, unless `ROLLCALL_REQUIRE_ALL=1`.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const PASSWORD: &str = "a long admin password";

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    let found = Command::new("sh")
        .args(["-c", "command -v chromedriver && command -v chromium"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let what = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
        if std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("ROLLCALL_REQUIRE_ALL=1 but {what}");
        }
        eprintln!("SKIPPED: {what}");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

struct Panel {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Panel {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// A screenshot at a phone's width too (`{name}-400`), checking that the page fits it.
    async fn shot_narrow(&self, name: &str) {
        let (width, height) = self.client.get_window_size().await.unwrap();
        self.client.set_window_size(400, 1000).await.unwrap();
        let (scroll, inner) = self.fits().await;
        assert!(
            scroll <= inner,
            "{name} at 400px: {scroll}px wide in {inner}px"
        );
        self.shot(&format!("{name}-400")).await;
        self.client
            .set_window_size(width as u32, height as u32)
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    }

    /// The `href` of the first element `css` finds.
    async fn href(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .attr("href")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{css} has no href"))
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn choose(&self, select_id: &str, value: &str) {
        self.client
            .find(Locator::Id(select_id))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// Follow a link or press a button that loads another URL, and wait until the new page
    /// shows `ready` (waiting for the URL first, so the old page's element cannot answer).
    async fn go_by(&self, css: &str, ready: &str) {
        let before = self.client.current_url().await.unwrap();
        self.click(css).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.client.current_url().await.unwrap() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "{css} did not navigate"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client
            .wait()
            .for_element(Locator::Css(ready))
            .await
            .unwrap();
    }

    async fn pills(&self) -> Vec<String> {
        self.texts(".pills .pill")
            .await
            .into_iter()
            .map(|t| t.trim_end_matches('×').trim().to_owned())
            .collect()
    }

    async fn statuses(&self) -> Vec<String> {
        self.texts("table.runs tbody .badge:not(.badge-dry_run)")
            .await
    }

    async fn sign_in(&self, email: &str) {
        self.goto("/admin/sign-in").await;
        let form = self.client.form(Locator::Css("form")).await.unwrap();
        form.set_by_name("email", email).await.unwrap();
        form.set_by_name("password", PASSWORD).await.unwrap();
        form.submit().await.unwrap();
        self.client
            .wait()
            .for_element(Locator::Css("header .who"))
            .await
            .unwrap();
    }

    async fn sign_out(&self) {
        self.client
            .find(Locator::Css("header .who button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.client
            .wait()
            .for_element(Locator::Id("password"))
            .await
            .unwrap();
    }

    async fn submit_filters(&self) {
        self.go_by("form.filters button[type=submit]", "#run-count")
            .await;
    }

    /// Fetch a URL from inside the page (with the session cookie), as a download would.
    async fn fetch(&self, href: &str) -> Value {
        self.client
            .execute_async(
                r#"const [url, done] = arguments;
                fetch(url).then(async r => {
                  const bytes = new Uint8Array(await r.arrayBuffer());
                  let bin = ""; bytes.forEach(b => bin += String.fromCharCode(b));
                  done({status: r.status, disposition: r.headers.get("content-disposition"), base64: btoa(bin)});
                });"#,
                vec![json!(href)],
            )
            .await
            .unwrap()
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= table(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_panel_in_chromium() {
    let Some(driver) = chromedriver() else { return };
    let env = Env::new();
    common::seed_admin_fixture(&env, PASSWORD);
    let server: Server = env.serve();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let panel = Panel {
        client: browser(&driver).await,
        base: format!("http://{}", server.addr),
        shots,
    };
    let result = run(&panel).await;
    panel.client.clone().close().await.ok();
    result
}

/// Runs the deactivation threshold concerns, as a People admin reads them: a dry run that a
/// real run's block would stop, a blocked run, an approved one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_dry_and_approved_runs_in_chromium() {
    let Some(driver) = chromedriver() else { return };
    let env = Env::new();
    let mapping = env.write(
        "mapping.toml",
        "[fields]\nexternal_id = \"Id\"\nusername = \"Login\"\nactive = \"Active\"\n",
    );
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    env.ok(&[
        "config",
        "create",
        "--org",
        "Acme",
        "--name",
        "Leavers",
        "--kind",
        "sftp",
        "--mode",
        "active",
        "--mapping",
        mapping.to_str().unwrap(),
        "--deactivation-threshold",
        "1",
    ]);
    let joiners = env.write("joiners.csv", "Id,Login,Active\n1,ann,true\n2,bob,true\n");
    let leavers = env.write("leavers.csv", "Id,Login,Active\n1,ann,false\n2,bob,false\n");
    let sync = |file: &std::path::Path, dry: bool| -> String {
        let mut args = vec![
            "sync",
            "--org",
            "Acme",
            "--config",
            "Leavers",
            file.to_str().unwrap(),
            "--json",
        ];
        if dry {
            args.push("--dry-run");
        }
        let out = env.run(&args);
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        run["run_id"].as_str().unwrap().to_owned()
    };
    sync(&joiners, false);
    let dry = sync(&leavers, true);
    let blocked = sync(&leavers, false);
    let approved = sync(&leavers, false);
    env.ok(&["runs", "approve", &approved]);
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "people@acme.example",
            "--role",
            "people_admin",
            "--sync-access",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success());
    let server: Server = env.serve();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let panel = Panel {
        client: browser(&driver).await,
        base: format!("http://{}", server.addr),
        shots,
    };
    panel.sign_in("people@acme.example").await;

    // The list: the dry run is marked and reports the block; each status explains itself.
    panel.goto("/admin/provisioning").await;
    let row = |id: &str, css: &str| format!("tr[data-run='{id}'] {css}");
    assert_eq!(panel.text(&row(&dry, ".badge-dry_run")).await, "Dry run");
    assert_eq!(
        panel.text(&row(&dry, ".note")).await,
        "A real run would be blocked: it would deactivate 2, the threshold is 1"
    );
    assert!(
        panel
            .texts(&row(&blocked, ".badge-dry_run"))
            .await
            .is_empty()
    );
    let help = panel
        .client
        .find(Locator::Css(&row(&blocked, ".badge")))
        .await
        .unwrap()
        .attr("title")
        .await
        .unwrap()
        .unwrap();
    assert!(help.ends_with("Contact Support."), "{help}");
    // The legend: every status's meaning and recommended action, in seed 001's words.
    panel.click("#legend summary").await;
    let legend = panel.texts("#legend tbody tr").await;
    assert_eq!(legend.len(), 7, "{legend:?}");
    for (status, words) in [
        ("needs_attention", "Download logs and review warnings."),
        (
            "data_load_failed",
            "Download error logs and investigate the cause.",
        ),
        ("above_deactivation_threshold", "Contact Support."),
        ("queued", "No action required."),
    ] {
        assert!(
            panel
                .text(&format!("#legend tr[data-status={status}] td:nth-child(3)"))
                .await
                == words,
            "{status}"
        );
    }
    panel.shot("provisioning-threshold").await;

    // The blocked run: what it would have done, the threshold, nothing applied, what to do.
    panel
        .goto(&format!("/admin/provisioning/runs/{blocked}"))
        .await;
    assert_eq!(
        panel.text("#outcome .note").await,
        "Would deactivate 2; the threshold is 1; nothing was applied."
    );
    assert!(
        panel
            .text("#outcome")
            .await
            .contains("Recommended action: Contact Support."),
    );
    let tiles = panel.texts("dl.counts dt").await;
    assert!(!tiles.contains(&"Deactivated".to_owned()), "{tiles:?}");
    assert_eq!(panel.text("dl.counts div:nth-child(3) dd").await, "2");
    assert_eq!(tiles[2], "Would deactivate");
    assert!(panel.texts("a[download]").await.is_empty(), "no log");
    assert_eq!(
        panel
            .client
            .find_all(Locator::Css("#legend tbody tr"))
            .await
            .unwrap()
            .len(),
        7,
        "the run page has the legend too"
    );
    panel.shot("run-blocked").await;
    panel.shot_narrow("run-blocked").await;

    // The dry run: marked, in the conditional, with the block a real run would hit.
    panel.goto(&format!("/admin/provisioning/runs/{dry}")).await;
    assert_eq!(panel.text(".page-head .badge-dry_run").await, "Dry run");
    assert_eq!(
        panel.text("#outcome .note").await,
        "A real run would be blocked: it would deactivate 2, the threshold is 1."
    );
    assert_eq!(panel.texts("dl.counts dt").await[2], "Would deactivate");
    assert_eq!(
        panel.texts("table.log tbody td:nth-child(4)").await,
        ["Would deactivate", "Would deactivate"]
    );
    let csv = panel
        .fetch(&panel.href("a[href*='format=csv']").await)
        .await;
    let disposition = csv["disposition"].as_str().unwrap();
    assert!(disposition.ends_with(" (dry run).csv\""), "{disposition}");
    panel.shot("run-dry").await;

    // The approved run: who approved it and when.
    panel
        .goto(&format!("/admin/provisioning/runs/{approved}"))
        .await;
    assert!(
        panel
            .text("#approval")
            .await
            .starts_with("Approved by operator via CLI on "),
    );
    assert_eq!(panel.texts("dl.counts dt").await[2], "Deactivated");
    panel.shot("run-approved").await;
    panel.client.clone().close().await.ok();
}

async fn run(panel: &Panel) {
    // Signed out, the panel asks for a sign-in; a wrong password says so.
    panel.goto("/admin/provisioning").await;
    assert!(
        panel
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/sign-in")
    );
    let form = panel.client.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("email", "people@acme.example")
        .await
        .unwrap();
    form.set_by_name("password", "wrong").await.unwrap();
    form.submit().await.unwrap();
    panel
        .client
        .wait()
        .for_element(Locator::Css(".error"))
        .await
        .unwrap();
    assert!(panel.text(".error").await.contains("wrong"));
    panel.shot("sign-in-failed").await;

    panel.sign_in("people@acme.example").await;
    assert!(
        panel
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/provisioning")
    );
    assert_eq!(panel.text("nav a[aria-current]").await, "User Provisioning");
    // Manual uploads' logs are elsewhere, and the page says where (seed 001's FAQ).
    assert!(
        panel
            .text("#bulk-pointer")
            .await
            .starts_with("User Provisioning covers automated syncs only.")
    );
    assert!(
        panel
            .href("#bulk-pointer a")
            .await
            .ends_with("/admin/bulk-update")
    );
    assert_eq!(panel.text("#run-count").await, "3 runs");
    assert_eq!(
        panel.statuses().await,
        ["Data Load Failed", "Needs Attention", "Success"]
    );
    assert!(panel.pills().await.is_empty());
    panel.shot("provisioning").await;

    // Status: one, then two.
    let success = panel
        .client
        .find(Locator::Css("input[name=status][value=success]"))
        .await
        .unwrap();
    success.click().await.unwrap();
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["Success"]);
    assert_eq!(panel.statuses().await, ["Success"]);
    assert!(
        panel
            .client
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap()
            .contains("status=success")
    );
    panel
        .click("input[name=status][value=data_load_failed]")
        .await;
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["Success", "Data Load Failed"]);
    assert_eq!(panel.statuses().await, ["Data Load Failed", "Success"]);
    panel.shot("provisioning-statuses").await;

    // Remove one pill.
    panel
        .go_by(
            ".pills .pill a[aria-label='Remove filter Success']",
            "#run-count",
        )
        .await;
    assert_eq!(panel.pills().await, ["Data Load Failed"]);
    assert_eq!(panel.statuses().await, ["Data Load Failed"]);

    // Clear filters, then configuration, range and sort.
    panel.go_by(".pills a.clear", "#run-count").await;
    assert!(panel.pills().await.is_empty());
    assert_eq!(panel.text("#run-count").await, "3 runs");

    panel
        .client
        .find(Locator::Id("configuration"))
        .await
        .unwrap()
        .select_by_label("Contractors")
        .await
        .unwrap();
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["Contractors"]);
    assert_eq!(panel.statuses().await, ["Needs Attention"]);

    panel.goto("/admin/provisioning").await;
    panel.choose("range", "7d").await;
    panel.choose("sort", "oldest").await;
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["Last 7 Days", "Oldest first"]);
    assert_eq!(
        panel.statuses().await,
        ["Success", "Needs Attention", "Data Load Failed"]
    );
    panel.shot("provisioning-range-sort").await;

    // A custom range in the past: the empty state.
    panel.goto("/admin/provisioning").await;
    panel.choose("range", "custom").await;
    for (id, date) in [("from", "2000-01-01"), ("to", "2000-01-31")] {
        panel
            .client
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1];",
                vec![json!(id), json!(date)],
            )
            .await
            .unwrap();
    }
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["1 Jan 2000 – 31 Jan 2000"]);
    assert_eq!(panel.text("#run-count").await, "0 runs");
    assert!(panel.text(".empty h2").await.contains("No runs match"));
    panel.shot("provisioning-empty").await;

    // Downloads: the names come from the run's start; the contents are the log.
    panel
        .goto("/admin/provisioning?status=data_load_failed")
        .await;
    let csv_href = panel.href("table.runs a[href*='format=csv']").await;
    let csv = panel.fetch(&csv_href).await;
    assert_eq!(csv["status"], 200);
    let disposition = csv["disposition"].as_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"Sync Logs - ")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let body = String::from_utf8(base64_decode(csv["base64"].as_str().unwrap())).unwrap();
    assert!(
        body.starts_with("Row,ExternalId,Username,Action,ErrorType,Message"),
        "{body}"
    );
    assert!(body.contains("neither a .csv nor a .xlsx file"), "{body}");
    let xlsx_href = csv_href.replace("format=csv", "format=xlsx");
    let xlsx = panel.fetch(&xlsx_href).await;
    assert!(xlsx["disposition"].as_str().unwrap().ends_with(".xlsx\""));
    let bytes = base64_decode(xlsx["base64"].as_str().unwrap());
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<String> = sheet.rows().flatten().map(|c| c.to_string()).collect();
    assert_eq!(cells[0], "Row");
    assert!(
        cells
            .iter()
            .any(|c| c.contains("neither a .csv nor a .xlsx file")),
        "{cells:?}"
    );

    // A run's detail, and its log searched.
    panel.go_by("table.runs tbody td a", "dl.counts").await;
    assert!(panel.text("h1").await.starts_with("Payroll · "));
    assert_eq!(panel.text(".page-head .badge").await, "Data Load Failed");
    let run_url = panel.client.current_url().await.unwrap().to_string();
    panel
        .client
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("neither")
        .await
        .unwrap();
    panel.go_by("form.search button", "table.log").await;
    assert_eq!(panel.texts("table.log tbody tr").await.len(), 1);
    panel.shot("run-detail").await;
    panel
        .client
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    panel
        .client
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("no such text")
        .await
        .unwrap();
    panel.go_by("form.search button", "table.log").await;
    assert!(panel.texts("table.log tbody tr").await.is_empty());

    // A managed user's profile is read-only, except the contact fields the source leaves
    // empty (its mapping has no email and no mobile); such an edit is saved and audited.
    panel.goto("/admin/users").await;
    assert_eq!(panel.texts("table.users .source").await, ["Payroll"]);
    panel.go_by("table.users tbody a", "#managed-banner").await;
    assert!(
        panel
            .text("#managed-banner")
            .await
            .starts_with("This user is managed by an external source")
    );
    for id in ["username", "first_name", "job_title", "active"] {
        let element = panel.client.find(Locator::Id(id)).await.unwrap();
        assert_eq!(
            element.tag_name().await.unwrap(),
            "p",
            "{id} is read-only text"
        );
        assert!(element.attr("data-readonly").await.unwrap().is_some());
    }
    assert_eq!(panel.text("#active").await, "Yes");
    panel.shot("user-managed").await;
    let mobile = panel
        .client
        .find(Locator::Id("phone_mobile"))
        .await
        .unwrap();
    assert!(mobile.attr("readonly").await.unwrap().is_none());
    mobile.send_keys("not a phone").await.unwrap();
    // The page comes back at the same URL with the problem: wait for the message itself.
    panel.click("form.profile button").await;
    panel
        .client
        .wait()
        .for_element(Locator::Css(".error"))
        .await
        .unwrap();
    assert!(panel.text(".error").await.starts_with("Phone Mobile"));
    let mobile = panel
        .client
        .find(Locator::Id("phone_mobile"))
        .await
        .unwrap();
    mobile.clear().await.unwrap();
    mobile.send_keys("+44 7495 944376").await.unwrap();
    panel.go_by("form.profile button", ".notice").await;
    assert_eq!(panel.text(".notice").await, "Changes saved.");
    let audit = panel.texts("table.audit tbody td").await;
    assert_eq!(
        audit[1..],
        ["people@acme.example".to_owned(), "Phone Mobile".to_owned()]
    );
    panel.shot("user-edited").await;
    panel.sign_out().await;

    // Bulk Update: a file naming a managed user and an unknown one; both are skipped and
    // logged, and the run is on this page, not on User Provisioning.
    panel.sign_in("people@acme.example").await;
    panel.goto("/admin/bulk-update").await;
    let upload = std::env::temp_dir().join(format!("bulk-{}.csv", std::process::id()));
    std::fs::write(&upload, "Username,JobTitle\nann,Nurse\nnobody,Ghost\n").unwrap();
    panel
        .client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    panel.go_by("form.upload button", "#bulk-result").await;
    assert!(
        panel
            .text("#bulk-result")
            .await
            .ends_with("0 updated, 0 unchanged, 2 skipped, 0 failed — see the log for each row."),
        "{}",
        panel.text("#bulk-result").await
    );
    assert_eq!(
        panel.texts("table.bulk-runs .badge").await,
        ["Needs Attention"]
    );
    panel.shot("bulk-update").await;
    let href = panel.href("table.bulk-runs a[href*='format=csv']").await;
    let log = panel.fetch(&href).await;
    let body = String::from_utf8(base64_decode(log["base64"].as_str().unwrap())).unwrap();
    assert!(
        body.contains("MANAGED_BY_EXTERNAL_SOURCE") && body.contains("NOT_FOUND"),
        "{body}"
    );
    panel.goto("/admin/provisioning").await;
    assert_eq!(panel.text("#run-count").await, "3 runs");
    std::fs::remove_file(&upload).ok();
    panel.sign_out().await;

    // Other roles: no menu entry, and a 403 page.
    for email in ["basic@acme.example", "support@acme.example"] {
        panel.sign_in(email).await;
        assert!(
            panel
                .client
                .find_all(Locator::Css("nav a"))
                .await
                .unwrap()
                .is_empty(),
            "{email} sees no User Provisioning entry"
        );
        panel.goto("/admin/provisioning").await;
        assert_eq!(panel.text("h1").await, "You cannot open this page");
        assert!(
            panel.text("section p").await.starts_with(
                "User Provisioning is for Organisation Administrators and People Administrators."
            ),
            "{email}: the reason is the role"
        );
        panel
            .shot(&format!("forbidden-{}", email.split('@').next().unwrap()))
            .await;
        // The start page has nothing for them, and no link to itself.
        panel.goto("/admin").await;
        assert_eq!(panel.text("h1").await, "Welcome");
        assert!(panel.texts("section a").await.is_empty());
        panel.sign_out().await;
    }
    // A people admin sees why User Provisioning is not theirs: the organisation is not enabled,
    // or they are not set up on the sync service.
    for (email, reason) in [
        (
            "people@quiet.example",
            "Your organisation does not have User Provisioning enabled. Contact your account team",
        ),
        (
            "unset@acme.example",
            "You are not set up on the User Sync Service yet.",
        ),
    ] {
        panel.sign_in(email).await;
        panel.goto("/admin/provisioning").await;
        assert_eq!(panel.text("h1").await, "You cannot open this page");
        let text = panel.text("section p").await;
        assert!(text.starts_with(reason), "{email}: {text}");
        panel.sign_out().await;
    }

    // Another organisation's admin: that run does not exist for them.
    panel.sign_in("people@other.example").await;
    panel.client.goto(&run_url).await.unwrap();
    assert_eq!(panel.text("h1").await, "Not found");
    panel.sign_out().await;
}

/// `ssh-keygen` and `sftp` options for an upload to the test server's drop folder.
fn sftp_put(env: &Env, server: &Server, key: &std::path::Path, login: &str, file: &str) {
    let mut command = Command::new("sftp");
    command
        .current_dir(env.dir.path())
        .args(["-b", "-", "-i"])
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
        ])
        .args(["-P", &server.sftp_port(), &format!("{login}@127.0.0.1")]);
    let out = common::output_with_stdin(command, &format!("put {file}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Panel {
    /// Whether the page is no wider than the window (nothing scrolls sideways).
    async fn fits(&self) -> (i64, i64) {
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    }

    async fn value(&self, id: &str) -> String {
        self.client
            .execute(
                "return document.getElementById(arguments[0]).value;",
                vec![json!(id)],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The run page's chips and problems-first log, the list's Download menu and counts, the
/// Custom range selected by a date, a queued run's page refreshing itself when the run is
/// cancelled, and every page at a phone's width; screenshots at 1400 and 400 pixels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_log_chips_live_list_and_small_screens_in_chromium() {
    let Some(driver) = chromedriver() else { return };
    if !common::have("sftp") || !common::have("ssh-keygen") {
        if std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("ROLLCALL_REQUIRE_ALL=1 but sftp or ssh-keygen is missing");
        }
        eprintln!("SKIPPED: sftp and ssh-keygen are needed to queue a run");
        return;
    }
    let env = Env::new();
    let mapping = env.write(
        "mapping.toml",
        "[fields]\nexternal_id = \"Id\"\nusername = \"Login\"\nactive = \"Active\"\n\
         first_name = \"First\"\nsecond_name = \"Last\"\nmanager = \"Manager\"\n\
         [custom_fields]\nCostCentre = \"CostCentre\"\n",
    );
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    let key = env.path("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let out = env.run_with_stdin(
        &[
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
            mapping.to_str().unwrap(),
            "--sftp-user",
            "payroll",
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
    // Rows 2..6: ann and dan are fine, bob's manager is unknown (a warning), cat's Active
    // and eve's missing username fail.
    let people = env.write(
        "people.csv",
        "Id,Login,Active,First,Last,Manager,CostCentre\n\
         1,ann,true,Ann,Lee,,CC-1\n\
         2,bob,true,Bob,Ray,99,CC-2\n\
         3,cat,maybe,Cat,Fox,,CC-3\n\
         4,dan,true,Dan,Orr,1,CC-4\n\
         5,,true,Eve,Poe,,CC-5\n",
    );
    let clean = env.write(
        "clean.csv",
        "Id,Login,Active,First,Last,Manager,CostCentre\n1,ann,true,Annie,Lee,,CC-1\n",
    );
    let bad = env.write("bad.txt", "not a spreadsheet");
    let sync = |file: &std::path::Path| -> String {
        let out = env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Payroll",
            file.to_str().unwrap(),
            "--json",
        ]);
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        run["run_id"].as_str().unwrap().to_owned()
    };
    let attention = sync(&people);
    let success = sync(&clean);
    let failed = sync(&bad);
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "people@acme.example",
            "--role",
            "people_admin",
            "--sync-access",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success());
    // No workers: an upload stays queued until cancelled.
    let server = env.serve_with(&[("ROLLCALL_RUN_WORKERS", "0")]);
    sftp_put(&env, &server, &key, "payroll", "people.csv");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let panel = Panel {
        client: browser(&driver).await,
        base: format!("http://{}", server.addr),
        shots,
    };
    panel.sign_in("people@acme.example").await;

    // The run page: chips with counts, problems first, readable names, warnings apart.
    panel
        .goto(&format!("/admin/provisioning/runs/{attention}"))
        .await;
    let chips: Vec<String> = panel
        .texts(".chips .chip")
        .await
        .into_iter()
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        chips,
        [
            "All rows 5",
            "Failed 2",
            "Warnings 1",
            "Created 3",
            "Updated 0",
            "Deactivated 0",
            "Reactivated 0",
            "Unchanged 0"
        ]
    );
    assert_eq!(
        panel
            .text(".chip[aria-current]")
            .await
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["All", "rows", "5"]
    );
    assert_eq!(
        panel.texts("table.log thead th").await,
        [
            "Row",
            "External ID",
            "Username",
            "Action",
            "Error type",
            "Message",
            "Additional data",
            "Changed fields"
        ]
    );
    assert_eq!(
        panel.texts("table.log tbody td:nth-child(4)").await,
        ["Failed", "Failed", "Created", "Created", "Created"],
        "failed rows first"
    );
    assert_eq!(
        panel.texts("table.log tbody td:nth-child(1)").await,
        ["4", "6", "3", "2", "5"],
        "failed, then warned, then the rest, each in file order"
    );
    let mut classes = Vec::new();
    for row in panel
        .client
        .find_all(Locator::Css("table.log tbody tr"))
        .await
        .unwrap()
    {
        classes.push(row.attr("class").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        classes,
        [
            "row-failed",
            "row-failed",
            "row-warning",
            "row-ok",
            "row-ok"
        ]
    );
    assert_eq!(
        panel.texts("table.log .code-warning").await,
        ["MANAGER_NOT_FOUND"]
    );
    assert_eq!(panel.texts("table.log .code-error").await.len(), 2);
    assert!(
        panel
            .texts("table.log tbody td:nth-child(7)")
            .await
            .iter()
            .any(|c| c.contains("99")),
        "AdditionalData is shown"
    );
    for cell in panel.texts("table.log tbody td:nth-child(8)").await {
        assert!(!cell.contains('_'), "changed fields are labelled: {cell}");
    }
    panel.shot("run-needs-attention").await;

    // A chip filters the log.
    panel
        .go_by(
            ".chip[data-show=failed]",
            ".chip[data-show=failed][aria-current]",
        )
        .await;
    assert!(
        panel
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("show=failed")
    );
    assert_eq!(
        panel.texts("table.log tbody td:nth-child(4)").await,
        ["Failed", "Failed"]
    );
    panel
        .go_by(
            ".chip[data-show=warnings]",
            ".chip[data-show=warnings][aria-current]",
        )
        .await;
    assert_eq!(
        panel.texts("table.log tbody td:nth-child(3)").await,
        ["bob"]
    );
    panel
        .go_by(
            ".chip[data-show=updated]",
            ".chip[data-show=updated][aria-current]",
        )
        .await;
    assert!(panel.texts("table.log tbody tr").await.is_empty());
    assert!(panel.text("#log-empty").await.starts_with("No log rows"));

    // The list: one Download menu per run with a log, counts, file and trigger, live while a
    // run is queued.
    panel.goto("/admin/provisioning").await;
    let row = |id: &str, css: &str| format!("tr[data-run='{id}'] {css}");
    assert_eq!(
        panel.text(&row(&attention, "td.summary")).await,
        "3 created · 2 failed · 1 warning"
    );
    assert_eq!(panel.text(&row(&attention, ".trigger")).await, "CLI");
    assert_eq!(panel.text(&row(&attention, ".file")).await, "people.csv");
    assert_eq!(
        panel
            .client
            .find_all(Locator::Css(&row(&attention, "details.download")))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        panel.texts("table.runs .button").await.is_empty(),
        "no solid buttons"
    );
    panel
        .click(&row(&attention, "details.download summary"))
        .await;
    assert_eq!(
        panel
            .texts(&row(&attention, "details.download[open] a"))
            .await,
        ["CSV", "Excel (XLSX)"]
    );
    let xlsx = panel
        .fetch(&panel.href(&row(&attention, "a[href*='format=xlsx']")).await)
        .await;
    assert_eq!(xlsx["status"], 200);
    panel
        .click(&row(&attention, "details.download summary"))
        .await;
    let started = panel.text(&row(&success, "td:first-child a")).await;
    assert!(
        started.matches(':').count() == 2,
        "times to the second: {started}"
    );
    let queued = panel
        .texts("table.runs tbody tr")
        .await
        .iter()
        .position(|t| t.contains("Queued"))
        .expect("the uploaded run is queued");
    assert_eq!(queued, 0, "newest first");
    let queued_id = panel
        .client
        .find(Locator::Css("table.runs tbody tr"))
        .await
        .unwrap()
        .attr("data-run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        panel.text(&row(&queued_id, ".trigger")).await,
        "SFTP upload"
    );
    assert!(panel.client.find(Locator::Css("[data-live]")).await.is_ok());
    panel.shot("provisioning-live").await;

    // Entering a date selects Custom by itself; the pill shows dates as the table does.
    assert_eq!(panel.value("range").await, "all");
    panel
        .client
        .execute(
            "const f = document.getElementById('from'); f.value = '2000-01-01'; \
             f.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(panel.value("range").await, "custom");
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["1 Jan 2000 – today"]);
    assert_eq!(panel.text("#run-count").await, "4 runs");
    // Without the script, a date alone is a Custom range too; a wrong filter shows no runs
    // and says why, in the form's words.
    panel.goto("/admin/provisioning?to=2000-01-31").await;
    assert_eq!(panel.pills().await, ["any date – 31 Jan 2000"]);
    assert_eq!(panel.value("range").await, "custom");
    panel
        .goto("/admin/provisioning?from=2000-02-01&to=2000-01-01")
        .await;
    assert_eq!(
        panel.text("#filter-error").await,
        "These filters cannot be applied: the From date is after the To date: swap them. Change them and apply again; no runs are shown until then."
    );
    assert_eq!(panel.text("#run-count").await, "0 runs");
    // The source filter.
    panel.goto("/admin/provisioning").await;
    panel.choose("source", "SFTP Sync").await;
    panel.submit_filters().await;
    assert_eq!(panel.pills().await, ["SFTP Sync"]);
    assert_eq!(panel.text("#run-count").await, "4 runs");

    // The queued run's page and the list refresh themselves when the run is cancelled.
    panel
        .goto(&format!("/admin/provisioning/runs/{queued_id}"))
        .await;
    assert_eq!(panel.text(".page-head .badge").await, "Queued");
    panel.shot("run-queued").await;
    panel.shot_narrow("run-queued").await;
    panel.goto("/admin/provisioning").await;
    panel
        .client
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    env.ok(&["runs", "cancel", &queued_id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let badge = panel
            .client
            .find(Locator::Css(&row(&queued_id, ".badge")))
            .await
            .ok();
        let text = match badge {
            Some(b) => b.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if text == "Cancelled" {
            break;
        }
        assert!(Instant::now() < deadline, "the list did not refresh itself");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reloaded = panel
        .client
        .execute("return window.notReloaded === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(reloaded, json!(true), "the page reloaded itself");
    assert!(
        panel
            .client
            .find(Locator::Css("[data-live]"))
            .await
            .is_err()
    );

    // A managed user's profile: headed by the name, manager and custom fields shown, values
    // as text, Active as Yes.
    panel.goto("/admin/users?q=dan").await;
    panel.go_by("table.users tbody a", "#managed-banner").await;
    assert_eq!(panel.text("h1").await, "Dan Orr");
    assert_eq!(panel.text("#manager").await, "Annie Lee");
    assert_eq!(panel.text("#active").await, "Yes");
    assert_eq!(
        panel
            .client
            .find(Locator::Id("first_name"))
            .await
            .unwrap()
            .tag_name()
            .await
            .unwrap(),
        "p",
        "read-only values are text"
    );
    assert!(panel.text("#custom-fields").await.contains("CC-4"));
    let profile = panel.client.current_url().await.unwrap().path().to_owned();
    panel.shot("user-profile").await;

    // Bulk Update: the result notice has the run's status colour.
    panel.goto("/admin/bulk-update").await;
    let upload = env.write("bulk.csv", "Username,JobTitle\nann,Nurse\n");
    panel
        .client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    panel.go_by("form.upload button", "#bulk-result").await;
    assert_eq!(
        panel
            .client
            .find(Locator::Id("bulk-result"))
            .await
            .unwrap()
            .attr("class")
            .await
            .unwrap()
            .unwrap(),
        "notice notice-needs_attention"
    );
    panel.shot("bulk-update-result").await;

    // Every page at 1400 and at 400 pixels: nothing wider than the window.
    let pages = [
        ("provisioning", "/admin/provisioning".to_owned()),
        (
            "run-needs-attention",
            format!("/admin/provisioning/runs/{attention}"),
        ),
        ("run-success", format!("/admin/provisioning/runs/{success}")),
        (
            "run-data-load-failed",
            format!("/admin/provisioning/runs/{failed}"),
        ),
        (
            "run-cancelled",
            format!("/admin/provisioning/runs/{queued_id}"),
        ),
        ("users", "/admin/users".to_owned()),
        ("user-profile", profile),
        ("bulk-update", "/admin/bulk-update".to_owned()),
    ];
    for width in [1400, 400] {
        panel.client.set_window_size(width, 1000).await.unwrap();
        for (name, path) in &pages {
            panel.goto(path).await;
            panel
                .client
                .wait()
                .for_element(Locator::Css("h1"))
                .await
                .unwrap();
            let (scroll, inner) = panel.fits().await;
            assert!(
                scroll <= inner,
                "{name} at {width}px: the page is {scroll}px wide in a {inner}px window"
            );
            panel.shot(&format!("{name}-{width}")).await;
        }
    }
    panel.client.clone().close().await.ok();
}

/// A run In Progress as a People admin sees it: a large file synced from the command line is
/// recorded once it is read, the page says the run is working, and it shows the outcome by
/// itself when the run ends (it reloads while a run is Queued or In Progress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_progress_run_in_chromium() {
    let Some(driver) = chromedriver() else { return };
    let env = Env::new();
    common::seed_admin_fixture(&env, PASSWORD);
    let server: Server = env.serve();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let panel = Panel {
        client: browser(&driver).await,
        base: format!("http://{}", server.addr),
        shots,
    };
    panel.sign_in("people@acme.example").await;
    // Large enough that planning and applying take seconds after the run is recorded.
    let mut csv = String::from("EmployeeNumber,Username,Active\n");
    for n in 1_000..301_000 {
        csv.push_str(&format!("{n},user{n},true\n"));
    }
    let big = env.write("big.csv", &csv);
    let mut sync = env
        .command(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            "Contractors",
            big.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let working = loop {
        let out = env.ok(&[
            "runs",
            "list",
            "--org",
            "Acme",
            "--status",
            "in_progress",
            "--json",
        ]);
        let runs: Value = serde_json::from_str(&out).unwrap();
        if let Some(id) = runs[0]["run_id"].as_str() {
            break Some(id.to_owned());
        }
        if sync.try_wait().unwrap().is_some() {
            break None;
        }
        assert!(Instant::now() < deadline, "the sync neither ran nor ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let Some(id) = working else {
        // The machine was fast enough to end the run between two looks: nothing to show.
        eprintln!("SKIPPED: the run ended before it could be seen In Progress");
        panel.client.clone().close().await.ok();
        return;
    };
    panel.goto(&format!("/admin/provisioning/runs/{id}")).await;
    if panel.text(".page-head .badge").await == "In Progress" {
        panel.shot("run-in-progress").await;
        panel.shot_narrow("run-in-progress").await;
    }
    assert!(sync.wait().unwrap().success());
    // The page shows the outcome by itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let badge = panel.text(".page-head .badge").await;
        if badge == "Success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page still says {badge:?} after the run ended"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panel.client.clone().close().await.ok();
}
