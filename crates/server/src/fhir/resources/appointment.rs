//! Appointment (FHIR R4, IHE ITI Scheduling): booked appointments are
//! stored ([`AppointmentRecord`]) and served with create (= booking through
//! `Db::book`), read, vread, history, update (status changes, rescheduling,
//! reason and comment) and search with `_include` (ITI-118). Two kinds are
//! not stored: the proposals of `Appointment/$find` (status `proposed`, id
//! encoding the slot and patient) and holds of `Appointment/$hold` (status
//! `pending`, id `hold-<hold id>`, with the hold's expiry); both can be read
//! and are booked with `Appointment/$book`.
//!
//! # Mapping
//!
//! | domain | FHIR |
//! | --- | --- |
//! | `status` | `status` |
//! | `cancel_reason` | `cancelationReason` ([`CANCEL_REASON_SYSTEM`]; `rescheduled` is `other` with text Rescheduled) |
//! | `appointment_type_id` | `serviceType[0]` ([`APPOINTMENT_TYPE_SYSTEM`]) |
//! | `reason_for_visit` | `reasonCode[0].text` |
//! | `notes` | `comment` |
//! | `start`, `end` | `start`, `end`, `minutesDuration` |
//! | `patient_id`, `practitioner_id`, `location_id` | `participant[].actor` Patient/, Practitioner/, Location/ |
//! | `resource_ids` | `participant[].actor.identifier` ([`RESOURCE_SYSTEM`]) |
//! | the slot taken | `slot[0]` (Slot/id) |
//! | `override_reason` | extension [`OVERRIDE_EXTENSION`] valueString |
//! | `rescheduled_from` | extension [`RESCHEDULED_FROM_EXTENSION`] valueReference |
//! | `series_id` | extension [`SERIES_EXTENSION`] valueString |
//! | a hold's expiry | extension [`HOLD_EXPIRES_EXTENSION`] valueInstant |

