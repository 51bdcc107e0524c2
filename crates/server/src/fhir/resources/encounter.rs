//! Encounter (FHIR R4): the visit of each appointment, read-only (read and
//! search; visits move on the board). The id is the visit's, which is its
//! appointment's. Every appointment the board shows has a visit, so a booked
//! appointment is a planned Encounter and one cancelled before the day a
//! cancelled one; an appointment changed on the schedule or through FHIR is
//! reflected at once, as the board shows it.
//!
//! # Mapping
//!
//! | visit | FHIR |
//! | --- | --- |
//! | status | `status` ([`encounter_status`]) and extension [`VISIT_STATUS_EXTENSION`] (valueCoding in [`VISIT_STATUS_SYSTEM`]) |
//! | history | `statusHistory[]`: one entry per step, its period running to the next step, with the same extension |
//! | appointment type | `class` AMB (VR for a telehealth type), `serviceType` ([`APPOINTMENT_TYPE_SYSTEM`](super::scheduling::APPOINTMENT_TYPE_SYSTEM)) |
//! | patient, practitioner | `subject`, `participant[0].individual` (type PPRF) |
//! | appointment | `appointment[0]` |
//! | arrival until the patient left | `period` |
//! | the site | `location[0]`: planned, active while the patient is there, completed after |
//! | each room the patient was in | `location[n]`: physicalType ro, `period`, active while there, completed after |
//! | organization | `serviceProvider` |

use super::appointment::appointment_types;
use super::location::PHYSICAL_TYPE_SYSTEM;
use super::scheduling::type_coding;
use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::json::instant;
use crate::fhir::outcome::FhirError;
use crate::fhir::search::{self, SearchParam, narrow_window, reference, token};
use crate::fhir::{Ctx, capability, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Room, Versioned};
use carefront_domain::scheduling::{AppointmentType, Modality};
use carefront_domain::visit::{Visit, VisitEvent, VisitStatus};
use carefront_store::{AppointmentQuery, AppointmentRecord, Page, StoreError};
use jiff::Timestamp;
use serde_json::{Value, json};

const KIND: &str = "Encounter";
/// Reading visits is looking at the board: the roles that see today's.
const READ: Area = Area::Today;

/// On an Encounter and each of its `statusHistory` entries: the visit's own
/// status, which R4's encounter statuses only approximate (valueCoding in
/// [`VISIT_STATUS_SYSTEM`]).
pub const VISIT_STATUS_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/encounter-visit-status";
/// The visit statuses: scheduled, arrived, checked-in, roomed,
/// with-provider, checkout, completed, no-show, left-without-being-seen,
/// cancelled.
pub const VISIT_STATUS_SYSTEM: &str = "http://carefront.example/fhir/CodeSystem/visit-status";
const ENCOUNTER_STATUS_SYSTEM: &str = "http://hl7.org/fhir/encounter-status";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const PARTICIPATION_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

const DOC: &str = "A visit, read-only: one per appointment on the board (a booked appointment \
    is a planned Encounter), id = the appointment's id; roles front_desk, lead, clinician and \
    billing (those who see today's board). status: planned (scheduled), arrived (arrived, \
    checked in), in-progress (roomed, with provider, checkout), finished (completed, and left \
    without being seen: the patient had come), cancelled (cancelled, no-show). The visit's own \
    status is the extension \
    http://carefront.example/fhir/StructureDefinition/encounter-visit-status (valueCoding, \
    system http://carefront.example/fhir/CodeSystem/visit-status: scheduled, arrived, \
    checked-in, roomed, with-provider, checkout, completed, no-show, \
    left-without-being-seen, cancelled), on the Encounter and on each statusHistory entry \
    (one per step, its period running to the next step). class AMB (VR for a telehealth \
    appointment type); serviceType = the appointment type \
    (http://carefront.example/fhir/CodeSystem/appointment-type); subject; participant = the \
    practitioner (PPRF); appointment; period from arrival until the patient left; location[0] \
    = the site (planned, active, completed), then each room the patient was in (physicalType \
    ro, period, active or completed). Why an appointment was cancelled is its \
    Appointment.cancelationReason. Every read and search result is audited with the \
    patient's id.";

