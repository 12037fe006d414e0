//! `nuanxin-bench load`: Nuanxin's throughput and latency next to the
//! physical limit of the same store, measured in one run.
//!
//! 1. Generates N synthetic families into an EMPTY scratch store
//!    (`infra::generate`) and rebuilds the read models from them.
//! 2. Starts the real server as a child process (`nuanxin serve`, this very
//!    binary) on `127.0.0.1:0`, so its resident memory is its own and not
//!    mixed with the load generator's; creates a caseworker with scope `45`
//!    through the API and drives it over HTTP with C clients for T seconds:
//!    70% visits, 10% contact assignments, 10% case-file reads, 5% overdue
//!    pages, 5% notes. The day is marked as scanned for alerts first, so the
//!    server's start-up alert scan (timed by `bench alerts`) does not run
//!    inside the load window.
//! 3. Stops the server and measures the limit: single-row INSERT
//!    transactions into an events-shaped scratch table in the same database
//!    (same columns, defaults and indexes as `events`), with the same C for
//!    the same T, as pgbench would.
//! 4. Times folding one family's aggregate (`Core::fold`) at 10, 100 and
//!    1,000 events.
//! 5. Writes `<out>/<store>-<timestamp>.{md,json}` and prints the table.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::generate;
use anyhow::Context;
use chrono::{Days, NaiveDate};
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::metadata::Recorder;
use nuanxin_domain::{
    Category, FamilyCommand, Phone, Role, Scope, SelfCare, Sex, Text, UserRole, VillageCode,
};
use nuanxin_infra::on_pool;
use nuanxin_infra::{CommandRequest, Db, Settings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

use nuanxin_infra::Nuanxin;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `DATABASE_URL` as given: handed to the child server unchanged.
    pub database_url: String,
    pub families: usize,
    pub seed: u64,
    pub clients: usize,
    pub seconds: u64,
    /// Seconds of load before the measured window (not counted).
    pub warmup_seconds: u64,
    /// The child server's pool size (`NUANXIN_DB_CONNECTIONS`).
    pub server_connections: u32,
    /// The `nuanxin` binary to serve with; this executable by default.
    pub server_bin: Option<PathBuf>,
    /// Where the report files go.
    pub out_dir: PathBuf,
    /// Timed folds per history length.
    pub fold_reps: usize,
    /// Drive the families already in the store instead of generating.
    pub reuse: bool,
    /// The child server's `NUANXIN_LOG` filter; when not `warn`, its log is
    /// kept (and its path printed) for profiling.
    pub server_log: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub store_version: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub count: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpStats {
    pub op: &'static str,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerMemory {
    /// Resident memory when the load started, MiB.
    pub rss_at_start_mib: f64,
    /// Peak resident memory during the load (warm-up included), MiB.
    pub peak_rss_during_load_mib: f64,
    /// How the peak was taken: `VmHWM after clear_refs` or `VmRSS sampled
    /// every 100 ms`.
    pub peak_method: String,
    /// The process's lifetime peak (start-up catch-up included), MiB.
    pub lifetime_vm_hwm_mib: f64,
    /// Peak of the anonymous part of RSS (heap, stacks) sampled every
    /// 100 ms during the load, MiB: RSS also counts pages of files the
    /// server maps (SQLite reads the database through `mmap`).
    pub peak_rss_anon_mib: f64,
    /// File-backed RSS at the end of the load, MiB.
    pub rss_file_at_end_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FoldPoint {
    pub events: u64,
    pub fold_median_ms: f64,
    pub fold_p95_ms: f64,
    /// Median of a few `Commands::execute` (add note) at this length.
    pub command_median_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub name: &'static str,
    pub target: String,
    pub actual: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub store: String,
    pub started_at: String,
    pub machine: Machine,
    pub families: u64,
    pub events_generated: u64,
    pub generate_seconds: f64,
    pub rebuild_seconds: f64,
    pub clients: usize,
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub server_connections: u32,
    pub server: String,
    pub ops: Vec<OpStats>,
    /// Visits, contact assignments and notes together.
    pub commands: Stats,
    pub reads: Stats,
    pub all: Stats,
    pub error_samples: Vec<String>,
    pub server_memory: ServerMemory,
    pub group_commit: GroupCommit,
    pub raw_insert: Stats,
    pub command_to_raw_ratio: f64,
    pub fold: Vec<FoldPoint>,
    /// fold time at the longest history over the shortest.
    pub fold_growth: f64,
    pub fold_grows_with_history: bool,
    pub targets: Vec<TargetCheck>,
}

// ---------------------------------------------------------------- stats

#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) ms: Vec<f64>,
    pub(crate) errors: u64,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.ms.extend(other.ms);
        self.errors += other.errors;
    }

    pub(crate) fn stats(&self, seconds: f64) -> Stats {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let rank = (p * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Stats {
            count: v.len() as u64,
            per_second: v.len() as f64 / seconds.max(1e-9),
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: v.last().copied().unwrap_or(0.0),
            errors: self.errors,
        }
    }
}

// -------------------------------------------------------------- machine

fn first_line_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

pub(crate) fn machine(store_version: String) -> Machine {
    let kb = first_line_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model: first_line_field("/proc/cpuinfo", "model name").unwrap_or_default(),
        memory_gib: kb / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        store_version,
    }
}

