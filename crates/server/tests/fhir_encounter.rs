//! The visit flow over FHIR: each appointment's visit as an Encounter (its
//! status, history, rooms and appointment, following changes made to the
//! appointment), rooms as Locations with their board state, who may read
//! them, and the audit trail. Runs on SQLite, and on PostgreSQL with
//! CAREFRONT_TEST_POSTGRES.

mod common;
mod schedule_setup;

use axum::http::{Method, StatusCode};
use carefront_domain::Role;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::RoomKind;
use carefront_domain::visit::{RoomChange, RoomStatus, VisitStatus, VisitStep};

use carefront_store::{Actor, AuditFilter, FlowActor};
use common::TestApp;
use common::fhir_api::*;
use jiff::Timestamp;
use schedule_setup::{Derm, TYPE_ID, TYPE_NAME, dermatology, visit_starting_now};
use serde_json::{Value, json};

const VISIT_STATUS: &str =
    "http://carefront.example/fhir/StructureDefinition/encounter-visit-status";
const BED_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v2-0116";
const CANCEL: &str = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

/// Takes a visit step through the store, as the board does, at `at`.
async fn step(app: &TestApp, id: &str, to: VisitStatus, room: Option<&str>, at: Timestamp) {
    let step = VisitStep::new(to, room).unwrap();
    let by = FlowActor::Staff(Actor::system("desk"));
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.visit_step(id, &step, &by, at).await.unwrap();
    tx.commit().await.unwrap();
}

/// The ready exam rooms at the dermatologist's location.
async fn exam_rooms(app: &TestApp, d: &Derm) -> Vec<String> {
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    board
        .rooms
        .into_iter()
        .filter(|r| r.kind == RoomKind::Exam && r.state.status == RoomStatus::Ready)
        .map(|r| r.room_id)
        .collect()
}

/// The visit status in the extension of an Encounter or a statusHistory entry.
fn visit_status(v: &Value) -> &str {
    let ext = &v["extension"][0];
    assert_eq!(ext["url"], VISIT_STATUS, "{v}");
    ext["valueCoding"]["code"].as_str().unwrap()
}

/// A period's start and end as owned text.
type Span = (Option<String>, Option<String>);

fn period(v: &Value) -> (Option<&str>, Option<&str>) {
    (v["period"]["start"].as_str(), v["period"]["end"].as_str())
}

