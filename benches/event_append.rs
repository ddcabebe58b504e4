//! Work-order event append benchmark.
//!
//! Measures appending `note_added` events to work orders
//!
//! 1. through the store (`work_orders::repo::append`, one transaction per event, and
//!    `repo::append_batch`, one transaction per batch) on SQLite and, when
//!    `FIXLINE_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database;
//! 2. through plain `rusqlite` doing the same four statements per event on the same
//!    schema (the reference ceiling for SQLite);
//! 3. through the HTTP API of an in-process server: closed loop at fixed concurrency,
//!    and open loop at a fixed request rate (latency measured from the scheduled send
//!    time, so a stalled server cannot hide its queueing: no coordinated omission).
//!
//! Results are printed to stdout as markdown tables; progress goes to stderr.
//!
//! Knobs (environment variables):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BENCH_SECONDS` | 3 | measured seconds per closed-loop scenario |
//! | `BENCH_WARMUP_MS` | 300 | unmeasured warm-up before each closed-loop scenario |
//! | `BENCH_WRITERS` | `1,16,64` | concurrency levels (writers / clients) |
//! | `BENCH_BATCH` | 64 | events per batched transaction |
//! | `BENCH_WO_PER_WRITER` | 4 | work orders owned by each store / rusqlite writer |
//! | `BENCH_RATE` | 500 | open-loop API requests per second |
//! | `BENCH_OPEN_SECONDS` | 10 | open-loop duration |
//! | `BENCH_ONLY` | `store,rusqlite,api` | sections to run |
//! | `BENCH_SQLITE_EXPERIMENTS` | empty | extra SQLite store runs, labelled "experiment": `poolN` (pool of N connections instead of 8), `noping` (no ping before each acquire), `serialize` (writes queued on one FIFO mutex in the caller), `grouped` (batches through a prototype that reads and writes each work order once per batch and inserts the events with one statement; also run on PostgreSQL when configured) |
//! | `BENCH_QUIET_WAIT_S` | 60 | before each scenario, wait up to this long for other processes to leave the CPU idle (0: don't wait) |
//! | `BENCH_HIST` | unset | also print a latency histogram per scenario to stderr |
//! | `FIXLINE_TEST_POSTGRES_URL` | unset | admin URL of a PostgreSQL server; a database `bench_<uuid>` is created and dropped |
//!
//! Run with `cargo bench --bench event_append`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fixline::auth::Role;
use fixline::config::Config;
use fixline::customers::repo::{insert_customer, NewCustomer};
use fixline::customers::Tier;
use fixline::ids::{UserId, WorkOrderId};
use fixline::store::{Backend, Db};
use fixline::work_orders::events::{Actor, ActorRef, Command, Event};
use fixline::work_orders::model::{Channel, Priority};
use fixline::work_orders::repo::{self, NewWorkOrder};
use fixline::work_orders::sla::SlaPolicy;
use tokio::runtime::Runtime;

const MIGRATION: &str = include_str!("../migrations/0001_foundation.sql");

// ---------------------------------------------------------------------------------------
// Knobs

struct Knobs {
    seconds: Duration,
    warmup: Duration,
    writers: Vec<usize>,
    batch: usize,
    per_writer: usize,
    rate: u64,
    open_seconds: u64,
    only: Vec<String>,
    pg_url: Option<String>,
    experiments: Vec<Experiment>,
    quiet_wait: Duration,
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| panic!("{name}: cannot parse `{v}`")),
        _ => default,
    }
}

impl Knobs {
    fn from_env() -> Knobs {
        let writers = env_or("BENCH_WRITERS", "1,16,64".to_string())
            .split(',')
            .map(|s| s.trim().parse::<usize>().expect("BENCH_WRITERS: comma-separated integers"))
            .filter(|&n| n > 0)
            .collect::<Vec<_>>();
        let only = env_or("BENCH_ONLY", "store,rusqlite,api".to_string())
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        Knobs {
            seconds: Duration::from_secs_f64(env_or("BENCH_SECONDS", 3.0)),
            warmup: Duration::from_millis(env_or("BENCH_WARMUP_MS", 300)),
            writers,
            batch: env_or("BENCH_BATCH", 64usize).max(1),
            per_writer: env_or("BENCH_WO_PER_WRITER", 4usize).max(1),
            rate: env_or("BENCH_RATE", 500u64).max(1),
            open_seconds: env_or("BENCH_OPEN_SECONDS", 10u64).max(1),
            only,
            pg_url: std::env::var("FIXLINE_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty()),
            quiet_wait: Duration::from_secs(env_or("BENCH_QUIET_WAIT_S", 60u64)),
            experiments: env_or("BENCH_SQLITE_EXPERIMENTS", String::new())
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| Experiment::parse(s.trim()).unwrap_or_else(|| panic!("BENCH_SQLITE_EXPERIMENTS: unknown `{s}`")))
                .collect(),
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }

    fn max_writers(&self) -> usize {
        self.writers.iter().copied().max().unwrap_or(1)
    }
}

// ---------------------------------------------------------------------------------------
// Measurement

/// What one writer saw during the measured window.
#[derive(Default)]
struct Part {
    ops: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    last: Option<Instant>,
    lat_us: Vec<u64>,
}

impl Part {
    fn record(&mut self, r: Result<u64, String>, t0: Instant, t1: Instant) {
        match r {
            Ok(n) => {
                self.ops += 1;
                self.events += n;
                self.lat_us.push(t1.duration_since(t0).as_micros() as u64);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
        self.last = Some(self.last.map_or(t1, |l| l.max(t1)));
    }
}

/// Merged result of one scenario. Latencies are sorted.
#[derive(Default)]
struct Sample {
    ops: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    lat_us: Vec<u64>,
    /// Cores used by other processes during the scenario.
    other_load: Option<f64>,
}

impl Sample {
    fn from_parts(parts: Vec<Part>, window_start: Instant) -> Sample {
        let mut s = Sample::default();
        let mut last = window_start;
        for p in parts {
            s.ops += p.ops;
            s.events += p.events;
            s.errors += p.errors;
            if s.first_error.is_none() {
                s.first_error = p.first_error;
            }
            if let Some(l) = p.last {
                last = last.max(l);
            }
            s.lat_us.extend(p.lat_us);
        }
        s.lat_us.sort_unstable();
        s.elapsed = last.duration_since(window_start);
        s
    }

    fn per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.events as f64 / secs
        } else {
            0.0
        }
    }

