//! A seeded generator of synthetic families, written straight into the
//! event store in bulk — for benchmarks and load tests, never for real data
//! (`nuanxin-bench`; `nuanxin demo` records its county through the command
//! path instead, [`crate::demo`], with the helpers here).
//!
//! Every event is produced by the real aggregate (`decide` then `evolve`),
//! so the log is one the server could have written: valid, attributed and
//! hash-chained. Village codes look like Guangxi's (province 45, cities
//! 01–14); parents are born 1938–1966, so with living-alone and
//! semi-dependent parents about 30% of families are key families; most have
//! both contacts and a history of visits.

use std::collections::HashMap;

use chrono::{Days, NaiveDate, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::audit;
use crate::store::{self, events::NewEvent};
use crate::{Db, ExecError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub families: usize,
    pub seed: u64,
    /// The generator's "today": no action is dated after it.
    pub today: NaiveDate,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub families: u64,
    pub events: u64,
    pub seconds: f64,
}

/// Families per insert transaction.
const FAMILIES_PER_TX: usize = 500;

/// A random (seeded) UUID.
pub fn uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

/// A day between `from` and `to` (both included).
pub fn day(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0) as u64;
    from.checked_add_days(Days::new(rng.gen_range(0..=span)))
        .unwrap_or(from)
}

/// A deterministic village code: about nine families per village.
fn village_code(rng: &mut StdRng, families: usize) -> String {
    let villages = (families / 9).max(1);
    let v = rng.gen_range(0..villages);
    let city = 1 + v % 14;
    let county = 1 + (v / 14) % 12;
    let township = 1 + (v / 168) % 20;
    let village = 1 + (v / 3360) % 999;
    format!("45{city:02}{county:02}{township:03}{village:03}")
}

/// The contact persons of a place: a few per township or village, so one
/// contact's list holds tens of families.
struct Contacts {
    by_place: HashMap<String, Vec<ContactPerson>>,
}

impl Contacts {
    fn pick(&mut self, rng: &mut StdRng, place: &str) -> ContactPerson {
        let people = self.by_place.entry(place.to_owned()).or_default();
        if people.is_empty() || (people.len() < 3 && rng.gen_bool(0.2)) {
            let n = people.len() + 1;
            people.push(ContactPerson {
                id: uuid(rng),
                name: format!("联系人{place}-{n}"),
                phone: Phone::parse(&format!("139{:08}", rng.gen_range(0..100_000_000u32)))
                    .expect("generated phone is valid"),
            });
        }
        people[rng.gen_range(0..people.len())].clone()
    }
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("generated text is valid")
}

/// The commands of one synthetic family, in order.
fn family_commands(rng: &mut StdRng, spec: &Spec, contacts: &mut Contacts) -> Vec<FamilyCommand> {
    let code = village_code(rng, spec.families);
    let registered_on = day(
        rng,
        NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
        spec.today
            .checked_sub_days(Days::new(90))
            .unwrap_or(spec.today),
    );
    let born = |rng: &mut StdRng| {
        day(
            rng,
            NaiveDate::from_ymd_opt(1938, 1, 1).expect("date"),
            NaiveDate::from_ymd_opt(1966, 12, 31).expect("date"),
        )
    };
    let mut members = Vec::new();
    for sex in [Sex::Male, Sex::Female] {
        let self_care = match rng.gen_range(0..100) {
            0..=7 => SelfCare::SemiDependent,
            8..=10 => SelfCare::Dependent,
            _ => SelfCare::Independent,
        };
        members.push(Member {
            id: uuid(rng),
            name: format!("成员{}", rng.gen_range(1000..9999)),
            sex,
            birth_date: born(rng),
            id_number: None,
            phone: None,
            living_alone: rng.gen_bool(0.04),
            self_care,
        });
    }
    let mut out = vec![FamilyCommand::RegisterFamily {
        action_id: uuid(rng),
        category: if rng.gen_bool(0.6) {
            Category::Bereaved
        } else {
            Category::DisabledChild
        },
        village_code: VillageCode::parse(&code).expect("generated code is valid"),
        address: text("合成地址"),
        registered_on,
        members,
    }];
    for (role, place, share) in [
        (Role::Village, code.clone(), 0.95),
        (Role::Township, code[..9].to_owned(), 0.9),
    ] {
        if !rng.gen_bool(share) {
            continue;
        }
        let assigned_on = day(rng, registered_on, registered_on + Days::new(30));
        out.push(FamilyCommand::AssignContact {
            action_id: uuid(rng),
            role,
            person: contacts.pick(rng, &place),
            assigned_on,
        });
        let mut on = assigned_on;
        // Visits roughly every month or quarter, some skipped, up to today.
        let step = if role == Role::Village {
            25..45
        } else {
            60..110
        };
        loop {
            on = on + Days::new(rng.gen_range(step.clone()));
            if on > spec.today {
                break;
            }
            if rng.gen_bool(0.15) {
                continue;
            }
            let mode = match (role, rng.gen_range(0..10)) {
                (Role::Township, 0..=7) | (Role::Village, 0..=3) => VisitMode::Home,
                (Role::Township, _) => VisitMode::Holiday,
                (_, 4..=7) => VisitMode::Phone,
                _ => VisitMode::Video,
            };
            out.push(FamilyCommand::RecordVisit {
                action_id: uuid(rng),
                role,
                mode,
                visited_on: on,
                findings: text("情况稳定"),
                needs: vec![],
            });
        }
    }
    if rng.gen_bool(0.1) {
        out.push(FamilyCommand::RecordAssistance {
            action_id: uuid(rng),
            area: AssistanceArea::LivingSupport,
            amount_fen: Some(AmountFen::new(rng.gen_range(10_000..200_000)).expect("amount")),
            provided_on: day(rng, registered_on, spec.today),
            description: text("节日慰问金"),
        });
    }
    out
}

