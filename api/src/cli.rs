//! The `nuanxin` command line. Every flag also reads an environment
//! variable; the variables are the documented interface (API.md "Running").

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nuanxin_domain::{Scope, UserRole};
use nuanxin_infra::accounts;
use nuanxin_infra::audit::checkpoint::{CheckpointConfig, Checkpointer, Kind};
use nuanxin_infra::config::policy_from;
use nuanxin_infra::users::{self, Secret};
use nuanxin_infra::{DatabaseUrl, Db, Nuanxin, Settings};

use crate::app::Application;

mod demo;
mod privacy;

#[derive(Debug, Parser)]
#[command(
    name = "nuanxin",
    version,
    about = "Case management for family-planning special families"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line (its first item is the program name), as
    /// `nuanxin` does; for tests and tools that run commands in-process.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Self as Parser>::try_parse_from(args)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the store first).
    Serve(ServeArgs),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Show or reload the visit policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Maintain the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Benchmarks: runs `nuanxin-bench` (built beside this binary) with the
    /// same arguments — see `nuanxin bench --help` once built.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the tamper-evident event log; export a family's history.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Overdue-visit alerts.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Personal data: erase a family's, rotate the master key, key status
    /// (docs/privacy.md).
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Import data that lives in files today.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Fill an EMPTY store with a made-up county of Guangxi (townships,
    /// villages, families with two years of visits, overdue items and
    /// alerts) to try Nuanxin with. Recorded through the same command path
    /// as the API. Everything is invented: no real names, no ID numbers,
    /// phone numbers that start with 000. Refuses (exit 2) a store that
    /// holds any event.
    Demo {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Families to record.
        #[arg(long, default_value_t = nuanxin_infra::demo::DEFAULT_FAMILIES,
              value_parser = families_in_range)]
        families: usize,
        /// The generator's seed: a seed always draws the same county.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also create users to sign in with — `demo-caseworker` (one
        /// township), `demo-supervisor` and `demo-admin` (the county) — and
        /// print their one generated password.
        #[arg(long)]
        with_users: bool,
    },
    /// Write a consistent copy of the SQLite database to FILE while the
    /// server runs (PostgreSQL: use pg_dump; this says how).
    Backup {
        #[command(flatten)]
        store: StoreArgs,
        /// The copy to write; must not exist yet.
        file: PathBuf,
        /// Why (kept in the access log with your operating-system user).
        #[arg(long, default_value = "backup")]
        reason: String,
    },
    /// Restore a backup FILE onto an empty store (DATABASE_URL must name an
    /// SQLite file that does not exist yet), migrate it and verify every
    /// hash chain.
    Restore {
        #[command(flatten)]
        store: StoreArgs,
        /// The backup written by `nuanxin backup`.
        file: PathBuf,
    },
    /// Check the store, migrations, visit policy, read models, webhooks,
    /// alert scans and the clock, and say what is wrong (exit 1 on a
    /// failure). Changes nothing.
    Doctor {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        alerts: AlertArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the families of an association's register (.xlsx or .csv,
    /// English or Chinese headers; docs/import.md). Each row is recorded as
    /// the API would record it, by the importing user, with its
    /// `family_ref` as the idempotency key: running the file again imports
    /// nothing twice. Prints `imported N, already imported N, rejected N`;
    /// exit 0 when every row was imported (now or before), 1 when some
    /// were rejected (the good ones are imported), 2 when nothing could be
    /// done (the file cannot be read, or the importing user is unknown).
    Families {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The register.
        file: PathBuf,
        /// Check every row and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the errors of rejected rows to this CSV file (`row`,
        /// `column`, `message`, `message_zh`; no values from the file).
        #[arg(long, value_name = "OUT.csv")]
        errors: Option<PathBuf>,
        /// The importing user: their id, or the name of exactly one active
        /// user [default: the first active admin of everything].
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
}

/// A command's failure with its own exit status (the import's 1 and 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Run the alert scan of a day (today by default): raise, escalate and
    /// resolve overdue-visit alerts, and print what changed. Idempotent;
    /// running servers deliver the webhook messages it writes.
    Scan {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The day to scan (YYYY-MM-DD).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Replay every event into fresh read-model tables and swap them in
    /// (servers keep serving meanwhile).
    Rebuild {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Print how many events the read models have not caught up with.
    Lag {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DatabaseUrl::DEFAULT, hide_env_values = true)]
    pub database_url: String,
    /// Connections in the store pool.
    #[arg(long, env = "NUANXIN_DB_CONNECTIONS", default_value_t = 10)]
    pub db_connections: u32,
    /// The master key file, which wraps every person's data key (created
    /// on first start; keep a copy apart from the database backups). The
    /// key itself may instead be given in `NUANXIN_MASTER_KEY` (32 bytes,
    /// base64) [default: `<db>-master.key` beside the SQLite file;
    /// `nuanxin-master.key` in the working directory for PostgreSQL].
    #[arg(long, env = "NUANXIN_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Path of the visit-policy TOML file; built-in defaults when absent.
    #[arg(long, env = "NUANXIN_POLICY")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Address to listen on.
    #[arg(long, env = "NUANXIN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Creates an admin holding this token when the user table is empty.
    #[arg(long, env = "NUANXIN_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// The first password of that admin (login `admin`) for the web pages,
    /// at least 10 characters; with it alone the admin is created too.
    #[arg(long, env = "NUANXIN_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<String>,
    /// Minutes a web session lives without a request.
    #[arg(long, env = "NUANXIN_SESSION_IDLE_MINUTES", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub session_idle_minutes: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "NUANXIN_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    /// A PostgreSQL streaming standby of the database to read lists and
    /// histories from (docs/scaling.md).
    #[arg(long, env = "NUANXIN_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// How far behind the standby may be (ms) for its answers to be used;
    /// further behind, the primary answers.
    #[arg(long, env = "NUANXIN_READ_MAX_STALENESS_MS", default_value_t = 5000)]
    pub read_max_staleness_ms: u64,
}

/// Where signed checkpoints of the event log and the key that signs them
/// live (docs/audit.md).
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Directory of the checkpoint files [default: `<db>-checkpoints/`
    /// beside the SQLite file; `nuanxin-checkpoints/` for PostgreSQL].
    #[arg(long, env = "NUANXIN_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// The installation's Ed25519 signing key (PKCS#8 PEM, mode 0600,
    /// created on first start) [default: `<db>-signing.key` beside the
    /// SQLite file; `nuanxin-signing.key` for PostgreSQL].
    #[arg(long, env = "NUANXIN_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
}

impl CheckpointArgs {
    fn config(&self, url: &DatabaseUrl) -> CheckpointConfig {
        let mut c = CheckpointConfig::defaults_for(url);
        if let Some(dir) = &self.checkpoint_dir {
            c.dir = dir.clone();
        }
        if let Some(file) = &self.signing_key_file {
            c.key_file = file.clone();
        }
        c
    }
}

/// Limits on slow or greedy clients.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Seconds a client has to send a request's headers (also how long an
    /// idle keep-alive connection stays open).
    #[arg(long, env = "NUANXIN_HEADER_TIMEOUT_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers are in.
    #[arg(long, env = "NUANXIN_BODY_TIMEOUT_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,
    /// Most connections one IP address may hold open at once (0: no cap;
    /// set 0 behind a reverse proxy, where every client has its address).
    #[arg(
        long,
        env = "NUANXIN_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64
    )]
    pub max_connections_per_address: usize,
}

