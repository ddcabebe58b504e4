//! The `fixline` binary as a process: crash safety (SIGKILL and restart on the same
//! data directory), graceful shutdown on SIGTERM, the admin commands and start-up errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_fixline");

struct Server {
    child: Child,
    base: String,
    admin_password: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixline(dir: &TempDir) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FIXLINE_DATA_DIR", &dir.0)
        .env("FIXLINE_LOG__LEVEL", "warn");
    c
}

/// Starts `fixline serve` on port 0 and reads its URL and first-start password.
fn start(dir: &TempDir) -> Server {
    let mut child = fixline(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn fixline");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut base, mut pw) = (None, None);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(u) = line.strip_prefix("fixline is running at ") {
                    base = Some(u.trim().to_owned());
                }
                if let Some(p) = line.trim().strip_prefix("password:") {
                    pw = Some(p.trim().to_owned());
                }
                if line.trim_start().starts_with("API login:") {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        }
    }
    Server { child, base: base.expect("server printed its URL"), admin_password: pw }
}

async fn token(client: &reqwest::Client, base: &str, pw: &str) -> String {
    let r: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": pw }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("login").to_owned()
}

#[tokio::test]
async fn a_killed_server_restarts_with_every_committed_work_order_and_event() {
    let dir = TempDir::new();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut s = start(&dir);
    let pw = s.admin_password.clone().expect("first start prints the admin password");
    let t = token(&client, &s.base, &pw).await;
    let c: serde_json::Value =
        client.post(format!("{}/api/v1/customers", s.base)).bearer_auth(&t).json(&json!({ "name": "K", "tier": "key" })).send().await.unwrap().json().await.unwrap();
    let mut ids = vec![];
    for i in 0..10 {
        let wo: serde_json::Value = client
            .post(format!("{}/api/v1/work-orders", s.base))
            .bearer_auth(&t)
            .json(&json!({ "customer_id": c["id"], "title": format!("case {i}") }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = wo["id"].as_str().unwrap().to_owned();
        for j in 0..5 {
            let st = client
                .post(format!("{}/api/v1/work-orders/{id}/notes", s.base))
                .bearer_auth(&t)
                .json(&json!({ "text": format!("note {j}") }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(st.as_u16(), 201);
        }
        let st = client.post(format!("{}/api/v1/work-orders/{id}/transitions", s.base)).bearer_auth(&t).json(&json!({ "to": "triaged" })).send().await.unwrap().status();
        assert!(st.is_success());
        ids.push(id);
    }
    // SIGKILL: no chance to flush or shut down.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);

    let s2 = start(&dir);
    assert!(s2.admin_password.is_none(), "the admin is created only once");
    let t = token(&client, &s2.base, &pw).await;
    let list: serde_json::Value =
        client.get(format!("{}/api/v1/work-orders?limit=100", s2.base)).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 10);
    for id in &ids {
        let ev: serde_json::Value =
            client.get(format!("{}/api/v1/work-orders/{id}/events", s2.base)).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
        assert_eq!(ev["items"].as_array().unwrap().len(), 7, "created + 5 notes + triaged");
    }
    drop(s2);
    // The stored log still replays to the stored state.
    let db = fixline::store::Db::open(&format!("sqlite://{}?mode=rwc", dir.0.join("fixline.db").display())).await.unwrap();
    for id in &ids {
        let wid = id.parse().unwrap();
        let events = fixline::work_orders::repo::all_events(&db, wid).await.unwrap();
        assert_eq!(fixline::work_orders::replay(&events).unwrap(), fixline::work_orders::repo::get(&db, wid).await.unwrap().unwrap());
    }
    db.close().await;
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    use std::io::{Read, Write};
    let dir = TempDir::new();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut s = start(&dir);
    let pw = s.admin_password.clone().unwrap();
    let t = token(&client, &s.base, &pw).await;
    let c: serde_json::Value =
        client.post(format!("{}/api/v1/customers", s.base)).bearer_auth(&t).json(&json!({ "name": "K", "tier": "key" })).send().await.unwrap().json().await.unwrap();
    let body = serde_json::to_vec(&json!({ "customer_id": c["id"], "title": "opened during shutdown" })).unwrap();
    // Send the headers and half the body: the request is now in flight.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /api/v1/work-orders HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..body.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    // The server is draining, but this request still completes.
    conn.write_all(&body[body.len() / 2..]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = s.child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    // New connections are refused once it has stopped; the work order was committed.
    assert!(std::net::TcpStream::connect(&addr).is_err());
    let s2 = start(&dir);
    let t = token(&client, &s2.base, &pw).await;
    let list: serde_json::Value = client.get(format!("{}/api/v1/work-orders", s2.base)).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"][0]["title"], "opened during shutdown");
}

#[test]
fn admin_commands_create_users_and_reset_passwords() {
    let dir = TempDir::new();
    let out = fixline(&dir).args(["admin", "create-user", "--username", "ops.kim", "--role", "dispatcher"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created dispatcher ops.kim"));
    let out = fixline(&dir).args(["admin", "create-user", "--username", "ops.kim", "--role", "dispatcher"]).output().unwrap();
    assert!(!out.status.success(), "a duplicate user name fails");
    let out = fixline(&dir).args(["admin", "create-user", "--username", "x.y", "--role", "wizard"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("wizard"));
    let mut child = fixline(&dir)
        .args(["admin", "reset-password", "ops.kim", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"a fresh long password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a fresh long password"), "a given password is never echoed");
    let out = fixline(&dir).args(["admin", "reset-password", "nobody"]).output().unwrap();
    assert!(!out.status.success());
    let out = fixline(&dir).args(["migrate"]).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn start_up_refuses_unknown_config_keys_and_invalid_values_naming_the_key() {
    let dir = TempDir::new();
    let out = fixline(&dir).env("FIXLINE_AUTH__ACCESS_TOKEN_TTL", "5").args(["migrate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_ttl"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = fixline(&dir).env("FIXLINE_DATABASE_URL", "mysql://x").args(["migrate"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
    let out = fixline(&dir).args(["serve", "--listen", "not-an-address"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
}
