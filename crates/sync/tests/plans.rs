//! How the databases plan the store's hot lookups (`rollcall_store::point_lookups`): each by
//! its unique index, on a PostgreSQL database loaded by a first sync of 20,000 users and never
//! analysed, and again once the store has refreshed the statistics after a large write; and on
//! SQLite, which keeps no statistics unless asked. A run that writes many users leaves the
//! tables it wrote analysed (autovacuum may be off, or a minute late).
//!
//! PostgreSQL is asked with `EXPLAIN (FORMAT JSON)` for the plans of a prepared statement:
//! the custom plan (made for the values given, as for a statement's first executions) and the
//! generic one (which a prepared statement may switch to after five).

use std::collections::HashMap;
use std::time::Duration;

use rollcall_domain::config::ConfigKind;
use rollcall_domain::record::BatchItem;
use rollcall_domain::{FieldKey, RunStatus};
use rollcall_store::{
    AnsweredBy, LookupParam, NewRun, OrgStore, PointLookup, SourceConfig, Store, point_lookups,
};
use rollcall_sync::stages::run_batch;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Row};

#[macro_use]
mod support;
use support::{meta, new_config, row, setup};

const USERS: u64 = 20_000;

/// User `i` of the file: every unique key set (external ID, username, employee ID, email,
/// mobile), managed by the user `i / 10` (so the sieve's manager join has work).
fn person(i: u64, title: &str) -> BatchItem {
    let id = format!("E{i:06}");
    let username = format!("user{i:06}@acme.example");
    let employee = format!("N{i:06}");
    let mobile = format!("+44 7495 {i:06}");
    let manager = format!("E{:06}", i / 10);
    let mut cells = vec![
        (FieldKey::Username, username.as_str()),
        (FieldKey::EmployeeId, employee.as_str()),
        (FieldKey::Email, username.as_str()),
        (FieldKey::PhoneMobile, mobile.as_str()),
        (FieldKey::JobTitle, title),
    ];
    if i >= 10 {
        cells.push((FieldKey::Manager, manager.as_str()));
    }
    row(i + 1, &id, &cells)
}

/// The values each kind of parameter takes: those of a user in the middle of the file.
async fn samples(org: &OrgStore) -> HashMap<LookupParam, String> {
    let users = org
        .users(org.user_count().await.unwrap() / 2, 1)
        .await
        .unwrap();
    let user = users.first().expect("a stored user");
    let p = &user.profile;
    let configs = org.configs().await.unwrap();
    let scim = configs
        .iter()
        .find(|c| c.kind == ConfigKind::Scim)
        .expect("a SCIM configuration");
    let token = org.create_token("tests", scim).await.unwrap();
    let run = org.runs(1).await.unwrap().remove(0);
    HashMap::from([
        (LookupParam::Org, org.org_id().as_str().to_owned()),
        (LookupParam::User("id"), user.id.as_str().to_owned()),
        (
            LookupParam::User("external_id"),
            p.external_id.as_ref().unwrap().as_str().to_owned(),
        ),
        (
            LookupParam::User("username_norm"),
            p.username.as_ref().unwrap().normalized(),
        ),
        (
            LookupParam::User("employee_id"),
            p.employee_id.as_ref().unwrap().as_str().to_owned(),
        ),
        (
            LookupParam::User("email_norm"),
            p.email.as_ref().unwrap().normalized().to_owned(),
        ),
        (
            LookupParam::User("phone_mobile_e164"),
            p.phone_mobile.as_ref().unwrap().e164().to_owned(),
        ),
        (LookupParam::Config, run.config_id.as_str().to_owned()),
        (LookupParam::Run, run.id.as_str().to_owned()),
        (LookupParam::Hour, "1767225600000".to_owned()),
        (
            LookupParam::TokenDigest,
            rollcall_store::credentials::token_digest(&token),
        ),
    ])
}

fn value_of<'a>(samples: &'a HashMap<LookupParam, String>, param: &LookupParam) -> &'a str {
    samples
        .get(param)
        .unwrap_or_else(|| panic!("no sample value for {param:?}"))
}

/// A node of a PostgreSQL plan, with what the checks look at.
struct Node {
    node_type: String,
    index: Option<String>,
    relation: Option<String>,
    /// The node type of its parent, when it is the inner side of a join.
    inner_of: Option<String>,
}

fn nodes(plan: &Value, parent: Option<&str>, into: &mut Vec<Node>) {
    let text = |key: &str| plan.get(key).and_then(Value::as_str).map(str::to_owned);
    let node_type = text("Node Type").unwrap_or_default();
    into.push(Node {
        node_type: node_type.clone(),
        index: text("Index Name"),
        relation: text("Relation Name"),
        inner_of: (text("Parent Relationship").as_deref() == Some("Inner"))
            .then(|| parent.unwrap_or_default().to_owned()),
    });
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nodes(child, Some(&node_type), into);
    }
}

