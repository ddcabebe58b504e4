//! The delivery worker: one tokio task, started by the composition root next to the SLA
//! timers, stopped by the same watch channel.
//!
//! Every `poll_interval_ms` it
//!
//! 1. **scans** `work_order_events` for events since its cursor and queues a pending
//!    delivery for each active endpoint whose filter matches and whose `active_since`
//!    is not after the event. The cursor lives in memory and starts at "now - overlap"
//!    when the process starts: events from before the start (beyond the overlap) are
//!    not replayed. Each scan re-reads the last [`OVERLAP_MS`] of events, because an
//!    event's `occurred_at` is taken before its transaction commits, so commits land
//!    out of `occurred_at` order; the `UNIQUE (endpoint_id, work_order_id, seq)`
//!    constraint, and an in-memory set of events already handled in that window, make
//!    the re-read harmless. An event that commits more than [`OVERLAP_MS`] after its
//!    `occurred_at` would be missed (appends are single short transactions; HTTP
//!    requests time out after 30 s by default).
//! 2. **sends** due deliveries, at most `max_concurrency` at once. Each attempt first
//!    claims its delivery (a conditional UPDATE that counts the attempt and leases it
//!    until the timeout has surely passed), so several fixline processes on one
//!    PostgreSQL database never send the same attempt twice. When an attempt finishes
//!    the worker refills at once, so a work order's next event (which waited for this
//!    one) goes out without waiting for the next tick.
//!
//! Every loop is bounded: a scan reads at most [`MAX_PAGES`] pages of [`PAGE`] events
//! (a backlog continues on the next tick from where it stopped) and the sender never
//! holds more than `max_concurrency` requests. On the stop signal the worker returns at
//! once; attempts in flight are dropped and, their lease over, retried by the next start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::repo::{self, Due, EventKey, Target};
use super::sender::Sender;
use super::signing::{self, Attempt, Next, Secret};
use super::{filter_matches, WebhookConfig};
use crate::store::{Db, StoreError};
use crate::UnixMillis;

/// How far back each scan re-reads events (late commits).
pub const OVERLAP_MS: i64 = 60_000;
/// Events per scan query.
pub const PAGE: i64 = 500;
/// Scan queries per tick.
pub const MAX_PAGES: usize = 20;
/// Margin added to the request timeout for an attempt's lease.
const LEASE_MARGIN_MS: i64 = 30_000;
/// Delivered and failed deliveries are kept this long in the log.
pub const RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// How often old log entries are pruned.
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// Longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

/// The scan cursor and the events of the overlap window already handled.
#[derive(Debug)]
pub struct Scanner {
    /// The latest `occurred_at` scanned.
    high_water: UnixMillis,
    /// Where a scan cut short by [`MAX_PAGES`] continues.
    resume: Option<EventKey>,
    /// Events handled, with their `occurred_at`, pruned below the window.
    seen: HashMap<(String, i64), UnixMillis>,
    /// The active endpoints of the last scan: when they change, the window is
    /// re-evaluated (an endpoint created a moment before an event it has not seen).
    targets: Vec<Target>,
}

impl Scanner {
    /// A scanner whose first scan starts `OVERLAP_MS` before `now`.
    pub fn new(now: UnixMillis) -> Scanner {
        Scanner { high_water: now, resume: None, seen: HashMap::new(), targets: Vec::new() }
    }

