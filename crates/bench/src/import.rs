//! The `import` scenario: a real `carefront import patients FILE` process
//! loads a generated CSV file into a fresh database, then runs again on the
//! same file (which must create nothing: every row is unchanged).

use crate::Args;
use crate::dataset::{data_dir, postgres_base};
use crate::server::carefront_binary;
use anyhow::{Context, Result, bail};
use carefront_domain::patient::{Patient, PhoneKind};
use carefront_store::Db;
use carefront_synth::PatientGenerator;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One row in this many is broken on purpose (an impossible date of
/// birth), so the rejected-rows path is part of what is measured.
pub const BROKEN_EVERY: u64 = 1_000;

/// The CSV header, in the documented column names.
const HEADER: [&str; 22] = [
    "source_system",
    "source_id",
    "given",
    "middle",
    "family",
    "suffix",
    "preferred_name",
    "birth_date",
    "sex",
    "phone_mobile",
    "phone_home",
    "sms_consent",
    "email",
    "line1",
    "line2",
    "city",
    "state",
    "postal_code",
    "language",
    "interpreter_needed",
    "preferred_contact",
    "alerts",
];

fn phone_text(p: &Patient, kind: PhoneKind, style: u64) -> String {
    let Some(ph) = p.phones.iter().find(|ph| ph.kind == kind) else {
        return String::new();
    };
    let n = ph.number.strip_prefix("+1").unwrap_or(&ph.number);
    if n.len() != 10 {
        return ph.number.clone();
    }
    match style % 3 {
        0 => format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..]),
        1 => format!("{}-{}-{}", &n[..3], &n[3..6], &n[6..]),
        _ => ph.number.clone(),
    }
}

/// Row `i` of the generated file: patient `i` of the seed's stream, as a
/// legacy system would export it (dates of birth and phones in mixed
/// formats).
fn row(i: u64, p: &Patient, seed: u64) -> Vec<String> {
    let dob = p.birth_date;
    let birth = if i % BROKEN_EVERY == BROKEN_EVERY - 1 {
        format!("02/30/{}", dob.year())
    } else if i.is_multiple_of(2) {
        dob.to_string()
    } else {
        format!("{:02}/{:02}/{}", dob.month(), dob.day(), dob.year())
    };
    let a = p.home_address();
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    vec![
        format!("urn:carefront:bench:seed-{seed}"),
        format!("P{i:08}"),
        p.given.clone(),
        text(p.middle.as_ref()),
        p.family.clone(),
        text(p.suffix.as_ref()),
        text(p.preferred_name.as_ref()),
        birth,
        p.sex.code().to_string(),
        phone_text(p, PhoneKind::Mobile, i),
        phone_text(p, PhoneKind::Home, i),
        if p.phones.iter().any(|ph| ph.sms_consent) {
            "yes"
        } else {
            "no"
        }
        .into(),
        text(p.email.as_ref()),
        a.map(|a| a.line1.clone()).unwrap_or_default(),
        a.and_then(|a| a.line2.clone()).unwrap_or_default(),
        a.map(|a| a.city.clone()).unwrap_or_default(),
        a.map(|a| a.state.clone()).unwrap_or_default(),
        a.map(|a| a.postal_code.clone()).unwrap_or_default(),
        text(p.language.as_ref()),
        if p.interpreter_needed { "yes" } else { "no" }.into(),
        p.preferred_contact
            .map(|m| m.code().to_string())
            .unwrap_or_default(),
        p.alerts.join(";"),
    ]
}

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// The generated CSV file of `size` rows for `seed`, written once under
/// `target/bench-data` and reused.
pub fn csv_file(seed: u64, size: u64) -> Result<PathBuf> {
    let path = data_dir()?.join(format!("import_s{seed}_n{size}.csv"));
    if path.exists() {
        return Ok(path);
    }
    let partial = path.with_extension("csv.partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    writeln!(out, "{}", HEADER.join(","))?;
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("writing CSV [{bar:40}] {pos}/{len} rows ({per_sec})")?
            .progress_chars("=> "),
    );
    let generator = PatientGenerator::new(seed);
    let mut line = String::new();
    for i in 0..size {
        let p = generator.patient(i);
        line.clear();
        for (k, v) in row(i, &p, seed).iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            csv_field(&mut line, v);
        }
        writeln!(out, "{line}")?;
        if i % 10_000 == 0 {
            bar.set_position(i);
        }
    }
    out.flush()?;
    drop(out);
    bar.finish_and_clear();
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// A fresh, empty database for the import: a new SQLite file, or a
/// recreated PostgreSQL database on the server of the admin URL.
async fn fresh_database(database: Option<&str>) -> Result<(String, String)> {
    match database {
        Some(admin) if admin.starts_with("postgres") => {
            let name = "cf_bench_import";
            let admin_db = Db::connect(admin)
                .await
                .context("cannot reach PostgreSQL")?;
            admin_db
                .execute_unchecked(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin_db.create_database_if_missing(name).await?;
            admin_db.close().await;
            Ok((
                format!("{}/{name}", postgres_base(admin)),
                format!("PostgreSQL database {name}"),
            ))
        }
        _ => {
            let path = data_dir()?.join("import_run.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            Ok((
                format!("sqlite://{}", path.display()),
                path.display().to_string(),
            ))
        }
    }
}

/// One run of the importer.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub elapsed: Duration,
    pub peak_rss: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

impl Run {
    pub fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.rejected
    }

    pub fn rows_per_s(&self) -> f64 {
        self.rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Clone)]
pub struct Figures {
    pub file: PathBuf,
    pub file_bytes: u64,
    pub database: String,
    pub first: Run,
    pub again: Run,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn carefront(args: &[&str], url: &str) -> Result<String> {
    let out = Command::new(carefront_binary()?)
        .args(args)
        .env("CAREFRONT_DATABASE_URL", url)
        .env("CAREFRONT_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!(
            "carefront {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `carefront import patients FILE`, sampling its peak RSS until it exits.
fn import(file: &Path, url: &str) -> Result<Run> {
    let started = Instant::now();
    let mut child = Command::new(carefront_binary()?)
        .args(["import", "patients"])
        .arg(file)
        .env("CAREFRONT_DATABASE_URL", url)
        .env("CAREFRONT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start carefront import")?;
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("no stdout")?, &mut stdout)?;
    if !status.success() {
        bail!("carefront import failed ({status}): {stdout}");
    }
    // "Imported N rows from F in S s (R rows/s): C created, U updated, K unchanged, J rejected."
    let count = |word: &str| -> u64 {
        stdout
            .split([',', ':', '.'])
            .find_map(|part| {
                part.trim()
                    .strip_suffix(word)
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    Ok(Run {
        elapsed,
        peak_rss: peak * 1024,
        created: count("created"),
        updated: count("updated"),
        unchanged: count("unchanged"),
        rejected: count("rejected"),
    })
}

pub async fn run(args: &Args) -> Result<Figures> {
    let file = csv_file(args.seed, args.size)?;
    let file_bytes = std::fs::metadata(&file)?.len();
    let (url, database) = fresh_database(args.database.as_deref()).await?;
    carefront(&["org", "create", "--name", "Bench Import Clinic"], &url)?;
    eprintln!("importing {} rows into {database}", args.size);
    let first = import(&file, &url)?;
    eprintln!("importing the same file again");
    let again = import(&file, &url)?;
    if again.created != 0 {
        bail!("the second import created {} patients", again.created);
    }
    Ok(Figures {
        file,
        file_bytes,
        database,
        first,
        again,
    })
}
