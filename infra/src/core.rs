//! What every service shares: the store, the clock and time zone, the visit
//! policy in force, and the signal that wakes the projection worker after
//! a commit.

use std::sync::{Arc, PoisonError, RwLock};

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::{CaseServices, FamilyCase};
use nuanxin_domain::policy::VisitPolicy;
use nuanxin_domain::FamilyEvent;
use uuid::Uuid;

use crate::store::{self, Db};
use crate::Settings;

/// An error reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// Events are forever: a stored payload that no longer decodes needs an
    /// upcaster, never an edit of the row.
    #[error("a stored event does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

pub struct Core {
    db: Db,
    services: CaseServices,
    policy: RwLock<Arc<VisitPolicy>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Core {
    pub fn new(db: Db, services: CaseServices, policy: VisitPolicy) -> Self {
        Self {
            db,
            services,
            policy: RwLock::new(Arc::new(policy)),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The core over `db` with the settings' clock and the policy's time
    /// zone.
    pub fn from_settings(db: Db, settings: &Settings) -> Self {
        let services = CaseServices::new(settings.clock.clone(), settings.policy.offset());
        Self::new(db, services, settings.policy.clone())
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn services(&self) -> &CaseServices {
        &self.services
    }

    /// Today's local calendar date.
    pub fn today(&self) -> NaiveDate {
        self.services.today()
    }

    /// The visit policy in force.
    pub fn policy(&self) -> Arc<VisitPolicy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_policy(&self, policy: VisitPolicy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// Notified after every commit, to wake the projection worker.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The family folded from every stored event: (version, case).
    pub async fn fold(&self, family_id: Uuid) -> Result<(u64, FamilyCase), StoreError> {
        let mut case = FamilyCase::default();
        let mut version = 0;
        for event in store::events::of_family(&self.db, family_id).await? {
            case.apply(serde_json::from_value::<FamilyEvent>(event.payload)?);
            version = event.sequence;
        }
        Ok((version, case))
    }
}
