//! HealthcareService: the appointment types (visit types) the clinic
//! offers, read-only. The type's id is the service's id and the code of
//! `type` in [`APPOINTMENT_TYPE_SYSTEM`], which Slot, Schedule and
//! Appointment use as `serviceType`.
//!
//! # Mapping
//!
//! | domain | FHIR |
//! | --- | --- |
//! | `id`, `name`, `active` | `id` and `type[0].coding[0].code`, `name`, `active` |
//! | `specialties` | `specialty` (NUCC provider taxonomy) |
//! | `instructions` | `comment` |
//! | `duration_minutes` | extension [`DURATION_EXTENSION`] valueDuration (min) |
//! | `min_notice_minutes` | extension [`MIN_NOTICE_EXTENSION`] valueDuration (min) |
//! | `max_days_ahead` | extension [`MAX_DAYS_AHEAD_EXTENSION`] valueDuration (d) |
//! | `modality` | extension [`MODALITY_EXTENSION`] valueCode in-person / telehealth |
//! | `eligibility` | extension [`ELIGIBILITY_EXTENSION`] valueCode new / established / any |
//! | `resource_kind` | extension [`RESOURCE_KIND_EXTENSION`] valueCode (exam_room, ...) |
//! | `practitioner_ids` | extension [`PRACTITIONER_EXTENSION`] valueReference, one each |
//! | `color` | extension [`COLOR_EXTENSION`] valueString (#rrggbb) |
//! | `intake_form` | extension [`INTAKE_FORM_EXTENSION`] valueString |
//! | the organization | `providedBy` |

