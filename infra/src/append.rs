//! Group commit: every write a request waits for — a command's event with
//! its read-model rows, a read's access-log row — goes through the
//! [`Appender`], which writes whatever has queued in **one transaction**
//! and answers each request when that transaction is durable.
//!
//! A command's cost is dominated by its commit (a WAL flush), not by its
//! statements; sharing the commit is what lets commands outpace bare
//! single-row inserts. There is no fixed wait: a lane takes everything that
//! queued while the previous batch was committing (at least one job), so a
//! lone request commits at once and a crowd shares commits.
//!
//! Per-job outcomes: events go in with `INSERT … ON CONFLICT DO NOTHING`, so
//! an event whose place in its stream, or whose idempotency key, is already
//! taken is skipped ([`Appended::Taken`]) without failing the others; the
//! command then replays or retries. If a batch fails for another reason,
//! its jobs are retried one by one, so one bad job fails alone.
//!
//! Lanes: on PostgreSQL two batches of commands may be in flight (one waits
//! for its flush while the next executes) and access-log records have a
//! lane of their own; SQLite has one writer, so one lane for everything.
//! Commands on one family never share or race for a batch: the command path
//! holds the family's lock until its append is answered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nuanxin_projections::rows::FamilyRows;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::read_models::{self, Mode};
use crate::store::access_log::AccessRecord;
use crate::store::events::NewEvent;
use crate::store::{self, Db, LIVE};

/// Jobs taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Durable, with its read-model rows.
    Done,
    /// Not appended: its place in the stream or its idempotency key was
    /// already taken (a concurrent command, or a retry of this request).
    Taken,
    /// Not appended: a person it names got a data key from another writer
    /// first, so its fields are sealed with a key that was not stored. The
    /// command seals again with the stored key (`crate::privacy`).
    KeyTaken,
}

/// The batch this job was in could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the write failed: {0}")]
pub struct AppendError(Arc<sqlx::Error>);

impl AppendError {
    pub fn source_error(&self) -> &sqlx::Error {
        &self.0
    }
}

enum Job {
    Event {
        event: NewEvent,
        rows: Option<Box<FamilyRows>>,
        /// The new person keys its personal fields are sealed with: stored
        /// in the same transaction, and the event only if all of them went
        /// in (a subject's first key wins).
        keys: Vec<store::person_keys::NewKey>,
        reply: oneshot::Sender<Result<Appended, AppendError>>,
    },
    Access {
        record: AccessRecord,
        reply: oneshot::Sender<Result<(), AppendError>>,
    },
}

/// Counters of the group commit, for `/metrics`.
#[derive(Debug, Default)]
pub struct AppendStats {
    /// Transactions written.
    pub batches: AtomicU64,
    /// Jobs (events and access records) in them.
    pub jobs: AtomicU64,
    /// Microseconds spent writing them (begin to commit).
    pub micros: AtomicU64,
}

/// The handle requests submit writes through.
#[derive(Clone)]
pub struct Appender {
    jobs: mpsc::UnboundedSender<Job>,
    /// PostgreSQL: access-log records go through a lane of their own, so a
    /// read's durable log entry does not queue behind heavier command
    /// batches. SQLite (one writer): `None`, everything shares one lane.
    reads: Option<mpsc::UnboundedSender<Job>>,
    stats: Arc<AppendStats>,
}

impl Appender {
    /// Starts the lanes (on the current tokio runtime) writing to `db`.
    /// They stop when every handle is dropped.
    pub fn start(db: Db) -> Self {
        let stats = Arc::new(AppendStats::default());
        let db = db.group_commit_pool(3);
        let spawn = |lanes: usize| {
            let (jobs, queue) = mpsc::unbounded_channel();
            let queue = Arc::new(Mutex::new(queue));
            for _ in 0..lanes {
                tokio::spawn(lane(db.clone(), queue.clone(), stats.clone()));
            }
            jobs
        };
        if db.is_postgres() {
            Self {
                jobs: spawn(2),
                reads: Some(spawn(1)),
                stats: stats.clone(),
            }
        } else {
            Self {
                jobs: spawn(1),
                reads: None,
                stats: stats.clone(),
            }
        }
    }

    /// How the group commit has gone so far.
    pub fn stats(&self) -> &AppendStats {
        &self.stats
    }