use super::scheduling::{
    APPOINTMENT_TYPE_SYSTEM, At, CANCEL_REASON_SYSTEM, HOLD_EXPIRES_EXTENSION, HOLD_PREFIX,
    OVERRIDE_EXTENSION, Part, RESCHEDULED_FROM_EXTENSION, RESOURCE_SYSTEM, SlotKey, SlotStatus,
    booking_failed, conflict, offered_at, parse_proposed_id, parse_slot_id, proposed_id,
    resolve_key, rule, slot_id_of, stored, type_coding,
};
use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::json::{Issues, Obj, REFERENCE_ELEMENTS, reference_id};
use crate::fhir::operations::{appointment_book, appointment_find, appointment_hold};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{
    self, FhirResource, about, check_resource, if_match, known_elements, read_json, resource_json,
};
use crate::fhir::search::{self, SearchParam, date_bounds, reference};
use crate::fhir::{Ctx, audited, capability, finish, json_response, note};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::{Location, Practitioner, Versioned};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, BookingRequest, CancelReason, Hold, Override,
    Slot,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{
    Actor, AppointmentDetails, AppointmentQuery, AppointmentRecord, BookAppointment, Booked,
    BookingParties, Filter, PatientStanding, RescheduleTo, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const KIND: &str = "Appointment";
/// R5's `Appointment.recurrenceTemplate` as the R4 cross-version extension:
/// on `$book`'s appointment, the first of a weekly series.
pub const RECURRENCE_TEMPLATE_EXTENSION: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceTemplate";
/// R5's `Appointment.recurrenceId`: which occurrence of a series (1 is the
/// first); on `$book`'s further appointments, an occurrence at another time.
pub const RECURRENCE_ID_EXTENSION: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceId";
/// On the appointments of a series: the id they share (valueString).
pub const SERIES_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-series";
/// The IHE ITI Scheduling Appointment profile the served appointments follow.
pub const IHE_PROFILE: &str =
    "https://profiles.ihe.net/ITI/Scheduling/StructureDefinition/ihe-sched-appt";

pub const ELEMENTS: &[&str] = &[
    "extension",
    "status",
    "cancelationReason",
    "serviceType",
    "reasonCode",
    "start",
    "end",
    "minutesDuration",
    "created",
    "comment",
    "participant",
    "slot",
];

const DOC: &str = "An appointment (IHE ITI Scheduling Appointment); roles front_desk, lead, \
    clinician and billing. Mapping: status; cancelationReason \
    (http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason; a rescheduled \
    appointment is cancelled with code other, text Rescheduled); serviceType[0] = the \
    appointment type (http://carefront.example/fhir/CodeSystem/appointment-type|ID, see \
    HealthcareService); reasonCode[0].text = reason for visit; comment = front-desk notes; \
    start, end (end - start is the type's duration), minutesDuration; participant actors \
    Patient/, Practitioner/ and Location/ (one each, required), rooms and equipment as \
    actor.identifier (system http://carefront.example/fhir/sid/schedule-resource); slot[0] = \
    the Slot taken; extensions \
    http://carefront.example/fhir/StructureDefinition/appointment-override-reason \
    (valueString: why a lead booked past the schedule's rules), \
    .../appointment-rescheduled-from (valueReference: the appointment this one replaced), \
    .../appointment-series (valueString: the id the appointments of a recurring series share; \
    series are booked with $book) and .../appointment-hold-expires (valueInstant, on held \
    appointments). Create books the \
    appointment (status booked): give start and the participants (or slot) and serviceType; \
    the time must be free on the schedule unless a lead sends the override extension with a \
    reason. A slot taken meanwhile answers 409 (OperationOutcome code conflict); other refusals \
    (outside the template, too soon, closed, ...) 422 naming the element. Create, $book and \
    $hold honour the Idempotency-Key header: a retried request returns the first result and \
    books nothing twice. Update changes one thing at a time: status (cancelled with \
    cancelationReason, noshow, arrived, checked-in, fulfilled, entered-in-error; checked \
    against the status life cycle), the time or participants (rescheduling: the stored \
    appointment is cancelled as rescheduled and the answer is the new appointment, with \
    Content-Location), or reasonCode and comment; honours If-Match. No delete: cancel instead. \
    Ids with a '.' are proposals of $find and ids starting hold- are holds of $hold; both can \
    be read and are booked with $book. Every read, search result and write is audited with the \
    patient's id.";

// ---------------------------------------------------------------------------
// Writing

fn minutes_between(start: Timestamp, end: Timestamp) -> i64 {
    end.duration_since(start).as_secs() / 60
}

fn participants(
    patient: Option<&str>,
    practitioner: &str,
    location: &str,
    resources: &[String],
    status: &str,
) -> Value {
    let actor = |reference: String| json!({ "actor": { "reference": reference }, "required": "required", "status": status });
    let mut list: Vec<Value> = patient
        .map(|p| actor(format!("Patient/{p}")))
        .into_iter()
        .collect();
    list.push(actor(format!("Practitioner/{practitioner}")));
    list.push(actor(format!("Location/{location}")));
    list.extend(resources.iter().map(|r| {
        json!({
            "actor": { "identifier": { "system": RESOURCE_SYSTEM, "value": r } },
            "required": "required",
            "status": status,
        })
    }));
    Value::Array(list)
}

fn slot_reference(practitioner: &str, location: &str, kind: &str, start: Timestamp) -> Value {
    json!([{ "reference": format!("Slot/{}", slot_id_of(practitioner, location, kind, start)) }])
}

fn cancelation_reason(r: CancelReason) -> Value {
    json!({
        "coding": [{ "system": CANCEL_REASON_SYSTEM, "code": r.fhir_code(), "display": r.label() }],
        "text": r.label(),
    })
}

/// A stored appointment's elements (without `resourceType`, `id`, `meta`).
fn record_json(r: &AppointmentRecord) -> Value {
    let a: &Appointment = &r.appointment;
    let mut extensions = Vec::new();
    if let Some(reason) = &a.override_reason {
        extensions.push(json!({ "url": OVERRIDE_EXTENSION, "valueString": reason }));
    }
    if let Some(from) = &a.rescheduled_from {
        extensions.push(json!({
            "url": RESCHEDULED_FROM_EXTENSION,
            "valueReference": { "reference": format!("Appointment/{from}") },
        }));
    }
    if let Some(series) = &a.series_id {
        extensions.push(json!({ "url": SERIES_EXTENSION, "valueString": series }));
    }
    json!({
        "extension": extensions,
        "status": a.status.code(),
        "cancelationReason": a.cancel_reason.map(cancelation_reason),
        "serviceType": [type_coding(&a.appointment_type_id, None)],
        "reasonCode": [r.reason_for_visit.as_ref().map(|t| json!({ "text": t }))],
        "start": a.start.to_string(),
        "end": a.end.to_string(),
        "minutesDuration": minutes_between(a.start, a.end),
        "comment": r.notes,
        "slot": slot_reference(&a.practitioner_id, &a.location_id, &a.appointment_type_id, a.start),
        "participant": participants(
            Some(&a.patient_id),
            &a.practitioner_id,
            &a.location_id,
            &a.resource_ids,
            "accepted",
        ),
    })
}

/// A hold as a pending Appointment (cancelled once it lapsed).
pub fn hold_json(h: &Hold, now: Timestamp) -> Value {
    let s = &h.slot;
    json!({
        "resourceType": KIND,
        "id": format!("{HOLD_PREFIX}{}", h.id),
        "extension": [{ "url": HOLD_EXPIRES_EXTENSION, "valueInstant": h.expires_at.to_string() }],
        "status": if h.is_live(now) { "pending" } else { "cancelled" },
        "serviceType": [type_coding(&s.appointment_type_id, None)],
        "start": s.start.to_string(),
        "end": s.end.to_string(),
        "minutesDuration": minutes_between(s.start, s.end),
        "created": h.created_at.to_string(),
        "slot": slot_reference(&s.practitioner_id, &s.location_id, &s.appointment_type_id, s.start),
        "participant": participants(
            Some(&h.patient_id),
            &s.practitioner_id,
            &s.location_id,
            &s.resource_ids,
            "tentative",
        ),
    })
}

/// A slot proposed by `$find` as a proposed Appointment.
pub fn proposed_json(slot: &Slot, type_name: &str, patient: Option<&str>) -> Value {
    let patient = patient.filter(|p| proposed_id(slot, Some(p)).split('.').count() == 5);
    json!({
        "resourceType": KIND,
        "id": proposed_id(slot, patient),
        "status": "proposed",
        "serviceType": [type_coding(&slot.appointment_type_id, Some(type_name))],
        "start": slot.start.to_string(),
        "end": slot.end.to_string(),
        "minutesDuration": minutes_between(slot.start, slot.end),
        "comment": format!(
            "{} to {} local time at the location",
            slot.local_start.strftime("%Y-%m-%d %H:%M"),
            slot.local_end.strftime("%H:%M")
        ),
        "slot": slot_reference(&slot.practitioner_id, &slot.location_id, &slot.appointment_type_id, slot.start),
        "participant": participants(
            patient,
            &slot.practitioner_id,
            &slot.location_id,
            &slot.resource_id.iter().cloned().collect::<Vec<_>>(),
            "needs-action",
        ),
    })
}

// ---------------------------------------------------------------------------
// Reading

/// A submitted Appointment, each value with the element it came from.
#[derive(Debug, Clone)]
pub struct Input {
    pub id: Option<String>,
    pub status: Option<AppointmentStatus>,
    pub cancel_reason: Option<CancelReason>,
    pub type_id: Option<String>,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub minutes: Option<i64>,
    pub patient: Option<String>,
    pub practitioner: Option<String>,
    pub location: Option<String>,
    pub resource: Option<String>,
    pub slot: Option<String>,
    pub override_reason: Option<String>,
    /// The weekly series this appointment is the first of.
    pub recurrence: Option<Recurrence>,
    /// Which occurrence of a series this is (1 is the first), with where
    /// it was given.
    pub recurrence_id: Option<(u16, String)>,
    pub at: At,
    pub slot_path: String,
    pub minutes_path: String,
    pub base: String,
}

/// A weekly series as `recurrenceTemplate` describes it.
#[derive(Debug, Clone)]
pub struct Recurrence {
    pub every_weeks: u8,
    pub count: u16,
    /// The extension's path.
    pub path: String,
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A positive integer at `key` that fits `T`.
fn positive<T: TryFrom<i64>>(obj: &Obj, key: &str, issues: &mut Issues) -> Option<T> {
    let n = obj.integer(key, issues)?;
    let fits = if n >= 1 { T::try_from(n).ok() } else { None };
    if fits.is_none() {
        let path = obj.child(key);
        issues.push(Issue::at(
            "value",
            &path,
            format!("{path} {n} is out of range"),
        ));
    }
    fits
}

/// Reads `recurrenceTemplate`: weekly (recurrenceType `wk`), every
/// `weeklyTemplate.weekInterval` weeks (default 1) on the start's weekday,
/// `occurrenceCount` times. Other ways of repeating are not supported.
fn read_recurrence(ext: &Obj, issues: &mut Issues) -> Option<Recurrence> {
    let known = [
        "url",
        "valuePositiveInt",
        "valueCodeableConcept",
        "extension",
    ];
    let mut count = None;
    let mut has_count = false;
    let mut every_weeks = Some(1);
    for part in ext.objects("extension", &known, issues) {
        match part.string("url", issues).as_deref() {
            Some("occurrenceCount") => {
                has_count = true;
                count = positive(&part, "valuePositiveInt", issues);
            }
            Some("recurrenceType") => {
                let kind = part.object("valueCodeableConcept", &["coding", "text"], issues);
                let (code, _) = kind.map_or((None, None), |c| {
                    coded(&c, "http://unitsofmeasure.org", issues)
                });
                if code.as_deref() != Some("wk") {
                    unsupported(
                        issues,
                        &part.child("valueCodeableConcept"),
                        "must be weekly (http://unitsofmeasure.org wk)",
                    );
                }
            }
            Some("weeklyTemplate") => {
                let mut days = 0;
                for w in part.objects(
                    "extension",
                    &["url", "valuePositiveInt", "valueBoolean"],
                    issues,
                ) {
                    match w.string("url", issues).as_deref() {
                        Some("weekInterval") => {
                            every_weeks = positive(&w, "valuePositiveInt", issues)
                        }
                        Some(day) if WEEKDAYS.contains(&day) => {
                            days += usize::from(w.boolean("valueBoolean", issues) == Some(true))
                        }
                        _ => unsupported(
                            issues,
                            &w.child("url"),
                            "is not a part of weeklyTemplate kept here (weekInterval, monday … sunday)",
                        ),
                    }
                }
                if days > 1 {
                    unsupported(
                        issues,
                        &part.path,
                        "names several weekdays: a series here is one visit a week, on the start's weekday",
                    );
                }
            }
            _ => unsupported(
                issues,
                &part.child("url"),
                "is not a part of recurrenceTemplate kept here (recurrenceType, occurrenceCount, weeklyTemplate)",
            ),
        }
    }
    if !has_count {
        let path = format!("{}.extension('occurrenceCount')", ext.path);
        issues.push(Issue::at("required", &path, format!("{path} is required")));
    }
    Some(Recurrence {
        every_weeks: every_weeks?,
        count: count?,
        path: ext.path.clone(),
    })
}

fn unsupported(issues: &mut Issues, path: &str, message: impl std::fmt::Display) {
    issues.push(Issue::at(
        "not-supported",
        path,
        format!("{path} {message}"),
    ));
}

fn instant_at(obj: &Obj, key: &str, issues: &mut Issues) -> Option<Timestamp> {
    let text = obj.string(key, issues)?;
    match text.parse::<Timestamp>() {
        Ok(t) => Some(t),
        Err(_) => {
            let path = obj.child(key);
            issues.push(Issue::at(
                "value",
                &path,
                format!(
                    "{path} '{text}' must be an instant with a time zone, e.g. 2026-03-09T09:00:00-05:00"
                ),
            ));
            None
        }
    }
}

/// The code of a CodeableConcept's coding in `system` (or without one).
fn coded(c: &Obj, system: &str, issues: &mut Issues) -> (Option<String>, Option<String>) {
    let text = c.string("text", issues);
    let mut code = None;
    for coding in c.objects("coding", &["system", "code", "display"], issues) {
        let s = coding.string("system", issues);
        let _ = coding.string("display", issues);
        if s.as_deref().is_none_or(|s| s == system) && code.is_none() {
            code = coding.string("code", issues);
        }
    }
    (code, text)
}

fn read_participants(r: &Obj, input: &mut Input, issues: &mut Issues) {
    let known = ["type", "actor", "required", "status", "period"];
    for p in r.objects("participant", &known, issues) {
        let _ = p.string("required", issues);
        let _ = p.string("status", issues);
        let Some(actor) = p.object("actor", &["reference", "display", "identifier"], issues) else {
            let path = p.child("actor");
            issues.push(Issue::at("required", &path, format!("{path} is required")));
            continue;
        };
        let _ = actor.string("display", issues);
        let path = actor.path.clone();
        if let Some(reference) = actor.string("reference", issues) {
            let (slot, at) = match reference.split_once('/').map(|(k, _)| k) {
                Some("Patient") => (&mut input.patient, &mut input.at.patient),
                Some("Practitioner") => (&mut input.practitioner, &mut input.at.practitioner),
                Some("Location") => (&mut input.location, &mut input.at.location),
                _ => {
                    unsupported(
                        issues,
                        &actor.child("reference"),
                        "must refer to a Patient, Practitioner or Location (Kind/id)",
                    );
                    continue;
                }
            };
            let kind = reference.split('/').next().unwrap_or_default().to_string();
            let Some(id) = reference_id(&reference, &kind) else {
                let at_ref = actor.child("reference");
                issues.push(Issue::at(
                    "value",
                    &at_ref,
                    format!("{at_ref} must be a reference such as '{kind}/123'"),
                ));
                continue;
            };
            if slot.is_some() {
                unsupported(
                    issues,
                    &path,
                    format!("is a second {kind}; an appointment has one"),
                );
                continue;
            }
            *slot = Some(id.to_string());
            *at = path;
        } else if let Some(ident) = actor.object("identifier", &["system", "value"], issues) {
            if ident.string("system", issues).as_deref() != Some(RESOURCE_SYSTEM) {
                unsupported(
                    issues,
                    &ident.child("system"),
                    format!("must be {RESOURCE_SYSTEM} (a room or equipment)"),
                );
                continue;
            }
            if input.resource.is_some() {
                unsupported(issues, &path, "is a second room or device; one is kept");
                continue;
            }
            input.resource = ident.string("value", issues);
            input.at.resource = path;
        } else {
            issues.push(Issue::at(
                "required",
                &path,
                format!(
                    "{path} needs a reference (Patient/, Practitioner/, Location/) or an identifier"
                ),
            ));
        }
    }
}

/// Reads an Appointment at `r` (its path is the base of every element).
pub fn parse(r: &Obj, issues: &mut Issues) -> Input {
    let base = r.path.clone();
    let participant = r.child("participant");
    let mut at = At::all(&base);
    at.start = r.child("start");
    at.end = r.child("end");
    at.patient = participant.clone();
    at.practitioner = participant.clone();
    at.location = participant.clone();
    at.resource = participant;
    at.service_type = r.child("serviceType");
    at.override_reason = format!("{base}.extension('{OVERRIDE_EXTENSION}')");
    at.status = r.child("status");
    at.cancel_reason = r.child("cancelationReason");
    at.reason = r.child("reasonCode");
    at.comment = r.child("comment");
    let mut input = Input {
        id: r.string("id", issues),
        status: None,
        cancel_reason: None,
        type_id: None,
        reason: None,
        comment: r.string("comment", issues),
        start: instant_at(r, "start", issues),
        end: instant_at(r, "end", issues),
        minutes: r.integer("minutesDuration", issues),
        patient: None,
        practitioner: None,
        location: None,
        resource: None,
        slot: None,
        override_reason: None,
        recurrence: None,
        recurrence_id: None,
        at,
        slot_path: r.child("slot"),
        minutes_path: r.child("minutesDuration"),
        base: base.clone(),
    };
    let _ = r.string("created", issues);
    if let Some(code) = r.string("status", issues) {
        input.status = AppointmentStatus::from_code(&code);
        if input.status.is_none() {
            let path = r.child("status");
            issues.push(Issue::at(
                "code-invalid",
                &path,
                format!("{path} '{code}' is not an appointment status"),
            ));
        }
    }
    if let Some(c) = r.object("cancelationReason", &["coding", "text"], issues) {
        let (code, _) = coded(&c, CANCEL_REASON_SYSTEM, issues);
        input.cancel_reason = match code {
            None => Some(CancelReason::Other),
            Some(code) => {
                // `rescheduled` is the server's own: clients reschedule by
                // changing the start.
                let reason =
                    CancelReason::from_code(&code).filter(|r| *r != CancelReason::Rescheduled);
                if reason.is_none() {
                    let path = c.child("coding");
                    issues.push(Issue::at(
                        "code-invalid",
                        &path,
                        format!(
                            "{path} '{code}' is not a code of {CANCEL_REASON_SYSTEM} kept here"
                        ),
                    ));
                }
                reason
            }
        };
    }
    if let Some(t) = r.single("serviceType", &["coding", "text"], issues) {
        let (code, _) = coded(&t, APPOINTMENT_TYPE_SYSTEM, issues);
        if code.is_none() {
            let path = t.child("coding");
            issues.push(Issue::at(
                "code-invalid",
                &path,
                format!("{path} needs the appointment type's code in {APPOINTMENT_TYPE_SYSTEM}"),
            ));
        }
        input.type_id = code;
    }
    if let Some(reason) = r.single("reasonCode", &["coding", "text"], issues) {
        let (code, text) = coded(&reason, "", issues);
        input.reason = text.or(code);
    }
    if let Some(slot) = r.single("slot", REFERENCE_ELEMENTS, issues) {
        let _ = slot.string("display", issues);
        let reference = slot.string("reference", issues).unwrap_or_default();
        match reference_id(&reference, "Slot") {
            Some(id) => input.slot = Some(id.to_string()),
            None => {
                let path = slot.child("reference");
                issues.push(Issue::at(
                    "value",
                    &path,
                    format!("{path} must be a reference such as 'Slot/abc'"),
                ));
            }
        }
        input.slot_path = slot.path.clone();
    }
    for ext in r.objects(
        "extension",
        &[
            "url",
            "valueString",
            "valueInstant",
            "valueReference",
            "valuePositiveInt",
            "extension",
        ],
        issues,
    ) {
        match ext.string("url", issues).as_deref() {
            Some(OVERRIDE_EXTENSION) => {
                input.override_reason = ext.string("valueString", issues);
                input.at.override_reason = ext.child("valueString");
            }
            Some(RECURRENCE_TEMPLATE_EXTENSION) => input.recurrence = read_recurrence(&ext, issues),
            Some(RECURRENCE_ID_EXTENSION) => {
                input.recurrence_id = positive(&ext, "valuePositiveInt", issues)
                    .map(|n| (n, ext.child("valuePositiveInt")));
            }
            // Set by the server; ignored on input.
            Some(HOLD_EXPIRES_EXTENSION | RESCHEDULED_FROM_EXTENSION | SERIES_EXTENSION) => {}
            other => unsupported(
                issues,
                &ext.child("url"),
                format!(
                    "'{}' is not an extension this server keeps (see the CapabilityStatement)",
                    other.unwrap_or_default()
                ),
            ),
        }
    }
    read_participants(r, &mut input, issues);
    input
}

/// Reads an Appointment resource at `path`; problems are a 400. A series
/// is booked only by `$book`.
pub fn read_input(value: &Value, path: &str) -> Result<Input, FhirError> {
    let mut issues = Vec::new();
    let known = known_elements(ELEMENTS);
    let parsed = Obj::new(path.to_string(), value, &known, &mut issues).map(|obj| {
        let _ = obj.string("resourceType", &mut issues);
        parse(&obj, &mut issues)
    });
    if let Some(input) = &parsed {
        no_series(input, &mut issues);
    }
    match parsed {
        Some(input) if issues.is_empty() => Ok(input),
        _ => Err(FhirError::Invalid(issues)),
    }
}

/// Refuses the series extensions where only one appointment is booked.
pub fn no_series(input: &Input, issues: &mut Issues) {
    let paths = [
        input.recurrence.as_ref().map(|r| r.path.clone()),
        input.recurrence_id.as_ref().map(|(_, p)| p.clone()),
    ];
    for path in paths.into_iter().flatten() {
        unsupported(
            issues,
            &path,
            format!("books a series: POST it to {KIND}/$book"),
        );
    }
}

// ---------------------------------------------------------------------------
// Booking

/// What a booking needs, checked against the directory.
#[derive(Debug, Clone)]
pub struct Booking {
    pub appointment_type: AppointmentType,
    pub request: BookingRequest,
    pub patient_id: String,
    pub details: AppointmentDetails,
    pub lead_override: Option<Override>,
    /// The schedule set-up the request was checked against, when it read
    /// it: the booking is evaluated against the same one.
    pub parties: Option<BookingParties>,
}

/// Which statuses a submitted appointment to be booked may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST Appointment`: booked (or none).
    Create,
    /// `$hold` and `$book`: proposed, pending or booked (or none).
    Operation,
}

pub fn check_status(input: &Input, purpose: Purpose) -> Result<(), FhirError> {
    let ok = matches!(
        (purpose, input.status),
        (_, None | Some(AppointmentStatus::Booked))
            | (
                Purpose::Operation,
                Some(AppointmentStatus::Proposed | AppointmentStatus::Pending)
            )
    );
    let mut issues = Vec::new();
    if !ok {
        issues.push(rule(
            &input.at.status,
            match purpose {
                Purpose::Create => {
                    "creating an appointment books it: status must be booked (hold a slot with \
                     Appointment/$hold)"
                }
                Purpose::Operation => "must be proposed, pending or booked",
            },
        ));
    }
    if input.cancel_reason.is_some() {
        issues.push(rule(
            &input.at.cancel_reason,
            "only a cancelled appointment has a cancelation reason",
        ));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(FhirError::BusinessRule(issues))
    }
}

pub async fn appointment_types(ctx: &Ctx) -> Result<Vec<AppointmentType>, FhirError> {
    Ok(ctx.state.db.live_appointment_types(ctx.org()).await?)
}

fn required(issues: &mut Vec<Issue>, path: &str, what: &str) {
    issues.push(Issue::at(
        "required",
        path,
        format!("{path}: {what} is required"),
    ));
}

/// Fills `input`'s missing slot fields from its `slot` reference (which must
/// agree with what was given).
async fn apply_slot(
    ctx: &Ctx,
    input: &mut Input,
    types: &[AppointmentType],
) -> Result<(), FhirError> {
    let Some(slot) = input.slot.clone() else {
        return Ok(());
    };
    let path = input.slot_path.clone();
    let unknown = || {
        FhirError::BusinessRule(vec![rule(
            &path,
            format!("Slot/{slot} is not on the schedule (search Slot for openings)"),
        )])
    };
    let key = parse_slot_id(&slot).ok_or_else(unknown)?;
    let key = resolve_key(&ctx.state.db, ctx.org(), &key, types)
        .await?
        .ok_or_else(unknown)?;
    let mut issues = Vec::new();
    let mut agree = |given: &mut Option<String>, value: &str, at: &str| match given {
        Some(g) if g != value => issues.push(rule(
            at,
            format!("does not match the slot's ('{value}', from {path})"),
        )),
        _ => *given = Some(value.to_string()),
    };
    agree(
        &mut input.practitioner,
        &key.practitioner,
        &input.at.practitioner,
    );
    agree(&mut input.location, &key.location, &input.at.location);
    agree(
        &mut input.type_id,
        &key.appointment_type,
        &input.at.service_type,
    );
    match input.start {
        Some(s) if s != key.start => issues.push(rule(
            &input.at.start,
            format!("does not match the slot's start {}", key.start),
        )),
        _ => input.start = Some(key.start),
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(FhirError::BusinessRule(issues))
    }
}

/// Checks a submitted appointment to book: required elements (400), then
/// what they refer to and the type's duration (422). `patient` stands in for
/// a missing Patient participant.
pub async fn resolve_booking(
    ctx: &Ctx,
    input: &mut Input,
    patient: Option<&str>,
) -> Result<Booking, FhirError> {
    if input.patient.is_none() {
        input.patient = patient.map(str::to_string);
    }
    let (parties, standing) = ctx
        .state
        .db
        .booking_context(ctx.org(), input.patient.as_deref(), Timestamp::now())
        .await?;
    let types = parties.appointment_types();
    apply_slot(ctx, input, &types).await?;
    let at = input.at.clone();
    let mut missing = Vec::new();
    if input.start.is_none() {
        required(&mut missing, &at.start, "the start (or a slot)");
    }
    if input.patient.is_none() {
        required(&mut missing, &at.patient, "a Patient participant");
    }
    if input.practitioner.is_none() {
        required(&mut missing, &at.practitioner, "a Practitioner participant");
    }
    if input.location.is_none() {
        required(&mut missing, &at.location, "a Location participant");
    }
    if input.type_id.is_none() {
        required(&mut missing, &at.service_type, "the appointment type");
    }
    if let (Some(start), Some(end)) = (input.start, input.end)
        && end <= start
    {
        missing.push(Issue::at(
            "invalid",
            &at.end,
            format!("{}: must be after the start ({start})", at.end),
        ));
    }
    let (Some(start), Some(patient_id), Some(practitioner), Some(location), Some(type_id)) = (
        input.start,
        input.patient.clone(),
        input.practitioner.clone(),
        input.location.clone(),
        input.type_id.clone(),
    ) else {
        return Err(FhirError::Invalid(missing));
    };
    if !missing.is_empty() {
        return Err(FhirError::Invalid(missing));
    }

    let db = &ctx.state.db;
    let org = ctx.org();
    let mut issues = Vec::new();
    let kind = types.iter().find(|t| t.id == type_id).cloned();
    match &kind {
        None => issues.push(rule(
            &at.service_type,
            format!("appointment type '{type_id}' is not known (see HealthcareService)"),
        )),
        Some(t) => {
            let minutes = i64::from(t.duration_minutes);
            let wanted = start.checked_add(SignedDuration::from_mins(minutes)).ok();
            if let Some(end) = input.end
                && Some(end) != wanted
            {
                issues.push(rule(
                    &at.end,
                    format!(
                        "a {} lasts {minutes} minutes: end must be {}",
                        t.name,
                        wanted.map(|w| w.to_string()).unwrap_or_default()
                    ),
                ));
            }
            if input.minutes.is_some_and(|m| m != minutes) {
                issues.push(rule(
                    &input.minutes_path,
                    format!("a {} lasts {minutes} minutes", t.name),
                ));
            }
        }
    }
    let gone = |e: &StoreError| matches!(e, StoreError::NotFound | StoreError::Gone);
    let known = |read: Result<_, StoreError>| match read {
        Ok(_) => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(FhirError::from(e)),
    };
    // Only a practitioner or location the set-up does not schedule is read.
    let practitioner_known = parties.is_active_provider(&practitioner)
        || known(db.get::<Practitioner>(org, &practitioner).await.map(drop))?;
    let location_known = parties.is_live_location(&location)
        || known(db.get::<Location>(org, &location).await.map(drop))?;
    for (is_known, path, what) in [
        (
            practitioner_known,
            &at.practitioner,
            format!("Practitioner/{practitioner}"),
        ),
        (location_known, &at.location, format!("Location/{location}")),
    ] {
        if !is_known {
            issues.push(rule(path, format!("{what} is not known")));
        }
    }
    let mut patient_established = None;
    match standing {
        None => issues.push(rule(
            &at.patient,
            format!("Patient/{patient_id} is not known"),
        )),
        Some(PatientStanding {
            replaced_by: Some(survivor),
            ..
        }) => issues.push(rule(
            &at.patient,
            format!(
                "Patient/{patient_id} was merged into Patient/{survivor}: book for that record"
            ),
        )),
        Some(standing) => patient_established = Some(standing.established),
    }
    let Some(appointment_type) = kind.filter(|_| issues.is_empty()) else {
        return Err(FhirError::BusinessRule(issues));
    };
    let details = AppointmentDetails {
        reason_for_visit: input.reason.clone(),
        notes: input.comment.clone(),
    }
    .validate()
    .map_err(|e| stored(StoreError::Invalid(e), &at))?;
    Ok(Booking {
        appointment_type,
        request: BookingRequest {
            practitioner_id: practitioner,
            location_id: location,
            start,
            resource_id: input.resource.clone(),
            patient_established,
            ignore: Vec::new(),
        },
        patient_id,
        details,
        lead_override: lead_override(ctx, input),
        parties: Some(parties),
    })
}

/// The override a submitted appointment asks for (the domain decides
/// whether the caller's role may).
pub fn lead_override(ctx: &Ctx, input: &Input) -> Option<Override> {
    input.override_reason.as_ref().map(|reason| Override {
        role: ctx.principal.role,
        reason: reason.clone(),
    })
}

/// Who writes: the caller, for the audit events the store appends.
pub fn actor(ctx: &Ctx) -> Actor {
    Actor::from(ctx.principal.entry(Action::Create, Outcome::Success))
}

/// The `Idempotency-Key` header (a bare or quoted string).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, FhirError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && k.chars().count() <= 200);
    key.map(Some).ok_or_else(|| {
        FhirError::invalid("The Idempotency-Key header must be 1 to 200 visible characters.")
    })
}

