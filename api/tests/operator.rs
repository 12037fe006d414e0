//! The operator's everyday commands, run as the real binary on both
//! stores: `nuanxin backup` while the server serves, `nuanxin restore` onto
//! an empty store (migrated, every chain verified), the restored copy
//! served again, and `nuanxin doctor` saying what is right and what is
//! wrong. On PostgreSQL, `backup` and `restore` point to `pg_dump`. The
//! user commands (`users list`, `disable`, `rotate-token`) against a
//! running server, and two server processes on one PostgreSQL database
//! refusing a token disabled through either.

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

    // The copy's personal data opens only with the original master key:
    // without it the server refuses to start (and makes no new key)…
    let keyless = common::server_command(d, restored, &[])
        .output()
        .await
        .expect("nuanxin runs");
    assert!(!keyless.status.success());
    assert!(
        text(&keyless).contains("NUANXIN_MASTER_KEY_FILE"),
        "{}",
        text(&keyless)
    );
    assert!(!d.join("restored-master.key").exists());
    // … and with it, the restored copy serves the case as it stood at the
    // backup.
    let (mut server, addr) = common::serve_with(
        d,
        restored,
        &[("NUANXIN_MASTER_KEY_FILE", "nuanxin-master.key")],
    )
    .await;
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

/// The status `GET {api}/me` answers `token`.
async fn me(api: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{api}/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Polls until `api` refuses `token`, at most 2 s (the documented bound for
/// another server process; the server the change went through, or any on
/// SQLite, refuses at once).
async fn refused_within_2s(api: &str, token: &str) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if me(api, token).await == 401 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "the token is still accepted after 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `nuanxin users list`, `rotate-token` (the admin who lost their token)
/// and `disable` on the server machine while a server runs.
async fn users_from_the_command_line(d: &Path, url: &str) {
    let (mut server, addr) = serve(d, url).await;
    let api = format!("http://{addr}/api/v1");
    let cw = post(
        &api,
        "change-me",
        "/users",
        json!({"name": "Wang Fang", "role": "caseworker", "scope": "45"}),
    )
    .await;
    let (cw_token, cw_id) = (
        cw["token"].as_str().unwrap().to_owned(),
        cw["id"].as_str().unwrap().to_owned(),
    );
    for _ in 0..3 {
        assert_eq!(me(&api, &cw_token).await, 200);
        assert_eq!(me(&api, "change-me").await, 200);
    }

    let list = nuanxin(d, url, &["users", "list"], &[]).await;
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    let admin_id = listed
        .lines()
        .find(|l| l.ends_with("\tbootstrap admin"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("no bootstrap admin in:\n{listed}"))
        .to_owned();
    assert!(listed
        .lines()
        .any(|l| l.starts_with(&cw_id) && l.ends_with("\tWang Fang")));
    assert!(!listed.contains(&cw_token), "no tokens listed");

    // The admin lost their token: a new one, and the old one stops.
    let out = nuanxin(d, url, &["users", "rotate-token", "--id", &admin_id], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let new_admin = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("the new token is printed")
        .trim()
        .to_owned();
    refused_within_2s(&api, "change-me").await;
    assert_eq!(me(&api, &new_admin).await, 200);

    // Disable the caseworker: refused by the running server.
    let none = nuanxin(d, url, &["users", "disable", "--id", &cw_id], &[]).await;
    assert!(!none.status.success(), "--reason is required");
    assert!(text(&none).contains("--reason"), "{}", text(&none));
    let out = nuanxin(
        d,
        url,
        &[
            "users",
            "disable",
            "--id",
            &cw_id,
            "--reason",
            "left the job",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    refused_within_2s(&api, &cw_token).await;
    let again = nuanxin(
        d,
        url,
        &["users", "disable", "--id", &cw_id, "--reason", "again"],
        &[],
    )
    .await;
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already disabled"),
        "{}",
        text(&again)
    );
    let rotate = nuanxin(d, url, &["users", "rotate-token", "--id", &cw_id], &[]).await;
    assert!(!rotate.status.success());
    assert!(text(&rotate).contains("disabled"), "{}", text(&rotate));

    // The API lists them as disabled, with the reason.
    let users = get(&api, &new_admin, "/users").await;
    let item = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == cw_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(item["disabled"], true, "{item}");
    assert_eq!(item["disabled_reason"], "left the job");
    let _ = server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    users_from_the_command_line(dir.path(), "sqlite://nuanxin.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_from_the_command_line() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    users_from_the_command_line(dir.path(), &url).await;
    drop_database(&admin, &url).await;
}

/// Two `nuanxin serve` processes on one PostgreSQL database, both having
/// served (and cached) a token: disabled or rotated through one, it is
/// refused by the other within 2 s (in practice milliseconds: the
/// database's notification).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_server_processes_refuse_a_disabled_or_rotated_token() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut server_a, addr_a) = serve(d, &url).await;
    let (mut server_b, addr_b) = serve(d, &url).await;
    let (a, b) = (
        format!("http://{addr_a}/api/v1"),
        format!("http://{addr_b}/api/v1"),
    );
    let mut users = Vec::new();
    for name in ["Wang Fang", "Li Wei"] {
        let u = post(
            &a,
            "change-me",
            "/users",
            json!({"name": name, "role": "caseworker", "scope": "45"}),
        )
        .await;
        users.push((
            u["token"].as_str().unwrap().to_owned(),
            u["id"].as_str().unwrap().to_owned(),
        ));
    }
    for _ in 0..5 {
        for (token, _) in &users {
            assert_eq!(me(&a, token).await, 200);
            assert_eq!(me(&b, token).await, 200);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ((wang, wang_id), (li, li_id)) = (users[0].clone(), users[1].clone());

    post(
        &a,
        "change-me",
        &format!("/users/{wang_id}/disable"),
        json!({"reason": "left the job"}),
    )
    .await;
    assert_eq!(
        me(&a, &wang).await,
        401,
        "at once on the server that disabled"
    );
    let took = refused_within_2s(&b, &wang).await;
    eprintln!("the other process refused the disabled token after {took:?}");

    let rotated = post(
        &b,
        "change-me",
        &format!("/users/{li_id}/tokens"),
        json!({}),
    )
    .await;
    assert_eq!(me(&b, &li).await, 401, "at once on the server that rotated");
    let took = refused_within_2s(&a, &li).await;
    eprintln!("the other process refused the rotated token after {took:?}");
    assert_eq!(me(&a, rotated["token"].as_str().unwrap()).await, 200);

    let _ = server_a.kill().await;
    let _ = server_b.kill().await;
    drop_database(&admin, &url).await;
}
