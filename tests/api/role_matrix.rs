//! Walks the whole route x role matrix from the route table: no token -> 401 on every
//! protected route, a role not listed -> 403, a listed role with a valid request -> 2xx.
//! A route added to the table without a fixture here fails this test.

use fixline::auth::Role;
use fixline::http::routes::{Access, RouteSpec, ROUTES};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Routes whose success needs a live WebRTC session (tested in live.rs).
const LIVE_ONLY: &[&str] = &["whip_ingest", "whep_play", "media_delete", "media_patch"];

struct Fixture {
    customer: String,
    product_line_code: String,
    warehouse: String,
    sku: String,
    site: String,
    product_line: String,
    asset: String,
    evidence_wo: String,
    evidence: String,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// Per-call state: each call gets fresh objects where the call changes them.
async fn request_for(app: &TestApp, fx: &Fixture, spec: &RouteSpec, role: Option<Role>) -> (String, Body, Option<String>) {
    let admin = app.admin_token.clone();
    let fresh_wo = || async { app.work_order(&fx.customer, "P3").await["id"].as_str().unwrap().to_owned() };
    let uniq = || uuid::Uuid::now_v7().simple().to_string()[18..].to_owned();
    // Some routes need the caller's own fresh session (logout, password change).
    let mut token_override = None;
    let (path, body) = match spec.operation_id {
        "healthz" => ("/healthz".into(), Body::None),
        "page_console" => ("/".into(), Body::None),
        "page_console_alias" => ("/console".into(), Body::None),
        "page_join" => ("/join".into(), Body::None),
        "favicon" => ("/favicon.ico".into(), Body::None),
        "page_asset" => ("/web/js/signal.js".into(), Body::None),
        "readyz" => ("/readyz".into(), Body::None),
        "metrics" => ("/metrics".into(), Body::None),
        "openapi" => ("/api/v1/openapi.json".into(), Body::None),
        "login" => {
            let s = app.user(Role::Expert, None).await;
            ("/api/v1/auth/login".into(), Body::Json(json!({ "username": s.username, "password": s.password })))
        }
        "refresh" => {
            let s = app.user(Role::Expert, None).await;
            ("/api/v1/auth/refresh".into(), Body::Json(json!({ "refresh_token": s.refresh })))
        }
        "redeem_invite" => {
            let wo = fresh_wo().await;
            let inv = app.post(&format!("/api/v1/work-orders/{wo}/invites"), &admin, json!({})).await.ok();
            ("/api/v1/auth/invite".into(), Body::Json(json!({ "token": inv["token"] })))
        }
        "logout" | "change_password" => {
            if let Some(r) = role {
                let s = app.user(r, (r == Role::Customer).then_some(fx.customer.as_str())).await;
                token_override = Some(s.token.clone());
                if spec.operation_id == "logout" {
                    ("/api/v1/auth/logout".into(), Body::None)
                } else {
                    let b = json!({ "current_password": s.password, "new_password": "changed password 123" });
                    ("/api/v1/me/password".into(), Body::Json(b))
                }
            } else if spec.operation_id == "logout" {
                ("/api/v1/auth/logout".into(), Body::None)
            } else {
                ("/api/v1/me/password".into(), Body::Json(json!({ "current_password": "x", "new_password": "yyyyyyyyyyyy" })))
            }
        }
        "me" => ("/api/v1/me".into(), Body::None),
        "list_users" => ("/api/v1/users".into(), Body::None),
        "create_user" => {
            let b = json!({ "username": format!("u{}", uniq()), "display_name": "New", "role": "expert", "password": "long enough password" });
            ("/api/v1/users".into(), Body::Json(b))
        }
        "get_user" | "reset_password" => {
            let s = app.user(Role::Technician, None).await;
            if spec.operation_id == "get_user" {
                (format!("/api/v1/users/{}", s.user_id), Body::None)
            } else {
                (format!("/api/v1/users/{}/password", s.user_id), Body::Json(json!({ "new_password": "a brand new password" })))
            }
        }
        "get_expert_skills" | "put_expert_skills" => {
            let e = app.user(Role::Expert, None).await;
            let path = format!("/api/v1/users/{}/skills", e.user_id);
            if spec.method == "PUT" {
                (path, Body::Json(json!({ "product_lines": [] })))
            } else {
                (path, Body::None)
            }
        }
        "list_customers" => ("/api/v1/customers".into(), Body::None),
        "create_customer" => ("/api/v1/customers".into(), Body::Json(json!({ "name": "Acme", "tier": "key" }))),
        "get_customer" => (format!("/api/v1/customers/{}", fx.customer), Body::None),
        "list_sites" => (format!("/api/v1/customers/{}/sites", fx.customer), Body::None),
        "create_site" => (
            format!("/api/v1/customers/{}/sites", fx.customer),
            Body::Json(json!({ "name": "Plant 2", "address": "1 Road", "latitude": 31.2, "longitude": 121.5 })),
        ),
        "list_assets" => ("/api/v1/assets".into(), Body::None),
        "create_asset" => (
            "/api/v1/assets".into(),
            Body::Json(json!({ "customer_id": fx.customer, "site_id": fx.site, "product_line_id": fx.product_line,
                "model": "DRL-18V-2025", "serial_number": format!("SN{}", uniq()) })),
        ),
        "get_asset" => (format!("/api/v1/assets/{}", fx.asset), Body::None),
        "list_product_lines" => ("/api/v1/product-lines".into(), Body::None),
        "create_product_line" => (
            "/api/v1/product-lines".into(),
            Body::Json(json!({ "code": format!("PL{}", uniq()), "name_en": "Saw", "name_zh": "锯", "category": "power_tool" })),
        ),
        "get_product_line" => (format!("/api/v1/product-lines/{}", fx.product_line), Body::None),
        "put_fault_code" => (
            format!("/api/v1/product-lines/{}/fault-codes/E09", fx.product_line),
            Body::Json(json!({ "fault_id": "motor.stall", "description_en": "Stall", "description_zh": "堵转", "severity": "warning" })),
        ),
        "get_sla_policy" => ("/api/v1/sla-policy".into(), Body::None),
        "list_work_orders" => ("/api/v1/work-orders".into(), Body::None),
        "create_work_order" => {
            let b = if role == Some(Role::Customer) {
                json!({ "title": "Battery does not charge" })
            } else {
                json!({ "title": "Battery does not charge", "customer_id": fx.customer })
            };
            ("/api/v1/work-orders".into(), Body::Json(b))
        }
        "get_work_order" => (format!("/api/v1/work-orders/{}", fresh_wo().await), Body::None),
        "update_work_order" => (format!("/api/v1/work-orders/{}", fresh_wo().await), Body::Json(json!({ "priority": "P1" }))),
        "transition_work_order" => {
            // Customers may cancel; staff triage.
            let to = if role == Some(Role::Customer) { "cancelled" } else { "triaged" };
            (format!("/api/v1/work-orders/{}/transitions", fresh_wo().await), Body::Json(json!({ "to": to })))
        }
        "add_note" => (format!("/api/v1/work-orders/{}/notes", fresh_wo().await), Body::Json(json!({ "text": "Checked the fuse" }))),
        "list_events" => (format!("/api/v1/work-orders/{}/events", fresh_wo().await), Body::None),
        "upload_evidence" => (
            format!("/api/v1/work-orders/{}/evidence?kind=photo&filename=drill.png", fresh_wo().await),
            Body::Raw("image/png", photo()),
        ),
        "list_evidence" => (format!("/api/v1/work-orders/{}/evidence", fx.evidence_wo), Body::None),
        "download_evidence" => (format!("/api/v1/work-orders/{}/evidence/{}", fx.evidence_wo, fx.evidence), Body::None),
        "create_invite" => (format!("/api/v1/work-orders/{}/invites", fresh_wo().await), Body::Json(json!({}))),
        "explain_evidence" => (format!("/api/v1/work-orders/{}/evidence/{}/explanation", fx.evidence_wo, fx.evidence), Body::None),
        "get_diagnosis" => (format!("/api/v1/work-orders/{}/diagnosis", fx.evidence_wo), Body::None),
        "list_models" => ("/api/v1/models".into(), Body::None),
        "whip_ingest" => (format!("/api/v1/work-orders/{}/whip", fx.evidence_wo), Body::Raw("application/sdp", b"v=0".to_vec())),
        "whep_play" => (format!("/api/v1/work-orders/{}/whep", fx.evidence_wo), Body::Raw("application/sdp", b"v=0".to_vec())),
        "media_delete" | "media_patch" => (format!("/api/v1/media/{}", uuid::Uuid::now_v7()), Body::None),
        "ingest_telemetry" => (
            format!("/api/v1/assets/{}/telemetry", fx.asset),
            Body::Raw("application/octet-stream", raw_telemetry(&cwru("de12k/097_N_0hp_from48k_head70.f32")[..9000], 12_000, 1796.0)),
        ),
        "escalate_work_order" => {
            let wo = fresh_wo().await;
            app.transition(&wo, "triaged", &admin).await.ok();
            (format!("/api/v1/work-orders/{wo}/escalate"), Body::Json(json!({ "reason": "bearing noise, needs a workshop press" })))
        }
        "get_dossier" => (format!("/api/v1/work-orders/{}/dossier", fx.evidence_wo), Body::None),
        "list_candidates" => (format!("/api/v1/work-orders/{}/candidates", escalated(app).await), Body::None),
        "assign_technician" => {
            let t = technician(app, fx).await;
            (format!("/api/v1/work-orders/{}/assignments", escalated(app).await), Body::Json(json!({ "technician_id": t.user_id })))
        }
        "list_assignments" => ("/api/v1/assignments".into(), Body::None),
        "answer_assignment" | "visit_progress" | "visit_report" | "withdraw_assignment" => {
            let (a, t) = offered(app, fx).await;
            if role == Some(Role::Technician) {
                token_override = Some(t.token.clone());
            }
            let tok = t.token.clone();
            let act = |path: String, body: Value| {
                let tok = tok.clone();
                async move { app.post(&path, &tok, body).await.ok() }
            };
            match spec.operation_id {
                "answer_assignment" => (format!("/api/v1/assignments/{a}/answer"), Body::Json(json!({ "accept": true }))),
                "withdraw_assignment" => (format!("/api/v1/assignments/{a}/withdraw"), Body::None),
                "visit_progress" => {
                    act(format!("/api/v1/assignments/{a}/answer"), json!({ "accept": true })).await;
                    (format!("/api/v1/assignments/{a}/progress"), Body::Json(json!({ "stage": "en_route" })))
                }
                _ => {
                    act(format!("/api/v1/assignments/{a}/answer"), json!({ "accept": true })).await;
                    act(format!("/api/v1/assignments/{a}/progress"), json!({ "stage": "on_site" })).await;
                    (format!("/api/v1/assignments/{a}/report"), Body::Json(json!({ "outcome": "fixed", "signed_by": "Zhao Min" })))
                }
            }
        }
        "dispatch_board" => ("/api/v1/dispatch/board".into(), Body::None),
        "list_technicians" => ("/api/v1/technicians".into(), Body::None),
        "put_technician" => {
            let t = app.user(Role::Technician, None).await;
            (format!("/api/v1/technicians/{}", t.user_id), Body::Json(profile(fx)))
        }
        "list_parts" => ("/api/v1/parts".into(), Body::None),
        "list_warehouses" => ("/api/v1/warehouses".into(), Body::None),
        "create_warehouse" => (
            "/api/v1/warehouses".into(),
            Body::Json(json!({ "code": format!("WH-{}", uniq()), "name": "Depot", "region": "east", "latitude": 1.0, "longitude": 2.0 })),
        ),
        "list_stock" => ("/api/v1/stock".into(), Body::None),
        "put_stock" => (format!("/api/v1/stock/{}/{}", fx.warehouse, fx.sku), Body::Json(json!({ "on_hand": 5, "reorder_level": 1 }))),
        "list_stock_alerts" => ("/api/v1/stock-alerts".into(), Body::None),
        "get_survey" => (format!("/api/v1/surveys/{}", survey(app).await.1), Body::None),
        "answer_survey" => (format!("/api/v1/surveys/{}", survey(app).await.1), Body::Json(json!({ "rating": 5 }))),
        "list_follow_ups" => ("/api/v1/follow-ups".into(), Body::None),
        "follow_up_done" => (format!("/api/v1/follow-ups/{}/done", survey(app).await.0), Body::Json(json!({ "note": "called, all fine" }))),
        "page_survey" => ("/survey".into(), Body::None),
        "search_procedures" => ("/api/v1/procedures?q=carbon%20brush".into(), Body::None),
        "get_procedure" => ("/api/v1/procedures/proc.drill_carbon_brush_replace".into(), Body::None),
        "list_procedure_versions" => ("/api/v1/procedures/proc.drill_carbon_brush_replace/versions".into(), Body::None),
        "put_procedure" => {
            let current = app.get("/api/v1/procedures/proc.battery_pack_fault", &admin).await.ok();
            let mut procedure = current.clone();
            for k in ["source", "created_by", "created_at", "expected_minutes"] {
                procedure.as_object_mut().unwrap().remove(k);
            }
            ("/api/v1/procedures/proc.battery_pack_fault".into(), Body::Json(json!({ "procedure": procedure })))
        }
        "suggest_procedures" => (format!("/api/v1/work-orders/{}/procedures", fx.evidence_wo), Body::None),
        "knowledge_image" => ("/api/v1/knowledge/images/brush_holder.svg".into(), Body::None),
        "list_webhooks" => ("/api/v1/webhooks".into(), Body::None),
        // Port 9 (discard) refuses on loopback: queued pings just fail and retry.
        "create_webhook" => ("/api/v1/webhooks".into(), Body::Json(json!({ "url": "http://127.0.0.1:9/hook", "event_kinds": ["status_changed"] }))),
        "update_webhook" | "delete_webhook" | "list_webhook_deliveries" | "test_webhook" => {
            let w = app.post("/api/v1/webhooks", &admin, json!({ "url": "http://127.0.0.1:9/hook" })).await.ok();
            let id = w["id"].as_str().unwrap().to_owned();
            match spec.operation_id {
                "update_webhook" => (format!("/api/v1/webhooks/{id}"), Body::Json(json!({ "active": false, "description": "paused" }))),
                "delete_webhook" => (format!("/api/v1/webhooks/{id}"), Body::None),
                "list_webhook_deliveries" => (format!("/api/v1/webhooks/{id}/deliveries"), Body::None),
                _ => (format!("/api/v1/webhooks/{id}/test"), Body::None),
            }
        }
        "get_kpis" => ("/api/v1/kpis?group_by=region".into(), Body::None),
        "page_dispatch" => ("/dispatch".into(), Body::None),
        "page_technician" => ("/technician".into(), Body::None),
        "page_admin" => ("/admin".into(), Body::None),
        other => panic!("route {other} has no fixture in the role matrix test: add one"),
    };
    (path, body, token_override)
}

/// A technician profile that can take the fixture's product line anywhere, any time.
fn profile(fx: &Fixture) -> Value {
    json!({ "region": "east", "home": { "latitude": 1.0, "longitude": 2.0 },
        "skills": [{ "product_line": fx.product_line_code, "level": "specialist" }],
        "hours": { "timezone": "UTC", "days": [1, 2, 3, 4, 5, 6, 7], "start_minute": 0, "end_minute": 1440 }, "max_jobs": 5 })
}

async fn technician(app: &TestApp, fx: &Fixture) -> Session {
    let t = app.user(Role::Technician, None).await;
    app.req(Method::PUT, &format!("/api/v1/technicians/{}", t.user_id), Some(&app.admin_token), Some(profile(fx))).await.ok();
    t
}

async fn escalated(app: &TestApp) -> String {
    let customer = app.customer("key").await;
    let wo = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
    app.transition(&wo, "triaged", &app.admin_token).await.ok();
    app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &app.admin_token, json!({ "reason": "onsite" })).await.ok();
    wo
}

