//! Read models built from `FamilyCase` events. Each module turns events (or
//! the folded case) into rows and answers the queries the API serves.
//!
//! [`db`] holds the store handle shared by every crate above the domain;
//! [`case_file`] the case file and case list.

pub mod case_file;
pub mod db;

pub use db::{DatabaseUrl, Db};
