//! Connections, migrations and the small helpers every query uses.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, SqlSafeStr};

use crate::{Backend, DatabaseUrl, Result, StoreError};

/// The migrations, oldest first. Each runs in its own transaction; sqlx records them in its
/// version table and refuses a database that has migrations this binary does not know.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "scim_activity",
        include_str!("../migrations/0002_scim_activity.sql"),
    ),
    (
        3,
        "run_files",
        include_str!("../migrations/0003_run_files.sql"),
    ),
    (
        4,
        "run_queue",
        include_str!("../migrations/0004_run_queue.sql"),
    ),
    (
        5,
        "admin_sessions",
        include_str!("../migrations/0005_admin_sessions.sql"),
    ),
    (
        6,
        "admin_audit",
        include_str!("../migrations/0006_admin_audit.sql"),
    ),
    (
        7,
        "operator_tokens",
        include_str!("../migrations/0007_operator_tokens.sql"),
    ),
    (
        8,
        "lean_indexes",
        include_str!("../migrations/0008_lean_indexes.sql"),
    ),
    (
        9,
        "run_attempts",
        include_str!("../migrations/0009_run_attempts.sql"),
    ),
    (
        10,
        "admin_runs",
        include_str!("../migrations/0010_admin_runs.sql"),
    ),
    (
        11,
        "run_outcomes",
        include_str!("../migrations/0011_run_outcomes.sql"),
    ),
    (
        12,
        "operator_changes",
        include_str!("../migrations/0012_operator_changes.sql"),
    ),
    (
        13,
        "run_mappings",
        include_str!("../migrations/0013_run_mappings.sql"),
    ),
    (
        14,
        "config_lifecycle",
        include_str!("../migrations/0014_config_lifecycle.sql"),
    ),
    (
        15,
        "ignored_inactive",
        include_str!("../migrations/0015_ignored_inactive.sql"),
    ),
    (
        16,
        "deleted_users_release",
        include_str!("../migrations/0016_deleted_users_release.sql"),
    ),
    (17, "names", include_str!("../migrations/0017_names.sql")),
];

/// A migration's text for PostgreSQL: binary columns are BYTEA, and the lines between
/// `-- begin: SQLite only` and `-- end: SQLite only` (SQLite's storage layout) are left out.
/// A text without either is otherwise unchanged: sqlx checks applied migrations' checksums.
fn for_postgres(sql: &str) -> String {
    if !sql.contains("-- begin: SQLite only") {
        return sql.replace(" BLOB", " BYTEA");
    }
    let mut out = String::with_capacity(sql.len());
    let mut sqlite_only = false;
    for line in sql.lines() {
        match line.trim() {
            "-- begin: SQLite only" => sqlite_only = true,
            "-- end: SQLite only" => sqlite_only = false,
            _ if !sqlite_only => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out.replace(" BLOB", " BYTEA")
}

/// A bound value. TEXT and BIGINT (and BLOB for stored files), so both backends agree on
/// every type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Vec<u8>),
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Int(Some(i64::from(v)))
    }
}

/// Build a query from SQL with `$n` placeholders and its arguments in order.
///
/// SQLite reads `$n` too, but binds it by looking the name up in a linear list for every
/// parameter, which made a 6,000-parameter multi-row INSERT quadratic. For SQLite the text is
/// rewritten to anonymous `?` placeholders with the arguments reordered (and repeated) to
/// match, which binds in constant time per parameter.
pub(crate) fn query(
    backend: Backend,
    sql: impl Into<Cow<'static, str>>,
    args: Vec<Arg>,
) -> Query<'static, Any, AnyArguments> {
    let sql: Cow<'static, str> = sql.into();
    let (sql, args) = match backend {
        Backend::Postgres => (sql, args),
        Backend::Sqlite => {
            let (text, args) = anonymous_placeholders(&sql, args);
            (Cow::Owned(text), args)
        }
    };
    let mut q = match sql {
        Cow::Borrowed(s) => sqlx::query(s),
        Cow::Owned(s) => sqlx::query(AssertSqlSafe(s)),
    };
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Blob(v) => q.bind(v),
        };
    }
    q
}

/// `$n` → `?`, with the arguments in the order their placeholders appear. Our SQL has no `$`
/// inside string literals, so a plain scan is enough.
fn anonymous_placeholders(sql: &str, args: Vec<Arg>) -> (String, Vec<Arg>) {
    let mut text = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(args.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            let start = i + 1;
            let mut end = start;
            while let Some((j, d)) = chars.peek().copied() {
                if !d.is_ascii_digit() {
                    break;
                }
                end = j + 1;
                chars.next();
            }
            let n: usize = sql[start..end].parse().unwrap_or(0);
            if let Some(arg) = n.checked_sub(1).and_then(|k| args.get(k)) {
                ordered.push(arg.clone());
            }
            text.push('?');
        } else {
            text.push(c);
        }
    }
    (text, ordered)
}

/// `$from, $from+1, …` for `n` values: the inside of an `IN (…)` list.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored time (milliseconds since the epoch, UTC).
pub(crate) fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
}

pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(get::<i64>(row, column)? != 0)
}

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    row.try_get::<T, _>(column).map_err(StoreError::from)
}

/// The pools. SQLite allows one writer at a time, so writes go through a pool of one
/// connection (no lock contention between our own writers); reads use a larger pool, which
/// WAL mode lets run beside the writer. PostgreSQL uses one pool for both.
#[derive(Clone)]
pub(crate) struct Db {
    pub backend: Backend,
    pub read: AnyPool,
    pub write: AnyPool,
}

impl Db {
    pub async fn connect(url: &DatabaseUrl) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        match backend {
            Backend::Sqlite => {
                create_sqlite_file(url)?;
                let pragmas = sqlite_pragmas;
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(pragmas)
                    .connect(url.expose())
                    .await
                    .map_err(|e| connect_error(url, e))?;
                let read = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(pragmas)
                    .connect(url.expose())
                    .await
                    .map_err(|e| connect_error(url, e))?;
                Ok(Db {
                    backend,
                    read,
                    write,
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url.expose())
                    .await
                    .map_err(|e| connect_error(url, e))?;
                Ok(Db {
                    backend,
                    read: pool.clone(),
                    write: pool,
                })
            }
        }
    }

    pub async fn migrate(&self) -> Result<()> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                // One schema text for both backends (see `for_postgres`).
                let sql = match self.backend {
                    Backend::Postgres => AssertSqlSafe(for_postgres(sql)).into_sql_str(),
                    Backend::Sqlite => sql.into_sql_str(),
                };
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql,
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        migrator.run(&self.write).await.map_err(|e| {
            tracing::error!(error = %e, "migration failed");
            StoreError::Migration(e.to_string())
        })
    }

    pub async fn ping(&self) -> Result<()> {
        query(self.backend, "SELECT 1", vec![])
            .execute(&self.read)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// The Any driver does not pass `mode=rwc` on to SQLite, so a new database file is created
/// here (with its directory) before connecting.
/// The file of a SQLite URL (`None` for an in-memory database).
pub(crate) fn sqlite_path(url: &DatabaseUrl) -> Option<std::path::PathBuf> {
    let rest = url.expose().trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

fn create_sqlite_file(url: &DatabaseUrl) -> Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let path = path.as_path();
    let io = |e: std::io::Error| {
        StoreError::InvalidUrl(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))
    };
    // Only the service's own user may read the users' data: a new folder is 0700 and a new
    // database 0600 (SQLite gives its -wal and -shm files the database file's mode). Existing
    // ones are left as the operator set them.
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    Ok(())
}

type PragmaFuture<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// Settings every SQLite connection needs.
fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> PragmaFuture<'_> {
    Box::pin(async move {
        // WAL: readers never block the writer. synchronous=NORMAL in WAL mode keeps every
        // commit across a crash of the process (not of the operating system).
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        // 16 MiB of page cache per connection (nine connections): enough for the indexes a
        // lookup walks, bounded so the process stays small.
        conn.execute("PRAGMA cache_size = -16384").await?;
        Ok(())
    })
}

fn connect_error(url: &DatabaseUrl, e: sqlx::Error) -> StoreError {
    tracing::error!(database = %url, error = %e, "cannot connect to the database");
    StoreError::InvalidUrl(format!("cannot connect to {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_anonymous_in_order_of_use() {
        let (sql, args) = anonymous_placeholders(
            "UPDATE t SET a = $2, b = $3 WHERE id = $1 OR name = $1 AND v = $10",
            (1..=10).map(|i| Arg::from(i as i64)).collect(),
        );
        assert_eq!(
            sql,
            "UPDATE t SET a = ?, b = ? WHERE id = ? OR name = ? AND v = ?"
        );
        let expected: Vec<Arg> = [2, 3, 1, 1, 10]
            .into_iter()
            .map(|i: i64| Arg::from(i))
            .collect();
        assert_eq!(args, expected);
    }

    #[test]
    fn postgres_leaves_out_sqlite_only_lines_and_keeps_other_texts_byte_for_byte() {
        let plain = "CREATE TABLE f (data BLOB NOT NULL);\r\n-- a comment\n";
        assert_eq!(
            super::for_postgres(plain),
            "CREATE TABLE f (data BYTEA NOT NULL);\r\n-- a comment\n"
        );
        let marked = "DROP INDEX a;\n-- begin: SQLite only\nCREATE TABLE t (x) WITHOUT ROWID;\n\
                      -- end: SQLite only\nCREATE INDEX b ON t (y);\n";
        assert_eq!(
            super::for_postgres(marked),
            "DROP INDEX a;\nCREATE INDEX b ON t (y);\n"
        );
        for (_, _, sql) in super::MIGRATIONS {
            let pg = super::for_postgres(sql);
            assert!(!pg.contains("WITHOUT ROWID"), "{pg}");
            assert_eq!(
                sql.matches("-- begin: SQLite only").count(),
                sql.matches("-- end: SQLite only").count()
            );
        }
    }
}
