//! `nuanxin projections rebuild`: replay the whole log into fresh tables and
//! swap them in while servers keep serving.
//!
//! The events are read from one consistent snapshot, ordered by family and
//! sequence (the store's primary key), folded family by family and written
//! in batches into `rebuild_*` tables. The swap drops the live tables,
//! renames the fresh ones and sets the checkpoint to the snapshot, all in one
//! transaction; events committed during the rebuild are then projected by
//! the worker. A rebuild killed midway leaves the live tables untouched; the
//! next one starts again from empty `rebuild_*` tables.
//!
//! Events are read with our own SQL, not cqrs-es `stream_all_events`, whose
//! reader task unwraps database errors and can end a replay early while
//! reporting success.

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::FamilyEvent;
use nuanxin_projections::writer::{
    self, Checkpoint, FamilyRows, Mode, Tables, LIVE, READ_MODELS, REBUILD,
};
use nuanxin_projections::Db;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use crate::cases::{Cases, ExecError};

/// Families folded per write batch.
const FAMILIES_PER_BATCH: usize = 500;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildReport {
    pub events: u64,
    pub families: u64,
    pub seconds: f64,
}

/// Called with (events done, events total) as the rebuild goes.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn ddl(db: &Db, t: &Tables, generation: &str) -> Vec<String> {
    let mut statements = vec![
        format!("DROP TABLE IF EXISTS {}", t.case_files),
        format!("DROP TABLE IF EXISTS {}", t.key_periods),
        format!("DROP TABLE IF EXISTS {}", t.schedule),
    ];
    match db {
        // Copy the live tables' columns exactly (types, collations,
        // defaults): PostgreSQL refuses to reuse a prepared statement whose
        // result row shape changed, even in collation.
        Db::Postgres(_) => {
            for (fresh, live, key) in [
                (t.case_files, LIVE.case_files, "family_id"),
                (t.key_periods, LIVE.key_periods, "family_id, valid_from"),
                (t.schedule, LIVE.schedule, "family_id, role, valid_from"),
            ] {
                statements.push(format!(
                    "CREATE TABLE {fresh} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES)"
                ));
                statements.push(format!(
                    "ALTER TABLE {fresh} ADD CONSTRAINT {fresh}_pkey_{generation} PRIMARY KEY ({key})"
                ));
            }
        }
        Db::Sqlite(_) => {
            statements.push(format!(
                "CREATE TABLE {} (family_id TEXT PRIMARY KEY, version INTEGER NOT NULL, \
                 village_code TEXT NOT NULL, status TEXT NOT NULL, village_contact_name TEXT, \
                 township_contact_name TEXT, state TEXT NOT NULL, \
                 updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))) STRICT",
                t.case_files
            ));
            statements.push(format!(
                "CREATE TABLE {} (family_id TEXT NOT NULL, valid_from TEXT NOT NULL, \
                 valid_to TEXT NOT NULL, key_person INTEGER NOT NULL, \
                 PRIMARY KEY (family_id, valid_from)) STRICT",
                t.key_periods
            ));
            statements.push(format!(
                "CREATE TABLE {} (family_id TEXT NOT NULL, role TEXT NOT NULL, \
                 valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, village_code TEXT NOT NULL, \
                 contact_id TEXT NOT NULL, contact_name TEXT NOT NULL, last_visit_on TEXT, \
                 last_home_on TEXT, due_on TEXT NOT NULL, key_person INTEGER NOT NULL, \
                 urgent INTEGER NOT NULL, PRIMARY KEY (family_id, role, valid_from)) STRICT",
                t.schedule
            ));
        }
    }
    // Secondary indexes are named per generation: index names are global
    // and survive the table rename.
    statements.extend([
        format!("CREATE INDEX case_files_village_{generation} ON {} (village_code, family_id)", t.case_files),
        format!(
            "CREATE INDEX case_files_gaps_{generation} ON {} (village_code, family_id) WHERE status = 'open' \
             AND (village_contact_name IS NULL OR township_contact_name IS NULL)",
            t.case_files
        ),
        format!(
            "CREATE INDEX visit_schedule_village_due_{generation} ON {} (village_code, due_on, family_id, role)",
            t.schedule
        ),
        format!(
            "CREATE INDEX visit_schedule_contact_due_{generation} ON {} (contact_id, due_on, family_id, role)",
            t.schedule
        ),
        format!("CREATE INDEX visit_schedule_due_{generation} ON {} (due_on, family_id, role)", t.schedule),
    ]);
    statements
}

async fn execute_all(db: &Db, statements: &[String]) -> Result<(), sqlx::Error> {
    nuanxin_projections::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for s in statements {
            sqlx::query(s).execute(&mut *tx).await?;
        }
        tx.commit().await
    })
}

/// Folds a family's events in order.
struct Folding {
    family_id: Option<Uuid>,
    version: u64,
    case: FamilyCase,
}

