//! Checkout from the board (`/today/visits/{id}/checkout`) and the
//! post-visit instructions templates (`/admin/instructions`) over HTTP,
//! in-process, on SQLite and (with CAREFRONT_TEST_POSTGRES) on PostgreSQL:
//! the follow-up link opens the slot finder prefilled; the instructions PDF
//! names the patient and is audited as an export; completing moves the
//! visit and frees its room; a template with an unknown placeholder is
//! refused and nothing saved, a valid one changes the PDF; who may do what;
//! the CSRF token.

mod common;
mod schedule_setup;

use axum::http::{StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::directory::RoomKind;
use carefront_domain::scheduling::AppointmentStatus;
use carefront_domain::visit::{
    FollowUp, IntervalUnit, PostVisitInstructions, RoomStatus, VisitStatus, VisitStep,
};
use carefront_store::{Actor, AppointmentRecord, AuditFilter, FlowActor, new_id};
use common::*;
use http_body_util::BodyExt;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use schedule_setup::{
    Derm, Desk, TYPE_ID, TYPE_NAME, audit_details, dermatology, room_status, visit_starting_now,
};

/// A patient of the demo whose name the PDF writes as plain text (no
/// parentheses or letters outside ASCII, which PDF strings escape).
fn plain_patient(d: &Derm) -> usize {
    d.patients
        .iter()
        .position(|(_, name)| name.is_ascii() && !name.contains(['(', ')', '\\']))
        .expect("a demo patient with a plain ASCII name")
}

/// A form with nothing but the session's token.
const NO_FIELDS: [(&str, &str); 0] = [];

/// The desk's GET of a file: (status, Content-Type, Content-Disposition,
/// body bytes).
async fn download(desk: &Desk<'_>, path: &str) -> (StatusCode, String, String, Vec<u8>) {
    let res = desk.app.send(get(path, Some(&desk.cookie))).await;
    let status = res.status();
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (kind, disposition) = (
        header(header::CONTENT_TYPE),
        header(header::CONTENT_DISPOSITION),
    );
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, kind, disposition, bytes.to_vec())
}

