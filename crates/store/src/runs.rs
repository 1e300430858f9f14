//! Sync runs and their logs, and the atomic apply of a plan.

use chrono::{DateTime, Utc};
use rollcall_domain::config::DeactivationThreshold;
use rollcall_domain::mapping::Mapping;
use rollcall_domain::plan::Plan;
use rollcall_domain::{Action, ConfigId, Counts, LogRow, OrgId, RunId, RunStatus, Trigger};
use sqlx::any::AnyRow;

use crate::audit::AuditAction;
use crate::db::{Arg, flag, get, placeholders, query, time};
use crate::operator::{mapping_from_json, mapping_to_json};
use crate::statistics::{self, Table};
use crate::users::{UserWriteRef, write_users};
use crate::{OrgStore, Result, StoreError, new_id};

/// Log rows per multi-row INSERT (10 columns each).
const LOG_CHUNK: usize = 500;

/// A run to start.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub config_id: ConfigId,
    /// `SFTP Sync`, `Workday`, `Google Workspace`, `SCIM`.
    pub connector: String,
    /// What started it: `cli`, `sftp`, `schedule`, `scim`, `admin`.
    pub trigger: Trigger,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    pub dry_run: bool,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub id: RunId,
    pub org_id: OrgId,
    pub config_id: ConfigId,
    pub config_name: String,
    pub connector: String,
    pub trigger: Trigger,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    pub status: RunStatus,
    pub dry_run: bool,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// How many times a worker has taken the run from the queue, this time included.
    pub attempts: u32,
    /// The deactivation threshold that blocked the run or, for a dry run, that a real run
    /// would have hit (as configured then).
    pub threshold_hit: Option<DeactivationThreshold>,
    /// Who approved a run the threshold blocked (`operator via CLI`, an operator token's
    /// name) and when.
    pub approval: Option<Approval>,
    /// The SHA-256 of the mapping a file run read with ([`OrgStore::run_mapping`] gives it).
    pub mapping_digest: Option<String>,
}

/// Who approved a blocked run, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
}

impl RunRecord {
    /// How long the run worked: from its start, or from its approval for an approved run
    /// (the wait for approval is not work).
    pub fn duration(&self) -> Option<chrono::Duration> {
        let from = match &self.approval {
            Some(approval) => approval.at,
            None => self.started_at?,
        };
        Some((self.ended_at? - from).max(chrono::Duration::zero()))
    }
}

