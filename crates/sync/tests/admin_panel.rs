//! What the admin panel reads, on both backends and with a clock the tests move: session
//! expiry, and the runs page's range edges, filters, sorting and keyset paging.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rollcall_domain::config::{ConfigKind, Role};
use rollcall_domain::run_filter::{FilterParams, RunFilter};
use rollcall_domain::{Action, LogRow, RunStatus};
use rollcall_store::{
    Clock, Finish, NewAdmin, NewRun, OrgStore, RunCursor, SessionLimits, SourceConfig, Store,
};

#[macro_use]
mod support;
use support::{TestDb, mapping, new_config, postgres, sqlite};

struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn set(&self, t: &str) {
        *self.0.lock().unwrap() = at(t);
    }

    fn advance(&self, d: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(d).unwrap();
    }
}

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

async fn open(db: &TestDb, now: &str) -> (Store, Arc<TestClock>) {
    let clock = Arc::new(TestClock(Mutex::new(at(now))));
    let store = Store::open_with_clock(&db.url, clock.clone())
        .await
        .unwrap();
    (store, clock)
}

const LIMITS: SessionLimits = SessionLimits {
    idle: Duration::from_secs(30 * 60),
    absolute: Duration::from_secs(12 * 3600),
};

on_both!(
    sessions_expire_when_idle_and_absolutely,
    |db: TestDb| async move {
        let (store, clock) = open(&db, "2024-01-15T08:00:00Z").await;
        let org = store.create_org("tests", "Acme", true).await.unwrap();
        let admin = store
            .org(org.id)
            .create_admin(
                "tests",
                NewAdmin {
                    email: "people@acme.example".into(),
                    role: Role::PeopleAdmin,
                    sync_access: true,
                    password_hash: "unused".into(),
                },
            )
            .await
            .unwrap();
        let (token, csrf) = store.create_session(&admin).await.unwrap();
        let session = store.session(&token, LIMITS).await.unwrap().unwrap();
        assert_eq!(session.csrf, csrf);
        assert!(session.provisioning);
        assert!(store.session("rc_other", LIMITS).await.unwrap().is_none());

        // Activity keeps a session alive...
        for _ in 0..3 {
            clock.advance(Duration::from_secs(29 * 60));
            assert!(store.session(&token, LIMITS).await.unwrap().is_some());
        }
        // ...idleness ends it.
        clock.advance(Duration::from_secs(31 * 60));
        assert!(store.session(&token, LIMITS).await.unwrap().is_none());

        // However active, a session ends 12 hours after sign-in.
        let (token, _) = store.create_session(&admin).await.unwrap();
        for _ in 0..24 {
            clock.advance(Duration::from_secs(29 * 60));
            assert!(store.session(&token, LIMITS).await.unwrap().is_some());
        }
        clock.advance(Duration::from_secs(25 * 60));
        assert!(store.session(&token, LIMITS).await.unwrap().is_none());

        // Signing out ends it at once.
        let (token, _) = store.create_session(&admin).await.unwrap();
        store.delete_session(&token).await.unwrap();
        assert!(store.session(&token, LIMITS).await.unwrap().is_none());
    }
);

/// A run queued, started and ended at the clock's time, with the given status.
async fn run_at(
    org: &OrgStore,
    clock: &TestClock,
    config: &SourceConfig,
    t: &str,
    trigger: rollcall_domain::Trigger,
    status: RunStatus,
) -> String {
    clock.set(t);
    let id = org
        .start_run(&NewRun {
            config_id: config.id.clone(),
            connector: "SFTP Sync".into(),
            trigger,
            file_name: Some(format!("{t}.csv")),
            file_sha256: None,
            dry_run: false,
        })
        .await
        .unwrap();
    if status == RunStatus::DataLoadFailed {
        org.finish_run(
            &id,
            Finish::DataLoadFailed(&[LogRow::load_failed("unreadable")]),
        )
        .await
        .unwrap();
    } else {
        let plan = rollcall_domain::plan::plan(
            &[],
            &Default::default(),
            &rollcall_domain::plan::Options {
                config: config.id.clone(),
                create_inactive: false,
            },
            &mut || rollcall_domain::UserId::new(rollcall_store::new_id()),
        );
        org.finish_run(&id, Finish::Report(&plan, status))
            .await
            .unwrap();
    }
    id.to_string()
}

fn filter(pairs: &[(&str, &str)]) -> RunFilter {
    let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    RunFilter::parse(&FilterParams {
        range: get("range"),
        from: get("from"),
        to: get("to"),
        tz: get("tz"),
        sort: get("sort"),
        configuration: get("configuration"),
        status: get("status"),
    })
    .unwrap()
}