/// A visit of today with the dermatologist moved through the flow up to
/// `to` (roomed in a ready exam room on the way); returns the appointment's
/// id, its local day and the room it was in.
async fn visit_at(
    app: &TestApp,
    d: &Derm,
    patient: usize,
    to: VisitStatus,
) -> (String, Date, Option<String>) {
    let (id, day) = visit_starting_now(app, d, patient).await;
    let mut roomed = None;
    for status in [
        VisitStatus::Arrived,
        VisitStatus::CheckedIn,
        VisitStatus::Roomed,
        VisitStatus::WithProvider,
        VisitStatus::Checkout,
    ] {
        let step = match status {
            VisitStatus::Roomed => {
                let room = ready_exam_room(app, d).await;
                roomed = Some(room.clone());
                VisitStep::room(&room)
            }
            other => VisitStep::new(other, None).unwrap(),
        };
        let mut tx = app.db.begin(&app.org_id).await.unwrap();
        tx.visit_step(
            &id,
            &step,
            &FlowActor::Staff(Actor::system("test-desk")),
            Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        if status == to {
            break;
        }
    }
    (id, day, roomed)
}

async fn ready_exam_room(app: &TestApp, d: &Derm) -> String {
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    board
        .rooms
        .into_iter()
        .find(|r| r.kind == RoomKind::Exam && r.state.status == RoomStatus::Ready)
        .map(|r| r.room_id)
        .expect("a ready exam room")
}

/// Stores the dermatology visit's own template, as an administrator would.
async fn set_template(app: &TestApp, title: &str, body: &str, followup: Option<FollowUp>) {
    let mut set = PostVisitInstructions::default();
    set.by_type.insert(
        TYPE_ID.into(),
        carefront_domain::visit::InstructionsTemplate {
            title: title.into(),
            body: body.into(),
            followup,
        }
        .validate()
        .unwrap(),
    );
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.set_setting(&set, "test-setup").await.unwrap();
    tx.commit().await.unwrap();
}

async fn templates(app: &TestApp) -> PostVisitInstructions {
    app.db.setting(&app.org_id).await.unwrap()
}

async fn visit_path(app: &TestApp, a: &str) -> Vec<VisitStatus> {
    let history = app.db.visit_history(&app.org_id, a).await.unwrap();
    history.iter().map(|e| e.to).collect()
}

fn setting_updates() -> AuditFilter {
    AuditFilter {
        resource_type: Some("OrganizationSetting".into()),
        resource_id: Some("post_visit_instructions".into()),
        action: Some(Action::Update),
        ..AuditFilter::default()
    }
}

#[tokio::test]
async fn the_checkout_page_offers_the_follow_up_in_the_slot_finder_prefilled() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let two_weeks = FollowUp {
        count: 2,
        unit: IntervalUnit::Weeks,
    };
    set_template(
        &app,
        "After your skin check",
        "Keep it dry.",
        Some(two_weeks),
    )
    .await;
    let n = plain_patient(&d);
    let (a, day, _) = visit_at(&app, &d, n, VisitStatus::Checkout).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/today/visits/{a}/checkout");

    // The board's row links to the checkout.
    let (_, board) = desk
        .get(&format!("/today?location={}&date={day}", d.location))
        .await;
    assert!(
        board.contains(&format!(
            "id=\"checkout-{a}\" href=\"{path}\" aria-describedby=\"pt-{a}\">Checkout…</a>"
        )),
        "{board}"
    );

    let (status, html) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&format!("Checkout: {}", d.patients[n].1)));
    assert!(
        html.contains("Suggested for Dermatology visit: <strong>in 2 weeks</strong>"),
        "{html}"
    );
    let from = day.checked_add(14.days()).unwrap();
    let finder = format!(
        "/schedule/find?type={TYPE_ID}&from={from}&provider={}&patient={}",
        d.provider, d.patients[n].0
    );
    assert!(
        html.contains(&format!(
            "id=\"book-followup\" href=\"{}\"",
            finder.replace('&', "&amp;")
        )),
        "{html}"
    );
    assert!(html.contains("<button type=\"submit\">Complete visit</button>"));
    assert!(html.contains(&format!("href=\"/today/visits/{a}/instructions.pdf\"")));
    assert!(
        html.contains("Keep it dry."),
        "the instructions can be read"
    );
    assert!(!html.contains("style="), "the CSP allows no inline style");

    // The link opens the finder with the patient, type, provider and day.
    let (status, found) = desk.get(&finder).await;
    assert_eq!(status, StatusCode::OK);
    assert!(found.contains(&format!("<option value=\"{TYPE_ID}\" selected")));
    assert!(found.contains(&format!("<option value=\"{}\" selected", d.provider)));
    assert!(found.contains(&format!("name=\"from\" value=\"{from}\"")));
    assert!(found.contains(&format!("name=\"patient\" value=\"{}\"", d.patients[n].0)));

    // Without an interval the finder opens from today.
    set_template(&app, "After your skin check", "Keep it dry.", None).await;
    let (_, html) = desk.get(&path).await;
    assert!(html.contains("No follow-up interval is suggested for Dermatology visit."));
    let plain = format!(
        "/schedule/find?type={TYPE_ID}&amp;provider={}&amp;patient={}",
        d.provider, d.patients[n].0
    );
    assert!(html.contains(&plain), "{html}");
}

