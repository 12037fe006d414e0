//! Signed checkpoints of the event log: tamper evidence that survives
//! whoever controls the database (docs/audit.md).
//!
//! A checkpoint is a **statement** — the highest position, the number of
//! events and of streams, the Merkle root ([`super::merkle`]) over every
//! stream's head `(aggregate_type, aggregate_id, version, hash)` in
//! canonical order, the instant, the key — signed with the installation's
//! Ed25519 key ([`super::signing`]), plus a **heads file** listing those
//! heads (covered by the root, so it can be checked against the signed
//! statement wherever it comes from). Both are written to the checkpoint
//! directory, outside the database; the signed statement is also recorded
//! in `audit_checkpoints` and posted to the webhooks as
//! `checkpoint.signed`, so copies live where the database's operator
//! cannot reach them. `nuanxin audit verify --checkpoint` then proves the
//! current log extends each copy ([`super::extends`]).
//!
//! Every head hash chains over its whole stream (record 16), so a head that
//! is still there with the same hash, in a chain that still verifies,
//! proves the stream's every event up to it unchanged. Hashes cover the
//! stored payload, ciphertext included: nothing here needs plaintext.
//!
//! ## Files
//!
//! `checkpoint-<UTC instant>-<id>.json`:
//!
//! ```json
//! {"checkpoint": {"format": "nuanxin-checkpoint/1", "id": "…", "taken_at": "…",
//!                 "kind": "daily", "store": "sqlite", "position": 2044714,
//!                 "events": 2044714, "streams": 100000, "tx_snapshot": null,
//!                 "merkle_root": "<hex>", "heads_file": "checkpoint-….heads.gz",
//!                 "key_id": "<16 hex>", "public_key": "<64 hex>"},
//!  "signature": "<128 hex: Ed25519 over canonical_json(checkpoint)>"}
//! ```
//!
//! `checkpoint-<UTC instant>-<id>.heads.gz`: gzip of one line per stream,
//! `["FamilyCase","<id>",<version>,"<hash>"]` (canonical JSON), sorted by
//! type then id (bytes); each line's bytes are a Merkle leaf.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use nuanxin_domain::Clock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::canonical_json;
use super::merkle;
use super::signing::{PublicKey, SigningKeyFile};
use crate::store::audit_checkpoints::{self as table, CheckpointRecord};
use crate::store::{self, DatabaseUrl, Db};

/// The `format` of the statements this code writes.
pub const FORMAT: &str = "nuanxin-checkpoint/1";
/// The `event` of the webhook message that carries a checkpoint.
pub const WEBHOOK_EVENT: &str = "checkpoint.signed";

/// Where checkpoints and the signing key live, and whether `serve` takes
/// the daily checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// `NUANXIN_CHECKPOINT_DIR`.
    pub dir: PathBuf,
    /// `NUANXIN_SIGNING_KEY_FILE`.
    pub key_file: PathBuf,
    /// Take a checkpoint every day with the alert scan (`serve`).
    pub daily: bool,
}

impl CheckpointConfig {
    /// The defaults for a store: beside the SQLite file (`nuanxin.db` →
    /// `nuanxin-checkpoints/` and `nuanxin-signing.key`), or in the working
    /// directory for PostgreSQL.
    pub fn defaults_for(url: &DatabaseUrl) -> Self {
        let (dir, stem) = match url {
            DatabaseUrl::Sqlite(path) => (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "nuanxin".into()),
            ),
            DatabaseUrl::Postgres(_) => (PathBuf::new(), "nuanxin".into()),
        };
        Self {
            dir: dir.join(format!("{stem}-checkpoints")),
            key_file: dir.join(format!("{stem}-signing.key")),
            daily: true,
        }
    }
}

/// Why a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// With the daily alert scan of `serve`.
    Daily,
    /// `nuanxin audit checkpoint`.
    OnDemand,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "daily",
            Kind::OnDemand => "on_demand",
        }
    }
}

// ---------------------------------------------------------------------------
// Heads
// ---------------------------------------------------------------------------

/// One stream's last event as a checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The stream's length: its last event's sequence number.
    pub version: u64,
    /// That event's chain hash (`""` for an unsealed event).
    pub hash: String,
}

impl Head {
    /// The head's line in the heads file, and its Merkle leaf: canonical
    /// JSON of `[aggregate_type, aggregate_id, version, hash]`.
    pub fn line(&self) -> String {
        canonical_json(&serde_json::json!([
            self.aggregate_type,
            self.aggregate_id,
            self.version,
            self.hash
        ]))
    }

