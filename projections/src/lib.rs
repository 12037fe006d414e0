//! Read models: pure functions from a family's folded case (and the visit
//! policy, and a day) to what users read. No I/O — the store
//! (`nuanxin_infra::store`) writes these rows and runs the queries.
//!
//! - [`case_file`]: the case file a user reads, and the case-list types;
//! - [`schedule`]: key-person periods and the visit schedule, cut into
//!   windows of days, and the types of the overdue / due / coverage lists;
//! - [`rows`]: everything one family contributes to the read-model tables;
//! - [`insurance`], [`activities`], [`inspections`]: the care insurance in
//!   the case file, activities and inspections (their own streams), and the
//!   figures a report counts of each;
//! - [`summary`]: the period report's figures of each family, as known.

pub mod activities;
pub mod bulletin;
pub mod case_file;
pub mod facts;
pub mod inspections;
pub mod insurance;
pub mod rows;
pub mod schedule;
pub mod summary;
