//! `Appointment/$hold`: IHE ITI-116 Hold Appointment
//! (<https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-hold>).
//!
//! Input: a Parameters resource with `appointment-reference` (a proposal of
//! `$find`) or `appointment-resource` (an Appointment with start,
//! participants and serviceType, or naming a proposal by id). The slot is
//! evaluated like a booking but must fit the schedule as it is (holds never
//! override) and is kept by a hold for
//! [`DEFAULT_HOLD_TTL`](carefront_domain::scheduling::DEFAULT_HOLD_TTL).
//!
//! Output: a `searchset` Bundle with the held Appointment: id
//! `hold-<hold id>`, status `pending`, and the hold's expiry in the
//! extension `appointment-hold-expires`. `$book` takes that id.
//!
//! `Idempotency-Key`: under a lock on the key, a retry finds the live hold
//! the first request placed for the same patient and slot and answers it
//! again instead of holding twice. (Holds have no idempotency record of
//! their own in the store; they lapse within minutes.)

use crate::fhir::json::{Issues, Obj, REFERENCE_ELEMENTS};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{check_resource, known_elements, read_json};
use crate::fhir::resources::appointment::{
    self, Booking, ELEMENTS, Input, Purpose, actor, appointment_types, check_status, hold_json,
    idempotency_key, replayed, resolve_booking, single, written,
};
use crate::fhir::resources::scheduling::{
    At, HOLD_PREFIX, Part, SlotKey, conflict, parse_proposed_id, refused, resolve_key, rule, stored,
};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::scheduling::{BookingRequest, Hold};
use carefront_store::{AppointmentDetails, AppointmentRecord, StoreError};
use jiff::Timestamp;
use serde_json::Value;

pub const DEFINITION: &str =
    "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-hold";
pub const DOC: &str = "IHE ITI-116 Hold Appointment. POST a Parameters resource with \
    appointment-reference (Appointment/<id of a $find proposal>) or appointment-resource (an \
    Appointment with start, Patient, Practitioner and Location participants and serviceType, \
    or whose id is a proposal's). The slot must still be free on the schedule as it is (holds \
    never override): a slot taken answers 409 (code conflict), other refusals 422 naming the \
    element. Answers a searchset Bundle with the held Appointment: id hold-<id>, status \
    pending, extension http://carefront.example/fhir/StructureDefinition/appointment-hold-expires \
    (valueInstant, 5 minutes later). Book it with $book before then; afterwards the slot is \
    free again. Honours Idempotency-Key: a retry answers the hold already placed.";

/// What `$hold` and `$book` are asked about.
#[derive(Debug, Clone)]
pub enum Target {
    /// `hold-<id>`.
    Hold(String),
    /// A proposal of `$find`: its slot and patient.
    Proposed(SlotKey<Part>, Option<String>),
    /// Any other id: a stored appointment.
    Stored(String),
}

impl Target {
    fn of(id: &str) -> Option<Target> {
        if let Some(hold) = id.strip_prefix(HOLD_PREFIX) {
            return Some(Target::Hold(hold.to_string()));
        }
        if id.contains('.') {
            return parse_proposed_id(id).map(|(k, p)| Target::Proposed(k, p));
        }
        Some(Target::Stored(id.to_string()))
    }
}

/// The Parameters of `$hold` and `$book`.
#[derive(Debug)]
pub struct Request {
    pub target: Option<Target>,
    /// Where the target was named, for errors.
    pub target_path: String,
    pub resource: Option<Input>,
    /// `$book` of a series: further appointment-resources, occurrences
    /// (recurrenceId) at other times than the series' own.
    pub occurrences: Vec<Input>,
}

