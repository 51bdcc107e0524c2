//! The Today board scenarios: rendering a busy board (`board-render`) and
//! carrying a status change to many open boards (`board-fanout`), over HTTP
//! against real `carefront serve` processes, signed in as the front desk.

use crate::Args;
use crate::dataset::Board;
use crate::load::{self, Auth, Figures, Latencies, Request};
use crate::server::Server;
use anyhow::{Context, Result, bail};
use carefront_domain::visit::VisitStatus;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// `GET /today` of the board's location and day: the page a desk opens.
fn board_path(board: &Board) -> String {
    format!("/today?location={}&date={}", board.location_id, board.date)
}

/// `board-render`: `--clients` closed loops `GET /today` for the board's
/// location and day; an answer counts as complete when it shows the day's
/// last visit.
pub async fn render(server: &Server, board: &Board, args: &Args) -> Result<Figures> {
    let client = load::http_client()?;
    let cookie = load::sign_in_front_desk(&client, &server.base, args.seed).await?;
    let path = board_path(board);
    let last_row = format!("id=\"visit-{}\"", board.last_visit_id);
    let request_for = Arc::new(move |_: usize, _: u64| Request {
        label: "today-board",
        path: path.clone(),
        body: None,
        expect: Some(last_row.clone()),
    });
    load::drive(
        client,
        &server.base,
        Auth::Cookie(cookie),
        args,
        request_for,
    )
    .await
    .with_context(|| format!("board-render against {}", board.data.display))
}

/// Open boards: the 200 connected boards.
pub const BOARDS: usize = 200;
/// Status changes made one after another.
pub const CHANGES: usize = 20;
/// A board that has not shown a change after this long missed it: ten
/// times the goal (500 ms), far under the long poll's 20 s, so a late
/// answer is not mistaken for the empty one that ends a quiet poll.
pub const MISSED_AFTER: Duration = Duration::from_secs(5);
/// Pause between changes, so every board has asked again (its next long
/// poll reached the server) before the next change, as on a real desk where
/// changes are seconds apart.
const BETWEEN_CHANGES: Duration = Duration::from_millis(500);
/// Pause after the last board connected before the first change, for the
/// same reason.
const SETTLE: Duration = Duration::from_secs(1);

/// The steps `board-fanout` takes, in the order tried from a visit's status:
/// the desk's own (arrive, check in), and leaving unseen, which needs no
/// room (rooming would run out of ready rooms on a reused dataset). From a
/// no-show the first is "arrived late".
const STEPS: [VisitStatus; 3] = [
    VisitStatus::Arrived,
    VisitStatus::CheckedIn,
    VisitStatus::LeftWithoutBeingSeen,
];

/// The next step [`STEPS`] take from `status`, as the domain allows it.
fn next_step(status: VisitStatus) -> Option<VisitStatus> {
    STEPS
        .into_iter()
        .find(|to| status.check_transition(*to).is_ok())
}

/// [`CHANGES`] steps of the board's visits, read from the store as the
/// dataset stands: one step per visit in board order, then again from the
/// first, so a reused dataset moves on where the last run stopped (each
/// visit takes at most three steps: the dataset lasts about 45 runs).
async fn plan_changes(board: &Board) -> Result<Vec<(String, VisitStatus)>> {
    let db = carefront_store::Db::connect(&board.data.url).await?;
    let day = db
        .day_board(&board.data.org_id, &board.location_id, board.date)
        .await;
    db.close().await;
    let mut visits: Vec<(String, VisitStatus)> = day?
        .visits
        .into_iter()
        .map(|v| (v.visit.appointment_id, v.visit.status))
        .collect();
    let mut plan = Vec::with_capacity(CHANGES);
    while plan.len() < CHANGES {
        let before = plan.len();
        for (id, status) in visits.iter_mut() {
            if plan.len() == CHANGES {
                break;
            }
            if let Some(to) = next_step(*status) {
                plan.push((id.clone(), to));
                *status = to;
            }
        }
        if plan.len() == before {
            bail!(
                "every visit of the board day in {} has left the board's steps; \
                 drop that dataset to have it rebuilt",
                board.data.display
            );
        }
    }
    Ok(plan)
}

/// A visit state a board's long poll returned, and when.
struct Seen {
    board: usize,
    visit: String,
    status: String,
    at: Instant,
}

