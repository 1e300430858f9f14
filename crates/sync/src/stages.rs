//! The stages a run goes through: record it, plan its records against the store, check the
//! deactivation threshold, apply and log it. [`crate::Engine`] chains them for every source;
//! they are public for the crate's stage tests only.

use rollcall_domain::config::{DeactivationThreshold, Mode};
use rollcall_domain::plan::{self, BatchKeys, Options, Plan};
use rollcall_domain::record::BatchItem;
use rollcall_domain::unchanged::Sifted;
use rollcall_domain::{LogRow, RunId, RunStatus, UserId};
use rollcall_store::{Finish, NewRun, OrgStore, RunRecord, SourceConfig, StoreError};

use crate::{Phase, RunMeta, RunProgress, SyncError, initial};

/// How often a run plans again after a concurrent writer took a key or changed a user it
/// planned against. Each retry sees the other writer's committed state, so conflicts become
/// log rows rather than failures; the limit only guards against a pathological storm.
pub(crate) const MAX_ATTEMPTS: usize = 5;

pub(crate) fn new_run(config: &SourceConfig, meta: &RunMeta) -> NewRun {
    NewRun {
        config_id: config.id.clone(),
        connector: config.kind.connector().to_owned(),
        trigger: meta.trigger,
        file_name: meta.file_name.clone(),
        file_sha256: meta.file_sha256.clone(),
        dry_run: meta.dry_run || config.mode == Mode::DryRun,
    }
}

/// Run a batch through the engine and record it as a run.
pub async fn run_batch(
    org: &OrgStore,
    config: &SourceConfig,
    meta: &RunMeta,
    batch: &[BatchItem],
) -> Result<RunRecord, SyncError> {
    let run = new_run(config, meta);
    let run_id = org.start_run(&run).await?;
    let threshold = Threshold::unless_dry(run.dry_run);
    plan_whole(org, config, &run_id, batch, threshold).await
}

/// How a run whose file went through a [`Sieve`](rollcall_domain::unchanged::Sieve) ended.
#[derive(Debug)]
pub enum SiftedRun {
    Done(Box<RunRecord>),
    /// The rows the sieve took depend on the file's other rows (a duplicate key, a renamed
    /// manager, a reporting loop): read the file again without the sieve and finish the run
    /// with [`finish_started`].
    Replan(RunId),
}

/// [`run_batch`] for a file read through a sieve: `rest` is the file's other rows.
pub async fn run_sifted(
    org: &OrgStore,
    config: &SourceConfig,
    meta: &RunMeta,
    rest: &[BatchItem],
    sifted: Sifted,
) -> Result<SiftedRun, SyncError> {
    let run = new_run(config, meta);
    let run_id = org.start_run(&run).await?;
    let threshold = Threshold::unless_dry(run.dry_run);
    Ok(
        match plan_and_finish(org, config, &run_id, rest, Some(sifted), threshold, &mut ()).await? {
            Some(record) => SiftedRun::Done(Box::new(record)),
            None => SiftedRun::Replan(run_id),
        },
    )
}

/// Finish a run that [`run_sifted`] started and gave back, with the whole file's records.
pub async fn finish_started(
    org: &OrgStore,
    config: &SourceConfig,
    run_id: &RunId,
    dry_run: bool,
    batch: &[BatchItem],
) -> Result<RunRecord, SyncError> {
    let threshold = Threshold::unless_dry(dry_run || config.mode == Mode::DryRun);
    plan_whole(org, config, run_id, batch, threshold).await
}

/// Apply a run that the deactivation threshold blocked, as the operator approved it: `batch`
/// is the run's own file read again, planned against the users as they are now.
pub async fn approve_run(
    org: &OrgStore,
    config: &SourceConfig,
    run_id: &RunId,
    batch: &[BatchItem],
    approval: &rollcall_store::Approval,
) -> Result<RunRecord, SyncError> {
    let apply = plan_whole(org, config, run_id, batch, Threshold::Approved);
    approved(org, run_id, approval, apply).await
}

/// Take a blocked run for approval (exactly once), then `apply` it; a failed apply gives the
/// run back to wait for approval again.
pub(crate) async fn approved(
    org: &OrgStore,
    run_id: &RunId,
    approval: &rollcall_store::Approval,
    apply: impl Future<Output = Result<RunRecord, SyncError>>,
) -> Result<RunRecord, SyncError> {
    org.take_for_approval(run_id, approval).await?;
    let applied = apply.await;
    if applied.is_err()
        && let Err(e) = org.release_approval(run_id).await
    {
        tracing::error!(run = %run_id, error = %e, "an approved run failed and could not be released");
    }
    applied
}

/// What the deactivation threshold does to a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threshold {
    /// A dry run reports everything and applies nothing.
    DryRun,
    Check,
    /// The operator approved the run.
    Approved,
}

