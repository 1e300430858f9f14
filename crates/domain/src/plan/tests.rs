//! One test per rule of SPEC §3 and the managed/contact rules of SPEC §2.

use super::*;
use crate::field::FieldKey;
use crate::record::{RawRecord, ReadOptions, Rejected};
use crate::run::RunStatus;
use crate::values::{Email, EmployeeId, ExternalId, Phone, UserName};

const CONFIG: &str = "cfg-a";

fn options() -> Options {
    Options {
        config: ConfigId::new(CONFIG),
        create_inactive: false,
    }
}

/// A stored user of the organisation.
fn stored(id: &str) -> StoredUser {
    let mut u = StoredUser::new(UserId::new(id));
    u.version = 3;
    u.profile.username = Some(UserName::parse(id).unwrap());
    u
}

fn with_ext(mut u: StoredUser, ext: &str) -> StoredUser {
    u.profile.external_id = Some(ExternalId::parse(ext).unwrap());
    u
}

fn with_email(mut u: StoredUser, email: &str) -> StoredUser {
    u.profile.email = Some(Email::parse(email).unwrap());
    u
}

fn managed(mut u: StoredUser, config: &str) -> StoredUser {
    u.managed_by = Some(ConfigId::new(config));
    u.email_from_source = u.profile.email.is_some();
    u.phone_mobile_from_source = u.profile.phone_mobile.is_some();
    u
}

/// A file row: external id, username, active, plus extra cells.
fn row(n: u64, ext: &str, extra: &[(FieldKey, &str)]) -> BatchItem {
    let mut cells = vec![
        (FieldKey::ExternalId, ext.to_owned()),
        (FieldKey::Username, format!("user-{ext}")),
        (FieldKey::Active, "true".to_owned()),
    ];
    for (k, v) in extra {
        cells.retain(|(key, _)| key != k);
        cells.push((*k, v.to_string()));
    }
    RawRecord {
        row: n,
        cells,
        custom: vec![],
    }
    .validate(&ReadOptions::default())
}

fn ctx(users: Vec<StoredUser>) -> Context {
    Context {
        users,
        ..Context::default()
    }
}

fn run(batch: Vec<BatchItem>, ctx: &Context) -> Plan {
    let mut n = 0;
    plan(&batch, ctx, &options(), &mut || {
        n += 1;
        UserId::new(format!("new-{n}"))
    })
}

fn only(plan: &Plan) -> &PlannedRecord {
    assert_eq!(plan.records.len(), 1, "{plan:#?}");
    &plan.records[0]
}

fn error(r: &PlannedRecord) -> &Issue {
    r.error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error: {r:#?}"))
}

#[test]
fn creates_a_new_user_managed_by_the_configuration() {
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Email, "jane@acme.com")])],
        &ctx(vec![]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Created);
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.expected_version, None);
    assert_eq!(w.user.version, 1);
    assert_eq!(w.user.managed_by, Some(ConfigId::new(CONFIG)));
    assert!(w.user.email_from_source);
    assert_eq!(p.counts.created, 1);
}

#[test]
fn linked_by_external_id() {
    let u = managed(with_ext(stored("u1"), "E1"), CONFIG);
    let p = run(
        vec![row(
            2,
            "E1",
            &[(FieldKey::Username, "u1"), (FieldKey::JobTitle, "CTO")],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    assert_eq!(r.user_id, Some(UserId::new("u1")));
    assert_eq!(r.changed_fields, vec!["job_title"]);
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.expected_version, Some(3));
    assert_eq!(w.user.version, 4);
}

#[test]
fn claims_an_unmanaged_user_by_email() {
    let u = with_email(stored("u1"), "Jane@Acme.com");
    let p = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Username, "U1"),
                (FieldKey::Email, "jane@acme.com"),
            ],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    assert_eq!(r.user_id, Some(UserId::new("u1")));
    assert_eq!(
        r.note.as_deref(),
        Some("Claimed an existing user matched by Email")
    );
    assert_eq!(
        r.write.as_ref().unwrap().user.managed_by,
        Some(ConfigId::new(CONFIG))
    );
    assert_eq!(p.counts.updated, 1);
}

