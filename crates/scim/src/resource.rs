//! The User resource: a stored user as SCIM JSON ([`user_resource`]), and a SCIM body as an
//! incoming record for the engine ([`incoming_from_resource`]).
//!
//! SCIM writes are full records: POST and PUT bodies, and the resource a PATCH produces, state
//! every attribute rollcall maps, so an omitted attribute is cleared (SPEC §2's contact
//! exception is the engine's business). Unknown attributes are ignored, as both identity
//! providers send attributes nobody asked for (Okta's `password`, Entra's `roles`).

use chrono::{DateTime, SecondsFormat, Utc};
use rollcall_domain::StoredUser;
use rollcall_domain::ids::UserId;
use rollcall_domain::record::{Incoming, Link, ManagerRef, ReadOptions};
use rollcall_domain::values::{self, Email, EmployeeId, ExternalId, Phone, UserName, ValueError};
use rollcall_domain::{ErrorType, FieldKey};
use serde_json::{Map, Value, json};

use crate::error::ScimError;
use crate::schema::{Container, ENTERPRISE_USER, UserSchema};

/// What `meta` reports besides the resource type.
#[derive(Clone, Debug)]
pub struct ResourceMeta {
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub version: i64,
    pub location: String,
}

/// The weak ETag of a version, as `meta.version` and the `ETag` header carry it.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored user as a SCIM User resource. Values are returned exactly as they were sent;
/// absent values are omitted.
pub fn user_resource(user: &StoredUser, meta: &ResourceMeta, schema: &UserSchema) -> Value {
    let p = &user.profile;
    let mut r = Map::new();
    r.insert("schemas".into(), schema.resource_schemas());
    r.insert("id".into(), json!(user.id.as_str()));
    let put = |o: &mut Map<String, Value>, key: &str, value: Option<&str>| {
        if let Some(v) = value {
            o.insert(key.to_owned(), json!(v));
        }
    };
    put(
        &mut r,
        "externalId",
        p.external_id.as_ref().map(ExternalId::as_str),
    );
    put(
        &mut r,
        "userName",
        p.username.as_ref().map(UserName::as_str),
    );
    let mut name = Map::new();
    put(&mut name, "givenName", p.first_name.as_deref());
    put(&mut name, "middleName", p.middle_name.as_deref());
    put(&mut name, "familyName", p.second_name.as_deref());
    if !name.is_empty() {
        r.insert("name".into(), Value::Object(name));
    }
    put(&mut r, "displayName", p.shown_display_name().as_deref());
    put(&mut r, "title", p.job_title.as_deref());
    r.insert("active".into(), json!(user.active));
    // `primary` and `display` as the identity provider sent them.
    let sent = &p.contact_meta;
    if let Some(email) = &p.email {
        let mut element = json!({"value": email.as_str(), "type": "work"});
        if let Some(primary) = sent.email_primary {
            element["primary"] = json!(primary);
        }
        if let Some(display) = &sent.email_display {
            element["display"] = json!(display);
        }
        r.insert("emails".into(), json!([element]));
    }
    let phones: Vec<Value> = [
        ("mobile", &p.phone_mobile, sent.mobile_primary),
        ("work", &p.phone_work, sent.work_primary),
    ]
    .into_iter()
    .filter_map(|(kind, phone, primary)| {
        phone.as_ref().map(|ph| {
            let mut element = json!({"value": ph.as_str(), "type": kind});
            if let Some(primary) = primary {
                element["primary"] = json!(primary);
            }
            element
        })
    })
    .collect();
    if !phones.is_empty() {
        r.insert("phoneNumbers".into(), Value::Array(phones));
    }

    let mut enterprise = Map::new();
    put(
        &mut enterprise,
        "employeeNumber",
        p.employee_id.as_ref().map(EmployeeId::as_str),
    );
    put(&mut enterprise, "department", p.department.as_deref());
    if let Some(manager) = &user.manager_id {
        // `$ref` is the manager's location, beside this user's.
        let base = meta.location.rsplit_once('/').map_or("", |(base, _)| base);
        enterprise.insert(
            "manager".into(),
            json!({"value": manager.as_str(), "$ref": format!("{base}/{manager}")}),
        );
    }
    if !enterprise.is_empty() {
        r.insert(ENTERPRISE_USER.into(), Value::Object(enterprise));
    }

    let mut custom = Map::new();
    put(&mut custom, "company", p.company.as_deref());
    put(&mut custom, "description", p.description.as_deref());
    put(&mut custom, "location", p.location.as_deref());
    let date = |d: &Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    put(
        &mut custom,
        "startEmploymentDate",
        date(&p.start_employment_date).as_deref(),
    );
    put(
        &mut custom,
        "endEmploymentDate",
        date(&p.end_employment_date).as_deref(),
    );
    // Always present, even empty: a generic client that set `{}` reads back what it wrote.
    custom.insert("customFields".into(), json!(p.custom_fields));
    r.insert(schema.custom_urn.clone(), Value::Object(custom));

    r.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": timestamp(&meta.created),
            "lastModified": timestamp(&meta.last_modified),
            "location": meta.location,
            "version": etag(meta.version),
        }),
    );
    Value::Object(r)
}

