//! The model registry and its inference workers.
//!
//! Each model gets `sessions_per_model` worker threads, each owning one ONNX Runtime
//! session (`Session::run` takes `&mut self`, so sessions are pooled, not shared behind
//! a lock), fed by one bounded queue. When the queue is full a job that belongs to a
//! stream (a live session's frames) replaces the oldest queued job of the same stream,
//! which is answered `Dropped` and counted; any other job is refused with `Busy`, so an
//! upload gets 503 + Retry-After instead of an unbounded wait, and media never waits.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::manifest::{Manifest, Task, TensorSpec};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot load the ONNX Runtime library {path}: {message} (run scripts/setup.sh, or set diagnosis.onnxruntime_library / ORT_DYLIB_PATH)")]
    Runtime { path: PathBuf, message: String },
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("cannot read the model directory {path}: {message}")]
    Dir { path: PathBuf, message: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InferError {
    #[error("the inference queue is full; retry shortly")]
    Busy,
    #[error("a newer frame of the same stream replaced this one")]
    Dropped,
    #[error("inference failed: {0}")]
    Failed(String),
    #[error("the diagnosis service is shutting down")]
    Closed,
}

/// Settings the registry needs (from `[diagnosis]` in the config).
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    pub onnxruntime_library: PathBuf,
    pub model_dirs: Vec<PathBuf>,
    pub sessions_per_model: usize,
    pub intra_threads: usize,
    pub queue_capacity: usize,
}

/// What a model returned for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// Row-major (batch, labels).
    pub probabilities: Vec<f32>,
    pub ood_distance: Option<Vec<f32>>,
    pub outlier_probability: Option<Vec<f32>>,
}

struct Job {
    input: Vec<f32>,
    shape: Vec<i64>,
    stream: Option<String>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Outputs, InferError>>,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
pub struct ModelStats {
    pub inferences: AtomicU64,
    pub dropped: AtomicU64,
    pub busy: AtomicU64,
    pub failures: AtomicU64,
    /// Sum of queue wait + run time, microseconds.
    pub latency_us_sum: AtomicU64,
}

struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    capacity: usize,
}

/// A loaded, validated model and its workers.
pub struct Model {
    pub manifest: Manifest,
    pub stats: Arc<ModelStats>,
    queue: Arc<Queue>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Model {
    /// Runs one batch. `input` is row-major with the manifest's input shape and `batch`
    /// rows; `stream` names a live stream whose older queued frames may be dropped.
    pub async fn infer(&self, input: Vec<f32>, batch: usize, stream: Option<String>) -> Result<Outputs, InferError> {
        let mut shape = self.manifest.input.shape.clone();
        shape[0] = batch as i64;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.closed {
                return Err(InferError::Closed);
            }
            if st.jobs.len() >= self.queue.capacity {
                let same = stream.as_ref().and_then(|s| st.jobs.iter().position(|j| j.stream.as_ref() == Some(s)));
                match same {
                    Some(i) => {
                        if let Some(old) = st.jobs.remove(i) {
                            let _ = old.reply.send(Err(InferError::Dropped));
                        }
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        self.stats.busy.fetch_add(1, Ordering::Relaxed);
                        return Err(InferError::Busy);
                    }
                }
            }
            st.jobs.push_back(Job { input, shape, stream, enqueued: Instant::now(), reply: tx });
        }
        self.queue.ready.notify_one();
        rx.await.unwrap_or(Err(InferError::Closed))
    }

    fn close(&self) {
        let mut st = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        st.closed = true;
        for j in st.jobs.drain(..) {
            let _ = j.reply.send(Err(InferError::Closed));
        }
        drop(st);
        self.queue.ready.notify_all();
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        self.close();
        for h in self.workers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = h.join();
        }
    }
}

/// All loaded models.
pub struct Registry {
    pub models: Vec<Arc<Model>>,
}

