//! Importing the families of an association's register (台账), an `.xlsx`
//! (any sheet calamine reads: the first one) or `.csv` file with English or
//! Chinese headers (docs/import.md, API.md "Import").
//!
//! Every row becomes the commands the API would record — the registration,
//! then the contacts it names — through [`Commands::execute`], attributed
//! to the importing user. The row's `family_ref` is the idempotency key
//! (`import:<ref>`, and `import:<ref>:<role>` for the contacts), so running
//! the same file again imports nothing twice, and a changed row under a
//! `family_ref` already imported is refused. [`plan`] validates every row
//! completely (values, and the case's own rules by deciding the commands on
//! an empty case) and writes nothing; a dry run stops there, asking the
//! log only whether each row was imported before.
//!
//! Errors name the row (as numbered in the file, the header being row 1),
//! the column and what is wrong with it — never the value, which may be a
//! name, an ID number or a phone number.

use std::collections::HashMap;
use std::path::Path;

use calamine::{Data, Reader};
use chrono::{Days, FixedOffset, NaiveDate};
use nuanxin_domain::aggregate::{check_member, CaseError, FamilyCase};
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::metadata::Recorder;
use nuanxin_domain::values::{
    parse_day, parse_registration_day, Category, IdNumber, Name, Phone, SelfCare, Sex, Text,
    VillageCode,
};
use nuanxin_domain::{FamilyCommand, Role};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::commands::{CommandRequest, ExecError};
use crate::store::events::{keyed_answer, KeyedAnswer};
use crate::users::User;
use crate::Nuanxin;

/// At most this many members per row (as the API takes).
pub const MAX_MEMBERS: usize = 4;

/// Why nothing could be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file cannot be read: {0}")]
    Unreadable(String),
    /// The importing user cannot be found or may not record.
    #[error("{0}")]
    Setup(String),
    #[error("store error: {0}")]
    Store(String),
}

/// The file as a table of text cells: the header, and each row with its
/// number in the file.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

/// A rejected cell or row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    /// The column's English name (or `row`).
    pub column: String,
    pub message: String,
}

/// A row that passed every check, as the commands it becomes.
#[derive(Debug, Clone)]
pub struct PlannedRow {
    pub row: usize,
    pub family_ref: String,
    pub register: FamilyCommand,
    pub contacts: Vec<(Role, FamilyCommand)>,
    /// Hash of the row's values: tells a re-run from a changed row.
    pub hash: String,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub imported: usize,
    pub already_imported: usize,
    pub rejected: usize,
    /// Columns of the header that are not ones of the register.
    pub ignored_columns: Vec<String>,
    pub errors: Vec<RowError>,
}

impl Summary {
    /// The line the command prints.
    pub fn line(&self) -> String {
        format!(
            "imported {}, already imported {}, rejected {}",
            self.imported, self.already_imported, self.rejected
        )
    }
}

/// The English column names and their Chinese headers.
fn columns() -> Vec<(String, String)> {
    let mut c: Vec<(String, String)> = [
        ("family_ref", "台账编号"),
        ("category", "类别"),
        ("village_code", "村级区划代码"),
        ("address", "住址"),
        ("registered_on", "登记日期"),
    ]
    .iter()
    .map(|(e, z)| ((*e).to_owned(), (*z).to_owned()))
    .collect();
    for n in 1..=MAX_MEMBERS {
        for (e, z) in [
            ("name", "姓名"),
            ("sex", "性别"),
            ("birth_date", "出生日期"),
            ("id_number", "身份证号"),
            ("phone", "电话"),
            ("living_alone", "独居"),
            ("self_care", "自理能力"),
        ] {
            c.push((format!("member{n}_{e}"), format!("成员{n}{z}")));
        }
    }
    for (e, z) in [
        ("village_contact_name", "村级联系人姓名"),
        ("village_contact_phone", "村级联系人电话"),
        ("township_contact_name", "乡镇联系人姓名"),
        ("township_contact_phone", "乡镇联系人电话"),
        ("contacts_assigned_on", "联系人确定日期"),
    ] {
        c.push((e.to_owned(), z.to_owned()));
    }
    c
}

