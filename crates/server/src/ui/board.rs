//! Today's board: a location's appointments of one day in time order with
//! patient, provider, type, visit status, time in that status and room;
//! each visit's next steps as buttons (`POST /today/visits/{id}/step`), and
//! the board event stream the page's script polls (`GET /today/events`).
//! The rooms board is in `rooms`.
//!
//! The steps offered are those the domain's status machine allows from the
//! visit's status, so a refusal comes from the appointment's own rules (too
//! early to arrive, a no-show before the start), a room taken meanwhile or
//! a visit moved by someone else; it is shown with the domain's reason and
//! writes nothing. Who waits too long is the domain's rule
//! (`Visit::waiting_too_long`); the script only keeps ticking what the
//! server rendered and replaces what the events carry.

use super::patient_summary::us_date;
use super::rooms::{room_state_text, today_nav};
use super::schedule::{
    Directory, actor, clock, date_field, href, local, location_field, long_day, parse_date,
    patients_by_id, today_in, zone_on,
};
use super::{CsrfForm, error_page, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use carefront_domain::audit::Action;
use carefront_domain::coverage::Coverage;
use carefront_domain::directory::{Location, Versioned};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::Appointment;
use carefront_domain::visit::{
    ChangedBy, RoomState, RoomStatus, Visit, VisitStatus, VisitStep, WaitThresholds,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    AppointmentRecord, BoardEvent, BoardPatient, BoardRoom, BoardVisit, FlowActor, StoreError,
};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long `GET /today/events` waits for an event before answering empty.
const LONGEST_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting request looks at the database: events come from
/// there, so every server sees every server's changes.
const POLL_EVERY: Duration = Duration::from_millis(250);
const EVENTS_PER_ANSWER: i64 = 200;

/// The board a page shows: location, day and filters, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    location: String,
    #[serde(default)]
    date: String,
    /// A practitioner's id.
    #[serde(default)]
    provider: String,
    /// A visit status code, or `waiting`.
    #[serde(default)]
    status: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(flatten)]
    board: BoardQuery,
    /// The status a visit was just moved to, and the visit.
    #[serde(default)]
    done: String,
    #[serde(default)]
    a: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusFilter {
    All,
    /// `VisitStatus::is_waiting`.
    Waiting,
    Is(VisitStatus),
}

/// Which visits a board lists; the page and its event stream read the
/// query the same way (an unknown status lists them all).
struct Filters {
    provider: Option<String>,
    status: StatusFilter,
}

impl Filters {
    fn read(q: &BoardQuery) -> Self {
        let status = match q.status.trim() {
            "waiting" => StatusFilter::Waiting,
            code => VisitStatus::from_code(code).map_or(StatusFilter::All, StatusFilter::Is),
        };
        Filters {
            provider: Some(q.provider.trim().to_string()).filter(|p| !p.is_empty()),
            status,
        }
    }

    fn admits(&self, practitioner_id: &str, status: VisitStatus) -> bool {
        self.provider.as_ref().is_none_or(|p| p == practitioner_id)
            && match self.status {
                StatusFilter::All => true,
                StatusFilter::Waiting => status.is_waiting(),
                StatusFilter::Is(s) => s == status,
            }
    }
}

/// The location a board shows: the one asked for if active, else the first.
pub(super) fn board_location<'d>(dir: &'d Directory, id: &str) -> Option<&'d Versioned<Location>> {
    dir.active_locations()
        .find(|l| l.id == id.trim())
        .or_else(|| dir.active_locations().next())
}

/// A board of a clinic without an active location.
pub(super) fn no_location(state: &AppState, p: &Principal, title: &str) -> Response {
    let content = html! {
        p.empty { "The clinic has no active location yet: an administrator adds locations first." }
    };
    shell(
        p,
        state.config.idle_timeout_secs,
        Area::Today,
        title,
        content,
    )
    .into_response()
}

