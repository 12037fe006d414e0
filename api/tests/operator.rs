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

/// `nuanxin privacy …` beside a running server: an erasure from the command
/// line reaches the server's answers within its one-second look at the
/// store; the status names the key in use; a rotation rewraps every key,
/// after which the old key no longer starts a server and the new one reads
/// everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_privacy_erase_status_and_key_rotation_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "sqlite://nuanxin.db";
    let (mut server, addr) = serve(d, url).await;
    let api = format!("http://{addr}/api/v1");
    let (family, token) = some_data(&api).await;
    let (kept, _) = some_data_of(&api, &token).await;
    post(
        &api,
        &token,
        &format!("/families/{family}/close"),
        json!({"on": "2026-03-01", "reason": "moved away"}),
    )
    .await;

    // Recorded by the bootstrap admin (the default `--as`): the family and
    // its one member lose their keys.
    let erase = [
        "privacy",
        "erase",
        "--family",
        &family,
        "--reason",
        "purpose_ended",
    ];
    let out = nuanxin(d, url, &erase, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 person keys deleted"),
        "{}",
        text(&out)
    );
    // The running server stops opening the family's fields.
    let mut name = Value::Null;
    for _ in 0..30 {
        name =
            get(&api, &token, &format!("/families/{family}")).await["members"][0]["name"].clone();
        if name == "[已删除]" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(name, "[已删除]");
    let other = get(&api, &token, &format!("/families/{kept}")).await;
    assert_eq!(other["members"][0]["name"], "Zhang San");
    let again = nuanxin(d, url, &erase, &[]).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("erased"), "{}", text(&again));
    let bad = nuanxin(
        d,
        url,
        &[
            "privacy", "erase", "--family", &family, "--reason", "because",
        ],
        &[],
    )
    .await;
    assert!(!bad.status.success());
    assert!(text(&bad).contains("purpose_ended"), "{}", text(&bad));

    let status = nuanxin(d, url, &["privacy", "status"], &[]).await;
    assert!(status.status.success(), "{}", text(&status));
    let s = text(&status);
    assert!(s.contains("nuanxin-master.key"), "{s}");
    assert!(s.contains("2 erased"), "{s}");
    assert!(
        s.contains("every personal field of the log is encrypted"),
        "{s}"
    );
    let _ = server.kill().await;

    // Rotation: a new key file, every live key rewrapped.
    let rotate = nuanxin(
        d,
        url,
        &["privacy", "rotate-key", "--new-key-file", "next.key"],
        &[],
    )
    .await;
    assert!(rotate.status.success(), "{}", text(&rotate));
    assert!(text(&rotate).contains("rewrapped"), "{}", text(&rotate));
    let twice = nuanxin(
        d,
        url,
        &["privacy", "rotate-key", "--new-key-file", "next.key"],
        &[],
    )
    .await;
    assert!(
        !twice.status.success(),
        "an existing file is never overwritten"
    );
    // The old key no longer opens the store…
    let old = common::server_command(d, url, &[])
        .output()
        .await
        .expect("runs");
    assert!(!old.status.success());
    assert!(
        text(&old).contains("not by the configured master key"),
        "{}",
        text(&old)
    );
    // … the new one does, and the erased family stays erased.
    let (mut server, addr) =
        common::serve_with(d, url, &[("NUANXIN_MASTER_KEY_FILE", "next.key")]).await;
    let api = format!("http://{addr}/api/v1");
    let other = get(&api, &token, &format!("/families/{kept}")).await;
    assert_eq!(other["members"][0]["name"], "Zhang San");
    let erased = get(&api, &token, &format!("/families/{family}")).await;
    assert_eq!(erased["members"][0]["name"], "[已删除]");
    let _ = server.kill().await;
}

