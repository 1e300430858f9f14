//! The fields of the user record (SPEC §2) and their names in mappings, logs and SCIM.

use std::fmt;

/// A standard field of the user record. Custom fields are named by the operator and are not
/// listed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldKey {
    ExternalId,
    Username,
    EmployeeId,
    FirstName,
    SecondName,
    Email,
    PhoneMobile,
    PhoneWork,
    Manager,
    JobTitle,
    Location,
    Department,
    Company,
    Description,
    Active,
    StartEmploymentDate,
    EndEmploymentDate,
    // Added later: a variant's position is its bit in a `FieldSet`, so new ones go last.
    MiddleName,
    DisplayName,
}

impl FieldKey {
    pub const ALL: [FieldKey; 19] = [
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
        FieldKey::Manager,
        FieldKey::JobTitle,
        FieldKey::Location,
        FieldKey::Department,
        FieldKey::Company,
        FieldKey::Description,
        FieldKey::Active,
        FieldKey::StartEmploymentDate,
        FieldKey::EndEmploymentDate,
    ];

    /// Fields a file or pull configuration must map.
    pub const REQUIRED_FOR_FILES: [FieldKey; 3] =
        [FieldKey::ExternalId, FieldKey::Username, FieldKey::Active];

    /// The key used in mapping files, logs (`ChangedFields`) and the API.
    pub fn key(self) -> &'static str {
        match self {
            FieldKey::ExternalId => "external_id",
            FieldKey::Username => "username",
            FieldKey::EmployeeId => "employee_id",
            FieldKey::FirstName => "first_name",
            FieldKey::SecondName => "second_name",
            FieldKey::MiddleName => "middle_name",
            FieldKey::DisplayName => "display_name",
            FieldKey::Email => "email",
            FieldKey::PhoneMobile => "phone_mobile",
            FieldKey::PhoneWork => "phone_work",
            FieldKey::Manager => "manager",
            FieldKey::JobTitle => "job_title",
            FieldKey::Location => "location",
            FieldKey::Department => "department",
            FieldKey::Company => "company",
            FieldKey::Description => "description",
            FieldKey::Active => "active",
            FieldKey::StartEmploymentDate => "start_employment_date",
            FieldKey::EndEmploymentDate => "end_employment_date",
        }
    }

    /// The label admins see.
    pub fn label(self) -> &'static str {
        match self {
            FieldKey::ExternalId => "External ID",
            FieldKey::Username => "Username",
            FieldKey::EmployeeId => "Employee ID",
            FieldKey::FirstName => "First Name",
            FieldKey::SecondName => "Second Name",
            FieldKey::MiddleName => "Middle Name",
            FieldKey::DisplayName => "Display Name",
            FieldKey::Email => "Email",
            FieldKey::PhoneMobile => "Phone Mobile",
            FieldKey::PhoneWork => "Phone Work",
            FieldKey::Manager => "Manager",
            FieldKey::JobTitle => "Job Title",
            FieldKey::Location => "Location Name",
            FieldKey::Department => "Department Name",
            FieldKey::Company => "Company",
            FieldKey::Description => "About me",
            FieldKey::Active => "Active",
            FieldKey::StartEmploymentDate => "Start Employment Date",
            FieldKey::EndEmploymentDate => "End Employment Date",
        }
    }

    pub fn from_key(key: &str) -> Option<FieldKey> {
        FieldKey::ALL.into_iter().find(|f| f.key() == key)
    }

    /// All valid keys, for error messages that list them.
    pub fn valid_keys() -> String {
        FieldKey::ALL.map(FieldKey::key).join(", ")
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A set of standard fields: which fields a source provides. Fields outside the set are left
/// as they are on the stored user.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u32);

impl FieldSet {
    pub const fn empty() -> Self {
        FieldSet(0)
    }
    pub fn all() -> Self {
        FieldKey::ALL.into_iter().collect()
    }
    pub fn insert(&mut self, field: FieldKey) {
        self.0 |= field.bit();
    }
    pub fn remove(&mut self, field: FieldKey) {
        self.0 &= !field.bit();
    }
    pub fn contains(self, field: FieldKey) -> bool {
        self.0 & field.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = FieldKey> {
        FieldKey::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<FieldKey> for FieldSet {
    fn from_iter<T: IntoIterator<Item = FieldKey>>(iter: T) -> Self {
        let mut set = FieldSet::empty();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(FieldKey::key))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in FieldKey::ALL {
            assert_eq!(FieldKey::from_key(f.key()), Some(f));
            assert!(seen.insert(f.key()));
        }
        assert_eq!(FieldKey::from_key("Email"), None, "keys are case-sensitive");
    }

    #[test]
    fn field_set_holds_what_was_inserted() {
        let set: FieldSet = [FieldKey::Email, FieldKey::Active].into_iter().collect();
        assert!(set.contains(FieldKey::Email));
        assert!(!set.contains(FieldKey::Manager));
        assert_eq!(set.iter().count(), 2);
        assert_eq!(FieldSet::all().iter().count(), FieldKey::ALL.len());
    }
}