#[test]
fn claims_an_unmanaged_user_by_employee_id() {
    let mut u = stored("u1");
    u.profile.employee_id = Some(EmployeeId::parse("00042").unwrap());
    let p = run(
        vec![row(
            2,
            "E1",
            &[(FieldKey::Username, "u1"), (FieldKey::EmployeeId, "00042")],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.user_id, Some(UserId::new("u1")));
    assert_eq!(
        r.note.as_deref(),
        Some("Claimed an existing user matched by Employee ID")
    );
}

#[test]
fn match_candidate_conflict_when_an_identifying_field_differs() {
    // Mobile and employee number match, the work email differs.
    let mut u = with_email(stored("u1"), "jane@acme.com");
    u.profile.employee_id = Some(EmployeeId::parse("42").unwrap());
    u.profile.phone_mobile = Some(Phone::parse("+447495944376", None).unwrap());
    let p = run(
        vec![row(
            5,
            "E1",
            &[
                (FieldKey::EmployeeId, "42"),
                (FieldKey::PhoneMobile, "+44 7495 944376"),
                (FieldKey::Email, "jane.doe@acme.com"),
                (FieldKey::Username, "u1"),
            ],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Failed);
    let e = error(r);
    assert_eq!(e.error_type, ErrorType::MatchCandidateConflict);
    assert_eq!(e.additional_data, "email=jane.doe@acme.com");
    assert!(e.message.contains("different Email"), "{}", e.message);
    assert!(r.write.is_none());
}

#[test]
fn match_candidate_conflict_when_several_users_match() {
    let a = with_email(stored("a"), "jane@acme.com");
    let mut b = stored("b");
    b.profile.employee_id = Some(EmployeeId::parse("42").unwrap());
    let p = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Email, "jane@acme.com"),
                (FieldKey::EmployeeId, "42"),
            ],
        )],
        &ctx(vec![a, b]),
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::MatchCandidateConflict);
    assert_eq!(e.additional_data, "employee_id=42; email=jane@acme.com");
}

#[test]
fn organisation_conflict_for_each_unique_field() {
    let mut holder = managed(
        with_email(with_ext(stored("holder"), "H1"), "taken@acme.com"),
        CONFIG,
    );
    holder.profile.employee_id = Some(EmployeeId::parse("E-9").unwrap());
    holder.profile.phone_mobile = Some(Phone::parse("+447495944376", None).unwrap());
    holder.profile.username = Some(UserName::parse("Taken").unwrap());
    let cases: [(FieldKey, &str, &str); 4] = [
        (FieldKey::Username, "TAKEN", "username=TAKEN"),
        (FieldKey::EmployeeId, "E-9", "employee_id=E-9"),
        (FieldKey::Email, "TAKEN@acme.com", "email=TAKEN@acme.com"),
        (
            FieldKey::PhoneMobile,
            "+44 7495 944376",
            "phone_mobile=+44 7495 944376",
        ),
    ];
    for (field, value, data) in cases {
        let p = run(
            vec![row(2, "E1", &[(field, value)])],
            &ctx(vec![holder.clone()]),
        );
        let e = error(only(&p));
        assert_eq!(e.error_type, ErrorType::OrganisationConflict, "{field}");
        assert_eq!(e.additional_data, data);
    }
    // External ID: a record that links to user A by external id but asks for B's username.
    let a = managed(with_ext(stored("a"), "E1"), CONFIG);
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Username, "taken")])],
        &ctx(vec![a, holder.clone()]),
    );
    assert_eq!(error(only(&p)).additional_data, "username=taken");
    // And the external id itself held by a user reached otherwise (a SCIM PUT changing it).
    let mut rec = Incoming::new(1, Link::User(UserId::new("a")));
    rec.provided.insert(FieldKey::ExternalId);
    rec.profile.external_id = Some(ExternalId::parse("H1").unwrap());
    let a = managed(stored("a"), CONFIG);
    let p = run(vec![Ok(rec)], &ctx(vec![a, holder]));
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert_eq!(e.additional_data, "external_id=H1");
}

#[test]
fn global_conflict_for_email_and_mobile_never_names_the_other_organisation() {
    let mut c = ctx(vec![]);
    c.foreign_emails.insert("jane@acme.com".into());
    c.foreign_phones.insert("+447495944376".into());
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Email, "Jane@acme.com")])],
        &c,
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::GlobalConflict);
    assert_eq!(e.additional_data, "email=Jane@acme.com");
    let p = run(
        vec![row(2, "E1", &[(FieldKey::PhoneMobile, "+44 7495 944376")])],
        &c,
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::GlobalConflict);
    assert_eq!(e.additional_data, "phone_mobile=+44 7495 944376");
    assert!(
        !e.message.to_lowercase().contains("organisation "),
        "{}",
        e.message
    );
}

