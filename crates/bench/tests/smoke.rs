//! Smoke test of the benchmark harness: each issue scenario runs end to end
//! at a tiny size on SQLite and prints a final JSON line with sane figures.
//! Timings are never asserted, only that the figures are there.
//!
//! The scenarios other than `match-quality` run the `carefront` binary
//! beside the harness's (`target/debug/carefront`). `cargo test --workspace`
//! builds it before any test runs; alone, `cargo test -p carefront-bench`
//! does not, so build it first (`cargo build -p carefront`). The tests
//! cannot build it themselves: cargo holds the build directory's lock
//! while tests run.
//!
//! Each test caches its dataset in a directory of its own under cargo's
//! temporary directory (`CAREFRONT_BENCH_DATA`), so parallel tests and a
//! developer's `target/bench-data` never meet. Runs on SQLite only.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Fails with what to do when the `carefront` binary the harness runs is
/// missing (the harness would otherwise try to build it, under cargo's lock).
fn require_carefront() {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_carefront-bench"));
    let server = harness.with_file_name("carefront");
    assert!(
        server.exists(),
        "{} is missing: run `cargo build -p carefront` first, or `cargo test --workspace`",
        server.display()
    );
}

/// A directory that is removed when the test ends, passed or failed.
struct DataDir(PathBuf);

impl DataDir {
    fn new(scenario: &str) -> DataDir {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bench-smoke-{scenario}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `carefront-bench SCENARIO` with 300 patients (rows), one client and
/// one second of load; returns the scenario's object of the final JSON line.
fn run(scenario: &str) -> Value {
    if scenario != "match-quality" {
        require_carefront();
    }
    let dir = DataDir::new(scenario);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_carefront-bench"))
        .args([
            scenario,
            "--size",
            "300",
            "--seconds",
            "1",
            "--clients",
            "1",
        ])
        .env("CAREFRONT_BENCH_DATA", &dir.0)
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "carefront-bench {scenario} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!(
        "carefront-bench {scenario}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("output");
    let json: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is JSON ({e}): {last}"));
    let results = json["carefront_bench"]
        .as_array()
        .unwrap_or_else(|| panic!("{{\"carefront_bench\": [...]}}: {last}"));
    assert_eq!(results.len(), 1, "one object per scenario: {last}");
    let r = results[0].clone();
    assert_eq!(r["scenario"], scenario, "{r}");
    assert_eq!(r["backend"], "sqlite", "{r}");
    assert_eq!(r["size"], 300, "{r}");
    if scenario != "match-quality" {
        let kept = std::fs::read_dir(&dir.0).unwrap().count();
        assert!(kept > 0, "the data is kept in the directory given");
    }
    r
}

fn number(r: &Value, field: &str) -> f64 {
    r[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number: {r}"))
}

/// Figures of a request scenario: requests answered without errors, over
/// HTTP to a real server, with latencies and the server's memory.
fn assert_load(r: &Value) {
    assert!(number(r, "requests") > 0.0, "{r}");
    assert_eq!(number(r, "errors"), 0.0, "{r}");
    assert!(number(r, "throughput_per_s") > 0.0, "{r}");
    let (p50, p99, max) = (
        number(r, "p50_ms"),
        number(r, "p99_ms"),
        number(r, "max_ms"),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{r}");
    assert!(number(r, "server_peak_rss_mib") > 0.0, "{r}");
    assert_eq!(r["via"], "http", "{r}");
    assert!(
        r["by_form"].as_object().is_some_and(|f| !f.is_empty()),
        "{r}"
    );
}

#[test]
fn patient_search_reports_latency() {
    let r = run("patient-search");
    assert_load(&r);
    assert_eq!(number(&r, "clients"), 1.0, "{r}");
}

#[test]
fn duplicate_check_reports_latency_and_found_rate() {
    let r = run("duplicate-check");
    assert_load(&r);
    let found = number(&r, "found_rate");
    assert!((0.0..=1.0).contains(&found) && found > 0.0, "{r}");
}

#[test]
fn match_quality_reports_precision_and_recall() {
    let r = run("match-quality");
    for field in ["precision", "recall", "f1"] {
        let v = number(&r, field);
        assert!((0.0..=1.0).contains(&v), "{field}: {r}");
    }
    assert!(number(&r, "recall") > 0.0, "{r}");
    assert!(number(&r, "records") > 0.0, "{r}");
    assert!(number(&r, "true_pairs") > 0.0, "{r}");
    assert!(r["goal_met"].is_boolean(), "{r}");
}

#[test]
fn import_creates_once_and_the_rerun_creates_nothing() {
    let r = run("import");
    let created = number(&r, "created");
    assert!(created > 0.0, "{r}");
    assert!(
        created + number(&r, "rejected") <= number(&r, "rows"),
        "{r}"
    );
    assert_eq!(number(&r, "rows"), 300.0, "every row is counted: {r}");
    assert_eq!(number(&r, "rerun_created"), 0.0, "{r}");
    assert_eq!(
        number(&r, "rerun_updated") + number(&r, "rerun_unchanged"),
        created,
        "the rerun finds every imported patient: {r}"
    );
    assert!(number(&r, "throughput_per_s") > 0.0, "{r}");
}

#[test]
fn book_race_books_through_book_and_never_twice() {
    let r = run("book-race");
    assert_load(&r);
    assert!(number(&r, "booked_200") > 0.0, "{r}");
    assert!(number(&r, "bookings_per_s") > 0.0, "{r}");
    assert_eq!(number(&r, "other_answers"), 0.0, "{r}");
    assert_eq!(r["created_equals_booked"], true, "{r}");
    assert_eq!(r["no_double_booking"], true, "{r}");
    assert_eq!(
        number(&r, "appointments_created"),
        number(&r, "booked_200"),
        "{r}"
    );
}
