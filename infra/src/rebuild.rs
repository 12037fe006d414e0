//! `nuanxin projections rebuild`: replay the whole log into fresh tables and
//! swap them in while servers keep serving.
//!
//! The set of events to replay is fixed at the start (see `rebuild`), read
//! in keyset pages of families (each family's events aggregated in SQL, in
//! sequence order), folded and written in batches into `rebuild_*` tables.
//! The swap drops the live tables, renames the fresh ones and sets the
//! checkpoint to the end of that set, all in one transaction; events committed during the rebuild are then projected by
//! the worker. A rebuild killed midway leaves the live tables untouched; the
//! next one starts again from empty `rebuild_*` tables.
//!
//! Events are read with our own SQL, not cqrs-es `stream_all_events`, whose
//! reader task unwraps database errors and can end a replay early while
//! reporting success.

use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::FamilyEvent;
use nuanxin_projections::writer::{
    self, Checkpoint, FamilyRows, Mode, Tables, LIVE, READ_MODELS, REBUILD,
};
use nuanxin_projections::Db;
use sqlx::types::Json;
use uuid::Uuid;

use crate::cases::{Cases, ExecError};

/// Families read, folded and written per batch.
const FAMILIES_PER_BATCH: usize = 1000;

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

impl Cases {
    /// Replays every event into fresh tables and swaps them in.
    pub async fn rebuild(&self, progress: Progress<'_>) -> Result<RebuildReport, ExecError> {
        let started = std::time::Instant::now();
        let db = self.db();
        let generation = format!("g{}", chrono::Utc::now().format("%Y%m%d%H%M%S%f"));
        execute_all(db, &ddl(db, &REBUILD, &generation)).await?;
        let policy = self.policy();
        let mut report = RebuildReport::default();

        // The set of events to replay is fixed up front without holding a
        // snapshot open for the whole rebuild (a long read transaction would
        // stop SQLite from checkpointing its WAL and hold back PostgreSQL's
        // xmin): on SQLite every event up to the head position (one writer,
        // commits in position order); on PostgreSQL every event of a
        // transaction older than the oldest one running now. Both sets never
        // change, so they can be read in keyset pages.
        let (checkpoint, total, bound) = match db {
            Db::Postgres(pool) => {
                // Fresh statistics, or after a bulk load the planner may sort
                // the whole log for every page instead of walking the key.
                sqlx::query("ANALYZE events").execute(pool).await?;
                // Wait (a little) until every transaction that wrote an event
                // so far has finished, so the replay includes them all: the
                // oldest running transaction is cluster-wide, and one in
                // another database can hold it back.
                let waiting = std::time::Instant::now();
                loop {
                    let (xmin, newest): (i64, i64) = sqlx::query_as(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                         COALESCE((SELECT MAX(tx_id) FROM events), 0)",
                    )
                    .fetch_one(pool)
                    .await?;
                    if xmin > newest || waiting.elapsed() > std::time::Duration::from_secs(30) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                let (xmin, total): (i64, i64) = sqlx::query_as(
                    "SELECT x, (SELECT COUNT(*) FROM events WHERE tx_id < x) \
                     FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x) s",
                )
                .fetch_one(pool)
                .await?;
                // Everything of older transactions is replayed here; newer
                // ones are projected by the worker (idempotently).
                (
                    Checkpoint {
                        tx_id: xmin - 1,
                        position: i64::MAX,
                    },
                    total,
                    xmin,
                )
            }
            Db::Sqlite(pool) => {
                let (head, total): (i64, i64) =
                    sqlx::query_as("SELECT COALESCE(MAX(position), 0), COUNT(*) FROM events")
                        .fetch_one(pool)
                        .await?;
                (
                    Checkpoint {
                        tx_id: 0,
                        position: head,
                    },
                    total,
                    head,
                )
            }
        };
        // One row per family, its events as a JSON array in order: rows
        // cross from the SQLite worker thread one at a time, so a row per
        // event would cost a thread wake-up per event.
        let page_sql = match db {
            Db::Postgres(_) => "SELECT aggregate_id, MAX(sequence), json_agg(payload ORDER BY sequence) \
                 FROM events WHERE aggregate_type = $1 AND tx_id < $2 AND aggregate_id > $3 \
                 GROUP BY aggregate_id ORDER BY aggregate_id LIMIT $4",
            Db::Sqlite(_) => "SELECT aggregate_id, MAX(sequence), json_group_array(json(payload) ORDER BY sequence) \
                 FROM events WHERE aggregate_type = $1 AND position <= $2 AND aggregate_id > $3 \
                 GROUP BY aggregate_id ORDER BY aggregate_id LIMIT $4",
        };
        let bulk = db
            .bulk_writer()
            .await
            .map_err(|e| ExecError::Store(e.into()))?;
        let mut after = String::new();
        loop {
            let page: Vec<(String, i64, Json<Vec<FamilyEvent>>)> = nuanxin_projections::on_pool!(db, pool => {
                sqlx::query_as(page_sql)
                    .bind(FamilyCase::TYPE)
                    .bind(bound)
                    .bind(&after)
                    .bind(FAMILIES_PER_BATCH as i64)
                    .fetch_all(pool)
                    .await?
            });
            let Some(last) = page.last() else {
                break;
            };
            after = last.0.clone();
            let mut batch = Vec::with_capacity(page.len());
            for (id, version, Json(events)) in page {
                report.events += events.len() as u64;
                let Ok(family_id) = id.parse::<Uuid>() else {
                    continue;
                };
                let mut case = FamilyCase::default();
                for event in events {
                    case.apply(event);
                }
                if let Some(rows) = FamilyRows::build(family_id, version as u64, case, &policy) {
                    batch.push(rows);
                    report.families += 1;
                }
            }
            writer::write(&bulk, &REBUILD, &batch, None, Mode::Fresh).await?;
            progress(report.events, total as u64);
        }
        bulk.close().await;
        progress(total as u64, total as u64);
        self.swap(checkpoint).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
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
