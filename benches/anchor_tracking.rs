//! Annotation anchoring: cost and accuracy (docs/anchoring.md).
//!
//! `cargo bench --bench anchor_tracking` prints markdown tables:
//! (a) pyramid build per frame, (b) anchor creation and update per anchor per frame with
//! 1 and 5 anchors sharing one pyramid, (c) error of the anchored region on synthetic
//! clips with known motion (clean and rough conditions), and when a cut / a region
//! leaving the frame is declared lost, (d) sessions (3 anchors each) that two cores
//! sustain at 1, 5 and 10 sampled frames per second, (e) parameter variants.
//!
//! Knobs: `BENCH_REPS` (timing repetitions over a 30-frame clip, default 5),
//! `BENCH_SIZES` (e.g. `640x480,320x240`, the default), `BENCH_VARIANTS=0` to skip (e).

use std::hint::black_box;
use std::time::{Duration, Instant};

use fixline::guidance::tracking::synthetic::{self, ClipKind, Conditions, Stats};
use fixline::guidance::tracking::{Anchor, MotionModel, Point, Pyramid, TrackState, TrackerConfig};

/// Five regions (25 % x 25 %) that stay in the picture during the combined clip.
const REGIONS: [[Point; 2]; 5] = [
    synthetic::REGION,
    [Point::new(0.55, 0.30), Point::new(0.75, 0.50)],
    [Point::new(0.20, 0.55), Point::new(0.40, 0.75)],
    [Point::new(0.55, 0.55), Point::new(0.75, 0.75)],
    [Point::new(0.35, 0.15), Point::new(0.55, 0.35)],
];

