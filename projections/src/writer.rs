//! Writing a family's read-model rows: the case file, its key periods and
//! its visit schedule, in one transaction, guarded by the case version so
//! that writers arriving out of order (the command path, the catch-up
//! worker, a rebuild) never regress a row. A checkpoint can ride in the same
//! transaction, so rows and progress through the log commit together.

use chrono::NaiveDate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::policy::VisitPolicy;
use uuid::Uuid;

use crate::case_file::CaseFileView;
use crate::db::Db;
use crate::on_pool;
use crate::schedule::{key_periods, schedule_rows, KeyPeriod, ScheduleRow};

/// The names of one generation of read-model tables: the live ones, or the
/// ones a rebuild fills before swapping them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub case_files: &'static str,
    pub key_periods: &'static str,
    pub schedule: &'static str,
}

pub const LIVE: Tables = Tables {
    case_files: "case_files",
    key_periods: "family_key_periods",
    schedule: "visit_schedule",
};

pub const REBUILD: Tables = Tables {
    case_files: "rebuild_case_files",
    key_periods: "rebuild_family_key_periods",
    schedule: "rebuild_visit_schedule",
};

/// Progress through the event log: every event up to (tx_id, position), in
/// that order, is reflected. On SQLite tx_id is always 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint {
    pub tx_id: i64,
    pub position: i64,
}

/// The name of the read models' checkpoint.
pub const READ_MODELS: &str = "read_models";

/// Everything a family contributes to the read models.
#[derive(Debug, Clone)]
pub struct FamilyRows {
    pub family_id: Uuid,
    pub version: u64,
    pub village_code: String,
    pub status: String,
    pub village_contact_name: Option<String>,
    pub township_contact_name: Option<String>,
    pub state: FamilyCase,
    pub key_periods: Vec<KeyPeriod>,
    pub schedule: Vec<ScheduleRow>,
}

impl FamilyRows {
    /// The rows of `case` at `version`; `None` if it is not registered.
    pub fn build(
        family_id: Uuid,
        version: u64,
        case: FamilyCase,
        policy: &VisitPolicy,
    ) -> Option<Self> {
        // `on` only matters for day-dependent fields, which are not stored.
        let view = CaseFileView::build(family_id, version, &case, NaiveDate::default(), policy)?;
        let periods = key_periods(&case, policy);
        let schedule = schedule_rows(&case, &periods, policy);
        Some(Self {
            family_id,
            version,
            village_code: view.village_code,
            status: view.status,
            village_contact_name: view.contacts.village.map(|c| c.person.name),
            township_contact_name: view.contacts.township.map(|c| c.person.name),
            state: case,
            key_periods: periods,
            schedule,
        })
    }
}

/// Rows per multi-row INSERT (12 columns × 800 stays under SQLite's limit of
/// 32,766 bound parameters).
const BATCH: usize = 800;

/// How a bound text parameter becomes the `state` column: PostgreSQL's
/// column is `json` (a text parameter needs a cast), SQLite's is text.
fn state_cast(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "::json",
        Db::Sqlite(_) => "",
    }
}

fn state_text(state: &FamilyCase) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

fn upsert_case_file_sql(t: &Tables, guarded: bool, cast: &str) -> String {
    format!(
        "INSERT INTO {cf} (family_id, version, village_code, status, village_contact_name, \
         township_contact_name, state) VALUES ($1, $2, $3, $4, $5, $6, $7{cast}) \
         ON CONFLICT (family_id) DO UPDATE SET version = excluded.version, \
         village_code = excluded.village_code, status = excluded.status, \
         village_contact_name = excluded.village_contact_name, \
         township_contact_name = excluded.township_contact_name, state = excluded.state{guard}",
        cf = t.case_files,
        guard = if guarded {
            format!(" WHERE {}.version < excluded.version", t.case_files)
        } else {
            String::new()
        }
    )
}

const CHECKPOINT_SQL: &str =
    "INSERT INTO projection_checkpoints (name, tx_id, position) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position";

/// Moves a checkpoint only from the value the writer read: a writer that
/// lost a race (another worker, or a rebuild swapping tables in) rolls back
/// its whole batch instead of skipping events.
const ADVANCE_SQL: &str = "UPDATE projection_checkpoints SET tx_id = $1, position = $2 \
     WHERE name = $3 AND tx_id = $4 AND position = $5";

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Skip families whose stored version is not older (commands, worker).
    Guarded,
    /// Rewrite every family's derived rows (the policy changed).
    Force,
    /// Plain multi-row inserts into empty tables (a rebuild).
    Fresh,
}

/// A checkpoint move that rides in a batch's transaction.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    pub name: &'a str,
    pub from: Checkpoint,
    pub to: Checkpoint,
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The checkpoint moved under the writer; nothing was written.
    #[error("the checkpoint moved during the batch")]
    CheckpointMoved,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Writes many families' rows in one transaction, with an optional
