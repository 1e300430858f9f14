//! The user record as stored (SPEC §2).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::ids::{ConfigId, UserId};
use crate::values::{Email, EmployeeId, ExternalId, Phone, UserName};

/// The profile fields of a user. Every field is optional here because a source may leave any
/// of them empty; a stored user always has a username.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub external_id: Option<ExternalId>,
    pub username: Option<UserName>,
    pub employee_id: Option<EmployeeId>,
    pub first_name: Option<String>,
    pub second_name: Option<String>,
    pub middle_name: Option<String>,
    /// As the source gives it; shown as "First Second" when it gives none ([`Profile::shown_display_name`]).
    pub display_name: Option<String>,
    /// What an identity provider sent beside the email and phone numbers, returned as sent.
    pub contact_meta: ContactMeta,
    pub email: Option<Email>,
    pub phone_mobile: Option<Phone>,
    pub phone_work: Option<Phone>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    pub description: Option<String>,
    pub start_employment_date: Option<NaiveDate>,
    pub end_employment_date: Option<NaiveDate>,
    pub custom_fields: BTreeMap<String, String>,
}

/// SCIM's `primary` and `display` of the stored email, and `primary` of the stored phone
/// numbers, as the identity provider sent them (`None`: not sent). Other sources send none.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_primary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_primary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_primary: Option<bool>,
}

impl ContactMeta {
    pub fn is_empty(&self) -> bool {
        *self == ContactMeta::default()
    }
}

impl Profile {
    /// The display name: the source's, else "First Second" from what there is (SPEC §2).
    pub fn shown_display_name(&self) -> Option<String> {
        if let Some(name) = &self.display_name {
            return Some(name.clone());
        }
        let parts: Vec<&str> = [&self.first_name, &self.second_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// A user as storage holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    pub id: UserId,
    pub profile: Profile,
    pub active: bool,
    pub manager_id: Option<UserId>,
    /// The source configuration that manages this user; `None` for users admins manage.
    pub managed_by: Option<ConfigId>,
    /// Whether the stored email came from the source. When the source provides none, the
    /// admin panel may edit it (SPEC §2's contact exception).
    pub email_from_source: bool,
    /// As `email_from_source`, for the mobile number.
    pub phone_mobile_from_source: bool,
    /// Deleted through SCIM: deactivated and hidden from SCIM, kept for history.
    pub scim_deleted: bool,
    /// Incremented on every write; storage refuses a write based on a stale version.
    pub version: i64,
}

impl StoredUser {
    /// A user not yet stored.
    pub fn new(id: UserId) -> StoredUser {
        StoredUser {
            id,
            profile: Profile::default(),
            active: true,
            manager_id: None,
            managed_by: None,
            email_from_source: false,
            phone_mobile_from_source: false,
            scim_deleted: false,
            version: 0,
        }
    }
}