async fn names(org: &OrgStore, clock: &TestClock, f: &RunFilter) -> Vec<String> {
    let page = org
        .run_page(f, f.bounds(clock.now()), None, 100)
        .await
        .unwrap();
    assert_eq!(page.total as usize, page.runs.len());
    page.runs
        .iter()
        .map(|r| {
            r.file_name
                .clone()
                .unwrap()
                .trim_end_matches(".csv")
                .to_owned()
        })
        .collect()
}

on_both!(
    the_runs_page_filters_at_its_edges,
    |db: TestDb| async move {
        let (store, clock) = open(&db, "2024-01-15T12:00:00Z").await;
        let org = store.create_org("tests", "Acme", true).await.unwrap();
        let org = store.org(org.id);
        let payroll = org
            .create_config(
                "tests",
                new_config("Payroll", ConfigKind::Sftp, Some(mapping())),
            )
            .await
            .unwrap();
        let scim = org
            .create_config("tests", new_config("SCIM", ConfigKind::Scim, None))
            .await
            .unwrap();
        use RunStatus::*;
        for (t, config, status) in [
            ("2024-01-08T11:59:59.999Z", &payroll, Success),
            ("2024-01-08T12:00:00.000Z", &payroll, NeedsAttention),
            ("2024-01-14T23:00:00.000Z", &scim, Success),
            ("2024-01-15T00:00:00.000Z", &payroll, DataLoadFailed),
            ("2024-01-15T12:00:00.000Z", &scim, Success),
        ] {
            run_at(
                &org,
                &clock,
                config,
                t,
                rollcall_domain::Trigger::Cli,
                status,
            )
            .await;
        }
        // Bulk Update runs live on their own page.
        run_at(
            &org,
            &clock,
            &payroll,
            "2024-01-15T06:00:00.000Z",
            rollcall_domain::Trigger::Bulk,
            Success,
        )
        .await;
        clock.set("2024-01-15T12:00:00Z");

        let all = names(&org, &clock, &filter(&[])).await;
        assert_eq!(
            all,
            [
                "2024-01-15T12:00:00.000Z",
                "2024-01-15T00:00:00.000Z",
                "2024-01-14T23:00:00.000Z",
                "2024-01-08T12:00:00.000Z",
                "2024-01-08T11:59:59.999Z"
            ],
            "newest first, bulk updates left out"
        );
        let oldest = names(&org, &clock, &filter(&[("sort", "oldest")])).await;
        assert_eq!(oldest, all.iter().rev().cloned().collect::<Vec<_>>());

        // Last 7 days: from exactly seven days ago to now, both included.
        let week = names(&org, &clock, &filter(&[("range", "7d")])).await;
        assert_eq!(week.len(), 4);
        assert_eq!(week.last().unwrap(), "2024-01-08T12:00:00.000Z");
        assert_eq!(
            names(&org, &clock, &filter(&[("range", "30d")]))
                .await
                .len(),
            5
        );

        // Custom dates are whole days, both ends included, in the viewer's offset.
        let day = filter(&[
            ("range", "custom"),
            ("from", "2024-01-15"),
            ("to", "2024-01-15"),
        ]);
        assert_eq!(
            names(&org, &clock, &day).await,
            ["2024-01-15T12:00:00.000Z", "2024-01-15T00:00:00.000Z"]
        );
        let day_in_paris = filter(&[
            ("range", "custom"),
            ("from", "2024-01-15"),
            ("to", "2024-01-15"),
            ("tz", "+01:00"),
        ]);
        assert_eq!(
            names(&org, &clock, &day_in_paris).await,
            [
                "2024-01-15T12:00:00.000Z",
                "2024-01-15T00:00:00.000Z",
                "2024-01-14T23:00:00.000Z"
            ]
        );

        let statuses = filter(&[("status", "needs_attention,data_load_failed")]);
        assert_eq!(
            names(&org, &clock, &statuses).await,
            ["2024-01-15T00:00:00.000Z", "2024-01-08T12:00:00.000Z"]
        );
        let by_config = filter(&[("configuration", scim.id.as_str()), ("status", "success")]);
        assert_eq!(
            names(&org, &clock, &by_config).await,
            ["2024-01-15T12:00:00.000Z", "2024-01-14T23:00:00.000Z"]
        );

        // Another organisation sees none of it.
        let other = store.create_org("tests", "Other", true).await.unwrap();
        assert!(
            names(&store.org(other.id), &clock, &filter(&[]))
                .await
                .is_empty()
        );
    }
);

