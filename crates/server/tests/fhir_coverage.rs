//! FHIR Coverage and the payer directory as Organization, over HTTP
//! in-process, on the demo clinic (SQLite, or PostgreSQL with
//! CAREFRONT_TEST_POSTGRES).

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::coverage::{COMMON_PAYERS, Coverage};
use carefront_domain::patient::Patient;
use carefront_server::auth::issue_token;
use carefront_store::{AuditFilter, Page};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};

const BASE: &str = "/fhir/R4";
const PAYER_ID: &str = "http://carefront.example/fhir/sid/payer-id";
const RELATIONSHIP: &str = "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
const CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";

async fn token(app: &TestApp, role: Role) -> String {
    let creator = AuditEntry::new("system", Action::TokenCreate, Outcome::Success);
    issue_token(&app.db, &app.org_id, &format!("{role}-cov"), role, creator)
        .await
        .unwrap()
        .1
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn expressions(&self) -> Vec<String> {
        self.body["issue"]
            .as_array()
            .map(|issues| {
                issues
                    .iter()
                    .filter_map(|i| i["expression"][0].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn ids(&self) -> Vec<String> {
        self.body["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn fhir(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Answer {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{BASE}{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/fhir+json");
    }
    if let Some(v) = if_match {
        b = b.header(header::IF_MATCH, v);
    }
    let req = b
        .body(body.map(|v| Body::from(v.to_string())).unwrap_or_default())
        .unwrap();
    let res = app.send(req).await;
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Answer { status, body }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    fhir(app, Method::GET, path, token, None, None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Answer {
    fhir(app, Method::POST, path, token, Some(body), None).await
}

/// The id of the directory entry with this payer ID.
async fn payer(app: &TestApp, code: &str) -> String {
    app.db
        .payers(&app.org_id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.value.payer_id == code)
        .unwrap()
        .id
}

/// A demo patient without any coverage.
async fn uninsured_patient(app: &TestApp) -> String {
    let (patients, _) = app
        .db
        .search::<Patient>(
            &app.org_id,
            &[],
            Page {
                offset: 0,
                count: 100,
            },
        )
        .await
        .unwrap();
    for p in patients {
        if app
            .db
            .coverages_of(&app.org_id, &p.id)
            .await
            .unwrap()
            .is_empty()
        {
            return p.id;
        }
    }
    panic!("every demo patient has coverage");
}

async fn coverage_count(app: &TestApp) -> i64 {
    let none = Page {
        offset: 0,
        count: 0,
    };
    app.db
        .search::<Coverage>(&app.org_id, &[], none)
        .await
        .unwrap()
        .1
}

fn dependant_coverage(patient: &str, payer: &str) -> Value {
    json!({
        "resourceType": "Coverage",
        "contained": [{
            "resourceType": "RelatedPerson",
            "id": "subscriber",
            "patient": { "reference": format!("Patient/{patient}") },
            "name": [{ "family": "Okafor", "given": ["Grace"] }],
            "birthDate": "1984-07-02",
        }],
        "status": "active",
        "subscriber": { "reference": "#subscriber" },
        "subscriberId": "W987654321",
        "beneficiary": { "reference": format!("Patient/{patient}") },
        "relationship": { "coding": [{ "system": RELATIONSHIP, "code": "child" }] },
        "period": { "start": "2026-01-01" },
        "payor": [{ "reference": format!("Organization/{payer}") }],
        "class": [
            { "type": { "coding": [{ "system": CLASS, "code": "group" }] }, "value": "0012345" },
            { "type": { "coding": [{ "system": CLASS, "code": "plan" }] }, "value": "Choice POS II" },
        ],
        "order": 1,
    })
}

#[tokio::test]
async fn payers_are_served_as_organizations_beside_the_tenant() {
    let app = TestApp::new().await;
    let desk = token(&app, Role::FrontDesk).await;
    let admin = token(&app, Role::Admin).await;

    let payers = get(&app, "/Organization?type=pay", &desk).await;
    assert_eq!(payers.status, StatusCode::OK, "{}", payers.body);
    assert_eq!(payers.body["total"], COMMON_PAYERS.len());
    let first = &payers.body["entry"][0]["resource"];
    assert_eq!(first["type"][0]["coding"][0]["code"], "pay");
    assert_eq!(first["identifier"][0]["system"], PAYER_ID);

    // Everything: the tenant first, then the payers by name; paging spans both.
    let all = get(&app, "/Organization?_count=3", &desk).await;
    assert_eq!(all.body["total"], COMMON_PAYERS.len() + 1);
    assert_eq!(all.ids()[0], app.org_id);
    assert_eq!(all.ids().len(), 3);
    let rest = get(&app, "/Organization?_count=100&_offset=1", &desk).await;
    assert_eq!(rest.ids().len(), COMMON_PAYERS.len());
    assert!(!rest.ids().contains(&app.org_id));

    let aetna = get(
        &app,
        &format!("/Organization?identifier={PAYER_ID}|60054"),
        &desk,
    )
    .await;
    assert_eq!(aetna.body["total"], 1);
    assert_eq!(aetna.body["entry"][0]["resource"]["name"], "Aetna");
    let bare = get(&app, "/Organization?identifier=60054&name=aet", &desk).await;
    assert_eq!(bare.body["total"], 1);
    let tenant_by_name = get(&app, "/Organization?name=zzz", &desk).await;
    assert_eq!(tenant_by_name.body["total"], 0);

    let aetna_id = payer(&app, "60054").await;
    let read = get(&app, &format!("/Organization/{aetna_id}"), &desk).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["identifier"][0]["value"], "60054");
    let tenant = get(&app, &format!("/Organization/{}", app.org_id), &desk).await;
    assert_eq!(tenant.status, StatusCode::OK);
    assert!(tenant.body.get("identifier").is_none());

    // Administrators add payers; others may not.
    let molina = json!({
        "resourceType": "Organization",
        "active": true,
        "name": "Molina Healthcare of Texas",
        "identifier": [{ "system": PAYER_ID, "value": "20554" }],
        "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay" }] }],
    });
    let denied = post(&app, "/Organization", &desk, &molina).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let created = post(&app, "/Organization", &admin, &molina).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let molina_id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        get(&app, "/Organization?type=pay", &desk).await.body["total"],
        COMMON_PAYERS.len() + 1
    );
    let again = post(&app, "/Organization", &admin, &molina).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // An organization without a payer ID is not a payer; the tenant exists.
    let mut no_id = molina.clone();
    no_id.as_object_mut().unwrap().remove("identifier");
    let res = post(&app, "/Organization", &admin, &no_id).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.expressions(), ["Organization.identifier"]);
    let mut bad_id = molina.clone();
    bad_id["identifier"][0]["value"] = json!("20 554");
    let res = post(&app, "/Organization", &admin, &bad_id).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.expressions(),
        [format!(
            "Organization.identifier.where(system='{PAYER_ID}').value"
        )]
    );

    // Update, history and vread go to the payer; the tenant is never deleted.
    let mut renamed = created.body.clone();
    renamed["name"] = json!("Molina Healthcare");
    let path = format!("/Organization/{molina_id}");
    let res = fhir(
        &app,
        Method::PUT,
        &path,
        &admin,
        Some(&renamed),
        Some("W/\"1\""),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["meta"]["versionId"], "2");
    let history = get(&app, &format!("{path}/_history"), &desk).await;
    assert_eq!(history.body["total"], 2);
    let v1 = get(&app, &format!("{path}/_history/1"), &desk).await;
    assert_eq!(v1.body["name"], "Molina Healthcare of Texas");
    let res = fhir(
        &app,
        Method::DELETE,
        &format!("/Organization/{}", app.org_id),
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.db.organizations().await.unwrap().len(), 1);

    // A payer that coverages use is kept; an unused one can go.
    let used = app
        .db
        .search::<Coverage>(
            &app.org_id,
            &[],
            Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap()
        .0[0]
        .value
        .payer_ref
        .clone();
    let res = fhir(
        &app,
        Method::DELETE,
        &format!("/Organization/{used}"),
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    let res = fhir(&app, Method::DELETE, &path, &admin, None, None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, &path, &desk).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn coverage_is_created_read_searched_and_updated() {
    let app = TestApp::new().await;
    let desk = token(&app, Role::FrontDesk).await;
    let patient = uninsured_patient(&app).await;
    let aetna = payer(&app, "60054").await;

    let created = post(
        &app,
        "/Coverage",
        &desk,
        &dependant_coverage(&patient, &aetna),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let stored = app
        .db
        .get::<Coverage>(&app.org_id, &id)
        .await
        .unwrap()
        .value;
    assert_eq!(stored.member_id, "W987654321");
    assert_eq!(stored.group_number.as_deref(), Some("0012345"));
    assert_eq!(stored.plan_name.as_deref(), Some("Choice POS II"));
    let subscriber = stored.subscriber.unwrap();
    assert_eq!(
        (subscriber.given.as_str(), subscriber.family.as_str()),
        ("Grace", "Okafor")
    );

    let read = get(&app, &format!("/Coverage/{id}"), &desk).await;
    assert_eq!(read.status, StatusCode::OK);
    let c = &read.body;
    assert_eq!(c["status"], "active");
    assert_eq!(c["beneficiary"]["reference"], format!("Patient/{patient}"));
    assert_eq!(c["payor"][0]["reference"], format!("Organization/{aetna}"));
    assert_eq!(c["subscriberId"], "W987654321");
    assert_eq!(c["subscriber"]["reference"], "#subscriber");
    assert_eq!(c["contained"][0]["birthDate"], "1984-07-02");
    assert_eq!(c["relationship"]["coding"][0]["system"], RELATIONSHIP);
    assert_eq!(c["relationship"]["coding"][0]["code"], "child");
    assert_eq!(c["class"][0]["type"]["coding"][0]["code"], "group");
    assert_eq!(c["class"][1]["value"], "Choice POS II");
    assert_eq!(c["order"], 1);
    assert_eq!(c["period"]["start"], "2026-01-01");

    // The read is audited under the patient.
    let reads = AuditFilter {
        patient_id: Some(patient.clone()),
        resource_type: Some("Coverage".into()),
        ..Default::default()
    };
    let (events, _) = app
        .db
        .audit_events(&app.org_id, &reads, 0, 10)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.entry.action == Action::Read));
    assert!(events.iter().any(|e| e.entry.action == Action::Create));

    for query in [
        format!("/Coverage?patient=Patient/{patient}"),
        format!("/Coverage?beneficiary={patient}"),
        format!("/Coverage?payor=Organization/{aetna}&patient={patient}"),
        format!("/Coverage?_id={id}&status=active"),
    ] {
        let res = get(&app, &query, &desk).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        assert_eq!(res.ids(), std::slice::from_ref(&id), "{query}");
    }
    let by_payer = get(&app, &format!("/Coverage?payor={aetna}&_count=100"), &desk).await;
    assert!(by_payer.ids().contains(&id));
    let total = by_payer.body["total"].as_i64().unwrap();
    for entry in by_payer.body["entry"].as_array().unwrap() {
        assert_eq!(
            entry["resource"]["payor"][0]["reference"],
            format!("Organization/{aetna}")
        );
    }
    let cigna = payer(&app, "62308").await;
    let other = get(&app, &format!("/Coverage?payor={cigna}&_count=0"), &desk).await;
    assert!(other.body["total"].as_i64().unwrap() + total <= coverage_count(&app).await);
    let none = get(
        &app,
        &format!("/Coverage?patient={patient}&status=cancelled"),
        &desk,
    )
    .await;
    assert_eq!(none.body["total"], 0);
    let bad = get(&app, "/Coverage?payor=Patient/1", &desk).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Cancel it; the earlier version stays readable.
    let mut cancelled = read.body.clone();
    cancelled["status"] = json!("cancelled");
    cancelled["period"]["end"] = json!("2026-06-30");
    let path = format!("/Coverage/{id}");
    let res = fhir(
        &app,
        Method::PUT,
        &path,
        &desk,
        Some(&cancelled),
        Some("W/\"1\""),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["status"], "cancelled");
    let cancelled_now = get(
        &app,
        &format!("/Coverage?patient={patient}&status=cancelled"),
        &desk,
    )
    .await;
    assert_eq!(cancelled_now.ids(), std::slice::from_ref(&id));
    let v1 = get(&app, &format!("{path}/_history/1"), &desk).await;
    assert_eq!(v1.body["status"], "active");

    // The patient as subscriber: relationship self, no contained person.
    let mut own = dependant_coverage(&patient, &aetna);
    let obj = own.as_object_mut().unwrap();
    obj.remove("contained");
    obj.remove("relationship");
    obj.insert(
        "subscriber".into(),
        json!({ "reference": format!("Patient/{patient}") }),
    );
    let res = post(&app, "/Coverage", &desk, &own).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["relationship"]["coding"][0]["code"], "self");
    assert!(res.body.get("contained").is_none());
}

