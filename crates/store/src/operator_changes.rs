//! What operators create and change: organisations, configurations, admins, SCIM tokens and
//! unmanaged users created, an organisation renamed or switched on, a configuration changed,
//! disabled or deleted, an admin's role, access or password changed, an admin disabled. Each
//! is written with its record in `operator_changes` (who, when, which fields from what to
//! what) in one transaction, so no change is without its who and when.

use chrono::{DateTime, Utc};
use rollcall_domain::config::{DeactivationThreshold, Mode, Role};
use rollcall_domain::mapping::Mapping;
use rollcall_domain::values::PhoneRegion;
use rollcall_domain::{ConfigId, OrgId};
use sqlx::{Any, Transaction};

use crate::db::{Arg, flag, get, query, time};
use crate::operator::{
    Admin, CONFIG_COLUMNS, Organisation, SftpCredentials, SourceConfig, config_from_row,
    mapping_to_json,
};
use crate::{Conflict, OrgStore, Result, Store, StoreError, UniqueKey, new_id};

/// What a change was made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Organisation,
    Configuration,
    Admin,
    /// A SCIM token (its id: the token itself is never kept).
    Token,
    /// A user no source manages, created by an operator.
    User,
}

impl Subject {
    pub fn code(self) -> &'static str {
        match self {
            Subject::Organisation => "organisation",
            Subject::Configuration => "configuration",
            Subject::Admin => "admin",
            Subject::Token => "token",
            Subject::User => "user",
        }
    }

    fn parse(code: &str) -> Option<Subject> {
        [
            Subject::Organisation,
            Subject::Configuration,
            Subject::Admin,
            Subject::Token,
            Subject::User,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeAction {
    Created,
    Updated,
    Disabled,
    Enabled,
    /// A configuration deleted (its users released), a token revoked.
    Deleted,
}

impl ChangeAction {
    pub fn code(self) -> &'static str {
        match self {
            ChangeAction::Created => "created",
            ChangeAction::Updated => "updated",
            ChangeAction::Disabled => "disabled",
            ChangeAction::Enabled => "enabled",
            ChangeAction::Deleted => "deleted",
        }
    }

    fn parse(code: &str) -> Option<ChangeAction> {
        [
            ChangeAction::Created,
            ChangeAction::Updated,
            ChangeAction::Disabled,
            ChangeAction::Enabled,
            ChangeAction::Deleted,
        ]
        .into_iter()
        .find(|a| a.code() == code)
    }
}

/// One field's change. A secret's values are never kept: both read `(secret)`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl FieldChange {
    fn of<T: PartialEq + ToString>(field: &str, before: T, after: &Option<T>) -> Option<Self> {
        let after = after.as_ref().filter(|a| **a != before)?;
        Some(FieldChange {
            field: field.to_owned(),
            before: Some(before.to_string()),
            after: Some(after.to_string()),
        })
    }

    /// A field that may be set or empty (`None`: unchanged; `Some(None)`: emptied).
    fn optional<T: PartialEq + ToString>(
        field: &str,
        before: Option<T>,
        after: &Option<Option<T>>,
    ) -> Option<Self> {
        let after = after.as_ref().filter(|a| **a != before)?;
        Some(FieldChange {
            field: field.to_owned(),
            before: before.map(|b| b.to_string()),
            after: after.as_ref().map(ToString::to_string),
        })
    }

    /// A value something was created with (or, `after` `None`, what was removed).
    pub(crate) fn set(field: &str, value: Option<impl ToString>) -> Option<FieldChange> {
        Some(FieldChange {
            field: field.to_owned(),
            before: None,
            after: Some(value?.to_string()),
        })
    }

    fn secret(field: &str) -> FieldChange {
        FieldChange {
            field: field.to_owned(),
            before: Some("(secret)".into()),
            after: Some("(secret)".into()),
        }
    }
}

