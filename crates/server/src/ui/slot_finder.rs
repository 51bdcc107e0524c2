//! The slot finder: what the visit is (type, specialty), when (a date
//! range, days of the week, morning or afternoon), where and with whom →
//! the next available times across providers (the domain's
//! `next_available`), each booked in one click on the booking page,
//! prefilled. When nothing suits the patient, they go on the waitlist with
//! the same wishes; the waitlist panel of the day view lists them, and a
//! cancellation offers its time to them.

use super::booking::refusal_error;
use super::patient_summary::{header, us_date};
use super::patients::today;
use super::registration::input_id;
use super::schedule::{
    Directory, TYPES_CSS, abbreviation, book_href, clock, error_summary, href, inline_error,
    long_day, parse_date, preferences_text, same_field, subnav, today_in, weekday_name,
};
use super::{CsrfForm, csrf_field, error_page, shell_with_styles};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::{SPECIALTIES, Specialty, Versioned};
use carefront_domain::patient::Patient;
use carefront_domain::patient_search::parse;
use carefront_domain::scheduling::{
    ESTABLISHED_LOOKBACK_YEARS, PartOfDay, Preferences, Refusal, Slot, SlotSearch, WaitlistEntry,
    next_available,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Actor, PatientHits, SlotFilter, StoreError};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;

/// Times listed, earliest first.
const SHOWN: usize = 20;
/// Default and longest date range, in days.
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 92;
const PATIENTS_SHOWN: usize = 10;

/// The finder's inputs, as typed (from the query string, or the waitlist
/// form, which carries them along).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinderParams {
    pub kind: String,
    pub specialty: String,
    pub from: String,
    pub to: String,
    pub weekdays: Vec<String>,
    pub part: String,
    pub location: String,
    pub provider: String,
    pub patient: String,
    pub q: String,
    /// What was just done (`waitlisted`).
    pub done: String,
}

impl FinderParams {
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = FinderParams::default();
        for (k, v) in pairs {
            let v = v.trim().to_string();
            match k.as_str() {
                "type" => f.kind = v,
                "specialty" => f.specialty = v,
                "from" => f.from = v,
                "to" => f.to = v,
                "weekday" => f.weekdays.push(v),
                "part" => f.part = v,
                "location" => f.location = v,
                "provider" => f.provider = v,
                "patient" => f.patient = v,
                "q" => f.q = v,
                "done" => f.done = v,
                _ => {}
            }
        }
        f
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("type", self.kind.clone()),
            ("specialty", self.specialty.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
        ];
        out.extend(self.weekdays.iter().map(|w| ("weekday", w.clone())));
        out.extend([
            ("part", self.part.clone()),
            ("location", self.location.clone()),
            ("provider", self.provider.clone()),
            ("patient", self.patient.clone()),
            ("q", self.q.clone()),
            ("done", self.done.clone()),
        ]);
        out
    }

    pub fn href(&self) -> String {
        let pairs = self.pairs();
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        href("/schedule/find", &borrowed)
    }

    /// Anything asked for, beyond opening the page.
    fn submitted(&self) -> bool {
        self.pairs()
            .iter()
            .any(|(k, v)| !v.is_empty() && !matches!(*k, "patient" | "q" | "done"))
    }
}

/// The finder's inputs, checked.
struct Search {
    kind: String,
    specialty: Option<String>,
    from: Date,
    to: Date,
    preferences: Preferences,
}

