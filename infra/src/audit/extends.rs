//! Does the current log **extend** a checkpoint? `nuanxin audit verify
//! --checkpoint FILE…` (docs/audit.md).
//!
//! For each checkpoint file: the signature must be the trusted key's; then
//! every stream the checkpoint lists must still be there, at least as long,
//! with the same hash at the checkpoint's version. Together with the hash
//! chain (which this pass checks too, like `nuanxin audit verify`) that
//! proves no event the checkpoint covered was removed or rewritten: a head
//! hash chains over its stream's every earlier event.
//!
//! The heads come from the checkpoint's heads file (beside the statement
//! or in another directory given), which counts only if its Merkle root is
//! the signed one. Without a usable heads file the checkpoint's set of
//! events is recomputed from the log (every event the statement
//! [covers](checkpoint::Coverage::covers)), and its root compared: that still detects
//! any difference, but cannot name the family.
//!
//! One pass reads the log in stream order, whatever the number of
//! checkpoints: a stream's expected heads are kept as runs of consecutive
//! checkpoints that agree on them (a family that did not change between
//! two checkpoints costs one entry), so a year of daily checkpoints of
//! 100,000 families fits in memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;

use super::checkpoint::{self, Head, Signed, Statement};
use super::signing::PublicKey;
use super::{ChainCheck, VerifyReport, HASH};
use crate::store::events::PlacedEvent;
use crate::store::{self, Db};

/// Inconsistencies kept per checkpoint (the first ones in canonical order;
/// all are counted).
const KEPT: usize = 100;

/// What is wrong with one stream against a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The stream has no events any more; it had `had`.
    Gone { had: u64 },
    /// The stream ends at `has`, before the checkpoint's version `had`.
    Truncated { had: u64, has: u64 },
    /// The event at the checkpoint's version is missing, later ones are not.
    Missing,
    /// The event at the checkpoint's version has another hash: the stream
    /// was rewritten at or before it.
    Rewritten,
}

/// The first inconsistency of one stream with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    pub aggregate_type: String,
    /// The family id for family cases.
    pub aggregate_id: String,
    /// The first version that is not as the checkpoint saw it.
    pub version: u64,
    pub problem: Problem,
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = self.aggregate_type == FamilyCase::TYPE;
        if family {
            write!(f, "family {}", self.aggregate_id)?;
        } else {
            write!(f, "{} {}", self.aggregate_type, self.aggregate_id)?;
        }
        write!(f, ", version {}: ", self.version)?;
        match self.problem {
            Problem::Gone { had } => write!(
                f,
                "the {} stream is gone from the log (it had {had} event(s) at the checkpoint)",
                if family { "family's" } else { "whole" }
            ),
            Problem::Truncated { had, has } => write!(
                f,
                "missing: the stream ends at version {has}, the checkpoint saw {had}"
            ),
            Problem::Missing => f.write_str("the event the checkpoint ended with is missing"),
            Problem::Rewritten => f.write_str(
                "not the event the checkpoint saw (its hash differs): the stream was \
                 rewritten at or before this version",
            ),
        }
    }
}

/// What became of one checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is not a checkpoint (unreadable, not JSON, wrong format).
    Unreadable(String),
    /// Its signature does not hold, or not with the trusted key.
    Untrusted(checkpoint::SignatureProblem),
    /// The log extends it. `named`: checked head by head (a heads file was
    /// used), otherwise by recomputing its root.
    Extended { named: bool },
    /// Streams that are not as it saw them, the first ones in canonical
    /// order (at most 100), and how many in all.
    NotExtended {
        first: Vec<Inconsistency>,
        count: u64,
    },
    /// Without its heads, the log's events as of the checkpoint do not
    /// have its root: it is not extended, but the family cannot be named.
    RootDiffers { streams_now: u64, events_now: u64 },
}

impl Outcome {
    pub fn is_extended(&self) -> bool {
        matches!(self, Outcome::Extended { .. })
    }
}

/// One checkpoint file and what the log says about it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub path: PathBuf,
    pub statement: Option<Statement>,
    /// The heads file used, or why none was (the statement's root was then
    /// recomputed from the log).
    pub heads: Result<PathBuf, String>,
    pub outcome: Outcome,
}

