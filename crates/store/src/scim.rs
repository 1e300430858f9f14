//! What the SCIM service provider needs from storage: users with their timestamps (for
//! `meta`), indexed lookups for the filters identity providers send, stable pages, SCIM
//! deletes, and the hourly activity runs that record every write (SPEC §6, §7).

use chrono::{DateTime, TimeZone, Utc};
use rollcall_domain::plan::Plan;
use rollcall_domain::{Action, ConfigId, Counts, LogRow, RunId, RunStatus, StoredUser, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::db::{Arg, get, query};
use crate::users::{USER_COLUMNS, insert_users, update_user, user_from_row};
use crate::{OrgStore, Result, StoreError, new_id};

/// A user with the timestamps SCIM reports in `meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub user: StoredUser,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The attributes a SCIM filter can look up through an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexedColumn {
    Id,
    /// Compared case-insensitively.
    UserName,
    ExternalId,
    /// Compared case-insensitively.
    Email,
    EmployeeId,
}

impl IndexedColumn {
    fn column_and_value(self, value: &str) -> (&'static str, String) {
        match self {
            IndexedColumn::Id => ("id", value.to_owned()),
            IndexedColumn::UserName => ("username_norm", value.to_lowercase()),
            IndexedColumn::ExternalId => ("external_id", value.to_owned()),
            IndexedColumn::Email => ("email_norm", value.to_ascii_lowercase()),
            IndexedColumn::EmployeeId => ("employee_id", value.to_owned()),
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn user_row(row: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        user: user_from_row(row)?,
        created_at: time(get(row, "created_at")?),
        updated_at: time(get(row, "updated_at")?),
    })
}

/// What a SCIM write records in the hour's activity run.
pub struct Activity<'a> {
    pub config: &'a ConfigId,
    /// The request's outcome as a log row (its `row` is ignored: rows are numbered in order).
    pub log: LogRow,
    pub action: Action,
    pub warning: bool,
}