impl HttpArgs {
    fn limits(&self) -> nuanxin_infra::HttpLimits {
        nuanxin_infra::HttpLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            body_read_timeout: std::time::Duration::from_secs(self.body_timeout_secs),
            max_connections_per_address: self.max_connections_per_address,
        }
    }
}

/// Overdue-visit alerts: where they are posted and when the daily scan runs.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Comma-separated URLs that receive every alert as signed JSON.
    #[arg(long, env = "NUANXIN_ALERT_WEBHOOKS", value_delimiter = ',')]
    pub alert_webhooks: Vec<String>,
    /// The HMAC-SHA256 key of the `X-Nuanxin-Signature: sha256=<hex>` header.
    #[arg(long, env = "NUANXIN_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// Local time (HH:MM, the policy's time zone) of the daily alert scan.
    #[arg(long, env = "NUANXIN_ALERT_SCAN_AT", default_value = "06:00", value_parser = parse_time)]
    pub alert_scan_at: chrono::NaiveTime,
    /// Delay before the first retry of a failed webhook post, in
    /// milliseconds; each further retry waits twice as long.
    #[arg(long, env = "NUANXIN_ALERT_RETRY_BASE_MS", default_value_t = 1000)]
    pub alert_retry_base_ms: u64,
    /// Longest wait between two attempts, in seconds.
    #[arg(long, env = "NUANXIN_ALERT_RETRY_MAX_SECS", default_value_t = 600)]
    pub alert_retry_max_secs: u64,
}

fn families_in_range(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=200_000).contains(&n) => Ok(n),
        _ => Err("expected a number of families from 1 to 200000".to_owned()),
    }
}

fn parse_time(s: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .map_err(|_| "expected a local time as HH:MM".to_owned())
}

