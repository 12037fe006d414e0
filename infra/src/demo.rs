//! `nuanxin demo`: a made-up county of Guangxi, recorded into an EMPTY
//! store through the real command path so that a new user sees a living
//! system — case files with two years of visits, an overdue list, alerts,
//! a dashboard and reports — a minute after installing.
//!
//! Everything is invented: township and village names are drawn from
//! syllables, people's names from common surnames and given-name
//! characters, there are no ID numbers, and every phone number starts with
//! `000` (no such number exists). The county code is [`COUNTY`].
//!
//! [`families`] draws the families (seeded, so a seed always gives the same
//! county) as the commands a caseworker would have sent, in the order of
//! the days they happened; each command is checked by the aggregate as it
//! is drawn, so the command path accepts every one. [`record`] sends them
//! through [`Commands::execute`](crate::Commands::execute) — read models,
//! hash chains and idempotency exactly as in real use — several families at
//! once so that the group commit shares the commits; a family's own
//! commands go one after another. The actions of the last weeks are
//! recorded day by day, each day after that morning's alert scan, so alerts
//! have been raised, escalated and resolved as a running server would have
//! done it.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Days, FixedOffset, NaiveDate, TimeZone};
use futures::StreamExt;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::metadata::Recorder;
use nuanxin_domain::{
    AmountFen, AssistanceArea, Category, ElderlyCareService, FamilyCommand, Phone, Role, Scope,
    SelfCare, Sex, Text, UserRole, VillageCode, VisitMode,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::alerts::{self, ScanMode, ScanReport};
use crate::commands::{CommandRequest, ExecError};
use crate::generate::{day, uuid};
use crate::Nuanxin;

/// The demo county's code (a county of Guilin, Guangxi); its townships are
/// `COUNTY` + `1xx`, their villages + `2xx`.
pub const COUNTY: &str = "450329";

/// The families the demo records unless told otherwise.
pub const DEFAULT_FAMILIES: usize = 2000;

/// Families recorded at once: enough for the group commit to share its
/// commits among many, few enough to keep the pool's connections free.
const IN_FLIGHT: usize = 32;

/// Days of history the visits cover: the first township started using
/// Nuanxin this long ago, the others one after another until
/// [`LAST_START_DAYS`] ago.
const HISTORY_DAYS: u64 = 730;
const LAST_START_DAYS: u64 = 120;

/// Days before today from which key families are visited as often as the
/// policy asks (earlier, monthly like the others: old periods show late
/// visits in the reports, as real registers do).
const KEY_CADENCE_DAYS: u64 = 90;

/// Days of daily alert scans [`record`] runs, ending today.
pub const SCAN_DAYS: u64 = 35;

/// What to draw.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub families: usize,
    pub seed: u64,
    /// No action is dated after it.
    pub today: NaiveDate,
    /// The local offset (to date an emergency's instant).
    pub offset: FixedOffset,
}

/// A village of the county.
#[derive(Debug, Clone)]
pub struct Village {
    pub code: String,
    pub name: String,
}

/// A township and its villages.
#[derive(Debug, Clone)]
pub struct Township {
    pub code: String,
    pub name: String,
    pub villages: Vec<Village>,
}

/// One family: its id and the commands that record it, in order, each
/// with the day it happened.
#[derive(Debug, Clone)]
pub struct DemoFamily {
    pub id: Uuid,
    pub commands: Vec<(NaiveDate, FamilyCommand)>,
}

/// The county drawn by [`families`].
#[derive(Debug, Clone)]
pub struct County {
    pub code: String,
    pub townships: Vec<Township>,
    pub families: Vec<DemoFamily>,
}

impl County {
    pub fn commands(&self) -> usize {
        self.families.iter().map(|f| f.commands.len()).sum()
    }

    pub fn villages(&self) -> usize {
        self.townships.iter().map(|t| t.villages.len()).sum()
    }
}

/// Who the demo's events are recorded by: not a user of the store, so a
/// case's history says plainly that the demo wrote it.
pub fn recorder() -> Recorder {
    Recorder {
        id: Uuid::from_u128(0x6e75_616e_7869_6e00_0000_0000_0000_0de0),
        name: "演示数据".into(),
        role: UserRole::Caseworker,
    }
}

