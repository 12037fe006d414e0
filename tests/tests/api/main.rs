//! End-to-end tests: every scenario runs against SQLite and PostgreSQL.

mod alerts;
mod audit;
mod bad_input;
mod commands;
mod hardening;
mod openapi;
mod ops;
mod plausible;
mod schedule;
mod store;
mod write_path;
