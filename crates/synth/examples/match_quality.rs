//! Measures the patient matcher on a labelled synthetic set: precision,
//! recall, F1 and comparisons per second.
//!
//! ```text
//! cargo run --release -p carefront-synth --example match_quality [-- SEED N] [--table-weights]
//! cargo run --release -p carefront-synth --example match_quality -- --estimate [SEED N PAIRS]
//! cargo run --release -p carefront-synth --example match_quality -- --sweep [SEED N]
//! ```
//!
//! Defaults: seed 20261101 (held out: the weights were fitted on seed 1) and
//! 5,000 base patients. `--estimate` prints the observed m / u / u_relative
//! of every outcome (how the weights were obtained, on seed 1 by default);
//! `--sweep` prints precision and recall for a range of lower thresholds.
//! Names are weighed by their frequency in the set, as
//! `Db::match_candidates` weighs them by their frequency among the
//! organization's patients; `--table-weights` measures without (the
//! table's average weights, as before value-specific weights).

use carefront_domain::matching::{
    OUTCOMES, PreparedRecord, Thresholds, compare_prepared, compare_with,
};
use carefront_synth::duplicates::{
    EvaluationSet, candidate_pairs, estimate_outcomes, evaluate_prepared, evaluation_set,
};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let table_weights = args.iter().any(|a| a == "--table-weights");
    match mode {
        "--estimate" => estimate(
            numbers.first().copied().unwrap_or(1),
            numbers.get(1).copied().unwrap_or(20_000) as usize,
            numbers.get(2).copied().unwrap_or(20_000_000),
        ),
        "--sweep" => sweep(
            numbers.first().copied().unwrap_or(1),
            numbers.get(1).copied().unwrap_or(5_000) as usize,
            table_weights,
        ),
        _ => quality(
            numbers.first().copied().unwrap_or(20_261_101),
            numbers.get(1).copied().unwrap_or(5_000) as usize,
            table_weights,
        ),
    }
}

/// The set's records prepared for matching: with the set's name counts,
/// or with the table's weights only.
fn prepare(set: &EvaluationSet, table_weights: bool) -> Vec<PreparedRecord> {
    if table_weights {
        set.match_records()
            .iter()
            .map(PreparedRecord::new)
            .collect()
    } else {
        set.prepared()
    }
}

fn quality(seed: u64, n: usize, table_weights: bool) {
    let started = Instant::now();
    let set = evaluation_set(seed, n);
    let generated = started.elapsed();
    let thresholds = Thresholds::DEFAULT;
    let started = Instant::now();
    let prepared = prepare(&set, table_weights);
    let q = evaluate_prepared(&set, &prepared, &thresholds);
    let evaluated = started.elapsed();
    println!(
        "seed {seed}, {n} base patients, {} records, {} true pairs (generated in {:.2?}, \
         evaluated in {:.2?})",
        q.records, q.true_pairs, generated, evaluated
    );
    println!(
        "name weights: {}",
        if table_weights {
            "the table's (--table-weights)"
        } else {
            "value-specific, from the set's name counts"
        }
    );
    println!(
        "thresholds: lower {} upper {}",
        thresholds.lower, thresholds.upper
    );
    println!(
        "blocking: {} pairs compared, {} of {} true pairs share a key ({:.4})",
        q.pairs_compared,
        q.true_pairs_blocked,
        q.true_pairs,
        q.true_pairs_blocked as f64 / q.true_pairs as f64
    );
    println!(
        "TP {} FP {} FN {}  precision {:.4}  recall {:.4}  F1 {:.4}",
        q.true_positives, q.false_positives, q.false_negatives, q.precision, q.recall, q.f1
    );
    println!(
        "graded certain: {} of {} true pairs, {} pairs of different people (highest of those: {:.1})",
        q.certain_true, q.true_pairs, q.certain_false, q.highest_false
    );
    println!("recall by corruption (base–duplicate pairs):");
    for (c, (found, total)) in &q.by_corruption {
        println!(
            "  {:<20} {found:>5} / {total:<5} {:.3}",
            format!("{c:?}"),
            *found as f64 / *total as f64
        );
    }
    println!("relatives (against their base patient): pairs, shown, certain");
    for (r, (total, shown, certain)) in &q.by_relation {
        println!(
            "  {:<20} {total:>5} {shown:>5} {certain:>5}",
            format!("{r:?}")
        );
    }
    if std::env::var_os("SHOW_ERRORS").is_some() {
        show(&set, &prepared, "missed", &q.missed);
        show(&set, &prepared, "false matches", &q.false_matches);
    }
    throughput(&set);
}

