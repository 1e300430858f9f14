//! The first file run of an organisation with no users, planned and applied chunk by chunk.
//!
//! A first sync brings the whole workforce at once (a million rows for a large customer).
//! Planned as one batch it held every record, planned user and log row together: gigabytes.
//! Here the reader hands over chunks of [`CHUNK_ROWS`] records from a thread of its own (so
//! libphonenumber, which serialises its checks, runs beside the planner), and each chunk is
//! planned, written into one open transaction and dropped.
//!
//! With no stored user, a chunk depends on the rest of the file in two ways only, and both
//! are handled so that the result is what planning the whole file would give:
//! - **a key repeated in another chunk** (a duplicate): every key of every row is kept as a
//!   64-bit fingerprint; a chunk that repeats an earlier chunk's key ends the chunked run
//!   (rolled back), and the caller plans the whole file, whose duplicate check names every
//!   row. A fingerprint collision costs only that fallback.
//! - **a manager named by a later row**: the record keeps no manager for now and is
//!   remembered; once every chunk is written, the managers are looked up among the users
//!   just written, set, and the record's log row rewritten (or given its Manager not found
//!   warning). A reporting loop, anywhere, also falls back to whole-file planning, which
//!   decides which assignments to undo.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use rollcall_domain::plan::PlannedRecord;
use rollcall_domain::plan::{self, Context, Options};
use rollcall_domain::record::{BatchItem, ManagerRef};
use rollcall_domain::run::Counts;
use rollcall_domain::values::ExternalId;
use rollcall_domain::{FieldKey, UserId};
use rollcall_store::{InitialRun, StoreError};

use crate::SyncError;

/// Records per chunk: large enough that per-chunk lookups are few, small enough that a
/// chunk's records and plan stay a few tens of megabytes.
pub const CHUNK_ROWS: usize = 10_000;

/// Files smaller than this are planned whole even on a first sync. They fit in memory (a
/// whole-file plan costs about 6 KB a row: 8 MiB of CSV, some 40,000 rows, stay near 250
/// MB), and a chunked run holds the database's write lock from its first chunk to its
/// commit, which keeps other configurations' runs and SCIM writes waiting meanwhile.
pub const MIN_BYTES: u64 = 8 << 20;

