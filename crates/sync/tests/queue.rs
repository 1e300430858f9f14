//! The run queue on both backends: stored uploads, claims one at a time per configuration in
//! upload order, leases, restarts, cancellation and the purge of old files.

use std::time::Duration;

use rollcall_domain::config::ConfigKind;
use rollcall_domain::{LogRow, RunStatus};
use rollcall_store::{Finish, NewRun, OrgStore, SourceConfig, Store, StoreError};

#[macro_use]
mod support;
use support::{TestDb, mapping, new_config, postgres, sqlite};

const LEASE: Duration = Duration::from_secs(60);

fn upload(config: &SourceConfig, name: &str) -> NewRun {
    NewRun {
        config_id: config.id.clone(),
        connector: "SFTP Sync".into(),
        trigger: rollcall_domain::Trigger::Sftp,
        file_name: Some(name.into()),
        file_sha256: None,
        dry_run: false,
    }
}

async fn two_configs(store: &Store) -> (OrgStore, SourceConfig, SourceConfig) {
    let org = store.create_org("tests", "Acme", true).await.unwrap();
    let org = store.org(org.id);
    let a = org
        .create_config(
            "tests",
            new_config("Payroll A", ConfigKind::Sftp, Some(mapping())),
        )
        .await
        .unwrap();
    let b = org
        .create_config(
            "tests",
            new_config("Payroll B", ConfigKind::Sftp, Some(mapping())),
        )
        .await
        .unwrap();
    (org, a, b)
}

async fn enqueue(org: &OrgStore, config: &SourceConfig, name: &str, content: &[u8]) -> String {
    org.enqueue_upload(&upload(config, name), content)
        .await
        .unwrap()
        .id
        .to_string()
}

/// End a claimed run (as a load failure: the queue does not care how a run ends).
async fn end(org: &OrgStore, run: &rollcall_store::RunRecord) {
    let problem = [LogRow::load_failed("test")];
    org.finish_run(&run.id, Finish::DataLoadFailed(&problem))
        .await
        .unwrap();
}

on_both!(
    uploads_are_stored_whole_and_claimed_in_order_one_per_configuration,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, a, b) = two_configs(&store).await;
        // Larger than two chunks, so the file is stored and read back in pieces.
        let big: Vec<u8> = (0..(2 * rollcall_store::CHUNK_BYTES + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let a1 = enqueue(&org, &a, "first.csv", &big).await;
        let a2 = enqueue(&org, &a, "second.csv", b"Id\n2\n").await;
        let b1 = enqueue(&org, &b, "other.csv", b"").await;

        let queued = org.queued_files(&a.id).await.unwrap();
        assert_eq!(
            queued.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["first.csv", "second.csv"]
        );
        assert_eq!(queued[0].size, big.len() as u64);
        assert!(org.queued_files(&b.id).await.unwrap().len() == 1);

        let first = store
            .claim_next_run("node-1", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.run.id.as_str(), a1);
        assert_eq!(first.run.status, RunStatus::InProgress);
        let mut copy = Vec::new();
        assert!(org.copy_run_file(&first.run.id, &mut copy).await.unwrap());
        assert!(copy == big, "the stored file is the upload, byte for byte");
        use sha2::Digest;
        assert_eq!(
            first.run.file_sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(&big)).as_str())
        );

        // A's next upload waits for A's run; B's runs beside it.
        let second = store
            .claim_next_run("node-2", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.run.id.as_str(), b1);
        let mut empty = Vec::new();
        assert!(org.copy_run_file(&second.run.id, &mut empty).await.unwrap());
        assert!(empty.is_empty());
        assert!(
            store
                .claim_next_run("node-2", LEASE)
                .await
                .unwrap()
                .is_none()
        );

        end(&org, &first.run).await;
        let third = store
            .claim_next_run("node-2", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.run.id.as_str(), a2);
        end(&org, &second.run).await;
        end(&org, &third.run).await;
        assert!(
            store
                .claim_next_run("node-1", LEASE)
                .await
                .unwrap()
                .is_none()
        );
        assert!(org.queued_files(&a.id).await.unwrap().is_empty());
    }
);

