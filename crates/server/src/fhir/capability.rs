//! The CapabilityStatement, built from the same registrations as the routes.

use super::json_response;
use super::resource::{FhirResource, interactions};
use super::search::{COMMON, PAGING, SearchParam};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

/// One `rest.resource` entry.
pub fn entry<T>(
    kind: &str,
    doc: &str,
    interactions: &[&str],
    versioned: bool,
    params: &[&[SearchParam<T>]],
) -> Value {
    let mut search: Vec<Value> = params
        .iter()
        .flat_map(|p| p.iter())
        .map(|p| json!({ "name": p.name, "type": p.kind, "documentation": p.doc }))
        .collect();
    search.extend(
        PAGING
            .iter()
            .map(|(name, doc)| json!({ "name": name, "type": "number", "documentation": doc })),
    );
    json!({
        "type": kind,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{kind}"),
        "documentation": doc,
        "interaction": interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
        "versioning": if versioned { "versioned" } else { "no-version" },
        "readHistory": versioned,
        "updateCreate": false,
        "conditionalCreate": false,
        "conditionalRead": "not-supported",
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": search,
    })
}

pub fn record_entry<R: FhirResource>() -> Value {
    entry(
        R::KIND,
        R::DOC,
        &interactions::<R>(),
        true,
        &[R::SEARCH, COMMON],
    )
}

pub fn statement(resources: Vec<Value>) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
        "publisher": "Carefront",
        "kind": "instance",
        "software": { "name": "Carefront", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Carefront FHIR R4 API" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "JSON only. Errors are OperationOutcomes naming the element at fault \
                in issue.expression. Updates honour If-Match (W/\"version\"); writes honour \
                Prefer: return=minimal. Unknown search parameters, modifiers and comma-separated \
                values are refused with 400 rather than ignored. Every request is recorded in \
                the tamper-evident audit trail, which auditors read as AuditEvent.",
            "security": {
                "cors": false,
                "service": [{ "text": "Bearer API token" }],
                "description": "Every interaction except GET /metadata needs \
                    'Authorization: Bearer cft_...', an API token an administrator issues for \
                    one staff role (carefront token create). The role decides access: directory \
                    resources are read by every role except auditor and changed by admin; \
                    Patient, RelatedPerson and Patient/$match are for front_desk, lead, \
                    clinician and billing, as is Encounter (those who see today's board); \
                    AuditEvent is read by auditor only.",
            },
            "resource": resources,
        }],
    })
}

pub fn respond(statement: &Value, base: &str) -> Response {
    let mut body = statement.clone();
    body["implementation"]["url"] = json!(base);
    json_response(StatusCode::OK, body)
}