/// A fingerprint is already a uniform hash: the set uses it as its own hash.
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The keys of the chunks written so far, as keyed 64-bit fingerprints (random per run, so a
/// file cannot be made to collide on purpose).
struct Seen {
    hasher: std::collections::hash_map::RandomState,
    keys: HashSet<u64, BuildHasherDefault<AsIs>>,
}

impl Seen {
    fn fingerprint(&self, key: usize, value: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_usize(key);
        h.write(value.as_bytes());
        h.finish()
    }
}

/// External IDs are key 0 of [`plan::item_keys`].
const EXTERNAL_ID_KEY: usize = 0;

/// A record whose manager a later chunk may hold.
struct Pending {
    /// Its log row.
    seq: i64,
    record: PlannedRecord,
    manager: ExternalId,
}

/// A run whose chunks are all written: [`Applied::finish`] commits it.
pub struct Applied {
    run: InitialRun,
    counts: Counts,
}

impl Applied {
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Record the run's status, counts and file hash, and commit everything.
    pub fn finish(self, sha256: &str) -> Result<(), SyncError> {
        let status = self.counts.completed_status();
        self.run.finish(status, &self.counts, sha256)?;
        Ok(())
    }
}

/// Plan and write `chunks` (a file's records in order) into `run`; each chunk, once planned,
/// is handed to `done` to be freed (plans are freed here: freeing them on another thread
/// made this one slower). `None` when the file must be planned whole instead: nothing is
/// kept (the run rolls back when dropped). Blocking.
pub fn apply_chunks(
    mut run: InitialRun,
    options: &Options,
    chunks: impl Iterator<Item = Vec<BatchItem>>,
    mut done: impl FnMut(Vec<BatchItem>),
) -> Result<Option<Applied>, SyncError> {
    let mut seen = Seen {
        hasher: std::collections::hash_map::RandomState::new(),
        keys: HashSet::default(),
    };
    let mut counts = Counts::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut new_id = || UserId::new(rollcall_store::new_id());
    // Where the time goes (debug log): waiting for the reader, lookups, planning, writing.
    let mut spent = [std::time::Duration::ZERO; 4];
    let mut mark = std::time::Instant::now();
    for chunk in chunks {
        let mut lap = |i: usize| {
            let now = std::time::Instant::now();
            spent[i] += now - mark;
            mark = now;
        };
        lap(0);
        // Keys of earlier chunks: a repeat is a duplicate for the whole-file check.
        let mut fingerprints = Vec::with_capacity(chunk.len() * 4);
        for item in &chunk {
            plan::item_keys(item, |key, value| {
                fingerprints.push(seen.fingerprint(key, value))
            });
        }
        if fingerprints.iter().any(|f| seen.keys.contains(f)) {
            tracing::debug!("a key repeats one of an earlier chunk; planning the whole file");
            return Ok(None);
        }
        // Managers written by earlier chunks, and whom they report to.
        let mut managers: Vec<String> = chunk
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .filter(|r| r.provided.contains(FieldKey::Manager))
            .filter_map(|r| match &r.manager {
                Some(ManagerRef::ExternalId(ext)) => Some(ext.as_str()),
                _ => None,
            })
            .filter(|ext| seen.keys.contains(&seen.fingerprint(EXTERNAL_ID_KEY, ext)))
            .map(str::to_owned)
            .collect();
        managers.sort_unstable();
        managers.dedup();
        seen.keys.extend(fingerprints);
        let mut ctx = Context {
            users: run.users_by_external_id(managers)?,
            ..Context::default()
        };
        if run.other_orgs() {
            let keys = plan::BatchKeys::of(&chunk);
            let emails: Vec<&str> = keys.emails.iter().map(String::as_str).collect();
            let phones: Vec<&str> = keys.phones.iter().map(String::as_str).collect();
            ctx.foreign_emails = run.foreign(false, &emails)?;
            ctx.foreign_phones = run.foreign(true, &phones)?;
        }
        lap(1);
        let planned = plan::plan_chunk(&chunk, &ctx, options, &mut new_id);
        drop(ctx);
        done(chunk);
        lap(2);
        if planned.loops || planned.plan.counts.deactivated > 0 {
            tracing::debug!("a reporting loop; planning the whole file");
            return Ok(None);
        }
        let first = match run.apply(&planned.plan) {
            Ok(first) => first,
            // Something the fingerprints did not see (they cannot miss a repeat within the
            // file): the whole-file planner reports it properly.
            Err(StoreError::Conflict(what)) => {
                tracing::info!(conflict = %what, "a chunk conflicts; planning the whole file");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        lap(3);
        add_counts(&mut counts, &planned.plan.counts);
        // Deferred records come in plan order.
        let mut deferred = planned.deferred.into_iter().peekable();
        for (i, mut record) in planned.plan.records.into_iter().enumerate() {
            if let Some((_, manager)) = deferred.next_if(|(k, _)| *k == i) {
                record.write = None;
                pending.push(Pending {
                    seq: first + i as i64,
                    record,
                    manager,
                });
            }
        }
    }
    let [reading, lookups, planning, writing] = spent;
    tracing::debug!(
        ?reading,
        ?lookups,
        ?planning,
        ?writing,
        pending = pending.len(),
        "chunks written"
    );
    if !resolve_pending(&mut run, &mut counts, pending)? {
        return Ok(None);
    }
    Ok(Some(Applied { run, counts }))
}

/// Set the managers that later chunks held; `false` when one would close a reporting loop.
fn resolve_pending(
    run: &mut InitialRun,
    counts: &mut Counts,
    pending: Vec<Pending>,
) -> Result<bool, SyncError> {
    if pending.is_empty() {
        return Ok(true);
    }
    let mut wanted: Vec<String> = pending
        .iter()
        .map(|p| p.manager.as_str().to_owned())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let found: HashMap<String, UserId> = run
        .users_by_external_id(wanted)?
        .into_iter()
        .filter_map(|u| {
            let ext = u.profile.external_id?.as_str().to_owned();
            Some((ext, u.id))
        })
        .collect();
    // Managers as written so far, read once each.
    let mut manager_of: HashMap<UserId, Option<UserId>> = HashMap::new();
    for Pending {
        seq,
        mut record,
        manager,
    } in pending
    {
        let Some(user) = record.user_id.clone() else {
            continue;
        };
        match found.get(manager.as_str()) {
            Some(manager_id) => {
                // Up the new manager's chain: reaching the record's user closes a loop.
                let mut at = Some(manager_id.clone());
                let mut steps = 0;
                while let Some(node) = at {
                    if node == user || steps > 10_000 {
                        return Ok(false);
                    }
                    steps += 1;
                    at = match manager_of.get(&node) {
                        Some(m) => m.clone(),
                        None => {
                            let m = run.manager_of(node.as_str())?;
                            manager_of.insert(node, m.clone());
                            m
                        }
                    };
                }
                run.set_manager(&user, manager_id)?;
                manager_of.insert(user, Some(manager_id.clone()));
                record.changed_fields = plan::with_manager_changed(&record.changed_fields);
            }
            None => {
                if record.warnings.is_empty() {
                    counts.warnings += 1;
                }
                record
                    .warnings
                    .push(plan::manager_not_found(manager.as_str()));
            }
        }
        run.update_log(seq, &record.log_row())?;
    }
    Ok(true)
}

fn add_counts(total: &mut Counts, more: &Counts) {
    total.created += more.created;
    total.updated += more.updated;
    total.deactivated += more.deactivated;
    total.reactivated += more.reactivated;
    total.unchanged += more.unchanged;
    total.skipped += more.skipped;
    total.failed += more.failed;
    total.warnings += more.warnings;
    total.ignored_inactive += more.ignored_inactive;
}