const SURNAMES: &[&str] = &[
    "韦", "黄", "李", "覃", "蒙", "陆", "梁", "莫", "蓝", "廖", "潘", "罗", "陈", "刘", "周", "谭",
    "杨", "吴", "卢", "农", "赵", "张", "王", "唐", "石", "邓", "何", "苏", "林", "凌",
];
const MALE: &[&str] = &[
    "建", "国", "明", "华", "文", "志", "军", "德", "福", "永", "忠", "世", "光", "庆", "伟", "海",
    "成", "林", "贵", "荣", "强", "平", "祥", "保", "春", "进", "金", "有", "宝", "东",
];
const FEMALE: &[&str] = &[
    "秀", "英", "兰", "珍", "美", "玉", "桂", "芳", "凤", "梅", "丽", "春", "红", "金", "月", "琴",
    "群", "燕", "菊", "花", "莲", "霞", "萍", "娟", "香", "翠", "爱", "妹", "姣", "銮",
];
const PLACE_FIRST: &[&str] = &[
    "那", "板", "六", "百", "岜", "古", "龙", "平", "东", "西", "南", "北", "金", "石", "大", "新",
    "三", "长", "高", "黄", "桥", "江", "民", "安", "和", "福", "仁", "上", "弄", "伏",
];
const PLACE_SECOND: &[&str] = &[
    "坡", "洞", "岭", "江", "山", "塘", "坪", "隆", "安", "宁", "和", "林", "圩", "头", "甲", "陂",
    "排", "冲", "湾", "桥", "水", "田", "河", "峒", "凤", "兴", "合", "乐", "良", "丰",
];
const VILLAGE_FINDINGS: &[&str] = &[
    "老人身体状况稳定，生活能自理。",
    "血压偏高，已提醒按时服药。",
    "家中整洁，粮油充足。",
    "情绪有些低落，陪同聊天近一小时。",
    "反映屋顶漏雨，已报村委会安排修缮。",
    "近期住院治疗，已出院在家休养。",
    "帮助老人到卫生室取药。",
    "协助办理医保报销材料。",
    "天气转冷，提醒添衣保暖并检查用电安全。",
    "老人在菜园劳动，精神状态良好。",
];
const CALL_FINDINGS: &[&str] = &[
    "电话询问近况，一切正常。",
    "电话联系，老人说腿脚不便，下周上门看望。",
    "视频通话，老人精神尚好。",
    "电话提醒按时服药、注意防暑。",
];
const TOWNSHIP_FINDINGS: &[&str] = &[
    "与村级联系人一同入户，了解生活和就医情况。",
    "入户核实家庭信息，情况无变化。",
    "了解扶助金发放情况，已按时到账。",
    "老人反映看病报销难，已联系镇卫生院协助。",
    "节日慰问，送去米、油和慰问金。",
];
const NEEDS: &[&str] = &["大病医疗", "生活照料", "心理慰藉", "修缮房屋", "陪同就医"];
const NOTES: &[&str] = &[
    "清明节前协助老人祭扫子女墓地，村里安排了车辆。",
    "老人希望参加暖心家园活动，已登记。",
    "家中电视坏了，村委会联系维修。",
    "老人的侄子每周来看望一次。",
];
const RELATIONS: &[&str] = &["侄子", "侄女", "外甥", "外甥女", "邻居", "堂弟", "村医"];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("demo text is valid")
}

/// A made-up phone number: `000` and eight digits, a number no one has.
fn phone(rng: &mut StdRng) -> Phone {
    Phone::parse(&format!("000{:08}", rng.gen_range(0..100_000_000u32)))
        .expect("demo phone is valid")
}

fn person_name(rng: &mut StdRng, sex: Sex) -> String {
    let given = if sex == Sex::Male { MALE } else { FEMALE };
    let mut name = pick(rng, SURNAMES).to_owned();
    name.push_str(pick(rng, given));
    if rng.gen_bool(0.7) {
        name.push_str(pick(rng, given));
    }
    name
}

/// A place name not `taken` yet: two syllables, or three once two rarely
/// give a new one (a large county has more villages than there are pairs).
fn place_name(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    let mut tries = 0;
    loop {
        let mut name = format!("{}{}", pick(rng, PLACE_FIRST), pick(rng, PLACE_SECOND));
        if tries >= 50 {
            name.push_str(pick(rng, PLACE_SECOND));
        }
        if taken.insert(name.clone()) {
            return name;
        }
        tries += 1;
    }
}

fn add_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

fn sub_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).unwrap_or(d)
}

/// How a contact keeps to the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diligence {
    Good,
    Lax,
}

