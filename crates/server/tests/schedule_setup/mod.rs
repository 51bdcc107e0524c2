//! A schedule for the scheduling tests (`schedule_ui.rs`, `browser.rs`):
//! the demo clinic's dermatologist, with an appointment type, opening hours
//! and a weekly template created through the store API, and nothing else
//! on their calendar for the next two weeks.
#![allow(dead_code)]

use crate::common::{TestApp, body_text, get, location};
use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::directory::{Location, PractitionerRole};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, AvailabilityBlock, BookingRequest,
    CancelReason, Modality, OpeningHours, PatientEligibility, Template,
};
use carefront_domain::visit::RoomStatus;
use carefront_store::{
    Actor, AppointmentDetails, AppointmentQuery, AppointmentRecord, AuditFilter, BookAppointment,
    Page, new_id,
};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

pub const DERMATOLOGY: &str = "207N00000X";
pub const TYPE_ID: &str = "derm-visit";
pub const TYPE_NAME: &str = "Dermatology visit";
pub const ALL: Page = Page {
    offset: 0,
    count: 1000,
};

pub struct Derm {
    pub location: String,
    pub location_name: String,
    pub provider: String,
    pub tz: TimeZone,
    /// Tomorrow at the location: every slot of the template is ahead.
    pub day: Date,
    /// Demo patients: (id, display name).
    pub patients: Vec<(String, String)>,
}

impl Derm {
    /// The instant of a local time on `day`.
    pub fn at(&self, hour: i8, minute: i8) -> Timestamp {
        self.day
            .at(hour, minute, 0, 0)
            .to_zoned(self.tz.clone())
            .unwrap()
            .timestamp()
    }

