//! The scheduling screens over HTTP, in-process, on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL: the day view in local time,
//! booking through the form (once, even when posted twice), a slot taken
//! meanwhile, cancelling with a reason, rescheduling, the slot finder and
//! the waitlist, a lead's override, and who may change the book.

mod common;
mod schedule_setup;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::scheduling::{AppointmentStatus, CancelReason};
use common::*;
use schedule_setup::{Derm, TYPE_ID, TYPE_NAME, dermatology};

struct Desk<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

impl<'a> Desk<'a> {
    async fn new(app: &'a TestApp, role: Role) -> Desk<'a> {
        let cookie = app.sign_in(role).await;
        let csrf = app.csrf(&cookie).await;
        Desk { app, cookie, csrf }
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = self.app.post_form(path, &self.cookie, &all).await;
        let status = res.status();
        let to = location(&res);
        (status, to, body_text(res).await)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = self.app.send(get(path, Some(&self.cookie))).await;
        let status = res.status();
        (status, body_text(res).await)
    }
}

/// The booking form of a slot for a patient, as the page renders it.
async fn booking_form(desk: &Desk<'_>, d: &Derm, patient: usize, hour: i8, minute: i8) -> String {
    let link = d.book_link(hour, minute).replace("&amp;", "&");
    let path = format!("{link}&patient={}", d.patients[patient].0);
    let (status, html) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    html
}

/// The fields the booking form posts.
fn book_fields<'a>(
    d: &'a Derm,
    start: &'a str,
    patient: usize,
    token: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("idempotency_key", token),
        ("practitioner_id", d.provider.as_str()),
        ("location_id", d.location.as_str()),
        ("patient_id", d.patients[patient].0.as_str()),
        ("start", start),
        ("appointment_type_id", TYPE_ID),
        ("reason_for_visit", "Rash on the left arm"),
        ("notes", "Prefers afternoon calls"),
    ]
}

