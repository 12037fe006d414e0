//! Typed configuration. The API's CLI fills [`Settings`] from flags and
//! environment variables; tests build it directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::DatabaseUrl;
use anyhow::Context;
use nuanxin_domain::policy::VisitPolicy;
use nuanxin_domain::{Clock, SystemClock};

use crate::alerts::AlertConfig;
use crate::audit::checkpoint::CheckpointConfig;
use crate::privacy::MasterKeySource;
use crate::users::Secret;

/// Where the master key file is by default: beside the SQLite file
/// (`nuanxin.db` → `nuanxin-master.key`), or `nuanxin-master.key` in the
/// working directory for PostgreSQL.
pub fn default_master_key_file(url: &DatabaseUrl) -> PathBuf {
    let checkpoints = CheckpointConfig::defaults_for(url);
    let dir = checkpoints
        .key_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let stem = checkpoints
        .key_file
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches("-signing.key")
                .to_owned()
        })
        .unwrap_or_else(|| "nuanxin".into());
    dir.join(format!("{stem}-master.key"))
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite://PATH` (default `sqlite://nuanxin.db`) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Creates the first admin on an empty user table.
    pub bootstrap_token: Option<Secret>,
    /// The bootstrap admin's first password (login `admin`), for the web
    /// pages; at least 10 characters.
    pub bootstrap_password: Option<Secret>,
    /// How long a web session lives without a request.
    pub session_idle: std::time::Duration,
    /// The visit policy from the configuration (`NUANXIN_POLICY`).
    pub policy: VisitPolicy,
    /// Whether `policy` was configured (a file was given). If not, the
    /// policy stored in the database by an earlier start or by
    /// `nuanxin policy reload` stays in force, and the defaults apply only
    /// to a store that has none.
    pub policy_configured: bool,
    /// Connections in the store pool.
    pub max_connections: u32,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// The server clock (fixed in tests).
    pub clock: Arc<dyn Clock>,
    /// Overdue-visit alerts: webhook URLs and secret, the daily scan time,
    /// retry backoff. The escalation period is the policy's
    /// `escalate_after_days`.
    pub alerts: AlertConfig,
    /// A PostgreSQL streaming standby to read lists and histories from
    /// (`NUANXIN_READ_DATABASE_URL`).
    pub read_database_url: Option<DatabaseUrl>,
    /// How far behind the standby may be for its answers to be used
    /// (`NUANXIN_READ_MAX_STALENESS_MS`, default 5 s).
    pub read_max_staleness: std::time::Duration,
    /// Signed checkpoints of the event log: their directory, the signing
    /// key's file, the daily checkpoint (defaults beside the SQLite file,
    /// or in the working directory for PostgreSQL).
    pub checkpoints: CheckpointConfig,
    /// Limits on slow or greedy HTTP clients.
    pub http: HttpLimits,
    /// The master key that wraps every person key (`crate::privacy`):
    /// `NUANXIN_MASTER_KEY`, or a key file (`NUANXIN_MASTER_KEY_FILE`,
    /// default beside the SQLite file, or in the working directory for
    /// PostgreSQL), created on first start.
    pub master_key: MasterKeySource,
}

/// What one client may hold of the server: a connection that has not sent
/// its request headers within `header_read_timeout` (also an idle
/// keep-alive connection), or a body not read within `body_read_timeout`,
/// is closed; one address (IP) holds at most `max_connections_per_address`
/// connections at once (0: no cap — e.g. behind a reverse proxy, where
/// every client has the proxy's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: std::time::Duration,
    pub body_read_timeout: std::time::Duration,
    pub max_connections_per_address: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            max_connections_per_address: 64,
        }
    }
}

impl Settings {
    pub fn new(database_url: DatabaseUrl) -> Self {
        Self {
            checkpoints: CheckpointConfig::defaults_for(&database_url),
            master_key: MasterKeySource::File(default_master_key_file(&database_url)),
            database_url,
            bind: "127.0.0.1:8080".into(),
            bootstrap_token: None,
            bootstrap_password: None,
            session_idle: crate::accounts::DEFAULT_IDLE,
            policy: VisitPolicy::default(),
            policy_configured: false,
            max_connections: 10,
            body_limit_bytes: 256 * 1024,
            clock: Arc::new(SystemClock),
            alerts: AlertConfig::default(),
            read_database_url: None,
            read_max_staleness: std::time::Duration::from_secs(5),
            http: HttpLimits::default(),
        }
    }
}

/// Reads a visit-policy TOML file; keys left out keep their defaults.
pub fn load_policy(path: &Path) -> anyhow::Result<VisitPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the visit policy {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing the visit policy {}", path.display()))
}

/// The policy at `path`, or the built-in defaults when there is none.
pub fn policy_from(path: Option<&PathBuf>) -> anyhow::Result<VisitPolicy> {
    path.map_or_else(|| Ok(VisitPolicy::default()), |p| load_policy(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_policy_file_spells_out_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.example.toml");
        assert_eq!(load_policy(&path).expect("parses"), VisitPolicy::default());
    }
}