/// The Chinese header of the register's column `column` (its English
/// name), for error reports.
pub fn chinese_header(column: &str) -> Option<String> {
    columns()
        .into_iter()
        .find(|(e, _)| e == column)
        .map(|(_, z)| z)
}

/// The columns a register must have.
pub const REQUIRED: [&str; 8] = [
    "family_ref",
    "category",
    "village_code",
    "address",
    "registered_on",
    "member1_name",
    "member1_sex",
    "member1_birth_date",
];

/// The kinds of file [`read_bytes`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// UTF-8 CSV, with or without a byte-order mark.
    Csv,
    /// An Excel workbook (`.xlsx`): its first sheet.
    Xlsx,
}

impl FileKind {
    /// The kind of a file named `name`, by its extension (`.csv`, `.xlsx`,
    /// in any case); `None` for any other.
    pub fn of_name(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileKind::Csv),
            "xlsx" => Some(FileKind::Xlsx),
            _ => None,
        }
    }
}

/// Reads `path`: `.csv` (UTF-8, with or without a byte-order mark) or a
/// spreadsheet (`.xlsx`; its first sheet).
pub fn read_file(path: &Path) -> Result<Table, ImportError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if ext == "csv" {
        let bytes = std::fs::read(path).map_err(|e| ImportError::Unreadable(e.to_string()))?;
        return table(csv_rows(&bytes)?);
    }
    let mut book =
        calamine::open_workbook_auto(path).map_err(|e| ImportError::Unreadable(e.to_string()))?;
    table(sheet_rows(&mut book)?)
}

/// Reads an uploaded file of `kind` (the web app's import page): the same
/// table [`read_file`] reads from a file of that kind.
pub fn read_bytes(kind: FileKind, bytes: &[u8]) -> Result<Table, ImportError> {
    match kind {
        FileKind::Csv => table(csv_rows(bytes)?),
        FileKind::Xlsx => {
            let mut book: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(bytes))
                .map_err(|_| {
                    ImportError::Unreadable("the file is not an Excel workbook (.xlsx)".into())
                })?;
            table(sheet_rows(&mut book)?)
        }
    }
}

/// The rows of a CSV document, every cell trimmed.
fn csv_rows(bytes: &[u8]) -> Result<Vec<Vec<String>>, ImportError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ImportError::Unreadable("a CSV file must be UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Unreadable(e.to_string()))?;
        rows.push(record.iter().map(|s| s.trim().to_owned()).collect());
    }
    Ok(rows)
}

/// The rows of a workbook's first sheet, as text.
fn sheet_rows<RS, R>(book: &mut R) -> Result<Vec<Vec<String>>, ImportError>
where
    RS: std::io::Read + std::io::Seek,
    R: Reader<RS>,
    R::Error: std::fmt::Display,
{
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| ImportError::Unreadable("the workbook has no sheet".into()))?
        .map_err(|e| ImportError::Unreadable(e.to_string()))?;
    Ok(range
        .rows()
        .map(|r| r.iter().map(cell_text).collect())
        .collect())
}

/// The header and the numbered non-blank rows of a file's rows.
fn table(mut rows: Vec<Vec<String>>) -> Result<Table, ImportError> {
    if rows.is_empty() {
        return Err(ImportError::Unreadable("the file is empty".into()));
    }
    let headers = rows.remove(0);
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i + 2, r))
        .filter(|(_, r)| r.iter().any(|c| !c.is_empty()))
        .collect();
    Ok(Table { headers, rows })
}

/// A spreadsheet cell as text: whole numbers without a decimal point (a
/// phone typed as a number), Excel dates as `YYYY-MM-DD`.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => excel_day(dt.as_f64())
            .map(|d| d.to_string())
            .unwrap_or_default(),
        Data::DateTimeIso(s) => s.chars().take(10).collect(),
        Data::DurationIso(s) => s.clone(),
    }
}

