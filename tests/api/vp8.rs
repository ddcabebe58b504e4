//! libvpx VP8 encoder and decoder for the test peers (Debian's libvpx through
//! env-libvpx-sys): real VP8 into the SFU, decodable frames out of it.
#![allow(dead_code)]

use std::mem::MaybeUninit;
use std::ptr;

use vpx_sys::*;

fn check(e: vpx_codec_err_t, what: &str) -> Result<(), String> {
    if e == vpx_codec_err_t::VPX_CODEC_OK { Ok(()) } else { Err(format!("{what}: {e:?}")) }
}

pub struct Vp8Encoder { ctx: Box<vpx_codec_ctx_t>, w: u32, h: u32 }
unsafe impl Send for Vp8Encoder {}
impl Vp8Encoder {
    pub fn new(w: u32, h: u32, fps: i32, kbps: u32) -> Result<Self, String> {
        unsafe {
            let iface = vpx_codec_vp8_cx();
            let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed().assume_init();
            check(vpx_codec_enc_config_default(iface, &mut cfg, 0), "enc_config_default")?;
            cfg.g_w = w;
            cfg.g_h = h;
            cfg.g_timebase = vpx_rational { num: 1, den: fps };
            cfg.rc_target_bitrate = kbps;
            cfg.g_threads = 1;
            cfg.g_lag_in_frames = 0; // realtime: one frame in, one frame out
            cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
            cfg.kf_max_dist = 100_000; // keyframes only on first frame / PLI
            cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            check(vpx_codec_enc_init_ver(&mut *ctx, iface, &cfg, 0, VPX_ENCODER_ABI_VERSION as i32), "enc_init")?;
            Ok(Self { ctx, w, h })
        }
    }
    /// `i420` = w*h*3/2 bytes. Returns (frame bytes, is_keyframe) per output packet.
    pub fn encode(&mut self, i420: &[u8], pts: i64, force_kf: bool) -> Result<Vec<(Vec<u8>, bool)>, String> {
        assert!(i420.len() >= (self.w * self.h * 3 / 2) as usize);
        unsafe {
            let mut img = MaybeUninit::<vpx_image_t>::zeroed().assume_init();
            if vpx_img_wrap(&mut img, vpx_img_fmt::VPX_IMG_FMT_I420, self.w, self.h, 1, i420.as_ptr() as *mut u8).is_null() {
                return Err("vpx_img_wrap".into());
            }
            let flags = if force_kf { VPX_EFLAG_FORCE_KF as vpx_enc_frame_flags_t } else { 0 };
            check(vpx_codec_encode(&mut *self.ctx, &img, pts, 1, flags, VPX_DL_REALTIME as _), "encode")?;
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut out = Vec::new();
            loop {
                let pkt = vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() { break; }
                if (*pkt).kind == vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = &(*pkt).data.frame;
                    let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                    out.push((data, f.flags & VPX_FRAME_IS_KEY != 0));
                }
            }
            Ok(out)
        }
    }
}
impl Drop for Vp8Encoder {
    fn drop(&mut self) { unsafe { vpx_codec_destroy(&mut *self.ctx); } }
}

pub struct Vp8Decoder { ctx: Box<vpx_codec_ctx_t> }
unsafe impl Send for Vp8Decoder {}
impl Vp8Decoder {
    pub fn new() -> Result<Self, String> {
        unsafe {
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            let cfg = vpx_codec_dec_cfg_t { threads: 1, w: 0, h: 0 };
            check(vpx_codec_dec_init_ver(&mut *ctx, vpx_codec_vp8_dx(), &cfg, 0, VPX_DECODER_ABI_VERSION as i32), "dec_init")?;
            Ok(Self { ctx })
        }
    }
    /// Decode one complete VP8 frame; returns (width, height, luma[0]) of each produced image.
    pub fn decode(&mut self, frame: &[u8]) -> Result<Vec<(u32, u32, u8)>, String> {
        unsafe {
            check(vpx_codec_decode(&mut *self.ctx, frame.as_ptr(), frame.len() as u32, ptr::null_mut(), 0), "decode")?;
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut out = Vec::new();
            loop {
                let img = vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() { break; }
                out.push(((*img).d_w, (*img).d_h, *(*img).planes[0]));
            }
            Ok(out)
        }
    }
}
impl Drop for Vp8Decoder {
    fn drop(&mut self) { unsafe { vpx_codec_destroy(&mut *self.ctx); } }
}

/// Synthetic I420 test pattern (moving gradient).
pub fn test_pattern(w: u32, h: u32, n: u32) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    let mut buf = vec![128u8; w * h * 3 / 2];
    for y in 0..h { for x in 0..w { buf[y * w + x] = ((x + y + n as usize * 4) & 0xff) as u8; } }
    buf
}

