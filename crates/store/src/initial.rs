//! The first file run of an organisation that has no users yet, applied chunk by chunk in one
//! SQLite transaction (the planning side is `rollcall_sync::initial`).
//!
//! A million-row first sync planned as one batch held every record, every planned user and
//! every log row at once (gigabytes). With no stored user, a chunk's plan depends on the rest
//! of the file only through managers named by later rows and keys repeated in later rows;
//! the caller checks both, so each chunk can be planned and written, then dropped. The
//! transaction is `BEGIN IMMEDIATE` on a connection of its own, and sqlx's write connection is
//! held beside it, so nothing else writes meanwhile; dropping the run without
//! [`InitialRun::finish`] rolls every chunk back.

use std::collections::HashSet;

use rollcall_domain::plan::Plan;
use rollcall_domain::values::ExternalId;
use rollcall_domain::{Counts, LogRow, RunId, RunStatus, StoredUser, UserId};
use rusqlite::{Connection, params};

use crate::sqlite_direct::{
    DirectSqlite, blocking, foreign_keys_on, insert_logs, write_users_direct,
};
use crate::{OrgStore, Result, StoreError, failed};

/// A run being applied chunk by chunk. Blocking: drive it off the async workers.
pub struct InitialRun {
    conn: Connection,
    /// Every other writer of this process waits for this connection.
    _writer: sqlx::pool::PoolConnection<sqlx::Any>,
    org: String,
    run: String,
    /// When the run's users are written (one time for all of them, as for a run applied at
    /// once).
    now: i64,
    clock: std::sync::Arc<dyn crate::Clock>,
    /// The number of the next log row.
    seq: i64,
    /// Whether users of other organisations exist (emails and mobiles are unique globally).
    other_orgs: bool,
    finished: bool,
}

impl OrgStore {
    /// Begin applying `run` chunk by chunk, if this organisation has no users (checked inside
    /// the transaction) and the database is SQLite; `None` otherwise, with nothing changed.
    pub async fn begin_initial_run(&self, run: &RunId) -> Result<Option<InitialRun>> {
        let Some(bulk) = self.store.direct.clone() else {
            return Ok(None);
        };
        let writer = self.store.db.write.acquire().await?;
        let (org, run, clock) = (
            self.org.as_str().to_owned(),
            run.as_str().to_owned(),
            self.store.clock.clone(),
        );
        blocking(move || begin(&bulk, writer, org, run, clock))
    }
}

fn begin(
    bulk: &DirectSqlite,
    writer: sqlx::pool::PoolConnection<sqlx::Any>,
    org: String,
    run: String,
    clock: std::sync::Arc<dyn crate::Clock>,
) -> Result<Option<InitialRun>> {
    let conn = bulk.open(true)?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
    let mut initial = InitialRun {
        conn,
        _writer: writer,
        org,
        run,
        now: clock.now().timestamp_millis(),
        clock,
        seq: 0,
        other_orgs: false,
        finished: false,
    };
    let held = initial
        .conn
        .execute(
            "UPDATE sync_runs SET status = status WHERE id = ?1 AND org_id = ?2 AND status = 'in_progress'",
            params![initial.run, initial.org],
        )
        .map_err(failed)?;
    if held != 1 {
        return Err(StoreError::NotFound(format!(
            "run {} in progress",
            initial.run
        )));
    }
    let exists = |sql: &str| -> Result<bool> {
        initial
            .conn
            .prepare(sql)
            .and_then(|mut s| s.exists([&initial.org]))
            .map_err(failed)
    };
    if exists("SELECT 1 FROM users WHERE org_id = ?1 LIMIT 1")? {
        return Ok(None);
    }
    initial.other_orgs = exists("SELECT 1 FROM users WHERE org_id <> ?1 LIMIT 1")?;
    Ok(Some(initial))
}

impl InitialRun {
    /// The users this run wrote that hold these external IDs, with their manager chains, as
    /// far as a plan needs them to name managers and find reporting loops: their id,
    /// external ID and manager only (no record of the chunk matches them by any other key:
    /// the caller checks that no key repeats).
    pub fn users_by_external_id(&self, external_ids: Vec<String>) -> Result<Vec<StoredUser>> {
        let mut found: Vec<StoredUser> = Vec::with_capacity(external_ids.len());
        let mut ids: HashSet<String> = HashSet::with_capacity(external_ids.len());
        let mut by_external = self
            .conn
            .prepare_cached(
                "SELECT id, external_id, manager_id FROM users WHERE org_id = ?1 AND external_id = ?2",
            )
            .map_err(failed)?;
        for ext in &external_ids {
            if let Some(user) = slim_user(&mut by_external, params![self.org, ext])?
                && ids.insert(user.id.as_str().to_owned())
            {
                found.push(user);
            }
        }
        let mut by_id = self
            .conn
            .prepare_cached(
                "SELECT id, external_id, manager_id FROM users WHERE org_id = ?1 AND id = ?2",
            )
            .map_err(failed)?;
        crate::sqlite_direct::add_manager_chains(&mut found, &mut ids, 0, |id| {
            slim_user(&mut by_id, params![self.org, id])
        })?;
        Ok(found)
    }

