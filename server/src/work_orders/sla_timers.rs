//! SLA timers: a warning event before a deadline and a breach event when it passes.
//!
//! Two clocks per work order, both from [`super::sla`]: first response (stops at the
//! first staff response) and resolution (stops when resolved; closed and cancelled work
//! orders have no running clock). A clock *warns* once `warn_at_percent` of its window
//! (creation to deadline) has elapsed and *breaches* at the deadline. Each (work order,
//! clock, level) fires once: `sla_marks` remembers what fired, and the mark and the
//! `sla_warning` / `sla_breached` event commit in one transaction, so a crash between
//! ticks neither loses nor repeats an event. A clock that is already past its deadline
//! when first seen fires only the breach.
//!
//! Breached work orders rise to the top of the queues without extra state: the expert
//! queue and the dispatcher board order by resolution deadline, and a breached deadline
//! is earlier than every running one. The API's `sla_breached` flag and the `breached`
//! list filter are computed at read time.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::events::{Actor, Command, Event};
use super::repo::{self, AppendError};
use super::sla::SlaPolicy;
use crate::ids::WorkOrderId;
use crate::store::{Db, StoreError};
use crate::UnixMillis;

/// The `[sla_timers]` config section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlaTimerConfig {
    /// How often the timers are checked, in seconds (0 turns them off).
    pub interval_secs: u64,
    /// Warn once this share of a clock's window has elapsed (1-99).
    pub warn_at_percent: i64,
}

impl Default for SlaTimerConfig {
    fn default() -> Self {
        SlaTimerConfig { interval_secs: 30, warn_at_percent: 80 }
    }
}

/// Which clock and which level fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    pub clock: &'static str,
    pub breached: bool,
}

/// Checks every running clock once at `now`; returns the events written.
pub async fn tick(db: &Db, sla: &SlaPolicy, now: UnixMillis, warn_at_percent: i64) -> Result<Vec<(WorkOrderId, Fired)>, StoreError> {
    // Only clocks that are due and whose current level has not fired yet.
    let due = |clock: &str, due_col: &str, stop_col: &str| {
        format!(
            "({stop_col} IS NULL AND created_at + ({due_col} - created_at) * $2 / 100 <= $1 AND NOT EXISTS (SELECT 1 FROM sla_marks m \
             WHERE m.work_order_id = w.id AND m.clock = '{clock}' AND m.level = CASE WHEN {due_col} <= $1 THEN 'breached' ELSE 'warning' END))"
        )
    };
    let sql = format!(
        "SELECT id, created_at, first_response_due, resolution_due, first_response_at, resolved_at FROM work_orders w \
         WHERE status NOT IN ('closed', 'cancelled') AND ({} OR {}) ORDER BY resolution_due, id LIMIT 500",
        due("first_response", "first_response_due", "first_response_at"),
        due("resolution", "resolution_due", "resolved_at"),
    );
    let rows = sqlx::query(&sql).bind(now).bind(warn_at_percent).fetch_all(&db.pool).await?;
    let mut fired = Vec::new();
    for r in rows {
        let id: WorkOrderId = crate::auth::repo::parse(&r, "id")?;
        let created: i64 = r.try_get("created_at")?;
        for (clock, due_col, stop_col) in [("first_response", "first_response_due", "first_response_at"), ("resolution", "resolution_due", "resolved_at")] {
            let stopped: Option<i64> = r.try_get(stop_col)?;
            let due: i64 = r.try_get(due_col)?;
            if stopped.is_some() || created + (due - created) * warn_at_percent / 100 > now {
                continue;
            }
            let breached = due <= now;
            match fire(db, sla, id, clock, due, breached).await {
                Ok(true) => fired.push((id, Fired { clock, breached })),
                Ok(false) => {}
                // The work order changed under us (closed meanwhile): next tick decides.
                Err(AppendError::Decide(_)) | Err(AppendError::NotFound) => {}
                Err(AppendError::Store(e)) => return Err(e),
            }
        }
    }
    Ok(fired)
}

/// Marks and records one level of one clock; false when it had already fired.
async fn fire(db: &Db, sla: &SlaPolicy, id: WorkOrderId, clock: &'static str, due: UnixMillis, breached: bool) -> Result<bool, AppendError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let level = if breached { "breached" } else { "warning" };
    let inserted = sqlx::query("INSERT INTO sla_marks (work_order_id, clock, level, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(id.to_string())
        .bind(clock)
        .bind(level)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    if breached {
        // A warning that never fired is moot once the deadline has passed.
        sqlx::query("INSERT INTO sla_marks (work_order_id, clock, level, created_at) VALUES ($1, $2, 'warning', $3) ON CONFLICT DO NOTHING")
            .bind(id.to_string())
            .bind(clock)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let event = if breached { Event::SlaBreached { clock: clock.into(), due } } else { Event::SlaWarning { clock: clock.into(), due } };
    repo::append_in(&mut tx, id, Command::RecordDispatch(event), &Actor::SYSTEM, sla, now).await?;
    tx.commit().await?;
    if breached {
        tracing::warn!(work_order = %id, clock, "SLA breached");
    } else {
        tracing::info!(work_order = %id, clock, "SLA deadline approaching");
    }
    Ok(true)
}

/// What else the housekeeping loop does each tick: send the surveys of resolved work
/// orders (see [`super::surveys`]).
pub struct Surveys {
    pub key: crate::auth::tokens::TokenKey,
    pub cfg: super::surveys::SurveyConfig,
    pub public_url: String,
}

/// Runs [`tick`] (and the survey sender) every `interval` until `stop` turns true.
pub async fn run(db: Db, sla: SlaPolicy, cfg: SlaTimerConfig, surveys: Surveys, mut stop: tokio::sync::watch::Receiver<bool>) {
    if cfg.interval_secs == 0 {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(cfg.interval_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = tick(&db, &sla, crate::now_millis(), cfg.warn_at_percent).await {
                    tracing::warn!(error = %e, "SLA timer check failed; retrying next tick");
                }
                if let Err(e) = super::surveys::send_due(&db, &surveys.key, &sla, &surveys.cfg, &surveys.public_url).await {
                    tracing::warn!(error = %e, "sending surveys failed; retrying next tick");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
