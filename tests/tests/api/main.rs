//! End-to-end tests: every scenario runs against SQLite and PostgreSQL.

mod activities;
mod alerts;
mod audit;
mod bad_input;
mod checkpoints;
mod commands;
mod exports;
mod hardening;
mod inspections;
mod insurance;
mod openapi;
mod ops;
mod plausible;
mod privacy;
mod reports;
mod schedule;
mod store;
mod users;
mod web_admin;
mod web_auth;
mod web_forms;
mod web_import;
mod web_pages;
mod web_quality;
mod web_supervisor;
mod write_path;
