//! The storage suite: every test runs on SQLite, and on PostgreSQL when
//! `ROLLCALL_TEST_DATABASE_URL` names a server (each test gets a fresh database there).
//! With `ROLLCALL_REQUIRE_ALL=1` (CI), a missing PostgreSQL fails the suite instead of skipping.

use rollcall_domain::config::{ConfigKind, DeactivationThreshold};
use rollcall_domain::field::FieldSet;
use rollcall_domain::plan::{self, BatchKeys, Options};
use rollcall_domain::record::{BatchItem, Incoming, Link, ReadOptions};
use rollcall_domain::values::{Email, Phone, PhoneCache, UserName};
use rollcall_domain::{Action, ErrorType, FieldKey, RunStatus, StoredUser, UserId};
use rollcall_store::{DatabaseUrl, Finish, NewRun, OrgStore, SourceConfig, Store, StoreError};
use rollcall_sync::stages::run_batch;
use sqlx::Connection;

#[macro_use]
mod support;
use support::{TestDb, mapping, meta, new_config, postgres, row, setup, sqlite};

async fn all_users(org: &OrgStore) -> Vec<StoredUser> {
    org.users(0, 10_000).await.unwrap()
}

on_both!(
    a_run_creates_users_and_round_trips_every_field,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let batch = vec![
            row(
                2,
                "1",
                &[
                    (FieldKey::Email, "Jane@Acme.com"),
                    (FieldKey::PhoneMobile, "+44 7495 944376"),
                    (FieldKey::StartEmploymentDate, "2024-02-29"),
                    (FieldKey::Manager, "2"),
                    (FieldKey::JobTitle, "Engineer"),
                ],
            ),
            row(3, "2", &[(FieldKey::Email, "boss@acme.com")]),
        ];
        let run = run_batch(&org, &config, &meta(), &batch).await.unwrap();
        assert_eq!(run.status, RunStatus::Success);
        assert_eq!(run.counts.created, 2);
        assert_eq!(run.connector, "SFTP Sync");
        assert_eq!(run.config_name, "Payroll");

        let users = all_users(&org).await;
        assert_eq!(users.len(), 2);
        let jane = users
            .iter()
            .find(|u| u.profile.external_id.as_ref().unwrap().as_str() == "1")
            .unwrap();
        let boss = users
            .iter()
            .find(|u| u.profile.external_id.as_ref().unwrap().as_str() == "2")
            .unwrap();
        assert_eq!(
            jane.profile.email.as_ref().unwrap().as_str(),
            "Jane@Acme.com"
        );
        assert_eq!(
            jane.profile.phone_mobile.as_ref().unwrap().as_str(),
            "+44 7495 944376"
        );
        assert_eq!(
            jane.profile.phone_mobile.as_ref().unwrap().e164(),
            "+447495944376"
        );
        assert_eq!(
            jane.profile.start_employment_date.unwrap().to_string(),
            "2024-02-29"
        );
        assert_eq!(jane.profile.custom_fields["CostCentre"], "CC-1");
        assert_eq!(jane.profile.job_title.as_deref(), Some("Engineer"));
        assert_eq!(jane.manager_id.as_ref(), Some(&boss.id));
        assert_eq!(jane.managed_by.as_ref(), Some(&config.id));
        assert_eq!(jane.version, 1);

        let logs = org.run_logs(&run.id).await.unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].row, Some(2));
        assert_eq!(logs[0].action, Action::Created);

        // The same batch again: all unchanged, nothing written.
        let again = run_batch(&org, &config, &meta(), &batch).await.unwrap();
        assert_eq!(again.counts.unchanged, 2);
        assert_eq!(again.status, RunStatus::Success);
        assert!(all_users(&org).await.iter().all(|u| u.version == 1));
        assert_eq!(org.runs(10).await.unwrap().len(), 2);
    }
);

on_both!(
    a_partial_file_touches_nobody_else_and_deactivates_leavers,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let batch: Vec<BatchItem> = (1..=20).map(|i| row(i + 1, &i.to_string(), &[])).collect();
        run_batch(&org, &config, &meta(), &batch).await.unwrap();
        let leaver = vec![row(2, "5", &[(FieldKey::Active, "FALSE")])];
        let run = run_batch(&org, &config, &meta(), &leaver).await.unwrap();
        assert_eq!(run.counts.deactivated, 1);
        let users = all_users(&org).await;
        assert_eq!(users.iter().filter(|u| !u.active).count(), 1);
        assert_eq!(users.iter().filter(|u| u.version == 1).count(), 19);
    }
);

