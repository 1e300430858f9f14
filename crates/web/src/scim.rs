//! The SCIM 2.0 service provider (RFC 7643/7644, SPEC §7) under `/scim/v2` and `/scim`.
//!
//! Every write goes through the engine (`rollcall_sync::scim::scim_apply`) as a batch of one,
//! and is recorded in the configuration's hourly activity run in the same transaction.

use std::collections::HashMap;
use std::num::IntErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rollcall_domain::record::{Incoming, Link, ReadOptions};
use rollcall_domain::{Action, ErrorType, LogRow, UserId};
use rollcall_scim::error::{ScimError, ScimType};
use rollcall_scim::filter::{self, IndexedAttr};
use rollcall_scim::schema::UserSchema;
use rollcall_scim::{patch, resource};
use rollcall_store::{Activity, IndexedColumn, OrgStore, SourceConfig, StoreError, UserRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;

const SCIM_JSON: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Default and largest page (advertised as `filter.maxResults`).
const DEFAULT_COUNT: u64 = 100;
const MAX_COUNT: u64 = 200;
/// How long a verified token is trusted without asking the database again: revocation takes
/// effect within this time, and a busy identity provider does not cost a write per request.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);

/// SCIM settings of the deployment.
#[derive(Clone, Debug)]
pub struct ScimSettings {
    pub schema: UserSchema,
}

/// When a token was verified, and what it grants.
type CachedToken = (Instant, ScimCaller);

/// Verified tokens, by digest.
#[derive(Clone, Default)]
pub struct TokenCache {
    entries: Arc<Mutex<HashMap<String, CachedToken>>>,
}

pub fn routes() -> Router<AppState> {
    let v2 = Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/ServiceProviderConfig", get(service_provider_config))
        // Microsoft's SCIM reference collection asks for this non-standard name.
        .route("/serviceConfiguration", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/Groups", get(groups))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest("/scim/v2", v2.clone()).nest("/scim", v2)
}

/// Endpoint names compare case-insensitively and a trailing slash is ignored (RFC 7644 §3.2
/// leaves the case open; identity providers and their test suites send `/scim/v2/users` and
/// `/Users/`). The path is rewritten to the canonical form before routing.
pub fn normalise_path(mut request: axum::extract::Request) -> axum::extract::Request {
    const ENDPOINTS: [&str; 6] = [
        "Users",
        "Groups",
        "ServiceProviderConfig",
        "serviceConfiguration",
        "ResourceTypes",
        "Schemas",
    ];
    let uri = request.uri();
    let path = uri.path();
    let Some(rest) = path.strip_prefix("/scim/") else {
        return request;
    };
    let (prefix, rest) = match rest.strip_prefix("v2/") {
        Some(rest) => ("/scim/v2/", rest),
        None => ("/scim/", rest),
    };
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let (first, tail) = trimmed
        .split_once('/')
        .map_or((trimmed, ""), |(a, b)| (a, b));
    let Some(endpoint) = ENDPOINTS.iter().find(|e| e.eq_ignore_ascii_case(first)) else {
        return request;
    };
    if *endpoint == first && trimmed.len() == rest.len() {
        return request;
    }
    let mut normalised = format!("{prefix}{endpoint}");
    if !tail.is_empty() {
        normalised.push('/');
        normalised.push_str(tail);
    }
    if let Some(query) = uri.query() {
        normalised.push('?');
        normalised.push_str(query);
    }
    if let Ok(p) = normalised.parse::<axum::http::uri::PathAndQuery>() {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(p);
        if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
        }
    }
    request
}

/// The one error type of the SCIM surface: an RFC 7644 error body.
pub struct ScimApiError(ScimError);

impl From<ScimError> for ScimApiError {
    fn from(e: ScimError) -> Self {
        ScimApiError(e)
    }
}

impl ScimApiError {
    fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimApiError(ScimError {
            status,
            scim_type,
            detail: detail.into(),
            error_type: None,
        })
    }

    fn internal() -> Self {
        Self::new(500, None, "internal error; the request can be retried")
    }

    fn not_found(id: &str) -> Self {
        Self::new(404, None, format!("Resource {id} not found"))
    }
}

