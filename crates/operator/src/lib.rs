//! What an operator does to organisations, configurations, tokens, admins and runs (SPEC §11).
//!
//! Each operation takes values already parsed at the edge (a `ConfigName`, an `Email`, a
//! `Mapping`), checks what only the database can tell, and writes nothing when it refuses:
//! a refusal is [`OperatorError::Refused`] (or, for something named that does not exist,
//! [`OperatorError::NotFound`]; for a name taken or a run in the wrong status,
//! [`OperatorError::Conflict`]) with what was wrong and how to fix it. The CLI and the
//! operator API (`/api/v1/operator`) check what the operator typed with [`input`], call these
//! and answer with what they return ([`text`]).

pub mod input;
pub mod text;

use std::path::Path;

use rollcall_domain::config::{ConfigKind, DeactivationThreshold, Mode, Role};
use rollcall_domain::field::FieldKey;
use rollcall_domain::mapping::Mapping;
use rollcall_domain::record::ReadOptions;
use rollcall_domain::run_filter::{self, Range, RunFilter};
use rollcall_domain::setup::{ConfigName, NewPassword, OrgName, SftpUser, SshPublicKey};
use rollcall_domain::values::{Email, PhoneRegion};
use rollcall_domain::{LogRow, RunId, StoredUser, Trigger};
use rollcall_store::{
    Admin, AdminRecord, AdminUpdate, ChangeRecord, ConfigUpdate, NewAdmin, NewConfig, OrgStore,
    OrgUpdate, Organisation, RunRecord, SftpCredentials, SourceConfig, Store, StoreError,
    TokenInfo, credentials,
};
use rollcall_sync::unmanaged::{self, Created};
use rollcall_sync::{Engine, FileInput, RunMeta, RunProgress, Start, SyncError, exports};

/// The name of the SCIM configuration a token is issued for when none is named.
pub const DEFAULT_SCIM_CONFIG: &str = "SCIM";

/// The most runs a list of runs gives (`runs list`; the operator API's largest `limit`).
pub const RUNS_LISTED: u32 = 1000;

