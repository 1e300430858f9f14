//! Point reads on SQLite straight through the C library, on the calling thread.
//!
//! sqlx runs every SQLite statement on a worker thread per connection and hands rows back over
//! a channel: for an indexed lookup that SQLite answers in about 10 µs, the two thread switches
//! and the `Any` row conversion cost far more than the query (bench/RESULTS.md). The SCIM
//! lookups an identity provider sends thousands of times a second come through here instead;
//! everything else, and PostgreSQL, stays on sqlx.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError, failed};

/// A few read-only connections; a caller takes a free one or waits for its turn on one.
pub(crate) struct PointReads {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// The page order of each organisation's SCIM-visible users, kept between requests.
///
/// `startIndex` is an offset: without this, every page walks the index up to it and counts the
/// organisation (milliseconds at 100,000 users), while SCIM clients page through an unchanging
/// organisation many times. The order is read once and reused until the database changes:
/// `PRAGMA data_version` on this cache's own connection changes whenever any other connection,
/// of any process, commits.
pub(crate) struct PageOrder {
    inner: Mutex<PageOrderInner>,
}

struct PageOrderInner {
    conn: Connection,
    version: i64,
    orgs: HashMap<String, Arc<UserIds>>,
}

/// User ids in page order, packed in one buffer.
pub(crate) struct UserIds {
    text: String,
    ends: Vec<u32>,
}

impl UserIds {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The ids at positions `from..to` (clamped).
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &str> {
        let to = to.min(self.len());
        let from = from.min(to);
        (from..to).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            &self.text[start..self.ends[i] as usize]
        })
    }
}

/// Organisations whose order is kept at once (a few paging at the same time).
const KEPT_ORGS: usize = 8;

impl PageOrder {
    pub fn open(path: &Path) -> Result<PageOrder> {
        let conn = open_reader(path, PAGE_ORDER_CACHE_KIB).map_err(|e| {
            tracing::error!(error = %e, path = %path.display(), "cannot open SQLite for reading");
            StoreError::Database
        })?;
        Ok(PageOrder {
            inner: Mutex::new(PageOrderInner {
                conn,
                version: i64::MIN,
                orgs: HashMap::new(),
            }),
        })
    }

    /// The organisation's SCIM-visible user ids in page order, as of now.
    pub fn of(&self, org: &str) -> Result<Arc<UserIds>> {
        let mut inner = self.inner.lock().map_err(|_| StoreError::Database)?;
        let version: i64 = inner
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(failed)?;
        if version != inner.version {
            inner.orgs.clear();
            inner.version = version;
        }
        if let Some(ids) = inner.orgs.get(org) {
            return Ok(ids.clone());
        }
        let mut ids = UserIds {
            text: String::new(),
            ends: Vec::new(),
        };
        {
            let mut statement = inner
                .conn
                .prepare_cached(
                    "SELECT id FROM users WHERE org_id = ?1 AND scim_deleted = 0 ORDER BY created_at, id",
                )
                .map_err(failed)?;
            let mut rows = statement.query([org]).map_err(failed)?;
            while let Some(row) = rows.next().map_err(failed)? {
                let id = row
                    .get_ref(0)
                    .map_err(failed)?
                    .as_str()
                    .map_err(|_| StoreError::Database)?;
                ids.text.push_str(id);
                ids.ends
                    .push(u32::try_from(ids.text.len()).map_err(|_| StoreError::Database)?);
            }
        }
        let ids = Arc::new(ids);
        if inner.orgs.len() >= KEPT_ORGS {
            inner.orgs.clear();
        }
        inner.orgs.insert(org.to_owned(), ids.clone());
        Ok(ids)
    }
}

fn open_reader(path: &Path, cache_kib: u32) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{cache_kib}; PRAGMA busy_timeout = 10000;"
    ))?;
    Ok(conn)
}

/// The page cache of each point-read connection. Every connection keeps its own copy of the
/// pages it reads, so the cache must hold an organisation's working set on its own: the users
/// table and the userName index of 100,000 users are about 38 MB. A page the cache misses is a
/// system call and a copy (bench/RESULTS.md: lookups at 100,000 users ran at 75–80 % of those
/// at 10,000 with 16 MiB). Pages are only allocated as they are read.
const POINT_READ_CACHE_KIB: u32 = 48 << 10;

/// The page order's connection reads the users' ids in page order, a smaller index.
const PAGE_ORDER_CACHE_KIB: u32 = 16 << 10;

impl PointReads {
    pub fn open(path: &Path, connections: usize) -> Result<PointReads> {
        let connections = (0..connections.max(1))
            .map(|_| open_reader(path, POINT_READ_CACHE_KIB).map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| {
                tracing::error!(error = %e, path = %path.display(), "cannot open SQLite for reading");
                StoreError::Database
            })?;
        Ok(PointReads {
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

impl PointReads {
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

/// A query written once for both backends (`$n` placeholders) in SQLite's numbered form
/// (`?n`), which binds by position without looking names up. Our SQL has no `$` elsewhere.
pub(crate) fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}
