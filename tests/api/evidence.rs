//! Evidence uploads: content addressing, type and size checks, no partial writes.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_photo_is_stored_by_content_hash_and_downloads_byte_for_byte() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let t = app.admin_token.clone();
        let customer = app.customer("standard").await;
        let wo = app.work_order(&customer, "P2").await;
        let id = wo["id"].as_str().unwrap();
        let path = format!("/api/v1/work-orders/{id}/evidence?kind=photo&filename=gearbox.png");
        let ev = app.raw(Method::POST, &path, Some(&t), "image/png", photo()).await.ok();
        let sha = ev["sha256"].as_str().unwrap();
        assert_eq!(sha, hex_sha256(&photo()));
        assert_eq!(ev["size_bytes"], photo().len());
        let on_disk = app.dir.0.join("evidence").join(&sha[..2]).join(sha);
        assert_eq!(std::fs::read(&on_disk).unwrap(), photo());
        // Same bytes twice: two evidence rows, one blob.
        let ev2 = app.raw(Method::POST, &path, Some(&t), "image/png", photo()).await.ok();
        assert_eq!(ev2["sha256"], ev["sha256"]);
        assert_ne!(ev2["id"], ev["id"]);
        let list = app.get(&format!("/api/v1/work-orders/{id}/evidence"), &t).await.ok();
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        let dl = app
            .client
            .get(format!("{}/api/v1/work-orders/{id}/evidence/{}", app.base, ev["id"].as_str().unwrap()))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(dl.headers()["content-type"], "image/png");
        assert_eq!(dl.bytes().await.unwrap().as_ref(), photo().as_slice());
        let events = app.get(&format!("/api/v1/work-orders/{id}/events"), &t).await.ok();
        assert_eq!(events["items"][1]["kind"], "evidence_attached");
        assert_eq!(events["items"][1]["payload"]["sha256"], sha);
        // Telemetry as CSV.
        // Telemetry as CSV (a real recording), with its rate and speed in the query.
        let mut csv = String::from("t,accel_g\n");
        for (i, v) in cwru("de12k/130_OR007_0hp.f32").iter().take(9000).enumerate() {
            csv.push_str(&format!("{},{v}\n", i as f64 / 12_000.0));
        }
        let r = app.raw(Method::POST, &format!("/api/v1/work-orders/{id}/evidence?kind=telemetry&sample_rate_hz=12000&rpm=1797"), Some(&t), "text/csv", csv.into_bytes()).await.ok();
        assert_eq!(r["diagnosis"]["hypotheses"][0]["fault_id"], "bearing.outer_race");
        app.stop().await;
    }
}

#[tokio::test]
async fn wrong_type_mismatched_bytes_empty_and_oversized_uploads_are_refused_without_a_trace() {
    let app = spawn_with(Backend::Sqlite, |c| c.limits.max_evidence_bytes = 4096).await;
    let t = app.admin_token.clone();
    let customer = app.customer("standard").await;
    let wo = app.work_order(&customer, "P2").await;
    let id = wo["id"].as_str().unwrap();
    let photo_url = format!("/api/v1/work-orders/{id}/evidence?kind=photo");
    assert_eq!(app.raw(Method::POST, &photo_url, Some(&t), "image/gif", b"GIF89a....".to_vec()).await.problem(415), "unsupported-media-type");
    app.raw(Method::POST, &photo_url, Some(&t), "image/png", b"not a png at all".to_vec()).await.problem(415);
    app.raw(Method::POST, &photo_url, Some(&t), "image/png", vec![]).await.problem(422);
    let mut big = photo();
    assert!(big.len() < 5000);
    big.resize(5000, 0);
    assert_eq!(app.raw(Method::POST, &photo_url, Some(&t), "image/png", big).await.problem(413), "payload-too-large");
    app.raw(Method::POST, &format!("/api/v1/work-orders/{id}/evidence?kind=video"), Some(&t), "image/png", photo())
        .await
        .problem(400);
    app.raw(Method::POST, &format!("/api/v1/work-orders/{id}/evidence?kind=photo&filename=../../etc/passwd"), Some(&t), "image/png", photo())
        .await
        .problem(422);
    // Nothing was recorded, and no stray temporary files remain.
    let list = app.get(&format!("/api/v1/work-orders/{id}/evidence"), &t).await.ok();
    assert!(list["items"].as_array().unwrap().is_empty());
    let tmp = std::fs::read_dir(app.dir.0.join("evidence/tmp")).unwrap().count();
    assert_eq!(tmp, 0);
    let events = app.get(&format!("/api/v1/work-orders/{id}/events"), &t).await.ok();
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    // A cancelled work order takes no more evidence.
    app.transition(id, "cancelled", &t).await.ok();
    assert_eq!(app.raw(Method::POST, &photo_url, Some(&t), "image/png", photo()).await.problem(409), "illegal-transition");
    let list = app.get(&format!("/api/v1/work-orders/{id}/evidence"), &t).await.ok();
    assert!(list["items"].as_array().unwrap().is_empty());
    app.post(&format!("/api/v1/work-orders/{id}/notes"), &t, json!({ "text": "closed case note" })).await.ok();
    app.stop().await;
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}