    /// Nearest-rank percentile in milliseconds.
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.lat_us.len() as f64).ceil() as usize;
        self.lat_us[rank.clamp(1, self.lat_us.len()) - 1] as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.lat_us.last().map_or(f64::NAN, |&v| v as f64 / 1000.0)
    }
}

// ---------------------------------------------------------------------------------------
// Other load on the machine (Linux /proc): CPU used by processes other than this one
// and the PostgreSQL server, so a scenario disturbed by a co-tenant is visible.

#[derive(Clone, Copy)]
struct CpuSnap {
    at: Instant,
    other_ticks: i64,
}

fn ticks_of(stat: &str) -> Option<(String, u64)> {
    // pid (comm) state ppid ... utime(14) stime(15)
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn cpu_snap() -> Option<CpuSnap> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).copied().unwrap_or(0);
    let own = ticks_of(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1;
    let mut pg = 0;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some((comm, t)) = std::fs::read_to_string(e.path().join("stat")).ok().as_deref().and_then(ticks_of) {
            if comm == "postgres" {
                pg += t;
            }
        }
    }
    Some(CpuSnap { at: Instant::now(), other_ticks: busy as i64 - own as i64 - pg as i64 })
}

/// Cores' worth of CPU used by others between two snapshots (clock ticks are 1/100 s).
fn other_load(a: Option<CpuSnap>, b: Option<CpuSnap>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let secs = b.at.duration_since(a.at).as_secs_f64();
    (secs > 0.0).then(|| ((b.other_ticks - a.other_ticks).max(0) as f64 / 100.0) / secs)
}

/// Waits (up to `BENCH_QUIET_WAIT_S`) until others have used under 0.15 cores for two
/// consecutive half-second windows, so a scenario does not start in a co-tenant's burst.
fn wait_quiet(k: &Knobs) {
    if k.quiet_wait.is_zero() {
        return;
    }
    let give_up = Instant::now() + k.quiet_wait;
    let mut quiet = 0;
    let mut waited = false;
    while Instant::now() < give_up {
        let a = cpu_snap();
        std::thread::sleep(Duration::from_millis(500));
        match other_load(a, cpu_snap()) {
            None => return,
            Some(l) if l < 0.15 => {
                quiet += 1;
                if quiet >= 2 {
                    return;
                }
            }
            Some(_) => {
                quiet = 0;
                if !waited {
                    eprintln!("bench: other processes are using the CPU; waiting for a quiet moment");
                    waited = true;
                }
            }
        }
    }
    eprintln!("bench: the machine did not become quiet within {:?}; measuring anyway", k.quiet_wait);
}

type OpFut = Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>;
/// One operation of writer `w`, iteration `i`; returns the number of events it appended.
type AsyncOp = Arc<dyn Fn(usize, u64) -> OpFut + Send + Sync>;

/// `writers` tokio tasks each run `op` back to back; only operations started after the
/// warm-up and before the end of the window are measured.
async fn closed_loop(writers: usize, k: &Knobs, op: AsyncOp) -> Sample {
    tokio::task::block_in_place(|| wait_quiet(k));
    let snap = cpu_snap();
    let warm_end = Instant::now() + k.warmup;
    let end = warm_end + k.seconds;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut part = Part::default();
                let mut i = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let r = op(w, i).await;
                    i += 1;
                    if t0 >= warm_end {
                        part.record(r, t0, Instant::now());
                    }
                }
                part
            })
        })
        .collect();
    let mut parts = Vec::with_capacity(writers);
    for h in handles {
        parts.push(h.await.expect("writer task panicked"));
    }
    let mut s = Sample::from_parts(parts, warm_end);
    s.other_load = other_load(snap, cpu_snap());
    s
}

/// The same as [`closed_loop`] with OS threads, for the synchronous rusqlite reference.
fn closed_loop_threads<S: Send>(
    states: Vec<S>,
    k: &Knobs,
    op: impl Fn(&mut S, usize, u64) -> Result<u64, String> + Sync,
) -> Sample {
    wait_quiet(k);
    let snap = cpu_snap();
    let warm_end = Instant::now() + k.warmup;
    let end = warm_end + k.seconds;
    let op = &op;
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(w, mut st)| {
                s.spawn(move || {
                    let mut part = Part::default();
                    let mut i = 0u64;
                    loop {
                        let t0 = Instant::now();
                        if t0 >= end {
                            break;
                        }
                        let r = op(&mut st, w, i);
                        i += 1;
                        if t0 >= warm_end {
                            part.record(r, t0, Instant::now());
                        }
                    }
                    part
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect::<Vec<_>>()
    });
    let mut s = Sample::from_parts(parts, warm_end);
    s.other_load = other_load(snap, cpu_snap());
    s
}

// ---------------------------------------------------------------------------------------
// Result rows

struct Row {
    path: &'static str,
    backend: String,
    mode: String,
    writers: usize,
    batch: usize,
    sample: Sample,
}

impl Row {
    fn print(&self) {
        let s = &self.sample;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
            self.path,
            self.backend,
            self.mode,
            self.writers,
            s.ops,
            s.events,
            s.per_sec(),
            s.pct(50.0),
            s.pct(99.0),
            s.max_ms(),
            s.errors,
            fmt_load(s.other_load)
        );
    }

    fn progress(&self) {
        let s = &self.sample;
        eprintln!(
            "bench: {} {} {} writers={}: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, errors {}, other load {} cores{}",
            self.path,
            self.backend,
            self.mode,
            self.writers,
            s.per_sec(),
            s.pct(50.0),
            s.pct(99.0),
            s.errors,
            fmt_load(s.other_load),
            s.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
        );
        if std::env::var_os("BENCH_HIST").is_some() {
            eprintln!("bench:   latency histogram: {}", histogram(&s.lat_us));
        }
    }
}

