//! The documented walk-throughs, run as written: every `sh` block of the
//! README's "A first case in five requests" and of the user guide's
//! walk-through (and its continuation, "Insurance, activities and
//! inspections"), in order, in one bash session (`set -euo pipefail`),
//! against the real `nuanxin` binary started on a free port with a fresh
//! store — once on SQLite, once on PostgreSQL. The only change made to the
//! text is the port. Needs `bash`, `curl` and `python3` (`.ci/run` installs
//! them).

mod common;

use std::path::Path;

use common::{drop_database, postgres_database, serve};

/// The `sh` code blocks of the `## ` section whose title starts with
/// `section`, in order.
fn sh_blocks(markdown: &str, section: &str) -> Vec<String> {
    let start = markdown
        .find(&format!("\n## {section}"))
        .unwrap_or_else(|| panic!("no section `{section}`"));
    let body = &markdown[start + 4..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("```sh\n") {
        let after = &rest[open + 6..];
        let close = after.find("\n```").expect("closed code block");
        blocks.push(after[..close].to_owned());
        rest = &after[close + 4..];
    }
    assert!(!blocks.is_empty(), "no sh blocks in `{section}`");
    blocks
}

/// Runs the blocks in one bash session in `dir`, with `nuanxin` on `PATH`;
/// returns what they printed.
async fn run_blocks(dir: &Path, database_url: &str, addr: &str, blocks: &[String]) -> String {
    let script = format!(
        "set -euo pipefail\n{}\n",
        blocks.join("\n").replace("127.0.0.1:8080", addr)
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_nuanxin"))
        .parent()
        .expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the walk-through failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn walk(database_url: &str, dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let guide = std::fs::read_to_string(root.join("docs/user-guide.md")).expect("user guide");

    let (mut server, addr) = serve(dir, database_url).await;
    let out = run_blocks(
        dir,
        database_url,
        &addr,
        &sh_blocks(&readme, "A first case"),
    )
    .await;
    for expected in [
        "\"next_due_on\"",
        "\"Li Si\"",
        "\"last_home_on\": \"2026-10-01\"",
    ] {
        assert!(out.contains(expected), "README: no {expected} in:\n{out}");
    }
    // The walk-through, then the section that continues it.
    let mut blocks = sh_blocks(&guide, "Walk-through");
    blocks.extend(sh_blocks(&guide, "Insurance, activities and inspections"));
    let out = run_blocks(dir, database_url, &addr, &blocks).await;
    for expected in [
        "\"chain_valid\": true",
        "all intact",
        "\"endpoint\": \"history\"",
        "\"level_name\":\"village\"",
        "\"status\":\"open\"",
        "\"field\":\"consent\"",
        "\"status\": \"paid\"",
        "\"already_attending\":[]",
        "\"last_attended_on\": \"2026-09-25\"",
        "\"follow_ups_open\": 1",
        "\"behind_pace\": true",
        "\"inspections_held\": 1",
    ] {
        assert!(
            out.contains(expected),
            "user guide: no {expected} in:\n{out}"
        );
    }
    let _ = server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_walk_throughs_run_as_written_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    walk("sqlite://nuanxin.db", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_walk_throughs_run_as_written_on_postgres() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    walk(&url, dir.path()).await;
    drop_database(&admin, &url).await;
}
