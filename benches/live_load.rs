//! The live-session load tool: N concurrent sessions against a real `fixline serve`
//! process on loopback, each with one customer publishing a looped pre-encoded VP8
//! stream (about 1 Mbit/s, 640x480, a keyframe every 30 frames, jumping to the next one
//! on PLI) and `LOAD_EXPERTS` subscribing experts.
//!
//!     LOAD_SESSIONS=10,50,100,200 LOAD_SECONDS=10 LOAD_EXPERTS=1 cargo bench --bench live_load
//!     LOAD_DIAGNOSIS=0 ...   the same without the live-diagnosis frame tap
//!     LOAD_ICE_MS=50 ...     ICE check interval of the server and the peers (default 20)
//!     LOAD_TRACE=1 ...       per-session timeline of the setup on stderr
//!     LOAD_REFERENCE=janus ...   each N also through Janus (VideoRoom), the reference SFU,
//!                                in the same run (inside `unshare -n`; see live_load/janus.rs)
//!
//! Reports per N: session setup (publish offer sent -> first RTP packet at the
//! subscriber) p50/p99, forwarded packets and Mbit/s, server CPU and CPU per forwarded
//! Mbit/s, one-way packet latency publisher -> server -> subscriber (an upper bound of
//! the time inside the server; packets matched by payload) p50/p99, loss (sequence gaps), server RSS per session, and
//! live diagnosis: verdicts per second and their latency from the frame's arrival at the
//! server (p50/p99, the `latency_ms` of each `live_diagnosis`).
//! The tool runs on the same 2 cores as the server: its own peers compete for them.

#[path = "../tests/api/vp8.rs"]
mod vp8;
#[path = "live_load/janus.rs"]
mod janus;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fixline::media::{self, MediaSettings};
use futures_util::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::{new_packetizer, Packetizer};
use rtc::rtp::sequence::new_random_sequencer;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

const GOP: usize = 30;

/// `latency_ms` of every `live_diagnosis` the experts received (frame arrival at the
/// server -> verdict sent).
static DIAGNOSIS_MS: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// Where each packet of the pre-encoded loop starts in the loop's packet numbering
/// (per frame), and each packet's number by its payload. Latency is matched by
/// payload, not by sequence number: an SFU may renumber (Janus does).
static LOOP_INDEX: std::sync::OnceLock<(Vec<usize>, std::collections::HashMap<PayloadKey, usize>)> = std::sync::OnceLock::new();

type PayloadKey = (usize, [u8; 24], [u8; 24]);

fn payload_key(p: &[u8]) -> PayloadKey {
    let (mut head, mut tail) = ([0u8; 24], [0u8; 24]);
    let n = p.len().min(24);
    head[..n].copy_from_slice(&p[..n]);
    tail[..n].copy_from_slice(&p[p.len() - n..]);
    (p.len(), head, tail)
}

fn index_loop(frames: &[Vec<(Bytes, bool)>]) {
    let mut first = Vec::with_capacity(frames.len());
    let mut by_key = std::collections::HashMap::new();
    for f in frames {
        first.push(by_key.len());
        for (payload, _) in f {
            let n = by_key.len();
            assert!(by_key.insert(payload_key(payload), n).is_none(), "two packets of the loop look alike");
        }
    }
    let _ = LOOP_INDEX.set((first, by_key));
}

