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

use super::patient_summary::{header, load};
use super::patients::today;
use super::registration::input_id;
use super::schedule::{
    Directory, TYPES_CSS, clock, day_href, done_href, error_summary, href, inline_error, local,
    same_field, short_day, when, zone_on,
};
use super::{CsrfForm, csrf_field, shell_with_styles};
use crate::audit::{AuditNote, note};
use crate::auth::{Principal, random_secret};
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_domain::patient_search::parse;
use carefront_domain::scheduling::{
    BookingRequest, FitIssue, Override, Refusal, Slot, SlotSearch, may_override, next_available,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    Actor, AppointmentDetails, BookAppointment, BookError, PatientHits, SlotFilter, StoreError,
};
use jiff::{Timestamp, ToSpan};
use maud::html;
use serde::Deserialize;

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
    let show_override = lead
        && (matches!(v.problem, Some(Problem::Taken | Problem::NeedsOverride(_)))
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
    let start_here = v.errors.is_empty() && !taken;
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
        (error_summary("form-errors", v.errors, anchor))
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
    // Check the time now, so the desk learns before typing that it is gone.
    let problem = if kind.is_empty() {
        None
    } else {
        let request = BookingRequest {
            practitioner_id: q.provider.clone(),
            location_id: q.location.clone(),
            start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        };
        match state
            .db
            .evaluate_booking(&p.org_id, &kind, &request, Timestamp::now())
            .await
        {
            Ok(Ok(e)) if e.fits() => None,
            Ok(Ok(e)) => Some(Problem::from_refusal(Refusal::NeedsOverride(e.issues))),
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
            errors: &ValidationErrors::new(),
            patient: patient.as_ref(),
            q: typed,
            hits: hits.as_ref(),
            problem,
            alternatives: &alternatives,
            attempted: false,
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
    let view = |status, errors, problem, alternatives| View {
        status,
        form: &form,
        errors,
        patient: patient.as_ref(),
        q: "",
        hits: None,
        problem,
        alternatives,
        attempted: true,
    };
    let (Some(start), Some(details), true) = (start, details, errors.is_empty()) else {
        let mut r = render(
            &state,
            &p,
            &dir,
            view(StatusCode::UNPROCESSABLE_ENTITY, &errors, None, &[]),
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
    let result = state
        .db
        .book(&p.org_id, &booking, &actor, Timestamp::now())
        .await;
    let mut errors = ValidationErrors::new();
    let (status, problem) = match result {
        Ok(booked) => {
            return Redirect::to(&done_href(
                &dir,
                &booked.appointment.value.appointment,
                "booked",
            ))
            .into_response();
        }
        Err(BookError::Refused(r)) => match Problem::from_refusal(r) {
            Problem::Taken => (StatusCode::CONFLICT, Some(Problem::Taken)),
            Problem::NeedsOverride(issues) => {
                let text = issues_text(&issues);
                if may_override(p.role) {
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
        Err(BookError::Store(StoreError::Invalid(found))) => {
            for fe in found.errors() {
                errors.add(fe.field.clone(), fe.message.clone());
            }
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(BookError::Store(StoreError::Conflict(message))) if message.contains("idempotency") => {
            errors.add(
                "idempotency_key",
                "was already used: this form booked an appointment before; open the schedule to see it, or reload this page to book again",
            );
            (StatusCode::CONFLICT, None)
        }
        Err(BookError::Store(StoreError::Conflict(_))) => {
            (StatusCode::CONFLICT, Some(Problem::Taken))
        }
        Err(BookError::Store(StoreError::NotFound)) => {
            errors.add("appointment_type_id", "is not a known appointment type");
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(BookError::Store(e)) => return ops::internal_error(e),
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
        view(status, &errors, problem, &alternatives),
    );
    audit_shown(&mut r, patient.as_ref(), None);
    r
}

/// The field a refusal is about, and what to say there.
pub fn refusal_error(r: &Refusal) -> (&'static str, String) {
    match r {
        Refusal::UnknownPractitioner(_) => ("practitioner_id", "is not on this schedule".into()),
        Refusal::NotOffered => (
            "appointment_type_id",
            "is not offered by this provider".into(),
        ),
        Refusal::WrongPatientKind(kind) => {
            ("appointment_type_id", format!("is for {kind} patients"))
        }
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
