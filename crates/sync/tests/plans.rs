//! How PostgreSQL plans the store's queries after a first sync: a run that writes many users
//! leaves the tables it wrote analysed, so that what follows is planned from what they hold,
//! not from guesses about tables PostgreSQL has never looked at (autovacuum may be off, or a
//! minute late).

use std::time::Duration;

use rollcall_domain::record::BatchItem;
use rollcall_domain::{FieldKey, RunStatus};
use rollcall_store::{OrgStore, SourceConfig, Store};
use rollcall_sync::run_batch;
use sqlx::{AssertSqlSafe, Connection, Row};

#[macro_use]
mod support;
use support::{meta, row, setup};

const USERS: u64 = 20_000;

/// User `i` of the file: every unique key set (external ID, username, employee ID, email,
/// mobile), managed by the user `i / 10`.
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
