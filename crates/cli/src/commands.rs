//! The operator commands of SPEC §11: their arguments, standard input and files read into
//! checked values, handed to `rollcall_operator`, and what it returns printed. A refused
//! command changes nothing.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rollcall_domain::RunStatus;
use rollcall_domain::config::{ConfigKind, DeactivationThreshold, Mode, Role};
use rollcall_domain::field::FieldKey;
use rollcall_domain::mapping::Mapping;
use rollcall_domain::setup::{NewPassword, SftpUser, SshPublicKey};
use rollcall_domain::values::Email;
use rollcall_operator::{
    AdminChange, ConfigChange, LogFormat, NewAdministrator, NewConfiguration, Operator,
    OperatorError, OrgChange, RUNS_LISTED, RunsFilter, input, text,
};
use rollcall_store::RunRecord;
use rollcall_sync::{Phase, RunProgress};
use tokio::sync::OnceCell;

use serde_json::Value;

use crate::args::{
    AdminArgs, AdminCommand, Command, ConfigArgs, ConfigCommand, ConfigCreateArgs,
    ConfigUpdateArgs, DbArgs, KindArg, LogFormat as LogFormatArg, ModeArg, OnOff,
    OperatorTokenCommand, OrgCommand, OrgListArgs, RunsCommand, RunsListArgs, SyncArgs,
    TokenCommand, UserCommand,
};
use crate::{CmdResult, Databases, Failure, usage};

/// Who the CLI's changes and approvals are recorded as made by.
const ACTING_VIA_CLI: &str = "operator via CLI";

/// Run an operator command (every command but `serve`) against the database its arguments
/// name.
pub async fn run(command: Command, databases: &impl Databases) -> CmdResult {
    let db = match &command {
        Command::Serve(_) => return Err(usage("serve is not an operator command")),
        Command::Org(
            OrgCommand::Create { db, .. }
            | OrgCommand::List { db, .. }
            | OrgCommand::Show { db, .. }
            | OrgCommand::Update { db, .. },
        )
        | Command::Token(
            TokenCommand::Create { db, .. }
            | TokenCommand::Revoke { db, .. }
            | TokenCommand::List(OrgListArgs { db, .. }),
        )
        | Command::OperatorToken(
            OperatorTokenCommand::Create { db, .. } | OperatorTokenCommand::Revoke { db, .. },
        )
        | Command::Admin(
            AdminCommand::Create { db, .. }
            | AdminCommand::List(OrgListArgs { db, .. })
            | AdminCommand::Update {
                admin: AdminArgs { db, .. },
                ..
            }
            | AdminCommand::Disable(AdminArgs { db, .. })
            | AdminCommand::Enable(AdminArgs { db, .. }),
        )
        | Command::Sync(SyncArgs { db, .. })
        | Command::Runs(
            RunsCommand::List(RunsListArgs { db, .. })
            | RunsCommand::Show { db, .. }
            | RunsCommand::Logs { db, .. }
            | RunsCommand::Cancel { db, .. }
            | RunsCommand::Approve { db, .. },
        ) => db,
        Command::Config(
            ConfigCommand::Create(ConfigCreateArgs { db, .. })
            | ConfigCommand::Update(ConfigUpdateArgs { db, .. })
            | ConfigCommand::List(OrgListArgs { db, .. })
            | ConfigCommand::Show { db, .. }
            | ConfigCommand::Disable(ConfigArgs { db, .. })
            | ConfigCommand::Enable(ConfigArgs { db, .. })
            | ConfigCommand::Delete {
                config: ConfigArgs { db, .. },
                ..
            },
        )
        | Command::User(UserCommand::Create { db, .. } | UserCommand::List { db, .. }) => db,
    };
    let operator = Opened {
        db: db.clone(),
        databases,
        operator: OnceCell::new(),
    };
    let result = command_in(&operator, command).await;
    // Closed, SQLite's last connection folds the write-ahead log into the database and
    // deletes it; left open at exit, the next process first reads the whole log back (a
    // first sync of a million rows leaves 1.3 GB of it).
    if let Some(operator) = operator.operator.get() {
        operator.close().await;
    }
    result
}

