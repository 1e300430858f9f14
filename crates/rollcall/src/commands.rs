//! The operator commands of SPEC §11. Each checks its input completely before writing
//! anything, so a refused command changes nothing.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Offset;
use indicatif::{ProgressBar, ProgressStyle};
use rollcall_domain::config::{ConfigKind, DeactivationThreshold, Mode, Role};
use rollcall_domain::setup::{ConfigName, NewPassword, OrgName, SftpUser, SshPublicKey};
use rollcall_domain::values::{Email, PhoneRegion};
use rollcall_domain::{Action, RunId, RunStatus};
use rollcall_store::{
    NewAdmin, NewConfig, OrgStore, RunRecord, SftpCredentials, SourceConfig, Store, StoreError,
    credentials,
};
use rollcall_sync::{FileInput, ReadProgress, RunMeta, Start, SyncError, exports};

use crate::cli::{
    AdminCommand, Command, ConfigCommand, ConfigCreateArgs, ConfigUpdateArgs, DbArgs, KindArg,
    LogFormat, ModeArg, OperatorTokenCommand, OrgCommand, OrgListArgs, RunsCommand, SyncArgs,
    TokenCommand,
};
use crate::{CmdResult, Failure, settings_for, usage};

/// The name of the SCIM configuration `token create` makes when none is named.
const DEFAULT_SCIM_CONFIG: &str = "SCIM";

pub async fn run(command: Command) -> CmdResult {
    match command {
        Command::Serve(_) => Err(usage("serve is not an operator command")),
        Command::Org(OrgCommand::Create {
            db,
            name,
            provisioning,
        }) => org_create(&db, &name, provisioning).await,
        Command::Token(TokenCommand::Create { db, org, config }) => {
            token_create(&db, &org, config.as_deref()).await
        }
        // clap makes --id and a token exclusive, and --id and --org go together.
        Command::Token(TokenCommand::Revoke {
            db,
            id: Some(id),
            org: Some(org),
            ..
        }) => token_revoke_by_id(&db, &org, &id).await,
        Command::Token(TokenCommand::Revoke { db, token, .. }) => token_revoke(&db, token).await,
        Command::Token(TokenCommand::List(OrgListArgs { db, org, json })) => {
            token_list(&db, &org, json).await
        }
        Command::OperatorToken(OperatorTokenCommand::Create { db, name }) => {
            let store = store(&db).await?;
            let token = store
                .create_operator_token(name.trim())
                .await
                .map_err(store_failure)?;
            println!("{token}");
            Ok(())
        }
        Command::OperatorToken(OperatorTokenCommand::Revoke { db, token }) => {
            let token = match token {
                Some(t) => t,
                None => read_secret("operator token")?,
            };
            let store = store(&db).await?;
            let done = store
                .revoke_operator_token(token.trim())
                .await
                .map_err(store_failure)?;
            revoked(done, "no such live operator token")
        }
        Command::Config(ConfigCommand::Create(args)) => config_create(args).await,
        Command::Config(ConfigCommand::Update(args)) => config_update(args).await,
        Command::Admin(AdminCommand::Create {
            db,
            org,
            email,
            role,
            sync_access,
            password_stdin: _,
        }) => admin_create(&db, &org, &email, &role, sync_access).await,
        Command::Sync(args) => sync(args).await,
        Command::Runs(RunsCommand::List(OrgListArgs { db, org, json })) => {
            runs_list(&db, &org, json).await
        }
        Command::Runs(RunsCommand::Logs {
            db,
            run,
            format,
            output,
            org,
        }) => runs_logs(&db, &run, format, &output, org.as_deref()).await,
        Command::Runs(RunsCommand::Cancel { db, run, json }) => runs_cancel(&db, &run, json).await,
        Command::Runs(RunsCommand::Approve { db, run, json }) => {
            runs_approve(&db, &run, json).await
        }
    }
}

