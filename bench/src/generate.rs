//! The synthetic-family generator (it lives in `nuanxin_infra::generate`,
//! which `nuanxin demo` shares) and filling a benchmark's empty store with
//! it.

use anyhow::Context;
use nuanxin_infra::rebuild::{self, RebuildReport};
use nuanxin_infra::Nuanxin;

pub use nuanxin_infra::generate::{event_count, family_count, generate, Generated, Spec};

/// Generates `families` families (with `seed`, dated up to today) into the
/// EMPTY store of `app` and rebuilds the read models from them, printing
/// progress on stderr.
pub async fn fill(
    app: &Nuanxin,
    families: usize,
    seed: u64,
) -> anyhow::Result<(Generated, RebuildReport)> {
    let existing = event_count(app.db()).await?;
    anyhow::ensure!(
        existing == 0,
        "the benchmark needs an empty store (this one holds {existing} events): \
         point DATABASE_URL at a scratch database"
    );
    eprintln!("generating {families} families …");
    let spec = Spec {
        families,
        seed,
        today: app.core.today(),
    };
    let generated = generate(&app.core, &spec, &|done, total| {
        if done % 10_000 == 0 || done == total {
            eprintln!("  {done}/{total}");
        }
    })
    .await
    .context("generating")?;
    eprintln!(
        "rebuilding the read models from {} events …",
        generated.events
    );
    let rebuilt = rebuild::rebuild(&app.core, &|_, _| {})
        .await
        .context("rebuilding")?;
    Ok((generated, rebuilt))
}
