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

use super::appointment_hold::{Request, Target, read_request, requested};
use crate::fhir::outcome::FhirError;
use crate::fhir::resource::{read_json, resource_json};
use crate::fhir::resources::appointment::{
    actor, book as book_slot, idempotency_key, replayed, single, written,
};
use crate::fhir::resources::scheduling::{At, HOLD_PREFIX, stored};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_store::{AppointmentDetails, Booked, IdempotencyKey, StoreError};
use jiff::Timestamp;

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
    Idempotency-Key: a retry answers the first appointment and books nothing twice.";

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
