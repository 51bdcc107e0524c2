//! `POST Patient/$match`, the master patient index's match operation
//! (<http://hl7.org/fhir/OperationDefinition/Patient-match>).
//!
//! Input: a Parameters resource with `resource` (a Patient; any of its
//! elements may be left out), optional `onlyCertainMatches` (boolean) and
//! `count` (integer, default 10, at most 100). The candidates come from
//! [`carefront_store::Db::match_candidates`] (merged records left out), scored
//! by the matching engine with [`Thresholds::DEFAULT`]; only those at or above
//! the lower threshold are returned, best first.
//!
//! Output: a `searchset` Bundle; each entry has the Patient, `search.mode`
//! `match`, `search.score` and the match-grade extension (`certain`,
//! `probable`, `possible`). The score is the engine's total (a log2
//! likelihood ratio, in bits) turned into a probability with the prior odds
//! even at the lower threshold: `score = 1 / (1 + 2^(lower - total))`
//! ([`carefront_domain::matching::MatchScore::search_score`]): 0.5 at the
//! lower threshold (13 bits), 0.998 at the upper one (22 bits, `certain`).
//! Every patient returned is audited with its id.

use crate::audit;
use crate::fhir::json::{Issues, Obj, known_keys};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{check_resource, known_elements, read_json, resource_json};
use crate::fhir::resources::patient;
use crate::fhir::{Ctx, finish, json_response, note};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::matching::{MatchAddress, MatchGrade, MatchRecord, MatchScore, Thresholds};
use serde_json::{Value, json};

pub const DEFINITION: &str = "http://hl7.org/fhir/OperationDefinition/Patient-match";
pub const DOC: &str = "POST a Parameters resource with 'resource' (a Patient; any element \
    may be missing), optional 'onlyCertainMatches' (boolean) and 'count' (default 10, at most \
    100). Answers a searchset Bundle of the existing patients that may be the same person, \
    best first: search.mode=match, search.extension \
    http://hl7.org/fhir/StructureDefinition/match-grade (certain | probable | possible) and \
    search.score = 1 / (1 + 2^(13 - total)), where total is the matcher's log2 likelihood \
    ratio in bits (Fellegi-Sunter field weights over names, birth date, sex, phone, email and \
    address): 0.5 at the lower threshold of 13 bits, below which nothing is returned; \
    certain from 22 bits (score 0.998). Every patient returned is audited.";

const DEFAULT_COUNT: usize = 10;
const MAX_COUNT: usize = 100;

struct MatchInput {
    record: MatchRecord,
    only_certain: bool,
    count: usize,
}

fn read_parameters(value: &Value) -> Result<MatchInput, FhirError> {
    check_resource(value, "Parameters", None)?;
    let mut issues: Issues = Vec::new();
    let known = known_elements(&["parameter"]);
    let Some(params) = Obj::new("Parameters".into(), value, &known, &mut issues) else {
        return Err(FhirError::Invalid(issues));
    };
    let mut record = None;
    let mut only_certain = false;
    let mut count = DEFAULT_COUNT;
    let known = ["name", "resource", "valueBoolean", "valueInteger"];
    for (path, raw) in params.list("parameter", &mut issues) {
        let Some(p) = Obj::new(path.clone(), raw, &known, &mut issues) else {
            continue;
        };
        match p.string("name", &mut issues).as_deref() {
            Some("resource") => record = read_resource(&p, raw, &mut issues),
            Some("onlyCertainMatches") => {
                only_certain = p.boolean("valueBoolean", &mut issues).unwrap_or(false);
            }
            Some("count") => match raw.get("valueInteger").and_then(Value::as_u64) {
                Some(n) if n >= 1 => count = usize::try_from(n).unwrap_or(MAX_COUNT).min(MAX_COUNT),
                _ => {
                    let at = p.child("valueInteger");
                    issues.push(Issue::at(
                        "value",
                        &at,
                        format!("{at} must be a whole number, 1 or more"),
                    ));
                }
            },
            other => {
                let at = p.child("name");
                let name = other.unwrap_or_default();
                issues.push(Issue::at(
                    "not-supported",
                    &at,
                    format!("{at} '{name}' is not a parameter of $match (resource, onlyCertainMatches, count)"),
                ));
            }
        }
    }
    if !issues.is_empty() {
        return Err(FhirError::Invalid(issues));
    }
    let Some(record) = record else {
        return Err(FhirError::Invalid(vec![Issue::at(
            "required",
            "Parameters.parameter",
            "Parameters.parameter 'resource' (the Patient to match) is required",
        )]));
    };
    Ok(MatchInput {
        record,
        only_certain,
        count,
    })
}