    /// A line of a heads file.
    pub fn parse(line: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(line).ok()?;
        let [t, id, version, hash] = v.as_array()?.as_slice() else {
            return None;
        };
        Some(Self {
            aggregate_type: t.as_str()?.to_owned(),
            aggregate_id: id.as_str()?.to_owned(),
            version: version.as_u64()?,
            hash: hash.as_str()?.to_owned(),
        })
    }
}

/// Sorts heads into the canonical order: by type, then id, as bytes (not
/// by any database collation).
pub fn sort_heads(heads: &mut [Head]) {
    heads.sort_unstable_by(|a, b| {
        (a.aggregate_type.as_bytes(), a.aggregate_id.as_bytes())
            .cmp(&(b.aggregate_type.as_bytes(), b.aggregate_id.as_bytes()))
    });
}

/// The Merkle root (hex) over heads in canonical order.
pub fn merkle_root(heads: &[Head]) -> String {
    let leaves = heads
        .iter()
        .map(|h| merkle::leaf_hash(h.line().as_bytes()))
        .collect();
    hex::encode(merkle::root(leaves))
}

/// Writes heads (in canonical order) as a heads file.
fn encode_heads(heads: &[Head]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for head in heads {
        gz.write_all(head.line().as_bytes())?;
        gz.write_all(b"\n")?;
    }
    gz.finish()
}

/// Reads a heads file.
pub fn read_heads(path: &Path) -> std::io::Result<Vec<Head>> {
    let mut text = String::new();
    GzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    text.lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, line)| {
            Head::parse(line).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {} is not a stream head", n + 1),
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The signed statement
// ---------------------------------------------------------------------------

/// What a checkpoint states (the signed part of its file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// [`FORMAT`].
    pub format: String,
    pub id: Uuid,
    /// When it was taken (the server clock).
    pub taken_at: DateTime<Utc>,
    pub kind: Kind,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// The highest position among its events (0 for an empty log).
    pub position: i64,
    /// How many events it covers.
    pub events: i64,
    /// How many streams (families) it covers: the heads.
    pub streams: i64,
    /// PostgreSQL: the snapshot it was read in (`xmin:xmax:xip,…`, as
    /// `pg_current_snapshot()` prints it): it covers the events up to
    /// `position` whose transaction that snapshot saw. `null` on SQLite,
    /// where it covers every event up to `position`.
    pub tx_snapshot: Option<String>,
    /// The Merkle root over the heads, hex.
    pub merkle_root: String,
    /// The name of its heads file.
    pub heads_file: String,
    /// [`PublicKey::key_id`] of the signing key.
    pub key_id: String,
    /// The signing key, 64 hex digits.
    pub public_key: String,
}

impl Statement {
    /// The events the checkpoint covers; `None` when its `tx_snapshot`
    /// does not read.
    pub fn coverage(&self) -> Option<Coverage> {
        let snapshot = match &self.tx_snapshot {
            None => None,
            Some(text) => Some(TxSnapshot::parse(text)?),
        };
        Some(Coverage {
            position: self.position,
            snapshot,
        })
    }
}

/// Which events a checkpoint covers, by their place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    position: i64,
    snapshot: Option<TxSnapshot>,
}

impl Coverage {
    /// Whether an event at `position`, written by transaction `tx_id`
    /// (PostgreSQL), is one of the checkpoint's.
    pub fn covers(&self, position: i64, tx_id: i64) -> bool {
        position <= self.position && self.snapshot.as_ref().is_none_or(|s| s.sees(tx_id))
    }
}

/// A PostgreSQL snapshot: transactions below `xmin` had finished, those
/// from `xmax` on had not started, those in `xip` were in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSnapshot {
    xmin: i64,
    xmax: i64,
    xip: Vec<i64>,
}

impl TxSnapshot {
    /// `xmin:xmax:xip1,xip2,…` (the list may be empty).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let mut xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<i64>>>()?,
        };
        if parts.next().is_some() {
            return None;
        }
        xip.sort_unstable();
        Some(Self { xmin, xmax, xip })
    }

    /// Whether rows written by `tx` (which committed, or they would not be
    /// in the table) were visible in the snapshot.
    pub fn sees(&self, tx: i64) -> bool {
        tx < self.xmin || (tx < self.xmax && self.xip.binary_search(&tx).is_err())
    }
}

/// A statement and its signature, as read from a file or a webhook body.
#[derive(Debug, Clone)]
pub struct Signed {
    pub statement: Statement,
    pub signature: String,
    /// The statement exactly as read: the signature covers its canonical
    /// JSON, whatever fields and spacing it has.
    raw: Value,
}