/// The database, opened only once a command's own input has been checked: a refused
/// command does not even create the data directory.
struct Opened<'a, D> {
    db: DbArgs,
    databases: &'a D,
    operator: OnceCell<Operator>,
}

impl<D: Databases> Opened<'_, D> {
    async fn get(&self) -> Result<&Operator, Failure> {
        self.operator
            .get_or_try_init(|| async {
                let engine = self.databases.engine(&self.db).await?;
                Ok(Operator::new(engine, ACTING_VIA_CLI))
            })
            .await
    }
}

async fn command_in(opened: &Opened<'_, impl Databases>, command: Command) -> CmdResult {
    match command {
        Command::Serve(_) => Err(usage("serve is not an operator command")),
        Command::Org(OrgCommand::Create {
            name, provisioning, ..
        }) => {
            let name = input::org_name(&name).map_err(usage)?;
            println!(
                "{}",
                opened
                    .get()
                    .await?
                    .create_org(&name, provisioning)
                    .await?
                    .id
            );
            Ok(())
        }
        Command::Org(OrgCommand::List { json, .. }) => {
            let orgs = opened.get().await?.orgs().await?;
            print_either(
                json,
                || orgs.iter().map(text::org_json).collect::<Value>(),
                || text::orgs_table(&orgs),
            )
        }
        Command::Org(OrgCommand::Show { org, json, .. }) => {
            let details = opened.get().await?.org_details(&org).await?;
            print_either(
                json,
                || text::org_details_json(&details),
                || text::org_details_text(&details),
            )
        }
        Command::Org(OrgCommand::Update {
            org,
            name,
            provisioning,
            ..
        }) => {
            let change = OrgChange {
                name: name
                    .as_deref()
                    .map(input::org_name)
                    .transpose()
                    .map_err(usage)?,
                provisioning: provisioning.map(OnOff::is_on),
            };
            let updated = opened.get().await?.update_org(&org, change).await?;
            println!("{}", text::org_json(&updated));
            Ok(())
        }
        Command::Config(ConfigCommand::List(OrgListArgs { org, json, .. })) => {
            let configs = opened.get().await?.configs(&org).await?;
            print_either(
                json,
                || configs.iter().map(text::config_json).collect::<Value>(),
                || text::configs_table(&configs),
            )
        }
        Command::Config(ConfigCommand::Show {
            org, name, json, ..
        }) => {
            let op = opened.get().await?;
            let config = op.config(&op.org(&org).await?, &name).await?;
            print_either(
                json,
                || text::config_json(&config),
                || text::config_text(&config),
            )
        }
        Command::Config(ConfigCommand::Disable(ConfigArgs { org, name, .. })) => {
            let config = opened
                .get()
                .await?
                .set_config_disabled(&org, &name, true)
                .await?;
            println!("{}", text::config_json(&config));
            Ok(())
        }
        Command::Config(ConfigCommand::Enable(ConfigArgs { org, name, .. })) => {
            let config = opened
                .get()
                .await?
                .set_config_disabled(&org, &name, false)
                .await?;
            println!("{}", text::config_json(&config));
            Ok(())
        }
        Command::Config(ConfigCommand::Delete {
            config: ConfigArgs { org, name, .. },
            release_users,
        }) => {
            let released = opened
                .get()
                .await?
                .delete_config(&org, &name, release_users)
                .await?;
            println!("deleted configuration '{name}'; {released} users released (now unmanaged)");
            Ok(())
        }
        Command::User(UserCommand::Create {
            org,
            username,
            email,
            first_name,
            second_name,
            employee_id,
            mobile,
            field,
            json,
            ..
        }) => {
            let mut cells = vec![(FieldKey::Username, username)];
            let named = [
                (FieldKey::Email, email),
                (FieldKey::FirstName, first_name),
                (FieldKey::SecondName, second_name),
                (FieldKey::EmployeeId, employee_id),
                (FieldKey::PhoneMobile, mobile),
            ];
            cells.extend(named.into_iter().filter_map(|(k, v)| Some((k, v?))));
            for given in &field {
                cells.push(parse_field(given)?);
            }
            let user = opened.get().await?.create_user(&org, &cells).await?;
            if json {
                println!("{}", text::user_json(&user, None));
            } else {
                println!("{}", user.id);
            }
            Ok(())
        }
        Command::User(UserCommand::List {
            org,
            unmanaged,
            search,
            limit,
            json,
            ..
        }) => {
            let users = opened
                .get()
                .await?
                .users(&org, &search, unmanaged, limit)
                .await?;
            print_either(
                json,
                || {
                    users
                        .iter()
                        .map(|(u, by)| text::user_json(u, by.as_deref()))
                        .collect::<Value>()
                },
                || text::users_table(&users),
            )
        }
        Command::Admin(AdminCommand::List(OrgListArgs { org, json, .. })) => {
            let admins = opened.get().await?.admins(&org).await?;
            print_either(
                json,
                || admins.iter().map(text::admin_json).collect::<Value>(),
                || text::admins_table(&admins),
            )
        }
        Command::Admin(AdminCommand::Update {
            admin: AdminArgs { org, email, .. },
            role,
            sync_access,
            password_stdin,
            ..
        }) => {
            let email = parse_email(&email)?;
            let change = AdminChange {
                role: role.as_deref().map(parse_role).transpose()?,
                sync_access: sync_access.map(OnOff::is_on),
                password: password_stdin
                    .then(|| read_new_password("password"))
                    .transpose()?,
            };
            let admin = opened
                .get()
                .await?
                .update_admin(&org, &email, change)
                .await?;
            println!("{}", text::admin_json(&admin));
            Ok(())
        }
        Command::Admin(AdminCommand::Disable(AdminArgs { org, email, .. })) => {
            let email = parse_email(&email)?;
            let admin = opened
                .get()
                .await?
                .set_admin_disabled(&org, &email, true)
                .await?;
            println!("{}", text::admin_json(&admin));
            Ok(())
        }
        Command::Admin(AdminCommand::Enable(AdminArgs { org, email, .. })) => {
            let email = parse_email(&email)?;
            let admin = opened
                .get()
                .await?
                .set_admin_disabled(&org, &email, false)
                .await?;
            println!("{}", text::admin_json(&admin));
            Ok(())
        }
        Command::Token(TokenCommand::Create { org, config, .. }) => {
            println!(
                "{}",
                opened
                    .get()
                    .await?
                    .create_scim_token(&org, config.as_deref())
                    .await?
            );
            Ok(())
        }
        // clap makes --id and a token exclusive, and --id and --org go together.
        Command::Token(TokenCommand::Revoke {
            id: Some(id),
            org: Some(org),
            ..
        }) => revoked(opened.get().await?.revoke_token_by_id(&org, &id).await),
        Command::Token(TokenCommand::Revoke { token, .. }) => {
            let token = secret_or_stdin(token, "token")?;
            revoked(opened.get().await?.revoke_token(&token).await)
        }
        Command::Token(TokenCommand::List(OrgListArgs { org, json, .. })) => {
            let tokens = opened.get().await?.tokens(&org).await?;
            print_either(
                json,
                || text::tokens_json(&tokens),
                || text::tokens_table(&tokens),
            )
        }
        Command::OperatorToken(OperatorTokenCommand::Create { name, .. }) => {
            println!(
                "{}",
                opened.get().await?.create_operator_token(&name).await?
            );
            Ok(())
        }
        Command::OperatorToken(OperatorTokenCommand::Revoke { token, .. }) => {
            let token = secret_or_stdin(token, "operator token")?;
            revoked(opened.get().await?.revoke_operator_token(&token).await)
        }
        Command::Config(ConfigCommand::Create(args)) => {
            let org = args.org.clone();
            let new = new_configuration(args)?;
            let config = opened.get().await?.create_config(&org, new).await?;
            println!("{}", config.id);
            Ok(())
        }
        Command::Config(ConfigCommand::Update(args)) => {
            let (org, name) = (args.org.clone(), args.name.clone());
            let change = config_change(args)?;
            let config = opened
                .get()
                .await?
                .update_config(&org, &name, change)
                .await?;
            println!("{}", config.id);
            Ok(())
        }
        Command::Admin(AdminCommand::Create {
            org,
            email,
            role,
            sync_access,
            password_stdin: _,
            ..
        }) => {
            let email = parse_email(&email)?;
            let role = parse_role(&role)?;
            let admin = NewAdministrator {
                email,
                role,
                sync_access,
                password: read_new_password("password")?,
            };
            println!(
                "{}",
                opened.get().await?.create_admin(&org, admin).await?.id
            );
            Ok(())
        }
        Command::Sync(args) => {
            let total = std::fs::metadata(&args.file)
                .map_err(|e| usage(format!("cannot open {}: {e}", args.file.display())))?
                .len();
            let progress = Box::new(Progress::new(total, args.json));
            let op = opened.get().await?;
            let run = op
                .sync_file(&args.org, &args.config, &args.file, args.dry_run, progress)
                .await?;
            report(op, &run, args.json).await
        }
        Command::Runs(RunsCommand::List(args)) => {
            let op = opened.get().await?;
            let runs = if args.bulk_update {
                op.bulk_update_runs(&args.org, RUNS_LISTED).await?
            } else {
                let filter = RunsFilter {
                    status: args.status.as_deref(),
                    config: args.config.as_deref(),
                    since: args.since.as_deref(),
                };
                op.runs(&args.org, &filter, RUNS_LISTED).await?
            };
            if args.json {
                let runs = op.with_errors(runs).await?;
                let listed: Value = runs.iter().map(|(r, e)| text::run_json(r, e)).collect();
                println!("{listed}");
                Ok(())
            } else {
                print!("{}", text::runs_table(&runs));
                Ok(())
            }
        }
        Command::Runs(RunsCommand::Logs {
            run,
            format,
            output,
            org,
            ..
        }) => {
            let format = match format {
                LogFormatArg::Csv => LogFormat::Csv,
                LogFormatArg::Xlsx => LogFormat::Xlsx,
            };
            let file = opened
                .get()
                .await?
                .log_file(&run, org.as_deref(), format)
                .await?;
            let written = match output {
                Some(path) if path.as_os_str() == "-" => {
                    std::io::stdout()
                        .write_all(&file.bytes)
                        .map_err(|e| usage(format!("cannot write the log: {e}")))?;
                    return Ok(());
                }
                Some(path) => path,
                None => {
                    let path = std::path::PathBuf::from(&file.download_name);
                    if path.exists() {
                        return Err(usage(format!(
                            "'{}' already exists here: move it, or name another file with --output",
                            file.download_name
                        )));
                    }
                    path
                }
            };
            std::fs::write(&written, &file.bytes)
                .map_err(|e| usage(format!("cannot write {}: {e}", written.display())))?;
            eprintln!(
                "wrote {} log rows to {} (download name: {})",
                file.rows,
                written.display(),
                file.download_name
            );
            Ok(())
        }
        Command::Runs(RunsCommand::Show { run, json, .. }) => {
            let op = opened.get().await?;
            let (run, mapping) = op.run_details(&run).await?;
            let errors = op.load_errors(&run).await?;
            print_either(
                json,
                || text::run_details_json(&run, mapping.as_ref(), &errors),
                || text::run_details_text(&run, mapping.as_ref()),
            )
        }
        Command::Runs(RunsCommand::Cancel { run, json, .. }) => {
            let cancelled = opened.get().await?.cancel_run(&run).await?;
            print_either(
                json,
                || text::run_json(&cancelled, &[]),
                || format!("run {} cancelled\n", cancelled.id),
            )
        }
        Command::Runs(RunsCommand::Approve { run, json, .. }) => {
            let op = opened.get().await?;
            let applied = op.approve_run(&run).await?;
            report(op, &applied, json).await
        }
    }
}