impl From<StoreError> for ScimApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "SCIM request failed in storage");
        ScimApiError::internal()
    }
}

impl IntoResponse for ScimApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = scim_json(status, self.0.body());
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type ScimResult = Result<Response, ScimApiError>;

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

async fn not_found() -> ScimApiError {
    ScimApiError::new(404, None, "No such SCIM endpoint")
}

async fn method_not_allowed() -> ScimApiError {
    ScimApiError::new(405, None, "Method not allowed on this SCIM endpoint")
}

/// The caller: the organisation and SCIM configuration its bearer token belongs to. Shared
/// with the token cache, so a request's authentication copies nothing.
#[derive(Clone)]
pub struct ScimCaller(Arc<Grant>);

pub struct Grant {
    org: OrgStore,
    config: SourceConfig,
}

impl std::ops::Deref for ScimCaller {
    type Target = Grant;

    fn deref(&self) -> &Grant {
        &self.0
    }
}

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = ScimApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || ScimApiError::new(401, None, "A valid bearer token is required");
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let digest = rollcall_store::credentials::token_digest(token);
        let caller = match state.tokens.get(&digest) {
            Some(caller) => caller,
            None => {
                let Some((org_id, config_id)) = state.store.authenticate_token(token).await? else {
                    return Err(unauthorized());
                };
                let org = state.store.org(org_id);
                let config = org.config(config_id.as_str()).await?;
                let caller = ScimCaller(Arc::new(Grant { org, config }));
                // A disabled configuration's caller is read again each time, so that enabling
                // it takes effect at once.
                if caller.config.disabled_at.is_none() {
                    state.tokens.put(digest, caller.clone());
                }
                caller
            }
        };
        if caller.config.disabled_at.is_some() {
            return Err(ScimApiError::new(
                403,
                None,
                "This SCIM configuration is disabled in rollcall: the application's operator enables it again",
            ));
        }
        Ok(caller)
    }
}

impl TokenCache {
    fn get(&self, digest: &str) -> Option<ScimCaller> {
        let entries = self.entries.lock().ok()?;
        let (at, caller) = entries.get(digest)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| caller.clone())
    }

    /// Forget the organisation's verified tokens (one was revoked here): each is checked
    /// against the database again on its next request. Other processes forget within
    /// `TOKEN_CACHE_TTL`.
    pub(crate) fn forget_org(&self, org: &rollcall_domain::OrgId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, caller)| caller.org.org_id() != org);
        }
    }

    fn put(&self, digest: String, caller: ScimCaller) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.retain(|_, (at, _)| at.elapsed() < TOKEN_CACHE_TTL);
            }
            entries.insert(digest, (Instant::now(), caller));
        }
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}/scim/v2")
}

fn to_resource(row: &UserRow, base: &str, schema: &UserSchema) -> Value {
    let meta = resource::ResourceMeta {
        created: row.created_at,
        last_modified: row.updated_at,
        version: row.user.version,
        location: format!("{base}/Users/{}", row.user.id),
    };
    resource::user_resource(&row.user, &meta, schema)
}

