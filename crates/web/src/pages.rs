//! The admin panel's server-rendered pages under `/admin` (SPEC §6): sign-in, the User
//! Provisioning page with its filters as pills in the URL, and a run's detail with a
//! log paged from the store, problems first. Every flow works without JavaScript; `app.js`
//! reports the viewer's UTC offset, selects Custom when a date is entered, and reloads a page
//! that shows a Queued or In Progress run. Pages share the API's sessions, access rule and
//! queries.

use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequest, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, Utc};
use rollcall_domain::admin_edit::{PROFILE_FIELDS, apply_edit, editable_fields, shown_value};
use rollcall_domain::field::FieldKey;
use rollcall_domain::run_filter::{FilterParams, Range, RunFilter, Sort, parse_offset};
use rollcall_domain::{Action, LogRow, RunId, RunStatus};
use rollcall_store::{LogSelection, RunCursor, RunRecord, Session};
use rollcall_sync::bulk_update::{
    BulkFile, BulkUpdate, ProfileEdit, run_bulk_update, save_profile_edit,
};
use serde::Deserialize;

use crate::AppState;
use crate::api::{SESSION_COOKIE, constant_time_eq, cookie, may_see_provisioning};

const PAGE_SIZE: u32 = 50;
/// Log rows on a page of a run's log (the store reads a page at a time).
const LOG_PAGE: usize = 100;
const TZ_COOKIE: &str = "rollcall_tz";