#[test]
fn in_batch_duplicates_fail_every_row_involved() {
    let p = run(
        vec![
            row(2, "E1", &[(FieldKey::Email, "dup@acme.com")]),
            row(3, "E2", &[]),
            row(4, "E3", &[(FieldKey::Email, "DUP@acme.com")]),
            row(9, "E4", &[(FieldKey::Email, "dup@acme.com")]),
        ],
        &ctx(vec![]),
    );
    let actions: Vec<Action> = p.records.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Failed,
            Action::Created,
            Action::Failed,
            Action::Failed
        ]
    );
    let e = error(&p.records[0]);
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert!(e.message.contains("rows 2, 4, 9"), "{}", e.message);
    assert_eq!(error(&p.records[2]).additional_data, "email=DUP@acme.com");
    assert_eq!(p.counts.failed, 3);
}

#[test]
fn a_rejected_row_still_blocks_its_twin() {
    // Row 3 fails validation (bad email) but names the same person as row 2: neither syncs.
    let p = run(
        vec![
            row(2, "E1", &[]),
            row(3, "E1", &[(FieldKey::Email, "not-an-email")]),
        ],
        &ctx(vec![]),
    );
    let actions: Vec<Action> = p.records.iter().map(|r| r.action).collect();
    assert_eq!(actions, vec![Action::Failed, Action::Failed]);
    let e = error(&p.records[0]);
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert!(e.message.contains("rows 2, 3"), "{}", e.message);
    assert_eq!(error(&p.records[1]).error_type, ErrorType::InvalidEmail);
}

#[test]
fn a_user_managed_by_another_configuration_is_not_taken_over() {
    let u = managed(with_ext(stored("u1"), "E1"), "cfg-b");
    let p = run(vec![row(2, "E1", &[])], &ctx(vec![u]));
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert_eq!(e.additional_data, "external_id=E1");
    // Nor claimed by email.
    let u = managed(with_email(stored("u2"), "jane@acme.com"), "cfg-b");
    let p = run(
        vec![row(2, "E9", &[(FieldKey::Email, "jane@acme.com")])],
        &ctx(vec![u]),
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert_eq!(e.additional_data, "email=jane@acme.com");
}

#[test]
fn empty_email_never_clears_an_admin_entered_email() {
    let mut u = managed(with_ext(stored("u1"), "E1"), CONFIG);
    u.profile.email = Some(Email::parse("admin-typed@acme.com").unwrap());
    u.email_from_source = false;
    u.profile.job_title = Some("Old".into());
    let p = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Username, "u1"),
                (FieldKey::Email, ""),
                (FieldKey::JobTitle, ""),
            ],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    let w = r.write.as_ref().unwrap();
    assert_eq!(
        w.user.profile.email.as_ref().unwrap().as_str(),
        "admin-typed@acme.com"
    );
    assert!(!w.user.email_from_source);
    // Every other mapped field that arrives empty is cleared.
    assert_eq!(w.user.profile.job_title, None);
    assert_eq!(r.changed_fields, vec!["job_title"]);
}

#[test]
fn empty_contact_fields_clear_what_the_source_provided() {
    let mut u = managed(with_ext(stored("u1"), "E1"), CONFIG);
    u.profile.email = Some(Email::parse("u1@acme.com").unwrap());
    u.profile.phone_mobile = Some(Phone::parse("+44 7495 944376", None).unwrap());
    u.email_from_source = true;
    u.phone_mobile_from_source = true;
    let p = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Username, "u1"),
                (FieldKey::Email, ""),
                (FieldKey::PhoneMobile, ""),
            ],
        )],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    assert_eq!(r.changed_fields, vec!["email", "phone_mobile"]);
    let w = r.write.as_ref().unwrap();
    assert_eq!(
        w.user.profile.email, None,
        "the company phone and email move on"
    );
    assert_eq!(w.user.profile.phone_mobile, None);
    assert!(!w.user.email_from_source && !w.user.phone_mobile_from_source);
}

