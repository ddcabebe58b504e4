//! Satisfaction surveys (public, by link token) and the staff's follow-up tasks.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath};
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::ids::WorkOrderId;
use crate::work_orders::model::Status;
use crate::work_orders::repo;
use crate::work_orders::surveys::{self, Answer, Survey, SurveyError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/surveys/{token}", get(show).post(submit))
        .route("/follow-ups", get(list_follow_ups))
        .route("/follow-ups/{id}/done", post(done))
}

fn survey_error(e: SurveyError) -> ApiError {
    match e {
        SurveyError::BadToken => ApiError::NotFound(e.to_string()),
        SurveyError::Expired => ApiError::Gone(e.to_string()),
        SurveyError::Answered => ApiError::Conflict(e.to_string()),
        SurveyError::Invalid(m) => ApiError::Validation(m),
        SurveyError::NotFound => ApiError::not_found("follow-up"),
        SurveyError::Append(a) => super::work_orders::append_error(a),
        SurveyError::Store(s) => s.into(),
    }
}

/// What the customer's survey page shows.
#[derive(Serialize)]
pub struct SurveyView {
    work_order_id: WorkOrderId,
    title: String,
    status: Status,
    answered: bool,
    rating: Option<i64>,
    expires_at: String,
}

async fn show(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> Result<Json<SurveyView>, ApiError> {
    let s = surveys::by_token(&state.db, &state.key, &token).await.map_err(survey_error)?;
    let w = repo::get(&state.db, s.work_order_id).await?.ok_or_else(|| ApiError::not_found("work order"))?;
    Ok(Json(SurveyView {
        work_order_id: w.id,
        title: w.title,
        status: w.status,
        answered: s.answered_at.is_some(),
        rating: s.rating,
        expires_at: crate::rfc3339(s.expires_at),
    }))
}

#[derive(Serialize)]
pub struct SurveyResult {
    /// True when the complaint reopened the work order.
    reopened: bool,
}

async fn submit(State(state): State<AppState>, ApiPath(token): ApiPath<String>, ApiJson(a): ApiJson<Answer>) -> Result<Json<SurveyResult>, ApiError> {
    let s = surveys::by_token(&state.db, &state.key, &token).await.map_err(survey_error)?;
    let reopened = surveys::answer(&state.db, &state.config.sla, &s, a).await.map_err(survey_error)?;
    Ok(Json(SurveyResult { reopened }))
}

#[derive(Serialize)]
pub struct FollowUpList {
    items: Vec<Survey>,
}

async fn list_follow_ups(State(state): State<AppState>) -> Result<Json<FollowUpList>, ApiError> {
    Ok(Json(FollowUpList { items: surveys::follow_ups(&state.db, crate::now_millis()).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneRequest {
    note: String,
}

async fn done(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<DoneRequest>) -> Result<Json<Survey>, ApiError> {
    let note = extract::text("note", &req.note, 2000)?;
    let id: uuid::Uuid = extract::id(&id, "follow-up")?;
    Ok(Json(surveys::follow_up_done(&state.db, &state.config.sla, &id.to_string(), note, &p.actor()).await.map_err(survey_error)?))
}
