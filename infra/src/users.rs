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

/// Token lookups cached in memory, on PostgreSQL, while this process
/// listens for changes to `users`: a trigger notifies `nuanxin_users` on
/// every change (from any process), and the listener empties the cache. A
/// change made by this process empties it before the change is answered
/// ([`TokenCache::forget_all`]), so a revoked token is refused on the very
/// next request here; another process drops it as soon as the notification
/// arrives (milliseconds). Without a listening connection nothing is cached.
/// On SQLite the lookup is an in-process B-tree read and is not cached.
#[derive(Debug, Default)]
pub struct TokenCache {
    users: std::sync::RwLock<std::collections::HashMap<String, User>>,
    listening: std::sync::atomic::AtomicBool,
}

/// Tokens remembered at most (the cache empties when full).
const CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    fn get(&self, hash: &str) -> Option<User> {
        if !self.listening.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    fn put(&self, hash: String, user: User) {
        if !self.listening.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut users = self
            .users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if users.len() >= CACHED_TOKENS {
            users.clear();
        }
        users.insert(hash, user);
    }

    /// Forgets every cached lookup (after any change to a user).
    pub fn forget_all(&self) {
        self.users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The user holding `token`, from the cache or the store.
    pub async fn user(&self, db: &Db, token: &str) -> Result<Option<User>, sqlx::Error> {
        let hash = hash_token(token);
        if let Some(user) = self.get(&hash) {
            return Ok(Some(user));
        }
        let found = store::users::by_token_hash(db, &hash).await?;
        if let Some(user) = &found {
            self.put(hash, user.clone());
        }
        Ok(found)
    }

    /// Keeps the cache in step with `users` until `shutdown` (PostgreSQL:
    /// LISTEN; the cache is used only while the listener is connected).
    pub async fn follow(&self, db: &Db, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        use std::sync::atomic::Ordering;
        let Db::Postgres(pool) = db else {
            return;
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
                l.listen("nuanxin_users").await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = match listener.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for user changes; tokens are not cached");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            self.forget_all();
            self.listening.store(true, Ordering::Release);
            loop {
                tokio::select! {
                    note = listener.recv() => match note {
                        Ok(_) => self.forget_all(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the user-change listener; tokens are not cached until it is back");
                            break;
                        }
                    },
                    _ = shutdown.changed() => {
                        self.listening.store(false, Ordering::Release);
                        return;
                    }
                }
            }
            self.listening.store(false, Ordering::Release);
            self.forget_all();
        }
    }
}
