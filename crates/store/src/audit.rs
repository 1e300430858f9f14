//! The audit trail of what admins changed by hand (`admin_audit`): their profile edits, and
//! each user written by a run an admin started (a Bulk Update), recorded in that run's own
//! transaction so that the change and its attribution commit together.

use std::borrow::Cow;

use rollcall_domain::plan::Write;
use rollcall_domain::plan::{Plan, PlannedRecord};
use rollcall_domain::{RunId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::{Any, Transaction};

use crate::db::{get, query};
use crate::failed;
use crate::users::{UserWriteRef, write_users};
use crate::{Backend, OrgStore, Result, StoreError};

/// What an admin did to a user, as the audit trail names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// Edited the user's profile in the admin panel.
    ProfileEdited,
    /// Updated the user through a Bulk Update file.
    BulkUpdate,
}

impl AuditAction {
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::ProfileEdited => "profile_edited",
            AuditAction::BulkUpdate => "bulk_update",
        }
    }
}

const INSERT_AUDIT: &str = "INSERT INTO admin_audit (id, org_id, admin_id, user_id, action, changed_fields, at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const SELECT_ADMIN_RUN: &str = "SELECT admin_id, audit_action FROM admin_runs WHERE run_id = $1";

/// The records of a plan that write a user: the user's id and the fields recorded for it.
fn audited(plan: &Plan) -> impl Iterator<Item = (&str, String)> {
    plan.records.iter().filter_map(|r: &PlannedRecord| {
        let write = r.write.as_ref()?;
        Some((write.user.id.as_str(), r.changed_fields.join(",")))
    })
}

impl OrgStore {
    /// Audit an admin's edit of one user in the caller's transaction.
    pub(crate) async fn audit_edit(
        &self,
        tx: &mut Transaction<'static, Any>,
        admin_id: &str,
        user_id: &str,
        changed_fields: &str,
        now: i64,
    ) -> Result<()> {
        query(
            self.store.db.backend,
            INSERT_AUDIT,
            vec![
                crate::new_id().into(),
                self.org.as_str().into(),
                admin_id.into(),
                user_id.into(),
                AuditAction::ProfileEdited.code().into(),
                changed_fields.into(),
                now.into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// When an admin started `run`, audit each user its plan writes, in the run's transaction.
pub(crate) async fn audit_run(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    org: &str,
    run: &RunId,
    plan: &Plan,
    now: i64,
) -> Result<()> {
    let Some(row) = query(backend, SELECT_ADMIN_RUN, vec![run.as_str().into()])
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(());
    };
    let admin: String = get(&row, "admin_id")?;
    let action: String = get(&row, "audit_action")?;
    for (user, fields) in audited(plan) {
        query(
            backend,
            INSERT_AUDIT,
            vec![
                crate::new_id().into(),
                org.into(),
                admin.as_str().into(),
                user.into(),
                action.as_str().into(),
                fields.into(),
                now.into(),
            ],
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// [`audit_run`] on the direct SQLite path.
pub(crate) fn audit_run_sqlite(
    tx: &Connection,
    org: &str,
    run: &str,
    plan: &Plan,
    now: i64,
) -> Result<()> {
    let started_by: Option<(String, String)> = tx
        .prepare_cached(SELECT_ADMIN_RUN)
        .map_err(failed)?
        .query_row(params![run], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(failed)?;
    let Some((admin, action)) = started_by else {
        return Ok(());
    };
    let mut insert = tx.prepare_cached(INSERT_AUDIT).map_err(failed)?;
    for (user, fields) in audited(plan) {
        insert
            .execute(params![
                crate::new_id(),
                org,
                admin,
                user,
                action,
                fields,
                now
            ])
            .map_err(failed)?;
    }
    Ok(())
}

/// One entry of a user's audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub admin_email: String,
    pub action: String,
    pub changed_fields: String,
    pub at_ms: i64,
}

impl OrgStore {
    /// Save an admin's edit of a user as the plan wrote it, and audit it with the fields that
    /// change, in one transaction. A concurrent change of the user makes this `StaleWrite`, and
    /// a value another user took meanwhile `Conflict` (plan again to learn which).
    pub async fn save_admin_edit(
        &self,
        admin_id: &str,
        write: &Write,
        changed: &[Cow<'static, str>],
    ) -> Result<()> {
        if write.expected_version.is_none() {
            return Err(StoreError::NotFound(format!("user {}", write.user.id)));
        }
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        write_users(
            self.store.db.backend,
            &mut tx,
            &self.org,
            vec![UserWriteRef::from(write)],
            now,
        )
        .await?;
        self.audit_edit(
            &mut tx,
            admin_id,
            write.user.id.as_str(),
            &changed.join(","),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's audit trail, newest first.
    pub async fn user_audit(&self, user: &UserId) -> Result<Vec<AuditEntry>> {
        let rows = query(
            self.store.db.backend,
            "SELECT a.email, t.action, t.changed_fields, t.at FROM admin_audit t \
             JOIN admins a ON a.id = t.admin_id WHERE t.org_id = $1 AND t.user_id = $2 \
             ORDER BY t.at DESC, t.id DESC",
            vec![self.org.as_str().into(), user.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    admin_email: get(row, "email")?,
                    action: get(row, "action")?,
                    changed_fields: get(row, "changed_fields")?,
                    at_ms: get(row, "at")?,
                })
            })
            .collect()
    }
}
