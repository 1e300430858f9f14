//! The operator API (`/api/v1/operator`) against `rollcall serve`, on SQLite and PostgreSQL:
//! an organisation set up over HTTP with an operator token, answers that are what the CLI's
//! `--json` prints for the same thing, changes the CLI then sees, and refusals that say what
//! was wrong.

mod common;

use common::{Env, Response, Server, http, postgres_database};
use serde_json::{Value, json};

const PASSWORD: &str = "a long admin password";
const BOT: &str = "provisioning bot";

const MAPPING: &str = r#"
[fields]
external_id = "EmployeeNumber"
username    = "Username"
active      = "Active"
"#;

const MAPPING_WITH_EMAIL: &str = r#"
[fields]
external_id = "EmployeeNumber"
username    = "Username"
email       = "WorkEmail"
active      = "Active"
"#;

/// A running server and an operator token for it.
struct OperatorApi<'a> {
    env: &'a Env,
    server: Server,
    token: String,
}

impl OperatorApi<'_> {
    fn start(env: &Env) -> OperatorApi<'_> {
        let token = env
            .ok(&["operator-token", "create", "--name", BOT])
            .trim()
            .to_owned();
        assert!(token.starts_with("rc_"), "{token}");
        OperatorApi {
            env,
            server: env.serve(),
            token,
        }
    }

    /// A call with the operator token.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let bearer = format!("Bearer {}", self.token);
        self.call_with(method, path, &[("Authorization", &bearer)], body)
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut headers = headers.to_vec();
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string().into_bytes());
        http(&self.server.addr, method, path, &headers, body.as_deref())
    }

    /// A call that must answer `status`; its JSON body (null when empty).
    fn expect(&self, status: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    /// What the CLI prints with `--json` for `args`.
    fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.env.ok(&args)).unwrap()
    }

    /// A refusal: its status, its `code`, and a message containing `says`.
    fn refused(&self, status: u16, method: &str, path: &str, body: Option<&Value>, says: &str) {
        let r = self.call(method, path, body);
        refusal(&r, status, says);
    }
}

fn refusal(r: &Response, status: u16, says: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let error = &r.json()["error"];
    assert_eq!(error["status"], status, "{}", r.body);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(says), "{says:?} in {message:?}");
}

const ORGS: &str = "/api/v1/operator/organisations";

