//! `webhook_config`: the alert webhooks every server of one database posts
//! to — the URLs, and a fingerprint of the signing secret (never the secret).

use chrono::{DateTime, Utc};

use super::{Db, Tx};
use crate::{on_pool, on_tx};

/// The advisory-lock key under which a starting server compares its
/// configuration with the stored one (PostgreSQL).
const LOCK_KEY: i64 = 0x006e_7561_6e78_696e_i64 << 8 | 2;

/// The configuration stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredWebhooks {
    /// The URLs, one per line, sorted.
    pub urls: String,
    /// `sha256:<hex>` of the signing secret, or empty when unsigned.
    pub secret_hash: String,
    pub set_at: DateTime<Utc>,
}

/// How a starting server's configuration compares with the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// None was stored: this one is now.
    First,
    Same,
    /// It differed, but no other server was running: this one replaced it.
    Replaced,
    /// It differs from the one the `others` running servers use.
    Differs {
        others: i64,
    },
}

/// The stored configuration, if any.
pub async fn stored(db: &Db) -> Result<Option<StoredWebhooks>, sqlx::Error> {
    let sql = "SELECT urls, secret_hash, set_at FROM webhook_config WHERE id = 1";
    on_pool!(db, pool => sqlx::query_as(sql).fetch_optional(pool).await)
}

/// Compares `urls`/`secret_hash` with the stored configuration, storing
/// them when there is none — or when there is a different one but no
/// server other than the one whose leadership session is named
/// `own_session` is running (on SQLite there are none). The comparison
/// holds a lock, so two servers starting at once cannot both store theirs.
pub async fn agree(
    db: &Db,
    urls: &str,
    secret_hash: &str,
    own_session: &str,
) -> Result<Agreement, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    if let Tx::Postgres(t) = &mut tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut **t)
            .await?;
    }
    let current: Option<(String, String)> = on_tx!(&mut tx, conn => {
        sqlx::query_as("SELECT urls, secret_hash FROM webhook_config WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
    });
    let agreement = match current {
        Some((u, s)) if u == urls && s == secret_hash => Agreement::Same,
        Some(_) => match other_servers(&mut tx, own_session).await? {
            0 => Agreement::Replaced,
            others => Agreement::Differs { others },
        },
        None => Agreement::First,
    };
    if matches!(agreement, Agreement::First | Agreement::Replaced) {
        let sql =
            "INSERT INTO webhook_config (id, urls, secret_hash, set_at) VALUES (1, $1, $2, $3) \
                   ON CONFLICT (id) DO UPDATE SET urls = excluded.urls, \
                   secret_hash = excluded.secret_hash, set_at = excluded.set_at";
        on_tx!(&mut tx, conn => {
            sqlx::query(sql)
                .bind(urls)
                .bind(secret_hash)
                .bind(Utc::now())
                .execute(&mut *conn)
                .await?;
        });
    }
    tx.commit().await?;
    Ok(agreement)
}

/// Servers connected to this database other than the one whose leadership
/// session is named `own_application_name` (servers are known by theirs).
async fn other_servers(tx: &mut Tx, own_application_name: &str) -> Result<i64, sqlx::Error> {
    match tx {
        Tx::Sqlite(_) => Ok(0),
        Tx::Postgres(t) => {
            sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name LIKE 'nuanxin leader %' AND application_name <> $1",
            )
            .bind(own_application_name)
            .fetch_one(&mut **t)
            .await
        }
    }
}