impl Booking {
    /// The store's request for this booking (or the first of a series).
    pub fn to_store(&self, key: Option<String>) -> BookAppointment {
        BookAppointment {
            appointment_type_id: self.appointment_type.id.clone(),
            request: self.request.clone(),
            patient_id: self.patient_id.clone(),
            details: self.details.clone(),
            series_id: None,
            lead_override: self.lead_override.clone(),
            idempotency_key: key,
        }
    }
}

/// Books through the server's `BookingWriter` (a retry with the same key
/// returns the first appointment).
pub async fn book(
    ctx: &Ctx,
    b: &Booking,
    key: Option<String>,
    at: &At,
) -> Result<Booked, FhirError> {
    let booking = b.to_store(key);
    ctx.state
        .bookings
        .book_as_read(
            ctx.org(),
            &booking,
            b.parties.as_ref(),
            &actor(ctx),
            Timestamp::now(),
        )
        .await
        .map_err(|e| booking_failed(e, at))
}

/// Marks a replayed write's note as what it is: a read of the first result.
pub fn replayed(note: &mut crate::audit::AuditNote, id: &str, patient: &str, what: &str) {
    note.action = Action::Read;
    note.resource_id = Some(id.to_string());
    note.patient_id = Some(patient.to_string());
    note.detail = Some(format!(
        "FHIR {what}: Idempotency-Key retry answered with the first result, nothing written"
    ));
}

