//! The OpenAPI 3.1 document, generated from the route table (paths, operations,
//! security per route) plus the component schemas below.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::routes::{Access, ROUTES};
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "operationId": r.operation_id,
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": path_params(r.path),
            "responses": {},
        });
        let responses = op["responses"].as_object_mut().expect("responses is an object");
        let ok = if r.response.is_empty() {
            json!({ "description": "Success" })
        } else {
            json!({ "description": "Success", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{}", r.response) } } } })
        };
        responses.insert(r.success.to_string(), ok);
        let problem = json!({ "$ref": "#/components/responses/Problem" });
        for code in ["400", "404", "409", "413", "415", "422", "429"] {
            responses.insert(code.into(), problem.clone());
        }
        match r.access {
            Access::Public => {
                op["security"] = json!([]);
            }
            Access::Roles(roles) => {
                op["security"] = json!([{ "bearer": [] }]);
                op["x-roles"] = json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
                let responses = op["responses"].as_object_mut().expect("responses is an object");
                responses.insert("401".into(), problem.clone());
                responses.insert("403".into(), problem.clone());
            }
        }
        if let Some(req) = r.request {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{req}") } } } });
        }
        if r.operation_id == "ingest_telemetry" {
            op["parameters"].as_array_mut().expect("array").extend([
                json!({ "name": "sample_rate_hz", "in": "query", "schema": { "type": "number" } }),
                json!({ "name": "rpm", "in": "query", "schema": { "type": "number" } }),
            ]);
            op["requestBody"] = json!({ "required": true, "content": { "application/octet-stream": {}, "text/csv": {}, "application/json": {} } });
        }
        if r.operation_id == "upload_evidence" {
            op["parameters"].as_array_mut().expect("array").extend([
                json!({ "name": "kind", "in": "query", "required": true, "schema": { "enum": ["photo", "telemetry", "snapshot"] } }),
                json!({ "name": "filename", "in": "query", "schema": { "type": "string" } }),
                json!({ "name": "sample_rate_hz", "in": "query", "schema": { "type": "number" }, "description": "telemetry as CSV or raw float32" }),
                json!({ "name": "rpm", "in": "query", "schema": { "type": "number" }, "description": "telemetry as CSV or raw float32: shaft speed" }),
            ]);
            op["requestBody"] = json!({ "required": true, "content": {
                "image/jpeg": {}, "image/png": {}, "text/csv": {}, "application/json": {}, "application/octet-stream": {}
            } });
        }
        if r.method == "GET" && r.response.ends_with("Page") {
            op["parameters"].as_array_mut().expect("array").extend([
                json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1 } }),
                json!({ "name": "cursor", "in": "query", "schema": { "type": "string" } }),
            ]);
        }
        if r.operation_id == "list_customers" {
            op["parameters"].as_array_mut().expect("array").extend(
                ["tier", "q", "sort"].map(|n| json!({ "name": n, "in": "query", "schema": { "type": "string" } })),
            );
        }
        if r.operation_id == "list_work_orders" {
            op["parameters"].as_array_mut().expect("array").extend(
                ["status", "priority", "channel", "customer_id", "asset_id", "breached", "sort"]
                    .map(|n| json!({ "name": n, "in": "query", "schema": { "type": "string" } })),
            );
        }
        if r.operation_id == "list_webhook_deliveries" {
            op["parameters"].as_array_mut().expect("array").push(json!({ "name": "status", "in": "query", "schema": { "enum": ["pending", "delivered", "failed"] } }));
        }
        if r.operation_id == "get_kpis" {
            op["parameters"].as_array_mut().expect("array").extend([
                json!({ "name": "from", "in": "query", "schema": { "type": "string" }, "description": "RFC 3339 or YYYY-MM-DD (UTC); default 30 days before `to`" }),
                json!({ "name": "to", "in": "query", "schema": { "type": "string" }, "description": "RFC 3339 (exclusive) or YYYY-MM-DD (that day included); default now" }),
                json!({ "name": "group_by", "in": "query", "schema": { "enum": ["region", "product_line", "expert"] } }),
            ]);
        }
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "fixline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Remote-assist and diagnosis server. Errors are RFC 9457 problem+json. `x-roles` lists the roles each operation allows.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Problem": { "description": "An error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            },
            "schemas": merged(merged(merged(schemas(), dispatch_schemas()), webhook_schemas()), kpi_schemas()),
        }
    })
}