on_both!(
    concurrent_claims_never_take_one_configuration_twice,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let other = Store::open(&db.url).await.unwrap();
        let (org, a, b) = two_configs(&store).await;
        for n in 0..3 {
            enqueue(&org, &a, &format!("a{n}.csv"), b"x").await;
            enqueue(&org, &b, &format!("b{n}.csv"), b"x").await;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8 {
            let s = if n % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tasks.spawn(async move { s.claim_next_run(&format!("node-{n}"), LEASE).await });
        }
        let mut claimed = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Some(claim) = result.unwrap().unwrap() {
                claimed.push(claim.run);
            }
        }
        let mut configs: Vec<_> = claimed.iter().map(|r| r.config_id.clone()).collect();
        configs.sort();
        configs.dedup();
        assert_eq!(claimed.len(), 2, "one run per configuration: {claimed:?}");
        assert_eq!(configs.len(), 2);
        for run in &claimed {
            assert!(
                run.file_name.as_deref().unwrap().ends_with("0.csv"),
                "oldest first"
            );
        }
    }
);

on_both!(
    a_lost_lease_or_a_restart_brings_the_run_back_and_it_ends_once,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, a, _) = two_configs(&store).await;
        let id = enqueue(&org, &a, "staff.csv", b"Id\n1\n").await;

        // A node that stops and starts again takes its runs back at once.
        let claim = store
            .claim_next_run("node-1", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.run.attempts, 1);
        assert_eq!(store.requeue_runs_of("node-2").await.unwrap(), 0);
        assert_eq!(store.requeue_runs_of("node-1").await.unwrap(), 1);
        assert_eq!(
            org.run(&claim.run.id).await.unwrap().status,
            RunStatus::Queued
        );

        // A node that dies: its lease runs out and another node takes the run.
        let stale = store
            .claim_next_run("node-1", Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let taken = store
            .claim_next_run("node-2", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.run.id.as_str(), id);
        // Each taking counts: the runner gives a run up after too many (MAX_ATTEMPTS).
        assert_eq!((stale.run.attempts, taken.run.attempts), (2, 3));
        assert!(
            !store
                .renew_lease(&stale.run.id, "node-1", LEASE)
                .await
                .unwrap()
        );
        assert!(
            store
                .renew_lease(&taken.run.id, "node-2", LEASE)
                .await
                .unwrap()
        );

        // Both finish: exactly one ending is kept.
        end(&org, &taken.run).await;
        let problem = [LogRow::load_failed("late")];
        let late = org
            .finish_run(&stale.run.id, Finish::DataLoadFailed(&problem))
            .await;
        assert!(matches!(late, Err(StoreError::NotFound(_))));
        let logs = org.run_logs(&taken.run.id).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "test");
    }
);

on_both!(
    only_a_queued_run_can_be_cancelled,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, a, b) = two_configs(&store).await;
        let queued = enqueue(&org, &a, "staff.csv", b"x").await;
        let cancelled = org
            .cancel_run(&rollcall_domain::RunId::new(queued.clone()))
            .await
            .unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        assert!(cancelled.ended_at.is_some());
        assert!(store.claim_next_run("node", LEASE).await.unwrap().is_none());

        enqueue(&org, &b, "other.csv", b"x").await;
        let running = store.claim_next_run("node", LEASE).await.unwrap().unwrap();
        match org.cancel_run(&running.run.id).await {
            Err(refused @ StoreError::RunStatus { found, .. }) => {
                assert_eq!(found, RunStatus::InProgress);
                assert_eq!(
                    refused.to_string(),
                    "the run is In Progress: only a queued run can be cancelled"
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Another organisation cannot see, let alone cancel, the run.
        let intruder = store.create_org("tests", "Intruder", true).await.unwrap();
        assert!(matches!(
            store.org(intruder.id).cancel_run(&running.run.id).await,
            Err(StoreError::NotFound(_))
        ));
    }
);

on_both!(
    files_are_purged_after_their_retention,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, a, _) = two_configs(&store).await;
        enqueue(&org, &a, "staff.csv", b"Id\n1\n").await;
        let claim = store.claim_next_run("node", LEASE).await.unwrap().unwrap();
        // Runs still queued or in progress keep their files whatever their age.
        assert_eq!(store.purge_run_files(i64::MAX).await.unwrap(), 0);
        end(&org, &claim.run).await;
        let ended = org.run(&claim.run.id).await.unwrap().ended_at.unwrap();
        assert_eq!(
            store
                .purge_run_files(ended.timestamp_millis())
                .await
                .unwrap(),
            0,
            "not yet past the retention"
        );
        assert_eq!(
            store
                .purge_run_files(ended.timestamp_millis() + 1)
                .await
                .unwrap(),
            1
        );
        let mut copy = Vec::new();
        assert!(!org.copy_run_file(&claim.run.id, &mut copy).await.unwrap());
        assert!(org.run_file(&claim.run.id).await.unwrap().is_none());
    }
);
