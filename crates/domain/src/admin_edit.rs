//! An admin's edit of a user's profile in the admin panel (SPEC §2): which fields are
//! editable, and the edited user or every problem with the form.
//!
//! A user no source manages is the admin's to edit. A managed user's profile is read-only,
//! except the contact-field exception: while the source provides no email (or no mobile
//! number), that field stays editable.

use crate::field::FieldKey;
use crate::record::{Incoming, Link};
use crate::user::StoredUser;
use crate::values::{Email, EmployeeId, Phone, UserName, parse_bool, parse_date};

/// The profile fields the admin panel shows, in the order of SPEC §2.
pub const PROFILE_FIELDS: [FieldKey; 18] = [
    FieldKey::ExternalId,
    FieldKey::Username,
    FieldKey::EmployeeId,
    FieldKey::FirstName,
    FieldKey::MiddleName,
    FieldKey::SecondName,
    FieldKey::DisplayName,
    FieldKey::Email,
    FieldKey::PhoneMobile,
    FieldKey::PhoneWork,
    FieldKey::JobTitle,
    FieldKey::Location,
    FieldKey::Department,
    FieldKey::Company,
    FieldKey::Description,
    FieldKey::Active,
    FieldKey::StartEmploymentDate,
    FieldKey::EndEmploymentDate,
];

/// Fields an admin may edit on a user no source manages: all the profile shows but the
/// external id, which is the link to a source (the manager is not a free-text field either).
pub const UNMANAGED_EDITABLE: &[FieldKey] = PROFILE_FIELDS.split_at(1).1;

/// The fields an admin may edit on this user.
pub fn editable_fields(user: &StoredUser) -> Vec<FieldKey> {
    if user.managed_by.is_none() {
        return UNMANAGED_EDITABLE.to_vec();
    }
    let mut fields = Vec::new();
    if !user.email_from_source {
        fields.push(FieldKey::Email);
    }
    if !user.phone_mobile_from_source {
        fields.push(FieldKey::PhoneMobile);
    }
    fields
}

/// A field's current value as the form shows it.
pub fn shown_value(user: &StoredUser, field: FieldKey) -> String {
    let p = &user.profile;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match field {
        FieldKey::ExternalId => p
            .external_id
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::Username => p
            .username
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::EmployeeId => p
            .employee_id
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::FirstName => text(&p.first_name),
        FieldKey::SecondName => text(&p.second_name),
        FieldKey::MiddleName => text(&p.middle_name),
        FieldKey::DisplayName => text(&p.display_name),
        FieldKey::Email => p
            .email
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::PhoneMobile => p
            .phone_mobile
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::PhoneWork => p
            .phone_work
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::Manager => user
            .manager_id
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        FieldKey::JobTitle => text(&p.job_title),
        FieldKey::Location => text(&p.location),
        FieldKey::Department => text(&p.department),
        FieldKey::Company => text(&p.company),
        FieldKey::Description => text(&p.description),
        FieldKey::Active => user.active.to_string(),
        FieldKey::StartEmploymentDate => p
            .start_employment_date
            .map(|d| d.to_string())
            .unwrap_or_default(),
        FieldKey::EndEmploymentDate => p
            .end_employment_date
            .map(|d| d.to_string())
            .unwrap_or_default(),
    }
}

/// Every problem with a form: the field and what is wrong.
pub type Problems = Vec<(FieldKey, String)>;

/// The edited user and the fields that changed.
pub type Edited = (StoredUser, Vec<FieldKey>);

