//! The command line of SPEC §11. Names here are relied on by scripts: they may grow, not change.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "rollcall",
    version,
    about = "User provisioning from SCIM, HR files and pull connectors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives; every subcommand takes these.
#[derive(Args, Debug, Clone, Default)]
pub struct DbArgs {
    /// Data directory (embedded SQLite database, stored files). Default ./rollcall-data.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB instead of the embedded database.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run HTTP (SCIM, admin API, web UI) with the embedded database.
    Serve(ServeArgs),
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// SCIM bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Source configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Organisation admins.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run a file through the engine in-process.
    Sync(SyncArgs),
    /// Sync runs and their logs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Operator tokens for the admin API's operator calls (approving blocked runs).
    #[command(subcommand, name = "operator-token")]
    OperatorToken(OperatorTokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum OperatorTokenCommand {
    /// Issue an operator token; prints it (shown once).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Whose token it is (for the record).
        #[arg(long)]
        name: String,
    },
    /// Revoke an operator token (read from standard input when not given).
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        token: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// HTTP listen address. Default 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// SFTP listen address. Default 127.0.0.1:2222.
    #[arg(long, value_name = "ADDR")]
    pub sftp: Option<String>,
    /// Settings file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organisation; prints its id.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        name: String,
        /// Enable user provisioning for the organisation.
        #[arg(long)]
        provisioning: bool,
    },
    /// List the organisations: id, name, whether provisioning is on.
    List {
        #[command(flatten)]
        db: DbArgs,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an organisation: its configurations, admins and what operators changed.
    Show {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        org: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rename an organisation, or switch user provisioning on or off.
    Update {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        org: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// Whether admins see User Provisioning and its runs.
        #[arg(long, value_enum, value_name = "on|off")]
        provisioning: Option<OnOff>,
    },
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a SCIM bearer token; prints it (shown once).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        #[arg(long)]
        org: String,
        /// The SCIM configuration; default: the organisation's default SCIM configuration.
        #[arg(long, value_name = "NAME")]
        config: Option<String>,
    },
    /// Revoke a SCIM bearer token (read from standard input when not given), or one of an
    /// organisation's tokens by the id `token list` shows.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        #[arg(conflicts_with = "id")]
        token: Option<String>,
        /// The token's id, from `rollcall token list`, when the token itself is not at hand.
        #[arg(long, requires = "org")]
        id: Option<String>,
        /// Organisation id or name (with --id).
        #[arg(long, requires = "id")]
        org: Option<String>,
    },
    /// List an organisation's SCIM tokens: id, configuration, created, last used, revoked.
    List(OrgListArgs),
}

/// The arguments of an organisation's listing.
#[derive(Args, Debug)]
pub struct OrgListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    Sftp,
    Scim,
    Workday,
    #[value(name = "google-workspace")]
    GoogleWorkspace,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    Active,
    #[value(name = "dry-run")]
    DryRun,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Create a source configuration.
    Create(ConfigCreateArgs),
    /// Change a configuration: its name, mode, mapping, threshold, notification address,
    /// phone region, or SFTP login, password or keys.
    Update(ConfigUpdateArgs),
    /// List an organisation's configurations: name, kind, mode, SFTP login.
    List(OrgListArgs),
    /// Show a configuration, its mapping included (as the TOML file it reads as).
    Show {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        #[arg(long)]
        org: String,
        /// The configuration's name (or id).
        #[arg(long)]
        name: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ConfigUpdateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub org: String,
    /// The configuration's name (or id).
    #[arg(long)]
    pub name: String,
    /// A new name for the configuration.
    #[arg(long, value_name = "NEW")]
    pub rename: Option<String>,
    /// active applies runs; dry-run reports what they would do.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// A new mapping file (TOML); the next run reads with it.
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// The most deactivations one run may make: a count (50), a percentage (10%), or none.
    #[arg(long, value_name = "N|P%|none")]
    pub deactivation_threshold: Option<String>,
    /// Where run summaries are emailed, or none.
    #[arg(long, value_name = "EMAIL|none")]
    pub notify: Option<String>,
    /// Default region for national phone numbers (GB, US, …), or none.
    #[arg(long, value_name = "CC|none")]
    pub phone_region: Option<String>,
    /// A new SFTP login name.
    #[arg(long, value_name = "USER")]
    pub sftp_user: Option<String>,
    /// Read a new SFTP password from standard input.
    #[arg(long, conflicts_with = "sftp_no_password")]
    pub sftp_password_stdin: bool,
    /// Remove the SFTP password (sign in with a key only).
    #[arg(long)]
    pub sftp_no_password: bool,
    /// The authorised public keys (OpenSSH format); replaces the current ones. Repeatable.
    #[arg(long, value_name = "FILE.pub")]
    pub sftp_key: Vec<PathBuf>,
    /// Remove every authorised key.
    #[arg(long, conflicts_with = "sftp_key")]
    pub sftp_no_keys: bool,
}

