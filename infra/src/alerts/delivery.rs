//! Delivering outbox messages to the webhook URLs, at least once.
//!
//! The worker first **fans out** new outbox messages: one `alert_deliveries`
//! row per configured URL (`ON CONFLICT DO NOTHING`, so two processes doing
//! it at once make one row each). Then it posts every delivery that is due:
//! it **claims** the row by moving `next_attempt_ms` to the end of a lease
//! with a conditional UPDATE (another process sees the row as not due), posts
//! the stored body as JSON with `X-Nuanxin-Signature: sha256=<hex
//! HMAC-SHA256(secret, body)>`, and records the attempt (HTTP status or
//! error, and when). A 2xx answer delivers; anything else schedules the next
//! attempt after `retry_base · 2^(attempts-1)`, at most `retry_max`; there is
//! no last attempt. Everything lives in the store, so a restart resumes
//! where it stopped; a crash mid-post leaves a lease that expires and the
//! message is posted again (receivers dedupe by the message `id`, also sent
//! as `X-Nuanxin-Delivery`).

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use nuanxin_projections::{on_pool, Db};
use sha2::Sha256;
use uuid::Uuid;

use super::{woken, AlertConfig};

pub const SIGNATURE_HEADER: &str = "x-nuanxin-signature";
pub const DELIVERY_HEADER: &str = "x-nuanxin-delivery";

/// Posts in flight at once.
const CONCURRENCY: usize = 8;
/// Deliveries claimed per round.
const ROUND: i64 = 32;
/// Outbox messages fanned out per transaction.
const FAN_OUT_BATCH: i64 = 200;

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff(config: &AlertConfig, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    config
        .retry_base
        .saturating_mul(1u32 << exp)
        .min(config.retry_max.max(config.retry_base))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Makes one delivery row per URL for outbox messages not fanned out yet.
/// Returns how many messages it fanned out.
pub async fn fan_out(db: &Db, urls: &[String]) -> Result<usize, sqlx::Error> {
    if urls.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let sql = "SELECT id FROM alert_outbox WHERE NOT fanned_out ORDER BY id LIMIT $1";
        let ids: Vec<String> = on_pool!(db, pool => {
            sqlx::query_scalar(sql).bind(FAN_OUT_BATCH).fetch_all(pool).await?
        });
        if ids.is_empty() {
            return Ok(total);
        }
        let now = now_ms();
        let pairs: Vec<(&String, &String)> = ids
            .iter()
            .flat_map(|id| urls.iter().map(move |u| (id, u)))
            .collect();
        on_pool!(db, pool, DB => {
            let mut tx = pool.begin().await?;
            for chunk in pairs.chunks(500) {
                let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                    "INSERT INTO alert_deliveries (id, outbox_id, url, status, attempts, next_attempt_ms) ",
                );
                qb.push_values(chunk, |mut b, (outbox_id, url)| {
                    b.push_bind(Uuid::now_v7().to_string())
                        .push_bind((*outbox_id).clone())
                        .push_bind((*url).clone())
                        .push_bind("pending")
                        .push_bind(0i32)
                        .push_bind(now);
                });
                qb.push(" ON CONFLICT (outbox_id, url) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new("UPDATE alert_outbox SET fanned_out = ");
            qb.push_bind(true).push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for id in &ids {
                sep.push_bind(id.clone());
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
        });
        total += ids.len();
    }
}

/// A delivery that is due.
#[derive(Debug, Clone)]
struct Due {
    id: String,
    url: String,
    attempts: i32,
    next_attempt_ms: i64,
    body: String,
}

/// Pending deliveries to `urls` due at `now`, oldest first.
async fn due(db: &Db, urls: &[String], now: i64) -> Result<Vec<Due>, sqlx::Error> {
    let rows: Vec<(String, String, i32, i64, String)> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
            "SELECT d.id, d.url, d.attempts, d.next_attempt_ms, o.body FROM alert_deliveries d \
             JOIN alert_outbox o ON o.id = d.outbox_id WHERE d.status = 'pending' \
             AND d.next_attempt_ms <= ",
        );
        qb.push_bind(now).push(" AND d.url IN (");
        let mut sep = qb.separated(", ");
        for u in urls {
            sep.push_bind(u.clone());
        }
        qb.push(") ORDER BY d.next_attempt_ms, d.id LIMIT ").push_bind(ROUND);
        qb.build_query_as().fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, url, attempts, next_attempt_ms, body)| Due {
            id,
            url,
            attempts,
            next_attempt_ms,
            body,
        })
        .collect())
}

/// When the next pending delivery to `urls` is due (Unix ms).
async fn next_due(db: &Db, urls: &[String]) -> Result<Option<i64>, sqlx::Error> {
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
            "SELECT MIN(next_attempt_ms) FROM alert_deliveries WHERE status = 'pending' AND url IN (",
        );
        let mut sep = qb.separated(", ");
        for u in urls {
            sep.push_bind(u.clone());
        }
        qb.push(")");
        qb.build_query_scalar::<Option<i64>>().fetch_one(pool).await
    })
}

