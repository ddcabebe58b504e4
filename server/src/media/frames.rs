//! The frame tap: decodes a published VP8 track (libvpx, Debian's `libvpx-dev`), or an
//! H.264 one (OpenH264, see [`super::h264`]), and hands out luma frames at a sampling
//! rate, plus on-demand snapshots, for diagnosis, and tracking frames for annotation
//! anchoring.
//!
//! Forwarding never waits for it: the tap takes packets from the track's broadcast
//! with `try_send` into a bounded queue feeding a dedicated decoder thread. It decodes
//! only what it needs:
//!
//! - **Keyframes only** (no annotation anchored in the session): once per sampling
//!   interval (and on a snapshot request) it asks the publisher for a keyframe (PLI,
//!   RFC 4585 §6.3.1) and decodes that keyframe alone; every other frame is skipped
//!   without decoding. A keyframe needs no earlier frame, so nothing is lost, and the
//!   decoder costs one frame per interval instead of every frame.
//! - **Every frame** (the room's tracking rate, [`TrackingLink::fps`], is above 0):
//!   inter frames are predicted from earlier ones (RFC 6386 §9.7), so from a keyframe
//!   on (asked for with a PLI) every frame is decoded; every `1/fps` of media time
//!   (RTP timestamps, 90 kHz) one is delivered as a [`TrackingFrame`] into a watch
//!   channel: latest wins, nothing stale queues up. Diagnosis samples are then taken
//!   from the decoded stream without a PLI. A gap in the RTP sequence numbers (loss,
//!   a reordered packet, or this tap's queue overflowing) breaks the chain of
//!   references: decoding stops until the next keyframe, asked for with a PLI within
//!   100 ms (at most one a second, as for samples).

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use tokio::sync::{broadcast, mpsc, watch};
use vpx_sys::*;

use super::room::{Published, RoomStats};

/// A decoded frame's luma plane.
#[derive(Clone, Debug)]
pub struct LumaFrame {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    pub snapshot: bool,
    /// When the frame's last packet had arrived and decoding began: diagnosis latency is
    /// measured from here.
    pub arrived: Instant,
}

