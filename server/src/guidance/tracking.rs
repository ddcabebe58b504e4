//! Annotation anchoring: keeps an expert's annotation on the object it was drawn on while
//! the customer's camera moves.
//!
//! The server decodes the customer's video (luma only, a few frames per second) and
//! hands each frame to the anchors of the session. An [`Anchor`] follows one annotated
//! region from frame to frame and reports, per frame, an [`AnchorUpdate`]: a homography
//! from the coordinates of the frame the annotation was drawn on to the current frame
//! (normalized video coordinates, so the client can redraw the annotation at any
//! resolution), the number of features that agree with it and a confidence. When the
//! region can no longer be followed the anchor says [`TrackState::Lost`] and the client
//! fades the annotation instead of pointing at the wrong thing.
//!
//! # Method
//!
//! Pure, deterministic, no I/O, no threads, no clocks (str0m style: frames in, updates
//! out).
//!
//! 1. **Pyramid.** Each frame becomes a Gaussian pyramid ([`Pyramid`], 5-tap binomial
//!    filter, halving per level, `f32`). It is built once per frame and shared by all
//!    anchors of a session through [`Anchor::update_with`]; it is reference-counted, so
//!    an anchor keeps the previous frame's pyramid without copying it.
//! 2. **Features.** Shi-Tomasi corners (minimum eigenvalue of the 5x5 structure tensor,
//!    3x3 non-maximum suppression, at least `min_corner_strength`, strongest first,
//!    `min_distance` apart) inside the region. There is deliberately no threshold
//!    relative to the strongest corner: a contrasted occluder would suppress the
//!    region's own corners. A region with fewer than `min_inliers` corners is refused:
//!    too little texture to track.
//! 3. **Flow.** Pyramidal Lucas-Kanade (Bouguet) from the last accepted frame to the new
//!    one, `window` x `window` patches, at most `max_iterations` Gauss-Newton steps per
//!    level, with the patches' mean and contrast matched at every step (auto exposure
//!    changes both between frames), then tracked back; a feature whose forward-backward
//!    error exceeds `fb_max_px` or whose patch residual (mean absolute difference after
//!    matching mean and contrast) exceeds `max_residual` is dropped.
//! 4. **Motion.** Every feature remembers where it was in the creation frame, so the
//!    model is fitted from the creation frame straight to the current one (no
//!    composition of per-frame estimates). RANSAC with a seeded generator (4-point
//!    normalized homography or 2-point similarity, MSAC scoring, `inlier_px` threshold,
//!    adaptive iteration count up to `ransac_iterations`), then two least-squares refits
//!    on the inliers (normalized DLT, smallest eigenvector by Jacobi rotations).
//!    Outliers are dropped.
//! 5. **Drift correction** (`refine`). Frame-to-frame flow accumulates a small error per
//!    frame (about 0.1 px at the region's corners per degree of rotation, measured).
//!    Each inlier is therefore re-located in the current frame against the patch around
//!    its creation-frame position, warped by the local affine approximation of the
//!    fitted transform (from the creation pyramid level nearest the current scale), and
//!    the model is refitted on the corrected positions. A correction larger than
//!    `inlier_px` or with a residual above `max_residual` is not applied.
//! 6. **Sanity.** The fit is refused when the transform degenerates: at the region's
//!    centre a scale outside [0.25, 4] (relative to the creation frame) or a mirror, a
//!    singular-value ratio above 3 (shear), a local area scale at a corner that differs
//!    from the centre's by more than 4x (perspective), or a corner crossing the horizon.
//! 7. **Re-detection.** When fewer than `redetect_below` features remain, new corners are
//!    detected inside the transformed region of the current frame; their creation-frame
//!    position is the inverse of the current transform. With `refine`, a new corner
//!    joins only if the creation frame shows the same thing there (the drift correction
//!    converges within `inlier_px`, residual within `max_residual`): corners of a hand
//!    or a tool in front of the region stay out.
//! 8. **Lost.** A frame is bad when too few features track, the fit fails or
//!    degenerates, the frame is invalid, or the region's centre is outside the frame.
//!    On a bad fit the anchor keeps the last accepted frame as the reference, so a brief
//!    glitch (motion blur, a hand in front) can be bridged. After `lost_after`
//!    consecutive bad frames the state is `Lost`, for good: a lost anchor does not
//!    recover, the expert re-anchors the annotation (a new `Anchor`). Until then the
//!    update keeps the last accepted transform and a halved confidence. A region whose
//!    centre left the frame keeps being fitted while features remain (its transform
//!    stays accurate), but counts as bad.
//!
//! Coordinates: normalized `x, y` in 0..=1 cover the frame edge to edge; internally pixel
//! `i` is centred at `i` (so `x_px = x * width - 0.5`). A frame whose size changes (a
//! resolution switch) re-detects the features at the new size and carries the
//! transform over.
//!
//! docs/anchoring.md has the measured accuracy and cost.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Row-major 3x3 matrix.
type Mat3 = [f64; 9];

const IDENTITY: Mat3 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
/// Largest frame side accepted (4K video and a margin).
const MAX_SIDE: usize = 8192;
/// Most pyramid levels built.
const MAX_LEVELS: usize = 8;
/// A pyramid level is only built while both sides stay at least this large.
const MIN_LEVEL_SIDE: usize = 12;
/// Scale relative to the creation frame outside which the transform has degenerated.
const MIN_SCALE: f64 = 0.25;
const MAX_SCALE: f64 = 4.0;
/// Largest ratio of the local singular values (shear) before the transform degenerates.
const MAX_ANISOTROPY: f64 = 3.0;
/// Largest ratio of the local area scale at a region corner to the one at its centre.
const MAX_PERSPECTIVE: f64 = 4.0;
/// Lucas-Kanade: smallest mean minimum eigenvalue of a patch's gradient matrix.
const LK_MIN_EIGEN: f32 = 0.05;
/// Lucas-Kanade: a step below this (pixels) has converged.
const LK_EPSILON: f32 = 0.01;
/// Shi-Tomasi: structure tensor summed over (2r+1)^2 pixels.
const DETECT_BLOCK_RADIUS: isize = 2;
/// Features are not detected closer than this to the frame edge (pixels).
const DETECT_BORDER: isize = 3;
/// RANSAC stops once a better model is this unlikely.
const RANSAC_CONFIDENCE: f64 = 0.995;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame has zero size ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error("frame of {width}x{height} is larger than {MAX_SIDE} on a side")]
    TooLarge { width: usize, height: usize },
    #[error("frame of {width}x{height} needs {expected} pixels, got {got}")]
    SizeMismatch { width: usize, height: usize, expected: usize, got: usize },
}

/// A grayscale frame view (8-bit luma, row-major, no padding).
#[derive(Clone, Copy, Debug)]
pub struct Gray<'a> {
    pub width: usize,
    pub height: usize,
    /// `width * height` bytes; [`Gray::validate`] checks it.
    pub pixels: &'a [u8],
}

impl<'a> Gray<'a> {
    /// A validated view.
    pub fn new(width: usize, height: usize, pixels: &'a [u8]) -> Result<Self, FrameError> {
        let frame = Gray { width, height, pixels };
        frame.validate()?;
        Ok(frame)
    }

    /// Checks that the size is non-zero, at most 8192 a side, and matches the pixels.
    pub fn validate(&self) -> Result<(), FrameError> {
        let (width, height) = (self.width, self.height);
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(FrameError::TooLarge { width, height });
        }
        let expected = width * height;
        if self.pixels.len() != expected {
            return Err(FrameError::SizeMismatch { width, height, expected, got: self.pixels.len() });
        }
        Ok(())
    }
}

/// Normalized video coordinates: `x, y` in 0..=1 relative to the frame's width/height.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Point { x, y }
    }
}

/// Whether an anchor still follows its region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackState {
    Tracking,
    Lost,
}

/// The motion model fitted to the tracked features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MotionModel {
    /// Translation, rotation and uniform scale (4 degrees of freedom).
    Similarity,
    /// Full plane-to-plane projective transform (8 degrees of freedom).
    Homography,
}

impl MotionModel {
    fn min_points(self) -> usize {
        match self {
            MotionModel::Similarity => 2,
            MotionModel::Homography => 4,
        }
    }
}

/// Tracker parameters; out-of-range values are clamped (see [`TrackerConfig::sanitized`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// Most features followed per anchor.
    pub max_features: usize,
    /// Pyramid levels (level 0 is the frame); fewer are used on small frames.
    pub pyramid_levels: usize,
    /// Lucas-Kanade patch side in pixels (odd).
    pub window: usize,
    /// Lucas-Kanade steps per pyramid level.
    pub max_iterations: usize,
    /// Fewer features agreeing with the motion than this make a bad frame; a region
    /// with fewer corners than this is refused.
    pub min_inliers: usize,
    /// RANSAC inlier threshold (transfer error, pixels of the current frame).
    pub inlier_px: f32,
    /// Consecutive bad frames before the anchor is lost.
    pub lost_after: u32,
    /// The motion fitted.
    pub model: MotionModel,
    /// Smallest distance between two features (pixels).
    pub min_distance: f32,
    /// Smallest Shi-Tomasi response (mean minimum eigenvalue, (grey levels / px)^2).
    pub min_corner_strength: f32,
    /// Largest forward-backward error of a track (pixels).
    pub fb_max_px: f32,
    /// Largest mean absolute patch difference after tracking (grey levels, mean removed).
    pub max_residual: f32,
    /// Most RANSAC hypotheses per frame.
    pub ransac_iterations: usize,
    /// Re-detect features when fewer than this remain after a frame.
    pub redetect_below: usize,
    /// A region smaller than this (pixels a side) is grown around its centre.
    pub min_region_px: usize,
    /// Drift correction: re-locate every inlier against its creation-frame patch
    /// (affinely warped by the current transform) and refit.
    pub refine: bool,
    /// RANSAC generator seed.
    pub seed: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_features: 64,
            pyramid_levels: 4,
            window: 15,
            max_iterations: 10,
            min_inliers: 10,
            inlier_px: 3.0,
            lost_after: 3,
            model: MotionModel::Homography,
            min_distance: 8.0,
            min_corner_strength: 8.0,
            fb_max_px: 1.0,
            max_residual: 20.0,
            ransac_iterations: 200,
            redetect_below: 40,
            min_region_px: 48,
            refine: true,
            seed: 0x5eed_a9c4,
        }
    }
}

impl TrackerConfig {
    /// The configuration with every value brought into its working range.
    pub fn sanitized(mut self) -> Self {
        let defaults = TrackerConfig::default();
        let positive = |v: f32, d: f32| if v.is_finite() && v > 0.0 { v } else { d };
        self.pyramid_levels = self.pyramid_levels.clamp(1, MAX_LEVELS);
        self.window = self.window.clamp(5, 63) | 1;
        self.max_iterations = self.max_iterations.clamp(1, 100);
        self.min_inliers = self.min_inliers.clamp(self.model.min_points() + 2, 1024);
        self.max_features = self.max_features.clamp(self.min_inliers, 2048);
        self.inlier_px = positive(self.inlier_px, defaults.inlier_px);
        self.lost_after = self.lost_after.max(1);
        self.min_distance =
            if self.min_distance.is_finite() { self.min_distance.clamp(0.0, 1.0e4) } else { defaults.min_distance };
        self.min_corner_strength = positive(self.min_corner_strength, defaults.min_corner_strength).max(1.0e-3);
        self.fb_max_px = positive(self.fb_max_px, defaults.fb_max_px);
        self.max_residual = positive(self.max_residual, defaults.max_residual);
        self.ransac_iterations = self.ransac_iterations.clamp(1, 10_000);
        self.redetect_below = self.redetect_below.min(self.max_features);
        self.min_region_px = self.min_region_px.clamp(8, MAX_SIDE);
        self
    }
}

