//! Which server process does the background work.
//!
//! Several `nuanxin serve` processes may share one PostgreSQL database (for
//! failover, rolling upgrades and load). Commands, reads and scans asked
//! for over HTTP run in every process — their correctness rests on the
//! database's constraints. The background work runs in **one** process at a
//! time, the leader: the projection worker and the policy recompute, the
//! daily alert scan, the outbox fan-out and webhook delivery.
//!
//! The leader is the process holding a session-level PostgreSQL advisory
//! lock ([`LOCK_KEY`]) on a connection of its own. Every process tries to
//! take it every [`POLL`]; the holder checks its connection as often and
//! stands down the moment the check fails. When the leader dies — `kill
//! -9`, a lost network — PostgreSQL ends its session and frees the lock, and
//! another process takes it at its next try: within a second or two.
//!
//! Leadership saves work and contention; it is not what makes the work
//! correct. A leader that has not yet noticed it lost its connection may
//! overlap with the next one for at most one [`POLL`], and everything it
//! does stays correct under overlap: projection batches advance their
//! checkpoint by compare-and-set, read-model writes are version-guarded and
//! written in family-id order, a webhook post is claimed row by row under a
//! lease, alert scans are idempotent.
//!
//! SQLite is one process's file: that process always leads.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use crate::store::Db;

/// The advisory-lock key of leadership ("nuanxin" in ASCII, then 1).
pub const LOCK_KEY: i64 = 0x006e_7561_6e78_696e_i64 << 8 | 1;

/// How often a follower tries to lead, and the leader checks it still does.
pub const POLL: Duration = Duration::from_millis(500);

/// Whether this process leads the background work, as it changes.
#[derive(Clone, Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    session: String,
}

impl Leadership {
    /// A process that always leads (SQLite; tests of one process).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // Keep the sender alive so waiters never see the channel close.
        std::mem::forget(tx);
        Self {
            rx,
            session: session_name(),
        }
    }

    /// The application name of this process's leadership session: how the
    /// servers on one database know each other (`pg_stat_activity`).
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until this process leads (true) or `shutdown` is set (false).
    pub async fn wait_to_lead(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        loop {
            if *shutdown.borrow() {
                return false;
            }
            if *self.rx.borrow_and_update() {
                return true;
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
                stopped = shutdown.changed() => {
                    if stopped.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// Resolves when this process stops leading (or the campaign ends).
    pub async fn lost(&mut self) {
        loop {
            if !*self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A name for this process's leadership session, unique per process.
fn session_name() -> String {
    format!(
        "nuanxin leader {}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Starts campaigning for leadership on `db` until `shutdown`, after one
/// first try (so a lone server leads from the start); returns the
/// leadership to follow and the campaign's task (none on SQLite).
pub async fn campaign(
    db: &Db,
    shutdown: watch::Receiver<bool>,
) -> (Leadership, Option<tokio::task::JoinHandle<()>>) {
    let Db::Postgres(pool) = db else {
        return (Leadership::always(), None);
    };
    let session = session_name();
    let options = (*pool.connect_options()).clone().application_name(&session);
    let mut conn = None;
    let first = step(&options, &mut conn, false).await;
    let leading = matches!(first, Ok(true));
    if leading {
        tracing::info!("this server leads the background work");
    } else {
        tracing::info!("another server leads the background work; this one stands by");
    }
    let (tx, rx) = watch::channel(leading);
    let task = tokio::spawn(run(options, conn, tx, shutdown));
    (Leadership { rx, session }, Some(task))
}

async fn run(
    options: sqlx::postgres::PgConnectOptions,
    mut conn: Option<PgConnection>,
    leading: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            // A dropped sender (the server is gone) ends the campaign too.
            stopped = shutdown.changed() => {
                if stopped.is_err() {
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
        let was_leading = *leading.borrow();
        match step(&options, &mut conn, was_leading).await {
            Ok(now_leading) => {
                if now_leading != was_leading {
                    if now_leading {
                        tracing::info!("this server now leads the background work");
                    }
                    leading.send_replace(now_leading);
                }
            }
            Err(e) => {
                if was_leading {
                    tracing::warn!(error = %e,
                        "lost the connection that holds leadership; standing down");
                    leading.send_replace(false);
                } else {
                    tracing::debug!(error = %e, "cannot reach the database to campaign");
                }
                conn = None;
            }
        }
    }
    leading.send_replace(false);
    // Closing the session frees the lock at once for the next leader.
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

/// One try: connects if needed; a follower tries the lock, the leader checks
/// its session still lives. Returns whether this process leads.
async fn step(
    options: &sqlx::postgres::PgConnectOptions,
    conn: &mut Option<PgConnection>,
    leading: bool,
) -> Result<bool, sqlx::Error> {
    if conn.is_none() {
        *conn = Some(PgConnection::connect_with(options).await?);
    }
    let c = conn.as_mut().expect("connected above");
    let check = async {
        if leading {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1)",
            )
            .bind(LOCK_KEY)
            .fetch_one(&mut *c)
            .await
        } else {
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut *c)
                .await
        }
    };
    // A session that does not answer within the poll is as good as lost.
    match tokio::time::timeout(POLL * 4, check).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn always_leads() {
        let mut leadership = Leadership::always();
        let (_stop, mut shutdown) = watch::channel(false);
        assert!(leadership.is_leader());
        assert!(leadership.wait_to_lead(&mut shutdown).await);
    }

    #[tokio::test]
    async fn waiting_to_lead_ends_at_shutdown() {
        let (_tx, rx) = watch::channel(false);
        let mut leadership = Leadership {
            rx,
            session: session_name(),
        };
        let (stop, mut shutdown) = watch::channel(false);
        stop.send_replace(true);
        assert!(!leadership.wait_to_lead(&mut shutdown).await);
    }
}