/// A contact person, with their habits.
#[derive(Debug, Clone)]
struct Contact {
    person: ContactPerson,
    diligence: Diligence,
    /// The day they stopped visiting (still assigned): their families
    /// become overdue and their alerts escalate.
    stopped_on: Option<NaiveDate>,
}

impl Contact {
    fn new(rng: &mut StdRng, today: NaiveDate) -> Self {
        let sex = if rng.gen_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        Contact {
            person: ContactPerson {
                id: uuid(rng),
                name: person_name(rng, sex),
                phone: phone(rng),
            },
            diligence: if rng.gen_bool(0.8) {
                Diligence::Good
            } else {
                Diligence::Lax
            },
            stopped_on: rng
                .gen_bool(0.06)
                .then(|| sub_days(today, rng.gen_range(15..90))),
        }
    }
}

/// The village post's holders over time.
#[derive(Debug, Clone)]
struct VillagePost {
    first: Contact,
    /// A new cadre from this day on.
    second: Option<(NaiveDate, Contact)>,
    /// The post left empty from this day on (the cadre moved away).
    released_on: Option<NaiveDate>,
}

struct Place {
    township: usize,
    village: usize,
    post: VillagePost,
    /// Index into the township's contacts.
    township_contact: usize,
}

/// Draws the county and its families.
pub fn families(spec: &DemoSpec) -> County {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let today = spec.today;
    let start = sub_days(today, HISTORY_DAYS);
    let n_townships = (spec.families / 170).clamp(2, 30);
    let per_township = (spec.families / n_townships / 12).clamp(1, 40);
    let mut taken = HashSet::new();
    let mut townships = Vec::new();
    let mut places = Vec::new();
    let mut township_contacts = Vec::new();
    let mut live_from = Vec::new();
    for t in 0..n_townships {
        let step = (HISTORY_DAYS - LAST_START_DAYS) * t as u64 / (n_townships as u64 - 1).max(1);
        let live = add_days(start, step);
        live_from.push(live);
        let code = format!("{COUNTY}{:03}", 101 + t);
        let name = format!(
            "{}{}",
            place_name(&mut rng, &mut taken),
            if t % 3 == 2 { "乡" } else { "镇" }
        );
        let contacts: Vec<Contact> = (0..3).map(|_| Contact::new(&mut rng, today)).collect();
        let mut villages = Vec::new();
        for v in 0..per_township {
            let village_name = format!("{}村", place_name(&mut rng, &mut taken));
            let first = Contact::new(&mut rng, today);
            let second = rng.gen_bool(0.15).then(|| {
                (
                    day(&mut rng, add_days(live, 60), sub_days(today, 30)),
                    Contact::new(&mut rng, today),
                )
            });
            let released_on = ((t == 0 && v == 1) || rng.gen_bool(0.03))
                .then(|| sub_days(today, rng.gen_range(10..60)));
            places.push(Place {
                township: t,
                village: v,
                post: VillagePost {
                    first,
                    second,
                    released_on,
                },
                township_contact: v % contacts.len(),
            });
            villages.push(Village {
                code: format!("{code}{:03}", 201 + v),
                name: village_name,
            });
        }
        townships.push(Township {
            code,
            name,
            villages,
        });
        township_contacts.push(contacts);
    }
    let mut families = Vec::with_capacity(spec.families);
    for _ in 0..spec.families {
        let place = &places[rng.gen_range(0..places.len())];
        let township = &townships[place.township];
        let village = &township.villages[place.village];
        let contact = &township_contacts[place.township][place.township_contact];
        let live = live_from[place.township];
        let family = draw_family(&mut rng, spec, live, township, village, place, contact);
        families.push(family);
    }
    County {
        code: COUNTY.to_owned(),
        townships,
        families,
    }
}

/// A command with the day it happened, to put a family's commands in order.
struct Dated {
    on: NaiveDate,
    /// Order among commands of one day: registration, assignments, the
    /// rest, releases and closings last.
    rank: u8,
    command: FamilyCommand,
}

/// What happens to a family in the window, besides visits.
struct Story {
    /// Key (a visit a week) from this day on.
    key_from: Option<NaiveDate>,
    /// Visits stop: the case closes on this day.
    closed_on: Option<NaiveDate>,
    /// Days that need an urgent home visit (a death, an emergency).
    urgent: Vec<NaiveDate>,
}