on_both!(
    keyset_pages_cover_every_run_once_even_at_equal_times,
    |db: TestDb| async move {
        let (store, clock) = open(&db, "2024-01-15T12:00:00Z").await;
        let org = store.create_org("tests", "Acme", true).await.unwrap();
        let org = store.org(org.id);
        let payroll = org
            .create_config(
                "tests",
                new_config("Payroll", ConfigKind::Sftp, Some(mapping())),
            )
            .await
            .unwrap();
        let mut made = Vec::new();
        for t in ["2024-01-15T10:00:00Z", "2024-01-15T11:00:00Z"] {
            for _ in 0..5 {
                made.push(
                    run_at(
                        &org,
                        &clock,
                        &payroll,
                        t,
                        rollcall_domain::Trigger::Cli,
                        RunStatus::Success,
                    )
                    .await,
                );
            }
        }
        for sort in ["newest", "oldest"] {
            let f = filter(&[("sort", sort)]);
            let mut seen = Vec::new();
            let mut after: Option<RunCursor> = None;
            loop {
                let page = org
                    .run_page(&f, f.bounds(clock.now()), after.as_ref(), 3)
                    .await
                    .unwrap();
                assert_eq!(page.total, 10);
                assert!(page.runs.len() <= 3);
                seen.extend(page.runs.iter().map(|r| r.id.to_string()));
                match page.next {
                    Some(next) => {
                        assert_eq!(RunCursor::decode(&next.encode()), Some(next.clone()));
                        after = Some(next);
                    }
                    None => break,
                }
            }
            let mut expected = made.clone();
            expected.sort();
            if sort == "newest" {
                expected.reverse();
            }
            assert_eq!(seen, expected, "{sort}: every run once, in order");
        }
    }
);

/// Run a Bulk Update file (a header and data rows from line 2 on) as `admin`.
async fn bulk_update(
    org: &OrgStore,
    admin: &str,
    header: &[&str],
    rows: &[&[&str]],
) -> rollcall_store::RunRecord {
    use rollcall_sync::bulk_update::{BulkFile, BulkUpdate, run_bulk_update};
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(header).unwrap();
    for row in rows {
        csv.write_record(*row).unwrap();
    }
    let content = csv.into_inner().unwrap();
    let file = BulkFile {
        name: "people.csv",
        content: &content,
        max_rows: 50_000,
    };
    match run_bulk_update(org, admin, file).await.unwrap() {
        BulkUpdate::Done(run) => *run,
        BulkUpdate::Refused(problems) => panic!("refused: {problems:?}"),
    }
}

/// An organisation with an admin, a Payroll configuration and the users `(username, email,
/// managed by Payroll)`.
async fn bulk_org(
    store: &Store,
    name: &str,
    users: &[(&str, &str, bool)],
) -> (OrgStore, rollcall_store::Admin) {
    use rollcall_domain::values::{Email, UserName};
    let org = store.create_org("tests", name, true).await.unwrap();
    let org = store.org(org.id);
    let admin = org
        .create_admin(
            "tests",
            NewAdmin {
                email: format!("people@{}.example", name.to_lowercase()),
                role: Role::PeopleAdmin,
                sync_access: true,
                password_hash: "unused".into(),
            },
        )
        .await
        .unwrap();
    let payroll = org
        .create_config(
            "tests",
            new_config("Payroll", ConfigKind::Sftp, Some(mapping())),
        )
        .await
        .unwrap();
    for (username, email, managed) in users {
        let mut u = rollcall_domain::StoredUser::new(rollcall_domain::UserId::new(
            rollcall_store::new_id(),
        ));
        u.profile.username = Some(UserName::parse(username).unwrap());
        u.profile.email = Some(Email::parse(email).unwrap());
        if *managed {
            u.managed_by = Some(payroll.id.clone());
        }
        org.insert_unmanaged_user(&u).await.unwrap();
    }
    (org, admin)
}

