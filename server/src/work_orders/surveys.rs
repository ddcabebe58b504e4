//! After the fix: a satisfaction survey per resolution, and a follow-up task.
//!
//! When a work order is resolved (remotely or on site) the background housekeeping
//! creates a survey and records `survey_sent` with its link: a signed, expiring token
//! ([`crate::auth::tokens::Claims::Survey`]) that answers this one survey and nothing
//! else, so a customer can answer from a phone without logging in. The link is
//! recomputed from the row (the token is deterministic), so it is never stored.
//!
//! * An answer (1-5 and a comment) is recorded once (`survey_answered`); a second one is
//!   a conflict, an expired link is gone.
//! * A complaint (`complaint: true`) reopens a resolved work order (back to `triaged`,
//!   reason "customer complaint"); a closed one cannot be reopened, so the complaint is
//!   recorded and its follow-up task comes first in the list.
//! * Every survey carries a follow-up task due `follow_up_hours` after the resolution:
//!   staff call the customer, then mark it done with a note (`follow_up_done`).
//! * A work order reopened and resolved again gets a new survey.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::events::{Actor, Command, Event};
use super::model::Status;
use super::repo::{self, AppendError};
use super::sla::SlaPolicy;
use crate::auth::tokens::{Claims, TokenKey};
use crate::ids::WorkOrderId;
use crate::store::{Db, StoreError};
use crate::UnixMillis;

