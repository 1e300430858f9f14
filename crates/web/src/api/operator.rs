//! The operator API under `/api/v1/operator`: what operators do on the command line (SPEC
//! §11), over HTTP, for scripts and tools. Each call is authenticated with an operator token
//! ([`ActingOperator`]; admin sessions get 401), checks its input with the parsers the CLI
//! uses (`rollcall_operator::input`), calls the `Operator` operation the CLI calls, and
//! answers with the JSON the CLI's `--json` prints (`rollcall_operator::text`). Changes are
//! recorded as made by the token's name, as approvals are.
//!
//! A refusal is 400, something named that does not exist (an organisation, configuration,
//! admin, token or run) 404, a name taken 409; each says what was wrong and how to fix it.
//! Bodies are JSON objects whose unknown fields are refused.

mod schemas;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use rollcall_domain::config::DeactivationThreshold;
use rollcall_domain::field::FieldKey;
use rollcall_domain::setup::SftpUser;
use rollcall_operator::{
    AdminChange, ConfigChange, NewAdministrator, NewConfiguration, Operator, OperatorError,
    OrgChange, RUNS_LISTED, RunsFilter, USERS_LISTED, input, text,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

pub use schemas::*;

use super::{ActingOperator, ApiError, ApiResult, ErrorBody, declared_json};
use crate::AppState;

const ORGS: &str = "/api/v1/operator/organisations";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ORGS, get(list_orgs).post(create_org))
        .route(
            "/api/v1/operator/organisations/{org}",
            get(show_org).patch(update_org),
        )
        .route(
            "/api/v1/operator/organisations/{org}/configurations",
            get(list_configs).post(create_config),
        )
        .route(
            "/api/v1/operator/organisations/{org}/configurations/{name}",
            get(show_config).patch(update_config).delete(delete_config),
        )
        .route(
            "/api/v1/operator/organisations/{org}/admins",
            get(list_admins).post(create_admin),
        )
        .route(
            "/api/v1/operator/organisations/{org}/admins/{email}",
            patch(update_admin),
        )
        .route(
            "/api/v1/operator/organisations/{org}/admins/{email}/disable",
            post(disable_admin),
        )
        .route(
            "/api/v1/operator/organisations/{org}/admins/{email}/enable",
            post(enable_admin),
        )
        .route(
            "/api/v1/operator/organisations/{org}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/api/v1/operator/organisations/{org}/tokens/{id}",
            axum::routing::delete(revoke_token),
        )
        .route(
            "/api/v1/operator/organisations/{org}/configurations/{name}/disable",
            post(disable_config),
        )
        .route(
            "/api/v1/operator/organisations/{org}/configurations/{name}/enable",
            post(enable_config),
        )
        .route(
            "/api/v1/operator/organisations/{org}/users",
            get(list_users).post(create_user),
        )
        .route("/api/v1/operator/organisations/{org}/runs", get(list_runs))
        .route("/api/v1/operator/runs/{id}", get(show_run))
}

impl From<OperatorError> for ApiError {
    fn from(e: OperatorError) -> ApiError {
        match e {
            OperatorError::Refused(why) => ApiError::BadRequest(why),
            OperatorError::NotFound(why) => ApiError::NoSuch(why),
            OperatorError::Conflict(why) => ApiError::Conflict(why),
            other => {
                tracing::error!(error = %other, "an operator call failed");
                ApiError::Internal
            }
        }
    }
}

/// The operations, as done by the operator whose token came with the request.
struct Acting(Operator);

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Acting> {
        let who = ActingOperator::from_request_parts(parts, state).await?;
        Ok(Acting(Operator::new(state.engine.clone(), who.name)))
    }
}

/// The path's parameters, percent-decoded.
struct Segments<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Segments<T>> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Segments(t))
            .map_err(|e| ApiError::BadRequest(format!("the path: {}", e.body_text())))
    }
}

/// The query string, refused with what was wrong (unknown parameters included).
struct Params<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Params<T>> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Params(t))
            .map_err(|e| bad(format!("the query: {}", e.body_text())))
    }
}

/// A list's `limit`: `most` when left out, refused outside 1 to `most`.
fn limit(given: Option<u32>, most: u32) -> ApiResult<u32> {
    let limit = given.unwrap_or(most);
    if (1..=most).contains(&limit) {
        Ok(limit)
    } else {
        Err(bad(format!("limit must be between 1 and {most}")))
    }
}

