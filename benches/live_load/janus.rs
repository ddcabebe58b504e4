//! The reference SFU for the load tool: Janus (Debian's `janus` package) with its
//! VideoRoom plugin, driven over its WebSocket API with the same peers, the same
//! pre-encoded stream and the same measurements as fixline.
//!
//! Janus gathers ICE candidates only on interfaces that are not loopback, and the
//! load runs in a private network namespace where only `lo` exists. So the tool gives
//! Janus a veth interface that carries 127.0.0.1 (created inside that namespace only,
//! never on the host's network): every packet still goes to and from 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fixline::media;
use futures_util::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::RTCSessionDescription;

use crate::{settings, spawn_receiver, spawn_sender, Stats};

const VETH: &str = "fxjanus0";

/// A running Janus: its process and WebSocket URL. Killed on drop.
pub struct Janus {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Janus {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Makes sure an interface other than `lo` carries 127.0.0.1, creating a veth pair when
/// this process is in a private network namespace (only `lo` present). Refuses
/// otherwise: the tool never touches the host's interfaces.
fn loopback_for_libnice() -> Result<(), String> {
    // /proc/self/net/dev lists this namespace's interfaces (/sys/class/net may show the
    // host's, from wherever sysfs was mounted).
    let dev = std::fs::read_to_string("/proc/self/net/dev").map_err(|e| e.to_string())?;
    let ifaces: Vec<String> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(|i| i.trim().to_owned()).collect();
    if ifaces.iter().any(|i| i == VETH) {
        return Ok(());
    }
    if ifaces.iter().any(|i| i != "lo") {
        return Err("the Janus reference runs only inside a private network namespace with just `lo` (unshare -n); see BENCHMARKS.md".into());
    }
    let peer = format!("{VETH}p");
    let cmds: [&[&str]; 4] = [
        &["link", "add", VETH, "type", "veth", "peer", "name", &peer],
        &["link", "set", &peer, "up"],
        &["link", "set", VETH, "up"],
        &["addr", "add", "127.0.0.1/32", "dev", VETH],
    ];
    for c in cmds {
        let st = Command::new("ip").args(c).status().map_err(|e| format!("ip: {e}"))?;
        if !st.success() {
            return Err(format!("`ip {}` failed", c.join(" ")));
        }
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap_or(8188)
}

/// Starts Janus with only the VideoRoom plugin and the WebSocket transport on 127.0.0.1.
pub fn start() -> Result<Janus, String> {
    let bin = which("janus").ok_or("janus is not installed (apt-get install janus, or scripts/setup.sh --bench)")?;
    loopback_for_libnice()?;
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/janus");
    let dir = std::env::temp_dir().join(format!("fixline-janus-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let plugins = ["audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "streaming", "textroom", "videocall", "voicemail"];
    let transports = ["http", "mqtt", "nanomsg", "pfunix", "rabbitmq"];
    let list = |names: &[&str]| names.iter().map(|n| format!("libjanus_{n}.so")).collect::<Vec<_>>().join(",");
    let port = free_port();
    let main = format!(
        "general: {{\n configs_folder = \"{d}\"\n plugins_folder = \"{l}/plugins\"\n transports_folder = \"{l}/transports\"\n events_folder = \"{l}/events\"\n loggers_folder = \"{l}/loggers\"\n debug_level = 3\n session_timeout = 0\n}}\n\
         media: {{\n rtp_port_range = \"40000-59999\"\n}}\n\
         nat: {{\n ice_enforce_list = \"{VETH}\"\n}}\n\
         plugins: {{\n disable = \"{p}\"\n}}\n\
         transports: {{\n disable = \"{t}\"\n}}\n\
         events: {{\n broadcast = false\n}}\n\
         loggers: {{\n disable = \"libjanus_jsonlog.so\"\n}}\n",
        d = dir.display(),
        l = lib.display(),
        p = list(&plugins),
        t = list(&transports),
    );
    let files = [
        ("janus.jcfg", main),
        ("janus.transport.websockets.jcfg", format!("general: {{\n json = \"compact\"\n ws = true\n ws_port = {port}\n ws_ip = \"127.0.0.1\"\n wss = false\n}}\nadmin: {{\n admin_ws = false\n}}\n")),
        ("janus.plugin.videoroom.jcfg", "general: {\n}\n".to_owned()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
    }
    let log = std::fs::File::create(dir.join("janus.log")).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(["-C", &dir.join("janus.jcfg").to_string_lossy(), "-F", &dir.to_string_lossy(), "--disable-colors"])
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("janus: {e}"))?;
    let janus = Janus { child, url: format!("ws://127.0.0.1:{port}"), dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(janus.dir.join("janus.log")).unwrap_or_default();
            return Err(format!("Janus did not open its WebSocket port: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(janus)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

/// One Janus API session over one WebSocket.
struct Api {
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Value>,
    session: u64,
    next: u64,
    /// Messages that arrived while waiting for something else.
    pending: Vec<Value>,
}

impl Api {
    async fn connect(url: &str) -> Api {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
        let (sock, _) = tokio_tungstenite::connect_async(req).await.expect("Janus WebSocket");
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
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(t) = m {
                    if let Ok(v) = serde_json::from_str::<Value>(&t) {
                        let _ = in_tx.send(v);
                    }
                }
            }
        });
        let mut api = Api { tx, rx, session: 0, next: 0, pending: Vec::new() };
        let created = api.call(json!({ "janus": "create" })).await;
        api.session = created["data"]["id"].as_u64().expect("session id");
        api
    }

    /// Sends a request and returns its answer: `success`, `error`, or the plugin's
    /// `event` (an asynchronous request is first acknowledged, then answered).
    async fn call(&mut self, mut body: Value) -> Value {
        self.next += 1;
        let tr = format!("t{}", self.next);
        body["transaction"] = json!(tr);
        if self.session != 0 {
            body["session_id"] = json!(self.session);
        }
        let _ = self.tx.send(Message::Text(body.to_string().into()));
        let v = self.wait(|v| v["transaction"] == tr.as_str() && v["janus"] != "ack").await;
        assert_ne!(v["janus"], "error", "Janus: {v}");
        if let Some(e) = v["plugindata"]["data"].get("error") {
            panic!("Janus VideoRoom: {e} ({v})");
        }
        v
    }

    /// The first message (already arrived or still to come) that `f` accepts.
    async fn wait(&mut self, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&f) {
            return self.pending.remove(i);
        }
        loop {
            let v = tokio::time::timeout(Duration::from_secs(60), self.rx.recv()).await.expect("Janus answers").expect("Janus socket open");
            if f(&v) {
                return v;
            }
            if self.pending.len() < 256 {
                self.pending.push(v);
            }
        }
    }

    async fn attach(&mut self) -> u64 {
        let r = self.call(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" })).await;
        r["data"]["id"].as_u64().expect("handle id")
    }

    async fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Value {
        let mut m = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.call(m).await
    }
}

/// One session through Janus: a room, the customer publishing, `experts` subscribers.
#[allow(clippy::too_many_arguments)]
pub async fn session(url: String, room: u64, experts: usize, frames: Arc<Vec<Vec<(Bytes, bool)>>>, stats: Arc<Stats>, stop: Arc<AtomicBool>, base0: Instant) {
    let mut api = Api::connect(&url).await;
    let publisher = api.attach().await;
    api.message(publisher, json!({ "request": "create", "room": room, "publishers": 1, "videocodec": "vp8", "bitrate": 0, "fir_freq": 0 }), None).await;

    // Publish: the offer goes with all its candidates (gathering on loopback is instant).
    let (pc, mut ev) = media::new_peer(&settings(), true).await.unwrap();
    let ssrc = 0x7000_0000;
    let video = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new("c".into(), "v".into(), "v".into(), RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters { rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() }, codec: media::vp8(), ..Default::default() }])));
    pc.add_track(video.clone() as Arc<dyn TrackLocal>).await.unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let offer = media::gathered_local_description(&pc, &mut ev.gathered).await.unwrap();
    let t_offer = Instant::now();
    let joined = api
        .message(publisher, json!({ "request": "joinandconfigure", "room": room, "ptype": "publisher", "display": "customer" }), Some(json!({ "type": "offer", "sdp": offer.sdp })))
        .await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().expect("publisher id");
    pc.set_remote_description(RTCSessionDescription::answer(joined["jsep"]["sdp"].as_str().expect("answer").to_owned()).unwrap()).await.unwrap();
    let sent: Arc<Vec<AtomicU64>> = spawn_sender(video, ssrc, frames, stop.clone(), base0);
    // The feed exists for subscribers once the publisher's PeerConnection is up.
    api.wait(|v| v["janus"] == "webrtcup" && v["sender"].as_u64() == Some(publisher)).await;

    // Subscribe: Janus offers, the expert answers with `start`.
    for _ in 0..experts {
        let sub = api.attach().await;
        let offer = api.message(sub, json!({ "request": "join", "room": room, "ptype": "subscriber", "streams": [{ "feed": feed }] }), None).await;
        let (spc, mut sev) = media::new_peer(&settings(), false).await.unwrap();
        spc.set_remote_description(RTCSessionDescription::offer(offer["jsep"]["sdp"].as_str().expect("subscriber offer").to_owned()).unwrap()).await.unwrap();
        let a = spc.create_answer(None).await.unwrap();
        spc.set_local_description(a).await.unwrap();
        let a = media::gathered_local_description(&spc, &mut sev.gathered).await.unwrap();
        api.message(sub, json!({ "request": "start", "room": room }), Some(json!({ "type": "answer", "sdp": a.sdp }))).await;
        spawn_receiver(sev.tracks, spc, stats.clone(), sent.clone(), t_offer, base0);
    }
    while !stop.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = pc.close().await;
    drop(api);
}
