//! `family_key_periods` and `visit_schedule`: a family's key-person status
//! and visit due dates, in windows of days `[valid_from, valid_to)` (see
//! `nuanxin_projections::schedule`). Every list of due or overdue visits is
//! one index range scan of `visit_schedule`.

use chrono::NaiveDate;
use nuanxin_projections::rows::FamilyRows;
use nuanxin_projections::schedule::{ContactRef, DueItem, DueQuery, KeyPeriod, ScheduleRow};
use uuid::Uuid;

use super::{prefix_upper, uuid, Db, ReadModelTables, Tx, LIVE, ROWS_PER_INSERT};
use crate::{on_pool, on_tx};

#[derive(sqlx::FromRow)]
struct PeriodRow {
    family_id: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    key_person: bool,
}

#[derive(sqlx::FromRow)]
struct StoredScheduleRow {
    family_id: String,
    role: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    village_code: String,
    contact_id: String,
    contact_name: String,
    last_visit_on: Option<NaiveDate>,
    last_home_on: Option<NaiveDate>,
    due_on: NaiveDate,
    key_person: bool,
    urgent: bool,
}

impl StoredScheduleRow {
    fn row(self) -> Result<(String, ScheduleRow), sqlx::Error> {
        let role = nuanxin_domain::Role::parse(&self.role)
            .map_err(|_| sqlx::Error::Decode("visit_schedule.role is unknown".into()))?;
        Ok((
            self.family_id,
            ScheduleRow {
                role,
                valid_from: self.valid_from,
                valid_to: self.valid_to,
                village_code: self.village_code,
                contact_id: uuid(&self.contact_id, "visit_schedule.contact_id")?,
                contact_name: self.contact_name,
                last_visit_on: self.last_visit_on,
                last_home_on: self.last_home_on,
                due_on: self.due_on,
                key_person: self.key_person,
                urgent: self.urgent,
            },
        ))
    }
}

