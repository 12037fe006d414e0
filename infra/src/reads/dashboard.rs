//! The supervisors' dashboard: counts per child jurisdiction (no personal
//! data, so nothing is written to the access log).
//!
//! Counting reads every family's row of the read models within the
//! jurisdiction: instant for a township or a county, about a tenth of a
//! second for a region of 100,000 families. Counts that took longer than
//! [`SLOW_COUNT`] are kept in memory for [`DASHBOARD_FRESH_FOR`] per prefix
//! and day, so the looks after the first within the minute cost nothing;
//! smaller jurisdictions are counted afresh at every look. The page says
//! when its figures were counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use super::{ReadError, Reads};
use crate::store::dashboard::{self, Counts};
use crate::users::User;

/// How long counted figures are shown before they are counted again.
pub const DASHBOARD_FRESH_FOR: Duration = Duration::from_secs(60);
/// Counts that took at least this long are kept.
pub const SLOW_COUNT: Duration = Duration::from_millis(20);
/// Prefixes remembered at most (the cache empties when full).
const REMEMBERED: usize = 1_000;

/// The dashboard of one jurisdiction on one day.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dashboard {
    /// The jurisdiction (a code prefix; "" for everything).
    pub prefix: String,
    pub on: NaiveDate,
    /// Its child jurisdictions, one level down, in code order.
    pub rows: Vec<(String, Counts)>,
    pub total: Counts,
    /// When the figures were counted.
    pub counted_at: DateTime<Utc>,
}

/// Dashboards counted lately, by prefix and day, with when.
type Kept = HashMap<(String, NaiveDate), (Instant, Arc<Dashboard>)>;

/// Dashboards counted lately.
#[derive(Debug, Default)]
pub struct DashboardCache {
    kept: Mutex<Kept>,
}

impl DashboardCache {
    fn get(&self, key: &(String, NaiveDate)) -> Option<Arc<Dashboard>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(key)
            .filter(|(at, _)| at.elapsed() < DASHBOARD_FRESH_FOR)
            .map(|(_, d)| d.clone())
    }

    fn put(&self, key: (String, NaiveDate), d: Arc<Dashboard>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= REMEMBERED {
            kept.clear();
        }
        kept.insert(key, (Instant::now(), d));
    }
}

impl Reads {
    /// The dashboard of the asked jurisdiction (the reader's scope when
    /// none) for today. `NotFound` when the asked prefix lies outside the
    /// reader's scope.
    pub async fn dashboard(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
    ) -> Result<Arc<Dashboard>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Err(ReadError::NotFound);
        };
        let on = self.core.today();
        let key = (prefix, on);
        if let Some(d) = self.dashboard_cache.get(&key) {
            return Ok(d);
        }
        let started = Instant::now();
        let (rows, total) = dashboard::counts(self.core.list_db(), &key.0, on).await?;
        let slow = started.elapsed() >= SLOW_COUNT;
        let d = Arc::new(Dashboard {
            prefix: key.0.clone(),
            on,
            rows,
            total,
            counted_at: self.core.services().clock.now(),
        });
        if slow {
            self.dashboard_cache.put(key, d.clone());
        }
        Ok(d)
    }
}
