//! File runs: an HR file (CSV or XLSX) from `rollcall sync`, a queued SFTP upload or a
//! blocked run's kept file, read and run through the one path below.
//!
//! How a file is planned depends on what the store holds, never on where the file came from:
//! - a daily file, most of whose rows repeat what the configuration's users hold, is read
//!   through a sieve ([`Sieve`]) that sets the unchanged rows aside unplanned;
//! - a large first sync into an organisation without users is planned and applied chunk by
//!   chunk while it is read ([`crate::initial`]);
//! - anything else, and whatever those two cannot decide alone, is planned as one batch.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rollcall_domain::config::Mode;
use rollcall_domain::mapping::Mapping;
use rollcall_domain::record::{BatchItem, ReadOptions};
use rollcall_domain::unchanged::{Sieve, Sifted};
use rollcall_domain::values::PhoneCache;
use rollcall_domain::{LogRow, RunId, RunStatus};
use rollcall_hrfile::FileProblem;
use rollcall_store::{Finish, OrgStore, RunRecord, SourceConfig, StoreError};
use sha2::{Digest, Sha256};

use crate::stages::{self, Threshold};
use crate::{Engine, RunMeta, SyncError};

/// Where a run's file is: on disk, readable twice (a sieve's or a chunked run's fallback
/// reads it again).
#[derive(Clone, Copy, Debug)]
pub struct FileInput<'a> {
    pub path: &'a Path,
    /// The file's name as the customer gave it: the run shows it, and its extension picks
    /// the reader.
    pub name: &'a str,
}

/// Which run a file belongs to.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// A file handed over now (`rollcall sync`): the run is recorded by the engine, and a
    /// run the threshold blocks keeps the file for approval.
    New(&'a RunMeta),
    /// A queued run a worker claimed: its file must still hash as it did when stored.
    Claimed(&'a RunRecord),
    /// A blocked run being approved: its kept file, applied whatever the threshold says.
    Approved(&'a RunRecord),
}

/// How a file run is going, for a terminal: reading (every thousand rows, with the rows and
/// bytes read), then each later phase as it begins, so that a large run is never silent.
pub trait RunProgress: Send {
    fn read(&mut self, rows: u64, bytes: u64);
    /// The first reading of the file is over.
    fn done(&mut self) {}
    /// A phase after reading begins.
    fn phase(&mut self, _phase: Phase) {}
}

/// The phases of a run after its file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Matching the records against the stored users.
    Planning { records: usize },
    /// Recording the run in one transaction: the users it changes (none for a dry run or a
    /// blocked one) and its log.
    Recording {
        applies: bool,
        writes: usize,
        log_rows: usize,
    },
}

impl RunProgress for () {
    fn read(&mut self, _: u64, _: u64) {}
}

/// How a file run is going: the run once it is recorded, and what the file must hash to.
struct FileRun<'a> {
    org: &'a OrgStore,
    config: &'a SourceConfig,
    /// `None` until recorded (`rollcall sync` records its run once the file is read).
    id: Option<RunId>,
    meta: RunMeta,
    dry_run: bool,
    threshold: Threshold,
    /// The hash the file must have (a stored upload's); `None`: the run takes the file's.
    expected_sha: Option<String>,
    /// The mapping the run reads with, to record once the run is (`runs show` gives it).
    mapping: Option<Mapping>,
}

