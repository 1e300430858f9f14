//! The limit of the SCIM benchmark (bench/run.sh): the least work a SCIM server can do for
//! `GET /scim/v2/Users?filter=userName eq "x"` on rollcall's own stack — axum on a tokio
//! multi-thread runtime, one indexed SQLite lookup through rusqlite on the calling thread, and
//! a fixed ListResponse built with serde_json. No authentication, no filter grammar, no SCIM
//! attributes: whatever rollcall answers beyond this is the price of being a SCIM server.
//!
//!   rollcall-bench-limit --db FILE --users N [--http 127.0.0.1:0]
//!
//! Creates FILE with N users named like bench/scim/run.sh's (`user0000001@bench.example`, ...)
//! unless it already holds them, then serves, printing `http listening on ADDR`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

static DB: OnceLock<PathBuf> = OnceLock::new();

thread_local! {
    // One read-only connection per runtime worker thread: no lock, no thread hop.
    static CONN: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

struct Args {
    db: PathBuf,
    users: u32,
    http: SocketAddr,
}

fn parse_args() -> Result<Args, String> {
    let mut db = None;
    let mut users = None;
    let mut http: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--db" => db = Some(PathBuf::from(value)),
            "--users" => users = Some(value.parse().map_err(|e| format!("--users: {e}"))?),
            "--http" => http = value.parse().map_err(|e| format!("--http: {e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        db: db.ok_or("--db FILE is required")?,
        users: users.ok_or("--users N is required")?,
        http,
    })
}

/// The users table: rollcall's user ids are UUID text and userName matches without case.
fn seed(path: &Path, users: u32) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS users (
             id TEXT PRIMARY KEY,
             user_name TEXT NOT NULL COLLATE NOCASE UNIQUE,
             active INTEGER NOT NULL
         );",
    )?;
    let have: u32 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    if have == users {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM users", [])?;
    {
        let mut insert =
            tx.prepare("INSERT INTO users (id, user_name, active) VALUES (?1, ?2, 1)")?;
        for i in 1..=users {
            let id = format!("00000000-0000-4000-8000-{i:012}");
            insert.execute(params![id, format!("user{i:07}@bench.example")])?;
        }
    }
    tx.commit()
}

fn lookup(user_name: &str) -> rusqlite::Result<Option<(String, String, bool)>> {
    CONN.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let path = DB.get().expect("database path set before serving");
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            *slot = Some(conn);
        }
        let conn = slot.as_ref().expect("connection opened above");
        let mut stmt =
            conn.prepare_cached("SELECT id, user_name, active FROM users WHERE user_name = ?1")?;
        stmt.query_row([user_name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    })
}

/// The value of `userName eq "VALUE"`, and nothing else.
fn filtered_name(filter: &str) -> Option<&str> {
    let rest = filter.trim().strip_prefix("userName")?.trim_start();
    let rest = rest.strip_prefix("eq")?.trim_start();
    rest.strip_prefix('"')?.strip_suffix('"')
}

async fn users(Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(name) = query.get("filter").and_then(|f| filtered_name(f)) else {
        return (StatusCode::BAD_REQUEST, "only userName eq \"...\"").into_response();
    };
    let found = match lookup(name) {
        Ok(found) => found,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let resources: Vec<serde_json::Value> = found
        .into_iter()
        .map(|(id, user_name, active)| {
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": id,
                "userName": user_name,
                "active": active,
                "meta": {"resourceType": "User", "location": format!("/scim/v2/Users/{id}")},
            })
        })
        .collect();
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    });
    (
        [(header::CONTENT_TYPE, "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("rollcall-bench-limit: {message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = seed(&args.db, args.users) {
        eprintln!(
            "rollcall-bench-limit: cannot prepare {}: {e}",
            args.db.display()
        );
        std::process::exit(1);
    }
    DB.set(args.db).expect("set once");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.http)
            .await
            .expect("bind the HTTP address");
        println!(
            "http listening on {}",
            listener.local_addr().expect("bound")
        );
        let app = Router::new().route("/scim/v2/Users", get(users));
        axum::serve(listener, app).await.expect("serve");
    });
}
