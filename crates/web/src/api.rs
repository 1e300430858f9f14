//! The admin JSON API under `/api/v1` (SPEC §1, §6): sign-in sessions, and the runs of the
//! User Provisioning page with the page's filters.
//!
//! Sessions are cookies (`rollcall_session`: HttpOnly, SameSite=Strict, Secure behind TLS).
//! State-changing calls must also send the session's CSRF token in `X-CSRF-Token`. Only
//! `organisation_admin` and `people_admin`, of an organisation with provisioning enabled and
//! set up on the sync service, may see runs (403 otherwise); another organisation's ids are
//! 404, never 403, so they reveal nothing.
//!
//! Operators authenticate with `Authorization: Bearer` and a token from `rollcall
//! operator-token create` ([`ActingOperator`]); admin sessions never do. They approve blocked
//! runs here and do what the command line does under `/api/v1/operator` ([`operator`]).

mod operator;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::FixedOffset;
use rollcall_domain::RunId;
use rollcall_domain::client_address::TrustedProxies;
use rollcall_domain::config::Role;
use rollcall_domain::run_filter::{FilterParams, RunFilter};
use rollcall_signin::{Guard, Outcome, Surface};
use rollcall_store::{OrgStore, RunCursor, RunRecord, Session, SessionLimits, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::AppState;

pub const SESSION_COOKIE: &str = "rollcall_session";
const CSRF_HEADER: &str = "x-csrf-token";
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// Settings of the admin surfaces.
#[derive(Clone)]
pub struct AdminSettings {
    pub sessions: SessionLimits,
    /// Mark the session cookie `Secure` (rollcall behind TLS).
    pub secure_cookies: bool,
    /// Sign-in protection, shared with SFTP password sign-in (docs/SECURITY.md).
    pub sign_ins: Arc<Guard>,
    /// Whose `X-Forwarded-For` names the client (docs/operations.md).
    pub trusted_proxies: TrustedProxies,
}

impl AdminSettings {
    pub fn new(
        secure_cookies: bool,
        sign_ins: Arc<Guard>,
        trusted_proxies: TrustedProxies,
    ) -> AdminSettings {
        AdminSettings {
            sessions: SessionLimits {
                idle: Duration::from_secs(30 * 60),
                absolute: Duration::from_secs(12 * 3600),
            },
            secure_cookies,
            sign_ins,
            trusted_proxies,
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
    /// Something named does not exist, said with what and how to find it.
    NoSuch(String),
    /// An operator route without a valid operator token: what was wrong.
    NotAnOperator(&'static str),
    Conflict(String),
    UnsupportedMediaType,
    /// Refused unchecked by the sign-in throttle; seconds to wait.
    TooManyAttempts {
        retry_after: u64,
    },
    /// Too many password checks at once.
    Busy,
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound,
            StoreError::Conflict(conflict) => ApiError::Conflict(conflict.to_string()),
            refused @ StoreError::RunStatus { .. } => ApiError::Conflict(refused.to_string()),
            _ => ApiError::Internal,
        }
    }
}

/// The body of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status.
    pub status: u16,
    /// `bad_request`, `unauthorized`, `sign_in_failed`, `forbidden`, `csrf`, `not_found`,
    /// `conflict`, `unsupported_media_type`, `too_many_attempts`, `busy` or `internal`.
    pub code: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match self {
            ApiError::TooManyAttempts { retry_after } => Some(retry_after),
            ApiError::Busy => Some(1),
            _ => None,
        };
        let bearer = matches!(self, ApiError::NotAnOperator(_));
        let (status, code, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::NotAnOperator(why) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", why.to_owned())
            }
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
            ApiError::NoSuch(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with Content-Type: application/json".to_owned(),
            ),
            ApiError::TooManyAttempts { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed sign-ins: try again in {retry_after} s"),
            ),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many sign-ins at once: try again in a moment".to_owned(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on the server; try again".to_owned(),
            ),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                status: status.as_u16(),
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if bearer {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rollcall operator API\""),
            );
        }
        response
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

/// An operator, known by their token (`Authorization: Bearer TOKEN`, the token from
/// `rollcall operator-token create --name NAME`): `name` is the token's name, which changes
/// and approvals record. An admin's session cookie is not an operator's credential.
pub struct ActingOperator {
    pub name: String,
}

