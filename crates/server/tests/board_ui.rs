//! Today's board and the rooms board over HTTP, in-process, on SQLite and
//! (with CAREFRONT_TEST_POSTGRES) on PostgreSQL: a visit's whole path
//! through the board's forms, refusals with the domain's reason that write
//! nothing, cleaning with the checklist, the event stream seeing a change
//! made through a second server, filters and the wait highlight, who may
//! look and who may act, and the CSRF token.

mod common;
mod schedule_setup;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::directory::RoomKind;
use carefront_domain::scheduling::AppointmentStatus;
use carefront_domain::visit::{RoomChecklist, RoomStatus, VisitStatus, VisitStep};
use carefront_server::{AppState, Config, router};
use carefront_store::{Actor, AppointmentRecord, AuditFilter, Db, FlowActor, new_id};
use common::*;
use jiff::{SignedDuration, Timestamp};
use schedule_setup::{Derm, Desk, TYPE_NAME, dermatology, room_status, visit_starting_now};
use serde_json::Value;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The board of the visit's day at the dermatologist's location.
struct Day<'a> {
    d: &'a Derm,
    date: String,
}

impl Day<'_> {
    fn board(&self, extra: &str) -> String {
        format!(
            "/today?location={}&date={}{extra}",
            self.d.location, self.date
        )
    }

    fn events(&self, after: i64, extra: &str) -> String {
        format!(
            "/today/events?location={}&date={}&after={after}{extra}",
            self.d.location, self.date
        )
    }

    /// A step posted from the board's form.
    async fn step(
        &self,
        desk: &Desk<'_>,
        id: &str,
        to: &str,
        room: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut fields = vec![
            ("to", to),
            ("location", self.d.location.as_str()),
            ("date", self.date.as_str()),
        ];
        if let Some(r) = room {
            fields.push(("room_id", r));
        }
        desk.post(&format!("/today/visits/{id}/step"), &fields)
            .await
    }
}

/// [`visit_starting_now`], with its day as the board's query writes it.
async fn today_visit(app: &TestApp, d: &Derm, patient: usize) -> (String, String) {
    let (id, day) = visit_starting_now(app, d, patient).await;
    (id, day.to_string())
}

async fn ready_rooms(app: &TestApp, d: &Derm) -> Vec<(String, String)> {
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    board
        .rooms
        .into_iter()
        .filter(|r| r.kind == RoomKind::Exam && r.state.status == RoomStatus::Ready)
        .map(|r| (r.room_id, r.name))
        .collect()
}

async fn board_seq(app: &TestApp, d: &Derm) -> i64 {
    app.db.board_seq(&app.org_id, &d.location).await.unwrap()
}