fn draw_family(
    rng: &mut StdRng,
    spec: &DemoSpec,
    start: NaiveDate,
    township: &Township,
    village: &Village,
    place: &Place,
    township_contact: &Contact,
) -> DemoFamily {
    let today = spec.today;
    let mut out: Vec<Dated> = Vec::new();
    let mut story = Story {
        key_from: None,
        closed_on: None,
        urgent: Vec::new(),
    };
    // Most families were on the register before their township started
    // using the system (`start`); some were registered since.
    let registered_on = if rng.gen_bool(0.75) {
        day(
            rng,
            NaiveDate::from_ymd_opt(2008, 1, 1).expect("date"),
            start,
        )
    } else {
        day(rng, start, sub_days(today, 20))
    };
    let category = if rng.gen_bool(0.65) {
        Category::Bereaved
    } else {
        Category::DisabledChild
    };
    let widowed = rng.gen_bool(0.12);
    let mut members = Vec::new();
    let father_born = day(
        rng,
        NaiveDate::from_ymd_opt(1942, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(1972, 12, 31).expect("date"),
    );
    for sex in [Sex::Male, Sex::Female] {
        if widowed && members.len() == 1 {
            break;
        }
        let sex = if widowed && rng.gen_bool(0.6) {
            Sex::Female
        } else {
            sex
        };
        let born = day(
            rng,
            sub_days(father_born, 365 * 2),
            add_days(father_born, 365 * 5),
        );
        let self_care = match rng.gen_range(0..100) {
            0..=6 => SelfCare::SemiDependent,
            7..=9 => SelfCare::Dependent,
            _ => SelfCare::Independent,
        };
        members.push(Member {
            id: uuid(rng),
            name: person_name(rng, sex),
            sex,
            birth_date: born.min(sub_days(registered_on, 365 * 30)),
            id_number: None,
            phone: rng.gen_bool(0.5).then(|| phone(rng)),
            living_alone: widowed && rng.gen_bool(0.7),
            self_care,
        });
    }
    // Key from the start (living alone, dependent), or from an 80th
    // birthday.
    let key_policy_age = 80;
    if members
        .iter()
        .any(|m| m.living_alone || m.self_care != SelfCare::Independent)
    {
        story.key_from = Some(registered_on);
    }
    for m in &members {
        if let Some(eighty) = m.birth_date.with_year(m.birth_date.year() + key_policy_age) {
            if story.key_from.is_none_or(|k| eighty < k) {
                story.key_from = Some(eighty.max(registered_on));
            }
        }
    }
    let address = format!(
        "{}{}{}组{}号",
        township.name,
        village.name,
        rng.gen_range(1..12),
        rng.gen_range(1..60)
    );
    out.push(Dated {
        on: registered_on,
        rank: 0,
        command: FamilyCommand::RegisterFamily {
            action_id: uuid(rng),
            category,
            village_code: VillageCode::parse(&village.code).expect("demo code is valid"),
            address: text(&address),
            registered_on,
            members: members.clone(),
        },
    });
    // The contacts came with the system (or the registration), a few days
    // apart from family to family.
    let assigned =
        |rng: &mut StdRng| add_days(registered_on.max(start), rng.gen_range(0..25)).min(today);
    if rng.gen_bool(0.5) {
        out.push(Dated {
            on: assigned(rng),
            rank: 2,
            command: FamilyCommand::SetEmergencyContact {
                action_id: uuid(rng),
                name: text(&person_name(rng, Sex::Male)),
                relation: text(pick(rng, RELATIONS)),
                phone: phone(rng),
                priority: 1,
            },
        });
    }
    // What happens to the family: a death, an emergency, a change in
    // self-care, a closed case.
    let in_window =
        |rng: &mut StdRng| day(rng, add_days(start.max(registered_on), 30), today).min(today);
    let roll = rng.gen_range(0..1000);
    if members.len() == 2 && roll < 25 {
        let on = in_window(rng);
        let (died, left) = if rng.gen_bool(0.6) { (0, 1) } else { (1, 0) };
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::UpdateMemberStatus {
                action_id: uuid(rng),
                member_id: members[died].id,
                effective_on: on,
                deceased_on: Some(on),
                living_alone: None,
                self_care: None,
                phone: None,
            },
        });
        let alone_on = add_days(on, 7).min(today);
        out.push(Dated {
            on: alone_on,
            rank: 2,
            command: FamilyCommand::UpdateMemberStatus {
                action_id: uuid(rng),
                member_id: members[left].id,
                effective_on: alone_on,
                deceased_on: None,
                living_alone: Some(true),
                self_care: None,
                phone: None,
            },
        });
        story.urgent.push(on);
        story.key_from = Some(story.key_from.map_or(alone_on, |k| k.min(alone_on)));
    } else if roll < 50 {
        let on = in_window(rng);
        let at = spec
            .offset
            .from_local_datetime(&on.and_hms_opt(rng.gen_range(0..23), 10, 0).expect("time"))
            .single()
            .expect("fixed offset");
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::RecordEmergency {
                action_id: uuid(rng),
                occurred_at: at,
                description: text("夜间突发胸闷，拨打120送县人民医院。"),
                responder: text(&place.post.first.person.name),
                outcome: text("住院治疗一周后出院，回家休养。"),
            },
        });
        story.urgent.push(on);
    } else if roll < 80 {
        let on = in_window(rng);
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::UpdateMemberStatus {
                action_id: uuid(rng),
                member_id: members[0].id,
                effective_on: on,
                deceased_on: None,
                living_alone: None,
                self_care: Some(SelfCare::SemiDependent),
                phone: None,
            },
        });
        story.key_from = Some(story.key_from.map_or(on, |k| k.min(on)));
        if rng.gen_bool(0.5) {
            out.push(Dated {
                on: add_days(on, 10).min(today),
                rank: 2,
                command: FamilyCommand::RecordElderlyCare {
                    action_id: uuid(rng),
                    member_id: members[0].id,
                    service: *[
                        ElderlyCareService::DailyLivingCare,
                        ElderlyCareService::HomeCare,
                        ElderlyCareService::MealAssistance,
                    ]
                    .choose(rng)
                    .expect("services"),
                    provider: text(&format!("{}敬老院", township.name)),
                    from: add_days(on, 10).min(today),
                    to: None,
                },
            });
        }
    } else if roll < 95 {
        story.closed_on = Some(day(rng, add_days(start.max(registered_on), 120), today));
    }
    if rng.gen_bool(0.06) {
        out.push(Dated {
            on: in_window(rng),
            rank: 2,
            command: FamilyCommand::AddNote {
                action_id: uuid(rng),
                text: text(pick(rng, NOTES)),
            },
        });
    }
    // Assistance: the Spring Festival money (慰问金) most years, and now
    // and then medical help or counselling.
    for year in start.year()..=today.year() {
        let Some(festival) = NaiveDate::from_ymd_opt(year, 1, 20) else {
            continue;
        };
        let on = add_days(festival, rng.gen_range(0..20));
        if on < start.max(registered_on) || on > today || !rng.gen_bool(0.6) {
            continue;
        }
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::RecordAssistance {
                action_id: uuid(rng),
                area: AssistanceArea::LivingSupport,
                amount_fen: Some(AmountFen::new(rng.gen_range(5..=10) * 10_000).expect("amount")),
                provided_on: on,
                description: text("春节慰问金"),
            },
        });
    }
    if rng.gen_bool(0.08) {
        out.push(Dated {
            on: in_window(rng),
            rank: 2,
            command: FamilyCommand::RecordAssistance {
                action_id: uuid(rng),
                area: AssistanceArea::Medical,
                amount_fen: Some(AmountFen::new(rng.gen_range(20..=80) * 10_000).expect("amount")),
                provided_on: in_window(rng),
                description: text("大病医疗救助"),
            },
        });
    }
    if rng.gen_bool(0.06) {
        let on = in_window(rng);
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::RecordAssistance {
                action_id: uuid(rng),
                area: AssistanceArea::PsychologicalComfort,
                amount_fen: None,
                provided_on: on,
                description: text("心理咨询师上门疏导"),
            },
        });
    }
    // The village post: its holders, their visits, a release.
    let post = &place.post;
    if rng.gen_bool(0.97) {
        let first_on = assigned(rng);
        let mut holders = vec![(first_on, &post.first)];
        if let Some((on, second)) = &post.second {
            if *on > first_on {
                holders.push((add_days(*on, rng.gen_range(0..5)).min(today), second));
            }
        }
        let end = post
            .released_on
            .into_iter()
            .chain(story.closed_on)
            .min()
            .unwrap_or(today);
        for (i, (from, holder)) in holders.iter().enumerate() {
            if *from > end {
                break;
            }
            let until = holders.get(i + 1).map_or(end, |(next, _)| (*next).min(end));
            assign(rng, &mut out, Role::Village, *from, &holder.person);
            visits(rng, &mut out, Role::Village, holder, *from, until, &story);
        }
        if let Some(on) = post.released_on {
            if story.closed_on.is_none_or(|c| on < c) && on >= first_on {
                out.push(Dated {
                    on,
                    rank: 3,
                    command: FamilyCommand::ReleaseContact {
                        action_id: uuid(rng),
                        role: Role::Village,
                        released_on: on,
                        reason: text("原联系人调离本村"),
                    },
                });
            }
        }
    }
    // The township post: most families have one.
    if rng.gen_bool(0.95) {
        let from = assigned(rng);
        let until = story.closed_on.unwrap_or(today);
        if from <= until {
            assign(
                rng,
                &mut out,
                Role::Township,
                from,
                &township_contact.person,
            );
            visits(
                rng,
                &mut out,
                Role::Township,
                township_contact,
                from,
                until,
                &story,
            );
        }
    }
    // Now and then a visit entered twice, the second voided.
    if rng.gen_bool(0.01) {
        if let Some(v) = out.iter().rev().find_map(|d| match &d.command {
            FamilyCommand::RecordVisit { .. } => Some((d.on, d.command.clone())),
            _ => None,
        }) {
            let (on, mut duplicate) = v;
            let duplicate_id = uuid(rng);
            if let FamilyCommand::RecordVisit { action_id, .. } = &mut duplicate {
                *action_id = duplicate_id;
            }
            out.push(Dated {
                on,
                rank: 2,
                command: duplicate,
            });
            out.push(Dated {
                on,
                rank: 2,
                command: FamilyCommand::VoidAction {
                    action_id: uuid(rng),
                    voided_action_id: duplicate_id,
                    reason: text("重复录入"),
                },
            });
        }
    }
    if let Some(on) = story.closed_on {
        out.push(Dated {
            on,
            rank: 4,
            command: FamilyCommand::CloseCase {
                action_id: uuid(rng),
                on,
                reason: text("随亲属迁往外省生活"),
            },
        });
    }
    out.sort_by_key(|d| (d.on, d.rank));
    // Keep what the aggregate accepts, in order (a drawn date may clash
    // with the case, e.g. a visit on the day a new contact took over).
    let mut case = FamilyCase::default();
    let mut commands = Vec::with_capacity(out.len());
    for d in out {
        if let Ok(event) = case.decide(d.command.clone(), today, spec.offset) {
            cqrs_es::Aggregate::apply(&mut case, event);
            commands.push((d.on, d.command));
        }
    }
    DemoFamily {
        id: uuid(rng),
        commands,
    }
}