/// Why a signed checkpoint cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("it names a public key that is not an Ed25519 key")]
    BadKey,
    #[error("its signature does not match its contents: it was altered after signing")]
    Invalid,
    #[error("it is signed by key {found}, not by the trusted key {trusted}")]
    OtherKey { found: String, trusted: String },
}

impl Signed {
    /// Signs a statement.
    pub fn sign(statement: Statement, key: &SigningKeyFile) -> Self {
        let raw = serde_json::to_value(&statement).expect("a statement serializes");
        let signature = key.sign(canonical_json(&raw).as_bytes());
        Self {
            statement,
            signature,
            raw,
        }
    }

    /// A checkpoint file, or any JSON object holding `checkpoint` and
    /// `signature` (a webhook body, an item of the API's list).
    pub fn from_document(doc: &Value) -> Result<Self, String> {
        let raw = doc
            .get("checkpoint")
            .filter(|v| v.is_object())
            .ok_or("it has no `checkpoint` object")?
            .clone();
        let signature = doc
            .get("signature")
            .and_then(Value::as_str)
            .ok_or("it has no `signature`")?
            .to_owned();
        let statement: Statement = serde_json::from_value(raw.clone())
            .map_err(|e| format!("its checkpoint does not read: {e}"))?;
        if statement.format != FORMAT {
            return Err(format!(
                "its format is {:?}; this version reads {FORMAT:?}",
                statement.format
            ));
        }
        Ok(Self {
            statement,
            signature,
            raw,
        })
    }

    /// `{"checkpoint": …, "signature": …}`.
    pub fn document(&self) -> Value {
        serde_json::json!({"checkpoint": self.raw, "signature": self.signature})
    }

