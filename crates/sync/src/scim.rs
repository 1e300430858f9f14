//! SCIM writes through the same engine: a batch of one, planned and applied with its activity
//! log row in one transaction.

use chrono::{DateTime, Utc};
use rollcall_domain::config::Mode;
use rollcall_domain::plan::{self, BatchKeys, Options, PlannedRecord};
use rollcall_domain::record::{BatchItem, Incoming};
use rollcall_domain::{StoredUser, UserId};
use rollcall_store::{Activity, OrgStore, SourceConfig, StoreError};

use crate::SyncError;
use crate::stages::MAX_ATTEMPTS;

/// Plan one SCIM record, apply it (unless the configuration is in dry run) and log it in the
/// hour's activity run. The returned plan says what happened, with the time recorded as the
/// user's `updated_at` when it was written: the caller turns a failure into the matching SCIM
/// error. `current` is the user the request targets, as the caller has just read it.
pub async fn scim_apply(
    org: &OrgStore,
    config: &SourceConfig,
    record: Incoming,
    mut current: Option<StoredUser>,
) -> Result<(PlannedRecord, Option<DateTime<Utc>>), SyncError> {
    let batch: [BatchItem; 1] = [Ok(record)];
    let keys = BatchKeys::of(&batch);
    let options = Options {
        config: config.id.clone(),
        create_inactive: true,
    };
    for attempt in 1..=MAX_ATTEMPTS {
        // Only the first attempt starts from the caller's read: a retry follows a concurrent
        // change, so everything is read again.
        let ctx = org.load_context_with(&keys, current.take()).await?;
        let plan = plan::plan(&batch, &ctx, &options, &mut || {
            UserId::new(rollcall_store::new_id())
        });
        let Some(planned) = plan.records.first() else {
            return Err(SyncError::Store(StoreError::Database));
        };
        let activity = Activity {
            config: &config.id,
            log: planned.log_row(),
            action: planned.action,
            warning: !planned.warnings.is_empty(),
        };
        let apply = config.mode == Mode::Active && planned.write.is_some();
        match org
            .finish_scim(apply.then_some(&plan), &ctx.users, activity)
            .await
        {
            Ok(at) => {
                let mut records = plan.records;
                let record = records
                    .pop()
                    .ok_or(SyncError::Store(StoreError::Database))?;
                return Ok((record, apply.then_some(at)));
            }
            Err(StoreError::Conflict(_) | StoreError::StaleWrite) => {
                tracing::info!(attempt, "concurrent SCIM write; planning again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SyncError::Busy)
}
