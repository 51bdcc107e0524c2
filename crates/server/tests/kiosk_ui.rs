//! The self check-in kiosk over HTTP, in-process, on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL: an administrator turns a device
//! into a kiosk (and is signed out there); a patient finds today's visit
//! with name and date of birth, sees only masked contact details, proposes
//! a change, signs, and the board shows "Arrived (kiosk)" while the desk's
//! check-in shows the consent and the change; wrong or forged input finds
//! nothing and writes nothing; after five lookups in a row that find
//! nothing the kiosk refuses lookups (a check-in at the kiosk starts the
//! count again); a revoked kiosk is refused.

mod common;
mod schedule_setup;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::patient::Patient;
use carefront_domain::visit::{ChangedBy, VisitStatus};
use carefront_store::{AuditFilter, KioskDevice, KioskSession};
use common::*;
use schedule_setup::{Derm, Desk, audit_details, dermatology, visit_starting_now};

/// A kiosk device: its credential cookie and its form token.
struct Kiosk<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    id: String,
}

impl<'a> Kiosk<'a> {
    /// Started by an administrator on the device, at the dermatologist's
    /// location.
    async fn start(app: &'a TestApp, d: &Derm) -> Kiosk<'a> {
        let admin = Desk::new(app, Role::Admin).await;
        let res = app
            .post_form(
                "/admin/kiosks",
                &admin.cookie,
                &[
                    ("csrf", &admin.csrf),
                    ("name", "Front entrance"),
                    ("location_id", &d.location),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/kiosk");
        let cookie = set_cookie(&res, "cf_kiosk").unwrap();
        // The administrator is signed out on the device, cookie and session.
        let cleared = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("cf_session=;"));
        assert!(cleared);
        let res = app.send(get("/", Some(&admin.cookie))).await;
        assert!(location(&res).starts_with("/login"));
        let kiosks = app.db.kiosks(&app.org_id).await.unwrap();
        let id = kiosks
            .iter()
            .find(|k| k.name == "Front entrance")
            .unwrap()
            .id
            .clone();
        let html = body_text(app.send(get("/kiosk", Some(&cookie))).await).await;
        Kiosk {
            app,
            csrf: hidden_value(&html, "csrf").unwrap(),
            cookie,
            id,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = self.app.send(get(path, Some(&self.cookie))).await;
        (res.status(), body_text(res).await)
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = self.app.post_form(path, &self.cookie, &all).await;
        (res.status(), body_text(res).await)
    }
}

/// What a patient types: first name, last name, date of birth as M/D/YYYY.
async fn typed(app: &TestApp, patient_id: &str) -> (String, String, String) {
    let p = app
        .db
        .get::<Patient>(&app.org_id, patient_id)
        .await
        .unwrap();
    let dob = p.value.birth_date;
    (
        p.value.given.to_lowercase(),
        p.value.family.to_uppercase(),
        format!("{}/{}/{}", dob.month(), dob.day(), dob.year()),
    )
}

impl Kiosk<'_> {
    /// The device as stored now.
    async fn device(&self) -> KioskDevice {
        let kiosks = self.app.db.kiosks(&self.app.org_id).await.unwrap();
        kiosks.into_iter().find(|k| k.id == self.id).unwrap()
    }

    /// Looks up someone who has no appointment here: a miss.
    async fn miss(&self, n: usize) -> (StatusCode, String) {
        let dob = format!("1/{}/1950", n + 1);
        self.post(
            "/kiosk/find",
            &[
                ("given", "Nobody"),
                ("family", "Here"),
                ("birth_date", &dob),
            ],
        )
        .await
    }
}

const TOO_MANY_TRIES: &str = "Too many tries. Please see the front desk.";

async fn visit_status(app: &TestApp, d: &Derm, id: &str) -> (VisitStatus, Option<ChangedBy>) {
    let date = jiff::Timestamp::now().to_zoned(d.tz.clone()).date();
    let board = app.db.day_board(&app.org_id, &d.location, date).await;
    let v = board
        .unwrap()
        .visits
        .into_iter()
        .find(|v| v.visit.appointment_id == id);
    let v = v.unwrap().visit;
    (v.status, v.by)
}

#[tokio::test]
async fn a_patient_checks_in_at_the_kiosk_and_the_desk_sees_it() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (id, date) = visit_starting_now(&app, &d, 0).await;
    let patient_id = d.patients[0].0.clone();
    let record = app
        .db
        .get::<Patient>(&app.org_id, &patient_id)
        .await
        .unwrap();
    let kiosk = Kiosk::start(&app, &d).await;

    let (status, start) = kiosk.get("/kiosk").await;
    assert_eq!(status, StatusCode::OK);
    assert!(start.contains(&d.location_name));
    // No staff shell: no navigation, search or sign-out.
    assert!(!start.contains("Find patient") && !start.contains("Sign out"));

    let (given, family, dob) = typed(&app, &patient_id).await;
    let who = [
        ("given", given.as_str()),
        ("family", family.as_str()),
        ("birth_date", dob.as_str()),
    ];
    let (status, contact) = kiosk.post("/kiosk/find", &who).await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert!(contact.contains("Are your contact details still right?"));
    // Masked: the last four digits only, never the number or the address.
    let phone = &record.value.phones[0].number;
    assert!(contact.contains(&format!("ending in {}", &phone[phone.len() - 4..])));
    assert!(!contact.contains(&phone[2..]));
    for a in &record.value.addresses {
        assert!(!contact.contains(&a.address.line1));
    }
    if record.value.home_address().is_some() {
        assert!(
            contact.contains("<dt>Home address</dt><dd>on file"),
            "{contact}"
        );
    }
    assert!(!contact.contains(&record.value.mrn));
    let appointment_id = hidden_value(&contact, "appointment_id").unwrap();
    assert_eq!(appointment_id, id);

    let mut step = who.to_vec();
    step.extend([("appointment_id", id.as_str()), ("phone", "(512) 555-0199")]);
    let (status, consent) = kiosk.post("/kiosk/contact", &step).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert!(consent.contains("Consent to treatment"));
    assert_eq!(hidden_value(&consent, "phone").unwrap(), "(512) 555-0199");

    let seq = app.db.board_seq(&app.org_id, &d.location).await.unwrap();
    step.push(("signature", "M10 10 L40 30 L80 12 L120 40"));
    let (status, done) = kiosk.post("/kiosk/check-in", &step).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("You are checked in"));