fn s(t: &str) -> Value {
    json!({ "type": t })
}

fn opt(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": props })
}

fn page(item: &str) -> Value {
    obj(&["items", "next_cursor"], json!({ "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } }, "next_cursor": opt("string") }))
}

fn list(item: &str) -> Value {
    obj(&["items"], json!({ "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } } }))
}

fn schemas() -> Value {
    let role = json!({ "enum": ["customer", "expert", "dispatcher", "technician", "admin"] });
    let tier = json!({ "enum": ["strategic", "key", "standard"] });
    let status = json!({ "enum": ["new", "triaged", "in_remote_session", "resolved_remote", "escalated", "scheduled", "on_site", "resolved_on_site", "closed", "cancelled"] });
    let priority = json!({ "enum": ["P1", "P2", "P3", "P4"] });
    let channel = json!({ "enum": ["portal", "invite", "phone", "telemetry_alert"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let target = obj(&["first_response_minutes", "resolution_minutes"], json!({ "first_response_minutes": s("integer"), "resolution_minutes": s("integer") }));
    let tier_targets = obj(&["p1", "p2", "p3", "p4"], json!({ "p1": target, "p2": target, "p3": target, "p4": target }));
    json!({
        "Problem": { "type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": s("string"), "title": s("string"), "status": s("integer"), "detail": s("string") } },
        "Health": { "type": "object", "properties": { "status": s("string"), "version": s("string") } },
        "LoginRequest": obj(&["username", "password"], json!({ "username": s("string"), "password": s("string") })),
        "RefreshRequest": obj(&["refresh_token"], json!({ "refresh_token": s("string") })),
        "InviteRedeemRequest": obj(&["token"], json!({ "token": s("string") })),
        "ChangePasswordRequest": obj(&["current_password", "new_password"], json!({ "current_password": s("string"), "new_password": { "type": "string", "minLength": 10 } })),
        "ResetPasswordRequest": obj(&["new_password"], json!({ "new_password": { "type": "string", "minLength": 10 } })),
        "TokenResponse": { "type": "object", "required": ["access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "role"], "properties": {
            "access_token": s("string"), "token_type": { "const": "Bearer" }, "expires_in": s("integer"),
            "refresh_token": s("string"), "refresh_expires_in": s("integer"), "role": role,
            "user_id": s("string"), "customer_id": s("string"), "work_order_id": s("string") } },
        "User": { "type": "object", "properties": { "id": s("string"), "username": s("string"), "display_name": s("string"), "role": role,
            "customer_id": opt("string"), "locale": { "enum": ["en", "zh-CN"] }, "disabled": s("boolean"), "created_at": time } },
        "Me": { "type": "object", "properties": { "role": role, "user": { "$ref": "#/components/schemas/User" }, "customer_id": opt("string"), "work_order_id": opt("string") } },
        "NewUser": obj(&["username", "display_name", "role", "password"], json!({ "username": { "type": "string", "pattern": "^[a-z0-9._-]{3,64}$" },
            "display_name": s("string"), "role": role, "password": { "type": "string", "minLength": 10 }, "customer_id": s("string"), "locale": { "enum": ["en", "zh-CN"] } })),
        "UserPage": page("User"),
        "Customer": { "type": "object", "properties": { "id": s("string"), "name": s("string"), "tier": tier, "contact_email": opt("string"),
            "contact_phone": opt("string"), "locale": s("string"), "created_at": time } },
        "NewCustomer": obj(&["name", "tier"], json!({ "name": s("string"), "tier": tier, "contact_email": s("string"), "contact_phone": s("string"), "locale": s("string") })),
        "CustomerPage": page("Customer"),
        "Site": { "type": "object", "properties": { "id": s("string"), "customer_id": s("string"), "name": s("string"), "address": s("string"),
            "latitude": s("number"), "longitude": s("number"), "timezone": s("string"), "region": opt("string"), "created_at": time } },
        "NewSite": obj(&["name", "address", "latitude", "longitude"], json!({ "name": s("string"), "address": s("string"),
            "latitude": { "type": "number", "minimum": -90, "maximum": 90 }, "longitude": { "type": "number", "minimum": -180, "maximum": 180 }, "timezone": s("string"), "region": s("string") })),
        "SiteList": list("Site"),
        "Asset": { "type": "object", "properties": { "id": s("string"), "customer_id": s("string"), "site_id": opt("string"), "product_line_id": s("string"),
            "model": s("string"), "serial_number": s("string"), "purchase_date": opt("string"), "warranty_until": opt("string"), "under_warranty": s("boolean"), "created_at": time } },
        "NewAsset": obj(&["customer_id", "product_line_id", "model", "serial_number"], json!({ "customer_id": s("string"), "site_id": s("string"),
            "product_line_id": s("string"), "model": s("string"), "serial_number": s("string"),
            "purchase_date": { "type": "string", "format": "date" }, "warranty_until": { "type": "string", "format": "date" } })),
        "AssetPage": page("Asset"),
        "ProductLine": { "type": "object", "properties": { "id": s("string"), "code": s("string"), "name_en": s("string"), "name_zh": s("string"), "category": s("string"), "created_at": time } },
        "NewProductLine": obj(&["code", "name_en", "name_zh", "category"], json!({ "code": s("string"), "name_en": s("string"), "name_zh": s("string"), "category": s("string") })),
        "ProductLineList": list("ProductLine"),
        "FaultCode": { "type": "object", "properties": { "code": s("string"), "fault_id": s("string"), "description_en": s("string"), "description_zh": s("string"),
            "severity": { "enum": ["info", "warning", "critical"] } } },
        "FaultCodeBody": obj(&["fault_id", "description_en", "description_zh", "severity"], json!({ "fault_id": s("string"), "description_en": s("string"),
            "description_zh": s("string"), "severity": { "enum": ["info", "warning", "critical"] } })),
        "ProductLineDetail": { "allOf": [{ "$ref": "#/components/schemas/ProductLine" }, { "type": "object", "properties": {
            "fault_codes": { "type": "array", "items": { "$ref": "#/components/schemas/FaultCode" } } } }] },
        "SlaPolicy": obj(&["strategic", "key", "standard"], json!({ "strategic": tier_targets, "key": tier_targets, "standard": tier_targets })),
        "WorkOrder": { "type": "object", "properties": { "id": s("string"), "customer_id": s("string"), "asset_id": opt("string"), "site_id": opt("string"),
            "title": s("string"), "description": s("string"), "channel": channel, "priority": priority, "tier": tier, "status": status,
            "fault_codes": { "type": "array", "items": s("string") }, "first_response_due": time,
            "resolution_due": time, "first_response_at": { "type": ["string", "null"], "format": "date-time" },
            "resolved_at": { "type": ["string", "null"], "format": "date-time" }, "sla_breached": s("boolean"),
            "created_by": opt("string"), "created_at": time, "updated_at": time, "version": s("integer") } },
        "NewWorkOrder": obj(&["title"], json!({ "customer_id": s("string"), "asset_id": s("string"), "site_id": s("string"), "title": s("string"),
            "description": s("string"), "channel": channel, "priority": priority, "fault_codes": { "type": "array", "maxItems": 32, "items": s("string") } })),
        "WorkOrderPatch": obj(&["priority"], json!({ "priority": priority })),
        "WorkOrderPage": page("WorkOrder"),
        "TransitionRequest": obj(&["to"], json!({ "to": status, "reason": s("string") })),
        "NoteRequest": obj(&["text"], json!({ "text": { "type": "string", "maxLength": 10000 } })),
        "Event": { "type": "object", "properties": { "seq": s("integer"), "kind": s("string"), "actor": s("string"), "actor_role": opt("string"),
            "occurred_at": time, "payload": { "type": "object" } } },
        "EventPage": obj(&["items", "next_after_seq"], json!({ "items": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } }, "next_after_seq": opt("integer") })),
        "Evidence": { "type": "object", "properties": { "id": s("string"), "work_order_id": s("string"), "kind": { "enum": ["photo", "telemetry", "snapshot"] },
            "content_type": s("string"), "sha256": s("string"), "size_bytes": s("integer"), "filename": opt("string"), "uploaded_by": s("string"), "created_at": time } },
        "EvidenceList": list("Evidence"),
        "Diagnosis": { "type": "object", "properties": { "work_order_id": s("string"), "unknown_fault_codes": { "type": "array", "items": s("string") },
            "hypotheses": { "type": "array", "items": { "type": "object", "properties": { "fault_id": s("string"), "confidence": s("number"),
                "evidence": { "type": "array", "items": { "type": "object", "properties": { "kind": s("string"), "source": s("string"),
                    "model": opt("string"), "probability": s("number"), "counted": s("boolean") } } } } } } } },
        "TelemetryIngest": { "type": "object", "properties": { "diagnosis": { "type": "object" }, "analysis": { "type": "object" },
            "alert": { "type": ["object", "null"] }, "work_order_id": opt("string"), "opened": s("boolean") } },
        "ModelList": { "type": "object", "properties": { "items": { "type": "array", "items": { "type": "object" } } } },
        "InviteRequest": obj(&[], json!({ "ttl_secs": { "type": "integer", "minimum": 1 } })),
        "Invite": { "type": "object", "properties": { "invite_id": s("string"), "work_order_id": s("string"), "token": s("string"), "url": s("string"), "expires_at": time } },
    })
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Escalation, dispatch and parts.
fn dispatch_schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let part_qty = obj(&["sku", "quantity"], json!({ "sku": s("string"), "quantity": { "type": "integer", "minimum": 1, "maximum": 1000 } }));
    let level = json!({ "enum": ["customer", "technician", "specialist"] });
    let point = obj(&["latitude", "longitude"], json!({ "latitude": s("number"), "longitude": s("number") }));
    let hours = obj(&["timezone", "days", "start_minute", "end_minute"], json!({ "timezone": s("string"),
        "days": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 7 } },
        "start_minute": { "type": "integer", "minimum": 0, "maximum": 1440 }, "end_minute": { "type": "integer", "minimum": 0, "maximum": 1440 } }));
    let breakdown = json!({ "type": "object", "properties": { "skill": s("number"), "travel": s("number"), "load": s("number"), "sla": s("number"), "region": s("number") } });
    json!({
        "EscalateRequest": obj(&["reason"], json!({ "reason": { "type": "string", "maxLength": 2000 }, "availability": { "type": "string", "maxLength": 500 },
            "parts": { "type": "array", "maxItems": 50, "items": part_qty } })),
        "Dossier": { "type": "object", "properties": { "work_order": { "$ref": "#/components/schemas/WorkOrder" }, "customer": { "type": ["object", "null"] },
            "site": { "type": ["object", "null"] }, "asset": { "type": ["object", "null"] }, "product_line": opt("string"),
            "diagnosis": { "$ref": "#/components/schemas/Diagnosis" }, "evidence": { "type": "array", "items": { "$ref": "#/components/schemas/Evidence" } },
            "escalations": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } }, "history": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } },
            "reservations": { "type": "array", "items": { "type": "object" } }, "assignments": { "type": "array", "items": { "$ref": "#/components/schemas/Assignment" } } } },
        "Candidate": { "type": "object", "properties": { "technician_id": s("string"), "display_name": s("string"), "score": s("number"), "breakdown": breakdown,
            "distance_km": s("number"), "travel_minutes": s("number"), "arrival": opt("string"), "finish": opt("string"), "meets_sla": s("boolean"), "excluded": opt("string") } },
        "CandidateList": { "type": "object", "properties": { "work_order_id": s("string"), "items": { "type": "array", "items": { "$ref": "#/components/schemas/Candidate" } } } },
        "AssignRequest": obj(&["technician_id"], json!({ "technician_id": s("string") })),
        "Assignment": { "type": "object", "properties": { "id": s("string"), "work_order_id": s("string"), "technician_id": s("string"),
            "status": { "enum": ["offered", "accepted", "declined", "en_route", "on_site", "done", "withdrawn"] }, "score": opt("number"),
            "breakdown": { "type": ["object", "null"] }, "auto": s("boolean"), "assigned_by": s("string"), "created_at": time, "updated_at": time } },
        "AssignmentList": list("Assignment"),
        "AnswerRequest": obj(&["accept"], json!({ "accept": s("boolean"), "reason": s("string") })),
        "ProgressRequest": obj(&["stage"], json!({ "stage": { "enum": ["en_route", "on_site"] } })),
        "VisitReport": obj(&["outcome"], json!({ "outcome": { "enum": ["fixed", "needs_revisit", "not_fixed"] },
            "checklist": { "type": "array", "items": obj(&["item", "done"], json!({ "item": s("string"), "done": s("boolean"), "note": opt("string") })) },
            "parts_used": { "type": "array", "items": part_qty }, "signed_by": s("string"), "notes": s("string") })),
        "Board": list("BoardRow"),
        "BoardRow": { "type": "object", "properties": { "work_order": { "$ref": "#/components/schemas/WorkOrder" },
            "assignment": { "oneOf": [{ "$ref": "#/components/schemas/Assignment" }, { "type": "null" }] },
            "candidates": { "type": "array", "items": { "$ref": "#/components/schemas/Candidate" } } } },
        "TechnicianProfile": obj(&["region", "home", "skills", "max_jobs"], json!({ "region": s("string"), "home": point,
            "skills": { "type": "array", "items": obj(&["product_line", "level"], json!({ "product_line": s("string"), "level": level })) },
            "hours": hours, "max_jobs": { "type": "integer", "minimum": 1, "maximum": 50 }, "active": s("boolean") })),
        "Technician": { "type": "object", "properties": { "user_id": s("string"), "display_name": s("string"), "region": s("string"), "home": point,
            "skills": { "type": "array", "items": { "type": "object" } }, "hours": hours, "max_jobs": s("integer"), "open_jobs": s("integer"), "active": s("boolean") } },
        "TechnicianList": list("Technician"),
        "Part": { "type": "object", "properties": { "sku": s("string"), "name_en": s("string"), "name_zh": s("string"),
            "product_lines": { "type": "array", "items": s("string") }, "models": { "type": "array", "items": s("string") }, "unit_price": s("number"), "currency": s("string") } },
        "PartList": list("Part"),
        "Warehouse": { "type": "object", "properties": { "id": s("string"), "code": s("string"), "name": s("string"), "region": s("string"), "latitude": s("number"), "longitude": s("number") } },
        "WarehouseList": list("Warehouse"),
        "NewWarehouse": obj(&["code", "name", "region", "latitude", "longitude"], json!({ "code": s("string"), "name": s("string"), "region": s("string"),
            "latitude": s("number"), "longitude": s("number") })),
        "StockItem": { "type": "object", "properties": { "warehouse": s("string"), "region": s("string"), "sku": s("string"), "on_hand": s("integer"),
            "reserved": s("integer"), "available": s("integer"), "reorder_level": s("integer"), "below_reorder_level": s("boolean") } },
        "StockList": list("StockItem"),
        "StockBody": obj(&["on_hand"], json!({ "on_hand": { "type": "integer", "minimum": 0 }, "reorder_level": { "type": "integer", "minimum": 0 } })),
        "StockAlert": { "type": "object", "properties": { "id": s("string"), "warehouse": s("string"), "sku": s("string"), "available": s("integer"),
            "reorder_level": s("integer"), "created_at": time, "resolved_at": { "type": ["string", "null"], "format": "date-time" } } },
        "StockAlertList": list("StockAlert"),
        "Survey": { "type": "object", "properties": { "work_order_id": s("string"), "title": s("string"), "status": s("string"), "answered": s("boolean"),
            "rating": opt("integer"), "expires_at": time } },
        "SurveyAnswer": obj(&["rating"], json!({ "rating": { "type": "integer", "minimum": 1, "maximum": 5 }, "comment": { "type": "string", "maxLength": 2000 }, "complaint": s("boolean") })),
        "SurveyResult": { "type": "object", "properties": { "reopened": s("boolean") } },
        "FollowUp": { "type": "object", "properties": { "id": s("string"), "work_order_id": s("string"), "created_at": time, "expires_at": time,
            "answered_at": { "type": ["string", "null"], "format": "date-time" }, "rating": opt("integer"), "comment": opt("string"), "complaint": s("boolean"),
            "follow_up_due": time, "follow_up_done_at": { "type": ["string", "null"], "format": "date-time" }, "follow_up_note": opt("string") } },
        "FollowUpList": list("FollowUp"),
        "FollowUpDone": obj(&["note"], json!({ "note": { "type": "string", "maxLength": 2000 } })),
        "ExpertSkills": obj(&["product_lines"], json!({ "product_lines": { "type": "array", "maxItems": 100, "items": s("string") } })),
        "Explanation": { "type": "object", "description": "kind image: the region of the picture behind the verdict (occlusion map); kind telemetry: diagnosis and analysis (envelope spectrum with defect-frequency markers)",
            "properties": { "kind": { "enum": ["image", "telemetry"] }, "diagnosis": { "type": "object" }, "analysis": { "type": "object" }, "model": s("string"), "fault_id": s("string"), "label": s("string"), "probability": s("number"),
            "grid": s("integer"), "importance": { "type": "array", "items": s("number") },
            "crop": { "type": "array", "items": s("number"), "minItems": 4, "maxItems": 4 },
            "region": { "type": ["array", "null"], "items": s("number") } } },
        "ProcedureHit": { "type": "object", "properties": { "id": s("string"), "version": s("integer"), "title_en": s("string"), "title_zh": s("string"),
            "fault_ids": { "type": "array", "items": s("string") }, "product_lines": { "type": "array", "items": s("string") }, "remote_ok": s("boolean"),
            "skill_level": { "enum": ["customer", "technician", "specialist"] }, "expected_minutes": s("integer"), "score": s("number") } },
        "ProcedureHitList": list("ProcedureHit"),
        "Procedure": { "type": "object", "description": "A repair procedure version: the models/knowledge/procedures.json format plus source, created_by, created_at, expected_minutes",
            "properties": { "id": s("string"), "version": s("integer"), "steps": { "type": "array", "items": { "type": "object" } }, "source": { "enum": ["file", "api"] } } },
        "ProcedureEdit": obj(&["procedure"], json!({ "procedure": { "type": "object" }, "expected_version": s("integer") })),
        "ProcedureVersionList": list("Procedure"),
        "ProcedureSuggestions": { "type": "object", "properties": { "work_order_id": s("string"), "product_line": opt("string"),
            "items": { "type": "array", "items": { "type": "object", "properties": { "fault_id": s("string"), "confidence": s("number"),
                "procedures": { "type": "array", "items": { "$ref": "#/components/schemas/ProcedureHit" } } } } },
            "by_description": { "type": "array", "items": { "$ref": "#/components/schemas/ProcedureHit" } } } },
    })
}