on_both!(
    the_deactivation_threshold_blocks_a_mass_deactivation,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, mut config) = setup(&store, "Acme").await;
        let batch: Vec<BatchItem> = (1..=10).map(|i| row(i + 1, &i.to_string(), &[])).collect();
        run_batch(&org, &config, &meta(), &batch).await.unwrap();
        config.deactivation_threshold = Some(DeactivationThreshold::Percent(20));
        let leavers: Vec<BatchItem> = (1..=3)
            .map(|i| row(i + 1, &i.to_string(), &[(FieldKey::Active, "false")]))
            .collect();
        let run = run_batch(&org, &config, &meta(), &leavers).await.unwrap();
        assert_eq!(run.status, RunStatus::AboveDeactivationThreshold);
        assert!(
            all_users(&org).await.iter().all(|u| u.active),
            "nothing applied"
        );
        let two: Vec<BatchItem> = leavers[..2].to_vec();
        let run = run_batch(&org, &config, &meta(), &two).await.unwrap();
        assert_eq!(run.status, RunStatus::Success);
        assert_eq!(
            all_users(&org).await.iter().filter(|u| !u.active).count(),
            2
        );
    }
);

on_both!(a_dry_run_writes_no_user, |db: TestDb| async move {
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    let mut m = meta();
    m.dry_run = true;
    let run = run_batch(&org, &config, &m, &[row(2, "1", &[])])
        .await
        .unwrap();
    assert!(run.dry_run);
    assert_eq!(run.counts.created, 1);
    assert_eq!(
        org.run_logs(&run.id).await.unwrap()[0].action,
        Action::Created
    );
    assert!(all_users(&org).await.is_empty());
});

on_both!(
    a_failed_apply_leaves_nothing_half_done,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let batch = vec![
            row(2, "1", &[]),
            row(3, "2", &[(FieldKey::Email, "late@acme.com")]),
            row(4, "3", &[]),
        ];
        let ctx = org.load_context(&BatchKeys::of(&batch)).await.unwrap();
        let options = Options {
            config: config.id.clone(),
            create_inactive: false,
        };
        let plan = plan::plan(&batch, &ctx, &options, &mut || {
            UserId::new(rollcall_store::new_id())
        });
        assert_eq!(plan.counts.created, 3);
        // Someone takes the email after planning: the database refuses, and the whole run with it.
        let mut other = StoredUser::new(UserId::new(rollcall_store::new_id()));
        other.profile.username = Some(UserName::parse("other").unwrap());
        other.profile.email = Some(Email::parse("LATE@acme.com").unwrap());
        org.insert_unmanaged_user(&other).await.unwrap();
        let run = org
            .start_run(&NewRun {
                config_id: config.id.clone(),
                connector: "SFTP Sync".into(),
                trigger: rollcall_domain::Trigger::Cli,
                file_name: None,
                file_sha256: None,
                dry_run: false,
            })
            .await
            .unwrap();
        let err = org
            .finish_run(&run, Finish::Apply(&plan))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(c) if c.key == rollcall_store::UniqueKey::UserEmail),
            "{err:?}"
        );
        assert_eq!(all_users(&org).await.len(), 1, "only the other user exists");
        assert_eq!(org.run(&run).await.unwrap().status, RunStatus::InProgress);
        assert!(org.run_logs(&run).await.unwrap().is_empty());

        // Through the engine, the run plans again and reports the conflict instead.
        let run = run_batch(&org, &config, &meta(), &batch).await.unwrap();
        assert_eq!(run.status, RunStatus::NeedsAttention);
        assert_eq!(run.counts.created, 2);
        let logs = org.run_logs(&run.id).await.unwrap();
        assert_eq!(logs[1].error_type_codes(), "MATCH_CANDIDATE_CONFLICT");
    }
);

on_both!(a_stale_plan_is_refused, |db: TestDb| async move {
    let store = Store::open(&db.url).await.unwrap();
    let (org, config) = setup(&store, "Acme").await;
    run_batch(&org, &config, &meta(), &[row(2, "1", &[])])
        .await
        .unwrap();
    let update = vec![row(2, "1", &[(FieldKey::JobTitle, "CTO")])];
    let ctx = org.load_context(&BatchKeys::of(&update)).await.unwrap();
    let options = Options {
        config: config.id.clone(),
        create_inactive: false,
    };
    let stale = plan::plan(&update, &ctx, &options, &mut || {
        UserId::new(rollcall_store::new_id())
    });
    assert_eq!(stale.records[0].action, Action::Updated);
    run_batch(
        &org,
        &config,
        &meta(),
        &[row(2, "1", &[(FieldKey::JobTitle, "CEO")])],
    )
    .await
    .unwrap();
    let run = org
        .start_run(&NewRun {
            config_id: config.id.clone(),
            connector: "SFTP Sync".into(),
            trigger: rollcall_domain::Trigger::Cli,
            file_name: None,
            file_sha256: None,
            dry_run: false,
        })
        .await
        .unwrap();
    let err = org
        .finish_run(&run, Finish::Apply(&stale))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleWrite), "{err:?}");
    assert_eq!(
        all_users(&org).await[0].profile.job_title.as_deref(),
        Some("CEO")
    );
});

