//! The service KPIs of a period (`GET /api/v1/kpis`), overall and per group, for the
//! admin dashboard and dispatchers. The figures are computed in
//! [`crate::work_orders::kpis`]; this only parses the query and shapes the answer.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::ApiQuery;
use super::AppState;
use crate::error::ApiError;
use crate::work_orders::kpis::{self, Figures, Group, GroupBy, KpiError, Period};

pub fn router() -> Router<AppState> {
    Router::new().route("/kpis", get(kpis))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// Start (inclusive): RFC 3339, or a date in UTC. Default: 30 days before `to`.
    from: Option<String>,
    /// End (exclusive for a time; a date includes its whole day). Default: now.
    to: Option<String>,
    /// `region`, `product_line` or `expert`.
    group_by: Option<String>,
}

#[derive(Serialize)]
pub struct KpiReport {
    /// The period: work orders created in `[from, to)`.
    from: String,
    to: String,
    group_by: Option<GroupBy>,
    /// When the figures were computed (open work orders are judged at this instant).
    generated_at: String,
    overall: Figures,
    groups: Vec<Group>,
}

async fn kpis(State(state): State<AppState>, ApiQuery(q): ApiQuery<KpiQuery>) -> Result<Json<KpiReport>, ApiError> {
    let now = crate::now_millis();
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), now).map_err(ApiError::Validation)?;
    let group_by = q.group_by.as_deref().filter(|g| !g.is_empty()).map(str::parse::<GroupBy>).transpose().map_err(ApiError::Validation)?;
    let (facts, names) = kpis::load(&state.db, period).await.map_err(|e| match e {
        KpiError::TooMany => ApiError::Validation(e.to_string()),
        KpiError::Store(s) => s.into(),
    })?;
    let (overall, groups) = kpis::report(&facts, group_by, &names, now);
    Ok(Json(KpiReport {
        from: crate::rfc3339(period.from),
        to: crate::rfc3339(period.to),
        group_by,
        generated_at: crate::rfc3339(now),
        overall,
        groups,
    }))
}