/// The most users a list of users gives (`user list`; the operator API's largest `limit`).
pub const USERS_LISTED: u32 = 1000;

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The operator's to fix (exit 2 on the CLI): what was wrong and how to fix it.
    #[error("{0}")]
    Refused(String),
    /// The organisation, configuration, admin, token or run named does not exist (the
    /// operator's to fix, as a refusal; the operator API answers 404).
    #[error("{0}")]
    NotFound(String),
    /// A name is taken, or a run is not in the status the operation needs (the operator's
    /// to fix, as a refusal; the operator API answers 409).
    #[error("{0}")]
    Conflict(String),
    /// Failed inside rollcall.
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Sync(SyncError),
    #[error("cannot write the log file: {0}")]
    Export(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub type Result<T> = std::result::Result<T, OperatorError>;

fn refused(message: impl Into<String>) -> OperatorError {
    OperatorError::Refused(message.into())
}

fn not_found(message: impl Into<String>) -> OperatorError {
    OperatorError::NotFound(message.into())
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> OperatorError {
        match e {
            StoreError::NotFound(what) => OperatorError::NotFound(what),
            taken @ (StoreError::Conflict(_) | StoreError::RunStatus { .. }) => {
                OperatorError::Conflict(taken.to_string())
            }
            StoreError::Manages { config, users } => OperatorError::Conflict(format!(
                "configuration '{config}' manages {users} users: give --release-users to delete it \
                 and make them unmanaged (they stay, and only the admin panel and Bulk Update \
                 change them), or let another configuration take them over first"
            )),
            StoreError::InUse(what) => OperatorError::Conflict(what),
            other => OperatorError::Store(other),
        }
    }
}

fn disabled(config: &SourceConfig) -> OperatorError {
    refused(format!(
        "configuration '{}' is disabled: `rollcall config enable --org ORG --name '{}'` first",
        config.name, config.name
    ))
}

impl From<SyncError> for OperatorError {
    fn from(e: SyncError) -> OperatorError {
        match e {
            SyncError::Store(e) => e.into(),
            refusal if refusal.is_refusal() => OperatorError::Refused(refusal.to_string()),
            other => OperatorError::Sync(other),
        }
    }
}

/// A configuration to create.
pub struct NewConfiguration {
    pub name: ConfigName,
    pub kind: ConfigKind,
    /// Left out: a SCIM configuration applies, a file or pull one starts in dry run (SPEC §4).
    pub mode: Option<Mode>,
    pub mapping: Option<Mapping>,
    pub deactivation_threshold: Option<DeactivationThreshold>,
    pub notify: Option<Email>,
    pub phone_region: Option<PhoneRegion>,
    pub sftp_user: Option<SftpUser>,
    pub sftp_password: Option<NewPassword>,
    pub sftp_keys: Vec<SshPublicKey>,
}

/// What changes in a configuration; `None` keeps what it has, `Some(None)` empties an
/// optional setting.
#[derive(Default)]
pub struct ConfigChange {
    pub rename: Option<ConfigName>,
    pub mode: Option<Mode>,
    pub mapping: Option<Mapping>,
    pub deactivation_threshold: Option<Option<DeactivationThreshold>>,
    pub notify: Option<Option<Email>>,
    pub phone_region: Option<Option<PhoneRegion>>,
    pub sftp_user: Option<SftpUser>,
    /// `Some(None)` removes the password.
    pub sftp_password: Option<Option<NewPassword>>,
    /// Replaces the authorised keys (`Some(vec![])` removes them all).
    pub sftp_keys: Option<Vec<SshPublicKey>>,
}

/// An admin to create.
pub struct NewAdministrator {
    pub email: Email,
    pub role: Role,
    pub sync_access: bool,
    pub password: NewPassword,
}

/// What `runs` keeps: each filter as the operator typed it (checked by the same rules as
/// the User Provisioning page's).
#[derive(Default)]
pub struct RunsFilter<'a> {
    /// Comma-separated status codes.
    pub status: Option<&'a str>,
    /// A configuration's name or id.
    pub config: Option<&'a str>,
    /// A date (`2024-01-15`, UTC) or an RFC 3339 date-time.
    pub since: Option<&'a str>,
}

/// A run's log as a file to download.
pub struct LogFile {
    pub bytes: Vec<u8>,
    pub rows: usize,
    /// The name the admin panel downloads it as (`Sync Logs - 15 Jan 2024 10.30pm.csv`).
    pub download_name: String,
}

/// The two formats a log downloads in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Csv,
    Xlsx,
}

/// What changes in an organisation; `None` keeps what it has.
#[derive(Default)]
pub struct OrgChange {
    pub name: Option<OrgName>,
    pub provisioning: Option<bool>,
}

/// What changes in an admin; `None` keeps what it has.
#[derive(Default)]
pub struct AdminChange {
    pub role: Option<Role>,
    pub sync_access: Option<bool>,
    pub password: Option<NewPassword>,
}

/// An organisation with what hangs off it.
pub struct OrgDetails {
    pub org: Organisation,
    pub configs: Vec<SourceConfig>,
    pub admins: Vec<AdminRecord>,
    /// What operators changed, newest first.
    pub changes: Vec<ChangeRecord>,
}

/// The most recorded changes `org show` gives.
const CHANGES_SHOWN: u64 = 100;

/// The operator's operations over one database, with the engine runs go through.
pub struct Operator {
    engine: Engine,
    /// Who is acting, as changes and approvals record it (`operator via CLI`, a token's name).
    by: String,
}

impl Operator {
    pub fn new(engine: Engine, by: impl Into<String>) -> Operator {
        Operator {
            engine,
            by: by.into(),
        }
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }

    /// Close the database (on SQLite, folding its write-ahead log back in).
    pub async fn close(&self) {
        self.store().close().await;
    }