/// One frame's result for one anchor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnchorUpdate {
    pub state: TrackState,
    /// Row-major; maps creation-frame normalized coordinates to current-frame normalized
    /// coordinates (`[x', y', w'] = H [x, y, 1]`, then divide by `w'`). Scaled so that
    /// the last entry is 1.
    pub homography: [f32; 9],
    /// Features that agree with the motion on this frame (0 on a frame that failed
    /// before the fit).
    pub inliers: u32,
    /// 0..=1: the share of tracked features that are inliers, times their number
    /// relative to `2 * min_inliers` (capped at 1); halved on every bad frame; 0 when
    /// lost.
    pub confidence: f32,
}

// ---------------------------------------------------------------------------------------
// Pyramid

/// A Gaussian image pyramid of one frame, shared by all anchors of a session (cloning is
/// a reference-count increment).
#[derive(Clone)]
pub struct Pyramid {
    levels: Arc<[Level]>,
}

struct Level {
    width: usize,
    height: usize,
    px: Vec<f32>,
}

impl fmt::Debug for Pyramid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<(usize, usize)> = self.levels.iter().map(|l| (l.width, l.height)).collect();
        f.debug_struct("Pyramid").field("levels", &sizes).finish()
    }
}

impl Pyramid {
    /// Builds up to `levels` levels (at least 1; fewer when the frame is small).
    pub fn new(frame: &Gray, levels: usize) -> Result<Pyramid, FrameError> {
        frame.validate()?;
        let wanted = levels.clamp(1, MAX_LEVELS);
        let mut out = Vec::with_capacity(wanted);
        out.push(Level {
            width: frame.width,
            height: frame.height,
            px: frame.pixels.iter().map(|&p| f32::from(p)).collect(),
        });
        while out.len() < wanted {
            let last = out.last().expect("the pyramid always holds level 0");
            if last.width / 2 < MIN_LEVEL_SIDE || last.height / 2 < MIN_LEVEL_SIDE {
                break;
            }
            let next = last.downsample();
            out.push(next);
        }
        Ok(Pyramid { levels: out.into() })
    }

    fn base(&self) -> &Level {
        self.levels.first().expect("the pyramid always holds level 0")
    }

    pub fn width(&self) -> usize {
        self.base().width
    }

    pub fn height(&self) -> usize {
        self.base().height
    }

    /// Levels actually built.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }
}

impl Level {
    /// Half size, after the 5-tap binomial filter [1 4 6 4 1] / 16 in both directions;
    /// output pixel `j` is centred on input pixel `2j` (edges replicated).
    fn downsample(&self) -> Level {
        let (w, h) = (self.width, self.height);
        let (w2, h2) = (w.div_ceil(2), h.div_ceil(2));
        let clamp_x = |x: isize| x.clamp(0, w as isize - 1) as usize;
        let mut tmp = vec![0f32; w2 * h];
        for (row, out) in self.px.chunks_exact(w).zip(tmp.chunks_exact_mut(w2)) {
            for (j, o) in out.iter_mut().enumerate() {
                let x = 2 * j;
                *o = if x >= 2 && x + 2 < w {
                    (row[x - 2] + row[x + 2] + 4.0 * (row[x - 1] + row[x + 1]) + 6.0 * row[x]) * (1.0 / 16.0)
                } else {
                    let x = x as isize;
                    (row[clamp_x(x - 2)]
                        + row[clamp_x(x + 2)]
                        + 4.0 * (row[clamp_x(x - 1)] + row[clamp_x(x + 1)])
                        + 6.0 * row[clamp_x(x)])
                        * (1.0 / 16.0)
                };
            }
        }
        let clamp_y = |y: isize| y.clamp(0, h as isize - 1) as usize;
        let mut px = vec![0f32; w2 * h2];
        for (i, out) in px.chunks_exact_mut(w2).enumerate() {
            let y = 2 * i as isize;
            let r = [y - 2, y - 1, y, y + 1, y + 2].map(|r| {
                let r = clamp_y(r);
                &tmp[r * w2..(r + 1) * w2]
            });
            for (j, o) in out.iter_mut().enumerate() {
                *o = (r[0][j] + r[4][j] + 4.0 * (r[1][j] + r[3][j]) + 6.0 * r[2][j]) * (1.0 / 16.0);
            }
        }
        Level { width: w2, height: h2, px }
    }

    /// One bilinear sample (edges replicated).
    fn sample(&self, x: f32, y: f32) -> f32 {
        let (w, h) = (self.width as isize, self.height as isize);
        let x = x.clamp(-1.0, w as f32);
        let y = y.clamp(-1.0, h as f32);
        let (fx, fy) = (x.floor(), y.floor());
        let (ax, ay) = (x - fx, y - fy);
        let (ix, iy) = (fx as isize, fy as isize);
        let at = |x: isize, y: isize| self.px[y.clamp(0, h - 1) as usize * self.width + x.clamp(0, w - 1) as usize];
        (1.0 - ay) * ((1.0 - ax) * at(ix, iy) + ax * at(ix + 1, iy))
            + ay * ((1.0 - ax) * at(ix, iy + 1) + ax * at(ix + 1, iy + 1))
    }