impl AlertArgs {
    fn config(self) -> anyhow::Result<nuanxin_infra::alerts::AlertConfig> {
        let webhooks: Vec<String> = self
            .alert_webhooks
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        for url in &webhooks {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "NUANXIN_ALERT_WEBHOOKS: every URL must start with http:// or https://"
            );
        }
        anyhow::ensure!(
            self.alert_retry_base_ms > 0,
            "NUANXIN_ALERT_RETRY_BASE_MS must be at least 1"
        );
        Ok(nuanxin_infra::alerts::AlertConfig {
            webhooks,
            secret: self
                .alert_webhook_secret
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            scan_at: self.alert_scan_at,
            retry_base: std::time::Duration::from_millis(self.alert_retry_base_ms),
            retry_max: std::time::Duration::from_secs(self.alert_retry_max_secs),
            ..Default::default()
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its token (shown once).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The user's name as it appears in histories and the access log.
        #[arg(long)]
        name: String,
        /// caseworker, supervisor or admin.
        #[arg(long)]
        role: String,
        /// Jurisdiction prefix ("" for everything).
        #[arg(long, default_value = "")]
        scope: String,
        /// What the user signs in with to the web pages (default: `u-` and
        /// twelve hex digits). Set a password with `users set-password`.
        #[arg(long)]
        login: Option<String>,
    },
    /// Set a user's password for the web pages, read from standard input
    /// (one line); their web sessions end. For a user who forgot theirs.
    SetPassword {
        #[command(flatten)]
        store: StoreArgs,
        /// The user's login (see `nuanxin users list`).
        #[arg(long)]
        login: String,
    },
    /// List every user (id, role, scope, disabled, last seen, name).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: their token is refused from the next request on
    /// (running servers on PostgreSQL drop cached lookups on the database's
    /// notification). Users are never deleted.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        /// The user's id (see `nuanxin users list`).
        #[arg(long)]
        id: uuid::Uuid,
        /// Why (kept with the user, with your operating-system user).
        #[arg(long)]
        reason: String,
    },
    /// Give a user a new token and print it (shown once); the old one is
    /// refused from the next request on. For an admin who lost their token.
    RotateToken {
        #[command(flatten)]
        store: StoreArgs,
        /// The user's id (see `nuanxin users list`).
        #[arg(long)]
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the policy of the file given (or the built-in defaults) as
    /// TOML; the policy stored in a database by `reload` is not read.
    Show(PolicyArgs),
    /// Make the policy file the one in force: stores it; running servers
    /// pick it up within seconds and recompute every due date (no event
    /// replay).
    Reload {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain of every stream (or of one family) and name
    /// the first broken link of each broken chain; with `--checkpoint`,
    /// also prove the log extends each signed checkpoint given. Fails if
    /// any chain is broken or any checkpoint not extended. Recorded in the
    /// access log (as the operating-system user, with the reason) before
    /// anything is read.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Check only this family.
        #[arg(long, conflicts_with = "checkpoint")]
        family: Option<uuid::Uuid>,
        /// Why the log is read (required; kept in the access log).
        #[arg(long)]
        reason: String,
        /// Checkpoint files (or directories of them) the log must extend:
        /// no stream shorter, no head hash changed, no event removed or
        /// rewritten. Their heads files are looked for beside them, then
        /// in the checkpoint directory.
        #[arg(long, num_args = 1.., value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// The public key the checkpoints must be signed with: 64 hex
        /// digits, or a file holding them or a PEM public key [default:
        /// the installation's signing key file].
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
        #[command(flatten)]
        files: CheckpointArgs,
    },
    /// Take a signed checkpoint of the event log now: write it to the
    /// checkpoint directory and queue it for the webhooks.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        files: CheckpointArgs,
    },
    /// Print the public key that signs this installation's checkpoints, and
    /// its fingerprint.
    PublicKey {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        files: CheckpointArgs,
    },
    /// Print a family's history as CSV (as `GET …/history.csv` serves it),
    /// ID numbers masked. Recorded in the access log (as the
    /// operating-system user, with the reason) before anything is read.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The family's id.
        #[arg(long)]
        family: uuid::Uuid,
        /// Why the history is read (required; kept in the access log).
        #[arg(long)]
        reason: String,
    },
}

/// Where the master key comes from, to name it in a message.
fn master_key_place(source: &nuanxin_infra::privacy::MasterKeySource) -> String {
    use nuanxin_infra::privacy::MasterKeySource;
    match source {
        MasterKeySource::File(path) => path.display().to_string(),
        MasterKeySource::Value(_) => "NUANXIN_MASTER_KEY".into(),
        MasterKeySource::Ephemeral => "in memory".into(),
    }
}

