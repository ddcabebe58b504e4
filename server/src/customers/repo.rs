//! Queries for customers, sites, assets, product lines and fault codes.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::*;
use crate::auth::repo::{parse, parse_opt};
use crate::store::{Db, StoreError};

fn customer_from_row(r: &AnyRow) -> Result<Customer, StoreError> {
    Ok(Customer {
        id: parse(r, "id")?,
        name: r.try_get("name")?,
        tier: parse(r, "tier")?,
        contact_email: r.try_get("contact_email")?,
        contact_phone: r.try_get("contact_phone")?,
        locale: r.try_get("locale")?,
        created_at: r.try_get("created_at")?,
    })
}

fn site_from_row(r: &AnyRow) -> Result<Site, StoreError> {
    Ok(Site {
        id: parse(r, "id")?,
        customer_id: parse(r, "customer_id")?,
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        latitude: r.try_get("latitude")?,
        longitude: r.try_get("longitude")?,
        timezone: r.try_get("timezone")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
    })
}

fn asset_from_row(r: &AnyRow) -> Result<Asset, StoreError> {
    let warranty_until: Option<String> = r.try_get("warranty_until")?;
    let today = time::OffsetDateTime::now_utc().date();
    let under_warranty = warranty_until.as_deref().and_then(|d| parse_date(d).ok()).is_some_and(|d| d >= today);
    Ok(Asset {
        id: parse(r, "id")?,
        customer_id: parse(r, "customer_id")?,
        site_id: parse_opt(r, "site_id")?,
        product_line_id: parse(r, "product_line_id")?,
        model: r.try_get("model")?,
        serial_number: r.try_get("serial_number")?,
        purchase_date: r.try_get("purchase_date")?,
        warranty_until,
        under_warranty,
        created_at: r.try_get("created_at")?,
    })
}

