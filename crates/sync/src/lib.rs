//! Sync runs of every kind. A source hands its data to the [`Engine`] and nothing below it:
//!
//! - [`Engine::run_file`]: an HR file, from `rollcall sync` or a queued SFTP upload;
//! - [`Engine::run_batch`]: records already read (pull connectors, Bulk Update);
//! - [`Engine::approve`]: a run the deactivation threshold blocked, applied as an operator
//!   approved it;
//! - [`Engine::enqueue_upload`] and [`queue::Queue`]: uploads stored, then run one at a time
//!   per configuration by the workers of every node;
//! - [`scim::scim_apply`]: one SCIM write, committed with others in groups;
//! - [`unmanaged::create_unmanaged_user`]: a user no source manages, as an operator creates one.
//!
//! Each plans its records against what the store holds (`rollcall_domain::plan`), checks
//! the deactivation threshold, applies the plan in one transaction and records the run with
//! its log ([`stages`]).

pub mod bulk_update;
pub mod exports;
mod file;
pub mod initial;
pub mod queue;
pub mod scim;
#[doc(hidden)]
pub mod stages;
pub mod unmanaged;

use std::sync::Arc;

use rollcall_domain::record::BatchItem;
use rollcall_domain::{RunId, RunStatus};
use rollcall_store::{OrgStore, RunRecord, SourceConfig, Store, StoreError, UploadError};
use tokio::sync::Notify;

pub use file::{FileInput, Phase, RunProgress, Start};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Concurrent writers kept changing what the record depends on.
    #[error("the users changed too often while this write was applied; try again")]
    Busy,
    /// The file handed to a run could not be opened or read (not the file's content: that
    /// ends the run as Data Load Failed).
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// A file was handed to a configuration that syncs no files (SCIM, Bulk Update).
    #[error(
        "configuration '{config}' is a {kind} configuration: only file and pull configurations sync files"
    )]
    NotAFileConfiguration { config: String, kind: String },
    /// The configuration is disabled: it starts no run until an operator enables it.
    #[error(
        "configuration '{config}' is disabled: an operator enables it with `rollcall config enable`"
    )]
    Disabled { config: String },
    /// Only a run blocked by the deactivation threshold can be approved.
    #[error(
        "run {run} is {}: only a run blocked by the deactivation threshold can be approved", status.label()
    )]
    NotBlocked { run: RunId, status: RunStatus },
    /// The blocked run's file is gone (its retention period ended, or it was never kept).
    #[error("run {run} has no kept file to apply: sync the file again")]
    NoKeptFile { run: RunId },
    /// The blocked run's file no longer reads with its configuration's current mapping.
    #[error("the kept file no longer reads with the configuration's mapping: {problem}")]
    KeptFileUnreadable { problem: String },
}

impl SyncError {
    /// Whether the caller asked for something that cannot be done (an answer to give the
    /// caller), rather than something failing inside rollcall.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SyncError::NotAFileConfiguration { .. }
                | SyncError::Disabled { .. }
                | SyncError::NotBlocked { .. }
                | SyncError::NoKeptFile { .. }
                | SyncError::KeptFileUnreadable { .. }
        )
    }
}

/// Refuse a run of a disabled configuration.
fn enabled(config: &SourceConfig) -> Result<(), SyncError> {
    match config.disabled_at {
        Some(_) => Err(SyncError::Disabled {
            config: config.name.clone(),
        }),
        None => Ok(()),
    }
}

/// What starts a run, besides its records.
#[derive(Clone, Debug)]
pub struct RunMeta {
    pub trigger: rollcall_domain::Trigger,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    /// Force a dry run whatever the configuration's mode.
    pub dry_run: bool,
}

/// How the engine of one process reads files and uses memory.
#[derive(Clone, Copy, Debug)]
pub struct EngineSettings {
    pub limits: rollcall_hrfile::Limits,
    /// A first sync of a file at least this large into an organisation without users is
    /// planned and applied chunk by chunk ([`initial`]).
    pub chunked_min_bytes: u64,
    /// Records per chunk of such a run.
    pub chunk_rows: usize,
    /// Hands memory freed after a large stage back to the system (the binary's allocator
    /// keeps freed pages otherwise); called once a file's sieve is dropped.
    pub release_memory: fn(),
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        EngineSettings {
            limits: rollcall_hrfile::Limits::default(),
            chunked_min_bytes: initial::MIN_BYTES,
            chunk_rows: initial::CHUNK_ROWS,
            release_memory: || {},
        }
    }
}

/// The run engine: every source's runs start here. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    settings: EngineSettings,
    /// Wakes this node's queue workers when an upload is queued here.
    queued: Arc<Notify>,
}

impl Engine {
    pub fn new(store: Store, settings: EngineSettings) -> Engine {
        Engine {
            store,
            settings,
            queued: Arc::new(Notify::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Run records already read and validated (a pull, a Bulk Update) through the engine.
    pub async fn run_batch(
        &self,
        org: &OrgStore,
        config: &SourceConfig,
        meta: &RunMeta,
        batch: &[BatchItem],
    ) -> Result<RunRecord, SyncError> {
        enabled(config)?;
        stages::run_batch(org, config, meta, batch).await
    }

    /// Store a completed upload with its queued run, and wake a worker. The run uses the
    /// configuration's mode; a worker of any node runs it ([`queue::Queue`]).
    pub async fn enqueue_upload(
        &self,
        org: &OrgStore,
        config: &SourceConfig,
        file_name: &str,
        content: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<RunRecord, UploadError> {
        let meta = RunMeta {
            trigger: rollcall_domain::Trigger::Sftp,
            file_name: Some(file_name.to_owned()),
            file_sha256: None,
            dry_run: false,
        };
        let queued = org
            .enqueue_upload(&stages::new_run(config, &meta), content)
            .await?;
        self.queued.notify_waiters();
        Ok(queued)
    }
}
