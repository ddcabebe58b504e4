//! Webhook persistence: endpoints (with their secret, which only [`create`] returns and
//! only the sender reads) and deliveries (queue and log in one table).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::signing::{self, Next};
use super::{event_type, DeliveryId, EndpointId, EndpointUrl, MAX_ENDPOINTS, PING_KIND};
use crate::auth::repo::{parse, parse_opt};
use crate::ids::{UserId, WorkOrderId};
use crate::store::{Db, StoreError};
use crate::UnixMillis;

/// An endpoint as the API shows it: never with its secret.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub description: String,
    /// Event kinds delivered; empty: every kind.
    pub event_kinds: Vec<String>,
    pub active: bool,
    /// Events that occurred before this instant are not delivered to this endpoint.
    #[serde(serialize_with = "crate::http::ser_time")]
    pub active_since: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub updated_at: UnixMillis,
}

const ENDPOINT_COLS: &str = "id, url, description, event_kinds, active, active_since, created_at, updated_at";

fn endpoint_from_row(r: &AnyRow) -> Result<Endpoint, StoreError> {
    let kinds: String = r.try_get("event_kinds")?;
    let active: i64 = r.try_get("active")?;
    Ok(Endpoint {
        id: parse(r, "id")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        event_kinds: serde_json::from_str(&kinds).map_err(|e| StoreError::Corrupt(format!("event_kinds: {e}")))?,
        active: active != 0,
        active_since: r.try_get("active_since")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A validated new endpoint.
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub description: String,
    pub event_kinds: Vec<String>,
}

/// Creates an endpoint with `secret`; None when [`MAX_ENDPOINTS`] are registered. The
/// count and the insert are one statement (on PostgreSQL two concurrent creations can
/// still both pass the count: the cap is a guard against mistakes, not a quota).
pub async fn create(db: &Db, new: NewEndpoint, secret: &signing::Secret, created_by: Option<UserId>) -> Result<Option<Endpoint>, StoreError> {
    let now = crate::now_millis();
    let e = Endpoint {
        id: EndpointId::new(),
        url: new.url.as_str().to_owned(),
        description: new.description,
        event_kinds: new.event_kinds,
        active: true,
        active_since: now,
        created_at: now,
        updated_at: now,
    };
    let inserted = sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, description, secret, event_kinds, active, active_since, created_by, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, 1, $6, $7, $8, $9 WHERE (SELECT COUNT(*) FROM webhook_endpoints) < $10",
    )
    .bind(e.id.to_string())
    .bind(&e.url)
    .bind(&e.description)
    .bind(secret.expose())
    .bind(serde_json::to_string(&e.event_kinds).expect("strings serialize"))
    .bind(e.active_since)
    .bind(created_by.map(|u| u.to_string()))
    .bind(e.created_at)
    .bind(e.updated_at)
    .bind(MAX_ENDPOINTS)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(e))
}

pub async fn list(db: &Db) -> Result<Vec<Endpoint>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY id")).fetch_all(&db.pool).await?;
    rows.iter().map(endpoint_from_row).collect()
}