async fn encounter(app: &TestApp, token: &str, id: &str) -> Value {
    let res = get_as(app, token, &format!("/Encounter/{id}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["resourceType"], "Encounter");
    res.body
}

async fn room_location(app: &TestApp, token: &str, id: &str) -> Value {
    let res = get_as(app, token, &format!("/Location/{id}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body
}

fn bed_status(location: &Value) -> &str {
    assert_eq!(location["operationalStatus"]["system"], BED_STATUS);
    location["operationalStatus"]["code"].as_str().unwrap()
}

async fn ids(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let res = get_as(app, token, path).await;
    assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
    assert_eq!(
        res.body["total"].as_u64().unwrap() as usize,
        res.ids().len(),
        "{path}"
    );
    res.ids()
}

#[tokio::test]
async fn a_visit_through_two_rooms_is_an_encounter_with_its_history() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let desk = token(&app, Role::FrontDesk).await;
    let id = d.book(&app, 0, 9, 0).await;
    let later = d.book(&app, 1, 10, 0).await;
    let rooms = exam_rooms(&app, &d).await;
    let (a, b) = (&rooms[0], &rooms[1]);
    let (patient, site) = (&d.patients[0].0, &d.location);

    // Booked: planned, its site planned, nobody there yet.
    let planned = encounter(&app, &desk, &id).await;
    assert_eq!(planned["status"], "planned");
    assert_eq!(visit_status(&planned), "scheduled");
    assert_eq!(planned["location"][0]["status"], "planned");
    assert!(planned.get("period").is_none(), "{planned}");
    assert_eq!(bed_status(&room_location(&app, &desk, a).await), "U");

    let at = |h, m| d.at(h, m);
    step(&app, &id, VisitStatus::Arrived, None, at(8, 50)).await;
    step(&app, &id, VisitStatus::CheckedIn, None, at(8, 55)).await;
    step(&app, &id, VisitStatus::Roomed, Some(a), at(9, 0)).await;

    let roomed = encounter(&app, &desk, &id).await;
    assert_eq!(roomed["status"], "in-progress");
    assert_eq!(visit_status(&roomed), "roomed");
    assert_eq!(roomed["location"][0]["status"], "active");
    assert_eq!(
        roomed["location"][1]["location"]["reference"],
        format!("Location/{a}")
    );
    assert_eq!(roomed["location"][1]["status"], "active");
    let room_a = room_location(&app, &desk, a).await;
    assert_eq!(bed_status(&room_a), "O");
    assert_eq!(room_a["status"], "active");
    assert_eq!(room_a["partOf"]["reference"], format!("Location/{site}"));
    assert_eq!(room_a["physicalType"]["coding"][0]["code"], "ro");

    step(&app, &id, VisitStatus::Roomed, Some(b), at(9, 5)).await;
    assert_eq!(bed_status(&room_location(&app, &desk, a).await), "H");
    assert_eq!(bed_status(&room_location(&app, &desk, b).await), "O");
    step(&app, &id, VisitStatus::WithProvider, None, at(9, 10)).await;
    step(&app, &id, VisitStatus::Completed, None, at(9, 30)).await;
    assert_eq!(bed_status(&room_location(&app, &desk, b).await), "H");

    let done = encounter(&app, &desk, &id).await;
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["status"], "finished");
    assert_eq!(visit_status(&done), "completed");
    let s = |h, m| Some(at(h, m).to_string());
    let history: Vec<(&str, &str, Option<String>, Option<String>)> = done["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let (start, end) = period(h);
            (
                h["status"].as_str().unwrap(),
                visit_status(h),
                start.map(str::to_string),
                end.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("arrived", "arrived", s(8, 50), s(8, 55)),
            ("arrived", "checked-in", s(8, 55), s(9, 0)),
            ("in-progress", "roomed", s(9, 0), s(9, 5)),
            ("in-progress", "roomed", s(9, 5), s(9, 10)),
            ("in-progress", "with-provider", s(9, 10), s(9, 30)),
            ("finished", "completed", s(9, 30), None),
        ]
    );
    let owned = |(start, end): (Option<&str>, Option<&str>)| -> Span {
        (start.map(str::to_string), end.map(str::to_string))
    };
    assert_eq!(owned(period(&done)), (s(8, 50), s(9, 30)));
    let locations: Vec<(String, &str, Span)> = done["location"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location"]["reference"].as_str().unwrap().to_string(),
                l["status"].as_str().unwrap(),
                owned(period(l)),
            )
        })
        .collect();
    assert_eq!(
        locations,
        [
            (
                format!("Location/{site}"),
                "completed",
                (s(8, 50), s(9, 30))
            ),
            (format!("Location/{a}"), "completed", (s(9, 0), s(9, 5))),
            (format!("Location/{b}"), "completed", (s(9, 5), s(9, 30))),
        ]
    );
    assert_eq!(
        done["location"][1]["physicalType"]["coding"][0]["code"],
        "ro"
    );
    assert_eq!(
        done["appointment"][0]["reference"],
        format!("Appointment/{id}")
    );
    assert_eq!(done["subject"]["reference"], format!("Patient/{patient}"));
    assert_eq!(
        done["participant"][0]["individual"]["reference"],
        format!("Practitioner/{}", d.provider)
    );
    assert_eq!(done["class"]["code"], "AMB");
    assert_eq!(done["serviceType"]["coding"][0]["code"], TYPE_ID);
    assert_eq!(done["serviceType"]["coding"][0]["display"], TYPE_NAME);
    assert_eq!(
        done["serviceProvider"]["reference"],
        format!("Organization/{}", app.org_id)
    );
    // The appointment moved with the visit.
    let appointment = get_as(&app, &desk, &format!("/Appointment/{id}")).await;
    assert_eq!(appointment.body["status"], "fulfilled");

    // Searches.
    let day = d.day.to_string();
    let by = format!("practitioner=Practitioner/{}", d.provider);
    let both = [id.clone(), later.clone()];
    assert_eq!(
        ids(&app, &desk, &format!("/Encounter?patient={patient}")).await,
        [id.as_str()]
    );
    assert_eq!(
        ids(&app, &desk, &format!("/Encounter?date={day}&{by}")).await,
        both
    );
    assert_eq!(
        ids(
            &app,
            &desk,
            &format!("/Encounter?location=Location/{site}&date={day}")
        )
        .await,
        both
    );
    let next_day = d.day.tomorrow().unwrap();
    assert!(
        ids(&app, &desk, &format!("/Encounter?date=ge{next_day}&{by}"))
            .await
            .is_empty()
    );
    for (status, expected) in [
        ("finished", vec![id.clone()]),
        ("planned", vec![later.clone()]),
        (
            "http://hl7.org/fhir/encounter-status|planned",
            vec![later.clone()],
        ),
        ("arrived", vec![]),
        ("bogus", vec![]),
    ] {
        let path = format!("/Encounter?status={status}&{by}&date={day}");
        assert_eq!(ids(&app, &desk, &path).await, expected, "{path}");
    }
    let path = format!("/Encounter?status=finished&status=planned&{by}");
    assert!(
        ids(&app, &desk, &path).await.is_empty(),
        "repeated: both at once"
    );
    assert_eq!(
        ids(
            &app,
            &desk,
            &format!("/Encounter?appointment=Appointment/{id}")
        )
        .await,
        [id.as_str()]
    );
    assert_eq!(
        ids(&app, &desk, &format!("/Encounter?_id={later}")).await,
        [later.as_str()]
    );
    // A room finds the visits roomed there.
    assert_eq!(
        ids(&app, &desk, &format!("/Encounter?location={a}")).await,
        [id.as_str()]
    );
    assert!(
        ids(&app, &desk, &format!("/Encounter?location={}", rooms[2]))
            .await
            .is_empty()
    );
    let res = get_as(&app, &desk, "/Encounter?colour=red").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.issue().0, "invalid");

    // Reads and each search result are audited with the patient.
    let events = audit_events(
        &app,
        AuditFilter {
            resource_type: Some("Encounter".into()),
            resource_id: Some(id.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    let reads = events
        .iter()
        .filter(|e| e.entry.action == Action::Read)
        .count();
    let shown = events
        .iter()
        .filter(|e| e.entry.action == Action::Search)
        .count();
    assert_eq!(reads, 3, "every read");
    assert_eq!(shown, 6, "every search that showed it");
    assert!(
        events
            .iter()
            .all(|e| e.entry.patient_id.as_deref() == Some(patient.as_str())
                && e.entry.outcome == Outcome::Success)
    );
}

#[tokio::test]
async fn rooms_are_read_only_locations_of_their_site() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = token(&app, Role::Admin).await;
    let site = &d.location;
    let all = ids(&app, &admin, &format!("/Location?partof=Location/{site}")).await;
    let board = app.db.room_board(&app.org_id, site).await.unwrap();
    let mut expected: Vec<String> = board.rooms.iter().map(|r| r.room_id.clone()).collect();
    expected.sort();
    let mut found = all.clone();
    found.sort();
    assert_eq!(found, expected, "every room of the site, and only rooms");
    let first = board.rooms[0].room_id.clone();
    assert_eq!(
        ids(
            &app,
            &admin,
            &format!("/Location?partof={site}&operational-status={BED_STATUS}|U")
        )
        .await,
        all
    );
    let name: String = form_urlencoded::byte_serialize(board.rooms[0].name.as_bytes()).collect();
    let named = ids(
        &app,
        &admin,
        &format!("/Location?partof={site}&name={name}"),
    )
    .await;
    assert!(
        named.contains(&first) && named.len() < all.len(),
        "{named:?}"
    );
    // Sites are listed as before.
    let sites = get_as(&app, &admin, "/Location?_count=0").await;
    assert_eq!(sites.body["total"], 3);

    // Out of service: suspended, Closed.
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    let change = RoomChange::OutOfService {
        reason: "Broken light".into(),
    };
    tx.change_room(&first, &change, &Actor::system("lead"), Timestamp::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let closed = room_location(&app, &admin, &first).await;
    assert_eq!(closed["status"], "suspended");
    assert_eq!(bed_status(&closed), "C");
    assert_eq!(
        ids(&app, &admin, "/Location?operational-status=C").await,
        [first.as_str()]
    );
    let recent = format!(
        "/Location?operational-status=C&_lastUpdated=ge{}",
        d.day.yesterday().unwrap()
    );
    assert_eq!(ids(&app, &admin, &recent).await, [first.as_str()]);

    // Read-only: writes and versions are refused; a site is still written.
    let path = format!("/Location/{first}");
    let put = send(&app, call(Method::PUT, &path, &admin).json(&closed)).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED, "{}", put.body);
    assert_eq!(put.issue().0, "not-supported");
    for refused in [
        call(Method::DELETE, &path, &admin),
        call(Method::GET, &format!("{path}/_history"), &admin),
        call(Method::GET, &format!("{path}/_history/1"), &admin),
    ] {
        assert_eq!(
            send(&app, refused).await.status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
    assert_eq!(
        bed_status(&room_location(&app, &admin, &first).await),
        "C",
        "nothing changed"
    );
    let desk = token(&app, Role::FrontDesk).await;
    let put = send(&app, call(Method::PUT, &path, &desk).json(&closed)).await;
    assert_eq!(
        put.status,
        StatusCode::FORBIDDEN,
        "the role is refused first"
    );
    let auditor = token(&app, Role::Auditor).await;
    assert_eq!(
        get_as(&app, &auditor, &path).await.status,
        StatusCode::FORBIDDEN
    );
    let site_path = format!("/Location/{site}");
    let current = get_as(&app, &admin, &site_path).await.body;
    let put = send(&app, call(Method::PUT, &site_path, &admin).json(&current)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

#[tokio::test]
async fn appointment_changes_and_endings_show_in_the_encounter() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let desk = token(&app, Role::FrontDesk).await;

    // A no-show ended before it began.
    let missed = d.book(&app, 0, 9, 0).await;
    step(&app, &missed, VisitStatus::NoShow, None, d.at(9, 20)).await;
    let e = encounter(&app, &desk, &missed).await;
    assert_eq!(
        (e["status"].as_str(), visit_status(&e)),
        (Some("cancelled"), "no-show")
    );
    assert!(e.get("period").is_none());
    assert!(
        e["location"][0].get("status").is_none(),
        "the site was never used"
    );
    let appointment = get_as(&app, &desk, &format!("/Appointment/{missed}")).await;
    assert_eq!(appointment.body["status"], "noshow");

    // Left without being seen: the patient had come, so it finished.
    let left = d.book(&app, 1, 10, 0).await;
    step(&app, &left, VisitStatus::Arrived, None, d.at(9, 50)).await;
    step(
        &app,
        &left,
        VisitStatus::LeftWithoutBeingSeen,
        None,
        d.at(10, 15),
    )
    .await;
    let e = encounter(&app, &desk, &left).await;
    assert_eq!(
        (e["status"].as_str(), visit_status(&e)),
        (Some("finished"), "left-without-being-seen")
    );
    let span = (d.at(9, 50).to_string(), d.at(10, 15).to_string());
    assert_eq!(period(&e), (Some(span.0.as_str()), Some(span.1.as_str())));
    assert_eq!(e["location"][0]["status"], "completed");

    // Changed through the Appointment: an arrival, and a cancellation.
    let arriving = visit_starting_now(&app, &d, 2).await.0;
    let cancelled = d.book(&app, 3, 13, 0).await;
    let path = format!("/Appointment/{arriving}");
    let mut body = get_as(&app, &desk, &path).await.body;
    body["status"] = json!("arrived");
    let res = send(&app, call(Method::PUT, &path, &desk).json(&body)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let e = encounter(&app, &desk, &arriving).await;
    assert_eq!(
        (e["status"].as_str(), visit_status(&e)),
        (Some("arrived"), "arrived")
    );
    assert_eq!(e["location"][0]["status"], "active");

    let path = format!("/Appointment/{cancelled}");
    let mut body = get_as(&app, &desk, &path).await.body;
    body["status"] = json!("cancelled");
    body["cancelationReason"] = json!({ "coding": [{ "system": CANCEL, "code": "pat" }] });
    let res = send(&app, call(Method::PUT, &path, &desk).json(&body)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let e = encounter(&app, &desk, &cancelled).await;
    assert_eq!(
        (e["status"].as_str(), visit_status(&e)),
        (Some("cancelled"), "cancelled")
    );
    assert_eq!(e["statusHistory"].as_array().unwrap().len(), 1);

    let by = format!("practitioner={}&date={}", d.provider, d.day);
    let mut cancelled_ones = ids(&app, &desk, &format!("/Encounter?status=cancelled&{by}")).await;
    cancelled_ones.sort();
    let mut expected = vec![missed.clone(), cancelled.clone()];
    expected.sort();
    assert_eq!(cancelled_ones, expected);
    assert_eq!(
        ids(&app, &desk, &format!("/Encounter?status=finished&{by}")).await,
        [left]
    );
    let path = format!("/Encounter?status=arrived&practitioner={}", d.provider);
    assert_eq!(ids(&app, &desk, &path).await, [arriving]);
}

#[tokio::test]
async fn encounters_are_for_those_who_see_the_board() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let id = d.book(&app, 0, 9, 0).await;
    let path = format!("/Encounter/{id}");

    for role in [Role::FrontDesk, Role::Lead, Role::Clinician, Role::Billing] {
        let t = token(&app, role).await;
        assert_eq!(
            get_as(&app, &t, &path).await.status,
            StatusCode::OK,
            "{role}"
        );
    }
    for role in [Role::Admin, Role::Auditor] {
        let t = token(&app, role).await;
        for p in [
            path.clone(),
            format!("/Encounter?patient={}", d.patients[0].0),
        ] {
            let res = get_as(&app, &t, &p).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{role} {p}");
            assert_eq!(res.issue().0, "forbidden");
        }
    }
    let denied = audit_events(
        &app,
        AuditFilter {
            resource_type: Some("Encounter".into()),
            resource_id: Some(id.clone()),
            ..AuditFilter::default()
        },
    )
    .await
    .into_iter()
    .filter(|e| e.entry.outcome == Outcome::Denied)
    .count();
    assert_eq!(denied, 2, "each refused read is audited");

    let desk = token(&app, Role::FrontDesk).await;
    let res = get_as(&app, &desk, "/Encounter/no-such-visit").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.issue().0, "not-found");
    for (method, p) in [
        (Method::POST, "/Encounter".to_string()),
        (Method::PUT, path.clone()),
    ] {
        let res = send(
            &app,
            call(method, &p, &desk).json(&json!({ "resourceType": "Encounter" })),
        )
        .await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{p}");
        assert_eq!(res.issue().0, "not-supported");
    }

    // Listed in the CapabilityStatement with what it is searched by.
    let cs = answer(
        app.send(common::get(&format!("{BASE}/metadata"), None))
            .await,
    )
    .await;
    let encounter = cs.body["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Encounter")
        .unwrap()
        .clone();
    let interactions: Vec<&str> = encounter["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, ["read", "search-type"]);
    let params: Vec<&str> = encounter["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["patient", "date", "location", "status", "appointment"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    let location = cs.body["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Location")
        .unwrap()
        .clone();
    assert!(
        location["searchParam"]
            .to_string()
            .contains("operational-status")
    );
    // Truthful: every advertised parameter answers, whatever it is given.
    let admin = token(&app, Role::Admin).await;
    for (kind, resource, who) in [
        ("Encounter", &encounter, &desk),
        ("Location", &location, &admin),
    ] {
        for p in resource["searchParam"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let value = match p["type"].as_str().unwrap() {
                "date" => "ge2020-01-01",
                "number" => "1",
                _ => "x",
            };
            let res = get_as(&app, who, &format!("/{kind}?{name}={value}")).await;
            assert_eq!(res.status, StatusCode::OK, "{kind}?{name}: {}", res.body);
            assert_eq!(res.body["type"], "searchset");
        }
    }
}
