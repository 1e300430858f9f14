//! A user and its columns, once per driver: [`user_from_row`] reads a row of either driver
//! ([`UserColumns`]); [`user_args`] binds a user for sqlx (`Any`), [`execute_user`] and
//! [`update_changed`] for the direct SQLite path (rusqlite). A profile field is added here,
//! in [`USER_COLUMNS`] order, and in a migration.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rollcall_domain::user::Profile;
use rollcall_domain::values::{Email, EmployeeId, ExternalId, Phone, UserName};
use rollcall_domain::{ConfigId, OrgId, StoredUser, UserId};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Statement};
use sqlx::any::AnyRow;

use crate::db::{Arg, get};
use crate::failed;
use crate::{Result, StoreError};

pub(crate) const USER_COLUMNS: &str = "id, org_id, external_id, username, username_norm, employee_id, first_name, \
    second_name, email, email_norm, email_from_source, phone_mobile, phone_mobile_e164, phone_mobile_from_source, \
    phone_work, phone_work_e164, manager_id, job_title, location, department, company, description, active, \
    start_employment_date, end_employment_date, custom_fields, middle_name, display_name, contact_meta, managed_by, \
    scim_deleted, version, created_at, updated_at";
pub(crate) const USER_COLUMN_COUNT: usize = 34;

pub(crate) fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "unreadable user row");
    StoreError::Database
}

pub(crate) fn question_marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A row with the user columns, from sqlx or from the direct SQLite path.
pub(crate) trait UserColumns {
    fn text(&self, column: &str) -> Result<Option<String>>;
    fn int(&self, column: &str) -> Result<i64>;

    fn required(&self, column: &str) -> Result<String> {
        self.text(column)?.ok_or_else(|| corrupt(column))
    }
    fn flag(&self, column: &str) -> Result<bool> {
        Ok(self.int(column)? != 0)
    }
    fn date(&self, column: &str) -> Result<Option<NaiveDate>> {
        self.text(column)?
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| corrupt(column)))
            .transpose()
    }
}

impl UserColumns for AnyRow {
    fn text(&self, column: &str) -> Result<Option<String>> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<i64> {
        get(self, column)
    }
}

/// The position of a column in [`USER_COLUMNS`], which the direct SQLite path always selects
/// in that order (asking SQLite for column names by name costs more than the lookup itself;
/// a `match` compiles to a few length and byte comparisons, where a scan of the list made
/// reading a million users seconds slower).
fn user_column_index(column: &str) -> Result<usize> {
    Ok(match column {
        "id" => 0,
        "org_id" => 1,
        "external_id" => 2,
        "username" => 3,
        "username_norm" => 4,
        "employee_id" => 5,
        "first_name" => 6,
        "second_name" => 7,
        "email" => 8,
        "email_norm" => 9,
        "email_from_source" => 10,
        "phone_mobile" => 11,
        "phone_mobile_e164" => 12,
        "phone_mobile_from_source" => 13,
        "phone_work" => 14,
        "phone_work_e164" => 15,
        "manager_id" => 16,
        "job_title" => 17,
        "location" => 18,
        "department" => 19,
        "company" => 20,
        "description" => 21,
        "active" => 22,
        "start_employment_date" => 23,
        "end_employment_date" => 24,
        "custom_fields" => 25,
        "middle_name" => 26,
        "display_name" => 27,
        "contact_meta" => 28,
        "managed_by" => 29,
        "scim_deleted" => 30,
        "version" => 31,
        "created_at" => 32,
        "updated_at" => 33,
        _ => return Err(corrupt(column)),
    })
}

impl UserColumns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<Option<String>> {
        self.get(user_column_index(column)?).map_err(failed)
    }
    fn int(&self, column: &str) -> Result<i64> {
        self.get(user_column_index(column)?).map_err(failed)
    }
}

