//! Spare parts: the catalogue (from `models/knowledge/parts.json`), warehouses with stock,
//! reservations for escalated work orders, consumption on site, safety-stock alerts.
//!
//! Stock never goes negative, whatever the concurrency: every change is one conditional
//! `UPDATE ... WHERE on_hand - reserved >= $q` (or the equivalent), which PostgreSQL
//! re-checks on the locked row and SQLite runs under its single writer, and the table's
//! CHECK constraints refuse anything that slips past. Reservations are taken from the
//! warehouses of the site's region first, then by distance to the site; what cannot be
//! reserved anywhere is reported as a shortage, not an error (the visit can still be
//! planned, and the dispatcher sees what is missing).
//!
//! The functions ending in `_in` run inside the caller's transaction, so a reservation
//! and the work-order event that records it commit together or not at all.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::matching::{distance_km, GeoPoint};
use crate::auth::repo::parse;
use crate::ids::WorkOrderId;
use crate::store::{Db, StoreError};
use crate::work_orders::events::{PartLine, PartQty};
use crate::UnixMillis;

/// A catalogue entry.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Part {
    pub sku: String,
    pub name_en: String,
    pub name_zh: String,
    pub product_lines: Vec<String>,
    pub models: Vec<String>,
    pub unit_price: f64,
    pub currency: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Warehouse {
    pub id: String,
    pub code: String,
    pub name: String,
    pub region: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// Stock of one part in one warehouse.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StockItem {
    pub warehouse: String,
    pub region: String,
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub reorder_level: i64,
    /// available < reorder_level.
    pub below_reorder_level: bool,
}

/// An open or resolved safety-stock alert.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StockAlert {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub available: i64,
    pub reorder_level: i64,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub resolved_at: Option<UnixMillis>,
}