fn fmt_load(l: Option<f64>) -> String {
    l.map_or_else(|| "?".into(), |v| format!("{v:.2}"))
}

/// Counts of latencies per bucket (upper bounds in ms), for `BENCH_HIST`.
fn histogram(lat_us: &[u64]) -> String {
    const EDGES_MS: [f64; 9] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, f64::INFINITY];
    let mut counts = [0u64; 9];
    for &v in lat_us {
        let ms = v as f64 / 1000.0;
        let b = EDGES_MS.iter().position(|&e| ms < e).unwrap_or(8);
        counts[b] += 1;
    }
    EDGES_MS.iter().zip(counts).map(|(e, c)| format!("<{e}ms:{c}")).collect::<Vec<_>>().join(" ")
}

fn find<'a>(rows: &'a [Row], path: &str, backend: &str, batch: usize, writers: usize) -> Option<&'a Row> {
    rows.iter().find(|r| r.path == path && r.backend == backend && r.batch == batch && r.writers == writers)
}

struct OpenLoop {
    rate: u64,
    seconds: u64,
    clients_wo: usize,
    sent: u64,
    errors: u64,
    first_error: Option<String>,
    wall: Duration,
    lat_us: Vec<u64>,
    /// How late the timetable thread handed each request over (sorted), in µs.
    lags_us: Vec<u64>,
    other_load: Option<f64>,
}

impl OpenLoop {
    fn pct(&self, p: f64) -> f64 {
        Sample { lat_us: self.lat_us.clone(), ..Default::default() }.pct(p)
    }
}

// ---------------------------------------------------------------------------------------
// fixline store

fn bench_actor() -> Actor {
    Actor { who: ActorRef::User(UserId::new()), role: Some(Role::Dispatcher) }
}

fn temp_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("fixline-bench-{tag}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn sqlite_url(dir: &Path) -> String {
    // Config::effective_database_url() for an empty database_url.
    Config { data_dir: dir.to_path_buf(), ..Config::default() }.effective_database_url()
}

/// A customer and `writers * per_writer` work orders; returns each writer's work orders.
async fn seed_store(db: &Db, k: &Knobs, actor: &Actor, sla: &SlaPolicy) -> Result<Vec<Vec<WorkOrderId>>> {
    let customer = insert_customer(
        db,
        NewCustomer {
            name: "Bench Customer".into(),
            tier: Tier::Standard,
            contact_email: None,
            contact_phone: None,
            locale: "en".into(),
        },
    )
    .await?;
    let n = k.max_writers() * k.per_writer;
    let mut ids = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(16) {
        let futs = chunk.iter().map(|i| {
            repo::create(
                db,
                NewWorkOrder {
                    customer_id: customer.id,
                    asset_id: None,
                    site_id: None,
                    title: format!("bench work order {i}"),
                    description: "Spindle stalls under load; fault E42 on the display.".into(),
                    channel: Channel::Phone,
                    priority: Priority::P3,
                    tier: Tier::Standard,
                    fault_codes: vec!["E42".into()],
                },
                actor,
                sla,
            )
        });
        for r in futures_util::future::join_all(futs).await {
            ids.push(r?.id);
        }
    }
    Ok(ids.chunks(k.per_writer).map(|c| c.to_vec()).collect())
}

/// Variations of the SQLite store set-up, to locate what limits it (not production).
#[derive(Clone, Copy, Debug)]
enum Experiment {
    Pool(u32),
    NoPing,
    Serialize,
    Grouped,
}

impl Experiment {
    fn parse(s: &str) -> Option<Experiment> {
        match s {
            "noping" => Some(Experiment::NoPing),
            "serialize" => Some(Experiment::Serialize),
            "grouped" => Some(Experiment::Grouped),
            _ => s.strip_prefix("pool").and_then(|n| n.parse().ok()).filter(|&n| n > 0).map(Experiment::Pool),
        }
    }

    fn label(self) -> String {
        match self {
            Experiment::Pool(n) => format!("SQLite, pool of {n} (experiment)"),
            Experiment::NoPing => "SQLite, no ping before acquire (experiment)".into(),
            Experiment::Serialize => "SQLite, writes behind one FIFO mutex (experiment)".into(),
            Experiment::Grouped => "SQLite, grouped batch prototype (experiment)".into(),
        }
    }
}

type Gate = Option<Arc<tokio::sync::Mutex<()>>>;

