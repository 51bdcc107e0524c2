//! Location: the clinic's sites, with their IANA time zone in an
//! extension, and their rooms.
//!
//! Sites are directory records served with every interaction. Rooms are
//! served read-only (read and search): they are set up with the clinic's
//! schedule settings and change state on the rooms board. A room is a
//! Location with `physicalType` `ro`, `partOf` its site and
//! `operationalStatus` from the board (see [`operational_status`]). Both
//! kinds share one id space (the store's ids are UUIDs), so each
//! interaction finds its kind by the id. Searches list sites, or rooms when
//! they name `partof` or `operational-status`, which only rooms have:
//! clients that knew Locations as sites see the same lists as before.

use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::json::{
    ADDRESS_ELEMENTS, Issues, Obj, address_expression, address_from_fhir, address_to_fhir, instant,
    telecom_expression, telecom_from_fhir, telecom_to_fhir,
};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{self, FhirResource, interactions, resource_json};
use crate::fhir::search::{self, SearchParam, date_bounds, reference, token};
use crate::fhir::{Ctx, capability, finish, json_response, note};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Location, PractitionerRole, Room, Versioned};
use carefront_domain::visit::{RoomState, RoomStatus};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, Page, Record, StoreError};
use serde_json::{Value, json};

const KIND: &str = "Location";

/// The location's IANA time zone (`valueCode`, e.g. `America/Chicago`),
/// required on every Location: every local time there is read in it.
pub const TIMEZONE_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/location-timezone";

