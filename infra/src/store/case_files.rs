//! `case_files`: one row per family — its `version`, the hash of its last
//! event, the columns the case list and the coverage gaps filter on, and a
//! snapshot of the folded case (`state`, JSON) at `snapshot_version` (NULL:
//! at `version`). Every read here folds the events after the snapshot onto
//! it, in the same query, so a [`StoredCase`] is always the case at
//! `version`. On PostgreSQL `state` is lz4-compressed `json` (bound as text
//! with a cast), on SQLite text (decisions.md, records 14 and 20).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_projections::case_file::{CaseListFilter, CaseSummary, StoredCase};
use nuanxin_projections::rows::FamilyRows;
use nuanxin_projections::schedule::CoverageGap;
use uuid::Uuid;

use super::{prefix_upper, uuid, Db, ReadModelTables, Tx, LIVE, ROWS_PER_INSERT};
use crate::{on_pool, on_tx};

const COLUMNS: &str = "family_id, version, village_code, status, village_contact_name, \
     township_contact_name, state, head_hash, snapshot_version, policy_version";

/// Which stored rows a write may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Only an older version of the case: writers that arrive out of order
    /// (commands, the projection worker, other processes) never regress a
    /// row.
    Newer,
    /// The same version computed with an older visit policy (a policy
    /// recompute): a row a command has moved on since it was read is left
    /// to that command's write.
    OlderPolicy,
}

impl Guard {
    fn condition(self, table: &str) -> String {
        match self {
            Guard::Newer => format!(" WHERE {table}.version < excluded.version"),
            Guard::OlderPolicy => format!(
                " WHERE {table}.version = excluded.version \
                 AND {table}.policy_version < excluded.policy_version"
            ),
        }
    }
}

/// How a bound text parameter becomes the `state` column.
fn state_cast(tx: &Tx) -> &'static str {
    match tx {
        Tx::Postgres(_) => "::json",
        Tx::Sqlite(_) => "",
    }
}

/// The state text a row is written with: the snapshot, when it is due.
fn state_text(f: &FamilyRows) -> Option<String> {
    f.write_snapshot
        .then(|| serde_json::to_string(&f.state).unwrap_or_else(|_| "{}".into()))
}

#[derive(sqlx::FromRow)]
struct StateRow {
    family_id: String,
    version: i64,
    #[sqlx(json)]
    state: FamilyCase,
    head_hash: Option<String>,
    snapshot_version: Option<i64>,
    /// The events after the snapshot, in order (a JSON array; NULL: none).
    tail: Option<String>,
}

impl StateRow {
    /// The case at `version`: the snapshot with the events after it folded
    /// on.
    fn stored(self) -> Result<StoredCase, sqlx::Error> {
        use cqrs_es::Aggregate;
        let mut state = self.state;
        if let Some(tail) = &self.tail {
            let events: Vec<nuanxin_domain::FamilyEvent> =
                serde_json::from_str(tail).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            for event in events {
                state.apply(event);
            }
        }
        Ok(StoredCase {
            version: self.version as u64,
            state,
            head_hash: self.head_hash,
            snapshot_version: self.snapshot_version.unwrap_or(self.version) as u64,
        })
    }
}

/// `SELECT` of stored cases: the row and, as `tail`, the events after its
/// snapshot as one JSON array (an index probe that finds nothing when the
/// snapshot is current).
fn select_stored(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => {
            "SELECT cf.family_id, cf.version, cf.state, cf.head_hash, cf.snapshot_version, \
             (SELECT json_agg(e.payload ORDER BY e.sequence)::text FROM events e \
              WHERE e.aggregate_type = 'FamilyCase' AND e.aggregate_id = cf.family_id \
              AND e.sequence > cf.snapshot_version AND e.sequence <= cf.version) AS tail \
             FROM case_files cf"
        }
        Db::Sqlite(_) => {
            "SELECT cf.family_id, cf.version, cf.state, cf.head_hash, cf.snapshot_version, \
             (SELECT json_group_array(json(t.payload)) FROM (SELECT e.payload FROM events e \
              WHERE e.aggregate_type = 'FamilyCase' AND e.aggregate_id = cf.family_id \
              AND e.sequence > cf.snapshot_version AND e.sequence <= cf.version \
              ORDER BY e.sequence) t HAVING COUNT(*) > 0) AS tail \
             FROM case_files cf"
        }
    }
}