/// What is wrong with a plan for a lookup (nothing: `None`).
fn judge(lookup: &PointLookup, plan: &[Node]) -> Option<String> {
    let indexes: Vec<&str> = plan.iter().filter_map(|n| n.index.as_deref()).collect();
    match lookup.answered_by {
        AnsweredBy::Unique(index) => {
            if let Some(scan) = plan.iter().find(|n| n.node_type == "Seq Scan") {
                return Some(format!(
                    "a sequential scan of {}",
                    scan.relation.as_deref().unwrap_or("?")
                ));
            }
            if !indexes.contains(&index) {
                return Some(format!("{index} is not used"));
            }
            if let Some(other) = indexes.iter().find(|i| **i != index) {
                return Some(format!("{other} is used too"));
            }
            None
        }
        AnsweredBy::ManagedUsers => {
            if indexes.contains(&"users_scim_page") {
                return Some("the SCIM page index is walked".into());
            }
            plan.iter()
                .find(|n| n.node_type == "Seq Scan" && n.inner_of.as_deref() == Some("Nested Loop"))
                .map(|_| "the users are scanned again for each user".into())
        }
    }
}

/// Literal SQL for a sample value (ours: ids, emails, digits; quotes doubled all the same).
fn literal(param: &LookupParam, value: &str) -> String {
    match param {
        LookupParam::Hour => value.to_owned(),
        _ => format!("'{}'", value.replace('\'', "''")),
    }
}

