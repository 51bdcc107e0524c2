//! The FHIR Patient API: registration, versions, conditional create,
//! search, validation, `$match`, RelatedPerson, roles and the audit trail.

mod common;

use axum::http::{Method, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::patient::Patient;
use carefront_store::AuditFilter;
use common::TestApp;
use common::fhir_api::*;
use serde_json::{Value, json};

const MRN: &str = "http://carefront.example/fhir/sid/mrn";
const SMS: &str = "http://carefront.example/fhir/StructureDefinition/sms-consent";
const ALERT: &str = "http://carefront.example/fhir/StructureDefinition/patient-alert";
const PREFERRED: &str =
    "http://carefront.example/fhir/StructureDefinition/preferred-contact-method";
const GUARANTOR: &str = "http://carefront.example/fhir/StructureDefinition/contact-guarantor";
const INTERPRETER: &str = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired";
const GENDER_IDENTITY: &str = "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity";
const PRONOUNS: &str = "http://hl7.org/fhir/StructureDefinition/individual-pronouns";
const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const CONTACT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";
const EHR: &str = "http://example.org/ehr";

/// A full registration: every element Carefront keeps.
fn zephyrine() -> Value {
    json!({
        "resourceType": "Patient",
        "extension": [
            { "url": INTERPRETER, "valueBoolean": true },
            { "url": PREFERRED, "valueCode": "sms" },
            { "url": ALERT, "valueString": "needs wheelchair" },
            { "url": ALERT, "valueString": "hard of hearing" },
            { "url": GENDER_IDENTITY, "extension": [{ "url": "value", "valueCodeableConcept": { "text": "woman" } }] },
            { "url": PRONOUNS, "extension": [{ "url": "value", "valueCodeableConcept": { "text": "she/her" } }] },
        ],
        "identifier": [
            { "system": MRN, "value": "99999999" },
            { "system": EHR, "value": "Z-1" },
        ],
        "name": [
            { "use": "official", "family": "Quillfeather-Osei", "given": ["Zéphyrine", "Marie"], "suffix": ["Jr"] },
            { "use": "usual", "given": ["Zephy"] },
        ],
        "telecom": [
            { "system": "email", "value": "zeph@example.com" },
            {
                "system": "phone",
                "value": "(212) 555-0123",
                "use": "mobile",
                "extension": [{ "url": SMS, "valueBoolean": true }],
            },
            { "system": "phone", "value": "212.555.0199", "use": "work" },
        ],
        "gender": "female",
        "birthDate": "1962-03-14",
        "address": [{
            "use": "home",
            "line": ["12 Oak St", "Apt 4"],
            "city": "New York",
            "state": "ny",
            "postalCode": "10001",
            "country": "US",
        }],
        "communication": [{
            "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "fr" }] },
            "preferred": true,
        }],
        "contact": [
            {
                "extension": [{ "url": GUARANTOR, "valueBoolean": true }],
                "relationship": [
                    { "coding": [{ "system": ROLE_CODE, "code": "SPS" }] },
                    { "coding": [{ "system": CONTACT_ROLE, "code": "C" }] },
                ],
                "name": { "text": "Kwame Osei" },
                "telecom": [{ "system": "phone", "value": "212-555-0144" }],
            },
            {
                "relationship": [{ "text": "neighbour" }],
                "name": { "text": "Ida Brown" },
            },
        ],
    })
}

/// A minimal valid registration.
fn person(given: &str, family: &str, birth: &str, phone: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{ "family": family, "given": [given] }],
        "telecom": [{ "system": "phone", "value": phone }],
        "gender": "female",
        "birthDate": birth,
        "address": [{ "line": ["1 Elm St"], "city": "Austin", "state": "TX", "postalCode": "78701" }],
    })
}

async fn create(app: &TestApp, token: &str, body: &Value) -> Answer {
    let res = send(app, call(Method::POST, "/Patient", token).json(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res
}

fn extension<'a>(resource: &'a Value, url: &str) -> Vec<&'a Value> {
    resource["extension"]
        .as_array()
        .map(|e| e.iter().filter(|x| x["url"] == url).collect())
        .unwrap_or_default()
}

