//! `nuanxin import families`, run as the real binary on both stores: a
//! mixed CSV register with Chinese headers (good rows, bad rows, an Excel
//! serial date), its dry run writing nothing, the import attributed to the
//! importing user, a re-run importing nothing twice, an error report
//! without names, ID numbers or phones; an XLSX register with English
//! headers and real Excel dates; a file that cannot be read. A register of
//! 300 rows (rows run concurrently) gives the counts and the error report,
//! in row order, that rows imported one after another give — rejected by
//! the checks, and refused by the store as changed since imported.

mod common;

use std::path::Path;
use std::process::Output;

use common::{drop_database, postgres_database};
use nuanxin_infra::{DatabaseUrl, Db};

async fn nuanxin(dir: &Path, database_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_nuanxin"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("NUANXIN_LOG", "warn")
        .env_remove("NUANXIN_POLICY")
        .output()
        .await
        .expect("nuanxin runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn all(o: &Output) -> String {
    format!("{}{}", out(o), String::from_utf8_lossy(&o.stderr))
}

/// (events, events recorded by `user`).
async fn events(url: &str, user: &str) -> (i64, i64) {
    let db = Db::connect(&DatabaseUrl::parse(url).unwrap(), 1)
        .await
        .expect("connect");
    let like = format!("%{user}%");
    let counts = nuanxin_infra::on_pool!(&db, pool => {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN CAST(metadata AS TEXT) LIKE $1 THEN 1 ELSE 0 END), 0) FROM events",
        )
        .bind(&like)
        .fetch_one(pool)
        .await
    })
    .expect("count");
    db.close().await;
    counts
}

const NAMES: [&str; 6] = ["张三", "李梅", "赵四", "钱五", "孙六", "王芳"];
const NUMBERS: [&str; 5] = [
    "110105195003010016",
    "110105195003010017",
    "13800138000",
    "13900139000",
    "1234",
];

/// A register with Chinese headers: rows 2 and 3 are good (row 3's
/// registration date is an Excel serial number, its birth date written
/// with slashes), rows 4–9 are not; an extra column is ignored.
fn mixed_csv() -> String {
    let header = "台账编号,类别,村级区划代码,住址,登记日期,成员1姓名,成员1性别,成员1出生日期,成员1身份证号,成员1电话,成员1独居,成员1自理能力,成员2姓名,成员2性别,成员2出生日期,村级联系人姓名,村级联系人电话,联系人确定日期,备注";
    let rows = [
        "A001,失独,450305001001,新村3号,2024-01-10,张三,男,1950-03-01,110105195003010016,13800138000,否,自理,李梅,女,1952-07-15,王芳,13900139000,2024-02-01,",
        "A002,伤残,450305001002,新村4号,45300,赵四,男,1948/5/6,,,是,半失能,,,,,,,独居老人",
        "A003,失独,450305001003,新村5号,2024-01-10,钱五,男,1950-03-01,110105195003010017,1234,否,自理,,,,,,,",
        "A004,其他,450305001003,新村6号,2024-01-10,孙六,女,1950-03-01,,,否,自理,,,,,,,",
        ",失独,450305001003,新村7号,2024-01-10,孙六,女,1950-03-01,,,否,自理,,,,,,,",
        "A001,失独,450305001001,新村3号,2024-01-10,张三,男,1950-03-01,,,否,自理,,,,,,,",
        "A005,失独,450306001001,外县,2024-01-10,孙六,女,1950-03-01,,,否,自理,,,,,,,",
        "A006,失独,450305001004,新村8号,2024-01-10,孙六,女,1950-03-01,,,也许,自理,,,,王芳,,,",
    ];
    let mut text = format!("\u{feff}{header}\r\n");
    for r in rows {
        text.push_str(r);
        text.push_str("\r\n");
    }
    text
}