    /// Bilinear samples at `(cx + c, cy + r)` for `r, c` in `-half..=half`, row-major into
    /// `out` (`(2 half + 1)^2` values); outside the level the edge is replicated.
    fn sample_patch(&self, cx: f32, cy: f32, half: usize, out: &mut [f32]) {
        let side = 2 * half + 1;
        let x0 = (cx - half as f32).clamp(-1.0e6, 1.0e6);
        let y0 = (cy - half as f32).clamp(-1.0e6, 1.0e6);
        let (fx, fy) = (x0.floor(), y0.floor());
        let (ax, ay) = (x0 - fx, y0 - fy);
        let (w00, w10, w01, w11) = ((1.0 - ax) * (1.0 - ay), ax * (1.0 - ay), (1.0 - ax) * ay, ax * ay);
        let (ix, iy) = (fx as isize, fy as isize);
        let (w, h) = (self.width as isize, self.height as isize);
        if ix >= 0 && iy >= 0 && ix + (side as isize) < w && iy + (side as isize) < h {
            let (ix, iy) = (ix as usize, iy as usize);
            for (r, o) in out.chunks_exact_mut(side).take(side).enumerate() {
                let start0 = (iy + r) * self.width + ix;
                let start1 = start0 + self.width;
                let row0 = &self.px[start0..start0 + side + 1];
                let row1 = &self.px[start1..start1 + side + 1];
                for (c, v) in o.iter_mut().enumerate() {
                    *v = w00 * row0[c] + w10 * row0[c + 1] + w01 * row1[c] + w11 * row1[c + 1];
                }
            }
        } else {
            let at = |x: isize, y: isize| self.px[y.clamp(0, h - 1) as usize * self.width + x.clamp(0, w - 1) as usize];
            for (r, o) in out.chunks_exact_mut(side).take(side).enumerate() {
                let y = iy + r as isize;
                for (c, v) in o.iter_mut().enumerate() {
                    let x = ix + c as isize;
                    *v = w00 * at(x, y) + w10 * at(x + 1, y) + w01 * at(x, y + 1) + w11 * at(x + 1, y + 1);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lucas-Kanade

/// Reused buffers for the patch computations.
#[derive(Debug, Default)]
struct Scratch {
    big: Vec<f32>,
    tmpl: Vec<f32>,
    gx: Vec<f32>,
    gy: Vec<f32>,
    warped: Vec<f32>,
}

impl Scratch {
    fn prepare(&mut self, side: usize) {
        let n = side * side;
        self.big.resize((side + 2) * (side + 2), 0.0);
        self.tmpl.resize(n, 0.0);
        self.gx.resize(n, 0.0);
        self.gy.resize(n, 0.0);
        self.warped.resize(n, 0.0);
    }
}

/// Tracks `p` (level-0 pixels of `from`) into `to` with pyramidal Lucas-Kanade over the
/// first `levels` levels. Returns the position and the patch residual (mean absolute
/// difference after removing the mean), or None when a patch is flat at level 0 or the
/// iteration diverges.
fn track_point(
    from: &Pyramid,
    to: &Pyramid,
    levels: usize,
    p: [f32; 2],
    half: usize,
    max_iterations: usize,
    s: &mut Scratch,
) -> Option<([f32; 2], f32)> {
    if !(p[0].is_finite() && p[1].is_finite()) {
        return None;
    }
    let levels = levels.min(from.levels()).min(to.levels()).max(1);
    let side = 2 * half + 1;
    let n = side * side;
    let bs = side + 2;
    s.prepare(side);
    let mut d = [0f32; 2];
    for level in (0..levels).rev() {
        let (a, b) = (&from.levels[level], &to.levels[level]);
        let scale = 1.0 / (1u32 << level) as f32;
        let (px, py) = (p[0] * scale, p[1] * scale);
        a.sample_patch(px, py, half + 1, &mut s.big);
        let (mut gxx, mut gxy, mut gyy) = (0f32, 0f32, 0f32);
        for r in 0..side {
            for c in 0..side {
                let k = (r + 1) * bs + c + 1;
                let gx = 0.5 * (s.big[k + 1] - s.big[k - 1]);
                let gy = 0.5 * (s.big[k + bs] - s.big[k - bs]);
                let i = r * side + c;
                s.tmpl[i] = s.big[k];
                s.gx[i] = gx;
                s.gy[i] = gy;
                gxx += gx * gx;
                gxy += gx * gy;
                gyy += gy * gy;
            }
        }
        let det = gxx * gyy - gxy * gxy;
        let min_eig = 0.5 * ((gxx + gyy) - ((gxx - gyy) * (gxx - gyy) + 4.0 * gxy * gxy).sqrt()) / n as f32;
        if !(min_eig >= LK_MIN_EIGEN && det > 0.0) {
            if level == 0 {
                return None;
            }
            // Too smooth at this scale: carry the estimate down unchanged.
            d = [d[0] * 2.0, d[1] * 2.0];
            continue;
        }
        let inv = 1.0 / det;
        let bound = (b.width + b.height) as f32;
        let (mean_t, spread_t) = mean_and_spread(&s.tmpl[..n]);
        for _ in 0..max_iterations {
            b.sample_patch(px + d[0], py + d[1], half, &mut s.warped);
            // Brightness and contrast changes (auto exposure) are removed from the
            // difference: gain-and-offset compensated Lucas-Kanade.
            let (mean_w, spread_w) = mean_and_spread(&s.warped[..n]);
            let gain = if spread_w > 1e-3 { (spread_t / spread_w).clamp(0.5, 2.0) } else { 1.0 };
            let (mut bx, mut by) = (0f32, 0f32);
            for i in 0..n {
                let e = (s.tmpl[i] - mean_t) - gain * (s.warped[i] - mean_w);
                bx += e * s.gx[i];
                by += e * s.gy[i];
            }
            let vx = inv * (gyy * bx - gxy * by);
            let vy = inv * (gxx * by - gxy * bx);
            d[0] += vx;
            d[1] += vy;
            if !(d[0].is_finite() && d[1].is_finite()) || d[0].abs() > bound || d[1].abs() > bound {
                return None;
            }
            if vx * vx + vy * vy < LK_EPSILON * LK_EPSILON {
                break;
            }
        }
        if level > 0 {
            d = [d[0] * 2.0, d[1] * 2.0];
        }
    }
    // The template of level 0 is in `s.tmpl` (level 0 never `continue`s).
    let q = [p[0] + d[0], p[1] + d[1]];
    to.base().sample_patch(q[0], q[1], half, &mut s.warped);
    Some((q, residual(&s.tmpl[..n], &s.warped[..n])))
}

/// Mean and standard deviation.
fn mean_and_spread(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// Mean absolute difference of two patches after matching their mean and contrast.
fn residual(t: &[f32], w: &[f32]) -> f32 {
    let (mean_t, spread_t) = mean_and_spread(t);
    let (mean_w, spread_w) = mean_and_spread(w);
    let gain = if spread_w > 1e-3 { (spread_t / spread_w).clamp(0.5, 2.0) } else { 1.0 };
    t.iter().zip(w).map(|(a, b)| ((a - mean_t) - gain * (b - mean_w)).abs()).sum::<f32>() / t.len().max(1) as f32
}

/// Drift correction: re-locates a feature in `to` (starting at `q`, level-0 pixels) by
/// matching the patch around its creation-frame position `r`, warped into the current
/// geometry by the local affine approximation of `h` (creation pixels to current
/// pixels) and taken from the `origin` level nearest the current scale. Lucas-Kanade
/// with the mean difference removed (tolerates a brightness offset), level 0 only.
/// Returns the position and the residual.
#[allow(clippy::too_many_arguments)]
fn refine_point(
    origin: &Pyramid,
    to: &Pyramid,
    h: &Mat3,
    r: [f64; 2],
    q: [f32; 2],
    half: usize,
    max_iterations: usize,
    s: &mut Scratch,
) -> Option<([f32; 2], f32)> {
    let j = jacobian(h, r[0], r[1])?;
    let det = j[0] * j[3] - j[1] * j[2];
    if !(det.abs() > 1e-9) || !(q[0].is_finite() && q[1].is_finite()) {
        return None;
    }
    // Current-frame offsets to creation-frame offsets.
    let ji = [j[3] / det, -j[1] / det, -j[2] / det, j[0] / det];
    let shrink = (1.0 / det.abs()).sqrt();
    let level = if shrink > 1.0 { (shrink.log2().floor() as usize).min(origin.levels() - 1) } else { 0 };
    let f = 1.0 / (1u32 << level) as f64;
    let src = &origin.levels[level];
    let side = 2 * half + 1;
    let n = side * side;
    let bs = side + 2;
    s.prepare(side);
    for rr in 0..bs {
        for cc in 0..bs {
            let (ox, oy) = (cc as f64 - (half + 1) as f64, rr as f64 - (half + 1) as f64);
            let x = (r[0] + ji[0] * ox + ji[1] * oy) * f;
            let y = (r[1] + ji[2] * ox + ji[3] * oy) * f;
            s.big[rr * bs + cc] = src.sample(x as f32, y as f32);
        }
    }
    let (mut gxx, mut gxy, mut gyy) = (0f32, 0f32, 0f32);
    for rr in 0..side {
        for cc in 0..side {
            let k = (rr + 1) * bs + cc + 1;
            let gx = 0.5 * (s.big[k + 1] - s.big[k - 1]);
            let gy = 0.5 * (s.big[k + bs] - s.big[k - bs]);
            let i = rr * side + cc;
            s.tmpl[i] = s.big[k];
            s.gx[i] = gx;
            s.gy[i] = gy;
            gxx += gx * gx;
            gxy += gx * gy;
            gyy += gy * gy;
        }
    }
    let g = gxx * gyy - gxy * gxy;
    let min_eig = 0.5 * ((gxx + gyy) - ((gxx - gyy) * (gxx - gyy) + 4.0 * gxy * gxy).sqrt()) / n as f32;
    if !(min_eig >= LK_MIN_EIGEN && g > 0.0) {
        return None;
    }
    let inv = 1.0 / g;
    let (mean_t, spread_t) = mean_and_spread(&s.tmpl[..n]);
    let base = to.base();
    let mut d = [0f32; 2];
    let mut residual = f32::INFINITY;
    for _ in 0..max_iterations {
        base.sample_patch(q[0] + d[0], q[1] + d[1], half, &mut s.warped);
        let (mean_w, spread_w) = mean_and_spread(&s.warped[..n]);
        let gain = if spread_w > 1e-3 { (spread_t / spread_w).clamp(0.5, 2.0) } else { 1.0 };
        let (mut bx, mut by, mut abs) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let e = (s.tmpl[i] - mean_t) - gain * (s.warped[i] - mean_w);
            bx += e * s.gx[i];
            by += e * s.gy[i];
            abs += e.abs();
        }
        residual = abs / n as f32;
        let vx = inv * (gyy * bx - gxy * by);
        let vy = inv * (gxx * by - gxy * bx);
        d[0] += vx;
        d[1] += vy;
        if !(d[0].is_finite() && d[1].is_finite()) || d[0].abs() > half as f32 || d[1].abs() > half as f32 {
            return None;
        }
        if vx * vx + vy * vy < LK_EPSILON * LK_EPSILON {
            break;
        }
    }
    Some(([q[0] + d[0], q[1] + d[1]], residual))
}

// ---------------------------------------------------------------------------------------
// Shi-Tomasi corners

/// Corners of `level` inside the convex quadrilateral `quad` (pixels), strongest first,
/// at least `min_distance` from each other and from `existing`, at most `want`.
fn detect(
    level: &Level,
    quad: &[[f64; 2]; 4],
    existing: &[[f32; 2]],
    want: usize,
    min_distance: f32,
    min_strength: f32,
) -> Vec<[f32; 2]> {
    let (w, h) = (level.width as isize, level.height as isize);
    if want == 0 || quad.iter().flatten().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let lo = |i: usize| quad.iter().map(|c| c[i]).fold(f64::INFINITY, f64::min);
    let hi = |i: usize| quad.iter().map(|c| c[i]).fold(f64::NEG_INFINITY, f64::max);
    let x0 = (lo(0).ceil().max(-1.0) as isize).max(DETECT_BORDER);
    let y0 = (lo(1).ceil().max(-1.0) as isize).max(DETECT_BORDER);
    let x1 = (hi(0).floor().min(w as f64) as isize).min(w - 1 - DETECT_BORDER);
    let y1 = (hi(1).floor().min(h as f64) as isize).min(h - 1 - DETECT_BORDER);
    if x0 > x1 || y0 > y1 {
        return Vec::new();
    }
    let r = DETECT_BLOCK_RADIUS;
    let (bw, bh) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
    let (ew, eh) = (bw + 2 * r as usize, bh + 2 * r as usize);
    let at = |x: isize, y: isize| level.px[y.clamp(0, h - 1) as usize * level.width + x.clamp(0, w - 1) as usize];
    // Gradient products over the box grown by the block radius.
    let mut ixx = vec![0f32; ew * eh];
    let mut ixy = vec![0f32; ew * eh];
    let mut iyy = vec![0f32; ew * eh];
    for ey in 0..eh {
        let y = y0 - r + ey as isize;
        for ex in 0..ew {
            let x = x0 - r + ex as isize;
            let gx = 0.5 * (at(x + 1, y) - at(x - 1, y));
            let gy = 0.5 * (at(x, y + 1) - at(x, y - 1));
            let i = ey * ew + ex;
            ixx[i] = gx * gx;
            ixy[i] = gx * gy;
            iyy[i] = gy * gy;
        }
    }
    // Box sums: horizontal, then vertical.
    let k = (2 * r + 1) as usize;
    let horizontal = |src: &[f32]| {
        let mut out = vec![0f32; bw * eh];
        for ey in 0..eh {
            for bx in 0..bw {
                out[ey * bw + bx] = src[ey * ew + bx..ey * ew + bx + k].iter().sum();
            }
        }
        out
    };
    let (hxx, hxy, hyy) = (horizontal(&ixx), horizontal(&ixy), horizontal(&iyy));
    let norm = 1.0 / (k * k) as f32;
    let mut response = vec![0f32; bw * bh];
    let mut strongest = 0f32;
    for by in 0..bh {
        for bx in 0..bw {
            let (mut a, mut b, mut c) = (0f32, 0f32, 0f32);
            for j in 0..k {
                let i = (by + j) * bw + bx;
                a += hxx[i];
                b += hxy[i];
                c += hyy[i];
            }
            let (a, b, c) = (a * norm, b * norm, c * norm);
            let e = 0.5 * ((a + c) - ((a - c) * (a - c) + 4.0 * b * b).sqrt());
            let e = if e.is_finite() { e.max(0.0) } else { 0.0 };
            response[by * bw + bx] = e;
            strongest = strongest.max(e);
        }
    }
    // An absolute threshold only: a relative one (OpenCV's quality level) would let a
    // strongly contrasted occluder suppress the region's own corners.
    let threshold = min_strength;
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for by in 0..bh {
        for bx in 0..bw {
            let e = response[by * bw + bx];
            if e < threshold {
                continue;
            }
            let mut is_max = true;
            'nms: for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let (nx, ny) = (bx as isize + dx, by as isize + dy);
                    if (dx, dy) == (0, 0) || nx < 0 || ny < 0 || nx >= bw as isize || ny >= bh as isize {
                        continue;
                    }
                    let other = response[ny as usize * bw + nx as usize];
                    // Ties go to the first in scan order.
                    if other > e || (other == e && (dy, dx) < (0, 0)) {
                        is_max = false;
                        break 'nms;
                    }
                }
            }
            let (x, y) = (x0 + bx as isize, y0 + by as isize);
            if is_max && inside_quad(quad, x as f64, y as f64) {
                candidates.push((e, x as usize, y as usize));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)).then(a.1.cmp(&b.1)));
    let d2 = min_distance * min_distance;
    let mut chosen: Vec<[f32; 2]> = Vec::new();
    for (_, x, y) in candidates {
        if chosen.len() >= want {
            break;
        }
        let p = [x as f32, y as f32];
        let far = |q: &[f32; 2]| (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) >= d2;
        if existing.iter().all(far) && chosen.iter().all(far) {
            chosen.push(p);
        }
    }
    chosen
}

/// Whether `(x, y)` is inside (or on) the convex quadrilateral `q`, either orientation.
fn inside_quad(q: &[[f64; 2]; 4], x: f64, y: f64) -> bool {
    let mut sign = 0.0;
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        if cross.abs() < 1e-9 {
            continue;
        }
        if sign == 0.0 {
            sign = cross.signum();
        } else if cross.signum() != sign {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------
// Geometry

fn apply(h: &Mat3, x: f64, y: f64) -> Option<[f64; 2]> {
    let w = h[6] * x + h[7] * y + h[8];
    if !w.is_finite() || w.abs() < 1e-12 {
        return None;
    }
    let p = [(h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w];
    (p[0].is_finite() && p[1].is_finite()).then_some(p)
}

fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
        }
    }
    m
}

fn inverse(m: &Mat3) -> Option<Mat3> {
    let c = [m[4] * m[8] - m[5] * m[7], m[5] * m[6] - m[3] * m[8], m[3] * m[7] - m[4] * m[6]];
    let det = m[0] * c[0] + m[1] * c[1] + m[2] * c[2];
    if !det.is_finite() || det.abs() < 1e-300 {
        return None;
    }
    let inv = 1.0 / det;
    Some([
        c[0] * inv,
        (m[2] * m[7] - m[1] * m[8]) * inv,
        (m[1] * m[5] - m[2] * m[4]) * inv,
        c[1] * inv,
        (m[0] * m[8] - m[2] * m[6]) * inv,
        (m[2] * m[3] - m[0] * m[5]) * inv,
        c[2] * inv,
        (m[1] * m[6] - m[0] * m[7]) * inv,
        (m[0] * m[4] - m[1] * m[3]) * inv,
    ])
}

/// Scaled so the last entry is 1; None when it is (close to) 0 or not finite.
fn normalize(h: Mat3) -> Option<Mat3> {
    if !h[8].is_finite() || h[8].abs() < 1e-12 {
        return None;
    }
    let out = h.map(|v| v / h[8]);
    out.iter().all(|v| v.is_finite()).then_some(out)
}

fn translation(dx: f64, dy: f64) -> Mat3 {
    [1.0, 0.0, dx, 0.0, 1.0, dy, 0.0, 0.0, 1.0]
}

/// Hartley conditioning: moves the centroid to the origin and scales the mean distance
/// to sqrt(2).
fn conditioner(points: impl Iterator<Item = [f64; 2]> + Clone) -> Option<Mat3> {
    let n = points.clone().count() as f64;
    if n == 0.0 {
        return None;
    }
    let (sx, sy) = points.clone().fold((0.0, 0.0), |(a, b), p| (a + p[0], b + p[1]));
    let (mx, my) = (sx / n, sy / n);
    let spread = points.map(|p| ((p[0] - mx).powi(2) + (p[1] - my).powi(2)).sqrt()).sum::<f64>() / n;
    if !spread.is_finite() || spread < 1e-9 {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / spread;
    Some([s, 0.0, -s * mx, 0.0, s, -s * my, 0.0, 0.0, 1.0])
}

/// Least-squares homography (normalized DLT) from `src[i]` to `dst[i]`, `i` in `idx`.
fn fit_homography(src: &[[f64; 2]], dst: &[[f64; 2]], idx: &[usize]) -> Option<Mat3> {
    if idx.len() < 4 {
        return None;
    }
    let ts = conditioner(idx.iter().map(|&i| src[i]))?;
    let td = conditioner(idx.iter().map(|&i| dst[i]))?;
    let mut ata = [[0f64; 9]; 9];
    for &i in idx {
        let [x, y] = apply(&ts, src[i][0], src[i][1])?;
        let [u, v] = apply(&td, dst[i][0], dst[i][1])?;
        let rows = [[-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u], [0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v]];
        for row in &rows {
            for r in 0..9 {
                for c in r..9 {
                    ata[r][c] += row[r] * row[c];
                }
            }
        }
    }
    for r in 0..9 {
        for c in 0..r {
            ata[r][c] = ata[c][r];
        }
    }
    let hn = smallest_eigenvector(ata);
    let h = mul(&inverse(&td)?, &mul(&hn, &ts));
    normalize(h)
}

/// Exact homography through 4 correspondences (8x8 linear system, conditioned).
fn homography_4(src: &[[f64; 2]], dst: &[[f64; 2]], idx: &[usize]) -> Option<Mat3> {
    if idx.len() != 4 {
        return None;
    }
    // Reject (nearly) collinear triples on either side (twice the triangle area in px^2).
    for pts in [src, dst] {
        for [a, b, c] in [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]] {
            let (a, b, c) = (pts[idx[a]], pts[idx[b]], pts[idx[c]]);
            let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
            if !(area.abs() >= 2.0) {
                return None;
            }
        }
    }
    let ts = conditioner(idx.iter().map(|&i| src[i]))?;
    let td = conditioner(idx.iter().map(|&i| dst[i]))?;
    let mut a = [[0f64; 9]; 8];
    for (j, &i) in idx.iter().enumerate() {
        let [x, y] = apply(&ts, src[i][0], src[i][1])?;
        let [u, v] = apply(&td, dst[i][0], dst[i][1])?;
        a[2 * j] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * j + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the augmented 8x9 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-10 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                if f != 0.0 {
                    for k in col..9 {
                        a[row][k] -= f * a[col][k];
                    }
                }
            }
        }
    }
    let mut hn = [1.0; 9];
    for (r, v) in hn.iter_mut().take(8).enumerate() {
        *v = a[r][8] / a[r][r];
    }
    let h = mul(&inverse(&td)?, &mul(&hn, &ts));
    normalize(h)
}

/// Least-squares similarity (rotation, uniform scale, translation).
fn fit_similarity(src: &[[f64; 2]], dst: &[[f64; 2]], idx: &[usize]) -> Option<Mat3> {
    if idx.len() < 2 {
        return None;
    }
    let n = idx.len() as f64;
    let mean = |pts: &[[f64; 2]]| {
        let (x, y) = idx.iter().fold((0.0, 0.0), |(a, b), &i| (a + pts[i][0], b + pts[i][1]));
        [x / n, y / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut sxx, mut a, mut b) = (0.0, 0.0, 0.0);
    for &i in idx {
        let (sx, sy) = (src[i][0] - ms[0], src[i][1] - ms[1]);
        let (dx, dy) = (dst[i][0] - md[0], dst[i][1] - md[1]);
        sxx += sx * sx + sy * sy;
        a += sx * dx + sy * dy;
        b += sx * dy - sy * dx;
    }
    if !(sxx > 1e-9) {
        return None;
    }
    let (a, b) = (a / sxx, b / sxx);
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    let h = [a, -b, tx, b, a, ty, 0.0, 0.0, 1.0];
    h.iter().all(|v| v.is_finite()).then_some(h)
}

/// Eigenvector of the smallest eigenvalue of a symmetric 9x9 matrix (cyclic Jacobi).
fn smallest_eigenvector(mut a: [[f64; 9]; 9]) -> Mat3 {
    let mut v = [[0f64; 9]; 9];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let scale: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().max(1e-300);
    for _sweep in 0..60 {
        let off: f64 = (0..9)
            .flat_map(|p| (0..9).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p][q] * a[p][q])
            .sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..9 {
            for q in p + 1..9 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                for k in 0..9 {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let best = (0..9).min_by(|&i, &j| a[i][i].total_cmp(&a[j][j])).unwrap_or(8);
    let mut out = [0.0; 9];
    for (k, o) in out.iter_mut().enumerate() {
        *o = v[k][best];
    }
    out
}

/// SplitMix64: small, seedable, identical on every platform.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Fit {
    h: Mat3,
    inliers: Vec<bool>,
    count: usize,
}

/// RANSAC (MSAC scoring) then two least-squares refits on the inliers.
fn ransac(
    src: &[[f64; 2]],
    dst: &[[f64; 2]],
    model: MotionModel,
    threshold: f64,
    max_iterations: usize,
    rng: &mut SplitMix64,
) -> Option<Fit> {
    let n = src.len().min(dst.len());
    let k = model.min_points();
    if n < k {
        return None;
    }
    let t2 = threshold * threshold;
    let error2 = |h: &Mat3, i: usize| match apply(h, src[i][0], src[i][1]) {
        Some(p) => (p[0] - dst[i][0]).powi(2) + (p[1] - dst[i][1]).powi(2),
        None => f64::INFINITY,
    };
    let score = |h: &Mat3| -> (f64, usize) {
        (0..n).fold((0.0, 0), |(s, c), i| {
            let e = error2(h, i);
            if e <= t2 {
                (s + e, c + 1)
            } else {
                (s + t2, c)
            }
        })
    };
    let minimal = |idx: &[usize]| match model {
        MotionModel::Similarity => fit_similarity(src, dst, idx),
        MotionModel::Homography => homography_4(src, dst, idx),
    };
    let refit = |idx: &[usize]| fit_model(model, src, dst, idx);
    let mut best: Option<(f64, usize, Mat3)> = None;
    let mut limit = max_iterations;
    let mut sample = [0usize; 4];
    let mut iteration = 0;
    while iteration < limit {
        iteration += 1;
        for j in 0..k {
            // n >= k distinct indices exist, so this terminates.
            loop {
                let c = rng.below(n);
                if !sample[..j].contains(&c) {
                    sample[j] = c;
                    break;
                }
            }
        }
        let Some(h) = minimal(&sample[..k]) else { continue };
        let (s, count) = score(&h);
        if best.as_ref().is_none_or(|b| s < b.0) {
            best = Some((s, count, h));
            let ratio = count as f64 / n as f64;
            let miss = 1.0 - ratio.powi(k as i32);
            let needed = if miss <= 1e-12 { 0.0 } else { ((1.0 - RANSAC_CONFIDENCE).ln() / miss.ln()).ceil() };
            if needed.is_finite() && needed >= 0.0 {
                limit = limit.min(needed as usize).max(iteration.min(limit));
            }
        }
    }
    let (_, _, mut h) = best?;
    for _ in 0..2 {
        let idx: Vec<usize> = (0..n).filter(|&i| error2(&h, i) <= t2).collect();
        if idx.len() < k {
            break;
        }
        match refit(&idx) {
            Some(better) if score(&better).0 <= score(&h).0 => h = better,
            _ => break,
        }
    }
    let inliers: Vec<bool> = (0..n).map(|i| error2(&h, i) <= t2).collect();
    let count = inliers.iter().filter(|&&b| b).count();
    Some(Fit { h, inliers, count })
}

/// Least-squares fit of `model` on the correspondences `idx`.
fn fit_model(model: MotionModel, src: &[[f64; 2]], dst: &[[f64; 2]], idx: &[usize]) -> Option<Mat3> {
    match model {
        MotionModel::Similarity => fit_similarity(src, dst, idx),
        MotionModel::Homography => fit_homography(src, dst, idx),
    }
}

/// Local Jacobian of `h` at `(x, y)`: `[du/dx, du/dy, dv/dx, dv/dy]`, None behind the
/// horizon.
fn jacobian(h: &Mat3, x: f64, y: f64) -> Option<[f64; 4]> {
    let w = h[6] * x + h[7] * y + h[8];
    if !(w > 1e-12) {
        return None;
    }
    let [u, v] = apply(h, x, y)?;
    Some([(h[0] - h[6] * u) / w, (h[1] - h[7] * u) / w, (h[3] - h[6] * v) / w, (h[4] - h[7] * v) / w])
}

/// Whether `h` (creation pixels to current pixels, in creation-frame units) is a
/// plausible camera motion of the region: see the module doc, step 5.
fn geometry_ok(h: &Mat3, corners: &[[f64; 2]; 4], center: [f64; 2]) -> bool {
    let Some(j) = jacobian(h, center[0], center[1]) else { return false };
    let det = j[0] * j[3] - j[1] * j[2];
    if !(det > 0.0) {
        return false;
    }
    let scale = det.sqrt();
    if !(MIN_SCALE..=MAX_SCALE).contains(&scale) {
        return false;
    }
    let e = 0.5 * (j[0] * j[0] + j[1] * j[1] + j[2] * j[2] + j[3] * j[3]);
    let s1 = (e + (e * e - det * det).max(0.0).sqrt()).sqrt();
    let s2 = det / s1;
    if !(s1 / s2 <= MAX_ANISOTROPY) {
        return false;
    }
    corners.iter().all(|c| match jacobian(h, c[0], c[1]) {
        Some(jc) => {
            let ratio = (jc[0] * jc[3] - jc[1] * jc[2]) / det;
            (1.0 / MAX_PERSPECTIVE..=MAX_PERSPECTIVE).contains(&ratio)
        }
        None => false,
    })
}

/// Pixel (centre convention) to normalized coordinates for a `w` x `h` frame.
fn to_normalized(w: usize, h: usize) -> Mat3 {
    let (w, h) = (w as f64, h as f64);
    [1.0 / w, 0.0, 0.5 / w, 0.0, 1.0 / h, 0.5 / h, 0.0, 0.0, 1.0]
}

/// Normalized to pixel (centre convention) coordinates for a `w` x `h` frame.
fn to_pixels(w: usize, h: usize) -> Mat3 {
    let (w, h) = (w as f64, h as f64);
    [w, 0.0, -0.5, 0.0, h, -0.5, 0.0, 0.0, 1.0]
}

// ---------------------------------------------------------------------------------------
// Anchor

#[derive(Clone, Debug)]
struct Feature {
    /// Position in the creation frame (pixels).
    reference: [f64; 2],
    /// Position in the last accepted frame (pixels).
    pos: [f32; 2],
}

/// One tracked region.
#[derive(Debug)]
pub struct Anchor {
    cfg: TrackerConfig,
    /// The last accepted frame: features' `pos` are in it, `h` maps into it.
    prev: Pyramid,
    /// The creation frame (drift correction matches against it).
    origin_pyr: Pyramid,
    /// Size of the creation frame.
    origin: (usize, usize),
    /// The region in the creation frame (pixels), corners in order around it.
    corners: [[f64; 2]; 4],
    center: [f64; 2],
    /// Creation-frame pixels to `prev` pixels.
    h: Mat3,
    features: Vec<Feature>,
    state: TrackState,
    bad_frames: u32,
    inliers: u32,
    confidence: f32,
    rng: SplitMix64,
    scratch: Scratch,
}

impl Anchor {
    /// Starts tracking the region (normalized rectangle around the annotation: min
    /// corner, max corner, either order) on `frame`. The region is clamped to the frame
    /// and grown to `min_region_px` around its centre. Returns None when the frame is
    /// invalid, the region is not finite or lies entirely outside the frame, or it has
    /// too little texture to track (fewer than `min_inliers` corners).
    pub fn new(frame: &Gray, region: [Point; 2], cfg: TrackerConfig) -> Option<Anchor> {
        let pyr = Pyramid::new(frame, cfg.pyramid_levels).ok()?;
        Anchor::new_with(&pyr, region, cfg)
    }

    /// [`Anchor::new`] on a pyramid built by the caller (shared with other anchors).
    pub fn new_with(pyr: &Pyramid, region: [Point; 2], cfg: TrackerConfig) -> Option<Anchor> {
        let cfg = cfg.sanitized();
        let (w, h) = (pyr.width(), pyr.height());
        let [a, b] = region;
        if ![a.x, a.y, b.x, b.y].iter().all(|v| v.is_finite()) {
            return None;
        }
        let (nx0, nx1) = (a.x.min(b.x) as f64, a.x.max(b.x) as f64);
        let (ny0, ny1) = (a.y.min(b.y) as f64, a.y.max(b.y) as f64);
        if nx1 < 0.0 || nx0 > 1.0 || ny1 < 0.0 || ny0 > 1.0 {
            return None;
        }
        // Edges in pixel-edge units (0..=w), clamped, grown to the minimum size.
        let span = |lo: f64, hi: f64, size: usize| {
            let size = size as f64;
            let (mut lo, mut hi) = ((lo * size).clamp(0.0, size), (hi * size).clamp(0.0, size));
            let min = (cfg.min_region_px as f64).min(size);
            if hi - lo < min {
                let c = (lo + hi) / 2.0;
                lo = (c - min / 2.0).clamp(0.0, size - min);
                hi = lo + min;
            }
            // To pixel-centre coordinates.
            (lo - 0.5, hi - 0.5)
        };
        let (x0, x1) = span(nx0, nx1, w);
        let (y0, y1) = span(ny0, ny1, h);
        let corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
        let center = [(x0 + x1) / 2.0, (y0 + y1) / 2.0];
        let found = detect(pyr.base(), &corners, &[], cfg.max_features, cfg.min_distance, cfg.min_corner_strength);
        if found.len() < cfg.min_inliers {
            return None;
        }
        let features =
            found.into_iter().map(|p| Feature { reference: [p[0] as f64, p[1] as f64], pos: p }).collect::<Vec<_>>();
        Some(Anchor {
            rng: SplitMix64(cfg.seed),
            inliers: features.len() as u32,
            cfg,
            prev: pyr.clone(),
            origin_pyr: pyr.clone(),
            origin: (w, h),
            corners,
            center,
            h: IDENTITY,
            features,
            state: TrackState::Tracking,
            bad_frames: 0,
            confidence: 1.0,
            scratch: Scratch::default(),
        })
    }

    /// Tracks to the next frame (builds its pyramid; with several anchors per session,
    /// build one [`Pyramid`] and call [`Anchor::update_with`]). An invalid frame counts
    /// as a bad frame.
    pub fn update(&mut self, frame: &Gray) -> AnchorUpdate {
        if self.state == TrackState::Lost {
            return self.report();
        }
        match Pyramid::new(frame, self.cfg.pyramid_levels) {
            Ok(pyr) => self.update_with(&pyr),
            Err(_) => self.bad_frame(0),
        }
    }

    /// Tracks to the frame of `pyr`.
    pub fn update_with(&mut self, pyr: &Pyramid) -> AnchorUpdate {
        if self.state == TrackState::Lost {
            return self.report();
        }
        if (pyr.width(), pyr.height()) != (self.prev.width(), self.prev.height()) {
            return self.reseed(pyr);
        }
        let cfg = &self.cfg;
        let levels = cfg.pyramid_levels.min(self.prev.levels()).min(pyr.levels());
        let half = cfg.window / 2;
        let (w, h) = (pyr.width() as f32, pyr.height() as f32);
        let fb2 = cfg.fb_max_px * cfg.fb_max_px;
        let mut src = Vec::with_capacity(self.features.len());
        let mut dst: Vec<[f64; 2]> = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let forward = track_point(&self.prev, pyr, levels, f.pos, half, cfg.max_iterations, &mut self.scratch);
            let Some((q, residual)) = forward else { continue };
            if !(0.0..=w - 1.0).contains(&q[0]) || !(0.0..=h - 1.0).contains(&q[1]) || residual > cfg.max_residual {
                continue;
            }
            let backward = track_point(pyr, &self.prev, levels, q, half, cfg.max_iterations, &mut self.scratch);
            let Some((back, _)) = backward else { continue };
            if (back[0] - f.pos[0]).powi(2) + (back[1] - f.pos[1]).powi(2) > fb2 {
                continue;
            }
            src.push(f.reference);
            dst.push([q[0] as f64, q[1] as f64]);
        }
        let attempted = self.features.len().max(1);
        if src.len() < self.cfg.min_inliers {
            return self.bad_frame(src.len());
        }
        let fit =
            ransac(&src, &dst, self.cfg.model, self.cfg.inlier_px as f64, self.cfg.ransac_iterations, &mut self.rng);
        let Some(fit) = fit else { return self.bad_frame(0) };
        if fit.count < self.cfg.min_inliers {
            return self.bad_frame(fit.count);
        }
        // Fits are normalized (last entry 1), so `w > 0` at the centre unless it crossed
        // the horizon, which `geometry_ok` refuses.
        let mut fitted = fit.h;
        if !geometry_ok(&self.in_creation_units(&fitted, pyr), &self.corners, self.center) {
            return self.bad_frame(fit.count);
        }
        let mut inliers = fit.inliers;
        let mut count = fit.count;
        if self.cfg.refine {
            let (half, iterations, limit) = (half, self.cfg.max_iterations, self.cfg.inlier_px as f64);
            let mut refined = dst.clone();
            for (i, _) in inliers.iter().enumerate().filter(|(_, &inlier)| inlier) {
                let q = [dst[i][0] as f32, dst[i][1] as f32];
                let found =
                    refine_point(&self.origin_pyr, pyr, &fitted, src[i], q, half, iterations, &mut self.scratch);
                if let Some((p, residual)) = found {
                    let p = [p[0] as f64, p[1] as f64];
                    if residual <= self.cfg.max_residual && (p[0] - dst[i][0]).hypot(p[1] - dst[i][1]) <= limit {
                        refined[i] = p;
                    }
                }
            }
            let idx: Vec<usize> = (0..src.len()).filter(|&i| inliers[i]).collect();
            if let Some(better) = fit_model(self.cfg.model, &src, &refined, &idx) {
                let t2 = limit * limit;
                let again: Vec<bool> = (0..src.len())
                    .map(|i| {
                        inliers[i]
                            && apply(&better, src[i][0], src[i][1])
                                .is_some_and(|p| (p[0] - refined[i][0]).powi(2) + (p[1] - refined[i][1]).powi(2) <= t2)
                    })
                    .collect();
                let n = again.iter().filter(|&&b| b).count();
                let plausible = geometry_ok(&self.in_creation_units(&better, pyr), &self.corners, self.center);
                if n >= self.cfg.min_inliers && plausible {
                    fitted = better;
                    inliers = again;
                    count = n;
                    dst = refined;
                }
            }
        }
        // Accept the frame.
        self.h = fitted;
        self.prev = pyr.clone();
        self.features = src
            .iter()
            .zip(&dst)
            .zip(&inliers)
            .filter(|(_, &inlier)| inlier)
            .map(|((r, d), _)| Feature { reference: *r, pos: [d[0] as f32, d[1] as f32] })
            .collect();
        self.inliers = count as u32;
        let support = (count as f32 / (2 * self.cfg.min_inliers) as f32).min(1.0);
        self.confidence = (count as f32 / attempted as f32).min(1.0) * support;
        if self.features.len() < self.cfg.redetect_below {
            self.redetect();
        }
        let in_frame = apply(&self.h, self.center[0], self.center[1])
            .is_some_and(|c| (0.0..=w as f64 - 1.0).contains(&c[0]) && (0.0..=h as f64 - 1.0).contains(&c[1]));
        if in_frame {
            self.bad_frames = 0;
            self.report()
        } else {
            // The transform is good (and kept), but the region has left the picture.
            let confidence = self.confidence;
            let update = self.bad_frame(count);
            self.confidence = confidence;
            update
        }
    }

    /// Maps a point given in normalized coordinates of the creation frame to the current
    /// frame (the last accepted one; after `Lost`, the last known position). A point the
    /// transform sends to infinity maps to the region's centre.
    pub fn map(&self, p: Point) -> Point {
        let hn = self.normalized();
        let mapped = apply(&hn, p.x as f64, p.y as f64).or_else(|| {
            let c = apply(&to_normalized(self.origin.0, self.origin.1), self.center[0], self.center[1])?;
            apply(&hn, c[0], c[1])
        });
        match mapped {
            Some([x, y]) => Point { x: x as f32, y: y as f32 },
            None => p,
        }
    }

    pub fn state(&self) -> TrackState {
        self.state
    }

    /// Features currently followed.
    pub fn feature_count(&self) -> usize {
        self.features.len()
    }

    /// The configuration in use (sanitized).
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// `h` expressed between creation-frame pixel units (undoes a resolution change).
    fn in_creation_units(&self, h: &Mat3, pyr: &Pyramid) -> Mat3 {
        if (pyr.width(), pyr.height()) == self.origin {
            return *h;
        }
        let back = mul(&to_pixels(self.origin.0, self.origin.1), &to_normalized(pyr.width(), pyr.height()));
        mul(&back, h)
    }

    /// The frame size changed: carry the transform over to the new size and start the
    /// features afresh on it (no flow across sizes).
    fn reseed(&mut self, pyr: &Pyramid) -> AnchorUpdate {
        let rescale = mul(&to_pixels(pyr.width(), pyr.height()), &to_normalized(self.prev.width(), self.prev.height()));
        self.h = mul(&rescale, &self.h);
        self.prev = pyr.clone();
        self.features.clear();
        self.redetect();
        let n = self.features.len();
        if n < self.cfg.min_inliers {
            return self.bad_frame(n);
        }
        self.bad_frames = 0;
        self.inliers = n as u32;
        self.confidence = 0.5 * (n as f32 / (2 * self.cfg.min_inliers) as f32).min(1.0);
        self.report()
    }

    /// Adds corners found inside the current region of `prev`.
    fn redetect(&mut self) {
        let Some(inv) = inverse(&self.h) else { return };
        let mut quad = [[0.0; 2]; 4];
        for (q, c) in quad.iter_mut().zip(&self.corners) {
            match apply(&self.h, c[0], c[1]) {
                Some(p) => *q = p,
                None => return,
            }
        }
        let existing: Vec<[f32; 2]> = self.features.iter().map(|f| f.pos).collect();
        let want = self.cfg.max_features.saturating_sub(self.features.len());
        let found =
            detect(self.prev.base(), &quad, &existing, want, self.cfg.min_distance, self.cfg.min_corner_strength);
        let half = self.cfg.window / 2;
        for p in found {
            let Some(reference) = apply(&inv, p[0] as f64, p[1] as f64) else { continue };
            if !self.cfg.refine {
                self.features.push(Feature { reference, pos: p });
                continue;
            }
            // Only what the creation frame shows at that place may join: this keeps
            // out whatever has come in front of the region (a hand, a tool).
            let h = self.h;
            let found = refine_point(
                &self.origin_pyr,
                &self.prev,
                &h,
                reference,
                p,
                half,
                self.cfg.max_iterations,
                &mut self.scratch,
            );
            if let Some((q, residual)) = found {
                let moved = (q[0] - p[0]).hypot(q[1] - p[1]);
                if residual <= self.cfg.max_residual && moved <= self.cfg.inlier_px {
                    self.features.push(Feature { reference, pos: q });
                }
            }
        }
    }

    fn bad_frame(&mut self, inliers: usize) -> AnchorUpdate {
        self.bad_frames = self.bad_frames.saturating_add(1);
        self.inliers = inliers as u32;
        self.confidence *= 0.5;
        if self.bad_frames >= self.cfg.lost_after {
            self.state = TrackState::Lost;
        }
        self.report()
    }

    /// `h` between normalized coordinates (creation frame to last accepted frame).
    fn normalized(&self) -> Mat3 {
        let to_px = to_pixels(self.origin.0, self.origin.1);
        let h = mul(&to_normalized(self.prev.width(), self.prev.height()), &mul(&self.h, &to_px));
        normalize(h).unwrap_or(h)
    }

    fn report(&self) -> AnchorUpdate {
        let lost = self.state == TrackState::Lost;
        AnchorUpdate {
            state: self.state,
            homography: self.normalized().map(|v| v as f32),
            inliers: if lost { 0 } else { self.inliers },
            confidence: if lost { 0.0 } else { self.confidence.clamp(0.0, 1.0) },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Synthetic clips (tests and benches)

/// Synthetic camera clips with known motion, for the tests and `benches/anchor_tracking`.
#[doc(hidden)]
pub mod synthetic {
    use std::sync::{Arc, Mutex};

    use super::{
        apply, inverse, mul, translation, Anchor, AnchorUpdate, Gray, Mat3, Point, SplitMix64, TrackState,
        TrackerConfig,
    };

    /// The region the clips are scored on: 25 % of the width and height, left of and
    /// above the centre (so rotation and zoom about the centre move it).
    pub const REGION: [Point; 2] = [Point::new(0.30, 0.35), Point::new(0.55, 0.60)];

    /// First frame of the other scene in [`ClipKind::Cut`].
    pub const CUT_AT: usize = 10;

    /// A textured plane: two octaves of value noise under a few hundred overlapping
    /// rotated rectangles, lightly blurred. Deterministic in `seed`.
    pub struct Scene {
        pub width: usize,
        pub height: usize,
        pixels: Vec<f32>,
    }

    impl Scene {
        pub fn new(seed: u64, width: usize, height: usize) -> Scene {
            let (w, h) = (width.max(1), height.max(1));
            let mut rng = SplitMix64(seed);
            let mut px = vec![128f32; w * h];
            let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
            for (cell, amplitude) in [(w as f64 / 24.0, 40.0), (w as f64 / 96.0, 20.0)] {
                let cell = cell.max(2.0);
                let gw = (w as f64 / cell) as usize + 2;
                let gh = (h as f64 / cell) as usize + 2;
                let grid: Vec<f64> = (0..gw * gh).map(|_| rng.unit() * 2.0 - 1.0).collect();
                for y in 0..h {
                    let fy = y as f64 / cell;
                    let (iy, ty) = (fy as usize, smooth(fy.fract()));
                    for x in 0..w {
                        let fx = x as f64 / cell;
                        let (ix, tx) = (fx as usize, smooth(fx.fract()));
                        let g = |i: usize, j: usize| grid[j * gw + i];
                        let top = g(ix, iy) * (1.0 - tx) + g(ix + 1, iy) * tx;
                        let bottom = g(ix, iy + 1) * (1.0 - tx) + g(ix + 1, iy + 1) * tx;
                        px[y * w + x] += (amplitude * (top * (1.0 - ty) + bottom * ty)) as f32;
                    }
                }
            }
            for _ in 0..w * h / 2500 {
                let (cx, cy) = (rng.unit() * w as f64, rng.unit() * h as f64);
                let a = (0.004 + 0.025 * rng.unit()) * w as f64;
                let b = (0.004 + 0.025 * rng.unit()) * w as f64;
                let (s, c) = (rng.unit() * std::f64::consts::PI).sin_cos();
                let value = (rng.unit() * 255.0) as f32;
                let alpha = (0.5 + 0.5 * rng.unit()) as f32;
                let r = (a * a + b * b).sqrt();
                let (x0, x1) = ((cx - r).max(0.0) as usize, ((cx + r) as usize).min(w - 1));
                let (y0, y1) = ((cy - r).max(0.0) as usize, ((cy + r) as usize).min(h - 1));
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                        if (c * dx + s * dy).abs() <= a && (c * dy - s * dx).abs() <= b {
                            let p = &mut px[y * w + x];
                            *p = *p * (1.0 - alpha) + value * alpha;
                        }
                    }
                }
            }
            // [1 2 1] / 4 blur in both directions against aliasing.
            let at = |v: &[f32], x: usize, y: usize| v[y.min(h - 1) * w + x.min(w - 1)];
            let mut tmp = vec![0f32; w * h];
            for y in 0..h {
                for x in 0..w {
                    tmp[y * w + x] = 0.25 * (at(&px, x.saturating_sub(1), y) + 2.0 * at(&px, x, y) + at(&px, x + 1, y));
                }
            }
            for y in 0..h {
                for x in 0..w {
                    px[y * w + x] =
                        0.25 * (at(&tmp, x, y.saturating_sub(1)) + 2.0 * at(&tmp, x, y) + at(&tmp, x, y + 1));
                }
            }
            Scene { width: w, height: h, pixels: px }
        }

        /// [`Scene::new`], generated once per process.
        pub fn shared(seed: u64, width: usize, height: usize) -> Arc<Scene> {
            static CACHE: Mutex<Vec<(u64, usize, usize, Arc<Scene>)>> = Mutex::new(Vec::new());
            let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((_, _, _, scene)) = cache.iter().find(|(s, w, h, _)| (*s, *w, *h) == (seed, width, height)) {
                return scene.clone();
            }
            let scene = Arc::new(Scene::new(seed, width, height));
            cache.push((seed, width, height, scene.clone()));
            scene
        }

        /// Bilinear sample (edges replicated).
        pub fn sample(&self, x: f64, y: f64) -> f64 {
            let (w, h) = (self.width as isize, self.height as isize);
            let x = x.clamp(-1.0, w as f64);
            let y = y.clamp(-1.0, h as f64);
            let (fx, fy) = (x.floor(), y.floor());
            let (ax, ay) = (x - fx, y - fy);
            let at = |i: isize, j: isize| self.pixels[(j.clamp(0, h - 1) * w + i.clamp(0, w - 1)) as usize] as f64;
            let (i, j) = (fx as isize, fy as isize);
            (1.0 - ay) * ((1.0 - ax) * at(i, j) + ax * at(i + 1, j))
                + ay * ((1.0 - ax) * at(i, j + 1) + ax * at(i + 1, j + 1))
        }
    }

    /// The motions tested. Speeds are for 640 px wide frames and scale with the width.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ClipKind {
        /// 3 px/frame diagonal, 30 frames.
        Translation,
        /// 1 degree/frame about the frame centre, 20 frames.
        Rotation,
        /// +1 %/frame scale about the centre, 20 frames (to 1.22).
        ZoomIn,
        /// -1 %/frame scale about the centre, 20 frames (to 0.82).
        ZoomOut,
        /// (2, -1) px + 0.6 degree + 0.5 % per frame, 30 frames.
        Combined,
        /// Camera yaw 1 degree/frame (focal length = width), 20 frames: perspective.
        Perspective,
        /// 12 px/frame to the right, 20 frames (a fast pan at a low sample rate).
        FastPan,
        /// 10 px/frame to the left, 40 frames: the region's centre leaves after ~28.
        Leave,
        /// Slow pan, then from frame [`CUT_AT`] a different scene.
        Cut,
        /// 2 px/frame with a dark bar a tenth of the width wide sweeping across the
        /// region in front of the scene (frames 8 to 20).
        Occlusion,
    }

    impl ClipKind {
        pub const ALL: [ClipKind; 10] = [
            ClipKind::Translation,
            ClipKind::Rotation,
            ClipKind::ZoomIn,
            ClipKind::ZoomOut,
            ClipKind::Combined,
            ClipKind::Perspective,
            ClipKind::FastPan,
            ClipKind::Occlusion,
            ClipKind::Leave,
            ClipKind::Cut,
        ];

        pub fn name(self) -> &'static str {
            match self {
                ClipKind::Translation => "translation 3 px/f",
                ClipKind::Rotation => "rotation 1 deg/f",
                ClipKind::ZoomIn => "zoom in 1 %/f",
                ClipKind::ZoomOut => "zoom out 1 %/f",
                ClipKind::Combined => "combined",
                ClipKind::Perspective => "perspective (yaw 1 deg/f)",
                ClipKind::FastPan => "fast pan 12 px/f",
                ClipKind::Leave => "leaves the frame",
                ClipKind::Cut => "cut to another scene",
                ClipKind::Occlusion => "occluder crossing",
            }
        }

        pub fn frames(self) -> usize {
            match self {
                ClipKind::Translation | ClipKind::Combined | ClipKind::Occlusion => 30,
                ClipKind::Leave => 40,
                ClipKind::Cut => 2 * CUT_AT,
                _ => 20,
            }
        }

        /// Motion of the content, view-0 pixels to view-`t` pixels.
        pub fn motion(self, t: usize, width: usize, height: usize) -> Mat3 {
            let k = width as f64 / 640.0;
            let t = t as f64;
            let c = [(width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0];
            let about = |m: Mat3| mul(&translation(c[0], c[1]), &mul(&m, &translation(-c[0], -c[1])));
            let rotate = |deg: f64| {
                let (s, co) = deg.to_radians().sin_cos();
                about([co, -s, 0.0, s, co, 0.0, 0.0, 0.0, 1.0])
            };
            let scale = |f: f64| about([f, 0.0, 0.0, 0.0, f, 0.0, 0.0, 0.0, 1.0]);
            match self {
                ClipKind::Translation => translation(2.4 * k * t, 1.8 * k * t),
                ClipKind::Rotation => rotate(t),
                ClipKind::ZoomIn => scale(1.01f64.powf(t)),
                ClipKind::ZoomOut => scale(0.99f64.powf(t)),
                ClipKind::Combined => {
                    mul(&translation(2.0 * k * t, -1.0 * k * t), &mul(&rotate(0.6 * t), &scale(1.005f64.powf(t))))
                }
                ClipKind::Perspective => {
                    let f = width as f64;
                    let (s, co) = t.to_radians().sin_cos();
                    // K R_y K^-1 with K = diag(f, f, 1), about the centre.
                    about([co, 0.0, f * s, 0.0, 1.0, 0.0, -s / f, 0.0, co])
                }
                ClipKind::FastPan => translation(12.0 * k * t, 0.0),
                ClipKind::Leave => translation(-10.0 * k * t, 0.0),
                ClipKind::Cut => translation(1.0 * k * t, 0.5 * k * t),
                ClipKind::Occlusion => translation(2.0 * k * t, 0.0),
            }
        }

        /// The occluding bar's columns on frame `t`, if any.
        pub fn occluder(self, t: usize, width: usize) -> Option<(f64, f64)> {
            if self != ClipKind::Occlusion || !(8..=20).contains(&t) {
                return None;
            }
            let w = width as f64;
            let x0 = w * (0.22 + 0.03 * (t - 8) as f64);
            Some((x0, x0 + 0.1 * w))
        }
    }

    /// Rendered frames with their ground truth.
    pub struct Clip {
        pub kind: ClipKind,
        pub width: usize,
        pub height: usize,
        pub frames: Vec<Vec<u8>>,
        /// View-0 pixels to view-`t` pixels; None where the content is another scene.
        pub truth: Vec<Option<Mat3>>,
    }

    impl Clip {
        pub fn gray(&self, t: usize) -> Gray<'_> {
            Gray { width: self.width, height: self.height, pixels: &self.frames[t] }
        }
    }

    /// How the frames are degraded.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Conditions {
        /// +-2 grey levels of noise.
        Clean,
        /// +-6 grey levels of noise, gain 1 +- 0.15 and offset +-10 varying per frame,
        /// motion blur of 0.3 x the frame-to-frame motion plus 1 px.
        Rough,
    }

