//! The admin JSON API under `/api/v1` (SPEC §1, §6): sign-in sessions, and the runs of the
//! User Provisioning page with the page's filters.
//!
//! Sessions are cookies (`rollcall_session`: HttpOnly, SameSite=Strict, Secure behind TLS).
//! State-changing calls must also send the session's CSRF token in `X-CSRF-Token`. Only
//! `organisation_admin` and `people_admin`, of an organisation with provisioning enabled and
//! set up on the sync service, may see runs (403 otherwise); another organisation's ids are
//! 404, never 403, so they reveal nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::FixedOffset;
use rollcall_domain::RunId;
use rollcall_domain::config::Role;
use rollcall_domain::run_filter::{FilterParams, RunFilter};
use rollcall_domain::throttle::Throttle;
use rollcall_store::{OrgStore, RunCursor, RunRecord, Session, SessionLimits, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;

pub const SESSION_COOKIE: &str = "rollcall_session";
const CSRF_HEADER: &str = "x-csrf-token";
/// Failed sign-ins allowed per address and per email within the window.
const MAX_FAILURES: usize = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(900);
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// Settings of the admin surfaces.
#[derive(Clone)]
pub struct AdminSettings {
    pub sessions: SessionLimits,
    /// Mark the session cookie `Secure` (rollcall behind TLS).
    pub secure_cookies: bool,
    pub sign_ins: Arc<Mutex<Throttle>>,
}

impl AdminSettings {
    pub fn new(secure_cookies: bool) -> AdminSettings {
        AdminSettings {
            sessions: SessionLimits {
                idle: Duration::from_secs(30 * 60),
                absolute: Duration::from_secs(12 * 3600),
            },
            secure_cookies,
            sign_ins: Arc::new(Mutex::new(Throttle::new(MAX_FAILURES, FAILURE_WINDOW))),
        }
    }
}

/// The API's errors; each answers `{"error": {"status", "code", "message"}}`.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    SignInFailed,
    Forbidden(&'static str),
    Csrf,
    NotFound,
    Conflict(String),
    TooManyAttempts,
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound,
            StoreError::Conflict(what) => ApiError::Conflict(what),
            _ => ApiError::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in first (POST /api/v1/session)".to_owned(),
            ),
            ApiError::SignInFailed => (
                StatusCode::UNAUTHORIZED,
                "sign_in_failed",
                "the email or the password is wrong".to_owned(),
            ),
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why.to_owned()),
            ApiError::Csrf => (
                StatusCode::FORBIDDEN,
                "csrf",
                "send the session's csrf_token in the X-CSRF-Token header".to_owned(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".to_owned(),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::TooManyAttempts => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed sign-ins: wait a few minutes and try again".to_owned(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on the server; try again".to_owned(),
            ),
        };
        let body = json!({"error": {"status": status.as_u16(), "code": code, "message": message}});
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A signed-in admin. State-changing methods must carry the CSRF token.
pub struct Signed {
    pub session: Session,
    pub token: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Signed> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(ApiError::Unauthorized)?;
        let session = state
            .store
            .session(&token, state.admin.sessions)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Signed { session, token })
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an admin may see User Provisioning (SPEC §1).
pub fn may_see_provisioning(session: &Session) -> bool {
    matches!(
        session.admin.role,
        Role::OrganisationAdmin | Role::PeopleAdmin
    ) && session.admin.sync_access
        && session.provisioning
}

/// A signed-in admin allowed on User Provisioning; their organisation's store.
pub struct SyncAdmin {
    pub session: Session,
    pub org: OrgStore,
}

impl FromRequestParts<AppState> for SyncAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<SyncAdmin> {
        let Signed { session, .. } = Signed::from_request_parts(parts, state).await?;
        if !may_see_provisioning(&session) {
            return Err(ApiError::Forbidden(
                "User Provisioning is for organisation and people admins set up on the sync service",
            ));
        }
        let org = state.store.org(session.admin.org_id.clone());
        Ok(SyncAdmin { session, org })
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/session",
            post(sign_in).get(who_am_i).delete(sign_out),
        )
        .route("/api/v1/configurations", get(configurations))
        .route("/api/v1/sync-runs", get(list_runs))
        .route("/api/v1/sync-runs/{id}", get(one_run))
        .route("/api/v1/sync-runs/{id}/logs", get(run_logs))
        .route("/api/v1/sync-runs/{id}/cancel", post(cancel_run))
        .fallback(|| async { ApiError::NotFound })
}

