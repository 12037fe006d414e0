//! The bulletin's figures of a jurisdiction and period — care insurance,
//! group activities, supervision inspections — as known at an instant:
//! each figure counts only events recorded up to `known_at`
//! (`nuanxin_infra::bulletin` folds them; the tallies are in
//! [`crate::insurance`], [`crate::activities`], [`crate::inspections`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::activities::ActivityFigures;
use crate::inspections::InspectionFigures;
use crate::insurance::InsuranceFigures;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulletinFigures {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[schema(example = "4503")]
    pub village_code_prefix: String,
    pub known_at: DateTime<Utc>,
    pub insurance: InsuranceFigures,
    pub activities: ActivityFigures,
    pub inspections: InspectionFigures,
}
