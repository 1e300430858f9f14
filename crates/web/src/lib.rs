//! The HTTP side of rollcall. Each surface (operations now; SCIM, `/api/v1` and the admin
//! pages as they land) has its own module and its own error type.

pub mod api;
mod ops;
mod pages;
pub mod scim;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use rollcall_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach. axum clones the state for every request, so it is one
/// reference count rather than a copy of each service's handles and settings.
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

pub struct AppServices {
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub scim: scim::ScimSettings,
    pub tokens: scim::TokenCache,
    pub admin: api::AdminSettings,
    /// Where runs start (approvals, Bulk Update).
    pub engine: rollcall_sync::Engine,
}

impl AppState {
    pub fn new(services: AppServices) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;

    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The service `serve` runs: the router, behind the SCIM path normalisation that must happen
/// before routing.
pub type App = tower::util::MapRequest<Router, fn(Request) -> Request>;

/// The whole HTTP application, ready to serve.
pub fn app(state: AppState) -> App {
    tower::ServiceExt::map_request(
        router(state),
        scim::normalise_path as fn(Request) -> Request,
    )
}

/// The routes (tests and [`app`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(pages::routes().layer(axum::extract::DefaultBodyLimit::max(64 << 10)))
        .merge(api::routes().layer(axum::extract::DefaultBodyLimit::max(1 << 20)))
        .merge(scim::routes().layer(axum::extract::DefaultBodyLimit::max(1 << 20)))
        .with_state(state)
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Count requests and time them, labelled by route (never by raw path, which would let
/// callers create unbounded label values).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("rollcall_http_requests_total", &labels).increment(1);
    metrics::histogram!("rollcall_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
