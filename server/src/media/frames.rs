//! The frame tap: decodes a published VP8 track (libvpx, Debian's `libvpx-dev`) and
//! hands out luma frames at a sampling rate, plus on-demand snapshots, for diagnosis.
//!
//! Forwarding never waits for it: the tap takes packets from the track's broadcast
//! with `try_send` into a bounded queue feeding a dedicated decoder thread. It decodes
//! only what it needs: once per sampling interval (and on a snapshot request) it asks
//! the publisher for a keyframe (PLI) and decodes that keyframe alone; every other
//! frame is skipped without decoding. A keyframe needs no earlier frame, so nothing
//! is lost, and the decoder costs one frame per interval instead of every frame.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use tokio::sync::{broadcast, mpsc};
use vpx_sys::*;

use super::room::Published;

/// A decoded frame's luma plane.
#[derive(Clone, Debug)]
pub struct LumaFrame {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    pub snapshot: bool,
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

/// Starts decoding a published VP8 track; a frame is delivered every `every` (and on
/// snapshot requests). Stops when the receiver is dropped or the track ends.
pub fn tap(track: Arc<Published>, every: Duration) -> FrameTap {
    let (frames_tx, frames) = mpsc::channel::<LumaFrame>(2);
    let snapshot = Arc::new(AtomicBool::new(false));
    let (pkt_tx, pkt_rx) = std::sync::mpsc::sync_channel::<rtc::rtp::Packet>(512);
    // Set while a sample is due: the thread decodes the next keyframe, then clears it.
    let want = Arc::new(AtomicBool::new(true));
    // Async side: copy packets out of the fan-out without ever waiting, and ask for a
    // keyframe whenever a sample is due.
    {
        let (track, want, snap) = (track.clone(), want.clone(), snapshot.clone());
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
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {
                        let now = tokio::time::Instant::now();
                        if now >= next_sample || snap.load(Ordering::Relaxed) {
                            want.store(true, Ordering::Relaxed);
                            next_sample = now + every;
                        }
                        // Ask (again after a second without one) while a sample waits.
                        if want.load(Ordering::Relaxed) && now.duration_since(asked) >= Duration::from_secs(1) {
                            asked = now;
                            track.request_keyframe().await;
                        }
                    }
                }
            }
        });
    }
    let snap = snapshot.clone();
    let spawned = std::thread::Builder::new().name("vp8-tap".into()).spawn(move || {
        let Ok(mut dec) = Vp8Decoder::new() else { return };
        let mut depack = Vp8Packet::default();
        let mut frame = Vec::new();
        // Collecting the packets of a keyframe; other frames are skipped.
        let mut collecting = false;
        while let Ok(p) = pkt_rx.recv() {
            if super::is_vp8_keyframe_start(&p.payload) {
                collecting = want.load(Ordering::Relaxed);
                frame.clear();
            } else if p.payload.first().is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0) {
                // The start (S=1, partition 0) of an inter frame: not needed.
                collecting = false;
            }
            if !collecting {
                continue;
            }
            match depack.depacketize(&p.payload) {
                Ok(b) => frame.extend_from_slice(&b),
                Err(_) => {
                    collecting = false;
                    continue;
                }
            }
            if !p.header.marker {
                continue;
            }
            collecting = false;
            if let Ok(Some((width, height, pixels))) = dec.decode(&frame, true) {
                want.store(false, Ordering::Relaxed);
                let snapshot = snap.swap(false, Ordering::Relaxed);
                match frames_tx.try_send(LumaFrame { width, height, pixels, snapshot }) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            frame.clear();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a frame tap thread");
    }
    FrameTap { frames, snapshot }
}