impl From<OperatorError> for Failure {
    fn from(e: OperatorError) -> Failure {
        match e {
            OperatorError::Refused(why)
            | OperatorError::NotFound(why)
            | OperatorError::Conflict(why) => Failure::Usage(why),
            other => Failure::Internal(other.into()),
        }
    }
}

/// Print one JSON value on one line, or else the text as it is.
fn print_either(
    json: bool,
    as_json: impl FnOnce() -> Value,
    as_text: impl FnOnce() -> String,
) -> CmdResult {
    if json {
        println!("{}", as_json());
    } else {
        print!("{}", as_text());
    }
    Ok(())
}

/// Print a run's outcome and choose the exit code: 1 when it did not apply.
async fn report(op: &Operator, run: &RunRecord, json: bool) -> CmdResult {
    let logs = op.load_errors(run).await?;
    if json {
        println!("{}", text::run_json(run, &logs));
    } else {
        print!("{}", text::run_summary(run));
        if let Some(hint) = text::attention_hint(run) {
            eprintln!("{hint}");
        }
    }
    for line in text::run_problems(run, &logs) {
        eprintln!("{line}");
    }
    match run.status {
        RunStatus::DataLoadFailed | RunStatus::AboveDeactivationThreshold => {
            Err(Failure::RunFailed)
        }
        _ => Ok(()),
    }
}

