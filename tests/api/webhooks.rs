//! Outgoing webhooks end to end, on loopback: a receiver started inside the test records
//! every request (and can be told to fail the first N), the server delivers work-order
//! events to it, and the test checks order, the Standard Webhooks signature (verified
//! here independently of the server's code), retries, the delivery log, kind filters,
//! deletion, 410 Gone, https, input validation and that secrets never come back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

struct Shared {
    log: Mutex<Vec<Received>>,
    /// Answer `fail_status` to this many requests first.
    fail_first: AtomicUsize,
    fail_status: u16,
}

/// A webhook receiver on 127.0.0.1, plain HTTP or TLS.
struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    https: bool,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let failing = s.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if failing { s.fail_status } else { 204 };
    s.log.lock().unwrap().push(Received {
        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        content_type: h("content-type"),
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

async fn receiver_with(fail_first: usize, fail_status: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
    let shared = Arc::new(Shared { log: Mutex::new(Vec::new()), fail_first: AtomicUsize::new(fail_first), fail_status });
    let router = axum::Router::new().fallback(axum::routing::post(record)).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let https = tls.is_some();
    let task = match tls {
        Some(acceptor) => tokio::spawn(async move {
            let _ = fixline::tls::serve(listener, acceptor, router, std::future::pending(), Duration::ZERO).await;
        }),
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }),
    };
    Receiver { addr, shared, task, https }
}

async fn receiver(fail_first: usize) -> Receiver {
    receiver_with(fail_first, 500, None).await
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", if self.https { "https" } else { "http" }, self.addr)
    }

    fn log(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests about one work order, in arrival order.
    fn for_work_order(&self, wo: &str) -> Vec<Received> {
        self.log().into_iter().filter(|r| r.json()["data"]["work_order_id"] == wo).collect()
    }

    /// Waits until `done` holds for the log (or fails after 20 s).
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..400 {
            let log = self.log();
            if done(&log) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}; got {:#?}", self.log().iter().map(|r| (r.status, r.json())).collect::<Vec<_>>());
    }
}