async fn patient_count(app: &TestApp, token: &str) -> i64 {
    get_as(app, token, "/Patient?_count=0").await.body["total"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn patients_are_created_read_by_version_updated_and_kept_in_history() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let created = create(&app, &t, &zephyrine()).await;
    let p = &created.body;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["meta"]["versionId"], "1");
    assert_eq!(created.header(header::ETAG), "W/\"1\"");
    assert!(
        created
            .header(header::LOCATION)
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );

    // The MRN is assigned by the server; the one sent is ignored.
    let mrn = &p["identifier"][0];
    assert_eq!(mrn["system"], MRN);
    assert_eq!(mrn["type"]["coding"][0]["code"], "MR");
    let mrn_value = mrn["value"].as_str().unwrap().to_string();
    assert_eq!(mrn_value.len(), 8);
    assert_ne!(mrn_value, "99999999");
    assert_eq!(p["identifier"][1], json!({ "system": EHR, "value": "Z-1" }));
    assert_eq!(p["identifier"].as_array().unwrap().len(), 2);

    // Names, telecom, address, language and extensions, normalized.
    assert_eq!(p["name"][0]["use"], "official");
    assert_eq!(p["name"][0]["family"], "Quillfeather-Osei");
    assert_eq!(p["name"][0]["given"], json!(["Zéphyrine", "Marie"]));
    assert_eq!(p["name"][0]["suffix"], json!(["Jr"]));
    assert_eq!(p["name"][1], json!({ "use": "usual", "given": ["Zephy"] }));
    let telecom = p["telecom"].as_array().unwrap();
    assert_eq!(telecom[0]["value"], "+12125550123");
    assert_eq!(telecom[0]["use"], "mobile");
    assert_eq!(telecom[0]["extension"][0]["url"], SMS);
    assert_eq!(telecom[0]["extension"][0]["valueBoolean"], true);
    assert_eq!(telecom[1]["value"], "+12125550199");
    assert_eq!(telecom[1]["use"], "work");
    assert_eq!(telecom[1]["extension"][0]["valueBoolean"], false);
    assert_eq!(
        telecom[2],
        json!({ "system": "email", "value": "zeph@example.com" })
    );
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "1962-03-14");
    assert_eq!(p["address"][0]["state"], "NY");
    assert_eq!(p["address"][0]["line"], json!(["12 Oak St", "Apt 4"]));
    assert_eq!(
        p["communication"][0]["language"]["coding"][0],
        json!({ "system": "urn:ietf:bcp:47", "code": "fr" })
    );
    assert_eq!(p["communication"][0]["preferred"], true);
    assert_eq!(extension(p, INTERPRETER)[0]["valueBoolean"], true);
    assert_eq!(extension(p, PREFERRED)[0]["valueCode"], "sms");
    let alerts: Vec<&Value> = extension(p, ALERT)
        .iter()
        .map(|a| &a["valueString"])
        .collect();
    assert_eq!(
        alerts,
        [&json!("needs wheelchair"), &json!("hard of hearing")]
    );
    assert_eq!(
        extension(p, GENDER_IDENTITY)[0]["extension"][0]["valueCodeableConcept"]["text"],
        "woman"
    );
    assert_eq!(
        extension(p, PRONOUNS)[0]["extension"][0]["valueCodeableConcept"]["text"],
        "she/her"
    );
    let spouse = &p["contact"][0];
    assert_eq!(spouse["relationship"][0]["coding"][0]["code"], "SPS");
    assert_eq!(spouse["relationship"][1]["coding"][0]["code"], "C");
    assert_eq!(spouse["name"]["text"], "Kwame Osei");
    assert_eq!(spouse["telecom"][0]["value"], "+12125550144");
    assert_eq!(spouse["extension"][0]["url"], GUARANTOR);
    assert_eq!(p["contact"][1]["relationship"][0]["text"], "neighbour");
    assert_eq!(p["active"], true);
    assert!(p.get("link").is_none());

    // Read answers the same resource.
    let path = format!("/Patient/{id}");
    let read = get_as(&app, &t, &path).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header(header::ETAG), "W/\"1\"");
    assert_eq!(&read.body, p);

    // Update what was read, with If-Match; the MRN stays the server's.
    let mut changed = read.body.clone();
    changed["telecom"][2]["value"] = json!("zephyrine@example.com");
    changed["identifier"][0]["value"] = json!("12345678");
    let updated = send(
        &app,
        call(Method::PUT, &path, &t)
            .json(&changed)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["meta"]["versionId"], "2");
    assert_eq!(updated.body["identifier"][0]["value"], mrn_value);
    assert_eq!(updated.body["telecom"][2]["value"], "zephyrine@example.com");

    let stale = send(
        &app,
        call(Method::PUT, &path, &t)
            .json(&changed)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let mut ghost = person("Ghost", "Nobody", "1970-01-01", "2125550100");
    ghost["id"] = json!("nobody");
    let unknown = send(&app, call(Method::PUT, "/Patient/nobody", &t).json(&ghost)).await;
    assert_eq!(
        unknown.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no update-as-create"
    );

    // vread and history.
    let v1 = get_as(&app, &t, &format!("{path}/_history/1")).await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.body["telecom"][2]["value"], "zeph@example.com");
    let history = get_as(&app, &t, &format!("{path}/_history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 2);
    assert_eq!(history.body["entry"][0]["request"]["method"], "PUT");
    assert_eq!(history.body["entry"][1]["request"]["method"], "POST");
    assert_eq!(
        get_as(&app, &t, &format!("{path}/_history/3")).await.status,
        StatusCode::NOT_FOUND
    );

    // Records are merged, never deleted.
    let delete = send(&app, call(Method::DELETE, &path, &t)).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_as(&app, &t, &path).await.status, StatusCode::OK);
}