/// An assignment offered to a fresh technician, and that technician's session.
async fn offered(app: &TestApp, fx: &Fixture) -> (String, Session) {
    let t = technician(app, fx).await;
    let wo = escalated(app).await;
    let a = app.post(&format!("/api/v1/work-orders/{wo}/assignments"), &app.admin_token, json!({ "technician_id": t.user_id })).await.ok();
    (a["id"].as_str().unwrap().to_owned(), t)
}

/// A survey of a freshly resolved work order: (survey id, link token).
pub async fn survey(app: &TestApp) -> (String, String) {
    let customer = app.customer("key").await;
    let wo = app.work_order(&customer, "P3").await["id"].as_str().unwrap().to_owned();
    for to in ["triaged", "in_remote_session", "resolved_remote"] {
        app.transition(&wo, to, &app.admin_token).await.ok();
    }
    let st = &app.running.as_ref().unwrap().state;
    let sent = fixline::work_orders::surveys::send_due(app.db(), &st.key, &st.config.sla, &st.config.surveys, "http://127.0.0.1").await.unwrap();
    let s = sent.into_iter().find(|s| s.work_order_id.to_string() == wo).expect("a survey for the resolved work order");
    let token = fixline::work_orders::surveys::token(&st.key, &s);
    (s.id, token)
}

