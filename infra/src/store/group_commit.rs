//! A group commit on PostgreSQL as **one statement**: the batch's events,
//! the read-model rows of the families whose event went in, and the
//! access-log records, written by data-modifying CTEs over `unnest`ed
//! arrays. One round trip, one implicit transaction, one WAL flush for the
//! whole batch; and because every batch binds the same number of arrays the
//! SQL text never changes, so each connection prepares and plans it once.
//!
//! - `pk`: the new person keys the events are sealed with
//!   (`crate::privacy`), `ON CONFLICT DO NOTHING`: a subject's first stored
//!   key wins. A new person's key so costs no round trip and no commit of
//!   its own, and is durable exactly when the first event sealed with it;
//! - `ev`: the events, in stream order, `ON CONFLICT DO NOTHING` (a taken
//!   stream place skips that event alone), and not those whose (user,
//!   idempotency key) is already recorded (a retry), nor those `lost`
//!   lists: with a new key `pk` did not store (another writer's key for the
//!   same person went in first — even one of this very batch — so the
//!   command seals again with that one). `pk` and `lost` are only in the
//!   statement of a batch with new keys: most have none;
//! - `ik`: the idempotency keys of the events appended, a plain INSERT: a
//!   retry racing its original's commit fails the statement on the key
//!   (the lane then writes the batch's jobs one by one, and that retry
//!   finds the original's answer);
//! - `cf_*`: the case-file rows of the families `ev` appended,
//!   version-guarded: upserted with their state snapshot when it is due
//!   (`write_snapshot`), else an UPDATE of the small columns that leaves the
//!   snapshot (and its TOAST chunks) alone;
//! - `kp_*`, `vs_*`: each written family's key periods and schedule rows
//!   (found by `family_id = ANY(<the batch's families>)`, which a generic
//!   plan turns into index lookups whatever it guesses of the CTEs) —
//!   rows no longer there are deleted, new or changed ones upserted,
//!   unchanged ones left alone — filtered out before the upsert, which
//!   would otherwise lock (and so write, and log) every row it meets: a
//!   note touches no schedule page. The DELETE and the upsert of a table
//!   touch disjoint rows, so running them in one statement is well-defined;
//! - `al`: the access-log records.
//!
//! SQLite has no data-modifying CTEs and no round trips to save (it runs
//! in-process), so there the same writes are statements in one transaction
//! (`crate::append`).

use chrono::{DateTime, NaiveDate, Utc};
use nuanxin_projections::rows::FamilyRows;
use serde_json::Value;
use sqlx::PgPool;

use super::access_log::AccessRecord;
use super::events::NewEvent;
use super::person_keys::NewKey;
use crate::append::Written;

/// The new person keys and the streams whose key lost: only in the
/// statement of a batch with new keys (most batches have none, and their
/// statement does no key work).
const KEYS: &str = r#"pk AS (
    INSERT INTO person_keys (subject, kind, family_id, wrapped, master_key_id, created_at)
    SELECT s, k, f, w, m, $46::text
    FROM unnest($40::text[], $41::text[], $42::text[], $43::bytea[], $44::text[])
        AS n(s, k, f, w, m)
    ORDER BY s
    ON CONFLICT (subject) DO NOTHING
    RETURNING subject, wrapped
),
lost AS (
    SELECT DISTINCT n.a FROM unnest($40::text[], $43::bytea[], $45::text[]) AS n(s, w, a)
    WHERE NOT EXISTS (SELECT 1 FROM pk WHERE pk.subject = n.s AND pk.wrapped = n.w)
),
"#;

