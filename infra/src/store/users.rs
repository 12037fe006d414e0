//! `users`: who may use Nuanxin, with their role, jurisdiction and the hash
//! of their bearer token; whether and why they were disabled (users are
//! never deleted); and `user_last_seen`.

use chrono::{DateTime, Utc};
use nuanxin_domain::{Scope, UserRole};
use uuid::Uuid;

use super::{prefix_upper, uuid, Db};
use crate::on_pool;

/// A user of Nuanxin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub role: UserRole,
    pub scope: Scope,
}

impl User {
    /// The user as the recorder of an action (the event's attribution).
    pub fn recorder(&self) -> nuanxin_domain::metadata::Recorder {
        nuanxin_domain::metadata::Recorder {
            id: self.id,
            name: self.name.clone(),
            role: self.role,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    name: String,
    role: String,
    scope: String,
}

/// A user from the columns `id, name, role, scope`.
pub(crate) fn user_from_parts(
    id: String,
    name: String,
    role: String,
    scope: String,
) -> Result<User, sqlx::Error> {
    User::try_from(UserRow {
        id,
        name,
        role,
        scope,
    })
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

/// Inserts a user holding the token whose hash is `token_hash`, signing in
/// as `login` with the password whose argon2id hash is `password_hash`
/// (none: no web sign-in until one is set).
pub async fn insert(
    db: &Db,
    user: &User,
    login: &str,
    token_hash: &str,
    password_hash: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO users (id, name, role, scope, token_hash, login, password_hash, \
               password_set_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user.id.to_string())
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(user.scope.as_str())
            .bind(token_hash)
            .bind(login)
            .bind(password_hash)
            .bind(password_hash.map(|_| at))
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The user (not disabled) who signs in as `login`, with their password
/// hash (none: no password set).
pub async fn by_login(db: &Db, login: &str) -> Result<Option<(User, Option<String>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: Option<String>,
    }
    let sql = "SELECT id, name, role, scope, password_hash FROM users \
               WHERE login = $1 AND disabled_at IS NULL";
    let row: Option<Row> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(login).fetch_optional(pool).await?
    });
    row.map(|r| Ok((User::try_from(r.user)?, r.password_hash)))
        .transpose()
}

/// Sets the password hash of a user who is not disabled and ends all their
/// web sessions, in one transaction. Whether it did (`false`: no such
/// user, or disabled).
pub async fn set_password(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET password_hash = $2, password_set_at = $3 \
               WHERE id = $1 AND disabled_at IS NULL";
    let end = "DELETE FROM web_sessions WHERE user_id = $1";
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let done = sqlx::query(sql)
            .bind(id.to_string())
            .bind(password_hash)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(end).bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done == 1)
    })
}

/// The user whose token hashes to `token_hash`.
pub async fn by_token_hash(db: &Db, token_hash: &str) -> Result<Option<User>, sqlx::Error> {
    let sql =
        "SELECT id, name, role, scope FROM users WHERE token_hash = $1 AND disabled_at IS NULL";
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
/// scope is one of `scopes`, and who are not disabled.
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
        qb.push(") AND disabled_at IS NULL");
        qb.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(User::try_from).collect()
}

/// A user as an admin sees them in the list: with when (and why) they were
/// disabled, and when they were last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: User,
    /// What they sign in with.
    pub login: String,
    /// Whether they have a password (may sign in to the web pages).
    pub has_password: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// An admin's user id, or `os:<name>` (the command line).
    pub disabled_by: Option<String>,
    pub disabled_reason: Option<String>,
    pub token_rotated_at: Option<DateTime<Utc>>,
    /// The user, an admin's user id, or `os:<name>` (the command line).
    pub token_rotated_by: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct UserRecordRow {
    id: String,
    name: String,
    role: String,
    scope: String,
    login: Option<String>,
    has_password: bool,
    disabled_at: Option<DateTime<Utc>>,
    disabled_by: Option<String>,
    disabled_reason: Option<String>,
    token_rotated_at: Option<DateTime<Utc>>,
    token_rotated_by: Option<String>,
    last_seen_at: Option<DateTime<Utc>>,
}

