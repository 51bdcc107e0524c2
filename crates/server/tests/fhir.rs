//! The FHIR R4 API over HTTP, in-process, on the demo clinic.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_server::auth::issue_token;
use carefront_server::fhir::TIMEZONE_EXTENSION;
use carefront_store::AuditFilter;
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};

const BASE: &str = "/fhir/R4";
const NUCC: &str = "http://nucc.org/provider-taxonomy";

/// A bearer token for `role`, named `{role}-client` (audited as `token:{role}-client`).
async fn token(app: &TestApp, role: Role) -> String {
    let creator = AuditEntry::new("system", Action::TokenCreate, Outcome::Success);
    let name = format!("{role}-client");
    issue_token(&app.db, &app.org_id, &name, role, creator)
        .await
        .unwrap()
        .1
}

struct Call {
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(header::HeaderName, String)>,
    body: Option<String>,
}

fn call(method: Method, path: &str, token: &str) -> Call {
    Call {
        method,
        path: format!("{BASE}{path}"),
        token: Some(token.to_string()),
        headers: Vec::new(),
        body: None,
    }
}

impl Call {
    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.header(header::CONTENT_TYPE, "application/fhir+json")
    }

    fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn request(self) -> Request<Body> {
        let mut b = Request::builder().method(self.method).uri(self.path);
        if let Some(t) = self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (name, value) in self.headers {
            b = b.header(name, value);
        }
        b.body(self.body.map(Body::from).unwrap_or_default())
            .unwrap()
    }
}

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The OperationOutcome's first issue as (code, expression).
    fn issue(&self) -> (&str, &str) {
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        let issue = &self.body["issue"][0];
        (
            issue["code"].as_str().unwrap(),
            issue["expression"][0].as_str().unwrap_or_default(),
        )
    }

    fn expressions(&self) -> Vec<&str> {
        self.body["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["expression"][0].as_str())
            .collect()
    }

    fn link(&self, relation: &str) -> Option<String> {
        let links = self.body["link"].as_array()?;
        let link = links.iter().find(|l| l["relation"] == relation)?;
        let url = link["url"].as_str()?;
        Some(url[url.find(BASE).unwrap() + BASE.len()..].to_string())
    }
}

async fn answer(res: Response<Body>) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    if !body.is_null() {
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/fhir+json"),
            "{headers:?}"
        );
    }
    Answer {
        status,
        headers,
        body,
    }
}