/// A reservation of a work order, as stored.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub quantity: i64,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("unknown part `{0}`")]
    UnknownPart(String),
    #[error("unknown warehouse `{0}`")]
    UnknownWarehouse(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StockError {
    fn from(e: sqlx::Error) -> Self {
        StockError::Store(e.into())
    }
}

fn json_list(r: &AnyRow, col: &str) -> Result<Vec<String>, StoreError> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn part_from_row(r: &AnyRow) -> Result<Part, StoreError> {
    Ok(Part {
        sku: r.try_get("sku")?,
        name_en: r.try_get("name_en")?,
        name_zh: r.try_get("name_zh")?,
        product_lines: json_list(r, "product_lines")?,
        models: json_list(r, "models")?,
        unit_price: r.try_get("unit_price")?,
        currency: r.try_get("currency")?,
    })
}

fn warehouse_from_row(r: &AnyRow) -> Result<Warehouse, StoreError> {
    Ok(Warehouse {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        region: r.try_get("region")?,
        latitude: r.try_get("latitude")?,
        longitude: r.try_get("longitude")?,
    })
}

fn stock_from_row(r: &AnyRow) -> Result<StockItem, StoreError> {
    let on_hand: i64 = r.try_get("on_hand")?;
    let reserved: i64 = r.try_get("reserved")?;
    let reorder_level: i64 = r.try_get("reorder_level")?;
    Ok(StockItem {
        warehouse: r.try_get("code")?,
        region: r.try_get("region")?,
        sku: r.try_get("sku")?,
        on_hand,
        reserved,
        available: on_hand - reserved,
        reorder_level,
        below_reorder_level: on_hand - reserved < reorder_level,
    })
}

/// Upserts the catalogue (parts are never deleted: old work orders refer to them).
pub async fn sync_catalogue(db: &Db, parts: &[Part]) -> Result<(), StoreError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    for p in parts {
        sqlx::query(
            "INSERT INTO parts (sku, name_en, name_zh, product_lines, models, unit_price, currency, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sku) DO UPDATE SET name_en = excluded.name_en, \
             name_zh = excluded.name_zh, product_lines = excluded.product_lines, models = excluded.models, \
             unit_price = excluded.unit_price, currency = excluded.currency, updated_at = excluded.updated_at",
        )
        .bind(&p.sku)
        .bind(&p.name_en)
        .bind(&p.name_zh)
        .bind(serde_json::to_string(&p.product_lines).expect("strings serialize"))
        .bind(serde_json::to_string(&p.models).expect("strings serialize"))
        .bind(p.unit_price)
        .bind(&p.currency)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn list_parts(db: &Db, product_line: Option<&str>) -> Result<Vec<Part>, StoreError> {
    let rows = sqlx::query("SELECT * FROM parts ORDER BY sku").fetch_all(&db.pool).await?;
    let parts = rows.iter().map(part_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(parts.into_iter().filter(|p| product_line.is_none_or(|l| p.product_lines.iter().any(|x| x == l))).collect())
}

pub async fn part(db: &Db, sku: &str) -> Result<Option<Part>, StoreError> {
    let r = sqlx::query("SELECT * FROM parts WHERE sku = $1").bind(sku).fetch_optional(&db.pool).await?;
    r.as_ref().map(part_from_row).transpose()
}

pub struct NewWarehouse {
    pub code: String,
    pub name: String,
    pub region: String,
    pub location: GeoPoint,
}

/// Creates a warehouse; a second one with the same code is a conflict.
pub async fn create_warehouse(db: &Db, w: NewWarehouse) -> Result<Warehouse, StockError> {
    let row = Warehouse {
        id: uuid::Uuid::now_v7().to_string(),
        code: w.code,
        name: w.name,
        region: w.region,
        latitude: w.location.latitude,
        longitude: w.location.longitude,
    };
    let r = sqlx::query("INSERT INTO warehouses (id, code, name, region, latitude, longitude, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&row.id)
        .bind(&row.code)
        .bind(&row.name)
        .bind(&row.region)
        .bind(row.latitude)
        .bind(row.longitude)
        .bind(crate::now_millis())
        .execute(&db.pool)
        .await;
    match r {
        Ok(_) => Ok(row),
        Err(e) if crate::store::is_unique_violation(&e) => Err(StockError::Conflict(format!("warehouse {} exists", row.code))),
        Err(e) => Err(e.into()),
    }
}

pub async fn list_warehouses(db: &Db) -> Result<Vec<Warehouse>, StoreError> {
    let rows = sqlx::query("SELECT * FROM warehouses ORDER BY code").fetch_all(&db.pool).await?;
    rows.iter().map(warehouse_from_row).collect()
}

const STOCK_SELECT: &str = "SELECT w.code, w.region, s.sku, s.on_hand, s.reserved, s.reorder_level FROM stock s JOIN warehouses w ON w.id = s.warehouse_id";

/// Sets the counted stock of a part in a warehouse (a stock take or a delivery). Refused
/// when it would drop below what is reserved.
pub async fn set_stock(db: &Db, warehouse_code: &str, sku: &str, on_hand: i64, reorder_level: i64) -> Result<StockItem, StockError> {
    // Warehouses and parts are never deleted: look them up before the transaction, whose
    // first statement must be the write (see `flow::escalate` on SQLite's write lock).
    let wid: Option<String> = sqlx::query_scalar("SELECT id FROM warehouses WHERE code = $1").bind(warehouse_code).fetch_optional(&db.pool).await?;
    let wid = wid.ok_or_else(|| StockError::UnknownWarehouse(warehouse_code.into()))?;
    let known: Option<String> = sqlx::query_scalar("SELECT sku FROM parts WHERE sku = $1").bind(sku).fetch_optional(&db.pool).await?;
    known.ok_or_else(|| StockError::UnknownPart(sku.into()))?;
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE stock SET on_hand = $3, reorder_level = $4, updated_at = $5 WHERE warehouse_id = $1 AND sku = $2 AND reserved <= $3",
    )
    .bind(&wid)
    .bind(sku)
    .bind(on_hand)
    .bind(reorder_level)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        let reserved: Option<i64> =
            sqlx::query_scalar("SELECT reserved FROM stock WHERE warehouse_id = $1 AND sku = $2").bind(&wid).bind(sku).fetch_optional(&mut *tx).await?;
        match reserved {
            Some(r) => return Err(StockError::Conflict(format!("{r} of {sku} are reserved in {warehouse_code}; on_hand cannot go below that"))),
            None => {
                sqlx::query("INSERT INTO stock (warehouse_id, sku, on_hand, reserved, reorder_level, updated_at) VALUES ($1, $2, $3, 0, $4, $5)")
                    .bind(&wid)
                    .bind(sku)
                    .bind(on_hand)
                    .bind(reorder_level)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    check_alert_in(&mut tx, &wid, sku).await?;
    let row = sqlx::query(&format!("{STOCK_SELECT} WHERE s.warehouse_id = $1 AND s.sku = $2")).bind(&wid).bind(sku).fetch_one(&mut *tx).await?;
    let item = stock_from_row(&row)?;
    tx.commit().await?;
    Ok(item)
}

pub async fn list_stock(db: &Db, sku: Option<&str>, warehouse: Option<&str>, low_only: bool) -> Result<Vec<StockItem>, StoreError> {
    let rows = sqlx::query(&format!(
        "{STOCK_SELECT} WHERE ($1 = '' OR s.sku = $1) AND ($2 = '' OR w.code = $2) ORDER BY w.code, s.sku"
    ))
    .bind(sku.unwrap_or(""))
    .bind(warehouse.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?;
    let items = rows.iter().map(stock_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(items.into_iter().filter(|i| !low_only || i.below_reorder_level).collect())
}

/// Opens an alert when available stock is below the reorder level (one open alert per
/// item), resolves the open one when it is back at or above it.
async fn check_alert_in(conn: &mut AnyConnection, warehouse_id: &str, sku: &str) -> Result<(), sqlx::Error> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as("SELECT on_hand, reserved, reorder_level FROM stock WHERE warehouse_id = $1 AND sku = $2")
        .bind(warehouse_id)
        .bind(sku)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((on_hand, reserved, level)) = row else { return Ok(()) };
    let available = on_hand - reserved;
    let now = crate::now_millis();
    if available < level {
        let inserted = sqlx::query(
            "INSERT INTO stock_alerts (id, warehouse_id, sku, available, reorder_level, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (warehouse_id, sku) WHERE resolved_at IS NULL DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(warehouse_id)
        .bind(sku)
        .bind(available)
        .bind(level)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            tracing::warn!(warehouse_id, sku, available, reorder_level = level, "stock below the reorder level");
        }
    } else {
        sqlx::query("UPDATE stock_alerts SET resolved_at = $3 WHERE warehouse_id = $1 AND sku = $2 AND resolved_at IS NULL")
            .bind(warehouse_id)
            .bind(sku)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn list_alerts(db: &Db, open_only: bool) -> Result<Vec<StockAlert>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.id, w.code, a.sku, a.available, a.reorder_level, a.created_at, a.resolved_at FROM stock_alerts a \
         JOIN warehouses w ON w.id = a.warehouse_id WHERE ($1 = 0 OR a.resolved_at IS NULL) ORDER BY a.created_at DESC, a.id LIMIT 500",
    )
    .bind(open_only as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StockAlert {
                id: r.try_get("id")?,
                warehouse: r.try_get("code")?,
                sku: r.try_get("sku")?,
                available: r.try_get("available")?,
                reorder_level: r.try_get("reorder_level")?,
                created_at: r.try_get("created_at")?,
                resolved_at: r.try_get("resolved_at")?,
            })
        })
        .collect()
}

/// Reserves the wanted parts for a work order inside the caller's transaction. Warehouses
/// of `region` come first, then the others by distance to `site`. Returns the lines
/// reserved and what could not be found.
pub async fn reserve_in(
    conn: &mut AnyConnection,
    work_order: WorkOrderId,
    wanted: &[PartQty],
    site: Option<GeoPoint>,
    region: Option<&str>,
) -> Result<(Vec<PartLine>, Vec<PartQty>), StockError> {
    let rows = sqlx::query("SELECT * FROM warehouses").fetch_all(&mut *conn).await?;
    let mut warehouses = rows.iter().map(warehouse_from_row).collect::<Result<Vec<_>, _>>()?;
    let key = |w: &Warehouse| {
        let other_region = region.is_some_and(|r| r != w.region);
        let d = site.map(|s| distance_km(s, GeoPoint { latitude: w.latitude, longitude: w.longitude })).unwrap_or(0.0);
        (other_region, (d * 1000.0) as i64, w.code.clone())
    };
    warehouses.sort_by_key(key);
    let now = crate::now_millis();
    let mut lines = Vec::new();
    let mut shortages = Vec::new();
    for want in wanted {
        let known: Option<String> = sqlx::query_scalar("SELECT sku FROM parts WHERE sku = $1").bind(&want.sku).fetch_optional(&mut *conn).await?;
        known.ok_or_else(|| StockError::UnknownPart(want.sku.clone()))?;
        let mut remaining = want.quantity;
        for w in &warehouses {
            if remaining <= 0 {
                break;
            }
            // Try the whole remainder, then whatever is available; each attempt is an
            // atomic check-and-take, so a concurrent reservation can only make it fail.
            let available: Option<i64> = sqlx::query_scalar("SELECT on_hand - reserved FROM stock WHERE warehouse_id = $1 AND sku = $2")
                .bind(&w.id)
                .bind(&want.sku)
                .fetch_optional(&mut *conn)
                .await?;
            let take = remaining.min(available.unwrap_or(0));
            if take <= 0 {
                continue;
            }
            let took = sqlx::query(
                "UPDATE stock SET reserved = reserved + $3, updated_at = $4 WHERE warehouse_id = $1 AND sku = $2 AND on_hand - reserved >= $3",
            )
            .bind(&w.id)
            .bind(&want.sku)
            .bind(take)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if took == 0 {
                continue;
            }
            let id = insert_reservation(conn, work_order, &w.id, &want.sku, take, "reserved", now).await?;
            check_alert_in(conn, &w.id, &want.sku).await?;
            lines.push(PartLine { reservation_id: id, warehouse: w.code.clone(), sku: want.sku.clone(), quantity: take });
            remaining -= take;
        }
        if remaining > 0 {
            shortages.push(PartQty { sku: want.sku.clone(), quantity: remaining });
        }
    }
    Ok((lines, shortages))
}

/// Records a reservation line (`reserved`, or `consumed` for the used part of a split
/// one); returns its id.
async fn insert_reservation(
    conn: &mut AnyConnection,
    work_order: WorkOrderId,
    warehouse_id: &str,
    sku: &str,
    quantity: i64,
    status: &str,
    now: UnixMillis,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO part_reservations (id, work_order_id, warehouse_id, sku, quantity, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&id)
    .bind(work_order.to_string())
    .bind(warehouse_id)
    .bind(sku)
    .bind(quantity)
    .bind(status)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

async fn open_reservations_in(conn: &mut AnyConnection, work_order: WorkOrderId) -> Result<Vec<(String, String, String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.warehouse_id, w.code, r.sku, r.quantity FROM part_reservations r JOIN warehouses w ON w.id = r.warehouse_id \
         WHERE r.work_order_id = $1 AND r.status = 'reserved' ORDER BY r.id",
    )
    .bind(work_order.to_string())
    .fetch_all(&mut *conn)
    .await
}

/// Gives every open reservation of the work order back to stock.
pub async fn release_in(conn: &mut AnyConnection, work_order: WorkOrderId) -> Result<Vec<PartLine>, StockError> {
    let now = crate::now_millis();
    let mut out = Vec::new();
    for (id, wid, code, sku, q) in open_reservations_in(conn, work_order).await? {
        sqlx::query("UPDATE part_reservations SET status = 'released', updated_at = $2 WHERE id = $1").bind(&id).bind(now).execute(&mut *conn).await?;
        sqlx::query("UPDATE stock SET reserved = reserved - $3, updated_at = $4 WHERE warehouse_id = $1 AND sku = $2")
            .bind(&wid)
            .bind(&sku)
            .bind(q)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        check_alert_in(conn, &wid, &sku).await?;
        out.push(PartLine { reservation_id: id, warehouse: code, sku, quantity: q });
    }
    Ok(out)
}

/// Takes the parts used on site out of stock: first from the work order's reservations
/// (reserved -> consumed), then, for parts the technician brought without a reservation,
/// from the nearest stock that has them. Reservations not used are released.
/// Returns (consumed, released).
pub async fn consume_in(
    conn: &mut AnyConnection,
    work_order: WorkOrderId,
    used: &[PartQty],
    site: Option<GeoPoint>,
    region: Option<&str>,
) -> Result<(Vec<PartLine>, Vec<PartLine>), StockError> {
    let now = crate::now_millis();
    let mut consumed = Vec::new();
    let mut need: Vec<PartQty> = used.iter().filter(|p| p.quantity > 0).cloned().collect();
    for (id, wid, code, sku, q) in open_reservations_in(conn, work_order).await? {
        let Some(n) = need.iter_mut().find(|n| n.sku == sku && n.quantity > 0) else { continue };
        let take = n.quantity.min(q);
        n.quantity -= take;
        // Consume `take` of the reservation; a partly used one is split: the rest stays
        // reserved and is released below with the unused ones.
        sqlx::query("UPDATE stock SET on_hand = on_hand - $3, reserved = reserved - $3, updated_at = $4 WHERE warehouse_id = $1 AND sku = $2")
            .bind(&wid)
            .bind(&sku)
            .bind(take)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        if take == q {
            sqlx::query("UPDATE part_reservations SET status = 'consumed', updated_at = $2 WHERE id = $1").bind(&id).bind(now).execute(&mut *conn).await?;
        } else {
            sqlx::query("UPDATE part_reservations SET quantity = $2, updated_at = $3 WHERE id = $1").bind(&id).bind(q - take).bind(now).execute(&mut *conn).await?;
            insert_reservation(conn, work_order, &wid, &sku, take, "consumed", now).await?;
        }
        check_alert_in(conn, &wid, &sku).await?;
        consumed.push(PartLine { reservation_id: id, warehouse: code, sku, quantity: take });
    }
    let released = release_in(conn, work_order).await?;
    // Parts used without a reservation: reserve and consume them in one go.
    let rest: Vec<PartQty> = need.into_iter().filter(|n| n.quantity > 0).collect();
    if !rest.is_empty() {
        let (lines, short) = reserve_in(conn, work_order, &rest, site, region).await?;
        if let Some(s) = short.first() {
            return Err(StockError::Conflict(format!("{} more of {} were used than any warehouse has in stock", s.quantity, s.sku)));
        }
        let (more, _) = Box::pin(consume_in(conn, work_order, &rest, site, region)).await?;
        debug_assert_eq!(lines.len(), more.len());
        consumed.extend(more);
    }
    Ok((consumed, released))
}

/// The reservations of a work order (all states), for the dossier.
pub async fn reservations(db: &Db, work_order: WorkOrderId) -> Result<Vec<Reservation>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.id, w.code, r.sku, r.quantity, r.status FROM part_reservations r JOIN warehouses w ON w.id = r.warehouse_id \
         WHERE r.work_order_id = $1 ORDER BY r.created_at, r.id",
    )
    .bind(work_order.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Reservation {
                id: r.try_get("id")?,
                warehouse: r.try_get("code")?,
                sku: r.try_get("sku")?,
                quantity: r.try_get("quantity")?,
                status: parse::<String>(r, "status")?,
            })
        })
        .collect()
}
