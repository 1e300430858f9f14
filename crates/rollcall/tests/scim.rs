//! SCIM 2.0 black-box tests against `rollcall serve`, replaying what Microsoft Entra ID and Okta
//! send (their documented request shapes), plus tenant isolation and bad input.

mod common;

use common::{Env, Response, Server, http, try_http};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

struct Scim {
    server: Server,
    token: String,
    env: Env,
}

impl Scim {
    /// A server with organisation `Acme` and a SCIM token for it.
    fn start() -> Scim {
        Scim::start_in(Env::new())
    }

    fn start_in(env: Env) -> Scim {
        env.ok(&["org", "create", "--name", "Acme", "--provisioning"]);
        let token = env
            .ok(&["token", "create", "--org", "Acme"])
            .trim()
            .to_owned();
        let server = env.serve();
        Scim { server, token, env }
    }

    fn token_for(&self, org: &str) -> String {
        self.env.ok(&["org", "create", "--name", org]);
        self.env
            .ok(&["token", "create", "--org", org])
            .trim()
            .to_owned()
    }

    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Response {
        let auth = format!("Bearer {token}");
        let text = body.map(|b| b.to_string());
        http(
            &self.server.addr,
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/scim+json"),
            ],
            text.as_deref().map(str::as_bytes),
        )
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.call_as(&self.token.clone(), method, path, body)
    }

    fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    fn filter(&self, filter: &str) -> Value {
        let encoded: String = filter
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        self.get(&format!("/scim/v2/Users?filter={encoded}"))
    }

    fn create(&self, body: &Value) -> Value {
        let r = self.call("POST", "/scim/v2/Users", Some(body));
        assert_eq!(r.status, 201, "POST: {}", r.body);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("application/scim+json")
        );
        assert!(
            r.header("location").is_some() && r.header("etag").is_some(),
            "{:?}",
            r.headers
        );
        r.json()
    }

    fn patch(&self, id: &str, ops: Value) -> Response {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.call("PATCH", &format!("/scim/v2/Users/{id}"), Some(&body))
    }
}

/// Run a client's sequence against `serve` on SQLite, then on PostgreSQL (skipped, loudly,
/// without one).
fn on_both(tag: &str, test: fn(&Scim)) {
    test(&Scim::start());
    if let Some(url) = common::postgres_database(tag) {
        let mut env = Env::new();
        env.database_url = Some(url);
        test(&Scim::start_in(env));
    }
}

fn entra_user(n: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": format!("ext-{n}"),
        "userName": format!("Test_User_{n}@contoso.com"),
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": format!("test_user_{n}@contoso.com")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Given Family", "familyName": "Family", "givenName": "Given"},
        "roles": [],
        "title": null,
        ENTERPRISE: {"employeeNumber": format!("E{n}"), "department": "Engineering"}
    })
}

fn total(list: &Value) -> u64 {
    list["totalResults"]
        .as_u64()
        .unwrap_or_else(|| panic!("totalResults: {list}"))
}