/// The board's day: the one asked for, else today at the location (and
/// whether what was typed was not a date).
fn board_date(q: &BoardQuery, tz: &TimeZone) -> (Date, bool) {
    match parse_date(&q.date) {
        Some(d) => (d, false),
        None => (today_in(tz), !q.date.trim().is_empty()),
    }
}

/// `path` with the board's location, day and filters, and `extra`.
fn board_href(
    path: &str,
    location_id: &str,
    date: &str,
    q: &BoardQuery,
    extra: &[(&str, &str)],
) -> String {
    let mut pairs = vec![
        ("location", location_id),
        ("date", date),
        ("provider", q.provider.trim()),
        ("status", q.status.trim()),
    ];
    pairs.extend_from_slice(extra);
    href(path, &pairs)
}

pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// "Checked in", "Arrived (kiosk)".
fn status_text(v: &Visit) -> String {
    let mut text = capitalized(v.status.label());
    if v.status == VisitStatus::Arrived && matches!(v.by, Some(ChangedBy::Kiosk { .. })) {
        text.push_str(" (kiosk)");
    }
    text
}

/// The patient is in the clinic: the board counts the time in the status.
fn timed(status: VisitStatus) -> bool {
    status.is_waiting() || status.occupies_room() || status == VisitStatus::Checkout
}

/// "4m 05s", "1h 12m" (`app.js` ticks the same format).
pub(super) fn elapsed(d: SignedDuration) -> String {
    let s = d.as_secs().max(0);
    match s / 3600 {
        0 => format!("{}m {:02}s", s / 60, s % 60),
        h => format!("{h}h {:02}m", s % 3600 / 60),
    }
}

/// "since 9:05 AM", with the date when that was another day.
pub(super) fn since_text(tz: &TimeZone, since: Timestamp, now: Timestamp) -> String {
    let at = local(tz, since);
    if at.date() == local(tz, now).date() {
        format!("since {}", clock(at))
    } else {
        format!("since {} {}", at.date().strftime("%-m/%-d"), clock(at))
    }
}

/// The wait column: the time in the status while the patient is here,
/// when the visit ended otherwise.
fn wait_text(v: &Visit, now: Timestamp, tz: &TimeZone) -> String {
    if timed(v.status) {
        elapsed(v.time_in_status(now))
    } else if v.status == VisitStatus::Scheduled {
        String::new()
    } else {
        since_text(tz, v.since, now)
    }
}

/// The steps the status machine allows from `status`, as the board offers
/// them: a cancellation needs its reason, given on the appointment's page.
fn next_steps(status: VisitStatus) -> impl Iterator<Item = VisitStatus> {
    VisitStatus::ALL
        .into_iter()
        .filter(move |to| *to != VisitStatus::Cancelled && status.check_transition(*to).is_ok())
}

fn step_label(from: VisitStatus, to: VisitStatus) -> &'static str {
    use VisitStatus::*;
    match (from, to) {
        (NoShow, Arrived) => "Arrived late",
        (_, Arrived) => "Arrived",
        (_, CheckedIn) => "Check in",
        (Roomed, Roomed) => "Move",
        (_, Roomed) => "Room",
        (_, WithProvider) => "With provider",
        (_, Checkout) => "To checkout",
        (_, Completed) => "Complete",
        (_, NoShow) => "No-show",
        (_, LeftWithoutBeingSeen) => "Left unseen",
        (_, Scheduled | Cancelled) => to.label(),
    }
}

/// What the step forms of a board carry: the session's token, the board
/// to come back to, and the rooms to choose from.
struct StepContext<'a> {
    /// The role may move visits (`Area::VisitFlow`); others see no steps.
    can_act: bool,
    csrf: &'a str,
    location_id: &'a str,
    date: Date,
    query: &'a BoardQuery,
    rooms: &'a [BoardRoom],
}

