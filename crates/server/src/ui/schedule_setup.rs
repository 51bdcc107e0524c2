//! Scheduling setup for administrators (`/admin/schedule`): providers'
//! weekly templates, the exceptions to them (time off, holidays, blocked
//! time, extra sessions), appointment types, locations' opening hours and
//! the bookable rooms and equipment.
//!
//! Times are wall-clock times at the location, as the domain keeps them;
//! the pages name each location's zone. A template's blocks are entered as
//! rows of weekdays sharing the same hours (`rows[0].days`,
//! `rows[0].start`, ...) and expanded into one domain block per weekday;
//! the domain's errors on `blocks[i]` are put back on their row. Writes go
//! through the store's audited `WriteTx` methods as the signed-in
//! administrator (history and audit event in one transaction); bad input
//! saves nothing and comes back with each error at its field. Whether a
//! referenced record exists is the store's rule; its errors are put on the
//! inputs here. Deleting takes a ticked "I understand…".
//!
//! Every kind of record is an `Editor`: the handlers (new, create, edit,
//! update, delete) and the form page around its inputs are written once,
//! over it.

use super::patient_summary::us_date;
use super::registration::input_id;
use super::schedule::{
    ALL, Directory, actor, clock, labelled_error_summary, labelled_inline_error, parse_date,
    today_in, weekday_name, zone_on,
};
use super::{CsrfForm, csrf_field, error_page, shell};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::directory::{Location, Room, SPECIALTIES, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, AvailabilityBlock, ExceptionKind, LocationHours, MAX_OVERBOOK_LIMIT, Modality,
    OpeningHours, PatientEligibility, Resource, ResourceKind, ScheduleException, Template,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Actor, LocationOpeningHours, Record, StoreError, WriteTx};
use jiff::ToSpan;
use jiff::civil::{Date, DateTime, Time};
use maud::{Markup, html};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const OVERVIEW: &str = "/admin/schedule";
/// Block rows the template form offers at least (blank ones are ignored).
const BLOCK_ROWS: usize = 4;
/// Block rows read from a submitted form, at most.
const MAX_ROWS: usize = 28;

const EXCEPTION_KINDS: [(&str, &str); 4] = [
    ("time_off", "Time off"),
    ("holiday", "Holiday"),
    ("blocked", "Blocked time"),
    ("extra_session", "Extra session"),
];

const RESOURCE_KINDS: [ResourceKind; 6] = [
    ResourceKind::ExamRoom,
    ResourceKind::ProcedureRoom,
    ResourceKind::ConsultRoom,
    ResourceKind::UltrasoundRoom,
    ResourceKind::UltrasoundMachine,
    ResourceKind::EcgMachine,
];

// ---------------------------------------------------------------- words

fn short_weekday(iso: u8) -> &'static str {
    &weekday_name(iso)[..3]
}

/// "Mon–Fri", "Mon, Wed, Fri", "Every day": runs of three or more days as
/// a range.
fn days_text(days: &[u8]) -> String {
    if days.len() == 7 {
        return "Every day".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!(
                "{}–{}",
                short_weekday(days[i]),
                short_weekday(days[j])
            ));
        } else {
            parts.extend(days[i..=j].iter().map(|d| short_weekday(*d).to_string()));
        }
        i = j + 1;
    }
    parts.join(", ")
}

fn time_text(t: Time) -> String {
    clock(Date::constant(2000, 1, 1).to_datetime(t))
}

fn day_text(d: Date) -> String {
    d.strftime("%a %-m/%-d/%Y").to_string()
}

/// An exception's local span; midnight ends a day, so whole days read as
/// days.
fn span_text(start: DateTime, end: DateTime) -> String {
    let midnight = Time::midnight();
    let (first, last) = (start.date(), end.date());
    if end.time() == midnight {
        let last = last.yesterday().unwrap_or(last);
        return match (start.time() == midnight, last <= first) {
            (true, true) => format!("{}, all day", day_text(first)),
            (true, false) => format!("{} – {}, all day", day_text(first), day_text(last)),
            (false, true) => format!(
                "{} {} to end of day",
                day_text(first),
                time_text(start.time())
            ),
            (false, false) => format!(
                "{} {} – end of {}",
                day_text(first),
                time_text(start.time()),
                day_text(last)
            ),
        };
    }
    if first == last {
        return format!(
            "{} {}–{}",
            day_text(first),
            time_text(start.time()),
            time_text(end.time())
        );
    }
    format!(
        "{} {} – {} {}",
        day_text(first),
        time_text(start.time()),
        day_text(last),
        time_text(end.time())
    )
}

/// Today at the location (or the first one): where a new form starts.
fn today_at(dir: &Directory, location_id: &str) -> Date {
    let id = match dir.location(location_id) {
        Some(_) => location_id,
        None => dir.active_locations().next().map_or("", |l| l.id.as_str()),
    };
    today_in(&dir.tz(id))
}

/// The location's zone as it reads today there ("America/Denver (MDT)").
fn zone_now(dir: &Directory, location_id: &str) -> String {
    let tz = dir.tz(location_id);
    zone_on(&tz, today_in(&tz))
}

/// Items sharing a key as one entry with their weekdays, ordered by first
/// weekday and key.
fn by_weekdays<K: Ord>(items: impl IntoIterator<Item = (u8, K)>) -> Vec<(Vec<u8>, K)> {
    let mut groups: Vec<(Vec<u8>, K)> = Vec::new();
    for (day, key) in items {
        match groups.iter_mut().find(|(_, k)| *k == key) {
            Some((days, _)) => days.push(day),
            None => groups.push((vec![day], key)),
        }
    }
    for (days, _) in &mut groups {
        days.sort_unstable();
        days.dedup();
    }
    groups.sort_by(|a, b| (a.0[0], &a.1).cmp(&(b.0[0], &b.1)));
    groups
}

type BlockKey<'a> = (Time, Time, &'a [String], Option<u8>);

fn block_groups(blocks: &[AvailabilityBlock]) -> Vec<(Vec<u8>, BlockKey<'_>)> {
    by_weekdays(blocks.iter().map(|b| {
        (
            b.weekday,
            (
                b.start,
                b.end,
                b.appointment_type_ids.as_slice(),
                b.overbook_limit,
            ),
        )
    }))
}

fn type_names(dir: &Directory, ids: &[String]) -> String {
    ids.iter()
        .map(|t| dir.type_name(t))
        .collect::<Vec<_>>()
        .join(", ")
}

fn extra_text(limit: u8) -> String {
    match limit {
        0 => "no overbooking".into(),
        n => format!("up to {n} extra per slot"),
    }
}

fn kind_code(kind: &ExceptionKind) -> &'static str {
    match kind {
        ExceptionKind::TimeOff { .. } => "time_off",
        ExceptionKind::Holiday { .. } => "holiday",
        ExceptionKind::Blocked { .. } => "blocked",
        ExceptionKind::ExtraSession { .. } => "extra_session",
    }
}

fn kind_label(kind: &ExceptionKind) -> &'static str {
    kind_name(kind_code(kind))
}

fn kind_name(code: &str) -> &'static str {
    EXCEPTION_KINDS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("Exception", |(_, l)| l)
}

fn resource_name(resources: &[Versioned<Resource>], dir: &Directory, id: &str) -> String {
    match resources.iter().find(|r| r.id == id) {
        Some(r) => format!(
            "{} ({})",
            r.value.name,
            dir.location_name(&r.value.location_id)
        ),
        None => "Unknown room or equipment".into(),
    }
}

/// Who or what an exception concerns, and its details.
fn exception_text(
    dir: &Directory,
    resources: &[Versioned<Resource>],
    kind: &ExceptionKind,
) -> (String, String) {
    match kind {
        ExceptionKind::TimeOff { practitioner_id } => {
            (dir.provider_name(practitioner_id), String::new())
        }
        ExceptionKind::Holiday { name, location_id } => (
            location_id
                .as_deref()
                .map_or("All locations".into(), |l| dir.location_name(l)),
            name.clone(),
        ),
        ExceptionKind::Blocked {
            reason,
            practitioner_id,
            resource_id,
        } => {
            let who = match (practitioner_id, resource_id) {
                (Some(p), _) => dir.provider_name(p),
                (None, Some(r)) => resource_name(resources, dir, r),
                (None, None) => String::new(),
            };
            (who, reason.clone())
        }
        ExceptionKind::ExtraSession {
            practitioner_id,
            location_id,
            appointment_type_ids,
            overbook_limit,
        } => {
            let types = if appointment_type_ids.is_empty() {
                "any type the provider offers".to_string()
            } else {
                type_names(dir, appointment_type_ids)
            };
            (
                format!(
                    "{} at {}",
                    dir.provider_name(practitioner_id),
                    dir.location_name(location_id)
                ),
                format!("{types}; {}", extra_text(*overbook_limit)),
            )
        }
    }
}

fn modality_label(m: Modality) -> &'static str {
    match m {
        Modality::InPerson => "In person",
        Modality::Telehealth => "Telehealth",
    }
}

fn eligibility_label(e: PatientEligibility) -> &'static str {
    match e {
        PatientEligibility::New => "New patients",
        PatientEligibility::Established => "Established patients",
        PatientEligibility::Any => "Any patient",
    }
}

/// The serde code of a unit variant (`in_person`), as stored.
fn code<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn from_code<T: DeserializeOwned>(code: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
}

// ---------------------------------------------------------------- fields

/// `rows[2].start` as (2, "start") for the list `rows`.
fn item_of<'a>(list: &str, field: &'a str) -> Option<(usize, &'a str)> {
    let (i, tail) = field
        .strip_prefix(list)?
        .strip_prefix('[')?
        .split_once("].")?;
    Some((i.parse().ok()?, tail))
}

/// Lines of a form as shown: two blank ones after the last one used, and
/// at least `min`.
fn padded<T: Clone + Default>(rows: &[T], is_blank: fn(&T) -> bool, min: usize) -> Vec<T> {
    let used = rows.iter().rposition(|r| !is_blank(r)).map_or(0, |i| i + 1);
    let mut rows = rows.to_vec();
    rows.resize_with(min.max(used + 2), T::default);
    rows
}

/// How the error summary and the inline messages name a field.
fn label(field: &str) -> String {
    if let Some((i, tail)) = item_of("hours", field) {
        let what = match tail {
            "weekday" => "day",
            "open" => "opening time",
            "close" => "closing time",
            t => t,
        };
        return format!("Line {} {what}", i + 1);
    }
    if let Some((i, tail)) = item_of("rows", field) {
        let what = match tail {
            "types" => "appointment types",
            "overbook" => "extra bookings",
            t => t,
        };
        return format!("Block {} {what}", i + 1);
    }
    match field {
        "practitioner_id" => "Provider",
        "location_id" => "Location",
        "effective_from" => "Effective from",
        "effective_until" => "Effective until",
        "overbook_limit" => "Extra bookings per slot",
        "rows" => "Weekly hours",
        "kind" => "Kind",
        "name" => "Name",
        "reason" => "Reason",
        "target" => "Provider or room",
        "start_date" => "Start date",
        "start_time" => "Start time",
        "end_date" => "End date",
        "end_time" => "End time",
        "types" => "Appointment types",
        "version" => "This record",
        "id" => "Code",
        "duration_minutes" => "Duration",
        "color" => "Colour",
        "specialties" => "Specialties",
        "practitioner_ids" => "Providers",
        "resource_kind" => "Room or equipment",
        "modality" => "Modality",
        "eligibility" => "Patients",
        "min_notice_minutes" => "Minimum notice",
        "max_days_ahead" => "Bookable ahead",
        "instructions" => "Instructions",
        "intake_form" => "Intake form",
        "room_id" => "Directory room",
        "confirm" => "The “I understand” box",
        other => other,
    }
    .to_string()
}