/// A `kB` field of `/proc/<pid>/status`, in MiB.
fn proc_mib(pid: u32, field: &str) -> Option<f64> {
    let v = first_line_field(&format!("/proc/{pid}/status"), field)?;
    Some(v.split_whitespace().next()?.parse::<f64>().ok()? / 1024.0)
}

// --------------------------------------------------------------- server

/// A private copy of the `nuanxin` binary built beside this one, to serve
/// with: a `cargo build` while the benchmark runs would replace
/// `target/release/nuanxin` under the running server.
fn own_binary_copy() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("nuanxin-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("nuanxin");
    if !copy.exists() {
        let server = std::env::current_exe()?.with_file_name("nuanxin");
        std::fs::copy(&server, &copy).with_context(|| {
            format!(
                "copying {} to serve with (build it: cargo build --release --workspace)",
                server.display()
            )
        })?;
    }
    Ok(copy)
}

pub(crate) struct Server {
    child: tokio::process::Child,
    pid: u32,
    pub(crate) base: String,
    log: PathBuf,
    keep_log: bool,
}

/// Where the child server keeps its signed checkpoints and signing key: a
/// temporary directory of this run (not the working directory), removed at
/// the end.
fn checkpoint_config() -> nuanxin_infra::audit::checkpoint::CheckpointConfig {
    let files = std::env::temp_dir().join(format!("nuanxin-bench-load-{}", std::process::id()));
    nuanxin_infra::audit::checkpoint::CheckpointConfig {
        dir: files.join("checkpoints"),
        key_file: files.join("signing.key"),
        daily: true,
    }
}

pub(crate) async fn start_server(opts: &LoadOptions, admin_token: &str) -> anyhow::Result<Server> {
    let bin = match &opts.server_bin {
        Some(p) => p.clone(),
        None => own_binary_copy()?,
    };
    let log = std::env::temp_dir().join(format!("nuanxin-bench-load-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).context("creating the server log")?;
    let mut child = tokio::process::Command::new(&bin)
        .arg("serve")
        .env("DATABASE_URL", &opts.database_url)
        .env("NUANXIN_BIND", "127.0.0.1:0")
        // Every client of the benchmark has the same address.
        .env("NUANXIN_MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env("NUANXIN_BOOTSTRAP_TOKEN", admin_token)
        .env(
            "NUANXIN_DB_CONNECTIONS",
            opts.server_connections.to_string(),
        )
        .env("NUANXIN_LOG", &opts.server_log)
        .env_remove("NUANXIN_POLICY")
        .env_remove("NUANXIN_ALERT_WEBHOOKS")
        .env("NUANXIN_CHECKPOINT_DIR", checkpoint_config().dir)
        .env("NUANXIN_SIGNING_KEY_FILE", checkpoint_config().key_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} serve", bin.display()))?;
    let pid = child.id().context("the server exited at once")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("nuanxin listening on ") {
                return Ok::<_, anyhow::Error>(addr.trim().to_owned());
            }
        }
        anyhow::bail!(
            "the server exited before listening (log: {})",
            log.display()
        )
    })
    .await
    .context("the server did not start within 120 s")??;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        child,
        pid,
        base: addr,
        log,
        keep_log: opts.server_log != "warn",
    })
}

impl Server {
    pub(crate) async fn stop(mut self) {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if self.keep_log {
            eprintln!("server log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("nuanxin-bench-load-{}", std::process::id())),
        );
    }
}

// ----------------------------------------------------------------- load

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Visit,
    Contact,
    Read,
    Overdue,
    Note,
}

const OPS: [Op; 5] = [Op::Visit, Op::Contact, Op::Read, Op::Overdue, Op::Note];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Visit => "visit (POST /visits)",
            Op::Contact => "contact assignment (POST /contacts)",
            Op::Read => "case-file read (GET /families/{id})",
            Op::Overdue => "overdue page (GET /overdue-visits)",
            Op::Note => "note (POST /notes)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_command(self) -> bool {
        matches!(self, Op::Visit | Op::Contact | Op::Note)
    }

    /// The caseworker mix: 70 / 10 / 10 / 5 / 5.
    fn pick(rng: &mut StdRng) -> Op {
        match rng.gen_range(0..100) {
            0..=69 => Op::Visit,
            70..=79 => Op::Contact,
            80..=89 => Op::Read,
            90..=94 => Op::Overdue,
            _ => Op::Note,
        }
    }
}

