//! Auditing: the tamper-evident hash chain over every stream of events, a
//! family's history exactly as stored (masked for display, exportable as
//! CSV), and the append-only access log of who read which case file.
//!
//! ## The hash chain
//!
//! Every stored event's metadata carries `prev_hash` (the `hash` of the
//! event before it in the same stream, `""` for the first) and `hash`:
//!
//! ```text
//! hash = hex(SHA-256(prev_hash      "\n"
//!                    event_type     "\n"
//!                    event_version  "\n"
//!                    canonical(payload) "\n"
//!                    canonical(metadata without `hash` and `prev_hash`) "\n"))
//! ```
//!
//! `canonical` is compact JSON with object keys sorted (recursively) by their
//! UTF-8 bytes, so the hash does not depend on how a store keeps JSON
//! (PostgreSQL's `jsonb` reorders keys). The `"\n"` after each part keeps the
//! parts apart: no part can contain a raw newline except `event_type` /
//! `event_version`, which are written by the code, not by users.
//!
//! The hashes are computed in [`crate::repo::Repo`]'s `persist`, where the
//! serialized events are written (cqrs-es copies one metadata map onto every
//! event of a commit, so the handler cannot do it). [`verify`] recomputes
//! every chain. A chain proves that no stored event was altered or removed
//! from the middle of a stream; it cannot on its own notice the *last*
//! events of a stream being deleted, or a whole stream being rewritten with
//! fresh hashes. Signed checkpoints anchor the heads outside the database
//! and catch both:
//!
//! - [`signing`]: the installation's Ed25519 key;
//! - [`merkle`]: the RFC 6962 Merkle tree hash over the heads;
//! - [`checkpoint`]: taking, signing and writing checkpoints;
//! - [`extends`]: proving that the current log extends a checkpoint.

pub mod checkpoint;
pub mod extends;
pub mod merkle;
pub mod signing;

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::{FamilyEvent, IdNumber};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::export::Csv;
pub use crate::store::events::StoredEvent;
use crate::store::{self, Db};

/// Metadata key of an event's own hash.
pub const HASH: &str = "hash";
/// Metadata key of the previous event's hash (`""` for the first event).
pub const PREV_HASH: &str = "prev_hash";

// ---------------------------------------------------------------------------
// Canonical JSON and the event hash
// ---------------------------------------------------------------------------

/// `value` as compact JSON with every object's keys sorted by their bytes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Null, booleans and numbers print the same in every store.
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is fixed: quotes, backslashes and
    // control characters only.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// The metadata that is hashed: everything but the chain's own keys.
fn hashed_metadata(metadata: &Value) -> Value {
    match metadata {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != HASH && k.as_str() != PREV_HASH)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The hash of one event, chained to `prev_hash` (see the module docs).
pub fn event_hash(
    prev_hash: &str,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev_hash,
        event_type,
        event_version,
        &canonical_json(payload),
        &canonical_json(&hashed_metadata(metadata)),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Why events could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("event metadata is not a JSON object")]
    MetadataNotAnObject,
}

/// `events` (consecutive events of one stream) with `prev_hash` and `hash`
/// set in their metadata, chained from `prev_hash`.
pub fn seal(
    events: &[SerializedEvent],
    prev_hash: String,
) -> Result<Vec<SerializedEvent>, SealError> {
    let mut prev = prev_hash;
    let mut sealed = Vec::with_capacity(events.len());
    for event in events {
        let Value::Object(mut map) = hashed_metadata(&event.metadata) else {
            return Err(SealError::MetadataNotAnObject);
        };
        map.insert(PREV_HASH.into(), Value::String(prev.clone()));
        let metadata = Value::Object(map);
        let hash = event_hash(
            &prev,
            &event.event_type,
            &event.event_version,
            &event.payload,
            &metadata,
        );
        let mut event = event.clone();
        event.metadata = metadata;
        if let Value::Object(map) = &mut event.metadata {
            map.insert(HASH.into(), Value::String(hash.clone()));
        }
        sealed.push(event);
        prev = hash;
    }
    Ok(sealed)
}