// ---------------------------------------------------------------------------
// Interactions

impl FhirResource for AppointmentRecord {
    const READ: Area = Area::Schedule;
    const WRITE: Area = Area::Scheduling;
    const CREATE_DELETE: bool = false;
    const ELEMENTS: &'static [&'static str] = ELEMENTS;
    /// Searched by this module's own handler ([`SEARCH`]).
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[];
    const DOC: &'static str = DOC;

    fn to_fhir(&self) -> Value {
        record_json(self)
    }

    /// Only for the trait: appointments are written by this module's own
    /// create and update, which book through the schedule.
    fn from_fhir(resource: &Obj, issues: &mut Issues) -> Self {
        let input = parse(resource, issues);
        let start = input.start.unwrap_or_default();
        AppointmentRecord {
            appointment: Appointment {
                id: input.id.unwrap_or_default(),
                patient_id: input.patient.unwrap_or_default(),
                practitioner_id: input.practitioner.unwrap_or_default(),
                location_id: input.location.unwrap_or_default(),
                appointment_type_id: input.type_id.unwrap_or_default(),
                resource_ids: input.resource.into_iter().collect(),
                start,
                end: input.end.unwrap_or(start),
                status: input.status.unwrap_or(AppointmentStatus::Booked),
                status_changed_at: start,
                max_seat: 0,
                cancel_reason: input.cancel_reason,
                override_reason: input.override_reason,
                series_id: None,
                rescheduled_from: None,
                arrived_at: None,
            },
            reason_for_visit: input.reason,
            notes: input.comment,
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        Ok(self)
    }

    fn expression(field: &str) -> String {
        match field {
            "reason_for_visit" => "Appointment.reasonCode".into(),
            "notes" => "Appointment.comment".into(),
            "cancel_reason" => "Appointment.cancelationReason".into(),
            other => format!("Appointment.{other}"),
        }
    }

    fn patient_of(&self, _id: &str) -> Option<String> {
        Some(self.appointment.patient_id.clone())
    }
}

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type).post(create))
        .route(
            &format!("/{KIND}/$find"),
            get(appointment_find::find_get).post(appointment_find::find_post),
        )
        .route(&format!("/{KIND}/$hold"), post(appointment_hold::hold))
        .route(&format!("/{KIND}/$book"), post(appointment_book::book))
        .route(&format!("/{KIND}/{{id}}"), get(read).put(update))
        .route(
            &format!("/{KIND}/{{id}}/_history"),
            get(resource::history::<AppointmentRecord>),
        )
        .route(
            &format!("/{KIND}/{{id}}/_history/{{vid}}"),
            get(resource::vread::<AppointmentRecord>),
        )
}