impl FromRequestParts<AppState> for ActingOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<ActingOperator> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::NotAnOperator(
                if cookie(&parts.headers, SESSION_COOKIE).is_some() {
                    "an admin session cannot call operator routes: send an operator token in \
                     Authorization: Bearer TOKEN (make one with `rollcall operator-token create --name NAME`)"
                } else {
                    "send an operator token in Authorization: Bearer TOKEN (make one with \
                     `rollcall operator-token create --name NAME`)"
                },
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::NotAnOperator(
                "Authorization must be `Bearer TOKEN`, with a token from `rollcall operator-token create`",
            ))?;
        match state.store.authenticate_operator(token).await? {
            Some(name) => Ok(ActingOperator { name }),
            None => Err(ApiError::NotAnOperator(
                "the operator token is not valid: it is mistyped or revoked; make one with \
                 `rollcall operator-token create --name NAME`",
            )),
        }
    }
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

/// The OpenAPI document, generated from the handlers and types above.
#[derive(OpenApi)]
#[openapi(
    info(title = "rollcall admin API", description = "Sign-in sessions and the runs of the User Provisioning page (SPEC §6); the operator API (SPEC §11)."),
    paths(sign_in, who_am_i, sign_out, configurations, list_runs, one_run, run_logs, cancel_run, approve_run,
        operator::list_orgs, operator::create_org, operator::show_org, operator::update_org,
        operator::list_configs, operator::create_config, operator::show_config, operator::update_config,
        operator::list_admins, operator::create_admin, operator::update_admin, operator::disable_admin, operator::enable_admin,
        operator::list_tokens, operator::create_token, operator::revoke_token,
        operator::disable_config, operator::enable_config, operator::delete_config,
        operator::list_users, operator::create_user,
        operator::list_runs, operator::show_run),
    modifiers(&SessionCookie),
    tags((name = "session", description = "Sign in and out"), (name = "sync-runs", description = "Sync runs and their logs"),
        (name = "operator", description = "What operators do on the command line (SPEC §11), with an operator token: `Authorization: Bearer TOKEN` from `rollcall operator-token create --name NAME`"))
)]
pub struct ApiDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(utoipa::openapi::security::Http::new(
                utoipa::openapi::security::HttpAuthScheme::Bearer,
            )),
        );
    }
}

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(_) => ApiError::Internal.into_response(),
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
        .route("/api/v1/sync-runs/{id}/approve", post(approve_run))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(operator::routes())
        .fallback(|| async { ApiError::NotFound })
}

/// Sign-in credentials.
#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// The signed-in admin.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub email: String,
    /// `organisation_admin`, `people_admin`, `support_admin`, …
    pub role: String,
    pub organisation_id: String,
    /// Whether this admin may see User Provisioning (SPEC §1).
    pub user_provisioning: bool,
    /// Send it in `X-CSRF-Token` with every state-changing call.
    pub csrf_token: String,
}

fn session_view(session: &Session) -> SessionView {
    SessionView {
        email: session.admin.email.clone(),
        role: session.admin.role.code().to_owned(),
        organisation_id: session.admin.org_id.to_string(),
        user_provisioning: may_see_provisioning(session),
        csrf_token: session.csrf.clone(),
    }
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

/// Check an admin's email and password through the sign-in guard (throttled, bounded,
/// the same time for unknown emails); returns a new session's token.
pub(crate) async fn check_sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    client: IpAddr,
) -> ApiResult<String> {
    let account = email.trim().to_lowercase();
    let lookup = async {
        state
            .store
            .admin_for_sign_in(&account)
            .await
            .map(|found| found.map(|(admin, hash)| (admin, Some(hash))))
    };
    let outcome = state
        .admin
        .sign_ins
        .sign_in(Surface::Admin, &account, client, password, lookup)
        .await?;
    let admin = match outcome {
        Outcome::SignedIn(admin) => admin,
        Outcome::Failed => return Err(ApiError::SignInFailed),
        Outcome::TooMany { retry_after } => {
            // Whole seconds, rounded up: a client that waits that long is let through.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            return Err(ApiError::TooManyAttempts {
                retry_after: secs.max(1),
            });
        }
        Outcome::Busy => return Err(ApiError::Busy),
    };
    let (token, _) = state.store.create_session(&admin).await?;
    tracing::info!(admin = %admin.email, %client, "admin signed in");
    Ok(token)
}