const CORES: f64 = 2.0;
const ANCHORS_PER_SESSION: f64 = 3.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn sizes() -> Vec<(usize, usize)> {
    let spec = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "640x480,320x240".into());
    spec.split(',')
        .filter_map(|s| {
            let (w, h) = s.trim().split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .collect()
}

fn ms(values: &[Duration]) -> Stats {
    Stats::of(&values.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>())
}

struct Cost {
    pyramid: Stats,
    create: Stats,
    update: [Stats; 2],
    /// Anchors created (a region with too few corners is refused) with 1 and 5 regions.
    created: [usize; 2],
    tracking_at_end: [usize; 2],
}

fn measure_cost(w: usize, h: usize, cfg: &TrackerConfig, reps: usize) -> Cost {
    let clip = synthetic::clip(ClipKind::Combined, w, h);
    let frames = clip.frames.len();
    let mut pyramid = Vec::new();
    for _ in 0..reps {
        for t in 0..frames {
            let start = Instant::now();
            let p = Pyramid::new(&clip.gray(t), cfg.pyramid_levels).expect("synthetic frames are valid");
            pyramid.push(start.elapsed());
            black_box(p);
        }
    }
    let pyramids: Vec<Pyramid> = (0..frames)
        .map(|t| Pyramid::new(&clip.gray(t), cfg.pyramid_levels).expect("synthetic frames are valid"))
        .collect();
    let mut create = Vec::new();
    let mut update = [Vec::new(), Vec::new()];
    let mut tracking_at_end = [0, 0];
    let mut created = [0, 0];
    for (slot, count) in [1usize, 5].into_iter().enumerate() {
        for _ in 0..reps {
            let mut anchors = Vec::new();
            for region in &REGIONS[..count] {
                let start = Instant::now();
                let anchor = Anchor::new_with(&pyramids[0], *region, cfg.clone());
                create.push(start.elapsed());
                anchors.extend(anchor);
            }
            created[slot] = anchors.len();
            for pyr in &pyramids[1..] {
                for anchor in anchors.iter_mut() {
                    let start = Instant::now();
                    let u = anchor.update_with(pyr);
                    update[slot].push(start.elapsed());
                    black_box(u);
                }
            }
            tracking_at_end[slot] = anchors.iter().filter(|a| a.state() == TrackState::Tracking).count();
        }
    }
    Cost {
        pyramid: ms(&pyramid),
        create: ms(&create),
        update: [ms(&update[0]), ms(&update[1])],
        created,
        tracking_at_end,
    }
}

fn main() {
    let started = Instant::now();
    let reps = env_usize("BENCH_REPS", 5).max(1);
    let cfg = TrackerConfig::default();
    println!("# anchor_tracking\n");
    println!("config: {cfg:?}\n");
    let mut costs = Vec::new();

    println!("## (a, b) cost per frame (ms, single thread; {reps} passes over the 30-frame combined clip)\n");
    println!("| frame | pyramid mean | pyramid p95 | anchor create mean | update, 1 anchor: mean / p95 / max | update per anchor, 5 anchors: mean / p95 / max | anchors created, tracking at end (1 / 5 regions) |");
    println!("|---|---|---|---|---|---|---|");
    for (w, h) in sizes() {
        let c = measure_cost(w, h, &cfg, reps);
        println!(
            "| {w}x{h} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} / {:.3} | {:.3} / {:.3} / {:.3} | {}, {} / {}, {} |",
            c.pyramid.mean,
            c.pyramid.p95,
            c.create.mean,
            c.update[0].mean,
            c.update[0].p95,
            c.update[0].max,
            c.update[1].mean,
            c.update[1].p95,
            c.update[1].max,
            c.created[0],
            c.tracking_at_end[0],
            c.created[1],
            c.tracking_at_end[1],
        );
        costs.push(((w, h), c));
    }

    println!(
        "\n## (c) accuracy (pixels of the current frame; anchor created on frame 0 around {:?})\n",
        synthetic::REGION
    );
    for (w, h) in sizes() {
        for conditions in [Conditions::Clean, Conditions::Rough] {
            println!("### {w}x{h}, {} frames\n", conditions.name());
            println!("{}", synthetic::HEADER);
            for kind in ClipKind::ALL {
                let clip = synthetic::clip_with(kind, w, h, conditions);
                let result = synthetic::run(&clip, synthetic::REGION, &cfg);
                println!("{}", synthetic::row(&result));
            }
            println!();
        }
    }

    println!("## (d) sessions with {ANCHORS_PER_SESSION} anchors sustained by {CORES} cores (tracking only: pyramid + 3 updates per sampled frame; decoding not included)\n");
    println!("| frame | ms per session-frame | 1 frame/s | 5 frames/s | 10 frames/s |");
    println!("|---|---|---|---|---|");
    for ((w, h), c) in &costs {
        let per_frame = c.pyramid.mean + ANCHORS_PER_SESSION * c.update[1].mean;
        let sessions = |fps: f64| (CORES * 1000.0 / (fps * per_frame)).floor();
        println!("| {w}x{h} | {per_frame:.3} | {} | {} | {} |", sessions(1.0), sessions(5.0), sessions(10.0));
    }

    if env_usize("BENCH_VARIANTS", 1) != 0 {
        let (w, h) = (640, 480);
        println!("\n## (e) variants at {w}x{h}: rough clips (translation, combined, perspective, fast pan, occluder), centre and corner error, update cost (5 anchors)\n");
        println!("| variant | centre mean px | centre max px | corner max px | lost (of 5 clips) | update mean ms |");
        println!("|---|---|---|---|---|---|");
        let clips: Vec<_> =
            [ClipKind::Translation, ClipKind::Combined, ClipKind::Perspective, ClipKind::FastPan, ClipKind::Occlusion]
                .into_iter()
                .map(|k| synthetic::clip_with(k, w, h, Conditions::Rough))
                .collect();
        let d = TrackerConfig::default;
        let variants = [
            ("default", d()),
            ("no drift correction (refine = false)", TrackerConfig { refine: false, ..d() }),
            ("similarity model", TrackerConfig { model: MotionModel::Similarity, ..d() }),
            ("max_features 32", TrackerConfig { max_features: 32, redetect_below: 20, ..d() }),
            ("window 11", TrackerConfig { window: 11, ..d() }),
            ("window 21", TrackerConfig { window: 21, ..d() }),
            ("pyramid_levels 3", TrackerConfig { pyramid_levels: 3, ..d() }),
        ];
        for (name, v) in variants {
            let (mut centre, mut corner, mut lost) = (Vec::new(), Vec::new(), 0);
            for clip in &clips {
                let r = synthetic::run(clip, synthetic::REGION, &v);
                centre.extend(r.center_errors.iter().copied());
                corner.extend(r.corner_errors.iter().copied());
                lost += usize::from(r.lost_at.is_some());
            }
            let cost = measure_cost(w, h, &v, 1);
            let (c, k) = (Stats::of(&centre), Stats::of(&corner));
            println!("| {name} | {:.2} | {:.2} | {:.2} | {lost} | {:.3} |", c.mean, c.max, k.max, cost.update[1].mean);
        }
    }
    println!("\nbench took {:.1} s", started.elapsed().as_secs_f64());
}
