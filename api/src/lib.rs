//! The Nuanxin server: axum routers over the infra crate's case service,
//! errors as problem+json, the OpenAPI document, and the CLI behind the
//! `nuanxin` binary.

pub mod app;
pub mod cli;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod serve;
pub mod state;
pub mod strict_json;
pub mod web;

pub use app::Application;
