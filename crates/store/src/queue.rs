//! The run queue: uploaded files stored in the database, queued runs claimed by workers one at a
//! time per configuration, leases that bring back the runs of a node that died, cancellation
//! and the purge of processed files.
//!
//! A worker claims a run by moving it from Queued to In Progress with its node id and a lease
//! (a time until which the claim holds); it renews the lease while it works. A run whose lease
//! ran out, or that a restarted node held before it stopped, is queued again. Since a run's
//! apply is one transaction, running it again applies it exactly once.

use std::time::Duration;

use rollcall_domain::{ConfigId, RunId, RunStatus};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::db::{Arg, get, query};
use crate::runs::{NewRun, RUN_COLUMNS, RunRecord, run_from_row};
use crate::{OrgStore, Result, Store, StoreError, new_id};

/// Bytes per stored chunk of a file.
pub const CHUNK_BYTES: usize = 4 << 20;

/// A file in a configuration's drop folder: an upload waiting for, or going through, its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedFile {
    pub run_id: RunId,
    pub name: String,
    pub size: u64,
    pub queued_at_ms: i64,
    pub status: RunStatus,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn fill(source: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    while buf.len() < CHUNK_BYTES {
        let n = (&mut *source)
            .take((CHUNK_BYTES - buf.len()) as u64)
            .read_to_end(buf)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(())
}

/// What storing an upload can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file could not be read: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OrgStore {
    /// Store an uploaded file and queue a run for it, in one transaction: once this returns,
    /// the file is durable and its run will happen (on this node or another).
    pub async fn enqueue_upload(
        &self,
        run: &NewRun,
        mut source: impl AsyncRead + Unpin,
    ) -> Result<RunRecord, UploadError> {
        let backend = self.store.db.backend;
        let id = new_id();
        let now = self.store.now_ms();
        let mut tx = self
            .store
            .db
            .write
            .begin()
            .await
            .map_err(StoreError::from)?;
        query(backend,
            "INSERT INTO sync_runs (id, org_id, config_id, connector, trigger_kind, file_name, status, dry_run, queued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                id.clone().into(),
                self.org.as_str().into(),
                run.config_id.as_str().into(),
                run.connector.as_str().into(),
                run.trigger.code().into(),
                run.file_name.clone().into(),
                RunStatus::Queued.code().into(),
                run.dry_run.into(),
                now.into(),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;

        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        for seq in 0i64.. {
            fill(&mut source, &mut buf).await?;
            if buf.is_empty() && seq > 0 {
                break;
            }
            hasher.update(&buf);
            size += buf.len() as u64;
            let last = buf.len() < CHUNK_BYTES;
            query(
                backend,
                "INSERT INTO run_file_chunks (run_id, seq, data) VALUES ($1, $2, $3)",
                vec![
                    id.clone().into(),
                    seq.into(),
                    Arg::Blob(std::mem::take(&mut buf)),
                ],
            )
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            buf = Vec::with_capacity(CHUNK_BYTES);
            if last {
                break;
            }
        }
        query(
            backend,
            "UPDATE sync_runs SET file_sha256 = $1, file_size = $2 WHERE id = $3",
            vec![
                hex::encode(hasher.finalize()).into(),
                i64::try_from(size).unwrap_or(i64::MAX).into(),
                id.clone().into(),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(self.run(&RunId::new(id)).await?)
    }

    /// Write a run's stored file to `out`; false when no file is kept for it.
    pub async fn copy_run_file(
        &self,
        run: &RunId,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<bool, UploadError> {
        // Through the run, so another organisation's run id finds nothing.
        let run = self.run(run).await?;
        let mut found = false;
        // One chunk per query: memory stays at one chunk whatever the file's size.
        for seq in 0i64.. {
            let row = query(
                self.store.db.backend,
                "SELECT data FROM run_file_chunks WHERE run_id = $1 AND seq = $2",
                vec![run.id.as_str().into(), seq.into()],
            )
            .fetch_optional(&self.store.db.read)
            .await
            .map_err(StoreError::from)?;
            let Some(row) = row else { break };
            found = true;
            let data: Vec<u8> = get(&row, "data")?;
            out.write_all(&data).await?;
        }
        out.flush().await?;
        Ok(found)
    }

    /// Keep the file a run read (for a run blocked by the deactivation threshold, so that its
    /// approval applies exactly that file).
    pub async fn save_run_file(
        &self,
        run: &RunId,
        file_name: &str,
        content: Vec<u8>,
    ) -> Result<()> {
        let backend = self.store.db.backend;
        let mut tx = self.store.db.write.begin().await?;
        let updated = query(
            backend,
            "UPDATE sync_runs SET file_name = $1, file_size = $2 WHERE id = $3 AND org_id = $4",
            vec![
                file_name.into(),
                i64::try_from(content.len()).unwrap_or(i64::MAX).into(),
                run.as_str().into(),
                self.org.as_str().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("run {run}")));
        }
        let chunks: Vec<&[u8]> = if content.is_empty() {
            vec![&[]]
        } else {
            content.chunks(CHUNK_BYTES).collect()
        };
        for (seq, chunk) in chunks.into_iter().enumerate() {
            query(
                backend,
                "INSERT INTO run_file_chunks (run_id, seq, data) VALUES ($1, $2, $3)",
                vec![
                    run.as_str().into(),
                    i64::try_from(seq).unwrap_or(i64::MAX).into(),
                    Arg::Blob(chunk.to_vec()),
                ],
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The file kept for a run, if any: its name and content.
    pub async fn run_file(&self, run: &RunId) -> Result<Option<(String, Vec<u8>)>> {
        let record = match self.run(run).await {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut content = Vec::new();
        match self.copy_run_file(run, &mut content).await {
            Ok(true) => Ok(Some((record.file_name.unwrap_or_default(), content))),
            Ok(false) => Ok(None),
            Err(UploadError::Store(e)) => Err(e),
            Err(UploadError::Read(_)) => Err(StoreError::Database),
        }
    }

    /// Cancel a queued run: it will not be processed, and its status says Cancelled.
    pub async fn cancel_run(&self, run: &RunId) -> Result<RunRecord> {
        let now = self.store.now_ms();
        let done = query(
            self.store.db.backend,
            "UPDATE sync_runs SET status = $1, ended_at = $2 WHERE id = $3 AND org_id = $4 AND status = $5",
            vec![
                RunStatus::Cancelled.code().into(),
                now.into(),
                run.as_str().into(),
                self.org.as_str().into(),
                RunStatus::Queued.code().into(),
            ],
        )
        .execute(&self.store.db.write)
        .await?;
        let record = self.run(run).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunStatus {
                found: record.status,
                needed: "only a queued run can be cancelled",
            });
        }
        Ok(record)
    }

    /// The files in a configuration's drop folder: uploads whose run is queued or in
    /// progress, oldest first.
    pub async fn queued_files(&self, config: &ConfigId) -> Result<Vec<QueuedFile>> {
        let rows = query(
            self.store.db.backend,
            "SELECT id, file_name, file_size, queued_at, status FROM sync_runs \
             WHERE org_id = $1 AND config_id = $2 AND status IN ($3, $4) AND file_size IS NOT NULL \
             ORDER BY queued_at, id",
            vec![
                self.org.as_str().into(),
                config.as_str().into(),
                RunStatus::Queued.code().into(),
                RunStatus::InProgress.code().into(),
            ],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = get(row, "status")?;
                Ok(QueuedFile {
                    run_id: RunId::new(get::<String>(row, "id")?),
                    name: get::<Option<String>>(row, "file_name")?.unwrap_or_default(),
                    size: u64::try_from(get::<i64>(row, "file_size")?).unwrap_or(0),
                    queued_at_ms: get(row, "queued_at")?,
                    status: RunStatus::from_code(&status).ok_or(StoreError::Database)?,
                })
            })
            .collect()
    }
}

/// A run a worker has claimed.
pub struct Claim {
    pub org: OrgStore,
    pub run: RunRecord,
}

impl Store {
    /// Take the oldest queued run whose configuration has no run in progress, for `node`,
    /// until `lease` from now. Runs whose lease ran out are queued again first.
    pub async fn claim_next_run(&self, node: &str, lease: Duration) -> Result<Option<Claim>> {
        let backend = self.db.backend;
        for _ in 0..8 {
            let now = self.now_ms();
            let mut tx = self.db.write.begin().await?;
            query(
                backend,
                "UPDATE sync_runs SET status = $1, started_at = NULL, claimed_by = NULL, lease_until = NULL \
                 WHERE status = $2 AND lease_until IS NOT NULL AND lease_until < $3",
                vec![
                    RunStatus::Queued.code().into(),
                    RunStatus::InProgress.code().into(),
                    now.into(),
                ],
            )
            .execute(&mut *tx)
            .await?;
            let busy = "SELECT 1 FROM sync_runs b WHERE b.config_id = r.config_id AND b.status = $2 \
                        AND b.lease_until IS NOT NULL";
            let candidate = query(
                backend,
                format!(
                    "SELECT r.id, r.config_id FROM sync_runs r WHERE r.status = $1 AND NOT EXISTS ({busy}) \
                     ORDER BY r.queued_at, r.id LIMIT 1"
                ),
                vec![
                    RunStatus::Queued.code().into(),
                    RunStatus::InProgress.code().into(),
                ],
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some(candidate) = candidate else {
                tx.commit().await?;
                return Ok(None);
            };
            let id: String = get(&candidate, "id")?;
            let config: String = get(&candidate, "config_id")?;
            if backend == crate::Backend::Postgres {
                // Two nodes may pick different runs of one configuration at once: the row lock
                // on the configuration orders them, and the check below sees the other's claim.
                query(
                    backend,
                    "SELECT id FROM source_configs WHERE id = $1 FOR UPDATE",
                    vec![config.clone().into()],
                )
                .fetch_optional(&mut *tx)
                .await?;
                let taken = query(
                    backend,
                    "SELECT 1 AS one FROM sync_runs WHERE config_id = $1 AND status = $2 AND lease_until IS NOT NULL",
                    vec![config.into(), RunStatus::InProgress.code().into()],
                )
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_some() {
                    tx.rollback().await?;
                    continue;
                }
            }
            let claimed = query(
                backend,
                "UPDATE sync_runs SET status = $1, started_at = $2, claimed_by = $3, lease_until = $4, \
                 attempts = attempts + 1 WHERE id = $5 AND status = $6",
                vec![
                    RunStatus::InProgress.code().into(),
                    now.into(),
                    node.into(),
                    now.saturating_add(ms(lease)).into(),
                    id.clone().into(),
                    RunStatus::Queued.code().into(),
                ],
            )
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 0 {
                tx.rollback().await?;
                continue;
            }
            let row = query(
                backend,
                format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id WHERE r.id = $1"
                ),
                vec![id.into()],
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            let run = run_from_row(&row)?;
            return Ok(Some(Claim {
                org: self.org(run.org_id.clone()),
                run,
            }));
        }
        Ok(None)
    }

    /// Extend a claimed run's lease; false when the claim was lost (the run was queued again
    /// and taken by another node, or it ended).
    pub async fn renew_lease(&self, run: &RunId, node: &str, lease: Duration) -> Result<bool> {
        let until = self.now_ms().saturating_add(ms(lease));
        let done = query(
            self.db.backend,
            "UPDATE sync_runs SET lease_until = $1 WHERE id = $2 AND claimed_by = $3 AND status = $4",
            vec![
                until.into(),
                run.as_str().into(),
                node.into(),
                RunStatus::InProgress.code().into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// At start: the runs this node held when it stopped go back to the queue (their apply,
    /// being one transaction, either happened — and then the run is not In Progress — or not).
    pub async fn requeue_runs_of(&self, node: &str) -> Result<u64> {
        let done = query(
            self.db.backend,
            "UPDATE sync_runs SET status = $1, started_at = NULL, claimed_by = NULL, lease_until = NULL \
             WHERE status = $2 AND claimed_by = $3",
            vec![
                RunStatus::Queued.code().into(),
                RunStatus::InProgress.code().into(),
                node.into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Delete the stored files of runs that ended before `ended_before_ms` (the retention
    /// period); returns how many runs' files went.
    pub async fn purge_run_files(&self, ended_before_ms: i64) -> Result<u64> {
        let mut tx = self.db.write.begin().await?;
        let old = "SELECT id FROM sync_runs WHERE ended_at IS NOT NULL AND ended_at < $1 AND file_size IS NOT NULL";
        query(
            self.db.backend,
            format!("DELETE FROM run_file_chunks WHERE run_id IN ({old})"),
            vec![ended_before_ms.into()],
        )
        .execute(&mut *tx)
        .await?;
        let done = query(
            self.db.backend,
            "UPDATE sync_runs SET file_size = NULL WHERE ended_at IS NOT NULL AND ended_at < $1 AND file_size IS NOT NULL",
            vec![ended_before_ms.into()],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
