//! Storage for rollcall: one SQL implementation that runs on embedded SQLite and on
//! PostgreSQL, numbered migrations run at start, and an organisation-scoped handle
//! ([`OrgStore`]) through which every per-tenant query goes, so that no code path can forget
//! the organisation.
//!
//! Both backends are reached through sqlx's `Any` driver with `$n` placeholders (which SQLite
//! also reads) and only TEXT / BIGINT columns, so each query is written once.

mod audit;
pub mod credentials;
mod db;
mod initial;
mod log_pages;
mod operator;
mod operator_changes;
mod point_lookups;
mod queue;
mod run_pages;
mod runs;
mod scim;
mod scim_writes;
mod sessions;
mod sqlite_direct;
mod sqlite_reads;
mod statistics;
mod user_columns;
mod user_pages;
mod users;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rollcall_domain::OrgId;

pub use audit::{AuditAction, AuditEntry};
pub use initial::InitialRun;
pub use log_pages::{LogPage, LogSelection};
pub use operator::{
    Admin, NewAdmin, NewConfig, Organisation, SftpCredentials, SftpLogin, SourceConfig, TokenInfo,
};
pub use operator_changes::{
    AdminRecord, AdminUpdate, ChangeAction, ChangeRecord, ConfigUpdate, FieldChange, OrgUpdate,
    Subject,
};
pub use point_lookups::{AnsweredBy, LookupParam, PointLookup, point_lookups};
pub use queue::{CHUNK_BYTES, Claim, QueuedFile, UploadError};
pub use run_pages::{RunCursor, RunPage};
pub use runs::{Approval, Finish, NewRun, RunRecord};
pub use scim::{Activity, IndexedColumn, UserRow};
pub use sessions::{Session, SessionLimits};
pub use user_pages::UserPage;

use db::Db;

/// Errors of the storage layer. Database text never leaves this crate: driver errors are
/// logged where they happen and returned as the opaque [`StoreError::Database`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken: which one, and the value when the caller knows it.
    #[error("{0}")]
    Conflict(Conflict),
    /// The run is not in a status the operation can start from (a cancelled run cannot be
    /// cancelled again, a run is approved once).
    #[error("the run is {}: {needed}", found.label())]
    RunStatus {
        found: rollcall_domain::RunStatus,
        /// What the operation needs, said as a rule ("only a queued run can be cancelled").
        needed: &'static str,
    },
    /// A write based on a stale version: someone else changed the row meanwhile (or, on
    /// PostgreSQL, a concurrent transaction made this one fail: a serialization failure or a
    /// deadlock). Nothing of the write is kept; plan it again.
    #[error("the record changed while it was being written; try again")]
    StaleWrite,
    #[error("{0} not found")]
    NotFound(String),
    /// A configuration still manages users and was not asked to release them.
    #[error("configuration '{config}' manages {users} users")]
    Manages { config: String, users: u64 },
    /// Something in progress stands in the way (a run of a configuration to delete).
    #[error("{0}")]
    InUse(String),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error")]
    Database,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && let Some(refused) = refused_by_another_writer(db.as_ref())
        {
            return refused;
        }
        if let sqlx::Error::RowNotFound = e {
            return StoreError::NotFound("row".into());
        }
        tracing::error!(error = %e, "database error");
        StoreError::Database
    }
}

/// A rusqlite error (the direct SQLite paths), logged here: a taken unique key is a
/// [`StoreError::Conflict`] (the run plans again), anything else the opaque
/// [`StoreError::Database`].
pub(crate) fn failed(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, message) = &e
        && code.code == rusqlite::ErrorCode::ConstraintViolation
        && matches!(
            code.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        let key = UniqueKey::violated(None, message.as_deref().unwrap_or_default());
        return StoreError::Conflict(Conflict { key, value: None });
    }
    tracing::error!(error = %e, "SQLite failed");
    StoreError::Database
}

/// PostgreSQL's codes (SQLSTATE) for a transaction that lost to a concurrent one and can be
/// planned again: nothing it wrote is kept.
const SERIALIZATION_FAILURE: &str = "40001";
const DEADLOCK_DETECTED: &str = "40P01";

/// A write refused because another writer got there first, decided from the error's code
/// (its SQLSTATE on PostgreSQL, its extended result code on SQLite), never from its text:
/// a taken unique key is a [`StoreError::Conflict`], a serialization failure or a deadlock
/// a [`StoreError::StaleWrite`]. Callers plan again against what is now committed, so either
/// ends as a conflict row or a 409, not a 500.
fn refused_by_another_writer(db: &dyn sqlx::error::DatabaseError) -> Option<StoreError> {
    if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
        let key = UniqueKey::violated(db.constraint(), db.message());
        return Some(StoreError::Conflict(Conflict { key, value: None }));
    }
    match db.code().as_deref() {
        Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED) => {
            tracing::info!(error = %db, "a concurrent transaction won; the write is planned again");
            Some(StoreError::StaleWrite)
        }
        _ => None,
    }
}