/// Outgoing webhooks (docs/webhooks.md).
fn webhook_schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let opt_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let kinds = json!({ "type": "array", "maxItems": crate::webhooks::EVENT_KINDS.len(),
        "items": { "type": "string", "description": "an event kind (`status_changed`) or its type (`work_order.status_changed`)" } });
    let endpoint_props = json!({ "id": s("string"), "url": s("string"), "description": s("string"), "event_kinds": { "type": "array", "items": { "enum": crate::webhooks::EVENT_KINDS } },
        "active": s("boolean"), "active_since": time, "created_at": time, "updated_at": time });
    let mut created_props = endpoint_props.clone();
    created_props["secret"] = json!({ "type": "string", "pattern": "^whsec_", "description": "The signing secret (Standard Webhooks); shown only in this response" });
    json!({
        "NewWebhook": obj(&["url"], json!({ "url": { "type": "string", "format": "uri", "maxLength": crate::webhooks::MAX_URL_CHARS, "description": "http or https, no user:password@" },
            "description": { "type": "string", "maxLength": crate::webhooks::MAX_DESCRIPTION_CHARS }, "event_kinds": kinds })),
        "WebhookPatch": obj(&[], json!({ "description": { "type": "string", "maxLength": crate::webhooks::MAX_DESCRIPTION_CHARS }, "event_kinds": kinds, "active": s("boolean") })),
        "Webhook": { "type": "object", "properties": endpoint_props },
        "CreatedWebhook": { "type": "object", "required": ["id", "url", "secret"], "properties": created_props },
        "WebhookList": list("Webhook"),
        "WebhookDelivery": { "type": "object", "properties": { "id": s("string"), "endpoint_id": s("string"), "webhook_id": s("string"), "type": s("string"),
            "work_order_id": opt("string"), "seq": opt("integer"), "status": { "enum": ["pending", "delivered", "failed"] }, "attempts": s("integer"),
            "next_attempt_at": opt_time, "last_attempt_at": opt_time, "last_status_code": opt("integer"), "last_error": opt("string"),
            "created_at": time, "delivered_at": opt_time } },
        "WebhookDeliveryPage": page("WebhookDelivery"),
    })
}

