//! Diagnosis: ONNX fault classifiers on photos and device telemetry, fused with fault
//! codes into one ranked list of fault hypotheses.
//!
//! * [`manifest`] — what a model directory declares, validated at start-up.
//! * [`registry`] — loads the models, checks each against its manifest, and runs
//!   inference on dedicated threads with a pool of ONNX Runtime sessions per model and a
//!   bounded queue (full queue: the oldest job of the same stream is dropped, or the
//!   caller gets `Busy` and answers 503).
//! * [`image`] — photo decoding (size and pixel limits, EXIF orientation) and the
//!   preprocessing the image model was trained with.
//! * [`telemetry`] — vibration signal parsing (CSV, JSON, raw float32 with a header) and
//!   the features computed in Rust: RMS, kurtosis, crest factor, envelope spectrum with
//!   the bearing defect frequencies marked, and the model's envelope-order features.
//! * [`fusion`] — combines image, telemetry and fault-code evidence.
//!
//! This module does no HTTP and no SQL: the HTTP layer stores what it returns as
//! work-order events. It never panics on input: a bad image or signal is an error value.

pub mod alerts;
pub mod explain;
pub mod fusion;
pub mod image;
pub mod manifest;
pub mod registry;
pub mod telemetry;

use serde::{Deserialize, Serialize};

/// One fault hypothesis from one piece of evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Hypothesis {
    /// Knowledge-base fault id, e.g. `bearing.inner_race`.
    pub fault_id: String,
    /// The model's label for it.
    pub label: String,
    pub probability: f32,
}

/// What one model said about one input.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelVerdict {
    pub model: String,
    pub model_version: String,
    /// Hypotheses, most probable first.
    pub hypotheses: Vec<Hypothesis>,
    /// True when the input is not something the model knows (out of distribution) or
    /// the top probability is below the model's calibrated `min_confidence`: the
    /// hypotheses are then shown for reference but not trusted.
    pub unknown: bool,
    /// Why the verdict is `unknown`, if it is.
    pub unknown_reason: Option<String>,
}

use std::sync::Arc;

use manifest::Preprocessing;
use registry::{InferError, Model};

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Signal(#[from] telemetry::SignalError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("model {0} cannot take this kind of input")]
    WrongModel(String),
}

/// The out-of-distribution scores of one input, where the model has them.
#[derive(Clone, Copy, Debug, Default)]
struct OodScores {
    /// Distance to the nearest known class (Mahalanobis).
    distance: Option<f32>,
    /// Probability that the input is an outlier (outlier-exposure detector).
    outlier: Option<f32>,
}

impl OodScores {
    fn first(out: &registry::Outputs) -> OodScores {
        OodScores {
            distance: out.ood_distance.as_ref().and_then(|d| d.first().copied()),
            outlier: out.outlier_probability.as_ref().and_then(|d| d.first().copied()),
        }
    }
}

/// Ranks the hypotheses and applies the manifest's thresholds: an input that looks like
/// nothing the model was trained on, or whose top probability is too low, is `unknown`.
fn verdict(model: &Model, probs: &[f32], ood: OodScores) -> ModelVerdict {
    let m = &model.manifest;
    let t = &m.thresholds;
    let mut hypotheses: Vec<Hypothesis> = m
        .labels
        .iter()
        .zip(probs)
        .map(|(l, p)| Hypothesis { fault_id: l.fault_id.clone(), label: l.name.clone(), probability: *p })
        .collect();
    hypotheses.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let top = hypotheses.first().map(|h| h.probability).unwrap_or(0.0);
    let unknown_reason = match (ood.outlier.zip(t.max_outlier_probability), ood.distance.zip(t.max_ood_distance)) {
        (Some((p, max)), _) if !(p <= max) => Some(format!("the input does not look like anything the model was trained on (outlier probability {p:.2} > {max:.2})")),
        (_, Some((d, max))) if !(d <= max) => Some(format!("the input does not look like anything the model was trained on (distance {d:.1} > {max:.1})")),
        _ if top < t.min_confidence => Some(format!("the top probability {top:.2} is below the model's threshold {:.2}", t.min_confidence)),
        _ => None,
    };
    ModelVerdict { model: m.name.clone(), model_version: m.version.clone(), hypotheses, unknown: unknown_reason.is_some(), unknown_reason }
}

