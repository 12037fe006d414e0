//! The daily alert scan inside `serve`: at start-up when today's scan has
//! not run, then every day at the configured local time (the policy's UTC
//! offset, Asia/Shanghai by default). "Has it run?" is the `alert_scans`
//! row of the day, checked again under the scan lock, so several servers
//! scan each day once between them.
//!
//! Right after the scan, the daily signed checkpoint of the event log
//! (`crate::audit::checkpoint`), on the same terms: "has it been taken?" is
//! the day's `audit_checkpoints` row, unique per day.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;

use super::{run_scan, AlertConfig, ScanMode};
use crate::audit::checkpoint::Checkpointer;
use crate::core::Core;
use crate::leader::Leadership;
use crate::projector::Projector;
use crate::store;

/// How long from `now` until the next `at` (today's, or else tomorrow's).
pub fn until_next(now: NaiveTime, at: NaiveTime) -> Duration {
    let secs = (at - now).num_seconds();
    let secs = if secs > 0 { secs } else { secs + 86_400 };
    Duration::from_secs(secs.max(1) as u64)
}

/// Runs until `shutdown`. Wakes at least every minute to follow the clock.
/// `checkpoints`: take the daily checkpoint after the scan.
pub async fn run_scheduler(
    core: Arc<Core>,
    projector: Arc<Projector>,
    config: AlertConfig,
    checkpoints: Option<Arc<Checkpointer>>,
    mut leadership: Leadership,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if !config.scheduler && checkpoints.is_none() {
        return;
    }
    let mut started = false;
    loop {
        if !leadership.is_leader() {
            // Only the leading server scans; a new leader first checks
            // whether today's scan has run, as at start.
            started = false;
            if !leadership.wait_to_lead(&mut shutdown).await {
                return;
            }
        }
        if *shutdown.borrow() {
            return;
        }
        let services = core.services();
        let now = services.clock.now().with_timezone(&services.offset);
        let today = now.date_naive();
        if !started || now.time() >= config.scan_at {
            let mut done = true;
            if config.scheduler {
                let outcome = match store::alerts::scanned(core.db(), today).await {
                    Ok(true) => Ok(None),
                    Ok(false) => run_scan(&core, &projector, today, "", ScanMode::IfNotRun).await,
                    Err(e) => Err(e.into()),
                };
                match outcome {
                    Ok(Some(r)) => {
                        tracing::info!(alerts.on = %r.on, alerts.raised = r.raised,
                            alerts.escalated = r.escalated, alerts.resolved = r.resolved,
                            "daily alert scan");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        done = false;
                        tracing::error!(error = %e, "daily alert scan failed; will retry");
                    }
                }
            }
            if let Some(checkpoints) = &checkpoints {
                if let Err(e) = checkpoints.daily(today).await {
                    done = false;
                    tracing::error!(error = %e, "daily checkpoint failed; will retry");
                }
            }
            started |= done;
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