/// Single and batched appends at every concurrency level on one database. With a gate,
/// every commit first takes that (FIFO) mutex.
/// `grouped`: only batches, through [`grouped_batch`] instead of `repo::append_batch`.
async fn store_runs(backend: &str, db: &Db, k: &Knobs, rows: &mut Vec<Row>, gate: Gate, grouped: bool) -> Result<()> {
    let actor = bench_actor();
    let sla = SlaPolicy::default();
    let wos = Arc::new(seed_store(db, k, &actor, &sla).await.context("seeding work orders")?);
    for &writers in k.writers.iter().filter(|_| !grouped) {
        let (db2, wos2, gate2) = (db.clone(), wos.clone(), gate.clone());
        let op: AsyncOp = Arc::new(move |w, i| {
            let (db, gate) = (db2.clone(), gate2.clone());
            let mine = &wos2[w];
            let id = mine[(i as usize) % mine.len()];
            Box::pin(async move {
                let _turn = match &gate {
                    Some(m) => Some(m.lock().await),
                    None => None,
                };
                repo::append(&db, id, Command::AddNote { text: format!("bench note {w}-{i}") }, &actor, &sla)
                    .await
                    .map(|_| 1)
                    .map_err(|e| e.to_string())
            })
        });
        let row = Row {
            path: "fixline store",
            backend: backend.into(),
            mode: "single (`repo::append`)".into(),
            writers,
            batch: 1,
            sample: closed_loop(writers, k, op).await,
        };
        row.progress();
        rows.push(row);
    }
    let batch = k.batch;
    for &writers in &k.writers {
        let (db2, wos2, gate2) = (db.clone(), wos.clone(), gate.clone());
        let op: AsyncOp = Arc::new(move |w, i| {
            let (db, gate) = (db2.clone(), gate2.clone());
            let mine = &wos2[w];
            let items: Vec<(WorkOrderId, Command)> = (0..batch)
                .map(|j| {
                    let id = mine[(i as usize * batch + j) % mine.len()];
                    (id, Command::AddNote { text: format!("bench note {w}-{i}-{j}") })
                })
                .collect();
            Box::pin(async move {
                let _turn = match &gate {
                    Some(m) => Some(m.lock().await),
                    None => None,
                };
                if grouped {
                    grouped_batch(&db, items, &actor, &sla).await.map(|n| n as u64)
                } else {
                    repo::append_batch(&db, items, &actor, &sla).await.map(|n| n as u64).map_err(|e| e.to_string())
                }
            })
        });
        let row = Row {
            path: "fixline store",
            backend: backend.into(),
            mode: if grouped {
                format!("batch of {batch} (grouped prototype)")
            } else {
                format!("batch of {batch} (`repo::append_batch`)")
            },
            writers,
            batch,
            sample: closed_loop(writers, k, op).await,
        };
        row.progress();
        rows.push(row);
    }
    if grouped {
        // The prototype must write what fixline writes: replaying the log of each work
        // order of writer 0 must give its stored projection.
        for &id in &wos[0] {
            let log = repo::all_events(db, id).await?;
            let stored = repo::get(db, id).await?.context("work order vanished")?;
            let replayed = fixline::work_orders::replay(&log).map_err(|e| anyhow!("replay: {e}"))?;
            if replayed != stored {
                return Err(anyhow!("grouped prototype: replay of {id} differs from its projection"));
            }
        }
        eprintln!("bench: grouped prototype: replay matches the projection");
    }
    Ok(())
}

/// Prototype of a cheaper batch (a suggestion for `repo::append_batch`, not fixline
/// code): per work order one `UPDATE … RETURNING *` (row lock and state read in one
/// statement), every command of that work order decided and applied in memory, one
/// projection UPDATE; then all events of the batch in one multi-row INSERT. Same
/// transaction, lock order and all-or-nothing semantics; 2 statements per work order
/// + 1 per batch instead of 4 per event.
async fn grouped_batch(db: &Db, mut items: Vec<(WorkOrderId, Command)>, actor: &Actor, sla: &SlaPolicy) -> Result<usize, String> {
    use fixline::work_orders::events::{self, EventRecord};
    let err = |e: &dyn std::fmt::Display| e.to_string();
    items.sort_by_key(|(id, _)| *id); // stable: keeps each work order's command order
    let n = items.len();
    let now = fixline::now_millis();
    let mut tx = db.pool.begin().await.map_err(|e| err(&e))?;
    let mut records: Vec<EventRecord> = Vec::with_capacity(n);
    let mut it = items.into_iter().peekable();
    while let Some((id, first)) = it.next() {
        let row = sqlx::query("UPDATE work_orders SET version = version WHERE id = $1 RETURNING *")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| err(&e))?
            .ok_or("work order not found")?;
        let mut state = wo_from_row(&row).map_err(|e| err(&e))?;
        let mut cmds = vec![first];
        while let Some((_, c)) = it.next_if(|(next, _)| *next == id) {
            cmds.push(c);
        }
        for cmd in cmds {
            let event = events::decide(&state, cmd, actor, sla).map_err(|e| err(&e))?;
            state = events::apply(state, &event, now);
            records.push(EventRecord { work_order_id: id, seq: state.version, actor: *actor, occurred_at: now, event });
        }
        sqlx::query(
            "UPDATE work_orders SET status = $2, priority = $3, first_response_due = $4, resolution_due = $5, \
             first_response_at = $6, resolved_at = $7, updated_at = $8, version = $9 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(state.status.as_str())
        .bind(state.priority.as_str())
        .bind(state.first_response_due)
        .bind(state.resolution_due)
        .bind(state.first_response_at)
        .bind(state.resolved_at)
        .bind(state.updated_at)
        .bind(state.version)
        .execute(&mut *tx)
        .await
        .map_err(|e| err(&e))?;
    }
    // 7 parameters per row; 64 rows stay far below SQLite's and PostgreSQL's limits.
    for chunk in records.chunks(1000) {
        let mut sql =
            String::from("INSERT INTO work_order_events (work_order_id, seq, kind, actor, actor_role, occurred_at, payload) VALUES ");
        for r in 0..chunk.len() {
            let b = r * 7;
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7));
        }
        let mut q = sqlx::query(&sql);
        for rec in chunk {
            q = q
                .bind(rec.work_order_id.to_string())
                .bind(rec.seq)
                .bind(rec.event.kind())
                .bind(rec.actor.who.to_string())
                .bind(rec.actor.role.map(|r| r.as_str()))
                .bind(rec.occurred_at)
                .bind(serde_json::to_string(&rec.event).expect("events serialize"));
        }
        q.execute(&mut *tx).await.map_err(|e| err(&e))?;
    }
    tx.commit().await.map_err(|e| err(&e))?;
    Ok(n)
}

fn col<T: FromStr>(r: &sqlx::any::AnyRow, c: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    use sqlx::Row;
    let s: String = r.try_get(c)?;
    s.parse().map_err(|e: T::Err| anyhow!("{c} = `{s}`: {e}"))
}

fn col_opt<T: FromStr>(r: &sqlx::any::AnyRow, c: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    use sqlx::Row;
    let s: Option<String> = r.try_get(c)?;
    s.map(|s| s.parse().map_err(|e: T::Err| anyhow!("{c} = `{s}`: {e}"))).transpose()
}