async fn send(app: &TestApp, c: Call) -> Answer {
    answer(app.send(c.request()).await).await
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> Answer {
    send(app, call(Method::GET, path, token)).await
}

/// The id of the first resource a search finds.
async fn first_id(app: &TestApp, token: &str, search: &str) -> String {
    let found = get_as(app, token, search).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    found.body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn new_location(name: &str) -> Value {
    json!({
        "resourceType": "Location",
        "extension": [{ "url": TIMEZONE_EXTENSION, "valueCode": "America/Chicago" }],
        "status": "active",
        "name": name,
        "telecom": [{ "system": "phone", "value": "+1 312 555 0100" }],
        "address": {
            "line": ["100 Main St", "Suite 2"],
            "city": "Chicago",
            "state": "IL",
            "postalCode": "60601",
            "country": "US",
        },
    })
}

async fn audit_events(
    app: &TestApp,
    filter: AuditFilter,
) -> Vec<carefront_domain::audit::AuditEvent> {
    app.db
        .audit_events(&app.org_id, &filter, 0, 1000)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn metadata_is_public_and_lists_exactly_what_is_served() {
    let app = TestApp::new().await;
    let res = answer(app.send(get(&format!("{BASE}/metadata"), None)).await).await;
    assert_eq!(res.status, StatusCode::OK);
    let cs = &res.body;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert!(
        cs["format"]
            .as_array()
            .unwrap()
            .contains(&json!("application/fhir+json"))
    );
    let rest = &cs["rest"][0];
    assert!(
        rest["security"]["description"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );
    let types: Vec<&str> = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Organization",
            "Location",
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
            "Coverage",
            "HealthcareService",
            "Schedule",
            "Slot",
            "Appointment",
            "Encounter",
            "AuditEvent"
        ]
    );
    let resource = |t: &str| {
        rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == t)
            .unwrap()
            .clone()
    };
    let interactions = |t: &str| -> Vec<String> {
        resource(t)["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_string())
            .collect()
    };
    // Organization: the tenant (never created) and payers (created by admins).
    assert!(interactions("Organization").contains(&"create".to_string()));
    assert!(interactions("Location").contains(&"delete".to_string()));
    assert_eq!(interactions("AuditEvent"), ["read", "search-type"]);
    let location = resource("Location");
    assert!(
        location["documentation"]
            .as_str()
            .unwrap()
            .contains(TIMEZONE_EXTENSION)
    );
    let params: Vec<&str> = location["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["name", "address-state", "_id", "_lastUpdated", "_count"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }

    // Truthful: every advertised search parameter and resource answers.
    let admin = token(&app, Role::Admin).await;
    let auditor = token(&app, Role::Auditor).await;
    let desk = token(&app, Role::FrontDesk).await;
    for r in rest["resource"].as_array().unwrap() {
        let t = r["type"].as_str().unwrap();
        let who = match t {
            "AuditEvent" => &auditor,
            "Patient" | "RelatedPerson" | "Coverage" | "Appointment" | "Encounter" => &desk,
            _ => &admin,
        };
        for p in r["searchParam"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let value = match p["type"].as_str().unwrap() {
                "date" => "ge2020-01-01",
                "number" => "1",
                _ if name == "action" => "R",
                _ => "x",
            };
            // RelatedPerson is searched within one patient.
            let scope = match (t, name) {
                ("RelatedPerson", n) if n != "patient" => "patient=x&",
                _ => "",
            };
            let res = get_as(&app, who, &format!("/{t}?{scope}{name}={value}")).await;
            assert_eq!(res.status, StatusCode::OK, "{t}?{name}: {}", res.body);
            assert_eq!(res.body["type"], "searchset");
        }
    }

    let json_format = answer(
        app.send(get(&format!("{BASE}/metadata?_format=json"), None))
            .await,
    )
    .await;
    assert_eq!(json_format.status, StatusCode::OK);
    let xml = answer(
        app.send(get(&format!("{BASE}/metadata?_format=xml"), None))
            .await,
    )
    .await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(xml.issue().0, "not-supported");
}

#[tokio::test]
async fn search_pages_with_total_self_and_next_and_reads_by_version() {
    let app = TestApp::new().await;
    let t = token(&app, Role::FrontDesk).await;

    let page1 = get_as(&app, &t, "/Practitioner?_count=5").await;
    assert_eq!(page1.status, StatusCode::OK);
    assert_eq!(page1.body["type"], "searchset");
    assert_eq!(page1.body["total"], 12);
    assert_eq!(page1.body["entry"].as_array().unwrap().len(), 5);
    assert!(page1.link("self").unwrap().contains("_count=5"));
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some("/Practitioner?_count=5".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let page = get_as(&app, &t, &path).await;
        for e in page.body["entry"].as_array().unwrap() {
            assert!(e["fullUrl"].as_str().unwrap().starts_with("http"));
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        next = page.link("next");
        pages += 1;
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "paging returns every practitioner once");

    let count_only = get_as(&app, &t, "/Practitioner?_count=0").await;
    assert_eq!(count_only.body["total"], 12);
    assert!(count_only.body.get("entry").is_none());
    assert!(count_only.link("next").is_none());

    // Read and vread.
    let p = &page1.body["entry"][0]["resource"];
    let id = p["id"].as_str().unwrap();
    let read = get_as(&app, &t, &format!("/Practitioner/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header(header::ETAG), "W/\"1\"");
    assert_eq!(read.body["meta"]["versionId"], "1");
    assert_eq!(&read.body, p);
    let vread = get_as(&app, &t, &format!("/Practitioner/{id}/_history/1")).await;
    assert_eq!(vread.body, read.body);
    let missing = get_as(&app, &t, &format!("/Practitioner/{id}/_history/9")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Search parameters of each directory resource.
    let npi = p["identifier"][0]["value"].as_str().unwrap();
    assert_eq!(
        p["identifier"][0]["system"],
        "http://hl7.org/fhir/sid/us-npi"
    );
    let family = p["name"][0]["family"].as_str().unwrap();
    for q in [
        format!("identifier=http://hl7.org/fhir/sid/us-npi|{npi}"),
        format!("identifier={npi}"),
        format!("family={}", &family[..3].to_lowercase()),
        format!("name={family}&_id={id}"),
    ] {
        let found = get_as(&app, &t, &format!("/Practitioner?{q}")).await;
        let ids: Vec<&str> = found.body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&id), "{q}: {ids:?}");
    }
    let other_system = get_as(&app, &t, &format!("/Practitioner?identifier=urn:x|{npi}")).await;
    assert_eq!(other_system.body["total"], 0);

    let roles = get_as(
        &app,
        &t,
        &format!("/PractitionerRole?practitioner=Practitioner/{id}"),
    )
    .await;
    let role = &roles.body["entry"][0]["resource"];
    assert_eq!(
        role["practitioner"]["reference"],
        format!("Practitioner/{id}")
    );
    let coding = &role["specialty"][0]["coding"][0];
    assert_eq!(coding["system"], "http://nucc.org/provider-taxonomy");
    let code = coding["code"].as_str().unwrap();
    let location = role["location"][0]["reference"].as_str().unwrap();
    let by_both = get_as(
        &app,
        &t,
        &format!("/PractitionerRole?specialty={NUCC}|{code}&location={location}"),
    )
    .await;
    assert!(by_both.body["total"].as_i64().unwrap() >= 1);

    let loc_id = location.strip_prefix("Location/").unwrap();
    let loc = get_as(&app, &t, &format!("/Location/{loc_id}")).await;
    assert_eq!(loc.body["extension"][0]["url"], TIMEZONE_EXTENSION);
    assert!(
        loc.body["extension"][0]["valueCode"]
            .as_str()
            .unwrap()
            .contains('/')
    );
    let state = loc.body["address"]["state"].as_str().unwrap();
    let name = loc.body["name"].as_str().unwrap();
    let by_state = get_as(&app, &t, &format!("/Location?address-state={state}")).await;
    assert!(by_state.body["total"].as_i64().unwrap() >= 1);
    let by_name = get_as(&app, &t, &format!("/Location?name={}", &name[..4])).await;
    assert_eq!(
        by_name.body["total"], 3,
        "all demo locations share the brand"
    );
    let recent = get_as(&app, &t, "/Location?_lastUpdated=ge2020-01-01").await;
    assert_eq!(recent.body["total"], 3);
    let future = get_as(&app, &t, "/Location?_lastUpdated=gt2999").await;
    assert_eq!(future.body["total"], 0);

    // The tenant first, then the payer directory.
    let org = get_as(&app, &t, "/Organization").await;
    assert_eq!(
        org.body["total"],
        1 + carefront_domain::coverage::COMMON_PAYERS.len()
    );
    assert_eq!(org.body["entry"][0]["resource"]["id"], app.org_id);

    for bad in [
        "/Location?colour=red",
        "/Location?name:exact=x",
        "/Location?_count=-1",
    ] {
        let res = get_as(&app, &t, bad).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(res.issue().0, "invalid");
    }
}

#[tokio::test]
async fn create_update_with_if_match_delete_and_history() {
    let app = TestApp::new().await;
    let admin = token(&app, Role::Admin).await;

    let created = send(
        &app,
        call(Method::POST, "/Location", &admin).json(&new_location("Loop Clinic")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(
        created
            .header(header::LOCATION)
            .ends_with(&format!("{BASE}/Location/{id}/_history/1"))
    );
    assert_eq!(created.header(header::ETAG), "W/\"1\"");
    assert_eq!(created.body["meta"]["versionId"], "1");
    assert!(
        created.body["meta"]["lastUpdated"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(created.body["extension"][0]["valueCode"], "America/Chicago");
    assert_eq!(
        created.body["address"]["line"],
        json!(["100 Main St", "Suite 2"])
    );

    let mut changed = created.body.clone();
    changed["name"] = json!("Loop Clinic West");
    let path = format!("/Location/{id}");
    let updated = send(
        &app,
        call(Method::PUT, &path, &admin)
            .json(&changed)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.header(header::ETAG), "W/\"2\"");
    assert_eq!(updated.body["name"], "Loop Clinic West");

    changed["name"] = json!("Lost update");
    let stale = send(
        &app,
        call(Method::PUT, &path, &admin)
            .json(&changed)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.issue().0, "conflict");
    let current = get_as(&app, &admin, &path).await;
    assert_eq!(current.body["name"], "Loop Clinic West");
    assert_eq!(current.body["meta"]["versionId"], "2");

    let minimal = send(
        &app,
        call(Method::PUT, &path, &admin)
            .json(&updated.body)
            .header(header::HeaderName::from_static("prefer"), "return=minimal"),
    )
    .await;
    assert_eq!(minimal.status, StatusCode::OK);
    assert!(minimal.body.is_null());
    assert_eq!(minimal.header(header::ETAG), "W/\"3\"");

    let mut no_id = new_location("x");
    let res = send(&app, call(Method::PUT, &path, &admin).json(&no_id)).await;
    assert_eq!(
        res.status,
        StatusCode::BAD_REQUEST,
        "the body must carry the id"
    );
    assert_eq!(res.issue().1, "Location.id");
    no_id["id"] = json!("no-such-id");
    let res = send(
        &app,
        call(Method::PUT, "/Location/no-such-id", &admin).json(&no_id),
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no update-as-create"
    );

    let deleted = send(&app, call(Method::DELETE, &path, &admin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = get_as(&app, &admin, &path).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(gone.issue().0, "deleted");
    let again = send(&app, call(Method::DELETE, &path, &admin)).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let update_gone = send(&app, call(Method::PUT, &path, &admin).json(&updated.body)).await;
    assert_eq!(update_gone.status, StatusCode::GONE);

    let history = get_as(&app, &admin, &format!("{path}/_history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 4);
    let entries = history.body["entry"].as_array().unwrap();
    let methods: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "PUT", "POST"]);
    assert!(entries[0].get("resource").is_none());
    assert_eq!(entries[1]["resource"]["meta"]["versionId"], "3");
    let paged = get_as(&app, &admin, &format!("{path}/_history?_count=1")).await;
    assert_eq!(paged.body["entry"].as_array().unwrap().len(), 1);
    assert!(paged.link("next").is_some());
    let v2 = get_as(&app, &admin, &format!("{path}/_history/2")).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(v2.body["name"], "Loop Clinic West");
    let v4 = get_as(&app, &admin, &format!("{path}/_history/4")).await;
    assert_eq!(v4.status, StatusCode::GONE);

    let search = get_as(&app, &admin, &format!("/Location?_id={id}")).await;
    assert_eq!(search.body["total"], 0, "deleted resources are not found");

    // Writes are audited once, in their transaction, with the FHIR action.
    let writes = audit_events(
        &app,
        AuditFilter {
            resource_id: Some(id.clone()),
            ..Default::default()
        },
    )
    .await;
    let actions: Vec<(Action, Outcome)> = writes
        .iter()
        .filter(|e| e.entry.action != Action::Read)
        .map(|e| (e.entry.action, e.entry.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Update, Outcome::Failed),
            (Action::Delete, Outcome::Success),
            (Action::Delete, Outcome::Success),
            (Action::Update, Outcome::Failed),
            (Action::Update, Outcome::Success),
            (Action::Update, Outcome::Failed),
            (Action::Update, Outcome::Success),
            (Action::Create, Outcome::Success),
        ]
    );
    let create = writes.last().unwrap();
    assert_eq!(create.entry.actor_name, "token:admin-client");
    assert!(
        create
            .entry
            .detail
            .as_deref()
            .unwrap()
            .starts_with("FHIR create")
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_element_and_changes_nothing() {
    let app = TestApp::new().await;
    let admin = token(&app, Role::Admin).await;
    let id = first_id(&app, &admin, "/Location?_count=1").await;
    let path = format!("/Location/{id}");
    let before = get_as(&app, &admin, &path).await.body;
    let put = |body: String, content_type: &str| {
        let mut c = call(Method::PUT, &path, &admin).header(header::CONTENT_TYPE, content_type);
        c.body = Some(body);
        c
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = before.clone();
        f(&mut v);
        v.to_string()
    };
    let fhir_json = "application/fhir+json";
    let tz_expression = format!("Location.extension('{TIMEZONE_EXTENSION}')");
    let cases: Vec<(&str, Call, StatusCode, &str, &str)> = vec![
        (
            "malformed JSON",
            put("{\"resourceType\": \"Loc".into(), fhir_json),
            StatusCode::BAD_REQUEST,
            "structure",
            "",
        ),
        (
            "wrong resourceType",
            put(with(&|v| v["resourceType"] = json!("Patient")), fhir_json),
            StatusCode::BAD_REQUEST,
            "invalid",
            "",
        ),
        (
            "id mismatch",
            put(with(&|v| v["id"] = json!("other")), fhir_json),
            StatusCode::BAD_REQUEST,
            "invalid",
            "Location.id",
        ),
        (
            "bad ZIP",
            put(
                with(&|v| v["address"]["postalCode"] = json!("6060")),
                fhir_json,
            ),
            StatusCode::BAD_REQUEST,
            "value",
            "Location.address.postalCode",
        ),
        (
            "bad state",
            put(with(&|v| v["address"]["state"] = json!("XX")), fhir_json),
            StatusCode::BAD_REQUEST,
            "value",
            "Location.address.state",
        ),
        (
            "bad time zone",
            put(
                with(&|v| v["extension"][0]["valueCode"] = json!("Mars/Olympus")),
                "application/json",
            ),
            StatusCode::BAD_REQUEST,
            "value",
            &tz_expression,
        ),
        (
            "name not a string",
            put(with(&|v| v["name"] = json!(7)), fhir_json),
            StatusCode::BAD_REQUEST,
            "structure",
            "Location.name",
        ),
        (
            "unknown element",
            put(with(&|v| v["colour"] = json!("red")), fhir_json),
            StatusCode::BAD_REQUEST,
            "structure",
            "Location.colour",
        ),
        (
            "unknown nested element",
            put(
                with(&|v| v["address"]["district"] = json!("Loop")),
                fhir_json,
            ),
            StatusCode::BAD_REQUEST,
            "structure",
            "Location.address.district",
        ),
        (
            "bad status code",
            put(with(&|v| v["status"] = json!("closed")), fhir_json),
            StatusCode::BAD_REQUEST,
            "value",
            "Location.status",
        ),
        (
            "wrong content type",
            put(with(&|_| {}), "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "",
        ),
        (
            "missing content type",
            {
                let mut c = call(Method::PUT, &path, &admin);
                c.body = Some(with(&|_| {}));
                c
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "",
        ),
        (
            "too large",
            put(
                with(&|v| v["name"] = json!("x".repeat(carefront_server::MAX_BODY_BYTES))),
                fhir_json,
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-long",
            "",
        ),
        (
            "bad If-Match",
            put(with(&|_| {}), fhir_json).header(header::IF_MATCH, "yesterday"),
            StatusCode::BAD_REQUEST,
            "invalid",
            "",
        ),
    ];
    for (what, c, status, code, expression) in cases {
        let res = send(&app, c).await;
        assert_eq!(res.status, status, "{what}: {}", res.body);
        assert_eq!(res.issue().0, code, "{what}: {}", res.body);
        if !expression.is_empty() {
            assert!(
                res.expressions().contains(&expression),
                "{what}: {}",
                res.body
            );
        }
    }
    let after = get_as(&app, &admin, &path).await.body;
    assert_eq!(after, before, "nothing was written");
    let history = get_as(&app, &admin, &format!("{path}/_history")).await;
    assert_eq!(history.body["total"], 1, "no new version");

    // Several problems are reported together.
    let mut two = new_location("Two problems");
    two["address"]["postalCode"] = json!("1");
    two["extension"][0]["valueCode"] = json!("EST");
    let res = send(&app, call(Method::POST, "/Location", &admin).json(&two)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.expressions().len(), 2, "{}", res.body);
    let locations = get_as(&app, &admin, "/Location?_count=0").await;
    assert_eq!(locations.body["total"], 3, "nothing was created");

    // Practitioners: element names in FHIR terms.
    let bad_npi = json!({
        "resourceType": "Practitioner",
        "identifier": [{ "system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567890" }],
        "name": [{ "family": "Okafor", "given": ["Ada"] }],
        "gender": "woman",
    });
    let res = send(
        &app,
        call(Method::POST, "/Practitioner", &admin).json(&bad_npi),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.expressions(), ["Practitioner.gender"], "{}", res.body);
    let mut bad_npi = bad_npi;
    bad_npi["gender"] = json!("female");
    let res = send(
        &app,
        call(Method::POST, "/Practitioner", &admin).json(&bad_npi),
    )
    .await;
    assert_eq!(
        res.expressions(),
        ["Practitioner.identifier.where(system='http://hl7.org/fhir/sid/us-npi').value"]
    );
    let practitioners = get_as(&app, &admin, "/Practitioner?_count=0").await;
    assert_eq!(practitioners.body["total"], 12);
}

#[tokio::test]
async fn references_must_resolve_and_unique_or_referenced_records_conflict() {
    let app = TestApp::new().await;
    let admin = token(&app, Role::Admin).await;
    let location = first_id(&app, &admin, "/Location?_count=1").await;
    let practitioner =
        get_as(&app, &admin, "/Practitioner?_count=1").await.body["entry"][0]["resource"].clone();
    let practitioner_id = practitioner["id"].as_str().unwrap();
    let role = |p: &str, specialty: &str| {
        json!({
            "resourceType": "PractitionerRole",
            "practitioner": { "reference": format!("Practitioner/{p}") },
            "location": [{ "reference": format!("Location/{location}") }],
            "specialty": [{ "coding": [{ "system": NUCC, "code": specialty }] }],
        })
    };
    let dangling = send(
        &app,
        call(Method::POST, "/PractitionerRole", &admin).json(&role("nobody", "207Q00000X")),
    )
    .await;
    assert_eq!(
        dangling.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        dangling.body
    );
    assert_eq!(
        dangling.issue(),
        ("business-rule", "PractitionerRole.practitioner")
    );
    let bad_code = send(
        &app,
        call(Method::POST, "/PractitionerRole", &admin).json(&role(practitioner_id, "999")),
    )
    .await;
    assert_eq!(bad_code.status, StatusCode::BAD_REQUEST);
    assert!(bad_code.issue().1.starts_with("PractitionerRole.specialty"));
    let ok = send(
        &app,
        call(Method::POST, "/PractitionerRole", &admin).json(&role(practitioner_id, "207N00000X")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(
        ok.body["specialty"][0]["coding"][0]["display"],
        "Dermatology"
    );

    // The same NPI twice is a unique conflict.
    let mut twin = practitioner.clone();
    twin.as_object_mut().unwrap().remove("id");
    let res = send(
        &app,
        call(Method::POST, "/Practitioner", &admin).json(&twin),
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert_eq!(res.issue().0, "duplicate");

    // Records still referred to cannot be deleted.
    for path in [
        format!("/Practitioner/{practitioner_id}"),
        format!("/Location/{location}"),
    ] {
        let res = send(&app, call(Method::DELETE, &path, &admin)).await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{path}: {}", res.body);
        assert_eq!(get_as(&app, &admin, &path).await.status, StatusCode::OK);
    }

    // The tenant's Organization is updated, never created or deleted.
    let org_path = format!("/Organization/{}", app.org_id);
    let mut org = get_as(&app, &admin, &org_path).await.body;
    org["name"] = json!("Renamed Health");
    let res = send(
        &app,
        call(Method::PUT, &org_path, &admin)
            .json(&org)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["name"], "Renamed Health");
    assert_eq!(
        res.body["address"][0]["postalCode"],
        org["address"][0]["postalCode"]
    );
    let res = send(&app, call(Method::DELETE, &org_path, &admin).json(&org)).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.issue().0, "not-supported");
    // POST creates payers only: an organization without a payer ID is refused.
    let res = send(&app, call(Method::POST, "/Organization", &admin).json(&org)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.expressions().contains(&"Organization.identifier"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn tokens_and_roles_are_enforced_and_refusals_audited() {
    let app = TestApp::new().await;
    let no_token = answer(app.send(get(&format!("{BASE}/Location"), None)).await).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.issue().0, "login");
    assert!(
        no_token
            .header(header::WWW_AUTHENTICATE)
            .starts_with("Bearer")
    );

    let forged = format!("cft_{}.{}", app.org_id, "0".repeat(64));
    let res = get_as(&app, &forged, "/Location").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let refused = audit_events(
        &app,
        AuditFilter {
            action: Some(Action::TokenUse),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].entry.outcome, Outcome::Denied);

    let auditor = token(&app, Role::Auditor).await;
    let front_desk = token(&app, Role::FrontDesk).await;
    let res = get_as(&app, &auditor, "/Location").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.issue().0, "forbidden");
    let res = get_as(&app, &front_desk, "/AuditEvent").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = send(
        &app,
        call(Method::POST, "/Location", &front_desk).json(&new_location("Sneaky")),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let admin = token(&app, Role::Admin).await;
    assert_eq!(
        get_as(&app, &admin, "/Location?_count=0").await.body["total"],
        3
    );

    let denied: Vec<(String, Action, Option<String>)> = audit_events(&app, AuditFilter::default())
        .await
        .into_iter()
        .filter(|e| e.entry.outcome == Outcome::Denied && e.entry.action != Action::TokenUse)
        .map(|e| (e.entry.actor_name, e.entry.action, e.entry.resource_type))
        .collect();
    assert_eq!(
        denied,
        [
            (
                "token:front_desk-client".to_string(),
                Action::Create,
                Some("Location".to_string())
            ),
            (
                "token:front_desk-client".to_string(),
                Action::Search,
                Some("AuditEvent".to_string())
            ),
            (
                "token:auditor-client".to_string(),
                Action::Search,
                Some("Location".to_string())
            ),
        ]
    );
}

#[tokio::test]
async fn unknown_ids_and_routes_answer_operation_outcomes() {
    let app = TestApp::new().await;
    let t = token(&app, Role::Clinician).await;
    for path in [
        "/Location/no-such-id",
        "/Practitioner/no-such-id/_history",
        "/Patient/no-such-id",
        "/Nothing",
        "/Location/x/y/z",
        "",
    ] {
        let res = get_as(&app, &t, path).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.issue().0, "not-found", "{path}");
    }
    let anonymous = answer(app.send(get(&format!("{BASE}/Nothing"), None)).await).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.issue().0, "login");
    let other_org = get_as(&app, &t, "/Organization/some-other-org").await;
    assert_eq!(other_org.status, StatusCode::NOT_FOUND);
    let res = send(&app, call(Method::PATCH, "/Location", &t)).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.issue().0, "not-supported");
}

#[tokio::test]
async fn auditors_search_audit_events_by_agent_action_date_and_patient() {
    let app = TestApp::new().await;
    let front_desk = token(&app, Role::FrontDesk).await;
    let auditor = token(&app, Role::Auditor).await;
    let id = first_id(&app, &front_desk, "/Location?_count=1").await;
    get_as(&app, &front_desk, &format!("/Location/{id}")).await;

    let found = get_as(&app, &auditor, "/AuditEvent?agent=token:front_desk-client").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["total"], 2, "{}", found.body);
    let newest = &found.body["entry"][0]["resource"];
    assert_eq!(newest["resourceType"], "AuditEvent");
    assert_eq!(newest["action"], "R");
    assert_eq!(newest["outcome"], "0");
    assert_eq!(newest["subtype"][0]["code"], "read");
    assert_eq!(newest["agent"][0]["name"], "token:front_desk-client");
    assert_eq!(
        newest["agent"][0]["role"][0]["coding"][0]["code"],
        "front_desk"
    );
    assert_eq!(
        newest["entity"][0]["what"]["reference"],
        format!("Location/{id}")
    );
    assert!(newest["recorded"].as_str().unwrap().ends_with('Z'));

    let seq = newest["id"].as_str().unwrap();
    let read = get_as(&app, &auditor, &format!("/AuditEvent/{seq}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(&read.body, newest);
    assert_eq!(
        get_as(&app, &auditor, "/AuditEvent/999999").await.status,
        StatusCode::NOT_FOUND
    );

    let searches = get_as(
        &app,
        &auditor,
        "/AuditEvent?agent=token:front_desk-client&subtype=search",
    )
    .await;
    assert_eq!(searches.body["total"], 1);
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let by_date = get_as(
        &app,
        &auditor,
        &format!(
            "/AuditEvent?agent=token:front_desk-client&date=ge{today}&date=le{today}&action=R"
        ),
    )
    .await;
    assert_eq!(by_date.body["total"], 2, "read and search are both R");
    let none = get_as(
        &app,
        &auditor,
        "/AuditEvent?agent=token:front_desk-client&date=lt2001",
    )
    .await;
    assert_eq!(none.body["total"], 0);
    let creates = get_as(&app, &auditor, "/AuditEvent?action=C&_count=1").await;
    let total = creates.body["total"].as_i64().unwrap();
    assert!(total >= 3, "seeding and token creation: {total}");
    assert!(creates.link("next").is_some());
    let page2 = get_as(&app, &auditor, &creates.link("next").unwrap()).await;
    assert_ne!(
        page2.body["entry"][0]["resource"]["id"],
        creates.body["entry"][0]["resource"]["id"]
    );
    let patient = get_as(&app, &auditor, "/AuditEvent?patient=Patient/nobody").await;
    assert_eq!(patient.body["total"], 0);
    let bad = get_as(&app, &auditor, "/AuditEvent?action=X").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_authenticated_fhir_request_is_audited_exactly_once() {
    let app = TestApp::new().await;
    let admin = token(&app, Role::Admin).await;
    let auditor = token(&app, Role::Auditor).await;
    let id = first_id(&app, &admin, "/Location?_count=1").await;
    let path = format!("/Location/{id}");
    let current = get_as(&app, &admin, &path).await.body;
    let forged = format!("cft_{}.{}", app.org_id, "1".repeat(64));

    let before = app.audit_count().await;
    let requests: Vec<Call> = vec![
        call(Method::GET, &path, &admin),
        call(Method::GET, &format!("{path}/_history/1"), &admin),
        call(Method::GET, &format!("{path}/_history"), &admin),
        call(Method::GET, "/Location?name=a", &admin),
        call(Method::GET, "/Location/nope", &admin),
        call(Method::GET, "/Location?bogus=1", &admin),
        call(Method::GET, "/Nothing/here", &admin),
        call(Method::PUT, &path, &admin).json(&current),
        call(Method::PUT, &path, &admin).json(&json!({ "resourceType": "Location" })),
        call(Method::POST, "/Location", &admin).json(&new_location("Audited")),
        call(Method::POST, "/Organization", &admin).json(&current),
        call(Method::GET, "/Location", &auditor),
        call(Method::GET, "/AuditEvent?_count=1", &auditor),
        call(Method::GET, "/Location", &forged),
    ];
    let n = requests.len() as i64;
    for c in requests {
        send(&app, c).await;
    }
    assert_eq!(app.audit_count().await, before + n);
    // metadata is public and not audited.
    app.send(get(&format!("{BASE}/metadata"), None)).await;
    assert_eq!(app.audit_count().await, before + n);
}
