//! Webhook endpoint administration (admins only): register an endpoint (its signing
//! secret is in that one response and never again), list, change, delete, read its
//! delivery log, queue a test ping. Delivery itself is `crate::webhooks::worker`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath, ApiQuery, Page};
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::webhooks::repo::{self, Delivery, DeliveryStatus, Endpoint, EndpointPatch, NewEndpoint};
use crate::webhooks::signing::Secret;
use crate::webhooks::{parse_kinds, DeliveryId, EndpointId, EndpointUrl, MAX_DESCRIPTION_CHARS, MAX_ENDPOINTS};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", axum::routing::patch(update).delete(remove))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/test", post(test))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    description: Option<String>,
    /// Event kinds (`status_changed` or `work_order.status_changed`); empty or absent:
    /// every kind.
    #[serde(default)]
    event_kinds: Vec<String>,
}

/// The creation response: the endpoint and, this once, its secret.
#[derive(Serialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// `whsec_<base64>`: verify `webhook-signature` with it. Shown only here.
    secret: String,
}

fn description(raw: Option<&str>) -> Result<String, ApiError> {
    let d = raw.unwrap_or("").trim();
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::Validation(format!("description: must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    Ok(d.to_owned())
}

fn kinds(raw: &[String]) -> Result<Vec<String>, ApiError> {
    parse_kinds(raw).map_err(|e| ApiError::Validation(format!("event_kinds: {e}")))
}

async fn create(State(state): State<AppState>, p: Principal, ApiJson(req): ApiJson<NewWebhook>) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let url = EndpointUrl::parse(&req.url).map_err(|e| ApiError::Validation(format!("url: {e}")))?;
    let new = NewEndpoint { url, description: description(req.description.as_deref())?, event_kinds: kinds(&req.event_kinds)? };
    let secret = Secret::generate();
    let endpoint = repo::create(&state.db, new, &secret, p.user_id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("at most {MAX_ENDPOINTS} webhook endpoints may be registered; delete one first")))?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint registered");
    Ok((StatusCode::CREATED, Json(CreatedWebhook { endpoint, secret: secret.expose() })))
}

#[derive(Serialize)]
pub struct WebhookList {
    items: Vec<Endpoint>,
}

async fn list(State(state): State<AppState>) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList { items: repo::list(&state.db).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    description: Option<String>,
    event_kinds: Option<Vec<String>>,
    /// false pauses deliveries (queued ones wait); true resumes them, and the endpoint
    /// receives events from that moment on.
    active: Option<bool>,
}

async fn update(State(state): State<AppState>, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<WebhookPatch>) -> Result<Json<Endpoint>, ApiError> {
    let id: EndpointId = extract::id(&id, "webhook")?;
    let patch = EndpointPatch {
        description: req.description.as_deref().map(|d| description(Some(d))).transpose()?,
        event_kinds: req.event_kinds.as_deref().map(kinds).transpose()?,
        active: req.active,
    };
    let e = repo::update(&state.db, id, patch).await?.ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Ok(Json(e))
}

/// Deletes the endpoint with its secret and delivery log; pending deliveries are dropped.
async fn remove(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let id: EndpointId = extract::id(&id, "webhook")?;
    if !repo::delete(&state.db, id).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    tracing::info!(endpoint = %id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let id: EndpointId = extract::id(&id, "webhook")?;
    let status: Option<DeliveryStatus> =
        q.status.as_deref().map(|s| s.parse().map_err(|e: String| ApiError::BadRequest(format!("status: {e}")))).transpose()?;
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let before: Option<DeliveryId> = q.cursor.as_deref().map(extract::decode_cursor).transpose()?;
    if repo::get(&state.db, id).await?.is_none() {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let items = repo::deliveries(&state.db, id, status, before, limit).await?;
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|d| extract::encode_cursor(&d.id))).flatten();
    Ok(Json(Page { items, next_cursor }))
}

/// Queues a `webhook.ping` delivery, sent like any other (signed, retried, logged) and
/// whatever the endpoint's filter.
async fn test(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let id: EndpointId = extract::id(&id, "webhook")?;
    let e = repo::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    if !e.active {
        return Err(ApiError::Conflict("the endpoint is inactive; activate it first (PATCH active=true)".into()));
    }
    Ok((StatusCode::ACCEPTED, Json(repo::enqueue_ping(&state.db, id).await?)))
}