    pub async fn create_org(&self, name: &OrgName, provisioning: bool) -> Result<Organisation> {
        Ok(self
            .store()
            .create_org(&self.by, name.as_str(), provisioning)
            .await?)
    }

    /// The organisation with this id or name.
    pub async fn org(&self, id_or_name: &str) -> Result<OrgStore> {
        match self.store().find_org(id_or_name).await {
            Ok(found) => Ok(self.store().org(found.id)),
            Err(StoreError::NotFound(_)) => Err(not_found(format!(
                "unknown organisation '{id_or_name}': give its id or name"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The organisation's configuration with this name or id; refused with the names it has.
    pub async fn config(&self, org: &OrgStore, name: &str) -> Result<SourceConfig> {
        match org.config(name).await {
            Ok(config) => Ok(config),
            Err(StoreError::NotFound(_)) => {
                let known: Vec<String> = org.configs().await?.into_iter().map(|c| c.name).collect();
                Err(not_found(format!(
                    "unknown configuration '{name}' in this organisation (configurations: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The organisation that owns a run.
    async fn run_org(&self, run: &RunId) -> Result<OrgStore> {
        match self.store().run_org(run).await {
            Ok(org) => Ok(self.store().org(org)),
            Err(StoreError::NotFound(_)) => Err(not_found(format!("unknown run '{run}'"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Issue a SCIM token for the named SCIM configuration, or for the organisation's first
    /// one, made (as [`DEFAULT_SCIM_CONFIG`]) when it has none. Returns the token (shown once).
    pub async fn create_scim_token(&self, org: &str, config: Option<&str>) -> Result<String> {
        let org = self.org(org).await?;
        let config = match config {
            Some(name) => {
                let config = self.config(&org, name).await?;
                if config.kind != ConfigKind::Scim {
                    return Err(refused(format!(
                        "configuration '{name}' is a {} configuration: SCIM tokens belong to a scim configuration",
                        config.kind
                    )));
                }
                config
            }
            None => match org
                .configs()
                .await?
                .into_iter()
                .find(|c| c.kind == ConfigKind::Scim)
            {
                Some(config) => config,
                None => {
                    org.create_config(
                        &self.by,
                        NewConfig::new(DEFAULT_SCIM_CONFIG, ConfigKind::Scim, Mode::Active),
                    )
                    .await?
                }
            },
        };
        if config.disabled_at.is_some() {
            return Err(disabled(&config));
        }
        Ok(org.create_token(&self.by, &config).await?)
    }

    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        if self.store().revoke_token(token.trim()).await? {
            Ok(())
        } else {
            Err(refused(
                "no active token matches: it may be mistyped or already revoked",
            ))
        }
    }

    pub async fn revoke_token_by_id(&self, org: &str, id: &str) -> Result<()> {
        let org = self.org(org).await?;
        if org.revoke_token_by_id(id.trim()).await? {
            Ok(())
        } else {
            Err(not_found(format!(
                "the organisation has no live token with id '{}': see `rollcall token list`",
                id.trim()
            )))
        }
    }

    pub async fn tokens(&self, org: &str) -> Result<Vec<TokenInfo>> {
        Ok(self.org(org).await?.tokens().await?)
    }

    /// Issue an operator token (shown once); `name` says whose it is.
    pub async fn create_operator_token(&self, name: &str) -> Result<String> {
        Ok(self.store().create_operator_token(name.trim()).await?)
    }

    pub async fn revoke_operator_token(&self, token: &str) -> Result<()> {
        if self.store().revoke_operator_token(token.trim()).await? {
            Ok(())
        } else {
            Err(refused("no such live operator token"))
        }
    }

    pub async fn create_config(&self, org: &str, new: NewConfiguration) -> Result<SourceConfig> {
        let kind = new.kind;
        if !input::CREATABLE_KINDS.contains(&kind) {
            return Err(refused(format!(
                "a {kind} configuration is made by rollcall when it is first needed"
            )));
        }
        match (&new.mapping, kind.needs_mapping()) {
            (None, true) => {
                return Err(refused(format!(
                    "a {kind} configuration needs --mapping FILE.toml mapping at least external_id, username and active"
                )));
            }
            (Some(_), false) => {
                return Err(refused(
                    "a scim configuration uses the SCIM attribute mapping: remove --mapping",
                ));
            }
            _ => {}
        }
        let sftp_given =
            new.sftp_user.is_some() || new.sftp_password.is_some() || !new.sftp_keys.is_empty();
        if sftp_given && kind != ConfigKind::Sftp {
            return Err(refused(
                "--sftp-user, --sftp-password-stdin and --sftp-key are for sftp configurations",
            ));
        }
        if (new.sftp_password.is_some() || !new.sftp_keys.is_empty()) && new.sftp_user.is_none() {
            return Err(refused(
                "--sftp-password-stdin and --sftp-key need --sftp-user",
            ));
        }
        let mode = new.mode.unwrap_or(if kind == ConfigKind::Scim {
            Mode::Active
        } else {
            Mode::DryRun
        });
        let sftp_password_hash = new.sftp_password.as_ref().map(hash).transpose()?;
        let org = self.org(org).await?;
        Ok(org
            .create_config(
                &self.by,
                NewConfig {
                    mapping: new.mapping,
                    deactivation_threshold: new.deactivation_threshold,
                    notify_email: new.notify.map(|e| e.as_str().to_owned()),
                    phone_region: new.phone_region,
                    sftp_user: new.sftp_user.map(SftpUser::into_string),
                    sftp_password_hash,
                    sftp_keys: new
                        .sftp_keys
                        .into_iter()
                        .map(SshPublicKey::into_string)
                        .collect(),
                    ..NewConfig::new(new.name.as_str(), kind, mode)
                },
            )
            .await?)
    }

    /// Change a configuration; the next run reads what it is then (a run already going
    /// keeps what it started with).
    pub async fn update_config(
        &self,
        org: &str,
        name: &str,
        change: ConfigChange,
    ) -> Result<SourceConfig> {
        let sftp_change = change.sftp_user.is_some()
            || change.sftp_password.is_some()
            || change.sftp_keys.is_some();
        let other_change = change.rename.is_some()
            || change.mode.is_some()
            || change.mapping.is_some()
            || change.deactivation_threshold.is_some()
            || change.notify.is_some()
            || change.phone_region.is_some();
        if !sftp_change && !other_change {
            return Err(refused(
                "nothing to change: give --mode, --mapping, --deactivation-threshold, --notify, \
                 --phone-region, --rename or an --sftp-… option",
            ));
        }
        let password_hash = match &change.sftp_password {
            Some(Some(password)) => Some(Some(hash(password)?)),
            Some(None) => Some(None),
            None => None,
        };
        let org = self.org(org).await?;
        let config = self.config(&org, name).await?;
        if sftp_change {
            if config.kind != ConfigKind::Sftp {
                return Err(refused(format!(
                    "configuration '{}' is a {} configuration: SFTP settings are for sftp configurations",
                    config.name, config.kind
                )));
            }
            if config.sftp_user.is_none() && change.sftp_user.is_none() {
                return Err(refused(
                    "this configuration has no SFTP login yet: give --sftp-user",
                ));
            }
        }
        if change.mapping.is_some() && !config.kind.needs_mapping() {
            return Err(refused(format!(
                "configuration '{}' is a {} configuration: it has no mapping to change",
                config.name, config.kind
            )));
        }
        let update = ConfigUpdate {
            name: change.rename.map(|n| n.as_str().to_owned()),
            mode: change.mode,
            mapping: change.mapping,
            deactivation_threshold: change.deactivation_threshold,
            notify_email: change.notify.map(|n| n.map(|e| e.as_str().to_owned())),
            phone_region: change.phone_region,
            sftp: SftpCredentials {
                user: change.sftp_user.map(SftpUser::into_string),
                password_hash,
                keys: change
                    .sftp_keys
                    .map(|keys| keys.into_iter().map(SshPublicKey::into_string).collect()),
            },
        };
        Ok(org.update_config(&self.by, &config.id, update).await?)
    }

    /// Disable a configuration (no run starts from it, its queued runs are cancelled, SCIM
    /// requests with its tokens and its SFTP login are refused) or enable it again.
    pub async fn set_config_disabled(
        &self,
        org: &str,
        name: &str,
        disabled: bool,
    ) -> Result<SourceConfig> {
        let org = self.org(org).await?;
        let config = self.config(&org, name).await?;
        if config.kind == ConfigKind::BulkUpdate {
            return Err(refused(
                "the Bulk Update configuration is rollcall's own: admins' Bulk Update access is \
                 their sync access (`rollcall admin update --sync-access off`)",
            ));
        }
        Ok(org
            .set_config_disabled(&self.by, &config.id, disabled)
            .await?)
    }

    /// Delete a configuration (see [`OrgStore::delete_config`]); how many users it released.
    pub async fn delete_config(&self, org: &str, name: &str, release_users: bool) -> Result<u64> {
        let org = self.org(org).await?;
        let config = self.config(&org, name).await?;
        if config.kind == ConfigKind::BulkUpdate {
            return Err(refused(
                "the Bulk Update configuration is rollcall's own and cannot be deleted",
            ));
        }
        Ok(org
            .delete_config(&self.by, &config.id, release_users)
            .await?)
    }

    /// Every organisation, by name.
    pub async fn orgs(&self) -> Result<Vec<Organisation>> {
        Ok(self.store().orgs().await?)
    }

    /// An organisation with its configurations, admins and recorded changes.
    pub async fn org_details(&self, org: &str) -> Result<OrgDetails> {
        let org = self.org(org).await?;
        Ok(OrgDetails {
            org: org.organisation().await?,
            configs: org.configs().await?,
            admins: org.admins().await?,
            changes: org.changes(CHANGES_SHOWN).await?,
        })
    }

    /// Rename an organisation or switch provisioning on or off.
    pub async fn update_org(&self, org: &str, change: OrgChange) -> Result<Organisation> {
        if change.name.is_none() && change.provisioning.is_none() {
            return Err(refused(
                "nothing to change: give --name or --provisioning on|off",
            ));
        }
        let org = self.org(org).await?;
        let update = OrgUpdate {
            name: change.name.map(|n| n.as_str().to_owned()),
            provisioning: change.provisioning,
        };
        Ok(org.update_org(&self.by, update).await?)
    }

    /// The organisation's configurations.
    pub async fn configs(&self, org: &str) -> Result<Vec<SourceConfig>> {
        Ok(self.org(org).await?.configs().await?)
    }

    /// The organisation's admins, by email.
    pub async fn admins(&self, org: &str) -> Result<Vec<AdminRecord>> {
        Ok(self.org(org).await?.admins().await?)
    }

    /// Change an admin's role, sync access or password (a new password ends their sessions).
    pub async fn update_admin(
        &self,
        org: &str,
        email: &Email,
        change: AdminChange,
    ) -> Result<AdminRecord> {
        if change.role.is_none() && change.sync_access.is_none() && change.password.is_none() {
            return Err(refused(
                "nothing to change: give --role, --sync-access on|off or --password-stdin",
            ));
        }
        let password_hash = change.password.as_ref().map(hash).transpose()?;
        let org = self.org(org).await?;
        let update = AdminUpdate {
            role: change.role,
            sync_access: change.sync_access,
            password_hash,
            disabled: None,
        };
        Ok(org.update_admin(&self.by, email.as_str(), update).await?)
    }

    /// Disable an admin (they cannot sign in, and their sessions end) or enable them again.
    pub async fn set_admin_disabled(
        &self,
        org: &str,
        email: &Email,
        disabled: bool,
    ) -> Result<AdminRecord> {
        let org = self.org(org).await?;
        let update = AdminUpdate {
            disabled: Some(disabled),
            ..AdminUpdate::default()
        };
        Ok(org.update_admin(&self.by, email.as_str(), update).await?)
    }

    pub async fn create_admin(&self, org: &str, admin: NewAdministrator) -> Result<Admin> {
        let password_hash = hash(&admin.password)?;
        let org = self.org(org).await?;
        Ok(org
            .create_admin(
                &self.by,
                NewAdmin {
                    email: admin.email.as_str().to_owned(),
                    role: admin.role,
                    sync_access: admin.sync_access,
                    password_hash,
                },
            )
            .await?)
    }

    /// Create a user no source manages (what the application's own sign-up would make) from
    /// the values given, each read as a sync file's cell is; refused with every problem, or
    /// with the value another user already holds.
    pub async fn create_user(&self, org: &str, cells: &[(FieldKey, String)]) -> Result<StoredUser> {
        let org = self.org(org).await?;
        let record = rollcall_domain::record::unmanaged_user(cells, &ReadOptions::default())
            .map_err(|issues| {
                refused(
                    issues
                        .iter()
                        .map(|i| format!("{} ({})", i.message, i.additional_data))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        match unmanaged::create_unmanaged_user(&org, &self.by, record).await? {
            Created::User(user) => Ok(*user),
            Created::Refused(issue) => Err(refused(format!(
                "{} ({})",
                issue.message, issue.additional_data
            ))),
        }
    }

    /// The organisation's users by username (SCIM-deleted ones left out), each with the name
    /// of the configuration that manages it; `search` matches username, email and name.
    pub async fn users(
        &self,
        org: &str,
        search: &str,
        unmanaged_only: bool,
        limit: u32,
    ) -> Result<Vec<(StoredUser, Option<String>)>> {
        let org = self.org(org).await?;
        let names: std::collections::HashMap<String, String> = org
            .configs()
            .await?
            .into_iter()
            .map(|c| (c.id.to_string(), c.name))
            .collect();
        let page = org.user_page(search, unmanaged_only, None, limit).await?;
        Ok(page
            .users
            .into_iter()
            .map(|u| {
                let by = u.managed_by.as_ref().map(|c| {
                    names
                        .get(c.as_str())
                        .cloned()
                        .unwrap_or_else(|| format!("{c} (deleted)"))
                });
                (u, by)
            })
            .collect())
    }

    /// Run a CSV or XLSX file through the engine for the organisation's configuration.
    pub async fn sync_file(
        &self,
        org: &str,
        config: &str,
        file: &Path,
        dry_run: bool,
        progress: Box<dyn RunProgress>,
    ) -> Result<RunRecord> {
        let org = self.org(org).await?;
        let config = self.config(&org, config).await?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = RunMeta {
            trigger: Trigger::Cli,
            file_name: Some(name.clone()),
            file_sha256: None,
            dry_run,
        };
        let input = FileInput {
            path: file,
            name: &name,
        };
        let run = self
            .engine
            .run_file(&org, &config, Start::New(&meta), input, progress)
            .await?;
        Ok(run)
    }

    pub async fn cancel_run(&self, run: &str) -> Result<RunRecord> {
        let run = RunId::new(run.trim());
        let org = self.run_org(&run).await?;
        Ok(org.cancel_run(&run).await?)
    }

    /// A run, and the mapping it read with when it read a file.
    pub async fn run_details(&self, run: &str) -> Result<(RunRecord, Option<Mapping>)> {
        let run_id = RunId::new(run.trim());
        let org = self.run_org(&run_id).await?;
        let record = org.run(&run_id).await?;
        let mapping = org.run_mapping(&run_id).await?;
        Ok((record, mapping))
    }

    /// Apply a run the deactivation threshold blocked, as approved by whoever is acting.
    pub async fn approve_run(&self, run: &str) -> Result<RunRecord> {
        let run = RunId::new(run.trim());
        self.run_org(&run).await?;
        Ok(self.engine.approve(&run, &self.by).await?)
    }

    /// The organisation's runs as the User Provisioning page lists them (newest first,
    /// without Bulk Update runs), filtered.
    pub async fn runs(
        &self,
        org: &str,
        filter: &RunsFilter<'_>,
        limit: u32,
    ) -> Result<Vec<RunRecord>> {
        let org = self.org(org).await?;
        let configuration = match filter.config {
            Some(name) => Some(self.config(&org, name).await?.id.to_string()),
            None => None,
        };
        let utc = chrono::Offset::fix(&chrono::Utc);
        let since = filter
            .since
            .map(|v| run_filter::instant("--since", v, utc, false))
            .transpose()
            .map_err(refused)?;
        let parsed = RunFilter {
            range: Range::Custom {
                from: since,
                to: None,
            },
            statuses: run_filter::statuses("--status", filter.status).map_err(refused)?,
            configuration,
            ..RunFilter::default()
        };
        let bounds = parsed.bounds(self.store().now());
        Ok(org.run_page(&parsed, bounds, None, limit).await?.runs)
    }

    /// The organisation's Bulk Update runs, newest first.
    pub async fn bulk_update_runs(&self, org: &str, limit: u32) -> Result<Vec<RunRecord>> {
        Ok(self.org(org).await?.bulk_runs(limit).await?)
    }

    /// What was wrong with the file of a run that failed to load (its log rows, at most
    /// [`text::ERRORS_SHOWN`]); nothing for any other run.
    pub async fn load_errors(&self, run: &RunRecord) -> Result<Vec<LogRow>> {
        if run.status != rollcall_domain::RunStatus::DataLoadFailed {
            return Ok(Vec::new());
        }
        let mut rows = self
            .store()
            .org(run.org_id.clone())
            .run_logs(&run.id)
            .await?;
        rows.truncate(text::ERRORS_SHOWN);
        Ok(rows)
    }

    /// The runs with the file problems of those that failed to load.
    pub async fn with_errors(&self, runs: Vec<RunRecord>) -> Result<Vec<(RunRecord, Vec<LogRow>)>> {
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            let errors = self.load_errors(&run).await?;
            out.push((run, errors));
        }
        Ok(out)
    }

    /// A run's log rows (for a run that failed to load, what was wrong with the file).
    pub async fn run_logs(&self, org: &OrgStore, run: &RunId) -> Result<Vec<LogRow>> {
        Ok(org.run_logs(run).await?)
    }

    /// A run's log as a file. `org`, when given, must own the run. Refused for a run without
    /// a log, by the rule the admin panel follows (a blocked run's would-be rows are not its
    /// log).
    pub async fn log_file(
        &self,
        run: &str,
        org: Option<&str>,
        format: LogFormat,
    ) -> Result<LogFile> {
        let run_id = RunId::new(run.trim());
        let org = match org {
            Some(org) => self.org(org).await?,
            None => self.run_org(&run_id).await?,
        };
        let record = match org.run(&run_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Err(not_found(format!("unknown run '{run}'"))),
            Err(e) => return Err(e.into()),
        };
        if !record.status.has_logs() {
            return Err(refused(format!(
                "a run that is {} has no log to download",
                record.status.label()
            )));
        }
        let rows = org.run_logs(&run_id).await?;
        let (bytes, extension) = match format {
            LogFormat::Csv => {
                let mut out = Vec::new();
                exports::write_csv(&rows, &mut out)
                    .map_err(|e| OperatorError::Export(e.to_string()))?;
                (out, "csv")
            }
            LogFormat::Xlsx => (
                exports::write_xlsx(&rows).map_err(|e| OperatorError::Export(e.to_string()))?,
                "xlsx",
            ),
        };
        let started = record.started_at.unwrap_or(record.queued_at);
        Ok(LogFile {
            bytes,
            rows: rows.len(),
            download_name: exports::log_file_name(
                started,
                chrono::Offset::fix(&chrono::Utc),
                record.dry_run,
                extension,
            ),
        })
    }
}

fn hash(password: &NewPassword) -> Result<String> {
    credentials::hash_password(password.expose()).map_err(OperatorError::Hash)
}
