//! What the storage suites share: a fresh database per test on SQLite, and on PostgreSQL
//! when `ROLLCALL_TEST_DATABASE_URL` names a server, and a few fixtures.
#![allow(dead_code)]

use rollcall_domain::FieldKey;
use rollcall_domain::config::{ConfigKind, Mode};
use rollcall_domain::mapping::Mapping;
use rollcall_domain::record::{BatchItem, RawRecord, ReadOptions};
use rollcall_store::{DatabaseUrl, NewConfig, OrgStore, SourceConfig, Store};
use rollcall_sync::RunMeta;
use sqlx::Connection;

/// A database for one test, dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    TestDb {
        url: DatabaseUrl::sqlite_in(dir.path()),
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("ROLLCALL_TEST_DATABASE_URL") else {
        if std::env::var("ROLLCALL_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!(
                "ROLLCALL_REQUIRE_ALL=1 but ROLLCALL_TEST_DATABASE_URL is not set: the PostgreSQL suite cannot run"
            );
        }
        eprintln!(
            "SKIPPED: PostgreSQL storage tests (set ROLLCALL_TEST_DATABASE_URL=postgres://USER@HOST/DB to run them)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
    let name = format!(
        "rollcall_test_{}",
        rollcall_store::new_id().replace('-', "")
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Some(TestDb {
        url: format!("{base}/{name}").parse().unwrap(),
        _dir: None,
    })
}

/// Run a test body on every available backend.
#[allow(unused_macros)]
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = super::sqlite().await;
                ($body)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = super::postgres().await {
                    ($body)(db).await;
                }
            }
        }
    };
}

pub fn mapping() -> Mapping {
    let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    Mapping::new(
        [
            f("external_id", "Id"),
            f("username", "Login"),
            f("email", "Email"),
            f("active", "Active"),
        ],
        Vec::<(String, String)>::new(),
        Vec::<(String, String)>::new(),
    )
    .unwrap()
}

/// An active configuration with no threshold, notification or SFTP login.
pub fn new_config(name: &str, kind: ConfigKind, mapping: Option<Mapping>) -> NewConfig {
    NewConfig {
        name: name.into(),
        kind,
        mode: Mode::Active,
        mapping,
        deactivation_threshold: None,
        notify_email: None,
        phone_region: None,
        sftp_user: None,
        sftp_password_hash: None,
        sftp_keys: vec![],
    }
}

pub async fn setup(store: &Store, org_name: &str) -> (OrgStore, SourceConfig) {
    let org = store.create_org("tests", org_name, true).await.unwrap();
    let org = store.org(org.id);
    let config = org
        .create_config(
            "tests",
            new_config("Payroll", ConfigKind::Sftp, Some(mapping())),
        )
        .await
        .unwrap();
    (org, config)
}

/// A file row with the given cells on top of id, login and active.
pub fn row(n: u64, id: &str, extra: &[(FieldKey, &str)]) -> BatchItem {
    let mut cells = vec![
        (FieldKey::ExternalId, id.to_owned()),
        (FieldKey::Username, format!("user{id}")),
        (FieldKey::Active, "true".to_owned()),
    ];
    for (k, v) in extra {
        cells.retain(|(key, _)| key != k);
        cells.push((*k, v.to_string()));
    }
    RawRecord {
        row: n,
        cells,
        custom: vec![("CostCentre".into(), format!("CC-{id}"))],
    }
    .validate(&ReadOptions::default())
}

pub fn meta() -> RunMeta {
    RunMeta {
        trigger: rollcall_domain::Trigger::Cli,
        file_name: Some("people.csv".into()),
        file_sha256: None,
        dry_run: false,
    }
}