/// Where an error is shown: at its input, but a stale version concerns
/// the whole form.
fn anchor(field: &str) -> String {
    match field {
        "version" => String::new(),
        f => f.to_string(),
    }
}

/// A store message as the pages say it.
fn store_message(message: &str) -> String {
    match message
        .strip_prefix("no such ")
        .and_then(|m| m.split_once(": "))
    {
        Some((_, id)) => format!("'{id}' does not exist"),
        None => message.to_string(),
    }
}

/// The store's errors on a form's inputs (`input` names the input showing
/// a field's error).
fn on_inputs(errors: &ValidationErrors, input: impl Fn(&str) -> String) -> ValidationErrors {
    let mut out = ValidationErrors::new();
    for e in errors.errors() {
        add_once(&mut out, input(&e.field), store_message(&e.message));
    }
    out
}

/// Adds an error unless the same one is there (a row's days share theirs).
fn add_once(errors: &mut ValidationErrors, field: String, message: String) {
    if !errors
        .errors()
        .iter()
        .any(|e| e.field == field && e.message == message)
    {
        errors.add(field, message);
    }
}

fn changed_meanwhile() -> ValidationErrors {
    ValidationErrors::single(
        "version",
        "was changed by someone else while you were editing it: reload the page to start from the current version",
    )
}

/// The ids an input's `aria-describedby` names: its error, then its hint.
fn described(error_id: Option<String>, hint_id: Option<String>) -> Option<String> {
    let ids: Vec<String> = error_id.into_iter().chain(hint_id).collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// Renders inputs with their label, inline errors and ARIA links; errors
/// are named by input (`rows[0].end`, `start_date`).
pub(crate) struct Fields<'a> {
    errors: &'a ValidationErrors,
}

/// What an input's markup needs of its hint and error.
struct Hinted {
    id: String,
    invalid: Option<&'static str>,
    /// For `aria-describedby`.
    described: Option<String>,
    /// The hint, then the inline error.
    notes: Markup,
}

impl Fields<'_> {
    /// aria-invalid, the message's id and the message of one input.
    fn error(&self, name: &str) -> (Option<&'static str>, Option<String>, Markup) {
        labelled_inline_error(self.errors, name, anchor, label)
    }

    fn summary(&self) -> Markup {
        labelled_error_summary("form-errors", self.errors, anchor, label)
    }

    /// Input `name`'s id, its hint (`{id}-hint`) and its error.
    fn hinted(&self, name: &str, hint: Option<&str>) -> Hinted {
        let id = input_id(name);
        let (invalid, error_id, error) = self.error(name);
        let hint_id = hint.map(|_| format!("{id}-hint"));
        let notes = html! {
            @if let (Some(h), Some(hid)) = (hint, &hint_id) { span.hint id=(hid) { (h) } }
            (error)
        };
        Hinted {
            described: described(error_id, hint_id),
            id,
            invalid,
            notes,
        }
    }

    fn input(
        &self,
        name: &str,
        caption: &str,
        kind: &str,
        value: &str,
        required: bool,
        hint: Option<&str>,
    ) -> Markup {
        let h = self.hinted(name, hint);
        html! {
            div.field.invalid[h.invalid.is_some()] {
                label for=(h.id) { (caption) @if required { " " span.req { "required" } } }
                input id=(h.id) name=(name) type=(kind) value=(value) autocomplete="off"
                    step=[(kind == "time").then_some("300")]
                    aria-invalid=[h.invalid] aria-describedby=[h.described];
                (h.notes)
            }
        }
    }

    /// A select; `none` is the blank first option's text.
    fn select(
        &self,
        name: &str,
        caption: &str,
        value: &str,
        options: &[(String, String)],
        none: Option<&str>,
    ) -> Markup {
        let id = input_id(name);
        let (invalid, error_id, block) = self.error(name);
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id) { (caption) @if none.is_none() { " " span.req { "required" } } }
                select id=(id) name=(name) aria-invalid=[invalid] aria-describedby=[error_id] {
                    @match none {
                        Some(text) => { option value="" { (text) } }
                        None => { @if value.is_empty() { option value="" { "Choose…" } } }
                    }
                    @for (v, l) in options { option value=(v) selected[v == value] { (l) } }
                }
                (block)
            }
        }
    }

    /// Checkboxes sharing one name, in a fieldset named by `legend`.
    fn checks(
        &self,
        name: &str,
        legend: &str,
        hint: Option<&str>,
        options: &[(String, String)],
        chosen: &[String],
    ) -> Markup {
        let h = self.hinted(name, hint);
        html! {
            fieldset.checks.invalid[h.invalid.is_some()] id=(h.id) tabindex="-1"
                aria-describedby=[h.described] {
                legend { (legend) }
                (h.notes)
                div.row {
                    @for (v, l) in options {
                        @let box_id = input_id(&format!("{name}-{v}"));
                        div.tick {
                            input type="checkbox" id=(box_id) name=(name) value=(v) checked[chosen.contains(v)];
                            label for=(box_id) { (l) }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- parsing

/// A submitted form's fields; checkboxes repeat their name.
pub(crate) struct Submitted<'a>(&'a [(String, String)]);

impl Submitted<'_> {
    fn text(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn version(&self) -> Option<i64> {
        self.text("version").parse().ok()
    }
}

/// How a typed value is read, and what it is when it cannot be read.
struct Reading<T> {
    parse: fn(&str) -> Option<T>,
    what: &'static str,
}

const DATE: Reading<Date> = Reading {
    parse: parse_date,
    what: "a date (use YYYY-MM-DD)",
};

const TIME: Reading<Time> = Reading {
    parse: parse_time,
    what: "a time (use 09:00 or 9:00 AM)",
};

impl<T> Reading<T> {
    /// What was typed into `field`: none when blank (an error if
    /// `required`), or the error that it is not one.
    fn field(
        &self,
        errors: &mut ValidationErrors,
        field: &str,
        text: &str,
        required: bool,
    ) -> Option<T> {
        if text.is_empty() {
            if required {
                errors.add(field, "is required");
            }
            return None;
        }
        let value = (self.parse)(text);
        if value.is_none() {
            errors.add(field, format!("'{text}' is not {}", self.what));
        }
        value
    }
}

/// `09:00` as `<input type=time>` sends it, or typed as `9:00 AM`.
fn parse_time(text: &str) -> Option<Time> {
    let t = text.trim().to_ascii_lowercase();
    let (rest, pm) = match (t.strip_suffix("pm"), t.strip_suffix("am")) {
        (Some(r), _) => (r.trim(), Some(true)),
        (_, Some(r)) => (r.trim(), Some(false)),
        _ => (t.as_str(), None),
    };
    let (h, m) = rest.split_once(':')?;
    let m = m.split(':').next()?;
    if m.len() != 2 {
        return None;
    }
    let (mut h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if let Some(pm) = pm {
        if !(1..=12).contains(&h) {
            return None;
        }
        h = h % 12 + if pm { 12 } else { 0 };
    }
    Time::new(h, m, 0, 0).ok()
}

fn number_field<T: std::str::FromStr>(
    errors: &mut ValidationErrors,
    field: &str,
    text: &str,
    what: &str,
) -> Option<T> {
    if text.is_empty() {
        return None;
    }
    let n = text.parse().ok();
    if n.is_none() {
        errors.add(field, format!("must be {what}"));
    }
    n
}

fn limit_field(errors: &mut ValidationErrors, field: &str, text: &str) -> Option<u8> {
    number_field(
        errors,
        field,
        text,
        &format!("a whole number from 0 to {MAX_OVERBOOK_LIMIT}"),
    )
}

fn provider_options(dir: &Directory, current: &str) -> Vec<(String, String)> {
    dir.practitioners
        .iter()
        .filter(|x| x.value.active || x.id == current)
        .map(|x| {
            let specialties = dir.specialty_names(&x.id);
            let name = dir.provider_name(&x.id);
            let text = if specialties.is_empty() {
                name
            } else {
                format!("{name} — {specialties}")
            };
            (x.id.clone(), text)
        })
        .collect()
}

fn location_options(dir: &Directory, current: &str) -> Vec<(String, String)> {
    dir.locations
        .iter()
        .filter(|l| l.value.active || l.id == current)
        .map(|l| {
            (
                l.id.clone(),
                format!("{} — {}", l.value.name, zone_now(dir, &l.id)),
            )
        })
        .collect()
}

/// The types a provider's blocks may name: those the provider offers (every
/// active type while no provider is chosen), and any already named.
fn type_options(dir: &Directory, practitioner_id: &str, named: &[String]) -> Vec<(String, String)> {
    let mut types: Vec<&AppointmentType> = if dir.provider(practitioner_id).is_some() {
        dir.types_offered_by(practitioner_id)
    } else {
        dir.active_types().collect()
    };
    for t in named.iter().filter_map(|id| dir.kind(id)) {
        if !types.iter().any(|x| x.id == t.id) {
            types.push(t);
        }
    }
    types
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                format!("{} ({} min)", t.name, t.duration_minutes),
            )
        })
        .collect()
}

/// Where the times of a form are read: the location's zone, or each
/// location's when the record is not tied to one.
fn zone_note(dir: &Directory, location_id: &str) -> Markup {
    html! {
        @if dir.location(location_id).is_some() {
            p.zone { "Times are local to " (dir.location_name(location_id)) ": " strong { (zone_now(dir, location_id)) } }
        } @else {
            p.zone {
                "Times are wall-clock times at each location: "
                @for (i, l) in dir.active_locations().enumerate() {
                    @if i > 0 { "; " }
                    (l.value.name) " " strong { (zone_now(dir, &l.id)) }
                }
            }
        }
    }
}

/// Loads the directory, or answers with the error.
async fn directory(state: &AppState, p: &Principal) -> Result<Directory, Response> {
    Directory::load(state, &p.org_id)
        .await
        .map_err(ops::internal_error)
}

fn missing(what: &str, e: StoreError) -> Response {
    match e {
        StoreError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            &format!("{what} not found"),
            "There is nothing at this address. Go back to scheduling setup in Admin.",
        ),
        StoreError::Gone => error_page(
            StatusCode::GONE,
            &format!("{what} deleted"),
            "This was deleted. Its history is kept for the audit trail.",
        ),
        e => ops::internal_error(e),
    }
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("{OVERVIEW}?done={what}")).into_response()
}

fn page(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    title: &str,
    content: Markup,
) -> Response {
    let content = html! {
        p { a href=(OVERVIEW) { "Back to scheduling setup" } }
        (content)
    };
    (
        status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Admin,
            title,
            content,
        ),
    )
        .into_response()
}

/// Deleting takes a tick in "I understand…" first, checked here as well as
/// by the browser, so a stray click or Enter deletes nothing.
fn delete_form(p: &Principal, f: &Fields, action: &str, what: &str, hint: &str) -> Markup {
    let (invalid, error_id, block) = f.error("confirm");
    let described = described(error_id, Some("delete-hint".into()));
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(p))
            div.tick {
                input #f-confirm type="checkbox" name="confirm" value="yes" required
                    aria-invalid=[invalid] aria-describedby=[described];
                label for="f-confirm" { "I understand that " (what) " will be deleted" }
            }
            button.danger type="submit" { "Delete " (what) }
            span.hint #delete-hint { (hint) }
            (block)
        }
    }
}

