//! Escalation and onsite dispatch routes: escalate with context, the dossier a
//! technician receives, ranked candidates, assignments and the visit, technicians,
//! parts, warehouses, stock and safety-stock alerts, and the dispatcher board.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath, ApiQuery};
use super::work_orders::{diagnosis_of, visible, DiagnosisView, EventView, WorkOrderView};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::customers::{Asset, Customer, Site};
use crate::dispatch::flow::{self, Assignment, Escalation, FlowError, VisitReport};
use crate::dispatch::matching::{Candidate, GeoPoint};
use crate::dispatch::parts::{self, Part, Reservation, StockAlert, StockError, StockItem, Warehouse};
use crate::dispatch::technicians::{self, Profile, ProfileUpdate};
use crate::error::ApiError;
use crate::ids::{UserId, WorkOrderId};
use crate::work_orders::events::Event;
use crate::work_orders::evidence;
use crate::work_orders::model::{Status, WorkOrder};
use crate::work_orders::repo;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/work-orders/{id}/escalate", post(escalate))
        .route("/work-orders/{id}/dossier", get(dossier))
        .route("/work-orders/{id}/candidates", get(candidates))
        .route("/work-orders/{id}/assignments", post(assign))
        .route("/assignments", get(list_assignments))
        .route("/assignments/{id}/answer", post(answer))
        .route("/assignments/{id}/withdraw", post(withdraw))
        .route("/assignments/{id}/progress", post(progress))
        .route("/assignments/{id}/report", post(report))
        .route("/dispatch/board", get(board))
        .route("/technicians", get(list_technicians))
        .route("/technicians/{id}", put(put_technician))
        .route("/parts", get(list_parts))
        .route("/warehouses", get(list_warehouses).post(create_warehouse))
        .route("/stock", get(list_stock))
        .route("/stock/{warehouse}/{sku}", put(put_stock))
        .route("/stock-alerts", get(list_alerts))
}

pub fn flow_error(e: FlowError) -> ApiError {
    match e {
        FlowError::NotFound(what) => ApiError::not_found(what),
        FlowError::Conflict(m) => ApiError::Conflict(m),
        FlowError::Invalid(m) => ApiError::Validation(m),
        FlowError::NotYours => ApiError::Forbidden(e.to_string()),
        FlowError::Append(a) => super::work_orders::append_error(a),
        FlowError::Store(s) => s.into(),
    }
}

fn stock_error(e: StockError) -> ApiError {
    match e {
        StockError::UnknownPart(_) | StockError::UnknownWarehouse(_) => ApiError::NotFound(e.to_string()),
        StockError::Conflict(m) => ApiError::Conflict(m),
        StockError::Store(s) => s.into(),
    }
}

async fn escalate(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Escalation>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let (w, _) = flow::escalate(&state.db, &state.config.sla, w.id, &p.actor(), req).await.map_err(flow_error)?;
    // Auto-assignment runs after the escalation has committed and been acknowledged.
    let st = state.clone();
    let wid = w.id;
    tokio::spawn(async move { auto_assign(&st, wid).await });
    Ok(Json(w.into()))
}

/// Everything the technician needs so nobody asks the customer again.
#[derive(Serialize)]
pub struct Dossier {
    work_order: WorkOrderView,
    customer: Option<Customer>,
    site: Option<Site>,
    asset: Option<Asset>,
    product_line: Option<String>,
    diagnosis: DiagnosisView,
    /// Photos, snapshots and telemetry files attached to the work order.
    evidence: Vec<evidence::Evidence>,
    /// The escalation records (reason, availability, suggested parts), oldest first.
    escalations: Vec<EventView>,
    /// Live-session outcomes, repair steps tried and their answers, visit reports.
    history: Vec<EventView>,
    reservations: Vec<Reservation>,
    assignments: Vec<Assignment>,
    /// The procedure for the visit: the onsite procedure of the most likely fault on the
    /// asset's product line, else the one pushed in the remote session.
    procedure: Option<crate::guidance::store::StoredProcedure>,
    /// The visit's checklist: that procedure's steps (both languages).
    checklist: Vec<ChecklistStep>,
    /// Parts that procedure needs (the diagnosis's suggestion), with names.
    suggested_parts: Vec<Part>,
}

