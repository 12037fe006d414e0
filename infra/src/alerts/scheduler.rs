//! The daily alert scan inside `serve`: at start-up when today's scan has
//! not run, then every day at the configured local time (the policy's UTC
//! offset, Asia/Shanghai by default). "Has it run?" is the `alert_scans`
//! row of the day, checked again under the scan lock, so several servers
//! scan each day once between them.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;

use super::{run_scan, AlertConfig, ScanMode};
use crate::core::Core;
use crate::projector::Projector;
use crate::store;

/// How long from `now` until the next `at` (today's, or else tomorrow's).
pub fn until_next(now: NaiveTime, at: NaiveTime) -> Duration {
    let secs = (at - now).num_seconds();
    let secs = if secs > 0 { secs } else { secs + 86_400 };
    Duration::from_secs(secs.max(1) as u64)
}

/// Runs until `shutdown`. Wakes at least every minute to follow the clock.
pub async fn run_scheduler(
    core: Arc<Core>,
    projector: Arc<Projector>,
    config: AlertConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if !config.scheduler {
        return;
    }
    let mut started = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let services = core.services();
        let now = services.clock.now().with_timezone(&services.offset);
        let today = now.date_naive();
        if !started || now.time() >= config.scan_at {
            let outcome = match store::alerts::scanned(core.db(), today).await {
                Ok(true) => Ok(None),
                Ok(false) => run_scan(&core, &projector, today, "", ScanMode::IfNotRun).await,
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(report) => {
                    started = true;
                    if let Some(r) = report {
                        tracing::info!(alerts.on = %r.on, alerts.raised = r.raised,
                            alerts.escalated = r.escalated, alerts.resolved = r.resolved,
                            "daily alert scan");
                    }
                }
                Err(e) => tracing::error!(error = %e, "daily alert scan failed; will retry"),
            }
        }
        let wait = until_next(now.time(), config.scan_at).min(Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn waits_for_today_or_tomorrow() {
        assert_eq!(until_next(t(5, 0), t(6, 0)), Duration::from_secs(3600));
        assert_eq!(until_next(t(6, 0), t(6, 0)), Duration::from_secs(86_400));
        assert_eq!(until_next(t(7, 0), t(6, 0)), Duration::from_secs(23 * 3600));
    }
}
