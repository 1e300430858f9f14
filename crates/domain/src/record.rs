//! Incoming records: what a source says about one user, before matching.
//!
//! Files and pulls produce a [`RawRecord`] of text cells keyed by field; [`RawRecord::validate`]
//! turns it into an [`Incoming`] record of typed values, or the list of problems that keep the
//! row from syncing. SCIM builds [`Incoming`] records directly from its JSON.

use chrono::NaiveDate;

use crate::field::{FieldKey, FieldSet};
use crate::ids::UserId;
use crate::run::{ErrorType, Issue};
use crate::user::Profile;
use crate::values::{
    self, Email, EmployeeId, ExternalId, Phone, PhoneCache, PhoneRegion, UserName, ValueError,
};

/// How step 1 of matching (SPEC §3) finds the user a record is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Files and pulls: the source's immutable id.
    ExternalId(ExternalId),
    /// SCIM PUT/PATCH: the addressed SCIM id.
    User(UserId),
    /// SCIM POST: a new resource (which may still claim an unmanaged user).
    New,
    /// An admin's Bulk Update row: the user holding this username (compared
    /// case-insensitively). It never creates or claims a user, skips a user a source manages,
    /// and leaves who manages the user as it is.
    Username(UserName),
    /// An operator's creation of a user no source manages (what the application's own
    /// sign-up would make): it always creates, never links or claims an existing user, and
    /// the user is managed by no configuration.
    Unmanaged,
    /// An admin's edit of one user in the admin panel: the user with this id (a SCIM-deleted
    /// one is not found). The record may provide only the fields the admin may edit on that
    /// user ([`crate::admin_edit::editable_fields`]); who manages the user stays as it is.
    AdminEdit(UserId),
}

impl Link {
    /// Whether the record speaks for its source configuration, which then manages the user it
    /// writes (and provides its contact fields). An admin's record does not.
    pub fn from_source(&self) -> bool {
        !matches!(
            self,
            Link::Username(_) | Link::AdminEdit(_) | Link::Unmanaged
        )
    }
}

/// A manager reference as the source gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagerRef {
    /// Files and pulls name the manager's external ID.
    ExternalId(ExternalId),
    /// SCIM names the manager's SCIM id.
    User(UserId),
}

/// One typed record from a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The file's own row number, or a request's sequence number.
    pub row: u64,
    pub link: Link,
    /// The standard fields the source provides. A provided field that is empty clears the
    /// stored value (the contact exception of SPEC §2 aside); others are left alone.
    pub provided: FieldSet,
    pub profile: Profile,
    /// Meaningful when `provided` has [`FieldKey::Active`].
    pub active: bool,
    /// Meaningful when `provided` has [`FieldKey::Manager`]; `None` clears the manager.
    pub manager: Option<ManagerRef>,
    /// The custom fields the source provides; their values are in `profile.custom_fields`,
    /// and a provided name missing there is cleared.
    pub custom_provided: Vec<String>,
    /// SCIM DELETE ([`Incoming::scim_delete`]): the user is deactivated and hidden from SCIM,
    /// keeping it and its history.
    pub scim_delete: bool,
}

impl Incoming {
    /// A record that provides nothing yet.
    pub fn new(row: u64, link: Link) -> Incoming {
        Incoming {
            row,
            link,
            provided: FieldSet::empty(),
            profile: Profile::default(),
            active: true,
            manager: None,
            custom_provided: Vec::new(),
            scim_delete: false,
        }
    }

    /// SCIM DELETE of the user `id`, whose stored external ID and username `shown` (for the
    /// log row): it deactivates the user and hides it from SCIM.
    pub fn scim_delete(row: u64, id: UserId, shown: &Profile) -> Incoming {
        let mut record = Incoming::new(row, Link::User(id));
        record.provided.insert(FieldKey::Active);
        record.active = false;
        record.scim_delete = true;
        record.profile.external_id = shown.external_id.clone();
        record.profile.username = shown.username.clone();
        record
    }
}

/// A record that could not be read: the row is skipped and logged as Failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub row: u64,
    pub external_id: String,
    pub username: String,
    pub issues: Vec<Issue>,
}

