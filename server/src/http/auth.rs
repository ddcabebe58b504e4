//! Login, token refresh, invite redemption, logout and the caller's own account.

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::ApiJson;
use super::AppState;
use crate::auth::repo::{self, SessionOwner};
use crate::auth::tokens::{self, Claims};
use crate::auth::{password, Principal, Role};
use crate::error::ApiError;
use crate::ids::{AuthSessionId, CustomerId, InviteId, UserId, WorkOrderId};
use crate::work_orders::events::{Actor, ActorRef, Command};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/invite", post(redeem_invite))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRedeemRequest {
    token: String,
}

#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_in: u64,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_order_id: Option<WorkOrderId>,
}

/// Identity carried into a token.
struct Subject {
    uid: Option<UserId>,
    iid: Option<InviteId>,
    role: Role,
    cid: Option<CustomerId>,
    wo: Option<WorkOrderId>,
}

fn tokens_for(state: &AppState, sid: AuthSessionId, s: Subject, refresh_token: String, refresh_expires_at: i64) -> TokenResponse {
    let now = crate::now_millis();
    let ttl = state.config.auth.access_token_ttl_secs;
    let access = state.key.sign(&Claims::Access {
        sid,
        uid: s.uid,
        iid: s.iid,
        role: s.role,
        cid: s.cid,
        wo: s.wo,
        exp: now / 1000 + ttl as i64,
    });
    TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token,
        refresh_expires_in: ((refresh_expires_at - now) / 1000).max(0) as u64,
        role: s.role,
        user_id: s.uid,
        customer_id: s.cid,
        work_order_id: s.wo,
    }
}

fn unauthorized_login() -> ApiError {
    ApiError::Unauthorized("user name or password is wrong".into())
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    if req.username.len() > 128 || req.password.len() > password::MAX_LEN {
        return Err(unauthorized_login());
    }
    let now = crate::now_millis();
    let ip_key = format!("ip:{}", peer.ip());
    let user_key = format!("user:{}", req.username.to_lowercase());
    if !state.login_limiter.allow(&[&ip_key, &user_key], now / 1000) {
        return Err(ApiError::TooManyRequests("too many login attempts; wait a minute".into()));
    }
    let user = repo::user_by_name(&state.db, &req.username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| password::dummy_hash().to_owned());
    let pw = req.password;
    let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => return Err(unauthorized_login()),
    };
    let refresh = tokens::new_refresh_token();
    let expires = now + state.config.auth.refresh_token_ttl_secs as i64 * 1000;
    let mut conn = state.db.pool.acquire().await?;
    let sid = repo::create_session(&mut conn, SessionOwner::User(user.id), &tokens::refresh_hash(&refresh), now, expires).await?;
    tracing::info!(user = %user.id, role = %user.role, "login");
    let subject = Subject { uid: Some(user.id), iid: None, role: user.role, cid: user.customer_id, wo: None };
    Ok(Json(tokens_for(&state, sid, subject, refresh, expires)))
}

async fn refresh(State(state): State<AppState>, ApiJson(req): ApiJson<RefreshRequest>) -> Result<Json<TokenResponse>, ApiError> {
    let bad = || ApiError::Unauthorized("the refresh token is unknown, used, revoked or expired".into());
    if req.refresh_token.len() > tokens::MAX_TOKEN_LEN {
        return Err(bad());
    }
    let now = crate::now_millis();
    let old_hash = tokens::refresh_hash(&req.refresh_token);
    let target = repo::session_by_refresh(&state.db, &old_hash, now).await?.ok_or_else(bad)?;
    let subject = match (target.user_id, target.invite_id) {
        (Some(uid), _) => {
            let u = repo::user_by_id(&state.db, uid).await?.filter(|u| !u.disabled).ok_or_else(bad)?;
            Subject { uid: Some(u.id), iid: None, role: u.role, cid: u.customer_id, wo: None }
        }
        (None, Some(iid)) => {
            let wo = repo::invite_work_order(&state.db, iid).await?.ok_or_else(bad)?;
            let w = crate::work_orders::repo::get(&state.db, wo).await?.ok_or_else(bad)?;
            Subject { uid: None, iid: Some(iid), role: Role::Customer, cid: Some(w.customer_id), wo: Some(wo) }
        }
        (None, None) => return Err(bad()),
    };
    let new_refresh = tokens::new_refresh_token();
    if !repo::rotate_refresh(&state.db, target.session_id, &old_hash, &tokens::refresh_hash(&new_refresh)).await? {
        return Err(bad());
    }
    Ok(Json(tokens_for(&state, target.session_id, subject, new_refresh, target.expires_at)))
}