/// The value under `key`, compared case-insensitively (clients vary the case of attribute
/// names; RFC 7643 §2.1 makes them case-insensitive).
pub fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A body's string value: `None` for absent, null or blank; numbers are taken as their text
/// (some HR-fed identity providers send `employeeNumber` as a number).
fn string_value(value: Option<&Value>, attribute: &str) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = values::clean(s);
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{attribute} must be a string, not {}",
            json_kind(other)
        ))),
    }
}

/// How an error message names a JSON value's kind.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object<'a>(
    value: Option<&'a Value>,
    attribute: &str,
) -> Result<Option<&'a Map<String, Value>>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{attribute} must be an object, not {}",
            json_kind(other)
        ))),
    }
}

/// The elements of a multi-valued attribute; a single object is taken as one element.
fn elements<'a>(
    value: Option<&'a Value>,
    attribute: &str,
) -> Result<Vec<&'a Map<String, Value>>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(o)) => Ok(vec![o]),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_object().ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "{attribute} must be an array of objects with a value and a type"
                    ))
                })
            })
            .collect(),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{attribute} must be an array, not {}",
            json_kind(other)
        ))),
    }
}

fn element_type(element: &Map<String, Value>) -> Option<&str> {
    get_ci(element, "type")
        .and_then(Value::as_str)
        .map(str::trim)
}

/// An element's `primary` as sent (Entra ID sends `"True"`), `None` when left out.
fn primary(element: &Map<String, Value>, attribute: &str) -> Result<Option<bool>, ScimError> {
    boolean(get_ci(element, "primary"), attribute)
}

fn is_primary(element: &Map<String, Value>) -> bool {
    match get_ci(element, "primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// SCIM booleans, with the strings Microsoft Entra ID sends (`"True"`, `"False"`).
fn boolean(value: Option<&Value>, attribute: &str) -> Result<Option<bool>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => values::parse_bool(s).map(Some).map_err(|_| {
            ScimError::invalid_value(format!("{attribute} must be true or false, not \"{s}\""))
                .logged_as(ErrorType::InvalidBoolean)
        }),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{attribute} must be a boolean, not {}",
            json_kind(other)
        ))),
    }
}

fn refused(attribute: &str, e: ValueError) -> ScimError {
    ScimError::invalid_value(format!("{attribute}: {e}"))
}

/// The extension object of `container` in a body, found by its URN in any letter case.
fn extension<'a>(
    body: &'a Map<String, Value>,
    schema: &UserSchema,
    container: Container,
) -> Result<Option<&'a Map<String, Value>>, ScimError> {
    let urn = schema.urn(container);
    object(get_ci(body, urn), urn)
}

/// An ISO date, or an RFC 3339 date-time whose date is taken as written (Entra sends
/// `employeeHireDate` as `2024-01-31T08:00:00Z`).
fn scim_date(text: &str) -> Result<chrono::NaiveDate, ValueError> {
    values::parse_date(text).or_else(|e| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.date_naive())
            .map_err(|_| e)
    })
}

