//! The knowledge base over the API on SQLite and PostgreSQL: full-text search in English
//! and Chinese and by fault code, versioned edits, procedures proposed by a work
//! order's diagnosis and fault codes, and the reference drawings.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn ids(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn procedures_are_found_by_symptoms_in_both_languages_and_by_fault_code() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let t = app.admin_token.clone();
        let r = app.get("/api/v1/procedures?q=drill%20sparks%20and%20loses%20power%20carbon%20brushes", &t).await.ok();
        assert_eq!(ids(&r)[0], "proc.drill_carbon_brush_replace", "{backend:?}: {r}");
        let r = app.get(&format!("/api/v1/procedures?q={}", urlencode("电钻碳刷磨损打火")), &t).await.ok();
        assert!(ids(&r).iter().take(2).any(|i| i == "proc.drill_carbon_brush_replace"), "{backend:?}: {r}");
        // A product line's fault code finds the procedures of its fault.
        let r = app.get("/api/v1/procedures?q=SP-102", &t).await.ok();
        assert!(ids(&r).iter().any(|i| i.starts_with("proc.spindle_bearing")), "{backend:?}: {r}");
        // Narrowing by product line and fault.
        let r = app.get("/api/v1/procedures?q=bearing&product_line=MTR-IND&fault_id=bearing.ball", &t).await.ok();
        assert_eq!(ids(&r), ["proc.motor_bearing_ball"], "{backend:?}");
        // Query syntax is never interpreted.
        let r = app.get(&format!("/api/v1/procedures?q={}", urlencode("\" OR 1=1 -- NEAR(")), &t).await;
        assert_eq!(r.status.as_u16(), 200, "{backend:?}: {}", r.body);
        // No text: everything, narrowed.
        let r = app.get("/api/v1/procedures?product_line=ROLL-MILL", &t).await.ok();
        assert_eq!(ids(&r).len(), 6, "{backend:?}: six surface defects on the mill");
        app.stop().await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn editable(stored: &Value) -> Value {
    let mut p = stored.clone();
    for k in ["source", "created_by", "created_at", "expected_minutes"] {
        p.as_object_mut().unwrap().remove(k);
    }
    p
}

#[tokio::test]
async fn edits_are_versioned_validated_and_survive_a_resync_of_the_files() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let expert = app.user(fixline::auth::Role::Expert, None).await;
        let path = "/api/v1/procedures/proc.drill_carbon_brush_replace";
        let v1 = app.get(path, &expert.token).await.ok();
        assert_eq!(v1["version"], 1);
        assert_eq!(v1["source"], "file");
        let mut p = editable(&v1);
        p["steps"][0]["instruction_en"] = json!("Remove the battery pack and keep it away from the bench.");
        let v2 = app.req(Method::PUT, path, Some(&expert.token), Some(json!({ "procedure": p, "expected_version": 1 }))).await.ok();
        assert_eq!(v2["version"], 2, "{backend:?}");
        assert_eq!(v2["source"], "api");
        assert_eq!(app.get(path, &expert.token).await.ok()["steps"][0]["instruction_en"], "Remove the battery pack and keep it away from the bench.");
        assert_eq!(app.get(&format!("{path}?version=1"), &expert.token).await.ok()["steps"][0], v1["steps"][0]);
        // A stale edit is a conflict; an invalid one names the step and field.
        let r = app.req(Method::PUT, path, Some(&expert.token), Some(json!({ "procedure": p, "expected_version": 1 }))).await;
        assert_eq!(r.problem(409), "conflict", "{backend:?}");
        let mut bad = p.clone();
        bad["steps"][1]["parts"] = json!(["NO-SUCH-PART"]);
        let r = app.req(Method::PUT, path, Some(&expert.token), Some(json!({ "procedure": bad }))).await;
        assert_eq!(r.status.as_u16(), 422);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains("step 2") && detail.contains("NO-SUCH-PART"), "{detail}");
        // Customers and technicians cannot edit.
        let tech = app.user(fixline::auth::Role::Technician, None).await;
        assert_eq!(app.req(Method::PUT, path, Some(&tech.token), Some(json!({ "procedure": p }))).await.problem(403), "forbidden");
        // Start-up sync again (the files still say version 1): the edit stays current.
        let st = &app.running.as_ref().unwrap().state;
        assert_eq!(fixline::guidance::store::sync(app.db(), &st.guidance.library).await.unwrap(), 0);
        assert_eq!(app.get(path, &expert.token).await.ok()["version"], 2);
        let versions = app.get(&format!("{path}/versions"), &expert.token).await.ok();
        assert_eq!(versions["items"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 1]);
        // A brand-new procedure starts at version 1.
        let mut new = p.clone();
        new["id"] = json!("proc.drill_chuck_slips");
        let r = app.req(Method::PUT, "/api/v1/procedures/proc.drill_chuck_slips", Some(&expert.token), Some(json!({ "procedure": new }))).await.ok();
        assert_eq!(r["version"], 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_work_orders_fault_codes_and_diagnosis_propose_procedures() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let customer = app.customer("key").await;
    let lines = app.get("/api/v1/product-lines", &t).await.ok();
    let spn = lines["items"].as_array().unwrap().iter().find(|l| l["code"] == "SPN-CNC").unwrap()["id"].clone();
    let asset = app.post("/api/v1/assets", &t, json!({ "customer_id": customer, "product_line_id": spn, "model": "VMC", "serial_number": "S-G1" })).await.ok();
    let wo = app
        .post("/api/v1/work-orders", &t, json!({ "customer_id": customer, "asset_id": asset["id"], "title": "Spindle is loud", "fault_codes": ["SP-102"] }))
        .await
        .ok();
    let s = app.get(&format!("/api/v1/work-orders/{}/procedures", wo["id"].as_str().unwrap()), &t).await.ok();
    assert_eq!(s["product_line"], "SPN-CNC");
    assert_eq!(s["items"][0]["fault_id"], "bearing.outer_race", "{s}");
    let procs: Vec<&str> = s["items"][0]["procedures"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    // Remote-capable first: confirm by measurement before replacing the bearings.
    assert_eq!(procs, ["proc.spindle_bearing_confirm", "proc.spindle_bearing_replace"], "{s}");
    // The drawing a step card shows, and no way out of the images folder.
    let img = app.req(Method::GET, "/api/v1/knowledge/images/spindle_cartridge.svg", None, None).await;
    assert_eq!(img.status.as_u16(), 200);
    assert_eq!(img.content_type, "image/svg+xml");
    for bad in ["../procedures.json", "..%2Fprocedures.json", "x.exe", "a/../../b.svg"] {
        let r = app.req(Method::GET, &format!("/api/v1/knowledge/images/{bad}"), None, None).await;
        assert_eq!(r.status.as_u16(), 404, "{bad}");
    }
    app.stop().await;
}