/// The batch, after [`KEYS`] if it has new keys; [`statement`] fills in
/// `{LOST_FILTER}`.
const BODY: &str = r#"
ev AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, event_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                         $6::jsonb[], $7::jsonb[], $38::uuid[]) AS e(t, a, s, et, ev, p, m, id)
    WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k
                      WHERE k.user_id = e.m ->> 'recorded_by_id'
                        AND k.key = e.m ->> 'idempotency_key')
{LOST_FILTER}    ORDER BY 2
    ON CONFLICT DO NOTHING
    RETURNING aggregate_type, aggregate_id, sequence, metadata ->> 'recorded_by_id' AS user_id,
              metadata ->> 'idempotency_key' AS key
),
ik AS (
    INSERT INTO idempotency_keys (user_id, key, aggregate_type, aggregate_id, sequence)
    SELECT user_id, key, aggregate_type, aggregate_id, sequence FROM ev WHERE key IS NOT NULL
),
cf_full AS (
    INSERT INTO case_files (family_id, version, village_code, status, village_contact_name,
                            township_contact_name, state, head_hash, snapshot_version,
                            policy_version)
    SELECT f, v, vc, st, vn, tn, s::json, h, v, pv
    FROM unnest($8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[],
                $14::text[], $15::text[], $39::bigint[]) AS r(f, v, vc, st, vn, tn, s, h, pv)
    WHERE s IS NOT NULL AND f IN (SELECT aggregate_id FROM ev)
    ORDER BY f
    ON CONFLICT (family_id) DO UPDATE SET version = excluded.version,
        village_code = excluded.village_code, status = excluded.status,
        village_contact_name = excluded.village_contact_name,
        township_contact_name = excluded.township_contact_name, state = excluded.state,
        head_hash = excluded.head_hash, snapshot_version = excluded.snapshot_version,
        policy_version = excluded.policy_version
    WHERE case_files.version < excluded.version
    RETURNING family_id
),
cf_small AS (
    UPDATE case_files SET version = r.v, village_code = r.vc, status = r.st,
        village_contact_name = r.vn, township_contact_name = r.tn, head_hash = r.h,
        snapshot_version = COALESCE(case_files.snapshot_version, case_files.version),
        policy_version = r.pv
    FROM unnest($8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[],
                $14::text[], $15::text[], $39::bigint[]) AS r(f, v, vc, st, vn, tn, s, h, pv)
    WHERE r.s IS NULL AND case_files.family_id = r.f AND case_files.family_id = ANY($8::text[])
      AND r.f IN (SELECT aggregate_id FROM ev) AND case_files.version < r.v
    RETURNING case_files.family_id
),
cf AS (SELECT family_id FROM cf_full UNION ALL SELECT family_id FROM cf_small),
kp AS (
    SELECT * FROM unnest($16::text[], $17::date[], $18::date[], $19::bool[])
        AS k(family_id, valid_from, valid_to, key_person)
    WHERE family_id IN (SELECT family_id FROM cf)
),
kp_del AS (
    DELETE FROM family_key_periods o
    WHERE o.family_id = ANY($8::text[]) AND o.family_id IN (SELECT family_id FROM cf)
      AND NOT EXISTS (SELECT 1 FROM kp WHERE kp.family_id = o.family_id
                                         AND kp.valid_from = o.valid_from)
),
kp_up AS (
    INSERT INTO family_key_periods (family_id, valid_from, valid_to, key_person)
    SELECT * FROM kp
    WHERE NOT EXISTS (SELECT 1 FROM family_key_periods o
                      WHERE o.family_id = kp.family_id AND o.valid_from = kp.valid_from
                        AND o.valid_to = kp.valid_to AND o.key_person = kp.key_person)
    ORDER BY 1, 2
    ON CONFLICT (family_id, valid_from) DO UPDATE SET valid_to = excluded.valid_to,
        key_person = excluded.key_person
),
vs AS (
    SELECT * FROM unnest($20::text[], $21::text[], $22::date[], $23::date[], $24::text[],
                         $25::text[], $26::text[], $27::date[], $28::date[], $29::date[],
                         $30::bool[], $31::bool[])
        AS s(family_id, role, valid_from, valid_to, village_code, contact_id, contact_name,
             last_visit_on, last_home_on, due_on, key_person, urgent)
    WHERE family_id IN (SELECT family_id FROM cf)
),
vs_del AS (
    DELETE FROM visit_schedule o
    WHERE o.family_id = ANY($8::text[]) AND o.family_id IN (SELECT family_id FROM cf)
      AND NOT EXISTS (SELECT 1 FROM vs WHERE vs.family_id = o.family_id AND vs.role = o.role
                                         AND vs.valid_from = o.valid_from)
),
vs_up AS (
    INSERT INTO visit_schedule (family_id, role, valid_from, valid_to, village_code, contact_id,
                                contact_name, last_visit_on, last_home_on, due_on, key_person,
                                urgent)
    SELECT * FROM vs
    WHERE NOT EXISTS (SELECT 1 FROM visit_schedule o
                      WHERE o.family_id = vs.family_id AND o.role = vs.role
                        AND o.valid_from = vs.valid_from AND o.valid_to = vs.valid_to
                        AND o.village_code = vs.village_code AND o.contact_id = vs.contact_id
                        AND o.contact_name = vs.contact_name
                        AND o.last_visit_on IS NOT DISTINCT FROM vs.last_visit_on
                        AND o.last_home_on IS NOT DISTINCT FROM vs.last_home_on
                        AND o.due_on = vs.due_on AND o.key_person = vs.key_person
                        AND o.urgent = vs.urgent)
    ORDER BY 1, 2, 3
    ON CONFLICT (family_id, role, valid_from) DO UPDATE SET valid_to = excluded.valid_to,
        village_code = excluded.village_code, contact_id = excluded.contact_id,
        contact_name = excluded.contact_name, last_visit_on = excluded.last_visit_on,
        last_home_on = excluded.last_home_on, due_on = excluded.due_on,
        key_person = excluded.key_person, urgent = excluded.urgent
),
al AS (
    INSERT INTO access_log (id, user_id, family_id, endpoint, at, request_id)
    SELECT * FROM unnest($32::text[], $33::text[], $34::text[], $35::text[],
                         $36::timestamptz[], $37::text[])
)
"#;