/// checkpoint move. Returns how many families were written; a checkpoint
/// that moved meanwhile rolls everything back
/// ([`WriteError::CheckpointMoved`]).
pub async fn write(
    db: &Db,
    t: &Tables,
    families: &[FamilyRows],
    advance: Option<Advance<'_>>,
    mode: Mode,
) -> Result<usize, WriteError> {
    let cast = state_cast(db);
    let upsert = upsert_case_file_sql(t, mode == Mode::Guarded, cast);
    let delete_periods = format!("DELETE FROM {} WHERE family_id = $1", t.key_periods);
    let delete_schedule = format!("DELETE FROM {} WHERE family_id = $1", t.schedule);
    let postgres = matches!(db, Db::Postgres(_));
    on_pool!(db, pool, DB => {
        let mut tx = pool.begin().await?;
        if postgres {
            // Read-model rows are derived: if a crash loses this commit,
            // the worker writes them again from the log. Not waiting for
            // the disk here halves the commits a command waits for.
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        }
        let mut written: Vec<&FamilyRows> = Vec::with_capacity(families.len());
        if mode == Mode::Fresh {
            for chunk in families.chunks(BATCH) {
                let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {} (family_id, version, village_code, status, village_contact_name, \
                     township_contact_name, state) ",
                    t.case_files
                ));
                qb.push_values(chunk, |mut b, f| {
                    b.push_bind(f.family_id.to_string())
                        .push_bind(f.version as i64)
                        .push_bind(f.village_code.clone())
                        .push_bind(f.status.clone())
                        .push_bind(f.village_contact_name.clone())
                        .push_bind(f.township_contact_name.clone())
                        .push_bind(state_text(&f.state))
                        .push_unseparated(cast);
                });
                qb.build().execute(&mut *tx).await?;
            }
            written.extend(families.iter());
        }
        for f in families.iter().filter(|_| mode != Mode::Fresh) {
            let done = sqlx::query(&upsert)
                .bind(f.family_id.to_string())
                .bind(f.version as i64)
                .bind(&f.village_code)
                .bind(&f.status)
                .bind(&f.village_contact_name)
                .bind(&f.township_contact_name)
                .bind(state_text(&f.state))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            sqlx::query(&delete_periods).bind(f.family_id.to_string()).execute(&mut *tx).await?;
            sqlx::query(&delete_schedule).bind(f.family_id.to_string()).execute(&mut *tx).await?;
            written.push(f);
        }
        let periods: Vec<(&FamilyRows, &KeyPeriod)> = written
            .iter()
            .flat_map(|f| f.key_periods.iter().map(move |p| (*f, p)))
            .collect();
        for chunk in periods.chunks(BATCH) {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {} (family_id, valid_from, valid_to, key_person) ",
                t.key_periods
            ));
            qb.push_values(chunk, |mut b, (f, p)| {
                b.push_bind(f.family_id.to_string())
                    .push_bind(p.valid_from)
                    .push_bind(p.valid_to)
                    .push_bind(p.key_person);
            });
            qb.build().execute(&mut *tx).await?;
        }
        let rows: Vec<(&FamilyRows, &ScheduleRow)> = written
            .iter()
            .flat_map(|f| f.schedule.iter().map(move |r| (*f, r)))
            .collect();
        for chunk in rows.chunks(BATCH) {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {} (family_id, role, valid_from, valid_to, village_code, contact_id, \
                 contact_name, last_visit_on, last_home_on, due_on, key_person, urgent) ",
                t.schedule
            ));
            qb.push_values(chunk, |mut b, (f, r)| {
                b.push_bind(f.family_id.to_string())
                    .push_bind(r.role.as_str())
                    .push_bind(r.valid_from)
                    .push_bind(r.valid_to)
                    .push_bind(r.village_code.clone())
                    .push_bind(r.contact_id.to_string())
                    .push_bind(r.contact_name.clone())
                    .push_bind(r.last_visit_on)
                    .push_bind(r.last_home_on)
                    .push_bind(r.due_on)
                    .push_bind(r.key_person)
                    .push_bind(r.urgent);
            });
            qb.build().execute(&mut *tx).await?;
        }
        if let Some(a) = advance {
            let moved = sqlx::query(ADVANCE_SQL)
                .bind(a.to.tx_id)
                .bind(a.to.position)
                .bind(a.name)
                .bind(a.from.tx_id)
                .bind(a.from.position)
                .execute(&mut *tx)
                .await?;
            if moved.rows_affected() != 1 {
                tx.rollback().await?;
                return Err(WriteError::CheckpointMoved);
            }
        }
        tx.commit().await?;
        Ok(written.len())
    })
}

/// The checkpoint of projection `name` (zero when it has never run).
pub async fn checkpoint(db: &Db, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let sql = "SELECT tx_id, position FROM projection_checkpoints WHERE name = $1";
    let row: Option<(i64, i64)> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(name).fetch_optional(pool).await?
    });
    Ok(
        row.map_or_else(Checkpoint::default, |(tx_id, position)| Checkpoint {
            tx_id,
            position,
        }),
    )
}

/// Sets the checkpoint of projection `name`.
pub async fn set_checkpoint(db: &Db, name: &str, cp: Checkpoint) -> Result<(), sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query(CHECKPOINT_SQL)
            .bind(name)
            .bind(cp.tx_id)
            .bind(cp.position)
            .execute(pool)
            .await
            .map(|_| ())
    })
}
