//! The run queue's workers inside `rollcall serve` (SPEC §5, §6, §10).
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

use anyhow::Context;
use rollcall_domain::LogRow;
use rollcall_domain::record::ReadOptions;
use rollcall_store::{Claim, OrgStore, RunRecord, SourceConfig, Store};
use tokio::sync::{Notify, watch};

use crate::settings::Settings;

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

/// The problem that ends a run taken for the `attempts`-th time, if it is one too many.
fn given_up(attempts: u32) -> Option<rollcall_hrfile::FileProblem> {
    (attempts > MAX_ATTEMPTS).then(|| {
        rollcall_hrfile::FileProblem::new(
            None,
            format!(
                "rollcall could not finish this run in {MAX_ATTEMPTS} attempts (the service log has each error): upload the file again, and if this happens again, report it with this run's id"
            ),
            format!("attempts={MAX_ATTEMPTS}"),
        )
    })
}

/// This node's identity in the queue, kept in the data directory so that a restarted node
/// recognises the runs it held.
pub fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let id = rollcall_store::new_id();
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

pub struct Runner {
    store: Store,
    node: String,
    wake: Arc<Notify>,
    workers: usize,
    limits: rollcall_hrfile::Limits,
    work_dir: PathBuf,
    retention: Duration,
}

impl Runner {
    pub fn new(store: Store, settings: &Settings, wake: Arc<Notify>) -> anyhow::Result<Runner> {
        Ok(Runner {
            store,
            node: node_id(&settings.data_dir)?,
            wake,
            workers: settings.run_workers,
            limits: settings.limits,
            work_dir: settings.data_dir.join("work"),
            retention: settings.file_retention,
        })
    }

