//! `cargo run --release -p carefront-bench -- SCENARIO [--size N] [--database URL] [--seed S]`
//!
//! Generates a deterministic dataset of the given size (cached between runs),
//! starts a real `carefront serve` process on it for the scenarios that are
//! requests, runs the scenario, and prints a table followed by one JSON line
//! with the figures.

mod board;
mod dataset;
mod import;
mod load;
mod server;

use anyhow::{Context, Result, bail};
use carefront_domain::matching::Thresholds;
use carefront_synth::duplicates::{Quality, evaluate};
use clap::Parser;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(name = "carefront-bench", about = "Carefront benchmark harness")]
pub struct Args {
    /// Scenario to run, or `all`.
    scenario: String,
    /// Dataset size (patients; rows for `import`).
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
    /// How long each request scenario drives load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Every scenario, in the order `all` runs them.
const SCENARIOS: [&str; 8] = [
    "patient-search",
    "duplicate-check",
    "import",
    "match-quality",
    "slot-search",
    "book-race",
    "board-render",
    "board-fanout",
];

/// The seed the matcher's weights and thresholds were fitted on; quality is
/// reported on another.
const TUNING_SEED: u64 = 1;
const HELD_OUT_SEED: u64 = 20_261_101;
/// Base patients of the match-quality set (its cost grows faster than linearly).
const MATCH_QUALITY_MAX: u64 = 100_000;

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

enum Outcome {
    Load {
        figures: load::Figures,
        server_rss: u64,
        /// How the requests were made when not over HTTP as documented,
        /// or what the dataset was when not the scenario's own.
        note: Option<String>,
        clients: usize,
        /// `book-race`'s counts and checks.
        booking: Option<Box<load::Booking>>,
        /// `board-fanout`'s counts.
        fanout: Option<Box<board::Fanout>>,
    },
    Import(import::Figures),
    Quality {
        seed: u64,
        base: u64,
        quality: Box<Quality>,
        elapsed: Duration,
    },
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
    let needs_dataset = chosen
        .iter()
        .any(|s| matches!(*s, "patient-search" | "duplicate-check"));
    let data = if needs_dataset {
        Some(dataset::prepare(&args).await?)
    } else {
        None
    };
    let schedule = if chosen
        .iter()
        .any(|s| matches!(*s, "slot-search" | "book-race"))
    {
        Some(dataset::prepare_schedule(&args).await?)
    } else {
        None
    };
    let board = if chosen
        .iter()
        .any(|s| matches!(*s, "board-render" | "board-fanout"))
    {
        Some(dataset::prepare_board(&args).await?)
    } else {
        None
    };
    let mut results: Vec<(&str, Outcome)> = Vec::new();
    for scenario in chosen {
        let outcome = match scenario {
            "patient-search" => {
                let data = data.as_ref().expect("prepared above");
                let server = server::Server::start(&data.url).await?;
                let figures = load::patient_search(&server, data, &args).await;
                let server_rss = server.stop().await?;
                Outcome::Load {
                    figures: figures?,
                    server_rss,
                    note: None,
                    clients: args.clients,
                    booking: None,
                    fanout: None,
                }
            }
            "slot-search" => slot_search(schedule.as_ref().expect("prepared above"), &args).await?,
            "book-race" => book_race(schedule.as_ref().expect("prepared above"), &args).await?,
            "board-render" => board_render(board.as_ref().expect("prepared above"), &args).await?,
            "board-fanout" => board_fanout(board.as_ref().expect("prepared above"), &args).await?,
            "duplicate-check" => {
                duplicate_check(data.as_ref().expect("prepared above"), &args).await?
            }
            "import" => Outcome::Import(import::run(&args).await?),
            "match-quality" => {
                let seed = if args.seed == TUNING_SEED {
                    HELD_OUT_SEED
                } else {
                    args.seed
                };
                let base = args.size.clamp(1, MATCH_QUALITY_MAX);
                let started = Instant::now();
                let quality = evaluate(seed, base as usize, Thresholds::DEFAULT);
                Outcome::Quality {
                    seed,
                    base,
                    quality: Box::new(quality),
                    elapsed: started.elapsed(),
                }
            }
            _ => unreachable!("scenarios are checked above"),
        };
        results.push((scenario, outcome));
    }
    print_table(
        &args,
        data.as_ref(),
        schedule.as_ref(),
        board.as_ref(),
        &results,
    );
    let backend = match &args.database {
        Some(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    };
    let json: Vec<Value> = results
        .iter()
        .map(|(name, outcome)| {
            let mut v = json!({
                "scenario": name,
                "backend": backend,
                "size": args.size,
                "seed": args.seed,
            });
            let fields = outcome_json(&args, outcome);
            if let (Some(v), Value::Object(fields)) = (v.as_object_mut(), fields) {
                v.extend(fields);
            }
            v
        })
        .collect();
    println!("{}", json!({ "carefront_bench": json }));
    Ok(())
}

/// `POST /fhir/R4/Patient/$match` when the server has it; otherwise the
/// same duplicate check measured in process through the store, labelled so.
async fn duplicate_check(data: &dataset::Dataset, args: &Args) -> Result<Outcome> {
    let (token_name, token) = create_token(data)?;
    let server = server::Server::start(&data.url).await?;
    let over_http = load::duplicate_check(&server, data, args, &token).await;
    let server_rss = server.stop().await?;
    revoke_token(data, &token_name)?;
    match over_http {
        Ok(figures) => Ok(Outcome::Load {
            figures,
            server_rss,
            note: None,
            clients: args.clients,
            booking: None,
            fanout: None,
        }),
        Err(e) => {
            eprintln!(
                "duplicate-check: POST /fhir/R4/Patient/$match is not usable ({e:#}); \
                 measuring the same check in process instead"
            );
            let figures = load::duplicate_check_in_process(data, args).await?;
            Ok(Outcome::Load {
                figures,
                server_rss: 0,
                note: Some(
                    "in process (Db::match_candidates), not over HTTP: the server has no \
                     $match endpoint yet"
                        .into(),
                ),
                clients: args.clients,
                booking: None,
                fanout: None,
            })
        }
    }
}

/// `GET /fhir/R4/Appointment/$find` with a front-desk token.
async fn slot_search(schedule: &dataset::Schedule, args: &Args) -> Result<Outcome> {
    let data = &schedule.data;
    let (token_name, token) = create_token(data)?;
    let server = server::Server::start(&data.url).await?;
    let figures = load::slot_search(&server, data, args, &token).await;
    let server_rss = server.stop().await?;
    revoke_token(data, &token_name)?;
    Ok(Outcome::Load {
        figures: figures?,
        server_rss,
        note: Some(format!("dataset: {}", schedule.description)),
        clients: args.clients,
        booking: None,
        fanout: None,
    })
}

/// `POST /fhir/R4/Appointment` by many clients for the same slots, then
/// the store's checks.
async fn book_race(schedule: &dataset::Schedule, args: &Args) -> Result<Outcome> {
    let data = &schedule.data;
    let (token_name, token) = create_token(data)?;
    let server = server::Server::start(&data.url).await?;
    let raced = load::book_race(&server, data, args, &token).await;
    let server_rss = server.stop().await?;
    revoke_token(data, &token_name)?;
    let (figures, mut booking) = raced?;
    load::check_race(data, &mut booking).await?;
    Ok(Outcome::Load {
        figures,
        server_rss,
        note: Some(format!("dataset: {}", schedule.description)),
        clients: load::RACE_CLIENTS,
        booking: Some(Box::new(booking)),
        fanout: None,
    })
}

/// `GET /today` of the board's location and day (300 visits).
async fn board_render(board: &dataset::Board, args: &Args) -> Result<Outcome> {
    let server = server::Server::start(&board.data.url).await?;
    let figures = board::render(&server, board, args).await;
    let server_rss = server.stop().await?;
    Ok(Outcome::Load {
        figures: figures?,
        server_rss,
        note: Some(format!(
            "measured by the harness over a local connection (the server's time plus \
             HTTP); dataset: {}",
            board.description
        )),
        clients: args.clients,
        booking: None,
        fanout: None,
    })
}

/// Servers `board-fanout` spreads its boards over: two on PostgreSQL, as
/// the issue asks, so changes cross from one server to the other through
/// the database; one on SQLite, a single-server deployment.
fn fanout_servers(board: &dataset::Board) -> usize {
    if board.data.backend == "postgres" {
        2
    } else {
        1
    }
}

/// A status change carried to [`board::BOARDS`] open boards.
async fn board_fanout(board: &dataset::Board, args: &Args) -> Result<Outcome> {
    let servers = server::Server::start_several(&board.data.url, fanout_servers(board)).await?;
    let measured = board::fanout(&servers, board, args).await;
    let mut server_rss = Vec::with_capacity(servers.len());
    for s in servers {
        server_rss.push(s.stop().await?);
    }
    let (figures, mut fanout) = measured?;
    let note = match server_rss.len() {
        1 => "one server".to_string(),
        n => format!(
            "{n} servers on one database, boards split between them, changes made on server 1"
        ),
    };
    let peak = server_rss.iter().copied().max().unwrap_or(0);
    fanout.server_rss = server_rss;
    Ok(Outcome::Load {
        figures,
        server_rss: peak,
        note: Some(format!(
            "{note}; a delivery is the time from sending the step (POST \
             /today/visits/{{id}}/step) until a board's long poll (GET /today/events) returned it, \
             measured by the harness; dataset: {}",
            board.description
        )),
        clients: board::BOARDS,
        booking: None,
        fanout: Some(Box::new(fanout)),
    })
}

/// A front-desk API token for the dataset's server: (name, token).
fn create_token(data: &dataset::Dataset) -> Result<(String, String)> {
    let token_name = format!("bench-{}", std::process::id());
    let created = std::process::Command::new(server::carefront_binary()?)
        .args([
            "token",
            "create",
            "--name",
            &token_name,
            "--role",
            "front_desk",
        ])
        .env("CAREFRONT_DATABASE_URL", &data.url)
        .env("CAREFRONT_LOG", "warn")
        .output()?;
    if !created.status.success() {
        bail!(
            "cannot create an API token: {}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&created.stdout);
    let token = stdout
        .lines()
        .last()
        .context("no token printed")?
        .trim()
        .to_string();
    Ok((token_name, token))
}

fn revoke_token(data: &dataset::Dataset, token_name: &str) -> Result<()> {
    let _ = std::process::Command::new(server::carefront_binary()?)
        .args(["token", "revoke", token_name])
        .env("CAREFRONT_DATABASE_URL", &data.url)
        .env("CAREFRONT_LOG", "warn")
        .output();
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `book-race`'s other answers by status, as ` (HTTP 422 x2, no answer x1)`;
/// empty when there are none.
fn other_statuses(other: &std::collections::BTreeMap<u16, u64>) -> String {
    if other.is_empty() {
        return String::new();
    }
    let each: Vec<String> = other
        .iter()
        .map(|(&status, n)| match status {
            0 => format!("no answer x{n}"),
            status => format!("HTTP {status} x{n}"),
        })
        .collect();
    format!(" ({})", each.join(", "))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn outcome_json(args: &Args, outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Load {
            figures: f,
            server_rss,
            note,
            clients,
            booking,
            fanout,
        } => {
            let by_form: serde_json::Map<String, Value> = f
                .by_label
                .iter()
                .map(|(label, l)| {
                    let mut form = json!({
                        "requests": l.requests,
                        "p50_ms": round(l.percentile_ms(50.0)),
                        "p99_ms": round(l.percentile_ms(99.0)),
                    });
                    if l.checked > 0 {
                        form["found_rate"] = json!(round4(l.found as f64 / l.checked as f64));
                    }
                    (label.to_string(), form)
                })
                .collect();
            let mut v = json!({
                "clients": clients,
                "seconds": args.seconds,
                "requests": f.all.requests,
                "errors": f.all.errors,
                "throughput_per_s": round(f.throughput()),
                "p50_ms": round(f.all.percentile_ms(50.0)),
                "p99_ms": round(f.all.percentile_ms(99.0)),
                "max_ms": round(f.all.percentile_ms(100.0)),
                "server_peak_rss_mib": round(mib(*server_rss)),
                "server_cpu_cores": f.cpu.map(|c| round(c.server_cores)),
                "harness_cpu_cores": f.cpu.map(|c| round(c.harness_cores)),
                "by_form": by_form,
                "via": if note.as_deref().is_some_and(|n| n.starts_with("in process")) {
                    "in-process"
                } else {
                    "http"
                },
            });
            if let Some(note) = note {
                v["note"] = json!(note);
            }
            if let Some(b) = booking {
                v["slots_raced"] = json!(b.slots);
                v["popular_slots"] = json!(b.popular);
                v["popular_booked_200"] = json!(b.popular_booked);
                v["booked_200"] = json!(b.booked);
                v["conflicts_409"] = json!(b.conflicts);
                v["other_answers"] = json!(b.others());
                v["other_statuses"] = json!(b.other);
                v["bookings_per_s"] = json!(round(b.per_second(f.elapsed)));
                v["appointments_stored_before"] = json!(b.stored_before);
                v["appointments_created"] = json!(b.stored_created());
                v["created_equals_booked"] = json!(b.counts_agree());
                v["claim_inconsistencies"] = json!(b.claim_problems.len());
                v["no_double_booking"] = json!(b.claim_problems.is_empty());
            }
            if let Some(b) = fanout {
                v["seconds"] = json!(round(f.elapsed.as_secs_f64()));
                v["boards"] = json!(b.boards);
                v["changes"] = json!(b.changes);
                v["servers"] = json!(b.servers);
                v["missed"] = json!(b.missed);
                v["poll_errors"] = json!(b.poll_errors);
                v["step_p50_ms"] = json!(round(b.steps.percentile_ms(50.0)));
                v["step_p99_ms"] = json!(round(b.steps.percentile_ms(99.0)));
                v["server_peak_rss_mib_each"] = json!(
                    b.server_rss
                        .iter()
                        .map(|r| round(mib(*r)))
                        .collect::<Vec<_>>()
                );
            }
            if f.all.checked > 0 {
                v["found_rate"] = json!(round4(f.all.found as f64 / f.all.checked as f64));
            }
            v
        }
        Outcome::Import(i) => json!({
            "rows": i.first.rows(),
            "file_mib": round(mib(i.file_bytes)),
            "seconds": round(i.first.elapsed.as_secs_f64()),
            "throughput_per_s": round(i.first.rows_per_s()),
            "importer_peak_rss_mib": round(mib(i.first.peak_rss)),
            "created": i.first.created,
            "rejected": i.first.rejected,
            "rerun_seconds": round(i.again.elapsed.as_secs_f64()),
            "rerun_throughput_per_s": round(i.again.rows_per_s()),
            "rerun_created": i.again.created,
            "rerun_updated": i.again.updated,
            "rerun_unchanged": i.again.unchanged,
            "rerun_peak_rss_mib": round(mib(i.again.peak_rss)),
        }),
        Outcome::Quality {
            seed,
            base,
            quality: q,
            elapsed,
        } => json!({
            "evaluation_seed": seed,
            "tuning_seed": TUNING_SEED,
            "base_patients": base,
            "records": q.records,
            "true_pairs": q.true_pairs,
            "pairs_compared": q.pairs_compared,
            "precision": round4(q.precision),
            "recall": round4(q.recall),
            "f1": round4(q.f1),
            "certain_false": q.certain_false,
            "seconds": round(elapsed.as_secs_f64()),
            "goal_met": q.recall >= 0.95 && q.precision >= 0.98,
        }),
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn print_table(
    args: &Args,
    data: Option<&dataset::Dataset>,
    schedule: Option<&dataset::Schedule>,
    board: Option<&dataset::Board>,
    results: &[(&str, Outcome)],
) {
    println!();
    if let Some(data) = data {
        println!(
            "dataset: {} patients, seed {}, {} ({}); {} clients, {} s per request scenario",
            args.size, args.seed, data.backend, data.display, args.clients, args.seconds
        );
    }
    if let Some(schedule) = schedule {
        let data = &schedule.data;
        println!(
            "scheduling dataset: {} patients + {}, seed {}, {} ({}); {} clients \
             ({} for book-race), {} s per request scenario",
            args.size,
            schedule.description,
            args.seed,
            data.backend,
            data.display,
            args.clients,
            load::RACE_CLIENTS,
            args.seconds
        );
    }
    if let Some(board) = board {
        let data = &board.data;
        println!(
            "board dataset: {} patients + {}, seed {}, {} ({}); {} clients for board-render, \
             {} boards and {} changes for board-fanout",
            args.size,
            board.description,
            args.seed,
            data.backend,
            data.display,
            args.clients,
            board::BOARDS,
            board::CHANGES
        );
    }
    let loads: Vec<_> = results
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Load {
                figures,
                server_rss,
                note,
                booking,
                fanout,
                ..
            } => Some((name, figures, server_rss, note, booking, fanout)),
            _ => None,
        })
        .collect();
    if !loads.is_empty() {
        println!(
            "{:<22} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>10}",
            "scenario / query form",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "RSS MiB"
        );
        for (name, f, rss, note, booking, fanout) in &loads {
            println!(
                "{:<22} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
                name,
                f.all.requests,
                f.all.errors,
                f.throughput(),
                f.all.percentile_ms(50.0),
                f.all.percentile_ms(99.0),
                f.all.percentile_ms(100.0),
                mib(**rss)
            );
            if f.by_label.len() > 1 {
                for (label, l) in &f.by_label {
                    let found = if l.checked > 0 {
                        format!(
                            "  sought patient shown {:.1}%",
                            100.0 * l.found as f64 / l.checked as f64
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "  {:<20} {:>9} {:>7} {:>10} {:>9.2} {:>9.2} {:>9.2}{found}",
                        label,
                        l.requests,
                        l.errors,
                        "",
                        l.percentile_ms(50.0),
                        l.percentile_ms(99.0),
                        l.percentile_ms(100.0),
                    );
                }
            }
            if f.all.checked > 0 {
                println!(
                    "  sought record among the answers: {} of {} ({:.1}%)",
                    f.all.found,
                    f.all.checked,
                    100.0 * f.all.found as f64 / f.all.checked as f64
                );
            }
            if let Some(c) = f.cpu {
                println!(
                    "  CPU meanwhile: server {:.2} cores, harness {:.2} cores, of {} on this machine",
                    c.server_cores,
                    c.harness_cores,
                    std::thread::available_parallelism().map_or(0, usize::from)
                );
            }
            if let Some(b) = booking {
                println!(
                    "  {} slots raced: {} booked (200), {} conflicts (409), {} other{}; \
                     {:.1} successful bookings/s",
                    b.slots,
                    b.booked,
                    b.conflicts,
                    b.others(),
                    other_statuses(&b.other),
                    b.per_second(f.elapsed)
                );
                println!(
                    "  popular slots: {} tried by every client, {} won (more than one \
                     each only where the provider allows overbooking)",
                    b.popular, b.popular_booked
                );
                println!(
                    "  check: appointments created {} = 200 answers {}: {}",
                    b.stored_created(),
                    b.booked,
                    if b.counts_agree() { "yes" } else { "NO" }
                );
                println!(
                    "  check: Db::check_claims empty (no double booking): {}",
                    if b.claim_problems.is_empty() {
                        "yes".to_string()
                    } else {
                        format!(
                            "NO, {} problems: {:?}",
                            b.claim_problems.len(),
                            b.claim_problems
                        )
                    }
                );
            }
            if let Some(b) = fanout {
                println!(
                    "  {} boards x {} changes on {} server(s): {} deliveries missed (not shown \
                     within {} s), {} failed long polls; the steps took p50 {:.2} ms, p99 {:.2} ms",
                    b.boards,
                    b.changes,
                    b.servers,
                    b.missed,
                    board::MISSED_AFTER.as_secs(),
                    b.poll_errors,
                    b.steps.percentile_ms(50.0),
                    b.steps.percentile_ms(99.0)
                );
                if b.server_rss.len() > 1 {
                    let each: Vec<String> = b
                        .server_rss
                        .iter()
                        .map(|r| format!("{:.1}", mib(*r)))
                        .collect();
                    println!("  peak RSS per server (MiB): {}", each.join(", "));
                }
            }
            if let Some(note) = note {
                println!("  note: {note}");
            }
        }
    }
    for (_, o) in results {
        match o {
            Outcome::Import(i) => {
                println!(
                    "import: {} CSV rows ({:.1} MiB, {}) into {}",
                    i.first.rows(),
                    mib(i.file_bytes),
                    i.file.display(),
                    i.database
                );
                for (what, r) in [("first run", &i.first), ("same file again", &i.again)] {
                    println!(
                        "  {:<16} {:>8.1} s {:>10.0} rows/s  importer peak RSS {:>7.1} MiB  \
                         created {} updated {} unchanged {} rejected {}",
                        what,
                        r.elapsed.as_secs_f64(),
                        r.rows_per_s(),
                        mib(r.peak_rss),
                        r.created,
                        r.updated,
                        r.unchanged,
                        r.rejected
                    );
                }
            }
            Outcome::Quality {
                seed,
                base,
                quality: q,
                elapsed,
            } => {
                println!(
                    "match-quality: seed {seed} (weights tuned on seed {TUNING_SEED}), {base} base patients, \
                     {} records, {} true pairs, {} pairs compared ({:.1} s)",
                    q.records,
                    q.true_pairs,
                    q.pairs_compared,
                    elapsed.as_secs_f64()
                );
                println!(
                    "  precision {:.4}  recall {:.4}  F1 {:.4}  (goal: recall >= 0.95 with precision >= 0.98: {})",
                    q.precision,
                    q.recall,
                    q.f1,
                    if q.recall >= 0.95 && q.precision >= 0.98 {
                        "met"
                    } else {
                        "NOT met"
                    }
                );
            }
            Outcome::Load { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::other_statuses;
    use std::collections::BTreeMap;

    #[test]
    fn other_answers_are_named_by_status() {
        assert_eq!(other_statuses(&BTreeMap::new()), "");
        let other = BTreeMap::from([(422, 2), (0, 1)]);
        assert_eq!(other_statuses(&other), " (no answer x1, HTTP 422 x2)");
    }
}
