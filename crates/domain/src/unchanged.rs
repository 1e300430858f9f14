//! Recognising file rows that leave their user exactly as stored, before they become records.
//!
//! Most rows of a daily HR file repeat what the last run stored. Planning them in full costs a
//! typed [`Incoming`](crate::record::Incoming), a [`StoredUser`](crate::StoredUser) and a
//! planned record each, and libphonenumber for every number. A [`Sieve`] holds, per user the
//! configuration manages, a digest of the stored values of the mapped fields packed in one
//! form (and the stored phone numbers); a row whose cleaned cells pack to the same digest is
//! Unchanged and is kept as an [`UnchangedRow`] only. Every other row goes through the
//! planner as before.
//!
//! Why equal cells mean the planner's Unchanged: the stored values were validated when this
//! configuration wrote them, and each parser returns its (cleaned) input unchanged, so the row
//! would validate to exactly the stored values; the user is managed by this configuration, so
//! step 1 of matching links it and nothing claims it. Phone numbers are compared only in
//! international form, whose reading does not depend on the configuration's region (the same
//! rule as [`PhoneCache::know`]). What depends on the rest of the batch is checked afterwards
//! ([`Sifted::conflicts_with`], [`Sifted::holds_for`]); when a check fails the caller plans
//! the whole file as before.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};

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
            ..LogRow::new(Action::Unchanged)
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
    pub middle_name: Option<&'a str>,
    pub display_name: Option<&'a str>,
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
/// A stored number whose E.164 form is the number as sent.
const SAME: u8 = b'S';

/// Bytes of a packed form's digest.
const DIGEST: usize = 16;

/// What a sieve keeps of a stored user's packed form: the first 128 bits of its SHA-256,
/// salted per sieve. A row is Unchanged when its packed cells have the same digest; two
/// different forms sharing one would take 2^64 attempts to find, against a salt unknown to
/// whoever writes the file. Kept whole, the forms were three quarters of a large run's memory.
fn digest(salt: &[u8; 16], packed: &[u8]) -> [u8; DIGEST] {
    use sha2::Digest;
    let hash = sha2::Sha256::new()
        .chain_update(salt)
        .chain_update(packed)
        .finalize();
    let mut out = [0; DIGEST];
    out.copy_from_slice(&hash[..DIGEST]);
    out
}

/// A stored number a row may repeat: as sent, then its E.164 form (or `SAME`).
fn put_phone(buf: &mut Vec<u8>, value: &str, e164: &str) {
    put_value(buf, value);
    if e164 == value {
        buf.push(SAME);
    } else {
        put_value(buf, e164);
    }
}

/// The stored mobile and work numbers after an entry's digest (see [`Sieve::add`]).
fn stored_phones(rest: &[u8]) -> [Option<(&str, &str)>; 2] {
    let mut items = items(rest);
    let mut phone = || match items.next() {
        Some((VALUE, value)) => match items.next() {
            Some((SAME, _)) => Some((value, value)),
            Some((VALUE, e164)) => Some((value, e164)),
            _ => None,
        },
        _ => None,
    };
    let mobile = phone();
    [mobile, phone()]
}

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

/// The hasher of a sieve's tables and key fingerprints: foldhash, seeded at random per sieve
/// (a file cannot be crafted to collide), several times faster than SipHash on short keys.
type Hashing = foldhash::fast::RandomState;

