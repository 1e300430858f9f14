//! What the operator manages: organisations, source configurations, SCIM tokens and admins.

use chrono::{DateTime, Utc};
use rollcall_domain::config::{ConfigKind, DeactivationThreshold, Mode, Role};
use rollcall_domain::mapping::Mapping;
use rollcall_domain::values::PhoneRegion;
use rollcall_domain::{ConfigId, OrgId};
use sqlx::any::AnyRow;

use crate::credentials;
use crate::db::{flag, get, query, time};
use crate::operator_changes::{ChangeAction, FieldChange, Subject};
use crate::{Conflict, OrgStore, Result, Store, StoreError, UniqueKey, new_id};

/// Who made what rollcall makes by itself (the Bulk Update configuration), as changes record it.
pub const SYSTEM: &str = "rollcall";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation {
    pub id: OrgId,
    pub name: String,
    pub provisioning: bool,
}

/// A SCIM bearer token as the operator sees it: never the token itself, which is not kept.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub id: String,
    pub config_name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A source configuration as stored.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub id: ConfigId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: ConfigKind,
    pub mode: Mode,
    pub mapping: Option<Mapping>,
    pub deactivation_threshold: Option<DeactivationThreshold>,
    pub notify_email: Option<String>,
    pub phone_region: Option<PhoneRegion>,
    pub sftp_user: Option<String>,
    /// When it was disabled: it starts no run from any source until enabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A configuration to create.
#[derive(Clone, Debug)]
pub struct NewConfig {
    pub name: String,
    pub kind: ConfigKind,
    pub mode: Mode,
    pub mapping: Option<Mapping>,
    pub deactivation_threshold: Option<DeactivationThreshold>,
    pub notify_email: Option<String>,
    pub phone_region: Option<PhoneRegion>,
    pub sftp_user: Option<String>,
    pub sftp_password_hash: Option<String>,
    pub sftp_keys: Vec<String>,
}

impl NewConfig {
    /// A configuration with nothing set beyond its name, kind and mode.
    pub fn new(name: &str, kind: ConfigKind, mode: Mode) -> NewConfig {
        NewConfig {
            name: name.to_owned(),
            kind,
            mode,
            mapping: None,
            deactivation_threshold: None,
            notify_email: None,
            phone_region: None,
            sftp_user: None,
            sftp_password_hash: None,
            sftp_keys: Vec::new(),
        }
    }
}

/// An SFTP login: the configuration it drops files into and its credentials.
#[derive(Clone, Debug)]
pub struct SftpLogin {
    pub config: SourceConfig,
    /// Argon2 hash of the password, when password sign-in is allowed.
    pub password_hash: Option<String>,
    /// Authorised public keys, one OpenSSH line each.
    pub keys: Vec<String>,
}

/// New SFTP credentials for a configuration; `None` leaves a part as it is.
#[derive(Clone, Debug, Default)]
pub struct SftpCredentials {
    pub user: Option<String>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
    /// Replaces the authorised keys.
    pub keys: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct NewAdmin {
    pub email: String,
    pub role: Role,
    pub sync_access: bool,
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub id: String,
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    pub sync_access: bool,
}

/// The mapping as stored: JSON of field key → column, custom name → column and field key →
/// expression.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMapping {
    fields: Vec<(String, String)>,
    custom_fields: Vec<(String, String)>,
    #[serde(default)]
    computed: Vec<(String, String)>,
}

