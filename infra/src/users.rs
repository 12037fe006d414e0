//! Users, roles, scopes and bearer tokens. Only a SHA-256 hash of each token
//! is stored: tokens are 256 random bits, so a fast hash is enough (there is
//! nothing to brute-force), and a leaked table reveals no usable token.

use nuanxin_domain::{Scope, UserRole};
use nuanxin_projections::{on_pool, Db};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub role: UserRole,
    pub scope: Scope,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `nx_` and 64 hex characters.
pub fn new_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret(format!("nx_{}", hex::encode(bytes)))
}

fn user_from_row(
    id: String,
    name: String,
    role: String,
    scope: String,
) -> Result<User, sqlx::Error> {
    let bad = |what: &'static str| sqlx::Error::Decode(what.into());
    Ok(User {
        id: id.parse().map_err(|_| bad("users.id is not a UUID"))?,
        name,
        role: UserRole::parse(&role).map_err(|_| bad("users.role is unknown"))?,
        scope: Scope::parse(&scope).map_err(|_| bad("users.scope is invalid"))?,
    })
}

/// Creates a user with the given token (or a new one) and returns both.
pub async fn create(
    db: &Db,
    name: &str,
    role: UserRole,
    scope: &Scope,
    token: Option<Secret>,
) -> Result<(User, Secret), sqlx::Error> {
    let token = token.unwrap_or_else(new_token);
    let user = User {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        role,
        scope: scope.clone(),
    };
    let sql = "INSERT INTO users (id, name, role, scope, token_hash) VALUES ($1, $2, $3, $4, $5)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user.id.to_string())
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(user.scope.as_str())
            .bind(hash_token(token.expose()))
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok((user, token))
}

/// The user holding `token`, if any.
pub async fn find_by_token(db: &Db, token: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = "SELECT id, name, role, scope FROM users WHERE token_hash = $1";
    let row: Option<(String, String, String, String)> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(hash_token(token)).fetch_optional(pool).await?
    });
    row.map(|(id, name, role, scope)| user_from_row(id, name, role, scope))
        .transpose()
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM users";
    on_pool!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
}

/// On an empty user table, creates the bootstrap admin (scope: everything)
/// holding `token`. Returns whether it did.
pub async fn bootstrap(db: &Db, token: &Secret) -> Result<bool, sqlx::Error> {
    if count(db).await? > 0 {
        return Ok(false);
    }
    match create(
        db,
        "bootstrap admin",
        UserRole::Admin,
        &Scope::everything(),
        Some(token.clone()),
    )
    .await
    {
        Ok(_) => Ok(true),
        // Another process bootstrapped at the same moment.
        Err(e) if crate::repo::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
