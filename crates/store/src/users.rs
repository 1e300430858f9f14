//! Users: reading the context a batch can reach, and writing planned users.

use std::collections::{BTreeMap, HashMap, HashSet};

use rollcall_domain::plan::{BatchKeys, Context};
use rollcall_domain::unchanged::{Sieve, StoredManager, StoredView};
use rollcall_domain::{ConfigId, OrgId, StoredUser, UserId};
use sqlx::{Any, Transaction};

use crate::db::{Arg, get, placeholders, query};
use crate::failed;
use crate::user_columns::{USER_COLUMN_COUNT, USER_COLUMNS, corrupt, user_args, user_from_row};
use crate::{Backend, OrgStore, Result, StoreError};

/// Values per `IN (…)` list: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row INSERT (34 columns each).
const INSERT_CHUNK: usize = 200;

/// Insert new users in multi-row statements.
async fn insert_users(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    org: &OrgId,
    users: &[&StoredUser],
    now: i64,
) -> Result<()> {
    for chunk in users.chunks(INSERT_CHUNK) {
        let mut sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES ");
        let mut args = Vec::with_capacity(chunk.len() * USER_COLUMN_COUNT);
        for (i, u) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders(i * USER_COLUMN_COUNT + 1, USER_COLUMN_COUNT));
            sql.push(')');
            args.extend(user_args(org, u));
            args.push(now.into());
            args.push(now.into());
        }
        query(backend, sql, args).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A planned user write as the store applies it: the user as it must be after, the version
/// it was planned on (`None`: a new user), and, where the planner read it, the user as stored
/// at that version (the direct SQLite path then sets only the columns that change).
#[derive(Clone, Copy)]
pub(crate) struct UserWriteRef<'a> {
    pub user: &'a StoredUser,
    pub expected_version: Option<i64>,
    pub before: Option<&'a StoredUser>,
}

impl<'a> From<&'a rollcall_domain::plan::Write> for UserWriteRef<'a> {
    fn from(write: &'a rollcall_domain::plan::Write) -> UserWriteRef<'a> {
        UserWriteRef {
            user: &write.user,
            expected_version: write.expected_version,
            before: None,
        }
    }
}

/// Apply planned user writes through sqlx, in the caller's transaction: each update checked
/// against the version it was planned on ([`StoreError::StaleWrite`] otherwise), then the new
/// users in multi-row inserts. The one way a plan's users are written through sqlx (runs and
/// SCIM alike); returns how many were written.
pub(crate) async fn write_users<'a>(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    org: &OrgId,
    writes: Vec<UserWriteRef<'a>>,
    now: i64,
) -> Result<usize> {
    let mut new_users = Vec::new();
    let mut written = 0;
    for write in writes {
        written += 1;
        match write.expected_version {
            None => new_users.push(write.user),
            Some(version) => {
                update_user(backend, tx, org, write.user, version, now).await?;
                if write.user.scim_deleted {
                    for (sql, args) in remember_deleted(org.as_str(), write.user) {
                        query(backend, sql, args).execute(&mut **tx).await?;
                    }
                }
            }
        }
    }
    insert_users(backend, tx, org, &new_users, now).await?;
    Ok(written)
}

/// The statements that keep what a user deleted through SCIM is matched by when it returns
/// (its external ID, username and email, normalised), replacing what an earlier deletion
/// kept: its columns no longer hold them ([`crate::user_columns`]).
pub(crate) fn remember_deleted<'u>(
    org: &'u str,
    user: &'u StoredUser,
) -> Vec<(&'static str, Vec<Arg>)> {
    let mut statements = vec![(FORGET_DELETED, vec![Arg::from(user.id.as_str())])];
    for (kind, value) in deleted_keys(user) {
        statements.push((
            REMEMBER_DELETED,
            vec![
                org.into(),
                user.id.as_str().into(),
                kind.into(),
                value.into(),
            ],
        ));
    }
    statements
}

pub(crate) const FORGET_DELETED: &str = "DELETE FROM deleted_user_keys WHERE user_id = $1";
pub(crate) const REMEMBER_DELETED: &str =
    "INSERT INTO deleted_user_keys (org_id, user_id, kind, value) VALUES ($1, $2, $3, $4)";