#[tokio::test]
async fn conditional_create_makes_one_record_returns_it_and_refuses_ambiguity() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let before = patient_count(&app, &t).await;
    let mut body = person("Ada", "Conditional", "1980-05-06", "512-555-0100");
    body["identifier"] = json!([{ "system": EHR, "value": "C-77" }]);
    let conditional = |body: &Value, condition: &str| {
        call(Method::POST, "/Patient", &t)
            .json(body)
            .header(header::HeaderName::from_static("if-none-exist"), condition)
    };

    let first = send(&app, conditional(&body, &format!("identifier={EHR}|C-77"))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let id = first.body["id"].as_str().unwrap().to_string();
    let again = send(&app, conditional(&body, &format!("identifier={EHR}|C-77"))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(again.body["meta"]["versionId"], "1");
    assert_eq!(patient_count(&app, &t).await, before + 1);
    let found = get_as(&app, &t, &format!("/Patient?identifier={EHR}|C-77")).await;
    assert_eq!(found.body["total"], 1);

    // Showing the existing patient is audited as a read of it.
    let events: Vec<(Action, Outcome)> = audit_events(
        &app,
        AuditFilter {
            patient_id: Some(id.clone()),
            ..Default::default()
        },
    )
    .await
    .iter()
    .map(|e| (e.entry.action, e.entry.outcome))
    .collect();
    assert_eq!(
        events,
        [
            (Action::Search, Outcome::Success),
            (Action::Read, Outcome::Success),
            (Action::Create, Outcome::Success)
        ],
        "newest first: the search above, the conditional match, the create"
    );

    // More than one match: nothing is created.
    let many = send(&app, conditional(&body, "gender=female")).await;
    assert_eq!(
        many.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        many.body
    );
    let bad = send(&app, conditional(&body, "colour=blue")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let empty = send(&app, conditional(&body, "")).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(patient_count(&app, &t).await, before + 1);

    // No match: created.
    let mut other = person("Bea", "Conditional", "1981-05-06", "512-555-0101");
    other["identifier"] = json!([{ "system": EHR, "value": "C-78" }]);
    let created = send(&app, conditional(&other, &format!("identifier={EHR}|C-78"))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(patient_count(&app, &t).await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conditional_creates_make_one_patient() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let before = patient_count(&app, &t).await;
    let mut body = person("Cy", "Racing", "1979-01-02", "512-555-0177");
    body["identifier"] = json!([{ "system": EHR, "value": "R-1" }]);
    let condition = format!("identifier={EHR}|R-1");
    let app = std::sync::Arc::new(app);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (app, t, body, condition) = (app.clone(), t.clone(), body.clone(), condition.clone());
        racers.spawn(async move {
            send(
                &app,
                call(Method::POST, "/Patient", &t)
                    .json(&body)
                    .header(header::HeaderName::from_static("if-none-exist"), &condition),
            )
            .await
        });
    }
    let answers = racers.join_all().await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one request creates");
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::CREATED || a.status == StatusCode::OK)
    );
    let ids: std::collections::BTreeSet<_> =
        answers.iter().map(|a| a.body["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "everyone is given the same patient");
    assert_eq!(patient_count(&app, &t).await, before + 1);
}

#[tokio::test]
async fn every_search_parameter_finds_the_patient() {
    let app = TestApp::new().await;
    let t = token(&app, Role::Clinician).await;
    let created = create(&app, &t, &zephyrine()).await.body;
    let id = created["id"].as_str().unwrap().to_string();
    let mrn = created["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let short_mrn = mrn.trim_start_matches('0').to_string();
    let today = jiff::Zoned::now().date().to_string();

    // Searches that find exactly this patient among the demo clinic's.
    for query in [
        "name=zeph".to_string(),
        "name=ZÉPHYRINE".to_string(),
        "name=quill".to_string(),
        "name=osei%20zeph".to_string(),
        "name=Quillfeather-Osei".to_string(),
        "name=marie&name=quill".to_string(),
        "family=quillfeather".to_string(),
        "family=Osei".to_string(),
        "given=zeph&family=quill".to_string(),
        "given=zephy".to_string(),
        "name=quill&birthdate=1962-03-14".to_string(),
        "name=quill&birthdate=1962-03".to_string(),
        "name=quill&birthdate=1962".to_string(),
        "name=quill&birthdate=ge1962-03-14&birthdate=le1962-03-14".to_string(),
        "name=quill&gender=female".to_string(),
        format!("identifier={MRN}|{mrn}"),
        format!("identifier={mrn}"),
        format!("identifier={short_mrn}"),
        format!("identifier={EHR}|Z-1"),
        "email=Zeph@Example.com".to_string(),
        "telecom=email|zeph@example.com".to_string(),
        "name=quill&phone=%2B12125550123".to_string(),
        "name=quill&phone=2125550123".to_string(),
        "name=quill&phone=(212)%20555-0123".to_string(),
        "name=quill&phone=5550199".to_string(),
        "name=quill&telecom=phone|212-555-0123".to_string(),
        "name=quill&telecom=%2B1%20212%20555%200123".to_string(),
        format!("_id={id}"),
        format!("name=quill&_lastUpdated=ge{today}"),
    ] {
        let res = get_as(&app, &t, &format!("/Patient?{query}")).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        assert_eq!(res.ids(), std::slice::from_ref(&id), "{query}");
        assert_eq!(res.body["total"], 1, "{query}");
    }

    // Searches that must not find this patient.
    for query in [
        "name=quill&birthdate=1962-03-15",
        "name=quill&birthdate=lt1962-03-14",
        "name=quill&birthdate=gt1962",
        "name=quill&gender=male",
        "name=quill&phone=2125550124",
        "name=quill&email=other@example.com",
        "family=zephyrine",
        "name=quill&identifier=http://other.example|Z-1",
        "name=quill&_lastUpdated=lt2001",
    ] {
        let res = get_as(&app, &t, &format!("/Patient?{query}")).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
        assert_eq!(res.body["total"], 0, "{query}: {}", res.body);
    }

    // Searches shared with other patients return only patients who fit.
    let by_phone = get_as(&app, &t, "/Patient?phone=2125550123").await;
    assert!(by_phone.ids().contains(&id));
    for e in by_phone.body["entry"].as_array().unwrap() {
        let phones: Vec<&str> = e["resource"]["telecom"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["value"].as_str())
            .collect();
        assert!(phones.contains(&"+12125550123"), "{phones:?}");
    }
    let by_date = get_as(&app, &t, "/Patient?birthdate=1962-03-14").await;
    assert!(by_date.ids().contains(&id));
    for e in by_date.body["entry"].as_array().unwrap() {
        assert_eq!(e["resource"]["birthDate"], "1962-03-14");
    }
    let males = get_as(&app, &t, "/Patient?gender=male&_count=100").await;
    assert!(males.body["total"].as_i64().unwrap() > 0);
    for e in males.body["entry"].as_array().unwrap() {
        assert_eq!(e["resource"]["gender"], "male");
    }

    // Parameters that make no sense are refused, not ignored.
    for query in [
        "birthdate=14/03/1962",
        "birthdate=ne1962",
        "name=%20",
        "name:exact=Zeph",
        "deceased=true",
    ] {
        let res = get_as(&app, &t, &format!("/Patient?{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn patient_search_pages_with_total_and_next_links() {
    let app = TestApp::new().await;
    let t = token(&app, Role::Billing).await;
    let first = get_as(&app, &t, "/Patient?_count=15").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["total"], 40);
    assert_eq!(first.ids().len(), 15);
    let mut seen = Vec::new();
    let mut next = Some("/Patient?_count=15".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let page = get_as(&app, &t, &path).await;
        assert_eq!(page.body["total"], 40);
        seen.extend(page.ids());
        next = page.link("next");
        pages += 1;
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "every patient once");
    let count_only = get_as(&app, &t, "/Patient?_count=0").await;
    assert_eq!(count_only.body["total"], 40);
    assert!(count_only.body.get("entry").is_none());
}

#[tokio::test]
async fn several_addresses_are_kept_and_a_bad_one_is_named_with_nothing_written() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let mut body = person("Ines", "Addresso", "1979-11-02", "512-555-0161");
    body["address"] = json!([
        {
            "use": "home",
            "type": "postal",
            "line": ["PO Box 4410"],
            "city": "Austin",
            "state": "TX",
            "postalCode": "78765",
            "period": { "start": "2023-02-01" },
        },
        { "line": ["77 Cedar St"], "city": "Austin", "state": "tx", "postalCode": "78702" },
    ]);
    let created = create(&app, &t, &body).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let read = get_as(&app, &t, &format!("/Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    let addresses = read.body["address"].as_array().unwrap();
    assert_eq!(addresses.len(), 2, "{}", read.body);
    // The home address (no use said: home) first, then the mailing one.
    assert_eq!(addresses[0]["use"], "home");
    assert_eq!(addresses[0]["line"], json!(["77 Cedar St"]));
    assert_eq!(addresses[0]["state"], "TX");
    assert!(addresses[0].get("type").is_none());
    assert_eq!(addresses[1]["use"], "home");
    assert_eq!(addresses[1]["type"], "postal");
    assert_eq!(addresses[1]["line"], json!(["PO Box 4410"]));
    assert_eq!(addresses[1]["period"], json!({ "start": "2023-02-01" }));
    let stored = app.db.get::<Patient>(&app.org_id, &id).await.unwrap();
    assert_eq!(stored.value.addresses.len(), 2);
    assert_eq!(stored.value.mailing_address().unwrap().line1, "PO Box 4410");

    // An update with a work address added keeps all three.
    let mut changed = read.body.clone();
    changed["address"].as_array_mut().unwrap().push(
        json!({ "use": "work", "line": ["1 Congress Ave"], "city": "Austin", "state": "TX", "postalCode": "78701" }),
    );
    let path = format!("/Patient/{id}");
    let updated = send(&app, call(Method::PUT, &path, &t).json(&changed)).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["address"][2]["use"], "work");

    // A bad second address: its element is named, nothing is written.
    let before = patient_count(&app, &t).await;
    let mut bad = person("Ines", "Badaddress", "1979-11-02", "512-555-0162");
    bad["address"] = json!([
        { "line": ["77 Cedar St"], "city": "Austin", "state": "TX", "postalCode": "78702" },
        { "use": "billing", "line": ["5 Oak Rd"], "city": "Austin", "state": "TX", "postalCode": "787" },
    ]);
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&bad)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.expressions(), ["Patient.address[1].postalCode"]);
    // Two home addresses in use at once, an unknown use, a bad period.
    bad["address"] = json!([
        { "line": ["77 Cedar St"], "city": "Austin", "state": "TX", "postalCode": "78702" },
        { "use": "home", "line": ["5 Oak Rd"], "city": "Austin", "state": "TX", "postalCode": "78703" },
    ]);
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&bad)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.expressions(), ["Patient.address[1].use"]);
    bad["address"][1]["use"] = json!("vacation");
    bad["address"][0]["period"] = json!({ "end": "last year" });
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&bad)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let expressions = res.expressions();
    assert!(
        expressions.contains(&"Patient.address[1].use"),
        "{expressions:?}"
    );
    assert!(
        expressions.contains(&"Patient.address[0].period.end"),
        "{expressions:?}"
    );
    assert_eq!(patient_count(&app, &t).await, before);
    let res = get_as(&app, &t, "/Patient?name=badaddress").await;
    assert_eq!(res.body["total"], 0);
}

#[tokio::test]
async fn invalid_patients_name_each_element_and_nothing_is_written() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let before = patient_count(&app, &t).await;
    let creates_before = audit_events(
        &app,
        AuditFilter {
            action: Some(Action::Create),
            resource_type: Some("Patient".into()),
            ..Default::default()
        },
    )
    .await
    .len();

    let mut bad = zephyrine();
    bad["name"][0]["given"] = json!([""]);
    bad["birthDate"] = json!("2999-01-01");
    bad["telecom"][0]["value"] = json!("zeph@");
    bad["telecom"][2]["value"] = json!("12");
    bad["address"][0]["postalCode"] = json!("1000");
    bad["contact"][0]["name"] = json!({ "text": "" });
    bad["contact"][0]["telecom"][0]["value"] = json!("x");
    bad["communication"][0]["language"]["coding"][0]["code"] = json!("french language");
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&bad)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let expressions = res.expressions();
    for expected in [
        "Patient.name[0].given[0]",
        "Patient.birthDate",
        "Patient.telecom[0].value",
        "Patient.telecom[2].value",
        "Patient.address[0].postalCode",
        "Patient.contact[0].name",
        "Patient.contact[0].telecom[0].value",
        "Patient.communication[0].language",
    ] {
        assert!(
            expressions.contains(&expected),
            "{expected} missing from {expressions:?}"
        );
    }
    assert!(res.body["issue"].as_array().unwrap().iter().all(|i| {
        let e = i["expression"][0].as_str().unwrap();
        i["diagnostics"].as_str().unwrap().starts_with(e)
    }));

    // Structure: unknown elements, wrong codes and a missing birth date.
    let mut odd = person("Ann", "Odd", "1970-01-01", "512-555-0102");
    odd["maritalStatus"] = json!({ "text": "M" });
    odd["gender"] = json!("f");
    odd["telecom"][0]["use"] = json!("temp");
    odd["extension"] = json!([{ "url": "http://example.org/unknown", "valueString": "x" }]);
    odd.as_object_mut().unwrap().remove("birthDate");
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&odd)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let expressions = res.expressions();
    for expected in [
        "Patient.maritalStatus",
        "Patient.gender",
        "Patient.telecom[0].use",
        "Patient.extension[0].url",
        "Patient.birthDate",
    ] {
        assert!(
            expressions.contains(&expected),
            "{expected} missing from {expressions:?}"
        );
    }

    // The organization's rules: a phone and an address are required.
    let mut bare = person("Ann", "Bare", "1970-01-01", "512-555-0102");
    bare.as_object_mut().unwrap().remove("telecom");
    bare.as_object_mut().unwrap().remove("address");
    let res = send(&app, call(Method::POST, "/Patient", &t).json(&bare)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let expressions = res.expressions();
    assert!(expressions.contains(&"Patient.telecom"), "{expressions:?}");
    assert!(expressions.contains(&"Patient.address"), "{expressions:?}");

    // Nothing was written: no row, no version, no successful create.
    assert_eq!(patient_count(&app, &t).await, before);
    for query in ["name=quill", "name=odd", "name=bare"] {
        let res = get_as(&app, &t, &format!("/Patient?{query}")).await;
        assert_eq!(res.body["total"], 0, "{query}");
    }
    let creates = audit_events(
        &app,
        AuditFilter {
            action: Some(Action::Create),
            resource_type: Some("Patient".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(creates.len(), creates_before + 3, "three failed attempts");
    assert!(
        creates
            .iter()
            .take(3)
            .all(|e| e.entry.outcome == Outcome::Failed && e.entry.resource_id.is_none())
    );

    // An invalid update changes nothing either.
    let created = create(&app, &t, &zephyrine()).await.body;
    let path = format!("/Patient/{}", created["id"].as_str().unwrap());
    let mut broken = created.clone();
    broken["birthDate"] = json!("1800-01-01");
    let res = send(&app, call(Method::PUT, &path, &t).json(&broken)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.issue(), ("value", "Patient.birthDate"));
    let history = get_as(&app, &t, &format!("{path}/_history")).await;
    assert_eq!(history.body["total"], 1);
    assert_eq!(get_as(&app, &t, &path).await.body, created);
}

#[tokio::test]
async fn match_finds_a_misspelled_duplicate_and_leaves_strangers_out() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let original = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Johnson", "given": ["Katherine"] }],
        "telecom": [
            { "system": "phone", "value": "(512) 555-0177" },
            { "system": "email", "value": "kjohnson@example.com" },
        ],
        "gender": "female",
        "birthDate": "1975-06-02",
        "address": [{ "line": ["48 Pecan Ave"], "city": "Austin", "state": "TX", "postalCode": "78702" }],
    });
    let id = create(&app, &t, &original).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();

    let parameters = |patient: Value, extra: Vec<Value>| {
        let mut params = vec![json!({ "name": "resource", "resource": patient })];
        params.extend(extra);
        json!({ "resourceType": "Parameters", "parameter": params })
    };
    let typo = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Jonson", "given": ["Katharine"] }],
        "telecom": [{ "system": "phone", "value": "+15125550177" }],
        "gender": "female",
        "birthDate": "1975-06-02",
        "maritalStatus": { "text": "ignored when matching" },
    });
    let res = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&parameters(typo.clone(), vec![])),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["resourceType"], "Bundle");
    assert_eq!(res.body["type"], "searchset");
    let entries = res.body["entry"].as_array().unwrap();
    assert_eq!(res.body["total"], entries.len());
    let best = &entries[0];
    assert_eq!(best["resource"]["id"], id.as_str());
    assert_eq!(best["resource"]["resourceType"], "Patient");
    assert_eq!(best["search"]["mode"], "match");
    let grade = &best["search"]["extension"][0];
    assert_eq!(grade["url"], MATCH_GRADE);
    assert!(
        ["certain", "probable"].contains(&grade["valueCode"].as_str().unwrap()),
        "{grade}"
    );
    let mut last = 1.0;
    for e in entries {
        let score = e["search"]["score"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&score), "{score}");
        assert!(score <= last, "best first");
        last = score;
        let code = e["search"]["extension"][0]["valueCode"].as_str().unwrap();
        assert!(["certain", "probable", "possible"].contains(&code));
    }

    // Every patient returned is audited.
    let audited = audit_events(
        &app,
        AuditFilter {
            patient_id: Some(id.clone()),
            action: Some(Action::Search),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(audited.len(), 1);
    assert!(
        audited[0]
            .entry
            .detail
            .as_deref()
            .unwrap()
            .contains("$match")
    );
    // The operation's own event is the newest; one per patient before it.
    let all = audit_events(&app, AuditFilter::default()).await;
    assert!(all[0].entry.patient_id.is_none());
    assert!(
        all[0]
            .entry
            .detail
            .as_deref()
            .unwrap()
            .starts_with("FHIR $match (")
    );
    let mut returned: Vec<String> = all[1..=entries.len()]
        .iter()
        .map(|e| e.entry.patient_id.clone().unwrap())
        .collect();
    returned.sort();
    let mut expected = res.ids();
    expected.sort();
    assert_eq!(returned, expected);

    // Only certain matches, and a count.
    let certain = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&parameters(
            typo.clone(),
            vec![
                json!({ "name": "onlyCertainMatches", "valueBoolean": true }),
                json!({ "name": "count", "valueInteger": 1 }),
            ],
        )),
    )
    .await;
    assert_eq!(certain.status, StatusCode::OK, "{}", certain.body);
    assert!(certain.ids().len() <= 1);
    for e in certain.body["entry"].as_array().into_iter().flatten() {
        assert_eq!(e["search"]["extension"][0]["valueCode"], "certain");
    }

    // A stranger matches nobody.
    let stranger = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Xylander", "given": ["Bartholomew"] }],
        "gender": "male",
        "birthDate": "2001-11-30",
        "telecom": [{ "system": "phone", "value": "+1 907 555 0199" }],
    });
    let res = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&parameters(stranger, vec![])),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["total"], 0, "{}", res.body);

    // The same person's relatives or strangers at the address are not duplicates.
    let neighbour = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Garcia", "given": ["Luis"] }],
        "gender": "male",
        "birthDate": "1990-01-15",
        "address": [{ "line": ["48 Pecan Ave"], "city": "Austin", "state": "TX", "postalCode": "78702" }],
    });
    let res = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&parameters(neighbour, vec![])),
    )
    .await;
    assert!(!res.ids().contains(&id), "{}", res.body);

    // Errors.
    let missing = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&json!({
            "resourceType": "Parameters",
            "parameter": [{ "name": "count", "valueInteger": 3 }],
        })),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.issue().0, "required");
    for body in [
        json!({ "resourceType": "Patient" }),
        parameters(json!({ "resourceType": "Practitioner" }), vec![]),
        parameters(
            typo.clone(),
            vec![json!({ "name": "count", "valueInteger": 0 })],
        ),
        parameters(
            typo.clone(),
            vec![json!({ "name": "colour", "valueString": "red" })],
        ),
        parameters(
            json!({ "resourceType": "Patient", "gender": "female" }),
            vec![],
        ),
    ] {
        let res = send(&app, call(Method::POST, "/Patient/$match", &t).json(&body)).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.body["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn related_persons_are_the_patients_contacts() {
    let app = TestApp::new().await;
    let t = token(&app, Role::Lead).await;
    let id = create(&app, &t, &zephyrine()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();

    let found = get_as(&app, &t, &format!("/RelatedPerson?patient=Patient/{id}")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["type"], "searchset");
    assert_eq!(found.body["total"], 2);
    assert_eq!(found.ids(), [format!("{id}-0"), format!("{id}-1")]);
    let bare = get_as(&app, &t, &format!("/RelatedPerson?patient={id}&_count=1")).await;
    assert_eq!(bare.body["total"], 2);
    assert_eq!(bare.ids(), [format!("{id}-0")]);
    assert!(bare.link("next").is_some());

    let spouse = get_as(&app, &t, &format!("/RelatedPerson/{id}-0")).await;
    assert_eq!(spouse.status, StatusCode::OK);
    let r = &spouse.body;
    assert_eq!(r["resourceType"], "RelatedPerson");
    assert_eq!(r["id"], format!("{id}-0"));
    assert_eq!(r["patient"]["reference"], format!("Patient/{id}"));
    assert_eq!(r["name"][0]["text"], "Kwame Osei");
    assert_eq!(
        r["relationship"][0]["coding"][0],
        json!({ "system": ROLE_CODE, "code": "SPS" })
    );
    assert_eq!(r["relationship"][1]["coding"][0]["code"], "C");
    assert_eq!(
        r["telecom"][0],
        json!({ "system": "phone", "value": "+12125550144" })
    );
    assert_eq!(r["extension"][0]["url"], GUARANTOR);
    assert!(r["meta"]["lastUpdated"].is_string());
    let neighbour = get_as(&app, &t, &format!("/RelatedPerson/{id}-1")).await;
    assert_eq!(neighbour.body["relationship"][0]["text"], "neighbour");
    assert!(neighbour.body.get("telecom").is_none());

    for missing in [
        format!("/RelatedPerson/{id}-2"),
        format!("/RelatedPerson/{id}-01"),
        format!("/RelatedPerson/{id}"),
        "/RelatedPerson/nobody-0".to_string(),
    ] {
        let res = get_as(&app, &t, &missing).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{missing}");
    }
    let nobody = get_as(&app, &t, "/RelatedPerson?patient=Patient/nobody").await;
    assert_eq!(nobody.body["total"], 0);
    let unscoped = get_as(&app, &t, "/RelatedPerson?_count=5").await;
    assert_eq!(unscoped.status, StatusCode::BAD_REQUEST);
    assert_eq!(unscoped.issue().0, "required");
    let wrong_kind = get_as(&app, &t, "/RelatedPerson?patient=Location/1").await;
    assert_eq!(wrong_kind.status, StatusCode::BAD_REQUEST);
    let put = send(
        &app,
        call(Method::PUT, &format!("/RelatedPerson/{id}-0"), &t).json(r),
    )
    .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);

    let audited = audit_events(
        &app,
        AuditFilter {
            patient_id: Some(id.clone()),
            resource_type: Some("RelatedPerson".into()),
            ..Default::default()
        },
    )
    .await;
    let succeeded = audited
        .iter()
        .filter(|e| e.entry.outcome == Outcome::Success)
        .count();
    assert_eq!(succeeded, 4, "two searches and two reads");
}

#[tokio::test]
async fn roles_without_patient_access_are_refused_and_audited() {
    let app = TestApp::new().await;
    let desk = token(&app, Role::FrontDesk).await;
    let id = create(&app, &desk, &zephyrine()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let match_body = json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "resource", "resource": zephyrine() }],
    });
    for role in [Role::Auditor, Role::Admin] {
        let t = token(&app, role).await;
        let calls = vec![
            call(Method::GET, "/Patient", &t),
            call(Method::GET, &format!("/Patient/{id}"), &t),
            call(Method::GET, &format!("/Patient/{id}/_history"), &t),
            call(Method::GET, &format!("/Patient/{id}/_history/1"), &t),
            call(Method::POST, "/Patient", &t).json(&zephyrine()),
            call(Method::PUT, &format!("/Patient/{id}"), &t).json(&zephyrine()),
            call(Method::POST, "/Patient/$match", &t).json(&match_body),
            call(Method::GET, &format!("/RelatedPerson/{id}-0"), &t),
            call(Method::GET, &format!("/RelatedPerson?patient={id}"), &t),
        ];
        let n = calls.len();
        for c in calls {
            let what = format!("{} {}", c.method, c.path);
            let res = send(&app, c).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{role}: {what}");
            assert_eq!(res.issue().0, "forbidden");
        }
        let denied = audit_events(
            &app,
            AuditFilter {
                actor_name: Some(format!("token:{role}-client")),
                ..Default::default()
            },
        )
        .await
        .into_iter()
        .filter(|e| e.entry.outcome == Outcome::Denied)
        .count();
        assert_eq!(denied, n, "{role}");
    }
    // Nothing was read out or changed.
    let read = get_as(&app, &desk, &format!("/Patient/{id}")).await;
    assert_eq!(read.body["meta"]["versionId"], "1");
}

