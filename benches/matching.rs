//! Technician matching benchmark.
//!
//! Ranks technicians for onsite jobs with [`fixline::dispatch::matching`]:
//!
//! 1. one work order against `BENCH_TECHS` technicians (default 10,000), repeated;
//! 2. a batch of `BENCH_JOBS` work orders (default 1,000) against the same roster,
//!    sharing one expanded roster (schedules are expanded once per batch);
//! 3. the roster expansion itself (time zones to UTC intervals for 7 days).
//!
//! The technicians are spread over China with five time zones' worth of working hours
//! (the schedule code does real tz-database lookups), 1-3 product-line skills each and
//! random load; jobs are random sites with random deadlines. Seeded, so runs compare.
//!
//! `cargo bench --bench matching`; prints a markdown table to stdout.

use std::time::Instant;

use fixline::dispatch::matching::{GeoPoint, GreatCircle, Job, Level, Roster, Skill, Technician, Weights};
use fixline::dispatch::schedule::WorkingHours;
use rand::{Rng, SeedableRng};

const LINES: &[&str] = &["DRL-18V", "AGR-125", "SPN-CNC", "MTR-IND", "ROLL-MILL"];
const ZONES: &[&str] = &["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Europe/Berlin", "UTC"];
const REGIONS: &[&str] = &["east", "north", "south", "west", "central"];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn point(rng: &mut impl Rng) -> GeoPoint {
    GeoPoint { latitude: rng.gen_range(22.0..42.0), longitude: rng.gen_range(100.0..122.0) }
}

fn technicians(n: usize, rng: &mut impl Rng) -> Vec<Technician> {
    (0..n)
        .map(|i| {
            let skills = (0..rng.gen_range(1..=3))
                .map(|_| Skill {
                    product_line: LINES[rng.gen_range(0..LINES.len())].to_string(),
                    level: [Level::Technician, Level::Specialist][rng.gen_range(0..2)],
                })
                .collect();
            let start = rng.gen_range(6..10) * 60;
            Technician {
                id: format!("tech-{i:05}"),
                skills,
                region: REGIONS[rng.gen_range(0..REGIONS.len())].to_string(),
                home: point(rng),
                hours: WorkingHours {
                    timezone: ZONES[rng.gen_range(0..ZONES.len())].to_string(),
                    days: vec![1, 2, 3, 4, 5],
                    start_minute: start,
                    end_minute: start + 9 * 60,
                },
                open_jobs: rng.gen_range(0..4),
                max_jobs: 4,
                active: rng.gen_bool(0.97),
            }
        })
        .collect()
}

fn job(now: i64, rng: &mut impl Rng) -> Job {
    Job {
        product_line: Some(LINES[rng.gen_range(0..LINES.len())].to_string()),
        level: Level::Technician,
        site: point(rng),
        region: Some(REGIONS[rng.gen_range(0..REGIONS.len())].to_string()),
        deadline: now + rng.gen_range(4..72) * 3_600_000,
        job_minutes: rng.gen_range(30..240),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n_techs = env("BENCH_TECHS", 10_000);
    let n_jobs = env("BENCH_JOBS", 1_000);
    let repeats = env("BENCH_REPEATS", 200);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = 1_795_584_000_000; // Wed 2026-11-25 05:20 UTC
    let techs = technicians(n_techs, &mut rng);
    let weights = Weights::default();
    let travel = GreatCircle::default();

    let t = Instant::now();
    let roster = Roster::new(techs, now, 7);
    let expand_ms = t.elapsed().as_secs_f64() * 1e3;

    // 1. One work order, repeated (different jobs, same roster).
    let jobs: Vec<Job> = (0..repeats).map(|_| job(now, &mut rng)).collect();
    let mut single = Vec::with_capacity(repeats);
    let mut eligible = 0usize;
    for j in &jobs {
        let t = Instant::now();
        let r = roster.rank(j, now, &weights, &travel, 10, false);
        single.push(t.elapsed().as_secs_f64() * 1e3);
        eligible += r.len();
        std::hint::black_box(r);
    }
    single.sort_by(|a, b| a.partial_cmp(b).unwrap());

    // 2. A batch, including the roster expansion it needs.
    let batch: Vec<Job> = (0..n_jobs).map(|_| job(now, &mut rng)).collect();
    let roster_techs = roster.technicians.clone();
    let t = Instant::now();
    let roster = Roster::new(roster_techs, now, 7);
    let mut top_meets_sla = 0;
    for j in &batch {
        let r = roster.rank(j, now, &weights, &travel, 10, false);
        top_meets_sla += r.first().map(|c| c.meets_sla as usize).unwrap_or(0);
        std::hint::black_box(r);
    }
    let batch_ms = t.elapsed().as_secs_f64() * 1e3;

    println!("| scenario | technicians | work orders | result |");
    println!("|---|---:|---:|---|");
    println!("| roster expansion (7 days, tz lookups) | {n_techs} | - | {expand_ms:.2} ms |");
    println!(
        "| rank one work order (top 10) | {n_techs} | 1 x {repeats} | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
        percentile(&single, 0.5),
        percentile(&single, 0.99),
        single[single.len() - 1]
    );
    println!(
        "| batch incl. expansion | {n_techs} | {n_jobs} | {batch_ms:.0} ms total, {:.2} ms per work order |",
        batch_ms / n_jobs as f64
    );
    eprintln!("mean eligible in top 10: {:.1}; top candidate meets SLA in {top_meets_sla}/{n_jobs}", eligible as f64 / repeats as f64);
}