/// The stored case of `family_id` (at the row's version), if the read
/// model has it.
pub async fn get(db: &Db, family_id: Uuid) -> Result<Option<StoredCase>, sqlx::Error> {
    let sql = format!("{} WHERE cf.family_id = $1", select_stored(db));
    let row: Option<StateRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(family_id.to_string()).fetch_optional(pool).await?
    });
    row.map(StateRow::stored).transpose()
}

/// The next `limit` stored cases after family `after` (by id).
pub async fn page(
    db: &Db,
    after: &str,
    limit: i64,
) -> Result<Vec<(Uuid, StoredCase)>, sqlx::Error> {
    let sql = format!(
        "{} WHERE cf.family_id > $1 ORDER BY cf.family_id LIMIT $2",
        select_stored(db)
    );
    let rows: Vec<StateRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|r| Ok((uuid(&r.family_id, "case_files.family_id")?, r.stored()?)))
        .collect()
}

/// The next `limit` stored cases within `prefix`, after family `after` (by
/// id), whose snapshot text holds `pattern` (a `LIKE` pattern escaped with
/// a backslash, compared in lower case): the candidates of a search
/// by name or ID number, which the caller checks against the folded case.
/// Names and ID numbers are written with the registration, so they are in
/// every snapshot.
pub async fn containing(
    db: &Db,
    prefix: &str,
    pattern: &str,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<(Uuid, StoredCase)>, sqlx::Error> {
    let mut sql = format!(
        "{} WHERE LOWER(CAST(cf.state AS TEXT)) LIKE LOWER($1) ESCAPE '\\'",
        select_stored(db)
    );
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if !prefix.is_empty() {
        let (a, b) = (next(), next());
        sql.push_str(&format!(
            " AND cf.village_code >= {a} AND cf.village_code < {b}"
        ));
    }
    if after.is_some() {
        sql.push_str(&format!(" AND cf.family_id > {}", next()));
    }
    sql.push_str(&format!(" ORDER BY cf.family_id LIMIT {}", next()));
    let rows: Vec<StateRow> = on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql).bind(pattern.to_owned());
        if !prefix.is_empty() {
            q = q.bind(prefix.to_owned()).bind(prefix_upper(prefix));
        }
        if let Some(a) = after {
            q = q.bind(a.to_string());
        }
        q.bind(i64::from(limit)).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|r| Ok((uuid(&r.family_id, "case_files.family_id")?, r.stored()?)))
        .collect()
}

/// The next `limit` stored cases after family `after` (by id) whose rows
/// were computed with a policy older than `policy_version`.
pub async fn page_on_older_policy(
    db: &Db,
    policy_version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<(Uuid, StoredCase)>, sqlx::Error> {
    let sql = format!(
        "{} WHERE cf.family_id > $1 AND cf.policy_version < $3 \
         ORDER BY cf.family_id LIMIT $2",
        select_stored(db)
    );
    let rows: Vec<StateRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .bind(policy_version)
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|r| Ok((uuid(&r.family_id, "case_files.family_id")?, r.stored()?)))
        .collect()
}

/// Every family's stored version (the sequence of its last event), for
/// the report's facts cache to see which families changed.
pub async fn all_versions(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as("SELECT family_id, version FROM case_files")
            .fetch_all(pool)
            .await
    })
}

/// The families counted and their versions summed per *bucket*, the first
/// two hex digits of the family id: (bucket, families, sum of versions).
/// Versions only grow, so a bucket whose figures did not move holds no
/// changed family — one aggregate instead of a row per family.
pub async fn version_buckets(db: &Db) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT substr(family_id, 1, 2), COUNT(*), CAST(SUM(version) AS BIGINT) \
             FROM case_files GROUP BY substr(family_id, 1, 2)",
        )
        .fetch_all(pool)
        .await
    })
}

