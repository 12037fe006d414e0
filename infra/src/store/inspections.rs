//! `inspections`: one row per inspection (the read model of the
//! `Inspection` streams, written in the transaction of their events), and
//! the counts compliance and the pace scan compare with the minimum.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use nuanxin_domain::inspection::Inspection;
use nuanxin_projections::activities::HeldListFilter;
use nuanxin_projections::inspections::InspectionRow;
use uuid::Uuid;

use super::{prefix_upper, push_held_page, uuid, Db, Tx, ROWS_PER_INSERT};
use crate::{on_pool, on_tx};

const COLUMNS: &str = "inspection_id, version, jurisdiction, inspected_by, held_on, counts, state";

#[derive(sqlx::FromRow)]
struct StateRow {
    inspection_id: String,
    version: i64,
    state: String,
}

impl StateRow {
    fn decode(self) -> Result<(Uuid, u64, Inspection), sqlx::Error> {
        let state =
            serde_json::from_str(&self.state).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok((
            uuid(&self.inspection_id, "inspections.inspection_id")?,
            self.version as u64,
            state,
        ))
    }
}

fn state_text(row: &InspectionRow) -> String {
    serde_json::to_string(&row.state).unwrap_or_else(|_| "{}".into())
}

/// Writes an inspection's row at the version it was built for; an older
/// version than the stored one changes nothing.
pub async fn write(tx: &mut Tx, row: &InspectionRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO inspections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (inspection_id) DO UPDATE SET version = excluded.version, \
         jurisdiction = excluded.jurisdiction, inspected_by = excluded.inspected_by, \
         held_on = excluded.held_on, counts = excluded.counts, state = excluded.state \
         WHERE inspections.version < excluded.version"
    );
    on_tx!(tx, conn => {
        sqlx::query(&sql)
            .bind(row.id.to_string())
            .bind(row.version as i64)
            .bind(&row.jurisdiction)
            .bind(&row.inspected_by)
            .bind(row.held_on)
            .bind(row.counts)
            .bind(state_text(row))
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

/// Replaces the table with `rows` (a rebuild from the log).
pub async fn replace_all(tx: &mut Tx, rows: &[InspectionRow]) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM inspections").execute(&mut *conn).await?;
    });
    for chunk in rows.chunks(ROWS_PER_INSERT / 2) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new(format!("INSERT INTO inspections ({COLUMNS}) "));
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.to_string())
                    .push_bind(r.version as i64)
                    .push_bind(r.jurisdiction.clone())
                    .push_bind(r.inspected_by.clone())
                    .push_bind(r.held_on)
                    .push_bind(r.counts)
                    .push_bind(state_text(r));
            });
            qb.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// One inspection: its version and folded state.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<(u64, Inspection)>, sqlx::Error> {
    let sql = "SELECT inspection_id, version, state FROM inspections WHERE inspection_id = $1";
    let row: Option<StateRow> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(id.to_string()).fetch_optional(pool).await?
    });
    Ok(row
        .map(StateRow::decode)
        .transpose()?
        .map(|(_, v, s)| (v, s)))
}

/// The jurisdictions that contain `prefix` (its prefixes of 2 to 9 digits
/// shorter than it): an inspection of one of them is seen from within.
fn enclosing(prefix: &str) -> Vec<String> {
    [2usize, 4, 6, 9]
        .into_iter()
        .filter(|n| *n < prefix.len())
        .map(|n| prefix[..n].to_owned())
        .collect()
}

/// A page of inspections whose jurisdiction overlaps `f.village_code_prefix`
/// (lies within it, or contains it), newest first.
pub async fn list(
    db: &Db,
    f: &HeldListFilter,
) -> Result<Vec<(Uuid, u64, Inspection)>, sqlx::Error> {
    let enclosing = enclosing(&f.village_code_prefix);
    let rows: Vec<StateRow> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
            "SELECT inspection_id, version, state FROM inspections WHERE ",
        );
        push_held_page(&mut qb, "jurisdiction", "inspection_id", &enclosing, f);
        qb.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(StateRow::decode).collect()
}

#[derive(sqlx::FromRow)]
struct HeldRow {
    inspected_by: String,
    held: i64,
}

/// Inspections that count, held in `from..=to` by each city or county
/// association (4 or 6 digits) within `prefix`.
pub async fn held_by(
    db: &Db,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<String, u32>, sqlx::Error> {
    let sql = "SELECT inspected_by, COUNT(*) AS held FROM inspections \
               WHERE counts = $1 AND held_on >= $2 AND held_on <= $3 \
               AND inspected_by >= $4 AND inspected_by < $5 \
               AND length(inspected_by) IN (4, 6) GROUP BY inspected_by";
    let rows: Vec<HeldRow> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(true)
            .bind(from)
            .bind(to)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| (r.inspected_by, u32::try_from(r.held).unwrap_or(u32::MAX)))
        .collect())
}
