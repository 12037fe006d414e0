//! Users, roles, scopes and bearer tokens. Only a SHA-256 hash of each token
//! is stored: tokens are 256 random bits, so a fast hash is enough (there is
//! nothing to brute-force), and a leaked table reveals no usable token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nuanxin_domain::{Scope, UserRole};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{self, Db};

pub use crate::store::users::{User, UserRecord};

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
    let login = crate::accounts::default_login(user.id);
    let at = Utc::now();
    store::users::insert(db, &user, &login, &hash_token(token.expose()), None, at).await?;
    Ok((user, token))
}

/// The user holding `token`, if any.
pub async fn find_by_token(db: &Db, token: &str) -> Result<Option<User>, sqlx::Error> {
    store::users::by_token_hash(db, &hash_token(token)).await
}

/// On an empty user table, creates the bootstrap admin (login `admin`,
/// scope: everything) holding `token` (none: a random one nobody sees) and
/// signing in with `password` (none: no web sign-in until one is set).
/// Returns whether it did.
pub async fn bootstrap(
    db: &Db,
    token: Option<&Secret>,
    password: Option<&Secret>,
) -> anyhow::Result<bool> {
    if store::users::count(db).await? > 0 {
        return Ok(false);
    }
    let new = crate::accounts::NewUser {
        name: "bootstrap admin".into(),
        role: UserRole::Admin,
        scope: Scope::everything(),
        login: Some("admin".into()),
        password: password.cloned(),
        token: token.cloned(),
    };
    match crate::accounts::create(db, new, Utc::now()).await {
        Ok(_) => Ok(true),
        // Another process bootstrapped at the same moment.
        Err(crate::accounts::CreateError::LoginTaken) => Ok(false),
        Err(crate::accounts::CreateError::Store(e)) if store::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
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
///
/// A lookup that was under way while the cache was emptied does not put
/// its (possibly stale) answer in the cache: every [`TokenCache::forget_all`]
/// moves a generation counter, and an answer read in an older generation
/// is not kept. So a lookup that read a user's row just before it was
/// disabled cannot bring the disabled token back after the flush.
#[derive(Debug, Default)]
pub struct TokenCache {
    users: RwLock<HashMap<String, User>>,
    generation: AtomicU64,
    listening: AtomicBool,
}

/// Tokens remembered at most (the cache empties when full).
const CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    fn get(&self, hash: &str) -> Option<User> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// Keeps `user` for `hash` if the cache was not emptied since
    /// `generation` (checked under the lock that `forget_all` takes).
    fn put(&self, hash: String, user: User, generation: u64) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if users.len() >= CACHED_TOKENS {
            users.clear();
        }
        users.insert(hash, user);
    }

    /// Forgets every cached lookup (after any change to a user), and every
    /// lookup under way.
    pub fn forget_all(&self) {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.clear();
    }

    /// The user holding `token`, from the cache or the store.
    pub async fn user(&self, db: &Db, token: &str) -> Result<Option<User>, sqlx::Error> {
        let hash = hash_token(token);
        if let Some(user) = self.get(&hash) {
            return Ok(Some(user));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let found = store::users::by_token_hash(db, &hash).await?;
        if let Some(user) = &found {
            self.put(hash, user.clone(), generation);
        }
        Ok(found)
    }

    /// Keeps the cache in step with `users` until `shutdown` (PostgreSQL:
    /// LISTEN; the cache is used only while the listener is connected). A
    /// lost connection stops the caching and empties the cache (a
    /// notification may have been missed) until a new listener is in place.
    pub async fn follow(&self, db: &Db, mut shutdown: tokio::sync::watch::Receiver<bool>) {
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
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            self.forget_all();
            self.listening.store(true, Ordering::Release);
            loop {
                tokio::select! {
                    // `try_recv`, not `recv`: `recv` reconnects silently and
                    // notifications sent meanwhile would be lost.
                    note = listener.try_recv() => match note {
                        Ok(Some(_)) => self.forget_all(),
                        Ok(None) => {
                            tracing::warn!("the user-change listener lost its connection; tokens are not cached until it is back");
                            break;
                        }
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

/// Users whose scope lies within `within`, disabled ones too, in the
/// order of their ids, after `after`.
pub async fn list(
    db: &Db,
    within: &Scope,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<UserRecord>, sqlx::Error> {
    store::users::list(db, within, after, limit).await
}

/// One user, disabled or not.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<UserRecord>, sqlx::Error> {
    store::users::get(db, id).await
}

/// Why a change to a user was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    /// The user is disabled (already, or so cannot get a new token).
    Disabled,
}

/// Disables user `id` at `at`: their token is refused from the very next
/// request on (this process forgets its cached lookups before returning;
/// others on the notification). `by` is the admin's id, or `os:<name>` from
/// the command line. Users are never deleted: what they recorded keeps
/// their name.
pub async fn disable(
    db: &Db,
    cache: &TokenCache,
    id: Uuid,
    at: DateTime<Utc>,
    by: &str,
    reason: &str,
) -> Result<Result<UserRecord, Refused>, sqlx::Error> {
    let done = store::users::disable(db, id, at, by, reason).await?;
    cache.forget_all();
    if !done {
        return Ok(Err(match store::users::get(db, id).await? {
            None => Refused::NotFound,
            Some(_) => Refused::Disabled,
        }));
    }
    Ok(store::users::get(db, id).await?.ok_or(Refused::NotFound))
}

/// Gives user `id` a new token (returned, to be shown once): the old one is
/// refused from the very next request on, as for [`disable`]. A disabled
/// user gets none.
pub async fn rotate_token(
    db: &Db,
    cache: &TokenCache,
    id: Uuid,
    at: DateTime<Utc>,
    by: &str,
) -> Result<Result<(UserRecord, Secret), Refused>, sqlx::Error> {
    let token = new_token();
    let done = store::users::replace_token(db, id, &hash_token(token.expose()), at, by).await?;
    cache.forget_all();
    match store::users::get(db, id).await? {
        None => Ok(Err(Refused::NotFound)),
        Some(_) if !done => Ok(Err(Refused::Disabled)),
        Some(record) => Ok(Ok((record, token))),
    }
}

/// How close `last_seen_at` is to a user's last request: it is written at
/// most once per this interval per user and server process, so it may be
/// up to this much (plus the moment the write takes) older than the
/// user's latest request. It is never newer than a real request.
pub const LAST_SEEN_PRECISION: Duration = Duration::from_secs(5 * 60);

/// Sightings waiting for the writer at most (more are dropped, and noted
/// again on the user's next request).
const LAST_SEEN_QUEUE: usize = 1024;

/// Last-seen times, recorded off the request path: a request only looks
/// the user up in an in-memory map (one short lock); at most once per
/// [`LAST_SEEN_PRECISION`] per user it queues the instant for
/// [`LastSeen::run`], which writes `user_last_seen` (a table of its own, so
/// the write does not empty any token cache).
#[derive(Debug)]
pub struct LastSeen {
    /// When this process last queued each user.
    queued: Mutex<HashMap<Uuid, Instant>>,
    tx: tokio::sync::mpsc::Sender<Sighting>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Sighting>>>,
}

/// A user seen at an instant.
type Sighting = (Uuid, DateTime<Utc>);

impl Default for LastSeen {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(LAST_SEEN_QUEUE);
        Self {
            queued: Mutex::default(),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

/// Users remembered at most (the map empties when full: at worst one
/// extra write per user).
const SEEN_USERS: usize = 100_000;

impl LastSeen {
    /// Notes that `user` made a request at `at`.
    pub fn touch(&self, user: Uuid, at: DateTime<Utc>) {
        let now = Instant::now();
        {
            let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
            if queued
                .get(&user)
                .is_some_and(|t| now.duration_since(*t) < LAST_SEEN_PRECISION)
            {
                return;
            }
            if queued.len() >= SEEN_USERS {
                queued.clear();
            }
            queued.insert(user, now);
        }
        if self.tx.try_send((user, at)).is_err() {
            self.forget(&[user]);
        }
    }

    fn forget(&self, users: &[Uuid]) {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        for u in users {
            queued.remove(u);
        }
    }

    /// Writes the queued sightings until `shutdown` (then the rest). Runs
    /// once per process (a second call returns at once).
    pub async fn run(&self, db: &Db, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(mut rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        loop {
            let first = tokio::select! {
                first = rx.recv() => first,
                _ = shutdown.changed() => None,
            };
            let mut seen: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
            let stopping = first.is_none();
            for (user, at) in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                let e = seen.entry(user).or_insert(at);
                *e = (*e).max(at);
            }
            if !seen.is_empty() {
                let seen: Vec<_> = seen.into_iter().collect();
                if let Err(e) = store::users::record_seen(db, &seen).await {
                    tracing::warn!(error = %e, users = seen.len(), "could not record when users were last seen");
                    self.forget(&seen.iter().map(|(u, _)| *u).collect::<Vec<_>>());
                }
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: Uuid::new_v4(),
            name: "Wang Fang".into(),
            role: UserRole::Caseworker,
            scope: Scope::parse("450305").unwrap(),
        }
    }

    #[test]
    fn a_lookup_under_way_while_the_cache_empties_is_not_kept() {
        let cache = TokenCache::default();
        cache.listening.store(true, Ordering::Release);
        // A lookup starts (reads the generation), the user is disabled and
        // the cache emptied, then the lookup's answer arrives: not kept.
        let generation = cache.generation.load(Ordering::Acquire);
        cache.forget_all();
        cache.put("h".into(), user(), generation);
        assert_eq!(cache.get("h"), None);
        // A lookup of the current generation is kept, until the next flush.
        let generation = cache.generation.load(Ordering::Acquire);
        let u = user();
        cache.put("h".into(), u.clone(), generation);
        assert_eq!(cache.get("h"), Some(u));
        cache.forget_all();
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn nothing_is_cached_without_a_listener() {
        let cache = TokenCache::default();
        let generation = cache.generation.load(Ordering::Acquire);
        cache.put("h".into(), user(), generation);
        assert_eq!(cache.get("h"), None);
    }

    #[tokio::test]
    async fn last_seen_queues_a_user_at_most_once_per_interval() {
        let seen = LastSeen::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let at = Utc::now();
        for _ in 0..100 {
            seen.touch(a, at);
        }
        seen.touch(b, at);
        let mut rx = seen.rx.lock().unwrap().take().unwrap();
        assert_eq!(rx.try_recv().ok(), Some((a, at)));
        assert_eq!(rx.try_recv().ok(), Some((b, at)));
        assert!(rx.try_recv().is_err(), "one write per user per interval");
    }
}