pub(crate) fn settings(store: &StoreArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::new(DatabaseUrl::parse(&store.database_url)?);
    s.max_connections = store.db_connections;
    // The key itself only from the environment: never on a command line,
    // where `ps` shows it.
    match std::env::var("NUANXIN_MASTER_KEY") {
        Ok(key) if !key.trim().is_empty() => {
            s.master_key = nuanxin_infra::privacy::MasterKeySource::Value(key)
        }
        _ => {
            if let Some(file) = &store.master_key_file {
                s.master_key = nuanxin_infra::privacy::MasterKeySource::File(file.clone());
            }
        }
    }
    Ok(s)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let mut s = settings(&args.store)?;
            s.bind = args.bind;
            s.bootstrap_token = args
                .bootstrap_token
                .filter(|t| !t.is_empty())
                .map(Secret::new);
            s.bootstrap_password = args
                .bootstrap_password
                .filter(|t| !t.is_empty())
                .map(Secret::new);
            if let Some(problem) = s
                .bootstrap_password
                .as_ref()
                .and_then(|p| nuanxin_infra::accounts::password_problem(p.expose()))
            {
                anyhow::bail!("NUANXIN_BOOTSTRAP_PASSWORD {problem}");
            }
            s.session_idle = std::time::Duration::from_secs(args.session_idle_minutes * 60);
            s.policy = policy_from(args.policy.policy.as_ref())?;
            s.policy_configured = args.policy.policy.is_some();
            s.body_limit_bytes = args.body_limit;
            s.read_database_url = args
                .read_database_url
                .filter(|u| !u.is_empty())
                .map(|u| DatabaseUrl::parse(&u))
                .transpose()
                .context("NUANXIN_READ_DATABASE_URL")?;
            s.read_max_staleness = std::time::Duration::from_millis(args.read_max_staleness_ms);
            s.http = args.http.limits();
            s.alerts = args.alerts.config()?;
            s.checkpoints = args.checkpoints.config(&s.database_url);
            tracing::info!(store = s.database_url.kind(), "starting");
            let app = Application::build(s).await?;
            tracing::info!(addr = %app.local_addr(), "listening");
            println!("nuanxin listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate(store) => {
            let s = settings(&store)?;
            Db::open(&s.database_url, s.max_connections).await?;
            println!("migrated {:?}", s.database_url);
            Ok(())
        }
        Command::Users(UsersCommand::Add {
            store,
            name,
            role,
            scope,
            login,
        }) => {
            let role = UserRole::parse(&role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
            let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--scope {e}"))?;
            if login.as_deref().is_some_and(|l| !accounts::valid_login(l)) {
                anyhow::bail!("--login must be 3 to 32 of a-z, 0-9, '.', '_', '-'");
            }
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let new = accounts::NewUser {
                name,
                role,
                scope,
                login,
                password: None,
                token: None,
            };
            let (user, login, token) = match accounts::create(&db, new, chrono::Utc::now()).await {
                Ok(created) => created,
                Err(accounts::CreateError::LoginTaken) => anyhow::bail!("the login is taken"),
                Err(e) => return Err(anyhow::Error::new(e).context("creating the user")),
            };
            println!(
                "id:    {}\nlogin: {}\nrole:  {}\nscope: {:?}\ntoken: {}",
                user.id,
                login,
                user.role,
                user.scope.as_str(),
                token.expose()
            );
            eprintln!("The token is shown only now; keep it safe.");
            Ok(())
        }
        Command::Users(UsersCommand::SetPassword { store, login }) => {
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            if let Some(problem) = accounts::password_problem(password) {
                anyhow::bail!("the password {problem}");
            }
            let Some((user, _)) = nuanxin_infra::store::users::by_login(&db, &login).await? else {
                anyhow::bail!("no user (not disabled) signs in as {login}");
            };
            let secret = Secret::new(password);
            accounts::set_password(
                &db,
                &users::TokenCache::default(),
                user.id,
                &secret,
                chrono::Utc::now(),
            )
            .await
            .context("setting the password")?;
            tracing::info!(target_user.id = %user.id, by = %format!("os:{}", os_user()), "password set");
            eprintln!("The password of {login} is set; their web sessions have ended.");
            Ok(())
        }
        Command::Users(UsersCommand::List { store }) => {
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let mut after = None;
            println!("id\tlogin\trole\tscope\tdisabled_at\tlast_seen_at\tname");
            loop {
                let page = users::list(&db, &Scope::everything(), after, 500)
                    .await
                    .context("listing users")?;
                for u in &page {
                    let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
                    };
                    println!(
                        "{}\t{}\t{}\t{:?}\t{}\t{}\t{}",
                        u.user.id,
                        u.login,
                        u.user.role,
                        u.user.scope.as_str(),
                        at(u.disabled_at),
                        at(u.last_seen_at),
                        u.user.name
                    );
                }
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some(last.user.id),
                    _ => break,
                }
            }
            Ok(())
        }
        Command::Users(UsersCommand::Disable { store, id, reason }) => {
            let reason = nuanxin_domain::Text::parse_at_most(&reason, 2000)
                .map_err(|e| anyhow::anyhow!("--reason {e}"))?;
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let by = format!("os:{}", os_user());
            let done = users::disable(
                &db,
                &users::TokenCache::default(),
                id,
                chrono::Utc::now(),
                &by,
                reason.as_str(),
            )
            .await
            .context("disabling the user")?;
            match done {
                Ok(u) => {
                    println!(
                        "disabled {} ({}, scope {:?})",
                        u.user.id,
                        u.user.role,
                        u.user.scope.as_str()
                    );
                    Ok(())
                }
                Err(users::Refused::NotFound) => anyhow::bail!("no user has the id {id}"),
                Err(users::Refused::Disabled) => anyhow::bail!("the user {id} is already disabled"),
            }
        }
        Command::Users(UsersCommand::RotateToken { store, id }) => {
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let by = format!("os:{}", os_user());
            let done = users::rotate_token(
                &db,
                &users::TokenCache::default(),
                id,
                chrono::Utc::now(),
                &by,
            )
            .await
            .context("rotating the token")?;
            match done {
                Ok((record, token)) => {
                    let user = record.user;
                    println!(
                        "id:    {}\nrole:  {}\nscope: {:?}\ntoken: {}",
                        user.id,
                        user.role,
                        user.scope.as_str(),
                        token.expose()
                    );
                    eprintln!(
                        "The token is shown only now; keep it safe. The old one no longer works."
                    );
                    Ok(())
                }
                Err(users::Refused::NotFound) => anyhow::bail!("no user has the id {id}"),
                Err(users::Refused::Disabled) => {
                    anyhow::bail!("the user {id} is disabled and gets no token")
                }
            }
        }
        Command::Audit(command) => audit(command).await,
        Command::Privacy(command) => privacy::run(command).await,
        Command::Backup {
            store,
            file,
            reason,
        } => {
            let reason = nuanxin_domain::Text::parse(&reason)
                .map_err(|e| anyhow::anyhow!("--reason {e}"))?;
            let s = settings(&store)?;
            let db = Db::connect(&s.database_url, 2).await?;
            let report =
                nuanxin_infra::maintenance::backup(&db, &file, &os_user(), reason.as_str()).await;
            db.close().await;
            let report = report?;
            println!(
                "backup written: {} ({} bytes), {} events in {} chain(s): {}",
                report.file.display(),
                report.bytes,
                report.verify.events,
                report.verify.streams,
                chains(&report.verify)
            );
            eprintln!(
                "The copy holds the personal data sealed; it opens only with the master key \
                 ({}), which is not in it: keep the key apart from the copy, and both as safe \
                 as the server.",
                master_key_place(&s.master_key)
            );
            anyhow::ensure!(
                report.verify.is_intact(),
                "the database backed up fails verification; run `nuanxin audit verify`"
            );
            Ok(())
        }
        Command::Restore { store, file } => {
            let s = settings(&store)?;
            let report = nuanxin_infra::maintenance::restore(&file, &s.database_url).await?;
            for link in &report.verify.broken {
                println!("BROKEN {link}");
            }
            println!(
                "restored {} into {}, migrated; audit verify: {} event(s) in {} chain(s): {}",
                file.display(),
                report.database.display(),
                report.verify.events,
                report.verify.streams,
                chains(&report.verify)
            );
            anyhow::ensure!(
                report.verify.is_intact(),
                "the restored event log fails verification: {} broken chain(s)",
                report.verify.broken.len()
            );
            println!(
                "personal data opens only with the master key it was written with: serve the \
                 restored store with NUANXIN_MASTER_KEY_FILE (or NUANXIN_MASTER_KEY) set to it \
                 [this store's default: {}]",
                master_key_place(&s.master_key)
            );
            Ok(())
        }
        Command::Doctor {
            store,
            policy,
            alerts,
        } => {
            let s = settings(&store)?;
            let alerts = alerts.config()?;
            let policy_file = policy
                .policy
                .as_ref()
                .map(|_| policy_from(policy.policy.as_ref()).map_err(|e| format!("{e:#}")));
            println!("nuanxin doctor: {:?}", s.database_url);
            let checks =
                nuanxin_infra::maintenance::doctor(nuanxin_infra::maintenance::DoctorInput {
                    database_url: &s.database_url,
                    policy_file,
                    alerts: &alerts,
                    now: chrono::Utc::now(),
                })
                .await;
            for c in &checks {
                println!("{:<5} {:<12} {}", c.verdict.label(), c.area, c.message);
            }
            let fails = checks
                .iter()
                .filter(|c| c.verdict == nuanxin_infra::maintenance::Verdict::Fail)
                .count();
            let warns = checks
                .iter()
                .filter(|c| c.verdict == nuanxin_infra::maintenance::Verdict::Warn)
                .count();
            println!("{fails} failed, {warns} warning(s)");
            anyhow::ensure!(fails == 0, "{fails} check(s) failed");
            Ok(())
        }
        Command::Import(ImportCommand::Families {
            store,
            policy,
            file,
            dry_run,
            errors,
            as_user,
        }) => import_families(store, policy, file, dry_run, errors, as_user).await,
        Command::Demo {
            store,
            policy,
            families,
            seed,
            with_users,
        } => demo::run(store, policy, families, seed, with_users).await,
        Command::Alerts(AlertsCommand::Scan { store, policy, on }) => {
            let mut s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            s.policy = policy_from(policy.policy.as_ref())?;
            let app = Nuanxin::new(nuanxin_infra::Core::from_settings(db, &s)?);
            // The policy the servers run with, if one was stored.
            app.projector.follow_stored_policy().await?;
            let on = on.unwrap_or_else(|| app.core.today());
            let report = nuanxin_infra::alerts::run_scan(
                &app.core,
                &app.projector,
                on,
                "",
                nuanxin_infra::alerts::ScanMode::Always,
            )
            .await;
            app.db().close().await;
            let report = match report {
                Err(nuanxin_infra::alerts::ScanError::InFuture { today }) => {
                    anyhow::bail!("--on {on} is after today ({today}): only today or an earlier day can be scanned")
                }
                other => other.context("scanning for alerts")?,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Policy(PolicyCommand::Reload { store, policy }) => {
            let mut s = settings(&store)?;
            s.policy = policy_from(policy.policy.as_ref())?;
            let app = Nuanxin::open(&s).await?;
            let changed = app.projector.apply_policy(s.policy.clone()).await?;
            // Recompute here too, so the policy takes effect without a
            // server; a leading server running meanwhile does the same
            // writes, each guarded, so the two never undo each other.
            let families = app.projector.recompute_pending().await?;
            println!(
                "{}",
                if changed {
                    format!(
                        "policy stored; {families} families' schedules recomputed; running servers follow within seconds"
                    )
                } else {
                    "policy unchanged".to_owned()
                }
            );
            Ok(())
        }
        Command::Projections(ProjectionsCommand::Rebuild { store, policy }) => {
            let mut s = settings(&store)?;
            s.policy = policy_from(policy.policy.as_ref())?;
            let app = Nuanxin::open(&s).await?;
            app.projector
                .adopt_policy(policy.policy.is_some().then(|| s.policy.clone()))
                .await?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let progress = |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            };
            let report = nuanxin_infra::rebuild::rebuild(&app.core, &progress).await?;
            bar.finish_and_clear();
            println!(
                "rebuilt {} families from {} events in {:.2} s ({:.0} events/s)",
                report.families,
                report.events,
                report.seconds,
                report.events as f64 / report.seconds.max(1e-9)
            );
            Ok(())
        }
        Command::Bench { args } => bench(args),
        Command::Projections(ProjectionsCommand::Lag { store }) => {
            let s = settings(&store)?;
            let app = Nuanxin::open(&s).await?;
            println!("{}", app.projector.lag().await?);
            Ok(())
        }
        Command::Policy(PolicyCommand::Show(args)) => {
            let policy = policy_from(args.policy.as_ref())?;
            let source = args
                .policy
                .as_ref()
                .map_or("built-in defaults".to_owned(), |p| p.display().to_string());
            println!("# visit policy in force ({source})");
            print!(
                "{}",
                toml::to_string_pretty(&policy).context("rendering the policy")?
            );
            Ok(())
        }
    }
}