/// The table row of a visit.
fn row<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("<tr id=\"visit-{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

/// A desk keeps its board open and it reloads on every change: each row
/// is logged the first time a user sees it, not on every reload within
/// the window (`RepeatedReads`); another user's sight is their own event.
#[tokio::test]
async fn a_board_reloaded_by_the_same_user_logs_each_row_once_per_window() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 0).await;
    let day = Day { d: &d, date };
    let reads = || async {
        let filter = AuditFilter {
            resource_id: Some(a.clone()),
            action: Some(Action::Read),
            ..AuditFilter::default()
        };
        fhir_api::audit_events(&app, filter)
            .await
            .into_iter()
            .map(|e| (e.entry.actor_name, e.entry.detail.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let desk = Desk::new(&app, Role::FrontDesk).await;
    for _ in 0..3 {
        let (status, html) = desk.get(&day.board("")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&format!("id=\"visit-{a}\"")));
    }
    let once = reads().await;
    assert_eq!(once.len(), 1, "{once:?}");
    assert_eq!(once[0].1, "shown on today's board");

    let lead = Desk::new(&app, Role::Lead).await;
    let (status, _) = lead.get(&day.board("")).await;
    assert_eq!(status, StatusCode::OK);
    let both = reads().await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_ne!(both[0].0, both[1].0, "each user's sight is logged");
}

#[tokio::test]
async fn a_visit_runs_its_whole_path_through_the_board_forms() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 0).await;
    let day = Day { d: &d, date };
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (room, room_name) = ready_rooms(&app, &d).await.remove(0);

    let (status, html) = desk.get(&day.board("")).await;
    assert_eq!(status, StatusCode::OK);
    let r = row(&html, &a);
    assert!(r.contains(&format!("href=\"/patients/{}\"", d.patients[0].0)));
    assert!(r.contains(&d.patients[0].1), "{r}");
    assert!(r.contains(TYPE_NAME));
    assert!(r.contains("Scheduled"));
    assert!(r.contains("coverage") || r.contains("Coverage"), "{r}");
    assert!(r.contains(&format!("id=\"step-{a}-arrived\"")));
    assert!(!r.contains(&format!("step-{a}-completed")));
    assert!(html.contains("data-live=\"board\""));
    assert!(html.contains("aria-live=\"polite\""));
    assert!(!html.contains("style="), "the CSP allows no inline style");
    // The read is audited, naming the patient.
    let filter = AuditFilter {
        resource_id: Some(a.clone()),
        action: Some(Action::Read),
        ..AuditFilter::default()
    };
    let (read, _) = app
        .db
        .audit_events(&app.org_id, &filter, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        read[0].entry.patient_id.as_deref(),
        Some(d.patients[0].0.as_str())
    );

    for (to, chosen) in [
        ("arrived", None),
        ("checked-in", None),
        ("roomed", Some(room.as_str())),
        ("with-provider", None),
        ("checkout", None),
        ("completed", None),
    ] {
        let (status, back, body) = day.step(&desk, &a, to, chosen).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{to}: {body}");
        assert!(back.contains(&format!("done={to}")), "{back}");
        let (status, html) = desk.get(&back).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("id=\"board-notice\""),
            "a notice says what was done"
        );
        let r = row(&html, &a);
        let label = VisitStatus::from_code(to).unwrap().label();
        assert!(r.to_lowercase().contains(label), "{to}: {r}");
        if to == "roomed" {
            assert!(r.contains(&room_name), "the room is shown: {r}");
            assert!(r.contains(&format!("id=\"step-{a}-with-provider\"")));
            assert_eq!(
                room_status(&app, &d, &room).await,
                RoomStatus::Occupied {
                    appointment_id: a.clone()
                }
            );
            // The rooms board names the patient in the room.
            let (status, rooms) = desk
                .get(&format!("/today/rooms?location={}", d.location))
                .await;
            assert_eq!(status, StatusCode::OK);
            let room_row = &rooms[rooms.find(&format!("id=\"room-{room}\"")).unwrap()..];
            let room_row = &room_row[..room_row.find("</tr>").unwrap()];
            assert!(room_row.contains("Occupied"), "{room_row}");
            assert!(room_row.contains(&format!("/patients/{}", d.patients[0].0)));
            let filter = AuditFilter {
                patient_id: Some(d.patients[0].0.clone()),
                action: Some(Action::Read),
                ..AuditFilter::default()
            };
            let (read, _) = app
                .db
                .audit_events(&app.org_id, &filter, 0, 1)
                .await
                .unwrap();
            assert_eq!(
                read[0].entry.detail.as_deref(),
                Some("shown on the rooms board")
            );
        }
    }
    let history = app.db.visit_history(&app.org_id, &a).await.unwrap();
    let path: Vec<&str> = history.iter().map(|e| e.to.code()).collect();
    assert_eq!(
        path,
        [
            "arrived",
            "checked-in",
            "roomed",
            "with-provider",
            "checkout",
            "completed"
        ]
    );
    let record = app
        .db
        .get::<AppointmentRecord>(&app.org_id, &a)
        .await
        .unwrap();
    assert_eq!(
        record.value.appointment.status,
        AppointmentStatus::Fulfilled
    );
    assert_eq!(
        room_status(&app, &d, &room).await,
        RoomStatus::NeedsCleaning
    );
    // Every step is audited as the desk user's change of the visit.
    let filter = AuditFilter {
        resource_type: Some("Visit".into()),
        resource_id: Some(a.clone()),
        ..AuditFilter::default()
    };
    let (changes, total) = app
        .db
        .audit_events(&app.org_id, &filter, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 6);
    let desk_user = &app.staff(Role::FrontDesk).username;
    assert!(changes.iter().all(|e| &e.entry.actor_name == desk_user));

    // Cleaning: every item of the checklist must be ticked.
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    let checklist = RoomChecklist {
        kind: RoomKind::Exam,
        cleaning: vec!["Wipe table".into(), "Replace paper".into()],
        supplies: vec![],
    };
    tx.save_room_checklist(checklist, None, &Actor::system("lead"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let path = format!("/today/rooms/{room}");
    let (status, _, body) = desk
        .post(&path, &[("change", "cleaned"), ("done", "Wipe table")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("not complete: Replace paper"), "{body}");
    assert!(
        body.contains("value=\"Wipe table\" checked"),
        "what was ticked stays ticked"
    );
    assert_eq!(
        room_status(&app, &d, &room).await,
        RoomStatus::NeedsCleaning
    );
    let (status, back, body) = desk
        .post(
            &path,
            &[
                ("change", "cleaned"),
                ("done", "Wipe table"),
                ("done", "Replace paper"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(room_status(&app, &d, &room).await, RoomStatus::Ready);
    let (_, rooms) = desk.get(&back).await;
    assert!(rooms.contains(&format!("{room_name}: ready.")), "a notice");

    // Out of service needs a reason; back in service needs cleaning again.
    let (status, _, body) = desk
        .post(&path, &[("change", "out_of_service"), ("reason", " ")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("A reason is required"), "{body}");
    let (status, _, _) = desk
        .post(
            &path,
            &[
                ("change", "out_of_service"),
                ("reason", "Exam light broken"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, rooms) = desk
        .get(&format!("/today/rooms?location={}", d.location))
        .await;
    assert!(rooms.contains("Out of service: Exam light broken"));
    assert!(rooms.contains(&format!("id=\"back-{room}\"")));
    let (status, _, _) = desk.post(&path, &[("change", "back_in_service")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        room_status(&app, &d, &room).await,
        RoomStatus::NeedsCleaning
    );
    app.db
        .verify_audit_chain(&app.org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_refused_step_shows_the_domains_reason_and_writes_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 1).await;
    let day = Day { d: &d, date };
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (room, _) = ready_rooms(&app, &d).await.remove(0);
    let seq = board_seq(&app, &d).await;
    let version = |app: &TestApp| {
        let (db, org, a) = (app.db.clone(), app.org_id.clone(), a.clone());
        async move { db.get::<AppointmentRecord>(&org, &a).await.unwrap().version }
    };
    let before = version(&app).await;

    let (status, _, body) = day.step(&desk, &a, "roomed", Some(&room)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("role=\"alert\""), "{body}");
    assert!(body.contains("Nothing was changed for"), "{body}");
    assert!(
        body.contains("Cannot change a visit that is scheduled to roomed: check the patient in before rooming."),
        "the domain's reason: {body}"
    );
    // Rooming without a room, a status that is not a step, a bad room.
    for (to, room, reason) in [
        ("roomed", None, "Choose a room."),
        ("sideways", None, "Choose one of the board"),
        (
            "arrived",
            Some(room.as_str()),
            "Only rooming a patient names a room.",
        ),
    ] {
        let (status, _, body) = day.step(&desk, &a, to, room).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{to}");
        assert!(body.contains(reason), "{to}: {body}");
    }
    assert!(
        app.db
            .visit_history(&app.org_id, &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(board_seq(&app, &d).await, seq);
    assert_eq!(version(&app).await, before);
    assert_eq!(room_status(&app, &d, &room).await, RoomStatus::Ready);

    // Tomorrow's visit cannot arrive today: the appointment's own rule.
    let tomorrow = d.book(&app, 2, 9, 0).await;
    let (status, _, body) = day.step(&desk, &tomorrow, "arrived", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("it is too early to arrive for this appointment"),
        "{body}"
    );
    // A visit that is not there.
    let (status, _, _) = day.step(&desk, &new_id(), "arrived", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(board_seq(&app, &d).await, seq);
}

#[tokio::test]
async fn the_event_stream_carries_changes_made_through_another_server() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 0).await;
    let day = Day { d: &d, date };
    let other = router(AppState::new(
        Db::connect(&app.url).await.unwrap(),
        Config::default(),
    ));
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let seq = board_seq(&app, &d).await;

    // Nothing new: an empty answer with the same number, after the wait.
    let (status, body) = desk.get(&day.events(seq, "&wait=0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["seq"], seq);
    assert_eq!(answer["reload"], false);
    assert_eq!(answer["events"].as_array().unwrap().len(), 0);
    // No number, or one past the stream's end: the page reloads.
    for path in [
        format!("/today/events?location={}", d.location),
        day.events(seq + 5, ""),
    ] {
        let (_, body) = desk.get(&path).await;
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (answer["reload"].clone(), answer["seq"].clone()),
            (Value::Bool(true), seq.into())
        );
    }
    let (status, _) = desk.get("/today/events?location=nowhere&after=0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Server A waits for news while the desk checks in through server B.
    let waiting = {
        let (router, path, cookie) = (app.app.clone(), day.events(seq, ""), desk.cookie.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let res = router.oneshot(get(&path, Some(&cookie))).await.unwrap();
            (started.elapsed(), body_text(res).await)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let form = form_body(&[
        ("csrf", &desk.csrf),
        ("to", "checked-in"),
        ("location", &d.location),
        ("date", &day.date),
    ]);
    let res = other
        .clone()
        .oneshot(
            Request::post(format!("/today/visits/{a}/step"))
                .header(header::COOKIE, &desk.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (took, body) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting request answers when the event comes")
        .unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["seq"], seq + 1, "{answer}");
    let v = &answer["events"][0]["visits"][0];
    assert_eq!(v["id"], a.as_str());
    assert_eq!(v["status"], "checked-in");
    assert_eq!(v["text"], "Checked in");
    assert_eq!(
        (v["shown"].clone(), v["waiting"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    let actions = v["actions"].as_str().unwrap();
    assert!(
        actions.contains(&format!("id=\"step-{a}-roomed\"")),
        "{actions}"
    );
    assert!(actions.contains("name=\"room_id\""));
    assert!(
        !body.contains(&d.patients[0].1),
        "the stream names no patient"
    );

    // Rooming through B: A's stream has the room, as the choice lists it.
    let (room, room_name) = ready_rooms(&app, &d).await.remove(0);
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.visit_step(
        &a,
        &VisitStep::room(&room),
        &FlowActor::Staff(Actor::system("nurse")),
        Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, body) = desk.get(&day.events(seq + 1, "&status=waiting")).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let event = &answer["events"][0];
    assert_eq!(event["visits"][0]["room"], room_name.as_str());
    assert_eq!(event["visits"][0]["shown"], true, "roomed is waiting");
    assert_eq!(event["rooms"][0]["id"], room.as_str());
    assert_eq!(event["rooms"][0]["ready"], false);
    assert_eq!(
        event["rooms"][0]["option"],
        format!("{room_name} (occupied)").as_str()
    );
    // Seen by the provider: no longer waiting, so off a waiting-only board.
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.visit_step(
        &a,
        &VisitStep::new(VisitStatus::WithProvider, None).unwrap(),
        &FlowActor::Staff(Actor::system("nurse")),
        Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, body) = desk.get(&day.events(seq + 2, "&status=waiting")).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["events"][0]["visits"][0]["shown"], false);
}

#[tokio::test]
async fn filters_narrow_the_board_and_long_waits_are_highlighted_in_words() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (waiting, date) = today_visit(&app, &d, 0).await;
    let (booked, _) = today_visit(&app, &d, 1).await;
    let day = Day { d: &d, date };
    // Arrived half an hour ago, past the default threshold of 15 minutes.
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.visit_step(
        &waiting,
        &VisitStep::new(VisitStatus::Arrived, None).unwrap(),
        &FlowActor::Staff(Actor::system("desk")),
        Timestamp::now() - SignedDuration::from_mins(30),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let desk = Desk::new(&app, Role::FrontDesk).await;

    let (_, html) = desk.get(&day.board("")).await;
    let late = row(&html, &waiting);
    assert!(
        late.starts_with(&format!("<tr id=\"visit-{waiting}\" class=\"overdue\"")),
        "{late}"
    );
    assert!(
        late.contains("<strong class=\"late\">Waiting too long</strong>"),
        "{late}"
    );
    assert!(late.contains("data-waiting=\"1\""));
    let fine = row(&html, &booked);
    assert!(fine.contains("<strong class=\"late\" hidden>"), "{fine}");
    assert!(html.contains("more than 15 minutes"));

    let (_, html) = desk.get(&day.board("&status=waiting")).await;
    assert!(html.contains(&format!("id=\"visit-{waiting}\"")));
    assert!(!html.contains(&format!("id=\"visit-{booked}\"")));
    assert!(html.contains("<option value=\"waiting\" selected>"));
    let (_, html) = desk.get(&day.board("&status=scheduled")).await;
    assert!(!html.contains(&format!("id=\"visit-{waiting}\"")));
    assert!(html.contains(&format!("id=\"visit-{booked}\"")));
    let (_, html) = desk
        .get(&day.board(&format!("&provider={}", d.provider)))
        .await;
    assert!(html.contains(&format!("id=\"visit-{booked}\"")));
    let (_, html) = desk.get(&day.board("&provider=someone-else")).await;
    assert!(html.contains("No appointment matches the filters."));
    // A bad date says so and shows today.
    let (status, html) = desk
        .get(&format!("/today?location={}&date=someday", d.location))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("is not a date; showing today"));
}

#[tokio::test]
async fn the_desk_and_clinicians_move_visits_billing_only_looks_and_others_are_refused() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 0).await;
    let day = Day { d: &d, date };
    let (room, _) = ready_rooms(&app, &d).await.remove(0);

    let clinician = Desk::new(&app, Role::Clinician).await;
    let (status, _, body) = day.step(&clinician, &a, "checked-in", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");

    let billing = Desk::new(&app, Role::Billing).await;
    let (status, html) = billing.get(&day.board("")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("id=\"visit-{a}\"")));
    assert!(!html.contains("step-"), "billing sees no steps");
    let (status, _, _) = day.step(&billing, &a, "roomed", Some(&room)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = billing
        .post(
            &format!("/today/rooms/{room}"),
            &[("change", "back_in_service")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = billing.get(&day.events(0, "&wait=0")).await;
    assert_eq!(status, StatusCode::OK);

    for role in [Role::Admin, Role::Auditor] {
        let other = Desk::new(&app, role).await;
        for path in [
            day.board(""),
            day.events(0, "&wait=0"),
            format!("/today/rooms?location={}", d.location),
        ] {
            let (status, _) = other.get(&path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {path}");
        }
        let (status, _, _) = day.step(&other, &a, "roomed", Some(&room)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let history = app.db.visit_history(&app.org_id, &a).await.unwrap();
    assert_eq!(history.len(), 1, "only the clinician's check-in");
}

#[tokio::test]
async fn a_step_needs_the_sessions_csrf_token_and_our_origin() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, date) = today_visit(&app, &d, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/today/visits/{a}/step");
    let fields = [
        ("to", "arrived"),
        ("location", d.location.as_str()),
        ("date", date.as_str()),
    ];
    let res = app.post_form(&path, &desk.cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token");
    let mut forged = vec![("csrf", "not-the-token")];
    forged.extend_from_slice(&fields);
    let res = app.post_form(&path, &desk.cookie, &forged).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a wrong token");
    let mut good = vec![("csrf", desk.csrf.as_str())];
    good.extend_from_slice(&fields);
    let res = app
        .send(
            Request::post(&path)
                .header(header::COOKIE, &desk.cookie)
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_body(&good)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "another site");
    let (room, _) = ready_rooms(&app, &d).await.remove(0);
    let res = app
        .post_form(
            &format!("/today/rooms/{room}"),
            &desk.cookie,
            &[("change", "out_of_service"), ("reason", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "rooms too");
    assert!(
        app.db
            .visit_history(&app.org_id, &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(room_status(&app, &d, &room).await, RoomStatus::Ready);
    let res = app.post_form(&path, &desk.cookie, &good).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "with the token it works"
    );
}