    impl Conditions {
        pub fn name(self) -> &'static str {
            match self {
                Conditions::Clean => "clean",
                Conditions::Rough => "rough",
            }
        }
    }

    /// [`clip_with`] in clean conditions.
    pub fn clip(kind: ClipKind, width: usize, height: usize) -> Clip {
        clip_with(kind, width, height, Conditions::Clean)
    }

    /// Renders `kind` at `width` x `height`: a camera looking at the middle of a scene
    /// 2.5 times the frame size, bilinear sampling, degraded per `conditions`.
    pub fn clip_with(kind: ClipKind, width: usize, height: usize, conditions: Conditions) -> Clip {
        let (width, height) = (width.max(1), height.max(1));
        let (sw, sh) = (width * 5 / 2, height * 5 / 2);
        let scene = Scene::shared(0x5ce_e001, sw, sh);
        let other = (kind == ClipKind::Cut).then(|| Scene::shared(0x5ce_e002, sw, sh));
        let m0 = translation(((sw - width) / 2) as f64, ((sh - height) / 2) as f64);
        let mut rng = SplitMix64(0xc1_1b00 + kind as u64 + 0x100 * conditions as u64);
        let rough = conditions == Conditions::Rough;
        let centre = [(width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0];
        let mut frames = Vec::new();
        let mut truth = Vec::new();
        for t in 0..kind.frames() {
            let a = kind.motion(t, width, height);
            let (src, tr) = match &other {
                Some(other) if t >= CUT_AT => (other, None),
                _ => (&scene, Some(a)),
            };
            let m = mul(&m0, &inverse(&a).unwrap_or(super::IDENTITY));
            // Exposure smear: along the frame-to-frame motion of the centre, plus 1 px in
            // a random direction.
            let blur = if rough {
                let previous = kind.motion(t.saturating_sub(1), width, height);
                let now = apply(&a, centre[0], centre[1]).unwrap_or(centre);
                let before = apply(&previous, centre[0], centre[1]).unwrap_or(centre);
                let angle = rng.unit() * std::f64::consts::TAU;
                [0.3 * (now[0] - before[0]) + angle.cos(), 0.3 * (now[1] - before[1]) + angle.sin()]
            } else {
                [0.0, 0.0]
            };
            let (gain, offset, noise) = if rough {
                (1.0 + 0.15 * (0.5 * t as f64).sin(), 10.0 * (0.3 * t as f64 + 1.0).sin(), 12.0)
            } else {
                (1.0, 0.0, 4.0)
            };
            let taps: &[f64] = if rough { &[-0.5, 0.0, 0.5] } else { &[0.0] };
            let occluder = kind.occluder(t, width);
            let mut frame = vec![0u8; width * height];
            for v in 0..height {
                for u in 0..width {
                    let mut value = 0.0;
                    for &k in taps {
                        let (x, y) = (u as f64 + k * blur[0], v as f64 + k * blur[1]);
                        value += apply(&m, x, y).map_or(0.0, |s| src.sample(s[0], s[1]));
                    }
                    let mut value = value / taps.len() as f64;
                    if let Some((x0, x1)) = occluder {
                        // A dark, slightly textured bar (a hand, a tool) in front.
                        if (x0..x1).contains(&(u as f64)) {
                            value = 40.0 + 15.0 * ((u / 7 + v / 9) % 2) as f64;
                        }
                    }
                    let noisy = gain * value + offset + (rng.unit() - 0.5) * noise;
                    frame[v * width + u] = noisy.round().clamp(0.0, 255.0) as u8;
                }
            }
            frames.push(frame);
            truth.push(tr);
        }
        Clip { kind, width, height, frames, truth }
    }

    /// Mean, 95th percentile and maximum of a sample.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Stats {
        pub n: usize,
        pub mean: f64,
        pub p95: f64,
        pub max: f64,
    }

    impl Stats {
        pub fn of(values: &[f64]) -> Stats {
            if values.is_empty() {
                return Stats::default();
            }
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            let p95 = v[((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1];
            Stats { n: v.len(), mean: v.iter().sum::<f64>() / v.len() as f64, p95, max: v[v.len() - 1] }
        }
    }

    /// How an anchor did on a clip.
    #[derive(Clone, Debug)]
    pub struct ClipResult {
        pub kind: ClipKind,
        pub created: bool,
        /// Per frame reporting `Tracking` with a ground truth: error of the region's
        /// centre (pixels).
        pub center_errors: Vec<f64>,
        /// Same frames: the largest error of the region's four corners (pixels).
        pub corner_errors: Vec<f64>,
        /// First frame reported `Lost`.
        pub lost_at: Option<usize>,
        /// First frame where the ground-truth centre is outside the frame.
        pub left_at: Option<usize>,
        /// After a cut, the largest distance of a `Tracking` centre from the last
        /// position before the cut (pixels).
        pub drift_after_cut: f64,
        /// A `Tracking` report after a `Lost` one (must not happen).
        pub recovered: bool,
        pub updates: Vec<AnchorUpdate>,
    }

    impl ClipResult {
        pub fn center(&self) -> Stats {
            Stats::of(&self.center_errors)
        }

        pub fn corners(&self) -> Stats {
            Stats::of(&self.corner_errors)
        }
    }

    /// Runs an anchor created on frame 0 over the clip.
    pub fn run(clip: &Clip, region: [Point; 2], cfg: &TrackerConfig) -> ClipResult {
        let (w, h) = (clip.width as f64, clip.height as f64);
        let to_px = |p: Point| [p.x as f64 * w - 0.5, p.y as f64 * h - 0.5];
        let [a, b] = region;
        let points =
            [Point::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0), a, Point::new(b.x, a.y), b, Point::new(a.x, b.y)];
        let mut result = ClipResult {
            kind: clip.kind,
            created: false,
            center_errors: Vec::new(),
            corner_errors: Vec::new(),
            lost_at: None,
            left_at: None,
            drift_after_cut: 0.0,
            recovered: false,
            updates: Vec::new(),
        };
        for t in 0..clip.frames.len() {
            let truth = clip.truth[t].and_then(|m| apply(&m, to_px(points[0])[0], to_px(points[0])[1]));
            if let Some(c) = truth {
                if !((0.0..=w - 1.0).contains(&c[0]) && (0.0..=h - 1.0).contains(&c[1])) {
                    result.left_at.get_or_insert(t);
                }
            }
        }
        let Some(mut anchor) = Anchor::new(&clip.gray(0), region, cfg.clone()) else { return result };
        result.created = true;
        let mut last_before_cut = to_px(points[0]);
        for t in 1..clip.frames.len() {
            let update = anchor.update(&clip.gray(t));
            let tracking = update.state == TrackState::Tracking;
            result.updates.push(update);
            if !tracking {
                result.lost_at.get_or_insert(t);
                continue;
            }
            if result.lost_at.is_some() {
                result.recovered = true;
            }
            let mapped: Vec<[f64; 2]> = points.iter().map(|&p| to_px(anchor.map(p))).collect();
            match clip.truth[t] {
                Some(m) => {
                    let errors: Vec<f64> = points
                        .iter()
                        .zip(&mapped)
                        .map(|(&p, q)| {
                            let [x, y] = to_px(p);
                            apply(&m, x, y)
                                .map_or(f64::INFINITY, |g| ((g[0] - q[0]).powi(2) + (g[1] - q[1]).powi(2)).sqrt())
                        })
                        .collect();
                    result.center_errors.push(errors[0]);
                    result.corner_errors.push(errors[1..].iter().copied().fold(0.0, f64::max));
                    last_before_cut = mapped[0];
                }
                None => {
                    let d = ((mapped[0][0] - last_before_cut[0]).powi(2) + (mapped[0][1] - last_before_cut[1]).powi(2))
                        .sqrt();
                    result.drift_after_cut = result.drift_after_cut.max(d);
                }
            }
        }
        result
    }

    /// One markdown table row: clip, frames, centre mean / p95 / max, corner max, lost at.
    pub fn row(r: &ClipResult) -> String {
        let (c, k) = (r.center(), r.corners());
        let lost = match (r.lost_at, r.left_at, r.kind) {
            (Some(l), Some(left), _) => format!("{l} (centre left at {left})"),
            (Some(l), None, ClipKind::Cut) => format!("{l} (cut at {CUT_AT})"),
            (Some(l), None, _) => l.to_string(),
            (None, _, _) => "-".into(),
        };
        if !r.created {
            return format!("| {} | not created | | | | | |", r.kind.name());
        }
        format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.kind.name(),
            c.n,
            c.mean,
            c.p95,
            c.max,
            k.max,
            lost
        )
    }

    /// The header matching [`row`].
    pub const HEADER: &str = "| clip | frames tracked | centre mean px | centre p95 px | centre max px | corner max px | lost at frame |\n|---|---|---|---|---|---|---|";
}

