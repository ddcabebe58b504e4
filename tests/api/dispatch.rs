//! Escalation and onsite dispatch end to end over the API, on SQLite and PostgreSQL:
//! parts reserved on escalation and consumed on site, the ranked technicians with a
//! known best answer, offer / accept / visit / report, cancellation releasing stock,
//! and the concurrency guarantees (stock never negative, a technician's job limit
//! never exceeded, one live assignment per work order).

use fixline::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Shanghai-area fixture: a customer with a site, a spindle asset (SPN-CNC from the
/// bundled knowledge base), a warehouse with spindle bearings in stock, and three
/// technicians whose ranking is known: `near` (Suzhou, specialist), `far` (Nanjing,
/// specialist), `grinder` (next door but skilled for grinders only).
struct World {
    customer: String,
    asset: String,
    near: Session,
    far: Session,
    grinder: Session,
    sku: String,
}

fn hours_24_7() -> Value {
    json!({ "timezone": "Asia/Shanghai", "days": [1, 2, 3, 4, 5, 6, 7], "start_minute": 0, "end_minute": 1440 })
}

async fn technician(app: &TestApp, lat: f64, lon: f64, line: &str, max_jobs: i64) -> Session {
    let t = app.user(Role::Technician, None).await;
    let body = json!({ "region": "east-china", "home": { "latitude": lat, "longitude": lon },
        "skills": [{ "product_line": line, "level": "specialist" }], "hours": hours_24_7(), "max_jobs": max_jobs });
    app.req(Method::PUT, &format!("/api/v1/technicians/{}", t.user_id), Some(&app.admin_token), Some(body)).await.ok();
    t
}

async fn world(app: &TestApp, stock: i64) -> World {
    let admin = &app.admin_token;
    let customer = app.customer("strategic").await;
    let site = app
        .post(&format!("/api/v1/customers/{customer}/sites"), admin,
            json!({ "name": "Suzhou plant", "address": "88 Xinghu St", "latitude": 31.299, "longitude": 120.728, "timezone": "Asia/Shanghai", "region": "east-china" }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines = app.get("/api/v1/product-lines", admin).await.ok();
    let spn = lines["items"].as_array().unwrap().iter().find(|l| l["code"] == "SPN-CNC").expect("SPN-CNC from the knowledge base")["id"].clone();
    let asset = app
        .post("/api/v1/assets", admin, json!({ "customer_id": customer, "site_id": site, "product_line_id": spn, "model": "VMC-850", "serial_number": format!("SN-{}", uuid::Uuid::now_v7().simple()) }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts = app.get("/api/v1/parts?product_line=SPN-CNC", admin).await.ok();
    let sku = parts["items"][0]["sku"].as_str().expect("a spindle part in the bundled catalogue").to_owned();
    let code = format!("WH-{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    app.post("/api/v1/warehouses", admin, json!({ "code": code, "name": "Shanghai depot", "region": "east-china", "latitude": 31.23, "longitude": 121.47 }))
        .await
        .ok();
    app.req(Method::PUT, &format!("/api/v1/stock/{code}/{sku}"), Some(admin), Some(json!({ "on_hand": stock, "reorder_level": 2 }))).await.ok();
    World {
        near: technician(app, 31.32, 120.62, "SPN-CNC", 3).await,
        far: technician(app, 32.06, 118.79, "SPN-CNC", 3).await,
        grinder: technician(app, 31.30, 120.73, "AGR-125", 3).await,
        customer,
        asset,
        sku,
    }
}

async fn spindle_work_order(app: &TestApp, w: &World, priority: &str) -> String {
    let wo = app
        .post("/api/v1/work-orders", &app.admin_token, json!({ "customer_id": w.customer, "asset_id": w.asset, "title": "Spindle bearing noise", "priority": priority, "fault_codes": ["SP-102"] }))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.transition(&wo, "triaged", &app.admin_token).await.ok();
    wo
}

fn stock_of(stock: &Value, sku: &str) -> (i64, i64) {
    let items = stock["items"].as_array().unwrap();
    let it = items.iter().find(|i| i["sku"] == sku).expect("stock row");
    (it["on_hand"].as_i64().unwrap(), it["reserved"].as_i64().unwrap())
}

#[tokio::test]
async fn an_escalated_work_order_reaches_the_right_technician_with_its_parts_and_is_fixed_on_site() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let admin = app.admin_token.clone();
        let w = world(&app, 4).await;
        let expert = app.user(Role::Expert, None).await;
        let dispatcher = app.user(Role::Dispatcher, None).await;
        let wo = spindle_work_order(&app, &w, "P2").await;

        // The expert escalates with the part the diagnosis points at.
        let esc = app
            .post(&format!("/api/v1/work-orders/{wo}/escalate"), &expert.token,
                json!({ "reason": "outer-race defect confirmed; bearing set must be pressed in the workshop", "availability": "weekdays 8-17", "parts": [{ "sku": w.sku, "quantity": 2 }] }))
            .await
            .ok();
        assert_eq!(esc["status"], "escalated", "{backend:?}");
        let stock = app.get(&format!("/api/v1/stock?sku={}", w.sku), &admin).await.ok();
        assert_eq!(stock_of(&stock, &w.sku), (4, 2), "{backend:?}: two reserved");

        // Ranking with a known answer: near before far; the grinder-only one excluded.
        let c = app.get(&format!("/api/v1/work-orders/{wo}/candidates?all=true"), &dispatcher.token).await.ok();
        let ids: Vec<&str> = c["items"].as_array().unwrap().iter().map(|c| c["technician_id"].as_str().unwrap()).collect();
        let pos = |id: &str| ids.iter().position(|x| *x == id).unwrap();
        assert!(pos(&w.near.user_id) < pos(&w.far.user_id), "{backend:?}: {c}");
        let grinder = &c["items"][pos(&w.grinder.user_id)];
        assert_eq!(grinder["excluded"], "not skilled for SPN-CNC", "{backend:?}");
        let best = &c["items"][0];
        assert_eq!(best["technician_id"], w.near.user_id.as_str());
        for k in ["skill", "travel", "load", "sla", "region"] {
            assert!(best["breakdown"][k].as_f64().is_some(), "{backend:?}: breakdown has {k}: {best}");
        }
        assert_eq!(best["meets_sla"], true);

        // The board shows it with the same suggestion.
        let board = app.get("/api/v1/dispatch/board", &dispatcher.token).await.ok();
        let row = board["items"].as_array().unwrap().iter().find(|r| r["work_order"]["id"] == wo.as_str()).expect("on the board");
        assert_eq!(row["candidates"][0]["technician_id"], w.near.user_id.as_str());

        // Assigning someone who cannot do the job is refused with the reason.
        let r = app.post(&format!("/api/v1/work-orders/{wo}/assignments"), &dispatcher.token, json!({ "technician_id": w.grinder.user_id })).await;
        assert_eq!(r.problem(409), "conflict", "{backend:?}");
        let a = app.post(&format!("/api/v1/work-orders/{wo}/assignments"), &dispatcher.token, json!({ "technician_id": w.near.user_id })).await.ok();
        let aid = a["id"].as_str().unwrap().to_owned();
        assert_eq!(a["status"], "offered");
        assert!(a["score"].as_f64().unwrap() > 0.5);

        // Only the assigned technician may answer.
        let r = app.post(&format!("/api/v1/assignments/{aid}/answer"), &w.far.token, json!({ "accept": true })).await;
        assert_eq!(r.problem(403), "forbidden");
        let mine = app.get("/api/v1/assignments", &w.near.token).await.ok();
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
        assert_eq!(app.get("/api/v1/assignments", &w.far.token).await.ok()["items"].as_array().unwrap().len(), 0);

        // The technician sees the whole case before going.
        let d = app.get(&format!("/api/v1/work-orders/{wo}/dossier"), &w.near.token).await.ok();
        assert_eq!(d["product_line"], "SPN-CNC");
        assert_eq!(d["site"]["region"], "east-china");
        assert_eq!(d["escalations"][0]["payload"]["availability"], "weekdays 8-17");
        assert_eq!(d["reservations"][0]["quantity"], 2);
        assert_eq!(d["reservations"][0]["status"], "reserved");
        // The visit's procedure follows the diagnosis (fault code SP-102: outer race):
        // the onsite bearing replacement, its steps as the checklist, its parts.
        assert_eq!(d["procedure"]["id"], "proc.spindle_bearing_replace", "{backend:?}");
        assert!(d["checklist"].as_array().unwrap().len() >= 3);
        assert!(!d["checklist"][0]["zh"].as_str().unwrap().is_empty());
        assert!(d["suggested_parts"].as_array().unwrap().iter().any(|p| p["sku"].as_str().unwrap().starts_with("SPB-")), "{}", d["suggested_parts"]);

        app.post(&format!("/api/v1/assignments/{aid}/answer"), &w.near.token, json!({ "accept": true })).await.ok();
        assert_eq!(app.get(&format!("/api/v1/work-orders/{wo}"), &admin).await.ok()["status"], "scheduled");
        app.post(&format!("/api/v1/assignments/{aid}/progress"), &w.near.token, json!({ "stage": "en_route" })).await.ok();
        app.post(&format!("/api/v1/assignments/{aid}/progress"), &w.near.token, json!({ "stage": "on_site" })).await.ok();
        assert_eq!(app.get(&format!("/api/v1/work-orders/{wo}"), &admin).await.ok()["status"], "on_site");

        // A fixed visit without sign-off is refused; with it, one bearing used.
        let r = app.post(&format!("/api/v1/assignments/{aid}/report"), &w.near.token, json!({ "outcome": "fixed" })).await;
        assert_eq!(r.status.as_u16(), 422, "{}", r.body);
        let rep = app
            .post(&format!("/api/v1/assignments/{aid}/report"), &w.near.token,
                json!({ "outcome": "fixed", "signed_by": "Zhao Min", "parts_used": [{ "sku": w.sku, "quantity": 1 }],
                    "checklist": [{ "item": "Lock out the spindle drive", "done": true }, { "item": "Vibration re-check below 2 mm/s", "done": true, "note": "1.4 mm/s" }] }))
            .await
            .ok();
        assert_eq!(rep["status"], "done");
        let wo_now = app.get(&format!("/api/v1/work-orders/{wo}"), &admin).await.ok();
        assert_eq!(wo_now["status"], "resolved_on_site");
        // One consumed, one released: 3 on hand, none reserved.
        let stock = app.get(&format!("/api/v1/stock?sku={}", w.sku), &admin).await.ok();
        assert_eq!(stock_of(&stock, &w.sku), (3, 0), "{backend:?}");
        let techs = app.get("/api/v1/technicians", &admin).await.ok();
        let near = techs["items"].as_array().unwrap().iter().find(|t| t["user_id"] == w.near.user_id.as_str()).unwrap();
        assert_eq!(near["open_jobs"], 0, "the slot is free again");

        // The event log holds the whole onsite story, and replays to the row.
        let ev = app.get(&format!("/api/v1/work-orders/{wo}/events?limit=100"), &admin).await.ok();
        let kinds: Vec<&str> = ev["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        for k in ["escalation_recorded", "parts_reserved", "technician_offered", "assignment_answered", "visit_progress", "visit_report", "parts_consumed", "parts_released"] {
            assert!(kinds.contains(&k), "{backend:?}: {k} in {kinds:?}");
        }
        let id = wo.parse().unwrap();
        let events = fixline::work_orders::repo::all_events(app.db(), id).await.unwrap();
        let stored = fixline::work_orders::repo::get(app.db(), id).await.unwrap().unwrap();
        assert_eq!(fixline::work_orders::replay(&events).unwrap(), stored);
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_escalations_never_reserve_more_than_is_in_stock() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let w = world(&app, 5).await;
        let mut wos = Vec::new();
        for _ in 0..16 {
            wos.push(spindle_work_order(&app, &w, "P3").await);
        }
        let paths: Vec<String> = wos.iter().map(|wo| format!("/api/v1/work-orders/{wo}/escalate")).collect();
        let tasks: Vec<_> = paths
            .iter()
            .map(|path| app.post(path, &app.admin_token, json!({ "reason": "onsite", "parts": [{ "sku": w.sku, "quantity": 1 }] })))
            .collect();
        let results = futures_util::future::join_all(tasks).await;
        let mut reserved = 0;
        let mut short = 0;
        for (r, wo) in results.into_iter().zip(&wos) {
            assert_eq!(r.status.as_u16(), 200, "{backend:?}: {}", r.body);
            let d = app.get(&format!("/api/v1/work-orders/{wo}/dossier"), &app.admin_token).await.ok();
            reserved += d["reservations"].as_array().unwrap().iter().map(|r| r["quantity"].as_i64().unwrap()).sum::<i64>();
            let ev = app.get(&format!("/api/v1/work-orders/{wo}/events?limit=100"), &app.admin_token).await.ok();
            for e in ev["items"].as_array().unwrap() {
                if e["kind"] == "parts_reserved" {
                    short += e["payload"]["shortages"].as_array().unwrap().iter().map(|s| s["quantity"].as_i64().unwrap()).sum::<i64>();
                }
            }
        }
        assert_eq!(reserved, 5, "{backend:?}: exactly the stock was reserved");
        assert_eq!(short, 11, "{backend:?}: the rest is reported short");
        let stock = app.get(&format!("/api/v1/stock?sku={}", w.sku), &app.admin_token).await.ok();
        assert_eq!(stock_of(&stock, &w.sku), (5, 5));
        // Available 0 < reorder level 2: one open safety-stock alert.
        let alerts = app.get("/api/v1/stock-alerts", &app.admin_token).await.ok();
        let open: Vec<_> = alerts["items"].as_array().unwrap().iter().filter(|a| a["sku"] == w.sku.as_str()).collect();
        assert_eq!(open.len(), 1, "{backend:?}: {alerts}");

        // Cancelling gives the parts back and resolves the alert once stock recovers.
        for wo in &wos {
            app.transition(wo, "cancelled", &app.admin_token).await.ok();
        }
        let stock = app.get(&format!("/api/v1/stock?sku={}", w.sku), &app.admin_token).await.ok();
        assert_eq!(stock_of(&stock, &w.sku), (5, 0), "{backend:?}");
        let alerts = app.get("/api/v1/stock-alerts", &app.admin_token).await.ok();
        assert!(alerts["items"].as_array().unwrap().iter().all(|a| a["sku"] != w.sku.as_str()), "{backend:?}: {alerts}");
        // Setting on_hand below what is reserved is refused.
        let wo = spindle_work_order(&app, &w, "P3").await;
        app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &app.admin_token, json!({ "reason": "x", "parts": [{ "sku": w.sku, "quantity": 3 }] })).await.ok();
        let wh = stock["items"].as_array().unwrap().iter().find(|i| i["sku"] == w.sku.as_str()).unwrap()["warehouse"].as_str().unwrap().to_owned();
        let r = app.req(Method::PUT, &format!("/api/v1/stock/{wh}/{}", w.sku), Some(&app.admin_token), Some(json!({ "on_hand": 2 }))).await;
        assert_eq!(r.problem(409), "conflict");
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_offers_never_exceed_a_technicians_job_limit() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let w = world(&app, 0).await;
        let solo = technician(&app, 31.3, 120.7, "SPN-CNC", 2).await;
        let mut wos = Vec::new();
        for _ in 0..8 {
            let wo = spindle_work_order(&app, &w, "P3").await;
            app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &app.admin_token, json!({ "reason": "onsite" })).await.ok();
            wos.push(wo);
        }
        let paths: Vec<String> = wos.iter().map(|wo| format!("/api/v1/work-orders/{wo}/assignments")).collect();
        let tasks: Vec<_> = paths.iter().map(|p| app.post(p, &app.admin_token, json!({ "technician_id": solo.user_id }))).collect();
        let results = futures_util::future::join_all(tasks).await;
        let ok = results.iter().filter(|r| r.status.as_u16() == 201).count();
        let conflict = results.iter().filter(|r| r.status.as_u16() == 409).count();
        assert_eq!((ok, conflict), (2, 6), "{backend:?}: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());

        // The same work order offered twice at once: one live assignment.
        let wo = spindle_work_order(&app, &w, "P3").await;
        app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &app.admin_token, json!({ "reason": "onsite" })).await.ok();
        let path = format!("/api/v1/work-orders/{wo}/assignments");
        let a = app.post(&path, &app.admin_token, json!({ "technician_id": w.near.user_id }));
        let b = app.post(&path, &app.admin_token, json!({ "technician_id": w.far.user_id }));
        let (a, b) = tokio::join!(a, b);
        let mut codes = [a.status.as_u16(), b.status.as_u16()];
        codes.sort();
        assert_eq!(codes, [201, 409], "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_declined_p1_goes_to_the_next_best_technician_automatically() {
    let app = spawn_with(Backend::Sqlite, |c| c.dispatch.auto_assign_priorities = vec!["P1".into()]).await;
    let w = world(&app, 3).await;
    let wo = spindle_work_order(&app, &w, "P1").await;
    app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &app.admin_token, json!({ "reason": "line down" })).await.ok();
    let offered_to = |who: String| {
        let app = &app;
        async move {
            for _ in 0..100 {
                let a = app.get("/api/v1/assignments", &app.admin_token).await.ok();
                if let Some(x) = a["items"].as_array().unwrap().iter().find(|x| x["technician_id"] == who.as_str() && x["status"] == "offered") {
                    return x.clone();
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("no offer to {who}");
        }
    };
    let first = offered_to(w.near.user_id.clone()).await;
    assert_eq!(first["auto"], true);
    let aid = first["id"].as_str().unwrap();
    app.post(&format!("/api/v1/assignments/{aid}/answer"), &w.near.token, json!({ "accept": false, "reason": "on leave" })).await.ok();
    let second = offered_to(w.far.user_id.clone()).await;
    assert_eq!(second["work_order_id"], wo.as_str());
    app.stop().await;
}

#[tokio::test]
async fn bad_dispatch_input_is_refused_with_a_clear_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token.clone();
    let w = world(&app, 1).await;
    let t = app.user(Role::Technician, None).await;
    let tpath = format!("/api/v1/technicians/{}", t.user_id);
    let put = |body: Value| app.req(Method::PUT, &tpath, Some(&admin), Some(body));
    let base = json!({ "region": "east", "home": { "latitude": 31.0, "longitude": 121.0 }, "skills": [], "max_jobs": 2 });
    let mut bad_tz = base.clone();
    bad_tz["hours"] = json!({ "timezone": "Mars/Olympus", "days": [1], "start_minute": 0, "end_minute": 60 });
    assert!(put(bad_tz).await.body["detail"].as_str().unwrap().contains("Mars/Olympus"));
    let mut bad_home = base.clone();
    bad_home["home"]["latitude"] = json!(123.0);
    assert_eq!(put(bad_home).await.status.as_u16(), 422);
    // A profile for someone who is not a technician.
    let e = app.user(Role::Expert, None).await;
    let r = app.req(Method::PUT, &format!("/api/v1/technicians/{}", e.user_id), Some(&admin), Some(base.clone())).await;
    assert_eq!(r.problem(404), "not-found");
    // Escalating with an unknown part or a silly quantity writes nothing.
    let wo = spindle_work_order(&app, &w, "P3").await;
    let r = app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &admin, json!({ "reason": "x", "parts": [{ "sku": "NOPE", "quantity": 1 }] })).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    let r = app.post(&format!("/api/v1/work-orders/{wo}/escalate"), &admin, json!({ "reason": "x", "parts": [{ "sku": w.sku, "quantity": -1 }] })).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(app.get(&format!("/api/v1/work-orders/{wo}"), &admin).await.ok()["status"], "triaged", "nothing was written");
    // Escalating a new (untriaged) work order is an illegal transition.
    let fresh = app.work_order(&w.customer, "P3").await["id"].as_str().unwrap().to_owned();
    let r = app.post(&format!("/api/v1/work-orders/{fresh}/escalate"), &admin, json!({ "reason": "x" })).await;
    assert_eq!(r.status.as_u16(), 409);
    // Offering a work order that is not escalated.
    let r = app.post(&format!("/api/v1/work-orders/{wo}/assignments"), &admin, json!({ "technician_id": w.near.user_id })).await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn sla_clocks_warn_once_and_breach_once_and_stop_when_answered() {
    use fixline::work_orders::sla_timers::tick;
    for backend in backends() {
        // Timers off in the background: the test drives `tick` with its own clock.
        let app = spawn_with(backend, |c| c.sla_timers.interval_secs = 0).await;
        let state = &app.running.as_ref().unwrap().state;
        let sla = state.config.sla;
        let customer = app.customer("standard").await;
        let wo = app.work_order(&customer, "P2").await;
        let id: fixline::ids::WorkOrderId = wo["id"].as_str().unwrap().parse().unwrap();
        let stored = fixline::work_orders::repo::get(app.db(), id).await.unwrap().unwrap();
        let (created, fr_due, res_due) = (stored.created_at, stored.first_response_due, stored.resolution_due);
        let at = |frac: f64, due: i64| created + ((due - created) as f64 * frac) as i64;

        // Before 80 % of the first-response window: nothing.
        assert!(tick(app.db(), &sla, at(0.5, fr_due), 80).await.unwrap().is_empty(), "{backend:?}");
        // At 85 %: one warning, once.
        let f = tick(app.db(), &sla, at(0.85, fr_due), 80).await.unwrap();
        assert_eq!(f.len(), 1, "{backend:?}: {f:?}");
        assert_eq!((f[0].1.clock, f[0].1.breached), ("first_response", false));
        assert!(tick(app.db(), &sla, at(0.9, fr_due), 80).await.unwrap().is_empty(), "{backend:?}: warns once");
        // Past the deadline: one breach, once.
        let f = tick(app.db(), &sla, fr_due + 1, 80).await.unwrap();
        assert!(f.iter().any(|(_, x)| x.clock == "first_response" && x.breached), "{backend:?}: {f:?}");
        assert!(tick(app.db(), &sla, fr_due + 2, 80).await.unwrap().iter().all(|(_, x)| x.clock != "first_response"));
        // A breached work order is flagged and listed as breached... of the resolution
        // clock; the first-response breach shows in its events.
        let ev = app.get(&format!("/api/v1/work-orders/{id}/events"), &app.admin_token).await.ok();
        let kinds: Vec<&str> = ev["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"sla_warning") && kinds.contains(&"sla_breached"), "{backend:?}: {kinds:?}");

        // A second work order answered in time: its first-response clock never fires,
        // and resolving it stops the resolution clock too.
        let wo2 = app.work_order(&customer, "P2").await;
        let id2 = wo2["id"].as_str().unwrap();
        app.transition(id2, "triaged", &app.admin_token).await.ok();
        app.transition(id2, "in_remote_session", &app.admin_token).await.ok();
        app.transition(id2, "resolved_remote", &app.admin_token).await.ok();
        let f = tick(app.db(), &sla, res_due + 3_600_000, 80).await.unwrap();
        assert!(f.iter().all(|(w, _)| w.to_string() != id2), "{backend:?}: {f:?}");
        // ...while the first one's resolution clock breaches.
        assert!(f.iter().any(|(w, x)| *w == id && x.clock == "resolution" && x.breached), "{backend:?}: {f:?}");
        let events = fixline::work_orders::repo::all_events(app.db(), id).await.unwrap();
        assert_eq!(fixline::work_orders::replay(&events).unwrap(), fixline::work_orders::repo::get(app.db(), id).await.unwrap().unwrap());
        app.stop().await;
    }
}