/// A JSON body, read whole; an empty body reads as `{}`. The body types refuse unknown
/// fields, and serde's message names the field and the ones expected.
struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> ApiResult<Body<T>> {
        let json = declared_json(request.headers());
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            ApiError::BadRequest(format!("cannot read the body: {}", e.body_text()))
        })?;
        let bytes: &[u8] = if bytes.trim_ascii().is_empty() {
            b"{}"
        } else if json {
            &bytes
        } else {
            return Err(ApiError::UnsupportedMediaType);
        };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not what this call takes: {e}")))
    }
}

/// A `null` that means "empty this setting", told apart from a field left out (`None`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn bad(why: String) -> ApiError {
    ApiError::BadRequest(why)
}

/// 201 with the new thing and, when it can be read back, where (`Location`).
fn created(location: Option<String>, body: Value) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

// ---- organisations ----

/// The organisations, by name (`rollcall org list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations", tag = "operator", security(("operator" = [])),
    responses((status = 200, body = [OperatorOrganisation]), (status = 401, body = ErrorBody)))]
async fn list_orgs(Acting(op): Acting) -> ApiResult<Json<Value>> {
    let orgs = op.orgs().await?;
    Ok(Json(orgs.iter().map(text::org_json).collect()))
}

/// An organisation to create (`rollcall org create`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// 1 to 200 printable characters, unique.
    pub name: String,
    /// Whether its admins with sync access see User Provisioning (default false).
    #[serde(default)]
    pub provisioning: bool,
}

/// Create an organisation (`rollcall org create`).
#[utoipa::path(post, path = "/api/v1/operator/organisations", tag = "operator", security(("operator" = [])),
    request_body = NewOrganisation,
    responses((status = 201, body = OperatorOrganisation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken")))]
async fn create_org(Acting(op): Acting, Body(body): Body<NewOrganisation>) -> ApiResult<Response> {
    let name = input::org_name(&body.name).map_err(bad)?;
    let org = op.create_org(&name, body.provisioning).await?;
    Ok(created(
        Some(format!("{ORGS}/{}", org.id)),
        text::org_json(&org),
    ))
}

/// An organisation with its configurations, admins and the operators' changes, newest first
/// (`rollcall org show --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    responses((status = 200, body = OperatorOrganisationDetails), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_org(Acting(op): Acting, Segments(org): Segments<String>) -> ApiResult<Json<Value>> {
    Ok(Json(text::org_details_json(&op.org_details(&org).await?)))
}

/// What changes in an organisation (`rollcall org update`); what is left out stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationChange {
    /// A new name.
    pub name: Option<String>,
    /// Show User Provisioning to its admins with sync access (from their next request), or not.
    pub provisioning: Option<bool>,
}

/// Rename an organisation or switch provisioning on or off (`rollcall org update`).
#[utoipa::path(patch, path = "/api/v1/operator/organisations/{org}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    request_body = OrganisationChange,
    responses((status = 200, body = OperatorOrganisation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The name is taken")))]
async fn update_org(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Body(body): Body<OrganisationChange>,
) -> ApiResult<Json<Value>> {
    let change = OrgChange {
        name: body
            .name
            .as_deref()
            .map(input::org_name)
            .transpose()
            .map_err(bad)?,
        provisioning: body.provisioning,
    };
    Ok(Json(text::org_json(&op.update_org(&org, change).await?)))
}

// ---- configurations ----

/// The organisation's configurations (`rollcall config list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/configurations", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    responses((status = 200, body = [OperatorConfiguration]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_configs(
    Acting(op): Acting,
    Segments(org): Segments<String>,
) -> ApiResult<Json<Value>> {
    let configs = op.configs(&org).await?;
    Ok(Json(configs.iter().map(text::config_json).collect()))
}

/// A configuration to create (`rollcall config create`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConfigurationBody {
    /// 1 to 100 printable characters, unique in the organisation.
    pub name: String,
    /// `sftp`, `scim`, `workday` or `google-workspace`.
    pub kind: String,
    /// `active` or `dry-run`; left out, a `scim` configuration is active and the others start
    /// in dry run.
    pub mode: Option<String>,
    /// The mapping file (TOML, SPEC §11), as text; needed by every kind but `scim`.
    pub mapping: Option<String>,
    /// The most deactivations a run may make: a count (`"50"`) or a percentage (`"10%"`).
    pub deactivation_threshold: Option<String>,
    /// Who hears of runs that need attention.
    pub notify: Option<String>,
    /// The region of national phone numbers: a two-letter country code such as `GB`.
    pub phone_region: Option<String>,
    /// `sftp` only: the SFTP login (letters, digits, `.`, `_`, `-`).
    pub sftp_user: Option<String>,
    /// `sftp` only, with `sftp_user`: the login's password, at least 12 characters.
    pub sftp_password: Option<String>,
    /// `sftp` only, with `sftp_user`: OpenSSH public keys (`ssh-ed25519 AAAA… comment`).
    #[serde(default)]
    pub sftp_keys: Vec<String>,
}

