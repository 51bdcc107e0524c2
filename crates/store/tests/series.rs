//! Recurring series: all occurrences booked in one transaction or none,
//! conflicts reported with alternatives, a chosen alternative booked, racing
//! series, idempotent retries, a lead's override, and the local time kept
//! across the spring-forward change. Run on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL.

use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::directory::{
    Address, Location, Organization, Practitioner, PractitionerRole,
};
use carefront_domain::directory::{Room, RoomKind};
use carefront_domain::scheduling::{
    AppointmentStatus, AppointmentType, AvailabilityBlock, BookingRequest, FitIssue, Modality,
    OccurrenceOutcome, OpeningHours, Override, PatientEligibility, PlannedOccurrence, ResourceKind,
    SeriesConflict, Template,
};
use carefront_store::testing::fresh_database;
use carefront_store::{
    Actor, AppointmentDetails, AppointmentQuery, AuditFilter, BookAppointment, BookError, Booked,
    Db, Page, StoreError, new_id,
};
use jiff::civil::{DateTime, Time, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

const FM: &str = "207Q00000X";
const ZONE: &str = "America/New_York";

/// Monday 2 March 2026, noon UTC: "now" in every test.
fn now() -> Timestamp {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

fn t(s: &str) -> Time {
    s.parse().unwrap()
}

fn ny(dt: DateTime) -> Timestamp {
    TimeZone::get(ZONE).unwrap().to_timestamp(dt).unwrap()
}

fn actor() -> Actor {
    Actor {
        actor_id: Some("u1".into()),
        actor_name: "desk".into(),
        role: Some("front_desk".into()),
        client_addr: None,
    }
}

/// Location "Main" (New York, open 07–19 daily) with two exam rooms;
/// provider A (family medicine, no overbooking) working 09–12 and 13–17
/// every day; type "visit" (30 min, needs an exam room).
struct Clinic {
    db: Db,
    url: String,
    org: String,
    location: String,
    dr_a: String,
    visit: String,
    patients: Vec<String>,
}

async fn clinic() -> Clinic {
    let (db, url) = fresh_database().await.unwrap();
    let org = new_id();
    let by = actor();
    let mut tx = db.begin(&org).await.unwrap();
    let organization = Organization {
        name: "Clinic".into(),
        phone: None,
        address: None,
        active: true,
    };
    tx.create(&org, &organization, "t").await.unwrap();
    let location = Location {
        name: "Main".into(),
        timezone: ZONE.into(),
        address: Address {
            line1: "10 Elm St".into(),
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
    let mut rooms = Vec::new();
    for name in ["Exam 1", "Exam 2"] {
        let room = Room {
            location_id: location.clone(),
            name: name.into(),
            kind: RoomKind::Exam,
        };
        rooms.push(tx.create(&new_id(), &room, "t").await.unwrap().id);
    }
    let mut providers = Vec::new();
    for family in ["Reyes"] {
        let p = Practitioner {
            npi: None,
            prefix: None,
            given: "Ana".into(),
            family: family.into(),
            suffix: None,
            gender: None,
            phone: None,
            email: None,
            active: true,
        };
        let id = tx.create(&new_id(), &p, "t").await.unwrap().id;
        let role = PractitionerRole {
            practitioner_id: id.clone(),
            location_id: location.clone(),
            specialty: FM.into(),
            active: true,
        };
        tx.create(&new_id(), &role, "t").await.unwrap();
        providers.push(id);
    }
    let mut patients = Vec::new();
    for p in carefront_synth::PatientGenerator::new(23).iter(0..8) {
        patients.push(tx.create_patient(&new_id(), p, "t").await.unwrap().id);
    }
    tx.commit().await.unwrap();

    for room in &rooms {
        let mut tx = db.begin(&org).await.unwrap();
        tx.add_room_resource(room, &by).await.unwrap();
        tx.commit().await.unwrap();
    }
    let hours = (1..=7)
        .map(|w| OpeningHours {
            weekday: w,
            open: t("07:00"),
            close: t("19:00"),
        })
        .collect();
    let mut tx = db.begin(&org).await.unwrap();
    tx.set_location_hours(&location, hours, &by).await.unwrap();
    tx.commit().await.unwrap();
    let visit = AppointmentType {
        id: String::new(),
        name: "Physical therapy".into(),
        duration_minutes: 30,
        color: "#2a7ab0".into(),
        specialties: vec![FM.into()],
        practitioner_ids: vec![],
        resource_kind: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: 0,
        max_days_ahead: 365,
        instructions: None,
        intake_form: None,
        active: true,
    };
    let mut tx = db.begin(&org).await.unwrap();
    let visit = tx.create_appointment_type(visit, &by).await.unwrap().id;
    tx.commit().await.unwrap();
    for p in &providers {
        let blocks = (1..=7)
            .flat_map(|w| {
                [("09:00", "12:00"), ("13:00", "17:00")].map(|(s, e)| AvailabilityBlock {
                    weekday: w,
                    start: t(s),
                    end: t(e),
                    appointment_type_ids: vec![],
                    overbook_limit: None,
                })
            })
            .collect();
        let template = Template {
            id: String::new(),
            practitioner_id: p.clone(),
            location_id: location.clone(),
            effective_from: date(2026, 1, 1),
            effective_until: None,
            overbook_limit: 0,
            blocks,
        };
        let mut tx = db.begin(&org).await.unwrap();
        tx.create_template(template, &by).await.unwrap();
        tx.commit().await.unwrap();
    }
    Clinic {
        db,
        url,
        org,
        location,
        dr_a: providers[0].clone(),
        visit,
        patients,
    }
}

type Answer = Result<Result<Vec<Booked>, Vec<PlannedOccurrence>>, BookError>;

impl Clinic {
    fn booking(&self, practitioner: &str, patient: usize, start: Timestamp) -> BookAppointment {
        BookAppointment {
            appointment_type_id: self.visit.clone(),
            request: BookingRequest {
                practitioner_id: practitioner.into(),
                location_id: self.location.clone(),
                start,
                resource_id: None,
                patient_established: None,
                ignore: vec![],
            },
            patient_id: self.patients[patient].clone(),
            details: AppointmentDetails {
                reason_for_visit: Some("knee rehabilitation".into()),
                notes: None,
            },
            series_id: None,
            lead_override: None,
            idempotency_key: None,
        }
    }

    async fn series(&self, booking: &BookAppointment, count: u16) -> Answer {
        self.series_moved(booking, count, &BTreeMap::new()).await
    }

    async fn series_moved(
        &self,
        booking: &BookAppointment,
        count: u16,
        moved: &BTreeMap<u16, Timestamp>,
    ) -> Answer {
        self.db
            .book_series(&self.org, booking, 1, count, moved, &actor(), now())
            .await
    }

    async fn appointment_count(&self) -> i64 {
        let page = Page {
            offset: 0,
            count: 0,
        };
        self.db
            .appointments(&self.org, &AppointmentQuery::default(), page)
            .await
            .unwrap()
            .1
    }

    async fn created_events(&self) -> i64 {
        let filter = AuditFilter {
            action: Some(Action::Create),
            resource_type: Some("Appointment".into()),
            ..AuditFilter::default()
        };
        self.db
            .audit_events(&self.org, &filter, 0, 1)
            .await
            .unwrap()
            .1
    }

    async fn consistent(&self) {
        let problems = self.db.check_claims(&self.org).await.unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        self.db
            .verify_audit_chain(&self.org, |_| {})
            .await
            .unwrap()
            .unwrap();
    }
}

fn booked(answer: Answer) -> Vec<Booked> {
    match answer {
        Ok(Ok(b)) => b,
        Ok(Err(plan)) => panic!("not booked: {plan:#?}"),
        Err(e) => panic!("refused: {e:?}"),
    }
}

fn conflicts(answer: Answer) -> Vec<PlannedOccurrence> {
    match answer {
        Ok(Err(plan)) => plan,
        Ok(Ok(b)) => panic!("booked {} appointments", b.len()),
        Err(e) => panic!("refused: {e:?}"),
    }
}

#[tokio::test]
async fn a_weekly_series_of_eight_is_booked_and_linked() {
    let c = clinic().await;
    let mut booking = c.booking(&c.dr_a, 0, ny(date(2026, 3, 9).at(10, 0, 0, 0)));
    booking.idempotency_key = Some("pt-series-1".into());
    let series = booked(c.series(&booking, 8).await);
    assert_eq!(series.len(), 8);
    let series_id = series[0]
        .appointment
        .value
        .appointment
        .series_id
        .clone()
        .expect("linked by a series id");
    for (i, b) in series.iter().enumerate() {
        let a = &b.appointment.value.appointment;
        assert!(!b.replayed);
        assert_eq!(a.series_id.as_deref(), Some(series_id.as_str()));
        assert_eq!(a.status, AppointmentStatus::Booked);
        assert_eq!(a.patient_id, c.patients[0]);
        let week = jiff::Span::new().weeks(i64::try_from(i).unwrap());
        assert_eq!(a.start, ny(date(2026, 3, 9).at(10, 0, 0, 0) + week));
        assert_eq!(
            b.appointment.value.reason_for_visit.as_deref(),
            Some("knee rehabilitation")
        );
    }
    assert_eq!(c.appointment_count().await, 8);
    let stored = c.db.series_appointments(&c.org, &series_id).await.unwrap();
    assert_eq!(
        stored.iter().map(|a| &a.id).collect::<Vec<_>>(),
        series.iter().map(|b| &b.appointment.id).collect::<Vec<_>>()
    );
    // Audited like single bookings: one event per appointment, naming the
    // patient and the series.
    let filter = AuditFilter {
        action: Some(Action::Create),
        resource_type: Some("Appointment".into()),
        ..AuditFilter::default()
    };
    let (events, total) = c.db.audit_events(&c.org, &filter, 0, 100).await.unwrap();
    assert_eq!(total, 8);
    for e in &events {
        assert_eq!(e.entry.patient_id.as_deref(), Some(c.patients[0].as_str()));
        assert_eq!(
            e.entry.detail.as_deref(),
            Some(format!("series {series_id}").as_str())
        );
    }

    // A retry returns the same series and books nothing; the key with
    // another request is refused.
    let again = booked(c.series(&booking, 8).await);
    assert!(again.iter().all(|b| b.replayed));
    assert_eq!(
        again.iter().map(|b| &b.appointment.id).collect::<Vec<_>>(),
        series.iter().map(|b| &b.appointment.id).collect::<Vec<_>>()
    );
    match c.series(&booking, 6).await {
        Err(BookError::Store(StoreError::Conflict(m))) => assert!(m.contains("pt-series-1"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(c.appointment_count().await, 8);
    assert_eq!(c.created_events().await, 8);
    c.consistent().await;
}

#[tokio::test]
async fn one_conflicting_occurrence_books_nothing_and_comes_with_alternatives() {
    let c = clinic().await;
    // Another patient already has dr A at 10:00 in the fourth week.
    let taken = ny(date(2026, 3, 30).at(10, 0, 0, 0));
    let other = c.booking(&c.dr_a, 5, taken);
    c.db.book(&c.org, &other, &actor(), now()).await.unwrap();
    let events_before = c.created_events().await;

    let booking = c.booking(&c.dr_a, 0, ny(date(2026, 3, 9).at(10, 0, 0, 0)));
    let plan = conflicts(c.series(&booking, 8).await);
    assert_eq!(plan.len(), 8);
    let conflicting: Vec<u16> = plan.iter().filter(|o| !o.fits()).map(|o| o.index).collect();
    assert_eq!(conflicting, [3]);
    let OccurrenceOutcome::Conflict {
        conflict,
        alternatives,
    } = &plan[3].outcome
    else {
        unreachable!()
    };
    assert!(
        matches!(conflict, SeriesConflict::NeedsOverride(ev)
            if ev.issues == [FitIssue::OverCapacity { booked: 1, limit: 0 }]),
        "{conflict:?}"
    );
    let near: Vec<Timestamp> = alternatives.iter().map(|s| s.start).collect();
    assert_eq!(
        near,
        [
            ny(date(2026, 3, 30).at(9, 30, 0, 0)),
            ny(date(2026, 3, 30).at(10, 30, 0, 0)),
            ny(date(2026, 3, 30).at(9, 0, 0, 0)),
        ]
    );
    // Nothing was written: no appointment, no claim, no audit event.
    assert_eq!(c.appointment_count().await, 1);
    assert_eq!(c.created_events().await, events_before);

    // Choosing the first alternative books all eight.
    let moved = BTreeMap::from([(3, near[0])]);
    let series = booked(c.series_moved(&booking, 8, &moved).await);
    assert_eq!(series.len(), 8);
    assert_eq!(series[3].appointment.value.appointment.start, near[0]);
    assert_eq!(c.appointment_count().await, 9);
    c.consistent().await;
}

#[tokio::test]
async fn a_moved_occurrence_stays_near_and_may_not_overlap_another() {
    let c = clinic().await;
    let booking = c.booking(&c.dr_a, 0, ny(date(2026, 3, 9).at(10, 0, 0, 0)));
    let onto_second = BTreeMap::from([(0, ny(date(2026, 3, 16).at(10, 0, 0, 0)))]);
    let plan = conflicts(c.series_moved(&booking, 3, &onto_second).await);
    assert!(matches!(
        &plan[0].outcome,
        OccurrenceOutcome::Conflict {
            conflict: SeriesConflict::OverlapsOccurrence(1),
            ..
        }
    ));
    // Only the series' own occurrences move, and not far.
    for moved in [
        BTreeMap::from([(3, ny(date(2026, 3, 30).at(10, 0, 0, 0)))]),
        BTreeMap::from([(1, ny(date(2026, 6, 1).at(10, 0, 0, 0)))]),
    ] {
        match c.series_moved(&booking, 3, &moved).await {
            Err(BookError::Store(StoreError::Invalid(e))) => {
                assert!(e.for_field("moved").is_some())
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(c.appointment_count().await, 0);
}

#[tokio::test]
async fn a_lead_books_a_series_past_the_schedule_with_a_reason() {
    let c = clinic().await;
    let taken = ny(date(2026, 3, 16).at(10, 0, 0, 0));
    c.db.book(&c.org, &c.booking(&c.dr_a, 5, taken), &actor(), now())
        .await
        .unwrap();
    // A room is free, dr A is not in the second week: only a lead may
    // overbook.
    let mut booking = c.booking(&c.dr_a, 0, ny(date(2026, 3, 9).at(10, 0, 0, 0)));
    booking.lead_override = Some(Override {
        role: Role::FrontDesk,
        reason: "post-op protocol".into(),
    });
    assert!(matches!(
        c.series(&booking, 3).await,
        Err(BookError::Refused(
            carefront_domain::scheduling::Refusal::OverrideNotPermitted(_)
        ))
    ));
    booking.lead_override = Some(Override {
        role: Role::Lead,
        reason: "post-op protocol".into(),
    });
    let series = booked(c.series(&booking, 3).await);
    let overridden: Vec<Option<&str>> = series
        .iter()
        .map(|b| b.appointment.value.appointment.override_reason.as_deref())
        .collect();
    assert_eq!(overridden, [None, Some("post-op protocol"), None]);
    c.consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_racing_series_for_overlapping_slots_one_wins_entirely() {
    let c = clinic().await;
    let other = Db::connect(&c.url).await.unwrap();
    // Weekly at 14:00 and at 14:15 with dr A: every occurrence overlaps.
    let starts = [
        ny(date(2026, 3, 9).at(14, 0, 0, 0)),
        ny(date(2026, 3, 9).at(14, 15, 0, 0)),
    ];
    let mut handles = Vec::new();
    for i in 0..6 {
        let db = if i % 2 == 0 {
            c.db.clone()
        } else {
            other.clone()
        };
        let booking = c.booking(&c.dr_a, i, starts[i % 2]);
        let org = c.org.clone();
        handles.push(tokio::spawn(async move {
            db.book_series(&org, &booking, 1, 8, &BTreeMap::new(), &actor(), now())
                .await
        }));
    }
    let mut winners = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(Ok(series)) => winners.push(series),
            Ok(Err(plan)) => assert!(plan.iter().any(|o| !o.fits())),
            Err(BookError::Store(StoreError::Conflict(_))) => {}
            Err(e) => panic!("a loser must see a conflict, not {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one series wins");
    assert_eq!(winners[0].len(), 8);
    assert_eq!(c.appointment_count().await, 8, "no occurrence of a loser");
    let series: BTreeSet<_> = winners[0]
        .iter()
        .map(|b| b.appointment.value.appointment.series_id.clone())
        .collect();
    assert_eq!(series.len(), 1);
    other.close().await;
    c.consistent().await;
}

#[tokio::test]
async fn a_series_keeps_its_local_time_across_spring_forward() {
    let c = clinic().await;
    // Clocks spring forward on Sunday 8 March 2026 in New York.
    let booking = c.booking(&c.dr_a, 0, ny(date(2026, 3, 2).at(9, 0, 0, 0)));
    let series = booked(c.series(&booking, 3).await);
    let tz = TimeZone::get(ZONE).unwrap();
    let starts: Vec<String> = series
        .iter()
        .map(|b| b.appointment.value.appointment.start.to_string())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-03-02T14:00:00Z",
            "2026-03-09T13:00:00Z",
            "2026-03-16T13:00:00Z"
        ]
    );
    for b in &series {
        let a = &b.appointment.value.appointment;
        assert_eq!(tz.to_datetime(a.start).time(), t("09:00"));
        assert_eq!(a.end.duration_since(a.start), SignedDuration::from_mins(30));
    }

    // A wall time that does not exist that Sunday is a conflict of its own.
    let early = c.booking(&c.dr_a, 1, ny(date(2026, 3, 1).at(2, 30, 0, 0)));
    let plan = conflicts(c.series(&early, 2).await);
    assert!(matches!(
        &plan[1].outcome,
        OccurrenceOutcome::Conflict {
            conflict: SeriesConflict::TimeDoesNotExist,
            ..
        }
    ));
    assert_eq!(c.appointment_count().await, 3);
}
