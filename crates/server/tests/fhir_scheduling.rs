//! The FHIR scheduling API (IHE ITI Scheduling): HealthcareService,
//! Schedule, Slot, Appointment, `$find`, `$hold` and `$book`, idempotency,
//! races for one slot, cancellation, rescheduling, searches with
//! `_include`, refusals and the audit trail. Runs on SQLite, and on
//! PostgreSQL with CAREFRONT_TEST_POSTGRES.

mod common;

use axum::http::{Method, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::Outcome;
use carefront_domain::directory::{Address, Location, Practitioner, PractitionerRole};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, AvailabilityBlock, Modality, OpeningHours,
    PatientEligibility, Template,
};
use carefront_store::{Actor, AppointmentQuery, AuditFilter, Page, new_id};
use common::TestApp;
use common::fhir_api::*;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::{Value, json};
use tower::ServiceExt;

const FM: &str = "207Q00000X";
const NUCC: &str = "http://nucc.org/provider-taxonomy";
const ZONE: &str = "America/New_York";
const TYPES: &str = "http://carefront.example/fhir/CodeSystem/appointment-type";
const OVERRIDE: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-override-reason";
const HOLD_EXPIRES: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-hold-expires";
const RESCHEDULED_FROM: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-rescheduled-from";
const DURATION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-type-duration";
const CANCEL: &str = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

/// The demo clinic plus a location of our own (New York, open 07–19
/// daily), a family-medicine practitioner with a template there (09–12 and
/// 13–17 every day, our type only) and a 30-minute "Follow-up" type.
struct Sched {
    app: TestApp,
    practitioner: String,
    location: String,
    kind: String,
    patients: Vec<String>,
    /// Tomorrow at the location.
    day: Date,
}

fn t(s: &str) -> Time {
    s.parse().unwrap()
}

async fn setup() -> Sched {
    let app = TestApp::new().await;
    let db = &app.db;
    let org = &app.org_id;
    let by = Actor::system("test");
    let mut tx = db.begin(org).await.unwrap();
    let location = Location {
        name: "Scheduling Test Clinic".into(),
        timezone: ZONE.into(),
        address: Address {
            line1: "1 Main St".into(),
            line2: None,
            city: "Albany".into(),
            state: "NY".into(),
            postal_code: "12207".into(),
            country: "US".into(),
        },
        phone: None,
        active: true,
    };
    let location = tx.create(&new_id(), &location, "t").await.unwrap().id;
    let practitioner = Practitioner {
        npi: None,
        prefix: None,
        given: "Ada".into(),
        family: "Scheduler".into(),
        suffix: Some("MD".into()),
        gender: None,
        phone: None,
        email: None,
        active: true,
    };
    let practitioner = tx.create(&new_id(), &practitioner, "t").await.unwrap().id;
    let role = PractitionerRole {
        practitioner_id: practitioner.clone(),
        location_id: location.clone(),
        specialty: FM.into(),
        active: true,
    };
    tx.create(&new_id(), &role, "t").await.unwrap();
    tx.commit().await.unwrap();

    let hours = (1..=7)
        .map(|w| OpeningHours {
            weekday: w,
            open: t("07:00"),
            close: t("19:00"),
        })
        .collect();
    let mut tx = db.begin(org).await.unwrap();
    tx.set_location_hours(&location, hours, &by).await.unwrap();
    tx.commit().await.unwrap();
    let kind = AppointmentType {
        id: String::new(),
        name: "Follow-up".into(),
        duration_minutes: 30,
        color: "#2a7ab0".into(),
        specialties: vec![FM.into()],
        practitioner_ids: vec![],
        resource_kind: None,
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: 0,
        max_days_ahead: 60,
        instructions: Some("Bring your medications.".into()),
        intake_form: None,
        active: true,
    };
    let mut tx = db.begin(org).await.unwrap();
    let kind = tx.create_appointment_type(kind, &by).await.unwrap().id;
    tx.commit().await.unwrap();
    let today = Timestamp::now()
        .to_zoned(TimeZone::get(ZONE).unwrap())
        .date();
    let blocks = (1..=7)
        .flat_map(|w| {
            [("09:00", "12:00"), ("13:00", "17:00")].map(|(s, e)| AvailabilityBlock {
                weekday: w,
                start: t(s),
                end: t(e),
                appointment_type_ids: vec![kind.clone()],
                overbook_limit: None,
            })
        })
        .collect();
    let template = Template {
        id: String::new(),
        practitioner_id: practitioner.clone(),
        location_id: location.clone(),
        effective_from: today.checked_sub(7.days()).unwrap(),
        effective_until: None,
        overbook_limit: 0,
        blocks,
    };
    let mut tx = db.begin(org).await.unwrap();
    tx.create_template(template, &by).await.unwrap();
    tx.commit().await.unwrap();
    let patients = db
        .search::<Patient>(
            org,
            &[],
            Page {
                offset: 0,
                count: 40,
            },
        )
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|p| p.id)
        .collect();
    Sched {
        app,
        practitioner,
        location,
        kind,
        patients,
        day: today.tomorrow().unwrap(),
    }
}