/// Apply a submitted form to `user`: the edited user and the fields that changed, or every
/// problem (field and message). Fields the form does not carry keep their values.
pub fn apply_edit(user: &StoredUser, form: &[(FieldKey, String)]) -> Result<Edited, Problems> {
    let editable = editable_fields(user);
    let mut edited = user.clone();
    let mut problems = Vec::new();
    for (field, raw) in form {
        let raw = raw.trim();
        if shown_value(user, *field) == raw {
            continue;
        }
        if !editable.contains(field) {
            problems.push((
                *field,
                format!(
                    "{} is managed by an external source and cannot be edited here",
                    field.label()
                ),
            ));
            continue;
        }
        let p = &mut edited.profile;
        let text = match field {
            FieldKey::FirstName => Some(&mut p.first_name),
            FieldKey::SecondName => Some(&mut p.second_name),
            FieldKey::MiddleName => Some(&mut p.middle_name),
            FieldKey::DisplayName => Some(&mut p.display_name),
            FieldKey::JobTitle => Some(&mut p.job_title),
            FieldKey::Location => Some(&mut p.location),
            FieldKey::Department => Some(&mut p.department),
            FieldKey::Company => Some(&mut p.company),
            FieldKey::Description => Some(&mut p.description),
            _ => None,
        };
        if let Some(slot) = text {
            *slot = (!raw.is_empty()).then(|| raw.to_owned());
            continue;
        }
        let result: Result<(), String> = match field {
            FieldKey::Username => UserName::parse(raw)
                .map(|v| p.username = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::EmployeeId if raw.is_empty() => {
                p.employee_id = None;
                Ok(())
            }
            FieldKey::EmployeeId => EmployeeId::parse(raw)
                .map(|v| p.employee_id = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::Email if raw.is_empty() => {
                p.email = None;
                Ok(())
            }
            FieldKey::Email => Email::parse(raw)
                .map(|v| p.email = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::PhoneMobile if raw.is_empty() => {
                p.phone_mobile = None;
                Ok(())
            }
            FieldKey::PhoneMobile => Phone::parse(raw, None)
                .map(|v| p.phone_mobile = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::PhoneWork if raw.is_empty() => {
                p.phone_work = None;
                Ok(())
            }
            FieldKey::PhoneWork => Phone::parse(raw, None)
                .map(|v| p.phone_work = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::Active => parse_bool(raw)
                .map(|v| edited.active = v)
                .map_err(|e| e.to_string()),
            FieldKey::StartEmploymentDate if raw.is_empty() => {
                p.start_employment_date = None;
                Ok(())
            }
            FieldKey::StartEmploymentDate => parse_date(raw)
                .map(|v| p.start_employment_date = Some(v))
                .map_err(|e| e.to_string()),
            FieldKey::EndEmploymentDate if raw.is_empty() => {
                p.end_employment_date = None;
                Ok(())
            }
            FieldKey::EndEmploymentDate => parse_date(raw)
                .map(|v| p.end_employment_date = Some(v))
                .map_err(|e| e.to_string()),
            _ => Err(format!("{} cannot be edited here", field.label())),
        };
        if let Err(message) = result {
            problems.push((*field, message));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let changed: Vec<FieldKey> = FieldKey::ALL
        .into_iter()
        .filter(|f| shown_value(user, *f) != shown_value(&edited, *f))
        .collect();
    if !changed.is_empty() {
        edited.version += 1;
    }
    Ok((edited, changed))
}

/// A saved edit as an engine record ([`Link::AdminEdit`]), for the plan to check and write:
/// it provides the fields that `changed` names, with their values in `edited`.
pub fn record(edited: &StoredUser, changed: &[FieldKey]) -> Incoming {
    let mut record = Incoming::new(1, Link::AdminEdit(edited.id.clone()));
    for field in changed {
        record.provided.insert(*field);
    }
    record.profile = edited.profile.clone();
    record.active = edited.active;
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConfigId, UserId};

    fn user(managed: bool) -> StoredUser {
        let mut u = StoredUser::new(UserId::new("u1"));
        u.profile.username = Some(UserName::parse("ann").unwrap());
        u.profile.email = Some(Email::parse("ann@acme.example").unwrap());
        if managed {
            u.managed_by = Some(ConfigId::new("payroll"));
            u.email_from_source = true;
        }
        u
    }

    fn form(pairs: &[(FieldKey, &str)]) -> Vec<(FieldKey, String)> {
        pairs.iter().map(|(f, v)| (*f, v.to_string())).collect()
    }

    #[test]
    fn an_unmanaged_user_is_edited_and_the_changes_listed() {
        let (edited, changed) = apply_edit(
            &user(false),
            &form(&[
                (FieldKey::FirstName, "Ann"),
                (FieldKey::Email, "ann.smith@acme.example"),
                (FieldKey::Username, "ann"),
                (FieldKey::Active, "false"),
            ]),
        )
        .unwrap();
        assert_eq!(
            changed,
            [FieldKey::FirstName, FieldKey::Email, FieldKey::Active]
        );
        assert_eq!(edited.profile.first_name.as_deref(), Some("Ann"));
        assert!(!edited.active);
        assert_eq!(edited.version, 1);

        let r = record(&edited, &changed);
        assert_eq!(r.link, Link::AdminEdit(UserId::new("u1")));
        let provided: Vec<FieldKey> = r.provided.iter().collect();
        assert_eq!(provided, changed);
        assert!(!r.active);
    }

    #[test]
    fn a_managed_user_is_read_only_except_contact_fields_the_source_leaves_empty() {
        let managed = user(true);
        assert_eq!(editable_fields(&managed), [FieldKey::PhoneMobile]);
        let problems = apply_edit(
            &managed,
            &form(&[
                (FieldKey::FirstName, "Ann"),
                (FieldKey::Email, "x@acme.example"),
            ]),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].1.contains("managed by an external source"));
        // Unchanged values of read-only fields are fine (the form sends them back).
        let (edited, changed) = apply_edit(
            &managed,
            &form(&[
                (FieldKey::Email, "ann@acme.example"),
                (FieldKey::PhoneMobile, "+44 7495 944376"),
            ]),
        )
        .unwrap();
        assert_eq!(changed, [FieldKey::PhoneMobile]);
        assert_eq!(edited.profile.phone_mobile.unwrap().e164(), "+447495944376");
    }

    #[test]
    fn bad_values_are_each_named() {
        let problems = apply_edit(
            &user(false),
            &form(&[
                (FieldKey::Email, "not an email"),
                (FieldKey::PhoneMobile, "12"),
                (FieldKey::StartEmploymentDate, "31/12/2024"),
                (FieldKey::Username, ""),
            ]),
        )
        .unwrap_err();
        let fields: Vec<FieldKey> = problems.iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                FieldKey::Email,
                FieldKey::PhoneMobile,
                FieldKey::StartEmploymentDate,
                FieldKey::Username
            ]
        );
    }
}