async fn redeem_invite(State(state): State<AppState>, ApiJson(req): ApiJson<InviteRedeemRequest>) -> Result<Json<TokenResponse>, ApiError> {
    let now = crate::now_millis();
    let claims = state.key.verify(req.token.trim(), now / 1000).map_err(|e| match e {
        tokens::TokenError::Expired => ApiError::Gone("this invite link has expired; ask for a new one".into()),
        other => ApiError::Unauthorized(format!("invalid invite link: {other}")),
    })?;
    let Claims::Invite { iid, wo, .. } = claims else {
        return Err(ApiError::Unauthorized("this is not an invite token".into()));
    };
    let work_order = crate::work_orders::repo::get(&state.db, wo).await?.ok_or_else(|| ApiError::not_found("work order"))?;
    let refresh = tokens::new_refresh_token();
    // An invite login lasts `invite_ttl_secs` from redemption (long enough for the call
    // and its follow-up), at most the refresh-token lifetime.
    let expires = now + (state.config.auth.invite_ttl_secs.min(state.config.auth.refresh_token_ttl_secs) as i64) * 1000;
    let mut tx = state.db.pool.begin().await?;
    if !repo::consume_invite(&mut tx, iid, now).await? {
        return Err(ApiError::Gone("this invite link has already been used or has expired".into()));
    }
    let sid = repo::create_session(&mut tx, SessionOwner::Invite(iid), &tokens::refresh_hash(&refresh), now, expires).await?;
    let actor = Actor { who: ActorRef::Invite(iid), role: Some(Role::Customer) };
    crate::work_orders::repo::append_in(&mut tx, wo, Command::RecordInviteRedeemed { invite_id: iid }, &actor, &state.config.sla, now)
        .await
        .map_err(|e| match e {
            crate::work_orders::repo::AppendError::Decide(d) => ApiError::Gone(format!("this invite link no longer works: {d}")),
            other => super::work_orders::append_error(other),
        })?;
    tx.commit().await?;
    let subject = Subject { uid: None, iid: Some(iid), role: Role::Customer, cid: Some(work_order.customer_id), wo: Some(wo) };
    Ok(Json(tokens_for(&state, sid, subject, refresh, expires)))
}

async fn logout(State(state): State<AppState>, p: Principal) -> Result<StatusCode, ApiError> {
    repo::revoke_session(&state.db, p.session_id, crate::now_millis()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct Me {
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<repo::User>,
    customer_id: Option<CustomerId>,
    work_order_id: Option<WorkOrderId>,
}

async fn me(State(state): State<AppState>, p: Principal) -> Result<Json<Me>, ApiError> {
    let user = match p.user_id {
        Some(id) => repo::user_by_id(&state.db, id).await?,
        None => None,
    };
    Ok(Json(Me { role: p.role, user, customer_id: p.customer_id, work_order_id: p.work_order_scope }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let uid = p.user_id.ok_or_else(|| ApiError::Forbidden("an invite login has no password".into()))?;
    password::check_policy(&req.new_password).map_err(ApiError::Validation)?;
    let user = repo::user_by_id(&state.db, uid).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let (hash, current, new) = (user.password_hash, req.current_password, req.new_password);
    let new_hash = tokio::task::spawn_blocking(move || {
        if password::verify(&current, &hash) {
            password::hash(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::Internal)?
    .ok_or_else(|| ApiError::Forbidden("the current password is wrong".into()))?;
    repo::set_password(&state.db, uid, &new_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}