pub(crate) fn mapping_to_json(mapping: &Mapping) -> String {
    let text = mapping.text();
    let stored = StoredMapping {
        fields: text.fields,
        custom_fields: text.custom_fields,
        computed: text.computed,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

pub(crate) fn mapping_from_json(json: &str) -> Result<Mapping> {
    let stored: StoredMapping = serde_json::from_str(json).map_err(|e| {
        tracing::error!(error = %e, "stored mapping is not valid JSON");
        StoreError::Database
    })?;
    Mapping::new(stored.fields, stored.custom_fields, stored.computed).map_err(|e| {
        tracing::error!(error = %e, "stored mapping is no longer valid");
        StoreError::Database
    })
}

/// A SCIM token by the digest of its secret (`scim_tokens_digest`, unique).
pub(crate) const SELECT_TOKEN: &str =
    "SELECT id, org_id, config_id FROM scim_tokens WHERE digest = $1 AND revoked_at IS NULL";

pub(crate) const CONFIG_COLUMNS: &str = "id, org_id, name, kind, mode, mapping, deactivation_threshold, notify_email, phone_region, sftp_user, disabled_at";

pub(crate) fn config_from_row(row: &AnyRow) -> Result<SourceConfig> {
    let corrupt = |what: &str| {
        tracing::error!(what, "unreadable configuration row");
        StoreError::Database
    };
    let kind: String = get(row, "kind")?;
    let mode: String = get(row, "mode")?;
    let mapping: Option<String> = get(row, "mapping")?;
    let threshold: Option<String> = get(row, "deactivation_threshold")?;
    let region: Option<String> = get(row, "phone_region")?;
    Ok(SourceConfig {
        id: ConfigId::new(get::<String>(row, "id")?),
        org_id: OrgId::new(get::<String>(row, "org_id")?),
        name: get(row, "name")?,
        kind: ConfigKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt("mode"))?,
        mapping: mapping.as_deref().map(mapping_from_json).transpose()?,
        deactivation_threshold: threshold
            .map(|t| DeactivationThreshold::parse(&t).map_err(|_| corrupt("threshold")))
            .transpose()?,
        notify_email: get(row, "notify_email")?,
        phone_region: region
            .map(|r| PhoneRegion::parse(&r).map_err(|_| corrupt("phone_region")))
            .transpose()?,
        sftp_user: get(row, "sftp_user")?,
        disabled_at: get::<Option<i64>>(row, "disabled_at")?.map(time),
    })
}

fn org_from_row(row: &AnyRow) -> Result<Organisation> {
    Ok(Organisation {
        id: OrgId::new(get::<String>(row, "id")?),
        name: get(row, "name")?,
        provisioning: flag(row, "provisioning")?,
    })
}

impl Store {
    /// Create an organisation (names are unique), recording who did it.
    pub async fn create_org(
        &self,
        by: &str,
        name: &str,
        provisioning: bool,
    ) -> Result<Organisation> {
        let id = new_id();
        let mut tx = self.db.write.begin().await?;
        query(self.db.backend,
            "INSERT INTO organisations (id, name, provisioning, created_at) VALUES ($1, $2, $3, $4)",
            vec![id.clone().into(), name.into(), provisioning.into(), self.now_ms().into()],
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(Conflict::new(UniqueKey::OrgName, name)),
            other => other,
        })?;
        let fields: Vec<FieldChange> = [
            FieldChange::set("name", Some(name)),
            FieldChange::set("provisioning", Some(provisioning)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let org = self.org(OrgId::new(id.clone()));
        org.record_change(
            &mut tx,
            by,
            (Subject::Organisation, &id),
            ChangeAction::Created,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(Organisation {
            id: OrgId::new(id),
            name: name.to_owned(),
            provisioning,
        })
    }

    /// Find an organisation by id or by name.
    pub async fn find_org(&self, id_or_name: &str) -> Result<Organisation> {
        let row = query(
            self.db.backend,
            "SELECT id, name, provisioning FROM organisations WHERE id = $1 OR name = $1",
            vec![id_or_name.into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        match row {
            Some(row) => org_from_row(&row),
            None => Err(StoreError::NotFound(format!("organisation '{id_or_name}'"))),
        }
    }

    /// The organisation and configuration a SCIM bearer token belongs to, recording its use.
    /// Tokens are looked up by digest: the index lookup is on a hash of a 256-bit secret, so
    /// it leaks nothing useful through timing.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<(OrgId, ConfigId)>> {
        let digest = credentials::token_digest(token);
        let row = query(self.db.backend, SELECT_TOKEN, vec![digest.into()])
            .fetch_optional(&self.db.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = get(&row, "id")?;
        query(
            self.db.backend,
            "UPDATE scim_tokens SET last_used_at = $1 WHERE id = $2",
            vec![self.now_ms().into(), id.into()],
        )
        .execute(&self.db.write)
        .await?;
        Ok(Some((
            OrgId::new(get::<String>(&row, "org_id")?),
            ConfigId::new(get::<String>(&row, "config_id")?),
        )))
    }

    /// The `sftp` configuration whose login is `user`, with its credentials.
    pub async fn sftp_login(&self, user: &str) -> Result<Option<SftpLogin>> {
        let row = query(
            self.db.backend,
            format!(
                "SELECT {CONFIG_COLUMNS}, sftp_password_hash, sftp_keys FROM source_configs \
                 WHERE sftp_user = $1 AND kind = 'sftp' AND deleted_at IS NULL"
            ),
            vec![user.into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let keys: Option<String> = get(&row, "sftp_keys")?;
        Ok(Some(SftpLogin {
            config: config_from_row(&row)?,
            password_hash: get(&row, "sftp_password_hash")?,
            keys: keys
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
        }))
    }

    /// Revoke a token given the token itself.
    pub async fn revoke_token(&self, token: &str) -> Result<bool> {
        let done = query(
            self.db.backend,
            "UPDATE scim_tokens SET revoked_at = $1 WHERE digest = $2 AND revoked_at IS NULL",
            vec![
                self.now_ms().into(),
                credentials::token_digest(token).into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// An admin by email, with the password hash, for sign-in; a disabled admin is not found.
    pub async fn admin_for_sign_in(&self, email: &str) -> Result<Option<(Admin, String)>> {
        let row = query(
            self.db.backend,
            "SELECT id, org_id, email, role, sync_access, password_hash FROM admins \
             WHERE email_norm = $1 AND disabled_at IS NULL",
            vec![email.trim().to_lowercase().into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = get(&row, "role")?;
        let admin = Admin {
            id: get(&row, "id")?,
            org_id: OrgId::new(get::<String>(&row, "org_id")?),
            email: get(&row, "email")?,
            role: Role::parse(&role).ok_or(StoreError::Database)?,
            sync_access: flag(&row, "sync_access")?,
        };
        Ok(Some((admin, get(&row, "password_hash")?)))
    }
}

impl OrgStore {
    pub async fn organisation(&self) -> Result<Organisation> {
        self.store.find_org(self.org.as_str()).await
    }

    /// Create a configuration, recording who did it.
    pub async fn create_config(&self, by: &str, config: NewConfig) -> Result<SourceConfig> {
        let id = new_id();
        let keys = (!config.sftp_keys.is_empty()).then(|| config.sftp_keys.join("\n"));
        let mut tx = self.store.db.write.begin().await?;
        query(self.store.db.backend,
            "INSERT INTO source_configs (id, org_id, name, kind, mode, mapping, deactivation_threshold, notify_email, \
             phone_region, sftp_user, sftp_password_hash, sftp_keys, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                id.clone().into(),
                self.org.as_str().into(),
                config.name.as_str().into(),
                config.kind.code().into(),
                config.mode.code().into(),
                config.mapping.as_ref().map(mapping_to_json).into(),
                config.deactivation_threshold.map(|t| t.to_string()).into(),
                config.notify_email.clone().into(),
                config.phone_region.map(|r| r.code().to_owned()).into(),
                config.sftp_user.clone().into(),
                config.sftp_password_hash.clone().into(),
                keys.into(),
                self.store.now_ms().into(),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(c) if c.key == UniqueKey::SftpUser => StoreError::Conflict(
                Conflict::new(UniqueKey::SftpUser, config.sftp_user.clone().unwrap_or_default()),
            ),
            StoreError::Conflict(c) if c.key == UniqueKey::ConfigName => {
                StoreError::Conflict(Conflict::new(UniqueKey::ConfigName, &config.name))
            }
            other => other,
        })?;
        let fields: Vec<FieldChange> = [
            FieldChange::set("name", Some(&config.name)),
            FieldChange::set("kind", Some(config.kind.code())),
            FieldChange::set("mode", Some(config.mode.code())),
            FieldChange::set("mapping", config.mapping.as_ref().map(mapping_to_json)),
            FieldChange::set("deactivation_threshold", config.deactivation_threshold),
            FieldChange::set("notify", config.notify_email.as_ref()),
            FieldChange::set(
                "phone_region",
                config.phone_region.as_ref().map(|r| r.code()),
            ),
            FieldChange::set("sftp_user", config.sftp_user.as_ref()),
            FieldChange::set(
                "sftp_password",
                config.sftp_password_hash.as_ref().map(|_| "(secret)"),
            ),
            FieldChange::set(
                "sftp_keys",
                (!config.sftp_keys.is_empty()).then_some(config.sftp_keys.len()),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.record_change(
            &mut tx,
            by,
            (Subject::Configuration, &id),
            ChangeAction::Created,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(SourceConfig {
            id: ConfigId::new(id),
            org_id: self.org.clone(),
            name: config.name,
            kind: config.kind,
            mode: config.mode,
            mapping: config.mapping,
            deactivation_threshold: config.deactivation_threshold,
            notify_email: config.notify_email,
            phone_region: config.phone_region,
            sftp_user: config.sftp_user,
            disabled_at: None,
        })
    }

    /// A configuration by name (or id); a deleted one is not found.
    pub async fn config(&self, name_or_id: &str) -> Result<SourceConfig> {
        let row = query(
            self.store.db.backend,
            format!(
                "SELECT {CONFIG_COLUMNS} FROM source_configs \
                WHERE org_id = $1 AND (name = $2 OR id = $2) AND deleted_at IS NULL"
            ),
            vec![self.org.as_str().into(), name_or_id.into()],
        )
        .fetch_optional(&self.store.db.read)
        .await?;
        match row {
            Some(row) => config_from_row(&row),
            None => Err(StoreError::NotFound(format!(
                "configuration '{name_or_id}'"
            ))),
        }
    }

    pub async fn configs(&self) -> Result<Vec<SourceConfig>> {
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {CONFIG_COLUMNS} FROM source_configs WHERE org_id = $1 AND deleted_at IS NULL ORDER BY name"
            ),
            vec![self.org.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(config_from_row).collect()
    }

    /// Issue a SCIM bearer token for a configuration, recording who did it. The token is
    /// returned once; only its digest is kept.
    pub async fn create_token(&self, by: &str, config: &SourceConfig) -> Result<String> {
        let token = credentials::new_token().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a token");
            StoreError::Database
        })?;
        let id = new_id();
        let mut tx = self.store.db.write.begin().await?;
        query(self.store.db.backend,
            "INSERT INTO scim_tokens (id, org_id, config_id, digest, created_at) VALUES ($1, $2, $3, $4, $5)",
            vec![
                id.as_str().into(),
                self.org.as_str().into(),
                config.id.as_str().into(),
                credentials::token_digest(&token).into(),
                self.store.now_ms().into(),
            ],
        )
        .execute(&mut *tx)
        .await?;
        let fields: Vec<FieldChange> = FieldChange::set("configuration", Some(&config.name))
            .into_iter()
            .collect();
        self.record_change(
            &mut tx,
            by,
            (Subject::Token, &id),
            ChangeAction::Created,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The organisation's SCIM tokens, newest first, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = query(
            self.store.db.backend,
            "SELECT t.id, c.name, t.created_at, t.last_used_at, t.revoked_at \
             FROM scim_tokens t JOIN source_configs c ON c.id = t.config_id \
             WHERE t.org_id = $1 ORDER BY t.created_at DESC, t.id",
            vec![self.org.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: get(row, "id")?,
                    config_name: get(row, "name")?,
                    created_at: time(get(row, "created_at")?),
                    last_used_at: get::<Option<i64>>(row, "last_used_at")?.map(time),
                    revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(time),
                })
            })
            .collect()
    }

    /// Revoke one of the organisation's SCIM tokens by its id (from [`OrgStore::tokens`]), for
    /// an operator who no longer holds the token. False when the organisation has no live
    /// token with that id.
    pub async fn revoke_token_by_id(&self, id: &str) -> Result<bool> {
        let done = query(
            self.store.db.backend,
            "UPDATE scim_tokens SET revoked_at = $1 \
             WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
            vec![
                self.store.now_ms().into(),
                id.into(),
                self.org.as_str().into(),
            ],
        )
        .execute(&self.store.db.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Create an admin, recording who did it.
    pub async fn create_admin(&self, by: &str, admin: NewAdmin) -> Result<Admin> {
        let id = new_id();
        let email = admin.email.trim().to_owned();
        let mut tx = self.store.db.write.begin().await?;
        query(self.store.db.backend,
            "INSERT INTO admins (id, org_id, email, email_norm, role, sync_access, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                id.clone().into(),
                self.org.as_str().into(),
                email.as_str().into(),
                email.to_lowercase().into(),
                admin.role.code().into(),
                admin.sync_access.into(),
                admin.password_hash.into(),
                self.store.now_ms().into(),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(c) if c.key == UniqueKey::AdminEmail => {
                StoreError::Conflict(Conflict::new(UniqueKey::AdminEmail, &email))
            }
            other => other,
        })?;
        let fields: Vec<FieldChange> = [
            FieldChange::set("email", Some(&email)),
            FieldChange::set("role", Some(admin.role.code())),
            FieldChange::set("sync_access", Some(admin.sync_access)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.record_change(
            &mut tx,
            by,
            (Subject::Admin, &id),
            ChangeAction::Created,
            &fields,
        )
        .await?;
        tx.commit().await?;
        Ok(Admin {
            id,
            org_id: self.org.clone(),
            email,
            role: admin.role,
            sync_access: admin.sync_access,
        })
    }

    /// The number of active users a configuration manages (the base of a percentage
    /// deactivation threshold).
    /// How many users `config` manages, active or not.
    pub async fn managed_count(&self, config: &ConfigId) -> Result<u64> {
        let row = query(
            self.store.db.backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND managed_by = $2",
            vec![self.org.as_str().into(), config.as_str().into()],
        )
        .fetch_one(&self.store.db.read)
        .await?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    pub async fn active_managed_count(&self, config: &ConfigId) -> Result<u64> {
        let row = query(
            self.store.db.backend,
            "SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND managed_by = $2 AND active = 1",
            vec![self.org.as_str().into(), config.as_str().into()],
        )
        .fetch_one(&self.store.db.read)
        .await?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }
}

impl OrgStore {
    /// The organisation's Bulk Update configuration, made on first use.
    pub async fn bulk_update_config(&self) -> Result<SourceConfig> {
        if let Some(found) = self
            .configs()
            .await?
            .into_iter()
            .find(|c| c.kind == ConfigKind::BulkUpdate)
        {
            return Ok(found);
        }
        let made = self
            .create_config(
                SYSTEM,
                NewConfig::new("Bulk Update", ConfigKind::BulkUpdate, Mode::Active),
            )
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
}