pub fn capability_entry() -> Value {
    let mut entry = capability::entry(
        KIND,
        DOC,
        &[
            "read",
            "vread",
            "update",
            "history-instance",
            "search-type",
            "create",
        ],
        true,
        &[SEARCH],
    );
    entry["supportedProfile"] = json!([IHE_PROFILE]);
    entry["searchInclude"] = json!([
        "Appointment:patient",
        "Appointment:practitioner",
        "Appointment:location"
    ]);
    entry["operation"] = json!([
        {
            "name": "find",
            "definition": appointment_find::DEFINITION,
            "documentation": appointment_find::DOC,
        },
        {
            "name": "hold",
            "definition": appointment_hold::DEFINITION,
            "documentation": appointment_hold::DOC,
        },
        {
            "name": "book",
            "definition": appointment_book::DEFINITION,
            "documentation": appointment_book::DOC,
        },
    ]);
    entry
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Some(hold_id) = id.strip_prefix(HOLD_PREFIX) {
        let hold_id = hold_id.to_string();
        return read_hold(ctx, id, hold_id).await;
    }
    if id.contains('.') {
        return read_proposed(ctx, id).await;
    }
    resource::read::<AppointmentRecord>(ctx, Path(id)).await
}

async fn read_hold(ctx: Ctx, id: String, hold_id: String) -> Response {
    let mut note = note(Action::Read, KIND, Some(&id), "read hold");
    let result = async {
        ctx.require(Area::Schedule)?;
        let hold = match ctx.state.db.get_hold(ctx.org(), &hold_id).await {
            Err(StoreError::NotFound) => Err(FhirError::NotFound(format!(
                "{KIND}/{id} is not held: it was booked or released, or lapsed long ago."
            ))),
            other => other.map_err(FhirError::from),
        }?;
        note.patient_id = Some(hold.patient_id.clone());
        Ok(json_response(
            StatusCode::OK,
            hold_json(&hold, Timestamp::now()),
        ))
    }
    .await;
    finish(note, result)
}

