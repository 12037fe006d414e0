//! Every read, limited to the reader's jurisdiction, in one place.
//!
//! Two rules hold for every read here, so that no new read has to remember
//! them by copying:
//!
//! - **Outside scope is "not found".** A family (or alert) whose village
//!   code lies outside the reader's scope answers [`ReadError::NotFound`],
//!   exactly like an unknown id, so its existence does not leak; lists are
//!   limited to the overlap of the asked prefix and the scope
//!   ([`Scope::effective_prefix`]), and are empty when there is none.
//! - **Personal data is read only after the access log says so.** Reads of
//!   a family's case file or history append an `access_log` row first; if
//!   that fails, the read fails ([`ReadError::AccessLog`]) and nothing is
//!   shown. Reads that end in "not found" leave no row. Lists carry no
//!   personal data beyond a contact's name and village codes and are not
//!   logged; a search by name or ID number ([`Needle`]) logs every family
//!   it shows.

pub mod dashboard;
mod reports;
mod search;
mod streams;

pub use search::{Found, FoundFamily, FoundMember, Needle};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::metadata::keys;
use nuanxin_domain::{FamilyEvent, Scope};
use nuanxin_projections::case_file::{CaseFileView, CaseListFilter, CaseSummary};
use nuanxin_projections::schedule::{CoverageGap, DueItem, DueQuery};
use uuid::Uuid;

use crate::append::Appender;
use crate::audit::{self, FamilyHistory};
use crate::core::{Core, StoreError};
use crate::privacy::Personal;
use crate::read_models;
use crate::store::access_log::{AccessEntry, AccessFilter, AccessRecord};
use crate::store::alerts::{Alert, AlertStatus};
use crate::store::audit_checkpoints::CheckpointRecord;
use crate::store::{self};
use crate::users::User;

/// Who reads, for the scope check and the access log.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user: &'a User,
    /// The request the read came from (`x-request-id`), or what the CLI
    /// names the run.
    pub request_id: &'a str,
}

/// What the access log calls each read of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    CaseFile,
    CaseFileAsOf,
    History,
    HistoryCsv,
    /// A family shown among the answers of a search by name or ID number.
    Search,
}