fn assign(rng: &mut StdRng, out: &mut Vec<Dated>, role: Role, on: NaiveDate, p: &ContactPerson) {
    out.push(Dated {
        on,
        rank: 1,
        command: FamilyCommand::AssignContact {
            action_id: uuid(rng),
            role,
            person: p.clone(),
            assigned_on: on,
        },
    });
}

/// The visits of `contact` in `role` from `from` until `until` (not on
/// it), as their habits and the family's story make them.
fn visits(
    rng: &mut StdRng,
    out: &mut Vec<Dated>,
    role: Role,
    contact: &Contact,
    from: NaiveDate,
    until: NaiveDate,
    story: &Story,
) {
    let until = contact.stopped_on.map_or(until, |s| s.min(until));
    let today_ish = until;
    let weekly_from = sub_days(today_ish, KEY_CADENCE_DAYS);
    let mut on = from;
    let mut last_home = from;
    let mut urgent = story
        .urgent
        .iter()
        .copied()
        .filter(|d| *d >= from)
        .peekable();
    loop {
        let key = story.key_from.is_some_and(|k| k <= on && on >= weekly_from);
        let good = contact.diligence == Diligence::Good;
        let gap = match (role, key, good) {
            (Role::Village, true, true) => rng.gen_range(3..=7),
            (Role::Village, true, false) => rng.gen_range(4..=11),
            (Role::Village, false, true) => rng.gen_range(20..=30),
            (Role::Village, false, false) => rng.gen_range(24..=45),
            (Role::Township, true, true) => rng.gen_range(18..=29),
            (Role::Township, true, false) => rng.gen_range(25..=45),
            (Role::Township, false, true) => rng.gen_range(60..=90),
            (Role::Township, false, false) => rng.gen_range(75..=130),
        };
        let mut next = add_days(on, gap);
        let mut is_urgent = false;
        if let Some(u) = urgent.peek().copied() {
            if u < next {
                urgent.next();
                // The urgent home visit: the next day, or late.
                next = add_days(
                    u,
                    if good {
                        rng.gen_range(0..=1)
                    } else {
                        rng.gen_range(1..=4)
                    },
                );
                is_urgent = true;
            }
        }
        if next >= until {
            break;
        }
        on = next;
        let mode = match role {
            _ if is_urgent => VisitMode::Home,
            Role::Village if key && (on - last_home).num_days() < 20 => {
                if rng.gen_bool(0.8) {
                    VisitMode::Phone
                } else {
                    VisitMode::Video
                }
            }
            Role::Village => match rng.gen_range(0..10) {
                0..=5 => VisitMode::Home,
                6..=8 => VisitMode::Phone,
                _ => VisitMode::Video,
            },
            Role::Township if matches!(on.month(), 1 | 2 | 9 | 10) && rng.gen_bool(0.4) => {
                VisitMode::Holiday
            }
            Role::Township => VisitMode::Home,
        };
        if matches!(mode, VisitMode::Home | VisitMode::Holiday) {
            last_home = on;
        }
        let findings = match (role, mode) {
            (_, VisitMode::Phone | VisitMode::Video) => pick(rng, CALL_FINDINGS),
            (Role::Village, _) => pick(rng, VILLAGE_FINDINGS),
            (Role::Township, _) => pick(rng, TOWNSHIP_FINDINGS),
        };
        let needs = if rng.gen_bool(0.08) {
            vec![pick(rng, NEEDS).to_owned()]
        } else {
            vec![]
        };
        out.push(Dated {
            on,
            rank: 2,
            command: FamilyCommand::RecordVisit {
                action_id: uuid(rng),
                role,
                mode,
                visited_on: on,
                findings: text(findings),
                needs,
            },
        });
    }
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("recording a demo family: {0}")]
    Command(#[from] ExecError),
    #[error("the alert scan: {0}")]
    Scan(#[from] alerts::ScanError),
}

/// What [`record`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorded {
    pub families: usize,
    pub commands: usize,
    pub seconds: f64,
    /// The alert scans' changes, added up over the days.
    pub alerts: ScanReport,
}

