//! `nuanxin-bench pages`: the web pages' server time and weight at scale.
//! Generates N families into an EMPTY store (or reuses one), starts
//! `nuanxin serve` as a child process, signs in a caseworker (a township),
//! a supervisor (the county) and an admin (everything) through `/login`,
//! and asks each main page `runs` times in turn, one request at a time, so
//! a request's time is the server's (plus loopback). Also weighs each page
//! (HTML plus the stylesheet, uncompressed). Targets (issue 11): every
//! page p99 ≤ 50 ms at 100,000 families; every page ≤ 100 KB.

use std::time::{Duration, Instant};

use anyhow::Context;
use nuanxin_infra::{on_pool, Nuanxin, Settings};
use serde::Serialize;
use serde_json::json;

use crate::generate;
use crate::load::{machine, start_server, store_version, LoadOptions, Machine, Samples, Stats};

const PASSWORD: &str = "bench-password-123";

#[derive(Debug, Serialize)]
pub struct PageStats {
    pub who: &'static str,
    pub page: String,
    pub bytes: usize,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Serialize)]
pub struct PagesBench {
    pub machine: Machine,
    pub store: String,
    pub families: i64,
    pub events: i64,
    pub runs: usize,
    pub css_bytes: usize,
    pub pages: Vec<PageStats>,
    pub worst_p99_ms: f64,
    pub heaviest_bytes: usize,
}