fn key_hash(hashing: &Hashing, key: usize, value: &str) -> u64 {
    let mut h = hashing.build_hasher();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// Where a stored user is in [`Stored::blocks`]: its external ID, then its packed fields.
#[derive(Clone, Copy)]
struct Slot {
    block: u32,
    offset: u32,
    key_len: u32,
    len: u32,
}

/// The size of a block of [`Stored`]: large enough that a million users take a few dozen,
/// small enough that the last one's unused room does not matter.
const BLOCK: usize = 4 << 20;

/// The stored users, packed in blocks and found by external ID through a table of their
/// positions: a million users in a few hundred allocations instead of two million (filling
/// them was mostly `malloc`, and the per-allocation overhead a fifth of their memory). Fixed
/// blocks rather than one growing buffer: doubling a buffer of a few hundred megabytes would
/// hold both copies for a moment.
struct Stored {
    blocks: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    /// Indices into `slots`, by the hash of the external ID.
    table: hashbrown::HashTable<u32>,
    /// Whether users are indexed as they are added: not in a part filled for
    /// [`Stored::absorb`], which indexes them into the absorbing table.
    indexed: bool,
}

impl Stored {
    fn new(indexed: bool) -> Stored {
        Stored {
            blocks: Vec::new(),
            slots: Vec::new(),
            table: hashbrown::HashTable::new(),
            indexed,
        }
    }

    fn bytes(blocks: &[Vec<u8>], slot: Slot) -> &[u8] {
        let from = slot.offset as usize;
        &blocks[slot.block as usize][from..from + slot.key_len as usize + slot.len as usize]
    }

    fn key(blocks: &[Vec<u8>], slot: Slot) -> &[u8] {
        &Self::bytes(blocks, slot)[..slot.key_len as usize]
    }

    fn entry(&self, slot: Slot) -> &[u8] {
        &Self::bytes(&self.blocks, slot)[slot.key_len as usize..]
    }

    /// Add a user packed as its key (`key_len` bytes) and then its entry.
    fn push(&mut self, hashing: &Hashing, packed: &[u8], key_len: usize) {
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= packed.len());
        if !fits {
            self.blocks
                .push(Vec::with_capacity(BLOCK.max(packed.len())));
        }
        let block = self.blocks.len() - 1;
        let (Ok(block), Ok(offset), Ok(key_len), Ok(len), Ok(index)) = (
            u32::try_from(block),
            u32::try_from(self.blocks[block].len()),
            u32::try_from(key_len),
            u32::try_from(packed.len() - key_len),
            u32::try_from(self.slots.len()),
        ) else {
            // Beyond four billion users: the rest are planned as any other row.
            return;
        };
        self.blocks[block as usize].extend_from_slice(packed);
        let slot = Slot {
            block,
            offset,
            key_len,
            len,
        };
        if self.indexed {
            self.index(hashing, slot, index);
        } else {
            self.slots.push(slot);
        }
    }

    /// Make `slot` (of a user in `blocks`) findable as `slots[index]`.
    fn index(&mut self, hashing: &Hashing, slot: Slot, index: u32) {
        self.slots.push(slot);
        let (blocks, slots) = (&self.blocks, &self.slots);
        // External IDs are unique per organisation (storage's index): no need to look first.
        self.table
            .insert_unique(hashing.hash_one(Self::key(blocks, slot)), index, |&i| {
                hashing.hash_one(Self::key(blocks, slots[i as usize]))
            });
    }

    /// Take over the users of `other` (their blocks move, nothing is copied).
    fn absorb(&mut self, hashing: &Hashing, other: Stored) {
        let Ok(offset) = u32::try_from(self.blocks.len()) else {
            return;
        };
        self.blocks.extend(other.blocks);
        for slot in other.slots {
            let Ok(index) = u32::try_from(self.slots.len()) else {
                return;
            };
            let slot = Slot {
                block: slot.block + offset,
                ..slot
            };
            self.index(hashing, slot, index);
        }
    }

    fn find(&self, hashing: &Hashing, key: &str) -> Option<Slot> {
        let key = key.as_bytes();
        self.table
            .find(hashing.hash_one(key), |&i| {
                Self::key(&self.blocks, self.slots[i as usize]) == key
            })
            .map(|&i| self.slots[i as usize])
    }

    /// Forget `key` (each stored user is taken once).
    fn remove(&mut self, hashing: &Hashing, key: &str) {
        let key = key.as_bytes();
        let (blocks, slots) = (&self.blocks, &self.slots);
        let same = |&i: &u32| Self::key(blocks, slots[i as usize]) == key;
        if let Ok(found) = self.table.find_entry(hashing.hash_one(key), same) {
            found.remove();
        }
    }
}

