//! The operator's everyday commands, run as the real binary on both
//! stores: `nuanxin backup` while the server serves, `nuanxin restore` onto
//! an empty store (migrated, every chain verified), the restored copy
//! served again, and `nuanxin doctor` saying what is right and what is
//! wrong. On PostgreSQL, `backup` and `restore` point to `pg_dump`.

mod common;

use std::path::Path;
use std::process::Output;

use common::{drop_database, postgres_database, serve};
use serde_json::{json, Value};

async fn nuanxin(dir: &Path, database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_nuanxin"));
    command
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("NUANXIN_LOG", "warn")
        .env_remove("NUANXIN_POLICY")
        .env_remove("NUANXIN_ALERT_WEBHOOKS");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().await.expect("nuanxin runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn post(api: &str, token: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{api}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

async fn get(api: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{api}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// A family with a contact and a visit; returns (family id, token).
async fn some_data(api: &str) -> (String, String) {
    let token = post(
        api,
        "change-me",
        "/users",
        json!({"name": "Wang Fang", "role": "caseworker", "scope": "45"}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let family = post(
        api,
        &token,
        "/families",
        json!({"category": "bereaved", "village_code": "450305001001", "address": "Xincun",
               "registered_on": "2026-01-10",
               "members": [{"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01"}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        api,
        &token,
        &format!("/families/{family}/contacts"),
        json!({"role": "village", "person": {"id": uuid::Uuid::new_v4(), "name": "Li Si",
               "phone": "13900139000"}, "assigned_on": "2026-02-01"}),
    )
    .await;
    post(
        api,
        &token,
        &format!("/families/{family}/visits"),
        json!({"role": "village", "mode": "home", "visited_on": "2026-02-03", "findings": "well"}),
    )
    .await;
    (family, token)
}

fn assert_doctor_lines(out: &Output) {
    let t = text(out);
    for area in [
        "store",
        "migrations",
        "policy",
        "read models",
        "webhooks",
        "alert scan",
        "clock",
    ] {
        assert!(
            t.lines()
                .any(|l| l.get(6..).is_some_and(|rest| rest.starts_with(area))),
            "no `{area}` line:\n{t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_while_serving_restore_onto_an_empty_store_and_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "sqlite://nuanxin.db";
    let (mut server, addr) = serve(d, url).await;
    let api = format!("http://{addr}/api/v1");
    let (family, token) = some_data(&api).await;
    let version = get(&api, &token, &format!("/families/{family}")).await["version"].clone();

    // An online backup: the server keeps serving.
    let out = nuanxin(d, url, &["backup", "backup.db"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all intact"), "{}", text(&out));
    assert!(
        !d.join("backup.db-wal").exists(),
        "the copy is one self-contained file"
    );
    let again = nuanxin(d, url, &["backup", "backup.db"], &[]).await;
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    // Recorded after the backup: not in it.
    post(
        &api,
        &token,
        &format!("/families/{family}/notes"),
        json!({"text": "later"}),
    )
    .await;

    let doctor = nuanxin(d, url, &["doctor"], &[]).await;
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert_doctor_lines(&doctor);
    let broken = nuanxin(
        d,
        url,
        &["doctor"],
        &[("NUANXIN_ALERT_WEBHOOKS", "http://127.0.0.1:9/hook")],
    )
    .await;
    assert!(
        !broken.status.success(),
        "an unreachable webhook fails: {}",
        text(&broken)
    );
    assert!(
        text(&broken)
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("webhooks")),
        "{}",
        text(&broken)
    );
    let _ = server.kill().await;

    // Restore onto a store that does not exist yet; never over one that does.
    let restored = "sqlite://restored.db";
    let out = nuanxin(d, restored, &["restore", "backup.db"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all intact"), "{}", text(&out));
    let again = nuanxin(d, restored, &["restore", "backup.db"], &[]).await;
    assert!(!again.status.success());
    assert!(
        text(&again).contains("needs an empty store"),
        "{}",
        text(&again)
    );
    let verify = nuanxin(
        d,
        restored,
        &["audit", "verify", "--reason", "after the restore"],
        &[],
    )
    .await;
    assert!(verify.status.success(), "{}", text(&verify));

    // The restored copy serves the case as it stood at the backup.
    let (mut server, addr) = serve(d, restored).await;
    let api = format!("http://{addr}/api/v1");
    let case = get(&api, &token, &format!("/families/{family}")).await;
    assert_eq!(case["version"], version, "{case}");
    assert_eq!(case["visits"]["village"]["last_on"], "2026-02-03");
    let _ = server.kill().await;

    let missing = nuanxin(d, "sqlite://nowhere.db", &["doctor"], &[]).await;
    assert!(!missing.status.success());
    assert!(text(&missing).contains("no database"), "{}", text(&missing));
    assert!(!d.join("nowhere.db").exists(), "the doctor creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backup_points_to_pg_dump_and_doctor_checks() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut server, addr) = serve(d, &url).await;
    some_data(&format!("http://{addr}/api/v1")).await;

    let out = nuanxin(d, &url, &["backup", "backup.db"], &[]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));
    assert!(!d.join("backup.db").exists());
    let out = nuanxin(d, &url, &["restore", "whatever.db"], &[]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_restore"), "{}", text(&out));

    let doctor = nuanxin(d, &url, &["doctor"], &[]).await;
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert_doctor_lines(&doctor);
    assert!(text(&doctor).contains("PostgreSQL"), "{}", text(&doctor));
    let _ = server.kill().await;
    drop_database(&admin, &url).await;
}