#[derive(Args, Debug)]
pub struct ConfigCreateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Mapping file (TOML); required for file and pull configurations.
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// Default: dry-run for file and pull configurations, active for SCIM.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    #[arg(long, value_name = "USER")]
    pub sftp_user: Option<String>,
    /// Read the SFTP password from standard input.
    #[arg(long)]
    pub sftp_password_stdin: bool,
    /// An authorised public key (OpenSSH format).
    #[arg(long, value_name = "FILE.pub")]
    pub sftp_key: Option<PathBuf>,
    /// The most deactivations one run may make: a count (50) or a percentage (10%).
    #[arg(long, value_name = "N|P%")]
    pub deactivation_threshold: Option<String>,
    /// Where run summaries are emailed.
    #[arg(long, value_name = "EMAIL")]
    pub notify: Option<String>,
    /// Default region for national phone numbers (GB, US, …).
    #[arg(long, value_name = "CC")]
    pub phone_region: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an organisation admin; the password is read from standard input.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        /// The admin is set up on the sync service (may see User Provisioning).
        #[arg(long)]
        sync_access: bool,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List an organisation's admins: email, role, sync access, disabled.
    List(OrgListArgs),
    /// Change an admin's role, sync access or password (a new password ends their sessions).
    Update {
        #[command(flatten)]
        admin: AdminArgs,
        /// organisation_admin, people_admin, support_admin, group_admin, content_creator,
        /// content_moderator or basic_user.
        #[arg(long)]
        role: Option<String>,
        /// Whether the admin may see User Provisioning.
        #[arg(long, value_enum, value_name = "on|off")]
        sync_access: Option<OnOff>,
        /// Read a new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an admin: they cannot sign in, and their sessions end at once.
    Disable(AdminArgs),
    /// Enable a disabled admin again.
    Enable(AdminArgs),
}

/// One admin of one organisation.
#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// The admin's email.
    #[arg(long)]
    pub email: String,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub org: String,
    /// The source configuration's name.
    #[arg(long, value_name = "NAME")]
    pub config: String,
    /// The CSV file to sync.
    pub file: PathBuf,
    /// Report everything, apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object (run id, status, counts) instead of the summary table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Csv,
    Xlsx,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// The organisation's runs, newest first.
    List(OrgListArgs),
    /// One run: its status, counts, file, and the mapping it read with.
    Show {
        #[command(flatten)]
        db: DbArgs,
        run: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download a run's log.
    Logs {
        #[command(flatten)]
        db: DbArgs,
        run: String,
        #[arg(long, value_enum)]
        format: LogFormat,
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// Organisation id or name (optional: the run id alone is enough for the operator).
        #[arg(long)]
        org: Option<String>,
    },
    /// Cancel a queued run: it will not be processed.
    Cancel {
        #[command(flatten)]
        db: DbArgs,
        run: String,
        /// Print the run as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Apply a run that the deactivation threshold blocked (its file as it was synced).
    Approve {
        #[command(flatten)]
        db: DbArgs,
        run: String,
        /// Print one JSON object (run id, status, counts) instead of the summary table.
        #[arg(long)]
        json: bool,
    },
}