/// What a deleted user is matched by when it returns, by kind (`deleted_user_keys.kind`).
pub(crate) fn deleted_keys(user: &StoredUser) -> Vec<(&'static str, String)> {
    let p = &user.profile;
    let mut keys = Vec::with_capacity(3);
    if let Some(ext) = &p.external_id {
        keys.push(("external_id", ext.as_str().to_owned()));
    }
    if let Some(name) = &p.username {
        keys.push(("username", name.normalized()));
    }
    if let Some(email) = &p.email {
        keys.push(("email", email.normalized().to_owned()));
    }
    keys
}

/// Update a user, refusing a write based on a stale version.
async fn update_user(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    org: &OrgId,
    user: &StoredUser,
    expected_version: i64,
    now: i64,
) -> Result<()> {
    const SET: &str = "external_id = $3, username = $4, username_norm = $5, employee_id = $6, first_name = $7, \
        second_name = $8, email = $9, email_norm = $10, email_from_source = $11, phone_mobile = $12, \
        phone_mobile_e164 = $13, phone_mobile_from_source = $14, phone_work = $15, phone_work_e164 = $16, \
        manager_id = $17, job_title = $18, location = $19, department = $20, company = $21, description = $22, \
        active = $23, start_employment_date = $24, end_employment_date = $25, custom_fields = $26, \
        middle_name = $27, display_name = $28, contact_meta = $29, managed_by = $30, scim_deleted = $31, \
        version = $32, updated_at = $33";
    let mut args = user_args(org, user);
    args.push(now.into());
    args.push(expected_version.into());
    let done = query(
        backend,
        format!("UPDATE users SET {SET} WHERE id = $1 AND org_id = $2 AND version = $34"),
        args,
    )
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::StaleWrite);
    }
    Ok(())
}

/// The keys a batch's context is looked up by (the columns of [`OrgStore::load_context`]).
pub(crate) const CONTEXT_KEYS: [&str; 6] = [
    "external_id",
    "username_norm",
    "employee_id",
    "email_norm",
    "phone_mobile_e164",
    "id",
];

/// The keys unique across all organisations, whose indexes hold no organisation: the primary
/// key, and email and mobile (SPEC §2).
const GLOBAL_KEYS: [&str; 3] = ["id", "email_norm", "phone_mobile_e164"];

/// A user of an organisation by a unique key (`$1` the organisation, `$2` the value),
/// whether SCIM can see it or not.
///
/// Only the key's own unique index (or the primary key) matches every condition, so no plan
/// can prefer another index. With `scim_deleted = 0` in the query (and `ORDER BY created_at,
/// id`), the partial page index `users_scim_page` matched too, and PostgreSQL, planning a
/// freshly loaded table it had no statistics for, walked it through the whole organisation
/// and filtered each lookup out of 20,000 users (7.7 ms). The key is unique, so there is at
/// most one row and nothing to order; whether SCIM may see it is checked on the row read.
pub(crate) fn by_unique_key_sql(column: &str) -> String {
    format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND {column} = $2")
}

/// The users of an organisation (`$1`) holding one of `n` values (`$2`…) of a unique key,
/// found through that key's unique index (or the primary key) alone.
///
/// Several values of a key unique across organisations are looked up first and then kept if
/// they are the organisation's: asked with `org_id = $1` beside them, PostgreSQL, without
/// statistics, intersected their index with one that starts with the organisation
/// (`users_managed_by`), reading the entries of all its users. For one value, and for the keys
/// whose unique index starts with the organisation, only that index can answer in one probe.
pub(crate) fn users_by_keys_sql(column: &str, n: usize) -> String {
    let keys = placeholders(2, n);
    if n > 1 && GLOBAL_KEYS.contains(&column) {
        format!(
            "WITH found AS MATERIALIZED (SELECT {USER_COLUMNS} FROM users WHERE {column} IN ({keys})) \
             SELECT {USER_COLUMNS} FROM found WHERE org_id = $1"
        )
    } else {
        format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND {column} IN ({keys})")
    }
}

/// Which of `n` values (`$2`…) of a globally unique key (email, mobile) users of other
/// organisations than `$1` hold.
pub(crate) fn foreign_keys_sql(column: &str, n: usize) -> String {
    format!(
        "SELECT {column} AS v FROM users WHERE org_id <> $1 AND {column} IN ({})",
        placeholders(2, n)
    )
}