/// An XLSX register with English headers, Excel dates and a phone typed
/// as a number.
fn register_xlsx(path: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let headers = [
        "family_ref",
        "category",
        "village_code",
        "address",
        "registered_on",
        "member1_name",
        "member1_sex",
        "member1_birth_date",
        "member1_phone",
        "township_contact_name",
        "township_contact_phone",
        "contacts_assigned_on",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let day = |y, m, d| ExcelDateTime::from_ymd(y, m, d).unwrap();
    sheet.write_string(1, 0, "B001").unwrap();
    sheet.write_string(1, 1, "bereaved").unwrap();
    sheet.write_string(1, 2, "450305002001").unwrap();
    sheet.write_string(1, 3, "No. 9").unwrap();
    sheet
        .write_datetime_with_format(1, 4, day(2024, 3, 1), &date)
        .unwrap();
    sheet.write_string(1, 5, "周七").unwrap();
    sheet.write_string(1, 6, "female").unwrap();
    sheet
        .write_datetime_with_format(1, 7, day(1951, 8, 2), &date)
        .unwrap();
    sheet.write_number(1, 8, 13700137000.0).unwrap();
    sheet.write_string(1, 9, "吴八").unwrap();
    sheet.write_number(1, 10, 13600136000.0).unwrap();
    sheet
        .write_datetime_with_format(1, 11, day(2024, 3, 2), &date)
        .unwrap();
    book.save(path).unwrap();
}

async fn import_scenario(dir: &Path, url: &str) {
    let added = nuanxin(
        dir,
        url,
        &[
            "users",
            "add",
            "--name",
            "Import Clerk",
            "--role",
            "caseworker",
            "--scope",
            "450305",
        ],
    )
    .await;
    assert!(added.status.success(), "{}", all(&added));
    let clerk = out(&added)
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|s| s.trim().to_owned())
        .expect("the new user's id");
    std::fs::write(dir.join("register.csv"), mixed_csv()).unwrap();
    let import = |extra: &'static [&'static str]| {
        let clerk = clerk.clone();
        async move {
            let mut args = vec!["import", "families", "register.csv", "--as", &clerk];
            args.extend_from_slice(extra);
            nuanxin(dir, url, &args).await
        }
    };

    // A dry run checks everything and writes nothing.
    let dry = import(&["--dry-run", "--errors", "dry.csv"]).await;
    assert_eq!(dry.status.code(), Some(1), "{}", all(&dry));
    assert!(
        out(&dry).contains("imported 2, already imported 0, rejected 6"),
        "{}",
        all(&dry)
    );
    assert!(out(&dry).contains("nothing written"), "{}", all(&dry));
    assert!(all(&dry).contains("ignored column: 备注"), "{}", all(&dry));
    assert_eq!(events(url, &clerk).await, (0, 0));

    // The import: the good rows are recorded by the clerk (A001 with its
    // village contact), the bad ones reported.
    let first = import(&["--errors", "errors.csv"]).await;
    assert_eq!(first.status.code(), Some(1), "{}", all(&first));
    assert!(
        out(&first).contains("imported 2, already imported 0, rejected 6"),
        "{}",
        all(&first)
    );
    assert_eq!(events(url, &clerk).await, (3, 3));
    let report = std::fs::read(dir.join("errors.csv")).unwrap();
    assert_eq!(&report[..3], b"\xEF\xBB\xBF");
    let report = String::from_utf8(report[3..].to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["row", "column", "message", "message_zh"]
    );
    let errors: Vec<(String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].to_owned(), r[2].to_owned())
        })
        .collect();
    let has = |row: &str, column: &str| errors.iter().any(|(r, c, _)| r == row && c == column);
    assert!(has("4", "member1_id_number"), "{report}");
    assert!(has("4", "member1_phone"), "{report}");
    assert!(has("5", "category"), "{report}");
    assert!(has("6", "family_ref"), "{report}");
    assert!(has("7", "family_ref"), "{report}");
    assert!(has("8", "village_code"), "{report}");
    assert!(has("9", "member1_living_alone"), "{report}");
    assert!(has("9", "village_contact_phone"), "{report}");
    assert!(
        !errors.iter().any(|(r, _, _)| r == "2" || r == "3"),
        "{report}"
    );
    for value in NAMES.iter().chain(NUMBERS.iter()) {
        assert!(!report.contains(value), "{value} in the report:\n{report}");
    }
    assert_eq!(std::fs::read(dir.join("dry.csv")).unwrap(), {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend_from_slice(report.as_bytes());
        b
    });

    // Again: nothing twice.
    let again = import(&[]).await;
    assert_eq!(again.status.code(), Some(1), "{}", all(&again));
    assert!(
        out(&again).contains("imported 0, already imported 2, rejected 6"),
        "{}",
        all(&again)
    );
    assert_eq!(events(url, &clerk).await, (3, 3));
    let dry = import(&["--dry-run"]).await;
    assert!(
        out(&dry).contains("imported 0, already imported 2, rejected 6"),
        "{}",
        all(&dry)
    );

    // A changed row under an imported family_ref is refused.
    let changed = mixed_csv().replace("新村4号", "新村40号");
    std::fs::write(dir.join("changed.csv"), changed).unwrap();
    let r = nuanxin(
        dir,
        url,
        &["import", "families", "changed.csv", "--as", "Import Clerk"],
    )
    .await;
    assert!(
        out(&r).contains("imported 0, already imported 1, rejected 7"),
        "{}",
        all(&r)
    );
    assert_eq!(events(url, &clerk).await, (3, 3));

    // An XLSX register, every row good: exit 0, twice.
    register_xlsx(&dir.join("register.xlsx"));
    for expected in [
        "imported 1, already imported 0, rejected 0",
        "imported 0, already imported 1, rejected 0",
    ] {
        let r = nuanxin(
            dir,
            url,
            &["import", "families", "register.xlsx", "--as", &clerk],
        )
        .await;
        assert_eq!(r.status.code(), Some(0), "{}", all(&r));
        assert!(out(&r).contains(expected), "{}", all(&r));
    }
    assert_eq!(events(url, &clerk).await, (5, 5));

    // Files that cannot be read, or no such user: 2, nothing written.
    std::fs::write(dir.join("broken.xlsx"), "not a workbook").unwrap();
    std::fs::write(dir.join("headless.csv"), "a,b\n1,2\n").unwrap();
    for args in [
        &["import", "families", "broken.xlsx", "--as", &clerk][..],
        &["import", "families", "missing.csv", "--as", &clerk][..],
        &["import", "families", "headless.csv", "--as", &clerk][..],
        &["import", "families", "register.csv", "--as", "nobody"][..],
    ] {
        let r = nuanxin(dir, url, args).await;
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", all(&r));
    }
    assert_eq!(events(url, &clerk).await, (5, 5));
}

