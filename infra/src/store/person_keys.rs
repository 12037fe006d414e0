//! `person_keys`: the data key of every person, wrapped by the master key
//! (`crate::privacy`). Outside the event log: erasing a family sets its
//! persons' `wrapped` to NULL.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Db, Tx};
use crate::{on_pool, on_tx};

/// A key to store if its subject has none yet.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub subject: Uuid,
    pub kind: &'static str,
    pub family: Option<Uuid>,
    pub wrapped: Vec<u8>,
    pub master_key_id: String,
}

/// A subject's wrapped key (`None`: erased).
#[derive(Debug, sqlx::FromRow)]
struct Row {
    subject: String,
    wrapped: Option<Vec<u8>>,
}

pub struct Stored {
    pub subject: Uuid,
    pub wrapped: Option<Vec<u8>>,
}

/// The time as stored: RFC 3339 in UTC with microseconds, so that text
/// order is time order.
fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Stores the keys whose subject has none (a subject's first key wins; a
/// subject erased keeps no key). Durable when this returns.
pub async fn insert_missing(db: &Db, keys: &[NewKey]) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    insert_missing_in(&mut tx, &keys.iter().collect::<Vec<_>>()).await?;
    tx.commit().await
}

/// [`insert_missing`] inside `tx` (on SQLite the group commit's, with the
/// events sealed with these keys); returns the keys that went in, wrapped,
/// by subject (not those whose subject had one already, nor the second of
/// two for one subject).
pub async fn insert_missing_in(
    tx: &mut Tx,
    keys: &[&NewKey],
) -> Result<HashMap<String, Vec<u8>>, sqlx::Error> {
    let at = now();
    let mut stored = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let rows: Vec<(String, Vec<u8>)> = on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO person_keys (subject, kind, family_id, wrapped, master_key_id, created_at) ",
            );
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(k.subject.to_string())
                    .push_bind(k.kind)
                    .push_bind(k.family.map(|f| f.to_string()))
                    .push_bind(k.wrapped.clone())
                    .push_bind(k.master_key_id.clone())
                    .push_bind(at.clone());
            });
            qb.push(" ON CONFLICT (subject) DO NOTHING RETURNING subject, wrapped");
            qb.build_query_as().fetch_all(&mut *conn).await?
        });
        stored.extend(rows);
    }
    Ok(stored)
}

/// The time a key is stored with, as [`insert_missing`] writes it (the
/// PostgreSQL group commit binds it).
pub fn created_at() -> String {
    now()
}

/// The stored keys of `subjects` (those with a row).
pub async fn of(db: &Db, subjects: &[Uuid]) -> Result<Vec<Stored>, sqlx::Error> {
    let ids: Vec<String> = subjects.iter().map(Uuid::to_string).collect();
    stored_where(db, "subject", &ids).await
}

/// The stored keys of every subject whose id ends in one of `tails` (the
/// last 8 bytes an `nx2:` field names), by the `person_keys_tail` index.
pub async fn with_tails(db: &Db, tails: &[[u8; 8]]) -> Result<Vec<Stored>, sqlx::Error> {
    let texts: Vec<String> = tails.iter().map(tail_text).collect();
    // The expression must be the index's: the text of the id's last 8
    // bytes, `xxxx-xxxxxxxxxxxx`.
    stored_where(db, "substr(subject, 20)", &texts).await
}

/// The stored keys of the rows whose `expr` is one of `values`.
async fn stored_where(
    db: &Db,
    expr: &'static str,
    values: &[String],
) -> Result<Vec<Stored>, sqlx::Error> {
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(500) {
        let rows: Vec<Row> = on_pool!(db, pool, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "SELECT subject, wrapped FROM person_keys WHERE ",
            );
            qb.push(expr).push(" IN (");
            let mut list = qb.separated(", ");
            for v in chunk {
                list.push_bind(v.clone());
            }
            qb.push(")");
            qb.build_query_as::<Row>().fetch_all(pool).await?
        });
        out.extend(rows.into_iter().filter_map(|r| {
            Some(Stored {
                subject: r.subject.parse().ok()?,
                wrapped: r.wrapped,
            })
        }));
    }
    Ok(out)
}