impl StepContext<'_> {
    fn room_name(&self, room_id: Option<&str>) -> String {
        room_id
            .map(|id| {
                self.rooms
                    .iter()
                    .find(|r| r.room_id == id)
                    .map_or_else(|| "Unknown room".to_string(), |r| r.name.clone())
            })
            .unwrap_or_default()
    }

    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="csrf" value=(self.csrf);
            input type="hidden" name="location" value=(self.location_id);
            input type="hidden" name="date" value=(self.date.to_string());
            input type="hidden" name="provider" value=(self.query.provider.trim());
            input type="hidden" name="status" value=(self.query.status.trim());
        }
    }

    /// The buttons of a visit's next steps; rooming picks a ready room.
    /// An arrived patient also gets the guided check-in (`ui::checkin`)
    /// beside the quick step, and a patient at checkout the checkout page
    /// (`ui::checkout`: follow-up, instructions). Buttons are described by the row's patient
    /// cell (`pt-{id}`), so the fragment itself names no patient.
    fn actions(&self, v: &Visit) -> Markup {
        if !self.can_act {
            return html! {};
        }
        let id = &v.appointment_id;
        let action = format!("/today/visits/{id}/step");
        let patient = format!("pt-{id}");
        let first_ready = self
            .rooms
            .iter()
            .find(|r| r.state.status == RoomStatus::Ready)
            .map(|r| r.room_id.as_str());
        html! {
            div.steps {
                @if v.status == VisitStatus::Arrived {
                    a.button id=(format!("checkin-{id}")) href=(format!("/today/visits/{id}/checkin")) aria-describedby=(patient) { "Check in…" }
                }
                @if v.status == VisitStatus::Checkout {
                    a.button id=(format!("checkout-{id}")) href=(format!("/today/visits/{id}/checkout")) aria-describedby=(patient) { "Checkout…" }
                }
                @for to in next_steps(v.status) {
                    @let button_id = format!("step-{id}-{}", to.code());
                    @let exit = matches!(to, VisitStatus::NoShow | VisitStatus::LeftWithoutBeingSeen);
                    form.step method="post" action=(action) {
                        (self.hidden())
                        input type="hidden" name="to" value=(to.code());
                        @if to == VisitStatus::Roomed {
                            @let select_id = format!("room-{id}");
                            label.visually-hidden for=(select_id) { "Room" }
                            select id=(select_id) name="room_id" required aria-describedby=(patient) {
                                option value="" { "Choose a room" }
                                @for r in self.rooms {
                                    @let ready = r.state.status == RoomStatus::Ready;
                                    option value=(r.room_id) disabled[!ready] selected[first_ready == Some(r.room_id.as_str())] {
                                        (room_option(&r.name, &r.state.status))
                                    }
                                }
                            }
                        }
                        button id=(button_id) class=[exit.then_some("secondary")] type="submit" aria-describedby=(patient) {
                            (step_label(v.status, to))
                        }
                    }
                }
            }
        }
    }
}

/// A room in the rooming choice: its name, and its state when not ready.
fn room_option(name: &str, status: &RoomStatus) -> String {
    match status {
        RoomStatus::Ready => name.to_string(),
        other => format!("{name} ({})", room_state_text(other)),
    }
}

/// Patient data a row shows beyond the board's own.
struct PatientFacts<'a> {
    patients: &'a HashMap<String, Patient>,
    /// Patients with a coverage in force on the board's day.
    covered: &'a HashSet<String>,
}

struct RowContext<'a> {
    dir: &'a Directory,
    tz: &'a TimeZone,
    now: Timestamp,
    threshold: SignedDuration,
    steps: &'a StepContext<'a>,
    facts: PatientFacts<'a>,
    highlight: Option<&'a str>,
}

/// As every patient screen names them; the board's own columns if the
/// record could not be read.
pub(super) fn patient_name(p: &BoardPatient, patients: &HashMap<String, Patient>) -> String {
    match patients.get(&p.id) {
        Some(found) => found.display_name(),
        None => format!("{}, {}", p.family, p.given),
    }
}