// ---------------------------------------------------------------------------
// Stored events and chain verification
// ---------------------------------------------------------------------------

/// What is wrong at a broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// The stream skips this sequence number: an event was removed.
    Missing,
    /// The event carries no `hash` or `prev_hash`.
    Unsealed,
    /// `prev_hash` is not the hash of the event before it.
    NotLinked,
    /// The event's content no longer matches its hash: it was altered.
    Altered,
}

impl fmt::Display for LinkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkProblem::Missing => "the event is missing (removed from the log)",
            LinkProblem::Unsealed => "the event carries no hash",
            LinkProblem::NotLinked => "prev_hash does not match the event before it",
            LinkProblem::Altered => "the event's content does not match its hash (altered)",
        })
    }
}

/// The first broken link of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub aggregate_type: String,
    /// The family id for family cases.
    pub aggregate_id: String,
    pub sequence: u64,
    pub problem: LinkProblem,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.aggregate_type == FamilyCase::TYPE {
            write!(f, "family {}", self.aggregate_id)?;
        } else {
            write!(f, "{} {}", self.aggregate_type, self.aggregate_id)?;
        }
        write!(f, ", sequence {}: {}", self.sequence, self.problem)
    }
}

/// Checks one stream, event by event, stopping at the first broken link.
struct ChainCheck {
    aggregate_type: String,
    aggregate_id: String,
    prev: String,
    next_sequence: u64,
    broken: Option<BrokenLink>,
}

impl ChainCheck {
    fn new(aggregate_type: &str, aggregate_id: &str) -> Self {
        Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            prev: String::new(),
            next_sequence: 1,
            broken: None,
        }
    }

    fn push(&mut self, event: &StoredEvent) {
        if self.broken.is_some() {
            return;
        }
        let problem = self.problem(event);
        match problem {
            Some((sequence, problem)) => {
                self.broken = Some(BrokenLink {
                    aggregate_type: self.aggregate_type.clone(),
                    aggregate_id: self.aggregate_id.clone(),
                    sequence,
                    problem,
                })
            }
            None => {
                self.prev = event.metadata_str(HASH).unwrap_or_default().to_owned();
                self.next_sequence += 1;
            }
        }
    }

    fn problem(&self, event: &StoredEvent) -> Option<(u64, LinkProblem)> {
        if event.sequence != self.next_sequence {
            return Some((self.next_sequence, LinkProblem::Missing));
        }
        let here = event.sequence;
        let (Some(hash), Some(prev)) = (event.metadata_str(HASH), event.metadata_str(PREV_HASH))
        else {
            return Some((here, LinkProblem::Unsealed));
        };
        if prev != self.prev {
            return Some((here, LinkProblem::NotLinked));
        }
        let expected = event_hash(
            prev,
            &event.event_type,
            &event.event_version,
            &event.payload,
            &event.metadata,
        );
        (expected != hash).then_some((here, LinkProblem::Altered))
    }

    fn finish(self) -> Result<(), BrokenLink> {
        self.broken.map_or(Ok(()), Err)
    }
}

/// Checks one stream's events (in sequence order).
pub fn check_chain<'a>(
    aggregate_type: &str,
    aggregate_id: &str,
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<(), BrokenLink> {
    let mut check = ChainCheck::new(aggregate_type, aggregate_id);
    for event in events {
        check.push(event);
    }
    check.finish()
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Streams checked.
    pub streams: u64,
    /// Events checked.
    pub events: u64,
    /// The first broken link of each broken stream, in stream order.
    pub broken: Vec<BrokenLink>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_empty()
    }

    fn add(&mut self, check: ChainCheck) {
        self.streams += 1;
        if let Err(link) = check.finish() {
            self.broken.push(link);
        }
    }
}

