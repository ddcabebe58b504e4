//! Work orders: open, read, list, transitions, priority, notes, event log, evidence and
//! customer invite links.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath, ApiQuery, Page};
use super::AppState;
use crate::auth::tokens::Claims;
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::ids::{AssetId, CustomerId, EvidenceId, InviteId, SiteId, WorkOrderId};
use crate::work_orders::events::{Command, EventRecord};
use crate::work_orders::evidence::{self, EvidenceError, EvidenceKind};
use crate::work_orders::model::{Channel, Priority, Status, WorkOrder};
use crate::work_orders::repo::{self, AppendError, Cursor, ListFilter, SortKey};
use crate::work_orders::sla::SlaPolicy;

pub fn router(max_evidence_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/sla-policy", get(sla_policy))
        .route("/work-orders", get(list).post(create))
        .route("/work-orders/{id}", get(get_one).patch(update))
        .route("/work-orders/{id}/transitions", post(transition))
        .route("/work-orders/{id}/notes", post(add_note))
        .route("/work-orders/{id}/events", get(list_events))
        .route(
            "/work-orders/{id}/evidence",
            get(list_evidence).post(upload_evidence).layer(DefaultBodyLimit::max(max_evidence_bytes)),
        )
        .route("/work-orders/{id}/evidence/{evidence_id}", get(download_evidence))
        .route("/work-orders/{id}/evidence/{evidence_id}/explanation", get(explain_evidence))
        .route("/work-orders/{id}/invites", post(create_invite))
        .route("/work-orders/{id}/diagnosis", get(get_diagnosis))
        .route("/models", get(list_models))
}

pub fn append_error(e: AppendError) -> ApiError {
    match e {
        AppendError::NotFound => ApiError::not_found("work order"),
        AppendError::Decide(d) => d.into(),
        AppendError::Store(s) => s.into(),
    }
}

/// A work order as the API shows it.
#[derive(Serialize)]
pub struct WorkOrderView {
    #[serde(flatten)]
    inner: WorkOrder,
    /// Unresolved past its resolution deadline.
    sla_breached: bool,
}

impl From<WorkOrder> for WorkOrderView {
    fn from(w: WorkOrder) -> Self {
        let open = w.resolved_at.is_none() && !crate::work_orders::lifecycle::is_terminal(w.status);
        WorkOrderView {
            sla_breached: open && crate::now_millis() > w.resolution_due,
            inner: w,
        }
    }
}

/// An event as the API shows it.
#[derive(Serialize)]
pub struct EventView {
    seq: i64,
    kind: &'static str,
    actor: String,
    actor_role: Option<Role>,
    occurred_at: String,
    payload: crate::work_orders::events::Event,
}

impl From<EventRecord> for EventView {
    fn from(r: EventRecord) -> Self {
        EventView {
            seq: r.seq,
            kind: r.event.kind(),
            actor: r.actor.who.to_string(),
            actor_role: r.actor.role,
            occurred_at: crate::rfc3339(r.occurred_at),
            payload: r.event,
        }
    }
}

async fn sla_policy(State(state): State<AppState>) -> Json<SlaPolicy> {
    Json(state.config.sla)
}

/// Loads a work order the caller may see; 404 for others' work orders.
pub async fn visible(state: &AppState, p: &Principal, raw: &str) -> Result<WorkOrder, ApiError> {
    let id: WorkOrderId = extract::id(raw, "work order")?;
    let w = repo::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("work order"))?;
    if !p.may_see_work_order(w.id, w.customer_id) {
        return Err(ApiError::not_found("work order"));
    }
    Ok(w)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkOrder {
    customer_id: Option<String>,
    asset_id: Option<String>,
    site_id: Option<String>,
    title: String,
    description: Option<String>,
    channel: Option<Channel>,
    priority: Option<Priority>,
    #[serde(default)]
    fault_codes: Vec<String>,
}

const MAX_FAULT_CODES: usize = 32;

