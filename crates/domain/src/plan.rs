//! The matching / conflict / plan engine of SPEC §3.
//!
//! [`plan`] takes a batch of records from one source configuration and the stored users of the
//! organisation that the batch's keys can reach, and decides for every record what happens:
//! created, claimed, updated, deactivated, reactivated, unchanged, skipped or failed. It is
//! deterministic: the same batch and context give the same plan. Storage then applies the
//! writes of the plan in one transaction.
//!
//! Uniqueness is decided conservatively: a key held by a stored user blocks another record
//! even when that stored user gives the key up later in the same batch. Applying the writes
//! in any order then never breaks a unique index, and the swap simply succeeds on the next run.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::field::FieldKey;
use crate::ids::{ConfigId, UserId};
use crate::record::{BatchItem, Incoming, Link, ManagerRef};
use crate::run::{Action, Counts, ErrorType, Issue, LogRow};
use crate::unchanged::UnchangedRows;
use crate::user::{Profile, StoredUser};
use crate::values::{ExternalId, UserName};

/// The stored users a batch can touch, as storage loaded them.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Users of the organisation reachable by the batch's keys (external id, username,
    /// employee id, email, mobile, addressed ids), plus their managers' chains.
    pub users: Vec<StoredUser>,
    /// Normalised emails of the batch held by users of *other* organisations.
    pub foreign_emails: HashSet<String>,
    /// E.164 mobile numbers of the batch held by users of other organisations.
    pub foreign_phones: HashSet<String>,
}

/// The keys of a batch that storage looks up to build the [`Context`]: never the whole
/// organisation, only what these keys can reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchKeys {
    pub external_ids: Vec<String>,
    /// Normalised (lower-case) usernames.
    pub usernames: Vec<String>,
    pub employee_ids: Vec<String>,
    /// Normalised emails.
    pub emails: Vec<String>,
    /// E.164 mobile numbers.
    pub phones: Vec<String>,
    /// Addressed user ids and manager user ids.
    pub user_ids: Vec<String>,
}

impl BatchKeys {
    pub fn of(batch: &[BatchItem]) -> BatchKeys {
        let mut keys = BatchKeys::default();
        for record in batch.iter().filter_map(|item| item.as_ref().ok()) {
            let p = &record.profile;
            let push = |list: &mut Vec<String>, v: Option<String>| {
                if let Some(v) = v {
                    list.push(v);
                }
            };
            push(&mut keys.external_ids, Key::ExternalId.normalized(p));
            push(&mut keys.usernames, Key::Username.normalized(p));
            push(&mut keys.employee_ids, Key::EmployeeId.normalized(p));
            push(&mut keys.emails, Key::Email.normalized(p));
            push(&mut keys.phones, Key::PhoneMobile.normalized(p));
            if let Link::ExternalId(ext) = &record.link {
                keys.external_ids.push(ext.as_str().to_owned());
            }
            if let Link::User(id) | Link::AdminEdit(id) = &record.link {
                keys.user_ids.push(id.as_str().to_owned());
            }
            if let Link::Username(name) = &record.link {
                keys.usernames.push(name.normalized());
            }
            match &record.manager {
                Some(ManagerRef::ExternalId(ext)) => {
                    keys.external_ids.push(ext.as_str().to_owned())
                }
                Some(ManagerRef::User(id)) => keys.user_ids.push(id.as_str().to_owned()),
                None => {}
            }
        }
        for list in [
            &mut keys.external_ids,
            &mut keys.usernames,
            &mut keys.employee_ids,
            &mut keys.emails,
            &mut keys.phones,
            &mut keys.user_ids,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        keys
    }
}

/// How the batch is to be planned.
#[derive(Clone, Debug)]
pub struct Options {
    /// The configuration the batch comes from; created and claimed users become managed by it.
    pub config: ConfigId,
    /// Whether an inactive record that matches no user creates a deactivated user (SCIM), or
    /// is skipped (files: a leaver the application never knew needs no account).
    pub create_inactive: bool,
}

/// A write the plan asks storage to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The user as it must be after the write (its `version` already incremented).
    pub user: StoredUser,
    /// `None` for a new user; otherwise the version the plan was based on, which storage
    /// checks so that a concurrent change is never overwritten.
    pub expected_version: Option<i64>,
}

/// The plan for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRecord {
    pub row: u64,
    pub external_id: String,
    pub username: String,
    pub action: Action,
    /// The user the record ended at, when it matched or created one.
    pub user_id: Option<UserId>,
    /// Why the record failed or was skipped.
    pub error: Option<Issue>,
    /// Warnings; the rest of the record applies.
    pub warnings: Vec<Issue>,
    /// Informational message (e.g. how a user was claimed).
    pub note: Option<String>,
    /// Fields whose value changes (field keys, and custom field names).
    pub changed_fields: Vec<Cow<'static, str>>,
    pub write: Option<Write>,
}

impl PlannedRecord {
    /// The log row of SPEC §6 for this record.
    pub fn log_row(&self) -> LogRow {
        let (error_types, message, additional_data) = match (&self.error, self.warnings.as_slice())
        {
            (Some(e), _) => (
                vec![e.error_type],
                e.message.clone(),
                e.additional_data.clone(),
            ),
            (None, []) => (
                Vec::new(),
                self.note.clone().unwrap_or_default(),
                String::new(),
            ),
            (None, warnings) => (
                warnings.iter().map(|w| w.error_type).collect(),
                warnings
                    .iter()
                    .map(|w| w.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                warnings
                    .iter()
                    .map(|w| w.additional_data.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        LogRow {
            row: Some(self.row),
            external_id: self.external_id.clone(),
            username: self.username.clone(),
            action: self.action,
            error_types,
            message,
            additional_data,
            changed_fields: self.changed_fields.join(", "),
        }
    }
}

/// The plan for a whole batch, in batch order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub records: Vec<PlannedRecord>,
    /// Rows that a [`crate::unchanged::Sieve`] recognised as leaving their user exactly as
    /// stored, kept compact (they never became records); counted in `counts`.
    pub unchanged: UnchangedRows,
    pub counts: Counts,
}

impl Plan {
    /// The log rows of SPEC §6 in the source's order: `records` and `unchanged` merged by row.
    pub fn log_rows(&self) -> impl Iterator<Item = LogRow> + '_ {
        let mut records = self.records.iter().peekable();
        let mut unchanged = self.unchanged.iter().peekable();
        std::iter::from_fn(move || match (records.peek(), unchanged.peek()) {
            (Some(r), Some(u)) if u.row < r.row => unchanged.next().map(|u| u.log_row()),
            (Some(_), _) => records.next().map(PlannedRecord::log_row),
            (None, _) => unchanged.next().map(|u| u.log_row()),
        })
    }

    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        self.records.iter().filter_map(|r| r.write.as_ref())
    }
}

/// The keys that identify a user and are unique per organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    ExternalId,
    Username,
    EmployeeId,
    Email,
    PhoneMobile,
}

