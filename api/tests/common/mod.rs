//! Helpers shared by the tests that run the real `nuanxin` binary: a fresh
//! PostgreSQL database (mandatory with `CI=true`), and a server started on a
//! free port.

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tokio::io::AsyncBufReadExt;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A fresh PostgreSQL database: (its URL, the admin URL to drop it with).
pub async fn postgres_database() -> Option<(String, String)> {
    let admin = std::env::var("NUANXIN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if !in_ci() => {
            eprintln!("!!! SKIPPING a PostgreSQL test: {e}");
            return None;
        }
        Err(e) => panic!("CI=true and PostgreSQL is unreachable: {e}"),
    };
    let name = format!("nuanxin_bin_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').expect("a database in the URL").0;
    Some((format!("{base}/{name}"), admin))
}

pub async fn drop_database(admin: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default();
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// Starts `nuanxin serve` in `dir` (bootstrap token `change-me`) and
/// returns it with its address.
pub async fn serve(dir: &Path, database_url: &str) -> (tokio::process::Child, String) {
    serve_with(dir, database_url, &[]).await
}

/// `nuanxin serve` as [`serve`] does, not yet started, with `env` set.
pub fn server_command(
    dir: &Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_nuanxin"));
    command
        .arg("serve")
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("NUANXIN_BIND", "127.0.0.1:0")
        .env("NUANXIN_BOOTSTRAP_TOKEN", "change-me")
        .env("NUANXIN_LOG", "warn")
        .env_remove("NUANXIN_POLICY")
        .env_remove("NUANXIN_ALERT_WEBHOOKS")
        .env_remove("NUANXIN_ALERT_WEBHOOK_SECRET")
        .env_remove("NUANXIN_READ_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Starts `nuanxin serve` as [`serve`] does, with `env` set too.
pub async fn serve_with(
    dir: &Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let mut child = server_command(dir, database_url, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("nuanxin starts");
    // Pass the server's log on, keeping its end to explain a failed start.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut errors = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let tail = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            eprintln!("{line}");
            let mut tail = tail.lock().unwrap();
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stdout line") {
            if let Some(addr) = line.strip_prefix("nuanxin listening on http://") {
                return addr.trim().to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!(
            "the server exited before listening:\n{}",
            log.lock().unwrap().join("\n")
        );
    })
    .await
    .expect("the server listens within 60 s");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
