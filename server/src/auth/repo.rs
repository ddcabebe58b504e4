//! Queries for users, login sessions and invites.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Role;
use crate::ids::{AuthSessionId, CustomerId, InviteId, UserId, WorkOrderId};
use crate::store::{Db, StoreError};
use crate::UnixMillis;

#[derive(Clone, Debug, serde::Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub customer_id: Option<CustomerId>,
    pub locale: String,
    pub disabled: bool,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(skip)]
    pub password_hash: String,
}

pub(crate) fn parse<T: std::str::FromStr>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("{col} = `{s}`: {e}")))
}

pub(crate) fn parse_opt<T: std::str::FromStr>(row: &AnyRow, col: &str) -> Result<Option<T>, StoreError>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("{col} = `{s}`: {e}"))))
        .transpose()
}

const USER_COLS: &str = "id, username, display_name, role, customer_id, locale, disabled, created_at, password_hash";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: parse(row, "id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: parse(row, "role")?,
        customer_id: parse_opt(row, "customer_id")?,
        locale: row.try_get("locale")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        password_hash: row.try_get("password_hash")?,
    })
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub customer_id: Option<CustomerId>,
    pub locale: &'a str,
    pub password_hash: String,
}

pub async fn insert_user(db: &Db, u: NewUser<'_>) -> Result<User, sqlx::Error> {
    let id = UserId::new();
    let now = crate::now_millis();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, password_hash, customer_id, locale, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(id.to_string())
    .bind(u.username)
    .bind(u.display_name)
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.customer_id.map(|c| c.to_string()))
    .bind(u.locale)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(User {
        id,
        username: u.username.to_owned(),
        display_name: u.display_name.to_owned(),
        role: u.role,
        customer_id: u.customer_id,
        locale: u.locale.to_owned(),
        disabled: false,
        created_at: now,
        password_hash: u.password_hash,
    })
}

pub async fn user_by_name(db: &Db, username: &str) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn user_by_id(db: &Db, id: UserId) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Users ordered by id (creation time), after `after`, optionally of one role.
pub async fn list_users(db: &Db, role: Option<Role>, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLS} FROM users WHERE ($1 = '' OR role = $1) AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(role.map(|r| r.as_str()).unwrap_or(""))
    .bind(after.map(|a| a.to_string()).unwrap_or_default())
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(user_from_row).collect()
}

pub async fn count_users(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&db.pool).await?)
}

/// Sets a new password hash and revokes every session of the user.
pub async fn set_password(db: &Db, id: UserId, password_hash: &str) -> Result<bool, StoreError> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(crate::now_millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Who a login session belongs to.
pub enum SessionOwner {
    User(UserId),
    Invite(InviteId),
}

pub async fn create_session(
    conn: &mut sqlx::AnyConnection,
    owner: SessionOwner,
    refresh_hash: &str,
    now: UnixMillis,
    expires_at: UnixMillis,
) -> Result<AuthSessionId, sqlx::Error> {
    let id = AuthSessionId::new();
    let (uid, iid) = match owner {
        SessionOwner::User(u) => (Some(u.to_string()), None),
        SessionOwner::Invite(i) => (None, Some(i.to_string())),
    };
    sqlx::query(
        "INSERT INTO auth_sessions (id, user_id, invite_id, refresh_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(uid)
    .bind(iid)
    .bind(refresh_hash)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The live state of a login session, checked on every authenticated request.
pub async fn session_is_live(db: &Db, id: AuthSessionId, now: UnixMillis) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT s.revoked_at, s.expires_at, COALESCE(u.disabled, 0) AS disabled \
         FROM auth_sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        None => false,
        Some(r) => {
            let revoked: Option<i64> = r.try_get("revoked_at")?;
            let expires: i64 = r.try_get("expires_at")?;
            let disabled: i64 = r.try_get("disabled")?;
            revoked.is_none() && expires > now && disabled == 0
        }
    })
}

pub async fn revoke_session(db: &Db, id: AuthSessionId, now: UnixMillis) -> Result<(), StoreError> {
    sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The session a refresh token belongs to, if it is live.
pub struct RefreshTarget {
    pub session_id: AuthSessionId,
    pub user_id: Option<UserId>,
    pub invite_id: Option<InviteId>,
    pub expires_at: UnixMillis,
}

pub async fn session_by_refresh(db: &Db, hash: &str, now: UnixMillis) -> Result<Option<RefreshTarget>, StoreError> {
    let row = sqlx::query(
        "SELECT id, user_id, invite_id, expires_at FROM auth_sessions \
         WHERE refresh_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(RefreshTarget {
            session_id: parse(&r, "id")?,
            user_id: parse_opt(&r, "user_id")?,
            invite_id: parse_opt(&r, "invite_id")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Swaps the refresh hash atomically; false when another refresh won the race.
pub async fn rotate_refresh(db: &Db, id: AuthSessionId, old_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
    let n = sqlx::query("UPDATE auth_sessions SET refresh_hash = $1 WHERE id = $2 AND refresh_hash = $3 AND revoked_at IS NULL")
        .bind(new_hash)
        .bind(id.to_string())
        .bind(old_hash)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn insert_invite(
    conn: &mut sqlx::AnyConnection,
    id: InviteId,
    work_order: WorkOrderId,
    created_by: UserId,
    now: UnixMillis,
    expires_at: UnixMillis,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO invites (id, work_order_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.to_string())
        .bind(work_order.to_string())
        .bind(created_by.to_string())
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks an invite used; false when it was already used, expired or does not exist.
pub async fn consume_invite(conn: &mut sqlx::AnyConnection, id: InviteId, now: UnixMillis) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE invites SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1")
        .bind(now)
        .bind(id.to_string())
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The work order of an invite (for refreshing an invite login).
pub async fn invite_work_order(db: &Db, id: InviteId) -> Result<Option<WorkOrderId>, StoreError> {
    let row = sqlx::query("SELECT work_order_id FROM invites WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| parse(&r, "work_order_id")).transpose()
}