/// A resource response with its ETag and, for creations, its Location.
fn resource_response(status: StatusCode, resource: Value, version: i64) -> Response {
    let location = resource
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut response = scim_json(status, resource);
    if let Ok(v) = HeaderValue::from_str(&resource::etag(version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionParams {
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

fn number(raw: Option<&str>, name: &str) -> Result<Option<i64>, ScimApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            // An integer too large to hold still means "as many as you allow" (count) or
            // "past the end" (startIndex): both are clamped by the caller.
            Err(e) if matches!(e.kind(), IntErrorKind::PosOverflow) => Ok(Some(i64::MAX)),
            Err(e) if matches!(e.kind(), IntErrorKind::NegOverflow) => Ok(Some(i64::MIN)),
            Err(_) => Err(ScimApiError::new(
                400,
                Some(ScimType::InvalidValue),
                format!("{name} must be an integer, not '{s}'"),
            )),
        },
    }
}

async fn list_users(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult {
    let Query(params) =
        params.map_err(|e| ScimApiError::new(400, Some(ScimType::InvalidValue), e.body_text()))?;
    // RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0.
    let start = number(params.start_index.as_deref(), "startIndex")?
        .unwrap_or(1)
        .max(1) as u64;
    let count = number(params.count.as_deref(), "count")?
        .map_or(DEFAULT_COUNT, |c| c.max(0) as u64)
        .min(MAX_COUNT);
    let base = base_url(&headers);
    let schema = &state.scim.schema;

    // Each user is rendered once: the filter is evaluated on the resource that is returned.
    let (matching, total): (Vec<Value>, u64) = match params
        .filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        None => {
            let (rows, total) = state_page(&caller.org, start, count).await?;
            let page = rows
                .iter()
                .map(|row| to_resource(row, &base, schema))
                .collect();
            (page, total)
        }
        Some(text) => {
            let parsed = filter::parse_filter(text)?;
            filter::check(&parsed, schema)?;
            let candidates = match filter::simple_eq(&parsed)
                .or_else(|| filter::indexable_conjunct(&parsed))
            {
                Some((attr, value)) => caller.org.scim_lookup(indexed_column(attr), &value).await?,
                None => caller.org.scim_all().await?,
            };
            let matching: Vec<Value> = candidates
                .iter()
                .map(|row| to_resource(row, &base, schema))
                .filter(|resource| filter::matches(&parsed, resource, schema))
                .collect();
            let total = matching.len() as u64;
            let page = matching
                .into_iter()
                .skip((start - 1) as usize)
                .take(count as usize)
                .collect();
            (page, total)
        }
    };
    let projection = Projection::new(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    );
    let resources: Vec<Value> = matching
        .into_iter()
        .map(|resource| projection.apply(resource))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "itemsPerPage": resources.len(),
            "startIndex": start,
            "Resources": resources,
        }),
    ))
}

async fn state_page(
    org: &OrgStore,
    start: u64,
    count: u64,
) -> Result<(Vec<UserRow>, u64), ScimApiError> {
    if count == 0 {
        let (_, total) = org.scim_page(0, 0).await?;
        return Ok((Vec::new(), total));
    }
    Ok(org.scim_page(start - 1, count).await?)
}

fn indexed_column(attr: IndexedAttr) -> IndexedColumn {
    match attr {
        IndexedAttr::Id => IndexedColumn::Id,
        IndexedAttr::UserName => IndexedColumn::UserName,
        IndexedAttr::ExternalId => IndexedColumn::ExternalId,
        IndexedAttr::Email => IndexedColumn::Email,
        IndexedAttr::EmployeeNumber => IndexedColumn::EmployeeId,
    }
}

async fn get_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<ProjectionParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult {
    let Query(params) =
        params.map_err(|e| ScimApiError::new(400, Some(ScimType::InvalidValue), e.body_text()))?;
    let row = caller
        .org
        .scim_user(&UserId::new(&id))
        .await?
        .ok_or_else(|| ScimApiError::not_found(&id))?;
    let projection = Projection::new(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    );
    let resource = projection.apply(to_resource(&row, &base_url(&headers), &state.scim.schema));
    Ok(resource_response(
        StatusCode::OK,
        resource,
        row.user.version,
    ))
}

/// Parse a request body as JSON: any JSON media type is accepted (identity providers send
/// `application/scim+json` or `application/json`).
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ScimApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ScimApiError::new(
                413,
                None,
                "The request body is larger than the limit (1 MiB)",
            )
        } else {
            ScimApiError::new(400, Some(ScimType::InvalidSyntax), e.body_text())
        }
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ScimApiError::new(
            400,
            Some(ScimType::InvalidSyntax),
            format!("The request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ScimApiError::new(
            400,
            Some(ScimType::InvalidSyntax),
            "The request body must be a JSON object",
        ));
    }
    Ok(value)
}

fn read_options(config: &SourceConfig) -> ReadOptions {
    ReadOptions {
        phone_region: config.phone_region,
    }
}

/// Log a request refused before it reached the engine (invalid JSON content, bad values), so
/// admins see it on the runs page with the same error codes as file rows.
async fn log_refusal(caller: &ScimCaller, body: &Value, error: &ScimError) {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let error_type = error.error_type.unwrap_or(ErrorType::InvalidValue);
    let log = LogRow {
        external_id: text("externalId"),
        username: text("userName"),
        error_types: vec![error_type],
        message: error.detail.clone(),
        ..LogRow::new(Action::Failed)
    };
    let activity = Activity {
        config: &caller.config.id,
        log,
        action: Action::Failed,
        warning: false,
    };
    if let Err(e) = caller.org.record_scim_failure(activity).await {
        tracing::error!(error = %e, "could not record a refused SCIM request");
    }
}