/// A register of `rows` rows with English headers. Row `i` (file row
/// `i + 2`) has a bad category when `i % 17 == 5` and a village outside
/// the clerk's scope when `i % 23 == 7`; with `changed`, rows with
/// `i % 10 == 3` have another address.
fn many_rows_csv(rows: usize, changed: bool) -> String {
    let mut text = "family_ref,category,village_code,address,registered_on,member1_name,member1_sex,member1_birth_date,village_contact_name,village_contact_phone\n".to_owned();
    for i in 0..rows {
        let category = if i % 17 == 5 { "其他" } else { "失独" };
        let county = if i % 23 == 7 { "450306" } else { "450305" };
        let house = if changed && i % 10 == 3 { i + 1000 } else { i };
        text.push_str(&format!(
            "M{i:04},{category},{county}{:03}{:03},新村{house}号,2024-01-10,成员{i},女,1950-03-01,联系人{},1390000000{}\n",
            1 + i % 7,
            1 + i % 11,
            i % 5,
            i % 5
        ));
    }
    text
}

/// The (row, column) pairs of the error report of [`many_rows_csv`], in
/// the order rows imported one after another report them.
fn many_rows_errors(rows: usize, changed: bool) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for i in 0..rows {
        let row = (i + 2).to_string();
        let (bad_category, outside) = (i % 17 == 5, i % 23 == 7);
        if bad_category {
            errors.push((row.clone(), "category".to_owned()));
        }
        if outside {
            errors.push((row.clone(), "village_code".to_owned()));
        }
        if changed && i % 10 == 3 && !bad_category && !outside {
            errors.push((row, "family_ref".to_owned()));
        }
    }
    errors
}

