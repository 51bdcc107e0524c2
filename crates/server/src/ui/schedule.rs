//! The appointment book: the day view of a location (one column per
//! provider, rows of local time), the week view of one provider, the
//! waitlist panel, and what the scheduling pages share (the directory they
//! read names from, local-time formatting, the type colours, field errors).
//!
//! Times are shown in the location's IANA zone, named on the page. Free
//! slots come from the domain (`free_slots` over the store's `SlotInput`),
//! one computation per appointment type; a slot is a link to the booking
//! page (`ui::booking`) for those who may book (`Area::Scheduling`).
//! Appointment cards carry their type's colour (from `/schedule/types.css`,
//! so the page needs no inline style under the CSP) and say their status in
//! words.

use super::patient_summary::us_date;
use super::registration::input_id;
use super::{csrf_field, shell_with_styles};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::{Location, Practitioner, PractitionerRole, Specialty, Versioned};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, CancelReason, PartOfDay, Preferences, Slot,
    WaitlistEntry, free_slots, may_override,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    Actor, AppointmentQuery, AppointmentRecord, Page, SlotFilter, StoreError, TaskStatus,
};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

pub const ALL: Page = Page {
    offset: 0,
    count: 1000,
};

/// The stylesheet with one rule per appointment type's colour.
pub const TYPES_CSS: &str = "/schedule/types.css";

/// Rows of the day and week grids, in minutes.
const ROW_MINUTES: i32 = 15;

// ---------------------------------------------------------------- directory

/// The names the scheduling pages show: locations, providers, their roles
/// and the appointment types (inactive ones too, for old appointments).
pub struct Directory {
    pub locations: Vec<Versioned<Location>>,
    pub practitioners: Vec<Versioned<Practitioner>>,
    pub roles: Vec<Versioned<PractitionerRole>>,
    pub types: Vec<Versioned<AppointmentType>>,
}

impl Directory {
    pub async fn load(state: &AppState, org_id: &str) -> Result<Directory, StoreError> {
        let db = &state.db;
        let (mut locations, _) = db.search::<Location>(org_id, &[], ALL).await?;
        locations.sort_by(|a, b| a.value.name.cmp(&b.value.name));
        let (mut practitioners, _) = db.search::<Practitioner>(org_id, &[], ALL).await?;
        practitioners.sort_by(|a, b| {
            (&a.value.family, &a.value.given).cmp(&(&b.value.family, &b.value.given))
        });
        let (roles, _) = db.search::<PractitionerRole>(org_id, &[], ALL).await?;
        let types = db.appointment_types(org_id, true).await?;
        Ok(Directory {
            locations,
            practitioners,
            roles,
            types,
        })
    }

    pub fn location(&self, id: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.id == id).map(|l| &l.value)
    }

    pub fn location_name(&self, id: &str) -> String {
        self.location(id)
            .map_or_else(|| "Unknown location".to_string(), |l| l.name.clone())
    }

    /// The location's zone (UTC only for a location that is not there).
    pub fn tz(&self, location_id: &str) -> TimeZone {
        self.location(location_id)
            .and_then(|l| TimeZone::get(&l.timezone).ok())
            .unwrap_or(TimeZone::UTC)
    }

    pub fn active_locations(&self) -> impl Iterator<Item = &Versioned<Location>> {
        self.locations.iter().filter(|l| l.value.active)
    }

    pub fn provider(&self, id: &str) -> Option<&Practitioner> {
        self.practitioners
            .iter()
            .find(|p| p.id == id)
            .map(|p| &p.value)
    }

    /// "Dr. Ana Reyes, MD".
    pub fn provider_name(&self, id: &str) -> String {
        match self.provider(id) {
            Some(p) => match &p.prefix {
                Some(prefix) => format!("{prefix} {}", p.display_name()),
                None => p.display_name(),
            },
            None => "Unknown provider".to_string(),
        }
    }

    pub fn kind(&self, id: &str) -> Option<&AppointmentType> {
        self.types.iter().find(|t| t.id == id).map(|t| &t.value)
    }

    pub fn type_name(&self, id: &str) -> String {
        self.kind(id)
            .map_or_else(|| "Unknown type".to_string(), |t| t.name.clone())
    }

    pub fn active_types(&self) -> impl Iterator<Item = &AppointmentType> {
        self.types.iter().map(|t| &t.value).filter(|t| t.active)
    }

    fn active_roles(&self) -> impl Iterator<Item = &PractitionerRole> {
        self.roles.iter().map(|r| &r.value).filter(|r| r.active)
    }

    /// Active providers with an active role at the location, by name.
    pub fn providers_at(&self, location_id: &str) -> Vec<&Versioned<Practitioner>> {
        self.practitioners
            .iter()
            .filter(|p| p.value.active)
            .filter(|p| {
                self.active_roles()
                    .any(|r| r.practitioner_id == p.id && r.location_id == location_id)
            })
            .collect()
    }

    /// The locations a provider works at, in the directory's order.
    pub fn locations_of(&self, practitioner_id: &str) -> Vec<&Versioned<Location>> {
        self.locations
            .iter()
            .filter(|l| {
                self.active_roles()
                    .any(|r| r.practitioner_id == practitioner_id && r.location_id == l.id)
            })
            .collect()
    }

    pub fn specialties_of(&self, practitioner_id: &str) -> Vec<String> {
        let mut s: Vec<String> = self
            .active_roles()
            .filter(|r| r.practitioner_id == practitioner_id)
            .map(|r| r.specialty.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// The provider's specialties as words ("Dermatology").
    pub fn specialty_names(&self, practitioner_id: &str) -> String {
        self.specialties_of(practitioner_id)
            .iter()
            .filter_map(|c| Specialty::by_code(c))
            .map(|s| s.display)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The active types a provider offers, by name.
    pub fn types_offered_by(&self, practitioner_id: &str) -> Vec<&AppointmentType> {
        let specialties = self.specialties_of(practitioner_id);
        self.active_types()
            .filter(|t| t.offered_by(practitioner_id, &specialties))
            .collect()
    }
}

// ---------------------------------------------------------------- local time

/// "9:05 AM".
pub fn clock(dt: DateTime) -> String {
    dt.strftime("%-I:%M %p").to_string()
}

/// "Tuesday, March 10, 2026".
pub fn long_day(d: Date) -> String {
    d.strftime("%A, %B %-d, %Y").to_string()
}

/// "Tue 3/10".
pub fn short_day(d: Date) -> String {
    d.strftime("%a %-m/%-d").to_string()
}

pub fn local(tz: &TimeZone, at: Timestamp) -> DateTime {
    tz.to_datetime(at)
}

/// The zone's abbreviation at an instant ("EDT").
pub fn abbreviation(tz: &TimeZone, at: Timestamp) -> String {
    at.to_zoned(tz.clone()).strftime("%Z").to_string()
}

/// "America/New_York (EDT)".
pub fn zone_label(tz: &TimeZone, at: Timestamp) -> String {
    format!(
        "{} ({})",
        tz.iana_name().unwrap_or("UTC"),
        abbreviation(tz, at)
    )
}

/// The zone as it reads at noon on `date` ("America/New_York (EDT)").
pub fn zone_on(tz: &TimeZone, date: Date) -> String {
    match date.at(12, 0, 0, 0).to_zoned(tz.clone()) {
        Ok(z) => zone_label(tz, z.timestamp()),
        Err(_) => tz.iana_name().unwrap_or("UTC").to_string(),
    }
}

/// "9:20 AM–9:40 AM EDT".
pub fn time_range(tz: &TimeZone, start: Timestamp, end: Timestamp) -> String {
    let (s, e) = (local(tz, start), local(tz, end));
    format!("{}–{} {}", clock(s), clock(e), abbreviation(tz, start))
}

/// "Tuesday, March 10, 2026, 9:20–9:40 AM EDT".
pub fn when(tz: &TimeZone, start: Timestamp, end: Timestamp) -> String {
    format!(
        "{}, {}",
        long_day(local(tz, start).date()),
        time_range(tz, start, end)
    )
}

/// Today at the location.
pub fn today_in(tz: &TimeZone) -> Date {
    Timestamp::now().to_zoned(tz.clone()).date()
}

/// The instants a local day spans: `[midnight, next midnight)`.
pub fn day_bounds(tz: &TimeZone, date: Date) -> (Timestamp, Timestamp) {
    let start = date
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MIN);
    let end = date
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX);
    (start, end)
}

