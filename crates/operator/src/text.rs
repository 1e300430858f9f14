//! What the CLI shows an operator: a run's summary, and lists as aligned tables or JSON. The
//! JSON names are relied on by scripts (SPEC §11): they may grow, not change.

use chrono::{DateTime, SecondsFormat, Utc};
use rollcall_domain::field::FieldKey;
use rollcall_domain::mapping::Mapping;
use rollcall_domain::{Action, LogRow, RunStatus, StoredUser, admin_edit};
use rollcall_hrfile::mapping_file::mapping_toml;
use rollcall_store::{AdminRecord, ChangeRecord, Organisation, RunRecord, SourceConfig, TokenInfo};
use serde_json::{Value, json};

use crate::OrgDetails;

/// The most file problems a run's JSON lists.
pub const ERRORS_SHOWN: usize = 100;

/// A run as `sync --json`, `runs list --json` and the other run commands print it; `errors`
/// are the file problems of a run that failed to load (its log rows,
/// [`crate::Operator::load_errors`]), listed as `errors: [{line, code, message}]`.
pub fn run_json(run: &RunRecord, errors: &[LogRow]) -> Value {
    let c = &run.counts;
    let errors: Vec<Value> = errors
        .iter()
        .take(ERRORS_SHOWN)
        .map(|e| json!({"line": e.row, "code": e.error_type_codes(), "message": e.message}))
        .collect();
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
        "ignored_inactive": c.ignored_inactive,
        "errors": errors,
        "threshold_hit": run.threshold_hit.map(|t| t.to_string()),
        "threshold_note": threshold_note(run),
        "approved_by": run.approval.as_ref().map(|a| a.by.as_str()),
        "approved_at": run.approval.as_ref().map(|a| a.at.to_rfc3339()),
        "mapping_digest": run.mapping_digest,
    })
}

/// A run as `runs show --json` prints it: with the mapping it read, as a TOML file.
pub fn run_details_json(run: &RunRecord, mapping: Option<&Mapping>, errors: &[LogRow]) -> Value {
    let mut json = run_json(run, errors);
    json["trigger"] = run.trigger.code().into();
    json["mapping"] = mapping.map(mapping_toml).into();
    json
}

