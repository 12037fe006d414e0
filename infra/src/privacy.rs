//! Crypto-shredding (docs/privacy.md, decision 31): personal fields are
//! stored encrypted, each with the data key of the person it is about, so
//! that deleting a key erases that person's data everywhere it was copied —
//! in the append-only event log, the case-file rows, snapshots, alerts and
//! backups — while the events themselves, their hash chain and the audit
//! trail stay as they are.
//!
//! - A **data key** per person: the family (address, free text), each
//!   member, each emergency contact, each contact person. It lives in the
//!   `person_keys` table, outside the log, wrapped (AES-256-GCM) by the
//!   installation's **master key** (`NUANXIN_MASTER_KEY` or a key file).
//! - A **sealed field** is the string `nx2:` + base64url(the last 8 bytes
//!   of the subject id ‖ nonce ‖ AES-256-GCM ciphertext), the whole subject
//!   id being the associated data: a ciphertext cannot be passed off as
//!   another person's. It replaces the clear value in the stored payload;
//!   projections fold it unopened, so read models hold it too, and it is
//!   opened only when a read answers. The 8 bytes find the key (in memory,
//!   or by the `person_keys_tail` index); two subjects that share them are
//!   both tried, and only the right one authenticates. Fields sealed before
//!   `nx2:` carry the whole id after `nx1:` and still open.
//! - **Erasing** a family deletes the keys of the family, its members and
//!   its emergency contacts (contact persons are staff, kept). Every
//!   sealed field of theirs then reads as [`ERASED`].
//! - Values written before encryption are clear strings: they read as
//!   themselves (the upcast), see docs/privacy.md § Stores with clear text.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{self, Db};
pub use nuanxin_domain::values::{is_sealed, ERASED, SEALED_PREFIX, SEALED_PREFIX_V1};

const NONCE: usize = 12;
const TAG: usize = 16;
/// How many bytes of the subject id an `nx2:` field carries: its last 8.
const TAIL: usize = 8;
/// How long an answer may still show data a *another process* erased (the
/// CLI's `nuanxin privacy erase` while the server runs): the keyring asks
/// the store for erasures at most this often.
const ERASURE_SYNC: Duration = Duration::from_secs(1);

/// Why a personal field could not be sealed or a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("the person's data key is erased")]
    Erased,
    #[error("a person key does not open with this master key (is NUANXIN_MASTER_KEY or the key file the one the store was written with?)")]
    WrongMasterKey,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Whose data a key protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    Family,
    Member,
    EmergencyContact,
    ContactPerson,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Family => "family",
            SubjectKind::Member => "member",
            SubjectKind::EmergencyContact => "emergency_contact",
            SubjectKind::ContactPerson => "contact_person",
        }
    }
}

/// A person with a data key: their id, and the family whose erasure
/// deletes the key (none for a contact person).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subject {
    pub id: Uuid,
    pub kind: SubjectKind,
    pub family: Option<Uuid>,
}

// ---------------------------------------------------------------------------
// The master key
// ---------------------------------------------------------------------------

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `NUANXIN_MASTER_KEY`: 32 bytes in base64 (or 64 hex digits).
    Value(String),
    /// A key file, created (mode 0600) on first start if missing.
    File(PathBuf),
    /// A new random key held in memory only, for tests and benchmarks:
    /// what is written with it cannot be read after the process ends.
    Ephemeral,
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Value(_) => f.write_str("Value(***)"),
            MasterKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            MasterKeySource::Ephemeral => f.write_str("Ephemeral"),
        }
    }
}

/// The key that wraps every person key.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"nuanxin master key id\0")
            .chain_update(key)
            .finalize();
        Self {
            key,
            id: hex::encode(&digest[..8]),
        }
    }

    /// A key written as 32 bytes in base64, or as 64 hex digits.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            STANDARD.decode(text).ok()
        };
        let key: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .context("a master key is 32 bytes written in base64 (or 64 hex digits)")?;
        Ok(Self::from_bytes(key))
    }

    /// The key as the key file holds it (base64).
    pub fn to_text(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// A short public name for the key (a hash of it), stored beside every
    /// key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key in `path`, creating it if the file does not exist (`true`
    /// when created).
    pub fn load_or_create(path: &Path) -> anyhow::Result<(Self, bool)> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let key = Self::generate();
        match crate::audit::signing::write_new(path, format!("{}\n", key.to_text()).as_bytes()) {
            Ok(()) => Ok((key, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "creating the master key file {} (NUANXIN_MASTER_KEY_FILE)",
                    path.display()
                )
            }),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the master key file {} (NUANXIN_MASTER_KEY_FILE)",
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The key named by `source`; says in the log where a new one was made.
    pub fn resolve(source: &MasterKeySource) -> anyhow::Result<Self> {
        match source {
            MasterKeySource::Value(text) => Self::parse(text).context("NUANXIN_MASTER_KEY"),
            MasterKeySource::Ephemeral => Ok(Self::generate()),
            MasterKeySource::File(path) => {
                let (key, created) = Self::load_or_create(path)?;
                if created {
                    tracing::warn!(path = %path.display(), key.id = %key.id(),
                        "created the installation's master key: personal data cannot be \
                         read without it; back it up apart from the database");
                }
                Ok(key)
            }
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.key).into())
    }

    fn wrap(&self, subject: Uuid, key: &[u8; 32]) -> Vec<u8> {
        seal_bytes(&self.cipher(), subject.as_bytes(), key)
    }

    fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Option<[u8; 32]> {
        open_bytes(&self.cipher(), subject.as_bytes(), wrapped)?
            .try_into()
            .ok()
    }
}