/// The header of every signed-in page.
pub struct Nav {
    email: String,
    csrf: String,
    provisioning: bool,
    /// Why User Provisioning is not in the menu of an admin who has the Users pages.
    provisioning_hint: Option<&'static str>,
    users: bool,
    current: &'static str,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    nav: Option<Nav>,
    error: Option<String>,
    email: String,
    /// The form's CSRF token; its cookie holds the same (login CSRF).
    csrf: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    nav: Option<Nav>,
    heading: String,
    message: String,
    /// Whether to offer "Back to the start page" (not on the start page itself).
    back: bool,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct Pill {
    label: String,
    remove_url: String,
}

struct RunRow {
    id: String,
    started: String,
    connector: String,
    configuration: String,
    status_code: &'static str,
    status_label: &'static str,
    /// The status's meaning and recommended action (seed 001), as the badge's tooltip.
    status_help: String,
    dry_run: bool,
    /// What the deactivation threshold did, or would do to a real run.
    note: Option<String>,
    duration: String,
    /// `3 created · 1 failed`, or nothing for a run that has not finished.
    summary: String,
    file_name: Option<String>,
    /// What started the run, in words.
    trigger: &'static str,
    has_logs: bool,
    detail_url: String,
    csv_url: String,
    xlsx_url: String,
}

/// One status in the legend of the User Provisioning pages: its meaning and recommended
/// action, in seed 001's words.
struct StatusHelp {
    code: &'static str,
    label: &'static str,
    meaning: &'static str,
    action: &'static str,
}

fn legend() -> Vec<StatusHelp> {
    RunStatus::ALL
        .into_iter()
        .map(|s| StatusHelp {
            code: s.code(),
            label: s.label(),
            meaning: s.meaning(),
            action: s.recommended_action(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    nav: Option<Nav>,
    legend: Vec<StatusHelp>,
    /// The `tz` the URL gave, kept through the filter form.
    tz_param: Option<String>,
    tz_label: String,
    ranges: Vec<Choice>,
    from: String,
    to: String,
    configurations: Vec<Choice>,
    /// The source connectors runs came from.
    sources: Vec<Choice>,
    statuses: Vec<Choice>,
    sorts: Vec<Choice>,
    /// A shown run is Queued or In Progress: the page reloads itself (app.js).
    live: bool,
    error: Option<String>,
    pills: Vec<Pill>,
    total: u64,
    rows: Vec<RunRow>,
    first_url: Option<String>,
    next_url: Option<String>,
}

struct Count {
    label: &'static str,
    value: u64,
}

struct LogLine {
    row: String,
    external_id: String,
    username: String,
    action: String,
    /// `failed`, `skipped`, `warning` or `ok`: how the row is styled.
    kind: &'static str,
    problems: Vec<Problem>,
    message: String,
    additional_data: String,
    changed_fields: String,
}

/// An error or warning code of a log row.
struct Problem {
    code: &'static str,
    warning: bool,
}

/// A filter chip over a run's log.
struct Chip {
    code: String,
    label: &'static str,
    count: u64,
    /// `failed`, `warning`, `ok`, `all`, or `none` for an empty one.
    tone: &'static str,
    current: bool,
    url: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Option<Nav>,
    legend: Vec<StatusHelp>,
    id: String,
    csrf: String,
    tz_param: Option<String>,
    started: String,
    configuration: String,
    connector: String,
    status_code: &'static str,
    status_label: &'static str,
    meaning: &'static str,
    recommended_action: &'static str,
    dry_run: bool,
    note: Option<String>,
    /// `Approved by operator via CLI on 7 Dec 2026 7:02 pm`.
    approval: Option<String>,
    file_name: Option<String>,
    duration: String,
    counts: Vec<Count>,
    cancellable: bool,
    has_logs: bool,
    csv_url: String,
    xlsx_url: String,
    q: String,
    /// The chip shown.
    view: String,
    /// Queued or In Progress: the page reloads itself (app.js).
    live: bool,
    chips: Vec<Chip>,
    log: Vec<LogLine>,
    next_url: Option<String>,
    first_url: Option<String>,
}

/// Why a page is not shown.
enum PageError {
    SignIn,
    Forbidden,
    /// 403 for a signed-in admin, with their menu.
    ForbiddenFor(Box<Nav>, &'static str),
    NotFound,
    Internal,
}

impl From<rollcall_store::StoreError> for PageError {
    fn from(e: rollcall_store::StoreError) -> PageError {
        match e {
            rollcall_store::StoreError::NotFound(_) => PageError::NotFound,
            _ => PageError::Internal,
        }
    }
}

impl From<rollcall_sync::SyncError> for PageError {
    fn from(e: rollcall_sync::SyncError) -> PageError {
        match e {
            rollcall_sync::SyncError::Store(e) => e.into(),
            other => {
                tracing::warn!(error = %other, "a run failed");
                PageError::Internal
            }
        }
    }
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

fn message(status: StatusCode, nav: Option<Nav>, heading: &str, text: &str) -> Response {
    let mut response = render(&MessagePage {
        nav,
        heading: heading.to_owned(),
        message: text.to_owned(),
        back: true,
    });
    *response.status_mut() = status;
    response
}

/// The 403 page, with the admin's menu.
fn forbidden(nav: Option<Nav>) -> Response {
    forbidden_because(
        nav,
        "User Provisioning is for organisation admins and people admins who are set up on the sync service. Ask your organisation admin for access.",
    )
}

fn forbidden_because(nav: Option<Nav>, why: &str) -> Response {
    message(StatusCode::FORBIDDEN, nav, "You cannot open this page", why)
}

/// Why an admin cannot open User Provisioning, if they cannot: the reason they can act on
/// (seed 001's "If you can't see User Provisioning"), the role first (enabling the
/// organisation would not help a basic user), then the organisation, then the admin's setup.
fn provisioning_refusal(session: &Session) -> Option<&'static str> {
    if !may_manage_users(session) {
        Some(
            "User Provisioning is for Organisation Administrators and People Administrators. Ask your organisation admin if you need it.",
        )
    } else if !session.provisioning {
        Some(
            "Your organisation does not have User Provisioning enabled. Contact your account team to enable it for your organisation.",
        )
    } else if !session.admin.sync_access {
        Some(
            "You are not set up on the User Sync Service yet. Ask your organisation admin to set you up.",
        )
    } else {
        debug_assert!(may_see_provisioning(session));
        None
    }
}

fn users_refusal(session: &Session) -> Option<&'static str> {
    (!may_manage_users(session)).then_some(
        "The Users pages are for Organisation Administrators and People Administrators. Ask your organisation admin if you need them.",
    )
}

/// The 404 page, with the admin's menu.
fn not_found(nav: Option<Nav>) -> Response {
    message(
        StatusCode::NOT_FOUND,
        nav,
        "Not found",
        "There is no such page or run in your organisation.",
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/admin/sign-in").into_response(),
            PageError::Forbidden => forbidden(None),
            PageError::ForbiddenFor(nav, why) => forbidden_because(Some(*nav), why),
            PageError::NotFound => not_found(None),
            PageError::Internal => message(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "Something went wrong",
                "The server could not show this page. Try again in a moment.",
            ),
        }
    }
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<(Session, String), PageError> {
    let token = cookie(headers, SESSION_COOKIE).ok_or(PageError::SignIn)?;
    let session = state
        .store
        .session(&token, state.admin.sessions)
        .await?
        .ok_or(PageError::SignIn)?;
    Ok((session, token))
}

/// The signed-in admin and their organisation's store, when `rule` lets them see the page.
async fn allowed(
    state: &AppState,
    headers: &HeaderMap,
    refusal: fn(&Session) -> Option<&'static str>,
) -> Result<(Session, rollcall_store::OrgStore), PageError> {
    let (session, _) = session(state, headers).await?;
    if let Some(why) = refusal(&session) {
        return Err(PageError::ForbiddenFor(Box::new(nav(&session, "")), why));
    }
    let org = state.store.org(session.admin.org_id.clone());
    Ok((session, org))
}

fn nav(session: &Session, current: &'static str) -> Nav {
    Nav {
        email: session.admin.email.clone(),
        csrf: session.csrf.clone(),
        provisioning: may_see_provisioning(session),
        provisioning_hint: may_manage_users(session)
            .then(|| provisioning_refusal(session))
            .flatten(),
        users: may_manage_users(session),
        current,
    }
}

/// Organisation and people admins look after their organisation's users.
fn may_manage_users(session: &Session) -> bool {
    matches!(
        session.admin.role,
        rollcall_domain::config::Role::OrganisationAdmin
            | rollcall_domain::config::Role::PeopleAdmin
    )
}

/// Security headers on every admin page and file.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(start))
        .route("/admin/", get(start))
        .route("/admin/sign-in", get(sign_in_form).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/provisioning", get(provisioning))
        .route("/admin/provisioning/runs/{id}", get(run_detail))
        .route("/admin/provisioning/runs/{id}/cancel", post(cancel))
        .route("/admin/users", get(users))
        .route("/admin/users/{id}", get(user).post(save_user))
        .route(
            "/admin/bulk-update",
            get(bulk_update)
                .post(bulk_upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    BULK_MAX_BYTES as usize + (64 << 10),
                )),
        )
        .route("/admin/bulk-update/runs/{id}/logs", get(bulk_logs))
        .route(
            "/admin/static/app.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    include_str!("../static/app.css"),
                )
            }),
        )
        .route(
            "/admin/static/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("../static/app.js"),
                )
            }),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

async fn start(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let (session, _) = session(&state, &headers).await?;
    if may_see_provisioning(&session) {
        return Ok(Redirect::to("/admin/provisioning").into_response());
    }
    if may_manage_users(&session) {
        return Ok(Redirect::to("/admin/users").into_response());
    }
    // The start page itself: no link back to it.
    Ok(render(&MessagePage {
        nav: Some(nav(&session, "")),
        heading: "Welcome".into(),
        message: "There is nothing for your role in the admin panel yet.".into(),
        back: false,
    }))
}

/// The sign-in form's CSRF cookie: a fresh random token with each form, sent back only by
/// this page's own posts (SameSite=Strict, this path only), and compared with the form's.
const SIGN_IN_CSRF_COOKIE: &str = "rollcall_csrf";

async fn sign_in_form(State(state): State<AppState>) -> Response {
    sign_in_page(&state, StatusCode::OK, None, String::new())
}