/// What a revocation prints: `revoked`, or why nothing was revoked.
fn revoked(done: Result<(), OperatorError>) -> CmdResult {
    done?;
    println!("revoked");
    Ok(())
}

fn parse_email(email: &str) -> Result<Email, Failure> {
    input::email("--email", email).map_err(usage)
}

fn parse_role(role: &str) -> Result<Role, Failure> {
    input::role(role).map_err(usage)
}

/// A secret given as an argument, or else read from standard input.
fn secret_or_stdin(given: Option<String>, what: &str) -> Result<String, Failure> {
    match given {
        Some(secret) => Ok(secret),
        None => read_secret(what),
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

/// A new password (`what`: whose) from standard input.
fn read_new_password(what: &str) -> Result<NewPassword, Failure> {
    input::new_password(what, read_secret(what)?).map_err(usage)
}

/// The OpenSSH public key in the file at `path`.
fn read_public_key(path: &Path) -> Result<SshPublicKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the public key {}: {e}",
            path.display()
        ))
    })?;
    input::public_key(&path.display().to_string(), &text).map_err(usage)
}

/// The mapping in the TOML file at `path`.
fn read_mapping(path: &Path) -> Result<Mapping, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the mapping file {}: {e}",
            path.display()
        ))
    })?;
    input::mapping(&format!("mapping {}", path.display()), &text).map_err(usage)
}

