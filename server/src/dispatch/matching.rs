//! Technician matching: rank the technicians for one onsite job by a transparent score.
//!
//! Pure: technicians, the job, the clock and the weights are passed in; nothing is read
//! from the database here. The score is a weighted sum of five components, each in
//! `0..=1`, and every component is returned so the dispatcher sees *why* someone ranks
//! where they do:
//!
//! | component | 1.0 means | 0.0 means |
//! |---|---|---|
//! | `skill`  | certified for the product line at or above the job's level | one level short per 0.5 |
//! | `travel` | on the doorstep | `max_travel_minutes` or more away |
//! | `load`   | no open jobs | one job short of the limit |
//! | `sla`    | finishes before the resolution deadline | cannot finish before it |
//! | `region` | serves the site's region | lives elsewhere |
//!
//! Hard constraints exclude rather than score: a technician without the product line at
//! all, one at their job limit, one with no working time that fits travel + job within
//! the horizon, or an inactive one. Excluded technicians are still returned (last, with
//! the reason) when asked, so "why is Li not on the list" has an answer.
//!
//! Travel time is a [`TravelTime`] implementation: great-circle distance at a configured
//! speed with a detour factor by default; a routing service can be plugged in behind the
//! same trait.
//!
//! Cost: one pass over the technicians with a haversine and a short scan of the
//! precomputed [`Schedule`] each, then a partial sort of the top `limit`. Schedules are
//! expanded once per run ([`Roster::new`]), not per job, so a batch of jobs shares them.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::schedule::{Schedule, WorkingHours};
use crate::UnixMillis;

/// Certification levels, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Customer,
    Technician,
    Specialist,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "customer" => Some(Level::Customer),
            "technician" => Some(Level::Technician),
            "specialist" => Some(Level::Specialist),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Customer => "customer",
            Level::Technician => "technician",
            Level::Specialist => "specialist",
        }
    }
}

/// A point on Earth in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    const R: f64 = 6371.0088;
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dla = la2 - la1;
    let dlo = (b.longitude - a.longitude).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

/// How long it takes to get from one place to another.
pub trait TravelTime: Send + Sync {
    /// Minutes from `from` to `to`, and the distance in km it is based on.
    fn estimate(&self, from: GeoPoint, to: GeoPoint) -> (f64, f64);
}

/// Great-circle distance times a detour factor, at a constant speed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreatCircle {
    pub speed_kmh: f64,
    pub detour_factor: f64,
}

impl Default for GreatCircle {
    fn default() -> Self {
        GreatCircle { speed_kmh: 60.0, detour_factor: 1.3 }
    }
}

impl TravelTime for GreatCircle {
    fn estimate(&self, from: GeoPoint, to: GeoPoint) -> (f64, f64) {
        let km = distance_km(from, to) * self.detour_factor;
        (km / self.speed_kmh.max(1.0) * 60.0, km)
    }
}

/// Weights of the score components; they need not sum to 1 (the total is divided by
/// their sum so it stays in 0..=1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub skill: f64,
    pub travel: f64,
    pub load: f64,
    pub sla: f64,
    pub region: f64,
    /// Travel at or beyond this many minutes scores 0.
    pub max_travel_minutes: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { skill: 0.25, travel: 0.25, load: 0.15, sla: 0.25, region: 0.10, max_travel_minutes: 240.0 }
    }
}

impl Weights {
    pub fn validate(&self) -> Result<(), String> {
        let all = [self.skill, self.travel, self.load, self.sla, self.region];
        if all.iter().any(|w| !w.is_finite() || *w < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err("weights must be finite, non-negative and not all zero".into());
        }
        if !(self.max_travel_minutes.is_finite() && self.max_travel_minutes > 0.0) {
            return Err("max_travel_minutes must be positive".into());
        }
        Ok(())
    }
}

/// One skill: a product line and the certification level held for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    pub product_line: String,
    pub level: Level,
}