/// Run one record through the engine and answer with the resource or the SCIM error.
/// `current` is the user a PUT or PATCH targets, as just read.
async fn write_user(
    state: &AppState,
    caller: &ScimCaller,
    headers: &HeaderMap,
    body: &Value,
    link: Link,
    current: Option<UserRow>,
) -> ScimResult {
    let schema = &state.scim.schema;
    let posted = matches!(link, Link::New);
    let record = match resource::incoming_from_resource(
        body,
        1,
        link,
        &read_options(&caller.config),
        schema,
    ) {
        Ok(record) => record,
        Err(e) => {
            log_refusal(caller, body, &e).await;
            return Err(e.into());
        }
    };
    let known = current.as_ref().map(|row| row.user.clone());
    let (planned, written_at) =
        rollcall_sync::scim::scim_apply(&caller.org, &caller.config, record, known)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "SCIM write failed");
                ScimApiError::internal()
            })?;
    if let Some(error) = &planned.error {
        return Err(engine_error(error));
    }
    let id = planned.user_id.clone().ok_or_else(ScimApiError::internal)?;
    let current = current.filter(|row| row.user.id == id);
    // The user as stored now, without reading it back where the write says it all.
    let row = match (planned.write, written_at) {
        (Some(write), Some(at)) => {
            let created_at = match &current {
                Some(row) => Some(row.created_at),
                None if planned.action == Action::Created => Some(at),
                None => None,
            };
            match created_at {
                Some(created_at) => UserRow {
                    user: write.user,
                    created_at,
                    updated_at: at,
                },
                // A claimed user: its creation time is in storage.
                None => caller
                    .org
                    .scim_user(&id)
                    .await?
                    .ok_or_else(|| ScimApiError::not_found(id.as_str()))?,
            }
        }
        // Dry run: nothing was written; answer with the planned user.
        (Some(write), None) => {
            let now = chrono::Utc::now();
            UserRow {
                user: write.user,
                created_at: current.map_or(now, |row| row.created_at),
                updated_at: now,
            }
        }
        // Nothing to change.
        (None, _) => match current {
            Some(row) => row,
            None => caller
                .org
                .scim_user(&id)
                .await?
                .ok_or_else(|| ScimApiError::not_found(id.as_str()))?,
        },
    };
    // A POST answers 201 whatever the account was before: new, an unmanaged user claimed, or
    // a user deleted through SCIM brought back (for the client, each is created now).
    let status = if posted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(resource_response(
        status,
        to_resource(&row, &base_url(headers), schema),
        row.user.version,
    ))
}

/// The engine's verdict on a record, as a SCIM error. Conflicts are 409 `uniqueness` with the
/// SPEC §3 error type first in the detail.
fn engine_error(issue: &rollcall_domain::run::Issue) -> ScimApiError {
    let detail = if issue.additional_data.is_empty() {
        format!("{}: {}", issue.error_type.code(), issue.message)
    } else {
        format!(
            "{}: {} ({})",
            issue.error_type.code(),
            issue.message,
            issue.additional_data
        )
    };
    match issue.error_type {
        ErrorType::OrganisationConflict
        | ErrorType::GlobalConflict
        | ErrorType::ShardConflict
        | ErrorType::MatchCandidateConflict => {
            ScimApiError::new(409, Some(ScimType::Uniqueness), detail)
        }
        ErrorType::NotFound => ScimApiError::new(404, None, detail),
        _ => ScimApiError::new(400, Some(ScimType::InvalidValue), detail),
    }
}

async fn create_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ScimResult {
    let body = json_body(body)?;
    write_user(&state, &caller, &headers, &body, Link::New, None).await
}

