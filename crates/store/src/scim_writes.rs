//! SCIM writes, committed in groups.
//!
//! Identity providers send many small writes at once. Committing each in its own transaction
//! made the single SQLite writer the bottleneck (a dozen statement round trips and a WAL
//! commit per request). Here one task takes the writes that are waiting, applies them in one
//! transaction and answers each caller only after the commit: a 2xx still means the change is
//! durable, and concurrent requests share the commit.
//!
//! A conflict in one request must not undo the others: the group is first tried without
//! savepoints (conflicts are rare); if any request conflicts, the transaction is dropped and
//! the group is applied again with one savepoint per request, so the conflicting ones are
//! rolled back alone and their callers plan again.
//!
//! On PostgreSQL every node runs such a writer, and their transactions meet in the database.
//! A key another node took fails that write alone (its caller plans again, and answers 409);
//! a group adds to its activity run's counts before numbering its log rows, so the run's row
//! is locked and two nodes never number two rows alike; and a group that loses as a whole (a
//! deadlock, a serialization failure) is applied again. None of these is a 500.

use std::collections::BTreeMap;
use std::sync::Arc;

use rollcall_domain::{Action, ConfigId, Counts, LogRow, OrgId, RunId, RunStatus, StoredUser};
use sqlx::{Any, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::db::{Arg, Db, get, query};
use crate::sqlite_direct::DirectSqlite;
use crate::users::{UserWriteRef, write_users};
use crate::{Backend, Clock, Result, StoreError, new_id};

/// The most writes one transaction takes; more wait for the next one.
const MAX_GROUP: usize = 256;
/// Writes waiting beyond this make callers wait to enqueue (back-pressure).
const QUEUE: usize = 4096;

/// What a SCIM request changes.
pub(crate) enum Change {
    /// Users to write: new ones and updates.
    Users(Vec<UserWrite>),
    /// Nothing: a refused request, logged only.
    Nothing,
}

/// A user to write.
pub(crate) struct UserWrite {
    pub user: StoredUser,
    /// `None` for a new user; otherwise the version the write was planned on.
    pub expected_version: Option<i64>,
    /// The user as stored at `expected_version`, when known: only what changed is written.
    pub before: Option<StoredUser>,
}

impl UserWrite {
    pub(crate) fn as_ref(&self) -> UserWriteRef<'_> {
        UserWriteRef {
            user: &self.user,
            expected_version: self.expected_version,
            before: self.before.as_ref(),
        }
    }
}

/// A SCIM write with its activity log row.
pub(crate) struct Job {
    pub org: OrgId,
    pub config: ConfigId,
    pub change: Change,
    pub log: LogRow,
    pub action: Action,
    pub warning: bool,
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Committed>>,
}

/// A write's outcome once its group is committed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Committed {
    /// The time recorded as the users' `updated_at` (epoch milliseconds).
    pub at: i64,
}

/// The sending side; cloned into every [`crate::Store`].
#[derive(Clone)]
pub(crate) struct ScimWrites {
    sender: mpsc::Sender<Queued>,
}

impl ScimWrites {
    /// Start the writer task. It ends when the last sender (the last `Store`) is dropped.
    /// On SQLite (`bulk`), groups are written through rusqlite (see [`sqlite`]).
    pub fn start(db: Db, clock: Arc<dyn Clock>, bulk: Option<&DirectSqlite>) -> Result<ScimWrites> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        match bulk {
            Some(bulk) => {
                let conn = bulk.open(true)?;
                // Kept for the life of the store: the page cache of sqlx's connections, not
                // the larger one of a bulk operation.
                conn.execute_batch("PRAGMA cache_size = -16384")
                    .map_err(crate::failed)?;
                tokio::spawn(sqlite::writer(db, conn, clock, receiver));
            }
            None => {
                tokio::spawn(writer(db, clock, receiver));
            }
        }
        Ok(ScimWrites { sender })
    }

    /// Queue a write and wait until its group is committed.
    pub async fn submit(&self, job: Job) -> Result<Committed> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Queued { job, reply })
            .await
            .map_err(|_| StoreError::Database)?;
        answer.await.map_err(|_| StoreError::Database)?
    }
}

/// How many times a group is applied when the transaction as a whole (not one of its writes)
/// loses to a concurrent one: on PostgreSQL, another node's transaction can make it fail
/// with a deadlock or a serialization failure, and nothing of it is kept.
const GROUP_ATTEMPTS: usize = 3;