#[tokio::test]
async fn the_day_view_shows_a_booked_appointment_and_free_slots_in_local_time() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    d.book(&app, 0, 10, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, html) = desk.get(&d.day_path()).await;
    assert_eq!(status, StatusCode::OK);
    // The zone is named, the card shows the patient at 10:00 local time with
    // its type and status in words.
    assert!(
        html.contains(d.tz.iana_name().unwrap()),
        "the zone is named"
    );
    let card = html
        .split("<article class=\"appt ")
        .nth(1)
        .expect("an appointment card");
    let card = &card[..card.find("</article>").unwrap()];
    assert!(card.contains("10:00 AM–10:20 AM"), "{card}");
    assert!(card.contains(&d.patients[0].1), "{card}");
    assert!(card.contains(TYPE_NAME), "{card}");
    assert!(card.contains("Booked"), "status in words: {card}");
    assert!(card.contains("Mole check"), "{card}");
    assert!(card.contains("t-derm-visit"), "coloured by type: {card}");
    // Free slots are links to the booking page at local 9:00, 9:20, ...;
    // the booked time is not offered.
    assert!(html.contains(&d.book_link(9, 0)), "9:00 AM is free");
    assert!(html.contains(&d.book_link(9, 40)), "9:40 AM is free");
    assert!(html.contains(&d.book_link(10, 20)), "10:20 AM is free");
    assert!(!html.contains(&d.book_link(10, 0)), "10:00 AM is taken");
    assert!(html.contains("9:00 AM · Free"));
    assert!(
        !html.contains(&d.book_link(12, 0)),
        "the lunch break is not offered"
    );
    // The type colours come from our own stylesheet (no inline style).
    assert!(html.contains("href=\"/schedule/types.css\""));
    assert!(!html.contains("style="));
    let (status, css) = desk.get("/schedule/types.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains(".t-derm-visit { --type: #7b3fa0; }"), "{css}");
    // The week view of the provider shows the same appointment.
    let (status, week) = desk
        .get(&format!(
            "/schedule/week?provider={}&location={}&date={}",
            d.provider, d.location, d.day
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(week.contains(&d.patients[0].1));
    assert!(week.contains(&d.book_link(9, 0)));
}

#[tokio::test]
async fn the_same_booking_form_posted_twice_books_once() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let html = booking_form(&desk, &d, 1, 9, 20).await;
    assert!(
        html.contains(&d.patients[1].1),
        "the chosen patient is shown"
    );
    let token = hidden_value(&html, "idempotency_key").expect("an idempotency token");
    assert!(token.len() >= 32, "a random token: {token}");
    let start = hidden_value(&html, "start").unwrap();
    assert_eq!(start, d.at(9, 20).to_string());
    let fields = book_fields(&d, &start, 1, &token);

    let (first, to_first, body) = desk.post("/schedule/book", &fields).await;
    assert_eq!(first, StatusCode::SEE_OTHER, "{body}");
    let (second, to_second, body) = desk.post("/schedule/book", &fields).await;
    assert_eq!(second, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        to_first, to_second,
        "the second post answers with the first booking"
    );

    let booked: Vec<_> = d
        .appointments(&app)
        .await
        .into_iter()
        .filter(|a| a.appointment.status == AppointmentStatus::Booked)
        .collect();
    assert_eq!(booked.len(), 1, "exactly one appointment");
    let a = &booked[0];
    assert_eq!(a.appointment.patient_id, d.patients[1].0);
    assert_eq!(a.appointment.start, d.at(9, 20));
    assert_eq!(a.reason_for_visit.as_deref(), Some("Rash on the left arm"));
    assert_eq!(a.notes.as_deref(), Some("Prefers afternoon calls"));
    assert!(
        to_first.contains(&format!("a={}", a.appointment.id)),
        "{to_first}"
    );

    // The day view it lands on names the booking and shows the card.
    let (status, day) = desk.get(&to_first).await;
    assert_eq!(status, StatusCode::OK);
    assert!(day.contains("Booked: "), "a notice says what was done");
    assert!(day.contains(&format!("id=\"appt-{}\"", a.appointment.id)));
    assert!(!day.contains(&d.book_link(9, 20)), "9:20 is no longer free");
}

#[tokio::test]
async fn a_slot_taken_meanwhile_answers_with_a_conflict_and_the_form_again() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let html = booking_form(&desk, &d, 2, 11, 0).await;
    let token = hidden_value(&html, "idempotency_key").unwrap();
    let start = d.at(11, 0).to_string();
    // Another desk takes 11:00 while this form is open.
    d.book(&app, 3, 11, 0).await;

    let (status, _, body) = desk
        .post("/schedule/book", &book_fields(&d, &start, 2, &token))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains("Nothing was booked: this time is no longer free."),
        "{body}"
    );
    // The form again, with what was typed and other free times to pick.
    assert!(body.contains("id=\"book-form\""));
    assert!(body.contains("Rash on the left arm"));
    assert!(body.contains(&d.patients[2].1));
    assert!(
        body.contains(&format!("name=\"start\" value=\"{}\"", d.at(11, 20))),
        "the next free time is offered"
    );
    let booked: Vec<_> = d
        .appointments(&app)
        .await
        .into_iter()
        .filter(|a| a.appointment.status.holds_time())
        .collect();
    assert_eq!(booked.len(), 1, "only the other desk's booking");
    assert_eq!(booked[0].appointment.patient_id, d.patients[3].0);

    // Picking the offered time books it.
    let next = d.at(11, 20).to_string();
    let (status, _, body) = desk
        .post("/schedule/book", &book_fields(&d, &next, 2, &token))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
}