/// The statement for a batch, with or without new person keys (two fixed
/// texts: each connection prepares and plans each once).
fn statement(with_keys: bool) -> &'static str {
    static PLAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH {}SELECT false AS lost, aggregate_id AS id FROM ev\n",
            BODY.trim_start().replace("{LOST_FILTER}", "")
        )
    });
    static WITH_KEYS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH {KEYS}{}SELECT false AS lost, aggregate_id AS id FROM ev\n\
             UNION ALL SELECT true, a FROM lost\n",
            BODY.trim_start().replace(
                "{LOST_FILTER}",
                "      AND e.a NOT IN (SELECT a FROM lost)\n"
            )
        )
    });
    if with_keys {
        &WITH_KEYS
    } else {
        &PLAIN
    }
}

/// The events' columns.
#[derive(Default)]
struct EventColumns {
    aggregate_type: Vec<&'static str>,
    aggregate_id: Vec<String>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<String>,
    payload: Vec<Value>,
    metadata: Vec<Value>,
    event_id: Vec<uuid::Uuid>,
}

/// The case-file rows' columns (`state`: NULL where no snapshot is due).
#[derive(Default)]
struct CaseFileColumns {
    family_id: Vec<String>,
    version: Vec<i64>,
    village_code: Vec<String>,
    status: Vec<&'static str>,
    village_contact_name: Vec<Option<String>>,
    township_contact_name: Vec<Option<String>>,
    state: Vec<Option<String>>,
    head_hash: Vec<Option<String>>,
    policy_version: Vec<i64>,
}

#[derive(Default)]
struct PeriodColumns {
    family_id: Vec<String>,
    valid_from: Vec<NaiveDate>,
    valid_to: Vec<NaiveDate>,
    key_person: Vec<bool>,
}

#[derive(Default)]
struct ScheduleColumns {
    family_id: Vec<String>,
    role: Vec<&'static str>,
    valid_from: Vec<NaiveDate>,
    valid_to: Vec<NaiveDate>,
    village_code: Vec<String>,
    contact_id: Vec<String>,
    contact_name: Vec<String>,
    last_visit_on: Vec<Option<NaiveDate>>,
    last_home_on: Vec<Option<NaiveDate>>,
    due_on: Vec<NaiveDate>,
    key_person: Vec<bool>,
    urgent: Vec<bool>,
}

#[derive(Default)]
struct AccessColumns {
    id: Vec<String>,
    user_id: Vec<String>,
    family_id: Vec<String>,
    endpoint: Vec<String>,
    at: Vec<DateTime<Utc>>,
    request_id: Vec<String>,
}

/// The new person keys' columns, each with the stream of the event sealed
/// with it.
#[derive(Default)]
struct KeyColumns {
    subject: Vec<String>,
    kind: Vec<&'static str>,
    family: Vec<Option<String>>,
    wrapped: Vec<Vec<u8>>,
    master_key_id: Vec<String>,
    stream: Vec<String>,
}

/// Column arrays, one `Vec` per bound parameter.
#[derive(Default)]
struct Columns {
    pk: KeyColumns,
    ev: EventColumns,
    cf: CaseFileColumns,
    kp: PeriodColumns,
    vs: ScheduleColumns,
    al: AccessColumns,
}

impl Columns {
    fn event(&mut self, e: &NewEvent) {
        let c = &mut self.ev;
        c.aggregate_type.push(e.aggregate_type);
        c.aggregate_id.push(e.aggregate_id.clone());
        c.sequence.push(e.sequence as i64);
        c.event_type.push(e.event_type.clone());
        c.event_version.push(e.event_version.clone());
        c.payload.push(e.payload.clone());
        c.metadata.push(e.metadata.clone());
        c.event_id.push(e.event_id);
    }