/// A recorded change.
#[derive(Clone, Debug)]
pub struct ChangeRecord {
    /// Who made it: `operator via CLI`, or an operator token's name.
    pub by: String,
    pub at: DateTime<Utc>,
    pub subject: Subject,
    /// The organisation's or admin's id.
    pub subject_id: String,
    pub action: ChangeAction,
    pub fields: Vec<FieldChange>,
}

/// What changes in an organisation; `None` keeps what it has.
#[derive(Clone, Debug, Default)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub provisioning: Option<bool>,
}

/// What changes in an admin; `None` keeps what it has.
#[derive(Clone, Debug, Default)]
pub struct AdminUpdate {
    pub role: Option<Role>,
    pub sync_access: Option<bool>,
    pub password_hash: Option<String>,
    /// `Some(true)` disables the admin and ends their sessions.
    pub disabled: Option<bool>,
}

/// What changes in a configuration; `None` keeps what it has, `Some(None)` empties an
/// optional setting.
#[derive(Clone, Debug, Default)]
pub struct ConfigUpdate {
    pub name: Option<String>,
    pub mode: Option<Mode>,
    pub mapping: Option<Mapping>,
    pub deactivation_threshold: Option<Option<DeactivationThreshold>>,
    pub notify_email: Option<Option<String>>,
    pub phone_region: Option<Option<PhoneRegion>>,
    pub sftp: SftpCredentials,
}

/// An admin as the operator lists them.
#[derive(Clone, Debug)]
pub struct AdminRecord {
    pub admin: Admin,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

const ADMIN_COLUMNS: &str = "id, org_id, email, role, sync_access, created_at, disabled_at";

fn admin_from_row(row: &sqlx::any::AnyRow) -> Result<AdminRecord> {
    let role: String = get(row, "role")?;
    Ok(AdminRecord {
        admin: Admin {
            id: get(row, "id")?,
            org_id: OrgId::new(get::<String>(row, "org_id")?),
            email: get(row, "email")?,
            role: Role::parse(&role).ok_or(StoreError::Database)?,
            sync_access: flag(row, "sync_access")?,
        },
        created_at: time(get(row, "created_at")?),
        disabled_at: get::<Option<i64>>(row, "disabled_at")?.map(time),
    })
}

impl Store {
    /// Every organisation, by name.
    pub async fn orgs(&self) -> Result<Vec<Organisation>> {
        let rows = query(
            self.db.backend,
            "SELECT id, name, provisioning FROM organisations ORDER BY name, id",
            vec![],
        )
        .fetch_all(&self.db.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Organisation {
                    id: OrgId::new(get::<String>(row, "id")?),
                    name: get(row, "name")?,
                    provisioning: flag(row, "provisioning")?,
                })
            })
            .collect()
    }
}