pub(crate) fn user_from_row(row: &impl UserColumns) -> Result<StoredUser> {
    let phone = |value: &str, e164: &str| -> Result<Option<Phone>> {
        Ok(match (row.text(value)?, row.text(e164)?) {
            (Some(v), Some(e)) => Some(Phone::from_stored(v, e)),
            _ => None,
        })
    };
    let custom = row.required("custom_fields")?;
    let custom_fields: BTreeMap<String, String> =
        serde_json::from_str(&custom).map_err(|_| corrupt("custom_fields"))?;
    let profile = Profile {
        external_id: row.text("external_id")?.map(ExternalId::from_stored),
        username: Some(UserName::from_stored(row.required("username")?)),
        employee_id: row.text("employee_id")?.map(EmployeeId::from_stored),
        first_name: row.text("first_name")?,
        second_name: row.text("second_name")?,
        middle_name: row.text("middle_name")?,
        display_name: row.text("display_name")?,
        contact_meta: match row.text("contact_meta")? {
            Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("contact_meta"))?,
            None => Default::default(),
        },
        email: row.text("email")?.map(Email::from_stored),
        phone_mobile: phone("phone_mobile", "phone_mobile_e164")?,
        phone_work: phone("phone_work", "phone_work_e164")?,
        job_title: row.text("job_title")?,
        location: row.text("location")?,
        department: row.text("department")?,
        company: row.text("company")?,
        description: row.text("description")?,
        start_employment_date: row.date("start_employment_date")?,
        end_employment_date: row.date("end_employment_date")?,
        custom_fields,
    };
    Ok(StoredUser {
        id: UserId::new(row.required("id")?),
        profile,
        active: row.flag("active")?,
        manager_id: row.text("manager_id")?.map(UserId::new),
        managed_by: row.text("managed_by")?.map(ConfigId::new),
        email_from_source: row.flag("email_from_source")?,
        phone_mobile_from_source: row.flag("phone_mobile_from_source")?,
        scim_deleted: row.flag("scim_deleted")?,
        version: row.int("version")?,
    })
}

/// The values of a user's unique columns. A user deleted through SCIM holds none of them
/// against anyone (SPEC §3): they are empty, and its normalised username is one no name can
/// have (names have no control characters). What its return is matched by is kept in
/// `deleted_user_keys`; the display columns (username, email, mobile) stay for its history.
struct Held<'u> {
    external_id: Option<&'u str>,
    username_norm: String,
    employee_id: Option<&'u str>,
    email_norm: Option<&'u str>,
    mobile_e164: Option<&'u str>,
}

impl<'u> Held<'u> {
    fn of(u: &'u StoredUser) -> Held<'u> {
        let p = &u.profile;
        if u.scim_deleted {
            return Held {
                external_id: None,
                username_norm: format!("{DELETED_NAME_PREFIX}{}", u.id),
                employee_id: None,
                email_norm: None,
                mobile_e164: None,
            };
        }
        Held {
            external_id: p.external_id.as_ref().map(|v| v.as_str()),
            username_norm: p
                .username
                .as_ref()
                .map(|v| v.normalized())
                .unwrap_or_default(),
            employee_id: p.employee_id.as_ref().map(|v| v.as_str()),
            email_norm: p.email.as_ref().map(|v| v.normalized()),
            mobile_e164: p.phone_mobile.as_ref().map(|v| v.e164()),
        }
    }
}

/// How a deleted user's normalised username starts (as migration 0016 writes it).
pub(crate) const DELETED_NAME_PREFIX: &str = "\tdeleted ";

/// The stored columns of a user, in [`USER_COLUMNS`] order except the trailing timestamps.
pub(crate) fn user_args(org: &OrgId, u: &StoredUser) -> Vec<Arg> {
    let p = &u.profile;
    let username = p.username.as_ref();
    let held = Held::of(u);
    vec![
        u.id.as_str().into(),
        org.as_str().into(),
        held.external_id.into(),
        username.map(|v| v.as_str()).unwrap_or_default().into(),
        held.username_norm.into(),
        held.employee_id.into(),
        p.first_name.clone().into(),
        p.second_name.clone().into(),
        p.email.as_ref().map(|v| v.as_str()).into(),
        held.email_norm.into(),
        u.email_from_source.into(),
        p.phone_mobile.as_ref().map(|v| v.as_str()).into(),
        held.mobile_e164.into(),
        u.phone_mobile_from_source.into(),
        p.phone_work.as_ref().map(|v| v.as_str()).into(),
        p.phone_work.as_ref().map(|v| v.e164()).into(),
        u.manager_id.as_ref().map(|v| v.as_str()).into(),
        p.job_title.clone().into(),
        p.location.clone().into(),
        p.department.clone().into(),
        p.company.clone().into(),
        p.description.clone().into(),
        u.active.into(),
        p.start_employment_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .into(),
        p.end_employment_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .into(),
        serde_json::to_string(&p.custom_fields)
            .unwrap_or_else(|_| "{}".into())
            .into(),
        p.middle_name.clone().into(),
        p.display_name.clone().into(),
        contact_meta(p).into(),
        u.managed_by.as_ref().map(|v| v.as_str()).into(),
        u.scim_deleted.into(),
        u.version.into(),
    ]
}

/// A user's stored columns in [`USER_COLUMNS`] order, up to `version` (32 values).
fn user_values<'u>(org: &'u str, u: &'u StoredUser) -> [ToSqlOutput<'u>; USER_VALUES] {
    let p = &u.profile;
    let username = p.username.as_ref();
    let text = |v: Option<&'u str>| match v {
        Some(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        None => ToSqlOutput::Owned(Value::Null),
    };
    let int = |v: i64| ToSqlOutput::Owned(Value::Integer(v));
    let date = |d: Option<chrono::NaiveDate>| match d {
        // NaiveDate displays as %Y-%m-%d, without parsing a format string per value.
        Some(d) => ToSqlOutput::Owned(Value::Text(d.to_string())),
        None => ToSqlOutput::Owned(Value::Null),
    };
    let custom = serde_json::to_string(&p.custom_fields).unwrap_or_else(|_| "{}".into());
    let held = Held::of(u);
    [
        text(Some(u.id.as_str())),
        text(Some(org)),
        text(held.external_id),
        text(Some(username.map(|v| v.as_str()).unwrap_or_default())),
        ToSqlOutput::Owned(Value::Text(held.username_norm)),
        text(held.employee_id),
        text(p.first_name.as_deref()),
        text(p.second_name.as_deref()),
        text(p.email.as_ref().map(|v| v.as_str())),
        text(held.email_norm),
        int(i64::from(u.email_from_source)),
        text(p.phone_mobile.as_ref().map(|v| v.as_str())),
        text(held.mobile_e164),
        int(i64::from(u.phone_mobile_from_source)),
        text(p.phone_work.as_ref().map(|v| v.as_str())),
        text(p.phone_work.as_ref().map(|v| v.e164())),
        text(u.manager_id.as_ref().map(|v| v.as_str())),
        text(p.job_title.as_deref()),
        text(p.location.as_deref()),
        text(p.department.as_deref()),
        text(p.company.as_deref()),
        text(p.description.as_deref()),
        int(i64::from(u.active)),
        date(p.start_employment_date),
        date(p.end_employment_date),
        ToSqlOutput::Owned(Value::Text(custom)),
        text(p.middle_name.as_deref()),
        text(p.display_name.as_deref()),
        match contact_meta(p) {
            Some(json) => ToSqlOutput::Owned(Value::Text(json)),
            None => ToSqlOutput::Owned(Value::Null),
        },
        text(u.managed_by.as_ref().map(|v| v.as_str())),
        int(i64::from(u.scim_deleted)),
        int(u.version),
    ]
}