#[tokio::test]
async fn every_read_search_result_and_write_is_audited_with_the_patient() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let id = create(&app, &t, &zephyrine()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/Patient/{id}");
    let current = get_as(&app, &t, &path).await.body;
    send(&app, call(Method::PUT, &path, &t).json(&current)).await;
    get_as(&app, &t, &format!("{path}/_history/1")).await;
    get_as(&app, &t, &format!("{path}/_history")).await;
    get_as(&app, &t, "/Patient?name=quill").await;

    let events = audit_events(
        &app,
        AuditFilter {
            patient_id: Some(id.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut seen: Vec<(Action, Option<String>)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.entry.outcome, Outcome::Success);
            assert_eq!(e.entry.resource_type.as_deref(), Some("Patient"));
            assert_eq!(e.entry.resource_id.as_deref(), Some(id.as_str()));
            (e.entry.action, e.entry.detail.clone())
        })
        .collect();
    seen.reverse();
    let actions: Vec<Action> = seen.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        actions,
        [
            Action::Create,
            Action::Read,
            Action::Update,
            Action::Read,
            Action::Read,
            Action::Search
        ]
    );

    // A search shows several patients: one event for each, beside the search's.
    let before = app.audit_count().await;
    let page = get_as(&app, &t, "/Patient?gender=female&_count=7").await;
    let ids = page.ids();
    assert_eq!(ids.len(), 7);
    assert_eq!(app.audit_count().await, before + 1 + 7);
    let recent = audit_events(&app, AuditFilter::default()).await;
    assert!(recent[0].entry.patient_id.is_none(), "the search itself");
    assert_eq!(recent[0].entry.action, Action::Search);
    let mut audited: Vec<String> = recent[1..=7]
        .iter()
        .map(|e| {
            assert_eq!(e.entry.action, Action::Search);
            e.entry.patient_id.clone().unwrap()
        })
        .collect();
    audited.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(audited, expected);

    // The patient's events are found by auditors through AuditEvent?patient.
    let auditor = token(&app, Role::Auditor).await;
    let trail = get_as(&app, &auditor, &format!("/AuditEvent?patient=Patient/{id}")).await;
    assert_eq!(trail.status, StatusCode::OK);
    assert!(trail.body["total"].as_i64().unwrap() >= 6);
}