#[test]
fn entra_id_lifecycle() {
    let scim = Scim::start();
    // Test Connection: a filter on a random attribute value that matches nothing.
    let list = scim.filter("userName eq \"non-existent-user-1bd4b0b2\"");
    assert_eq!(total(&list), 0);
    assert_eq!(
        list["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );

    let boss = scim.create(&entra_user("boss"));
    let jane = scim.create(&entra_user("jane"));
    let id = jane["id"].as_str().unwrap().to_owned();
    let boss_id = boss["id"].as_str().unwrap().to_owned();
    assert_eq!(jane["userName"], "Test_User_jane@contoso.com");
    assert_eq!(jane[ENTERPRISE]["employeeNumber"], "Ejane");
    assert_eq!(jane["meta"]["resourceType"], "User");

    // Lookups: userName in another letter case, externalId, work email.
    assert_eq!(
        scim.filter("userName eq \"TEST_USER_JANE@CONTOSO.COM\"")["Resources"][0]["id"],
        id.as_str()
    );
    assert_eq!(
        scim.filter("externalId eq \"ext-jane\"")["Resources"][0]["id"],
        id.as_str()
    );
    assert_eq!(
        scim.filter("emails[type eq \"work\"].value eq \"test_user_jane@contoso.com\"")["Resources"]
            [0]["id"],
        id.as_str()
    );
    assert_eq!(
        total(&scim.filter("externalId eq \"EXT-JANE\"")),
        0,
        "externalId is case-exact"
    );

    // Update many attributes the way Entra does.
    let r = scim.patch(
        &id,
        json!([
            {"op": "Replace", "path": "name.givenName", "value": "Janet"},
            {"op": "Add", "path": "title", "value": "Engineer"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "janet@contoso.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7495 944376"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Research"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss_id}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let user = r.json();
    assert_eq!(user["name"]["givenName"], "Janet");
    assert_eq!(user["title"], "Engineer");
    assert_eq!(user["emails"][0]["value"], "janet@contoso.com");
    assert_eq!(
        user["phoneNumbers"][0]["value"], "+44 7495 944376",
        "returned exactly as sent"
    );
    assert_eq!(user[ENTERPRISE]["department"], "Research");
    assert_eq!(user[ENTERPRISE]["manager"]["value"], boss_id.as_str());

    // Manager: change by {"value": id}, then remove in both forms.
    let other = scim.create(&entra_user("other"));
    let other_id = other["id"].as_str().unwrap();
    let r = scim.patch(&id, json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": other_id}}]));
    assert_eq!(r.json()[ENTERPRISE]["manager"]["value"], other_id);
    let r = scim.patch(
        &id,
        json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()[ENTERPRISE]
            .get("manager")
            .is_none_or(Value::is_null),
        "{}",
        r.body
    );
    scim.patch(
        &id,
        json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss_id}]),
    );
    let r = scim.patch(
        &id,
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]),
    );
    assert!(
        r.json()[ENTERPRISE]
            .get("manager")
            .is_none_or(Value::is_null),
        "{}",
        r.body
    );

    // Disable with Entra's string boolean, then re-enable.
    let r = scim.patch(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(r.json()["active"], false);
    assert_eq!(
        total(&scim.filter("userName eq \"Test_User_jane@contoso.com\"")),
        1,
        "disabled users stay visible"
    );
    let r = scim.patch(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert_eq!(r.json()["active"], true);

    // Delete: 204, then 404; the account is kept (deactivated) for history.
    assert_eq!(
        scim.call("DELETE", &format!("/scim/v2/Users/{id}"), None)
            .status,
        204
    );
    assert_eq!(
        scim.call("GET", &format!("/scim/v2/Users/{id}"), None)
            .status,
        404
    );
    assert_eq!(
        scim.call("DELETE", &format!("/scim/v2/Users/{id}"), None)
            .status,
        404
    );
    assert_eq!(total(&scim.filter("externalId eq \"ext-jane\"")), 0);

    // The writes show up as an hourly SCIM run with counts.
    let runs: Value =
        serde_json::from_str(&scim.env.ok(&["runs", "list", "--org", "Acme", "--json"])).unwrap();
    let run = &runs[0];
    assert_eq!(run["connector"], "SCIM");
    assert_eq!(run["created"], 3);
    assert!(run["updated"].as_u64().unwrap() >= 5, "{run}");
    assert!(run["deactivated"].as_u64().unwrap() >= 2, "{run}");
}

#[test]
fn okta_lifecycle() {
    let scim = Scim::start();
    let list =
        scim.get("/scim/v2/Users?filter=userName+eq+%22jdoe%40acme.com%22&startIndex=1&count=100");
    assert_eq!(total(&list), 0);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jdoe@acme.com",
        "name": {"givenName": "John", "familyName": "Doe"},
        "emails": [{"primary": true, "value": "jdoe@acme.com", "type": "work"}],
        "displayName": "John Doe",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let user = scim.create(&body);
    let id = user["id"].as_str().unwrap().to_owned();
    assert!(
        user.get("password").is_none(),
        "the password is ignored, never stored or returned"
    );
    let got = scim.get(&format!("/scim/v2/Users/{id}"));
    assert_eq!(got["name"]["familyName"], "Doe");

    // PUT replaces: omitted attributes are cleared.
    let mut put = body.clone();
    put["name"] = json!({"givenName": "Johnny"});
    put["id"] = json!(id);
    let r = scim.call("PUT", &format!("/scim/v2/Users/{id}"), Some(&put));
    assert_eq!(r.status, 200, "{}", r.body);
    let replaced = r.json();
    assert_eq!(replaced["name"]["givenName"], "Johnny");
    assert!(
        replaced["name"]
            .get("familyName")
            .is_none_or(Value::is_null),
        "{replaced}"
    );

    // Path-less PATCH deactivation, Okta style.
    let r = scim.patch(&id, json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["active"], false);

    // Pagination across three pages, stable order.
    for n in 0..4 {
        let mut u = body.clone();
        u["userName"] = json!(format!("user{n}@acme.com"));
        u["externalId"] = json!(format!("okta-{n}"));
        u["emails"] =
            json!([{"primary": true, "value": format!("user{n}@acme.com"), "type": "work"}]);
        scim.create(&u);
    }
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let page = scim.get(&format!("/scim/v2/Users?startIndex={start}&count=2"));
        assert_eq!(total(&page), 5);
        assert_eq!(page["startIndex"], start);
        for r in page["Resources"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.len(), 5);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "no user twice across pages");
}

#[test]
fn discovery_endpoints_and_groups() {
    let scim = Scim::start();
    for prefix in ["/scim/v2", "/scim"] {
        let spc = scim.get(&format!("{prefix}/ServiceProviderConfig"));
        assert_eq!(spc["patch"]["supported"], true, "{spc}");
        let types = scim.get(&format!("{prefix}/ResourceTypes"));
        assert!(types.to_string().contains("\"User\""));
        let schemas = scim.get(&format!("{prefix}/Schemas"));
        assert!(schemas.to_string().contains(ENTERPRISE));
        assert!(
            schemas
                .to_string()
                .contains("urn:ietf:params:scim:schemas:extension:rollcall:2.0:User")
        );
        let groups = scim.get(&format!("{prefix}/Groups"));
        assert_eq!(total(&groups), 0);
    }
    let r = scim.call("GET", "/scim/v2/Nope", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "404", "status is a string");
    let r = scim.call("DELETE", "/scim/v2/Users", None);
    assert_eq!(r.status, 405);
}

#[test]
fn tokens_are_checked() {
    let scim = Scim::start();
    let r = http(&scim.server.addr, "GET", "/scim/v2/Users", &[], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["status"], "401");
    let r = scim.call_as("rc_wrong", "GET", "/scim/v2/Users", None);
    assert_eq!(r.status, 401);
}

/// An operator who no longer holds a token finds it with `token list` (with its last use) and
/// revokes it by id; the serving process stops accepting it within the 10 s it remembers a
/// verified token. Another organisation cannot revoke it.
#[test]
fn tokens_are_listed_and_revoked_by_id() {
    let scim = Scim::start();
    let _other = scim.token_for("Other");
    let listed = |org: &str| -> Vec<Value> {
        let out = scim.env.ok(&["token", "list", "--org", org, "--json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let tokens = listed("Acme");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["configuration"], "SCIM");
    assert_eq!(tokens[0]["last_used_at"], Value::Null);
    assert_eq!(tokens[0]["revoked_at"], Value::Null);
    let id = tokens[0]["id"].as_str().unwrap().to_owned();

    scim.get("/scim/v2/Users");
    assert!(listed("Acme")[0]["last_used_at"].is_string());

    let refused = scim
        .env
        .run(&["token", "revoke", "--org", "Other", "--id", &id]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no live token with id"));
    scim.get("/scim/v2/Users");

    assert_eq!(
        scim.env
            .ok(&["token", "revoke", "--org", "Acme", "--id", &id])
            .trim(),
        "revoked"
    );
    assert!(listed("Acme")[0]["revoked_at"].is_string());
    let revoked = std::time::Instant::now();
    loop {
        let r = scim.call("GET", "/scim/v2/Users", None);
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(12),
            "a revoked token still works after {:?}",
            revoked.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Entra ID deletes a user that leaves the app's scope and POSTs it when it returns: its
/// filter finds nothing, and the POST brings the same account back (201).
#[test]
fn entra_id_deleted_user_returns_as_the_same_account() {
    on_both("entra_return", |scim| {
        let body = entra_user("7");
        let id = scim.create(&body)["id"].as_str().unwrap().to_owned();
        let r = scim.call("DELETE", &format!("/scim/v2/Users/{id}"), None);
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(
            total(&scim.filter("userName eq \"Test_User_7@contoso.com\"")),
            0
        );
        let back = scim.create(&body);
        assert_eq!(back["id"], id.as_str(), "the same account");
        assert_eq!(back["active"], true);
        assert_eq!(
            total(&scim.filter("userName eq \"Test_User_7@contoso.com\"")),
            1
        );
        // Back, it holds its values again: the keys kept from its deletion name nobody else.
        let again = scim.call("POST", "/scim/v2/Users", Some(&body));
        assert_eq!(again.status, 409, "{}", again.body);
        assert!(again.body.contains("uniqueness"), "{}", again.body);
        let got = scim.get(&format!("/scim/v2/Users/{id}"));
        assert_eq!(got["externalId"], "ext-7");
        assert_eq!(
            got[ENTERPRISE]["employeeNumber"], "E7",
            "its fields are the request's"
        );
        // Its log says it came back.
        let runs = scim.env.ok(&["runs", "list", "--org", "Acme", "--json"]);
        let runs: Value = serde_json::from_str(&runs).unwrap();
        assert!(
            runs.as_array()
                .unwrap()
                .iter()
                .any(|r| r["reactivated"].as_u64() >= Some(1)),
            "{runs}"
        );
    });
}

/// Okta's form: the user is deleted, then created again by its userName (Okta sends no
/// externalId of ours); the same account comes back, and meanwhile its email is free in
/// other organisations.
#[test]
fn okta_deleted_user_returns_and_releases_its_email_meanwhile() {
    on_both("okta_return", |scim| {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "back@acme.com",
            "name": {"givenName": "Bea", "familyName": "Back"},
            "emails": [{"primary": true, "value": "back@acme.com", "type": "work"}],
            "phoneNumbers": [{"value": "+44 7495 944373", "type": "mobile"}],
            "active": true
        });
        let id = scim.create(&body)["id"].as_str().unwrap().to_owned();
        assert_eq!(
            scim.call("DELETE", &format!("/scim/v2/Users/{id}"), None)
                .status,
            204
        );
        // Another organisation may now have that email and mobile.
        let other = scim.token_for("Other");
        let mut elsewhere = body.clone();
        elsewhere["userName"] = json!("bea@other.com");
        let r = scim.call_as(&other, "POST", "/scim/v2/Users", Some(&elsewhere));
        assert_eq!(r.status, 201, "a deleted user holds nothing: {}", r.body);
        // Back in Acme: same account; its email is now taken elsewhere, so the usual conflict.
        let r = scim.call("POST", "/scim/v2/Users", Some(&body));
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.body.contains("GLOBAL_CONFLICT"), "{}", r.body);
        let mut without_contacts = body.clone();
        without_contacts.as_object_mut().unwrap().remove("emails");
        without_contacts
            .as_object_mut()
            .unwrap()
            .remove("phoneNumbers");
        let back = scim.create(&without_contacts);
        assert_eq!(back["id"], id.as_str());
    });
}

/// What Okta's and Entra ID's default mappings send of a name is kept and returned: the
/// display name and the middle name; a user sent without a display name shows "First Second".
#[test]
fn okta_display_and_middle_names_are_kept() {
    on_both("okta_names", |scim| {
        let user = scim.create(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "jmd@acme.com",
            "name": {"givenName": "John", "middleName": "Michael", "familyName": "Doe"},
            "displayName": "Johnny Doe",
            "emails": [{"primary": true, "value": "jmd@acme.com", "type": "work"}],
            "active": true
        }));
        let id = user["id"].as_str().unwrap();
        let got = scim.get(&format!("/scim/v2/Users/{id}"));
        assert_eq!(got["displayName"], "Johnny Doe");
        assert_eq!(got["name"]["middleName"], "Michael");
        let found = scim.filter("displayName eq \"Johnny Doe\"");
        assert_eq!(total(&found), 1, "{found}");

        let entra = scim.create(&entra_user("n"));
        assert_eq!(
            entra["displayName"], "Given Family",
            "First Second when none is sent"
        );
        assert!(entra["name"].get("middleName").is_none());
        let users = scim.env.ok(&["user", "list", "--org", "Acme", "--json"]);
        assert!(users.contains("\"display_name\":\"Johnny Doe\""), "{users}");
        assert!(users.contains("\"middle_name\":\"Michael\""), "{users}");
    });
}

/// `primary` and `display` come back as Entra ID and Okta sent them.
#[test]
fn entra_id_primary_and_display_are_returned_as_sent() {
    on_both("entra_primary", |scim| {
        let mut body = entra_user("p");
        body["emails"] = json!([{"primary": "True", "type": "work", "value": "p@contoso.com", "display": "P at Contoso"}]);
        body["phoneNumbers"] = json!([
            {"type": "mobile", "value": "+447495944374", "primary": true},
            {"type": "work", "value": "+44 20 7946 0000"}
        ]);
        let id = scim.create(&body)["id"].as_str().unwrap().to_owned();
        let got = scim.get(&format!("/scim/v2/Users/{id}"));
        assert_eq!(
            got["emails"],
            json!([{"value": "p@contoso.com", "type": "work", "primary": true, "display": "P at Contoso"}])
        );
        assert_eq!(got["phoneNumbers"][0]["primary"], true);
        assert!(got["phoneNumbers"][1].get("primary").is_none(), "{got}");
        // A PATCH that makes the email not primary is kept too.
        let r = scim.patch(
            &id,
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].primary", "value": false}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["emails"][0]["primary"], false);
    });
}

/// Entra ID verifies a manager reference with `id eq … and manager eq …&attributes=id`.
#[test]
fn entra_id_verifies_a_manager_with_a_filter() {
    on_both("entra_manager", |scim| {
        let boss = scim.create(&entra_user("b"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let report = scim.create(&entra_user("r"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = scim.patch(
            &report,
            json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let check = |manager: &str| {
            let filter = format!("id eq \"{report}\" and manager eq \"{manager}\"");
            let encoded: String = filter
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect();
            scim.get(&format!("/scim/v2/Users?filter={encoded}&attributes=id"))
        };
        let found = check(&boss);
        assert_eq!(total(&found), 1, "{found}");
        assert_eq!(found["Resources"][0]["id"], report.as_str());
        assert_eq!(total(&check("someone-else")), 0);
    });
}

/// Okta's PUT without the mobile number it sent before clears it (a company phone moves to the
/// next person, who can then be given it).
#[test]
fn okta_put_without_the_mobile_clears_the_one_it_sent() {
    on_both("okta_put_mobile", |scim| {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "leaver@acme.com",
            "name": {"givenName": "Lee", "familyName": "Ver"},
            "emails": [{"primary": true, "value": "leaver@acme.com", "type": "work"}],
            "phoneNumbers": [{"value": "+44 7495 944371", "type": "mobile"}],
            "active": true
        });
        let id = scim.create(&body)["id"].as_str().unwrap().to_owned();
        let mut put = body.clone();
        put.as_object_mut().unwrap().remove("phoneNumbers");
        let r = scim.call("PUT", &format!("/scim/v2/Users/{id}"), Some(&put));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.json().get("phoneNumbers").is_none(), "{}", r.body);
        let mut next = body.clone();
        next["userName"] = json!("joiner@acme.com");
        next["emails"] = json!([{"value": "joiner@acme.com", "type": "work"}]);
        let joiner = scim.create(&next);
        assert_eq!(joiner["phoneNumbers"][0]["value"], "+44 7495 944371");
    });
}

/// Entra ID's PATCH removing the email and mobile clears both.
#[test]
fn entra_id_patch_remove_clears_contact_values_it_sent() {
    on_both("entra_patch_contacts", |scim| {
        let mut body = entra_user("9");
        body["phoneNumbers"] = json!([{"type": "mobile", "value": "+447495944372"}]);
        let id = scim.create(&body)["id"].as_str().unwrap().to_owned();
        let r = scim.patch(
            &id,
            json!([
                {"op": "Remove", "path": "phoneNumbers[type eq \"mobile\"].value"},
                {"op": "Remove", "path": "emails[type eq \"work\"].value"}
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let got = scim.get(&format!("/scim/v2/Users/{id}"));
        assert!(got.get("phoneNumbers").is_none(), "{got}");
        assert!(got.get("emails").is_none(), "{got}");
    });
}

#[test]
fn a_disabled_or_deleted_configuration_answers_no_scim_request() {
    let scim = Scim::start();
    let config = ["--org", "Acme", "--name", "SCIM"];
    scim.env.ok(&[&["config", "disable"][..], &config].concat());
    let r = scim.call("GET", "/scim/v2/Users", None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("disabled"), "{}", r.body);
    let r = scim.call("POST", "/scim/v2/Users", Some(&entra_user("ann")));
    assert_eq!(r.status, 403, "no write either: {}", r.body);
    scim.env.ok(&[&["config", "enable"][..], &config].concat());
    assert_eq!(
        total(&scim.get("/scim/v2/Users")),
        0,
        "enabled again at once"
    );

    scim.env.ok(&[
        "config", "create", "--org", "Acme", "--name", "Okta", "--kind", "scim",
    ]);
    let okta = scim
        .env
        .ok(&["token", "create", "--org", "Acme", "--config", "Okta"])
        .trim()
        .to_owned();
    scim.env
        .ok(&["config", "delete", "--org", "Acme", "--name", "Okta"]);
    assert_eq!(
        scim.call_as(&okta, "GET", "/scim/v2/Users", None).status,
        401
    );
    let tokens = scim.env.ok(&["token", "list", "--org", "Acme", "--json"]);
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    let okta = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["configuration"] == "Okta")
        .unwrap();
    assert!(okta["revoked_at"].is_string(), "{okta}");
}

#[test]
fn organisations_are_isolated() {
    let scim = Scim::start();
    let other = scim.token_for("Other");
    let user = scim.create(&entra_user("a"));
    let id = user["id"].as_str().unwrap();
    for method in ["GET", "DELETE"] {
        assert_eq!(
            scim.call_as(&other, method, &format!("/scim/v2/Users/{id}"), None)
                .status,
            404
        );
    }
    let r = scim.call_as(
        &other,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        Some(&json!({"Operations": [{"op": "replace", "path": "active", "value": false}]})),
    );
    assert_eq!(r.status, 404);
    let list = scim.call_as(&other, "GET", "/scim/v2/Users", None).json();
    assert_eq!(total(&list), 0);
    let list = scim
        .call_as(
            &other,
            "GET",
            "/scim/v2/Users?filter=userName+eq+%22Test_User_a%40contoso.com%22",
            None,
        )
        .json();
    assert_eq!(total(&list), 0);
    // The other organisation cannot take the same email: a global conflict that names no one.
    let r = scim.call_as(&other, "POST", "/scim/v2/Users", Some(&entra_user("a")));
    assert_eq!(r.status, 409, "{}", r.body);
    let e = r.json();
    assert_eq!(e["scimType"], "uniqueness");
    assert!(
        e["detail"].as_str().unwrap().starts_with("GLOBAL_CONFLICT"),
        "{e}"
    );
    assert!(!e["detail"].as_str().unwrap().contains("Acme"));
}

#[test]
fn conflicts_and_bad_input() {
    let scim = Scim::start();
    scim.create(&entra_user("dup"));
    let mut again = entra_user("dup");
    again["externalId"] = json!("ext-other");
    again[ENTERPRISE]["employeeNumber"] = json!("E-other");
    again["emails"] = json!([{"type": "work", "value": "other@contoso.com"}]);
    let r = scim.call("POST", "/scim/v2/Users", Some(&again));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("ORGANISATION_CONFLICT"),
        "{}",
        r.body
    );

    let r = http(
        &scim.server.addr,
        "POST",
        "/scim/v2/Users",
        &[
            ("Authorization", &format!("Bearer {}", scim.token)),
            ("Content-Type", "application/json"),
        ],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["scimType"], "invalidSyntax");

    let big = vec![b'x'; 2 << 20];
    let r = http(
        &scim.server.addr,
        "POST",
        "/scim/v2/Users",
        &[("Authorization", &format!("Bearer {}", scim.token))],
        Some(&big),
    );
    assert_eq!(r.status, 413);

    let deep = format!("{}userName eq \"x\"{}", "(".repeat(200), ")".repeat(200));
    let r = scim.call(
        "GET",
        &format!(
            "/scim/v2/Users?filter={}",
            deep.replace(' ', "+").replace('"', "%22")
        ),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["scimType"], "invalidFilter");
    let r = scim.call("GET", "/scim/v2/Users?filter=userName+zz+%22x%22", None);
    assert_eq!(r.json()["scimType"], "invalidFilter");
    // Longer than the limit (4,096 characters), though shallow.
    let long = format!("userName+eq+%22{}%22", "x".repeat(5000));
    let r = scim.call("GET", &format!("/scim/v2/Users?filter={long}"), None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["scimType"], "invalidFilter");

    // A count too large for any integer type is still "as many as allowed"; a startIndex
    // that is not a number is refused with what was sent.
    let page = scim.get("/scim/v2/Users?count=99999999999999999999999");
    assert_eq!(total(&page), 1, "{page}");
    assert_eq!(page["itemsPerPage"], 1, "{page}");
    let r = scim.call("GET", "/scim/v2/Users?startIndex=first", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["scimType"], "invalidValue");
    assert!(
        r.body
            .contains("startIndex must be an integer, not 'first'"),
        "{}",
        r.body
    );

    let mut bad_phone = entra_user("phone");
    bad_phone["phoneNumbers"] = json!([{"type": "mobile", "value": "07495 944376"}]);
    let r = scim.call("POST", "/scim/v2/Users", Some(&bad_phone));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["scimType"], "invalidValue");

    let r = scim.patch(
        "nope",
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    assert_eq!(r.status, 404);
    let user = scim.create(&entra_user("paths"));
    let r = scim.patch(
        user["id"].as_str().unwrap(),
        json!([{"op": "replace", "path": "favouriteColour", "value": "blue"}]),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["scimType"], "invalidPath");
}

#[test]
fn a_delete_from_another_configuration_is_refused_and_logged() {
    let scim = Scim::start();
    let user = scim.create(&entra_user("kept"));
    let path = format!("/scim/v2/Users/{}", user["id"].as_str().unwrap());
    scim.env.ok(&[
        "config", "create", "--org", "Acme", "--name", "Okta", "--kind", "scim",
    ]);
    let okta = scim
        .env
        .ok(&["token", "create", "--org", "Acme", "--config", "Okta"])
        .trim()
        .to_owned();
    let r = scim.call_as(&okta, "DELETE", &path, None);
    assert_eq!(r.status, 409, "{}", r.body);
    let e = r.json();
    assert_eq!(e["scimType"], "uniqueness");
    assert!(
        e["detail"].as_str().unwrap().starts_with(
            "ORGANISATION_CONFLICT: This user is managed by another source configuration"
        ),
        "{e}"
    );
    assert_eq!(scim.call("GET", &path, None).status, 200, "still there");
    // The refusal is a row of Okta's hourly run, like any refused write.
    let runs: Value =
        serde_json::from_str(&scim.env.ok(&["runs", "list", "--org", "Acme", "--json"])).unwrap();
    let okta_run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["configuration"] == "Okta")
        .unwrap_or_else(|| panic!("{runs}"));
    assert_eq!(
        (
            okta_run["failed"].as_u64(),
            okta_run["deactivated"].as_u64()
        ),
        (Some(1), Some(0)),
        "{okta_run}"
    );
    // Its own configuration deletes it.
    assert_eq!(scim.call("DELETE", &path, None).status, 204);
    assert_eq!(scim.call("GET", &path, None).status, 404);
}

/// Eight identical POSTs at the same moment (an identity provider retrying, or several nodes
/// taking the same request): one creates the user, the seven others are refused as 409
/// `uniqueness` with the SPEC §3 conflict, never a 500. Several rounds, so that the writes meet
/// in the different places they can (the unique index, the activity run's log).
#[test]
fn concurrent_posts_of_one_user_name() {
    let scim = Scim::start();
    let node = scim.server.addr.clone();
    posted_at_once(&scim, &[node]);
}

/// The same against two `rollcall serve` nodes sharing one PostgreSQL database, four POSTs
/// each: their transactions meet in PostgreSQL (unique violations, lock waits).
#[test]
fn concurrent_posts_of_one_user_name_on_two_postgres_nodes() {
    let Some(url) = common::postgres_database("scim_race") else {
        return;
    };
    let mut env = Env::new();
    env.database_url = Some(url.clone());
    let scim = Scim::start_in(env);
    // The second node has a data directory of its own (SFTP host key, spool).
    let mut second_env = Env::new();
    second_env.database_url = Some(url);
    let second = second_env.serve();
    posted_at_once(&scim, &[scim.server.addr.clone(), second.addr.clone()]);
}

fn posted_at_once(scim: &Scim, nodes: &[String]) {
    const POSTS: usize = 8;
    for round in 0..10 {
        let user = entra_user(&format!("race-{round}"));
        let body = user.to_string();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(POSTS));
        let posts: Vec<_> = (0..POSTS)
            .map(|i| {
                let (addr, body, barrier) = (
                    nodes[i % nodes.len()].clone(),
                    body.clone(),
                    barrier.clone(),
                );
                let auth = format!("Bearer {}", scim.token);
                std::thread::spawn(move || {
                    barrier.wait();
                    http(
                        &addr,
                        "POST",
                        "/scim/v2/Users",
                        &[
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/scim+json"),
                        ],
                        Some(body.as_bytes()),
                    )
                })
            })
            .collect();
        let answers: Vec<Response> = posts.into_iter().map(|p| p.join().unwrap()).collect();
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "round {round}: {statuses:?}\n{answers:#?}"
        );
        for r in answers.iter().filter(|r| r.status != 201) {
            assert_eq!(r.status, 409, "round {round}: {statuses:?}: {}", r.body);
            let error = r.json();
            assert_eq!(error["scimType"], "uniqueness", "{error}");
            assert!(
                error["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("ORGANISATION_CONFLICT"),
                "{error}"
            );
        }
        let name = user["userName"].as_str().unwrap();
        assert_eq!(total(&scim.filter(&format!("userName eq \"{name}\""))), 1);
    }
}

/// A write answered 2xx is committed before the answer: a server killed (SIGKILL) in the
/// middle of a burst of POSTs and PATCHes has every acknowledged one after a restart.
#[test]
fn acknowledged_writes_survive_a_kill() {
    survives_a_kill(Scim::start());
}

#[test]
fn acknowledged_writes_survive_a_kill_on_postgres() {
    let Some(url) = common::postgres_database("scim_kill") else {
        return;
    };
    let mut env = Env::new();
    env.database_url = Some(url);
    survives_a_kill(Scim::start_in(env));
}

fn survives_a_kill(mut scim: Scim) {
    let target = scim.create(&entra_user("patched"));
    let target = target["id"].as_str().unwrap().to_owned();
    let (addr, auth) = (scim.server.addr.clone(), format!("Bearer {}", scim.token));
    // Until the server is gone: Some(acknowledged) on 2xx, None once it cannot answer.
    let send = move |method: &str, path: &str, body: &Value| -> Option<bool> {
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/scim+json"),
        ];
        let text = body.to_string();
        match try_http(&addr, method, path, &headers, Some(text.as_bytes())) {
            Ok(r) if (200..300).contains(&r.status) => Some(true),
            Ok(r) if r.status == 0 => None,
            Ok(r) => panic!("{method} {path}: {} {}", r.status, r.body),
            Err(_) => None,
        }
    };
    let posters: Vec<_> = (0..3)
        .map(|t| {
            let send = send.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    let user = entra_user(&format!("{t}-{n}"));
                    if send("POST", "/scim/v2/Users", &user).is_none() {
                        break;
                    }
                    acknowledged.push(user["userName"].as_str().unwrap().to_owned());
                }
                acknowledged
            })
        })
        .collect();
    let patcher = {
        let path = format!("/scim/v2/Users/{target}");
        std::thread::spawn(move || {
            let mut last = None;
            for n in 0u32.. {
                let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "title", "value": format!("t{n}")}]});
                if send("PATCH", &path, &op).is_none() {
                    return last;
                }
                last = Some(n);
            }
            last
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    scim.server.kill();
    let acknowledged: Vec<String> = posters
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let last = patcher.join().unwrap().expect("no PATCH was answered");
    assert!(
        acknowledged.len() >= 20,
        "only {} POSTs answered",
        acknowledged.len()
    );

    scim.server = scim.env.serve();
    for name in &acknowledged {
        let found = scim.filter(&format!("userName eq \"{name}\""));
        assert_eq!(total(&found), 1, "{name} was acknowledged but is gone");
    }
    // The last PATCH answered is there, or the one sent after it that the kill cut short.
    let user = scim.get(&format!("/scim/v2/Users/{target}"));
    let title = user["title"].as_str().unwrap_or_default();
    assert!(
        title == format!("t{last}") || title == format!("t{}", last + 1),
        "title {title}, last acknowledged t{last}"
    );
}

