//! Read models built from `FamilyCase` events. Each module turns a family's
//! folded case into rows and answers the queries the API serves:
//!
//! - [`case_file`]: the case file and the case list;
//! - [`schedule`]: the visit schedule (overdue and due lists, coverage gaps);
//! - [`writer`]: writing a family's rows in one guarded transaction, and the
//!   checkpoints that record progress through the event log.
//!
//! [`db`] holds the store handle shared by every crate above the domain.

pub mod case_file;
pub mod db;
pub mod schedule;
pub mod writer;

pub use db::{DatabaseUrl, Db};