/// The day of an Excel serial date (1900 date system; days from
/// 1899-12-30, which is right from March 1900 on).
fn excel_day(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(Days::new(serial.floor() as u64))
}

/// A date cell: `YYYY-MM-DD` (also with `/` or `.`), or an Excel serial
/// number (a date column saved without its format).
fn cell_day(s: &str) -> Option<NaiveDate> {
    if !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        return excel_day(s.parse().ok()?);
    }
    let s = s.replace(['/', '.'], "-");
    NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()
}

fn category(s: &str) -> Option<Category> {
    match s {
        "失独" => Some(Category::Bereaved),
        "伤残" => Some(Category::DisabledChild),
        _ => Category::parse(s).ok(),
    }
}

fn sex(s: &str) -> Option<Sex> {
    match s {
        "男" => Some(Sex::Male),
        "女" => Some(Sex::Female),
        _ => Sex::parse(&s.to_ascii_lowercase()).ok(),
    }
}

fn yes_no(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "否" | "no" | "false" | "0" | "n" => Some(false),
        "是" | "yes" | "true" | "1" | "y" => Some(true),
        _ => None,
    }
}

fn self_care(s: &str) -> Option<SelfCare> {
    match s {
        "" | "自理" => Some(SelfCare::Independent),
        "半失能" => Some(SelfCare::SemiDependent),
        "失能" => Some(SelfCare::Dependent),
        _ => SelfCare::parse(s).ok(),
    }
}

/// The contact's id: the same person (role, name, phone) gets the same id
/// in every row and every run, so their caseload comes together.
fn person_id(role: Role, name: &str, phone: &str) -> Uuid {
    let digest = Sha256::digest(format!("nuanxin-import-contact\n{role}\n{name}\n{phone}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Errors of one row, collected.
struct RowCheck {
    row: usize,
    errors: Vec<RowError>,
}

impl RowCheck {
    fn push(&mut self, column: &str, message: &str) {
        self.errors.push(RowError {
            row: self.row,
            column: column.to_owned(),
            message: message.to_owned(),
        });
    }

    fn value<T, E: std::fmt::Display>(&mut self, column: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(column, &e.to_string());
                None
            }
        }
    }

    fn or<T>(&mut self, column: &str, v: Option<T>, message: &str) -> Option<T> {
        if v.is_none() {
            self.push(column, message);
        }
        v
    }
}

/// The column a refusal of the case's rules is about.
fn case_column(e: &CaseError, contacts: bool) -> &'static str {
    match e {
        CaseError::BeforeRegistration { field } | CaseError::InFuture { field } => match *field {
            "assigned_on" => "contacts_assigned_on",
            "registered_on" => "registered_on",
            _ if contacts => "contacts_assigned_on",
            _ => "registered_on",
        },
        _ => "row",
    }
}

