//! The operator's everyday commands: `nuanxin backup FILE` (an online,
//! consistent copy of an SQLite database), `nuanxin restore FILE` (onto an
//! empty store, migrated and verified) and `nuanxin doctor` (the store,
//! migrations, policy, read models, webhooks, alert scans and the clock on
//! one screen). PostgreSQL is backed up with its own tools (`pg_dump`,
//! point-in-time recovery); `backup` and `restore` say so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use nuanxin_domain::policy::VisitPolicy;

use crate::alerts::AlertConfig;
use crate::audit::{self, VerifyReport};
use crate::store::{self, access_log, maintenance, DatabaseUrl, Db};

/// Why `backup` / `restore` do not handle PostgreSQL, and what to use.
pub const POSTGRES_BACKUPS: &str = "nuanxin backup and restore copy SQLite databases only. \
     For PostgreSQL use its own tools, which copy a live database consistently: \
     `pg_dump --format=custom --file=nuanxin.dump DBNAME` (restore with \
     `pg_restore --dbname=EMPTY_DB nuanxin.dump`, then `nuanxin audit verify`), or \
     continuous WAL archiving for point-in-time recovery. See docs/operations.md, \"Backups\".";

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub verify: VerifyReport,
}

/// Writes a consistent copy of the SQLite store `db` to `to` while servers
/// keep serving, checks the copy (`quick_check`) and verifies its hash
/// chains. The copy holds every personal datum: the backup is recorded in
/// the access log first (as `os_user`, with `reason`), so it is in the copy
/// too.
pub async fn backup(
    db: &Db,
    to: &Path,
    os_user: &str,
    reason: &str,
) -> anyhow::Result<BackupReport> {
    anyhow::ensure!(matches!(db, Db::Sqlite(_)), "{POSTGRES_BACKUPS}");
    anyhow::ensure!(
        !to.exists(),
        "{} exists already: a backup never overwrites a file; pick a new name",
        to.display()
    );
    access_log::insert_cli(
        db,
        &access_log::CliRead {
            id: uuid::Uuid::now_v7(),
            family_id: None,
            endpoint: "cli:backup".into(),
            at: Utc::now(),
            os_user: os_user.into(),
            reason: reason.into(),
        },
    )
    .await
    .context("recording the backup in the access log")?;
    maintenance::sqlite_copy(db, to)
        .await
        .with_context(|| format!("writing the copy to {}", to.display()))?;
    let checked = check_copy(to).await;
    if checked.is_err() {
        let _ = std::fs::remove_file(to);
    }
    let verify = checked?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        file: to.to_owned(),
        bytes,
        verify,
    })
}