#[test]
fn manager_resolved_after_the_batch_even_when_listed_later() {
    let p = run(
        vec![
            row(2, "E2", &[(FieldKey::Manager, "E1")]),
            row(3, "E1", &[]),
        ],
        &ctx(vec![]),
    );
    let report = p.records[0].write.as_ref().unwrap();
    let boss = p.records[1].write.as_ref().unwrap();
    assert_eq!(report.user.manager_id.as_ref(), Some(&boss.user.id));
    assert!(p.records[0].warnings.is_empty());
}

#[test]
fn manager_not_found_is_a_warning_and_the_rest_applies() {
    let p = run(
        vec![row(
            2,
            "E2",
            &[(FieldKey::Manager, "NOPE"), (FieldKey::JobTitle, "Dev")],
        )],
        &ctx(vec![]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Created);
    assert_eq!(r.warnings[0].error_type, ErrorType::ManagerNotFound);
    assert_eq!(r.warnings[0].additional_data, "manager=NOPE");
    assert_eq!(r.write.as_ref().unwrap().user.manager_id, None);
    assert_eq!(p.counts.warnings, 1);
    assert_eq!(
        p.counts.completed_status(),
        crate::run::RunStatus::NeedsAttention
    );
    let log = r.log_row();
    assert_eq!(log.error_type_codes(), "MANAGER_NOT_FOUND");
    assert_eq!(log.action, Action::Created);
}

#[test]
fn manager_cycle_is_a_warning() {
    // Self-manager.
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Manager, "E1")])],
        &ctx(vec![]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Created);
    assert_eq!(r.warnings[0].error_type, ErrorType::ManagerCycle);
    assert_eq!(r.write.as_ref().unwrap().user.manager_id, None);

    // A loop through a stored user: stored E1 reports to E2; the batch makes E2 report to E1.
    let e2 = managed(with_ext(stored("u2"), "E2"), CONFIG);
    let mut e1 = managed(with_ext(stored("u1"), "E1"), CONFIG);
    e1.manager_id = Some(UserId::new("u2"));
    let p = run(
        vec![row(
            7,
            "E2",
            &[(FieldKey::Username, "u2"), (FieldKey::Manager, "E1")],
        )],
        &ctx(vec![e1, e2]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Unchanged, "{r:#?}");
    assert_eq!(r.warnings[0].error_type, ErrorType::ManagerCycle);
    assert!(
        r.warnings[0].message.contains("E2 → E1 → E2"),
        "{}",
        r.warnings[0].message
    );
}

#[test]
fn deactivation_and_reactivation() {
    let u = managed(with_ext(stored("u1"), "E1"), CONFIG);
    let p = run(
        vec![row(
            2,
            "E1",
            &[(FieldKey::Username, "u1"), (FieldKey::Active, "FALSE")],
        )],
        &ctx(vec![u.clone()]),
    );
    assert_eq!(only(&p).action, Action::Deactivated);
    assert_eq!(p.counts.deactivated, 1);

    let mut off = u;
    off.active = false;
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Username, "u1")])],
        &ctx(vec![off]),
    );
    assert_eq!(only(&p).action, Action::Reactivated);
    assert!(only(&p).write.as_ref().unwrap().user.active);
    assert_eq!(p.counts.reactivated, 1);
}

#[test]
fn an_unknown_leaver_is_ignored_not_created() {
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Active, "false")])],
        &ctx(vec![]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Ignored);
    assert!(r.write.is_none() && r.error.is_none());
    assert_eq!((p.counts.ignored_inactive, p.counts.skipped), (1, 0));
    assert_eq!(
        p.counts.completed_status(),
        RunStatus::Success,
        "a full export with past leavers is a Success"
    );
}

#[test]
fn an_unchanged_row_writes_nothing() {
    let first = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Email, "jane@acme.com"),
                (FieldKey::JobTitle, "CTO"),
            ],
        )],
        &ctx(vec![]),
    );
    let created = first.records[0].write.clone().unwrap().user;
    let again = run(
        vec![row(
            2,
            "E1",
            &[
                (FieldKey::Email, "jane@acme.com"),
                (FieldKey::JobTitle, "CTO"),
            ],
        )],
        &ctx(vec![created]),
    );
    let r = only(&again);
    assert_eq!(r.action, Action::Unchanged);
    assert!(r.write.is_none());
    assert!(r.changed_fields.is_empty());
    assert_eq!(again.counts.unchanged, 1);
    assert_eq!(
        again.counts.completed_status(),
        crate::run::RunStatus::Success
    );
}