#[tokio::test]
async fn the_instructions_pdf_names_the_patient_and_is_audited_as_an_export() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let n = plain_patient(&d);
    let (a, day, _) = visit_at(&app, &d, n, VisitStatus::Checkout).await;
    let pid = d.patients[n].0.clone();
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/today/visits/{a}/instructions.pdf");

    let (status, kind, disposition, bytes) = download(&desk, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/pdf");
    assert!(
        disposition.starts_with("attachment; filename=\"post-visit-instructions-")
            && disposition.ends_with(&format!("-{day}.pdf\"")),
        "{disposition}"
    );
    assert!(bytes.starts_with(b"%PDF"));
    let text = String::from_utf8_lossy(&bytes);
    let name = &d.patients[n].1;
    assert!(text.contains(&format!("({name}) Tj")), "{name} in {text}");
    // No template of its own: the default, filled in.
    let patient = app
        .db
        .get::<carefront_domain::patient::Patient>(&app.org_id, &pid)
        .await
        .unwrap()
        .value;
    assert!(text.contains("(After your visit) Tj"));
    assert!(text.contains(&format!("(Dear {} {},) Tj", patient.given, patient.family)));
    assert!(text.contains(&format!("Thank you for your {TYPE_NAME} at")));

    let exports = AuditFilter {
        patient_id: Some(pid.clone()),
        action: Some(Action::Export),
        ..AuditFilter::default()
    };
    let details = audit_details(&app, exports.clone()).await;
    assert_eq!(details.len(), 1, "{details:?}");
    assert_eq!(
        details[0],
        format!("post-visit instructions PDF downloaded (Appointment/{a}, type {TYPE_ID})")
    );

    // Print: the same PDF, opened in the browser.
    let (status, _, disposition, again) = download(&desk, &format!("{path}?print=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        disposition.starts_with("inline; filename="),
        "{disposition}"
    );
    assert!(again.starts_with(b"%PDF"));
    let details = audit_details(&app, exports).await;
    assert!(details[0].starts_with("post-visit instructions PDF opened to print"));
    app.db
        .verify_audit_chain(&app.org_id, |_| {})
        .await
        .unwrap()
        .unwrap();

    // Before the provider has seen the patient there is nothing to hand out.
    let (early, _, _) = visit_at(&app, &d, n, VisitStatus::CheckedIn).await;
    let (status, _, _, _) =
        download(&desk, &format!("/today/visits/{early}/instructions.pdf")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, html) = desk.get(&format!("/today/visits/{early}/checkout")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("Checked in: this visit cannot be checked out (the provider has not seen the patient yet)."),
        "{html}"
    );
}

#[tokio::test]
async fn completing_moves_the_visit_to_completed_and_the_room_to_cleaning() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    // Straight from the provider: the patient is still in the room.
    let (a, day, room) = visit_at(&app, &d, 0, VisitStatus::WithProvider).await;
    let room = room.unwrap();
    assert_eq!(
        room_status(&app, &d, &room).await,
        RoomStatus::Occupied {
            appointment_id: a.clone()
        }
    );
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/today/visits/{a}/checkout");
    let (status, _) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK);

    let (status, back, body) = desk.post(&path, &NO_FIELDS).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(back.starts_with("/today?"), "{back}");
    assert!(back.contains(&format!("date={day}")), "{back}");
    assert!(back.contains("done=completed"), "{back}");
    assert!(back.contains(&format!("a={a}")), "{back}");
    assert_eq!(
        visit_path(&app, &a).await.last(),
        Some(&VisitStatus::Completed)
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
    let (_, board) = desk.get(&back).await;
    assert!(board.contains("id=\"board-notice\""), "{board}");

    // Completed: the instructions can be handed out again, nothing more.
    let (status, html) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("This visit is completed."));
    assert!(!html.contains("id=\"checkout-form\""));
    let (status, _, html) = desk.post(&path, &NO_FIELDS).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("The visit was not completed."), "{html}");
    assert!(html.contains("the visit is completed"), "{html}");
    assert_eq!(
        visit_path(&app, &a).await.last(),
        Some(&VisitStatus::Completed)
    );
}

#[tokio::test]
async fn an_unknown_placeholder_is_refused_and_a_valid_template_changes_the_pdf() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let n = plain_patient(&d);
    let (a, _, _) = visit_at(&app, &d, n, VisitStatus::Checkout).await;
    let admin = Desk::new(&app, Role::Admin).await;

    let (_, overview) = admin.get("/admin").await;
    assert!(overview.contains("href=\"/admin/instructions\""));
    let (status, list) = admin.get("/admin/instructions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains(&format!("<th scope=\"row\">{TYPE_NAME}")),
        "{list}"
    );
    let (status, html) = admin
        .get(&format!("/admin/instructions?type={TYPE_ID}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("value=\"After your visit\""), "the default");
    assert!(html.contains("<code>{followup.interval}</code>"));
    let version = hidden_value(&html, "version").unwrap();
    let (status, _) = admin.get("/admin/instructions?type=no-such-type").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let form = |title: &'static str, body: &'static str, count: &'static str, action| {
        vec![
            ("type", TYPE_ID),
            ("title", title),
            ("body", body),
            ("followup.count", count),
            ("followup.unit", "weeks"),
            ("action", action),
        ]
    };
    let mut fields = form("Skin care", "Hello {patient.ssn}", "2", "save");
    fields.push(("version", &version));
    let (status, _, html) = admin.post("/admin/instructions", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains(
            "href=\"#f-body\">Instructions uses the unknown placeholder {patient.ssn}</a>"
        ),
        "{html}"
    );
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(
        html.contains(">Hello {patient.ssn}</textarea>"),
        "kept as typed"
    );
    let mut fields = form(" ", "Fine", "500", "save");
    fields.push(("version", &version));
    let (status, _, html) = admin.post("/admin/instructions", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Title is required."), "{html}");
    assert!(
        html.contains("Follow-up interval must be a whole number from 1 to 104 weeks."),
        "{html}"
    );
    assert_eq!(templates(&app).await, PostVisitInstructions::default());
    assert!(audit_details(&app, setting_updates()).await.is_empty());

    // A preview fills it in with an example patient and saves nothing.
    let body = "Keep the area clean, {patient.given}.\n\n- Come back {followup.interval}.";
    let title = "Caring for your skin after your {visit.type}";
    let mut fields = form(title, body, "2", "preview");
    fields.push(("version", &version));
    let (status, _, html) = admin.post("/admin/instructions", &fields).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<h3>Caring for your skin after your Dermatology visit</h3>"),
        "{html}"
    );
    assert!(html.contains("Keep the area clean, Jordan."));
    assert_eq!(templates(&app).await, PostVisitInstructions::default());

    let mut fields = form(title, body, "2", "save");
    fields.push(("version", &version));
    let (status, to, html) = admin.post("/admin/instructions", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(to, format!("/admin/instructions?type={TYPE_ID}&saved=1"));
    let saved = templates(&app).await;
    let own = saved.own(TYPE_ID).unwrap();
    assert_eq!(own.title, title);
    assert_eq!(own.followup.map(|f| f.days()), Some(14));
    let updates = audit_details(&app, setting_updates()).await;
    assert_eq!(
        updates,
        [format!(
            "post-visit instructions for {TYPE_NAME} ({TYPE_ID}): “{title}”, follow-up in 2 weeks"
        )]
    );
    let (_, html) = admin.get(&to).await;
    assert!(html.contains("id=\"template-notice\""));

    // A save from a form shown before that one is refused.
    let mut fields = form("Older", "Older text", "", "save");
    fields.push(("version", &version));
    let (status, _, html) = admin.post("/admin/instructions", &fields).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("was saved by someone else meanwhile"),
        "{html}"
    );
    assert_eq!(templates(&app).await, saved);

    // The desk's PDF now prints it.
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, _, _, bytes) =
        download(&desk, &format!("/today/visits/{a}/instructions.pdf")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("(Caring for your skin after your Dermatology visit) Tj"),
        "{text}"
    );
    let patient = app
        .db
        .get::<carefront_domain::patient::Patient>(&app.org_id, &d.patients[n].0)
        .await
        .unwrap()
        .value;
    assert!(text.contains(&format!("(Keep the area clean, {}.) Tj", patient.given)));
    assert!(text.contains("(Come back in 2 weeks.) Tj"));
    assert!(!text.contains("After your visit"));
}