/// The whole answer: the hash chains, and each checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub chain: VerifyReport,
    pub checkpoints: Vec<Verdict>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.failure().is_none()
    }

    /// What fails, in one sentence naming the first inconsistency; `None`
    /// when every chain holds and every checkpoint is extended.
    pub fn failure(&self) -> Option<String> {
        let failed: Vec<&Verdict> = self
            .checkpoints
            .iter()
            .filter(|v| !v.outcome.is_extended())
            .collect();
        let mut parts = Vec::new();
        if let Some(first) = failed.first() {
            let why = match &first.outcome {
                Outcome::NotExtended { first: f, .. } => match f.first() {
                    Some(i) => format!("first inconsistency: {i}"),
                    None => "streams differ".into(),
                },
                Outcome::RootDiffers { .. } => {
                    "the log's events as of it do not have its Merkle root".into()
                }
                Outcome::Untrusted(p) => format!("untrusted: {p}"),
                Outcome::Unreadable(p) => format!("unreadable: {p}"),
                Outcome::Extended { .. } => unreachable!("filtered"),
            };
            parts.push(format!(
                "{} of {} checkpoint(s) not extended ({}: {why})",
                failed.len(),
                self.checkpoints.len(),
                first.path.display()
            ));
        }
        if !self.chain.is_intact() {
            let first = &self.chain.broken[0];
            parts.push(format!(
                "{} broken chain(s) (first: {first})",
                self.chain.broken.len()
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl Verdict {
    /// The verdict for people, a few lines.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("checkpoint {}", self.path.display())];
        if let Some(c) = &self.statement {
            lines.push(format!(
                "  taken {} ({}), position {}, {} event(s), {} stream(s), key {}",
                c.taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                c.kind.as_str(),
                c.position,
                c.events,
                c.streams,
                c.key_id
            ));
        }
        let heads = || match &self.heads {
            Ok(p) => format!("heads {}", p.display()),
            Err(why) => format!("no usable heads file: {why}"),
        };
        match &self.outcome {
            Outcome::Extended { named: true } => lines.push(format!(
                "  EXTENDED: every stream it saw is in the log as it was ({})",
                heads()
            )),
            Outcome::Extended { named: false } => lines.push(format!(
                "  EXTENDED: the log's events as of it have its Merkle root ({})",
                heads()
            )),
            Outcome::NotExtended { first, count } => {
                lines.push(format!(
                    "  NOT EXTENDED: {count} stream(s) are not as it saw them ({})",
                    heads()
                ));
                lines.extend(first.iter().map(|i| format!("    {i}")));
                if *count > first.len() as u64 {
                    lines.push(format!("    … and {} more", *count - first.len() as u64));
                }
            }
            Outcome::RootDiffers {
                streams_now,
                events_now,
            } => {
                let (streams, events) = self
                    .statement
                    .as_ref()
                    .map_or((0, 0), |c| (c.streams, c.events));
                lines.push(format!(
                    "  NOT EXTENDED: the log's events as of it ({streams_now} stream(s), \
                     {events_now} event(s); it saw {streams} and {events}) do not have its \
                     Merkle root; without its heads the family cannot be named ({})",
                    heads()
                ));
            }
            Outcome::Untrusted(p) => lines.push(format!("  UNTRUSTED: {p}")),
            Outcome::Unreadable(p) => lines.push(format!("  UNREADABLE: {p}")),
        }
        lines
    }
}

/// Reads each checkpoint file, checks its signature against `trusted`,
/// finds its heads (beside it, else in `heads_dirs`), and checks every
/// trusted one against the log in one pass. Heads files are read one at a
/// time, in the order the log grew, and folded into runs.
pub async fn verify(
    db: &Db,
    files: &[PathBuf],
    trusted: &PublicKey,
    heads_dirs: &[PathBuf],
) -> Result<Report, sqlx::Error> {
    let mut verdicts: Vec<Verdict> = files.iter().map(|p| read(p, trusted)).collect();
    let mut ranked: Vec<(usize, Statement)> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.outcome.is_extended())
        .filter_map(|(i, v)| v.statement.clone().map(|s| (i, s)))
        .collect();
    ranked.sort_by_key(|(_, s)| (s.position, s.taken_at));
    let mut check = Check::new(ranked.len());
    for (rank, (i, statement)) in ranked.iter().enumerate() {
        match find_heads(&verdicts[*i].path, statement, heads_dirs) {
            Ok((path, heads)) => {
                check.expect(rank, &heads);
                verdicts[*i].heads = Ok(path);
            }
            Err(why) => {
                check.recompute(rank, statement.clone());
                verdicts[*i].heads = Err(why);
            }
        }
    }
    let events = store::events::for_each_placed(db, |e| check.push(e)).await?;
    let (mut chain, outcomes) = check.finish();
    chain.events = events;
    for ((i, _), outcome) in ranked.iter().zip(outcomes) {
        verdicts[*i].outcome = outcome;
    }
    Ok(Report {
        chain,
        checkpoints: verdicts,
    })
}

/// Reads and authenticates one checkpoint file. A trusted one comes back
/// with the outcome `Extended` as a placeholder, for the pass to replace.
fn read(path: &Path, trusted: &PublicKey) -> Verdict {
    let mut verdict = Verdict {
        path: path.to_owned(),
        statement: None,
        heads: Err("not looked for: the checkpoint is not trusted".into()),
        outcome: Outcome::Extended { named: false },
    };
    let signed = match std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("it is not JSON: {e}")))
        .and_then(|doc| Signed::from_document(&doc))
    {
        Ok(s) => s,
        Err(why) => {
            verdict.outcome = Outcome::Unreadable(why);
            return verdict;
        }
    };
    if let Err(problem) = signed.check(trusted) {
        verdict.outcome = Outcome::Untrusted(problem);
    }
    verdict.statement = Some(signed.statement);
    verdict
}