impl OrgStore {
    /// Rename the organisation or switch provisioning, recording who did it. A change to what
    /// it already is records nothing.
    pub async fn update_org(&self, by: &str, update: OrgUpdate) -> Result<Organisation> {
        let before = self.organisation().await?;
        let fields: Vec<FieldChange> = [
            FieldChange::of("name", before.name.clone(), &update.name),
            FieldChange::of("provisioning", before.provisioning, &update.provisioning),
        ]
        .into_iter()
        .flatten()
        .collect();
        let after = Organisation {
            id: before.id.clone(),
            name: update.name.unwrap_or(before.name),
            provisioning: update.provisioning.unwrap_or(before.provisioning),
        };
        if fields.is_empty() {
            return Ok(after);
        }
        let backend = self.store.db.backend;
        let mut tx = self.store.db.write.begin().await?;
        query(
            backend,
            "UPDATE organisations SET name = $1, provisioning = $2 WHERE id = $3",
            vec![
                after.name.as_str().into(),
                after.provisioning.into(),
                self.org.as_str().into(),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(Conflict::new(UniqueKey::OrgName, &after.name))
            }
            other => other,
        })?;
        self.record_change(
            &mut tx,
            by,
            (Subject::Organisation, self.org.as_str()),
            ChangeAction::Updated,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Change a configuration, recording who did it. A new mapping is read by the next run;
    /// a run already going keeps the one it started with.
    pub async fn update_config(
        &self,
        by: &str,
        config: &ConfigId,
        update: ConfigUpdate,
    ) -> Result<SourceConfig> {
        let backend = self.store.db.backend;
        let mut tx = self.store.db.write.begin().await?;
        let row = query(
            backend,
            format!(
                "SELECT {CONFIG_COLUMNS}, sftp_keys FROM source_configs \
                 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL"
            ),
            vec![config.as_str().into(), self.org.as_str().into()],
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("configuration {config}")));
        };
        let before = config_from_row(&row)?;
        let keys_before = get::<Option<String>>(&row, "sftp_keys")?
            .map(|k| k.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0);
        let code = |t: &PhoneRegion| t.code().to_owned();
        let mut fields: Vec<FieldChange> = [
            FieldChange::of("name", before.name.clone(), &update.name),
            FieldChange::of("mode", before.mode.code(), &update.mode.map(Mode::code)),
            FieldChange::of(
                "mapping",
                before
                    .mapping
                    .as_ref()
                    .map(mapping_to_json)
                    .unwrap_or_default(),
                &update.mapping.as_ref().map(mapping_to_json),
            ),
            FieldChange::optional(
                "deactivation_threshold",
                before.deactivation_threshold,
                &update.deactivation_threshold,
            ),
            FieldChange::optional("notify", before.notify_email.clone(), &update.notify_email),
            FieldChange::optional(
                "phone_region",
                before.phone_region.as_ref().map(code),
                &update.phone_region.as_ref().map(|r| r.as_ref().map(code)),
            ),
            FieldChange::optional(
                "sftp_user",
                before.sftp_user.clone(),
                &update.sftp.user.clone().map(Some),
            ),
            FieldChange::of(
                "sftp_keys",
                keys_before,
                &update.sftp.keys.as_ref().map(Vec::len),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if update.sftp.password_hash.is_some() {
            fields.push(FieldChange::secret("sftp_password"));
        }
        if fields.is_empty() {
            return Ok(before);
        }
        let mut sets: Vec<(&str, Arg)> = Vec::new();
        if let Some(name) = &update.name {
            sets.push(("name", name.as_str().into()));
        }
        if let Some(mode) = update.mode {
            sets.push(("mode", mode.code().into()));
        }
        if let Some(mapping) = &update.mapping {
            sets.push(("mapping", mapping_to_json(mapping).into()));
        }
        if let Some(threshold) = &update.deactivation_threshold {
            sets.push((
                "deactivation_threshold",
                threshold.map(|t| t.to_string()).into(),
            ));
        }
        if let Some(notify) = &update.notify_email {
            sets.push(("notify_email", notify.clone().into()));
        }
        if let Some(region) = &update.phone_region {
            sets.push(("phone_region", region.as_ref().map(code).into()));
        }
        if let Some(user) = &update.sftp.user {
            sets.push(("sftp_user", user.as_str().into()));
        }
        if let Some(hash) = &update.sftp.password_hash {
            sets.push(("sftp_password_hash", hash.clone().into()));
        }
        if let Some(keys) = &update.sftp.keys {
            sets.push((
                "sftp_keys",
                (!keys.is_empty()).then(|| keys.join("\n")).into(),
            ));
        }
        let n = sets.len();
        let assignments: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
            .collect();
        let mut args: Vec<Arg> = sets.into_iter().map(|(_, a)| a).collect();
        args.push(config.as_str().into());
        query(
            backend,
            format!(
                "UPDATE source_configs SET {} WHERE id = ${}",
                assignments.join(", "),
                n + 1
            ),
            args,
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(c) if c.key == UniqueKey::SftpUser => {
                StoreError::Conflict(Conflict::new(
                    UniqueKey::SftpUser,
                    update.sftp.user.clone().unwrap_or_default(),
                ))
            }
            StoreError::Conflict(c) if c.key == UniqueKey::ConfigName => {
                StoreError::Conflict(Conflict::new(
                    UniqueKey::ConfigName,
                    update.name.clone().unwrap_or_default(),
                ))
            }
            other => other,
        })?;
        self.record_change(
            &mut tx,
            by,
            (Subject::Configuration, config.as_str()),
            ChangeAction::Updated,
            &fields,
        )
        .await?;
        tx.commit().await?;
        self.config(config.as_str()).await
    }

