//! RelatedPerson: a read-only view of each patient's contacts (emergency
//! contacts, guarantor, family). The id is `<patient id>-<n>`, `n` being the
//! contact's index in `Patient.contact`; the resource changes with the
//! patient and is edited through it. Read and searched by patient only.

use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::capability;
use crate::fhir::json::instant;
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resources::patient::{guarantor_extension, relationship_to_fhir};
use crate::fhir::search::{self, SearchParam, reference};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_store::StoreError;
use serde_json::{Value, json};

const KIND: &str = "RelatedPerson";

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type))
        .route(&format!("/{KIND}/{{id}}"), get(read))
}

#[derive(Default)]
struct ContactQuery {
    patient: Option<String>,
}

const SEARCH: &[SearchParam<ContactQuery>] = &[SearchParam {
    name: "patient",
    kind: "reference",
    doc: "Required: Patient/id or the bare id; that patient's contacts in order.",
    apply: |q, v| {
        let id = reference(v, "Patient")?.to_string();
        if q.patient.as_ref().is_some_and(|p| *p != id) {
            return Err("give one patient".into());
        }
        q.patient = Some(id);
        Ok(())
    },
}];

pub fn capability_entry() -> Value {
    capability::entry(
        KIND,
        "A patient's contact (emergency contact, guarantor, family), read-only: id \
         <patient id>-<n> for Patient.contact[n]; change it by updating the Patient. Roles \
         front_desk, lead, clinician and billing. Keeps patient, relationship (v3-RoleCode code \
         or text, plus v2-0131#C for an emergency contact), name.text, one phone, active (the \
         patient's) and the extension \
         http://carefront.example/fhir/StructureDefinition/contact-guarantor (valueBoolean). \
         Search needs the patient parameter. Every read and search is audited with the \
         patient's id.",
        &["read", "search-type"],
        false,
        &[SEARCH],
    )
}

fn resource(patient: &Versioned<Patient>, n: usize) -> Option<Value> {
    let c = patient.value.contacts.get(n)?;
    Some(json!({
        "resourceType": KIND,
        "id": format!("{}-{n}", patient.id),
        "meta": { "lastUpdated": instant(patient.updated_at_us) },
        "extension": guarantor_extension(c),
        "active": patient.value.active,
        "patient": { "reference": format!("Patient/{}", patient.id) },
        "relationship": relationship_to_fhir(c),
        "name": [{ "text": c.name }],
        "telecom": [c.phone.as_ref().map(|p| json!({ "system": "phone", "value": p }))],
    }))
}

/// The patient, or `None` when there is no such (live) patient.
async fn patient(ctx: &Ctx, id: &str) -> Result<Option<Versioned<Patient>>, FhirError> {
    match ctx.state.db.get::<Patient>(ctx.org(), id).await {
        Ok(p) => Ok(Some(p)),
        Err(StoreError::NotFound | StoreError::Gone) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let mut note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(Area::Patients)?;
        let missing = || FhirError::NotFound(format!("{KIND}/{id} is not known."));
        let (patient_id, n) = id
            .rsplit_once('-')
            .and_then(|(p, n)| {
                let index = n.parse::<usize>().ok()?;
                (index.to_string() == n).then_some((p, index))
            })
            .ok_or_else(missing)?;
        let found = patient(&ctx, patient_id).await?.ok_or_else(missing)?;
        note.patient_id = Some(found.id.clone());
        let body = resource(&found, n).ok_or_else(missing)?;
        Ok(json_response(StatusCode::OK, body))
    }
    .await;
    finish(note, result)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let mut note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::Patients)?;
        let mut wanted = ContactQuery::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut wanted)?;
        let Some(patient_id) = wanted.patient else {
            return Err(FhirError::Invalid(vec![Issue::new(
                "required",
                "search parameter 'patient' is required: RelatedPerson?patient=Patient/id",
            )]));
        };
        let found = patient(&ctx, &patient_id).await?;
        let all: Vec<Value> = match &found {
            Some(p) => (0..p.value.contacts.len())
                .filter_map(|n| resource(p, n))
                .collect(),
            None => Vec::new(),
        };
        if let Some(p) = &found {
            note.patient_id = Some(p.id.clone());
        }
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let entries = all
            .into_iter()
            .skip(usize::try_from(query.page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.page.count).unwrap_or(0))
            .map(|r| {
                let url = format!(
                    "{}/{KIND}/{}",
                    ctx.base,
                    r["id"].as_str().unwrap_or_default()
                );
                match_entry(url, r)
            })
            .collect();
        let url = format!("{}/{KIND}", ctx.base);
        let bundle = bundle("searchset", &url, &query, total, entries);
        Ok(json_response(StatusCode::OK, bundle))
    }
    .await;
    finish(note, result)
}