pub async fn get(db: &Db, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
    let row = sqlx::query(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(endpoint_from_row).transpose()
}

/// What a PATCH may change.
#[derive(Default)]
pub struct EndpointPatch {
    pub description: Option<String>,
    pub event_kinds: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// Applies a patch; None when the endpoint does not exist. Reactivating moves
/// `active_since` to now: events that occurred while it was inactive are not delivered
/// (deliveries already queued stay pending and go out once it is active again).
pub async fn update(db: &Db, id: EndpointId, patch: EndpointPatch) -> Result<Option<Endpoint>, StoreError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let Some(row) = sqlx::query(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let mut e = endpoint_from_row(&row)?;
    if let Some(d) = patch.description {
        e.description = d;
    }
    if let Some(k) = patch.event_kinds {
        e.event_kinds = k;
    }
    if let Some(a) = patch.active {
        if a && !e.active {
            e.active_since = now;
        }
        e.active = a;
    }
    e.updated_at = now;
    sqlx::query("UPDATE webhook_endpoints SET description = $2, event_kinds = $3, active = $4, active_since = $5, updated_at = $6 WHERE id = $1")
        .bind(id.to_string())
        .bind(&e.description)
        .bind(serde_json::to_string(&e.event_kinds).expect("strings serialize"))
        .bind(i64::from(e.active))
        .bind(e.active_since)
        .bind(e.updated_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(e))
}

/// Deletes an endpoint, its secret and its delivery log; false when there was none.
/// An attempt already in flight finishes, but its outcome is not recorded.
pub async fn delete(db: &Db, id: EndpointId) -> Result<bool, StoreError> {
    let mut tx = db.pool.begin().await?;
    // Explicit, not only ON DELETE CASCADE: SQLite enforces it only with foreign_keys on.
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
    let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// Deactivates an endpoint (the receiver answered 410 Gone).
pub async fn deactivate(db: &Db, id: EndpointId) -> Result<(), StoreError> {
    sqlx::query("UPDATE webhook_endpoints SET active = 0, updated_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(crate::now_millis())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// An active endpoint as the scanner needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub id: EndpointId,
    pub event_kinds: Vec<String>,
    pub active_since: UnixMillis,
}

pub async fn active_targets(db: &Db) -> Result<Vec<Target>, StoreError> {
    let rows = sqlx::query("SELECT id, event_kinds, active_since FROM webhook_endpoints WHERE active = 1 ORDER BY id").fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| {
            let kinds: String = r.try_get("event_kinds")?;
            Ok(Target {
                id: parse(r, "id")?,
                event_kinds: serde_json::from_str(&kinds).map_err(|e| StoreError::Corrupt(format!("event_kinds: {e}")))?,
                active_since: r.try_get("active_since")?,
            })
        })
        .collect()
}

/// The position of an event in scan order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub occurred_at: UnixMillis,
    pub work_order_id: String,
    pub seq: i64,
}

/// An event seen by the scanner (no payload: that is read when sending).
#[derive(Clone, Debug)]
pub struct EventHead {
    pub key: EventKey,
    pub kind: String,
}

/// Events with `occurred_at >= floor`, after `after` in (occurred_at, work order, seq)
/// order, at most `limit`.
pub async fn events_since(db: &Db, floor: UnixMillis, after: Option<&EventKey>, limit: i64) -> Result<Vec<EventHead>, StoreError> {
    let rows = match after {
        None => {
            sqlx::query("SELECT work_order_id, seq, kind, occurred_at FROM work_order_events WHERE occurred_at >= $1 ORDER BY occurred_at, work_order_id, seq LIMIT $2")
                .bind(floor)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
        Some(k) => {
            sqlx::query(
                "SELECT work_order_id, seq, kind, occurred_at FROM work_order_events WHERE occurred_at >= $1 \
                 AND (occurred_at > $2 OR (occurred_at = $2 AND (work_order_id > $3 OR (work_order_id = $3 AND seq > $4)))) \
                 ORDER BY occurred_at, work_order_id, seq LIMIT $5",
            )
            .bind(floor)
            .bind(k.occurred_at)
            .bind(&k.work_order_id)
            .bind(k.seq)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(EventHead {
                key: EventKey { occurred_at: r.try_get("occurred_at")?, work_order_id: r.try_get("work_order_id")?, seq: r.try_get("seq")? },
                kind: r.try_get("kind")?,
            })
        })
        .collect()
}

/// Queues the delivery of one event to one endpoint, due now; false when it was
/// already queued (the UNIQUE constraint).
pub async fn enqueue(conn: &mut AnyConnection, endpoint: EndpointId, ev: &EventHead, now: UnixMillis) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, work_order_id, seq, kind, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT DO NOTHING",
    )
    .bind(DeliveryId::new().to_string())
    .bind(endpoint.to_string())
    .bind(&ev.key.work_order_id)
    .bind(ev.key.seq)
    .bind(&ev.kind)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Queues a test ping to an endpoint, due now.
pub async fn enqueue_ping(db: &Db, endpoint: EndpointId) -> Result<Delivery, StoreError> {
    let id = DeliveryId::new();
    let now = crate::now_millis();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, work_order_id, seq, kind, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, NULL, NULL, $3, 'pending', 0, $4, $4)",
    )
    .bind(id.to_string())
    .bind(endpoint.to_string())
    .bind(PING_KIND)
    .bind(now)
    .execute(&db.pool)
    .await?;
    let row = sqlx::query(&format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE id = $1")).bind(id.to_string()).fetch_one(&db.pool).await?;
    delivery_from_row(&row)
}

crate::string_enum!(
    /// Where a delivery stands.
    DeliveryStatus { Pending => "pending", Delivered => "delivered", Failed => "failed" }
);

/// One entry of an endpoint's delivery log.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    /// The `webhook-id` header: stable per event (receivers dedupe on it).
    pub webhook_id: String,
    /// The payload's `type` (`work_order.status_changed`, `webhook.ping`).
    #[serde(rename = "type")]
    pub event_type: String,
    pub work_order_id: Option<WorkOrderId>,
    pub seq: Option<i64>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries only).
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub next_attempt_at: Option<UnixMillis>,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub last_attempt_at: Option<UnixMillis>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub delivered_at: Option<UnixMillis>,
}

const DELIVERY_COLS: &str =
    "id, endpoint_id, work_order_id, seq, kind, status, attempts, next_attempt_at, last_attempt_at, last_status_code, last_error, created_at, delivered_at";

