//! The route table: every route with the roles allowed, its summary and schemas.
//!
//! The authorization middleware enforces `access` for the matched route and refuses
//! any route that is missing here; the OpenAPI document and the route x role test are
//! generated from this same table, so they cannot drift from what is enforced.

use axum::http::Method;

use crate::auth::Role::{self, *};

/// Who may call a route.
#[derive(Clone, Copy, Debug)]
pub enum Access {
    /// No token needed (login, probes, the API document).
    Public,
    /// A valid access token whose role is listed.
    Roles(&'static [Role]),
}

#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Component schema of the JSON request body, if any.
    pub request: Option<&'static str>,
    /// Success status and component schema of the response body ("" for none).
    pub success: u16,
    pub response: &'static str,
}

pub const ALL: &[Role] = &[Customer, Expert, Dispatcher, Technician, Admin];
pub const STAFF: &[Role] = &[Expert, Dispatcher, Technician, Admin];
pub const DESK: &[Role] = &[Expert, Dispatcher, Admin];
pub const OFFICE: &[Role] = &[Dispatcher, Admin];
pub const ADMIN: &[Role] = &[Admin];
pub const OPENERS: &[Role] = &[Customer, Expert, Dispatcher, Admin];
/// Onsite work: dispatchers, technicians and admins.
pub const FIELD: &[Role] = &[Dispatcher, Technician, Admin];
/// A technician acting on their own assignment (or an admin on their behalf).
pub const TECH: &[Role] = &[Technician, Admin];
/// Who edits the knowledge base.
pub const EDITORS: &[Role] = &[Expert, Admin];

macro_rules! r {
    ($m:literal $p:literal, $a:expr, $op:literal, $sum:literal, $tag:literal, $req:expr, $st:literal $resp:literal) => {
        RouteSpec { method: $m, path: $p, access: $a, operation_id: $op, summary: $sum, tag: $tag, request: $req, success: $st, response: $resp }
    };
}

use Access::{Public, Roles};