/// What a batch holds: records to match, or rows already rejected by validation. Rejected rows
/// travel with the batch so that the log keeps the source's order.
pub type BatchItem = Result<Incoming, Rejected>;

/// How raw cells are read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// The configuration's default region for national phone numbers.
    pub phone_region: Option<PhoneRegion>,
}

/// The text cells of one row, after mapping: standard fields and custom fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub row: u64,
    pub cells: Vec<(FieldKey, String)>,
    pub custom: Vec<(String, String)>,
}

impl RawRecord {
    fn cell(&self, key: FieldKey) -> Option<&str> {
        self.cells
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| values::clean(v))
    }

    /// Validate every cell. A file or pull row always links by external ID, which (like the
    /// username and Active) is required.
    pub fn validate(&self, options: &ReadOptions) -> BatchItem {
        self.validate_with(options, &mut PhoneCache::new())
    }

    /// [`RawRecord::validate`], with phone numbers read through a cache shared by the rows of
    /// one file.
    pub fn validate_with(&self, options: &ReadOptions, phones: &mut PhoneCache) -> BatchItem {
        let mut issues = Vec::new();
        let mut record = Incoming::new(self.row, Link::New);

        for (key, raw) in &self.cells {
            let key = *key;
            let value = values::clean(raw);
            record.provided.insert(key);
            if value.is_empty() {
                if FieldKey::REQUIRED_FOR_FILES.contains(&key) {
                    issues.push(Issue::new(
                        ErrorType::MissingRequiredField,
                        format!("{} is required: fill it in for this row", key.label()),
                        format!("{}=", key.key()),
                    ));
                }
                continue;
            }
            if let Err(issue) = set_field(&mut record, key, value, options, phones) {
                issues.push(issue);
            }
        }
        for key in FieldKey::REQUIRED_FOR_FILES {
            if !record.provided.contains(key) {
                issues.push(Issue::new(
                    ErrorType::MissingRequiredField,
                    format!(
                        "{} is required but the source does not provide it: map it in the configuration",
                        key.label()
                    ),
                    format!("{}=", key.key()),
                ));
            }
        }
        for (name, raw) in &self.custom {
            let value = values::clean(raw);
            record.custom_provided.push(name.clone());
            if value.is_empty() {
                continue;
            }
            match values::text(name, value, false) {
                Ok(v) => {
                    record.profile.custom_fields.insert(name.clone(), v);
                }
                Err(e) => issues.push(Issue::new(
                    ErrorType::InvalidValue,
                    e.0,
                    format!("{name}={value}"),
                )),
            }
        }

        if issues.is_empty()
            && let Some(external_id) = record.profile.external_id.clone()
        {
            record.link = Link::ExternalId(external_id);
            return Ok(record);
        }
        Err(Rejected {
            row: self.row,
            external_id: self
                .cell(FieldKey::ExternalId)
                .unwrap_or_default()
                .to_owned(),
            username: self.cell(FieldKey::Username).unwrap_or_default().to_owned(),
            issues,
        })
    }
}

/// A user to create unmanaged ([`Link::Unmanaged`]) from the values an operator gave, each
/// read as a sync file's cell is (empty values are left out). The username is required.
/// Refused with every problem.
pub fn unmanaged_user(
    cells: &[(FieldKey, String)],
    options: &ReadOptions,
) -> Result<Incoming, Vec<Issue>> {
    let mut record = Incoming::new(1, Link::Unmanaged);
    let mut issues = Vec::new();
    let mut phones = PhoneCache::new();
    for (key, raw) in cells {
        let value = values::clean(raw);
        if value.is_empty() {
            continue;
        }
        if record.provided.contains(*key) {
            issues.push(Issue::new(
                ErrorType::InvalidValue,
                format!("{} is given twice: give it once", key.label()),
                format!("{}={value}", key.key()),
            ));
            continue;
        }
        record.provided.insert(*key);
        if let Err(issue) = set_field(&mut record, *key, value, options, &mut phones) {
            issues.push(issue);
        }
    }
    if !record.provided.contains(FieldKey::Username) {
        issues.push(Issue::new(
            ErrorType::MissingRequiredField,
            "Username is required to create a user",
            "username=",
        ));
    }
    if issues.is_empty() {
        Ok(record)
    } else {
        Err(issues)
    }
}