fn show(
    set: &EvaluationSet,
    prepared: &[PreparedRecord],
    title: &str,
    pairs: &[(usize, usize, f64)],
) {
    println!("{title}:");
    for &(i, j, total) in pairs {
        let a = &set.records[i];
        let b = &set.records[j];
        let s = compare_with(&prepared[i], &prepared[j], &Thresholds::DEFAULT);
        println!("  {total:.1} {:?} / {:?}", a.origin, b.origin);
        for r in [a, b] {
            let p = &r.patient;
            println!(
                "     {} | {:?} | {} | {} | {:?} | {:?} | {:?} | {:?}",
                p.given,
                p.middle,
                p.family,
                p.birth_date,
                p.sex,
                p.phones
                    .iter()
                    .map(|p| p.number.as_str())
                    .collect::<Vec<_>>(),
                p.email,
                p.home_address()
                    .map(|a| format!("{} {}", a.line1, a.postal_code)),
            );
        }
        let fields: Vec<String> = s
            .fields
            .iter()
            .map(|f| format!("{:?}={:.1}", f.outcome, f.weight))
            .collect();
        println!(
            "     {} adj {:.1}",
            fields.join(" "),
            s.relatives_adjustment
        );
    }
}

fn throughput(set: &EvaluationSet) {
    let records = set.match_records();
    let started = Instant::now();
    let counts = set.name_counts();
    let counting = started.elapsed();
    let started = Instant::now();
    let prepared: Vec<PreparedRecord> = records
        .iter()
        .map(|r| {
            let mut p = PreparedRecord::new(r);
            p.set_name_counts(&counts);
            p
        })
        .collect();
    let prepare = started.elapsed();
    let pairs = candidate_pairs(&prepared);
    let mut comparisons = 0u64;
    let mut checksum = 0.0;
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < 2.0 {
        for &(i, j) in &pairs {
            checksum += compare_prepared(&prepared[i], &prepared[j]).total;
        }
        comparisons += pairs.len() as u64;
    }
    let rate = comparisons as f64 / started.elapsed().as_secs_f64();
    println!(
        "speed: {:.0} comparisons/s on blocked pairs (one thread); preparing {} records took {:.2?} \
         (counting their names {:.2?}) ({checksum:.0})",
        rate,
        records.len(),
        prepare,
        counting
    );
    // Random pairs are mostly strangers, which take the longest path
    // through the name comparisons.
    let n = prepared.len();
    let mut comparisons = 0u64;
    let started = Instant::now();
    let mut k = 0usize;
    while started.elapsed().as_secs_f64() < 2.0 {
        for _ in 0..100_000 {
            k = k
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (k >> 33) % n;
            let j = (k >> 13) % n;
            checksum += compare_prepared(&prepared[i], &prepared[j]).total;
        }
        comparisons += 100_000;
    }
    let rate = comparisons as f64 / started.elapsed().as_secs_f64();
    println!("speed: {rate:.0} comparisons/s on random pairs ({checksum:.0})");
}

fn estimate(seed: u64, n: usize, random_pairs: u64) {
    let set = evaluation_set(seed, n);
    println!(
        "seed {seed}, {n} base patients, {} records, {random_pairs} random pairs",
        set.records.len()
    );
    println!(
        "{:<22} {:>9} {:>9} | {:>10} {:>10} | {:>9} {:>9} | {:>7} {:>7}",
        "outcome", "m", "table m", "u", "table u", "u_rel", "table", "w obs", "w table"
    );
    for (e, info) in estimate_outcomes(&set, random_pairs).iter().zip(OUTCOMES) {
        let w_obs = if e.m > 0.0 && e.u > 0.0 {
            format!("{:.1}", (e.m / e.u).log2())
        } else {
            "-".into()
        };
        println!(
            "{:<22} {:>9.5} {:>9.5} | {:>10.7} {:>10.7} | {:>9.5} {:>9.5} | {:>7} {:>7.1}",
            format!("{:?}", e.outcome),
            e.m,
            info.m,
            e.u,
            info.u,
            e.u_relative,
            info.u_relative,
            w_obs,
            (info.m / info.u).log2()
        );
    }
}

fn sweep(seed: u64, n: usize, table_weights: bool) {
    let set = evaluation_set(seed, n);
    let prepared = prepare(&set, table_weights);
    for lower in [9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0] {
        let t = Thresholds {
            lower,
            upper: Thresholds::DEFAULT.upper,
        };
        let q = evaluate_prepared(&set, &prepared, &t);
        println!(
            "lower {lower:>4}: precision {:.4} recall {:.4} F1 {:.4} (FP {}, FN {}; certain false {})",
            q.precision, q.recall, q.f1, q.false_positives, q.false_negatives, q.certain_false
        );
    }
}