/// The Encounter status of a visit status, by R4's meanings:
///
/// * scheduled → `planned`: "has not yet started".
/// * arrived, checked in → `arrived`: "present, not currently meeting with a
///   practitioner".
/// * roomed, with provider, checkout → `in-progress`: "has begun and the
///   patient is present".
/// * completed → `finished`: "has ended".
/// * left without being seen → `finished`: the patient had arrived, so the
///   Encounter had started (only `planned` comes before that), and
///   `cancelled` is for one that "ended before it has begun".
/// * cancelled, no-show → `cancelled`: it ended before it began.
///
/// The visit's own status travels in [`VISIT_STATUS_EXTENSION`].
pub fn encounter_status(status: VisitStatus) -> &'static str {
    match status {
        VisitStatus::Scheduled => "planned",
        VisitStatus::Arrived | VisitStatus::CheckedIn => "arrived",
        VisitStatus::Roomed | VisitStatus::WithProvider | VisitStatus::Checkout => "in-progress",
        VisitStatus::Completed | VisitStatus::LeftWithoutBeingSeen => "finished",
        VisitStatus::Cancelled | VisitStatus::NoShow => "cancelled",
    }
}

/// The patient is at the clinic.
fn present(status: VisitStatus) -> bool {
    matches!(
        status,
        VisitStatus::Arrived
            | VisitStatus::CheckedIn
            | VisitStatus::Roomed
            | VisitStatus::WithProvider
            | VisitStatus::Checkout
    )
}

/// One stretch of a visit: a status from `start` until the next stretch,
/// with the room entered when it is a rooming.
struct Stretch<'a> {
    status: VisitStatus,
    start: Timestamp,
    room: Option<&'a str>,
}

/// The visit's stretches from its history, ending with its status as the
/// board shows it: that may be ahead of the history (a visit nobody moved
/// through the flow is its appointment's status; one whose appointment was
/// changed elsewhere follows it before any write has caught up).
fn stretches<'a>(visit: &Visit, events: &'a [VisitEvent]) -> Vec<Stretch<'a>> {
    let mut list: Vec<Stretch> = events
        .iter()
        .map(|e| Stretch {
            status: e.to,
            start: e.at,
            room: e.room_id.as_deref(),
        })
        .collect();
    if list.last().map(|s| s.status) != Some(visit.status) {
        list.push(Stretch {
            status: visit.status,
            start: visit.since,
            room: None,
        });
    }
    list
}

/// When the patient arrived and when they left, if they did.
fn presence(list: &[Stretch]) -> (Option<Timestamp>, Option<Timestamp>) {
    let Some(first) = list.iter().position(|s| present(s.status)) else {
        return (None, None);
    };
    let left = list[first..]
        .iter()
        .find(|s| !present(s.status))
        .map(|s| s.start);
    (Some(list[first].start), left)
}

/// The rooms the patient was in, in order: (room, from, until; `None` while
/// still there). A rooming moves the patient; the provider sees them in the
/// same room; any other step leaves it.
fn room_stays<'a>(list: &[Stretch<'a>]) -> Vec<(&'a str, Timestamp, Option<Timestamp>)> {
    let mut stays: Vec<(&str, Timestamp, Option<Timestamp>)> = Vec::new();
    for s in list {
        let entered = s.room.filter(|_| s.status == VisitStatus::Roomed);
        if (entered.is_some() || !s.status.occupies_room())
            && let Some(last) = stays.last_mut()
        {
            last.2 = last.2.or(Some(s.start));
        }
        if let Some(room) = entered {
            stays.push((room, s.start, None));
        }
    }
    stays
}

fn visit_status_extension(status: VisitStatus) -> Value {
    json!([{
        "url": VISIT_STATUS_EXTENSION,
        "valueCoding": {
            "system": VISIT_STATUS_SYSTEM,
            "code": status.code(),
            "display": status.label(),
        },
    }])
}