/// Classifies a photo. Decoding and preprocessing run on the blocking pool.
pub async fn diagnose_image(model: Arc<Model>, bytes: bytes::Bytes, max_pixels: u64, stream: Option<String>) -> Result<ModelVerdict, DiagnoseError> {
    let Preprocessing::Image(p) = model.manifest.preprocessing.clone() else {
        return Err(DiagnoseError::WrongModel(model.manifest.name.clone()));
    };
    let tensor = tokio::task::spawn_blocking(move || -> Result<Vec<f32>, image::ImageError> {
        let g = image::decode(&bytes, max_pixels, p.luma_weights)?;
        Ok(image::preprocess(&g, &p))
    })
    .await
    .map_err(|e| InferError::Failed(e.to_string()))??;
    let out = model.infer(tensor, 1, stream).await?;
    Ok(verdict(&model, &out.probabilities, OodScores::first(&out)))
}

/// Classifies a decoded video frame (its luma plane), for live sessions. `stream` names
/// the session: when the queue is full its older frame is dropped, not this one.
pub async fn diagnose_luma(model: Arc<Model>, frame: image::Gray, stream: String) -> Result<ModelVerdict, DiagnoseError> {
    let Preprocessing::Image(p) = model.manifest.preprocessing.clone() else {
        return Err(DiagnoseError::WrongModel(model.manifest.name.clone()));
    };
    if frame.width < 16 || frame.height < 16 {
        return Err(image::ImageError::TooSmall { w: frame.width as u32, h: frame.height as u32 }.into());
    }
    let tensor = tokio::task::spawn_blocking(move || image::preprocess(&frame, &p)).await.map_err(|e| InferError::Failed(e.to_string()))?;
    let out = model.infer(tensor, 1, Some(stream)).await?;
    Ok(verdict(&model, &out.probabilities, OodScores::first(&out)))
}

/// What the telemetry analysis returns besides the verdict: for the console to plot.
#[derive(Clone, Debug, Serialize)]
pub struct TelemetryAnalysis {
    pub sample_rate_hz: f64,
    pub rpm: f64,
    pub stats: telemetry::Stats,
    pub windows: usize,
    pub envelope: telemetry::EnvelopePlot,
    /// The model's features of the first window, named.
    pub features: Vec<(String, f32)>,
}

/// Classifies a vibration signal: features per window on the blocking pool, one batch
/// through the model, probabilities averaged over the windows.
pub async fn diagnose_signal(model: Arc<Model>, signal: telemetry::Signal) -> Result<(ModelVerdict, TelemetryAnalysis), DiagnoseError> {
    let Preprocessing::Envelope(p) = model.manifest.preprocessing.clone() else {
        return Err(DiagnoseError::WrongModel(model.manifest.name.clone()));
    };
    telemetry::check_for_model(&signal, &p)?;
    let (batch, rows, analysis) = tokio::task::spawn_blocking(move || {
        let plans = telemetry::Plans::new(p.window_samples);
        let starts = telemetry::window_starts(signal.samples.len(), p.window_samples);
        let mut batch = Vec::with_capacity(starts.len() * p.feature_count());
        let mut first = Vec::new();
        for (i, s) in starts.iter().enumerate() {
            let f = telemetry::window_features(&plans, &p, &signal.samples[*s..s + p.window_samples], signal.sample_rate_hz, signal.rpm);
            if i == 0 {
                first = f.clone();
            }
            batch.extend(f);
        }
        let band = p.bands_hz[p.bands_hz.len() / 2];
        let analysis = TelemetryAnalysis {
            sample_rate_hz: signal.sample_rate_hz,
            rpm: signal.rpm,
            stats: telemetry::stats(&signal),
            windows: starts.len(),
            envelope: telemetry::envelope_plot(&plans, &p, &signal, band),
            features: p.feature_names.iter().cloned().zip(first).collect(),
        };
        (batch, starts.len(), analysis)
    })
    .await
    .map_err(|e| InferError::Failed(e.to_string()))?;
    let out = model.infer(batch, rows, None).await?;
    let k = model.manifest.labels.len();
    let mut mean = vec![0f32; k];
    for row in out.probabilities.chunks_exact(k) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / rows as f32;
        }
    }
    Ok((verdict(&model, &mean, OodScores::default()), analysis))
}