/// The Patient of the `resource` parameter as what the matcher compares.
/// Elements the server does not keep are ignored here (matching stores
/// nothing); the ones it reads are checked as on create.
fn read_resource(p: &Obj, raw: &Value, issues: &mut Issues) -> Option<MatchRecord> {
    let path = p.child("resource");
    let Some(resource) = raw.get("resource").filter(|r| r.is_object()) else {
        issues.push(Issue::at(
            "required",
            &path,
            format!("{path} must be a Patient resource"),
        ));
        return None;
    };
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        let at = format!("{path}.resourceType");
        issues.push(Issue::at("value", &at, format!("{at} must be 'Patient'")));
        return None;
    }
    let keys = known_keys(resource);
    let obj = Obj::new(path.clone(), resource, &keys, issues)?;
    let parsed = patient::parse(&obj, issues);
    let p = parsed.patient;
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let record = MatchRecord {
        given: p.given.clone(),
        middle: p.middle.clone(),
        family: p.family.clone(),
        birth_date: parsed.birth_date,
        sex: parsed.gender,
        phones: p.phones.iter().map(|ph| ph.number.clone()).collect(),
        email: p.email.as_deref().and_then(non_empty),
        addresses: p
            .addresses
            .iter()
            .map(|a| MatchAddress::from(&a.address))
            .filter(|a| a.line.is_some() || a.postal_code.is_some())
            .collect(),
    };
    let empty = record.given.trim().is_empty()
        && record.family.trim().is_empty()
        && record.birth_date.is_none()
        && record.phones.is_empty()
        && record.email.is_none()
        && record.addresses.iter().all(|a| a.line.is_none());
    if empty {
        issues.push(Issue::at(
            "required",
            &path,
            format!("{path} has nothing to match on: send a name, birthDate, telecom or address"),
        ));
        return None;
    }
    Some(record)
}

/// `search.score` ([`MatchScore::search_score`]), rounded to four places.
fn score(s: &MatchScore, thresholds: &Thresholds) -> f64 {
    (s.search_score(thresholds) * 10_000.0).round() / 10_000.0
}

pub async fn match_patients(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let note = note(Action::Search, "Patient", None, "$match");
    let result = async {
        ctx.require(Area::Patients)?;
        let value = read_json(&headers, body).await?;
        let input = read_parameters(&value)?;
        let thresholds = Thresholds::DEFAULT;
        let found = ctx
            .state
            .db
            .match_candidates(ctx.org(), &input.record, &thresholds)
            .await?;
        let chosen: Vec<_> = found
            .into_iter()
            .filter(|(_, s)| !input.only_certain || s.grade == MatchGrade::Certain)
            .take(input.count)
            .collect();
        let entries: Vec<Value> = chosen
            .iter()
            .map(|(v, s)| {
                json!({
                    "fullUrl": format!("{}/Patient/{}", ctx.base, v.id),
                    "resource": resource_json(v),
                    "search": {
                        "extension": [{
                            "url": MatchGrade::EXTENSION_URL,
                            "valueCode": s.grade.fhir_code(),
                        }],
                        "mode": "match",
                        "score": score(s, &thresholds),
                    },
                })
            })
            .collect();
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "link": [{ "relation": "self", "url": format!("{}/Patient/$match", ctx.base) }],
            "entry": entries,
        });
        let mut response = json_response(StatusCode::OK, bundle);
        for (v, s) in &chosen {
            let shown = crate::fhir::note(
                Action::Search,
                "Patient",
                Some(&v.id),
                &format!(
                    "$match result: {} ({:.1} bits)",
                    s.grade.fhir_code(),
                    s.total
                ),
            );
            audit::note(&mut response, shown.patient(&v.id));
        }
        Ok(response)
    }
    .await;
    finish(note, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carefront_domain::matching::compare;

    #[test]
    fn scores_are_even_odds_at_the_lower_threshold() {
        let t = Thresholds::DEFAULT;
        let a = MatchRecord {
            given: "Ana".into(),
            family: "Reyes".into(),
            birth_date: Some(jiff::civil::date(1962, 3, 14)),
            phones: vec!["+15125550142".into()],
            ..MatchRecord::default()
        };
        let mut s = compare(&a, &a);
        assert!(score(&s, &t) > 0.99 && score(&s, &t) <= 1.0);
        s.total = t.lower;
        assert_eq!(score(&s, &t), 0.5);
        s.total = t.upper;
        assert_eq!(score(&s, &t), 0.9981);
    }
}