fn usernames(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

on_both!(
    bulk_updates_apply_to_unmanaged_users_and_log_every_row,
    |db: TestDb| async move {
        let (store, clock) = open(&db, "2024-01-15T12:00:00Z").await;
        let (org, admin) = bulk_org(
            &store,
            "Acme",
            &[
                ("ann", "ann@acme.example", false),
                ("bob", "bob@acme.example", false),
                ("carl", "carl@acme.example", true),
                ("dan", "dan@acme.example", false),
            ],
        )
        .await;
        bulk_org(&store, "Other", &[("eve", "eve@other.example", false)]).await;
        clock.set("2024-01-15T12:30:00Z");
        let run = bulk_update(
            &org,
            &admin.id,
            &["Username", "JobTitle", "Email"],
            &[
                &["ANN", "Nurse", ""],
                &["bob", "", "ann@acme.example"],
                &["carl", "Boss", ""],
                &["zed", "Ghost", ""],
                &["dan", "", "EVE@other.example"],
            ],
        )
        .await;
        assert_eq!(run.status, RunStatus::NeedsAttention);
        assert_eq!(run.connector, "Bulk Update");
        assert_eq!(run.trigger, rollcall_domain::Trigger::Bulk);
        assert_eq!(run.file_name.as_deref(), Some("people.csv"));
        assert_eq!(
            (run.counts.updated, run.counts.skipped, run.counts.failed),
            (1, 2, 2)
        );
        let logs = org.run_logs(&run.id).await.unwrap();
        let codes: Vec<String> = logs
            .iter()
            .map(|l| l.error_type_codes().into_owned())
            .collect();
        let summary: Vec<(Option<u64>, &str, &str, &str)> = logs
            .iter()
            .zip(&codes)
            .map(|(l, codes)| {
                (
                    l.row,
                    l.action.label(),
                    codes.as_str(),
                    l.additional_data.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some(2), "Updated", "", ""),
                (
                    Some(3),
                    "Failed",
                    "ORGANISATION_CONFLICT",
                    "email=ann@acme.example"
                ),
                (
                    Some(4),
                    "Skipped",
                    "MANAGED_BY_EXTERNAL_SOURCE",
                    "username=carl"
                ),
                (Some(5), "Skipped", "NOT_FOUND", "username=zed"),
                (
                    Some(6),
                    "Failed",
                    "GLOBAL_CONFLICT",
                    "email=EVE@other.example"
                ),
            ]
        );
        assert_eq!(logs[0].changed_fields, "job_title");
        assert_eq!(logs[3].message, "no user 'zed' in your organisation");
        // Ann changed and is audited in the admin's name; Bob and Dan kept their email; Carl,
        // whom Payroll manages, is untouched.
        let names = usernames(&["ann", "bob", "carl", "dan"]);
        let after = org.users_by_username(&names).await.unwrap();
        assert_eq!(after["ann"].profile.job_title.as_deref(), Some("Nurse"));
        assert_eq!(after["ann"].managed_by, None, "still unmanaged");
        assert_eq!(
            after["ann"].profile.email.as_ref().unwrap().as_str(),
            "ann@acme.example",
            "an empty cell leaves the field as it is"
        );
        assert_eq!(
            after["bob"].profile.email.as_ref().unwrap().as_str(),
            "bob@acme.example"
        );
        assert_eq!(
            after["dan"].profile.email.as_ref().unwrap().as_str(),
            "dan@acme.example"
        );
        assert_eq!(after["carl"].profile.job_title, None);
        let audit = org.user_audit(&after["ann"].id).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "bulk_update");
        assert_eq!(audit[0].admin_email, "people@acme.example");
        assert_eq!(audit[0].changed_fields, "job_title");
        for name in ["bob", "carl", "dan"] {
            assert!(org.user_audit(&after[name].id).await.unwrap().is_empty());
        }
        // The run is on the Bulk Update page, not on User Provisioning.
        assert_eq!(org.bulk_runs(10).await.unwrap()[0].id, run.id);
        let all = filter(&[]);
        let page = org
            .run_page(&all, all.bounds(clock.now()), None, 10)
            .await
            .unwrap();
        assert!(page.runs.iter().all(|r| r.id != run.id));

        // The same file again changes nothing more and audits nothing more.
        let again = bulk_update(
            &org,
            &admin.id,
            &["Username", "JobTitle"],
            &[&["ann", "Nurse"]],
        )
        .await;
        assert_eq!(again.status, RunStatus::Success);
        assert_eq!(again.counts.unchanged, 1);
        assert_eq!(org.user_audit(&after["ann"].id).await.unwrap().len(), 1);
    }
);

