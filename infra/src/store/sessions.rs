//! `web_sessions`: signed-in browsers. Only the SHA-256 of a session's
//! cookie value is stored; see `infra/src/accounts.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::users::User;
use super::Db;
use crate::on_pool;

/// A live session: its user (not disabled), its form token, and when it
/// was last used.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: User,
    pub csrf: String,
    pub last_seen_at: DateTime<Utc>,
}

pub async fn insert(
    db: &Db,
    id_hash: &str,
    user: Uuid,
    csrf: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO web_sessions (id_hash, user_id, csrf, created_at, last_seen_at) \
               VALUES ($1, $2, $3, $4, $4)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(id_hash)
            .bind(user.to_string())
            .bind(csrf)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The session whose cookie hashes to `id_hash`, if its user is not
/// disabled.
pub async fn get(db: &Db, id_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        name: String,
        role: String,
        scope: String,
        csrf: String,
        last_seen_at: DateTime<Utc>,
    }
    let sql = "SELECT u.id, u.name, u.role, u.scope, s.csrf, s.last_seen_at \
               FROM web_sessions s JOIN users u ON u.id = s.user_id \
               WHERE s.id_hash = $1 AND u.disabled_at IS NULL";
    let row: Option<Row> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(id_hash).fetch_optional(pool).await?
    });
    let Some(r) = row else { return Ok(None) };
    let user = super::users::user_from_parts(r.id, r.name, r.role, r.scope)?;
    Ok(Some(SessionRow {
        user,
        csrf: r.csrf,
        last_seen_at: r.last_seen_at,
    }))
}

/// Notes that the session was used at `at`.
pub async fn touch(db: &Db, id_hash: &str, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let sql = "UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1";
    on_pool!(db, pool => {
        sqlx::query(sql).bind(id_hash).bind(at).execute(pool).await.map(|_| ())
    })
}

/// Ends one session.
pub async fn delete(db: &Db, id_hash: &str) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM web_sessions WHERE id_hash = $1";
    on_pool!(db, pool => {
        sqlx::query(sql).bind(id_hash).execute(pool).await.map(|_| ())
    })
}

/// Ends the sessions last used before `before` (housekeeping; an expired
/// session is refused on lookup anyway). How many.
pub async fn delete_idle(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM web_sessions WHERE last_seen_at < $1";
    on_pool!(db, pool => {
        sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected())
    })
}
