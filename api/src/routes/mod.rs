//! One router per resource.

pub mod alerts;
pub mod audit;
pub mod dto;
pub mod families;
pub mod ops;
pub mod schedule;
pub mod users;
