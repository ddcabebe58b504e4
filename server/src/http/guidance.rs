//! Knowledge-base routes: search and read procedures (any version), edit them
//! (versioned), procedure suggestions for a work order from its diagnosis, and the
//! reference drawings the step cards show.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath, ApiQuery};
use super::work_orders::{diagnosis_of, visible};
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::guidance::procedures::Procedure;
use crate::guidance::store::{self, EditError, Hit, StoredProcedure};
use crate::ids::WorkOrderId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/procedures", get(search))
        .route("/procedures/{id}", get(read).put(put))
        .route("/procedures/{id}/versions", get(versions))
        .route("/work-orders/{id}/procedures", get(suggest))
        .route("/knowledge/images/{*path}", get(image))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    product_line: Option<String>,
    fault_id: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct HitList {
    items: Vec<Hit>,
}

async fn search(State(state): State<AppState>, ApiQuery(q): ApiQuery<SearchQuery>) -> Result<Json<HitList>, ApiError> {
    let text = extract::opt_text("q", q.q.as_deref(), 500)?.unwrap_or_default();
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    Ok(Json(HitList { items: store::search(&state.db, &text, q.product_line.as_deref(), q.fault_id.as_deref(), limit).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    version: Option<u32>,
}

async fn read(State(state): State<AppState>, ApiPath(id): ApiPath<String>, ApiQuery(q): ApiQuery<VersionQuery>) -> Result<Json<StoredProcedure>, ApiError> {
    store::get(&state.db, &id, q.version).await?.map(Json).ok_or_else(|| ApiError::not_found("procedure"))
}

#[derive(Serialize)]
pub struct VersionList {
    items: Vec<StoredProcedure>,
}

async fn versions(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<VersionList>, ApiError> {
    let items = store::versions(&state.db, &id).await?;
    if items.is_empty() {
        return Err(ApiError::not_found("procedure"));
    }
    Ok(Json(VersionList { items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    procedure: Procedure,
    /// The version the edit started from; a newer stored version is a conflict.
    expected_version: Option<u32>,
}

async fn put(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<EditRequest>) -> Result<Json<StoredProcedure>, ApiError> {
    if req.procedure.id != id {
        return Err(ApiError::Validation(format!("the body's id `{}` differs from the path's `{id}`", req.procedure.id)));
    }
    let lines = crate::customers::repo::list_product_lines(&state.db).await?.into_iter().map(|l| l.code).collect();
    let by = p.actor().who.to_string();
    let g = &state.guidance;
    store::edit(&state.db, &g.library, &g.fault_ids, &lines, req.procedure, req.expected_version, &by).await.map(Json).map_err(|e| match e {
        EditError::Invalid(m) => ApiError::Validation(m),
        EditError::Conflict(m) => ApiError::Conflict(m),
        EditError::Store(s) => s.into(),
    })
}

/// Procedures proposed for one hypothesis of the diagnosis.
#[derive(Serialize)]
pub struct Suggestion {
    fault_id: String,
    confidence: f64,
    procedures: Vec<Hit>,
}

#[derive(Serialize)]
pub struct SuggestionList {
    work_order_id: WorkOrderId,
    product_line: Option<String>,
    /// By hypothesis, most likely first.
    items: Vec<Suggestion>,
    /// Full-text matches of the work order's title and description (when the diagnosis
    /// has nothing yet, this is what the expert starts from).
    by_description: Vec<Hit>,
}

/// The diagnosis's top hypotheses propose procedures for the asset's product line.
async fn suggest(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<SuggestionList>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let product_line = match w.asset_id {
        Some(a) => match crate::customers::repo::asset(&state.db, a).await? {
            Some(asset) => crate::customers::repo::product_line(&state.db, asset.product_line_id).await?.map(|l| l.code),
            None => None,
        },
        None => None,
    };
    let d = diagnosis_of(&state, &w).await?;
    let mut items = Vec::new();
    for h in d.hypotheses.iter().filter(|h| h.confidence >= 0.2).take(3) {
        let procs = store::for_fault(&state.db, &h.fault_id, product_line.as_deref()).await?;
        let procedures = procs
            .iter()
            .map(|s| {
                let mut hit = store::search_hit(s);
                hit.score = h.confidence as f64;
                hit
            })
            .collect();
        items.push(Suggestion { fault_id: h.fault_id.clone(), confidence: h.confidence as f64, procedures });
    }
    let text = format!("{} {}", w.title, w.description);
    let by_description = store::search(&state.db, &text, product_line.as_deref(), None, 5).await?;
    Ok(Json(SuggestionList { work_order_id: w.id, product_line, items, by_description }))
}

/// A reference drawing under `<knowledge_dir>/images/`.
async fn image(State(state): State<AppState>, ApiPath(path): ApiPath<String>) -> Result<Response, ApiError> {
    let ok = !path.is_empty()
        && path.len() <= 200
        && path.split('/').all(|seg| !seg.is_empty() && seg != ".." && seg != "." && seg.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    let ct = match path.rsplit_once('.').map(|(_, e)| e) {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        _ => "",
    };
    if !ok || ct.is_empty() {
        return Err(ApiError::not_found("image"));
    }
    let file = state.config.knowledge_dir.join("images").join(&path);
    let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found("image"))?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    // SVG can carry script: never let it run in our origin.
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"));
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(r)
}
