//! H.264 on the live path (RFC 6184, packetization-mode 1, constrained baseline): the
//! codec the media engine offers after VP8, keyframe (IDR) detection on RTP payloads,
//! and the frame tap's decoder thread for H.264 tracks (depacketized with the `rtc`
//! crate, decoded with OpenH264 from the `openh264` crate's bundled source).
//!
//! An access unit is every packet with one RTP timestamp, the last one carrying the
//! marker bit (RFC 6184 §5.1). One that holds an IDR slice (NAL type 5) is a keyframe:
//! senders put SPS (7) and PPS (8) in front of it, so it decodes alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;

use super::frames::{decoded_picture, deliver, is_gap, tracking_due, LumaFrame, TrackingLink};

/// Payload type this server negotiates for H.264.
pub const H264_PT: u8 = 102;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// H.264 constrained baseline, level 3.1, non-interleaved mode (what Safari and
/// Chrome offer by default).
pub fn h264() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
        rtcp_feedback: vec![],
    }
}

/// True for the H.264 codec (by MIME type, case-insensitive as RFC 6838 says).
pub fn is_h264(codec: &RTCRtpCodec) -> bool {
    codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_H264)
}

/// The NAL unit types an RTP payload carries, with whether the payload starts its NAL
/// unit (false for the continuation of a fragmented one).
fn nal_types(p: &[u8]) -> Vec<(u8, bool)> {
    let Some(&b0) = p.first() else { return vec![] };
    match b0 & 0x1f {
        STAP_A => {
            let mut out = Vec::new();
            let mut off = 1;
            while off + 2 < p.len() {
                let size = usize::from(p[off]) << 8 | usize::from(p[off + 1]);
                off += 2;
                if size == 0 || off + size > p.len() {
                    break;
                }
                out.push((p[off] & 0x1f, true));
                off += size;
            }
            out
        }
        FU_A => p.get(1).map(|b1| vec![(b1 & 0x1f, b1 & 0x80 != 0)]).unwrap_or_default(),
        t => vec![(t, true)],
    }
}

/// True when the payload carries (part of) an IDR slice.
pub fn has_idr(p: &[u8]) -> bool {
    nal_types(p).iter().any(|&(t, _)| t == NAL_IDR)
}

/// True when this RTP payload can start a subscriber's video: it carries an SPS, or
/// the start of an IDR slice.
pub fn is_h264_keyframe_start(p: &[u8]) -> bool {
    nal_types(p).iter().any(|&(t, start)| t == NAL_SPS || (t == NAL_IDR && start))
}

/// Decodes one access unit (Annex B); returns the luma plane (stride removed) when
/// `copy` is set and a picture came out.
fn decode(dec: &mut Decoder, au: &[u8], copy: bool) -> Result<Option<(usize, usize, Vec<u8>)>, String> {
    let out = dec.decode(au).map_err(|e| format!("h264 decode: {e}"))?;
    let Some(yuv) = out else { return Ok(None) };
    if !copy {
        return Ok(None);
    }
    let (w, h) = yuv.dimensions();
    let stride = yuv.strides().0;
    let y = yuv.y();
    if w == 0 || h == 0 || stride < w || y.len() < (h - 1) * stride + w {
        return Err("h264 decode: bad plane".into());
    }
    let mut pixels = Vec::with_capacity(w * h);
    for row in 0..h {
        pixels.extend_from_slice(&y[row * stride..row * stride + w]);
    }
    Ok(Some((w, h, pixels)))
}

/// The frame tap's decoder thread for an H.264 track: as the VP8 one (see
/// [`super::frames`]), with access units in place of frames and IDR access units as
/// keyframes.
pub(super) fn run(
    pkt_rx: std::sync::mpsc::Receiver<rtc::rtp::Packet>,
    want: Arc<AtomicBool>,
    synced: Arc<AtomicBool>,
    snap: Arc<AtomicBool>,
    tracking: Option<TrackingLink>,
    frames_tx: mpsc::Sender<LumaFrame>,
) {
    let Ok(mut dec) = Decoder::new() else { return };
    let mut depack = H264Packet::default();
    let mut au = Vec::new();
    // The RTP timestamp of the access unit being collected, and whether every packet
    // of it so far arrived and it holds an IDR slice.
    let mut au_ts: Option<u32> = None;
    let mut au_ok = false;
    let mut key = false;
    let mut last_seq: Option<u16> = None;
    let mut last_tracking_ts: Option<u32> = None;
    while let Ok(p) = pkt_rx.recv() {
        let fps = tracking.as_ref().map_or(0, |t| *t.fps.borrow());
        if fps == 0 {
            synced.store(false, Ordering::Relaxed);
        }
        let ts = p.header.timestamp;
        if au_ts != Some(ts) {
            // A new access unit; one left without its marker packet is incomplete.
            if au_ts.is_some() && !au.is_empty() {
                synced.store(false, Ordering::Relaxed);
            }
            au_ts = Some(ts);
            au_ok = true;
            au.clear();
            key = false;
        }
        if is_gap(last_seq, p.header.sequence_number) {
            // This access unit may miss a packet (its first ones included) and later
            // ones a reference; a partly collected fragment goes with the depacketizer.
            au_ok = false;
            depack = H264Packet::default();
            synced.store(false, Ordering::Relaxed);
        }
        last_seq = Some(p.header.sequence_number);
        key |= has_idr(&p.payload);
        match depack.depacketize(&p.payload) {
            Ok(b) => au.extend_from_slice(&b),
            Err(_) => au_ok = false,
        }
        if !p.header.marker {
            continue;
        }
        au_ts = None;
        let complete = std::mem::take(&mut au_ok) && !au.is_empty();
        let decode_it = complete && if key { fps > 0 || want.load(Ordering::Relaxed) } else { fps > 0 && synced.load(Ordering::Relaxed) };
        if !complete {
            synced.store(false, Ordering::Relaxed);
        }
        if !decode_it {
            au.clear();
            continue;
        }
        let track_due = fps > 0 && tracking_due(last_tracking_ts, ts, fps);
        let sample_due = want.load(Ordering::Relaxed);
        let started = Instant::now();
        let decoded = decode(&mut dec, &au, track_due || sample_due);
        au.clear();
        let Some(picture) = decoded_picture(decoded, ts, started, key && fps > 0, &synced, tracking.as_ref()) else { continue };
        if !deliver(picture, track_due, sample_due, tracking.as_ref(), &want, &snap, &frames_tx, &mut last_tracking_ts) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idr_access_units_are_recognised_in_every_packetization() {
        // Single NAL units: IDR slice, SPS, non-IDR slice.
        assert!(is_h264_keyframe_start(&[0x65, 0x88]));
        assert!(is_h264_keyframe_start(&[0x67, 0x42]));
        assert!(!is_h264_keyframe_start(&[0x41, 0x9a]));
        // STAP-A with SPS and PPS.
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(is_h264_keyframe_start(&stap));
        assert!(!has_idr(&stap));
        // FU-A of an IDR slice: the start fragment starts, a middle one does not.
        assert!(is_h264_keyframe_start(&[0x7c, 0x85, 0x00]));
        assert!(!is_h264_keyframe_start(&[0x7c, 0x05, 0x00]));
        assert!(has_idr(&[0x7c, 0x05, 0x00]));
        assert!(!is_h264_keyframe_start(&[]));
    }

    #[test]
    fn h264_is_matched_by_mime_type() {
        assert!(is_h264(&h264()));
        assert!(!is_h264(&super::super::vp8()));
    }
}
