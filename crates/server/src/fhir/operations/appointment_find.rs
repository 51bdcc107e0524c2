//! `Appointment/$find`: IHE ITI-115 Find Potential Appointments
//! (<https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find>).
//!
//! Input, by GET (query parameters) or POST (a Parameters resource):
//! `start` (required), `end` (default: 7 days after start; at most
//! [`MAX_RANGE_DAYS`] days), `practitioner`, `location` (or
//! `location-reference`), `specialty`, `visit-type` (each repeatable: any
//! of them), `patient` (or `patient-reference`), `organization` (this
//! one) and `_count` (default 20, at most 100).
//!
//! Output: a `searchset` Bundle of proposed Appointments (status
//! `proposed`), earliest first: the free slots of the matching appointment
//! types and providers that need no overbooking (with a patient, only types
//! for them: new or established, see `Db::patient_established`). Each
//! proposal's id encodes
//! its slot and patient (see `resources::scheduling`), so `$hold` and
//! `$book` take it as `appointment-reference`; nothing is stored.

use crate::fhir::bundle::match_entry;
use crate::fhir::json::{Issues, Obj, REFERENCE_ELEMENTS};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{check_resource, known_elements, read_json};
use crate::fhir::resources::appointment::proposed_json;
use crate::fhir::resources::scheduling::{
    APPOINTMENT_TYPE_SYSTEM, DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, days, rule,
};
use crate::fhir::search::{date_bounds, reference, token};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::NUCC_TAXONOMY_SYSTEM;
use carefront_domain::patient::Patient;
use carefront_store::StoreError;
use jiff::Timestamp;
use serde_json::{Value, json};

pub mod cache;

pub const DEFINITION: &str =
    "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find";
pub const DOC: &str = "IHE ITI-115 Find Potential Appointments, by GET or POST (Parameters). \
    Input: start (required), end (default 7 days after start; at most 31 days, else 400 naming \
    end), practitioner (Practitioner/id), location or location-reference (Location/id), \
    specialty (http://nucc.org/provider-taxonomy|CODE), visit-type \
    (http://carefront.example/fhir/CodeSystem/appointment-type|ID, see HealthcareService), \
    each repeatable (any of them); patient or patient-reference (Patient/id, must exist); \
    _count (default 20, at most 100). Answers a searchset Bundle of proposed Appointments \
    (status proposed), earliest first: free slots that need no overbooking (with patient: only \
    types the patient may book, new or established), with participants, serviceType, start, \
    end and slot. A proposal's id encodes its slot and patient: pass it to $hold or $book as \
    appointment-reference (nothing is stored).";

const DEFAULT_COUNT: usize = 20;
const MAX_COUNT: usize = 100;

/// The FHIRPath of an input parameter.
fn param(name: &str) -> String {
    format!("Parameters.parameter.where(name='{name}')")
}

#[derive(Debug, Default)]
struct FindInput {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    practitioners: Vec<String>,
    locations: Vec<String>,
    specialties: Vec<String>,
    visit_types: Vec<String>,
    patient: Option<(String, String)>,
    count: Option<usize>,
    nothing: bool,
    end_path: Option<String>,
}

/// A dateTime parameter: an instant as given, or a date's first moment
/// (`start`) or the next day's (`end`, so the date is included).
fn when(value: &str, end: bool) -> Option<Timestamp> {
    if value.contains('T') {
        return value.parse().ok();
    }
    if !value.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (from, until) = date_bounds(value).ok()?;
    let us = if end { until? } else { from? };
    Timestamp::from_microsecond(us).ok()
}

