//! Infrastructure: everything that does I/O, in layers.
//!
//! - [`store`]: the database — connection, migrations, transactions, and
//!   the SQL of every table (one module per table);
//! - [`core`]: what every service shares (store, clock, policy in force);
//! - [`commands`]: every care action, recorded exactly once
//!   ([`Commands::execute`]) and sealed into its family's hash chain;
//!   [`append`]: group commit — events with their read-model rows, and
//!   access-log rows, written in shared transactions;
//! - [`reads`]: every read, limited to the reader's scope and written to the
//!   access log ([`Reads`]);
//! - [`projector`] and [`read_models`]: keeping the read models in step with
//!   the log and the visit policy; [`rebuild`] replays the whole log;
//! - [`audit`]: the hash chain, histories and their CSV;
//! - [`export`]: spreadsheet-safe CSV (and the cell rule for XLSX);
//! - [`alerts`]: the daily overdue-visit scan and webhook delivery;
//! - [`leader`]: which of several server processes on one database does
//!   the background work; [`standby`]: reads from a streaming standby;
//! - [`streams`]: activities and inspections, streams of their own (their
//!   commands are in [`commands::streams`]; [`bulletin`] counts the
//!   report figures of insurance, activities and inspections);
//! - [`reports`]: the period report as known at an instant, and its CSV
//!   and XLSX;
//! - [`import`]: families from an association's register (XLSX, CSV);
//! - [`sheets`]: the case, overdue and coverage-gap lists as XLSX;
//! - [`generate`]: synthetic families for the benchmarks, and [`demo`]: a
//!   made-up county for `nuanxin demo`, recorded through the command path;
//! - [`maintenance`]: the operator's `backup`, `restore` and `doctor`;
//! - [`users`] and [`config`].
//!
//! [`Nuanxin`] puts the services together over one store.

pub mod accounts;
pub mod alerts;
pub mod append;
pub mod audit;
pub mod bulletin;
pub mod commands;
pub mod config;
pub mod core;
pub mod demo;
pub mod export;
pub mod generate;
pub mod import;
pub mod leader;
pub mod maintenance;
pub mod privacy;
pub mod projector;
pub mod read_models;
pub mod reads;
pub mod rebuild;
pub mod repo;
pub mod reports;
pub mod seal_copy;
pub mod sheets;
pub mod standby;
pub mod store;
pub mod streams;
pub mod users;

use std::sync::Arc;

pub use crate::core::{Core, StoreError};
pub use commands::streams::{StreamError, StreamOutcome, StreamRequest};
pub use commands::{CommandRequest, Commands, ExecError, Outcome};
pub use config::{HttpLimits, Settings};
pub use projector::{ProjectError, Projector};
pub use reads::{Found, FoundFamily, FoundMember, Needle, ReadError, ReadKind, Reads, Viewer};
pub use store::{DatabaseUrl, Db};

/// The services over one store: what `serve` runs and the CLI uses.
pub struct Nuanxin {
    pub core: Arc<Core>,
    pub commands: Commands,
    pub reads: Reads,
    pub projector: Arc<Projector>,
    pub appender: append::Appender,
}

impl Nuanxin {
    /// The services over `core`; starts the group-commit lanes on the
    /// current tokio runtime.
    pub fn new(core: Core) -> Self {
        let core = Arc::new(core);
        let appender = append::Appender::start(core.db().clone());
        Self {
            commands: Commands::new(core.clone(), appender.clone()),
            reads: Reads::new(core.clone(), appender.clone()),
            projector: Arc::new(Projector::new(core.clone())),
            appender,
            core,
        }
    }

    /// Opens (and migrates) the store named in `settings` and builds the
    /// services over it with the settings' clock and policy.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let db = Db::open(&settings.database_url, settings.max_connections).await?;
        privacy::check_key_source(&db, &settings.master_key).await?;
        let mut core = Core::from_settings(db, settings)?;
        core.keyring().check_store(core.db()).await?;
        if let Some(url) = &settings.read_database_url {
            if !matches!(core.db(), Db::Postgres(_)) {
                anyhow::bail!(
                    "NUANXIN_READ_DATABASE_URL needs a PostgreSQL primary (DATABASE_URL)"
                );
            }
            core = core.with_standby(
                standby::Standby::connect(
                    url,
                    settings.max_connections,
                    settings.read_max_staleness,
                )
                .await?,
            );
        }
        Ok(Self::new(core))
    }

    pub fn db(&self) -> &Db {
        self.core.db()
    }
}