fn invalid(error_type: ErrorType, key: FieldKey, value: &str, e: ValueError) -> Issue {
    Issue::new(
        error_type,
        format!("{}: {}", key.label(), e.0),
        format!("{}={value}", key.key()),
    )
}

/// Parse one non-empty cell into the record.
pub(crate) fn set_field(
    record: &mut Incoming,
    key: FieldKey,
    value: &str,
    options: &ReadOptions,
    phones: &mut PhoneCache,
) -> Result<(), Issue> {
    let p = &mut record.profile;
    let text = |long: bool| -> Result<String, Issue> {
        values::text(key.label(), value, long).map_err(|e| {
            Issue::new(
                ErrorType::InvalidValue,
                e.0,
                format!("{}={value}", key.key()),
            )
        })
    };
    let date = || -> Result<NaiveDate, Issue> {
        values::parse_date(value).map_err(|e| invalid(ErrorType::InvalidDate, key, value, e))
    };
    let mut phone = || -> Result<Phone, Issue> {
        phones
            .parse(value, options.phone_region)
            .map_err(|e| invalid(ErrorType::InvalidPhone, key, value, e))
    };
    let ident = |e: ValueError| invalid(ErrorType::InvalidValue, key, value, e);
    match key {
        FieldKey::ExternalId => p.external_id = Some(ExternalId::parse(value).map_err(ident)?),
        FieldKey::Username => p.username = Some(UserName::parse(value).map_err(ident)?),
        FieldKey::EmployeeId => p.employee_id = Some(EmployeeId::parse(value).map_err(ident)?),
        FieldKey::FirstName => p.first_name = Some(text(false)?),
        FieldKey::SecondName => p.second_name = Some(text(false)?),
        FieldKey::MiddleName => p.middle_name = Some(text(false)?),
        FieldKey::DisplayName => p.display_name = Some(text(false)?),
        FieldKey::Email => {
            p.email = Some(
                Email::parse(value).map_err(|e| invalid(ErrorType::InvalidEmail, key, value, e))?,
            )
        }
        FieldKey::PhoneMobile => p.phone_mobile = Some(phone()?),
        FieldKey::PhoneWork => p.phone_work = Some(phone()?),
        FieldKey::Manager => {
            record.manager = Some(ManagerRef::ExternalId(
                ExternalId::parse(value).map_err(ident)?,
            ))
        }
        FieldKey::JobTitle => p.job_title = Some(text(false)?),
        FieldKey::Location => p.location = Some(text(false)?),
        FieldKey::Department => p.department = Some(text(false)?),
        FieldKey::Company => p.company = Some(text(false)?),
        FieldKey::Description => p.description = Some(text(true)?),
        FieldKey::Active => {
            record.active = values::parse_bool(value)
                .map_err(|e| invalid(ErrorType::InvalidBoolean, key, value, e))?
        }
        FieldKey::StartEmploymentDate => p.start_employment_date = Some(date()?),
        FieldKey::EndEmploymentDate => p.end_employment_date = Some(date()?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmanaged_user_needs_a_username_and_reads_each_value() {
        let cells = |pairs: &[(FieldKey, &str)]| -> Vec<(FieldKey, String)> {
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
        };
        let options = ReadOptions::default();
        let r = unmanaged_user(
            &cells(&[
                (FieldKey::Username, "ann"),
                (FieldKey::Email, "Ann@Acme.com"),
                (FieldKey::FirstName, ""),
            ]),
            &options,
        )
        .unwrap();
        assert_eq!(r.link, Link::Unmanaged);
        assert!(
            !r.link.from_source(),
            "an operator's user is managed by no one"
        );
        assert!(r.provided.contains(FieldKey::Email));
        assert!(
            !r.provided.contains(FieldKey::FirstName),
            "an empty value is left out"
        );

        let issues = unmanaged_user(
            &cells(&[
                (FieldKey::Email, "not-an-email"),
                (FieldKey::PhoneMobile, "12"),
            ]),
            &options,
        )
        .unwrap_err();
        let types: Vec<ErrorType> = issues.iter().map(|i| i.error_type).collect();
        assert_eq!(
            types,
            vec![
                ErrorType::InvalidEmail,
                ErrorType::InvalidPhone,
                ErrorType::MissingRequiredField
            ]
        );
    }

    fn raw(cells: &[(FieldKey, &str)]) -> RawRecord {
        RawRecord {
            row: 2,
            cells: cells.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            custom: vec![],
        }
    }

    fn base() -> Vec<(FieldKey, &'static str)> {
        vec![
            (FieldKey::ExternalId, "E1"),
            (FieldKey::Username, "jdoe"),
            (FieldKey::Active, "TRUE"),
        ]
    }

    fn first_issue(r: BatchItem) -> Issue {
        r.expect_err("row should be rejected").issues.remove(0)
    }

    #[test]
    fn a_good_row_links_by_external_id() {
        let mut cells = base();
        cells.push((FieldKey::Email, " jane@acme.com "));
        cells.push((FieldKey::Manager, "E0"));
        let rec = raw(&cells).validate(&ReadOptions::default()).unwrap();
        assert_eq!(rec.link, Link::ExternalId(ExternalId::parse("E1").unwrap()));
        assert_eq!(rec.profile.email.unwrap().as_str(), "jane@acme.com");
        assert!(rec.active);
        assert_eq!(
            rec.manager,
            Some(ManagerRef::ExternalId(ExternalId::parse("E0").unwrap()))
        );
    }

    #[test]
    fn each_validation_code() {
        let cases = [
            (FieldKey::Email, "jane@acme", ErrorType::InvalidEmail),
            (
                FieldKey::PhoneMobile,
                "07495 944376",
                ErrorType::InvalidPhone,
            ),
            (
                FieldKey::StartEmploymentDate,
                "31/01/2024",
                ErrorType::InvalidDate,
            ),
        ];
        for (key, value, expected) in cases {
            let mut cells = base();
            cells.push((key, value));
            let issue = first_issue(raw(&cells).validate(&ReadOptions::default()));
            assert_eq!(issue.error_type, expected, "{key}");
            assert_eq!(issue.additional_data, format!("{}={value}", key.key()));
        }
        let mut cells = base();
        cells[2] = (FieldKey::Active, "yes");
        let issue = first_issue(raw(&cells).validate(&ReadOptions::default()));
        assert_eq!(issue.error_type, ErrorType::InvalidBoolean);
        assert_eq!(
            issue.message,
            "Active: 'yes' is not a boolean: use true or false"
        );
    }

    #[test]
    fn missing_required_fields() {
        let mut cells = base();
        cells[1] = (FieldKey::Username, "  ");
        let rejected = raw(&cells).validate(&ReadOptions::default()).unwrap_err();
        assert_eq!(
            rejected.issues[0].error_type,
            ErrorType::MissingRequiredField
        );
        assert_eq!(rejected.issues[0].additional_data, "username=");
        assert_eq!(rejected.external_id, "E1");

        let rejected = raw(&base()[..2])
            .validate(&ReadOptions::default())
            .unwrap_err();
        assert_eq!(
            rejected.issues[0].error_type,
            ErrorType::MissingRequiredField
        );
        assert!(rejected.issues[0].message.starts_with("Active is required"));
    }

    #[test]
    fn national_phone_with_region() {
        let mut cells = base();
        cells.push((FieldKey::PhoneMobile, "07495 944376"));
        let options = ReadOptions {
            phone_region: Some(PhoneRegion::parse("GB").unwrap()),
        };
        let rec = raw(&cells).validate(&options).unwrap();
        let phone = rec.profile.phone_mobile.unwrap();
        assert_eq!(phone.as_str(), "07495 944376");
        assert_eq!(phone.e164(), "+447495944376");
    }

    #[test]
    fn empty_cells_are_provided_but_empty() {
        let mut cells = base();
        cells.push((FieldKey::JobTitle, ""));
        let rec = raw(&cells).validate(&ReadOptions::default()).unwrap();
        assert!(rec.provided.contains(FieldKey::JobTitle));
        assert_eq!(rec.profile.job_title, None);
    }
}