/// Another family like [`some_data`]'s, by the same caseworker.
async fn some_data_of(api: &str, token: &str) -> (String, ()) {
    let family = post(
        api,
        token,
        "/families",
        json!({"category": "bereaved", "village_code": "450305001001", "address": "Xincun",
               "registered_on": "2026-01-10",
               "members": [{"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01"}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (family, ())
}

/// A store with a personal field in clear (an event as a server before
/// encryption wrote it) is copied by `nuanxin privacy migrate` into a new
/// store where every field is sealed: the new log verifies, the family
/// reads the same, the users' tokens still work, and an erasure now reaches
/// the old clear note too.
async fn clear_store_is_migrated_into_a_sealed_one(d: &Path, from: &str, to: &str, key: &str) {
    let (mut server, addr) = serve(d, from).await;
    let api = format!("http://{addr}/api/v1");
    let (family, token) = some_data(&api).await;
    let _ = server.kill().await;
    let old_note = "Qinoldnote written in clear before encryption";
    append_clear_note(d, from, &family, old_note).await;

    let status = nuanxin(d, from, &["privacy", "status"], &[]).await;
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("1 event(s) hold 1 personal field(s) in clear"),
        "{}",
        text(&status)
    );
    let same = nuanxin(d, from, &["privacy", "migrate", "--to", from], &[]).await;
    assert!(!same.status.success(), "never onto itself");

    let out = nuanxin(d, from, &["privacy", "migrate", "--to", to], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("copied 1 families"), "{t}");
    assert!(t.contains("1 personal fields sealed now"), "{t}");
    assert!(t.contains(", 0 broken"), "{t}");
    // Onto a store that is no longer empty: refused.
    let again = nuanxin(d, from, &["privacy", "migrate", "--to", to], &[]).await;
    assert!(!again.status.success());
    assert!(text(&again).contains("empty store"), "{}", text(&again));

    // The new store uses the old one's master key.
    let key = [("NUANXIN_MASTER_KEY_FILE", key)];
    let status = nuanxin(d, to, &["privacy", "status"], &key).await;
    assert!(
        text(&status).contains("every personal field of the log is encrypted"),
        "{}",
        text(&status)
    );
    let verify = nuanxin(
        d,
        to,
        &["audit", "verify", "--reason", "after the copy"],
        &key,
    )
    .await;
    assert!(verify.status.success(), "{}", text(&verify));
    let raw = stored_payloads(d, to).await;
    assert!(!raw.contains("Qinoldnote") && !raw.contains("Zhang San") && raw.contains("nx2:"));

    // The copy serves the family as it was, to the same users.
    let (mut server, addr) = common::serve_with(d, to, &key).await;
    let api = format!("http://{addr}/api/v1");
    let case = get(&api, &token, &format!("/families/{family}")).await;
    assert_eq!(case["members"][0]["name"], "Zhang San", "{case}");
    assert_eq!(case["notes"][0]["text"], old_note, "{case}");
    assert_eq!(case["visits"]["village"]["last_on"], "2026-02-03");
    // And erasure now reaches the old note.
    post(
        &api,
        &token,
        &format!("/families/{family}/close"),
        json!({"on": "2026-03-01", "reason": "moved away"}),
    )
    .await;
    post(
        &api,
        "change-me",
        &format!("/families/{family}/erase"),
        json!({"reason": "purpose_ended"}),
    )
    .await;
    let case = get(&api, &token, &format!("/families/{family}")).await;
    assert_eq!(case["notes"][0]["text"], "[已删除]", "{case}");
    assert_eq!(case["members"][0]["name"], "[已删除]", "{case}");
    let _ = server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_clear_store_is_migrated_into_a_sealed_one() {
    let dir = tempfile::tempdir().unwrap();
    clear_store_is_migrated_into_a_sealed_one(
        dir.path(),
        "sqlite://old.db",
        "sqlite://sealed.db",
        "old-master.key",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_clear_store_is_migrated_into_a_sealed_one() {
    let Some((from, admin)) = postgres_database().await else {
        return;
    };
    let Some((to, _)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    clear_store_is_migrated_into_a_sealed_one(dir.path(), &from, &to, "nuanxin-master.key").await;
    drop_database(&admin, &from).await;
    drop_database(&admin, &to).await;
}

/// The store at `url`, a relative SQLite path taken in `dir` (where the
/// binary ran).
async fn open(dir: &Path, url: &str) -> nuanxin_infra::Db {
    let url = match url.strip_prefix("sqlite://") {
        Some(file) => format!("sqlite://{}", dir.join(file).display()),
        None => url.to_owned(),
    };
    nuanxin_infra::Db::connect(&nuanxin_infra::DatabaseUrl::parse(&url).unwrap(), 1)
        .await
        .unwrap()
}

/// Every event payload of the store, as text.
async fn stored_payloads(dir: &Path, url: &str) -> String {
    let db = open(dir, url).await;
    let rows: Vec<(String,)> = nuanxin_infra::on_pool!(&db, pool => {
        sqlx::query_as("SELECT CAST(payload AS TEXT) FROM events").fetch_all(pool).await.unwrap()
    });
    db.close().await;
    rows.into_iter()
        .map(|(p,)| p)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Appends a note to the family's stream in clear, chained as a server
/// before encryption did.
async fn append_clear_note(dir: &Path, url: &str, family: &str, text: &str) {
    let db = open(dir, url).await;
    let family_id: uuid::Uuid = family.parse().unwrap();
    let events = nuanxin_infra::store::events::of_family(&db, family_id)
        .await
        .unwrap();
    let last = events.last().unwrap();
    let mut metadata = last.metadata.clone();
    metadata["request_id"] = json!("old-server");
    let serialized = cqrs_es::persist::SerializedEvent::new(
        family.to_owned(),
        last.sequence as usize + 1,
        "FamilyCase".into(),
        "NoteAdded".into(),
        "1".into(),
        json!({"NoteAdded": {"action_id": uuid::Uuid::now_v7(), "text": text}}),
        metadata,
    );
    let prev = last.metadata_str("hash").unwrap_or_default().to_owned();
    let sealed = nuanxin_infra::audit::seal(&[serialized], prev)
        .unwrap()
        .pop()
        .unwrap();
    let new = nuanxin_infra::store::events::NewEvent::from_sealed("FamilyCase", sealed);
    let mut tx = db.begin().await.unwrap();
    nuanxin_infra::store::events::append(&mut tx, &[&new])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await;
}