/// Opens a copy, checks the file and verifies its chains.
async fn check_copy(path: &Path) -> anyhow::Result<VerifyReport> {
    let (check, has_events) = maintenance::sqlite_file_check(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    anyhow::ensure!(check == "ok", "{} is damaged: {check}", path.display());
    anyhow::ensure!(
        has_events,
        "{} is not a Nuanxin database (it has no events table)",
        path.display()
    );
    let copy = maintenance::sqlite_read_only(path).await?;
    let report = audit::verify(&copy, None).await;
    copy.close().await;
    report.context("verifying the copy's hash chains")
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub verify: VerifyReport,
}

/// Restores the backup `from` onto the empty store `to` (an SQLite file
/// that does not exist yet): copies it, applies this binary's migrations
/// (a backup of an older version is brought up to date) and verifies every
/// hash chain of the restored copy.
pub async fn restore(from: &Path, to: &DatabaseUrl) -> anyhow::Result<RestoreReport> {
    let DatabaseUrl::Sqlite(target) = to else {
        anyhow::bail!("{POSTGRES_BACKUPS}");
    };
    anyhow::ensure!(from.is_file(), "no backup file {}", from.display());
    for path in [
        target.clone(),
        sibling(target, "-wal"),
        sibling(target, "-shm"),
    ] {
        anyhow::ensure!(
            !path.exists(),
            "restore needs an empty store, but {} exists: stop the server and move the \
             old database (and its -wal and -shm files) away first, or restore to another \
             DATABASE_URL",
            path.display()
        );
    }
    let (check, has_events) = maintenance::sqlite_file_check(from)
        .await
        .with_context(|| format!("opening the backup {}", from.display()))?;
    anyhow::ensure!(
        check == "ok",
        "the backup {} is damaged: {check}",
        from.display()
    );
    anyhow::ensure!(
        has_events,
        "{} is not a Nuanxin backup (it has no events table)",
        from.display()
    );
    maintenance::sqlite_copy_file(from, target)
        .await
        .with_context(|| format!("writing {}", target.display()))?;
    let db = Db::open(to, 1)
        .await
        .context("migrating the restored database")?;
    let verify = audit::verify(&db, None).await;
    db.close().await;
    Ok(RestoreReport {
        database: target.clone(),
        verify: verify.context("verifying the restored hash chains")?,
    })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of the doctor's report.
#[derive(Debug, Clone)]
pub struct Check {
    pub area: &'static str,
    pub verdict: Verdict,
    pub message: String,
}

impl Check {
    fn new(area: &'static str, verdict: Verdict, message: impl Into<String>) -> Self {
        Self {
            area,
            verdict,
            message: message.into(),
        }
    }
}

/// What the doctor is told: the store, the policy file given (if any) and
/// the alert settings `serve` would run with.
pub struct DoctorInput<'a> {
    pub database_url: &'a DatabaseUrl,
    /// The policy of `NUANXIN_POLICY`, or its parse error; `None` when no
    /// file is configured.
    pub policy_file: Option<Result<VisitPolicy, String>>,
    pub alerts: &'a AlertConfig,
    /// The machine clock (injected for tests).
    pub now: DateTime<Utc>,
}

/// Checks everything an operator needs to know is right, without changing
/// anything (no migration, no file created).
pub async fn doctor(input: DoctorInput<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    if let DatabaseUrl::Sqlite(path) = input.database_url {
        if !path.is_file() {
            checks.push(Check::new(
                "store",
                Verdict::Fail,
                format!(
                    "no database at {} (check DATABASE_URL and the directory you run in)",
                    path.display()
                ),
            ));
            return checks;
        }
    }
    let db = match Db::connect(input.database_url, 2).await {
        Ok(db) => db,
        Err(e) => {
            checks.push(Check::new("store", Verdict::Fail, format!("{e:#}")));
            return checks;
        }
    };
    checks.push(store_check(&db).await);
    checks.push(migrations_check(&db).await);
    let stored = store::checkpoints::stored_policy(&db).await;
    let pending = match &stored {
        Ok(Some(s)) if s.applied < s.version => Some(s.version),
        _ => None,
    };
    let stored = stored.map(|s| s.map(|s| s.policy));
    checks.push(policy_check(&stored, input.policy_file.as_ref()));
    if let Some(version) = pending {
        checks.push(Check::new(
            "policy",
            Verdict::Warn,
            format!(
                "policy version {version} is stored but its recompute has not finished: the \
                 leading server (or `nuanxin policy reload`) finishes it"
            ),
        ));
    }
    let policy = match (&stored, &input.policy_file) {
        (Ok(Some(p)), _) => p.clone(),
        (_, Some(Ok(p))) => p.clone(),
        _ => VisitPolicy::default(),
    };
    let figures = maintenance::figures(&db).await;
    checks.push(read_model_check(&db).await);
    checks.push(webhook_check(&db, input.alerts).await);
    checks.push(scan_check(&figures, &policy, input.alerts, input.now));
    checks.push(clock_check(&db, &figures, input.now).await);
    db.close().await;
    checks
}

async fn store_check(db: &Db) -> Check {
    let version = maintenance::server_version(db).await;
    let figures = maintenance::figures(db).await;
    let health = maintenance::sqlite_health(db).await;
    match (version, figures, health) {
        (Ok(version), Ok(f), Ok(health)) => {
            let base = format!("{version}; {} events, {} families", f.log_head, f.families);
            match health {
                Some((check, _, _)) if check != "ok" => {
                    Check::new("store", Verdict::Fail, format!("{base}; damaged: {check}"))
                }
                Some((_, mode, _)) if mode != "wal" => Check::new(
                    "store",
                    Verdict::Warn,
                    format!("{base}; journal mode {mode}, not wal (the server sets wal on start)"),
                ),
                Some(_) => Check::new("store", Verdict::Ok, format!("{base}; integrity ok, WAL")),
                None => Check::new("store", Verdict::Ok, base),
            }
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Check::new(
            "store",
            Verdict::Fail,
            format!("reachable but not a Nuanxin database yet? ({e}); run `nuanxin migrate`"),
        ),
    }
}

async fn migrations_check(db: &Db) -> Check {
    let applied = match maintenance::applied_migrations(db).await {
        Ok(a) => a,
        Err(e) => {
            return Check::new(
                "migrations",
                Verdict::Fail,
                format!("cannot read them: {e}"),
            )
        }
    };
    let known = db.migrator();
    let known: Vec<_> = known
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let mut problems = Vec::new();
    for a in &applied {
        match known.iter().find(|m| m.version == a.version) {
            None => problems.push(format!(
                "{} is applied but unknown to this binary (a newer version of Nuanxin migrated this database)",
                a.version
            )),
            Some(m) if *m.checksum != *a.checksum => problems.push(format!(
                "{} was changed after it was applied (checksum differs)",
                a.version
            )),
            Some(_) if !a.success => problems.push(format!("{} failed halfway", a.version)),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Check::new("migrations", Verdict::Fail, problems.join("; "));
    }
    let pending: Vec<String> = known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .map(|m| m.version.to_string())
        .collect();
    if pending.is_empty() {
        Check::new(
            "migrations",
            Verdict::Ok,
            format!("{} applied, none pending", applied.len()),
        )
    } else {
        Check::new(
            "migrations",
            Verdict::Warn,
            format!(
                "{} applied, {} pending ({}): `nuanxin migrate` or the next `serve` applies them",
                applied.len(),
                pending.len(),
                pending.join(", ")
            ),
        )
    }
}

fn policy_check(
    stored: &Result<Option<VisitPolicy>, sqlx::Error>,
    file: Option<&Result<VisitPolicy, String>>,
) -> Check {
    match (stored, file) {
        (_, Some(Err(e))) => Check::new(
            "policy",
            Verdict::Fail,
            format!("the NUANXIN_POLICY file does not load: {e}"),
        ),
        (Err(e), _) => Check::new(
            "policy",
            Verdict::Fail,
            format!("cannot read the stored policy: {e}"),
        ),
        (Ok(None), _) => Check::new(
            "policy",
            Verdict::Warn,
            "none stored yet: the first `serve` stores the file's policy or the built-in defaults",
        ),
        (Ok(Some(stored)), Some(Ok(file))) if stored != file => Check::new(
            "policy",
            Verdict::Warn,
            "the NUANXIN_POLICY file differs from the policy in force: the next `serve` start \
             (or `nuanxin policy reload`) puts the file in force",
        ),
        (Ok(Some(stored)), file) => Check::new(
            "policy",
            Verdict::Ok,
            format!(
                "in force: UTC{:+}, key age {}{}",
                stored.timezone_offset_hours,
                stored.key_age,
                if file.is_some() {
                    ", same as the NUANXIN_POLICY file"
                } else {
                    ""
                }
            ),
        ),
    }
}

async fn read_model_check(db: &Db) -> Check {
    let lag = async {
        let cp = store::checkpoints::get(db, store::checkpoints::READ_MODELS).await?;
        store::events::count_after(db, cp).await
    }
    .await;
    match lag {
        Ok(0) => Check::new("read models", Verdict::Ok, "up to date with the log"),
        Ok(n) => Check::new(
            "read models",
            Verdict::Warn,
            format!(
                "{n} events behind the log: a running server catches up within seconds; if \
                 none runs, the next start does (or `nuanxin projections rebuild`)"
            ),
        ),
        Err(e) => Check::new(
            "read models",
            Verdict::Fail,
            format!("cannot count the lag: {e}"),
        ),
    }
}

async fn webhook_check(db: &Db, alerts: &AlertConfig) -> Check {
    let pending = maintenance::pending_deliveries(db)
        .await
        .unwrap_or_default();
    if alerts.webhooks.is_empty() {
        return Check::new(
            "webhooks",
            if pending.pending > 0 {
                Verdict::Warn
            } else {
                Verdict::Ok
            },
            if pending.pending > 0 {
                format!(
                    "none configured, but {} deliveries wait for URLs configured earlier",
                    pending.pending
                )
            } else {
                "none configured (alerts stay in the database and the API)".to_owned()
            },
        );
    }
    let mut unreachable = Vec::new();
    for url in &alerts.webhooks {
        if let Err(why) = reachable(url).await {
            unreachable.push(format!("{} ({why})", redact(url)));
        }
    }
    let signed = if alerts.secret.is_some() {
        "signed"
    } else {
        "UNSIGNED (no NUANXIN_ALERT_WEBHOOK_SECRET)"
    };
    let mut message = format!("{} URL(s), {signed}", alerts.webhooks.len());
    if pending.pending > 0 {
        message.push_str(&format!("; {} deliveries pending", pending.pending));
        match (&pending.latest_status, &pending.latest_error) {
            (Some(code), _) => message.push_str(&format!(", last answer HTTP {code}")),
            (None, Some(error)) => message.push_str(&format!(", last error: {error}")),
            _ => {}
        }
    }
    if !unreachable.is_empty() {
        message.push_str(&format!("; cannot connect to {}", unreachable.join(", ")));
        return Check::new("webhooks", Verdict::Fail, message);
    }
    let verdict = if alerts.secret.is_none() || pending.pending > 0 {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    Check::new("webhooks", verdict, message)
}

/// Whether a TCP connection to the URL's host and port opens within 3 s
/// (nothing is posted).
async fn reachable(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if scheme == "https" { 443 } else { 80 };
    let addr = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host_port.ends_with(']')
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".into()),
    }
}

/// A URL without credentials or query string.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

fn scan_check(
    figures: &Result<maintenance::Figures, sqlx::Error>,
    policy: &VisitPolicy,
    alerts: &AlertConfig,
    now: DateTime<Utc>,
) -> Check {
    let local = now.with_timezone(&policy.offset());
    let today = local.date_naive();
    match figures {
        Err(e) => Check::new("alert scan", Verdict::Fail, format!("cannot read the scans: {e}")),
        Ok(f) => match f.last_scan {
            Some(day) if day >= today => Check::new(
                "alert scan",
                Verdict::Ok,
                format!("today's ({today}) has run"),
            ),
            last if local.time() < alerts.scan_at && last.is_some_and(|d| d + chrono::Days::new(1) >= today) => {
                Check::new(
                    "alert scan",
                    Verdict::Ok,
                    format!("yesterday's has run; today's is due at {}", alerts.scan_at.format("%H:%M")),
                )
            }
            last => Check::new(
                "alert scan",
                Verdict::Warn,
                format!(
                    "today's ({today}) has not run{}: is a server running? (`nuanxin alerts scan` runs it by hand)",
                    last.map(|d| format!("; the last was for {d}")).unwrap_or_default()
                ),
            ),
        },
    }
}

async fn clock_check(
    db: &Db,
    figures: &Result<maintenance::Figures, sqlx::Error>,
    now: DateTime<Utc>,
) -> Check {
    let database = match maintenance::database_now(db).await {
        Ok(t) => t,
        Err(e) => {
            return Check::new(
                "clock",
                Verdict::Fail,
                format!("cannot read the database clock: {e}"),
            )
        }
    };
    let skew = (database - now).num_milliseconds() as f64 / 1000.0;
    let newest = figures.as_ref().ok().and_then(|f| f.newest_event_at);
    let mut message = format!(
        "this machine {}, the database {} ({skew:+.1} s)",
        now.format("%Y-%m-%d %H:%M:%S UTC"),
        database.format("%H:%M:%S")
    );
    if let Some(newest) = newest {
        message.push_str(&format!(
            "; newest event {}",
            newest.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        if newest > database + chrono::Duration::minutes(1) {
            message.push_str(": AFTER the database's now — its clock went back");
            return Check::new("clock", Verdict::Fail, message);
        }
    }
    let verdict = match skew.abs() {
        s if s > 60.0 => Verdict::Fail,
        s if s > 5.0 => Verdict::Warn,
        _ => Verdict::Ok,
    };
    if verdict != Verdict::Ok {
        message.push_str(": set both clocks by NTP; dates of actions and alerts follow them");
    }
    Check::new("clock", verdict, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact("https://u:p@h.example/x?token=1"),
            "https://h.example/x"
        );
    }

    #[tokio::test]
    async fn an_unreachable_webhook_is_named() {
        assert!(reachable("http://127.0.0.1:9/hook").await.is_err());
        assert!(reachable("not a url").await.is_err());
    }
}