/// Whether a delete form was confirmed, or the error that says it was not.
fn confirmation(pairs: &[(String, String)]) -> Result<(), ValidationErrors> {
    match Submitted(pairs).has("confirm") {
        true => Ok(()),
        false => Err(ValidationErrors::single(
            "confirm",
            "must be ticked to delete",
        )),
    }
}

fn weekday_options(name: fn(u8) -> &'static str) -> Vec<(String, String)> {
    (1..=7)
        .map(|d| (d.to_string(), name(d).to_string()))
        .collect()
}

fn resource_kind_options() -> Vec<(String, String)> {
    RESOURCE_KINDS
        .iter()
        .map(|k| (code(k), k.label().to_string()))
        .collect()
}

/// "New …" or "Edit …".
fn title(id: Option<&str>, what: &str) -> String {
    match id {
        Some(_) => format!("Edit {what}"),
        None => format!("New {what}"),
    }
}

// ---------------------------------------------------------------- editing

/// A page's answer, or the error page that came first.
type Answer = Result<Response, Response>;

/// A form as typed, with the version of the record an edit started from
/// (a hidden input, so that a stale edit is refused).
pub(crate) struct Draft<F> {
    values: F,
    version: Option<i64>,
}

fn submitted<E: Editor>(pairs: &[(String, String)]) -> Draft<E::Form> {
    let s = Submitted(pairs);
    Draft {
        values: E::from_submitted(&s),
        version: s.version(),
    }
}

fn stored<E: Editor>(record: &Versioned<E::Stored>) -> Draft<E::Form> {
    Draft {
        values: E::from_stored(&record.value),
        version: Some(record.version),
    }
}

/// What one kind of record's page shows; the error summary, the hidden
/// inputs, the buttons and the delete form are the same for all.
pub(crate) struct FormPage {
    title: String,
    /// Above the form.
    before: Option<Markup>,
    inputs: Markup,
    /// The save button's words.
    save: String,
    /// What the delete button calls the record and what deleting leaves,
    /// for records that can be deleted.
    delete: Option<(String, &'static str)>,
    /// Below the form.
    after: Option<Markup>,
}

impl FormPage {
    fn new(title: String, inputs: Markup, save: &str) -> Self {
        FormPage {
            title,
            before: None,
            inputs,
            save: save.to_string(),
            delete: None,
            after: None,
        }
    }
}

/// A kind of record the setup pages edit: how its form is read, checked,
/// written and shown, and how the store's refusals come back to its
/// inputs.
pub(crate) trait Editor: Sized + Send + Sync + 'static {
    /// The record as the store keeps and writes it.
    type Stored: Record;
    /// The form's values as typed.
    type Form: Send + Sync;
    /// What the page needs besides the form.
    type Context: Send + Sync;
    /// Its name on "not found" and "deleted" pages.
    const WHAT: &'static str;
    /// Its addresses: `/admin/schedule/{PATH}/…`.
    const PATH: &'static str;
    /// The overview's `done` once saved.
    const SAVED: &'static str;

    fn context(
        state: &AppState,
        p: &Principal,
    ) -> impl Future<Output = Result<Self::Context, Response>> + Send;

    fn from_stored(stored: &Self::Stored) -> Self::Form;

    fn from_submitted(s: &Submitted) -> Self::Form;

    /// Keeps what an edit may not change of the stored record.
    fn edited(_form: &mut Self::Form, _id: &str, _stored: Self::Form) {}

    /// The record and the form line each of its parts came from, or what
    /// cannot be read; the domain's rules are the store's to check.
    fn parse(form: &Self::Form) -> Result<(Self::Stored, Vec<usize>), ValidationErrors>;