/// Waiting too long, and named by the page's notice (no empty attribute).
fn row_class(overdue: bool, changed: bool) -> Option<&'static str> {
    match (overdue, changed) {
        (true, true) => Some("overdue changed"),
        (true, false) => Some("overdue"),
        (false, true) => Some("changed"),
        (false, false) => None,
    }
}

fn row(ctx: &RowContext, r: &BoardVisit) -> Markup {
    let v = &r.visit;
    let id = &v.appointment_id;
    let overdue = v.waiting_too_long(ctx.now, ctx.threshold);
    let alerts = ctx
        .facts
        .patients
        .get(&r.patient.id)
        .map(|p| p.alerts.as_slice())
        .unwrap_or_default();
    html! {
        tr id=(format!("visit-{id}")) class=[row_class(overdue, ctx.highlight == Some(id.as_str()))] {
            td.c-time { a href=(format!("/appointments/{id}")) { (clock(local(ctx.tz, r.start))) } }
            th.c-patient scope="row" {
                a id=(format!("pt-{id}")) href=(format!("/patients/{}", r.patient.id)) { (patient_name(&r.patient, ctx.facts.patients)) }
                span.sub { "MRN " (r.patient.mrn) " · born " (us_date(r.patient.birth_date)) }
            }
            td { (ctx.dir.provider_name(&r.practitioner_id)) }
            td { (ctx.dir.type_name(&r.appointment_type_id)) }
            td.c-status { (status_text(v)) }
            td.c-wait {
                span.timer data-since=(v.since.as_millisecond()) data-timed=[timed(v.status).then_some("1")]
                    data-waiting=[v.status.is_waiting().then_some("1")] { (wait_text(v, ctx.now, ctx.tz)) }
                " "
                strong.late hidden[!overdue] { "Waiting too long" }
            }
            td.c-room { (ctx.steps.room_name(v.room_id.as_deref())) }
            td.c-flags {
                ul.flags {
                    @for a in alerts { li.flag.alert { "Alert: " (a) } }
                    @if ctx.facts.covered.contains(&r.patient.id) {
                        li.flag { "Coverage not verified" }
                    } @else {
                        li.flag { "No coverage in force" }
                    }
                }
            }
            td.c-forms.muted[!r.consent_signed] { (forms_cell(r.consent_signed)) }
            td.muted { "—" span.visually-hidden { "not tracked yet" } }
            @if ctx.steps.can_act { td.c-actions { (ctx.steps.actions(v)) } }
        }
    }
}

/// What the Forms cell says (intake forms arrive with the patient portal).
fn forms_cell(consent_signed: bool) -> Markup {
    html! {
        @if consent_signed { "Consent signed" }
        @else { "—" span.visually-hidden { "no consent signed yet" } }
    }
}

/// A refused step, shown above the board.
struct Trouble {
    status: StatusCode,
    appointment_id: String,
    message: String,
}

fn sentence(text: &str) -> String {
    format!("{}.", capitalized(text.trim_end_matches('.')))
}

/// The store's reasons for a refusal, as sentences.
pub(super) fn refusal_text(errors: &ValidationErrors) -> String {
    let reasons: Vec<String> = errors
        .errors()
        .iter()
        .map(|e| sentence(&e.message))
        .collect();
    reasons.join(" ")
}

/// `GET /today`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<PageQuery>,
) -> Response {
    let done = VisitStatus::from_code(q.done.trim()).map(|s| (s, q.a.as_str()));
    render(&state, &p, &q.board, done, None).await
}

