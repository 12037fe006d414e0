//! One router per resource.

pub mod dto;
pub mod families;
pub mod ops;
pub mod users;