/// `If-Match` (RFC 7644 §3.14): a stale version is refused with 412.
fn check_if_match(headers: &HeaderMap, version: i64) -> Result<(), ScimApiError> {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let current = resource::etag(version);
    let strong = current.trim_start_matches("W/");
    let ok = wanted
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current || tag.trim_start_matches("W/") == strong);
    if ok {
        Ok(())
    } else {
        Err(ScimApiError::new(
            412,
            None,
            format!("The resource changed: its version is {current}"),
        ))
    }
}

async fn replace_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ScimResult {
    let body = json_body(body)?;
    let current = caller
        .org
        .scim_user(&UserId::new(&id))
        .await?
        .ok_or_else(|| ScimApiError::not_found(&id))?;
    check_if_match(&headers, current.user.version)?;
    write_user(
        &state,
        &caller,
        &headers,
        &body,
        Link::User(UserId::new(&id)),
        Some(current),
    )
    .await
}

async fn patch_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ScimResult {
    let body = json_body(body)?;
    let current = caller
        .org
        .scim_user(&UserId::new(&id))
        .await?
        .ok_or_else(|| ScimApiError::not_found(&id))?;
    check_if_match(&headers, current.user.version)?;
    let schema = &state.scim.schema;
    let ops = patch::parse_patch(&body)?;
    let mut resource = to_resource(&current, &base_url(&headers), schema);
    patch::apply_patch(&mut resource, &ops, schema)?;
    write_user(
        &state,
        &caller,
        &headers,
        &resource,
        Link::User(UserId::new(&id)),
        Some(current),
    )
    .await
}