fn settings() -> MediaSettings {
    MediaSettings {
        udp_addrs: vec!["127.0.0.1:0".into()],
        ice_check_interval: Duration::from_millis(std::env::var("LOAD_ICE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)),
        stun_urls: vec![],
        turn_urls: vec![],
        turn_secret: String::new(),
        turn_ttl_secs: 3600,
        port_range: None,
        public_ip: None,
    }
}

/// 300 frames of 640x480 VP8 at 1 Mbit/s, packetized once: (payload, marker) per packet.
fn pre_encode() -> Vec<Vec<(Bytes, bool)>> {
    let (w, h) = (640u32, 480u32);
    let mut enc = vp8::Vp8Encoder::new(w, h, 30, 1000).unwrap();
    let mut pk = new_packetizer(Instant::now(), 1200, media::VP8_PT, 1, Box::new(Vp8Payloader::default()), Box::new(new_random_sequencer()), 90_000);
    (0..300u32)
        .map(|n| {
            let frames = enc.encode(&vp8::test_pattern(w, h, n), n as i64, n as usize % GOP == 0).unwrap();
            frames
                .into_iter()
                .flat_map(|(data, _)| pk.packetize(Instant::now(), &Bytes::from(data), 3000).unwrap())
                .map(|p| (p.payload, p.header.marker))
                .collect()
        })
        .collect()
}

struct Ws {
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Value>,
}

async fn ws(base: &str, token: &str, pc: Arc<Mutex<Option<Arc<dyn PeerConnection>>>>) -> Ws {
    let (sock, _) = tokio_tungstenite::connect_async(format!("{}/api/v1/signal", base.replace("http://", "ws://"))).await.unwrap();
    let (mut sink, mut stream) = sock.split();
    let (tx, mut out) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(m) = out.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let (in_tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(Message::Text(t))) = stream.next().await {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "live_diagnosis" {
                if let Some(ms) = v["latency_ms"].as_f64() {
                    DIAGNOSIS_MS.lock().unwrap().push(ms);
                }
                continue;
            }
            if v["type"] == "candidate" {
                let p = pc.lock().unwrap().clone();
                if let Some(p) = p {
                    let c: RTCIceCandidateInit = serde_json::from_value(v["candidate"].clone()).unwrap();
                    let _ = p.add_ice_candidate(c).await;
                }
                continue;
            }
            let _ = in_tx.send(v);
        }
    });
    tx.send(Message::Text(json!({ "type": "auth", "token": token }).to_string().into())).unwrap();
    Ws { tx, rx }
}

