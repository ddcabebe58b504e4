//! User administration (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::extract::{self, ApiJson, ApiPath, ApiQuery, Page};
use super::AppState;
use crate::auth::repo::{self, NewUser as NewUserRow, User};
use crate::auth::{password, Role};
use crate::error::ApiError;
use crate::ids::{CustomerId, UserId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(get_one))
        .route("/users/{id}/password", post(reset_password))
        .route("/users/{id}/skills", get(get_skills).put(put_skills))
}

/// The product lines an expert takes calls for (empty: every line).
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Skills {
    product_lines: Vec<String>,
}

async fn expert(state: &AppState, id: &str) -> Result<UserId, ApiError> {
    let uid: UserId = extract::id(id, "user")?;
    match repo::user_by_id(&state.db, uid).await? {
        Some(u) if u.role == Role::Expert => Ok(uid),
        Some(_) => Err(ApiError::Validation("skills are for users with the expert role".into())),
        None => Err(ApiError::not_found("user")),
    }
}

async fn get_skills(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<Skills>, ApiError> {
    let uid = expert(&state, &id).await?;
    Ok(Json(Skills { product_lines: crate::auth::skills::of(&state.db, uid).await?.unwrap_or_default() }))
}

async fn put_skills(State(state): State<AppState>, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<Skills>) -> Result<Json<Skills>, ApiError> {
    let uid = expert(&state, &id).await?;
    if req.product_lines.len() > 100 {
        return Err(ApiError::Validation("product_lines: at most 100".into()));
    }
    let known: Vec<String> = crate::customers::repo::list_product_lines(&state.db).await?.into_iter().map(|l| l.code).collect();
    if let Some(bad) = req.product_lines.iter().find(|l| !known.contains(l)) {
        return Err(ApiError::Validation(format!("product_lines: `{bad}` is not a product line")));
    }
    crate::auth::skills::set(&state.db, uid, &req.product_lines).await?;
    // Takes effect the next time the expert goes online (the console does on login).
    Ok(Json(Skills { product_lines: crate::auth::skills::of(&state.db, uid).await?.unwrap_or_default() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    role: Option<Role>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<Page<User>>, ApiError> {
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let after: Option<UserId> = q.cursor.as_deref().map(extract::decode_cursor).transpose()?;
    let items = repo::list_users(&state.db, q.role, after, limit).await?;
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|u| extract::encode_cursor(&u.id))).flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    display_name: String,
    role: Role,
    password: String,
    customer_id: Option<String>,
    locale: Option<String>,
}

/// User names: 3-64 of `a-z 0-9 . _ -`, so they are safe to show and to type.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (3..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Validation("username must be 3-64 characters of a-z, 0-9, '.', '_' or '-'".into()))
    }
}

pub fn check_locale(locale: Option<&str>) -> Result<String, ApiError> {
    match locale.unwrap_or("en") {
        l @ ("en" | "zh-CN") => Ok(l.to_owned()),
        other => Err(ApiError::Validation(format!("locale `{}` is not supported; use en or zh-CN", extract::truncate(other, 16)))),
    }
}

async fn create(State(state): State<AppState>, ApiJson(req): ApiJson<NewUser>) -> Result<(StatusCode, Json<User>), ApiError> {
    check_username(&req.username)?;
    let display_name = extract::text("display_name", &req.display_name, 128)?;
    password::check_policy(&req.password).map_err(ApiError::Validation)?;
    let locale = check_locale(req.locale.as_deref())?;
    let customer_id: Option<CustomerId> = req.customer_id.as_deref().map(|c| extract::id(c, "customer")).transpose()?;
    match (req.role, customer_id) {
        (Role::Customer, None) => return Err(ApiError::Validation("a customer user needs customer_id".into())),
        (r, Some(_)) if r != Role::Customer => {
            return Err(ApiError::Validation("only customer users belong to a customer".into()))
        }
        _ => {}
    }
    if let Some(c) = customer_id {
        crate::customers::repo::customer(&state.db, c).await?.ok_or_else(|| ApiError::Validation("customer_id: no such customer".into()))?;
    }
    let pw = req.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    let user = repo::insert_user(
        &state.db,
        NewUserRow { username: &req.username, display_name: &display_name, role: req.role, customer_id, locale: &locale, password_hash: hash },
    )
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            ApiError::Conflict(format!("user name `{}` is taken", req.username))
        } else {
            e.into()
        }
    })?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn get_one(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<User>, ApiError> {
    let id: UserId = extract::id(&id, "user")?;
    repo::user_by_id(&state.db, id).await?.map(Json).ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    new_password: String,
}

/// Sets a new password and ends every session of that user.
async fn reset_password(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let id: UserId = extract::id(&id, "user")?;
    password::check_policy(&req.new_password).map_err(ApiError::Validation)?;
    let pw = req.new_password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    if repo::set_password(&state.db, id, &hash).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user"))
    }
}