async fn store(db: &DbArgs) -> Result<Store, Failure> {
    let settings = settings_for(db)?;
    crate::open_store(&settings)
        .await
        .map_err(|e| usage(format!("{e:#}")))
}

fn store_failure(e: StoreError) -> Failure {
    match e {
        StoreError::NotFound(what) => usage(what),
        refused @ (StoreError::Conflict(_) | StoreError::RunStatus { .. }) => {
            usage(refused.to_string())
        }
        other => Failure::Internal(other.into()),
    }
}

async fn find_org(store: &Store, org: &str) -> Result<OrgStore, Failure> {
    match store.find_org(org).await {
        Ok(found) => Ok(store.org(found.id)),
        Err(StoreError::NotFound(_)) => Err(usage(format!(
            "unknown organisation '{org}': give its id or name"
        ))),
        Err(e) => Err(store_failure(e)),
    }
}

async fn find_config(org: &OrgStore, name: &str) -> Result<SourceConfig, Failure> {
    match org.config(name).await {
        Ok(config) => Ok(config),
        Err(StoreError::NotFound(_)) => {
            let known: Vec<String> = org
                .configs()
                .await
                .map_err(store_failure)?
                .into_iter()
                .map(|c| c.name)
                .collect();
            Err(usage(format!(
                "unknown configuration '{name}' in this organisation (configurations: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )))
        }
        Err(e) => Err(store_failure(e)),
    }
}

/// A secret from standard input: its first line, without the line ending.
fn read_secret(what: &str) -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| usage(format!("cannot read the {what} from standard input: {e}")))?;
    let secret = text.lines().next().unwrap_or_default().to_owned();
    if secret.is_empty() {
        return Err(usage(format!("the {what} on standard input is empty")));
    }
    Ok(secret)
}

async fn org_create(db: &DbArgs, name: &str, provisioning: bool) -> CmdResult {
    let name = OrgName::parse(name).map_err(|e| usage(format!("the organisation name {e}")))?;
    let store = store(db).await?;
    let org = store
        .create_org(name.as_str(), provisioning)
        .await
        .map_err(store_failure)?;
    println!("{}", org.id);
    Ok(())
}

async fn token_create(db: &DbArgs, org: &str, config: Option<&str>) -> CmdResult {
    let store = store(db).await?;
    let org = find_org(&store, org).await?;
    let config = match config {
        Some(name) => {
            let config = find_config(&org, name).await?;
            if config.kind != ConfigKind::Scim {
                return Err(usage(format!(
                    "configuration '{name}' is a {} configuration: SCIM tokens belong to a scim configuration",
                    config.kind
                )));
            }
            config
        }
        None => match org
            .configs()
            .await
            .map_err(store_failure)?
            .into_iter()
            .find(|c| c.kind == ConfigKind::Scim)
        {
            Some(config) => config,
            None => org
                .create_config(NewConfig {
                    name: DEFAULT_SCIM_CONFIG.into(),
                    kind: ConfigKind::Scim,
                    mode: Mode::Active,
                    mapping: None,
                    deactivation_threshold: None,
                    notify_email: None,
                    phone_region: None,
                    sftp_user: None,
                    sftp_password_hash: None,
                    sftp_keys: vec![],
                })
                .await
                .map_err(store_failure)?,
        },
    };
    let token = org.create_token(&config.id).await.map_err(store_failure)?;
    println!("{token}");
    Ok(())
}

async fn token_revoke(db: &DbArgs, token: Option<String>) -> CmdResult {
    let token = match token {
        Some(t) => t,
        None => read_secret("token")?,
    };
    let store = store(db).await?;
    let done = store
        .revoke_token(token.trim())
        .await
        .map_err(store_failure)?;
    revoked(
        done,
        "no active token matches: it may be mistyped or already revoked",
    )
}

async fn token_revoke_by_id(db: &DbArgs, org: &str, id: &str) -> CmdResult {
    let store = store(db).await?;
    let org = find_org(&store, org).await?;
    let done = org
        .revoke_token_by_id(id.trim())
        .await
        .map_err(store_failure)?;
    revoked(
        done,
        format!(
            "the organisation has no live token with id '{}': see `rollcall token list`",
            id.trim()
        ),
    )
}

/// What a revocation prints: `revoked`, or why nothing was revoked.
fn revoked(done: bool, otherwise: impl Into<String>) -> CmdResult {
    if done {
        println!("revoked");
        Ok(())
    } else {
        Err(usage(otherwise.into()))
    }
}

async fn token_list(db: &DbArgs, org: &str, json: bool) -> CmdResult {
    let store = store(db).await?;
    let org = find_org(&store, org).await?;
    let tokens = org.tokens().await.map_err(store_failure)?;
    let stamp = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    if json {
        let rfc3339 = |t: &chrono::DateTime<chrono::Utc>| {
            serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        let list = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "configuration": t.config_name,
                    "created_at": rfc3339(&t.created_at),
                    "last_used_at": t.last_used_at.as_ref().map(rfc3339),
                    "revoked_at": t.revoked_at.as_ref().map(rfc3339),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{:<36}  {:<20}  {:<19}  {:<19}  REVOKED (UTC)",
        "TOKEN ID", "CONFIGURATION", "CREATED (UTC)", "LAST USED (UTC)"
    );
    for t in &tokens {
        println!(
            "{:<36}  {:<20}  {:<19}  {:<19}  {}",
            t.id,
            t.config_name,
            stamp(&t.created_at),
            t.last_used_at.as_ref().map(stamp).unwrap_or("never".into()),
            t.revoked_at.as_ref().map(stamp).unwrap_or("-".into()),
        );
    }
    Ok(())
}

/// The OpenSSH public key in the file at `path`.
fn read_public_key(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the public key {}: {e}",
            path.display()
        ))
    })?;
    SshPublicKey::parse(&text)
        .map(SshPublicKey::into_string)
        .ok_or_else(|| {
            usage(format!(
                "{} is not an OpenSSH public key: expected a line like 'ssh-ed25519 AAAA… comment'",
                path.display()
            ))
        })
}