#[tokio::test]
async fn bad_coverages_are_refused_naming_the_element_and_change_nothing() {
    let app = TestApp::new().await;
    let desk = token(&app, Role::FrontDesk).await;
    let patient = uninsured_patient(&app).await;
    let aetna = payer(&app, "60054").await;
    let ok = post(
        &app,
        "/Coverage",
        &desk,
        &dependant_coverage(&patient, &aetna),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let before = coverage_count(&app).await;

    let mut invalid = dependant_coverage(&patient, &aetna);
    invalid["subscriberId"] = json!("W98 76");
    invalid["period"] = json!({ "start": "2026-05-01", "end": "2026-01-01" });
    invalid["order"] = json!(2);
    let res = post(&app, "/Coverage", &desk, &invalid).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let found = res.expressions();
    assert!(
        found.contains(&"Coverage.subscriberId".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"Coverage.period.end".to_string()),
        "{found:?}"
    );

    // A dependant needs the subscriber named.
    let mut orphan = dependant_coverage(&patient, &aetna);
    orphan.as_object_mut().unwrap().remove("contained");
    orphan.as_object_mut().unwrap().remove("subscriber");
    orphan["order"] = json!(2);
    let res = post(&app, "/Coverage", &desk, &orphan).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.expressions(), ["Coverage.subscriber"]);

    let mut shapes = dependant_coverage(&patient, &aetna);
    shapes["status"] = json!("draft");
    shapes["order"] = json!(7);
    shapes["relationship"]["coding"][0]["code"] = json!("cousin");
    shapes["period"]["start"] = json!("01/01/2026");
    shapes["class"][0]["type"]["coding"][0]["code"] = json!("rxbin");
    let res = post(&app, "/Coverage", &desk, &shapes).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let found = res.expressions();
    for path in [
        "Coverage.status",
        "Coverage.order",
        "Coverage.relationship.coding",
        "Coverage.period.start",
        "Coverage.class[0].type",
    ] {
        assert!(found.contains(&path.to_string()), "{path} not in {found:?}");
    }

    // References that do not resolve: 422; the tenant is not a payer.
    let mut unknown = dependant_coverage("no-such-patient", &app.org_id);
    unknown["order"] = json!(3);
    unknown["contained"][0]["patient"]["reference"] = json!("Patient/no-such-patient");
    let res = post(&app, "/Coverage", &desk, &unknown).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(
        res.expressions(),
        ["Coverage.beneficiary", "Coverage.payor[0]"]
    );

    // A second active primary: the database refuses it.
    let humana = payer(&app, "61101").await;
    let res = post(
        &app,
        "/Coverage",
        &desk,
        &dependant_coverage(&patient, &humana),
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);

    assert_eq!(coverage_count(&app).await, before);
}

