//! Point reads on SQLite straight through the C library, on the calling thread.
//!
//! sqlx runs every SQLite statement on a worker thread per connection and hands rows back over
//! a channel: for an indexed lookup that SQLite answers in about 10 µs, the two thread switches
//! and the `Any` row conversion cost far more than the query (bench/RESULTS.md). The SCIM
//! lookups an identity provider sends thousands of times a second come through here instead;
//! everything else, and PostgreSQL, stays on sqlx.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError};

/// A few read-only connections; a caller takes a free one or waits for its turn on one.
pub(crate) struct FastReads {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl FastReads {
    pub fn open(path: &Path, connections: usize) -> Result<FastReads> {
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA busy_timeout = 10000;")?;
            Ok(conn)
        };
        let connections = (0..connections.max(1))
            .map(|_| open().map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| {
                tracing::error!(error = %e, path = %path.display(), "cannot open SQLite for reading");
                StoreError::Database
            })?;
        Ok(FastReads {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// Run `f` on a connection. Meant for reads that take microseconds (indexed lookups), so
    /// running them on the async worker costs less than handing them to another thread.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        for i in 0..n {
            if let Ok(conn) = self.connections[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.connections[start % n]
            .lock()
            .map_err(|_| StoreError::Database)?;
        f(&conn)
    }
}

impl FastReads {
    /// Run `sql` with `params` (positional, text) and hand each row to `each`.
    pub fn for_each_row<'p>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = &'p str>,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<()> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql).map_err(failed)?;
            let mut rows = statement
                .query(rusqlite::params_from_iter(params))
                .map_err(failed)?;
            while let Some(row) = rows.next().map_err(failed)? {
                each(row)?;
            }
            Ok(())
        })
    }
}

/// A driver error, logged here; callers see the opaque [`StoreError::Database`].
pub(crate) fn failed(e: rusqlite::Error) -> StoreError {
    tracing::error!(error = %e, "SQLite read failed");
    StoreError::Database
}
