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

use crate::standby::Standby;
use crate::store::{self, Db};
use crate::users::{LastSeen, TokenCache, User};
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
    /// A person key could not be used (`crate::privacy`).
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
}

pub struct Core {
    db: Db,
    services: CaseServices,
    /// The visit policy in force and its version (`policy_state.version`).
    policy: RwLock<(Arc<VisitPolicy>, i64)>,
    wake: Arc<tokio::sync::Notify>,
    tokens: TokenCache,
    last_seen: LastSeen,
    /// A streaming standby for lists and histories, if configured.
    standby: Option<Arc<Standby>>,
    /// Every family's report facts (`crate::reports`).
    report_cache: crate::reports::ReportCache,
    /// The person keys and the master key (`crate::privacy`).
    keyring: crate::privacy::Keyring,
}

impl Core {
    /// A core whose master key is new and held in memory only
    /// ([`crate::privacy::MasterKeySource::Ephemeral`]); a server uses
    /// [`Core::from_settings`].
    pub fn new(db: Db, services: CaseServices, policy: VisitPolicy) -> Self {
        Self::with_master_key(db, services, policy, crate::privacy::MasterKey::generate())
    }

    fn with_master_key(
        db: Db,
        services: CaseServices,
        policy: VisitPolicy,
        master: crate::privacy::MasterKey,
    ) -> Self {
        Self {
            keyring: crate::privacy::Keyring::new(master),
            db,
            services,
            policy: RwLock::new((Arc::new(policy), 0)),
            wake: Arc::new(tokio::sync::Notify::new()),
            tokens: TokenCache::default(),
            last_seen: LastSeen::default(),
            standby: None,
            report_cache: Default::default(),
        }
    }

    /// The report facts cache.
    pub fn report_cache(&self) -> &crate::reports::ReportCache {
        &self.report_cache
    }

    /// Reads lists and histories from `standby` while it is fresh enough.
    pub fn with_standby(mut self, standby: Standby) -> Self {
        self.standby = Some(Arc::new(standby));
        self
    }

    /// The standby, if configured.
    pub fn standby(&self) -> Option<&Arc<Standby>> {
        self.standby.as_ref()
    }

    /// Where a list or a history is read from: the standby while it is
    /// within its staleness bound, else the primary (noting which, for the
    /// response).
    pub fn list_db(&self) -> &Db {
        match &self.standby {
            None => &self.db,
            Some(standby) => standby.choose().unwrap_or_else(|| {
                crate::standby::note_primary();
                &self.db
            }),
        }
    }

    /// The user holding a bearer token (cached; see [`TokenCache`]).
    pub async fn user_for_token(&self, token: &str) -> Result<Option<User>, sqlx::Error> {
        self.tokens.user(&self.db, token).await
    }

    /// The token cache (to forget it after a change to a user, and to keep
    /// it in step with other processes).
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// Notes that `user` made a request now (cheap: see [`LastSeen`]).
    pub fn seen(&self, user: &User) {
        self.last_seen.touch(user.id, self.services.clock.now());
    }

    /// The last-seen times, for their writer.
    pub fn last_seen(&self) -> &LastSeen {
        &self.last_seen
    }

    /// The core over `db` with the settings' clock and the policy's time
    /// zone.
    /// The core over `db` with the settings' clock, policy and master key
    /// (created on first start when it is a key file that does not exist).
    pub fn from_settings(db: Db, settings: &Settings) -> anyhow::Result<Self> {
        let services = CaseServices::new(settings.clock.clone(), settings.policy.offset());
        let master = crate::privacy::MasterKey::resolve(&settings.master_key)?;
        Ok(Self::with_master_key(
            db,
            services,
            settings.policy.clone(),
            master,
        ))
    }

    /// The person keys (`crate::privacy`).
    pub fn keyring(&self) -> &crate::privacy::Keyring {
        &self.keyring
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
            .0
            .clone()
    }

    /// The policy in force with its version.
    pub fn policy_in_force(&self) -> (Arc<VisitPolicy>, i64) {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_policy(&self, policy: VisitPolicy, version: i64) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = (Arc::new(policy), version);
    }

    /// Notified after every commit, to wake the projection worker.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The family folded from every stored event.
    pub async fn fold(&self, family_id: Uuid) -> Result<Folded, StoreError> {
        let mut folded = Folded::default();
        for event in store::events::of_family(&self.db, family_id).await? {
            folded.version = event.sequence;
            folded.head_hash = event.metadata_str(crate::audit::HASH).map(str::to_owned);
            folded
                .case
                .apply(serde_json::from_value::<FamilyEvent>(event.payload)?);
        }
        Ok(folded)
    }
}

/// A family folded from its stored events.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The sequence of the last event (0: no events).
    pub version: u64,
    pub case: FamilyCase,
    /// The hash of the last event (the head of the family's chain).
    pub head_hash: Option<String>,
}
