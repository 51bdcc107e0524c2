//! One appointment: its page (time, place, patient, status in words, the
//! reason, a lead's override, the history of changes) and what the desk does
//! with it: mark the patient arrived or a no-show, cancel with a reason
//! (FHIR's cancellation-reason codes), reschedule to another free time.
//! Each change goes through the store's one-transaction writes (status
//! machine, claims, waitlist offer, audit) and lands on the day view with a
//! notice.

use super::booking::refusal_error;
use super::patient_summary::header;
use super::patients::today;
use super::registration::input_id;
use super::schedule::{
    ALL, Directory, TYPES_CSS, actor, cancel_reasons, clock, day_href, done_href, error_summary,
    inline_error, local, long_day, parse_date, same_field, sentence, status_text, today_in,
    type_class, when, zone_on,
};
use super::{CsrfForm, csrf_field, error_page, local_time, shell_with_styles};
use crate::audit::{AuditNote, note};
use crate::auth::{Principal, random_secret};
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::Action;
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{
    AppointmentStatus, CancelReason, EARLIEST_ARRIVAL, PatientEligibility, Preferences, Refusal,
    Slot, SlotSearch, next_available,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    AppointmentQuery, AppointmentRecord, BookError, HistoryEntry, RescheduleTo, SlotFilter,
    StoreError,
};
use jiff::{Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// Free times listed for a reschedule.
const RESCHEDULE_CHOICES: usize = 30;
/// How far ahead a reschedule looks from its start date.
const RESCHEDULE_DAYS: i64 = 28;

async fn load_appointment(
    state: &AppState,
    org_id: &str,
    id: &str,
) -> Result<Versioned<AppointmentRecord>, Response> {
    match state.db.get::<AppointmentRecord>(org_id, id).await {
        Ok(a) => Ok(a),
        Err(StoreError::NotFound) => Err(error_page(
            StatusCode::NOT_FOUND,
            "Appointment not found",
            "There is no appointment at this address. Open the schedule instead.",
        )),
        Err(StoreError::Gone) => Err(error_page(
            StatusCode::GONE,
            "Appointment deleted",
            "This appointment was deleted. Its history is kept for the audit trail.",
        )),
        Err(e) => Err(ops::internal_error(e)),
    }
}

async fn load_patient(state: &AppState, org_id: &str, id: &str) -> Option<Versioned<Patient>> {
    state.db.get::<Patient>(org_id, id).await.ok()
}

fn read_note(a: &AppointmentRecord, detail: &str) -> AuditNote {
    AuditNote::new(Action::Read, "Appointment", Some(&a.appointment.id))
        .patient(&a.appointment.patient_id)
        .detail(detail)
}

/// The appointment's facts, shared by its page and the reschedule page.
fn facts(dir: &Directory, r: &AppointmentRecord) -> Markup {
    let a = &r.appointment;
    let tz = dir.tz(&a.location_id);
    html! {
        dl.kv.appt-facts {
            dt { "When" } dd { (when(&tz, a.start, a.end)) }
            dt { "Time zone" } dd { (zone_on(&tz, local(&tz, a.start).date())) }
            dt { "Type" } dd { span.entry-type.(type_class(&a.appointment_type_id)) { (dir.type_name(&a.appointment_type_id)) } }
            dt { "Provider" } dd { (dir.provider_name(&a.practitioner_id)) }
            dt { "Location" } dd { (dir.location_name(&a.location_id)) }
            dt { "Status" } dd { strong.appt-status { (status_text(a, &tz)) } }
            @if let Some(reason) = &r.reason_for_visit { dt { "Reason for visit" } dd { (reason) } }
            @if let Some(n) = &r.notes { dt { "Notes" } dd.pre { (n) } }
            @if let Some(o) = &a.override_reason { dt { "Override" } dd { "Booked past the schedule: " (o) } }
        }
    }
}

/// What went wrong with a change, shown on the appointment's page.
struct Trouble<'a> {
    status: StatusCode,
    errors: &'a ValidationErrors,
    /// A sentence above the forms (a change made meanwhile).
    message: Option<String>,
    /// The cancellation reason picked before the error, kept.
    picked_reason: &'a str,
}

