//! Sync runs: statuses, per-record actions, error types and the log rows admins download
//! (SPEC §3 and §6).

use std::fmt;

use crate::config::DeactivationThreshold;
use crate::field::FieldKey;

/// The status of a sync run (SPEC §6). `label` is what admins see; `code` is what the API and
/// the database use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    InProgress,
    Success,
    NeedsAttention,
    DataLoadFailed,
    AboveDeactivationThreshold,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::InProgress,
        RunStatus::Success,
        RunStatus::NeedsAttention,
        RunStatus::DataLoadFailed,
        RunStatus::AboveDeactivationThreshold,
        RunStatus::Cancelled,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Success => "success",
            RunStatus::NeedsAttention => "needs_attention",
            RunStatus::DataLoadFailed => "data_load_failed",
            RunStatus::AboveDeactivationThreshold => "above_deactivation_threshold",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::InProgress => "In Progress",
            RunStatus::Success => "Success",
            RunStatus::NeedsAttention => "Needs Attention",
            RunStatus::DataLoadFailed => "Data Load Failed",
            RunStatus::AboveDeactivationThreshold => "Above Deactivation Threshold",
            RunStatus::Cancelled => "Cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// What the status means, in the words admins were given (seed 001).
    pub fn meaning(self) -> &'static str {
        match self {
            RunStatus::Queued => "The sync is scheduled and waiting to start.",
            RunStatus::InProgress => "The sync is currently running.",
            RunStatus::Success => "The sync completed without issues.",
            RunStatus::NeedsAttention => "The sync completed with warnings.",
            RunStatus::DataLoadFailed => "User data could not be loaded.",
            RunStatus::AboveDeactivationThreshold => {
                "The sync was blocked because the number of deactivations exceeded the configured threshold."
            }
            RunStatus::Cancelled => "The sync was cancelled before completing.",
        }
    }

    /// What an admin should do about a run with this status (seed 001).
    pub fn recommended_action(self) -> &'static str {
        match self {
            RunStatus::Queued | RunStatus::InProgress => "No action required.",
            RunStatus::Success => "If needed, download logs to confirm results.",
            RunStatus::NeedsAttention => "Download logs and review warnings.",
            RunStatus::DataLoadFailed => "Download error logs and investigate the cause.",
            RunStatus::AboveDeactivationThreshold | RunStatus::Cancelled => "Contact Support.",
        }
    }

    /// Whether a run with this status has a log to browse and download (SPEC §6): Success and
    /// Needs Attention have their result log, Data Load Failed its error log; Queued, In
    /// Progress, Cancelled and Above Deactivation Threshold have none (a blocked run's
    /// would-be rows are kept for its approval, not shown). The page, the API and the CLI all
    /// decide by this.
    pub fn has_logs(self) -> bool {
        matches!(
            self,
            RunStatus::Success | RunStatus::NeedsAttention | RunStatus::DataLoadFailed
        )
    }

    /// A run that ended and will not change again (approval of a blocked run aside).
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::InProgress)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Created,
    Updated,
    Deactivated,
    Reactivated,
    Unchanged,
    Skipped,
    Failed,
    /// An inactive row for a person the application never had (a past leaver in a full HR
    /// export): nothing to create, and nothing wrong.
    Ignored,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Created,
        Action::Updated,
        Action::Deactivated,
        Action::Reactivated,
        Action::Unchanged,
        Action::Skipped,
        Action::Failed,
        Action::Ignored,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Action::Created => "Created",
            Action::Updated => "Updated",
            Action::Deactivated => "Deactivated",
            Action::Reactivated => "Reactivated",
            Action::Unchanged => "Unchanged",
            Action::Skipped => "Skipped",
            Action::Failed => "Failed",
            Action::Ignored => "Ignored",
        }
    }

    /// The label of the action as a dry run plans it: `Would create`, …; actions that change
    /// nothing keep their label.
    pub fn planned_label(self) -> &'static str {
        match self {
            Action::Created => "Would create",
            Action::Updated => "Would update",
            Action::Deactivated => "Would deactivate",
            Action::Reactivated => "Would reactivate",
            other => other.label(),
        }
    }

    pub fn from_label(label: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.label() == label)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `rollcall sync` from an operator's shell.
    Cli,
    /// A file uploaded to an SFTP drop folder.
    Sftp,
    /// An hour's SCIM requests of one configuration.
    Scim,
    /// An admin's Bulk Update file.
    Bulk,
    /// A pull connector's schedule.
    Schedule,
}

impl Trigger {
    pub const ALL: [Trigger; 5] = [
        Trigger::Cli,
        Trigger::Sftp,
        Trigger::Scim,
        Trigger::Bulk,
        Trigger::Schedule,
    ];

