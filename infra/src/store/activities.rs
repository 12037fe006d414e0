//! `activities` (one row per activity) and `activity_attendance` (one row
//! per activity and family attending): the read models of the `Activity`
//! streams, written in the transaction of their events
//! (`crate::streams`). The isolation list reads the attendance by family.

use chrono::NaiveDate;
use nuanxin_projections::activities::{
    ActivityRows, ActivitySummary, Attendee, HeldListFilter, IsolatedFamily,
};
use uuid::Uuid;

use super::{prefix_upper, push_held_page, uuid, Db, Tx, ROWS_PER_INSERT};
use crate::{on_pool, on_tx};

const COLUMNS: &str =
    "activity_id, version, village_code_prefix, kind, title, held_on, organiser, families";

#[derive(sqlx::FromRow)]
struct ActivityRow {
    activity_id: String,
    version: i64,
    village_code_prefix: String,
    kind: String,
    title: String,
    held_on: NaiveDate,
    organiser: String,
    families: i64,
}

impl TryFrom<ActivityRow> for ActivitySummary {
    type Error = sqlx::Error;

    fn try_from(r: ActivityRow) -> Result<Self, sqlx::Error> {
        Ok(ActivitySummary {
            id: uuid(&r.activity_id, "activities.activity_id")?,
            version: r.version as u64,
            kind: r.kind,
            title: r.title,
            held_on: r.held_on,
            village_code_prefix: r.village_code_prefix,
            organiser: r.organiser,
            families_attended: r.families as u64,
        })
    }
}

/// Writes an activity's rows (its row, and its attendance replaced) at the
/// version they were built for; an older version than the stored one
/// changes nothing.
pub async fn write(tx: &mut Tx, rows: &ActivityRows) -> Result<(), sqlx::Error> {
    let a = &rows.summary;
    let sql = format!(
        "INSERT INTO activities ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (activity_id) DO UPDATE SET version = excluded.version, \
         village_code_prefix = excluded.village_code_prefix, kind = excluded.kind, \
         title = excluded.title, held_on = excluded.held_on, organiser = excluded.organiser, \
         families = excluded.families WHERE activities.version < excluded.version \
         RETURNING activity_id"
    );
    let written: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar(&sql)
            .bind(a.id.to_string())
            .bind(a.version as i64)
            .bind(&a.village_code_prefix)
            .bind(&a.kind)
            .bind(&a.title)
            .bind(a.held_on)
            .bind(&a.organiser)
            .bind(a.families_attended as i64)
            .fetch_optional(&mut *conn)
            .await?
    });
    if written.is_none() {
        return Ok(());
    }
    let sql = "DELETE FROM activity_attendance WHERE activity_id = $1";
    on_tx!(tx, conn => {
        sqlx::query(sql).bind(a.id.to_string()).execute(&mut *conn).await?;
    });
    insert_attendance(tx, std::slice::from_ref(rows)).await
}

async fn insert_attendance(tx: &mut Tx, activities: &[ActivityRows]) -> Result<(), sqlx::Error> {
    let pairs: Vec<(String, String, NaiveDate)> = activities
        .iter()
        .flat_map(|r| {
            r.attendance
                .iter()
                .map(|f| (r.summary.id.to_string(), f.to_string(), r.summary.held_on))
        })
        .collect();
    for chunk in pairs.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO activity_attendance (activity_id, family_id, held_on) ",
            );
            qb.push_values(chunk, |mut b, (a, f, on)| {
                b.push_bind(a.clone()).push_bind(f.clone()).push_bind(*on);
            });
            qb.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// Replaces both tables with `rows` (a rebuild from the log).
pub async fn replace_all(tx: &mut Tx, rows: &[ActivityRows]) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM activity_attendance").execute(&mut *conn).await?;
        sqlx::query("DELETE FROM activities").execute(&mut *conn).await?;
    });
    for chunk in rows.chunks(ROWS_PER_INSERT / 2) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> =
                sqlx::QueryBuilder::new(format!("INSERT INTO activities ({COLUMNS}) "));
            qb.push_values(chunk, |mut b, r| {
                let a = &r.summary;
                b.push_bind(a.id.to_string())
                    .push_bind(a.version as i64)
                    .push_bind(a.village_code_prefix.clone())
                    .push_bind(a.kind.clone())
                    .push_bind(a.title.clone())
                    .push_bind(a.held_on)
                    .push_bind(a.organiser.clone())
                    .push_bind(a.families_attended as i64);
            });
            qb.build().execute(&mut *conn).await?;
        });
    }
    insert_attendance(tx, rows).await
}

/// The places that contain `prefix` (its county and township codes shorter
/// than it): an activity held there is seen from within.
fn enclosing_places(prefix: &str) -> Vec<String> {
    [6usize, 9]
        .into_iter()
        .filter(|n| *n < prefix.len())
        .map(|n| prefix[..n].to_owned())
        .collect()
}

/// A page of activities whose place overlaps `f.village_code_prefix` (lies
/// within it, or contains it), newest first.
pub async fn list(db: &Db, f: &HeldListFilter) -> Result<Vec<ActivitySummary>, sqlx::Error> {
    let prefix = f.village_code_prefix.as_str();
    let enclosing = enclosing_places(prefix);
    let rows: Vec<ActivityRow> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM activities WHERE "));
        push_held_page(&mut qb, "village_code_prefix", "activity_id", &enclosing, f);
        qb.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(ActivitySummary::try_from).collect()
}

/// One activity's row.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<ActivitySummary>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM activities WHERE activity_id = $1");
    let row: Option<ActivityRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?
    });
    row.map(ActivitySummary::try_from).transpose()
}

#[derive(sqlx::FromRow)]
struct AttendeeRow {
    family_id: String,
    village_code: String,
}

/// The families attending activity `id` whose village lies within
/// `prefix`, in family-id order.
pub async fn attendees(db: &Db, id: Uuid, prefix: &str) -> Result<Vec<Attendee>, sqlx::Error> {
    let sql = "SELECT a.family_id, cf.village_code FROM activity_attendance a \
               JOIN case_files cf ON cf.family_id = a.family_id \
               WHERE a.activity_id = $1 AND cf.village_code >= $2 AND cf.village_code < $3 \
               ORDER BY a.family_id";
    let rows: Vec<AttendeeRow> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id.to_string())
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(Attendee {
                family_id: uuid(&r.family_id, "activity_attendance.family_id")?,
                village_code: r.village_code,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct IsolatedRow {
    family_id: String,
    village_code: String,
    last_attended_on: Option<NaiveDate>,
}

/// A page of open families within `prefix` that attended no activity held
/// on or after `since` (never, or only before it), in family-id order after
/// `after`.
pub async fn isolated(
    db: &Db,
    prefix: &str,
    since: NaiveDate,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<IsolatedFamily>, sqlx::Error> {
    let sql = "SELECT cf.family_id, cf.village_code, \
               (SELECT MAX(a.held_on) FROM activity_attendance a \
                WHERE a.family_id = cf.family_id) AS last_attended_on \
               FROM case_files cf \
               WHERE cf.status = 'open' AND cf.village_code >= $1 AND cf.village_code < $2 \
               AND cf.family_id > $3 \
               AND NOT EXISTS (SELECT 1 FROM activity_attendance a \
                               WHERE a.family_id = cf.family_id AND a.held_on >= $4) \
               ORDER BY cf.family_id LIMIT $5";
    let rows: Vec<IsolatedRow> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(IsolatedFamily {
                family_id: uuid(&r.family_id, "case_files.family_id")?,
                village_code: r.village_code,
                last_attended_on: r.last_attended_on,
            })
        })
        .collect()
}