impl FhirResource for Location {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const ELEMENTS: &'static [&'static str] =
        &["extension", "status", "name", "telecom", "address"];
    // Searched through this module's [`SEARCH`], which covers rooms too.
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[];
    const DOC: &'static str = DOC;

    fn to_fhir(&self) -> Value {
        json!({
            "extension": [{ "url": TIMEZONE_EXTENSION, "valueCode": self.timezone }],
            "status": if self.active { "active" } else { "inactive" },
            "name": self.name,
            "telecom": telecom_to_fhir(&self.phone, &None),
            "address": address_to_fhir(&self.address),
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let mut timezone = String::new();
        for ext in r.objects("extension", &["url", "valueCode"], issues) {
            if ext.string("url", issues).as_deref() == Some(TIMEZONE_EXTENSION) {
                timezone = ext.string("valueCode", issues).unwrap_or_default();
            } else {
                let path = ext.child("url");
                issues.push(Issue::at(
                    "not-supported",
                    &path,
                    format!("{path}: the only extension supported is {TIMEZONE_EXTENSION}"),
                ));
            }
        }
        let active = match r.string("status", issues).as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(other) => {
                let path = r.child("status");
                issues.push(Issue::at(
                    "value",
                    &path,
                    format!("{path} '{other}' is not supported (active | inactive)"),
                ));
                true
            }
        };
        Location {
            name: r.string("name", issues).unwrap_or_default(),
            timezone,
            address: r
                .object("address", ADDRESS_ELEMENTS, issues)
                .map(|a| address_from_fhir(&a, issues))
                .unwrap_or_default(),
            phone: telecom_from_fhir(r, issues, &["phone"]).phone,
            active,
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field.strip_prefix("address.") {
            Some(f) => address_expression("Location.address", f),
            None => match field {
                "timezone" => format!("Location.extension('{TIMEZONE_EXTENSION}')"),
                "phone" => telecom_expression("Location", "phone"),
                _ => format!("Location.{field}"),
            },
        }
    }

    async fn check_delete(db: &Db, org_id: &str, id: &str) -> Result<(), FhirError> {
        let users = [
            (
                PractitionerRole::KIND,
                in_use::<PractitionerRole>(db, org_id, id).await?,
            ),
            (Room::KIND, in_use::<Room>(db, org_id, id).await?),
        ];
        let used: Vec<String> = users
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        if used.is_empty() {
            return Ok(());
        }
        Err(FhirError::Conflict(Issue::new(
            "conflict",
            format!("Location/{id} is still used by {}.", used.join(" and ")),
        )))
    }
}

/// How many live records of `R` sit at location `id`.
async fn in_use<R: Record>(db: &Db, org_id: &str, id: &str) -> Result<i64, FhirError> {
    let at = [Filter::Eq("location_id", id.into())];
    let none = Page {
        offset: 0,
        count: 0,
    };
    Ok(db.search::<R>(org_id, &at, none).await?.1)
}

/// `Location.physicalType` codes.
pub const PHYSICAL_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/location-physical-type";
/// HL7 v2 table 0116 (bed status), the codes of `Location.operationalStatus`.
const BED_STATUS_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0116";

const DOC: &str = "A clinic site or one of its rooms. A site's IANA time zone is required, in \
    the extension http://carefront.example/fhir/StructureDefinition/location-timezone \
    (valueCode, e.g. America/Chicago); a site keeps name, status (active | inactive), one \
    phone and a US address, and cannot be deleted while practitioner roles or rooms use it \
    (409). Rooms are read-only here (set up with the schedule settings, 405 on writes): \
    physicalType ro (http://terminology.hl7.org/CodeSystem/location-physical-type), partOf \
    the site, name, type[0].text the kind of room, status active (suspended while out of \
    service) and operationalStatus from the rooms board \
    (http://terminology.hl7.org/CodeSystem/v2-0116: U ready, O occupied, H waiting to be \
    cleaned, C out of service); meta.lastUpdated is the later of the room's set-up and its \
    last change of state. Searches list sites, or rooms when they name partof or \
    operational-status (which only rooms have).";

/// The v2-0116 bed status of a room's state: ready is unoccupied, a room
/// waiting to be cleaned is Housekeeping (not Contaminated or Isolated,
/// which speak of infection control the board does not record), out of
/// service is Closed.
fn operational_status(status: &RoomStatus) -> (&'static str, &'static str) {
    match status {
        RoomStatus::Ready => ("U", "Unoccupied"),
        RoomStatus::Occupied { .. } => ("O", "Occupied"),
        RoomStatus::NeedsCleaning => ("H", "Housekeeping"),
        RoomStatus::OutOfService { .. } => ("C", "Closed"),
    }
}

/// When a room's Location last changed: its set-up or its state.
fn room_updated_us(room: &Versioned<Room>, state: &RoomState) -> i64 {
    room.updated_at_us.max(state.since.as_microsecond())
}

/// A room as a Location. No `versionId`: the state changes without a new
/// version of the room.
fn room_json(room: &Versioned<Room>, state: &RoomState) -> Value {
    let (code, display) = operational_status(&state.status);
    let out_of_service = matches!(state.status, RoomStatus::OutOfService { .. });
    json!({
        "resourceType": KIND,
        "id": room.id,
        "meta": { "lastUpdated": instant(room_updated_us(room, state)) },
        // R4: suspended is "temporarily closed".
        "status": if out_of_service { "suspended" } else { "active" },
        "operationalStatus": { "system": BED_STATUS_SYSTEM, "code": code, "display": display },
        "name": room.value.name,
        "mode": "instance",
        "type": [{ "text": room.value.kind.label() }],
        "physicalType": { "coding": [{
            "system": PHYSICAL_TYPE_SYSTEM,
            "code": "ro",
            "display": "Room",
        }] },
        "partOf": { "reference": format!("{KIND}/{}", room.value.location_id) },
    })
}

/// One search criterion. Sites and rooms are searched differently (SQL
/// filters, and in memory over a few rooms with their board state), so the
/// criteria are kept until both are known.
enum Criterion {
    Name(String),
    State(String),
    Id(String),
    /// `[from, until)` in microseconds.
    Updated(Option<i64>, Option<i64>),
    PartOf(String),
    /// A v2-0116 code; `None` for a code of another system.
    Operational(Option<String>),
}

const SEARCH: &[SearchParam<Vec<Criterion>>] = &[
    SearchParam {
        name: "name",
        kind: "string",
        doc: "Starts with, ignoring case.",
        apply: |c, v| {
            c.push(Criterion::Name(v.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "address-state",
        kind: "string",
        doc: "Two-letter US state code (sites; rooms have no address of their own).",
        apply: |c, v| {
            c.push(Criterion::State(v.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "partof",
        kind: "reference",
        doc: "The rooms of a site: Location/id or the bare id.",
        apply: |c, v| {
            c.push(Criterion::PartOf(reference(v, KIND)?.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "operational-status",
        kind: "token",
        doc: "Rooms by bed status (http://terminology.hl7.org/CodeSystem/v2-0116): U ready, \
            O occupied, H waiting to be cleaned, C out of service.",
        apply: |c, v| {
            let code = token(v, BED_STATUS_SYSTEM).map(str::to_string);
            c.push(Criterion::Operational(code));
            Ok(())
        },
    },
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id.",
        apply: |c, v| {
            c.push(Criterion::Id(v.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "_lastUpdated",
        kind: "date",
        doc: "When the resource last changed; prefixes eq, ge, gt, le, lt.",
        apply: |c, v| {
            let (from, until) = date_bounds(v)?;
            c.push(Criterion::Updated(from, until));
            Ok(())
        },
    },
];

/// Rooms are searched when the criteria name what only rooms have.
fn wants_rooms(criteria: &[Criterion]) -> bool {
    criteria
        .iter()
        .any(|c| matches!(c, Criterion::PartOf(_) | Criterion::Operational(_)))
}

fn site_filters(criteria: &[Criterion]) -> Vec<Filter> {
    let mut filters = Vec::new();
    for c in criteria {
        match c {
            Criterion::Name(p) => filters.push(Filter::Prefix(&["name"], p.clone())),
            Criterion::State(p) => filters.push(Filter::Prefix(&["state"], p.clone())),
            Criterion::Id(id) => filters.push(Filter::Id(id.clone())),
            Criterion::Updated(from, until) => {
                filters.extend(from.map(Filter::UpdatedAtLeast));
                filters.extend(until.map(Filter::UpdatedBefore));
            }
            // A site is part of nothing and has no operational status.
            Criterion::PartOf(_) | Criterion::Operational(_) => filters.push(search::nothing()),
        }
    }
    filters
}

fn room_matches(c: &Criterion, room: &Versioned<Room>, state: &RoomState) -> bool {
    match c {
        Criterion::Name(p) => room
            .value
            .name
            .to_lowercase()
            .starts_with(&p.to_lowercase()),
        Criterion::State(_) => false,
        Criterion::Id(id) => room.id == *id,
        Criterion::Updated(from, until) => {
            let t = room_updated_us(room, state);
            from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u)
        }
        Criterion::PartOf(site) => room.value.location_id == *site,
        Criterion::Operational(code) => {
            code.as_deref() == Some(operational_status(&state.status).0)
        }
    }
}

pub fn capability_entry() -> Value {
    capability::entry(KIND, DOC, &interactions::<Location>(), true, &[SEARCH])
}

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            &format!("/{KIND}"),
            get(search_type).post(resource::create::<Location>),
        )
        .route(
            &format!("/{KIND}/{{id}}"),
            get(read).put(update).delete(delete),
        )
        .route(&format!("/{KIND}/{{id}}/_history"), get(history))
        .route(&format!("/{KIND}/{{id}}/_history/{{vid}}"), get(vread))
}

/// The live room `id` names, with its state; `None` when it names none.
async fn room(ctx: &Ctx, id: &str) -> Result<Option<(Versioned<Room>, RoomState)>, FhirError> {
    let found = ctx
        .state
        .db
        .rooms_with_states(ctx.org(), None, Some(id))
        .await?;
    Ok(found.into_iter().next())
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), "read");
    let found = async {
        ctx.require(Location::READ)?;
        room(&ctx, &id).await
    }
    .await;
    match found {
        Ok(None) => resource::read::<Location>(ctx, Path(id)).await,
        Ok(Some((r, state))) => finish(
            note,
            Ok(json_response(StatusCode::OK, room_json(&r, &state))),
        ),
        Err(e) => finish(note, Err(e)),
    }
}

/// The answer to an interaction rooms do not offer, when `id` is a live
/// room and the caller's role may use `area` (otherwise the site's handler
/// answers, refusing the role or not finding the id).
async fn refuse_room(
    ctx: &Ctx,
    id: &str,
    area: Area,
    action: Action,
    what: &str,
) -> Option<Response> {
    if !ctx.principal.role.may(area) {
        return None;
    }
    let refusal = match ctx.state.db.get::<Room>(ctx.org(), id).await {
        Err(StoreError::NotFound | StoreError::Gone) => return None,
        Ok(_) => FhirError::MethodNotAllowed(format!(
            "{KIND}/{id} is a room: rooms are only read and searched here, without versions; \
             they are set up with the schedule settings and change state on the rooms board."
        )),
        Err(e) => e.into(),
    };
    Some(finish(note(action, KIND, Some(id), what), Err(refusal)))
}

async fn update(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match refuse_room(&ctx, &id, Location::WRITE, Action::Update, "update").await {
        Some(refused) => refused,
        None => resource::update::<Location>(ctx, Path(id), headers, body).await,
    }
}

async fn delete(ctx: Ctx, Path(id): Path<String>) -> Response {
    match refuse_room(&ctx, &id, Location::WRITE, Action::Delete, "delete").await {
        Some(refused) => refused,
        None => resource::delete::<Location>(ctx, Path(id)).await,
    }
}

async fn history(ctx: Ctx, Path(id): Path<String>, query: RawQuery) -> Response {
    match refuse_room(&ctx, &id, Location::READ, Action::Read, "history").await {
        Some(refused) => refused,
        None => resource::history::<Location>(ctx, Path(id), query).await,
    }
}

async fn vread(ctx: Ctx, Path((id, vid)): Path<(String, String)>) -> Response {
    let what = format!("vread {vid}");
    match refuse_room(&ctx, &id, Location::READ, Action::Read, &what).await {
        Some(refused) => refused,
        None => resource::vread::<Location>(ctx, Path((id, vid))).await,
    }
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Location::READ)?;
        let mut criteria = Vec::new();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut criteria)?;
        let db = &ctx.state.db;
        let page = query.page;
        let entry =
            |id: &str, resource: Value| match_entry(format!("{}/{KIND}/{id}", ctx.base), resource);
        let (entries, total) = if wants_rooms(&criteria) {
            let site = criteria.iter().find_map(|c| match c {
                Criterion::PartOf(site) => Some(site.as_str()),
                _ => None,
            });
            let rooms = db.rooms_with_states(ctx.org(), site, None).await?;
            let matching: Vec<_> = rooms
                .iter()
                .filter(|(r, s)| criteria.iter().all(|c| room_matches(c, r, s)))
                .collect();
            let entries = matching
                .iter()
                .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(page.count).unwrap_or(0))
                .map(|(r, s)| entry(&r.id, room_json(r, s)))
                .collect();
            (entries, i64::try_from(matching.len()).unwrap_or(i64::MAX))
        } else {
            let filters = site_filters(&criteria);
            let (sites, total) = db.search::<Location>(ctx.org(), &filters, page).await?;
            let entries = sites
                .iter()
                .map(|v| entry(&v.id, resource_json(v)))
                .collect();
            (entries, total)
        };
        let url = format!("{}/{KIND}", ctx.base);
        Ok(json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        ))
    };
    finish(note, result.await)
}
