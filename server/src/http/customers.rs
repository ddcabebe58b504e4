//! Customers, sites, assets, product lines and fault codes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{self, ApiJson, ApiPath, ApiQuery, Page};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::customers::repo::{self, AssetFilter};
use crate::customers::{parse_date, Asset, Customer, FaultCode, ProductLine, Severity, Site, Tier};
use crate::error::ApiError;
use crate::ids::{AssetId, CustomerId, ProductLineId, SiteId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(list_customers).post(create_customer))
        .route("/customers/{id}", get(get_customer))
        .route("/customers/{id}/sites", get(list_sites).post(create_site))
        .route("/assets", get(list_assets).post(create_asset))
        .route("/assets/{id}", get(get_asset))
        .route("/product-lines", get(list_product_lines).post(create_product_line))
        .route("/product-lines/{id}", get(get_product_line))
        .route("/product-lines/{id}/fault-codes/{code}", put(put_fault_code))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    tier: Option<Tier>,
    q: Option<String>,
    /// `name`, `-name`, `created_at` (default) or `-created_at`.
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The customer list's cursor: the sort it belongs to and the last row.
#[derive(Serialize, Deserialize)]
struct CustomerCursor {
    s: String,
    id: CustomerId,
    name: String,
}

async fn list_customers(State(state): State<AppState>, ApiQuery(q): ApiQuery<CustomerQuery>) -> Result<Json<Page<Customer>>, ApiError> {
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let sort_name = q.sort.clone().unwrap_or_else(|| "created_at".into());
    let sort = match sort_name.as_str() {
        "created_at" => repo::CustomerSort::CreatedAt { desc: false },
        "-created_at" => repo::CustomerSort::CreatedAt { desc: true },
        "name" => repo::CustomerSort::Name { desc: false },
        "-name" => repo::CustomerSort::Name { desc: true },
        other => {
            return Err(ApiError::BadRequest(format!(
                "cannot sort customers by `{}`; use name or created_at, with a leading - for descending",
                extract::truncate(other, 32)
            )))
        }
    };
    let cursor: Option<CustomerCursor> = q.cursor.as_deref().map(extract::decode_cursor).transpose()?;
    if cursor.as_ref().is_some_and(|c| c.s != sort_name) {
        return Err(ApiError::BadRequest("the cursor belongs to another sort order; start again without it".into()));
    }
    let name = extract::opt_text("q", q.q.as_deref(), 128)?;
    let after = cursor.map(|c| repo::CustomerAfter { id: c.id, name: c.name });
    let items = repo::list_customers(&state.db, q.tier, name.as_deref(), sort, after, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|c| extract::encode_cursor(&CustomerCursor { s: sort_name.clone(), id: c.id, name: c.name.clone() })))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    name: String,
    tier: Tier,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    locale: Option<String>,
}

