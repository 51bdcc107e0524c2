//! Booking a slot: the page a free slot (day view, week view, slot finder,
//! waitlist offer) links to, with the patient search inside, the type, the
//! reason and notes.
//!
//! The form carries a random idempotency token (`idempotency_key`), so the
//! same form sent twice (a double click, a retried request) books once: the
//! store returns the first appointment for the second request. A slot taken
//! meanwhile answers 409 with the form again, the details kept, and other
//! free times of the same provider to choose from. A lead may book past
//! the schedule (overbooking, outside hours) with a reason, kept on the
//! appointment and shown on its card.
//!
//! Repeat (a course of visits, e.g. weekly physical therapy × 8) books the
//! whole series or nothing (`Db::book_series`). When a visit does not fit,
//! the form comes back listing every visit, each conflict with its nearest
//! free times as radio buttons (`move_<n>`: visit n + 1 at another time),
//! and books again with the times chosen. A booked series has its own page
//! listing its visits.

use super::patient_summary::{header, load};
use super::patients::today;
use super::registration::input_id;
use super::schedule::{
    Directory, TYPES_CSS, clock, day_href, done_href, error_summary, href, inline_error, local,
    same_field, sentence, short_day, status_text, when, zone_on,
};
use super::{CsrfForm, csrf_field, shell_with_styles};
use crate::audit::{AuditNote, note};
use crate::auth::{Principal, random_secret};
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_domain::patient_search::parse;
use carefront_domain::scheduling::{
    BookingRequest, FitIssue, MAX_SERIES_COUNT, MAX_SERIES_INTERVAL_WEEKS, OccurrenceOutcome,
    Override, PlannedOccurrence, Refusal, SeriesConflict, Slot, SlotSearch, may_override,
    next_available,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    Actor, AppointmentDetails, BookAppointment, BookError, PatientHits, SlotFilter, StoreError,
};
use jiff::{Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Patients listed by the search inside the booking page.
const PATIENTS_SHOWN: usize = 10;
/// Other free times offered when the chosen one was taken.
const ALTERNATIVES: usize = 8;

#[derive(Debug, Default, Deserialize)]
pub struct BookQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    patient: String,
    #[serde(default)]
    q: String,
}

/// The booking form as sent. Input names are the field names the store's
/// errors use, so every error lands on its input.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BookForm {
    #[serde(default)]
    pub appointment_type_id: String,
    #[serde(default)]
    pub practitioner_id: String,
    #[serde(default)]
    pub location_id: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub reason_for_visit: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub override_reason: String,
    #[serde(default)]
    pub idempotency_key: String,
    /// Visits in all; empty or 1 books one.
    #[serde(default)]
    pub repeat_count: String,
    /// Weeks between the visits of a series.
    #[serde(default)]
    pub repeat_every_weeks: String,
    /// The other fields: `move_<n>` is the start chosen for visit n + 1 of a
    /// series instead of its own time.
    #[serde(flatten)]
    pub others: BTreeMap<String, String>,
}

impl BookForm {
    /// Visits of a series moved to another start, by index.
    fn moved(&self) -> BTreeMap<u16, Timestamp> {
        self.others
            .iter()
            .filter_map(|(k, v)| {
                let index = k.strip_prefix("move_")?.parse().ok()?;
                Some((index, v.trim().parse().ok()?))
            })
            .collect()
    }

    /// (weeks between visits, visits in all) when more than one visit is
    /// asked for; unreadable numbers are errors.
    fn repeat(&self, errors: &mut ValidationErrors) -> Option<(u8, u16)> {
        let count = match self.repeat_count.trim() {
            "" => 1,
            t => t.parse::<u16>().unwrap_or_else(|_| {
                errors.add("count", format!("must be 1 to {MAX_SERIES_COUNT} visits"));
                1
            }),
        };
        let every = match self.repeat_every_weeks.trim() {
            "" => 1,
            t => t.parse::<u8>().unwrap_or_else(|_| {
                errors.add(
                    "every_weeks",
                    format!("must be 1 to {MAX_SERIES_INTERVAL_WEEKS} weeks"),
                );
                1
            }),
        };
        (count > 1).then_some((every, count))
    }
}

/// Why the time does not fit the schedule as it is.
enum Problem {
    /// The provider is already booked then.
    Taken,
    /// Outside the template, on time off, too soon...: a lead may override.
    NeedsOverride(Vec<FitIssue>),
    /// Cannot be booked at all.
    Refused(Refusal),
}

impl Problem {
    fn from_refusal(r: Refusal) -> Problem {
        match r {
            Refusal::NeedsOverride(issues)
                if issues
                    .iter()
                    .any(|i| matches!(i, FitIssue::OverCapacity { .. })) =>
            {
                Problem::Taken
            }
            Refusal::NeedsOverride(issues) => Problem::NeedsOverride(issues),
            other => Problem::Refused(other),
        }
    }
}