impl ReadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadKind::CaseFile => "case_file",
            ReadKind::CaseFileAsOf => "case_file_as_of",
            ReadKind::History => "history",
            ReadKind::HistoryCsv => "history.csv",
            ReadKind::Search => "family_search",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Unknown, or outside the reader's scope (the same answer).
    #[error("not found")]
    NotFound,
    /// A parameter of the question is malformed; names it, never its value.
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    /// The read could not be recorded in the access log, so it is refused.
    #[error("recording a read in the access log failed: {0}")]
    AccessLog(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReadError {
    fn from(err: sqlx::Error) -> Self {
        ReadError::Store(err.into())
    }
}

/// Whether `case` is registered and lies within `scope`.
fn visible(case: &FamilyCase, scope: &Scope) -> bool {
    case.registered
        && case
            .village_code
            .as_ref()
            .is_some_and(|v| v.is_within(scope))
}

pub struct Reads {
    core: Arc<Core>,
    appender: Appender,
    dashboard_cache: dashboard::DashboardCache,
}

impl Reads {
    pub fn new(core: Arc<Core>, appender: Appender) -> Self {
        Self {
            core,
            appender,
            dashboard_cache: dashboard::DashboardCache::default(),
        }
    }

    /// Appends the viewer's read of `family_id` to the access log; returns
    /// once the record is durable (its commit shared with other writes).
    async fn record(
        &self,
        v: &Viewer<'_>,
        family_id: Uuid,
        kind: ReadKind,
    ) -> Result<(), ReadError> {
        let record = AccessRecord {
            id: Uuid::now_v7(),
            user_id: v.user.id,
            family_id,
            endpoint: kind.as_str().to_owned(),
            at: self.core.services().clock.now(),
            request_id: v.request_id.to_owned(),
        };
        self.appender
            .access(record)
            .await
            .map_err(|e| ReadError::AccessLog(e.to_string()))
    }

    /// The list prefix for a question about `asked`: `None` when it does not
    /// overlap the viewer's scope (an empty answer).
    fn prefix(&self, user: &User, asked: Option<&str>) -> Result<Option<String>, ReadError> {
        user.scope
            .effective_prefix(asked)
            .map_err(|e| ReadError::Invalid {
                field: "village_code_prefix",
                message: e.0,
            })
    }

    /// The case file as it stands (derived fields for today), or as it stood
    /// at `as_of` (the events recorded at or before it; derived fields for
    /// that day, at most today). The family must lie within the viewer's
    /// scope as it stands now.
    pub async fn case_file(
        &self,
        v: &Viewer<'_>,
        id: Uuid,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<CaseFileView, ReadError> {
        let today = self.core.today();
        let (version, case, on, kind) = match as_of {
            None => {
                let stored = read_models::load(&self.core, id)
                    .await?
                    .ok_or(ReadError::NotFound)?;
                if !visible(&stored.state, &v.user.scope) {
                    return Err(ReadError::NotFound);
                }
                (stored.version, stored.state, today, ReadKind::CaseFile)
            }
            Some(at) => {
                let (version, case) = self.case_as_of(id, at, &v.user.scope).await?;
                let then = at
                    .with_timezone(&self.core.services().offset)
                    .date_naive()
                    .min(today);
                (version, case, then, ReadKind::CaseFileAsOf)
            }
        };
        let view = CaseFileView::build(id, version, &case, on, &self.core.policy())
            .ok_or(ReadError::NotFound)?;
        let view = self.reveal_view(view).await?;
        self.record(v, id, kind).await?;
        Ok(view)
    }

    /// The case as it stood at `at`: the family's events recorded at or
    /// before `at`, folded. Not found when the family is unknown, outside
    /// `scope` as it stands now, or not yet registered at `at`.
    async fn case_as_of(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        scope: &Scope,
    ) -> Result<(u64, FamilyCase), ReadError> {
        let mut now = FamilyCase::default();
        let mut then = FamilyCase::default();
        let mut version = 0;
        let mut past = true;
        for stored in store::events::of_family(self.core.db(), id).await? {
            let recorded_at = stored
                .metadata_str(keys::RECORDED_AT)
                .and_then(|s| s.parse::<DateTime<Utc>>().ok());
            let event: FamilyEvent =
                serde_json::from_value(stored.payload).map_err(StoreError::from)?;
            // The log is in recording order; the first event after `at`
            // ends the past, whatever follows.
            past = past && recorded_at.is_none_or(|r| r <= at);
            if past {
                version = stored.sequence;
                then.apply(event.clone());
            }
            now.apply(event);
        }
        if !visible(&now, scope) || !then.registered {
            return Err(ReadError::NotFound);
        }
        Ok((version, then))
    }

    /// Every event of the family as stored, with the state of its hash
    /// chain (`kind` says whether it is shown or exported).
    pub async fn history(
        &self,
        v: &Viewer<'_>,
        id: Uuid,
        kind: ReadKind,
    ) -> Result<FamilyHistory, ReadError> {
        let mut history = audit::family_history(self.core.list_db(), id).await?;
        if !visible(&history.case, &v.user.scope) && self.core.standby().is_some() {
            // A family registered (or moved) moments ago may not have
            // reached the standby yet: the primary has the last word.
            history = audit::family_history(self.core.db(), id).await?;
        }
        if !visible(&history.case, &v.user.scope) {
            return Err(ReadError::NotFound);
        }
        let keyring = self.core.keyring();
        keyring
            .reveal_values(
                self.core.db(),
                history.entries.iter_mut().map(|e| &mut e.data).collect(),
            )
            .await
            .map_err(StoreError::from)?;
        if let Err(link) = &history.chain {
            tracing::warn!(family.id = %id, sequence = link.sequence, problem = %link.problem,
                "the family's hash chain is broken");
        }
        self.record(v, id, kind).await?;
        Ok(history)
    }

    /// A page of case summaries (key status and due dates of today).
    pub async fn case_list(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        mut filter: CaseListFilter,
    ) -> Result<Vec<CaseSummary>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        filter.village_code_prefix = prefix;
        let rows = store::case_files::list(self.core.list_db(), &filter, self.core.today()).await?;
        self.reveal_rows(rows).await
    }

    /// A page of due (or overdue) visits.
    pub async fn due(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        mut q: DueQuery,
    ) -> Result<Vec<DueItem>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        q.village_code_prefix = prefix;
        let rows = store::schedule::due(self.core.list_db(), &q).await?;
        self.reveal_rows(rows).await
    }

    /// A page of open families missing a contact.
    pub async fn coverage_gaps(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CoverageGap>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        Ok(store::case_files::coverage_gaps(self.core.list_db(), &prefix, after, limit).await?)
    }

    /// A page of alerts, in the order they were raised.
    pub async fn alerts(
        &self,
        user: &User,
        asked_prefix: Option<&str>,
        status: Option<AlertStatus>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Alert>, ReadError> {
        let Some(prefix) = self.prefix(user, asked_prefix)? else {
            return Ok(Vec::new());
        };
        let rows = store::alerts::list(self.core.list_db(), status, &prefix, after, limit).await?;
        self.reveal_rows(rows).await
    }

    /// One alert of a family within the viewer's scope.
    pub async fn alert(&self, user: &User, id: Uuid) -> Result<Alert, ReadError> {
        match store::alerts::get(self.core.db(), id).await? {
            Some(a) if a.village_code.starts_with(user.scope.as_str()) => {
                Ok(self.reveal_rows(vec![a]).await?.remove(0))
            }
            _ => Err(ReadError::NotFound),
        }
    }

    /// `rows` with their sealed strings opened (`crate::privacy`).
    async fn reveal_rows<T: Personal>(&self, mut rows: Vec<T>) -> Result<Vec<T>, ReadError> {
        self.core
            .keyring()
            .reveal_rows(self.core.db(), &mut rows)
            .await
            .map_err(StoreError::from)?;
        Ok(rows)
    }

    /// `view` with its sealed strings opened.
    async fn reveal_view<T>(&self, view: T) -> Result<T, ReadError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        Ok(self
            .core
            .keyring()
            .reveal_view(self.core.db(), view)
            .await
            .map_err(StoreError::from)?)
    }

    /// Signed checkpoints of the event log, newest first, before the
    /// checkpoint `before`. They hold counts and hashes of the whole log,
    /// no family and no personal data, so every scope sees the same list.
    pub async fn checkpoints(
        &self,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CheckpointRecord>, ReadError> {
        Ok(
            store::audit_checkpoints::list(self.core.db(), before, limit)
                .await
                .map_err(StoreError::from)?,
        )
    }

    /// Access records (admins), limited to families within their scope.
    pub async fn access_log(
        &self,
        user: &User,
        mut filter: AccessFilter,
    ) -> Result<Vec<AccessEntry>, ReadError> {
        filter.scope = user.scope.clone();
        Ok(store::access_log::list(self.core.list_db(), &filter).await?)
    }

    /// Today's local date (the default day of every list).
    pub fn today(&self) -> NaiveDate {
        self.core.today()
    }
}

impl Personal for CaseSummary {
    fn personal_mut(&mut self) -> Vec<&mut String> {
        [
            &mut self.village_contact_name,
            &mut self.township_contact_name,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
        .collect()
    }
}

impl Personal for DueItem {
    fn personal_mut(&mut self) -> Vec<&mut String> {
        vec![&mut self.contact.name]
    }
}

impl Personal for Alert {
    fn personal_mut(&mut self) -> Vec<&mut String> {
        vec![&mut self.contact_name]
    }
}
