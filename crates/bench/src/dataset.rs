//! Deterministic datasets, built once per (backend, seed, size) and reused.

use crate::Args;
use anyhow::{Context, Result};
use carefront_domain::patient::Patient;
use carefront_server::demo;
use carefront_store::{Db, Page};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Dataset {
    pub url: String,
    /// Where it lives, without credentials.
    pub display: String,
    pub backend: &'static str,
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        })
}

pub async fn prepare(args: &Args) -> Result<Dataset> {
    let name = format!("cf_bench_s{}_n{}", args.seed, args.size);
    let (url, display, backend) = match &args.database {
        Some(admin) if admin.starts_with("postgres") => {
            let admin_db = Db::connect(admin)
                .await
                .context("cannot reach PostgreSQL")?;
            admin_db.create_database_if_missing(&name).await?;
            admin_db.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
            (
                format!("{base}/{name}"),
                format!("PostgreSQL database {name}"),
                "postgres",
            )
        }
        Some(sqlite) => (sqlite.clone(), sqlite.clone(), "sqlite"),
        None => {
            let dir = target_dir().join("bench-data");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{name}.db"));
            (
                format!("sqlite://{}", path.display()),
                path.display().to_string(),
                "sqlite",
            )
        }
    };
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let org_id = match db.organizations().await?.first() {
        Some((id, _)) => id.clone(),
        None => demo::seed_clinic(&db, args.seed).await?.0,
    };
    let (_, have) = db
        .search::<Patient>(
            &org_id,
            &[],
            Page {
                offset: 0,
                count: 0,
            },
        )
        .await?;
    let have = u64::try_from(have)?;
    if have < args.size {
        let bar = ProgressBar::new(args.size).with_style(
            ProgressStyle::with_template(
                "generating dataset [{bar:40}] {pos}/{len} patients ({per_sec}, {eta} left)",
            )?
            .progress_chars("=> "),
        );
        bar.set_position(have);
        demo::add_patients(&db, &org_id, args.seed, args.size - have, |n| {
            bar.set_position(have + n)
        })
        .await?;
        bar.finish();
    }
    db.close().await;
    Ok(Dataset {
        url,
        display,
        backend,
    })
}
