//! End-to-end tests: every scenario runs against SQLite and PostgreSQL.

mod bad_input;
mod commands;
mod ops;
mod store;
