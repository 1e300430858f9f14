//! The bulk path of file runs on SQLite, straight through the C library (rusqlite).
//!
//! A file of a million rows made sqlx `Any` the bottleneck twice: thousands of `IN (…)`
//! lookups whose rows are each converted through `Any`, and multi-row INSERTs whose every
//! value is boxed, reordered and bound by name. Here the context of a large batch is read in
//! one scan of the organisation's users, and a run's writes, log rows and final status are
//! applied with prepared statements in one `BEGIN IMMEDIATE` transaction.
//!
//! sqlx's single write connection is held for the whole transaction, so the SCIM writer task
//! and every other writer of this process wait for it exactly as they would for a sqlx
//! transaction. The work runs on a blocking thread where the runtime has one
//! (`block_in_place`), and on the calling thread in a single-threaded runtime (tests).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rollcall_domain::plan::{BatchKeys, Plan};
use rollcall_domain::{Counts, LogRow, RunStatus, StoredUser};
use rusqlite::{Connection, OpenFlags, Statement, params};

use crate::user_columns::{
    USER_COLUMNS, execute_user, insert_user_sql, update_changed, user_from_row,
};
use crate::users::UserWriteRef;
use crate::{Result, StoreError, failed};

/// Run blocking work without stalling the async workers of a multi-threaded runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Where the database file is; connections are opened per bulk operation (a few per run).
pub(crate) struct DirectSqlite {
    path: PathBuf,
}

/// The compared form of each key a batch holds, to pick the users a scan must keep.
struct KeySets<'a> {
    external_ids: HashSet<&'a str>,
    usernames: HashSet<&'a str>,
    employee_ids: HashSet<&'a str>,
    emails: HashSet<&'a str>,
    phones: HashSet<&'a str>,
    user_ids: HashSet<&'a str>,
}

impl<'a> KeySets<'a> {
    fn of(keys: &'a BatchKeys) -> KeySets<'a> {
        let set = |list: &'a [String]| list.iter().map(String::as_str).collect();
        KeySets {
            external_ids: set(&keys.external_ids),
            usernames: set(&keys.usernames),
            employee_ids: set(&keys.employee_ids),
            emails: set(&keys.emails),
            phones: set(&keys.phones),
            user_ids: set(&keys.user_ids),
        }
    }
}

/// Column positions in [`USER_COLUMNS`] of the keys a scan compares before building a user.
const ID: usize = 0;
const EXTERNAL_ID: usize = 2;
const USERNAME_NORM: usize = 4;
const EMPLOYEE_ID: usize = 5;
const EMAIL_NORM: usize = 9;
const PHONE_MOBILE_E164: usize = 12;

pub(crate) fn text_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>> {
    match row.get_ref(i).map_err(failed)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|_| StoreError::Database),
        _ => Err(StoreError::Database),
    }
}

impl DirectSqlite {
    pub fn new(path: &Path) -> DirectSqlite {
        DirectSqlite {
            path: path.to_owned(),
        }
    }

