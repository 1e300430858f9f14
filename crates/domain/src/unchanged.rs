//! Recognising file rows that leave their user exactly as stored, before they become records.
//!
//! Most rows of a daily HR file repeat what the last run stored. Planning them in full costs a
//! typed [`Incoming`](crate::record::Incoming), a [`StoredUser`](crate::StoredUser) and a
//! planned record each, and libphonenumber for every number. A [`Sieve`] holds, per user the
//! configuration manages, the stored values of the mapped fields (packed in one allocation);
//! a row whose cleaned cells equal them byte for byte is Unchanged and is kept as an
//! [`UnchangedRow`] only. Every other row goes through the planner as before.
//!
//! Why equal cells mean the planner's Unchanged: the stored values were validated when this
//! configuration wrote them, and each parser returns its (cleaned) input unchanged, so the row
//! would validate to exactly the stored values; the user is managed by this configuration, so
//! step 1 of matching links it and nothing claims it. Phone numbers are compared only in
//! international form, whose reading does not depend on the configuration's region (the same
//! rule as [`PhoneCache::know`]). What depends on the rest of the batch is checked afterwards
//! ([`Sifted::conflicts_with`], [`Sifted::holds_for`]); when a check fails the caller plans
//! the whole file as before.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use crate::field::FieldKey;
use crate::ids::ConfigId;
use crate::mapping::Mapping;
use crate::plan::{self, Plan};
use crate::record::BatchItem;
use crate::run::{Action, ErrorType, LogRow};
use crate::values::{PhoneCache, clean, parse_bool};

/// A row the sieve took: it is logged as Unchanged and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnchangedRow<'a> {
    pub row: u64,
    pub external_id: &'a str,
    pub username: &'a str,
}

impl UnchangedRow<'_> {
    /// The log row the planner gives a record that links to a user it manages and changes
    /// nothing: no note, no warning, no changed field.
    pub fn log_row(&self) -> LogRow {
        LogRow {
            row: Some(self.row),
            external_id: self.external_id.to_owned(),
            username: self.username.to_owned(),
            action: Action::Unchanged.label().to_owned(),
            ..LogRow::default()
        }
    }
}

/// The rows a sieve took, packed: their row numbers, and their external IDs and usernames in
/// one string. A daily file repeats most of a million users: two allocations a row were
/// about 100 MB of a run's peak, packed they are about half.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnchangedRows {
    rows: Vec<u64>,
    /// Per row, where its external ID ends and where its username ends in `text` (each
    /// row's text starts where the previous one's ends).
    ends: Vec<(usize, usize)>,
    text: String,
}

impl UnchangedRows {
    /// Room for `rows` rows of about 32 bytes of text each.
    pub fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
        self.ends.reserve(rows);
        self.text.reserve(rows.saturating_mul(32));
    }

    pub fn push(&mut self, row: u64, external_id: &str, username: &str) {
        self.text.push_str(external_id);
        let external_end = self.text.len();
        self.text.push_str(username);
        self.rows.push(row);
        self.ends.push((external_end, self.text.len()));
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in the order they were taken (the file's).
    pub fn iter(&self) -> impl Iterator<Item = UnchangedRow<'_>> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|(_, end)| *end));
        self.rows
            .iter()
            .zip(&self.ends)
            .zip(starts)
            .map(|((row, (external_end, end)), start)| UnchangedRow {
                row: *row,
                external_id: &self.text[start..*external_end],
                username: &self.text[*external_end..*end],
            })
    }
}

/// A stored user's manager, as a file names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredManager<'a> {
    None,
    /// The manager's external ID.
    External(&'a str),
    /// A manager without an external ID (or not found): no file row can name it.
    Unnamed,
}