    /// Queues deliveries for new events; returns how many were queued.
    pub async fn scan(&mut self, db: &Db, now: UnixMillis) -> Result<usize, StoreError> {
        let targets = repo::active_targets(db).await?;
        if targets != self.targets {
            self.seen.clear();
            self.targets = targets;
        }
        if self.targets.is_empty() {
            // Nobody to deliver to. A new endpoint only takes events from its creation
            // on, which the overlap re-read covers.
            self.high_water = self.high_water.max(now);
            self.resume = None;
            self.seen.clear();
            return Ok(0);
        }
        let floor = self.high_water - OVERLAP_MS;
        self.seen.retain(|_, at| *at >= floor);
        let mut queued = 0;
        let mut pos = self.resume.take();
        for _ in 0..MAX_PAGES {
            let events = repo::events_since(db, floor, pos.as_ref(), PAGE).await?;
            let fresh: Vec<_> = events.iter().filter(|ev| !self.seen.contains_key(&(ev.key.work_order_id.clone(), ev.key.seq))).collect();
            let wanted: Vec<_> = fresh
                .iter()
                .flat_map(|ev| {
                    self.targets
                        .iter()
                        .filter(|t| t.active_since <= ev.key.occurred_at && filter_matches(&t.event_kinds, &ev.kind))
                        .map(move |t| (t.id, *ev))
                })
                .collect();
            if !wanted.is_empty() {
                let mut tx = db.pool.begin().await?;
                for (endpoint, ev) in wanted {
                    if repo::enqueue(&mut tx, endpoint, ev, now).await? {
                        queued += 1;
                    }
                }
                tx.commit().await?;
            }
            // Only once committed: a failed page is read again on the next tick.
            self.seen.extend(fresh.iter().map(|ev| ((ev.key.work_order_id.clone(), ev.key.seq), ev.key.occurred_at)));
            if let Some(last) = events.last() {
                self.high_water = self.high_water.max(last.key.occurred_at);
                pos = Some(last.key.clone());
            }
            if (events.len() as i64) < PAGE {
                return Ok(queued);
            }
        }
        // Cut short: the next tick continues here instead of re-reading the window.
        self.resume = pos;
        Ok(queued)
    }
}

/// Runs until `stop` turns true (or its sender is dropped).
pub async fn run(db: Db, cfg: WebhookConfig, mut stop: watch::Receiver<bool>) {
    if !cfg.enabled {
        return;
    }
    let sender = Arc::new(Sender::new(&cfg.ca_file, Duration::from_secs(cfg.timeout_secs)));
    if let Some(problem) = sender.tls_problem() {
        tracing::warn!(problem, "webhooks: https endpoints cannot be reached");
    }
    let cfg = Arc::new(cfg);
    let mut scanner = Scanner::new(crate::now_millis());
    let mut every = tokio::time::interval(Duration::from_millis(cfg.poll_interval_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut pruned_at = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = every.tick() => {
                let now = crate::now_millis();
                match scanner.scan(&db, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(queued = n, "webhooks: deliveries queued"),
                    Err(e) => tracing::warn!(error = %e, "webhooks: event scan failed; retrying next tick"),
                }
                if now - pruned_at >= PRUNE_EVERY_MS {
                    pruned_at = now;
                    if let Err(e) = repo::prune(&db, now - RETENTION_MS).await {
                        tracing::warn!(error = %e, "webhooks: pruning the delivery log failed");
                    }
                }
            }
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "webhooks: a delivery attempt task failed");
                }
            }
        }
        if let Err(e) = refill(&db, &sender, &cfg, &mut inflight).await {
            tracing::warn!(error = %e, "webhooks: reading due deliveries failed; retrying next tick");
        }
    }
    inflight.abort_all();
}

/// Starts attempts for due deliveries while there is room.
async fn refill(db: &Db, sender: &Arc<Sender>, cfg: &Arc<WebhookConfig>, inflight: &mut JoinSet<()>) -> Result<(), StoreError> {
    let free = cfg.max_concurrency.saturating_sub(inflight.len());
    if free == 0 {
        return Ok(());
    }
    let now = crate::now_millis();
    let lease_until = now + cfg.timeout_secs as i64 * 1000 + LEASE_MARGIN_MS;
    for d in repo::due(db, now, free as i64).await? {
        if repo::claim(db, &d, now, lease_until).await? {
            inflight.spawn(attempt(db.clone(), sender.clone(), cfg.clone(), d));
        }
    }
    Ok(())
}