/// How the last 8 bytes of an id read in its text: `xxxx-xxxxxxxxxxxx`.
fn tail_text(tail: &[u8; 8]) -> String {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(tail);
    Uuid::from_bytes(bytes).hyphenated().to_string()[19..].to_owned()
}

/// Subjects erased after `since` (a stored time; `""` for all), with when.
pub async fn erased_since(db: &Db, since: &str) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let sql = "SELECT subject, erased_at FROM person_keys \
               WHERE erased_at IS NOT NULL AND erased_at > $1";
    let rows: Vec<(String, String)> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(since).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(s, at)| Some((s.parse().ok()?, at)))
        .collect())
}

/// Erases the keys of `family`'s persons; returns the subjects erased now.
pub async fn erase_family(db: &Db, family: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "UPDATE person_keys SET wrapped = NULL, erased_at = $2 \
               WHERE family_id = $1 AND wrapped IS NOT NULL RETURNING subject";
    let rows: Vec<(String,)> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(family.to_string())
            .bind(now())
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().filter_map(|(s,)| s.parse().ok()).collect())
}

/// Every key not erased, wrapped.
pub async fn live(db: &Db) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    let sql = "SELECT subject, wrapped FROM person_keys WHERE wrapped IS NOT NULL";
    let rows: Vec<Row> = on_pool!(db, pool => { sqlx::query_as(sql).fetch_all(pool).await? });
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.subject.parse().ok()?, r.wrapped?)))
        .collect())
}

/// Up to `limit` live keys after subject `after` (`""`: from the first),
/// in subject order.
pub async fn live_page(
    db: &Db,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let sql = "SELECT subject, wrapped FROM person_keys \
               WHERE wrapped IS NOT NULL AND subject > $1 ORDER BY subject LIMIT $2";
    on_pool!(db, pool => {
        sqlx::query_as(sql).bind(after).bind(limit).fetch_all(pool).await
    })
}

/// Replaces the wrapped keys (one transaction), now wrapped by `master_key_id`.
pub async fn rewrap(
    db: &Db,
    rows: &[(Uuid, Vec<u8>)],
    master_key_id: &str,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE person_keys SET wrapped = $2, master_key_id = $3 \
               WHERE subject = $1 AND wrapped IS NOT NULL";
    let mut tx = db.begin_write().await?;
    for (subject, wrapped) in rows {
        on_tx!(&mut tx, conn => {
            sqlx::query(sql)
                .bind(subject.to_string())
                .bind(wrapped.clone())
                .bind(master_key_id)
                .execute(&mut *conn)
                .await
                .map(|_| ())?
        });
    }
    tx.commit().await
}

/// How many keys each master key wraps (`nuanxin privacy status`).
pub async fn count_by_master(db: &Db) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let sql = "SELECT master_key_id, \
               SUM(CASE WHEN wrapped IS NULL THEN 0 ELSE 1 END), \
               SUM(CASE WHEN wrapped IS NULL THEN 1 ELSE 0 END) \
               FROM person_keys GROUP BY master_key_id ORDER BY master_key_id";
    on_pool!(db, pool => { sqlx::query_as(sql).fetch_all(pool).await })
}

/// Asks the store to drop old copies of rows it no longer needs: SQLite
/// checkpoints and truncates its WAL (old page versions of an erased key
/// live there until then); PostgreSQL vacuums the table (the dead row
/// versions). What the file system or PostgreSQL's own WAL kept is only
/// unreadable once the master key that wrapped it is rotated away
/// (docs/privacy.md).
pub async fn scrub(db: &Db) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(pool) => sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Postgres(pool) => sqlx::query("VACUUM person_keys")
            .execute(pool)
            .await
            .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_reads_as_the_end_of_the_id_text() {
        let id: Uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".parse().unwrap();
        let tail: [u8; 8] = id.as_bytes()[8..].try_into().unwrap();
        assert_eq!(tail_text(&tail), "8796-a5b4c3d2e1f0");
        // SQL's substr(subject, 20) is 1-based: the same characters.
        assert_eq!(&id.to_string()[19..], "8796-a5b4c3d2e1f0");
    }
}