/// DELETE: one engine record that deactivates the user and hides it from SCIM
/// ([`Incoming::scim_delete`]), planned, applied and logged like a PUT or PATCH.
async fn delete_user(caller: ScimCaller, Path(id): Path<String>) -> ScimResult {
    let user_id = UserId::new(&id);
    let current = caller
        .org
        .scim_user(&user_id)
        .await?
        .ok_or_else(|| ScimApiError::not_found(&id))?;
    let record = Incoming::scim_delete(1, user_id, &current.user.profile);
    let (planned, _) =
        rollcall_sync::scim::scim_apply(&caller.org, &caller.config, record, Some(current.user))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "SCIM delete failed");
                ScimApiError::internal()
            })?;
    match &planned.error {
        Some(error) => Err(engine_error(error)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

async fn service_provider_config(headers: HeaderMap) -> Response {
    scim_json(
        StatusCode::OK,
        rollcall_scim::schema::service_provider_config(&base_url(&headers)),
    )
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let list = rollcall_scim::schema::resource_types(&base_url(&headers), &state.scim.schema);
    scim_json(StatusCode::OK, list_of(list))
}

async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult {
    let list = rollcall_scim::schema::resource_types(&base_url(&headers), &state.scim.schema);
    find_by_id(list, &id)
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let list = rollcall_scim::schema::schemas(&base_url(&headers), &state.scim.schema);
    scim_json(StatusCode::OK, list_of(list))
}

async fn schema_by_id(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult {
    let list = rollcall_scim::schema::schemas(&base_url(&headers), &state.scim.schema);
    find_by_id(list, &id)
}

/// Groups are not synced; an empty list lets the identity providers' connection tests pass.
async fn groups(_caller: ScimCaller) -> Response {
    scim_json(
        StatusCode::OK,
        json!({"schemas": [LIST_RESPONSE], "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []}),
    )
}

/// Discovery documents come as a JSON array (or a ListResponse); answer in ListResponse form.
fn list_of(documents: Value) -> Value {
    let items = match documents {
        Value::Array(items) => items,
        Value::Object(ref o) if o.contains_key("Resources") => return documents,
        other => vec![other],
    };
    json!({"schemas": [LIST_RESPONSE], "totalResults": items.len(), "itemsPerPage": items.len(), "startIndex": 1, "Resources": items})
}

fn find_by_id(documents: Value, id: &str) -> ScimResult {
    let items = match list_of(documents).get("Resources") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .find(|d| {
            d.get("id")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        })
        .map(|d| scim_json(StatusCode::OK, d))
        .ok_or_else(|| ScimApiError::not_found(id))
}

/// One name of an `attributes` list: optional schema URN, attribute, optional sub-attribute
/// (all lower case).
type AttrSpec = (Option<String>, String, Option<String>);

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5): `id` and `schemas` are always
/// returned; names compare case-insensitively and may carry a schema URN prefix.
struct Projection {
    include: Option<Vec<AttrSpec>>,
    exclude: Vec<AttrSpec>,
}

fn parse_attribute_list(raw: Option<&str>) -> Vec<AttrSpec> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            // urn:…:User:employeeNumber → (urn, employeeNumber); name.givenName → (name, givenName)
            let (urn, path) = match item.rfind(':') {
                Some(i) if item.to_ascii_lowercase().starts_with("urn:") => {
                    (Some(item[..i].to_ascii_lowercase()), &item[i + 1..])
                }
                _ => (None, item),
            };
            let (attr, sub) = match path.split_once('.') {
                Some((a, s)) => (a.to_ascii_lowercase(), Some(s.to_ascii_lowercase())),
                None => (path.to_ascii_lowercase(), None),
            };
            (urn, attr, sub)
        })
        .collect()
}

impl Projection {
    fn new(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let include = parse_attribute_list(attributes);
        Projection {
            include: (!include.is_empty()).then_some(include),
            exclude: parse_attribute_list(excluded),
        }
    }

    fn apply(&self, resource: Value) -> Value {
        let Value::Object(object) = resource else {
            return resource;
        };
        let mut out = Map::new();
        for (key, value) in object {
            let lower = key.to_ascii_lowercase();
            if lower == "id" || lower == "schemas" {
                out.insert(key, value);
                continue;
            }
            let is_extension = lower.starts_with("urn:");
            if let Some(value) = self.project(&lower, is_extension, value) {
                out.insert(key, value);
            }
        }
        Value::Object(out)
    }

    /// The part of one top-level attribute (or extension object) to return.
    fn project(&self, key: &str, is_extension: bool, value: Value) -> Option<Value> {
        let matches = |spec: &AttrSpec| -> bool {
            if is_extension {
                spec.0.as_deref() == Some(key) || spec.1 == key
            } else {
                spec.1 == key && spec.0.as_deref().is_none_or(|u| u.ends_with(":user"))
            }
        };
        let sub_filter = |value: Value, keep: &dyn Fn(&str) -> bool| -> Value {
            let strip = |v: Value| match v {
                Value::Object(o) => Value::Object(
                    o.into_iter()
                        .filter(|(k, _)| keep(&k.to_ascii_lowercase()))
                        .collect(),
                ),
                other => other,
            };
            match value {
                Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
                other => strip(other),
            }
        };
        let value = match &self.include {
            None => value,
            Some(include) => {
                if is_extension {
                    // Keep the extension's attributes that are asked for (by URN or by name).
                    let wanted: Vec<&str> = include
                        .iter()
                        .filter(|s| s.0.as_deref() == Some(key))
                        .map(|s| s.1.as_str())
                        .collect();
                    if include.iter().any(|s| s.1 == key) {
                        value
                    } else if wanted.is_empty() {
                        return None;
                    } else {
                        sub_filter(value, &|k| wanted.contains(&k))
                    }
                } else {
                    let specs: Vec<_> = include.iter().filter(|s| matches(s)).collect();
                    if specs.is_empty() {
                        return None;
                    }
                    if specs.iter().any(|s| s.2.is_none()) {
                        value
                    } else {
                        let subs: Vec<String> = specs.iter().filter_map(|s| s.2.clone()).collect();
                        sub_filter(value, &|k| subs.iter().any(|s| s == k))
                    }
                }
            }
        };
        let excluded: Vec<_> = self.exclude.iter().filter(|s| matches(s)).collect();
        if excluded.iter().any(|s| s.2.is_none()) {
            return None;
        }
        if is_extension {
            let drop: Vec<&str> = self
                .exclude
                .iter()
                .filter(|s| s.0.as_deref() == Some(key))
                .map(|s| s.1.as_str())
                .collect();
            if !drop.is_empty() {
                return Some(sub_filter(value, &|k| !drop.contains(&k)));
            }
        }
        let subs: Vec<String> = excluded.iter().filter_map(|s| s.2.clone()).collect();
        if subs.is_empty() {
            Some(value)
        } else {
            Some(sub_filter(value, &|k| !subs.iter().any(|s| s == k)))
        }
    }
}