impl FileRun<'_> {
    async fn started(&mut self) -> Result<RunId, SyncError> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        let id = self
            .org
            .start_run(&stages::new_run(self.config, &self.meta))
            .await?;
        if let Some(mapping) = &self.mapping {
            self.org.set_run_mapping(&id, mapping).await?;
        }
        self.id = Some(id.clone());
        Ok(id)
    }

    /// The run reads with `mapping`: recorded now if the run is, else when it is.
    async fn reads_with(&mut self, mapping: &Mapping) -> Result<(), SyncError> {
        match &self.id {
            Some(id) => {
                self.org.set_run_mapping(id, mapping).await?;
            }
            None => self.mapping = Some(mapping.clone()),
        }
        Ok(())
    }

    /// The file hashed to `sha`: is it the file the run expects? A file without an
    /// expected hash gives the run its hash.
    async fn check_hash(&mut self, sha: &str) -> Result<Option<LogRow>, SyncError> {
        match &self.expected_sha {
            Some(expected) if expected != sha => {
                return Ok(Some(stored_file_differs(expected).log_row()));
            }
            Some(_) => {}
            None => {
                match &self.id {
                    Some(id) => self.org.set_run_sha256(id, sha).await?,
                    None => self.meta.file_sha256 = Some(sha.to_owned()),
                }
                self.expected_sha = Some(sha.to_owned());
            }
        }
        Ok(None)
    }

    /// End the run as Data Load Failed with `problems` as its log.
    async fn fail(&mut self, problems: &[LogRow]) -> Result<RunRecord, SyncError> {
        let id = self.started().await?;
        Ok(self
            .org
            .finish_run(&id, Finish::DataLoadFailed(problems))
            .await?)
    }

    async fn plan(
        &mut self,
        batch: &[BatchItem],
        sifted: Option<Sifted>,
        progress: &mut dyn RunProgress,
    ) -> Result<Option<RunRecord>, SyncError> {
        let id = self.started().await?;
        stages::plan_and_finish(
            self.org,
            self.config,
            &id,
            batch,
            sifted,
            self.threshold,
            progress,
        )
        .await
    }
}

impl Engine {
    /// Run an HR file for `config`: read it, plan it against the users as they are, apply it
    /// (unless it is a dry run or the deactivation threshold blocks it) and record the run
    /// with its log. A file that cannot be loaded ends the run as Data Load Failed with the
    /// reasons; the error is for what is not the file's fault.
    pub async fn run_file(
        &self,
        org: &OrgStore,
        config: &SourceConfig,
        start: Start<'_>,
        file: FileInput<'_>,
        progress: Box<dyn RunProgress>,
    ) -> Result<RunRecord, SyncError> {
        let mut run = match start {
            Start::New(meta) => {
                crate::enabled(config)?;
                if config.mapping.is_none() {
                    return Err(SyncError::NotAFileConfiguration {
                        config: config.name.clone(),
                        kind: config.kind.to_string(),
                    });
                }
                let dry_run = meta.dry_run || config.mode == Mode::DryRun;
                FileRun {
                    org,
                    config,
                    id: None,
                    meta: meta.clone(),
                    dry_run,
                    threshold: Threshold::unless_dry(dry_run),
                    expected_sha: None,
                    mapping: None,
                }
            }
            Start::Claimed(record) | Start::Approved(record) => FileRun {
                org,
                config,
                id: Some(record.id.clone()),
                meta: RunMeta {
                    trigger: record.trigger,
                    file_name: record.file_name.clone(),
                    file_sha256: record.file_sha256.clone(),
                    dry_run: record.dry_run,
                },
                dry_run: record.dry_run,
                threshold: match start {
                    Start::Approved(_) => Threshold::Approved,
                    _ => Threshold::unless_dry(record.dry_run),
                },
                expected_sha: record.file_sha256.clone(),
                mapping: None,
            },
        };
        let record = self.run_file_as(&mut run, file, progress).await?;
        if record.status == RunStatus::AboveDeactivationThreshold && matches!(start, Start::New(_))
        {
            keep_blocked_file(org, &record, file).await?;
        }
        Ok(record)
    }

