//! One SFU room per live session. A participant publishes over one peer connection
//! (they offer, we answer) and subscribes over another (we offer, they answer), so
//! neither side ever has to handle an offer glare. Every published track gets one
//! reader task that fans its RTP packets out on a broadcast channel; every subscriber
//! gets, per track, a local track and a forwarding task that rewrites SSRC and payload
//! type for its leg, strips header extensions (their ids are per leg), starts video at
//! a keyframe, and relays the subscriber's keyframe requests to the publisher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{broadcast, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use super::frames::{TrackingFrame, TrackingLink};
use super::{MediaError, OPUS_PT, VP8_PT};
use crate::session::PeerId;

/// Packets a slow subscriber may fall behind before it skips to the next keyframe.
const FANOUT_DEPTH: usize = 512;

/// A track someone publishes into the room.
pub struct Published {
    pub owner: PeerId,
    pub kind: RtpCodecKind,
    pub codec: RTCRtpCodec,
    pub media_ssrc: u32,
    remote: Arc<dyn TrackRemote>,
    tx: broadcast::Sender<rtp::Packet>,
}

impl Published {
    /// A receiver of this track's RTP packets (for the frame tap).
    pub fn subscribe_packets(&self) -> broadcast::Receiver<rtp::Packet> {
        self.tx.subscribe()
    }

    /// Asks the publisher for a keyframe.
    pub async fn request_keyframe(&self) {
        if self.kind == RtpCodecKind::Video {
            let _ = self.remote.write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: self.media_ssrc })]).await;
        }
    }
}

/// Counters for tests, metrics and the load tool.
#[derive(Default)]
pub struct RoomStats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub keyframe_requests: AtomicU64,
    /// Frames the frame taps decoded, and the time spent decoding them (ns).
    pub frames_decoded: AtomicU64,
    pub decode_ns: AtomicU64,
    /// Tracking frames the taps delivered (annotation anchoring), and those processed
    /// by the anchoring: a frame replaced by a newer one before it was taken (tracking
    /// still busy with the previous one) is skipped.
    pub tracking_frames: AtomicU64,
    pub tracking_processed: AtomicU64,
    pub tracking_skipped: AtomicU64,
    /// Time the anchoring spent per processed frame (pyramid and every anchor), total
    /// and largest (ns).
    pub tracking_ns: AtomicU64,
    pub tracking_ns_max: AtomicU64,
}

#[derive(Default)]
pub struct MediaRoom {
    tracks: Mutex<Vec<Arc<Published>>>,
    /// Bumped whenever the set of published tracks changes (subscribers re-subscribe).
    version: watch::Sender<u64>,
    pub stats: Arc<RoomStats>,
    next_ssrc: AtomicU64,
    /// Snapshot requests for the frame taps of this room.
    snapshot_flags: Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>,
    /// Set when the session ends: everything attached to the room lets go.
    ended: watch::Sender<bool>,
    /// Annotation anchoring: the tracking frames per second the session wants (0: none;
    /// the taps decode keyframes only) and the latest tracking frame (latest wins).
    tracking_fps: watch::Sender<u32>,
    tracking_frames: watch::Sender<Option<Arc<TrackingFrame>>>,
}

impl MediaRoom {
    pub fn new() -> Arc<MediaRoom> {
        Arc::new(MediaRoom { next_ssrc: AtomicU64::new(0x5000_0000), ..Default::default() })
    }

    /// Marks the room ended (the session is over).
    pub fn end(&self) {
        self.ended.send_replace(true);
    }

    /// Resolves when the room ends.
    pub fn ended(&self) -> watch::Receiver<bool> {
        self.ended.subscribe()
    }

    /// Registers a frame tap's snapshot flag.
    pub fn add_snapshot_flag(&self, flag: Arc<std::sync::atomic::AtomicBool>) {
        let mut flags = self.snapshot_flags.lock().unwrap_or_else(|p| p.into_inner());
        // A flag only the room still holds belongs to a tap that has stopped (the
        // customer reconnected): forget it so reconnects do not pile them up.
        flags.retain(|f| Arc::strong_count(f) > 1);
        flags.push(flag);
    }

    /// Asks every frame tap of the room for a snapshot; false when none runs.
    pub fn request_snapshot(&self) -> bool {
        let mut flags = self.snapshot_flags.lock().unwrap_or_else(|p| p.into_inner());
        flags.retain(|f| Arc::strong_count(f) > 1);
        for f in flags.iter() {
            f.store(true, Ordering::Relaxed);
        }
        !flags.is_empty()
    }

    /// What a frame tap of this room needs for annotation tracking.
    pub fn tracking_link(&self) -> TrackingLink {
        TrackingLink { fps: self.tracking_fps.subscribe(), frames: self.tracking_frames.clone(), stats: self.stats.clone(), ended: self.ended() }
    }

    /// Sets the tracking frame rate the taps deliver (0: keyframes only).
    pub fn set_tracking_fps(&self, fps: u32) {
        self.tracking_fps.send_if_modified(|f| std::mem::replace(f, fps) != fps);
    }

    /// The latest tracking frame of the customer's video (None before the first).
    pub fn tracking_frames(&self) -> watch::Receiver<Option<Arc<TrackingFrame>>> {
        self.tracking_frames.subscribe()
    }

