//! Users no source manages, created by an operator (`rollcall user create`): what the
//! application's own sign-up would make. The record ([`rollcall_domain::record::unmanaged_user`])
//! is planned like any source's, so the same uniqueness rules refuse a taken username, email,
//! employee ID or mobile, then written with its record of who created it.

use rollcall_domain::plan::{self, BatchKeys, Options};
use rollcall_domain::record::{BatchItem, Incoming};
use rollcall_domain::run::Issue;
use rollcall_domain::{StoredUser, UserId};
use rollcall_store::{OrgStore, StoreError};

use crate::SyncError;
use crate::stages::MAX_ATTEMPTS;

/// How creating the user ended.
#[derive(Debug)]
pub enum Created {
    User(Box<StoredUser>),
    /// The plan refused it (a value another user holds, a manager that does not exist).
    Refused(Issue),
}

/// Plan `record` (linked [`rollcall_domain::record::Link::Unmanaged`]) and create the user,
/// recording `by` as who created it.
pub async fn create_unmanaged_user(
    org: &OrgStore,
    by: &str,
    record: Incoming,
) -> Result<Created, SyncError> {
    let batch: [BatchItem; 1] = [Ok(record)];
    let keys = BatchKeys::of(&batch);
    // The plan names a configuration; an unmanaged record is managed by none.
    let options = Options {
        config: org.bulk_update_config().await?.id,
        create_inactive: true,
    };
    for attempt in 1..=MAX_ATTEMPTS {
        // A retry follows a value taken meanwhile: everything is read again.
        let ctx = org.load_context(&keys).await?;
        let plan = plan::plan(&batch, &ctx, &options, &mut || {
            UserId::new(rollcall_store::new_id())
        });
        let Some(planned) = plan.records.first() else {
            return Err(SyncError::Store(StoreError::Database));
        };
        if let Some(issue) = &planned.error {
            return Ok(Created::Refused(issue.clone()));
        }
        let Some(write) = &planned.write else {
            return Err(SyncError::Store(StoreError::Database));
        };
        match org
            .create_unmanaged_user(by, write, &planned.changed_fields)
            .await
        {
            Ok(()) => return Ok(Created::User(Box::new(write.user.clone()))),
            Err(StoreError::Conflict(what)) => {
                tracing::info!(attempt, conflict = %what, "a value was taken meanwhile; planning the user again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SyncError::Busy)
}