/// Writes `spec.families` synthetic families into `db`. `progress` is
/// called with (families done, families total).
pub async fn generate(
    core: &crate::Core,
    spec: &Spec,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Generated, ExecError> {
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut contacts = Contacts {
        by_place: HashMap::new(),
    };
    let recorder = Recorder {
        id: Uuid::from_u128(0x6e75_616e_7869_6e00_0000_0000_0000_0001),
        name: "generator".into(),
        role: UserRole::Caseworker,
    };
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    let mut report = Generated::default();
    let db = core.db();
    let mut pending: Vec<(Uuid, Vec<SerializedEvent>)> = Vec::new();
    for i in 0..spec.families {
        let family_id = uuid(&mut rng);
        let mut case = FamilyCase::default();
        let mut events = Vec::new();
        for command in family_commands(&mut rng, spec, &mut contacts) {
            let event = case.decide(command, spec.today, offset)?;
            case.apply(event.clone());
            events.push(event);
        }
        let serialized: Vec<SerializedEvent> = events
            .iter()
            .enumerate()
            .map(|(n, event)| {
                let metadata = EventMetadata {
                    recorded_by: recorder.clone(),
                    recorded_at: Utc::now(),
                    request_id: "generator".into(),
                    idempotency_key: None,
                    request_hash: None,
                };
                SerializedEvent::new(
                    family_id.to_string(),
                    n + 1,
                    FamilyCase::TYPE.into(),
                    event.event_type(),
                    event.event_version(),
                    serde_json::to_value(event).unwrap_or_default(),
                    serde_json::to_value(metadata.to_map()).unwrap_or_default(),
                )
            })
            .collect();
        report.events += serialized.len() as u64;
        report.families += 1;
        pending.push((family_id, serialized));
        if (i + 1) % FAMILIES_PER_TX == 0 || i + 1 == spec.families {
            let sealed = seal_batch(core, &mut pending).await?;
            insert(db, &sealed).await?;
            pending.clear();
            progress(report.families, spec.families as u64);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The events of `families` with their personal fields sealed (the keys
/// of the whole batch made in one statement) and chained, as the command
/// path stores them.
async fn seal_batch(
    core: &crate::Core,
    families: &mut [(Uuid, Vec<SerializedEvent>)],
) -> Result<Vec<SerializedEvent>, ExecError> {
    let keyring = core.keyring();
    let subjects: Vec<crate::privacy::Subject> = families
        .iter()
        .flat_map(|(id, events)| {
            events
                .iter()
                .flat_map(|e| crate::privacy::subjects_of(*id, &e.payload))
        })
        .collect();
    let keys = keyring
        .keys_for(core.db(), &subjects)
        .await
        .map_err(|e| ExecError::Store(Box::new(e)))?;
    let mut out = Vec::new();
    for (id, events) in families.iter_mut() {
        for e in events.iter_mut() {
            keyring.seal_event(*id, &mut e.payload, &keys);
        }
        out.extend(audit::seal(events, String::new()).map_err(|e| ExecError::Store(Box::new(e)))?);
    }
    Ok(out)
}

/// Appends sealed events in one transaction, through the store's append.
async fn insert(db: &Db, events: &[SerializedEvent]) -> Result<(), sqlx::Error> {
    let new: Vec<NewEvent> = events
        .iter()
        .map(|e| NewEvent::from_sealed(FamilyCase::TYPE, e.clone()))
        .collect();
    let refs: Vec<&NewEvent> = new.iter().collect();
    let mut tx = db.begin().await?;
    store::events::append(&mut tx, &refs).await?;
    tx.commit().await
}

/// How many families the store holds (case files).
pub async fn family_count(db: &Db) -> Result<i64, sqlx::Error> {
    crate::on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM case_files").fetch_one(pool).await)
}

/// How many events the store holds.
pub async fn event_count(db: &Db) -> Result<i64, sqlx::Error> {
    crate::on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(pool).await)
}
