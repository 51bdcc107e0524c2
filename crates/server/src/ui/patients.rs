//! Patients: the search box's results, each linking to the patient's
//! summary (`patient_summary`); registration is in `registration`.

use super::schedule::{ALL, abbreviation, clock, local};
use super::shell;
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::contact::display_phone;
use carefront_domain::directory::Location;
use carefront_domain::patient_search::parse;
use carefront_store::StoreError;
use jiff::tz::TimeZone;
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

pub const RESULTS_SHOWN: usize = 25;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Today's date where the server runs: resolves two-digit birth years.
pub fn today() -> jiff::civil::Date {
    jiff::Zoned::now().date()
}

pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(query): Query<SearchQuery>,
) -> Response {
    let typed = query.q.trim().to_string();
    let today = today();
    let parsed = parse(&typed, today);
    let found = if parsed.is_empty() {
        None
    } else {
        match state
            .db
            .search_patients(&p.org_id, &parsed, RESULTS_SHOWN)
            .await
        {
            Ok(hits) => Some(hits),
            Err(e) => return ops::internal_error(e),
        }
    };
    let shown: Vec<&str> = found
        .iter()
        .flat_map(|f| &f.hits)
        .map(|(r, _)| r.id.as_str())
        .collect();
    let next = match next_visits(&state, &p.org_id, &shown).await {
        Ok(next) => next,
        Err(e) => return ops::internal_error(e),
    };
    let mut response = shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Patients,
        "Patients",
        html! {
            form.inline role="search" action="/patients" method="get" {
                label for="patient-q" { "Name, date of birth, phone, MRN or email" }
                input #patient-q type="search" name="q" value=(typed) autocomplete="off"
                    aria-describedby="patient-q-help";
                button type="submit" { "Search" }
            }
            p.muted #patient-q-help { "Examples: “smi jo”, “Smith, John”, “3/14/62”, “(212) 555-0123”, an MRN." }
            p { a.button href="/patients/new" { "Register a new patient" } }
            @if let Some(found) = &found {
                p role="status" {
                    @match found.hits.len() {
                        0 => { "No patient matches “" (typed) "”." }
                        1 => { "1 patient matches “" (typed) "”." }
                        n => { (n) " patients match “" (typed) "”, best match first." }
                    }
                    @if found.truncated { " More patients may match: add a first name or the date of birth." }
                }
                @if !found.hits.is_empty() {
                    table aria-label="Search results" {
                        caption.visually-hidden { "Matching patients, best match first" }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Date of birth" } th scope="col" { "Age" }
                            th scope="col" { "MRN" } th scope="col" { "Phone" } th scope="col" { "Next appointment" }
                        } }
                        tbody {
                            @for (r, _) in &found.hits {
                                tr {
                                    td {
                                        a href=(format!("/patients/{}", r.id)) { (r.value.display_name()) }
                                        @if let Some(pref) = &r.value.preferred_name { " (" (pref) ")" }
                                    }
                                    td { (r.value.birth_date.strftime("%m/%d/%Y").to_string()) }
                                    td { (r.value.age_on(today)) }
                                    td { (r.value.mrn) }
                                    td { (r.value.phones.first().map(|ph| display_phone(&ph.number)).unwrap_or_default()) }
                                    @match next.get(&r.id) {
                                        Some(when) => td { a href=(format!("/appointments/{}", when.0)) { (when.1) } },
                                        None => td.muted { "None booked" },
                                    }
                                }
                            }
                        }
                    }
                }
            } @else if !typed.is_empty() {
                p role="status" { "Type part of a name, a date of birth, a phone number, an MRN or an email." }
            }
        },
    )
    .into_response();
    for (r, _) in found.iter().flat_map(|f| &f.hits) {
        note(
            &mut response,
            AuditNote::new(Action::Search, "Patient", Some(&r.id))
                .patient(&r.id)
                .detail("shown in patient search results"),
        );
    }
    response
}

/// Each patient's next appointment: (appointment id, "Tue 12/8/2026 9:30 AM
/// EST" in the location's zone).
async fn next_visits(
    state: &AppState,
    org_id: &str,
    patient_ids: &[&str],
) -> Result<HashMap<String, (String, String)>, StoreError> {
    if patient_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let next = state
        .db
        .next_appointments(org_id, patient_ids, jiff::Timestamp::now())
        .await?;
    if next.is_empty() {
        return Ok(HashMap::new());
    }
    let (locations, _) = state.db.search::<Location>(org_id, &[], ALL).await?;
    let zones: HashMap<&str, TimeZone> = locations
        .iter()
        .map(|l| {
            let tz = TimeZone::get(&l.value.timezone).unwrap_or(TimeZone::UTC);
            (l.id.as_str(), tz)
        })
        .collect();
    Ok(next
        .into_iter()
        .map(|(patient_id, a)| {
            let tz = zones
                .get(a.value.appointment.location_id.as_str())
                .cloned()
                .unwrap_or(TimeZone::UTC);
            let start = a.value.appointment.start;
            let at = local(&tz, start);
            let label = format!(
                "{} {} {}",
                at.date().strftime("%a %-m/%-d/%Y"),
                clock(at),
                abbreviation(&tz, start)
            );
            (patient_id, (a.id, label))
        })
        .collect())
}