fn wo_from_row(r: &sqlx::any::AnyRow) -> Result<fixline::work_orders::model::WorkOrder> {
    use sqlx::Row;
    let codes: String = r.try_get("fault_codes")?;
    Ok(fixline::work_orders::model::WorkOrder {
        id: col(r, "id")?,
        customer_id: col(r, "customer_id")?,
        asset_id: col_opt(r, "asset_id")?,
        site_id: col_opt(r, "site_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        channel: col(r, "channel")?,
        priority: col(r, "priority")?,
        tier: col(r, "tier")?,
        status: col(r, "status")?,
        fault_codes: serde_json::from_str(&codes)?,
        first_response_due: r.try_get("first_response_due")?,
        resolution_due: r.try_get("resolution_due")?,
        first_response_at: r.try_get("first_response_at")?,
        resolved_at: r.try_get("resolved_at")?,
        created_by: col_opt(r, "created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

/// `exp`: None = the production `Db::open`; otherwise a labelled variation.
async fn store_sqlite(k: &Knobs, rows: &mut Vec<Row>, exp: Option<Experiment>) -> Result<()> {
    let dir = temp_dir("store")?;
    let result = async {
        let url = sqlite_url(&dir);
        let mut gate = None;
        let (db, label) = match exp {
            None => (Db::open(&url).await.context("opening SQLite")?, "SQLite".to_string()),
            Some(e @ Experiment::Pool(n)) => (sqlite_pool(&url, n, true).await.context("opening SQLite")?, e.label()),
            Some(e @ Experiment::NoPing) => (sqlite_pool(&url, 8, false).await.context("opening SQLite")?, e.label()),
            Some(e @ Experiment::Grouped) => (Db::open(&url).await.context("opening SQLite")?, e.label()),
            Some(e @ Experiment::Serialize) => {
                gate = Some(Arc::new(tokio::sync::Mutex::new(())));
                (Db::open(&url).await.context("opening SQLite")?, e.label())
            }
        };
        let r = store_runs(&label, &db, k, rows, gate, matches!(exp, Some(Experiment::Grouped))).await;
        db.close().await;
        r
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// What `Db::connect` builds for SQLite, with another pool size / acquire test.
async fn sqlite_pool(url: &str, max: u32, test_before_acquire: bool) -> Result<Db> {
    use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
    use sqlx::{ConnectOptions, Executor};
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .test_before_acquire(test_before_acquire)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    let db = Db { pool, backend: Backend::Sqlite };
    db.migrate().await?;
    Ok(db)
}

/// `admin_url` with its database replaced by `db`.
fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{db}?{q}"),
        None => format!("{host}/{db}"),
    }
}

async fn store_postgres(admin_url: &str, k: &Knobs, rows: &mut Vec<Row>, grouped: bool) -> Result<()> {
    use sqlx::Connection;
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::postgres::PgConnection::connect(admin_url).await.context("connecting to FIXLINE_TEST_POSTGRES_URL")?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.context("CREATE DATABASE")?;
    eprintln!("bench: PostgreSQL database {name} created");
    let result = async {
        let db = Db::open(&with_database(admin_url, &name)).await.context("opening PostgreSQL")?;
        let label = if grouped { "PostgreSQL, grouped batch prototype (experiment)" } else { "PostgreSQL" };
        let r = store_runs(label, &db, k, rows, None, grouped).await;
        db.close().await;
        r
    }
    .await;
    let dropped = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
    let _ = admin.close().await;
    result?;
    dropped.context("DROP DATABASE")?;
    eprintln!("bench: PostgreSQL database {name} dropped");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// rusqlite reference

fn rq_open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(path)?;
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    c.busy_timeout(Duration::from_millis(5000))?;
    Ok(c)
}

/// The customer and work orders, written directly; returns each writer's work-order ids.
fn rq_seed(c: &rusqlite::Connection, k: &Knobs) -> rusqlite::Result<Vec<Vec<String>>> {
    c.execute_batch(MIGRATION)?;
    let now = fixline::now_millis();
    let customer = uuid::Uuid::now_v7().to_string();
    c.execute(
        "INSERT INTO customers (id, name, tier, locale, created_at) VALUES (?1, 'Bench Customer', 'standard', 'en', ?2)",
        rusqlite::params![customer, now],
    )?;
    let n = k.max_writers() * k.per_writer;
    let mut ids = Vec::with_capacity(n);
    let tx = c.unchecked_transaction()?;
    for i in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        tx.execute(
            "INSERT INTO work_orders (id, customer_id, title, description, channel, priority, tier, status, fault_codes, \
             first_response_due, resolution_due, created_at, updated_at, version) \
             VALUES (?1, ?2, ?3, 'Spindle stalls under load; fault E42 on the display.', 'phone', 'P3', 'standard', 'new', '[\"E42\"]', ?4, ?5, ?6, ?6, 1)",
            rusqlite::params![id, customer, format!("bench work order {i}"), now + 3_600_000, now + 86_400_000, now],
        )?;
        ids.push(id);
    }
    tx.commit()?;
    Ok(ids.chunks(k.per_writer).map(|c| c.to_vec()).collect())
}

/// The four statements fixline runs per event: lock-update, read the row, update the
/// projection, insert the event; with the row decoded and the payload serialized.
fn rq_append_in(c: &rusqlite::Connection, id: &str, text: String, actor: &str, now: i64) -> rusqlite::Result<()> {
    let locked = c.prepare_cached("UPDATE work_orders SET version = version WHERE id = ?1")?.execute([id])?;
    if locked == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    struct State {
        status: String,
        priority: String,
        first_response_due: i64,
        resolution_due: i64,
        first_response_at: Option<i64>,
        resolved_at: Option<i64>,
        version: i64,
    }
    let st = c.prepare_cached("SELECT * FROM work_orders WHERE id = ?1")?.query_row([id], |r| {
        // Decode the whole row, as fixline does.
        let _: (String, String, Option<String>, Option<String>) =
            (r.get("id")?, r.get("customer_id")?, r.get("asset_id")?, r.get("site_id")?);
        let _: (String, String, String, String) = (r.get("title")?, r.get("description")?, r.get("channel")?, r.get("tier")?);
        let codes: String = r.get("fault_codes")?;
        let _codes: Vec<String> = serde_json::from_str(&codes).expect("fault codes are JSON");
        let _: (Option<String>, i64, i64) = (r.get("created_by")?, r.get("created_at")?, r.get("updated_at")?);
        Ok(State {
            status: r.get("status")?,
            priority: r.get("priority")?,
            first_response_due: r.get("first_response_due")?,
            resolution_due: r.get("resolution_due")?,
            first_response_at: r.get("first_response_at")?,
            resolved_at: r.get("resolved_at")?,
            version: r.get("version")?,
        })
    })?;
    let event = Event::NoteAdded { text };
    let payload = serde_json::to_string(&event).expect("events serialize");
    let version = st.version + 1;
    c.prepare_cached(
        "UPDATE work_orders SET status = ?2, priority = ?3, first_response_due = ?4, resolution_due = ?5, \
         first_response_at = ?6, resolved_at = ?7, updated_at = ?8, version = ?9 WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        id,
        st.status,
        st.priority,
        st.first_response_due,
        st.resolution_due,
        st.first_response_at,
        st.resolved_at,
        now,
        version
    ])?;
    c.prepare_cached(
        "INSERT INTO work_order_events (work_order_id, seq, kind, actor, actor_role, occurred_at, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![id, version, event.kind(), actor, "dispatcher", now, payload])?;
    Ok(())
}

/// One transaction of `batch` events (ordered by work-order id, as `append_batch` does).
fn rq_commit(c: &rusqlite::Connection, mine: &[String], w: usize, i: u64, batch: usize, actor: &str) -> rusqlite::Result<u64> {
    let now = fixline::now_millis();
    let mut items: Vec<(&str, String)> = (0..batch)
        .map(|j| (mine[(i as usize * batch + j) % mine.len()].as_str(), format!("bench note {w}-{i}-{j}")))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let tx = c.unchecked_transaction()?; // BEGIN (deferred), like sqlx's begin()
    for (id, text) in items {
        rq_append_in(&tx, id, text, actor, now)?;
    }
    tx.commit()?;
    Ok(batch as u64)
}

enum RqConn {
    Own(rusqlite::Connection),
    Shared(Arc<Mutex<rusqlite::Connection>>),
}

struct RqWriter {
    conn: RqConn,
    mine: Vec<String>,
}

fn rusqlite_runs(k: &Knobs, rows: &mut Vec<Row>) -> Result<()> {
    let dir = temp_dir("rusqlite")?;
    let path = dir.join("reference.db");
    let result = (|| -> Result<()> {
        let seed_conn = rq_open(&path)?;
        let wos = rq_seed(&seed_conn, k)?;
        let shared = Arc::new(Mutex::new(seed_conn));
        let actor = format!("user:{}", UserId::new());
        for batch in [1, k.batch] {
            for &writers in &k.writers {
                // One connection shared behind a mutex: a serialized writer, the usual
                // way to drive SQLite; the mutex wait counts in the latency.
                let states = (0..writers)
                    .map(|w| RqWriter { conn: RqConn::Shared(shared.clone()), mine: wos[w].clone() })
                    .collect();
                let sample = closed_loop_threads(states, k, |st: &mut RqWriter, w, i| {
                    let RqConn::Shared(m) = &st.conn else { unreachable!() };
                    let c = m.lock().unwrap_or_else(|e| e.into_inner());
                    rq_commit(&c, &st.mine, w, i, batch, &actor).map_err(|e| e.to_string())
                });
                let row = Row {
                    path: "rusqlite",
                    backend: "SQLite".into(),
                    mode: if batch == 1 { "single, one shared connection".into() } else { format!("batch of {batch}, one shared connection") },
                    writers,
                    batch,
                    sample,
                };
                row.progress();
                rows.push(row);
            }
            for &writers in k.writers.iter().filter(|&&w| w > 1) {
                // A connection per writer thread, contending through busy_timeout: how
                // fixline's pool of SQLite connections behaves, minus sqlx.
                let states = (0..writers)
                    .map(|w| Ok(RqWriter { conn: RqConn::Own(rq_open(&path)?), mine: wos[w].clone() }))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let sample = closed_loop_threads(states, k, |st: &mut RqWriter, w, i| {
                    let RqConn::Own(c) = &st.conn else { unreachable!() };
                    rq_commit(c, &st.mine, w, i, batch, &actor).map_err(|e| e.to_string())
                });
                let row = Row {
                    path: "rusqlite",
                    backend: "SQLite".into(),
                    mode: if batch == 1 {
                        "single, connection per writer".into()
                    } else {
                        format!("batch of {batch}, connection per writer")
                    },
                    writers,
                    batch,
                    sample,
                };
                row.progress();
                rows.push(row);
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

// ---------------------------------------------------------------------------------------
// HTTP API

/// Defaults, with listen 127.0.0.1:0, a fresh data directory, no login throttling, and
/// model-based diagnosis off (it is not on the note path, and loading models would only
/// add start-up time and memory). The configuration is loaded the way the server loads
/// it, from (explicit, not process) environment pairs; a build without the `diagnosis`
/// section is retried without that key.
#[allow(clippy::needless_update)] // Overrides may grow fields
fn api_config(dir: &Path) -> Result<Config> {
    use fixline::config::Overrides;
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.to_path_buf()),
        database_url: Some(String::new()),
        demo_data: Some(false),
        ..Default::default()
    };
    let env = |diagnosis: bool| {
        let mut v = vec![("FIXLINE_AUTH__LOGIN_ATTEMPTS_PER_MINUTE".to_string(), "1000000".to_string())];
        if diagnosis {
            v.push(("FIXLINE_DIAGNOSIS__ENABLED".into(), "false".into()));
        }
        v
    };
    Config::load(None, env(true), &overrides)
        .or_else(|_| Config::load(None, env(false), &overrides))
        .context("building the server configuration")
}

async fn post_json(client: &reqwest::Client, url: &str, token: Option<&str>, body: serde_json::Value) -> Result<serde_json::Value> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Err(anyhow!("POST {url}: HTTP {status}: {text}"));
    }
    Ok(serde_json::from_str(&text)?)
}

fn api_runs(srv: &Runtime, cli: &Runtime, k: &Knobs, rows: &mut Vec<Row>) -> Result<Option<OpenLoop>> {
    let dir = temp_dir("api")?;
    let config = api_config(&dir)?;
    let running = srv.block_on(fixline::app::start(config)).context("starting the server")?;
    eprintln!("bench: API server on {}", running.addr);
    let admin = running.bootstrap.admin.clone();
    let base = format!("http://{}/api/v1", running.addr);
    let result = (|| -> Result<Option<OpenLoop>> {
        let (user, pw) = admin.context("no bootstrap admin was created")?;
        let client = reqwest::Client::builder().no_proxy().tcp_nodelay(true).pool_max_idle_per_host(4096).build()?;
        let n_wo = k.max_writers();
        let (token, urls) = cli.block_on(async {
            let login = post_json(&client, &format!("{base}/auth/login"), None, serde_json::json!({"username": user, "password": pw})).await?;
            let token = login["access_token"].as_str().context("login answered no access_token")?.to_owned();
            let customer = post_json(
                &client,
                &format!("{base}/customers"),
                Some(&token),
                serde_json::json!({"name": "Bench Customer", "tier": "standard"}),
            )
            .await?;
            let cid = customer["id"].as_str().context("customer without id")?.to_owned();
            let mut urls = Vec::with_capacity(n_wo);
            for i in 0..n_wo {
                let wo = post_json(
                    &client,
                    &format!("{base}/work-orders"),
                    Some(&token),
                    serde_json::json!({"customer_id": cid, "title": format!("bench work order {i}")}),
                )
                .await?;
                let id = wo["id"].as_str().context("work order without id")?;
                urls.push(format!("{base}/work-orders/{id}/notes"));
            }
            anyhow::Ok((token, urls))
        })?;
        let auth = Arc::new(format!("Bearer {token}"));
        let urls = Arc::new(urls);
        let op: AsyncOp = {
            let (client, auth, urls) = (client.clone(), auth.clone(), urls.clone());
            Arc::new(move |w, i| {
                let client = client.clone();
                let url = urls[w % urls.len()].clone();
                let auth = auth.clone();
                Box::pin(async move {
                    let resp = client
                        .post(url)
                        .header(reqwest::header::AUTHORIZATION, auth.as_str())
                        .json(&serde_json::json!({"text": format!("api note {w}-{i}")}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = resp.status();
                    resp.bytes().await.map_err(|e| e.to_string())?;
                    if status == reqwest::StatusCode::CREATED {
                        Ok(1)
                    } else {
                        Err(format!("HTTP {status}"))
                    }
                })
            })
        };
        for &clients in &k.writers {
            let sample = cli.block_on(closed_loop(clients, k, op.clone()));
            let row = Row {
                path: "HTTP API",
                backend: "SQLite".into(),
                mode: "closed loop, POST /work-orders/{id}/notes".into(),
                writers: clients,
                batch: 1,
                sample,
            };
            row.progress();
            rows.push(row);
        }
        Ok(Some(open_loop(cli, k, op, urls.len())))
    })();
    srv.block_on(running.stop()).context("stopping the server")?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Sends `rate` requests per second on a fixed timetable for `open_seconds`, regardless of
/// how fast answers come back. A dedicated thread keeps the timetable (thread sleep, not
/// the 1 ms tokio timer) and hands each request to the client runtime; latency runs from
/// the scheduled send time, so a late send counts against the server.
fn open_loop(cli: &Runtime, k: &Knobs, op: AsyncOp, n_wo: usize) -> OpenLoop {
    wait_quiet(k);
    let snap = cpu_snap();
    let n = k.rate * k.open_seconds;
    let interval = Duration::from_secs_f64(1.0 / k.rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let mut handles = Vec::with_capacity(n as usize);
    let mut lags_us = Vec::with_capacity(n as usize);
    for i in 0..n {
        let scheduled = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        lags_us.push(Instant::now().saturating_duration_since(scheduled).as_micros() as u64);
        let op = op.clone();
        handles.push(cli.spawn(async move {
            let r = op((i as usize) % n_wo, i).await;
            let done = Instant::now();
            (r, done.saturating_duration_since(scheduled), done)
        }));
    }
    let results = cli.block_on(async {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("request task panicked"));
        }
        out
    });
    let mut o = OpenLoop {
        rate: k.rate,
        seconds: k.open_seconds,
        clients_wo: n_wo,
        sent: n,
        errors: 0,
        first_error: None,
        wall: Duration::ZERO,
        lat_us: Vec::with_capacity(n as usize),
        lags_us: {
            lags_us.sort_unstable();
            lags_us
        },
        other_load: None,
    };
    let mut last = start;
    for (r, lat, done) in results {
        last = last.max(done);
        match r {
            Ok(_) => o.lat_us.push(lat.as_micros() as u64),
            Err(e) => {
                o.errors += 1;
                o.first_error.get_or_insert(e);
            }
        }
    }
    o.lat_us.sort_unstable();
    o.wall = last.duration_since(start);
    o.other_load = other_load(snap, cpu_snap());
    eprintln!(
        "bench: HTTP API open loop {} req/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}, other load {} cores{}",
        o.rate,
        o.pct(50.0),
        o.pct(99.0),
        o.lat_us.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
        o.errors,
        fmt_load(o.other_load),
        o.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
    );
    o
}

// ---------------------------------------------------------------------------------------
// Report

fn report(k: &Knobs, rows: &[Row], open: Option<&OpenLoop>) {
    println!();
    println!("## Event appends: closed loop");
    println!();
    println!(
        "Each writer (tokio task, or OS thread for rusqlite) appends `note_added` events back to back for {:.1} s after a {} ms warm-up. \
         Latency is per commit: one event for single appends, one whole batch for batches. \
         *other load*: CPU cores used meanwhile by processes other than this one and PostgreSQL.",
        k.seconds.as_secs_f64(),
        k.warmup.as_millis()
    );
    println!();
    println!("| path | backend | mode | writers | commits | events | events/s | p50 ms | p99 ms | max ms | errors | other load |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        r.print();
    }
    let errs: Vec<_> = rows.iter().filter_map(|r| r.sample.first_error.as_ref().map(|e| (r, e))).collect();
    if !errs.is_empty() {
        println!();
        for (r, e) in errs {
            println!("* first error, {} {} {} writers={}: `{}`", r.path, r.backend, r.mode, r.writers, e);
        }
    }

    let have_ref = rows.iter().any(|r| r.path == "rusqlite");
    let have_store = rows.iter().any(|r| r.path == "fixline store" && r.backend == "SQLite");
    if have_ref && have_store {
        println!();
        println!("## fixline store vs rusqlite (SQLite, events/s)");
        println!();
        println!("| commit | writers | fixline | rusqlite, shared connection | ratio | rusqlite, connection per writer | ratio |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for batch in [1, k.batch] {
            for &w in &k.writers {
                let Some(f) = find(rows, "fixline store", "SQLite", batch, w) else { continue };
                let shared = rows
                    .iter()
                    .find(|r| r.path == "rusqlite" && r.batch == batch && r.writers == w && r.mode.contains("shared"));
                let own = rows
                    .iter()
                    .find(|r| r.path == "rusqlite" && r.batch == batch && r.writers == w && r.mode.contains("per writer"));
                let fe = f.sample.per_sec();
                let cell = |r: Option<&Row>| match r {
                    Some(r) => (format!("{:.0}", r.sample.per_sec()), format!("{:.2}", fe / r.sample.per_sec())),
                    None => ("–".into(), "–".into()),
                };
                let (s, sr) = cell(shared);
                let (o, or) = cell(own);
                let label = if batch == 1 { "single".to_string() } else { format!("batch of {batch}") };
                println!("| {label} | {w} | {fe:.0} | {s} | {sr} | {o} | {or} |");
            }
        }
        println!();
        println!("ratio = fixline events/s ÷ rusqlite events/s (1.00 = as fast as plain rusqlite).");
    }

    if let Some(o) = open {
        println!();
        println!("## HTTP API: open loop");
        println!();
        println!(
            "`POST /api/v1/work-orders/{{id}}/notes` sent on a fixed timetable (round robin over {} work orders); \
             latency from the scheduled send time to the full response. *send lag*: how late the timetable thread \
             handed a request to the client (it shares the cores with the server); it is part of the latency.",
            o.clients_wo
        );
        println!();
        println!("| target req/s | seconds | sent | ok | errors | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | send lag p99 ms | send lag max ms | other load |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let lag = Sample { lat_us: o.lags_us.clone(), ..Default::default() };
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            o.rate,
            o.seconds,
            o.sent,
            o.lat_us.len(),
            o.errors,
            o.lat_us.len() as f64 / o.wall.as_secs_f64().max(1e-9),
            o.pct(50.0),
            o.pct(90.0),
            o.pct(99.0),
            o.pct(99.9),
            o.lat_us.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
            lag.pct(99.0),
            lag.max_ms(),
            fmt_load(o.other_load)
        );
        if let Some(e) = &o.first_error {
            println!();
            println!("* first error: `{e}`");
        }
    }

    println!();
    println!("## Targets");
    println!();
    let best_batched = rows
        .iter()
        .filter(|r| r.path == "fixline store" && r.backend == "SQLite" && r.batch > 1)
        .max_by(|a, b| a.sample.per_sec().total_cmp(&b.sample.per_sec()));
    match best_batched {
        Some(r) => {
            let v = r.sample.per_sec();
            println!(
                "* SQLite store, batched commits ≥ 20,000 events/s: best {:.0} events/s ({} writers) — {}",
                v,
                r.writers,
                if v >= 20_000.0 { "met" } else { "NOT met" }
            );
        }
        None => println!("* SQLite store, batched commits ≥ 20,000 events/s: not measured"),
    }
    match open {
        Some(o) => {
            let p99 = o.pct(99.0);
            println!(
                "* HTTP API single append at {} req/s, p99 < 5 ms: p99 {:.2} ms — {}",
                o.rate,
                p99,
                if p99 < 5.0 && o.errors == 0 { "met" } else { "NOT met" }
            );
        }
        None => println!("* HTTP API p99 < 5 ms at 500 req/s: not measured"),
    }
}

// ---------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let k = Knobs::from_env();
    // `cargo bench` passes `--bench`; nothing else to parse.
    let srv = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("bench-server").build()?;
    let mut rows = Vec::new();
    let mut open = None;

    if k.runs("store") {
        eprintln!("bench: fixline store on SQLite");
        srv.block_on(store_sqlite(&k, &mut rows, None))?;
        for &e in &k.experiments {
            eprintln!("bench: fixline store, {}", e.label());
            srv.block_on(store_sqlite(&k, &mut rows, Some(e)))?;
        }
    }
    if k.runs("rusqlite") {
        eprintln!("bench: rusqlite reference");
        rusqlite_runs(&k, &mut rows)?;
    }
    if k.runs("store") {
        match &k.pg_url {
            Some(url) => {
                eprintln!("bench: fixline store on PostgreSQL");
                srv.block_on(store_postgres(url, &k, &mut rows, false))?;
                if k.experiments.iter().any(|e| matches!(e, Experiment::Grouped)) {
                    eprintln!("bench: fixline store on PostgreSQL, grouped batch prototype (experiment)");
                    srv.block_on(store_postgres(url, &k, &mut rows, true))?;
                }
            }
            None => eprintln!("bench: FIXLINE_TEST_POSTGRES_URL not set; PostgreSQL skipped"),
        }
    }
    if k.runs("api") {
        eprintln!("bench: HTTP API");
        // The load generator gets its own one-thread runtime so its queueing does not mix
        // with the server's; both still share the machine's cores.
        let cli = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("bench-client")
            .build()?;
        open = api_runs(&srv, &cli, &k, &mut rows)?;
        cli.shutdown_timeout(Duration::from_secs(5));
    }
    srv.shutdown_timeout(Duration::from_secs(5));
    report(&k, &rows, open.as_ref());
    Ok(())
}