/// Standard Webhooks verification, written from the specification and independent of
/// the server: HMAC-SHA256 keyed by the base64-decoded part after `whsec_`, over
/// `{id}.{timestamp}.{body}`, compared with each `v1,` entry of the header.
fn verify(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    r.signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(r.id.as_bytes());
        mac.update(b".");
        mac.update(r.timestamp.as_bytes());
        mac.update(b".");
        mac.update(&r.body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// Fast polling and a short backoff so retries happen within the test.
fn fast(c: &mut fixline::config::Config) {
    c.webhooks.poll_interval_ms = 50;
    c.webhooks.retry_backoff_ms = vec![100, 200];
    c.webhooks.timeout_secs = 5;
}

async fn register(app: &TestApp, url: &str, kinds: Value) -> Value {
    let r = app.post("/api/v1/webhooks", &app.admin_token, json!({ "url": url, "description": "CRM", "event_kinds": kinds })).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body
}

async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/webhooks/{endpoint}/deliveries"), &app.admin_token).await.ok()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn work_order_events_reach_an_endpoint_signed_in_order_and_a_failing_receiver_is_retried() {
    for backend in backends() {
        let app = spawn_with(backend, fast).await;
        let admin = app.admin_token.clone();
        // The receiver fails its first two requests: the first event is retried, the
        // later ones wait for it (per-work-order order).
        let rx = receiver(2).await;
        let created = register(&app, &rx.url("/hooks/crm?token=abc"), json!([])).await;
        let endpoint = created["id"].as_str().unwrap().to_owned();
        let secret = created["secret"].as_str().expect("the secret, once").to_owned();
        assert!(secret.starts_with("whsec_"), "{backend:?}: {secret}");
        assert_eq!(created["active"], true);
        assert_eq!(created["event_kinds"], json!([]));

        let customer = app.customer("key").await;
        let wo = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
        app.transition(&wo, "triaged", &admin).await.ok();
        app.post(&format!("/api/v1/work-orders/{wo}/notes"), &admin, json!({ "text": "Customer sent a video" })).await.ok();
        app.transition(&wo, "in_remote_session", &admin).await.ok();
        app.transition(&wo, "resolved_remote", &admin).await.ok();
        let events = app.get(&format!("/api/v1/work-orders/{wo}/events"), &admin).await.ok()["items"].as_array().unwrap().clone();
        let n = events.len();
        assert_eq!(n, 5, "{backend:?}: created, 3 transitions, a note");

        let log = rx
            .wait_for("every event acknowledged", |log| {
                log.iter().filter(|r| r.status == 204 && r.json()["data"]["work_order_id"] == wo.as_str()).count() >= n
            })
            .await;
        let mine = rx.for_work_order(&wo);
        assert_eq!(mine.len(), n + 2, "{backend:?}: two failed attempts, then one request per event");

        // In seq order, whatever the retries: the failed first event held the rest back.
        let seqs: Vec<i64> = mine.iter().map(|r| r.json()["data"]["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [1, 1, 1, 2, 3, 4, 5], "{backend:?}");
        assert_eq!(mine.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 500, 204, 204, 204, 204, 204]);

        for (r, ev) in mine.iter().skip(2).zip(&events) {
            assert!(verify(&secret, r), "{backend:?}: the signature verifies with the secret: {r:?}");
            assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r), "and not with another");
            assert_eq!(r.path, "/hooks/crm?token=abc");
            assert_eq!(r.content_type, "application/json");
            let ts: i64 = r.timestamp.parse().expect("webhook-timestamp is integer seconds");
            assert!((ts - fixline::now_millis() / 1000).abs() < 120, "{backend:?}: a current timestamp");
            assert!(!r.id.is_empty() && !r.id.contains('.'));
            let body = r.json();
            assert_eq!(body["type"], format!("work_order.{}", ev["kind"].as_str().unwrap()), "{backend:?}");
            assert_eq!(body["timestamp"], ev["occurred_at"]);
            assert_eq!(body["data"]["seq"], ev["seq"]);
            assert_eq!(body["data"]["actor"], ev["actor"]);
            assert_eq!(body["data"]["occurred_at"], ev["occurred_at"]);
            assert_eq!(body["data"]["event"], ev["payload"], "{backend:?}: the stored event as is");
        }
        // Retries carry the same webhook-id (receivers dedupe on it), each signed afresh.
        assert!(mine[0].id == mine[1].id && mine[1].id == mine[2].id);
        assert!(mine.iter().all(|r| verify(&secret, r)));
        let ids: std::collections::HashSet<&str> = mine.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), n, "one webhook-id per event");

        // The delivery log: newest first, attempts and outcome per event.
        let log_entries = deliveries(&app, &endpoint).await;
        assert_eq!(log_entries.len(), n, "{backend:?}: {log_entries:#?}");
        let seqs: Vec<i64> = log_entries.iter().map(|d| d["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [5, 4, 3, 2, 1], "{backend:?}: newest first");
        let first = &log_entries[4];
        assert_eq!(first["status"], "delivered");
        assert_eq!(first["attempts"], 3, "{backend:?}: {first}");
        assert_eq!(first["last_status_code"], 204);
        assert_eq!(first["type"], "work_order.created");
        assert_eq!(first["webhook_id"], mine[0].id.as_str());
        assert_eq!(first["work_order_id"], wo.as_str());
        assert!(first["delivered_at"].is_string() && first["next_attempt_at"].is_null());
        assert!(log_entries[..4].iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1));
        let failed = app.get(&format!("/api/v1/webhooks/{endpoint}/deliveries?status=failed"), &admin).await.ok();
        assert_eq!(failed["items"], json!([]));
        let page = app.get(&format!("/api/v1/webhooks/{endpoint}/deliveries?limit=2"), &admin).await.ok();
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let rest = app.get(&format!("/api/v1/webhooks/{endpoint}/deliveries?limit=10&cursor={}", page["next_cursor"].as_str().unwrap()), &admin).await.ok();
        assert_eq!(rest["items"].as_array().unwrap().len(), 3);

        // The secret never comes back: not in the list, the log or the update answer.
        let list = app.get("/api/v1/webhooks", &admin).await.ok();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert!(list["items"][0].get("secret").is_none());
        let patched = app.req(Method::PATCH, &format!("/api/v1/webhooks/{endpoint}"), Some(&admin), Some(json!({ "description": "CRM (prod)" }))).await.ok();
        assert_eq!(patched["description"], "CRM (prod)");
        for text in [list.to_string(), patched.to_string(), serde_json::to_string(&log_entries).unwrap()] {
            assert!(!text.contains(&secret[6..]), "{backend:?}: the secret leaked: {text}");
        }
        // Nothing is delivered twice, however often the window is re-scanned.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.for_work_order(&wo).len(), n + 2, "{backend:?}");
        assert_eq!(log.iter().filter(|r| r.status == 204).count(), rx.log().iter().filter(|r| r.status == 204).count());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_filtered_endpoint_gets_only_its_kinds_a_ping_always_and_a_deleted_one_nothing_more() {
    for backend in backends() {
        let app = spawn_with(backend, fast).await;
        let admin = app.admin_token.clone();
        let filtered = receiver(0).await;
        let everything = receiver(0).await;
        let f = register(&app, &filtered.url("/f"), json!(["work_order.status_changed"])).await;
        assert_eq!(f["event_kinds"], json!(["status_changed"]), "stored as bare kinds");
        let e = register(&app, &everything.url("/e"), json!([])).await;
        let e_id = e["id"].as_str().unwrap().to_owned();

        let customer = app.customer("standard").await;
        let wo = app.work_order(&customer, "P3").await["id"].as_str().unwrap().to_owned();
        app.transition(&wo, "triaged", &admin).await.ok();
        app.post(&format!("/api/v1/work-orders/{wo}/notes"), &admin, json!({ "text": "x" })).await.ok();
        let all = everything.wait_for("three events", |l| l.len() >= 3).await;
        let kinds: Vec<Value> = all.iter().map(|r| r.json()["type"].clone()).collect();
        assert_eq!(kinds, [json!("work_order.created"), json!("work_order.status_changed"), json!("work_order.note_added")], "{backend:?}");
        let only = filtered.wait_for("the status change", |l| !l.is_empty()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let only_now = filtered.log();
        assert_eq!(only_now.len(), 1, "{backend:?}: {only:?}");
        assert_eq!(only_now[0].json()["type"], "work_order.status_changed");
        assert_eq!(only_now[0].json()["data"]["event"]["to"], "triaged");

        // A ping goes out whatever the filter, signed like everything else.
        let ping = app.req(Method::POST, &format!("/api/v1/webhooks/{}/test", f["id"].as_str().unwrap()), Some(&admin), None).await;
        assert_eq!(ping.status.as_u16(), 202, "{}", ping.body);
        assert_eq!(ping.body["type"], "webhook.ping");
        let got = filtered.wait_for("the ping", |l| l.len() >= 2).await;
        assert_eq!(got[1].json()["type"], "webhook.ping");
        assert_eq!(got[1].id, ping.body["webhook_id"].as_str().unwrap());
        assert!(verify(f["secret"].as_str().unwrap(), &got[1]));

        // Deleting an endpoint stops its deliveries.
        let r = app.req(Method::DELETE, &format!("/api/v1/webhooks/{e_id}"), Some(&admin), None).await;
        assert_eq!(r.status.as_u16(), 204, "{}", r.body);
        assert_eq!(app.get(&format!("/api/v1/webhooks/{e_id}/deliveries"), &admin).await.problem(404), "not-found");
        assert_eq!(app.req(Method::DELETE, &format!("/api/v1/webhooks/{e_id}"), Some(&admin), None).await.problem(404), "not-found");
        let before = everything.log().len();
        app.transition(&wo, "in_remote_session", &admin).await.ok();
        // The filtered endpoint gets this one: by then the deleted one would have too.
        filtered.wait_for("the second status change", |l| l.len() >= 3).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(everything.log().len(), before, "{backend:?}: nothing after deletion");
        let list = app.get("/api/v1/webhooks", &admin).await.ok();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn an_endpoint_that_answers_410_gone_is_deactivated_and_can_be_resumed() {
    let app = spawn_with(Backend::Sqlite, fast).await;
    let admin = app.admin_token.clone();
    let rx = receiver_with(1, 410, None).await;
    let e = register(&app, &rx.url("/gone"), json!(["status_changed"])).await;
    let id = e["id"].as_str().unwrap().to_owned();
    let customer = app.customer("key").await;
    let wo = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
    app.transition(&wo, "triaged", &admin).await.ok();
    rx.wait_for("the 410", |l| !l.is_empty()).await;
    let mut endpoint = Value::Null;
    for _ in 0..100 {
        endpoint = app.get("/api/v1/webhooks", &admin).await.ok()["items"][0].clone();
        if endpoint["active"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(endpoint["active"], false, "{endpoint}");
    let d = deliveries(&app, &id).await;
    assert_eq!((d[0]["status"].as_str(), d[0]["last_status_code"].as_i64(), d[0]["attempts"].as_i64()), (Some("failed"), Some(410), Some(1)));
    assert_eq!(d[0]["last_error"], "HTTP 410 Gone");
    // Inactive: no pings, no new deliveries.
    assert_eq!(app.req(Method::POST, &format!("/api/v1/webhooks/{id}/test"), Some(&admin), None).await.problem(409), "conflict");
    app.transition(&wo, "in_remote_session", &admin).await.ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.log().len(), 1);
    // Resumed: events from then on are delivered, the ones in between are not.
    let r = app.req(Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&admin), Some(json!({ "active": true }))).await.ok();
    assert_eq!(r["active"], true);
    app.transition(&wo, "resolved_remote", &admin).await.ok();
    let log = rx.wait_for("the event after resuming", |l| l.len() >= 2).await;
    assert_eq!(log[1].json()["data"]["event"]["to"], "resolved_remote");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.log().len(), 2, "the event while inactive is not replayed");
    app.stop().await;
}

#[tokio::test]
async fn https_endpoints_are_verified_against_the_configured_ca() {
    let certs = TempDir::new();
    let trusted = fixline::tls::acceptor(&fixline::tls::CertSource::SelfSigned { dir: certs.0.join("trusted"), names: vec!["127.0.0.1".into()] }).unwrap();
    let other = fixline::tls::acceptor(&fixline::tls::CertSource::SelfSigned { dir: certs.0.join("other"), names: vec!["127.0.0.1".into()] }).unwrap();
    let ca = certs.0.join("trusted/self-signed.crt");
    let app = spawn_with(Backend::Sqlite, |c| {
        fast(c);
        c.webhooks.max_attempts = 1;
        c.webhooks.ca_file = ca.clone();
    })
    .await;
    let good = receiver_with(0, 500, Some(trusted)).await;
    let bad = receiver_with(0, 500, Some(other)).await;
    let g = register(&app, &good.url("/tls"), json!(["created"])).await;
    let b = register(&app, &bad.url("/tls"), json!(["created"])).await;
    let customer = app.customer("key").await;
    let wo = app.work_order(&customer, "P2").await["id"].as_str().unwrap().to_owned();
    let got = good.wait_for("the event over https", |l| !l.is_empty()).await;
    assert_eq!(got[0].json()["data"]["work_order_id"], wo.as_str());
    assert!(verify(g["secret"].as_str().unwrap(), &got[0]));
    // A certificate the CA file does not vouch for: no request, a TLS error in the log.
    let b_id = b["id"].as_str().unwrap();
    let mut d = Vec::new();
    for _ in 0..100 {
        d = deliveries(&app, b_id).await;
        if d.first().is_some_and(|d| d["status"] == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d[0]["status"], "failed", "{d:?}");
    assert!(d[0]["last_error"].as_str().unwrap().contains("TLS"), "{d:?}");
    assert!(d[0]["last_status_code"].is_null());
    assert!(bad.log().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bad_webhook_input_is_refused_naming_the_field() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token.clone();
    let create = |body: Value| {
        let admin = admin.clone();
        let app = &app;
        async move { app.post("/api/v1/webhooks", &admin, body).await }
    };
    for (body, field) in [
        (json!({ "url": "ftp://crm.example.com/hook" }), "url"),
        (json!({ "url": "https://user:pw@crm.example.com/hook" }), "url"),
        (json!({ "url": "crm.example.com/hook" }), "url"),
        (json!({ "url": format!("https://crm.example.com/{}", "a".repeat(3000)) }), "url"),
        (json!({ "url": "https://crm.example.com/hook", "description": "d".repeat(501) }), "description"),
        (json!({ "url": "https://crm.example.com/hook", "event_kinds": ["status_changed", "exploded"] }), "event_kinds"),
        (json!({ "url": "https://crm.example.com/hook", "secret": "whsec_mine" }), "secret"),
        (json!({ "url": 5 }), "url"),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.problem(422), "validation", "{body}");
        assert!(r.body["detail"].as_str().unwrap().contains(field), "{body}: {}", r.body);
    }
    let r = app.req(Method::PATCH, &format!("/api/v1/webhooks/{}", uuid::Uuid::now_v7()), Some(&admin), Some(json!({ "event_kinds": ["nope"] }))).await;
    assert!(r.problem(422) == "validation" && r.body["detail"].as_str().unwrap().contains("event_kinds"));
    assert_eq!(app.req(Method::PATCH, &format!("/api/v1/webhooks/{}", uuid::Uuid::now_v7()), Some(&admin), Some(json!({ "active": false }))).await.problem(404), "not-found");
    assert_eq!(app.get("/api/v1/webhooks/not-an-id/deliveries", &admin).await.problem(400), "bad-request");
    assert_eq!(app.get(&format!("/api/v1/webhooks/{}/deliveries?status=lost", uuid::Uuid::now_v7()), &admin).await.problem(400), "bad-request");
    // A cap on endpoints.
    for i in 0..50 {
        create(json!({ "url": format!("https://crm.example.com/hook/{i}") })).await.ok();
    }
    assert_eq!(create(json!({ "url": "https://crm.example.com/one-too-many" })).await.problem(409), "conflict");
    assert_eq!(app.get("/api/v1/webhooks", &admin).await.ok()["items"].as_array().unwrap().len(), 50);
    app.stop().await;
}