    async fn run_file_as(
        &self,
        run: &mut FileRun<'_>,
        file: FileInput<'_>,
        progress: Box<dyn RunProgress>,
    ) -> Result<RunRecord, SyncError> {
        let (org, config) = (run.org, run.config);
        let total = std::fs::metadata(file.path)
            .map_err(|source| SyncError::File {
                path: file.path.display().to_string(),
                source,
            })?
            .len();
        let Some(format) = Format::of(file.name) else {
            return run.fail(&[unsupported_file(file.name).log_row()]).await;
        };
        let Some(mapping) = config.mapping.clone() else {
            let problem = FileProblem::new(
                None,
                format!(
                    "configuration '{}' has no mapping: set one, then upload the file again",
                    config.name
                ),
                "",
            );
            return run.fail(&[problem.log_row()]).await;
        };
        run.reads_with(&mapping).await?;
        let reader = Reader::new(file, format, mapping, config, self.settings.limits, total);
        let mut progress = Some(progress);

        let sieve = sieve_for(org, config, total).await?;
        if sieve.is_none()
            && total >= self.settings.chunked_min_bytes
            && !run.dry_run
            && run.threshold != Threshold::Approved
            && org.user_count().await? == 0
        {
            let id = run.started().await?;
            let mut phones = known_phones(org, config, total).await?;
            let (reader, expected) = (reader.clone(), run.expected_sha.clone());
            let mut progress = progress.take().unwrap_or_else(|| Box::new(()));
            let read = move |sink: &mut dyn FnMut(BatchItem) -> bool| {
                let (loaded, sha) = reader.read_into(&mut phones, None, &mut *progress, sink);
                let loaded = match (loaded, expected) {
                    (Err(problems), _) => Err(problems.iter().map(FileProblem::log_row).collect()),
                    (Ok(()), Some(expected)) if expected != sha => {
                        Err(vec![stored_file_differs(&expected).log_row()])
                    }
                    (Ok(()), _) => Ok(()),
                };
                (loaded, sha)
            };
            let chunked = stages::run_chunked_sized(
                org,
                config,
                &id,
                run.dry_run,
                self.settings.chunk_rows,
                read,
            )
            .await?;
            if let stages::Chunked::Done(record) = chunked {
                return Ok(*record);
            }
            // Nothing was applied: the whole file is planned below.
        }

        // The sieve gives the stored numbers of the rows it does not take.
        let phones = match sieve {
            Some(_) => PhoneCache::new(),
            None => known_phones(org, config, total).await?,
        };
        let first = progress.take().unwrap_or_else(|| Box::new(()));
        let (loaded, sha, sieve, mut progress) =
            reader.clone().read_all(phones, sieve, first).await?;
        if let Some(differs) = run.check_hash(&sha).await? {
            return run.fail(&[differs]).await;
        }
        let items = match loaded {
            Ok(items) => items,
            Err(problems) => {
                let rows: Vec<LogRow> = problems.iter().map(FileProblem::log_row).collect();
                return run.fail(&rows).await;
            }
        };
        let Some(sieve) = sieve else {
            return whole(run.plan(&items, None, &mut *progress).await?);
        };
        let sifted = sieve.finish();
        (self.settings.release_memory)();
        if let Some(record) = run.plan(&items, Some(sifted), &mut *progress).await? {
            return Ok(record);
        }
        // The unchanged rows depend on the others: the whole file, planned as one.
        drop(items);
        let phones = known_phones(org, config, total).await?;
        let (loaded, again, _, _) = reader.read_all(phones, None, Box::new(())).await?;
        if again != sha {
            return run.fail(&[file_changed()]).await;
        }
        match loaded {
            Ok(items) => whole(run.plan(&items, None, &mut *progress).await?),
            Err(problems) => {
                let rows: Vec<LogRow> = problems.iter().map(FileProblem::log_row).collect();
                run.fail(&rows).await
            }
        }
    }

    /// Apply a run the deactivation threshold blocked, as an operator approved it: its kept
    /// file, read again with the configuration's current mapping, planned against the users
    /// as they are now. The threshold is not checked again. A run is approved at most once,
    /// and names `by` (`operator via CLI`, an operator token's name) as its approver; its
    /// duration counts from the approval.
    pub async fn approve(&self, run_id: &RunId, by: &str) -> Result<RunRecord, SyncError> {
        let org = self.store.org(self.store.run_org(run_id).await?);
        let record = org.run(run_id).await?;
        if record.status != RunStatus::AboveDeactivationThreshold {
            return Err(SyncError::NotBlocked {
                run: run_id.clone(),
                status: record.status,
            });
        }
        let config = org.config(record.config_id.as_str()).await?;
        crate::enabled(&config)?;
        if config.mapping.is_none() {
            return Err(SyncError::NotAFileConfiguration {
                config: config.name.clone(),
                kind: config.kind.to_string(),
            });
        }
        let Some((file_name, content)) = org.run_file(run_id).await? else {
            return Err(SyncError::NoKeptFile {
                run: run_id.clone(),
            });
        };
        // The kept file is read from disk like any other (a workbook is read whole anyway).
        let spool = spool_kept_file(&content)?;
        let file = FileInput {
            path: spool.path(),
            name: &file_name,
        };
        // Checked before the run is taken, so a file that no longer reads refuses the
        // approval and leaves the run blocked.
        if let Some(problem) = self.first_problem(&org, &config, file).await? {
            return Err(SyncError::KeptFileUnreadable { problem });
        }
        let approval = rollcall_store::Approval {
            by: by.to_owned(),
            at: self.store.now(),
        };
        let apply = self.run_file(&org, &config, Start::Approved(&record), file, Box::new(()));
        stages::approved(&org, run_id, &approval, apply).await
    }