/// The `[surveys]` config section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyConfig {
    /// Send surveys at all.
    pub enabled: bool,
    /// How long a survey link stays valid, in days.
    pub link_ttl_days: u32,
    /// When the follow-up call is due after resolution, in hours.
    pub follow_up_hours: u32,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        SurveyConfig { enabled: true, link_ttl_days: 14, follow_up_hours: 24 }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Survey {
    pub id: String,
    pub work_order_id: WorkOrderId,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub expires_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub answered_at: Option<UnixMillis>,
    pub rating: Option<i64>,
    pub comment: Option<String>,
    pub complaint: bool,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub follow_up_due: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub follow_up_done_at: Option<UnixMillis>,
    pub follow_up_note: Option<String>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Survey, StoreError> {
    let complaint: i64 = r.try_get("complaint")?;
    Ok(Survey {
        id: r.try_get("id")?,
        work_order_id: crate::auth::repo::parse(r, "work_order_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        answered_at: r.try_get("answered_at")?,
        rating: r.try_get("rating")?,
        comment: r.try_get("comment")?,
        complaint: complaint != 0,
        follow_up_due: r.try_get("follow_up_due")?,
        follow_up_done_at: r.try_get("follow_up_done_at")?,
        follow_up_note: r.try_get("follow_up_note")?,
    })
}

/// The link token of a survey.
pub fn token(key: &TokenKey, s: &Survey) -> String {
    key.sign(&Claims::Survey { sid: s.id.clone(), wo: s.work_order_id, exp: s.expires_at / 1000 })
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Survey>, StoreError> {
    let r = sqlx::query("SELECT * FROM surveys WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    r.as_ref().map(from_row).transpose()
}

pub async fn of_work_order(db: &Db, wo: WorkOrderId) -> Result<Vec<Survey>, StoreError> {
    let rows = sqlx::query("SELECT * FROM surveys WHERE work_order_id = $1 ORDER BY created_at, id").bind(wo.to_string()).fetch_all(&db.pool).await?;
    rows.iter().map(from_row).collect()
}

/// Creates the surveys of work orders resolved since their last survey; returns them.
pub async fn send_due(db: &Db, key: &TokenKey, sla: &SlaPolicy, cfg: &SurveyConfig, public_url: &str) -> Result<Vec<Survey>, StoreError> {
    if !cfg.enabled {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, resolved_at FROM work_orders w WHERE status IN ('resolved_remote', 'resolved_on_site') AND resolved_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM surveys s WHERE s.work_order_id = w.id AND s.created_at >= w.resolved_at) ORDER BY resolved_at LIMIT 200",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for (id, resolved_at) in rows {
        let Ok(wo) = id.parse::<WorkOrderId>() else { continue };
        let now = crate::now_millis();
        let s = Survey {
            id: uuid::Uuid::now_v7().to_string(),
            work_order_id: wo,
            created_at: now,
            expires_at: now + cfg.link_ttl_days as i64 * 86_400_000,
            answered_at: None,
            rating: None,
            comment: None,
            complaint: false,
            follow_up_due: resolved_at + cfg.follow_up_hours as i64 * 3_600_000,
            follow_up_done_at: None,
            follow_up_note: None,
        };
        let url = format!("{public_url}/survey#token={}", token(key, &s));
        let mut tx = db.pool.begin().await?;
        let ev = Event::SurveySent { survey_id: s.id.clone(), url, expires_at: s.expires_at, follow_up_due: s.follow_up_due };
        match repo::append_in(&mut tx, wo, Command::RecordDispatch(ev), &Actor::SYSTEM, sla, now).await {
            Ok(_) => {}
            // Closed meanwhile: no survey for it.
            Err(AppendError::Decide(_)) | Err(AppendError::NotFound) => continue,
            Err(AppendError::Store(e)) => return Err(e),
        }
        sqlx::query(
            "INSERT INTO surveys (id, work_order_id, created_at, expires_at, complaint, follow_up_due) VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(&s.id)
        .bind(wo.to_string())
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.follow_up_due)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        out.push(s);
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("the survey link is not valid")]
    BadToken,
    #[error("the survey link has expired")]
    Expired,
    #[error("this survey has already been answered")]
    Answered,
    #[error("{0}")]
    Invalid(String),
    #[error("survey not found")]
    NotFound,
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SurveyError {
    fn from(e: sqlx::Error) -> Self {
        SurveyError::Store(e.into())
    }
}

/// Resolves a link token to its survey.
pub async fn by_token(db: &Db, key: &TokenKey, tok: &str) -> Result<Survey, SurveyError> {
    let claims = key.verify(tok, crate::now_millis() / 1000).map_err(|e| match e {
        crate::auth::tokens::TokenError::Expired => SurveyError::Expired,
        _ => SurveyError::BadToken,
    })?;
    let Claims::Survey { sid, wo, .. } = claims else { return Err(SurveyError::BadToken) };
    let s = get(db, &sid).await?.ok_or(SurveyError::BadToken)?;
    if s.work_order_id != wo {
        return Err(SurveyError::BadToken);
    }
    Ok(s)
}

/// A customer's answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub rating: i64,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub complaint: bool,
}

/// Records an answer; a complaint reopens a resolved work order. Returns whether it did.
pub async fn answer(db: &Db, sla: &SlaPolicy, s: &Survey, a: Answer) -> Result<bool, SurveyError> {
    if !(1..=5).contains(&a.rating) {
        return Err(SurveyError::Invalid("rating must be 1-5".into()));
    }
    let comment = a.comment.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 2000) {
        return Err(SurveyError::Invalid("comment: at most 2000 characters".into()));
    }
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let took = sqlx::query("UPDATE surveys SET answered_at = $2, rating = $3, comment = $4, complaint = $5 WHERE id = $1 AND answered_at IS NULL")
        .bind(&s.id)
        .bind(now)
        .bind(a.rating)
        .bind(&comment)
        .bind(a.complaint as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if took == 0 {
        return Err(SurveyError::Answered);
    }
    let actor = Actor::SYSTEM;
    let ev = Event::SurveyAnswered { survey_id: s.id.clone(), rating: a.rating, comment, complaint: a.complaint };
    let (state, _) = repo::append_in(&mut tx, s.work_order_id, Command::RecordDispatch(ev), &actor, sla, now).await?;
    let reopen = a.complaint && matches!(state.status, Status::ResolvedRemote | Status::ResolvedOnSite);
    if reopen {
        let cmd = Command::Transition { to: Status::Triaged, reason: Some("customer complaint".into()) };
        repo::append_in(&mut tx, s.work_order_id, cmd, &actor, sla, now).await?;
    }
    tx.commit().await?;
    Ok(reopen)
}

/// Follow-up tasks that are due (or complaints), oldest first; complaints first.
pub async fn follow_ups(db: &Db, now: UnixMillis) -> Result<Vec<Survey>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM surveys WHERE follow_up_done_at IS NULL AND (follow_up_due <= $1 OR complaint = 1) \
         ORDER BY complaint DESC, follow_up_due, id LIMIT 500",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Marks a follow-up done with a note.
pub async fn follow_up_done(db: &Db, sla: &SlaPolicy, id: &str, note: String, actor: &Actor) -> Result<Survey, SurveyError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let took = sqlx::query("UPDATE surveys SET follow_up_done_at = $2, follow_up_note = $3 WHERE id = $1 AND follow_up_done_at IS NULL")
        .bind(id)
        .bind(now)
        .bind(&note)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if took == 0 {
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM surveys WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        return Err(if exists.is_some() { SurveyError::Answered } else { SurveyError::NotFound });
    }
    let wo: String = sqlx::query_scalar("SELECT work_order_id FROM surveys WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    let wo: WorkOrderId = wo.parse().map_err(|e| StoreError::Corrupt(format!("survey work order: {e}")))?;
    repo::append_in(&mut tx, wo, Command::RecordDispatch(Event::FollowUpDone { survey_id: id.into(), note }), actor, sla, now).await?;
    tx.commit().await?;
    get(db, id).await?.ok_or(SurveyError::NotFound)
}
