//! A first sync planned chunk by chunk (`rollcall_sync::initial`) must end exactly as the
//! same file planned whole: the same log rows, counts and users. These tests run a file
//! both ways, on two fresh SQLite databases, with chunks small enough that managers, keys
//! and failures fall in different chunks; and check that what chunks cannot decide falls
//! back to whole-file planning with nothing applied.

use std::collections::BTreeMap;

use rollcall_domain::record::BatchItem;
use rollcall_domain::{FieldKey, LogRow, RunStatus};
use rollcall_store::{OrgStore, RunRecord, SourceConfig, Store};
use rollcall_sync::stages::{Chunked, run_batch, run_chunked_sized, start_run};

#[macro_use]
mod support;
use support::{meta, row, setup, sqlite};

/// 60 people in a reporting tree whose order in the file is shuffled (managers come before
/// and after their reports), with a manager nobody has, an invalid email, two rows sharing
/// an email, and an inactive leaver nobody knows.
fn people() -> Vec<BatchItem> {
    const N: u64 = 60;
    // Rank r reports to rank r / 2 (rank 0 is the top); the file lists ranks shuffled.
    let rank = |i: u64| (i * 37 + 11) % N;
    let by_rank: BTreeMap<u64, u64> = (0..N).map(|i| (rank(i), i)).collect();
    (0..N)
        .map(|i| {
            let id = format!("E{i}");
            let email = format!("person{i}@acme.example");
            let manager = match rank(i) {
                0 => String::new(),
                r => format!("E{}", by_rank[&(r / 2)]),
            };
            let mut extra = vec![
                (FieldKey::Email, email.as_str()),
                (FieldKey::Manager, manager.as_str()),
                (FieldKey::JobTitle, "Engineer"),
            ];
            match i {
                13 => extra[1] = (FieldKey::Manager, "NOBODY"),
                21 => extra[0] = (FieldKey::Email, "not an email"),
                // Rows 30 and 31 (one chunk when chunks are 7 rows: 28..35) share an email.
                31 => extra[0] = (FieldKey::Email, "person30@acme.example"),
                44 => extra.push((FieldKey::Active, "false")),
                _ => {}
            }
            let extra: Vec<(FieldKey, &str)> = extra;
            row(i + 2, &id, &extra)
        })
        .collect()
}

/// Run `batch` chunk by chunk as a file reader would hand it over.
async fn chunked(
    org: &OrgStore,
    config: &SourceConfig,
    batch: Vec<BatchItem>,
    size: usize,
    fails: bool,
) -> (rollcall_domain::RunId, Chunked) {
    let run_id = start_run(org, config, &meta()).await.unwrap();
    let read = move |sink: &mut dyn FnMut(BatchItem) -> bool| {
        for item in batch {
            if !sink(item) {
                break;
            }
        }
        let loaded = if fails {
            Err(vec![LogRow::load_failed("Line 99 is not valid UTF-8")])
        } else {
            Ok(())
        };
        (loaded, "ab".repeat(32))
    };
    let outcome = run_chunked_sized(org, config, &run_id, false, size, read)
        .await
        .unwrap();
    (run_id, outcome)
}

/// What a run left: its record, its log and its users by external ID (with their manager's
/// external ID instead of the manager's random id).
async fn outcome(
    org: &OrgStore,
    run: &RunRecord,
) -> (RunStatus, [u64; 9], Vec<LogRow>, BTreeMap<String, String>) {
    let c = &run.counts;
    let counts = [
        c.created,
        c.updated,
        c.deactivated,
        c.reactivated,
        c.unchanged,
        c.skipped,
        c.warnings,
        c.failed,
        c.ignored_inactive,
    ];
    let logs = org.run_logs(&run.id).await.unwrap();
    let users = org.users(0, 10_000).await.unwrap();
    let ext_of: BTreeMap<String, String> = users
        .iter()
        .map(|u| {
            let ext = u
                .profile
                .external_id
                .as_ref()
                .map(|e| e.as_str().to_owned());
            (u.id.as_str().to_owned(), ext.unwrap_or_default())
        })
        .collect();
    let users = users
        .iter()
        .map(|u| {
            let manager = u.manager_id.as_ref().map(|m| ext_of[m.as_str()].clone());
            let mut profile = u.profile.clone();
            let ext = profile.external_id.take().map(|e| e.as_str().to_owned());
            (
                ext.unwrap_or_default(),
                format!(
                    "{profile:?} active={} manager={manager:?} version={} managed={}",
                    u.active,
                    u.version,
                    u.managed_by.is_some()
                ),
            )
        })
        .collect();
    (run.status, counts, logs, users)
}