/// RFC 7643 §4.1.2 recommends RFC 3966 URIs for phone numbers: stored as sent, compared in
/// E.164 form like any other (SPEC §2).
#[test]
fn phone_numbers_in_rfc_3966_form() {
    let scim = Scim::start();
    let mut tel = entra_user("tel");
    tel["phoneNumbers"] = json!([{"type": "mobile", "value": "tel:+44-7495-944376"}]);
    let user = scim.create(&tel);
    assert_eq!(user["phoneNumbers"][0]["value"], "tel:+44-7495-944376");
    let found = scim.filter(r#"phoneNumbers[type eq "mobile"].value eq "tel:+44-7495-944376""#);
    assert_eq!(total(&found), 1, "{found}");

    // The same number in E.164 form is the same mobile: unique across users.
    let mut same = entra_user("e164");
    same["phoneNumbers"] = json!([{"type": "mobile", "value": "+447495944376"}]);
    let r = scim.call("POST", "/scim/v2/Users", Some(&same));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("phone_mobile"), "{}", r.body);

    let mut ext = entra_user("ext");
    ext["phoneNumbers"] = json!([{"type": "work", "value": "tel:+44-20-7946-0018;ext=12"}]);
    let r = scim.call("POST", "/scim/v2/Users", Some(&ext));
    assert_eq!(r.status, 400, "{}", r.body);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains(";ext= are not supported"), "{detail}");
}