fn interpret(pairs: Vec<(String, String, String)>, org_id: &str) -> Result<FindInput, FhirError> {
    let mut input = FindInput::default();
    let mut issues: Issues = Vec::new();
    for (name, value, path) in pairs {
        let bad = |issues: &mut Issues, text: String| {
            issues.push(Issue::at("value", &path, format!("{path}: {text}")));
        };
        match name.as_str() {
            "start" | "end" => match when(&value, name == "end") {
                Some(t) if name == "start" => input.start = Some(t),
                Some(t) => {
                    input.end = Some(t);
                    input.end_path = Some(path.clone());
                }
                None => bad(
                    &mut issues,
                    format!("'{value}' must be a date or an instant with a time zone"),
                ),
            },
            "practitioner" => match reference(&value, "Practitioner") {
                Ok(id) => input.practitioners.push(id.to_string()),
                Err(e) => bad(&mut issues, e),
            },
            "location" | "location-reference" => match reference(&value, "Location") {
                Ok(id) => input.locations.push(id.to_string()),
                Err(e) => bad(&mut issues, e),
            },
            "patient" | "patient-reference" => match reference(&value, "Patient") {
                Ok(_) if input.patient.is_some() => issues.push(Issue::at(
                    "not-supported",
                    &path,
                    format!("{path}: one patient at a time (group appointments are not offered)"),
                )),
                Ok(id) => input.patient = Some((id.to_string(), path.clone())),
                Err(e) => bad(&mut issues, e),
            },
            "specialty" => match token(&value, NUCC_TAXONOMY_SYSTEM) {
                Some(code) => input.specialties.push(code.to_string()),
                None => input.nothing = true,
            },
            "visit-type" => match token(&value, APPOINTMENT_TYPE_SYSTEM) {
                Some(code) => input.visit_types.push(code.to_string()),
                None => input.nothing = true,
            },
            "organization" => match reference(&value, "Organization") {
                Ok(id) if id == org_id => {}
                Ok(_) => input.nothing = true,
                Err(e) => bad(&mut issues, e),
            },
            "_count" => match value.parse::<usize>() {
                Ok(n) if n >= 1 => input.count = Some(n.min(MAX_COUNT)),
                _ => bad(&mut issues, "must be a whole number, 1 or more".into()),
            },
            "_format" => {}
            other => issues.push(Issue::at(
                "not-supported",
                &path,
                format!(
                    "{path}: '{other}' is not supported (start, end, practitioner, location, \
                     specialty, visit-type, patient, organization, _count)"
                ),
            )),
        }
    }
    if input.start.is_none() {
        let path = param("start");
        issues.push(Issue::at(
            "required",
            &path,
            format!("{path}: start is required"),
        ));
    }
    if issues.is_empty() {
        Ok(input)
    } else {
        Err(FhirError::Invalid(issues))
    }
}

/// The input parameters of a Parameters resource as (name, value, path).
fn parameters(value: &Value) -> Result<Vec<(String, String, String)>, FhirError> {
    check_resource(value, "Parameters", None)?;
    let mut issues: Issues = Vec::new();
    let known = known_elements(&["parameter"]);
    let Some(params) = Obj::new("Parameters".into(), value, &known, &mut issues) else {
        return Err(FhirError::Invalid(issues));
    };
    let value_keys = [
        "name",
        "valueDateTime",
        "valueDate",
        "valueInstant",
        "valueString",
        "valueCode",
        "valueUri",
        "valueInteger",
        "valueReference",
        "valueCoding",
    ];
    let mut pairs = Vec::new();
    for (path, raw) in params.list("parameter", &mut issues) {
        let Some(p) = Obj::new(path.clone(), raw, &value_keys, &mut issues) else {
            continue;
        };
        let name = p.string("name", &mut issues).unwrap_or_default();
        let text = if let Some(r) = p.object("valueReference", REFERENCE_ELEMENTS, &mut issues) {
            r.string("reference", &mut issues)
        } else if let Some(c) = p.object("valueCoding", &["system", "code", "display"], &mut issues)
        {
            let system = c.string("system", &mut issues);
            let code = c.string("code", &mut issues).unwrap_or_default();
            Some(match system {
                Some(s) => format!("{s}|{code}"),
                None => code,
            })
        } else if let Some(n) = p.integer("valueInteger", &mut issues) {
            Some(n.to_string())
        } else {
            [
                "valueDateTime",
                "valueDate",
                "valueInstant",
                "valueString",
                "valueCode",
                "valueUri",
            ]
            .iter()
            .find_map(|k| raw.get(*k).is_some().then(|| p.string(k, &mut issues)))
            .flatten()
        };
        match text {
            Some(t) => pairs.push((name, t, path)),
            None => issues.push(Issue::at(
                "required",
                &path,
                format!("{path} needs a value"),
            )),
        }
    }
    if issues.is_empty() {
        Ok(pairs)
    } else {
        Err(FhirError::Invalid(issues))
    }
}