async fn render(
    state: &AppState,
    p: &Principal,
    q: &BoardQuery,
    done: Option<(VisitStatus, &str)>,
    trouble: Option<Trouble>,
) -> Response {
    let dir = match Directory::load(state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let Some(location) = board_location(&dir, &q.location) else {
        return no_location(state, p, "Today");
    };
    let location_id = location.id.as_str();
    let tz = dir.tz(location_id);
    let (date, bad_date) = board_date(q, &tz);
    let today = today_in(&tz);
    let filters = Filters::read(q);
    let db = &state.db;
    let loaded = async {
        let day = db.day_board(&p.org_id, location_id, date).await?;
        let rooms = db.room_board(&p.org_id, location_id).await?;
        let thresholds: WaitThresholds = db.setting(&p.org_id).await?;
        Ok::<_, StoreError>((day, rooms, thresholds))
    };
    let (day, rooms, thresholds) = match loaded.await {
        Ok(l) => l,
        Err(e) => return ops::internal_error(e),
    };
    let threshold = thresholds.for_location(location_id);
    let rows: Vec<&BoardVisit> = day
        .visits
        .iter()
        .filter(|r| filters.admits(&r.practitioner_id, r.visit.status))
        .collect();
    let patients =
        match patients_by_id(state, &p.org_id, rows.iter().map(|r| r.patient.id.clone())).await {
            Ok(found) => found,
            Err(r) => return r,
        };
    let ids: Vec<String> = patients.keys().cloned().collect();
    let covered: HashSet<String> = match db
        .records_where_in::<Coverage>(&p.org_id, "patient_id", &ids)
        .await
    {
        Ok(all) => all
            .into_iter()
            .filter(|c| c.value.in_force(date))
            .map(|c| c.value.patient_id)
            .collect(),
        Err(e) => return ops::internal_error(e),
    };
    let now = Timestamp::now();
    let steps = StepContext {
        can_act: p.role.may(Area::VisitFlow),
        csrf: p.csrf(),
        location_id,
        date,
        query: q,
        rooms: &rooms.rooms,
    };
    let highlight = trouble
        .as_ref()
        .map(|t| t.appointment_id.as_str())
        .or(done.map(|d| d.1));
    let ctx = RowContext {
        dir: &dir,
        tz: &tz,
        now,
        threshold,
        steps: &steps,
        facts: PatientFacts {
            patients: &patients,
            covered: &covered,
        },
        highlight,
    };
    let who = |id: &str| {
        rows.iter()
            .find(|r| r.visit.appointment_id == id)
            .map(|r| patient_name(&r.patient, &patients))
    };

    // The providers here, and anyone else booked here that day.
    let mut providers: Vec<String> = dir
        .providers_at(location_id)
        .iter()
        .map(|p| p.id.clone())
        .collect();
    for r in &day.visits {
        if !providers.contains(&r.practitioner_id) {
            providers.push(r.practitioner_id.clone());
        }
    }
    let day_link = |d: Date| board_href("/today", location_id, &d.to_string(), q, &[]);
    let src = day_link(date);
    let events = board_href("/today/events", location_id, &date.to_string(), q, &[]);
    let (prev, next) = (
        date.yesterday().unwrap_or(date),
        date.tomorrow().unwrap_or(date),
    );
    let status_code = trouble.as_ref().map_or(StatusCode::OK, |t| t.status);
    let content = html! {
        (today_nav("board", location_id))
        form.filters.toolbar method="get" action="/today" {
            (location_field("board", &dir, location_id))
            (date_field("board", date, bad_date.then_some(q.date.as_str())))
            div.field {
                label for="board-provider" { "Provider" }
                select #board-provider name="provider" {
                    option value="" { "All providers" }
                    @for id in &providers {
                        option value=(id) selected[filters.provider.as_deref() == Some(id.as_str())] { (dir.provider_name(id)) }
                    }
                }
            }
            div.field {
                label for="board-status" { "Status" }
                select #board-status name="status" {
                    option value="" { "All statuses" }
                    option value="waiting" selected[filters.status == StatusFilter::Waiting] { "Waiting (arrived, checked in, roomed)" }
                    @for s in VisitStatus::ALL {
                        option value=(s.code()) selected[filters.status == StatusFilter::Is(s)] { (capitalized(s.label())) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        div.day-nav {
            a.button.secondary href=(day_link(prev)) data-shortcut="[" aria-keyshortcuts="[" { "← Previous day" }
            @if date == today {
                span.today-mark { "Today" }
            } @else {
                a.button.secondary href=(day_link(today)) data-shortcut="t" aria-keyshortcuts="t" { "Today" }
            }
            a.button.secondary href=(day_link(next)) data-shortcut="]" aria-keyshortcuts="]" { "Next day →" }
        }
        h2 #board-title { (location.value.name) " · " (long_day(date)) }
        p.zone { "Times are local to " (location.value.name) ": " strong { (zone_on(&tz, date)) } ". "
            "Patients waiting more than " (threshold.as_mins()) " minutes are marked “Waiting too long”." }
        @if let Some(t) = &trouble {
            div.error #board-error role="alert" tabindex="-1" autofocus {
                p {
                    "Nothing was changed"
                    @if let Some(name) = who(&t.appointment_id) { " for " (name) }
                    ". " (t.message)
                }
            }
        } @else if let Some((status, id)) = done {
            p.notice.done #board-notice role="status" tabindex="-1" autofocus {
                @match who(id) {
                    Some(name) => { (name) ": " (status.label()) ". " a href=(format!("#visit-{id}")) { "Show on the board" } }
                    None => { "Done: " (status.label()) "." }
                }
            }
        }
        p #board-live .visually-hidden aria-live="polite" {}
        div #board-section data-live="board" data-src=(src) data-events=(events) data-seq=(day.seq)
            data-now=(now.as_millisecond()) data-threshold-ms=(threshold.as_millis()) {
            @if rows.is_empty() {
                p.empty {
                    @if day.visits.is_empty() { "No appointments at " (location.value.name) " on " (long_day(date)) "." }
                    @else { "No appointment matches the filters. " a href=(href("/today", &[("location", location_id), ("date", &date.to_string())])) { "Show all" } }
                }
            } @else {
                div.grid-scroll {
                    table.board aria-labelledby="board-title" {
                        thead { tr {
                            th scope="col" { "Time" } th scope="col" { "Patient" } th scope="col" { "Provider" }
                            th scope="col" { "Type" } th scope="col" { "Status" } th scope="col" { "In status" }
                            th scope="col" { "Room" } th scope="col" { "Flags" }
                            th scope="col" aria-describedby="board-later" { "Forms" }
                            th scope="col" aria-describedby="board-later" { "Balance" }
                            @if steps.can_act { th scope="col" { "Next step" } }
                        } }
                        tbody { @for r in &rows { (row(&ctx, r)) } }
                    }
                }
            }
        }
        p.muted #board-later {
            "Consents signed at the kiosk show under Forms; intake forms arrive with the patient portal, balances with payments. "
            "Coverage is not verified until eligibility checks (X12 270/271) arrive."
        }
    };
    let mut response = (
        status_code,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Today,
            "Today",
            content,
        ),
    )
        .into_response();
    for r in &rows {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Appointment", Some(&r.visit.appointment_id))
                .patient(&r.patient.id)
                .detail("shown on today's board")
                .once_per_window(),
        );
    }
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct StepForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    room_id: String,
    /// The board the form was on, to come back to.
    #[serde(flatten)]
    board: BoardQuery,
}