#[tokio::test]
async fn coverage_needs_the_patient_area_and_is_advertised() {
    let app = TestApp::new().await;
    for (role, allowed) in [
        (Role::Clinician, true),
        (Role::Billing, true),
        (Role::Admin, false),
        (Role::Auditor, false),
    ] {
        let t = token(&app, role).await;
        let res = get(&app, "/Coverage?_count=1", &t).await;
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status, expected, "{role}");
    }
    let auditor = token(&app, Role::Auditor).await;
    assert_eq!(
        get(&app, "/Organization?type=pay", &auditor).await.status,
        StatusCode::FORBIDDEN
    );

    let res = app
        .send(
            Request::get(format!("{BASE}/metadata"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let statement: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    let find = |t: &str| resources.iter().find(|r| r["type"] == t).unwrap().clone();
    let params = |r: &Value| -> Vec<String> {
        r["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let coverage = find("Coverage");
    for p in ["patient", "beneficiary", "payor", "_id"] {
        assert!(params(&coverage).contains(&p.to_string()), "{p}");
    }
    let org = find("Organization");
    for p in ["type", "identifier", "name", "_id"] {
        assert!(params(&org).contains(&p.to_string()), "{p}");
    }
    // Every advertised parameter answers, even for values nothing has.
    let desk = token(&app, Role::FrontDesk).await;
    for (kind, r) in [("Coverage", &coverage), ("Organization", &org)] {
        for p in r["searchParam"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let value = if p["type"] == "date" {
                "ge2020-01-01"
            } else {
                "x"
            };
            let value = if p["type"] == "number" { "1" } else { value };
            let res = get(&app, &format!("/{kind}?{name}={value}"), &desk).await;
            assert_eq!(res.status, StatusCode::OK, "{kind}?{name}: {}", res.body);
        }
    }
    let interactions: Vec<&str> = org["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(interactions.contains(&"create"));
}
