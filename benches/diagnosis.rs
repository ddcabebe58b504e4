//! Diagnosis benchmark: model latency and throughput at 1 and 2 intra-op threads, the
//! frame pipeline end to end (preprocess + tensor + inference) against bare ONNX
//! Runtime, and the same work in Python (onnxruntime + numpy, and + OpenCV) in the
//! same run, with the same thread count.
//!
//!     cargo bench --bench diagnosis            (BENCH_ITERS=500 by default)
//!
//! Needs .deps/onnxruntime (scripts/setup.sh) and, for the Python side,
//! .deps/venv with opencv-python-headless (benches/diagnosis_py.py says how).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fixline::diagnosis::image as fimage;
use fixline::diagnosis::manifest::{Preprocessing, Task};
use fixline::diagnosis::registry::{Registry, RegistrySettings};
use fixline::diagnosis::telemetry;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

struct Row {
    what: String,
    threads: usize,
    p50: f64,
    p99: f64,
    per_s: f64,
}

async fn time_it<F, Fut>(what: &str, threads: usize, iters: usize, mut f: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..iters / 10 {
        f().await;
    }
    let mut lat = Vec::with_capacity(iters);
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        f().await;
        lat.push(t.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    Row { what: what.into(), threads, p50: pct(&mut lat, 0.5), p99: pct(&mut lat, 0.99), per_s: iters as f64 / total }
}

fn settings(threads: usize) -> RegistrySettings {
    let lib = std::env::var("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|_| repo(".deps/onnxruntime/lib/libonnxruntime.so"));
    RegistrySettings {
        onnxruntime_library: lib,
        model_dirs: vec![repo("models/bearing-cwru"), repo("models/surface-neu")],
        sessions_per_model: 1,
        intra_threads: threads,
        queue_capacity: 8,
    }
}

/// A 640x480 camera-like luma frame (what a decoded VP8 frame's Y plane gives).
fn camera_frame() -> fimage::Gray {
    let (w, h) = (640usize, 480usize);
    let pixels = (0..w * h).map(|i| (((i % w) * 3 + (i / w) * 7 + (i * 2654435761) % 23) % 256) as u8).collect();
    fimage::Gray { width: w, height: h, pixels }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iters: usize = std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let neu = std::fs::read(repo("../shared/datasets/images/scratches/scratches_4.png")).expect("NEU image");
    let cwru = std::fs::read(repo("../shared/datasets/cwru/de12k/105_IR007_0hp.f32")).expect("CWRU recording");
    let sig: Vec<f64> = cwru.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap()))).collect();
    let mut rows = Vec::new();
    for threads in [1, 2] {
        let reg = Registry::load(&settings(threads)).expect("models load");
        let img = reg.for_task(Task::SurfaceDefectImage).unwrap();
        let vib = reg.for_task(Task::BearingFaultVibration).unwrap();
        let Preprocessing::Image(ip) = img.manifest.preprocessing.clone() else { unreachable!() };
        let Preprocessing::Envelope(vp) = vib.manifest.preprocessing.clone() else { unreachable!() };
        let frame = camera_frame();
        let tensor = fimage::preprocess(&frame, &ip);
        rows.push(time_it("surface-neu: bare inference (1x1x128x128)", threads, iters, || {
            let (m, t) = (img.clone(), tensor.clone());
            async move {
                m.infer(t, 1, None).await.unwrap();
            }
        })
        .await);
        rows.push(time_it("surface-neu: frame pipeline (640x480 luma -> crop, resize, tensor, inference)", threads, iters, || {
            let (m, ip) = (img.clone(), ip.clone());
            let f = &frame;
            async move {
                let t = fimage::preprocess(f, &ip);
                m.infer(t, 1, None).await.unwrap();
            }
        })
        .await);
        rows.push(time_it("surface-neu: photo pipeline (PNG 200x200 decode -> ... -> inference)", threads, iters, || {
            let (m, ip) = (img.clone(), ip.clone());
            let b = &neu;
            async move {
                let g = fimage::decode(b, 1 << 26, ip.luma_weights).unwrap();
                m.infer(fimage::preprocess(&g, &ip), 1, None).await.unwrap();
            }
        })
        .await);
        let plans = telemetry::Plans::new(vp.window_samples);
        let feats = telemetry::window_features(&plans, &vp, &sig[..vp.window_samples], 12_000.0, 1797.0);
        rows.push(time_it("bearing-cwru: bare inference (1x46)", threads, iters, || {
            let (m, f) = (vib.clone(), feats.clone());
            async move {
                m.infer(f, 1, None).await.unwrap();
            }
        })
        .await);
        rows.push(time_it("bearing-cwru: window pipeline (8192 samples -> features -> inference)", threads, iters, || {
            let (m, vp) = (vib.clone(), vp.clone());
            let (plans, s) = (&plans, &sig);
            async move {
                let f = telemetry::window_features(plans, &vp, &s[..vp.window_samples], 12_000.0, 1797.0);
                m.infer(f, 1, None).await.unwrap();
            }
        })
        .await);
    }
    println!("## Rust (fixline), {iters} iterations each\n");
    println!("| what | intra threads | p50 ms | p99 ms | per second |\n|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {:.3} | {:.3} | {:.0} |", r.what, r.threads, r.p50, r.p99, r.per_s);
    }
    // The Python side in the same run.
    let py = repo(".deps/venv/bin/python");
    if py.exists() {
        let out = std::process::Command::new(py).arg(repo("benches/diagnosis_py.py")).arg(iters.to_string()).output().expect("python");
        println!("\n{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
    } else {
        println!("\n(.deps/venv missing: Python comparison skipped)");
    }
}