/// The checkpoint's heads file, if one is found whose root is the signed
/// root; otherwise why not.
fn find_heads(
    path: &Path,
    statement: &Statement,
    heads_dirs: &[PathBuf],
) -> Result<(PathBuf, Vec<Head>), String> {
    let name = Path::new(&statement.heads_file);
    if name.file_name() != Some(name.as_os_str()) {
        return Err("its heads file name is not a plain file name".into());
    }
    let beside = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut why = Vec::new();
    for dir in std::iter::once(&beside).chain(heads_dirs) {
        let candidate = dir.join(name);
        if !candidate.is_file() {
            continue;
        }
        match checkpoint::read_heads(&candidate) {
            Ok(heads) if checkpoint::merkle_root(&heads) == statement.merkle_root => {
                return Ok((candidate, heads))
            }
            Ok(_) => why.push(format!(
                "{} does not have the signed Merkle root (altered)",
                candidate.display()
            )),
            Err(e) => why.push(format!("{} does not read: {e}", candidate.display())),
        }
    }
    if why.is_empty() {
        why.push(format!("no heads file {} was found", statement.heads_file));
    }
    Err(why.join("; "))
}

// ---------------------------------------------------------------------------
// The pass over the log
// ---------------------------------------------------------------------------

type StreamKey = (String, String);
type Hash = Option<[u8; 32]>;

fn parse_hash(hex_hash: &str) -> Hash {
    hex::decode(hex_hash).ok().and_then(|b| b.try_into().ok())
}

/// A head that consecutive checkpoints agree on: ranks `from..=to` in the
/// order the log grew (by position, then time).
#[derive(Debug)]
struct Run {
    version: u64,
    hash: Hash,
    from: usize,
    to: usize,
    /// Whether the log's event at `version` was seen.
    seen: bool,
}

/// A checkpoint checked without its heads: its root recomputed from the
/// events it covers. (The leaves are kept until the end: about 130 bytes
/// per stream.)
#[derive(Debug)]
struct Recompute {
    rank: usize,
    statement: Statement,
    /// `None`: the statement's snapshot does not read; nothing is covered
    /// and the root will not match.
    coverage: Option<checkpoint::Coverage>,
    heads: Vec<Head>,
    events: u64,
    /// The current stream's last covered event.
    last: Option<(u64, String)>,
}

/// The stream being read.
struct Current {
    key: StreamKey,
    chain: ChainCheck,
    runs: Vec<Run>,
    last: u64,
}

/// Problems per checkpoint: the first [`KEPT`] in canonical order, and a count.
#[derive(Debug, Default)]
struct Found {
    first: BTreeMap<(Vec<u8>, Vec<u8>), Inconsistency>,
    count: u64,
}

impl Found {
    fn add(&mut self, i: Inconsistency) {
        self.count += 1;
        let key = (
            i.aggregate_type.as_bytes().to_vec(),
            i.aggregate_id.as_bytes().to_vec(),
        );
        self.first.entry(key).or_insert(i);
        if self.first.len() > KEPT {
            self.first.pop_last();
        }
    }
}

