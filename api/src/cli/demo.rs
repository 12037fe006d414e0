//! `nuanxin demo`: fills an empty store with the made-up county of
//! [`nuanxin_infra::demo`], recorded through the command path, then runs
//! the alert scans of the last weeks and prints what it made.

use anyhow::Context;
use nuanxin_infra::config::policy_from;
use nuanxin_infra::demo::{self, DemoSpec};
use nuanxin_infra::users::Secret;
use nuanxin_infra::{accounts, Db, Nuanxin};

use super::{settings, Exit, PolicyArgs, StoreArgs};

/// `nuanxin demo` (see [`super::Command::Demo`]).
pub async fn run(
    store: StoreArgs,
    policy: PolicyArgs,
    families: usize,
    seed: u64,
    with_users: bool,
) -> anyhow::Result<()> {
    let mut s = settings(&store)?;
    let db = Db::open(&s.database_url, s.max_connections).await?;
    s.policy = policy_from(policy.policy.as_ref())?;
    let app = Nuanxin::new(nuanxin_infra::Core::from_settings(db, &s)?);
    let result = fill(&app, families, seed, with_users).await;
    app.db().close().await;
    result
}

async fn fill(app: &Nuanxin, families: usize, seed: u64, with_users: bool) -> anyhow::Result<()> {
    let (held, events) = demo::holdings(app.db())
        .await
        .context("reading the store")?;
    if events > 0 {
        return Err(Exit {
            code: 2,
            message: format!(
                "the store already holds {held} families ({events} events): `nuanxin demo` \
                 fills only an empty store — point DATABASE_URL at a new one, e.g. \
                 DATABASE_URL=sqlite://nuanxin-demo.db"
            ),
        }
        .into());
    }
    app.projector.follow_stored_policy().await?;
    let spec = DemoSpec {
        families,
        seed,
        today: app.core.today(),
        offset: app.core.services().offset,
    };
    let mut county = demo::families(&spec);
    let password = with_users.then(demo::password);
    let mut created = Vec::new();
    if let Some(password) = &password {
        for (login, name, role, scope) in demo::users(&county) {
            let new = accounts::NewUser {
                name,
                role,
                scope: scope.clone(),
                login: Some(login.clone()),
                password: Some(Secret::new(password.as_str())),
                token: None,
            };
            match accounts::create(app.db(), new, chrono::Utc::now()).await {
                Ok(_) => created.push((login, role, scope)),
                Err(accounts::CreateError::LoginTaken) => {
                    return Err(Exit {
                        code: 2,
                        message: format!(
                            "a user signs in as {login} already: run the demo without \
                             --with-users, or on a new store"
                        ),
                    }
                    .into())
                }
                Err(e) => return Err(anyhow::Error::new(e).context("creating the demo users")),
            }
        }
    }
    let total = county.families.len();
    let commands = county.commands();
    eprintln!(
        "recording {total} families ({commands} commands) of the demo county {}, \
         the last {} days day by day with their alert scans …",
        county.code,
        demo::SCAN_DAYS
    );
    let drawn = std::mem::take(&mut county.families);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(commands as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} commands  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let every = (commands / 10).max(1);
    let mut shown = 0;
    let recorded = demo::record(app, drawn, spec.today, |done| match &bar {
        Some(bar) => bar.set_position(done as u64),
        None if done / every > shown || done == commands => {
            shown = done / every;
            eprintln!("{done}/{commands} commands");
        }
        None => {}
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let recorded = recorded.context("recording the demo county")?;
    let alerts = recorded.alerts;
    println!(
        "demo county {}: {} townships, {} villages, {} families, {} events in {:.1} s \
         ({:.0} events/s)",
        county.code,
        county.townships.len(),
        county.villages(),
        recorded.families,
        recorded.commands,
        recorded.seconds,
        recorded.commands as f64 / recorded.seconds.max(1e-9)
    );
    println!(
        "alerts: {} raised, {} escalated, {} resolved by the daily scans of the last {} days",
        alerts.raised,
        alerts.escalated,
        alerts.resolved,
        demo::SCAN_DAYS,
    );
    let townships: Vec<String> = county
        .townships
        .iter()
        .map(|t| format!("{} {}", t.code, t.name))
        .collect();
    println!("townships: {}", townships.join(", "));
    match &password {
        Some(password) => {
            println!("users (sign in at the web pages; one password for all):");
            for (login, role, scope) in &created {
                println!("  {login:<16} {role:<11} scope {}", scope.as_str());
            }
            println!("  password: {password}");
            eprintln!("The password is shown only now. Change it under 我的账号 for anything but a trial.");
        }
        None => {
            println!(
                "no users were created: sign in as the bootstrap admin (NUANXIN_BOOTSTRAP_PASSWORD \
                 of `nuanxin serve`) and create some under 用户, or run the demo with --with-users \
                 on a new store"
            );
        }
    }
    Ok(())
}
