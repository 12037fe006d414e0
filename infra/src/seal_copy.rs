//! `nuanxin privacy migrate`: a store whose log holds personal fields in
//! clear (written before encryption, docs/privacy.md § Stores with clear
//! text) is copied into a new, empty store of the same kind with every
//! personal field sealed on the way, so that erasure reaches all of it.
//!
//! Events cannot be rewritten in place (triggers, signed checkpoints), so
//! the copy is a new log: each family's events keep their place, type,
//! version and metadata (who recorded what, when), their payloads are
//! sealed (fields sealed already keep their ciphertext and their person
//! keys are copied), and the family's hash chain is computed afresh over
//! them. Other
//! streams (activities, inspections) hold no personal data and are copied
//! as they are, chain included. Users (tokens and passwords as hashes), the
//! access log, the visit policy and the webhook configuration are copied;
//! the read models are rebuilt from the new log. Not copied: web sessions
//! (users sign in again) and the alert and checkpoint tables (the next
//! scan raises the open alerts again; the next checkpoint starts the new
//! log's series). The old store's last signed checkpoint and the report of
//! the copy are what tie the two logs together; the operator then destroys
//! the old store and its backups.

use std::collections::HashMap;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::{self, VerifyReport};
use crate::store::events::{NewEvent, StoredEvent};
use crate::store::{self, DatabaseUrl, Db};
use crate::Core;

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub families: u64,
    pub events: u64,
    /// Personal fields that were in clear in the old log.
    pub fields_sealed: u64,
    pub users: u64,
    pub access_records: u64,
    /// The new log, verified.
    pub verify: VerifyReport,
}

/// Families per round trip.
const FAMILIES_PER_BATCH: usize = 500;

/// Copies `source` (at `source_url`) into `target`'s empty store, sealing
/// every personal field with `target`'s keyring (see the module's
/// documentation). Refuses a target that holds any event, and stores of
/// two kinds.
pub async fn copy_sealed(
    source: &Db,
    source_url: &DatabaseUrl,
    target: &Core,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<CopyReport> {
    let to = target.db();
    anyhow::ensure!(
        matches!(
            (source, to),
            (Db::Sqlite(_), Db::Sqlite(_)) | (Db::Postgres(_), Db::Postgres(_))
        ),
        "the copy goes between stores of the same kind (SQLite to SQLite, PostgreSQL to PostgreSQL)"
    );
    let held = crate::generate::event_count(to).await?;
    anyhow::ensure!(
        held == 0,
        "the copy needs an empty store (the target holds {held} events)"
    );
    let mut report = CopyReport::default();
    copy_tables(source, source_url, to, &mut report).await?;

    let families: Vec<String> = crate::on_pool!(source, pool => {
        sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id",
        )
        .bind(FamilyCase::TYPE)
        .fetch_all(pool)
        .await?
    });
    let total = families.len() as u64;
    for batch in families.chunks(FAMILIES_PER_BATCH) {
        let mut streams: Vec<Vec<StoredEvent>> = Vec::with_capacity(batch.len());
        store::events::for_each_of_streams(source, FamilyCase::TYPE, batch, |e| {
            match streams.last_mut() {
                Some(s) if s[0].aggregate_id == e.aggregate_id => s.push(e),
                _ => streams.push(vec![e]),
            }
        })
        .await?;
        let mut new = Vec::new();
        for stream in streams {
            report.fields_sealed += stream
                .iter()
                .map(|e| crate::privacy::clear_fields(&e.payload) as u64)
                .sum::<u64>();
            report.events += stream.len() as u64;
            report.families += 1;
            new.extend(reseal(target, stream).await?);
        }
        append(to, &new).await?;
        progress(report.families, total);
    }

    // The other streams: no personal data, copied as they are.
    let others: Vec<StoredEvent> = crate::on_pool!(source, pool => {
        sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type <> $1 ORDER BY aggregate_type, aggregate_id, sequence",
        )
        .bind(FamilyCase::TYPE)
        .fetch_all(pool)
        .await?
    });
    report.events += others.len() as u64;
    let others: Vec<NewEvent> = others.into_iter().map(as_new).collect();
    append(to, &others).await?;

    crate::rebuild::rebuild(target, &|_, _| {}).await?;
    report.verify = audit::verify(to, None).await?;
    Ok(report)
}

