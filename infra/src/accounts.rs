//! Signing in to the web pages: logins, passwords and sessions.
//!
//! - A **login** is `[a-z0-9._-]{3,32}`, unique. Users created without one
//!   get `u-` and twelve hex digits of their id.
//! - A **password** is at least [`MIN_PASSWORD`] characters and is kept only
//!   as an argon2id PHC string (the crate's defaults: 19 MiB, 2 passes).
//!   Hashing runs on the blocking pool, off the request threads.
//! - Failed sign-ins are **rate-limited** per login and per process: after
//!   [`MAX_FAILURES`] failures within [`FAILURE_WINDOW`] the login is refused
//!   (even with the right password) until the window has passed. A login
//!   that does not exist is counted the same way, and answers the same, so
//!   that neither the answer nor its timing tells which logins exist.
//! - A **session** is 256 random bits in an HttpOnly cookie; the store keeps
//!   only its SHA-256 and the session's form token (CSRF). It ends at
//!   sign-out, after [`Accounts::idle`] without a request, when the user is
//!   disabled (the lookup joins `users`), or when their password changes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use nuanxin_domain::{Scope, UserRole};
use rand::RngCore;
use uuid::Uuid;

use crate::store::{self, Db};
use crate::users::{hash_token, new_token, Secret, TokenCache, User};

/// The shortest password taken.
pub const MIN_PASSWORD: usize = 10;
/// The longest password taken (argon2 would take more; a limit keeps a
/// request from costing much).
pub const MAX_PASSWORD: usize = 128;
/// Failed sign-ins per login before it is refused for a while.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in, and how long a login stays refused.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a session lives without a request, by default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// A session's last use is written at most this often.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Whether `login` is a valid login.
pub fn valid_login(login: &str) -> bool {
    (3..=32).contains(&login.len())
        && login.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Why a password is not taken, in the API's words.
pub fn password_problem(password: &str) -> Option<&'static str> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        Some("must be at least 10 characters")
    } else if n > MAX_PASSWORD {
        Some("must be at most 128 characters")
    } else {
        None
    }
}

/// The login a user made without one gets.
pub fn default_login(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("u-{}", &hex[..12])
}