static ORT_ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(lib: &Path) -> Result<&'static ort::environment::Environment, RegistryError> {
    let env = ORT_ENV.get_or_init(|| {
        if !lib.is_file() {
            return Err("file not found".to_owned());
        }
        ort::init_from(lib).map_err(|e| e.to_string())?.with_name("fixline").build().map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|m| RegistryError::Runtime { path: lib.to_owned(), message: m.clone() })
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

fn check_outlet(path: &Path, what: &str, ty: &ValueType, spec: &TensorSpec) -> Result<(), RegistryError> {
    let bad = |m: String| RegistryError::Model { path: path.to_owned(), message: format!("{what} `{}`: {m}", spec.name) };
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            if *ty != TensorElementType::Float32 {
                return Err(bad(format!("is {ty:?}, the manifest says float32")));
            }
            let dims: &[i64] = shape;
            if dims.len() != spec.shape.len() {
                return Err(bad(format!("has rank {}, the manifest says {:?}", dims.len(), spec.shape)));
            }
            for (m, s) in dims.iter().zip(&spec.shape) {
                if *m >= 0 && *s >= 0 && m != s {
                    return Err(bad(format!("has shape {dims:?}, the manifest says {:?}", spec.shape)));
                }
            }
            Ok(())
        }
        other => Err(bad(format!("is {other:?}, not a tensor"))),
    }
}

fn open_session(env: &ort::environment::Environment, m: &Manifest, intra: usize) -> Result<Session, RegistryError> {
    let err = |e: String| RegistryError::Model { path: m.model_path.clone(), message: e };
    Session::builder(env)
        .map_err(|e| err(e.to_string()))?
        .with_intra_threads(intra)
        .map_err(|e| err(e.to_string()))?
        .commit_from_file(&m.model_path)
        .map_err(|e| err(format!("ONNX Runtime cannot load it: {e}")))
}

/// Checks that the model's inputs and outputs are what the manifest declares.
fn validate(session: &Session, m: &Manifest) -> Result<(), RegistryError> {
    let path = &m.model_path;
    let inputs = session.inputs();
    if inputs.len() != 1 || inputs[0].name() != m.input.name {
        let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
        return Err(RegistryError::Model { path: path.clone(), message: format!("inputs are {names:?}, the manifest declares one input `{}`", m.input.name) });
    }
    check_outlet(path, "input", inputs[0].dtype(), &m.input)?;
    for spec in std::iter::once(&m.probabilities).chain(m.ood_distance.as_ref()).chain(m.outlier_probability.as_ref()) {
        let out = session.outputs().iter().find(|o| o.name() == spec.name).ok_or_else(|| RegistryError::Model {
            path: path.clone(),
            message: format!("has no output `{}` declared in the manifest", spec.name),
        })?;
        check_outlet(path, "output", out.dtype(), spec)?;
    }
    Ok(())
}