#[cfg(test)]
mod tests {
    use super::synthetic::{self, ClipKind};
    use super::*;

    use synthetic::Conditions::{Clean, Rough};

    fn scored(kind: ClipKind, conditions: synthetic::Conditions, cfg: &TrackerConfig) -> synthetic::ClipResult {
        let clip = synthetic::clip_with(kind, 640, 480, conditions);
        let result = synthetic::run(&clip, synthetic::REGION, cfg);
        println!("{} {}", conditions.name(), synthetic::row(&result));
        result
    }

    /// Measured at 640x480 (docs/anchoring.md): centre error at most 0.04 px clean and
    /// 0.23 px rough, corners at most 0.8 px clean and 1.6 px rough. The bounds leave
    /// about a factor 4. (The bench runs every clip in both conditions; the tests keep
    /// to a subset to stay fast in debug builds.)
    fn assert_tracks(kind: ClipKind, all: &[synthetic::Conditions]) {
        for conditions in all.iter().copied() {
            let (mean, max, corner) = if conditions == Clean { (0.1, 0.25, 3.0) } else { (0.5, 1.0, 6.0) };
            let r = scored(kind, conditions, &TrackerConfig::default());
            assert!(r.created, "{kind:?}: anchor not created");
            assert_eq!(r.lost_at, None, "{kind:?} {conditions:?}: lost");
            let (c, k) = (r.center(), r.corners());
            assert_eq!(c.n, kind.frames() - 1);
            assert!(c.mean < mean && c.max < max, "{kind:?} {conditions:?}: centre error {c:?}");
            assert!(k.max < corner, "{kind:?} {conditions:?}: corner error {k:?}");
        }
    }

