//! Admin bulk updates (SPEC §6): a CSV whose `Username` column names each user and whose other
//! columns (`FirstName`, `JobTitle`, `Active`, …) carry new values. Each row becomes an engine
//! record linked by username ([`Link::Username`]), and the plan decides it like a sync file's
//! row: users no source manages are updated, managed and unknown users are skipped and logged,
//! an empty cell leaves a field as it is, and rows that repeat a key all fail.

use crate::admin_edit::UNMANAGED_EDITABLE;
use crate::field::FieldKey;
use crate::record::{BatchItem, Incoming, Link, ReadOptions, Rejected, set_field};
use crate::run::{ErrorType, Issue};
use crate::values::{self, PhoneCache, UserName};

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

/// One row of the file as an engine record: linked by its username ([`Link::Username`]),
/// providing the columns whose cell is filled in (an empty cell leaves the field as it is; the
/// username only names the user), each read as a sync file's cell is. A row whose username is
/// missing or whose cells do not read is rejected with every problem.
pub fn record(row: u64, cells: &[(FieldKey, String)], phones: &mut PhoneCache) -> BatchItem {
    let username = cells
        .iter()
        .find(|(f, _)| *f == FieldKey::Username)
        .map(|(_, v)| values::clean(v))
        .unwrap_or_default();
    let mut record = Incoming::new(row, Link::New);
    let mut issues = Vec::new();
    let name = if username.is_empty() {
        issues.push(Issue::new(
            ErrorType::MissingRequiredField,
            "Username is empty: name the user to update",
            "username=",
        ));
        None
    } else {
        match UserName::parse(username) {
            Ok(name) => Some(name),
            Err(e) => {
                issues.push(Issue::new(
                    ErrorType::InvalidValue,
                    format!("{}: {}", FieldKey::Username.label(), e.0),
                    format!("username={username}"),
                ));
                None
            }
        }
    };
    let options = ReadOptions::default();
    for (field, raw) in cells.iter().filter(|(f, _)| *f != FieldKey::Username) {
        let value = values::clean(raw);
        if value.is_empty() {
            continue;
        }
        record.provided.insert(*field);
        if let Err(issue) = set_field(&mut record, *field, value, &options, phones) {
            issues.push(issue);
        }
    }
    match name {
        Some(name) if issues.is_empty() => {
            record.profile.username = Some(name.clone());
            record.link = Link::Username(name);
            Ok(record)
        }
        _ => Err(Rejected {
            row,
            external_id: String::new(),
            username: username.to_owned(),
            issues,
        }),
    }
}

/// Every data row of a file whose header [`columns`] read: `rows` are each row's line and
/// cells, in the header's order (missing cells are empty).
pub fn records(fields: &[FieldKey], rows: &[(u64, Vec<String>)]) -> Vec<BatchItem> {
    let mut phones = PhoneCache::new();
    rows.iter()
        .map(|(line, cells)| {
            let pairs: Vec<(FieldKey, String)> = fields
                .iter()
                .zip(cells.iter().chain(std::iter::repeat(&String::new())))
                .map(|(f, v)| (*f, v.clone()))
                .collect();
            record(*line, &pairs, &mut phones)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(pairs: &[(FieldKey, &str)]) -> Vec<(FieldKey, String)> {
        pairs.iter().map(|(f, v)| (*f, v.to_string())).collect()
    }

    fn read(pairs: &[(FieldKey, &str)]) -> BatchItem {
        record(2, &cells(pairs), &mut PhoneCache::new())
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
    fn a_row_links_by_username_and_provides_only_its_filled_cells() {
        let r = read(&[
            (FieldKey::Username, " ANN "),
            (FieldKey::JobTitle, "Nurse"),
            (FieldKey::Active, ""),
            (FieldKey::Email, "Ann@Acme.example"),
        ])
        .unwrap();
        assert_eq!(r.link, Link::Username(UserName::parse("ANN").unwrap()));
        assert_eq!(r.profile.username.as_ref().unwrap().normalized(), "ann");
        assert!(r.provided.contains(FieldKey::JobTitle));
        assert!(r.provided.contains(FieldKey::Email));
        assert!(
            !r.provided.contains(FieldKey::Active),
            "an empty cell leaves the field as it is"
        );
        assert!(
            !r.provided.contains(FieldKey::Username),
            "the username only names the user"
        );
        assert_eq!(r.profile.job_title.as_deref(), Some("Nurse"));
    }

    #[test]
    fn a_row_that_does_not_read_is_rejected_with_every_problem() {
        let bad = read(&[
            (FieldKey::Username, "ann"),
            (FieldKey::Email, "nope"),
            (FieldKey::Active, "maybe"),
        ])
        .unwrap_err();
        assert_eq!(bad.username, "ann");
        let types: Vec<ErrorType> = bad.issues.iter().map(|i| i.error_type).collect();
        assert_eq!(types, [ErrorType::InvalidEmail, ErrorType::InvalidBoolean]);
        assert!(bad.issues[0].message.starts_with("Email:"));
        assert!(bad.issues[1].message.starts_with("Active:"));

        let blank = read(&[(FieldKey::Username, " "), (FieldKey::JobTitle, "x")]).unwrap_err();
        assert_eq!(blank.issues[0].error_type, ErrorType::MissingRequiredField);
        assert_eq!(
            blank.issues[0].message,
            "Username is empty: name the user to update"
        );
    }

    #[test]
    fn missing_cells_are_empty() {
        let fields = [FieldKey::Username, FieldKey::JobTitle, FieldKey::Company];
        let rows = vec![(2, vec!["ann".to_owned()]), (3, vec![])];
        let batch = records(&fields, &rows);
        let first = batch[0].as_ref().unwrap();
        assert_eq!(first.provided.iter().count(), 0, "{first:?}");
        assert_eq!(batch[1].as_ref().unwrap_err().row, 3);
    }
}