/// Recomputes the hash chain of one family (`Some`) or of every stream in
/// the log (`None`), reading the log as a stream.
pub async fn verify(db: &Db, family: Option<Uuid>) -> Result<VerifyReport, sqlx::Error> {
    let mut report = VerifyReport::default();
    let mut current: Option<ChainCheck> = None;
    let mut take = |event: StoredEvent| {
        let same = current.as_ref().is_some_and(|c| {
            c.aggregate_type == event.aggregate_type && c.aggregate_id == event.aggregate_id
        });
        if !same {
            if let Some(done) = current.take() {
                report.add(done);
            }
            current = Some(ChainCheck::new(&event.aggregate_type, &event.aggregate_id));
        }
        if let Some(check) = current.as_mut() {
            check.push(&event);
        }
    };
    let events_seen = store::events::for_each(db, family, &mut take).await?;
    if let Some(done) = current.take() {
        report.add(done);
    }
    report.events = events_seen;
    Ok(report)
}

// ---------------------------------------------------------------------------
// A family's history, as stored
// ---------------------------------------------------------------------------

/// One event of a family's history, ready to show: ID numbers masked.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: Option<DateTime<Utc>>,
    pub recorded_by: Option<Recorder>,
    pub request_id: Option<String>,
    /// `None` only for a stored payload that no longer parses.
    pub action_id: Option<Uuid>,
    /// The event's fields as stored, ID numbers masked.
    pub data: Value,
    /// The action that voided this one.
    pub voided_by: Option<Uuid>,
    /// The event's chain hash.
    pub hash: Option<String>,
}

/// Every event of one family and what its chain says.
#[derive(Debug, Clone)]
pub struct FamilyHistory {
    /// The case folded from every event (for scope checks).
    pub case: FamilyCase,
    pub entries: Vec<HistoryEntry>,
    /// The first broken link of the family's chain, if any.
    pub chain: Result<(), BrokenLink>,
}

/// Replaces every `id_number` string in `value` with its masked form.
pub fn mask_id_numbers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "id_number" {
                    // A sealed number is masked when it is opened
                    // (`crate::privacy`).
                    if let Some(s) = v.as_str().filter(|s| !nuanxin_domain::values::is_opaque(s)) {
                        *v = IdNumber::parse(s)
                            .map(|n| n.masked().into())
                            .unwrap_or_else(|_| "********".into());
                    }
                } else {
                    mask_id_numbers(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_id_numbers),
        _ => {}
    }
}