    /// The statement as signed.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Checks the signature against the key the statement names, and that
    /// key against `trusted`.
    pub fn check(&self, trusted: &PublicKey) -> Result<(), SignatureProblem> {
        let named =
            PublicKey::parse(&self.statement.public_key).map_err(|_| SignatureProblem::BadKey)?;
        if !named.verifies(canonical_json(&self.raw).as_bytes(), &self.signature)
            || named.key_id() != self.statement.key_id
        {
            return Err(SignatureProblem::Invalid);
        }
        if named != *trusted {
            return Err(SignatureProblem::OtherKey {
                found: named.key_id(),
                trusted: trusted.key_id(),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Taking checkpoints
// ---------------------------------------------------------------------------

/// Why a checkpoint could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A checkpoint just taken.
#[derive(Debug, Clone)]
pub struct Taken {
    pub signed: Signed,
    pub statement_path: PathBuf,
    pub heads_path: PathBuf,
}

/// Takes checkpoints: the store, the clock, the signing key and the
/// directory.
pub struct Checkpointer {
    db: Db,
    clock: Arc<dyn Clock>,
    key: SigningKeyFile,
    dir: PathBuf,
}

impl Checkpointer {
    /// Loads the signing key (creating it on first use) and makes the
    /// checkpoint directory. Says so in the log when it created the key.
    pub fn open(db: Db, clock: Arc<dyn Clock>, config: &CheckpointConfig) -> anyhow::Result<Self> {
        let (key, created) = SigningKeyFile::load_or_create(&config.key_file)?;
        if created {
            tracing::info!(path = %config.key_file.display(), key.id = %key.public().key_id(),
                "created the installation's checkpoint signing key");
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| {
            anyhow::anyhow!(
                "creating the checkpoint directory {} (NUANXIN_CHECKPOINT_DIR): {e}",
                config.dir.display()
            )
        })?;
        Ok(Self {
            db,
            clock,
            key,
            dir: config.dir.clone(),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the daily checkpoint of `day` unless it was taken (by any
    /// process): `None` then.
    pub async fn daily(&self, day: NaiveDate) -> Result<Option<Taken>, CheckpointError> {
        if table::daily_taken(&self.db, day).await? {
            return Ok(None);
        }
        self.take(Kind::Daily, Some(day)).await
    }

    /// Takes a checkpoint now: reads the log's state in one snapshot,
    /// signs it, writes the heads file and the statement (each synced to
    /// disk before it is named), then records it and queues its webhook
    /// message. `None` when another process recorded the daily checkpoint
    /// of `day` meanwhile (the files written here are removed again).
    pub async fn take(
        &self,
        kind: Kind,
        day: Option<NaiveDate>,
    ) -> Result<Option<Taken>, CheckpointError> {
        let state = store::events::log_state(&self.db).await?;
        let mut heads: Vec<Head> = state
            .heads
            .into_iter()
            .map(|h| Head {
                aggregate_type: h.aggregate_type,
                aggregate_id: h.aggregate_id,
                version: u64::try_from(h.sequence).unwrap_or(0),
                hash: h.hash.unwrap_or_default(),
            })
            .collect();
        sort_heads(&mut heads);
        let id = Uuid::now_v7();
        let taken_at = self.clock.now();
        let stem = format!("checkpoint-{}-{id}", taken_at.format("%Y%m%dT%H%M%SZ"));
        let public = self.key.public();
        let statement = Statement {
            format: FORMAT.into(),
            id,
            taken_at,
            kind,
            store: self.db.kind().into(),
            position: state.position,
            events: state.events,
            streams: heads.len() as i64,
            tx_snapshot: state.tx_snapshot,
            merkle_root: merkle_root(&heads),
            heads_file: format!("{stem}.heads.gz"),
            key_id: public.key_id(),
            public_key: public.to_hex(),
        };
        let signed = Signed::sign(statement, &self.key);
        let heads_path = self.dir.join(&signed.statement.heads_file);
        let statement_path = self.dir.join(format!("{stem}.json"));
        let write = |path: &Path, bytes: &[u8]| {
            write_synced(path, bytes).map_err(|source| CheckpointError::Write {
                path: path.to_owned(),
                source,
            })
        };
        let heads_bytes = encode_heads(&heads).map_err(|source| CheckpointError::Write {
            path: heads_path.clone(),
            source,
        })?;
        write(&heads_path, &heads_bytes)?;
        let mut text = serde_json::to_string_pretty(&signed.document()).expect("JSON");
        text.push('\n');
        write(&statement_path, text.as_bytes())?;
        let file = stem.clone() + ".json";
        let body = serde_json::json!({
            "id": id,
            "event": WEBHOOK_EVENT,
            "file": file,
            "checkpoint": signed.raw(),
            "signature": signed.signature,
        })
        .to_string();
        let record = CheckpointRecord {
            id,
            taken_at,
            kind: kind.as_str().into(),
            day: day.filter(|_| kind == Kind::Daily),
            position: signed.statement.position,
            events: signed.statement.events,
            streams: signed.statement.streams,
            merkle_root: signed.statement.merkle_root.clone(),
            key_id: signed.statement.key_id.clone(),
            file,
            body,
        };
        if !table::insert(&self.db, &record).await? {
            let _ = std::fs::remove_file(&statement_path);
            let _ = std::fs::remove_file(&heads_path);
            return Ok(None);
        }
        crate::alerts::wake_delivery();
        tracing::info!(checkpoint.id = %id, checkpoint.kind = kind.as_str(),
            log.position = signed.statement.position, log.events = signed.statement.events,
            log.streams = signed.statement.streams, "checkpoint signed");
        Ok(Some(Taken {
            signed,
            statement_path,
            heads_path,
        }))
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, synced
/// before the rename and the directory after it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        super::signing::sync_dir(dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The statement files (`*.json`) in `dir`, by name (oldest first).
pub fn statement_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(t: &str, id: &str, version: u64) -> Head {
        Head {
            aggregate_type: t.into(),
            aggregate_id: id.into(),
            version,
            hash: format!("{version:064x}"),
        }
    }

    #[test]
    fn heads_sort_by_bytes_and_round_trip_through_their_file() {
        let mut heads = vec![
            head("FamilyCase", "b", 2),
            head("Activity", "z", 1),
            head("FamilyCase", "B", 7),
            head("FamilyCase", "a-\t\"x", 3),
        ];
        sort_heads(&mut heads);
        let order: Vec<(&str, &str)> = heads
            .iter()
            .map(|h| (h.aggregate_type.as_str(), h.aggregate_id.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("Activity", "z"),
                ("FamilyCase", "B"),
                ("FamilyCase", "a-\t\"x"),
                ("FamilyCase", "b")
            ]
        );
        assert_eq!(
            heads[0].line(),
            format!("[\"Activity\",\"z\",1,\"{:064x}\"]", 1)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.heads.gz");
        std::fs::write(&path, encode_heads(&heads).unwrap()).unwrap();
        assert_eq!(read_heads(&path).unwrap(), heads);
        std::fs::write(&path, encode_heads(&[]).unwrap()).unwrap();
        assert!(read_heads(&path).unwrap().is_empty());
    }

    #[test]
    fn the_root_commits_to_every_head() {
        let heads = vec![head("F", "a", 1), head("F", "b", 2)];
        let root = merkle_root(&heads);
        assert_eq!(root.len(), 64);
        let mut longer = heads.clone();
        longer[1].version = 3;
        assert_ne!(merkle_root(&longer), root);
        let mut rehashed = heads.clone();
        rehashed[0].hash = "0".repeat(64);
        assert_ne!(merkle_root(&rehashed), root);
        assert_ne!(merkle_root(&heads[..1]), root);
        assert_eq!(
            merkle_root(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn statement(key: &SigningKeyFile) -> Statement {
        Statement {
            format: FORMAT.into(),
            id: Uuid::now_v7(),
            taken_at: "2026-06-30T04:00:00Z".parse().unwrap(),
            kind: Kind::OnDemand,
            store: "sqlite".into(),
            position: 12,
            events: 12,
            streams: 3,
            tx_snapshot: None,
            merkle_root: "ab".repeat(32),
            heads_file: "x.heads.gz".into(),
            key_id: key.public().key_id(),
            public_key: key.public().to_hex(),
        }
    }

    #[test]
    fn a_signed_statement_survives_reformatting_but_not_editing() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SigningKeyFile::load_or_create(&dir.path().join("k")).unwrap();
        let (other, _) = SigningKeyFile::load_or_create(&dir.path().join("o")).unwrap();
        let signed = Signed::sign(statement(&key), &key);
        let doc = signed.document();
        // Pretty-printed, with keys reordered and extra fields around it.
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "signature": doc["signature"], "event": WEBHOOK_EVENT, "checkpoint": doc["checkpoint"],
        }))
        .unwrap();
        let read = Signed::from_document(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(read.statement, signed.statement);
        assert_eq!(read.check(&key.public()), Ok(()));
        assert!(matches!(
            read.check(&other.public()),
            Err(SignatureProblem::OtherKey { .. })
        ));
        for (field, value) in [
            ("events", serde_json::json!(11)),
            ("merkle_root", serde_json::json!("cd".repeat(32))),
            ("position", serde_json::json!(13)),
        ] {
            let mut edited = doc.clone();
            edited["checkpoint"][field] = value;
            let read = Signed::from_document(&edited).unwrap();
            assert_eq!(
                read.check(&key.public()),
                Err(SignatureProblem::Invalid),
                "{field}"
            );
        }
        // Re-signed by another key that claims to be the installation's.
        let mut forged = statement(&key);
        forged.events = 11;
        let forged = Signed::sign(forged, &other);
        assert_eq!(forged.check(&key.public()), Err(SignatureProblem::Invalid));
        assert!(Signed::from_document(&serde_json::json!({"signature": "x"})).is_err());
        let mut future = doc.clone();
        future["checkpoint"]["format"] = serde_json::json!("nuanxin-checkpoint/2");
        assert!(Signed::from_document(&future)
            .unwrap_err()
            .contains("nuanxin-checkpoint/2"));
    }

    #[test]
    fn a_snapshot_sees_what_had_committed_when_it_was_taken() {
        let s = TxSnapshot::parse("100:110:103,105").unwrap();
        for (tx, seen) in [
            (99, true),
            (100, true),
            (103, false),
            (104, true),
            (105, false),
            (109, true),
            (110, false),
            (500, false),
        ] {
            assert_eq!(s.sees(tx), seen, "{tx}");
        }
        assert!(TxSnapshot::parse("7:7:").unwrap().sees(6));
        for bad in ["", "1", "1:2", "a:2:", "1:2:x", "1:2:3:4"] {
            assert_eq!(TxSnapshot::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults_sit_beside_the_sqlite_file_or_in_the_working_directory() {
        let c =
            CheckpointConfig::defaults_for(&DatabaseUrl::Sqlite("/var/lib/nx/county.db".into()));
        assert_eq!(c.dir, PathBuf::from("/var/lib/nx/county-checkpoints"));
        assert_eq!(c.key_file, PathBuf::from("/var/lib/nx/county-signing.key"));
        let c = CheckpointConfig::defaults_for(&DatabaseUrl::Sqlite("nuanxin.db".into()));
        assert_eq!(c.dir, PathBuf::from("nuanxin-checkpoints"));
        assert_eq!(c.key_file, PathBuf::from("nuanxin-signing.key"));
        let c = CheckpointConfig::defaults_for(&DatabaseUrl::Postgres("postgres://h/db".into()));
        assert_eq!(c.dir, PathBuf::from("nuanxin-checkpoints"));
        assert_eq!(c.key_file, PathBuf::from("nuanxin-signing.key"));
        assert!(c.daily);
    }
}