/// A unique key a write found taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: UniqueKey,
    /// The value that is taken, where the writer knows it (never read from the driver's text).
    pub value: Option<String>,
}

impl Conflict {
    pub fn new(key: UniqueKey, value: impl Into<String>) -> Conflict {
        Conflict {
            key,
            value: Some(value.into()),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_deref().unwrap_or("");
        match (self.key, value.is_empty()) {
            (UniqueKey::OrgName, false) => {
                write!(f, "an organisation named '{value}' already exists")
            }
            (UniqueKey::ConfigName, false) => {
                write!(
                    f,
                    "a configuration named '{value}' already exists in this organisation"
                )
            }
            (UniqueKey::SftpUser, false) => write!(f, "the SFTP user '{value}' is already taken"),
            (UniqueKey::AdminEmail, false) => {
                write!(f, "an admin with the email '{value}' already exists")
            }
            (key, false) => write!(f, "the {} '{value}' is already taken", key.label()),
            (key, true) => write!(f, "the {} is already taken", key.label()),
        }
    }
}

/// The unique keys of rollcall's tables, each enforced by a unique index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueKey {
    OrgName,
    ConfigName,
    SftpUser,
    AdminEmail,
    ScimToken,
    UserExternalId,
    UserName,
    UserEmployeeId,
    UserEmail,
    UserMobile,
    /// A configuration's SCIM activity run of one hour.
    ActivityRun,
    /// A row's own identity (a primary key): two writers made the same row.
    Row,
}

impl UniqueKey {
    /// Each unique index with the key it enforces, and its columns as SQLite names them.
    const INDEXES: [(&'static str, &'static str, UniqueKey); 11] = [
        (
            "organisations_name",
            "organisations.name",
            UniqueKey::OrgName,
        ),
        (
            "source_configs_name",
            "source_configs.org_id, source_configs.name",
            UniqueKey::ConfigName,
        ),
        (
            "source_configs_sftp_user",
            "source_configs.sftp_user",
            UniqueKey::SftpUser,
        ),
        ("admins_email", "admins.email_norm", UniqueKey::AdminEmail),
        (
            "scim_tokens_digest",
            "scim_tokens.digest",
            UniqueKey::ScimToken,
        ),
        (
            "users_external_id",
            "users.org_id, users.external_id",
            UniqueKey::UserExternalId,
        ),
        (
            "users_username",
            "users.org_id, users.username_norm",
            UniqueKey::UserName,
        ),
        (
            "users_employee_id",
            "users.org_id, users.employee_id",
            UniqueKey::UserEmployeeId,
        ),
        ("users_email", "users.email_norm", UniqueKey::UserEmail),
        (
            "users_phone_mobile",
            "users.phone_mobile_e164",
            UniqueKey::UserMobile,
        ),
        (
            "sync_runs_activity_hour",
            "sync_runs.config_id, sync_runs.activity_hour",
            UniqueKey::ActivityRun,
        ),
    ];

    /// The key a unique violation names: PostgreSQL gives the index's name, SQLite only its
    /// columns, in its message (`UNIQUE constraint failed: users.email_norm`). This is the one
    /// place the driver's text is read; anything else unique is a row's primary key.
    pub(crate) fn violated(index: Option<&str>, message: &str) -> UniqueKey {
        let columns = message.split_once(": ").map(|(_, c)| c.trim());
        Self::INDEXES
            .iter()
            .find(|(name, cols, _)| {
                index == Some(*name) || (index.is_none() && columns == Some(*cols))
            })
            .map(|&(_, _, key)| key)
            .unwrap_or(UniqueKey::Row)
    }