/// The sign-in form, with a new CSRF token in the form and in its cookie.
fn sign_in_page(
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    email: String,
) -> Response {
    // Without randomness the token is empty, and an empty token is never accepted.
    let csrf = rollcall_store::credentials::new_token().unwrap_or_default();
    let secure = if state.admin.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SIGN_IN_CSRF_COOKIE}={csrf}; Path=/admin/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    );
    let mut response = render(&SignInPage {
        nav: None,
        error: error.map(str::to_owned),
        email,
        csrf,
    });
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn sign_in(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = crate::api::client_address(&state, &parts);
    let expected = cookie(&parts.headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    let request = axum::extract::Request::from_parts(parts, body);
    let Ok(Form(form)) = Form::<SignInForm>::from_request(request, &state).await else {
        return sign_in_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("Enter your email and your password."),
            String::new(),
        );
    };
    if expected.is_empty() || !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        tracing::warn!(%client, "admin sign-in form refused: no or another form's CSRF token");
        return sign_in_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("This sign-in form has expired or came from another site. Sign in again here."),
            String::new(),
        );
    }
    match crate::api::check_sign_in(&state, &form.email, &form.password, client).await {
        Ok(token) => {
            let cookie =
                crate::api::session_cookie(&state, &token, state.admin.sessions.absolute.as_secs());
            ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
        }
        Err(e) => {
            let (status, error) = match e {
                crate::api::ApiError::TooManyAttempts { retry_after } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many failed sign-ins: try again in {retry_after} seconds."),
                ),
                crate::api::ApiError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server is busy. Try again in a moment.".to_owned(),
                ),
                crate::api::ApiError::SignInFailed => (
                    StatusCode::UNAUTHORIZED,
                    "The email or the password is wrong.".to_owned(),
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server could not sign you in. Try again in a moment.".to_owned(),
                ),
            };
            sign_in_page(&state, status, Some(&error), form.email)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

fn csrf_ok(session: &Session, sent: &str) -> bool {
    constant_time_eq(sent.as_bytes(), session.csrf.as_bytes())
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let (session, token) = session(&state, &headers).await?;
    if !csrf_ok(&session, &form.csrf) {
        return Err(PageError::Forbidden);
    }
    state.store.delete_session(&token).await?;
    Ok((
        [(
            header::SET_COOKIE,
            crate::api::session_cookie(&state, "", 0),
        )],
        Redirect::to("/admin/sign-in"),
    )
        .into_response())
}

/// The page's query: like the API's, with `status` repeatable (a form's checkboxes).
#[derive(Default)]
struct PageQuery {
    pairs: Vec<(String, String)>,
}

