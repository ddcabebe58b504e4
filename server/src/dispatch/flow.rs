//! The onsite flow of a work order: escalate (with parts reserved), rank technicians,
//! offer the job, the technician's answer, the visit (en route, on site, report), and
//! cancellation. Each step is one transaction that writes the assignment or stock rows
//! and the work-order events together.
//!
//! ```text
//! work order: in_remote_session|triaged --escalate--> escalated --accept--> scheduled
//!             --on_site--> on_site --report(fixed)--> resolved_on_site
//!                                  --report(needs_revisit)--> scheduled (same technician)
//!                                  --report(not_fixed)--> scheduled -> escalated (back to the board)
//! assignment: offered -> accepted -> en_route -> on_site -> done
//!             offered -> declined | withdrawn;  accepted|en_route -> withdrawn
//! ```
//!
//! A technician's open jobs are counted in `technicians.open_jobs` and changed only by
//! conditional updates here (offer: `+1 WHERE open_jobs < max_jobs`; decline, withdraw,
//! done: `-1`), so two dispatchers offering the last slot at once get one success and
//! one conflict. A work order has at most one live assignment (a partial unique index).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::matching::{Candidate, GeoPoint, GreatCircle, Job, Level, Roster, Weights};
use super::parts::{self, StockError};
use super::technicians;
use crate::ids::{UserId, WorkOrderId};
use crate::store::{Db, StoreError};
use crate::work_orders::events::{Actor, ChecklistItem, Command, Event, PartQty};
use crate::work_orders::model::{Status, WorkOrder};
use crate::work_orders::repo::{self, AppendError};
use crate::work_orders::sla::SlaPolicy;
use crate::UnixMillis;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("this assignment belongs to another technician")]
    NotYours,
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FlowError {
    fn from(e: sqlx::Error) -> Self {
        FlowError::Store(e.into())
    }
}

impl From<StockError> for FlowError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::UnknownPart(s) => FlowError::Invalid(format!("unknown part `{s}`")),
            StockError::UnknownWarehouse(s) => FlowError::Invalid(format!("unknown warehouse `{s}`")),
            StockError::Conflict(m) => FlowError::Conflict(m),
            StockError::Store(s) => FlowError::Store(s),
        }
    }
}

/// Dispatch settings (the `[dispatch]` config section).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    pub weights: Weights,
    pub travel: GreatCircle,
    /// Days of working hours considered when looking for a slot.
    pub horizon_days: u32,
    /// Time on site assumed when the procedure does not say.
    pub default_job_minutes: u32,
    /// Priorities whose escalations are offered to the best technician automatically
    /// (e.g. `["P1"]`); a decline then goes to the next best.
    pub auto_assign_priorities: Vec<String>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            weights: Weights::default(),
            travel: GreatCircle::default(),
            horizon_days: 7,
            default_job_minutes: 120,
            auto_assign_priorities: Vec::new(),
        }
    }
}

impl DispatchConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.weights.validate().map_err(|m| ("weights".to_string(), m))?;
        if !(self.travel.speed_kmh > 0.0 && self.travel.speed_kmh.is_finite()) || !(self.travel.detour_factor >= 1.0 && self.travel.detour_factor.is_finite()) {
            return Err(("travel".into(), "speed_kmh must be positive and detour_factor at least 1".into()));
        }
        if !(1..=60).contains(&self.horizon_days) {
            return Err(("horizon_days".into(), "must be 1-60".into()));
        }
        if !(1..=24 * 60).contains(&self.default_job_minutes) {
            return Err(("default_job_minutes".into(), "must be 1-1440".into()));
        }
        if let Some(p) = self.auto_assign_priorities.iter().find(|p| p.parse::<crate::work_orders::model::Priority>().is_err()) {
            return Err(("auto_assign_priorities".into(), format!("`{p}` is not a priority (P1-P4)")));
        }
        Ok(())
    }
}

/// An assignment as stored.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Assignment {
    pub id: String,
    pub work_order_id: WorkOrderId,
    pub technician_id: UserId,
    pub status: String,
    pub score: Option<f64>,
    pub breakdown: Option<serde_json::Value>,
    pub auto: bool,
    pub assigned_by: String,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub updated_at: UnixMillis,
}

