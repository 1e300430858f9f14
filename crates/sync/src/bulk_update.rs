//! Admin Bulk Update (SPEC §6) through the engine: each row of the admin's CSV becomes a record
//! linked by username ([`rollcall_domain::bulk_update::record`]), and the file is planned and
//! applied as a run like a sync file's, with the same duplicate and conflict rules and one log
//! row per row. The run belongs to the organisation's Bulk Update configuration with trigger
//! `bulk` (so its logs live on the Bulk Update page), and each user it writes is audited in the
//! admin's name in the run's own transaction.

use rollcall_domain::bulk_update;
use rollcall_store::{AuditAction, BULK_UPDATE_TRIGGER, NewRun, OrgStore, RunRecord};

use crate::SyncError;

/// A Bulk Update file as the admin panel read it (with `hrfile::csvfile::read_table`).
#[derive(Clone, Copy, Debug)]
pub struct BulkFile<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
    /// The header row's column names.
    pub header: &'a [String],
    /// Each data row's line and cells.
    pub rows: &'a [(u64, Vec<String>)],
}

/// How a Bulk Update ended.
#[derive(Debug)]
pub enum BulkUpdate {
    /// The file's columns are not a Bulk Update file's: nothing was run. The problem says how
    /// to fix the file.
    Refused(String),
    /// The run is recorded, with a log row per row.
    Done(Box<RunRecord>),
}

/// Run an admin's Bulk Update file through the engine.
pub async fn run_bulk_update(
    org: &OrgStore,
    admin_id: &str,
    file: BulkFile<'_>,
) -> Result<BulkUpdate, SyncError> {
    let fields = match bulk_update::columns(file.header) {
        Ok(fields) => fields,
        Err(problem) => return Ok(BulkUpdate::Refused(problem)),
    };
    let batch = bulk_update::records(&fields, file.rows);
    let config = org.bulk_update_config().await?;
    let run = NewRun {
        config_id: config.id.clone(),
        connector: config.kind.connector().to_owned(),
        trigger: BULK_UPDATE_TRIGGER.to_owned(),
        file_name: Some(file.name.to_owned()),
        file_sha256: Some(file.sha256.to_owned()),
        dry_run: false,
    };
    let run_id = org
        .start_admin_run(&run, admin_id, AuditAction::BulkUpdate)
        .await?;
    let record = crate::finish_started(org, &config, &run_id, false, &batch).await?;
    Ok(BulkUpdate::Done(Box::new(record)))
}
