//! Deterministic datasets, built once per (backend, seed, size) and reused.
//!
//! Patient `i` of the dataset is patient `i` of `PatientGenerator::new(seed)`
//! and gets MRN `i + 1` (patients are stored in order through the store's
//! bulk path), so scenarios can derive what to type from the generator
//! alone.

use crate::Args;
use anyhow::{Context, Result, bail};
use carefront_domain::patient::Patient;
use carefront_server::demo;
use carefront_store::{AppointmentQuery, Db, Page, new_id};
use carefront_synth::PatientGenerator;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

/// Patients per bulk write while generating, and per transaction.
const BATCH: u64 = 10_000;
const PER_TRANSACTION: u64 = 200_000;

pub struct Dataset {
    pub url: String,
    /// Where it lives, without credentials.
    pub display: String,
    pub backend: &'static str,
    pub org_id: String,
}

pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        })
}

/// `target/bench-data`, created if missing.
pub fn data_dir() -> Result<std::path::PathBuf> {
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The database URL for a dataset called `name`: a SQLite file under
/// `target/bench-data`, the SQLite URL given, or a database of that name on
/// the PostgreSQL server whose admin URL is given (created if missing).
pub async fn database_for(
    database: Option<&str>,
    name: &str,
) -> Result<(String, String, &'static str)> {
    Ok(match database {
        Some(admin) if admin.starts_with("postgres") => {
            let admin_db = Db::connect(admin)
                .await
                .context("cannot reach PostgreSQL")?;
            admin_db.create_database_if_missing(name).await?;
            admin_db.close().await;
            (
                format!("{}/{name}", postgres_base(admin)),
                format!("PostgreSQL database {name}"),
                "postgres",
            )
        }
        Some(sqlite) => (sqlite.to_string(), sqlite.to_string(), "sqlite"),
        None => {
            let path = data_dir()?.join(format!("{name}.db"));
            (
                format!("sqlite://{}", path.display()),
                path.display().to_string(),
                "sqlite",
            )
        }
    })
}

/// `postgres://user@host:port` of an admin URL (without the database).
pub fn postgres_base(admin: &str) -> &str {
    admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin)
}

pub async fn prepare(args: &Args) -> Result<Dataset> {
    prepare_named(args, &format!("cf_bench_s{}_n{}", args.seed, args.size)).await
}

/// The scheduling dataset: the patients of [`prepare`] (in a database of
/// its own, so bookings never touch the patient-search datasets) plus the
/// demo clinic's schedule from `demo::seed_schedule` (appointment types,
/// templates, exceptions and the booked appointments of its plan) around
/// the day it was built. The demo clinic is 12 practitioners, not the
/// issue's 200 providers and 500,000 appointments.
pub async fn prepare_schedule(args: &Args) -> Result<Dataset> {
    let name = format!("cf_bench_sched_s{}_n{}", args.seed, args.size);
    let data = prepare_named(args, &name).await?;
    let db = Db::connect(&data.url).await?;
    let (_, appointments) = db
        .appointments(
            &data.org_id,
            &AppointmentQuery::default(),
            Page {
                offset: 0,
                count: 0,
            },
        )
        .await?;
    if appointments == 0 {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "seeding the demo schedule [{bar:40}] {pos}/{len} appointments ({eta} left)",
            )?
            .progress_chars("=> "),
        );
        demo::seed_schedule(
            &db,
            &data.org_id,
            args.seed,
            Timestamp::now(),
            |n, total| {
                bar.set_length(total);
                bar.set_position(n);
            },
        )
        .await?;
        bar.finish();
    }
    db.close().await;
    Ok(data)
}

async fn prepare_named(args: &Args, name: &str) -> Result<Dataset> {
    let (url, display, backend) = database_for(args.database.as_deref(), name).await?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    // A dataset cached by an older build is re-keyed for this one's rules.
    db.rebuild_stale_keys(|_, _| {}).await?;
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
    if have > args.size {
        bail!(
            "{display} holds {have} patients, more than --size {}; pass another --database",
            args.size
        );
    }
    if have < args.size {
        let bar = ProgressBar::new(args.size).with_style(
            ProgressStyle::with_template(
                "generating dataset [{bar:40}] {pos}/{len} patients ({per_sec}, {eta} left)",
            )?
            .progress_chars("=> "),
        );
        bar.set_position(have);
        let generator = PatientGenerator::new(args.seed);
        let mut next = have;
        while next < args.size {
            let end = (next + PER_TRANSACTION).min(args.size);
            let mut tx = db.begin(&org_id).await?;
            while next < end {
                let until = (next + BATCH).min(end);
                let rows: Vec<(String, Patient)> =
                    generator.iter(next..until).map(|p| (new_id(), p)).collect();
                tx.create_patients(rows, "bench").await?;
                next = until;
                bar.set_position(next);
            }
            tx.commit().await?;
        }
        db.refresh_statistics::<Patient>().await?;
        bar.finish();
    }
    db.close().await;
    Ok(Dataset {
        url,
        display,
        backend,
        org_id,
    })
}