impl Sched {
    /// Tomorrow (plus `days`) at `hh:mm` at the location.
    fn at(&self, days: i64, hh: i8, mm: i8) -> Timestamp {
        let date = self.day.checked_add(days.days()).unwrap();
        TimeZone::get(ZONE)
            .unwrap()
            .to_timestamp(date.at(hh, mm, 0, 0))
            .unwrap()
    }

    fn appointment(&self, patient: &str, start: Timestamp) -> Value {
        json!({
            "resourceType": "Appointment",
            "status": "booked",
            "serviceType": [{ "coding": [{ "system": TYPES, "code": self.kind }] }],
            "reasonCode": [{ "text": "follow-up of blood pressure" }],
            "start": start.to_string(),
            "end": (start + SignedDuration::from_mins(30)).to_string(),
            "participant": [
                { "actor": { "reference": format!("Patient/{patient}") }, "status": "accepted" },
                { "actor": { "reference": format!("Practitioner/{}", self.practitioner) }, "status": "accepted" },
                { "actor": { "reference": format!("Location/{}", self.location) }, "status": "accepted" },
            ],
        })
    }

    /// Appointments of our practitioner that keep their time.
    async fn booked_count(&self) -> i64 {
        let query = AppointmentQuery {
            practitioner_id: Some(self.practitioner.clone()),
            statuses: vec![
                AppointmentStatus::Booked,
                AppointmentStatus::Pending,
                AppointmentStatus::Arrived,
            ],
            ..AppointmentQuery::default()
        };
        let page = Page {
            offset: 0,
            count: 0,
        };
        self.app
            .db
            .appointments(&self.app.org_id, &query, page)
            .await
            .unwrap()
            .1
    }

    /// Every appointment of our practitioner, whatever its status.
    async fn all_count(&self) -> i64 {
        let query = AppointmentQuery {
            practitioner_id: Some(self.practitioner.clone()),
            ..AppointmentQuery::default()
        };
        let page = Page {
            offset: 0,
            count: 0,
        };
        self.app
            .db
            .appointments(&self.app.org_id, &query, page)
            .await
            .unwrap()
            .1
    }

    fn find_path(&self, patient: &str, from: Timestamp, to: Timestamp) -> String {
        let q = form(&[
            ("start", &from.to_string()),
            ("end", &to.to_string()),
            (
                "practitioner",
                &format!("Practitioner/{}", self.practitioner),
            ),
            ("visit-type", &format!("{TYPES}|{}", self.kind)),
            ("patient", &format!("Patient/{patient}")),
        ]);
        format!("/Appointment/$find?{q}")
    }