    /// Disable a configuration (it starts no run from any source, and its queued runs are
    /// cancelled) or enable it again, recording who did it.
    pub async fn set_config_disabled(
        &self,
        by: &str,
        config: &ConfigId,
        disabled: bool,
    ) -> Result<SourceConfig> {
        let backend = self.store.db.backend;
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        let (sql, mut args): (&str, Vec<Arg>) = if disabled {
            (
                "UPDATE source_configs SET disabled_at = $3 \
                 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL AND disabled_at IS NULL",
                vec![now.into()],
            )
        } else {
            (
                "UPDATE source_configs SET disabled_at = NULL \
                 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL AND disabled_at IS NOT NULL",
                vec![],
            )
        };
        args.insert(0, self.org.as_str().into());
        args.insert(0, config.as_str().into());
        let changed = query(backend, sql, args)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if changed {
            let mut fields = vec![FieldChange {
                field: "disabled".into(),
                before: Some((!disabled).to_string()),
                after: Some(disabled.to_string()),
            }];
            if disabled {
                let cancelled = cancel_queued(backend, &mut tx, self, config, now).await?;
                fields.extend(FieldChange::set("queued_runs_cancelled", Some(cancelled)));
            }
            let action = if disabled {
                ChangeAction::Disabled
            } else {
                ChangeAction::Enabled
            };
            self.record_change(
                &mut tx,
                by,
                (Subject::Configuration, config.as_str()),
                action,
                &fields,
            )
            .await?;
        }
        tx.commit().await?;
        self.config(config.as_str()).await
    }

