//! Technician profiles: skills (product line and certification level), home base,
//! service region, working hours, job limit and the count of open jobs.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::matching::{GeoPoint, Skill, Technician};
use super::schedule::WorkingHours;
use crate::ids::UserId;
use crate::store::{Db, StoreError};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Profile {
    pub user_id: UserId,
    pub display_name: String,
    pub region: String,
    pub home: GeoPoint,
    pub skills: Vec<Skill>,
    pub hours: WorkingHours,
    pub max_jobs: i64,
    pub open_jobs: i64,
    pub active: bool,
}

/// What an admin or dispatcher sets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub region: String,
    pub home: GeoPoint,
    pub skills: Vec<Skill>,
    #[serde(default)]
    pub hours: WorkingHours,
    pub max_jobs: i64,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl ProfileUpdate {
    pub fn validate(&self) -> Result<(), String> {
        if self.region.trim().is_empty() || self.region.len() > 64 {
            return Err("region must be 1-64 characters".into());
        }
        if !(-90.0..=90.0).contains(&self.home.latitude) || !(-180.0..=180.0).contains(&self.home.longitude) {
            return Err("home must be a latitude in -90..=90 and a longitude in -180..=180".into());
        }
        if self.skills.len() > 50 || self.skills.iter().any(|s| s.product_line.is_empty() || s.product_line.len() > 64) {
            return Err("skills: at most 50, each with a product line code".into());
        }
        if !(1..=50).contains(&self.max_jobs) {
            return Err("max_jobs must be 1-50".into());
        }
        self.hours.validate().map_err(|e| format!("hours: {e}"))
    }
}

impl Profile {
    pub fn for_matching(&self) -> Technician {
        Technician {
            id: self.user_id.to_string(),
            skills: self.skills.clone(),
            region: self.region.clone(),
            home: self.home,
            hours: self.hours.clone(),
            open_jobs: self.open_jobs.max(0) as u32,
            max_jobs: self.max_jobs.max(0) as u32,
            active: self.active,
        }
    }
}

fn from_row(r: &AnyRow) -> Result<Profile, StoreError> {
    let skills: String = r.try_get("skills")?;
    let hours: String = r.try_get("hours")?;
    let active: i64 = r.try_get("active")?;
    Ok(Profile {
        user_id: crate::auth::repo::parse(r, "user_id")?,
        display_name: r.try_get("display_name")?,
        region: r.try_get("region")?,
        home: GeoPoint { latitude: r.try_get("home_latitude")?, longitude: r.try_get("home_longitude")? },
        skills: serde_json::from_str(&skills).map_err(|e| StoreError::Corrupt(format!("skills: {e}")))?,
        hours: serde_json::from_str(&hours).map_err(|e| StoreError::Corrupt(format!("hours: {e}")))?,
        max_jobs: r.try_get("max_jobs")?,
        open_jobs: r.try_get("open_jobs")?,
        active: active != 0,
    })
}

const SELECT: &str = "SELECT t.*, u.display_name FROM technicians t JOIN users u ON u.id = t.user_id";

/// Creates or replaces a profile. `Ok(None)` when the user is not a technician. Lowering
/// `max_jobs` below the open jobs is refused by the table's CHECK (a conflict).
pub async fn upsert(db: &Db, user: UserId, p: &ProfileUpdate) -> Result<Option<Profile>, StoreError> {
    let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1").bind(user.to_string()).fetch_optional(&db.pool).await?;
    if role.as_deref() != Some("technician") {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO technicians (user_id, region, home_latitude, home_longitude, skills, hours, max_jobs, open_jobs, active, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) ON CONFLICT (user_id) DO UPDATE SET region = excluded.region, \
         home_latitude = excluded.home_latitude, home_longitude = excluded.home_longitude, skills = excluded.skills, \
         hours = excluded.hours, max_jobs = excluded.max_jobs, active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(user.to_string())
    .bind(&p.region)
    .bind(p.home.latitude)
    .bind(p.home.longitude)
    .bind(serde_json::to_string(&p.skills).expect("skills serialize"))
    .bind(serde_json::to_string(&p.hours).expect("hours serialize"))
    .bind(p.max_jobs)
    .bind(p.active as i64)
    .bind(crate::now_millis())
    .execute(&db.pool)
    .await?;
    get(db, user).await
}

pub async fn get(db: &Db, user: UserId) -> Result<Option<Profile>, StoreError> {
    let r = sqlx::query(&format!("{SELECT} WHERE t.user_id = $1")).bind(user.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Profile>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY u.display_name, t.user_id")).fetch_all(&db.pool).await?;
    rows.iter().map(from_row).collect()
}