async fn writer(db: Db, clock: Arc<dyn Clock>, mut receiver: mpsc::Receiver<Queued>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let now = clock.now().timestamp_millis();
        let jobs: Vec<&Job> = group.iter().map(|q| &q.job).collect();
        let mut attempt = 1;
        let outcome = loop {
            let outcome = match commit_group(&db, &jobs, now, false).await {
                Ok(Some(results)) => Ok(results),
                Ok(None) => commit_group(&db, &jobs, now, true)
                    .await
                    .map(Option::unwrap_or_default),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if is_retryable(&e) && attempt < GROUP_ATTEMPTS => {
                    tracing::info!(error = %e, attempt, "a group of SCIM writes lost to a concurrent transaction; applying it again");
                    attempt += 1;
                }
                outcome => break outcome,
            }
        };
        answer(&mut group, outcome, now);
    }
}

/// Hand each caller of a group its result (every caller an error when the group failed:
/// [`StoreError::StaleWrite`], which callers plan again, when it lost to a concurrent
/// transaction, the opaque [`StoreError::Database`] otherwise).
fn answer(group: &mut Vec<Queued>, outcome: Result<Vec<Result<()>>>, at: i64) {
    match outcome {
        Ok(results) if results.len() == group.len() => {
            for (queued, result) in group.drain(..).zip(results) {
                let _ = queued.reply.send(result.map(|()| Committed { at }));
            }
        }
        Ok(_) | Err(_) => {
            let retryable = outcome.as_ref().is_err_and(is_retryable);
            if let Err(e) = &outcome {
                tracing::error!(error = %e, writes = group.len(), "a group of SCIM writes failed");
            }
            for queued in group.drain(..) {
                let e = if retryable {
                    StoreError::StaleWrite
                } else {
                    StoreError::Database
                };
                let _ = queued.reply.send(Err(e));
            }
        }
    }
}

/// The hour (epoch milliseconds) whose activity run a write at `now` goes into.
fn activity_hour(now: i64) -> i64 {
    now - now.rem_euclid(3_600_000)
}

/// The writes of a group by (organisation, configuration): one activity run each.
fn by_config<'a>(jobs: &[&'a Job]) -> BTreeMap<(&'a str, &'a str), Vec<&'a Job>> {
    let mut by_config: BTreeMap<(&str, &str), Vec<&Job>> = BTreeMap::new();
    for job in jobs {
        by_config
            .entry((job.org.as_str(), job.config.as_str()))
            .or_default()
            .push(job);
    }
    by_config
}

/// The writes of a group that happened, to be logged.
fn logged<'a>(jobs: &[&'a Job], results: &[Result<()>]) -> Vec<&'a Job> {
    jobs.iter()
        .zip(results)
        .filter(|(_, r)| r.is_ok())
        .map(|(job, _)| *job)
        .collect()
}

const INSERT_ACTIVITY_RUN: &str = "INSERT INTO sync_runs (id, org_id, config_id, connector, trigger_kind, status, \
    dry_run, queued_at, started_at, ended_at, activity_hour) VALUES ($1, $2, $3, 'SCIM', 'scim', $4, 0, $5, $5, $5, $6) \
    ON CONFLICT (config_id, activity_hour) DO NOTHING";
pub(crate) const SELECT_ACTIVITY_RUN: &str =
    "SELECT id FROM sync_runs WHERE config_id = $1 AND activity_hour = $2 AND org_id = $3";
pub(crate) const LAST_LOG_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) AS n FROM sync_log_rows WHERE run_id = $1";
const INSERT_LOG_ROW: &str = "INSERT INTO sync_log_rows (run_id, seq, row_num, external_id, username, action, \
    error_type, message, additional_data, changed_fields) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9)";
const ADD_TO_RUN: &str = "UPDATE sync_runs SET ended_at = $1, created = created + $2, updated = updated + $3, \
    deactivated = deactivated + $4, reactivated = reactivated + $5, unchanged = unchanged + $6, \
    skipped = skipped + $7, failed = failed + $8, warnings = warnings + $9, \
    status = CASE WHEN skipped + $7 + failed + $8 + warnings + $9 > 0 THEN $10 ELSE $11 END WHERE id = $12";
fn is_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(_) | StoreError::StaleWrite)
}