    /// Delete a configuration: its SCIM tokens are revoked, its SFTP login removed, its queued
    /// runs cancelled and its name freed; its runs and their logs stay. The users it manages
    /// become unmanaged when `release_users`; otherwise a configuration that manages users is
    /// refused ([`StoreError::Manages`]), so that none is silently orphaned. A configuration
    /// with a run in progress is refused. Returns how many users were released.
    pub async fn delete_config(
        &self,
        by: &str,
        config: &ConfigId,
        release_users: bool,
    ) -> Result<u64> {
        let backend = self.store.db.backend;
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        let row = query(
            backend,
            "SELECT name FROM source_configs WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
            vec![config.as_str().into(), self.org.as_str().into()],
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("configuration {config}")));
        };
        let name: String = get(&row, "name")?;
        let in_progress = query(
            backend,
            "SELECT id FROM sync_runs WHERE config_id = $1 AND status = $2 LIMIT 1",
            vec![
                config.as_str().into(),
                rollcall_domain::RunStatus::InProgress.code().into(),
            ],
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(run) = in_progress {
            return Err(StoreError::InUse(format!(
                "run {} of configuration '{name}' is in progress: wait for it to end, then delete the configuration",
                get::<String>(&run, "id")?
            )));
        }
        let managed = query(
            backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND managed_by = $2",
            vec![self.org.as_str().into(), config.as_str().into()],
        )
        .fetch_one(&mut *tx)
        .await?;
        let managed = u64::try_from(get::<i64>(&managed, "n")?).unwrap_or(0);
        if managed > 0 && !release_users {
            return Err(StoreError::Manages {
                config: name,
                users: managed,
            });
        }
        if managed > 0 {
            // Each released user's version moves, so a write planned before sees the change.
            query(
                backend,
                "UPDATE users SET managed_by = NULL, version = version + 1, updated_at = $1 \
                 WHERE org_id = $2 AND managed_by = $3",
                vec![now.into(), self.org.as_str().into(), config.as_str().into()],
            )
            .execute(&mut *tx)
            .await?;
        }
        query(
            backend,
            "UPDATE scim_tokens SET revoked_at = $1 WHERE config_id = $2 AND revoked_at IS NULL",
            vec![now.into(), config.as_str().into()],
        )
        .execute(&mut *tx)
        .await?;
        let cancelled = cancel_queued(backend, &mut tx, self, config, now).await?;
        query(
            backend,
            "UPDATE source_configs SET deleted_at = $1, sftp_user = NULL, sftp_password_hash = NULL, \
             sftp_keys = NULL WHERE id = $2",
            vec![now.into(), config.as_str().into()],
        )
        .execute(&mut *tx)
        .await?;
        let fields: Vec<FieldChange> = [
            FieldChange::set("name", Some(&name)),
            FieldChange::set("users_released", Some(managed)),
            FieldChange::set("queued_runs_cancelled", Some(cancelled)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.record_change(
            &mut tx,
            by,
            (Subject::Configuration, config.as_str()),
            ChangeAction::Deleted,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(managed)
    }

    /// Create a user no source manages, as the plan wrote it, recording who did it and the
    /// fields it was given. A value another user took meanwhile is `Conflict` (plan again to
    /// learn which).
    pub async fn create_unmanaged_user(
        &self,
        by: &str,
        write: &rollcall_domain::plan::Write,
        fields: &[std::borrow::Cow<'static, str>],
    ) -> Result<()> {
        if write.expected_version.is_some() || write.user.managed_by.is_some() {
            return Err(StoreError::Database);
        }
        let now = self.store.now_ms();
        let mut tx = self.store.db.write.begin().await?;
        crate::users::write_users(
            self.store.db.backend,
            &mut tx,
            &self.org,
            vec![crate::users::UserWriteRef::from(write)],
            now,
        )
        .await?;
        let username = write.user.profile.username.as_ref().map(|u| u.as_str());
        let recorded: Vec<FieldChange> = [
            FieldChange::set("username", username),
            FieldChange::set("fields", Some(fields.join(","))),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.record_change(
            &mut tx,
            by,
            (Subject::User, write.user.id.as_str()),
            ChangeAction::Created,
            &recorded,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The organisation's admins, by email.
    pub async fn admins(&self) -> Result<Vec<AdminRecord>> {
        let rows = query(
            self.store.db.backend,
            format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE org_id = $1 ORDER BY email_norm"),
            vec![self.org.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(admin_from_row).collect()
    }

    /// Change one of the organisation's admins, found by email, recording who did it. A new
    /// password or disabling ends the admin's sessions in the same transaction.
    pub async fn update_admin(
        &self,
        by: &str,
        email: &str,
        update: AdminUpdate,
    ) -> Result<AdminRecord> {
        let backend = self.store.db.backend;
        let mut tx = self.store.db.write.begin().await?;
        let row = query(
            backend,
            format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE org_id = $1 AND email_norm = $2"),
            vec![self.org.as_str().into(), email.trim().to_lowercase().into()],
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "this organisation has no admin '{}': see `rollcall admin list`",
                email.trim()
            )));
        };
        let before = admin_from_row(&row)?;
        let was_disabled = before.disabled_at.is_some();
        let mut fields: Vec<FieldChange> = [
            FieldChange::of(
                "role",
                before.admin.role.code(),
                &update.role.map(Role::code),
            ),
            FieldChange::of("sync_access", before.admin.sync_access, &update.sync_access),
            FieldChange::of("disabled", was_disabled, &update.disabled),
        ]
        .into_iter()
        .flatten()
        .collect();
        if update.password_hash.is_some() {
            fields.push(FieldChange::secret("password"));
        }
        let now = self.store.now_ms();
        let disabled_at = match update.disabled {
            Some(true) if !was_disabled => Some(now),
            Some(false) => None,
            _ => before.disabled_at.map(|t| t.timestamp_millis()),
        };
        let after = AdminRecord {
            admin: Admin {
                role: update.role.unwrap_or(before.admin.role),
                sync_access: update.sync_access.unwrap_or(before.admin.sync_access),
                ..before.admin.clone()
            },
            created_at: before.created_at,
            disabled_at: disabled_at.map(time),
        };
        if fields.is_empty() {
            return Ok(after);
        }
        query(
            backend,
            "UPDATE admins SET role = $1, sync_access = $2, disabled_at = $3, \
             password_hash = COALESCE($4, password_hash) WHERE id = $5",
            vec![
                after.admin.role.code().into(),
                after.admin.sync_access.into(),
                disabled_at.into(),
                update.password_hash.clone().into(),
                after.admin.id.as_str().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if update.password_hash.is_some() || (disabled_at.is_some() && !was_disabled) {
            query(
                backend,
                "DELETE FROM admin_sessions WHERE admin_id = $1",
                vec![after.admin.id.as_str().into()],
            )
            .execute(&mut *tx)
            .await?;
        }
        let action = match update.disabled {
            Some(true) if !was_disabled => ChangeAction::Disabled,
            Some(false) if was_disabled => ChangeAction::Enabled,
            _ => ChangeAction::Updated,
        };
        self.record_change(
            &mut tx,
            by,
            (Subject::Admin, after.admin.id.as_str()),
            action,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The organisation's recorded changes, newest first.
    pub async fn changes(&self, limit: u64) -> Result<Vec<ChangeRecord>> {
        let rows = query(
            self.store.db.backend,
            "SELECT by_whom, at, subject, subject_id, action, changes FROM operator_changes \
             WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
            vec![
                self.org.as_str().into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        let corrupt = |what: &str| {
            tracing::error!(what, "unreadable operator change row");
            StoreError::Database
        };
        rows.iter()
            .map(|row| {
                let subject: String = get(row, "subject")?;
                let action: String = get(row, "action")?;
                let changes: String = get(row, "changes")?;
                Ok(ChangeRecord {
                    by: get(row, "by_whom")?,
                    at: time(get(row, "at")?),
                    subject: Subject::parse(&subject).ok_or_else(|| corrupt("subject"))?,
                    subject_id: get(row, "subject_id")?,
                    action: ChangeAction::parse(&action).ok_or_else(|| corrupt("action"))?,
                    fields: serde_json::from_str(&changes).map_err(|_| corrupt("changes"))?,
                })
            })
            .collect()
    }

    /// Record a change made outside this module, in the caller's transaction.
    pub(crate) async fn record_change(
        &self,
        tx: &mut Transaction<'static, Any>,
        by: &str,
        (subject, subject_id): (Subject, &str),
        action: ChangeAction,
        fields: &[FieldChange],
    ) -> Result<()> {
        let changes = serde_json::to_string(fields).map_err(|_| StoreError::Database)?;
        let args: Vec<Arg> = vec![
            new_id().into(),
            self.org.as_str().into(),
            by.into(),
            self.store.now_ms().into(),
            subject.code().into(),
            subject_id.into(),
            action.code().into(),
            changes.into(),
        ];
        query(
            self.store.db.backend,
            "INSERT INTO operator_changes (id, org_id, by_whom, at, subject, subject_id, action, changes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args,
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Cancel a configuration's queued runs in the caller's transaction; how many.
async fn cancel_queued(
    backend: crate::Backend,
    tx: &mut Transaction<'static, Any>,
    org: &OrgStore,
    config: &ConfigId,
    now: i64,
) -> Result<u64> {
    let done = query(
        backend,
        "UPDATE sync_runs SET status = $1, ended_at = $2 WHERE org_id = $3 AND config_id = $4 AND status = $5",
        vec![
            rollcall_domain::RunStatus::Cancelled.code().into(),
            now.into(),
            org.org.as_str().into(),
            config.as_str().into(),
            rollcall_domain::RunStatus::Queued.code().into(),
        ],
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