/// The versions of the families whose id starts with the two hex digits
/// of `bucket` (see [`version_buckets`]).
pub async fn versions_in_bucket(db: &Db, bucket: u8) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let low = format!("{bucket:02x}");
    // The next bucket's digits bound it (digits sort before letters in
    // every collation); the last bucket has no bound.
    let high = bucket
        .checked_add(1)
        .map_or_else(|| "g".to_owned(), |b| format!("{b:02x}"));
    on_pool!(db, pool => {
        sqlx::query_as("SELECT family_id, version FROM case_files WHERE family_id >= $1 AND family_id < $2")
            .bind(low)
            .bind(high)
            .fetch_all(pool)
            .await
    })
}

/// Stored versions of the given families.
pub async fn versions(db: &Db, families: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    if families.is_empty() {
        return Ok(HashMap::new());
    }
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("SELECT family_id, version FROM case_files WHERE family_id IN (");
        let mut sep = qb.separated(", ");
        for f in families {
            sep.push_bind(f.to_string());
        }
        qb.push(")");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(pool).await?;
        Ok(rows.into_iter().collect())
    })
}

/// Writes the rows of `families` (distinct families, in family-id order so
/// that two writers meeting on the same rows always lock them in the same
/// order), replacing only the stored rows `guard` allows. Rows that carry a
/// state snapshot are upserted; rows that do not only update an existing
/// row's small columns. Returns the families whose row was written.
pub async fn upsert(
    tx: &mut Tx,
    t: &ReadModelTables,
    families: &[&FamilyRows],
    guard: Guard,
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let cast = state_cast(tx);
    let condition = guard.condition(t.case_files);
    let (full, small): (Vec<&FamilyRows>, Vec<&FamilyRows>) =
        families.iter().partition(|f| f.write_snapshot);
    let mut written = HashSet::with_capacity(families.len());
    for chunk in full.chunks(ROWS_PER_INSERT) {
        let ids: Vec<String> = on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new(format!("INSERT INTO {} ({COLUMNS}) ", t.case_files));
            qb.push_values(chunk, |mut b, f| push_row(&mut b, f, cast));
            qb.push(format!(
                " ON CONFLICT (family_id) DO UPDATE SET version = excluded.version, \
                 village_code = excluded.village_code, status = excluded.status, \
                 village_contact_name = excluded.village_contact_name, \
                 township_contact_name = excluded.township_contact_name, \
                 state = excluded.state, head_hash = excluded.head_hash, \
                 snapshot_version = excluded.snapshot_version, \
                 policy_version = excluded.policy_version{condition} RETURNING family_id"
            ));
            qb.build_query_scalar::<String>().fetch_all(&mut *conn).await?
        });
        for id in ids {
            written.insert(uuid(&id, "case_files.family_id")?);
        }
    }
    // Rows without a snapshot come only from commands (`Guard::Newer`).
    let update = format!(
        "UPDATE {cf} SET version = $1, village_code = $2, status = $3, \
         village_contact_name = $4, township_contact_name = $5, head_hash = $6, \
         snapshot_version = COALESCE(snapshot_version, version), policy_version = $8 \
         WHERE family_id = $7 AND version < $1",
        cf = t.case_files,
    );
    for f in small {
        let n = on_tx!(tx, conn => {
            sqlx::query(&update)
                .bind(f.version as i64)
                .bind(&f.village_code)
                .bind(f.status)
                .bind(&f.village_contact_name)
                .bind(&f.township_contact_name)
                .bind(&f.head_hash)
                .bind(f.family_id.to_string())
                .bind(f.policy_version)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if n > 0 {
            written.insert(f.family_id);
        }
    }
    Ok(written)
}

/// One row's values, in [`COLUMNS`] order.
fn push_row<'q, DB: sqlx::Database>(
    b: &mut sqlx::query_builder::Separated<'_, 'q, DB, &'static str>,
    f: &FamilyRows,
    cast: &'static str,
) where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    b.push_bind(f.family_id.to_string())
        .push_bind(f.version as i64)
        .push_bind(f.village_code.clone())
        .push_bind(f.status)
        .push_bind(f.village_contact_name.clone())
        .push_bind(f.township_contact_name.clone())
        .push_bind(state_text(f))
        .push_unseparated(cast)
        .push_bind(f.head_hash.clone())
        .push_bind(f.version as i64)
        .push_bind(f.policy_version);
}

