//! `users`: who may use Nuanxin, with their role, jurisdiction and the hash
//! of their bearer token.

use nuanxin_domain::{Scope, UserRole};
use uuid::Uuid;

use super::{uuid, Db};
use crate::on_pool;

/// A user of Nuanxin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub role: UserRole,
    pub scope: Scope,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    name: String,
    role: String,
    scope: String,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(r: UserRow) -> Result<Self, sqlx::Error> {
        let bad = |what: &'static str| sqlx::Error::Decode(what.into());
        Ok(User {
            id: uuid(&r.id, "users.id")?,
            name: r.name,
            role: UserRole::parse(&r.role).map_err(|_| bad("users.role is unknown"))?,
            scope: Scope::parse(&r.scope).map_err(|_| bad("users.scope is invalid"))?,
        })
    }
}

/// Inserts a user holding the token whose hash is `token_hash`.
pub async fn insert(db: &Db, user: &User, token_hash: &str) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO users (id, name, role, scope, token_hash) VALUES ($1, $2, $3, $4, $5)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user.id.to_string())
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(user.scope.as_str())
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The user whose token hashes to `token_hash`.
pub async fn by_token_hash(db: &Db, token_hash: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = "SELECT id, name, role, scope FROM users WHERE token_hash = $1";
    let row: Option<UserRow> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(token_hash).fetch_optional(pool).await?
    });
    row.map(User::try_from).transpose()
}

/// How many users there are.
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM users";
    on_pool!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
}

/// Supervisors and admins (and, with `caseworkers`, caseworkers) whose
/// scope is one of `scopes`.
pub async fn with_scopes(
    db: &Db,
    scopes: &[String],
    caseworkers: bool,
) -> Result<Vec<User>, sqlx::Error> {
    let rows: Vec<UserRow> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("SELECT id, name, role, scope FROM users WHERE scope IN (");
        let mut sep = qb.separated(", ");
        for s in scopes {
            sep.push_bind(s.clone());
        }
        qb.push(") AND role IN ('supervisor', 'admin'");
        if caseworkers {
            qb.push(", 'caseworker'");
        }
        qb.push(")");
        qb.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(User::try_from).collect()
}