impl TryFrom<UserRecordRow> for UserRecord {
    type Error = sqlx::Error;

    fn try_from(r: UserRecordRow) -> Result<Self, sqlx::Error> {
        Ok(UserRecord {
            user: User::try_from(UserRow {
                id: r.id,
                name: r.name,
                role: r.role,
                scope: r.scope,
            })?,
            login: r.login.unwrap_or_default(),
            has_password: r.has_password,
            disabled_at: r.disabled_at,
            disabled_by: r.disabled_by,
            disabled_reason: r.disabled_reason,
            token_rotated_at: r.token_rotated_at,
            token_rotated_by: r.token_rotated_by,
            last_seen_at: r.last_seen_at,
        })
    }
}

const RECORD_COLUMNS: &str = "SELECT u.id, u.name, u.role, u.scope, u.login, \
     (u.password_hash IS NOT NULL) AS has_password, u.disabled_at, \
     u.disabled_by, u.disabled_reason, u.token_rotated_at, u.token_rotated_by, \
     s.seen_at AS last_seen_at \
     FROM users u LEFT JOIN user_last_seen s ON s.user_id = u.id";

/// Users whose scope lies within `within` (a scope: a code prefix, `""`
/// for everything), disabled ones too, in the order of their ids, after
/// `after`.
pub async fn list(
    db: &Db,
    within: &Scope,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<UserRecord>, sqlx::Error> {
    let prefix = within.as_str();
    let mut sql = format!("{RECORD_COLUMNS} WHERE u.id > $1");
    if !prefix.is_empty() {
        sql.push_str(" AND u.scope >= $2 AND u.scope < $3");
    }
    sql.push_str(&format!(" ORDER BY u.id LIMIT {limit}"));
    // Every id is a UUID (36 characters): "" sorts before all of them.
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let rows: Vec<UserRecordRow> = on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql).bind(after);
        if !prefix.is_empty() {
            q = q.bind(prefix.to_owned()).bind(prefix_upper(prefix));
        }
        q.fetch_all(pool).await?
    });
    rows.into_iter().map(UserRecord::try_from).collect()
}

/// One user, disabled or not.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<UserRecord>, sqlx::Error> {
    let sql = format!("{RECORD_COLUMNS} WHERE u.id = $1");
    let row: Option<UserRecordRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?
    });
    row.map(UserRecord::try_from).transpose()
}

/// Disables a user who is not disabled yet. Whether it did (`false`: no
/// such user, or already disabled).
pub async fn disable(
    db: &Db,
    id: Uuid,
    at: DateTime<Utc>,
    by: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET disabled_at = $2, disabled_by = $3, disabled_reason = $4 \
               WHERE id = $1 AND disabled_at IS NULL";
    let done = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(id.to_string())
            .bind(at)
            .bind(by)
            .bind(reason)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

/// Gives a user who is not disabled the token whose hash is `token_hash`
/// (the old one stops matching). Whether it did (`false`: no such user, or
/// disabled).
pub async fn replace_token(
    db: &Db,
    id: Uuid,
    token_hash: &str,
    at: DateTime<Utc>,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET token_hash = $2, token_rotated_at = $3, token_rotated_by = $4 \
               WHERE id = $1 AND disabled_at IS NULL";
    let done = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(id.to_string())
            .bind(token_hash)
            .bind(at)
            .bind(by)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

/// Notes that each user was seen at the instant given (keeping a later
/// one already stored).
pub async fn record_seen(db: &Db, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), sqlx::Error> {
    if seen.is_empty() {
        return Ok(());
    }
    let later = match db {
        Db::Sqlite(_) => "MAX(user_last_seen.seen_at, excluded.seen_at)",
        Db::Postgres(_) => "GREATEST(user_last_seen.seen_at, excluded.seen_at)",
    };
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("INSERT INTO user_last_seen (user_id, seen_at) ");
        qb.push_values(seen, |mut row, (id, at)| {
            row.push_bind(id.to_string()).push_bind(*at);
        });
        qb.push(format!(" ON CONFLICT (user_id) DO UPDATE SET seen_at = {later}"));
        qb.build().execute(pool).await.map(|_| ())
    })
}