impl OrgStore {
    /// A user SCIM can see (not deleted through SCIM).
    pub async fn scim_user(&self, id: &UserId) -> Result<Option<UserRow>> {
        let row = query(
            self.store.db.backend,
            format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2 AND scim_deleted = 0"),
            vec![self.org.as_str().into(), id.as_str().into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// Users SCIM can see whose indexed attribute equals `value`.
    pub async fn scim_lookup(&self, column: IndexedColumn, value: &str) -> Result<Vec<UserRow>> {
        let (column, value) = column.column_and_value(value);
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND {column} = $2 AND scim_deleted = 0 \
                 ORDER BY created_at, id"
            ),
            vec![self.org.as_str().into(), value.into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(user_row).collect()
    }

    /// One page of the users SCIM can see, in a stable order, and how many there are.
    pub async fn scim_page(&self, offset: u64, limit: u64) -> Result<(Vec<UserRow>, u64)> {
        let count = query(
            self.store.db.backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND scim_deleted = 0",
            vec![self.org.as_str().into()],
        )
        .fetch_one(&self.store.db.read)
        .await?;
        let total = u64::try_from(get::<i64>(&count, "n")?).unwrap_or(0);
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0 \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            ),
            vec![
                self.org.as_str().into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
                i64::try_from(offset).unwrap_or(i64::MAX).into(),
            ],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        Ok((rows.iter().map(user_row).collect::<Result<_>>()?, total))
    }

    /// Every user SCIM can see, in page order: for filters no index answers.
    pub async fn scim_all(&self) -> Result<Vec<UserRow>> {
        let rows = query(
            self.store.db.backend,
            format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0 ORDER BY created_at, id"),
            vec![self.org.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(user_row).collect()
    }

    /// Apply a SCIM request's plan (a batch of one) and record it in the hour's activity run,
    /// in one transaction: when this returns, the change and its log survive a crash.
    pub async fn finish_scim(&self, plan: Option<&Plan>, activity: Activity<'_>) -> Result<()> {
        let backend = self.store.db.backend;
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        if let Some(plan) = plan {
            let mut new_users = Vec::new();
            for write in plan.writes() {
                match write.expected_version {
                    None => new_users.push(&write.user),
                    Some(version) => {
                        update_user(backend, &mut tx, &self.org, &write.user, version, now).await?
                    }
                }
            }
            insert_users(backend, &mut tx, &self.org, &new_users, now).await?;
        }
        self.record_activity(&mut tx, activity, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// SCIM DELETE: deactivate the user and hide it from SCIM, keeping it and its history.
    /// Refused (`Conflict`) for a user another configuration manages.
    pub async fn scim_delete(&self, id: &UserId, activity: Activity<'_>) -> Result<bool> {
        let backend = self.store.db.backend;
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        let row = query(
            backend,
            "SELECT managed_by FROM users WHERE org_id = $1 AND id = $2 AND scim_deleted = 0",
            vec![self.org.as_str().into(), id.as_str().into()],
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let managed_by: Option<String> = get(&row, "managed_by")?;
        if managed_by
            .as_deref()
            .is_some_and(|m| m != activity.config.as_str())
        {
            return Err(StoreError::Conflict(
                "managed by another configuration".into(),
            ));
        }
        query(
            backend,
            "UPDATE users SET scim_deleted = 1, active = 0, managed_by = $1, version = version + 1, updated_at = $2 \
             WHERE org_id = $3 AND id = $4",
            vec![activity.config.as_str().into(), now.into(), self.org.as_str().into(), id.as_str().into()],
        )
        .execute(&mut *tx)
        .await?;
        self.record_activity(&mut tx, activity, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Record a request that changed nothing (a refused write) in the hour's activity run.
    pub async fn record_scim_failure(&self, activity: Activity<'_>) -> Result<()> {
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        self.record_activity(&mut tx, activity, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_activity(
        &self,
        tx: &mut Transaction<'static, Any>,
        activity: Activity<'_>,
        now: i64,
    ) -> Result<()> {
        let backend = self.store.db.backend;
        let hour = now - now.rem_euclid(3_600_000);
        // One run per configuration and hour; concurrent writers meet on the unique index.
        query(
            backend,
            "INSERT INTO sync_runs (id, org_id, config_id, connector, trigger_kind, status, dry_run, queued_at, \
             started_at, ended_at, activity_hour) VALUES ($1, $2, $3, 'SCIM', 'scim', $4, 0, $5, $5, $5, $6) \
             ON CONFLICT (config_id, activity_hour) DO NOTHING",
            vec![
                new_id().into(),
                self.org.as_str().into(),
                activity.config.as_str().into(),
                RunStatus::Success.code().into(),
                now.into(),
                hour.into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        let run = query(
            backend,
            "SELECT id FROM sync_runs WHERE config_id = $1 AND activity_hour = $2 AND org_id = $3",
            vec![
                activity.config.as_str().into(),
                hour.into(),
                self.org.as_str().into(),
            ],
        )
        .fetch_one(&mut **tx)
        .await?;
        let run_id = RunId::new(get::<String>(&run, "id")?);
        let seq = query(
            backend,
            "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM sync_log_rows WHERE run_id = $1",
            vec![run_id.as_str().into()],
        )
        .fetch_one(&mut **tx)
        .await?;
        let seq: i64 = get(&seq, "n")?;
        let log = &activity.log;
        query(
            backend,
            "INSERT INTO sync_log_rows (run_id, seq, row_num, external_id, username, action, error_type, message, \
             additional_data, changed_fields) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                run_id.as_str().into(),
                seq.into(),
                log.external_id.as_str().into(),
                log.username.as_str().into(),
                log.action.as_str().into(),
                log.error_type.as_str().into(),
                log.message.as_str().into(),
                log.additional_data.as_str().into(),
                log.changed_fields.as_str().into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        let mut delta = Counts::default();
        delta.add(activity.action, activity.warning);
        let n = |v: u64| Arg::from(i64::try_from(v).unwrap_or(0));
        query(
            backend,
            "UPDATE sync_runs SET ended_at = $1, created = created + $2, updated = updated + $3, \
             deactivated = deactivated + $4, reactivated = reactivated + $5, unchanged = unchanged + $6, \
             skipped = skipped + $7, warnings = warnings + $8 WHERE id = $9",
            vec![
                now.into(),
                n(delta.created),
                n(delta.updated),
                n(delta.deactivated),
                n(delta.reactivated),
                n(delta.unchanged),
                n(delta.skipped),
                n(delta.warnings),
                run_id.as_str().into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        query(
            backend,
            "UPDATE sync_runs SET status = CASE WHEN skipped + warnings > 0 THEN $1 ELSE $2 END WHERE id = $3",
            vec![
                RunStatus::NeedsAttention.code().into(),
                RunStatus::Success.code().into(),
                run_id.as_str().into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