/// The client's address: the connection's, or behind a trusted proxy the right-most
/// untrusted one of `X-Forwarded-For`.
pub(crate) fn client_address(state: &AppState, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip()
        });
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    state.admin.trusted_proxies.client_address(peer, forwarded)
}

/// Whether the body is declared JSON: a cross-site form can send only form encodings and
/// `text/plain`, so this keeps other sites from signing a browser in (login CSRF).
fn declared_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Sign in: sets the `rollcall_session` cookie and returns the CSRF token.
/// The body must be JSON (`Content-Type: application/json`, else 415). Failed sign-ins are
/// throttled per email and address, and per address (429 with `Retry-After`); too many
/// password checks at once answer 503.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    if !declared_json(&parts.headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let client = client_address(&state, &parts);
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| ApiError::BadRequest("the body is too large".into()))?;
    let form: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("send JSON {{\"email\": …, \"password\": …}}: {e}"))
    })?;
    let token = check_sign_in(&state, &form.email, &form.password, client).await?;
    let session = state
        .store
        .session(&token, state.admin.sessions)
        .await?
        .ok_or(ApiError::Internal)?;
    let max_age = state.admin.sessions.absolute.as_secs();
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, &token, max_age))],
        Json(session_view(&session)),
    )
        .into_response())
}

/// The signed-in admin.
#[utoipa::path(get, path = "/api/v1/session", tag = "session", security(("session" = [])),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
async fn who_am_i(signed: Signed) -> Json<SessionView> {
    Json(session_view(&signed.session))
}

/// Sign out.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("session" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses((status = 204, description = "Signed out"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn sign_out(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    state.store.delete_session(&signed.token).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&state, "", 0))],
    )
        .into_response())
}