    /// Appends `event` and, if it went in, writes `rows` (the family's
    /// read-model rows at the event's version) in the same transaction,
    /// with `keys`, the new person keys it is sealed with (the event goes
    /// in only if they all do). Returns once that transaction is durable.
    pub async fn event(
        &self,
        event: NewEvent,
        rows: Option<FamilyRows>,
        keys: Vec<store::person_keys::NewKey>,
    ) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Event {
            event,
            rows: rows.map(Box::new),
            keys,
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Appends an access-log record; returns once it is durable.
    pub async fn access(&self, record: AccessRecord) -> Result<(), AppendError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Access { record, reply };
        match &self.reads {
            Some(reads) => {
                let _ = reads.send(job);
            }
            None => self.submit(job),
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn submit(&self, job: Job) {
        // A send fails only when every lane has stopped (the runtime is
        // shutting down): the dropped reply then answers with `stopped()`.
        let _ = self.jobs.send(job);
    }
}

fn stopped() -> AppendError {
    AppendError(Arc::new(sqlx::Error::PoolClosed))
}

/// One lane: take what has queued (waiting for at least one job), write it
/// in one transaction, answer, repeat.
async fn lane(db: Db, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, stats: Arc<AppendStats>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let started = std::time::Instant::now();
        let written = write(&db, &batch).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match written {
            Ok(written) => answer(batch, |job| Ok(written.outcome(job))),
            Err(err) if batch.len() == 1 => {
                let err = AppendError(Arc::new(err));
                answer(batch, |_| Err(err.clone()));
            }
            Err(err) => {
                tracing::warn!(error = %err, jobs = batch.len(),
                    "a group commit failed; writing its jobs one by one");
                for job in batch {
                    let single = [job];
                    let result = write(&db, &single)
                        .await
                        .map_err(|e| AppendError(Arc::new(e)));
                    answer(single.into(), |job| match &result {
                        Err(e) => Err(e.clone()),
                        Ok(written) => Ok(written.outcome(job)),
                    });
                }
            }
        }
    }
}

/// What a batch wrote: the streams whose event went in, and those whose
/// event stayed out because a new key it is sealed with did not go in
/// (another key of the same person did, first).
#[derive(Debug, Default)]
pub struct Written {
    pub events: HashSet<String>,
    pub key_lost: HashSet<String>,
}

impl Written {
    /// What became of `job`'s event (`None` for an access record).
    fn outcome(&self, job: &Job) -> Option<Appended> {
        let Job::Event { event, .. } = job else {
            return None;
        };
        Some(if self.events.contains(&event.aggregate_id) {
            Appended::Done
        } else if self.key_lost.contains(&event.aggregate_id) {
            Appended::KeyTaken
        } else {
            Appended::Taken
        })
    }
}

/// Sends each job its answer: `Some(outcome)` for events, `None` for
/// access records.
fn answer(batch: Vec<Job>, outcome: impl Fn(&Job) -> Result<Option<Appended>, AppendError>) {
    for job in batch {
        let result = outcome(&job);
        match job {
            Job::Event { reply, .. } => {
                let _ = reply.send(result.map(|o| o.unwrap_or(Appended::Taken)));
            }
            Job::Access { reply, .. } => {
                let _ = reply.send(result.map(|_| ()));
            }
        }
    }
}

/// Writes a batch in one transaction: the new person keys (a subject's
/// first key wins), the events (skipping taken places, and those whose new
/// keys did not all go in), the read-model rows of the families whose event
/// went in, the access-log records. On PostgreSQL the whole batch is one
/// statement (`store::group_commit`); on SQLite, statements in one
/// transaction.
async fn write(db: &Db, batch: &[Job]) -> Result<Written, sqlx::Error> {
    let mut tries = 0;
    loop {
        match write_once(db, batch).await {
            // A deadlock victim committed nothing: run it again. (Writers
            // lock rows in family order, so this is for what no order can
            // rule out, such as another process's worker.)
            Err(e) if store::is_transient(&e) && tries < 3 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "group commit gave way; running it again");
            }
            other => return other,
        }
    }
}

async fn write_once(db: &Db, batch: &[Job]) -> Result<Written, sqlx::Error> {
    let mut events = Vec::new();
    let mut rows = Vec::new();
    let mut records = Vec::new();
    // Each new key with the stream of the event sealed with it.
    let mut keys = Vec::new();
    for job in batch {
        match job {
            Job::Event {
                event,
                rows: r,
                keys: k,
                ..
            } => {
                events.push(event);
                if let Some(r) = r {
                    rows.push(&**r);
                }
                keys.extend(k.iter().map(|k| (k, event.aggregate_id.as_str())));
            }
            Job::Access { record, .. } => records.push(record),
        }
    }
    let t0 = std::time::Instant::now();
    let written = match db {
        Db::Postgres(pool) => {
            store::group_commit::write(pool, &events, &rows, &records, &keys).await?
        }
        Db::Sqlite(_) => {
            let mut tx = db.begin_write().await?;
            let new_keys: Vec<&store::person_keys::NewKey> = keys.iter().map(|(k, _)| *k).collect();
            let stored = store::person_keys::insert_missing_in(&mut tx, &new_keys).await?;
            // An event sealed with a key that lost to another (stored
            // first, maybe by this very batch) stays out: its command seals
            // again.
            let key_lost: HashSet<String> = keys
                .iter()
                .filter(|(k, _)| stored.get(&k.subject.to_string()) != Some(&k.wrapped))
                .map(|(_, stream)| (*stream).to_owned())
                .collect();
            let events: Vec<&NewEvent> = events
                .into_iter()
                .filter(|e| !key_lost.contains(&e.aggregate_id))
                .collect();
            let appended = if events.is_empty() {
                HashSet::new()
            } else {
                store::events::append(&mut tx, &events).await?
            };
            let rows: Vec<&FamilyRows> = rows
                .into_iter()
                .filter(|f| appended.contains(&f.family_id.to_string()))
                .collect();
            if !rows.is_empty() {
                read_models::write_in(&mut tx, &LIVE, &rows, Mode::Guarded).await?;
            }
            if !records.is_empty() {
                store::access_log::insert_many(&mut tx, &records).await?;
            }
            tx.commit().await?;
            Written {
                events: appended,
                key_lost,
            }
        }
    };
    tracing::debug!(
        events = batch.len() - records.len(),
        access = records.len(),
        us = t0.elapsed().as_micros() as u64,
        "group commit"
    );
    Ok(written)
}