/// What the clients pick from.
struct Targets {
    /// (family, role) pairs with a contact: valid visit targets.
    visits: Vec<(String, String)>,
    families: Vec<String>,
    counties: Vec<String>,
}

async fn targets(db: &Db) -> anyhow::Result<Targets> {
    let t = on_pool!(db, pool => {
        let visits: Vec<(String, String)> =
            sqlx::query_as("SELECT DISTINCT family_id, role FROM visit_schedule ORDER BY 1, 2")
                .fetch_all(pool)
                .await?;
        let families: Vec<String> =
            sqlx::query_scalar("SELECT family_id FROM case_files WHERE status = 'open' ORDER BY 1")
                .fetch_all(pool)
                .await?;
        let counties: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT substr(village_code, 1, 6) FROM case_files ORDER BY 1")
                .fetch_all(pool)
                .await?;
        Targets { visits, families, counties }
    });
    anyhow::ensure!(
        !t.visits.is_empty() && !t.families.is_empty() && !t.counties.is_empty(),
        "the generated store has no families with contacts"
    );
    Ok(t)
}

struct ClientResult {
    samples: Vec<Samples>,
    error_samples: Vec<String>,
}

struct Run {
    base: String,
    token: String,
    today: String,
    targets: Targets,
    measure_from: Instant,
    until: Instant,
}

async fn client(run: Arc<Run>, http: reqwest::Client, seed: u64) -> ClientResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut samples: Vec<Samples> = OPS.iter().map(|_| Samples::default()).collect();
    let mut error_samples = Vec::new();
    let api = format!("{}/api/v1", run.base);
    let t = &run.targets;
    loop {
        let started = Instant::now();
        if started >= run.until {
            break;
        }
        let op = Op::pick(&mut rng);
        let request = match op {
            Op::Visit => {
                let (family, role) = &t.visits[rng.gen_range(0..t.visits.len())];
                let mode = ["home", "phone", "video"][rng.gen_range(0..3)];
                http.post(format!("{api}/families/{family}/visits"))
                    .json(&json!({
                        "role": role, "mode": mode, "visited_on": run.today,
                        "findings": "情况稳定，按时服药", "needs": []
                    }))
            }
            Op::Contact => {
                let family = &t.families[rng.gen_range(0..t.families.len())];
                let role = if rng.gen_bool(0.5) {
                    "village"
                } else {
                    "township"
                };
                http.post(format!("{api}/families/{family}/contacts"))
                    .json(&json!({
                        "role": role,
                        "person": {
                            "id": Uuid::from_u128(rng.gen()),
                            "name": "联系人（压测）",
                            "phone": format!("139{:08}", rng.gen_range(0..100_000_000u32)),
                        },
                        "assigned_on": run.today
                    }))
            }
            Op::Read => {
                let family = &t.families[rng.gen_range(0..t.families.len())];
                http.get(format!("{api}/families/{family}"))
            }
            Op::Overdue => {
                let county = &t.counties[rng.gen_range(0..t.counties.len())];
                http.get(format!(
                    "{api}/overdue-visits?village_code_prefix={county}&limit=50"
                ))
            }
            Op::Note => {
                let family = &t.families[rng.gen_range(0..t.families.len())];
                http.post(format!("{api}/families/{family}/notes"))
                    .json(&json!({"text": "电话回访：老人身体尚好，需求已记录"}))
            }
        };
        let outcome = match request.bearer_auth(&run.token).send().await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.bytes().await;
                match body {
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(b) => Err(format!(
                        "{} {}: {}",
                        op.name(),
                        status,
                        String::from_utf8_lossy(&b[..b.len().min(300)])
                    )),
                    Err(e) => Err(format!("{}: reading the body: {e}", op.name())),
                }
            }
            Err(e) => Err(format!("{}: {e}", op.name())),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if started < run.measure_from {
            continue;
        }
        let s = &mut samples[op.index()];
        match outcome {
            Ok(()) => s.ms.push(ms),
            Err(e) => {
                s.errors += 1;
                if error_samples.len() < 5 {
                    error_samples.push(e);
                }
            }
        }
    }
    ClientResult {
        samples,
        error_samples,
    }
}