fn delivery_from_row(r: &AnyRow) -> Result<Delivery, StoreError> {
    let id: DeliveryId = parse(r, "id")?;
    let work_order_id: Option<WorkOrderId> = parse_opt(r, "work_order_id")?;
    let seq: Option<i64> = r.try_get("seq")?;
    let kind: String = r.try_get("kind")?;
    let status: DeliveryStatus = parse(r, "status")?;
    let next: i64 = r.try_get("next_attempt_at")?;
    Ok(Delivery {
        id,
        endpoint_id: parse(r, "endpoint_id")?,
        webhook_id: match (work_order_id, seq) {
            (Some(w), Some(s)) => signing::message_id(w, s),
            _ => signing::ping_message_id(id),
        },
        event_type: event_type(&kind),
        work_order_id,
        seq,
        status,
        attempts: r.try_get("attempts")?,
        next_attempt_at: (status == DeliveryStatus::Pending).then_some(next),
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// An endpoint's deliveries, newest first, before `before` (a page cursor).
pub async fn deliveries(
    db: &Db,
    endpoint: EndpointId,
    status: Option<DeliveryStatus>,
    before: Option<DeliveryId>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let mut sql = format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE endpoint_id = $1");
    let mut n = 1;
    if status.is_some() {
        n += 1;
        sql.push_str(&format!(" AND status = ${n}"));
    }
    if before.is_some() {
        n += 1;
        sql.push_str(&format!(" AND id < ${n}"));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", i64::from(limit)));
    let mut q = sqlx::query(&sql).bind(endpoint.to_string());
    if let Some(s) = status {
        q = q.bind(s.as_str());
    }
    if let Some(b) = before {
        q = q.bind(b.to_string());
    }
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter().map(delivery_from_row).collect()
}

/// A due delivery with what sending it needs. Holds the secret: never log it.
pub struct Due {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    pub url: String,
    pub secret: String,
    pub work_order_id: Option<WorkOrderId>,
    pub seq: Option<i64>,
    pub kind: String,
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    pub created_at: UnixMillis,
    /// The event (None for pings).
    pub actor: Option<String>,
    pub occurred_at: Option<UnixMillis>,
    pub payload: Option<String>,
}

/// Pending deliveries due at `now` to active endpoints, oldest due first, at most
/// `limit` (one in flight is not due: its lease is in the future). A delivery whose
/// work order has an earlier delivery still pending to the same endpoint waits for it,
/// so each endpoint sees a work order's events in `seq` order.
pub async fn due(db: &Db, now: UnixMillis, limit: i64) -> Result<Vec<Due>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.id, d.endpoint_id, d.work_order_id, d.seq, d.kind, d.attempts, d.next_attempt_at, d.created_at, \
                w.url, w.secret, e.actor, e.occurred_at, e.payload \
         FROM webhook_deliveries d \
         JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         LEFT JOIN work_order_events e ON e.work_order_id = d.work_order_id AND e.seq = d.seq \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.active = 1 \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
                           AND p.work_order_id = d.work_order_id AND p.seq < d.seq AND p.status = 'pending') \
         ORDER BY d.next_attempt_at, d.id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                id: parse(r, "id")?,
                endpoint_id: parse(r, "endpoint_id")?,
                url: r.try_get("url")?,
                secret: r.try_get("secret")?,
                work_order_id: parse_opt(r, "work_order_id")?,
                seq: r.try_get("seq")?,
                kind: r.try_get("kind")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                created_at: r.try_get("created_at")?,
                actor: r.try_get("actor")?,
                occurred_at: r.try_get("occurred_at")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

/// Takes a due delivery for one attempt: counts the attempt and moves `next_attempt_at`
/// to `lease_until`, so neither this worker nor another process picks it again while it
/// is in flight (and a crash mid-attempt retries it once the lease ends). False when
/// someone else took it first.
pub async fn claim(db: &Db, d: &Due, now: UnixMillis, lease_until: UnixMillis) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $3, last_attempt_at = $4 \
         WHERE id = $1 AND status = 'pending' AND next_attempt_at = $2",
    )
    .bind(d.id.to_string())
    .bind(d.next_attempt_at)
    .bind(lease_until)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records the outcome of an attempt.
pub async fn record(db: &Db, id: DeliveryId, next: &Next, status_code: Option<u16>, error: Option<&str>, now: UnixMillis) -> Result<(), StoreError> {
    let (status, next_at, delivered_at) = match next {
        Next::Delivered => (DeliveryStatus::Delivered, now, Some(now)),
        Next::Retry { at } => (DeliveryStatus::Pending, *at, None),
        Next::Failed | Next::Gone => (DeliveryStatus::Failed, now, None),
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, delivered_at = $4, last_status_code = $5, last_error = $6 WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(status.as_str())
    .bind(next_at)
    .bind(delivered_at)
    .bind(status_code.map(i64::from))
    .bind(error)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Deletes delivered and failed deliveries created before `before`.
pub async fn prune(db: &Db, before: UnixMillis) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1")
        .bind(before)
        .execute(&db.pool)
        .await?
        .rows_affected())
}
