//! What the CLI shows an operator: a run's summary, and lists as aligned tables or JSON. The
//! JSON names are relied on by scripts (SPEC §11): they may grow, not change.

use chrono::{DateTime, SecondsFormat, Utc};
use rollcall_domain::{Action, LogRow, RunStatus};
use rollcall_store::{RunRecord, TokenInfo};
use serde_json::{Value, json};

/// A run as `sync --json`, `runs list --json` and the other run commands print it.
pub fn run_json(run: &RunRecord) -> Value {
    let c = &run.counts;
    json!({
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

/// What the deactivation threshold did to the run, when it mattered.
pub fn threshold_note(run: &RunRecord) -> Option<String> {
    rollcall_domain::run::threshold_note(
        run.status,
        run.dry_run,
        run.counts.deactivated,
        run.threshold_hit,
    )
}

/// A run's summary, one `Label   value` line each; a dry run's and a blocked run's counts are
/// what it would have done, and say so.
pub fn run_summary(run: &RunRecord) -> String {
    let c = &run.counts;
    let mut out = format!("Run         {}\n", run.id);
    out += &format!(
        "Status      {}{}\n",
        run.status.label(),
        if run.dry_run {
            " (dry run: nothing applied)"
        } else {
            ""
        }
    );
    if let Some(d) = run.duration() {
        out += &format!(
            "Duration    {:.1} s\n",
            d.num_milliseconds() as f64 / 1000.0
        );
    }
    if let Some(a) = &run.approval {
        out += &format!("Approved    by {} at {}\n", a.by, a.at.to_rfc3339());
    }
    let planned = run.dry_run || run.status == RunStatus::AboveDeactivationThreshold;
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
        let label = if planned {
            action.planned_label()
        } else {
            action.label()
        };
        out += &format!("{label:<width$}{n}\n");
    }
    out += &format!("{:<width$}{}\n", "Warnings", c.warnings);
    out
}

/// What a run that did not apply needs said on standard error: why, and what to do. `logs`
/// are its log rows (read only for a run that failed to load: they say what was wrong).
pub fn run_problems(run: &RunRecord, logs: &[LogRow]) -> Vec<String> {
    match run.status {
        RunStatus::DataLoadFailed => logs
            .iter()
            .take(20)
            .map(|log| match log.row {
                Some(line) => format!("line {line}: {}", log.message),
                None => log.message.clone(),
            })
            .collect(),
        RunStatus::AboveDeactivationThreshold => vec![format!(
            "the run {}; to apply it, run `rollcall runs approve {}`",
            threshold_note(run).unwrap_or_default(),
            run.id
        )],
        _ => threshold_note(run)
            .map(|note| format!("dry run: {note}"))
            .into_iter()
            .collect(),
    }
}

/// The runs as `runs list` prints them.
pub fn runs_table(runs: &[RunRecord]) -> String {
    let mut out = format!(
        "{:<36}  {:<16}  {:<16}  {:<20}  {:<28}  {:>9}\n",
        "RUN", "STARTED (UTC)", "CONNECTOR", "CONFIGURATION", "STATUS", "DURATION"
    );
    for run in runs {
        out += &format!(
            "{:<36}  {:<16}  {:<16}  {:<20}  {:<28}  {:>9}\n",
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
    out
}

/// The tokens as `token list --json` prints them: never the token itself.
pub fn tokens_json(tokens: &[TokenInfo]) -> Value {
    let rfc3339 = |t: &DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true));
    tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "configuration": t.config_name,
                "created_at": rfc3339(&t.created_at),
                "last_used_at": t.last_used_at.as_ref().map(rfc3339),
                "revoked_at": t.revoked_at.as_ref().map(rfc3339),
            })
        })
        .collect()
}

/// The tokens as `token list` prints them.
pub fn tokens_table(tokens: &[TokenInfo]) -> String {
    let stamp = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut out = format!(
        "{:<36}  {:<20}  {:<19}  {:<19}  REVOKED (UTC)\n",
        "TOKEN ID", "CONFIGURATION", "CREATED (UTC)", "LAST USED (UTC)"
    );
    for t in tokens {
        out += &format!(
            "{:<36}  {:<20}  {:<19}  {:<19}  {}\n",
            t.id,
            t.config_name,
            stamp(&t.created_at),
            t.last_used_at.as_ref().map(stamp).unwrap_or("never".into()),
            t.revoked_at.as_ref().map(stamp).unwrap_or("-".into()),
        );
    }
    out
}