fn worker(mut session: Session, queue: Arc<Queue>, manifest: Manifest, stats: Arc<ModelStats>) {
    loop {
        let job = {
            let mut st = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(j) = st.jobs.pop_front() {
                    break j;
                }
                if st.closed {
                    return;
                }
                st = queue.ready.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = run(&mut session, &manifest, job.input, &job.shape);
        match &result {
            Ok(_) => stats.inferences.fetch_add(1, Ordering::Relaxed),
            Err(_) => stats.failures.fetch_add(1, Ordering::Relaxed),
        };
        stats.latency_us_sum.fetch_add(job.enqueued.elapsed().as_micros() as u64, Ordering::Relaxed);
        let _ = job.reply.send(result);
    }
}

fn run(session: &mut Session, m: &Manifest, input: Vec<f32>, shape: &[i64]) -> Result<Outputs, InferError> {
    let failed = |e: ort::Error| InferError::Failed(e.to_string());
    let tensor = Tensor::from_array((shape.to_vec(), input)).map_err(failed)?;
    let outputs = session.run(ort::inputs![m.input.name.as_str() => tensor]).map_err(failed)?;
    let take = |name: &str| -> Result<Vec<f32>, InferError> {
        let v = outputs.get(name).ok_or_else(|| InferError::Failed(format!("no output {name}")))?;
        let (_, data) = v.try_extract_tensor::<f32>().map_err(failed)?;
        Ok(data.to_vec())
    };
    let probabilities = take(&m.probabilities.name)?;
    let ood_distance = m.ood_distance.as_ref().map(|o| take(&o.name)).transpose()?;
    let outlier_probability = m.outlier_probability.as_ref().map(|o| take(&o.name)).transpose()?;
    if probabilities.iter().chain(outlier_probability.iter().flatten()).any(|p| !p.is_finite()) {
        return Err(InferError::Failed("the model returned a non-finite probability".into()));
    }
    Ok(Outputs { probabilities, ood_distance, outlier_probability })
}

impl Registry {
    /// An empty registry (diagnosis disabled).
    pub fn empty() -> Registry {
        Registry { models: Vec::new() }
    }

    /// Loads and validates every model directory; refuses to start on any mismatch.
    /// Blocking: run it on the blocking pool.
    pub fn load(s: &RegistrySettings) -> Result<Registry, RegistryError> {
        let env = environment(&s.onnxruntime_library)?;
        let mut models = Vec::new();
        for dir in &s.model_dirs {
            let manifest = Manifest::load(dir)?;
            let digest = sha256_file(&manifest.model_path)
                .map_err(|e| RegistryError::Model { path: manifest.model_path.clone(), message: format!("cannot read: {e}") })?;
            if digest != manifest.sha256 {
                return Err(RegistryError::Model {
                    path: manifest.model_path.clone(),
                    message: format!("content hash {digest} does not match the manifest's sha256 {}", manifest.sha256),
                });
            }
            if models.iter().any(|m: &Arc<Model>| m.manifest.name == manifest.name) {
                return Err(RegistryError::Model { path: dir.clone(), message: format!("a second model named {}", manifest.name) });
            }
            let queue = Arc::new(Queue { state: Mutex::new(QueueState::default()), ready: Condvar::new(), capacity: s.queue_capacity.max(1) });
            let stats = Arc::new(ModelStats::default());
            let mut workers = Vec::new();
            for i in 0..s.sessions_per_model.max(1) {
                let session = open_session(env, &manifest, s.intra_threads.max(1))?;
                validate(&session, &manifest)?;
                let (q, m, st) = (queue.clone(), manifest.clone(), stats.clone());
                let handle = std::thread::Builder::new()
                    .name(format!("infer-{}-{i}", manifest.name))
                    .spawn(move || worker(session, q, m, st))
                    .map_err(|e| RegistryError::Model { path: dir.clone(), message: format!("cannot start a worker: {e}") })?;
                workers.push(handle);
            }
            tracing::info!(model = %manifest.name, version = %manifest.version, task = ?manifest.task, "model loaded");
            models.push(Arc::new(Model { manifest, stats, queue, workers: Mutex::new(workers) }));
        }
        Ok(Registry { models })
    }

    /// Model directories: every sub-directory of `root` with a manifest.json, sorted.
    pub fn discover(root: &Path) -> Result<Vec<PathBuf>, RegistryError> {
        let rd = std::fs::read_dir(root).map_err(|e| RegistryError::Dir { path: root.to_owned(), message: e.to_string() })?;
        let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("manifest.json").is_file()).collect();
        dirs.sort();
        Ok(dirs)
    }

    pub fn for_task(&self, task: Task) -> Option<Arc<Model>> {
        self.models.iter().find(|m| m.manifest.task == task).cloned()
    }

    /// Prometheus lines for the inference workers.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str("# HELP fixline_inference_total Inference jobs by model and outcome.\n# TYPE fixline_inference_total counter\n");
        for m in &self.models {
            let s = &m.stats;
            for (outcome, v) in [("ok", &s.inferences), ("failed", &s.failures), ("dropped", &s.dropped), ("busy", &s.busy)] {
                let _ = writeln!(out, "fixline_inference_total{{model=\"{}\",outcome=\"{outcome}\"}} {}", m.manifest.name, v.load(Ordering::Relaxed));
            }
        }
        out.push_str("# HELP fixline_inference_seconds_sum Total queue wait plus run time.\n# TYPE fixline_inference_seconds_sum counter\n");
        for m in &self.models {
            let _ = writeln!(out, "fixline_inference_seconds_sum{{model=\"{}\"}} {}", m.manifest.name, m.stats.latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6);
        }
    }
}