/// How many of [`USER_COLUMNS`] [`user_values`] gives (all but the two timestamps).
const USER_VALUES: usize = 32;

/// The `contact_meta` column: JSON, or NULL when nothing was sent.
fn contact_meta(p: &Profile) -> Option<String> {
    (!p.contact_meta.is_empty()).then(|| serde_json::to_string(&p.contact_meta).unwrap_or_default())
}

/// Bind a user's columns in [`USER_COLUMNS`] order (`?1`…`?32`), then `?33` = `now` and
/// `?34` = `last` (the creation time of an insert, the expected version of an update), and
/// run the statement.
pub(crate) fn execute_user(
    statement: &mut Statement<'_>,
    org: &str,
    u: &StoredUser,
    now: i64,
    last: i64,
) -> Result<usize> {
    let values = user_values(org, u);
    let times = [ToSqlOutput::from(now), ToSqlOutput::from(last)];
    statement
        .execute(rusqlite::params_from_iter(values.iter().chain(&times)))
        .map_err(failed)
}

/// Update a user from `before` (as stored at `expected_version`) to `after`, setting only the
/// columns that differ: SQLite then maintains only the indexes over those columns (a SCIM
/// PATCH of `active` touches none of the eight). Returns the rows changed (0: stale).
pub(crate) fn update_changed(
    conn: &Connection,
    org: &str,
    before: &StoredUser,
    after: &StoredUser,
    now: i64,
    expected_version: i64,
) -> Result<usize> {
    let old = user_values(org, before);
    let new = user_values(org, after);
    let mut sql = String::from("UPDATE users SET updated_at = ?1");
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![&now];
    // `id` and `org_id` (0, 1) identify the row; `version` (last) always changes.
    for (i, name) in USER_COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .take(USER_VALUES)
    {
        if i >= 2 && (old[i] != new[i] || i == USER_VALUES - 1) {
            args.push(&new[i]);
            sql.push_str(&format!(", {name} = ?{}", args.len()));
        }
    }
    args.extend([&old[0] as &dyn rusqlite::ToSql, &old[1], &expected_version]);
    let n = args.len();
    sql.push_str(&format!(
        " WHERE id = ?{} AND org_id = ?{} AND version = ?{n}",
        n - 2,
        n - 1
    ));
    conn.prepare_cached(&sql)
        .map_err(failed)?
        .execute(rusqlite::params_from_iter(args))
        .map_err(failed)
}

/// The INSERT of a user's columns in [`USER_COLUMNS`] order, for [`execute_user`].
pub(crate) fn insert_user_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ({})",
            (1..=34)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_user_column_has_its_position() {
        for (i, name) in super::USER_COLUMNS.split(',').map(str::trim).enumerate() {
            assert_eq!(super::user_column_index(name).unwrap(), i, "{name}");
        }
        assert!(super::user_column_index("nope").is_err());
    }
}
