//! Work-order persistence: create, load, list (filter, sort, keyset cursor), append
//! events under a row lock, read the event log.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::events::{self, Actor, Command, DecideError, Event, EventRecord};
use super::model::{Channel, Priority, Status, Tier, WorkOrder};
use super::sla::SlaPolicy;
use crate::auth::repo::{parse, parse_opt};
use crate::ids::{AssetId, CustomerId, SiteId, WorkOrderId};
use crate::store::{Db, StoreError};
use crate::UnixMillis;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("work order not found")]
    NotFound,
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        AppendError::Store(e.into())
    }
}

fn work_order_from_row(r: &AnyRow) -> Result<WorkOrder, StoreError> {
    let codes: String = r.try_get("fault_codes")?;
    Ok(WorkOrder {
        id: parse(r, "id")?,
        customer_id: parse(r, "customer_id")?,
        asset_id: parse_opt(r, "asset_id")?,
        site_id: parse_opt(r, "site_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        channel: parse(r, "channel")?,
        priority: parse(r, "priority")?,
        tier: parse(r, "tier")?,
        status: parse(r, "status")?,
        fault_codes: serde_json::from_str(&codes).map_err(|e| StoreError::Corrupt(format!("fault_codes: {e}")))?,
        first_response_due: r.try_get("first_response_due")?,
        resolution_due: r.try_get("resolution_due")?,
        first_response_at: r.try_get("first_response_at")?,
        resolved_at: r.try_get("resolved_at")?,
        created_by: parse_opt(r, "created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

fn event_from_row(r: &AnyRow) -> Result<EventRecord, StoreError> {
    let payload: String = r.try_get("payload")?;
    let role: Option<String> = r.try_get("actor_role")?;
    Ok(EventRecord {
        work_order_id: parse(r, "work_order_id")?,
        seq: r.try_get("seq")?,
        actor: Actor {
            who: parse(r, "actor")?,
            role: role.map(|s| s.parse()).transpose().map_err(StoreError::Corrupt)?,
        },
        occurred_at: r.try_get("occurred_at")?,
        event: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
    })
}

async fn insert_event(conn: &mut AnyConnection, rec: &EventRecord) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(&rec.event).expect("events serialize");
    sqlx::query(
        "INSERT INTO work_order_events (work_order_id, seq, kind, actor, actor_role, occurred_at, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(rec.work_order_id.to_string())
    .bind(rec.seq)
    .bind(rec.event.kind())
    .bind(rec.actor.who.to_string())
    .bind(rec.actor.role.map(|r| r.as_str()))
    .bind(rec.occurred_at)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a new work order needs; the tier is looked up from the customer by the caller.
pub struct NewWorkOrder {
    pub customer_id: CustomerId,
    pub asset_id: Option<AssetId>,
    pub site_id: Option<SiteId>,
    pub title: String,
    pub description: String,
    pub channel: Channel,
    pub priority: Priority,
    pub tier: Tier,
    pub fault_codes: Vec<String>,
}

/// Creates a work order: the `created` event and its projection, in one transaction.
pub async fn create(db: &Db, new: NewWorkOrder, actor: &Actor, sla: &SlaPolicy) -> Result<WorkOrder, StoreError> {
    let id = WorkOrderId::new();
    let now = crate::now_millis();
    let d = sla.deadlines(new.tier, new.priority, now);
    let event = Event::Created {
        customer_id: new.customer_id,
        asset_id: new.asset_id,
        site_id: new.site_id,
        title: new.title,
        description: new.description,
        channel: new.channel,
        priority: new.priority,
        tier: new.tier,
        fault_codes: new.fault_codes,
        first_response_due: d.first_response_due,
        resolution_due: d.resolution_due,
    };
    let wo = events::genesis(id, &event, actor, now).expect("a created event yields a genesis state");
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO work_orders (id, customer_id, asset_id, site_id, title, description, channel, priority, tier, status, fault_codes, \
         first_response_due, resolution_due, first_response_at, resolved_at, created_by, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(wo.id.to_string())
    .bind(wo.customer_id.to_string())
    .bind(wo.asset_id.map(|a| a.to_string()))
    .bind(wo.site_id.map(|s| s.to_string()))
    .bind(&wo.title)
    .bind(&wo.description)
    .bind(wo.channel.as_str())
    .bind(wo.priority.as_str())
    .bind(wo.tier.as_str())
    .bind(wo.status.as_str())
    .bind(serde_json::to_string(&wo.fault_codes).expect("strings serialize"))
    .bind(wo.first_response_due)
    .bind(wo.resolution_due)
    .bind(wo.first_response_at)
    .bind(wo.resolved_at)
    .bind(wo.created_by.map(|u| u.to_string()))
    .bind(wo.created_at)
    .bind(wo.updated_at)
    .bind(wo.version)
    .execute(&mut *tx)
    .await?;
    insert_event(&mut tx, &EventRecord { work_order_id: id, seq: 1, actor: *actor, occurred_at: now, event }).await?;
    tx.commit().await?;
    Ok(wo)
}

pub async fn get(db: &Db, id: WorkOrderId) -> Result<Option<WorkOrder>, StoreError> {
    let r = sqlx::query("SELECT * FROM work_orders WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(work_order_from_row).transpose()
}

/// Appends one command's event inside the caller's transaction (see `lock_and_read`).
pub async fn append_in(
    conn: &mut AnyConnection,
    id: WorkOrderId,
    cmd: Command,
    actor: &Actor,
    sla: &SlaPolicy,
    now: UnixMillis,
) -> Result<(WorkOrder, EventRecord), AppendError> {
    let state = lock_and_read(conn, id).await?;
    let event = events::decide(&state, cmd, actor, sla)?;
    let next = events::apply(state, &event, now);
    write_projection(conn, &next).await?;
    let rec = EventRecord { work_order_id: id, seq: next.version, actor: *actor, occurred_at: now, event };
    insert_event(conn, &rec).await?;
    Ok((next, rec))
}

/// Takes the row's write lock and reads it in one statement (a no-op UPDATE ...
/// RETURNING): PostgreSQL serialises appends to one work order, SQLite takes its write
/// lock before the read, so the state cannot be stale and `seq` cannot collide.
async fn lock_and_read(conn: &mut AnyConnection, id: WorkOrderId) -> Result<WorkOrder, AppendError> {
    let row = sqlx::query("UPDATE work_orders SET version = version WHERE id = $1 RETURNING *")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppendError::NotFound)?;
    Ok(work_order_from_row(&row)?)
}

async fn write_projection(conn: &mut AnyConnection, next: &WorkOrder) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE work_orders SET status = $2, priority = $3, first_response_due = $4, resolution_due = $5, \
         first_response_at = $6, resolved_at = $7, updated_at = $8, version = $9 WHERE id = $1",
    )
    .bind(next.id.to_string())
    .bind(next.status.as_str())
    .bind(next.priority.as_str())
    .bind(next.first_response_due)
    .bind(next.resolution_due)
    .bind(next.first_response_at)
    .bind(next.resolved_at)
    .bind(next.updated_at)
    .bind(next.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends one command's event in its own transaction.
pub async fn append(db: &Db, id: WorkOrderId, cmd: Command, actor: &Actor, sla: &SlaPolicy) -> Result<(WorkOrder, EventRecord), AppendError> {
    append_if(db, id, cmd, actor, sla, |_| true).await
}

/// Appends one command's event if `may_see` allows the caller to see the work order
/// (checked on the row the append locks, so no separate read is needed); otherwise
/// `NotFound`, and nothing is written.
pub async fn append_if(
    db: &Db,
    id: WorkOrderId,
    cmd: Command,
    actor: &Actor,
    sla: &SlaPolicy,
    may_see: impl FnOnce(&WorkOrder) -> bool,
) -> Result<(WorkOrder, EventRecord), AppendError> {
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let state = lock_and_read(&mut tx, id).await?;
    if !may_see(&state) {
        return Err(AppendError::NotFound);
    }
    let event = events::decide(&state, cmd, actor, sla)?;
    let next = events::apply(state, &event, now);
    write_projection(&mut tx, &next).await?;
    let rec = EventRecord { work_order_id: id, seq: next.version, actor: *actor, occurred_at: now, event };
    insert_event(&mut tx, &rec).await?;
    tx.commit().await?;
    Ok((next, rec))
}

/// Appends many commands in one transaction (group commit). Each work order is locked
/// and read once, its commands are decided and applied in memory in their order, its
/// projection is written once and its events go in multi-row inserts. Work orders are
/// taken in id order so concurrent batches lock rows in the same order (no deadlock);
/// if any command is refused, nothing of the batch is written.
pub async fn append_batch(db: &Db, items: Vec<(WorkOrderId, Command)>, actor: &Actor, sla: &SlaPolicy) -> Result<usize, AppendError> {
    let n = items.len();
    let mut groups: std::collections::BTreeMap<WorkOrderId, Vec<Command>> = Default::default();
    for (id, cmd) in items {
        groups.entry(id).or_default().push(cmd);
    }
    let now = crate::now_millis();
    let mut tx = db.pool.begin().await?;
    let mut records = Vec::with_capacity(n);
    for (id, cmds) in groups {
        let mut state = lock_and_read(&mut tx, id).await?;
        for cmd in cmds {
            let event = events::decide(&state, cmd, actor, sla)?;
            state = events::apply(state, &event, now);
            records.push(EventRecord { work_order_id: id, seq: state.version, actor: *actor, occurred_at: now, event });
        }
        write_projection(&mut tx, &state).await?;
    }
    insert_events(&mut tx, &records).await?;
    tx.commit().await?;
    Ok(n)
}

/// Multi-row inserts, at most `ROWS` events per statement (7 parameters each: well
/// under SQLite's and PostgreSQL's parameter limits).
async fn insert_events(conn: &mut AnyConnection, records: &[EventRecord]) -> Result<(), sqlx::Error> {
    const ROWS: usize = 100;
    for chunk in records.chunks(ROWS) {
        let mut sql = String::from("INSERT INTO work_order_events (work_order_id, seq, kind, actor, actor_role, occurred_at, payload) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 7;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7));
        }
        let mut q = sqlx::query(&sql);
        for rec in chunk {
            q = q
                .bind(rec.work_order_id.to_string())
                .bind(rec.seq)
                .bind(rec.event.kind())
                .bind(rec.actor.who.to_string())
                .bind(rec.actor.role.map(|r| r.as_str()))
                .bind(rec.occurred_at)
                .bind(serde_json::to_string(&rec.event).expect("events serialize"));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Events of one work order in sequence order, from `after_seq` on.
pub async fn events(db: &Db, id: WorkOrderId, after_seq: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM work_order_events WHERE work_order_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(id.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// The whole event log of a work order.
pub async fn all_events(db: &Db, id: WorkOrderId) -> Result<Vec<EventRecord>, StoreError> {
    events(db, id, 0, u32::MAX).await
}

/// Sort keys a list may be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    ResolutionDue,
    Priority,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::ResolutionDue => "resolution_due",
            SortKey::Priority => "priority",
        }
    }

    /// The value type a cursor for this key must carry.
    pub fn accepts(self, v: &CursorValue) -> bool {
        matches!((self, v), (SortKey::Priority, CursorValue::Text(_)) | (SortKey::CreatedAt | SortKey::UpdatedAt | SortKey::ResolutionDue, CursorValue::Int(_)))
    }

    pub fn parse(s: &str) -> Result<(SortKey, bool), String> {
        let (desc, name) = match s.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, s),
        };
        let key = match name {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "resolution_due" => SortKey::ResolutionDue,
            "priority" => SortKey::Priority,
            other => {
                return Err(format!(
                    "cannot sort by `{other}`; use created_at, updated_at, resolution_due or priority, with a leading - for descending"
                ))
            }
        };
        Ok((key, desc))
    }

    fn value_of(self, w: &WorkOrder) -> CursorValue {
        match self {
            SortKey::CreatedAt => CursorValue::Int(w.created_at),
            SortKey::UpdatedAt => CursorValue::Int(w.updated_at),
            SortKey::ResolutionDue => CursorValue::Int(w.resolution_due),
            SortKey::Priority => CursorValue::Text(w.priority.as_str().to_owned()),
        }
    }
}

/// The position after the last row of a page: its sort value and id.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum CursorValue {
    Int(i64),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The `sort` parameter the cursor was issued for; another sort refuses it.
    pub s: String,
    pub v: CursorValue,
    pub id: WorkOrderId,
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub statuses: Vec<Status>,
    pub priority: Option<Priority>,
    pub channel: Option<Channel>,
    pub customer_id: Option<CustomerId>,
    pub asset_id: Option<AssetId>,
    pub only_id: Option<WorkOrderId>,
    /// (true, t): unresolved and past the resolution deadline at t; (false, t): the rest.
    pub breached_at: Option<(bool, UnixMillis)>,
}

/// The canonical `sort` parameter for a key and direction.
pub fn sort_name(key: SortKey, desc: bool) -> String {
    format!("{}{}", if desc { "-" } else { "" }, key.column())
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A page of work orders and the cursor of the next page (None on the last page).
pub async fn list(
    db: &Db,
    f: &ListFilter,
    sort: SortKey,
    desc: bool,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<WorkOrder>, Option<Cursor>), StoreError> {
    let mut sql = String::from("SELECT * FROM work_orders WHERE 1 = 1");
    let mut binds: Vec<Bind> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, b: Bind| {
        binds.push(b);
        sql.push_str(&clause.replace("$?", &format!("${}", binds.len())));
    };
    if !f.statuses.is_empty() {
        sql.push_str(" AND status IN (");
        for (i, s) in f.statuses.iter().enumerate() {
            push(&mut sql, if i == 0 { "$?" } else { ", $?" }, Bind::Text(s.as_str().into()));
        }
        sql.push(')');
    }
    if let Some(p) = f.priority {
        push(&mut sql, " AND priority = $?", Bind::Text(p.as_str().into()));
    }
    if let Some(c) = f.channel {
        push(&mut sql, " AND channel = $?", Bind::Text(c.as_str().into()));
    }
    if let Some(c) = f.customer_id {
        push(&mut sql, " AND customer_id = $?", Bind::Text(c.to_string()));
    }
    if let Some(a) = f.asset_id {
        push(&mut sql, " AND asset_id = $?", Bind::Text(a.to_string()));
    }
    if let Some(id) = f.only_id {
        push(&mut sql, " AND id = $?", Bind::Text(id.to_string()));
    }
    match f.breached_at {
        Some((true, t)) => push(&mut sql, " AND resolved_at IS NULL AND status NOT IN ('closed', 'cancelled') AND resolution_due < $?", Bind::Int(t)),
        Some((false, t)) => push(&mut sql, " AND NOT (resolved_at IS NULL AND status NOT IN ('closed', 'cancelled') AND resolution_due < $?)", Bind::Int(t)),
        None => {}
    }
    let col = sort.column();
    let (cmp, dir) = if desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some(c) = after {
        let v = match &c.v {
            CursorValue::Int(i) => Bind::Int(*i),
            CursorValue::Text(s) => Bind::Text(s.clone()),
        };
        push(&mut sql, &format!(" AND ({col} {cmp} $?"), v);
        let v2 = match &c.v {
            CursorValue::Int(i) => Bind::Int(*i),
            CursorValue::Text(s) => Bind::Text(s.clone()),
        };
        push(&mut sql, &format!(" OR ({col} = $?"), v2);
        push(&mut sql, &format!(" AND id {cmp} $?))"), Bind::Text(c.id.to_string()));
    }
    sql.push_str(&format!(" ORDER BY {col} {dir}, id {dir} LIMIT {}", i64::from(limit) + 1));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    let rows = q.fetch_all(&db.pool).await?;
    let mut items = rows.iter().map(work_order_from_row).collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|w| Cursor { s: sort_name(sort, desc), v: sort.value_of(w), id: w.id })
    } else {
        None
    };
    Ok((items, next))
}