impl Threshold {
    /// A dry run's, or else the check.
    pub(crate) fn unless_dry(dry_run: bool) -> Threshold {
        if dry_run {
            Threshold::DryRun
        } else {
            Threshold::Check
        }
    }
}

pub(crate) async fn plan_whole(
    org: &OrgStore,
    config: &SourceConfig,
    run_id: &RunId,
    batch: &[BatchItem],
    threshold: Threshold,
) -> Result<RunRecord, SyncError> {
    match plan_and_finish(org, config, run_id, batch, None, threshold, &mut ()).await? {
        Some(record) => Ok(record),
        // Only a sieve's rows can ask for the whole file, and there are none.
        None => Err(SyncError::Store(StoreError::Database)),
    }
}

/// Plan `batch` (with the rows `sifted` took, if any), check the threshold and finish the run.
/// `None` when the sifted rows depend on the batch ([`SiftedRun::Replan`]).
pub(crate) async fn plan_and_finish(
    org: &OrgStore,
    config: &SourceConfig,
    run_id: &RunId,
    batch: &[BatchItem],
    sifted: Option<Sifted>,
    threshold: Threshold,
    progress: &mut dyn RunProgress,
) -> Result<Option<RunRecord>, SyncError> {
    let options = Options {
        config: config.id.clone(),
        create_inactive: false,
    };
    let mut sifted = sifted.unwrap_or_default();
    if sifted.conflicts_with(batch) {
        tracing::debug!(run = %run_id, "a row shares a key with an unchanged row; planning the whole file");
        return Ok(None);
    }
    for attempt in 1..=MAX_ATTEMPTS {
        progress.phase(Phase::Planning {
            records: batch.len(),
        });
        let started = std::time::Instant::now();
        // The keys are as large as the batch: computed again for a retry rather than kept.
        let ctx = org.load_context(&BatchKeys::of(batch)).await?;
        let loaded = started.elapsed();
        let mut plan = plan::plan(batch, &ctx, &options, &mut || {
            UserId::new(rollcall_store::new_id())
        });
        drop(ctx);
        if !sifted.holds_for(&plan) {
            tracing::debug!(run = %run_id, "the plan changes what unchanged rows depend on; planning the whole file");
            return Ok(None);
        }
        plan.counts.unchanged += sifted.unchanged.len() as u64;
        plan.unchanged = std::mem::take(&mut sifted.unchanged);
        tracing::debug!(run = %run_id, records = batch.len(), unchanged = plan.unchanged.len(), ?loaded, planned = ?started.elapsed() - loaded, "planned");
        // A dry run checks the threshold too, so that it reports the block a real run hits.
        let hit = match threshold {
            Threshold::DryRun | Threshold::Check => above_threshold(org, config, &plan).await?,
            Threshold::Approved => None,
        };
        let finish = match (threshold, hit) {
            (Threshold::DryRun, _) => Finish::Report(&plan, plan.counts.completed_status()),
            (Threshold::Check, Some(_)) => {
                Finish::Report(&plan, RunStatus::AboveDeactivationThreshold)
            }
            (Threshold::Check | Threshold::Approved, _) => Finish::Apply(&plan),
        };
        progress.phase(Phase::Recording {
            applies: matches!(finish, Finish::Apply(_)),
            writes: plan.records.iter().filter(|r| r.write.is_some()).count(),
            log_rows: plan.records.len() + plan.unchanged.len(),
        });
        let applying = std::time::Instant::now();
        let finished = org.finish_run(run_id, finish).await;
        // Kept for another attempt.
        sifted.unchanged = std::mem::take(&mut plan.unchanged);
        match finished {
            Ok(record) => {
                tracing::debug!(run = %run_id, finished = ?applying.elapsed(), "finished");
                let Some(hit) = hit else {
                    return Ok(Some(record));
                };
                // The run has ended either way: a threshold that could not be noted is logged,
                // and the page falls back to "above the configured threshold".
                if let Err(e) = org.record_threshold_hit(run_id, hit).await {
                    tracing::error!(run = %run_id, error = %e, "the threshold a run hit could not be recorded");
                    return Ok(Some(record));
                }
                return Ok(Some(org.run(run_id).await?));
            }
            Err(StoreError::Conflict(what)) => {
                tracing::info!(run = %run_id, attempt, conflict = %what, "concurrent write; planning again");
            }
            Err(StoreError::StaleWrite) => {
                tracing::info!(run = %run_id, attempt, "a planned user changed meanwhile; planning again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let log = [LogRow::load_failed(
        "The users changed too often while this run was applied; run it again",
    )];
    Ok(Some(
        org.finish_run(run_id, Finish::DataLoadFailed(&log)).await?,
    ))
}

/// The configuration's deactivation threshold, when the plan's deactivations exceed it.
async fn above_threshold(
    org: &OrgStore,
    config: &SourceConfig,
    plan: &Plan,
) -> Result<Option<DeactivationThreshold>, StoreError> {
    let Some(threshold) = config.deactivation_threshold else {
        return Ok(None);
    };
    if plan.counts.deactivated == 0 {
        return Ok(None);
    }
    let active = org.active_managed_count(&config.id).await?;
    Ok(threshold
        .exceeded(plan.counts.deactivated, active)
        .then_some(threshold))
}

/// Record that a run starts now, before its records are read (a file planned chunk by chunk
/// is read while the run applies it).
pub async fn start_run(
    org: &OrgStore,
    config: &SourceConfig,
    meta: &RunMeta,
) -> Result<RunId, SyncError> {
    Ok(org.start_run(&new_run(config, meta)).await?)
}

/// How [`run_chunked_sized`] ended.
#[derive(Debug)]
pub enum Chunked {
    /// The run is recorded.
    Done(Box<RunRecord>),
    /// Nothing was applied: read the whole file and finish the run with [`finish_started`]
    /// (or its load problems).
    Whole,
}

/// What reading a file gave: its load problems, if any, and its SHA-256.
pub type ReadEnd = (Result<(), Vec<LogRow>>, String);

/// Run the file that `read` reads (handing each record to its sink, stopping when the sink
/// returns false) chunk by chunk of `size` records, as [`initial`] describes, when that
/// applies: a run that is not a dry run, into an organisation without users, on SQLite. The
/// run was started with [`start_run`] or claimed from the queue.
pub async fn run_chunked_sized<R>(
    org: &OrgStore,
    config: &SourceConfig,
    run_id: &RunId,
    dry_run: bool,
    size: usize,
    read: R,
) -> Result<Chunked, SyncError>
where
    R: FnOnce(&mut dyn FnMut(BatchItem) -> bool) -> ReadEnd + Send + 'static,
{
    let size = size.max(1);
    if dry_run || config.mode == Mode::DryRun {
        return Ok(Chunked::Whole);
    }
    let Some(run) = org.begin_initial_run(run_id).await? else {
        return Ok(Chunked::Whole);
    };
    let options = Options {
        config: config.id.clone(),
        create_inactive: false,
    };
    let (applied, (loaded, sha)) = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<BatchItem>>(1);
            // Planned chunks go back to the reader to be freed: on the thread that allocated
            // their records, and off the planner's.
            let (back, planned) = std::sync::mpsc::channel::<Vec<BatchItem>>();
            let reader = scope.spawn(move || {
                let mut chunk = Vec::with_capacity(size);
                let mut open = true;
                // How long the reader waited for the planner (debug log).
                let mut waited = std::time::Duration::ZERO;
                let end = read(&mut |item| {
                    if chunk.is_empty() {
                        while let Ok(old) = planned.try_recv() {
                            drop(old);
                        }
                    }
                    chunk.push(item);
                    if chunk.len() == size {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(size));
                        let sending = std::time::Instant::now();
                        open = tx.send(full).is_ok();
                        waited += sending.elapsed();
                    }
                    open
                });
                if open && !chunk.is_empty() && end.0.is_ok() {
                    let _ = tx.send(chunk);
                }
                tracing::debug!(?waited, "file read");
                end
            });
            let applied = initial::apply_chunks(run, &options, rx.into_iter(), |spent| {
                // Once the reader is done, the planner frees them itself.
                if let Err(std::sync::mpsc::SendError(spent)) = back.send(spent) {
                    drop(spent);
                }
            });
            let end = reader
                .join()
                .unwrap_or_else(|_| (Err(vec![read_panicked()]), String::new()));
            (applied, end)
        })
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "a chunked run's thread failed");
        SyncError::Store(StoreError::Database)
    })?;
    let applied = applied?;
    match (loaded, applied) {
        (Err(problems), applied) => {
            // Nothing of a file that does not load is kept.
            tokio::task::spawn_blocking(move || drop(applied))
                .await
                .map_err(|_| SyncError::Store(StoreError::Database))?;
            org.set_run_sha256(run_id, &sha).await?;
            let record = org
                .finish_run(run_id, Finish::DataLoadFailed(&problems))
                .await?;
            Ok(Chunked::Done(Box::new(record)))
        }
        (Ok(()), None) => Ok(Chunked::Whole),
        (Ok(()), Some(applied)) => {
            tokio::task::spawn_blocking(move || applied.finish(&sha))
                .await
                .map_err(|_| SyncError::Store(StoreError::Database))??;
            Ok(Chunked::Done(Box::new(org.run(run_id).await?)))
        }
    }
}

pub(crate) fn read_panicked() -> LogRow {
    LogRow::load_failed("The file could not be read (internal error): sync it again")
}