    /// The stored and API spelling (migration 0005's partial indexes spell out `bulk`).
    pub const fn code(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Sftp => "sftp",
            Trigger::Scim => "scim",
            Trigger::Bulk => "bulk",
            Trigger::Schedule => "schedule",
        }
    }

    pub fn parse(code: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// The stable error (and warning) codes a customer sees in run logs (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    MissingRequiredField,
    InvalidEmail,
    InvalidPhone,
    InvalidBoolean,
    InvalidDate,
    InvalidValue,
    OrganisationConflict,
    GlobalConflict,
    ShardConflict,
    MatchCandidateConflict,
    /// The record addresses a user id that does not exist (SCIM).
    NotFound,
    /// Warning: the manager's external ID resolves to no user.
    ManagerNotFound,
    /// Warning: the manager chain would loop.
    ManagerCycle,
    /// A file-level problem: the run failed as Data Load Failed.
    DataLoadFailed,
    /// Bulk Update: the user is managed by a source configuration and was left alone.
    ManagedByExternalSource,
}

impl ErrorType {
    pub const ALL: [ErrorType; 15] = [
        ErrorType::MissingRequiredField,
        ErrorType::InvalidEmail,
        ErrorType::InvalidPhone,
        ErrorType::InvalidBoolean,
        ErrorType::InvalidDate,
        ErrorType::InvalidValue,
        ErrorType::OrganisationConflict,
        ErrorType::GlobalConflict,
        ErrorType::ShardConflict,
        ErrorType::MatchCandidateConflict,
        ErrorType::NotFound,
        ErrorType::ManagerNotFound,
        ErrorType::ManagerCycle,
        ErrorType::DataLoadFailed,
        ErrorType::ManagedByExternalSource,
    ];

    pub fn from_code(code: &str) -> Option<ErrorType> {
        ErrorType::ALL.into_iter().find(|e| e.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorType::MissingRequiredField => "MISSING_REQUIRED_FIELD",
            ErrorType::InvalidEmail => "INVALID_EMAIL",
            ErrorType::InvalidPhone => "INVALID_PHONE",
            ErrorType::InvalidBoolean => "INVALID_BOOLEAN",
            ErrorType::InvalidDate => "INVALID_DATE",
            ErrorType::InvalidValue => "INVALID_VALUE",
            ErrorType::OrganisationConflict => "ORGANISATION_CONFLICT",
            ErrorType::GlobalConflict => "GLOBAL_CONFLICT",
            ErrorType::ShardConflict => "SHARD_CONFLICT",
            ErrorType::MatchCandidateConflict => "MATCH_CANDIDATE_CONFLICT",
            ErrorType::NotFound => "NOT_FOUND",
            ErrorType::ManagerNotFound => "MANAGER_NOT_FOUND",
            ErrorType::ManagerCycle => "MANAGER_CYCLE",
            ErrorType::DataLoadFailed => "DATA_LOAD_FAILED",
            ErrorType::ManagedByExternalSource => "MANAGED_BY_EXTERNAL_SOURCE",
        }
    }

    /// Warnings let the rest of the record apply; errors stop the record.
    pub fn is_warning(self) -> bool {
        matches!(self, ErrorType::ManagerNotFound | ErrorType::ManagerCycle)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem with one record: its code, a message that says how to fix it, and the
/// field/value it concerns (`email=jane@acme.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub error_type: ErrorType,
    pub message: String,
    pub additional_data: String,
    /// The fields the issue names, as data (a conflict's keys), in `additional_data`'s order.
    pub fields: Vec<FieldKey>,
}

impl Issue {
    pub fn new(
        error_type: ErrorType,
        message: impl Into<String>,
        additional_data: impl Into<String>,
    ) -> Issue {
        Issue {
            error_type,
            message: message.into(),
            additional_data: additional_data.into(),
            fields: Vec::new(),
        }
    }

    /// The issue, naming `fields` as data.
    pub fn about(mut self, fields: Vec<FieldKey>) -> Issue {
        self.fields = fields;
        self
    }
}

/// The counts of a run (SPEC §6), one per log action: `skipped` counts the rows whose action
/// is Skipped, `failed` those whose action is Failed (until issue 18 `skipped` held both, and
/// the page's "Skipped 6" tile sat over rows saying "Failed"). Neither was synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    pub warnings: u64,
    /// Inactive rows of people never provisioned ([`Action::Ignored`]): not a problem.
    pub ignored_inactive: u64,
}

impl Counts {
    pub fn add(&mut self, action: Action, has_warning: bool) {
        match action {
            Action::Created => self.created += 1,
            Action::Updated => self.updated += 1,
            Action::Deactivated => self.deactivated += 1,
            Action::Reactivated => self.reactivated += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Skipped => self.skipped += 1,
            Action::Failed => self.failed += 1,
            Action::Ignored => self.ignored_inactive += 1,
        }
        if has_warning {
            self.warnings += 1;
        }
    }

    /// The final status of a run that completed: Success, or Needs Attention when a record
    /// was skipped or failed, or carries a warning (an ignored inactive row is neither).
    pub fn completed_status(&self) -> RunStatus {
        if self.skipped > 0 || self.failed > 0 || self.warnings > 0 {
            RunStatus::NeedsAttention
        } else {
            RunStatus::Success
        }
    }
}