/// The batch's emails and mobile numbers that none of `users` (this organisation's) holds:
/// only those can be held by another organisation (the indexes are global).
fn not_held_by<'k>(users: &[StoredUser], keys: &'k BatchKeys) -> (Vec<&'k str>, Vec<&'k str>) {
    let own_emails: HashSet<&str> = users
        .iter()
        .filter_map(|u| u.profile.email.as_ref().map(|e| e.normalized()))
        .collect();
    let own_phones: HashSet<&str> = users
        .iter()
        .filter_map(|u| u.profile.phone_mobile.as_ref().map(|p| p.e164()))
        .collect();
    let others = |values: &'k [String], own: &HashSet<&str>| -> Vec<&'k str> {
        values
            .iter()
            .map(String::as_str)
            .filter(|v| !own.contains(v))
            .collect()
    };
    (
        others(&keys.emails, &own_emails),
        others(&keys.phones, &own_phones),
    )
}

impl OrgStore {
    /// Load the users a batch can reach: by each of its keys, then up the manager chains of
    /// what was found. Every lookup is an indexed `IN (…)` on chunks of keys.
    pub async fn load_context(&self, keys: &BatchKeys) -> Result<Context> {
        self.load_context_with(keys, None).await
    }

    /// [`OrgStore::load_context`] starting from a user the caller has just read (a SCIM write
    /// reads the user it targets first): the lookups that user answers are not made again.
    /// Every key is unique, so this finds the same users; a write planned on a user that
    /// changed meanwhile is refused by its version check.
    pub async fn load_context_with(
        &self,
        keys: &BatchKeys,
        known: Option<StoredUser>,
    ) -> Result<Context> {
        let mut ctx = self.load_live_context(keys, known).await?;
        self.add_deleted(keys, &mut ctx).await?;
        Ok(ctx)
    }