impl PageQuery {
    fn parse(raw: Option<&str>) -> PageQuery {
        PageQuery {
            pairs: form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .filter(|(_, v)| !v.trim().is_empty())
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn statuses(&self) -> String {
        self.pairs
            .iter()
            .filter(|(k, _)| k == "status")
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL of this view without the pairs `drop` rejects (and without paging).
    fn url_without(&self, drop: impl Fn(&str, &str) -> bool) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if k != "after" && !drop(k, v) {
                out.append_pair(k, v);
            }
        }
        let query = out.finish();
        if query.is_empty() {
            "/admin/provisioning".into()
        } else {
            format!("/admin/provisioning?{query}")
        }
    }
}

fn offset_label(offset: FixedOffset) -> String {
    if offset.local_minus_utc() == 0 {
        "UTC".into()
    } else {
        format!("UTC{offset}")
    }
}

fn show_time(t: DateTime<Utc>, offset: FixedOffset) -> String {
    let t = t.with_timezone(&offset);
    let (pm, hour) = chrono::Timelike::hour12(&t);
    format!(
        "{} {}:{:02}:{:02} {}",
        t.format("%-d %b %Y"),
        hour,
        chrono::Timelike::minute(&t),
        chrono::Timelike::second(&t),
        if pm { "pm" } else { "am" }
    )
}

/// A date of the filters (`2024-01-31`) as the table shows dates (`31 Jan 2024`).
fn show_date(value: &str) -> String {
    date(value).map_or_else(|| value.to_owned(), |d| d.format("%-d %b %Y").to_string())
}

fn date(value: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// What started a run, in words.
fn trigger_label(run: &RunRecord) -> &'static str {
    use rollcall_domain::Trigger;
    if run.approval.is_some() {
        return "Approval";
    }
    match run.trigger {
        Trigger::Sftp => "SFTP upload",
        Trigger::Cli => "CLI",
        Trigger::Scim => "SCIM",
        Trigger::Schedule => "Schedule",
        Trigger::Bulk => "Bulk Update",
    }
}

/// A finished run's counts in a line: `3 created · 2 updated · 1 failed`, the non-zero ones
/// (`would create` for a dry or blocked run).
fn counts_summary(run: &RunRecord) -> String {
    match run.status {
        RunStatus::Queued | RunStatus::InProgress | RunStatus::Cancelled => return String::new(),
        RunStatus::DataLoadFailed => return "The data did not load".into(),
        _ => {}
    }
    let parts: Vec<String> = count_tiles(run)
        .iter()
        .filter(|c| c.value > 0)
        .map(|c| match (c.value, c.label) {
            (1, "Warnings") => "1 warning".to_owned(),
            (n, label) => format!("{n} {}", label.to_lowercase()),
        })
        .collect();
    if parts.is_empty() {
        "No records".into()
    } else {
        parts.join(" · ")
    }
}

fn show_duration(run: &RunRecord) -> String {
    match run.duration() {
        None => "—".into(),
        Some(d) if d.num_milliseconds() < 60_000 => {
            format!("{:.1} s", d.num_milliseconds() as f64 / 1000.0)
        }
        Some(d) => format!("{} min {} s", d.num_minutes(), d.num_seconds() % 60),
    }
}

fn status_help(status: RunStatus) -> String {
    format!("{} {}", status.meaning(), status.recommended_action())
}

fn note(run: &RunRecord) -> Option<String> {
    rollcall_domain::run::threshold_note(
        run.status,
        run.dry_run,
        run.counts.deactivated,
        run.threshold_hit,
    )
}

/// The tiles of a run's counts: what a dry run or a blocked run would have done, what any
/// other run did.
fn count_tiles(run: &RunRecord) -> Vec<Count> {
    let planned = run.dry_run || run.status == RunStatus::AboveDeactivationThreshold;
    let label = |action: Action| {
        if planned {
            action.planned_label()
        } else {
            action.label()
        }
    };
    let c = run.counts;
    vec![
        Count {
            label: label(Action::Created),
            value: c.created,
        },
        Count {
            label: label(Action::Updated),
            value: c.updated,
        },
        Count {
            label: label(Action::Deactivated),
            value: c.deactivated,
        },
        Count {
            label: label(Action::Reactivated),
            value: c.reactivated,
        },
        Count {
            label: label(Action::Unchanged),
            value: c.unchanged,
        },
        Count {
            label: label(Action::Skipped),
            value: c.skipped,
        },
        Count {
            label: label(Action::Failed),
            value: c.failed,
        },
        Count {
            label: "Warnings",
            value: c.warnings,
        },
    ]
    .into_iter()
    .chain((c.ignored_inactive > 0).then_some(Count {
        // Inactive rows of people never provisioned: no problem, so shown only when there.
        label: "Ignored (inactive, unknown)",
        value: c.ignored_inactive,
    }))
    .collect()
}

fn viewer_tz(query: Option<&str>, headers: &HeaderMap) -> (String, FixedOffset) {
    let candidate = query
        .map(str::to_owned)
        .or_else(|| cookie(headers, TZ_COOKIE));
    match candidate.as_deref().map(|t| (t, parse_offset(Some(t)))) {
        Some((t, Ok(offset))) => (t.to_owned(), offset),
        _ => ("Z".into(), FixedOffset::east_opt(0).expect("zero offset")),
    }
}

fn logs_url(id: &str, format: &str, tz: &str) -> String {
    let tz: String = form_urlencoded::byte_serialize(tz.as_bytes()).collect();
    format!("/api/v1/sync-runs/{id}/logs?format={format}&tz={tz}")
}

fn choice(value: &str, label: &str, selected: bool) -> Choice {
    Choice {
        value: value.into(),
        label: label.into(),
        selected,
    }
}

async fn provisioning(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, org) = allowed(&state, &headers, provisioning_refusal).await?;
    let query = PageQuery::parse(raw.as_deref());
    let (tz, offset) = viewer_tz(query.get("tz"), &headers);
    let statuses = query.statuses();
    // A From or To date selects Custom by itself.
    let dated = query.get("from").is_some() || query.get("to").is_some();
    let range = match query.get("range") {
        None | Some("all") if dated => Some("custom"),
        other => other,
    };
    let mixed = dated && matches!(range, Some("7d" | "30d"));
    let backwards = matches!(
        (query.get("from").and_then(date), query.get("to").and_then(date)),
        (Some(f), Some(t)) if f > t
    );
    let parsed = if backwards {
        Err("the From date is after the To date: swap them".to_owned())
    } else if mixed {
        Err("a date range of the last days and From/To dates do not go together: choose Custom for the dates, or clear them".to_owned())
    } else {
        RunFilter::parse(&FilterParams {
            range,
            from: query.get("from"),
            to: query.get("to"),
            tz: Some(&tz),
            sort: query.get("sort"),
            configuration: query.get("configuration"),
            status: Some(&statuses),
        })
    };
    // A filter that cannot be read shows no runs rather than every run: the form keeps what
    // was asked, and the message says what to change.
    let (mut filter, error) = match parsed {
        Ok(f) => (f, None),
        Err(e) => (
            RunFilter::default(),
            Some(format!(
                "These filters cannot be applied: {e}. Change them and apply again; no runs are shown until then."
            )),
        ),
    };
    filter.connector = query.get("source").map(str::to_owned);
    let connectors = org.run_connectors().await?;
    // Bulk Update runs have their own page, and so has their configuration.
    let configs: Vec<_> = org
        .configs()
        .await?
        .into_iter()
        .filter(|c| c.kind != rollcall_domain::config::ConfigKind::BulkUpdate)
        .collect();
    let after = query.get("after").and_then(RunCursor::decode);
    let page = if error.is_some() {
        rollcall_store::RunPage {
            runs: Vec::new(),
            total: 0,
            next: None,
        }
    } else {
        org.run_page(
            &filter,
            filter.bounds(state.store.now()),
            after.as_ref(),
            PAGE_SIZE,
        )
        .await?
    };

    let mut pills = Vec::new();
    let range_label = match filter.range {
        Range::All => None,
        Range::Last7Days => Some("Last 7 Days".to_owned()),
        Range::Last30Days => Some("Last 30 Days".to_owned()),
        Range::Custom { .. } => Some(format!(
            "{} – {}",
            query.get("from").map_or("any date".into(), show_date),
            query.get("to").map_or("today".into(), show_date)
        )),
    };
    if let Some(label) = range_label {
        pills.push(Pill {
            label,
            remove_url: query.url_without(|k, _| matches!(k, "range" | "from" | "to")),
        });
    }
    if let Some(id) = &filter.configuration {
        let name = configs
            .iter()
            .find(|c| c.id.as_str() == id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "Unknown configuration".into());
        pills.push(Pill {
            label: name,
            remove_url: query.url_without(|k, _| k == "configuration"),
        });
    }
    if let Some(source) = &filter.connector {
        pills.push(Pill {
            label: source.clone(),
            remove_url: query.url_without(|k, _| k == "source"),
        });
    }
    for status in &filter.statuses {
        let code = status.code();
        pills.push(Pill {
            label: status.label().to_owned(),
            remove_url: query.url_without(|k, v| {
                k == "status" && v.split(',').map(str::trim).any(|s| s == code)
            }),
        });
    }
    if filter.sort == Sort::OldestFirst {
        pills.push(Pill {
            label: "Oldest first".into(),
            remove_url: query.url_without(|k, _| k == "sort"),
        });
    }

