//! Photo decoding and the image model's preprocessing.
//!
//! Decoding checks the declared dimensions against a pixel limit *before* allocating,
//! caps decoder memory, and applies the EXIF orientation so a phone photo taken upright
//! is classified upright. Preprocessing mirrors `models/training/surface_features.py`
//! exactly (the parity test holds both to the same outputs): 8-bit luma with the
//! manifest's weights, centre crop to a square, area-average resampling, scale.

use std::io::Cursor;

use ::image::{DynamicImage, ImageDecoder, ImageReader};

use super::manifest::ImagePreprocessing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the file is not a JPEG or PNG image")]
    UnknownFormat,
    #[error("the image is {w}x{h} pixels; the limit is {max} pixels")]
    TooManyPixels { w: u32, h: u32, max: u64 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("the image is too small ({w}x{h}); it needs at least 16 pixels on each side")]
    TooSmall { w: u32, h: u32 },
}

/// 8-bit grey pixels, row-major.
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Decodes a JPEG or PNG, applying its EXIF orientation, into 8-bit luma.
pub fn decode(bytes: &[u8], max_pixels: u64, luma_weights: [f64; 3]) -> Result<Gray, ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(::image::ImageFormat::Jpeg | ::image::ImageFormat::Png) => {}
        _ => return Err(ImageError::UnknownFormat),
    }
    let mut decoder = reader.into_decoder().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(ImageError::TooManyPixels { w, h, max: max_pixels });
    }
    if w < 16 || h < 16 {
        return Err(ImageError::TooSmall { w, h });
    }
    let mut limits = ::image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    decoder.set_limits(limits).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(::image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(to_luma(&img, luma_weights))
}

/// Grey images are used as they are; colour ones are converted with `weights`
/// (rounded to the nearest integer, like the reference).
fn to_luma(img: &DynamicImage, weights: [f64; 3]) -> Gray {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let pixels = match img {
        DynamicImage::ImageLuma8(g) => g.as_raw().clone(),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => img.to_luma8().into_raw(),
        _ => {
            let rgb = img.to_rgb8();
            rgb.as_raw()
                .chunks_exact(3)
                .map(|p| {
                    let l = weights[0] * f64::from(p[0]) + weights[1] * f64::from(p[1]) + weights[2] * f64::from(p[2]);
                    (l + 0.5).floor().clamp(0.0, 255.0) as u8
                })
                .collect()
        }
    };
    Gray { width, height, pixels }
}

/// Area-average weights: for each output index, (first input index, weights).
fn box_weights(n_in: usize, n_out: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|i| {
            let (a, b) = (i as f64 * scale, (i + 1) as f64 * scale);
            let (j0, j1) = (a.floor() as usize, (b.ceil() as usize).min(n_in));
            let mut w: Vec<f64> = (j0..j1).map(|j| b.min(j as f64 + 1.0) - a.max(j as f64)).collect();
            let sum: f64 = w.iter().sum();
            w.iter_mut().for_each(|x| *x /= sum);
            (j0, w)
        })
        .collect()
}

