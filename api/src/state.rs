//! Shared application state handed to every handler.

use std::sync::Arc;

use nuanxin_infra::leader::Leadership;
use nuanxin_infra::{Commands, Core, Db, Nuanxin, Projector, Reads};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub app: Nuanxin,
    pub metrics: Metrics,
    pub leadership: Leadership,
    pub accounts: nuanxin_infra::accounts::Accounts,
}

impl AppState {
    pub fn new(app: Nuanxin, leadership: Leadership, session_idle: std::time::Duration) -> Self {
        Self(Arc::new(Inner {
            app,
            metrics: Metrics::default(),
            leadership,
            accounts: nuanxin_infra::accounts::Accounts::new(session_idle),
        }))
    }

    /// Web sign-in and sessions.
    pub fn accounts(&self) -> &nuanxin_infra::accounts::Accounts {
        &self.0.accounts
    }

    /// Whether this server leads the background work.
    pub fn leadership(&self) -> &Leadership {
        &self.0.leadership
    }

    /// The services together (what `nuanxin_infra::import::run` takes).
    pub fn app(&self) -> &Nuanxin {
        &self.0.app
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.0.app.core
    }

    pub fn commands(&self) -> &Commands {
        &self.0.app.commands
    }

    pub fn reads(&self) -> &Reads {
        &self.0.app.reads
    }

    pub fn projector(&self) -> &Arc<Projector> {
        &self.0.app.projector
    }

    pub fn appender(&self) -> &nuanxin_infra::append::Appender {
        &self.0.app.appender
    }

    pub fn db(&self) -> &Db {
        self.0.app.db()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}
