//! Runs a page at a time, as the admin panel and its API list them: the User Provisioning
//! runs with their filters, and the Bulk Update page's own runs.

use rollcall_domain::run_filter::{Bounds, RunFilter, Sort};

use crate::db::{Arg, get, query};
use crate::runs::{RUN_COLUMNS, RunRecord, run_from_row};
use crate::{OrgStore, Result};

/// The trigger of Bulk Update runs, whose logs live on the Bulk Update page, not on User
/// Provisioning (SPEC §6).
const BULK_UPDATE_TRIGGER: &str = rollcall_domain::Trigger::Bulk.code();

/// Where a page of runs starts: after the run with this time and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    pub queued_at_ms: i64,
    pub id: String,
}

impl RunCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.queued_at_ms, self.id)
    }

    pub fn decode(text: &str) -> Option<RunCursor> {
        let (ms, id) = text.split_once('.')?;
        let ok_id = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        ok_id.then_some(RunCursor {
            queued_at_ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// One page of runs.
#[derive(Clone, Debug)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    /// Runs matching the filters, on every page.
    pub total: u64,
    /// Where the next page starts, when there is one.
    pub next: Option<RunCursor>,
}

impl OrgStore {
    /// The runs of the User Provisioning page: filtered, sorted, a page at a time (keyset
    /// paging, so a late page costs what the first does).
    pub async fn run_page(
        &self,
        filter: &RunFilter,
        bounds: Bounds,
        after: Option<&RunCursor>,
        limit: u32,
    ) -> Result<RunPage> {
        // The trigger is spelled as in the partial indexes of migration 0005, so that both
        // databases can prove those indexes apply.
        let mut conditions = vec![
            "r.org_id = $1".to_owned(),
            format!("r.trigger_kind <> '{BULK_UPDATE_TRIGGER}'"),
        ];
        let mut args: Vec<Arg> = vec![self.org.as_str().into()];
        let bind = |args: &mut Vec<Arg>, value: Arg| {
            args.push(value);
            format!("${}", args.len())
        };
        if let Some(from) = bounds.from_ms {
            let p = bind(&mut args, from.into());
            conditions.push(format!("r.queued_at >= {p}"));
        }
        if let Some(to) = bounds.to_ms {
            let p = bind(&mut args, to.into());
            conditions.push(format!("r.queued_at <= {p}"));
        }
        if let Some(config) = &filter.configuration {
            let p = bind(&mut args, config.as_str().into());
            conditions.push(format!("r.config_id = {p}"));
        }
        if let Some(connector) = &filter.connector {
            let p = bind(&mut args, connector.as_str().into());
            conditions.push(format!("r.connector = {p}"));
        }
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| bind(&mut args, s.code().into()))
                .collect();
            conditions.push(format!("r.status IN ({})", list.join(", ")));
        }
        let filtered = conditions.join(" AND ");
        let total_row = query(
            self.store.db.backend,
            format!("SELECT COUNT(*) AS n FROM sync_runs r WHERE {filtered}"),
            args.clone(),
        )
        .fetch_one(&self.store.db.read)
        .await?;
        let total = u64::try_from(get::<i64>(&total_row, "n")?).unwrap_or(0);

        let (order, before) = match filter.sort {
            Sort::NewestFirst => ("DESC", "<"),
            Sort::OldestFirst => ("ASC", ">"),
        };
        let mut page_conditions = filtered;
        if let Some(cursor) = after {
            let t = bind(&mut args, cursor.queued_at_ms.into());
            let id = bind(&mut args, cursor.id.as_str().into());
            page_conditions.push_str(&format!(
                " AND (r.queued_at {before} {t} OR (r.queued_at = {t} AND r.id {before} {id}))"
            ));
        }
        let n = bind(&mut args, i64::from(limit).saturating_add(1).into());
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE {page_conditions} ORDER BY r.queued_at {order}, r.id {order} LIMIT {n}"
            ),
            args,
        )
        .fetch_all(&self.store.db.read)
        .await?;
        let mut runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        let next = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            runs.last().map(|r| RunCursor {
                queued_at_ms: r.queued_at.timestamp_millis(),
                id: r.id.to_string(),
            })
        } else {
            None
        };
        Ok(RunPage { runs, total, next })
    }
}

impl OrgStore {
    /// The source connectors of the organisation's User Provisioning runs, by name.
    pub async fn run_connectors(&self) -> Result<Vec<String>> {
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT DISTINCT r.connector FROM sync_runs r \
                 WHERE r.org_id = $1 AND r.trigger_kind <> '{BULK_UPDATE_TRIGGER}' ORDER BY r.connector"
            ),
            vec![self.org.as_str().into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter()
            .map(|row| get::<String>(row, "connector"))
            .collect()
    }

    /// The organisation's Bulk Update runs, newest first.
    pub async fn bulk_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let rows = query(
            self.store.db.backend,
            format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN source_configs c ON c.id = r.config_id \
                 WHERE r.org_id = $1 AND r.trigger_kind = '{BULK_UPDATE_TRIGGER}' \
                 ORDER BY r.queued_at DESC, r.id DESC LIMIT $2"
            ),
            vec![self.org.as_str().into(), i64::from(limit).into()],
        )
        .fetch_all(&self.store.db.read)
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}
