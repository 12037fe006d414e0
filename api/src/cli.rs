//! The `nuanxin` command line. Every flag also reads an environment
//! variable; the variables are the documented interface (API.md "Running").

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nuanxin_domain::{Scope, UserRole};
use nuanxin_infra::config::policy_from;
use nuanxin_infra::users::{self, Secret};
use nuanxin_infra::{DatabaseUrl, Settings};

use crate::app::{self, Application};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the store first).
    Serve(ServeArgs),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Show the visit policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DatabaseUrl::DEFAULT, hide_env_values = true)]
    pub database_url: String,
    /// Connections in the store pool.
    #[arg(long, env = "NUANXIN_DB_CONNECTIONS", default_value_t = 10)]
    pub db_connections: u32,
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
    /// Largest accepted request body in bytes.
    #[arg(long, env = "NUANXIN_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its token (shown once).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        name: String,
        /// caseworker, supervisor or admin.
        #[arg(long)]
        role: String,
        /// Jurisdiction prefix ("" for everything).
        #[arg(long, default_value = "")]
        scope: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the policy in force as TOML.
    Show(PolicyArgs),
}

fn settings(store: &StoreArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::new(DatabaseUrl::parse(&store.database_url)?);
    s.max_connections = store.db_connections;
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
            s.policy = policy_from(args.policy.policy.as_ref())?;
            s.body_limit_bytes = args.body_limit;
            tracing::info!(store = s.database_url.kind(), "starting");
            let app = Application::build(s).await?;
            tracing::info!(addr = %app.local_addr(), "listening");
            println!("nuanxin listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate(store) => {
            let s = settings(&store)?;
            app::open_store(&s).await?;
            println!("migrated {:?}", s.database_url);
            Ok(())
        }
        Command::Users(UsersCommand::Add {
            store,
            name,
            role,
            scope,
        }) => {
            let role = UserRole::parse(&role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
            let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("--scope {e}"))?;
            let s = settings(&store)?;
            let db = app::open_store(&s).await?;
            let (user, token) = users::create(&db, &name, role, &scope, None)
                .await
                .context("creating the user")?;
            println!(
                "id:    {}\nrole:  {}\nscope: {:?}\ntoken: {}",
                user.id,
                user.role,
                user.scope.as_str(),
                token.expose()
            );
            eprintln!("The token is shown only now; keep it safe.");
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
