//! Reads of activities, inspections, compliance, inspection alerts and the
//! bulletin's figures — under the same two rules as every read
//! (`super`): outside the reader's scope is "not found" or an empty list,
//! and nothing here carries a family's personal data (ids and village
//! codes only), so nothing is written to the access log.
//!
//! An activity or inspection is seen from every scope it overlaps: from the
//! jurisdictions that contain its place (the county sees a township's
//! activity) and from those inside it (each village sees its township's
//! activity, so its caseworker can record who went).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use nuanxin_domain::inspection::AssociationLevel;
use nuanxin_projections::activities::{
    ActivityDetail, ActivitySummary, HeldListFilter, IsolatedFamily,
};
use nuanxin_projections::bulletin::BulletinFigures;
use nuanxin_projections::inspections::{compliance, ComplianceItem, InspectionView};
use uuid::Uuid;

use super::{ReadError, Reads};
use crate::store::inspection_alerts::InspectionAlert;
use crate::store::{self};
use crate::users::User;

/// Whether `place` and the scope `scope` overlap (one contains the other).
fn overlaps(place: &str, scope: &str) -> bool {
    place.starts_with(scope) || scope.starts_with(place)
}

impl Reads {
    /// A page of activities seen from the reader's scope (and the asked
    /// prefix), newest first.
    pub async fn activities(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        mut filter: HeldListFilter,
    ) -> Result<Vec<ActivitySummary>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        filter.village_code_prefix = prefix;
        Ok(store::activities::list(self.core.db(), &filter).await?)
    }

    /// One activity with the attending families within the reader's scope.
    pub async fn activity(&self, user: &User, id: Uuid) -> Result<ActivityDetail, ReadError> {
        let activity = store::activities::get(self.core.db(), id)
            .await?
            .filter(|a| overlaps(&a.village_code_prefix, user.scope.as_str()))
            .ok_or(ReadError::NotFound)?;
        let attendees =
            store::activities::attendees(self.core.db(), id, user.scope.as_str()).await?;
        Ok(ActivityDetail {
            activity,
            attendees,
        })
    }

    /// A page of open families within scope that attended no activity held
    /// in the `days` (the policy's `isolation_days` by default) before `on`.
    /// Returns the number of days used.
    pub async fn isolated_families(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        on: NaiveDate,
        days: Option<u32>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<(u32, Vec<IsolatedFamily>), ReadError> {
        let days = days.unwrap_or(self.core.policy().activities.isolation_days);
        let since = on
            .checked_sub_days(Days::new(u64::from(days)))
            .ok_or(ReadError::Invalid {
                field: "days",
                message: "reaches before the calendar begins",
            })?;
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok((days, Vec::new()));
        };
        let items =
            store::activities::isolated(self.core.db(), &prefix, since, after, limit).await?;
        Ok((days, items))
    }

    /// A page of inspections seen from the reader's scope, newest first.
    pub async fn inspections(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        mut filter: HeldListFilter,
    ) -> Result<Vec<InspectionView>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        filter.village_code_prefix = prefix;
        let rows = store::inspections::list(self.core.db(), &filter).await?;
        Ok(rows
            .iter()
            .filter_map(|(id, version, i)| InspectionView::build(*id, *version, i))
            .collect())
    }

    /// One inspection seen from the reader's scope.
    pub async fn inspection(&self, user: &User, id: Uuid) -> Result<InspectionView, ReadError> {
        store::inspections::get(self.core.db(), id)
            .await?
            .filter(|(_, i)| i.overlaps(&user.scope))
            .and_then(|(version, i)| InspectionView::build(id, version, &i))
            .ok_or(ReadError::NotFound)
    }

    /// Compliance in `year` of the city and county associations within the
    /// reader's scope (and the asked prefix): those with families, and
    /// those that held an inspection that year.
    pub async fn compliance(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        year: i32,
    ) -> Result<Vec<ComplianceItem>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return Err(ReadError::Invalid {
                field: "year",
                message: "is not a year",
            });
        };
        let db = self.core.db();
        let mut held: BTreeMap<String, u32> = store::case_files::associations(db, &prefix)
            .await?
            .into_iter()
            .filter(|a| AssociationLevel::of(a).is_some())
            .map(|a| (a, 0))
            .collect();
        held.extend(store::inspections::held_by(db, &prefix, first, last).await?);
        let policy = self.core.policy();
        Ok(compliance(
            year,
            self.core.today(),
            &held,
            &policy.inspections,
        ))
    }

    /// A page of "inspections behind schedule" alerts of associations
    /// within the reader's scope, in the order raised.
    pub async fn inspection_alerts(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        status: Option<&str>,
        year: Option<i32>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<InspectionAlert>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        Ok(
            store::inspection_alerts::list(self.core.db(), &prefix, status, year, after, limit)
                .await?,
        )
    }

    /// The bulletin's figures of `from..=to` within the reader's scope (and
    /// the asked prefix; the scope when none), as known at `known_at` (now
    /// by default). `None`: the asked prefix lies outside the scope.
    pub async fn bulletin_figures(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Option<BulletinFigures>, ReadError> {
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
            crate::bulletin::figures(&self.core, &prefix, from, to, known_at).await?,
        ))
    }
}
