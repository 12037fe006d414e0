//! The period report counted from the cached per-family facts
//! (`reports::summary`) equals the report folded from the log
//! (`reports::summary_by_fold`, the reference), on both stores: on a demo
//! county recorded through the command path in two halves, with transfers,
//! late-recorded visits, voids, closings and reopenings added; for many
//! periods, every level of jurisdiction and instants that cut the families'
//! streams anywhere. The cache is filled from the whole log first, then
//! brought up to date stream by stream.

mod common;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use common::{drop_database, postgres_database};
use nuanxin_domain::commands::FamilyCommand;
use nuanxin_domain::values::{Scope, Text, VillageCode};
use nuanxin_domain::{Role, VisitMode};
use nuanxin_infra::commands::CommandRequest;
use nuanxin_infra::demo::{self, DemoSpec};
use nuanxin_infra::{reports, DatabaseUrl, Nuanxin, Settings};
use uuid::Uuid;

async fn open(url: &str) -> Nuanxin {
    let mut settings = Settings::new(DatabaseUrl::parse(url).expect("url"));
    settings.master_key = nuanxin_infra::privacy::MasterKeySource::Ephemeral;
    let app = Nuanxin::open(&settings).await.expect("open the store");
    app.projector
        .follow_stored_policy()
        .await
        .expect("policy in force");
    app
}

/// The instants at which the report is compared: now, and the quantiles
/// of the family events' recording times (so streams are cut anywhere).
async fn instants(app: &Nuanxin) -> Vec<DateTime<Utc>> {
    let sql = match app.db() {
        nuanxin_infra::Db::Sqlite(_) => {
            "SELECT json_extract(metadata, '$.recorded_at') FROM events"
        }
        nuanxin_infra::Db::Postgres(_) => "SELECT metadata ->> 'recorded_at' FROM events",
    };
    let mut at: Vec<DateTime<Utc>> = nuanxin_infra::on_pool!(app.db(), pool => {
        sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await
    })
    .expect("recording times")
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect();
    at.sort();
    let mut out: Vec<DateTime<Utc>> = [5, 50, 95]
        .iter()
        .map(|q| at[(at.len() - 1) * q / 100])
        .collect();
    out.push(Utc::now());
    out
}

/// Periods: the last year, quarters, a month, a day, odd spans.
fn periods(today: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let ago = |n: u64| today.checked_sub_days(Days::new(n)).expect("date");
    let year_start = NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("date");
    vec![
        (ago(365), today),
        (year_start, today),
        (ago(730), ago(366)),
        (ago(90), today),
        (ago(180), ago(91)),
        (ago(30), ago(1)),
        (ago(45), ago(45)),
        (ago(500), ago(7)),
        (ago(3), today + Days::new(40)),
    ]
}

/// Transfers, late-recorded visits, voids, closings and reopenings for
/// some families (refused commands — a date before an assignment, say —
/// are skipped; the test asserts that enough went through).
async fn stir(app: &Nuanxin, county: &demo::County, today: NaiveDate) -> usize {
    let ago = |n: u64| today.checked_sub_days(Days::new(n)).expect("date");
    let text = |s: &str| Text::parse(s).expect("text");
    let villages: Vec<&str> = county
        .townships
        .iter()
        .flat_map(|t| t.villages.iter().map(|v| v.code.as_str()))
        .collect();
    let mut done = 0;
    for (i, family) in county.families.iter().enumerate().take(120) {
        let req = CommandRequest {
            family_id: family.id,
            recorder: demo::recorder(),
            scope: Scope::parse(&county.code).expect("scope"),
            request_id: format!("stir-{i}"),
            expected_version: None,
            idempotency_key: None,
            request_hash: None,
        };
        let visit = family.commands.iter().find_map(|(_, c)| match c {
            FamilyCommand::RecordVisit { action_id, .. } => Some(*action_id),
            _ => None,
        });
        let commands = match i % 6 {
            0 => vec![FamilyCommand::Transfer {
                action_id: Uuid::new_v4(),
                village_code: VillageCode::parse(villages[(i * 7) % villages.len()]).expect("code"),
                transferred_on: ago(20 + i as u64),
                reason: text("搬迁"),
            }],
            1 => vec![FamilyCommand::RecordVisit {
                action_id: Uuid::new_v4(),
                role: Role::Village,
                mode: VisitMode::Home,
                visited_on: ago(100 + i as u64),
                findings: text("补录"),
                needs: vec![],
            }],
            2 => visit
                .map(|v| FamilyCommand::VoidAction {
                    action_id: Uuid::new_v4(),
                    voided_action_id: v,
                    reason: text("录入错误"),
                })
                .into_iter()
                .collect(),
            3 => vec![
                FamilyCommand::CloseCase {
                    action_id: Uuid::new_v4(),
                    on: ago(60),
                    reason: text("迁出"),
                },
                FamilyCommand::ReopenCase {
                    action_id: Uuid::new_v4(),
                    on: ago(10),
                    reason: text("迁回"),
                },
            ],
            _ => vec![FamilyCommand::RecordVisit {
                action_id: Uuid::new_v4(),
                role: Role::Township,
                mode: VisitMode::Phone,
                visited_on: ago(2),
                findings: text("电话"),
                needs: vec![],
            }],
        };
        for command in commands {
            if app.commands.execute(command, &req).await.is_ok() {
                done += 1;
            }
        }
    }
    done
}