async fn create_customer(State(state): State<AppState>, ApiJson(req): ApiJson<NewCustomer>) -> Result<(StatusCode, Json<Customer>), ApiError> {
    let email = extract::opt_text("contact_email", req.contact_email.as_deref(), 254)?;
    if let Some(e) = &email {
        if !e.contains('@') {
            return Err(ApiError::Validation("contact_email must be an email address".into()));
        }
    }
    let c = repo::insert_customer(
        &state.db,
        repo::NewCustomer {
            name: extract::text("name", &req.name, 200)?,
            tier: req.tier,
            contact_email: email,
            contact_phone: extract::opt_text("contact_phone", req.contact_phone.as_deref(), 40)?,
            locale: super::users::check_locale(req.locale.as_deref())?,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Loads a customer the caller may see (customers only their own; 404 otherwise, so
/// other customers' ids are not confirmed to exist).
async fn visible_customer(state: &AppState, p: &Principal, raw: &str) -> Result<Customer, ApiError> {
    let id: CustomerId = extract::id(raw, "customer")?;
    if !p.may_see_customer(id) {
        return Err(ApiError::not_found("customer"));
    }
    repo::customer(&state.db, id).await?.ok_or_else(|| ApiError::not_found("customer"))
}

async fn get_customer(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<Customer>, ApiError> {
    visible_customer(&state, &p, &id).await.map(Json)
}

#[derive(Serialize)]
pub struct List<T: Serialize> {
    items: Vec<T>,
}

async fn list_sites(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<List<Site>>, ApiError> {
    let c = visible_customer(&state, &p, &id).await?;
    Ok(Json(List { items: repo::list_sites(&state.db, c.id).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    name: String,
    address: String,
    latitude: f64,
    longitude: f64,
    timezone: Option<String>,
    region: Option<String>,
}

async fn create_site(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<NewSite>,
) -> Result<(StatusCode, Json<Site>), ApiError> {
    let c = visible_customer(&state, &p, &id).await?;
    if !(-90.0..=90.0).contains(&req.latitude) {
        return Err(ApiError::Validation("latitude must be between -90 and 90".into()));
    }
    if !(-180.0..=180.0).contains(&req.longitude) {
        return Err(ApiError::Validation("longitude must be between -180 and 180".into()));
    }
    let tz = extract::opt_text("timezone", req.timezone.as_deref(), 64)?.unwrap_or_else(|| "UTC".into());
    if jiff::tz::TimeZone::get(&tz).is_err() {
        return Err(ApiError::Validation(format!("timezone `{tz}` is not a known IANA time zone")));
    }
    let region = extract::opt_text("region", req.region.as_deref(), 64)?;
    let site = repo::insert_site(
        &state.db,
        repo::NewSite {
            customer_id: c.id,
            name: extract::text("name", &req.name, 200)?,
            address: extract::text("address", &req.address, 500)?,
            latitude: req.latitude,
            longitude: req.longitude,
            timezone: tz,
            region,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(site)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    customer_id: Option<String>,
    product_line_id: Option<String>,
    serial_number: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_assets(State(state): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<AssetQuery>) -> Result<Json<Page<Asset>>, ApiError> {
    let limit = extract::page_size(q.limit, state.config.limits.max_page_size)?;
    let after: Option<AssetId> = q.cursor.as_deref().map(extract::decode_cursor).transpose()?;
    let mut customer_id: Option<CustomerId> = q.customer_id.as_deref().map(|c| extract::id(c, "customer")).transpose()?;
    if p.role == Role::Customer {
        if p.work_order_scope.is_some() || customer_id.is_some_and(|c| Some(c) != p.customer_id) {
            return Ok(Json(Page { items: vec![], next_cursor: None }));
        }
        customer_id = p.customer_id;
    }
    let filter = AssetFilter {
        customer_id,
        product_line_id: q.product_line_id.as_deref().map(|c| extract::id(c, "product line")).transpose()?,
        serial_number: extract::opt_text("serial_number", q.serial_number.as_deref(), 128)?,
    };
    let items = repo::list_assets(&state.db, &filter, after, limit).await?;
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|a| extract::encode_cursor(&a.id))).flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAsset {
    customer_id: String,
    site_id: Option<String>,
    product_line_id: String,
    model: String,
    serial_number: String,
    purchase_date: Option<String>,
    warranty_until: Option<String>,
}

async fn create_asset(State(state): State<AppState>, ApiJson(req): ApiJson<NewAsset>) -> Result<(StatusCode, Json<Asset>), ApiError> {
    let customer_id: CustomerId = extract::id(&req.customer_id, "customer")?;
    let product_line_id: ProductLineId = extract::id(&req.product_line_id, "product line")?;
    let site_id: Option<SiteId> = req.site_id.as_deref().map(|s| extract::id(s, "site")).transpose()?;
    for (field, v) in [("purchase_date", &req.purchase_date), ("warranty_until", &req.warranty_until)] {
        if let Some(d) = v {
            parse_date(d).map_err(|m| ApiError::Validation(format!("{field}: {m}")))?;
        }
    }
    if let (Some(p), Some(w)) = (&req.purchase_date, &req.warranty_until) {
        if w < p {
            return Err(ApiError::Validation("warranty_until must not be before purchase_date".into()));
        }
    }
    repo::customer(&state.db, customer_id).await?.ok_or_else(|| ApiError::Validation("customer_id: no such customer".into()))?;
    repo::product_line(&state.db, product_line_id)
        .await?
        .ok_or_else(|| ApiError::Validation("product_line_id: no such product line".into()))?;
    if let Some(s) = site_id {
        let site = repo::site(&state.db, s).await?.ok_or_else(|| ApiError::Validation("site_id: no such site".into()))?;
        if site.customer_id != customer_id {
            return Err(ApiError::Validation("site_id belongs to another customer".into()));
        }
    }
    let serial = extract::text("serial_number", &req.serial_number, 128)?;
    let asset = repo::insert_asset(
        &state.db,
        repo::NewAsset {
            customer_id,
            site_id,
            product_line_id,
            model: extract::text("model", &req.model, 200)?,
            serial_number: serial.clone(),
            purchase_date: req.purchase_date,
            warranty_until: req.warranty_until,
        },
    )
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            ApiError::Conflict(format!("serial number `{serial}` is already registered for this product line"))
        } else {
            e.into()
        }
    })?;
    Ok((StatusCode::CREATED, Json(asset)))
}

async fn get_asset(State(state): State<AppState>, p: Principal, ApiPath(id): ApiPath<String>) -> Result<Json<Asset>, ApiError> {
    let id: AssetId = extract::id(&id, "asset")?;
    let a = repo::asset(&state.db, id).await?.ok_or_else(|| ApiError::not_found("asset"))?;
    if !p.may_see_customer(a.customer_id) {
        return Err(ApiError::not_found("asset"));
    }
    Ok(Json(a))
}

async fn list_product_lines(State(state): State<AppState>) -> Result<Json<List<ProductLine>>, ApiError> {
    Ok(Json(List { items: repo::list_product_lines(&state.db).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProductLine {
    code: String,
    name_en: String,
    name_zh: String,
    category: String,
}

fn check_code(field: &str, code: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Validation(format!("{field} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")))
    }
}

async fn create_product_line(State(state): State<AppState>, ApiJson(req): ApiJson<NewProductLine>) -> Result<(StatusCode, Json<ProductLine>), ApiError> {
    check_code("code", &req.code)?;
    let pl = repo::insert_product_line(
        &state.db,
        repo::NewProductLine {
            code: req.code.clone(),
            name_en: extract::text("name_en", &req.name_en, 200)?,
            name_zh: extract::text("name_zh", &req.name_zh, 200)?,
            category: extract::text("category", &req.category, 64)?,
        },
    )
    .await
    .map_err(|e| {
        if crate::store::is_unique_violation(&e) {
            ApiError::Conflict(format!("product line code `{}` exists", req.code))
        } else {
            e.into()
        }
    })?;
    Ok((StatusCode::CREATED, Json(pl)))
}

#[derive(Serialize)]
pub struct ProductLineDetail {
    #[serde(flatten)]
    product_line: ProductLine,
    fault_codes: Vec<FaultCode>,
}

async fn get_product_line(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<ProductLineDetail>, ApiError> {
    let id: ProductLineId = extract::id(&id, "product line")?;
    let product_line = repo::product_line(&state.db, id).await?.ok_or_else(|| ApiError::not_found("product line"))?;
    let fault_codes = repo::fault_codes(&state.db, id).await?;
    Ok(Json(ProductLineDetail { product_line, fault_codes }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCodeBody {
    fault_id: String,
    description_en: String,
    description_zh: String,
    severity: Severity,
}

async fn put_fault_code(
    State(state): State<AppState>,
    ApiPath((id, code)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<FaultCodeBody>,
) -> Result<Json<FaultCode>, ApiError> {
    let id: ProductLineId = extract::id(&id, "product line")?;
    check_code("code", &code)?;
    check_code("fault_id", &req.fault_id)?;
    repo::product_line(&state.db, id).await?.ok_or_else(|| ApiError::not_found("product line"))?;
    let fc = FaultCode {
        code,
        fault_id: req.fault_id,
        description_en: extract::text("description_en", &req.description_en, 500)?,
        description_zh: extract::text("description_zh", &req.description_zh, 500)?,
        severity: req.severity,
    };
    repo::upsert_fault_code(&state.db, id, &fc).await?;
    Ok(Json(fc))
}