/// `POST /today/visits/{id}/step`: a step of the visit of appointment `id`
/// (`to`, with `room_id` when rooming), back to the board with a notice; a
/// refusal shows the board with the reason and writes nothing.
pub async fn step(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Response {
    let refused = |status, message| Trouble {
        status,
        appointment_id: id.clone(),
        message,
    };
    let step = VisitStatus::from_code(form.to.trim())
        .ok_or_else(|| ValidationErrors::single("status", "choose one of the board's buttons"))
        .and_then(|to| VisitStep::new(to, Some(&form.room_id)));
    let result = match step {
        Ok(step) => {
            async {
                let mut tx = state.db.begin(&p.org_id).await?;
                let by = FlowActor::Staff(actor(&p));
                let change = tx.visit_step(&id, &step, &by, Timestamp::now()).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(change)
            }
            .await
        }
        Err(e) => Err(e.into()),
    };
    let b = &form.board;
    let trouble = match result {
        Ok(change) => {
            let done = [("done", change.visit.status.code()), ("a", id.as_str())];
            let back = board_href("/today", b.location.trim(), b.date.trim(), b, &done);
            return Redirect::to(&back).into_response();
        }
        Err(StoreError::Invalid(e)) => refused(StatusCode::UNPROCESSABLE_ENTITY, refusal_text(&e)),
        Err(StoreError::Conflict(m)) => refused(StatusCode::CONFLICT, sentence(&m)),
        Err(StoreError::NotFound | StoreError::Gone) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Visit not found",
                "There is no appointment at this address. Go back to today's board.",
            );
        }
        Err(e) => return ops::internal_error(e),
    };
    render(&state, &p, b, None, Some(trouble)).await
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// The page's board: events say whether a visit belongs on it.
    #[serde(flatten)]
    board: BoardQuery,
    /// The last event number the page has.
    #[serde(default)]
    after: String,
    /// Seconds to wait for an event (at most, and by default, 20).
    #[serde(default)]
    wait: String,
}