/// What matching needs to know about a technician.
#[derive(Clone, Debug)]
pub struct Technician {
    pub id: String,
    pub skills: Vec<Skill>,
    pub region: String,
    pub home: GeoPoint,
    pub hours: WorkingHours,
    pub open_jobs: u32,
    pub max_jobs: u32,
    pub active: bool,
}

/// The job to staff.
#[derive(Clone, Debug)]
pub struct Job {
    /// Product line code of the asset, when known (otherwise any skill fits).
    pub product_line: Option<String>,
    pub level: Level,
    pub site: GeoPoint,
    pub region: Option<String>,
    /// The work order's resolution deadline.
    pub deadline: UnixMillis,
    /// Expected time on site.
    pub job_minutes: u32,
}

/// The score of one technician, broken down.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    pub skill: f64,
    pub travel: f64,
    pub load: f64,
    pub sla: f64,
    pub region: f64,
}

/// One ranked technician.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub technician_id: String,
    /// Weighted score in 0..=1; 0 for excluded technicians.
    pub score: f64,
    pub breakdown: Breakdown,
    pub distance_km: f64,
    pub travel_minutes: f64,
    /// When they could be on site (start of travel within working hours + travel).
    pub arrival_at: Option<UnixMillis>,
    /// When the job would be done.
    pub finish_at: Option<UnixMillis>,
    pub meets_sla: bool,
    /// Why they cannot take the job; None when eligible.
    pub excluded: Option<String>,
}

/// The technicians with their schedules expanded for one matching run.
pub struct Roster {
    pub technicians: Vec<Technician>,
    schedules: Vec<Schedule>,
}

impl Roster {
    /// Expands every technician's working hours from `now` over `horizon_days`.
    pub fn new(technicians: Vec<Technician>, now: UnixMillis, horizon_days: u32) -> Roster {
        let schedules = technicians.iter().map(|t| t.hours.expand(now, horizon_days)).collect();
        Roster { technicians, schedules }
    }

    /// Ranks the technicians for `job`: eligible ones by score (ties: shorter travel,
    /// then id), at most `limit` of them, then — if `with_excluded` — the excluded ones.
    pub fn rank(&self, job: &Job, now: UnixMillis, weights: &Weights, travel: &dyn TravelTime, limit: usize, with_excluded: bool) -> Vec<Candidate> {
        let mut eligible = Vec::new();
        let mut excluded = Vec::new();
        for (t, sched) in self.technicians.iter().zip(&self.schedules) {
            let c = score(t, sched, job, now, weights, travel);
            if c.excluded.is_none() {
                eligible.push(c);
            } else if with_excluded {
                excluded.push(c);
            }
        }
        let order = |a: &Candidate, b: &Candidate| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(Ordering::Equal)
                .then(a.travel_minutes.partial_cmp(&b.travel_minutes).unwrap_or(Ordering::Equal))
                .then_with(|| a.technician_id.cmp(&b.technician_id))
        };
        if eligible.len() > limit && limit > 0 {
            eligible.select_nth_unstable_by(limit - 1, order);
            eligible.truncate(limit);
        }
        eligible.sort_by(order);
        excluded.sort_by(|a, b| a.technician_id.cmp(&b.technician_id));
        eligible.extend(excluded);
        eligible
    }
}