impl Key {
    const ALL: [Key; 5] = [
        Key::ExternalId,
        Key::Username,
        Key::EmployeeId,
        Key::Email,
        Key::PhoneMobile,
    ];

    fn field(self) -> FieldKey {
        match self {
            Key::ExternalId => FieldKey::ExternalId,
            Key::Username => FieldKey::Username,
            Key::EmployeeId => FieldKey::EmployeeId,
            Key::Email => FieldKey::Email,
            Key::PhoneMobile => FieldKey::PhoneMobile,
        }
    }

    /// The compared form of this key on a profile.
    fn normalized(self, p: &Profile) -> Option<String> {
        match self {
            Key::ExternalId => p.external_id.as_ref().map(|v| v.as_str().to_owned()),
            Key::Username => p.username.as_ref().map(|v| v.normalized()),
            Key::EmployeeId => p.employee_id.as_ref().map(|v| v.as_str().to_owned()),
            Key::Email => p.email.as_ref().map(|v| v.normalized().to_owned()),
            Key::PhoneMobile => p.phone_mobile.as_ref().map(|v| v.e164().to_owned()),
        }
    }

    /// [`Key::normalized`], borrowed from the profile where the compared form is the stored
    /// one (everything but a username with capitals).
    fn compared(self, p: &Profile) -> Option<Cow<'_, str>> {
        match self {
            Key::ExternalId => p.external_id.as_ref().map(|v| Cow::Borrowed(v.as_str())),
            Key::Username => p.username.as_ref().map(|v| lower(v.as_str())),
            Key::EmployeeId => p.employee_id.as_ref().map(|v| Cow::Borrowed(v.as_str())),
            Key::Email => p.email.as_ref().map(|v| Cow::Borrowed(v.normalized())),
            Key::PhoneMobile => p.phone_mobile.as_ref().map(|v| Cow::Borrowed(v.e164())),
        }
    }

    /// The value as sent, for messages.
    fn shown(self, p: &Profile) -> String {
        match self {
            Key::ExternalId => p.external_id.as_ref().map(|v| v.as_str().to_owned()),
            Key::Username => p.username.as_ref().map(|v| v.as_str().to_owned()),
            Key::EmployeeId => p.employee_id.as_ref().map(|v| v.as_str().to_owned()),
            Key::Email => p.email.as_ref().map(|v| v.as_str().to_owned()),
            Key::PhoneMobile => p.phone_mobile.as_ref().map(|v| v.as_str().to_owned()),
        }
        .unwrap_or_default()
    }
}

/// A username's compared form ([`crate::values::UserName::normalized`]), borrowed when it is
/// already lower-case.
fn lower(value: &str) -> Cow<'_, str> {
    if value.is_ascii() && !value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.to_lowercase())
    }
}

/// Stored users indexed by every key (one map per [`Key`], in [`Key::ALL`] order), keys
/// borrowed from the users.
struct Index<'a> {
    users: &'a [StoredUser],
    by_id: HashMap<&'a str, usize>,
    by_key: [HashMap<Cow<'a, str>, usize>; 5],
    /// Users deleted through SCIM, by what their return is matched by (SPEC §3): they hold
    /// none of their values, so they are in no `by_key`.
    deleted: HashMap<(Key, Cow<'a, str>), usize>,
}

/// The keys a user deleted through SCIM is brought back by.
const RETURN_KEYS: [Key; 3] = [Key::ExternalId, Key::Username, Key::Email];

impl<'a> Index<'a> {
    fn new(users: &'a [StoredUser]) -> Index<'a> {
        let mut by_id = HashMap::with_capacity(users.len());
        let mut by_key: [HashMap<Cow<'a, str>, usize>; 5] =
            std::array::from_fn(|_| HashMap::with_capacity(users.len()));
        let mut deleted = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            by_id.insert(u.id.as_str(), i);
            if u.scim_deleted {
                for key in RETURN_KEYS {
                    if let Some(v) = key.compared(&u.profile) {
                        deleted.insert((key, v), i);
                    }
                }
                continue;
            }
            for key in Key::ALL {
                if let Some(v) = key.compared(&u.profile) {
                    by_key[key as usize].insert(v, i);
                }
            }
        }
        Index {
            users,
            by_id,
            by_key,
            deleted,
        }
    }

    fn holder(&self, key: Key, value: &str) -> Option<usize> {
        self.by_key[key as usize].get(value).copied()
    }

    /// The user `config` manages that was deleted through SCIM and that `record` names by
    /// external ID, username or email (in that order), if any. A different external ID on
    /// both sides is another person (the source's immutable link), whatever else matches.
    fn returning(&self, record: &Incoming, config: &ConfigId) -> Option<usize> {
        RETURN_KEYS.into_iter().find_map(|key| {
            let value = key.compared(&record.profile)?;
            let i = *self.deleted.get(&(key, value))?;
            let user = &self.users[i];
            let other_person = matches!(
                (&record.profile.external_id, &user.profile.external_id),
                (Some(a), Some(b)) if a != b
            );
            (user.managed_by.as_ref() == Some(config) && !other_person).then_some(i)
        })
    }
}

/// A record that passed matching and uniqueness, waiting for manager resolution.
struct Accepted {
    slot: usize,
    target: Option<usize>,
    planned: Planned,
    note: Option<String>,
    manager: Option<Option<ManagerRef>>,
}

/// The user an accepted record ends at (before its manager is resolved).
enum Planned {
    /// A new user, or a stored one that the record changes.
    User(Box<StoredUser>),
    /// The stored user `index.users[i]`, which the record leaves exactly as it is: not copied,
    /// so that a file of unchanged rows does not hold a second copy of every user.
    AsStored(usize),
}

impl Accepted {
    fn user<'x>(&'x self, index: &'x Index<'_>) -> &'x StoredUser {
        match &self.planned {
            Planned::User(user) => user,
            Planned::AsStored(i) => &index.users[*i],
        }
    }
}

