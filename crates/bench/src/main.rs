//! `cargo run --release -p carefront-bench -- SCENARIO [--size N] [--database URL] [--seed S]`
//!
//! Generates a deterministic dataset of the given size (cached between runs),
//! starts a real `carefront serve` process on it, runs the scenario over
//! HTTP, and prints a table followed by one JSON line with the figures.

mod dataset;
mod load;
mod server;

use anyhow::{Result, bail};
use clap::Parser;
use load::Figures;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "carefront-bench", about = "Carefront benchmark harness")]
pub struct Args {
    /// Scenario to run, or `all`.
    scenario: String,
    /// Dataset size (patients).
    #[arg(long, default_value_t = 10_000)]
    size: u64,
    /// sqlite://FILE or a PostgreSQL admin URL (a database per dataset is created there).
    /// Default: a SQLite file under target/bench-data.
    #[arg(long)]
    database: Option<String>,
    /// Seed of the generated dataset.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long each scenario drives load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Every scenario, in the order `all` runs them.
const SCENARIOS: [&str; 1] = ["patient-search"];

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let chosen: Vec<&str> = match args.scenario.as_str() {
        "all" => SCENARIOS.to_vec(),
        s if SCENARIOS.contains(&s) => vec![s],
        s => bail!(
            "unknown scenario '{s}'; choose one of: all, {}",
            SCENARIOS.join(", ")
        ),
    };
    let data = dataset::prepare(&args).await?;
    let mut results = Vec::new();
    for scenario in chosen {
        let server = server::Server::start(&data.url).await?;
        let figures = match scenario {
            "patient-search" => load::patient_search(&server, &data, &args).await?,
            _ => unreachable!("scenarios are checked above"),
        };
        let rss = server.stop().await?;
        results.push((scenario, figures, rss));
    }
    print_table(&args, &data, &results);
    let json: Vec<serde_json::Value> = results
        .iter()
        .map(|(name, f, rss)| {
            serde_json::json!({
                "scenario": name,
                "backend": data.backend,
                "size": args.size,
                "seed": args.seed,
                "clients": args.clients,
                "requests": f.requests,
                "errors": f.errors,
                "throughput_per_s": round(f.throughput()),
                "p50_ms": round(f.percentile_ms(50.0)),
                "p99_ms": round(f.percentile_ms(99.0)),
                "max_ms": round(f.percentile_ms(100.0)),
                "server_peak_rss_mib": round(*rss as f64 / 1_048_576.0),
            })
        })
        .collect();
    println!("{}", serde_json::json!({ "carefront_bench": json }));
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn print_table(args: &Args, data: &dataset::Dataset, results: &[(&str, Figures, u64)]) {
    println!();
    println!(
        "dataset: {} patients, seed {}, {} ({}); {} clients, {} s per scenario",
        args.size,
        args.seed,
        data.backend,
        data.display,
        args.clients,
        Duration::from_secs(args.seconds).as_secs()
    );
    println!(
        "{:<18} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>10}",
        "scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms", "RSS MiB"
    );
    for (name, f, rss) in results {
        println!(
            "{:<18} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
            name,
            f.requests,
            f.errors,
            f.throughput(),
            f.percentile_ms(50.0),
            f.percentile_ms(99.0),
            f.percentile_ms(100.0),
            *rss as f64 / 1_048_576.0
        );
    }
}