    let rows = page
        .runs
        .iter()
        .map(|r| RunRow {
            id: r.id.to_string(),
            started: show_time(r.started_at.unwrap_or(r.queued_at), offset),
            connector: r.connector.clone(),
            configuration: r.config_name.clone(),
            status_code: r.status.code(),
            status_label: r.status.label(),
            status_help: status_help(r.status),
            dry_run: r.dry_run,
            note: note(r),
            duration: show_duration(r),
            summary: counts_summary(r),
            file_name: r.file_name.clone(),
            trigger: trigger_label(r),
            has_logs: r.status.has_logs(),
            detail_url: format!("/admin/provisioning/runs/{}", r.id),
            csv_url: logs_url(r.id.as_str(), "csv", &tz),
            xlsx_url: logs_url(r.id.as_str(), "xlsx", &tz),
        })
        .collect();
    let base = query.url_without(|_, _| false);
    let joiner = if base.contains('?') { '&' } else { '?' };
    let next_url = page
        .next
        .map(|c| format!("{base}{joiner}after={}", c.encode()));
    let first_url = after.is_some().then(|| base.clone());
    let live = page
        .runs
        .iter()
        .any(|r| matches!(r.status, RunStatus::Queued | RunStatus::InProgress));
    let range_value = match filter.range {
        Range::All => "all",
        Range::Last7Days => "7d",
        Range::Last30Days => "30d",
        Range::Custom { .. } => "custom",
    };
    Ok(render(&ProvisioningPage {
        nav: Some(nav(&session, "provisioning")),
        legend: legend(),
        tz_label: offset_label(offset),
        tz_param: query.get("tz").map(str::to_owned),
        ranges: [
            ("all", "All Time"),
            ("7d", "Last 7 Days"),
            ("30d", "Last 30 Days"),
            ("custom", "Custom"),
        ]
        .into_iter()
        .map(|(v, l)| choice(v, l, v == range_value))
        .collect(),
        sources: connectors
            .iter()
            .map(|c| choice(c, c, filter.connector.as_deref() == Some(c.as_str())))
            .collect(),
        live,
        from: query.get("from").unwrap_or_default().to_owned(),
        to: query.get("to").unwrap_or_default().to_owned(),
        configurations: configs
            .iter()
            .map(|c| {
                choice(
                    c.id.as_str(),
                    &c.name,
                    filter.configuration.as_deref() == Some(c.id.as_str()),
                )
            })
            .collect(),
        statuses: RunStatus::ALL
            .iter()
            .map(|s| choice(s.code(), s.label(), filter.statuses.contains(s)))
            .collect(),
        sorts: [("newest", "Newest first"), ("oldest", "Oldest first")]
            .into_iter()
            .map(|(v, l)| choice(v, l, v == filter.sort.code()))
            .collect(),
        error,
        pills,
        total: page.total,
        rows,
        first_url,
        next_url,
    }))
}

/// What a run's page lists: one chip of the log's filter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LogView {
    /// Every row, problems first: failed, skipped, warned, then the rest.
    All,
    Warnings,
    Action(Action),
}

impl LogView {
    fn parse(code: Option<&str>) -> LogView {
        match code {
            Some("warnings") => LogView::Warnings,
            Some(other) => Action::ALL
                .into_iter()
                .find(|a| a.label().eq_ignore_ascii_case(other))
                .map_or(LogView::All, LogView::Action),
            None => LogView::All,
        }
    }

    fn code(self) -> String {
        match self {
            LogView::All => "all".into(),
            LogView::Warnings => "warnings".into(),
            LogView::Action(a) => a.label().to_lowercase(),
        }
    }

    /// The store's selections this view reads, one after the other.
    fn phases(self) -> Vec<LogSelection> {
        match self {
            LogView::All => vec![
                LogSelection::Action(Action::Failed),
                LogSelection::Action(Action::Skipped),
                LogSelection::WarningsOnly,
                LogSelection::Rest,
            ],
            LogView::Warnings => vec![LogSelection::Warnings],
            LogView::Action(a) => vec![LogSelection::Action(a)],
        }
    }
}

/// A page of the log: `phase.position` cursors walk through the view's phases in turn.
async fn log_lines(
    org: &rollcall_store::OrgStore,
    run: &RunRecord,
    view: LogView,
    search: Option<&str>,
    after: Option<(usize, i64)>,
) -> Result<(Vec<LogLine>, Option<String>), PageError> {
    let phases = view.phases();
    let (mut phase, mut position) = match after {
        Some((phase, position)) if phase < phases.len() => (phase, Some(position)),
        _ => (0, None),
    };
    let mut lines = Vec::new();
    let mut next = None;
    while phase < phases.len() && lines.len() < LOG_PAGE {
        let want = (LOG_PAGE - lines.len()) as u32;
        let page = org
            .log_page(&run.id, &phases[phase], search, position, want)
            .await?;
        lines.extend(page.rows.iter().map(|(_, r)| log_line(run, r)));
        match page.next {
            Some(seq) => {
                next = Some(format!("{phase}.{seq}"));
                break;
            }
            None => {
                phase += 1;
                position = None;
                // A full page ending a phase: the next page starts with the next phase.
                if lines.len() == LOG_PAGE && phase < phases.len() {
                    next = Some(format!("{phase}.-1"));
                }
            }
        }
    }
    Ok((lines, next))
}

