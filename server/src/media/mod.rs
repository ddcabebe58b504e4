//! The only code that touches the WebRTC stack (`webrtc` 0.21, the async layer over the
//! sans-IO `rtc` core): peer connections configured for this server, the SFU room that
//! forwards each published RTP track to every subscriber without transcoding, keyframe
//! requests (PLI, RFC 4585 §6.3.1) on join and relayed from subscribers, and VP8
//! keyframe detection (RFC 7741 §4.2-4.3); H.264 (RFC 6184) in [`h264`].
//!
//! Media is always encrypted: DTLS-SRTP is the only transport the stack offers.

pub mod frames;
pub mod h264;
pub mod room;
pub mod turn;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry,
    SettingEngineBuilder,
};

pub use webrtc::peer_connection::RTCSessionDescription;

/// Payload types this server negotiates.
pub const VP8_PT: u8 = 96;
pub const OPUS_PT: u8 = 111;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("WebRTC: {0}")]
    Rtc(String),
    #[error("the session description is not valid: {0}")]
    BadSdp(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl MediaError {
    pub fn rtc(e: impl std::fmt::Display) -> Self {
        MediaError::Rtc(e.to_string())
    }
}

/// Network settings for peer connections (`[media]` in the config).
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// UDP addresses ICE binds, e.g. `127.0.0.1:0` (never a wildcard: the stack skips
    /// loopback when it expands one).
    pub udp_addrs: Vec<String>,
    /// How often ICE sends connectivity checks; shorter connects faster.
    pub ice_check_interval: Duration,
    /// Handed to clients (not used by the server's own connections).
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    pub turn_secret: String,
    pub turn_ttl_secs: u64,
    /// Inclusive UDP port range for peer connections; None: any free port.
    pub port_range: Option<(u16, u16)>,
    /// Behind a 1:1 NAT: the public address announced in place of the bound one in
    /// every host candidate the server sends (see [`MediaSettings::announce`]).
    pub public_ip: Option<std::net::IpAddr>,
}

impl MediaSettings {
    /// Rewrites the server's host candidates (in an SDP, or one trickled `candidate:`
    /// line) to announce `public_ip` with the same port, and the `c=` lines with it:
    /// behind a 1:1 NAT the server binds its private address, and clients must be told
    /// the public one the NAT maps to it (what Janus calls `nat_1_1_mapping`). Unchanged
    /// when no public address is set.
    pub fn announce(&self, sdp: &str) -> String {
        let Some(ip) = self.public_ip else { return sdp.to_owned() };
        let ip = ip.to_string();
        let mut out = String::with_capacity(sdp.len() + 16);
        for line in sdp.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            let eol = &line[body.len()..];
            out.push_str(&announce_line(body, &ip));
            out.push_str(eol);
        }
        out
    }
}

/// One SDP line (or a bare trickled candidate): a host candidate gets `ip` as its
/// address, a `c=IN IP4` line gets `ip`; anything else is kept.
fn announce_line(line: &str, ip: &str) -> String {
    let cand = line.strip_prefix("a=").unwrap_or(line);
    if cand.starts_with("candidate:") {
        let mut f: Vec<&str> = cand.split(' ').collect();
        // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
        if f.len() >= 8 && f[6] == "typ" && f[7] == "host" {
            f[4] = ip;
            let rewritten = f.join(" ");
            return if line.starts_with("a=") { format!("a={rewritten}") } else { rewritten };
        }
        return line.to_owned();
    }
    if line.starts_with("c=IN IP4 ") && !ip.contains(':') {
        return format!("c=IN IP4 {ip}");
    }
    line.to_owned()
}

static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The bind addresses for a new peer connection: the configured ones, with a free port
/// of the range when one is set (tried round-robin; a port in use is skipped).
pub fn bind_addrs(s: &MediaSettings) -> Result<Vec<String>, MediaError> {
    let Some((min, max)) = s.port_range else { return Ok(s.udp_addrs.clone()) };
    let span = u32::from(max - min) + 1;
    let mut out = Vec::with_capacity(s.udp_addrs.len());
    for addr in &s.udp_addrs {
        let ip: std::net::SocketAddr = addr.parse().map_err(|_| MediaError::Rtc(format!("`{addr}` is not host:port")))?;
        let found = (0..span).find_map(|_| {
            let port = min + (NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span) as u16;
            let candidate = std::net::SocketAddr::new(ip.ip(), port);
            std::net::UdpSocket::bind(candidate).ok().map(|_| candidate.to_string())
        });
        out.push(found.ok_or_else(|| MediaError::Rtc(format!("no free UDP port in {min}-{max}")))?);
    }
    Ok(out)
}

pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec { mime_type: MIME_TYPE_VP8.into(), clock_rate: 90_000, channels: 0, sdp_fmtp_line: String::new(), rtcp_feedback: vec![] }
}

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

/// What a peer connection reports, as channels (handlers must never block the driver).
pub struct PeerEvents {
    pub candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub gathered: watch::Receiver<bool>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    pub data_channels: mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
}

struct Handler {
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    data_channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(init) = ev.candidate.to_json() {
            let _ = self.candidates.send(init);
        }
    }
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        self.gathered.send_replace(s == RTCIceGatheringState::Complete);
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        self.state.send_replace(s);
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(t);
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.data_channels.send(dc);
    }
}

/// A peer connection with VP8, H.264 (after VP8) and Opus, NACK/RTCP reports/TWCC
/// interceptors, no mDNS, bound to the configured addresses. `keyframe_requests_to_app` surfaces inbound
/// PLI/FIR to the application (needed on the connections the server sends media on).
pub async fn new_peer(s: &MediaSettings, keyframe_requests_to_app: bool) -> Result<(Arc<dyn PeerConnection>, PeerEvents), MediaError> {
    let mut me = MediaEngine::default();
    me.register_codec(RTCRtpCodecParameters { rtp_codec: vp8(), payload_type: VP8_PT, ..Default::default() }, RtpCodecKind::Video)
        .map_err(MediaError::rtc)?;
    // After VP8, so VP8 stays preferred where both sides offer both.
    me.register_codec(RTCRtpCodecParameters { rtp_codec: h264::h264(), payload_type: h264::H264_PT, ..Default::default() }, RtpCodecKind::Video)
        .map_err(MediaError::rtc)?;
    me.register_codec(RTCRtpCodecParameters { rtp_codec: opus(), payload_type: OPUS_PT, ..Default::default() }, RtpCodecKind::Audio)
        .map_err(MediaError::rtc)?;
    // After the codecs: adds nack, nack pli and transport-cc feedback to them.
    let mut reg = register_default_interceptors(Registry::new(), &mut me).map_err(MediaError::rtc)?;
    if keyframe_requests_to_app {
        reg = reg.with(Slot::from(14_000), KeyframeRequestToApp::default());
    }
    let se = SettingEngineBuilder::new()
        // mDNS would open a multicast socket: it fails where only `lo` exists, and a
        // server has no use for .local candidates.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![NetworkType::Udp4])
        .with_ice_connection_attempts(Some(s.ice_check_interval), None)
        // A peer's checks often arrive before its trickled candidates (or, on the
        // client's side, before the answer): the address is then peer-reflexive, and the
        // stack's default waits 1 s before nominating such a pair. That wait cost about
        // half of all session setups a full second (BENCHMARKS.md, live sessions). A
        // pair whose check has succeeded is usable: nominate it at once, as browsers do.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .build();
    let (candidates_tx, candidates) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let (gathered_tx, gathered) = watch::channel(false);
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let (dc_tx, data_channels) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(me)
        .with_interceptor_registry(reg)
        .with_setting_engine(se)
        .with_handler(Arc::new(Handler { candidates: candidates_tx, state: state_tx, gathered: gathered_tx, tracks: tracks_tx, data_channels: dc_tx }))
        .with_udp_addrs(bind_addrs(s)?)
        .build()
        .await
        .map_err(MediaError::rtc)?;
    Ok((Arc::new(pc), PeerEvents { candidates, state, gathered, tracks, data_channels }))
}

/// Waits until ICE gathering completes and returns the local description with its
/// candidates (for the server's own offers, which do not trickle).
pub async fn gathered_local_description(pc: &Arc<dyn PeerConnection>, gathered: &mut watch::Receiver<bool>) -> Result<RTCSessionDescription, MediaError> {
    tokio::time::timeout(Duration::from_secs(10), gathered.wait_for(|g| *g))
        .await
        .map_err(|_| MediaError::Timeout("ICE gathering"))?
        .map_err(MediaError::rtc)?;
    pc.local_description().await.ok_or(MediaError::Timeout("local description"))
}