/// libvpx VP8 decoder.
pub struct Vp8Decoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// The context is only used from one thread at a time.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    pub fn new() -> Result<Self, String> {
        // SAFETY: zeroed is the documented initial state of a codec context; init
        // fills it and its result is checked.
        unsafe {
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            let cfg = vpx_codec_dec_cfg_t { threads: 1, w: 0, h: 0 };
            let e = vpx_codec_dec_init_ver(&mut *ctx, vpx_codec_vp8_dx(), &cfg, 0, VPX_DECODER_ABI_VERSION as i32);
            if e != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(format!("vp8 decoder init: {e:?}"));
            }
            Ok(Vp8Decoder { ctx })
        }
    }

    /// Decodes one complete frame; returns the luma plane when `copy` is set.
    pub fn decode(&mut self, frame: &[u8], copy: bool) -> Result<Option<(usize, usize, Vec<u8>)>, String> {
        // SAFETY: `frame` outlives the call; images returned by get_frame stay valid
        // until the next decode, and are read within their d_w x d_h / stride bounds.
        unsafe {
            let e = vpx_codec_decode(&mut *self.ctx, frame.as_ptr(), frame.len() as u32, ptr::null_mut(), 0);
            if e != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(format!("vp8 decode: {e:?}"));
            }
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut out = None;
            loop {
                let img = vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() {
                    break;
                }
                if copy {
                    let (w, h, stride) = ((*img).d_w as usize, (*img).d_h as usize, (*img).stride[0] as usize);
                    let mut pixels = Vec::with_capacity(w * h);
                    for y in 0..h {
                        pixels.extend_from_slice(std::slice::from_raw_parts((*img).planes[0].add(y * stride), w));
                    }
                    out = Some((w, h, pixels));
                }
            }
            Ok(out)
        }
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new`.
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A decoded frame for annotation tracking (luma plane).
#[derive(Debug)]
pub struct TrackingFrame {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    /// RTP timestamp of the frame (90 kHz media clock, RFC 7741 §4.1): which picture.
    pub rtp_timestamp: u32,
    /// Tracking frames delivered in the room before this one (gaps: frames replaced
    /// before anyone took them).
    pub seq: u64,
    pub decoded_at: Instant,
}

/// What a tap needs from its room for annotation tracking.
#[derive(Clone)]
pub struct TrackingLink {
    /// Tracking frames per second wanted; 0: keyframes only.
    pub fps: watch::Receiver<u32>,
    /// Where tracking frames go (the latest replaces one not yet taken).
    pub frames: watch::Sender<Option<Arc<TrackingFrame>>>,
    pub stats: Arc<RoomStats>,
    /// The session ended: the tap stops.
    pub ended: watch::Receiver<bool>,
}

/// A running tap; dropping the receiver stops it.
pub struct FrameTap {
    pub frames: mpsc::Receiver<LumaFrame>,
    snapshot: Arc<AtomicBool>,
}

impl FrameTap {
    /// The next decoded frame is delivered as a snapshot, whatever the sampling rate.
    pub fn request_snapshot(&self) {
        self.snapshot.store(true, Ordering::Relaxed);
    }

    pub fn snapshot_flag(&self) -> Arc<AtomicBool> {
        self.snapshot.clone()
    }
}

/// True when `seq` does not follow `last` (RTP sequence numbers wrap at 2^16).
pub(super) fn is_gap(last: Option<u16>, seq: u16) -> bool {
    last.is_some_and(|l| l.wrapping_add(1) != seq)
}

/// A decoded picture's luma plane and when its decoding began.
pub(super) struct Decoded {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    pub rtp_timestamp: u32,
    pub started: Instant,
}

/// Accounts a decode (time, count) and keeps the decoder's sync state: a failed decode
/// waits for the next keyframe, a decoded keyframe (when `resync`) starts a run of
/// decodable frames. Returns the picture when the decoder produced one to copy out.
pub(super) fn decoded_picture(
    result: Result<Option<(usize, usize, Vec<u8>)>, String>,
    rtp_timestamp: u32,
    started: Instant,
    resync: bool,
    synced: &AtomicBool,
    tracking: Option<&TrackingLink>,
) -> Option<Decoded> {
    if let Some(t) = tracking {
        t.stats.frames_decoded.fetch_add(1, Ordering::Relaxed);
        t.stats.decode_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    let Ok(decoded) = result else {
        synced.store(false, Ordering::Relaxed);
        return None;
    };
    if resync {
        synced.store(true, Ordering::Relaxed);
    }
    decoded.map(|(width, height, pixels)| Decoded { width, height, pixels, rtp_timestamp, started })
}

/// Hands a decoded picture to whoever is due (shared by the VP8 and H.264 threads): the
/// room's tracking (latest wins) and/or the diagnosis sampler (a snapshot when one was
/// asked for). Returns false when the sampler's receiver is gone: the thread stops.
#[allow(clippy::too_many_arguments)]
pub(super) fn deliver(
    d: Decoded,
    track_due: bool,
    sample_due: bool,
    tracking: Option<&TrackingLink>,
    want: &AtomicBool,
    snap: &AtomicBool,
    frames_tx: &mpsc::Sender<LumaFrame>,
    last_tracking_ts: &mut Option<u32>,
) -> bool {
    let Decoded { width, height, pixels, rtp_timestamp, started } = d;
    let mut pixels = Some(pixels);
    if let (true, Some(t)) = (track_due, tracking) {
        let px = if sample_due { pixels.clone() } else { pixels.take() };
        let seq = t.stats.tracking_frames.fetch_add(1, Ordering::Relaxed);
        let f = TrackingFrame { width, height, pixels: px.unwrap_or_default(), rtp_timestamp, seq, decoded_at: Instant::now() };
        t.frames.send_replace(Some(Arc::new(f)));
        *last_tracking_ts = Some(rtp_timestamp);
    }
    if let (true, Some(pixels)) = (sample_due, pixels) {
        want.store(false, Ordering::Relaxed);
        let snapshot = snap.swap(false, Ordering::Relaxed);
        match frames_tx.try_send(LumaFrame { width, height, pixels, snapshot, arrived: started }) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// True when a frame with RTP timestamp `ts` is due for tracking, the last delivered
/// having `last`, at `fps`: at least 90 % of a period of media time later (so 30 fps
/// video gives exactly every third frame at 10 fps), or earlier (a new stream).
pub(super) fn tracking_due(last: Option<u32>, ts: u32, fps: u32) -> bool {
    let Some(last) = last else { return true };
    let period = 90_000 / fps.max(1);
    let d = ts.wrapping_sub(last);
    d >= period * 9 / 10 || d > u32::MAX / 2
}

/// Starts decoding a published VP8 or H.264 track; a frame is delivered every `every`
/// (when given) and on snapshot requests, and tracking frames go to `tracking` at the
/// rate it asks for. Stops when the receiver is dropped, or the session ends.
pub fn tap(track: Arc<Published>, every: Option<Duration>, tracking: Option<TrackingLink>) -> FrameTap {
    let (frames_tx, frames) = mpsc::channel::<LumaFrame>(2);
    let snapshot = Arc::new(AtomicBool::new(false));
    let (pkt_tx, pkt_rx) = std::sync::mpsc::sync_channel::<rtc::rtp::Packet>(512);
    // Set while a sample is due: the thread decodes the next keyframe (or, while it
    // decodes every frame, the next frame), then clears it.
    let want = Arc::new(AtomicBool::new(every.is_some()));
    // Set by the thread while it decodes every frame (a keyframe and no gap since).
    let synced = Arc::new(AtomicBool::new(false));
    // Async side: copy packets out of the fan-out without ever waiting, and ask for a
    // keyframe whenever a sample is due or tracking needs one.
    {
        let (track, want, snap, synced) = (track.clone(), want.clone(), snapshot.clone(), synced.clone());
        let mut fps_rx = tracking.as_ref().map(|t| t.fps.clone());
        let mut ended = tracking.as_ref().map(|t| t.ended.clone());
        let mut rx = track.subscribe_packets();
        tokio::spawn(async move {
            let mut next_sample = tokio::time::Instant::now();
            let mut asked = tokio::time::Instant::now() - Duration::from_secs(10);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(p) => {
                            if let Err(std::sync::mpsc::TrySendError::Disconnected(_)) = pkt_tx.try_send(p) {
                                break;
                            }
                            continue;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    // Tracking switched on: ask for its keyframe now, not at the next tick.
                    r = async { fps_rx.as_mut().expect("guarded").changed().await }, if fps_rx.is_some() => {
                        if r.is_err() {
                            fps_rx = None;
                        }
                    }
                    r = async { ended.as_mut().expect("guarded").wait_for(|e| *e).await.map(|_| ()) }, if ended.is_some() => {
                        if r.is_ok() {
                            break;
                        }
                        ended = None;
                    }
                    _ = tick.tick() => {}
                }
                let now = tokio::time::Instant::now();
                if let Some(every) = every {
                    if now >= next_sample {
                        want.store(true, Ordering::Relaxed);
                        next_sample = now + every;
                    }
                }
                if snap.load(Ordering::Relaxed) {
                    want.store(true, Ordering::Relaxed);
                }
                let tracking = fps_rx.as_ref().is_some_and(|f| *f.borrow() > 0);
                // Ask (again after a second without one) while a keyframe is needed: a
                // sample waits and no frame is being decoded, or tracking is on and the
                // decoder has no reference yet.
                let needed = (want.load(Ordering::Relaxed) || tracking) && !synced.load(Ordering::Relaxed);
                if needed && now.duration_since(asked) >= Duration::from_secs(1) {
                    asked = now;
                    track.request_keyframe().await;
                }
            }
        });
    }
    let snap = snapshot.clone();
    if super::h264::is_h264(&track.codec) {
        let spawned = std::thread::Builder::new()
            .name("h264-tap".into())
            .spawn(move || super::h264::run(pkt_rx, want, synced, snap, tracking, frames_tx));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a frame tap thread");
        }
        return FrameTap { frames, snapshot };
    }
    let spawned = std::thread::Builder::new().name("vp8-tap".into()).spawn(move || {
        let Ok(mut dec) = Vp8Decoder::new() else { return };
        let mut depack = Vp8Packet::default();
        let mut frame = Vec::new();
        // Collecting the packets of a frame that will be decoded.
        let mut collecting = false;
        let mut key = false;
        let mut last_seq: Option<u16> = None;
        let mut last_tracking_ts: Option<u32> = None;
        while let Ok(p) = pkt_rx.recv() {
            let fps = tracking.as_ref().map_or(0, |t| *t.fps.borrow());
            if fps == 0 {
                synced.store(false, Ordering::Relaxed);
            }
            // A lost packet: the frame being collected is incomplete, and the frames
            // after it miss a reference.
            if is_gap(last_seq, p.header.sequence_number) {
                collecting = false;
                synced.store(false, Ordering::Relaxed);
            }
            last_seq = Some(p.header.sequence_number);
            if super::is_vp8_keyframe_start(&p.payload) {
                key = true;
                collecting = fps > 0 || want.load(Ordering::Relaxed);
                frame.clear();
            } else if p.payload.first().is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0) {
                // The start (S=1, partition 0) of an inter frame: needed only while
                // every frame is decoded.
                key = false;
                collecting = fps > 0 && synced.load(Ordering::Relaxed);
                frame.clear();
            }
            if !collecting {
                continue;
            }
            match depack.depacketize(&p.payload) {
                Ok(b) => frame.extend_from_slice(&b),
                Err(_) => {
                    collecting = false;
                    synced.store(false, Ordering::Relaxed);
                    continue;
                }
            }
            if !p.header.marker {
                continue;
            }
            collecting = false;
            let ts = p.header.timestamp;
            let track_due = fps > 0 && tracking_due(last_tracking_ts, ts, fps);
            let sample_due = want.load(Ordering::Relaxed);
            let started = Instant::now();
            let decoded = dec.decode(&frame, track_due || sample_due);
            frame.clear();
            let Some(picture) = decoded_picture(decoded, ts, started, key && fps > 0, &synced, tracking.as_ref()) else { continue };
            if !deliver(picture, track_due, sample_due, tracking.as_ref(), &want, &snap, &frames_tx, &mut last_tracking_ts) {
                return;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a frame tap thread");
    }
    FrameTap { frames, snapshot }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_are_seen_across_the_wrap() {
        assert!(!is_gap(None, 7));
        assert!(!is_gap(Some(7), 8));
        assert!(!is_gap(Some(u16::MAX), 0));
        assert!(is_gap(Some(7), 9));
        assert!(is_gap(Some(7), 7), "a repeat is not the next packet");
    }

    #[test]
    fn tracking_frames_follow_media_time() {
        // 30 fps video (3000 ticks a frame) at 10 fps: every third frame.
        let due: Vec<u32> = (0..10u32)
            .scan(None, |last, n| {
                let ts = 1_000_000 + n * 3000;
                let d = tracking_due(*last, ts, 10);
                if d {
                    *last = Some(ts);
                }
                Some(d.then_some(n))
            })
            .flatten()
            .collect();
        assert_eq!(due, [0, 3, 6, 9]);
        // Timestamps wrap; a stream that restarts earlier is due at once.
        assert!(tracking_due(Some(u32::MAX - 1000), 8000, 10));
        assert!(tracking_due(Some(500_000), 100, 10));
        assert!(!tracking_due(Some(500_000), 503_000, 10));
    }
}