/// Compares the two ways for every instant, period and level.
async fn compare(app: &Nuanxin, county: &demo::County, today: NaiveDate) {
    let township = &county.townships[0];
    let prefixes = [
        String::new(),
        county.code[..4].to_owned(),
        county.code.clone(),
        township.code.clone(),
        township.villages[0].code.clone(),
    ];
    let mut compared = 0;
    for known_at in instants(app).await {
        for (from, to) in periods(today) {
            for prefix in &prefixes {
                let fast = reports::summary(&app.core, prefix, from, to, known_at)
                    .await
                    .expect("report");
                let fold = reports::summary_by_fold(&app.core, prefix, from, to, known_at)
                    .await
                    .expect("reference report");
                assert_eq!(
                    fast, fold,
                    "prefix {prefix:?}, {from}..={to}, known at {known_at}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 4 * 9 * 5);
}

async fn facts_equal_the_fold(url: &str) {
    let app = open(url).await;
    let today = app.core.today();
    let spec = DemoSpec {
        families: 240,
        seed: 11,
        today,
        offset: app.core.services().offset,
    };
    let county = demo::families(&spec);
    let (first, second) = county.families.split_at(county.families.len() / 2);
    demo::record(&app, first.to_vec(), today, |_| {})
        .await
        .expect("first half");
    compare(&app, &county, today).await;
    let held = app.core.report_cache().held();
    let (folded, held) = (held.folded, held.families);
    assert_eq!(held, first.len(), "every recorded family is cached");
    assert!(folded * 10 < held, "most families are counted from facts");

    demo::record(&app, second.to_vec(), today, |_| {})
        .await
        .expect("second half");
    let stirred = stir(&app, &county, today).await;
    assert!(stirred >= 60, "only {stirred} extra actions went through");
    compare(&app, &county, today).await;
    let held = app.core.report_cache().held();
    let (folded, held) = (held.folded, held.families);
    assert_eq!(held, county.families.len());
    assert!(folded * 10 < held, "{folded} of {held} folded");

    // One more visit: one bucket of family ids moved, only it is read
    // again, and the report sees the visit at once.
    let year = (today - Days::new(365), today);
    let visits =
        |r: &nuanxin_projections::summary::SummaryReport| r.rows.last().expect("total row").visits;
    let before = reports::summary(&app.core, "", year.0, year.1, Utc::now())
        .await
        .expect("report");
    let mut recorded = false;
    'families: for family in &county.families {
        let req = CommandRequest {
            family_id: family.id,
            recorder: demo::recorder(),
            scope: Scope::parse(&county.code).expect("scope"),
            request_id: "one-more".into(),
            expected_version: None,
            idempotency_key: None,
            request_hash: None,
        };
        for role in [Role::Village, Role::Township] {
            let visit = FamilyCommand::RecordVisit {
                action_id: Uuid::new_v4(),
                role,
                mode: VisitMode::Phone,
                visited_on: today,
                findings: Text::parse("再访").expect("text"),
                needs: vec![],
            };
            if app.commands.execute(visit, &req).await.is_ok() {
                recorded = true;
                break 'families;
            }
        }
    }
    assert!(recorded, "some family takes one more visit");
    let after = reports::summary(&app.core, "", year.0, year.1, Utc::now())
        .await
        .expect("report");
    assert_eq!(visits(&after), visits(&before) + 1);
    let fold = reports::summary_by_fold(&app.core, "", year.0, year.1, after.known_at)
        .await
        .expect("reference report");
    assert_eq!(after, fold);
    app.db().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_facts_equal_the_fold_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("facts.db").display());
    facts_equal_the_fold(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_facts_equal_the_fold_postgres() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    facts_equal_the_fold(&url).await;
    drop_database(&admin, &url).await;
}