#[test]
fn etags_and_if_match() {
    let scim = Scim::start();
    let user = scim.create(&entra_user("etag"));
    let id = user["id"].as_str().unwrap();
    let version = user["meta"]["version"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {}", scim.token);
    let body =
        json!({"Operations": [{"op": "replace", "path": "title", "value": "A"}]}).to_string();
    let r = http(
        &scim.server.addr,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        &[("Authorization", &auth), ("If-Match", &version)],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(
        &scim.server.addr,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        &[("Authorization", &auth), ("If-Match", &version)],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 412, "the old version is stale now: {}", r.body);
}

#[test]
fn attributes_and_excluded_attributes() {
    let scim = Scim::start();
    let user = scim.create(&entra_user("proj"));
    let id = user["id"].as_str().unwrap();
    let only = scim.get(&format!("/scim/v2/Users/{id}?attributes=userName"));
    assert_eq!(only["userName"], "Test_User_proj@contoso.com");
    assert!(
        only.get("emails").is_none() && only.get("name").is_none(),
        "{only}"
    );
    assert_eq!(only["id"], id);
    let without = scim.get(&format!(
        "/scim/v2/Users/{id}?excludedAttributes=emails,name.givenName"
    ));
    assert!(without.get("emails").is_none(), "{without}");
    assert_eq!(without["name"]["familyName"], "Family");
    assert!(without["name"].get("givenName").is_none(), "{without}");
    let list = scim.get("/scim/v2/Users?attributes=externalId");
    assert_eq!(list["Resources"][0]["externalId"], "ext-proj");
    assert!(list["Resources"][0].get("userName").is_none());
}

#[test]
fn endpoint_names_ignore_case_and_trailing_slashes() {
    let scim = Scim::start();
    let user = scim.create(&entra_user("case"));
    let id = user["id"].as_str().unwrap();
    for path in [
        "/scim/v2/users".to_owned(),
        "/scim/v2/Users/".to_owned(),
        "/scim/USERS?filter=userName+eq+%22test_user_case@contoso.com%22".to_owned(),
        format!("/scim/v2/users/{id}"),
        format!("/scim/v2/Users/{id}/"),
        "/scim/v2/serviceproviderconfig".to_owned(),
        "/scim/v2/serviceConfiguration".to_owned(),
    ] {
        let r = scim.call("GET", &path, None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    }
    // Ids keep their case: another id is another resource.
    let r = scim.call(
        "GET",
        &format!("/scim/v2/Users/{}", id.to_uppercase()),
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(scim.call("GET", "/scim/v2/Userz", None).status, 404);
}
