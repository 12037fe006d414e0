//! A fresh generation of the read-model tables (`rebuild_*`) for
//! `projections rebuild`, made from the **live schema** — never from a hand
//! copy of it — and swapped in for the live tables in one transaction.
//!
//! - PostgreSQL: `CREATE TABLE fresh (LIKE live INCLUDING ALL)` copies
//!   columns exactly (types, collations, defaults: servers' cached prepared
//!   statements fail if the row shape changes), constraints and indexes.
//! - SQLite: the live table's and indexes' own `CREATE` statements from
//!   `sqlite_master`, with the table renamed. Index names are global and
//!   survive a table rename, so each generation's indexes get their own
//!   suffix (`<name>__g<generation>`).

use super::checkpoints::{self, Checkpoint, READ_MODELS};
use super::{Db, ReadModelTables, LIVE, REBUILD};
use crate::on_pool;

/// Drops any leftover fresh tables and creates empty ones shaped like the
/// live ones.
pub async fn create(db: &Db, generation: &str) -> Result<(), sqlx::Error> {
    let mut statements: Vec<String> = REBUILD
        .all()
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {t}"))
        .collect();
    for (live, fresh) in LIVE.all().into_iter().zip(REBUILD.all()) {
        statements.extend(copy_of(db, live, fresh, generation).await?);
    }
    let mut tx = db.begin().await?;
    tx.execute_all(&statements).await?;
    tx.commit().await
}

/// The statements that make `fresh` an empty copy of `live`.
async fn copy_of(
    db: &Db,
    live: &str,
    fresh: &str,
    generation: &str,
) -> Result<Vec<String>, sqlx::Error> {
    match db {
        Db::Postgres(_) => Ok(vec![format!(
            "CREATE TABLE {fresh} (LIKE {live} INCLUDING ALL)"
        )]),
        Db::Sqlite(pool) => {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT type, name, sql FROM sqlite_master \
                 WHERE tbl_name = $1 AND sql IS NOT NULL ORDER BY type = 'index', name",
            )
            .bind(live)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(kind, name, sql)| {
                    rewrite_sqlite(&kind, &name, &sql, fresh, generation).ok_or_else(|| {
                        sqlx::Error::Protocol(format!("cannot copy the schema of {name}"))
                    })
                })
                .collect()
        }
    }
}

/// `sql` (a `CREATE TABLE live (…)` or `CREATE [UNIQUE] INDEX name ON live
/// …` statement) made to create the same on `fresh`.
fn rewrite_sqlite(
    kind: &str,
    name: &str,
    sql: &str,
    fresh: &str,
    generation: &str,
) -> Option<String> {
    match kind {
        "table" => {
            let body = &sql[sql.find('(')?..];
            Some(format!("CREATE TABLE {fresh} {body}"))
        }
        "index" => {
            let on = sql.find(" ON ")?;
            let head = &sql[..on];
            let unique = if head.contains("UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            let rest = sql[on + 4..].trim_start();
            let after_table = rest.find(|c: char| c == '(' || c.is_whitespace())?;
            let base = name.split("__").next().unwrap_or(name);
            Some(format!(
                "CREATE {unique}INDEX {base}__{generation} ON {fresh} {}",
                rest[after_table..].trim_start()
            ))
        }
        _ => None,
    }
}

/// Puts the fresh tables in place of the live ones and sets the read
/// models' checkpoint to `end`, atomically.
pub async fn swap(db: &Db, end: Checkpoint) -> Result<(), sqlx::Error> {
    let mut statements = Vec::new();
    if db.is_postgres() {
        statements.push(format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            LIVE.all().join(", ")
        ));
    }
    for (live, fresh) in LIVE.all().into_iter().zip(REBUILD.all()) {
        statements.push(format!("DROP TABLE {live}"));
        statements.push(format!("ALTER TABLE {fresh} RENAME TO {live}"));
    }
    let mut tx = db.begin().await?;
    tx.execute_all(&statements).await?;
    checkpoints::set(&mut tx, READ_MODELS, end).await?;
    tx.commit().await?;
    // The renamed tables come without the planner's statistics.
    db.optimize().await
}

/// Rows in each table of a generation (for tests and reports).
pub async fn counts(db: &Db, t: &ReadModelTables) -> Result<[i64; 3], sqlx::Error> {
    let mut out = [0; 3];
    for (i, table) in t.all().iter().enumerate() {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        out[i] = on_pool!(db, pool => sqlx::query_scalar(&sql).fetch_one(pool).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_are_copied_onto_the_fresh_table() {
        assert_eq!(
            rewrite_sqlite(
                "table",
                "case_files",
                "CREATE TABLE case_files\n(\n    family_id TEXT PRIMARY KEY\n) STRICT",
                "rebuild_case_files",
                "g1"
            )
            .unwrap(),
            "CREATE TABLE rebuild_case_files (\n    family_id TEXT PRIMARY KEY\n) STRICT"
        );
        assert_eq!(
            rewrite_sqlite(
                "index",
                "case_files_gaps__g0",
                "CREATE INDEX case_files_gaps__g0 ON case_files (village_code, family_id)\n    WHERE status = 'open'",
                "rebuild_case_files",
                "g1"
            )
            .unwrap(),
            "CREATE INDEX case_files_gaps__g1 ON rebuild_case_files (village_code, family_id)\n    WHERE status = 'open'"
        );
        assert_eq!(
            rewrite_sqlite("index", "x", "CREATE UNIQUE INDEX x ON t(a)", "f", "g2").unwrap(),
            "CREATE UNIQUE INDEX x__g2 ON f (a)"
        );
    }
}
