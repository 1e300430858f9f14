//! What the admin panel and its API read and write: sign-in sessions, and the filtered,
//! paged list of runs of the User Provisioning page.

use std::borrow::Cow;
use std::time::Duration;

use rollcall_domain::config::Role;
use rollcall_domain::plan::Write;
use rollcall_domain::run_filter::{Bounds, RunFilter, Sort};
use rollcall_domain::{OrgId, StoredUser, UserId};

use crate::credentials;
use crate::db::{Arg, flag, get, query};
use crate::operator::Admin;
use crate::runs::{RUN_COLUMNS, RunRecord, run_from_row};
use crate::user_columns::{USER_COLUMNS, user_from_row};
use crate::users::{UserWriteRef, write_users};
use crate::{OrgStore, Result, Store, StoreError};

/// The trigger of Bulk Update runs, whose logs live on the Bulk Update page, not on User
/// Provisioning (SPEC §6).
const BULK_UPDATE_TRIGGER: &str = rollcall_domain::Trigger::Bulk.code();

/// A signed-in admin.
#[derive(Clone, Debug)]
pub struct Session {
    pub admin: Admin,
    /// Whether the admin's organisation has provisioning enabled.
    pub provisioning: bool,
    /// The token state-changing requests must echo (CSRF protection).
    pub csrf: String,
}

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out this long after signing in, whatever the activity.
    pub absolute: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Start a session for an admin whose password was checked; returns the cookie token and
    /// the CSRF token.
    pub async fn create_session(&self, admin: &Admin) -> Result<(String, String)> {
        let token = credentials::new_token().map_err(|_| StoreError::Database)?;
        let csrf = credentials::new_token().map_err(|_| StoreError::Database)?;
        let now = self.now_ms();
        query(
            self.db.backend,
            "INSERT INTO admin_sessions (digest, admin_id, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                credentials::token_digest(&token).into(),
                admin.id.as_str().into(),
                csrf.as_str().into(),
                now.into(),
                now.into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok((token, csrf))
    }

    /// The session a cookie token names, if it is still valid; its activity is recorded (at
    /// most once a minute, to spare the writer).
    pub async fn session(&self, token: &str, limits: SessionLimits) -> Result<Option<Session>> {
        let digest = credentials::token_digest(token);
        let row = query(
            self.db.backend,
            "SELECT s.csrf, s.created_at, s.last_seen_at, a.id, a.org_id, a.email, a.role, a.sync_access, \
             o.provisioning FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             JOIN organisations o ON o.id = a.org_id WHERE s.digest = $1",
            vec![digest.as_str().into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = self.now_ms();
        let created: i64 = get(&row, "created_at")?;
        let seen: i64 = get(&row, "last_seen_at")?;
        if now.saturating_sub(seen) > ms(limits.idle)
            || now.saturating_sub(created) > ms(limits.absolute)
        {
            self.delete_session(token).await?;
            return Ok(None);
        }
        if now.saturating_sub(seen) > 60_000 {
            query(
                self.db.backend,
                "UPDATE admin_sessions SET last_seen_at = $1 WHERE digest = $2",
                vec![now.into(), digest.into()],
            )
            .execute(&self.db.write)
            .await?;
        }
        let role: String = get(&row, "role")?;
        Ok(Some(Session {
            admin: Admin {
                id: get(&row, "id")?,
                org_id: OrgId::new(get::<String>(&row, "org_id")?),
                email: get(&row, "email")?,
                role: Role::parse(&role).ok_or(StoreError::Database)?,
                sync_access: flag(&row, "sync_access")?,
            },
            provisioning: flag(&row, "provisioning")?,
            csrf: get(&row, "csrf")?,
        }))
    }

    /// Sign out.
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        query(
            self.db.backend,
            "DELETE FROM admin_sessions WHERE digest = $1",
            vec![credentials::token_digest(token).into()],
        )
        .execute(&self.db.write)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Issue an operator token (shown once); `name` says whose it is.
    pub async fn create_operator_token(&self, name: &str) -> Result<String> {
        let token = credentials::new_token().map_err(|_| StoreError::Database)?;
        query(
            self.db.backend,
            "INSERT INTO operator_tokens (digest, name, created_at) VALUES ($1, $2, $3)",
            vec![
                credentials::token_digest(&token).into(),
                name.into(),
                self.now_ms().into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(token)
    }

    /// The name of the live operator token `token`, if it is one; its use is recorded.
    pub async fn authenticate_operator(&self, token: &str) -> Result<Option<String>> {
        let digest = credentials::token_digest(token);
        let done = query(
            self.db.backend,
            "UPDATE operator_tokens SET last_used_at = $1 WHERE digest = $2 AND revoked_at IS NULL",
            vec![self.now_ms().into(), digest.as_str().into()],
        )
        .execute(&self.db.write)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = query(
            self.db.backend,
            "SELECT name FROM operator_tokens WHERE digest = $1",
            vec![digest.as_str().into()],
        )
        .fetch_optional(&self.db.write)
        .await?;
        row.map(|row| get::<String>(&row, "name")).transpose()
    }

    /// Revoke an operator token given the token itself.
    pub async fn revoke_operator_token(&self, token: &str) -> Result<bool> {
        let done = query(
            self.db.backend,
            "UPDATE operator_tokens SET revoked_at = $1 WHERE digest = $2 AND revoked_at IS NULL",
            vec![
                self.now_ms().into(),
                credentials::token_digest(token).into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Where a page of runs starts: after the run with this time and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    pub queued_at_ms: i64,
    pub id: String,
}

impl RunCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.queued_at_ms, self.id)
    }

    pub fn decode(text: &str) -> Option<RunCursor> {
        let (ms, id) = text.split_once('.')?;
        let ok_id = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        ok_id.then_some(RunCursor {
            queued_at_ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// One page of runs.
#[derive(Clone, Debug)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    /// Runs matching the filters, on every page.
    pub total: u64,
    /// Where the next page starts, when there is one.
    pub next: Option<RunCursor>,
}

impl OrgStore {
    /// The runs of the User Provisioning page: filtered, sorted, a page at a time (keyset
    /// paging, so a late page costs what the first does).
    pub async fn run_page(
        &self,
        filter: &RunFilter,
        bounds: Bounds,
        after: Option<&RunCursor>,
        limit: u32,
    ) -> Result<RunPage> {
        // The trigger is spelled as in the partial indexes of migration 0005, so that both
        // databases can prove those indexes apply.
        let mut conditions = vec![
            "r.org_id = $1".to_owned(),
            format!("r.trigger_kind <> '{BULK_UPDATE_TRIGGER}'"),
        ];
        let mut args: Vec<Arg> = vec![self.org.as_str().into()];
        let bind = |args: &mut Vec<Arg>, value: Arg| {
            args.push(value);
            format!("${}", args.len())
        };
        if let Some(from) = bounds.from_ms {
            let p = bind(&mut args, from.into());
            conditions.push(format!("r.queued_at >= {p}"));
        }
        if let Some(to) = bounds.to_ms {
            let p = bind(&mut args, to.into());
            conditions.push(format!("r.queued_at <= {p}"));
        }
        if let Some(config) = &filter.configuration {
            let p = bind(&mut args, config.as_str().into());
            conditions.push(format!("r.config_id = {p}"));
        }
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| bind(&mut args, s.code().into()))
                .collect();
            conditions.push(format!("r.status IN ({})", list.join(", ")));
        }
        let filtered = conditions.join(" AND ");
        let total_row = query(
            self.store.db.backend,
            format!("SELECT COUNT(*) AS n FROM sync_runs r WHERE {filtered}"),
            args.clone(),
        )
        .fetch_one(&self.store.db.read)
        .await?;
        let total = u64::try_from(get::<i64>(&total_row, "n")?).unwrap_or(0);

        let (order, before) = match filter.sort {
            Sort::NewestFirst => ("DESC", "<"),
            Sort::OldestFirst => ("ASC", ">"),
        };
        let mut page_conditions = filtered;
        if let Some(cursor) = after {
            let t = bind(&mut args, cursor.queued_at_ms.into());
            let id = bind(&mut args, cursor.id.as_str().into());
            page_conditions.push_str(&format!(
                " AND (r.queued_at {before} {t} OR (r.queued_at = {t} AND r.id {before} {id}))"
            ));
        }
        let n = bind(&mut args, i64::from(limit).saturating_add(1).into());
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE {page_conditions} ORDER BY r.queued_at {order}, r.id {order} LIMIT {n}"
            ),
            args,
        )
        .fetch_all(&self.store.db.read)
        .await?;
        let mut runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        let next = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            runs.last().map(|r| RunCursor {
                queued_at_ms: r.queued_at.timestamp_millis(),
                id: r.id.to_string(),
            })
        } else {
            None
        };
        Ok(RunPage { runs, total, next })
    }
}

/// One entry of a user's audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub admin_email: String,
    pub action: String,
    pub changed_fields: String,
    pub at_ms: i64,
}

/// One page of the users list.
#[derive(Clone, Debug)]
pub struct UserPage {
    pub users: Vec<StoredUser>,
    /// The username (normalised) and id the next page starts after.
    pub next: Option<(String, String)>,
}

impl OrgStore {
    /// The organisation's users by username, a page at a time; `search` matches username,
    /// email and name, case-insensitively.
    pub async fn user_page(
        &self,
        search: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<UserPage> {
        let mut sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0");
        let mut args: Vec<Arg> = vec![self.org.as_str().into()];
        let search = search.trim().to_lowercase();
        if !search.is_empty() {
            let escaped = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            args.push(format!("%{escaped}%").into());
            let n = args.len();
            sql.push_str(&format!(
                " AND (username_norm LIKE ${n} ESCAPE '\\' OR email_norm LIKE ${n} ESCAPE '\\' \
                 OR LOWER(COALESCE(first_name, '') || ' ' || COALESCE(second_name, '')) LIKE ${n} ESCAPE '\\')"
            ));
        }
        if let Some((name, id)) = after {
            args.push(name.into());
            args.push(id.into());
            let (a, b) = (args.len() - 1, args.len());
            sql.push_str(&format!(
                " AND (username_norm > ${a} OR (username_norm = ${a} AND id > ${b}))"
            ));
        }
        args.push(i64::from(limit).saturating_add(1).into());
        sql.push_str(&format!(
            " ORDER BY username_norm, id LIMIT ${}",
            args.len()
        ));
        let rows = query(self.store.db.backend, sql, args)
            .fetch_all(&self.store.db.read)
            .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let next = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| {
                (
                    u.profile
                        .username
                        .as_ref()
                        .map(|n| n.normalized())
                        .unwrap_or_default(),
                    u.id.to_string(),
                )
            })
        } else {
            None
        };
        Ok(UserPage { users, next })
    }

    /// Save an admin's edit of a user as the plan wrote it, and audit it with the fields that
    /// change, in one transaction. A concurrent change of the user makes this `StaleWrite`, and
    /// a value another user took meanwhile `Conflict` (plan again to learn which).
    pub async fn save_admin_edit(
        &self,
        admin_id: &str,
        write: &Write,
        changed: &[Cow<'static, str>],
    ) -> Result<()> {
        if write.expected_version.is_none() {
            return Err(StoreError::NotFound(format!("user {}", write.user.id)));
        }
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        write_users(
            self.store.db.backend,
            &mut tx,
            &self.org,
            vec![UserWriteRef::from(write)],
            now,
        )
        .await?;
        self.audit_edit(
            &mut tx,
            admin_id,
            write.user.id.as_str(),
            &changed.join(","),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's audit trail, newest first.
    pub async fn user_audit(&self, user: &UserId) -> Result<Vec<AuditEntry>> {
        let rows = query(
            self.store.db.backend,
            "SELECT a.email, t.action, t.changed_fields, t.at FROM admin_audit t \
             JOIN admins a ON a.id = t.admin_id WHERE t.org_id = $1 AND t.user_id = $2 \
             ORDER BY t.at DESC, t.id DESC",
            vec![self.org.as_str().into(), user.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    admin_email: get(row, "email")?,
                    action: get(row, "action")?,
                    changed_fields: get(row, "changed_fields")?,
                    at_ms: get(row, "at")?,
                })
            })
            .collect()
    }
}

impl OrgStore {
    /// The organisation's Bulk Update configuration, made on first use.
    pub async fn bulk_update_config(&self) -> Result<crate::SourceConfig> {
        use rollcall_domain::config::{ConfigKind, Mode};
        if let Some(found) = self
            .configs()
            .await?
            .into_iter()
            .find(|c| c.kind == ConfigKind::BulkUpdate)
        {
            return Ok(found);
        }
        let made = self
            .create_config(crate::NewConfig {
                name: "Bulk Update".into(),
                kind: ConfigKind::BulkUpdate,
                mode: Mode::Active,
                mapping: None,
                deactivation_threshold: None,
                notify_email: None,
                phone_region: None,
                sftp_user: None,
                sftp_password_hash: None,
                sftp_keys: Vec::new(),
            })
            .await;
        match made {
            Ok(config) => Ok(config),
            // Another request made it meanwhile.
            Err(StoreError::Conflict(c)) if c.key == crate::UniqueKey::ConfigName => self
                .configs()
                .await?
                .into_iter()
                .find(|c| c.kind == ConfigKind::BulkUpdate)
                .ok_or(StoreError::Database),
            Err(e) => Err(e),
        }
    }

    /// The users with these usernames (compared case-insensitively), by normalised username.
    pub async fn users_by_username(
        &self,
        usernames: &[String],
    ) -> Result<std::collections::HashMap<String, StoredUser>> {
        let mut found = std::collections::HashMap::new();
        let wanted: Vec<String> = usernames.iter().map(|u| u.trim().to_lowercase()).collect();
        for chunk in wanted.chunks(500) {
            let mut args: Vec<Arg> = vec![self.org.as_str().into()];
            args.extend(chunk.iter().map(|u| Arg::from(u.as_str())));
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0 AND username_norm IN ({})",
                crate::db::placeholders(2, chunk.len())
            );
            let rows = query(self.store.db.backend, sql, args)
                .fetch_all(&self.store.db.read)
                .await?;
            for row in &rows {
                let user = user_from_row(row)?;
                let key = user
                    .profile
                    .username
                    .as_ref()
                    .map(|n| n.normalized())
                    .unwrap_or_default();
                found.insert(key, user);
            }
        }
        Ok(found)
    }

    /// The organisation's Bulk Update runs, newest first.
    pub async fn bulk_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE r.org_id = $1 AND r.trigger_kind = '{BULK_UPDATE_TRIGGER}' \
                 ORDER BY r.queued_at DESC, r.id DESC LIMIT $2"
            ),
            vec![self.org.as_str().into(), i64::from(limit).into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}