impl Cases {
    /// Replays every event into fresh tables and swaps them in.
    pub async fn rebuild(&self, progress: Progress<'_>) -> Result<RebuildReport, ExecError> {
        let started = std::time::Instant::now();
        let db = self.db();
        let generation = format!("g{}", chrono::Utc::now().format("%Y%m%d%H%M%S%f"));
        execute_all(db, &ddl(db, &REBUILD, &generation)).await?;
        let policy = self.policy();
        let mut report = RebuildReport::default();

        let select = "SELECT aggregate_id, sequence, payload FROM events \
                      WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence";
        let (checkpoint, total) = match db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let (xmin, total): (i64, i64) = sqlx::query_as(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                     (SELECT COUNT(*) FROM events)",
                )
                .fetch_one(&mut *tx)
                .await?;
                let mut rows = sqlx::query(select).bind(FamilyCase::TYPE).fetch(&mut *tx);
                let mut folding = Folding {
                    family_id: None,
                    version: 0,
                    case: FamilyCase::default(),
                };
                let mut batch = Vec::new();
                while let Some(row) = rows.try_next().await? {
                    let id: String = row.try_get("aggregate_id")?;
                    let seq: i64 = row.try_get("sequence")?;
                    let payload: serde_json::Value = row.try_get("payload")?;
                    self.feed(
                        &mut folding,
                        &mut batch,
                        &mut report,
                        &id,
                        seq,
                        payload,
                        &policy,
                        progress,
                        total as u64,
                    )
                    .await?;
                }
                drop(rows);
                self.finish(&mut folding, &mut batch, &mut report, &policy)
                    .await?;
                tx.commit().await?;
                // Everything of transactions older than the snapshot's xmin is
                // in; newer ones are replayed by the worker (idempotently).
                (
                    Checkpoint {
                        tx_id: xmin - 1,
                        position: i64::MAX,
                    },
                    total,
                )
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let (head, total): (i64, i64) =
                    sqlx::query_as("SELECT COALESCE(MAX(position), 0), COUNT(*) FROM events")
                        .fetch_one(&mut *tx)
                        .await?;
                let bounded = format!(
                    "SELECT aggregate_id, sequence, payload FROM events \
                     WHERE aggregate_type = $1 AND position <= {head} ORDER BY aggregate_id, sequence"
                );
                let mut rows = sqlx::query(&bounded).bind(FamilyCase::TYPE).fetch(&mut *tx);
                let mut folding = Folding {
                    family_id: None,
                    version: 0,
                    case: FamilyCase::default(),
                };
                let mut batch = Vec::new();
                while let Some(row) = rows.try_next().await? {
                    let id: String = row.try_get("aggregate_id")?;
                    let seq: i64 = row.try_get("sequence")?;
                    let Json(payload): Json<serde_json::Value> = row.try_get("payload")?;
                    self.feed(
                        &mut folding,
                        &mut batch,
                        &mut report,
                        &id,
                        seq,
                        payload,
                        &policy,
                        progress,
                        total as u64,
                    )
                    .await?;
                }
                drop(rows);
                self.finish(&mut folding, &mut batch, &mut report, &policy)
                    .await?;
                tx.commit().await?;
                (
                    Checkpoint {
                        tx_id: 0,
                        position: head,
                    },
                    total,
                )
            }
        };
        progress(total as u64, total as u64);
        self.swap(checkpoint).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per store, all state of one fold"
    )]
    async fn feed(
        &self,
        folding: &mut Folding,
        batch: &mut Vec<FamilyRows>,
        report: &mut RebuildReport,
        id: &str,
        sequence: i64,
        payload: serde_json::Value,
        policy: &nuanxin_domain::policy::VisitPolicy,
        progress: Progress<'_>,
        total: u64,
    ) -> Result<(), ExecError> {
        let Ok(family_id) = id.parse::<Uuid>() else {
            return Ok(());
        };
        if folding.family_id != Some(family_id) {
            self.finish(folding, batch, report, policy).await?;
            folding.family_id = Some(family_id);
        }
        let event: FamilyEvent =
            serde_json::from_value(payload).map_err(|e| ExecError::Store(Box::new(e)))?;
        folding.case.apply(event);
        folding.version = sequence as u64;
        report.events += 1;
        if report.events.is_multiple_of(10_000) {
            progress(report.events, total);
        }
        Ok(())
    }

    /// Closes the family being folded and writes a full batch.
    async fn finish(
        &self,
        folding: &mut Folding,
        batch: &mut Vec<FamilyRows>,
        report: &mut RebuildReport,
        policy: &nuanxin_domain::policy::VisitPolicy,
    ) -> Result<(), ExecError> {
        if let Some(id) = folding.family_id.take() {
            let case = std::mem::take(&mut folding.case);
            if let Some(rows) = FamilyRows::build(id, folding.version, case, policy) {
                batch.push(rows);
                report.families += 1;
            }
        }
        if batch.len() >= FAMILIES_PER_BATCH || (folding.family_id.is_none() && !batch.is_empty()) {
            writer::write(self.db(), &REBUILD, batch, None, Mode::Fresh).await?;
            batch.clear();
        }
        Ok(())
    }

    /// Puts the rebuilt tables in place of the live ones, atomically.
    async fn swap(&self, checkpoint: Checkpoint) -> Result<(), ExecError> {
        let mut statements = Vec::new();
        if let Db::Postgres(_) = self.db() {
            statements.push(format!(
                "LOCK TABLE {}, {}, {} IN ACCESS EXCLUSIVE MODE",
                LIVE.case_files, LIVE.key_periods, LIVE.schedule
            ));
        }
        for (live, fresh) in [
            (LIVE.case_files, REBUILD.case_files),
            (LIVE.key_periods, REBUILD.key_periods),
            (LIVE.schedule, REBUILD.schedule),
        ] {
            statements.push(format!("DROP TABLE {live}"));
            statements.push(format!("ALTER TABLE {fresh} RENAME TO {live}"));
        }
        statements.push(format!(
            "UPDATE projection_checkpoints SET tx_id = {}, position = {} WHERE name = '{READ_MODELS}'",
            checkpoint.tx_id, checkpoint.position
        ));
        execute_all(self.db(), &statements).await?;
        Ok(())
    }
}