/// A source configuration.
#[derive(Serialize, ToSchema)]
pub struct ConfigView {
    pub id: String,
    pub name: String,
    /// `sftp`, `scim`, `workday`, `google_workspace`.
    pub kind: String,
    /// `SFTP Sync`, `SCIM`, `Workday`, `Google Workspace`.
    pub connector: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConfigList {
    pub configurations: Vec<ConfigView>,
}

/// The organisation's source configurations (for the configuration filter).
#[utoipa::path(get, path = "/api/v1/configurations", tag = "sync-runs", security(("session" = [])),
    responses((status = 200, body = ConfigList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn configurations(admin: SyncAdmin) -> ApiResult<Json<ConfigList>> {
    let configs = admin.org.configs().await?;
    Ok(Json(ConfigList {
        configurations: configs
            .iter()
            .filter(|c| c.kind != rollcall_domain::config::ConfigKind::BulkUpdate)
            .map(|c| ConfigView {
                id: c.id.to_string(),
                name: c.name.clone(),
                kind: c.kind.code().to_owned(),
                connector: c.kind.connector().to_owned(),
            })
            .collect(),
    }))
}

/// The query of the runs list: the page's filters plus paging.
#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// `all` (default), `7d`, `30d` or `custom`.
    pub range: Option<String>,
    /// With `range=custom`: a date (`2024-01-15`, the whole day in `tz`) or an RFC 3339
    /// date-time; inclusive.
    pub from: Option<String>,
    /// With `range=custom`: as `from`; inclusive.
    pub to: Option<String>,
    /// The viewer's UTC offset for dates (`+01:00`); default UTC.
    pub tz: Option<String>,
    /// `newest` (default) or `oldest`.
    pub sort: Option<String>,
    /// A configuration id.
    pub configuration: Option<String>,
    /// Comma-separated statuses: `queued`, `in_progress`, `success`, `needs_attention`,
    /// `data_load_failed`, `above_deactivation_threshold`, `cancelled`.
    pub status: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Runs per page, 1 to 200 (default 50).
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

#[derive(Serialize, ToSchema)]
pub struct ConfigRef {
    pub id: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CountsView {
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub unchanged: u64,
    /// Records whose log action is Skipped.
    pub skipped: u64,
    /// Records whose log action is Failed.
    pub failed: u64,
    pub warnings: u64,
    /// Inactive rows of people never provisioned (log action Ignored): not a problem.
    pub ignored_inactive: u64,
}

/// A problem with the file of a run that failed to load.
#[derive(Serialize, ToSchema)]
pub struct FileErrorView {
    /// The file's line (row), when the problem is on one.
    pub line: Option<u64>,
    /// The error type codes (`MISSING_REQUIRED_FIELD`, …), comma-separated.
    pub code: String,
    pub message: String,
}

/// A sync run.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub configuration: ConfigRef,
    pub connector: String,
    pub trigger: String,
    /// The status code (`success`, …).
    pub status: String,
    /// The status as the page shows it (`Success`, …).
    pub status_label: String,
    pub dry_run: bool,
    pub file_name: Option<String>,
    pub file_sha256: Option<String>,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// How long the run worked: from its start, or for an approved run from its approval.
    pub duration_ms: Option<i64>,
    /// Whether the log can be downloaded.
    pub has_logs: bool,
    /// For a dry run or a run above the deactivation threshold, `counts` are what the run
    /// would have done: nothing was applied.
    pub counts: CountsView,
    /// The deactivation threshold (`10`, `5%`) that blocked the run or, for a dry run, that a
    /// real run would hit; null when it did not matter.
    pub threshold_hit: Option<String>,
    /// What the threshold did: `would deactivate 20; the threshold is 10; nothing was
    /// applied`, or for a dry run `a real run would be blocked: …`.
    pub threshold_note: Option<String>,
    /// Who approved a run the threshold blocked (an operator token's name, `operator via
    /// CLI`), and when.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// What the status means and what to do (the page's words).
    pub status_meaning: String,
    pub recommended_action: String,
    /// For one run that failed to load (`GET /api/v1/sync-runs/{id}`): what was wrong with
    /// the file (at most 100). Left out of lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FileErrorView>>,
}

/// A page of runs.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
    /// Runs matching the filters, on every page.
    pub total: u64,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

pub fn run_view(run: &RunRecord) -> RunView {
    let c = &run.counts;
    RunView {
        id: run.id.to_string(),
        configuration: ConfigRef {
            id: run.config_id.to_string(),
            name: run.config_name.clone(),
        },
        connector: run.connector.clone(),
        trigger: run.trigger.code().to_owned(),
        status: run.status.code().to_owned(),
        status_label: run.status.label().to_owned(),
        dry_run: run.dry_run,
        file_name: run.file_name.clone(),
        file_sha256: run.file_sha256.clone(),
        queued_at: run.queued_at.to_rfc3339(),
        started_at: run.started_at.map(|t| t.to_rfc3339()),
        ended_at: run.ended_at.map(|t| t.to_rfc3339()),
        duration_ms: run.duration().map(|d| d.num_milliseconds()),
        has_logs: run.status.has_logs(),
        counts: CountsView {
            created: c.created,
            updated: c.updated,
            deactivated: c.deactivated,
            reactivated: c.reactivated,
            unchanged: c.unchanged,
            skipped: c.skipped,
            failed: c.failed,
            warnings: c.warnings,
            ignored_inactive: c.ignored_inactive,
        },
        threshold_hit: run.threshold_hit.map(|t| t.to_string()),
        threshold_note: rollcall_domain::run::threshold_note(
            run.status,
            run.dry_run,
            c.deactivated,
            run.threshold_hit,
        ),
        approved_by: run.approval.as_ref().map(|a| a.by.clone()),
        approved_at: run.approval.as_ref().map(|a| a.at.to_rfc3339()),
        status_meaning: run.status.meaning().to_owned(),
        recommended_action: run.status.recommended_action().to_owned(),
        errors: None,
    }
}

/// The runs of the User Provisioning page, with its filters; keyset pages.
#[utoipa::path(get, path = "/api/v1/sync-runs", tag = "sync-runs", security(("session" = [])), params(RunsQuery),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    admin: SyncAdmin,
    Query(query): Query<RunsQuery>,
) -> ApiResult<Json<RunList>> {
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
    Ok(Json(RunList {
        runs: page.runs.iter().map(run_view).collect(),
        total: page.total,
        next: page.next.map(|c| c.encode()),
    }))
}

/// One run; another organisation's run is 404.
#[utoipa::path(get, path = "/api/v1/sync-runs/{id}", tag = "sync-runs", security(("session" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
async fn one_run(admin: SyncAdmin, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
    let run = admin.org.run(&RunId::new(id)).await?;
    let mut view = run_view(&run);
    if run.status == rollcall_domain::RunStatus::DataLoadFailed {
        let logs = admin.org.run_logs(&run.id).await?;
        view.errors = Some(
            logs.iter()
                .take(100)
                .map(|l| FileErrorView {
                    line: l.row,
                    code: l.error_type_codes().into_owned(),
                    message: l.message.clone(),
                })
                .collect(),
        );
    }
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// The viewer's UTC offset for the file name (`+01:00`); default UTC.
    pub tz: Option<String>,
}

/// The viewer's offset for the download's file name (default UTC).
fn viewer_offset(tz: Option<&str>) -> ApiResult<FixedOffset> {
    rollcall_domain::run_filter::parse_offset(tz).map_err(ApiError::BadRequest)
}

/// The run's log as a file named `Sync Logs - 15 Jan 2024 10.30pm.csv` (or `.xlsx`).
#[utoipa::path(get, path = "/api/v1/sync-runs/{id}/logs", tag = "sync-runs", security(("session" = [])),
    params(("id" = String, Path, description = "The run id"), LogsQuery),
    responses((status = 200, description = "The log file", content_type = "text/csv"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The run has no log")))]
async fn run_logs(
    admin: SyncAdmin,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let run = admin.org.run(&RunId::new(id)).await?;
    log_download(
        &admin.org,
        &run,
        query.format.as_deref(),
        query.tz.as_deref(),
    )
    .await
}

/// A run's log as a download: `format` `csv` (default) or `xlsx`, named from the run's start
/// in the viewer's offset `tz`.
pub(crate) async fn log_download(
    org: &OrgStore,
    run: &RunRecord,
    format: Option<&str>,
    tz: Option<&str>,
) -> ApiResult<Response> {
    if !run.status.has_logs() {
        return Err(ApiError::Conflict(format!(
            "a run that is {} has no log to download",
            run.status.label()
        )));
    }
    let format = format.unwrap_or("csv");
    let offset = viewer_offset(tz)?;
    let rows = org.run_logs(&run.id).await?;
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
    let name = rollcall_sync::exports::log_file_name(started, offset, run.dry_run, extension);
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

/// Cancel a queued run.
#[utoipa::path(post, path = "/api/v1/sync-runs/{id}/cancel", tag = "sync-runs", security(("session" = [])),
    params(("id" = String, Path, description = "The run id"), ("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses((status = 200, body = RunView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The run is not queued")))]
async fn cancel_run(admin: SyncAdmin, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
    let id = RunId::new(id);
    match admin.org.cancel_run(&id).await {
        Ok(run) => {
            tracing::info!(run = %run.id, admin = %admin.session.admin.email, "run cancelled");
            Ok(Json(run_view(&run)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Approve a run the deactivation threshold blocked (operators only: `Authorization: Bearer`
/// with a token from `rollcall operator-token create`). Its kept file is read again and
/// planned against the users as they are now, then applied.
#[utoipa::path(post, path = "/api/v1/sync-runs/{id}/approve", tag = "sync-runs", security(("operator" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The run is not waiting for approval, or its file is gone")))]
async fn approve_run(
    State(state): State<AppState>,
    ActingOperator { name: operator }: ActingOperator,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    let applied = state
        .engine
        .approve(&RunId::new(id), &operator)
        .await
        .map_err(|e| match e {
            rollcall_sync::SyncError::Store(e) => ApiError::from(e),
            refused if refused.is_refusal() => ApiError::Conflict(refused.to_string()),
            other => {
                tracing::error!(error = %other, "an approved run failed");
                ApiError::Internal
            }
        })?;
    tracing::info!(run = %applied.id, status = applied.status.label(), %operator, "blocked run approved by an operator");
    Ok(Json(run_view(&applied)))
}