/// Plain multi-row inserts into an empty generation (a rebuild).
pub async fn insert_fresh(
    tx: &mut Tx,
    t: &ReadModelTables,
    families: &[&FamilyRows],
) -> Result<(), sqlx::Error> {
    let cast = state_cast(tx);
    for chunk in families.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new(format!("INSERT INTO {} ({COLUMNS}) ", t.case_files));
            qb.push_values(chunk, |mut b, f| push_row(&mut b, f, cast));
            qb.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    family_id: String,
    version: i64,
    village_code: String,
    status: String,
    key_person: bool,
    village_contact_name: Option<String>,
    township_contact_name: Option<String>,
    village_due_on: Option<NaiveDate>,
    township_due_on: Option<NaiveDate>,
}

impl TryFrom<SummaryRow> for CaseSummary {
    type Error = sqlx::Error;

    fn try_from(r: SummaryRow) -> Result<Self, sqlx::Error> {
        Ok(CaseSummary {
            id: uuid(&r.family_id, "case_files.family_id")?,
            version: r.version as u64,
            village_code: r.village_code,
            status: r.status,
            key_person: r.key_person,
            village_contact_name: r.village_contact_name,
            township_contact_name: r.township_contact_name,
            village_next_due_on: r.village_due_on,
            township_next_due_on: r.township_due_on,
        })
    }
}

/// A village-code prefix at least this long (a county or narrower) holds a
/// small share of the families: its page is found through the village-code
/// index and sorted, rather than by walking the whole table in family-id
/// order until enough of it falls in the range. The planner cannot tell
/// the two apart on its own: its statistics do not resolve a township's
/// slice of the codes (decisions.md, record 29).
const NARROW_PREFIX: usize = 6;

