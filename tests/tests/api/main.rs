//! End-to-end tests: every scenario runs against SQLite and PostgreSQL.

mod activities;
mod alerts;
mod audit;
mod bad_input;
mod checkpoints;
mod commands;
mod inspections;
mod insurance;
mod ops;
mod schedule;
mod store;
mod write_path;