    pub(crate) fn open(&self, write: bool) -> Result<Connection> {
        let flags = if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags).map_err(failed)?;
        // The same settings as sqlx's connections (db.rs), with a larger page cache for the
        // duration of one bulk operation.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
             PRAGMA cache_size = -65536;",
        )
        .map_err(failed)?;
        Ok(conn)
    }

    /// How many users the organisation has (an index count), to choose between one scan and
    /// indexed lookups.
    pub fn org_user_count(&self, org: &str) -> Result<u64> {
        let conn = self.open(false)?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM users WHERE org_id = ?1", [org], |r| {
                r.get(0)
            })
            .map_err(failed)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The users of `org` that the batch's keys reach, read in one scan of the organisation,
    /// then their manager chains by id: in the scan's order, then the managers'.
    pub fn load_users(
        &self,
        org: &str,
        keys: &BatchKeys,
        expected: usize,
        scan: bool,
    ) -> Result<Vec<StoredUser>> {
        let conn = self.open(false)?;
        // One read transaction: the lookups and the chain lookups see the same snapshot.
        conn.execute_batch("BEGIN").map_err(failed)?;
        let found = lookup_users(&conn, org, keys, expected, scan)?;
        conn.execute_batch("COMMIT").map_err(failed)?;
        Ok(found)
    }

    /// Run `sql` with text parameters and hand each row's two text columns to `each` (rows
    /// with a NULL are left out).
    pub fn pairs<const N: usize>(
        &self,
        sql: &str,
        params: [&str; N],
        mut each: impl FnMut(&str, &str),
    ) -> Result<()> {
        let conn = self.open(false)?;
        let mut statement = conn.prepare(sql).map_err(failed)?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            if let (Some(a), Some(b)) = (text_at(row, 0)?, text_at(row, 1)?) {
                each(a, b);
            }
        }
        Ok(())
    }

    /// Run `sql` with text parameters and hand each row to `each`, its text columns borrowed.
    pub fn rows<const N: usize>(
        &self,
        sql: &str,
        params: [&str; N],
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.open(false)?;
        // One pass over the rows: a large page cache would only add to the caller's memory.
        conn.execute_batch("PRAGMA cache_size = -8192;")
            .map_err(failed)?;
        let mut statement = conn.prepare(sql).map_err(failed)?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            each(row)?;
        }
        Ok(())
    }

    /// Which of `values` (of the globally unique `column`) users of other organisations hold.
    /// Probes the unique index value by value, or scans the other organisations when they
    /// have fewer users than there are values to probe.
    pub fn foreign_keys(
        &self,
        org: &str,
        column: &'static str,
        values: &[&str],
    ) -> Result<HashSet<String>> {
        if values.is_empty() {
            return Ok(HashSet::new());
        }
        let conn = self.open(false)?;
        conn.execute_batch("BEGIN").map_err(failed)?;
        let held = foreign_keys_on(&conn, org, column, values)?;
        conn.execute_batch("COMMIT").map_err(failed)?;
        Ok(held)
    }

    /// Apply a finished run in one transaction: the plan's writes (when `apply`), one log row
    /// per record (or `extra_logs`), and the run's final status and counts.
    pub fn finish(&self, f: &FinishArgs<'_>) -> Result<()> {
        let mut conn = self.open(true)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed)?;
        // A run that is no longer In Progress (cancelled, or taken again after its lease ran
        // out) is not ended twice.
        let held = tx
            .execute(
                "UPDATE sync_runs SET status = status WHERE id = ?1 AND org_id = ?2 AND status = 'in_progress'",
                params![f.run, f.org],
            )
            .map_err(failed)?;
        if held != 1 {
            return Err(StoreError::NotFound(format!("run {} in progress", f.run)));
        }
        if let (Some(plan), true) = (f.plan, f.apply) {
            write_users_direct(&tx, f.org, || plan.writes().map(UserWriteRef::from), f.now)?;
            crate::audit::audit_run_sqlite(&tx, f.org, f.run, plan, f.now)?;
        }
        let mut seq = 0;
        match f.plan {
            Some(plan) => insert_logs(&tx, f.run, &mut seq, plan.log_rows())?,
            None => insert_logs(&tx, f.run, &mut seq, f.logs.iter().cloned())?,
        }
        end_run(&tx, f.org, f.run, f.status, f.now, &f.counts, None)?;
        tx.commit().map_err(failed)?;
        truncate_log(&conn);
        Ok(())
    }
}

