//! Planner statistics after large writes, on PostgreSQL.
//!
//! PostgreSQL chooses plans from statistics that only `ANALYZE` gathers. Autovacuum runs it
//! once enough rows have changed, but it may be off, and it wakes up about once a minute: a
//! first sync of 20,000 users followed at once by SCIM traffic was planned without any
//! (bench/RESULTS.md). So a run that wrote many rows analyses the tables it wrote, once its
//! transaction is committed (`ANALYZE` inside it would see rows no one else can, and hold the
//! transaction open while it samples).

use crate::Backend;
use crate::db::{Db, get, query};

/// The tables a run writes in bulk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Users,
    SyncLogRows,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::SyncLogRows => "sync_log_rows",
        }
    }
}

/// Fewer rows written than this never trigger an `ANALYZE`: a table that small is read in
/// moments whatever the plan, and runs of small daily files should not sample the table after
/// every run.
const MIN_ROWS: u64 = 1_000;

/// Whether `written` rows change a table whose last statistics counted `analysed` rows (-1:
/// never analysed) enough to analyse it again: a tenth of the table, autovacuum's own default
/// (`autovacuum_analyze_scale_factor`), and at least [`MIN_ROWS`]. A first load (never
/// analysed) of a thousand rows or more always is.
fn worth_analysing(written: u64, analysed: i64) -> bool {
    if written < MIN_ROWS {
        return false;
    }
    match u64::try_from(analysed) {
        Ok(rows) => written.saturating_mul(10) >= rows,
        Err(_) => true,
    }
}

/// After a commit that wrote these rows: `ANALYZE` the tables whose statistics it made stale
/// (PostgreSQL only; SQLite picks the unique index of a point lookup without statistics).
/// A failure is logged, not returned: the write is committed, and autovacuum will catch up.
pub(crate) async fn refresh_after_write(db: &Db, written: &[(Table, u64)]) {
    if db.backend != Backend::Postgres {
        return;
    }
    let mut stale = Vec::new();
    for &(table, rows) in written {
        if rows < MIN_ROWS {
            continue;
        }
        match analysed_rows(db, table).await {
            Ok(analysed) if worth_analysing(rows, analysed) => stale.push(table.name()),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(table = table.name(), error = %e, "cannot read the table's statistics")
            }
        }
    }
    if stale.is_empty() {
        return;
    }
    // SKIP_LOCKED: a table another session is analysing (another node that has just written
    // as much, or autovacuum) gets fresh statistics from it, without this run waiting.
    let sql = format!("ANALYZE (SKIP_LOCKED) {}", stale.join(", "));
    let started = std::time::Instant::now();
    match query(db.backend, sql, vec![]).execute(&db.write).await {
        Ok(_) => tracing::info!(
            tables = ?stale,
            ms = started.elapsed().as_millis() as u64,
            "statistics refreshed after a large write"
        ),
        Err(e) => tracing::warn!(tables = ?stale, error = %e, "ANALYZE after a large write failed"),
    }
}

/// The rows a table held when it was last analysed or vacuumed (-1: never).
async fn analysed_rows(db: &Db, table: Table) -> crate::Result<i64> {
    let row = query(
        db.backend,
        "SELECT reltuples::BIGINT AS n FROM pg_class WHERE oid = to_regclass($1)",
        vec![table.name().into()],
    )
    .fetch_optional(&db.read)
    .await?;
    match row {
        Some(row) => get::<i64>(&row, "n"),
        None => Ok(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::worth_analysing;

    #[test]
    fn a_large_share_of_the_table_or_a_first_load_is_analysed() {
        // A first load: never analysed.
        assert!(worth_analysing(20_000, -1));
        assert!(worth_analysing(1_000, -1));
        // Too few rows to matter, whatever the table.
        assert!(!worth_analysing(999, -1));
        assert!(!worth_analysing(999, 0));
        // A tenth of the table or more.
        assert!(worth_analysing(2_000, 20_000));
        assert!(!worth_analysing(1_999, 20_000));
        assert!(worth_analysing(20_000, 0));
        assert!(!worth_analysing(50_000, 1_000_000));
    }
}
