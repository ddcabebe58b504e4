//! Bad input gets a clear 4xx problem+json, never a 500 and never a partial write.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn malformed_bodies_unknown_fields_bad_ids_and_wrong_methods_get_clear_4xx() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let customer = app.customer("standard").await;
    let url = format!("{}/api/v1/work-orders", app.base);
    let send_raw = |ct: &'static str, body: &'static str| {
        app.client.post(&url).bearer_auth(&t).header("content-type", ct).body(body).send()
    };
    let r = send_raw("application/json", "{\"title\": ").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:fixline:problem:bad-request");
    assert!(p["detail"].as_str().unwrap().contains("malformed JSON"));
    assert_eq!(send_raw("text/plain", "{}").await.unwrap().status().as_u16(), 415);

    let r = app.post("/api/v1/work-orders", &t, json!({ "customer_id": customer, "title": "x", "colour": "red" })).await;
    assert_eq!(r.problem(422), "validation");
    assert!(r.body["detail"].as_str().unwrap().contains("colour"));
    let r = app.post("/api/v1/work-orders", &t, json!({ "customer_id": customer, "title": "x", "priority": "P9" })).await;
    assert!(r.body["detail"].as_str().unwrap().contains("priority"));
    r.problem(422);
    app.post("/api/v1/work-orders", &t, json!({ "customer_id": customer, "title": "   " })).await.problem(422);
    app.post("/api/v1/work-orders", &t, json!({ "customer_id": "not-a-uuid", "title": "x" })).await.problem(400);
    app.post("/api/v1/work-orders", &t, json!({ "customer_id": uuid::Uuid::now_v7(), "title": "x" })).await.problem(422);
    app.get("/api/v1/work-orders/12345", &t).await.problem(400);
    app.get(&format!("/api/v1/work-orders/{}", uuid::Uuid::now_v7()), &t).await.problem(404);
    app.post(&format!("/api/v1/work-orders/{}/transitions", uuid::Uuid::now_v7()), &t, json!({ "to": "triaged" })).await.problem(404);

    // Oversized JSON body.
    let huge = "x".repeat(300 * 1024);
    assert_eq!(app.post("/api/v1/work-orders", &t, json!({ "customer_id": customer, "title": huge })).await.problem(413), "payload-too-large");
    // Unknown route and wrong method.
    assert_eq!(app.get("/api/v1/nothing-here", &t).await.problem(404), "not-found");
    assert_eq!(app.req(Method::DELETE, "/api/v1/work-orders", Some(&t), None).await.problem(405), "method-not-allowed");
    // Bad query strings.
    app.get("/api/v1/work-orders?limit=abc", &t).await.problem(400);
    app.get("/api/v1/work-orders?limit=100000", &t).await.problem(400);
    app.get("/api/v1/customers?tier=gold", &t).await.problem(400);

    // None of that wrote anything.
    let list = app.get("/api/v1/work-orders", &t).await.ok();
    assert!(list["items"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn reference_data_validation_rejects_inconsistent_assets_and_sites() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let a = app.customer("key").await;
    let b = app.customer("key").await;
    let pl = app.post("/api/v1/product-lines", &t, json!({ "code": "AGR", "name_en": "Grinder", "name_zh": "角磨机", "category": "power_tool" })).await.ok();
    let pl = pl["id"].as_str().unwrap();
    let site_b = app.post(&format!("/api/v1/customers/{b}/sites"), &t, json!({ "name": "B", "address": "b", "latitude": 10.0, "longitude": 10.0 })).await.ok();
    app.post(&format!("/api/v1/customers/{a}/sites"), &t, json!({ "name": "A", "address": "a", "latitude": 91.0, "longitude": 0.0 })).await.problem(422);
    let body = json!({ "customer_id": a, "site_id": site_b["id"], "product_line_id": pl, "model": "m", "serial_number": "s1" });
    app.post("/api/v1/assets", &t, body).await.problem(422);
    let body = json!({ "customer_id": a, "product_line_id": pl, "model": "m", "serial_number": "s1", "purchase_date": "2024-13-01" });
    app.post("/api/v1/assets", &t, body).await.problem(422);
    let body = json!({ "customer_id": a, "product_line_id": pl, "model": "m", "serial_number": "s1", "purchase_date": "2024-02-01", "warranty_until": "2099-02-01" });
    let asset = app.post("/api/v1/assets", &t, body.clone()).await.ok();
    assert_eq!(asset["under_warranty"], true);
    assert_eq!(app.post("/api/v1/assets", &t, body).await.problem(409), "conflict");
    let fc = json!({ "fault_id": "motor.brush", "description_en": "Brushes", "description_zh": "碳刷", "severity": "warning" });
    app.req(Method::PUT, &format!("/api/v1/product-lines/{pl}/fault-codes/E01"), Some(&t), Some(fc)).await.ok();
    let detail = app.get(&format!("/api/v1/product-lines/{pl}"), &t).await.ok();
    assert_eq!(detail["fault_codes"][0]["code"], "E01");
    assert_eq!(detail["name_zh"], "角磨机");
    let body = json!({ "customer_id": b, "asset_id": asset["id"], "title": "wrong owner" });
    app.post("/api/v1/work-orders", &t, body).await.problem(422);
    app.stop().await;
}