/// The `webhook-id` and body of a due delivery.
fn message(d: &Due) -> Result<(String, Vec<u8>), String> {
    match (d.work_order_id, d.seq) {
        (Some(wo), Some(seq)) => {
            let (Some(actor), Some(occurred_at), Some(payload)) = (&d.actor, d.occurred_at, &d.payload) else {
                return Err("the event is missing from the work-order log".into());
            };
            let facts = signing::EventFacts { work_order_id: wo, seq, kind: &d.kind, actor, occurred_at, payload };
            let body = signing::event_body(&facts).map_err(|e| format!("the stored event does not parse: {e}"))?;
            Ok((signing::message_id(wo, seq), body))
        }
        _ => Ok((signing::ping_message_id(d.id), signing::ping_body(d.endpoint_id, d.id, d.created_at))),
    }
}

/// One attempt of one claimed delivery, and its outcome recorded.
async fn attempt(db: Db, sender: Arc<Sender>, cfg: Arc<WebhookConfig>, d: Due) {
    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    let prepared = message(&d).and_then(|(id, body)| {
        let secret = Secret::parse(&d.secret).map_err(|e| format!("the stored secret is unusable: {e}"))?;
        Ok((id, body, secret))
    });
    let (next, code, error) = match prepared {
        // Nothing a retry could fix.
        Err(e) => (Next::Failed, None, Some(e)),
        Ok((msg_id, body, secret)) => {
            let timestamp = crate::now_millis() / 1000;
            let signature = secret.sign(&msg_id, timestamp, &body);
            let result = sender.post(&d.url, &msg_id, timestamp, &signature, body).await;
            let next = signing::after_attempt(&result, attempts, cfg.max_attempts, &cfg.retry_backoff_ms, crate::now_millis(), rand::random());
            match result {
                Attempt::Answered { status, .. } if next == Next::Delivered => (next, Some(status), None),
                Attempt::Answered { status, .. } => {
                    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
                    (next, Some(status), Some(format!("HTTP {status} {reason}").trim_end().to_owned()))
                }
                Attempt::Failed(e) => (next, None, Some(e)),
            }
        }
    };
    let error = error.map(|e| signing::truncate_error(&e, MAX_ERROR_CHARS));
    if let Err(e) = repo::record(&db, d.id, &next, code, error.as_deref(), crate::now_millis()).await {
        // The lease runs out and the attempt is repeated: at least once, not at most.
        tracing::warn!(delivery = %d.id, error = %e, "webhooks: recording an attempt failed");
    }
    match next {
        Next::Delivered => tracing::debug!(endpoint = %d.endpoint_id, delivery = %d.id, attempts, "webhook delivered"),
        Next::Retry { .. } => tracing::info!(endpoint = %d.endpoint_id, delivery = %d.id, attempts, error = error.as_deref().unwrap_or(""), "webhook attempt failed; will retry"),
        Next::Failed => tracing::warn!(endpoint = %d.endpoint_id, delivery = %d.id, attempts, error = error.as_deref().unwrap_or(""), "webhook delivery failed for good"),
        Next::Gone => {
            tracing::warn!(endpoint = %d.endpoint_id, "webhook endpoint answered 410 Gone: deactivated");
            if let Err(e) = repo::deactivate(&db, d.endpoint_id).await {
                tracing::warn!(endpoint = %d.endpoint_id, error = %e, "webhooks: deactivating an endpoint failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use crate::webhooks::repo::NewEndpoint;
    use crate::webhooks::{EndpointId, EndpointUrl};
    use crate::work_orders::events::Actor;
    use crate::work_orders::model::{Channel, Priority, Tier};
    use crate::work_orders::repo::NewWorkOrder;
    use crate::work_orders::sla::SlaPolicy;

    async fn endpoint(db: &Db, kinds: &[&str]) -> repo::Endpoint {
        let new = NewEndpoint {
            url: EndpointUrl::parse("http://127.0.0.1:9/hook").unwrap(),
            description: String::new(),
            event_kinds: kinds.iter().map(|k| k.to_string()).collect(),
        };
        repo::create(db, new, &Secret::generate(), None).await.unwrap().unwrap()
    }

    async fn late_event(db: &Db, wo: &str, seq: i64, occurred_at: UnixMillis) {
        sqlx::query("INSERT INTO work_order_events (work_order_id, seq, kind, actor, actor_role, occurred_at, payload) VALUES ($1, $2, 'note_added', 'system', NULL, $3, $4)")
            .bind(wo)
            .bind(seq)
            .bind(occurred_at)
            .bind(r#"{"kind":"note_added","text":"late"}"#)
            .execute(&db.pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn late_commits_inside_the_overlap_are_queued_once_filters_apply_and_order_holds() {
        let dir = std::env::temp_dir().join(format!("fixline-webhooks-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display())).await.unwrap();
        let now = crate::now_millis();
        let customer = CustomerId::new();
        sqlx::query("INSERT INTO customers (id, name, tier, created_at) VALUES ($1, 'C', 'key', $2)").bind(customer.to_string()).bind(now).execute(&db.pool).await.unwrap();
        let all = endpoint(&db, &[]).await;
        let notes = endpoint(&db, &["note_added"]).await;
        sqlx::query("UPDATE webhook_endpoints SET active_since = $1").bind(now - 600_000).execute(&db.pool).await.unwrap();
        let new = NewWorkOrder {
            customer_id: customer,
            asset_id: None,
            site_id: None,
            title: "t".into(),
            description: String::new(),
            channel: Channel::Portal,
            priority: Priority::P3,
            tier: Tier::Key,
            fault_codes: vec![],
        };
        let wo = crate::work_orders::repo::create(&db, new, &Actor::SYSTEM, &SlaPolicy::default()).await.unwrap();
        let wo_id = wo.id.to_string();

        let mut scanner = Scanner::new(now);
        assert_eq!(scanner.scan(&db, now).await.unwrap(), 1, "`created` to the unfiltered endpoint only");
        assert_eq!(scanner.scan(&db, now).await.unwrap(), 0, "re-reading the window queues nothing twice");
        // Commits that land after the scanner moved on: 30 s late (inside the overlap)
        // is caught; 2 min late (outside) is the documented limit.
        late_event(&db, &wo_id, 2, now - 30_000).await;
        late_event(&db, &wo_id, 3, now - 120_000).await;
        assert_eq!(scanner.scan(&db, now).await.unwrap(), 2, "seq 2 to both endpoints");
        // A restart re-reads the window: the UNIQUE constraint dedupes.
        assert_eq!(Scanner::new(now).scan(&db, now).await.unwrap(), 0);

        // Per endpoint and work order, only the oldest pending delivery is due.
        let due = repo::due(&db, crate::now_millis() + 1, 10).await.unwrap();
        let mut got: Vec<(EndpointId, i64)> = due.iter().map(|d| (d.endpoint_id, d.seq.unwrap())).collect();
        got.sort();
        let mut want = vec![(all.id, 1), (notes.id, 2)];
        want.sort();
        assert_eq!(got, want);
        // A claim is taken once.
        let d = due.iter().find(|d| d.endpoint_id == all.id).unwrap();
        let t = crate::now_millis();
        assert!(repo::claim(&db, d, t, t + 60_000).await.unwrap());
        assert!(!repo::claim(&db, d, t, t + 60_000).await.unwrap());
        // While seq 1 is in flight (still pending), seq 2 waits.
        let due = repo::due(&db, t + 1, 10).await.unwrap();
        assert!(due.iter().all(|d| d.endpoint_id != all.id));
        repo::record(&db, d.id, &Next::Delivered, Some(204), None, t).await.unwrap();
        let due = repo::due(&db, t + 1, 10).await.unwrap();
        assert!(due.iter().any(|d| d.endpoint_id == all.id && d.seq == Some(2)));
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
