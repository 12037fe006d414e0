//! Reads from a PostgreSQL streaming standby.
//!
//! With `NUANXIN_READ_DATABASE_URL` set, the lists (families, due and
//! overdue visits, coverage gaps, alerts, the access log) and the families'
//! histories are read from a standby that PostgreSQL's own streaming
//! replication keeps in step with the primary — while the standby is no
//! more than `NUANXIN_READ_MAX_STALENESS_MS` behind. Everything else (every
//! write, the access-log record of a read, the case file a user has just
//! changed, authentication) goes to the primary, and so does every read
//! while the standby lags further or cannot be reached.
//!
//! **How old an answer is.** A monitor samples the primary's WAL position
//! (`pg_current_wal_lsn()`) every [`SAMPLE`] and the standby's replayed
//! position (`pg_last_wal_replay_lsn()`). The standby holds everything the
//! primary had written at the newest sample whose position it has replayed,
//! so its data is at most `now − that sample's time` old (plus one sample
//! period). That bound is what the API reports in `X-Nuanxin-Data-Age-Ms`
//! and `/metrics` in `nuanxin_standby_staleness_ms`; an idle primary has no
//! new positions, so an idle standby is fresh.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;

use crate::store::{DatabaseUrl, Db};

/// How often the monitor samples both positions.
pub const SAMPLE: Duration = Duration::from_millis(200);
/// How much history of primary positions the monitor keeps.
const WINDOW: Duration = Duration::from_secs(120);

/// Where a read was answered from, recorded for the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Primary,
    /// The standby, with the bound on its data's age.
    Standby {
        age_ms: u64,
    },
}

tokio::task_local! {
    static SOURCE: std::cell::Cell<Option<Source>>;
}

/// Runs `f` noting where its reads were answered from; returns its output
/// and the source of the last read it made (none if it made none).
pub async fn observe<F: std::future::Future>(f: F) -> (F::Output, Option<Source>) {
    SOURCE
        .scope(std::cell::Cell::new(None), async move {
            let out = f.await;
            (out, SOURCE.with(std::cell::Cell::get))
        })
        .await
}

fn note(source: Source) {
    let _ = SOURCE.try_with(|s| s.set(Some(source)));
}

/// Notes that a read that could have gone to the standby read the primary.
pub(crate) fn note_primary() {
    note(Source::Primary);
}

/// A standby to read from, and how far behind it is.
pub struct Standby {
    db: Db,
    max_staleness: Duration,
    /// The bound on the standby's data age in ms; −1 while unknown (not
    /// sampled yet, or unreachable).
    staleness_ms: AtomicI64,
    reads: AtomicU64,
    fallbacks: AtomicU64,
}

