//! `spawn_app()` and typed request helpers.

use std::path::PathBuf;

use fixline::app::Running;
use fixline::auth::Role;
use fixline::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends storage-sensitive tests run on. With `FIXLINE_REQUIRE_POSTGRES=1` a
/// missing PostgreSQL URL is a failure, not a skip.
pub fn backends() -> Vec<Backend> {
    match std::env::var("FIXLINE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            assert!(
                std::env::var("FIXLINE_REQUIRE_POSTGRES").is_err(),
                "FIXLINE_REQUIRE_POSTGRES is set but FIXLINE_TEST_POSTGRES_URL is not"
            );
            eprintln!("note: FIXLINE_TEST_POSTGRES_URL not set; PostgreSQL variants skipped");
            vec![Backend::Sqlite]
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!("fixline-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_postgres_db() -> String {
    let base = std::env::var("FIXLINE_TEST_POSTGRES_URL").expect("FIXLINE_TEST_POSTGRES_URL");
    let name = format!("fx_{}", uuid::Uuid::now_v7().simple());
    let db = fixline::store::Db::connect(&base).await.expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&db.pool).await.expect("create database");
    db.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database path");
    format!("{prefix}/{name}")
}

pub async fn database_url(backend: Backend, dir: &TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.0.join("fixline.db").display()),
        Backend::Postgres => fresh_postgres_db().await,
    }
}

pub fn test_config(dir: &TempDir, url: String) -> Config {
    let mut c = Config::default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.0.clone();
    c.database_url = url;
    c.auth.login_attempts_per_minute = 100_000;
    c.log.level = "warn".into();
    c.diagnosis.models_dir = repo_path("models");
    c.knowledge_dir = repo_path("models/knowledge");
    c.diagnosis.sessions_per_model = 1;
    c
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A path inside the shared datasets (../shared/datasets next to the repository).
pub fn dataset_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets").join(rel)
}

/// A PNG of `w` x `h` grey noise (a plausible, decodable photo).
pub fn png_noise(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).max(1);
    let img = image::GrayImage::from_fn(w, h, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Luma([(x & 0xff) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub running: Option<Running>,
    pub admin_token: String,
    pub dir: TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "expected success, got {}: {}", self.status, self.body);
        self.body
    }

    /// Asserts a problem+json error with this status and returns its `type` slug.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        self.body["type"].as_str().unwrap().trim_start_matches("urn:fixline:problem:").to_owned()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = TempDir::new();
    let url = database_url(backend, &dir).await;
    let mut config = test_config(&dir, url);
    tweak(&mut config);
    let running = fixline::app::start(config).await.expect("server starts");
    let base = format!("http://{}", running.addr);
    let (user, pw) = running.bootstrap.admin.clone().expect("fresh database creates an admin");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut app = TestApp { base, client, running: Some(running), admin_token: String::new(), dir };
    app.admin_token = app.login(&user, &pw).await.ok()["access_token"].as_str().unwrap().to_owned();
    app
}

impl TestApp {
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    pub fn db(&self) -> &fixline::store::Db {
        &self.running.as_ref().expect("running").state.db
    }

    pub async fn req(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut rb = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request sent");
        to_resp(resp).await
    }

    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Resp {
        let mut rb = self.client.request(method, format!("{}{}", self.base, path)).header("content-type", content_type).body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        to_resp(rb.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, user: &str, pw: &str) -> Resp {
        self.req(Method::POST, "/api/v1/auth/login", None, Some(json!({ "username": user, "password": pw }))).await
    }

    /// Creates a user of `role` (customers belong to `customer`) and logs in.
    pub async fn user(&self, role: Role, customer: Option<&str>) -> Session {
        let username = format!("{}-{}", role, &uuid::Uuid::now_v7().simple().to_string()[20..]);
        let password = "a long test password".to_owned();
        let mut body = json!({ "username": username, "display_name": "Test", "role": role.as_str(), "password": password });
        if let Some(c) = customer {
            body["customer_id"] = json!(c);
        }
        let user = self.post("/api/v1/users", &self.admin_token, body).await.ok();
        let tokens = self.login(&username, &password).await.ok();
        Session {
            user_id: user["id"].as_str().unwrap().to_owned(),
            username,
            password,
            token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn customer(&self, tier: &str) -> String {
        let c = self.post("/api/v1/customers", &self.admin_token, json!({ "name": format!("Customer {tier}"), "tier": tier })).await.ok();
        c["id"].as_str().unwrap().to_owned()
    }

    pub async fn work_order(&self, customer: &str, priority: &str) -> Value {
        self.post(
            "/api/v1/work-orders",
            &self.admin_token,
            json!({ "customer_id": customer, "title": "Drill stops under load", "priority": priority }),
        )
        .await
        .ok()
    }

    pub async fn transition(&self, wo: &str, to: &str, token: &str) -> Resp {
        self.post(&format!("/api/v1/work-orders/{wo}/transitions"), token, json!({ "to": to })).await
    }
}

async fn to_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())) };
    Resp { status, content_type, body }
}

pub struct Session {
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub token: String,
    pub refresh: String,
}

/// A small decodable photo (64 x 64 grey noise), the same bytes every call.
pub fn photo() -> Vec<u8> {
    png_noise(64, 64, 7)
}

/// A CWRU recording as f32 samples.
pub fn cwru(rel: &str) -> Vec<f32> {
    let bytes = std::fs::read(dataset_path(&format!("cwru/{rel}"))).expect("CWRU recording (../shared/datasets)");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// The raw telemetry format: FXV1 header then little-endian float32 samples.
pub fn raw_telemetry(samples: &[f32], rate: u32, rpm: f32) -> Vec<u8> {
    let mut out = b"FXV1".to_vec();
    out.extend(rate.to_le_bytes());
    out.extend(rpm.to_le_bytes());
    out.extend((samples.len() as u32).to_le_bytes());
    out.extend(samples.iter().flat_map(|v| v.to_le_bytes()));
    out
}