struct Check {
    chain: VerifyReport,
    expected: HashMap<StreamKey, Vec<Run>>,
    recompute: Vec<Recompute>,
    found: Vec<Found>,
    current: Option<Current>,
}

impl Check {
    /// A check of `n` checkpoints, ranked in the order the log grew; each
    /// is then given its heads ([`Check::expect`]) or is recomputed
    /// ([`Check::recompute`]), in rank order.
    fn new(n: usize) -> Self {
        Self {
            chain: VerifyReport::default(),
            expected: HashMap::new(),
            recompute: Vec::new(),
            found: (0..n).map(|_| Found::default()).collect(),
            current: None,
        }
    }

    /// The heads of the checkpoint of `rank` (after those of lower ranks).
    fn expect(&mut self, rank: usize, heads: &[Head]) {
        for h in heads {
            let hash = parse_hash(&h.hash);
            let runs = self
                .expected
                .entry((h.aggregate_type.clone(), h.aggregate_id.clone()))
                .or_default();
            match runs.last_mut() {
                Some(r) if r.version == h.version && r.hash == hash && r.to + 1 == rank => {
                    r.to = rank;
                }
                _ => runs.push(Run {
                    version: h.version,
                    hash,
                    from: rank,
                    to: rank,
                    seen: false,
                }),
            }
        }
    }

    /// The checkpoint of `rank` has no usable heads: recompute its root.
    fn recompute(&mut self, rank: usize, statement: Statement) {
        self.recompute.push(Recompute {
            rank,
            coverage: statement.coverage(),
            statement,
            heads: Vec::new(),
            events: 0,
            last: None,
        });
    }

    fn fail(&mut self, run: &Run, key: &StreamKey, version: u64, problem: Problem) {
        for rank in run.from..=run.to {
            self.found[rank].add(Inconsistency {
                aggregate_type: key.0.clone(),
                aggregate_id: key.1.clone(),
                version,
                problem,
            });
        }
    }

    fn push(&mut self, placed: PlacedEvent) {
        let event = &placed.event;
        let same = self
            .current
            .as_ref()
            .is_some_and(|c| c.key.0 == event.aggregate_type && c.key.1 == event.aggregate_id);
        if !same {
            self.end_stream();
            let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
            self.current = Some(Current {
                chain: ChainCheck::new(&key.0, &key.1),
                runs: self.expected.remove(&key).unwrap_or_default(),
                key,
                last: 0,
            });
        }
        let Some(mut current) = self.current.take() else {
            return;
        };
        current.chain.push(event);
        let sequence = event.sequence;
        current.last = current.last.max(sequence);
        let stored = event.metadata_str(HASH);
        let mut failures = Vec::new();
        for (i, run) in current.runs.iter_mut().enumerate() {
            if run.version == sequence {
                run.seen = true;
                if stored.and_then(parse_hash) != run.hash {
                    failures.push(i);
                }
            }
        }
        for i in failures {
            let run = &current.runs[i];
            self.fail(run, &current.key, sequence, Problem::Rewritten);
        }
        for r in &mut self.recompute {
            if r.coverage
                .as_ref()
                .is_some_and(|c| c.covers(placed.position, placed.tx_id))
            {
                r.events += 1;
                r.last = Some((sequence, stored.unwrap_or_default().to_owned()));
            }
        }
        self.current = Some(current);
    }

    fn end_stream(&mut self) {
        let Some(current) = self.current.take() else {
            return;
        };
        self.chain.add(current.chain);
        for run in &current.runs {
            if run.seen {
                continue;
            }
            let (version, problem) = if run.version > current.last {
                (
                    current.last + 1,
                    Problem::Truncated {
                        had: run.version,
                        has: current.last,
                    },
                )
            } else {
                (run.version, Problem::Missing)
            };
            self.fail(run, &current.key, version, problem);
        }
        for r in &mut self.recompute {
            if let Some((version, hash)) = r.last.take() {
                r.heads.push(Head {
                    aggregate_type: current.key.0.clone(),
                    aggregate_id: current.key.1.clone(),
                    version,
                    hash,
                });
            }
        }
    }