    /// Process queued runs until `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let _ = std::fs::remove_dir_all(&self.work_dir);
        std::fs::create_dir_all(&self.work_dir)
            .with_context(|| format!("cannot create {}", self.work_dir.display()))?;
        let taken_back = self.store.requeue_runs_of(&self.node).await?;
        if taken_back > 0 {
            tracing::warn!(
                runs = taken_back,
                "runs interrupted by the last stop are queued again"
            );
        }
        let runner = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..runner.workers {
            tasks.spawn(runner.clone().worker(n, stop.clone()));
        }
        tasks.spawn(runner.clone().purger(stop.clone()));
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    async fn worker(self: Arc<Self>, n: usize, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before looking, so a run queued meanwhile is not missed.
            let woken = self.wake.notified();
            match self.store.claim_next_run(&self.node, LEASE).await {
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
        let lease = {
            let store = self.store.clone();
            let node = self.node.clone();
            let id = run.id.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE / 4).await;
                    match store.renew_lease(&id, &node, LEASE).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(run = %id, "the run's claim was lost");
                            return;
                        }
                        Err(e) => {
                            tracing::error!(run = %id, error = %e, "cannot renew the run's lease")
                        }
                    }
                }
            })
        };
        let spool = self.work_dir.join(format!("{}.file", run.id));
        match self.sync_stored_file(&org, &run, &spool).await {
            Ok(done) => tracing::info!(
                run = %done.id, status = done.status.label(), created = done.counts.created,
                updated = done.counts.updated, deactivated = done.counts.deactivated,
                skipped = done.counts.skipped, "run ended"
            ),
            // The run stays In Progress under this node's claim: the lease brings it back.
            Err(e) => {
                tracing::error!(run = %run.id, error = %format!("{e:#}"), "run failed; it will be retried")
            }
        }
        lease.abort();
        let _ = tokio::fs::remove_file(&spool).await;
    }

    async fn sync_stored_file(
        &self,
        org: &OrgStore,
        run: &RunRecord,
        spool: &Path,
    ) -> anyhow::Result<RunRecord> {
        let config = org.config(run.config_id.as_str()).await?;
        let file_name = run.file_name.clone().unwrap_or_default();
        let fail = |problem: rollcall_hrfile::FileProblem| vec![problem.log_row()];
        if let Some(problem) = given_up(run.attempts) {
            tracing::error!(run = %run.id, attempts = MAX_ATTEMPTS, "run given up");
            return self.finish(org, &config, run, Err(fail(problem))).await;
        }
        let extension = Path::new(&file_name)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if extension != "csv" && extension != "xlsx" {
            return self
                .finish(
                    org,
                    &config,
                    run,
                    Err(fail(crate::commands::unsupported_file(&file_name))),
                )
                .await;
        }
        let Some(mapping) = config.mapping.clone() else {
            let problem = rollcall_hrfile::FileProblem::new(
                None,
                format!(
                    "configuration '{}' has no mapping: set one, then upload the file again",
                    config.name
                ),
                "",
            );
            return self.finish(org, &config, run, Err(fail(problem))).await;
        };

        let mut out = tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::fs::File::create(spool)
                .await
                .with_context(|| format!("cannot create {}", spool.display()))?,
        );
        if !org.copy_run_file(&run.id, &mut out).await? {
            let problem = rollcall_hrfile::FileProblem::new(
                None,
                "the uploaded file is no longer kept (its retention period is over): upload it again",
                "",
            );
            return self.finish(org, &config, run, Err(fail(problem))).await;
        }
        drop(out);

        let options = ReadOptions {
            phone_region: config.phone_region,
        };
        let limits = self.limits;
        let path = spool.to_owned();
        let total = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let sieve = crate::commands::sieve_for(org, &config, total).await?;
        if sieve.is_none()
            && total >= rollcall_sync::initial::MIN_BYTES
            && !run.dry_run
            && config.mode != rollcall_domain::config::Mode::DryRun
            && org.user_count().await? == 0
        {
            let mut phones = crate::commands::known_phones(org, &config, total)
                .await
                .map_err(|_| anyhow::anyhow!("cannot read the configuration's phone numbers"))?;
            let (path, extension, mapping) = (path.clone(), extension.clone(), mapping.clone());
            let expected = run.file_sha256.clone();
            let read = move |sink: &mut dyn FnMut(rollcall_domain::record::BatchItem) -> bool| {
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) => {
                        let problem = rollcall_hrfile::FileProblem::new(
                            None,
                            format!("The spooled file could not be read: {e}"),
                            "",
                        );
                        return (Err(vec![problem.log_row()]), String::new());
                    }
                };
                let source = std::io::BufReader::with_capacity(1 << 20, file);
                let (loaded, sha) = crate::commands::read_chunked(
                    source,
                    &extension,
                    &mapping,
                    &options,
                    &mut phones,
                    limits,
                    total,
                    true,
                    sink,
                );
                let loaded = match (loaded, expected) {
                    (Err(rows), _) => Err(rows),
                    (Ok(()), Some(expected)) if expected != sha => {
                        Err(vec![stored_file_differs(&expected).log_row()])
                    }
                    (Ok(()), _) => Ok(()),
                };
                (loaded, sha)
            };
            match rollcall_sync::run_chunked(org, &config, &run.id, run.dry_run, read).await? {
                rollcall_sync::Chunked::Done(record) => return Ok(*record),
                rollcall_sync::Chunked::Whole => {}
            }
        }
        let read = |sieve: Option<rollcall_domain::unchanged::Sieve>| async {
            // The sieve gives the stored numbers of the rows it does not take.
            let mut phones = match sieve {
                Some(_) => rollcall_domain::values::PhoneCache::new(),
                None => crate::commands::known_phones(org, &config, total)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("cannot read the configuration's phone numbers")
                    })?,
            };
            let (path, extension, mapping) = (path.clone(), extension.clone(), mapping.clone());
            let read = tokio::task::spawn_blocking(move || {
                let mut sieve = sieve;
                let file = std::fs::File::open(&path)?;
                let source = std::io::BufReader::with_capacity(1 << 20, file);
                let (loaded, sha) = crate::commands::read_records(
                    source,
                    &extension,
                    &mapping,
                    &options,
                    &mut phones,
                    sieve.as_mut(),
                    limits,
                    total,
                    true,
                );
                Ok::<_, std::io::Error>((loaded, sha, sieve))
            })
            .await??;
            anyhow::Ok(read)
        };
        let (mut loaded, sha, sieve) = read(sieve).await?;
        if let (Ok(rest), Some(sieve)) = (&loaded, sieve)
            && run
                .file_sha256
                .as_deref()
                .is_none_or(|stored| stored == sha)
        {
            let sifted = crate::commands::sifted(sieve);
            if let Some(record) =
                rollcall_sync::run_claimed_sifted(org, &config, run, rest, sifted).await?
            {
                return Ok(record);
            }
            // The unchanged rows depend on the others: the whole file, planned as one.
            drop(std::mem::replace(&mut loaded, Ok(Vec::new())));
            let (whole, again, _) = read(None).await?;
            anyhow::ensure!(again == sha, "the spooled file changed while it was read");
            loaded = whole;
        }
        if run
            .file_sha256
            .as_deref()
            .is_some_and(|stored| stored != sha)
        {
            let problem = stored_file_differs(run.file_sha256.as_deref().unwrap_or_default());
            return self.finish(org, &config, run, Err(fail(problem))).await;
        }
        let loaded = loaded.map_err(|problems| problems.iter().map(|p| p.log_row()).collect());
        self.finish(org, &config, run, loaded).await
    }

    async fn finish(
        &self,
        org: &OrgStore,
        config: &SourceConfig,
        run: &RunRecord,
        loaded: Result<Vec<rollcall_domain::record::BatchItem>, Vec<LogRow>>,
    ) -> anyhow::Result<RunRecord> {
        let loaded = match &loaded {
            Ok(items) => Ok(items.as_slice()),
            Err(rows) => Err(rows.as_slice()),
        };
        Ok(rollcall_sync::run_claimed(org, config, run, loaded).await?)
    }

    /// Delete the files of runs that ended longer ago than the retention period.
    async fn purger(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let before = chrono::Utc::now()
                - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
            match self.store.purge_run_files(before.timestamp_millis()).await {
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

fn stored_file_differs(expected: &str) -> rollcall_hrfile::FileProblem {
    rollcall_hrfile::FileProblem::new(
        None,
        "the stored file does not match the upload (SHA-256 differs): upload it again",
        format!("expected={expected}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(problem.log_row().error_type, "DATA_LOAD_FAILED");
    }
}
