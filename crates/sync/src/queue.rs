//! The run queue's workers (SPEC §5, §6, §10).
//!
//! Each worker claims the oldest queued run whose configuration has no run in progress, so
//! one configuration's uploads run one at a time in upload order while different
//! configurations run side by side. A claim is a lease that the worker renews while it works;
//! if the node dies, another node takes the run when the lease runs out, and the same node
//! takes its own runs back as soon as it restarts. A run applies in one transaction, so a run
//! interrupted and run again applies exactly once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rollcall_domain::RunId;
use rollcall_hrfile::FileProblem;
use rollcall_store::{Claim, Finish, OrgStore, RunRecord};
use tokio::sync::watch;

use crate::{Engine, FileInput, Start, SyncError};

/// How long a claim holds without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often a worker looks for runs queued by other nodes (runs queued on this node wake it
/// at once).
const POLL: Duration = Duration::from_secs(2);
/// How long a shutdown waits for the runs in progress before leaving them to the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How many times a run may be taken from the queue and not finish (an error, or the process
/// stopping) before it ends as Data Load Failed. Without a limit, a run that fails every time
/// would hold up its configuration's later uploads for ever.
const MAX_ATTEMPTS: u32 = 3;

/// How this node works the queue.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// This node's identity in the queue; the same across restarts, so that a restarted node
    /// takes back the runs it held.
    pub node: String,
    pub workers: usize,
    /// Where a claimed run's file is copied to be read (emptied at start).
    pub work_dir: PathBuf,
    /// How long a run's file is kept after the run ends.
    pub retention: Duration,
}

/// The problem that ends a run taken for the `attempts`-th time, if it is one too many.
fn given_up(attempts: u32) -> Option<FileProblem> {
    (attempts > MAX_ATTEMPTS).then(|| {
        FileProblem::new(
            None,
            format!(
                "rollcall could not finish this run in {MAX_ATTEMPTS} attempts (the service log has each error): upload the file again, and if this happens again, report it with this run's id"
            ),
            format!("attempts={MAX_ATTEMPTS}"),
        )
    })
}

/// This node's queue workers.
pub struct Queue {
    engine: Engine,
    settings: QueueSettings,
}

impl Queue {
    pub fn new(engine: Engine, settings: QueueSettings) -> Queue {
        Queue { engine, settings }
    }