fn score(t: &Technician, sched: &Schedule, job: &Job, now: UnixMillis, w: &Weights, travel: &dyn TravelTime) -> Candidate {
    let (travel_minutes, distance_km) = travel.estimate(t.home, job.site);
    let mut c = Candidate {
        technician_id: t.id.clone(),
        score: 0.0,
        breakdown: Breakdown { skill: 0.0, travel: 0.0, load: 0.0, sla: 0.0, region: 0.0 },
        distance_km,
        travel_minutes,
        arrival_at: None,
        finish_at: None,
        meets_sla: false,
        excluded: None,
    };
    if !t.active {
        c.excluded = Some("inactive".into());
        return c;
    }
    let skill = match &job.product_line {
        None => 1.0,
        Some(pl) => match t.skills.iter().find(|s| &s.product_line == pl) {
            None => {
                c.excluded = Some(format!("not skilled for {pl}"));
                return c;
            }
            Some(s) if s.level >= job.level => 1.0,
            Some(s) => (1.0 - 0.5 * (job.level as i32 - s.level as i32) as f64).max(0.0),
        },
    };
    if t.open_jobs >= t.max_jobs {
        c.excluded = Some(format!("at the job limit ({}/{})", t.open_jobs, t.max_jobs));
        return c;
    }
    let travel_whole = travel_minutes.ceil().clamp(0.0, u32::MAX as f64 / 2.0) as u32;
    let Some(start) = sched.earliest_fit(now, travel_whole.saturating_add(job.job_minutes)) else {
        c.excluded = Some("no working time fits travel and the job in the planning horizon".into());
        return c;
    };
    let arrival = start + travel_whole as i64 * 60_000;
    let finish = arrival + job.job_minutes as i64 * 60_000;
    c.arrival_at = Some(arrival);
    c.finish_at = Some(finish);
    c.meets_sla = finish <= job.deadline;
    c.breakdown = Breakdown {
        skill,
        travel: (1.0 - travel_minutes / w.max_travel_minutes).clamp(0.0, 1.0),
        load: 1.0 - t.open_jobs as f64 / t.max_jobs.max(1) as f64,
        sla: if c.meets_sla { 1.0 } else { 0.0 },
        region: match &job.region {
            Some(r) if *r == t.region => 1.0,
            Some(_) => 0.0,
            None => 1.0,
        },
    };
    let b = &c.breakdown;
    let total = w.skill + w.travel + w.load + w.sla + w.region;
    c.score = (w.skill * b.skill + w.travel * b.travel + w.load * b.load + w.sla * b.sla + w.region * b.region) / total;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_795_584_000_000; // Wed 2026-11-25 05:20 UTC

    fn tech(id: &str, lat: f64, lon: f64, level: Level) -> Technician {
        Technician {
            id: id.into(),
            skills: vec![Skill { product_line: "SPN-CNC".into(), level }],
            region: "east".into(),
            home: GeoPoint { latitude: lat, longitude: lon },
            hours: WorkingHours { timezone: "UTC".into(), days: vec![1, 2, 3, 4, 5, 6, 7], start_minute: 0, end_minute: 1440 },
            open_jobs: 0,
            max_jobs: 4,
            active: true,
        }
    }

    fn job() -> Job {
        Job {
            product_line: Some("SPN-CNC".into()),
            level: Level::Technician,
            site: GeoPoint { latitude: 31.23, longitude: 121.47 }, // Shanghai
            region: Some("east".into()),
            deadline: NOW + 8 * 3_600_000,
            job_minutes: 120,
        }
    }

    fn rank(techs: Vec<Technician>, j: &Job) -> Vec<Candidate> {
        Roster::new(techs, NOW, 7).rank(j, NOW, &Weights::default(), &GreatCircle::default(), 10, true)
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Shanghai - Beijing is about 1067 km.
        let d = distance_km(GeoPoint { latitude: 31.2304, longitude: 121.4737 }, GeoPoint { latitude: 39.9042, longitude: 116.4074 });
        assert!((d - 1067.0).abs() < 5.0, "{d}");
        assert_eq!(distance_km(GeoPoint { latitude: 0.0, longitude: 0.0 }, GeoPoint { latitude: 0.0, longitude: 0.0 }), 0.0);
    }

    #[test]
    fn the_nearest_qualified_technician_wins_and_the_unqualified_are_excluded_with_a_reason() {
        let mut far = tech("far", 32.06, 118.79, Level::Specialist); // Nanjing, ~270 km
        far.region = "east".into();
        let near = tech("near", 31.30, 121.50, Level::Technician); // ~8 km
        let mut grinder_only = tech("grinder", 31.23, 121.47, Level::Specialist);
        grinder_only.skills = vec![Skill { product_line: "AGR-125".into(), level: Level::Specialist }];
        let r = rank(vec![far, near, grinder_only], &job());
        assert_eq!(r[0].technician_id, "near");
        assert_eq!(r[1].technician_id, "far");
        assert!(r[0].score > r[1].score);
        assert_eq!(r[2].technician_id, "grinder");
        assert_eq!(r[2].excluded.as_deref(), Some("not skilled for SPN-CNC"));
        assert!(r[0].meets_sla);
    }

    #[test]
    fn load_breaks_a_tie_and_a_full_technician_is_excluded() {
        let mut busy = tech("busy", 31.30, 121.50, Level::Technician);
        busy.open_jobs = 3;
        let idle = tech("idle", 31.30, 121.50, Level::Technician);
        let mut full = tech("full", 31.30, 121.50, Level::Technician);
        full.open_jobs = 4;
        let r = rank(vec![busy, idle, full], &job());
        assert_eq!(r.iter().map(|c| c.technician_id.as_str()).collect::<Vec<_>>(), ["idle", "busy", "full"]);
        assert!((r[0].breakdown.load - 1.0).abs() < 1e-9 && (r[1].breakdown.load - 0.25).abs() < 1e-9);
        assert!(r[2].excluded.as_deref().unwrap().contains("job limit"));
    }

    #[test]
    fn someone_who_can_make_the_deadline_beats_a_closer_one_who_cannot() {
        // Close by, but their shift starts later today (16-20 local in Shanghai).
        let mut close_off_shift = tech("close", 31.24, 121.48, Level::Technician);
        close_off_shift.hours = WorkingHours { timezone: "Asia/Shanghai".into(), days: vec![1, 2, 3, 4, 5], start_minute: 16 * 60, end_minute: 20 * 60 };
        // 100 km away, on call now.
        let on_call = tech("oncall", 31.9, 121.0, Level::Technician);
        let j = Job { deadline: NOW + 4 * 3_600_000, ..job() };
        let r = rank(vec![close_off_shift, on_call], &j);
        assert_eq!(r[0].technician_id, "oncall");
        assert!(r[0].meets_sla);
        assert!(!r[1].meets_sla);
        // 05:20 UTC is 13:20 in Shanghai: the 16:00 local start is 08:00 UTC, and
        // 08:02 + 2 h is after the 09:20 deadline.
        assert_eq!(r[1].arrival_at.unwrap(), NOW + (2 * 60 + 42) * 60_000, "08:00 UTC + 2 min of travel (rounded up)");
    }

    #[test]
    fn an_under_certified_technician_scores_lower_on_skill_and_says_so() {
        let mut j = job();
        j.level = Level::Specialist;
        let spec = tech("spec", 31.30, 121.50, Level::Specialist);
        let techn = tech("techn", 31.30, 121.50, Level::Technician);
        let r = rank(vec![techn, spec], &j);
        assert_eq!(r[0].technician_id, "spec");
        assert_eq!(r[1].breakdown.skill, 0.5);
    }

    #[test]
    fn limit_keeps_the_best_and_the_order_is_deterministic() {
        let techs: Vec<_> = (0..50).map(|i| tech(&format!("t{i:02}"), 31.23 + i as f64 * 0.01, 121.47, Level::Technician)).collect();
        let r = Roster::new(techs, NOW, 7).rank(&job(), NOW, &Weights::default(), &GreatCircle::default(), 5, false);
        assert_eq!(r.iter().map(|c| c.technician_id.as_str()).collect::<Vec<_>>(), ["t00", "t01", "t02", "t03", "t04"]);
    }

    #[test]
    fn a_job_without_a_product_line_or_region_accepts_any_skill() {
        let mut j = job();
        j.product_line = None;
        j.region = None;
        let mut t = tech("any", 31.3, 121.5, Level::Customer);
        t.skills.clear();
        let r = rank(vec![t], &j);
        assert!(r[0].excluded.is_none());
        assert_eq!(r[0].breakdown.skill, 1.0);
        assert_eq!(r[0].breakdown.region, 1.0);
    }
}
