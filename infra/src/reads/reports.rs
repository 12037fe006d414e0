//! The period report within the reader's scope (no personal data, so
//! nothing is written to the access log).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nuanxin_projections::summary::SummaryReport;

use super::{ReadError, Reads};
use crate::users::User;

impl Reads {
    /// The report of `from..=to` within the reader's scope (and the asked
    /// prefix; the scope when none), as known at `known_at` (now by
    /// default). `None`: the asked prefix lies outside the scope.
    pub async fn report_summary(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Option<SummaryReport>, ReadError> {
        if from > to || to.year() - from.year() > 10 {
            return Err(ReadError::Invalid {
                field: "to",
                message: "must be on or after `from`, at most ten years later",
            });
        }
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(None);
        };
        let known_at = known_at.unwrap_or_else(|| self.core.services().clock.now());
        Ok(Some(
            crate::reports::summary(&self.core, &prefix, from, to, known_at).await?,
        ))
    }
}
