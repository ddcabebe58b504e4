//! Model manifests (`models/<name>/manifest.json`): task, input and outputs, the
//! preprocessing the model was trained with, labels mapped to fault ids, thresholds,
//! version and content hash. Parsed strictly: unknown keys are errors naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn invalid(path: &Path, message: impl Into<String>) -> ManifestError {
    ManifestError::Invalid { path: path.to_owned(), message: message.into() }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    BearingFaultVibration,
    SurfaceDefectImage,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    /// -1 for a dynamic dimension (the batch).
    pub shape: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub index: usize,
    pub name: String,
    pub fault_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_confidence: f32,
    #[serde(default)]
    pub max_ood_distance: Option<f32>,
    /// The frame is `unknown` above this probability of being an outlier (a detector
    /// trained with outlier exposure; see models/surface-neu/MODEL_CARD.md).
    #[serde(default)]
    pub max_outlier_probability: Option<f32>,
}

/// Envelope-order features of a vibration window (see models/training/bearing_features.py).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeFeatures {
    pub kind: String,
    pub version: u32,
    pub window_samples: usize,
    pub min_sample_rate_hz: f64,
    pub bands_hz: Vec<[f64; 2]>,
    pub orders: BTreeMap<String, f64>,
    pub harmonics: Vec<u32>,
    pub tolerance: f64,
    pub noise_orders: [f64; 2],
    pub feature_names: Vec<String>,
}

impl EnvelopeFeatures {
    /// The orders in the fixed order the features use.
    pub const ORDER_NAMES: [&'static str; 5] = ["bpfi", "bpfo", "bsf2", "ftf", "shaft"];

    pub fn feature_count(&self) -> usize {
        self.bands_hz.len() * Self::ORDER_NAMES.len() * self.harmonics.len() + 1
    }
}

/// Image preprocessing (see models/training/surface_features.py).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImagePreprocessing {
    pub kind: String,
    pub version: u32,
    pub image_size: u32,
    pub luma_weights: [f64; 3],
    pub scale: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub enum Preprocessing {
    Envelope(EnvelopeFeatures),
    Image(ImagePreprocessing),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    task: Task,
    model_file: String,
    sha256: String,
    input: TensorSpec,
    outputs: BTreeMap<String, TensorSpec>,
    preprocessing: serde_json::Value,
    labels: Vec<Label>,
    thresholds: Thresholds,
    #[serde(default)]
    metrics: serde_json::Value,
}

/// A parsed, self-consistent manifest. Model-file checks happen in the registry.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub task: Task,
    pub model_path: PathBuf,
    pub sha256: String,
    pub input: TensorSpec,
    /// The `probabilities` output, and `ood_distance` and `outlier_probability` where
    /// the model has them.
    pub probabilities: TensorSpec,
    pub ood_distance: Option<TensorSpec>,
    pub outlier_probability: Option<TensorSpec>,
    pub preprocessing: Preprocessing,
    pub labels: Vec<Label>,
    pub thresholds: Thresholds,
    pub metrics: serde_json::Value,
}