/// `nuanxin audit …`: reads the store without migrating it.
async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    use nuanxin_infra::audit;
    match command {
        AuditCommand::Verify {
            store,
            checkpoint,
            public_key,
            files,
            reason,
            ..
        } if !checkpoint.is_empty() => {
            verify_checkpoints(&store, &checkpoint, public_key.as_deref(), &files, &reason).await
        }
        AuditCommand::Verify {
            store,
            family,
            reason,
            ..
        } => {
            let s = settings(&store)?;
            let db = nuanxin_infra::Db::connect(&s.database_url, 1).await?;
            if let Err(e) = record_cli_read(&db, family, "cli:audit verify", &reason).await {
                db.close().await;
                return Err(e);
            }
            let report = audit::verify(&db, family)
                .await
                .context("reading the event log");
            db.close().await;
            let report = report?;
            if let (Some(id), 0) = (family, report.events) {
                anyhow::bail!("no events for family {id}");
            }
            for link in &report.broken {
                println!("BROKEN {link}");
            }
            println!(
                "checked {} chain(s), {} event(s): {}",
                report.streams,
                report.events,
                if report.is_intact() {
                    "all intact".to_owned()
                } else {
                    format!("{} broken", report.broken.len())
                }
            );
            anyhow::ensure!(
                report.is_intact(),
                "the event log fails verification: {} broken chain(s)",
                report.broken.len()
            );
            Ok(())
        }
        AuditCommand::Checkpoint { store, files } => {
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let config = files.config(&s.database_url);
            let taken = match Checkpointer::open(db.clone(), s.clock.clone(), &config) {
                Ok(checkpoints) => checkpoints
                    .take(Kind::OnDemand, None)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            db.close().await;
            let taken = taken?.context("the checkpoint was not recorded")?;
            let c = &taken.signed.statement;
            println!(
                "checkpoint {} signed by key {}: position {}, {} event(s), {} stream(s), root {}",
                c.id, c.key_id, c.position, c.events, c.streams, c.merkle_root
            );
            println!("statement: {}", taken.statement_path.display());
            println!("heads:     {}", taken.heads_path.display());
            Ok(())
        }
        AuditCommand::PublicKey { store, files } => {
            let url = DatabaseUrl::parse(&store.database_url)?;
            let config = files.config(&url);
            let key =
                audit::signing::SigningKeyFile::load(&config.key_file).with_context(|| {
                    "no signing key yet: `nuanxin serve` or `nuanxin audit checkpoint` creates it"
                })?;
            let public = key.public();
            println!("key file:    {}", config.key_file.display());
            println!("key id:      {}", public.key_id());
            println!("fingerprint: {}", public.fingerprint());
            println!("public key:  {}", public.to_hex());
            print!("{}", public.to_pem());
            Ok(())
        }
        AuditCommand::Export {
            store,
            family,
            reason,
        } => {
            let s = settings(&store)?;
            let db = nuanxin_infra::Db::connect(&s.database_url, 1).await?;
            if let Err(e) = record_cli_read(&db, Some(family), "cli:audit export", &reason).await {
                db.close().await;
                return Err(e);
            }
            let keyring = nuanxin_infra::privacy::Keyring::new(
                nuanxin_infra::privacy::MasterKey::resolve(&s.master_key)?,
            );
            let history = async {
                let mut history = audit::family_history(&db, family)
                    .await
                    .context("reading the event log")?;
                keyring
                    .reveal_values(
                        &db,
                        history.entries.iter_mut().map(|e| &mut e.data).collect(),
                    )
                    .await
                    .context("opening the personal fields")?;
                anyhow::Ok(history)
            }
            .await;
            db.close().await;
            let history = history?;
            anyhow::ensure!(history.case.registered, "no family {family} in the store");
            if let Err(link) = &history.chain {
                eprintln!("warning: the hash chain is broken at {link}");
            }
            print!("{}", audit::history_csv(&history.entries));
            Ok(())
        }
    }
}