fn check(dir: &Directory, f: &FinderParams, errors: &mut ValidationErrors) -> Option<Search> {
    let kind = match dir.kind(&f.kind) {
        Some(t) if t.active => Some(t.id.clone()),
        _ if f.kind.is_empty() => {
            if f.submitted() {
                errors.add("type", "is required: choose what the visit is for");
            }
            None
        }
        _ => {
            errors.add("type", "is not a bookable appointment type");
            None
        }
    };
    let specialty = match f.specialty.as_str() {
        "" => None,
        code if Specialty::by_code(code).is_some() => Some(code.to_string()),
        _ => {
            errors.add("specialty", "is not one of the listed specialties");
            None
        }
    };
    let tz = dir
        .active_locations()
        .find(|l| l.id == f.location)
        .or_else(|| dir.active_locations().next())
        .map(|l| dir.tz(&l.id))
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let today = today_in(&tz);
    let from = match f.from.as_str() {
        "" => Some(today),
        t => parse_date(t).or_else(|| {
            errors.add("from", format!("'{t}' is not a date"));
            None
        }),
    };
    let to = match (f.to.as_str(), from) {
        ("", Some(from)) => from.checked_add(DEFAULT_DAYS.days()).ok(),
        ("", None) => None,
        (t, _) => parse_date(t).or_else(|| {
            errors.add("to", format!("'{t}' is not a date"));
            None
        }),
    };
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            errors.add("to", "must be on or after the From date");
        } else if (to - from).get_days() > MAX_DAYS as i32 {
            errors.add(
                "to",
                format!("must be at most {MAX_DAYS} days after the From date"),
            );
        }
    }
    let mut weekdays = Vec::new();
    for w in &f.weekdays {
        match w.parse::<u8>() {
            Ok(n) if (1..=7).contains(&n) => weekdays.push(n),
            _ => errors.add("weekday", format!("'{w}' is not a day of the week")),
        }
    }
    let part_of_day = match f.part.as_str() {
        "" | "any" => None,
        "morning" => Some(PartOfDay::Morning),
        "afternoon" => Some(PartOfDay::Afternoon),
        other => {
            errors.add("part", format!("'{other}' is not morning or afternoon"));
            None
        }
    };
    if !f.location.is_empty() && dir.location(&f.location).is_none() {
        errors.add("location", "is not one of the clinic's locations");
    }
    if !f.provider.is_empty() && dir.provider(&f.provider).is_none() {
        errors.add("provider", "is not one of the clinic's providers");
    }
    let preferences = Preferences {
        weekdays,
        part_of_day,
        location_ids: Some(f.location.clone())
            .filter(|l| !l.is_empty())
            .into_iter()
            .collect(),
        practitioner_ids: Some(f.provider.clone())
            .filter(|p| !p.is_empty())
            .into_iter()
            .collect(),
    }
    .validate();
    let preferences = match preferences {
        Ok(p) => p,
        Err(e) => {
            for fe in e.errors() {
                errors.add(fe.field.clone(), fe.message.clone());
            }
            Preferences::default()
        }
    };
    match (kind, from, to) {
        (Some(kind), Some(from), Some(to)) if errors.is_empty() => Some(Search {
            kind,
            specialty,
            from,
            to,
            preferences,
        }),
        _ => None,
    }
}

/// The earliest free times that meet the search, on local dates from `from`
/// to `to` at each slot's location.
async fn find(state: &AppState, org_id: &str, s: &Search) -> Result<Vec<Slot>, Response> {
    let now = Timestamp::now();
    // Local dates differ by zone: load generously, keep by local date.
    let from = s
        .from
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(now)
        .checked_sub(14.hours())
        .unwrap_or(now)
        .max(now);
    let until =
        s.to.tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
            .unwrap_or(now)
            .checked_add(14.hours())
            .unwrap_or(now);
    if until <= from {
        return Ok(vec![]);
    }
    let filter = SlotFilter {
        practitioner_ids: s.preferences.practitioner_ids.clone(),
        location_ids: s.preferences.location_ids.clone(),
    };
    let input = state
        .db
        .slot_input(org_id, &s.kind, &filter, from, until, now)
        .await
        .map_err(ops::internal_error)?;
    let search = SlotSearch {
        specialty: s.specialty.clone(),
        preferences: s.preferences.clone(),
        include_overbook: false,
        limit: 2000,
    };
    Ok(next_available(&input, &search)
        .map_err(ops::internal_error)?
        .into_iter()
        .filter(|slot| {
            let d = slot.local_start.date();
            s.from <= d && d <= s.to
        })
        .take(SHOWN)
        .collect())
}