fn issues_text(issues: &[FitIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where an error is shown: the patient's error at the patient search.
fn anchor(field: &str) -> String {
    match field {
        "patient_id" => "patient_id".into(),
        "count" | "every_weeks" => format!("repeat_{field}"),
        "idempotency_key" | "version" => "appointment_type_id".into(),
        f => same_field(f),
    }
}

struct View<'a> {
    status: StatusCode,
    form: &'a BookForm,
    errors: &'a ValidationErrors,
    patient: Option<&'a Versioned<Patient>>,
    q: &'a str,
    hits: Option<&'a PatientHits>,
    problem: Option<Problem>,
    /// Other free times, offered when the chosen one was taken.
    alternatives: &'a [Slot],
    /// The form was sent (a booking was tried), not only opened.
    attempted: bool,
    /// A series that could not be booked: every visit, conflicts with
    /// alternatives.
    series: Option<&'a [PlannedOccurrence]>,
}

/// Why a visit of a series cannot be booked as it is.
fn conflict_text(c: &SeriesConflict, provider_name: &str) -> String {
    match c {
        SeriesConflict::NeedsOverride(ev)
            if ev
                .issues
                .iter()
                .any(|i| matches!(i, FitIssue::OverCapacity { .. })) =>
        {
            format!("{provider_name} already has a booking then")
        }
        SeriesConflict::OverlapsOccurrence(i) => format!("it overlaps visit {}", i + 1),
        other => other.to_string(),
    }
}

/// Every visit of a series that could not be booked, inside the form: a
/// conflict is a group of radio buttons (its nearest free times, and for a
/// lead keeping the time past the schedule); a visit moved before keeps its
/// time.
fn series_visits(
    plan: &[PlannedOccurrence],
    moved: &BTreeMap<u16, Timestamp>,
    provider_name: &str,
    lead: bool,
) -> Markup {
    html! {
        section.series-visits aria-labelledby="series-title" {
            h2 #series-title { "Visits" }
            ol.plain {
                @for occ in plan {
                    @let name = format!("move_{}", occ.index);
                    @let at = format!("Visit {}, {} {}", occ.index + 1, short_day(occ.local_start.date()), clock(occ.local_start));
                    li {
                        @match &occ.outcome {
                            OccurrenceOutcome::Fits(_) => {
                                (at) ": free"
                                @if let Some(t) = moved.get(&occ.index) {
                                    " (the time you chose)"
                                    input type="hidden" name=(name) value=(t.to_string());
                                }
                            }
                            OccurrenceOutcome::Conflict { conflict, alternatives } => {
                                fieldset.slot-choices.invalid {
                                    legend { (at) ": " (conflict_text(conflict, provider_name)) }
                                    @if alternatives.is_empty() {
                                        p { "No free time within a week either side: change the first visit or the repeat." }
                                    }
                                    @for (i, s) in alternatives.iter().enumerate() {
                                        @let id = format!("f-{name}-{i}");
                                        div.tick {
                                            input type="radio" id=(id) name=(name) value=(s.start.to_string());
                                            label for=(id) { "Instead " (short_day(s.local_start.date())) " " (clock(s.local_start)) }
                                        }
                                    }
                                    @if lead && matches!(conflict, SeriesConflict::NeedsOverride(_)) {
                                        @let id = format!("f-{name}-keep");
                                        div.tick {
                                            input type="radio" id=(id) name=(name) value="";
                                            label for=(id) { "Keep this time (needs an override reason)" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The series part of the visit form.
fn repeat_fields(form: &BookForm, errors: &ValidationErrors) -> Markup {
    let (count_invalid, count_error, count_block) = inline_error(errors, "repeat_count", anchor);
    let (every_invalid, every_error, every_block) =
        inline_error(errors, "repeat_every_weeks", anchor);
    let described = |error: Option<String>| {
        error.map_or("f-repeat-hint".to_string(), |e| {
            format!("{e} f-repeat-hint")
        })
    };
    let count = form.repeat_count.trim();
    let every = form.repeat_every_weeks.trim();
    html! {
        fieldset.repeat {
            legend { "Repeat (optional)" }
            div.row {
                div.field.w-s.invalid[count_invalid.is_some()] {
                    label for="f-repeat_count" { "Visits in all" }
                    select #f-repeat_count name="repeat_count" aria-invalid=[count_invalid] aria-describedby=(described(count_error)) {
                        option value="1" selected[count.is_empty() || count == "1"] { "1 (no repeat)" }
                        @for n in 2..=MAX_SERIES_COUNT {
                            @let v = n.to_string();
                            option value=(v) selected[count == v] { (n) " visits" }
                        }
                    }
                    (count_block)
                }
                div.field.w-s.invalid[every_invalid.is_some()] {
                    label for="f-repeat_every_weeks" { "Every" }
                    select #f-repeat_every_weeks name="repeat_every_weeks" aria-invalid=[every_invalid] aria-describedby=(described(every_error)) {
                        option value="1" selected[every.is_empty() || every == "1"] { "week" }
                        @for n in 2..=MAX_SERIES_INTERVAL_WEEKS {
                            @let v = n.to_string();
                            option value=(v) selected[every == v] { (n) " weeks" }
                        }
                    }
                    (every_block)
                }
            }
            span.hint #f-repeat-hint { "For a course of visits, e.g. weekly physical therapy, 8 visits. Every visit keeps this local time; nothing is booked unless every visit can be." }
        }
    }
}

fn render(state: &AppState, p: &Principal, dir: &Directory, v: View) -> Response {
    let form = v.form;
    let start: Option<Timestamp> = form.start.parse().ok();
    let tz = dir.tz(&form.location_id);
    let kind = dir.kind(&form.appointment_type_id);
    let provider = form.practitioner_id.as_str();
    let provider_name = dir.provider_name(provider);
    let lead = may_override(p.role);
    let taken = matches!(v.problem, Some(Problem::Taken));
    let series_needs_override = v.series.is_some_and(|plan| {
        plan.iter().any(|o| {
            matches!(
                o.outcome,
                OccurrenceOutcome::Conflict {
                    conflict: SeriesConflict::NeedsOverride(_),
                    ..
                }
            )
        })
    });
    let show_override = lead
        && (matches!(v.problem, Some(Problem::Taken | Problem::NeedsOverride(_)))
            || series_needs_override
            || v.errors.for_field("override_reason").is_some()
            || !form.override_reason.is_empty());
    let mut offered = dir.types_offered_by(provider);
    if let Some(k) = kind
        && !offered.iter().any(|t| t.id == k.id)
    {
        offered.push(k);
    }
    let back = match start {
        Some(s) => day_href(&form.location_id, local(&tz, s).date()),
        None => "/schedule".to_string(),
    };
    let search_action = |patient: &str| {
        href(
            "/schedule/book",
            &[
                ("type", &form.appointment_type_id),
                ("provider", provider),
                ("location", &form.location_id),
                ("start", &form.start),
                ("patient", patient),
            ],
        )
    };
    let (type_invalid, type_error, type_block) =
        inline_error(v.errors, "appointment_type_id", anchor);
    let (reason_invalid, reason_error, reason_block) =
        inline_error(v.errors, "reason_for_visit", anchor);
    let (notes_invalid, notes_error, notes_block) = inline_error(v.errors, "notes", anchor);
    let (patient_invalid, patient_error, patient_block) =
        inline_error(v.errors, "patient_id", anchor);
    let (start_invalid, start_error, start_block) = inline_error(v.errors, "start", anchor);
    let (override_invalid, override_error, override_block) =
        inline_error(v.errors, "override_reason", anchor);
    let start_here = v.errors.is_empty() && !taken && v.series.is_none();
    let content = html! {
        section.book-slot aria-labelledby="slot-title" {
            h2 #slot-title { "Time" }
            dl.kv {
                dt { "When" }
                dd {
                    @match (start, kind) {
                        (Some(s), Some(k)) => { (when(&tz, s, s.checked_add(k.duration()).unwrap_or(s))) }
                        (Some(s), None) => { (short_day(local(&tz, s).date())) " " (clock(local(&tz, s))) }
                        _ => { "No time chosen" }
                    }
                }
                dt { "Provider" } dd { (provider_name) }
                dt { "Location" } dd { (dir.location_name(&form.location_id)) }
                @if let Some(s) = start { dt { "Time zone" } dd { (zone_on(&tz, local(&tz, s).date())) } }
            }
            p { a href=(back) { "Choose another time on the schedule" } }
        }
        @if let Some(plan) = v.series {
            div.error.conflict #conflict role="alert" tabindex="-1" autofocus {
                p { strong { "Nothing was booked: " (plan.iter().filter(|o| !o.fits()).count()) " of the " (plan.len()) " visits cannot be booked as they are." } }
                p { "Choose another time for each visit listed below and book again; the patient and the details you typed are kept."
                    @if lead { " As a lead you may also keep a time past the schedule with an override reason." } }
            }
        }
        @if taken && !v.attempted {
            div.notice.warn #conflict role="note" {
                p { strong { "This time is no longer free: " } (provider_name) " already has a booking then." }
                p { @if lead { "As a lead you may overbook it with a reason below, or choose one of the free times." }
                    @else if v.alternatives.is_empty() { "Choose another time on the schedule or in the slot finder." }
                    @else { "Choose one of the free times below." } }
            }
        } @else if taken {
            div.error.conflict #conflict role="alert" tabindex="-1" autofocus {
                p { strong { "Nothing was booked: this time is no longer free." } }
                p { (provider_name) " already has a booking then (another desk may have taken it a moment ago). "
                    @if v.alternatives.is_empty() {
                        "Choose another time on the schedule or in the slot finder."
                    } @else {
                        "Choose one of the other free times below; the patient and the details you typed are kept."
                    }
                    @if lead { " As a lead you may also overbook this time with a reason." }
                }
            }
        } @else if let Some(problem) = &v.problem {
            @match problem {
                Problem::NeedsOverride(issues) => {
                    div.notice.warn role="note" {
                        p { strong { "This time is outside the schedule: " } (issues_text(issues)) "." }
                        p { @if lead { "As a lead you may book it anyway: give the reason below." }
                            @else { "Only a lead can book past the schedule. Choose a free time instead." } }
                    }
                }
                Problem::Refused(why) => {
                    div.error role="alert" { p { strong { "This time cannot be booked: " } (why.to_string()) "." } }
                }
                Problem::Taken => {}
            }
        }
        @if v.attempted || v.errors.is_empty() {
            (error_summary("form-errors", v.errors, anchor))
        } @else {
            // Found before the form was sent (the type does not suit the
            // patient): nothing was tried yet, so not "nothing was saved".
            div.notice.warn #form-errors role="note" {
                p { strong { "Before you book, please correct:" } }
                ul {
                    @for e in v.errors.errors() {
                        li { a href=(format!("#{}", input_id(&anchor(&e.field)))) { (sentence(&e.field, &e.message)) } }
                    }
                }
            }
        }
        section.book-patient aria-labelledby="patient-title" {
            h2 #patient-title { "Patient" }
            @if let Some(pt) = v.patient {
                p.chosen { strong { a href=(format!("/patients/{}", pt.id)) { (pt.value.display_name()) } } }
                (header(pt, today()))
                @if patient_invalid.is_some() { (patient_block) }
                p { a href=(search_action("")) { "Choose another patient" } }
            } @else {
                form.inline.patient-search role="search" method="get" action="/schedule/book" {
                    input type="hidden" name="type" value=(form.appointment_type_id);
                    input type="hidden" name="provider" value=(provider);
                    input type="hidden" name="location" value=(form.location_id);
                    input type="hidden" name="start" value=(form.start);
                    div.field.invalid[patient_invalid.is_some()] {
                        label for="f-patient_id" { "Find the patient " span.req { "required" } }
                        input #f-patient_id type="search" name="q" value=(v.q) autocomplete="off"
                            autofocus[start_here] placeholder="Name, date of birth, phone or MRN"
                            aria-invalid=[patient_invalid] aria-describedby=[patient_error.clone()];
                        (patient_block)
                    }
                    button type="submit" { "Search" }
                }
                @if let Some(hits) = v.hits {
                    p role="status" {
                        @match hits.hits.len() {
                            0 => { "No patient matches “" (v.q) "”. " a href="/patients/new" { "Register a new patient" } " first." }
                            1 => { "1 patient matches. Choose them:" }
                            n => { (n) " patients match, best first. Choose one:" }
                        }
                    }
                    @if !hits.hits.is_empty() {
                        ul.plain.patient-choices aria-label="Matching patients" {
                            @for (hit, _) in &hits.hits {
                                li {
                                    a.button.secondary href=(search_action(&hit.id)) {
                                        "Choose " span.visually-hidden { (hit.value.display_name()) }
                                    }
                                    " " strong { (hit.value.display_name()) }
                                    " " span.muted { "DOB " (hit.value.birth_date.strftime("%m/%d/%Y").to_string()) " · MRN " (hit.value.mrn) }
                                }
                            }
                        }
                    }
                }
            }
        }
        form #book-form.book-form method="post" action="/schedule/book" novalidate aria-labelledby="visit-title" {
            h2 #visit-title { "Visit" }
            (csrf_field(p))
            input type="hidden" name="idempotency_key" value=(form.idempotency_key);
            input type="hidden" name="practitioner_id" value=(provider);
            input type="hidden" name="location_id" value=(form.location_id);
            @if let Some(pt) = v.patient { input type="hidden" name="patient_id" value=(pt.id); }
            @if v.alternatives.is_empty() {
                input type="hidden" name="start" value=(form.start);
                @if start_invalid.is_some() { div.field.invalid { (start_block) } }
            } @else {
                fieldset.slot-choices aria-describedby=[start_error.clone()] {
                    legend { "Other free times with " (provider_name) }
                    (start_block)
                    @for (i, s) in v.alternatives.iter().enumerate() {
                        @let id = if i == 0 { input_id("start") } else { format!("{}-{i}", input_id("start")) };
                        div.tick {
                            input type="radio" id=(id) name="start" value=(s.start.to_string()) autofocus[i == 0 && !v.errors.is_empty()];
                            label for=(id) { (short_day(s.local_start.date())) " " (clock(s.local_start)) }
                        }
                    }
                    @if lead {
                        div.tick {
                            input type="radio" id="f-start-keep" name="start" value=(form.start) checked[!v.attempted];
                            label for="f-start-keep" { "Overbook the original time (needs a reason)" }
                        }
                    }
                }
            }
            @if let Some(plan) = v.series {
                (series_visits(plan, &form.moved(), &provider_name, lead))
            }
            div.field.w-m.invalid[type_invalid.is_some()] {
                label for="f-appointment_type_id" { "Appointment type " span.req { "required" } }
                select #f-appointment_type_id name="appointment_type_id" aria-invalid=[type_invalid] aria-describedby=[type_error] {
                    @if kind.is_none() { option value="" { "Choose…" } }
                    @for t in &offered {
                        option value=(t.id) selected[t.id == form.appointment_type_id] { (t.name) " (" (t.duration_minutes) " min)" }
                    }
                }
                (type_block)
            }
            div.field.w-l.invalid[reason_invalid.is_some()] {
                label for="f-reason_for_visit" { "Reason for visit" }
                input #f-reason_for_visit type="text" name="reason_for_visit" value=(form.reason_for_visit) autocomplete="off"
                    autofocus[start_here && v.patient.is_some()]
                    maxlength="500" aria-invalid=[reason_invalid] aria-describedby=[reason_error];
                (reason_block)
            }
            div.field.w-l.invalid[notes_invalid.is_some()] {
                label for="f-notes" { "Notes for the front desk" }
                textarea #f-notes name="notes" rows="3" aria-invalid=[notes_invalid] aria-describedby=[notes_error] { (form.notes) }
                (notes_block)
            }
            (repeat_fields(form, v.errors))
            @if show_override {
                div.field.w-l.invalid[override_invalid.is_some()] {
                    label for="f-override_reason" { "Override reason (lead)" }
                    input #f-override_reason type="text" name="override_reason" value=(form.override_reason) autocomplete="off"
                        aria-invalid=[override_invalid] aria-describedby=(override_error.clone().map_or("f-override_reason-hint".to_string(), |e| format!("{e} f-override_reason-hint")));
                    span.hint #f-override_reason-hint { "Why this visit is booked past the schedule, e.g. “urgent, provider agreed”. Shown on the appointment and kept in the audit log." }
                    (override_block)
                }
            }
            div.form-actions {
                button type="submit" { "Book appointment" }
                a href=(back) { "Cancel" }
            }
        }
    };
    (
        v.status,
        shell_with_styles(
            p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            "Book an appointment",
            &[TYPES_CSS],
            content,
        ),
    )
        .into_response()
}

/// Audits what the page showed of patients.
fn audit_shown(
    response: &mut Response,
    patient: Option<&Versioned<Patient>>,
    hits: Option<&PatientHits>,
) {
    if let Some(pt) = patient {
        note(
            response,
            AuditNote::new(Action::Read, "Patient", Some(&pt.id))
                .patient(&pt.id)
                .detail("booking form"),
        );
    }
    for (h, _) in hits.iter().flat_map(|h| &h.hits) {
        note(
            response,
            AuditNote::new(Action::Search, "Patient", Some(&h.id))
                .patient(&h.id)
                .detail("shown in the booking form's patient search"),
        );
    }
}

/// The patient a form names, when it names a live one.
async fn chosen_patient(state: &AppState, org_id: &str, id: &str) -> Option<Versioned<Patient>> {
    if id.trim().is_empty() {
        return None;
    }
    load(state, org_id, id.trim()).await.ok()
}

/// `GET /schedule/book`: the form for one slot.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<BookQuery>,
) -> Response {
    let dir = match Directory::load(&state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let start: Option<Timestamp> = q.start.parse().ok();
    let (Some(start), Some(_), Some(_)) =
        (start, dir.provider(&q.provider), dir.location(&q.location))
    else {
        return super::schedule::schedule_problem(
            &state,
            &p,
            StatusCode::BAD_REQUEST,
            "Book an appointment",
            html! { p { "This link does not name a time, provider and location to book. Choose a free time on the schedule or with the slot finder." } },
        );
    };
    let kind = dir
        .kind(&q.kind)
        .filter(|t| t.active)
        .or_else(|| dir.types_offered_by(&q.provider).into_iter().next())
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let form = BookForm {
        appointment_type_id: kind.clone(),
        practitioner_id: q.provider.clone(),
        location_id: q.location.clone(),
        start: start.to_string(),
        idempotency_key: random_secret(),
        ..BookForm::default()
    };
    let patient = chosen_patient(&state, &p.org_id, &q.patient).await;
    let typed = q.q.trim();
    let hits = if patient.is_none() && !typed.is_empty() {
        let parsed = parse(typed, today());
        if parsed.is_empty() {
            None
        } else {
            match state
                .db
                .search_patients(&p.org_id, &parsed, PATIENTS_SHOWN)
                .await
            {
                Ok(h) => Some(h),
                Err(e) => return ops::internal_error(e),
            }
        }
    } else {
        None
    };
    // Check the time now, so the desk learns before typing that it is gone,
    // and, once the patient is chosen, whether the type suits them (new or
    // established): that refusal is shown at the type.
    let mut errors = ValidationErrors::new();
    let problem = if kind.is_empty() {
        None
    } else {
        let now = Timestamp::now();
        let mut request = BookingRequest {
            practitioner_id: q.provider.clone(),
            location_id: q.location.clone(),
            start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        };
        if let Some(pt) = &patient {
            request = match state
                .db
                .with_patient_established(&p.org_id, &pt.id, &request, now)
                .await
            {
                Ok(r) => r,
                Err(e) => return ops::internal_error(e),
            };
        }
        match state
            .db
            .evaluate_booking(&p.org_id, &kind, &request, now)
            .await
        {
            Ok(Ok(e)) if e.fits() => None,
            Ok(Ok(e)) => Some(Problem::from_refusal(Refusal::NeedsOverride(e.issues))),
            Ok(Err(r @ Refusal::WrongPatientKind(_))) => {
                let (field, message) = refusal_error(&r);
                errors.add(field, message);
                None
            }
            Ok(Err(r)) => Some(Problem::from_refusal(r)),
            Err(StoreError::NotFound) => None,
            Err(e) => return ops::internal_error(e),
        }
    };
    let alternatives = if matches!(problem, Some(Problem::Taken)) {
        match alternatives(&state, &p.org_id, &form, start).await {
            Ok(a) => a,
            Err(r) => return r,
        }
    } else {
        vec![]
    };
    let mut response = render(
        &state,
        &p,
        &dir,
        View {
            status: StatusCode::OK,
            form: &form,
            errors: &errors,
            patient: patient.as_ref(),
            q: typed,
            hits: hits.as_ref(),
            problem,
            alternatives: &alternatives,
            attempted: false,
            series: None,
        },
    );
    audit_shown(&mut response, patient.as_ref(), hits.as_ref());
    response
}

/// The provider's next free times of the type at the location, from the
/// day of `around`, for a time that was taken.
async fn alternatives(
    state: &AppState,
    org_id: &str,
    form: &BookForm,
    around: Timestamp,
) -> Result<Vec<Slot>, Response> {
    if form.appointment_type_id.is_empty() {
        return Ok(vec![]);
    }
    let now = Timestamp::now();
    let from = around.checked_sub(12.hours()).unwrap_or(around).max(now);
    let until = from.checked_add(14 * 24.hours()).unwrap_or(from);
    let filter = SlotFilter {
        practitioner_ids: vec![form.practitioner_id.clone()],
        location_ids: vec![form.location_id.clone()],
    };
    let input = match state
        .db
        .slot_input(org_id, &form.appointment_type_id, &filter, from, until, now)
        .await
    {
        Ok(i) => i,
        Err(StoreError::NotFound) => return Ok(vec![]),
        Err(e) => return Err(ops::internal_error(e)),
    };
    let search = SlotSearch {
        limit: ALTERNATIVES,
        ..SlotSearch::default()
    };
    next_available(&input, &search).map_err(ops::internal_error)
}

/// `POST /schedule/book`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<BookForm>,
) -> Response {
    let dir = match Directory::load(&state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let mut errors = ValidationErrors::new();
    let start: Option<Timestamp> = form.start.trim().parse().ok();
    if form.start.trim().is_empty() {
        errors.add("start", "is required: choose one of the free times");
    } else if start.is_none() {
        errors.add("start", "is not a time: choose a free time on the schedule");
    }
    if dir.provider(&form.practitioner_id).is_none() {
        errors.add(
            "practitioner_id",
            "is not known: choose a free time on the schedule",
        );
    }
    if dir.location(&form.location_id).is_none() {
        errors.add(
            "location_id",
            "is not known: choose a free time on the schedule",
        );
    }
    let patient = chosen_patient(&state, &p.org_id, &form.patient_id).await;
    if form.patient_id.trim().is_empty() {
        errors.add(
            "patient_id",
            "is required: search for the patient and choose one",
        );
    } else if patient.is_none() {
        errors.add("patient_id", "is not a patient of this clinic");
    }
    if form.appointment_type_id.trim().is_empty() {
        errors.add("appointment_type_id", "is required");
    } else if dir.kind(&form.appointment_type_id).is_none() {
        errors.add("appointment_type_id", "is not a known appointment type");
    }
    let details = AppointmentDetails {
        reason_for_visit: Some(form.reason_for_visit.clone()),
        notes: Some(form.notes.clone()),
    };
    let details = match details.validate() {
        Ok(d) => Some(d),
        Err(e) => {
            for fe in e.errors() {
                errors.add(fe.field.clone(), fe.message.clone());
            }
            None
        }
    };
    if form.idempotency_key.trim().is_empty() {
        errors.add(
            "idempotency_key",
            "is missing: reload the booking page and try again",
        );
    }
    let repeat = form.repeat(&mut errors);
    let view = |status, errors, problem, alternatives, series| View {
        status,
        form: &form,
        errors,
        patient: patient.as_ref(),
        q: "",
        hits: None,
        problem,
        alternatives,
        attempted: true,
        series,
    };
    let (Some(start), Some(details), true) = (start, details, errors.is_empty()) else {
        let mut r = render(
            &state,
            &p,
            &dir,
            view(StatusCode::UNPROCESSABLE_ENTITY, &errors, None, &[], None),
        );
        audit_shown(&mut r, patient.as_ref(), None);
        return r;
    };
    let reason = form.override_reason.trim();
    let booking = BookAppointment {
        appointment_type_id: form.appointment_type_id.clone(),
        request: BookingRequest {
            practitioner_id: form.practitioner_id.clone(),
            location_id: form.location_id.clone(),
            start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        },
        patient_id: form.patient_id.trim().to_string(),
        details,
        series_id: None,
        lead_override: (!reason.is_empty()).then(|| Override {
            role: p.role,
            reason: reason.to_string(),
        }),
        idempotency_key: Some(form.idempotency_key.trim().to_string()),
    };
    let actor = Actor::from(p.entry(Action::Create, Outcome::Success));
    let now = Timestamp::now();
    // Conflicting visits of a series, or why the booking was not made.
    let failed: Result<Vec<PlannedOccurrence>, BookError> = match repeat {
        Some((every_weeks, count)) => {
            let moved = form.moved();
            match state
                .db
                .book_series(&p.org_id, &booking, every_weeks, count, &moved, &actor, now)
                .await
            {
                Ok(Ok(series)) => {
                    let first = &series[0].appointment.value.appointment;
                    let id = first.series_id.as_deref().unwrap_or_default();
                    return Redirect::to(&format!("/schedule/series/{id}?done=booked"))
                        .into_response();
                }
                Ok(Err(plan)) => Ok(plan),
                Err(e) => Err(e),
            }
        }
        None => match state.bookings.book(&p.org_id, &booking, &actor, now).await {
            Ok(booked) => {
                return Redirect::to(&done_href(
                    &dir,
                    &booked.appointment.value.appointment,
                    "booked",
                ))
                .into_response();
            }
            Err(e) => Err(e),
        },
    };
    let mut errors = ValidationErrors::new();
    let (status, problem, plan) = match failed {
        Ok(plan) => (StatusCode::CONFLICT, None, Some(plan)),
        Err(e) => match not_booked(e, p.role, &mut errors) {
            Ok((status, problem)) => (status, problem, None),
            Err(e) => return ops::internal_error(e),
        },
    };
    let alternatives = if matches!(problem, Some(Problem::Taken)) {
        match alternatives(&state, &p.org_id, &form, start).await {
            Ok(a) => a,
            Err(r) => return r,
        }
    } else {
        vec![]
    };
    let mut r = render(
        &state,
        &p,
        &dir,
        view(status, &errors, problem, &alternatives, plan.as_deref()),
    );
    audit_shown(&mut r, patient.as_ref(), None);
    r
}

/// What the form says when a booking (or series) was not made: the status,
/// the problem to show and the fields' errors; other store errors are the
/// server's.
fn not_booked(
    e: BookError,
    role: carefront_domain::Role,
    errors: &mut ValidationErrors,
) -> Result<(StatusCode, Option<Problem>), StoreError> {
    Ok(match e {
        BookError::Refused(r) => match Problem::from_refusal(r) {
            Problem::Taken => (StatusCode::CONFLICT, Some(Problem::Taken)),
            Problem::NeedsOverride(issues) => {
                let text = issues_text(&issues);
                if may_override(role) {
                    errors.add(
                        "override_reason",
                        format!("is required to book past the schedule ({text})"),
                    );
                } else {
                    errors.add("start", format!("needs a lead's override: {text}"));
                }
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(Problem::NeedsOverride(issues)),
                )
            }
            Problem::Refused(r) => {
                let (field, message) = refusal_error(&r);
                errors.add(field, message);
                (StatusCode::UNPROCESSABLE_ENTITY, None)
            }
        },
        BookError::Store(StoreError::Invalid(found)) => {
            for fe in found.errors() {
                errors.add(fe.field.clone(), fe.message.clone());
            }
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        BookError::Store(StoreError::Conflict(message)) if message.contains("idempotency") => {
            errors.add(
                "idempotency_key",
                "was already used: this form booked an appointment before; open the schedule to see it, or reload this page to book again",
            );
            (StatusCode::CONFLICT, None)
        }
        BookError::Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, Some(Problem::Taken)),
        BookError::Store(StoreError::NotFound) => {
            errors.add("appointment_type_id", "is not a known appointment type");
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        BookError::Store(e) => return Err(e),
    })
}

/// The field a refusal is about, and what to say there.
pub fn refusal_error(r: &Refusal) -> (&'static str, String) {
    match r {
        Refusal::UnknownPractitioner(_) => ("practitioner_id", "is not on this schedule".into()),
        Refusal::NotOffered => (
            "appointment_type_id",
            "is not offered by this provider".into(),
        ),
        Refusal::WrongPatientKind(kind) => (
            "appointment_type_id",
            format!(
                "is for {kind} patients; {}",
                carefront_domain::scheduling::wrong_patient_kind_reason(kind)
            ),
        ),
        Refusal::OffGrid => ("start", "must be on a 5-minute mark".into()),
        Refusal::AlreadyOver => ("start", "is already over: choose a later time".into()),
        Refusal::OutOfRange => ("start", "is outside the supported range".into()),
        Refusal::ResourceUnavailable { .. } | Refusal::NoResourceFree(_) => {
            ("start", format!("cannot be booked: {r}"))
        }
        Refusal::NeedsOverride(issues) => (
            "start",
            format!("needs a lead's override: {}", issues_text(issues)),
        ),
        Refusal::OverrideNotPermitted(_) => (
            "override_reason",
            "cannot be used: only a lead may book past the schedule".into(),
        ),
        Refusal::OverrideReasonRequired => (
            "override_reason",
            "is required (at most 500 characters)".into(),
        ),
        Refusal::Schedule(e) => ("location_id", format!("cannot be scheduled: {e}")),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SeriesQuery {
    #[serde(default)]
    done: String,
}

/// `GET /schedule/series/{id}`: the visits a series was booked with, where
/// booking one lands.
pub async fn series_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Response {
    let (dir, visits) = match tokio::try_join!(
        Directory::load(&state, &p.org_id),
        state.db.series_appointments(&p.org_id, &id)
    ) {
        Ok(found) => found,
        Err(e) => return ops::internal_error(e),
    };
    let Some(first) = visits.first().map(|v| &v.value.appointment) else {
        return super::schedule::schedule_problem(
            &state,
            &p,
            StatusCode::NOT_FOUND,
            "Series of visits",
            html! { p { "There is no such series of visits." } },
        );
    };
    let patient = chosen_patient(&state, &p.org_id, &first.patient_id).await;
    let tz = dir.tz(&first.location_id);
    let content = html! {
        @if q.done == "booked" {
            div.notice.done role="status" tabindex="-1" autofocus {
                p { strong { "Booked " (visits.len()) " visits." } }
            }
        }
        @if let Some(pt) = &patient {
            p.chosen { strong { a href=(format!("/patients/{}", pt.id)) { (pt.value.display_name()) } } }
            (header(pt, today()))
        }
        dl.kv {
            dt { "Type" } dd { (dir.type_name(&first.appointment_type_id)) }
            dt { "Provider" } dd { (dir.provider_name(&first.practitioner_id)) }
            dt { "Location" } dd { (dir.location_name(&first.location_id)) }
        }
        table {
            caption.visually-hidden { "Visits of the series, by date" }
            thead { tr { th scope="col" { "Visit" } th scope="col" { "When" } th scope="col" { "Status" } } }
            tbody {
                @for (i, v) in visits.iter().enumerate() {
                    @let a = &v.value.appointment;
                    tr {
                        td { (i + 1) }
                        td { a href=(format!("/appointments/{}", a.id)) { (when(&tz, a.start, a.end)) } }
                        td { (status_text(a, &tz)) }
                    }
                }
            }
        }
        p { a href=(day_href(&first.location_id, local(&tz, first.start).date())) { "Open the schedule on the first visit's day" } }
    };
    let mut response = shell_with_styles(
        &p,
        state.config.idle_timeout_secs,
        Area::Schedule,
        "Series of visits",
        &[],
        content,
    )
    .into_response();
    for v in &visits {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Appointment", Some(&v.id))
                .patient(&v.value.appointment.patient_id)
                .detail("series page"),
        );
    }
    if let Some(pt) = &patient {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&pt.id))
                .patient(&pt.id)
                .detail("series page"),
        );
    }
    response
}
