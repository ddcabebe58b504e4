//! The HTTP API: a `router()` per resource merged here, the route table that declares
//! every route's roles, the authorization and metrics middleware, and the extractors
//! that turn bad input into problem+json instead of a plain-text rejection.

pub mod auth;
pub mod customers;
pub mod dispatch;
pub mod extract;
pub mod guidance;
pub mod health;
pub mod kpis;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod surveys;
pub mod telemetry;
pub mod users;
pub mod web;
pub mod webhooks;
pub mod work_orders;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serializer;

use crate::auth::rate_limit::LoginLimiter;
use crate::auth::tokens::{Claims, TokenKey};
use crate::auth::Principal;
use crate::config::Config;
use crate::error::ApiError;
use crate::store::Db;
use crate::work_orders::evidence::BlobStore;
use routes::Access;

/// Shared, read-mostly state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub key: TokenKey,
    pub blobs: BlobStore,
    pub metrics: Arc<metrics::Metrics>,
    pub login_limiter: Arc<LoginLimiter>,
    pub diagnosis: Arc<crate::diagnosis::registry::Registry>,
    pub alerts: Arc<crate::diagnosis::alerts::AlertMonitor>,
    pub signal: Arc<crate::signal::SignalState>,
    pub guidance: Arc<crate::guidance::Guidance>,
}

/// Serializes Unix milliseconds as an RFC 3339 string.
pub fn ser_time<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::rfc3339(*ms))
}

/// Serializes optional Unix milliseconds as an RFC 3339 string or null.
pub fn ser_time_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&crate::rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let json_limit = state.config.limits.max_json_body_bytes;
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(customers::router())
        .merge(dispatch::router())
        .merge(surveys::router())
        .merge(kpis::router())
        .merge(guidance::router())
        .merge(telemetry::router())
        .merge(webhooks::router())
        .merge(crate::signal::router())
        .merge(work_orders::router(state.config.limits.max_evidence_bytes))
        .merge(openapi::router())
        .layer(DefaultBodyLimit::max(json_limit));
    Router::new()
        .merge(health::router())
        .merge(web::router())
        .nest("/api/v1", api)
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    state.metrics.record(req.method().as_str(), "unmatched", 404, Duration::ZERO);
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.uri().path())).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.uri().path())).into_response()
}

/// Counts and times every matched request, and bounds how long it may run.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let method = req.method().clone();
    let started = Instant::now();
    let timeout = Duration::from_secs(state.config.limits.request_timeout_secs);
    let resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Unavailable(format!("the request took longer than {}s", timeout.as_secs())).into_response(),
    };
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record(method.as_str(), &route, status, elapsed);
    tracing::info!(target: "fixline::http", %method, route, status, micros = elapsed.as_micros() as u64, "request");
    resp
}

/// Looks up the matched route in the route table and enforces its roles.
async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let Some(spec) = routes::find(req.method(), &route) else {
        return ApiError::Internal(format!("route {} {route} is not declared in the route table", req.method()))
            .into_response();
    };
    if let Access::Roles(allowed) = spec.access {
        let header = req.headers().get(axum::http::header::AUTHORIZATION).cloned();
        let principal = match authenticate(&state, header).await {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        };
        if !allowed.contains(&principal.role) {
            return ApiError::Forbidden(format!("the {} role may not {}", principal.role, spec.summary.to_lowercase()))
                .into_response();
        }
        req.extensions_mut().insert(principal);
    }
    next.run(req).await
}

/// Turns `Authorization: Bearer <token>` into a principal whose session is still live.
async fn authenticate(state: &AppState, header: Option<axum::http::HeaderValue>) -> Result<Principal, ApiError> {
    let header = header.ok_or_else(|| ApiError::Unauthorized("send an access token as `Authorization: Bearer <token>`".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
    let now = crate::now_millis();
    let claims = state
        .key
        .verify(token.trim(), now / 1000)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let Claims::Access { sid, uid, iid, role, cid, wo, .. } = claims else {
        return Err(ApiError::Unauthorized("an invite token is not an access token; redeem it first".into()));
    };
    if !crate::auth::repo::session_is_live(&state.db, sid, now).await? {
        return Err(ApiError::Unauthorized("the session has ended; log in again".into()));
    }
    Ok(Principal { user_id: uid, invite_id: iid, role, session_id: sid, customer_id: cid, work_order_scope: wo })
}

/// Which HTTP methods the route table uses.
pub fn method_of(s: &str) -> Method {
    Method::from_bytes(s.as_bytes()).expect("route table methods are valid")
}