pub fn parse_date(text: &str) -> Option<Date> {
    text.trim().parse::<Date>().ok()
}

fn minute_of_day(dt: DateTime) -> i32 {
    i32::from(dt.hour()) * 60 + i32::from(dt.minute())
}

fn row_label(minute: i32) -> String {
    let dt = Date::constant(2000, 1, 1).at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
    clock(dt)
}

// ---------------------------------------------------------------- words

/// The status in words, with the arrival time or the cancellation reason.
pub fn status_text(a: &Appointment, tz: &TimeZone) -> String {
    use AppointmentStatus::*;
    match a.status {
        Booked => "Booked".into(),
        Pending => "Pending".into(),
        Proposed => "Proposed".into(),
        Waitlist => "On the waitlist".into(),
        Arrived => match a.arrived_at {
            Some(t) => format!("Arrived {}", clock(local(tz, t))),
            None => "Arrived".into(),
        },
        CheckedIn => "Checked in".into(),
        Fulfilled => "Seen".into(),
        NoShow => "No-show".into(),
        EnteredInError => "Entered in error".into(),
        Cancelled => match a.cancel_reason {
            Some(CancelReason::Rescheduled) => "Rescheduled".into(),
            Some(r) => format!("Cancelled: {}", r.label()),
            None => "Cancelled".into(),
        },
    }
}

/// The cancellation reasons the desk picks from (rescheduling cancels by
/// itself).
pub fn cancel_reasons() -> impl Iterator<Item = CancelReason> {
    CancelReason::ALL
        .into_iter()
        .filter(|r| *r != CancelReason::Rescheduled)
}

pub fn weekday_name(iso: u8) -> &'static str {
    match iso {
        1 => "Monday",
        2 => "Tuesday",
        3 => "Wednesday",
        4 => "Thursday",
        5 => "Friday",
        6 => "Saturday",
        _ => "Sunday",
    }
}