#[tokio::test]
async fn cancelling_with_a_reason_frees_the_slot() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let id = d.book(&app, 0, 14, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, page) = desk.get(&format!("/appointments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Cancellation reason"));
    let version = hidden_value(&page, "version").unwrap();

    // Without a reason: the field is named, nothing changes.
    let (status, _, body) = desk
        .post(
            &format!("/appointments/{id}/cancel"),
            &[("version", &version), ("cancel_reason", "")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Cancellation reason is required"), "{body}");
    assert!(body.contains("aria-invalid=\"true\""));
    let a = app
        .db
        .get::<carefront_store::AppointmentRecord>(&app.org_id, &id)
        .await
        .unwrap();
    assert_eq!(a.value.appointment.status, AppointmentStatus::Booked);

    let (status, to, body) = desk
        .post(
            &format!("/appointments/{id}/cancel"),
            &[("version", &version), ("cancel_reason", "pat-fb")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let a = app
        .db
        .get::<carefront_store::AppointmentRecord>(&app.org_id, &id)
        .await
        .unwrap()
        .value
        .appointment;
    assert_eq!(a.status, AppointmentStatus::Cancelled);
    assert_eq!(a.cancel_reason, Some(CancelReason::PatientFeelingBetter));

    // The day view shows the cancelled card with its reason, and 2:00 PM
    // free again.
    let (_, day) = desk.get(&to).await;
    assert!(day.contains("Cancelled: Patient: feeling better"), "{day}");
    assert!(day.contains("The time is free again."));
    assert!(day.contains(&d.book_link(14, 0)), "2:00 PM is free again");

    // A cancelled appointment cannot be cancelled again; the page says why.
    let (status, _, body) = desk
        .post(
            &format!("/appointments/{id}/cancel"),
            &[("cancel_reason", "pat")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains(
            "Nothing was changed: cannot change an appointment from cancelled to cancelled"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let html = booking_form(&desk, &d, 0, 9, 0).await;
    let token = hidden_value(&html, "idempotency_key").unwrap();
    let start = d.at(9, 0).to_string();
    let long = "x".repeat(501);
    let (status, _, body) = desk
        .post(
            "/schedule/book",
            &[
                ("idempotency_key", &token),
                ("practitioner_id", &d.provider),
                ("location_id", &d.location),
                ("patient_id", ""),
                ("start", &start),
                ("appointment_type_id", ""),
                ("reason_for_visit", &long),
                ("notes", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for sentence in [
        "Patient is required",
        "Appointment type is required",
        "Reason for visit must be at most 500 characters",
    ] {
        assert!(body.contains(sentence), "{sentence}: {body}");
    }
    assert!(body.contains("id=\"f-reason_for_visit-error\""));
    assert!(
        body.contains("href=\"#f-appointment_type_id\""),
        "the summary links to the field"
    );

    // A time that is not a time, or off the grid: named too.
    let (status, _, body) = desk
        .post(
            "/schedule/book",
            &book_fields(&d, "tomorrow-ish", 0, &token),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Time is not a time"), "{body}");
    let off_grid = d.at(9, 3).to_string();
    let (status, _, body) = desk
        .post("/schedule/book", &book_fields(&d, &off_grid, 0, &token))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Time must be on a 5-minute mark"), "{body}");

    assert!(d.appointments(&app).await.is_empty(), "nothing was booked");
}

#[tokio::test]
async fn rescheduling_moves_the_appointment_and_frees_the_old_time() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let id = d.book(&app, 4, 9, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, page) = desk
        .get(&format!("/appointments/{id}/reschedule?from={}", d.day))
        .await;
    assert_eq!(status, StatusCode::OK);
    let choice = format!("{}|{}|{}", d.at(15, 0), d.provider, d.location);
    assert!(
        page.contains(&format!("value=\"{choice}\"")),
        "3:00 PM is offered"
    );
    let version = hidden_value(&page, "version").unwrap();
    let token = hidden_value(&page, "idempotency_key").unwrap();

    // No time chosen: named.
    let (status, _, body) = desk
        .post(
            &format!("/appointments/{id}/reschedule"),
            &[("version", &version), ("idempotency_key", &token)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("New time is required"), "{body}");

    let (status, to, body) = desk
        .post(
            &format!("/appointments/{id}/reschedule"),
            &[
                ("version", &version),
                ("idempotency_key", &token),
                ("slot", &choice),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let all = d.appointments(&app).await;
    let old = all.iter().find(|a| a.appointment.id == id).unwrap();
    assert_eq!(old.appointment.status, AppointmentStatus::Cancelled);
    assert_eq!(
        old.appointment.cancel_reason,
        Some(CancelReason::Rescheduled)
    );
    let new = all
        .iter()
        .find(|a| a.appointment.rescheduled_from.as_deref() == Some(id.as_str()))
        .unwrap();
    assert_eq!(new.appointment.start, d.at(15, 0));
    assert_eq!(new.reason_for_visit.as_deref(), Some("Mole check"));
    let (_, day) = desk.get(&to).await;
    assert!(day.contains("Rescheduled: "), "{day}");
    assert!(day.contains(&d.book_link(9, 0)), "9:00 AM is free again");
    assert!(!day.contains(&d.book_link(15, 0)));
}

#[tokio::test]
async fn the_slot_finder_lists_next_available_and_waitlists_when_nothing_fits() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    d.book(&app, 0, 9, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, page) = desk.get("/schedule/find").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Appointment type"));

    // Mornings on the test day: 9:00 is taken, 9:20 is the first.
    let day = d.day.to_string();
    let (status, page) = desk
        .get(&format!(
            "/schedule/find?type={TYPE_ID}&from={day}&to={day}&part=morning&specialty=207N00000X"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = page.find(&d.book_link(9, 20)).expect("9:20 AM is offered");
    let second = page.find(&d.book_link(9, 40)).expect("9:40 AM is offered");
    assert!(first < second, "earliest first");
    assert!(!page.contains(&d.book_link(9, 0)));
    assert!(!page.contains(&d.book_link(13, 0)), "no afternoons");

    // A bad date range names the field.
    let (status, page) = desk
        .get(&format!(
            "/schedule/find?type={TYPE_ID}&from={day}&to=2001-01-01"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("To must be on or after the From date"),
        "{page}"
    );

    // Nothing on the day before yesterday fits: add the patient to the
    // waitlist with the wishes.
    let patient = &d.patients[5].0;
    let past = d
        .day
        .checked_sub(jiff::ToSpan::days(3))
        .unwrap()
        .to_string();
    let query = format!(
        "/schedule/find?type={TYPE_ID}&from={past}&to={past}&weekday=2&weekday=4&part=afternoon&patient={patient}"
    );
    let (_, page) = desk.get(&query).await;
    assert!(page.contains("Nothing fits: add to the waitlist"), "{page}");
    let fields = [
        ("type", TYPE_ID),
        ("from", past.as_str()),
        ("to", past.as_str()),
        ("weekday", "2"),
        ("weekday", "4"),
        ("part", "afternoon"),
        ("location", d.location.as_str()),
    ];
    // Without a patient: named, nothing written.
    let (status, _, body) = desk.post("/schedule/waitlist", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Patient is required"), "{body}");
    assert!(
        app.db
            .waitlist(&app.org_id, None, None)
            .await
            .unwrap()
            .is_empty()
    );

    let mut with_patient = fields.to_vec();
    with_patient.push(("patient", patient));
    let (status, to, body) = desk.post("/schedule/waitlist", &with_patient).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let entries = app.db.waitlist(&app.org_id, None, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0].value;
    assert_eq!(e.patient_id, *patient);
    assert_eq!(e.preferences.weekdays, [2, 4]);
    assert_eq!(
        e.preferences.location_ids,
        std::slice::from_ref(&d.location)
    );
    let (_, page) = desk.get(&to).await;
    assert!(page.contains("is on the waitlist"), "{page}");
    assert!(page.contains("On the waitlist"), "{page}");
    assert!(
        !page.contains("Add to the waitlist"),
        "not offered twice: {page}"
    );

    // The day view's waitlist panel lists the patient, with a way off it.
    let (_, day_view) = desk.get(&d.day_path()).await;
    let panel = &day_view[day_view.find("id=\"waitlist-title\"").unwrap()..];
    assert!(panel.contains(&d.patients[5].1), "{panel}");
    assert!(panel.contains("Tuesdays, Thursdays; afternoons"), "{panel}");
    let (status, to, _) = desk
        .post(
            &format!("/waitlist/{}/remove", entries[0].id),
            &[("back", &d.day_path())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.ends_with("done=removed"), "{to}");
    assert!(
        app.db
            .waitlist(&app.org_id, None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_lead_overbooks_with_a_reason_shown_on_the_card() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    d.book(&app, 0, 10, 0).await;

    // The front desk cannot book a taken time.
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let html = booking_form(&desk, &d, 1, 10, 0).await;
    assert!(html.contains("This time is no longer free: "), "{html}");
    assert!(
        !html.contains("f-override_reason\""),
        "no override for the desk"
    );

    let lead = Desk::new(&app, Role::Lead).await;
    let html = booking_form(&lead, &d, 1, 10, 0).await;
    assert!(html.contains("id=\"f-override_reason\""), "{html}");
    let token = hidden_value(&html, "idempotency_key").unwrap();
    let start = d.at(10, 0).to_string();
    let mut fields = book_fields(&d, &start, 1, &token);
    // Without a reason: named.
    let (status, _, body) = lead.post("/schedule/book", &fields).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    fields.push(("override_reason", "Urgent: spreading rash, Dr agreed"));
    let (status, to, body) = lead.post("/schedule/book", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, day) = lead.get(&to).await;
    assert!(
        day.contains("Override: Urgent: spreading rash, Dr agreed"),
        "{day}"
    );
    let booked = d
        .appointments(&app)
        .await
        .into_iter()
        .filter(|a| a.appointment.status.holds_time())
        .count();
    assert_eq!(booked, 2, "two visits at 10:00");
}

#[tokio::test]
async fn clinicians_and_billing_see_the_schedule_but_do_not_change_it() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let id = d.book(&app, 0, 10, 0).await;
    for role in [Role::Clinician, Role::Billing] {
        let viewer = Desk::new(&app, role).await;
        let (status, day) = viewer.get(&d.day_path()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(day.contains(&d.patients[0].1));
        assert!(!day.contains("/schedule/book?"), "{role}: no booking links");
        assert!(
            day.contains("9:00 AM · Free"),
            "{role}: free times still shown"
        );
        let (status, page) = viewer.get(&format!("/appointments/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("Cancel appointment"), "{role}");
        let (status, _, _) = viewer
            .post(
                &format!("/appointments/{id}/cancel"),
                &[("cancel_reason", "pat")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let auditor = Desk::new(&app, Role::Auditor).await;
    assert_eq!(auditor.get(&d.day_path()).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn search_results_and_the_summary_show_the_patients_next_appointment() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (patient_id, _) = d.patients[1].clone();
    let mrn = app
        .db
        .get::<carefront_domain::patient::Patient>(&app.org_id, &patient_id)
        .await
        .unwrap()
        .value
        .mrn;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (_, before) = desk.get(&format!("/patients?q={mrn}")).await;
    assert!(before.contains("None booked"), "{before}");
    let (_, summary) = desk.get(&format!("/patients/{patient_id}")).await;
    assert!(summary.contains("No upcoming appointment."), "{summary}");
    assert!(summary.contains(&format!("/schedule/find?patient={patient_id}")));

    let id = d.book(&app, 1, 10, 20).await;
    let day = d.day.strftime("%-m/%-d/%Y").to_string();
    let (_, results) = desk.get(&format!("/patients?q={mrn}")).await;
    assert!(!results.contains("None booked"), "{results}");
    assert!(results.contains(&format!("href=\"/appointments/{id}\"")));
    assert!(results.contains(&format!("{day} 10:20 AM")), "{results}");

    let (_, summary) = desk.get(&format!("/patients/{patient_id}")).await;
    assert!(summary.contains(TYPE_NAME), "{summary}");
    assert!(summary.contains("10:20 AM–10:40 AM"), "{summary}");
    assert!(summary.contains(&format!("/appointments/{id}/reschedule")));

    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.set_appointment_status(
        &id,
        AppointmentStatus::Cancelled,
        Some(CancelReason::Patient),
        None,
        &carefront_store::Actor::system("test"),
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, after) = desk.get(&format!("/patients?q={mrn}")).await;
    assert!(
        after.contains("None booked"),
        "a cancelled visit is not next"
    );
    let (_, summary) = desk.get(&format!("/patients/{patient_id}")).await;
    assert!(summary.contains("No upcoming appointment."));

    let viewer = Desk::new(&app, Role::Clinician).await;
    let (status, summary) = viewer.get(&format!("/patients/{patient_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !summary.contains("/schedule/find?patient="),
        "clinicians do not book"
    );
}