/// A run as `runs show` prints it: its summary, then the mapping it read with.
pub fn run_details_text(run: &RunRecord, mapping: Option<&Mapping>) -> String {
    let mut out = run_summary(run);
    out += &format!(
        "Configuration {}
",
        run.config_name
    );
    out += &format!(
        "Trigger     {}
",
        run.trigger.code()
    );
    if let Some(name) = &run.file_name {
        out += &format!(
            "File        {name}
"
        );
    }
    if let (Some(mapping), Some(digest)) = (mapping, &run.mapping_digest) {
        out += &format!("\n# mapping (sha256 {digest})\n{}", mapping_toml(mapping));
    }
    out
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
    if c.ignored_inactive > 0 {
        out += &format!(
            "{:<width$}{} (inactive rows of people never provisioned)\n",
            "Ignored", c.ignored_inactive
        );
    }
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

/// For a person reading a run that needs attention: where its rows are.
pub fn attention_hint(run: &RunRecord) -> Option<String> {
    let c = &run.counts;
    (run.status == RunStatus::NeedsAttention).then(|| {
        format!(
            "needs attention: {} failed, {} skipped, {} warnings; see each row with \
             `rollcall runs logs {}`",
            c.failed, c.skipped, c.warnings, run.id
        )
    })
}

/// The runs as `runs list` prints them.
pub fn runs_table(runs: &[RunRecord]) -> String {
    let mut out = format!(
        "{:<36}  {:<16}  {:<16}  {:<8}  {:<20}  {:<40}  {:>9}\n",
        "RUN", "STARTED (UTC)", "CONNECTOR", "TRIGGER", "CONFIGURATION", "STATUS", "DURATION"
    );
    for run in runs {
        out += &format!(
            "{:<36}  {:<16}  {:<16}  {:<8}  {:<20}  {:<40}  {:>9}\n",
            run.id,
            run.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            run.connector,
            run.trigger.code(),
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

fn stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// An organisation in JSON.
pub fn org_json(org: &Organisation) -> Value {
    json!({ "id": org.id.as_str(), "name": org.name, "provisioning": org.provisioning })
}

/// The organisations as `org list` prints them.
pub fn orgs_table(orgs: &[Organisation]) -> String {
    let mut out = format!("{:<36}  {:<30}  PROVISIONING\n", "ORGANISATION ID", "NAME");
    for org in orgs {
        out += &format!(
            "{:<36}  {:<30}  {}\n",
            org.id,
            org.name,
            on_off(org.provisioning)
        );
    }
    out
}

/// A configuration in JSON; `mapping` is its mapping as a TOML file, when it has one.
pub fn config_json(config: &SourceConfig) -> Value {
    json!({
        "id": config.id.as_str(),
        "name": config.name,
        "kind": config.kind.code(),
        "mode": config.mode.code(),
        "deactivation_threshold": config.deactivation_threshold.map(|t| t.to_string()),
        "notify": config.notify_email,
        "phone_region": config.phone_region.as_ref().map(|r| r.code().to_owned()),
        "sftp_user": config.sftp_user,
        "disabled": config.disabled_at.is_some(),
        "disabled_at": config.disabled_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "mapping": config.mapping.as_ref().map(mapping_toml),
    })
}

/// The configurations as `config list` prints them.
pub fn configs_table(configs: &[SourceConfig]) -> String {
    let mut out = format!(
        "{:<24}  {:<16}  {:<8}  {:<8}  {:<10}  SFTP LOGIN\n",
        "NAME", "KIND", "MODE", "STATE", "THRESHOLD"
    );
    for c in configs {
        out += &format!(
            "{:<24}  {:<16}  {:<8}  {:<8}  {:<10}  {}\n",
            c.name,
            c.kind.code(),
            c.mode.code(),
            if c.disabled_at.is_some() {
                "disabled"
            } else {
                "enabled"
            },
            c.deactivation_threshold
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            c.sftp_user.as_deref().unwrap_or("-"),
        );
    }
    out
}

/// A configuration as `config show` prints it: its settings, then its mapping file.
pub fn config_text(config: &SourceConfig) -> String {
    let mut out = format!("Configuration  {} ({})\n", config.name, config.id);
    out += &format!("Kind           {}\n", config.kind.code());
    out += &format!("Mode           {}\n", config.mode.code());
    if let Some(at) = config.disabled_at {
        out += &format!(
            "State          disabled since {} (no run starts)\n",
            stamp(&at)
        );
    }
    let optional = [
        (
            "Threshold",
            config.deactivation_threshold.map(|t| t.to_string()),
        ),
        ("Notify", config.notify_email.clone()),
        (
            "Phone region",
            config.phone_region.as_ref().map(|r| r.code().to_owned()),
        ),
        ("SFTP login", config.sftp_user.clone()),
    ];
    for (label, value) in optional {
        out += &format!("{label:<15}{}\n", value.as_deref().unwrap_or("-"));
    }
    if let Some(mapping) = &config.mapping {
        out += &format!("\n# mapping\n{}", mapping_toml(mapping));
    }
    out
}

/// A user in JSON: id, active, who manages it (a configuration's name, `null` for none) and
/// each field that has a value, by its key.
pub fn user_json(user: &StoredUser, managed_by: Option<&str>) -> Value {
    let mut fields = serde_json::Map::new();
    for field in FieldKey::ALL.into_iter().filter(|f| *f != FieldKey::Active) {
        let value = admin_edit::shown_value(user, field);
        if !value.is_empty() {
            fields.insert(field.key().to_owned(), Value::String(value));
        }
    }
    for (name, value) in &user.profile.custom_fields {
        fields.insert(name.clone(), Value::String(value.clone()));
    }
    json!({
        "id": user.id.as_str(),
        "active": user.active,
        "managed_by": managed_by,
        "fields": fields,
    })
}

/// Users as `user list` prints them; `managed_by` names each one's configuration.
pub fn users_table(users: &[(StoredUser, Option<String>)]) -> String {
    let mut out = format!(
        "{:<24}  {:<32}  {:<24}  {:<8}  MANAGED BY\n",
        "USERNAME", "EMAIL", "NAME", "ACTIVE"
    );
    for (u, managed_by) in users {
        let name = [&u.profile.first_name, &u.profile.second_name]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        out += &format!(
            "{:<24}  {:<32}  {:<24}  {:<8}  {}\n",
            admin_edit::shown_value(u, FieldKey::Username),
            admin_edit::shown_value(u, FieldKey::Email),
            name,
            if u.active { "yes" } else { "no" },
            managed_by.as_deref().unwrap_or("- (unmanaged)"),
        );
    }
    out
}

/// An admin in JSON.
pub fn admin_json(a: &AdminRecord) -> Value {
    json!({
        "id": a.admin.id,
        "email": a.admin.email,
        "role": a.admin.role.code(),
        "sync_access": a.admin.sync_access,
        "created_at": a.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "disabled_at": a.disabled_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    })
}

/// The admins as `admin list` prints them.
pub fn admins_table(admins: &[AdminRecord]) -> String {
    let mut out = format!(
        "{:<36}  {:<20}  {:<11}  DISABLED (UTC)\n",
        "EMAIL", "ROLE", "SYNC ACCESS"
    );
    for a in admins {
        out += &format!(
            "{:<36}  {:<20}  {:<11}  {}\n",
            a.admin.email,
            a.admin.role.code(),
            on_off(a.admin.sync_access),
            a.disabled_at.as_ref().map(stamp).unwrap_or("-".into()),
        );
    }
    out
}

/// A recorded change in JSON.
pub fn change_json(c: &ChangeRecord) -> Value {
    json!({
        "by": c.by,
        "at": c.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "subject": c.subject.code(),
        "subject_id": c.subject_id,
        "action": c.action.code(),
        "fields": c.fields,
    })
}

/// An organisation as `org show --json` prints it.
pub fn org_details_json(d: &OrgDetails) -> Value {
    let mut org = org_json(&d.org);
    org["configurations"] = d.configs.iter().map(config_json).collect();
    org["admins"] = d.admins.iter().map(admin_json).collect();
    org["changes"] = d.changes.iter().map(change_json).collect();
    org
}

/// An organisation as `org show` prints it.
pub fn org_details_text(d: &OrgDetails) -> String {
    let mut out = format!("Organisation  {} ({})\n", d.org.name, d.org.id);
    out += &format!("Provisioning  {}\n", on_off(d.org.provisioning));
    out += &format!("\nConfigurations\n{}", indent(&configs_table(&d.configs)));
    out += &format!("\nAdmins\n{}", indent(&admins_table(&d.admins)));
    out += "\nChanges (newest first)\n";
    if d.changes.is_empty() {
        out += "  none\n";
    }
    for c in &d.changes {
        let fields: Vec<String> = c
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{} {} → {}",
                    f.field,
                    f.before.as_deref().unwrap_or("-"),
                    f.after.as_deref().unwrap_or("-")
                )
            })
            .collect();
        out += &format!(
            "  {} UTC  {}  {} {} {}: {}\n",
            stamp(&c.at),
            c.by,
            c.subject.code(),
            c.subject_id,
            c.action.code(),
            fields.join(", ")
        );
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