#[tokio::test]
async fn roles_without_access_are_refused() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, day, _) = visit_at(&app, &d, 0, VisitStatus::Checkout).await;
    let page = format!("/today/visits/{a}/checkout");
    let pdf = format!("/today/visits/{a}/instructions.pdf");
    for role in [Role::Billing, Role::Admin, Role::Auditor] {
        let other = Desk::new(&app, role).await;
        assert_eq!(other.get(&page).await.0, StatusCode::FORBIDDEN, "{role}");
        assert_eq!(other.get(&pdf).await.0, StatusCode::FORBIDDEN, "{role}");
        let (status, _, _) = other.post(&page, &NO_FIELDS).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    for role in [Role::FrontDesk, Role::Lead, Role::Clinician, Role::Auditor] {
        let other = Desk::new(&app, role).await;
        let (status, _) = other.get("/admin/instructions").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let fields = [("type", TYPE_ID), ("title", "T"), ("body", "B")];
        let (status, _, _) = other.post("/admin/instructions", &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(templates(&app).await, PostVisitInstructions::default());
    assert_eq!(
        visit_path(&app, &a).await.last(),
        Some(&VisitStatus::Checkout)
    );
    let billing = Desk::new(&app, Role::Billing).await;
    let (_, board) = billing
        .get(&format!("/today?location={}&date={day}", d.location))
        .await;
    assert!(!board.contains("checkout-"), "billing gets no link");
    let clinician = Desk::new(&app, Role::Clinician).await;
    assert_eq!(clinician.get(&page).await.0, StatusCode::OK);
    assert_eq!(
        clinician
            .get(&format!("/today/visits/{}/checkout", new_id()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn completing_and_saving_templates_need_the_sessions_csrf_token() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, _, _) = visit_at(&app, &d, 0, VisitStatus::Checkout).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/today/visits/{a}/checkout");
    let res = app.post_form(&path, &desk.cookie, &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token");
    let res = app
        .post_form(&path, &desk.cookie, &[("csrf", "not-the-token")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a wrong token");
    assert_eq!(
        visit_path(&app, &a).await.last(),
        Some(&VisitStatus::Checkout)
    );

    let admin = Desk::new(&app, Role::Admin).await;
    let (_, html) = admin
        .get(&format!("/admin/instructions?type={TYPE_ID}"))
        .await;
    let version = hidden_value(&html, "version").unwrap();
    let fields = [
        ("type", TYPE_ID),
        ("version", version.as_str()),
        ("title", "Forged"),
        ("body", "Forged"),
        ("action", "save"),
    ];
    let res = app
        .post_form("/admin/instructions", &admin.cookie, &fields)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(templates(&app).await, PostVisitInstructions::default());
}