#[derive(Deserialize)]
struct SignIn {
    email: String,
    password: String,
}

fn session_json(session: &Session) -> Value {
    json!({
        "email": session.admin.email,
        "role": session.admin.role.code(),
        "organisation_id": session.admin.org_id.as_str(),
        "user_provisioning": may_see_provisioning(session),
        "csrf_token": session.csrf,
    })
}

pub(crate) fn session_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.admin.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Check an admin's email and password, throttling failures per email and per address;
/// returns a new session's token.
pub(crate) async fn check_sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    ip: &str,
) -> ApiResult<String> {
    let email_key = format!("email:{}", email.trim().to_lowercase());
    let ip_key = format!("ip:{ip}");
    let keys = [email_key.as_str(), ip_key.as_str()];
    let throttle = state.admin.sign_ins.clone();
    let lock = || {
        throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if lock().blocked(&keys, Instant::now()) {
        tracing::warn!(email, ip, "admin sign-in refused: too many failures");
        return Err(ApiError::TooManyAttempts);
    }
    let found = state.store.admin_for_sign_in(email).await?;
    let verified = match found {
        Some((admin, hash)) => {
            let password = password.to_owned();
            let ok = tokio::task::spawn_blocking(move || {
                rollcall_store::credentials::verify_password(&password, &hash)
            })
            .await
            .unwrap_or(false);
            ok.then_some(admin)
        }
        None => None,
    };
    let Some(admin) = verified else {
        lock().failed(&keys, Instant::now());
        tracing::warn!(email, ip, "admin sign-in failed");
        return Err(ApiError::SignInFailed);
    };
    let (token, _) = state.store.create_session(&admin).await?;
    tracing::info!(admin = %admin.email, "admin signed in");
    Ok(token)
}

pub(crate) fn client_ip(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default()
}

async fn sign_in(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let ip = client_ip(request.extensions());
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the body is too large".into()))?;
    let form: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("send JSON {{\"email\": …, \"password\": …}}: {e}"))
    })?;
    let token = check_sign_in(&state, &form.email, &form.password, &ip).await?;
    let session = state
        .store
        .session(&token, state.admin.sessions)
        .await?
        .ok_or(ApiError::Internal)?;
    let max_age = state.admin.sessions.absolute.as_secs();
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, &token, max_age))],
        Json(session_json(&session)),
    )
        .into_response())
}

async fn who_am_i(signed: Signed) -> Json<Value> {
    Json(session_json(&signed.session))
}

async fn sign_out(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    state.store.delete_session(&signed.token).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&state, "", 0))],
    )
        .into_response())
}

async fn configurations(admin: SyncAdmin) -> ApiResult<Json<Value>> {
    let configs = admin.org.configs().await?;
    Ok(Json(json!({
        "configurations": configs.iter().map(|c| json!({
            "id": c.id.as_str(),
            "name": c.name,
            "kind": c.kind.code(),
            "connector": c.kind.connector(),
        })).collect::<Vec<_>>()
    })))
}