/// Stored users by external ID, and the rows recognised so far.
pub struct Sieve {
    config: ConfigId,
    /// The mapped standard fields but the external ID (the entry's key), in mapping order.
    fields: Vec<FieldKey>,
    custom: Vec<String>,
    /// Per user: the digest of its packed mapped fields, then the numbers a row may repeat.
    users: Stored,
    hashing: Hashing,
    salt: [u8; 16],
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
            users: Stored::new(true),
            salt: {
                let hashing = Hashing::default();
                let mut salt = [0; 16];
                salt[..8].copy_from_slice(&hashing.hash_one(0u64).to_le_bytes());
                salt[8..].copy_from_slice(&hashing.hash_one(1u64).to_le_bytes());
                salt
            },
            hashing: Hashing::default(),
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
        self.users.slots.reserve(users);
        self.users.table.reserve(users, |_| 0);
        self.unchanged.reserve(users);
        self.keys.reserve(users.saturating_mul(keys));
    }

    /// An empty sieve of the same layout, with room for half the users this one has room for
    /// ([`Sieve::reserve`]), to be filled on another thread and given to [`Sieve::absorb`]. It
    /// finds no user itself: its users are indexed once, by the sieve that absorbs them.
    pub fn part(&self) -> Sieve {
        let mut part = Sieve {
            config: self.config.clone(),
            fields: self.fields.clone(),
            custom: self.custom.clone(),
            users: Stored::new(false),
            hashing: self.hashing.clone(),
            salt: self.salt,
            unchanged: UnchangedRows::default(),
            keys: Vec::new(),
            buf: Vec::new(),
        };
        part.users
            .slots
            .reserve(self.users.slots.capacity() / 2 + 1);
        part
    }

    /// Take over the stored users of `part` (see [`Sieve::part`]).
    pub fn absorb(&mut self, part: Sieve) {
        self.users.absorb(&self.hashing, part.users);
    }

    /// Add a stored user (others than the configuration's own are ignored).
    pub fn add(&mut self, u: &StoredView<'_>) {
        if u.managed_by != Some(self.config.as_str()) {
            return;
        }
        let international = |v: Option<&str>| v.is_none_or(|v| v.starts_with('+'));
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(u.external_id.as_bytes());
        for field in &self.fields {
            match field {
                FieldKey::ExternalId => {}
                FieldKey::Username => put_value(buf, u.username),
                FieldKey::EmployeeId => put_text(buf, u.employee_id),
                FieldKey::FirstName => put_text(buf, u.first_name),
                FieldKey::SecondName => put_text(buf, u.second_name),
                FieldKey::MiddleName => put_text(buf, u.middle_name),
                FieldKey::DisplayName => put_text(buf, u.display_name),
                FieldKey::Email => match (u.email_from_source, u.email) {
                    (false, _) => buf.push(KEPT),
                    (true, Some(email)) => put_value(buf, email),
                    (true, None) => buf.push(NEVER),
                },
                FieldKey::PhoneMobile => match (u.phone_mobile_from_source, u.phone_mobile) {
                    (false, _) => buf.push(KEPT),
                    (true, Some(phone)) if international(Some(phone)) => put_value(buf, phone),
                    (true, _) => buf.push(NEVER),
                },
                FieldKey::PhoneWork if international(u.phone_work) => put_text(buf, u.phone_work),
                FieldKey::PhoneWork => buf.push(NEVER),
                FieldKey::Manager => match u.manager {
                    StoredManager::None => buf.push(EMPTY),
                    StoredManager::External(ext) => put_value(buf, ext),
                    StoredManager::Unnamed => buf.push(NEVER),
                },
                FieldKey::JobTitle => put_text(buf, u.job_title),
                FieldKey::Location => put_text(buf, u.location),
                FieldKey::Department => put_text(buf, u.department),
                FieldKey::Company => put_text(buf, u.company),
                FieldKey::Description => put_text(buf, u.description),
                FieldKey::Active => buf.push(if u.active { TRUE } else { FALSE }),
                FieldKey::StartEmploymentDate => put_text(buf, u.start_employment_date),
                FieldKey::EndEmploymentDate => put_text(buf, u.end_employment_date),
            }
        }
        for name in &self.custom {
            put_text(buf, u.custom_fields.get(name).map(String::as_str));
        }
        // The entry: the key, the packed form's digest, and the numbers a row may repeat.
        let key_len = u.external_id.len();
        let sum = digest(&self.salt, &buf[key_len..]);
        buf.truncate(key_len);
        buf.extend_from_slice(&sum);
        let mobile = (self.fields.contains(&FieldKey::PhoneMobile) && u.phone_mobile_from_source)
            .then_some((u.phone_mobile, u.phone_mobile_e164));
        let work = self
            .fields
            .contains(&FieldKey::PhoneWork)
            .then_some((u.phone_work, u.phone_work_e164));
        for phone in [mobile, work] {
            match phone {
                Some((Some(value), Some(e164))) if international(Some(value)) => {
                    put_phone(buf, value, e164)
                }
                _ => buf.push(EMPTY),
            }
        }
        self.users.push(&self.hashing, &self.buf, key_len);
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
        let Some(slot) = self.users.find(&self.hashing, external_id) else {
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
        let stored = self.users.entry(slot);
        let (sum, rest) = stored.split_at(DIGEST.min(stored.len()));
        let numbers = stored_phones(rest);
        if sum != digest(&self.salt, buf) {
            // Not unchanged: the numbers the row repeats need no libphonenumber.
            for (field, number) in [FieldKey::PhoneMobile, FieldKey::PhoneWork]
                .into_iter()
                .zip(numbers)
            {
                if let Some((value, e164)) = number
                    && cell(field) == value
                {
                    phones.know(value, e164);
                }
            }
            return false;
        }
        let mobile_e164 = numbers[0].map(|(_, e164)| e164);
        let username = cell(FieldKey::Username);
        let hashing = &self.hashing;
        self.keys.push(key_hash(hashing, 0, external_id));
        self.keys
            .push(key_hash(hashing, 1, &username.to_lowercase()));
        for (key, field) in [
            (2, FieldKey::EmployeeId),
            (3, FieldKey::Email),
            (4, FieldKey::PhoneMobile),
        ] {
            let value = cell(field);
            if !value.is_empty() {
                match key {
                    2 => self.keys.push(key_hash(hashing, 2, value)),
                    3 => self
                        .keys
                        .push(key_hash(hashing, 3, &value.to_ascii_lowercase())),
                    _ => self
                        .keys
                        .push(key_hash(hashing, 4, mobile_e164.unwrap_or_default())),
                }
            }
        }
        // Each stored user is taken once: a second row with the same external ID is read as
        // a record, and the duplicate check finds the pair.
        self.users.remove(&self.hashing, external_id);
        self.unchanged.push(row, external_id, username);
        true
    }

    /// The rows taken, once the whole file is read.
    pub fn finish(self) -> Sifted {
        let mut keys = self.keys;
        keys.sort_unstable();
        Sifted {
            unchanged: self.unchanged,
            keys,
            hashing: self.hashing,
        }
    }
}

/// The rows a [`Sieve`] took from a whole file.
#[derive(Debug, Default)]
pub struct Sifted {
    pub unchanged: UnchangedRows,
    /// Sorted hashes of their keys.
    keys: Vec<u64>,
    hashing: Hashing,
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
                found |= self
                    .keys
                    .binary_search(&key_hash(&self.hashing, key, value))
                    .is_ok();
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
