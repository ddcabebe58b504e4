//! Telemetry ingest for gateways: `POST /api/v1/assets/{id}/telemetry`, one recording
//! per request (raw float32 with the FXV1 header, CSV or JSON, as for evidence).
//!
//! Each upload is diagnosed. Routine healthy data is not stored. When the alert monitor
//! sees a persistent fault (see `diagnosis::alerts`) a work order opens on the asset
//! (channel `telemetry_alert`, P2) with the recording attached as evidence and the
//! verdict on record; while that work order is open, every further upload of the asset
//! is attached to it, so the technician sees the trend. Gateways log in with a staff
//! service account (a technician account is the least privileged that may post).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiPath, ApiQuery};
use super::work_orders::{append_error, diagnose_error};
use super::AppState;
use crate::auth::Principal;
use crate::diagnosis::alerts::Alert;
use crate::diagnosis::manifest::Task;
use crate::diagnosis::{telemetry::Signal, ModelVerdict, TelemetryAnalysis};
use crate::error::ApiError;
use crate::ids::{AssetId, WorkOrderId};
use crate::work_orders::evidence::{self, EvidenceKind};
use crate::work_orders::model::{Channel, Priority, Status};
use crate::work_orders::repo::{self, ListFilter, SortKey};

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{id}/telemetry", post(ingest))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestQuery {
    sample_rate_hz: Option<f64>,
    rpm: Option<f64>,
}

#[derive(Serialize)]
pub struct IngestResult {
    diagnosis: ModelVerdict,
    analysis: TelemetryAnalysis,
    /// Set when this upload completed a persistent-fault window.
    alert: Option<Alert>,
    /// The open telemetry-alert work order this upload was attached to, if any.
    work_order_id: Option<WorkOrderId>,
    /// True when this upload opened that work order.
    opened: bool,
    /// Proactive service: when this upload opened the work order, an invite link for
    /// the customer (to be sent by the service desk or a CRM webhook), with the
    /// recording and its diagnosis already attached to the work order.
    invite_url: Option<String>,
}

const OPEN: [Status; 6] = [Status::New, Status::Triaged, Status::InRemoteSession, Status::Escalated, Status::Scheduled, Status::OnSite];

async fn ingest(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestResult>), ApiError> {
    let asset_id: AssetId = extract::id(&id, "asset")?;
    let asset = crate::customers::repo::asset(&state.db, asset_id).await?.ok_or_else(|| ApiError::not_found("asset"))?;
    let model = state
        .diagnosis
        .for_task(Task::BearingFaultVibration)
        .ok_or_else(|| ApiError::Unavailable("no vibration model is loaded (diagnosis is disabled)".into()))?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ct = evidence::check_declared_type(EvidenceKind::Telemetry, ct).map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let max = state.config.limits.max_evidence_bytes;
    let bytes = super::work_orders::read_upload(body, max).await?;
    let signal = Signal::parse(&ct, &bytes, q.sample_rate_hz, q.rpm).map_err(|e| ApiError::Validation(e.to_string()))?;
    let (verdict, analysis) = crate::diagnosis::diagnose_signal(model, signal).await.map_err(diagnose_error)?;

    // One upload of an asset at a time from here: observe, decide, write.
    let lock = state.alerts.lock(asset_id);
    let _guard = lock.lock().await;
    let alert = state.alerts.observe(asset_id, &verdict);
    let filter = ListFilter { statuses: OPEN.to_vec(), channel: Some(Channel::TelemetryAlert), asset_id: Some(asset_id), ..Default::default() };
    let (open, _) = repo::list(&state.db, &filter, SortKey::CreatedAt, true, None, 1).await?;
    let actor = p.actor();
    let (work_order_id, opened) = match (open.first(), &alert) {
        (Some(w), _) => (Some(w.id), false),
        (None, Some(a)) => {
            let customer = crate::customers::repo::customer(&state.db, asset.customer_id)
                .await?
                .ok_or_else(|| ApiError::Internal("asset without customer".into()))?;
            let new = repo::NewWorkOrder {
                customer_id: asset.customer_id,
                asset_id: Some(asset_id),
                site_id: asset.site_id,
                title: format!("Telemetry alert: {} suspected ({:.0} %)", a.fault_id, a.mean_probability * 100.0),
                description: format!(
                    "Raised by telemetry from asset {} ({} {}): {} of the last {} recordings average {:.2} for {}.",
                    asset.id, asset.model, asset.serial_number, a.uploads, a.uploads, a.mean_probability, a.fault_id
                ),
                channel: Channel::TelemetryAlert,
                priority: Priority::P2,
                tier: customer.tier,
                fault_codes: Vec::new(),
            };
            let w = repo::create(&state.db, new, &actor, &state.config.sla).await?;
            state.alerts.reset(asset_id);
            tracing::info!(asset = %asset_id, work_order = %w.id, fault = %a.fault_id, "telemetry alert opened a work order");
            (Some(w.id), true)
        }
        (None, None) => (None, false),
    };
    if let Some(wid) = work_order_id {
        let blob = state.blobs.write_bytes(&bytes).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        evidence::record(&state.db, wid, EvidenceKind::Telemetry, &ct, &blob, Some("telemetry".into()), &actor, &state.config.sla, Some(verdict.clone()))
            .await
            .map_err(append_error)?;
    }
    let mut invite_url = None;
    if let (true, Some(wid), Some(uid)) = (opened, work_order_id, p.user_id) {
        let ttl = state.config.auth.invite_ttl_secs;
        invite_url = Some(super::work_orders::issue_invite(&state, wid, uid, ttl, &actor).await?.url);
    }
    let status = if opened { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(IngestResult { diagnosis: verdict, analysis, alert, work_order_id, opened, invite_url })))
}