async fn render_page(
    state: &AppState,
    p: &Principal,
    current: &Versioned<AppointmentRecord>,
    trouble: Option<Trouble<'_>>,
) -> Response {
    let dir = match Directory::load(state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let r = &current.value;
    let a = &r.appointment;
    let patient = load_patient(state, &p.org_id, &a.patient_id).await;
    let history = match state
        .db
        .history::<AppointmentRecord>(&p.org_id, &a.id)
        .await
    {
        Ok(h) => h,
        Err(e) => return ops::internal_error(e),
    };
    let users: HashMap<String, String> = match state.db.users(&p.org_id).await {
        Ok(list) => list
            .into_iter()
            .map(|u| (u.username, u.display_name))
            .collect(),
        Err(e) => return ops::internal_error(e),
    };
    let who = |username: &str| match users.get(username) {
        Some(name) => format!("{name} ({username})"),
        None => username.to_string(),
    };
    // The appointment this one moved to, if it was rescheduled.
    let moved_to = if a.cancel_reason == Some(CancelReason::Rescheduled) {
        let query = AppointmentQuery {
            patient_id: Some(a.patient_id.clone()),
            ..AppointmentQuery::default()
        };
        match state.db.appointments(&p.org_id, &query, ALL).await {
            Ok((list, _)) => list
                .into_iter()
                .find(|n| n.value.appointment.rescheduled_from.as_deref() == Some(a.id.as_str())),
            Err(e) => return ops::internal_error(e),
        }
    } else {
        None
    };
    let tz = dir.tz(&a.location_id);
    let now = Timestamp::now();
    let can_change = p.role.may(Area::Scheduling);
    let status = a.status;
    let booked = status == AppointmentStatus::Booked;
    let arrival_opens = a.start.checked_sub(EARLIEST_ARRIVAL).unwrap_or(a.start);
    let may_arrive = matches!(
        status,
        AppointmentStatus::Booked | AppointmentStatus::NoShow
    ) && now >= arrival_opens;
    let may_no_show = booked && now >= a.start;
    let movable = matches!(
        status,
        AppointmentStatus::Booked | AppointmentStatus::Pending | AppointmentStatus::Proposed
    );
    let none = ValidationErrors::new();
    let (status_code, errors, message, picked) = match &trouble {
        Some(t) => (t.status, t.errors, t.message.clone(), t.picked_reason),
        None => (StatusCode::OK, &none, None, ""),
    };
    let (reason_invalid, reason_error, reason_block) =
        inline_error(errors, "cancel_reason", same_field);
    let patient_name = patient.as_ref().map_or_else(
        || "Unknown patient".to_string(),
        |pt| pt.value.display_name(),
    );
    let back = day_href(&a.location_id, local(&tz, a.start).date());
    let content = html! {
        @if let Some(pt) = &patient { (header(pt, today())) }
        @if let Some(m) = &message {
            div.error.conflict role="alert" tabindex="-1" autofocus { p { (m) } }
        }
        (error_summary("form-errors", errors, same_field))
        div.appt-page {
            section.card aria-labelledby="appt-facts" {
                h2 #appt-facts { "Appointment" }
                (facts(&dir, r))
                @if let Some(from) = &a.rescheduled_from {
                    p { "Moved here from " a href=(format!("/appointments/{from}")) { "an earlier appointment" } "." }
                }
                @if let Some(n) = &moved_to {
                    @let na = &n.value.appointment;
                    @let ntz = dir.tz(&na.location_id);
                    p { "Moved to " a href=(format!("/appointments/{}", n.id)) { (when(&ntz, na.start, na.end)) } "." }
                }
                p {
                    a href=(back) { "Show this day on the schedule" }
                    @if let Some(pt) = &patient { " · " a href=(format!("/patients/{}", pt.id)) { "Patient summary" } }
                }
            }
            @if can_change && (may_arrive || movable || status == AppointmentStatus::NoShow) {
                section.card #appointment-actions aria-labelledby="appt-actions" tabindex="-1" {
                    h2 #appt-actions { "Change" }
                    div.actions {
                        @if may_arrive {
                            form.inline-action method="post" action=(format!("/appointments/{}/status", a.id)) {
                                (csrf_field(p))
                                input type="hidden" name="version" value=(current.version);
                                input type="hidden" name="status" value="arrived";
                                button type="submit" { @if status == AppointmentStatus::NoShow { "Mark arrived (late)" } @else { "Mark arrived" } }
                            }
                        }
                        @if may_no_show {
                            form.inline-action method="post" action=(format!("/appointments/{}/status", a.id)) {
                                (csrf_field(p))
                                input type="hidden" name="version" value=(current.version);
                                input type="hidden" name="status" value="noshow";
                                button.secondary type="submit" { "Mark no-show" }
                            }
                        }
                        @if movable {
                            a.button.secondary href=(format!("/appointments/{}/reschedule", a.id)) { "Reschedule…" }
                        }
                    }
                    @if booked && !may_arrive {
                        p.hint { "The patient can be marked arrived from " (clock(local(&tz, arrival_opens))) " on "
                            (long_day(local(&tz, arrival_opens).date())) ", and a no-show once the visit should have started." }
                    } @else if booked && !may_no_show {
                        p.hint { "A no-show can be marked once the visit should have started (" (clock(local(&tz, a.start))) ")." }
                    }
                    @if movable {
                        form.cancel-form method="post" action=(format!("/appointments/{}/cancel", a.id)) novalidate {
                            (csrf_field(p))
                            input type="hidden" name="version" value=(current.version);
                            div.field.invalid[reason_invalid.is_some()] {
                                label for=(input_id("cancel_reason")) { "Cancellation reason " span.req { "required" } }
                                select id=(input_id("cancel_reason")) name="cancel_reason" required
                                    aria-invalid=[reason_invalid] aria-describedby=[reason_error] {
                                    option value="" { "Choose…" }
                                    @for reason in cancel_reasons() {
                                        option value=(reason.code()) selected[reason.code() == picked] { (reason.label()) }
                                    }
                                }
                                (reason_block)
                            }
                            button.danger type="submit" { "Cancel appointment" }
                        }
                    }
                }
            }
            section.card aria-labelledby="appt-history" {
                h2 #appt-history { "History" }
                table.dense {
                    caption.visually-hidden { "Changes to this appointment, newest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "By" } th scope="col" { "Status" } } }
                    tbody {
                        @for h in &history {
                            tr {
                                td { (local_time(h.changed_at_us, &tz)) }
                                td { (who(&h.changed_by)) }
                                td { (history_status(h, &tz)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response = (
        status_code,
        shell_with_styles(
            p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            &format!("Appointment · {patient_name}"),
            &[TYPES_CSS],
            content,
        ),
    )
        .into_response();
    note(&mut response, read_note(r, "appointment page"));
    if let Some(pt) = &patient {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&pt.id))
                .patient(&pt.id)
                .detail("appointment page"),
        );
    }
    response
}

fn history_status(h: &HistoryEntry<AppointmentRecord>, tz: &jiff::tz::TimeZone) -> String {
    if h.deleted {
        "Deleted".into()
    } else {
        status_text(&h.value.appointment, tz)
    }
}

/// `GET /appointments/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let current = match load_appointment(&state, &p.org_id, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    render_page(&state, &p, &current, None).await
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    cancel_reason: String,
    #[serde(default)]
    version: String,
}

/// What a failed change answers: its page with the error.
async fn refused(
    state: &AppState,
    p: &Principal,
    id: &str,
    e: StoreError,
    picked: &str,
) -> Response {
    let current = match load_appointment(state, &p.org_id, id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (status, errors, message) = match e {
        // The status machine's refusal is about the whole appointment.
        StoreError::Invalid(v) if v.for_field("status").is_some() => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ValidationErrors::new(),
            v.for_field("status")
                .map(|m| format!("Nothing was changed: {m}.")),
        ),
        StoreError::Invalid(v) => (StatusCode::UNPROCESSABLE_ENTITY, v, None),
        StoreError::VersionConflict { .. } => (
            StatusCode::CONFLICT,
            ValidationErrors::new(),
            Some("Nothing was changed: someone else changed this appointment after you opened it. Here it is as it is now; decide again.".to_string()),
        ),
        StoreError::Conflict(m) => (
            StatusCode::CONFLICT,
            ValidationErrors::new(),
            Some(format!("Nothing was changed: {m}.")),
        ),
        other => return ops::internal_error(other),
    };
    render_page(
        state,
        p,
        &current,
        Some(Trouble {
            status,
            errors: &errors,
            message,
            picked_reason: picked,
        }),
    )
    .await
}

/// `POST /appointments/{id}/cancel`: with a reason; frees the time.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CancelForm>,
) -> Response {
    let current = match load_appointment(&state, &p.org_id, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(reason) = CancelReason::from_code(form.cancel_reason.trim())
        .filter(|r| *r != CancelReason::Rescheduled)
    else {
        let message = if form.cancel_reason.trim().is_empty() {
            "is required: choose why the appointment is cancelled"
        } else {
            "is not one of the listed reasons"
        };
        let errors = ValidationErrors::single("cancel_reason", message);
        return render_page(
            &state,
            &p,
            &current,
            Some(Trouble {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                errors: &errors,
                message: None,
                picked_reason: "",
            }),
        )
        .await;
    };
    let version = form.version.trim().parse().ok().or(Some(current.version));
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let change = tx
            .cancel_appointment(&id, reason, version, &actor(&p), Timestamp::now())
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(change)
    }
    .await;
    match result {
        Ok(change) => {
            let dir = match Directory::load(&state, &p.org_id).await {
                Ok(d) => d,
                Err(e) => return ops::internal_error(e),
            };
            Redirect::to(&done_href(
                &dir,
                &change.appointment.value.appointment,
                "cancelled",
            ))
            .into_response()
        }
        Err(e) => refused(&state, &p, &id, e, reason.code()).await,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    version: String,
}

/// `POST /appointments/{id}/status`: arrived or no-show.
pub async fn set_status(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Response {
    let current = match load_appointment(&state, &p.org_id, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (to, done) = match form.status.trim() {
        "arrived" => (AppointmentStatus::Arrived, "arrived"),
        "noshow" => (AppointmentStatus::NoShow, "noshow"),
        _ => {
            let errors = ValidationErrors::single(
                "status",
                "must be arrived or no-show: use the buttons on this page",
            );
            return render_page(
                &state,
                &p,
                &current,
                Some(Trouble {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    errors: &errors,
                    message: None,
                    picked_reason: "",
                }),
            )
            .await;
        }
    };
    let version = form.version.trim().parse().ok().or(Some(current.version));
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let change = tx
            .set_appointment_status(&id, to, None, version, &actor(&p), Timestamp::now())
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(change)
    }
    .await;
    match result {
        Ok(change) => {
            let dir = match Directory::load(&state, &p.org_id).await {
                Ok(d) => d,
                Err(e) => return ops::internal_error(e),
            };
            Redirect::to(&done_href(
                &dir,
                &change.appointment.value.appointment,
                done,
            ))
            .into_response()
        }
        Err(e) => refused(&state, &p, &id, e, "").await,
    }
}

// ---------------------------------------------------------------- reschedule

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RescheduleQuery {
    /// First day to look at (the location's local date).
    #[serde(default)]
    from: String,
    /// `same` (default), `any` or a provider id.
    #[serde(default)]
    provider: String,
    /// `same` (default), `any` or a location id.
    #[serde(default)]
    location: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct RescheduleForm {
    /// `start|provider|location` of the chosen free time.
    #[serde(default)]
    slot: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
}

fn slot_value(s: &Slot) -> String {
    format!("{}|{}|{}", s.start, s.practitioner_id, s.location_id)
}

fn parse_slot(v: &str) -> Option<(Timestamp, String, String)> {
    let mut parts = v.trim().split('|');
    let start = parts.next()?.parse().ok()?;
    let provider = parts.next()?.to_string();
    let location = parts.next()?.to_string();
    (parts.next().is_none() && !provider.is_empty() && !location.is_empty())
        .then_some((start, provider, location))
}

/// The free times of the appointment's type the reschedule page offers.
async fn reschedule_choices(
    state: &AppState,
    org_id: &str,
    dir: &Directory,
    a: &carefront_domain::scheduling::Appointment,
    q: &RescheduleQuery,
) -> Result<Vec<Slot>, Response> {
    let provider = match q.provider.as_str() {
        "" | "same" => Some(a.practitioner_id.clone()),
        "any" => None,
        id => Some(id.to_string()),
    };
    let location = match q.location.as_str() {
        "" | "same" => Some(a.location_id.clone()),
        "any" => None,
        id => Some(id.to_string()),
    };
    let tz = dir.tz(location.as_deref().unwrap_or(&a.location_id));
    let now = Timestamp::now();
    let from_date = parse_date(&q.from).unwrap_or_else(|| today_in(&tz));
    let from = super::schedule::day_bounds(&tz, from_date).0.max(now);
    let until = from
        .checked_add((RESCHEDULE_DAYS * 24).hours())
        .unwrap_or(from);
    let filter = SlotFilter {
        practitioner_ids: provider.clone().into_iter().collect(),
        location_ids: location.clone().into_iter().collect(),
    };
    let input = match state
        .db
        .slot_input(org_id, &a.appointment_type_id, &filter, from, until, now)
        .await
    {
        Ok(i) => i,
        Err(StoreError::NotFound) => return Ok(vec![]),
        Err(e) => return Err(ops::internal_error(e)),
    };
    let search = SlotSearch {
        preferences: Preferences {
            practitioner_ids: provider.into_iter().collect(),
            location_ids: location.into_iter().collect(),
            ..Preferences::default()
        },
        limit: RESCHEDULE_CHOICES,
        ..SlotSearch::default()
    };
    next_available(&input, &search).map_err(ops::internal_error)
}

struct RescheduleView<'a> {
    status: StatusCode,
    q: &'a RescheduleQuery,
    errors: &'a ValidationErrors,
    message: Option<String>,
    idempotency_key: &'a str,
}

async fn render_reschedule(
    state: &AppState,
    p: &Principal,
    current: &Versioned<AppointmentRecord>,
    v: RescheduleView<'_>,
) -> Response {
    let dir = match Directory::load(state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let r = &current.value;
    let a = &r.appointment;
    let patient = load_patient(state, &p.org_id, &a.patient_id).await;
    let choices = match reschedule_choices(state, &p.org_id, &dir, a, v.q).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    // The type no longer suiting the patient (new or established) refuses
    // every time: say so before a time is chosen.
    let unsuitable = match dir.kind(&a.appointment_type_id) {
        Some(k) if v.message.is_none() && k.eligibility != PatientEligibility::Any => {
            match state
                .db
                .patient_established(&p.org_id, &a.patient_id, Timestamp::now())
                .await
            {
                Ok(e) if !k.accepts_patient(e) => {
                    let type_is_for = if e { "new" } else { "established" };
                    let (field, message) = refusal_error(&Refusal::WrongPatientKind(type_is_for));
                    Some(sentence(field, &message))
                }
                Ok(_) => None,
                Err(e) => return ops::internal_error(e),
            }
        }
        _ => None,
    };
    let tz = dir.tz(&a.location_id);
    let from_date = parse_date(&v.q.from).unwrap_or_else(|| today_in(&tz));
    let offering: Vec<String> = {
        let kind = dir.kind(&a.appointment_type_id);
        dir.practitioners
            .iter()
            .filter(|pr| pr.value.active)
            .filter(|pr| kind.is_some_and(|k| k.offered_by(&pr.id, &dir.specialties_of(&pr.id))))
            .map(|pr| pr.id.clone())
            .collect()
    };
    let (slot_invalid, slot_error, slot_block) = inline_error(v.errors, "slot", same_field);
    let mut by_day: Vec<(jiff::civil::Date, Vec<&Slot>)> = Vec::new();
    for s in &choices {
        let d = s.local_start.date();
        match by_day.last_mut() {
            Some((day, list)) if *day == d => list.push(s),
            _ => by_day.push((d, vec![s])),
        }
    }
    let patient_name = patient.as_ref().map_or_else(
        || "Unknown patient".to_string(),
        |pt| pt.value.display_name(),
    );
    let provider_sel = if v.q.provider.is_empty() {
        "same"
    } else {
        v.q.provider.as_str()
    };
    let location_sel = if v.q.location.is_empty() {
        "same"
    } else {
        v.q.location.as_str()
    };
    let content = html! {
        @if let Some(pt) = &patient { (header(pt, today())) }
        @if let Some(m) = &v.message {
            div.error.conflict #conflict role="alert" tabindex="-1" autofocus { p { (m) } }
        }
        @if let Some(why) = &unsuitable {
            div.notice.warn #unsuitable role="note" {
                p { strong { "This appointment cannot be moved as it is: " } (why) "." }
                p { "To give the patient another type, cancel this appointment and book a new one." }
            }
        }
        (error_summary("form-errors", v.errors, same_field))
        section.card aria-labelledby="now-title" {
            h2 #now-title { "Now booked" }
            (facts(&dir, r))
        }
        h2 { "Choose the new time" }
        form.filters method="get" action=(format!("/appointments/{}/reschedule", a.id)) {
            div.field {
                label for="r-from" { "From" }
                input #r-from type="date" name="from" value=(from_date.to_string());
            }
            div.field {
                label for="r-provider" { "Provider" }
                select #r-provider name="provider" {
                    option value="same" selected[provider_sel == "same"] { "Same provider (" (dir.provider_name(&a.practitioner_id)) ")" }
                    option value="any" selected[provider_sel == "any"] { "Any provider who offers this type" }
                    @for id in offering.iter().filter(|id| **id != a.practitioner_id) {
                        option value=(id) selected[provider_sel == id] { (dir.provider_name(id)) }
                    }
                }
            }
            div.field {
                label for="r-location" { "Location" }
                select #r-location name="location" {
                    option value="same" selected[location_sel == "same"] { "Same location (" (dir.location_name(&a.location_id)) ")" }
                    option value="any" selected[location_sel == "any"] { "Any location" }
                    @for l in dir.active_locations().filter(|l| l.id != a.location_id) {
                        option value=(l.id) selected[location_sel == l.id] { (l.value.name) }
                    }
                }
            }
            button.secondary type="submit" { "Show free times" }
        }
        form #reschedule-form method="post" action=(format!("/appointments/{}/reschedule", a.id)) novalidate {
            (csrf_field(p))
            input type="hidden" name="version" value=(current.version);
            input type="hidden" name="idempotency_key" value=(v.idempotency_key);
            input type="hidden" name="from" value=(v.q.from);
            input type="hidden" name="provider" value=(v.q.provider);
            input type="hidden" name="location" value=(v.q.location);
            @if choices.is_empty() {
                p.empty { "No free time of this type in the " (RESCHEDULE_DAYS) " days from " (long_day(from_date)) ". Look from a later date or widen the provider and location." }
            } @else {
                fieldset.slot-choices.invalid[slot_invalid.is_some()] aria-describedby=[slot_error] {
                    legend { "Free times for a " (dir.type_name(&a.appointment_type_id)) ", earliest first" }
                    (slot_block)
                    @for (i, (day, slots)) in by_day.iter().enumerate() {
                        div.slot-day {
                            h3 { (long_day(*day)) }
                            @for (j, s) in slots.iter().enumerate() {
                                @let id = if i == 0 && j == 0 { input_id("slot") } else { format!("{}-{i}-{j}", input_id("slot")) };
                                @let stz = dir.tz(&s.location_id);
                                div.tick {
                                    input type="radio" id=(id) name="slot" value=(slot_value(s));
                                    label for=(id) {
                                        (clock(s.local_start)) " " (super::schedule::abbreviation(&stz, s.start))
                                        " · " (dir.provider_name(&s.practitioner_id))
                                        @if s.location_id != a.location_id { " · " (dir.location_name(&s.location_id)) }
                                    }
                                }
                            }
                        }
                    }
                }
                div.form-actions {
                    button type="submit" { "Move appointment" }
                    a href=(format!("/appointments/{}", a.id)) { "Keep the current time" }
                }
            }
        }
    };
    let mut response = (
        v.status,
        shell_with_styles(
            p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            &format!("Reschedule · {patient_name}"),
            &[TYPES_CSS],
            content,
        ),
    )
        .into_response();
    note(&mut response, read_note(r, "reschedule page"));
    response
}

/// `GET /appointments/{id}/reschedule`: free times to move to.
pub async fn reschedule_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<RescheduleQuery>,
) -> Response {
    let current = match load_appointment(&state, &p.org_id, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let key = random_secret();
    render_reschedule(
        &state,
        &p,
        &current,
        RescheduleView {
            status: StatusCode::OK,
            q: &q,
            errors: &ValidationErrors::new(),
            message: None,
            idempotency_key: &key,
        },
    )
    .await
}

/// `POST /appointments/{id}/reschedule`: moves it (the old one is kept,
/// cancelled as rescheduled, linked to the new one).
pub async fn reschedule(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RescheduleForm>,
) -> Response {
    let current = match load_appointment(&state, &p.org_id, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = RescheduleQuery {
        from: form.from.clone(),
        provider: form.provider.clone(),
        location: form.location.clone(),
    };
    let key = if form.idempotency_key.trim().is_empty() {
        random_secret()
    } else {
        form.idempotency_key.trim().to_string()
    };
    let again = |status, errors, message| RescheduleView {
        status,
        q: &q,
        errors,
        message,
        idempotency_key: &key,
    };
    let Some((start, provider, location)) = parse_slot(&form.slot) else {
        let errors = ValidationErrors::single("slot", "is required: choose one of the free times");
        return render_reschedule(
            &state,
            &p,
            &current,
            again(StatusCode::UNPROCESSABLE_ENTITY, &errors, None),
        )
        .await;
    };
    let to = RescheduleTo {
        start,
        practitioner_id: Some(provider),
        location_id: Some(location),
        resource_id: None,
        lead_override: None,
        idempotency_key: Some(key.clone()),
    };
    let version = form.version.trim().parse().ok().or(Some(current.version));
    let result = state
        .db
        .reschedule(&p.org_id, &id, &to, version, &actor(&p), Timestamp::now())
        .await;
    let none = ValidationErrors::new();
    match result {
        Ok(done) => {
            let dir = match Directory::load(&state, &p.org_id).await {
                Ok(d) => d,
                Err(e) => return ops::internal_error(e),
            };
            Redirect::to(&done_href(&dir, &done.new.value.appointment, "rescheduled"))
                .into_response()
        }
        Err(BookError::Refused(r @ Refusal::WrongPatientKind(_))) => {
            // Not the time: the appointment's type no longer suits the
            // patient (new or established), whichever time is chosen.
            let (field, message) = refusal_error(&r);
            let message = format!(
                "Nothing was changed: {}. To give the patient another type, cancel this \
                 appointment and book a new one.",
                sentence(field, &message)
            );
            render_reschedule(
                &state,
                &p,
                &current,
                again(StatusCode::UNPROCESSABLE_ENTITY, &none, Some(message)),
            )
            .await
        }
        Err(BookError::Refused(r)) => {
            let (_, message) = refusal_error(&r);
            let errors = ValidationErrors::single(
                "slot",
                format!("cannot be taken: {}", message.trim_start_matches("is ")),
            );
            render_reschedule(
                &state,
                &p,
                &current,
                again(
                    StatusCode::CONFLICT,
                    &errors,
                    Some(
                        "Nothing was changed: that time is no longer free. Choose another one."
                            .into(),
                    ),
                ),
            )
            .await
        }
        Err(BookError::Store(StoreError::Invalid(errors))) => {
            let message = errors
                .for_field("status")
                .map(|m| format!("Nothing was changed: {m}."));
            render_reschedule(
                &state,
                &p,
                &current,
                again(StatusCode::UNPROCESSABLE_ENTITY, &errors, message),
            )
            .await
        }
        Err(BookError::Store(StoreError::VersionConflict { .. })) => {
            let latest = match load_appointment(&state, &p.org_id, &id).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            render_reschedule(
                &state,
                &p,
                &latest,
                again(StatusCode::CONFLICT, &none, Some("Nothing was changed: someone else changed this appointment after you opened it. Here it is as it is now.".into())),
            )
            .await
        }
        Err(BookError::Store(StoreError::Conflict(m))) => {
            render_reschedule(
                &state,
                &p,
                &current,
                again(
                    StatusCode::CONFLICT,
                    &none,
                    Some(format!("Nothing was changed: {m}. Choose another time.")),
                ),
            )
            .await
        }
        Err(BookError::Store(e)) => ops::internal_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_values_round_trip() {
        let start: Timestamp = "2026-03-10T14:20:00Z".parse().unwrap();
        let (s, p, l) = parse_slot(&format!("{start}|dr-1|loc-1")).unwrap();
        assert_eq!((s, p.as_str(), l.as_str()), (start, "dr-1", "loc-1"));
        assert!(parse_slot("").is_none());
        assert!(parse_slot("2026-03-10T14:20:00Z|dr").is_none());
        assert!(parse_slot("soon|dr|loc").is_none());
    }
}