#[derive(Serialize)]
pub struct ChecklistStep {
    en: String,
    zh: String,
    check_en: String,
    check_zh: String,
}

/// The onsite procedure for a work order: for the fused diagnosis's top hypotheses
/// (confidence >= 0.2), the first procedure on the asset's line that is not remote
/// (an onsite job), else the first one; failing that, the last one pushed in a session.
async fn visit_procedure(
    state: &AppState,
    hypotheses: &[crate::diagnosis::fusion::RankedFault],
    product_line: Option<&str>,
    started: Option<(String, u32)>,
) -> Result<Option<crate::guidance::store::StoredProcedure>, ApiError> {
    for h in hypotheses.iter().filter(|h| h.confidence >= 0.2).take(3) {
        let procs = crate::guidance::store::for_fault(&state.db, &h.fault_id, product_line).await?;
        if let Some(p) = procs.iter().find(|p| !p.procedure.remote_ok).or(procs.first()) {
            return Ok(Some(p.clone()));
        }
    }
    match started {
        Some((id, version)) => Ok(crate::guidance::store::get(&state.db, &id, Some(version)).await?),
        None => Ok(None),
    }
}

async fn dossier(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<Dossier>, ApiError> {
    use crate::customers::repo as c;
    let w = visible(&state, &p, &id).await?;
    let asset = match w.asset_id {
        Some(a) => c::asset(&state.db, a).await?,
        None => None,
    };
    let site_id = w.site_id.or(asset.as_ref().and_then(|a| a.site_id));
    let site = match site_id {
        Some(s) => c::site(&state.db, s).await?,
        None => None,
    };
    let product_line = match &asset {
        Some(a) => c::product_line(&state.db, a.product_line_id).await?.map(|p| p.code),
        None => None,
    };
    let events = repo::all_events(&state.db, w.id).await?;
    let mut escalations = Vec::new();
    let mut history = Vec::new();
    let mut started = None;
    for e in events {
        if let Event::ProcedureStarted { procedure_id, version } = &e.event {
            started = Some((procedure_id.clone(), *version));
        }
        match &e.event {
            Event::ProcedureStarted { .. } | Event::StepAnswered { .. } | Event::ProcedureFinished { .. } => history.push(e.into()),
            Event::EscalationRecorded { .. } => escalations.push(e.into()),
            Event::SessionEnded { .. }
            | Event::NoteAdded { .. }
            | Event::VisitReport { .. }
            | Event::PartsReserved { .. }
            | Event::PartsConsumed { .. }
            | Event::AssignmentAnswered { .. } => history.push(e.into()),
            _ => {}
        }
    }
    let diagnosis = diagnosis_of(&state, &w).await?;
    let procedure = visit_procedure(&state, &diagnosis.hypotheses, product_line.as_deref(), started).await?;
    let checklist = procedure
        .iter()
        .flat_map(|p| &p.procedure.steps)
        .map(|s| ChecklistStep { en: s.instruction_en.clone(), zh: s.instruction_zh.clone(), check_en: s.check_en.clone(), check_zh: s.check_zh.clone() })
        .collect();
    let mut suggested_parts = Vec::new();
    for sku in procedure.iter().flat_map(|p| p.procedure.parts()) {
        if let Some(part) = parts::part(&state.db, sku).await? {
            suggested_parts.push(part);
        }
    }
    Ok(Json(Dossier {
        diagnosis,
        procedure,
        checklist,
        suggested_parts,
        customer: c::customer(&state.db, w.customer_id).await?,
        evidence: evidence::list(&state.db, w.id).await?,
        reservations: parts::reservations(&state.db, w.id).await?,
        assignments: flow::assignments(&state.db, None, Some(w.id), false).await?,
        work_order: w.into(),
        site,
        asset,
        product_line,
        escalations,
        history,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateQuery {
    limit: Option<u32>,
    /// Also list the excluded technicians with the reason.
    all: Option<bool>,
}

/// A candidate with the technician's name.
#[derive(Serialize)]
pub struct CandidateView {
    #[serde(flatten)]
    candidate: Candidate,
    display_name: String,
    arrival: Option<String>,
    finish: Option<String>,
}

#[derive(Serialize)]
pub struct CandidateList {
    work_order_id: WorkOrderId,
    items: Vec<CandidateView>,
}

async fn ranked(state: &AppState, w: &WorkOrder, limit: usize, all: bool) -> Result<Vec<CandidateView>, ApiError> {
    let now = crate::now_millis();
    let list = flow::candidates(&state.db, &state.config.dispatch, w, now, limit, all).await?;
    let names: std::collections::HashMap<String, String> =
        technicians::list(&state.db).await?.into_iter().map(|t| (t.user_id.to_string(), t.display_name)).collect();
    Ok(list
        .into_iter()
        .map(|c| CandidateView {
            display_name: names.get(&c.technician_id).cloned().unwrap_or_default(),
            arrival: c.arrival_at.map(crate::rfc3339),
            finish: c.finish_at.map(crate::rfc3339),
            candidate: c,
        })
        .collect())
}

async fn candidates(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CandidateQuery>,
) -> Result<Json<CandidateList>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let limit = q.limit.unwrap_or(10).clamp(1, 100) as usize;
    Ok(Json(CandidateList { work_order_id: w.id, items: ranked(&state, &w, limit, q.all.unwrap_or(false)).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    technician_id: String,
}

async fn assign(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<(StatusCode, Json<Assignment>), ApiError> {
    let w = visible(&state, &p, &id).await?;
    let tech: UserId = extract::id(&req.technician_id, "technician")?;
    // The score is recomputed here, never taken from the client.
    let ranked = flow::candidates(&state.db, &state.config.dispatch, &w, crate::now_millis(), usize::MAX, true).await?;
    let candidate = ranked.iter().find(|c| c.technician_id == tech.to_string());
    if let Some(reason) = candidate.and_then(|c| c.excluded.as_deref()) {
        return Err(ApiError::Conflict(format!("the technician cannot take this job: {reason}")));
    }
    let a = flow::offer(&state.db, &state.config.sla, w.id, tech, candidate, false, &p.actor()).await.map_err(flow_error)?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Offers an escalated work order to its best technician when its priority is one of
/// the configured auto-assign priorities. Errors are logged: the dispatcher still sees
/// the work order on the board.
pub async fn auto_assign(state: &AppState, id: WorkOrderId) {
    let cfg = &state.config.dispatch;
    let Ok(Some(w)) = repo::get(&state.db, id).await else { return };
    if w.status != Status::Escalated || !cfg.auto_assign_priorities.iter().any(|p| p == w.priority.as_str()) {
        return;
    }
    let declined: Vec<String> = match flow::assignments(&state.db, None, Some(id), false).await {
        Ok(a) => a.into_iter().filter(|a| a.status == "declined").map(|a| a.technician_id.to_string()).collect(),
        Err(_) => return,
    };
    let Ok(ranked) = flow::candidates(&state.db, cfg, &w, crate::now_millis(), 20, false).await else { return };
    let Some(best) = ranked.iter().find(|c| !declined.contains(&c.technician_id)) else {
        tracing::info!(work_order = %id, "auto-assign: no eligible technician left; left to the dispatcher");
        return;
    };
    let Ok(tech) = best.technician_id.parse::<UserId>() else { return };
    let actor = crate::work_orders::events::Actor::SYSTEM;
    match flow::offer(&state.db, &state.config.sla, id, tech, Some(best), true, &actor).await {
        Ok(a) => tracing::info!(work_order = %id, assignment = %a.id, "auto-assigned"),
        Err(e) => tracing::warn!(work_order = %id, error = %e, "auto-assign failed; left to the dispatcher"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
    technician_id: Option<String>,
}

#[derive(Serialize)]
pub struct AssignmentList {
    items: Vec<Assignment>,
}

async fn list_assignments(State(state): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<AssignmentQuery>) -> Result<Json<AssignmentList>, ApiError> {
    let open_only = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => return Err(ApiError::Validation(format!("state must be open or all, not `{other}`"))),
    };
    // Technicians see their own jobs only.
    let tech = if p.role == Role::Technician {
        p.user_id
    } else {
        q.technician_id.as_deref().map(|t| extract::id(t, "technician")).transpose()?
    };
    Ok(Json(AssignmentList { items: flow::assignments(&state.db, tech, None, open_only).await? }))
}

/// The technician acting, or None for an admin acting on their behalf.
fn acting_technician(p: &Principal) -> Option<UserId> {
    if p.role == Role::Technician {
        p.user_id
    } else {
        None
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    accept: bool,
    reason: Option<String>,
}

async fn answer(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AnswerRequest>,
) -> Result<Json<Assignment>, ApiError> {
    let reason = extract::opt_text("reason", req.reason.as_deref(), 1000)?;
    let a = flow::answer(&state.db, &state.config.sla, &id, acting_technician(&p), req.accept, reason, &p.actor()).await.map_err(flow_error)?;
    if !req.accept {
        let state = state.clone();
        let wid = a.work_order_id;
        tokio::spawn(async move { auto_assign(&state, wid).await });
    }
    Ok(Json(a))
}

async fn withdraw(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<Assignment>, ApiError> {
    Ok(Json(flow::withdraw(&state.db, &state.config.sla, &id, &p.actor()).await.map_err(flow_error)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressRequest {
    stage: String,
}

async fn progress(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ProgressRequest>,
) -> Result<Json<Assignment>, ApiError> {
    Ok(Json(flow::progress(&state.db, &state.config.sla, &id, acting_technician(&p), &req.stage, &p.actor()).await.map_err(flow_error)?))
}

async fn report(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<VisitReport>,
) -> Result<Json<Assignment>, ApiError> {
    let a = flow::complete(&state.db, &state.config.sla, &id, acting_technician(&p), req, &p.actor()).await.map_err(flow_error)?;
    let state2 = state.clone();
    let wid = a.work_order_id;
    // A not-fixed visit puts the work order back on the board: auto-assign may take it.
    tokio::spawn(async move { auto_assign(&state2, wid).await });
    Ok(Json(a))
}

/// One row of the dispatcher board.
#[derive(Serialize)]
pub struct BoardRow {
    work_order: WorkOrderView,
    assignment: Option<Assignment>,
    /// The top three technicians (only for work orders still waiting for one).
    candidates: Vec<CandidateView>,
}

#[derive(Serialize)]
pub struct Board {
    items: Vec<BoardRow>,
}

/// Work orders waiting for or in onsite service, most urgent first: breached ones on
/// top (their resolution deadline is the earliest), then by deadline, priority, tier.
async fn board(State(state): State<AppState>) -> Result<Json<Board>, ApiError> {
    let filter = repo::ListFilter { statuses: vec![Status::Escalated, Status::Scheduled, Status::OnSite], ..Default::default() };
    let (mut rows, _) = repo::list(&state.db, &filter, repo::SortKey::ResolutionDue, false, None, 200).await?;
    // Ties on the deadline: higher priority, then the more important tier.
    let tier_rank = |t: crate::customers::Tier| match t {
        crate::customers::Tier::Strategic => 0,
        crate::customers::Tier::Key => 1,
        crate::customers::Tier::Standard => 2,
    };
    rows.sort_by(|a, b| {
        (a.resolution_due, a.priority.as_str(), tier_rank(a.tier), a.id).cmp(&(b.resolution_due, b.priority.as_str(), tier_rank(b.tier), b.id))
    });
    let mut items = Vec::with_capacity(rows.len());
    for w in rows {
        let assignment = flow::assignments(&state.db, None, Some(w.id), true).await?.into_iter().next();
        let candidates = if w.status == Status::Escalated && assignment.is_none() { ranked(&state, &w, 3, false).await? } else { Vec::new() };
        items.push(BoardRow { work_order: w.into(), assignment, candidates });
    }
    Ok(Json(Board { items }))
}

#[derive(Serialize)]
pub struct TechnicianList {
    items: Vec<Profile>,
}

async fn list_technicians(State(state): State<AppState>) -> Result<Json<TechnicianList>, ApiError> {
    Ok(Json(TechnicianList { items: technicians::list(&state.db).await? }))
}

async fn put_technician(State(state): State<AppState>, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<ProfileUpdate>) -> Result<Json<Profile>, ApiError> {
    let user: UserId = extract::id(&id, "technician")?;
    req.validate().map_err(ApiError::Validation)?;
    match technicians::upsert(&state.db, user, &req).await {
        Ok(Some(p)) => Ok(Json(p)),
        Ok(None) => Err(ApiError::NotFound("no user with the technician role has this id".into())),
        Err(crate::store::StoreError::Sqlx(sqlx::Error::Database(d))) if d.message().to_lowercase().contains("check") => {
            Err(ApiError::Conflict("max_jobs cannot be lower than the technician's open jobs".into()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartQuery {
    product_line: Option<String>,
}

#[derive(Serialize)]
pub struct PartList {
    items: Vec<Part>,
}

async fn list_parts(State(state): State<AppState>, ApiQuery(q): ApiQuery<PartQuery>) -> Result<Json<PartList>, ApiError> {
    Ok(Json(PartList { items: parts::list_parts(&state.db, q.product_line.as_deref()).await? }))
}

#[derive(Serialize)]
pub struct WarehouseList {
    items: Vec<Warehouse>,
}

async fn list_warehouses(State(state): State<AppState>) -> Result<Json<WarehouseList>, ApiError> {
    Ok(Json(WarehouseList { items: parts::list_warehouses(&state.db).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWarehouse {
    code: String,
    name: String,
    region: String,
    latitude: f64,
    longitude: f64,
}

async fn create_warehouse(State(state): State<AppState>, ApiJson(req): ApiJson<NewWarehouse>) -> Result<(StatusCode, Json<Warehouse>), ApiError> {
    if !(-90.0..=90.0).contains(&req.latitude) || !(-180.0..=180.0).contains(&req.longitude) {
        return Err(ApiError::Validation("latitude must be in -90..=90 and longitude in -180..=180".into()));
    }
    let code = extract::text("code", &req.code, 32)?;
    if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::Validation("code may hold letters, digits and '-' only".into()));
    }
    let w = parts::create_warehouse(
        &state.db,
        parts::NewWarehouse {
            code,
            name: extract::text("name", &req.name, 200)?,
            region: extract::text("region", &req.region, 64)?,
            location: GeoPoint { latitude: req.latitude, longitude: req.longitude },
        },
    )
    .await
    .map_err(stock_error)?;
    Ok((StatusCode::CREATED, Json(w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockQuery {
    sku: Option<String>,
    warehouse: Option<String>,
    /// Only items below their reorder level.
    low: Option<bool>,
}

#[derive(Serialize)]
pub struct StockList {
    items: Vec<StockItem>,
}

async fn list_stock(State(state): State<AppState>, ApiQuery(q): ApiQuery<StockQuery>) -> Result<Json<StockList>, ApiError> {
    Ok(Json(StockList { items: parts::list_stock(&state.db, q.sku.as_deref(), q.warehouse.as_deref(), q.low.unwrap_or(false)).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    on_hand: i64,
    #[serde(default)]
    reorder_level: i64,
}

async fn put_stock(
    State(state): State<AppState>,
    ApiPath((warehouse, sku)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<StockBody>,
) -> Result<Json<StockItem>, ApiError> {
    if !(0..=1_000_000).contains(&req.on_hand) || !(0..=1_000_000).contains(&req.reorder_level) {
        return Err(ApiError::Validation("on_hand and reorder_level must be 0-1000000".into()));
    }
    Ok(Json(parts::set_stock(&state.db, &warehouse, &sku, req.on_hand, req.reorder_level).await.map_err(stock_error)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
}

#[derive(Serialize)]
pub struct AlertList {
    items: Vec<StockAlert>,
}

async fn list_alerts(State(state): State<AppState>, ApiQuery(q): ApiQuery<AlertQuery>) -> Result<Json<AlertList>, ApiError> {
    let open_only = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => return Err(ApiError::Validation(format!("state must be open or all, not `{other}`"))),
    };
    Ok(Json(AlertList { items: parts::list_alerts(&state.db, open_only).await? }))
}