pub async fn find_get(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let pairs = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string(), param(&k)))
        .collect();
    find(ctx, Ok(pairs)).await
}

pub async fn find_post(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let pairs = match read_json(&headers, body).await {
        Ok(value) => parameters(&value),
        Err(e) => Err(e),
    };
    find(ctx, pairs).await
}

async fn find(ctx: Ctx, pairs: Result<Vec<(String, String, String)>, FhirError>) -> Response {
    let mut note = note(Action::Search, "Appointment", None, "$find");
    let result = async {
        ctx.require(Area::Schedule)?;
        let input = interpret(pairs?, ctx.org())?;
        let now = Timestamp::now();
        let start = input.start.unwrap_or(now);
        let end_path = input.end_path.clone().unwrap_or_else(|| param("end"));
        let end = match input.end {
            Some(e) => e,
            None => start
                .checked_add(days(DEFAULT_RANGE_DAYS))
                .map_err(|e| FhirError::invalid(e.to_string()))?,
        };
        if end <= start {
            return Err(FhirError::Invalid(vec![Issue::at(
                "invalid",
                &end_path,
                format!("{end_path}: end must be after start ({start})"),
            )]));
        }
        if end.duration_since(start.max(now)) > days(MAX_RANGE_DAYS) {
            return Err(FhirError::Invalid(vec![Issue::at(
                "too-costly",
                &end_path,
                format!(
                    "{end_path}: look at most {MAX_RANGE_DAYS} days ahead at a time \
                     (from {} to {end} is longer)",
                    start.max(now)
                ),
            )]));
        }
        let patient = match &input.patient {
            None => None,
            Some((id, path)) => {
                note.patient_id = Some(id.clone());
                match ctx.state.db.get::<Patient>(ctx.org(), id).await {
                    Err(StoreError::NotFound | StoreError::Gone) => {
                        return Err(FhirError::BusinessRule(vec![rule(
                            path,
                            format!("Patient/{id} is not known"),
                        )]));
                    }
                    Err(e) => return Err(e.into()),
                    Ok(p) if p.value.replaced_by.is_some() => {
                        return Err(FhirError::BusinessRule(vec![rule(
                            path,
                            format!(
                                "Patient/{id} was merged into Patient/{}",
                                p.value.replaced_by.unwrap_or_default()
                            ),
                        )]));
                    }
                    Ok(_) => Some(id.clone()),
                }
            }
        };
        let answer = if input.nothing || start.max(now) >= end {
            None
        } else {
            let question = cache::Question {
                org_id: ctx.org().to_string(),
                start,
                end,
                practitioners: input.practitioners.clone(),
                locations: input.locations.clone(),
                specialties: input.specialties.clone(),
                visit_types: input.visit_types.clone(),
            };
            Some(
                ctx.state
                    .find_answers
                    .answer(&ctx.state.db, question, now)
                    .await?,
            )
        };
        // For a patient, only the types they may book (new or established).
        let established = match &patient {
            Some(id) => Some(ctx.state.db.patient_established(ctx.org(), id, now).await?),
            None => None,
        };
        let (total, on_offer) = match answer.as_deref() {
            Some(a) => {
                let (total, proposals) = a.on_offer(start, now, |kind| {
                    established.is_none_or(|e| kind.accepts_patient(e))
                });
                (total, Some(proposals))
            }
            None => (0, None),
        };
        let count = input.count.unwrap_or(DEFAULT_COUNT);
        let entries: Vec<Value> = on_offer
            .into_iter()
            .flatten()
            .take(count)
            .map(|(slot, kind)| {
                let resource = proposed_json(&slot, &kind.name, patient.as_deref());
                let id = resource["id"].as_str().unwrap_or_default().to_string();
                match_entry(format!("{}/Appointment/{id}", ctx.base), resource)
            })
            .collect();
        note.detail = Some(format!(
            "FHIR $find from {start} to {end}: {} proposed",
            entries.len()
        ));
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": [{ "relation": "self", "url": format!("{}/Appointment/$find", ctx.base) }],
            "entry": entries,
        });
        Ok(json_response(StatusCode::OK, bundle))
    }
    .await;
    finish(note, result)
}