    /// The first problem that keeps `file` from loading with `config`'s mapping, if any.
    async fn first_problem(
        &self,
        org: &OrgStore,
        config: &SourceConfig,
        file: FileInput<'_>,
    ) -> Result<Option<String>, SyncError> {
        let (Some(format), Some(mapping)) = (Format::of(file.name), config.mapping.clone()) else {
            return Ok(Some(unsupported_file(file.name).message));
        };
        let total = std::fs::metadata(file.path).map(|m| m.len()).unwrap_or(0);
        let reader = Reader::new(file, format, mapping, config, self.settings.limits, total);
        let phones = known_phones(org, config, total).await?;
        let (loaded, _, _, _) = reader.read_all(phones, None, Box::new(())).await?;
        Ok(loaded.err().map(|problems| {
            problems
                .first()
                .map(|p| p.message.clone())
                .unwrap_or_default()
        }))
    }
}

fn whole(planned: Option<RunRecord>) -> Result<RunRecord, SyncError> {
    // Only a sieve's rows can ask for the whole file, and there were none.
    planned.ok_or(SyncError::Store(StoreError::Database))
}

/// A kept file's bytes written to a private temporary file.
fn spool_kept_file(content: &[u8]) -> Result<tempfile::NamedTempFile, SyncError> {
    use std::io::Write;
    let io = |source| SyncError::File {
        path: "a temporary file".into(),
        source,
    };
    let mut spool = tempfile::NamedTempFile::new().map_err(io)?;
    spool.write_all(content).map_err(io)?;
    spool.flush().map_err(io)?;
    Ok(spool)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

impl Format {
    fn of(file_name: &str) -> Option<Format> {
        let extension = Path::new(file_name)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase());
        match extension.as_deref() {
            Some("csv") => Some(Format::Csv),
            Some("xlsx") => Some(Format::Xlsx),
            _ => None,
        }
    }
}

/// Everything needed to read one run's file, on a blocking thread.
#[derive(Clone)]
struct Reader {
    path: std::path::PathBuf,
    format: Format,
    mapping: Arc<Mapping>,
    options: ReadOptions,
    limits: rollcall_hrfile::Limits,
    total: u64,
}

type Loaded = Result<Vec<BatchItem>, Vec<FileProblem>>;

impl Reader {
    fn new(
        file: FileInput<'_>,
        format: Format,
        mapping: Mapping,
        config: &SourceConfig,
        limits: rollcall_hrfile::Limits,
        total: u64,
    ) -> Reader {
        Reader {
            path: file.path.to_owned(),
            format,
            mapping: Arc::new(mapping),
            options: ReadOptions {
                phone_region: config.phone_region,
            },
            limits,
            total,
        }
    }

    /// Read the whole file into records (the rows `sieve` takes aside), off the async
    /// runtime, with its SHA-256.
    async fn read_all(
        self,
        mut phones: PhoneCache,
        sieve: Option<Sieve>,
        mut progress: Box<dyn RunProgress>,
    ) -> Result<(Loaded, String, Option<Sieve>, Box<dyn RunProgress>), SyncError> {
        tokio::task::spawn_blocking(move || {
            let mut sieve = sieve;
            let mut items = Vec::new();
            let (loaded, sha) =
                self.read_into(&mut phones, sieve.as_mut(), &mut *progress, &mut |item| {
                    items.push(item);
                    true
                });
            (loaded.map(|()| items), sha, sieve, progress)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a file reader's thread failed");
            SyncError::Store(StoreError::Database)
        })
    }