async fn create(State(state): State<AppState>, p: Principal, ApiJson(req): ApiJson<NewWorkOrder>) -> Result<(StatusCode, Json<WorkOrderView>), ApiError> {
    let title = extract::text("title", &req.title, 200)?;
    let description = extract::opt_text("description", req.description.as_deref(), 10_000)?.unwrap_or_default();
    let asset_id: Option<AssetId> = req.asset_id.as_deref().map(|a| extract::id(a, "asset")).transpose()?;
    let site_id: Option<SiteId> = req.site_id.as_deref().map(|s| extract::id(s, "site")).transpose()?;
    let asked: Option<CustomerId> = req.customer_id.as_deref().map(|c| extract::id(c, "customer")).transpose()?;
    // Customers open work orders for themselves, through the portal, at normal priority
    // (triage sets the real one); staff say for whom and how it came in.
    let (customer_id, channel, priority) = if p.role == Role::Customer {
        if asked.is_some_and(|c| Some(c) != p.customer_id) {
            return Err(ApiError::Forbidden("customers open work orders for themselves only".into()));
        }
        if req.channel.is_some_and(|c| c != Channel::Portal) || req.priority.is_some() {
            return Err(ApiError::Forbidden("customers cannot set channel or priority".into()));
        }
        let c = p.customer_id.ok_or_else(|| ApiError::Forbidden("this login is not bound to a customer".into()))?;
        (c, Channel::Portal, Priority::P3)
    } else {
        let c = asked.ok_or_else(|| ApiError::Validation("customer_id is required".into()))?;
        (c, req.channel.unwrap_or(Channel::Phone), req.priority.unwrap_or(Priority::P3))
    };
    if p.work_order_scope.is_some() {
        return Err(ApiError::Forbidden("an invite login is bound to its work order".into()));
    }
    if req.fault_codes.len() > MAX_FAULT_CODES {
        return Err(ApiError::Validation(format!("at most {MAX_FAULT_CODES} fault codes")));
    }
    let mut fault_codes = Vec::with_capacity(req.fault_codes.len());
    for code in &req.fault_codes {
        fault_codes.push(extract::text("fault_codes[]", code, 64)?);
    }
    let customer = crate::customers::repo::customer(&state.db, customer_id)
        .await?
        .ok_or_else(|| ApiError::Validation("customer_id: no such customer".into()))?;
    if let Some(a) = asset_id {
        let asset = crate::customers::repo::asset(&state.db, a).await?.ok_or_else(|| ApiError::Validation("asset_id: no such asset".into()))?;
        if asset.customer_id != customer_id {
            return Err(ApiError::Validation("asset_id belongs to another customer".into()));
        }
    }
    if let Some(s) = site_id {
        let site = crate::customers::repo::site(&state.db, s).await?.ok_or_else(|| ApiError::Validation("site_id: no such site".into()))?;
        if site.customer_id != customer_id {
            return Err(ApiError::Validation("site_id belongs to another customer".into()));
        }
    }
    let new = repo::NewWorkOrder {
        customer_id,
        asset_id,
        site_id,
        title,
        description,
        channel,
        priority,
        tier: customer.tier,
        fault_codes,
    };
    let w = repo::create(&state.db, new, &p.actor(), &state.config.sla).await?;
    Ok((StatusCode::CREATED, Json(w.into())))
}