#[tokio::test]
async fn a_merged_record_links_to_its_survivor_and_keeps_the_link_on_update() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;
    let survivor = create(&app, &t, &zephyrine()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let duplicate = create(
        &app,
        &t,
        &person("Zephy", "Quillfeather", "1962-03-14", "2125550123"),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = app
        .db
        .get::<Patient>(&app.org_id, &duplicate)
        .await
        .unwrap();
    let mut merged = stored.value.clone();
    merged.replaced_by = Some(survivor.clone());
    merged.active = false;
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.update(&duplicate, &merged, Some(stored.version), "test")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let path = format!("/Patient/{duplicate}");
    let read = get_as(&app, &t, &path).await.body;
    assert_eq!(read["active"], false);
    assert_eq!(
        read["link"],
        json!([{ "other": { "reference": format!("Patient/{survivor}") }, "type": "replaced-by" }])
    );
    // A client cannot remove the link (nor change the MRN) by updating.
    let mut edited = read.clone();
    edited.as_object_mut().unwrap().remove("link");
    edited["birthDate"] = json!("1962-03-15");
    let res = send(&app, call(Method::PUT, &path, &t).json(&edited)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["link"], read["link"]);
    assert_eq!(res.body["identifier"], read["identifier"]);
    assert_eq!(res.body["birthDate"], "1962-03-15");

    // $match leaves merged records out.
    let res = send(
        &app,
        call(Method::POST, "/Patient/$match", &t).json(&json!({
            "resourceType": "Parameters",
            "parameter": [{ "name": "resource", "resource": person("Zephy", "Quillfeather", "1962-03-15", "2125550123") }],
        })),
    )
    .await;
    assert!(!res.ids().contains(&duplicate), "{}", res.body);
}

#[tokio::test]
async fn the_capability_statement_describes_patient_match_and_related_person() {
    let app = TestApp::new().await;
    let res = answer(
        app.send(common::get(&format!("{BASE}/metadata"), None))
            .await,
    )
    .await;
    let resources = res.body["rest"][0]["resource"].as_array().unwrap().clone();
    let find = |t: &str| resources.iter().find(|r| r["type"] == t).unwrap().clone();
    let patient = find("Patient");
    let interactions: Vec<&str> = patient["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    for i in [
        "read",
        "vread",
        "update",
        "history-instance",
        "search-type",
        "create",
    ] {
        assert!(interactions.contains(&i), "{i}");
    }
    assert!(!interactions.contains(&"delete"));
    assert_eq!(patient["conditionalCreate"], true);
    assert_eq!(patient["operation"][0]["name"], "match");
    assert_eq!(
        patient["operation"][0]["definition"],
        "http://hl7.org/fhir/OperationDefinition/Patient-match"
    );
    let doc = patient["documentation"].as_str().unwrap();
    for url in [
        MRN,
        SMS,
        ALERT,
        PREFERRED,
        GUARANTOR,
        INTERPRETER,
        GENDER_IDENTITY,
        PRONOUNS,
    ] {
        assert!(doc.contains(url), "{url} is not documented");
    }
    let related = find("RelatedPerson");
    let interactions: Vec<&str> = related["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, ["read", "search-type"]);

    // Every advertised parameter answers.
    let t = token(&app, Role::FrontDesk).await;
    for (kind, resource) in [("Patient", &patient), ("RelatedPerson", &related)] {
        for p in resource["searchParam"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let value = match p["type"].as_str().unwrap() {
                "date" => "ge2020-01-01",
                "number" => "1",
                _ => "x",
            };
            let scope = if kind == "RelatedPerson" && name != "patient" {
                "patient=x&"
            } else {
                ""
            };
            let res = get_as(&app, &t, &format!("/{kind}?{scope}{name}={value}")).await;
            assert_eq!(res.status, StatusCode::OK, "{kind}?{name}: {}", res.body);
            assert_eq!(res.body["type"], "searchset");
        }
    }
}
