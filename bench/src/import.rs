//! `nuanxin-bench import`: the time `nuanxin import families` takes for a
//! generated register. Writes a CSV register of N rows (Chinese header;
//! each row two members with valid ID numbers and both contacts, so three
//! commands per row; 40 townships × 99 villages of county 450305), creates
//! an importing caseworker in an EMPTY store, and runs the `nuanxin` binary
//! beside this one on the file: a dry run, the import, and the import again
//! (every row already imported), each timed on the wall clock. Target
//! (issue 15): 100,000 rows in at most 2 minutes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{Days, NaiveDate};
use nuanxin_domain::{Scope, UserRole};
use nuanxin_infra::{accounts, Db, Settings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::generate;

/// The county of the generated register.
const COUNTY: &str = "450305";

#[derive(Debug, Serialize)]
pub struct Run {
    pub what: &'static str,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub summary: String,
}

#[derive(Debug, Serialize)]
pub struct ImportBench {
    pub machine: crate::load::Machine,
    pub store: String,
    pub rows: usize,
    pub file: String,
    pub file_bytes: u64,
    pub runs: Vec<Run>,
}

impl ImportBench {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## Import: {} rows on {} ({} CPUs, {})\n\n| run | wall time | rows/s | summary |\n|---|---|---|---|\n",
            self.rows, self.store, self.machine.cpus, self.machine.cpu_model
        );
        for r in &self.runs {
            s.push_str(&format!(
                "| {} | {:.1} s | {:.0} | {} |\n",
                r.what, r.seconds, r.rows_per_second, r.summary
            ));
        }
        s
    }
}

/// A valid ID number (GB 11643) for someone of county 450305 born on
/// `born`, with a sequence number of the right parity for the sex.
fn id_number(born: NaiveDate, male: bool, seq: u32) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let seq = (seq % 500) * 2 + u32::from(male);
    let body = format!("{COUNTY}{}{seq:03}", born.format("%Y%m%d"));
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", char::from(CHECK[(sum % 11) as usize]))
}

fn day(rng: &mut StdRng, from: NaiveDate, span_days: u64) -> NaiveDate {
    from.checked_add_days(Days::new(rng.gen_range(0..=span_days)))
        .unwrap_or(from)
}

/// Writes a register of `rows` rows to `path`.
pub fn write_register(path: &Path, rows: usize, seed: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut rng = StdRng::seed_from_u64(seed);
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(
        "\u{feff}台账编号,类别,村级区划代码,住址,登记日期,\
         成员1姓名,成员1性别,成员1出生日期,成员1身份证号,成员1电话,成员1独居,成员1自理能力,\
         成员2姓名,成员2性别,成员2出生日期,成员2身份证号,成员2电话,成员2独居,成员2自理能力,\
         村级联系人姓名,村级联系人电话,乡镇联系人姓名,乡镇联系人电话,联系人确定日期\r\n"
            .as_bytes(),
    )?;
    let base = NaiveDate::from_ymd_opt(1940, 1, 1).expect("date");
    let registered_from = NaiveDate::from_ymd_opt(2015, 1, 1).expect("date");
    for n in 0..rows {
        let township = 1 + n % 40;
        let village = 1 + (n / 40) % 99;
        let father = day(&mut rng, base, 365 * 30);
        let mother = day(&mut rng, father, 365 * 4);
        let registered = day(&mut rng, registered_from, 365 * 9);
        let assigned = registered
            .checked_add_days(Days::new(10))
            .unwrap_or(registered);
        let seq = rng.gen_range(0..500);
        let care = ["自理", "自理", "自理", "半失能", "失能"][rng.gen_range(0..5)];
        writeln!(
            out,
            "B{n:06},{cat},{COUNTY}{township:03}{village:03},第{township}乡第{village}村{house}号,{registered},\
             成员{a},男,{father},{fid},1380000{p1:04},否,{care},\
             成员{b},女,{mother},{mid},,否,自理,\
             村联系人{township}-{village},1390000{v:04},乡联系人{township},1370000{t:04},{assigned}\r",
            cat = if n % 3 == 0 { "伤残" } else { "失独" },
            house = 1 + n % 97,
            a = rng.gen_range(1000..9999),
            b = rng.gen_range(1000..9999),
            fid = id_number(father, true, seq),
            mid = id_number(mother, false, seq + 1),
            p1 = n % 10_000,
            v = village,
            t = township,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Runs `nuanxin import families` with `args` and times it.
async fn timed(
    bin: &Path,
    database_url: &str,
    db_connections: u32,
    what: &'static str,
    args: &[&str],
    rows: usize,
) -> anyhow::Result<Run> {
    eprintln!("{what} …");
    let started = Instant::now();
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("NUANXIN_DB_CONNECTIONS", db_connections.to_string())
        .env("NUANXIN_LOG", "warn")
        .env_remove("NUANXIN_POLICY")
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Run {
        what,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        summary: stdout.trim().to_owned(),
    })
}

pub struct ImportOptions {
    pub database_url: String,
    pub rows: usize,
    pub seed: u64,
    /// Keep the register here (default: a temporary file).
    pub out: Option<PathBuf>,
    /// The `nuanxin` binary (default: the one beside this binary).
    pub bin: Option<PathBuf>,
}

pub async fn import(settings: &Settings, opts: &ImportOptions) -> anyhow::Result<ImportBench> {
    let db = Db::open(&settings.database_url, settings.max_connections).await?;
    let events = generate::event_count(&db).await?;
    anyhow::ensure!(
        events == 0,
        "the import benchmark needs an empty store (this one holds {events} events): \
         point DATABASE_URL at a scratch database"
    );
    let machine = crate::load::machine(crate::load::store_version(&db).await?);
    let store = settings.database_url.kind().to_owned();
    let scratch = tempfile::tempdir()?;
    let file = opts
        .out
        .clone()
        .unwrap_or_else(|| scratch.path().join("register.csv"));
    eprintln!("writing {} rows to {} …", opts.rows, file.display());
    write_register(&file, opts.rows, opts.seed)?;
    let file_bytes = std::fs::metadata(&file)?.len();
    let (clerk, _, _) = accounts::create(
        &db,
        accounts::NewUser {
            name: "Import Clerk".into(),
            role: UserRole::Caseworker,
            scope: Scope::parse(COUNTY).expect("a county is a scope"),
            login: None,
            password: None,
            token: None,
        },
        chrono::Utc::now(),
    )
    .await
    .context("creating the importing user")?;
    db.close().await;
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("nuanxin"),
    };
    let clerk = clerk.id.to_string();
    let path = file.display().to_string();
    let base = ["import", "families", path.as_str(), "--as", clerk.as_str()];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let mut runs = Vec::new();
    let url = &opts.database_url;
    let conns = settings.max_connections;
    runs.push(
        timed(
            &bin,
            url,
            conns,
            "dry run",
            &with(&["--dry-run"]),
            opts.rows,
        )
        .await?,
    );
    runs.push(timed(&bin, url, conns, "import", &with(&[]), opts.rows).await?);
    runs.push(
        timed(
            &bin,
            url,
            conns,
            "again (nothing new)",
            &with(&[]),
            opts.rows,
        )
        .await?,
    );
    Ok(ImportBench {
        machine,
        store,
        rows: opts.rows,
        file: path,
        file_bytes,
        runs,
    })
}