async fn get_one(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<WorkOrderView>, ApiError> {
    visible(&state, &p, &id).await.map(|w| Json(w.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated statuses.
    status: Option<String>,
    priority: Option<Priority>,
    channel: Option<Channel>,
    customer_id: Option<String>,
    asset_id: Option<String>,
    breached: Option<bool>,
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(State(state): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Json<Page<WorkOrderView>>, ApiError> {
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let (sort, desc) = SortKey::parse(q.sort.as_deref().unwrap_or("-created_at")).map_err(ApiError::BadRequest)?;
    let cursor: Option<Cursor> = q.cursor.as_deref().map(extract::decode_cursor).transpose()?;
    if let Some(c) = &cursor {
        if c.s != repo::sort_name(sort, desc) || !sort.accepts(&c.v) {
            return Err(ApiError::BadRequest("the cursor belongs to another sort order; start again without it".into()));
        }
    }
    let mut f = ListFilter {
        priority: q.priority,
        channel: q.channel,
        customer_id: q.customer_id.as_deref().map(|c| extract::id(c, "customer")).transpose()?,
        asset_id: q.asset_id.as_deref().map(|a| extract::id(a, "asset")).transpose()?,
        breached_at: q.breached.map(|b| (b, crate::now_millis())),
        ..Default::default()
    };
    if let Some(s) = q.status.as_deref() {
        for part in s.split(',').filter(|p| !p.is_empty()).take(Status::ALL.len()) {
            f.statuses.push(part.parse::<Status>().map_err(|e| ApiError::BadRequest(format!("status: {e}")))?);
        }
    }
    if p.role == Role::Customer {
        if f.customer_id.is_some_and(|c| Some(c) != p.customer_id) {
            return Ok(Json(Page { items: vec![], next_cursor: None }));
        }
        f.customer_id = p.customer_id;
        f.only_id = p.work_order_scope;
    }
    let (items, next) = repo::list(&state.db, &f, sort, desc, cursor.as_ref(), limit).await?;
    Ok(Json(Page {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor: next.map(|c| extract::encode_cursor(&c)),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderPatch {
    priority: Priority,
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<WorkOrderPatch>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let (w, _) = repo::append(&state.db, w.id, Command::ChangePriority { to: req.priority }, &p.actor(), &state.config.sla)
        .await
        .map_err(append_error)?;
    Ok(Json(w.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    to: Status,
    reason: Option<String>,
}

async fn transition(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TransitionRequest>,
) -> Result<Json<WorkOrderView>, ApiError> {
    let id: WorkOrderId = extract::id(&id, "work order")?;
    let reason = extract::opt_text("reason", req.reason.as_deref(), 2_000)?;
    if req.to == Status::Cancelled {
        // Cancelling also releases reserved parts and withdraws a live assignment.
        let w = crate::dispatch::flow::cancel(&state.db, &state.config.sla, id, reason, &p.actor(), |w| p.may_see_work_order(w.id, w.customer_id))
            .await
            .map_err(super::dispatch::flow_error)?;
        return Ok(Json(w.into()));
    }
    let cmd = Command::Transition { to: req.to, reason };
    let (w, _) = repo::append_if(&state.db, id, cmd, &p.actor(), &state.config.sla, |w| p.may_see_work_order(w.id, w.customer_id))
        .await
        .map_err(append_error)?;
    Ok(Json(w.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    text: String,
}

async fn add_note(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let text = extract::text("text", &req.text, 10_000)?;
    let id: WorkOrderId = extract::id(&id, "work order")?;
    let (_, rec) = repo::append_if(&state.db, id, Command::AddNote { text }, &p.actor(), &state.config.sla, |w| p.may_see_work_order(w.id, w.customer_id))
        .await
        .map_err(append_error)?;
    Ok((StatusCode::CREATED, Json(rec.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    after_seq: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct EventPage {
    items: Vec<EventView>,
    /// Pass as `after_seq` for the next page; None on the last page.
    next_after_seq: Option<i64>,
}

async fn list_events(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let items = repo::events(&state.db, w.id, q.after_seq.unwrap_or(0).max(0), limit).await?;
    let next_after_seq = (items.len() == limit as usize).then(|| items.last().map(|e| e.seq)).flatten();
    Ok(Json(EventPage { items: items.into_iter().map(Into::into).collect(), next_after_seq }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    kind: EvidenceKind,
    filename: Option<String>,
    /// Telemetry as CSV or raw float32: the sample rate (JSON carries its own).
    sample_rate_hz: Option<f64>,
    /// Telemetry as CSV or raw float32: the shaft speed.
    rpm: Option<f64>,
}

/// What an upload answers: the stored evidence and, when a model could look at it, the
/// model's verdict (and for telemetry the analysis the console plots).
#[derive(Serialize)]
pub struct EvidenceUpload {
    #[serde(flatten)]
    evidence: evidence::Evidence,
    diagnosis: Option<crate::diagnosis::ModelVerdict>,
    analysis: Option<crate::diagnosis::TelemetryAnalysis>,
}

pub fn diagnose_error(e: crate::diagnosis::DiagnoseError) -> ApiError {
    use crate::diagnosis::registry::InferError;
    use crate::diagnosis::DiagnoseError;
    match e {
        DiagnoseError::Image(e) => ApiError::Validation(e.to_string()),
        DiagnoseError::Signal(e) => ApiError::Validation(e.to_string()),
        DiagnoseError::Infer(InferError::Busy | InferError::Dropped) => {
            ApiError::Unavailable("the diagnosis workers are busy; retry shortly".into())
        }
        DiagnoseError::Infer(InferError::Closed) => ApiError::Unavailable("the server is shutting down".into()),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Reads a whole upload of at most `max` bytes: 413 past the limit, 400 when the
/// client breaks off.
pub async fn read_upload(body: Body, max: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) || e.to_string().contains("length limit") {
            EvidenceError::TooLarge(max).into_api()
        } else {
            ApiError::BadRequest(format!("could not read the upload: {e}"))
        }
    })
}

/// The body is the file itself; `Content-Type` says what it is (see evidence::allowed_types).
/// Photos and snapshots go through the image model, telemetry through the vibration
/// model, before anything is stored: an unreadable image or signal is a 422 and leaves
/// no trace; a full inference queue is a 503.
async fn upload_evidence(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EvidenceQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<EvidenceUpload>), ApiError> {
    let w = visible(&state, &p, &id).await?;
    let filename = extract::opt_text("filename", q.filename.as_deref(), 255)?;
    if filename.as_deref().is_some_and(|f| f.contains(['/', '\\', '\0'])) {
        return Err(ApiError::Validation("filename must not contain path separators".into()));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    // Refuse before reading a byte: a declared type that is never accepted, or a closed case.
    let ct = evidence::check_declared_type(q.kind, &ct).map_err(EvidenceError::into_api)?;
    if crate::work_orders::lifecycle::is_terminal(w.status) {
        return Err(ApiError::IllegalTransition(format!("the work order is {} and takes no further evidence", w.status)));
    }
    let max = state.config.limits.max_evidence_bytes;
    let bytes = read_upload(body, max).await?;
    if bytes.is_empty() {
        return Err(EvidenceError::Empty.into_api());
    }
    evidence::check_type(q.kind, &ct, &bytes[..bytes.len().min(16)]).map_err(EvidenceError::into_api)?;
    use crate::diagnosis::manifest::Task;
    let (verdict, analysis) = match q.kind {
        EvidenceKind::Photo | EvidenceKind::Snapshot => match state.diagnosis.for_task(Task::SurfaceDefectImage) {
            Some(model) => {
                let v = crate::diagnosis::diagnose_image(model, bytes.clone(), state.config.diagnosis.max_image_pixels, None)
                    .await
                    .map_err(diagnose_error)?;
                (Some(v), None)
            }
            None => (None, None),
        },
        EvidenceKind::Telemetry => match state.diagnosis.for_task(Task::BearingFaultVibration) {
            Some(model) => {
                let signal = crate::diagnosis::telemetry::Signal::parse(&ct, &bytes, q.sample_rate_hz, q.rpm)
                    .map_err(|e| ApiError::Validation(e.to_string()))?;
                let (v, a) = crate::diagnosis::diagnose_signal(model, signal).await.map_err(diagnose_error)?;
                (Some(v), Some(a))
            }
            None => (None, None),
        },
    };
    let blob = state.blobs.write_bytes(&bytes).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let ev = evidence::record(&state.db, w.id, q.kind, &ct, &blob, filename, &p.actor(), &state.config.sla, verdict.clone())
        .await
        .map_err(append_error)?;
    Ok((StatusCode::CREATED, Json(EvidenceUpload { evidence: ev, diagnosis: verdict, analysis })))
}

/// The fused diagnosis of a work order: every model verdict recorded on it plus the
/// fault codes reported with it, ranked.
#[derive(Serialize)]
pub struct DiagnosisView {
    pub work_order_id: WorkOrderId,
    pub hypotheses: Vec<crate::diagnosis::fusion::RankedFault>,
    /// Reported codes that the asset's product line does not know.
    pub unknown_fault_codes: Vec<String>,
}

async fn get_diagnosis(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<DiagnosisView>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    Ok(Json(diagnosis_of(&state, &w).await?))
}

/// The fused, ranked diagnosis of a work order from its diagnosis events and fault codes.
pub async fn diagnosis_of(state: &AppState, w: &WorkOrder) -> Result<DiagnosisView, ApiError> {
    use crate::diagnosis::fusion::{fuse, VerdictInput};
    use crate::work_orders::events::Event;
    let events = repo::all_events(&state.db, w.id).await?;
    let mut verdicts = Vec::new();
    for e in &events {
        if let Event::DiagnosisAdded { evidence_id, source, verdict } = &e.event {
            let src = evidence_id.map(|i| i.to_string()).unwrap_or_else(|| format!("event {}", e.seq));
            verdicts.push((source.clone(), src, verdict.clone()));
        }
    }
    let inputs: Vec<VerdictInput<'_>> = verdicts.iter().map(|(k, s, v)| VerdictInput { kind: k, source: s.clone(), verdict: v }).collect();
    let mut codes = Vec::new();
    let mut unknown_fault_codes = Vec::new();
    let known = match w.asset_id {
        Some(a) => match crate::customers::repo::asset(&state.db, a).await? {
            Some(asset) => crate::customers::repo::fault_codes(&state.db, asset.product_line_id).await?,
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    for code in &w.fault_codes {
        match known.iter().find(|f| &f.code == code) {
            Some(f) => codes.push((code.clone(), f.fault_id.clone())),
            None => unknown_fault_codes.push(code.clone()),
        }
    }
    Ok(DiagnosisView { work_order_id: w.id, hypotheses: fuse(&inputs, &codes), unknown_fault_codes })
}

/// The models in service, with their manifests (labels, thresholds, metrics).
async fn list_models(State(state): State<AppState>) -> Json<serde_json::Value> {
    let items: Vec<_> = state.diagnosis.models.iter().map(|m| &m.manifest).collect();
    Json(serde_json::json!({ "items": items }))
}

impl EvidenceError {
    fn into_api(self) -> ApiError {
        match self {
            EvidenceError::TypeNotAllowed { .. } | EvidenceError::ContentMismatch(_) => ApiError::UnsupportedMediaType(self.to_string()),
            EvidenceError::Empty => ApiError::Validation(self.to_string()),
            EvidenceError::TooLarge(_) => ApiError::PayloadTooLarge(self.to_string()),
        }
    }
}

#[derive(Serialize)]
pub struct EvidenceList {
    items: Vec<evidence::Evidence>,
}

async fn list_evidence(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<EvidenceList>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    Ok(Json(EvidenceList { items: evidence::list(&state.db, w.id).await? }))
}

async fn download_evidence(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((id, evidence_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let eid: EvidenceId = extract::id(&evidence_id, "evidence")?;
    let ev = evidence::get(&state.db, eid).await?.filter(|e| e.work_order_id == w.id).ok_or_else(|| ApiError::not_found("evidence"))?;
    let path = state.blobs.path_of(&ev.sha256).ok_or_else(|| ApiError::Internal("stored hash is malformed".into()))?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| ApiError::Internal(format!("evidence file {}: {e}", path.display())))?;
    let stream = tokio_util_stream(file);
    Ok((
        [
            (header::CONTENT_TYPE, ev.content_type.clone()),
            (header::CONTENT_LENGTH, ev.size_bytes.to_string()),
            (header::HeaderName::from_static("x-content-type-options"), "nosniff".to_owned()),
            (header::CONTENT_DISPOSITION, "attachment".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// What drove a piece of evidence's diagnosis, for the console to show: for a photo or
/// snapshot the region of the picture (occlusion sensitivity, see
/// `diagnosis::explain`), for telemetry the envelope spectrum with the bearing defect
/// frequencies marked (recomputed from the stored recording).
async fn explain_evidence(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((id, evidence_id)): ApiPath<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let w = visible(&state, &p, &id).await?;
    let eid: EvidenceId = extract::id(&evidence_id, "evidence")?;
    let ev = evidence::get(&state.db, eid).await?.filter(|e| e.work_order_id == w.id).ok_or_else(|| ApiError::not_found("evidence"))?;
    let path = state.blobs.path_of(&ev.sha256).ok_or_else(|| ApiError::Internal("stored hash is malformed".into()))?;
    if ev.kind == EvidenceKind::Telemetry {
        let model = state
            .diagnosis
            .for_task(crate::diagnosis::manifest::Task::BearingFaultVibration)
            .ok_or_else(|| ApiError::Unavailable("no vibration model is loaded (diagnosis is disabled)".into()))?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| ApiError::Internal(format!("evidence file {}: {e}", path.display())))?;
        // Rate and speed travel inside raw (FXV1) and JSON recordings; a CSV needs them
        // as upload parameters, which are not stored: such a recording cannot be redrawn.
        let signal = crate::diagnosis::telemetry::Signal::parse(&ev.content_type, &bytes, None, None)
            .map_err(|e| ApiError::Validation(format!("this recording cannot be re-analysed: {e}")))?;
        let (verdict, analysis) = crate::diagnosis::diagnose_signal(model, signal).await.map_err(diagnose_error)?;
        return Ok(Json(serde_json::json!({ "kind": "telemetry", "diagnosis": verdict, "analysis": analysis })));
    }
    let model = state
        .diagnosis
        .for_task(crate::diagnosis::manifest::Task::SurfaceDefectImage)
        .ok_or_else(|| ApiError::Unavailable("no image model is loaded (diagnosis is disabled)".into()))?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| ApiError::Internal(format!("evidence file {}: {e}", path.display())))?;
    let (max, weights) = (state.config.diagnosis.max_image_pixels, match &model.manifest.preprocessing {
        crate::diagnosis::manifest::Preprocessing::Image(p) => p.luma_weights,
        _ => [0.299, 0.587, 0.114],
    });
    let gray = tokio::task::spawn_blocking(move || crate::diagnosis::image::decode(&bytes, max, weights))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let grid = 4;
    let x = crate::diagnosis::explain::explain(model, gray, grid).await.map_err(diagnose_error)?;
    let mut v = serde_json::to_value(x).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["kind"] = serde_json::json!("image");
    Ok(Json(v))
}

/// Streams a file in 64 KiB chunks without an extra crate.
fn tokio_util_stream(file: tokio::fs::File) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Lifetime in seconds; at most the configured invite TTL.
    ttl_secs: Option<u64>,
}

#[derive(Serialize)]
pub struct InviteView {
    invite_id: InviteId,
    work_order_id: WorkOrderId,
    token: String,
    pub url: String,
    expires_at: String,
}

async fn create_invite(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<(StatusCode, Json<InviteView>), ApiError> {
    let w = visible(&state, &p, &id).await?;
    let uid = p.user_id.ok_or_else(|| ApiError::Forbidden("only staff accounts create invites".into()))?;
    let max = state.config.auth.invite_ttl_secs;
    let ttl = req.ttl_secs.unwrap_or(max);
    if ttl == 0 || ttl > max {
        return Err(ApiError::Validation(format!("ttl_secs must be between 1 and {max}")));
    }
    Ok((StatusCode::CREATED, Json(issue_invite(&state, w.id, uid, ttl, &p.actor()).await?)))
}

/// Creates a single-use invite link for a work order (recorded as an event).
pub async fn issue_invite(
    state: &AppState,
    wo: WorkOrderId,
    uid: crate::ids::UserId,
    ttl: u64,
    actor: &crate::work_orders::events::Actor,
) -> Result<InviteView, ApiError> {
    let now = crate::now_millis();
    let expires_at = now + ttl as i64 * 1000;
    let iid = InviteId::new();
    let mut tx = state.db.pool.begin().await?;
    // The append comes first: it locks the work order and refuses closed ones.
    repo::append_in(&mut tx, wo, Command::RecordInvite { invite_id: iid, expires_at }, actor, &state.config.sla, now)
        .await
        .map_err(append_error)?;
    crate::auth::repo::insert_invite(&mut tx, iid, wo, uid, now, expires_at).await?;
    tx.commit().await?;
    let token = state.key.sign(&Claims::Invite { iid, wo, exp: expires_at / 1000 });
    let url = format!("{}/join#token={token}", state.config.effective_public_url());
    Ok(InviteView { invite_id: iid, work_order_id: wo, token, url, expires_at: crate::rfc3339(expires_at) })
}
