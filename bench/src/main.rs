//! `nuanxin-bench`: Nuanxin's benchmarks, kept out of the server crates.
//! Each writes only into a scratch store named by `DATABASE_URL` (an empty
//! SQLite file or PostgreSQL database). How to run them and what they
//! measure: `bench/README.md`; the figures: `docs/performance.md`.
//! (`nuanxin bench …` runs this binary.)

mod alerts;
mod checkpoint;
mod generate;
mod import;
mod load;
mod pages;
mod read_models;
mod report;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nuanxin_infra::{DatabaseUrl, Settings};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "nuanxin-bench",
    version,
    about = "Nuanxin's benchmarks (scratch stores only)"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` of a scratch store.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Connections in the store pool.
    #[arg(long, env = "NUANXIN_DB_CONNECTIONS", default_value_t = 10)]
    db_connections: u32,
}

impl StoreArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = Settings::new(DatabaseUrl::parse(&self.database_url)?);
        s.max_connections = self.db_connections;
        Ok(s)
    }
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Generate N synthetic families into an EMPTY store, rebuild the read
    /// models and time overdue-visit pages (county prefix, one contact).
    ReadModels {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Timed page requests per query.
        #[arg(long, default_value_t = 1000)]
        runs: usize,
    },
    /// Generate N synthetic families into an EMPTY store (or, with
    /// `--reuse`, take the families already there and forget its alerts),
    /// then time one alert scan and report its peak memory.
    Alerts {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Scan the families of a store generated before.
        #[arg(long)]
        reuse: bool,
        /// Scan this day (default: the latest day with at most
        /// `--overdue-share` of the families overdue).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// The share of families overdue on the scan day.
        #[arg(long, default_value_t = 0.10)]
        overdue_share: f64,
    },
    /// Generate N synthetic families into an EMPTY store (or, with
    /// `--reuse`, take the families already there), then time the period
    /// report of the whole store for a year (as known now and 30 days
    /// earlier) and its CSV and XLSX renderings.
    Report {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Time a store generated before.
        #[arg(long)]
        reuse: bool,
        /// Timed runs of each report (best kept).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Generate N synthetic families into an EMPTY store (or, with
    /// `--reuse`, take the families already there), then time a signed
    /// checkpoint (heads query, whole checkpoint) and `audit verify
    /// --checkpoint` against the plain chain verification.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Time a store generated before.
        #[arg(long)]
        reuse: bool,
        /// Timed runs of the heads query and of the checkpoint (best kept).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Generate N families into an EMPTY store (or, with `--reuse`, take the
    /// families already there), start `nuanxin serve` as a child process,
    /// sign in a caseworker, a supervisor and an admin, and time each main
    /// web page one request at a time; also weigh each page.
    Pages {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Time a store generated before.
        #[arg(long)]
        reuse: bool,
        /// Timed requests per page.
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
    /// Write a generated register of N rows (CSV, Chinese header, three
    /// commands a row), create an importing caseworker in an EMPTY store
    /// and time `nuanxin import families` on it (the binary beside this
    /// one): a dry run, the import, and the import again.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep the register at this path (default: a temporary file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The `nuanxin` binary to import with (default: the one beside
        /// this binary).
        #[arg(long)]
        bin: Option<PathBuf>,
    },
    /// Generate N families into an EMPTY store, start `nuanxin serve` as a
    /// child process and drive it over HTTP with the caseworker mix; in the
    /// same run measure raw single-row INSERTs into an events-shaped table
    /// and aggregate load time against history length. Writes
    /// `<out>/<store>-<timestamp>.{md,json}` (see bench/README.md).
    Load {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Concurrent HTTP clients (and raw-insert connections).
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Measured seconds of each load phase.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Seconds of HTTP load before the measured window.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// The child server's store pool (`NUANXIN_DB_CONNECTIONS`).
        #[arg(long, default_value_t = 10)]
        server_connections: u32,
        /// The `nuanxin` binary to serve with (default: the one beside
        /// this binary).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Directory of the report files.
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// Timed folds per history length.
        #[arg(long, default_value_t = 31)]
        fold_reps: usize,
        /// Drive the families of a store generated before (no generation).
        #[arg(long)]
        reuse: bool,
        /// The child server's log filter (`NUANXIN_LOG`); anything but
        /// `warn` keeps its log file for profiling.
        #[arg(long, default_value = "warn")]
        server_log: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("NUANXIN_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::ReadModels {
            store,
            families,
            seed,
            runs,
        } => {
            let report = read_models::read_models(&store.settings()?, families, seed, runs).await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Alerts {
            store,
            families,
            seed,
            reuse,
            on,
            overdue_share,
        } => {
            let day = on.map_or(
                alerts::ScanDay::OverdueShare(overdue_share),
                alerts::ScanDay::On,
            );
            let report = alerts::alerts(&store.settings()?, families, seed, reuse, day).await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Report {
            store,
            families,
            seed,
            reuse,
            runs,
        } => {
            let report = report::report(&store.settings()?, families, seed, reuse, runs).await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Pages {
            store,
            families,
            seed,
            reuse,
            runs,
        } => {
            let report = pages::pages(
                &store.settings()?,
                &store.database_url,
                families,
                seed,
                reuse,
                runs,
            )
            .await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Checkpoint {
            store,
            families,
            seed,
            reuse,
            runs,
        } => {
            let report =
                checkpoint::checkpoint(&store.settings()?, families, seed, reuse, runs).await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Import {
            store,
            rows,
            seed,
            out,
            bin,
        } => {
            let opts = import::ImportOptions {
                database_url: store.database_url.clone(),
                rows,
                seed,
                out,
                bin,
            };
            let report = import::import(&store.settings()?, &opts).await?;
            println!("{}", report.markdown());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        BenchCommand::Load {
            store,
            families,
            seed,
            clients,
            seconds,
            warmup,
            server_connections,
            server_bin,
            out,
            fold_reps,
            reuse,
            server_log,
        } => {
            let opts = load::LoadOptions {
                database_url: store.database_url.clone(),
                families,
                seed,
                clients,
                seconds,
                warmup_seconds: warmup,
                server_connections,
                server_bin,
                out_dir: out,
                fold_reps,
                reuse,
                server_log,
            };
            let report = load::load(&store.settings()?, &opts).await?;
            let (md, json) = report.write(&opts.out_dir)?;
            println!("{}", report.markdown());
            eprintln!("report: {} and {}", md.display(), json.display());
        }
    }
    Ok(())
}