/// A new password (`what`: whose) from standard input, hashed.
fn read_new_password(what: &str) -> Result<String, Failure> {
    let password =
        NewPassword::parse(read_secret(what)?).map_err(|e| usage(format!("the {what} {e}")))?;
    credentials::hash_password(password.expose()).map_err(|e| Failure::Internal(anyhow::anyhow!(e)))
}

async fn config_update(args: ConfigUpdateArgs) -> CmdResult {
    let sftp_user = args
        .sftp_user
        .as_deref()
        .map(SftpUser::parse)
        .transpose()
        .map_err(usage)?;
    let keys = if args.sftp_no_keys {
        Some(vec![])
    } else if args.sftp_key.is_empty() {
        None
    } else {
        Some(
            args.sftp_key
                .iter()
                .map(|p| read_public_key(p))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    let password_hash = if args.sftp_password_stdin {
        Some(Some(read_new_password("SFTP password")?))
    } else if args.sftp_no_password {
        Some(None)
    } else {
        None
    };
    let store = store(&args.db).await?;
    let org = find_org(&store, &args.org).await?;
    let config = find_config(&org, &args.name).await?;
    let creds = SftpCredentials {
        user: sftp_user.map(SftpUser::into_string),
        password_hash,
        keys,
    };
    let sftp_change = creds.user.is_some() || creds.password_hash.is_some() || creds.keys.is_some();
    if sftp_change {
        if config.kind != ConfigKind::Sftp {
            return Err(usage(format!(
                "configuration '{}' is a {} configuration: SFTP settings are for sftp configurations",
                config.name, config.kind
            )));
        }
        if config.sftp_user.is_none() && creds.user.is_none() {
            return Err(usage(
                "this configuration has no SFTP login yet: give --sftp-user",
            ));
        }
        org.update_sftp_credentials(&config.id, creds)
            .await
            .map_err(store_failure)?;
    }
    if let Some(mode) = args.mode {
        let mode = match mode {
            ModeArg::Active => Mode::Active,
            ModeArg::DryRun => Mode::DryRun,
        };
        org.set_config_mode(&config.id, mode)
            .await
            .map_err(store_failure)?;
    }
    if !sftp_change && args.mode.is_none() {
        return Err(usage(
            "nothing to change: give --mode or an --sftp-… option",
        ));
    }
    println!("{}", config.id);
    Ok(())
}

async fn config_create(args: ConfigCreateArgs) -> CmdResult {
    let kind = match args.kind {
        KindArg::Sftp => ConfigKind::Sftp,
        KindArg::Scim => ConfigKind::Scim,
        KindArg::Workday => ConfigKind::Workday,
        KindArg::GoogleWorkspace => ConfigKind::GoogleWorkspace,
    };
    let name =
        ConfigName::parse(&args.name).map_err(|e| usage(format!("the configuration name {e}")))?;
    // Check everything before touching the database.
    let mapping = match (&args.mapping, kind.needs_mapping()) {
        (Some(path), true) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                usage(format!(
                    "cannot read the mapping file {}: {e}",
                    path.display()
                ))
            })?;
            Some(
                rollcall_hrfile::mapping_file::parse_mapping(&text)
                    .map_err(|e| usage(format!("mapping {}: {e}", path.display())))?,
            )
        }
        (None, true) => {
            return Err(usage(format!(
                "a {kind} configuration needs --mapping FILE.toml mapping at least external_id, username and active"
            )));
        }
        (Some(_), false) => {
            return Err(usage(
                "a scim configuration uses the SCIM attribute mapping: remove --mapping",
            ));
        }
        (None, false) => None,
    };
    let sftp_given =
        args.sftp_user.is_some() || args.sftp_password_stdin || args.sftp_key.is_some();
    if sftp_given && kind != ConfigKind::Sftp {
        return Err(usage(
            "--sftp-user, --sftp-password-stdin and --sftp-key are for sftp configurations",
        ));
    }
    if (args.sftp_password_stdin || args.sftp_key.is_some()) && args.sftp_user.is_none() {
        return Err(usage(
            "--sftp-password-stdin and --sftp-key need --sftp-user",
        ));
    }
    let sftp_user = args
        .sftp_user
        .as_deref()
        .map(SftpUser::parse)
        .transpose()
        .map_err(usage)?;
    let sftp_keys = match &args.sftp_key {
        Some(path) => vec![read_public_key(path)?],
        None => vec![],
    };
    let deactivation_threshold = args
        .deactivation_threshold
        .as_deref()
        .map(DeactivationThreshold::parse)
        .transpose()
        .map_err(usage)?;
    let notify_email = args
        .notify
        .as_deref()
        .map(|e| Email::parse(e).map(|e| e.as_str().to_owned()))
        .transpose()
        .map_err(|e| usage(format!("--notify: {e}")))?;
    let phone_region = args
        .phone_region
        .as_deref()
        .map(PhoneRegion::parse)
        .transpose()
        .map_err(|e| usage(format!("--phone-region: {e}")))?;
    let mode = match args.mode {
        Some(ModeArg::Active) => Mode::Active,
        Some(ModeArg::DryRun) => Mode::DryRun,
        // A new file or pull configuration starts in dry run (SPEC §4); SCIM pushes apply.
        None if kind == ConfigKind::Scim => Mode::Active,
        None => Mode::DryRun,
    };
    let sftp_password_hash = if args.sftp_password_stdin {
        Some(read_new_password("SFTP password")?)
    } else {
        None
    };

    let store = store(&args.db).await?;
    let org = find_org(&store, &args.org).await?;
    let config = org
        .create_config(NewConfig {
            name: name.into_string(),
            kind,
            mode,
            mapping,
            deactivation_threshold,
            notify_email,
            phone_region,
            sftp_user: sftp_user.map(SftpUser::into_string),
            sftp_password_hash,
            sftp_keys,
        })
        .await
        .map_err(store_failure)?;
    println!("{}", config.id);
    Ok(())
}

