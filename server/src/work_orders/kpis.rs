//! Service KPIs over a period: first response time, remote resolution rate,
//! first-time-fix rate, mean time to repair, SLA compliance and satisfaction, overall
//! and per region, product line or expert. Definitions: `docs/kpis.md`.
//!
//! The period selects a cohort: the work orders *created* in `[from, to)`, and what has
//! become of them by `now` (a figure for last month can still move while its work
//! orders are open). Each work order is folded from its event log into [`Facts`]
//! ([`Facts::observe`], pure), the facts are grouped and counted by [`report`] (pure,
//! time passed in); [`load`] is the only I/O: one query for the cohort with its region
//! and product line, one streamed query for the events that matter, one for the names
//! of the experts. Nothing here writes.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use super::events::{ActorRef, Event, EventRecord};
use super::model::Status;
use crate::store::{Db, StoreError};
use crate::UnixMillis;

const DAY_MS: i64 = 86_400_000;
/// The default period: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest period one request may ask for.
pub const MAX_DAYS: i64 = 366;
/// The most work orders one report folds (bounds memory and time per request).
pub const MAX_WORK_ORDERS: usize = 200_000;
/// The group of work orders whose region, product line or expert is not known.
pub const UNKNOWN: &str = "unknown";

/// The event kinds the figures are folded from (the others are not read).
const KINDS: &[&str] = &["created", "status_changed", "priority_changed", "session_joined", "visit_report", "survey_answered"];

/// What a report is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The region of the work order's site (or its asset's site).
    Region,
    /// The product-line code of the work order's asset.
    ProductLine,
    /// The first expert who joined the live session.
    Expert,
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "region" => Ok(GroupBy::Region),
            "product_line" => Ok(GroupBy::ProductLine),
            "expert" => Ok(GroupBy::Expert),
            other => Err(format!("group_by must be region, product_line or expert, not `{}`", crate::http::extract::truncate(other, 40))),
        }
    }
}

/// A half-open period `[from, to)` in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: UnixMillis,
    pub to: UnixMillis,
}

impl Period {
    /// Parses the `from` and `to` bounds: RFC 3339 instants, or `YYYY-MM-DD` dates in
    /// UTC (a `to` date includes that whole day). Defaults: `to` = now (inclusive: a
    /// work order opened this very millisecond counts), `from` = 30
    /// days before `to`. `from` must be before `to`, and the period at most 366 days.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: UnixMillis) -> Result<Period, String> {
        let to = match to.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => bound(s, true).map_err(|e| format!("to: {e}"))?,
            None => now + 1,
        };
        let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => bound(s, false).map_err(|e| format!("from: {e}"))?,
            None => to - DEFAULT_DAYS * DAY_MS,
        };
        if from >= to {
            return Err("from must be before to".into());
        }
        if to - from > MAX_DAYS * DAY_MS {
            return Err(format!("the period may span at most {MAX_DAYS} days"));
        }
        Ok(Period { from, to })
    }
}

/// One bound: a date (midnight UTC; the next midnight for an end) or an RFC 3339 instant.
fn bound(s: &str, end: bool) -> Result<UnixMillis, String> {
    use time::format_description::well_known::Rfc3339;
    let shown = crate::http::extract::truncate(s, 40);
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    if s.len() == 10 {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let d = time::Date::parse(s, &fmt).map_err(|_| format!("`{shown}` is not a date (YYYY-MM-DD)"))?;
        let start = ms(d.midnight().assume_utc());
        return Ok(if end { start + DAY_MS } else { start });
    }
    time::OffsetDateTime::parse(s, &Rfc3339)
        .map(ms)
        .map_err(|_| format!("`{shown}` is neither an RFC 3339 time nor a date (YYYY-MM-DD)"))
}

/// What one work order contributes to the figures, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub created_at: UnixMillis,
    pub first_response_due: UnixMillis,
    pub resolution_due: UnixMillis,
    /// The first staff response (the first-response clock stopped).
    pub first_response_at: Option<UnixMillis>,
    /// The latest resolution; None while unresolved or after a reopen.
    pub resolved_at: Option<UnixMillis>,
    /// Whether the latest resolution was remote (`resolved_remote`) or on site.
    pub resolved_remotely: Option<bool>,
    pub status: Option<Status>,
    /// The outcomes of the visit reports, in order.
    pub visits: Vec<String>,
    /// Survey answers: rating 1-5 and whether it was a complaint.
    pub ratings: Vec<(i64, bool)>,
    pub region: Option<String>,
    pub product_line: Option<String>,
    /// The first expert who joined the live session (a user id).
    pub expert: Option<String>,
}

