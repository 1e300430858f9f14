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
    #[command(
        after_help = "Example:\n  rollcall serve --data-dir /var/lib/rollcall --http 0.0.0.0:8080"
    )]
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
    /// Users no source manages (what the application's own sign-up makes), and listing users.
    #[command(subcommand)]
    User(UserCommand),
    /// Run a file through the engine in-process.
    #[command(
        after_help = "Example:\n  rollcall sync --org Acme --config Payroll people.csv --dry-run"
    )]
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
    #[command(after_help = "Example:\n  rollcall operator-token create --name \"Support desk\"")]
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Whose token it is (for the record).
        #[arg(long)]
        name: String,
    },
    /// Revoke an operator token (read from standard input when not given).
    #[command(after_help = "Example:\n  rollcall operator-token revoke < operator-token.txt")]
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The operator token; read from standard input when left out.
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
    #[command(after_help = "Example:\n  rollcall org create --name Acme --provisioning")]
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// The organisation's name, unique.
        #[arg(long)]
        name: String,
        /// Enable user provisioning for the organisation.
        #[arg(long)]
        provisioning: bool,
    },
    /// List the organisations: id, name, whether provisioning is on.
    #[command(after_help = "Example:\n  rollcall org list --json")]
    List {
        #[command(flatten)]
        db: DbArgs,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an organisation: its configurations, admins and what operators changed.
    #[command(after_help = "Example:\n  rollcall org show Acme")]
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
    #[command(after_help = "Example:\n  rollcall org update Acme --provisioning on")]
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
    #[command(after_help = "Example:\n  rollcall token create --org Acme --config \"Entra ID\"")]
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
    #[command(after_help = "Example:\n  rollcall token revoke --org Acme --id 3f1c…")]
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The token; read from standard input when left out (keeps it out of the shell's
        /// history).
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
    #[command(after_help = "Example:\n  rollcall token list --org Acme")]
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
    #[command(
        after_help = "Example:\n  rollcall config create --org Acme --name Payroll --kind sftp --mapping mapping.toml --sftp-user acme-payroll --sftp-key acme.pub"
    )]
    Create(ConfigCreateArgs),
    /// Change a configuration: its name, mode, mapping, threshold, notification address,
    /// phone region, or SFTP login, password or keys.
    #[command(
        after_help = "Example:\n  rollcall config update --org Acme --name Payroll --mapping mapping.toml --mode active"
    )]
    Update(ConfigUpdateArgs),
    /// List an organisation's configurations: name, kind, mode, SFTP login.
    #[command(after_help = "Example:\n  rollcall config list --org Acme")]
    List(OrgListArgs),
    /// Show a configuration, its mapping included (as the TOML file it reads as).
    #[command(after_help = "Example:\n  rollcall config show --org Acme --name Payroll")]
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
    /// Disable a configuration: no run starts from it (files, SFTP sign-in, SCIM requests
    /// with its tokens and approvals are refused) and its queued runs are cancelled.
    #[command(after_help = "Example:\n  rollcall config disable --org Acme --name Payroll")]
    Disable(ConfigArgs),
    /// Enable a disabled configuration again.
    #[command(after_help = "Example:\n  rollcall config enable --org Acme --name Payroll")]
    Enable(ConfigArgs),
    /// Delete a configuration: its tokens are revoked, its SFTP login removed, its queued runs
    /// cancelled and its name freed; its runs and logs stay. Refused while it manages users,
    /// unless --release-users.
    #[command(
        after_help = "Example:\n  rollcall config delete --org Acme --name 'Old Payroll' --release-users"
    )]
    Delete {
        #[command(flatten)]
        config: ConfigArgs,
        /// Make the users it manages unmanaged (they stay, and only admins change them) rather
        /// than refuse.
        #[arg(long)]
        release_users: bool,
    },
}