async fn whole(
    batch: &[BatchItem],
) -> (RunStatus, [u64; 9], Vec<LogRow>, BTreeMap<String, String>) {
    let db = sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    let run = run_batch(&org, &config, &meta(), batch).await.unwrap();
    outcome(&org, &run).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_end_as_the_whole_file_would() {
    let expected = whole(&people()).await;
    assert_eq!(expected.0, RunStatus::NeedsAttention);
    // The file's problems are all there to compare: a warning, failures, an ignored leaver.
    assert!(
        expected.1[6] >= 1 && expected.1[8] >= 1 && expected.1[7] >= 1,
        "{:?}",
        expected.1
    );
    // Chunks of 7 and 20 keep the two rows sharing an email together; of 1, they are apart,
    // which is the fallback of the next test.
    for size in [7, 20, 1000] {
        let db = sqlite().await;
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let (run_id, done) = chunked(&org, &config, people(), size, false).await;
        let Chunked::Done(run) = done else {
            panic!("chunks of {size}: fell back to the whole file");
        };
        assert_eq!(run.id, run_id);
        assert_eq!(run.file_sha256.as_deref(), Some("ab".repeat(32).as_str()));
        let got = outcome(&org, &run).await;
        assert_eq!(got.0, expected.0, "status, chunks of {size}");
        assert_eq!(got.1, expected.1, "counts, chunks of {size}");
        for (a, b) in got.2.iter().zip(&expected.2) {
            assert_eq!(a, b, "log row, chunks of {size}");
        }
        assert_eq!(got.2.len(), expected.2.len(), "log rows, chunks of {size}");
        assert_eq!(got.3, expected.3, "users, chunks of {size}");
    }
}

/// Nothing was applied: no user, no log row, the run still In Progress (the caller plans the
/// whole file next).
async fn nothing_applied(org: &OrgStore, run_id: &rollcall_domain::RunId) {
    assert!(org.users(0, 10).await.unwrap().is_empty());
    assert!(org.run_logs(run_id).await.unwrap().is_empty());
    assert_eq!(org.run(run_id).await.unwrap().status, RunStatus::InProgress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_repeated_in_a_later_chunk_falls_back_to_the_whole_file() {
    let db = sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    let mut batch = people();
    // Row 50 repeats row 3's external ID (and so its username): a duplicate the whole-file
    // check must report on both rows.
    batch[50] = row(52, "E1", &[]);
    let (run_id, done) = chunked(&org, &config, batch.clone(), 7, false).await;
    assert!(matches!(done, Chunked::Whole), "{done:?}");
    nothing_applied(&org, &run_id).await;
    // And the whole-file path finishes the same run.
    let run = rollcall_sync::stages::finish_started(&org, &config, &run_id, false, &batch)
        .await
        .unwrap();
    let logs = org.run_logs(&run.id).await.unwrap();
    let duplicate = |l: &&LogRow| l.message.starts_with("Duplicate External ID in rows 3, 52");
    assert_eq!(logs.iter().filter(duplicate).count(), 2, "{logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporting_loop_across_chunks_falls_back_to_the_whole_file() {
    let db = sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    // A reports to B (a later chunk), B to C, C to A.
    let batch = vec![
        row(2, "A", &[(FieldKey::Manager, "B")]),
        row(3, "X", &[]),
        row(4, "B", &[(FieldKey::Manager, "C")]),
        row(5, "Y", &[]),
        row(6, "C", &[(FieldKey::Manager, "A")]),
    ];
    let (run_id, done) = chunked(&org, &config, batch, 2, false).await;
    assert!(matches!(done, Chunked::Whole), "{done:?}");
    nothing_applied(&org, &run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_fails_to_load_late_applies_nothing() {
    let db = sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    let (run_id, done) = chunked(&org, &config, people(), 7, true).await;
    let Chunked::Done(run) = done else {
        panic!("a load failure is recorded, not planned again");
    };
    assert_eq!(run.id, run_id);
    assert_eq!(run.status, RunStatus::DataLoadFailed);
    assert!(org.users(0, 10).await.unwrap().is_empty());
    let logs = org.run_logs(&run_id).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "Line 99 is not valid UTF-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_with_users_is_planned_whole() {
    let db = sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    run_batch(&org, &config, &meta(), &[row(2, "E0", &[])])
        .await
        .unwrap();
    let (run_id, done) = chunked(&org, &config, people(), 7, false).await;
    assert!(matches!(done, Chunked::Whole), "{done:?}");
    assert_eq!(
        org.run(&run_id).await.unwrap().status,
        RunStatus::InProgress
    );
    assert_eq!(org.users(0, 10).await.unwrap().len(), 1);
}