on_both!(
    bulk_update_naming_one_username_twice_fails_both_rows,
    |db: TestDb| async move {
        let (store, _clock) = open(&db, "2024-01-15T12:00:00Z").await;
        let (org, admin) = bulk_org(
            &store,
            "Acme",
            &[
                ("ann", "ann@acme.example", false),
                ("bob", "bob@acme.example", false),
            ],
        )
        .await;
        let run = bulk_update(
            &org,
            &admin.id,
            &["Username", "JobTitle"],
            &[&["ann", "Nurse"], &["bob", "Porter"], &["Ann", "Doctor"]],
        )
        .await;
        assert_eq!(run.status, RunStatus::NeedsAttention);
        assert_eq!(
            (run.counts.updated, run.counts.skipped, run.counts.failed),
            (1, 0, 2)
        );
        let logs = org.run_logs(&run.id).await.unwrap();
        let duplicate = "Duplicate Username in rows 2, 4: conflicting users don't sync; keep one row per person.";
        for (i, name) in [(0, "ann"), (2, "Ann")] {
            assert_eq!(logs[i].action, Action::Failed);
            assert_eq!(logs[i].error_type_codes(), "ORGANISATION_CONFLICT");
            assert_eq!(logs[i].message, duplicate);
            assert_eq!(logs[i].additional_data, format!("username={name}"));
        }
        assert_eq!(logs[1].action, Action::Updated);
        let after = org
            .users_by_username(&usernames(&["ann", "bob"]))
            .await
            .unwrap();
        assert_eq!(after["ann"].profile.job_title, None, "neither row applies");
        assert_eq!(after["bob"].profile.job_title.as_deref(), Some("Porter"));
    }
);

on_both!(
    a_profile_edit_is_planned_saved_and_audited,
    |db: TestDb| async move {
        use rollcall_domain::admin_edit::apply_edit;
        use rollcall_domain::field::FieldKey;
        use rollcall_domain::{ErrorType, StoredUser};
        use rollcall_sync::bulk_update::{ProfileEdit, save_profile_edit};
        let (store, _clock) = open(&db, "2024-01-15T12:00:00Z").await;
        let (org, admin) = bulk_org(
            &store,
            "Acme",
            &[
                ("ann", "ann@acme.example", false),
                ("bob", "bob@acme.example", false),
                ("carl", "carl@acme.example", true),
            ],
        )
        .await;
        bulk_org(&store, "Other", &[("eve", "eve@other.example", false)]).await;
        let read = |name: &'static str| {
            let org = org.clone();
            async move { org.users_by_username(&usernames(&[name])).await.unwrap()[name].clone() }
        };
        let edit = |user: &StoredUser, form: &[(FieldKey, &str)]| {
            let form: Vec<(FieldKey, String)> =
                form.iter().map(|(k, v)| (*k, v.to_string())).collect();
            apply_edit(user, &form).unwrap()
        };

        let ann = read("ann").await;
        let (edited, changed) = edit(&ann, &[(FieldKey::JobTitle, "Nurse")]);
        let saved = save_profile_edit(&org, &admin.id, &ann, &edited, &changed)
            .await
            .unwrap();
        assert!(matches!(saved, ProfileEdit::Saved), "{saved:?}");
        let now = read("ann").await;
        assert_eq!(now.profile.job_title.as_deref(), Some("Nurse"));
        assert_eq!(now.version, ann.version + 1);
        let audit = org.user_audit(&ann.id).await.unwrap();
        assert_eq!(
            (audit[0].action.as_str(), audit[0].changed_fields.as_str()),
            ("profile_edited", "job_title")
        );

        // A form read before that change is stale: nothing is saved.
        let (edited, changed) = edit(&ann, &[(FieldKey::Company, "Acme")]);
        let stale = save_profile_edit(&org, &admin.id, &ann, &edited, &changed)
            .await
            .unwrap();
        assert!(matches!(stale, ProfileEdit::Stale), "{stale:?}");
        assert_eq!(read("ann").await.profile.company, None);

        // Taken values are the engine's conflicts, naming the fields as data.
        let bob = read("bob").await;
        for (email, error_type) in [
            ("ANN@acme.example", ErrorType::OrganisationConflict),
            ("eve@other.example", ErrorType::GlobalConflict),
        ] {
            let (edited, changed) = edit(&bob, &[(FieldKey::Email, email)]);
            match save_profile_edit(&org, &admin.id, &bob, &edited, &changed)
                .await
                .unwrap()
            {
                ProfileEdit::Refused(issue) => {
                    assert_eq!(issue.error_type, error_type);
                    assert_eq!(issue.fields, [FieldKey::Email]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(read("bob").await, bob);
        assert!(org.user_audit(&bob.id).await.unwrap().is_empty());

        // A user Payroll manages keeps its manager; the admin enters the mobile number the
        // source leaves empty.
        let carl = read("carl").await;
        let (edited, changed) = edit(&carl, &[(FieldKey::PhoneMobile, "+44 7495 944376")]);
        let saved = save_profile_edit(&org, &admin.id, &carl, &edited, &changed)
            .await
            .unwrap();
        assert!(matches!(saved, ProfileEdit::Saved), "{saved:?}");
        let now = read("carl").await;
        assert_eq!(now.managed_by, carl.managed_by);
        assert_eq!(now.profile.phone_mobile.unwrap().e164(), "+447495944376");
        assert!(!now.phone_mobile_from_source);
    }
);
