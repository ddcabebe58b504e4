//! Which region drove an image classification: occlusion sensitivity.
//!
//! The model input (the centre square of the picture, resampled) is divided into a grid;
//! a window of half the grid's side slides over it one cell at a time, covering that
//! part with the input's mean value, and every variant runs through the model in one
//! batch with the unoccluded input. A window's score is how much covering it lowers the
//! log-odds of the class the model chose (log-odds, because a confident model saturates
//! near p = 1, where covering one small cell changes nothing measurable; covering half
//! the side removes a localized defect entirely). A cell's importance is the mean score
//! of the windows covering it, and the region is the best window. Unlike a
//! class-activation map this needs nothing from inside the network, so it works for any
//! classifier a user brings; it costs `(grid/2 + 1)² + 1` inferences (10 for the default
//! 4 x 4), which is why it runs on demand for a photo or snapshot, never on every live
//! frame.
//!
//! Coordinates in the result are normalized to the whole picture (0..1 of its width and
//! height), so the console can draw them over the image it shows.

use std::sync::Arc;

use serde::Serialize;

use super::image::{self, Gray};
use super::manifest::Preprocessing;
use super::registry::{InferError, Model};
use super::DiagnoseError;

/// The explanation of one classification.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Explanation {
    pub model: String,
    pub fault_id: String,
    pub label: String,
    pub probability: f32,
    /// Cells per side of the occlusion grid.
    pub grid: usize,
    /// Row-major importance per cell: the drop of the chosen class's log-odds when that
    /// cell is covered (0 when covering it does not lower it).
    pub importance: Vec<f32>,
    /// The square the model looks at, in picture coordinates: `[x0, y0, x1, y1]`.
    pub crop: [f32; 4],
    /// The bounding box of the cells with at least half the top importance, in picture
    /// coordinates; None when no cell matters (importance all 0).
    pub region: Option<[f32; 4]>,
}

/// Covers cells `r..r + k`, `c..c + k` of a `size` x `size` tensor divided into a
/// `grid` x `grid` grid with `fill`.
fn occlude(input: &[f32], size: usize, grid: usize, (r, c, k): (usize, usize, usize), fill: f32) -> Vec<f32> {
    let mut out = input.to_vec();
    let (y0, y1) = (r * size / grid, (r + k) * size / grid);
    let (x0, x1) = (c * size / grid, (c + k) * size / grid);
    for y in y0..y1 {
        out[y * size + x0..y * size + x1].fill(fill);
    }
    out
}

/// The occluding windows of a grid: (row, column, side) in cells, row-major.
pub fn windows(grid: usize) -> Vec<(usize, usize, usize)> {
    let k = (grid / 2).max(1);
    let n = grid - k + 1;
    (0..n * n).map(|i| (i / n, i % n, k)).collect()
}

/// Importance per cell and the salient region (cells `[c0, r0, c1, r1]`, end exclusive)
/// from the probabilities of the base input (`probs[0..labels]`) and of each occluded
/// window (in [`windows`] order), for class `class`. Pure.
pub fn analyse(probs: &[f32], labels: usize, grid: usize, class: usize) -> (Vec<f32>, Option<[usize; 4]>) {
    // Log-odds, not probabilities: see the module doc.
    let log_odds = |p: f32| {
        let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
        (p / (1.0 - p)).ln()
    };
    let base = log_odds(probs[class]);
    let wins = windows(grid);
    let scores: Vec<f64> = (0..wins.len()).map(|i| (base - log_odds(probs[(i + 1) * labels + class])).max(0.0)).collect();
    let mut importance = vec![0f32; grid * grid];
    let mut count = vec![0u32; grid * grid];
    for ((r, c, k), s) in wins.iter().zip(&scores) {
        for rr in *r..r + k {
            for cc in *c..c + k {
                importance[rr * grid + cc] += *s as f32;
                count[rr * grid + cc] += 1;
            }
        }
    }
    for (v, n) in importance.iter_mut().zip(&count) {
        *v /= (*n).max(1) as f32;
    }
    let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1));
    let region = match best {
        Some((i, s)) if *s > 1e-3 => {
            let (r, c, k) = wins[i];
            Some([c, r, c + k, r + k])
        }
        _ => None,
    };
    (importance, region)
}