fn period(start: Option<Timestamp>, end: Option<Timestamp>) -> Value {
    json!({
        "start": start.map(|t| t.to_string()),
        "end": end.map(|t| t.to_string()),
    })
}

/// A visit as an Encounter; `kind` is its appointment type, if still known.
fn encounter_json(
    org_id: &str,
    record: &Versioned<AppointmentRecord>,
    visit: &Visit,
    events: &[VisitEvent],
    kind: Option<&AppointmentType>,
) -> Value {
    let a = &record.value.appointment;
    let list = stretches(visit, events);
    let history: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "extension": visit_status_extension(s.status),
                "status": encounter_status(s.status),
                "period": period(Some(s.start), list.get(i + 1).map(|next| next.start)),
            })
        })
        .collect();
    let (arrived, left) = presence(&list);
    let site_status = match (visit.status, arrived, left) {
        (VisitStatus::Scheduled, _, _) => Some("planned"),
        (_, Some(_), None) => Some("active"),
        (_, Some(_), Some(_)) => Some("completed"),
        // Over before the patient came: the site was never used.
        (_, None, _) => None,
    };
    let mut locations = vec![json!({
        "location": { "reference": format!("Location/{}", a.location_id) },
        "status": site_status,
        "period": period(arrived, left),
    })];
    locations.extend(room_stays(&list).into_iter().map(|(room, from, until)| {
        json!({
            "location": { "reference": format!("Location/{room}") },
            "status": if until.is_some() { "completed" } else { "active" },
            "physicalType": { "coding": [{
                "system": PHYSICAL_TYPE_SYSTEM,
                "code": "ro",
                "display": "Room",
            }] },
            "period": period(Some(from), until),
        })
    }));
    let (class, class_name) = match kind.map(|k| k.modality) {
        Some(Modality::Telehealth) => ("VR", "virtual"),
        _ => ("AMB", "ambulatory"),
    };
    let updated = [
        Some(record.updated_at_us),
        Some(visit.since.as_microsecond()),
        events.last().map(|e| e.at.as_microsecond()),
    ]
    .into_iter()
    .flatten()
    .max();
    json!({
        "resourceType": KIND,
        "id": a.id,
        // No versionId: the Encounter changes with its appointment and its
        // visit, each versioned on its own.
        "meta": { "lastUpdated": updated.map(instant) },
        "extension": visit_status_extension(visit.status),
        "status": encounter_status(visit.status),
        "statusHistory": history,
        "class": { "system": ACT_CODE_SYSTEM, "code": class, "display": class_name },
        "serviceType": type_coding(&a.appointment_type_id, kind.map(|k| k.name.as_str())),
        "subject": { "reference": format!("Patient/{}", a.patient_id) },
        "participant": [{
            "type": [{ "coding": [{
                "system": PARTICIPATION_TYPE_SYSTEM,
                "code": "PPRF",
                "display": "primary performer",
            }] }],
            "individual": { "reference": format!("Practitioner/{}", a.practitioner_id) },
        }],
        "appointment": [{ "reference": format!("Appointment/{}", a.id) }],
        "period": period(arrived, left),
        "location": locations,
        "serviceProvider": { "reference": format!("Organization/{org_id}") },
    })
}

// ---------------------------------------------------------------------------
// Search

#[derive(Debug, Default)]
struct EncounterSearch {
    query: AppointmentQuery,
    appointment: Option<String>,
    /// Visit statuses wanted; `None`: any.
    statuses: Option<Vec<VisitStatus>>,
    /// A site or a room, told apart once the query is read.
    location: Option<String>,
    nothing: bool,
}

/// A repeated parameter naming another value matches nothing.
fn same(slot: &mut Option<String>, value: &str, nothing: &mut bool) {
    match slot {
        Some(old) if old != value => *nothing = true,
        _ => *slot = Some(value.to_string()),
    }
}