/// "Mondays and Wednesdays, mornings, at Main, with Dr. Reyes" or "any time".
pub fn preferences_text(dir: &Directory, prefs: &Preferences) -> String {
    let mut parts = Vec::new();
    if !prefs.weekdays.is_empty() {
        parts.push(
            prefs
                .weekdays
                .iter()
                .map(|w| format!("{}s", weekday_name(*w)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    match prefs.part_of_day {
        Some(PartOfDay::Morning) => parts.push("mornings".into()),
        Some(PartOfDay::Afternoon) => parts.push("afternoons".into()),
        None => {}
    }
    if !prefs.location_ids.is_empty() {
        let names: Vec<String> = prefs
            .location_ids
            .iter()
            .map(|l| dir.location_name(l))
            .collect();
        parts.push(format!("at {}", names.join(" or ")));
    }
    if !prefs.practitioner_ids.is_empty() {
        let names: Vec<String> = prefs
            .practitioner_ids
            .iter()
            .map(|p| dir.provider_name(p))
            .collect();
        parts.push(format!("with {}", names.join(" or ")));
    }
    if parts.is_empty() {
        "any time".into()
    } else {
        parts.join("; ")
    }
}

/// The CSS class that carries a type's colour (see [`types_css`]).
pub fn type_class(type_id: &str) -> String {
    let mut class = String::from("t-");
    class.extend(type_id.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    }));
    class
}

fn is_hex_colour(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 7 && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit)
}

/// `GET /schedule/types.css`: each appointment type's colour as a custom
/// property of its class, used by the cards and the legend.
pub async fn types_css(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let types = match state.db.appointment_types(&p.org_id, true).await {
        Ok(t) => t,
        Err(e) => return ops::internal_error(e),
    };
    let mut css = String::from("/* Appointment type colours. */\n");
    for t in &types {
        if is_hex_colour(&t.value.color) {
            css.push_str(&format!(
                ".{} {{ --type: {}; }}\n",
                type_class(&t.value.id),
                t.value.color
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

// ---------------------------------------------------------------- links

/// A URL with its query string.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    let q = s.finish();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

pub fn day_href(location_id: &str, date: Date) -> String {
    href(
        "/schedule",
        &[("location", location_id), ("date", &date.to_string())],
    )
}

/// The booking page for a slot, for a patient when one is chosen.
pub fn book_href(
    type_id: &str,
    practitioner_id: &str,
    location_id: &str,
    start: Timestamp,
    patient_id: Option<&str>,
) -> String {
    href(
        "/schedule/book",
        &[
            ("type", type_id),
            ("provider", practitioner_id),
            ("location", location_id),
            ("start", &start.to_string()),
            ("patient", patient_id.unwrap_or_default()),
        ],
    )
}

/// Where a changed appointment is shown: its day at its location, with a
/// notice of what was done.
pub fn done_href(dir: &Directory, a: &Appointment, done: &str) -> String {
    let date = local(&dir.tz(&a.location_id), a.start).date();
    href(
        "/schedule",
        &[
            ("location", &a.location_id),
            ("date", &date.to_string()),
            ("done", done),
            ("a", &a.id),
        ],
    )
}

/// Day, week and slot-finder links of every scheduling page.
pub fn subnav(current: &str, day: &str, week: &str) -> Markup {
    let items = [
        ("day", "Day", day),
        ("week", "Week", week),
        ("find", "Find a slot", "/schedule/find"),
    ];
    html! {
        nav.subnav aria-label="Schedule views" {
            ul {
                @for (key, label, link) in items {
                    li {
                        @if key == current {
                            a href=(link) aria-current="page" { (label) }
                        } @else {
                            a href=(link) { (label) }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- errors

/// How the error summary and the inline messages name a field.
pub fn field_label(field: &str) -> String {
    match field {
        "patient_id" | "patient" => "Patient",
        "appointment_type_id" | "type" => "Appointment type",
        "practitioner_id" | "provider" => "Provider",
        "location_id" | "location" => "Location",
        "start" => "Time",
        "slot" => "New time",
        "reason_for_visit" => "Reason for visit",
        "notes" => "Notes",
        "override_reason" => "Override reason",
        "cancel_reason" => "Cancellation reason",
        "status" => "Status",
        "version" => "Version",
        "idempotency_key" => "Form token",
        "from" => "From",
        "to" => "To",
        "specialty" => "Specialty",
        "weekday" => "Days of the week",
        "part" => "Time of day",
        f if f.starts_with("preferences.weekdays") => "Days of the week",
        f if f.starts_with("preferences.location_ids") => "Location",
        f if f.starts_with("preferences.practitioner_ids") => "Provider",
        other => other,
    }
    .to_string()
}

pub fn sentence(field: &str, message: &str) -> String {
    labelled_sentence(field_label, field, message)
}

fn labelled_sentence(label: fn(&str) -> String, field: &str, message: &str) -> String {
    format!("{} {message}", label(field))
}

/// The error summary at the top of a form: each error names its field and
/// links to its input. Takes the focus, so it is read first.
pub fn error_summary(id: &str, errors: &ValidationErrors, anchor: fn(&str) -> String) -> Markup {
    labelled_error_summary(id, errors, anchor, field_label)
}

/// [`error_summary`] for a form whose fields `label` names. An error whose
/// anchor is empty concerns the whole form (a stale version) and is not a
/// link.
pub fn labelled_error_summary(
    id: &str,
    errors: &ValidationErrors,
    anchor: fn(&str) -> String,
    label: fn(&str) -> String,
) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error id=(id) role="alert" tabindex="-1" autofocus {
                p { "Nothing was saved. Please correct:" }
                ul {
                    @for e in errors.errors() {
                        @let text = labelled_sentence(label, &e.field, &e.message);
                        @let to = anchor(&e.field);
                        li {
                            @if to.is_empty() { (text) } @else { a href=(format!("#{}", input_id(&to))) { (text) } }
                        }
                    }
                }
            }
        }
    }
}

/// The inline error of one input: (aria-invalid, the message's id, the
/// message).
pub fn inline_error(
    errors: &ValidationErrors,
    name: &str,
    anchor: fn(&str) -> String,
) -> (Option<&'static str>, Option<String>, Markup) {
    labelled_inline_error(errors, name, anchor, field_label)
}

/// [`inline_error`] for a form whose fields `label` names.
pub fn labelled_inline_error(
    errors: &ValidationErrors,
    name: &str,
    anchor: fn(&str) -> String,
    label: fn(&str) -> String,
) -> (Option<&'static str>, Option<String>, Markup) {
    let messages: Vec<String> = errors
        .errors()
        .iter()
        .filter(|e| anchor(&e.field) == name)
        .map(|e| format!("{}.", labelled_sentence(label, &e.field, &e.message)))
        .collect();
    if messages.is_empty() {
        return (None, None, html! {});
    }
    let id = format!("{}-error", input_id(name));
    let block = html! { p.field-error id=(id) { @for m in &messages { (m) " " } } };
    (Some("true"), Some(id), block)
}

/// Who a page's writes are by, for the store's history and audit (the
/// store names each event's action itself).
pub fn actor(p: &Principal) -> Actor {
    Actor::from(p.entry(Action::Update, Outcome::Success))
}

pub fn same_field(field: &str) -> String {
    field.to_string()
}

// ---------------------------------------------------------------- slots

/// Free slots of every active type (or only `only_type`) at a location in
/// `[from, until)`, for one provider when given.
pub async fn slots_at(
    state: &AppState,
    org_id: &str,
    dir: &Directory,
    location_id: &str,
    practitioner_id: Option<&str>,
    only_type: Option<&str>,
    (from, until): (Timestamp, Timestamp),
) -> Result<Vec<Slot>, Response> {
    let now = Timestamp::now();
    let filter = SlotFilter {
        practitioner_ids: practitioner_id.map(str::to_string).into_iter().collect(),
        location_ids: vec![location_id.to_string()],
    };
    let mut out = Vec::new();
    for kind in dir.active_types() {
        if only_type.is_some_and(|t| t != kind.id) {
            continue;
        }
        let input = state
            .db
            .slot_input(org_id, &kind.id, &filter, from, until, now)
            .await
            .map_err(ops::internal_error)?;
        out.extend(free_slots(&input).map_err(ops::internal_error)?);
    }
    Ok(out)
}

/// The patients of some records, by id.
pub async fn patients_by_id(
    state: &AppState,
    org_id: &str,
    ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, Patient>, Response> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    let found = state
        .db
        .get_many::<Patient>(org_id, &ids)
        .await
        .map_err(ops::internal_error)?;
    Ok(found.into_iter().map(|p| (p.id, p.value)).collect())
}

// ---------------------------------------------------------------- grid

/// One column of the grid: its heading and what starts in each row.
struct Column {
    header: Markup,
    cells: BTreeMap<i32, Vec<Markup>>,
}

impl Column {
    fn new(header: Markup) -> Self {
        Column {
            header,
            cells: BTreeMap::new(),
        }
    }

    fn put(&mut self, at: DateTime, item: Markup) {
        let m = minute_of_day(at);
        self.cells
            .entry(m - m.rem_euclid(ROW_MINUTES))
            .or_default()
            .push(item);
    }
}

/// A table with a row per quarter hour from 8 AM to 5 PM at least, widened
/// to whatever starts earlier or later.
fn grid(caption: &str, corner: &str, columns: &[Column]) -> Markup {
    let used = columns.iter().flat_map(|c| c.cells.keys().copied());
    let (mut first, mut last) = (8 * 60, 17 * 60);
    for m in used {
        first = first.min(m - m.rem_euclid(60));
        last = last.max(m + ROW_MINUTES);
    }
    html! {
        div.grid-scroll {
            table.day-grid {
                caption.visually-hidden { (caption) }
                thead { tr {
                    th scope="col" { (corner) }
                    @for c in columns { th scope="col" { (c.header) } }
                } }
                tbody {
                    @for m in (first..last).step_by(ROW_MINUTES as usize) {
                        tr.hour[m % 60 == 0] {
                            th scope="row" { (row_label(m)) }
                            @for c in columns {
                                td {
                                    @if let Some(items) = c.cells.get(&m) {
                                        @for item in items { (item) }
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

/// What a card needs besides the appointment.
pub struct CardContext<'a> {
    pub dir: &'a Directory,
    pub patients: &'a HashMap<String, Patient>,
    pub principal: &'a Principal,
    pub now: Timestamp,
    /// The appointment named by the page's notice.
    pub highlight: Option<&'a str>,
    /// Name the provider (the week view) or the location on the card.
    pub show_provider: bool,
}

/// An appointment as a card: the type's colour and name, the patient, the
/// time, the status in words, the reason, and a lead's override reason.
pub fn appointment_card(ctx: &CardContext, r: &AppointmentRecord) -> Markup {
    let a = &r.appointment;
    let tz = ctx.dir.tz(&a.location_id);
    let patient = ctx
        .patients
        .get(&a.patient_id)
        .map_or_else(|| "Unknown patient".to_string(), Patient::display_name);
    let holds = a.status.holds_time();
    let overbook = may_override(ctx.principal.role)
        && ctx.principal.role.may(Area::Scheduling)
        && holds
        && a.start > ctx.now;
    html! {
        article.appt.(type_class(&a.appointment_type_id)).(format!("status-{}", a.status.code()))
            .inactive[!holds].changed[ctx.highlight == Some(a.id.as_str())]
            id=(format!("appt-{}", a.id)) {
            a.appt-link href=(format!("/appointments/{}", a.id)) {
                span.appt-time { (time_range(&tz, a.start, a.end)) }
                " "
                strong.appt-patient { (patient) }
            }
            span.appt-type { (ctx.dir.type_name(&a.appointment_type_id)) }
            @if ctx.show_provider { span.appt-where { (ctx.dir.provider_name(&a.practitioner_id)) } }
            span.appt-status { (status_text(a, &tz)) }
            @if let Some(reason) = &r.reason_for_visit { span.appt-reason { (reason) } }
            @if let Some(o) = &a.override_reason { span.appt-override { "Override: " (o) } }
            @if overbook {
                a.appt-overbook href=(book_href(&a.appointment_type_id, &a.practitioner_id, &a.location_id, a.start, None)) {
                    "Overbook…" span.visually-hidden { " at " (clock(local(&tz, a.start))) " with " (ctx.dir.provider_name(&a.practitioner_id)) }
                }
            }
        }
    }
}

/// Free slots starting at one time for one provider: one link (to the
/// first type free then, or the chosen one), naming every type it suits.
fn slot_chip(dir: &Directory, slots: &[&Slot], can_book: bool, patient: Option<&str>) -> Markup {
    let s = slots[0];
    let time = clock(s.local_start);
    let names: Vec<String> = slots
        .iter()
        .map(|s| dir.type_name(&s.appointment_type_id))
        .collect();
    let overbook = slots.iter().all(|s| s.is_overbook());
    let label = if overbook { "Overbook" } else { "Free" };
    let context = format!(
        " {} with {} for {}",
        if overbook {
            "open for overbooking"
        } else {
            "free"
        },
        dir.provider_name(&s.practitioner_id),
        names.join(", ")
    );
    html! {
        @if can_book {
            a.slot.overbook[overbook] href=(book_href(&s.appointment_type_id, &s.practitioner_id, &s.location_id, s.start, patient))
                title=(names.join(", ")) {
                (time) " · " (label) span.visually-hidden { (context) ": book" }
            }
        } @else {
            span.slot.overbook[overbook] title=(names.join(", ")) { (time) " · " (label) span.visually-hidden { (context) } }
        }
    }
}

/// Puts each provider-and-start's free slots into the column `column_of`
/// names, as one chip.
fn put_slots(
    dir: &Directory,
    columns: &mut [Column],
    slots: &[Slot],
    column_of: impl Fn(&Slot) -> Option<usize>,
    can_book: bool,
    patient: Option<&str>,
) {
    let mut by_start: BTreeMap<(usize, Timestamp), Vec<&Slot>> = BTreeMap::new();
    for s in slots {
        if let Some(c) = column_of(s) {
            by_start.entry((c, s.start)).or_default().push(s);
        }
    }
    for ((c, _), mut group) in by_start {
        group.sort_by_key(|s| dir.type_name(&s.appointment_type_id));
        let at = group[0].local_start;
        columns[c].put(at, slot_chip(dir, &group, can_book, patient));
    }
}

/// The legend of the type colours shown.
fn legend(dir: &Directory, type_ids: &[String]) -> Markup {
    html! {
        @if !type_ids.is_empty() {
            ul.legend aria-label="Appointment types" {
                @for id in type_ids {
                    li.(type_class(id)) { span.swatch aria-hidden="true" {} (dir.type_name(id)) }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- day view

#[derive(Debug, Default, Deserialize)]
pub struct DayQuery {
    #[serde(default)]
    location: String,
    #[serde(default)]
    date: String,
    #[serde(default, rename = "type")]
    kind: String,
    /// What was just done (`booked`, `cancelled`, ...), with the appointment.
    #[serde(default)]
    done: String,
    #[serde(default)]
    a: String,
}

/// The notice after a change, naming the patient, time and provider.
fn done_notice(
    dir: &Directory,
    patients: &HashMap<String, Patient>,
    done: &str,
    r: Option<&AppointmentRecord>,
) -> Markup {
    let Some(r) = r else {
        return match done {
            "removed" => {
                html! { p.notice.done #done-notice role="status" tabindex="-1" autofocus { "Taken off the waitlist." } }
            }
            _ => html! {},
        };
    };
    let a = &r.appointment;
    let tz = dir.tz(&a.location_id);
    let who = patients
        .get(&a.patient_id)
        .map_or_else(|| "the patient".to_string(), Patient::display_name);
    let at = format!(
        "{} with {}",
        time_range(&tz, a.start, a.end),
        dir.provider_name(&a.practitioner_id)
    );
    let text = match done {
        "booked" => format!("Booked: {who}, {at}."),
        "rescheduled" => format!("Rescheduled: {who} is now booked {at}."),
        "cancelled" => format!(
            "Cancelled: {who}, {at} ({}). The time is free again.",
            a.cancel_reason.map_or("no reason", CancelReason::label)
        ),
        "arrived" => format!("Arrived: {who}, {at}."),
        "noshow" => format!("Marked as a no-show: {who}, {at}."),
        _ => return html! {},
    };
    html! {
        p.notice.done #done-notice role="status" tabindex="-1" autofocus {
            (text) " " a href=(format!("#appt-{}", a.id)) { "Show on the schedule" }
        }
    }
}

/// `GET /schedule`: a location's day.
pub async fn day(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<DayQuery>,
) -> Response {
    let dir = match Directory::load(&state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let location = dir
        .active_locations()
        .find(|l| l.id == q.location)
        .or_else(|| dir.active_locations().next());
    let Some(location) = location else {
        return shell_with_styles(
            &p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            "Schedule",
            &[],
            html! { p.empty { "The clinic has no active location yet: an administrator adds locations first." } },
        )
        .into_response();
    };
    let location_id = location.id.as_str();
    let tz = dir.tz(location_id);
    let today = today_in(&tz);
    let bad_date = !q.date.is_empty() && parse_date(&q.date).is_none();
    let date = parse_date(&q.date).unwrap_or(today);
    let bounds = day_bounds(&tz, date);
    let now = Timestamp::now();
    let only_type = dir.kind(&q.kind).map(|t| t.id.clone());

    let query = AppointmentQuery {
        location_id: Some(location_id.to_string()),
        from: Some(bounds.0),
        until: Some(bounds.1),
        ..AppointmentQuery::default()
    };
    let appointments: Vec<AppointmentRecord> =
        match state.db.appointments(&p.org_id, &query, ALL).await {
            Ok((list, _)) => list
                .into_iter()
                .map(|v| v.value)
                .filter(|r| r.appointment.status != AppointmentStatus::EnteredInError)
                .collect(),
            Err(e) => return ops::internal_error(e),
        };
    let slots = match slots_at(
        &state,
        &p.org_id,
        &dir,
        location_id,
        None,
        only_type.as_deref(),
        bounds,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let waitlist = match Waitlist::load(&state, &p.org_id, &dir, location_id, now).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let patients = match patients_by_id(
        &state,
        &p.org_id,
        appointments
            .iter()
            .map(|r| r.appointment.patient_id.clone())
            .chain(waitlist.patient_ids()),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };

    // Columns: the providers here, and anyone else booked here that day.
    let mut providers: Vec<String> = dir
        .providers_at(location_id)
        .iter()
        .map(|p| p.id.clone())
        .collect();
    for r in &appointments {
        if !providers.contains(&r.appointment.practitioner_id) {
            providers.push(r.appointment.practitioner_id.clone());
        }
    }
    let mut columns: Vec<Column> = providers
        .iter()
        .map(|id| {
            Column::new(html! {
                a href=(href("/schedule/week", &[("provider", id), ("location", location_id), ("date", &date.to_string())]))
                    title="Week view" { (dir.provider_name(id)) }
                span.col-sub { (dir.specialty_names(id)) }
            })
        })
        .collect();
    let can_book = p.role.may(Area::Scheduling);
    let ctx = CardContext {
        dir: &dir,
        patients: &patients,
        principal: &p,
        now,
        highlight: Some(q.a.as_str()).filter(|a| !a.is_empty()),
        show_provider: false,
    };
    for r in &appointments {
        if let Some(c) = providers
            .iter()
            .position(|id| *id == r.appointment.practitioner_id)
        {
            columns[c].put(local(&tz, r.appointment.start), appointment_card(&ctx, r));
        }
    }
    put_slots(
        &dir,
        &mut columns,
        &slots,
        |s| providers.iter().position(|id| *id == s.practitioner_id),
        can_book,
        None,
    );
    let mut shown_types: Vec<String> = appointments
        .iter()
        .map(|r| r.appointment.appointment_type_id.clone())
        .collect();
    shown_types.sort_by_key(|t| dir.type_name(t));
    shown_types.dedup();

    let day_link = |d: Date| {
        href(
            "/schedule",
            &[
                ("location", location_id),
                ("date", &d.to_string()),
                ("type", only_type.as_deref().unwrap_or_default()),
            ],
        )
    };
    let prev = date.yesterday().unwrap_or(date);
    let next = date.tomorrow().unwrap_or(date);
    let first_provider = providers.first().map(String::as_str).unwrap_or_default();
    let week = href(
        "/schedule/week",
        &[
            ("provider", first_provider),
            ("location", location_id),
            ("date", &date.to_string()),
        ],
    );
    let highlighted = appointments.iter().find(|r| r.appointment.id == q.a);
    let title = format!("Schedule · {}", location.value.name);
    let content = html! {
        (subnav("day", &day_link(date), &week))
        form.filters.toolbar method="get" action="/schedule" {
            (location_field("day", &dir, location_id))
            (date_field("day", date, bad_date.then_some(q.date.as_str())))
            div.field {
                label for="day-type" { "Free slots for" }
                select #day-type name="type" {
                    option value="" { "All types" }
                    @for t in dir.active_types() {
                        option value=(t.id) selected[only_type.as_deref() == Some(t.id.as_str())] { (t.name) " (" (t.duration_minutes) " min)" }
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
            @if can_book { a.button.push-right href="/schedule/find" { "Find a slot…" } }
        }
        h2 #day-title { (long_day(date)) }
        p.zone { "Times are local to " (location.value.name) ": " strong { (zone_on(&tz, date)) } "." }
        (done_notice(&dir, &patients, &q.done, highlighted))
        div.schedule-layout {
            section.schedule-main aria-labelledby="day-title" {
                @if providers.is_empty() {
                    p.empty { "No provider works at this location." }
                } @else {
                    (legend(&dir, &shown_types))
                    (grid(
                        &format!("Appointments and free slots at {} on {}, by provider", location.value.name, long_day(date)),
                        "Time",
                        &columns,
                    ))
                    @if slots.is_empty() {
                        p.muted { "No free slots this day"
                            @if let Some(t) = &only_type { " for " (dir.type_name(t)) }
                            ". Try another day or the slot finder." }
                    }
                }
            }
            (waitlist.panel(&dir, &patients, &p, &day_link(date)))
        }
    };
    let mut response = shell_with_styles(
        &p,
        state.config.idle_timeout_secs,
        Area::Schedule,
        &title,
        &[TYPES_CSS],
        content,
    )
    .into_response();
    for r in &appointments {
        let a = &r.appointment;
        note(
            &mut response,
            AuditNote::new(Action::Read, "Appointment", Some(&a.id))
                .patient(&a.patient_id)
                .detail("shown on the day view"),
        );
    }
    waitlist.audit(&mut response);
    response
}

// ---------------------------------------------------------------- week view

#[derive(Debug, Default, Deserialize)]
pub struct WeekQuery {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    date: String,
}

/// `GET /schedule/week`: one provider's week at one of their locations.
pub async fn week(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<WeekQuery>,
) -> Response {
    let dir = match Directory::load(&state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let Some(provider) = dir
        .practitioners
        .iter()
        .find(|pr| pr.id == q.provider && pr.value.active)
    else {
        // No provider named: choose one.
        let content = html! {
            (subnav("week", "/schedule", "/schedule/week"))
            h2 { "Choose a provider" }
            ul.plain.provider-list {
                @for pr in dir.practitioners.iter().filter(|pr| pr.value.active) {
                    li {
                        a href=(href("/schedule/week", &[("provider", &pr.id), ("date", &q.date)])) { (dir.provider_name(&pr.id)) }
                        " " span.muted { (dir.specialty_names(&pr.id)) }
                    }
                }
            }
        };
        return shell_with_styles(
            &p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            "Week",
            &[],
            content,
        )
        .into_response();
    };
    let provider_id = provider.id.as_str();
    let locations = dir.locations_of(provider_id);
    let Some(location) = locations
        .iter()
        .find(|l| l.id == q.location)
        .or_else(|| locations.first())
    else {
        let content = html! {
            (subnav("week", "/schedule", "/schedule/week"))
            p.empty { (dir.provider_name(provider_id)) " has no location to work at." }
        };
        return shell_with_styles(
            &p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            "Week",
            &[],
            content,
        )
        .into_response();
    };
    let location_id = location.id.as_str();
    let tz = dir.tz(location_id);
    let today = today_in(&tz);
    let date = parse_date(&q.date).unwrap_or(today);
    let monday = date
        .checked_sub(i64::from(date.weekday().to_monday_one_offset() - 1).days())
        .unwrap_or(date);
    let days: Vec<Date> = (0..7)
        .filter_map(|i| monday.checked_add(i.days()).ok())
        .collect();
    let sunday = *days.last().unwrap_or(&monday);
    let bounds = (day_bounds(&tz, monday).0, day_bounds(&tz, sunday).1);
    let now = Timestamp::now();

    let query = AppointmentQuery {
        practitioner_id: Some(provider_id.to_string()),
        location_id: Some(location_id.to_string()),
        from: Some(bounds.0),
        until: Some(bounds.1),
        ..AppointmentQuery::default()
    };
    let appointments: Vec<AppointmentRecord> =
        match state.db.appointments(&p.org_id, &query, ALL).await {
            Ok((list, _)) => list
                .into_iter()
                .map(|v| v.value)
                .filter(|r| r.appointment.status != AppointmentStatus::EnteredInError)
                .collect(),
            Err(e) => return ops::internal_error(e),
        };
    let slots = match slots_at(
        &state,
        &p.org_id,
        &dir,
        location_id,
        Some(provider_id),
        None,
        bounds,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let patients = match patients_by_id(
        &state,
        &p.org_id,
        appointments
            .iter()
            .map(|r| r.appointment.patient_id.clone()),
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut columns: Vec<Column> = days
        .iter()
        .map(|d| {
            Column::new(html! {
                a href=(day_href(location_id, *d)) title="Day view" { (short_day(*d)) }
                @if *d == today { span.col-sub { "Today" } }
            })
        })
        .collect();
    let ctx = CardContext {
        dir: &dir,
        patients: &patients,
        principal: &p,
        now,
        highlight: None,
        show_provider: false,
    };
    for r in &appointments {
        let at = local(&tz, r.appointment.start);
        if let Some(c) = days.iter().position(|d| *d == at.date()) {
            columns[c].put(at, appointment_card(&ctx, r));
        }
    }
    put_slots(
        &dir,
        &mut columns,
        &slots,
        |s| days.iter().position(|d| *d == s.local_start.date()),
        p.role.may(Area::Scheduling),
        None,
    );
    let mut shown_types: Vec<String> = appointments
        .iter()
        .map(|r| r.appointment.appointment_type_id.clone())
        .collect();
    shown_types.sort_by_key(|t| dir.type_name(t));
    shown_types.dedup();
    let week_link = |d: Date| {
        href(
            "/schedule/week",
            &[
                ("provider", provider_id),
                ("location", location_id),
                ("date", &d.to_string()),
            ],
        )
    };
    let name = dir.provider_name(provider_id);
    let title = format!("Week · {name}");
    let content = html! {
        (subnav("week", &day_href(location_id, date), &week_link(date)))
        form.filters.toolbar method="get" action="/schedule/week" {
            div.field {
                label for="week-provider" { "Provider" }
                select #week-provider name="provider" {
                    @for pr in dir.practitioners.iter().filter(|pr| pr.value.active) {
                        option value=(pr.id) selected[pr.id == provider_id] { (dir.provider_name(&pr.id)) }
                    }
                }
            }
            div.field {
                label for="week-location" { "Location" }
                select #week-location name="location" {
                    @for l in &locations {
                        option value=(l.id) selected[l.id == location_id] { (l.value.name) }
                    }
                }
            }
            div.field {
                label for="week-date" { "Week of" }
                input #week-date type="date" name="date" value=(date.to_string());
            }
            button type="submit" { "Show" }
        }
        div.day-nav {
            a.button.secondary href=(week_link(monday.checked_sub(7.days()).unwrap_or(monday))) data-shortcut="[" aria-keyshortcuts="[" { "← Previous week" }
            a.button.secondary href=(week_link(today)) data-shortcut="t" aria-keyshortcuts="t" { "This week" }
            a.button.secondary href=(week_link(monday.checked_add(7.days()).unwrap_or(monday))) data-shortcut="]" aria-keyshortcuts="]" { "Next week →" }
        }
        h2 #week-title { (name) ": " (us_date(monday)) " to " (us_date(sunday)) }
        p.zone { "At " (location.value.name) "; times are local: " strong { (zone_on(&tz, monday)) } "." }
        (legend(&dir, &shown_types))
        (grid(&format!("{name}'s appointments and free slots, week of {}", long_day(monday)), "Time", &columns))
    };
    let mut response = shell_with_styles(
        &p,
        state.config.idle_timeout_secs,
        Area::Schedule,
        &title,
        &[TYPES_CSS],
        content,
    )
    .into_response();
    for r in &appointments {
        let a = &r.appointment;
        note(
            &mut response,
            AuditNote::new(Action::Read, "Appointment", Some(&a.id))
                .patient(&a.patient_id)
                .detail("shown on the week view"),
        );
    }
    response
}

// ---------------------------------------------------------------- waitlist

/// The waitlist panel of a location's day: the entries that would come
/// here (no location preference, or this one), and the freed times the
/// waitlist was ranked for.
struct Waitlist {
    entries: Vec<WaitlistEntry>,
    offers: Vec<carefront_store::WaitlistOffer>,
}

impl Waitlist {
    async fn load(
        state: &AppState,
        org_id: &str,
        dir: &Directory,
        location_id: &str,
        now: Timestamp,
    ) -> Result<Waitlist, Response> {
        let entries = state
            .db
            .waitlist(org_id, None, None)
            .await
            .map_err(ops::internal_error)?
            .into_iter()
            .map(|v| v.value)
            .filter(|e| {
                e.preferences.location_ids.is_empty()
                    || e.preferences.location_ids.iter().any(|l| l == location_id)
            })
            .filter(|e| dir.kind(&e.appointment_type_id).is_some())
            .collect();
        let offers = state
            .db
            .tasks(org_id, Some(TaskStatus::Open), 200)
            .await
            .map_err(ops::internal_error)?
            .iter()
            .filter_map(|t| t.waitlist_offer())
            .filter(|o| o.slot.location_id == location_id && o.slot.start > now)
            .collect();
        Ok(Waitlist { entries, offers })
    }

    fn patient_ids(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.patient_id.clone())
            .chain(
                self.offers
                    .iter()
                    .flat_map(|o| o.candidates.iter().map(|c| c.patient_id.clone())),
            )
            .collect()
    }

    fn panel(
        &self,
        dir: &Directory,
        patients: &HashMap<String, Patient>,
        p: &Principal,
        back: &str,
    ) -> Markup {
        let can_change = p.role.may(Area::Scheduling);
        let now = Timestamp::now();
        let name = |id: &str| {
            patients
                .get(id)
                .map_or_else(|| "Unknown patient".to_string(), Patient::display_name)
        };
        html! {
            aside.waitlist aria-labelledby="waitlist-title" {
                h2 #waitlist-title { "Waitlist" }
                @if !self.offers.is_empty() {
                    h3 { "Freed times to offer" }
                    ul.plain.offers {
                        @for o in &self.offers {
                            @let s = &o.slot;
                            li {
                                strong { (short_day(s.local_start.date())) " " (clock(s.local_start)) }
                                " · " (dir.provider_name(&s.practitioner_id)) " · " (dir.type_name(&s.appointment_type_id))
                                ul.plain.candidates {
                                    @for c in o.candidates.iter().take(3) {
                                        li {
                                            @if can_change {
                                                a href=(book_href(&s.appointment_type_id, &s.practitioner_id, &s.location_id, s.start, Some(&c.patient_id))) {
                                                    "Book " (name(&c.patient_id))
                                                }
                                            } @else {
                                                (name(&c.patient_id))
                                            }
                                            " " span.muted { "(fits " (c.fit_percent) "%)" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if self.entries.is_empty() {
                    p.muted { "Nobody is waiting for a time here." }
                } @else {
                    ul.plain.entries {
                        @for e in &self.entries {
                            @let waited = (now.duration_since(e.added_at).as_hours() / 24).max(0);
                            li {
                                a href=(format!("/patients/{}", e.patient_id)) { (name(&e.patient_id)) }
                                span.entry-type.(type_class(&e.appointment_type_id)) { (dir.type_name(&e.appointment_type_id)) }
                                span.muted { (preferences_text(dir, &e.preferences)) "; waiting "
                                    @match waited { 0 => "since today", 1 => "1 day", n => { (n) " days" } } }
                                @if can_change {
                                    div.entry-actions {
                                        a href=(finder_href_for(e)) { "Find a slot" span.visually-hidden { " for " (name(&e.patient_id)) } }
                                        form.inline-action method="post" action=(format!("/waitlist/{}/remove", e.id)) {
                                            (csrf_field(p))
                                            input type="hidden" name="back" value=(back);
                                            button.secondary.small type="submit" { "Remove" span.visually-hidden { " " (name(&e.patient_id)) " from the waitlist" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if can_change { p { a href="/schedule/find" { "Add a patient from the slot finder" } } }
            }
        }
    }

    fn audit(&self, response: &mut Response) {
        for e in &self.entries {
            note(
                response,
                AuditNote::new(Action::Read, "WaitlistEntry", Some(&e.id))
                    .patient(&e.patient_id)
                    .detail("shown on the day view's waitlist"),
            );
        }
        for o in &self.offers {
            for c in o.candidates.iter().take(3) {
                note(
                    response,
                    AuditNote::new(Action::Search, "Patient", Some(&c.patient_id))
                        .patient(&c.patient_id)
                        .detail("shown as a waitlist candidate for a freed time"),
                );
            }
        }
    }
}

/// The slot finder with a waitlist entry's type, wishes and patient.
fn finder_href_for(e: &WaitlistEntry) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        ("type", e.appointment_type_id.clone()),
        ("patient", e.patient_id.clone()),
    ];
    for w in &e.preferences.weekdays {
        pairs.push(("weekday", w.to_string()));
    }
    match e.preferences.part_of_day {
        Some(PartOfDay::Morning) => pairs.push(("part", "morning".into())),
        Some(PartOfDay::Afternoon) => pairs.push(("part", "afternoon".into())),
        None => {}
    }
    if let [l] = e.preferences.location_ids.as_slice() {
        pairs.push(("location", l.clone()));
    }
    if let [pr] = e.preferences.practitioner_ids.as_slice() {
        pairs.push(("provider", pr.clone()));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    href("/schedule/find", &borrowed)
}

/// A page in the schedule's section that answers with an error status.
pub fn schedule_problem(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    title: &str,
    message: Markup,
) -> Response {
    (
        status,
        shell_with_styles(
            p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            title,
            &[],
            html! {
                div.error role="alert" { (message) }
                p { a href="/schedule" { "Open the schedule" } " or " a href="/schedule/find" { "find a slot" } "." }
            },
        ),
    )
        .into_response()
}

/// A filter toolbar's choice of active location (`{prefix}-location`).
pub fn location_field(prefix: &str, dir: &Directory, location_id: &str) -> Markup {
    let id = format!("{prefix}-location");
    html! {
        div.field {
            label for=(id) { "Location" }
            select id=(id) name="location" {
                @for l in dir.active_locations() {
                    option value=(l.id) selected[l.id == location_id] { (l.value.name) }
                }
            }
        }
    }
}

/// A filter toolbar's day (`{prefix}-date`); `not_a_date` is what was typed
/// when it was not a date, and the page shows `date` instead.
pub fn date_field(prefix: &str, date: Date, not_a_date: Option<&str>) -> Markup {
    let id = format!("{prefix}-date");
    let error_id = format!("{prefix}-date-error");
    html! {
        div.field.invalid[not_a_date.is_some()] {
            label for=(id) { "Date" }
            input id=(id) type="date" name="date" value=(date.to_string())
                aria-invalid=[not_a_date.map(|_| "true")] aria-describedby=[not_a_date.map(|_| &error_id)];
            @if let Some(typed) = not_a_date {
                p.field-error id=(error_id) { "Date '" (typed) "' is not a date; showing today." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn local_time_words() {
        assert_eq!(clock(date(2026, 3, 10).at(9, 5, 0, 0)), "9:05 AM");
        assert_eq!(clock(date(2026, 3, 10).at(13, 40, 0, 0)), "1:40 PM");
        assert_eq!(long_day(date(2026, 3, 10)), "Tuesday, March 10, 2026");
        assert_eq!(short_day(date(2026, 3, 10)), "Tue 3/10");
        assert_eq!(row_label(12 * 60 + 15), "12:15 PM");
        let ny = TimeZone::get("America/New_York").unwrap();
        let start: Timestamp = "2026-03-10T13:20:00Z".parse().unwrap();
        let end: Timestamp = "2026-03-10T13:40:00Z".parse().unwrap();
        assert_eq!(time_range(&ny, start, end), "9:20 AM–9:40 AM EDT");
        assert_eq!(zone_label(&ny, start), "America/New_York (EDT)");
    }

    #[test]
    fn a_day_spans_23_hours_when_clocks_spring_forward() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let (a, b) = day_bounds(&ny, date(2026, 3, 8));
        assert_eq!(b.duration_since(a).as_hours(), 23);
        let (a, b) = day_bounds(&ny, date(2026, 11, 1));
        assert_eq!(b.duration_since(a).as_hours(), 25);
    }

    #[test]
    fn type_classes_are_safe_css() {
        assert_eq!(type_class("derm-new"), "t-derm-new");
        assert_eq!(type_class("a b{}"), "t-a_b__");
        assert!(is_hex_colour("#2a7ab0"));
        assert!(!is_hex_colour("red;}"));
    }

    #[test]
    fn links_leave_out_empty_values() {
        assert_eq!(
            href(
                "/schedule",
                &[("location", "l1"), ("type", ""), ("date", "2026-03-10")]
            ),
            "/schedule?location=l1&date=2026-03-10"
        );
    }
}