/// What the waitlist form's last submission left to say.
struct WaitlistOutcome<'a> {
    errors: &'a ValidationErrors,
}

fn waitlist_anchor(field: &str) -> String {
    match field {
        "patient_id" => "w-patient".into(),
        _ => "w-submit".into(),
    }
}

/// Renders the finder for `f`; `waitlist` carries the waitlist form's
/// errors when it was just refused.
async fn render(
    state: &AppState,
    p: &Principal,
    f: &FinderParams,
    status: StatusCode,
    waitlist: Option<WaitlistOutcome<'_>>,
) -> Response {
    let dir = match Directory::load(state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let mut errors = ValidationErrors::new();
    let mut search = check(&dir, f, &mut errors);
    let patient: Option<Versioned<Patient>> = if f.patient.is_empty() {
        None
    } else {
        state.db.get::<Patient>(&p.org_id, &f.patient).await.ok()
    };
    // For a patient, only the types they may book (new or established), as
    // `$find` proposes: another type is named at the field, with no times.
    let established = match &patient {
        Some(pt) => match state
            .db
            .patient_established(&p.org_id, &pt.id, Timestamp::now())
            .await
        {
            Ok(e) => Some(e),
            Err(e) => return ops::internal_error(e),
        },
        None => None,
    };
    if let (Some(s), Some(e)) = (&search, established)
        && dir.kind(&s.kind).is_some_and(|k| !k.accepts_patient(e))
    {
        let type_is_for = if e { "new" } else { "established" };
        let (_, message) = refusal_error(&Refusal::WrongPatientKind(type_is_for));
        errors.add("type", message);
        search = None;
    }
    let results = match &search {
        Some(s) => match find(state, &p.org_id, s).await {
            Ok(r) => Some(r),
            Err(resp) => return resp,
        },
        None => None,
    };
    let hits: Option<PatientHits> = if patient.is_none() && !f.q.is_empty() {
        let parsed = parse(&f.q, today());
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
    let can_book = p.role.may(Area::Scheduling);
    let clinic_tz = dir
        .active_locations()
        .next()
        .map_or(jiff::tz::TimeZone::UTC, |l| dir.tz(&l.id));
    // The patient's place on the waitlist for this type, if they have one.
    let waiting: Option<WaitlistEntry> = match (&patient, &search) {
        (Some(pt), Some(s)) if can_book => match state
            .db
            .waitlist(&p.org_id, Some(&s.kind), Some(&pt.id))
            .await
        {
            Ok(list) => list.into_iter().next().map(|v| v.value),
            Err(e) => return ops::internal_error(e),
        },
        _ => None,
    };
    let with = |change: &dyn Fn(&mut FinderParams)| {
        let mut g = f.clone();
        g.done.clear();
        change(&mut g);
        g.href()
    };
    let field = |name: &str| inline_error(&errors, name, same_field);
    let (type_invalid, type_error, type_block) = field("type");
    let type_hint = established.map(|e| {
        let (kind, seen) = if e {
            ("established", "has")
        } else {
            ("new", "has not")
        };
        format!(
            "Types for {kind} patients and for anyone: this patient {seen} been seen here in the \
             last {ESTABLISHED_LOOKBACK_YEARS} years."
        )
    });
    let type_described = [
        type_error.clone(),
        type_hint.as_ref().map(|_| "f-type-hint".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let type_described = (!type_described.is_empty()).then_some(type_described);
    let (spec_invalid, spec_error, spec_block) = field("specialty");
    let (from_invalid, from_error, from_block) = field("from");
    let (to_invalid, to_error, to_block) = field("to");
    let (wd_invalid, wd_error, wd_block) = field("weekday");
    let (part_invalid, part_error, part_block) = field("part");
    let (loc_invalid, loc_error, loc_block) = field("location");
    let (prov_invalid, prov_error, prov_block) = field("provider");
    let defaults = search.as_ref().map(|s| (s.from, s.to));
    let from_value = defaults.map_or(f.from.clone(), |(a, _)| a.to_string());
    let to_value = defaults.map_or(f.to.clone(), |(_, b)| b.to_string());
    let waitlist_errors = waitlist.as_ref().map(|w| w.errors);
    let kind_name = search.as_ref().map(|s| dir.type_name(&s.kind));
    let patient_id = patient.as_ref().map(|pt| pt.id.as_str());
    let done = (f.done == "waitlisted").then(|| {
        patient
            .as_ref()
            .map_or_else(|| "The patient".to_string(), |pt| pt.value.display_name())
    });
    let content = html! {
        (subnav("find", "/schedule", "/schedule/week"))
        @if let Some(who) = &done {
            p.notice.done #done-notice role="status" tabindex="-1" autofocus {
                (who) " is on the waitlist"
                @if let Some(k) = &kind_name { " for " (k) }
                ". They are listed on the day view's waitlist and offered times that free up."
            }
        }
        (error_summary("form-errors", &errors, same_field))
        form #finder-form.finder method="get" action="/schedule/find" novalidate {
            fieldset {
                legend { "Visit" }
                div.row {
                    div.field.w-m.invalid[type_invalid.is_some()] {
                        label for=(input_id("type")) { "Appointment type " span.req { "required" } }
                        select id=(input_id("type")) name="type" aria-invalid=[type_invalid] aria-describedby=[type_described]
                            autofocus[f.kind.is_empty() && errors.is_empty() && done.is_none()] {
                            option value="" { "Choose…" }
                            @for t in dir.active_types().filter(|t| t.id == f.kind || established.is_none_or(|e| t.accepts_patient(e))) {
                                option value=(t.id) selected[t.id == f.kind] { (t.name) " (" (t.duration_minutes) " min)" }
                            }
                        }
                        @if let Some(hint) = &type_hint { span.hint #f-type-hint { (hint) } }
                        (type_block)
                    }
                    div.field.w-m.invalid[spec_invalid.is_some()] {
                        label for=(input_id("specialty")) { "Specialty" }
                        select id=(input_id("specialty")) name="specialty" aria-invalid=[spec_invalid] aria-describedby=[spec_error] {
                            option value="" { "Any specialty" }
                            @for s in SPECIALTIES {
                                option value=(s.code) selected[s.code == f.specialty] { (s.display) }
                            }
                        }
                        (spec_block)
                    }
                }
            }
            fieldset {
                legend { "Where and with whom" }
                div.row {
                    div.field.w-m.invalid[loc_invalid.is_some()] {
                        label for=(input_id("location")) { "Location" }
                        select id=(input_id("location")) name="location" aria-invalid=[loc_invalid] aria-describedby=[loc_error] {
                            option value="" { "Any location" }
                            @for l in dir.active_locations() {
                                option value=(l.id) selected[l.id == f.location] { (l.value.name) }
                            }
                        }
                        (loc_block)
                    }
                    div.field.w-m.invalid[prov_invalid.is_some()] {
                        label for=(input_id("provider")) { "Provider" }
                        select id=(input_id("provider")) name="provider" aria-invalid=[prov_invalid] aria-describedby=[prov_error] {
                            option value="" { "Any provider" }
                            @for pr in dir.practitioners.iter().filter(|pr| pr.value.active) {
                                option value=(pr.id) selected[pr.id == f.provider] { (dir.provider_name(&pr.id)) " — " (dir.specialty_names(&pr.id)) }
                            }
                        }
                        (prov_block)
                    }
                }
            }
            fieldset {
                legend { "When" }
                div.row {
                    div.field.w-s.invalid[from_invalid.is_some()] {
                        label for=(input_id("from")) { "From" }
                        input id=(input_id("from")) type="date" name="from" value=(from_value)
                            aria-invalid=[from_invalid] aria-describedby=[from_error];
                        (from_block)
                    }
                    div.field.w-s.invalid[to_invalid.is_some()] {
                        label for=(input_id("to")) { "To" }
                        input id=(input_id("to")) type="date" name="to" value=(to_value)
                            aria-invalid=[to_invalid] aria-describedby=[to_error];
                        (to_block)
                    }
                }
                fieldset.days.invalid[wd_invalid.is_some()] aria-describedby=[wd_error] {
                    legend { "Days of the week " span.muted { "(none: any day)" } }
                    div.row {
                        @for w in 1..=7u8 {
                            @let id = if w == 1 { input_id("weekday") } else { format!("{}-{w}", input_id("weekday")) };
                            div.tick {
                                input type="checkbox" id=(id) name="weekday" value=(w) checked[f.weekdays.contains(&w.to_string())];
                                label for=(id) { (weekday_name(w)) }
                            }
                        }
                    }
                    (wd_block)
                }
                fieldset.days.invalid[part_invalid.is_some()] aria-describedby=[part_error] {
                    legend { "Time of day" }
                    div.row {
                        @for (value, label) in [("", "Any time"), ("morning", "Morning (before noon)"), ("afternoon", "Afternoon")] {
                            @let id = if value.is_empty() { input_id("part") } else { format!("{}-{value}", input_id("part")) };
                            div.tick {
                                input type="radio" id=(id) name="part" value=(value) checked[f.part == value || (value.is_empty() && f.part == "any")];
                                label for=(id) { (label) }
                            }
                        }
                    }
                    (part_block)
                }
            }
            fieldset {
                legend { "Patient " span.muted { "(optional: carried to the booking)" } }
                @if let Some(pt) = &patient {
                    input type="hidden" name="patient" value=(pt.id);
                    p.chosen { strong { (pt.value.display_name()) } " "
                        a href=(with(&|g| { g.patient.clear(); })) { "Choose another patient" } }
                    (header(pt, today()))
                } @else {
                    div.field.w-l {
                        label for="f-q" { "Find the patient" }
                        input #f-q type="search" name="q" value=(f.q) autocomplete="off" placeholder="Name, date of birth, phone or MRN";
                    }
                    @if let Some(h) = &hits {
                        @if h.hits.is_empty() {
                            p role="status" { "No patient matches “" (f.q) "”." }
                        } @else {
                            ul.plain.patient-choices aria-label="Matching patients" {
                                @for (hit, _) in &h.hits {
                                    li {
                                        a.button.secondary href=(with(&|g| { g.patient = hit.id.clone(); g.q.clear(); })) {
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
            div.form-actions { button type="submit" { "Find free times" } }
        }
        @if let (Some(s), Some(found)) = (&search, &results) {
            section.results aria-labelledby="results-title" {
                h2 #results-title {
                    @match found.len() {
                        0 => { "No free time fits" }
                        n => { "Next available: " (n) " time" @if n > 1 { "s" } }
                    }
                }
                p.muted {
                    (dir.type_name(&s.kind)) ", " (long_day(s.from)) " to " (long_day(s.to)) ", " (preferences_text(&dir, &s.preferences))
                    @if let Some(sp) = s.specialty.as_deref().and_then(Specialty::by_code) { ", " (sp.display) }
                    ". Times are local to each location."
                }
                @if !found.is_empty() {
                    table #results {
                        caption.visually-hidden { "Free times, earliest first" }
                        thead { tr {
                            th scope="col" { "Day" } th scope="col" { "Time" } th scope="col" { "Provider" }
                            th scope="col" { "Location" } th scope="col" { span.visually-hidden { "Book" } }
                        } }
                        tbody {
                            @for slot in found {
                                @let tz = dir.tz(&slot.location_id);
                                tr {
                                    td { (long_day(slot.local_start.date())) }
                                    td { (clock(slot.local_start)) " " (abbreviation(&tz, slot.start)) }
                                    td { (dir.provider_name(&slot.practitioner_id)) }
                                    td { (dir.location_name(&slot.location_id)) }
                                    td {
                                        @if can_book {
                                            a.button href=(book_href(&slot.appointment_type_id, &slot.practitioner_id, &slot.location_id, slot.start, patient_id)) {
                                                "Book" span.visually-hidden { " " (long_day(slot.local_start.date())) " at " (clock(slot.local_start)) " with " (dir.provider_name(&slot.practitioner_id)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if can_book {
                @if let (Some(w), Some(pt)) = (&waiting, &patient) {
                    section.waitlist-add #waitlist-add aria-labelledby="waitlist-add-title" {
                        h2 #waitlist-add-title { "On the waitlist" }
                        p { (pt.value.display_name()) " has been on the waitlist for " (dir.type_name(&w.appointment_type_id))
                            " since " (us_date(w.added_at.to_zoned(clinic_tz.clone()).date())) ", for "
                            strong { (preferences_text(&dir, &w.preferences)) } ". The day view's waitlist panel lists them." }
                    }
                } @else {
                    (waitlist_form(p, &dir, f, s, patient.as_ref(), found.is_empty(), waitlist_errors))
                }
            }
        }
    };
    let mut response = (
        status,
        shell_with_styles(
            p,
            state.config.idle_timeout_secs,
            Area::Schedule,
            "Find a slot",
            &[TYPES_CSS],
            content,
        ),
    )
        .into_response();
    if let Some(pt) = &patient {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&pt.id))
                .patient(&pt.id)
                .detail("slot finder"),
        );
    }
    for (h, _) in hits.iter().flat_map(|h| &h.hits) {
        note(
            &mut response,
            AuditNote::new(Action::Search, "Patient", Some(&h.id))
                .patient(&h.id)
                .detail("shown in the slot finder's patient search"),
        );
    }
    response
}

/// Puts the patient on the waitlist with the finder's wishes.
fn waitlist_form(
    p: &Principal,
    dir: &Directory,
    f: &FinderParams,
    s: &Search,
    patient: Option<&Versioned<Patient>>,
    nothing_fits: bool,
    errors: Option<&ValidationErrors>,
) -> Markup {
    let none = ValidationErrors::new();
    let errors = errors.unwrap_or(&none);
    let (patient_invalid, patient_error, patient_block) =
        inline_error(errors, "w-patient", waitlist_anchor);
    let others: Vec<String> = errors
        .errors()
        .iter()
        .filter(|e| e.field != "patient_id")
        .map(|e| format!("{}.", super::schedule::sentence(&e.field, &e.message)))
        .collect();
    html! {
        section.waitlist-add #waitlist-add aria-labelledby="waitlist-add-title" {
            h2 #waitlist-add-title {
                @if nothing_fits { "Nothing fits: add to the waitlist" } @else { "None of these suits? Add to the waitlist" }
            }
            @if !errors.is_empty() {
                div.error role="alert" tabindex="-1" autofocus {
                    p { "The patient was not added to the waitlist:" }
                    ul {
                        @if let Some(m) = errors.for_field("patient_id") { li { a href="#w-patient" { (super::schedule::sentence("patient_id", m)) } } }
                        @for m in &others { li { (m) } }
                    }
                }
            }
            p { "The waitlist keeps the wishes above: " strong { (dir.type_name(&s.kind)) ", " (preferences_text(dir, &s.preferences)) } ". "
                "When a time like that frees up, the patient is offered it." }
            form method="post" action="/schedule/waitlist" novalidate {
                (csrf_field(p))
                @for (k, v) in f.pairs() {
                    @if !v.is_empty() && !matches!(k, "q" | "done" | "patient") {
                        input type="hidden" name=(k) value=(v);
                    }
                }
                div.field.invalid[patient_invalid.is_some()] {
                    @if let Some(pt) = patient {
                        input type="hidden" name="patient" value=(pt.id);
                        p #w-patient tabindex="-1" { "Patient: " strong { (pt.value.display_name()) } }
                    } @else {
                        p #w-patient tabindex="-1" aria-invalid=[patient_invalid] aria-describedby=[patient_error] {
                            "Choose the patient first, in the finder above."
                        }
                    }
                    (patient_block)
                }
                button #w-submit type="submit" { "Add to the waitlist" }
            }
        }
    }
}

/// `GET /schedule/find`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let f = FinderParams::from_pairs(&pairs);
    render(&state, &p, &f, StatusCode::OK, None).await
}

/// `POST /schedule/waitlist`: the patient and the finder's wishes.
pub async fn add_to_waitlist(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let f = FinderParams::from_pairs(&pairs);
    let dir = match Directory::load(&state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let mut errors = ValidationErrors::new();
    let search = check(&dir, &f, &mut errors);
    if f.patient.is_empty() {
        errors.add(
            "patient_id",
            "is required: choose the patient in the finder first",
        );
    }
    if f.kind.is_empty() && errors.for_field("type").is_none() {
        errors.add("type", "is required: choose what the visit is for");
    }
    let Some(search) = search.filter(|_| errors.is_empty()) else {
        return render(
            &state,
            &p,
            &f,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(WaitlistOutcome { errors: &errors }),
        )
        .await;
    };
    let entry = WaitlistEntry {
        id: String::new(),
        patient_id: f.patient.clone(),
        appointment_type_id: search.kind.clone(),
        preferences: search.preferences.clone(),
        added_at: Timestamp::now(),
        current_appointment_start: None,
    };
    let actor = Actor::from(p.entry(Action::Create, Outcome::Success));
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let stored = tx.add_to_waitlist(entry, &actor, Timestamp::now()).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(stored)
    }
    .await;
    match result {
        Ok(_) => {
            let mut g = f.clone();
            g.q.clear();
            g.done = "waitlisted".into();
            Redirect::to(&g.href()).into_response()
        }
        Err(StoreError::Invalid(found)) => {
            render(
                &state,
                &p,
                &f,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(WaitlistOutcome { errors: &found }),
            )
            .await
        }
        Err(e) => ops::internal_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    back: String,
}

/// `POST /waitlist/{id}/remove`: back to the day view it was sent from.
pub async fn remove_from_waitlist(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Response {
    let actor = Actor::from(p.entry(Action::Delete, Outcome::Success));
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.remove_from_waitlist(&id, &actor).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => {
            // Only back to our own schedule pages.
            let back = if form.back.starts_with("/schedule") && !form.back.starts_with("//") {
                form.back
            } else {
                "/schedule".to_string()
            };
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}done=removed")).into_response()
        }
        Err(StoreError::NotFound | StoreError::Gone) => error_page(
            StatusCode::NOT_FOUND,
            "Not on the waitlist",
            "This waitlist entry does not exist or was already removed.",
        ),
        Err(e) => ops::internal_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn params_round_trip_through_the_query_string() {
        let f = FinderParams::from_pairs(&pairs(&[
            ("type", "derm"),
            ("weekday", "1"),
            ("weekday", "3"),
            ("part", "morning"),
            ("q", ""),
        ]));
        assert_eq!(f.weekdays, ["1", "3"]);
        let link = f.href();
        assert_eq!(
            link,
            "/schedule/find?type=derm&weekday=1&weekday=3&part=morning"
        );
        let back: Vec<(String, String)> =
            form_urlencoded::parse(link.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(FinderParams::from_pairs(&back), f);
        assert!(f.submitted());
        assert!(!FinderParams::from_pairs(&pairs(&[("patient", "p1")])).submitted());
    }
}