    /// The booking page's address for a time on `day`, as the pages write
    /// it in HTML (`&` escaped).
    pub fn book_link(&self, hour: i8, minute: i8) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("type", TYPE_ID)
            .append_pair("provider", &self.provider)
            .append_pair("location", &self.location)
            .append_pair("start", &self.at(hour, minute).to_string());
        format!("/schedule/book?{}", s.finish()).replace('&', "&amp;")
    }

    pub fn day_path(&self) -> String {
        format!("/schedule?location={}&date={}", self.location, self.day)
    }

    /// Books through the store, as another desk would.
    pub async fn book(&self, app: &TestApp, patient: usize, hour: i8, minute: i8) -> String {
        let booking = BookAppointment {
            appointment_type_id: TYPE_ID.into(),
            request: BookingRequest {
                practitioner_id: self.provider.clone(),
                location_id: self.location.clone(),
                start: self.at(hour, minute),
                resource_id: None,
                patient_established: None,
                ignore: vec![],
            },
            patient_id: self.patients[patient].0.clone(),
            details: AppointmentDetails {
                reason_for_visit: Some("Mole check".into()),
                notes: None,
            },
            series_id: None,
            lead_override: None,
            idempotency_key: None,
        };
        app.db
            .book(
                &app.org_id,
                &booking,
                &Actor::system("other-desk"),
                Timestamp::now(),
            )
            .await
            .unwrap()
            .appointment
            .id
    }

    /// Every appointment of the provider in the next two weeks.
    pub async fn appointments(&self, app: &TestApp) -> Vec<AppointmentRecord> {
        let query = AppointmentQuery {
            practitioner_id: Some(self.provider.clone()),
            from: Some(self.at(0, 0).checked_sub(48.hours()).unwrap()),
            until: Some(self.at(0, 0).checked_add((14 * 24).hours()).unwrap()),
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
}

fn t(s: &str) -> Time {
    s.parse().unwrap()
}

/// Sets up the dermatologist's schedule: type "Dermatology visit" (20
/// minutes, in person, no room needed), their first location open 7 AM to
/// 7 PM every day, their template 9–12 and 1–5 every day.
pub async fn dermatology(app: &TestApp) -> Derm {
    let org = app.org_id.as_str();
    let db = &app.db;
    let actor = Actor::system("test-setup");
    let (roles, _) = db.search::<PractitionerRole>(org, &[], ALL).await.unwrap();
    let role = roles
        .iter()
        .map(|r| &r.value)
        .find(|r| r.specialty == DERMATOLOGY && r.active)
        .expect("the demo clinic has a dermatologist");
    let (provider, location) = (role.practitioner_id.clone(), role.location_id.clone());
    let loc = db.get::<Location>(org, &location).await.unwrap().value;
    let tz = TimeZone::get(&loc.timezone).unwrap();
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    let day = today.tomorrow().unwrap();

    // One write per transaction: each audits itself.
    let mut tx = db.begin(org).await.unwrap();
    tx.create_appointment_type(
        AppointmentType {
            id: TYPE_ID.into(),
            name: TYPE_NAME.into(),
            duration_minutes: 20,
            color: "#7b3fa0".into(),
            specialties: vec![DERMATOLOGY.into()],
            practitioner_ids: vec![],
            resource_kind: None,
            modality: Modality::InPerson,
            eligibility: PatientEligibility::Any,
            min_notice_minutes: 0,
            max_days_ahead: 365,
            instructions: None,
            intake_form: None,
            active: true,
        },
        &actor,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let hours = (1..=7)
        .map(|weekday| OpeningHours {
            weekday,
            open: t("07:00"),
            close: t("19:00"),
        })
        .collect();
    let mut tx = db.begin(org).await.unwrap();
    tx.set_location_hours(&location, hours, &actor)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Whatever demo schedule the provider may have gives way to this one.
    for existing in db.templates(org, Some(&provider)).await.unwrap() {
        let mut tx = db.begin(org).await.unwrap();
        tx.delete_template(&existing.id, &actor).await.unwrap();
        tx.commit().await.unwrap();
    }
    let range = (
        today.at(0, 0, 0, 0),
        today.checked_add(15.days()).unwrap().at(0, 0, 0, 0),
    );
    for e in db.schedule_exceptions(org, range.0, range.1).await.unwrap() {
        let mut tx = db.begin(org).await.unwrap();
        tx.delete_exception(&e.id, &actor).await.unwrap();
        tx.commit().await.unwrap();
    }
    let blocks = (1..=7)
        .flat_map(|weekday| {
            [("09:00", "12:00"), ("13:00", "17:00")].map(|(s, e)| AvailabilityBlock {
                weekday,
                start: t(s),
                end: t(e),
                appointment_type_ids: vec![],
                overbook_limit: None,
            })
        })
        .collect();
    let mut tx = db.begin(org).await.unwrap();
    tx.create_template(
        Template {
            id: String::new(),
            practitioner_id: provider.clone(),
            location_id: location.clone(),
            effective_from: today.yesterday().unwrap(),
            effective_until: None,
            overbook_limit: 0,
            blocks,
        },
        &actor,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (found, _) = db
        .search::<Patient>(
            org,
            &[],
            Page {
                offset: 0,
                count: 6,
            },
        )
        .await
        .unwrap();
    let derm = Derm {
        location,
        location_name: loc.name,
        provider,
        tz,
        day,
        patients: found
            .into_iter()
            .map(|p| (p.id, p.value.display_name()))
            .collect(),
    };
    // A clear calendar for the tests.
    for a in derm.appointments(app).await {
        if a.appointment.status.holds_time() {
            let mut tx = db.begin(org).await.unwrap();
            tx.set_appointment_status(
                &a.appointment.id,
                AppointmentStatus::Cancelled,
                Some(CancelReason::Other),
                None,
                &actor,
                Timestamp::now(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    }
    derm
}

/// A staff member signed in through the form, with the session's CSRF
/// token, for the board's pages.
pub struct Desk<'a> {
    pub app: &'a TestApp,
    pub cookie: String,
    pub csrf: String,
}

impl<'a> Desk<'a> {
    pub async fn new(app: &'a TestApp, role: Role) -> Desk<'a> {
        let cookie = app.sign_in(role).await;
        let csrf = app.csrf(&cookie).await;
        Desk { app, cookie, csrf }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = self.app.send(get(path, Some(&self.cookie))).await;
        let status = res.status();
        (status, body_text(res).await)
    }

    /// Posts a form with the session's token; (status, Location, body).
    pub async fn post<K: AsRef<str>, V: AsRef<str>>(
        &self,
        path: &str,
        fields: &[(K, V)],
    ) -> (StatusCode, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        let res = self.app.post_form(path, &self.cookie, &all).await;
        let status = res.status();
        let to = location(&res);
        (status, to, body_text(res).await)
    }
}

/// An appointment of today with the dermatologist, booked an hour ago and
/// starting at the last five-minute mark (so the patient may arrive and be
/// marked a no-show), recorded as the demo schedule is; `max_seat` lets
/// several share the time. Returns its id and local day.
pub async fn visit_starting_now(app: &TestApp, d: &Derm, patient: usize) -> (String, Date) {
    let now = Timestamp::now();
    let start = Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(300)).unwrap();
    let a = Appointment {
        id: new_id(),
        patient_id: d.patients[patient].0.clone(),
        practitioner_id: d.provider.clone(),
        location_id: d.location.clone(),
        appointment_type_id: TYPE_ID.into(),
        resource_ids: vec![],
        start,
        end: start + SignedDuration::from_mins(20),
        status: AppointmentStatus::Booked,
        status_changed_at: now - SignedDuration::from_hours(1),
        max_seat: 20,
        cancel_reason: None,
        override_reason: None,
        series_id: None,
        rescheduled_from: None,
        arrived_at: None,
    };
    let id = a.id.clone();
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.record_appointment(a, "test-setup").await.unwrap();
    tx.commit().await.unwrap();
    (id, start.to_zoned(d.tz.clone()).date())
}

/// The room's state on the dermatologist's rooms board.
pub async fn room_status(app: &TestApp, d: &Derm, room: &str) -> RoomStatus {
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    let found = board.rooms.into_iter().find(|r| r.room_id == room);
    found.unwrap().state.status
}

/// The details of the audit events matching `filter`, newest first.
pub async fn audit_details(app: &TestApp, filter: AuditFilter) -> Vec<String> {
    crate::common::fhir_api::audit_events(app, filter)
        .await
        .into_iter()
        .map(|e| e.entry.detail.unwrap_or_default())
        .collect()
}