/// `nuanxin audit verify --checkpoint FILE…`: the chains, and whether the
/// log extends each checkpoint.
async fn verify_checkpoints(
    store: &StoreArgs,
    paths: &[PathBuf],
    public_key: Option<&str>,
    files: &CheckpointArgs,
    reason: &str,
) -> anyhow::Result<()> {
    use nuanxin_infra::audit::{checkpoint, extends, signing};
    let url = DatabaseUrl::parse(&store.database_url)?;
    let config = files.config(&url);
    let (trusted, source) = match public_key {
        Some(given) => {
            let path = std::path::Path::new(given);
            let text = if path.is_file() {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the public key {}", path.display()))?
            } else {
                given.to_owned()
            };
            (
                signing::PublicKey::parse(&text).context("--public-key")?,
                "--public-key".to_owned(),
            )
        }
        None => {
            let key = signing::SigningKeyFile::load(&config.key_file).context(
                "no key to check the checkpoints against: give --public-key (the key \
                 `nuanxin audit public-key` printed when they were taken)",
            )?;
            (key.public(), config.key_file.display().to_string())
        }
    };
    let mut checkpoint_files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = checkpoint::statement_files(path)
                .with_context(|| format!("reading {}", path.display()))?;
            anyhow::ensure!(
                !found.is_empty(),
                "no checkpoint files in {}",
                path.display()
            );
            checkpoint_files.extend(found);
        } else {
            checkpoint_files.push(path.clone());
        }
    }
    let db = Db::connect(&url, 1).await?;
    if let Err(e) = record_cli_read(&db, None, "cli:audit verify", reason).await {
        db.close().await;
        return Err(e);
    }
    let report = extends::verify(
        &db,
        &checkpoint_files,
        &trusted,
        std::slice::from_ref(&config.dir),
    )
    .await
    .context("reading the event log");
    db.close().await;
    let report = report?;
    println!("trusting public key {} ({source})", trusted.fingerprint());
    for verdict in &report.checkpoints {
        for line in verdict.describe() {
            println!("{line}");
        }
    }
    for link in &report.chain.broken {
        println!("BROKEN {link}");
    }
    println!(
        "checked {} chain(s), {} event(s): {}",
        report.chain.streams,
        report.chain.events,
        if report.chain.is_intact() {
            "all intact".to_owned()
        } else {
            format!("{} broken", report.chain.broken.len())
        }
    );
    match report.failure() {
        Some(failure) => Err(anyhow::anyhow!(
            "the event log fails verification: {failure}"
        )),
        None => Ok(()),
    }
}