/// Explains the model's top class on a picture.
pub async fn explain(model: Arc<Model>, picture: Gray, grid: usize) -> Result<Explanation, DiagnoseError> {
    let Preprocessing::Image(p) = model.manifest.preprocessing.clone() else {
        return Err(DiagnoseError::WrongModel(model.manifest.name.clone()));
    };
    let grid = grid.clamp(2, 8);
    let (w, h) = (picture.width, picture.height);
    if w < 16 || h < 16 {
        return Err(image::ImageError::TooSmall { w: w as u32, h: h as u32 }.into());
    }
    let size = p.image_size as usize;
    let batch = tokio::task::spawn_blocking(move || {
        let base = image::preprocess(&picture, &p);
        let fill = base.iter().sum::<f32>() / base.len() as f32;
        let mut batch = base.clone();
        for w in windows(grid) {
            batch.extend(occlude(&base, size, grid, w, fill));
        }
        batch
    })
    .await
    .map_err(|e| InferError::Failed(e.to_string()))?;
    let out = model.infer(batch, windows(grid).len() + 1, None).await?;
    let labels = model.manifest.labels.len();
    let probs = &out.probabilities;
    let class = (0..labels).max_by(|a, b| probs[*a].total_cmp(&probs[*b])).unwrap_or(0);
    let (importance, cells) = analyse(probs, labels, grid, class);
    // The crop is the centre square of the picture (see image::preprocess).
    let s = w.min(h) as f32;
    let (left, top) = ((w as f32 - s) / 2.0, (h as f32 - s) / 2.0);
    let to_pic = |cx: usize, cy: usize| [(left + s * cx as f32 / grid as f32) / w as f32, (top + s * cy as f32 / grid as f32) / h as f32];
    let region = cells.map(|[c0, r0, c1, r1]| {
        let [x0, y0] = to_pic(c0, r0);
        let [x1, y1] = to_pic(c1, r1);
        [x0, y0, x1, y1]
    });
    let [cx0, cy0] = to_pic(0, 0);
    let [cx1, cy1] = to_pic(grid, grid);
    let label = &model.manifest.labels[class];
    Ok(Explanation {
        model: model.manifest.name.clone(),
        fault_id: label.fault_id.clone(),
        label: label.name.clone(),
        probability: probs[class],
        grid,
        importance,
        crop: [cx0, cy0, cx1, cy1],
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_whose_cover_lowers_the_class_most_is_the_region() {
        // 2 labels, a 4x4 grid: windows of 2x2 cells at 3x3 positions. Base p(class 1) =
        // 0.999; covering the bottom-right window (index 8) drops it to 0.2, the
        // others leave it.
        assert_eq!(windows(4).len(), 9);
        let mut probs = vec![0.001, 0.999];
        for i in 0..9 {
            probs.extend(if i == 8 { [0.8, 0.2] } else { [0.001, 0.999] });
        }
        let (imp, region) = analyse(&probs, 2, 4, 1);
        assert_eq!(region, Some([2, 2, 4, 4]));
        // The bottom-right cell is covered by that window only: full score; the top-left
        // cell by none of the decisive ones: 0.
        assert!(imp[15] > 5.0 && imp[0] == 0.0, "{imp:?}");
        assert!(imp[10] < imp[15], "a cell shared with flat windows scores less");
        // Nothing matters: no region.
        let flat: Vec<f32> = (0..10).flat_map(|_| [0.001, 0.999]).collect();
        assert_eq!(analyse(&flat, 2, 4, 1).1, None);
    }

    #[test]
    fn occluding_covers_exactly_the_window() {
        let input = vec![1.0f32; 16];
        let out = occlude(&input, 4, 2, (1, 0, 1), 0.0);
        let zeros: Vec<usize> = out.iter().enumerate().filter(|(_, v)| **v == 0.0).map(|(i, _)| i).collect();
        assert_eq!(zeros, [8, 9, 12, 13]);
    }
}
