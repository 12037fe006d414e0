//! What every stored event carries besides its payload: who recorded it,
//! when (server clock), from which request, and the idempotency key if the
//! client sent one. Stored as the cqrs-es metadata map (string → string).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::UserRole;

/// The user who recorded an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    pub id: Uuid,
    pub name: String,
    pub role: UserRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub recorded_by: Recorder,
    pub recorded_at: DateTime<Utc>,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, to tell a retry from a different request
    /// that reuses an idempotency key.
    pub request_hash: Option<String>,
}

pub mod keys {
    pub const RECORDED_BY_ID: &str = "recorded_by_id";
    pub const RECORDED_BY_NAME: &str = "recorded_by_name";
    pub const RECORDED_BY_ROLE: &str = "recorded_by_role";
    pub const RECORDED_AT: &str = "recorded_at";
    pub const REQUEST_ID: &str = "request_id";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    pub const REQUEST_HASH: &str = "request_hash";
    pub const SCHEMA: &str = "metadata_version";
}

impl EventMetadata {
    pub const VERSION: &'static str = "1";

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert(keys::SCHEMA.into(), Self::VERSION.into());
        m.insert(keys::RECORDED_BY_ID.into(), self.recorded_by.id.to_string());
        m.insert(keys::RECORDED_BY_NAME.into(), self.recorded_by.name.clone());
        m.insert(
            keys::RECORDED_BY_ROLE.into(),
            self.recorded_by.role.as_str().into(),
        );
        m.insert(
            keys::RECORDED_AT.into(),
            self.recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        m.insert(keys::REQUEST_ID.into(), self.request_id.clone());
        if let Some(k) = &self.idempotency_key {
            m.insert(keys::IDEMPOTENCY_KEY.into(), k.clone());
        }
        if let Some(h) = &self.request_hash {
            m.insert(keys::REQUEST_HASH.into(), h.clone());
        }
        m
    }

    /// Reads the map back; `None` if a required key is missing or malformed.
    pub fn from_map(m: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            recorded_by: Recorder {
                id: m.get(keys::RECORDED_BY_ID)?.parse().ok()?,
                name: m.get(keys::RECORDED_BY_NAME)?.clone(),
                role: UserRole::parse(m.get(keys::RECORDED_BY_ROLE)?).ok()?,
            },
            recorded_at: m.get(keys::RECORDED_AT)?.parse().ok()?,
            request_id: m.get(keys::REQUEST_ID).cloned().unwrap_or_default(),
            idempotency_key: m.get(keys::IDEMPOTENCY_KEY).cloned(),
            request_hash: m.get(keys::REQUEST_HASH).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_map() {
        let md = EventMetadata {
            recorded_by: Recorder {
                id: Uuid::new_v4(),
                name: "Li".into(),
                role: UserRole::Caseworker,
            },
            recorded_at: "2026-03-01T02:03:04.000005Z".parse().unwrap(),
            request_id: "req-1".into(),
            idempotency_key: Some("k".into()),
            request_hash: None,
        };
        assert_eq!(EventMetadata::from_map(&md.to_map()), Some(md));
    }
}