    let (status, by) = visit_status(&app, &d, &id).await;
    assert_eq!(status, VisitStatus::Arrived);
    assert_eq!(
        by,
        Some(ChangedBy::Kiosk {
            device_id: kiosk.id.clone()
        })
    );
    // The record is not changed at the kiosk: the desk confirms it.
    let after = app
        .db
        .get::<Patient>(&app.org_id, &patient_id)
        .await
        .unwrap();
    assert_eq!(after.version, record.version);

    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (_, board) = desk
        .get(&format!("/today?location={}&date={date}", d.location))
        .await;
    assert!(board.contains("Arrived (kiosk)"), "{board}");
    assert!(board.contains("<td class=\"c-forms\">Consent signed</td>"));
    // Boards already open get the Forms cell with the arrival.
    let (status, events) = desk
        .get(&format!(
            "/today/events?location={}&date={date}&after={seq}&wait=0",
            d.location
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let visit = &events["events"][0]["visits"][0];
    assert_eq!(visit["id"], id.as_str(), "{events}");
    assert_eq!(visit["text"], "Arrived (kiosk)");
    assert_eq!(visit["consent_signed"], true);
    assert_eq!(visit["forms"], "Consent signed");
    let (_, checkin) = desk.get(&format!("/today/visits/{id}/checkin")).await;
    assert!(checkin.contains("Arrived at the kiosk"));
    assert!(checkin.contains("consent to treatment signed on the screen"));
    assert!(checkin.contains("asked to change their phone (512) 555-0199"));
    // The consent counts: forms and consents are no longer outstanding.
    assert!(!checkin.contains("consent to treatment not signed"));

    let consent = audit_details(
        &app,
        AuditFilter {
            resource_type: Some("Consent".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        consent,
        ["consent-to-treat-v1 signed at the kiosk; contact changes proposed for the desk"]
    );
    let found = app
        .db
        .audit_events(
            &app.org_id,
            &AuditFilter {
                patient_id: Some(patient_id.clone()),
                action: Some(Action::Read),
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .unwrap()
        .0;
    assert!(
        found
            .iter()
            .any(|e| e.entry.actor_name == format!("kiosk {}", kiosk.id))
    );

    // A second go finds the patient already here.
    let (_, again) = kiosk.post("/kiosk/find", &who).await;
    assert!(again.contains("You are already checked in"));
}

#[tokio::test]
async fn wrong_or_forged_input_finds_nothing_and_writes_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (id, _) = visit_starting_now(&app, &d, 0).await;
    let (other, _) = visit_starting_now(&app, &d, 1).await;
    let kiosk = Kiosk::start(&app, &d).await;
    let (given, family, dob) = typed(&app, &d.patients[0].0).await;
    let before = app.audit_count().await;

    // A near miss is not a match, and says nothing of whose record was near.
    let wrong_year = format!("{}1", &dob[..dob.len() - 1]);
    let (status, page) = kiosk
        .post(
            "/kiosk/find",
            &[
                ("given", &given),
                ("family", &family),
                ("birth_date", &wrong_year),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("could not find an appointment"));
    assert!(!page.contains("appointment_id\" value=\"0"));
    // Only the failed lookup is recorded.
    assert_eq!(app.audit_count().await, before + 1);

    let (status, page) = kiosk
        .post(
            "/kiosk/find",
            &[
                ("given", ""),
                ("family", &family),
                ("birth_date", "31/31/1990"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("First name is required."));
    assert!(page.contains("Date of birth must be a date"));

    let who = [
        ("given", given.as_str()),
        ("family", family.as_str()),
        ("birth_date", dob.as_str()),
    ];
    let mut step = who.to_vec();
    step.extend([("appointment_id", id.as_str()), ("phone", "555")]);
    let (status, page) = kiosk.post("/kiosk/contact", &step).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Phone "), "{page}");

    let mut step = who.to_vec();
    step.push(("appointment_id", id.as_str()));
    let (status, page) = kiosk.post("/kiosk/check-in", &step).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Signature is required"));

    // Someone else's visit, named with this patient's details.
    let mut forged = who.to_vec();
    forged.extend([("appointment_id", other.as_str()), ("signature_typed", "x")]);
    let (_, page) = kiosk.post("/kiosk/check-in", &forged).await;
    assert!(page.contains("could not find an appointment"));

    // Without the kiosk's form token.
    let res = app.post_form("/kiosk/find", &kiosk.cookie, &who).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    for visit in [&id, &other] {
        assert_eq!(
            visit_status(&app, &d, visit).await.0,
            VisitStatus::Scheduled
        );
        assert!(
            app.db
                .kiosk_check_in_of(&app.org_id, visit)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn kiosks_are_set_up_by_admins_and_revoked_kiosks_are_refused() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;

    // Not a kiosk: no cookie, or a staff session.
    let res = app.send(get("/kiosk", None)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, page) = desk.get("/kiosk").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("not signed in as a self check-in kiosk"));
    let (status, _) = desk.get("/admin/kiosks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad input starts nothing.
    let admin = Desk::new(&app, Role::Admin).await;
    let (status, _, page) = admin
        .post(
            "/admin/kiosks",
            &[("name", " "), ("location_id", "nowhere")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Name is required."));
    assert!(page.contains("Location must be one of the organization"));
    assert!(app.db.kiosks(&app.org_id).await.unwrap().is_empty());

    // A kiosk cannot reach staff pages with its credential.
    let kiosk = Kiosk::start(&app, &d).await;
    let res = app.send(get("/today", Some(&kiosk.cookie))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login"));

    let admin = Desk::new(&app, Role::Admin).await;
    let (_, list) = admin.get("/admin/kiosks").await;
    assert!(list.contains("Front entrance"));
    let (status, to, _) = admin
        .post(&format!("/admin/kiosks/{}/revoke", kiosk.id), &[("x", "")])
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/kiosks")
    );
    let (status, page) = kiosk.get("/kiosk").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Not a kiosk"));
    let (_, list) = admin.get("/admin/kiosks").await;
    assert!(!list.contains("Front entrance"));
}

#[tokio::test]
async fn five_lookups_that_find_nothing_lock_the_kiosk_for_five_minutes() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (id, _) = visit_starting_now(&app, &d, 0).await;
    let kiosk = Kiosk::start(&app, &d).await;
    let (given, family, dob) = typed(&app, &d.patients[0].0).await;
    let who = [
        ("given", given.as_str()),
        ("family", family.as_str()),
        ("birth_date", dob.as_str()),
    ];

    // Invalid input is not a lookup that found nothing: it does not count.
    let (status, _) = kiosk
        .post(
            "/kiosk/find",
            &[("given", ""), ("family", ""), ("birth_date", "")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(kiosk.device().await.failed_lookups, 0);

    for n in 0..4 {
        let (status, page) = kiosk.miss(n).await;
        assert_eq!(status, StatusCode::OK, "miss {n}");
        assert!(page.contains("could not find an appointment"));
        assert!(!page.contains(TOO_MANY_TRIES));
    }
    assert_eq!(kiosk.device().await.failed_lookups, 4);
    let before = jiff::Timestamp::now().as_microsecond();
    // The fifth miss locks the kiosk, and says so.
    let (status, page) = kiosk.miss(4).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains(TOO_MANY_TRIES), "{page}");
    let device = kiosk.device().await;
    let until = device.lookups_locked_until_us.unwrap();
    let after = jiff::Timestamp::now().as_microsecond();
    assert!((before + 300_000_000..=after + 300_000_000).contains(&until));
    assert_eq!(device.failed_lookups, 0);

    // Now even the right name and date of birth finds nothing, and no
    // lookup runs: nothing is shown, nothing is read of the patient.
    let patient_events = || async {
        let filter = AuditFilter {
            patient_id: Some(d.patients[0].0.clone()),
            ..Default::default()
        };
        app.db
            .audit_events(&app.org_id, &filter, 0, 1)
            .await
            .unwrap()
            .1
    };
    let patient_reads = patient_events().await;
    let (status, page) = kiosk.post("/kiosk/find", &who).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains(TOO_MANY_TRIES));
    assert!(!page.contains("Are your contact details still right?"));
    assert!(hidden_value(&page, "appointment_id").is_none());
    assert!(!page.contains(&family));
    // The later steps look the patient up too, and are refused the same.
    let mut step = who.to_vec();
    step.extend([("appointment_id", id.as_str())]);
    let (status, page) = kiosk.post("/kiosk/contact", &step).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!page.contains("Please read and sign"));
    step.push(("signature", "M10 10 L40 30 L80 12 L120 40"));
    let (status, page) = kiosk.post("/kiosk/check-in", &step).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!page.contains("You are checked in"));
    assert_eq!(visit_status(&app, &d, &id).await.0, VisitStatus::Scheduled);
    let still = patient_events().await;
    assert_eq!(still, patient_reads);
    // The start screen says so too.
    let (status, page) = kiosk.get("/kiosk").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(TOO_MANY_TRIES));

    // The device's audit: five misses, the lock, three refusals.
    let actor = format!("kiosk {}", kiosk.id);
    let searches = audit_details(
        &app,
        AuditFilter {
            actor_name: Some(actor.clone()),
            action: Some(Action::Search),
            ..Default::default()
        },
    )
    .await;
    let missed = searches
        .iter()
        .filter(|d| d.contains("no appointment found"))
        .count();
    let refused = searches.iter().filter(|d| d.contains("refused")).count();
    assert_eq!((missed, refused), (5, 3), "{searches:?}");
    let locked = audit_details(
        &app,
        AuditFilter {
            actor_name: Some(actor),
            action: Some(Action::AccountLocked),
            resource_type: Some("KioskDevice".into()),
            resource_id: Some(kiosk.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(locked.len(), 1);
    assert!(locked[0].contains("300 s after 5"), "{locked:?}");

    // Five minutes on (the store takes the time), the lock has expired and
    // the count starts afresh; a miss raced in while locked changes nothing.
    let at = |us: i64| jiff::Timestamp::from_microsecond(us).unwrap();
    let session = KioskSession {
        org_id: app.org_id.clone(),
        device: kiosk.device().await,
        csrf_token: kiosk.csrf.clone(),
    };
    assert!(session.device.lookups_locked(at(until - 1)));
    assert!(!session.device.lookups_locked(at(until)));
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    let raced = tx
        .kiosk_lookup_failed(&session, None, at(until - 1))
        .await
        .unwrap();
    assert_eq!(raced.locked_until_us, Some(until));
    let later = tx
        .kiosk_lookup_failed(&session, None, at(until))
        .await
        .unwrap();
    assert_eq!((later.failed_count, later.locked_until_us), (1, None));
    tx.commit().await.unwrap();
    let device = kiosk.device().await;
    assert_eq!(
        (device.failed_lookups, device.lookups_locked_until_us),
        (1, None)
    );
    // And the kiosk looks up again.
    let (status, page) = kiosk.post("/kiosk/find", &who).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Are your contact details still right?"));
}

#[tokio::test]
async fn a_check_in_at_the_kiosk_starts_the_count_again() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (id, _) = visit_starting_now(&app, &d, 0).await;
    let kiosk = Kiosk::start(&app, &d).await;
    for n in 0..4 {
        assert_eq!(kiosk.miss(n).await.0, StatusCode::OK);
    }
    assert_eq!(kiosk.device().await.failed_lookups, 4);

    let (given, family, dob) = typed(&app, &d.patients[0].0).await;
    let mut step = vec![
        ("given", given.as_str()),
        ("family", family.as_str()),
        ("birth_date", dob.as_str()),
        ("appointment_id", id.as_str()),
    ];
    // Finding the appointment is not enough: only the check-in resets.
    let (status, _) = kiosk.post("/kiosk/find", &step[..3]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kiosk.device().await.failed_lookups, 4);
    step.push(("signature", "M10 10 L40 30 L80 12 L120 40"));
    let (status, done) = kiosk.post("/kiosk/check-in", &step).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("You are checked in"));
    assert_eq!(kiosk.device().await.failed_lookups, 0);

    for n in 0..4 {
        let (status, page) = kiosk.miss(n).await;
        assert_eq!(status, StatusCode::OK, "miss {n} after the check-in");
        assert!(!page.contains(TOO_MANY_TRIES));
    }
    let device = kiosk.device().await;
    assert_eq!(device.failed_lookups, 4);
    assert!(!device.lookups_locked(jiff::Timestamp::now()));
    assert_eq!(kiosk.miss(4).await.0, StatusCode::TOO_MANY_REQUESTS);
}