pub const ROUTES: &[RouteSpec] = &[
    r!("GET" "/healthz", Public, "healthz", "Report that the process is alive", "ops", None, 200 "Health"),
    r!("GET" "/readyz", Public, "readyz", "Report whether the database is reachable and migrated", "ops", None, 200 "Health"),
    r!("GET" "/metrics", Public, "metrics", "Export Prometheus metrics", "ops", None, 200 ""),
    r!("GET" "/", Public, "page_console", "The expert console page", "pages", None, 200 ""),
    r!("GET" "/console", Public, "page_console_alias", "The expert console page", "pages", None, 200 ""),
    r!("GET" "/join", Public, "page_join", "The customer page (invite links open it)", "pages", None, 200 ""),
    r!("GET" "/favicon.ico", Public, "favicon", "No icon (204)", "pages", None, 204 ""),
    r!("GET" "/web/{*path}", Public, "page_asset", "A web page asset (script, style)", "pages", None, 200 ""),
    r!("GET" "/api/v1/openapi.json", Public, "openapi", "Get the OpenAPI document", "ops", None, 200 ""),
    r!("GET" "/api/v1/signal", Public, "signal", "Open the signaling WebSocket (authenticate in-band with `auth`)", "live", None, 101 ""),
    r!("POST" "/api/v1/auth/login", Public, "login", "Log in with user name and password", "auth", Some("LoginRequest"), 200 "TokenResponse"),
    r!("POST" "/api/v1/auth/refresh", Public, "refresh", "Exchange a refresh token for new tokens", "auth", Some("RefreshRequest"), 200 "TokenResponse"),
    r!("POST" "/api/v1/auth/invite", Public, "redeem_invite", "Redeem a customer invite link", "auth", Some("InviteRedeemRequest"), 200 "TokenResponse"),
    r!("POST" "/api/v1/auth/logout", Roles(ALL), "logout", "Log out and revoke the session", "auth", None, 204 ""),
    r!("GET" "/api/v1/me", Roles(ALL), "me", "Get the caller", "auth", None, 200 "Me"),
    r!("POST" "/api/v1/me/password", Roles(ALL), "change_password", "Change one's own password", "auth", Some("ChangePasswordRequest"), 204 ""),
    r!("GET" "/api/v1/users", Roles(ADMIN), "list_users", "List users", "users", None, 200 "UserPage"),
    r!("POST" "/api/v1/users", Roles(ADMIN), "create_user", "Create a user", "users", Some("NewUser"), 201 "User"),
    r!("GET" "/api/v1/users/{id}", Roles(ADMIN), "get_user", "Get a user", "users", None, 200 "User"),
    r!("POST" "/api/v1/users/{id}/password", Roles(ADMIN), "reset_password", "Reset a user's password", "users", Some("ResetPasswordRequest"), 204 ""),
    r!("GET" "/api/v1/users/{id}/skills", Roles(ADMIN), "get_expert_skills", "Get the product lines an expert takes calls for", "users", None, 200 "ExpertSkills"),
    r!("PUT" "/api/v1/users/{id}/skills", Roles(ADMIN), "put_expert_skills", "Set the product lines an expert takes calls for (empty: every line)", "users", Some("ExpertSkills"), 200 "ExpertSkills"),
    r!("GET" "/api/v1/customers", Roles(STAFF), "list_customers", "List customers", "customers", None, 200 "CustomerPage"),
    r!("POST" "/api/v1/customers", Roles(OFFICE), "create_customer", "Create a customer", "customers", Some("NewCustomer"), 201 "Customer"),
    r!("GET" "/api/v1/customers/{id}", Roles(ALL), "get_customer", "Get a customer", "customers", None, 200 "Customer"),
    r!("GET" "/api/v1/customers/{id}/sites", Roles(ALL), "list_sites", "List a customer's sites", "customers", None, 200 "SiteList"),
    r!("POST" "/api/v1/customers/{id}/sites", Roles(OFFICE), "create_site", "Add a site to a customer", "customers", Some("NewSite"), 201 "Site"),
    r!("GET" "/api/v1/assets", Roles(ALL), "list_assets", "List assets", "assets", None, 200 "AssetPage"),
    r!("POST" "/api/v1/assets", Roles(OFFICE), "create_asset", "Register an asset", "assets", Some("NewAsset"), 201 "Asset"),
    r!("GET" "/api/v1/assets/{id}", Roles(ALL), "get_asset", "Get an asset", "assets", None, 200 "Asset"),
    r!("GET" "/api/v1/product-lines", Roles(ALL), "list_product_lines", "List product lines", "product-lines", None, 200 "ProductLineList"),
    r!("POST" "/api/v1/product-lines", Roles(ADMIN), "create_product_line", "Create a product line", "product-lines", Some("NewProductLine"), 201 "ProductLine"),
    r!("GET" "/api/v1/product-lines/{id}", Roles(ALL), "get_product_line", "Get a product line with its fault codes", "product-lines", None, 200 "ProductLineDetail"),
    r!("PUT" "/api/v1/product-lines/{id}/fault-codes/{code}", Roles(ADMIN), "put_fault_code", "Create or replace a fault code", "product-lines", Some("FaultCodeBody"), 200 "FaultCode"),
    r!("GET" "/api/v1/sla-policy", Roles(STAFF), "get_sla_policy", "Get the SLA policy in force", "work-orders", None, 200 "SlaPolicy"),
    r!("GET" "/api/v1/work-orders", Roles(ALL), "list_work_orders", "List work orders", "work-orders", None, 200 "WorkOrderPage"),
    r!("POST" "/api/v1/work-orders", Roles(OPENERS), "create_work_order", "Open a work order", "work-orders", Some("NewWorkOrder"), 201 "WorkOrder"),
    r!("GET" "/api/v1/work-orders/{id}", Roles(ALL), "get_work_order", "Get a work order", "work-orders", None, 200 "WorkOrder"),
    r!("PATCH" "/api/v1/work-orders/{id}", Roles(DESK), "update_work_order", "Change a work order's priority", "work-orders", Some("WorkOrderPatch"), 200 "WorkOrder"),
    r!("POST" "/api/v1/work-orders/{id}/transitions", Roles(ALL), "transition_work_order", "Move a work order to another state", "work-orders", Some("TransitionRequest"), 200 "WorkOrder"),
    r!("POST" "/api/v1/work-orders/{id}/notes", Roles(ALL), "add_note", "Add a note to a work order", "work-orders", Some("NoteRequest"), 201 "Event"),
    r!("GET" "/api/v1/work-orders/{id}/events", Roles(ALL), "list_events", "Read a work order's event log", "work-orders", None, 200 "EventPage"),
    r!("POST" "/api/v1/work-orders/{id}/evidence", Roles(ALL), "upload_evidence", "Attach a photo, telemetry file or snapshot", "work-orders", None, 201 "Evidence"),
    r!("GET" "/api/v1/work-orders/{id}/evidence", Roles(ALL), "list_evidence", "List a work order's evidence", "work-orders", None, 200 "EvidenceList"),
    r!("GET" "/api/v1/work-orders/{id}/evidence/{evidence_id}", Roles(ALL), "download_evidence", "Download one evidence file", "work-orders", None, 200 ""),
    r!("POST" "/api/v1/work-orders/{id}/invites", Roles(DESK), "create_invite", "Create a customer invite link for a work order", "work-orders", Some("InviteRequest"), 201 "Invite"),
    r!("GET" "/api/v1/work-orders/{id}/evidence/{evidence_id}/explanation", Roles(ALL), "explain_evidence", "Which region of a photo or snapshot drove its classification (occlusion map)", "diagnosis", None, 200 "Explanation"),
    r!("GET" "/api/v1/work-orders/{id}/diagnosis", Roles(ALL), "get_diagnosis", "Get the fused, ranked diagnosis of a work order", "diagnosis", None, 200 "Diagnosis"),
    r!("POST" "/api/v1/assets/{id}/telemetry", Roles(STAFF), "ingest_telemetry", "Ingest a vibration recording of an asset (gateways); persistent faults open a work order", "diagnosis", None, 200 "TelemetryIngest"),
    r!("POST" "/api/v1/work-orders/{id}/whip", Roles(ALL), "whip_ingest", "Publish into a live session over WHIP (RFC 9725): body application/sdp", "live", None, 201 ""),
    r!("POST" "/api/v1/work-orders/{id}/whep", Roles(ALL), "whep_play", "Play a live session over WHEP: body application/sdp", "live", None, 201 ""),
    r!("DELETE" "/api/v1/media/{resource}", Roles(ALL), "media_delete", "End a WHIP or WHEP resource", "live", None, 200 ""),
    r!("PATCH" "/api/v1/media/{resource}", Roles(ALL), "media_patch", "Trickle/restart a WHIP or WHEP resource (not supported: 405)", "live", None, 405 ""),
    r!("GET" "/api/v1/models", Roles(STAFF), "list_models", "List the diagnosis models in service", "diagnosis", None, 200 "ModelList"),
    r!("POST" "/api/v1/work-orders/{id}/escalate", Roles(DESK), "escalate_work_order", "Escalate a work order to onsite service, reserving the parts it needs", "dispatch", Some("EscalateRequest"), 200 "WorkOrder"),
    r!("GET" "/api/v1/work-orders/{id}/dossier", Roles(STAFF), "get_dossier", "Get everything known about a work order for the onsite visit", "dispatch", None, 200 "Dossier"),
    r!("GET" "/api/v1/work-orders/{id}/candidates", Roles(OFFICE), "list_candidates", "Rank technicians for a work order with the score broken down", "dispatch", None, 200 "CandidateList"),
    r!("POST" "/api/v1/work-orders/{id}/assignments", Roles(OFFICE), "assign_technician", "Offer a work order to a technician", "dispatch", Some("AssignRequest"), 201 "Assignment"),
    r!("GET" "/api/v1/assignments", Roles(FIELD), "list_assignments", "List assignments (a technician sees their own)", "dispatch", None, 200 "AssignmentList"),
    r!("POST" "/api/v1/assignments/{id}/answer", Roles(TECH), "answer_assignment", "Accept or decline an offered job", "dispatch", Some("AnswerRequest"), 200 "Assignment"),
    r!("POST" "/api/v1/assignments/{id}/withdraw", Roles(OFFICE), "withdraw_assignment", "Take an offer or a planned job back", "dispatch", None, 200 "Assignment"),
    r!("POST" "/api/v1/assignments/{id}/progress", Roles(TECH), "visit_progress", "Report being en route or on site", "dispatch", Some("ProgressRequest"), 200 "Assignment"),
    r!("POST" "/api/v1/assignments/{id}/report", Roles(TECH), "visit_report", "Report the visit: checklist, parts used, sign-off, outcome", "dispatch", Some("VisitReport"), 200 "Assignment"),
    r!("GET" "/api/v1/dispatch/board", Roles(OFFICE), "dispatch_board", "Work orders waiting for or in onsite service, most urgent first, with suggested technicians", "dispatch", None, 200 "Board"),
    r!("GET" "/api/v1/technicians", Roles(OFFICE), "list_technicians", "List technician profiles", "dispatch", None, 200 "TechnicianList"),
    r!("PUT" "/api/v1/technicians/{id}", Roles(OFFICE), "put_technician", "Create or replace a technician's profile (skills, base, region, hours, job limit)", "dispatch", Some("TechnicianProfile"), 200 "Technician"),
    r!("GET" "/api/v1/parts", Roles(STAFF), "list_parts", "List the spare-parts catalogue", "parts", None, 200 "PartList"),
    r!("GET" "/api/v1/warehouses", Roles(STAFF), "list_warehouses", "List warehouses", "parts", None, 200 "WarehouseList"),
    r!("POST" "/api/v1/warehouses", Roles(ADMIN), "create_warehouse", "Create a warehouse serving a region", "parts", Some("NewWarehouse"), 201 "Warehouse"),
    r!("GET" "/api/v1/stock", Roles(STAFF), "list_stock", "List stock per warehouse and part", "parts", None, 200 "StockList"),
    r!("PUT" "/api/v1/stock/{warehouse}/{sku}", Roles(ADMIN), "put_stock", "Set the counted stock and reorder level of a part in a warehouse", "parts", Some("StockBody"), 200 "StockItem"),
    r!("GET" "/api/v1/stock-alerts", Roles(OFFICE), "list_stock_alerts", "List safety-stock alerts", "parts", None, 200 "StockAlertList"),
    r!("GET" "/api/v1/surveys/{token}", Public, "get_survey", "Open a satisfaction survey by its link token", "surveys", None, 200 "Survey"),
    r!("POST" "/api/v1/surveys/{token}", Public, "answer_survey", "Answer a satisfaction survey (1-5, comment; a complaint reopens the work order)", "surveys", Some("SurveyAnswer"), 200 "SurveyResult"),
    r!("GET" "/api/v1/follow-ups", Roles(DESK), "list_follow_ups", "List due follow-up calls (complaints first)", "surveys", None, 200 "FollowUpList"),
    r!("POST" "/api/v1/follow-ups/{id}/done", Roles(DESK), "follow_up_done", "Mark a follow-up call done", "surveys", Some("FollowUpDone"), 200 "FollowUp"),
    r!("GET" "/survey", Public, "page_survey", "The customer's satisfaction survey page", "pages", None, 200 ""),
    r!("GET" "/api/v1/procedures", Roles(STAFF), "search_procedures", "Search repair procedures by symptom text, fault code, fault or product line", "guidance", None, 200 "ProcedureHitList"),
    r!("GET" "/api/v1/procedures/{id}", Roles(STAFF), "get_procedure", "Get a repair procedure (current or a given version)", "guidance", None, 200 "Procedure"),
    r!("PUT" "/api/v1/procedures/{id}", Roles(EDITORS), "put_procedure", "Store an edited procedure as its next version", "guidance", Some("ProcedureEdit"), 200 "Procedure"),
    r!("GET" "/api/v1/procedures/{id}/versions", Roles(STAFF), "list_procedure_versions", "List every version of a procedure", "guidance", None, 200 "ProcedureVersionList"),
    r!("GET" "/api/v1/work-orders/{id}/procedures", Roles(STAFF), "suggest_procedures", "Procedures proposed by the work order's diagnosis", "guidance", None, 200 "ProcedureSuggestions"),
    r!("GET" "/api/v1/knowledge/images/{*path}", Public, "knowledge_image", "A reference drawing of the knowledge base", "guidance", None, 200 ""),
    r!("GET" "/api/v1/webhooks", Roles(ADMIN), "list_webhooks", "List webhook endpoints (never their secrets)", "webhooks", None, 200 "WebhookList"),
    r!("POST" "/api/v1/webhooks", Roles(ADMIN), "create_webhook", "Register a webhook endpoint; the response holds its signing secret, shown only once", "webhooks", Some("NewWebhook"), 201 "CreatedWebhook"),
    r!("PATCH" "/api/v1/webhooks/{id}", Roles(ADMIN), "update_webhook", "Change a webhook endpoint's description, event kinds or active flag", "webhooks", Some("WebhookPatch"), 200 "Webhook"),
    r!("DELETE" "/api/v1/webhooks/{id}", Roles(ADMIN), "delete_webhook", "Delete a webhook endpoint with its secret and delivery log", "webhooks", None, 204 ""),
    r!("GET" "/api/v1/webhooks/{id}/deliveries", Roles(ADMIN), "list_webhook_deliveries", "Read a webhook endpoint's delivery log, newest first", "webhooks", None, 200 "WebhookDeliveryPage"),
    r!("POST" "/api/v1/webhooks/{id}/test", Roles(ADMIN), "test_webhook", "Queue a signed webhook.ping delivery to an endpoint", "webhooks", None, 202 "WebhookDelivery"),
    r!("GET" "/api/v1/kpis", Roles(OFFICE), "get_kpis", "Service KPIs of the work orders created in a period (from, to: RFC 3339 or YYYY-MM-DD; group_by: region, product_line or expert)", "kpis", None, 200 "KpiReport"),
    r!("GET" "/dispatch", Public, "page_dispatch", "The dispatcher board page", "pages", None, 200 ""),
    r!("GET" "/technician", Public, "page_technician", "The onsite technician's page", "pages", None, 200 ""),
    r!("GET" "/admin", Public, "page_admin", "The service dashboard page (KPIs, follow-ups)", "pages", None, 200 ""),
];

/// The declared route for a method and matched path.
pub fn find(method: &Method, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.path == path && r.method == method.as_str())
}
