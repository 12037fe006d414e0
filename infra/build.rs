//! `sqlx::migrate!` embeds the migration files at compile time; without
//! this, cargo would not rebuild the crate when only a migration was added,
//! and the binary would silently lack it.
fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}