    fn family(&mut self, f: &FamilyRows) {
        let id = f.family_id.to_string();
        let c = &mut self.cf;
        c.family_id.push(id.clone());
        c.version.push(f.version as i64);
        c.village_code.push(f.village_code.clone());
        c.status.push(f.status);
        c.village_contact_name.push(f.village_contact_name.clone());
        c.township_contact_name
            .push(f.township_contact_name.clone());
        c.state.push(
            f.write_snapshot
                .then(|| serde_json::to_string(&f.state).unwrap_or_else(|_| "{}".into())),
        );
        c.head_hash.push(f.head_hash.clone());
        c.policy_version.push(f.policy_version);
        for p in &f.key_periods {
            let k = &mut self.kp;
            k.family_id.push(id.clone());
            k.valid_from.push(p.valid_from);
            k.valid_to.push(p.valid_to);
            k.key_person.push(p.key_person);
        }
        for r in &f.schedule {
            let v = &mut self.vs;
            v.family_id.push(id.clone());
            v.role.push(r.role.as_str());
            v.valid_from.push(r.valid_from);
            v.valid_to.push(r.valid_to);
            v.village_code.push(r.village_code.clone());
            v.contact_id.push(r.contact_id.to_string());
            v.contact_name.push(r.contact_name.clone());
            v.last_visit_on.push(r.last_visit_on);
            v.last_home_on.push(r.last_home_on);
            v.due_on.push(r.due_on);
            v.key_person.push(r.key_person);
            v.urgent.push(r.urgent);
        }
    }

    fn key(&mut self, k: &NewKey, stream: &str) {
        let c = &mut self.pk;
        c.subject.push(k.subject.to_string());
        c.kind.push(k.kind);
        c.family.push(k.family.map(|f| f.to_string()));
        c.wrapped.push(k.wrapped.clone());
        c.master_key_id.push(k.master_key_id.clone());
        c.stream.push(stream.to_owned());
    }

    fn access(&mut self, r: &AccessRecord) {
        let a = &mut self.al;
        a.id.push(r.id.to_string());
        a.user_id.push(r.user_id.to_string());
        a.family_id.push(r.family_id.to_string());
        a.endpoint.push(r.endpoint.clone());
        a.at.push(r.at);
        a.request_id.push(r.request_id.clone());
    }
}

/// Writes a batch in one statement (see the module docs); returns the
/// streams whose event was appended, and those whose new key lost.
/// `rows` are the read-model rows of the batch's families (written only
/// for those whose event went in); `keys`, the new person keys, each with
/// the stream of the event sealed with it (which goes in only if all its
/// keys do: a subject's first stored key wins).
pub async fn write(
    pool: &PgPool,
    events: &[&NewEvent],
    rows: &[&FamilyRows],
    access: &[&AccessRecord],
    keys: &[(&NewKey, &str)],
) -> Result<Written, sqlx::Error> {
    let mut c = Columns::default();
    events.iter().for_each(|e| c.event(e));
    rows.iter().for_each(|f| c.family(f));
    access.iter().for_each(|r| c.access(r));
    keys.iter().for_each(|(k, stream)| c.key(k, stream));
    let Columns {
        pk,
        ev,
        cf,
        kp,
        vs,
        al,
    } = c;
    let query = sqlx::query_as(statement(!pk.subject.is_empty()))
        .bind(ev.aggregate_type)
        .bind(ev.aggregate_id)
        .bind(ev.sequence)
        .bind(ev.event_type)
        .bind(ev.event_version)
        .bind(ev.payload)
        .bind(ev.metadata)
        .bind(cf.family_id)
        .bind(cf.version)
        .bind(cf.village_code)
        .bind(cf.status)
        .bind(cf.village_contact_name)
        .bind(cf.township_contact_name)
        .bind(cf.state)
        .bind(cf.head_hash)
        .bind(kp.family_id)
        .bind(kp.valid_from)
        .bind(kp.valid_to)
        .bind(kp.key_person)
        .bind(vs.family_id)
        .bind(vs.role)
        .bind(vs.valid_from)
        .bind(vs.valid_to)
        .bind(vs.village_code)
        .bind(vs.contact_id)
        .bind(vs.contact_name)
        .bind(vs.last_visit_on)
        .bind(vs.last_home_on)
        .bind(vs.due_on)
        .bind(vs.key_person)
        .bind(vs.urgent)
        .bind(al.id)
        .bind(al.user_id)
        .bind(al.family_id)
        .bind(al.endpoint)
        .bind(al.at)
        .bind(al.request_id)
        .bind(ev.event_id)
        .bind(cf.policy_version);
    let query = if pk.subject.is_empty() {
        query
    } else {
        query
            .bind(pk.subject)
            .bind(pk.kind)
            .bind(pk.family)
            .bind(pk.wrapped)
            .bind(pk.master_key_id)
            .bind(pk.stream)
            .bind(super::person_keys::created_at())
    };
    let ids: Vec<(bool, String)> = query.fetch_all(pool).await?;
    let mut written = Written::default();
    for (lost, id) in ids {
        if lost {
            written.key_lost.insert(id);
        } else {
            written.events.insert(id);
        }
    }
    Ok(written)
}