async fn send(app: &TestApp, spec: &RouteSpec, path: &str, body: Body, token: Option<&str>) -> Resp {
    let method = Method::from_bytes(spec.method.as_bytes()).unwrap();
    match body {
        Body::None => app.req(method, path, token, None).await,
        Body::Json(v) => app.req(method, path, token, Some(v)).await,
        Body::Raw(ct, bytes) => app.raw(method, path, token, ct, bytes).await,
    }
}

#[tokio::test]
async fn every_route_enforces_its_declared_roles() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token.clone();
    let customer = app.customer("strategic").await;
    let site = app
        .post(&format!("/api/v1/customers/{customer}/sites"), &admin, json!({ "name": "HQ", "address": "1 Main St", "latitude": 1.0, "longitude": 2.0 }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pl = app
        .post("/api/v1/product-lines", &admin, json!({ "code": "DRL", "name_en": "Drill", "name_zh": "电钻", "category": "power_tool" }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asset = app
        .post("/api/v1/assets", &admin, json!({ "customer_id": customer, "product_line_id": pl, "model": "D1", "serial_number": "S1" }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let evidence_wo = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
    let ev = app
        .raw(Method::POST, &format!("/api/v1/work-orders/{evidence_wo}/evidence?kind=photo"), Some(&admin), "image/png", photo())
        .await
        .ok();
    let warehouse = app
        .post("/api/v1/warehouses", &admin, json!({ "code": "WH-FX", "name": "Depot", "region": "east", "latitude": 1.0, "longitude": 2.0 }))
        .await
        .ok()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let sku = app.get("/api/v1/parts", &admin).await.ok()["items"][0]["sku"].as_str().expect("the bundled catalogue has parts").to_owned();
    let fx = Fixture { customer: customer.clone(), product_line_code: "DRL".into(), warehouse, sku, site, product_line: pl, asset, evidence_wo, evidence: ev["id"].as_str().unwrap().to_owned() };

    let mut sessions = vec![];
    for &role in Role::ALL {
        let s = app.user(role, (role == Role::Customer).then_some(customer.as_str())).await;
        sessions.push((role, s));
    }
    let mut checked = 0;
    for spec in ROUTES {
        match spec.access {
            // The signaling socket authenticates in-band, per message: tests/api/live.rs.
            Access::Public if spec.operation_id == "signal" => continue,
            Access::Public => {
                let (path, body, _) = request_for(&app, &fx, spec, None).await;
                let r = send(&app, spec, &path, body, None).await;
                assert!(r.status.is_success(), "{} {} without a token: {} {}", spec.method, spec.path, r.status, r.body);
                checked += 1;
            }
            Access::Roles(allowed) => {
                let (path, body, _) = request_for(&app, &fx, spec, None).await;
                let r = send(&app, spec, &path, body, None).await;
                assert_eq!(r.problem(401), "unauthorized", "{} {} without a token", spec.method, spec.path);
                checked += 1;
                for (role, session) in &sessions {
                    let (path, body, own) = request_for(&app, &fx, spec, Some(*role)).await;
                    let token = own.as_deref().unwrap_or(&session.token);
                    let r = send(&app, spec, &path, body, Some(token)).await;
                    if allowed.contains(role) && LIVE_ONLY.contains(&spec.operation_id) {
                        // Needs a live session and real SDP: tests/api/live.rs covers
                        // the success path; here only that the role got through.
                        assert!(![401, 403].contains(&r.status.as_u16()), "{} {} as {role}: {}", spec.method, spec.path, r.status);
                    } else if allowed.contains(role) {
                        assert!(r.status.is_success(), "{} {} as {role}: {} {}", spec.method, spec.path, r.status, r.body);
                    } else {
                        assert_eq!(r.problem(403), "forbidden", "{} {} as {role}", spec.method, spec.path);
                    }
                    checked += 1;
                }
            }
        }
    }
    let expected: usize = ROUTES
        .iter()
        .map(|r| match r.access {
            Access::Public if r.operation_id == "signal" => 0,
            Access::Public => 1,
            Access::Roles(_) => 1 + Role::ALL.len(),
        })
        .sum();
    assert_eq!(checked, expected, "every cell of the matrix was walked");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_roles() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = app.req(Method::GET, "/api/v1/openapi.json", None, None).await.ok();
    assert_eq!(doc["openapi"], "3.1.0");
    for spec in ROUTES {
        let op = &doc["paths"][spec.path][spec.method.to_lowercase()];
        assert_eq!(op["operationId"], spec.operation_id, "{} {}", spec.method, spec.path);
        if let Access::Roles(roles) = spec.access {
            let listed: Vec<&str> = op["x-roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            assert_eq!(listed, roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
        }
        for schema in spec.request.iter().chain(Some(&spec.response).filter(|r| !r.is_empty())) {
            assert!(doc["components"]["schemas"][*schema].is_object(), "schema {schema} missing");
        }
    }
    app.stop().await;
}