/// Check each public key; a refusal names the key by its place.
fn public_keys(keys: &[String]) -> ApiResult<Vec<rollcall_domain::setup::SshPublicKey>> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| input::public_key(&format!("sftp_keys[{i}]"), key).map_err(bad))
        .collect()
}

/// Create a configuration (`rollcall config create`).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/configurations", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    request_body = NewConfigurationBody,
    responses((status = 201, body = OperatorConfiguration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The name is taken")))]
async fn create_config(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Body(body): Body<NewConfigurationBody>,
) -> ApiResult<Response> {
    let new = NewConfiguration {
        name: input::config_name(&body.name).map_err(bad)?,
        kind: input::kind("kind", &body.kind).map_err(bad)?,
        mode: body
            .mode
            .as_deref()
            .map(|m| input::mode("mode", m))
            .transpose()
            .map_err(bad)?,
        mapping: body
            .mapping
            .as_deref()
            .map(|m| input::mapping("mapping", m))
            .transpose()
            .map_err(bad)?,
        deactivation_threshold: body
            .deactivation_threshold
            .as_deref()
            .map(DeactivationThreshold::parse)
            .transpose()
            .map_err(bad)?,
        notify: body
            .notify
            .as_deref()
            .map(|e| input::email("notify", e))
            .transpose()
            .map_err(bad)?,
        phone_region: body
            .phone_region
            .as_deref()
            .map(|r| input::phone_region("phone_region", r))
            .transpose()
            .map_err(bad)?,
        sftp_user: body
            .sftp_user
            .as_deref()
            .map(SftpUser::parse)
            .transpose()
            .map_err(bad)?,
        sftp_password: body
            .sftp_password
            .map(|p| input::new_password("SFTP password", p))
            .transpose()
            .map_err(bad)?,
        sftp_keys: public_keys(&body.sftp_keys)?,
    };
    let config = op.create_config(&org, new).await?;
    Ok(created(
        Some(format!(
            "{ORGS}/{}/configurations/{}",
            config.org_id, config.id
        )),
        text::config_json(&config),
    ))
}

/// A configuration with its mapping as a TOML file (`rollcall config show --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/configurations/{name}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"),
        ("name" = String, Path, description = "The configuration's name or id")),
    responses((status = 200, body = OperatorConfiguration), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_config(
    Acting(op): Acting,
    Segments((org, name)): Segments<(String, String)>,
) -> ApiResult<Json<Value>> {
    let config = op.config(&op.org(&org).await?, &name).await?;
    Ok(Json(text::config_json(&config)))
}

/// What changes in a configuration (`rollcall config update`); what is left out stays, and
/// `null` empties a setting that may be empty.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigurationChange {
    /// A new name.
    pub rename: Option<String>,
    /// `active` or `dry-run`.
    pub mode: Option<String>,
    /// A new mapping file (TOML), as text: the next run reads with it.
    pub mapping: Option<String>,
    /// A count (`"50"`) or a percentage (`"10%"`); `null` removes the threshold.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub deactivation_threshold: Option<Option<String>>,
    /// An email address; `null` stops the notifications.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notify: Option<Option<String>>,
    /// A two-letter country code; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone_region: Option<Option<String>>,
    /// `sftp` only: the SFTP login.
    pub sftp_user: Option<String>,
    /// `sftp` only: a new password (at least 12 characters); `null` removes it (keys only).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub sftp_password: Option<Option<String>>,
    /// `sftp` only: the OpenSSH public keys, replacing those it has (`[]` removes them all).
    pub sftp_keys: Option<Vec<String>>,
}

/// Change a configuration (`rollcall config update`): the next run reads what it is then.
#[utoipa::path(patch, path = "/api/v1/operator/organisations/{org}/configurations/{name}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"),
        ("name" = String, Path, description = "The configuration's name or id")),
    request_body = ConfigurationChange,
    responses((status = 200, body = OperatorConfiguration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The new name or SFTP login is taken")))]
async fn update_config(
    Acting(op): Acting,
    Segments((org, name)): Segments<(String, String)>,
    Body(body): Body<ConfigurationChange>,
) -> ApiResult<Json<Value>> {
    let change = ConfigChange {
        rename: body
            .rename
            .as_deref()
            .map(input::config_name)
            .transpose()
            .map_err(bad)?,
        mode: body
            .mode
            .as_deref()
            .map(|m| input::mode("mode", m))
            .transpose()
            .map_err(bad)?,
        mapping: body
            .mapping
            .as_deref()
            .map(|m| input::mapping("mapping", m))
            .transpose()
            .map_err(bad)?,
        deactivation_threshold: emptied(body.deactivation_threshold, |t| {
            DeactivationThreshold::parse(t)
        })?,
        notify: emptied(body.notify, |e| input::email("notify", e))?,
        phone_region: emptied(body.phone_region, |r| {
            input::phone_region("phone_region", r)
        })?,
        sftp_user: body
            .sftp_user
            .as_deref()
            .map(SftpUser::parse)
            .transpose()
            .map_err(bad)?,
        sftp_password: body
            .sftp_password
            .map(|p| {
                p.map(|p| input::new_password("SFTP password", p))
                    .transpose()
            })
            .transpose()
            .map_err(bad)?,
        sftp_keys: body.sftp_keys.as_deref().map(public_keys).transpose()?,
    };
    let config = op.update_config(&org, &name, change).await?;
    Ok(Json(text::config_json(&config)))
}

/// Disable a configuration (`rollcall config disable`): no run starts from it (files, SFTP
/// sign-in, SCIM requests with its tokens and approvals are refused) and its queued runs are
/// cancelled.
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/configurations/{name}/disable", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"),
        ("name" = String, Path, description = "The configuration's name or id")),
    responses((status = 200, body = OperatorConfiguration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_config(
    State(state): State<AppState>,
    Acting(op): Acting,
    Segments((org, name)): Segments<(String, String)>,
) -> ApiResult<Json<Value>> {
    let config = op.set_config_disabled(&org, &name, true).await?;
    // This node's remembered SCIM callers are read again, so its tokens stop at once here.
    state.tokens.forget_org(&config.org_id);
    Ok(Json(text::config_json(&config)))
}

/// Enable a disabled configuration again (`rollcall config enable`).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/configurations/{name}/enable", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"),
        ("name" = String, Path, description = "The configuration's name or id")),
    responses((status = 200, body = OperatorConfiguration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_config(
    Acting(op): Acting,
    Segments((org, name)): Segments<(String, String)>,
) -> ApiResult<Json<Value>> {
    let config = op.set_config_disabled(&org, &name, false).await?;
    Ok(Json(text::config_json(&config)))
}

/// How a configuration is deleted.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteConfigQuery {
    /// `true`: make the users it manages unmanaged (they stay, and only admins change them);
    /// otherwise a configuration that manages users is refused (409).
    pub release_users: Option<bool>,
}

/// Delete a configuration (`rollcall config delete`): its tokens are revoked, its SFTP login
/// removed, its queued runs cancelled and its name freed; its runs and logs stay.
#[utoipa::path(delete, path = "/api/v1/operator/organisations/{org}/configurations/{name}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"),
        ("name" = String, Path, description = "The configuration's name or id"), DeleteConfigQuery),
    responses((status = 200, body = DeletedConfiguration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "It manages users and release_users is not true, or a run of it is in progress")))]
