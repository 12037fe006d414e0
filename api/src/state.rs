//! Shared application state handed to every handler.

use std::sync::Arc;

use nuanxin_infra::{Cases, Db};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub cases: Arc<Cases>,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(cases: Arc<Cases>) -> Self {
        Self(Arc::new(Inner {
            cases,
            metrics: Metrics::default(),
        }))
    }

    pub fn cases(&self) -> &Cases {
        &self.0.cases
    }

    pub fn cases_arc(&self) -> Arc<Cases> {
        self.0.cases.clone()
    }

    pub fn db(&self) -> &Db {
        self.0.cases.db()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}
