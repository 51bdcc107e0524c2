//! `Appointment/$book`: IHE ITI-117 Book Appointment
//! (<https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-book>).
//!
//! Input: a Parameters resource with `appointment-reference` (a hold of
//! `$hold`, `hold-<id>`, or a proposal of `$find`) or `appointment-resource`
//! (naming one of those by id, or a new Appointment with start,
//! participants and serviceType; its reasonCode and comment are kept).
//! A hold is confirmed (`WriteTx::confirm_hold`: its seats pass to the
//! appointment); anything else is booked through `Db::book`, which needs
//! the time free on the schedule unless a lead sends the override
//! extension.
//!
//! Output: a `searchset` Bundle with the booked Appointment (200), its URL
//! in `Content-Location`. `Idempotency-Key` is honoured: a retry answers
//! the first appointment and books nothing twice.
//!
//! A weekly series (`Db::book_series`, all or nothing): the
//! appointment-resource carries R5's `recurrenceTemplate` as the R4
//! cross-version extension (occurrenceCount, weeklyTemplate.weekInterval,
//! recurrenceType `wk`); further appointment-resources with R5's
//! `recurrenceId` put that occurrence at their own start (an alternative
//! the 409 offered). The answer lists every appointment, each with the
//! series extension; when an occurrence does not fit, nothing is booked and
//! the 409 OperationOutcome has one issue per such occurrence, naming it
//! and the free times nearest to it.

use super::appointment_hold::{Request, Target, read_request, requested};
use crate::audit::AuditNote;
use crate::fhir::outcome::{FhirError, Issue, operation_outcome};
use crate::fhir::resource::{read_json, resource_json};
use crate::fhir::resources::appointment::{
    Recurrence, actor, book as book_slot, idempotency_key, replayed, several, single, written,
};
use crate::fhir::resources::scheduling::{At, HOLD_PREFIX, booking_failed, stored};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::scheduling::{OccurrenceOutcome, PlannedOccurrence};
use carefront_store::{AppointmentDetails, BookError, Booked, IdempotencyKey, StoreError};
use jiff::Timestamp;
use std::collections::BTreeMap;

pub const DEFINITION: &str =
    "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-book";
pub const DOC: &str = "IHE ITI-117 Book Appointment. POST a Parameters resource with \
    appointment-reference (Appointment/hold-<id> from $hold, or a $find proposal) or \
    appointment-resource (naming one of those by id, or a new Appointment with start, \
    participants and serviceType; its reasonCode and comment are kept). A live hold is \
    confirmed (a lapsed one answers 409); anything else must still be free on the schedule \
    unless a lead sends the appointment-override-reason extension. A slot taken answers 409 \
    (code conflict), other refusals 422 naming the element. Answers a searchset Bundle with \
    the booked Appointment (status booked), its URL in Content-Location. Honours \
    Idempotency-Key: a retry answers the first appointment and books nothing twice. A weekly \
    series is booked all or nothing when appointment-resource carries the extension \
    http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceTemplate \
    (sub-extensions occurrenceCount valuePositiveInt 1-52, weeklyTemplate with weekInterval \
    valuePositiveInt 1-12, recurrenceType wk): every occurrence keeps the start's local time \
    at the Location. Further appointment-resource parameters with \
    http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceId \
    (valuePositiveInt, 1 = the first) and a start move that occurrence. The answer lists \
    every appointment with extension \
    http://carefront.example/fhir/StructureDefinition/appointment-series (valueString, the \
    id they share). When an occurrence does not fit, nothing is booked: 409 with one issue \
    (code conflict) per such occurrence naming it, why, and the nearest free starts.";

