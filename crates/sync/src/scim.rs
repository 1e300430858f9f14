//! SCIM writes through the same engine: a batch of one, planned and applied with its activity
//! log row in one transaction.

use rollcall_domain::UserId;
use rollcall_domain::config::Mode;
use rollcall_domain::plan::{self, BatchKeys, Options, PlannedRecord};
use rollcall_domain::record::{BatchItem, Incoming};
use rollcall_store::{Activity, OrgStore, SourceConfig, StoreError};

use crate::{MAX_ATTEMPTS, SyncError};

/// Plan one SCIM record, apply it (unless the configuration is in dry run) and log it in the
/// hour's activity run. The returned plan says what happened: the caller turns a failure into
/// the matching SCIM error.
pub async fn scim_apply(
    org: &OrgStore,
    config: &SourceConfig,
    record: Incoming,
) -> Result<PlannedRecord, SyncError> {
    let batch: [BatchItem; 1] = [Ok(record)];
    let keys = BatchKeys::of(&batch);
    let options = Options {
        config: config.id.clone(),
        create_inactive: true,
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let ctx = org.load_context(&keys).await?;
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
        match org.finish_scim(apply.then_some(&plan), activity).await {
            Ok(()) => {
                let mut records = plan.records;
                return records.pop().ok_or(SyncError::Store(StoreError::Database));
            }
            Err(StoreError::Conflict(_) | StoreError::StaleWrite) => {
                tracing::info!(attempt, "concurrent SCIM write; planning again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SyncError::Busy)
}