async fn delete_config(
    State(state): State<AppState>,
    Acting(op): Acting,
    Segments((org, name)): Segments<(String, String)>,
    Params(query): Params<DeleteConfigQuery>,
) -> ApiResult<Json<Value>> {
    let org_id = op.org(&org).await?.org_id().clone();
    let released = op
        .delete_config(&org, &name, query.release_users == Some(true))
        .await?;
    state.tokens.forget_org(&org_id);
    Ok(Json(json!({ "users_released": released })))
}

/// A setting that may be emptied: left out (`None`), `null` (`Some(None)`) or a value.
fn emptied<T>(
    given: Option<Option<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> ApiResult<Option<Option<T>>> {
    match given {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(value)) => parse(&value).map(|v| Some(Some(v))).map_err(bad),
    }
}

// ---- admins ----

/// The organisation's admins, by email (`rollcall admin list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/admins", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    responses((status = 200, body = [OperatorAdmin]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_admins(
    Acting(op): Acting,
    Segments(org): Segments<String>,
) -> ApiResult<Json<Value>> {
    let admins = op.admins(&org).await?;
    Ok(Json(admins.iter().map(text::admin_json).collect()))
}

/// An admin to create (`rollcall admin create`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdminBody {
    /// Their email, which they sign in with.
    pub email: String,
    /// `organisation_admin`, `people_admin`, `support_admin`, `group_admin`,
    /// `content_creator`, `content_moderator` or `basic_user`.
    pub role: String,
    /// Whether they may see User Provisioning (default false).
    #[serde(default)]
    pub sync_access: bool,
    /// Their password, at least 12 characters (only its argon2 hash is kept).
    pub password: String,
}

