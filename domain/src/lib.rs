//! The domain of Nuanxin: one [`FamilyCase`] aggregate per special family.
//!
//! Every care action is a [`FamilyCommand`] which, if the case's current
//! state allows it, becomes exactly one [`FamilyEvent`]. Value types
//! ([`VillageCode`], [`IdNumber`], …) validate on `parse`, so a command that
//! reaches the aggregate is already well-formed; the aggregate enforces the
//! rules that depend on the case's state (closed case, dates before
//! registration or in the future, missing contact, voids).
//!
//! Nothing here does I/O: the clock comes in through [`CaseServices`].

pub mod activity;
pub mod aggregate;
pub mod commands;
pub mod events;
pub mod inspection;
pub mod insurance;
pub mod metadata;
pub mod policy;
pub mod values;

pub use aggregate::{CaseError, CaseServices, Clock, FamilyCase, FixedClock, SystemClock};
pub use commands::FamilyCommand;
pub use events::FamilyEvent;
pub use values::*;