    fn finish(mut self) -> (VerifyReport, Vec<Outcome>) {
        self.end_stream();
        let gone: Vec<(StreamKey, Vec<Run>)> = self.expected.drain().collect();
        for (key, runs) in gone {
            for run in &runs {
                self.fail(run, &key, 1, Problem::Gone { had: run.version });
            }
        }
        let mut outcomes: Vec<Outcome> = self
            .found
            .drain(..)
            .map(|f| {
                if f.count == 0 {
                    Outcome::Extended { named: true }
                } else {
                    Outcome::NotExtended {
                        first: f.first.into_values().collect(),
                        count: f.count,
                    }
                }
            })
            .collect();
        for mut r in self.recompute.drain(..) {
            checkpoint::sort_heads(&mut r.heads);
            outcomes[r.rank] = if checkpoint::merkle_root(&r.heads) == r.statement.merkle_root {
                Outcome::Extended { named: false }
            } else {
                Outcome::RootDiffers {
                    streams_now: r.heads.len() as u64,
                    events_now: r.events,
                }
            };
        }
        (self.chain, outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::seal;
    use crate::store::events::StoredEvent;
    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    const FAMILY: &str = "FamilyCase";

    /// A stream of `n` sealed notes of family `id`, with `text` in each.
    fn stream(id: &str, n: usize, text: &str) -> Vec<StoredEvent> {
        let events: Vec<SerializedEvent> = (1..=n)
            .map(|s| {
                SerializedEvent::new(
                    id.into(),
                    s,
                    FAMILY.into(),
                    "NoteAdded".into(),
                    "1".into(),
                    json!({"NoteAdded": {"text": format!("{text}{s}")}}),
                    json!({"recorded_by_id": "u"}),
                )
            })
            .collect();
        seal(&events, String::new())
            .unwrap()
            .into_iter()
            .map(|e| StoredEvent {
                aggregate_type: e.aggregate_type,
                aggregate_id: e.aggregate_id,
                sequence: e.sequence as u64,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
                metadata: e.metadata,
            })
            .collect()
    }

    /// A log: streams in order, positions given by `positions` (stream,
    /// sequence → position) or one after another.
    struct Log(Vec<PlacedEvent>);

    impl Log {
        fn new(streams: &[Vec<StoredEvent>]) -> Self {
            Self(Vec::new()).grown(streams)
        }

        /// The log after appending: the events `self` has keep their
        /// positions, new ones come after.
        fn grown(&self, streams: &[Vec<StoredEvent>]) -> Self {
            let mut placed = Vec::new();
            let mut at: HashMap<(String, u64), i64> = self
                .0
                .iter()
                .map(|p| ((p.event.aggregate_id.clone(), p.event.sequence), p.position))
                .collect();
            let mut position = at.values().copied().max().unwrap_or(0);
            // Positions interleave like a real log: sequence by sequence.
            let longest = streams.iter().map(Vec::len).max().unwrap_or(0);
            for s in 0..longest {
                for events in streams {
                    if let Some(e) = events.get(s) {
                        at.entry((e.aggregate_id.clone(), e.sequence))
                            .or_insert_with(|| {
                                position += 1;
                                position
                            });
                    }
                }
            }
            for events in streams {
                for e in events {
                    placed.push(PlacedEvent {
                        position: at[&(e.aggregate_id.clone(), e.sequence)],
                        tx_id: 0,
                        event: e.clone(),
                    });
                }
            }
            Self(placed)
        }

        fn heads(&self, up_to_position: i64) -> Vec<Head> {
            let mut heads: Vec<Head> = Vec::new();
            for p in self.0.iter().filter(|p| p.position <= up_to_position) {
                let head = Head {
                    aggregate_type: p.event.aggregate_type.clone(),
                    aggregate_id: p.event.aggregate_id.clone(),
                    version: p.event.sequence,
                    hash: p.event.metadata_str(HASH).unwrap().to_owned(),
                };
                match heads.last_mut() {
                    Some(h) if h.aggregate_id == head.aggregate_id => *h = head,
                    _ => heads.push(head),
                }
            }
            checkpoint::sort_heads(&mut heads);
            heads
        }

        fn statement(&self, up_to_position: i64) -> Statement {
            let heads = self.heads(up_to_position);
            Statement {
                format: checkpoint::FORMAT.into(),
                id: uuid::Uuid::now_v7(),
                taken_at: chrono::Utc::now(),
                kind: checkpoint::Kind::OnDemand,
                store: "sqlite".into(),
                position: up_to_position,
                events: self
                    .0
                    .iter()
                    .filter(|p| p.position <= up_to_position)
                    .count() as i64,
                streams: heads.len() as i64,
                tx_snapshot: None,
                merkle_root: checkpoint::merkle_root(&heads),
                heads_file: "x.heads.gz".into(),
                key_id: String::new(),
                public_key: String::new(),
            }
        }
    }

    /// Checks `log` against checkpoints given as (heads or not, statement).
    fn check(
        log: &Log,
        checkpoints: &[(Option<Vec<Head>>, Statement)],
    ) -> (VerifyReport, Vec<Outcome>) {
        let mut check = Check::new(checkpoints.len());
        for (rank, (heads, statement)) in checkpoints.iter().enumerate() {
            match heads {
                Some(h) => check.expect(rank, h),
                None => check.recompute(rank, statement.clone()),
            }
        }
        for e in &log.0 {
            check.push(e.clone());
        }
        check.finish()
    }

    fn first(outcome: &Outcome) -> (&str, u64, Problem) {
        match outcome {
            Outcome::NotExtended { first, .. } => (
                first[0].aggregate_id.as_str(),
                first[0].version,
                first[0].problem,
            ),
            other => panic!("expected inconsistencies, got {other:?}"),
        }
    }

    #[test]
    fn a_log_that_only_grew_extends_every_checkpoint() {
        let then = Log::new(&[stream("a", 2, "x"), stream("b", 1, "x")]);
        let now = then.grown(&[
            stream("a", 4, "x"),
            stream("b", 1, "x"),
            stream("c", 2, "x"),
        ]);
        let early = then.statement(2);
        let late = then.statement(3);
        let (chain, outcomes) = check(
            &now,
            &[
                (Some(then.heads(2)), early.clone()),
                (Some(then.heads(3)), late.clone()),
                (None, early),
                (None, late),
            ],
        );
        assert!(chain.is_intact());
        assert_eq!(
            (chain.streams, chain.events),
            (3, 0),
            "events are counted by the caller"
        );
        assert_eq!(
            outcomes,
            [
                Outcome::Extended { named: true },
                Outcome::Extended { named: true },
                Outcome::Extended { named: false },
                Outcome::Extended { named: false },
            ]
        );
    }

    #[test]
    fn each_attack_is_named_by_family_and_version() {
        let then = Log::new(&[
            stream("a", 3, "x"),
            stream("b", 2, "x"),
            stream("c", 2, "x"),
        ]);
        let heads = then.heads(i64::MAX);
        let statement = then.statement(i64::MAX);
        let cases: Vec<(&str, Log, (&str, u64, Problem))> = vec![
            (
                "last event of a removed",
                Log::new(&[
                    stream("a", 2, "x"),
                    stream("b", 2, "x"),
                    stream("c", 2, "x"),
                ]),
                ("a", 3, Problem::Truncated { had: 3, has: 2 }),
            ),
            (
                "b rewritten with fresh hashes",
                Log::new(&[
                    stream("a", 3, "x"),
                    stream("b", 2, "y"),
                    stream("c", 2, "x"),
                ]),
                ("b", 2, Problem::Rewritten),
            ),
            (
                "b rewritten and made longer",
                Log::new(&[
                    stream("a", 3, "x"),
                    stream("b", 3, "y"),
                    stream("c", 2, "x"),
                ]),
                ("b", 2, Problem::Rewritten),
            ),
            (
                "c deleted",
                Log::new(&[stream("a", 3, "x"), stream("b", 2, "x")]),
                ("c", 1, Problem::Gone { had: 2 }),
            ),
        ];
        for (what, log, expected) in cases {
            let (chain, outcomes) = check(
                &log,
                &[
                    (Some(heads.clone()), statement.clone()),
                    (None, statement.clone()),
                ],
            );
            assert!(chain.is_intact(), "{what}: the chain alone sees nothing");
            assert_eq!(first(&outcomes[0]), expected, "{what}");
            assert!(
                matches!(outcomes[1], Outcome::RootDiffers { .. }),
                "{what}: without heads, {:?}",
                outcomes[1]
            );
        }
    }

    #[test]
    fn a_missing_head_event_with_later_ones_kept_is_named() {
        let then = Log::new(&[stream("a", 2, "x")]);
        let mut now = Log::new(&[stream("a", 3, "x")]);
        now.0.remove(1);
        let (chain, outcomes) = check(&now, &[(Some(then.heads(9)), then.statement(9))]);
        assert_eq!(chain.broken.len(), 1, "the chain sees the gap too");
        assert_eq!(first(&outcomes[0]), ("a", 2, Problem::Missing));
    }

    #[test]
    fn runs_blame_exactly_the_checkpoints_that_saw_a_head() {
        // a grows 1 → 2 → 3 across three checkpoints; b never changes.
        let log = Log::new(&[stream("a", 3, "x"), stream("b", 1, "x")]);
        let at = [2, 4, 9]; // positions: a1=1 b1=2 a2=3 a3=4
        let cps: Vec<_> = at
            .iter()
            .map(|&p| (Some(log.heads(p)), log.statement(p)))
            .collect();
        let mut check = Check::new(3);
        for (rank, (h, _)) in cps.iter().enumerate() {
            check.expect(rank, h.as_ref().unwrap());
        }
        assert_eq!(
            check.expected[&(FAMILY.into(), "b".into())].len(),
            1,
            "one run for b"
        );
        assert_eq!(
            check.expected[&(FAMILY.into(), "a".into())].len(),
            2,
            "a at 1, then 3"
        );
        // Now a is cut back to 1 event: the last two checkpoints are not
        // extended, the first is.
        let cut = Log::new(&[stream("a", 1, "x"), stream("b", 1, "x")]);
        let (_, outcomes) = self::check(&cut, &cps);
        assert_eq!(outcomes[0], Outcome::Extended { named: true });
        assert_eq!(
            first(&outcomes[1]),
            ("a", 2, Problem::Truncated { had: 3, has: 1 })
        );
        assert_eq!(
            first(&outcomes[2]),
            ("a", 2, Problem::Truncated { had: 3, has: 1 })
        );
    }

    #[test]
    fn without_heads_the_set_is_what_the_statement_covers() {
        let log = Log::new(&[stream("a", 2, "x"), stream("b", 2, "x")]);
        // Positions: a1=1 b1=2 a2=3 b2=4, transactions ten times that. On
        // PostgreSQL an event whose transaction the snapshot did not see is
        // not covered, even below the position.
        let mut statement = log.statement(3);
        let mut pg = log;
        for p in &mut pg.0 {
            p.tx_id = p.position * 10;
        }
        statement.tx_snapshot = Some("30:41:".into());
        let c = statement.coverage().unwrap();
        assert!(c.covers(3, 30) && c.covers(3, 29) && !c.covers(4, 0) && !c.covers(1, 41));
        let (_, outcomes) = check(&pg, &[(None, statement.clone())]);
        assert_eq!(outcomes[0], Outcome::Extended { named: false });
        // a2 (tx 30) was in progress when the snapshot was taken.
        statement.tx_snapshot = Some("30:41:30".into());
        let (_, outcomes) = check(&pg, &[(None, statement)]);
        assert_eq!(
            outcomes[0],
            Outcome::RootDiffers {
                streams_now: 2,
                events_now: 2
            }
        );
    }

    #[test]
    fn inconsistencies_read_as_sentences() {
        let i = Inconsistency {
            aggregate_type: FAMILY.into(),
            aggregate_id: "f1".into(),
            version: 4,
            problem: Problem::Truncated { had: 5, has: 3 },
        };
        assert_eq!(
            i.to_string(),
            "family f1, version 4: missing: the stream ends at version 3, the checkpoint saw 5"
        );
        let gone = Inconsistency {
            aggregate_type: "Activity".into(),
            problem: Problem::Gone { had: 2 },
            version: 1,
            ..i
        };
        assert!(gone
            .to_string()
            .starts_with("Activity f1, version 1: the whole stream is gone"));
    }

    #[test]
    fn only_the_first_inconsistencies_are_kept_but_all_are_counted() {
        let mut found = Found::default();
        for n in (0..250).rev() {
            found.add(Inconsistency {
                aggregate_type: FAMILY.into(),
                aggregate_id: format!("{n:04}"),
                version: 1,
                problem: Problem::Gone { had: 1 },
            });
        }
        assert_eq!(found.count, 250);
        assert_eq!(found.first.len(), KEPT);
        assert_eq!(found.first.values().next().unwrap().aggregate_id, "0000");
        assert_eq!(found.first.values().last().unwrap().aggregate_id, "0099");
    }
}