impl Facts {
    /// Folds one event in (events of one work order, in sequence order).
    pub fn observe(&mut self, rec: &EventRecord) {
        let at = rec.occurred_at;
        match &rec.event {
            Event::Created { first_response_due, resolution_due, .. } => {
                self.created_at = at;
                self.first_response_due = *first_response_due;
                self.resolution_due = *resolution_due;
                self.status = Some(Status::New);
            }
            Event::PriorityChanged { first_response_due, resolution_due, .. } => {
                self.first_response_due = *first_response_due;
                self.resolution_due = *resolution_due;
            }
            Event::StatusChanged { to, first_response, .. } => {
                self.status = Some(*to);
                if *first_response && self.first_response_at.is_none() {
                    self.first_response_at = Some(at);
                }
                // The same rules as the projection (`events::apply`).
                match to {
                    Status::ResolvedRemote | Status::ResolvedOnSite => {
                        self.resolved_at = Some(at);
                        self.resolved_remotely = Some(*to == Status::ResolvedRemote);
                    }
                    Status::Triaged => {
                        self.resolved_at = None;
                        self.resolved_remotely = None;
                    }
                    _ => {}
                }
            }
            Event::SessionJoined { part, who } if part == "expert" && self.expert.is_none() => {
                self.expert = Some(match who.parse::<ActorRef>() {
                    Ok(ActorRef::User(u)) => u.to_string(),
                    _ => who.clone(),
                });
            }
            Event::VisitReport { outcome, .. } => self.visits.push(outcome.clone()),
            Event::SurveyAnswered { rating, complaint, .. } => self.ratings.push((*rating, *complaint)),
            _ => {}
        }
    }

    /// Folds a whole event log.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a EventRecord>) -> Facts {
        let mut f = Facts::default();
        for e in events {
            f.observe(e);
        }
        f
    }

    fn cancelled(&self) -> bool {
        self.status == Some(Status::Cancelled)
    }

    /// Neither resolved nor closed nor cancelled: its clocks still run.
    fn open(&self) -> bool {
        self.resolved_at.is_none() && !matches!(self.status, Some(Status::Closed | Status::Cancelled))
    }

    fn key(&self, g: GroupBy) -> &str {
        let k = match g {
            GroupBy::Region => &self.region,
            GroupBy::ProductLine => &self.product_line,
            GroupBy::Expert => &self.expert,
        };
        k.as_deref().filter(|k| !k.is_empty()).unwrap_or(UNKNOWN)
    }
}

/// A share: `count` of `total`, and `count / total` (None when `total` is 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Share {
    pub total: u64,
    pub count: u64,
    pub rate: Option<f64>,
}

