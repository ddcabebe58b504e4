//! Login, tokens, logout, refresh rotation, invites, password changes, rate limits.

use fixline::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_issues_short_lived_access_and_refresh_tokens() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.user(Role::Expert, None).await;
    let r = app.login(&s.username, &s.password).await.ok();
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["expires_in"], 900);
    assert_eq!(r["role"], "expert");
    let me = app.get("/api/v1/me", r["access_token"].as_str().unwrap()).await.ok();
    assert_eq!(me["user"]["username"], s.username.as_str());
    assert!(me["user"].get("password_hash").is_none(), "hashes never leave the server");
    assert_eq!(app.login(&s.username, "wrong password!").await.problem(401), "unauthorized");
    assert_eq!(app.login("nobody-here", "wrong password!").await.problem(401), "unauthorized");
    app.get("/api/v1/me", "v1.garbage.sig").await.problem(401);
    app.req(Method::GET, "/api/v1/me", None, None).await.problem(401);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_with(Backend::Sqlite, |c| c.auth.access_token_ttl_secs = 1).await;
    let s = app.user(Role::Dispatcher, None).await;
    app.get("/api/v1/me", &s.token).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.get("/api/v1/me", &s.token).await;
    r.problem(401);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_access_token_and_the_refresh_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.user(Role::Technician, None).await;
    app.get("/api/v1/me", &s.token).await.ok();
    let r = app.req(Method::POST, "/api/v1/auth/logout", Some(&s.token), None).await;
    assert_eq!(r.status.as_u16(), 204);
    app.get("/api/v1/me", &s.token).await.problem(401);
    app.req(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": s.refresh }))).await.problem(401);
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_stops_working() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.user(Role::Expert, None).await;
    let r1 = app.req(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": s.refresh }))).await.ok();
    let new_refresh = r1["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, s.refresh);
    app.get("/api/v1/me", r1["access_token"].as_str().unwrap()).await.ok();
    app.req(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": s.refresh }))).await.problem(401);
    app.req(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": new_refresh }))).await.ok();
    app.stop().await;
}

#[tokio::test]
async fn an_invite_link_logs_a_customer_in_once_and_only_for_its_work_order() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let customer = app.customer("key").await;
    let wo = app.work_order(&customer, "P2").await;
    let other = app.work_order(&customer, "P2").await;
    let id = wo["id"].as_str().unwrap();
    let expert = app.user(Role::Expert, None).await;
    let inv = app.post(&format!("/api/v1/work-orders/{id}/invites"), &expert.token, json!({ "ttl_secs": 600 })).await.ok();
    let token = inv["token"].as_str().unwrap();
    assert!(inv["url"].as_str().unwrap().contains("/join#token="));
    // An invite token is not an access token.
    app.get("/api/v1/me", token).await.problem(401);
    let login = app.req(Method::POST, "/api/v1/auth/invite", None, Some(json!({ "token": token }))).await.ok();
    assert_eq!(login["role"], "customer");
    assert_eq!(login["work_order_id"], id);
    let ct = login["access_token"].as_str().unwrap();
    let seen = app.get(&format!("/api/v1/work-orders/{id}"), ct).await.ok();
    assert_eq!(seen["id"], id);
    app.post(&format!("/api/v1/work-orders/{id}/notes"), ct, json!({ "text": "it started after I dropped it" })).await.ok();
    app.get(&format!("/api/v1/work-orders/{}", other["id"].as_str().unwrap()), ct).await.problem(404);
    let list = app.get("/api/v1/work-orders", ct).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/customers", ct).await.problem(403);
    // An invite login sees its work order, not the rest of the customer.
    app.get(&format!("/api/v1/customers/{customer}"), ct).await.problem(404);
    let assets = app.get("/api/v1/assets", ct).await.ok();
    assert!(assets["items"].as_array().unwrap().is_empty());
    // Single use.
    assert_eq!(app.req(Method::POST, "/api/v1/auth/invite", None, Some(json!({ "token": token }))).await.problem(410), "gone");
    // The log shows who invited and that the link was used.
    let events = app.get(&format!("/api/v1/work-orders/{id}/events"), &t).await.ok();
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "invite_created", "invite_redeemed", "note_added"]);
    // An invite to a work order that has since been cancelled no longer works.
    let inv2 = app.post(&format!("/api/v1/work-orders/{id}/invites"), &expert.token, json!({})).await.ok();
    app.transition(id, "cancelled", &t).await.ok();
    app.req(Method::POST, "/api/v1/auth/invite", None, Some(json!({ "token": inv2["token"] }))).await.problem(410);
    // A tampered token is refused.
    let mut forged = token.to_owned();
    forged.push('A');
    app.req(Method::POST, "/api/v1/auth/invite", None, Some(json!({ "token": forged }))).await.problem(401);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_invite_is_gone() {
    let app = spawn_app(Backend::Sqlite).await;
    let customer = app.customer("standard").await;
    let wo = app.work_order(&customer, "P3").await;
    let id = wo["id"].as_str().unwrap();
    let inv = app.post(&format!("/api/v1/work-orders/{id}/invites"), &app.admin_token, json!({ "ttl_secs": 1 })).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.req(Method::POST, "/api/v1/auth/invite", None, Some(json!({ "token": inv["token"] }))).await;
    r.problem(410);
    app.post(&format!("/api/v1/work-orders/{id}/invites"), &app.admin_token, json!({ "ttl_secs": 10_000_000 })).await.problem(422);
    app.stop().await;
}

#[tokio::test]
async fn password_change_and_reset_end_existing_sessions() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.user(Role::Expert, None).await;
    let body = json!({ "current_password": "not the password", "new_password": "another long password" });
    app.post("/api/v1/me/password", &s.token, body).await.problem(403);
    let body = json!({ "current_password": s.password, "new_password": "short" });
    app.post("/api/v1/me/password", &s.token, body).await.problem(422);
    let body = json!({ "current_password": s.password, "new_password": "another long password" });
    assert_eq!(app.post("/api/v1/me/password", &s.token, body).await.status.as_u16(), 204);
    app.get("/api/v1/me", &s.token).await.problem(401);
    app.login(&s.username, &s.password).await.problem(401);
    let fresh = app.login(&s.username, "another long password").await.ok();
    let body = json!({ "new_password": "reset by the admin 1" });
    let r = app.post(&format!("/api/v1/users/{}/password", s.user_id), &app.admin_token, body).await;
    assert_eq!(r.status.as_u16(), 204);
    app.get("/api/v1/me", fresh["access_token"].as_str().unwrap()).await.problem(401);
    app.login(&s.username, "reset by the admin 1").await.ok();
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_are_rate_limited() {
    let app = spawn_with(Backend::Sqlite, |c| c.auth.login_attempts_per_minute = 3).await;
    // The admin login in spawn used one attempt of this address.
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(app.login("admin", "wrong password!").await.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
    let r = app.login("admin", "wrong password!").await;
    assert_eq!(r.problem(429), "rate-limited");
    app.stop().await;
}

#[tokio::test]
async fn user_administration_validates_input() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let body = json!({ "username": "Bad Name", "display_name": "x", "role": "expert", "password": "long enough pw" });
    app.post("/api/v1/users", &t, body).await.problem(422);
    let body = json!({ "username": "cust.one", "display_name": "x", "role": "customer", "password": "long enough pw" });
    app.post("/api/v1/users", &t, body).await.problem(422);
    let body = json!({ "username": "exp.one", "display_name": "x", "role": "wizard", "password": "long enough pw" });
    app.post("/api/v1/users", &t, body).await.problem(422);
    let body = json!({ "username": "exp.one", "display_name": "x", "role": "expert", "password": "long enough pw" });
    app.post("/api/v1/users", &t, body.clone()).await.ok();
    assert_eq!(app.post("/api/v1/users", &t, body).await.problem(409), "conflict");
    let page = app.get("/api/v1/users?role=expert", &t).await.ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}
