//! Booking a recurring series over HTTP, through the booking form and
//! through FHIR `Appointment/$book`: every visit booked at once and listed,
//! or nothing booked and each conflicting visit offered other times to
//! choose from (labelled radio buttons; a 409 naming the occurrence), then
//! booked with the times chosen. On SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL.

mod common;
mod schedule_setup;

use axum::http::{Method, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::scheduling::{AppointmentStatus, CancelReason};
use carefront_store::{Actor, AppointmentQuery, AppointmentRecord};
use common::fhir_api::{Answer, call, send, token};
use common::*;
use jiff::{Timestamp, ToSpan};
use schedule_setup::{ALL, Derm, TYPE_ID, dermatology};
use serde_json::{Value, json};

/// Clears the dermatologist's calendar for `weeks` from today: the setup
/// clears two weeks, a series reaches further.
async fn clear_weeks(app: &TestApp, d: &Derm, weeks: i64) {
    let org = app.org_id.as_str();
    let actor = Actor::system("test-setup");
    let from = d.day.yesterday().unwrap();
    let until = from.checked_add((7 * weeks).days()).unwrap();
    let range = (from.at(0, 0, 0, 0), until.at(0, 0, 0, 0));
    for e in app
        .db
        .schedule_exceptions(org, range.0, range.1)
        .await
        .unwrap()
    {
        let mut tx = app.db.begin(org).await.unwrap();
        tx.delete_exception(&e.id, &actor).await.unwrap();
        tx.commit().await.unwrap();
    }
    for a in booked_with_provider(app, d).await {
        let mut tx = app.db.begin(org).await.unwrap();
        tx.cancel_appointment(
            &a.appointment.id,
            CancelReason::Other,
            None,
            &actor,
            Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

/// The provider's appointments that keep time from today on, by start.
async fn booked_with_provider(app: &TestApp, d: &Derm) -> Vec<AppointmentRecord> {
    let query = AppointmentQuery {
        practitioner_id: Some(d.provider.clone()),
        from: Some(Timestamp::now()),
        statuses: vec![AppointmentStatus::Booked],
        ..AppointmentQuery::default()
    };
    app.db
        .appointments(&app.org_id, &query, ALL)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|v| v.value)
        .collect()
}

/// The booking form of a slot for a patient: its idempotency token.
async fn form_token(app: &TestApp, cookie: &str, d: &Derm, patient: usize) -> String {
    let link = d.book_link(10, 0).replace("&amp;", "&");
    let path = format!("{link}&patient={}", d.patients[patient].0);
    let res = app.send(get(&path, Some(cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body_text(res).await;
    assert!(
        html.contains("<legend>Repeat (optional)</legend>"),
        "{html}"
    );
    assert!(html.contains("<label for=\"f-repeat_count\">Visits in all</label>"));
    assert!(html.contains("<label for=\"f-repeat_every_weeks\">Every</label>"));
    hidden_value(&html, "idempotency_key").unwrap()
}

/// The values of the radio buttons named `name`, in page order.
fn radio_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_weekly_series_is_booked_at_once_and_listed() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    clear_weeks(&app, &d, 6).await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let csrf = app.csrf(&cookie).await;
    let token = form_token(&app, &cookie, &d, 1).await;
    let start = d.at(10, 0).to_string();
    let fields = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", token.as_str()),
        ("practitioner_id", d.provider.as_str()),
        ("location_id", d.location.as_str()),
        ("patient_id", d.patients[1].0.as_str()),
        ("start", start.as_str()),
        ("appointment_type_id", TYPE_ID),
        ("reason_for_visit", "Phototherapy course"),
        ("notes", ""),
        ("repeat_count", "4"),
        ("repeat_every_weeks", "1"),
    ];
    let res = app.post_form("/schedule/book", &cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(to.starts_with("/schedule/series/"), "{to}");

    let visits = booked_with_provider(&app, &d).await;
    assert_eq!(visits.len(), 4);
    let series = visits[0].appointment.series_id.clone().unwrap();
    assert!(to.contains(&series), "{to}");
    for (i, a) in visits.iter().enumerate() {
        assert_eq!(a.appointment.series_id.as_deref(), Some(series.as_str()));
        assert_eq!(a.appointment.patient_id, d.patients[1].0);
        assert_eq!(a.reason_for_visit.as_deref(), Some("Phototherapy course"));
        let day = d.day.checked_add((7 * i as i64).days()).unwrap();
        let local = a.appointment.start.to_zoned(d.tz.clone()).datetime();
        assert_eq!(local, day.at(10, 0, 0, 0), "visit {i} keeps 10:00");
    }

    // The confirmation lists every visit with a link to it.
    let res = app.send(get(&to, Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = body_text(res).await;
    assert!(page.contains("Booked 4 visits."), "{page}");
    assert!(page.contains(&d.patients[1].1));
    for a in &visits {
        assert!(page.contains(&format!("href=\"/appointments/{}\"", a.appointment.id)));
    }

    // The same form sent again books nothing more and lands on the same page.
    let again = app.post_form("/schedule/book", &cookie, &fields).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&again), to);
    assert_eq!(booked_with_provider(&app, &d).await.len(), 4);

    let res = app
        .send(get("/schedule/series/no-such-series", Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_conflicting_visit_books_nothing_and_offers_other_times() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    clear_weeks(&app, &d, 6).await;
    // Another desk has the provider at 10:00 on the third week's day.
    let taken_day = d.day.checked_add(14.days()).unwrap();
    let taken = Derm {
        day: taken_day,
        ..dermatology_view(&d)
    };
    taken.book(&app, 3, 10, 0).await;

    let cookie = app.sign_in(Role::FrontDesk).await;
    let csrf = app.csrf(&cookie).await;
    let token = form_token(&app, &cookie, &d, 2).await;
    let start = d.at(10, 0).to_string();
    let fields = vec![
        ("csrf", csrf.as_str()),
        ("idempotency_key", token.as_str()),
        ("practitioner_id", d.provider.as_str()),
        ("location_id", d.location.as_str()),
        ("patient_id", d.patients[2].0.as_str()),
        ("start", start.as_str()),
        ("appointment_type_id", TYPE_ID),
        ("reason_for_visit", "Phototherapy course"),
        ("notes", ""),
        ("repeat_count", "4"),
        ("repeat_every_weeks", "1"),
    ];
    let res = app.post_form("/schedule/book", &cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = body_text(res).await;
    assert!(
        html.contains("Nothing was booked: 1 of the 4 visits cannot be booked as they are."),
        "{html}"
    );
    // The alert takes the focus; each conflict is a labelled group of radio
    // buttons, each button with its own label.
    assert!(html.contains("role=\"alert\" tabindex=\"-1\" autofocus"));
    assert_eq!(
        html.matches("autofocus").count(),
        1,
        "one place takes the focus"
    );
    assert!(
        html.contains("already has a booking then</legend>"),
        "{html}"
    );
    assert!(html.contains("<legend>Visit 3, "), "{html}");
    let choices = radio_values(&html, "move_2");
    assert!(!choices.is_empty(), "alternatives for visit 3");
    assert_eq!(choices[0], taken.at(9, 40).to_string(), "the nearest first");
    assert!(html.contains("<input type=\"radio\" id=\"f-move_2-0\" name=\"move_2\""));
    assert!(html.contains("<label for=\"f-move_2-0\">Instead "));
    assert!(radio_values(&html, "move_0").is_empty(), "visit 1 fits");
    assert!(
        !html.contains("Keep this time"),
        "only a lead may keep the time"
    );
    // What was typed is kept; nothing was booked.
    assert!(html.contains("Phototherapy course"));
    assert!(html.contains("<option value=\"4\" selected>4 visits</option>"));
    assert_eq!(booked_with_provider(&app, &d).await.len(), 1);

    // Choosing the offered time books all four.
    let mut chosen = fields.clone();
    chosen.push(("move_2", choices[0].as_str()));
    let res = app.post_form("/schedule/book", &cookie, &chosen).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        body_text(res).await
    );
    let visits: Vec<_> = booked_with_provider(&app, &d)
        .await
        .into_iter()
        .filter(|a| a.appointment.patient_id == d.patients[2].0)
        .collect();
    assert_eq!(visits.len(), 4);
    assert_eq!(visits[2].appointment.start, taken.at(9, 40));

    // A lead is offered to keep a conflicting time with a reason.
    let lead = app.sign_in(Role::Lead).await;
    let lead_csrf = app.csrf(&lead).await;
    let lead_token = form_token(&app, &lead, &d, 4).await;
    let mut fields = fields.clone();
    fields[0] = ("csrf", lead_csrf.as_str());
    fields[1] = ("idempotency_key", lead_token.as_str());
    fields[4] = ("patient_id", d.patients[4].0.as_str());
    fields[5] = ("start", start.as_str());
    let res = app.post_form("/schedule/book", &lead, &fields).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = body_text(res).await;
    assert!(html.contains("<label for=\"f-move_0-keep\">Keep this time"));
    assert!(html.contains("id=\"f-override_reason\""));
}

/// The same schedule viewed on another day.
fn dermatology_view(d: &Derm) -> Derm {
    Derm {
        location: d.location.clone(),
        location_name: d.location_name.clone(),
        provider: d.provider.clone(),
        tz: d.tz.clone(),
        day: d.day,
        patients: d.patients.clone(),
    }
}

const RECURRENCE: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceTemplate";
const RECURRENCE_ID: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.recurrenceId";
const SERIES: &str = "http://carefront.example/fhir/StructureDefinition/appointment-series";

/// The first appointment of a weekly series of `count` at 10:00 on `day`.
fn first_of_series(d: &Derm, patient: usize, count: u16) -> Value {
    json!({
        "resourceType": "Appointment",
        "serviceType": [{ "coding": [{
            "system": "http://carefront.example/fhir/CodeSystem/appointment-type",
            "code": TYPE_ID,
        }] }],
        "start": d.at(10, 0).to_string(),
        "participant": [
            { "actor": { "reference": format!("Patient/{}", d.patients[patient].0) } },
            { "actor": { "reference": format!("Practitioner/{}", d.provider) } },
            { "actor": { "reference": format!("Location/{}", d.location) } },
        ],
        "extension": [{ "url": RECURRENCE, "extension": [
            { "url": "recurrenceType", "valueCodeableConcept": { "coding": [
                { "system": "http://unitsofmeasure.org", "code": "wk" }
            ] } },
            { "url": "occurrenceCount", "valuePositiveInt": count },
            { "url": "weeklyTemplate", "extension": [
                { "url": "weekInterval", "valuePositiveInt": 1 }
            ] },
        ] }],
    })
}

async fn book(app: &TestApp, token: &str, key: &str, resources: Vec<Value>) -> Answer {
    let parameter: Vec<Value> = resources
        .into_iter()
        .map(|r| json!({ "name": "appointment-resource", "resource": r }))
        .collect();
    let body = json!({ "resourceType": "Parameters", "parameter": parameter });
    let c = call(Method::POST, "/Appointment/$book", token)
        .json(&body)
        .header(header::HeaderName::from_static("idempotency-key"), key);
    send(app, c).await
}

#[tokio::test]
async fn fhir_book_takes_a_series_all_or_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    clear_weeks(&app, &d, 5).await;
    let second = Derm {
        day: d.day.checked_add(7.days()).unwrap(),
        ..dermatology_view(&d)
    };
    second.book(&app, 3, 10, 0).await;
    let desk = token(&app, Role::FrontDesk).await;

    // The second occurrence is taken: 409, one issue naming it, nothing booked.
    let res = book(&app, &desk, "series-1", vec![first_of_series(&d, 2, 3)]).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    let issues = res.body["issue"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{}", res.body);
    assert_eq!(issues[0]["code"], "conflict");
    assert_eq!(
        issues[0]["expression"][0],
        "Parameters.parameter[0].resource.extension[0]"
    );
    let text = issues[0]["diagnostics"].as_str().unwrap();
    assert!(text.starts_with("Occurrence 2 of 3 at "), "{text}");
    let nearest = second.at(9, 40).to_string();
    assert!(
        text.contains(&format!("Free nearby: {nearest} (")),
        "{text}"
    );
    assert_eq!(booked_with_provider(&app, &d).await.len(), 1);

    // The second occurrence at the time offered: all three booked, linked.
    let moved = json!({
        "resourceType": "Appointment",
        "start": nearest,
        "extension": [{ "url": RECURRENCE_ID, "valuePositiveInt": 2 }],
    });
    let resources = vec![first_of_series(&d, 2, 3), moved];
    let res = book(&app, &desk, "series-2", resources.clone()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["type"], "searchset");
    assert_eq!(res.body["total"], 3);
    let entries: Vec<&Value> = res.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    assert_eq!(entries[1]["start"], nearest.as_str());
    let series: Vec<&Value> = entries
        .iter()
        .map(|r| {
            &r["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["url"] == SERIES)
                .expect("the series extension")["valueString"]
        })
        .collect();
    assert!(series.iter().all(|s| *s == series[0] && s.is_string()));

    // A retry answers the same appointments and books nothing.
    let again = book(&app, &desk, "series-2", resources).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.ids(), res.ids());
    assert_eq!(booked_with_provider(&app, &d).await.len(), 4);

    // Create books one appointment: a series there is refused.
    let c = call(Method::POST, "/Appointment", &desk).json(&first_of_series(&d, 4, 2));
    let res = send(&app, c).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.issue(), ("not-supported", "Appointment.extension[0]"));
}