/// Takes the delivery for one attempt: only if nobody else moved it since
/// it was read. The lease covers the request timeout.
async fn claim(db: &Db, d: &Due, lease_until: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE alert_deliveries SET next_attempt_ms = $1 \
               WHERE id = $2 AND status = 'pending' AND next_attempt_ms = $3";
    let n = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(lease_until)
            .bind(&d.id)
            .bind(d.next_attempt_ms)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// What one attempt got: the HTTP status, or why there was none.
type Outcome = Result<u16, String>;

async fn post(client: &reqwest::Client, config: &AlertConfig, d: &Due) -> Outcome {
    let mut req = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, &d.id)
        .body(d.body.clone());
    if let Some(secret) = &config.secret {
        req = req.header(
            SIGNATURE_HEADER,
            signature(secret.expose().as_bytes(), d.body.as_bytes()),
        );
    }
    match req.send().await {
        Ok(resp) => Ok(resp.status().as_u16()),
        // Only the kind of failure: reqwest's text would carry the URL,
        // which may hold a token.
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(e) if e.is_connect() => Err("connection failed".into()),
        Err(e) if e.is_request() => Err("request failed".into()),
        Err(_) => Err("no answer".into()),
    }
}

/// Records an attempt and either delivers the row or schedules the next
/// attempt.
async fn record(
    db: &Db,
    config: &AlertConfig,
    d: &Due,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    let at = Utc::now();
    let delivered = matches!(outcome, Ok(code) if (200..300).contains(code));
    let next = at.timestamp_millis() + millis(backoff(config, d.attempts + 1));
    let (code, error) = match outcome {
        Ok(code) => (Some(i32::from(*code)), None),
        Err(e) => (None, Some(e.clone())),
    };
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let attempt: i32 = if delivered {
            sqlx::query_scalar(
                "UPDATE alert_deliveries SET attempts = attempts + 1, status = 'delivered', \
                 delivered_at = COALESCE(delivered_at, $1) WHERE id = $2 RETURNING attempts",
            )
            .bind(at)
            .bind(&d.id)
            .fetch_one(&mut *tx)
            .await?
        } else {
            sqlx::query_scalar(
                "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_ms = $1 \
                 WHERE id = $2 RETURNING attempts",
            )
            .bind(next)
            .bind(&d.id)
            .fetch_one(&mut *tx)
            .await?
        };
        sqlx::query(
            "INSERT INTO alert_delivery_attempts (delivery_id, attempt, at, status_code, error) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&d.id)
        .bind(attempt)
        .bind(at)
        .bind(code)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })?;
    // Per delivery at debug level; `step` logs a summary per round, so a
    // receiver that is down does not flood the log.
    match outcome {
        _ if delivered => tracing::debug!(delivery.id = %d.id, "alert delivered"),
        Ok(code) => tracing::debug!(delivery.id = %d.id, http.status = code,
            attempt = d.attempts + 1, "alert delivery refused; will retry"),
        Err(e) => tracing::debug!(delivery.id = %d.id, error = %e,
            attempt = d.attempts + 1, "alert delivery failed; will retry"),
    }
    Ok(())
}

/// Fans out, then posts everything due until nothing is; returns how long
/// to wait before the next pending attempt (at most a second, so messages
/// scanned by other processes go out promptly).
pub async fn step(
    db: &Db,
    config: &AlertConfig,
    client: &reqwest::Client,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<Duration, sqlx::Error> {
    let urls = &config.webhooks;
    fan_out(db, urls).await?;
    while !*shutdown.borrow() {
        let now = now_ms();
        let due = due(db, urls, now).await?;
        if due.is_empty() {
            break;
        }
        let lease = now + millis(config.request_timeout) + 5_000;
        let mut claimed = Vec::with_capacity(due.len());
        for d in due {
            if claim(db, &d, lease).await? {
                claimed.push(d);
            }
        }
        let results: Vec<(Due, Outcome)> = futures::stream::iter(claimed)
            .map(|d| async move {
                let outcome = post(client, config, &d).await;
                (d, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (d, outcome) in &results {
            record(db, config, d, outcome).await?;
        }
        let ok = results
            .iter()
            .filter(|(_, o)| matches!(o, Ok(code) if (200..300).contains(code)))
            .count();
        let failed = results.len() - ok;
        if ok > 0 {
            tracing::info!(deliveries = ok, "alert webhooks delivered");
        }
        if failed > 0 {
            let refused = results.iter().filter(|(_, o)| o.is_ok()).count() - ok;
            tracing::warn!(
                deliveries = failed,
                refused,
                unanswered = failed - refused,
                "alert webhook deliveries failed; will retry with backoff"
            );
        }
    }
    let wait = match next_due(db, urls).await? {
        Some(at) => (at - now_ms()).clamp(0, 1_000),
        None => 1_000,
    };
    Ok(Duration::from_millis(wait as u64))
}

/// Runs the delivery worker until `shutdown`: after every scan in this
/// process, when the next retry is due, and at least every second. Posts in
/// flight finish before it stops. Without webhook URLs there is nothing to
/// do (messages stay in the outbox for a server that has some).
pub async fn run_worker(
    db: Db,
    config: AlertConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if config.webhooks.is_empty() {
        return;
    }
    if config.secret.is_none() {
        tracing::warn!("NUANXIN_ALERT_WEBHOOK_SECRET is not set: alert webhooks go out unsigned");
    }
    let client = match reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; alerts are not delivered");
            return;
        }
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match step(&db, &config, &client, &shutdown).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(error = %e, "alert delivery step failed; will retry");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = woken().notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = AlertConfig {
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_millis(300),
            ..AlertConfig::default()
        };
        let delays: Vec<u128> = (1..=6).map(|n| backoff(&config, n).as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 300, 300, 300]);
        assert_eq!(backoff(&config, 1000).as_millis(), 300);
    }
}