    /// How a message names the key.
    pub fn label(self) -> &'static str {
        match self {
            UniqueKey::OrgName => "organisation name",
            UniqueKey::ConfigName => "configuration name",
            UniqueKey::SftpUser => "SFTP user",
            UniqueKey::AdminEmail => "admin email",
            UniqueKey::ScimToken => "token",
            UniqueKey::UserExternalId => "external ID",
            UniqueKey::UserName => "username",
            UniqueKey::UserEmployeeId => "employee ID",
            UniqueKey::UserEmail => "email",
            UniqueKey::UserMobile => "mobile phone",
            UniqueKey::ActivityRun => "activity run",
            UniqueKey::Row => "record",
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// The embedded database inside a data directory.
    pub fn sqlite_in(data_dir: &std::path::Path) -> DatabaseUrl {
        DatabaseUrl {
            url: format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("rollcall.db").display()
            ),
            backend: Backend::Sqlite,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn expose(&self) -> &str {
        &self.url
    }

    fn redacted(&self) -> String {
        // scheme://user:password@host → scheme://user:***@host
        if let Some((scheme, rest)) = self.url.split_once("://")
            && let Some((auth, host)) = rest.split_once('@')
            && let Some((user, _)) = auth.split_once(':')
        {
            return format!("{scheme}://{user}:***@{host}");
        }
        self.url.clone()
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<DatabaseUrl> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::InvalidUrl(
                "use sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            ));
        };
        Ok(DatabaseUrl {
            url: url.to_owned(),
            backend,
        })
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Time as a parameter, so that tests of dates, durations and file names are exact.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The database of a rollcall deployment.
#[derive(Clone)]
pub struct Store {
    db: Db,
    clock: Arc<dyn Clock>,
    scim_writes: scim_writes::ScimWrites,
    /// SQLite only: point reads without sqlx's worker threads.
    point_reads: Option<Arc<sqlite_reads::PointReads>>,
    /// SQLite only: the bulk path of file runs (one scan, prepared-statement writes).
    direct: Option<Arc<sqlite_direct::DirectSqlite>>,
    /// SQLite only: SCIM's page order, kept until the database changes.
    page_order: Option<Arc<sqlite_reads::PageOrder>>,
}

/// How many SQLite connections serve point reads: one per core. They are used on the async
/// runtime's workers (one per core), so more would only hold more page caches.
fn point_readers() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .clamp(2, 8)
}

impl Store {
    /// Connect and bring the schema up to date. A database migrated by a newer rollcall is
    /// refused rather than used.
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        Store::open_with_clock(url, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(url: &DatabaseUrl, clock: Arc<dyn Clock>) -> Result<Store> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        let (point_reads, direct, page_order) = match (db.backend, db::sqlite_path(url)) {
            (Backend::Sqlite, Some(path)) => (
                Some(Arc::new(sqlite_reads::PointReads::open(
                    &path,
                    point_readers(),
                )?)),
                Some(Arc::new(sqlite_direct::DirectSqlite::new(&path))),
                Some(Arc::new(sqlite_reads::PageOrder::open(&path)?)),
            ),
            _ => (None, None, None),
        };
        let scim_writes =
            scim_writes::ScimWrites::start(db.clone(), clock.clone(), direct.as_deref())?;
        Ok(Store {
            db,
            clock,
            scim_writes,
            point_reads,
            direct,
            page_order,
        })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    /// The handle through which all of one organisation's data is reached.
    pub fn org(&self, org: OrgId) -> OrgStore {
        OrgStore {
            store: self.clone(),
            org,
        }
    }

    /// The store's clock (a fixed one in tests).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// One organisation's view of the store. Every query made through it is limited to that
/// organisation.
#[derive(Clone)]
pub struct OrgStore {
    store: Store,
    org: OrgId,
}

impl OrgStore {
    pub fn org_id(&self) -> &OrgId {
        &self.org
    }
}

/// A fresh id (UUID v7: time-ordered, so inserts stay local in the primary-key index).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unique index the migrations create is a key the store can name, whichever way
    /// the driver reports it: by index name (PostgreSQL) or by columns (SQLite).
    #[test]
    fn every_unique_index_of_the_migrations_names_its_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut found = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for statement in sql.split(';') {
                let Some((_, rest)) = statement.split_once("CREATE UNIQUE INDEX ") else {
                    continue;
                };
                let (name, rest) = rest.trim().split_once(" ON ").unwrap();
                let (table, rest) = rest.trim().split_once('(').unwrap();
                let columns: Vec<String> = rest
                    .split_once(')')
                    .unwrap()
                    .0
                    .split(',')
                    .map(|c| format!("{}.{}", table.trim(), c.trim()))
                    .collect();
                let by_name = UniqueKey::violated(Some(name.trim()), "");
                let sqlite_message = format!("UNIQUE constraint failed: {}", columns.join(", "));
                let by_columns = UniqueKey::violated(None, &sqlite_message);
                assert_ne!(by_name, UniqueKey::Row, "index {name} is not named");
                assert_eq!(by_name, by_columns, "{name} vs {sqlite_message}");
                found += 1;
            }
        }
        assert!(found >= 11, "only {found} unique indexes found");
        // A primary key, or anything unknown, is a row's own identity.
        assert_eq!(
            UniqueKey::violated(
                None,
                "UNIQUE constraint failed: sync_log_rows.run_id, sync_log_rows.seq"
            ),
            UniqueKey::Row
        );
        assert_eq!(
            UniqueKey::violated(Some("sync_log_rows_pkey"), ""),
            UniqueKey::Row
        );
    }

    #[test]
    fn conflicts_say_which_value_is_taken() {
        let conflict = Conflict::new(UniqueKey::SftpUser, "payroll");
        assert_eq!(
            conflict.to_string(),
            "the SFTP user 'payroll' is already taken"
        );
        let conflict = Conflict::new(UniqueKey::UserEmail, "ann@acme.example");
        assert_eq!(
            conflict.to_string(),
            "the email 'ann@acme.example' is already taken"
        );
        let unknown_value = Conflict {
            key: UniqueKey::UserName,
            value: None,
        };
        assert_eq!(unknown_value.to_string(), "the username is already taken");
    }
}