/// Create → configure → admin → token, all over HTTP; what the API lists and shows is what
/// the CLI prints; a mapping changed over HTTP is the one `config show` prints.
fn operators_set_up_an_organisation_over_http(env: &Env) {
    let api = OperatorApi::start(env);

    let org = api.expect(
        201,
        "POST",
        ORGS,
        Some(&json!({"name": "Acme Corp", "provisioning": true})),
    );
    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["provisioning"], true);
    let org_id = org["id"].as_str().unwrap().to_owned();
    let r = api.call("GET", ORGS, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), api.cli_json(&["org", "list"]));
    assert_eq!(r.json()[0]["id"], org_id.as_str());

    // The organisation by name (percent-encoded) or by id.
    let acme = format!("{ORGS}/Acme%20Corp");
    let made = api.call(
        "POST",
        &format!("{acme}/configurations"),
        Some(&json!({
            "name": "Payroll",
            "kind": "sftp",
            "mapping": MAPPING,
            "deactivation_threshold": "10%",
            "notify": "hr@acme.example",
            "phone_region": "gb",
            "sftp_user": "acme-payroll",
            "sftp_password": "a long sftp password",
        })),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let config = made.json();
    assert_eq!(
        made.header("location").unwrap(),
        format!(
            "{ORGS}/{org_id}/configurations/{}",
            config["id"].as_str().unwrap()
        )
    );
    assert_eq!(config["kind"], "sftp");
    assert_eq!(config["mode"], "dry_run", "a file configuration starts dry");
    assert_eq!(config["deactivation_threshold"], "10%");
    assert_eq!(config["notify"], "hr@acme.example");
    assert_eq!(config["phone_region"], "GB");
    assert_eq!(config["sftp_user"], "acme-payroll");
    let mapping = config["mapping"].as_str().unwrap();
    assert!(
        mapping.contains("external_id = \"EmployeeNumber\""),
        "{mapping}"
    );
    assert!(!mapping.contains("WorkEmail"), "{mapping}");

    let shown = api.expect(
        200,
        "GET",
        &format!("{ORGS}/{org_id}/configurations/Payroll"),
        None,
    );
    assert_eq!(shown, config);
    assert_eq!(
        shown,
        api.cli_json(&["config", "show", "--org", "Acme Corp", "--name", "Payroll"])
    );
    assert_eq!(
        api.expect(200, "GET", &format!("{acme}/configurations"), None),
        api.cli_json(&["config", "list", "--org", &org_id])
    );

    // A new mapping, a threshold, and the notifications stopped (null empties).
    let changed = api.expect(
        200,
        "PATCH",
        &format!("{acme}/configurations/Payroll"),
        Some(&json!({
            "mapping": MAPPING_WITH_EMAIL,
            "deactivation_threshold": "5",
            "notify": null,
            "mode": "active",
        })),
    );
    assert_eq!(changed["deactivation_threshold"], "5");
    assert_eq!(changed["notify"], Value::Null);
    assert_eq!(changed["phone_region"], "GB", "left out, it stays");
    assert_eq!(changed["mode"], "active");
    let cli = api.cli_json(&["config", "show", "--org", "Acme Corp", "--name", "Payroll"]);
    assert_eq!(cli, changed);
    let mapping = cli["mapping"].as_str().unwrap();
    assert!(mapping.contains("email = \"WorkEmail\""), "{mapping}");

    // An admin, then the list as the CLI prints it.
    let admin = api.expect(
        201,
        "POST",
        &format!("{acme}/admins"),
        Some(&json!({
            "email": "People@Acme.example",
            "role": "people_admin",
            "sync_access": true,
            "password": PASSWORD,
        })),
    );
    assert_eq!(admin["email"], "People@Acme.example");
    assert_eq!(admin["role"], "people_admin");
    assert_eq!(admin["sync_access"], true);
    assert_eq!(admin["disabled_at"], Value::Null);
    let admins = api.expect(200, "GET", &format!("{acme}/admins"), None);
    assert_eq!(admins, json!([admin]));
    assert_eq!(
        admins,
        api.cli_json(&["admin", "list", "--org", "Acme Corp"])
    );
    // The admin signs in with the password the API set.
    let signed_in = sign_in(&api, "people@acme.example");
    assert_eq!(signed_in.1["role"], "people_admin");
    assert_eq!(signed_in.1["user_provisioning"], true);

    // A SCIM token (a SCIM configuration made for it), which works until it is revoked.
    let issued = api.expect(201, "POST", &format!("{acme}/tokens"), None);
    let scim_token = issued["token"].as_str().unwrap().to_owned();
    let scim = |token: &str| {
        http(
            &api.server.addr,
            "GET",
            "/scim/v2/Users",
            &[("Authorization", &format!("Bearer {token}"))],
            None,
        )
        .status
    };
    assert_eq!(scim(&scim_token), 200);
    let tokens = api.expect(200, "GET", &format!("{acme}/tokens"), None);
    assert_eq!(
        tokens,
        api.cli_json(&["token", "list", "--org", "Acme Corp"])
    );
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert_eq!(tokens[0]["configuration"], "SCIM");
    assert_ne!(tokens[0]["last_used_at"], Value::Null);
    assert_eq!(tokens[0]["revoked_at"], Value::Null);
    let token_id = tokens[0]["id"].as_str().unwrap().to_owned();
    let issued = api.expect(
        201,
        "POST",
        &format!("{acme}/tokens"),
        Some(&json!({"configuration": "SCIM"})),
    );
    assert_ne!(issued["token"], scim_token.as_str());
    let revoke = format!("{acme}/tokens/{token_id}");
    assert_eq!(api.expect(204, "DELETE", &revoke, None), Value::Null);
    assert_eq!(scim(&scim_token), 401, "a revoked token is refused");
    assert_eq!(scim(issued["token"].as_str().unwrap()), 200);
    api.refused(404, "DELETE", &revoke, None, "no live token with id");

    // Rename and switch provisioning off; the organisation shows who changed what.
    let renamed = api.expect(
        200,
        "PATCH",
        &acme,
        Some(&json!({"name": "Acme", "provisioning": false})),
    );
    assert_eq!(
        renamed,
        json!({"id": org_id, "name": "Acme", "provisioning": false})
    );
    let details = api.expect(200, "GET", &format!("{ORGS}/Acme"), None);
    assert_eq!(details, api.cli_json(&["org", "show", &org_id]));
    assert_eq!(details["configurations"].as_array().unwrap().len(), 2);
    assert_eq!(details["admins"], admins);
    let changes = details["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for change in changes {
        assert_eq!(
            change["by"], BOT,
            "changes are recorded as the token's: {change}"
        );
    }
    let subjects: Vec<&str> = changes
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"organisation"), "{subjects:?}");
    assert!(subjects.contains(&"configuration"), "{subjects:?}");
    let notify_change = changes
        .iter()
        .flat_map(|c| c["fields"].as_array().unwrap())
        .find(|f| f["field"] == "notify")
        .expect("the notify change is recorded");
    assert_eq!(notify_change["before"], "hr@acme.example");
    assert_eq!(notify_change["after"], Value::Null);
}

