//! `nuanxin demo`, run as the real binary on both stores: on an empty store
//! (users allowed) it records N families of its county through the command
//! path — visible through the API with overdue items and alerts, every hash
//! chain intact — and its demo users sign in with the password it printed;
//! on a store that holds events it refuses with exit 2 and changes nothing.

mod common;

use std::path::Path;
use std::process::Output;

use common::{drop_database, postgres_database, serve};
use nuanxin_infra::{DatabaseUrl, Db};
use serde_json::Value;

async fn nuanxin(dir: &Path, database_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_nuanxin"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("NUANXIN_LOG", "warn")
        .env_remove("NUANXIN_POLICY")
        .output()
        .await
        .expect("nuanxin runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn all(o: &Output) -> String {
    format!("{}{}", out(o), String::from_utf8_lossy(&o.stderr))
}

/// (events, users) in the store.
async fn counts(url: &str) -> (i64, i64) {
    let db = Db::connect(&DatabaseUrl::parse(url).unwrap(), 1)
        .await
        .expect("connect");
    let counts = nuanxin_infra::on_pool!(&db, pool => {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM users)",
        )
        .fetch_one(pool)
        .await
    })
    .expect("count");
    db.close().await;
    counts
}

async fn get(api: &str, token: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{api}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

async fn demo_scenario(dir: &Path, url: &str) {
    // An admin exists already (a store with users but no events is empty
    // enough); her token reads the API afterwards.
    let added = nuanxin(
        dir,
        url,
        &["users", "add", "--name", "Test Admin", "--role", "admin"],
    )
    .await;
    assert!(added.status.success(), "{}", all(&added));
    let token = out(&added)
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .map(|s| s.trim().to_owned())
        .expect("the admin's token");

    let demo = ["demo", "--families", "50", "--seed", "7", "--with-users"];
    let first = nuanxin(dir, url, &demo).await;
    assert!(first.status.success(), "{}", all(&first));
    let printed = out(&first);
    assert!(printed.contains(" 50 families"), "{printed}");
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .map(|s| s.trim().to_owned())
        .expect("the demo users' password");
    assert_eq!(password.len(), 16, "{printed}");
    for login in ["demo-caseworker", "demo-supervisor", "demo-admin"] {
        assert!(printed.contains(login), "{printed}");
    }
    let (events, users) = counts(url).await;
    assert!(events > 50 * 5, "{events} events");
    assert_eq!(users, 4);

    // Every chain verifies.
    let verify = nuanxin(dir, url, &["audit", "verify", "--reason", "demo test"]).await;
    assert!(verify.status.success(), "{}", all(&verify));
    assert!(out(&verify).contains("all intact"), "{}", all(&verify));

    // Again, on the store it filled: refused, nothing changes.
    let again = nuanxin(dir, url, &demo).await;
    assert_eq!(again.status.code(), Some(2), "{}", all(&again));
    assert!(
        all(&again).contains("already holds 50 families"),
        "{}",
        all(&again)
    );
    let access_rows = counts(url).await;
    assert_eq!(access_rows, (events, users));

    // Served: the families, overdue items and alerts are there, and the
    // demo supervisor signs in with the printed password.
    let (_server, addr) = serve(dir, url).await;
    let api = format!("http://{addr}/api/v1");
    let families = get(&api, &token, "/families?limit=500").await;
    let items = families["items"].as_array().expect("items");
    assert_eq!(items.len(), 50, "{families}");
    assert!(items
        .iter()
        .all(|f| f["village_code"].as_str().unwrap().starts_with("450329")));
    let overdue = get(&api, &token, "/overdue-visits?limit=500").await;
    assert!(
        !overdue["items"].as_array().expect("items").is_empty(),
        "{overdue}"
    );
    let alerts = get(&api, &token, "/alerts?limit=500").await;
    assert!(
        !alerts["items"].as_array().expect("items").is_empty(),
        "{alerts}"
    );
    let signed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{addr}/login"))
        .form(&[
            ("login", "demo-supervisor"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert!(signed.headers().contains_key("set-cookie"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_demo() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nuanxin.db", dir.path().display());
    demo_scenario(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_demo() {
    let Some((url, admin)) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    demo_scenario(dir.path(), &url).await;
    drop_database(&admin, &url).await;
}
