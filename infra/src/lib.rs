//! Infrastructure: the event store on SQLite (default) or PostgreSQL, our
//! migrations, configuration, and users with their tokens.

pub mod alerts;
pub mod audit;
pub mod cases;
pub mod config;
pub mod generate;
pub mod projector;
pub mod rebuild;
pub mod repo;
pub mod users;

pub use cases::{Cases, CommandRequest, ExecError, Outcome};
pub use config::Settings;
pub use nuanxin_projections::{DatabaseUrl, Db};

use anyhow::Context;

/// Applies our migrations (idempotent): the same at start and with
/// `nuanxin migrate`.
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    match db {
        Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite")
            .run(pool)
            .await
            .context("migrating the SQLite store")?,
        Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
            .run(pool)
            .await
            .context("migrating the PostgreSQL store")?,
    }
    Ok(())
}