fn mode(arg: ModeArg) -> Mode {
    match arg {
        ModeArg::Active => Mode::Active,
        ModeArg::DryRun => Mode::DryRun,
    }
}

fn new_configuration(args: ConfigCreateArgs) -> Result<NewConfiguration, Failure> {
    let kind = match args.kind {
        KindArg::Sftp => ConfigKind::Sftp,
        KindArg::Scim => ConfigKind::Scim,
        KindArg::Workday => ConfigKind::Workday,
        KindArg::GoogleWorkspace => ConfigKind::GoogleWorkspace,
    };
    let name = input::config_name(&args.name).map_err(usage)?;
    Ok(NewConfiguration {
        name,
        kind,
        mode: args.mode.map(mode),
        mapping: args.mapping.as_deref().map(read_mapping).transpose()?,
        sftp_user: args
            .sftp_user
            .as_deref()
            .map(SftpUser::parse)
            .transpose()
            .map_err(usage)?,
        sftp_keys: args
            .sftp_key
            .as_deref()
            .map(read_public_key)
            .into_iter()
            .collect::<Result<_, _>>()?,
        deactivation_threshold: args
            .deactivation_threshold
            .as_deref()
            .map(DeactivationThreshold::parse)
            .transpose()
            .map_err(usage)?,
        notify: args
            .notify
            .as_deref()
            .map(|e| input::email("--notify", e))
            .transpose()
            .map_err(usage)?,
        phone_region: args
            .phone_region
            .as_deref()
            .map(|r| input::phone_region("--phone-region", r))
            .transpose()
            .map_err(usage)?,
        // Read last, once everything else is known to be right.
        sftp_password: args
            .sftp_password_stdin
            .then(|| read_new_password("SFTP password"))
            .transpose()?,
    })
}