impl Share {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.count += u64::from(hit);
    }

    fn finish(mut self) -> Self {
        self.rate = (self.total > 0).then(|| self.count as f64 / self.total as f64);
        self
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResponseTimes {
    /// Work orders with a first staff response.
    pub responded: u64,
    pub median_minutes: Option<f64>,
    pub mean_minutes: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepairTime {
    pub resolved: u64,
    /// Mean time to repair: creation to (latest) resolution.
    pub mean_hours: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    pub answers: u64,
    pub mean_rating: Option<f64>,
    pub complaints: u64,
}

/// The figures of a set of work orders.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Work orders in the set (cancelled ones included).
    pub work_orders: u64,
    pub first_response: ResponseTimes,
    /// Resolved remotely out of all resolved.
    pub remote_resolution: Share,
    /// Fixed on the first visit out of all visited.
    pub first_time_fix: Share,
    pub repair: RepairTime,
    /// Resolved by the resolution deadline, or still open and not yet past it.
    pub sla_resolution: Share,
    /// First response by its deadline, or none yet and not yet past it.
    pub sla_first_response: Share,
    pub satisfaction: Satisfaction,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

impl Figures {
    /// Counts a set of work orders at `now`. Pure.
    pub fn of<'a>(facts: impl IntoIterator<Item = &'a Facts>, now: UnixMillis) -> Figures {
        let mut f = Figures::default();
        let mut response = Vec::new();
        let mut repair = Vec::new();
        let mut ratings = Vec::new();
        for w in facts {
            f.work_orders += 1;
            match w.first_response_at {
                Some(at) => {
                    response.push((at - w.created_at) as f64 / 60_000.0);
                    f.sla_first_response.add(at <= w.first_response_due);
                }
                // No response yet: in time until the deadline passes; a work order
                // cancelled or closed without one has no running clock.
                None if w.open() => f.sla_first_response.add(now <= w.first_response_due),
                None => {}
            }
            if let Some(at) = w.resolved_at {
                repair.push((at - w.created_at) as f64 / 3_600_000.0);
                f.remote_resolution.add(w.resolved_remotely == Some(true));
                f.sla_resolution.add(at <= w.resolution_due);
            } else if w.open() {
                f.sla_resolution.add(now <= w.resolution_due);
            }
            if !w.visits.is_empty() && !w.cancelled() {
                f.first_time_fix.add(w.visits.len() == 1 && w.visits[0] == "fixed");
            }
            for &(rating, complaint) in &w.ratings {
                ratings.push(rating as f64);
                f.satisfaction.complaints += u64::from(complaint);
            }
        }
        f.first_response.responded = response.len() as u64;
        f.first_response.mean_minutes = mean(&response);
        f.first_response.median_minutes = median(&mut response);
        f.repair.resolved = repair.len() as u64;
        f.repair.mean_hours = mean(&repair);
        f.satisfaction.answers = ratings.len() as u64;
        f.satisfaction.mean_rating = mean(&ratings);
        f.remote_resolution = f.remote_resolution.finish();
        f.first_time_fix = f.first_time_fix.finish();
        f.sla_resolution = f.sla_resolution.finish();
        f.sla_first_response = f.sla_first_response.finish();
        f
    }
}

/// The figures of one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The region, product-line code or expert user id; `unknown` where missing.
    pub key: String,
    /// What to show: the expert's name, otherwise the key.
    pub label: String,
    pub figures: Figures,
}

/// Overall figures and, when grouped, the figures per group: the largest groups
/// first, `unknown` last. `labels` names keys (experts' display names). Pure.
pub fn report(facts: &[Facts], group_by: Option<GroupBy>, labels: &HashMap<String, String>, now: UnixMillis) -> (Figures, Vec<Group>) {
    let overall = Figures::of(facts, now);
    let Some(g) = group_by else { return (overall, Vec::new()) };
    let mut by_key: BTreeMap<&str, Vec<&Facts>> = BTreeMap::new();
    for f in facts {
        by_key.entry(f.key(g)).or_default().push(f);
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, members)| Group {
            key: key.to_owned(),
            label: labels.get(key).cloned().unwrap_or_else(|| key.to_owned()),
            figures: Figures::of(members, now),
        })
        .collect();
    groups.sort_by(|a, b| {
        (a.key == UNKNOWN, std::cmp::Reverse(a.figures.work_orders), &a.key).cmp(&(b.key == UNKNOWN, std::cmp::Reverse(b.figures.work_orders), &b.key))
    });
    (overall, groups)
}

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error("the period holds more than {MAX_WORK_ORDERS} work orders; choose a shorter one")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KpiError {
    fn from(e: sqlx::Error) -> Self {
        KpiError::Store(e.into())
    }
}