/// What a run that the deactivation threshold concerns says about it: a blocked run (nothing
/// was applied), or a dry run whose real run would be blocked. `None` for any other run.
/// `threshold` is the one recorded with the run, if it was.
pub fn threshold_note(
    status: RunStatus,
    dry_run: bool,
    would_deactivate: u64,
    threshold: Option<DeactivationThreshold>,
) -> Option<String> {
    let limit = match threshold {
        Some(t) => format!("the threshold is {t}"),
        None => "above the configured threshold".to_owned(),
    };
    if status == RunStatus::AboveDeactivationThreshold {
        Some(format!(
            "would deactivate {would_deactivate}; {limit}; nothing was applied"
        ))
    } else if dry_run && threshold.is_some() {
        Some(format!(
            "a real run would be blocked: it would deactivate {would_deactivate}, {limit}"
        ))
    } else {
        None
    }
}

/// One row of a run's log (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// The file's own line/row number, or the request's sequence number.
    pub row: Option<u64>,
    pub external_id: String,
    pub username: String,
    pub action: Action,
    /// The row's error, or its warnings (a row may carry several), in the order found.
    pub error_types: Vec<ErrorType>,
    pub message: String,
    pub additional_data: String,
    pub changed_fields: String,
}

impl LogRow {
    /// A row with `action` and nothing else yet.
    pub fn new(action: Action) -> LogRow {
        LogRow {
            row: None,
            external_id: String::new(),
            username: String::new(),
            action,
            error_types: Vec::new(),
            message: String::new(),
            additional_data: String::new(),
            changed_fields: String::new(),
        }
    }

    /// A problem that kept a run's data from loading (the run is Data Load Failed).
    pub fn load_failed(message: impl Into<String>) -> LogRow {
        LogRow {
            error_types: vec![ErrorType::DataLoadFailed],
            message: message.into(),
            ..LogRow::new(Action::Failed)
        }
    }

    /// The ErrorType column: the codes, comma-separated (without allocating for none or one,
    /// which is nearly every row of a large run).
    pub fn error_type_codes(&self) -> std::borrow::Cow<'static, str> {
        match self.error_types.as_slice() {
            [] => "".into(),
            [one] => one.code().into(),
            many => many
                .iter()
                .map(|e| e.code())
                .collect::<Vec<_>>()
                .join(", ")
                .into(),
        }
    }

    /// The codes of an ErrorType column as written by [`LogRow::error_type_codes`].
    pub fn parse_error_types(codes: &str) -> Option<Vec<ErrorType>> {
        codes
            .split(", ")
            .filter(|c| !c.is_empty())
            .map(ErrorType::from_code)
            .collect()
    }

    pub const HEADERS: [&'static str; 8] = [
        "Row",
        "ExternalId",
        "Username",
        "Action",
        "ErrorType",
        "Message",
        "AdditionalData",
        "ChangedFields",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_columns_round_trip() {
        for e in ErrorType::ALL {
            assert_eq!(ErrorType::from_code(e.code()), Some(e));
        }
        let row = LogRow {
            error_types: vec![ErrorType::ManagerNotFound, ErrorType::ManagerCycle],
            ..LogRow::new(Action::Updated)
        };
        let codes = row.error_type_codes();
        assert_eq!(codes, "MANAGER_NOT_FOUND, MANAGER_CYCLE");
        assert_eq!(LogRow::parse_error_types(&codes), Some(row.error_types));
        assert_eq!(LogRow::parse_error_types(""), Some(vec![]));
        assert_eq!(LogRow::parse_error_types("NOT_A_CODE"), None);
    }

    #[test]
    fn status_codes_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn threshold_notes() {
        let ten = Some(DeactivationThreshold::Count(10));
        assert_eq!(
            threshold_note(RunStatus::AboveDeactivationThreshold, false, 20, ten).as_deref(),
            Some("would deactivate 20; the threshold is 10; nothing was applied")
        );
        assert_eq!(
            threshold_note(RunStatus::Success, true, 20, ten).as_deref(),
            Some("a real run would be blocked: it would deactivate 20, the threshold is 10")
        );
        assert_eq!(threshold_note(RunStatus::Success, true, 2, None), None);
        assert_eq!(threshold_note(RunStatus::Success, false, 2, ten), None);
    }

    #[test]
    fn needs_attention_on_skips_or_warnings() {
        let mut c = Counts::default();
        c.add(Action::Created, false);
        assert_eq!(c.completed_status(), RunStatus::Success);
        c.add(Action::Updated, true);
        assert_eq!(c.completed_status(), RunStatus::NeedsAttention);
        let mut c = Counts::default();
        c.add(Action::Failed, false);
        assert_eq!((c.skipped, c.failed), (0, 1));
        assert_eq!(c.completed_status(), RunStatus::NeedsAttention);
    }
}