    /// Stores the record edited at `id`, unless it changed since `version`.
    fn update(
        tx: &mut WriteTx,
        id: &str,
        record: Self::Stored,
        version: Option<i64>,
        actor: &Actor,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The store's refusal, on the form's inputs (`lines` as from
    /// [`Editor::parse`]); by default its fields name them.
    fn refusal(
        _e: &Editing<'_, Self>,
        _lines: &[usize],
        errors: &ValidationErrors,
    ) -> impl Future<Output = Result<ValidationErrors, Response>> + Send {
        async { Ok(on_inputs(errors, str::to_string)) }
    }

    /// The refusal of a `Conflict` (an id taken), where one is expected.
    fn conflict(_id: Option<&str>) -> Option<ValidationErrors> {
        None
    }

    /// Where the form posts.
    fn action(id: Option<&str>) -> String {
        match id {
            Some(id) => format!("{OVERVIEW}/{}/{id}/edit", Self::PATH),
            None => format!("{OVERVIEW}/{}/new", Self::PATH),
        }
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage;

    /// The stored record's form and the page's context, or the answer that
    /// there is no such record.
    fn load(
        state: &AppState,
        p: &Principal,
        id: &str,
    ) -> impl Future<Output = Result<(Draft<Self::Form>, Self::Context), Response>> + Send {
        async move {
            let record = state
                .db
                .get::<Self::Stored>(&p.org_id, id)
                .await
                .map_err(|e| missing(Self::WHAT, e))?;
            Ok((stored::<Self>(&record), Self::context(state, p).await?))
        }
    }
}

/// A record with a page for a new one.
pub(crate) trait Creatable: Editor {
    /// What the new page's address may name.
    type Query: DeserializeOwned + Send;

    fn blank(ctx: &Self::Context, q: Self::Query) -> Self::Form;

    fn create(
        tx: &mut WriteTx,
        record: Self::Stored,
        actor: &Actor,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A record that can be deleted.
pub(crate) trait Deletable: Editor {
    /// The overview's `done` once deleted.
    const DELETED: &'static str;

    fn delete(
        tx: &mut WriteTx,
        id: &str,
        actor: &Actor,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// The address of a new page that takes nothing from it (whatever it says
/// is ignored).
#[derive(Deserialize)]
pub(crate) struct NoQuery {}

/// One record's form being answered: the record edited (none for a new
/// one), what was typed, and what the page needs.
pub(crate) struct Editing<'a, E: Editor> {
    state: &'a AppState,
    p: &'a Principal,
    ctx: &'a E::Context,
    id: Option<&'a str>,
    form: &'a Draft<E::Form>,
}

impl<'a, E: Editor> Editing<'a, E> {
    fn new(
        state: &'a AppState,
        p: &'a Principal,
        ctx: &'a E::Context,
        id: Option<&'a str>,
        form: &'a Draft<E::Form>,
    ) -> Self {
        Editing {
            state,
            p,
            ctx,
            id,
            form,
        }
    }

    fn page(&self, status: StatusCode, errors: &ValidationErrors) -> Response {
        let f = Fields { errors };
        let FormPage {
            title,
            before,
            inputs,
            save,
            delete,
            after,
        } = E::render(self, &f);
        let content = html! {
            (f.summary())
            @if let Some(before) = before { (before) }
            form method="post" action=(E::action(self.id)) novalidate {
                (csrf_field(self.p))
                @if let Some(v) = self.form.version { input type="hidden" name="version" value=(v); }
                (inputs)
                div.form-actions {
                    button type="submit" { (save) }
                    a href=(OVERVIEW) { "Cancel" }
                }
            }
            @if let Some(after) = after { (after) }
            @if let (Some(id), Some((what, hint))) = (self.id, delete) {
                (delete_form(self.p, &f, &format!("{OVERVIEW}/{}/{id}/delete", E::PATH), &what, hint))
            }
        };
        page(self.state, self.p, status, &title, content)
    }

    /// Stores what was typed with `write`.
    async fn save(
        &self,
        write: impl AsyncFnOnce(&mut WriteTx, E::Stored, &Actor) -> Result<(), StoreError>,
    ) -> Response {
        let (record, lines) = match E::parse(&self.form.values) {
            Ok(v) => v,
            Err(errors) => return self.page(StatusCode::UNPROCESSABLE_ENTITY, &errors),
        };
        let saved = in_tx(self.state, self.p, async |tx, actor| {
            write(tx, record, actor).await
        })
        .await;
        self.answer(&lines, saved).await
    }

    /// The overview once saved; else the form again with what is wrong.
    async fn answer(&self, lines: &[usize], saved: Result<(), StoreError>) -> Response {
        let (status, errors) = match saved {
            Ok(()) => return done(E::SAVED),
            Err(StoreError::Invalid(errors)) => match E::refusal(self, lines, &errors).await {
                Ok(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
                Err(r) => return r,
            },
            Err(StoreError::VersionConflict { .. }) => (StatusCode::CONFLICT, changed_meanwhile()),
            Err(e @ StoreError::Conflict(_)) => match E::conflict(self.id) {
                Some(errors) => (StatusCode::CONFLICT, errors),
                None => return missing(E::WHAT, e),
            },
            Err(e) => return missing(E::WHAT, e),
        };
        self.page(status, &errors)
    }
}

/// Runs `write` in one transaction as the signed-in administrator: the
/// change and its audit event are committed together or not at all.
async fn in_tx<T>(
    state: &AppState,
    p: &Principal,
    write: impl AsyncFnOnce(&mut WriteTx, &Actor) -> Result<T, StoreError>,
) -> Result<(), StoreError> {
    let actor = actor(p);
    let mut tx = state.db.begin(&p.org_id).await?;
    write(&mut tx, &actor).await?;
    tx.commit().await
}

/// `GET /admin/schedule/{PATH}/new`
pub(crate) async fn new_page<E: Creatable>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<E::Query>,
) -> Answer {
    let ctx = E::context(&state, &p).await?;
    let form = Draft {
        values: E::blank(&ctx, q),
        version: None,
    };
    let editing = Editing::<E>::new(&state, &p, &ctx, None, &form);
    Ok(editing.page(StatusCode::OK, &ValidationErrors::new()))
}

/// `POST /admin/schedule/{PATH}/new`
pub(crate) async fn create<E: Creatable>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Answer {
    let ctx = E::context(&state, &p).await?;
    let form = submitted::<E>(&pairs);
    let editing = Editing::<E>::new(&state, &p, &ctx, None, &form);
    Ok(editing
        .save(async |tx, record, actor| E::create(tx, record, actor).await)
        .await)
}

/// `GET /admin/schedule/{PATH}/{id}/edit`
pub(crate) async fn edit<E: Editor>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    stored_page::<E>(&state, &p, &id, StatusCode::OK, &ValidationErrors::new()).await
}

/// The stored record's form, with `errors`.
async fn stored_page<E: Editor>(
    state: &AppState,
    p: &Principal,
    id: &str,
    status: StatusCode,
    errors: &ValidationErrors,
) -> Answer {
    let (form, ctx) = E::load(state, p, id).await?;
    Ok(Editing::<E>::new(state, p, &ctx, Some(id), &form).page(status, errors))
}

/// `POST /admin/schedule/{PATH}/{id}/edit`
pub(crate) async fn update<E: Editor>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Answer {
    let (current, ctx) = E::load(&state, &p, &id).await?;
    let mut form = submitted::<E>(&pairs);
    E::edited(&mut form.values, &id, current.values);
    let editing = Editing::<E>::new(&state, &p, &ctx, Some(&id), &form);
    let version = form.version;
    Ok(editing
        .save(async |tx, record, actor| E::update(tx, &id, record, version, actor).await)
        .await)
}

/// `POST /admin/schedule/{PATH}/{id}/delete`, once confirmed.
pub(crate) async fn delete<E: Deletable>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Answer {
    if let Err(errors) = confirmation(&pairs) {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return stored_page::<E>(&state, &p, &id, status, &errors).await;
    }
    in_tx(&state, &p, async |tx, actor| {
        E::delete(tx, &id, actor).await
    })
    .await
    .map(|()| done(E::DELETED))
    .map_err(|e| missing(E::WHAT, e))
}

// ---------------------------------------------------------------- overview

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    done: String,
}

/// A section of the overview: its rows in a table, each with an "Edit"
/// link, or what `empty` says when there are none.
#[derive(Default)]
struct Listing<'a> {
    /// The section's; its heading's is `s-{id}`.
    id: &'a str,
    heading: String,
    /// The table's hidden caption, when not the heading.
    caption: Option<&'a str>,
    /// Under the heading.
    note: Option<&'a str>,
    /// Said instead of an empty table (none: the table shows anyway).
    empty: Option<&'a str>,
    columns: &'a [&'a str],
    /// The columns of numbers.
    numeric: &'a [&'a str],
}

impl Listing<'_> {
    /// `rows`: each one's cells, where its "Edit" link goes, and what it
    /// edits (for screen readers: " the template of …").
    fn render(&self, rows: impl Iterator<Item = (Markup, String, String)>) -> Markup {
        let rows: Vec<_> = rows.collect();
        let heading_id = format!("s-{}", self.id);
        html! {
            section id=(self.id) aria-labelledby=(heading_id) {
                h2 id=(heading_id) { (self.heading) }
                @if let Some(note) = self.note { p.muted { (note) } }
                @if let (Some(empty), true) = (self.empty, rows.is_empty()) {
                    p.empty { (empty) }
                } @else {
                    table {
                        caption.visually-hidden { (self.caption.unwrap_or(&self.heading)) }
                        thead { tr {
                            @for c in self.columns {
                                th class=[self.numeric.contains(c).then_some("num")] scope="col" { (c) }
                            }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody {
                            @for (cells, edit, what) in rows {
                                tr { (cells) td { a href=(edit) { "Edit" span.visually-hidden { (what) } } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn done_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "template-saved" => "The template was saved.",
        "template-deleted" => "The template was deleted.",
        "exception-saved" => "The exception was saved.",
        "exception-deleted" => "The exception was deleted.",
        "type-saved" => "The appointment type was saved.",
        "hours-saved" => "The opening hours were saved.",
        "resource-saved" => "The room or equipment was saved.",
        _ => return None,
    })
}

/// `GET /admin/schedule`: every template by provider and location, the
/// exceptions of the next twelve months, locations' hours, rooms and
/// equipment, and the appointment types, with links to change them.
pub async fn overview(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<OverviewQuery>,
) -> Answer {
    let dir = directory(&state, &p).await?;
    // The earliest "today" of any location, so that nothing still running
    // somewhere is left out.
    let from = dir
        .active_locations()
        .map(|l| today_in(&dir.tz(&l.id)))
        .min()
        .unwrap_or_else(|| today_in(&jiff::tz::TimeZone::UTC));
    let until = from.checked_add(1.year()).unwrap_or(from);
    let db = &state.db;
    let org = p.org_id.as_str();
    let loaded = async {
        let mut hours = Vec::new();
        for l in dir.active_locations() {
            hours.push((l, db.location_hours(org, &l.id).await?));
        }
        Ok::<_, StoreError>((
            db.templates(org, None).await?,
            db.schedule_exceptions(
                org,
                from.to_datetime(Time::midnight()),
                until.to_datetime(Time::midnight()),
            )
            .await?,
            db.schedule_resources(org, None).await?,
            hours,
        ))
    }
    .await;
    let (mut templates, exceptions, resources, hours) = loaded.map_err(ops::internal_error)?;
    templates.sort_by_cached_key(|t| {
        (
            dir.provider_name(&t.value.practitioner_id),
            dir.location_name(&t.value.location_id),
            t.value.effective_from,
        )
    });
    let new_exception = |kind: &str| format!("{OVERVIEW}/exceptions/new?kind={kind}");
    let content = html! {
        @if let Some(text) = done_text(&q.done) {
            p.notice.done role="status" { (text) }
        }
        p.lede {
            "How providers' time is offered for booking: weekly templates per location, the exceptions to them, and the appointment types. "
            "Times are wall-clock times at each location, in its time zone."
        }
        div.actions {
            a.button href=(format!("{OVERVIEW}/templates/new")) { "Add a weekly template" }
            @for (kind, label) in EXCEPTION_KINDS {
                a.button.secondary href=(new_exception(kind)) { "Add " (label.to_lowercase()) }
            }
            a.button.secondary href=(format!("{OVERVIEW}/types/new")) { "Add an appointment type" }
            a.button.secondary href=(format!("{OVERVIEW}/resources/new")) { "Add a room or equipment" }
        }
        (templates_section(&dir, &templates))
        (exceptions_section(&dir, &resources, &exceptions, from, until))
        (locations_section(&dir, &hours))
        (resources_section(&dir, &resources))
        (types_section(&dir))
    };
    Ok((
        StatusCode::OK,
        shell(
            &p,
            state.config.idle_timeout_secs,
            Area::Admin,
            "Scheduling setup",
            content,
        ),
    )
        .into_response())
}

fn templates_section(dir: &Directory, templates: &[Versioned<Template>]) -> Markup {
    let rows = templates.iter().map(|t| {
        let v = &t.value;
        let (provider, location) = (
            dir.provider_name(&v.practitioner_id),
            dir.location_name(&v.location_id),
        );
        let cells = html! {
            td { (provider) span.col-sub { (dir.specialty_names(&v.practitioner_id)) } }
            td { (location) span.col-sub { (zone_now(dir, &v.location_id)) } }
            td {
                ul.plain {
                    @for (days, (start, end, types, limit)) in block_groups(&v.blocks) {
                        li {
                            strong { (days_text(&days)) } " " (time_text(start)) "–" (time_text(end))
                            span.col-sub {
                                @if types.is_empty() { "Any type the provider offers" } @else { (type_names(dir, types)) }
                                @if let Some(l) = limit { "; " (extra_text(l)) }
                            }
                        }
                    }
                }
            }
            td {
                "From " (us_date(v.effective_from))
                br;
                @match v.effective_until { Some(u) => { "until " (us_date(u)) } None => { "no end date" } }
            }
            td { (extra_text(v.overbook_limit)) }
        };
        let what = format!(" the template of {provider} at {location}");
        (cells, Templates::action(Some(&t.id)), what)
    });
    Listing {
        id: "templates",
        heading: "Weekly templates".into(),
        empty: Some("No provider has a weekly template yet, so no slots are offered."),
        columns: &[
            "Provider",
            "Location",
            "Weekly hours (local time) and allowed types",
            "Effective",
            "Overbooking",
        ],
        ..Listing::default()
    }
    .render(rows)
}

fn exceptions_section(
    dir: &Directory,
    resources: &[Versioned<Resource>],
    exceptions: &[Versioned<ScheduleException>],
    from: Date,
    until: Date,
) -> Markup {
    let rows = exceptions.iter().map(|e| {
        let v = &e.value;
        let (who, details) = exception_text(dir, resources, &v.kind);
        let (kind, when) = (kind_label(&v.kind), span_text(v.start, v.end));
        let what = format!(" {} {who} {when}", kind.to_lowercase());
        let cells = html! { td { (kind) } td { (who) } td { (when) } td { (details) } };
        (cells, Exceptions::action(Some(&e.id)), what)
    });
    Listing {
        id: "exceptions",
        heading: format!("Exceptions from {} to {}", us_date(from), us_date(until)),
        caption: Some("Exceptions"),
        empty: Some("No time off, holidays, blocked time or extra sessions in this period."),
        columns: &["Kind", "Who or where", "When (local time)", "Details"],
        ..Listing::default()
    }
    .render(rows)
}

fn locations_section(dir: &Directory, hours: &[(&Versioned<Location>, LocationHours)]) -> Markup {
    let rows = hours.iter().map(|(l, h)| {
        let open = by_weekdays(h.opening_hours.iter().map(|o| (o.weekday, (o.open, o.close))));
        let cells = html! {
            td { (l.value.name) }
            td { (zone_now(dir, &l.id)) }
            td {
                @if open.is_empty() { "Closed to in-person visits" }
                ul.plain {
                    @for (days, (o, c)) in open { li { strong { (days_text(&days)) } " " (time_text(o)) "–" (time_text(c)) } }
                }
            }
        };
        let what = format!(" the opening hours of {}", l.value.name);
        (cells, Hours::action(Some(&l.id)), what)
    });
    Listing {
        id: "locations",
        heading: "Locations and opening hours".into(),
        note: Some("In-person visits are offered only while the location is open (or during an extra session there)."),
        columns: &["Location", "Time zone", "Open (local time)"],
        ..Listing::default()
    }
    .render(rows)
}

// ---------------------------------------------------------------- templates

#[derive(Debug, Clone, Default)]
struct BlockRow {
    days: Vec<String>,
    start: String,
    end: String,
    types: Vec<String>,
    overbook: String,
}

impl BlockRow {
    fn is_blank(&self) -> bool {
        self.days.is_empty()
            && self.start.is_empty()
            && self.end.is_empty()
            && self.types.is_empty()
            && self.overbook.is_empty()
    }
}

/// The template form as typed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateForm {
    practitioner_id: String,
    location_id: String,
    effective_from: String,
    effective_until: String,
    overbook_limit: String,
    rows: Vec<BlockRow>,
}

/// The store's errors on a template, put on the form's inputs: a block's
/// on its row, block numbers as row numbers, other templates by place and
/// date rather than id.
fn template_errors(
    errors: &ValidationErrors,
    rows: &[usize],
    others: &[Versioned<Template>],
    dir: &Directory,
) -> ValidationErrors {
    let row_number = |n: usize| n.checked_sub(1).and_then(|i| rows.get(i)).map(|r| r + 1);
    let mut out = ValidationErrors::new();
    for e in errors.errors() {
        let (field, message) = match (item_of("blocks", &e.field), e.field.as_str()) {
            (Some((i, tail)), _) => {
                let input = match tail {
                    "weekday" => "days",
                    "end" => "end",
                    "overbook_limit" => "overbook",
                    t if t.starts_with("appointment_type_ids") => "types",
                    _ => "start",
                };
                let row = rows.get(i).copied().unwrap_or(0);
                let overlapped = e
                    .message
                    .strip_prefix("overlaps block ")
                    .and_then(|rest| rest.split(' ').next()?.parse().ok())
                    .and_then(row_number);
                let message = match overlapped {
                    Some(n) => format!("overlaps block {n} on the same weekday"),
                    // "overlaps the provider's template <id>"
                    None => others
                        .iter()
                        .find_map(|t| {
                            let head = e.message.strip_suffix(t.id.as_str())?.strip_suffix(' ')?;
                            Some(format!(
                                "{head} at {} from {}",
                                dir.location_name(&t.value.location_id),
                                us_date(t.value.effective_from)
                            ))
                        })
                        .unwrap_or_else(|| store_message(&e.message)),
                };
                (format!("rows[{row}].{input}"), message)
            }
            (None, "blocks") => (
                "rows".to_string(),
                "need at least one block: tick its days and give its hours".to_string(),
            ),
            (None, "effective_until") => (
                e.field.clone(),
                "must not be before the effective-from date".to_string(),
            ),
            (None, _) => (e.field.clone(), store_message(&e.message)),
        };
        add_once(&mut out, field, message);
    }
    out
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    kind: String,
}

pub(crate) struct Templates;

impl Editor for Templates {
    type Stored = Template;
    type Form = TemplateForm;
    type Context = Directory;
    const WHAT: &'static str = "Template";
    const PATH: &'static str = "templates";
    const SAVED: &'static str = "template-saved";

    async fn context(state: &AppState, p: &Principal) -> Result<Directory, Response> {
        directory(state, p).await
    }

    fn from_stored(t: &Template) -> TemplateForm {
        TemplateForm {
            practitioner_id: t.practitioner_id.clone(),
            location_id: t.location_id.clone(),
            effective_from: t.effective_from.to_string(),
            effective_until: t.effective_until.map(|d| d.to_string()).unwrap_or_default(),
            overbook_limit: t.overbook_limit.to_string(),
            rows: block_groups(&t.blocks)
                .into_iter()
                .map(|(days, (start, end, types, limit))| BlockRow {
                    days: days.iter().map(u8::to_string).collect(),
                    start: start.strftime("%H:%M").to_string(),
                    end: end.strftime("%H:%M").to_string(),
                    types: types.to_vec(),
                    overbook: limit.map(|l| l.to_string()).unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn from_submitted(s: &Submitted) -> TemplateForm {
        let rows = (0..MAX_ROWS)
            .take_while(|i| s.has(&format!("rows[{i}].start")))
            .map(|i| {
                let f = |name: &str| format!("rows[{i}].{name}");
                BlockRow {
                    days: s.all(&f("days")),
                    start: s.text(&f("start")),
                    end: s.text(&f("end")),
                    types: s.all(&f("types")),
                    overbook: s.text(&f("overbook")),
                }
            })
            .collect();
        TemplateForm {
            practitioner_id: s.text("practitioner_id"),
            location_id: s.text("location_id"),
            effective_from: s.text("effective_from"),
            effective_until: s.text("effective_until"),
            overbook_limit: s.text("overbook_limit"),
            rows,
        }
    }

    /// The template and each block's row. Domain rules (times in order, no
    /// overlaps) are the store's to check.
    fn parse(form: &TemplateForm) -> Result<(Template, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let from = DATE.field(&mut errors, "effective_from", &form.effective_from, true);
        let until = DATE.field(&mut errors, "effective_until", &form.effective_until, false);
        let overbook = limit_field(&mut errors, "overbook_limit", &form.overbook_limit);
        let mut blocks = Vec::new();
        let mut rows = Vec::new();
        for (i, row) in form.rows.iter().enumerate().filter(|(_, r)| !r.is_blank()) {
            let f = |name: &str| format!("rows[{i}].{name}");
            if row.days.is_empty() {
                errors.add(f("days"), "are not chosen: tick at least one");
            }
            let start = TIME.field(&mut errors, &f("start"), &row.start, true);
            let end = TIME.field(&mut errors, &f("end"), &row.end, true);
            let limit = limit_field(&mut errors, &f("overbook"), &row.overbook);
            if let (Some(start), Some(end)) = (start, end) {
                for day in &row.days {
                    blocks.push(AvailabilityBlock {
                        // Not a weekday: the domain names the problem.
                        weekday: day.parse().unwrap_or(0),
                        start,
                        end,
                        appointment_type_ids: row.types.clone(),
                        overbook_limit: limit,
                    });
                    rows.push(i);
                }
            }
        }
        match (from, errors.is_empty()) {
            (Some(effective_from), true) => Ok((
                Template {
                    id: String::new(),
                    practitioner_id: form.practitioner_id.clone(),
                    location_id: form.location_id.clone(),
                    effective_from,
                    effective_until: until,
                    overbook_limit: overbook.unwrap_or(0),
                    blocks,
                },
                rows,
            )),
            _ => Err(errors),
        }
    }

    async fn update(
        tx: &mut WriteTx,
        id: &str,
        t: Template,
        version: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let t = Template {
            id: id.to_string(),
            ..t
        };
        tx.update_template(t, version, actor).await.map(drop)
    }

    async fn refusal(
        e: &Editing<'_, Self>,
        rows: &[usize],
        errors: &ValidationErrors,
    ) -> Result<ValidationErrors, Response> {
        let provider = Some(e.form.values.practitioner_id.as_str());
        let others = e
            .state
            .db
            .templates(&e.p.org_id, provider)
            .await
            .map_err(ops::internal_error)?;
        Ok(template_errors(errors, rows, &others, e.ctx))
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage {
        let (dir, form) = (e.ctx, &e.form.values);
        let named: Vec<String> = form.rows.iter().flat_map(|r| r.types.clone()).collect();
        let types = type_options(dir, &form.practitioner_id, &named);
        let weekdays = weekday_options(short_weekday);
        let (_, rows_error, rows_block) = f.error("rows");
        let inputs = html! {
            div.row {
                (f.select("practitioner_id", "Provider", &form.practitioner_id, &provider_options(dir, &form.practitioner_id), None))
                (f.select("location_id", "Location", &form.location_id, &location_options(dir, &form.location_id), None))
            }
            (zone_note(dir, &form.location_id))
            div.row {
                (f.input("effective_from", "Effective from", "date", &form.effective_from, true, None))
                (f.input("effective_until", "Effective until", "date", &form.effective_until, false, Some("The last day it applies; blank: no end date.")))
                (f.input("overbook_limit", "Extra bookings per slot", "number", &form.overbook_limit, false,
                    Some("0: no overbooking. A block may set its own.")))
            }
            section #(input_id("rows")) tabindex="-1" aria-labelledby="s-rows" aria-describedby=[rows_error] {
                h2 #s-rows { "Weekly hours" }
                p.hint {
                    "Each block is a stretch of local time on the days ticked. Blank blocks are ignored. "
                    "With no appointment type ticked, a block takes every type the provider offers."
                }
                (rows_block)
                @for (i, row) in padded(&form.rows, BlockRow::is_blank, BLOCK_ROWS).iter().enumerate() {
                    @let name = |n: &str| format!("rows[{i}].{n}");
                    fieldset.block {
                        legend { "Block " (i + 1) }
                        (f.checks(&name("days"), "Days", None, &weekdays, &row.days))
                        div.row {
                            (f.input(&name("start"), "Start", "time", &row.start, false, None))
                            (f.input(&name("end"), "End", "time", &row.end, false, None))
                            (f.input(&name("overbook"), "Extra bookings", "number", &row.overbook, false, Some("Blank: the template's.")))
                        }
                        @if !types.is_empty() {
                            (f.checks(&name("types"), "Appointment types", None, &types, &row.types))
                        }
                    }
                }
            }
        };
        FormPage {
            delete: Some((
                "this template".into(),
                "Booked appointments stay; no new slots are offered from it.",
            )),
            ..FormPage::new(title(e.id, "weekly template"), inputs, "Save template")
        }
    }
}

impl Creatable for Templates {
    type Query = NewQuery;

    async fn create(tx: &mut WriteTx, t: Template, actor: &Actor) -> Result<(), StoreError> {
        tx.create_template(t, actor).await.map(drop)
    }

    /// For a provider and location when named.
    fn blank(dir: &Directory, q: NewQuery) -> TemplateForm {
        let location_id = match dir.location(&q.location) {
            Some(_) => q.location,
            None => dir
                .locations_of(&q.provider)
                .first()
                .map(|l| l.id.clone())
                .unwrap_or_default(),
        };
        TemplateForm {
            effective_from: today_at(dir, &location_id).to_string(),
            practitioner_id: q.provider,
            location_id,
            overbook_limit: "0".into(),
            ..TemplateForm::default()
        }
    }
}

impl Deletable for Templates {
    const DELETED: &'static str = "template-deleted";

    async fn delete(tx: &mut WriteTx, id: &str, actor: &Actor) -> Result<i64, StoreError> {
        tx.delete_template(id, actor).await
    }
}

// ---------------------------------------------------------------- exceptions

/// The exception form as typed. `target` is what blocked time takes:
/// `practitioner:<id>` or `resource:<id>`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExceptionForm {
    kind: String,
    practitioner_id: String,
    location_id: String,
    target: String,
    name: String,
    reason: String,
    start_date: String,
    start_time: String,
    end_date: String,
    end_time: String,
    types: Vec<String>,
    overbook_limit: String,
}

impl ExceptionForm {
    fn is_extra(&self) -> bool {
        self.kind == "extra_session"
    }

    /// The input a domain error belongs to.
    fn input_for(&self, field: &str) -> String {
        let extra = self.is_extra();
        match field {
            "start" if extra || !self.start_time.is_empty() => "start_time",
            "start" => "start_date",
            "end" if extra || !self.end_time.is_empty() => "end_time",
            "end" => "end_date",
            "practitioner_id" | "resource_id" if self.kind == "blocked" => "target",
            f if f.starts_with("appointment_type_ids") => "types",
            f => f,
        }
        .to_string()
    }
}

/// The directory, and the rooms and equipment blocked time may name.
type ExceptionContext = (Directory, Vec<Versioned<Resource>>);

pub(crate) struct Exceptions;

impl Editor for Exceptions {
    type Stored = ScheduleException;
    type Form = ExceptionForm;
    type Context = ExceptionContext;
    const WHAT: &'static str = "Exception";
    const PATH: &'static str = "exceptions";
    const SAVED: &'static str = "exception-saved";

    async fn context(state: &AppState, p: &Principal) -> Result<ExceptionContext, Response> {
        let dir = directory(state, p).await?;
        let resources = state
            .db
            .schedule_resources(&p.org_id, None)
            .await
            .map_err(ops::internal_error)?;
        Ok((dir, resources))
    }

    fn from_stored(e: &ScheduleException) -> ExceptionForm {
        // Midnight ends a whole day: shown as the day before, with no time.
        let hm = |t: Time| {
            if t == Time::midnight() {
                String::new()
            } else {
                t.strftime("%H:%M").to_string()
            }
        };
        let end_date = match e.end.time() == Time::midnight() {
            true => e.end.date().yesterday().unwrap_or(e.end.date()),
            false => e.end.date(),
        };
        let mut form = ExceptionForm {
            kind: kind_code(&e.kind).into(),
            start_date: e.start.date().to_string(),
            start_time: hm(e.start.time()),
            end_date: end_date.to_string(),
            end_time: hm(e.end.time()),
            ..ExceptionForm::default()
        };
        match &e.kind {
            ExceptionKind::TimeOff { practitioner_id } => {
                form.practitioner_id = practitioner_id.clone();
            }
            ExceptionKind::Holiday { name, location_id } => {
                form.name = name.clone();
                form.location_id = location_id.clone().unwrap_or_default();
            }
            ExceptionKind::Blocked {
                reason,
                practitioner_id,
                resource_id,
            } => {
                form.reason = reason.clone();
                form.target = match (practitioner_id, resource_id) {
                    (Some(p), _) => format!("practitioner:{p}"),
                    (None, Some(r)) => format!("resource:{r}"),
                    (None, None) => String::new(),
                };
            }
            ExceptionKind::ExtraSession {
                practitioner_id,
                location_id,
                appointment_type_ids,
                overbook_limit,
            } => {
                form.practitioner_id = practitioner_id.clone();
                form.location_id = location_id.clone();
                form.types = appointment_type_ids.clone();
                form.overbook_limit = overbook_limit.to_string();
            }
        }
        form
    }

    fn from_submitted(s: &Submitted) -> ExceptionForm {
        ExceptionForm {
            kind: s.text("kind"),
            practitioner_id: s.text("practitioner_id"),
            location_id: s.text("location_id"),
            target: s.text("target"),
            name: s.text("name"),
            reason: s.text("reason"),
            start_date: s.text("start_date"),
            start_time: s.text("start_time"),
            end_date: s.text("end_date"),
            end_time: s.text("end_time"),
            types: s.all("types"),
            overbook_limit: s.text("overbook_limit"),
        }
    }

    /// The kind stays what it was.
    fn edited(form: &mut ExceptionForm, _id: &str, stored: ExceptionForm) {
        form.kind = stored.kind;
    }

    /// A blank time starts or ends the whole day; a blank end date is the
    /// start date. An extra session is one day with both times.
    fn parse(form: &ExceptionForm) -> Result<(ScheduleException, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let extra = form.is_extra();
        let start_date = DATE.field(&mut errors, "start_date", &form.start_date, true);
        let end_date = match extra || form.end_date.is_empty() {
            true => start_date,
            false => DATE.field(&mut errors, "end_date", &form.end_date, true),
        };
        let start_time = TIME.field(&mut errors, "start_time", &form.start_time, extra);
        let end_time = TIME.field(&mut errors, "end_time", &form.end_time, extra);
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let kind = match form.kind.as_str() {
            "time_off" => ExceptionKind::TimeOff {
                practitioner_id: form.practitioner_id.clone(),
            },
            "holiday" => ExceptionKind::Holiday {
                name: form.name.clone(),
                location_id: some(&form.location_id),
            },
            "blocked" => {
                let (practitioner_id, resource_id) = match form.target.split_once(':') {
                    Some(("practitioner", id)) => (some(id), None),
                    Some(("resource", id)) => (None, some(id)),
                    _ => {
                        errors.add("target", "is required");
                        (None, None)
                    }
                };
                ExceptionKind::Blocked {
                    reason: form.reason.clone(),
                    practitioner_id,
                    resource_id,
                }
            }
            "extra_session" => ExceptionKind::ExtraSession {
                practitioner_id: form.practitioner_id.clone(),
                location_id: form.location_id.clone(),
                appointment_type_ids: form.types.clone(),
                overbook_limit: limit_field(&mut errors, "overbook_limit", &form.overbook_limit)
                    .unwrap_or(0),
            },
            _ => {
                errors.add(
                    "kind",
                    "must be time off, a holiday, blocked time or an extra session",
                );
                return Err(errors);
            }
        };
        let (Some(start_date), Some(end_date), true) = (start_date, end_date, errors.is_empty())
        else {
            return Err(errors);
        };
        let end = match end_time {
            Some(t) => end_date.to_datetime(t),
            None => match end_date.tomorrow() {
                Ok(next) => next.to_datetime(Time::midnight()),
                Err(_) => return Err(ValidationErrors::single("end_date", "is too far ahead")),
            },
        };
        let exception = ScheduleException {
            id: String::new(),
            start: start_date.to_datetime(start_time.unwrap_or(Time::midnight())),
            end,
            kind,
        };
        Ok((exception, Vec::new()))
    }

    async fn update(
        tx: &mut WriteTx,
        id: &str,
        e: ScheduleException,
        version: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let e = ScheduleException {
            id: id.to_string(),
            ..e
        };
        tx.update_exception(e, version, actor).await.map(drop)
    }

    async fn refusal(
        e: &Editing<'_, Self>,
        _lines: &[usize],
        errors: &ValidationErrors,
    ) -> Result<ValidationErrors, Response> {
        Ok(on_inputs(errors, |f| e.form.values.input_for(f)))
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage {
        let ((dir, resources), form) = (e.ctx, &e.form.values);
        let kind = kind_name(&form.kind).to_lowercase();
        let providers = provider_options(dir, &form.practitioner_id);
        let locations = location_options(dir, &form.location_id);
        let whole_days = "Leave the times blank for whole days.";
        let targets: Vec<(String, String)> = provider_options(dir, "")
            .into_iter()
            .map(|(id, name)| (format!("practitioner:{id}"), name))
            .chain(resources.iter().filter(|r| r.value.active).map(|r| {
                (
                    format!("resource:{}", r.id),
                    resource_name(resources, dir, &r.id),
                )
            }))
            .collect();
        let inputs = html! {
            input type="hidden" name="kind" value=(form.kind);
            @match form.kind.as_str() {
                "holiday" => {
                    div.row {
                        (f.input("name", "Name", "text", &form.name, true, Some("As staff will see it, e.g. Independence Day.")))
                        (f.select("location_id", "Location", &form.location_id, &locations, Some("All locations")))
                    }
                }
                "blocked" => {
                    div.row {
                        (f.select("target", "Provider or room", &form.target, &targets, None))
                        (f.input("reason", "Reason", "text", &form.reason, true, Some("e.g. staff meeting, equipment service.")))
                    }
                }
                "extra_session" => {
                    div.row {
                        (f.select("practitioner_id", "Provider", &form.practitioner_id, &providers, None))
                        (f.select("location_id", "Location", &form.location_id, &locations, None))
                    }
                }
                _ => {
                    (f.select("practitioner_id", "Provider", &form.practitioner_id, &providers, None))
                }
            }
            @let location = if matches!(form.kind.as_str(), "holiday" | "extra_session") { form.location_id.as_str() } else { "" };
            (zone_note(dir, location))
            @if form.is_extra() {
                div.row {
                    (f.input("start_date", "Date", "date", &form.start_date, true, None))
                    (f.input("start_time", "Start time", "time", &form.start_time, true, None))
                    (f.input("end_time", "End time", "time", &form.end_time, true, None))
                    (f.input("overbook_limit", "Extra bookings per slot", "number", &form.overbook_limit, false, Some("0: no overbooking.")))
                }
                @let types = type_options(dir, &form.practitioner_id, &form.types);
                @if !types.is_empty() {
                    (f.checks("types", "Appointment types", Some("None ticked: every type the provider offers."), &types, &form.types))
                }
            } @else {
                div.row {
                    (f.input("start_date", "Start date", "date", &form.start_date, true, None))
                    (f.input("start_time", "Start time", "time", &form.start_time, false, Some(whole_days)))
                }
                div.row {
                    (f.input("end_date", "End date", "date", &form.end_date, false, Some("Blank: the start date.")))
                    (f.input("end_time", "End time", "time", &form.end_time, false, Some(whole_days)))
                }
            }
        };
        FormPage {
            delete: Some((
                format!("this {kind}"),
                "The schedule goes back to the weekly templates for this time.",
            )),
            ..FormPage::new(title(e.id, &kind), inputs, &format!("Save {kind}"))
        }
    }
}

impl Creatable for Exceptions {
    type Query = NewQuery;

    async fn create(
        tx: &mut WriteTx,
        e: ScheduleException,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        tx.create_exception(e, actor).await.map(drop)
    }

    /// `?kind=time_off|holiday|blocked|extra_session`, for a provider and
    /// location when named.
    fn blank((dir, _): &ExceptionContext, q: NewQuery) -> ExceptionForm {
        let kind = match EXCEPTION_KINDS.iter().find(|(c, _)| *c == q.kind) {
            Some((c, _)) => c.to_string(),
            None => "time_off".to_string(),
        };
        ExceptionForm {
            kind,
            start_date: today_at(dir, &q.location).to_string(),
            practitioner_id: q.provider,
            location_id: q.location,
            overbook_limit: "0".into(),
            ..ExceptionForm::default()
        }
    }
}

impl Deletable for Exceptions {
    const DELETED: &'static str = "exception-deleted";

    async fn delete(tx: &mut WriteTx, id: &str, actor: &Actor) -> Result<i64, StoreError> {
        tx.delete_exception(id, actor).await
    }
}

// ---------------------------------------------------------------- appointment types

fn types_section(dir: &Directory) -> Markup {
    let rows = dir.types.iter().map(|t| {
        let v = &t.value;
        let cells = html! {
            td { (v.name) }
            td { code { (v.id) } }
            td.num { (v.duration_minutes) }
            td { (offered_by_text(dir, v)) }
            td {
                (modality_label(v.modality)) ", " (eligibility_label(v.eligibility).to_lowercase())
                @if let Some(k) = v.resource_kind { span.col-sub { "Needs: " (k.label()) } }
            }
            td { @if v.active { "Active" } @else { "Inactive" } }
        };
        (cells, Types::action(Some(&t.id)), format!(" {}", v.name))
    });
    Listing {
        id: "types",
        heading: "Appointment types".into(),
        empty: Some("No appointment types yet: add one before templates can offer slots."),
        columns: &["Name", "Code", "Minutes", "Offered by", "Visit", "Status"],
        numeric: &["Minutes"],
        ..Listing::default()
    }
    .render(rows)
}

fn offered_by_text(dir: &Directory, t: &AppointmentType) -> String {
    let specialties = t.specialties.iter().map(|c| {
        SPECIALTIES
            .iter()
            .find(|s| s.code == c)
            .map_or(c.clone(), |s| s.display.to_string())
    });
    let providers = t.practitioner_ids.iter().map(|id| dir.provider_name(id));
    specialties.chain(providers).collect::<Vec<_>>().join(", ")
}

/// The appointment type form as typed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeForm {
    id: String,
    name: String,
    duration_minutes: String,
    color: String,
    specialties: Vec<String>,
    practitioner_ids: Vec<String>,
    resource_kind: String,
    modality: String,
    eligibility: String,
    min_notice_minutes: String,
    max_days_ahead: String,
    instructions: String,
    intake_form: String,
    active: bool,
}

/// The domain's errors on a type, on the form's inputs.
fn type_errors(errors: &ValidationErrors) -> ValidationErrors {
    let mut out = ValidationErrors::new();
    for e in errors.errors() {
        let field = e.field.split('[').next().unwrap_or_default().to_string();
        let message = match e.field.as_str() {
            "specialties" => "or providers: tick at least one who offers this type".to_string(),
            "resource_kind" => "must be none for a telehealth visit".to_string(),
            _ => store_message(&e.message),
        };
        add_once(&mut out, field, message);
    }
    out
}

pub(crate) struct Types;

impl Editor for Types {
    type Stored = AppointmentType;
    type Form = TypeForm;
    type Context = Directory;
    const WHAT: &'static str = "Appointment type";
    const PATH: &'static str = "types";
    const SAVED: &'static str = "type-saved";

    async fn context(state: &AppState, p: &Principal) -> Result<Directory, Response> {
        directory(state, p).await
    }

    fn from_stored(t: &AppointmentType) -> TypeForm {
        TypeForm {
            id: t.id.clone(),
            name: t.name.clone(),
            duration_minutes: t.duration_minutes.to_string(),
            color: t.color.clone(),
            specialties: t.specialties.clone(),
            practitioner_ids: t.practitioner_ids.clone(),
            resource_kind: t.resource_kind.map(code).unwrap_or_default(),
            modality: code(t.modality),
            eligibility: code(t.eligibility),
            min_notice_minutes: t.min_notice_minutes.to_string(),
            max_days_ahead: t.max_days_ahead.to_string(),
            instructions: t.instructions.clone().unwrap_or_default(),
            intake_form: t.intake_form.clone().unwrap_or_default(),
            active: t.active,
        }
    }

    fn from_submitted(s: &Submitted) -> TypeForm {
        TypeForm {
            id: s.text("id"),
            name: s.text("name"),
            duration_minutes: s.text("duration_minutes"),
            color: s.text("color"),
            specialties: s.all("specialties"),
            practitioner_ids: s.all("practitioner_ids"),
            resource_kind: s.text("resource_kind"),
            modality: s.text("modality"),
            eligibility: s.text("eligibility"),
            min_notice_minutes: s.text("min_notice_minutes"),
            max_days_ahead: s.text("max_days_ahead"),
            instructions: s.text("instructions"),
            intake_form: s.text("intake_form"),
            active: s.has("active"),
        }
    }

    /// The code is the address's.
    fn edited(form: &mut TypeForm, id: &str, _stored: TypeForm) {
        form.id = id.to_string();
    }

    /// A code is part of addresses (and FHIR ids), so it keeps to their
    /// characters.
    fn parse(form: &TypeForm) -> Result<(AppointmentType, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !form
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            errors.add("id", "may contain only letters, digits, '-' and '.'");
        }
        let minutes = "a whole number of minutes";
        let duration = number_field(
            &mut errors,
            "duration_minutes",
            &form.duration_minutes,
            minutes,
        );
        let notice = number_field(
            &mut errors,
            "min_notice_minutes",
            &form.min_notice_minutes,
            minutes,
        );
        let ahead = number_field(
            &mut errors,
            "max_days_ahead",
            &form.max_days_ahead,
            "a whole number of days",
        );
        let resource_kind = match form.resource_kind.as_str() {
            "" => None,
            k => {
                let kind = from_code(k);
                if kind.is_none() {
                    errors.add("resource_kind", "is not a kind of room or equipment");
                }
                kind
            }
        };
        let modality = from_code(&form.modality);
        if modality.is_none() {
            errors.add("modality", "must be in person or telehealth");
        }
        let eligibility = from_code(&form.eligibility);
        if eligibility.is_none() {
            errors.add("eligibility", "must be new, established or any patient");
        }
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match (modality, eligibility, errors.is_empty()) {
            (Some(modality), Some(eligibility), true) => Ok((
                AppointmentType {
                    id: form.id.clone(),
                    name: form.name.clone(),
                    duration_minutes: duration.unwrap_or(0),
                    color: form.color.clone(),
                    specialties: form.specialties.clone(),
                    practitioner_ids: form.practitioner_ids.clone(),
                    resource_kind,
                    modality,
                    eligibility,
                    min_notice_minutes: notice.unwrap_or(0),
                    max_days_ahead: ahead.unwrap_or(0),
                    instructions: text(&form.instructions),
                    intake_form: text(&form.intake_form),
                    active: form.active,
                },
                Vec::new(),
            )),
            _ => Err(errors),
        }
    }

    async fn update(
        tx: &mut WriteTx,
        _id: &str,
        t: AppointmentType,
        version: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        tx.update_appointment_type(t, version, actor)
            .await
            .map(drop)
    }

    async fn refusal(
        _e: &Editing<'_, Self>,
        _lines: &[usize],
        errors: &ValidationErrors,
    ) -> Result<ValidationErrors, Response> {
        Ok(type_errors(errors))
    }

    /// Only a new type's code can be taken.
    fn conflict(id: Option<&str>) -> Option<ValidationErrors> {
        id.is_none()
            .then(|| ValidationErrors::single("id", "is already used by another appointment type"))
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage {
        let (dir, form) = (e.ctx, &e.form.values);
        let specialties: Vec<(String, String)> = SPECIALTIES
            .iter()
            .map(|s| (s.code.to_string(), s.display.to_string()))
            .collect();
        let providers: Vec<(String, String)> = dir
            .practitioners
            .iter()
            .filter(|x| x.value.active || form.practitioner_ids.contains(&x.id))
            .map(|x| (x.id.clone(), dir.provider_name(&x.id)))
            .collect();
        let kinds = resource_kind_options();
        let modalities: Vec<(String, String)> = [Modality::InPerson, Modality::Telehealth]
            .into_iter()
            .map(|m| (code(m), modality_label(m).to_string()))
            .collect();
        let eligibilities: Vec<(String, String)> = [
            PatientEligibility::Any,
            PatientEligibility::New,
            PatientEligibility::Established,
        ]
        .into_iter()
        .map(|e| (code(e), eligibility_label(e).to_string()))
        .collect();
        let (instructions_invalid, instructions_error, instructions_block) =
            f.error("instructions");
        let inputs = html! {
            div.row {
                (f.input("name", "Name", "text", &form.name, true, None))
                @if e.id.is_some() {
                    p { "Code: " code { (form.id) } }
                } @else {
                    (f.input("id", "Code", "text", &form.id, false, Some("Used by integrations, e.g. derm-visit. Blank: one is made up.")))
                }
            }
            div.row {
                (f.input("duration_minutes", "Duration (minutes)", "number", &form.duration_minutes, true, None))
                (f.input("color", "Colour on the calendar", "color", &form.color, true, None))
                (f.select("modality", "Visit", &form.modality, &modalities, None))
                (f.select("eligibility", "Patients", &form.eligibility, &eligibilities, None))
                (f.select("resource_kind", "Room or equipment", &form.resource_kind, &kinds, Some("None needed")))
            }
            (f.checks("specialties", "Offered by providers of these specialties", None, &specialties, &form.specialties))
            (f.checks("practitioner_ids", "Also offered by these providers", None, &providers, &form.practitioner_ids))
            div.row {
                (f.input("min_notice_minutes", "Minimum notice (minutes)", "number", &form.min_notice_minutes, false,
                    Some("Slots starting sooner are not offered.")))
                (f.input("max_days_ahead", "Bookable ahead (days)", "number", &form.max_days_ahead, true, None))
                (f.input("intake_form", "Intake form", "text", &form.intake_form, false, None))
            }
            div.field.invalid[instructions_invalid.is_some()] {
                label for="f-instructions" { "Instructions for the patient" }
                textarea #f-instructions name="instructions" rows="3"
                    aria-invalid=[instructions_invalid] aria-describedby=[instructions_error] { (form.instructions) }
                (instructions_block)
            }
            div.tick {
                input #f-active type="checkbox" name="active" value="on" checked[form.active];
                label for="f-active" { "Active (inactive types are not offered for booking; their appointments stay)" }
            }
        };
        let what = "appointment type";
        FormPage::new(title(e.id, what), inputs, &format!("Save {what}"))
    }
}

impl Creatable for Types {
    type Query = NoQuery;

    async fn create(tx: &mut WriteTx, t: AppointmentType, actor: &Actor) -> Result<(), StoreError> {
        tx.create_appointment_type(t, actor).await.map(drop)
    }

    fn blank(_dir: &Directory, _q: NoQuery) -> TypeForm {
        TypeForm {
            duration_minutes: "20".into(),
            color: "#2a7ab0".into(),
            modality: code(Modality::InPerson),
            eligibility: code(PatientEligibility::Any),
            min_notice_minutes: "0".into(),
            max_days_ahead: "180".into(),
            active: true,
            ..TypeForm::default()
        }
    }
}

// ---------------------------------------------------------------- opening hours

/// One line of a location's opening hours as typed.
#[derive(Debug, Clone, Default)]
struct HoursLine {
    weekday: String,
    open: String,
    close: String,
}

impl HoursLine {
    fn is_blank(&self) -> bool {
        self.weekday.is_empty() && self.open.is_empty() && self.close.is_empty()
    }
}

/// A location's opening hours as typed: one line per stretch of a day.
#[derive(Debug, Clone, Default)]
pub(crate) struct HoursForm {
    lines: Vec<HoursLine>,
}

/// The store's errors on opening hours, on the lines they came from.
fn hours_errors(errors: &ValidationErrors, lines: &[usize]) -> ValidationErrors {
    let line = |i: usize| lines.get(i).copied().unwrap_or(0);
    let mut out = ValidationErrors::new();
    for e in errors.errors() {
        let (field, message) = match item_of("opening_hours", &e.field) {
            Some((i, "weekday")) => (
                format!("hours[{}].weekday", line(i)),
                "must be a day of the week, Monday to Sunday".to_string(),
            ),
            Some((i, tail)) => (format!("hours[{}].{tail}", line(i)), e.message.clone()),
            None => (e.field.clone(), store_message(&e.message)),
        };
        add_once(&mut out, field, message);
    }
    out
}

/// A location's opening hours, edited at the location's address.
pub(crate) struct Hours;

impl Editor for Hours {
    type Stored = LocationOpeningHours;
    type Form = HoursForm;
    type Context = Directory;
    const WHAT: &'static str = "Location";
    const PATH: &'static str = "locations";
    const SAVED: &'static str = "hours-saved";

    async fn context(state: &AppState, p: &Principal) -> Result<Directory, Response> {
        directory(state, p).await
    }

    fn from_stored(stored: &LocationOpeningHours) -> HoursForm {
        let mut hours = stored.opening_hours.clone();
        hours.sort_by_key(|h| (h.weekday, h.open));
        HoursForm {
            lines: hours
                .iter()
                .map(|h| HoursLine {
                    weekday: h.weekday.to_string(),
                    open: h.open.strftime("%H:%M").to_string(),
                    close: h.close.strftime("%H:%M").to_string(),
                })
                .collect(),
        }
    }

    fn from_submitted(s: &Submitted) -> HoursForm {
        let lines = (0..MAX_ROWS)
            .take_while(|i| s.has(&format!("hours[{i}].weekday")))
            .map(|i| {
                let f = |name: &str| s.text(&format!("hours[{i}].{name}"));
                HoursLine {
                    weekday: f("weekday"),
                    open: f("open"),
                    close: f("close"),
                }
            })
            .collect();
        HoursForm { lines }
    }

    /// The hours with each one's line; the domain checks weekdays, order
    /// and overlaps.
    fn parse(form: &HoursForm) -> Result<(LocationOpeningHours, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut opening_hours = Vec::new();
        let mut lines = Vec::new();
        for (i, line) in form.lines.iter().enumerate().filter(|(_, l)| !l.is_blank()) {
            let f = |name: &str| format!("hours[{i}].{name}");
            let weekday = line.weekday.parse().ok();
            match (&weekday, line.weekday.is_empty()) {
                (Some(_), _) => {}
                (None, true) => errors.add(f("weekday"), "is required"),
                (None, false) => errors.add(
                    f("weekday"),
                    format!("'{}' is not a day of the week", line.weekday),
                ),
            }
            let open = TIME.field(&mut errors, &f("open"), &line.open, true);
            let close = TIME.field(&mut errors, &f("close"), &line.close, true);
            if let (Some(weekday), Some(open), Some(close)) = (weekday, open, close) {
                opening_hours.push(OpeningHours {
                    weekday,
                    open,
                    close,
                });
                lines.push(i);
            }
        }
        errors.into_result((LocationOpeningHours { opening_hours }, lines))
    }

    /// Replaces the week's hours.
    async fn update(
        tx: &mut WriteTx,
        id: &str,
        hours: LocationOpeningHours,
        version: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        tx.update_location_hours(id, hours.opening_hours, version, actor)
            .await
            .map(drop)
    }

    async fn refusal(
        _e: &Editing<'_, Self>,
        lines: &[usize],
        errors: &ValidationErrors,
    ) -> Result<ValidationErrors, Response> {
        Ok(hours_errors(errors, lines))
    }

    /// Someone else stored the first hours meanwhile.
    fn conflict(_id: Option<&str>) -> Option<ValidationErrors> {
        Some(changed_meanwhile())
    }

    fn action(id: Option<&str>) -> String {
        format!("{OVERVIEW}/{}/{}/hours", Self::PATH, id.unwrap_or_default())
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage {
        let (dir, location_id) = (e.ctx, e.id.unwrap_or_default());
        let weekdays = weekday_options(weekday_name);
        // A line per day of the week at least.
        let lines = padded(&e.form.values.lines, HoursLine::is_blank, 7);
        let inputs = html! {
            p.hint {
                "In-person visits are offered only while the location is open (or during an extra session there). "
                "A day without a line is closed; two lines on one day leave a gap, such as a lunch closure. Blank lines are ignored."
            }
            @for (i, line) in lines.iter().enumerate() {
                @let name = |n: &str| format!("hours[{i}].{n}");
                fieldset.block {
                    legend { "Line " (i + 1) }
                    div.row {
                        (f.select(&name("weekday"), "Day", &line.weekday, &weekdays, Some("—")))
                        (f.input(&name("open"), "Opens", "time", &line.open, false, None))
                        (f.input(&name("close"), "Closes", "time", &line.close, false, None))
                    }
                }
            }
        };
        let title = format!("Opening hours of {}", dir.location_name(location_id));
        FormPage {
            before: Some(zone_note(dir, location_id)),
            ..FormPage::new(title, inputs, "Save opening hours")
        }
    }

    /// The hours of a location that exists; none stored yet are version 0.
    async fn load(
        state: &AppState,
        p: &Principal,
        id: &str,
    ) -> Result<(Draft<HoursForm>, Directory), Response> {
        let dir = Self::context(state, p).await?;
        if dir.location(id).is_none() {
            return Err(missing(Self::WHAT, StoreError::NotFound));
        }
        let form = match state.db.get::<LocationOpeningHours>(&p.org_id, id).await {
            Ok(h) => stored::<Self>(&h),
            Err(StoreError::NotFound) => Draft {
                values: HoursForm::default(),
                version: Some(0),
            },
            Err(e) => return Err(ops::internal_error(e)),
        };
        Ok((form, dir))
    }
}

// ---------------------------------------------------------------- rooms and equipment

fn resources_section(dir: &Directory, resources: &[Versioned<Resource>]) -> Markup {
    let mut sorted: Vec<&Versioned<Resource>> = resources.iter().collect();
    sorted.sort_by_cached_key(|r| {
        (
            dir.location_name(&r.value.location_id),
            r.value.name.clone(),
        )
    });
    let rows = sorted.into_iter().map(|r| {
        let v = &r.value;
        let cells = html! {
            td { (v.name) }
            td { (dir.location_name(&v.location_id)) }
            td { (v.kind.label()) }
            td { @if v.active { "Active" } @else { "Inactive" } }
        };
        (
            cells,
            Resources::action(Some(&r.id)),
            format!(" {}", v.name),
        )
    });
    Listing {
        id: "resources",
        heading: "Rooms and equipment".into(),
        note: Some("A type that needs a room or equipment is booked only with one of its kind free at the location."),
        empty: Some("No bookable rooms or equipment yet."),
        columns: &["Name", "Location", "Kind", "Status"],
        ..Listing::default()
    }
    .render(rows)
}

/// The room or equipment form as typed, and the directory room chosen in
/// the form that makes one bookable.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceForm {
    location_id: String,
    name: String,
    kind: String,
    active: bool,
    room_id: String,
}

impl ResourceForm {
    fn blank() -> Self {
        ResourceForm {
            active: true,
            ..ResourceForm::default()
        }
    }
}

/// Directory rooms not bookable yet (a bookable room keeps the room's id).
async fn unbooked_rooms(
    state: &AppState,
    p: &Principal,
    dir: &Directory,
) -> Result<Vec<(String, String)>, Response> {
    let db = &state.db;
    let loaded = async {
        let (rooms, _) = db.search::<Room>(&p.org_id, &[], ALL).await?;
        let resources = db.schedule_resources(&p.org_id, None).await?;
        Ok::<_, StoreError>((rooms, resources))
    }
    .await;
    let (rooms, resources) = loaded.map_err(ops::internal_error)?;
    Ok(rooms
        .into_iter()
        .filter(|room| !resources.iter().any(|r| r.id == room.id))
        .map(|room| {
            let text = format!(
                "{} — {} ({})",
                room.value.name,
                dir.location_name(&room.value.location_id),
                ResourceKind::from(room.value.kind).label()
            );
            (room.id, text)
        })
        .collect())
}

/// The directory, and its rooms not bookable yet.
type ResourceContext = (Directory, Vec<(String, String)>);

pub(crate) struct Resources;

impl Editor for Resources {
    type Stored = Resource;
    type Form = ResourceForm;
    type Context = ResourceContext;
    const WHAT: &'static str = "Room or equipment";
    const PATH: &'static str = "resources";
    const SAVED: &'static str = "resource-saved";

    async fn context(state: &AppState, p: &Principal) -> Result<ResourceContext, Response> {
        let dir = directory(state, p).await?;
        let rooms = unbooked_rooms(state, p, &dir).await?;
        Ok((dir, rooms))
    }

    fn from_stored(r: &Resource) -> ResourceForm {
        ResourceForm {
            location_id: r.location_id.clone(),
            name: r.name.clone(),
            kind: code(r.kind),
            active: r.active,
            room_id: String::new(),
        }
    }

    fn from_submitted(s: &Submitted) -> ResourceForm {
        ResourceForm {
            location_id: s.text("location_id"),
            name: s.text("name"),
            kind: s.text("kind"),
            active: s.has("active"),
            room_id: s.text("room_id"),
        }
    }

    /// The domain and the store check the rest.
    fn parse(form: &ResourceForm) -> Result<(Resource, Vec<usize>), ValidationErrors> {
        let kind = match form.kind.as_str() {
            "" => Err("is required"),
            k => from_code(k).ok_or("is not a kind of room or equipment"),
        };
        match kind {
            Ok(kind) => Ok((
                Resource {
                    id: String::new(),
                    location_id: form.location_id.clone(),
                    name: form.name.clone(),
                    kind,
                    active: form.active,
                },
                Vec::new(),
            )),
            Err(message) => Err(ValidationErrors::single("kind", message)),
        }
    }

    async fn update(
        tx: &mut WriteTx,
        id: &str,
        r: Resource,
        version: Option<i64>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let r = Resource {
            id: id.to_string(),
            ..r
        };
        tx.update_resource(r, version, actor).await.map(drop)
    }

    /// Only a directory room keeps an id of its own: it is bookable already.
    fn conflict(_id: Option<&str>) -> Option<ValidationErrors> {
        Some(ValidationErrors::single("room_id", "is bookable already"))
    }

    fn render(e: &Editing<'_, Self>, f: &Fields) -> FormPage {
        let ((dir, rooms), form) = (e.ctx, &e.form.values);
        let inputs = html! {
            div.row {
                (f.input("name", "Name", "text", &form.name, true, Some("As staff will see it, e.g. Exam 3 or ECG cart.")))
                (f.select("kind", "Kind", &form.kind, &resource_kind_options(), None))
                (f.select("location_id", "Location", &form.location_id, &location_options(dir, &form.location_id), None))
            }
            div.tick {
                input #f-active type="checkbox" name="active" value="on" checked[form.active];
                label for="f-active" { "Active (inactive rooms and equipment are not booked; their appointments stay)" }
            }
        };
        let offer_rooms = e.id.is_none() && (!rooms.is_empty() || !form.room_id.is_empty());
        let after = html! {
            section aria-labelledby="s-rooms" {
                h2 #s-rooms { "Or make a directory room bookable" }
                p.hint { "Rooms of the clinic directory that cannot be booked yet; the name and kind come from the directory." }
                form method="post" action=(format!("{OVERVIEW}/resources/rooms")) novalidate {
                    (csrf_field(e.p))
                    div.row { (f.select("room_id", "Directory room", &form.room_id, rooms, None)) }
                    div.form-actions { button.secondary type="submit" { "Make bookable" } }
                }
            }
        };
        let what = "room or equipment";
        FormPage {
            after: offer_rooms.then_some(after),
            ..FormPage::new(title(e.id, what), inputs, &format!("Save {what}"))
        }
    }
}

impl Creatable for Resources {
    type Query = NoQuery;

    async fn create(tx: &mut WriteTx, r: Resource, actor: &Actor) -> Result<(), StoreError> {
        tx.create_resource(r, actor).await.map(drop)
    }

    fn blank(_ctx: &ResourceContext, _q: NoQuery) -> ResourceForm {
        ResourceForm::blank()
    }
}

/// `POST /admin/schedule/resources/rooms`: makes a directory room bookable.
pub(crate) async fn add_room(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Answer {
    let ctx = Resources::context(&state, &p).await?;
    let room_id = Submitted(&pairs).text("room_id");
    let form = Draft {
        values: ResourceForm {
            room_id: room_id.clone(),
            ..ResourceForm::blank()
        },
        version: None,
    };
    let editing = Editing::<Resources>::new(&state, &p, &ctx, None, &form);
    if room_id.is_empty() {
        let errors = ValidationErrors::single("room_id", "is required");
        return Ok(editing.page(StatusCode::UNPROCESSABLE_ENTITY, &errors));
    }
    let saved = in_tx(&state, &p, async |tx, actor| {
        tx.add_room_resource(&room_id, actor).await
    })
    .await;
    Ok(editing.answer(&[], saved).await)
}

#[cfg(test)]
mod tests {
    use super::{days_text, parse_time, span_text};
    use jiff::civil::{date, time};

    #[test]
    fn times_are_read_as_typed_or_as_the_time_input_sends_them() {
        assert_eq!(parse_time("09:05"), Some(time(9, 5, 0, 0)));
        assert_eq!(parse_time("9:05 am"), Some(time(9, 5, 0, 0)));
        assert_eq!(parse_time("12:30 PM"), Some(time(12, 30, 0, 0)));
        assert_eq!(parse_time("12:00am"), Some(time(0, 0, 0, 0)));
        assert_eq!(parse_time("17:45:00"), Some(time(17, 45, 0, 0)));
        for bad in ["", "9", "9:5", "13:00 pm", "24:00", "noon"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn weekdays_and_spans_read_as_people_say_them() {
        assert_eq!(days_text(&[1, 2, 3, 4, 5]), "Mon–Fri");
        assert_eq!(days_text(&[1, 3, 4, 5]), "Mon, Wed–Fri");
        assert_eq!(days_text(&[2, 4]), "Tue, Thu");
        assert_eq!(days_text(&[1, 2, 3, 4, 5, 6, 7]), "Every day");
        let d = date(2026, 12, 24);
        let midnight = |d: jiff::civil::Date| d.at(0, 0, 0, 0);
        assert_eq!(
            span_text(midnight(d), midnight(d.tomorrow().unwrap())),
            "Thu 12/24/2026, all day"
        );
        assert_eq!(
            span_text(midnight(d), midnight(date(2026, 12, 27))),
            "Thu 12/24/2026 – Sat 12/26/2026, all day"
        );
        assert_eq!(
            span_text(d.at(12, 0, 0, 0), midnight(d.tomorrow().unwrap())),
            "Thu 12/24/2026 12:00 PM to end of day"
        );
        assert_eq!(
            span_text(d.at(15, 0, 0, 0), d.at(16, 30, 0, 0)),
            "Thu 12/24/2026 3:00 PM–4:30 PM"
        );
    }
}
