//! Guidance in a real browser call (tests/browser/guidance.mjs): the expert's arrow
//! lands on the customer's overlay at the expected coordinates, the annotation latency
//! is measured, step cards are answered and recorded, and an annotated snapshot is
//! saved to the work order as PNG evidence (raw and annotated).

use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expert_annotates_and_guides_a_customer_through_step_cards_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = repo_path("tests/browser/guidance.mjs");
    let ready = Path::new(&chromium).exists() && repo_path("tests/browser/node_modules/playwright-core").exists();
    if !ready {
        assert!(std::env::var("FIXLINE_REQUIRE_BROWSER").is_err(), "FIXLINE_REQUIRE_BROWSER is set but Chromium or playwright-core is missing");
        eprintln!("note: Chromium or playwright-core missing (scripts/setup.sh --test); browser test skipped");
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.admin_token.clone();
    let customer = app.customer("key").await;
    let wid = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
    let inv = app.post(&format!("/api/v1/work-orders/{wid}/invites"), &t, json!({})).await.ok();
    let expert = app.user(fixline::auth::Role::Expert, None).await;
    let y4m = app.dir.0.join("camera.y4m");
    crate::browser::write_y4m(&y4m);
    let arrows = std::env::var("GUIDANCE_ARROWS").unwrap_or_else(|_| "30".into());
    let args = vec![app.base.clone(), inv["url"].as_str().unwrap().to_owned(), expert.username.clone(), expert.password.clone(), y4m.to_string_lossy().into_owned(), wid.clone(), arrows];
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("node").arg(&script).args(&args).env("CHROMIUM", &chromium).output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(json!({ "raw": stdout }));
    assert!(out.status.success() && result["ok"] == true, "browser guidance failed: {result}");
    assert_eq!(result["arrowPlaced"], true);
    assert_eq!(result["expertSawAnswers"], json!(["done", "failed"]));
    assert_eq!(result["card1Safety"], true, "the first brush step carries its safety notice");
    eprintln!("annotation latency (ms): {}", result["latency"]);
    assert!(!result["explanation"].as_str().unwrap_or_default().is_empty(), "{result}");

    // The answers are on the record.
    let ev = app.get(&format!("/api/v1/work-orders/{wid}/events?limit=200"), &t).await.ok();
    let answers: Vec<(u64, String)> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step_answered")
        .map(|e| (e["payload"]["index"].as_u64().unwrap(), e["payload"]["answer"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(answers, [(1, "done".to_owned()), (2, "failed".to_owned())]);
    // The snapshot: a raw frame and an annotated one, both PNG, and they differ.
    let list = app.get(&format!("/api/v1/work-orders/{wid}/evidence"), &t).await.ok();
    let saved = |prefix: &str| list["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "snapshot" && e["filename"].as_str().is_some_and(|f| f.starts_with(prefix))).cloned().collect::<Vec<Value>>();
    let snaps = [saved("frame-"), saved("annotated-")].concat();
    assert_eq!(snaps.len(), 2, "{list}");
    // ...and the server-side snapshot the explanation was computed for.
    assert_eq!(saved("snapshot").len(), 1, "{list}");
    assert_ne!(snaps[0]["sha256"], snaps[1]["sha256"]);
    app.stop().await;
}