/// Records `families` through the command path as [`recorder`] within
/// the county, and runs the alert scans of the last [`SCAN_DAYS`] days
/// among them as a running server would have: first every action dated
/// before those days, then, for each day, that morning's scan and the
/// day's actions — so alerts are raised, escalate, and are resolved by the
/// visits that followed. Within each step `IN_FLIGHT` (32) families go at
/// once, each family's commands in order. `progress` is called with the
/// commands done. Stops at the first refusal or store error.
pub async fn record(
    app: &Nuanxin,
    families: Vec<DemoFamily>,
    today: NaiveDate,
    mut progress: impl FnMut(usize),
) -> Result<Recorded, DemoError> {
    let started = std::time::Instant::now();
    let first_scan = sub_days(today, SCAN_DAYS - 1);
    let mut done = Recorded {
        families: families.len(),
        alerts: ScanReport {
            on: today,
            ..ScanReport::default()
        },
        ..Recorded::default()
    };
    let mut earlier = Vec::new();
    let mut by_day: BTreeMap<NaiveDate, Vec<Batch>> = BTreeMap::new();
    for family in families {
        let mut before = Vec::new();
        for (on, command) in family.commands {
            let on = on.min(today);
            if on < first_scan {
                before.push(command);
            } else {
                let day = by_day.entry(on).or_default();
                match day.last_mut() {
                    Some(b) if b.0 == family.id => b.1.push(command),
                    _ => day.push((family.id, vec![command])),
                }
            }
        }
        if !before.is_empty() {
            earlier.push((family.id, before));
        }
    }
    let mut commands = 0;
    record_batches(app, earlier, &mut commands, &mut progress).await?;
    for back in (0..SCAN_DAYS).rev() {
        let on = sub_days(today, back);
        if let Some(r) =
            alerts::run_scan(&app.core, &app.projector, on, "", ScanMode::Always).await?
        {
            done.alerts.raised += r.raised;
            done.alerts.escalated += r.escalated;
            done.alerts.resolved += r.resolved;
            done.alerts.reopened += r.reopened;
            done.alerts.inspections_behind = r.inspections_behind;
        }
        let day = by_day.remove(&on).unwrap_or_default();
        record_batches(app, day, &mut commands, &mut progress).await?;
    }
    done.commands = commands;
    done.seconds = started.elapsed().as_secs_f64();
    Ok(done)
}