/// [`DirectSqlite::load_users`] on an open connection, in the caller's transaction.
pub(crate) fn lookup_users(
    conn: &Connection,
    org: &str,
    keys: &BatchKeys,
    expected: usize,
    scan: bool,
) -> Result<Vec<StoredUser>> {
    let sets = KeySets::of(keys);
    // Users are large: they are moved once, into `found`, and known by id beside it.
    let mut found: Vec<StoredUser> = Vec::with_capacity(expected);
    let mut ids: HashSet<String> = HashSet::with_capacity(expected);
    if !scan {
        // Indexed lookups, key by key; a value a user found so far holds needs none.
        let mut held: [HashSet<String>; 6] = Default::default();
        let lookups: [(&str, &[String]); 6] = [
            ("external_id", &keys.external_ids),
            ("username_norm", &keys.usernames),
            ("employee_id", &keys.employee_ids),
            ("email_norm", &keys.emails),
            ("phone_mobile_e164", &keys.phones),
            ("id", &keys.user_ids),
        ];
        for (position, (column, values)) in lookups.into_iter().enumerate() {
            let mut by = conn
                .prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND {column} = ?2"
                ))
                .map_err(failed)?;
            for v in values {
                if held[position].contains(v) {
                    continue;
                }
                let mut rows = by.query(params![org, v]).map_err(failed)?;
                while let Some(row) = rows.next().map_err(failed)? {
                    let user = user_from_row(row)?;
                    if !ids.insert(user.id.as_str().to_owned()) {
                        continue;
                    }
                    for (i, column) in [
                        EXTERNAL_ID,
                        USERNAME_NORM,
                        EMPLOYEE_ID,
                        EMAIL_NORM,
                        PHONE_MOBILE_E164,
                        ID,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        if let Some(v) = text_at(row, column)? {
                            held[i].insert(v.to_owned());
                        }
                    }
                    found.push(user);
                }
            }
        }
    } else {
        let mut scan = conn
            .prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1"
            ))
            .map_err(failed)?;
        let mut rows = scan.query([org]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let holds = |i: usize, set: &HashSet<&str>| -> Result<bool> {
                Ok(text_at(row, i)?.is_some_and(|v| set.contains(v)))
            };
            let wanted = holds(EXTERNAL_ID, &sets.external_ids)?
                || holds(USERNAME_NORM, &sets.usernames)?
                || holds(EMPLOYEE_ID, &sets.employee_ids)?
                || holds(EMAIL_NORM, &sets.emails)?
                || holds(PHONE_MOBILE_E164, &sets.phones)?
                || holds(ID, &sets.user_ids)?;
            if wanted {
                let user = user_from_row(row)?;
                ids.insert(user.id.as_str().to_owned());
                found.push(user);
            }
        }
    }
    let mut by_id = conn
        .prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND id = ?2"
        ))
        .map_err(failed)?;
    add_manager_chains(&mut found, &mut ids, 0, |id| {
        let mut rows = by_id.query(params![org, id]).map_err(failed)?;
        match rows.next().map_err(failed)? {
            Some(row) => user_from_row(row).map(Some),
            None => Ok(None),
        }
    })?;
    drop(by_id);
    Ok(found)
}

/// Add to `found` (whose ids are `ids`) the managers of `found[from..]`, level by level up
/// the chains, read by `by_id`. The stored graph has no loops; the cap guards against a
/// corrupted database.
pub(crate) fn add_manager_chains(
    found: &mut Vec<StoredUser>,
    ids: &mut HashSet<String>,
    from: usize,
    mut by_id: impl FnMut(&str) -> Result<Option<StoredUser>>,
) -> Result<()> {
    let mut level = from..found.len();
    for _ in 0..10_000 {
        let mut missing: Vec<String> = found[level.clone()]
            .iter()
            .filter_map(|u| u.manager_id.as_ref())
            .filter(|m| !ids.contains(m.as_str()))
            .map(|m| m.as_str().to_owned())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let before = found.len();
        for id in missing {
            if let Some(user) = by_id(&id)? {
                ids.insert(user.id.as_str().to_owned());
                found.push(user);
            }
        }
        if found.len() == before {
            break;
        }
        level = before..found.len();
    }
    Ok(())
}

/// [`DirectSqlite::foreign_keys`] on an open connection, in the caller's transaction.
pub(crate) fn foreign_keys_on(
    conn: &Connection,
    org: &str,
    column: &'static str,
    values: &[&str],
) -> Result<HashSet<String>> {
    let mut held = HashSet::new();
    if values.is_empty() {
        return Ok(held);
    }
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .map_err(failed)?;
    let own: i64 = conn
        .query_row("SELECT COUNT(*) FROM users WHERE org_id = ?1", [org], |r| {
            r.get(0)
        })
        .map_err(failed)?;
    let others = usize::try_from(total - own).unwrap_or(0);
    if others <= values.len() {
        let wanted: HashSet<&str> = values.iter().copied().collect();
        let mut scan = conn
            .prepare(&format!(
                "SELECT {column} FROM users WHERE org_id <> ?1 AND {column} IS NOT NULL"
            ))
            .map_err(failed)?;
        let mut rows = scan.query([org]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            if let Some(v) = text_at(row, 0)?
                && wanted.contains(v)
            {
                held.insert(v.to_owned());
            }
        }
    } else {
        let mut probe = conn
            .prepare(&format!(
                "SELECT 1 FROM users WHERE {column} = ?1 AND org_id <> ?2"
            ))
            .map_err(failed)?;
        for v in values {
            if probe.exists(params![v, org]).map_err(failed)? {
                held.insert((*v).to_owned());
            }
        }
    }
    Ok(held)
}