async fn read_proposed(ctx: Ctx, id: String) -> Response {
    let mut note = note(Action::Read, KIND, Some(&id), "read proposal");
    let result = async {
        ctx.require(Area::Schedule)?;
        let gone = || {
            FhirError::NotFound(format!(
                "{KIND}/{id} is no longer proposed: the slot was taken or the schedule changed."
            ))
        };
        let (key, patient) = parse_proposed_id(&id).ok_or_else(gone)?;
        note.patient_id = patient.clone();
        let found = proposal(&ctx, &key).await?.ok_or_else(gone)?;
        Ok(json_response(
            StatusCode::OK,
            proposed_json(&found.0, &found.1, patient.as_deref()),
        ))
    }
    .await;
    finish(note, result)
}

/// The free slot a proposal names, with its type's name, if still offered.
pub async fn proposal(ctx: &Ctx, key: &SlotKey<Part>) -> Result<Option<(Slot, String)>, FhirError> {
    let types = appointment_types(ctx).await?;
    let db = &ctx.state.db;
    let Some(key) = resolve_key(db, ctx.org(), key, &types).await? else {
        return Ok(None);
    };
    let found = offered_at(db, ctx.org(), &key, &types, Timestamp::now()).await?;
    Ok(found
        .filter(|o| o.status == SlotStatus::Free && !o.slot.is_overbook())
        .map(|o| (o.slot, o.type_name)))
}

async fn create(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let mut note = note(Action::Create, KIND, None, "create");
    let result = async {
        ctx.require(Area::Scheduling)?;
        let key = idempotency_key(&headers)?;
        let value = read_json(&headers, body).await?;
        check_resource(&value, KIND, None)?;
        let mut input = read_input(&value, KIND)?;
        check_status(&input, Purpose::Create)?;
        let b = resolve_booking(&ctx, &mut input, None).await?;
        note.patient_id = Some(b.patient_id.clone());
        let booked = book(&ctx, &b, key, &input.at).await?;
        let saved = &booked.appointment;
        if booked.replayed {
            replayed(&mut note, &saved.id, &b.patient_id, "create");
            return Ok(ctx.version(StatusCode::CREATED, saved, true));
        }
        Ok(ctx.written(StatusCode::CREATED, saved, &headers))
    }
    .await;
    finish(note, result)
}