async fn admin_create(
    db: &DbArgs,
    org: &str,
    email: &str,
    role: &str,
    sync_access: bool,
) -> CmdResult {
    let email = Email::parse(email).map_err(|e| usage(format!("--email: {e}")))?;
    let role = Role::parse(role).ok_or_else(|| {
        usage(format!(
            "unknown role '{role}': valid roles are {}",
            Role::valid_codes()
        ))
    })?;
    let password_hash = read_new_password("password")?;
    let store = store(db).await?;
    let org = find_org(&store, org).await?;
    let admin = org
        .create_admin(NewAdmin {
            email: email.as_str().to_owned(),
            role,
            sync_access,
            password_hash,
        })
        .await
        .map_err(store_failure)?;
    println!("{}", admin.id);
    Ok(())
}

/// Progress on a terminal: a bar by bytes read, with rows, rate and ETA. Elsewhere: a plain
/// line every few seconds.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    quiet: bool,
}

impl Progress {
    fn new(total: u64, quiet: bool) -> Progress {
        let bar = (std::io::stderr().is_terminal() && !quiet).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {bytes}/{total_bytes} · {msg} · ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            quiet,
        }
    }
}

impl ReadProgress for Progress {
    fn read(&mut self, rows: u64, bytes: u64) {
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
            }
            None if !self.quiet && self.last_line.elapsed() > Duration::from_secs(2) => {
                eprintln!("read {rows} rows ({rate:.0} rows/s)");
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn sync(args: SyncArgs) -> CmdResult {
    let settings = settings_for(&args.db)?;
    let store = crate::open_store(&settings)
        .await
        .map_err(|e| usage(format!("{e:#}")))?;
    let result = sync_in(&store, &settings, args).await;
    // Closed, SQLite's last connection folds the write-ahead log into the database and
    // deletes it; left open at exit, the next process first reads the whole log back (a
    // first sync of a million rows leaves 1.3 GB of it).
    store.close().await;
    result
}

async fn sync_in(store: &Store, settings: &crate::Settings, args: SyncArgs) -> CmdResult {
    let org = find_org(store, &args.org).await?;
    let config = find_config(&org, &args.config).await?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| usage(format!("cannot open {}: {e}", args.file.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = RunMeta {
        trigger: rollcall_domain::Trigger::Cli,
        file_name: Some(file_name.clone()),
        file_sha256: None,
        dry_run: args.dry_run,
    };
    let input = FileInput {
        path: &args.file,
        name: &file_name,
    };
    let progress = Box::new(Progress::new(total, args.json));
    let run = crate::engine(store.clone(), settings)
        .run_file(&org, &config, Start::New(&meta), input, progress)
        .await
        .map_err(sync_failure)?;
    report(&org, &run, args.json).await
}

/// A run the engine refused is the caller's to fix; anything else failed inside.
fn sync_failure(e: SyncError) -> Failure {
    match e {
        SyncError::Store(e) => store_failure(e),
        refused if refused.is_refusal() => usage(refused.to_string()),
        other => Failure::Internal(other.into()),
    }
}

async fn runs_cancel(db: &DbArgs, run: &str, json: bool) -> CmdResult {
    let store = store(db).await?;
    let run_id = RunId::new(run.trim());
    let org = match store.run_org(&run_id).await {
        Ok(org) => store.org(org),
        Err(StoreError::NotFound(_)) => return Err(usage(format!("unknown run '{run}'"))),
        Err(e) => return Err(store_failure(e)),
    };
    let cancelled = org.cancel_run(&run_id).await.map_err(store_failure)?;
    if json {
        println!("{}", run_json(&cancelled));
    } else {
        println!("run {} cancelled", cancelled.id);
    }
    Ok(())
}

/// Who approved a run with `rollcall runs approve`.
const APPROVED_VIA_CLI: &str = "operator via CLI";

async fn runs_approve(db: &DbArgs, run: &str, json: bool) -> CmdResult {
    let settings = settings_for(db)?;
    let store = crate::open_store(&settings)
        .await
        .map_err(|e| usage(format!("{e:#}")))?;
    let run_id = RunId::new(run.trim());
    let org = match store.run_org(&run_id).await {
        Ok(org) => store.org(org),
        Err(StoreError::NotFound(_)) => return Err(usage(format!("unknown run '{run}'"))),
        Err(e) => return Err(store_failure(e)),
    };
    let applied = crate::engine(store.clone(), &settings)
        .approve(&run_id, APPROVED_VIA_CLI)
        .await
        .map_err(sync_failure)?;
    report(&org, &applied, json).await
}

fn run_json(run: &RunRecord) -> serde_json::Value {
    let c = &run.counts;
    serde_json::json!({
        "run_id": run.id.as_str(),
        "status": run.status.code(),
        "status_label": run.status.label(),
        "configuration": run.config_name,
        "connector": run.connector,
        "dry_run": run.dry_run,
        "file_name": run.file_name,
        "file_sha256": run.file_sha256,
        "queued_at": run.queued_at.to_rfc3339(),
        "started_at": run.started_at.map(|t| t.to_rfc3339()),
        "ended_at": run.ended_at.map(|t| t.to_rfc3339()),
        "duration_ms": run.duration().map(|d| d.num_milliseconds()),
        "created": c.created,
        "updated": c.updated,
        "deactivated": c.deactivated,
        "reactivated": c.reactivated,
        "unchanged": c.unchanged,
        "skipped": c.skipped,
        "failed": c.failed,
        "warnings": c.warnings,
        "threshold_hit": run.threshold_hit.map(|t| t.to_string()),
        "threshold_note": threshold_note(run),
        "approved_by": run.approval.as_ref().map(|a| a.by.as_str()),
        "approved_at": run.approval.as_ref().map(|a| a.at.to_rfc3339()),
    })
}

fn threshold_note(run: &RunRecord) -> Option<String> {
    rollcall_domain::run::threshold_note(
        run.status,
        run.dry_run,
        run.counts.deactivated,
        run.threshold_hit,
    )
}

/// Print a run's outcome and choose the exit code.
async fn report(org: &OrgStore, run: &RunRecord, json: bool) -> CmdResult {
    if json {
        println!("{}", run_json(run));
    } else {
        let c = &run.counts;
        println!("Run         {}", run.id);
        println!(
            "Status      {}{}",
            run.status.label(),
            if run.dry_run {
                " (dry run: nothing applied)"
            } else {
                ""
            }
        );
        if let Some(d) = run.duration() {
            println!("Duration    {:.1} s", d.num_milliseconds() as f64 / 1000.0);
        }
        if let Some(a) = &run.approval {
            println!("Approved    by {} at {}", a.by, a.at.to_rfc3339());
        }
        // A dry run's and a blocked run's counts are what it would have done.
        let planned = run.dry_run || run.status == RunStatus::AboveDeactivationThreshold;
        let label = |action: Action| {
            if planned {
                action.planned_label()
            } else {
                action.label()
            }
        };
        let width = if planned { 18 } else { 12 };
        for (action, n) in [
            (Action::Created, c.created),
            (Action::Updated, c.updated),
            (Action::Deactivated, c.deactivated),
            (Action::Reactivated, c.reactivated),
            (Action::Unchanged, c.unchanged),
            (Action::Skipped, c.skipped),
            (Action::Failed, c.failed),
        ] {
            println!("{:<width$}{n}", label(action));
        }
        println!("{:<width$}{}", "Warnings", c.warnings);
    }
    match run.status {
        RunStatus::DataLoadFailed => {
            let logs = org.run_logs(&run.id).await.map_err(store_failure)?;
            for log in logs.iter().take(20) {
                match log.row {
                    Some(line) => eprintln!("line {line}: {}", log.message),
                    None => eprintln!("{}", log.message),
                }
            }
            Err(Failure::RunFailed)
        }
        RunStatus::AboveDeactivationThreshold => {
            eprintln!(
                "the run {}; to apply it, run `rollcall runs approve {}`",
                threshold_note(run).unwrap_or_default(),
                run.id
            );
            Err(Failure::RunFailed)
        }
        _ => {
            if let Some(note) = threshold_note(run) {
                eprintln!("dry run: {note}");
            }
            Ok(())
        }
    }
}

async fn runs_list(db: &DbArgs, org: &str, json: bool) -> CmdResult {
    let store = store(db).await?;
    let org = find_org(&store, org).await?;
    let runs = org.runs(1000).await.map_err(store_failure)?;
    if json {
        println!(
            "{}",
            serde_json::Value::Array(runs.iter().map(run_json).collect())
        );
        return Ok(());
    }
    println!(
        "{:<36}  {:<16}  {:<16}  {:<20}  {:<28}  {:>9}",
        "RUN", "STARTED (UTC)", "CONNECTOR", "CONFIGURATION", "STATUS", "DURATION"
    );
    for run in &runs {
        println!(
            "{:<36}  {:<16}  {:<16}  {:<20}  {:<28}  {:>9}",
            run.id,
            run.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            run.connector,
            run.config_name,
            if run.dry_run {
                format!("{} (dry run)", run.status.label())
            } else {
                run.status.label().to_owned()
            },
            run.duration()
                .map(|d| format!("{:.1} s", d.num_milliseconds() as f64 / 1000.0))
                .unwrap_or_default()
        );
    }
    Ok(())
}

async fn runs_logs(
    db: &DbArgs,
    run: &str,
    format: LogFormat,
    output: &Path,
    org: Option<&str>,
) -> CmdResult {
    let store = store(db).await?;
    let run_id = RunId::new(run.trim());
    let org = match org {
        Some(org) => find_org(&store, org).await?,
        None => match store.run_org(&run_id).await {
            Ok(org) => store.org(org),
            Err(StoreError::NotFound(_)) => return Err(usage(format!("unknown run '{run}'"))),
            Err(e) => return Err(store_failure(e)),
        },
    };
    let record = match org.run(&run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(usage(format!("unknown run '{run}'"))),
        Err(e) => return Err(store_failure(e)),
    };
    // The page and the API decide by the same rule: no file is written for a run without a
    // log (a blocked run's would-be rows are not its log).
    if !record.status.has_logs() {
        return Err(usage(format!(
            "a run that is {} has no log to download",
            record.status.label()
        )));
    }
    let rows = org.run_logs(&run_id).await.map_err(store_failure)?;
    let bytes = match format {
        LogFormat::Csv => {
            let mut out = Vec::new();
            exports::write_csv(&rows, &mut out).map_err(|e| Failure::Internal(e.into()))?;
            out
        }
        LogFormat::Xlsx => exports::write_xlsx(&rows).map_err(|e| Failure::Internal(e.into()))?,
    };
    std::fs::write(output, bytes)
        .map_err(|e| usage(format!("cannot write {}: {e}", output.display())))?;
    let extension = match format {
        LogFormat::Csv => "csv",
        LogFormat::Xlsx => "xlsx",
    };
    let utc = chrono::Utc.fix();
    let started = record.started_at.unwrap_or(record.queued_at);
    eprintln!(
        "wrote {} log rows to {} (download name: {})",
        rows.len(),
        output.display(),
        exports::log_file_name(started, utc, record.dry_run, extension)
    );
    Ok(())
}