/// Insert log rows of `run`, numbered from `seq` on (which ends past the last one), many rows
/// per statement: a million log rows cost half as much as one by one.
pub(crate) fn insert_logs(
    conn: &Connection,
    run: &str,
    seq: &mut i64,
    rows: impl Iterator<Item = LogRow>,
) -> Result<()> {
    let mut many = conn.prepare_cached(&log_insert(LOG_ROWS)).map_err(failed)?;
    let mut one = conn.prepare_cached(&log_insert(1)).map_err(failed)?;
    let mut pending: Vec<LogRow> = Vec::with_capacity(LOG_ROWS);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        pending.clear();
        pending.extend(rows.by_ref().take(LOG_ROWS));
        if pending.len() == LOG_ROWS {
            for (k, row) in pending.iter().enumerate() {
                bind_log_row(&mut many, k * 10, run, *seq + k as i64, row)?;
            }
            many.raw_execute().map_err(failed)?;
            *seq += LOG_ROWS as i64;
        } else {
            for row in &pending {
                bind_log_row(&mut one, 0, run, *seq, row)?;
                one.raw_execute().map_err(failed)?;
                *seq += 1;
            }
        }
    }
    Ok(())
}

/// End a run in the caller's transaction: its status, end time and counts, and the file's
/// hash unless one is recorded. A run no longer In Progress (cancelled, or queued again after
/// its lease ran out) is not ended twice: `NotFound`, and nothing of this attempt is kept.
pub(crate) fn end_run(
    conn: &Connection,
    org: &str,
    run: &str,
    status: RunStatus,
    ended_at: i64,
    counts: &Counts,
    sha256: Option<&str>,
) -> Result<()> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let done = conn
        .execute(
            "UPDATE sync_runs SET status = ?1, ended_at = ?2, created = ?3, updated = ?4, deactivated = ?5, \
             reactivated = ?6, unchanged = ?7, skipped = ?8, warnings = ?9, \
             file_sha256 = COALESCE(file_sha256, ?10), failed = ?13, ignored_inactive = ?14 \
             WHERE id = ?11 AND org_id = ?12 AND status = 'in_progress'",
            params![
                status.code(),
                ended_at,
                n(counts.created),
                n(counts.updated),
                n(counts.deactivated),
                n(counts.reactivated),
                n(counts.unchanged),
                n(counts.skipped),
                n(counts.warnings),
                sha256,
                run,
                org,
                n(counts.failed),
                n(counts.ignored_inactive),
            ],
        )
        .map_err(failed)?;
    if done != 1 {
        return Err(StoreError::NotFound(format!("run {run} in progress")));
    }
    Ok(())
}

/// Empty the write-ahead log after a large commit, which SQLite's automatic checkpoint has
/// already copied into the database: left as large as the run's writes, it would be read
/// through by the next process to open the file. Skipped, without waiting, while a reader
/// holds it. The connection is left without a busy timeout: call it last.
pub(crate) fn truncate_log(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA busy_timeout = 0; PRAGMA wal_checkpoint(TRUNCATE);")
    {
        tracing::debug!(error = %e, "the write-ahead log was not truncated");
    }
}

/// Log rows per multi-row INSERT (10 parameters each).
const LOG_ROWS: usize = 64;

fn log_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|k| {
            let p: Vec<String> = (1..=10).map(|i| format!("?{}", k * 10 + i)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO sync_log_rows (run_id, seq, row_num, external_id, username, action, \
         error_type, message, additional_data, changed_fields) VALUES {}",
        values.join(", ")
    )
}

/// Bind one log row as parameters `at + 1` … `at + 10`.
fn bind_log_row(
    statement: &mut Statement<'_>,
    at: usize,
    run: &str,
    seq: i64,
    row: &LogRow,
) -> Result<()> {
    let mut bind =
        |i: usize, v: &dyn rusqlite::ToSql| statement.raw_bind_parameter(at + i, v).map_err(failed);
    bind(1, &run)?;
    bind(2, &seq)?;
    bind(3, &row.row.map(|r| i64::try_from(r).unwrap_or(i64::MAX)))?;
    bind(4, &row.external_id)?;
    bind(5, &row.username)?;
    bind(6, &row.action.label())?;
    bind(7, &row.error_type_codes())?;
    bind(8, &row.message)?;
    bind(9, &row.additional_data)?;
    bind(10, &row.changed_fields)
}