/// Create an admin (`rollcall admin create`).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/admins", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    request_body = NewAdminBody,
    responses((status = 201, body = OperatorAdmin), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The email is taken")))]
async fn create_admin(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Body(body): Body<NewAdminBody>,
) -> ApiResult<Response> {
    let admin = NewAdministrator {
        email: input::email("email", &body.email).map_err(bad)?,
        role: input::role(&body.role).map_err(bad)?,
        sync_access: body.sync_access,
        password: input::new_password("password", body.password).map_err(bad)?,
    };
    let made = op.create_admin(&org, admin).await?;
    // The admin as listed (with when they were made), read back as `admin list` reads it.
    let listed = op
        .admins(&org)
        .await?
        .into_iter()
        .find(|a| a.admin.id == made.id)
        .ok_or_else(|| {
            tracing::error!(admin = %made.id, "a new admin is not listed");
            ApiError::Internal
        })?;
    Ok(created(None, text::admin_json(&listed)))
}

/// What changes in an admin (`rollcall admin update`); what is left out stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminChangeBody {
    /// A role (as when creating an admin).
    pub role: Option<String>,
    /// Whether they may see User Provisioning.
    pub sync_access: Option<bool>,
    /// A new password, at least 12 characters: their sessions end.
    pub password: Option<String>,
}

/// Change an admin's role, sync access or password (`rollcall admin update`).
#[utoipa::path(patch, path = "/api/v1/operator/organisations/{org}/admins/{email}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), ("email" = String, Path, description = "The admin's email")),
    request_body = AdminChangeBody,
    responses((status = 200, body = OperatorAdmin), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_admin(
    Acting(op): Acting,
    Segments((org, email)): Segments<(String, String)>,
    Body(body): Body<AdminChangeBody>,
) -> ApiResult<Json<Value>> {
    let email = input::email("email", &email).map_err(bad)?;
    let change = AdminChange {
        role: body
            .role
            .as_deref()
            .map(input::role)
            .transpose()
            .map_err(bad)?,
        sync_access: body.sync_access,
        password: body
            .password
            .map(|p| input::new_password("password", p))
            .transpose()
            .map_err(bad)?,
    };
    Ok(Json(text::admin_json(
        &op.update_admin(&org, &email, change).await?,
    )))
}

/// Disable an admin: they cannot sign in, and their sessions end at once (`rollcall admin
/// disable`).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/admins/{email}/disable", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), ("email" = String, Path, description = "The admin's email")),
    responses((status = 200, body = OperatorAdmin), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_admin(
    Acting(op): Acting,
    Segments((org, email)): Segments<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_disabled(op, &org, &email, true).await
}

/// Let a disabled admin sign in again (`rollcall admin enable`).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/admins/{email}/enable", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), ("email" = String, Path, description = "The admin's email")),
    responses((status = 200, body = OperatorAdmin), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_admin(
    Acting(op): Acting,
    Segments((org, email)): Segments<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_disabled(op, &org, &email, false).await
}

async fn set_disabled(
    op: Operator,
    org: &str,
    email: &str,
    disabled: bool,
) -> ApiResult<Json<Value>> {
    let email = input::email("email", email).map_err(bad)?;
    let admin = op.set_admin_disabled(org, &email, disabled).await?;
    Ok(Json(text::admin_json(&admin)))
}

// ---- SCIM tokens ----

/// The organisation's SCIM tokens, newest first; never the tokens themselves (`rollcall token
/// list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/tokens", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    responses((status = 200, body = [OperatorToken]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_tokens(
    Acting(op): Acting,
    Segments(org): Segments<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(text::tokens_json(&op.tokens(&org).await?)))
}

/// A SCIM token to issue (`rollcall token create`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// A `scim` configuration's name or id; left out, the organisation's first `scim`
    /// configuration (made, as `SCIM`, when it has none).
    pub configuration: Option<String>,
}

