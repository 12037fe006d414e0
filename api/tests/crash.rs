//! `kill -9` of the server in the middle of a load: every command it
//! acknowledged (2xx) is in the log after a restart, every family's hash
//! chain verifies, `nuanxin audit verify` passes, and each case file reads
//! at the version its history ends at. Runs the real binary on SQLite and
//! on PostgreSQL.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{drop_database, postgres_database, serve};
use serde_json::{json, Value};

const FAMILIES: usize = 12;
const CLIENTS: usize = 24;

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Option<Value> {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn crash_and_recover(database_url: &str, dir: &Path) {
    let http = reqwest::Client::new();
    let (mut server, addr) = serve(dir, database_url).await;
    let api = format!("http://{addr}/api/v1");
    let cw = post(
        &http,
        format!("{api}/users"),
        "change-me",
        json!({"name": "Wang Fang", "role": "caseworker", "scope": "45"}),
    )
    .await
    .expect("caseworker created")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut families = Vec::new();
    for i in 0..FAMILIES {
        let body = json!({"category": "bereaved", "village_code": format!("4503050010{:02}", i + 1),
            "address": "Xincun", "registered_on": "2026-01-10",
            "members": [{"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01"}]});
        let r = post(&http, format!("{api}/families"), &cw, body)
            .await
            .expect("registered");
        families.push(r["id"].as_str().expect("id").to_owned());
    }

    // Load: notes on random families until the server dies.
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (http, api, cw) = (http.clone(), api.clone(), cw.clone());
        let (families, acknowledged, stop) = (families.clone(), acknowledged.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                n += 7;
                let family = &families[n % families.len()];
                let url = format!("{api}/families/{family}/notes");
                match post(&http, url, &cw, json!({"text": format!("note {n}")})).await {
                    Some(r) => acknowledged.lock().unwrap().push((
                        family.clone(),
                        r["action_id"].as_str().unwrap_or_default().to_owned(),
                    )),
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.start_kill().expect("SIGKILL");
    let _ = server.wait().await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the load ran: {} acknowledged",
        acknowledged.len()
    );

    // Restart on the same store: nothing acknowledged is missing.
    let (mut server, addr) = serve(dir, database_url).await;
    let api = format!("http://{addr}/api/v1");
    let mut recorded = std::collections::HashSet::new();
    for family in &families {
        let mut cursor: Option<String> = None;
        let mut last_sequence = 0;
        loop {
            let mut url = format!("{api}/families/{family}/history?limit=500");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let h: Value = http
                .get(url)
                .bearer_auth(&cw)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(h["chain_valid"], true, "family {family}: {h}");
            for item in h["items"].as_array().expect("items") {
                recorded.insert(item["action_id"].as_str().unwrap_or_default().to_owned());
                last_sequence = item["sequence"].as_u64().unwrap();
            }
            match h["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let file: Value = http
            .get(format!("{api}/families/{family}"))
            .bearer_auth(&cw)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            file["version"], last_sequence,
            "case file at the log's version"
        );
    }
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(_, action)| !recorded.contains(action))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let _ = server.kill().await;

    let verify = tokio::process::Command::new(env!("CARGO_BIN_EXE_nuanxin"))
        .args(["audit", "verify", "--reason", "after the crash test"])
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .expect("audit verify runs");
    assert!(
        verify.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_command_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    crash_and_recover("sqlite://nuanxin.db", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_command_on_postgres() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    crash_and_recover(&url, dir.path()).await;
    drop_database(&admin, &url).await;
}