/// One board's page script: asks `GET /today/events` after the last
/// number it has, again as soon as each answer comes, and reports every
/// visit state the answers carry. Runs until aborted.
async fn watch(
    board: usize,
    client: reqwest::Client,
    url: String,
    cookie: String,
    mut after: i64,
    seen: mpsc::UnboundedSender<Seen>,
    errors: Arc<AtomicU64>,
) {
    loop {
        match events(&client, &format!("{url}&after={after}"), &cookie).await {
            Ok(answer) => {
                let at = Instant::now();
                for e in answer["events"].as_array().into_iter().flatten() {
                    for v in e["visits"].as_array().into_iter().flatten() {
                        let visit = Seen {
                            board,
                            visit: v["id"].as_str().unwrap_or_default().to_string(),
                            status: v["status"].as_str().unwrap_or_default().to_string(),
                            at,
                        };
                        if seen.send(visit).is_err() {
                            return;
                        }
                    }
                }
                after = answer["seq"].as_i64().unwrap_or(after);
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
                // As the page does after a failed poll: ask again shortly.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// An answer of `GET /today/events`.
async fn events(client: &reqwest::Client, url: &str, cookie: &str) -> Result<Value> {
    let res = client.get(url).header("cookie", cookie).send().await?;
    if !res.status().is_success() {
        bail!("{url} answered {}", res.status());
    }
    Ok(serde_json::from_str(&res.text().await?)?)
}

/// What `board-fanout` counted besides the delivery latencies.
#[derive(Debug, Default, Clone)]
pub struct Fanout {
    pub boards: usize,
    pub changes: usize,
    pub servers: usize,
    /// Boards × changes not shown within [`MISSED_AFTER`].
    pub missed: u64,
    /// Long polls that failed (each board asked again).
    pub poll_errors: u64,
    /// The step posts themselves (`POST /today/visits/{id}/step`).
    pub steps: Latencies,
    /// Each server's peak RSS.
    pub server_rss: Vec<u64>,
}

/// Labels of the delivery figures by the server a board is connected to.
const BOARDS_ON: [&str; 2] = [
    "boards on server 1 (changes made there)",
    "boards on server 2",
];

/// `board-fanout`: [`BOARDS`] boards (each its own browser: client and
/// session) long-poll the location's events, spread over `servers`; a desk
/// on the first server takes [`CHANGES`] steps one after another, waiting
/// each time until every board has shown the change or [`MISSED_AFTER`]
/// passed. A delivery is the time from sending the step until a board's
/// long poll returned it.
pub async fn fanout(servers: &[Server], board: &Board, args: &Args) -> Result<(Figures, Fanout)> {
    if servers.is_empty() || servers.len() > BOARDS_ON.len() {
        bail!("board-fanout runs on one or two servers");
    }
    let plan = plan_changes(board).await?;
    let events_path = format!(
        "/today/events?location={}&date={}",
        board.location_id, board.date
    );
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let poll_errors = Arc::new(AtomicU64::new(0));
    // Dropping the set ends the boards, whichever way this returns.
    let mut watchers = JoinSet::new();
    eprintln!("board-fanout: signing in {BOARDS} boards...");
    for b in 0..BOARDS {
        let base = &servers[b % servers.len()].base;
        let client = load::http_client()?;
        // One at a time: every sign-in hashes a password, and the server's
        // peak RSS should show the boards, not 200 concurrent hashings.
        let cookie = load::sign_in_front_desk(&client, base, args.seed).await?;
        let url = format!("{base}{events_path}");
        // Without a number the stream answers at once with its head.
        let head = events(&client, &url, &cookie).await?["seq"]
            .as_i64()
            .context("no seq in the events answer")?;
        watchers.spawn(watch(
            b,
            client,
            url,
            cookie,
            head,
            seen_tx.clone(),
            poll_errors.clone(),
        ));
    }
    drop(seen_tx);
    let desk = load::http_client()?;
    let base = &servers[0].base;
    let cookie = load::sign_in_front_desk(&desk, base, args.seed).await?;
    let page = desk
        .get(format!("{base}{}", board_path(board)))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let csrf = load::csrf_field(&page)?.to_string();
    tokio::time::sleep(SETTLE).await;

    let mut figures = Figures::default();
    let mut counts = Fanout {
        boards: BOARDS,
        changes: plan.len(),
        servers: servers.len(),
        ..Fanout::default()
    };
    let started = Instant::now();
    for (visit, to) in &plan {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf)
            .append_pair("to", to.code())
            .append_pair("room_id", "")
            .append_pair("location", &board.location_id)
            .append_pair("date", &board.date.to_string())
            .finish();
        let sent = Instant::now();
        let res = desk
            .post(format!("{base}/today/visits/{visit}/step"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        // A step taken answers with a redirect back to the board.
        let taken = res.status().is_redirection();
        counts.steps.record(sent.elapsed(), taken);
        if !taken {
            bail!(
                "the step of visit {visit} to {} answered {}",
                to.code(),
                res.status()
            );
        }
        let deadline = tokio::time::Instant::from_std(sent + MISSED_AFTER);
        let mut shown = [false; BOARDS];
        let mut delivered = 0;
        while delivered < BOARDS {
            let s = match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some(s)) => s,
                Ok(None) => bail!("every board stopped"),
                Err(_) => break,
            };
            // Late deliveries of an earlier change were counted as missed.
            if s.visit != *visit || s.status != to.code() || shown[s.board] {
                continue;
            }
            shown[s.board] = true;
            delivered += 1;
            let took = s.at.saturating_duration_since(sent);
            figures.all.record(took, true);
            figures
                .by_label
                .entry(BOARDS_ON[s.board % servers.len()])
                .or_default()
                .record(took, true);
        }
        // A missed delivery counts as an error without a latency.
        for b in (0..BOARDS).filter(|b| !shown[*b]) {
            counts.missed += 1;
            for l in [
                &mut figures.all,
                figures
                    .by_label
                    .entry(BOARDS_ON[b % servers.len()])
                    .or_default(),
            ] {
                l.requests += 1;
                l.errors += 1;
            }
        }
        tokio::time::sleep(BETWEEN_CHANGES).await;
    }
    figures.elapsed = started.elapsed();
    drop(watchers);
    counts.poll_errors = poll_errors.load(Ordering::Relaxed);
    Ok((figures, counts))
}