/// nonce ‖ ciphertext of `plain` under `cipher`, `aad` bound to it.
fn seal_bytes(cipher: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("AES-GCM encrypts any message under 64 GiB");
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_bytes(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE + TAG {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// The last 8 bytes of a subject id: what an `nx2:` field names.
type Tail = [u8; TAIL];

fn tail_of(subject: &Uuid) -> Tail {
    let mut tail = [0u8; TAIL];
    tail.copy_from_slice(&subject.as_bytes()[16 - TAIL..]);
    tail
}

/// Whose key a sealed field needs: a whole subject id (`nx1:`) or the
/// last 8 bytes of one (`nx2:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Subject(Uuid),
    Tail(Tail),
}

/// A sealed field's base64 body, and how many of its bytes are the id:
/// 8 (`nx2:`) or 16 (`nx1:`).
fn form_of(s: &str) -> Option<(&str, usize)> {
    match s.strip_prefix(SEALED_PREFIX) {
        Some(body) => Some((body, TAIL)),
        None => Some((s.strip_prefix(SEALED_PREFIX_V1)?, 16)),
    }
}

/// Whom a sealed field names, and its nonce and ciphertext.
fn parse_sealed(s: &str) -> Option<(Names, Vec<u8>)> {
    let (body, id_len) = form_of(s)?;
    let mut bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    if bytes.len() < id_len + NONCE + TAG {
        return None;
    }
    let names = names_in(&bytes[..id_len])?;
    bytes.drain(..id_len);
    Some((names, bytes))
}

fn names_in(id: &[u8]) -> Option<Names> {
    Some(match id.len() {
        TAIL => Names::Tail(id.try_into().ok()?),
        _ => Names::Subject(Uuid::from_slice(id).ok()?),
    })
}

/// Whom a sealed field names, without opening it.
fn sealed_names(s: &str) -> Option<Names> {
    let (body, id_len) = form_of(s)?;
    // The id's bytes lie in the first whole base64 groups that cover
    // them: 12 characters for 8 bytes, 24 for 16.
    let chars = id_len.div_ceil(3) * 4;
    let head = URL_SAFE_NO_PAD.decode(body.get(..chars)?).ok()?;
    names_in(&head[..id_len])
}

/// Whether `s` is a field sealed for `subject` (either form).
fn sealed_for(s: &str, subject: &Uuid) -> bool {
    match sealed_names(s) {
        Some(Names::Subject(id)) => id == *subject,
        Some(Names::Tail(tail)) => tail == tail_of(subject),
        None => false,
    }
}

// ---------------------------------------------------------------------------
// The keyring
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Slot {
    Key([u8; 32]),
    Erased,
}

/// The subjects held in memory, by the last 8 bytes of their id (what an
/// `nx2:` field names; nearly always one subject each).
#[derive(Default)]
struct Slots {
    by_tail: HashMap<Tail, Held>,
    len: usize,
}

enum Held {
    One(Uuid, Slot),
    Many(Vec<(Uuid, Slot)>),
}

impl Slots {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, id: &Uuid) -> Option<Slot> {
        match self.by_tail.get(&tail_of(id))? {
            Held::One(held, slot) => (held == id).then_some(*slot),
            Held::Many(all) => all.iter().find(|(h, _)| h == id).map(|(_, s)| *s),
        }
    }

    fn contains_key(&self, id: &Uuid) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: Uuid, slot: Slot) {
        self.put(id, slot, true);
    }

    /// Holds `slot` for `id` unless `id` is held already.
    fn insert_new(&mut self, id: Uuid, slot: Slot) {
        self.put(id, slot, false);
    }

    fn put(&mut self, id: Uuid, slot: Slot, replace: bool) {
        use std::collections::hash_map::Entry;
        match self.by_tail.entry(tail_of(&id)) {
            Entry::Vacant(e) => {
                e.insert(Held::One(id, slot));
                self.len += 1;
            }
            Entry::Occupied(mut e) => {
                let held = e.get_mut();
                if let Held::One(other, other_slot) = *held {
                    if other == id {
                        if replace {
                            *held = Held::One(id, slot);
                        }
                        return;
                    }
                    *held = Held::Many(vec![(other, other_slot)]);
                }
                let Held::Many(all) = held else {
                    unreachable!("made Many above")
                };
                match all.iter_mut().find(|(h, _)| *h == id) {
                    Some(pair) if replace => pair.1 = slot,
                    Some(_) => {}
                    None => {
                        all.push((id, slot));
                        self.len += 1;
                    }
                }
            }
        }
    }
}

impl Extend<(Uuid, Slot)> for Slots {
    fn extend<I: IntoIterator<Item = (Uuid, Slot)>>(&mut self, iter: I) {
        for (id, slot) in iter {
            self.insert(id, slot);
        }
    }
}

/// The person keys in use, unwrapped, and the master key. One per store
/// (in [`crate::Core`]).
pub struct Keyring {
    master: MasterKey,
    slots: RwLock<Slots>,
    /// When erasures recorded by other processes were last looked for, and
    /// the latest erasure time seen.
    synced: Mutex<(Option<Instant>, String)>,
}

/// The data keys a command's event needs, by subject.
#[derive(Default)]
pub struct Keys(HashMap<Uuid, [u8; 32]>);

/// A command's keys ([`Keyring::command_keys`]): every key its event is
/// sealed with, and the new ones among them, to be stored with the event.
#[derive(Default)]
pub struct CommandKeys {
    pub keys: Keys,
    pub fresh: Vec<store::person_keys::NewKey>,
}

