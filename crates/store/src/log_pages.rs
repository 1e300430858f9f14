//! A run's log a page at a time, as its admin page shows it: filtered by action, by warning or
//! by a search, in file order from a cursor (a run may have a million log rows; a page reads
//! only its own).

use rollcall_domain::{Action, ErrorType, LogRow, RunId};

use crate::db::{Arg, get, query};
use crate::runs::log_row_from_row;
use crate::{OrgStore, Result};

/// Which log rows a page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSelection {
    /// Every row.
    All,
    /// The rows of one action.
    Action(Action),
    /// The rows carrying a warning (whatever their action).
    Warnings,
    /// The rows carrying a warning whose action is neither Failed nor Skipped (so that a
    /// page listing failed, then skipped, then warned rows shows each row once).
    WarningsOnly,
    /// The rows that are neither Failed nor Skipped and carry no warning.
    Rest,
}

/// One page of log rows, each with its position in the log.
#[derive(Clone, Debug)]
pub struct LogPage {
    pub rows: Vec<(i64, LogRow)>,
    /// The position after which the next page starts, when there is one.
    pub next: Option<i64>,
}

fn warned() -> String {
    let any: Vec<String> = ErrorType::ALL
        .into_iter()
        .filter(|e| e.is_warning())
        .map(|e| format!("l.error_type LIKE '%{}%'", e.code()))
        .collect();
    format!("({})", any.join(" OR "))
}

/// `needle` for `LIKE … ESCAPE '\'`, lower-cased.
fn like_pattern(needle: &str) -> String {
    let mut out = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl OrgStore {
    /// The log rows of one of this organisation's runs that `selection` and `search` (a
    /// case-insensitive substring of any cell, or the row number) pick, in order, after
    /// position `after`, at most `limit`.
    pub async fn log_page(
        &self,
        id: &RunId,
        selection: &LogSelection,
        search: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<LogPage> {
        // Through the run, so another organisation's run id finds nothing.
        let run = self.run(id).await?;
        let mut args: Vec<Arg> = vec![run.id.as_str().into()];
        let bind = |args: &mut Vec<Arg>, value: Arg| {
            args.push(value);
            format!("${}", args.len())
        };
        let mut conditions = vec!["l.run_id = $1".to_owned()];
        let problems = format!(
            "l.action IN ('{}', '{}')",
            Action::Failed.label(),
            Action::Skipped.label()
        );
        match selection {
            LogSelection::All => {}
            LogSelection::Action(action) => {
                let p = bind(&mut args, action.label().into());
                conditions.push(format!("l.action = {p}"));
            }
            LogSelection::Warnings => conditions.push(warned()),
            LogSelection::WarningsOnly => {
                conditions.push(format!("NOT {problems}"));
                conditions.push(warned());
            }
            LogSelection::Rest => {
                conditions.push(format!("NOT {problems}"));
                conditions.push(format!("NOT {}", warned()));
            }
        }
        if let Some(needle) = search.map(str::trim).filter(|n| !n.is_empty()) {
            let p = bind(&mut args, like_pattern(needle).into());
            let cells: Vec<String> = [
                "external_id",
                "username",
                "action",
                "error_type",
                "message",
                "additional_data",
                "changed_fields",
            ]
            .iter()
            .map(|c| format!("LOWER(l.{c}) LIKE {p} ESCAPE '\\'"))
            .collect();
            let mut any = cells.join(" OR ");
            if let Ok(n) = needle.parse::<i64>() {
                let p = bind(&mut args, n.into());
                any.push_str(&format!(" OR l.row_num = {p}"));
            }
            conditions.push(format!("({any})"));
        }
        if let Some(after) = after {
            let p = bind(&mut args, after.into());
            conditions.push(format!("l.seq > {p}"));
        }
        let n = bind(&mut args, i64::from(limit).saturating_add(1).into());
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT l.seq, l.row_num, l.external_id, l.username, l.action, l.error_type, l.message, \
                 l.additional_data, l.changed_fields FROM sync_log_rows l WHERE {} \
                 ORDER BY l.seq LIMIT {n}",
                conditions.join(" AND ")
            ),
            args,
        )
        .fetch_all(&self.store.db.read)
        .await?;
        let mut rows = rows
            .iter()
            .map(|row| Ok((get::<i64>(row, "seq")?, log_row_from_row(row)?)))
            .collect::<Result<Vec<_>>>()?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Ok(LogPage { rows, next })
    }
}