/// Issue a SCIM bearer token (`rollcall token create`). The token is shown once: only its
/// SHA-256 is kept. The body may be left out.
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/tokens", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    request_body(content = NewTokenBody, description = "Optional"),
    responses((status = 201, body = IssuedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_token(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Body(body): Body<NewTokenBody>,
) -> ApiResult<Response> {
    let token = op
        .create_scim_token(&org, body.configuration.as_deref())
        .await?;
    Ok(created(None, json!({ "token": token })))
}

/// Revoke a SCIM token by its id (`rollcall token revoke --org ORG --id ID`). The serving
/// node refuses it from the next request; other nodes within the 10 s they remember a
/// verified token.
#[utoipa::path(delete, path = "/api/v1/operator/organisations/{org}/tokens/{id}", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), ("id" = String, Path, description = "The token's id, from the list")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No live token of the organisation has this id")))]
async fn revoke_token(
    State(state): State<AppState>,
    Acting(op): Acting,
    Segments((org, id)): Segments<(String, String)>,
) -> ApiResult<StatusCode> {
    let org_id = op.org(&org).await?.org_id().clone();
    op.revoke_token_by_id(&org, &id).await?;
    state.tokens.forget_org(&org_id);
    Ok(StatusCode::NO_CONTENT)
}

// ---- users ----

/// A user no source manages, as the application's own sign-up would make it (`rollcall user
/// create`). Each value is read as a sync file's cell is; the username is required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub external_id: Option<String>,
    pub employee_id: Option<String>,
    pub first_name: Option<String>,
    pub second_name: Option<String>,
    pub middle_name: Option<String>,
    /// Shown as "First Second" when left out.
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// International form (`+447700900123`).
    pub phone_mobile: Option<String>,
    pub phone_work: Option<String>,
    /// The manager's external ID.
    pub manager: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    pub description: Option<String>,
    /// `true` (the default) or `false`.
    pub active: Option<String>,
    /// `YYYY-MM-DD`.
    pub start_employment_date: Option<String>,
    pub end_employment_date: Option<String>,
}

impl NewUserBody {
    fn cells(self) -> Vec<(FieldKey, String)> {
        let given = [
            (FieldKey::Username, Some(self.username)),
            (FieldKey::ExternalId, self.external_id),
            (FieldKey::EmployeeId, self.employee_id),
            (FieldKey::FirstName, self.first_name),
            (FieldKey::SecondName, self.second_name),
            (FieldKey::MiddleName, self.middle_name),
            (FieldKey::DisplayName, self.display_name),
            (FieldKey::Email, self.email),
            (FieldKey::PhoneMobile, self.phone_mobile),
            (FieldKey::PhoneWork, self.phone_work),
            (FieldKey::Manager, self.manager),
            (FieldKey::JobTitle, self.job_title),
            (FieldKey::Location, self.location),
            (FieldKey::Department, self.department),
            (FieldKey::Company, self.company),
            (FieldKey::Description, self.description),
            (FieldKey::Active, self.active),
            (FieldKey::StartEmploymentDate, self.start_employment_date),
            (FieldKey::EndEmploymentDate, self.end_employment_date),
        ];
        given
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect()
    }
}

/// Create a user no source manages (`rollcall user create --json`); a value another user
/// holds is refused (409 is not used: the plan's refusal is 400 with the value named).
#[utoipa::path(post, path = "/api/v1/operator/organisations/{org}/users", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name")),
    request_body = NewUserBody,
    responses((status = 201, body = OperatorUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_user(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Body(body): Body<NewUserBody>,
) -> ApiResult<Response> {
    let user = op.create_user(&org, &body.cells()).await?;
    Ok(created(None, text::user_json(&user, None)))
}

/// The filters of the users list (`rollcall user list`).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// `true`: only the users no source manages.
    pub unmanaged: Option<bool>,
    /// Only users whose username, email or name contains this text.
    pub search: Option<String>,
    /// At most this many users, by username: 1 to 1000 (default 1000).
    pub limit: Option<u32>,
}

/// The organisation's users by username, with the configuration that manages each (`rollcall
/// user list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/users", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), UsersQuery),
    responses((status = 200, body = [OperatorUser]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_users(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Params(query): Params<UsersQuery>,
) -> ApiResult<Json<Value>> {
    let limit = limit(query.limit, USERS_LISTED)?;
    let users = op
        .users(
            &org,
            query.search.as_deref().unwrap_or(""),
            query.unmanaged == Some(true),
            limit,
        )
        .await?;
    Ok(Json(
        users
            .iter()
            .map(|(u, by)| text::user_json(u, by.as_deref()))
            .collect(),
    ))
}

// ---- runs ----

/// The filters of the runs list (`rollcall runs list`).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OperatorRunsQuery {
    /// Comma-separated statuses: `queued`, `in_progress`, `success`, `needs_attention`,
    /// `data_load_failed`, `above_deactivation_threshold`, `cancelled`.
    pub status: Option<String>,
    /// A configuration's name or id.
    pub config: Option<String>,
    /// A date (`2024-01-15`, UTC) or an RFC 3339 date-time: runs from then on.
    pub since: Option<String>,
    /// `true`: the Bulk Update runs instead (without `status`, `config` or `since`).
    pub bulk_update: Option<bool>,
    /// At most this many runs, newest first: 1 to 1000 (default 1000).
    pub limit: Option<u32>,
}

/// The organisation's runs as the User Provisioning page lists them, newest first and without
/// Bulk Update runs unless asked for (`rollcall runs list --json`).
#[utoipa::path(get, path = "/api/v1/operator/organisations/{org}/runs", tag = "operator", security(("operator" = [])),
    params(("org" = String, Path, description = "The organisation's id or name"), OperatorRunsQuery),
    responses((status = 200, body = [OperatorRun]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_runs(
    Acting(op): Acting,
    Segments(org): Segments<String>,
    Params(query): Params<OperatorRunsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = limit(query.limit, RUNS_LISTED)?;
    let runs = if query.bulk_update == Some(true) {
        if query.status.is_some() || query.config.is_some() || query.since.is_some() {
            return Err(bad(
                "bulk_update lists every Bulk Update run: leave out status, config and since"
                    .into(),
            ));
        }
        op.bulk_update_runs(&org, limit).await?
    } else {
        let filter = RunsFilter {
            status: query.status.as_deref(),
            config: query.config.as_deref(),
            since: query.since.as_deref(),
        };
        op.runs(&org, &filter, limit).await?
    };
    let runs = op.with_errors(runs).await?;
    Ok(Json(
        runs.iter().map(|(r, e)| text::run_json(r, e)).collect(),
    ))
}

/// A run, with the mapping it read with as a TOML file (`rollcall runs show --json`).
#[utoipa::path(get, path = "/api/v1/operator/runs/{id}", tag = "operator", security(("operator" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses((status = 200, body = OperatorRunDetails), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_run(Acting(op): Acting, Segments(id): Segments<String>) -> ApiResult<Json<Value>> {
    let (run, mapping) = op.run_details(&id).await?;
    let errors = op.load_errors(&run).await?;
    Ok(Json(text::run_details_json(
        &run,
        mapping.as_ref(),
        &errors,
    )))
}