    #[test]
    fn follows_translation() {
        assert_tracks(ClipKind::Translation, &[Clean]);
    }

    #[test]
    fn follows_rotation() {
        assert_tracks(ClipKind::Rotation, &[Clean]);
    }

    #[test]
    fn follows_zoom() {
        assert_tracks(ClipKind::ZoomIn, &[Clean]);
        assert_tracks(ClipKind::ZoomOut, &[Clean]);
    }

    #[test]
    fn follows_combined_motion() {
        assert_tracks(ClipKind::Combined, &[Clean, Rough]);
    }

    #[test]
    fn follows_perspective() {
        assert_tracks(ClipKind::Perspective, &[Clean, Rough]);
    }

    #[test]
    fn follows_a_fast_pan() {
        assert_tracks(ClipKind::FastPan, &[Rough]);
    }

    #[test]
    fn leaving_the_frame_is_lost_without_wrong_positions() {
        let cfg = TrackerConfig::default();
        for conditions in [Clean, Rough] {
            let r = scored(ClipKind::Leave, conditions, &cfg);
            let left = r.left_at.expect("the clip moves the centre out");
            let lost = r.lost_at.expect("leaving the frame loses the anchor");
            assert!(lost < left + cfg.lost_after as usize, "lost at {lost}, left at {left}");
            assert!(!r.recovered);
            assert!(r.center().max < 20.0, "{:?}", r.center());
        }
    }