    /// A receiver that changes whenever tracks are added or removed.
    pub fn track_changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn tracks(&self) -> Vec<Arc<Published>> {
        self.tracks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Prepares a publishing peer connection to receive audio and video.
    pub async fn prepare_publisher(pc: &Arc<dyn PeerConnection>) -> Result<(), MediaError> {
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() };
            pc.add_transceiver_from_kind(kind, Some(init)).await.map_err(MediaError::rtc)?;
        }
        Ok(())
    }

    /// Takes a remote track of `owner` into the room: spawns its reader.
    pub async fn publish(self: &Arc<Self>, owner: PeerId, remote: Arc<dyn TrackRemote>) -> Option<Arc<Published>> {
        let media_ssrc = remote.ssrcs().await.first().copied()?;
        let codec = remote.codec(media_ssrc).await?;
        let kind = remote.kind().await;
        let (tx, _) = broadcast::channel(FANOUT_DEPTH);
        let published = Arc::new(Published { owner, kind, codec, media_ssrc, remote: remote.clone(), tx: tx.clone() });
        let room = self.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            while let Some(ev) = remote.poll().await {
                match ev {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        stats.packets_in.fetch_add(1, Ordering::Relaxed);
                        let _ = tx.send(p);
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
            room.unpublish_ssrc(media_ssrc);
        });
        self.tracks.lock().unwrap_or_else(|p| p.into_inner()).push(published.clone());
        self.version.send_modify(|v| *v += 1);
        Some(published)
    }

    fn unpublish_ssrc(&self, ssrc: u32) {
        self.tracks.lock().unwrap_or_else(|p| p.into_inner()).retain(|t| t.media_ssrc != ssrc);
        self.version.send_modify(|v| *v += 1);
    }

    /// Removes everything `owner` published (they left).
    pub fn unpublish(&self, owner: PeerId) {
        let before = {
            let mut t = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
            let n = t.len();
            t.retain(|t| t.owner != owner);
            n != t.len()
        };
        if before {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Adds, to a subscriber's peer connection, one local track per track published by
    /// someone else, and spawns the forwarding. Call before creating the offer. The
    /// forwarding waits until the connection is up, then asks for keyframes.
    pub async fn subscribe(
        self: &Arc<Self>,
        subscriber: PeerId,
        pc: &Arc<dyn PeerConnection>,
        state: watch::Receiver<RTCPeerConnectionState>,
    ) -> Result<usize, MediaError> {
        let tracks: Vec<Arc<Published>> = self.tracks().into_iter().filter(|t| t.owner != subscriber).collect();
        for (i, t) in tracks.iter().enumerate() {
            let ssrc = self.next_ssrc.fetch_add(1, Ordering::Relaxed) as u32;
            let id = format!("{}-{}-{i}", t.owner.0, t.media_ssrc);
            let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("peer-{}", t.owner.0),
                id.clone(),
                id,
                t.kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                    codec: t.codec.clone(),
                    ..Default::default()
                }],
            )));
            pc.add_track(local.clone() as Arc<dyn TrackLocal>).await.map_err(MediaError::rtc)?;
            spawn_forward(t.clone(), local, ssrc, state.clone(), self.stats.clone());
        }
        Ok(tracks.len())
    }
}

fn spawn_forward(
    track: Arc<Published>,
    out: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    mut state: watch::Receiver<RTCPeerConnectionState>,
    stats: Arc<RoomStats>,
) {
    let video = track.kind == RtpCodecKind::Video;
    let h264 = super::h264::is_h264(&track.codec);
    let pt = if !video {
        OPUS_PT
    } else if h264 {
        super::h264::H264_PT
    } else {
        VP8_PT
    };
    // Keyframe requests from this subscriber go to the publisher.
    {
        let (out, track, stats) = (out.clone(), track.clone(), stats.clone());
        tokio::spawn(async move {
            while let Some(ev) = out.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(pkts) = ev {
                    if pkts.iter().any(|p| p.as_any().is::<PictureLossIndication>()) {
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        track.request_keyframe().await;
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut rx = track.tx.subscribe();
        // Wait for the leg to come up (or give up), then ask for a keyframe so the new
        // viewer sees a picture at once instead of waiting for the next periodic one.
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(30), state.wait_for(|s| *s == RTCPeerConnectionState::Connected)).await,
            Ok(Ok(_))
        );
        if !up {
            return;
        }
        if video {
            stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            track.request_keyframe().await;
        }
        let mut started = !video;
        // Encoders throttle keyframe requests (and RTCP can be lost): ask again each
        // second until a keyframe starts this viewer's video.
        let mut asked = std::time::Instant::now();
        let mut write_errors = 0u32;
        loop {
            let mut p = match rx.recv().await {
                Ok(p) => p,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: resume at the next keyframe, and ask for one.
                    started = !video;
                    track.request_keyframe().await;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if p.payload.is_empty() {
                continue;
            }
            if !started {
                let key = if h264 { super::h264::is_h264_keyframe_start(&p.payload) } else { super::is_vp8_keyframe_start(&p.payload) };
                if !key {
                    if asked.elapsed() >= Duration::from_secs(1) {
                        asked = std::time::Instant::now();
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        track.request_keyframe().await;
                    }
                    continue;
                }
                started = true;
            }
            p.header.ssrc = ssrc;
            p.header.payload_type = pt;
            p.header.extension = false;
            p.header.extensions.clear();
            let len = p.payload.len() as u64;
            match out.write_rtp(p).await {
                Ok(_) => write_errors = 0,
                // A transient refusal (the leg is renegotiating) is not the end; a leg
                // that keeps refusing is gone.
                Err(_) => {
                    write_errors += 1;
                    if write_errors > 200 || matches!(*state.borrow(), RTCPeerConnectionState::Closed | RTCPeerConnectionState::Failed) {
                        break;
                    }
                    continue;
                }
            }
            stats.packets_out.fetch_add(1, Ordering::Relaxed);
            stats.bytes_out.fetch_add(len, Ordering::Relaxed);
        }
    });
}