#[test]
fn rejected_rows_keep_their_place_in_the_log() {
    let bad = Err(Rejected {
        row: 3,
        external_id: "E2".into(),
        username: "x".into(),
        issues: vec![Issue::new(ErrorType::InvalidEmail, "bad", "email=x")],
    });
    let p = run(
        vec![row(2, "E1", &[]), bad, row(4, "E3", &[])],
        &ctx(vec![]),
    );
    let rows: Vec<u64> = p.records.iter().map(|r| r.row).collect();
    assert_eq!(rows, vec![2, 3, 4]);
    assert_eq!(
        p.records[1].log_row().error_types,
        [ErrorType::InvalidEmail]
    );
}

#[test]
fn planning_is_deterministic() {
    let batch = || {
        vec![
            row(
                2,
                "E2",
                &[(FieldKey::Manager, "E1"), (FieldKey::Email, "a@acme.com")],
            ),
            row(3, "E1", &[(FieldKey::Manager, "E2")]),
            row(4, "E3", &[(FieldKey::Email, "a@acme.com")]),
        ]
    };
    assert_eq!(run(batch(), &ctx(vec![])), run(batch(), &ctx(vec![])));
}

/// An admin's Bulk Update row: a username and the cells it fills in.
fn bulk_row(n: u64, username: &str, cells: &[(FieldKey, &str)]) -> BatchItem {
    let mut all = vec![(FieldKey::Username, username.to_owned())];
    all.extend(cells.iter().map(|(k, v)| (*k, v.to_string())));
    crate::bulk_update::record(n, &all, &mut crate::values::PhoneCache::new())
}

#[test]
fn bulk_update_links_by_username_and_changes_only_the_cells_present() {
    let mut u = with_email(with_ext(stored("ann"), "E1"), "ann@acme.com");
    u.profile.job_title = Some("Clerk".into());
    u.profile.department = Some("Wards".into());
    let p = run(
        vec![bulk_row(2, "ANN", &[(FieldKey::JobTitle, "Nurse")])],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    assert_eq!(r.changed_fields, vec!["job_title"]);
    assert_eq!(r.external_id, "E1", "the log shows the user's external ID");
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.expected_version, Some(3));
    assert_eq!(w.user.profile.department.as_deref(), Some("Wards"));
    assert_eq!(
        w.user.profile.username.as_ref().unwrap().as_str(),
        "ann",
        "the username only names the user"
    );
    assert_eq!(w.user.managed_by, None, "an admin's update manages no one");
    assert!(!w.user.email_from_source);
}

#[test]
fn bulk_update_skips_a_user_a_source_manages() {
    let u = managed(with_ext(stored("ann"), "E1"), "cfg-b");
    let p = run(
        vec![bulk_row(2, "ann", &[(FieldKey::JobTitle, "Nurse")])],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Skipped);
    assert_eq!(error(r).error_type, ErrorType::ManagedByExternalSource);
    assert!(r.write.is_none());
    assert_eq!(p.counts.skipped, 1);
}

#[test]
fn bulk_update_never_creates_or_claims_a_user() {
    // Unknown username, though the email would claim an unmanaged user in a sync file.
    let u = with_email(stored("ann"), "zed@acme.com");
    let p = run(
        vec![bulk_row(2, "zed", &[(FieldKey::Email, "zed@acme.com")])],
        &ctx(vec![u]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Skipped);
    let e = error(r);
    assert_eq!(e.error_type, ErrorType::NotFound);
    assert_eq!(e.message, "no user 'zed' in your organisation");
    assert!(r.write.is_none());
}

#[test]
fn bulk_update_rows_naming_one_username_twice_all_fail() {
    let p = run(
        vec![
            bulk_row(2, "ann", &[(FieldKey::JobTitle, "Nurse")]),
            bulk_row(3, "bob", &[]),
            bulk_row(4, "Ann", &[(FieldKey::JobTitle, "Doctor")]),
        ],
        &ctx(vec![stored("ann"), stored("bob")]),
    );
    let actions: Vec<Action> = p.records.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        vec![Action::Failed, Action::Unchanged, Action::Failed]
    );
    for r in [&p.records[0], &p.records[2]] {
        let e = error(r);
        assert_eq!(e.error_type, ErrorType::OrganisationConflict);
        assert!(e.message.contains("Username in rows 2, 4"), "{}", e.message);
    }
}

