//! Admins' own changes through the engine.
//!
//! - **Bulk Update** (SPEC §6): each row of the admin's CSV becomes a record linked by username
//!   ([`rollcall_domain::bulk_update::record`]), and the file is planned and applied as a run
//!   like a sync file's, with the same duplicate and conflict rules and one log row per row.
//!   The run belongs to the organisation's Bulk Update configuration with trigger `bulk` (so
//!   its logs live on the Bulk Update page), and each user it writes is audited in the admin's
//!   name in the run's own transaction.
//! - **A profile edit** in the admin panel ([`save_profile_edit`]): one record linked by the
//!   user's id ([`rollcall_domain::admin_edit::record`]), planned against the users it can
//!   reach (the same uniqueness rules, which name the conflicting fields as data), then saved
//!   with the user's version check and audited.

use rollcall_domain::field::FieldKey;
use rollcall_domain::plan::{self, BatchKeys, Options};
use rollcall_domain::record::BatchItem;
use rollcall_domain::run::Issue;
use rollcall_domain::{StoredUser, UserId, admin_edit, bulk_update};
use rollcall_store::{AuditAction, NewRun, OrgStore, RunRecord, StoreError};

use crate::SyncError;
use crate::stages::{MAX_ATTEMPTS, finish_started};

/// A Bulk Update file as the admin uploaded it.
#[derive(Clone, Copy, Debug)]
pub struct BulkFile<'a> {
    pub name: &'a str,
    pub content: &'a [u8],
    /// The most data rows the file may have (the upload's size is limited where it is read).
    pub max_rows: u64,
}

/// How a Bulk Update ended.
#[derive(Debug)]
pub enum BulkUpdate {
    /// The file is not a Bulk Update file (not a CSV, unreadable, or not its columns): nothing
    /// was run. Each problem says how to fix the file.
    Refused(Vec<String>),
    /// The run is recorded, with a log row per row.
    Done(Box<RunRecord>),
}

/// Run an admin's Bulk Update file through the engine.
pub async fn run_bulk_update(
    org: &OrgStore,
    admin_id: &str,
    file: BulkFile<'_>,
) -> Result<BulkUpdate, SyncError> {
    if !file.name.to_lowercase().ends_with(".csv") {
        return Ok(BulkUpdate::Refused(vec![format!(
            "'{}' is not a .csv file: save the sheet as CSV (UTF-8, comma-separated)",
            file.name
        )]));
    }
    let limits = rollcall_hrfile::Limits {
        max_bytes: u64::try_from(file.content.len()).unwrap_or(u64::MAX),
        max_rows: file.max_rows,
        ..rollcall_hrfile::Limits::default()
    };
    let (header, rows) = match rollcall_hrfile::csvfile::read_table(file.content, limits) {
        Ok(table) => table,
        Err(problems) => {
            return Ok(BulkUpdate::Refused(
                problems.into_iter().map(|p| p.message).collect(),
            ));
        }
    };
    let fields = match bulk_update::columns(&header) {
        Ok(fields) => fields,
        Err(problem) => return Ok(BulkUpdate::Refused(vec![problem])),
    };
    let batch = bulk_update::records(&fields, &rows);
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(file.content))
    };
    let config = org.bulk_update_config().await?;
    let run = NewRun {
        config_id: config.id.clone(),
        connector: config.kind.connector().to_owned(),
        trigger: rollcall_domain::Trigger::Bulk,
        file_name: Some(file.name.to_owned()),
        file_sha256: Some(sha256),
        dry_run: false,
    };
    let run_id = org
        .start_admin_run(&run, admin_id, AuditAction::BulkUpdate)
        .await?;
    let record = finish_started(org, &config, &run_id, false, &batch).await?;
    Ok(BulkUpdate::Done(Box::new(record)))
}

/// How an admin's profile edit ended.
#[derive(Debug)]
pub enum ProfileEdit {
    /// Saved and audited (or nothing was left to change).
    Saved,
    /// The engine refused it: the issue says why, and names the fields (a conflict's keys) as
    /// data in [`Issue::fields`].
    Refused(Issue),
    /// The user changed since `before` was read: nothing was saved.
    Stale,
}

/// Plan an admin's edit of `before` (the user as read for the form, `edited` and `changed` as
/// [`admin_edit::apply_edit`] gave them), then save and audit it.
pub async fn save_profile_edit(
    org: &OrgStore,
    admin_id: &str,
    before: &StoredUser,
    edited: &StoredUser,
    changed: &[FieldKey],
) -> Result<ProfileEdit, SyncError> {
    let batch: [BatchItem; 1] = [Ok(admin_edit::record(edited, changed))];
    let keys = BatchKeys::of(&batch);
    // An admin's record is managed by no configuration; the plan still names one.
    let options = Options {
        config: org.bulk_update_config().await?.id,
        create_inactive: false,
    };
    let mut known = Some(before.clone());
    for attempt in 1..=MAX_ATTEMPTS {
        // A retry follows a value taken meanwhile: everything is read again.
        let ctx = org.load_context_with(&keys, known.take()).await?;
        let plan = plan::plan(&batch, &ctx, &options, &mut || {
            UserId::new(rollcall_store::new_id())
        });
        let Some(planned) = plan.records.first() else {
            return Err(SyncError::Store(StoreError::Database));
        };
        if let Some(issue) = &planned.error {
            return Ok(ProfileEdit::Refused(issue.clone()));
        }
        let Some(write) = &planned.write else {
            return Ok(ProfileEdit::Saved);
        };
        if write.expected_version != Some(before.version) {
            return Ok(ProfileEdit::Stale);
        }
        match org
            .save_admin_edit(admin_id, write, &planned.changed_fields)
            .await
        {
            Ok(()) => return Ok(ProfileEdit::Saved),
            Err(StoreError::StaleWrite) => return Ok(ProfileEdit::Stale),
            Err(StoreError::Conflict(what)) => {
                tracing::info!(attempt, conflict = %what, "a value was taken meanwhile; planning the edit again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SyncError::Busy)
}