/// An optional setting's new value: `none` empties it.
fn or_none<T>(
    given: Option<&str>,
    parse: impl Fn(&str) -> Result<T, Failure>,
) -> Result<Option<Option<T>>, Failure> {
    match given.map(str::trim) {
        None => Ok(None),
        Some(none) if none.eq_ignore_ascii_case("none") => Ok(Some(None)),
        Some(value) => parse(value).map(|v| Some(Some(v))),
    }
}

fn config_change(args: ConfigUpdateArgs) -> Result<ConfigChange, Failure> {
    let sftp_user = args
        .sftp_user
        .as_deref()
        .map(SftpUser::parse)
        .transpose()
        .map_err(usage)?;
    let sftp_keys = if args.sftp_no_keys {
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
    let sftp_password = if args.sftp_password_stdin {
        Some(Some(read_new_password("SFTP password")?))
    } else if args.sftp_no_password {
        Some(None)
    } else {
        None
    };
    Ok(ConfigChange {
        rename: args
            .rename
            .as_deref()
            .map(input::config_name)
            .transpose()
            .map_err(usage)?,
        mode: args.mode.map(mode),
        mapping: args.mapping.as_deref().map(read_mapping).transpose()?,
        deactivation_threshold: or_none(args.deactivation_threshold.as_deref(), |t| {
            DeactivationThreshold::parse(t).map_err(usage)
        })?,
        notify: or_none(args.notify.as_deref(), |e| {
            input::email("--notify", e).map_err(usage)
        })?,
        phone_region: or_none(args.phone_region.as_deref(), |r| {
            input::phone_region("--phone-region", r).map_err(usage)
        })?,
        sftp_user,
        sftp_password,
        sftp_keys,
    })
}

/// Progress on a terminal: a bar by bytes read, with rows, rate and ETA. Elsewhere: a plain
/// line every few seconds.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    quiet: bool,
    /// Whether the later phases are named (the reading was shown, or took long).
    talking: bool,
    phase_started: Instant,
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
            talking: false,
            phase_started: Instant::now(),
        }
    }
}

impl RunProgress for Progress {
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

    /// The file is read; the phases that follow are named as they begin ([`Progress::phase`]).
    fn done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let took = self.started.elapsed();
        self.talking = self.bar.is_some() || (!self.quiet && took > Duration::from_secs(2));
        if self.talking {
            eprintln!("read the file in {:.1} s", took.as_secs_f64());
        }
        self.phase_started = Instant::now();
    }

    /// Planning, then applying and writing the log: for a large file each takes a while, so
    /// each is named (with how long the one before took) when a terminal saw the reading.
    fn phase(&mut self, phase: Phase) {
        if !self.talking {
            return;
        }
        let before = self.phase_started.elapsed().as_secs_f64();
        self.phase_started = Instant::now();
        match phase {
            Phase::Planning { records } => {
                eprintln!("planning {records} records against the stored users…")
            }
            Phase::Recording {
                applies: true,
                writes,
                log_rows,
            } => eprintln!(
                "planned in {before:.1} s; applying {writes} changes and writing the log ({log_rows} rows)…"
            ),
            Phase::Recording {
                applies: false,
                log_rows,
                ..
            } => eprintln!(
                "planned in {before:.1} s; writing the log ({log_rows} rows), applying nothing…"
            ),
        }
    }
}

/// A `--field KEY=VALUE` of `user create`.
fn parse_field(given: &str) -> Result<(FieldKey, String), Failure> {
    let Some((key, value)) = given.split_once('=') else {
        return Err(usage(format!(
            "--field '{given}' needs the form KEY=VALUE (department=Sales)"
        )));
    };
    let key = key.trim();
    match FieldKey::from_key(key) {
        Some(
            FieldKey::Username
            | FieldKey::Email
            | FieldKey::FirstName
            | FieldKey::SecondName
            | FieldKey::EmployeeId
            | FieldKey::PhoneMobile,
        ) => Err(usage(format!(
            "give {key} with its own option (--{})",
            key.replace('_', "-").replace("phone-mobile", "mobile")
        ))),
        Some(field) => Ok((field, value.to_owned())),
        None => Err(usage(format!(
            "--field: unknown field '{key}'; fields: {}",
            FieldKey::ALL
                .iter()
                .map(|f| f.key())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