/// One family's events with their payloads sealed and the chain computed
/// afresh over them.
async fn reseal(target: &Core, stream: Vec<StoredEvent>) -> anyhow::Result<Vec<NewEvent>> {
    let Some(first) = stream.first() else {
        return Ok(Vec::new());
    };
    let family: Uuid = first.aggregate_id.parse()?;
    let mut serialized = Vec::with_capacity(stream.len());
    for e in stream {
        let mut payload = e.payload;
        target
            .keyring()
            .seal_payload(target.db(), family, &mut payload)
            .await?;
        let mut metadata = e.metadata;
        if let Value::Object(map) = &mut metadata {
            map.remove(audit::HASH);
            map.remove(audit::PREV_HASH);
        }
        serialized.push(SerializedEvent::new(
            e.aggregate_id,
            e.sequence as usize,
            e.aggregate_type,
            e.event_type,
            e.event_version,
            payload,
            metadata,
        ));
    }
    Ok(audit::seal(&serialized, String::new())?
        .into_iter()
        .map(|e| NewEvent::from_sealed(FamilyCase::TYPE, e))
        .collect())
}

fn as_new(e: StoredEvent) -> NewEvent {
    use nuanxin_domain::activity::Activity;
    use nuanxin_domain::inspection::Inspection;
    let aggregate_type: &'static str = [Activity::TYPE, Inspection::TYPE]
        .into_iter()
        .find(|t| *t == e.aggregate_type)
        .unwrap_or(FamilyCase::TYPE);
    NewEvent {
        event_id: Uuid::now_v7(),
        aggregate_type,
        aggregate_id: e.aggregate_id,
        sequence: e.sequence,
        event_type: e.event_type,
        event_version: e.event_version,
        payload: e.payload,
        metadata: e.metadata,
    }
}

async fn append(db: &Db, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let refs: Vec<&NewEvent> = events.iter().collect();
    let mut tx = db.begin_write().await?;
    store::events::append(&mut tx, &refs).await?;
    tx.commit().await
}

/// The tables copied as they are (columns in the same order on both sides:
/// the same migrations made them). The person keys come along (the target
/// uses the same master key): fields sealed in the old log stay sealed, and
/// erased persons stay erased.
const TABLES: [&str; 5] = [
    "users",
    "access_log",
    "policy_state",
    "webhook_config",
    "person_keys",
];

async fn copy_tables(
    source: &Db,
    source_url: &DatabaseUrl,
    to: &Db,
    report: &mut CopyReport,
) -> anyhow::Result<()> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    match (to, source_url) {
        (Db::Sqlite(pool), DatabaseUrl::Sqlite(path)) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("ATTACH DATABASE $1 AS src")
                .bind(path.display().to_string())
                .execute(&mut *conn)
                .await?;
            let copied = async {
                for t in TABLES {
                    sqlx::query(&format!("DELETE FROM main.{t}"))
                        .execute(&mut *conn)
                        .await?;
                    let done = sqlx::query(&format!("INSERT INTO main.{t} SELECT * FROM src.{t}"))
                        .execute(&mut *conn)
                        .await?;
                    counts.insert(t, done.rows_affected());
                }
                anyhow::Ok(())
            }
            .await;
            sqlx::query("DETACH DATABASE src")
                .execute(&mut *conn)
                .await?;
            copied?;
        }
        (Db::Postgres(target), _) => {
            let Db::Postgres(from) = source else {
                anyhow::bail!("stores of two kinds");
            };
            for t in TABLES {
                sqlx::query(&format!("DELETE FROM {t}"))
                    .execute(target)
                    .await?;
                let rows: Vec<(String,)> =
                    sqlx::query_as(&format!("SELECT CAST(row_to_json(t) AS TEXT) FROM {t} t"))
                        .fetch_all(from)
                        .await?;
                for chunk in rows.chunks(2000) {
                    let array = format!(
                        "[{}]",
                        chunk
                            .iter()
                            .map(|(r,)| r.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    sqlx::query(&format!(
                        "INSERT INTO {t} OVERRIDING SYSTEM VALUE \
                         SELECT * FROM json_populate_recordset(NULL::{t}, CAST($1 AS json))"
                    ))
                    .bind(array)
                    .execute(target)
                    .await?;
                }
                counts.insert(t, rows.len() as u64);
            }
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('access_log', 'position'), \
                 COALESCE((SELECT MAX(position) FROM access_log), 0) + 1, false)",
            )
            .execute(target)
            .await?;
        }
        _ => anyhow::bail!("stores of two kinds"),
    }
    report.users = counts.get("users").copied().unwrap_or_default();
    report.access_records = counts.get("access_log").copied().unwrap_or_default();
    Ok(())
}