/// The history of one family, read straight from the log (what is shown is
/// what is stored, so a tampered row shows as tampered).
pub async fn family_history(db: &Db, family_id: Uuid) -> Result<FamilyHistory, sqlx::Error> {
    let stored = store::events::of_family(db, family_id).await?;
    let chain = check_chain(FamilyCase::TYPE, &family_id.to_string(), &stored);
    let mut case = FamilyCase::default();
    let mut entries = Vec::with_capacity(stored.len());
    for event in stored {
        let parsed: Option<FamilyEvent> = serde_json::from_value(event.payload.clone()).ok();
        let action_id = parsed.as_ref().map(FamilyEvent::action_id).or_else(|| {
            inner_payload(&event.payload)
                .get("action_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        });
        if let Some(parsed) = parsed {
            case.apply(parsed);
        }
        let metadata = serde_json::from_value::<HashMap<String, String>>(event.metadata.clone())
            .ok()
            .and_then(|m| EventMetadata::from_map(&m));
        let mut data = inner_payload(&event.payload).clone();
        mask_id_numbers(&mut data);
        entries.push(HistoryEntry {
            sequence: event.sequence,
            hash: event.metadata_str(HASH).map(str::to_owned),
            event_type: event.event_type,
            event_version: event.event_version,
            recorded_at: metadata.as_ref().map(|m| m.recorded_at),
            recorded_by: metadata.as_ref().map(|m| m.recorded_by.clone()),
            request_id: metadata.map(|m| m.request_id),
            action_id,
            data,
            voided_by: None,
        });
    }
    for entry in &mut entries {
        entry.voided_by = entry
            .action_id
            .and_then(|a| case.actions.get(&a))
            .and_then(|r| r.voided_by);
    }
    Ok(FamilyHistory {
        case,
        entries,
        chain,
    })
}

/// The fields of an externally tagged event (`{"NoteAdded": {…}}` → `{…}`).
fn inner_payload(payload: &Value) -> &Value {
    match payload {
        Value::Object(map) if map.len() == 1 => map.values().next().unwrap_or(payload),
        other => other,
    }
}

/// Which history entries to show.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only events recorded by this user.
    pub recorded_by: Option<Uuid>,
    /// Only events recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded at or before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Only events after this sequence number (the page cursor).
    pub after_sequence: Option<u64>,
}

impl HistoryFilter {
    pub fn matches(&self, entry: &HistoryEntry) -> bool {
        let by = self
            .recorded_by
            .is_none_or(|u| entry.recorded_by.as_ref().is_some_and(|r| r.id == u));
        let from = self
            .from
            .is_none_or(|f| entry.recorded_at.is_some_and(|r| r >= f));
        let to = self
            .to
            .is_none_or(|t| entry.recorded_at.is_some_and(|r| r <= t));
        let after = self.after_sequence.is_none_or(|s| entry.sequence > s);
        by && from && to && after
    }
}

// ---------------------------------------------------------------------------
// CSV export
// ---------------------------------------------------------------------------

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 9] = [
    "sequence",
    "event_type",
    "recorded_at",
    "recorded_by_id",
    "recorded_by_name",
    "recorded_by_role",
    "action_id",
    "voided_by",
    "data",
];

/// `entries` as RFC 4180 CSV (CRLF line ends, a header row, cells
/// neutralised against spreadsheet formulas: `crate::export`); `data` is the
/// masked payload as compact JSON.
pub fn history_csv<'a>(entries: impl IntoIterator<Item = &'a HistoryEntry>) -> String {
    let mut csv = Csv::new(false);
    csv.row(CSV_COLUMNS);
    for e in entries {
        let recorder = e.recorded_by.as_ref();
        csv.row([
            e.sequence.to_string(),
            e.event_type.clone(),
            e.recorded_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                .unwrap_or_default(),
            recorder.map(|r| r.id.to_string()).unwrap_or_default(),
            recorder.map(|r| r.name.clone()).unwrap_or_default(),
            recorder
                .map(|r| r.role.as_str().to_owned())
                .unwrap_or_default(),
            e.action_id.map(|a| a.to_string()).unwrap_or_default(),
            e.voided_by.map(|a| a.to_string()).unwrap_or_default(),
            canonical_json(&e.data),
        ]);
    }
    csv.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively_and_is_compact() {
        let a = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "é\"\n"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"é\"\n","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
        // Parsing text with keys in another order gives the same text.
        let b: Value = serde_json::from_str(
            r#"{ "a" : { "z" : [3, {"x": null, "y": true}], "c": "é\"\n" }, "b": 1 }"#,
        )
        .unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!(-12.5)), "-12.5");
    }

    fn event(sequence: usize, text: &str) -> SerializedEvent {
        SerializedEvent::new(
            "fam".into(),
            sequence,
            FamilyCase::TYPE.into(),
            "NoteAdded".into(),
            "1".into(),
            json!({"NoteAdded": {"action_id": Uuid::nil(), "text": text}}),
            json!({"recorded_by_id": "u", "recorded_at": "2026-06-30T04:00:00Z"}),
        )
    }

    fn stored(e: &SerializedEvent) -> StoredEvent {
        StoredEvent {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence as u64,
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            payload: e.payload.clone(),
            metadata: e.metadata.clone(),
        }
    }

    #[test]
    fn the_hash_covers_every_part_and_ignores_key_order_and_chain_keys() {
        let payload = json!({"NoteAdded": {"text": "a", "action_id": "x"}});
        let metadata = json!({"recorded_by_id": "u", "request_id": "r"});
        let h = event_hash("", "NoteAdded", "1", &payload, &metadata);
        assert_eq!(h.len(), 64);
        // A known answer, so the formula cannot drift unnoticed.
        let mut expected = Sha256::new();
        expected.update(
            "\nNoteAdded\n1\n{\"NoteAdded\":{\"action_id\":\"x\",\"text\":\"a\"}}\n\
             {\"recorded_by_id\":\"u\",\"request_id\":\"r\"}\n",
        );
        assert_eq!(h, hex::encode(expected.finalize()));
        let reordered =
            json!({"request_id": "r", "recorded_by_id": "u", "hash": "h", "prev_hash": ""});
        assert_eq!(h, event_hash("", "NoteAdded", "1", &payload, &reordered));
        for other in [
            event_hash("0", "NoteAdded", "1", &payload, &metadata),
            event_hash("", "NoteAdde", "1", &payload, &metadata),
            event_hash("", "NoteAdded", "2", &payload, &metadata),
            event_hash(
                "",
                "NoteAdded",
                "1",
                &json!({"NoteAdded": {"text": "b"}}),
                &metadata,
            ),
            event_hash(
                "",
                "NoteAdded",
                "1",
                &payload,
                &json!({"recorded_by_id": "v"}),
            ),
        ] {
            assert_ne!(h, other);
        }
    }

    #[test]
    fn sealed_events_chain_and_verify() {
        let first = seal(&[event(1, "a"), event(2, "b")], String::new()).unwrap();
        let next = seal(
            &[event(3, "c")],
            first[1].metadata[HASH].as_str().unwrap().to_owned(),
        )
        .unwrap();
        assert_eq!(first[0].metadata[PREV_HASH], "");
        assert_eq!(first[1].metadata[PREV_HASH], first[0].metadata[HASH]);
        assert_eq!(next[0].metadata[PREV_HASH], first[1].metadata[HASH]);
        let all: Vec<StoredEvent> = first.iter().chain(&next).map(stored).collect();
        assert_eq!(check_chain(FamilyCase::TYPE, "fam", &all), Ok(()));

        let mut altered = all.clone();
        altered[1].payload["NoteAdded"]["text"] = json!("B");
        let broken = check_chain(FamilyCase::TYPE, "fam", &altered).unwrap_err();
        assert_eq!((broken.sequence, broken.problem), (2, LinkProblem::Altered));
        assert_eq!(
            broken.to_string(),
            "family fam, sequence 2: the event's content does not match its hash (altered)"
        );

        // Re-hashing the altered event breaks the link to the next one.
        let mut rehashed = altered.clone();
        let prev = rehashed[0].metadata[HASH].as_str().unwrap().to_owned();
        let e = &rehashed[1];
        let h = event_hash(
            &prev,
            &e.event_type,
            &e.event_version,
            &e.payload,
            &e.metadata,
        );
        rehashed[1].metadata[HASH] = json!(h);
        let broken = check_chain(FamilyCase::TYPE, "fam", &rehashed).unwrap_err();
        assert_eq!(
            (broken.sequence, broken.problem),
            (3, LinkProblem::NotLinked)
        );

        let mut removed = all.clone();
        removed.remove(1);
        let broken = check_chain(FamilyCase::TYPE, "fam", &removed).unwrap_err();
        assert_eq!((broken.sequence, broken.problem), (2, LinkProblem::Missing));

        let mut unsealed = all;
        unsealed[0].metadata = json!({"recorded_by_id": "u"});
        let broken = check_chain(FamilyCase::TYPE, "fam", &unsealed).unwrap_err();
        assert_eq!(
            (broken.sequence, broken.problem),
            (1, LinkProblem::Unsealed)
        );
    }

    #[test]
    fn ids_are_masked_and_csv_is_quoted() {
        let mut v = json!({"members": [{"id_number": "11010519491231002X", "name": "Z"}]});
        mask_id_numbers(&mut v);
        assert_eq!(v["members"][0]["id_number"], "110105********002X");
        let entry = HistoryEntry {
            sequence: 1,
            event_type: "NoteAdded".into(),
            event_version: "1".into(),
            recorded_at: None,
            recorded_by: None,
            request_id: None,
            action_id: None,
            data: json!({"text": "a, \"b\""}),
            voided_by: None,
            hash: None,
        };
        let csv = history_csv([&entry]);
        assert_eq!(
            csv,
            "sequence,event_type,recorded_at,recorded_by_id,recorded_by_name,recorded_by_role,\
             action_id,voided_by,data\r\n1,NoteAdded,,,,,,,\"{\"\"text\"\":\"\"a, \\\"\"b\\\"\"\"\"}\"\r\n"
        );
    }
}
