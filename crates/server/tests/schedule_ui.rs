//! The scheduling screens over HTTP, in-process, on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL: the day view in local time,
//! booking through the form (once, even when posted twice), a slot taken
//! meanwhile, cancelling with a reason, rescheduling, the slot finder and
//! the waitlist, a lead's override, who may change the book, and the types
//! for new or established patients only (named at once on the booking form,
//! left out of the slot finder, explained on the reschedule page, and the
//! demo's book agreeing with the rule).

mod common;
mod schedule_setup;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, BookingRequest, CancelReason, Modality,
    PatientEligibility,
};
use carefront_store::{Actor, AppointmentDetails, BookAppointment, new_id};
use common::*;
use jiff::{SignedDuration, Timestamp};
use schedule_setup::{DERMATOLOGY, Derm, TYPE_ID, TYPE_NAME, dermatology};

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

// ---------------------------------------------------------------- new or established patients

/// The dermatologist's type for new patients only, and one for established
/// patients only.
const NEW_ONLY: &str = "derm-new";
const ESTABLISHED_ONLY: &str = "derm-follow-up";

async fn add_type(app: &TestApp, id: &str, name: &str, eligibility: PatientEligibility) {
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.create_appointment_type(
        AppointmentType {
            id: id.into(),
            name: name.into(),
            duration_minutes: 20,
            color: "#1f5f8b".into(),
            specialties: vec![DERMATOLOGY.into()],
            practitioner_ids: vec![],
            resource_kind: None,
            modality: Modality::InPerson,
            eligibility,
            min_notice_minutes: 0,
            max_days_ahead: 365,
            instructions: None,
            intake_form: None,
            active: true,
        },
        &Actor::system("test-setup"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The dermatology schedule with both types; patient 0 is established (a
/// fulfilled visit 400 days ago, recorded as the demo's history is), the
/// others have never been seen.
async fn new_and_established(app: &TestApp) -> Derm {
    let d = dermatology(app).await;
    add_type(
        app,
        NEW_ONLY,
        "New dermatology patient",
        PatientEligibility::New,
    )
    .await;
    add_type(
        app,
        ESTABLISHED_ONLY,
        "Dermatology follow-up",
        PatientEligibility::Established,
    )
    .await;
    seen(app, &d, 0, 400).await;
    d
}

/// Records a fulfilled visit of the patient with the dermatologist `days`
/// days before the test day, at 10:00.
async fn seen(app: &TestApp, d: &Derm, patient: usize, days: i64) {
    let start = d.at(10, 0) - SignedDuration::from_hours(24 * days);
    let end = start + SignedDuration::from_mins(20);
    let visit = Appointment {
        id: new_id(),
        patient_id: d.patients[patient].0.clone(),
        practitioner_id: d.provider.clone(),
        location_id: d.location.clone(),
        appointment_type_id: TYPE_ID.into(),
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
        arrived_at: Some(start - SignedDuration::from_mins(5)),
    };
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.record_appointment(visit, "test-setup").await.unwrap();
    tx.commit().await.unwrap();
    let established = app
        .db
        .patient_established(&app.org_id, &d.patients[patient].0, Timestamp::now())
        .await
        .unwrap();
    assert!(established, "seen {days} days ago");
}

/// The booking page of 9:00 on the test day for a type and patient.
fn book_path(d: &Derm, kind: &str, patient: Option<usize>) -> String {
    let link = d
        .book_link(9, 0)
        .replace("&amp;", "&")
        .replace(&format!("type={TYPE_ID}"), &format!("type={kind}"));
    match patient {
        Some(i) => format!("{link}&patient={}", d.patients[i].0),
        None => link,
    }
}

const SEEN: &str = "Appointment type is for new patients; this patient has been seen here in \
                    the last 3 years: choose a type for established patients";
const NOT_SEEN: &str = "Appointment type is for established patients; this patient has not been \
                        seen here in the last 3 years: choose a type for new patients";

#[tokio::test]
async fn the_booking_form_names_a_type_the_patient_may_not_book_as_soon_as_they_are_chosen() {
    let app = TestApp::new().await;
    let d = new_and_established(&app).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;

    // An established patient and a type for new patients: refused at the
    // type field before anything is typed or sent.
    let (status, html) = desk.get(&book_path(&d, NEW_ONLY, Some(0))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("{SEEN}.")), "{html}");
    assert!(
        html.contains("id=\"f-appointment_type_id-error\""),
        "at the type field: {html}"
    );
    let select = &html[html.find("<select id=\"f-appointment_type_id\"").unwrap()..];
    let select = &select[..select.find('>').unwrap()];
    assert!(select.contains("aria-invalid=\"true\""), "{select}");
    assert!(
        html.contains("Before you book, please correct:")
            && html.contains("href=\"#f-appointment_type_id\""),
        "the summary links to the type: {html}"
    );
    assert!(!html.contains("Nothing was saved"), "nothing was sent yet");
    // Sending it anyway is refused the same way, and books nothing.
    let token = hidden_value(&html, "idempotency_key").unwrap();
    let start = d.at(9, 0).to_string();
    let mut fields = book_fields(&d, &start, 0, &token);
    fields.retain(|(k, _)| *k != "appointment_type_id");
    fields.push(("appointment_type_id", NEW_ONLY));
    let (status, _, body) = desk.post("/schedule/book", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains(SEEN), "{body}");
    assert!(d.appointments(&app).await.is_empty());

    // A patient never seen and a type for established patients: the same
    // at once, the other way round.
    let (_, html) = desk.get(&book_path(&d, ESTABLISHED_ONLY, Some(1))).await;
    assert!(html.contains(NOT_SEEN), "{html}");
    assert!(html.contains("id=\"f-appointment_type_id-error\""));

    // Types that suit the patient, and no patient chosen yet: no error.
    for (kind, patient) in [
        (NEW_ONLY, Some(1)),
        (ESTABLISHED_ONLY, Some(0)),
        (TYPE_ID, Some(0)),
        (TYPE_ID, Some(1)),
        (NEW_ONLY, None),
        (ESTABLISHED_ONLY, None),
    ] {
        let (status, html) = desk.get(&book_path(&d, kind, patient)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !html.contains("is for new patients")
                && !html.contains("is for established patients")
                && !html.contains("aria-invalid"),
            "{kind} {patient:?}: {html}"
        );
    }
    // And booking the type that suits goes through.
    let token = random_token(&desk, &d).await;
    let mut fields = book_fields(&d, &start, 1, &token);
    fields.retain(|(k, _)| *k != "appointment_type_id");
    fields.push(("appointment_type_id", NEW_ONLY));
    let (status, _, body) = desk.post("/schedule/book", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
}

/// A fresh idempotency token from the booking page.
async fn random_token(desk: &Desk<'_>, d: &Derm) -> String {
    let (_, html) = desk.get(&book_path(d, TYPE_ID, None)).await;
    hidden_value(&html, "idempotency_key").unwrap()
}

#[tokio::test]
async fn the_slot_finder_offers_only_the_types_the_patient_may_book() {
    let app = TestApp::new().await;
    let d = new_and_established(&app).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let day = d.day.to_string();
    let find = |kind: &str, patient: Option<usize>| {
        let mut path = format!("/schedule/find?type={kind}&from={day}&to={day}&part=morning");
        if let Some(i) = patient {
            path.push_str(&format!("&patient={}", d.patients[i].0));
        }
        path
    };
    let option = |kind: &str| format!("<option value=\"{kind}\"");

    // No patient: every type, and free times for each.
    for kind in [NEW_ONLY, ESTABLISHED_ONLY] {
        let (status, page) = desk.get(&find(kind, None)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&option(NEW_ONLY)) && page.contains(&option(ESTABLISHED_ONLY)));
        assert!(page.contains("id=\"results\""), "{kind}: {page}");
    }

    // An established patient: the type for new patients is not offered;
    // follow-ups are, with times.
    let (_, page) = desk.get(&find(ESTABLISHED_ONLY, Some(0))).await;
    assert!(!page.contains(&option(NEW_ONLY)), "{page}");
    assert!(page.contains(&option(ESTABLISHED_ONLY)) && page.contains(&option(TYPE_ID)));
    assert!(
        page.contains("this patient has been seen here in the last 3 years"),
        "{page}"
    );
    assert!(page.contains("id=\"results\""), "{page}");
    assert!(page.contains(&format!("type={ESTABLISHED_ONLY}&amp;provider=")));

    // A patient never seen who asks for a follow-up: named at the type,
    // no times offered (the chosen type stays selected to be changed).
    let (status, page) = desk.get(&find(ESTABLISHED_ONLY, Some(1))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(NOT_SEEN), "{page}");
    assert!(page.contains("id=\"f-type-error\""), "{page}");
    assert!(!page.contains("id=\"results\""), "{page}");
    assert!(!page.contains("/schedule/book?"), "nothing to book: {page}");
    assert!(page.contains(&option(NEW_ONLY)) && page.contains(&option(TYPE_ID)));
    // The type that suits them is found.
    let (_, page) = desk.get(&find(NEW_ONLY, Some(1))).await;
    assert!(page.contains("id=\"results\""), "{page}");
    assert!(!page.contains(&option(ESTABLISHED_ONLY)), "{page}");
}

#[tokio::test]
async fn rescheduling_a_type_that_no_longer_suits_the_patient_says_why() {
    let app = TestApp::new().await;
    let d = new_and_established(&app).await;
    // Patient 1's first visit, booked while new, then they were seen
    // elsewhere in the practice: a new-patient visit no longer suits them.
    let booking = BookAppointment {
        appointment_type_id: NEW_ONLY.into(),
        request: BookingRequest {
            practitioner_id: d.provider.clone(),
            location_id: d.location.clone(),
            start: d.at(9, 0),
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        },
        patient_id: d.patients[1].0.clone(),
        details: AppointmentDetails {
            reason_for_visit: Some("Rash".into()),
            notes: None,
        },
        series_id: None,
        lead_override: None,
        idempotency_key: None,
    };
    let id = app
        .db
        .book(
            &app.org_id,
            &booking,
            &Actor::system("other-desk"),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .appointment
        .id;
    seen(&app, &d, 1, 30).await;

    let desk = Desk::new(&app, Role::FrontDesk).await;
    let path = format!("/appointments/{id}/reschedule?from={}", d.day);
    let (status, page) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!(
            "This appointment cannot be moved as it is: </strong>{SEEN}."
        )),
        "warned before choosing: {page}"
    );
    let version = hidden_value(&page, "version").unwrap();
    let token = hidden_value(&page, "idempotency_key").unwrap();
    let choice = format!("{}|{}|{}", d.at(15, 0), d.provider, d.location);
    let (status, _, body) = desk
        .post(
            &format!("/appointments/{id}/reschedule"),
            &[
                ("version", version.as_str()),
                ("idempotency_key", token.as_str()),
                ("slot", choice.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains(&format!("Nothing was changed: {SEEN}.")),
        "the real reason: {body}"
    );
    assert!(!body.contains("no longer free"), "{body}");
    let all = d.appointments(&app).await;
    let kept = all.iter().find(|a| a.appointment.id == id).unwrap();
    assert_eq!(kept.appointment.status, AppointmentStatus::Booked);
    assert_eq!(kept.appointment.start, d.at(9, 0));
    assert_eq!(all.len(), 1, "nothing booked");

    // A time that is taken still says so.
    let other = d.book(&app, 2, 10, 0).await;
    let (_, page) = desk
        .get(&format!("/appointments/{other}/reschedule?from={}", d.day))
        .await;
    assert!(!page.contains("cannot be moved as it is"), "{page}");
    let version = hidden_value(&page, "version").unwrap();
    let token = hidden_value(&page, "idempotency_key").unwrap();
    let taken = format!("{}|{}|{}", d.at(9, 0), d.provider, d.location);
    let (status, _, body) = desk
        .post(
            &format!("/appointments/{other}/reschedule"),
            &[
                ("version", version.as_str()),
                ("idempotency_key", token.as_str()),
                ("slot", taken.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("that time is no longer free"), "{body}");
}

/// The demo's appointment book agrees with the rule as the database applies
/// it: every patient with a future booking may book its type now (those
/// booked as established have a visit that happened in the last three
/// years; those booked as new have none), so the desk may reschedule them.
#[tokio::test]
async fn the_demo_book_agrees_with_the_new_or_established_rule() {
    let app = TestApp::new().await;
    // The demo's patient count: with fewer, every established patient has
    // been seen in the window's past days anyway.
    carefront_server::demo::add_patients(
        &app.db,
        &app.org_id,
        carefront_server::demo::DEFAULT_SEED,
        carefront_server::demo::DEFAULT_PATIENTS - 40,
        |_| {},
    )
    .await
    .unwrap();
    let now = Timestamp::now();
    let stored = carefront_server::demo::seed_schedule(
        &app.db,
        &app.org_id,
        carefront_server::demo::DEFAULT_SEED,
        now,
        |_, _| {},
    )
    .await
    .unwrap();
    assert!(stored > 0);
    let types = app.db.appointment_types(&app.org_id, true).await.unwrap();
    let query = carefront_store::AppointmentQuery {
        from: Some(now),
        statuses: vec![AppointmentStatus::Booked],
        ..Default::default()
    };
    let page = carefront_store::Page {
        offset: 0,
        count: 100_000,
    };
    let (future, _) = app
        .db
        .appointments(&app.org_id, &query, page)
        .await
        .unwrap();
    let mut established = std::collections::HashMap::new();
    let mut kinds = Vec::new();
    for a in future.iter().map(|v| &v.value.appointment) {
        let e = match established.get(&a.patient_id) {
            Some(&e) => e,
            None => {
                let e = app
                    .db
                    .patient_established(&app.org_id, &a.patient_id, now)
                    .await
                    .unwrap();
                established.insert(a.patient_id.clone(), e);
                e
            }
        };
        let kind = types
            .iter()
            .map(|t| &t.value)
            .find(|t| t.id == a.appointment_type_id)
            .unwrap();
        assert!(
            kind.accepts_patient(e),
            "{} for patient {} (established: {e})",
            kind.id,
            a.patient_id
        );
        if !kinds.contains(&kind.eligibility) {
            kinds.push(kind.eligibility);
        }
    }
    assert!(
        kinds.contains(&PatientEligibility::Established),
        "{kinds:?} over {} future visits",
        future.len()
    );
    assert_eq!(
        app.db.check_claims(&app.org_id).await.unwrap(),
        Vec::<String>::new()
    );
}