pub fn read_request(value: &Value, op: &str) -> Result<Request, FhirError> {
    check_resource(value, "Parameters", None)?;
    let mut issues: Issues = Vec::new();
    let known = known_elements(&["parameter"]);
    let Some(params) = Obj::new("Parameters".into(), value, &known, &mut issues) else {
        return Err(FhirError::Invalid(issues));
    };
    let mut target: Option<(Target, String, String)> = None;
    let mut resource: Option<Input> = None;
    let mut occurrences = Vec::new();
    for (path, raw) in params.list("parameter", &mut issues) {
        let Some(p) = Obj::new(
            path.clone(),
            raw,
            &["name", "valueReference", "resource"],
            &mut issues,
        ) else {
            continue;
        };
        match p.string("name", &mut issues).as_deref() {
            Some("appointment-reference") => {
                let Some(r) = p.object("valueReference", REFERENCE_ELEMENTS, &mut issues) else {
                    let at = p.child("valueReference");
                    issues.push(Issue::at("required", &at, format!("{at} is required")));
                    continue;
                };
                let at = r.child("reference");
                let reference = r.string("reference", &mut issues).unwrap_or_default();
                let id = reference
                    .rsplit_once("Appointment/")
                    .map(|(_, id)| id)
                    .filter(|id| !id.is_empty() && !id.contains('/'));
                match id.and_then(|id| Target::of(id).map(|t| (t, id))) {
                    Some((t, id)) => target = Some((t, id.to_string(), r.path.clone())),
                    None => issues.push(Issue::at(
                        "value",
                        &at,
                        format!(
                            "{at} must refer to an appointment of this server (Appointment/id, \
                             e.g. a proposal of $find)"
                        ),
                    )),
                }
            }
            Some("appointment-resource") => {
                let at = p.child("resource");
                match raw.get("resource") {
                    Some(r)
                        if r.get("resourceType").and_then(Value::as_str) == Some("Appointment") =>
                    {
                        let known = known_elements(ELEMENTS);
                        if let Some(obj) = Obj::new(at, r, &known, &mut issues) {
                            let _ = obj.string("resourceType", &mut issues);
                            let parsed = appointment::parse(&obj, &mut issues);
                            if parsed.recurrence.is_none() && parsed.recurrence_id.is_some() {
                                occurrences.push(parsed);
                            } else if resource.is_some() {
                                issues.push(Issue::at(
                                    "not-supported",
                                    &obj.path,
                                    format!(
                                        "{}: one appointment is booked here; further \
                                         appointment-resources are occurrences of its series \
                                         (with recurrenceId)",
                                        obj.path
                                    ),
                                ));
                            } else {
                                resource = Some(parsed);
                            }
                        }
                    }
                    _ => issues.push(Issue::at(
                        "value",
                        &at,
                        format!("{at} must be an Appointment resource"),
                    )),
                }
            }
            other => {
                let at = p.child("name");
                issues.push(Issue::at(
                    "not-supported",
                    &at,
                    format!(
                        "{at} '{}' is not a parameter of ${op} (appointment-reference, \
                         appointment-resource)",
                        other.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if !issues.is_empty() {
        return Err(FhirError::Invalid(issues));
    }
    let resource_id = resource.as_ref().and_then(|r| r.id.clone());
    if let (Some((_, id, at)), Some(rid)) = (&target, &resource_id)
        && id != rid
    {
        return Err(FhirError::invalid(format!(
            "{at} names Appointment/{id} but appointment-resource has id {rid}"
        )));
    }
    let target = match (target, &resource) {
        (Some((t, _, at)), _) => Some((t, at)),
        (None, Some(r)) => {
            r.id.as_deref()
                .and_then(Target::of)
                .map(|t| (t, format!("{}.id", r.base)))
        }
        (None, None) => {
            return Err(FhirError::Invalid(vec![Issue::at(
                "required",
                "Parameters.parameter",
                "Parameters.parameter: appointment-reference or appointment-resource is required",
            )]));
        }
    };
    let (target, target_path) = match target {
        Some((t, at)) => (Some(t), at),
        None => (None, "Parameters.parameter".to_string()),
    };
    Ok(Request {
        target,
        target_path,
        resource,
        occurrences,
    })
}

impl Request {
    /// Refuses a series: only `$book` books one.
    pub fn one_appointment(&self) -> Result<(), FhirError> {
        let mut issues = Vec::new();
        for input in self.resource.iter().chain(&self.occurrences) {
            appointment::no_series(input, &mut issues);
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(FhirError::Invalid(issues))
        }
    }
}

/// A booking of a `$find` proposal, for `patient` (from the proposal, else
/// the resource's Patient participant); the resource may add a room,
/// reason, comment and override.
pub async fn from_proposal(
    ctx: &Ctx,
    key: &SlotKey<Part>,
    patient: Option<String>,
    resource: Option<&Input>,
    at: &At,
) -> Result<Booking, FhirError> {
    let types = appointment_types(ctx).await?;
    let gone = || {
        FhirError::NotFound(format!(
            "{at}: the proposed appointment's practitioner, location or type is not known",
            at = at.start
        ))
    };
    let key = resolve_key(&ctx.state.db, ctx.org(), key, &types)
        .await?
        .ok_or_else(gone)?;
    let appointment_type = types
        .into_iter()
        .find(|t| t.id == key.appointment_type)
        .ok_or_else(gone)?;
    let patient_id = patient
        .or_else(|| resource.and_then(|r| r.patient.clone()))
        .ok_or_else(|| {
            FhirError::Invalid(vec![Issue::at(
                "required",
                &at.patient,
                format!(
                    "{}: the proposal names no patient: call $find with patient, or send \
                     appointment-resource with a Patient participant",
                    at.patient
                ),
            )])
        })?;
    let details = AppointmentDetails {
        reason_for_visit: resource.and_then(|r| r.reason.clone()),
        notes: resource.and_then(|r| r.comment.clone()),
    }
    .validate()
    .map_err(|e| stored(StoreError::Invalid(e), at))?;
    Ok(Booking {
        appointment_type,
        request: BookingRequest {
            practitioner_id: key.practitioner,
            location_id: key.location,
            start: key.start,
            resource_id: resource.and_then(|r| r.resource.clone()),
            patient_established: None,
            ignore: Vec::new(),
        },
        patient_id,
        details,
        lead_override: resource.and_then(|r| appointment::lead_override(ctx, r)),
        parties: None,
    })
}

/// The booking a `$hold` or `$book` request asks for (a proposal or a
/// resource), with where to report its problems. Naming a stored
/// appointment is refused (422); holds are the caller's to answer.
pub async fn requested(ctx: &Ctx, req: &mut Request) -> Result<(Booking, At), FhirError> {
    let at_ref = At::all(&req.target_path);
    let db = &ctx.state.db;
    match req.target.clone() {
        Some(Target::Proposed(key, patient)) => {
            let at = req.resource.as_ref().map_or(at_ref.clone(), |r| {
                let mut at = r.at.clone();
                at.start = at_ref.start.clone();
                at
            });
            let b = from_proposal(ctx, &key, patient, req.resource.as_ref(), &at_ref).await?;
            Ok((b, at))
        }
        Some(Target::Stored(id)) => match db.get::<AppointmentRecord>(ctx.org(), &id).await {
            Ok(_) => Err(FhirError::BusinessRule(vec![rule(
                &req.target_path,
                format!(
                    "Appointment/{id} is already booked: change it with update (PUT), or \
                     $find another slot"
                ),
            )])),
            Err(StoreError::NotFound) if req.resource.is_some() => from_resource(ctx, req).await,
            Err(e) => Err(e.into()),
        },
        Some(Target::Hold(_)) => Err(FhirError::Internal(
            "holds are answered by their operation".into(),
        )),
        None => from_resource(ctx, req).await,
    }
}

async fn from_resource(ctx: &Ctx, req: &mut Request) -> Result<(Booking, At), FhirError> {
    let Some(input) = req.resource.as_mut() else {
        return Err(FhirError::invalid(
            "appointment-resource or appointment-reference is required",
        ));
    };
    check_status(input, Purpose::Operation)?;
    let b = resolve_booking(ctx, input, None).await?;
    Ok((b, input.at.clone()))
}

/// The live hold a request with an idempotency key placed before.
async fn placed_before(ctx: &Ctx, b: &Booking, now: Timestamp) -> Result<Option<Hold>, FhirError> {
    let start = b.request.start;
    let until = start
        .checked_add(jiff::SignedDuration::from_secs(1))
        .map_err(|e| FhirError::Internal(e.to_string()))?;
    let holds = ctx
        .state
        .db
        .live_holds(ctx.org(), start, until, now)
        .await?;
    Ok(holds.into_iter().find(|h| {
        h.patient_id == b.patient_id
            && h.slot.practitioner_id == b.request.practitioner_id
            && h.slot.location_id == b.request.location_id
            && h.slot.appointment_type_id == b.appointment_type.id
    }))
}

/// Places the hold; with a key, a retry answers the first hold
/// (`replayed`).
async fn place(
    ctx: &Ctx,
    b: &Booking,
    key: Option<&str>,
    at: &At,
    now: Timestamp,
) -> Result<(Hold, bool), FhirError> {
    let db = &ctx.state.db;
    if key.is_some()
        && let Some(h) = placed_before(ctx, b, now).await?
    {
        return Ok((h, true));
    }
    let request = db
        .with_patient_established(ctx.org(), &b.patient_id, &b.request, now)
        .await?;
    let evaluated = db
        .evaluate_booking(ctx.org(), &b.appointment_type.id, &request, now)
        .await?
        .and_then(|e| e.accept(None));
    let accepted = match evaluated {
        Ok(a) => a,
        Err(refusal) => {
            if key.is_some()
                && let Some(h) = placed_before(ctx, b, now).await?
            {
                return Ok((h, true));
            }
            return Err(refused(refusal, at));
        }
    };
    let mut tx = db.begin(ctx.org()).await?;
    if let Some(k) = key {
        tx.lock(&format!("fhir-hold|{k}")).await?;
        if let Some(h) = placed_before(ctx, b, now).await? {
            return Ok((h, true));
        }
    }
    let placed = tx
        .place_hold(
            &b.patient_id,
            &b.appointment_type.id,
            accepted.placement,
            None,
            &actor(ctx),
            now,
        )
        .await;
    match placed {
        Ok(h) => {
            tx.commit().await?;
            Ok((h, false))
        }
        Err(e) => {
            drop(tx);
            if key.is_some()
                && matches!(e, StoreError::Conflict(_))
                && let Some(h) = placed_before(ctx, b, now).await?
            {
                return Ok((h, true));
            }
            Err(stored(e, at))
        }
    }
}

pub async fn hold(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let mut note = note(Action::Create, "Appointment", None, "$hold");
    let result = async {
        ctx.require(Area::Scheduling)?;
        let key = idempotency_key(&headers)?;
        let value = read_json(&headers, body).await?;
        let mut req = read_request(&value, "hold")?;
        req.one_appointment()?;
        let now = Timestamp::now();
        if let Some(Target::Hold(hold_id)) = &req.target {
            let h = match ctx.state.db.get_hold(ctx.org(), hold_id).await {
                Err(StoreError::NotFound) => Err(FhirError::NotFound(format!(
                    "Appointment/{HOLD_PREFIX}{hold_id} is not held: it was booked or \
                     released, or lapsed long ago."
                ))),
                other => other.map_err(FhirError::from),
            }?;
            note.action = Action::Read;
            note.resource_id = Some(format!("{HOLD_PREFIX}{hold_id}"));
            note.patient_id = Some(h.patient_id.clone());
            if !h.is_live(now) {
                return Err(conflict(format!(
                    "The hold lapsed at {}: look for a slot again (Appointment/$find).",
                    h.expires_at
                )));
            }
            return Ok(json_response(
                StatusCode::OK,
                single(&ctx.base, "hold", hold_json(&h, now)),
            ));
        }
        let (b, at) = requested(&ctx, &mut req).await?;
        note.patient_id = Some(b.patient_id.clone());
        let (h, again) = place(&ctx, &b, key.as_deref(), &at, now).await?;
        let id = format!("{HOLD_PREFIX}{}", h.id);
        note.resource_id = Some(id.clone());
        let response = json_response(
            StatusCode::OK,
            single(&ctx.base, "hold", hold_json(&h, now)),
        );
        if again {
            replayed(&mut note, &id, &h.patient_id, "$hold");
            return Ok(response);
        }
        Ok(written(response))
    }
    .await;
    finish(note, result)
}