/// Confirms hold `hold_id`, keeping the resource's reason and comment.
async fn confirm(
    ctx: &Ctx,
    req: &Request,
    hold_id: &str,
    key: Option<String>,
) -> Result<Booked, FhirError> {
    let at = req
        .resource
        .as_ref()
        .map_or_else(|| At::all(&req.target_path), |r| r.at.clone());
    let details = AppointmentDetails {
        reason_for_visit: req.resource.as_ref().and_then(|r| r.reason.clone()),
        notes: req.resource.as_ref().and_then(|r| r.comment.clone()),
    };
    let idem = key
        .map(|k| IdempotencyKey::new(&k, "book-hold", &(hold_id, &details)))
        .transpose()
        .map_err(|e| stored(StoreError::Invalid(e), &at))?;
    let mut tx = ctx.state.db.begin(ctx.org()).await?;
    let booked = match tx
        .confirm_hold(
            hold_id,
            details,
            idem.as_ref(),
            &actor(ctx),
            Timestamp::now(),
        )
        .await
    {
        Err(StoreError::NotFound) => Err(FhirError::NotFound(format!(
            "Appointment/{HOLD_PREFIX}{hold_id} is not held: it was booked or released, or \
             lapsed long ago. Look for a slot again (Appointment/$find)."
        ))),
        other => other.map_err(|e| stored(e, &at)),
    }?;
    tx.commit().await?;
    Ok(booked)
}

pub async fn book(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let mut note = note(Action::Create, "Appointment", None, "$book");
    let result = async {
        ctx.require(Area::Scheduling)?;
        let key = idempotency_key(&headers)?;
        let value = read_json(&headers, body).await?;
        let mut req = read_request(&value, "book")?;
        if let Some(recurrence) = req.resource.as_ref().and_then(|r| r.recurrence.clone()) {
            return book_series(&ctx, &mut req, &recurrence, key, &mut note).await;
        }
        req.one_appointment()?;
        let booked = match req.target.clone() {
            Some(Target::Hold(hold_id)) => {
                if let Ok(h) = ctx.state.db.get_hold(ctx.org(), &hold_id).await {
                    note.patient_id = Some(h.patient_id);
                }
                confirm(&ctx, &req, &hold_id, key).await?
            }
            _ => {
                let (b, at) = requested(&ctx, &mut req).await?;
                note.patient_id = Some(b.patient_id.clone());
                book_slot(&ctx, &b, key, &at).await?
            }
        };
        let saved = &booked.appointment;
        let patient = saved.value.appointment.patient_id.clone();
        note.resource_id = Some(saved.id.clone());
        note.patient_id = Some(patient.clone());
        let mut response = json_response(
            StatusCode::OK,
            single(&ctx.base, "book", resource_json(saved)),
        );
        let location = format!(
            "{}/Appointment/{}/_history/{}",
            ctx.base, saved.id, saved.version
        );
        if let Ok(v) = header::HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
        if booked.replayed {
            replayed(&mut note, &saved.id, &patient, "$book");
            return Ok(response);
        }
        Ok(written(response))
    }
    .await;
    finish(note, result)
}

/// The occurrences a request moves, by index (0 = the first), each checked
/// to be one of the series' with a start.
fn moved(req: &Request, recurrence: &Recurrence) -> Result<BTreeMap<u16, Timestamp>, FhirError> {
    let mut moved = BTreeMap::new();
    let mut issues = Vec::new();
    for o in &req.occurrences {
        let Some((n, at)) = &o.recurrence_id else {
            continue;
        };
        if *n > recurrence.count {
            issues.push(Issue::at(
                "value",
                at,
                format!("{at}: the series has {} occurrences", recurrence.count),
            ));
        } else if let Some(start) = o.start {
            if moved.insert(n - 1, start).is_some() {
                issues.push(Issue::at(
                    "value",
                    at,
                    format!("{at}: occurrence {n} is moved twice"),
                ));
            }
        } else {
            issues.push(Issue::at(
                "required",
                &o.at.start,
                format!("{}: the start of occurrence {n} is required", o.at.start),
            ));
        }
    }
    if issues.is_empty() {
        Ok(moved)
    } else {
        Err(FhirError::Invalid(issues))
    }
}