/// Polls the server's VmRSS and RssAnon every 100 ms until `stop`; their
/// peaks.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(f64, f64)> {
    tokio::spawn(async move {
        let (mut max, mut anon) = (0.0f64, 0.0f64);
        while !stop.load(Ordering::Relaxed) {
            if let Some(rss) = proc_mib(pid, "VmRSS") {
                max = max.max(rss);
            }
            if let Some(rss) = proc_mib(pid, "RssAnon") {
                anon = anon.max(rss);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (max, anon)
    })
}

struct HttpResult {
    ops: Vec<Samples>,
    error_samples: Vec<String>,
    memory: ServerMemory,
    group_commit: GroupCommit,
}

/// What the server's group commit did during the load (from `/metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupCommit {
    pub batches: u64,
    pub jobs: u64,
    pub jobs_per_batch: f64,
    pub ms_per_batch: f64,
}

/// The server's group-commit counters: (batches, jobs, micros).
async fn append_counters(http: &reqwest::Client, base: &str) -> (u64, u64, u64) {
    let Ok(resp) = http.get(format!("{base}/metrics")).send().await else {
        return (0, 0, 0);
    };
    let text = resp.text().await.unwrap_or_default();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        value("nuanxin_append_batches "),
        value("nuanxin_append_jobs "),
        value("nuanxin_append_micros "),
    )
}

async fn drive(opts: &LoadOptions, db: &Db, today: NaiveDate) -> anyhow::Result<HttpResult> {
    let admin_token = format!("bench-{}", Uuid::new_v4().simple());
    if opts.reuse {
        // The store's users exist already: bootstrapping would not apply.
        nuanxin_infra::users::create(
            db,
            "bench admin",
            nuanxin_domain::UserRole::Admin,
            &nuanxin_domain::Scope::everything(),
            Some(nuanxin_infra::users::Secret::new(admin_token.clone())),
        )
        .await?;
    }
    let server = start_server(opts, &admin_token).await?;
    let result = drive_server(opts, db, today, &server, &admin_token).await;
    if result.is_err() {
        eprintln!("server log: {}", server.log.display());
        if let Ok(log) = std::fs::read_to_string(&server.log) {
            eprintln!("{}", &log[log.len().saturating_sub(4000)..]);
        }
    }
    server.stop().await;
    result
}