/// Inbound RTCP is consumed by the interceptor chain unless tagged for the
/// application; this stage lets keyframe requests (PLI, FIR) through.
#[derive(Default)]
pub struct KeyframeRequestToApp {
    rq: VecDeque<TaggedPacket>,
    wq: VecDeque<TaggedPacket>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(pkts) = &msg.message.packet {
            let kf: Vec<Box<dyn rtc::rtcp::Packet>> = pkts
                .iter()
                .filter(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
                .cloned()
                .collect();
            if kf.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(kf);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.rq.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.rq.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.wq.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.wq.pop_front()
    }
}

impl Interceptor for KeyframeRequestToApp {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// Offset of the VP8 payload after the RTP payload descriptor (RFC 7741 §4.2), the S
/// bit and the partition index.
fn vp8_descriptor(p: &[u8]) -> Option<(usize, bool, u8)> {
    let b0 = *p.first()?;
    let (s, pid) = (b0 & 0x10 != 0, b0 & 0x07);
    let mut off = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(off)?;
        off += 1;
        if x & 0x80 != 0 {
            off += if *p.get(off)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            off += 1;
        }
        if x & 0x30 != 0 {
            off += 1;
        }
    }
    (off < p.len()).then_some((off, s, pid))
}

/// True when this RTP payload starts a VP8 keyframe: S=1, partition 0, and the frame
/// tag's P bit 0 (RFC 6386 §9.1).
pub fn is_vp8_keyframe_start(p: &[u8]) -> bool {
    matches!(vp8_descriptor(p), Some((off, true, 0)) if p[off] & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    fn settings(range: Option<(u16, u16)>) -> super::MediaSettings {
        super::MediaSettings {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ice_check_interval: std::time::Duration::from_millis(50),
            stun_urls: vec![],
            turn_urls: vec![],
            turn_secret: String::new(),
            turn_ttl_secs: 3600,
            port_range: range,
            public_ip: None,
        }
    }

    #[test]
    fn a_public_address_replaces_the_bound_one_in_host_candidates_only() {
        let mut s = settings(None);
        let sdp = "v=0\r\nc=IN IP4 10.0.0.5\r\na=candidate:1 1 udp 2130706431 10.0.0.5 41000 typ host\r\na=candidate:2 1 udp 1694498815 198.51.100.9 5000 typ srflx raddr 10.0.0.5 rport 41000\r\na=mid:0\r\n";
        assert_eq!(s.announce(sdp), sdp, "unchanged without a public address");
        s.public_ip = Some("203.0.113.7".parse().unwrap());
        let out = s.announce(sdp);
        assert_eq!(
            out,
            "v=0\r\nc=IN IP4 203.0.113.7\r\na=candidate:1 1 udp 2130706431 203.0.113.7 41000 typ host\r\na=candidate:2 1 udp 1694498815 198.51.100.9 5000 typ srflx raddr 10.0.0.5 rport 41000\r\na=mid:0\r\n"
        );
        // A trickled candidate, without `a=`.
        assert_eq!(s.announce("candidate:1 1 udp 2130706431 10.0.0.5 41000 typ host generation 0"), "candidate:1 1 udp 2130706431 203.0.113.7 41000 typ host generation 0");
    }

    #[test]
    fn peer_connections_bind_inside_the_configured_port_range() {
        let s = settings(Some((41_000, 41_009)));
        for _ in 0..20 {
            let a: std::net::SocketAddr = super::bind_addrs(&s).unwrap()[0].parse().unwrap();
            assert!((41_000..=41_009).contains(&a.port()));
        }
        // A taken port is skipped.
        let held: Vec<_> = (41_100..41_103).map(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).unwrap()).collect();
        let s = settings(Some((41_100, 41_103)));
        assert_eq!(super::bind_addrs(&s).unwrap()[0], "127.0.0.1:41103");
        drop(held);
    }

    #[test]
    fn vp8_keyframe_starts_are_recognised_from_the_descriptor() {
        // S=1, PID=0, no extensions; frame tag with P=0 (keyframe) and P=1 (inter).
        assert!(super::is_vp8_keyframe_start(&[0x10, 0x00, 0x00, 0x00]));
        assert!(!super::is_vp8_keyframe_start(&[0x10, 0x01, 0x00, 0x00]));
        // Not the start of a partition.
        assert!(!super::is_vp8_keyframe_start(&[0x00, 0x00, 0x00]));
        // X bit with a 15-bit picture id, then the frame tag.
        assert!(super::is_vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!super::is_vp8_keyframe_start(&[]));
        assert!(!super::is_vp8_keyframe_start(&[0x90]));
    }
}