/// The 409 of a series not booked: one issue per occurrence that does not
/// fit, at the element that asked for its time.
fn conflicts(plan: &[PlannedOccurrence], req: &Request, recurrence: &Recurrence) -> Response {
    let issues: Vec<Issue> = plan
        .iter()
        .filter_map(|o| {
            let OccurrenceOutcome::Conflict {
                conflict,
                alternatives,
            } = &o.outcome
            else {
                return None;
            };
            let n = o.index + 1;
            let at = req
                .occurrences
                .iter()
                .find(|i| i.recurrence_id.as_ref().is_some_and(|(m, _)| *m == n))
                .map_or(recurrence.path.clone(), |i| i.at.start.clone());
            let free: Vec<String> = alternatives
                .iter()
                .map(|s| format!("{} ({} local)", s.start, s.local_start))
                .collect();
            let offer = if free.is_empty() {
                "No free start within a week of it.".to_string()
            } else {
                format!(
                    "Free nearby: {}; to take one, add an appointment-resource with \
                     recurrenceId {n} and that start.",
                    free.join(", ")
                )
            };
            Some(Issue::at(
                "conflict",
                at,
                format!(
                    "Occurrence {n} of {} at {} (local time): {conflict}. {offer}",
                    plan.len(),
                    o.local_start
                ),
            ))
        })
        .collect();
    json_response(StatusCode::CONFLICT, operation_outcome(&issues, "error"))
}

/// Books the weekly series the appointment-resource starts, all or nothing.
async fn book_series(
    ctx: &Ctx,
    req: &mut Request,
    recurrence: &Recurrence,
    key: Option<String>,
    note: &mut AuditNote,
) -> Result<Response, FhirError> {
    if matches!(req.target, Some(Target::Hold(_))) {
        return Err(FhirError::Invalid(vec![Issue::at(
            "not-supported",
            &recurrence.path,
            format!(
                "{}: a hold is one appointment; book a series from a proposal or an \
                 appointment",
                recurrence.path
            ),
        )]));
    }
    let moved = moved(req, recurrence)?;
    let (b, at) = requested(ctx, req).await?;
    note.patient_id = Some(b.patient_id.clone());
    let answer = ctx
        .state
        .db
        .book_series(
            ctx.org(),
            &b.to_store(key),
            recurrence.every_weeks,
            recurrence.count,
            &moved,
            &actor(ctx),
            Timestamp::now(),
        )
        .await;
    let series = match answer {
        Ok(Ok(series)) => series,
        Ok(Err(plan)) => {
            note.detail = Some(format!(
                "FHIR $book of a series: not booked, {} of {} occurrences conflict",
                plan.iter().filter(|o| !o.fits()).count(),
                plan.len()
            ));
            return Ok(conflicts(&plan, req, recurrence));
        }
        Err(BookError::Store(StoreError::Invalid(errors)))
            if errors.for_field("count").is_some() || errors.for_field("every_weeks").is_some() =>
        {
            let path = &recurrence.path;
            return Err(FhirError::BusinessRule(Issue::from_validation(
                &errors,
                |field| match field {
                    "count" => format!("{path}.extension('occurrenceCount')"),
                    "every_weeks" => {
                        format!("{path}.extension('weeklyTemplate').extension('weekInterval')")
                    }
                    _ => path.clone(),
                },
            )));
        }
        Err(e) => return Err(booking_failed(e, &at)),
    };
    let first = &series[0].appointment;
    note.resource_id = Some(first.id.clone());
    let response = json_response(
        StatusCode::OK,
        several(
            &ctx.base,
            "book",
            series
                .iter()
                .map(|b| resource_json(&b.appointment))
                .collect(),
        ),
    );
    if series[0].replayed {
        let patient = first.value.appointment.patient_id.clone();
        replayed(note, &first.id, &patient, "$book of a series");
        return Ok(response);
    }
    Ok(written(response))
}