/// Centre-crops to a square and resamples to `size` x `size`, scaled by `scale`.
pub fn preprocess(g: &Gray, p: &ImagePreprocessing) -> Vec<f32> {
    let size = p.image_size as usize;
    let s = g.width.min(g.height);
    let (top, left) = ((g.height - s) / 2, (g.width - s) / 2);
    let wts = box_weights(s, size);
    // Rows first: (size x s), then columns: (size x size). The weights are computed in
    // f64 like the reference; the sums run in f32, which the compiler vectorizes (the
    // row pass streams whole source rows). The parity test holds the result within
    // 1e-5 of the Python reference, and the model's outputs within 1e-4.
    let wf: Vec<(usize, Vec<f32>)> = wts.iter().map(|(j0, w)| (*j0, w.iter().map(|x| *x as f32).collect())).collect();
    let scale = p.scale as f32;
    let mut rows = vec![0f32; size * s];
    for (i, (j0, w)) in wf.iter().enumerate() {
        let dst = &mut rows[i * s..(i + 1) * s];
        for (k, wk) in w.iter().enumerate() {
            let src = &g.pixels[(top + j0 + k) * g.width + left..][..s];
            let wk = wk * scale;
            for (d, v) in dst.iter_mut().zip(src) {
                *d += wk * f32::from(*v);
            }
        }
    }
    let mut out = vec![0f32; size * size];
    for i in 0..size {
        let row = &rows[i * s..(i + 1) * s];
        let o = &mut out[i * size..(i + 1) * size];
        for (dst, (j0, w)) in o.iter_mut().zip(&wf) {
            *dst = w.iter().zip(&row[*j0..]).map(|(wk, v)| wk * v).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(size: u32) -> ImagePreprocessing {
        ImagePreprocessing { kind: "luma_center_crop_box_resize".into(), version: 1, image_size: size, luma_weights: [0.299, 0.587, 0.114], scale: 1.0 / 255.0 }
    }

    #[test]
    fn box_resampling_preserves_a_flat_image_and_averages_blocks() {
        let g = Gray { width: 40, height: 30, pixels: vec![255; 1200] };
        assert!(preprocess(&g, &pre(16)).iter().all(|v| (v - 1.0).abs() < 1e-6));
        // 2x2 blocks average exactly when halving.
        let px: Vec<u8> = (0..32 * 32).map(|i| if (i / 32) % 2 == 0 { 0 } else { 255 }).collect();
        let out = preprocess(&Gray { width: 32, height: 32, pixels: px }, &pre(16));
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-6));
    }

    /// A JPEG with an EXIF APP1 segment saying "rotate 90 degrees clockwise" (6).
    fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
        let img = ::image::GrayImage::from_fn(w, h, |x, _| ::image::Luma([if x < w / 2 { 0 } else { 255 }]));
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), ::image::ImageFormat::Jpeg).unwrap();
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend(1u16.to_le_bytes()); // one IFD entry
        tiff.extend(0x0112u16.to_le_bytes()); // Orientation
        tiff.extend(3u16.to_le_bytes()); // SHORT
        tiff.extend(1u32.to_le_bytes());
        tiff.extend(orientation.to_le_bytes());
        tiff.extend([0, 0]);
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(((app1.len() + 2) as u16).to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied_before_preprocessing() {
        let upright = decode(&jpeg_with_orientation(64, 32, 1), 1 << 20, [0.3, 0.6, 0.1]).unwrap();
        assert_eq!((upright.width, upright.height), (64, 32));
        let rotated = decode(&jpeg_with_orientation(64, 32, 6), 1 << 20, [0.3, 0.6, 0.1]).unwrap();
        assert_eq!((rotated.width, rotated.height), (32, 64));
        // Left half dark before rotation: after 90 degrees clockwise the top half is dark.
        assert!(rotated.pixels[2 * 32 + 16] < 64 && rotated.pixels[60 * 32 + 16] > 192);
    }

    #[test]
    fn garbage_and_oversized_images_are_refused() {
        assert_eq!(decode(b"not an image at all, not at all", 1 << 20, [0.3, 0.6, 0.1]).err(), Some(ImageError::UnknownFormat));
        let mut png = Vec::new();
        ::image::GrayImage::new(64, 64).write_to(&mut Cursor::new(&mut png), ::image::ImageFormat::Png).unwrap();
        assert!(matches!(decode(&png, 1000, [0.3, 0.6, 0.1]), Err(ImageError::TooManyPixels { .. })));
        assert!(decode(&png, 1 << 20, [0.3, 0.6, 0.1]).is_ok());
        assert!(matches!(decode(&png[..png.len() / 2], 1 << 20, [0.3, 0.6, 0.1]), Err(ImageError::Corrupt(_))));
    }
}