const SEARCH: &[SearchParam<EncounterSearch>] = &[
    SearchParam {
        name: "patient",
        kind: "reference",
        doc: "Patient/id or the bare id.",
        apply: |s, v| {
            same(
                &mut s.query.patient_id,
                reference(v, "Patient")?,
                &mut s.nothing,
            );
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
        doc: "The site of the visit, or a room the patient was in: Location/id or the bare id.",
        apply: |s, v| {
            same(&mut s.location, reference(v, "Location")?, &mut s.nothing);
            Ok(())
        },
    },
    SearchParam {
        name: "date",
        kind: "date",
        doc: "The visit's day: when its appointment starts (days are UTC); prefixes eq, ge, gt, \
            le, lt.",
        apply: |s, v| narrow_window(&mut s.query.from, &mut s.query.until, v),
    },
    SearchParam {
        name: "status",
        kind: "token",
        doc: "An Encounter status: planned, arrived, in-progress, finished or cancelled.",
        apply: |s, v| {
            let code = token(v, ENCOUNTER_STATUS_SYSTEM);
            let wanted = VisitStatus::ALL
                .into_iter()
                .filter(|x| Some(encounter_status(*x)) == code);
            let statuses: Vec<VisitStatus> = match s.statuses.take() {
                None => wanted.collect(),
                Some(before) => wanted.filter(|x| before.contains(x)).collect(),
            };
            s.nothing |= statuses.is_empty();
            s.statuses = Some(statuses);
            Ok(())
        },
    },
    SearchParam {
        name: "appointment",
        kind: "reference",
        doc: "Appointment/id or the bare id (the Encounter's id is the same).",
        apply: |s, v| {
            let id = reference(v, "Appointment")?;
            same(&mut s.appointment, id, &mut s.nothing);
            Ok(())
        },
    },
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id (the appointment's).",
        apply: |s, v| {
            same(&mut s.appointment, v, &mut s.nothing);
            Ok(())
        },
    },
];

pub fn capability_entry() -> Value {
    capability::entry(KIND, DOC, &["read", "search-type"], false, &[SEARCH])
}

/// Read and search only: other methods get the API's 405 OperationOutcome.
pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type))
        .route(&format!("/{KIND}/{{id}}"), get(read))
}