/// The service KPIs (`docs/kpis.md`).
fn kpi_schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let share = json!({ "type": "object", "properties": { "total": s("integer"), "count": s("integer"), "rate": opt("number") } });
    json!({
        "KpiFigures": { "type": "object", "properties": {
            "work_orders": s("integer"),
            "first_response": { "type": "object", "properties": { "responded": s("integer"), "median_minutes": opt("number"), "mean_minutes": opt("number") } },
            "remote_resolution": share, "first_time_fix": share,
            "repair": { "type": "object", "properties": { "resolved": s("integer"), "mean_hours": opt("number") } },
            "sla_resolution": share, "sla_first_response": share,
            "satisfaction": { "type": "object", "properties": { "answers": s("integer"), "mean_rating": opt("number"), "complaints": s("integer") } } } },
        "KpiGroup": { "type": "object", "properties": { "key": s("string"), "label": s("string"), "figures": { "$ref": "#/components/schemas/KpiFigures" } } },
        "KpiReport": { "type": "object", "properties": { "from": time, "to": time, "generated_at": time,
            "group_by": { "enum": ["region", "product_line", "expert", null] },
            "overall": { "$ref": "#/components/schemas/KpiFigures" },
            "groups": { "type": "array", "items": { "$ref": "#/components/schemas/KpiGroup" } } } },
    })
}