/// One page of the case list, ordered by family id. Key status and due
/// dates are those of day `on` (from the key periods and schedule rows
/// valid that day), looked up for the page's rows only.
pub async fn list(
    db: &Db,
    filter: &CaseListFilter,
    on: NaiveDate,
) -> Result<Vec<CaseSummary>, sqlx::Error> {
    let key = |cf: &str| {
        format!(
            "COALESCE((SELECT kp.key_person FROM {kp} kp WHERE kp.family_id = {cf}.family_id \
             AND kp.valid_from <= $1 AND kp.valid_to > $1 ORDER BY kp.valid_from DESC LIMIT 1), FALSE)",
            kp = LIVE.key_periods
        )
    };
    let due = |role: &str| {
        format!(
            "(SELECT s.due_on FROM {vs} s WHERE s.family_id = p.family_id AND s.role = '{role}' \
             AND s.valid_from <= $1 AND s.valid_to > $1 ORDER BY s.valid_from DESC LIMIT 1)",
            vs = LIVE.schedule
        )
    };
    let mut page = format!(
        "SELECT cf.family_id, cf.version, cf.village_code, cf.status, cf.village_contact_name, \
         cf.township_contact_name FROM {cf} cf WHERE 1 = 1",
        cf = LIVE.case_files
    );
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let prefix = &filter.village_code_prefix;
    if !prefix.is_empty() {
        let (a, b) = (next(), next());
        page.push_str(&format!(
            " AND cf.village_code >= {a} AND cf.village_code < {b}"
        ));
    }
    if filter.status.is_some() {
        page.push_str(&format!(" AND cf.status = {}", next()));
    }
    if filter.key_person.is_some() {
        page.push_str(&format!(" AND {} = {}", key("cf"), next()));
    }
    if filter.uncovered {
        page.push_str(" AND (cf.village_contact_name IS NULL OR cf.township_contact_name IS NULL)");
    }
    if filter.after.is_some() {
        page.push_str(&format!(" AND cf.family_id > {}", next()));
    }
    // Ordering by an expression rules out the walk in key order.
    let order = if prefix.len() >= NARROW_PREFIX {
        "cf.family_id || ''"
    } else {
        "cf.family_id"
    };
    page.push_str(&format!(" ORDER BY {order} LIMIT {}", next()));
    let sql = format!(
        "SELECT p.family_id, p.version, p.village_code, p.status, p.village_contact_name, \
         p.township_contact_name, {key} AS key_person, {village} AS village_due_on, \
         {township} AS township_due_on FROM ({page}) p ORDER BY p.family_id",
        key = key("p"),
        village = due("village"),
        township = due("township"),
    );
    let rows: Vec<SummaryRow> = on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql).bind(on);
        if !prefix.is_empty() {
            q = q.bind(prefix.clone()).bind(prefix_upper(prefix));
        }
        if let Some(s) = &filter.status {
            q = q.bind(s.clone());
        }
        if let Some(k) = filter.key_person {
            q = q.bind(k);
        }
        if let Some(a) = filter.after {
            q = q.bind(a.to_string());
        }
        q.bind(i64::from(filter.limit)).fetch_all(pool).await?
    });
    rows.into_iter().map(CaseSummary::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct GapRow {
    family_id: String,
    village_code: String,
    village_contact_name: Option<String>,
    township_contact_name: Option<String>,
}

/// One page of open families missing a contact for a role, by family id
/// (served by the partial index `case_files_gaps`).
pub async fn coverage_gaps(
    db: &Db,
    prefix: &str,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<CoverageGap>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT family_id, village_code, village_contact_name, township_contact_name FROM case_files \
         WHERE status = 'open' AND (village_contact_name IS NULL OR township_contact_name IS NULL)",
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if !prefix.is_empty() {
        let (a, b) = (next(), next());
        sql.push_str(&format!(" AND village_code >= {a} AND village_code < {b}"));
    }
    if after.is_some() {
        sql.push_str(&format!(" AND family_id > {}", next()));
    }
    sql.push_str(&format!(" ORDER BY family_id LIMIT {}", next()));
    let rows: Vec<GapRow> = on_pool!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        if !prefix.is_empty() {
            query = query.bind(prefix.to_owned()).bind(prefix_upper(prefix));
        }
        if let Some(a) = after {
            query = query.bind(a.to_string());
        }
        query.bind(i64::from(limit)).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|r| {
            let missing = [
                ("village", r.village_contact_name.is_none()),
                ("township", r.township_contact_name.is_none()),
            ];
            Ok(CoverageGap {
                family_id: uuid(&r.family_id, "case_files.family_id")?,
                village_code: r.village_code,
                missing_roles: missing
                    .iter()
                    .filter(|(_, gap)| *gap)
                    .map(|(role, _)| (*role).to_owned())
                    .collect(),
            })
        })
        .collect()
}

/// The city (4-digit) and county (6-digit) codes of the families registered
/// within `prefix`: the associations that have families to care for.
/// (An index range scan of the prefix's families.)
pub async fn associations(
    db: &Db,
    prefix: &str,
) -> Result<std::collections::BTreeSet<String>, sqlx::Error> {
    let sql = "SELECT DISTINCT substr(village_code, 1, 4) FROM case_files \
               WHERE village_code >= $1 AND village_code < $2 \
               UNION SELECT DISTINCT substr(village_code, 1, 6) FROM case_files \
               WHERE village_code >= $1 AND village_code < $2";
    let codes: Vec<String> = on_pool!(db, pool => {
        sqlx::query_scalar(sql)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .fetch_all(pool)
            .await?
    });
    Ok(codes
        .into_iter()
        .filter(|c| c.len() > prefix.len() || c == prefix)
        .filter(|c| c.starts_with(prefix))
        .collect())
}