/// One configuration of one organisation.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// The configuration's name (or id).
    #[arg(long)]
    pub name: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user no source manages, as the application's own sign-up would. Values are
    /// checked as a sync file's cells are; a value another user holds is refused.
    #[command(
        after_help = "Example:\n  rollcall user create --org Acme --username jdoe --email jdoe@acme.example --first-name Jane --field department=Sales"
    )]
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        #[arg(long)]
        org: String,
        /// The username, unique in the organisation.
        #[arg(long)]
        username: String,
        /// Email address, unique.
        #[arg(long)]
        email: Option<String>,
        #[arg(long, help = "First name.")]
        first_name: Option<String>,
        #[arg(long, help = "Second (family) name.")]
        second_name: Option<String>,
        /// Employee ID, unique in the organisation.
        #[arg(long)]
        employee_id: Option<String>,
        /// Mobile number in international form (+447700900123).
        #[arg(long, value_name = "PHONE")]
        mobile: Option<String>,
        /// Any other field, by its key: external_id, phone_work, manager (the manager's
        /// external ID), job_title, location, department, company, description, active,
        /// start_employment_date, end_employment_date. Repeatable.
        #[arg(long, value_name = "KEY=VALUE")]
        field: Vec<String>,
        /// Print the user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an organisation's users by username, with who manages each.
    #[command(after_help = "Example:\n  rollcall user list --org Acme --unmanaged")]
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        #[arg(long)]
        org: String,
        /// Only the users no source manages.
        #[arg(long)]
        unmanaged: bool,
        /// Only users whose username, email or name contains this text.
        #[arg(long, value_name = "TEXT", default_value = "")]
        search: String,
        /// The most users listed.
        #[arg(long, value_name = "N", default_value_t = rollcall_operator::USERS_LISTED)]
        limit: u32,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ConfigUpdateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organisation id or name.
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
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// The configuration's name, unique in the organisation (Payroll, Entra ID).
    #[arg(long)]
    pub name: String,
    /// Where users come from: sftp (CSV or XLSX files dropped over SFTP), scim (Entra ID,
    /// Okta), workday, google-workspace.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Mapping file (TOML); required for file and pull configurations.
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// Default: dry-run for file and pull configurations, active for SCIM.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// The SFTP login the HR system drops its files with.
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
    #[command(
        after_help = "Example:\n  echo 'a long password' | rollcall admin create --org Acme --email people@acme.example --role people_admin --sync-access --password-stdin"
    )]
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Organisation id or name.
        #[arg(long)]
        org: String,
        /// The admin's email, which they sign in with.
        #[arg(long)]
        email: String,
        /// organisation_admin, people_admin, support_admin, group_admin, content_creator,
        /// content_moderator or basic_user (organisation and people admins may see User
        /// Provisioning).
        #[arg(long)]
        role: String,
        /// The admin is set up on the sync service (may see User Provisioning).
        #[arg(long)]
        sync_access: bool,
        /// Read the password from standard input (12 characters or more), never from the
        /// command line.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List an organisation's admins: email, role, sync access, disabled.
    #[command(after_help = "Example:\n  rollcall admin list --org Acme")]
    List(OrgListArgs),
    /// Change an admin's role, sync access or password (a new password ends their sessions).
    #[command(
        after_help = "Example:\n  rollcall admin update --org Acme --email people@acme.example --sync-access on"
    )]
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
    #[command(
        after_help = "Example:\n  rollcall admin disable --org Acme --email leaver@acme.example"
    )]
    Disable(AdminArgs),
    /// Enable a disabled admin again.
    #[command(
        after_help = "Example:\n  rollcall admin enable --org Acme --email returner@acme.example"
    )]
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
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// The source configuration's name.
    #[arg(long, value_name = "NAME")]
    pub config: String,
    /// The HR file to sync: CSV (UTF-8, a header row) or XLSX (the first sheet).
    pub file: PathBuf,
    /// Report everything, apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object (run id, status, counts) instead of the summary table.
    #[arg(long)]
    pub json: bool,
}

/// The filters of `runs list`.
#[derive(Args, Debug)]
pub struct RunsListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Organisation id or name.
    #[arg(long)]
    pub org: String,
    /// Only these statuses, comma-separated: success, needs_attention, data_load_failed,
    /// above_deactivation_threshold, in_progress, queued, cancelled.
    #[arg(long, value_name = "STATUS,…")]
    pub status: Option<String>,
    /// Only this configuration's runs (its name or id).
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
    /// Only runs since this date (2024-01-15, UTC) or date-time (2024-01-15T10:30:00Z).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// The Bulk Update runs instead (they live on their own page).
    #[arg(long, conflicts_with_all = ["status", "config", "since"])]
    pub bulk_update: bool,
    /// One JSON array instead of a table.
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
    /// The organisation's runs, newest first, as the User Provisioning page lists them
    /// (Bulk Update runs apart, with --bulk-update).
    #[command(
        after_help = "Example:\n  rollcall runs list --org Acme --status needs_attention,data_load_failed --since 2024-01-01"
    )]
    List(RunsListArgs),
    /// One run: its status, counts, file, and the mapping it read with.
    #[command(after_help = "Example:\n  rollcall runs show 0b8e6a52-…")]
    Show {
        #[command(flatten)]
        db: DbArgs,
        /// The run's id, as `runs list` shows it.
        run: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download a run's log, as the admin panel does (refused for a run without a log).
    #[command(after_help = "Example:\n  rollcall runs logs 0b8e6a52-… --format xlsx")]
    Logs {
        #[command(flatten)]
        db: DbArgs,
        /// The run's id, as `runs list` shows it.
        run: String,
        /// csv, or xlsx for Excel.
        #[arg(long, value_enum, default_value = "csv")]
        format: LogFormat,
        /// Where to write it; `-` is standard output. Default: the panel's download name
        /// (`Sync Logs - 15 Jan 2024 10.30pm.csv`) in the current folder.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Organisation id or name (optional: the run id alone is enough for the operator).
        #[arg(long)]
        org: Option<String>,
    },
    /// Cancel a queued run: it will not be processed.
    #[command(after_help = "Example:\n  rollcall runs cancel 0b8e6a52-…")]
    Cancel {
        #[command(flatten)]
        db: DbArgs,
        /// The run's id, as `runs list` shows it.
        run: String,
        /// Print the run as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Apply a run that the deactivation threshold blocked (its file as it was synced).
    #[command(after_help = "Example:\n  rollcall runs approve 0b8e6a52-…")]
    Approve {
        #[command(flatten)]
        db: DbArgs,
        /// The run's id, as `runs list` shows it.
        run: String,
        /// Print one JSON object (run id, status, counts) instead of the summary table.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Help that teaches: every option says what it is, and every command's help ends with
    /// an example of itself.
    #[test]
    fn every_command_describes_its_options_and_ends_with_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &path, missing);
                    continue;
                }
                for arg in sub.get_arguments() {
                    let id = arg.get_id().as_str();
                    if arg.get_help().is_none() && id != "help" {
                        missing.push(format!("rollcall{path}: {id} has no description"));
                    }
                }
                let after = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if !after.starts_with("Example:") || !after.contains(&format!("rollcall{path} ")) {
                    missing.push(format!("rollcall{path}: no example of itself"));
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