fn assignment_from_row(r: &AnyRow) -> Result<Assignment, StoreError> {
    let breakdown: Option<String> = r.try_get("breakdown")?;
    let auto: i64 = r.try_get("auto")?;
    Ok(Assignment {
        id: r.try_get("id")?,
        work_order_id: crate::auth::repo::parse(r, "work_order_id")?,
        technician_id: crate::auth::repo::parse(r, "technician_id")?,
        status: r.try_get("status")?,
        score: r.try_get("score")?,
        breakdown: breakdown.and_then(|b| serde_json::from_str(&b).ok()),
        auto: auto != 0,
        assigned_by: r.try_get("assigned_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn assignment(db: &Db, id: &str) -> Result<Option<Assignment>, StoreError> {
    let r = sqlx::query("SELECT * FROM assignments WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    r.as_ref().map(assignment_from_row).transpose()
}

/// Assignments of one technician (open ones first), or of one work order.
pub async fn assignments(db: &Db, technician: Option<UserId>, work_order: Option<WorkOrderId>, open_only: bool) -> Result<Vec<Assignment>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM assignments WHERE ($1 = '' OR technician_id = $1) AND ($2 = '' OR work_order_id = $2) \
         AND ($3 = 0 OR status IN ('offered', 'accepted', 'en_route', 'on_site')) ORDER BY created_at DESC, id LIMIT 500",
    )
    .bind(technician.map(|t| t.to_string()).unwrap_or_default())
    .bind(work_order.map(|t| t.to_string()).unwrap_or_default())
    .bind(open_only as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(assignment_from_row).collect()
}

/// Where the job is: the work order's site (location, region; the nearest warehouse's
/// region when the site has none) and the asset's product line.
pub struct JobSite {
    pub location: Option<GeoPoint>,
    pub region: Option<String>,
    pub product_line: Option<String>,
}

pub async fn job_site(db: &Db, wo: &WorkOrder) -> Result<JobSite, StoreError> {
    use crate::customers::repo as c;
    let mut site_id = wo.site_id;
    let mut product_line = None;
    if let Some(a) = wo.asset_id {
        if let Some(asset) = c::asset(db, a).await? {
            site_id = site_id.or(asset.site_id);
            product_line = c::product_line(db, asset.product_line_id).await?.map(|p| p.code);
        }
    }
    let site = match site_id {
        Some(s) => c::site(db, s).await?,
        None => None,
    };
    let location = site.as_ref().map(|s| GeoPoint { latitude: s.latitude, longitude: s.longitude });
    let mut region = site.and_then(|s| s.region);
    if region.is_none() {
        if let Some(loc) = location {
            region = parts::list_warehouses(db)
                .await?
                .into_iter()
                .min_by(|a, b| {
                    let d = |w: &parts::Warehouse| super::matching::distance_km(loc, GeoPoint { latitude: w.latitude, longitude: w.longitude });
                    d(a).total_cmp(&d(b))
                })
                .map(|w| w.region);
        }
    }
    Ok(JobSite { location, region, product_line })
}

/// What an expert sends to escalate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub reason: String,
    #[serde(default)]
    pub availability: Option<String>,
    #[serde(default)]
    pub parts: Vec<PartQty>,
}

/// Escalates a work order to onsite service: the status change, the escalation record
/// and the parts reservation in one transaction. Returns the new state and the events.
pub async fn escalate(db: &Db, sla: &SlaPolicy, id: WorkOrderId, actor: &Actor, e: Escalation) -> Result<(WorkOrder, Vec<Event>), FlowError> {
    if e.parts.len() > 50 || e.parts.iter().any(|p| !(1..=1000).contains(&p.quantity)) {
        return Err(FlowError::Invalid("parts: at most 50 lines, each with a quantity of 1-1000".into()));
    }
    if e.reason.trim().is_empty() || e.reason.len() > 2000 || e.availability.as_ref().is_some_and(|a| a.len() > 500) {
        return Err(FlowError::Invalid("reason is required (at most 2000 characters); availability at most 500".into()));
    }
    let wo = repo::get(db, id).await?.ok_or(FlowError::NotFound("work order"))?;
    let site = job_site(db, &wo).await?;
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let mut events = Vec::new();
    // The first statement writes (the work-order row lock), so SQLite takes its write
    // lock before any read of the transaction: a read-then-write transaction would fail
    // with SQLITE_BUSY when another writer commits in between.
    // A session that ended with "needs a technician" has already moved the work order
    // to `escalated`: the expert then adds the context (reason, availability, parts).
    if wo.status != Status::Escalated {
        let (_, rec) = repo::append_in(&mut tx, id, Command::Transition { to: Status::Escalated, reason: Some(e.reason.clone()) }, actor, sla, now).await?;
        events.push(rec.event);
    }
    let record = Event::EscalationRecorded { reason: e.reason, availability: e.availability, suggested_parts: e.parts.clone() };
    let (mut state, rec) = repo::append_in(&mut tx, id, Command::RecordDispatch(record), actor, sla, now).await?;
    if state.status != Status::Escalated {
        // Changed between the read above and the lock (e.g. a concurrent cancel).
        return Err(FlowError::Conflict(format!("the work order is {} and cannot be escalated", state.status)));
    }
    events.push(rec.event);
    // A live assignment of a re-escalated (scheduled) work order is withdrawn with it.
    withdraw_open_in(&mut tx, id, actor, sla, now, &mut events).await?;
    // Re-escalation keeps earlier reservations and adds to them.
    let (lines, shortages) = parts::reserve_in(&mut tx, id, &e.parts, site.location, site.region.as_deref()).await?;
    if !lines.is_empty() || !shortages.is_empty() {
        let (s, rec) = repo::append_in(&mut tx, id, Command::RecordDispatch(Event::PartsReserved { lines, shortages }), actor, sla, now).await?;
        state = s;
        events.push(rec.event);
    }
    tx.commit().await?;
    Ok((state, events))
}

async fn withdraw_open_in(
    conn: &mut AnyConnection,
    id: WorkOrderId,
    actor: &Actor,
    sla: &SlaPolicy,
    now: UnixMillis,
    events: &mut Vec<Event>,
) -> Result<(), FlowError> {
    let open: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, technician_id FROM assignments WHERE work_order_id = $1 AND status IN ('offered', 'accepted', 'en_route', 'on_site')",
    )
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    for (aid, tech) in open {
        sqlx::query("UPDATE assignments SET status = 'withdrawn', updated_at = $2 WHERE id = $1").bind(&aid).bind(now).execute(&mut *conn).await?;
        sqlx::query("UPDATE technicians SET open_jobs = open_jobs - 1 WHERE user_id = $1 AND open_jobs > 0").bind(&tech).execute(&mut *conn).await?;
        let ev = Event::AssignmentAnswered { assignment_id: aid, technician_id: tech, answer: "withdrawn".into(), reason: None };
        let (_, rec) = repo::append_in(conn, id, Command::RecordDispatch(ev), actor, sla, now).await?;
        events.push(rec.event);
    }
    Ok(())
}

/// Ranks the technicians for a work order.
pub async fn candidates(db: &Db, cfg: &DispatchConfig, wo: &WorkOrder, now: UnixMillis, limit: usize, with_excluded: bool) -> Result<Vec<Candidate>, StoreError> {
    let site = job_site(db, wo).await?;
    let techs: Vec<_> = technicians::list(db).await?.iter().map(|p| p.for_matching()).collect();
    let Some(location) = site.location else {
        // No site: nobody can be routed; everyone is listed as excluded.
        return Ok(Vec::new());
    };
    let job = Job {
        product_line: site.product_line,
        level: Level::Technician,
        site: location,
        region: site.region,
        deadline: wo.resolution_due,
        job_minutes: cfg.default_job_minutes,
    };
    let roster = Roster::new(techs, now, cfg.horizon_days);
    Ok(roster.rank(&job, now, &cfg.weights, &cfg.travel, limit, with_excluded))
}

/// Offers the job to a technician. `candidate` carries the score shown to the
/// dispatcher (recomputed by the caller, never trusted from the client).
pub async fn offer(
    db: &Db,
    sla: &SlaPolicy,
    id: WorkOrderId,
    technician: UserId,
    candidate: Option<&Candidate>,
    auto: bool,
    actor: &Actor,
) -> Result<Assignment, FlowError> {
    let now = crate::now_millis();
    let aid = uuid::Uuid::now_v7().to_string();
    let mut tx = db.pool.begin().await?;
    let ev = Event::TechnicianOffered { assignment_id: aid.clone(), technician_id: technician.to_string(), score: candidate.map(|c| c.score), auto };
    let (state, _) = repo::append_in(&mut tx, id, Command::RecordDispatch(ev), actor, sla, now).await?;
    if state.status != Status::Escalated {
        return Err(FlowError::Conflict(format!("the work order is {}, not escalated", state.status)));
    }
    let took = sqlx::query("UPDATE technicians SET open_jobs = open_jobs + 1, updated_at = $2 WHERE user_id = $1 AND active = 1 AND open_jobs < max_jobs")
        .bind(technician.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if took == 0 {
        let known: Option<(i64, i64, i64)> = sqlx::query_as("SELECT open_jobs, max_jobs, active FROM technicians WHERE user_id = $1")
            .bind(technician.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match known {
            None => FlowError::NotFound("technician"),
            Some((_, _, 0)) => FlowError::Conflict("the technician is inactive".into()),
            Some((o, m, _)) => FlowError::Conflict(format!("the technician is at the job limit ({o}/{m})")),
        });
    }
    let breakdown = candidate.map(|c| serde_json::to_string(&c.breakdown).expect("breakdown serializes"));
    let inserted = sqlx::query(
        "INSERT INTO assignments (id, work_order_id, technician_id, status, score, breakdown, auto, assigned_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'offered', $4, $5, $6, $7, $8, $8)",
    )
    .bind(&aid)
    .bind(id.to_string())
    .bind(technician.to_string())
    .bind(candidate.map(|c| c.score))
    .bind(breakdown)
    .bind(auto as i64)
    .bind(actor.who.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if crate::store::is_unique_violation(&e) => {
            return Err(FlowError::Conflict("the work order already has a live assignment; withdraw it first".into()))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    assignment(db, &aid).await?.ok_or(FlowError::NotFound("assignment"))
}

/// Loads an assignment in the transaction, checking its owner and that its status is
/// one of `from`.
async fn lock_assignment(conn: &mut AnyConnection, id: &str, technician: Option<UserId>, from: &[&str], now: UnixMillis) -> Result<Assignment, FlowError> {
    // A no-op write takes the row lock first (as for work orders).
    let row = sqlx::query("UPDATE assignments SET updated_at = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(FlowError::NotFound("assignment"))?;
    let a = assignment_from_row(&row)?;
    if technician.is_some_and(|t| t != a.technician_id) {
        return Err(FlowError::NotYours);
    }
    if !from.contains(&a.status.as_str()) {
        return Err(FlowError::Conflict(format!("the assignment is {}", a.status)));
    }
    Ok(a)
}

async fn set_status(conn: &mut AnyConnection, id: &str, status: &str, now: UnixMillis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE assignments SET status = $2, updated_at = $3 WHERE id = $1").bind(id).bind(status).bind(now).execute(&mut *conn).await?;
    Ok(())
}

async fn free_slot(conn: &mut AnyConnection, technician: UserId, now: UnixMillis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE technicians SET open_jobs = open_jobs - 1, updated_at = $2 WHERE user_id = $1 AND open_jobs > 0")
        .bind(technician.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The technician accepts (the work order becomes `scheduled`) or declines (the slot
/// is freed; the work order stays on the board). `technician` None = an admin acting.
pub async fn answer(db: &Db, sla: &SlaPolicy, id: &str, technician: Option<UserId>, accept: bool, reason: Option<String>, actor: &Actor) -> Result<Assignment, FlowError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let a = lock_assignment(&mut tx, id, technician, &["offered"], now).await?;
    let answer = if accept { "accepted" } else { "declined" };
    set_status(&mut tx, id, answer, now).await?;
    if accept {
        repo::append_in(&mut tx, a.work_order_id, Command::Transition { to: Status::Scheduled, reason: None }, actor, sla, now).await?;
    } else {
        free_slot(&mut tx, a.technician_id, now).await?;
    }
    let ev = Event::AssignmentAnswered { assignment_id: a.id.clone(), technician_id: a.technician_id.to_string(), answer: answer.into(), reason };
    repo::append_in(&mut tx, a.work_order_id, Command::RecordDispatch(ev), actor, sla, now).await?;
    tx.commit().await?;
    assignment(db, id).await?.ok_or(FlowError::NotFound("assignment"))
}

/// A dispatcher takes an offer or an accepted job back (before the technician is on
/// site); a scheduled work order goes back to `escalated`.
pub async fn withdraw(db: &Db, sla: &SlaPolicy, id: &str, actor: &Actor) -> Result<Assignment, FlowError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let a = lock_assignment(&mut tx, id, None, &["offered", "accepted", "en_route"], now).await?;
    set_status(&mut tx, id, "withdrawn", now).await?;
    free_slot(&mut tx, a.technician_id, now).await?;
    if a.status != "offered" {
        repo::append_in(&mut tx, a.work_order_id, Command::Transition { to: Status::Escalated, reason: Some("assignment withdrawn".into()) }, actor, sla, now).await?;
    }
    let ev = Event::AssignmentAnswered { assignment_id: a.id.clone(), technician_id: a.technician_id.to_string(), answer: "withdrawn".into(), reason: None };
    repo::append_in(&mut tx, a.work_order_id, Command::RecordDispatch(ev), actor, sla, now).await?;
    tx.commit().await?;
    assignment(db, id).await?.ok_or(FlowError::NotFound("assignment"))
}

/// Visit progress: `en_route` (from accepted) or `on_site` (from accepted or en route;
/// the work order becomes `on_site`).
pub async fn progress(db: &Db, sla: &SlaPolicy, id: &str, technician: Option<UserId>, stage: &str, actor: &Actor) -> Result<Assignment, FlowError> {
    let from: &[&str] = match stage {
        "en_route" => &["accepted"],
        "on_site" => &["accepted", "en_route"],
        other => return Err(FlowError::Invalid(format!("stage must be en_route or on_site, not `{other}`"))),
    };
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let a = lock_assignment(&mut tx, id, technician, from, now).await?;
    set_status(&mut tx, id, stage, now).await?;
    if stage == "on_site" {
        repo::append_in(&mut tx, a.work_order_id, Command::Transition { to: Status::OnSite, reason: None }, actor, sla, now).await?;
    }
    let ev = Event::VisitProgress { assignment_id: a.id.clone(), stage: stage.into() };
    repo::append_in(&mut tx, a.work_order_id, Command::RecordDispatch(ev), actor, sla, now).await?;
    tx.commit().await?;
    assignment(db, id).await?.ok_or(FlowError::NotFound("assignment"))
}

/// The technician's report at the end of a visit.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitReport {
    /// `fixed`, `needs_revisit` (same technician comes back) or `not_fixed` (back to
    /// the dispatcher).
    pub outcome: String,
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
    #[serde(default)]
    pub parts_used: Vec<PartQty>,
    /// Name of the customer's representative who signed the visit off.
    #[serde(default)]
    pub signed_by: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl VisitReport {
    fn validate(&self) -> Result<(), FlowError> {
        if !matches!(self.outcome.as_str(), "fixed" | "needs_revisit" | "not_fixed") {
            return Err(FlowError::Invalid("outcome must be fixed, needs_revisit or not_fixed".into()));
        }
        if self.checklist.len() > 100 || self.checklist.iter().any(|c| c.item.is_empty() || c.item.len() > 500 || c.note.as_ref().is_some_and(|n| n.len() > 1000)) {
            return Err(FlowError::Invalid("checklist: at most 100 items of 1-500 characters, notes at most 1000".into()));
        }
        if self.parts_used.len() > 50 || self.parts_used.iter().any(|p| !(1..=1000).contains(&p.quantity)) {
            return Err(FlowError::Invalid("parts_used: at most 50 lines, each with a quantity of 1-1000".into()));
        }
        if self.outcome == "fixed" && self.signed_by.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(FlowError::Invalid("a fixed visit needs the customer's sign-off (signed_by)".into()));
        }
        if self.signed_by.as_ref().is_some_and(|s| s.len() > 200) || self.notes.as_ref().is_some_and(|n| n.len() > 4000) {
            return Err(FlowError::Invalid("signed_by at most 200 characters, notes at most 4000".into()));
        }
        Ok(())
    }
}

/// Records the visit report: parts used come out of stock (reservations first, unused
/// ones released), the work order moves by the outcome, the technician's slot is freed
/// unless they come back.
pub async fn complete(db: &Db, sla: &SlaPolicy, id: &str, technician: Option<UserId>, report: VisitReport, actor: &Actor) -> Result<Assignment, FlowError> {
    report.validate()?;
    let a = assignment(db, id).await?.ok_or(FlowError::NotFound("assignment"))?;
    let wo = repo::get(db, a.work_order_id).await?.ok_or(FlowError::NotFound("work order"))?;
    let site = job_site(db, &wo).await?;
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let a = lock_assignment(&mut tx, id, technician, &["on_site"], now).await?;
    let wid = a.work_order_id;
    let record = |e: Event| Command::RecordDispatch(e);
    repo::append_in(
        &mut tx,
        wid,
        record(Event::VisitReport {
            assignment_id: a.id.clone(),
            outcome: report.outcome.clone(),
            checklist: report.checklist,
            parts_used: report.parts_used.clone(),
            signed_by: report.signed_by,
            notes: report.notes,
        }),
        actor,
        sla,
        now,
    )
    .await?;
    let revisit = report.outcome == "needs_revisit";
    // A revisit keeps the remaining reservations for the next trip.
    let (consumed, released) = if revisit {
        (consume_only(&mut tx, wid, &report.parts_used, site.location, site.region.as_deref()).await?, Vec::new())
    } else {
        parts::consume_in(&mut tx, wid, &report.parts_used, site.location, site.region.as_deref()).await?
    };
    if !consumed.is_empty() {
        repo::append_in(&mut tx, wid, record(Event::PartsConsumed { lines: consumed }), actor, sla, now).await?;
    }
    if !released.is_empty() {
        repo::append_in(&mut tx, wid, record(Event::PartsReleased { lines: released }), actor, sla, now).await?;
    }
    match report.outcome.as_str() {
        "fixed" => {
            set_status(&mut tx, id, "done", now).await?;
            free_slot(&mut tx, a.technician_id, now).await?;
            repo::append_in(&mut tx, wid, Command::Transition { to: Status::ResolvedOnSite, reason: None }, actor, sla, now).await?;
        }
        "needs_revisit" => {
            // Same technician, same assignment: back to accepted for the next trip.
            set_status(&mut tx, id, "accepted", now).await?;
            repo::append_in(&mut tx, wid, Command::Transition { to: Status::Scheduled, reason: Some("needs a second visit".into()) }, actor, sla, now).await?;
        }
        _ => {
            set_status(&mut tx, id, "done", now).await?;
            free_slot(&mut tx, a.technician_id, now).await?;
            repo::append_in(&mut tx, wid, Command::Transition { to: Status::Scheduled, reason: Some("not fixed on site".into()) }, actor, sla, now).await?;
            repo::append_in(&mut tx, wid, Command::Transition { to: Status::Escalated, reason: Some("not fixed on site".into()) }, actor, sla, now).await?;
        }
    }
    tx.commit().await?;
    assignment(db, id).await?.ok_or(FlowError::NotFound("assignment"))
}

/// Consumes parts without releasing the other reservations (a revisit needs them).
async fn consume_only(
    conn: &mut AnyConnection,
    wid: WorkOrderId,
    used: &[PartQty],
    site: Option<GeoPoint>,
    region: Option<&str>,
) -> Result<Vec<crate::work_orders::events::PartLine>, FlowError> {
    if used.is_empty() {
        return Ok(Vec::new());
    }
    // Release-and-re-reserve would lose the place in the queue for scarce parts, so take
    // the used quantities out of the reservations, then re-reserve whatever the consume
    // released.
    let (consumed, released) = parts::consume_in(conn, wid, used, site, region).await?;
    let again: Vec<PartQty> = released.iter().map(|l| PartQty { sku: l.sku.clone(), quantity: l.quantity }).collect();
    parts::reserve_in(conn, wid, &again, site, region).await?;
    Ok(consumed)
}

/// Cancels a work order: the status change, the release of its reservations and the
/// withdrawal of its live assignment in one transaction.
pub async fn cancel(db: &Db, sla: &SlaPolicy, id: WorkOrderId, reason: Option<String>, actor: &Actor, may_see: impl FnOnce(&WorkOrder) -> bool) -> Result<WorkOrder, FlowError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let (state, _) = repo::append_in(&mut tx, id, Command::Transition { to: Status::Cancelled, reason }, actor, sla, now).await?;
    if !may_see(&state) {
        return Err(FlowError::NotFound("work order"));
    }
    let open: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, technician_id FROM assignments WHERE work_order_id = $1 AND status IN ('offered', 'accepted', 'en_route', 'on_site')",
    )
    .bind(id.to_string())
    .fetch_all(&mut *tx)
    .await?;
    let mut state = state;
    for (aid, tech) in open {
        set_status(&mut tx, &aid, "withdrawn", now).await?;
        sqlx::query("UPDATE technicians SET open_jobs = open_jobs - 1 WHERE user_id = $1 AND open_jobs > 0").bind(&tech).execute(&mut *tx).await?;
        let ev = Event::AssignmentAnswered { assignment_id: aid, technician_id: tech, answer: "withdrawn".into(), reason: Some("work order cancelled".into()) };
        state = repo::append_in(&mut tx, id, Command::RecordDispatch(ev), actor, sla, now).await?.0;
    }
    let released = parts::release_in(&mut tx, id).await?;
    if !released.is_empty() {
        state = repo::append_in(&mut tx, id, Command::RecordDispatch(Event::PartsReleased { lines: released }), actor, sla, now).await?.0;
    }
    tx.commit().await?;
    Ok(state)
}