fn chains(report: &nuanxin_infra::audit::VerifyReport) -> String {
    if report.is_intact() {
        "all intact".to_owned()
    } else {
        format!("{} broken", report.broken.len())
    }
}

/// The operating-system user running this command (`USER`, `LOGNAME` or
/// `USERNAME`; on Unix the numeric uid when none is set).
pub fn os_user() -> String {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(name) = std::env::var(var) {
            let name = name.trim();
            if !name.is_empty() && name.chars().count() <= 100 {
                return name.to_owned();
            }
        }
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| {
                    ids.split_whitespace()
                        .next()
                        .map(|uid| format!("uid {uid}"))
                })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Records a command-line read of the log in the access log, as the
/// operating-system user with `reason`, before anything is read: a read
/// that cannot be recorded does not happen.
async fn record_cli_read(
    db: &Db,
    family: Option<uuid::Uuid>,
    endpoint: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let reason =
        nuanxin_domain::Text::parse(reason).map_err(|e| anyhow::anyhow!("--reason {e}"))?;
    anyhow::ensure!(
        reason.as_str().chars().count() <= 500,
        "--reason is too long (at most 500 characters)"
    );
    let read = nuanxin_infra::store::access_log::CliRead {
        id: uuid::Uuid::now_v7(),
        family_id: family,
        endpoint: endpoint.to_owned(),
        at: chrono::Utc::now(),
        os_user: os_user(),
        reason: reason.into(),
    };
    nuanxin_infra::store::access_log::insert_cli(db, &read)
        .await
        .context(
            "recording this read in the access log (a database that predates it needs \
             `nuanxin migrate` first)",
        )
}