/// Apply a group in one transaction. Without `isolate`, a conflicting write abandons the
/// transaction (`Ok(None)`); with it, each write has its own savepoint and a conflict is that
/// write's result.
async fn commit_group(
    db: &Db,
    jobs: &[&Job],
    now: i64,
    isolate: bool,
) -> Result<Option<Vec<Result<()>>>> {
    let backend = db.backend;
    let mut tx = db.write.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        if isolate {
            query(backend, "SAVEPOINT scim_write", vec![])
                .execute(&mut *tx)
                .await?;
        }
        match apply(backend, &mut tx, job, now).await {
            Ok(()) => {
                if isolate {
                    query(backend, "RELEASE SAVEPOINT scim_write", vec![])
                        .execute(&mut *tx)
                        .await?;
                }
                results.push(Ok(()));
            }
            Err(e) if is_retryable(&e) && isolate => {
                query(backend, "ROLLBACK TO SAVEPOINT scim_write", vec![])
                    .execute(&mut *tx)
                    .await?;
                query(backend, "RELEASE SAVEPOINT scim_write", vec![])
                    .execute(&mut *tx)
                    .await?;
                results.push(Err(e));
            }
            Err(e) if is_retryable(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    record_activities(backend, &mut tx, &logged(jobs, &results), now).await?;
    tx.commit().await?;
    Ok(Some(results))
}

async fn apply(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    job: &Job,
    now: i64,
) -> Result<()> {
    match &job.change {
        Change::Nothing => Ok(()),
        Change::Users(writes) => {
            write_users(
                backend,
                tx,
                &job.org,
                writes.iter().map(UserWrite::as_ref).collect(),
                now,
            )
            .await?;
            Ok(())
        }
    }
}

/// Append the group's log rows to each configuration's run for this hour (one run per SCIM
/// configuration per clock hour with activity, SPEC §6) and add up its counts.
async fn record_activities(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    jobs: &[&Job],
    now: i64,
) -> Result<()> {
    let hour = activity_hour(now);
    for ((org, config), jobs) in by_config(jobs) {
        // Concurrent writers (other processes on PostgreSQL) meet on the unique index.
        query(
            backend,
            INSERT_ACTIVITY_RUN,
            vec![
                new_id().into(),
                org.into(),
                config.into(),
                RunStatus::Success.code().into(),
                now.into(),
                hour.into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        let run = query(
            backend,
            SELECT_ACTIVITY_RUN,
            vec![config.into(), hour.into(), org.into()],
        )
        .fetch_one(&mut **tx)
        .await?;
        let run_id = RunId::new(get::<String>(&run, "id")?);
        let delta = counts_of(&jobs);
        // The counts first: updating the run's row locks it, so a writer of another node
        // adding to the same run waits here until this transaction ends, and then reads the
        // log rows it wrote. Reading the last row first, both took the same numbers and the
        // second failed on the log's primary key.
        let n = |v: u64| Arg::from(i64::try_from(v).unwrap_or(0));
        query(
            backend,
            ADD_TO_RUN,
            vec![
                now.into(),
                n(delta.created),
                n(delta.updated),
                n(delta.deactivated),
                n(delta.reactivated),
                n(delta.unchanged),
                n(delta.skipped),
                n(delta.failed),
                n(delta.warnings),
                RunStatus::NeedsAttention.code().into(),
                RunStatus::Success.code().into(),
                run_id.as_str().into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        let seq = query(backend, LAST_LOG_SEQ, vec![run_id.as_str().into()])
            .fetch_one(&mut **tx)
            .await?;
        let mut seq: i64 = get(&seq, "n")?;
        for job in &jobs {
            seq += 1;
            let log = &job.log;
            query(
                backend,
                INSERT_LOG_ROW,
                vec![
                    run_id.as_str().into(),
                    seq.into(),
                    log.external_id.as_str().into(),
                    log.username.as_str().into(),
                    log.action.label().into(),
                    log.error_type_codes().into_owned().into(),
                    log.message.as_str().into(),
                    log.additional_data.as_str().into(),
                    log.changed_fields.as_str().into(),
                ],
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// What a configuration's writes add to its activity run's counts.
fn counts_of(jobs: &[&Job]) -> Counts {
    let mut delta = Counts::default();
    for job in jobs {
        delta.add(job.action, job.warning);
    }
    delta
}

/// The same group commit on SQLite through rusqlite: prepared statements on one connection
/// kept for the life of the store, instead of a sqlx worker-thread round trip and an `Any`
/// conversion per statement (about a dozen per write). sqlx's write connection is held for
/// each group, so the process's other writers wait for it as they wait for each other.
mod sqlite {
    use rusqlite::{Connection, params};

    use super::*;
    use crate::failed;
    use crate::sqlite_direct::blocking;
    use crate::sqlite_direct::write_users_direct;

    pub(super) async fn writer(
        db: Db,
        mut conn: Connection,
        clock: Arc<dyn Clock>,
        mut receiver: mpsc::Receiver<Queued>,
    ) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
            let now = clock.now().timestamp_millis();
            let outcome = match db.write.acquire().await {
                Ok(_writer) => blocking(|| {
                    let jobs: Vec<&Job> = group.iter().map(|q| &q.job).collect();
                    match commit_group(&mut conn, &jobs, now, false) {
                        Ok(Some(results)) => Ok(results),
                        Ok(None) => {
                            commit_group(&mut conn, &jobs, now, true).map(Option::unwrap_or_default)
                        }
                        Err(e) => Err(e),
                    }
                }),
                Err(e) => Err(e.into()),
            };
            answer(&mut group, outcome, now);
        }
    }

    fn commit_group(
        conn: &mut Connection,
        jobs: &[&Job],
        now: i64,
        isolate: bool,
    ) -> Result<Option<Vec<Result<()>>>> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed)?;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            if isolate {
                tx.execute_batch("SAVEPOINT scim_write").map_err(failed)?;
            }
            match apply(&tx, job, now) {
                Ok(()) => {
                    if isolate {
                        tx.execute_batch("RELEASE SAVEPOINT scim_write")
                            .map_err(failed)?;
                    }
                    results.push(Ok(()));
                }
                Err(e) if is_retryable(&e) && isolate => {
                    tx.execute_batch(
                        "ROLLBACK TO SAVEPOINT scim_write; RELEASE SAVEPOINT scim_write",
                    )
                    .map_err(failed)?;
                    results.push(Err(e));
                }
                Err(e) if is_retryable(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        record_activities(&tx, &logged(jobs, &results), now)?;
        tx.commit().map_err(failed)?;
        Ok(Some(results))
    }

    fn apply(conn: &Connection, job: &Job, now: i64) -> Result<()> {
        let org = job.org.as_str();
        match &job.change {
            Change::Nothing => Ok(()),
            Change::Users(writes) => {
                write_users_direct(conn, org, || writes.iter().map(UserWrite::as_ref), now)
            }
        }
    }

    fn record_activities(conn: &Connection, jobs: &[&Job], now: i64) -> Result<()> {
        let hour = activity_hour(now);
        for ((org, config), jobs) in by_config(jobs) {
            conn.prepare_cached(INSERT_ACTIVITY_RUN)
                .map_err(failed)?
                .execute(params![
                    new_id(),
                    org,
                    config,
                    RunStatus::Success.code(),
                    now,
                    hour
                ])
                .map_err(failed)?;
            let run: String = conn
                .prepare_cached(SELECT_ACTIVITY_RUN)
                .map_err(failed)?
                .query_row(params![config, hour, org], |r| r.get(0))
                .map_err(failed)?;
            // The counts first, as on PostgreSQL (there the update locks the run's row).
            let delta = counts_of(&jobs);
            let n = |v: u64| i64::try_from(v).unwrap_or(0);
            conn.prepare_cached(ADD_TO_RUN)
                .map_err(failed)?
                .execute(params![
                    now,
                    n(delta.created),
                    n(delta.updated),
                    n(delta.deactivated),
                    n(delta.reactivated),
                    n(delta.unchanged),
                    n(delta.skipped),
                    n(delta.failed),
                    n(delta.warnings),
                    RunStatus::NeedsAttention.code(),
                    RunStatus::Success.code(),
                    run,
                ])
                .map_err(failed)?;
            let mut seq: i64 = conn
                .prepare_cached(LAST_LOG_SEQ)
                .map_err(failed)?
                .query_row(params![run], |r| r.get(0))
                .map_err(failed)?;
            let mut insert = conn.prepare_cached(INSERT_LOG_ROW).map_err(failed)?;
            for job in &jobs {
                seq += 1;
                let log = &job.log;
                insert
                    .execute(params![
                        run,
                        seq,
                        log.external_id,
                        log.username,
                        log.action.label(),
                        log.error_type_codes(),
                        log.message,
                        log.additional_data,
                        log.changed_fields,
                    ])
                    .map_err(failed)?;
            }
        }
        Ok(())
    }
}