impl Ws {
    fn send(&self, v: Value) {
        let _ = self.tx.send(Message::Text(v.to_string().into()));
    }
    async fn expect(&mut self, ty: &str) -> Value {
        loop {
            let v = tokio::time::timeout(Duration::from_secs(60), self.rx.recv()).await.expect(ty).expect("socket");
            if v["type"] == ty {
                return v;
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    setup_ms: Mutex<Vec<f64>>,
    latency_us: Mutex<Vec<u64>>,
    packets: AtomicU64,
    bytes: AtomicU64,
    gaps: AtomicU64,
    ready: AtomicUsize,
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Which SFU the sessions go through.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Fixline,
    Janus,
}

/// A `fixline serve` process, killed on drop.
struct FixlineProcess {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for FixlineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `fixline serve` on 127.0.0.1 (SQLite in a temporary data directory); returns
/// it with its base URL and the generated admin password.
fn start_fixline() -> (FixlineProcess, String, String) {
    let dir = std::env::temp_dir().join(format!("fixline-load-{}", uuid::Uuid::now_v7().simple()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_fixline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", dir.to_str().unwrap()])
        .env("FIXLINE_LOG__LEVEL", std::env::var("LOAD_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .env("FIXLINE_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "100000")
        .env("FIXLINE_SESSIONS__MAX_PARTICIPANTS", "6")
        .env("FIXLINE_MEDIA__ICE_CHECK_INTERVAL_MS", std::env::var("LOAD_ICE_MS").unwrap_or_else(|_| "20".into()))
        .env("FIXLINE_DIAGNOSIS__ENABLED", if std::env::var("LOAD_DIAGNOSIS").as_deref() == Ok("0") { "false" } else { "true" })
        .stdout(Stdio::piped())
        .spawn()
        .expect("fixline binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut pw) = (String::new(), String::new());
    for l in lines.by_ref().map_while(Result::ok) {
        if let Some(u) = l.strip_prefix("fixline is running at ") {
            base = u.trim().to_owned();
        }
        if let Some(p) = l.trim().strip_prefix("password:") {
            pw = p.trim().to_owned();
        }
        if l.contains("API login:") {
            break;
        }
    }
    (FixlineProcess { child, dir }, base, pw)
}

async fn run(server: Server, n: usize, experts: usize, seconds: u64, frames: Arc<Vec<Vec<(Bytes, bool)>>>) -> String {
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let base0 = Instant::now();
    let mut tasks = Vec::new();
    let (pid, rss_before, _process): (u32, u64, Box<dyn std::any::Any>) = match server {
        Server::Janus => {
            let j = match janus::start() {
                Ok(j) => j,
                Err(e) => return format!("| Janus | {n} | not run: {e} |"),
            };
            let (pid, rss_before) = (j.pid(), rss_kib(j.pid()));
            for s in 0..n {
                let (url, frames, stats, stop) = (j.url.clone(), frames.clone(), stats.clone(), stop.clone());
                tasks.push(tokio::spawn(async move { janus::session(url, 1000 + s as u64, experts, frames, stats, stop, base0).await }));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (pid, rss_before, Box::new(j))
        }
        Server::Fixline => {
            let proc = start_fixline();
            let pid = proc.0.child.id();
            let (base, pw) = (proc.1.clone(), proc.2.clone());
            let rss_before = rss_kib(pid);
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            let post = |path: &str, token: Option<&str>, body: Value| {
                let mut rb = http.post(format!("{base}/api/v1{path}")).json(&body);
                if let Some(t) = token {
                    rb = rb.bearer_auth(t.to_owned());
                }
                rb.send()
            };
            let admin: Value = post("/auth/login", None, json!({ "username": "admin", "password": pw })).await.unwrap().json().await.unwrap();
            let at = admin["access_token"].as_str().unwrap().to_owned();
            let c: Value = post("/customers", Some(&at), json!({ "name": "Load", "tier": "standard" })).await.unwrap().json().await.unwrap();
            post("/users", Some(&at), json!({ "username": "load.expert", "display_name": "E", "role": "expert", "password": "load expert password" })).await.unwrap();
            let ex: Value = post("/auth/login", None, json!({ "username": "load.expert", "password": "load expert password" })).await.unwrap().json().await.unwrap();
            let expert_token = ex["access_token"].as_str().unwrap().to_owned();
            for s in 0..n {
                let wo: Value = post("/work-orders", Some(&at), json!({ "customer_id": c["id"], "title": format!("load {s}") })).await.unwrap().json().await.unwrap();
                let wid = wo["id"].as_str().unwrap().to_owned();
                let inv: Value = post(&format!("/work-orders/{wid}/invites"), Some(&at), json!({})).await.unwrap().json().await.unwrap();
                let cust: Value = post("/auth/invite", None, json!({ "token": inv["token"] })).await.unwrap().json().await.unwrap();
                let (ct, et, base, frames, stats, stop) = (cust["access_token"].as_str().unwrap().to_owned(), expert_token.clone(), base.clone(), frames.clone(), stats.clone(), stop.clone());
                tasks.push(tokio::spawn(async move { session(base, ct, et, wid, experts, frames, stats, stop, base0).await }));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (pid, rss_before, Box::new(proc.0))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.ready.load(Relaxed) < n * experts && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = stats.ready.load(Relaxed);
    // Steady state: measure over `seconds`.
    stats.latency_us.lock().unwrap().clear();
    DIAGNOSIS_MS.lock().unwrap().clear();
    let (p0, b0, g0, cpu0, t0) = (stats.packets.load(Relaxed), stats.bytes.load(Relaxed), stats.gaps.load(Relaxed), cpu_ticks(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (p1, b1, g1, cpu1, el) = (stats.packets.load(Relaxed), stats.bytes.load(Relaxed), stats.gaps.load(Relaxed), cpu_ticks(pid), t0.elapsed().as_secs_f64());
    let rss = rss_kib(pid);
    stop.store(true, Relaxed);
    for t in tasks {
        t.abort();
    }
    drop(_process);
    let pps = (p1 - p0) as f64 / el;
    let mbps = (b1 - b0) as f64 * 8.0 / el / 1e6;
    let cpu = (cpu1 - cpu0) as f64 / 100.0 / el * 100.0;
    let loss = if p1 > p0 { (g1 - g0) as f64 / ((p1 - p0) + (g1 - g0)) as f64 * 100.0 } else { f64::NAN };
    let mut setup = stats.setup_ms.lock().unwrap().clone();
    let mut lat: Vec<f64> = stats.latency_us.lock().unwrap().iter().map(|v| *v as f64 / 1000.0).collect();
    let mut diag = std::mem::take(&mut *DIAGNOSIS_MS.lock().unwrap());
    let diag_rate = diag.len() as f64 / el;
    let name = if server == Server::Janus { "Janus" } else { "fixline" };
    let (diag_rate, d50, d99) = if server == Server::Janus { ("–".to_owned(), "–".to_owned(), "–".to_owned()) } else { (format!("{diag_rate:.0}"), format!("{:.0}", pct(&mut diag, 0.5)), format!("{:.0}", pct(&mut diag, 0.99))) };
    format!(
        "| {name} | {n} | {ready}/{} | {:.0} | {:.0} | {pps:.0} | {mbps:.1} | {cpu:.0} % | {:.1} | {:.2} | {:.2} | {loss:.2} % | {:.0} | {diag_rate} | {d50} | {d99} |",
        n * experts,
        pct(&mut setup, 0.5),
        pct(&mut setup, 0.99),
        if mbps > 0.0 { cpu / mbps } else { f64::NAN },
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        (rss.saturating_sub(rss_before)) as f64 / n as f64,
    )
}

#[allow(clippy::too_many_arguments)]
async fn session(base: String, ct: String, et: String, wid: String, experts: usize, frames: Arc<Vec<Vec<(Bytes, bool)>>>, stats: Arc<Stats>, stop: Arc<AtomicBool>, base0: Instant) {
    let cust_pc: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
    let mut cust = ws(&base, &ct, cust_pc.clone()).await;
    cust.send(json!({ "type": "queue", "work_order_id": wid }));
    cust.expect("queue_position").await;
    let mut exps = Vec::new();
    for i in 0..experts {
        let pc_slot: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
        let mut e = ws(&base, &et, pc_slot.clone()).await;
        e.send(json!({ "type": if i == 0 { "accept" } else { "join" }, "work_order_id": wid }));
        e.expect("session_started").await;
        exps.push((e, pc_slot));
    }
    cust.expect("session_started").await;
    // Publish.
    let (pc, mut ev) = media::new_peer(&settings(), true).await.unwrap();
    *cust_pc.lock().unwrap() = Some(pc.clone());
    let ssrc = 0x7000_0000;
    let video = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new("c".into(), "v".into(), "v".into(), RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters { rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() }, codec: media::vp8(), ..Default::default() }])));
    pc.add_track(video.clone() as Arc<dyn TrackLocal>).await.unwrap();
    let tx = cust.tx.clone();
    let mut cands = std::mem::replace(&mut ev.candidates, mpsc::unbounded_channel().1);
    tokio::spawn(async move {
        while let Some(c) = cands.recv().await {
            let _ = tx.send(Message::Text(json!({ "type": "candidate", "leg": "publish", "candidate": c }).to_string().into()));
        }
    });
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    let t_offer = Instant::now();
    cust.send(json!({ "type": "publish", "sdp": offer.sdp }));
    let ans = cust.expect("publish_answer").await;
    if std::env::var("LOAD_TRACE").is_ok() {
        eprintln!("publish_answer after {:?}", t_offer.elapsed());
        let mut st = ev.state.clone();
        tokio::spawn(async move {
            while st.changed().await.is_ok() {
                let s = *st.borrow();
                eprintln!("publisher {s:?} after {:?}", t_offer.elapsed());
            }
        });
    }
    pc.set_remote_description(RTCSessionDescription::answer(ans["sdp"].as_str().unwrap().to_owned()).unwrap()).await.unwrap();
    let sent = spawn_sender(video.clone(), ssrc, frames, stop.clone(), base0);
    // Subscribe each expert.
    for (mut e, slot) in exps {
        while e.expect("tracks_changed").await["tracks"] == 0 {}
        if std::env::var("LOAD_TRACE").is_ok() { eprintln!("tracks_changed after {:?}", t_offer.elapsed()); }
        e.send(json!({ "type": "subscribe" }));
        let offer = e.expect("subscribe_offer").await;
        if std::env::var("LOAD_TRACE").is_ok() { eprintln!("subscribe_offer after {:?}", t_offer.elapsed()); }
        let (spc, mut sev) = media::new_peer(&settings(), false).await.unwrap();
        *slot.lock().unwrap() = Some(spc.clone());
        spc.set_remote_description(RTCSessionDescription::offer(offer["sdp"].as_str().unwrap().to_owned()).unwrap()).await.unwrap();
        let a = spc.create_answer(None).await.unwrap();
        spc.set_local_description(a).await.unwrap();
        let a = media::gathered_local_description(&spc, &mut sev.gathered).await.unwrap();
        e.send(json!({ "type": "subscribe_answer", "sdp": a.sdp }));
        spawn_receiver(sev.tracks, (e, spc), stats.clone(), sent.clone(), t_offer, base0);
    }
    while !stop.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = pc.close().await;
}

/// Sends the pre-encoded loop at 30 fps on `video`; on a PLI jumps to the next keyframe.
/// Returns the send time (µs since `base0`) of each sequence number.
fn spawn_sender(video: Arc<TrackLocalStaticRTP>, ssrc: u32, frames: Arc<Vec<Vec<(Bytes, bool)>>>, stop: Arc<AtomicBool>, base0: Instant) -> Arc<Vec<AtomicU64>> {
    let (first, by_key) = LOOP_INDEX.get().expect("loop indexed");
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..by_key.len()).map(|_| AtomicU64::new(0)).collect());
    let jump = Arc::new(AtomicBool::new(false));
    {
        let (v, j) = (video.clone(), jump.clone());
        tokio::spawn(async move {
            while let Some(e) = v.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(p) = e {
                    if p.iter().any(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()) {
                        j.store(true, Relaxed);
                    }
                }
            }
        });
    }
    let s = sent.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        let (mut i, mut seq, mut ts) = (0usize, 0u16, 0u32);
        while !stop.load(Relaxed) {
            tick.tick().await;
            if jump.swap(false, Relaxed) {
                i = i.div_ceil(GOP) * GOP % frames.len();
            }
            for (k, (payload, marker)) in frames[i].iter().enumerate() {
                let header = rtp::Header { version: 2, payload_type: media::VP8_PT, sequence_number: seq, timestamp: ts, ssrc, marker: *marker, ..Default::default() };
                s[first[i] + k].store(base0.elapsed().as_micros() as u64, Relaxed);
                if video.write_rtp(rtp::Packet { header, payload: payload.clone() }).await.is_err() {
                    return;
                }
                seq = seq.wrapping_add(1);
            }
            ts = ts.wrapping_add(3000);
            i = (i + 1) % frames.len();
        }
    });
    sent
}

/// Counts what a subscriber receives: setup time (first packet), latency matched by
/// sequence number, gaps, packets and bytes. `keep` lives as long as the tracks.
fn spawn_receiver(mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>, keep: impl Send + 'static, stats: Arc<Stats>, sent: Arc<Vec<AtomicU64>>, t_offer: Instant, base0: Instant) {
    tokio::spawn(async move {
        let _keep = keep;
        while let Some(t) = tracks.recv().await {
            let (stats, sent) = (stats.clone(), sent.clone());
            tokio::spawn(async move {
                let mut last: Option<u16> = None;
                while let Some(ev) = t.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                        let now = base0.elapsed().as_micros() as u64;
                        if last.is_none() {
                            stats.setup_ms.lock().unwrap().push(t_offer.elapsed().as_secs_f64() * 1000.0);
                            stats.ready.fetch_add(1, Relaxed);
                        }
                        let seq = p.header.sequence_number;
                        if let Some(l) = last {
                            let d = seq.wrapping_sub(l);
                            if (2..1000).contains(&d) {
                                stats.gaps.fetch_add(u64::from(d - 1), Relaxed);
                            }
                        }
                        last = Some(seq);
                        let at = LOOP_INDEX.get().and_then(|(_, by_key)| by_key.get(&payload_key(&p.payload))).map_or(0, |&i| sent[i].load(Relaxed));
                        if at > 0 && now >= at {
                            let mut l = stats.latency_us.lock().unwrap();
                            if l.len() < 2_000_000 {
                                l.push(now - at);
                            }
                        }
                        stats.packets.fetch_add(1, Relaxed);
                        stats.bytes.fetch_add(p.payload.len() as u64 + 12, Relaxed);
                    }
                }
            });
        }
    });
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("LOAD_SESSIONS").unwrap_or_else(|_| "10".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let seconds: u64 = std::env::var("LOAD_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let experts: usize = std::env::var("LOAD_EXPERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let servers: Vec<Server> = match std::env::var("LOAD_REFERENCE").as_deref() {
        Ok("janus") => vec![Server::Fixline, Server::Janus],
        Ok("janus-only") => vec![Server::Janus],
        _ => vec![Server::Fixline],
    };
    let frames = Arc::new(pre_encode());
    index_loop(&frames);
    let bytes: usize = frames.iter().flatten().map(|(p, _)| p.len()).sum();
    println!("pre-encoded loop: {} frames, {:.2} Mbit/s at 30 fps\n", frames.len(), bytes as f64 * 8.0 / (frames.len() as f64 / 30.0) / 1e6);
    println!("| server | sessions | subscribers receiving | setup p50 ms | setup p99 ms | forwarded pkt/s | forwarded Mbit/s | server CPU (of 1 core) | CPU % per Mbit/s | latency p50 ms | latency p99 ms | loss | server RSS KiB/session | diagnoses/s | diagnosis p50 ms | diagnosis p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        for &server in &servers {
            println!("{}", run(server, n, experts, seconds, frames.clone()).await);
        }
    }
}