/// The query of the runs list: the page's filters plus paging.
#[derive(Deserialize, Default)]
pub struct RunsQuery {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub sort: Option<String>,
    pub configuration: Option<String>,
    pub status: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

impl RunsQuery {
    pub fn filter(&self) -> Result<RunFilter, String> {
        RunFilter::parse(&FilterParams {
            range: self.range.as_deref(),
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            tz: self.tz.as_deref(),
            sort: self.sort.as_deref(),
            configuration: self.configuration.as_deref(),
            status: self.status.as_deref(),
        })
    }
}

pub fn run_json(run: &RunRecord) -> Value {
    let c = &run.counts;
    json!({
        "id": run.id.as_str(),
        "configuration": {"id": run.config_id.as_str(), "name": run.config_name},
        "connector": run.connector,
        "trigger": run.trigger,
        "status": run.status.code(),
        "status_label": run.status.label(),
        "dry_run": run.dry_run,
        "file_name": run.file_name,
        "file_sha256": run.file_sha256,
        "queued_at": run.queued_at.to_rfc3339(),
        "started_at": run.started_at.map(|t| t.to_rfc3339()),
        "ended_at": run.ended_at.map(|t| t.to_rfc3339()),
        "duration_ms": run.duration().map(|d| d.num_milliseconds()),
        "has_logs": run.status.has_logs(),
        "counts": {
            "created": c.created, "updated": c.updated, "deactivated": c.deactivated,
            "reactivated": c.reactivated, "unchanged": c.unchanged, "skipped": c.skipped,
            "warnings": c.warnings,
        },
    })
}

async fn list_runs(
    State(state): State<AppState>,
    admin: SyncAdmin,
    Query(query): Query<RunsQuery>,
) -> ApiResult<Json<Value>> {
    let filter = query.filter().map_err(ApiError::BadRequest)?;
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(RunCursor::decode(text).ok_or_else(|| {
            ApiError::BadRequest("after is not a cursor from a previous page's next".into())
        })?),
        None => None,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let bounds = filter.bounds(state.store.now());
    let page = admin
        .org
        .run_page(&filter, bounds, after.as_ref(), limit)
        .await?;
    Ok(Json(json!({
        "runs": page.runs.iter().map(run_json).collect::<Vec<_>>(),
        "total": page.total,
        "next": page.next.map(|c| c.encode()),
    })))
}

async fn one_run(admin: SyncAdmin, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let run = admin.org.run(&RunId::new(id)).await?;
    Ok(Json(run_json(&run)))
}

#[derive(Deserialize)]
struct LogsQuery {
    format: Option<String>,
    tz: Option<String>,
}

/// The viewer's offset for the download's file name (default UTC).
fn viewer_offset(tz: Option<&str>) -> ApiResult<FixedOffset> {
    rollcall_domain::run_filter::parse_offset(tz).map_err(ApiError::BadRequest)
}

async fn run_logs(
    admin: SyncAdmin,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let run = admin.org.run(&RunId::new(id)).await?;
    if !run.status.has_logs() {
        return Err(ApiError::Conflict(format!(
            "a run that is {} has no log to download",
            run.status.label()
        )));
    }
    let format = query.format.as_deref().unwrap_or("csv");
    let offset = viewer_offset(query.tz.as_deref())?;
    let rows = admin.org.run_logs(&run.id).await?;
    let started = run.started_at.unwrap_or(run.queued_at);
    let (bytes, content_type, extension) = match format {
        "csv" => {
            let mut out = Vec::new();
            rollcall_sync::exports::write_csv(&rows, &mut out).map_err(|_| ApiError::Internal)?;
            (out, "text/csv; charset=utf-8", "csv")
        }
        "xlsx" => (
            rollcall_sync::exports::write_xlsx(&rows).map_err(|_| ApiError::Internal)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format '{other}' is not csv or xlsx"
            )));
        }
    };
    let name = rollcall_sync::exports::log_file_name(started, offset, extension);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|_| ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

async fn cancel_run(admin: SyncAdmin, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = RunId::new(id);
    match admin.org.cancel_run(&id).await {
        Ok(run) => {
            tracing::info!(run = %run.id, admin = %admin.session.admin.email, "run cancelled");
            Ok(Json(run_json(&run)))
        }
        Err(e) => Err(e.into()),
    }
}