/// What [`DirectSqlite::finish`] records.
pub(crate) struct FinishArgs<'a> {
    pub org: &'a str,
    pub run: &'a str,
    pub now: i64,
    /// The plan whose records are logged (and whose writes are applied when `apply`).
    pub plan: Option<&'a Plan>,
    pub apply: bool,
    /// The log rows when there is no plan (a run whose data could not be loaded).
    pub logs: &'a [LogRow],
    pub status: RunStatus,
    pub counts: Counts,
}

/// Apply planned user writes through rusqlite, in the caller's transaction: updates first
/// (each checked against the version it was planned on: [`StoreError::StaleWrite`]
/// otherwise), then inserts. The one way a plan's users are written on the direct SQLite path
/// (runs, chunks of a first sync, SCIM groups alike). `writes` is called twice (updates, then
/// inserts) rather than collected: a plan may hold a million writes.
///
/// An update sets only the columns that change, from the user as stored at the planned
/// version (the planner's copy where it has one, else read here): SQLite rewrites an index
/// entry for every indexed column a statement sets, and the 1 % of a file that changed,
/// scattered over a million users, dirtied seven index pages per row.
pub(crate) fn write_users_direct<'a, I>(
    tx: &Connection,
    org: &str,
    writes: impl Fn() -> I,
    now: i64,
) -> Result<()>
where
    I: Iterator<Item = UserWriteRef<'a>>,
{
    let mut stored = tx
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?1 AND org_id = ?2 AND version = ?3"
        ))
        .map_err(failed)?;
    for write in writes() {
        let Some(version) = write.expected_version else {
            continue;
        };
        let read;
        let before = match write.before {
            Some(before) => before,
            None => {
                let mut rows = stored
                    .query(params![write.user.id.as_str(), org, version])
                    .map_err(failed)?;
                read = match rows.next().map_err(failed)? {
                    Some(row) => user_from_row(row)?,
                    None => return Err(StoreError::StaleWrite),
                };
                &read
            }
        };
        if update_changed(tx, org, before, write.user, now, version)? != 1 {
            return Err(StoreError::StaleWrite);
        }
        if write.user.scim_deleted {
            tx.prepare_cached(&crate::sqlite_reads::numbered(crate::users::FORGET_DELETED))
                .map_err(failed)?
                .execute(params![write.user.id.as_str()])
                .map_err(failed)?;
            let mut remember = tx
                .prepare_cached(&crate::sqlite_reads::numbered(
                    crate::users::REMEMBER_DELETED,
                ))
                .map_err(failed)?;
            for (kind, value) in crate::users::deleted_keys(write.user) {
                remember
                    .execute(params![org, write.user.id.as_str(), kind, value])
                    .map_err(failed)?;
            }
        }
    }
    let mut insert = tx.prepare_cached(insert_user_sql()).map_err(failed)?;
    for write in writes().filter(|w| w.expected_version.is_none()) {
        execute_user(&mut insert, org, write.user, now, now)?;
    }
    Ok(())
}

impl crate::OrgStore {
    /// [`crate::OrgStore::finish_run`] on SQLite: holds sqlx's write connection (so every
    /// other writer of this process waits) while rusqlite applies the run.
    pub(crate) async fn finish_run_bulk(
        &self,
        bulk: &DirectSqlite,
        run: &rollcall_domain::RunId,
        finish: crate::Finish<'_>,
        now: i64,
    ) -> Result<()> {
        let _writer = self.store.db.write.acquire().await?;
        let args = match finish {
            crate::Finish::Apply(plan) => FinishArgs {
                org: self.org.as_str(),
                run: run.as_str(),
                now,
                plan: Some(plan),
                apply: true,
                logs: &[],
                status: plan.counts.completed_status(),
                counts: plan.counts,
            },
            crate::Finish::Report(plan, status) => FinishArgs {
                org: self.org.as_str(),
                run: run.as_str(),
                now,
                plan: Some(plan),
                apply: false,
                logs: &[],
                status,
                counts: plan.counts,
            },
            crate::Finish::DataLoadFailed(rows) => FinishArgs {
                org: self.org.as_str(),
                run: run.as_str(),
                now,
                plan: None,
                apply: false,
                logs: rows,
                status: RunStatus::DataLoadFailed,
                counts: Counts::default(),
            },
        };
        blocking(|| bulk.finish(&args))
    }
}