fn describe(record: &Incoming) -> (String, String) {
    (
        record
            .profile
            .external_id
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        record
            .profile
            .username
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
    )
}

/// [`describe`] for a record matched to `user`: an admin's row, which names the user by
/// username alone, shows the user's external ID.
fn describe_linked(record: &Incoming, user: Option<&StoredUser>) -> (String, String) {
    let (mut external_id, username) = describe(record);
    if let (Link::Username(_), Some(user)) = (&record.link, user)
        && external_id.is_empty()
        && let Some(ext) = &user.profile.external_id
    {
        external_id = ext.as_str().to_owned();
    }
    (external_id, username)
}

fn failed(record: &Incoming, action: Action, issue: Issue) -> PlannedRecord {
    let (external_id, username) = describe(record);
    PlannedRecord {
        row: record.row,
        external_id,
        username,
        action,
        user_id: None,
        error: Some(issue),
        warnings: Vec::new(),
        note: None,
        changed_fields: Vec::new(),
        write: None,
    }
}

fn join_rows(rows: &[u64]) -> String {
    rows.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plan a batch. `new_id` supplies ids for created users.
pub fn plan(
    batch: &[BatchItem],
    ctx: &Context,
    options: &Options,
    new_id: &mut dyn FnMut() -> UserId,
) -> Plan {
    plan_records(batch, ctx, options, new_id, false).0
}

/// The plan of one chunk of a file that is planned and applied chunk by chunk (see
/// `rollcall_sync::initial`).
#[derive(Debug)]
pub struct ChunkPlan {
    pub plan: Plan,
    /// Records whose manager is neither in the chunk nor in the context (a later chunk may
    /// hold them): `plan.records[i]` leaves the manager as it was, and names `manager`.
    pub deferred: Vec<(usize, ExternalId)>,
    /// Whether the chunk's managers make a reporting loop: whole-file planning decides loops
    /// differently from chunk by chunk, so the caller plans the whole file instead.
    pub loops: bool,
}

/// [`plan`] for one chunk of a file planned chunk by chunk: a manager that neither the chunk
/// nor the context holds is not a warning yet but [`ChunkPlan::deferred`].
pub fn plan_chunk(
    batch: &[BatchItem],
    ctx: &Context,
    options: &Options,
    new_id: &mut dyn FnMut() -> UserId,
) -> ChunkPlan {
    let (plan, deferred) = plan_records(batch, ctx, options, new_id, true);
    let loops = plan.records.iter().any(|r| {
        r.warnings
            .iter()
            .any(|w| w.error_type == ErrorType::ManagerCycle)
    });
    ChunkPlan {
        plan,
        deferred,
        loops,
    }
}

/// The changed fields of a record once its manager changes too, in the planner's order.
pub fn with_manager_changed(changed: &[Cow<'static, str>]) -> Vec<Cow<'static, str>> {
    let manager = FieldKey::Manager.key();
    if changed.iter().any(|f| f == manager) {
        return changed.to_vec();
    }
    // Standard fields come in `FieldKey` order, custom fields after them.
    let rank = |f: &str| FieldKey::ALL.iter().position(|k| k.key() == f);
    let manager_rank = rank(manager);
    let at = changed
        .iter()
        .position(|f| rank(f).is_none_or(|r| Some(r) > manager_rank))
        .unwrap_or(changed.len());
    let mut out = changed.to_vec();
    out.insert(at, Cow::Borrowed(manager));
    out
}

/// The warning of a record whose manager matches no user.
pub fn manager_not_found(ext: &str) -> Issue {
    Issue::new(
        ErrorType::ManagerNotFound,
        format!(
            "Manager '{ext}' matches no user, so the manager was not changed: check the \
             manager's External ID or add the manager to the source"
        ),
        format!("manager={ext}"),
    )
}

fn plan_records(
    batch: &[BatchItem],
    ctx: &Context,
    options: &Options,
    new_id: &mut dyn FnMut() -> UserId,
    defer_unknown_managers: bool,
) -> (Plan, Vec<(usize, ExternalId)>) {
    let index = Index::new(&ctx.users);
    let mut slots: Vec<Option<PlannedRecord>> = vec![None; batch.len()];

    // Rejected rows and in-batch duplicates fail before any matching.
    let duplicates = find_duplicates(batch);
    let mut records: Vec<(usize, &Incoming)> = Vec::with_capacity(batch.len());
    for (slot, item) in batch.iter().enumerate() {
        match item {
            Err(rejected) => {
                let mut issues = rejected.issues.iter().cloned();
                let first = issues.next().unwrap_or_else(|| {
                    Issue::new(ErrorType::InvalidValue, "The row could not be read", "")
                });
                let rest: Vec<Issue> = issues.collect();
                let mut error = first;
                for more in &rest {
                    error.message.push(' ');
                    error.message.push_str(&more.message);
                    error.additional_data.push_str("; ");
                    error.additional_data.push_str(&more.additional_data);
                }
                slots[slot] = Some(PlannedRecord {
                    row: rejected.row,
                    external_id: rejected.external_id.clone(),
                    username: rejected.username.clone(),
                    action: Action::Failed,
                    user_id: None,
                    error: Some(error),
                    warnings: Vec::new(),
                    note: None,
                    changed_fields: Vec::new(),
                    write: None,
                });
            }
            Ok(record) => match duplicates.get(&slot) {
                Some(issue) => slots[slot] = Some(failed(record, Action::Failed, issue.clone())),
                None => records.push((slot, record)),
            },
        }
    }

    let mut taken: HashMap<usize, u64> = HashMap::new();
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut accepted_records: Vec<&Incoming> = Vec::new();
    for (slot, record) in records {
        match match_record(record, &index, ctx, options, &mut taken, new_id) {
            Ok(Matched::Write(a)) => {
                accepted.push(Accepted { slot, ..*a });
                accepted_records.push(record);
            }
            Ok(Matched::Skipped { issue, user }) => {
                let mut skipped = failed(record, Action::Skipped, issue);
                (skipped.external_id, skipped.username) =
                    describe_linked(record, user.map(|i| &index.users[i]));
                slots[slot] = Some(skipped);
            }
            Ok(Matched::Ignore(message)) => {
                let (external_id, username) = describe(record);
                slots[slot] = Some(PlannedRecord {
                    row: record.row,
                    external_id,
                    username,
                    action: Action::Ignored,
                    user_id: None,
                    error: None,
                    warnings: Vec::new(),
                    note: Some(message),
                    changed_fields: Vec::new(),
                    write: None,
                });
            }
            Err(issue) => slots[slot] = Some(failed(record, Action::Failed, issue)),
        }
    }

    let (warnings, deferred) = resolve_managers(&mut accepted, &index, defer_unknown_managers);
    let deferred: Vec<(usize, ExternalId)> = deferred
        .into_iter()
        .map(|(k, ext)| (accepted[k].slot, ext))
        .collect();

    for ((a, warns), record) in accepted.into_iter().zip(warnings).zip(accepted_records) {
        let base = a.target.map(|i| &index.users[i]);
        let (external_id, username) = describe_linked(record, base);
        let user = match a.planned {
            Planned::User(user) => *user,
            // Exactly the stored user: unchanged, nothing to write.
            Planned::AsStored(i) => {
                slots[a.slot] = Some(PlannedRecord {
                    row: record.row,
                    external_id,
                    username,
                    action: Action::Unchanged,
                    user_id: Some(index.users[i].id.clone()),
                    error: None,
                    warnings: warns,
                    note: a.note,
                    changed_fields: Vec::new(),
                    write: None,
                });
                continue;
            }
        };
        let a_user = &user;
        let changed = changed_fields(base, a_user);
        let action = match base {
            None => Action::Created,
            Some(b) if b.active && !a_user.active => Action::Deactivated,
            // A SCIM DELETE of an inactive user still hides it.
            Some(b) if !b.scim_deleted && a_user.scim_deleted => Action::Deactivated,
            Some(b) if !b.active && a_user.active => Action::Reactivated,
            Some(b)
                if changed.is_empty()
                    && b.profile.contact_meta == a_user.profile.contact_meta
                    && b.scim_deleted == a_user.scim_deleted
                    && b.managed_by == a_user.managed_by
                    && b.email_from_source == a_user.email_from_source
                    && b.phone_mobile_from_source == a_user.phone_mobile_from_source =>
            {
                Action::Unchanged
            }
            Some(_) => Action::Updated,
        };
        let user_id = Some(user.id.clone());
        let write = (action != Action::Unchanged).then(|| {
            let mut user = user;
            user.version = base.map_or(1, |b| b.version + 1);
            Write {
                user,
                expected_version: base.map(|b| b.version),
            }
        });
        slots[a.slot] = Some(PlannedRecord {
            row: record.row,
            external_id,
            username,
            action,
            user_id,
            error: None,
            warnings: warns,
            note: a.note,
            changed_fields: changed,
            write,
        });
    }

    let records: Vec<PlannedRecord> = slots.into_iter().flatten().collect();
    let mut counts = Counts::default();
    for r in &records {
        counts.add(r.action, !r.warnings.is_empty());
    }
    (
        Plan {
            records,
            unchanged: UnchangedRows::default(),
            counts,
        },
        deferred,
    )
}

/// Each key of a batch item in the form [`find_duplicates`] compares, with its position in
/// `Key::ALL` (0 external ID, 1 username, 2 employee ID, 3 email, 4 mobile).
pub fn item_keys(item: &BatchItem, mut each: impl FnMut(usize, &str)) {
    match item {
        Ok(record) => {
            for key in Key::ALL {
                if let Some(v) = key.compared(&record.profile) {
                    each(key as usize, &v);
                }
            }
        }
        Err(rejected) => {
            let external_id = crate::values::clean(&rejected.external_id);
            if !external_id.is_empty() {
                each(Key::ExternalId as usize, external_id);
            }
            let username = crate::values::clean(&rejected.username);
            if !username.is_empty() {
                each(Key::Username as usize, &username.to_lowercase());
            }
        }
    }
}

/// Rows of the batch that share a key with another row: every one of them fails.
fn find_duplicates<'b>(batch: &'b [BatchItem]) -> HashMap<usize, Issue> {
    // The first row of each key value, and the groups of rows that repeat one (the first row
    // first, then the others in batch order).
    let mut first: [HashMap<Cow<'b, str>, usize>; 5] =
        std::array::from_fn(|_| HashMap::with_capacity(batch.len()));
    let mut groups: HashMap<(Key, usize), Vec<usize>> = HashMap::new();
    let mut note =
        |key: Key, value: Cow<'b, str>, slot: usize| match first[key as usize].entry(value) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(slot);
            }
            std::collections::hash_map::Entry::Occupied(e) => groups
                .entry((key, *e.get()))
                .or_insert_with(|| vec![*e.get()])
                .push(slot),
        };
    for (slot, item) in batch.iter().enumerate() {
        match item {
            Ok(record) => {
                for key in Key::ALL {
                    if let Some(v) = key.compared(&record.profile) {
                        note(key, v, slot);
                    }
                }
            }
            // A rejected row still names a person: its twin must not sync as if it were
            // alone in the file (it fails, and the file's author picks the right row).
            Err(rejected) => {
                let external_id = crate::values::clean(&rejected.external_id);
                if !external_id.is_empty() {
                    note(Key::ExternalId, Cow::Borrowed(external_id), slot);
                }
                let username = crate::values::clean(&rejected.username);
                if !username.is_empty() {
                    note(Key::Username, Cow::Owned(username.to_lowercase()), slot);
                }
            }
        }
    }
    drop(first);
    let mut found: HashMap<usize, Vec<(Key, String, Vec<u64>)>> = HashMap::new();
    for ((key, _), slots) in groups {
        let rows: Vec<u64> = slots
            .iter()
            .map(|s| match &batch[*s] {
                Ok(record) => record.row,
                Err(rejected) => rejected.row,
            })
            .collect();
        for slot in &slots {
            let shown = match &batch[*slot] {
                Ok(record) => key.shown(&record.profile),
                Err(rejected) if key == Key::ExternalId => rejected.external_id.clone(),
                Err(rejected) => rejected.username.clone(),
            };
            found
                .entry(*slot)
                .or_default()
                .push((key, shown, rows.clone()));
        }
    }
    found
        .into_iter()
        .map(|(slot, mut dups)| {
            dups.sort();
            let message = dups
                .iter()
                .map(|(key, _, rows)| {
                    format!(
                        "Duplicate {} in rows {}: conflicting users don't sync; keep one row per person.",
                        key.field().label(),
                        join_rows(rows)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            let data = dups
                .iter()
                .map(|(key, shown, _)| format!("{}={shown}", key.field().key()))
                .collect::<Vec<_>>()
                .join("; ");
            (slot, Issue::new(ErrorType::OrganisationConflict, message, data))
        })
        .collect()
}

enum Matched {
    Write(Box<Accepted>),
    /// Ignored, with a note ([`Action::Ignored`]).
    Ignore(String),
    /// Skipped for a reason the log names with its error type (an admin's row for a user that
    /// does not exist or that a source manages); `user` is the stored user it named.
    Skipped {
        issue: Issue,
        user: Option<usize>,
    },
}

/// Step 1 for a record that addresses a user by id (SCIM PUT, PATCH and DELETE, an admin's
/// edit): a user SCIM deleted is not found either.
fn link_by_id(id: &UserId, index: &Index<'_>) -> Result<usize, Issue> {
    match index.by_id.get(id.as_str()) {
        Some(i) if !index.users[*i].scim_deleted => Ok(*i),
        _ => Err(Issue::new(
            ErrorType::NotFound,
            format!("No user has the id {id}"),
            format!("id={id}"),
        )),
    }
}

/// An admin's edit may change only the fields an admin may edit on the user (SPEC §2: a user
/// a source manages is read-only but for the contact fields the source leaves empty).
fn check_editable(record: &Incoming, user: &StoredUser) -> Result<(), Issue> {
    let editable = crate::admin_edit::editable_fields(user);
    let refused: Vec<FieldKey> = record
        .provided
        .iter()
        .filter(|f| !editable.contains(f))
        .collect();
    if refused.is_empty() && record.custom_provided.is_empty() {
        return Ok(());
    }
    Err(Issue::new(
        ErrorType::ManagedByExternalSource,
        format!(
            "{} cannot be edited here: the user is managed by an external source; change it there",
            refused
                .iter()
                .map(|f| f.label())
                .chain(record.custom_provided.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        refused
            .iter()
            .map(|f| f.key())
            .chain(record.custom_provided.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("; "),
    )
    .about(refused))
}

/// Step 1 for an admin's Bulk Update row: the user holding the username, if it exists (SCIM
/// deleted users do not) and no source manages it; otherwise the row is skipped. Such a row
/// never creates or claims a user.
fn link_by_username(name: &UserName, index: &Index<'_>) -> Result<usize, Matched> {
    let found = index
        .holder(Key::Username, &name.normalized())
        .filter(|i| !index.users[*i].scim_deleted);
    match found {
        None => Err(Matched::Skipped {
            issue: Issue::new(
                ErrorType::NotFound,
                format!("no user '{name}' in your organisation"),
                format!("username={name}"),
            ),
            user: None,
        }),
        Some(i) if index.users[i].managed_by.is_some() => Err(Matched::Skipped {
            issue: Issue::new(
                ErrorType::ManagedByExternalSource,
                "this user is managed by an external source: change it there",
                format!("username={name}"),
            ),
            user: Some(i),
        }),
        Some(i) => Ok(i),
    }
}

/// Steps 1–5 of SPEC §3 for one record.
fn match_record(
    record: &Incoming,
    index: &Index<'_>,
    ctx: &Context,
    options: &Options,
    taken: &mut HashMap<usize, u64>,
    new_id: &mut dyn FnMut() -> UserId,
) -> Result<Matched, Issue> {
    let managed_elsewhere =
        |u: &StoredUser| u.managed_by.as_ref().is_some_and(|c| *c != options.config);
    let mut note = None;

    // Step 1: linked.
    let mut target = match &record.link {
        Link::ExternalId(ext) => index.holder(Key::ExternalId, ext.as_str()),
        Link::User(id) => Some(link_by_id(id, index)?),
        Link::New | Link::Unmanaged => None,
        Link::Username(name) => match link_by_username(name, index) {
            Ok(i) => Some(i),
            Err(skipped) => return Ok(skipped),
        },
        Link::AdminEdit(id) => {
            let i = link_by_id(id, index)?;
            check_editable(record, &index.users[i])?;
            Some(i)
        }
    };
    if record.scim_delete {
        note = Some("Deleted through SCIM: deactivated and hidden from SCIM".to_owned());
    }
    // Step 1b: a user this configuration deleted through SCIM, named again, comes back: the
    // same account and history, its fields replaced (SPEC §3).
    if target.is_none()
        && matches!(record.link, Link::New | Link::ExternalId(_))
        && let Some(i) = index.returning(record, &options.config)
    {
        target = Some(i);
        note = Some("Returned after a SCIM delete: the same account, brought back".to_owned());
    }
    if let Some(i) = target
        && record.link.from_source()
    {
        if managed_elsewhere(&index.users[i]) {
            return Err(Issue::new(
                ErrorType::OrganisationConflict,
                "This user is managed by another source configuration of the organisation; \
                 remove the row here or stop managing the user there",
                match &record.link {
                    Link::ExternalId(ext) => format!("external_id={ext}"),
                    _ => format!("id={}", index.users[i].id),
                },
            ));
        }
        if index.users[i].managed_by.is_none() && !record.scim_delete {
            note = Some("Linked to an existing user by External ID".to_owned());
        }
    }

    // Step 2: claim an unmanaged user by email or employee id.
    if target.is_none() && matches!(record.link, Link::New | Link::ExternalId(_)) {
        let mut candidates: Vec<(usize, Key)> = Vec::new();
        for key in [Key::Email, Key::EmployeeId] {
            if let Some(v) = key.compared(&record.profile)
                && let Some(i) = index.holder(key, &v)
                && index.users[i].managed_by.is_none()
            {
                match candidates.iter_mut().find(|(c, _)| *c == i) {
                    Some(_) => {}
                    None => candidates.push((i, key)),
                }
            }
        }
        match candidates.as_slice() {
            [] => {}
            [(i, by)] => {
                let candidate = &index.users[*i];
                let contradictions: Vec<Key> =
                    [Key::Email, Key::EmployeeId, Key::PhoneMobile, Key::Username]
                        .into_iter()
                        .filter(|k| {
                            matches!(
                                (k.compared(&record.profile), k.compared(&candidate.profile)),
                                (Some(a), Some(b)) if a != b
                            )
                        })
                        .collect();
                if !contradictions.is_empty() {
                    let names: Vec<&str> =
                        contradictions.iter().map(|k| k.field().label()).collect();
                    return Err(Issue::new(
                        ErrorType::MatchCandidateConflict,
                        format!(
                            "An existing user matches by {} but has a different {}: check which person this is \
                             and correct the source or the existing user",
                            by.field().label(),
                            names.join(", ")
                        ),
                        contradictions
                            .iter()
                            .map(|k| format!("{}={}", k.field().key(), k.shown(&record.profile)))
                            .collect::<Vec<_>>()
                            .join("; "),
                    ));
                }
                target = Some(*i);
                note = Some(format!(
                    "Claimed an existing user matched by {}",
                    by.field().label()
                ));
            }
            several => {
                let mut keys: Vec<Key> = several.iter().map(|(_, k)| *k).collect();
                keys.sort();
                keys.dedup();
                return Err(Issue::new(
                    ErrorType::MatchCandidateConflict,
                    format!(
                        "{} existing users match this record (by {}): merge or correct them so that one user matches",
                        several.len(),
                        keys.iter()
                            .map(|k| k.field().label())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                    keys.iter()
                        .map(|k| format!("{}={}", k.field().key(), k.shown(&record.profile)))
                        .collect::<Vec<_>>()
                        .join("; "),
                ));
            }
        }
    }

    if let Some(i) = target
        && let Some(row) = taken.get(&i)
    {
        return Err(Issue::new(
            ErrorType::OrganisationConflict,
            format!("Row {row} already matched the same user: keep one row per person"),
            format!("external_id={}", describe(record).0),
        ));
    }

    // Step 3: create (or skip an unknown leaver).
    let created;
    let base = match target {
        Some(i) => &index.users[i],
        None => {
            if record.provided.contains(FieldKey::Active)
                && !record.active
                && !options.create_inactive
            {
                return Ok(Matched::Ignore(
                    "Inactive and unknown: not created (a person the application never had)"
                        .to_owned(),
                ));
            }
            if record.profile.username.is_none() {
                return Err(Issue::new(
                    ErrorType::MissingRequiredField,
                    "Username is required to create a user",
                    "username=",
                ));
            }
            created = StoredUser::new(new_id());
            &created
        }
    };
    let user = apply_record(base, record, options);

    // Step 4: uniqueness in the organisation.
    let conflicts: Vec<Key> = Key::ALL
        .into_iter()
        .filter(|key| {
            key.compared(&user.profile)
                .and_then(|v| index.holder(*key, &v))
                .is_some_and(|holder| Some(holder) != target)
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(Issue::new(
            ErrorType::OrganisationConflict,
            "Another user of the organisation already has this value: correct the source, \
             or change or remove the other user",
            conflicts
                .iter()
                .map(|key| format!("{}={}", key.field().key(), key.shown(&user.profile)))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .about(conflicts.iter().map(|key| key.field()).collect()));
    }

    // Step 5: global uniqueness. The message never names the other organisation.
    let mut global = Vec::new();
    if let Some(email) = &user.profile.email
        && ctx.foreign_emails.contains(email.normalized())
    {
        global.push((FieldKey::Email, format!("email={email}")));
    }
    if let Some(phone) = &user.profile.phone_mobile
        && ctx.foreign_phones.contains(phone.e164())
    {
        global.push((
            FieldKey::PhoneMobile,
            format!("phone_mobile={}", phone.as_str()),
        ));
    }
    if !global.is_empty() {
        return Err(Issue::new(
            ErrorType::GlobalConflict,
            "This value already belongs to a user outside this organisation; emails and mobile numbers \
             must be unique across all organisations: correct the source",
            global
                .iter()
                .map(|(_, shown)| shown.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
        .about(global.iter().map(|(field, _)| *field).collect()));
    }

    if let Some(i) = target {
        taken.insert(i, record.row);
    }
    let manager = record
        .provided
        .contains(FieldKey::Manager)
        .then(|| record.manager.clone());
    let planned = match target {
        Some(i) if user == index.users[i] => Planned::AsStored(i),
        _ => Planned::User(Box::new(user)),
    };
    Ok(Matched::Write(Box::new(Accepted {
        slot: 0,
        target,
        planned,
        note,
        manager,
    })))
}

/// The user after applying a record's provided fields to `base`. The manager is resolved later.
fn apply_record(base: &StoredUser, record: &Incoming, options: &Options) -> StoredUser {
    let mut user = base.clone();
    let from_source = record.link.from_source();
    if from_source && record.provided.contains(FieldKey::Email) {
        // What the source sent beside its contact values comes with them.
        user.profile.contact_meta = record.profile.contact_meta.clone();
    }
    let p = &mut user.profile;
    let r = &record.profile;
    for field in record.provided.iter() {
        match field {
            FieldKey::ExternalId => p.external_id = r.external_id.clone(),
            FieldKey::Username => p.username = r.username.clone(),
            FieldKey::EmployeeId => p.employee_id = r.employee_id.clone(),
            FieldKey::FirstName => p.first_name = r.first_name.clone(),
            FieldKey::SecondName => p.second_name = r.second_name.clone(),
            FieldKey::MiddleName => p.middle_name = r.middle_name.clone(),
            FieldKey::DisplayName => p.display_name = r.display_name.clone(),
            // The contact exception of SPEC §2: an empty email or mobile from the source clears
            // a value the source provided (company phones move to the next person) and never
            // one an admin entered; either way the field is then editable by admins. An
            // admin's record leaves the flags as they are, and clears a contact field it empties.
            FieldKey::Email => match &r.email {
                Some(email) => {
                    p.email = Some(email.clone());
                    user.email_from_source |= from_source;
                }
                None if from_source => {
                    if std::mem::take(&mut user.email_from_source) {
                        p.email = None;
                    }
                }
                None => p.email = None,
            },
            FieldKey::PhoneMobile => match &r.phone_mobile {
                Some(phone) => {
                    p.phone_mobile = Some(phone.clone());
                    user.phone_mobile_from_source |= from_source;
                }
                None if from_source => {
                    if std::mem::take(&mut user.phone_mobile_from_source) {
                        p.phone_mobile = None;
                    }
                }
                None => p.phone_mobile = None,
            },
            FieldKey::PhoneWork => p.phone_work = r.phone_work.clone(),
            FieldKey::Manager => {}
            FieldKey::JobTitle => p.job_title = r.job_title.clone(),
            FieldKey::Location => p.location = r.location.clone(),
            FieldKey::Department => p.department = r.department.clone(),
            FieldKey::Company => p.company = r.company.clone(),
            FieldKey::Description => p.description = r.description.clone(),
            FieldKey::Active => user.active = record.active,
            FieldKey::StartEmploymentDate => p.start_employment_date = r.start_employment_date,
            FieldKey::EndEmploymentDate => p.end_employment_date = r.end_employment_date,
        }
    }
    for name in &record.custom_provided {
        match r.custom_fields.get(name) {
            Some(v) => user.profile.custom_fields.insert(name.clone(), v.clone()),
            None => user.profile.custom_fields.remove(name),
        };
    }
    if record.link.from_source() {
        user.managed_by = Some(options.config.clone());
    }
    if record.scim_delete {
        user.scim_deleted = true;
    } else if from_source {
        // Only a returning user is deleted here (step 1b).
        user.scim_deleted = false;
    }
    user
}

/// The reporting graph of the stored users and the batch, over node numbers: a user id gets a
/// node the first time it is seen (ids borrowed, never copied).
struct Graph<'a> {
    ids: Vec<&'a str>,
    node_of: HashMap<&'a str, u32>,
    /// Each node's manager.
    parent: Vec<Option<u32>>,
    /// The external ID shown for a node in messages (the batch's over the stored one).
    external: Vec<Option<&'a str>>,
    /// Stored users and the batch's users (manager ids alone are not "known").
    known: Vec<bool>,
}

impl<'a> Graph<'a> {
    fn with_capacity(n: usize) -> Graph<'a> {
        Graph {
            ids: Vec::with_capacity(n),
            node_of: HashMap::with_capacity(n),
            parent: Vec::with_capacity(n),
            external: Vec::with_capacity(n),
            known: Vec::with_capacity(n),
        }
    }

    fn node(&mut self, id: &'a str) -> u32 {
        if let Some(n) = self.node_of.get(id) {
            return *n;
        }
        let n = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.push(id);
        self.node_of.insert(id, n);
        self.parent.push(None);
        self.external.push(None);
        self.known.push(false);
        n
    }

    /// The external ID of a node, or its id when it has none.
    fn external_of(&self, n: u32) -> String {
        let n = n as usize;
        self.external[n].unwrap_or(self.ids[n]).to_owned()
    }
}

/// Resolve manager references once the whole batch is known (a manager may come after their
/// reports), then undo any assignment that would make a reporting loop. Returns the warnings of
/// each accepted record, in order, and (with `defer`) the records whose manager by external ID
/// was not found, instead of their warning.
fn resolve_managers(
    accepted: &mut [Accepted],
    index: &Index<'_>,
    defer: bool,
) -> (Vec<Vec<Issue>>, Vec<(usize, ExternalId)>) {
    let mut warnings: Vec<Vec<Issue>> = vec![Vec::new(); accepted.len()];
    let mut deferred = Vec::new();
    // The ids of the batch's users, apart from `accepted`, whose managers change below.
    let accepted_ids: Vec<UserId> = accepted.iter().map(|a| a.user(index).id.clone()).collect();

    // Decided with `accepted` read-only; the managers that change are set at the end.
    let updates: Vec<(usize, Option<UserId>)> = {
        let acc: &[Accepted] = accepted;
        let mut graph = Graph::with_capacity(index.users.len() + acc.len());
        // External ID → user, as it will be after the batch.
        let mut by_external: HashMap<&str, u32> = HashMap::with_capacity(graph.ids.capacity());
        for u in index.users {
            let n = graph.node(u.id.as_str());
            graph.known[n as usize] = true;
            if let Some(ext) = &u.profile.external_id {
                by_external.insert(ext.as_str(), n);
                graph.external[n as usize] = Some(ext.as_str());
            }
        }
        for a in acc {
            if let Some(i) = a.target
                && let Some(old) = &index.users[i].profile.external_id
            {
                by_external.remove(old.as_str());
            }
        }
        let nodes: Vec<u32> = accepted_ids
            .iter()
            .map(|id| graph.node(id.as_str()))
            .collect();
        for (a, &n) in acc.iter().zip(&nodes) {
            graph.known[n as usize] = true;
            if let Some(ext) = &a.user(index).profile.external_id {
                by_external.insert(ext.as_str(), n);
                graph.external[n as usize] = Some(ext.as_str());
            }
        }

        let initial: Vec<Option<u32>> = acc
            .iter()
            .map(|a| {
                a.user(index)
                    .manager_id
                    .as_ref()
                    .map(|m| graph.node(m.as_str()))
            })
            .collect();
        let mut managers = initial.clone();
        for (k, ((a, manager), warns)) in acc
            .iter()
            .zip(managers.iter_mut())
            .zip(warnings.iter_mut())
            .enumerate()
        {
            let Some(reference) = &a.manager else {
                continue;
            };
            match reference {
                None => *manager = None,
                Some(ManagerRef::ExternalId(ext)) => match by_external.get(ext.as_str()) {
                    Some(n) => *manager = Some(*n),
                    None if defer => deferred.push((k, ext.clone())),
                    None => warns.push(manager_not_found(ext.as_str())),
                },
                Some(ManagerRef::User(id)) => match graph.node_of.get(id.as_str()) {
                    Some(n) if graph.known[*n as usize] => *manager = Some(*n),
                    _ => warns.push(Issue::new(
                        ErrorType::ManagerNotFound,
                        format!("Manager '{id}' matches no user, so the manager was not changed"),
                        format!("manager={id}"),
                    )),
                },
            }
        }

        // The reporting graph after the batch: stored edges, overridden by the batch's.
        for u in index.users {
            if let Some(m) = &u.manager_id {
                let (n, m) = (graph.node(u.id.as_str()), graph.node(m.as_str()));
                graph.parent[n as usize] = Some(m);
            }
        }
        let mut slot_of: HashMap<u32, usize> = HashMap::with_capacity(acc.len());
        for (k, &n) in nodes.iter().enumerate() {
            slot_of.insert(n, k);
            graph.parent[n as usize] = managers[k];
        }
        let base_managers: Vec<Option<u32>> = acc
            .iter()
            .map(|a| {
                a.target
                    .and_then(|i| index.users[i].manager_id.as_ref())
                    .map(|m| graph.node(m.as_str()))
            })
            .collect();

        // Undoing an edge restores the stored one, which could close another loop: repeat
        // until no loop is left (each round undoes at least one batch edge, so this ends).
        loop {
            let cycles = find_cycles(&graph.parent, nodes.iter().copied());
            let mut undone = false;
            for cycle in cycles {
                let path: Vec<String> = cycle
                    .iter()
                    .chain(cycle.first())
                    .map(|n| graph.external_of(*n))
                    .collect();
                // Decide every undo of this loop first (names come from the planned users),
                // then make them.
                let undo: Vec<(usize, String)> = cycle
                    .iter()
                    .filter_map(|n| slot_of.get(n).copied())
                    .filter(|&k| managers[k] != base_managers[k])
                    .map(|k| {
                        let manager = managers[k]
                            .map(|m| graph.external_of(m))
                            .unwrap_or_default();
                        (k, manager)
                    })
                    .collect();
                for (k, manager) in undo {
                    graph.parent[nodes[k] as usize] = base_managers[k];
                    managers[k] = base_managers[k];
                    warnings[k].push(Issue::new(
                        ErrorType::ManagerCycle,
                        format!(
                            "Manager '{manager}' would make a reporting loop ({}), so the manager was not changed: \
                             correct the managers in the source",
                            path.join(" → ")
                        ),
                        format!("manager={manager}"),
                    ));
                    undone = true;
                }
            }
            if !undone {
                break;
            }
        }
        initial
            .into_iter()
            .zip(managers)
            .enumerate()
            .filter(|(_, (before, after))| before != after)
            .map(|(k, (_, after))| (k, after.map(|m| UserId::new(graph.ids[m as usize]))))
            .collect()
    };
    for (k, manager) in updates {
        let a = &mut accepted[k];
        match &mut a.planned {
            Planned::User(user) => user.manager_id = manager,
            Planned::AsStored(i) => {
                let mut user = Box::new(index.users[*i].clone());
                user.manager_id = manager;
                a.planned = Planned::User(user);
            }
        }
    }
    (warnings, deferred)
}

/// The loops of a graph in which every node has at most one parent, reachable from `starts`.
fn find_cycles(parent: &[Option<u32>], starts: impl Iterator<Item = u32>) -> Vec<Vec<u32>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; parent.len()];
    let mut cycles = Vec::new();
    let mut path: Vec<u32> = Vec::new();
    for start in starts {
        path.clear();
        let mut node = Some(start);
        while let Some(n) = node {
            match state[n as usize] {
                DONE => break,
                ON_PATH => {
                    let from = path.iter().position(|p| *p == n).unwrap_or(0);
                    cycles.push(path[from..].to_vec());
                    break;
                }
                _ => {
                    state[n as usize] = ON_PATH;
                    path.push(n);
                    node = parent[n as usize];
                }
            }
        }
        for n in &path {
            state[*n as usize] = DONE;
        }
    }
    cycles
}

/// The fields whose value differs between the stored user and the planned one.
fn changed_fields(base: Option<&StoredUser>, user: &StoredUser) -> Vec<Cow<'static, str>> {
    let empty = StoredUser::new(user.id.clone());
    let created = base.is_none();
    let b = base.unwrap_or(&empty);
    let (p, q) = (&b.profile, &user.profile);
    let mut changed = Vec::new();
    let mut check = |field: FieldKey, differs: bool| {
        if differs {
            changed.push(Cow::Borrowed(field.key()));
        }
    };
    check(FieldKey::ExternalId, p.external_id != q.external_id);
    check(
        FieldKey::Username,
        p.username.as_ref().map(|u| u.as_str()) != q.username.as_ref().map(|u| u.as_str()),
    );
    check(FieldKey::EmployeeId, p.employee_id != q.employee_id);
    check(FieldKey::FirstName, p.first_name != q.first_name);
    check(FieldKey::SecondName, p.second_name != q.second_name);
    check(FieldKey::MiddleName, p.middle_name != q.middle_name);
    check(FieldKey::DisplayName, p.display_name != q.display_name);
    check(
        FieldKey::Email,
        p.email.as_ref().map(|e| e.as_str()) != q.email.as_ref().map(|e| e.as_str()),
    );
    check(
        FieldKey::PhoneMobile,
        p.phone_mobile.as_ref().map(|e| e.as_str()) != q.phone_mobile.as_ref().map(|e| e.as_str()),
    );
    check(
        FieldKey::PhoneWork,
        p.phone_work.as_ref().map(|e| e.as_str()) != q.phone_work.as_ref().map(|e| e.as_str()),
    );
    check(FieldKey::Manager, b.manager_id != user.manager_id);
    check(FieldKey::JobTitle, p.job_title != q.job_title);
    check(FieldKey::Location, p.location != q.location);
    check(FieldKey::Department, p.department != q.department);
    check(FieldKey::Company, p.company != q.company);
    check(FieldKey::Description, p.description != q.description);
    check(FieldKey::Active, !created && b.active != user.active);
    check(
        FieldKey::StartEmploymentDate,
        p.start_employment_date != q.start_employment_date,
    );
    check(
        FieldKey::EndEmploymentDate,
        p.end_employment_date != q.end_employment_date,
    );
    let names: std::collections::BTreeSet<&String> = p
        .custom_fields
        .keys()
        .chain(q.custom_fields.keys())
        .collect();
    for name in names {
        if p.custom_fields.get(name) != q.custom_fields.get(name) {
            changed.push(Cow::Owned(name.clone()));
        }
    }
    changed
}

#[cfg(test)]
mod tests;
