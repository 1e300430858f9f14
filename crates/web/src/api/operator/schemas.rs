//! What the operator API answers, described for the OpenAPI document. The answers themselves
//! are built by `rollcall_operator::text` (the CLI's `--json`); these types are never built
//! or serialised, only read by utoipa, and `tests/operator_api.rs` checks that each lists the
//! fields the answers carry.

// Never constructed: the document's descriptions only.
#![allow(dead_code)]

use utoipa::ToSchema;

/// An organisation.
#[derive(ToSchema)]
pub struct OperatorOrganisation {
    pub id: String,
    pub name: String,
    /// Whether its admins with sync access see User Provisioning.
    pub provisioning: bool,
}

/// A problem with the file of a run that failed to load.
#[derive(ToSchema)]
pub struct OperatorFileError {
    /// The file's line (row), when the problem is on one.
    pub line: Option<u64>,
    /// The error type codes (`MISSING_REQUIRED_FIELD`, …), comma-separated.
    pub code: String,
    pub message: String,
}

/// A source configuration.
#[derive(ToSchema)]
pub struct OperatorConfiguration {
    pub id: String,
    pub name: String,
    /// `sftp`, `scim`, `workday`, `google-workspace` or `bulk-update`.
    pub kind: String,
    /// `active` or `dry_run`.
    pub mode: String,
    /// A count (`50`) or a percentage (`10%`).
    pub deactivation_threshold: Option<String>,
    /// Who hears of runs that need attention.
    pub notify: Option<String>,
    /// The region of national phone numbers (`GB`).
    pub phone_region: Option<String>,
    /// The SFTP login of an `sftp` configuration.
    pub sftp_user: Option<String>,
    /// Whether it is disabled (no run starts from it).
    pub disabled: bool,
    /// When it was disabled, RFC 3339, UTC; null when it is not.
    pub disabled_at: Option<String>,
    /// The mapping as the TOML file it reads as (save it, edit it, send it back).
    pub mapping: Option<String>,
}

/// A deleted configuration.
#[derive(ToSchema)]
pub struct DeletedConfiguration {
    /// How many users it managed, now unmanaged.
    pub users_released: u64,
}

/// A user.
#[derive(ToSchema)]
pub struct OperatorUser {
    pub id: String,
    pub active: bool,
    /// The name of the configuration that manages it; null when none does.
    pub managed_by: Option<String>,
    /// Each field that has a value, by its key (`username`, `email`, `department`, …), and
    /// the custom fields by name.
    #[schema(value_type = Object)]
    pub fields: std::collections::BTreeMap<String, String>,
}

/// An admin of an organisation.
#[derive(ToSchema)]
pub struct OperatorAdmin {
    pub id: String,
    pub email: String,
    /// `organisation_admin`, `people_admin`, `support_admin`, …
    pub role: String,
    /// Whether they may see User Provisioning.
    pub sync_access: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When they were disabled (they cannot sign in); null when they are not.
    pub disabled_at: Option<String>,
}

/// One field of a recorded change (a secret reads `(secret)`).
#[derive(ToSchema)]
pub struct OperatorFieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A change an operator made.
#[derive(ToSchema)]
pub struct OperatorChange {
    /// `operator via CLI`, or an operator token's name.
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// `organisation`, `configuration`, `admin`, `token` or `user`.
    pub subject: String,
    pub subject_id: String,
    /// `created`, `updated`, `disabled`, `enabled` or `deleted`.
    pub action: String,
    pub fields: Vec<OperatorFieldChange>,
}

/// An organisation with its configurations, admins and the operators' changes, newest first
/// (the last 100).
#[derive(ToSchema)]
pub struct OperatorOrganisationDetails {
    pub id: String,
    pub name: String,
    pub provisioning: bool,
    pub configurations: Vec<OperatorConfiguration>,
    pub admins: Vec<OperatorAdmin>,
    pub changes: Vec<OperatorChange>,
}

/// A SCIM token, without the token itself.
#[derive(ToSchema)]
pub struct OperatorToken {
    pub id: String,
    /// The `scim` configuration it writes through.
    pub configuration: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A SCIM token just issued.
#[derive(ToSchema)]
pub struct IssuedToken {
    /// The bearer token for the identity provider: shown this once.
    pub token: String,
}

/// A run, as `rollcall runs list --json` prints it. For a dry run or a run above the
/// deactivation threshold the counts are what it would have done.
#[derive(ToSchema)]
pub struct OperatorRun {
    pub run_id: String,
    /// `queued`, `in_progress`, `success`, `needs_attention`, `data_load_failed`,
    /// `above_deactivation_threshold` or `cancelled`.
    pub status: String,
    /// The status as the admin panel shows it.
    pub status_label: String,
    /// The configuration's name.
    pub configuration: String,
    /// `SFTP Sync`, `SCIM`, …
    pub connector: String,
    pub dry_run: bool,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    pub warnings: u64,
    /// Inactive rows of people never provisioned (log action Ignored): not a problem.
    pub ignored_inactive: u64,
    /// For a run that failed to load: what was wrong with the file (at most 100).
    pub errors: Vec<OperatorFileError>,
    /// The threshold that blocked the run (or would block a real one); null when it did not
    /// matter.
    pub threshold_hit: Option<String>,
    /// What the threshold did, in words.
    pub threshold_note: Option<String>,
    /// Who approved a blocked run (an operator token's name, `operator via CLI`), and when.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// The SHA-256 of the mapping a file run read with.
    pub mapping_digest: Option<String>,
}

/// A run with what started it and the mapping it read with.
#[derive(ToSchema)]
pub struct OperatorRunDetails {
    #[serde(flatten)]
    pub run: OperatorRun,
    /// `cli`, `sftp`, `scim`, `bulk` or `schedule`.
    pub trigger: String,
    /// The mapping a file run read with, as a TOML file.
    pub mapping: Option<String>,
}
