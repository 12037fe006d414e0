//! Everything one family contributes to the read models, computed from its
//! folded case: the case-file row, its key-person periods and its visit
//! schedule. Writing them is the store's job (`nuanxin_infra::read_models`).

use nuanxin_domain::aggregate::{CaseStatus, FamilyCase};
use nuanxin_domain::policy::VisitPolicy;
use nuanxin_domain::Role;
use uuid::Uuid;

use crate::schedule::{key_periods, schedule_rows, KeyPeriod, ScheduleRow};

/// A family's read-model rows at one version of its case.
#[derive(Debug, Clone)]
pub struct FamilyRows {
    pub family_id: Uuid,
    pub version: u64,
    pub village_code: String,
    pub status: &'static str,
    pub village_contact_name: Option<String>,
    pub township_contact_name: Option<String>,
    pub state: FamilyCase,
    /// The hash of the event at `version` (the head of its chain), when the
    /// writer knows it.
    pub head_hash: Option<String>,
    /// Whether the stored snapshot of the case is rewritten to `state`
    /// (`version`). The command path leaves it a few versions behind —
    /// readers fold the newer events onto it — and rewrites it every few
    /// versions; every other writer rewrites it.
    pub write_snapshot: bool,
    /// The version of the visit policy the periods and schedule were
    /// computed with (a policy change recomputes the rows of older ones).
    pub policy_version: i64,
    pub key_periods: Vec<KeyPeriod>,
    pub schedule: Vec<ScheduleRow>,
}

impl FamilyRows {
    /// The rows of `case` at `version`, whose last event hashes to
    /// `head_hash`, under version `policy_version` of the visit policy;
    /// `None` if it is not registered.
    pub fn build(
        family_id: Uuid,
        version: u64,
        case: FamilyCase,
        head_hash: Option<String>,
        policy: &VisitPolicy,
        policy_version: i64,
    ) -> Option<Self> {
        if !case.registered {
            return None;
        }
        let periods = key_periods(&case, policy);
        let schedule = schedule_rows(&case, &periods, policy);
        let contact = |role| case.contacts.get(role).map(|c| c.person.name.clone());
        Some(Self {
            family_id,
            version,
            village_code: case
                .village_code
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            status: match case.status {
                CaseStatus::Open => "open",
                CaseStatus::Closed => "closed",
            },
            village_contact_name: contact(Role::Village),
            township_contact_name: contact(Role::Township),
            key_periods: periods,
            schedule,
            state: case,
            head_hash,
            write_snapshot: true,
            policy_version,
        })
    }
}