/// The answer of `GET /today/events`.
#[derive(Debug, Serialize)]
struct EventsAnswer {
    /// The number to ask after next.
    seq: i64,
    /// The server's clock, which the page's timers follow.
    now_ms: i64,
    /// The page cannot catch up from its number (none, or one past the
    /// stream's end, as after a restore): it reloads its board.
    reload: bool,
    events: Vec<EventJson>,
}

#[derive(Debug, Serialize)]
struct EventJson {
    seq: i64,
    visits: Vec<VisitJson>,
    rooms: Vec<RoomJson>,
}

/// A visit as the board's row shows it; no patient data (the row has it).
#[derive(Debug, Serialize)]
struct VisitJson {
    id: String,
    status: &'static str,
    text: String,
    since_ms: i64,
    wait: String,
    timed: bool,
    waiting: bool,
    room: String,
    /// The visit belongs on the page's board (day and filters).
    shown: bool,
    /// The row's next-step forms.
    actions: String,
    /// The consent was signed (at the kiosk), and the Forms cell.
    consent_signed: bool,
    forms: String,
}

#[derive(Debug, Serialize)]
struct RoomJson {
    id: String,
    status: &'static str,
    text: String,
    since_ms: i64,
    ready: bool,
    /// The room as the rooming choice lists it.
    option: String,
}