    /// The users deleted through SCIM whose kept external ID, username or email the batch
    /// gives ([`remember_deleted`]), with their external ID as it was: the plan brings one
    /// back for a record of the configuration that managed it.
    async fn add_deleted(&self, keys: &BatchKeys, ctx: &mut Context) -> Result<()> {
        let backend = self.store.db.backend;
        let read = &self.store.db.read;
        let org = self.org.as_str();
        let wanted: [(&str, HashSet<&str>); 3] = [
            (
                "external_id",
                keys.external_ids.iter().map(String::as_str).collect(),
            ),
            (
                "username",
                keys.usernames.iter().map(String::as_str).collect(),
            ),
            ("email", keys.emails.iter().map(String::as_str).collect()),
        ];
        let values: Vec<&str> = wanted
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if values.is_empty() {
            return Ok(());
        }
        let mut matched: HashSet<String> = HashSet::new();
        let mut keep = |user: String, kind: &str, value: &str| {
            if wanted.iter().any(|(k, v)| *k == kind && v.contains(value)) {
                matched.insert(user);
            }
        };
        let lookup = |n: usize| {
            format!(
                "SELECT user_id, kind, value FROM deleted_user_keys WHERE org_id = $1 AND value IN ({})",
                placeholders(2, n)
            )
        };
        if let Some(fast) = self.fast_for(values.len()) {
            // A SCIM write's few keys: index probes on the calling thread, as its context's.
            let sql = crate::sqlite_reads::numbered(&lookup(values.len()));
            let params = std::iter::once(org).chain(values.iter().copied());
            fast.for_each_row(&sql, params, |row| {
                let get = |i: usize| row.get::<_, String>(i).map_err(failed);
                keep(get(0)?, &get(1)?, &get(2)?);
                Ok(())
            })?;
        } else {
            // Most organisations have none, and a file's million keys need not be asked about.
            let any = query(
                backend,
                "SELECT 1 AS one FROM deleted_user_keys WHERE org_id = $1 LIMIT 1",
                vec![org.into()],
            )
            .fetch_optional(read)
            .await?;
            if any.is_none() {
                return Ok(());
            }
            for chunk in values.chunks(LOOKUP_CHUNK) {
                let mut args: Vec<Arg> = vec![org.into()];
                args.extend(chunk.iter().map(|v| Arg::from(*v)));
                for row in query(backend, lookup(chunk.len()), args)
                    .fetch_all(read)
                    .await?
                {
                    let kind: String = get(&row, "kind")?;
                    let value: String = get(&row, "value")?;
                    keep(get(&row, "user_id")?, &kind, &value);
                }
            }
        }
        if matched.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = matched.into_iter().collect();
        let mut external: HashMap<String, String> = HashMap::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT user_id, value FROM deleted_user_keys WHERE kind = 'external_id' AND user_id IN ({})",
                placeholders(1, chunk.len())
            );
            let args: Vec<Arg> = chunk.iter().map(|v| Arg::from(v.as_str())).collect();
            for row in query(backend, sql, args).fetch_all(read).await? {
                external.insert(get(&row, "user_id")?, get(&row, "value")?);
            }
        }
        let mut found: HashMap<String, StoredUser> = HashMap::new();
        self.load_users_by("id", &ids, &mut found).await?;
        // A key kept from an earlier deletion of a user that has since returned names a live
        // user, which the context holds as it is.
        found.retain(|_, user| user.scim_deleted);
        ctx.users.retain(|u| !found.contains_key(u.id.as_str()));
        for (id, mut user) in found {
            user.profile.external_id = external
                .remove(&id)
                .map(rollcall_domain::values::ExternalId::from_stored);
            ctx.users.push(user);
        }
        Ok(())
    }

    /// [`OrgStore::load_context_with`] for the users that hold their values.
    async fn load_live_context(
        &self,
        keys: &BatchKeys,
        known: Option<StoredUser>,
    ) -> Result<Context> {
        if let Some(bulk) = &self.store.direct
            && let Some(ctx) = self.load_context_bulk(bulk, keys)?
        {
            return Ok(ctx);
        }
        let mut found: HashMap<String, StoredUser> = HashMap::new();
        if let Some(user) = known {
            found.insert(user.id.as_str().to_owned(), user);
        }
        // Most records reach the same user by every key, so each lookup only asks for the
        // values that the users found so far do not already hold.
        type Holds = fn(&StoredUser) -> Option<String>;
        // The columns of `CONTEXT_KEYS`, each answered by its unique index.
        let lookups: [(&str, &[String], Holds); 6] = [
            ("external_id", &keys.external_ids, |u| {
                u.profile
                    .external_id
                    .as_ref()
                    .map(|v| v.as_str().to_owned())
            }),
            ("username_norm", &keys.usernames, |u| {
                u.profile.username.as_ref().map(|v| v.normalized())
            }),
            ("employee_id", &keys.employee_ids, |u| {
                u.profile
                    .employee_id
                    .as_ref()
                    .map(|v| v.as_str().to_owned())
            }),
            ("email_norm", &keys.emails, |u| {
                u.profile.email.as_ref().map(|v| v.normalized().to_owned())
            }),
            ("phone_mobile_e164", &keys.phones, |u| {
                u.profile.phone_mobile.as_ref().map(|v| v.e164().to_owned())
            }),
            ("id", &keys.user_ids, |u| Some(u.id.as_str().to_owned())),
        ];
        for (column, values, holds) in lookups {
            let held: HashSet<String> = found.values().filter_map(holds).collect();
            let missing: Vec<String> = values
                .iter()
                .filter(|v| !held.contains(*v))
                .cloned()
                .collect();
            self.load_users_by(column, &missing, &mut found).await?;
        }

        // Manager chains, level by level. The stored graph has no loops (the planner refuses
        // them), so this ends; the cap guards against a corrupted database.
        for _ in 0..10_000 {
            let missing: Vec<String> = found
                .values()
                .filter_map(|u| u.manager_id.as_ref())
                .filter(|m| !found.contains_key(m.as_str()))
                .map(|m| m.as_str().to_owned())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if missing.is_empty() {
                break;
            }
            let before = found.len();
            self.load_users_by("id", &missing, &mut found).await?;
            if found.len() == before {
                break;
            }
        }

        let mut users: Vec<StoredUser> = found.into_values().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        let (emails, phones) = not_held_by(&users, keys);
        Ok(Context {
            foreign_emails: self.foreign_keys("email_norm", &emails).await?,
            foreign_phones: self.foreign_keys("phone_mobile_e164", &phones).await?,
            users,
        })
    }

    /// SQLite, a batch with many keys: one scan of the organisation's users when that reads
    /// fewer rows than the lookups would probe (`None` otherwise).
    fn load_context_bulk(
        &self,
        bulk: &crate::sqlite_direct::DirectSqlite,
        keys: &BatchKeys,
    ) -> Result<Option<Context>> {
        /// A scan reads a row in about the time an indexed lookup takes for a fourth of a key.
        const SCAN_ROWS_PER_KEY: u64 = 4;
        const MIN_KEYS: usize = 2_000;
        let total = keys.external_ids.len()
            + keys.usernames.len()
            + keys.employee_ids.len()
            + keys.emails.len()
            + keys.phones.len()
            + keys.user_ids.len();
        if total < MIN_KEYS {
            return Ok(None);
        }
        let org = self.org.as_str();
        crate::sqlite_direct::blocking(|| {
            let users = bulk.org_user_count(org)?;
            // Few keys for many users: indexed lookups through rusqlite rather than a scan.
            let scan = users <= total as u64 * SCAN_ROWS_PER_KEY;
            let found = if users == 0 {
                Vec::new()
            } else {
                // Most of a file's rows are usually stored users already.
                let expected = usize::try_from(users)
                    .unwrap_or(0)
                    .min(keys.external_ids.len());
                bulk.load_users(org, keys, expected, scan)?
            };
            let (emails, phones) = not_held_by(&found, keys);
            let foreign_emails = bulk.foreign_keys(org, "email_norm", &emails)?;
            let foreign_phones = bulk.foreign_keys(org, "phone_mobile_e164", &phones)?;
            // The order is the scan's (deterministic for a given database); the plan does not
            // depend on it, and sorting a million users would move gigabytes.
            Ok(Some(Context {
                users: found,
                foreign_emails,
                foreign_phones,
            }))
        })
    }

    async fn load_users_by(
        &self,
        column: &str,
        values: &[String],
        into: &mut HashMap<String, StoredUser>,
    ) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        if let Some(fast) = self.fast_for(values.len()) {
            let sql = crate::sqlite_reads::numbered(&users_by_keys_sql(column, values.len()));
            let params =
                std::iter::once(self.org.as_str()).chain(values.iter().map(String::as_str));
            return fast.for_each_row(&sql, params, |row| {
                let user = user_from_row(row)?;
                into.entry(user.id.as_str().to_owned()).or_insert(user);
                Ok(())
            });
        }
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let sql = users_by_keys_sql(column, chunk.len());
            let mut args: Vec<Arg> = vec![self.org.as_str().into()];
            args.extend(chunk.iter().map(|v| Arg::from(v.as_str())));
            for row in query(self.store.db.backend, sql, args)
                .fetch_all(&self.store.db.read)
                .await?
            {
                let user = user_from_row(&row)?;
                into.entry(user.id.as_str().to_owned()).or_insert(user);
            }
        }
        Ok(())
    }

    /// Which of `values` are held by users of other organisations. Only the values come back:
    /// nothing about the other organisation.
    async fn foreign_keys(&self, column: &str, values: &[&str]) -> Result<HashSet<String>> {
        let mut held = HashSet::new();
        if values.is_empty() {
            return Ok(held);
        }
        if let Some(fast) = self.fast_for(values.len()) {
            let sql = crate::sqlite_reads::numbered(&foreign_keys_sql(column, values.len()));
            let params = std::iter::once(self.org.as_str()).chain(values.iter().copied());
            fast.for_each_row(&sql, params, |row| {
                held.insert(row.get::<_, String>(0).map_err(failed)?);
                Ok(())
            })?;
            return Ok(held);
        }
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let sql = foreign_keys_sql(column, chunk.len());
            let mut args: Vec<Arg> = vec![self.org.as_str().into()];
            args.extend(chunk.iter().map(|v| Arg::from(*v)));
            for row in query(self.store.db.backend, sql, args)
                .fetch_all(&self.store.db.read)
                .await?
            {
                held.insert(get::<String>(&row, "v")?);
            }
        }
        Ok(held)
    }

    /// The direct SQLite path, for the few keys of a SCIM request: a handful of index probes
    /// cost less on the calling thread than on sqlx's worker. Files' thousands of keys stay on
    /// sqlx, off the async threads.
    fn fast_for(&self, keys: usize) -> Option<&crate::sqlite_reads::PointReads> {
        const INLINE_KEYS: usize = 16;
        self.store
            .point_reads
            .as_deref()
            .filter(|_| keys <= INLINE_KEYS)
    }

    /// One user of this organisation.
    pub async fn user(&self, id: &UserId) -> Result<Option<StoredUser>> {
        let row = query(
            self.store.db.backend,
            by_unique_key_sql("id"),
            vec![self.org.as_str().into(), id.as_str().into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users of this organisation in creation order, a page at a time.
    pub async fn users(&self, offset: u64, limit: u64) -> Result<Vec<StoredUser>> {
        let rows = query(self.store.db.backend,
            format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"),
            vec![
                self.org.as_str().into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
                i64::try_from(offset).unwrap_or(i64::MAX).into(),
            ],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn user_count(&self) -> Result<u64> {
        let row = query(
            self.store.db.backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1",
            vec![self.org.as_str().into()],
        )
        .fetch_one(&self.store.db.read)
        .await?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    /// Create a user that no source manages (as an admin would). Used by tests and, later, the
    /// admin panel.
    pub async fn insert_unmanaged_user(&self, user: &StoredUser) -> Result<()> {
        let mut tx = self.store.db.write.begin().await?;
        insert_users(
            self.store.db.backend,
            &mut tx,
            &self.org,
            &[user],
            self.store.now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl OrgStore {
    /// Tell `cache` the phone numbers (mobile and work) that the users `config` manages hold
    /// in international form, so that a file of that configuration repeating them skips their
    /// validation.
    pub async fn known_phones(
        &self,
        config: &ConfigId,
        cache: &mut rollcall_domain::values::PhoneCache,
    ) -> Result<()> {
        const SQL: &str = "SELECT phone_mobile, phone_mobile_e164 FROM users \
            WHERE org_id = $1 AND managed_by = $2 AND phone_mobile LIKE '+%' \
            UNION ALL SELECT phone_work, phone_work_e164 FROM users \
            WHERE org_id = $1 AND managed_by = $2 AND phone_work LIKE '+%'";
        if let Some(bulk) = &self.store.direct {
            let (org, config) = (self.org.as_str(), config.as_str());
            let sql = SQL.replace("$1", "?1").replace("$2", "?2");
            return crate::sqlite_direct::blocking(|| {
                bulk.pairs(&sql, [org, config], |v, e| cache.know(v, e))
            });
        }
        let rows = query(
            self.store.db.backend,
            SQL,
            vec![self.org.as_str().into(), config.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        for row in rows {
            let value: Option<String> = sqlx::Row::try_get(&row, 0).map_err(StoreError::from)?;
            let e164: Option<String> = sqlx::Row::try_get(&row, 1).map_err(StoreError::from)?;
            if let (Some(v), Some(e)) = (value, e164) {
                cache.know(&v, &e);
            }
        }
        Ok(())
    }
}

/// The columns [`OrgStore::fill_sieve`] reads, in [`sieve_view`]'s order.
pub(crate) const SIEVE_SQL: &str = "SELECT u.managed_by, u.external_id, u.username, u.employee_id, u.first_name, \
    u.second_name, u.email, u.email_from_source, u.phone_mobile, u.phone_mobile_e164, u.phone_mobile_from_source, \
    u.phone_work, u.phone_work_e164, u.manager_id, m.external_id, u.job_title, u.location, u.department, \
    u.company, u.description, u.active, u.start_employment_date, u.end_employment_date, u.custom_fields, \
    u.middle_name, u.display_name \
    FROM users u LEFT JOIN users m ON m.id = u.manager_id AND m.org_id = u.org_id \
    WHERE u.org_id = $1 AND u.managed_by = $2 AND u.external_id IS NOT NULL";

/// [`OrgStore::fill_sieve`] on SQLite: the users in two halves by rowid, each read on its own
/// connection and thread (reading and packing a million users took two seconds on one).
fn fill_in_halves(
    bulk: &crate::sqlite_direct::DirectSqlite,
    org: &str,
    config: &str,
    sieve: &mut Sieve,
) -> Result<()> {
    let bound = |sql: &str| -> Result<Option<i64>> {
        let mut found = None;
        bulk.rows(sql, [org, config], |row| {
            found = row.get(0).map_err(crate::failed)?;
            Ok(())
        })?;
        Ok(found)
    };
    let range = "FROM users WHERE org_id = ?1 AND managed_by = ?2";
    let (Some(low), Some(high)) = (
        bound(&format!("SELECT MIN(rowid) {range}"))?,
        bound(&format!("SELECT MAX(rowid) {range}"))?,
    ) else {
        return Ok(());
    };
    let middle = low + (high - low) / 2;
    let half = |from: i64, to: i64| {
        format!(
            "{} AND u.rowid BETWEEN {from} AND {to}",
            SIEVE_SQL.replace("$1", "?1").replace("$2", "?2")
        )
    };
    // Each user is read once (rowids do not change); a user written between the two reads
    // may be missed, and is then planned as any row the sieve does not take.
    let mut part = sieve.part();
    std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            bulk.rows(&half(middle + 1, high), [org, config], |row| {
                sieve_view(&mut part, row)
            })
        });
        let first = bulk.rows(&half(low, middle), [org, config], |row| {
            sieve_view(sieve, row)
        });
        let second = second.join().unwrap_or(Err(StoreError::Database));
        first.and(second)
    })?;
    sieve.absorb(part);
    Ok(())
}

/// A row of [`SIEVE_SQL`], its columns by position.
trait SieveRow {
    fn text(&self, i: usize) -> Result<Option<&str>>;
    fn int(&self, i: usize) -> Result<i64>;
}

impl SieveRow for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        crate::sqlite_direct::text_at(self, i)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.get(i).map_err(crate::failed)
    }
}

/// A row of [`SIEVE_SQL`] read through sqlx.
struct OwnedSieveRow {
    texts: Vec<Option<String>>,
    ints: [i64; 3],
}

impl SieveRow for OwnedSieveRow {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.texts.get(i).and_then(|t| t.as_deref()))
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(match i {
            7 => self.ints[0],
            10 => self.ints[1],
            _ => self.ints[2],
        })
    }
}

/// Hand one row of [`SIEVE_SQL`] to the sieve.
fn sieve_view(sieve: &mut Sieve, row: &impl SieveRow) -> Result<()> {
    let text = |i: usize| row.text(i);
    let int = |i: usize| row.int(i);
    let custom_fields: BTreeMap<String, String> = match text(23)? {
        Some(json) if sieve.reads_custom_fields() => {
            serde_json::from_str(json).map_err(|_| corrupt("custom_fields"))?
        }
        _ => BTreeMap::new(),
    };
    let manager = match (text(13)?, text(14)?) {
        (None, _) => StoredManager::None,
        (Some(_), Some(ext)) => StoredManager::External(ext),
        (Some(_), None) => StoredManager::Unnamed,
    };
    sieve.add(&StoredView {
        managed_by: text(0)?,
        external_id: text(1)?.ok_or_else(|| corrupt("external_id"))?,
        username: text(2)?.ok_or_else(|| corrupt("username"))?,
        employee_id: text(3)?,
        first_name: text(4)?,
        second_name: text(5)?,
        middle_name: text(24)?,
        display_name: text(25)?,
        email: text(6)?,
        email_from_source: int(7)? != 0,
        phone_mobile: text(8)?,
        phone_mobile_e164: text(9)?,
        phone_mobile_from_source: int(10)? != 0,
        phone_work: text(11)?,
        phone_work_e164: text(12)?,
        manager,
        job_title: text(15)?,
        location: text(16)?,
        department: text(17)?,
        company: text(18)?,
        description: text(19)?,
        active: int(20)? != 0,
        start_employment_date: text(21)?,
        end_employment_date: text(22)?,
        custom_fields: &custom_fields,
    });
    Ok(())
}

impl OrgStore {
    /// Give `sieve` the users `config` manages, so that a file of that configuration can be
    /// read without planning the rows that leave them as they are.
    pub async fn fill_sieve(&self, config: &ConfigId, sieve: &mut Sieve) -> Result<()> {
        if let Some(bulk) = &self.store.direct {
            let (org, config) = (self.org.as_str(), config.as_str());
            return crate::sqlite_direct::blocking(|| fill_in_halves(bulk, org, config, sieve));
        }
        let rows = query(
            self.store.db.backend,
            SIEVE_SQL,
            vec![self.org.as_str().into(), config.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        sieve.reserve(rows.len());
        for row in rows {
            let texts: Vec<Option<String>> = (0..24)
                .map(|i| match i {
                    7 | 10 | 20 => Ok(None),
                    _ => sqlx::Row::try_get::<Option<String>, _>(&row, i).map_err(StoreError::from),
                })
                .collect::<Result<_>>()?;
            let int = |i: usize| sqlx::Row::try_get::<i64, _>(&row, i).map_err(StoreError::from);
            let owned = OwnedSieveRow {
                texts,
                ints: [int(7)?, int(10)?, int(20)?],
            };
            sieve_view(sieve, &owned)?;
        }
        Ok(())
    }
}