/// PostgreSQL's custom and generic plans of every lookup; a list of what is wrong.
async fn postgres_plans(
    conn: &mut sqlx::PgConnection,
    samples: &HashMap<LookupParam, String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (n, lookup) in point_lookups().iter().enumerate() {
        let types: Vec<&str> = lookup
            .params
            .iter()
            .map(|p| match p {
                LookupParam::Hour => "bigint",
                _ => "text",
            })
            .collect();
        let values: Vec<String> = lookup
            .params
            .iter()
            .map(|p| literal(p, value_of(samples, p)))
            .collect();
        let prepare = format!(
            "PREPARE lookup_{n} ({}) AS {}",
            types.join(", "),
            lookup.sql
        );
        sqlx::raw_sql(AssertSqlSafe(prepare))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", lookup.name));
        for mode in ["force_custom_plan", "force_generic_plan"] {
            sqlx::raw_sql(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
                .execute(&mut *conn)
                .await
                .unwrap();
            let explain = format!(
                "EXPLAIN (FORMAT JSON) EXECUTE lookup_{n} ({})",
                values.join(", ")
            );
            let row = sqlx::query(AssertSqlSafe(explain))
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", lookup.name));
            let text: String = row.try_get_unchecked(0).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap();
            let mut plan = Vec::new();
            nodes(&json[0]["Plan"], None, &mut plan);
            if let Some(why) = judge(lookup, &plan) {
                wrong.push(format!("{} ({mode}): {why}\n{text}", lookup.name));
            }
        }
        sqlx::raw_sql(AssertSqlSafe(format!("DEALLOCATE lookup_{n}")))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::raw_sql("RESET plan_cache_mode")
        .execute(&mut *conn)
        .await
        .unwrap();
    wrong
}

/// Whether PostgreSQL holds statistics for a table, and the rows they count.
async fn statistics_of(conn: &mut sqlx::PgConnection, table: &str) -> (bool, f32) {
    let row = sqlx::query(
        "SELECT s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL AS analysed, c.reltuples \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relname = $1",
    )
    .bind(table)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    (row.get("analysed"), row.get("reltuples"))
}

/// Autovacuum cannot help: it must not analyse these tables while a test runs.
async fn without_autovacuum(conn: &mut sqlx::PgConnection) {
    for table in ["users", "sync_log_rows", "sync_runs"] {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// The whole workforce in one run (as `rollcall sync` does with an HR file).
async fn sync_all(org: &OrgStore, config: &SourceConfig, title: &str) {
    let batch: Vec<BatchItem> = (0..USERS).map(|i| person(i, title)).collect();
    let run = tokio::time::timeout(
        Duration::from_secs(600),
        run_batch(org, config, &meta(), &batch),
    )
    .await
    .expect("the run did not end: did it wait for a lock on users?")
    .unwrap();
    assert_eq!(run.status, RunStatus::Success, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_point_lookups_by_their_unique_index_with_and_without_statistics() {
    let Some(db) = support::postgres().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
    without_autovacuum(&mut conn).await;
    let (org, config) = setup(&store, "Acme").await;
    let scim = org
        .create_config("tests", new_config("Entra", ConfigKind::Scim, None))
        .await
        .unwrap();
    // A year of hourly SCIM activity runs is thousands; a thousand runs already make the
    // history more than a table of a few pages, where any index is as good as another.
    for _ in 0..1_000 {
        org.start_run(&NewRun {
            config_id: scim.id.clone(),
            connector: "SCIM".into(),
            trigger: rollcall_domain::Trigger::Scim,
            file_name: None,
            file_sha256: None,
            dry_run: false,
        })
        .await
        .unwrap();
    }

    // A first sync of the whole workforce while another session holds the lock ANALYZE needs
    // on `users` (not the one inserts need): the run does not wait for it, and leaves the
    // table as it was before the store analysed after large writes, loaded and never analysed.
    let mut holder = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    sync_all(&org, &config, "Engineer").await;
    assert_eq!(org.user_count().await.unwrap(), USERS);
    let (analysed, reltuples) = statistics_of(&mut conn, "users").await;
    assert!(
        !analysed && reltuples < 0.0,
        "users were analysed ({reltuples} rows)"
    );
    let samples = samples(&org).await;
    let wrong = postgres_plans(&mut conn, &samples).await;
    assert!(
        wrong.is_empty(),
        "without statistics:\n{}",
        wrong.join("\n\n")
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();

    // A run that rewrites every user: the store analyses what it wrote, after its commit.
    let batch: Vec<BatchItem> = (0..USERS).map(|i| person(i, "Manager")).collect();
    let run = run_batch(&org, &config, &meta(), &batch).await.unwrap();
    assert_eq!(run.counts.updated, USERS, "{run:?}");
    for table in ["users", "sync_log_rows"] {
        let (analysed, reltuples) = statistics_of(&mut conn, table).await;
        assert!(
            analysed && reltuples >= USERS as f32 * 0.9,
            "{table}: analysed {analysed}, {reltuples} rows"
        );
    }
    let wrong = postgres_plans(&mut conn, &samples).await;
    assert!(wrong.is_empty(), "with statistics:\n{}", wrong.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_sync_leaves_statistics() {
    let Some(db) = support::postgres().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
    without_autovacuum(&mut conn).await;
    let (org, config) = setup(&store, "Acme").await;
    // A small run leaves the table to autovacuum.
    let small: Vec<BatchItem> = (0..500).map(|i| person(i, "Engineer")).collect();
    run_batch(&org, &config, &meta(), &small).await.unwrap();
    assert!(!statistics_of(&mut conn, "users").await.0);
    // The rest of the workforce: 19,500 users and 20,000 log rows written.
    sync_all(&org, &config, "Engineer").await;
    for table in ["users", "sync_log_rows"] {
        let (analysed, reltuples) = statistics_of(&mut conn, table).await;
        assert!(
            analysed && reltuples >= USERS as f32 * 0.9,
            "{table}: analysed {analysed}, {reltuples} rows"
        );
    }
}

/// SQLite's name for the index PostgreSQL calls `index`.
fn sqlite_index(index: &str) -> &str {
    match index {
        "users_pkey" => "sqlite_autoindex_users_1",
        "sync_log_rows_pkey" => "PRIMARY KEY",
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_point_lookups_by_their_unique_index_without_statistics() {
    let db = support::sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    org.create_config("tests", new_config("Entra", ConfigKind::Scim, None))
        .await
        .unwrap();
    let batch: Vec<BatchItem> = (0..2_000).map(|i| person(i, "Engineer")).collect();
    run_batch(&org, &config, &meta(), &batch).await.unwrap();
    let samples = samples(&org).await;
    let path = db.url.expose().trim_start_matches("sqlite://");
    let path = path.split('?').next().unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    let stat1: i64 = sqlx::query(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get(0);
    assert_eq!(stat1, 0, "the database holds statistics");
    let mut wrong = Vec::new();
    for lookup in point_lookups() {
        let AnsweredBy::Unique(index) = lookup.answered_by else {
            continue;
        };
        let mut query = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", lookup.sql)));
        for param in &lookup.params {
            let value = value_of(&samples, param).to_owned();
            query = match param {
                LookupParam::Hour => query.bind(value.parse::<i64>().unwrap()),
                _ => query.bind(value),
            };
        }
        let details: Vec<String> = query
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", lookup.name))
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect();
        let text = details.join("; ");
        let uses = |name: &str| {
            details
                .iter()
                .any(|d| d.starts_with("SEARCH") && d.contains(&format!(" {name} ")))
        };
        // `found`: the keys found by a lookup of several, before their organisation is checked.
        let scans = details
            .iter()
            .any(|d| d.starts_with("SCAN") && d != "SCAN found");
        if !uses(sqlite_index(index)) || scans {
            wrong.push(format!("{}: {text}", lookup.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