/// `first_name, email` as `First Name, Email` (custom fields keep their names).
fn field_labels(keys: &str) -> String {
    keys.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| FieldKey::from_key(k).map_or(k, |f| f.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn log_line(run: &RunRecord, r: &LogRow) -> LogLine {
    let warning = r.error_types.iter().any(|e| e.is_warning());
    let kind = match r.action {
        Action::Failed => "failed",
        Action::Skipped => "skipped",
        _ if warning => "warning",
        _ => "ok",
    };
    LogLine {
        row: r.row.map(|n| n.to_string()).unwrap_or_default(),
        external_id: r.external_id.clone(),
        username: r.username.clone(),
        action: if run.dry_run {
            r.action.planned_label().to_owned()
        } else {
            r.action.label().to_owned()
        },
        kind,
        problems: r
            .error_types
            .iter()
            .map(|e| Problem {
                code: e.code(),
                warning: e.is_warning(),
            })
            .collect(),
        message: r.message.clone(),
        additional_data: r.additional_data.clone(),
        changed_fields: field_labels(&r.changed_fields),
    }
}

/// The chips over a run's log: every row, then each action and the warnings, with counts.
fn log_chips(run: &RunRecord, view: LogView, base: &str) -> Vec<Chip> {
    let c = run.counts;
    let planned = run.dry_run || run.status == RunStatus::AboveDeactivationThreshold;
    let label = |a: Action| {
        if planned {
            a.planned_label()
        } else {
            a.label()
        }
    };
    let total = c.created
        + c.updated
        + c.deactivated
        + c.reactivated
        + c.unchanged
        + c.skipped
        + c.failed
        + c.ignored_inactive;
    let mut chips = vec![(LogView::All, "All rows", total, "all")];
    chips.push((
        LogView::Action(Action::Failed),
        label(Action::Failed),
        c.failed,
        "failed",
    ));
    if c.skipped > 0 {
        chips.push((
            LogView::Action(Action::Skipped),
            label(Action::Skipped),
            c.skipped,
            "failed",
        ));
    }
    chips.push((LogView::Warnings, "Warnings", c.warnings, "warning"));
    for (a, n) in [
        (Action::Created, c.created),
        (Action::Updated, c.updated),
        (Action::Deactivated, c.deactivated),
        (Action::Reactivated, c.reactivated),
        (Action::Unchanged, c.unchanged),
    ] {
        chips.push((LogView::Action(a), label(a), n, "ok"));
    }
    if c.ignored_inactive > 0 {
        chips.push((
            LogView::Action(Action::Ignored),
            label(Action::Ignored),
            c.ignored_inactive,
            "ok",
        ));
    }
    chips
        .into_iter()
        .map(|(v, label, count, tone)| Chip {
            code: v.code(),
            label,
            count,
            tone: if count == 0 { "none" } else { tone },
            current: v == view,
            url: format!("{base}show={}", v.code()),
        })
        .collect()
}

async fn run_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, org) = allowed(&state, &headers, provisioning_refusal).await?;
    let run = match org.run(&RunId::new(id)).await {
        Ok(run) => run,
        Err(rollcall_store::StoreError::NotFound(_)) => {
            return Ok(not_found(Some(nav(&session, "provisioning"))));
        }
        Err(e) => return Err(e.into()),
    };
    let query = PageQuery::parse(raw.as_deref());
    let (tz, offset) = viewer_tz(query.get("tz"), &headers);
    let q = query.get("q").unwrap_or_default().trim().to_owned();
    let view = LogView::parse(query.get("show"));
    let after = query
        .get("after")
        .and_then(|a| a.split_once('.'))
        .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)));
    let (log, next) = if run.status.has_logs() {
        log_lines(&org, &run, view, Some(q.as_str()), after).await?
    } else {
        (Vec::new(), None)
    };
    // This page's URL with its time zone and search kept (chips, paging).
    let base = {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(tz) = query.get("tz") {
            out.append_pair("tz", tz);
        }
        if !q.is_empty() {
            out.append_pair("q", &q);
        }
        let kept = out.finish();
        let path = format!("/admin/provisioning/runs/{}", run.id);
        if kept.is_empty() {
            format!("{path}?")
        } else {
            format!("{path}?{kept}&")
        }
    };
    // A run whose data did not load has only its load errors to show: no chips.
    let chips = if run.status == RunStatus::DataLoadFailed {
        Vec::new()
    } else {
        log_chips(&run, view, &base)
    };
    let next_url = next.map(|n| format!("{base}show={}&after={n}", view.code()));
    let first_url = after
        .is_some()
        .then(|| format!("{base}show={}", view.code()));
    Ok(render(&RunPage {
        nav: Some(nav(&session, "provisioning")),
        legend: legend(),
        id: run.id.to_string(),
        csrf: session.csrf.clone(),
        started: show_time(run.started_at.unwrap_or(run.queued_at), offset),
        configuration: run.config_name.clone(),
        connector: run.connector.clone(),
        status_code: run.status.code(),
        status_label: run.status.label(),
        meaning: run.status.meaning(),
        recommended_action: run.status.recommended_action(),
        dry_run: run.dry_run,
        note: note(&run),
        approval: run
            .approval
            .as_ref()
            .map(|a| format!("Approved by {} on {}", a.by, show_time(a.at, offset))),
        file_name: run.file_name.clone(),
        duration: show_duration(&run),
        counts: count_tiles(&run),
        cancellable: run.status == RunStatus::Queued,
        has_logs: run.status.has_logs(),
        csv_url: logs_url(run.id.as_str(), "csv", &tz),
        xlsx_url: logs_url(run.id.as_str(), "xlsx", &tz),
        tz_param: query.get("tz").map(str::to_owned),
        q,
        view: view.code(),
        live: matches!(run.status, RunStatus::Queued | RunStatus::InProgress),
        chips,
        log,
        next_url,
        first_url,
    }))
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let (session, _) = session(&state, &headers).await?;
    if !may_see_provisioning(&session) || !csrf_ok(&session, &form.csrf) {
        return Err(PageError::Forbidden);
    }
    let org = state.store.org(session.admin.org_id.clone());
    let id = RunId::new(id);
    match org.cancel_run(&id).await {
        Ok(_) | Err(rollcall_store::StoreError::RunStatus { .. }) => {
            Ok(Redirect::to(&format!("/admin/provisioning/runs/{id}")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

struct UserRow {
    id: String,
    username: String,
    name: String,
    email: String,
    active: bool,
    managed_by: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    q: String,
    users: Vec<UserRow>,
    next_url: Option<String>,
}

struct FieldView {
    key: &'static str,
    label: &'static str,
    /// The form's value (`true`/`false` for Active).
    value: String,
    /// The value in words, for reading: Yes/No, or — when empty.
    shown: String,
    editable: bool,
}

struct AuditLine {
    when: String,
    by: String,
    fields: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPageView {
    nav: Option<Nav>,
    id: String,
    csrf: String,
    username: String,
    /// The person's name, or their username when the profile has none.
    name: String,
    active: bool,
    managed_by: Option<String>,
    /// The manager's name and page, when the user has one.
    manager: Option<(String, String)>,
    custom_fields: Vec<(String, String)>,
    any_editable: bool,
    saved: bool,
    problems: Vec<String>,
    fields: Vec<FieldView>,
    audit: Vec<AuditLine>,
}

const USERS_PAGE: u32 = 50;

async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, org) = allowed(&state, &headers, users_refusal).await?;
    let query = PageQuery::parse(raw.as_deref());
    let q = query.get("q").unwrap_or_default().to_owned();
    let after = query.get("after").and_then(|a| a.split_once(' '));
    let page = org.user_page(&q, false, after, USERS_PAGE).await?;
    let names: std::collections::HashMap<String, String> = org
        .configs()
        .await?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect();
    let rows = page
        .users
        .iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            username: shown_value(u, FieldKey::Username),
            name: [&u.profile.first_name, &u.profile.second_name]
                .iter()
                .filter_map(|n| n.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
            email: shown_value(u, FieldKey::Email),
            active: u.active,
            managed_by: u.managed_by.as_ref().map(|c| {
                names
                    .get(c.as_str())
                    .cloned()
                    .unwrap_or_else(|| "a source".into())
            }),
        })
        .collect();
    let next_url = page.next.map(|(name, id)| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            out.append_pair("q", &q);
        }
        out.append_pair("after", &format!("{name} {id}"));
        format!("/admin/users?{}", out.finish())
    });
    Ok(render(&UsersPage {
        nav: Some(nav(&session, "users")),
        q,
        users: rows,
        next_url,
    }))
}