async fn drive_server(
    opts: &LoadOptions,
    db: &Db,
    today: NaiveDate,
    server: &Server,
    admin_token: &str,
) -> anyhow::Result<HttpResult> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    for _ in 0..100 {
        if http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = http
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(admin_token)
        .json(&json!({"name": "压测社工", "role": "caseworker", "scope": "45"}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "creating the caseworker: {}",
        created.status()
    );
    let body: serde_json::Value = created.json().await?;
    let token = body["token"]
        .as_str()
        .context("no token in the user answer")?
        .to_owned();

    let targets = targets(db).await?;
    eprintln!(
        "driving {} with {} clients: {} s warm-up, {} s measured ({} visit targets, {} families, {} counties) …",
        server.base,
        opts.clients,
        opts.warmup_seconds,
        opts.seconds,
        targets.visits.len(),
        targets.families.len(),
        targets.counties.len()
    );
    let rss_at_start_mib = proc_mib(server.pid, "VmRSS").unwrap_or(0.0);
    let lifetime_before = proc_mib(server.pid, "VmHWM").unwrap_or(0.0);
    // Reset the child's peak to its current RSS (Linux ≥ 4.0; needs the
    // right to ptrace it, which a parent of the same user has).
    let peak_reset = std::fs::write(format!("/proc/{}/clear_refs", server.pid), "5").is_ok();
    let appends_before = append_counters(&http, &server.base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(server.pid, stop.clone());
    let now = Instant::now();
    let measure_from = now + Duration::from_secs(opts.warmup_seconds);
    let run = Arc::new(Run {
        base: server.base.clone(),
        token,
        today: today.to_string(),
        targets,
        measure_from,
        until: measure_from + Duration::from_secs(opts.seconds),
    });
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            tokio::spawn(client(
                run.clone(),
                http.clone(),
                opts.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)),
            ))
        })
        .collect();
    let mut ops: Vec<Samples> = OPS.iter().map(|_| Samples::default()).collect();
    let mut error_samples = Vec::new();
    for task in tasks {
        let r = task.await.context("a load client panicked")?;
        for (all, mine) in ops.iter_mut().zip(r.samples) {
            all.merge(mine);
        }
        for e in r.error_samples {
            if error_samples.len() < 10 {
                error_samples.push(e);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let appends_after = append_counters(&http, &server.base).await;
    let batches = appends_after.0.saturating_sub(appends_before.0);
    let jobs = appends_after.1.saturating_sub(appends_before.1);
    let micros = appends_after.2.saturating_sub(appends_before.2);
    let group_commit = GroupCommit {
        batches,
        jobs,
        jobs_per_batch: jobs as f64 / batches.max(1) as f64,
        ms_per_batch: micros as f64 / 1000.0 / batches.max(1) as f64,
    };
    let (sampled, peak_rss_anon_mib) = sampler.await.unwrap_or((0.0, 0.0));
    let hwm = proc_mib(server.pid, "VmHWM").unwrap_or(0.0);
    let rss_file_at_end_mib = proc_mib(server.pid, "RssFile").unwrap_or(0.0);
    let memory = if peak_reset {
        ServerMemory {
            rss_at_start_mib,
            peak_rss_during_load_mib: hwm.max(sampled),
            peak_method: "VmHWM after clear_refs".into(),
            lifetime_vm_hwm_mib: lifetime_before.max(hwm),
            peak_rss_anon_mib,
            rss_file_at_end_mib,
        }
    } else {
        ServerMemory {
            rss_at_start_mib,
            peak_rss_during_load_mib: sampled,
            peak_method: "VmRSS sampled every 100 ms".into(),
            lifetime_vm_hwm_mib: hwm,
            peak_rss_anon_mib,
            rss_file_at_end_mib,
        }
    };
    Ok(HttpResult {
        ops,
        error_samples,
        memory,
        group_commit,
    })
}

// ----------------------------------------------------------- raw insert

const RAW_TABLE: &str = "bench_raw_events";

/// An events-shaped scratch table: the columns, defaults, keys and indexes
/// of `events`, without the append-only triggers (which fire only on
/// UPDATE, DELETE and TRUNCATE, so an INSERT never meets them).
fn raw_ddl(db: &Db) -> Vec<String> {
    let mut ddl = vec![format!("DROP TABLE IF EXISTS {RAW_TABLE}")];
    match db {
        Db::Postgres(_) => ddl.push(format!(
            "CREATE TABLE {RAW_TABLE} (LIKE events INCLUDING ALL)"
        )),
        Db::Sqlite(_) => {
            ddl.push(format!(
                "CREATE TABLE {RAW_TABLE} (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(16)))),
                aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL,
                sequence INTEGER NOT NULL CHECK (sequence >= 0),
                event_type TEXT NOT NULL, event_version TEXT NOT NULL,
                payload TEXT NOT NULL, metadata TEXT NOT NULL,
                recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                UNIQUE (aggregate_type, aggregate_id, sequence)) STRICT"
            ));
            ddl.push(format!(
                "CREATE UNIQUE INDEX {RAW_TABLE}_idempotency ON {RAW_TABLE} \
                 (json_extract(metadata, '$.recorded_by_id'), json_extract(metadata, '$.idempotency_key')) \
                 WHERE json_extract(metadata, '$.idempotency_key') IS NOT NULL"
            ));
        }
    }
    ddl
}

/// A visit event and its metadata, the size the server writes.
fn raw_row() -> (serde_json::Value, serde_json::Value) {
    let payload = json!({"VisitRecorded": {
        "action_id": Uuid::new_v4(), "role": "village", "contact_id": Uuid::new_v4(),
        "mode": "home", "visited_on": "2026-11-28", "findings": "情况稳定，按时服药", "needs": []
    }});
    let metadata = json!({
        "recorded_by_id": Uuid::new_v4().to_string(), "recorded_by_name": "压测社工",
        "recorded_by_role": "caseworker", "recorded_at": chrono::Utc::now().to_rfc3339(),
        "request_id": Uuid::new_v4().to_string(),
        "prev_hash": "0".repeat(64), "hash": "f".repeat(64)
    });
    (payload, metadata)
}

async fn raw_inserts(opts: &LoadOptions, settings: &Settings) -> anyhow::Result<Stats> {
    let db = Db::connect(&settings.database_url, opts.clients as u32).await?;
    on_pool!(&db, pool => {
        for s in raw_ddl(&db) {
            sqlx::query(&s).execute(pool).await?;
        }
    });
    let now = Instant::now();
    let measure_from = now + Duration::from_secs(opts.warmup_seconds.min(2));
    let until = measure_from + Duration::from_secs(opts.seconds);
    let sql = format!(
        "INSERT INTO {RAW_TABLE} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let rows = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..opts.clients {
        let (db, sql, first_error, rows) =
            (db.clone(), sql.clone(), first_error.clone(), rows.clone());
        handles.push(tokio::spawn(async move {
            let mut s = Samples::default();
            let stream = Uuid::new_v4().to_string();
            let (payload, metadata) = raw_row();
            let mut sequence = 0i64;
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                sequence += 1;
                let r = on_pool!(&db, pool => {
                    sqlx::query(&sql)
                        .bind("family")
                        .bind(&stream)
                        .bind(sequence)
                        .bind("VisitRecorded")
                        .bind("1.0")
                        .bind(sqlx::types::Json(&payload))
                        .bind(sqlx::types::Json(&metadata))
                        .execute(pool)
                        .await
                        .map(|_| ())
                });
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                rows.fetch_add(1, Ordering::Relaxed);
                if started < measure_from {
                    continue;
                }
                match r {
                    Ok(()) => s.ms.push(ms),
                    Err(e) => {
                        s.errors += 1;
                        let mut first = first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            s
        }));
    }
    let mut all = Samples::default();
    for h in handles {
        all.merge(h.await.context("a raw-insert client panicked")?);
    }
    on_pool!(&db, pool => {
        sqlx::query(&format!("DROP TABLE IF EXISTS {RAW_TABLE}")).execute(pool).await?;
    });
    db.close().await;
    if let Some(e) = first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        eprintln!("raw insert error (first): {e}");
    }
    Ok(all.stats(opts.seconds as f64))
}

// ----------------------------------------------------------------- fold

fn text(s: &str) -> anyhow::Result<Text> {
    Text::parse(s).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn fold_growth(
    opts: &LoadOptions,
    settings: &Settings,
    today: NaiveDate,
) -> anyhow::Result<Vec<FoldPoint>> {
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    let family_id = Uuid::new_v4();
    let req = CommandRequest {
        family_id,
        recorder: Recorder {
            id: Uuid::new_v4(),
            name: "bench".into(),
            role: UserRole::Caseworker,
        },
        scope: Scope::everything(),
        request_id: "bench-load".into(),
        expected_version: None,
        idempotency_key: None,
        request_hash: None,
    };
    let born = NaiveDate::from_ymd_opt(1950, 3, 1).context("date")?;
    let member = |sex| Member {
        id: Uuid::new_v4(),
        name: "成员".into(),
        sex,
        birth_date: born,
        id_number: None,
        phone: None,
        living_alone: false,
        self_care: SelfCare::Independent,
    };
    let registered_on = today.checked_sub_days(Days::new(400)).unwrap_or(today);
    let exec = |command: FamilyCommand| {
        let (app, req) = (&app, &req);
        async move { app.commands.execute(command, req).await }
    };
    exec(FamilyCommand::RegisterFamily {
        action_id: Uuid::new_v4(),
        category: Category::Bereaved,
        village_code: VillageCode::parse("450999999999").map_err(|e| anyhow::anyhow!("{e}"))?,
        address: text("压测地址")?,
        registered_on,
        members: vec![member(Sex::Male), member(Sex::Female)],
    })
    .await?;
    let mut version = exec(FamilyCommand::AssignContact {
        action_id: Uuid::new_v4(),
        role: Role::Village,
        person: ContactPerson {
            id: Uuid::new_v4(),
            name: "联系人".into(),
            phone: Phone::parse("13900139000").map_err(|e| anyhow::anyhow!("{e}"))?,
        },
        assigned_on: registered_on,
    })
    .await?
    .version;
    let note = || -> anyhow::Result<FamilyCommand> {
        Ok(FamilyCommand::AddNote {
            action_id: Uuid::new_v4(),
            text: text("电话回访：老人身体尚好，需求已记录")?,
        })
    };
    let mut points = Vec::new();
    for target in [10u64, 100, 1000] {
        while version < target {
            version = exec(note()?).await?.version;
        }
        for _ in 0..3 {
            app.core.fold(family_id).await?;
        }
        let mut folds = Samples::default();
        for _ in 0..opts.fold_reps.max(1) {
            let t = Instant::now();
            let v = app.core.fold(family_id).await?.version;
            folds.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(v == version, "fold read version {v}, expected {version}");
        }
        let fold = folds.stats(1.0);
        let mut commands = Samples::default();
        for _ in 0..5 {
            let t = Instant::now();
            version = exec(note()?).await?.version;
            commands.ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        points.push(FoldPoint {
            events: target,
            fold_median_ms: fold.p50_ms,
            fold_p95_ms: fold.p95_ms,
            command_median_ms: commands.stats(1.0).p50_ms,
        });
    }
    db.close().await;
    Ok(points)
}

// ------------------------------------------------------------------ run

/// The store's name and version, for the report.
pub(crate) async fn store_version(db: &Db) -> anyhow::Result<String> {
    Ok(match db {
        Db::Postgres(pool) => {
            sqlx::query_scalar("SHOW server_version")
                .fetch_one(pool)
                .await?
        }
        Db::Sqlite(pool) => format!(
            "SQLite {}",
            sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
                .fetch_one(pool)
                .await?
        ),
    })
}

pub async fn load(settings: &Settings, opts: &LoadOptions) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        opts.clients > 0 && opts.seconds > 0,
        "--clients and --seconds must be > 0"
    );
    let started_at = chrono::Utc::now();
    if opts.server_bin.is_none() {
        own_binary_copy()?;
    }
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    let store_version = store_version(&db).await?;
    let today = app.core.today();

    let (generated, rebuilt) = if opts.reuse {
        let events = generate::event_count(&db).await?;
        anyhow::ensure!(events > 0, "--reuse needs a store generated before");
        eprintln!("[1/4] reusing the store's {events} events …");
        let generated = generate::Generated {
            families: on_pool!(&db, pool => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM case_files").fetch_one(pool).await?
            }) as u64,
            events: events as u64,
            seconds: 0.0,
        };
        (generated, nuanxin_infra::rebuild::RebuildReport::default())
    } else {
        eprintln!("[1/4] generating {} families …", opts.families);
        generate::fill(&app, opts.families, opts.seed).await?
    };
    // The server scans today's alerts at start unless the day was scanned;
    // that scan is `bench alerts`' subject, not this one's.
    on_pool!(&db, pool => {
        sqlx::query("INSERT INTO alert_scans (day) VALUES ($1) ON CONFLICT (day) DO NOTHING")
            .bind(today)
            .execute(pool)
            .await?;
    });

    // Likewise today's signed checkpoint (`bench checkpoint` times it).
    let checkpoints = checkpoint_config();
    let started = Instant::now();
    nuanxin_infra::audit::checkpoint::Checkpointer::open(
        db.clone(),
        settings.clock.clone(),
        &checkpoints,
    )?
    .daily(today)
    .await
    .context("taking today's checkpoint")?;
    eprintln!(
        "      today's checkpoint taken in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    eprintln!("[2/4] HTTP load against `nuanxin serve` …");
    let http = drive(opts, &db, today).await?;
    db.close().await;

    eprintln!(
        "[3/4] raw single-row INSERTs into {RAW_TABLE}, {} clients, {} s …",
        opts.clients, opts.seconds
    );
    let raw = raw_inserts(opts, settings).await?;

    eprintln!("[4/4] aggregate fold time against history length …");
    let fold = fold_growth(opts, settings, today).await?;
    if let Some(files) = checkpoints.key_file.parent() {
        let _ = std::fs::remove_dir_all(files);
    }

    let secs = opts.seconds as f64;
    let ops: Vec<OpStats> = OPS
        .iter()
        .map(|op| OpStats {
            op: op.name(),
            stats: http.ops[op.index()].stats(secs),
        })
        .collect();
    let mut commands = Samples::default();
    let mut reads = Samples::default();
    let mut all = Samples::default();
    for op in OPS {
        let s = &http.ops[op.index()];
        let copy = || Samples {
            ms: s.ms.clone(),
            errors: s.errors,
        };
        if op.is_command() {
            commands.merge(copy());
        } else {
            reads.merge(copy());
        }
        all.merge(copy());
    }
    let commands = commands.stats(secs);
    let command_to_raw_ratio = commands.per_second / raw.per_second.max(1e-9);
    let fold_growth = match (fold.first(), fold.last()) {
        (Some(a), Some(b)) => b.fold_median_ms / a.fold_median_ms.max(1e-9),
        _ => 1.0,
    };
    let read_p99 = ops[Op::Read.index()].stats.p99_ms;
    let all = all.stats(secs);
    let rss = http.memory.peak_rss_during_load_mib;
    let targets = vec![
        TargetCheck {
            name: "command throughput / raw insert throughput",
            target: "≥ 100% (at the very least 50%)".into(),
            actual: format!("{:.1}%", command_to_raw_ratio * 100.0),
            pass: command_to_raw_ratio >= 1.0,
        },
        TargetCheck {
            name: "command p99",
            target: "≤ 25 ms".into(),
            actual: format!("{:.2} ms", commands.p99_ms),
            pass: commands.p99_ms <= 25.0,
        },
        TargetCheck {
            name: "case-file read p99",
            target: "≤ 5 ms".into(),
            actual: format!("{read_p99:.2} ms"),
            pass: read_p99 <= 5.0,
        },
        TargetCheck {
            name: "errors",
            target: "0".into(),
            actual: all.errors.to_string(),
            pass: all.errors == 0,
        },
        TargetCheck {
            name: "server peak RSS during load",
            target: "≤ 200 MB".into(),
            actual: format!("{:.1} MB", rss * 1.048_576),
            pass: rss * 1.048_576 <= 200.0,
        },
    ];
    Ok(LoadReport {
        store: settings.database_url.kind().into(),
        started_at: started_at.to_rfc3339(),
        machine: machine(store_version),
        families: generated.families,
        events_generated: generated.events,
        generate_seconds: generated.seconds,
        rebuild_seconds: rebuilt.seconds,
        clients: opts.clients,
        seconds: opts.seconds,
        warmup_seconds: opts.warmup_seconds,
        server_connections: opts.server_connections,
        server: "child process `nuanxin serve` (release build), NUANXIN_LOG=warn".into(),
        ops,
        commands,
        reads: reads.stats(secs),
        all,
        error_samples: http.error_samples,
        server_memory: http.memory,
        group_commit: http.group_commit,
        raw_insert: raw,
        command_to_raw_ratio,
        fold_grows_with_history: fold_growth > 2.0,
        fold_growth,
        fold,
        targets,
    })
}

fn row(name: &str, s: &Stats) -> String {
    format!(
        "| {name} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
        s.count, s.per_second, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.errors
    )
}

impl LoadReport {
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "## `nuanxin-bench load` — {store}, {families} families, {clients} clients, {secs} s\n\n\
             Run {at}. Machine: {cpus} CPUs ({cpu}), {mem:.1} GiB RAM, Linux {kernel}, {ver}. \
             Server: {server}, pool of {conns} connections. Dataset: {events} events \
             (generated in {gen:.1} s, read models rebuilt in {reb:.1} s). \
             Warm-up {warm} s not counted.\n\n\
             | operation | count | per s | p50 ms | p95 ms | p99 ms | max ms | errors |\n\
             |---|---|---|---|---|---|---|---|\n",
            store = self.store,
            families = self.families,
            clients = self.clients,
            secs = self.seconds,
            at = self.started_at,
            cpus = m.cpus,
            cpu = m.cpu_model,
            mem = m.memory_gib,
            kernel = m.kernel,
            ver = m.store_version,
            server = self.server,
            conns = self.server_connections,
            events = self.events_generated,
            gen = self.generate_seconds,
            reb = self.rebuild_seconds,
            warm = self.warmup_seconds,
        );
        for op in &self.ops {
            out.push_str(&row(op.op, &op.stats));
        }
        out.push_str(&row("**all commands**", &self.commands));
        out.push_str(&row("**all reads**", &self.reads));
        out.push_str(&row("**all requests**", &self.all));
        out.push_str(&row(
            "raw single-row INSERT (events-shaped table)",
            &self.raw_insert,
        ));
        out.push_str(&format!(
            "\nCommand throughput / raw insert throughput: **{:.1}%** ({:.1} / {:.1} per s).\n\n\
             Group commit (warm-up included): {} transactions, {:.1} jobs each, {:.2} ms each.\n\n\
             Server memory: {:.1} MiB at the start of the load, peak {:.1} MiB during it ({}); \
             lifetime peak {:.1} MiB; anonymous (heap) peak {:.1} MiB, file-backed {:.1} MiB at the end.\n\n\
             | history (events) | fold p50 ms | fold p95 ms | command p50 ms |\n|---|---|---|---|\n",
            self.command_to_raw_ratio * 100.0,
            self.commands.per_second,
            self.raw_insert.per_second,
            self.group_commit.batches,
            self.group_commit.jobs_per_batch,
            self.group_commit.ms_per_batch,
            self.server_memory.rss_at_start_mib,
            self.server_memory.peak_rss_during_load_mib,
            self.server_memory.peak_method,
            self.server_memory.lifetime_vm_hwm_mib,
            self.server_memory.peak_rss_anon_mib,
            self.server_memory.rss_file_at_end_mib,
        ));
        for p in &self.fold {
            out.push_str(&format!(
                "| {} | {:.3} | {:.3} | {:.2} |\n",
                p.events, p.fold_median_ms, p.fold_p95_ms, p.command_median_ms
            ));
        }
        out.push_str(&format!(
            "\nFold time at {} events is {:.1}× that at {} events: {}.\n\n\
             | target | wanted | measured | |\n|---|---|---|---|\n",
            self.fold.last().map_or(0, |p| p.events),
            self.fold_growth,
            self.fold.first().map_or(0, |p| p.events),
            if self.fold_grows_with_history {
                "load time grows with history"
            } else {
                "load time does not grow materially with history"
            }
        ));
        for t in &self.targets {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                t.name,
                t.target,
                t.actual,
                if t.pass { "met" } else { "**missed**" }
            ));
        }
        if !self.error_samples.is_empty() {
            out.push_str("\nFirst errors:\n\n");
            for e in &self.error_samples {
                out.push_str(&format!("- `{}`\n", e.replace('`', "'")));
            }
        }
        out
    }

    /// Writes `<dir>/<store>-<timestamp>.{md,json}`; returns the paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stamp = chrono::DateTime::parse_from_rfc3339(&self.started_at)
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_else(|_| "run".into());
        let base = dir.join(format!("{}-{stamp}", self.store));
        let md = base.with_extension("md");
        let js = base.with_extension("json");
        std::fs::write(&md, self.markdown())?;
        std::fs::write(&js, serde_json::to_string_pretty(self)? + "\n")?;
        Ok((md, js))
    }
}