impl Standby {
    /// Connects to the standby at `url` (no migrations: it is read-only and
    /// follows the primary's schema).
    pub async fn connect(
        url: &DatabaseUrl,
        max_connections: u32,
        max_staleness: Duration,
    ) -> anyhow::Result<Self> {
        let DatabaseUrl::Postgres(url) = url else {
            anyhow::bail!("NUANXIN_READ_DATABASE_URL must be a postgres:// URL of a standby");
        };
        let options: sqlx::postgres::PgConnectOptions =
            url.parse().context("parsing NUANXIN_READ_DATABASE_URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options.options([("default_transaction_read_only", "on")]));
        Ok(Self {
            db: Db::Postgres(pool),
            max_staleness,
            staleness_ms: AtomicI64::new(-1),
            reads: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// The standby if its data is fresh enough now (noting the source for
    /// the response), else `None` (the caller reads the primary).
    pub fn choose(&self) -> Option<&Db> {
        let age = self.staleness_ms.load(Ordering::Relaxed);
        if age >= 0 && (age as u128) <= self.max_staleness.as_millis() {
            self.reads.fetch_add(1, Ordering::Relaxed);
            note(Source::Standby { age_ms: age as u64 });
            Some(&self.db)
        } else {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// The bound on the standby's data age, if known.
    pub fn staleness(&self) -> Option<Duration> {
        let ms = self.staleness_ms.load(Ordering::Relaxed);
        (ms >= 0).then(|| Duration::from_millis(ms as u64))
    }

    /// Reads answered by the standby, and reads sent to the primary because
    /// the standby was too far behind or unreachable.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.fallbacks.load(Ordering::Relaxed),
        )
    }

    /// Samples both positions until `shutdown`.
    pub async fn monitor(
        self: Arc<Self>,
        primary: Db,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let Db::Postgres(primary) = primary else {
            return;
        };
        let Db::Postgres(standby) = &self.db else {
            return;
        };
        let mut history: VecDeque<(Instant, u64)> = VecDeque::new();
        let mut warned = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let sampled = async {
                let at = Instant::now();
                let head: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
                    .fetch_one(&primary)
                    .await?;
                let replayed: Option<String> =
                    sqlx::query_scalar("SELECT pg_last_wal_replay_lsn()::text")
                        .fetch_one(standby)
                        .await?;
                Ok::<_, sqlx::Error>((
                    at,
                    parse_lsn(&head),
                    replayed.as_deref().and_then(parse_lsn),
                ))
            };
            let age = match tokio::time::timeout(SAMPLE * 5, sampled).await {
                Ok(Ok((at, Some(head), Some(replayed)))) => {
                    history.push_back((at, head));
                    while history
                        .front()
                        .is_some_and(|(t, _)| at.duration_since(*t) > WINDOW)
                    {
                        history.pop_front();
                    }
                    warned = false;
                    Some(age_bound(&history, replayed, at))
                }
                Ok(Ok((_, _, None))) => {
                    if !warned {
                        tracing::warn!("NUANXIN_READ_DATABASE_URL is not a standby in recovery; reading the primary");
                        warned = true;
                    }
                    None
                }
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    if !warned {
                        tracing::warn!(error = %e, "cannot sample the standby; reading the primary");
                        warned = true;
                    }
                    None
                }
                Err(_) => None,
            };
            let ms = age.map_or(-1, |a| i64::try_from(a.as_millis()).unwrap_or(i64::MAX));
            self.staleness_ms.store(ms, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// The bound on the age of a standby that has replayed up to `replayed`,
/// given the primary's positions sampled over time (oldest first): the age
/// of the newest sample it has caught up with, plus one sample period; the
/// whole window when it has caught up with none.
fn age_bound(history: &VecDeque<(Instant, u64)>, replayed: u64, now: Instant) -> Duration {
    match history.iter().rev().find(|(_, lsn)| *lsn <= replayed) {
        Some((at, _)) if history.back().is_some_and(|(_, head)| *head <= replayed) => {
            // Caught up with the newest sample: behind by less than a period.
            now.duration_since(*at)
        }
        Some((at, _)) => now.duration_since(*at) + SAMPLE,
        None => history
            .front()
            .map_or(WINDOW, |(t, _)| now.duration_since(*t) + SAMPLE),
    }
}

/// A `pg_lsn` text (`16/B374D848`) as a number.
fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lsns() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn the_age_is_that_of_the_newest_position_replayed() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let history: VecDeque<_> = [(at(0), 10), (at(200), 20), (at(400), 30)].into();
        // Caught up with the head: as old as the last sample.
        assert_eq!(age_bound(&history, 30, at(450)), Duration::from_millis(50));
        // Replayed up to the 200 ms sample only.
        assert_eq!(
            age_bound(&history, 25, at(450)),
            Duration::from_millis(250) + SAMPLE
        );
        // Behind every sample kept: as old as the window it has.
        assert_eq!(
            age_bound(&history, 5, at(450)),
            Duration::from_millis(450) + SAMPLE
        );
    }

    #[tokio::test]
    async fn observe_reports_the_last_source() {
        let (_, none) = observe(async {}).await;
        assert_eq!(none, None);
        let (_, seen) = observe(async {
            note(Source::Primary);
            note(Source::Standby { age_ms: 7 });
        })
        .await;
        assert_eq!(seen, Some(Source::Standby { age_ms: 7 }));
    }
}