#[test]
fn bulk_update_taken_values_are_conflicts() {
    let ann = with_email(stored("ann"), "ann@acme.com");
    let mut c = ctx(vec![ann, stored("bob")]);
    c.foreign_emails.insert("elsewhere@other.com".into());
    let p = run(
        vec![
            bulk_row(2, "bob", &[(FieldKey::Email, "ANN@acme.com")]),
            bulk_row(3, "ann", &[(FieldKey::Email, "elsewhere@other.com")]),
        ],
        &c,
    );
    let e = error(&p.records[0]);
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert_eq!(e.additional_data, "email=ANN@acme.com");
    assert_eq!(error(&p.records[1]).error_type, ErrorType::GlobalConflict);
}

/// An admin's edit of `user` in the admin panel, as the panel saves it.
fn admin_edit(user: &StoredUser, form: &[(FieldKey, &str)]) -> BatchItem {
    let form: Vec<(FieldKey, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (edited, changed) = crate::admin_edit::apply_edit(user, &form).unwrap();
    Ok(crate::admin_edit::record(&edited, &changed))
}

#[test]
fn an_admin_edit_writes_the_changed_fields_and_leaves_the_manager_alone() {
    let mut u = managed(with_email(stored("ann"), "ann@acme.com"), "cfg-b");
    u.profile.job_title = Some("Nurse".into());
    // The source provides no mobile number: the admin may enter one, and clear it again.
    let p = run(
        vec![admin_edit(
            &u,
            &[(FieldKey::PhoneMobile, "+44 7495 944376")],
        )],
        &ctx(vec![u.clone()]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Updated);
    assert_eq!(r.changed_fields, vec!["phone_mobile"]);
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.expected_version, Some(3));
    assert_eq!(w.user.managed_by, Some(ConfigId::new("cfg-b")));
    assert!(!w.user.phone_mobile_from_source, "admin-entered");
    let entered = w.user.clone();
    let p = run(
        vec![admin_edit(&entered, &[(FieldKey::PhoneMobile, "")])],
        &ctx(vec![entered.clone()]),
    );
    let w = only(&p).write.as_ref().unwrap();
    assert_eq!(w.user.profile.phone_mobile, None, "an admin clears it");
}

#[test]
fn an_admin_edit_of_a_managed_field_is_refused() {
    let u = managed(with_email(stored("ann"), "ann@acme.com"), "cfg-b");
    let mut record = crate::admin_edit::record(&u, &[FieldKey::JobTitle]);
    record.profile.job_title = Some("Boss".into());
    let p = run(vec![Ok(record)], &ctx(vec![u]));
    let r = only(&p);
    assert_eq!(r.action, Action::Failed);
    let e = error(r);
    assert_eq!(e.error_type, ErrorType::ManagedByExternalSource);
    assert_eq!(e.fields, vec![FieldKey::JobTitle]);
    assert!(r.write.is_none());
}

#[test]
fn an_admin_edit_meets_the_uniqueness_rules_with_the_fields_as_data() {
    let ann = with_email(stored("ann"), "ann@acme.com");
    let bob = stored("bob");
    let mut c = ctx(vec![ann, bob.clone()]);
    c.foreign_phones.insert("+447495944376".into());
    let p = run(
        vec![admin_edit(
            &bob,
            &[
                (FieldKey::Email, "ANN@acme.com"),
                (FieldKey::Username, "Ann"),
            ],
        )],
        &c,
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::OrganisationConflict);
    assert_eq!(e.fields, vec![FieldKey::Username, FieldKey::Email]);
    assert_eq!(e.additional_data, "username=Ann; email=ANN@acme.com");
    let p = run(
        vec![admin_edit(
            &bob,
            &[(FieldKey::PhoneMobile, "+44 7495 944376")],
        )],
        &c,
    );
    let e = error(only(&p));
    assert_eq!(e.error_type, ErrorType::GlobalConflict);
    assert_eq!(e.fields, vec![FieldKey::PhoneMobile]);
}

#[test]
fn a_scim_delete_deactivates_and_hides_the_user() {
    let u = managed(with_ext(stored("ann"), "E1"), CONFIG);
    let delete = |u: &StoredUser| Ok(Incoming::scim_delete(1, UserId::new("ann"), &u.profile));
    let p = run(vec![delete(&u)], &ctx(vec![u.clone()]));
    let r = only(&p);
    assert_eq!(r.action, Action::Deactivated);
    assert_eq!(
        r.note.as_deref(),
        Some("Deleted through SCIM: deactivated and hidden from SCIM")
    );
    assert_eq!((r.external_id.as_str(), r.username.as_str()), ("E1", "ann"));
    assert_eq!(r.changed_fields, vec!["active"]);
    let w = r.write.as_ref().unwrap();
    assert!(w.user.scim_deleted && !w.user.active);
    assert_eq!(w.expected_version, Some(3));

    // An inactive user is hidden all the same.
    let mut inactive = u.clone();
    inactive.active = false;
    let p = run(vec![delete(&inactive)], &ctx(vec![inactive.clone()]));
    let r = only(&p);
    assert_eq!(r.action, Action::Deactivated);
    assert!(r.changed_fields.is_empty());
    assert!(r.write.as_ref().unwrap().user.scim_deleted);

    // Once deleted, SCIM cannot address it.
    let gone = w.user.clone();
    let p = run(vec![delete(&gone)], &ctx(vec![gone]));
    assert_eq!(error(only(&p)).error_type, ErrorType::NotFound);

    // Nor delete a user another configuration manages.
    let other = managed(stored("ann"), "cfg-b");
    let p = run(vec![delete(&other)], &ctx(vec![other.clone()]));
    let r = only(&p);
    assert_eq!(error(r).error_type, ErrorType::OrganisationConflict);
    assert!(r.write.is_none());
}

#[test]
fn an_operators_user_is_created_unmanaged_and_never_claims_one() {
    let unmanaged = |pairs: &[(FieldKey, &str)]| -> BatchItem {
        let cells: Vec<(FieldKey, String)> =
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Ok(crate::record::unmanaged_user(&cells, &ReadOptions::default()).unwrap())
    };
    let p = run(
        vec![unmanaged(&[
            (FieldKey::Username, "ann"),
            (FieldKey::Email, "ann@acme.com"),
        ])],
        &ctx(vec![]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Created);
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.user.managed_by, None, "no source manages it");
    assert!(!w.user.email_from_source);

    // An unmanaged user with the same email is a conflict, not a user to claim.
    let p = run(
        vec![unmanaged(&[
            (FieldKey::Username, "ann2"),
            (FieldKey::Email, "ann@acme.com"),
        ])],
        &ctx(vec![with_email(stored("ann"), "ann@acme.com")]),
    );
    let r = only(&p);
    assert!(r.write.is_none());
    assert_eq!(error(r).error_type, ErrorType::OrganisationConflict);
}

#[test]
fn a_user_deleted_through_scim_comes_back_and_holds_nothing_meanwhile() {
    let mut gone = managed(
        with_email(with_ext(stored("ann"), "E1"), "ann@acme.com"),
        CONFIG,
    );
    gone.scim_deleted = true;
    gone.active = false;
    // Another record may take its values meanwhile.
    let p = run(
        vec![row(2, "E9", &[(FieldKey::Email, "ann@acme.com")])],
        &ctx(vec![gone.clone()]),
    );
    assert_eq!(only(&p).action, Action::Created, "{p:#?}");

    // The same person again, by external ID: the same account, reactivated.
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Username, "ann")])],
        &ctx(vec![gone.clone()]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Reactivated);
    let w = r.write.as_ref().unwrap();
    assert_eq!(w.user.id, gone.id);
    assert!(!w.user.scim_deleted && w.user.active);
    assert_eq!(w.expected_version, Some(gone.version));

    // Another configuration's record does not bring it back.
    let mut elsewhere = gone.clone();
    elsewhere.managed_by = Some(ConfigId::new("cfg-b"));
    let p = run(
        vec![row(2, "E1", &[(FieldKey::Username, "ann")])],
        &ctx(vec![elsewhere]),
    );
    let r = only(&p);
    assert_eq!(r.action, Action::Created);
    assert_ne!(r.write.as_ref().unwrap().user.id, gone.id);
}
