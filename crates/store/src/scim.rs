//! What the SCIM service provider needs from storage: users with their timestamps (for
//! `meta`), indexed lookups for the filters identity providers send, stable pages, and the
//! hourly activity runs that record every write (SPEC §6, §7).

use chrono::{DateTime, Utc};
use rollcall_domain::plan::Plan;
use rollcall_domain::{Action, ConfigId, LogRow, StoredUser, UserId};

use crate::db::{get, query, time};
use crate::scim_writes::{Change, Committed, Job, UserWrite};
use crate::sqlite_reads::PointReads;
use crate::user_columns::{USER_COLUMNS, UserColumns, question_marks, user_from_row};
use crate::users::by_unique_key_sql;
use crate::{OrgStore, Result};

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
    /// Every attribute SCIM looks up through an index.
    pub const ALL: [IndexedColumn; 5] = [
        IndexedColumn::Id,
        IndexedColumn::UserName,
        IndexedColumn::ExternalId,
        IndexedColumn::Email,
        IndexedColumn::EmployeeId,
    ];

    /// The stored column, whose unique index (or primary key) answers the lookup.
    pub(crate) fn column(self) -> &'static str {
        match self {
            IndexedColumn::Id => "id",
            IndexedColumn::UserName => "username_norm",
            IndexedColumn::ExternalId => "external_id",
            IndexedColumn::Email => "email_norm",
            IndexedColumn::EmployeeId => "employee_id",
        }
    }

    fn column_and_value(self, value: &str) -> (&'static str, String) {
        let value = match self {
            IndexedColumn::Id | IndexedColumn::ExternalId | IndexedColumn::EmployeeId => {
                value.to_owned()
            }
            IndexedColumn::UserName => value.to_lowercase(),
            IndexedColumn::Email => value.to_ascii_lowercase(),
        };
        (self.column(), value)
    }
}

fn user_row(row: &impl UserColumns) -> Result<UserRow> {
    Ok(UserRow {
        user: user_from_row(row)?,
        created_at: time(row.int("created_at")?),
        updated_at: time(row.int("updated_at")?),
    })
}

/// The user holding a unique key if SCIM can see it, on the direct SQLite path.
fn fast_user(fast: &PointReads, org: &str, column: &str, value: &str) -> Result<Option<UserRow>> {
    let sql = crate::sqlite_reads::numbered(&by_unique_key_sql(column));
    let mut found = None;
    fast.for_each_row(&sql, [org, value], |row| {
        found = Some(user_row(row)?);
        Ok(())
    })?;
    Ok(found.filter(visible))
}

/// Whether SCIM can see the user (one deleted through SCIM answers 404).
fn visible(row: &UserRow) -> bool {
    !row.user.scim_deleted
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
        self.scim_by_unique_key(IndexedColumn::Id.column(), id.as_str())
            .await
    }

    /// Users SCIM can see whose indexed attribute equals `value` (at most one: each of these
    /// attributes is unique in the organisation).
    pub async fn scim_lookup(&self, column: IndexedColumn, value: &str) -> Result<Vec<UserRow>> {
        let (column, value) = column.column_and_value(value);
        Ok(self
            .scim_by_unique_key(column, &value)
            .await?
            .into_iter()
            .collect())
    }

    async fn scim_by_unique_key(&self, column: &str, value: &str) -> Result<Option<UserRow>> {
        if let Some(fast) = &self.store.point_reads {
            return fast_user(fast, self.org.as_str(), column, value);
        }
        let row = query(
            self.store.db.backend,
            by_unique_key_sql(column),
            vec![self.org.as_str().into(), value.into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        Ok(row.as_ref().map(user_row).transpose()?.filter(visible))
    }

    /// One page of the users SCIM can see, in a stable order, and how many there are.
    pub async fn scim_page(&self, offset: u64, limit: u64) -> Result<(Vec<UserRow>, u64)> {
        if let (Some(fast), Some(order)) = (&self.store.point_reads, &self.store.page_order) {
            // Reading the order after a change takes milliseconds: off the async workers.
            let ids = crate::sqlite_direct::blocking(|| order.of(self.org.as_str()))?;
            let from = usize::try_from(offset).unwrap_or(usize::MAX);
            let to = from.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX));
            let page: Vec<&str> = ids.range(from, to).collect();
            let mut rows = Vec::with_capacity(page.len());
            if !page.is_empty() {
                // By primary key (`+` keeps SQLite from walking the organisation's page index
                // instead); a user deleted since the order was read is left out.
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE +org_id = ? AND +scim_deleted = 0 AND id IN ({})",
                    question_marks(page.len())
                );
                fast.for_each_row(
                    &sql,
                    std::iter::once(self.org.as_str()).chain(page.iter().copied()),
                    |row| {
                        rows.push(user_row(row)?);
                        Ok(())
                    },
                )?;
                let position: std::collections::HashMap<&str, usize> =
                    page.iter().enumerate().map(|(i, id)| (*id, i)).collect();
                rows.sort_by_key(|r: &UserRow| position.get(r.user.id.as_str()).copied());
            }
            return Ok((rows, ids.len() as u64));
        }
        let count = query(
            self.store.db.backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND scim_deleted = 0",
            vec![self.org.as_str().into()],
        )
        .fetch_one(&self.store.db.read)
        .await?;
        let total = u64::try_from(get::<i64>(&count, "n")?).unwrap_or(0);
        // The offset is walked in the page index alone (it holds `id`); only the page's own
        // rows are read from the table, by primary key (the subquery scopes the organisation).
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id IN \
                 (SELECT id FROM users WHERE org_id = $1 AND scim_deleted = 0 \
                  ORDER BY created_at, id LIMIT $2 OFFSET $3) \
                 ORDER BY created_at, id"
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
    /// in one transaction (shared with the requests that arrive at the same time): when this
    /// returns, the change and its log survive a crash. Returns the time recorded as the
    /// written users' `updated_at`.
    /// `context` holds the users the plan was made from (its context's).
    pub async fn finish_scim(
        &self,
        plan: Option<&Plan>,
        context: &[StoredUser],
        activity: Activity<'_>,
    ) -> Result<DateTime<Utc>> {
        let writes = plan
            .map(|plan| {
                plan.writes()
                    .map(|w| UserWrite {
                        user: w.user.clone(),
                        expected_version: w.expected_version,
                        before: w.expected_version.and_then(|version| {
                            context
                                .iter()
                                .find(|u| u.id == w.user.id && u.version == version)
                                .cloned()
                        }),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let committed = self.submit(Change::Users(writes), activity).await?;
        Ok(time(committed.at))
    }

    /// Record a request that changed nothing (a refused write) in the hour's activity run.
    pub async fn record_scim_failure(&self, activity: Activity<'_>) -> Result<()> {
        self.submit(Change::Nothing, activity).await.map(|_| ())
    }

    async fn submit(&self, change: Change, activity: Activity<'_>) -> Result<Committed> {
        let job = Job {
            org: self.org.clone(),
            config: activity.config.clone(),
            change,
            log: activity.log,
            action: activity.action,
            warning: activity.warning,
        };
        self.store.scim_writes.submit(job).await
    }
}