/// The argon2id PHC string of `password` (on the blocking pool).
pub async fn hash_password(password: &Secret) -> anyhow::Result<String> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash` (on the blocking pool).
async fn verify_password(password: &Secret, hash: Option<String>) -> anyhow::Result<bool> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        // Without a stored hash, one is still computed, so the time taken
        // does not tell whether the login exists.
        let Some(hash) = hash else {
            let salt = SaltString::generate(&mut OsRng);
            let _ = Argon2::default().hash_password(password.expose().as_bytes(), &salt);
            return Ok(false);
        };
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("a stored password hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

/// A new user's particulars.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: UserRole,
    pub scope: Scope,
    /// None: [`default_login`].
    pub login: Option<String>,
    pub password: Option<Secret>,
    /// None: a new random token.
    pub token: Option<Secret>,
}

/// Why a user was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the login is taken")]
    LoginTaken,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates a user; returns them, their login and their token.
pub async fn create(
    db: &Db,
    new: NewUser,
    at: DateTime<Utc>,
) -> Result<(User, String, Secret), CreateError> {
    let user = User {
        id: Uuid::new_v4(),
        name: new.name,
        role: new.role,
        scope: new.scope,
    };
    let login = new.login.unwrap_or_else(|| default_login(user.id));
    let token = new.token.unwrap_or_else(new_token);
    let password_hash = match &new.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    match store::users::insert(
        db,
        &user,
        &login,
        &hash_token(token.expose()),
        password_hash.as_deref(),
        at,
    )
    .await
    {
        Ok(()) => Ok((user, login, token)),
        Err(e) if store::is_unique_violation(&e) && login_taken(db, &login).await? => {
            Err(CreateError::LoginTaken)
        }
        Err(e) => Err(e.into()),
    }
}

async fn login_taken(db: &Db, login: &str) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM users WHERE login = $1";
    let n: i64 =
        crate::on_pool!(db, pool => sqlx::query_scalar(sql).bind(login).fetch_one(pool).await?);
    Ok(n > 0)
}

/// Sets user `id`'s password and ends their sessions; this process forgets
/// its cached token lookups as for any change to a user. `Ok(false)`: no
/// such user, or disabled.
pub async fn set_password(
    db: &Db,
    cache: &TokenCache,
    id: Uuid,
    password: &Secret,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let hash = hash_password(password).await?;
    let done = store::users::set_password(db, id, &hash, at).await?;
    cache.forget_all();
    Ok(done)
}

/// Whether `password` is user `id`'s current one.
pub async fn check_password(db: &Db, id: Uuid, password: &Secret) -> anyhow::Result<bool> {
    let sql = "SELECT password_hash FROM users WHERE id = $1 AND disabled_at IS NULL";
    let hash: Option<Option<String>> = crate::on_pool!(db, pool => {
        sqlx::query_scalar(sql).bind(id.to_string()).fetch_optional(pool).await?
    });
    verify_password(password, hash.flatten()).await
}

/// The outcome of a sign-in.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: the cookie value (shown once) and the session's user.
    Done { cookie: Secret, user: User },
    /// Wrong login or password (the same answer for both).
    Wrong,
    /// Too many failures for this login: try again later.
    Throttled,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token every form of the session carries.
    pub csrf: String,
}

/// Sign-in and sessions of one server process.
#[derive(Debug)]
pub struct Accounts {
    idle: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for Accounts {
    fn default() -> Self {
        Self::new(DEFAULT_IDLE)
    }
}

/// Logins remembered with failures at most (the map empties when full).
const REMEMBERED_FAILURES: usize = 100_000;

impl Accounts {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            failures: Mutex::default(),
        }
    }

    /// How long a session lives without a request.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    fn throttled(&self, login: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(login)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    fn failed(&self, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= REMEMBERED_FAILURES {
            failures.clear();
        }
        let entry = failures
            .entry(login.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(login);
    }

    /// Signs `login` in with `password`, opening a session at `at`.
    pub async fn sign_in(
        &self,
        db: &Db,
        login: &str,
        password: &Secret,
        at: DateTime<Utc>,
    ) -> anyhow::Result<SignIn> {
        let login = login.trim().to_ascii_lowercase();
        if self.throttled(&login) {
            return Ok(SignIn::Throttled);
        }
        let found = if valid_login(&login) {
            store::users::by_login(db, &login).await?
        } else {
            None
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, None),
        };
        let ok = verify_password(password, hash).await?;
        let Some(user) = user.filter(|_| ok) else {
            self.failed(&login);
            return Ok(SignIn::Wrong);
        };
        self.succeeded(&login);
        let cookie = new_token();
        store::sessions::insert(db, &hash_token(cookie.expose()), user.id, &random_hex(), at)
            .await?;
        Ok(SignIn::Done { cookie, user })
    }

    /// The session of cookie value `cookie`, if live at `at` (its last use
    /// is moved forward).
    pub async fn session(
        &self,
        db: &Db,
        cookie: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Session>, sqlx::Error> {
        let id_hash = hash_token(cookie);
        let Some(row) = store::sessions::get(db, &id_hash).await? else {
            return Ok(None);
        };
        let idle = chrono::TimeDelta::from_std(self.idle).unwrap_or(chrono::TimeDelta::MAX);
        if at - row.last_seen_at >= idle {
            store::sessions::delete(db, &id_hash).await?;
            return Ok(None);
        }
        if at - row.last_seen_at >= TOUCH_EVERY {
            store::sessions::touch(db, &id_hash, at).await?;
        }
        Ok(Some(Session {
            user: row.user,
            csrf: row.csrf,
        }))
    }

    /// Ends the session of cookie value `cookie`.
    pub async fn sign_out(&self, db: &Db, cookie: &str) -> Result<(), sqlx::Error> {
        store::sessions::delete(db, &hash_token(cookie)).await
    }

    /// Removes sessions idle past their time at `at` (housekeeping).
    pub async fn sweep(&self, db: &Db, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let idle = chrono::TimeDelta::from_std(self.idle).unwrap_or(chrono::TimeDelta::MAX);
        store::sessions::delete_idle(db, at - idle).await
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        for ok in ["admin", "wang.fang", "li_2", "a-b", &"x".repeat(32)] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["ab", "Admin", "王芳", "a b", "", &"x".repeat(33), "a@b"] {
            assert!(!valid_login(bad), "{bad}");
        }
        assert!(valid_login(&default_login(Uuid::new_v4())));
    }

    #[test]
    fn passwords() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("长度为十个字的一个密码").is_none());
        assert!(password_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn failures_throttle_a_login_and_success_clears_them() {
        let a = Accounts::default();
        for _ in 0..MAX_FAILURES - 1 {
            a.failed("admin");
        }
        assert!(!a.throttled("admin"));
        a.failed("admin");
        assert!(a.throttled("admin"));
        assert!(!a.throttled("other"));
        a.succeeded("admin");
        assert!(!a.throttled("admin"));
    }
}
