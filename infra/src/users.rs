//! Users, roles, scopes and bearer tokens. Only a SHA-256 hash of each token
//! is stored: tokens are 256 random bits, so a fast hash is enough (there is
//! nothing to brute-force), and a leaked table reveals no usable token.

use nuanxin_domain::{Scope, UserRole};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{self, Db};

pub use crate::store::users::User;

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

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `nx_` and 64 hex characters.
pub fn new_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret(format!("nx_{}", hex::encode(bytes)))
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
    store::users::insert(db, &user, &hash_token(token.expose())).await?;
    Ok((user, token))
}

/// The user holding `token`, if any.
pub async fn find_by_token(db: &Db, token: &str) -> Result<Option<User>, sqlx::Error> {
    store::users::by_token_hash(db, &hash_token(token)).await
}

/// On an empty user table, creates the bootstrap admin (scope: everything)
/// holding `token`. Returns whether it did.
pub async fn bootstrap(db: &Db, token: &Secret) -> Result<bool, sqlx::Error> {
    if store::users::count(db).await? > 0 {
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
        Err(e) if store::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