/// After this many commands the planner's statistics are refreshed
/// (`store::maintenance::refresh_statistics`: PostgreSQL's plans for the
/// empty tables would slow every later commit).
const REFRESH_STATISTICS_AT: [usize; 2] = [3_000, 20_000];

/// A family and some of its commands, in order.
type Batch = (Uuid, Vec<FamilyCommand>);

/// Records the batches, [`IN_FLIGHT`] families at once, adding each
/// family's number of commands to `done` when they are done and calling
/// `progress` with it.
async fn record_batches(
    app: &Nuanxin,
    batches: Vec<Batch>,
    done: &mut usize,
    progress: &mut impl FnMut(usize),
) -> Result<(), ExecError> {
    let recorder = recorder();
    let scope = Scope::parse(COUNTY).expect("the county is a scope");
    let request_id = format!("demo-{}", Uuid::now_v7());
    let one = |(family_id, commands): Batch| {
        let req = CommandRequest {
            family_id,
            recorder: recorder.clone(),
            scope: scope.clone(),
            request_id: request_id.clone(),
            expected_version: None,
            idempotency_key: None,
            request_hash: None,
        };
        async move {
            let n = commands.len();
            for command in commands {
                app.commands.execute(command, &req).await?;
            }
            Ok::<usize, ExecError>(n)
        }
    };
    let mut failed = None;
    let mut running =
        futures::stream::iter(batches.into_iter().map(one)).buffer_unordered(IN_FLIGHT);
    while let Some(result) = running.next().await {
        match result {
            Ok(n) => {
                let before = *done;
                *done += n;
                if REFRESH_STATISTICS_AT
                    .iter()
                    .any(|at| before < *at && *done >= *at)
                {
                    crate::store::maintenance::refresh_statistics_in_background(app.db());
                }
                progress(*done);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(running);
    failed.map_or(Ok(()), Err)
}

/// How many families and events the store holds: the demo only fills an
/// empty one.
pub async fn holdings(db: &crate::Db) -> Result<(i64, i64), sqlx::Error> {
    Ok((
        crate::generate::family_count(db).await?,
        crate::generate::event_count(db).await?,
    ))
}

/// The demo's users: a caseworker of the first township, a supervisor and
/// an admin of the county, as (login, name, role, scope). (With users in
/// the store, `nuanxin serve` creates no bootstrap admin: the demo's admin
/// manages the users instead.)
pub fn users(county: &County) -> Vec<(String, String, UserRole, Scope)> {
    let township = &county.townships[0];
    vec![
        (
            "demo-caseworker".into(),
            format!("演示工作人员（{}）", township.name),
            UserRole::Caseworker,
            Scope::parse(&township.code).expect("a township is a scope"),
        ),
        (
            "demo-supervisor".into(),
            "演示督导员（全县）".into(),
            UserRole::Supervisor,
            Scope::parse(&county.code).expect("a county is a scope"),
        ),
        (
            "demo-admin".into(),
            "演示管理员（全县）".into(),
            UserRole::Admin,
            Scope::parse(&county.code).expect("a county is a scope"),
        ),
    ]
}

/// A new password for the demo's users: 16 letters and digits (none that
/// look alike), from the operating system's generator.
pub fn password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(families: usize, seed: u64) -> DemoSpec {
        DemoSpec {
            families,
            seed,
            today: NaiveDate::from_ymd_opt(2026, 5, 10).unwrap(),
            offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        }
    }

    #[test]
    fn a_seed_gives_the_same_county() {
        let a = families(&spec(60, 7));
        let b = families(&spec(60, 7));
        assert_eq!(a.families.len(), 60);
        assert_eq!(a.commands(), b.commands());
        assert_eq!(a.townships[0].name, b.townships[0].name);
        assert_ne!(a.commands(), families(&spec(60, 8)).commands());
    }

    #[test]
    fn every_family_is_registered_first_within_the_county() {
        let county = families(&spec(300, 1));
        assert!(county.townships.len() >= 2);
        for f in &county.families {
            match &f.commands[0].1 {
                FamilyCommand::RegisterFamily { village_code, .. } => {
                    assert!(village_code.as_str().starts_with(COUNTY))
                }
                other => panic!("first command {other:?}"),
            }
        }
        // Two years of visits: on average well over a dozen commands.
        assert!(county.commands() > 300 * 12, "{}", county.commands());
    }

    #[test]
    fn a_large_county_has_a_name_for_every_place() {
        // 30 townships of 40 villages: more than there are two-syllable
        // names.
        let mut rng = StdRng::seed_from_u64(1);
        let mut taken = HashSet::new();
        for _ in 0..1230 {
            place_name(&mut rng, &mut taken);
        }
        assert_eq!(taken.len(), 1230);
    }
}