    /// Process queued runs until `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) -> std::io::Result<()> {
        let work_dir = &self.settings.work_dir;
        let _ = std::fs::remove_dir_all(work_dir);
        // A claimed run's file is copied here: readable by the service's own user only.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(work_dir)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", work_dir.display()),
                )
            })?;
        match self.engine.store.requeue_runs_of(&self.settings.node).await {
            Ok(0) => {}
            Ok(runs) => tracing::warn!(runs, "runs interrupted by the last stop are queued again"),
            Err(e) => tracing::error!(error = %e, "cannot queue again the runs of the last stop"),
        }
        let queue = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..queue.settings.workers {
            tasks.spawn(queue.clone().worker(n, stop.clone()));
        }
        tasks.spawn(queue.clone().purger(stop.clone()));
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    async fn worker(self: Arc<Self>, n: usize, mut stop: watch::Receiver<bool>) {
        let store = &self.engine.store;
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before looking, so a run queued meanwhile is not missed.
            let woken = self.engine.queued.notified();
            match store.claim_next_run(&self.settings.node, LEASE).await {
                Ok(Some(claim)) => {
                    let run = claim.run.id.clone();
                    let work = self.clone().process(claim);
                    tokio::pin!(work);
                    tokio::select! {
                        () = &mut work => {}
                        _ = stop.changed() => {
                            if tokio::time::timeout(SHUTDOWN_GRACE, work).await.is_err() {
                                tracing::warn!(%run, "shutdown: the run in progress is left to the next start");
                            }
                            return;
                        }
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(worker = n, error = %e, "cannot read the run queue"),
            }
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn process(self: Arc<Self>, claim: Claim) {
        let Claim { org, run } = claim;
        tracing::info!(run = %run.id, config = %run.config_name, file = run.file_name.as_deref().unwrap_or_default(), "run started");
        let lease = self.renew_lease(run.id.clone());
        let spool = self.settings.work_dir.join(format!("{}.file", run.id));
        match self.run_stored_file(&org, &run, &spool).await {
            Ok(done) => tracing::info!(
                run = %done.id, status = done.status.label(), created = done.counts.created,
                updated = done.counts.updated, deactivated = done.counts.deactivated,
                skipped = done.counts.skipped, "run ended"
            ),
            // The run stays In Progress under this node's claim: the lease brings it back.
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "run failed; it will be retried")
            }
        }
        lease.abort();
        let _ = tokio::fs::remove_file(&spool).await;
    }

    /// Renew the claim on `run` while it is worked on (until the task is aborted).
    fn renew_lease(&self, run: RunId) -> tokio::task::JoinHandle<()> {
        let store = self.engine.store.clone();
        let node = self.settings.node.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 4).await;
                match store.renew_lease(&run, &node, LEASE).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%run, "the run's claim was lost");
                        return;
                    }
                    Err(e) => tracing::error!(%run, error = %e, "cannot renew the run's lease"),
                }
            }
        })
    }

    async fn run_stored_file(
        &self,
        org: &OrgStore,
        run: &RunRecord,
        spool: &Path,
    ) -> Result<RunRecord, SyncError> {
        let config = org.config(run.config_id.as_str()).await?;
        let fail = |problem: FileProblem| async move {
            Ok(org
                .finish_run(&run.id, Finish::DataLoadFailed(&[problem.log_row()]))
                .await?)
        };
        if config.disabled_at.is_some() {
            return fail(FileProblem::new(
                None,
                format!(
                    "configuration '{}' was disabled before this upload ran, so it was not applied: \
                     upload it again once an operator enables the configuration",
                    config.name
                ),
                "",
            ))
            .await;
        }
        if let Some(problem) = given_up(run.attempts) {
            tracing::error!(run = %run.id, attempts = MAX_ATTEMPTS, "run given up");
            return fail(problem).await;
        }
        let io = |source| SyncError::File {
            path: spool.display().to_string(),
            source,
        };
        let mut out = tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::fs::File::create(spool).await.map_err(io)?,
        );
        let kept = org.copy_run_file(&run.id, &mut out).await.map_err(|e| {
            tracing::error!(run = %run.id, error = %e, "cannot copy the run's stored file");
            SyncError::Store(rollcall_store::StoreError::Database)
        })?;
        drop(out);
        if !kept {
            return fail(FileProblem::new(
                None,
                "the uploaded file is no longer kept (its retention period is over): upload it again",
                "",
            ))
            .await;
        }
        let file = FileInput {
            path: spool,
            name: run.file_name.as_deref().unwrap_or_default(),
        };
        self.engine
            .run_file(org, &config, Start::Claimed(run), file, Box::new(()))
            .await
    }

    /// Delete the files of runs that ended longer ago than the retention period.
    async fn purger(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let before = chrono::Utc::now()
                - chrono::Duration::from_std(self.settings.retention)
                    .unwrap_or(chrono::Duration::MAX);
            match self
                .engine
                .store
                .purge_run_files(before.timestamp_millis())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    runs = n,
                    "purged the files of runs past their retention period"
                ),
                Err(e) => tracing::error!(error = %e, "cannot purge old run files"),
            }
            tokio::select! {
                () = tokio::time::sleep(PURGE_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_domain::ErrorType;

    #[test]
    fn a_run_is_given_up_after_its_last_attempt() {
        for attempts in 1..=MAX_ATTEMPTS {
            assert!(given_up(attempts).is_none(), "attempt {attempts}");
        }
        let problem = given_up(MAX_ATTEMPTS + 1).expect("one attempt too many");
        assert!(
            problem.message.contains("in 3 attempts"),
            "{}",
            problem.message
        );
        assert_eq!(problem.log_row().error_types, [ErrorType::DataLoadFailed]);
    }
}