/// The facts of the work orders created in the period, and the display names of the
/// experts among them.
pub async fn load(db: &Db, period: Period) -> Result<(Vec<Facts>, HashMap<String, String>), KpiError> {
    // The site is the work order's own, else its asset's (as for dispatch).
    let rows = sqlx::query(
        "SELECT w.id, s.region, p.code FROM work_orders w \
         LEFT JOIN assets a ON a.id = w.asset_id \
         LEFT JOIN sites s ON s.id = COALESCE(w.site_id, a.site_id) \
         LEFT JOIN product_lines p ON p.id = a.product_line_id \
         WHERE w.created_at >= $1 AND w.created_at < $2 LIMIT $3",
    )
    .bind(period.from)
    .bind(period.to)
    .bind(MAX_WORK_ORDERS as i64 + 1)
    .fetch_all(&db.pool)
    .await?;
    if rows.len() > MAX_WORK_ORDERS {
        return Err(KpiError::TooMany);
    }
    let mut facts: HashMap<String, Facts> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let f = Facts { region: r.try_get("region")?, product_line: r.try_get("code")?, ..Facts::default() };
        facts.insert(r.try_get("id")?, f);
    }
    drop(rows);
    let kinds = KINDS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT e.work_order_id, e.actor, e.occurred_at, e.payload FROM work_order_events e JOIN work_orders w ON w.id = e.work_order_id \
         WHERE w.created_at >= $1 AND w.created_at < $2 AND e.kind IN ({kinds}) ORDER BY e.work_order_id, e.seq"
    );
    let mut stream = sqlx::query(&sql).bind(period.from).bind(period.to).fetch(&db.pool);
    while let Some(r) = stream.try_next().await? {
        let id: String = r.try_get("work_order_id")?;
        // Created after the first query: not in this report.
        let Some(f) = facts.get_mut(&id) else { continue };
        let payload: String = r.try_get("payload")?;
        let event: Event = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        let rec = EventRecord {
            work_order_id: crate::auth::repo::parse(&r, "work_order_id")?,
            seq: 0,
            actor: super::events::Actor { who: crate::auth::repo::parse(&r, "actor")?, role: None },
            occurred_at: r.try_get("occurred_at")?,
            event,
        };
        f.observe(&rec);
    }
    drop(stream);
    // A work order without its `created` event cannot be measured.
    let facts: Vec<Facts> = facts.into_values().filter(|f| f.status.is_some()).collect();
    let mut names = HashMap::new();
    if facts.iter().any(|f| f.expert.is_some()) {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, display_name FROM users WHERE role = 'expert'").fetch_all(&db.pool).await?;
        names.extend(rows);
    }
    Ok((facts, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerId, WorkOrderId};
    use crate::work_orders::events::Actor;
    use crate::work_orders::model::{Channel, Priority, Tier};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 3_600_000;

    fn rec(at: UnixMillis, event: Event) -> EventRecord {
        EventRecord { work_order_id: WorkOrderId::new(), seq: 0, actor: Actor::SYSTEM, occurred_at: at, event }
    }

    fn created(at: UnixMillis, fr_due: UnixMillis, res_due: UnixMillis) -> EventRecord {
        rec(
            at,
            Event::Created {
                customer_id: CustomerId::new(),
                asset_id: None,
                site_id: None,
                title: "t".into(),
                description: String::new(),
                channel: Channel::Phone,
                priority: Priority::P2,
                tier: Tier::Standard,
                fault_codes: vec![],
                first_response_due: fr_due,
                resolution_due: res_due,
            },
        )
    }

    fn to(at: UnixMillis, from: Status, to: Status, first_response: bool) -> EventRecord {
        rec(at, Event::StatusChanged { from, to, reason: None, first_response })
    }

    fn visit(at: UnixMillis, outcome: &str) -> EventRecord {
        rec(at, Event::VisitReport { assignment_id: "a".into(), outcome: outcome.into(), checklist: vec![], parts_used: vec![], signed_by: None, notes: None })
    }

    fn rated(at: UnixMillis, rating: i64, complaint: bool) -> EventRecord {
        rec(at, Event::SurveyAnswered { survey_id: "s".into(), rating, comment: None, complaint })
    }

    fn joined(at: UnixMillis, part: &str, who: &str) -> EventRecord {
        rec(at, Event::SessionJoined { part: part.into(), who: who.into() })
    }

    use Status::*;

    /// Four work orders created at 0 (first response due at 1 h, resolution at 24 h),
    /// checked at `now` = 30 h:
    /// * A: answered after 10 min, resolved remotely at 2 h; rated 5.
    /// * B: answered after 30 min, escalated, one visit fixed at 20 h; rated 4.
    /// * C: answered after 90 min (late), a needs_revisit visit then a fixed one at 40 h
    ///   (late); rated 1 with a complaint.
    /// * D: never answered, still new (both clocks breached at 30 h).
    fn four() -> Vec<Facts> {
        let c = |at| created(at, HOUR, 24 * HOUR);
        let a = Facts::from_events(&[
            c(0),
            to(10 * MIN, New, Triaged, true),
            joined(11 * MIN, "customer", "invite:0190aaaa-0000-7000-8000-000000000000"),
            joined(12 * MIN, "expert", "user:0190aaaa-0000-7000-8000-000000000001"),
            to(13 * MIN, Triaged, InRemoteSession, false),
            to(2 * HOUR, InRemoteSession, ResolvedRemote, false),
            rated(3 * HOUR, 5, false),
        ]);
        let b = Facts::from_events(&[
            c(0),
            to(30 * MIN, New, Triaged, true),
            to(HOUR, Triaged, Escalated, false),
            to(2 * HOUR, Escalated, Scheduled, false),
            to(3 * HOUR, Scheduled, OnSite, false),
            visit(20 * HOUR, "fixed"),
            to(20 * HOUR, OnSite, ResolvedOnSite, false),
            rated(21 * HOUR, 4, false),
        ]);
        let cc = Facts::from_events(&[
            c(0),
            to(90 * MIN, New, Triaged, true),
            to(2 * HOUR, Triaged, Escalated, false),
            to(3 * HOUR, Escalated, Scheduled, false),
            to(4 * HOUR, Scheduled, OnSite, false),
            visit(5 * HOUR, "needs_revisit"),
            to(5 * HOUR, OnSite, Scheduled, false),
            to(39 * HOUR, Scheduled, OnSite, false),
            visit(40 * HOUR, "fixed"),
            to(40 * HOUR, OnSite, ResolvedOnSite, false),
            rated(41 * HOUR, 1, true),
        ]);
        let d = Facts::from_events(&[c(0)]);
        vec![a, b, cc, d]
    }

    #[test]
    fn figures_match_hand_computed_values() {
        let f = Figures::of(&four(), 30 * HOUR);
        assert_eq!(f.work_orders, 4);
        // Responses 10, 30, 90 min: median 30, mean 130/3.
        assert_eq!(f.first_response.responded, 3);
        assert_eq!(f.first_response.median_minutes, Some(30.0));
        assert!((f.first_response.mean_minutes.unwrap() - 130.0 / 3.0).abs() < 1e-9);
        // Resolved: A remote, B and C on site.
        assert_eq!((f.remote_resolution.total, f.remote_resolution.count), (3, 1));
        assert!((f.remote_resolution.rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        // Visited: B (first visit fixed) and C (needed a second): 50 %.
        assert_eq!(f.first_time_fix, Share { total: 2, count: 1, rate: Some(0.5) });
        // Repair: 2 h, 20 h, 40 h: mean 62/3 h.
        assert_eq!(f.repair.resolved, 3);
        assert!((f.repair.mean_hours.unwrap() - 62.0 / 3.0).abs() < 1e-9);
        // Resolution SLA (24 h): A and B met, C late, D open past its deadline.
        assert_eq!(f.sla_resolution, Share { total: 4, count: 2, rate: Some(0.5) });
        // First response (1 h): A and B met, C late, D unanswered past its deadline.
        assert_eq!(f.sla_first_response, Share { total: 4, count: 2, rate: Some(0.5) });
        // Ratings 5, 4, 1: mean 10/3, one complaint.
        assert_eq!((f.satisfaction.answers, f.satisfaction.complaints), (3, 1));
        assert!((f.satisfaction.mean_rating.unwrap() - 10.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn open_work_orders_are_compliant_until_their_deadlines_pass() {
        let d = &four()[3];
        let early = Figures::of([d], 30 * MIN);
        assert_eq!(early.sla_first_response, Share { total: 1, count: 1, rate: Some(1.0) });
        assert_eq!(early.sla_resolution, Share { total: 1, count: 1, rate: Some(1.0) });
        assert_eq!(early.first_response.median_minutes, None);
        assert_eq!(early.remote_resolution.rate, None, "nothing resolved: no rate, not 0");
    }

    #[test]
    fn a_reopened_work_order_counts_by_its_latest_resolution_and_cancelled_ones_have_no_clock() {
        let reopened = Facts::from_events(&[
            created(0, HOUR, 24 * HOUR),
            to(MIN, New, Triaged, true),
            to(2 * MIN, Triaged, InRemoteSession, false),
            to(HOUR, InRemoteSession, ResolvedRemote, false),
            to(2 * HOUR, ResolvedRemote, Triaged, false),
            to(3 * HOUR, Triaged, Escalated, false),
            to(4 * HOUR, Escalated, Scheduled, false),
            to(5 * HOUR, Scheduled, OnSite, false),
            visit(6 * HOUR, "fixed"),
            to(6 * HOUR, OnSite, ResolvedOnSite, false),
        ]);
        assert_eq!((reopened.resolved_at, reopened.resolved_remotely), (Some(6 * HOUR), Some(false)));
        let cancelled = Facts::from_events(&[created(0, HOUR, 24 * HOUR), to(MIN, New, Cancelled, false)]);
        let f = Figures::of([&reopened, &cancelled], 48 * HOUR);
        assert_eq!(f.work_orders, 2);
        assert_eq!(f.remote_resolution, Share { total: 1, count: 0, rate: Some(0.0) });
        assert_eq!(f.first_time_fix, Share { total: 1, count: 1, rate: Some(1.0) });
        assert_eq!(f.sla_resolution.total, 1, "a cancelled work order has no resolution clock");
        assert_eq!(f.sla_first_response.total, 1);
        assert_eq!(f.repair.mean_hours, Some(6.0));
    }

    #[test]
    fn a_not_fixed_visit_fails_first_time_fix_even_before_the_work_order_is_resolved() {
        let f = Facts::from_events(&[created(0, HOUR, 24 * HOUR), visit(HOUR, "not_fixed")]);
        assert_eq!(Figures::of([&f], 2 * HOUR).first_time_fix, Share { total: 1, count: 0, rate: Some(0.0) });
    }

    #[test]
    fn priority_changes_move_the_deadlines_the_sla_is_measured_against() {
        let f = Facts::from_events(&[
            created(0, HOUR, 24 * HOUR),
            rec(MIN, Event::PriorityChanged { from: Priority::P2, to: Priority::P1, first_response_due: 30 * MIN, resolution_due: 8 * HOUR }),
            to(45 * MIN, New, Triaged, true),
        ]);
        assert_eq!(Figures::of([&f], HOUR).sla_first_response.count, 0);
    }

    #[test]
    fn groups_split_the_figures_with_unknown_last_and_experts_named() {
        let mut facts = four();
        facts[0].region = Some("east".into());
        facts[1].region = Some("east".into());
        facts[2].region = Some("north".into());
        let labels = HashMap::new();
        let (overall, groups) = report(&facts, Some(GroupBy::Region), &labels, 30 * HOUR);
        assert_eq!(overall.work_orders, 4);
        let keys: Vec<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["east", "north", "unknown"]);
        assert_eq!(groups[0].figures.remote_resolution, Share { total: 2, count: 1, rate: Some(0.5) });
        assert_eq!(groups[1].figures.first_time_fix.rate, Some(0.0));

        let expert = "0190aaaa-0000-7000-8000-000000000001";
        assert_eq!(facts[0].expert.as_deref(), Some(expert), "the user id, without the `user:` prefix");
        let labels = HashMap::from([(expert.to_owned(), "Li Wei".to_owned())]);
        let (_, groups) = report(&facts, Some(GroupBy::Expert), &labels, 30 * HOUR);
        // `unknown` is last even when it is the largest group.
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].key.as_str(), groups[0].label.as_str(), groups[0].figures.work_orders), (expert, "Li Wei", 1));
        assert_eq!((groups[1].key.as_str(), groups[1].label.as_str(), groups[1].figures.work_orders), ("unknown", "unknown", 3));
    }

    #[test]
    fn periods_parse_dates_and_times_with_defaults_and_limits() {
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let p = Period::parse(None, None, now).unwrap();
        assert_eq!(p, Period { from: now + 1 - 30 * DAY_MS, to: now + 1 }, "now itself is inside");
        // A date `to` includes its whole day.
        let p = Period::parse(Some("2025-12-01"), Some("2025-12-31"), now).unwrap();
        assert_eq!((p.from, p.to), (now - 31 * DAY_MS, now));
        let p = Period::parse(Some("2025-12-31T08:00:00+08:00"), Some("2026-01-01T00:00:00Z"), now).unwrap();
        assert_eq!(p.from, now - 24 * HOUR, "08:00 in UTC+8 is midnight UTC");
        assert!(Period::parse(Some("2026-01-02"), Some("2026-01-01"), now).unwrap_err().contains("before"));
        assert!(Period::parse(Some("2024-01-01"), Some("2026-01-01"), now).unwrap_err().contains("366"));
        assert!(Period::parse(Some("yesterday"), None, now).unwrap_err().starts_with("from:"));
        assert!(Period::parse(None, Some("2026-13-01"), now).unwrap_err().starts_with("to:"));
        assert!("team".parse::<GroupBy>().is_err());
        assert_eq!("product_line".parse::<GroupBy>(), Ok(GroupBy::ProductLine));
    }
}