async fn user_view(
    state: &AppState,
    session: &Session,
    user: &rollcall_domain::StoredUser,
    shown: &rollcall_domain::StoredUser,
    saved: bool,
    problems: Vec<String>,
) -> Result<Response, PageError> {
    let org = state.store.org(session.admin.org_id.clone());
    let editable = editable_fields(user);
    let managed_by = match &user.managed_by {
        Some(config) => Some(
            org.config(config.as_str())
                .await
                .map(|c| c.name)
                .unwrap_or_else(|_| "a source".into()),
        ),
        None => None,
    };
    let audit = org
        .user_audit(&user.id)
        .await?
        .into_iter()
        .map(|a| AuditLine {
            when: chrono::DateTime::from_timestamp_millis(a.at_ms)
                .map(|t| t.format("%-d %b %Y %H:%M").to_string())
                .unwrap_or_default(),
            by: a.admin_email,
            fields: field_labels(&a.changed_fields),
        })
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let manager = match &user.manager_id {
        Some(id) => Some(match org.user(id).await? {
            Some(m) => (
                person_name(&m).unwrap_or_else(|| shown_value(&m, FieldKey::Username)),
                format!("/admin/users/{}", m.id),
            ),
            None => (id.to_string(), String::new()),
        }),
        None => None,
    };
    let username = shown_value(user, FieldKey::Username);
    let mut response = render(&UserPageView {
        nav: Some(nav(session, "users")),
        id: user.id.to_string(),
        csrf: session.csrf.clone(),
        name: person_name(user).unwrap_or_else(|| username.clone()),
        username,
        active: user.active,
        managed_by,
        manager,
        custom_fields: user
            .profile
            .custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        any_editable: !editable.is_empty(),
        saved,
        problems,
        fields: PROFILE_FIELDS
            .iter()
            .map(|f| {
                let value = shown_value(shown, *f);
                FieldView {
                    key: f.key(),
                    label: f.label(),
                    shown: match (*f, value.as_str()) {
                        (FieldKey::Active, "true") => "Yes".into(),
                        (FieldKey::Active, "false") => "No".into(),
                        (_, "") => "—".into(),
                        _ => value.clone(),
                    },
                    value,
                    editable: editable.contains(f),
                }
            })
            .collect(),
        audit,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `First Second`, when the profile has either.
fn person_name(user: &rollcall_domain::StoredUser) -> Option<String> {
    let name = [&user.profile.first_name, &user.profile.second_name]
        .iter()
        .filter_map(|n| n.as_deref())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.trim().is_empty()).then_some(name)
}

async fn find_user(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<Option<rollcall_domain::StoredUser>, PageError> {
    let org = state.store.org(session.admin.org_id.clone());
    Ok(org
        .user(&rollcall_domain::UserId::new(id))
        .await?
        .filter(|u| !u.scim_deleted))
}

async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, _) = allowed(&state, &headers, users_refusal).await?;
    let Some(found) = find_user(&state, &session, &id).await? else {
        return Ok(not_found(Some(nav(&session, "users"))));
    };
    let saved = PageQuery::parse(raw.as_deref()).get("saved").is_some();
    user_view(&state, &session, &found, &found, saved, Vec::new()).await
}

async fn save_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, _) = session(&state, &headers).await?;
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !may_manage_users(&session) || !csrf_ok(&session, csrf) {
        return Ok(forbidden(Some(nav(&session, ""))));
    }
    let Some(found) = find_user(&state, &session, &id).await? else {
        return Ok(not_found(Some(nav(&session, "users"))));
    };
    let fields: Vec<(FieldKey, String)> = form
        .iter()
        .filter_map(|(k, v)| FieldKey::from_key(k).map(|f| (f, v.clone())))
        .collect();
    let (edited, changed) = match apply_edit(&found, &fields) {
        Ok(done) => done,
        Err(problems) => {
            // Show what was typed, with every problem.
            let mut shown = found.clone();
            if let Ok((typed, _)) = apply_edit(
                &found,
                &fields
                    .iter()
                    .filter(|(f, _)| !problems.iter().any(|(p, _)| p == f))
                    .cloned()
                    .collect::<Vec<_>>(),
            ) {
                shown = typed;
            }
            let messages = problems
                .iter()
                .map(|(f, m)| format!("{}: {m}", f.label()))
                .collect();
            return user_view(&state, &session, &found, &shown, false, messages).await;
        }
    };
    if changed.is_empty() {
        return Ok(Redirect::to(&format!("/admin/users/{id}")).into_response());
    }
    let org = state.store.org(session.admin.org_id.clone());
    match save_profile_edit(&org, &session.admin.id, &found, &edited, &changed).await? {
        ProfileEdit::Saved => {
            tracing::info!(admin = %session.admin.email, user = %found.id, fields = ?changed, "user edited in the admin panel");
            Ok(Redirect::to(&format!("/admin/users/{id}?saved=1")).into_response())
        }
        ProfileEdit::Refused(issue) => {
            user_view(
                &state,
                &session,
                &found,
                &edited,
                false,
                refusal_messages(&issue),
            )
            .await
        }
        ProfileEdit::Stale => {
            let Some(latest) = find_user(&state, &session, &id).await? else {
                return Ok(not_found(Some(nav(&session, "users"))));
            };
            let message = "Someone else changed this user meanwhile: here is the latest version; make your change again";
            user_view(
                &state,
                &session,
                &latest,
                &latest,
                false,
                vec![message.to_owned()],
            )
            .await
        }
    }
}

