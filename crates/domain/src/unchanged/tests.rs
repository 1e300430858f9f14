//! The sieve against the planner: for each tricky file, the rows the sieve takes plus the plan
//! of the others must give exactly the plan of the whole file (log rows, counts, writes), or
//! the sieve's checks must ask for the whole file.

use super::*;
use crate::StoredUser;
use crate::ids::UserId;
use crate::plan::{Context, Options, Write, plan};
use crate::record::{RawRecord, ReadOptions};
use crate::values::{Email, PhoneRegion};

const CONFIG: &str = "cfg-a";

fn mapping() -> Mapping {
    let fields = [
        ("external_id", "Ext"),
        ("username", "User"),
        ("employee_id", "Emp"),
        ("email", "Mail"),
        ("phone_mobile", "Mobile"),
        ("phone_work", "Work"),
        ("manager", "Boss"),
        ("job_title", "Title"),
        ("active", "Active"),
        ("start_employment_date", "Start"),
    ];
    Mapping::new(
        fields.map(|(k, c)| (k.to_owned(), c.to_owned())),
        [("CostCentre".to_owned(), "Cc".to_owned())],
        [],
    )
    .unwrap()
}

/// A file row: cells in the mapping's field order (external id, username, employee id,
/// email, mobile, work phone, manager, title, active, start) and the custom field.
type Row<'a> = (u64, [&'a str; 10], &'a str);

fn fields_of(cells: &[&str; 10]) -> Vec<(FieldKey, String)> {
    let keys = [
        FieldKey::ExternalId,
        FieldKey::Username,
        FieldKey::EmployeeId,
        FieldKey::Email,
        FieldKey::PhoneMobile,
        FieldKey::PhoneWork,
        FieldKey::Manager,
        FieldKey::JobTitle,
        FieldKey::Active,
        FieldKey::StartEmploymentDate,
    ];
    // The mapping's order is the field keys' order; the reader hands cells in that order.
    let mut fields: Vec<(FieldKey, String)> = keys
        .iter()
        .zip(cells)
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    let order: Vec<FieldKey> = mapping().fields().map(|(f, _)| f).collect();
    fields.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
    fields
}

fn options(region: Option<PhoneRegion>) -> ReadOptions {
    ReadOptions {
        phone_region: region,
    }
}

fn validate(row: &Row<'_>, region: Option<PhoneRegion>) -> BatchItem {
    RawRecord {
        row: row.0,
        cells: fields_of(&row.1),
        custom: vec![("CostCentre".to_owned(), row.2.to_owned())],
    }
    .validate(&options(region))
}

fn plan_of(batch: &[BatchItem], users: &[StoredUser]) -> Plan {
    let ctx = Context {
        users: users.to_vec(),
        ..Context::default()
    };
    let mut n = 0;
    plan(
        batch,
        &ctx,
        &Options {
            config: ConfigId::new(CONFIG),
            create_inactive: false,
        },
        &mut || {
            n += 1;
            UserId::new(format!("new-{n}"))
        },
    )
}

/// The users after applying a plan's writes.
fn apply(users: &mut Vec<StoredUser>, plan: &Plan) {
    for Write { user, .. } in plan.writes() {
        match users.iter_mut().find(|u| u.id == user.id) {
            Some(u) => *u = user.clone(),
            None => users.push(user.clone()),
        }
    }
}

fn view<'a>(
    u: &'a StoredUser,
    users: &'a [StoredUser],
    dates: &'a [Option<String>; 2],
) -> StoredView<'a> {
    let p = &u.profile;
    let manager = match &u.manager_id {
        None => StoredManager::None,
        Some(id) => match users
            .iter()
            .find(|m| m.id == *id)
            .and_then(|m| m.profile.external_id.as_ref())
        {
            Some(ext) => StoredManager::External(ext.as_str()),
            None => StoredManager::Unnamed,
        },
    };
    StoredView {
        managed_by: u.managed_by.as_ref().map(|c| c.as_str()),
        external_id: p.external_id.as_ref().map_or("", |v| v.as_str()),
        username: p.username.as_ref().map_or("", |v| v.as_str()),
        employee_id: p.employee_id.as_ref().map(|v| v.as_str()),
        first_name: p.first_name.as_deref(),
        second_name: p.second_name.as_deref(),
        middle_name: p.middle_name.as_deref(),
        display_name: p.display_name.as_deref(),
        email: p.email.as_ref().map(|v| v.as_str()),
        email_from_source: u.email_from_source,
        phone_mobile: p.phone_mobile.as_ref().map(|v| v.as_str()),
        phone_mobile_e164: p.phone_mobile.as_ref().map(|v| v.e164()),
        phone_mobile_from_source: u.phone_mobile_from_source,
        phone_work: p.phone_work.as_ref().map(|v| v.as_str()),
        phone_work_e164: p.phone_work.as_ref().map(|v| v.e164()),
        manager,
        job_title: p.job_title.as_deref(),
        location: p.location.as_deref(),
        department: p.department.as_deref(),
        company: p.company.as_deref(),
        description: p.description.as_deref(),
        active: u.active,
        start_employment_date: dates[0].as_deref(),
        end_employment_date: dates[1].as_deref(),
        custom_fields: &p.custom_fields,
    }
}