fn product_line_from_row(r: &AnyRow) -> Result<ProductLine, StoreError> {
    Ok(ProductLine {
        id: parse(r, "id")?,
        code: r.try_get("code")?,
        name_en: r.try_get("name_en")?,
        name_zh: r.try_get("name_zh")?,
        category: r.try_get("category")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewCustomer {
    pub name: String,
    pub tier: Tier,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub locale: String,
}

pub async fn insert_customer(db: &Db, c: NewCustomer) -> Result<Customer, StoreError> {
    let row = Customer {
        id: CustomerId::new(),
        name: c.name,
        tier: c.tier,
        contact_email: c.contact_email,
        contact_phone: c.contact_phone,
        locale: c.locale,
        created_at: crate::now_millis(),
    };
    sqlx::query(
        "INSERT INTO customers (id, name, tier, contact_email, contact_phone, locale, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id.to_string())
    .bind(&row.name)
    .bind(row.tier.as_str())
    .bind(row.contact_email.clone())
    .bind(row.contact_phone.clone())
    .bind(&row.locale)
    .bind(row.created_at)
    .execute(&db.pool)
    .await?;
    Ok(row)
}

pub async fn customer(db: &Db, id: CustomerId) -> Result<Option<Customer>, StoreError> {
    let r = sqlx::query("SELECT * FROM customers WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(customer_from_row).transpose()
}

/// Customers by id, optionally filtered by tier and a name substring.
/// How a customer list is ordered; ties and pages break on the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerSort {
    /// Creation order (ids are time-ordered).
    CreatedAt { desc: bool },
    Name { desc: bool },
}

/// Where the next page starts: the last row's id (and name, for name order).
pub struct CustomerAfter {
    pub id: CustomerId,
    pub name: String,
}

pub async fn list_customers(
    db: &Db,
    tier: Option<Tier>,
    name_contains: Option<&str>,
    sort: CustomerSort,
    after: Option<CustomerAfter>,
    limit: u32,
) -> Result<Vec<Customer>, StoreError> {
    let pattern = name_contains.map(|q| format!("%{}%", q.to_lowercase().replace('%', "").replace('_', ""))).unwrap_or_default();
    let (page, order) = match sort {
        CustomerSort::CreatedAt { desc: false } => ("($3 = '' OR id > $3)", "id ASC"),
        CustomerSort::CreatedAt { desc: true } => ("($3 = '' OR id < $3)", "id DESC"),
        CustomerSort::Name { desc: false } => ("($3 = '' OR name > $4 OR (name = $4 AND id > $3))", "name ASC, id ASC"),
        CustomerSort::Name { desc: true } => ("($3 = '' OR name < $4 OR (name = $4 AND id < $3))", "name DESC, id DESC"),
    };
    let sql = format!(
        "SELECT * FROM customers WHERE ($1 = '' OR tier = $1) AND ($2 = '' OR LOWER(name) LIKE $2) AND {page} \
         AND ($4 = $4) ORDER BY {order} LIMIT $5"
    );
    let (after_id, after_name) = after.map(|a| (a.id.to_string(), a.name)).unwrap_or_default();
    let rows = sqlx::query(&sql)
        .bind(tier.map(|t| t.as_str()).unwrap_or(""))
        .bind(pattern)
        .bind(after_id)
        .bind(after_name)
        .bind(i64::from(limit))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(customer_from_row).collect()
}

pub struct NewSite {
    pub customer_id: CustomerId,
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub region: Option<String>,
}

pub async fn insert_site(db: &Db, s: NewSite) -> Result<Site, StoreError> {
    let row = Site {
        id: SiteId::new(),
        customer_id: s.customer_id,
        name: s.name,
        address: s.address,
        latitude: s.latitude,
        longitude: s.longitude,
        timezone: s.timezone,
        region: s.region,
        created_at: crate::now_millis(),
    };
    sqlx::query(
        "INSERT INTO sites (id, customer_id, name, address, latitude, longitude, timezone, region, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id.to_string())
    .bind(row.customer_id.to_string())
    .bind(&row.name)
    .bind(&row.address)
    .bind(row.latitude)
    .bind(row.longitude)
    .bind(&row.timezone)
    .bind(&row.region)
    .bind(row.created_at)
    .execute(&db.pool)
    .await?;
    Ok(row)
}

pub async fn site(db: &Db, id: SiteId) -> Result<Option<Site>, StoreError> {
    let r = sqlx::query("SELECT * FROM sites WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(site_from_row).transpose()
}

pub async fn list_sites(db: &Db, customer: CustomerId) -> Result<Vec<Site>, StoreError> {
    let rows = sqlx::query("SELECT * FROM sites WHERE customer_id = $1 ORDER BY id")
        .bind(customer.to_string())
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(site_from_row).collect()
}

pub struct NewAsset {
    pub customer_id: CustomerId,
    pub site_id: Option<SiteId>,
    pub product_line_id: ProductLineId,
    pub model: String,
    pub serial_number: String,
    pub purchase_date: Option<String>,
    pub warranty_until: Option<String>,
}

pub async fn insert_asset(db: &Db, a: NewAsset) -> Result<Asset, sqlx::Error> {
    let id = AssetId::new();
    sqlx::query(
        "INSERT INTO assets (id, customer_id, site_id, product_line_id, model, serial_number, purchase_date, warranty_until, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.to_string())
    .bind(a.customer_id.to_string())
    .bind(a.site_id.map(|s| s.to_string()))
    .bind(a.product_line_id.to_string())
    .bind(&a.model)
    .bind(&a.serial_number)
    .bind(a.purchase_date.clone())
    .bind(a.warranty_until.clone())
    .bind(crate::now_millis())
    .execute(&db.pool)
    .await?;
    let r = sqlx::query("SELECT * FROM assets WHERE id = $1").bind(id.to_string()).fetch_one(&db.pool).await?;
    asset_from_row(&r).map_err(|e| sqlx::Error::Protocol(e.to_string()))
}

pub async fn asset(db: &Db, id: AssetId) -> Result<Option<Asset>, StoreError> {
    let r = sqlx::query("SELECT * FROM assets WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(asset_from_row).transpose()
}

pub struct AssetFilter {
    pub customer_id: Option<CustomerId>,
    pub product_line_id: Option<ProductLineId>,
    pub serial_number: Option<String>,
}

pub async fn list_assets(db: &Db, f: &AssetFilter, after: Option<AssetId>, limit: u32) -> Result<Vec<Asset>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM assets WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR product_line_id = $2) \
         AND ($3 = '' OR serial_number = $3) AND id > $4 ORDER BY id LIMIT $5",
    )
    .bind(f.customer_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(f.product_line_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(f.serial_number.clone().unwrap_or_default())
    .bind(after.map(|a| a.to_string()).unwrap_or_default())
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(asset_from_row).collect()
}

pub struct NewProductLine {
    pub code: String,
    pub name_en: String,
    pub name_zh: String,
    pub category: String,
}

pub async fn insert_product_line(db: &Db, p: NewProductLine) -> Result<ProductLine, sqlx::Error> {
    let row = ProductLine {
        id: ProductLineId::new(),
        code: p.code,
        name_en: p.name_en,
        name_zh: p.name_zh,
        category: p.category,
        created_at: crate::now_millis(),
    };
    sqlx::query("INSERT INTO product_lines (id, code, name_en, name_zh, category, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(row.id.to_string())
        .bind(&row.code)
        .bind(&row.name_en)
        .bind(&row.name_zh)
        .bind(&row.category)
        .bind(row.created_at)
        .execute(&db.pool)
        .await?;
    Ok(row)
}

pub async fn product_line(db: &Db, id: ProductLineId) -> Result<Option<ProductLine>, StoreError> {
    let r = sqlx::query("SELECT * FROM product_lines WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(product_line_from_row).transpose()
}

pub async fn list_product_lines(db: &Db) -> Result<Vec<ProductLine>, StoreError> {
    let rows = sqlx::query("SELECT * FROM product_lines ORDER BY code").fetch_all(&db.pool).await?;
    rows.iter().map(product_line_from_row).collect()
}

pub async fn fault_codes(db: &Db, product_line: ProductLineId) -> Result<Vec<FaultCode>, StoreError> {
    let rows = sqlx::query("SELECT * FROM fault_codes WHERE product_line_id = $1 ORDER BY code")
        .bind(product_line.to_string())
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FaultCode {
                code: r.try_get("code")?,
                fault_id: r.try_get("fault_id")?,
                description_en: r.try_get("description_en")?,
                description_zh: r.try_get("description_zh")?,
                severity: parse(r, "severity")?,
            })
        })
        .collect()
}

/// Inserts or replaces one fault code of a product line.
pub async fn upsert_fault_code(db: &Db, product_line: ProductLineId, f: &FaultCode) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fault_codes (product_line_id, code, fault_id, description_en, description_zh, severity) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (product_line_id, code) DO UPDATE SET fault_id = excluded.fault_id, description_en = excluded.description_en, \
         description_zh = excluded.description_zh, severity = excluded.severity",
    )
    .bind(product_line.to_string())
    .bind(&f.code)
    .bind(&f.fault_id)
    .bind(&f.description_en)
    .bind(&f.description_zh)
    .bind(f.severity.as_str())
    .execute(&db.pool)
    .await?;
    Ok(())
}
