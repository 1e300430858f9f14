//! Admin bulk updates (SPEC §6): a CSV whose `Username` column names each user and whose other
//! columns (`FirstName`, `JobTitle`, `Active`, …) carry new values. Users no source manages are
//! updated; managed users are skipped and logged; an empty cell leaves a field as it is.

use crate::admin_edit::{UNMANAGED_EDITABLE, apply_edit, shown_value};
use crate::field::FieldKey;
use crate::run::{Action, ErrorType, LogRow};
use crate::user::StoredUser;

/// A field's column name in a bulk update file: its key in PascalCase (`phone_mobile` →
/// `PhoneMobile`).
pub fn column_name(field: FieldKey) -> String {
    field
        .key()
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The columns a bulk update file may have: `Username` (required) and every field an admin
/// may edit.
pub fn accepted_columns() -> Vec<String> {
    UNMANAGED_EDITABLE.iter().map(|f| column_name(*f)).collect()
}

/// Read the header row: each column's field, or the problem (naming every bad column).
pub fn columns(header: &[String]) -> Result<Vec<FieldKey>, String> {
    let mut fields = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    for name in header {
        match UNMANAGED_EDITABLE
            .iter()
            .find(|f| column_name(**f) == name.trim())
        {
            Some(field) if fields.contains(field) => {
                return Err(format!("the column {name} appears twice: keep one"));
            }
            Some(field) => fields.push(*field),
            None => unknown.push(name.trim().to_owned()),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown column{} {}: a bulk update file has Username and any of {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            accepted_columns()
                .into_iter()
                .filter(|c| c != "Username")
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !fields.contains(&FieldKey::Username) {
        return Err("the file has no Username column: add one naming each user to update".into());
    }
    Ok(fields)
}

/// What one row of the file does.
pub struct RowOutcome {
    pub log: LogRow,
    /// The user before and after, and the fields that change, for an update.
    pub write: Option<(StoredUser, StoredUser, Vec<FieldKey>)>,
}

fn error_type(field: FieldKey) -> ErrorType {
    match field {
        FieldKey::Email => ErrorType::InvalidEmail,
        FieldKey::PhoneMobile | FieldKey::PhoneWork => ErrorType::InvalidPhone,
        FieldKey::Active => ErrorType::InvalidBoolean,
        FieldKey::StartEmploymentDate | FieldKey::EndEmploymentDate => ErrorType::InvalidDate,
        _ => ErrorType::InvalidValue,
    }
}

/// Decide one row: `cells` pairs each column's field with its cell; `user` is the user its
/// username names, if any.
pub fn row_outcome(
    row: u64,
    cells: &[(FieldKey, String)],
    user: Option<&StoredUser>,
) -> RowOutcome {
    let username = cells
        .iter()
        .find(|(f, _)| *f == FieldKey::Username)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let log = |action: Action, error: Option<ErrorType>, message: String| LogRow {
        row: Some(row),
        external_id: user
            .map(|u| shown_value(u, FieldKey::ExternalId))
            .unwrap_or_default(),
        username: username.clone(),
        action: action.label().to_owned(),
        error_type: error.map(|e| e.code().to_owned()).unwrap_or_default(),
        message,
        ..LogRow::default()
    };
    let skip = |action, error, message: String| RowOutcome {
        log: log(action, Some(error), message),
        write: None,
    };
    if username.is_empty() {
        return skip(
            Action::Failed,
            ErrorType::MissingRequiredField,
            "Username is empty: name the user to update".into(),
        );
    }
    let Some(user) = user else {
        return skip(
            Action::Skipped,
            ErrorType::NotFound,
            format!("no user '{username}' in your organisation"),
        );
    };
    if user.managed_by.is_some() {
        return skip(
            Action::Skipped,
            ErrorType::ManagedByExternalSource,
            "this user is managed by an external source: change it there".into(),
        );
    }
    // An empty cell leaves the field as it is; the username column only names the user.
    let edits: Vec<(FieldKey, String)> = cells
        .iter()
        .filter(|(f, v)| *f != FieldKey::Username && !v.trim().is_empty())
        .cloned()
        .collect();
    match apply_edit(user, &edits) {
        Err(problems) => RowOutcome {
            log: log(
                Action::Failed,
                problems.first().map(|(f, _)| error_type(*f)),
                problems
                    .iter()
                    .map(|(f, m)| format!("{}: {m}", f.label()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            write: None,
        },
        Ok((_, changed)) if changed.is_empty() => RowOutcome {
            log: log(Action::Unchanged, None, String::new()),
            write: None,
        },
        Ok((edited, changed)) => {
            let mut row_log = log(Action::Updated, None, String::new());
            row_log.changed_fields = changed
                .iter()
                .map(|f| f.key())
                .collect::<Vec<_>>()
                .join(",");
            RowOutcome {
                log: row_log,
                write: Some((user.clone(), edited, changed)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConfigId, UserId};
    use crate::values::UserName;

    fn user(managed: bool) -> StoredUser {
        let mut u = StoredUser::new(UserId::new("u1"));
        u.profile.username = Some(UserName::parse("ann").unwrap());
        if managed {
            u.managed_by = Some(ConfigId::new("payroll"));
        }
        u
    }

    fn cells(pairs: &[(FieldKey, &str)]) -> Vec<(FieldKey, String)> {
        pairs.iter().map(|(f, v)| (*f, v.to_string())).collect()
    }

    #[test]
    fn column_names_are_pascal_case_and_checked() {
        assert_eq!(column_name(FieldKey::PhoneMobile), "PhoneMobile");
        assert_eq!(
            column_name(FieldKey::StartEmploymentDate),
            "StartEmploymentDate"
        );
        let header = ["Username", "JobTitle", "Active"].map(String::from);
        assert_eq!(
            columns(&header).unwrap(),
            [FieldKey::Username, FieldKey::JobTitle, FieldKey::Active]
        );
        let bad = ["Username", "Shoe Size", "ExternalId"].map(String::from);
        let e = columns(&bad).unwrap_err();
        assert!(e.contains("unknown columns Shoe Size, ExternalId"), "{e}");
        assert!(e.contains("JobTitle"), "{e}");
        assert!(
            columns(&["JobTitle".to_owned()])
                .unwrap_err()
                .contains("no Username")
        );
        assert!(
            columns(&["Username", "Active", "Active"].map(String::from))
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn each_row_is_updated_unchanged_skipped_or_failed() {
        let row = |u: Option<&StoredUser>, c: &[(FieldKey, &str)]| row_outcome(2, &cells(c), u);
        let unmanaged = user(false);
        let updated = row(
            Some(&unmanaged),
            &[
                (FieldKey::Username, "ann"),
                (FieldKey::JobTitle, "Nurse"),
                (FieldKey::Active, ""),
            ],
        );
        assert_eq!(updated.log.action, "Updated");
        assert_eq!(updated.log.changed_fields, "job_title");
        assert!(
            updated.write.unwrap().1.active,
            "an empty cell leaves the field as it is"
        );

        let unchanged = row(Some(&unmanaged), &[(FieldKey::Username, "ann")]);
        assert_eq!(unchanged.log.action, "Unchanged");

        let managed = row(
            Some(&user(true)),
            &[(FieldKey::Username, "ann"), (FieldKey::JobTitle, "x")],
        );
        assert_eq!(
            (managed.log.action.as_str(), managed.log.error_type.as_str()),
            ("Skipped", "MANAGED_BY_EXTERNAL_SOURCE")
        );
        assert!(managed.write.is_none());

        let unknown = row(None, &[(FieldKey::Username, "bob")]);
        assert_eq!(unknown.log.error_type, "NOT_FOUND");
        assert!(unknown.log.message.contains("'bob'"));

        let bad = row(
            Some(&unmanaged),
            &[
                (FieldKey::Username, "ann"),
                (FieldKey::Email, "nope"),
                (FieldKey::Active, "maybe"),
            ],
        );
        assert_eq!(bad.log.action, "Failed");
        assert_eq!(bad.log.error_type, "INVALID_EMAIL");
        assert!(bad.log.message.contains("Email:") && bad.log.message.contains("Active:"));

        let blank = row(None, &[(FieldKey::Username, " ")]);
        assert_eq!(blank.log.error_type, "MISSING_REQUIRED_FIELD");
    }
}