    #[test]
    fn a_cut_is_lost_without_jumping() {
        let cfg = TrackerConfig::default();
        for conditions in [Clean, Rough] {
            let r = scored(ClipKind::Cut, conditions, &cfg);
            let lost = r.lost_at.expect("a cut loses the anchor");
            assert!(lost < synthetic::CUT_AT + cfg.lost_after as usize, "lost at {lost}");
            assert!(!r.recovered);
            assert!(r.drift_after_cut < 20.0, "jumped {} px after the cut", r.drift_after_cut);
            assert!(r.center().max < 1.0, "{:?}", r.center());
        }
    }

    #[test]
    fn an_occluder_never_drags_the_anchor_along() {
        // A dark textured bar sweeps over the region; corners on it must not join the
        // anchor (they do not match the creation frame). Measured: lost at frame 16-17,
        // at most 4.6 px off before.
        for conditions in [Clean, Rough] {
            let r = scored(ClipKind::Occlusion, conditions, &TrackerConfig::default());
            assert!(!r.recovered);
            assert!(r.center().max < 20.0, "{:?}", r.center());
        }
    }

    #[test]
    fn textureless_regions_are_refused() {
        let (w, h) = (320, 240);
        let region = [Point::new(0.25, 0.25), Point::new(0.75, 0.75)];
        let flat = vec![128u8; w * h];
        assert!(Anchor::new(&Gray::new(w, h, &flat).unwrap(), region, TrackerConfig::default()).is_none());
        // Sensor noise only (+-2 grey levels).
        let mut rng = SplitMix64(7);
        let noise: Vec<u8> = (0..w * h).map(|_| 126 + rng.below(5) as u8).collect();
        assert!(Anchor::new(&Gray::new(w, h, &noise).unwrap(), region, TrackerConfig::default()).is_none());
        // A single straight edge (aperture problem): no corners.
        let edge: Vec<u8> = (0..w * h).map(|i| if i % w < w / 2 { 60 } else { 190 }).collect();
        assert!(Anchor::new(&Gray::new(w, h, &edge).unwrap(), region, TrackerConfig::default()).is_none());
        // The same frame sizes with texture are accepted.
        let clip = synthetic::clip(ClipKind::Translation, w, h);
        assert!(Anchor::new(&clip.gray(0), region, TrackerConfig::default()).is_some());
    }

