//! Probes, metrics and the sample configuration.

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn probes_answer_and_metrics_count_requests_by_route() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.req(Method::GET, "/healthz", None, None).await.ok()["status"], "ok");
    assert_eq!(app.req(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
    app.get("/api/v1/work-orders", &app.admin_token).await.ok();
    app.get("/api/v1/work-orders/not-an-id", &app.admin_token).await.problem(400);
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("fixline_http_requests_total{method=\"GET\",route=\"/api/v1/work-orders\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("route=\"/api/v1/work-orders/{id}\",status=\"400\"} 1"), "{text}");
    assert!(text.contains("fixline_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/work-orders\",le=\"+Inf\"} 1"));
    // Raw ids never become labels.
    assert!(!text.contains("not-an-id"));
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app(Backend::Sqlite).await;
    app.db().pool.close().await;
    let r = app.req(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(app.req(Method::GET, "/healthz", None, None).await.status.as_u16(), 200);
}

#[test]
fn the_sample_config_loads_and_equals_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fixline.sample.toml");
    let c = fixline::config::Config::load(Some(&path), Vec::<(String, String)>::new(), &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let d = fixline::config::Config::default();
    assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::to_value(&d).unwrap());
}

#[test]
fn a_config_file_with_an_unknown_or_invalid_key_is_rejected_naming_the_key() {
    let dir = TempDir::new();
    let f = dir.0.join("c.toml");
    std::fs::write(&f, "[limits]\nmax_page_sise = 10\n").unwrap();
    let e = fixline::config::Config::load(Some(&f), Vec::<(String, String)>::new(), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("limits.max_page_sise") || e.contains("max_page_sise"), "{e}");
    std::fs::write(&f, "listen = \"nowhere\"\n").unwrap();
    let e = fixline::config::Config::load(Some(&f), Vec::<(String, String)>::new(), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("listen"), "{e}");
    std::fs::write(&f, "[sla.key.p2]\nfirst_response_minutes = 600\nresolution_minutes = 60\n").unwrap();
    let e = fixline::config::Config::load(Some(&f), Vec::<(String, String)>::new(), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("sla.key.p2"), "{e}");
}