/// What an update changes.
enum Change {
    Nothing,
    Status(AppointmentStatus, Option<CancelReason>),
    Move(RescheduleTo),
    Details(AppointmentDetails),
}

fn change(
    ctx: &Ctx,
    input: &Input,
    current: &AppointmentRecord,
    key: Option<String>,
) -> Result<Change, FhirError> {
    let a = &current.appointment;
    let at = &input.at;
    let mut missing = Vec::new();
    if input.start.is_none() {
        required(&mut missing, &at.start, "the start");
    }
    if input.status.is_none() {
        required(&mut missing, &at.status, "the status");
    }
    for (given, path, what) in [
        (&input.patient, &at.patient, "the Patient participant"),
        (
            &input.practitioner,
            &at.practitioner,
            "a Practitioner participant",
        ),
        (&input.location, &at.location, "a Location participant"),
    ] {
        if given.is_none() {
            required(&mut missing, path, what);
        }
    }
    if let (Some(start), Some(end)) = (input.start, input.end)
        && end <= start
    {
        missing.push(Issue::at(
            "invalid",
            &at.end,
            format!("{}: must be after the start ({start})", at.end),
        ));
    }
    let (Some(start), Some(status), Some(patient), Some(practitioner), Some(location)) = (
        input.start,
        input.status,
        &input.patient,
        &input.practitioner,
        &input.location,
    ) else {
        return Err(FhirError::Invalid(missing));
    };
    if !missing.is_empty() {
        return Err(FhirError::Invalid(missing));
    }
    let mut issues = Vec::new();
    if *patient != a.patient_id {
        issues.push(rule(
            &at.patient,
            "the patient of an appointment cannot change: book one for the other patient",
        ));
    }
    if input
        .type_id
        .as_ref()
        .is_some_and(|t| *t != a.appointment_type_id)
    {
        issues.push(rule(
            &at.service_type,
            "the appointment type cannot change: cancel and book another",
        ));
    }
    let duration = a.end.duration_since(a.start);
    let new_end = start.checked_add(duration).ok();
    if input.end.is_some_and(|e| Some(e) != new_end) {
        issues.push(rule(
            &at.end,
            format!(
                "the visit lasts {} minutes: end must be {}",
                duration.as_mins(),
                new_end.map(|e| e.to_string()).unwrap_or_default()
            ),
        ));
    }
    let moved = start != a.start
        || *practitioner != a.practitioner_id
        || *location != a.location_id
        || input
            .resource
            .as_ref()
            .is_some_and(|r| !a.resource_ids.contains(r));
    let status_changed = status != a.status;
    let details_changed =
        input.reason != current.reason_for_visit || input.comment != current.notes;
    let changes = [moved, status_changed, details_changed]
        .iter()
        .filter(|c| **c)
        .count();
    if changes > 1 {
        issues.push(rule(
            if status_changed {
                &at.status
            } else {
                &at.comment
            },
            "change the time or participants, the status, or the reason and comment in \
             separate updates",
        ));
    }
    if !issues.is_empty() {
        return Err(FhirError::BusinessRule(issues));
    }
    Ok(if moved {
        Change::Move(RescheduleTo {
            start,
            practitioner_id: Some(practitioner.clone()),
            location_id: Some(location.clone()),
            resource_id: input.resource.clone(),
            lead_override: lead_override(ctx, input),
            idempotency_key: key,
        })
    } else if status_changed {
        let reason = match status {
            AppointmentStatus::Cancelled => {
                Some(input.cancel_reason.unwrap_or(CancelReason::Other))
            }
            _ => input.cancel_reason,
        };
        Change::Status(status, reason)
    } else if details_changed {
        Change::Details(AppointmentDetails {
            reason_for_visit: input.reason.clone(),
            notes: input.comment.clone(),
        })
    } else {
        Change::Nothing
    })
}

async fn update(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let mut note = note(Action::Update, KIND, Some(&id), "update");
    let result = async {
        ctx.require(Area::Scheduling)?;
        if id.starts_with(HOLD_PREFIX) || id.contains('.') {
            return Err(FhirError::MethodNotAllowed(format!(
                "{KIND}/{id} is a hold or a proposal: book it with {KIND}/$book first."
            )));
        }
        let if_match = if_match(&headers)?;
        let key = idempotency_key(&headers)?;
        let value = read_json(&headers, body).await?;
        check_resource(&value, KIND, Some(&id))?;
        let input = read_input(&value, KIND)?;
        let db = &ctx.state.db;
        let name = format!("{KIND}/{id}");
        let current = match db.get::<AppointmentRecord>(ctx.org(), &id).await {
            Err(StoreError::NotFound) => Err(FhirError::MethodNotAllowed(format!(
                "{name} does not exist; book appointments with POST (no update-as-create)."
            ))),
            other => other.map_err(about(KIND, &id)),
        }?;
        note.patient_id = Some(current.value.appointment.patient_id.clone());
        if let Some(v) = if_match
            && v != current.version
        {
            return Err(StoreError::VersionConflict {
                current: current.version,
            }
            .into());
        }
        let expected = if_match.unwrap_or(current.version);
        let raced = |e: StoreError| match e {
            // Without If-Match, only a concurrent writer can cause this.
            StoreError::VersionConflict { current } if if_match.is_none() => conflict(format!(
                "{name} changed to version {current} meanwhile; read it and try again."
            )),
            other => stored(other, &input.at),
        };
        let actor = actor(&ctx);
        let now = Timestamp::now();
        match change(&ctx, &input, &current.value, key)? {
            Change::Nothing => {
                note.detail = Some("FHIR update: nothing changed".into());
                Ok(ctx.version(StatusCode::OK, &current, true))
            }
            Change::Status(to, reason) => {
                let mut tx = db.begin(ctx.org()).await?;
                let changed = tx
                    .set_appointment_status(&id, to, reason, Some(expected), &actor, now)
                    .await
                    .map_err(raced)?;
                tx.commit().await?;
                Ok(ctx.written(StatusCode::OK, &changed.appointment, &headers))
            }
            Change::Details(details) => {
                let mut tx = db.begin(ctx.org()).await?;
                let saved = tx
                    .update_appointment_details(&id, details, Some(expected), &actor)
                    .await
                    .map_err(raced)?;
                tx.commit().await?;
                Ok(ctx.written(StatusCode::OK, &saved, &headers))
            }
            Change::Move(to) => {
                let done = db
                    .reschedule(ctx.org(), &id, &to, Some(expected), &actor, now)
                    .await
                    .map_err(|e| match e {
                        carefront_store::BookError::Store(e) => raced(e),
                        other => booking_failed(other, &input.at),
                    })?;
                let mut response = if done.replayed {
                    note.action = Action::Read;
                    note.detail = Some(
                        "FHIR update: Idempotency-Key retry answered with the first result, \
                         nothing written"
                            .into(),
                    );
                    ctx.version(StatusCode::OK, &done.new, true)
                } else {
                    ctx.written(StatusCode::OK, &done.new, &headers)
                };
                let location = format!(
                    "{}/{KIND}/{}/_history/{}",
                    ctx.base, done.new.id, done.new.version
                );
                if let Ok(v) = header::HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::CONTENT_LOCATION, v);
                }
                Ok(response)
            }
        }
    }
    .await;
    finish(note, result)
}