/// The stored columns of one user, borrowed from storage's row.
#[derive(Clone, Copy, Debug)]
pub struct StoredView<'a> {
    pub managed_by: Option<&'a str>,
    pub external_id: &'a str,
    pub username: &'a str,
    pub employee_id: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub second_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_from_source: bool,
    pub phone_mobile: Option<&'a str>,
    pub phone_mobile_e164: Option<&'a str>,
    pub phone_mobile_from_source: bool,
    pub phone_work: Option<&'a str>,
    pub phone_work_e164: Option<&'a str>,
    pub manager: StoredManager<'a>,
    pub job_title: Option<&'a str>,
    pub location: Option<&'a str>,
    pub department: Option<&'a str>,
    pub company: Option<&'a str>,
    pub description: Option<&'a str>,
    pub active: bool,
    /// `YYYY-MM-DD`, as storage writes dates.
    pub start_employment_date: Option<&'a str>,
    pub end_employment_date: Option<&'a str>,
    pub custom_fields: &'a BTreeMap<String, String>,
}

// Tags of the packed form. A stored user and a row pack to the same bytes exactly when the
// row leaves the user as it is; `NEVER` (stored side) and `BAD` (row side) match nothing.
const EMPTY: u8 = b'N';
const VALUE: u8 = b'V';
/// Email or mobile left empty by the source: the stored value stays, the flag says "not
/// from the source" (SPEC §2's contact exception).
const KEPT: u8 = b'K';
const TRUE: u8 = b'T';
const FALSE: u8 = b'F';
const NEVER: u8 = b'X';
const BAD: u8 = b'R';

fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.push(low);
            return;
        }
        buf.push(low | 0x80);
    }
}

fn get_len(buf: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    while let Some(&b) = buf.get(*at) {
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

fn put_value(buf: &mut Vec<u8>, v: &str) {
    buf.push(VALUE);
    put_len(buf, v.len());
    buf.extend_from_slice(v.as_bytes());
}

fn put_text(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => put_value(buf, v),
        None => buf.push(EMPTY),
    }
}

/// The packed items of `buf`, in order: each tag with its value, if it has one.
fn items(buf: &[u8]) -> impl Iterator<Item = (u8, &str)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let tag = *buf.get(at)?;
        at += 1;
        if tag != VALUE {
            return Some((tag, ""));
        }
        let len = get_len(buf, &mut at);
        let value = buf.get(at..at + len)?;
        at += len;
        Some((tag, std::str::from_utf8(value).unwrap_or_default()))
    })
}