/// `SELECT <columns> FROM <table> WHERE family_id IN (<families>)`.
async fn rows_of<R>(
    tx: &mut Tx,
    table: &str,
    columns: &str,
    families: &[Uuid],
) -> Result<Vec<R>, sqlx::Error>
where
    R: Send + Unpin,
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let mut out = Vec::new();
    for chunk in families.chunks(ROWS_PER_INSERT) {
        let rows: Vec<R> = on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE family_id IN ("));
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(id.to_string());
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut *conn).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

/// Makes the stored key periods and schedule rows of `families` equal to
/// theirs, touching only the rows that differ: a rewrite of every row would
/// dirty (and log) pages for nothing — a note changes no schedule row, a
/// visit the rows of one role.
pub async fn replace(
    tx: &mut Tx,
    t: &ReadModelTables,
    families: &[&FamilyRows],
) -> Result<(), sqlx::Error> {
    use std::collections::HashMap;
    let ids: Vec<Uuid> = families.iter().map(|f| f.family_id).collect();
    let mut old_periods: HashMap<String, Vec<KeyPeriod>> = HashMap::new();
    for p in rows_of::<PeriodRow>(
        tx,
        t.key_periods,
        "family_id, valid_from, valid_to, key_person",
        &ids,
    )
    .await?
    {
        old_periods.entry(p.family_id).or_default().push(KeyPeriod {
            valid_from: p.valid_from,
            valid_to: p.valid_to,
            key_person: p.key_person,
        });
    }
    let mut old_schedule: HashMap<String, Vec<ScheduleRow>> = HashMap::new();
    let columns = "family_id, role, valid_from, valid_to, village_code, contact_id, contact_name, \
                   last_visit_on, last_home_on, due_on, key_person, urgent";
    for r in rows_of::<StoredScheduleRow>(tx, t.schedule, columns, &ids).await? {
        let (family, row) = r.row()?;
        old_schedule.entry(family).or_default().push(row);
    }
    let mut new_periods: Vec<(&FamilyRows, &KeyPeriod)> = Vec::new();
    let mut new_rows: Vec<(&FamilyRows, &ScheduleRow)> = Vec::new();
    for f in families {
        let id = f.family_id.to_string();
        let old = old_periods.remove(&id).unwrap_or_default();
        for gone in old.iter().filter(|p| !f.key_periods.contains(p)) {
            let sql = format!(
                "DELETE FROM {} WHERE family_id = $1 AND valid_from = $2",
                t.key_periods
            );
            on_tx!(tx, conn => {
                sqlx::query(&sql).bind(&id).bind(gone.valid_from).execute(&mut *conn).await?;
            });
        }
        new_periods.extend(
            f.key_periods
                .iter()
                .filter(|p| !old.contains(p))
                .map(|p| (*f, p)),
        );
        let old = old_schedule.remove(&id).unwrap_or_default();
        for gone in old.iter().filter(|r| !f.schedule.contains(r)) {
            let sql = format!(
                "DELETE FROM {} WHERE family_id = $1 AND role = $2 AND valid_from = $3",
                t.schedule
            );
            on_tx!(tx, conn => {
                sqlx::query(&sql)
                    .bind(&id)
                    .bind(gone.role.as_str())
                    .bind(gone.valid_from)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        new_rows.extend(
            f.schedule
                .iter()
                .filter(|r| !old.contains(r))
                .map(|r| (*f, r)),
        );
    }
    for chunk in new_periods.chunks(ROWS_PER_INSERT) {
        insert_periods(tx, t, chunk).await?;
    }
    for chunk in new_rows.chunks(ROWS_PER_INSERT) {
        insert_schedule(tx, t, chunk).await?;
    }
    Ok(())
}

/// Inserts the periods and schedule rows of `families` (whose old rows are
/// gone), in multi-row statements.
pub async fn insert(
    tx: &mut Tx,
    t: &ReadModelTables,
    families: &[&FamilyRows],
) -> Result<(), sqlx::Error> {
    let periods: Vec<(&FamilyRows, &KeyPeriod)> = families
        .iter()
        .flat_map(|f| f.key_periods.iter().map(move |p| (*f, p)))
        .collect();
    for chunk in periods.chunks(ROWS_PER_INSERT) {
        insert_periods(tx, t, chunk).await?;
    }
    let rows: Vec<(&FamilyRows, &ScheduleRow)> = families
        .iter()
        .flat_map(|f| f.schedule.iter().map(move |r| (*f, r)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        insert_schedule(tx, t, chunk).await?;
    }
    Ok(())
}

async fn insert_periods(
    tx: &mut Tx,
    t: &ReadModelTables,
    chunk: &[(&FamilyRows, &KeyPeriod)],
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn, DB => {
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
        qb.build().execute(&mut *conn).await?;
    });
    Ok(())
}

async fn insert_schedule(
    tx: &mut Tx,
    t: &ReadModelTables,
    chunk: &[(&FamilyRows, &ScheduleRow)],
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn, DB => {
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
        qb.build().execute(&mut *conn).await?;
    });
    Ok(())
}

#[derive(sqlx::FromRow)]
struct DueRow {
    family_id: String,
    village_code: String,
    role: String,
    contact_id: String,
    contact_name: String,
    last_visit_on: Option<NaiveDate>,
    last_home_on: Option<NaiveDate>,
    due_on: NaiveDate,
    key_person: bool,
    urgent: bool,
}

impl DueRow {
    fn item(self, on: NaiveDate) -> Result<DueItem, sqlx::Error> {
        let days = (on - self.due_on).num_days();
        Ok(DueItem {
            family_id: uuid(&self.family_id, "visit_schedule.family_id")?,
            village_code: self.village_code,
            role: self.role,
            contact: ContactRef {
                id: uuid(&self.contact_id, "visit_schedule.contact_id")?,
                name: self.contact_name,
            },
            last_visit_on: self.last_visit_on,
            last_home_visit_on: self.last_home_on,
            due_on: self.due_on,
            days_overdue: days.max(0),
            overdue: days > 0,
            key_person: self.key_person,
            urgent: self.urgent,
        })
    }
}

/// One page of due items: rows valid on `q.on` with `due_on <= q.due_until`,
/// within the prefix, oldest due first, keyset-paged.
pub async fn due(db: &Db, q: &DueQuery) -> Result<Vec<DueItem>, sqlx::Error> {
    let mut sql = format!(
        "SELECT family_id, village_code, role, contact_id, contact_name, last_visit_on, last_home_on, \
         due_on, key_person, urgent FROM {} \
         WHERE valid_from <= $1 AND valid_to > $1 AND due_on <= $2",
        LIVE.schedule
    );
    let mut n = 2;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if !q.village_code_prefix.is_empty() {
        let (a, b) = (next(), next());
        sql.push_str(&format!(" AND village_code >= {a} AND village_code < {b}"));
    }
    if q.role.is_some() {
        sql.push_str(&format!(" AND role = {}", next()));
    }
    if q.contact_id.is_some() {
        sql.push_str(&format!(" AND contact_id = {}", next()));
    }
    if q.after.is_some() {
        let (a, b, c) = (next(), next(), next());
        sql.push_str(&format!(" AND (due_on, family_id, role) > ({a}, {b}, {c})"));
    }
    sql.push_str(&format!(
        " ORDER BY due_on, family_id, role LIMIT {}",
        next()
    ));
    let rows: Vec<DueRow> = on_pool!(db, pool => {
        let mut query = sqlx::query_as(&sql).bind(q.on).bind(q.due_until);
        if !q.village_code_prefix.is_empty() {
            query = query
                .bind(q.village_code_prefix.clone())
                .bind(prefix_upper(&q.village_code_prefix));
        }
        if let Some(role) = q.role {
            query = query.bind(role.as_str());
        }
        if let Some(c) = q.contact_id {
            query = query.bind(c.to_string());
        }
        if let Some(a) = &q.after {
            query = query.bind(a.due_on).bind(a.family_id.clone()).bind(a.role.clone());
        }
        query.bind(i64::from(q.limit)).fetch_all(pool).await?
    });
    rows.into_iter().map(|r| r.item(q.on)).collect()
}