impl Manifest {
    /// Reads and checks `<dir>/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, format!("cannot read: {e}")))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let raw: RawManifest = serde_path_to_error::deserialize(de).map_err(|e| invalid(&path, format!("{}: {}", e.path(), e.inner())))?;
        let name_ok = !raw.name.is_empty() && raw.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(invalid(&path, "name must be letters, digits, '-', '_' or '.'"));
        }
        if raw.model_file.contains(['/', '\\']) || raw.model_file.starts_with('.') {
            return Err(invalid(&path, "model_file must be a file name inside the model directory"));
        }
        if raw.input.dtype != "float32" {
            return Err(invalid(&path, "input.dtype must be float32"));
        }
        let probabilities = raw.outputs.get("probabilities").cloned().ok_or_else(|| invalid(&path, "outputs.probabilities is missing"))?;
        let n_labels = raw.labels.len();
        if n_labels < 2 || probabilities.shape.last() != Some(&(n_labels as i64)) {
            return Err(invalid(&path, format!("outputs.probabilities must end in the number of labels ({n_labels})")));
        }
        for (i, l) in raw.labels.iter().enumerate() {
            if l.index != i {
                return Err(invalid(&path, format!("labels[{i}].index must be {i}")));
            }
        }
        if !(0.0..=1.0).contains(&raw.thresholds.min_confidence) {
            return Err(invalid(&path, "thresholds.min_confidence must be within 0..=1"));
        }
        let ood_distance = raw.outputs.get("ood_distance").cloned();
        if ood_distance.is_some() != raw.thresholds.max_ood_distance.is_some() {
            return Err(invalid(&path, "outputs.ood_distance and thresholds.max_ood_distance go together"));
        }
        let outlier_probability = raw.outputs.get("outlier_probability").cloned();
        if outlier_probability.is_some() != raw.thresholds.max_outlier_probability.is_some() {
            return Err(invalid(&path, "outputs.outlier_probability and thresholds.max_outlier_probability go together"));
        }
        if raw.thresholds.max_outlier_probability.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(invalid(&path, "thresholds.max_outlier_probability must be within 0..=1"));
        }
        const ROLES: [&str; 3] = ["probabilities", "ood_distance", "outlier_probability"];
        if let Some(extra) = raw.outputs.keys().find(|k| !ROLES.contains(&k.as_str())) {
            return Err(invalid(&path, format!("outputs.{extra} is not a known output role")));
        }
        let pre_err = |e: serde_json::Error| invalid(&path, format!("preprocessing: {e}"));
        let preprocessing = match raw.task {
            Task::BearingFaultVibration => {
                let p: EnvelopeFeatures = serde_json::from_value(raw.preprocessing.clone()).map_err(pre_err)?;
                if p.kind != "envelope_order_features" || p.version != 1 {
                    return Err(invalid(&path, "preprocessing: this server computes envelope_order_features version 1"));
                }
                for o in EnvelopeFeatures::ORDER_NAMES {
                    if !p.orders.contains_key(o) {
                        return Err(invalid(&path, format!("preprocessing.orders.{o} is missing")));
                    }
                }
                if p.window_samples < 1024 || p.window_samples > 1 << 20 || p.bands_hz.is_empty() || p.harmonics.is_empty() {
                    return Err(invalid(&path, "preprocessing: window_samples, bands_hz or harmonics out of range"));
                }
                if raw.input.shape != [-1, p.feature_count() as i64] || p.feature_names.len() != p.feature_count() {
                    return Err(invalid(&path, format!("input.shape must be [-1, {}] for these features", p.feature_count())));
                }
                Preprocessing::Envelope(p)
            }
            Task::SurfaceDefectImage => {
                let p: ImagePreprocessing = serde_json::from_value(raw.preprocessing.clone()).map_err(pre_err)?;
                if p.kind != "luma_center_crop_box_resize" || p.version != 1 {
                    return Err(invalid(&path, "preprocessing: this server computes luma_center_crop_box_resize version 1"));
                }
                let s = i64::from(p.image_size);
                if !(16..=1024).contains(&s) || raw.input.shape != [-1, 1, s, s] {
                    return Err(invalid(&path, format!("input.shape must be [-1, 1, {s}, {s}]")));
                }
                Preprocessing::Image(p)
            }
        };
        Ok(Manifest {
            model_path: dir.join(&raw.model_file),
            name: raw.name,
            version: raw.version,
            task: raw.task,
            sha256: raw.sha256.to_ascii_lowercase(),
            input: raw.input,
            probabilities,
            ood_distance,
            outlier_probability,
            preprocessing,
            labels: raw.labels,
            thresholds: raw.thresholds,
            metrics: raw.metrics,
        })
    }
}