fn key_hash(key: usize, value: &str) -> u64 {
    // SipHash with fixed keys: the same value hashes the same for the whole process.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// A stored user in the sieve: the packed mapped fields, then its mobile and work numbers'
/// E.164 forms.
struct Entry(Box<[u8]>);

/// Stored users by external ID, and the rows recognised so far.
pub struct Sieve {
    config: ConfigId,
    /// The mapped standard fields but the external ID (the entry's key), in mapping order.
    fields: Vec<FieldKey>,
    custom: Vec<String>,
    users: HashMap<Box<str>, Entry>,
    unchanged: UnchangedRows,
    /// Hashes of the keys of the rows taken, for the duplicate check.
    keys: Vec<u64>,
    buf: Vec<u8>,
}

impl Sieve {
    /// A sieve for rows read with `mapping` by configuration `config`. `None` when the mapping
    /// computes fields (their values are not cells of the row).
    pub fn new(mapping: &Mapping, config: &ConfigId) -> Option<Sieve> {
        if mapping.computed().next().is_some() {
            return None;
        }
        Some(Sieve {
            config: config.clone(),
            fields: mapping
                .fields()
                .map(|(f, _)| f)
                .filter(|f| *f != FieldKey::ExternalId)
                .collect(),
            custom: mapping.custom_fields().map(|(n, _)| n.to_owned()).collect(),
            users: HashMap::new(),
            unchanged: UnchangedRows::default(),
            keys: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Whether stored users need their custom fields read.
    pub fn reads_custom_fields(&self) -> bool {
        !self.custom.is_empty()
    }

    /// Room for `users` stored users and as many rows taken: growing these lists by doubling
    /// would briefly hold both copies, the largest part of a run's memory.
    pub fn reserve(&mut self, users: usize) {
        let keys = 2 + [FieldKey::EmployeeId, FieldKey::Email, FieldKey::PhoneMobile]
            .iter()
            .filter(|f| self.fields.contains(f))
            .count();
        self.users.reserve(users);
        self.unchanged.reserve(users);
        self.keys.reserve(users.saturating_mul(keys));
    }

    /// Add a stored user (others than the configuration's own are ignored).
    pub fn add(&mut self, u: &StoredView<'_>) {
        if u.managed_by != Some(self.config.as_str()) {
            return;
        }
        let international = |v: Option<&str>| v.is_none_or(|v| v.starts_with('+'));
        let mut buf = Vec::with_capacity(128);
        for field in &self.fields {
            match field {
                FieldKey::ExternalId => {}
                FieldKey::Username => put_value(&mut buf, u.username),
                FieldKey::EmployeeId => put_text(&mut buf, u.employee_id),
                FieldKey::FirstName => put_text(&mut buf, u.first_name),
                FieldKey::SecondName => put_text(&mut buf, u.second_name),
                FieldKey::Email => match (u.email_from_source, u.email) {
                    (false, _) => buf.push(KEPT),
                    (true, Some(email)) => put_value(&mut buf, email),
                    (true, None) => buf.push(NEVER),
                },
                FieldKey::PhoneMobile => match (u.phone_mobile_from_source, u.phone_mobile) {
                    (false, _) => buf.push(KEPT),
                    (true, Some(phone)) if international(Some(phone)) => put_value(&mut buf, phone),
                    (true, _) => buf.push(NEVER),
                },
                FieldKey::PhoneWork if international(u.phone_work) => {
                    put_text(&mut buf, u.phone_work)
                }
                FieldKey::PhoneWork => buf.push(NEVER),
                FieldKey::Manager => match u.manager {
                    StoredManager::None => buf.push(EMPTY),
                    StoredManager::External(ext) => put_value(&mut buf, ext),
                    StoredManager::Unnamed => buf.push(NEVER),
                },
                FieldKey::JobTitle => put_text(&mut buf, u.job_title),
                FieldKey::Location => put_text(&mut buf, u.location),
                FieldKey::Department => put_text(&mut buf, u.department),
                FieldKey::Company => put_text(&mut buf, u.company),
                FieldKey::Description => put_text(&mut buf, u.description),
                FieldKey::Active => buf.push(if u.active { TRUE } else { FALSE }),
                FieldKey::StartEmploymentDate => put_text(&mut buf, u.start_employment_date),
                FieldKey::EndEmploymentDate => put_text(&mut buf, u.end_employment_date),
            }
        }
        for name in &self.custom {
            put_text(&mut buf, u.custom_fields.get(name).map(String::as_str));
        }
        put_text(&mut buf, u.phone_mobile_e164);
        put_text(&mut buf, u.phone_work_e164);
        self.users
            .insert(u.external_id.into(), Entry(buf.into_boxed_slice()));
    }

    /// Offer one row: its mapped cells as read (`fields` in mapping order, the external ID
    /// included; `custom` in mapping order). Returns whether the row was taken as Unchanged;
    /// otherwise the caller reads it as a record, and `phones` has learnt the stored numbers
    /// the row repeats.
    pub fn take(
        &mut self,
        row: u64,
        fields: &[(FieldKey, &str)],
        custom: &[&str],
        phones: &mut PhoneCache,
    ) -> bool {
        let Some(external_id) = fields
            .iter()
            .find(|(f, _)| *f == FieldKey::ExternalId)
            .map(|(_, v)| clean(v))
        else {
            return false;
        };
        let Some(entry) = self.users.get(external_id) else {
            return false;
        };
        let cell = |key: FieldKey| {
            fields
                .iter()
                .find(|(f, _)| *f == key)
                .map_or("", |(_, v)| clean(v))
        };
        let buf = &mut self.buf;
        buf.clear();
        let mut given = fields.iter().filter(|(f, _)| *f != FieldKey::ExternalId);
        for field in &self.fields {
            // The cells come in the mapping's order, as the stored values were packed.
            let value = match given.next() {
                Some((f, v)) if f == field => clean(v),
                _ => return false,
            };
            match field {
                FieldKey::ExternalId => {}
                FieldKey::Active => buf.push(match parse_bool(value) {
                    Ok(true) => TRUE,
                    Ok(false) => FALSE,
                    Err(_) => BAD,
                }),
                FieldKey::Email | FieldKey::PhoneMobile if value.is_empty() => buf.push(KEPT),
                FieldKey::Username if value.is_empty() => buf.push(BAD),
                _ if value.is_empty() => buf.push(EMPTY),
                _ => put_value(buf, value),
            }
        }
        for value in custom {
            let value = clean(value);
            if value.is_empty() {
                buf.push(EMPTY);
            } else {
                put_value(buf, value);
            }
        }
        let stored = &entry.0;
        if !stored.starts_with(buf) || items(&stored[buf.len()..]).count() != 2 {
            // Not unchanged: the numbers the row repeats need no libphonenumber.
            let mut tail = items(stored).skip(self.fields.len() + self.custom.len());
            let e164 = [tail.next(), tail.next()];
            for (i, (field, (tag, value))) in self.fields.iter().zip(items(stored)).enumerate() {
                let slot = match field {
                    FieldKey::PhoneMobile => 0,
                    FieldKey::PhoneWork => 1,
                    _ => continue,
                };
                if let (VALUE, Some((VALUE, e164))) = (tag, e164[slot])
                    && cell(self.fields[i]) == value
                {
                    phones.know(value, e164);
                }
            }
            return false;
        }
        let mobile_e164 = items(&stored[buf.len()..]).next().map(|(_, v)| v);
        let username = cell(FieldKey::Username);
        self.keys.push(key_hash(0, external_id));
        self.keys.push(key_hash(1, &username.to_lowercase()));
        for (key, field) in [
            (2, FieldKey::EmployeeId),
            (3, FieldKey::Email),
            (4, FieldKey::PhoneMobile),
        ] {
            let value = cell(field);
            if !value.is_empty() {
                match key {
                    2 => self.keys.push(key_hash(2, value)),
                    3 => self.keys.push(key_hash(3, &value.to_ascii_lowercase())),
                    _ => self.keys.push(key_hash(4, mobile_e164.unwrap_or_default())),
                }
            }
        }
        // Each stored user is taken once: a second row with the same external ID is read as
        // a record, and the duplicate check finds the pair.
        if self.users.remove(external_id).is_some() {
            self.unchanged.push(row, external_id, username);
        }
        true
    }

    /// The rows taken, once the whole file is read.
    pub fn finish(self) -> Sifted {
        let mut keys = self.keys;
        keys.sort_unstable();
        Sifted {
            unchanged: self.unchanged,
            keys,
        }
    }
}

/// The rows a [`Sieve`] took from a whole file.
#[derive(Debug, Default)]
pub struct Sifted {
    pub unchanged: UnchangedRows,
    /// Sorted hashes of their keys.
    keys: Vec<u64>,
}

impl Sifted {
    /// Whether a row of `rest` (the file's other rows) shares a key with a row taken: the
    /// planner would fail both as duplicates. Hash collisions only make this say yes more often.
    pub fn conflicts_with(&self, rest: &[BatchItem]) -> bool {
        if self.unchanged.is_empty() {
            return false;
        }
        let mut found = false;
        for item in rest {
            plan::item_keys(item, |key, value| {
                found |= self.keys.binary_search(&key_hash(key, value)).is_ok();
            });
            if found {
                return true;
            }
        }
        false
    }

    /// Whether the plan of the other rows leaves the taken rows' outcome as it is: a taken
    /// row's manager is named by external ID, which no longer names that manager when the plan
    /// gives a stored user another external ID; and a reporting loop's message depends on
    /// where the planner entered it, which the taken rows can change.
    pub fn holds_for(&self, plan: &Plan) -> bool {
        if self.unchanged.is_empty() {
            return true;
        }
        plan.records.iter().all(|r| {
            let renames = r.action != Action::Created
                && r.changed_fields
                    .iter()
                    .any(|f| f == FieldKey::ExternalId.key());
            let loops = r
                .warnings
                .iter()
                .any(|w| w.error_type == ErrorType::ManagerCycle);
            !renames && !loops
        })
    }
}

#[cfg(test)]
mod tests;