/// What the profile form says when the engine refuses an edit: a conflict per field it names.
fn refusal_messages(issue: &rollcall_domain::run::Issue) -> Vec<String> {
    use rollcall_domain::ErrorType;
    let taken = |field: &FieldKey| match issue.error_type {
        ErrorType::GlobalConflict => {
            Some(format!("{} is already used by another user", field.label()))
        }
        ErrorType::OrganisationConflict => Some(format!(
            "{} is already used by another user in your organisation",
            field.label()
        )),
        _ => None,
    };
    let messages: Vec<String> = issue.fields.iter().filter_map(taken).collect();
    if messages.is_empty() {
        vec![issue.message.clone()]
    } else {
        messages
    }
}

struct BulkRunRow {
    id: String,
    started: String,
    file: String,
    status_code: &'static str,
    status_label: &'static str,
    updated: u64,
    unchanged: u64,
    skipped: u64,
    failed: u64,
    has_logs: bool,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    nav: Option<Nav>,
    csrf: String,
    columns: String,
    problems: Vec<String>,
    /// The uploaded file's outcome, and its run's status code (the notice's colour).
    result: Option<(String, &'static str)>,
    runs: Vec<BulkRunRow>,
}

/// The largest Bulk Update file, and its rows.
const BULK_MAX_BYTES: u64 = 10 << 20;
const BULK_MAX_ROWS: u64 = 50_000;

async fn bulk_page(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    problems: Vec<String>,
    highlight: Option<&str>,
) -> Result<Response, PageError> {
    let org = state.store.org(session.admin.org_id.clone());
    let (_, offset) = viewer_tz(None, headers);
    let runs = org.bulk_runs(50).await?;
    let result = highlight
        .and_then(|id| runs.iter().find(|r| r.id.as_str() == id))
        .map(|r| {
            let c = &r.counts;
            let text = format!(
                "{}: {} updated, {} unchanged, {} skipped, {} failed — see the log for each row.",
                r.file_name.as_deref().unwrap_or("The file"),
                c.updated + c.deactivated + c.reactivated,
                c.unchanged,
                c.skipped,
                c.failed
            );
            (text, r.status.code())
        });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut response = render(&BulkPage {
        nav: Some(nav(session, "bulk")),
        csrf: session.csrf.clone(),
        columns: rollcall_domain::bulk_update::accepted_columns()
            .into_iter()
            .filter(|c| c != "Username")
            .collect::<Vec<_>>()
            .join(", "),
        problems,
        result,
        runs: runs
            .iter()
            .map(|r| BulkRunRow {
                id: r.id.to_string(),
                started: show_time(r.started_at.unwrap_or(r.queued_at), offset),
                file: r.file_name.clone().unwrap_or_default(),
                status_code: r.status.code(),
                status_label: r.status.label(),
                updated: r.counts.updated + r.counts.deactivated + r.counts.reactivated,
                unchanged: r.counts.unchanged,
                skipped: r.counts.skipped,
                failed: r.counts.failed,
                has_logs: r.status.has_logs(),
            })
            .collect(),
    });
    *response.status_mut() = status;
    Ok(response)
}

async fn bulk_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, _) = allowed(&state, &headers, users_refusal).await?;
    let query = PageQuery::parse(raw.as_deref());
    bulk_page(&state, &session, &headers, Vec::new(), query.get("run")).await
}

async fn bulk_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut multipart: axum::extract::Multipart,
) -> Result<Response, PageError> {
    let (session, _) = session(&state, &headers).await?;
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut problems = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                match field.bytes().await {
                    Ok(bytes) if name == "csrf" => {
                        csrf = String::from_utf8_lossy(&bytes).into_owned()
                    }
                    Ok(bytes) if name == "file" => {
                        file = Some((
                            file_name.unwrap_or_else(|| "upload.csv".into()),
                            bytes.to_vec(),
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        problems.push(format!(
                            "The upload could not be read (files up to {} MiB): try again",
                            BULK_MAX_BYTES >> 20
                        ));
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                problems.push("The upload could not be read: try again".to_owned());
                break;
            }
        }
    }
    if !may_manage_users(&session) || (problems.is_empty() && !csrf_ok(&session, &csrf)) {
        return Ok(forbidden(Some(nav(&session, ""))));
    }
    let Some((file_name, bytes)) = file.filter(|_| problems.is_empty()) else {
        if problems.is_empty() {
            problems.push("Choose a CSV file to upload.".to_owned());
        }
        return bulk_page(&state, &session, &headers, problems, None).await;
    };
    let org = state.store.org(session.admin.org_id.clone());
    let file = BulkFile {
        name: &file_name,
        content: &bytes,
        max_rows: BULK_MAX_ROWS,
    };
    let run = match run_bulk_update(&org, &session.admin.id, file).await? {
        BulkUpdate::Done(run) => run,
        BulkUpdate::Refused(problems) => {
            return bulk_page(&state, &session, &headers, problems, None).await;
        }
    };
    tracing::info!(run = %run.id, admin = %session.admin.email, file = file_name, "bulk update applied");
    Ok(Redirect::to(&format!("/admin/bulk-update?run={}", run.id)).into_response())
}

async fn bulk_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (session, org) = allowed(&state, &headers, users_refusal).await?;
    let run = match org.run(&RunId::new(id)).await {
        Ok(run) if run.trigger == rollcall_domain::Trigger::Bulk => run,
        Ok(_) | Err(rollcall_store::StoreError::NotFound(_)) => {
            return Ok(not_found(Some(nav(&session, "bulk"))));
        }
        Err(e) => return Err(e.into()),
    };
    let query = PageQuery::parse(raw.as_deref());
    let (tz, _) = viewer_tz(query.get("tz"), &headers);
    Ok(
        crate::api::log_download(&org, &run, query.get("format"), Some(&tz))
            .await
            .into_response(),
    )
}