    /// The proposal `$find` makes for `patient` at `start`.
    async fn proposal(&self, token: &str, patient: &str, start: Timestamp) -> String {
        let end = start + SignedDuration::from_mins(30);
        let res = get_as(&self.app, token, &self.find_path(patient, start, end)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let ids = res.ids();
        assert_eq!(ids.len(), 1, "{}", res.body);
        ids[0].clone()
    }

    fn slots_path(&self, from: Timestamp, to: Timestamp, status: Option<&str>) -> String {
        let mut pairs = vec![
            (
                "schedule.actor",
                format!("Practitioner/{}", self.practitioner),
            ),
            ("service-type", format!("{TYPES}|{}", self.kind)),
            ("start", format!("ge{from}")),
            ("start", format!("lt{to}")),
            ("_count", "100".into()),
        ];
        if let Some(s) = status {
            pairs.push(("status", s.into()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        format!("/Slot?{}", form(&pairs))
    }

    /// (start, status) of our practitioner's slots in `[from, to)`.
    async fn slots(&self, token: &str, from: Timestamp, to: Timestamp) -> Vec<(String, String)> {
        let res = get_as(&self.app, token, &self.slots_path(from, to, None)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        entries(&res)
            .iter()
            .map(|r| {
                (
                    r["start"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn entries(res: &Answer) -> Vec<Value> {
    res.body["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn reference(id: &str) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "appointment-reference", "valueReference": { "reference": format!("Appointment/{id}") } }],
    })
}

fn with_resource(resource: Value) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "appointment-resource", "resource": resource }],
    })
}

fn extension<'a>(resource: &'a Value, url: &str) -> Option<&'a Value> {
    resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url)
}

fn actors(resource: &Value) -> Vec<String> {
    resource["participant"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["actor"]["reference"].as_str().map(str::to_string))
        .collect()
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Answer {
    send(app, call(Method::POST, path, token).json(body)).await
}

async fn post_keyed(app: &TestApp, token: &str, path: &str, key: &str, body: &Value) -> Answer {
    let c = call(Method::POST, path, token)
        .json(body)
        .header(header::HeaderName::from_static("idempotency-key"), key);
    send(app, c).await
}

async fn put(app: &TestApp, token: &str, path: &str, body: &Value) -> Answer {
    send(app, call(Method::PUT, path, token).json(body)).await
}

#[tokio::test]
async fn find_proposes_slots_then_hold_and_book_take_one() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let patient = s.patients[0].clone();
    let (from, to) = (s.at(0, 0, 0), s.at(1, 0, 0));

    // $find by GET: every free slot of the day, earliest first.
    let path = format!("{}&_count=5", s.find_path(&patient, from, to));
    let found = get_as(&s.app, &desk, &path).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["type"], "searchset");
    assert_eq!(found.body["total"], 14, "6 slots 09-12 and 8 slots 13-17");
    let proposals = entries(&found);
    assert_eq!(proposals.len(), 5);
    let first = &proposals[0];
    assert_eq!(first["status"], "proposed");
    assert_eq!(first["start"], s.at(0, 9, 0).to_string());
    assert_eq!(first["end"], s.at(0, 9, 30).to_string());
    assert_eq!(first["minutesDuration"], 30);
    assert_eq!(first["serviceType"][0]["coding"][0]["code"], s.kind);
    assert_eq!(
        actors(first),
        [
            format!("Patient/{patient}"),
            format!("Practitioner/{}", s.practitioner),
            format!("Location/{}", s.location),
        ]
    );
    let proposal = first["id"].as_str().unwrap().to_string();
    assert!(proposal.len() <= 64, "FHIR ids are at most 64 characters");
    // A proposal can be read back while it stands.
    let read = get_as(&s.app, &desk, &format!("/Appointment/{proposal}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["status"], "proposed");

    // $find by POST with Parameters finds the same.
    let params = json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "start", "valueDateTime": from.to_string() },
            { "name": "end", "valueDateTime": to.to_string() },
            { "name": "practitioner", "valueReference": { "reference": format!("Practitioner/{}", s.practitioner) } },
            { "name": "visit-type", "valueCoding": { "system": TYPES, "code": s.kind } },
            { "name": "specialty", "valueCoding": { "system": NUCC, "code": FM } },
            { "name": "patient-reference", "valueReference": { "reference": format!("Patient/{patient}") } },
        ],
    });
    let posted = post(&s.app, &desk, "/Appointment/$find", &params).await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert_eq!(posted.body["total"], 14);
    assert_eq!(posted.ids()[0], proposal);

    // $hold: a pending appointment with the hold's expiry; the slot is
    // busy-tentative meanwhile.
    let held = post(&s.app, &desk, "/Appointment/$hold", &reference(&proposal)).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    assert_eq!(held.body["resourceType"], "Bundle");
    let hold = entries(&held)[0].clone();
    assert_eq!(hold["status"], "pending");
    let hold_id = hold["id"].as_str().unwrap().to_string();
    assert!(hold_id.starts_with("hold-"), "{hold_id}");
    let expires: Timestamp = extension(&hold, HOLD_EXPIRES).unwrap()["valueInstant"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > Timestamp::now());
    assert!(expires <= Timestamp::now() + SignedDuration::from_mins(6));
    let slots = s.slots(&desk, s.at(0, 9, 0), s.at(0, 10, 0)).await;
    assert_eq!(
        slots,
        [
            (s.at(0, 9, 0).to_string(), "busy-tentative".to_string()),
            (s.at(0, 9, 30).to_string(), "free".to_string()),
        ]
    );
    let read = get_as(&s.app, &desk, &format!("/Appointment/{hold_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["status"], "pending");
    // The proposal of a held slot is gone.
    let read = get_as(&s.app, &desk, &format!("/Appointment/{proposal}")).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);

    // $book the hold: booked, audited once with the patient.
    let before = s.app.audit_count().await;
    let booked = post(&s.app, &desk, "/Appointment/$book", &reference(&hold_id)).await;
    assert_eq!(booked.status, StatusCode::OK, "{}", booked.body);
    assert_eq!(s.app.audit_count().await, before + 1);
    let appointment = entries(&booked)[0].clone();
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["meta"]["versionId"], "1");
    let id = appointment["id"].as_str().unwrap().to_string();
    assert!(
        booked
            .header(header::CONTENT_LOCATION)
            .ends_with(&format!("/Appointment/{id}/_history/1"))
    );
    let events = audit_events(
        &s.app,
        AuditFilter {
            resource_id: Some(id.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].entry.patient_id.as_deref(),
        Some(patient.as_str())
    );
    assert_eq!(events[0].entry.outcome, Outcome::Success);

    let read = get_as(&s.app, &desk, &format!("/Appointment/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header(header::ETAG), "W/\"1\"");
    assert_eq!(read.body["start"], s.at(0, 9, 0).to_string());
    assert_eq!(read.body["reasonCode"], Value::Null);
    let slot_ref = read.body["slot"][0]["reference"].as_str().unwrap();
    let slot = get_as(&s.app, &desk, &format!("/{slot_ref}")).await;
    assert_eq!(slot.status, StatusCode::OK, "{}", slot.body);
    assert_eq!(slot.body["status"], "busy");
    let slots = s.slots(&desk, s.at(0, 9, 0), s.at(0, 9, 30)).await;
    assert_eq!(slots, [(s.at(0, 9, 0).to_string(), "busy".to_string())]);

    // The hold is used up.
    let again = post(&s.app, &desk, "/Appointment/$book", &reference(&hold_id)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    assert_eq!(s.booked_count().await, 1);

    // $book straight from a proposal, with a reason from the resource.
    let proposal = s.proposal(&desk, &s.patients[1], s.at(0, 9, 30)).await;
    let mut resource = s.appointment(&s.patients[1], s.at(0, 9, 30));
    resource["id"] = json!(proposal);
    resource["status"] = json!("proposed");
    let booked = post(
        &s.app,
        &desk,
        "/Appointment/$book",
        &with_resource(resource),
    )
    .await;
    assert_eq!(booked.status, StatusCode::OK, "{}", booked.body);
    let appointment = entries(&booked)[0].clone();
    assert_eq!(
        appointment["reasonCode"][0]["text"],
        "follow-up of blood pressure"
    );
    assert_eq!(s.booked_count().await, 2);
}

#[tokio::test]
async fn idempotency_keys_return_the_first_result_and_book_nothing_twice() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let body = s.appointment(&s.patients[0], s.at(0, 10, 0));

    let first = post_keyed(&s.app, &desk, "/Appointment", "retry-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let second = post_keyed(&s.app, &desk, "/Appointment", "retry-1", &body).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(first.body["id"], second.body["id"]);
    assert_eq!(second.body["meta"]["versionId"], "1");
    assert_eq!(s.booked_count().await, 1);
    // The same key for another request is a conflict.
    let other = s.appointment(&s.patients[0], s.at(0, 10, 30));
    let reused = post_keyed(&s.app, &desk, "/Appointment", "retry-1", &other).await;
    assert_eq!(reused.status, StatusCode::CONFLICT, "{}", reused.body);
    assert_eq!(reused.issue().0, "conflict");
    // Without a key the slot is simply taken.
    let taken = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(s.booked_count().await, 1);

    // $book from a proposal, twice with one key.
    let proposal = s.proposal(&desk, &s.patients[1], s.at(0, 11, 0)).await;
    let first = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$book",
        "retry-2",
        &reference(&proposal),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$book",
        "retry-2",
        &reference(&proposal),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(first.ids(), second.ids());
    assert_eq!(s.booked_count().await, 2);

    // $hold twice with one key: one hold; a second hold without a key is
    // refused because the first keeps the slot.
    let proposal = s.proposal(&desk, &s.patients[2], s.at(0, 13, 0)).await;
    let first = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$hold",
        "retry-3",
        &reference(&proposal),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$hold",
        "retry-3",
        &reference(&proposal),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(first.ids(), second.ids());
    let unkeyed = post(&s.app, &desk, "/Appointment/$hold", &reference(&proposal)).await;
    assert_eq!(unkeyed.status, StatusCode::CONFLICT, "{}", unkeyed.body);
    let holds = s
        .app
        .db
        .live_holds(
            &s.app.org_id,
            s.at(0, 0, 0),
            s.at(1, 0, 0),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(holds.len(), 1);

    // $book of the hold, twice with one key.
    let hold_id = first.ids()[0].clone();
    let booked = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$book",
        "retry-4",
        &reference(&hold_id),
    )
    .await;
    assert_eq!(booked.status, StatusCode::OK, "{}", booked.body);
    let again = post_keyed(
        &s.app,
        &desk,
        "/Appointment/$book",
        "retry-4",
        &reference(&hold_id),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(booked.ids(), again.ids());
    assert_eq!(s.booked_count().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_bookings_of_one_slot_make_one_appointment() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let start = s.at(0, 14, 0);
    let mut requests = Vec::new();
    for i in 0..8 {
        let body = s.appointment(&s.patients[i], start);
        requests.push(
            call(Method::POST, "/Appointment", &desk)
                .json(&body)
                .request(),
        );
    }
    for i in 8..16 {
        let proposal = s.proposal(&desk, &s.patients[i], start).await;
        requests.push(
            call(Method::POST, "/Appointment/$book", &desk)
                .json(&reference(&proposal))
                .request(),
        );
    }
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let router = s.app.app.clone();
            tokio::spawn(async move { answer(router.oneshot(req).await.unwrap()).await })
        })
        .collect();
    let mut won = 0;
    let mut lost = 0;
    for task in tasks {
        let res = task.await.unwrap();
        match res.status {
            StatusCode::CREATED | StatusCode::OK => won += 1,
            StatusCode::CONFLICT => {
                assert_eq!(res.issue().0, "conflict", "{}", res.body);
                lost += 1;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    assert_eq!((won, lost), (1, 15));
    assert_eq!(s.booked_count().await, 1);
    assert_eq!(s.all_count().await, 1);
}

#[tokio::test]
async fn updates_cancel_reschedule_and_refuse_what_the_life_cycle_forbids() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let start = s.at(0, 15, 0);
    let created = post(
        &s.app,
        &desk,
        "/Appointment",
        &s.appointment(&s.patients[0], start),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let window = (start, s.at(0, 15, 30));
    assert_eq!(
        s.slots(&desk, window.0, window.1).await,
        [(start.to_string(), "busy".to_string())]
    );

    // Arrived a day early: refused by the life cycle, naming status.
    let mut arrived = created.body.clone();
    arrived["status"] = json!("arrived");
    let early = put(&s.app, &desk, &format!("/Appointment/{id}"), &arrived).await;
    assert_eq!(
        early.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        early.body
    );
    assert_eq!(early.issue().1, "Appointment.status");
    // Two changes at once are refused.
    let mut both = created.body.clone();
    both["status"] = json!("cancelled");
    both["comment"] = json!("called to cancel");
    let refused = put(&s.app, &desk, &format!("/Appointment/{id}"), &both).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    // A stale If-Match.
    let stale = send(
        &s.app,
        call(Method::PUT, &format!("/Appointment/{id}"), &desk)
            .json(&created.body)
            .header(header::IF_MATCH, "W/\"7\""),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);

    // Cancel with a reason: the slot is free again.
    let mut cancelled = created.body.clone();
    cancelled["status"] = json!("cancelled");
    cancelled["cancelationReason"] = json!({ "coding": [{ "system": CANCEL, "code": "pat" }] });
    let before = s.app.audit_count().await;
    let res = send(
        &s.app,
        call(Method::PUT, &format!("/Appointment/{id}"), &desk)
            .json(&cancelled)
            .header(header::IF_MATCH, "W/\"1\""),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(s.app.audit_count().await, before + 1);
    assert_eq!(res.body["status"], "cancelled");
    assert_eq!(res.body["meta"]["versionId"], "2");
    assert_eq!(res.body["cancelationReason"]["coding"][0]["code"], "pat");
    assert_eq!(
        s.slots(&desk, window.0, window.1).await,
        [(start.to_string(), "free".to_string())]
    );
    let free = get_as(
        &s.app,
        &desk,
        &s.slots_path(window.0, window.1, Some("free")),
    )
    .await;
    assert_eq!(free.body["total"], 1);
    // A cancelled appointment stays cancelled.
    let mut revived = res.body.clone();
    revived["status"] = json!("booked");
    let res = put(&s.app, &desk, &format!("/Appointment/{id}"), &revived).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    let history = get_as(&s.app, &desk, &format!("/Appointment/{id}/_history")).await;
    assert_eq!(history.body["total"], 2);
    let v1 = get_as(&s.app, &desk, &format!("/Appointment/{id}/_history/1")).await;
    assert_eq!(v1.body["status"], "booked");

    // Reschedule by changing the start: the answer is the new appointment,
    // the old one is cancelled as rescheduled.
    let created = post(
        &s.app,
        &desk,
        "/Appointment",
        &s.appointment(&s.patients[1], s.at(0, 15, 30)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let old = created.body["id"].as_str().unwrap().to_string();
    let mut moved = created.body.clone();
    moved["start"] = json!(s.at(0, 16, 0).to_string());
    moved["end"] = json!(s.at(0, 16, 30).to_string());
    let res = put(&s.app, &desk, &format!("/Appointment/{old}"), &moved).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let new = res.body["id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(res.body["status"], "booked");
    assert_eq!(res.body["start"], s.at(0, 16, 0).to_string());
    assert_eq!(
        extension(&res.body, RESCHEDULED_FROM).unwrap()["valueReference"]["reference"],
        format!("Appointment/{old}")
    );
    assert!(
        res.header(header::CONTENT_LOCATION)
            .ends_with(&format!("/Appointment/{new}/_history/1"))
    );
    let gone = get_as(&s.app, &desk, &format!("/Appointment/{old}")).await;
    assert_eq!(gone.body["status"], "cancelled");
    assert_eq!(gone.body["cancelationReason"]["text"], "Rescheduled");
    assert_eq!(
        s.slots(&desk, s.at(0, 15, 30), s.at(0, 16, 30)).await,
        [
            (s.at(0, 15, 30).to_string(), "free".to_string()),
            (s.at(0, 16, 0).to_string(), "busy".to_string()),
        ]
    );
    // A wrong end is refused naming it.
    let mut bad = res.body.clone();
    bad["start"] = json!(s.at(0, 16, 30).to_string());
    bad["end"] = json!(s.at(0, 16, 45).to_string());
    let res = put(&s.app, &desk, &format!("/Appointment/{new}"), &bad).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.end");
    assert_eq!(s.booked_count().await, 1);
}

#[tokio::test]
async fn appointments_are_searched_by_patient_and_date_with_includes_and_pages() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let patient = &s.patients[3];
    for start in [s.at(0, 9, 0), s.at(0, 9, 30), s.at(1, 9, 0)] {
        let res = post(
            &s.app,
            &desk,
            "/Appointment",
            &s.appointment(patient, start),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    let other = post(
        &s.app,
        &desk,
        "/Appointment",
        &s.appointment(&s.patients[4], s.at(0, 10, 0)),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED);

    let q = form(&[
        ("patient", &format!("Patient/{patient}")),
        ("date", &format!("ge{}", s.day)),
        ("date", &format!("lt{}", s.day.tomorrow().unwrap())),
        ("_include", "Appointment:patient"),
        ("_include", "Appointment:practitioner"),
        ("_count", "1"),
    ]);
    let before = audit_events(
        &s.app,
        AuditFilter {
            patient_id: Some(patient.clone()),
            ..AuditFilter::default()
        },
    )
    .await
    .len();
    let page = get_as(&s.app, &desk, &format!("/Appointment?{q}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["total"], 2);
    let all = page.body["entry"].as_array().unwrap();
    let modes: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["resource"]["resourceType"].as_str().unwrap(),
                e["search"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("Appointment", "match"),
            ("Patient", "include"),
            ("Practitioner", "include")
        ]
    );
    assert_eq!(all[0]["resource"]["start"], s.at(0, 9, 0).to_string());
    assert_eq!(all[1]["resource"]["id"], patient.as_str());
    assert_eq!(all[2]["resource"]["id"], s.practitioner.as_str());
    // The appointment and the included patient are audited with the patient.
    let after = audit_events(
        &s.app,
        AuditFilter {
            patient_id: Some(patient.clone()),
            ..AuditFilter::default()
        },
    )
    .await
    .len();
    assert_eq!(after, before + 2);

    let next = page.link("next").expect("a next page");
    let page2 = get_as(&s.app, &desk, &next).await;
    assert_eq!(page2.status, StatusCode::OK, "{}", page2.body);
    assert_eq!(
        page2.body["entry"][0]["resource"]["start"],
        s.at(0, 9, 30).to_string()
    );
    assert!(page2.link("next").is_none());

    let by_practitioner = get_as(
        &s.app,
        &desk,
        &format!(
            "/Appointment?practitioner={}&status=booked&_count=0",
            s.practitioner
        ),
    )
    .await;
    assert_eq!(by_practitioner.body["total"], 4);
    let by_location = get_as(
        &s.app,
        &desk,
        &format!(
            "/Appointment?location=Location/{}&status=cancelled",
            s.location
        ),
    )
    .await;
    assert_eq!(by_location.body["total"], 0);
    let bad = get_as(&s.app, &desk, "/Appointment?_include=Appointment:device").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn slots_schedules_and_services_are_derived_and_read_back() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let admin = token(&s.app, Role::Admin).await;
    let (from, to) = (s.at(0, 0, 0), s.at(1, 0, 0));
    let res = get_as(&s.app, &admin, &s.slots_path(from, to, None)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["total"], 14);
    let slots = entries(&res);
    let first = &slots[0];
    assert_eq!(first["status"], "free");
    assert_eq!(first["start"], s.at(0, 9, 0).to_string());
    assert_eq!(first["serviceType"][0]["coding"][0]["display"], "Follow-up");
    assert_eq!(first["specialty"][0]["coding"][0]["code"], FM);
    assert!(
        first["comment"]
            .as_str()
            .unwrap()
            .contains("09:00 to 09:30")
    );
    let schedule = first["schedule"]["reference"].as_str().unwrap().to_string();
    for slot in &slots {
        assert!(slot["id"].as_str().unwrap().len() <= 64);
        assert_eq!(slot["schedule"]["reference"], schedule.as_str());
    }
    let last = &slots[13];
    assert_eq!(last["start"], s.at(0, 16, 30).to_string());
    // A slot reads back by its id.
    let slot_id = first["id"].as_str().unwrap();
    let read = get_as(&s.app, &desk, &format!("/Slot/{slot_id}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(&read.body, first);
    assert_eq!(
        get_as(&s.app, &desk, "/Slot/not.a.slot.id").await.status,
        StatusCode::NOT_FOUND
    );

    // By schedule, by location, by specialty.
    let q = form(&[
        ("schedule", &schedule),
        ("start", &format!("ge{from}")),
        ("start", &format!("lt{to}")),
        ("_count", "0"),
    ]);
    assert_eq!(
        get_as(&s.app, &desk, &format!("/Slot?{q}")).await.body["total"],
        14
    );
    let q = form(&[
        ("schedule.actor", &format!("Location/{}", s.location)),
        ("specialty", &format!("{NUCC}|{FM}")),
        ("start", &format!("ge{from}")),
        ("start", &format!("lt{to}")),
        ("_count", "0"),
    ]);
    assert_eq!(
        get_as(&s.app, &desk, &format!("/Slot?{q}")).await.body["total"],
        14
    );
    let q = form(&[
        (
            "schedule.actor",
            &format!("Practitioner/{}", s.practitioner),
        ),
        ("specialty", "207N00000X"),
        ("start", &format!("ge{from}")),
        ("_count", "0"),
    ]);
    assert_eq!(
        get_as(&s.app, &desk, &format!("/Slot?{q}")).await.body["total"],
        0
    );

    // More than 31 days is refused naming start.
    let q = form(&[
        (
            "schedule.actor",
            &format!("Practitioner/{}", s.practitioner),
        ),
        ("start", &format!("ge{from}")),
        (
            "start",
            &format!("lt{}", s.day.checked_add(40.days()).unwrap()),
        ),
    ]);
    let wide = get_as(&s.app, &desk, &format!("/Slot?{q}")).await;
    assert_eq!(wide.status, StatusCode::BAD_REQUEST);
    assert_eq!(wide.issue().1, "Slot.start");
    assert!(
        wide.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("'start'")
    );

    // The schedule: practitioner and location, from the template.
    let read = get_as(&s.app, &admin, &format!("/{schedule}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let sched = &read.body;
    assert_eq!(sched["active"], true);
    assert_eq!(
        actors(
            &json!({ "participant": sched["actor"].as_array().unwrap().iter().map(|a| json!({ "actor": a })).collect::<Vec<_>>() })
        ),
        [
            format!("Practitioner/{}", s.practitioner),
            format!("Location/{}", s.location)
        ]
    );
    assert_eq!(sched["serviceType"][0]["coding"][0]["code"], s.kind);
    assert_eq!(sched["specialty"][0]["coding"][0]["code"], FM);
    assert!(sched["planningHorizon"]["end"].is_null());
    assert!(
        sched["comment"]
            .as_str()
            .unwrap()
            .contains("Mon 09:00-12:00")
    );
    let found = get_as(
        &s.app,
        &admin,
        &format!(
            "/Schedule?actor=Practitioner/{}&active=true",
            s.practitioner
        ),
    )
    .await;
    assert_eq!(found.ids(), [sched["id"].as_str().unwrap()]);
    let none = get_as(
        &s.app,
        &admin,
        &format!(
            "/Schedule?actor=Practitioner/{}&active=false",
            s.practitioner
        ),
    )
    .await;
    assert_eq!(none.body["total"], 0);

    // The appointment type as HealthcareService.
    let service = get_as(&s.app, &admin, &format!("/HealthcareService/{}", s.kind)).await;
    assert_eq!(service.status, StatusCode::OK, "{}", service.body);
    assert_eq!(service.body["name"], "Follow-up");
    assert_eq!(service.body["active"], true);
    assert_eq!(service.body["comment"], "Bring your medications.");
    assert_eq!(service.body["type"][0]["coding"][0]["system"], TYPES);
    assert_eq!(
        extension(&service.body, DURATION).unwrap()["valueDuration"],
        json!({ "value": 30, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min" })
    );
    let v1 = get_as(
        &s.app,
        &admin,
        &format!("/HealthcareService/{}/_history/1", s.kind),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK);
    let found = get_as(
        &s.app,
        &desk,
        &format!(
            "/HealthcareService?name=follow&specialty={FM}&active=true&_id={}",
            s.kind
        ),
    )
    .await;
    assert_eq!(found.ids(), [s.kind.as_str()]);
    let inactive = get_as(
        &s.app,
        &desk,
        &format!("/HealthcareService?active=false&_id={}", s.kind),
    )
    .await;
    assert_eq!(inactive.body["total"], 0);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_element_and_nothing_is_written() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let lead = token(&s.app, Role::Lead).await;
    let start = s.at(0, 10, 0);
    let good = s.appointment(&s.patients[0], start);
    let before = s.all_count().await;

    let mut body = good.clone();
    body.as_object_mut().unwrap().remove("start");
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue(), ("required", "Appointment.start"));

    let mut body = good.clone();
    body["end"] = json!(s.at(0, 9, 0).to_string());
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.end");

    let mut body = good.clone();
    body["start"] = json!("2026-03-09T10:00:00");
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.start");

    let mut body = good.clone();
    body["participant"][1]["actor"]["reference"] = json!(format!("Practitioner/{}", new_id()));
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(
        res.issue(),
        ("business-rule", "Appointment.participant[1].actor")
    );

    let mut body = good.clone();
    body["participant"][2]["actor"]["reference"] = json!(format!("Location/{}", new_id()));
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(
        res.issue(),
        ("business-rule", "Appointment.participant[2].actor")
    );

    let mut body = good.clone();
    body["serviceType"][0]["coding"][0]["code"] = json!("no-such-type");
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.serviceType");

    let mut body = good.clone();
    body["end"] = json!(s.at(0, 10, 45).to_string());
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.end");

    let mut body = good.clone();
    body["priority"] = json!(1);
    let res = post(&s.app, &desk, "/Appointment", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue().1, "Appointment.priority");

    // Outside the template: a refusal naming start; only a lead may
    // override, with a reason.
    let early = s.appointment(&s.patients[0], s.at(0, 7, 0));
    let res = post(&s.app, &desk, "/Appointment", &early).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(res.issue(), ("business-rule", "Appointment.start"));
    let mut asked = early.clone();
    asked["extension"] = json!([{ "url": OVERRIDE, "valueString": "urgent: fits before clinic" }]);
    let res = post(&s.app, &desk, "/Appointment", &asked).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(
        res.issue(),
        ("forbidden", "Appointment.extension[0].valueString")
    );

    // $find without start, or ending before it.
    let res = get_as(
        &s.app,
        &desk,
        &format!("/Appointment/$find?practitioner={}", s.practitioner),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(
        res.issue(),
        ("required", "Parameters.parameter.where(name='start')")
    );
    let q = form(&[
        ("start", &start.to_string()),
        ("end", &s.at(0, 9, 0).to_string()),
    ]);
    let res = get_as(&s.app, &desk, &format!("/Appointment/$find?{q}")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue().1, "Parameters.parameter.where(name='end')");
    let q = form(&[("start", &start.to_string()), ("patient", "Patient/nobody")]);
    let res = get_as(&s.app, &desk, &format!("/Appointment/$find?{q}")).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    // $hold and $book need something to hold or book.
    let empty = json!({ "resourceType": "Parameters" });
    for op in ["$hold", "$book"] {
        let res = post(&s.app, &desk, &format!("/Appointment/{op}"), &empty).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    }
    let res = post(
        &s.app,
        &desk,
        "/Appointment/$hold",
        &reference("not.a.proposal"),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(s.all_count().await, before, "nothing was written");

    // Failures are audited, as failures.
    let failures = audit_events(
        &s.app,
        AuditFilter {
            resource_type: Some("Appointment".into()),
            ..AuditFilter::default()
        },
    )
    .await
    .into_iter()
    .filter(|e| e.entry.outcome == Outcome::Failed)
    .count();
    assert!(failures >= 14, "{failures}");

    // The lead's override books it, and the reason is kept.
    let res = post(&s.app, &lead, "/Appointment", &asked).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(
        extension(&res.body, OVERRIDE).unwrap()["valueString"],
        "urgent: fits before clinic"
    );
    assert_eq!(s.all_count().await, before + 1);
}

#[tokio::test]
async fn roles_and_the_capability_statement() {
    let s = setup().await;
    let auditor = token(&s.app, Role::Auditor).await;
    let admin = token(&s.app, Role::Admin).await;
    let billing = token(&s.app, Role::Billing).await;
    let res = get_as(&s.app, &auditor, "/Appointment").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = get_as(
        &s.app,
        &admin,
        &format!("/Appointment/$find?start={}", s.day),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = get_as(&s.app, &auditor, "/Slot").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = get_as(
        &s.app,
        &billing,
        &format!("/Appointment/$find?start={}", s.day),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = post(
        &s.app,
        &admin,
        "/Appointment",
        &s.appointment(&s.patients[0], s.at(0, 10, 0)),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Billing sees the book but changes it only through the front desk.
    let res = post(
        &s.app,
        &billing,
        "/Appointment",
        &s.appointment(&s.patients[0], s.at(0, 10, 0)),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(s.all_count().await, 0);

    let cs = answer(
        s.app
            .send(common::get(&format!("{BASE}/metadata"), None))
            .await,
    )
    .await
    .body;
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let find = |t: &str| resources.iter().find(|r| r["type"] == t).unwrap();
    for t in ["HealthcareService", "Schedule", "Slot", "Appointment"] {
        let r = find(t);
        assert!(r["documentation"].as_str().unwrap().len() > 100, "{t}");
    }
    let appointment = find("Appointment");
    let ops: Vec<(&str, &str)> = appointment["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["definition"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            (
                "find",
                "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find"
            ),
            (
                "hold",
                "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-hold"
            ),
            (
                "book",
                "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-book"
            ),
        ]
    );
    assert!(
        appointment["searchInclude"]
            .as_array()
            .unwrap()
            .contains(&json!("Appointment:patient"))
    );
    let params: Vec<&str> = find("Slot")["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "schedule",
        "schedule.actor",
        "start",
        "status",
        "service-type",
        "specialty",
    ] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    assert!(
        find("HealthcareService")["documentation"]
            .as_str()
            .unwrap()
            .contains("appointment-type-duration")
    );
}

#[tokio::test]
async fn only_a_patients_kind_of_type_is_proposed_and_booked() {
    let s = setup().await;
    let desk = token(&s.app, Role::FrontDesk).await;
    let (db, org) = (&s.app.db, &s.app.org_id);
    let by = Actor::system("test");
    // Our type becomes one for established patients.
    let kind = db.get::<AppointmentType>(org, &s.kind).await.unwrap();
    let mut tx = db.begin(org).await.unwrap();
    tx.update_appointment_type(
        AppointmentType {
            eligibility: PatientEligibility::Established,
            ..kind.value
        },
        Some(kind.version),
        &by,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Patient 0 was seen here a year ago; patient 1 never was.
    let (seen, never) = (s.patients[0].clone(), s.patients[1].clone());
    let start = s.at(-366, 10, 0);
    let end = start + SignedDuration::from_mins(30);
    let visit = Appointment {
        id: new_id(),
        patient_id: seen.clone(),
        practitioner_id: s.practitioner.clone(),
        location_id: s.location.clone(),
        appointment_type_id: s.kind.clone(),
        resource_ids: vec![],
        start,
        end,
        status: AppointmentStatus::Fulfilled,
        status_changed_at: end,
        max_seat: 0,
        cancel_reason: None,
        override_reason: None,
        series_id: None,
        rescheduled_from: None,
        arrived_at: Some(start),
    };
    let mut tx = db.begin(org).await.unwrap();
    tx.record_appointment(visit, "history").await.unwrap();
    tx.commit().await.unwrap();

    // $find proposes the type to the established patient only.
    let (from, to) = (s.at(0, 0, 0), s.at(1, 0, 0));
    let found = get_as(&s.app, &desk, &s.find_path(&seen, from, to)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["total"], 14);
    let found = get_as(&s.app, &desk, &s.find_path(&never, from, to)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["total"], 0, "{}", found.body);

    // Booking it for the new patient is a business rule at the patient,
    // saying why; nothing is booked.
    let all = s.all_count().await;
    let res = post(
        &s.app,
        &desk,
        "/Appointment",
        &s.appointment(&never, s.at(0, 9, 0)),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    let (code, at) = res.issue();
    assert_eq!(code, "business-rule");
    assert!(at.starts_with("Appointment.participant"), "{at}");
    let text = res.body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.ends_with(
            "this appointment type is for established patients; this patient has not been \
             seen here in the last 3 years: choose a type for new patients"
        ),
        "{text}"
    );
    assert_eq!(s.all_count().await, all);
    // Nor may it be held for them.
    let held = post(
        &s.app,
        &desk,
        "/Appointment/$hold",
        &with_resource(s.appointment(&never, s.at(0, 9, 0))),
    )
    .await;
    assert_eq!(
        held.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        held.body
    );
    assert!(
        held.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("is for established patients")
    );
    assert_eq!(s.all_count().await, all);
    let res = post(
        &s.app,
        &desk,
        "/Appointment",
        &s.appointment(&seen, s.at(0, 9, 0)),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}