/// Sign in as an admin: the cookie and the session's JSON.
fn sign_in(api: &OperatorApi, email: &str) -> (String, Value) {
    let r = api.call_with(
        "POST",
        "/api/v1/session",
        &[],
        Some(&json!({"email": email, "password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (cookie, r.json())
}

fn session_status(api: &OperatorApi, cookie: &str) -> u16 {
    api.call_with("GET", "/api/v1/session", &[("Cookie", cookie)], None)
        .status
}

/// Disabling an admin over HTTP ends their session at once; enabling lets them back in. Their
/// session is no key to operator routes.
fn admins_change_over_http(env: &Env) {
    env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
    let out = env.run_with_stdin(
        &[
            "admin",
            "create",
            "--org",
            "Acme",
            "--email",
            "owner@acme.example",
            "--role",
            "organisation_admin",
            "--sync-access",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success());
    let api = OperatorApi::start(env);
    let (cookie, _) = sign_in(&api, "owner@acme.example");
    assert_eq!(session_status(&api, &cookie), 200);

    // The admin's own session cookie does not open operator routes.
    let r = api.call_with("GET", ORGS, &[("Cookie", &cookie)], None);
    refusal(&r, 401, "an admin session cannot call operator routes");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = api.call_with(
        "POST",
        &format!("{ORGS}/Acme/admins/owner%40acme.example/disable"),
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(session_status(&api, &cookie), 200, "nothing was disabled");

    // A role change keeps the session; a disable ends it.
    let admin_path = format!("{ORGS}/Acme/admins/owner%40acme.example");
    let changed = api.expect(
        200,
        "PATCH",
        &admin_path,
        Some(&json!({"role": "people_admin", "sync_access": false})),
    );
    assert_eq!(changed["role"], "people_admin");
    assert_eq!(changed["sync_access"], false);
    assert_eq!(session_status(&api, &cookie), 200);
    let disabled = api.expect(200, "POST", &format!("{admin_path}/disable"), None);
    assert_ne!(disabled["disabled_at"], Value::Null);
    assert_eq!(disabled["email"], "owner@acme.example");
    assert_eq!(
        session_status(&api, &cookie),
        401,
        "disabling ends the session"
    );
    let r = api.call_with(
        "POST",
        "/api/v1/session",
        &[],
        Some(&json!({"email": "owner@acme.example", "password": PASSWORD})),
    );
    assert_eq!(r.status, 401, "a disabled admin cannot sign in");
    assert_eq!(
        api.cli_json(&["admin", "list", "--org", "Acme"])[0]["disabled_at"],
        disabled["disabled_at"]
    );

    let enabled = api.expect(200, "POST", &format!("{admin_path}/enable"), None);
    assert_eq!(enabled["disabled_at"], Value::Null);
    let (cookie, me) = sign_in(&api, "owner@acme.example");
    assert_eq!(me["role"], "people_admin");
    assert_eq!(session_status(&api, &cookie), 200);

    // A new password ends the session too.
    api.expect(
        200,
        "PATCH",
        &admin_path,
        Some(&json!({"password": "another long password"})),
    );
    assert_eq!(session_status(&api, &cookie), 401);
    let details = api.expect(200, "GET", &format!("{ORGS}/Acme"), None);
    let actions: Vec<&str> = details["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "updated", "enabled", "disabled", "updated", "created", "created"
        ],
        "after the organisation and the admin were created"
    );
}

/// Missing and wrong tokens are 401 with `WWW-Authenticate: Bearer`; bad values 400, unknown
/// names 404 and taken ones 409, each with a message that says what was wrong.
fn operator_routes_refuse_what_is_wrong(env: &Env) {
    let mapping = env.write("mapping.toml", MAPPING);
    env.ok(&["org", "create", "--name", "Acme"]);
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
        mapping.to_str().unwrap(),
    ]);
    let scim_token = env
        .ok(&["token", "create", "--org", "Acme"])
        .trim()
        .to_owned();
    let revoked = env
        .ok(&["operator-token", "create", "--name", "gone"])
        .trim()
        .to_owned();
    env.ok(&["operator-token", "revoke", &revoked]);
    let api = OperatorApi::start(env);

    let r = api.call_with("GET", ORGS, &[], None);
    refusal(&r, 401, "rollcall operator-token create");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    for bearer in [
        "Bearer rc_not_a_token".to_owned(),
        format!("Bearer {revoked}"),
        format!("Bearer {scim_token}"),
    ] {
        let r = api.call_with("GET", ORGS, &[("Authorization", &bearer)], None);
        refusal(&r, 401, "the operator token is not valid");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    let basic = api.call_with("GET", ORGS, &[("Authorization", "Basic Ym90OnB3")], None);
    refusal(&basic, 401, "Authorization must be `Bearer TOKEN`");
    // The scheme is case-insensitive (RFC 9110).
    let lower = format!("bearer {}", api.token);
    assert_eq!(
        api.call_with("GET", ORGS, &[("Authorization", &lower)], None)
            .status,
        200
    );

    let admins = format!("{ORGS}/Acme/admins");
    let admin = |email: &str, role: &str| json!({"email": email, "role": role, "sync_access": true, "password": PASSWORD});
    api.refused(
        400,
        "POST",
        &admins,
        Some(&admin("not-an-email", "people_admin")),
        "email: 'not-an-email' is not a valid email address",
    );
    api.refused(
        400,
        "POST",
        &admins,
        Some(&admin("ann@acme.example", "boss")),
        "unknown role 'boss': valid roles are organisation_admin, people_admin",
    );
    api.refused(
        400,
        "POST",
        &admins,
        Some(&json!({"email": "ann@acme.example", "role": "people_admin", "password": "short"})),
        "the password must have at least 12 characters",
    );
    api.refused(
        400,
        "POST",
        &admins,
        Some(&json!({"email": "ann@acme.example", "role": "people_admin", "password": PASSWORD, "colour": "red"})),
        "unknown field `colour`",
    );
    api.refused(
        400,
        "POST",
        &admins,
        Some(&json!({"email": "ann@acme.example", "password": PASSWORD})),
        "missing field `role`",
    );
    api.refused(
        400,
        "PATCH",
        &format!("{ORGS}/Acme/configurations/Payroll"),
        Some(&json!({"mapping": MAPPING, "notfy": null})),
        "unknown field `notfy`",
    );
    api.refused(
        400,
        "PATCH",
        &format!("{ORGS}/Acme/configurations/Payroll"),
        Some(&json!({"mapping": "[fields]\nexternal_id = 1\n"})),
        "mapping: the mapping file is not valid TOML",
    );
    api.refused(
        400,
        "PATCH",
        &format!("{ORGS}/Acme/configurations/Payroll"),
        Some(&json!({"deactivation_threshold": "lots"})),
        "'lots' is not a deactivation threshold",
    );
    api.refused(
        400,
        "PATCH",
        &format!("{ORGS}/Acme/configurations/Payroll"),
        Some(&json!({"sftp_keys": ["ssh-ed25519 AAAAC3Nz", "not a key"]})),
        "sftp_keys[1] is not an OpenSSH public key",
    );
    api.refused(
        400,
        "PATCH",
        &format!("{ORGS}/Acme/configurations/Payroll"),
        Some(&json!({})),
        "nothing to change",
    );
    api.refused(
        400,
        "POST",
        &format!("{ORGS}/Acme/configurations"),
        Some(&json!({"name": "Workday", "kind": "workday"})),
        "a workday configuration needs",
    );
    api.refused(
        400,
        "POST",
        &format!("{ORGS}/Acme/configurations"),
        Some(&json!({"name": "Bulk", "kind": "bulk-update"})),
        "kind: unknown kind 'bulk-update': give sftp, scim, workday, google-workspace",
    );
    api.refused(
        400,
        "POST",
        &format!("{ORGS}/Acme/configurations"),
        Some(&json!({"name": "Okta", "kind": "scim", "mode": "live"})),
        "mode: unknown mode 'live'",
    );
    api.refused(
        400,
        "POST",
        ORGS,
        Some(&json!({"name": "  "})),
        "the organisation name must have 1 to 200 printable characters",
    );
    let r = api.call_with(
        "POST",
        ORGS,
        &[
            ("Authorization", &format!("Bearer {}", api.token)),
            ("Content-Type", "text/plain"),
        ],
        None,
    );
    // An empty body reads as `{}` whatever its type.
    refusal(&r, 400, "missing field `name`");
    let r = http(
        &api.server.addr,
        "POST",
        ORGS,
        &[
            ("Authorization", &format!("Bearer {}", api.token)),
            ("Content-Type", "text/plain"),
        ],
        Some(br#"{"name": "Globex"}"#),
    );
    refusal(&r, 415, "Content-Type: application/json");

    // Unknown names are 404; a name taken is 409.
    api.refused(
        404,
        "GET",
        &format!("{ORGS}/Nope"),
        None,
        "unknown organisation 'Nope'",
    );
    api.refused(
        404,
        "GET",
        &format!("{ORGS}/Nope/configurations"),
        None,
        "unknown organisation 'Nope': give its id or name",
    );
    api.refused(
        404,
        "GET",
        &format!("{ORGS}/Acme/configurations/Nope"),
        None,
        "unknown configuration 'Nope' in this organisation (configurations: Payroll, SCIM)",
    );
    api.refused(
        404,
        "PATCH",
        &format!("{ORGS}/Acme/admins/nobody%40acme.example"),
        Some(&json!({"role": "people_admin"})),
        "this organisation has no admin 'nobody@acme.example'",
    );
    api.refused(
        404,
        "POST",
        &format!("{ORGS}/Acme/admins/nobody%40acme.example/disable"),
        None,
        "no admin 'nobody@acme.example'",
    );
    api.refused(
        404,
        "GET",
        "/api/v1/operator/runs/no-such-run",
        None,
        "unknown run 'no-such-run'",
    );
    api.refused(
        404,
        "POST",
        &format!("{ORGS}/Acme/tokens"),
        Some(&json!({"configuration": "Nope"})),
        "unknown configuration 'Nope'",
    );
    api.refused(
        400,
        "POST",
        &format!("{ORGS}/Acme/tokens"),
        Some(&json!({"configuration": "Payroll"})),
        "SCIM tokens belong to a scim configuration",
    );
    api.refused(
        409,
        "POST",
        ORGS,
        Some(&json!({"name": "Acme"})),
        "an organisation named 'Acme' already exists",
    );
    api.refused(
        409,
        "POST",
        &format!("{ORGS}/Acme/configurations"),
        Some(&json!({"name": "Payroll", "kind": "scim"})),
        "a configuration named 'Payroll' already exists",
    );

    // The runs list's query is checked too.
    let runs = format!("{ORGS}/Acme/runs");
    api.refused(
        400,
        "GET",
        &format!("{runs}?colour=red"),
        None,
        "unknown field `colour`",
    );
    api.refused(
        400,
        "GET",
        &format!("{runs}?limit=0"),
        None,
        "limit must be between 1 and 1000",
    );
    api.refused(400, "GET", &format!("{runs}?status=great"), None, "great");
    api.refused(
        400,
        "GET",
        &format!("{runs}?since=yesterday"),
        None,
        "yesterday",
    );
    api.refused(
        404,
        "GET",
        &format!("{runs}?config=Nope"),
        None,
        "unknown configuration 'Nope'",
    );
    api.refused(
        400,
        "GET",
        &format!("{runs}?bulk_update=true&status=success"),
        None,
        "leave out status, config and since",
    );
    // Nothing refused was written.
    assert_eq!(api.cli_json(&["org", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(api.cli_json(&["admin", "list", "--org", "Acme"]), json!([]));
}

/// Runs listed and shown over HTTP are what `runs list --json` and `runs show --json` print.
fn runs_over_http_match_the_cli(env: &Env) {
    let mapping = env.write("mapping.toml", MAPPING);
    env.ok(&["org", "create", "--name", "Acme"]);
    for name in ["Payroll", "Contractors"] {
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
    let good = env.write("good.csv", "EmployeeNumber,Username,Active\n1,ann,true\n");
    let bad = env.write("bad.txt", "not a spreadsheet");
    let sync = |config: &str, file: &std::path::Path| {
        env.run(&[
            "sync",
            "--org",
            "Acme",
            "--config",
            config,
            file.to_str().unwrap(),
        ]);
    };
    sync("Payroll", &good);
    sync("Contractors", &good);
    sync("Payroll", &bad);
    let api = OperatorApi::start(env);
    let runs = format!("{ORGS}/Acme/runs");

    let all = api.expect(200, "GET", &runs, None);
    assert_eq!(all, api.cli_json(&["runs", "list", "--org", "Acme"]));
    let statuses: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["data_load_failed", "needs_attention", "success"]);

    let payroll_success = api.expect(
        200,
        "GET",
        &format!("{runs}?status=success,data_load_failed&config=Payroll"),
        None,
    );
    assert_eq!(
        payroll_success,
        api.cli_json(&[
            "runs",
            "list",
            "--org",
            "Acme",
            "--status",
            "success,data_load_failed",
            "--config",
            "Payroll"
        ])
    );
    assert_eq!(payroll_success.as_array().unwrap().len(), 2);
    let newest = api.expect(200, "GET", &format!("{runs}?limit=1"), None);
    assert_eq!(newest, json!([all[0]]));
    assert_eq!(
        api.expect(200, "GET", &format!("{runs}?since=2999-01-01"), None),
        json!([])
    );
    assert_eq!(
        api.expect(200, "GET", &format!("{runs}?bulk_update=true"), None),
        json!([])
    );

    let first = all[2]["run_id"].as_str().unwrap();
    let shown = api.expect(200, "GET", &format!("/api/v1/operator/runs/{first}"), None);
    assert_eq!(shown, api.cli_json(&["runs", "show", first]));
    assert_eq!(shown["trigger"], "cli");
    assert_eq!(shown["created"], 1);
    assert!(
        shown["mapping"]
            .as_str()
            .unwrap()
            .contains("username = \"Username\""),
        "{shown}"
    );
}

/// Configurations disabled, enabled and deleted, and unmanaged users, over HTTP; what the CLI
/// then sees.
fn configurations_and_users_over_http(env: &Env) {
    let api = OperatorApi::start(env);
    api.expect(
        201,
        "POST",
        ORGS,
        Some(&json!({"name": "Acme", "provisioning": true})),
    );
    api.expect(
        201,
        "POST",
        &format!("{ORGS}/Acme/configurations"),
        Some(&json!({"name": "Payroll", "kind": "sftp", "mode": "active", "mapping": MAPPING_WITH_EMAIL})),
    );
    let people = env.write(
        "people.csv",
        "EmployeeNumber,Username,WorkEmail,Active\n1,ann,ann@acme.com,true\n",
    );
    env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
    ]);

    let users = format!("{ORGS}/Acme/users");
    let carol = api.expect(
        201,
        "POST",
        &users,
        Some(&json!({"username": "carol", "email": "carol@acme.com", "department": "Sales"})),
    );
    assert_eq!(carol["managed_by"], Value::Null);
    assert_eq!(carol["fields"]["department"], "Sales");
    api.refused(
        400,
        "POST",
        &users,
        Some(&json!({"username": "dave", "email": "ANN@acme.com"})),
        "email=ANN@acme.com",
    );
    api.refused(
        400,
        "POST",
        &users,
        Some(&json!({"username": "dave", "colour": "red"})),
        "colour",
    );
    api.refused(
        400,
        "POST",
        &users,
        Some(&json!({"email": "x@acme.com"})),
        "username",
    );
    let listed = api.expect(200, "GET", &users, None);
    assert_eq!(
        listed,
        api.cli_json(&["user", "list", "--org", "Acme"]),
        "the CLI's list"
    );
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let unmanaged = api.expect(200, "GET", &format!("{users}?unmanaged=true"), None);
    assert_eq!(unmanaged.as_array().unwrap().len(), 1);
    assert_eq!(unmanaged[0]["fields"]["username"], "carol");
    api.refused(400, "GET", &format!("{users}?limit=0"), None, "limit");

    let payroll = format!("{ORGS}/Acme/configurations/Payroll");
    let disabled = api.expect(200, "POST", &format!("{payroll}/disable"), None);
    assert_eq!(disabled["disabled"], true);
    let sync = env.run(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        people.to_str().unwrap(),
    ]);
    assert_eq!(
        sync.status.code(),
        Some(2),
        "a disabled configuration runs nothing"
    );
    let enabled = api.expect(200, "POST", &format!("{payroll}/enable"), None);
    assert_eq!(enabled["disabled"], false);

    api.refused(409, "DELETE", &payroll, None, "manages 1 users");
    let deleted = api.expect(
        200,
        "DELETE",
        &format!("{payroll}?release_users=true"),
        None,
    );
    assert_eq!(deleted, json!({"users_released": 1}));
    api.refused(404, "GET", &payroll, None, "Payroll");
    let unmanaged = api.expect(200, "GET", &format!("{users}?unmanaged=true"), None);
    assert_eq!(unmanaged.as_array().unwrap().len(), 2, "ann was released");
    let changes = api.expect(200, "GET", &format!("{ORGS}/Acme"), None)["changes"].clone();
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "deleted" && c["by"] == BOT),
        "recorded as the token's: {changes}"
    );
}

#[test]
fn configurations_and_users_over_http_on_sqlite() {
    configurations_and_users_over_http(&Env::new());
}

#[test]
fn configurations_and_users_over_http_on_postgres() {
    on_postgres("operator_api_users", configurations_and_users_over_http);
}

#[test]
fn operators_set_up_an_organisation_over_http_on_sqlite() {
    operators_set_up_an_organisation_over_http(&Env::new());
}

#[test]
fn operators_set_up_an_organisation_over_http_on_postgres() {
    on_postgres("op_api_setup", operators_set_up_an_organisation_over_http);
}

#[test]
fn admins_change_over_http_on_sqlite() {
    admins_change_over_http(&Env::new());
}

#[test]
fn admins_change_over_http_on_postgres() {
    on_postgres("op_api_admins", admins_change_over_http);
}

#[test]
fn operator_routes_refuse_what_is_wrong_on_sqlite() {
    operator_routes_refuse_what_is_wrong(&Env::new());
}

#[test]
fn operator_routes_refuse_what_is_wrong_on_postgres() {
    on_postgres("op_api_refusals", operator_routes_refuse_what_is_wrong);
}

#[test]
fn runs_over_http_match_the_cli_on_sqlite() {
    runs_over_http_match_the_cli(&Env::new());
}

#[test]
fn runs_over_http_match_the_cli_on_postgres() {
    on_postgres("op_api_runs", runs_over_http_match_the_cli);
}

/// The OpenAPI document lists every operator route under the `operator` tag with the bearer
/// scheme, and each answer's schema names the fields the answer carries.
#[test]
fn the_openapi_document_describes_the_operator_api() {
    let env = Env::new();
    let api = OperatorApi::start(&env);
    let r = api.call_with("GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    let paths = doc["paths"].as_object().unwrap();
    let org = "/api/v1/operator/organisations/{org}";
    let documented = [
        ("/api/v1/operator/organisations".to_owned(), "get"),
        ("/api/v1/operator/organisations".to_owned(), "post"),
        (org.to_owned(), "get"),
        (org.to_owned(), "patch"),
        (format!("{org}/configurations"), "get"),
        (format!("{org}/configurations"), "post"),
        (format!("{org}/configurations/{{name}}"), "get"),
        (format!("{org}/configurations/{{name}}"), "patch"),
        (format!("{org}/admins"), "get"),
        (format!("{org}/admins"), "post"),
        (format!("{org}/admins/{{email}}"), "patch"),
        (format!("{org}/admins/{{email}}/disable"), "post"),
        (format!("{org}/admins/{{email}}/enable"), "post"),
        (format!("{org}/tokens"), "get"),
        (format!("{org}/tokens"), "post"),
        (format!("{org}/tokens/{{id}}"), "delete"),
        (format!("{org}/configurations/{{name}}"), "delete"),
        (format!("{org}/configurations/{{name}}/disable"), "post"),
        (format!("{org}/configurations/{{name}}/enable"), "post"),
        (format!("{org}/users"), "get"),
        (format!("{org}/users"), "post"),
        (format!("{org}/runs"), "get"),
        ("/api/v1/operator/runs/{id}".to_owned(), "get"),
    ];
    for (path, method) in &documented {
        let op = &paths[path.as_str()][*method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert_eq!(op["tags"], json!(["operator"]), "{method} {path}");
        assert_eq!(op["security"], json!([{"operator": []}]), "{method} {path}");
        let statuses = op["responses"].as_object().unwrap();
        assert!(statuses.contains_key("401"), "{method} {path}");
        if matches!(*method, "post" | "patch") && !path.ends_with("able") {
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path} describes its body"
            );
        }
    }
    let operator_paths = paths
        .iter()
        .filter(|(p, _)| p.starts_with("/api/v1/operator/"))
        .map(|(_, ops)| ops.as_object().unwrap().len())
        .sum::<usize>();
    assert_eq!(operator_paths, documented.len(), "and nothing else");
    assert_eq!(
        doc["components"]["securitySchemes"]["operator"]["scheme"],
        "bearer"
    );
    let runs_params: Vec<&str> = paths[format!("{org}/runs").as_str()]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["org", "status", "config", "since", "bulk_update", "limit"] {
        assert!(runs_params.contains(&name), "{name} in {runs_params:?}");
    }
    let schemas = &doc["components"]["schemas"];
    let body_fields = |schema: &str| -> Vec<String> {
        let mut keys: Vec<String> = schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} has properties"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        body_fields("ConfigurationChange"),
        [
            "deactivation_threshold",
            "mapping",
            "mode",
            "notify",
            "phone_region",
            "rename",
            "sftp_keys",
            "sftp_password",
            "sftp_user"
        ]
    );

    // Something of each kind, then each answer against its schema.
    let mapping = env.write("mapping.toml", MAPPING);
    let good = env.write("good.csv", "EmployeeNumber,Username,Active\n1,ann,true\n");
    env.ok(&["org", "create", "--name", "Acme"]);
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
        mapping.to_str().unwrap(),
    ]);
    env.ok(&[
        "sync",
        "--org",
        "Acme",
        "--config",
        "Payroll",
        good.to_str().unwrap(),
    ]);
    env.ok(&["token", "create", "--org", "Acme"]);
    api.expect(
        201,
        "POST",
        &format!("{ORGS}/Acme/admins"),
        Some(&json!({"email": "ann@acme.example", "role": "people_admin", "password": PASSWORD})),
    );
    let org = api.expect(
        200,
        "PATCH",
        &format!("{ORGS}/Acme"),
        Some(&json!({"provisioning": true})),
    );
    let details = api.expect(200, "GET", &format!("{ORGS}/Acme"), None);
    let run = api.expect(200, "GET", &format!("{ORGS}/Acme/runs"), None)[0].clone();
    let run_details = api.expect(
        200,
        "GET",
        &format!("/api/v1/operator/runs/{}", run["run_id"].as_str().unwrap()),
        None,
    );
    let user = api.expect(
        201,
        "POST",
        &format!("{ORGS}/Acme/users"),
        Some(&json!({"username": "zed"})),
    );
    let issued = api.expect(201, "POST", &format!("{ORGS}/Acme/tokens"), None);
    let tokens = api.expect(200, "GET", &format!("{ORGS}/Acme/tokens"), None);
    let sent = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for (schema, answer) in [
        ("OperatorOrganisation", org),
        ("OperatorOrganisationDetails", details.clone()),
        (
            "OperatorConfiguration",
            details["configurations"][0].clone(),
        ),
        ("OperatorAdmin", details["admins"][0].clone()),
        ("OperatorChange", details["changes"][0].clone()),
        (
            "OperatorFieldChange",
            details["changes"][0]["fields"][0].clone(),
        ),
        ("OperatorToken", tokens[0].clone()),
        ("IssuedToken", issued),
        ("OperatorRun", run),
        ("OperatorUser", user),
    ] {
        assert_eq!(body_fields(schema), sent(&answer), "{schema}");
    }
    // The details are the run's fields (allOf) plus their own.
    let parts = schemas["OperatorRunDetails"]["allOf"].as_array().unwrap();
    let mut documented: Vec<String> = body_fields("OperatorRun");
    for part in parts {
        if let Some(props) = part["properties"].as_object() {
            documented.extend(props.keys().cloned());
        }
    }
    documented.sort();
    assert_eq!(documented, sent(&run_details));
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