/// The type `id` names among `types`; none when it was deleted since.
fn type_of<'t>(types: &'t [AppointmentType], id: &str) -> Option<&'t AppointmentType> {
    types.iter().find(|t| t.id == id)
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let mut note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(READ)?;
        let one = Page {
            offset: 0,
            count: 1,
        };
        let db = &ctx.state.db;
        let (rows, _) = db
            .visits(
                ctx.org(),
                &AppointmentQuery::default(),
                Some(&id),
                &[],
                None,
                one,
            )
            .await?;
        let (record, visit, events) = rows
            .into_iter()
            .next()
            .ok_or_else(|| FhirError::NotFound(format!("{KIND}/{id} is not known.")))?;
        let a = &record.value.appointment;
        note.patient_id = Some(a.patient_id.clone());
        let types = appointment_types(&ctx).await?;
        let kind = type_of(&types, &a.appointment_type_id);
        let body = encounter_json(ctx.org(), &record, &visit, &events, kind);
        Ok(json_response(StatusCode::OK, body))
    }
    .await;
    finish(note, result)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(READ)?;
        let mut s = EncounterSearch::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut s)?;
        let db = &ctx.state.db;
        let org = ctx.org();
        let (rows, total) = if s.nothing {
            (Vec::new(), 0)
        } else {
            // A room narrows to its site's visits, then to those roomed there.
            let mut room = None;
            if let Some(id) = &s.location {
                s.query.location_id = match db.get::<Room>(org, id).await {
                    Ok(r) => {
                        room = Some(id.as_str());
                        Some(r.value.location_id)
                    }
                    Err(StoreError::NotFound | StoreError::Gone) => Some(id.clone()),
                    Err(e) => return Err(FhirError::from(e)),
                };
            }
            let statuses = s.statuses.as_deref().unwrap_or_default();
            let appointment = s.appointment.as_deref();
            db.visits(org, &s.query, appointment, statuses, room, query.page)
                .await?
        };
        let types = match rows.is_empty() {
            true => Vec::new(),
            false => appointment_types(&ctx).await?,
        };
        let entries = rows
            .iter()
            .map(|(record, visit, events)| {
                let kind = type_of(&types, &record.value.appointment.appointment_type_id);
                match_entry(
                    format!("{}/{KIND}/{}", ctx.base, record.id),
                    encounter_json(org, record, visit, events, kind),
                )
            })
            .collect();
        let url = format!("{}/{KIND}", ctx.base);
        let mut response = json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        );
        // Patient data: one note per visit shown, beside the search's own.
        for (record, _, _) in &rows {
            let shown = crate::fhir::note(Action::Search, KIND, Some(&record.id), "search result");
            let patient = &record.value.appointment.patient_id;
            crate::audit::note(&mut response, shown.patient(patient));
        }
        Ok(response)
    }
    .await;
    finish(note, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carefront_domain::visit::ChangedBy;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
    }

    fn step(to: VisitStatus, minute: i64, room: Option<&str>) -> VisitEvent {
        VisitEvent {
            from: VisitStatus::Scheduled,
            to,
            at: at(minute),
            by: ChangedBy::User {
                id: None,
                name: "t".into(),
            },
            room_id: room.map(str::to_string),
            followed_appointment: false,
        }
    }

    fn visit(status: VisitStatus, minute: i64, room: Option<&str>) -> Visit {
        Visit {
            appointment_id: "a".into(),
            status,
            since: at(minute),
            by: None,
            room_id: room.map(str::to_string),
        }
    }

    #[test]
    fn every_visit_status_has_an_encounter_status_with_its_meaning() {
        let codes: Vec<&str> = VisitStatus::ALL.into_iter().map(encounter_status).collect();
        for code in ["planned", "arrived", "in-progress", "finished", "cancelled"] {
            assert!(codes.contains(&code), "{code}");
        }
        assert_eq!(encounter_status(VisitStatus::NoShow), "cancelled");
        assert_eq!(
            encounter_status(VisitStatus::LeftWithoutBeingSeen),
            "finished"
        );
        // Before arrival the patient is never present; after leaving never.
        for s in VisitStatus::ALL {
            let status = encounter_status(s);
            assert_eq!(
                present(s),
                ["arrived", "in-progress"].contains(&status),
                "{s}"
            );
        }
    }

    #[test]
    fn rooms_and_presence_follow_the_steps() {
        use VisitStatus::*;
        let events = [
            step(Arrived, 0, None),
            step(CheckedIn, 5, None),
            step(Roomed, 10, Some("A")),
            step(Roomed, 15, Some("B")),
            step(WithProvider, 20, None),
            step(Completed, 40, None),
        ];
        let list = stretches(&visit(Completed, 40, None), &events);
        assert_eq!(list.len(), 6, "the history already ends with the status");
        assert_eq!(presence(&list), (Some(at(0)), Some(at(40))));
        assert_eq!(
            room_stays(&list),
            [("A", at(10), Some(at(15))), ("B", at(15), Some(at(40)))]
        );

        // Still with the provider: in room B, nobody has left.
        let list = stretches(&visit(WithProvider, 20, Some("B")), &events[..5]);
        assert_eq!(presence(&list), (Some(at(0)), None));
        assert_eq!(room_stays(&list)[1], ("B", at(15), None));

        // Never moved through the flow: its appointment's status, no rooms.
        let list = stretches(&visit(Scheduled, -60, None), &[]);
        assert_eq!(list.len(), 1);
        assert_eq!(presence(&list), (None, None));
        assert!(room_stays(&list).is_empty());

        // The appointment was cancelled elsewhere while the patient was
        // roomed: the board shows it cancelled, which ends the stay.
        let list = stretches(&visit(Cancelled, 30, None), &events[..3]);
        assert_eq!(presence(&list), (Some(at(0)), Some(at(30))));
        assert_eq!(room_stays(&list), [("A", at(10), Some(at(30)))]);
    }
}