    /// Whether users of other organisations exist (else [`InitialRun::foreign`] finds none).
    pub fn other_orgs(&self) -> bool {
        self.other_orgs
    }

    /// Which of these normalised emails (`mobiles == false`) or E.164 mobile numbers users
    /// of other organisations hold.
    pub fn foreign(&self, mobiles: bool, values: &[&str]) -> Result<HashSet<String>> {
        if !self.other_orgs {
            return Ok(HashSet::new());
        }
        let column = if mobiles {
            "phone_mobile_e164"
        } else {
            "email_norm"
        };
        foreign_keys_on(&self.conn, &self.org, column, values)
    }

    /// Write a chunk's plan and its log rows; returns the number of its first log row (the
    /// record `i` of the plan has log row `first + i`).
    pub fn apply(&mut self, plan: &Plan) -> Result<i64> {
        let first = self.seq;
        write_users_direct(
            &self.conn,
            &self.org,
            || plan.writes().map(crate::users::UserWriteRef::from),
            self.now,
        )?;
        insert_logs(&self.conn, &self.run, &mut self.seq, plan.log_rows())?;
        Ok(first)
    }

    /// The manager of a user of this organisation.
    pub fn manager_of(&self, user: &str) -> Result<Option<UserId>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT manager_id FROM users WHERE id = ?1 AND org_id = ?2")
            .map_err(failed)?;
        let mut rows = statement.query(params![user, self.org]).map_err(failed)?;
        match rows.next().map_err(failed)? {
            Some(row) => Ok(row
                .get::<_, Option<String>>(0)
                .map_err(failed)?
                .map(UserId::new)),
            None => Ok(None),
        }
    }

    /// Set the manager of a user this run created (its version stays that of its creation).
    pub fn set_manager(&mut self, user: &UserId, manager: &UserId) -> Result<()> {
        let mut statement = self
            .conn
            .prepare_cached("UPDATE users SET manager_id = ?1 WHERE id = ?2 AND org_id = ?3")
            .map_err(failed)?;
        let n = statement
            .execute(params![manager.as_str(), user.as_str(), self.org])
            .map_err(failed)?;
        if n != 1 {
            return Err(StoreError::StaleWrite);
        }
        Ok(())
    }

    /// Replace log row `seq` of this run.
    pub fn update_log(&mut self, seq: i64, row: &LogRow) -> Result<()> {
        let mut statement = self
            .conn
            .prepare_cached(
                "UPDATE sync_log_rows SET action = ?1, error_type = ?2, message = ?3, additional_data = ?4, \
                 changed_fields = ?5 WHERE run_id = ?6 AND seq = ?7",
            )
            .map_err(failed)?;
        statement
            .execute(params![
                row.action.label(),
                row.error_type_codes(),
                row.message,
                row.additional_data,
                row.changed_fields,
                self.run,
                seq
            ])
            .map_err(failed)?;
        Ok(())
    }

    /// End the run with its status, counts and file hash, and commit everything.
    pub fn finish(mut self, status: RunStatus, counts: &Counts, sha256: &str) -> Result<()> {
        crate::sqlite_direct::end_run(
            &self.conn,
            &self.org,
            &self.run,
            status,
            self.clock.now().timestamp_millis(),
            counts,
            Some(sha256),
        )?;
        self.conn.execute_batch("COMMIT").map_err(failed)?;
        self.finished = true;
        crate::sqlite_direct::truncate_log(&self.conn);
        Ok(())
    }
}

impl Drop for InitialRun {
    fn drop(&mut self) {
        if !self.finished {
            // Nothing of an unfinished run is kept.
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(run = %self.run, error = %e, "rolling back a chunked run failed");
            }
        }
    }
}

/// A user read as `id, external_id, manager_id`, its other fields empty.
fn slim_user(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Option<StoredUser>> {
    let mut rows = statement.query(params).map_err(failed)?;
    let Some(row) = rows.next().map_err(failed)? else {
        return Ok(None);
    };
    let id: String = row.get(0).map_err(failed)?;
    let external_id: Option<String> = row.get(1).map_err(failed)?;
    let manager: Option<String> = row.get(2).map_err(failed)?;
    let mut user = StoredUser::new(UserId::new(id));
    user.profile.external_id = match external_id {
        Some(ext) => Some(ExternalId::parse(&ext).map_err(|_| StoreError::Database)?),
        None => None,
    };
    user.manager_id = manager.map(UserId::new);
    Ok(Some(user))
}