fn report_rows(path: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].trim_start_matches('\u{feff}').to_owned(),
                r[1].to_owned(),
            )
        })
        .collect()
}

async fn many_rows_scenario(dir: &Path, url: &str) {
    const ROWS: usize = 300;
    let added = nuanxin(
        dir,
        url,
        &[
            "users",
            "add",
            "--name",
            "Clerk",
            "--role",
            "caseworker",
            "--scope",
            "450305",
        ],
    )
    .await;
    assert!(added.status.success(), "{}", all(&added));
    let bad = (0..ROWS).filter(|i| i % 17 == 5 || i % 23 == 7).count();
    let changed_good = (0..ROWS)
        .filter(|i| i % 10 == 3 && i % 17 != 5 && i % 23 != 7)
        .count();
    let good = ROWS - bad;
    std::fs::write(dir.join("many.csv"), many_rows_csv(ROWS, false)).unwrap();
    std::fs::write(dir.join("changed.csv"), many_rows_csv(ROWS, true)).unwrap();
    let import = |file: &'static str, extra: &'static [&'static str]| async move {
        let mut args = vec!["import", "families", file, "--as", "Clerk"];
        args.extend_from_slice(extra);
        nuanxin(dir, url, &args).await
    };

    let first = import("many.csv", &["--errors", "first.csv"]).await;
    assert_eq!(first.status.code(), Some(1), "{}", all(&first));
    assert!(
        out(&first).contains(&format!(
            "imported {good}, already imported 0, rejected {bad}"
        )),
        "{}",
        all(&first)
    );
    assert!(
        all(&first).contains(&format!("{good}/{good} rows")),
        "{}",
        all(&first)
    );
    assert_eq!(
        report_rows(&dir.join("first.csv")),
        many_rows_errors(ROWS, false)
    );
    // Two events a row (the registration and the village contact).
    assert_eq!(events(url, "Clerk").await.0, 2 * good as i64);

    // Changed rows are refused by the store, the others found imported:
    // the same report whether dry or not, in row order.
    let expected = format!(
        "imported 0, already imported {}, rejected {}",
        good - changed_good,
        bad + changed_good
    );
    let dry = import("changed.csv", &["--dry-run", "--errors", "dry.csv"]).await;
    assert!(out(&dry).contains(&expected), "{}", all(&dry));
    let again = import("changed.csv", &["--errors", "again.csv"]).await;
    assert_eq!(again.status.code(), Some(1), "{}", all(&again));
    assert!(out(&again).contains(&expected), "{}", all(&again));
    assert_eq!(
        report_rows(&dir.join("again.csv")),
        many_rows_errors(ROWS, true)
    );
    assert_eq!(
        std::fs::read(dir.join("dry.csv")).unwrap(),
        std::fs::read(dir.join("again.csv")).unwrap()
    );
    assert_eq!(events(url, "Clerk").await.0, 2 * good as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_import_many_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nuanxin.db", dir.path().display());
    many_rows_scenario(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_import_many_rows() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    many_rows_scenario(dir.path(), &url).await;
    drop_database(&admin, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_import_families() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nuanxin.db", dir.path().display());
    import_scenario(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_import_families() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    import_scenario(dir.path(), &url).await;
    drop_database(&admin, &url).await;
}
