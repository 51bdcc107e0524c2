// Temporary timing probe (to be deleted).
use carefront_store::{Db, new_id};
use carefront_synth::PatientGenerator;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if std::env::var("CPU").is_ok() {
        cpu_parts();
        return;
    }
    let path = std::env::temp_dir().join(format!("bulk_probe_{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    if let Ok(c) = std::env::var("CACHE") {
        db.execute_unchecked(&format!("PRAGMA cache_size = {c}"))
            .await
            .unwrap();
    }
    let org = new_id();
    let g = PatientGenerator::new(1);
    let (rounds, per, commit_every) =
        (env("ROUNDS", 4), env("PER", 10_000), env("COMMIT_EVERY", 1));
    let started = Instant::now();
    let mut tx = db.begin(&org).await.unwrap();
    for round in 0..rounds {
        let t = Instant::now();
        let rows: Vec<_> = g
            .iter(round * per..(round + 1) * per)
            .map(|p| (new_id(), p))
            .collect();
        tx.create_patients(rows, "probe").await.unwrap();
        let w = t.elapsed();
        let mut c = std::time::Duration::ZERO;
        if (round + 1) % commit_every == 0 || round + 1 == rounds {
            let tc = Instant::now();
            tx.commit().await.unwrap();
            c = tc.elapsed();
            tx = db.begin(&org).await.unwrap();
        }
        println!(
            "round {round}: write {w:?}, commit {c:?}, total {:?}",
            started.elapsed()
        );
    }
    tx.commit().await.unwrap();
    let _ = std::fs::remove_file(&path);
}

#[allow(dead_code)]
pub fn cpu_parts() {
    use carefront_store::Record;
    let g = PatientGenerator::new(1);
    let rows: Vec<_> = g.iter(0..50_000).collect();
    let t = Instant::now();
    let n: usize = rows.iter().map(|p| p.search_keys().len()).sum();
    println!("search_keys: {:?} for 50k ({n} keys)", t.elapsed());
    let t = Instant::now();
    let n: usize = rows
        .iter()
        .map(|p| serde_json::to_string(p).unwrap().len())
        .sum();
    println!("json: {:?} for 50k ({n} bytes)", t.elapsed());
    let t = Instant::now();
    let n: usize = rows.iter().map(|p| p.values().len()).sum();
    println!("values: {:?} for 50k ({n})", t.elapsed());
}