/// What the sieve did with a file.
#[derive(Debug, PartialEq, Eq)]
enum Sifting {
    /// It took this many rows and the plan of the others holds.
    Took(usize),
    /// Its checks asked for the whole file.
    Whole,
}

/// Plan `file` against `users` whole and through the sieve; assert both give the same, and
/// say what the sieve did.
fn compare(users: &[StoredUser], file: &[Row<'_>], region: Option<PhoneRegion>) -> Sifting {
    let whole: Vec<BatchItem> = file.iter().map(|r| validate(r, region)).collect();
    let expected = plan_of(&whole, users);

    let mut sieve = Sieve::new(&mapping(), &ConfigId::new(CONFIG)).unwrap();
    sieve.reserve(users.len());
    // Every other user goes through a part that is absorbed, as storage fills on two threads.
    let mut part = sieve.part();
    for (i, u) in users.iter().enumerate() {
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        let dates = [
            date(u.profile.start_employment_date),
            date(u.profile.end_employment_date),
        ];
        if u.profile.external_id.is_some() {
            let into = if i % 2 == 0 { &mut sieve } else { &mut part };
            into.add(&view(u, users, &dates));
        }
    }
    sieve.absorb(part);
    let mut phones = PhoneCache::new();
    let mut rest = Vec::new();
    for row in file {
        let fields = fields_of(&row.1);
        let fields: Vec<(FieldKey, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !sieve.take(row.0, &fields, &[row.2], &mut phones) {
            rest.push(validate(row, region));
        }
    }
    let sifted = sieve.finish();
    if sifted.conflicts_with(&rest) {
        return Sifting::Whole;
    }
    let mut got = plan_of(&rest, users);
    if !sifted.holds_for(&got) {
        return Sifting::Whole;
    }
    let took = sifted.unchanged.len();
    got.counts.unchanged += took as u64;
    got.unchanged = sifted.unchanged;
    assert_eq!(
        got.log_rows().collect::<Vec<_>>(),
        expected.log_rows().collect::<Vec<_>>()
    );
    assert_eq!(got.counts, expected.counts);
    assert_eq!(
        got.writes().collect::<Vec<_>>(),
        expected.writes().collect::<Vec<_>>()
    );
    Sifting::Took(took)
}

/// Users as a first sync of `file` leaves them.
fn synced(file: &[Row<'_>]) -> Vec<StoredUser> {
    let batch: Vec<BatchItem> = file.iter().map(|r| validate(r, None)).collect();
    let mut users = Vec::new();
    let first = plan_of(&batch, &users);
    apply(&mut users, &first);
    users
}

const BASE: [Row<'static>; 4] = [
    (
        2,
        [
            "E1",
            "ann",
            "1001",
            "Ann@Acme.com",
            "+447400000001",
            "+44 20 7946 0000",
            "",
            "CEO",
            "true",
            "2020-01-31",
        ],
        "CC1",
    ),
    (
        3,
        [
            "E2",
            "bob",
            "1002",
            "bob@acme.com",
            "+447400000002",
            "",
            "E1",
            "CFO",
            "true",
            "",
        ],
        "",
    ),
    (
        4,
        ["E3", "cy", "", "", "", "", "E2", "Clerk", "TRUE", ""],
        "CC3",
    ),
    (
        5,
        [
            "E4",
            "dee",
            "1004",
            "dee@acme.com",
            "+447400000004",
            "",
            "E2",
            "Clerk",
            "true",
            "",
        ],
        "CC4",
    ),
];

fn with(file: &[Row<'static>], row: usize, cell: usize, value: &'static str) -> Vec<Row<'static>> {
    let mut file = file.to_vec();
    file[row].1[cell] = value;
    file
}

#[test]
fn the_same_file_again_is_taken_whole() {
    let users = synced(&BASE);
    assert_eq!(compare(&users, &BASE, None), Sifting::Took(4));
}

#[test]
fn cells_are_compared_as_the_reader_cleans_them() {
    let users = synced(&BASE);
    let file = with(&BASE, 0, 0, " E1\u{200B}");
    let file = with(&file, 0, 8, "True");
    assert_eq!(compare(&users, &file, None), Sifting::Took(4));
}

#[test]
fn a_changed_case_in_an_email_or_username_is_an_update() {
    let users = synced(&BASE);
    assert_eq!(
        compare(&users, &with(&BASE, 0, 3, "ann@acme.com"), None),
        Sifting::Took(3)
    );
    assert_eq!(
        compare(&users, &with(&BASE, 1, 1, "Bob"), None),
        Sifting::Took(3)
    );
}

#[test]
fn empty_cells_clear_fields_but_keep_contacts() {
    let users = synced(&BASE);
    for (row, cell) in [(0, 2), (0, 3), (0, 4), (0, 5), (1, 6), (0, 7), (0, 9)] {
        assert_eq!(
            compare(&users, &with(&BASE, row, cell, ""), None),
            Sifting::Took(3),
            "cell {cell}"
        );
    }
    // An admin-entered email on a user whose source gives none stays, and the row is
    // unchanged; a source email on that user is an update.
    let mut users = users;
    users[2].profile.email = Some(Email::parse("cy@acme.com").unwrap());
    assert_eq!(compare(&users, &BASE, None), Sifting::Took(4));
    assert_eq!(
        compare(&users, &with(&BASE, 2, 3, "cy@acme.com"), None),
        Sifting::Took(3)
    );
    // A source email that is gone is kept, no longer from the source.
    users[2].email_from_source = true;
    assert_eq!(compare(&users, &BASE, None), Sifting::Took(3));
}

#[test]
fn custom_fields() {
    let users = synced(&BASE);
    let mut file = BASE.to_vec();
    file[0].2 = "CC9";
    file[2].2 = "";
    file[1].2 = " ";
    assert_eq!(compare(&users, &file, None), Sifting::Took(2));
}

#[test]
fn active_false_deactivates_and_an_inactive_user_stays() {
    let users = synced(&BASE);
    assert_eq!(
        compare(&users, &with(&BASE, 0, 8, "false"), None),
        Sifting::Took(3)
    );
    let leaver = with(&BASE, 3, 8, "false");
    let mut users = users;
    let batch: Vec<BatchItem> = leaver.iter().map(|r| validate(r, None)).collect();
    let left = plan_of(&batch, &users);
    assert_eq!(left.counts.deactivated, 1);
    apply(&mut users, &left);
    assert_eq!(compare(&users, &leaver, None), Sifting::Took(4));
    assert_eq!(
        compare(&users, &with(&BASE, 3, 8, "FALSE"), None),
        Sifting::Took(4)
    );
    assert_eq!(compare(&users, &BASE, None), Sifting::Took(3));
    assert_eq!(
        compare(&users, &with(&BASE, 3, 8, "no"), None),
        Sifting::Took(3)
    );
}

#[test]
fn managers() {
    let users = synced(&BASE);
    // A manager that matches no one is a warning each time: planned.
    assert_eq!(
        compare(&users, &with(&BASE, 2, 6, "E9"), None),
        Sifting::Took(3)
    );
    // A manager named after the report.
    let file = with(&BASE, 0, 6, "E3");
    assert_eq!(compare(&users, &file, None), Sifting::Whole);
    // A manager row after its reports, and a new manager.
    let mut file = BASE.to_vec();
    file[1].1[6] = "E5";
    file.push((6, ["E5", "eve", "", "", "", "", "", "VP", "true", ""], ""));
    assert_eq!(compare(&users, &file, None), Sifting::Took(3));
    // The stored manager's external ID is claimed away by another row.
    let mut users = synced(&BASE);
    users[0].managed_by = None;
    let mut file = BASE.to_vec();
    file[0].1[0] = "E1-new";
    assert_eq!(compare(&users, &file, None), Sifting::Whole);
}

#[test]
fn duplicate_keys_in_the_file_fail_both_rows() {
    let users = synced(&BASE);
    // The same row twice.
    let mut file = BASE.to_vec();
    file.push((9, BASE[1].1, BASE[1].2));
    assert_eq!(compare(&users, &file, None), Sifting::Whole);
    // A new row with an unchanged row's email in another case.
    let mut file = BASE.to_vec();
    file.push((
        9,
        ["E7", "gus", "", "BOB@acme.com", "", "", "", "", "true", ""],
        "",
    ));
    assert_eq!(compare(&users, &file, None), Sifting::Whole);
    // A rejected row with an unchanged row's external ID.
    let mut file = BASE.to_vec();
    file.push((9, ["E3", "zed", "", "", "", "", "", "", "maybe", ""], ""));
    assert_eq!(compare(&users, &file, None), Sifting::Whole);
    // Rows that only repeat each other's keys among new rows: the unchanged rows hold.
    let mut file = BASE.to_vec();
    for n in [9, 10] {
        file.push((n, ["E8", "hal", "", "", "", "", "", "", "true", ""], ""));
    }
    assert_eq!(compare(&users, &file, None), Sifting::Took(4));
}

#[test]
fn users_of_other_configurations_and_national_numbers_are_planned() {
    let mut users = synced(&BASE);
    users[1].managed_by = Some(ConfigId::new("cfg-b"));
    assert_eq!(compare(&users, &BASE, None), Sifting::Took(3));

    let gb = Some(PhoneRegion::parse("GB").unwrap());
    let file = with(&BASE, 0, 4, "07400 000001");
    let batch: Vec<BatchItem> = file.iter().map(|r| validate(r, gb)).collect();
    let mut users = Vec::new();
    let first = plan_of(&batch, &users);
    apply(&mut users, &first);
    assert_eq!(compare(&users, &file, gb), Sifting::Took(3));
}