    /// Read the file, handing each record to `sink` (reading stops when it returns false),
    /// hashing it on the way. Blocking.
    fn read_into(
        &self,
        phones: &mut PhoneCache,
        sieve: Option<&mut Sieve>,
        progress: &mut dyn RunProgress,
        sink: &mut dyn FnMut(BatchItem) -> bool,
    ) -> (Result<(), Vec<FileProblem>>, String) {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) => {
                let problem =
                    FileProblem::new(None, format!("The file could not be read: {e}"), "");
                return (Err(vec![problem]), String::new());
            }
        };
        let bytes = Arc::new(AtomicU64::new(0));
        let mut tap = Tap {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: bytes.clone(),
        };
        let on_row = |rows: u64| {
            if rows.is_multiple_of(1000) {
                progress.read(rows, bytes.load(Ordering::Relaxed));
            }
        };
        let limits = self.limits;
        let loaded = match self.format {
            Format::Xlsx => {
                // A workbook is a zip archive, read whole (the reader checks the byte limit
                // again) and then streamed row by row.
                let mut data = Vec::with_capacity(usize::try_from(self.total).unwrap_or(0));
                match (&mut tap)
                    .take(limits.max_bytes.saturating_add(1))
                    .read_to_end(&mut data)
                {
                    Ok(_) => rollcall_hrfile::xlsxfile::read_xlsx_into(
                        &data,
                        &self.mapping,
                        &self.options,
                        phones,
                        sieve,
                        limits,
                        on_row,
                        sink,
                    ),
                    Err(e) => Err(vec![FileProblem::new(
                        None,
                        format!("The file could not be read: {e}"),
                        "",
                    )]),
                }
            }
            Format::Csv => rollcall_hrfile::csvfile::read_csv_into(
                &mut tap,
                &self.mapping,
                &self.options,
                phones,
                sieve,
                limits,
                on_row,
                sink,
            ),
        };
        progress.done();
        (loaded, hex::encode(tap.hasher.finalize()))
    }
}

/// Counts bytes and hashes the file as the reader consumes it.
struct Tap<R> {
    inner: R,
    hasher: Sha256,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A phone cache for reading a file of `bytes` bytes for `config`: it knows the numbers the
/// configuration's users hold, unless the file is small (a few hundred rows validate faster
/// than those numbers load).
async fn known_phones(
    org: &OrgStore,
    config: &SourceConfig,
    bytes: u64,
) -> Result<PhoneCache, StoreError> {
    const SMALL_FILE: u64 = 64 * 1024;
    let mut phones = PhoneCache::new();
    if bytes >= SMALL_FILE {
        org.known_phones(&config.id, &mut phones).await?;
    }
    Ok(phones)
}

/// A sieve for reading a file of `bytes` bytes for `config`, when it pays: it holds every
/// user the configuration manages, which a file with a small part of them does not need (a
/// row is 100 to 200 bytes; the sieve is used when the file may hold a tenth of the users).
async fn sieve_for(
    org: &OrgStore,
    config: &SourceConfig,
    bytes: u64,
) -> Result<Option<Sieve>, StoreError> {
    let Some(mut sieve) = config
        .mapping
        .as_ref()
        .and_then(|m| Sieve::new(m, &config.id))
    else {
        return Ok(None);
    };
    let managed = org.managed_count(&config.id).await?;
    if managed == 0 || bytes < managed.saturating_mul(20) {
        return Ok(None);
    }
    sieve.reserve(usize::try_from(managed).unwrap_or(0));
    org.fill_sieve(&config.id, &mut sieve).await?;
    Ok(Some(sieve))
}

/// Keep the file of a run the threshold blocked, so an approval applies exactly it. The
/// file is read again and must be the one the run hashed.
async fn keep_blocked_file(
    org: &OrgStore,
    run: &RunRecord,
    file: FileInput<'_>,
) -> Result<(), SyncError> {
    let content = std::fs::read(file.path).map_err(|source| SyncError::File {
        path: file.path.display().to_string(),
        source,
    })?;
    if run.file_sha256.as_deref() != Some(hex::encode(Sha256::digest(&content)).as_str()) {
        // The run stays blocked, with no file to approve.
        return Err(SyncError::File {
            path: file.path.display().to_string(),
            source: std::io::Error::other("the file changed while it was synced: sync it again"),
        });
    }
    Ok(org.save_run_file(&run.id, file.name, content).await?)
}

fn unsupported_file(file_name: &str) -> FileProblem {
    FileProblem::new(
        None,
        format!(
            "'{file_name}' is neither a .csv nor a .xlsx file: save the HR export as CSV (UTF-8, comma-separated) or as an Excel workbook (.xlsx)"
        ),
        format!("file={file_name}"),
    )
}

fn stored_file_differs(expected: &str) -> FileProblem {
    FileProblem::new(
        None,
        "the stored file does not match the upload (SHA-256 differs): upload it again",
        format!("expected={expected}"),
    )
}

fn file_changed() -> LogRow {
    LogRow::load_failed("The file changed while it was synced: sync it again")
}