/// Read a SCIM User body as an incoming record that provides every attribute rollcall maps.
pub fn incoming_from_resource(
    body: &Value,
    row: u64,
    link: Link,
    options: &ReadOptions,
    schema: &UserSchema,
) -> Result<Incoming, ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("The request body must be a JSON object"))?;
    let mut record = Incoming::new(row, link);
    for key in FieldKey::ALL {
        record.provided.insert(key);
    }
    let p = &mut record.profile;
    let text =
        |value: Option<&Value>, attribute: &str, long: bool| -> Result<Option<String>, ScimError> {
            match string_value(value, attribute)? {
                None => Ok(None),
                Some(s) => values::text(attribute, &s, long)
                    .map(Some)
                    .map_err(|e| ScimError::invalid_value(e.0)),
            }
        };

    p.external_id = string_value(get_ci(body, "externalId"), "externalId")?
        .map(|v| ExternalId::parse(&v).map_err(|e| refused("externalId", e)))
        .transpose()?;
    let username = string_value(get_ci(body, "userName"), "userName")?.ok_or_else(|| {
        ScimError::invalid_value("userName is required: send a non-empty userName")
            .logged_as(ErrorType::MissingRequiredField)
    })?;
    p.username = Some(UserName::parse(&username).map_err(|e| refused("userName", e))?);

    if let Some(name) = object(get_ci(body, "name"), "name")? {
        p.first_name = text(get_ci(name, "givenName"), "name.givenName", false)?;
        p.second_name = text(get_ci(name, "familyName"), "name.familyName", false)?;
        p.middle_name = text(get_ci(name, "middleName"), "name.middleName", false)?;
    }
    p.display_name = text(get_ci(body, "displayName"), "displayName", false)?;
    p.job_title = text(get_ci(body, "title"), "title", false)?;
    record.active = boolean(get_ci(body, "active"), "active")?.unwrap_or(true);

    // One work email: the `work` one, else the primary one, else the first (Okta and Entra
    // send `work`; other clients send untyped addresses).
    let emails = elements(get_ci(body, "emails"), "emails")?;
    let email = emails
        .iter()
        .find(|e| element_type(e).is_some_and(|t| t.eq_ignore_ascii_case("work")))
        .or_else(|| emails.iter().find(|e| is_primary(e)))
        .or_else(|| emails.iter().find(|e| element_type(e).is_none()))
        .or_else(|| emails.first());
    if let Some(email) = email {
        p.contact_meta.email_primary = primary(email, "emails.primary")?;
        p.contact_meta.email_display = text(get_ci(email, "display"), "emails.display", false)?;
        p.email = string_value(get_ci(email, "value"), "emails.value")?
            .map(|v| {
                Email::parse(&v).map_err(|e| {
                    refused("emails[type eq \"work\"].value: invalid email", e)
                        .logged_as(ErrorType::InvalidEmail)
                })
            })
            .transpose()?;
    }

    for phone in elements(get_ci(body, "phoneNumbers"), "phoneNumbers")? {
        let (slot, sent_primary) = match element_type(phone) {
            Some(t) if t.eq_ignore_ascii_case("mobile") => {
                (&mut p.phone_mobile, &mut p.contact_meta.mobile_primary)
            }
            Some(t) if t.eq_ignore_ascii_case("work") => {
                (&mut p.phone_work, &mut p.contact_meta.work_primary)
            }
            // Fax, pager and untyped numbers are not stored (SPEC §2).
            _ => continue,
        };
        *sent_primary = primary(phone, "phoneNumbers.primary")?;
        let kind = element_type(phone).unwrap_or_default().to_ascii_lowercase();
        let attribute = format!("phoneNumbers[type eq \"{kind}\"].value");
        *slot = string_value(get_ci(phone, "value"), &attribute)?
            .map(|v| {
                Phone::parse(&v, options.phone_region).map_err(|e| {
                    refused(&format!("{attribute}: invalid phone number"), e)
                        .logged_as(ErrorType::InvalidPhone)
                })
            })
            .transpose()?;
    }

    if let Some(ext) = extension(body, schema, Container::Enterprise)? {
        p.employee_id = string_value(get_ci(ext, "employeeNumber"), "employeeNumber")?
            .map(|v| EmployeeId::parse(&v).map_err(|e| refused("employeeNumber", e)))
            .transpose()?;
        p.department = text(get_ci(ext, "department"), "department", false)?;
        // The manager is `{"value": id}`; Entra also sends the bare id.
        let manager = match get_ci(ext, "manager") {
            Some(Value::Object(m)) => string_value(get_ci(m, "value"), "manager.value")?,
            other => string_value(other, "manager")?,
        };
        record.manager = manager.map(|id| ManagerRef::User(UserId::new(&id)));
    }

    if let Some(ext) = extension(body, schema, Container::Custom)? {
        p.company = text(get_ci(ext, "company"), "company", false)?;
        p.description = text(get_ci(ext, "description"), "description", true)?;
        p.location = text(get_ci(ext, "location"), "location", false)?;
        let date = |key: &str| -> Result<Option<chrono::NaiveDate>, ScimError> {
            string_value(get_ci(ext, key), key)?
                .map(|v| {
                    scim_date(&v).map_err(|e| refused(key, e).logged_as(ErrorType::InvalidDate))
                })
                .transpose()
        };
        p.start_employment_date = date("startEmploymentDate")?;
        p.end_employment_date = date("endEmploymentDate")?;
        if let Some(fields) = object(get_ci(ext, "customFields"), "customFields")? {
            for (name, value) in fields {
                let attribute = format!("customFields.{name}");
                record.custom_provided.push(name.clone());
                if let Some(v) = text(Some(value), &attribute, false)? {
                    record.profile.custom_fields.insert(name.clone(), v);
                }
            }
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_domain::values::PhoneRegion;

    fn schema() -> UserSchema {
        UserSchema::default()
    }

    fn read(body: Value) -> Result<Incoming, ScimError> {
        incoming_from_resource(&body, 1, Link::New, &ReadOptions::default(), &schema())
    }

    fn full_body() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "externalId": "e-1",
            "USERNAME": "Ann@Example.com",
            "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ann Lee"},
            "title": "Engineer",
            "active": "False",
            "emails": [
                {"value": "home@example.org", "type": "home"},
                {"value": "Ann@Example.com", "type": "work", "primary": true}
            ],
            "phoneNumbers": [
                {"value": "+44 7495 944376", "type": "mobile"},
                {"value": "+1 206 555 0100", "type": "fax"},
                {"value": "+1 (425) 882-8080", "type": "Work"}
            ],
            "password": "ignored",
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": 701, "department": "R&D", "manager": "m-1"
            },
            "urn:ietf:params:scim:schemas:extension:rollcall:2.0:User": {
                "company": "Acme", "location": "London", "startEmploymentDate": "2024-01-02",
                "customFields": {"costCentre": "C1", "badge": null}
            }
        })
    }

    #[test]
    fn a_full_body_reads_every_mapped_attribute() {
        let r = read(full_body()).unwrap();
        let p = &r.profile;
        assert_eq!(p.username.as_ref().unwrap().as_str(), "Ann@Example.com");
        assert_eq!(p.first_name.as_deref(), Some("Ann"));
        assert_eq!(p.email.as_ref().unwrap().as_str(), "Ann@Example.com");
        assert_eq!(p.phone_mobile.as_ref().unwrap().as_str(), "+44 7495 944376");
        assert_eq!(p.phone_work.as_ref().unwrap().as_str(), "+1 (425) 882-8080");
        assert_eq!(p.employee_id.as_ref().unwrap().as_str(), "701");
        assert_eq!(r.manager, Some(ManagerRef::User(UserId::new("m-1"))));
        assert!(!r.active);
        assert_eq!(
            p.custom_fields.get("costCentre").map(String::as_str),
            Some("C1")
        );
        assert_eq!(
            r.custom_provided,
            vec!["badge".to_owned(), "costCentre".to_owned()]
        );
        assert!(r.provided.contains(FieldKey::Department));
    }

    #[test]
    fn omitted_attributes_are_provided_empty_so_they_clear() {
        let r = read(json!({"userName": "bob"})).unwrap();
        assert!(r.active);
        assert!(r.provided.contains(FieldKey::JobTitle));
        assert_eq!(r.profile.job_title, None);
        assert_eq!(r.manager, None);
    }

    #[test]
    fn bad_values_are_invalid_value_naming_the_attribute() {
        let cases = [
            (json!({}), "userName is required"),
            (json!({"userName": {"a": 1}}), "userName must be a string"),
            (
                json!({"userName": "a", "emails": [{"value": "nope", "type": "work"}]}),
                "invalid email",
            ),
            (
                json!({"userName": "a", "phoneNumbers": [{"value": "07495 944376", "type": "mobile"}]}),
                "phoneNumbers[type eq \"mobile\"].value",
            ),
            (
                json!({"userName": "a", "active": "maybe"}),
                "active must be true or false",
            ),
            (
                json!({"userName": "a", "emails": "a@b.co"}),
                "emails must be an array",
            ),
            (
                json!({"userName": "a", "DEFAULT": {"startEmploymentDate": "01/02/2024"}}),
                "startEmploymentDate",
            ),
        ];
        for (body, expected) in cases {
            let body = serde_json::from_str(
                &body
                    .to_string()
                    .replace("DEFAULT", crate::schema::DEFAULT_CUSTOM_URN),
            )
            .unwrap();
            let e = read(body).unwrap_err();
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(crate::error::ScimType::InvalidValue))
            );
            assert!(e.detail.contains(expected), "{} lacks {expected}", e.detail);
        }
    }

    #[test]
    fn a_bad_value_carries_the_error_type_its_log_row_shows() {
        let cases = [
            (json!({}), Some(ErrorType::MissingRequiredField)),
            (
                json!({"userName": "a", "emails": [{"value": "nope", "type": "work"}]}),
                Some(ErrorType::InvalidEmail),
            ),
            (
                json!({"userName": "a", "phoneNumbers": [{"value": "07495 944376", "type": "mobile"}]}),
                Some(ErrorType::InvalidPhone),
            ),
            (
                json!({"userName": "a", "active": "maybe"}),
                Some(ErrorType::InvalidBoolean),
            ),
            (json!({"userName": "a", "emails": "a@b.co"}), None),
        ];
        for (body, expected) in cases {
            assert_eq!(read(body).unwrap_err().error_type, expected);
        }
    }

    #[test]
    fn national_numbers_need_the_configuration_region() {
        let body =
            json!({"userName": "a", "phoneNumbers": [{"value": "07495 944376", "type": "mobile"}]});
        let options = ReadOptions {
            phone_region: Some(PhoneRegion::parse("GB").unwrap()),
        };
        let r = incoming_from_resource(&body, 1, Link::New, &options, &schema()).unwrap();
        assert_eq!(r.profile.phone_mobile.unwrap().e164(), "+447495944376");
    }

    #[test]
    fn a_resource_reads_back_as_the_same_record() {
        let incoming = read(full_body()).unwrap();
        let mut user = StoredUser::new(UserId::new("u-1"));
        user.profile = incoming.profile.clone();
        user.active = incoming.active;
        user.manager_id = Some(UserId::new("m-1"));
        user.version = 3;
        let now = Utc::now();
        let meta = ResourceMeta {
            created: now,
            last_modified: now,
            version: 3,
            location: "http://h/scim/v2/Users/u-1".into(),
        };
        let resource = user_resource(&user, &meta, &schema());
        assert_eq!(resource["meta"]["version"], "W/\"3\"");
        assert_eq!(
            resource[ENTERPRISE_USER]["manager"],
            json!({"value": "m-1", "$ref": "http://h/scim/v2/Users/m-1"})
        );
        let again = read(resource).unwrap();
        // A display name is shown as "First Second" when none was sent, and reads back so.
        let mut expected = incoming.profile.clone();
        expected.display_name = incoming.profile.shown_display_name();
        assert_eq!(again.profile, expected);
        assert_eq!(again.manager, incoming.manager);
        assert_eq!(again.active, incoming.active);
    }

    #[test]
    fn dates_may_come_as_date_times() {
        let body = json!({"userName": "a", crate::schema::DEFAULT_CUSTOM_URN: {"startEmploymentDate": "2024-01-31T23:30:00-05:00"}});
        let r = read(body).unwrap();
        assert_eq!(
            r.profile.start_employment_date,
            chrono::NaiveDate::from_ymd_opt(2024, 1, 31)
        );
    }

    #[test]
    fn the_configured_urn_carries_the_extension() {
        let blink = UserSchema::new("urn:ietf:params:scim:schemas:extension:blink:2.0:User");
        let body = json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:blink:2.0:User": {"company": "Acme"}});
        let r =
            incoming_from_resource(&body, 1, Link::New, &ReadOptions::default(), &blink).unwrap();
        assert_eq!(r.profile.company.as_deref(), Some("Acme"));
        // Under the default URN the same body's extension is unknown, and ignored.
        assert_eq!(read(body).unwrap().profile.company, None);
    }
}
