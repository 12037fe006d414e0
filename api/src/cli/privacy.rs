//! `nuanxin privacy …`: erasure of a family's personal data, the master
//! key's rotation and what the keyring holds (docs/privacy.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use nuanxin_domain::events::ErasureReason;
use nuanxin_domain::UserRole;
use nuanxin_infra::privacy::{MasterKey, MasterKeySource};
use nuanxin_infra::{CommandRequest, Db, Nuanxin};
use uuid::Uuid;

use super::{settings, Exit, StoreArgs};

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase a family's personal data: record an attributed erasure and
    /// delete the keys of its members, emergency contacts and its own
    /// (address, free text). From then on every read shows "[已删除]" in
    /// their place; dates, counts and the hash chain stay. The case must
    /// be closed. Exit 1 when the family is unknown, open or erased already.
    Erase {
        #[command(flatten)]
        store: StoreArgs,
        /// The family's id.
        #[arg(long)]
        family: Uuid,
        /// purpose_ended, consent_withdrawn or retention_expired.
        #[arg(long, value_parser = reason)]
        reason: ErasureReason,
        /// The day of the erasure [default: today].
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// The admin it is recorded by: their id, or the name of exactly
        /// one active user [default: the first active admin of everything].
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Rewrap every person key with a new master key; no event changes.
    /// Stop the server first. The new key is written to NEW_KEY_FILE (it
    /// must not exist); point NUANXIN_MASTER_KEY_FILE at it (or put its
    /// contents in NUANXIN_MASTER_KEY) and start again, then destroy the
    /// old key: copies of erased keys in old backups and database pages
    /// become unreadable with it.
    RotateKey {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_name = "NEW_KEY_FILE")]
        new_key_file: PathBuf,
    },
    /// Copy this store, whose log holds personal fields in clear (written
    /// before encryption), into a new empty store of the same kind
    /// (`--to`) with every personal field sealed, so that erasure reaches
    /// all of it. The new log keeps every event's place, type and metadata;
    /// each family's hash chain is computed afresh over the sealed events.
    /// Users, the access log, the visit policy and the webhook settings
    /// are copied, the read models rebuilt; web sessions, alerts and
    /// checkpoints are not (docs/privacy.md). Stop the server first; keep
    /// the old store's last signed checkpoint, then destroy the old store
    /// and its backups.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// The new, empty store (`sqlite://PATH` or `postgres://…`), which
        /// uses the same master key.
        #[arg(long, value_name = "DATABASE_URL")]
        to: String,
    },
    /// Print the master key in use (its id, never the key), how many
    /// person keys it and others wrap, live and erased, and how many events
    /// still hold personal fields in clear (written before encryption).
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn reason(s: &str) -> Result<ErasureReason, String> {
    ErasureReason::parse(s)
        .ok_or_else(|| "must be purpose_ended, consent_withdrawn or retention_expired".into())
}