use super::scheduling::{every, specialty_coding, type_coding};
use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::json::instant;
use crate::fhir::outcome::FhirError;
use crate::fhir::resource::{about, etag};
use crate::fhir::search::{self, SearchParam, token};
use crate::fhir::{Ctx, capability, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::{NUCC_TAXONOMY_SYSTEM, Versioned};
use carefront_domain::scheduling::{AppointmentType, Modality, PatientEligibility};
use carefront_store::StoreError;
use serde_json::{Value, json};

const KIND: &str = "HealthcareService";
pub const DURATION_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-duration";
pub const MIN_NOTICE_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-min-notice";
pub const MAX_DAYS_AHEAD_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-max-days-ahead";
pub const MODALITY_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-modality";
pub const ELIGIBILITY_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-eligibility";
pub const RESOURCE_KIND_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-resource-kind";
pub const PRACTITIONER_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-practitioner";
pub const COLOR_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-color";
pub const INTAKE_FORM_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-intake-form";

const DOC: &str = "An appointment type (visit type) the clinic offers; read-only, for every \
    role except auditor. id = the type's id, also the code of type[0] in \
    http://carefront.example/fhir/CodeSystem/appointment-type, which Slot, Schedule and \
    Appointment use as serviceType and Appointment/$find as visit-type. name, active, \
    specialty (NUCC provider taxonomy: providers with one of them offer it), comment = the \
    instructions for patients, providedBy = the organization. Extensions \
    http://carefront.example/fhir/StructureDefinition/appointment-type-duration (valueDuration \
    in min: how long each visit lasts), -min-notice (valueDuration in min: slots sooner than \
    this are not offered), -max-days-ahead (valueDuration in d), -modality (valueCode \
    in-person | telehealth), -eligibility (valueCode new | established | any), -resource-kind \
    (valueCode: the room or equipment each visit needs: exam_room, procedure_room, \
    consult_room, ultrasound_room, ultrasound_machine, ecg_machine), -practitioner \
    (valueReference, one per provider offering it whatever their specialty), -color \
    (valueString) and -intake-form (valueString).";

fn minutes(url: &str, n: u32, unit: &str) -> Value {
    json!({
        "url": url,
        "valueDuration": { "value": n, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit },
    })
}

fn code<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

pub fn service_json(v: &Versioned<AppointmentType>, org_id: &str) -> Value {
    let t = &v.value;
    let modality = match t.modality {
        Modality::InPerson => "in-person",
        Modality::Telehealth => "telehealth",
    };
    let eligibility = match t.eligibility {
        PatientEligibility::New => "new",
        PatientEligibility::Established => "established",
        PatientEligibility::Any => "any",
    };
    let mut extensions = vec![
        minutes(DURATION_EXTENSION, t.duration_minutes, "min"),
        minutes(MIN_NOTICE_EXTENSION, t.min_notice_minutes, "min"),
        minutes(MAX_DAYS_AHEAD_EXTENSION, t.max_days_ahead, "d"),
        json!({ "url": MODALITY_EXTENSION, "valueCode": modality }),
        json!({ "url": ELIGIBILITY_EXTENSION, "valueCode": eligibility }),
    ];
    if let Some(kind) = &t.resource_kind {
        extensions.push(json!({ "url": RESOURCE_KIND_EXTENSION, "valueCode": code(kind) }));
    }
    extensions.extend(t.practitioner_ids.iter().map(|p| {
        json!({ "url": PRACTITIONER_EXTENSION, "valueReference": { "reference": format!("Practitioner/{p}") } })
    }));
    extensions.push(json!({ "url": COLOR_EXTENSION, "valueString": t.color }));
    if let Some(form) = &t.intake_form {
        extensions.push(json!({ "url": INTAKE_FORM_EXTENSION, "valueString": form }));
    }
    json!({
        "resourceType": KIND,
        "id": v.id,
        "meta": { "versionId": v.version.to_string(), "lastUpdated": instant(v.updated_at_us) },
        "extension": extensions,
        "active": t.active,
        "providedBy": { "reference": format!("Organization/{org_id}") },
        "type": [type_coding(&t.id, Some(&t.name))],
        "specialty": t.specialties.iter().map(|s| specialty_coding(s)).collect::<Vec<_>>(),
        "name": t.name,
        "comment": t.instructions,
        "appointmentRequired": true,
    })
}

/// The filters of a search, applied to the (few) types in memory.
#[derive(Debug, Default)]
pub struct ServiceSearch {
    name: Option<String>,
    active: Option<bool>,
    specialty: Option<String>,
    id: Option<String>,
    nothing: bool,
}

impl ServiceSearch {
    fn keeps(&self, v: &Versioned<AppointmentType>) -> bool {
        let t = &v.value;
        !self.nothing
            && self
                .name
                .as_ref()
                .is_none_or(|n| t.name.to_lowercase().starts_with(n))
            && self.active.is_none_or(|a| a == t.active)
            && self
                .specialty
                .as_ref()
                .is_none_or(|s| t.specialties.contains(s))
            && self.id.as_ref().is_none_or(|id| *id == v.id)
    }
}

pub const SEARCH: &[SearchParam<ServiceSearch>] = &[
    SearchParam {
        name: "name",
        kind: "string",
        doc: "The type's name starts with this, ignoring case.",
        apply: |s, v| {
            s.name = Some(v.trim().to_lowercase());
            Ok(())
        },
    },
    SearchParam {
        name: "active",
        kind: "token",
        doc: "true or false (any other value matches nothing).",
        apply: |s, v| {
            match v {
                "true" => s.active = Some(true),
                "false" => s.active = Some(false),
                _ => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "specialty",
        kind: "token",
        doc: "NUCC taxonomy: http://nucc.org/provider-taxonomy|CODE or the bare code.",
        apply: |s, v| {
            match token(v, NUCC_TAXONOMY_SYSTEM) {
                Some(code) => s.specialty = Some(code.to_string()),
                None => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id (the appointment type's id).",
        apply: |s, v| {
            s.id = Some(v.to_string());
            Ok(())
        },
    },
];

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type))
        .route(&format!("/{KIND}/{{id}}"), get(read))
        .route(&format!("/{KIND}/{{id}}/_history/{{vid}}"), get(vread))
}

pub fn capability_entry() -> Value {
    capability::entry(
        KIND,
        DOC,
        &["read", "vread", "search-type"],
        true,
        &[SEARCH],
    )
}

fn respond(v: &Versioned<AppointmentType>, org_id: &str) -> Response {
    let mut response = json_response(StatusCode::OK, service_json(v, org_id));
    if let Ok(value) = header::HeaderValue::from_str(&etag(v.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let v = ctx
            .state
            .db
            .get::<AppointmentType>(ctx.org(), &id)
            .await
            .map_err(about(KIND, &id))?;
        Ok(respond(&v, ctx.org()))
    }
    .await;
    finish(note, result)
}

async fn vread(ctx: Ctx, Path((id, vid)): Path<(String, String)>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), &format!("vread {vid}"));
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let versions = ctx
            .state
            .db
            .history::<AppointmentType>(ctx.org(), &id)
            .await?;
        let name = format!("{KIND}/{id}");
        if versions.is_empty() {
            return Err(about(KIND, &id)(StoreError::NotFound));
        }
        let h = versions
            .iter()
            .find(|h| h.version.to_string() == vid)
            .ok_or_else(|| FhirError::NotFound(format!("{name} has no version {vid}.")))?;
        if h.deleted {
            return Err(FhirError::Gone(format!(
                "{name} was deleted in version {vid}."
            )));
        }
        let v = Versioned {
            id: id.clone(),
            version: h.version,
            updated_at_us: h.changed_at_us,
            value: h.value.clone(),
        };
        Ok(respond(&v, ctx.org()))
    }
    .await;
    finish(note, result)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let mut filter = ServiceSearch::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut filter)?;
        let all = every::<AppointmentType>(&ctx.state.db, ctx.org()).await?;
        let matches: Vec<&Versioned<AppointmentType>> =
            all.iter().filter(|v| filter.keeps(v)).collect();
        let entries = matches
            .iter()
            .skip(usize::try_from(query.page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.page.count).unwrap_or(0))
            .map(|v| {
                match_entry(
                    format!("{}/{KIND}/{}", ctx.base, v.id),
                    service_json(v, ctx.org()),
                )
            })
            .collect();
        let total = i64::try_from(matches.len()).unwrap_or(i64::MAX);
        let url = format!("{}/{KIND}", ctx.base);
        Ok(json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        ))
    }
    .await;
    finish(note, result)
}