/// `nuanxin bench …`: the benchmarks live in their own binary
/// (`nuanxin-bench`, crate `bench/`), built beside this one.
fn bench(args: Vec<String>) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let bench = exe.with_file_name("nuanxin-bench");
    anyhow::ensure!(
        bench.exists(),
        "{} is not built: run `cargo build --release --workspace` first",
        bench.display()
    );
    let status = std::process::Command::new(&bench)
        .args(&args)
        .status()
        .with_context(|| format!("running {}", bench.display()))?;
    anyhow::ensure!(status.success(), "nuanxin-bench failed ({status})");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `nuanxin import families` (see [`ImportCommand::Families`]).
async fn import_families(
    store: StoreArgs,
    policy: PolicyArgs,
    file: PathBuf,
    dry_run: bool,
    errors: Option<PathBuf>,
    as_user: Option<String>,
) -> anyhow::Result<()> {
    use nuanxin_infra::import::{self, ImportError};
    let fail = |e: ImportError| -> anyhow::Error {
        match e {
            ImportError::Store(m) => anyhow::anyhow!("store error: {m}"),
            e => Exit {
                code: 2,
                message: e.to_string(),
            }
            .into(),
        }
    };
    let table = import::read_file(&file).map_err(fail)?;
    let mut s = settings(&store)?;
    let db = Db::open(&s.database_url, s.max_connections).await?;
    s.policy = policy_from(policy.policy.as_ref())?;
    let app = Nuanxin::new(nuanxin_infra::Core::from_settings(db, &s)?);
    app.projector.follow_stored_policy().await?;
    let user = import::importer(app.db(), as_user.as_deref())
        .await
        .map_err(fail)?;
    let (rows, mut summary) = import::plan(
        &table,
        &user.scope,
        app.core.today(),
        app.core.services().offset,
    )
    .map_err(fail)?;
    for column in &summary.ignored_columns {
        eprintln!("ignored column: {column}");
    }
    let total = rows.len() as u64;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let every = (total / 20).max(100);
    import::run(&app, &user, rows, dry_run, &mut summary, |done| {
        let done = done as u64;
        match &bar {
            Some(bar) => bar.set_position(done),
            None if done.is_multiple_of(every) || done == total => {
                eprintln!("{done}/{total} rows");
            }
            None => {}
        }
    })
    .await
    .map_err(fail)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary.errors.sort_by_key(|e| e.row);
    if let Some(out) = &errors {
        std::fs::write(out, crate::web::import::error_report(&summary.errors))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if dry_run {
        println!("dry run, nothing written: {}", summary.line());
    } else {
        println!("{}", summary.line());
    }
    if summary.rejected > 0 {
        return Err(Exit {
            code: 1,
            message: format!("{} row(s) rejected", summary.rejected),
        }
        .into());
    }
    Ok(())
}