/// How a run ends.
pub enum Finish<'a> {
    /// Apply the plan's writes and record its log, all in one transaction.
    Apply(&'a Plan),
    /// Record the plan's log and the given status without applying anything (dry runs, runs
    /// above the deactivation threshold).
    Report(&'a Plan, RunStatus),
    /// The data could not be loaded: record the error log.
    DataLoadFailed(&'a [LogRow]),
}

/// A run that starts now, In Progress ([`OrgStore::run_args`]).
pub(crate) const INSERT_RUN: &str = "INSERT INTO sync_runs (id, org_id, config_id, connector, trigger_kind, file_name, \
    file_sha256, status, dry_run, queued_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(crate) const RUN_COLUMNS: &str = "r.id, r.org_id, r.config_id, c.name AS config_name, r.connector, r.trigger_kind, r.file_name, \
    r.file_sha256, r.status, r.dry_run, r.queued_at, r.started_at, r.ended_at, r.created, r.updated, r.deactivated, \
    r.reactivated, r.unchanged, r.skipped, r.failed, r.warnings, r.ignored_inactive, r.attempts, r.threshold_hit, r.approved_by, r.approved_at, r.mapping_digest";

fn count(row: &AnyRow, column: &str) -> Result<u64> {
    Ok(u64::try_from(get::<i64>(row, column)?).unwrap_or(0))
}

pub(crate) fn run_from_row(row: &AnyRow) -> Result<RunRecord> {
    let status: String = get(row, "status")?;
    let trigger: String = get(row, "trigger_kind")?;
    Ok(RunRecord {
        id: RunId::new(get::<String>(row, "id")?),
        org_id: OrgId::new(get::<String>(row, "org_id")?),
        config_id: ConfigId::new(get::<String>(row, "config_id")?),
        config_name: get(row, "config_name")?,
        connector: get(row, "connector")?,
        trigger: Trigger::parse(&trigger).ok_or(StoreError::Database)?,
        file_name: get(row, "file_name")?,
        file_sha256: get(row, "file_sha256")?,
        status: RunStatus::from_code(&status).ok_or(StoreError::Database)?,
        dry_run: flag(row, "dry_run")?,
        queued_at: time(get(row, "queued_at")?),
        started_at: get::<Option<i64>>(row, "started_at")?.map(time),
        ended_at: get::<Option<i64>>(row, "ended_at")?.map(time),
        counts: Counts {
            created: count(row, "created")?,
            updated: count(row, "updated")?,
            deactivated: count(row, "deactivated")?,
            reactivated: count(row, "reactivated")?,
            unchanged: count(row, "unchanged")?,
            skipped: count(row, "skipped")?,
            ignored_inactive: count(row, "ignored_inactive")?,
            failed: count(row, "failed")?,
            warnings: count(row, "warnings")?,
        },
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        threshold_hit: get::<Option<String>>(row, "threshold_hit")?
            .and_then(|t| DeactivationThreshold::parse(&t).ok()),
        approval: match (
            get::<Option<String>>(row, "approved_by")?,
            get::<Option<i64>>(row, "approved_at")?,
        ) {
            (Some(by), Some(at)) => Some(Approval { by, at: time(at) }),
            _ => None,
        },
        mapping_digest: get(row, "mapping_digest")?,
    })
}

fn to_i64(n: u64) -> Arg {
    Arg::from(i64::try_from(n).unwrap_or(i64::MAX))
}

impl crate::Store {
    /// The organisation a run belongs to (for the operator, who may name a run by id alone).
    pub async fn run_org(&self, run: &RunId) -> Result<OrgId> {
        let row = query(
            self.db.backend,
            "SELECT org_id FROM sync_runs WHERE id = $1",
            vec![run.as_str().into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        match row {
            Some(row) => Ok(OrgId::new(get::<String>(&row, "org_id")?)),
            None => Err(StoreError::NotFound(format!("run {run}"))),
        }
    }
}

impl OrgStore {
    /// Record the mapping a run reads with; each distinct mapping is kept once, under the
    /// SHA-256 of its stored form. Returns that digest.
    pub async fn set_run_mapping(&self, run: &RunId, mapping: &Mapping) -> Result<String> {
        use sha2::Digest;
        let stored = mapping_to_json(mapping);
        let digest = hex::encode(sha2::Sha256::digest(stored.as_bytes()));
        let backend = self.store.db.backend;
        let mut tx = self.store.db.write.begin().await?;
        query(
            backend,
            "INSERT INTO mappings (digest, mapping) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
            vec![digest.as_str().into(), stored.into()],
        )
        .execute(&mut *tx)
        .await?;
        query(
            backend,
            "UPDATE sync_runs SET mapping_digest = $1 WHERE id = $2 AND org_id = $3",
            vec![
                digest.as_str().into(),
                run.as_str().into(),
                self.org.as_str().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(digest)
    }

    /// The mapping a run read with, when it read a file.
    pub async fn run_mapping(&self, run: &RunId) -> Result<Option<Mapping>> {
        let row = query(
            self.store.db.backend,
            "SELECT m.mapping FROM sync_runs r JOIN mappings m ON m.digest = r.mapping_digest \
             WHERE r.id = $1 AND r.org_id = $2",
            vec![run.as_str().into(), self.org.as_str().into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        row.map(|row| mapping_from_json(&get::<String>(&row, "mapping")?))
            .transpose()
    }

    /// Give back a run taken for approval whose apply failed (storage error, crash of the
    /// request): it waits for approval again instead of staying In Progress.
    pub async fn release_approval(&self, run: &RunId) -> Result<()> {
        query(
            self.store.db.backend,
            "UPDATE sync_runs SET status = $1, approved_by = NULL, approved_at = NULL \
             WHERE id = $2 AND org_id = $3 AND status = $4",
            vec![
                RunStatus::AboveDeactivationThreshold.code().into(),
                run.as_str().into(),
                self.org.as_str().into(),
                RunStatus::InProgress.code().into(),
            ],
        )
        .execute(&self.store.db.write)
        .await?;
        Ok(())
    }

    /// Take a run blocked by the deactivation threshold for approval: it goes back to In
    /// Progress and its would-be log is cleared, so [`OrgStore::finish_run`] records what is
    /// applied. Who approved it and when are recorded in the same update, so an applied run
    /// always names its approver. Only one approval can take a run ([`StoreError::RunStatus`]
    /// for the others).
    pub async fn take_for_approval(&self, run: &RunId, approval: &Approval) -> Result<()> {
        let mut tx = self.store.db.write.begin().await?;
        let taken = query(
            self.store.db.backend,
            "UPDATE sync_runs SET status = $1, approved_by = $5, approved_at = $6 \
             WHERE id = $2 AND org_id = $3 AND status = $4",
            vec![
                RunStatus::InProgress.code().into(),
                run.as_str().into(),
                self.org.as_str().into(),
                RunStatus::AboveDeactivationThreshold.code().into(),
                approval.by.as_str().into(),
                approval.at.timestamp_millis().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            drop(tx);
            return Err(StoreError::RunStatus {
                found: self.run(run).await?.status,
                needed: "only a run blocked by the deactivation threshold can be approved",
            });
        }
        query(
            self.store.db.backend,
            "DELETE FROM sync_log_rows WHERE run_id = $1",
            vec![run.as_str().into()],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record the deactivation threshold a run ended above (blocked) or, for a dry run, that a
    /// real run would have hit.
    pub async fn record_threshold_hit(
        &self,
        run: &RunId,
        threshold: DeactivationThreshold,
    ) -> Result<()> {
        query(
            self.store.db.backend,
            "UPDATE sync_runs SET threshold_hit = $1 WHERE id = $2 AND org_id = $3",
            vec![
                threshold.to_string().into(),
                run.as_str().into(),
                self.org.as_str().into(),
            ],
        )
        .execute(&self.store.db.write)
        .await?;
        Ok(())
    }

    /// Record the hash of a run's file, known only once the file was read (a run planned chunk
    /// by chunk starts before). A hash recorded at upload is kept.
    pub async fn set_run_sha256(&self, run: &RunId, sha256: &str) -> Result<()> {
        query(
            self.store.db.backend,
            "UPDATE sync_runs SET file_sha256 = COALESCE(file_sha256, $1) WHERE id = $2 AND org_id = $3",
            vec![sha256.into(), run.as_str().into(), self.org.as_str().into()],
        )
        .execute(&self.store.db.write)
        .await?;
        Ok(())
    }

    /// The values of [`INSERT_RUN`] for a run `id` that starts at `now`.
    pub(crate) fn run_args(&self, id: &str, run: &NewRun, now: i64) -> Vec<Arg> {
        vec![
            id.into(),
            self.org.as_str().into(),
            run.config_id.as_str().into(),
            run.connector.as_str().into(),
            run.trigger.code().into(),
            run.file_name.clone().into(),
            run.file_sha256.clone().into(),
            RunStatus::InProgress.code().into(),
            run.dry_run.into(),
            now.into(),
            now.into(),
        ]
    }

    /// Record that a run starts now (In Progress) on an admin's behalf: when it is applied,
    /// each user it writes is audited as `action` by that admin.
    pub async fn start_admin_run(
        &self,
        run: &NewRun,
        admin_id: &str,
        action: AuditAction,
    ) -> Result<RunId> {
        let backend = self.store.db.backend;
        let id = new_id();
        let mut tx = self.store.db.write.begin().await?;
        query(
            backend,
            INSERT_RUN,
            self.run_args(&id, run, self.store.now_ms()),
        )
        .execute(&mut *tx)
        .await?;
        query(
            backend,
            "INSERT INTO admin_runs (run_id, admin_id, audit_action) VALUES ($1, $2, $3)",
            vec![id.as_str().into(), admin_id.into(), action.code().into()],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RunId::new(id))
    }

    /// Record a run that starts now (In Progress).
    pub async fn start_run(&self, run: &NewRun) -> Result<RunId> {
        let id = new_id();
        query(
            self.store.db.backend,
            INSERT_RUN,
            self.run_args(&id, run, self.store.now_ms()),
        )
        .execute(&self.store.db.write)
        .await?;
        Ok(RunId::new(id))
    }

    /// End a run: apply what it planned (or not), store its log and its final status, all in
    /// one transaction. A unique-index violation or a stale version aborts everything and is
    /// returned, so that the caller can plan again against what is now stored.
    pub async fn finish_run(&self, run: &RunId, finish: Finish<'_>) -> Result<RunRecord> {
        let now = self.store.now_ms();
        if let Some(bulk) = &self.store.direct {
            self.finish_run_bulk(bulk, run, finish, now).await?;
            return self.run(run).await;
        }
        let mut tx = self.store.db.write.begin().await?;
        // First take the run's row: of two workers that both think they hold a run (one whose
        // lease ran out), the second waits here and then finds it ended, before writing.
        let held = query(
            self.store.db.backend,
            "UPDATE sync_runs SET status = status WHERE id = $1 AND org_id = $2 AND status = $3",
            vec![
                run.as_str().into(),
                self.org.as_str().into(),
                RunStatus::InProgress.code().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("run {run} in progress")));
        }
        let mut users_written = 0;
        let (status, counts, logs): (RunStatus, Counts, Vec<LogRow>) = match finish {
            Finish::Apply(plan) => {
                users_written = write_users(
                    self.store.db.backend,
                    &mut tx,
                    &self.org,
                    plan.writes().map(UserWriteRef::from).collect(),
                    now,
                )
                .await?;
                crate::audit::audit_run(
                    self.store.db.backend,
                    &mut tx,
                    self.org.as_str(),
                    run,
                    plan,
                    now,
                )
                .await?;
                (
                    plan.counts.completed_status(),
                    plan.counts,
                    plan.log_rows().collect(),
                )
            }
            Finish::Report(plan, status) => (status, plan.counts, plan.log_rows().collect()),
            Finish::DataLoadFailed(rows) => {
                (RunStatus::DataLoadFailed, Counts::default(), rows.to_vec())
            }
        };

        for (n, chunk) in logs.chunks(LOG_CHUNK).enumerate() {
            let mut sql = String::from(
                "INSERT INTO sync_log_rows (run_id, seq, row_num, external_id, username, action, error_type, message, \
                 additional_data, changed_fields) VALUES ",
            );
            let mut args = Vec::with_capacity(chunk.len() * 10);
            for (i, log) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&placeholders(i * 10 + 1, 10));
                sql.push(')');
                args.push(run.as_str().into());
                args.push(to_i64((n * LOG_CHUNK + i) as u64));
                args.push(log.row.map(|r| i64::try_from(r).unwrap_or(i64::MAX)).into());
                args.push(log.external_id.as_str().into());
                args.push(log.username.as_str().into());
                args.push(log.action.label().into());
                args.push(log.error_type_codes().into_owned().into());
                args.push(log.message.as_str().into());
                args.push(log.additional_data.as_str().into());
                args.push(log.changed_fields.as_str().into());
            }
            query(self.store.db.backend, sql, args)
                .execute(&mut *tx)
                .await?;
        }

        let done = query(self.store.db.backend,
            "UPDATE sync_runs SET status = $1, ended_at = $2, created = $3, updated = $4, deactivated = $5, \
             reactivated = $6, unchanged = $7, skipped = $8, warnings = $9, failed = $10, \
             ignored_inactive = $14 WHERE id = $11 AND org_id = $12 AND status = $13",
            vec![
                status.code().into(),
                now.into(),
                to_i64(counts.created),
                to_i64(counts.updated),
                to_i64(counts.deactivated),
                to_i64(counts.reactivated),
                to_i64(counts.unchanged),
                to_i64(counts.skipped),
                to_i64(counts.warnings),
                to_i64(counts.failed),
                run.as_str().into(),
                self.org.as_str().into(),
                RunStatus::InProgress.code().into(),
                to_i64(counts.ignored_inactive),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            // Unknown, or no longer In Progress (cancelled, or queued again after its lease
            // ran out): nothing of this attempt is kept.
            return Err(StoreError::NotFound(format!("run {run} in progress")));
        }
        tx.commit().await?;
        statistics::refresh_after_write(
            &self.store.db,
            &[
                (Table::Users, users_written as u64),
                (Table::SyncLogRows, logs.len() as u64),
            ],
        )
        .await;
        self.run(run).await
    }

    /// One run of this organisation.
    pub async fn run(&self, id: &RunId) -> Result<RunRecord> {
        let row = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE r.org_id = $1 AND r.id = $2"
            ),
            vec![self.org.as_str().into(), id.as_str().into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        match row {
            Some(row) => run_from_row(&row),
            None => Err(StoreError::NotFound(format!("run {id}"))),
        }
    }

    /// The organisation's runs, newest first.
    pub async fn runs(&self, limit: u64) -> Result<Vec<RunRecord>> {
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE r.org_id = $1 ORDER BY r.queued_at DESC, r.id DESC LIMIT $2"
            ),
            vec![self.org.as_str().into(), to_i64(limit)],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The log rows of one of this organisation's runs, in order.
    pub async fn run_logs(&self, id: &RunId) -> Result<Vec<LogRow>> {
        // Through the run, so another organisation's run id finds nothing.
        let run = self.run(id).await?;
        let rows = query(self.store.db.backend,
            "SELECT row_num, external_id, username, action, error_type, message, additional_data, changed_fields \
             FROM sync_log_rows WHERE run_id = $1 ORDER BY seq",
            vec![run.id.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(log_row_from_row).collect()
    }
}

/// A log row as `SELECT row_num, external_id, username, action, error_type, message,
/// additional_data, changed_fields` reads it.
pub(crate) fn log_row_from_row(row: &AnyRow) -> Result<LogRow> {
    let (action, error_types): (String, String) = (get(row, "action")?, get(row, "error_type")?);
    Ok(LogRow {
        row: get::<Option<i64>>(row, "row_num")?.and_then(|r| u64::try_from(r).ok()),
        external_id: get(row, "external_id")?,
        username: get(row, "username")?,
        action: Action::from_label(&action).ok_or(StoreError::Database)?,
        error_types: LogRow::parse_error_types(&error_types).ok_or(StoreError::Database)?,
        message: get(row, "message")?,
        additional_data: get(row, "additional_data")?,
        changed_fields: get(row, "changed_fields")?,
    })
}