// ---------------------------------------------------------------------------
// Search (ITI-118)

#[derive(Debug, Default)]
pub struct AppointmentSearch {
    query: AppointmentQuery,
    nothing: bool,
    include_patient: bool,
    include_practitioner: bool,
    include_location: bool,
}

fn same(slot: &mut Option<String>, value: &str, nothing: &mut bool) {
    match slot {
        Some(old) if old != value => *nothing = true,
        _ => *slot = Some(value.to_string()),
    }
}

fn instant_of(us: i64) -> Result<Timestamp, String> {
    Timestamp::from_microsecond(us).map_err(|e| e.to_string())
}

pub const SEARCH: &[SearchParam<AppointmentSearch>] = &[
    SearchParam {
        name: "patient",
        kind: "reference",
        doc: "Patient/id or the bare id.",
        apply: |s, v| {
            let id = reference(v, "Patient")?;
            same(&mut s.query.patient_id, id, &mut s.nothing);
            Ok(())
        },
    },
    SearchParam {
        name: "practitioner",
        kind: "reference",
        doc: "Practitioner/id or the bare id.",
        apply: |s, v| {
            let id = reference(v, "Practitioner")?;
            same(&mut s.query.practitioner_id, id, &mut s.nothing);
            Ok(())
        },
    },
    SearchParam {
        name: "location",
        kind: "reference",
        doc: "Location/id or the bare id.",
        apply: |s, v| {
            let id = reference(v, "Location")?;
            same(&mut s.query.location_id, id, &mut s.nothing);
            Ok(())
        },
    },
    SearchParam {
        name: "date",
        kind: "date",
        doc: "When the appointment starts; prefixes eq, ge, gt, le, lt (date=ge2026-03-09&date=lt2026-03-16).",
        apply: |s, v| {
            let (from, until) = date_bounds(v)?;
            if let Some(f) = from.map(instant_of).transpose()? {
                s.query.from = Some(s.query.from.map_or(f, |x| x.max(f)));
            }
            if let Some(u) = until.map(instant_of).transpose()? {
                s.query.until = Some(s.query.until.map_or(u, |x| x.min(u)));
            }
            Ok(())
        },
    },
    SearchParam {
        name: "status",
        kind: "token",
        doc: "An appointment status (booked, cancelled, noshow, arrived, ...).",
        apply: |s, v| {
            match AppointmentStatus::from_code(v) {
                Some(status) if s.query.statuses.iter().all(|x| *x == status) => {
                    s.query.statuses = vec![status];
                }
                _ => s.nothing = true,
            }
            Ok(())
        },
    },
];

/// `_include`, listed in the CapabilityStatement as `searchInclude`.
const INCLUDE: &[SearchParam<AppointmentSearch>] = &[SearchParam {
    name: "_include",
    kind: "special",
    doc: "Appointment:patient, Appointment:practitioner or Appointment:location (repeat for more).",
    apply: |s, v| {
        match v {
            "Appointment:patient" | "Appointment:actor:Patient" => s.include_patient = true,
            "Appointment:practitioner" | "Appointment:actor:Practitioner" => {
                s.include_practitioner = true;
            }
            "Appointment:location" | "Appointment:actor:Location" => s.include_location = true,
            _ => {
                return Err(
                    "supported: Appointment:patient, Appointment:practitioner, Appointment:location"
                        .into(),
                );
            }
        }
        Ok(())
    },
}];

fn included(full_url: String, resource: Value) -> Value {
    json!({ "fullUrl": full_url, "resource": resource, "search": { "mode": "include" } })
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::Schedule)?;
        let mut s = AppointmentSearch::default();
        let query = search::parse(q.as_deref(), &[SEARCH, INCLUDE], &mut s)?;
        let db = &ctx.state.db;
        let org = ctx.org();
        let (rows, total) = if s.nothing {
            (Vec::new(), 0)
        } else {
            db.appointments(org, &s.query, query.page).await?
        };
        let mut entries: Vec<Value> = rows
            .iter()
            .map(|v| match_entry(format!("{}/{KIND}/{}", ctx.base, v.id), resource_json(v)))
            .collect();
        let distinct = |f: fn(&Appointment) -> &String| -> BTreeSet<String> {
            rows.iter()
                .map(|v| f(&v.value.appointment).clone())
                .collect()
        };
        let mut patients_shown = Vec::new();
        if s.include_patient {
            for id in distinct(|a| &a.patient_id) {
                if let Some(p) = live::<Patient>(&ctx, &id).await? {
                    entries.push(included(
                        format!("{}/Patient/{id}", ctx.base),
                        resource_json(&p),
                    ));
                    patients_shown.push(id);
                }
            }
        }
        if s.include_practitioner {
            for id in distinct(|a| &a.practitioner_id) {
                if let Some(p) = live::<Practitioner>(&ctx, &id).await? {
                    entries.push(included(
                        format!("{}/Practitioner/{id}", ctx.base),
                        resource_json(&p),
                    ));
                }
            }
        }
        if s.include_location {
            for id in distinct(|a| &a.location_id) {
                if let Some(l) = live::<Location>(&ctx, &id).await? {
                    entries.push(included(
                        format!("{}/Location/{id}", ctx.base),
                        resource_json(&l),
                    ));
                }
            }
        }
        let url = format!("{}/{KIND}", ctx.base);
        let mut response = json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        );
        for v in &rows {
            let shown = crate::fhir::note(Action::Search, KIND, Some(&v.id), "search result");
            crate::audit::note(
                &mut response,
                shown.patient(&v.value.appointment.patient_id),
            );
        }
        for id in &patients_shown {
            let shown = crate::fhir::note(
                Action::Search,
                "Patient",
                Some(id),
                "_include of an Appointment search",
            );
            crate::audit::note(&mut response, shown.patient(id));
        }
        Ok(response)
    }
    .await;
    finish(note, result)
}

/// A live record, or `None` when it is unknown or deleted.
async fn live<R: FhirResource>(ctx: &Ctx, id: &str) -> Result<Option<Versioned<R>>, FhirError> {
    match ctx.state.db.get::<R>(ctx.org(), id).await {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound | StoreError::Gone) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A Bundle (`searchset`) holding one Appointment, as `$hold` and `$book`
/// answer (IHE ITI Scheduling Bundle).
pub fn single(base: &str, op: &str, resource: Value) -> Value {
    several(base, op, vec![resource])
}

/// A Bundle (`searchset`) of Appointments, as `$book` of a series answers.
pub fn several(base: &str, op: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            match_entry(format!("{base}/{KIND}/{id}"), r)
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": format!("{base}/{KIND}/${op}") }],
        "entry": entries,
    })
}

/// Marks a response as audited by its write's transaction.
pub fn written(response: Response) -> Response {
    audited(response)
}