/// Validates every row of `table` for a user of `scope`; nothing is
/// written. Rows whose `family_ref` repeats an earlier row are refused.
/// Err: the header lacks a required column.
pub fn plan(
    table: &Table,
    scope: &nuanxin_domain::Scope,
    today: NaiveDate,
    offset: FixedOffset,
) -> Result<(Vec<PlannedRow>, Summary), ImportError> {
    let known = columns();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut summary = Summary::default();
    for (i, h) in table.headers.iter().enumerate() {
        let h = h.trim();
        match known.iter().find(|(e, z)| e == h || z == h) {
            Some((e, _)) => {
                index.insert(e.clone(), i);
            }
            None if h.is_empty() => {}
            None => summary.ignored_columns.push(h.to_owned()),
        }
    }
    for c in REQUIRED {
        if !index.contains_key(c) {
            return Err(ImportError::Unreadable(format!(
                "the header has no column `{c}`"
            )));
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut planned = Vec::new();
    for (row, cells) in &table.rows {
        let get = |c: &str| {
            index
                .get(c)
                .and_then(|i| cells.get(*i))
                .map(|s| s.trim())
                .unwrap_or("")
        };
        let mut check = RowCheck {
            row: *row,
            errors: Vec::new(),
        };
        let family_ref = get("family_ref").to_owned();
        if family_ref.is_empty() {
            check.push("family_ref", "is required");
        } else if let Some(first) = seen.get(&family_ref) {
            check.push(
                "family_ref",
                &format!("repeats the family_ref of row {first}"),
            );
        } else {
            seen.insert(family_ref.clone(), *row);
        }
        let cat = check.or(
            "category",
            category(get("category")),
            "must be one of: 失独 伤残 bereaved disabled_child",
        );
        let village = check.value("village_code", VillageCode::parse(get("village_code")));
        if let Some(v) = &village {
            if !v.as_str().starts_with(scope.as_str()) {
                check.push("village_code", "is outside the importing user's scope");
            }
        }
        let address = check.value("address", Text::parse(get("address")));
        let registered_on = check
            .or(
                "registered_on",
                cell_day(get("registered_on")),
                "must be a date YYYY-MM-DD or an Excel date",
            )
            .and_then(|d| {
                check.value(
                    "registered_on",
                    parse_registration_day(&d.format("%Y-%m-%d").to_string()),
                )
            });
        let mut members = Vec::new();
        for n in 1..=MAX_MEMBERS {
            let col = |f: &str| format!("member{n}_{f}");
            let parts = [
                "name",
                "sex",
                "birth_date",
                "id_number",
                "phone",
                "living_alone",
                "self_care",
            ];
            if n > 1 && parts.iter().all(|p| get(&col(p)).is_empty()) {
                continue;
            }
            let name = check.value(&col("name"), Name::parse(get(&col("name"))));
            let s = check.or(
                &col("sex"),
                sex(get(&col("sex"))),
                "must be one of: 男 女 male female",
            );
            let birth = check
                .or(
                    &col("birth_date"),
                    cell_day(get(&col("birth_date"))),
                    "must be a date YYYY-MM-DD or an Excel date",
                )
                .and_then(|d| {
                    check.value(
                        &col("birth_date"),
                        parse_day(&d.format("%Y-%m-%d").to_string()),
                    )
                });
            let id_number = match get(&col("id_number")) {
                "" => Some(None),
                v => check.value(&col("id_number"), IdNumber::parse(v)).map(Some),
            };
            let phone = match get(&col("phone")) {
                "" => Some(None),
                v => check.value(&col("phone"), Phone::parse(v)).map(Some),
            };
            let alone = check.or(
                &col("living_alone"),
                yes_no(get(&col("living_alone"))),
                "must be one of: 是 否",
            );
            let care = check.or(
                &col("self_care"),
                self_care(get(&col("self_care"))),
                "must be one of: 自理 半失能 失能",
            );
            if let (Some(name), Some(sex), Some(birth_date), Some(id_number), Some(phone)) =
                (name, s, birth, id_number, phone)
            {
                let member = Member {
                    id: Uuid::new_v4(),
                    name: name.to_string(),
                    sex,
                    birth_date,
                    id_number,
                    phone,
                    living_alone: alone.unwrap_or(false),
                    self_care: care.unwrap_or(SelfCare::Independent),
                };
                if let Some(on) = registered_on {
                    if let Err((field, message)) = check_member(&member, on) {
                        check.push(&col(field), message);
                    }
                }
                members.push(member);
            }
        }
        let assigned_on = match get("contacts_assigned_on") {
            "" => registered_on,
            v => check
                .or(
                    "contacts_assigned_on",
                    cell_day(v),
                    "must be a date YYYY-MM-DD or an Excel date",
                )
                .and_then(|d| {
                    check.value(
                        "contacts_assigned_on",
                        parse_day(&d.format("%Y-%m-%d").to_string()),
                    )
                }),
        };
        let mut contacts = Vec::new();
        for role in [Role::Village, Role::Township] {
            let name_col = format!("{role}_contact_name");
            let phone_col = format!("{role}_contact_phone");
            let (name, phone) = (get(&name_col), get(&phone_col));
            if name.is_empty() && phone.is_empty() {
                continue;
            }
            let name = check.value(&name_col, Name::parse(name));
            let phone = match phone {
                "" => {
                    check.push(&phone_col, "is required with the contact's name");
                    None
                }
                p => check.value(&phone_col, Phone::parse(p)),
            };
            if let (Some(name), Some(phone), Some(assigned_on)) = (name, phone, assigned_on) {
                let id = person_id(role, name.as_str(), phone.as_str());
                contacts.push((
                    role,
                    FamilyCommand::AssignContact {
                        action_id: Uuid::new_v4(),
                        role,
                        person: ContactPerson {
                            id,
                            name: name.to_string(),
                            phone,
                        },
                        assigned_on,
                    },
                ));
            }
        }
        let (Some(category), Some(village_code), Some(address), Some(registered_on)) =
            (cat, village, address, registered_on)
        else {
            summary.rejected += 1;
            summary.errors.append(&mut check.errors);
            continue;
        };
        if !check.errors.is_empty() {
            summary.rejected += 1;
            summary.errors.append(&mut check.errors);
            continue;
        }
        let register = FamilyCommand::RegisterFamily {
            action_id: Uuid::new_v4(),
            category,
            village_code,
            address,
            registered_on,
            members,
        };
        // The case's own rules, on an empty case: nothing is written.
        let mut case = FamilyCase::default();
        match case.decide(register.clone(), today, offset) {
            Ok(event) => case.evolve(event),
            Err(e) => {
                let column = case_column(&e, false);
                check.push(column, &e.to_string());
            }
        }
        for (_, command) in &contacts {
            if !case.registered {
                break;
            }
            match case.decide(command.clone(), today, offset) {
                Ok(event) => case.evolve(event),
                Err(e) => check.push(case_column(&e, true), &e.to_string()),
            }
        }
        if !check.errors.is_empty() {
            summary.rejected += 1;
            summary.errors.append(&mut check.errors);
            continue;
        }
        let mut hasher = Sha256::new();
        for (e, _) in &known {
            hasher.update(e.as_bytes());
            hasher.update([0]);
            hasher.update(get(e).as_bytes());
            hasher.update([0]);
        }
        planned.push(PlannedRow {
            row: *row,
            family_ref,
            register,
            contacts,
            hash: hex::encode(hasher.finalize()),
        });
    }
    Ok((planned, summary))
}

/// The idempotency key of a row's registration (`None`) or contact.
fn key(family_ref: &str, role: Option<Role>) -> String {
    match role {
        None => format!("import:{family_ref}"),
        Some(r) => format!("import:{family_ref}:{r}"),
    }
}

/// Rows recorded at once. Each row waits for its commands to be durable
/// before it counts; running many at a time lets the group commit write
/// them in shared transactions (one row alone is a commit per command).
/// Measured on 20,000 rows (docs/performance.md, "Import"): SQLite, whose
/// single writer is the limit, gains up to about 128 (larger batches
/// share each commit's fixed cost); PostgreSQL is as fast from 32 on.
const IN_FLIGHT: usize = 128;

/// After this many rows are done the planner's statistics are refreshed
/// (PostgreSQL: an import into a new store would otherwise run on plans
/// made for empty tables; `store::maintenance::refresh_statistics`).
const REFRESH_STATISTICS_AT: [usize; 2] = [1_000, 10_000];

/// What became of one row.
enum RowOutcome {
    Imported,
    AlreadyImported,
    Refused { column: String, message: String },
}

/// Records the planned rows as `user` (or, with `dry_run`, only asks
/// whether each was imported before), `IN_FLIGHT` (128) rows at a time, each
/// row's commands in order (the registration, then its contacts), calling
/// `progress` with the number of rows done after each row. Adds to
/// `summary` in row order, so its counts and errors are those of one row
/// after another. A store error stops the import: no further row starts,
/// the rows under way finish and are counted, and the error is returned.
pub async fn run(
    app: &Nuanxin,
    user: &User,
    rows: Vec<PlannedRow>,
    dry_run: bool,
    summary: &mut Summary,
    mut progress: impl FnMut(usize),
) -> Result<(), ImportError> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let recorder = Recorder {
        id: user.id,
        name: user.name.clone(),
        role: user.role,
    };
    let request_id = format!("import-{}", Uuid::now_v7());
    let one = |p: PlannedRow| {
        let recorder = &recorder;
        let request_id = &request_id;
        async move {
            let row = p.row;
            let outcome = if dry_run {
                check_row(app, user, p).await
            } else {
                record_row(app, user, recorder, request_id, p).await
            };
            (row, outcome)
        }
    };
    let mut pending = rows.into_iter();
    let mut running = FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(pending.len());
    let mut failed = None;
    let mut done = 0;
    loop {
        while failed.is_none() && running.len() < IN_FLIGHT {
            match pending.next() {
                Some(p) => running.push(one(p)),
                None => break,
            }
        }
        let Some((row, outcome)) = running.next().await else {
            break;
        };
        match outcome {
            Ok(o) => outcomes.push((row, o)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        done += 1;
        if !dry_run && REFRESH_STATISTICS_AT.contains(&done) {
            crate::store::maintenance::refresh_statistics_in_background(app.db());
        }
        progress(done);
    }
    outcomes.sort_by_key(|(row, _)| *row);
    for (row, outcome) in outcomes {
        match outcome {
            RowOutcome::Imported => summary.imported += 1,
            RowOutcome::AlreadyImported => summary.already_imported += 1,
            RowOutcome::Refused { column, message } => {
                summary.rejected += 1;
                summary.errors.push(RowError {
                    row,
                    column,
                    message,
                });
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A dry run's row: was it imported before (and with the same values)?
async fn check_row(app: &Nuanxin, user: &User, p: PlannedRow) -> Result<RowOutcome, ImportError> {
    let register_key = key(&p.family_ref, None);
    let hash = Some(p.hash);
    Ok(
        match keyed_answer(app.db(), user.id, Some(&register_key), &hash)
            .await
            .map_err(|e| ImportError::Store(e.to_string()))?
        {
            KeyedAnswer::Fresh => RowOutcome::Imported,
            KeyedAnswer::Same { .. } => RowOutcome::AlreadyImported,
            KeyedAnswer::OtherRequest => RowOutcome::Refused {
                column: "family_ref".into(),
                message: "was imported before with other values".into(),
            },
        },
    )
}

/// Records one row: its registration, then its contacts, each durable
/// before the next. Err: a store failure.
async fn record_row(
    app: &Nuanxin,
    user: &User,
    recorder: &Recorder,
    request_id: &str,
    p: PlannedRow,
) -> Result<RowOutcome, ImportError> {
    let request = |family_id: Uuid, key: String, hash: String| CommandRequest {
        family_id,
        recorder: recorder.clone(),
        scope: user.scope.clone(),
        request_id: request_id.to_owned(),
        expected_version: None,
        idempotency_key: Some(key),
        request_hash: Some(hash),
    };
    let req = request(Uuid::now_v7(), key(&p.family_ref, None), p.hash.clone());
    let outcome = match app.commands.execute(p.register, &req).await {
        Ok(o) => o,
        Err(e) => {
            let (column, message) = refusal(&e)?;
            return Ok(RowOutcome::Refused {
                column: column.to_owned(),
                message,
            });
        }
    };
    let mut fresh = !outcome.replayed;
    for (role, command) in p.contacts {
        let req = request(
            outcome.family_id,
            key(&p.family_ref, Some(role)),
            format!("{}:{role}", p.hash),
        );
        match app.commands.execute(command, &req).await {
            Ok(o) => fresh |= !o.replayed,
            Err(e) => {
                let (_, message) = refusal(&e)?;
                return Ok(RowOutcome::Refused {
                    column: format!("{role}_contact_name"),
                    message,
                });
            }
        }
    }
    Ok(if fresh {
        RowOutcome::Imported
    } else {
        RowOutcome::AlreadyImported
    })
}

/// A refused command as the error report says it; Err for a store failure
/// (which stops the import).
fn refusal(e: &ExecError) -> Result<(&'static str, String), ImportError> {
    Ok(match e {
        ExecError::IdempotencyMismatch => (
            "family_ref",
            "was imported before with other values".to_owned(),
        ),
        ExecError::Forbidden(m) => ("village_code", (*m).to_owned()),
        ExecError::Case(c) => (case_column(c, false), c.to_string()),
        ExecError::Store(s) => return Err(ImportError::Store(s.to_string())),
        other => ("row", other.to_string()),
    })
}

/// The importing user: `who` is a user id or the name of exactly one
/// active user; without it, the first active admin of everything (the
/// bootstrap admin). They must be allowed to record.
pub async fn importer(db: &crate::Db, who: Option<&str>) -> Result<User, ImportError> {
    let store_err = |e: sqlx::Error| ImportError::Store(e.to_string());
    let found = match who.map(|w| (w, w.parse::<Uuid>())) {
        Some((_, Ok(id))) => crate::users::get(db, id)
            .await
            .map_err(store_err)?
            .filter(|r| r.disabled_at.is_none())
            .map(|r| r.user),
        other => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = crate::users::list(db, &nuanxin_domain::Scope::everything(), after, 500)
                    .await
                    .map_err(store_err)?;
                after = page.last().map(|r| r.user.id);
                let full = page.len() == 500;
                all.extend(page.into_iter().filter(|r| r.disabled_at.is_none()));
                if !full {
                    break;
                }
            }
            let mut matching: Vec<User> = match other {
                Some((name, _)) => all
                    .into_iter()
                    .filter(|r| r.user.name == name)
                    .map(|r| r.user)
                    .collect(),
                None => all
                    .into_iter()
                    .filter(|r| {
                        r.user.role == nuanxin_domain::UserRole::Admin
                            && r.user.scope.as_str().is_empty()
                    })
                    .map(|r| r.user)
                    .take(1)
                    .collect(),
            };
            if matching.len() > 1 {
                return Err(ImportError::Setup(
                    "more than one active user has that name: give the user's id".into(),
                ));
            }
            matching.pop()
        }
    };
    let user = found.ok_or_else(|| {
        ImportError::Setup(match who {
            Some(_) => "no active user has that id or name".into(),
            None => "no active admin of everything: name the importing user with --as".into(),
        })
    })?;
    if !user.role.may_record() {
        return Err(ImportError::Setup(
            "the importing user must be a caseworker or an admin".into(),
        ));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn dates_as_registers_write_them() {
        assert_eq!(cell_day("2024-01-10"), Some(d(2024, 1, 10)));
        assert_eq!(cell_day("2024/1/9"), Some(d(2024, 1, 9)));
        assert_eq!(cell_day("2024.01.09"), Some(d(2024, 1, 9)));
        // Excel serial numbers (1900 date system).
        assert_eq!(cell_day("45292"), Some(d(2024, 1, 1)));
        assert_eq!(excel_day(45292.75), Some(d(2024, 1, 1)));
        assert_eq!(cell_day("yesterday"), None);
        assert_eq!(cell_day(""), None);
    }

    #[test]
    fn chinese_and_english_values() {
        assert_eq!(category("失独"), Some(Category::Bereaved));
        assert_eq!(category("disabled_child"), Some(Category::DisabledChild));
        assert_eq!(category("其他"), None);
        assert_eq!(sex("女"), Some(Sex::Female));
        assert_eq!(sex("Male"), Some(Sex::Male));
        assert_eq!(yes_no("是"), Some(true));
        assert_eq!(yes_no(""), Some(false));
        assert_eq!(yes_no("也许"), None);
        assert_eq!(self_care("半失能"), Some(SelfCare::SemiDependent));
        assert_eq!(self_care(""), Some(SelfCare::Independent));
        assert_eq!(cell_text(&Data::Float(13800138000.0)), "13800138000");
    }

    #[test]
    fn a_contact_keeps_one_id_across_rows() {
        let a = person_id(Role::Village, "王芳", "13900139000");
        assert_eq!(a, person_id(Role::Village, "王芳", "13900139000"));
        assert_ne!(a, person_id(Role::Township, "王芳", "13900139000"));
    }
}