/// A signed-in browser.
async fn sign_in(
    base: &str,
    admin: &str,
    role: &str,
    scope: &str,
) -> anyhow::Result<reqwest::Client> {
    let login = format!("bench-{role}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(admin)
        .json(
            &json!({"name": format!("bench {role}"), "role": role, "scope": scope,
                      "login": login, "password": PASSWORD}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 201 || r.status() == 409,
        "creating {role}: {}",
        r.status()
    );
    let web = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = web
        .post(format!("{base}/login"))
        .form(&[("login", login.as_str()), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "signing in {role}: {}", r.status());
    Ok(web)
}

/// A family of `township` with the longest history there (a full case file
/// and timeline).
async fn busy_family(db: &nuanxin_infra::Db, township: &str) -> anyhow::Result<String> {
    let sql =
        "SELECT c.family_id FROM case_files c WHERE c.village_code >= $1 AND c.village_code < $2 \
               ORDER BY c.version DESC LIMIT 1";
    let upper = format!("{township}a");
    let id: String = on_pool!(db, pool => {
        sqlx::query_scalar(sql).bind(township).bind(upper).fetch_one(pool).await?
    });
    Ok(id)
}

/// The township (9 digits) with the most families.
async fn busiest_township(db: &nuanxin_infra::Db) -> anyhow::Result<String> {
    let sql = "SELECT substr(village_code, 1, 9) AS t FROM case_files GROUP BY t \
               ORDER BY COUNT(*) DESC, t LIMIT 1";
    let t: String = on_pool!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await?);
    Ok(t)
}

pub async fn pages(
    settings: &Settings,
    database_url: &str,
    families: usize,
    seed: u64,
    reuse: bool,
    runs: usize,
) -> anyhow::Result<PagesBench> {
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    if reuse {
        anyhow::ensure!(
            generate::event_count(&db).await? > 0,
            "--reuse needs a store generated before"
        );
    } else {
        generate::fill(&app, families, seed).await?;
    }
    let store_version = store_version(&db).await?;

    let township = busiest_township(&db).await?;
    let county = township[..6].to_owned();
    let family = busy_family(&db, &township).await?;
    let admin_token = format!("bench-admin-{}", uuid::Uuid::new_v4().simple());
    if reuse {
        // The store's users exist already: bootstrapping would not apply.
        nuanxin_infra::users::create(
            &db,
            "bench admin",
            nuanxin_domain::UserRole::Admin,
            &nuanxin_domain::Scope::everything(),
            Some(nuanxin_infra::users::Secret::new(admin_token.clone())),
        )
        .await?;
    }
    drop(app);

    let opts = LoadOptions {
        database_url: database_url.to_owned(),
        families,
        seed,
        clients: 1,
        seconds: 0,
        warmup_seconds: 0,
        server_connections: 10,
        server_bin: None,
        out_dir: ".".into(),
        fold_reps: 0,
        reuse: true,
        server_log: "warn".into(),
    };
    let server = start_server(&opts, &admin_token).await?;
    let base = server.base.clone();
    let result = measure(&base, &admin_token, &township, &county, &family, runs).await;
    server.stop().await;
    let (css_bytes, pages) = result?;
    let worst_p99_ms = pages.iter().map(|p| p.stats.p99_ms).fold(0.0, f64::max);
    let heaviest_bytes = pages.iter().map(|p| p.bytes).max().unwrap_or(0) + css_bytes;
    Ok(PagesBench {
        machine: machine(store_version),
        store: if matches!(db, nuanxin_infra::Db::Postgres(_)) {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        families: generate::family_count(&db).await?,
        events: generate::event_count(&db).await?,
        runs,
        css_bytes,
        pages,
        worst_p99_ms,
        heaviest_bytes,
    })
}

async fn measure(
    base: &str,
    admin_token: &str,
    township: &str,
    county: &str,
    family: &str,
    runs: usize,
) -> anyhow::Result<(usize, Vec<PageStats>)> {
    let caseworker = sign_in(base, admin_token, "caseworker", township).await?;
    let supervisor = sign_in(base, admin_token, "supervisor", county).await?;
    let admin = sign_in(base, admin_token, "admin", "").await?;
    let css = caseworker
        .get(format!("{base}{}", nuanxin_api_css_path()))
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let asked: Vec<(&'static str, &reqwest::Client, String)> = vec![
        ("caseworker", &caseworker, "/".into()),
        ("caseworker", &caseworker, "/families".into()),
        ("caseworker", &caseworker, format!("/families/{family}")),
        (
            "caseworker",
            &caseworker,
            format!("/families/{family}/visit?role=village"),
        ),
        ("caseworker", &caseworker, "/overdue".into()),
        ("caseworker", &caseworker, "/alerts".into()),
        ("supervisor", &supervisor, "/".into()),
        ("supervisor", &supervisor, format!("/?prefix={township}")),
        (
            "supervisor",
            &supervisor,
            format!("/families?village={township}"),
        ),
        // The county's whole list (sorted in range) and the region's
        // (walked in family-id order): both sides of the family list's plan.
        ("supervisor", &supervisor, "/families".into()),
        ("supervisor", &supervisor, "/overdue".into()),
        ("supervisor", &supervisor, "/coverage".into()),
        ("supervisor", &supervisor, "/alerts".into()),
        (
            "supervisor",
            &supervisor,
            format!("/families/{family}/history"),
        ),
        ("supervisor", &supervisor, "/reports".into()),
        ("admin", &admin, "/".into()),
        ("admin", &admin, "/families".into()),
        ("admin", &admin, "/admin/users".into()),
        ("admin", &admin, "/admin/access-log".into()),
    ];
    let mut out = Vec::new();
    for (who, client, page) in asked {
        let url = format!("{base}{page}");
        // One untimed request first (the first use of a statement).
        let first = client.get(&url).send().await?;
        anyhow::ensure!(first.status() == 200, "{who} {page}: {}", first.status());
        let bytes = first.bytes().await?.len();
        let mut samples = Samples::default();
        let start = Instant::now();
        for _ in 0..runs {
            let t = Instant::now();
            let r = client.get(&url).send().await.context("asking a page")?;
            let ok = r.status() == 200;
            let _ = r.bytes().await?;
            samples.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if !ok {
                samples.errors += 1;
            }
        }
        let stats = samples.stats(
            start
                .elapsed()
                .as_secs_f64()
                .max(Duration::from_millis(1).as_secs_f64()),
        );
        eprintln!(
            "{who:<10} {page:<60} p50 {:>6.1} ms  p99 {:>6.1} ms  {bytes} B",
            stats.p50_ms, stats.p99_ms
        );
        out.push(PageStats {
            who,
            page: page
                .replace(family, "{family}")
                .replace(township, "{township}"),
            bytes,
            stats,
        });
    }
    Ok((css, out))
}

/// The stylesheet's path (as the pages link it).
fn nuanxin_api_css_path() -> String {
    concat!("/static/app-", env!("CARGO_PKG_VERSION"), ".css").to_owned()
}

impl PagesBench {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "{} at {} families, {} events; {} runs per page, one at a time; stylesheet {} B\n\n\
             | who | page | p50 | p99 | max | HTML bytes |\n|---|---|---|---|---|---|\n",
            self.store, self.families, self.events, self.runs, self.css_bytes
        );
        for p in &self.pages {
            s.push_str(&format!(
                "| {} | `{}` | {:.1} ms | {:.1} ms | {:.1} ms | {} |\n",
                p.who, p.page, p.stats.p50_ms, p.stats.p99_ms, p.stats.max_ms, p.bytes
            ));
        }
        s.push_str(&format!(
            "\nworst p99 {:.1} ms (target ≤ 50 ms); heaviest page with the stylesheet {} B (target ≤ 100 KB)\n",
            self.worst_p99_ms, self.heaviest_bytes
        ));
        s
    }
}
