//! The admin JSON API (`/api/v1`) against `rollcall serve`: sign-in, the access rule of
//! SPEC §1, CSRF, tenant isolation, and the runs list with its filters and downloads.

mod common;

use common::{Env, Response, Server, http};
use serde_json::{Value, json};

const PASSWORD: &str = "a long admin password";

struct Api {
    /// Kept for the data directory's lifetime.
    _env: Env,
    server: Server,
}

/// A signed-in admin: the session cookie and the CSRF token.
struct Admin {
    cookie: String,
    csrf: String,
}

impl Api {
    /// `Acme` (provisioning on) with configurations `Payroll` and `Contractors`, one
    /// successful run on each and one failed run on Payroll; `Other` with its own run.
    fn start() -> Api {
        let env = Env::new();
        common::seed_admin_fixture(&env, PASSWORD);
        let server = env.serve();
        Api { _env: env, server }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        admin: Option<&Admin>,
        body: Option<&Value>,
    ) -> Response {
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        if let Some(a) = admin {
            headers.push(("Cookie", a.cookie.clone()));
            headers.push(("X-CSRF-Token", a.csrf.clone()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = body.map(|b| b.to_string().into_bytes());
        http(&self.server.addr, method, path, &headers, body.as_deref())
    }

    fn sign_in(&self, email: &str) -> Admin {
        let r = self.call(
            "POST",
            "/api/v1/session",
            None,
            Some(&json!({"email": email, "password": PASSWORD})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let set_cookie = r.header("set-cookie").unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Admin {
            cookie,
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    fn runs(&self, admin: &Admin, query: &str) -> Value {
        let r = self.call(
            "GET",
            &format!("/api/v1/sync-runs{query}"),
            Some(admin),
            None,
        );
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.json()
    }
}

fn statuses(list: &Value) -> Vec<String> {
    list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let api = Api::start();
    let r = api.call(
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"email": "PEOPLE@acme.example", "password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    for part in ["rollcall_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "not behind TLS here: {cookie}");
    let me = r.json();
    assert_eq!(me["role"], "people_admin");
    assert_eq!(me["user_provisioning"], true);

    for (email, password) in [
        ("people@acme.example", "wrong"),
        ("nobody@acme.example", PASSWORD),
    ] {
        let r = api.call(
            "POST",
            "/api/v1/session",
            None,
            Some(&json!({"email": email, "password": password})),
        );
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "sign_in_failed");
    }
    let r = api.call("POST", "/api/v1/session", None, Some(&json!({"email": 1})));
    assert_eq!(r.status, 400, "{}", r.body);

    let admin = api.sign_in("people@acme.example");
    assert_eq!(
        api.call("GET", "/api/v1/session", Some(&admin), None)
            .status,
        200
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/session", Some(&admin), None)
            .status,
        204
    );
    let r = api.call("GET", "/api/v1/sync-runs", Some(&admin), None);
    assert_eq!(r.status, 401, "the session ended: {}", r.body);
}

#[test]
fn without_a_session_401_without_the_right_403_and_another_organisations_run_404() {
    let api = Api::start();
    assert_eq!(api.call("GET", "/api/v1/sync-runs", None, None).status, 401);
    let forged = Admin {
        cookie: "rollcall_session=rc_forged".into(),
        csrf: String::new(),
    };
    assert_eq!(
        api.call("GET", "/api/v1/sync-runs", Some(&forged), None)
            .status,
        401
    );
    for email in [
        "basic@acme.example",
        "support@acme.example",
        "unset@acme.example",
        "people@quiet.example",
    ] {
        let admin = api.sign_in(email);
        for path in ["/api/v1/sync-runs", "/api/v1/configurations"] {
            let r = api.call("GET", path, Some(&admin), None);
            assert_eq!(r.status, 403, "{email} {path}: {}", r.body);
        }
    }
    let owner = api.sign_in("owner@acme.example");
    assert_eq!(statuses(&api.runs(&owner, "")).len(), 3);

    let acme = api.sign_in("people@acme.example");
    let other = api.sign_in("people@other.example");
    let acme_run = api.runs(&acme, "")["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/api/v1/sync-runs/{acme_run}"),
        format!("/api/v1/sync-runs/{acme_run}/logs?format=csv"),
    ] {
        assert_eq!(
            api.call("GET", &path, Some(&other), None).status,
            404,
            "{path}"
        );
    }
    let r = api.call(
        "POST",
        &format!("/api/v1/sync-runs/{acme_run}/cancel"),
        Some(&other),
        None,
    );
    assert_eq!(r.status, 404);
    let theirs = api.runs(&other, "");
    assert_eq!(theirs["total"], 1, "Other sees only its own run");
}

#[test]
fn state_changing_calls_need_the_csrf_token() {
    let api = Api::start();
    let admin = api.sign_in("people@acme.example");
    let run = api.runs(&admin, "")["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let no_token = Admin {
        cookie: admin.cookie.clone(),
        csrf: "wrong".into(),
    };
    let r = api.call(
        "POST",
        &format!("/api/v1/sync-runs/{run}/cancel"),
        Some(&no_token),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "csrf");
    assert_eq!(
        api.call("DELETE", "/api/v1/session", Some(&no_token), None)
            .status,
        403
    );
    // With the token the call goes through (a finished run cannot be cancelled: 409).
    let r = api.call(
        "POST",
        &format!("/api/v1/sync-runs/{run}/cancel"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only a queued run")
    );
}

#[test]
fn the_runs_list_filters_sorts_and_pages() {
    let api = Api::start();
    let admin = api.sign_in("people@acme.example");
    let all = api.runs(&admin, "");
    assert_eq!(all["total"], 3);
    // Contractors' run met Payroll's user (managed by another configuration): Needs Attention.
    assert_eq!(
        statuses(&all),
        ["data_load_failed", "needs_attention", "success"],
        "newest first"
    );
    let oldest = api.runs(&admin, "?sort=oldest");
    assert_eq!(
        statuses(&oldest),
        ["success", "needs_attention", "data_load_failed"]
    );
    assert_eq!(statuses(&api.runs(&admin, "?status=success")), ["success"]);
    assert_eq!(
        statuses(&api.runs(&admin, "?status=success,data_load_failed")),
        ["data_load_failed", "success"],
        "several statuses"
    );
    assert_eq!(api.runs(&admin, "?status=queued")["total"], 0);

    let configs = api
        .call("GET", "/api/v1/configurations", Some(&admin), None)
        .json();
    let contractors = configs["configurations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Contractors")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let only = api.runs(&admin, &format!("?configuration={contractors}"));
    assert_eq!(only["total"], 1);
    assert_eq!(only["runs"][0]["configuration"]["name"], "Contractors");

    for range in ["7d", "30d", "all"] {
        assert_eq!(
            api.runs(&admin, &format!("?range={range}"))["total"],
            3,
            "{range}"
        );
    }
    let past = api.runs(&admin, "?range=custom&from=2000-01-01&to=2000-01-31");
    assert_eq!(past["total"], 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let inclusive = api.runs(&admin, &format!("?range=custom&from={today}&to={today}"));
    assert_eq!(
        inclusive["total"], 3,
        "custom dates include the whole of both days"
    );

    // Keyset pages: every run once, in order.
    let first = api.runs(&admin, "?limit=2");
    assert_eq!(first["runs"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let second = api.runs(&admin, &format!("?limit=2&after={next}"));
    assert_eq!(second["runs"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|p| {
            p["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
        })
        .collect();
    let all_ids: Vec<&str> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, all_ids);

    for (query, says) in [
        ("?range=week", "range 'week'"),
        ("?status=done", "status 'done'"),
        ("?sort=up", "sort 'up'"),
        ("?range=custom&from=31/01/2024", "from '31/01/2024'"),
        ("?limit=0", "limit"),
        ("?after=garbage", "after"),
    ] {
        let r = api.call(
            "GET",
            &format!("/api/v1/sync-runs{query}"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 400, "{query}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[test]
fn logs_download_as_csv_and_xlsx_with_their_names() {
    let api = Api::start();
    let admin = api.sign_in("people@acme.example");
    let failed = api.runs(&admin, "?status=data_load_failed")["runs"][0].clone();
    let id = failed["id"].as_str().unwrap();
    assert!(failed.get("errors").is_none(), "lists leave the errors out");
    let one = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{id}"),
        Some(&admin),
        None,
    );
    assert_eq!(one.status, 200);
    let errors = one.json()["errors"].clone();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("neither a .csv nor a .xlsx"),
        "the run says why it failed: {errors}"
    );
    let r = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{id}/logs?format=csv"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"Sync Logs - ")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(
        r.body.starts_with("Row,ExternalId,Username,Action"),
        "{}",
        r.body
    );
    assert!(r.body.contains("neither a .csv nor a .xlsx"), "{}", r.body);

    let r = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{id}/logs?format=xlsx&tz=%2B05:30"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .ends_with(".xlsx\"")
    );
    assert!(r.body.starts_with("PK"), "an XLSX is a zip archive");

    let r = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{id}/logs?format=pdf"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 400);
    let detail = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{id}"),
        Some(&admin),
        None,
    );
    assert_eq!(detail.json()["status_label"], "Data Load Failed");
    assert_eq!(detail.json()["has_logs"], true);
}

#[test]
fn the_openapi_document_describes_every_route() {
    let api = Api::start();
    let r = api.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/session", "post"),
        ("/api/v1/session", "get"),
        ("/api/v1/session", "delete"),
        ("/api/v1/configurations", "get"),
        ("/api/v1/sync-runs", "get"),
        ("/api/v1/sync-runs/{id}", "get"),
        ("/api/v1/sync-runs/{id}/logs", "get"),
        ("/api/v1/sync-runs/{id}/cancel", "post"),
        ("/api/v1/sync-runs/{id}/approve", "post"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    let filters: Vec<&str> = paths["/api/v1/sync-runs"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "range",
        "from",
        "to",
        "tz",
        "sort",
        "configuration",
        "status",
        "after",
        "limit",
    ] {
        assert!(filters.contains(&name), "{name} in {filters:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"], "cookie",
        "the session cookie is the API's credential"
    );
    // The documented run fields are the ones the API sends.
    let documented: Vec<String> = doc["components"]["schemas"]["RunView"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let admin = api.sign_in("people@acme.example");
    let run = api.runs(&admin, "")["runs"][0].clone();
    let mut sent: Vec<String> = run.as_object().unwrap().keys().cloned().collect();
    // Only one run that failed to load, asked for alone, carries its errors.
    sent.push("errors".to_owned());
    let mut documented = documented;
    sent.sort();
    documented.sort();
    assert_eq!(sent, documented);
}

#[test]
fn operators_approve_a_blocked_run_with_their_token() {
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
    env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Leavers",
        joiners.to_str().unwrap(),
    ]);
    let blocked = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Leavers",
        leavers.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        blocked.status.code(),
        Some(1),
        "the threshold blocks the run"
    );
    let run: Value = serde_json::from_slice(&blocked.stdout).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let dry = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Leavers",
        leavers.to_str().unwrap(),
        "--json",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "a dry run is not blocked");
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let dry_id = dry["run_id"].as_str().unwrap().to_owned();
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
    let token = env
        .ok(&["operator-token", "create", "--name", "support desk"])
        .trim()
        .to_owned();
    let api = Api {
        server: env.serve(),
        _env: env,
    };
    let path = format!("/api/v1/sync-runs/{run_id}/approve");
    let approve = |bearer: Option<&str>| {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        http(&api.server.addr, "POST", &path, &headers, Some(b""))
    };
    assert_eq!(approve(None).status, 401);
    assert_eq!(approve(Some("rc_not_a_token")).status, 401);
    let admin = api.sign_in("people@acme.example");
    let r = api.call("POST", &path, Some(&admin), None);
    assert_eq!(
        r.status, 401,
        "an admin's session is not an operator's token"
    );

    // The blocked run says what it would have done, the threshold, that nothing changed and
    // what to do; it has no log.
    let view = api
        .call(
            "GET",
            &format!("/api/v1/sync-runs/{run_id}"),
            Some(&admin),
            None,
        )
        .json();
    assert_eq!(view["threshold_hit"], "1");
    assert_eq!(
        view["threshold_note"],
        "would deactivate 2; the threshold is 1; nothing was applied"
    );
    assert_eq!(view["recommended_action"], "Contact Support.");
    assert_eq!(view["has_logs"], false);
    assert_eq!(view["approved_by"], Value::Null);
    // A dry run is marked, reports the block the real run hits, and its log says so by name.
    let view = api
        .call(
            "GET",
            &format!("/api/v1/sync-runs/{dry_id}"),
            Some(&admin),
            None,
        )
        .json();
    assert_eq!(view["dry_run"], true);
    assert_eq!(view["status"], "success");
    assert_eq!(view["threshold_hit"], "1");
    assert_eq!(
        view["threshold_note"],
        "a real run would be blocked: it would deactivate 2, the threshold is 1"
    );
    let log = api.call(
        "GET",
        &format!("/api/v1/sync-runs/{dry_id}/logs?format=csv"),
        Some(&admin),
        None,
    );
    assert_eq!(log.status, 200);
    let disposition = log.header("content-disposition").unwrap();
    assert!(disposition.ends_with(" (dry run).csv\""), "{disposition}");

    let r = approve(Some(&token));
    assert_eq!(r.status, 200, "{}", r.body);
    let applied = r.json();
    assert_eq!(applied["status"], "success");
    assert_eq!(applied["counts"]["deactivated"], 2);
    // Who approved it, and when: its duration counts from then, not from its first start.
    assert_eq!(applied["approved_by"], "support desk");
    assert_eq!(applied["threshold_note"], Value::Null);
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(applied[key].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert!(at("approved_at") >= at("started_at"));
    assert_eq!(
        applied["duration_ms"].as_i64().unwrap(),
        at("ended_at") - at("approved_at")
    );
    let listed = api
        .call("GET", "/api/v1/sync-runs", Some(&admin), None)
        .json();
    let listed = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["approved_by"], "support desk");
    let again = approve(Some(&token));
    assert_eq!(again.status, 409);
    assert!(
        again.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Success")
    );

    api._env.ok(&["operator-token", "revoke", &token]);
    assert_eq!(approve(Some(&token)).status, 401);
}

/// What an operator changes from the CLI reaches admins who are signed in, at once: switching
/// provisioning on shows User Provisioning, disabling an admin ends their session and refuses
/// their sign-in, and a new password ends their sessions.
#[test]
fn operator_changes_reach_signed_in_admins() {
    let api = Api::start();
    let env = &api._env;
    let quiet = api.sign_in("people@quiet.example");
    let runs = |admin: &Admin| {
        api.call("GET", "/api/v1/sync-runs", Some(admin), None)
            .status
    };
    assert_eq!(runs(&quiet), 403);
    env.ok(&["org", "update", "Quiet", "--provisioning", "on"]);
    assert_eq!(runs(&quiet), 200, "provisioning switched on later");
    env.ok(&["org", "update", "Quiet", "--provisioning", "off"]);
    assert_eq!(runs(&quiet), 403);

    let session = |admin: &Admin| api.call("GET", "/api/v1/session", Some(admin), None).status;
    let people = api.sign_in("people@acme.example");
    assert_eq!(session(&people), 200);
    let who = ["--org", "Acme", "--email", "people@acme.example"];
    env.ok(&[&["admin", "disable"][..], &who].concat());
    assert_eq!(session(&people), 401, "a disabled admin's session ends");
    let again = api.call(
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"email": "people@acme.example", "password": PASSWORD})),
    );
    assert_eq!(again.status, 401, "a disabled admin cannot sign in");
    env.ok(&[&["admin", "enable"][..], &who].concat());
    let people = api.sign_in("people@acme.example");
    assert_eq!(session(&people), 200);

    let reset = env.run_with_stdin(
        &[&["admin", "update", "--password-stdin"][..], &who].concat(),
        "a brand new long password\n",
    );
    assert!(reset.status.success(), "{reset:?}");
    assert_eq!(session(&people), 401, "a new password ends the sessions");
    let new = api.call(
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"email": "people@acme.example", "password": "a brand new long password"})),
    );
    assert_eq!(new.status, 200, "{}", new.body);
}
