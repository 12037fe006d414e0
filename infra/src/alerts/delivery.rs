//! Delivering outbox messages to the webhook URLs, at least once: alert
//! messages (`alert_outbox`) and signed checkpoints of the event log
//! (`audit_checkpoints`, `checkpoint.signed`), two outboxes of the same
//! shape ([`Outbox`]) served by one worker.
//!
//! The worker first **fans out** new outbox messages: one `alert_deliveries`
//! row per configured URL (`ON CONFLICT DO NOTHING`, so two processes doing
//! it at once make one row each). Then it posts every delivery that is due:
//! it **claims** each row right before posting it, by moving
//! `next_attempt_ms` to the end of a lease that outlasts the request timeout
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
use sha2::Sha256;

use super::{woken, AlertConfig};
use crate::leader::Leadership;
use crate::store::alerts::{self as table, AttemptOutcome, DueDelivery, Outbox};
use crate::store::{audit_checkpoints, Db};

/// Every outbox the worker delivers, in the order it serves them.
pub const OUTBOXES: [Outbox; 2] = [table::OUTBOX, audit_checkpoints::OUTBOX];

pub const SIGNATURE_HEADER: &str = "x-nuanxin-signature";
pub const DELIVERY_HEADER: &str = "x-nuanxin-delivery";

/// Posts in flight at once.
const CONCURRENCY: usize = 8;
/// Due deliveries read per round (each is claimed when it is posted).
const ROUND: i64 = 32;
/// How long a claim outlives the request's timeout: time to record the
/// attempt before another worker may post the message again.
const LEASE_MARGIN_MS: i64 = 5_000;
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
pub async fn fan_out(db: &Db, outbox: Outbox, urls: &[String]) -> Result<usize, sqlx::Error> {
    if urls.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let ids = table::unfanned(db, outbox, FAN_OUT_BATCH).await?;
        if ids.is_empty() {
            return Ok(total);
        }
        table::fan_out(db, outbox, &ids, urls, now_ms()).await?;
        total += ids.len();
    }
}

/// What one attempt got: the HTTP status, or why there was none.
type Outcome = Result<u16, String>;

async fn post(client: &reqwest::Client, config: &AlertConfig, d: &DueDelivery) -> Outcome {
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
/// attempt (unless the claim `lease` was lost meanwhile).
async fn record(
    db: &Db,
    outbox: Outbox,
    config: &AlertConfig,
    d: &DueDelivery,
    lease: i64,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    let at = Utc::now();
    let delivered = matches!(outcome, Ok(code) if (200..300).contains(code));
    let (status_code, error) = match outcome {
        Ok(code) => (Some(i32::from(*code)), None),
        Err(e) => (None, Some(e.clone())),
    };
    let attempt = AttemptOutcome {
        at,
        status_code,
        error,
        retry_at_ms: (!delivered)
            .then(|| at.timestamp_millis() + millis(backoff(config, d.attempts + 1))),
    };
    table::record_attempt(db, outbox, &d.id, lease, &attempt).await?;
    // Per delivery at debug level; `step` logs a summary per round, so a
    // receiver that is down does not flood the log.
    let kind = outbox.name;
    match outcome {
        _ if delivered => tracing::debug!(delivery.id = %d.id, webhook.kind = kind, "delivered"),
        Ok(code) => tracing::debug!(delivery.id = %d.id, webhook.kind = kind, http.status = code,
            attempt = d.attempts + 1, "delivery refused; will retry"),
        Err(e) => tracing::debug!(delivery.id = %d.id, webhook.kind = kind, error = %e,
            attempt = d.attempts + 1, "delivery failed; will retry"),
    }
    Ok(())
}

/// Fans out, then posts everything due until nothing is; returns how long
/// to wait before the next pending attempt (at most a second, so messages
/// scanned by other processes go out promptly).
pub async fn step(
    db: &Db,
    outbox: Outbox,
    config: &AlertConfig,
    client: &reqwest::Client,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<Duration, sqlx::Error> {
    let urls = &config.webhooks;
    fan_out(db, outbox, urls).await?;
    while !*shutdown.borrow() {
        let now = now_ms();
        let due = table::due_deliveries(db, outbox, urls, now, ROUND).await?;
        if due.is_empty() {
            break;
        }
        // Each post is claimed on its own, right before it goes out, with a
        // lease that outlasts the request's timeout: no other worker sees it
        // as due while it is in flight, however slow the receiver is.
        let results: Vec<(DueDelivery, Outcome)> = futures::stream::iter(due)
            .map(|d| async move {
                let lease = now_ms() + millis(config.request_timeout) + LEASE_MARGIN_MS;
                if !table::claim(db, outbox, &d, lease).await? {
                    return Ok(None);
                }
                let outcome = post(client, config, &d).await;
                record(db, outbox, config, &d, lease, &outcome).await?;
                Ok::<_, sqlx::Error>(Some((d, outcome)))
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        let ok = results
            .iter()
            .filter(|(_, o)| matches!(o, Ok(code) if (200..300).contains(code)))
            .count();
        let failed = results.len() - ok;
        if ok > 0 {
            tracing::info!(deliveries = ok, "{} webhooks delivered", outbox.name);
        }
        if failed > 0 {
            let refused = results.iter().filter(|(_, o)| o.is_ok()).count() - ok;
            tracing::warn!(
                deliveries = failed,
                refused,
                unanswered = failed - refused,
                "{} webhook deliveries failed; will retry with backoff",
                outbox.name
            );
        }
    }
    let wait = match table::next_due(db, outbox, urls).await? {
        Some(at) => (at - now_ms()).clamp(0, 1_000),
        None => 1_000,
    };
    Ok(Duration::from_millis(wait as u64))
}

/// Runs the delivery worker until `shutdown`: after every scan or
/// checkpoint in this process, when the next retry is due, and at least
/// every second. Posts in
/// flight finish before it stops. Without webhook URLs there is nothing to
/// do (messages stay in the outbox for a server that has some).
pub async fn run_worker(
    db: Db,
    config: AlertConfig,
    mut leadership: Leadership,
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
        // One server delivers (each post is also claimed on its own).
        if !leadership.is_leader() && !leadership.wait_to_lead(&mut shutdown).await {
            return;
        }
        if *shutdown.borrow() {
            return;
        }
        let mut wait = Duration::from_secs(1);
        for outbox in OUTBOXES {
            match step(&db, outbox, &config, &client, &shutdown).await {
                Ok(w) => wait = wait.min(w),
                Err(e) => {
                    tracing::error!(error = %e, webhook.kind = outbox.name,
                        "webhook delivery step failed; will retry");
                }
            }
        }
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