pub async fn run(command: PrivacyCommand) -> anyhow::Result<()> {
    match command {
        PrivacyCommand::Erase {
            store,
            family,
            reason,
            on,
            as_user,
        } => {
            let s = settings(&store)?;
            let db = Db::open(&s.database_url, s.max_connections).await?;
            let app = Nuanxin::new(nuanxin_infra::Core::from_settings(db, &s)?);
            let result = erase(&app, family, reason, on, as_user.as_deref()).await;
            app.db().close().await;
            result
        }
        PrivacyCommand::RotateKey {
            store,
            new_key_file,
        } => {
            let s = settings(&store)?;
            let old = MasterKey::resolve(&s.master_key)?;
            let next = new_key(&new_key_file)?;
            let db = Db::open(&s.database_url, 1).await?;
            let keyring = nuanxin_infra::privacy::Keyring::new(old.clone());
            let rewrapped = keyring.rotate(&db, &next).await;
            db.close().await;
            let rewrapped = rewrapped.context("rewrapping the person keys")?;
            println!(
                "rewrapped {rewrapped} person keys: master key {} → {}",
                old.id(),
                next.id()
            );
            println!("new key file: {}", new_key_file.display());
            match &s.master_key {
                MasterKeySource::File(path) => println!(
                    "next: set NUANXIN_MASTER_KEY_FILE={} (or replace {} with it), start the \
                     server, then destroy the old key file",
                    new_key_file.display(),
                    path.display()
                ),
                _ => println!(
                    "next: put the new key file's contents in NUANXIN_MASTER_KEY, start the \
                     server, then destroy the old key"
                ),
            }
            Ok(())
        }
        PrivacyCommand::Migrate { store, to } => {
            let s = settings(&store)?;
            let mut t = s.clone();
            t.database_url = nuanxin_infra::DatabaseUrl::parse(&to)?;
            anyhow::ensure!(
                t.database_url != s.database_url,
                "--to names the store being copied"
            );
            let source = Db::connect(&s.database_url, 2).await?;
            let target = Nuanxin::open(&t).await?;
            let report = nuanxin_infra::seal_copy::copy_sealed(
                &source,
                &s.database_url,
                &target.core,
                &|done, total| {
                    if done % 10_000 < 500 || done == total {
                        eprintln!("{done}/{total} families");
                    }
                },
            )
            .await;
            source.close().await;
            target.db().close().await;
            let report = report?;
            println!(
                "copied {} families ({} events, {} personal fields sealed now), {} users, {} \
                 access records; the new log verifies: {} event(s) in {} chain(s), {} broken",
                report.families,
                report.events,
                report.fields_sealed,
                report.users,
                report.access_records,
                report.verify.events,
                report.verify.streams,
                report.verify.broken.len()
            );
            anyhow::ensure!(report.verify.is_intact(), "the new log does not verify");
            println!(
                "next: serve the new store; keep the old store's last signed checkpoint; then \
                 destroy the old store and its backups"
            );
            Ok(())
        }
        PrivacyCommand::Status { store } => {
            let s = settings(&store)?;
            let master = MasterKey::resolve(&s.master_key)?;
            let db = Db::open(&s.database_url, 1).await?;
            let counts = nuanxin_infra::store::person_keys::count_by_master(&db).await;
            let clear = nuanxin_infra::privacy::count_clear(&db).await;
            db.close().await;
            match &s.master_key {
                MasterKeySource::File(p) => println!("master key file: {}", p.display()),
                MasterKeySource::Value(_) => println!("master key: NUANXIN_MASTER_KEY"),
                MasterKeySource::Ephemeral => println!("master key: in memory"),
            }
            println!("master key id:   {}", master.id());
            for (id, live, erased) in counts? {
                let mark = if id == master.id() {
                    ""
                } else {
                    "  (not the key in use)"
                };
                println!("  wrapped by {id}: {live} live, {erased} erased{mark}");
            }
            let (events, fields) = clear?;
            if events == 0 {
                println!("every personal field of the log is encrypted");
            } else {
                println!(
                    "{events} event(s) hold {fields} personal field(s) in clear, written before \
                     encryption: erasure cannot reach them (docs/privacy.md § Stores with clear text)"
                );
            }
            Ok(())
        }
    }
}

/// A new master key written to `path`, which must not exist yet.
fn new_key(path: &Path) -> anyhow::Result<MasterKey> {
    anyhow::ensure!(
        !path.exists(),
        "{} exists already: name a new file",
        path.display()
    );
    let (key, created) = MasterKey::load_or_create(path)?;
    anyhow::ensure!(created, "{} appeared meanwhile", path.display());
    Ok(key)
}

async fn erase(
    app: &Nuanxin,
    family: Uuid,
    reason: ErasureReason,
    on: Option<chrono::NaiveDate>,
    as_user: Option<&str>,
) -> anyhow::Result<()> {
    let user = nuanxin_infra::import::importer(app.db(), as_user)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        user.role == UserRole::Admin,
        "erasure is recorded by an admin; {} is not one (use --as)",
        user.id
    );
    let req = CommandRequest {
        family_id: family,
        recorder: user.recorder(),
        scope: user.scope.clone(),
        request_id: "cli:privacy erase".into(),
        expected_version: None,
        idempotency_key: None,
        request_hash: None,
    };
    match app.commands.erase(&req, on, reason).await {
        Ok((outcome, keys)) => {
            println!(
                "erased family {family}: {keys} person keys deleted, case version {}",
                outcome.version
            );
            Ok(())
        }
        Err(e) => Err(Exit {
            code: 1,
            message: format!("family {family}: {e}"),
        }
        .into()),
    }
}