    #[test]
    fn bad_input_never_panics() {
        let cfg = TrackerConfig::default;
        let region = [Point::new(0.2, 0.2), Point::new(0.8, 0.8)];
        let short = vec![0u8; 10];
        assert!(matches!(Gray::new(4, 4, &short), Err(FrameError::SizeMismatch { .. })));
        assert!(matches!(Gray::new(0, 4, &[]), Err(FrameError::Empty { .. })));
        assert!(matches!(Gray::new(9000, 1, &[]), Err(FrameError::TooLarge { .. })));
        let lying = Gray { width: 640, height: 480, pixels: &short };
        assert!(Pyramid::new(&lying, 4).is_err());
        assert!(Anchor::new(&lying, region, cfg()).is_none());
        assert!(Anchor::new(&Gray { width: 0, height: 0, pixels: &[] }, region, cfg()).is_none());

        let clip = synthetic::clip(ClipKind::Translation, 320, 240);
        let frame = clip.gray(0);
        for region in [
            [Point::new(1.5, 1.5), Point::new(2.0, 2.0)],
            [Point::new(-1.0, 0.2), Point::new(-0.5, 0.4)],
            [Point::new(f32::NAN, 0.2), Point::new(0.5, 0.4)],
            [Point::new(0.2, f32::INFINITY), Point::new(0.5, 0.4)],
        ] {
            assert!(Anchor::new(&frame, region, cfg()).is_none(), "{region:?}");
        }
        // Reversed corners, a region spilling out of the frame: clamped.
        for region in [[Point::new(0.8, 0.8), Point::new(0.2, 0.2)], [Point::new(-3.0, -3.0), Point::new(1.2, 1.2)]] {
            let anchor = Anchor::new(&frame, region, cfg());
            assert!(anchor.is_some(), "{region:?}");
        }
        // A point is grown to `min_region_px` (whether that holds enough corners depends
        // on the picture).
        let point = [Point::new(0.5, 0.5), Point::new(0.5, 0.5)];
        let _ = Anchor::new(&frame, point, cfg()).map(|mut a| a.update(&clip.gray(1)));
        // Absurd configurations are clamped.
        let zero = TrackerConfig {
            max_features: 0,
            pyramid_levels: 0,
            window: 0,
            max_iterations: 0,
            min_inliers: 0,
            inlier_px: f32::NAN,
            lost_after: 0,
            model: MotionModel::Similarity,
            min_distance: -1.0,
            min_corner_strength: 0.0,
            fb_max_px: -1.0,
            max_residual: f32::INFINITY,
            ransac_iterations: 0,
            redetect_below: 10_000,
            min_region_px: 0,
            refine: true,
            seed: 0,
        };
        let mut anchor = Anchor::new(&frame, region, zero).expect("a textured region");
        let _ = anchor.update(&clip.gray(1));
        let mut anchor = Anchor::new(&frame, region, cfg()).expect("a textured region");
        // Invalid frames, other sizes, tiny frames.
        let update = anchor.update(&lying);
        assert_eq!(update.state, TrackState::Tracking);
        let small = synthetic::clip(ClipKind::Translation, 64, 48);
        let _ = anchor.update(&small.gray(1));
        let _ = anchor.update(&clip.gray(2));
        for (w, h) in [(1, 1), (2, 1), (1, 700), (3, 5), (13, 13), (25, 24)] {
            let px: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
            let g = Gray::new(w, h, &px).unwrap();
            let _ = anchor.update(&g);
            let _ = Anchor::new(&g, region, cfg()).map(|mut a| a.update(&g));
            let _ = Pyramid::new(&g, 8).unwrap();
        }
        let _ = anchor.map(Point::new(f32::NAN, 1.0e30));
        // Random frames and regions.
        let mut rng = SplitMix64(99);
        for _ in 0..40 {
            let (w, h) = (1 + rng.below(90), 1 + rng.below(70));
            let px: Vec<u8> = (0..w * h).map(|_| rng.below(256) as u8).collect();
            let g = Gray::new(w, h, &px).unwrap();
            let p = |rng: &mut SplitMix64| Point::new(rng.unit() as f32 * 1.4 - 0.2, rng.unit() as f32 * 1.4 - 0.2);
            let region = [p(&mut rng), p(&mut rng)];
            if let Some(mut a) = Anchor::new(&g, region, cfg()) {
                let px2: Vec<u8> = (0..w * h).map(|_| rng.below(256) as u8).collect();
                let u = a.update(&Gray::new(w, h, &px2).unwrap());
                assert!(u.homography.iter().all(|v| v.is_finite()));
                assert!((0.0..=1.0).contains(&u.confidence));
            }
        }
    }

    #[test]
    fn lost_is_final_and_reported() {
        let clip = synthetic::clip(ClipKind::Translation, 320, 240);
        let cfg = TrackerConfig { lost_after: 2, ..TrackerConfig::default() };
        let mut anchor = Anchor::new(&clip.gray(0), synthetic::REGION, cfg).expect("textured");
        let flat = vec![0u8; 320 * 240];
        let flat = Gray::new(320, 240, &flat).unwrap();
        assert_eq!(anchor.update(&flat).state, TrackState::Tracking);
        assert_eq!(anchor.update(&flat).state, TrackState::Lost);
        let update = anchor.update(&clip.gray(1));
        assert_eq!(update.state, TrackState::Lost);
        assert_eq!(update.confidence, 0.0);
        assert_eq!(anchor.state(), TrackState::Lost);
        assert_eq!(serde_json::to_value(update.state).unwrap(), "lost");
    }

    #[test]
    fn deterministic_and_shareable() {
        let clip = synthetic::clip(ClipKind::Combined, 320, 240);
        let run = || synthetic::run(&clip, synthetic::REGION, &TrackerConfig::default()).updates;
        assert_eq!(run(), run());
        // Shared pyramids give the same result as per-anchor ones.
        let mut own = Anchor::new(&clip.gray(0), synthetic::REGION, TrackerConfig::default()).unwrap();
        let pyr0 = Pyramid::new(&clip.gray(0), 4).unwrap();
        let mut shared = Anchor::new_with(&pyr0, synthetic::REGION, TrackerConfig::default()).unwrap();
        for t in 1..clip.frames.len() {
            let pyr = Pyramid::new(&clip.gray(t), 4).unwrap();
            assert_eq!(own.update(&clip.gray(t)), shared.update_with(&pyr));
        }
    }

    #[test]
    fn similarity_model_and_no_refinement_track_too() {
        for cfg in [
            TrackerConfig { model: MotionModel::Similarity, ..TrackerConfig::default() },
            TrackerConfig { refine: false, ..TrackerConfig::default() },
        ] {
            let r = scored(ClipKind::Combined, Rough, &cfg);
            assert_eq!(r.lost_at, None);
            assert!(r.center().max < 2.0, "{:?}", r.center());
        }
    }

    #[test]
    fn homography_math() {
        let h = [1.1, 0.05, 3.0, -0.04, 0.95, -2.0, 1e-4, -2e-4, 1.0];
        let src: Vec<[f64; 2]> = (0..12).map(|i| [(i * 37 % 200) as f64, (i * 91 % 150) as f64]).collect();
        let dst: Vec<[f64; 2]> = src.iter().map(|p| apply(&h, p[0], p[1]).unwrap()).collect();
        let all: Vec<usize> = (0..src.len()).collect();
        let ls = fit_homography(&src, &dst, &all).unwrap();
        let four = homography_4(&src, &dst, &[0, 3, 5, 7]).unwrap();
        for fitted in [ls, four] {
            for (a, b) in fitted.iter().zip(&h) {
                assert!((a - b).abs() < 1e-6, "{fitted:?}");
            }
        }
        let inv = inverse(&h).unwrap();
        let id = mul(&h, &inv);
        for (a, b) in id.iter().zip(&IDENTITY) {
            assert!((a - b).abs() < 1e-9);
        }
        // Collinear samples are refused.
        let line: Vec<[f64; 2]> = (0..4).map(|i| [i as f64 * 10.0, i as f64 * 5.0]).collect();
        assert!(homography_4(&line, &line, &[0, 1, 2, 3]).is_none());
    }
}
