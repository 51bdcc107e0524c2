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
use carefront_domain::directory::{Room, SPECIALTIES, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, AvailabilityBlock, ExceptionKind, MAX_OVERBOOK_LIMIT, Modality, OpeningHours,
    PatientEligibility, Resource, ResourceKind, ScheduleException, Template,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{LocationOpeningHours, StoreError};
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

/// Lines of a form: two blank ones after the last one used, and at least
/// `min`.
fn pad<T: Default>(rows: &mut Vec<T>, is_blank: fn(&T) -> bool, min: usize) {
    let used = rows.iter().rposition(|r| !is_blank(r)).map_or(0, |i| i + 1);
    rows.resize_with(min.max(used + 2), T::default);
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
struct Fields<'a> {
    errors: &'a ValidationErrors,
}

impl Fields<'_> {
    /// aria-invalid, the message's id and the message of one input.
    fn error(&self, name: &str) -> (Option<&'static str>, Option<String>, Markup) {
        labelled_inline_error(self.errors, name, anchor, label)
    }

    fn summary(&self) -> Markup {
        labelled_error_summary("form-errors", self.errors, anchor, label)
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
        let id = input_id(name);
        let (invalid, error_id, block) = self.error(name);
        let hint_id = hint.map(|_| format!("{id}-hint"));
        let described = described(error_id, hint_id.clone());
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id) { (caption) @if required { " " span.req { "required" } } }
                input id=(id) name=(name) type=(kind) value=(value) autocomplete="off"
                    step=[(kind == "time").then_some("300")]
                    aria-invalid=[invalid] aria-describedby=[described];
                @if let (Some(h), Some(hid)) = (hint, &hint_id) { span.hint id=(hid) { (h) } }
                (block)
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
        let id = input_id(name);
        let (invalid, error_id, block) = self.error(name);
        let hint_id = hint.map(|_| format!("{id}-hint"));
        let described = described(error_id, hint_id.clone());
        html! {
            fieldset.checks.invalid[invalid.is_some()] id=(id) tabindex="-1"
                aria-describedby=[described] {
                legend { (legend) }
                @if let (Some(h), Some(hid)) = (hint, &hint_id) { span.hint id=(hid) { (h) } }
                (block)
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
struct Submitted<'a>(&'a [(String, String)]);

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

fn date_field(
    errors: &mut ValidationErrors,
    field: &str,
    text: &str,
    required: bool,
) -> Option<Date> {
    if text.is_empty() {
        if required {
            errors.add(field, "is required");
        }
        return None;
    }
    let date = parse_date(text);
    if date.is_none() {
        errors.add(field, format!("'{text}' is not a date (use YYYY-MM-DD)"));
    }
    date
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

fn time_field(
    errors: &mut ValidationErrors,
    field: &str,
    text: &str,
    required: bool,
) -> Option<Time> {
    if text.is_empty() {
        if required {
            errors.add(field, "is required");
        }
        return None;
    }
    let time = parse_time(text);
    if time.is_none() {
        errors.add(
            field,
            format!("'{text}' is not a time (use 09:00 or 9:00 AM)"),
        );
    }
    time
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

/// A form page: the record edited (none for a new one), what was typed,
/// and what is wrong with it.
struct View<'a, F> {
    status: StatusCode,
    id: Option<&'a str>,
    form: &'a F,
    errors: &'a ValidationErrors,
}

// ---------------------------------------------------------------- overview

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    done: String,
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
) -> Response {
    let dir = match directory(&state, &p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
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
    let (mut templates, exceptions, resources, hours) = match loaded {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
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
        section #templates aria-labelledby="s-templates" {
            h2 #s-templates { "Weekly templates" }
            @if templates.is_empty() {
                p.empty { "No provider has a weekly template yet, so no slots are offered." }
            } @else {
                table {
                    caption.visually-hidden { "Weekly templates" }
                    thead { tr {
                        th scope="col" { "Provider" } th scope="col" { "Location" }
                        th scope="col" { "Weekly hours (local time) and allowed types" }
                        th scope="col" { "Effective" } th scope="col" { "Overbooking" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for t in &templates {
                            @let v = &t.value;
                            tr {
                                td { (dir.provider_name(&v.practitioner_id)) span.col-sub { (dir.specialty_names(&v.practitioner_id)) } }
                                td { (dir.location_name(&v.location_id)) span.col-sub { (zone_now(&dir, &v.location_id)) } }
                                td {
                                    ul.plain {
                                        @for (days, (start, end, types, limit)) in block_groups(&v.blocks) {
                                            li {
                                                strong { (days_text(&days)) } " " (time_text(start)) "–" (time_text(end))
                                                span.col-sub {
                                                    @if types.is_empty() { "Any type the provider offers" } @else { (type_names(&dir, types)) }
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
                                td {
                                    a href=(format!("{OVERVIEW}/templates/{}/edit", t.id)) {
                                        "Edit" span.visually-hidden { " the template of " (dir.provider_name(&v.practitioner_id)) " at " (dir.location_name(&v.location_id)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #exceptions aria-labelledby="s-exceptions" {
            h2 #s-exceptions { "Exceptions from " (us_date(from)) " to " (us_date(until)) }
            @if exceptions.is_empty() {
                p.empty { "No time off, holidays, blocked time or extra sessions in this period." }
            } @else {
                table {
                    caption.visually-hidden { "Exceptions" }
                    thead { tr {
                        th scope="col" { "Kind" } th scope="col" { "Who or where" } th scope="col" { "When (local time)" }
                        th scope="col" { "Details" } th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for e in &exceptions {
                            @let (who, details) = exception_text(&dir, &resources, &e.value.kind);
                            tr {
                                td { (kind_label(&e.value.kind)) }
                                td { (who) }
                                td { (span_text(e.value.start, e.value.end)) }
                                td { (details) }
                                td {
                                    a href=(format!("{OVERVIEW}/exceptions/{}/edit", e.id)) {
                                        "Edit" span.visually-hidden { " " (kind_label(&e.value.kind).to_lowercase()) " " (who) " " (span_text(e.value.start, e.value.end)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #locations aria-labelledby="s-locations" {
            h2 #s-locations { "Locations and opening hours" }
            p.muted { "In-person visits are offered only while the location is open (or during an extra session there)." }
            table {
                caption.visually-hidden { "Locations and opening hours" }
                thead { tr {
                    th scope="col" { "Location" } th scope="col" { "Time zone" } th scope="col" { "Open (local time)" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for (l, h) in &hours {
                        tr {
                            td { (l.value.name) }
                            td { (zone_now(&dir, &l.id)) }
                            td {
                                @let open = by_weekdays(h.opening_hours.iter().map(|o| (o.weekday, (o.open, o.close))));
                                @if open.is_empty() { "Closed to in-person visits" }
                                ul.plain {
                                    @for (days, (o, c)) in open { li { strong { (days_text(&days)) } " " (time_text(o)) "–" (time_text(c)) } }
                                }
                            }
                            td {
                                a href=(format!("{OVERVIEW}/locations/{}/hours", l.id)) {
                                    "Edit" span.visually-hidden { " the opening hours of " (l.value.name) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (resources_section(&dir, &resources))
        (types_section(&dir))
    };
    (
        StatusCode::OK,
        shell(
            &p,
            state.config.idle_timeout_secs,
            Area::Admin,
            "Scheduling setup",
            content,
        ),
    )
        .into_response()
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
struct TemplateForm {
    practitioner_id: String,
    location_id: String,
    effective_from: String,
    effective_until: String,
    overbook_limit: String,
    rows: Vec<BlockRow>,
    /// The version an edit started from.
    version: Option<i64>,
}

impl TemplateForm {
    fn padded(mut self) -> Self {
        pad(&mut self.rows, BlockRow::is_blank, BLOCK_ROWS);
        self
    }

    fn from_template(t: &Template, version: i64) -> Self {
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
            version: Some(version),
        }
        .padded()
    }

    fn from_submitted(s: &Submitted) -> Self {
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
            version: s.version(),
        }
    }

    /// The template, each block's row, or what cannot be read. Domain rules
    /// (times in order, no overlaps) are the store's to check.
    fn to_template(&self) -> Result<(Template, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let from = date_field(&mut errors, "effective_from", &self.effective_from, true);
        let until = date_field(&mut errors, "effective_until", &self.effective_until, false);
        let overbook = limit_field(&mut errors, "overbook_limit", &self.overbook_limit);
        let mut blocks = Vec::new();
        let mut rows = Vec::new();
        for (i, row) in self.rows.iter().enumerate().filter(|(_, r)| !r.is_blank()) {
            let f = |name: &str| format!("rows[{i}].{name}");
            if row.days.is_empty() {
                errors.add(f("days"), "are not chosen: tick at least one");
            }
            let start = time_field(&mut errors, &f("start"), &row.start, true);
            let end = time_field(&mut errors, &f("end"), &row.end, true);
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
                    practitioner_id: self.practitioner_id.clone(),
                    location_id: self.location_id.clone(),
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

fn template_form(
    state: &AppState,
    p: &Principal,
    dir: &Directory,
    v: View<TemplateForm>,
) -> Response {
    let View {
        status,
        id,
        form,
        errors,
    } = v;
    let f = Fields { errors };
    let action = match id {
        Some(id) => format!("{OVERVIEW}/templates/{id}/edit"),
        None => format!("{OVERVIEW}/templates/new"),
    };
    let named: Vec<String> = form.rows.iter().flat_map(|r| r.types.clone()).collect();
    let types = type_options(dir, &form.practitioner_id, &named);
    let weekdays: Vec<(String, String)> = (1..=7)
        .map(|d| (d.to_string(), short_weekday(d).to_string()))
        .collect();
    let (_, rows_error, rows_block) = f.error("rows");
    let content = html! {
        (f.summary())
        form method="post" action=(action) novalidate {
            (csrf_field(p))
            @if let Some(v) = form.version { input type="hidden" name="version" value=(v); }
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
                @for (i, row) in form.rows.iter().enumerate() {
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
            div.form-actions {
                button type="submit" { "Save template" }
                a href=(OVERVIEW) { "Cancel" }
            }
        }
        @if let Some(id) = id {
            (delete_form(p, &f, &format!("{OVERVIEW}/templates/{id}/delete"), "this template",
                "Booked appointments stay; no new slots are offered from it."))
        }
    };
    let title = if id.is_some() {
        "Edit weekly template"
    } else {
        "New weekly template"
    };
    page(state, p, status, title, content)
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

/// `GET /admin/schedule/templates/new`, for a provider and location when
/// named.
pub async fn new_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<NewQuery>,
) -> Response {
    let dir = match directory(&state, &p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let location_id = match dir.location(&q.location) {
        Some(_) => q.location,
        None => dir
            .locations_of(&q.provider)
            .first()
            .map(|l| l.id.clone())
            .unwrap_or_default(),
    };
    let form = TemplateForm {
        effective_from: today_at(&dir, &location_id).to_string(),
        practitioner_id: q.provider,
        location_id,
        overbook_limit: "0".into(),
        ..TemplateForm::default()
    }
    .padded();
    template_form(
        &state,
        &p,
        &dir,
        View {
            status: StatusCode::OK,
            id: None,
            form: &form,
            errors: &ValidationErrors::new(),
        },
    )
}

/// `GET /admin/schedule/templates/{id}/edit`
pub async fn edit_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    template_page(&state, &p, &id, StatusCode::OK, &ValidationErrors::new()).await
}

/// The stored template's form, with `errors`.
async fn template_page(
    state: &AppState,
    p: &Principal,
    id: &str,
    status: StatusCode,
    errors: &ValidationErrors,
) -> Response {
    let t = match state.db.get::<Template>(&p.org_id, id).await {
        Ok(t) => t,
        Err(e) => return missing("Template", e),
    };
    let dir = match directory(state, p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let form = TemplateForm::from_template(&t.value, t.version);
    template_form(
        state,
        p,
        &dir,
        View {
            status,
            id: Some(id),
            form: &form,
            errors,
        },
    )
}

/// `POST /admin/schedule/templates/new`
pub async fn create_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = TemplateForm::from_submitted(&Submitted(&pairs));
    save_template(&state, &p, None, form).await
}

/// `POST /admin/schedule/templates/{id}/edit`
pub async fn update_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = state.db.get::<Template>(&p.org_id, &id).await {
        return missing("Template", e);
    }
    let form = TemplateForm::from_submitted(&Submitted(&pairs));
    save_template(&state, &p, Some(&id), form).await
}

async fn save_template(
    state: &AppState,
    p: &Principal,
    id: Option<&str>,
    form: TemplateForm,
) -> Response {
    let dir = match directory(state, p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let refused = |status, errors: &ValidationErrors| {
        template_form(
            state,
            p,
            &dir,
            View {
                status,
                id,
                form: &form.clone().padded(),
                errors,
            },
        )
    };
    let (mut template, rows) = match form.to_template() {
        Ok(v) => v,
        Err(errors) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    template.id = id.unwrap_or_default().to_string();
    let provider = template.practitioner_id.clone();
    let actor = actor(p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        match id {
            Some(_) => tx.update_template(template, form.version, &actor).await?,
            None => tx.create_template(template, &actor).await?,
        };
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => done("template-saved"),
        Err(StoreError::Invalid(errors)) => {
            let others = match state.db.templates(&p.org_id, Some(&provider)).await {
                Ok(t) => t,
                Err(e) => return ops::internal_error(e),
            };
            let errors = template_errors(&errors, &rows, &others, &dir);
            refused(StatusCode::UNPROCESSABLE_ENTITY, &errors)
        }
        Err(StoreError::VersionConflict { .. }) => {
            refused(StatusCode::CONFLICT, &changed_meanwhile())
        }
        Err(e) => missing("Template", e),
    }
}

/// `POST /admin/schedule/templates/{id}/delete`, once confirmed.
pub async fn delete_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    if let Err(errors) = confirmation(&pairs) {
        return template_page(&state, &p, &id, StatusCode::UNPROCESSABLE_ENTITY, &errors).await;
    }
    let actor = actor(&p);
    let deleted = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.delete_template(&id, &actor).await?;
        tx.commit().await
    }
    .await;
    match deleted {
        Ok(()) => done("template-deleted"),
        Err(e) => missing("Template", e),
    }
}

// ---------------------------------------------------------------- exceptions

/// The exception form as typed. `target` is what blocked time takes:
/// `practitioner:<id>` or `resource:<id>`.
#[derive(Debug, Clone, Default)]
struct ExceptionForm {
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
    version: Option<i64>,
}

impl ExceptionForm {
    fn is_extra(&self) -> bool {
        self.kind == "extra_session"
    }

    fn from_exception(e: &ScheduleException, version: i64) -> Self {
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
            version: Some(version),
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

    fn from_submitted(s: &Submitted) -> Self {
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
            version: s.version(),
        }
    }

    /// The exception, or what cannot be read. A blank time starts or ends
    /// the whole day; a blank end date is the start date. An extra session
    /// is one day with both times.
    fn to_exception(&self) -> Result<ScheduleException, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let extra = self.is_extra();
        let start_date = date_field(&mut errors, "start_date", &self.start_date, true);
        let end_date = match extra || self.end_date.is_empty() {
            true => start_date,
            false => date_field(&mut errors, "end_date", &self.end_date, true),
        };
        let start_time = time_field(&mut errors, "start_time", &self.start_time, extra);
        let end_time = time_field(&mut errors, "end_time", &self.end_time, extra);
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let kind = match self.kind.as_str() {
            "time_off" => ExceptionKind::TimeOff {
                practitioner_id: self.practitioner_id.clone(),
            },
            "holiday" => ExceptionKind::Holiday {
                name: self.name.clone(),
                location_id: some(&self.location_id),
            },
            "blocked" => {
                let (practitioner_id, resource_id) = match self.target.split_once(':') {
                    Some(("practitioner", id)) => (some(id), None),
                    Some(("resource", id)) => (None, some(id)),
                    _ => {
                        errors.add("target", "is required");
                        (None, None)
                    }
                };
                ExceptionKind::Blocked {
                    reason: self.reason.clone(),
                    practitioner_id,
                    resource_id,
                }
            }
            "extra_session" => ExceptionKind::ExtraSession {
                practitioner_id: self.practitioner_id.clone(),
                location_id: self.location_id.clone(),
                appointment_type_ids: self.types.clone(),
                overbook_limit: limit_field(&mut errors, "overbook_limit", &self.overbook_limit)
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
        Ok(ScheduleException {
            id: String::new(),
            start: start_date.to_datetime(start_time.unwrap_or(Time::midnight())),
            end,
            kind,
        })
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

fn exception_form(
    state: &AppState,
    p: &Principal,
    dir: &Directory,
    resources: &[Versioned<Resource>],
    v: View<ExceptionForm>,
) -> Response {
    let View {
        status,
        id,
        form,
        errors,
    } = v;
    let f = Fields { errors };
    let action = match id {
        Some(id) => format!("{OVERVIEW}/exceptions/{id}/edit"),
        None => format!("{OVERVIEW}/exceptions/new"),
    };
    let kind = kind_name(&form.kind);
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
    let content = html! {
        (f.summary())
        form method="post" action=(action) novalidate {
            (csrf_field(p))
            input type="hidden" name="kind" value=(form.kind);
            @if let Some(v) = form.version { input type="hidden" name="version" value=(v); }
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
            div.form-actions {
                button type="submit" { "Save " (kind.to_lowercase()) }
                a href=(OVERVIEW) { "Cancel" }
            }
        }
        @if let Some(id) = id {
            (delete_form(p, &f, &format!("{OVERVIEW}/exceptions/{id}/delete"), &format!("this {}", kind.to_lowercase()),
                "The schedule goes back to the weekly templates for this time."))
        }
    };
    let title = match id {
        Some(_) => format!("Edit {}", kind.to_lowercase()),
        None => format!("New {}", kind.to_lowercase()),
    };
    page(state, p, status, &title, content)
}

async fn exception_context(
    state: &AppState,
    p: &Principal,
) -> Result<(Directory, Vec<Versioned<Resource>>), Response> {
    let dir = directory(state, p).await?;
    let resources = state
        .db
        .schedule_resources(&p.org_id, None)
        .await
        .map_err(ops::internal_error)?;
    Ok((dir, resources))
}

/// `GET /admin/schedule/exceptions/new?kind=time_off|holiday|blocked|extra_session`
pub async fn new_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<NewQuery>,
) -> Response {
    let (dir, resources) = match exception_context(&state, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let kind = match EXCEPTION_KINDS.iter().find(|(c, _)| *c == q.kind) {
        Some((c, _)) => c.to_string(),
        None => "time_off".to_string(),
    };
    let form = ExceptionForm {
        kind,
        start_date: today_at(&dir, &q.location).to_string(),
        practitioner_id: q.provider,
        location_id: q.location,
        overbook_limit: "0".into(),
        ..ExceptionForm::default()
    };
    exception_form(
        &state,
        &p,
        &dir,
        &resources,
        View {
            status: StatusCode::OK,
            id: None,
            form: &form,
            errors: &ValidationErrors::new(),
        },
    )
}

/// `GET /admin/schedule/exceptions/{id}/edit`
pub async fn edit_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    exception_page(&state, &p, &id, StatusCode::OK, &ValidationErrors::new()).await
}

/// The stored exception's form, with `errors`.
async fn exception_page(
    state: &AppState,
    p: &Principal,
    id: &str,
    status: StatusCode,
    errors: &ValidationErrors,
) -> Response {
    let e = match state.db.get::<ScheduleException>(&p.org_id, id).await {
        Ok(e) => e,
        Err(e) => return missing("Exception", e),
    };
    let (dir, resources) = match exception_context(state, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let form = ExceptionForm::from_exception(&e.value, e.version);
    exception_form(
        state,
        p,
        &dir,
        &resources,
        View {
            status,
            id: Some(id),
            form: &form,
            errors,
        },
    )
}

/// `POST /admin/schedule/exceptions/new`
pub async fn create_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = ExceptionForm::from_submitted(&Submitted(&pairs));
    save_exception(&state, &p, None, form).await
}

/// `POST /admin/schedule/exceptions/{id}/edit`; the kind stays what it was.
pub async fn update_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let current = match state.db.get::<ScheduleException>(&p.org_id, &id).await {
        Ok(e) => e,
        Err(e) => return missing("Exception", e),
    };
    let form = ExceptionForm {
        kind: kind_code(&current.value.kind).into(),
        ..ExceptionForm::from_submitted(&Submitted(&pairs))
    };
    save_exception(&state, &p, Some(&id), form).await
}

async fn save_exception(
    state: &AppState,
    p: &Principal,
    id: Option<&str>,
    form: ExceptionForm,
) -> Response {
    let (dir, resources) = match exception_context(state, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let refused = |status, errors: &ValidationErrors| {
        exception_form(
            state,
            p,
            &dir,
            &resources,
            View {
                status,
                id,
                form: &form,
                errors,
            },
        )
    };
    let mut exception = match form.to_exception() {
        Ok(e) => e,
        Err(errors) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    exception.id = id.unwrap_or_default().to_string();
    let actor = actor(p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        match id {
            Some(_) => tx.update_exception(exception, form.version, &actor).await?,
            None => tx.create_exception(exception, &actor).await?,
        };
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => done("exception-saved"),
        Err(StoreError::Invalid(errors)) => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            &on_inputs(&errors, |f| form.input_for(f)),
        ),
        Err(StoreError::VersionConflict { .. }) => {
            refused(StatusCode::CONFLICT, &changed_meanwhile())
        }
        Err(e) => missing("Exception", e),
    }
}

/// `POST /admin/schedule/exceptions/{id}/delete`, once confirmed.
pub async fn delete_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    if let Err(errors) = confirmation(&pairs) {
        return exception_page(&state, &p, &id, StatusCode::UNPROCESSABLE_ENTITY, &errors).await;
    }
    let actor = actor(&p);
    let deleted = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.delete_exception(&id, &actor).await?;
        tx.commit().await
    }
    .await;
    match deleted {
        Ok(()) => done("exception-deleted"),
        Err(e) => missing("Exception", e),
    }
}

// ---------------------------------------------------------------- appointment types

fn types_section(dir: &Directory) -> Markup {
    html! {
        section #types aria-labelledby="s-types" {
            h2 #s-types { "Appointment types" }
            @if dir.types.is_empty() {
                p.empty { "No appointment types yet: add one before templates can offer slots." }
            } @else {
                table {
                    caption.visually-hidden { "Appointment types" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Code" } th.num scope="col" { "Minutes" }
                        th scope="col" { "Offered by" } th scope="col" { "Visit" } th scope="col" { "Status" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for t in &dir.types {
                            @let v = &t.value;
                            tr {
                                td { (v.name) }
                                td { code { (v.id) } }
                                td.num { (v.duration_minutes) }
                                td { (offered_by_text(dir, v)) }
                                td {
                                    (modality_label(v.modality)) ", " (eligibility_label(v.eligibility).to_lowercase())
                                    @if let Some(k) = v.resource_kind { span.col-sub { "Needs: " (k.label()) } }
                                }
                                td { @if v.active { "Active" } @else { "Inactive" } }
                                td { a href=(format!("{OVERVIEW}/types/{}/edit", t.id)) { "Edit" span.visually-hidden { " " (v.name) } } }
                            }
                        }
                    }
                }
            }
        }
    }
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
struct TypeForm {
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
    version: Option<i64>,
}

impl TypeForm {
    fn blank() -> Self {
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

    fn from_type(t: &AppointmentType, version: i64) -> Self {
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
            version: Some(version),
        }
    }

    fn from_submitted(s: &Submitted) -> Self {
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
            version: s.version(),
        }
    }

    /// The type, or what cannot be read; the domain checks the rest. A
    /// code is part of addresses (and FHIR ids), so it keeps to their
    /// characters.
    fn to_type(&self) -> Result<AppointmentType, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !self
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
            &self.duration_minutes,
            minutes,
        );
        let notice = number_field(
            &mut errors,
            "min_notice_minutes",
            &self.min_notice_minutes,
            minutes,
        );
        let ahead = number_field(
            &mut errors,
            "max_days_ahead",
            &self.max_days_ahead,
            "a whole number of days",
        );
        let resource_kind = match self.resource_kind.as_str() {
            "" => None,
            k => {
                let kind = from_code(k);
                if kind.is_none() {
                    errors.add("resource_kind", "is not a kind of room or equipment");
                }
                kind
            }
        };
        let modality = from_code(&self.modality);
        if modality.is_none() {
            errors.add("modality", "must be in person or telehealth");
        }
        let eligibility = from_code(&self.eligibility);
        if eligibility.is_none() {
            errors.add("eligibility", "must be new, established or any patient");
        }
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match (modality, eligibility, errors.is_empty()) {
            (Some(modality), Some(eligibility), true) => Ok(AppointmentType {
                id: self.id.clone(),
                name: self.name.clone(),
                duration_minutes: duration.unwrap_or(0),
                color: self.color.clone(),
                specialties: self.specialties.clone(),
                practitioner_ids: self.practitioner_ids.clone(),
                resource_kind,
                modality,
                eligibility,
                min_notice_minutes: notice.unwrap_or(0),
                max_days_ahead: ahead.unwrap_or(0),
                instructions: text(&self.instructions),
                intake_form: text(&self.intake_form),
                active: self.active,
            }),
            _ => Err(errors),
        }
    }
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

fn type_form(state: &AppState, p: &Principal, dir: &Directory, v: View<TypeForm>) -> Response {
    let View {
        status,
        id,
        form,
        errors,
    } = v;
    let f = Fields { errors };
    let action = match id {
        Some(id) => format!("{OVERVIEW}/types/{id}/edit"),
        None => format!("{OVERVIEW}/types/new"),
    };
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
    let kinds: Vec<(String, String)> = RESOURCE_KINDS
        .iter()
        .map(|k| (code(k), k.label().to_string()))
        .collect();
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
    let (instructions_invalid, instructions_error, instructions_block) = f.error("instructions");
    let content = html! {
        (f.summary())
        form method="post" action=(action) novalidate {
            (csrf_field(p))
            @if let Some(v) = form.version { input type="hidden" name="version" value=(v); }
            div.row {
                (f.input("name", "Name", "text", &form.name, true, None))
                @if id.is_some() {
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
            div.form-actions {
                button type="submit" { "Save appointment type" }
                a href=(OVERVIEW) { "Cancel" }
            }
        }
    };
    let title = if id.is_some() {
        "Edit appointment type"
    } else {
        "New appointment type"
    };
    page(state, p, status, title, content)
}

/// `GET /admin/schedule/types/new`
pub async fn new_type(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let dir = match directory(&state, &p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    type_form(
        &state,
        &p,
        &dir,
        View {
            status: StatusCode::OK,
            id: None,
            form: &TypeForm::blank(),
            errors: &ValidationErrors::new(),
        },
    )
}

/// `GET /admin/schedule/types/{id}/edit`
pub async fn edit_type(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let t = match state.db.get::<AppointmentType>(&p.org_id, &id).await {
        Ok(t) => t,
        Err(e) => return missing("Appointment type", e),
    };
    let dir = match directory(&state, &p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    type_form(
        &state,
        &p,
        &dir,
        View {
            status: StatusCode::OK,
            id: Some(&id),
            form: &TypeForm::from_type(&t.value, t.version),
            errors: &ValidationErrors::new(),
        },
    )
}

/// `POST /admin/schedule/types/new`
pub async fn create_type(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = TypeForm::from_submitted(&Submitted(&pairs));
    save_type(&state, &p, None, form).await
}

/// `POST /admin/schedule/types/{id}/edit`
pub async fn update_type(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = state.db.get::<AppointmentType>(&p.org_id, &id).await {
        return missing("Appointment type", e);
    }
    let form = TypeForm {
        id: id.clone(),
        ..TypeForm::from_submitted(&Submitted(&pairs))
    };
    save_type(&state, &p, Some(&id), form).await
}

async fn save_type(state: &AppState, p: &Principal, id: Option<&str>, form: TypeForm) -> Response {
    let dir = match directory(state, p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let refused = |status, errors: &ValidationErrors| {
        type_form(
            state,
            p,
            &dir,
            View {
                status,
                id,
                form: &form,
                errors,
            },
        )
    };
    let kind = match form.to_type() {
        Ok(t) => t,
        Err(errors) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    let actor = actor(p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        match id {
            Some(_) => {
                tx.update_appointment_type(kind, form.version, &actor)
                    .await?
            }
            None => tx.create_appointment_type(kind, &actor).await?,
        };
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => done("type-saved"),
        Err(StoreError::Invalid(errors)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, &type_errors(&errors))
        }
        Err(StoreError::VersionConflict { .. }) => {
            refused(StatusCode::CONFLICT, &changed_meanwhile())
        }
        Err(StoreError::Conflict(_)) if id.is_none() => refused(
            StatusCode::CONFLICT,
            &ValidationErrors::single("id", "is already used by another appointment type"),
        ),
        Err(e) => missing("Appointment type", e),
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
struct HoursForm {
    lines: Vec<HoursLine>,
    /// The stored hours' version (0: none stored yet).
    version: Option<i64>,
}

impl HoursForm {
    /// A line per day of the week at least.
    fn padded(mut self) -> Self {
        pad(&mut self.lines, HoursLine::is_blank, 7);
        self
    }

    fn from_hours(hours: &[OpeningHours], version: i64) -> Self {
        let mut hours = hours.to_vec();
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
            version: Some(version),
        }
        .padded()
    }

    fn from_submitted(s: &Submitted) -> Self {
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
        HoursForm {
            lines,
            version: s.version(),
        }
    }

    /// The hours with each one's line, or what cannot be read; the domain
    /// checks weekdays, order and overlaps.
    fn to_hours(&self) -> Result<(Vec<OpeningHours>, Vec<usize>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut hours = Vec::new();
        let mut lines = Vec::new();
        for (i, line) in self.lines.iter().enumerate().filter(|(_, l)| !l.is_blank()) {
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
            let open = time_field(&mut errors, &f("open"), &line.open, true);
            let close = time_field(&mut errors, &f("close"), &line.close, true);
            if let (Some(weekday), Some(open), Some(close)) = (weekday, open, close) {
                hours.push(OpeningHours {
                    weekday,
                    open,
                    close,
                });
                lines.push(i);
            }
        }
        errors.into_result((hours, lines))
    }
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

fn hours_form(state: &AppState, p: &Principal, dir: &Directory, v: View<HoursForm>) -> Response {
    let View {
        status,
        id,
        form,
        errors,
    } = v;
    let location_id = id.unwrap_or_default();
    let f = Fields { errors };
    let weekdays: Vec<(String, String)> = (1..=7)
        .map(|d| (d.to_string(), weekday_name(d).to_string()))
        .collect();
    let content = html! {
        (f.summary())
        (zone_note(dir, location_id))
        form method="post" action=(format!("{OVERVIEW}/locations/{location_id}/hours")) novalidate {
            (csrf_field(p))
            @if let Some(v) = form.version { input type="hidden" name="version" value=(v); }
            p.hint {
                "In-person visits are offered only while the location is open (or during an extra session there). "
                "A day without a line is closed; two lines on one day leave a gap, such as a lunch closure. Blank lines are ignored."
            }
            @for (i, line) in form.lines.iter().enumerate() {
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
            div.form-actions {
                button type="submit" { "Save opening hours" }
                a href=(OVERVIEW) { "Cancel" }
            }
        }
    };
    let title = format!("Opening hours of {}", dir.location_name(location_id));
    page(state, p, status, &title, content)
}

/// The directory with the location `id`, or the answer that it is not there.
async fn location_context(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<Directory, Response> {
    let dir = directory(state, p).await?;
    match dir.location(id) {
        Some(_) => Ok(dir),
        None => Err(missing("Location", StoreError::NotFound)),
    }
}

/// `GET /admin/schedule/locations/{id}/hours`
pub async fn edit_hours(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let dir = match location_context(&state, &p, &id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let form = match state.db.get::<LocationOpeningHours>(&p.org_id, &id).await {
        Ok(h) => HoursForm::from_hours(&h.value.opening_hours, h.version),
        Err(StoreError::NotFound) => HoursForm::from_hours(&[], 0),
        Err(e) => return ops::internal_error(e),
    };
    hours_form(
        &state,
        &p,
        &dir,
        View {
            status: StatusCode::OK,
            id: Some(&id),
            form: &form,
            errors: &ValidationErrors::new(),
        },
    )
}

/// `POST /admin/schedule/locations/{id}/hours`: replaces the week's hours.
pub async fn update_hours(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let dir = match location_context(&state, &p, &id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let form = HoursForm::from_submitted(&Submitted(&pairs));
    let refused = |status, errors: &ValidationErrors| {
        hours_form(
            &state,
            &p,
            &dir,
            View {
                status,
                id: Some(&id),
                form: &form.clone().padded(),
                errors,
            },
        )
    };
    let (hours, lines) = match form.to_hours() {
        Ok(v) => v,
        Err(errors) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    let actor = actor(&p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.update_location_hours(&id, hours, form.version, &actor)
            .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => done("hours-saved"),
        Err(StoreError::Invalid(errors)) => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            &hours_errors(&errors, &lines),
        ),
        // A conflict: someone else stored the first hours meanwhile.
        Err(StoreError::VersionConflict { .. } | StoreError::Conflict(_)) => {
            refused(StatusCode::CONFLICT, &changed_meanwhile())
        }
        Err(e) => missing("Location", e),
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
    html! {
        section #resources aria-labelledby="s-resources" {
            h2 #s-resources { "Rooms and equipment" }
            p.muted { "A type that needs a room or equipment is booked only with one of its kind free at the location." }
            @if sorted.is_empty() {
                p.empty { "No bookable rooms or equipment yet." }
            } @else {
                table {
                    caption.visually-hidden { "Rooms and equipment" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Location" } th scope="col" { "Kind" }
                        th scope="col" { "Status" } th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for r in sorted {
                            @let v = &r.value;
                            tr {
                                td { (v.name) }
                                td { (dir.location_name(&v.location_id)) }
                                td { (v.kind.label()) }
                                td { @if v.active { "Active" } @else { "Inactive" } }
                                td { a href=(format!("{OVERVIEW}/resources/{}/edit", r.id)) { "Edit" span.visually-hidden { " " (v.name) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The room or equipment form as typed, and the directory room chosen in
/// the form that makes one bookable.
#[derive(Debug, Clone, Default)]
struct ResourceForm {
    location_id: String,
    name: String,
    kind: String,
    active: bool,
    version: Option<i64>,
    room_id: String,
}

impl ResourceForm {
    fn blank() -> Self {
        ResourceForm {
            active: true,
            ..ResourceForm::default()
        }
    }

    fn from_resource(r: &Resource, version: i64) -> Self {
        ResourceForm {
            location_id: r.location_id.clone(),
            name: r.name.clone(),
            kind: code(r.kind),
            active: r.active,
            version: Some(version),
            room_id: String::new(),
        }
    }

    fn from_submitted(s: &Submitted) -> Self {
        ResourceForm {
            location_id: s.text("location_id"),
            name: s.text("name"),
            kind: s.text("kind"),
            active: s.has("active"),
            version: s.version(),
            room_id: s.text("room_id"),
        }
    }

    /// The resource, or what cannot be read; the domain and the store check
    /// the rest.
    fn to_resource(&self) -> Result<Resource, ValidationErrors> {
        let kind = match self.kind.as_str() {
            "" => Err("is required"),
            k => from_code(k).ok_or("is not a kind of room or equipment"),
        };
        match kind {
            Ok(kind) => Ok(Resource {
                id: String::new(),
                location_id: self.location_id.clone(),
                name: self.name.clone(),
                kind,
                active: self.active,
            }),
            Err(message) => Err(ValidationErrors::single("kind", message)),
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

fn resource_form(
    state: &AppState,
    p: &Principal,
    dir: &Directory,
    rooms: &[(String, String)],
    v: View<ResourceForm>,
) -> Response {
    let View {
        status,
        id,
        form,
        errors,
    } = v;
    let f = Fields { errors };
    let action = match id {
        Some(id) => format!("{OVERVIEW}/resources/{id}/edit"),
        None => format!("{OVERVIEW}/resources/new"),
    };
    let kinds: Vec<(String, String)> = RESOURCE_KINDS
        .iter()
        .map(|k| (code(k), k.label().to_string()))
        .collect();
    let content = html! {
        (f.summary())
        form method="post" action=(action) novalidate {
            (csrf_field(p))
            @if let Some(v) = form.version { input type="hidden" name="version" value=(v); }
            div.row {
                (f.input("name", "Name", "text", &form.name, true, Some("As staff will see it, e.g. Exam 3 or ECG cart.")))
                (f.select("kind", "Kind", &form.kind, &kinds, None))
                (f.select("location_id", "Location", &form.location_id, &location_options(dir, &form.location_id), None))
            }
            div.tick {
                input #f-active type="checkbox" name="active" value="on" checked[form.active];
                label for="f-active" { "Active (inactive rooms and equipment are not booked; their appointments stay)" }
            }
            div.form-actions {
                button type="submit" { "Save room or equipment" }
                a href=(OVERVIEW) { "Cancel" }
            }
        }
        @if id.is_none() && (!rooms.is_empty() || !form.room_id.is_empty()) {
            section aria-labelledby="s-rooms" {
                h2 #s-rooms { "Or make a directory room bookable" }
                p.hint { "Rooms of the clinic directory that cannot be booked yet; the name and kind come from the directory." }
                form method="post" action=(format!("{OVERVIEW}/resources/rooms")) novalidate {
                    (csrf_field(p))
                    div.row { (f.select("room_id", "Directory room", &form.room_id, rooms, None)) }
                    div.form-actions { button.secondary type="submit" { "Make bookable" } }
                }
            }
        }
    };
    let title = if id.is_some() {
        "Edit room or equipment"
    } else {
        "New room or equipment"
    };
    page(state, p, status, title, content)
}

/// The resource form with what was typed and `errors`.
async fn resource_page(
    state: &AppState,
    p: &Principal,
    id: Option<&str>,
    form: &ResourceForm,
    status: StatusCode,
    errors: &ValidationErrors,
) -> Response {
    let dir = match directory(state, p).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let rooms = match unbooked_rooms(state, p, &dir).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    resource_form(
        state,
        p,
        &dir,
        &rooms,
        View {
            status,
            id,
            form,
            errors,
        },
    )
}

/// `GET /admin/schedule/resources/new`
pub async fn new_resource(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let form = ResourceForm::blank();
    let none = ValidationErrors::new();
    resource_page(&state, &p, None, &form, StatusCode::OK, &none).await
}

/// `GET /admin/schedule/resources/{id}/edit`
pub async fn edit_resource(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let r = match state.db.get::<Resource>(&p.org_id, &id).await {
        Ok(r) => r,
        Err(e) => return missing("Room or equipment", e),
    };
    let form = ResourceForm::from_resource(&r.value, r.version);
    let none = ValidationErrors::new();
    resource_page(&state, &p, Some(&id), &form, StatusCode::OK, &none).await
}

/// `POST /admin/schedule/resources/new`
pub async fn create_resource(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = ResourceForm::from_submitted(&Submitted(&pairs));
    save_resource(&state, &p, None, form).await
}

/// `POST /admin/schedule/resources/{id}/edit`
pub async fn update_resource(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = state.db.get::<Resource>(&p.org_id, &id).await {
        return missing("Room or equipment", e);
    }
    let form = ResourceForm::from_submitted(&Submitted(&pairs));
    save_resource(&state, &p, Some(&id), form).await
}

async fn save_resource(
    state: &AppState,
    p: &Principal,
    id: Option<&str>,
    form: ResourceForm,
) -> Response {
    let mut resource = match form.to_resource() {
        Ok(r) => r,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return resource_page(state, p, id, &form, status, &errors).await;
        }
    };
    resource.id = id.unwrap_or_default().to_string();
    let actor = actor(p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        match id {
            Some(_) => tx.update_resource(resource, form.version, &actor).await?,
            None => tx.create_resource(resource, &actor).await?,
        };
        tx.commit().await
    }
    .await;
    resource_saved(state, p, id, &form, saved).await
}

/// `POST /admin/schedule/resources/rooms`: makes a directory room bookable.
pub async fn add_room(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = ResourceForm {
        room_id: Submitted(&pairs).text("room_id"),
        ..ResourceForm::blank()
    };
    if form.room_id.is_empty() {
        let errors = ValidationErrors::single("room_id", "is required");
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return resource_page(&state, &p, None, &form, status, &errors).await;
    }
    let actor = actor(&p);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.add_room_resource(&form.room_id, &actor).await?;
        tx.commit().await
    }
    .await;
    resource_saved(&state, &p, None, &form, saved).await
}

/// The overview once saved; else the form again with what is wrong.
async fn resource_saved(
    state: &AppState,
    p: &Principal,
    id: Option<&str>,
    form: &ResourceForm,
    saved: Result<(), StoreError>,
) -> Response {
    let (status, errors) = match saved {
        Ok(()) => return done("resource-saved"),
        Err(StoreError::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            on_inputs(&errors, str::to_string),
        ),
        Err(StoreError::VersionConflict { .. }) => (StatusCode::CONFLICT, changed_meanwhile()),
        // Only a directory room keeps an id of its own: it is bookable already.
        Err(StoreError::Conflict(_)) => (
            StatusCode::CONFLICT,
            ValidationErrors::single("room_id", "is bookable already"),
        ),
        Err(e) => return missing("Room or equipment", e),
    };
    resource_page(state, p, id, form, status, &errors).await
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