on_both!(racing_writers_never_both_win, |db: TestDb| async move {
    // Two separate stores (as two nodes or two processes would have), two organisations, and
    // runs that create users with the same emails at the same moment.
    let a_store = Store::open(&db.url).await.unwrap();
    let b_store = Store::open(&db.url).await.unwrap();
    let (a, a_config) = setup(&a_store, "A").await;
    let (b, b_config) = {
        let org = b_store.create_org("tests", "B", true).await.unwrap();
        let org = b_store.org(org.id);
        let mut new = new_config("Payroll", ConfigKind::Sftp, Some(mapping()));
        new.name = "HR".into();
        let config = org.create_config("tests", new).await.unwrap();
        (org, config)
    };
    for round in 0..10 {
        let email = format!("race{round}@acme.com");
        let batch_a = vec![row(
            2,
            &format!("a{round}"),
            &[(FieldKey::Email, email.as_str())],
        )];
        let batch_b = vec![row(
            2,
            &format!("b{round}"),
            &[(FieldKey::Email, email.as_str())],
        )];
        let (ra, rb) = {
            let (a, b, ac, bc) = (a.clone(), b.clone(), a_config.clone(), b_config.clone());
            let ta = tokio::spawn(async move { run_batch(&a, &ac, &meta(), &batch_a).await });
            let tb = tokio::spawn(async move { run_batch(&b, &bc, &meta(), &batch_b).await });
            (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap())
        };
        assert_eq!(
            ra.counts.created + rb.counts.created,
            1,
            "round {round}: exactly one wins"
        );
        let loser = if ra.counts.created == 1 {
            (&b, &rb)
        } else {
            (&a, &ra)
        };
        let logs = loser.0.run_logs(&loser.1.id).await.unwrap();
        assert_eq!(
            logs[0].error_type_codes(),
            "GLOBAL_CONFLICT",
            "round {round}"
        );
        assert_eq!(logs[0].additional_data, format!("email={email}"));
    }
    let total = all_users(&a).await.len() + all_users(&b).await.len();
    assert_eq!(total, 10);

    // Within one organisation, two configurations racing for the same username.
    let other_config = a
        .create_config(
            "tests",
            new_config("Second", ConfigKind::Sftp, Some(mapping())),
        )
        .await
        .unwrap();
    let a2 = a_store.org(a.org_id().clone());
    let one = vec![row(2, "x1", &[(FieldKey::Username, "Same")])];
    let two = vec![row(2, "x2", &[(FieldKey::Username, "same")])];
    let (ac, oc, a1) = (a_config.clone(), other_config.clone(), a.clone());
    let t1 = tokio::spawn(async move { run_batch(&a1, &ac, &meta(), &one).await });
    let t2 = tokio::spawn(async move { run_batch(&a2, &oc, &meta(), &two).await });
    let (r1, r2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    assert_eq!(r1.counts.created + r2.counts.created, 1);
    assert_eq!(r1.counts.failed + r2.counts.failed, 1);
});

on_both!(
    the_database_enforces_uniqueness_on_its_own,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (a, _) = setup(&store, "A").await;
        let b = store.org(store.create_org("tests", "B", false).await.unwrap().id);
        let user = |name: &str, email: &str| {
            let mut u = StoredUser::new(UserId::new(rollcall_store::new_id()));
            u.profile.username = Some(UserName::parse(name).unwrap());
            u.profile.email = Some(Email::parse(email).unwrap());
            u
        };
        a.insert_unmanaged_user(&user("jane", "jane@acme.com"))
            .await
            .unwrap();
        // Same email in another organisation, in another letter case.
        assert!(matches!(
            b.insert_unmanaged_user(&user("jane", "JANE@acme.com"))
                .await,
            Err(StoreError::Conflict(c)) if c.key == rollcall_store::UniqueKey::UserEmail
        ));
        // Same username in another letter case, same organisation.
        assert!(matches!(
            a.insert_unmanaged_user(&user("JANE", "j2@acme.com")).await,
            Err(StoreError::Conflict(c)) if c.key == rollcall_store::UniqueKey::UserName
        ));
        // The same username in another organisation is fine.
        b.insert_unmanaged_user(&user("jane", "j3@acme.com"))
            .await
            .unwrap();
        match store.create_org("tests", "A", false).await {
            Err(StoreError::Conflict(c)) => {
                assert_eq!(c.key, rollcall_store::UniqueKey::OrgName);
                assert_eq!(c.to_string(), "an organisation named 'A' already exists");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
);

on_both!(organisations_are_isolated, |db: TestDb| async move {
    let store = Store::open(&db.url).await.unwrap();
    let (a, a_config) = setup(&store, "A").await;
    let (b, _) = setup(&store, "B").await;
    let run = run_batch(&a, &a_config, &meta(), &[row(2, "1", &[])])
        .await
        .unwrap();
    assert!(matches!(b.run(&run.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        b.run_logs(&run.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(b.runs(10).await.unwrap().is_empty());
    assert!(all_users(&b).await.is_empty());
    let jane = &all_users(&a).await[0];
    assert!(b.user(&jane.id).await.unwrap().is_none());
    assert!(b.config(a_config.id.as_str()).await.is_err());
    // B's batch cannot reach A's user by external id: it creates its own.
    let b_config = b.config("Payroll").await.unwrap();
    let run = run_batch(&b, &b_config, &meta(), &[row(2, "1", &[])])
        .await
        .unwrap();
    assert_eq!(run.counts.created, 1);
});

on_both!(tokens_authenticate_and_revoke, |db: TestDb| async move {
    let store = Store::open(&db.url).await.unwrap();
    let (a, config) = setup(&store, "A").await;
    let token = a.create_token("tests", &config).await.unwrap();
    let (org, cfg) = store.authenticate_token(&token).await.unwrap().unwrap();
    assert_eq!((&org, &cfg), (a.org_id(), &config.id));
    assert!(
        store
            .authenticate_token("rc_wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.revoke_token(&token).await.unwrap());
    assert!(store.authenticate_token(&token).await.unwrap().is_none());
});

on_both!(
    tokens_are_listed_and_revoked_by_id_within_their_organisation,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (a, config) = setup(&store, "A").await;
        let (b, _) = setup(&store, "B").await;
        let token = a.create_token("tests", &config).await.unwrap();
        let listed = a.tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].config_name, config.name);
        assert!(listed[0].last_used_at.is_none() && listed[0].revoked_at.is_none());
        assert!(b.tokens().await.unwrap().is_empty());

        store.authenticate_token(&token).await.unwrap().unwrap();
        assert!(a.tokens().await.unwrap()[0].last_used_at.is_some());

        let id = listed[0].id.clone();
        assert!(
            !b.revoke_token_by_id(&id).await.unwrap(),
            "another organisation's token"
        );
        assert!(store.authenticate_token(&token).await.unwrap().is_some());
        assert!(a.revoke_token_by_id(&id).await.unwrap());
        assert!(!a.revoke_token_by_id(&id).await.unwrap(), "already revoked");
        assert!(store.authenticate_token(&token).await.unwrap().is_none());
        assert!(a.tokens().await.unwrap()[0].revoked_at.is_some());
    }
);

on_both!(a_newer_schema_is_refused, |db: TestDb| async move {
    let store = Store::open(&db.url).await.unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db.url.expose()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .or_else(|_| Ok::<_, sqlx::Error>(Default::default()))
    .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 999")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
    if n == 0 {
        // PostgreSQL wants a bytea literal.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'from the future', TRUE, '\\x00'::bytea, 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    let err = Store::open(&db.url)
        .await
        .err()
        .expect("a newer schema must be refused");
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
});

#[test]
fn database_urls_hide_passwords() {
    let url: DatabaseUrl = "postgres://rollcall:s3cret@db.internal/rollcall"
        .parse()
        .unwrap();
    assert_eq!(
        format!("{url}"),
        "postgres://rollcall:***@db.internal/rollcall"
    );
    assert!(!format!("{url:?}").contains("s3cret"));
    assert!("mysql://x".parse::<DatabaseUrl>().is_err());
}

on_both!(
    grouped_scim_writes_isolate_conflicts,
    |db: TestDb| async move {
        // Many SCIM requests at once share commits; pairs that claim the same email race inside
        // one group. Exactly one of each pair is created, the other is refused, and every request
        // is logged once in the hour's SCIM run.
        let store = Store::open(&db.url).await.unwrap();
        let org = store.create_org("tests", "Acme", true).await.unwrap();
        let org = store.org(org.id);
        let config = org
            .create_config("tests", new_config("SCIM", ConfigKind::Scim, None))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..40u64 {
            let (org, config) = (org.clone(), config.clone());
            tasks.push(tokio::spawn(async move {
                let mut record = Incoming::new(1, Link::New);
                record.provided = FieldSet::all();
                record.profile.username = Some(UserName::parse(&format!("user{n}")).unwrap());
                record.profile.email =
                    Some(Email::parse(&format!("pair{}@acme.com", n / 2)).unwrap());
                rollcall_sync::scim::scim_apply(&org, &config, record, None)
                    .await
                    .unwrap()
                    .0
            }));
        }
        let mut created = 0;
        let mut refused = 0;
        for task in tasks {
            let planned = task.await.unwrap();
            match planned.action {
                Action::Created => created += 1,
                Action::Failed => {
                    assert_eq!(
                        planned.error.as_ref().unwrap().error_type,
                        ErrorType::OrganisationConflict
                    );
                    refused += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((created, refused), (20, 20));
        assert_eq!(all_users(&org).await.len(), 20);
        let runs = org.runs(10).await.unwrap();
        assert_eq!(runs.len(), 1, "one SCIM run for the hour");
        assert_eq!((runs[0].counts.created, runs[0].counts.failed), (20, 20));
        assert_eq!(org.run_logs(&runs[0].id).await.unwrap().len(), 40);
    }
);

on_both!(
    a_blocked_run_keeps_its_file_and_is_approved_once,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, mut config) = setup(&store, "Acme").await;
        run_batch(
            &org,
            &config,
            &meta(),
            &[row(2, "1", &[]), row(3, "2", &[])],
        )
        .await
        .unwrap();
        config.deactivation_threshold = Some(DeactivationThreshold::Count(1));
        let leavers = [
            row(2, "1", &[(FieldKey::Active, "false")]),
            row(3, "2", &[(FieldKey::Active, "false")]),
        ];
        let blocked = run_batch(&org, &config, &meta(), &leavers).await.unwrap();
        assert_eq!(blocked.status, RunStatus::AboveDeactivationThreshold);
        // Binary content survives the round trip on both backends.
        let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        org.save_run_file(&blocked.id, "leavers.csv", content.clone())
            .await
            .unwrap();
        let (name, kept) = org.run_file(&blocked.id).await.unwrap().unwrap();
        assert_eq!((name.as_str(), kept), ("leavers.csv", content));
        // Another organisation sees no such file.
        let other = store.create_org("tests", "Other", true).await.unwrap();
        assert!(
            store
                .org(other.id)
                .run_file(&blocked.id)
                .await
                .unwrap()
                .is_none()
        );

        // An approval whose apply fails gives the run back: it waits for approval again, and
        // names no approver.
        let approval = |by: &str| rollcall_store::Approval {
            by: by.to_owned(),
            at: chrono::Utc::now(),
        };
        org.take_for_approval(&blocked.id, &approval("first try"))
            .await
            .unwrap();
        let taken = org.run(&blocked.id).await.unwrap();
        assert_eq!(taken.status, RunStatus::InProgress);
        assert_eq!(taken.approval.map(|a| a.by).as_deref(), Some("first try"));
        org.release_approval(&blocked.id).await.unwrap();
        let released = org.run(&blocked.id).await.unwrap();
        assert_eq!(released.status, RunStatus::AboveDeactivationThreshold);
        assert!(released.approval.is_none(), "{:?}", released.approval);

        let approved = rollcall_sync::stages::approve_run(
            &org,
            &config,
            &blocked.id,
            &leavers,
            &approval("operator"),
        )
        .await
        .unwrap();
        assert_eq!(
            approved.approval.as_ref().map(|a| a.by.as_str()),
            Some("operator")
        );
        assert_eq!(approved.id, blocked.id);
        assert_eq!(approved.status, RunStatus::Success);
        assert_eq!(approved.counts.deactivated, 2);
        assert_eq!(
            org.run_logs(&blocked.id).await.unwrap().len(),
            2,
            "the log is the applied one"
        );
        assert!(all_users(&org).await.iter().all(|u| !u.active));
        let twice = rollcall_sync::stages::approve_run(
            &org,
            &config,
            &blocked.id,
            &leavers,
            &approval("again"),
        )
        .await;
        assert!(
            matches!(
                twice,
                Err(rollcall_sync::SyncError::Store(StoreError::RunStatus {
                    found: RunStatus::Success | RunStatus::NeedsAttention,
                    ..
                }))
            ),
            "{twice:?}"
        );
    }
);

// A batch with thousands of keys: on SQLite its context is read in one scan of the
// organisation (store::bulk), on PostgreSQL by indexed lookups; both must plan the same.
on_both!(
    a_large_batch_plans_as_a_small_one,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let other = store.org(store.create_org("tests", "Other", false).await.unwrap().id);
        let unmanaged = |name: &str, email: &str| {
            let mut u = StoredUser::new(UserId::new(rollcall_store::new_id()));
            u.profile.username = Some(UserName::parse(name).unwrap());
            u.profile.email = Some(Email::parse(email).unwrap());
            u
        };
        other
            .insert_unmanaged_user(&unmanaged("taken", "taken@other.com"))
            .await
            .unwrap();
        org.insert_unmanaged_user(&unmanaged("user7", "claim@acme.com"))
            .await
            .unwrap();

        let n = 800u64;
        let batch_with = |changed: Option<u64>| -> Vec<BatchItem> {
            (1..=n)
                .map(|i| {
                    let id = i.to_string();
                    let email = match i {
                        5 => "taken@other.com".to_owned(),
                        7 => "claim@acme.com".to_owned(),
                        8 | 9 => "twins@acme.com".to_owned(),
                        _ if Some(i) == changed => format!("new{i}@acme.com"),
                        _ => format!("u{i}@acme.com"),
                    };
                    let manager = if i > 10 {
                        (i / 10 + 1).to_string()
                    } else {
                        String::new()
                    };
                    row(
                        i + 1,
                        &id,
                        &[(FieldKey::Email, &email), (FieldKey::Manager, &manager)],
                    )
                })
                .collect()
        };

        let first = run_batch(&org, &config, &meta(), &batch_with(None))
            .await
            .unwrap();
        let logs = org.run_logs(&first.id).await.unwrap();
        let log = |row: u64| logs.iter().find(|l| l.row == Some(row + 1)).unwrap();
        assert_eq!(log(5).error_type_codes(), "GLOBAL_CONFLICT");
        assert_eq!(log(7).action, Action::Updated);
        assert_eq!(log(7).message, "Claimed an existing user matched by Email");
        assert_eq!(log(8).error_type_codes(), "ORGANISATION_CONFLICT");
        assert_eq!(log(9).error_type_codes(), "ORGANISATION_CONFLICT");
        // Managers 5, 8 and 9 did not sync: their reports keep no manager, with a warning.
        assert_eq!(log(45).error_type_codes(), "MANAGER_NOT_FOUND");
        assert_eq!(log(85).error_type_codes(), "MANAGER_NOT_FOUND");
        assert_eq!(log(65).error_type_codes(), "");
        assert_eq!(first.counts.created, n - 4);
        assert_eq!(first.counts.updated, 1);
        assert_eq!(first.counts.failed, 3);
        assert_eq!(first.counts.warnings, 30);
        let users = all_users(&org).await;
        assert_eq!(users.len() as u64, n - 3);
        let by_ext = |ext: &str| {
            users
                .iter()
                .find(|u| u.profile.external_id.as_ref().map(|e| e.as_str()) == Some(ext))
                .unwrap()
        };
        assert_eq!(by_ext("65").manager_id, Some(by_ext("7").id.clone()));

        let second = run_batch(&org, &config, &meta(), &batch_with(Some(100)))
            .await
            .unwrap();
        assert_eq!(second.counts.updated, 1, "{:?}", second.counts);
        assert_eq!(second.counts.unchanged, n - 4);
        assert_eq!(second.counts.failed, 3);
        let logs = org.run_logs(&second.id).await.unwrap();
        let changed = logs.iter().find(|l| l.row == Some(101)).unwrap();
        assert_eq!(changed.action, Action::Updated);
        assert_eq!(changed.changed_fields, "email");
    }
);

// Numbers the configuration's users hold are taken as read, without libphonenumber: shown with
// a stored number it would refuse. Another configuration's numbers are not given.
on_both!(
    known_phones_are_the_configurations_own,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let other = org
            .create_config(
                "tests",
                new_config("Other", ConfigKind::Sftp, Some(mapping())),
            )
            .await
            .unwrap();
        let user = |name: &str, phone: &str, by: &SourceConfig| {
            let mut u = StoredUser::new(UserId::new(rollcall_store::new_id()));
            u.profile.username = Some(UserName::parse(name).unwrap());
            u.profile.phone_mobile = Some(Phone::from_stored(phone.into(), phone.into()));
            u.managed_by = Some(by.id.clone());
            u
        };
        org.insert_unmanaged_user(&user("a", "+4400000001", &config))
            .await
            .unwrap();
        org.insert_unmanaged_user(&user("b", "+4400000002", &other))
            .await
            .unwrap();
        let mut phones = PhoneCache::new();
        org.known_phones(&config.id, &mut phones).await.unwrap();
        assert_eq!(
            phones.parse(" +4400000001 ", None).unwrap().e164(),
            "+4400000001"
        );
        assert!(phones.parse("+4400000002", None).is_err());
    }
);

on_both!(scim_pages_see_every_write, |db: TestDb| async move {
    // SQLite keeps the page order between requests: a write from another process (here a
    // second store on the same database) must show in the next page and its total.
    let reader = Store::open(&db.url).await.unwrap();
    let writer = Store::open(&db.url).await.unwrap();
    let org = reader.create_org("tests", "Acme", true).await.unwrap();
    let (read_org, write_org) = (reader.org(org.id.clone()), writer.org(org.id));
    let config = write_org
        .create_config("tests", new_config("SCIM", ConfigKind::Scim, None))
        .await
        .unwrap();
    let create = |n: u32| {
        let mut record = Incoming::new(1, Link::New);
        record.provided = FieldSet::all();
        record.profile.username = Some(UserName::parse(&format!("user{n}")).unwrap());
        record
    };
    let mut ids = Vec::new();
    for n in 0..3 {
        let (planned, at) = rollcall_sync::scim::scim_apply(&write_org, &config, create(n), None)
            .await
            .unwrap();
        assert!(at.is_some(), "an active configuration writes");
        ids.push(planned.user_id.unwrap());
    }
    let usernames = |rows: &[rollcall_store::UserRow]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                r.user
                    .profile
                    .username
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .to_owned()
            })
            .collect()
    };
    let (page, total) = read_org.scim_page(0, 2).await.unwrap();
    assert_eq!(
        (usernames(&page), total),
        (vec!["user0".into(), "user1".into()], 3)
    );

    rollcall_sync::scim::scim_apply(&write_org, &config, create(3), None)
        .await
        .unwrap();
    let (page, total) = read_org.scim_page(2, 2).await.unwrap();
    assert_eq!(
        (usernames(&page), total),
        (vec!["user2".into(), "user3".into()], 4)
    );

    let current = write_org.scim_user(&ids[0]).await.unwrap().unwrap();
    let delete = Incoming::scim_delete(1, ids[0].clone(), &current.user.profile);
    let (planned, at) =
        rollcall_sync::scim::scim_apply(&write_org, &config, delete, Some(current.user))
            .await
            .unwrap();
    assert_eq!((planned.action, at.is_some()), (Action::Deactivated, true));
    let (page, total) = read_org.scim_page(0, 10).await.unwrap();
    assert_eq!(
        (usernames(&page), total),
        (vec!["user1".into(), "user2".into(), "user3".into()], 3)
    );
    let (page, total) = read_org.scim_page(5, 10).await.unwrap();
    assert_eq!((page.len(), total), (0, 3));
});

/// Read `csv` for `config`, through a sieve of the users it manages when `sifted`.
async fn read_csv(
    org: &OrgStore,
    config: &SourceConfig,
    csv: &str,
    sifted: bool,
) -> (Vec<BatchItem>, Option<rollcall_domain::unchanged::Sifted>) {
    let mapping = config.mapping.clone().unwrap();
    let mut sieve =
        sifted.then(|| rollcall_domain::unchanged::Sieve::new(&mapping, &config.id).unwrap());
    if let Some(sieve) = sieve.as_mut() {
        org.fill_sieve(&config.id, sieve).await.unwrap();
    }
    let items = rollcall_hrfile::csvfile::read_csv_sifted(
        csv.as_bytes(),
        &mapping,
        &ReadOptions::default(),
        &mut PhoneCache::new(),
        sieve.as_mut(),
        rollcall_hrfile::Limits::default(),
        |_| {},
    )
    .unwrap();
    (items, sieve.map(|s| s.finish()))
}

on_both!(
    a_sifted_file_runs_as_the_whole_file_would,
    |db: TestDb| async move {
        let store = Store::open(&db.url).await.unwrap();
        let org = store.create_org("tests", "Acme", true).await.unwrap();
        let org = store.org(org.id);
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let mapping = rollcall_domain::mapping::Mapping::new(
            [
                f("external_id", "Id"),
                f("username", "Login"),
                f("email", "Email"),
                f("phone_mobile", "Mobile"),
                f("manager", "Boss"),
                f("job_title", "Title"),
                f("active", "Active"),
                f("start_employment_date", "Start"),
            ],
            [f("CostCentre", "Cc")],
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        let config = org
            .create_config(
                "tests",
                support::new_config("Payroll", ConfigKind::Sftp, Some(mapping)),
            )
            .await
            .unwrap();
        const HEADER: &str = "Id,Login,Email,Mobile,Boss,Title,Active,Start,Cc\n";
        let first = format!(
            "{HEADER}1,ann,Ann@Acme.com,+447400000001,,CEO,true,2020-01-31,CC1\n\
             2,bob,,+44 7400 000002,1,CFO,true,,\n\
             3,cy,cy@acme.com,,2,Clerk,true,,CC3\n\
             4,dee,dee@acme.com,,2,Clerk,true,,CC4\n"
        );
        let (items, _) = read_csv(&org, &config, &first, false).await;
        let run = run_batch(&org, &config, &meta(), &items).await.unwrap();
        assert_eq!(run.counts.created, 4);

        // The next file: one row changed (the email's case), one leaver, one new, two as
        // they were (one with spaces and TRUE).
        let next = format!(
            "{HEADER}1 , ann ,Ann@Acme.com, +447400000001 ,,CEO,TRUE,2020-01-31,CC1\n\
             5,eve,eve@acme.com,,1,VP,true,,\n\
             2,bob,,+44 7400 000002,1,CFO,true,,\n\
             3,cy,Cy@acme.com,,2,Clerk,true,,CC3\n\
             4,dee,dee@acme.com,,2,Clerk,false,,CC4\n"
        );
        let mut dry = meta();
        dry.dry_run = true;
        let (whole, _) = read_csv(&org, &config, &next, false).await;
        let expected = run_batch(&org, &config, &dry, &whole).await.unwrap();
        let (rest, sifted) = read_csv(&org, &config, &next, true).await;
        assert_eq!(rest.len(), 3, "two rows were taken as unchanged");
        let rollcall_sync::stages::SiftedRun::Done(got) =
            rollcall_sync::stages::run_sifted(&org, &config, &dry, &rest, sifted.unwrap())
                .await
                .unwrap()
        else {
            panic!("the sifted rows hold");
        };
        assert_eq!(got.counts, expected.counts);
        assert_eq!(got.counts.unchanged, 2);
        assert_eq!(got.status, expected.status);
        assert_eq!(
            org.run_logs(&got.id).await.unwrap(),
            org.run_logs(&expected.id).await.unwrap()
        );

        // Applied: the same users as the whole file gives.
        let (rest, sifted) = read_csv(&org, &config, &next, true).await;
        let rollcall_sync::stages::SiftedRun::Done(applied) =
            rollcall_sync::stages::run_sifted(&org, &config, &meta(), &rest, sifted.unwrap())
                .await
                .unwrap()
        else {
            panic!("the sifted rows hold");
        };
        assert_eq!(applied.counts, expected.counts);
        let (again, _) = read_csv(&org, &config, &next, false).await;
        let rerun = run_batch(&org, &config, &meta(), &again).await.unwrap();
        assert_eq!(rerun.counts.unchanged, 5);

        // A new row with an unchanged row's mobile: the whole file is planned.
        let clash = format!("{next}6,fay,,+447400000001,,,true,,\n");
        let (rest, sifted) = read_csv(&org, &config, &clash, true).await;
        let replan = rollcall_sync::stages::run_sifted(&org, &config, &dry, &rest, sifted.unwrap())
            .await
            .unwrap();
        let rollcall_sync::stages::SiftedRun::Replan(run_id) = replan else {
            panic!("a duplicate key needs the whole file: {replan:?}");
        };
        let (whole, _) = read_csv(&org, &config, &clash, false).await;
        let finished = rollcall_sync::stages::finish_started(&org, &config, &run_id, true, &whole)
            .await
            .unwrap();
        assert_eq!(finished.counts.failed, 2);
        assert_eq!(finished.status, RunStatus::NeedsAttention);
    }
);

on_both!(
    a_sieve_holds_every_managed_user_between_other_organisations_users,
    |db: TestDb| async move {
        // SQLite fills the sieve in two halves by rowid: users written one by one, each
        // followed by another organisation's, so both halves span rowids of others.
        let store = Store::open(&db.url).await.unwrap();
        let (org, config) = setup(&store, "Acme").await;
        let (other, other_config) = setup(&store, "Globex").await;
        const HEADER: &str = "Id,Login,Email,Active\n";
        let line = |i: usize, domain: &str| format!("{i},user{i},user{i}@{domain},true\n");
        let mut file = String::from(HEADER);
        for i in 0..41 {
            for (org, config, domain) in [
                (&org, &config, "acme.com"),
                (&other, &other_config, "globex.com"),
            ] {
                let (items, _) =
                    read_csv(org, config, &format!("{HEADER}{}", line(i, domain)), false).await;
                let run = run_batch(org, config, &meta(), &items).await.unwrap();
                assert_eq!(run.counts.created, 1);
            }
            file.push_str(&line(i, "acme.com"));
        }
        let (rest, sifted) = read_csv(&org, &config, &file, true).await;
        assert!(rest.is_empty(), "rows not taken: {}", rest.len());
        let sifted = sifted.unwrap();
        assert_eq!(sifted.unchanged.len(), 41);
        let rows: Vec<u64> = sifted.unchanged.iter().map(|u| u.row).collect();
        assert_eq!(rows, (2..43).collect::<Vec<u64>>());

        // The other organisation's file is not taken by this configuration's sieve.
        let theirs = file.replace("acme.com", "globex.com");
        let (rest, _) = read_csv(&org, &config, &theirs, true).await;
        assert_eq!(rest.len(), 41);
    }
);