impl Keyring {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            slots: RwLock::default(),
            synced: Mutex::new((None, String::new())),
        }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// How many person keys are held unwrapped in memory.
    pub fn cached(&self) -> usize {
        self.read_slots().len()
    }

    fn read_slots(&self) -> std::sync::RwLockReadGuard<'_, Slots> {
        self.slots.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_slots(&self) -> std::sync::RwLockWriteGuard<'_, Slots> {
        self.slots.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The data keys of `subjects`, creating (and storing, durably, before
    /// this returns) those that have none yet. An erased subject's key is
    /// refused: nothing new is sealed for an erased person.
    pub async fn keys_for(&self, db: &Db, subjects: &[Subject]) -> Result<Keys, PrivacyError> {
        let CommandKeys { keys, fresh } = self.command_keys(db, subjects, true).await?;
        if fresh.is_empty() {
            return Ok(keys);
        }
        // The store keeps whichever key of a subject was stored first
        // (another writer may have raced us); we use that one.
        store::person_keys::insert_missing(db, &fresh).await?;
        let ids: Vec<Uuid> = fresh.iter().map(|k| k.subject).collect();
        self.load(db, &ids, true).await?;
        let mut keys = keys;
        let slots = self.read_slots();
        for id in ids {
            match slots.get(&id) {
                Some(Slot::Key(k)) => {
                    keys.0.insert(id, k);
                }
                _ => return Err(PrivacyError::Erased),
            }
        }
        Ok(keys)
    }

    /// The data keys of `subjects` for a command's event, without a round
    /// trip on the way: the keys in memory, and a new key for each subject
    /// that has none in memory. The new keys are **not stored here**: they
    /// go into the store in the very transaction that appends the event
    /// sealed with them, which appends it only if every one of them went
    /// in — a subject's first stored key wins, and a command that lost
    /// that race is told so ([`crate::append::Appended::KeyTaken`]) and
    /// seals again. Once the event is in, [`Keyring::remember`] them.
    ///
    /// With `probe`, subjects not in memory are first looked for in the
    /// store (a retry after a lost race; a key made by another process or
    /// not yet warmed). An erased subject is refused: nothing new is
    /// sealed for an erased person.
    pub async fn command_keys(
        &self,
        db: &Db,
        subjects: &[Subject],
        probe: bool,
    ) -> Result<CommandKeys, PrivacyError> {
        if probe {
            let ids: Vec<Uuid> = subjects.iter().map(|s| s.id).collect();
            self.load(db, &ids, false).await?;
        }
        let mut keys = Keys::default();
        let mut fresh: Vec<store::person_keys::NewKey> = Vec::new();
        let slots = self.read_slots();
        for s in subjects {
            match slots.get(&s.id) {
                Some(Slot::Key(k)) => {
                    keys.0.insert(s.id, k);
                }
                Some(Slot::Erased) => return Err(PrivacyError::Erased),
                None if !fresh.iter().any(|k| k.subject == s.id) => {
                    let mut key = [0u8; 32];
                    rand::rngs::OsRng.fill_bytes(&mut key);
                    fresh.push(store::person_keys::NewKey {
                        subject: s.id,
                        kind: s.kind.as_str(),
                        family: s.family,
                        wrapped: self.master.wrap(s.id, &key),
                        master_key_id: self.master.id().to_owned(),
                    });
                    keys.0.insert(s.id, key);
                }
                None => {}
            }
        }
        Ok(CommandKeys { keys, fresh })
    }

    /// Keeps in memory the new keys of [`Keyring::command_keys`] once the
    /// store has them (their event went in).
    pub fn remember(&self, command: &CommandKeys) {
        if command.fresh.is_empty() {
            return;
        }
        let mut slots = self.write_slots();
        for k in &command.fresh {
            if let Some(key) = command.keys.0.get(&k.subject) {
                slots.insert(k.subject, Slot::Key(*key));
            }
        }
    }

    /// A stored key as held in memory: unwrapped, or erased.
    fn slot_of(&self, row: store::person_keys::Stored) -> Result<Slot, PrivacyError> {
        Ok(match row.wrapped {
            Some(w) => Slot::Key(
                self.master
                    .unwrap(row.subject, &w)
                    .ok_or(PrivacyError::WrongMasterKey)?,
            ),
            None => Slot::Erased,
        })
    }

    /// Loads the keys of `ids` that are not in memory yet. A subject whose
    /// key is erased is remembered as erased; one with no key at all too
    /// when `absent_is_erased` (a sealed string names it: its key is gone),
    /// else it stays unknown (it may be about to get its first key).
    async fn load(
        &self,
        db: &Db,
        ids: &[Uuid],
        absent_is_erased: bool,
    ) -> Result<(), PrivacyError> {
        let wanted: Vec<Uuid> = {
            let slots = self.read_slots();
            ids.iter()
                .copied()
                .filter(|id| !slots.contains_key(id))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let rows = store::person_keys::of(db, &wanted).await?;
        let mut found: HashMap<Uuid, Slot> = HashMap::with_capacity(wanted.len());
        for row in rows {
            found.insert(row.subject, self.slot_of(row)?);
        }
        let mut slots = self.write_slots();
        for id in wanted {
            match found.get(&id) {
                Some(slot) => {
                    slots.insert(id, *slot);
                }
                None if absent_is_erased => {
                    slots.insert(id, Slot::Erased);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Loads the live keys of the store into memory, up to `limit` keys,
    /// so that no command or read waits for a person's key on its first
    /// touch (`nuanxin serve` does this at start, in the background).
    /// Returns how many keys are held after it.
    pub async fn warm(&self, db: &Db, limit: usize) -> Result<usize, PrivacyError> {
        const PAGE: i64 = 5000;
        let mut after = String::new();
        loop {
            let held = self.cached();
            if held >= limit {
                return Ok(held);
            }
            let page = store::person_keys::live_page(db, &after, PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(held);
            };
            after = last.clone();
            let mut opened = Vec::with_capacity(page.len());
            for (subject, wrapped) in &page {
                let Ok(id) = subject.parse::<Uuid>() else {
                    continue;
                };
                let key = self
                    .master
                    .unwrap(id, wrapped)
                    .ok_or(PrivacyError::WrongMasterKey)?;
                opened.push((id, key));
            }
            let mut slots = self.write_slots();
            for (id, key) in opened {
                // A key erased meanwhile stays erased.
                slots.insert_new(id, Slot::Key(key));
            }
            if (page.len() as i64) < PAGE {
                return Ok(slots.len());
            }
        }
    }

    /// Forgets, in memory, the keys that were erased in the store since
    /// the last look (by this process or another), at most once per
    /// [`ERASURE_SYNC`].
    async fn sync_erasures(&self, db: &Db) -> Result<(), PrivacyError> {
        let since = {
            let synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
            if synced.0.is_some_and(|at| at.elapsed() < ERASURE_SYNC) {
                return Ok(());
            }
            synced.1.clone()
        };
        let erased = store::person_keys::erased_since(db, &since).await?;
        let latest = erased.iter().map(|(_, at)| at.clone()).max();
        if !erased.is_empty() {
            let mut slots = self.write_slots();
            for (id, _) in &erased {
                slots.insert(*id, Slot::Erased);
            }
        }
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        synced.0 = Some(Instant::now());
        if let Some(latest) = latest {
            if latest > synced.1 {
                synced.1 = latest;
            }
        }
        Ok(())
    }

    /// `plain` sealed with `subject`'s key from `keys`.
    pub fn seal(&self, keys: &Keys, subject: Uuid, plain: &str) -> String {
        let key = keys
            .0
            .get(&subject)
            .expect("keys_for was asked for every subject the event names");
        let sealed = seal_bytes(
            &Aes256Gcm::new(key.into()),
            subject.as_bytes(),
            plain.as_bytes(),
        );
        let mut bytes = Vec::with_capacity(TAIL + sealed.len());
        bytes.extend_from_slice(&tail_of(&subject));
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `plain` sealed in the form written before `nx2:` (`nx1:` and the
    /// whole subject id), as stores of that time hold it: for tests that
    /// such fields still open.
    #[doc(hidden)]
    pub fn seal_first_form(&self, keys: &Keys, subject: Uuid, plain: &str) -> String {
        let key = keys.0.get(&subject).expect("a key for the subject");
        let sealed = seal_bytes(
            &Aes256Gcm::new(key.into()),
            subject.as_bytes(),
            plain.as_bytes(),
        );
        let bytes = [subject.as_bytes().as_slice(), &sealed].concat();
        format!("{SEALED_PREFIX_V1}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// What a sealed string says, from keys already in memory: the clear
    /// text, [`ERASED`] if its key is gone; any other string as it is.
    fn open_loaded(&self, s: &str) -> Option<String> {
        let (names, sealed) = parse_sealed(s)?;
        Some(
            self.open_held(names, &sealed)
                .unwrap_or_else(|| ERASED.to_owned()),
        )
    }

    /// The clear text of a sealed field, if a key in memory opens it.
    fn open_held(&self, names: Names, sealed: &[u8]) -> Option<String> {
        let open = |id: &Uuid, slot: Slot| match slot {
            Slot::Key(key) => open_bytes(&Aes256Gcm::new((&key).into()), id.as_bytes(), sealed)
                .and_then(|b| String::from_utf8(b).ok()),
            Slot::Erased => None,
        };
        let slots = self.read_slots();
        match names {
            Names::Subject(id) => open(&id, slots.get(&id)?),
            Names::Tail(tail) => match slots.by_tail.get(&tail)? {
                Held::One(id, slot) => open(id, *slot),
                Held::Many(all) => all.iter().find_map(|(id, slot)| open(id, *slot)),
            },
        }
    }

    /// Loads the keys every sealed string of `strings` names: by subject
    /// (`nx1:`), and by the tail of an `nx2:` field no key in memory opens
    /// (its key not loaded yet, or erased — then the store is asked again,
    /// by the `person_keys_tail` index, each time it is read).
    async fn prepare<'s>(
        &self,
        db: &Db,
        strings: impl Iterator<Item = &'s str>,
    ) -> Result<(), PrivacyError> {
        self.sync_erasures(db).await?;
        let (mut ids, mut tails) = (Vec::new(), HashSet::new());
        for s in strings {
            match parse_sealed(s) {
                Some((Names::Subject(id), _)) => ids.push(id),
                Some((names @ Names::Tail(tail), sealed))
                    if self.open_held(names, &sealed).is_none() =>
                {
                    tails.insert(tail);
                }
                Some((Names::Tail(_), _)) => {}
                None => {}
            }
        }
        self.load(db, &ids, true).await?;
        self.load_tails(db, tails.into_iter().collect()).await
    }

    /// Loads every stored key whose subject id ends in one of `tails`
    /// (a key held already stays as it is; an erased one is forgotten).
    async fn load_tails(&self, db: &Db, tails: Vec<Tail>) -> Result<(), PrivacyError> {
        if tails.is_empty() {
            return Ok(());
        }
        let rows = store::person_keys::with_tails(db, &tails).await?;
        let mut opened = Vec::with_capacity(rows.len());
        for row in rows {
            opened.push((row.subject, self.slot_of(row)?));
        }
        let mut slots = self.write_slots();
        for (id, slot) in opened {
            match slot {
                Slot::Key(_) => slots.insert_new(id, slot),
                Slot::Erased => slots.insert(id, slot),
            }
        }
        Ok(())
    }

    /// Opens every sealed string in `value`, in place: clear text, or
    /// [`ERASED`]. ID numbers (under a key `id_number` or
    /// `id_number_masked`) come out masked, as every read shows them.
    pub async fn reveal(&self, db: &Db, value: &mut Value) -> Result<(), PrivacyError> {
        let mut found = Vec::new();
        collect_sealed(value, &mut found);
        if found.is_empty() {
            return Ok(());
        }
        self.prepare(db, found.iter().map(String::as_str)).await?;
        self.open_in(value, None);
        Ok(())
    }

    fn open_in(&self, value: &mut Value, key: Option<&str>) {
        match value {
            Value::String(s) => {
                if let Some(open) = self.open_loaded(s) {
                    *s = match key {
                        Some("id_number" | "id_number_masked") => mask_id_number(&open),
                        _ => open,
                    };
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.open_in(v, key)),
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.open_in(v, Some(k.as_str()));
                }
            }
            _ => {}
        }
    }

    /// Opens the sealed strings among `strings`, in place (ID numbers are
    /// not masked here: the caller decides).
    pub async fn reveal_strings(
        &self,
        db: &Db,
        strings: Vec<&mut String>,
    ) -> Result<(), PrivacyError> {
        if !strings.iter().any(|s| is_sealed(s)) {
            return Ok(());
        }
        self.prepare(db, strings.iter().map(|s| s.as_str())).await?;
        for s in strings {
            if let Some(open) = self.open_loaded(s) {
                *s = open;
            }
        }
        Ok(())
    }

    /// Erases the data keys of `family`'s persons (not its contact
    /// persons'); returns how many keys were erased. The store is asked
    /// to drop what it still holds of them (SQLite: the WAL is truncated;
    /// PostgreSQL: the table is vacuumed). Erasing twice erases nothing more.
    pub async fn erase_family(&self, db: &Db, family: Uuid) -> Result<u64, PrivacyError> {
        let erased = store::person_keys::erase_family(db, family).await?;
        {
            let mut slots = self.write_slots();
            for id in &erased {
                slots.insert(*id, Slot::Erased);
            }
        }
        store::person_keys::scrub(db).await?;
        Ok(erased.len() as u64)
    }

    /// Rewraps every live person key with `next` (no event changes); this
    /// keyring keeps using the old master key until the process restarts
    /// with the new one. Returns how many keys were rewrapped.
    pub async fn rotate(&self, db: &Db, next: &MasterKey) -> Result<u64, PrivacyError> {
        let rows = store::person_keys::live(db).await?;
        let mut rewrapped = Vec::with_capacity(rows.len());
        for (subject, wrapped) in rows {
            let key = self
                .master
                .unwrap(subject, &wrapped)
                .ok_or(PrivacyError::WrongMasterKey)?;
            rewrapped.push((subject, next.wrap(subject, &key)));
        }
        store::person_keys::rewrap(db, &rewrapped, next.id()).await?;
        store::person_keys::scrub(db).await?;
        Ok(rewrapped.len() as u64)
    }
}

/// A row a read answers with: its strings that may be sealed.
pub trait Personal {
    fn personal_mut(&mut self) -> Vec<&mut String>;
}

impl Keyring {
    /// Opens the sealed strings of every row, in place.
    pub async fn reveal_rows<T: Personal>(
        &self,
        db: &Db,
        rows: &mut [T],
    ) -> Result<(), PrivacyError> {
        let strings: Vec<&mut String> = rows.iter_mut().flat_map(T::personal_mut).collect();
        self.reveal_strings(db, strings).await
    }

    /// Opens the sealed strings of several JSON values (a history's
    /// events), loading their keys at once.
    pub async fn reveal_values(
        &self,
        db: &Db,
        values: Vec<&mut Value>,
    ) -> Result<(), PrivacyError> {
        let mut found = Vec::new();
        for v in &values {
            collect_sealed(v, &mut found);
        }
        if found.is_empty() {
            return Ok(());
        }
        self.prepare(db, found.iter().map(String::as_str)).await?;
        for v in values {
            self.open_in(v, None);
        }
        Ok(())
    }

    /// `view` with its sealed strings opened (through its JSON form: for
    /// nested views such as the case file).
    pub async fn reveal_view<T>(&self, db: &Db, view: T) -> Result<T, PrivacyError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut value = serde_json::to_value(&view)
            .map_err(|e| PrivacyError::Store(sqlx::Error::Decode(Box::new(e))))?;
        let mut found = Vec::new();
        collect_sealed(&value, &mut found);
        if found.is_empty() {
            return Ok(view);
        }
        self.prepare(db, found.iter().map(String::as_str)).await?;
        self.open_in(&mut value, None);
        serde_json::from_value(value)
            .map_err(|e| PrivacyError::Store(sqlx::Error::Decode(Box::new(e))))
    }
}

/// Refuses to make a new master key file for a store whose person keys
/// were wrapped by another key (a restored backup, a moved database): a
/// new key could open none of them.
pub async fn check_key_source(db: &Db, source: &MasterKeySource) -> anyhow::Result<()> {
    if let MasterKeySource::File(path) = source {
        if !path.exists() {
            let wrapped = store::person_keys::count_by_master(db).await?;
            if let Some((id, _, _)) = wrapped.iter().find(|(_, live, _)| *live > 0) {
                anyhow::bail!(
                    "no master key file at {}, but this store's person keys are wrapped by \
                     master key {id}: set NUANXIN_MASTER_KEY_FILE to the key file the store \
                     was written with (or NUANXIN_MASTER_KEY to its contents)",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

impl Keyring {
    /// Fails when live person keys of the store are wrapped by another
    /// master key than this keyring's (naming both ids, never a key).
    pub async fn check_store(&self, db: &Db) -> anyhow::Result<()> {
        let wrapped = store::person_keys::count_by_master(db).await?;
        if let Some((id, _, _)) = wrapped
            .iter()
            .find(|(id, live, _)| *live > 0 && id != self.master.id())
        {
            anyhow::bail!(
                "this store's person keys are wrapped by master key {id}, not by the \
                 configured master key {}: set NUANXIN_MASTER_KEY_FILE (or \
                 NUANXIN_MASTER_KEY) to the key the store was written with",
                self.master.id()
            );
        }
        Ok(())
    }
}

fn collect_sealed(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if is_sealed(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_sealed(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_sealed(v, out)),
        _ => {}
    }
}

/// An ID number as every read shows it; anything else (an erased one,
/// text that is not an ID number) as it is.
pub fn mask_id_number(s: &str) -> String {
    match nuanxin_domain::values::IdNumber::parse(s) {
        Ok(n) => n.masked(),
        Err(_) => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Which fields of a family event are personal
// ---------------------------------------------------------------------------

/// Whose key seals a field.
#[derive(Clone, Copy)]
enum Owner {
    /// The family (address, free text).
    Family,
    /// The member named by the payload's `member_id`, or by the `id` of
    /// the array item the field is in.
    Member,
    /// The emergency contact named by `emergency_contact_id`.
    EmergencyContact,
    /// The contact person named by `person.id`.
    ContactPerson,
}

/// The personal fields of each family event, as paths in its payload
/// (`members[].name`: `name` in every item of `members`), and whose key
/// seals them. Every string field that may name or describe a person is
/// here; ids, codes, dates, amounts and enumerations are not personal.
const PERSONAL: &[(&str, Owner, &[&str])] = &[
    ("FamilyRegistered", Owner::Family, &["address"]),
    (
        "FamilyRegistered",
        Owner::Member,
        &["members[].name", "members[].id_number", "members[].phone"],
    ),
    ("MemberStatusUpdated", Owner::Member, &["phone"]),
    (
        "ContactAssigned",
        Owner::ContactPerson,
        &["person.name", "person.phone"],
    ),
    ("ContactReleased", Owner::Family, &["reason"]),
    ("VisitRecorded", Owner::Family, &["findings", "needs[]"]),
    (
        "EmergencyContactSet",
        Owner::EmergencyContact,
        &["name", "relation", "phone"],
    ),
    ("EmergencyContactRemoved", Owner::Family, &["reason"]),
    (
        "EmergencyRecorded",
        Owner::Family,
        &["description", "responder", "outcome"],
    ),
    ("ElderlyCareRecorded", Owner::Family, &["provider"]),
    ("AssistanceRecorded", Owner::Family, &["description"]),
    ("NoteAdded", Owner::Family, &["text"]),
    ("ActionVoided", Owner::Family, &["reason"]),
    ("FamilyTransferred", Owner::Family, &["reason"]),
    ("CaseClosed", Owner::Family, &["reason"]),
    ("CaseReopened", Owner::Family, &["reason"]),
    (
        "InsuranceEnrolled",
        Owner::Family,
        &["consent.explained_by"],
    ),
    ("InsuranceWithdrawn", Owner::Family, &["reason"]),
    ("InsuranceClaimDecided", Owner::Family, &["reason"]),
    ("ActivityAttendanceRemoved", Owner::Family, &["reason"]),
];

/// The body of a family event's payload (`{"VisitRecorded": {…}}`) and its
/// variant name.
fn body_of(payload: &Value) -> Option<(&str, &Value)> {
    let map = payload.as_object()?;
    let (name, body) = map.iter().next()?;
    Some((name.as_str(), body))
}

fn owner_id(owner: Owner, family: Uuid, body: &Value, item: Option<&Value>) -> Option<Uuid> {
    let uuid = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| s.parse().ok());
    match owner {
        Owner::Family => Some(family),
        Owner::Member => uuid(item.and_then(|i| i.get("id")).or(body.get("member_id"))),
        Owner::EmergencyContact => uuid(body.get("emergency_contact_id")),
        Owner::ContactPerson => uuid(body.pointer("/person/id")),
    }
}

/// The subjects whose keys sealing `payload` (a family event of `family`)
/// needs.
pub fn subjects_of(family: Uuid, payload: &Value) -> Vec<Subject> {
    let mut out = Vec::new();
    let Some((name, body)) = body_of(payload) else {
        return out;
    };
    for (event, owner, paths) in PERSONAL {
        if *event != name {
            continue;
        }
        let mut add = |id: Option<Uuid>| {
            let Some(id) = id else { return };
            let (kind, of_family) = match owner {
                Owner::Family => (SubjectKind::Family, Some(family)),
                Owner::Member => (SubjectKind::Member, Some(family)),
                Owner::EmergencyContact => (SubjectKind::EmergencyContact, Some(family)),
                Owner::ContactPerson => (SubjectKind::ContactPerson, None),
            };
            let subject = Subject {
                id,
                kind,
                family: of_family,
            };
            if !out.contains(&subject) {
                out.push(subject);
            }
        };
        match owner {
            Owner::Member if paths[0].starts_with("members[]") => {
                for item in body
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    add(owner_id(*owner, family, body, Some(item)));
                }
            }
            _ => add(owner_id(*owner, family, body, None)),
        }
    }
    out
}

/// How many personal fields of `payload` (a family event) are stored in
/// clear: written before encryption, out of reach of erasure.
pub fn clear_fields(payload: &Value) -> usize {
    let Some((name, body)) = body_of(payload) else {
        return 0;
    };
    let clear = |v: Option<&Value>| -> usize {
        match v {
            Some(Value::String(s)) => usize::from(!is_sealed(s)),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|i| i.as_str().is_some_and(|s| !is_sealed(s)))
                .count(),
            _ => 0,
        }
    };
    let mut n = 0;
    for (event, _, paths) in PERSONAL {
        if *event != name {
            continue;
        }
        for path in *paths {
            if let Some(rest) = path.strip_prefix("members[].") {
                for item in body
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    n += clear(item.get(rest));
                }
            } else if let Some(list) = path.strip_suffix("[]") {
                n += clear(body.get(list));
            } else {
                n += clear(body.pointer(&format!("/{}", path.replace('.', "/"))));
            }
        }
    }
    n
}

/// Family events of the store with personal fields in clear, and how many
/// such fields.
pub async fn count_clear(db: &Db) -> Result<(u64, u64), sqlx::Error> {
    let (mut events, mut fields) = (0u64, 0u64);
    store::events::for_each(db, None, |e| {
        if e.aggregate_type == "FamilyCase" {
            let n = clear_fields(&e.payload) as u64;
            if n > 0 {
                events += 1;
                fields += n;
            }
        }
    })
    .await?;
    Ok((events, fields))
}

impl Keyring {
    /// Seals, in place, every personal field of `payload` (a family event
    /// of `family`) with the keys in `keys` ([`Keyring::keys_for`] of
    /// [`subjects_of`]). A field already sealed is left as it is.
    pub fn seal_event(&self, family: Uuid, payload: &mut Value, keys: &Keys) {
        let Some(name) = body_of(payload).map(|(n, _)| n.to_owned()) else {
            return;
        };
        let Some(body) = payload.get_mut(&name) else {
            return;
        };
        for (event, owner, paths) in PERSONAL {
            if *event != name {
                continue;
            }
            for path in *paths {
                if let Some(rest) = path.strip_prefix("members[].") {
                    let Some(items) = body.get_mut("members").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    for item in items {
                        let snapshot = item.clone();
                        if let Some(id) = owner_id(*owner, family, &Value::Null, Some(&snapshot)) {
                            if let Some(v) = item.get_mut(rest) {
                                self.seal_value(keys, id, v);
                            }
                        }
                    }
                    continue;
                }
                let snapshot = body.clone();
                let Some(id) = owner_id(*owner, family, &snapshot, None) else {
                    continue;
                };
                let target = match path.strip_suffix("[]") {
                    Some(list) => body.get_mut(list),
                    None => body.pointer_mut(&format!("/{}", path.replace('.', "/"))),
                };
                if let Some(v) = target {
                    self.seal_value(keys, id, v);
                }
            }
        }
    }

    /// Seals a string, or every string of an array; `null` stays `null`.
    /// A string already sealed for this very subject (a copy of an old
    /// log) is left as it is; any other — typed text that merely starts
    /// with `nx2:` included — is sealed.
    fn seal_value(&self, keys: &Keys, subject: Uuid, v: &mut Value) {
        match v {
            Value::String(s) if !sealed_for(s, &subject) => {
                *s = self.seal(keys, subject, s);
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| self.seal_value(keys, subject, i)),
            _ => {}
        }
    }

    /// Seals every personal field of a family event's payload, creating
    /// the keys it needs: the write path's one call.
    pub async fn seal_payload(
        &self,
        db: &Db,
        family: Uuid,
        payload: &mut Value,
    ) -> Result<(), PrivacyError> {
        let subjects = subjects_of(family, payload);
        if subjects.is_empty() {
            return Ok(());
        }
        let keys = self.keys_for(db, &subjects).await?;
        self.seal_event(family, payload, &keys);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate())
    }

    fn keys(ring: &Keyring, ids: &[Uuid]) -> Keys {
        let _ = ring;
        Keys(ids.iter().map(|id| (*id, [7u8; 32])).collect())
    }

    #[test]
    fn master_keys_parse_from_base64_or_hex_and_refuse_anything_else() {
        let k = MasterKey::generate();
        assert_eq!(MasterKey::parse(&k.to_text()).unwrap().id(), k.id());
        assert_eq!(MasterKey::parse(&hex::encode(k.key)).unwrap().id(), k.id());
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(MasterKey::parse("not a key").is_err());
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_master_and_subject() {
        let m = MasterKey::generate();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let w = m.wrap(a, &[9; 32]);
        assert_eq!(m.unwrap(a, &w), Some([9; 32]));
        assert_eq!(m.unwrap(b, &w), None);
        assert_eq!(MasterKey::generate().unwrap(a, &w), None);
    }

    #[test]
    fn registration_seals_the_address_and_each_members_fields_with_their_own_keys() {
        let ring = ring();
        let (family, m1, m2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut payload = json!({"FamilyRegistered": {
        "action_id": Uuid::new_v4(), "address": "幸福村 3 组",
        "village_code": "450305001001", "registered_on": "2026-01-02",
        "members": [
            {"id": m1, "name": "张三", "id_number": "11010519491231002X", "phone": null},
            {"id": m2, "name": "李四", "id_number": null, "phone": "13800138000"}
        ]}});
        let subjects = subjects_of(family, &payload);
        let ids: Vec<Uuid> = subjects.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![family, m1, m2]);
        let keys = keys(&ring, &ids);
        ring.seal_event(family, &mut payload, &keys);
        let body = &payload["FamilyRegistered"];
        for v in [
            &body["address"],
            &body["members"][0]["name"],
            &body["members"][0]["id_number"],
            &body["members"][1]["phone"],
        ] {
            assert!(v.as_str().unwrap().starts_with(SEALED_PREFIX), "{v}");
        }
        assert!(sealed_for(body["address"].as_str().unwrap(), &family));
        assert!(sealed_for(
            body["members"][1]["name"].as_str().unwrap(),
            &m2
        ));
        assert!(!sealed_for(
            body["members"][1]["name"].as_str().unwrap(),
            &m1
        ));
        assert!(body["members"][0]["phone"].is_null());
        assert_eq!(body["village_code"], "450305001001");
        assert!(!payload.to_string().contains("张三"));
        assert!(!payload.to_string().contains("13800138000"));

        // Opened with the keys in memory: clear, ID numbers masked.
        ring.write_slots()
            .extend(ids.iter().map(|id| (*id, Slot::Key([7; 32]))));
        ring.open_in(&mut payload, None);
        let body = &payload["FamilyRegistered"];
        assert_eq!(body["address"], "幸福村 3 组");
        assert_eq!(body["members"][0]["name"], "张三");
        assert_eq!(body["members"][0]["id_number"], "110105********002X");
        assert_eq!(body["members"][1]["phone"], "13800138000");
    }

    #[test]
    fn an_erased_key_reads_as_erased_and_other_persons_stay_readable() {
        let ring = ring();
        let (family, person) = (Uuid::new_v4(), Uuid::new_v4());
        let mut note = json!({"NoteAdded": {"action_id": Uuid::new_v4(), "text": "身体不好"}});
        let mut contact = json!({"ContactAssigned": {"action_id": Uuid::new_v4(),
            "role": "village", "assigned_on": "2026-01-02",
            "person": {"id": person, "name": "王五", "phone": "13900139000"}}});
        assert_eq!(subjects_of(family, &contact)[0].family, None);
        let keys = keys(&ring, &[family, person]);
        ring.seal_event(family, &mut note, &keys);
        ring.seal_event(family, &mut contact, &keys);
        ring.write_slots().insert(family, Slot::Erased);
        ring.write_slots().insert(person, Slot::Key([7; 32]));
        ring.open_in(&mut note, None);
        ring.open_in(&mut contact, None);
        assert_eq!(note["NoteAdded"]["text"], ERASED);
        assert_eq!(contact["ContactAssigned"]["person"]["name"], "王五");
    }

    #[test]
    fn text_that_only_looks_sealed_is_sealed_and_reads_back_as_typed() {
        let ring = ring();
        let family = Uuid::new_v4();
        let typed = "nx2:not really sealed";
        let mut note = json!({"NoteAdded": {"action_id": Uuid::new_v4(), "text": typed}});
        let keys = keys(&ring, &[family]);
        ring.seal_event(family, &mut note, &keys);
        let stored = note["NoteAdded"]["text"].as_str().unwrap().to_owned();
        assert_ne!(stored, typed);
        assert!(sealed_for(&stored, &family));
        // Sealing again (a copy of the log) leaves it as it is.
        ring.seal_event(family, &mut note, &keys);
        assert_eq!(note["NoteAdded"]["text"], stored.as_str());
        ring.write_slots().insert(family, Slot::Key([7; 32]));
        ring.open_in(&mut note, None);
        assert_eq!(note["NoteAdded"]["text"], typed);
    }

    #[test]
    fn clear_fields_are_counted_and_sealed_ones_are_not() {
        let ring = ring();
        let family = Uuid::new_v4();
        let mut visit = json!({"VisitRecorded": {"action_id": Uuid::new_v4(),
            "findings": "well", "needs": ["rice", "oil"], "mode": "home"}});
        assert_eq!(clear_fields(&visit), 3);
        ring.seal_event(family, &mut visit, &keys(&ring, &[family]));
        assert_eq!(clear_fields(&visit), 0);
        let registered = json!({"FamilyRegistered": {"address": "x",
            "members": [{"id": Uuid::new_v4(), "name": "a", "id_number": null, "phone": "1"}]}});
        assert_eq!(clear_fields(&registered), 3);
    }

    #[test]
    fn a_sealed_field_moved_to_another_person_does_not_open() {
        let ring = ring();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let keys = keys(&ring, &[a, b]);
        let sealed = ring.seal(&keys, a, "秘密");
        // Same key bytes, other subject in the envelope: the AAD differs.
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX).unwrap())
            .unwrap();
        bytes[..TAIL].copy_from_slice(&tail_of(&b));
        let moved = format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        ring.write_slots().insert(a, Slot::Key([7; 32]));
        ring.write_slots().insert(b, Slot::Key([7; 32]));
        assert_eq!(ring.open_loaded(&sealed).as_deref(), Some("秘密"));
        assert_eq!(ring.open_loaded(&moved).as_deref(), Some(ERASED));
        // Clear text (written before encryption) is not touched.
        assert_eq!(ring.open_loaded("张三"), None);
    }

    #[test]
    fn fields_sealed_in_the_first_form_still_open_and_are_not_sealed_again() {
        let ring = ring();
        let (family, other) = (Uuid::new_v4(), Uuid::new_v4());
        let old = ring.seal_first_form(&keys(&ring, &[family]), family, "老地址");
        assert!(is_sealed(&old) && sealed_for(&old, &family) && !sealed_for(&old, &other));
        let new = ring.seal(&keys(&ring, &[family]), family, "老地址");
        assert!(new.starts_with(SEALED_PREFIX));
        assert!(new.len() < old.len(), "{} against {}", new.len(), old.len());
        // A copy of an old log: the nx1 field stays as it was.
        let mut note = json!({"NoteAdded": {"action_id": Uuid::new_v4(), "text": old}});
        ring.seal_event(family, &mut note, &keys(&ring, &[family]));
        assert_eq!(note["NoteAdded"]["text"], old.as_str());
        ring.write_slots().insert(family, Slot::Key([7; 32]));
        assert_eq!(ring.open_loaded(&old).as_deref(), Some("老地址"));
        assert_eq!(ring.open_loaded(&new).as_deref(), Some("老地址"));
        ring.write_slots().insert(family, Slot::Erased);
        assert_eq!(ring.open_loaded(&old).as_deref(), Some(ERASED));
        assert_eq!(ring.open_loaded(&new).as_deref(), Some(ERASED));
    }

    #[test]
    fn persons_whose_ids_end_alike_each_open_only_their_own_fields() {
        // Ids chosen by a client may share their last 8 bytes; each field
        // still opens with its own person's key only.
        let ring = ring();
        let a: Uuid = "00000000-0000-4000-8000-000000000001".parse().unwrap();
        let b: Uuid = "ffffffff-ffff-4fff-8000-000000000001".parse().unwrap();
        let c: Uuid = "12345678-0000-4000-8000-000000000001".parse().unwrap();
        assert_eq!(tail_of(&a), tail_of(&b));
        let keys = Keys([(a, [1u8; 32]), (b, [2u8; 32])].into_iter().collect());
        let (for_a, for_b) = (ring.seal(&keys, a, "甲"), ring.seal(&keys, b, "乙"));
        ring.write_slots().insert(a, Slot::Key([1; 32]));
        assert_eq!(ring.open_loaded(&for_a).as_deref(), Some("甲"));
        // b's key is not held yet: its field does not open with a's.
        assert_eq!(ring.open_held(Names::Tail(tail_of(&b)), &[0; 40]), None);
        assert_eq!(ring.open_loaded(&for_b).as_deref(), Some(ERASED));
        ring.write_slots().insert(b, Slot::Key([2; 32]));
        ring.write_slots().insert(c, Slot::Erased);
        assert_eq!(ring.cached(), 3);
        assert_eq!(ring.open_loaded(&for_a).as_deref(), Some("甲"));
        assert_eq!(ring.open_loaded(&for_b).as_deref(), Some("乙"));
        ring.write_slots().insert(a, Slot::Erased);
        assert_eq!(ring.open_loaded(&for_a).as_deref(), Some(ERASED));
        assert_eq!(ring.open_loaded(&for_b).as_deref(), Some("乙"));
        assert_eq!(ring.cached(), 3, "replacing a slot does not count it twice");
    }

    #[test]
    fn every_family_event_with_text_has_its_personal_fields_listed() {
        // A new event kind with a free-text field must be added to PERSONAL.
        use nuanxin_domain::events::ActionKind;
        let without_personal_text = [
            ActionKind::InsuranceClaimFiled,
            ActionKind::ActivityAttended,
            ActionKind::FamilyErased,
        ];
        for kind in ActionKind::ALL {
            let listed = PERSONAL.iter().any(|(e, _, _)| *e == kind.name());
            assert_eq!(
                listed,
                !without_personal_text.contains(kind),
                "{kind}: list its personal fields in PERSONAL or say why it has none"
            );
        }
    }
}