/// `GET /today/events?location=&after=SEQ`: the board events of a location
/// after `SEQ` as JSON, at once when there are some, else when one comes
/// (the database is looked at every 250 ms, so changes made through any
/// server arrive) or after 20 seconds with none. The answer names no
/// patient, so it is not audited; the rows it updates were, when shown.
pub async fn events(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let org_id = p.org_id.as_str();
    let location_id = q.board.location.trim();
    let location = match state.db.get::<Location>(org_id, location_id).await {
        Ok(l) if l.value.active => l.value,
        Ok(_) | Err(StoreError::NotFound | StoreError::Gone) => {
            let error = serde_json::json!({ "error": "no such location" });
            return (StatusCode::NOT_FOUND, Json(error)).into_response();
        }
        Err(e) => return ops::internal_error(e),
    };
    let head = match state.db.board_seq(org_id, location_id).await {
        Ok(h) => h,
        Err(e) => return ops::internal_error(e),
    };
    let answer = |seq, reload, events| {
        let now_ms = Timestamp::now().as_millisecond();
        Json(EventsAnswer {
            seq,
            now_ms,
            reload,
            events,
        })
        .into_response()
    };
    let Some(after) = q
        .after
        .trim()
        .parse()
        .ok()
        .filter(|a| (0..=head).contains(a))
    else {
        return answer(head, true, Vec::new());
    };
    let wait = q
        .wait
        .trim()
        .parse()
        .map_or(LONGEST_WAIT, |s| Duration::from_secs(s).min(LONGEST_WAIT));
    let deadline = tokio::time::Instant::now() + wait;
    let found = loop {
        match state
            .db
            .board_events_since(org_id, location_id, after, EVENTS_PER_ANSWER)
            .await
        {
            Ok(found) if !found.is_empty() || tokio::time::Instant::now() >= deadline => {
                break found;
            }
            Ok(_) => tokio::time::sleep(POLL_EVERY).await,
            Err(e) => return ops::internal_error(e),
        }
    };
    let Some(last) = found.last().map(|e| e.seq) else {
        return answer(after, false, Vec::new());
    };
    let tz = TimeZone::get(&location.timezone).unwrap_or(TimeZone::UTC);
    match describe(&state, &p, &q.board, &tz, found).await {
        Ok(events) => answer(last, false, events),
        Err(e) => ops::internal_error(e),
    }
}

/// Board events as the page applies them: each visit's row cells and
/// next steps, whether it belongs on the page, each room's state.
async fn describe(
    state: &AppState,
    p: &Principal,
    q: &BoardQuery,
    tz: &TimeZone,
    found: Vec<BoardEvent>,
) -> Result<Vec<EventJson>, StoreError> {
    let location_id = q.location.trim();
    let (date, _) = board_date(q, tz);
    let filters = Filters::read(q);
    let rooms = state.db.room_board(&p.org_id, location_id).await?.rooms;
    let mut ids: Vec<String> = found
        .iter()
        .flat_map(|e| e.change.visits.iter().map(|v| v.appointment_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    let appointments: HashMap<String, Appointment> = state
        .db
        .get_many::<AppointmentRecord>(&p.org_id, &ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a.value.appointment))
        .collect();
    let signed = state.db.kiosk_consents_signed(&p.org_id, &ids).await?;
    let steps = StepContext {
        can_act: p.role.may(Area::VisitFlow),
        csrf: p.csrf(),
        location_id,
        date,
        query: q,
        rooms: &rooms,
    };
    let now = Timestamp::now();
    let visit = |v: &Visit| {
        let consent_signed = signed.contains(&v.appointment_id);
        let shown = appointments.get(&v.appointment_id).is_some_and(|a| {
            VisitStatus::from_appointment(a.status).is_some()
                && local(tz, a.start).date() == date
                && filters.admits(&a.practitioner_id, v.status)
        });
        VisitJson {
            id: v.appointment_id.clone(),
            status: v.status.code(),
            text: status_text(v),
            since_ms: v.since.as_millisecond(),
            wait: wait_text(v, now, tz),
            timed: timed(v.status),
            waiting: v.status.is_waiting(),
            room: steps.room_name(v.room_id.as_deref()),
            shown,
            actions: steps.actions(v).into_string(),
            consent_signed,
            forms: forms_cell(consent_signed).into_string(),
        }
    };
    let room = |r: &RoomState| {
        let name = steps.room_name(Some(&r.room_id));
        RoomJson {
            id: r.room_id.clone(),
            status: r.status.code(),
            text: room_state_text(&r.status),
            since_ms: r.since.as_millisecond(),
            ready: r.status == RoomStatus::Ready,
            option: room_option(&name, &r.status),
        }
    };
    Ok(found
        .iter()
        .map(|e| EventJson {
            seq: e.seq,
            visits: e.change.visits.iter().map(visit).collect(),
            rooms: e.change.rooms.iter().map(room).collect(),
        })
        .collect())
}
