//! Scheduling storage: configuration, slots, booking races across two
//! servers, idempotency, holds, cancellation with the waitlist,
//! rescheduling, status history and merges. Run on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL.

use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{
    Address, Location, Organization, Practitioner, PractitionerRole, Room, RoomKind,
};
use carefront_domain::scheduling::{
    AcceptedBooking, Appointment, AppointmentStatus, AppointmentType, AvailabilityBlock,
    BookingRequest, CancelReason, ExceptionKind, Modality, OpeningHours, Override,
    PatientEligibility, Preferences, Refusal, ResourceKind, ScheduleException, Slot, Template,
    WaitlistEntry, free_slots,
};
use carefront_domain::{Role, ValidationErrors};
use carefront_store::testing::fresh_database;
use carefront_store::{
    Actor, AppointmentDetails, AppointmentQuery, AppointmentRecord, BookAppointment, BookError,
    Booked, BookingWriter, Db, NewAppointment, Page, PlaceHold, RescheduleTo, SlotFilter,
    StoreError, TaskStatus, new_id,
};
use jiff::civil::{Time, date};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeSet;

const FM: &str = "207Q00000X";
const ZONE: &str = "America/New_York";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn t(s: &str) -> Time {
    s.parse().unwrap()
}

/// Monday 2 March 2026, noon UTC: "now" in every test.
fn now() -> Timestamp {
    ts("2026-03-02T12:00:00Z")
}

fn actor() -> Actor {
    Actor {
        actor_id: Some("u1".into()),
        actor_name: "desk".into(),
        role: Some("front_desk".into()),
        client_addr: None,
    }
}

const PAGE: Page = Page {
    offset: 0,
    count: 1000,
};

/// One organization: location "Main" (New York, open 07–19 daily), one
/// exam room, provider A (family medicine, no overbooking) and provider B
/// (family medicine, two extra bookings per slot), both working 09–12 and
/// 13–17 every day; types "visit" (30 min, needs an exam room) and "tele"
/// (20 min telehealth), and a few patients.
struct Clinic {
    db: Db,
    url: String,
    org: String,
    location: String,
    room: String,
    dr_a: String,
    dr_b: String,
    visit: String,
    tele: String,
    patients: Vec<String>,
}

fn location() -> Location {
    Location {
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
    }
}

fn practitioner(family: &str) -> Practitioner {
    Practitioner {
        npi: None,
        prefix: None,
        given: "Ana".into(),
        family: family.into(),
        suffix: Some("MD".into()),
        gender: None,
        phone: None,
        email: None,
        active: true,
    }
}

fn visit_type(id: &str) -> AppointmentType {
    AppointmentType {
        id: id.into(),
        name: "Office visit".into(),
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
    }
}

fn template(practitioner: &str, location: &str, overbook_limit: u8) -> Template {
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
    Template {
        id: String::new(),
        practitioner_id: practitioner.into(),
        location_id: location.into(),
        effective_from: date(2026, 1, 1),
        effective_until: None,
        overbook_limit,
        blocks,
    }
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
    let location = tx.create(&new_id(), &location(), "t").await.unwrap().id;
    let room = Room {
        location_id: location.clone(),
        name: "Exam 1".into(),
        kind: RoomKind::Exam,
    };
    let room = tx.create(&new_id(), &room, "t").await.unwrap().id;
    let dr_a = tx
        .create(&new_id(), &practitioner("Reyes"), "t")
        .await
        .unwrap()
        .id;
    let dr_b = tx
        .create(&new_id(), &practitioner("Okafor"), "t")
        .await
        .unwrap()
        .id;
    for p in [&dr_a, &dr_b] {
        let role = PractitionerRole {
            practitioner_id: p.clone(),
            location_id: location.clone(),
            specialty: FM.into(),
            active: true,
        };
        tx.create(&new_id(), &role, "t").await.unwrap();
    }
    let mut patients = Vec::new();
    for p in carefront_synth::PatientGenerator::new(17).iter(0..6) {
        patients.push(tx.create_patient(&new_id(), p, "t").await.unwrap().id);
    }
    tx.commit().await.unwrap();

    // Each scheduling write audits itself: one per transaction.
    macro_rules! one {
        ($call:ident ( $($arg:expr),* )) => {{
            let mut tx = db.begin(&org).await.unwrap();
            let out = tx.$call($($arg),*).await.unwrap();
            tx.commit().await.unwrap();
            out
        }};
    }
    one!(add_room_resource(&room, &by));
    let hours = (1..=7)
        .map(|w| OpeningHours {
            weekday: w,
            open: t("07:00"),
            close: t("19:00"),
        })
        .collect();
    one!(set_location_hours(&location, hours, &by));
    let visit = one!(create_appointment_type(visit_type(""), &by)).id;
    let tele = AppointmentType {
        name: "Video visit".into(),
        duration_minutes: 20,
        resource_kind: None,
        modality: Modality::Telehealth,
        ..visit_type("")
    };
    let tele = one!(create_appointment_type(tele, &by)).id;
    one!(create_template(template(&dr_a, &location, 0), &by));
    one!(create_template(template(&dr_b, &location, 2), &by));
    Clinic {
        db,
        url,
        org,
        location,
        room,
        dr_a,
        dr_b,
        visit,
        tele,
        patients,
    }
}

/// Monday 9 March 2026 at a New York wall time (EDT, UTC-4).
fn monday(hh: i8, mm: i8) -> Timestamp {
    jiff::tz::TimeZone::get(ZONE)
        .unwrap()
        .to_timestamp(date(2026, 3, 9).at(hh, mm, 0, 0))
        .unwrap()
}

impl Clinic {
    fn request(&self, practitioner: &str, start: Timestamp) -> BookingRequest {
        BookingRequest {
            practitioner_id: practitioner.into(),
            location_id: self.location.clone(),
            start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        }
    }

    fn booking(&self, kind: &str, patient: usize, start: Timestamp) -> BookAppointment {
        BookAppointment {
            appointment_type_id: kind.into(),
            request: self.request(&self.dr_a, start),
            patient_id: self.patients[patient].clone(),
            details: AppointmentDetails {
                reason_for_visit: Some("cough".into()),
                notes: None,
            },
            series_id: None,
            lead_override: None,
            idempotency_key: None,
        }
    }

    async fn book(&self, patient: usize, start: Timestamp) -> Booked {
        self.db
            .book(
                &self.org,
                &self.booking(&self.visit, patient, start),
                &actor(),
                now(),
            )
            .await
            .unwrap()
    }

    async fn accepted(&self, kind: &str, practitioner: &str, start: Timestamp) -> AcceptedBooking {
        self.db
            .evaluate_booking(&self.org, kind, &self.request(practitioner, start), now())
            .await
            .unwrap()
            .unwrap()
            .accept(None)
            .unwrap()
    }

    /// Free slots of a type with a provider on Monday 9 March.
    async fn slots(&self, kind: &str, practitioner: &str, at: Timestamp) -> Vec<Slot> {
        let filter = SlotFilter {
            practitioner_ids: vec![practitioner.into()],
            location_ids: vec![],
        };
        let input = self
            .db
            .slot_input(&self.org, kind, &filter, monday(0, 0), monday(23, 0), at)
            .await
            .unwrap();
        free_slots(&input).unwrap()
    }

    async fn appointment_count(&self) -> i64 {
        self.db
            .appointments(&self.org, &AppointmentQuery::default(), PAGE)
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

fn starts(slots: &[Slot]) -> BTreeSet<Timestamp> {
    slots.iter().map(|s| s.start).collect()
}

fn invalid(err: StoreError) -> ValidationErrors {
    match err {
        StoreError::Invalid(e) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_room_asked_for_at_another_location_is_refused_as_elsewhere() {
    let c = clinic().await;
    let by = actor();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let uptown = tx.create(&new_id(), &location(), "t").await.unwrap().id;
    let room = Room {
        location_id: uptown,
        name: "Exam 9".into(),
        kind: RoomKind::Exam,
    };
    let elsewhere = tx.create(&new_id(), &room, "t").await.unwrap().id;
    tx.commit().await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.add_room_resource(&elsewhere, &by).await.unwrap();
    tx.commit().await.unwrap();

    let mut request = c.request(&c.dr_a, monday(9, 30));
    request.resource_id = Some(elsewhere.clone());
    match c
        .db
        .evaluate_booking(&c.org, &c.visit, &request, now())
        .await
        .unwrap()
    {
        Err(Refusal::ResourceUnavailable { resource_id, why }) => {
            assert_eq!(resource_id, elsewhere);
            assert_eq!(why, "it is at another location");
        }
        other => panic!("expected the room refused as elsewhere, got {other:?}"),
    }
    // Without asking for a room, this location's own room is chosen.
    let accepted = c.accepted(&c.visit, &c.dr_a, monday(9, 30)).await;
    assert_eq!(accepted.placement.resource_ids, vec![c.room.clone()]);
}

/// Free starts of the visit type with Dr A on Monday 9 March, as `db`
/// (one server) computes them at `at`.
async fn free_starts(c: &Clinic, db: &Db, at: Timestamp) -> BTreeSet<Timestamp> {
    let filter = SlotFilter {
        practitioner_ids: vec![c.dr_a.clone()],
        location_ids: vec![],
    };
    let input = db
        .slot_input(&c.org, &c.visit, &filter, monday(0, 0), monday(23, 0), at)
        .await
        .unwrap();
    starts(&free_slots(&input).unwrap())
}

#[tokio::test]
async fn a_server_sees_what_another_booked_held_and_gave_back_at_once() {
    let c = clinic().await;
    // Two servers on one database; the first keeps its bookings between
    // computations.
    let other = Db::connect(&c.url).await.unwrap();
    let (booked_at, held_at) = (monday(9, 30), monday(10, 0));
    let before = free_starts(&c, &c.db, now()).await;
    assert!(before.contains(&booked_at) && before.contains(&held_at));

    let booked = other
        .book(&c.org, &c.booking(&c.visit, 0, booked_at), &actor(), now())
        .await
        .unwrap();
    let hold = other
        .place_hold(
            &c.org,
            &PlaceHold {
                appointment_type_id: c.visit.clone(),
                request: c.request(&c.dr_a, held_at),
                patient_id: c.patients[1].clone(),
                ttl: Some(SignedDuration::from_mins(5)),
            },
            &actor(),
            now(),
        )
        .await
        .unwrap();
    let taken = free_starts(&c, &c.db, now()).await;
    assert!(!taken.contains(&booked_at), "the other server's booking");
    assert!(!taken.contains(&held_at), "the other server's hold");
    // The hold lapses by itself.
    let later = now() + SignedDuration::from_mins(6);
    assert!(free_starts(&c, &c.db, later).await.contains(&held_at));

    let mut tx = other.begin(&c.org).await.unwrap();
    tx.cancel_appointment(
        &booked.appointment.id,
        CancelReason::Patient,
        None,
        &actor(),
        now(),
    )
    .await
    .unwrap();
    tx.release_hold(&hold.id, &actor()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(free_starts(&c, &c.db, now()).await, before);
    other.close().await;
}

#[tokio::test]
async fn a_booking_takes_its_slot_out_of_the_free_slots() {
    let c = clinic().await;
    let before = c.slots(&c.visit, &c.dr_a, now()).await;
    assert_eq!(before.len(), 14, "6 in the morning, 8 in the afternoon");
    assert_eq!(before[0].start, monday(9, 0));
    assert_eq!(before[0].resource_id.as_deref(), Some(c.room.as_str()));

    let booked = c.book(0, monday(9, 30)).await;
    assert!(!booked.replayed);
    let a = &booked.appointment.value.appointment;
    assert_eq!(a.status, AppointmentStatus::Booked);
    assert_eq!(a.resource_ids, vec![c.room.clone()]);
    assert_eq!(a.end, monday(10, 0));
    assert_eq!(
        booked.appointment.value.reason_for_visit.as_deref(),
        Some("cough")
    );
    let claims = c.db.claims_of(&c.org, &a.id).await.unwrap();
    assert_eq!(
        claims.len(),
        12,
        "6 granules for the provider, 6 for the room"
    );
    assert!(
        claims
            .iter()
            .all(|h| h.seat == 0 && h.expires_at_us.is_none())
    );

    let after = c.slots(&c.visit, &c.dr_a, now()).await;
    assert_eq!(
        starts(&before)
            .difference(&starts(&after))
            .collect::<Vec<_>>(),
        [&monday(9, 30)]
    );
    // The room is the clinic's only exam room: provider B cannot use it then.
    assert!(
        !starts(&c.slots(&c.visit, &c.dr_b, now()).await).contains(&monday(9, 30)),
        "the room is taken"
    );
    // Evaluating provider B's booking there sees provider A's room booking
    // at this location as well.
    match c
        .db
        .evaluate_booking(&c.org, &c.visit, &c.request(&c.dr_b, monday(9, 30)), now())
        .await
        .unwrap()
    {
        Err(Refusal::NoResourceFree(_)) => {}
        other => panic!("expected no free room, got {other:?}"),
    }
    // The provider is busy for telehealth too.
    assert!(!starts(&c.slots(&c.tele, &c.dr_a, now()).await).contains(&monday(9, 40)));

    // Found by patient, provider, location, date and status.
    let by_patient = AppointmentQuery {
        patient_id: Some(c.patients[0].clone()),
        from: Some(monday(0, 0)),
        until: Some(monday(23, 0)),
        statuses: vec![AppointmentStatus::Booked],
        ..AppointmentQuery::default()
    };
    let (found, total) = c.db.appointments(&c.org, &by_patient, PAGE).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].id, a.id);
    let elsewhere = AppointmentQuery {
        practitioner_id: Some(c.dr_b.clone()),
        ..AppointmentQuery::default()
    };
    assert_eq!(
        c.db.appointments(&c.org, &elsewhere, PAGE).await.unwrap().1,
        0
    );
    let cancelled = AppointmentQuery {
        location_id: Some(c.location.clone()),
        statuses: vec![AppointmentStatus::Cancelled],
        ..AppointmentQuery::default()
    };
    assert_eq!(
        c.db.appointments(&c.org, &cancelled, PAGE).await.unwrap().1,
        0
    );
    c.consistent().await;
}

/// Books `accepted` for many patients at once through two pools on the same
/// database (two servers); returns the winners' ids and the losers' errors.
async fn race(
    c: &Clinic,
    bookings: Vec<AcceptedBooking>,
    tasks: usize,
) -> (Vec<(usize, String)>, Vec<StoreError>) {
    let other = Db::connect(&c.url).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let db = if i % 2 == 0 {
            c.db.clone()
        } else {
            other.clone()
        };
        let org = c.org.clone();
        let which = i % bookings.len();
        let accepted = bookings[which].clone();
        let patient = c.patients[i % c.patients.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut tx = db.begin(&org).await?;
            let new = NewAppointment {
                patient_id: patient,
                accepted,
                details: AppointmentDetails::default(),
                series_id: None,
            };
            let booked = tx.book(new, None, &actor(), now()).await?;
            tx.commit().await?;
            Ok::<_, StoreError>((which, booked.appointment.id))
        }));
    }
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(w) => won.push(w),
            Err(e) => lost.push(e),
        }
    }
    other.close().await;
    (won, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_servers_book_each_slot_exactly_once() {
    let c = clinic().await;
    // Two slots raced at once, each evaluated as free before the race.
    let slots = vec![
        c.accepted(&c.visit, &c.dr_a, monday(10, 0)).await,
        c.accepted(&c.visit, &c.dr_a, monday(14, 0)).await,
    ];
    let (won, lost) = race(&c, slots, 40).await;
    assert_eq!(won.len(), 2, "one winner per slot; lost: {lost:?}");
    assert_eq!(
        won.iter().map(|(w, _)| *w).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1])
    );
    assert_eq!(lost.len(), 38);
    for e in &lost {
        match e {
            StoreError::Conflict(m) => assert!(m.contains("the slot"), "{m}"),
            other => panic!("a loser must see a conflict, not {other:?}"),
        }
    }
    assert_eq!(c.appointment_count().await, 2);
    for (_, id) in &won {
        assert_eq!(c.db.claims_of(&c.org, id).await.unwrap().len(), 12);
    }
    c.consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_servers_fill_an_overbooked_slot_to_its_limit() {
    let c = clinic().await;
    // Provider B allows two extra bookings per slot: three in all.
    let accepted = c.accepted(&c.tele, &c.dr_b, monday(9, 0)).await;
    assert_eq!(accepted.max_seat, 2);
    let (won, lost) = race(&c, vec![accepted], 36).await;
    assert_eq!(won.len(), 3, "limit + 1 winners; lost: {lost:?}");
    assert!(lost.iter().all(|e| matches!(e, StoreError::Conflict(_))));
    assert_eq!(c.appointment_count().await, 3);
    let mut seats = BTreeSet::new();
    for (_, id) in &won {
        let claims = c.db.claims_of(&c.org, id).await.unwrap();
        assert_eq!(claims.len(), 4, "20 minutes, provider only");
        for h in claims {
            assert!(seats.insert((h.granule_us, h.seat)), "a seat taken twice");
        }
    }
    assert_eq!(
        seats.iter().map(|(_, s)| *s).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2])
    );
    // The slot is full now: no longer offered.
    assert!(!starts(&c.slots(&c.tele, &c.dr_b, now()).await).contains(&monday(9, 0)));
    c.consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_request_books_once_and_returns_the_same_appointment() {
    let c = clinic().await;
    let other = Db::connect(&c.url).await.unwrap();
    let mut request = c.booking(&c.visit, 1, monday(11, 0));
    request.idempotency_key = Some("retry-123".into());
    let mut handles = Vec::new();
    for i in 0..16 {
        let db = if i % 2 == 0 {
            c.db.clone()
        } else {
            other.clone()
        };
        let org = c.org.clone();
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            db.book(&org, &request, &actor(), now()).await
        }));
    }
    let mut ids = BTreeSet::new();
    let mut first = 0;
    for h in handles {
        let booked = h.await.unwrap().unwrap();
        ids.insert(booked.appointment.id.clone());
        first += usize::from(!booked.replayed);
    }
    assert_eq!(ids.len(), 1, "every retry returns the same appointment");
    assert_eq!(first, 1, "exactly one request booked");
    assert_eq!(c.appointment_count().await, 1);

    // The same key with another request is refused.
    let mut other_request = request.clone();
    other_request.request.start = monday(11, 30);
    match c.db.book(&c.org, &other_request, &actor(), now()).await {
        Err(BookError::Store(StoreError::Conflict(m))) => assert!(m.contains("retry-123"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(c.appointment_count().await, 1);
    other.close().await;
    c.consistent().await;
}

#[tokio::test]
async fn a_hold_blocks_others_until_it_expires() {
    let c = clinic().await;
    let start = monday(13, 0);
    let accepted_before = c.accepted(&c.visit, &c.dr_a, start).await;
    let hold =
        c.db.place_hold(
            &c.org,
            &PlaceHold {
                appointment_type_id: c.visit.clone(),
                request: c.request(&c.dr_a, start),
                patient_id: c.patients[0].clone(),
                ttl: Some(SignedDuration::from_mins(5)),
            },
            &actor(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(hold.expires_at, now() + SignedDuration::from_mins(5));
    assert_eq!(c.db.claims_of(&c.org, &hold.id).await.unwrap().len(), 12);

    // While it lives: not offered, refused by evaluation, and refused by the
    // database to a booking evaluated before the hold.
    let soon = now() + SignedDuration::from_mins(1);
    assert!(!starts(&c.slots(&c.visit, &c.dr_a, soon).await).contains(&start));
    let other = c.booking(&c.visit, 1, start);
    match c.db.book(&c.org, &other, &actor(), soon).await {
        Err(BookError::Refused(Refusal::NoResourceFree(_) | Refusal::NeedsOverride(_))) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let new = NewAppointment {
        patient_id: c.patients[1].clone(),
        accepted: accepted_before.clone(),
        details: AppointmentDetails::default(),
        series_id: None,
    };
    let err = tx
        .book(new.clone(), None, &actor(), soon)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);

    // Once expired it blocks nothing: the slot is offered and booked, and
    // the hold can no longer be confirmed.
    let later = now() + SignedDuration::from_mins(6);
    assert!(starts(&c.slots(&c.visit, &c.dr_a, later).await).contains(&start));
    let booked = c.db.book(&c.org, &other, &actor(), later).await.unwrap();
    assert_eq!(booked.appointment.value.appointment.start, start);
    assert!(c.db.claims_of(&c.org, &hold.id).await.unwrap().is_empty());
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .confirm_hold(
            &hold.id,
            AppointmentDetails::default(),
            None,
            &actor(),
            later,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("expired")),
        "{err:?}"
    );
    drop(tx);
    let mut tx = c.db.begin(&c.org).await.unwrap();
    assert_eq!(tx.purge_expired_holds(later).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert!(matches!(
        c.db.get_hold(&c.org, &hold.id).await,
        Err(StoreError::NotFound)
    ));
    c.consistent().await;
}

#[tokio::test]
async fn a_confirmed_hold_hands_its_seats_to_the_appointment() {
    let c = clinic().await;
    let start = monday(15, 0);
    let hold =
        c.db.place_hold(
            &c.org,
            &PlaceHold {
                appointment_type_id: c.visit.clone(),
                request: c.request(&c.dr_a, start),
                patient_id: c.patients[2].clone(),
                ttl: None,
            },
            &actor(),
            now(),
        )
        .await
        .unwrap();
    let seats = c.db.claims_of(&c.org, &hold.id).await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let details = AppointmentDetails {
        reason_for_visit: Some("follow-up".into()),
        notes: Some("prefers Spanish".into()),
    };
    let booked = tx
        .confirm_hold(
            &hold.id,
            details,
            None,
            &actor(),
            now() + SignedDuration::from_mins(2),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let a = &booked.appointment.value.appointment;
    assert_eq!(a.patient_id, c.patients[2]);
    assert_eq!(a.start, start);
    assert_eq!(
        booked.appointment.value.notes.as_deref(),
        Some("prefers Spanish")
    );
    let moved = c.db.claims_of(&c.org, &a.id).await.unwrap();
    assert_eq!(
        moved
            .iter()
            .map(|h| (&h.claim_key, h.granule_us, h.seat))
            .collect::<Vec<_>>(),
        seats
            .iter()
            .map(|h| (&h.claim_key, h.granule_us, h.seat))
            .collect::<Vec<_>>()
    );
    assert!(moved.iter().all(|h| h.expires_at_us.is_none()));
    assert!(matches!(
        c.db.get_hold(&c.org, &hold.id).await,
        Err(StoreError::NotFound)
    ));
    c.consistent().await;
}

#[tokio::test]
async fn a_cancellation_frees_the_slot_and_offers_it_to_the_waitlist() {
    let c = clinic().await;
    let start = monday(10, 30);
    let booked = c.book(0, start).await;
    let id = booked.appointment.id.clone();

    // Two patients wait for this type: one any time (waiting longer), one
    // for afternoons only.
    let entry = |patient: usize, part| WaitlistEntry {
        id: String::new(),
        patient_id: c.patients[patient].clone(),
        appointment_type_id: c.visit.clone(),
        preferences: Preferences {
            part_of_day: part,
            ..Preferences::default()
        },
        added_at: now(),
        current_appointment_start: None,
    };
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let w1 = tx
        .add_to_waitlist(
            entry(1, None),
            &actor(),
            now() - SignedDuration::from_hours(48),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let w2 = tx
        .add_to_waitlist(
            entry(2, Some(carefront_domain::scheduling::PartOfDay::Afternoon)),
            &actor(),
            now(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        c.db.waitlist(&c.org, Some(&c.visit), None)
            .await
            .unwrap()
            .len(),
        2
    );

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let change = tx
        .cancel_appointment(
            &id,
            CancelReason::PatientFeelingBetter,
            Some(booked.appointment.version),
            &actor(),
            now(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let cancelled = &change.appointment.value.appointment;
    assert_eq!(cancelled.status, AppointmentStatus::Cancelled);
    assert_eq!(
        cancelled.cancel_reason,
        Some(CancelReason::PatientFeelingBetter)
    );
    assert!(c.db.claims_of(&c.org, &id).await.unwrap().is_empty());
    assert!(starts(&c.slots(&c.visit, &c.dr_a, now()).await).contains(&start));

    let task = change.waitlist_task.expect("a task for the freed slot");
    let offer = task.waitlist_offer().unwrap();
    assert_eq!(offer.freed_by, id);
    assert_eq!(offer.slot.start, start);
    assert_eq!(offer.slot.local_start, date(2026, 3, 9).at(10, 30, 0, 0));
    assert_eq!(
        offer
            .candidates
            .iter()
            .map(|r| (r.entry_id.as_str(), r.fit_percent))
            .collect::<Vec<_>>(),
        [(w1.id.as_str(), 100), (w2.id.as_str(), 0)],
        "a morning slot fits the one who wants afternoons least"
    );
    let open = c.db.tasks(&c.org, None, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, task.id);

    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.close_task(&task.id, TaskStatus::Done, &actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(c.db.tasks(&c.org, None, 10).await.unwrap().is_empty());
    assert_eq!(
        c.db.task(&c.org, &task.id).await.unwrap().status,
        TaskStatus::Done
    );

    // Cancelling again is refused by the state machine, naming the status.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .cancel_appointment(&id, CancelReason::Patient, None, &actor(), now())
        .await
        .unwrap_err();
    assert!(invalid(err).for_field("status").is_some());
    drop(tx);

    // Off the waitlist: a later cancellation makes no task for them.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.remove_from_waitlist(&w1.id, &actor()).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.remove_from_waitlist(&w2.id, &actor()).await.unwrap();
    tx.commit().await.unwrap();
    let again = c.book(3, monday(16, 0)).await;
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let change = tx
        .cancel_appointment(
            &again.appointment.id,
            CancelReason::Provider,
            None,
            &actor(),
            now(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(change.waitlist_task.is_none());
    c.consistent().await;
}

#[tokio::test]
async fn a_reschedule_moves_the_claims_in_one_transaction() {
    let c = clinic().await;
    let first = c.book(0, monday(9, 0)).await.appointment;

    // Fifteen minutes later: overlaps its own old time, which it hands over.
    let to = RescheduleTo {
        start: monday(9, 15),
        practitioner_id: None,
        location_id: None,
        resource_id: None,
        lead_override: None,
        idempotency_key: Some("move-1".into()),
    };
    let moved =
        c.db.reschedule(&c.org, &first.id, &to, Some(first.version), &actor(), now())
            .await
            .unwrap();
    assert!(!moved.replayed);
    let old = &moved.old.value.appointment;
    let new = &moved.new.value.appointment;
    assert_eq!(old.status, AppointmentStatus::Cancelled);
    assert_eq!(old.cancel_reason, Some(CancelReason::Rescheduled));
    assert_eq!(new.rescheduled_from.as_deref(), Some(first.id.as_str()));
    assert_eq!((new.start, new.end), (monday(9, 15), monday(9, 45)));
    assert_eq!(moved.new.value.reason_for_visit.as_deref(), Some("cough"));
    assert!(c.db.claims_of(&c.org, &old.id).await.unwrap().is_empty());
    let claims = c.db.claims_of(&c.org, &new.id).await.unwrap();
    assert_eq!(claims.len(), 12);
    assert_eq!(
        claims.iter().map(|h| h.granule_us).min(),
        Some(monday(9, 15).as_microsecond())
    );
    // Retried: the same move, nothing new.
    let again =
        c.db.reschedule(&c.org, &first.id, &to, None, &actor(), now())
            .await
            .unwrap();
    assert!(again.replayed);
    assert_eq!(again.new.id, new.id);
    assert_eq!(c.appointment_count().await, 2);

    // A move into a slot taken meanwhile fails whole: the appointment keeps
    // its time and its claims.
    let stale = c.accepted(&c.visit, &c.dr_a, monday(11, 0)).await;
    c.book(1, monday(11, 0)).await;
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .reschedule(&new.id, stale, None, None, &actor(), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("no longer free")),
        "{err:?}"
    );
    drop(tx);
    let kept =
        c.db.get::<AppointmentRecord>(&c.org, &new.id)
            .await
            .unwrap();
    assert_eq!(kept.value.appointment.status, AppointmentStatus::Booked);
    assert_eq!(c.db.claims_of(&c.org, &new.id).await.unwrap(), claims);
    c.consistent().await;
}

#[tokio::test]
async fn validation_errors_name_the_field_and_write_nothing() {
    let c = clinic().await;
    let by = actor();

    let mut bad = visit_type("");
    bad.duration_minutes = 12;
    bad.color = "blue".into();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = invalid(tx.create_appointment_type(bad, &by).await.unwrap_err());
    assert!(err.for_field("duration_minutes").is_some());
    assert!(err.for_field("color").is_some());
    drop(tx);
    assert_eq!(c.db.appointment_types(&c.org, true).await.unwrap().len(), 2);

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = invalid(
        tx.create_template(template("nobody", &c.location, 0), &by)
            .await
            .unwrap_err(),
    );
    assert!(err.for_field("practitioner_id").is_some(), "{err}");
    drop(tx);
    // A second template of provider A overlapping the first.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = invalid(
        tx.create_template(template(&c.dr_a, &c.location, 0), &by)
            .await
            .unwrap_err(),
    );
    assert!(err.for_field("blocks[0].start").is_some(), "{err}");
    drop(tx);
    assert_eq!(
        c.db.templates(&c.org, Some(&c.dr_a)).await.unwrap().len(),
        1
    );

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let hours = vec![OpeningHours {
        weekday: 9,
        open: t("08:00"),
        close: t("07:00"),
    }];
    let err = invalid(
        tx.set_location_hours(&c.location, hours, &by)
            .await
            .unwrap_err(),
    );
    assert!(err.for_field("opening_hours[0].weekday").is_some());
    assert!(err.for_field("opening_hours[0].close").is_some());
    drop(tx);
    assert_eq!(
        c.db.location_hours(&c.org, &c.location)
            .await
            .unwrap()
            .opening_hours
            .len(),
        7
    );

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let off = ScheduleException {
        id: String::new(),
        start: date(2026, 3, 10).at(9, 0, 0, 0),
        end: date(2026, 3, 10).at(8, 0, 0, 0),
        kind: ExceptionKind::TimeOff {
            practitioner_id: c.dr_a.clone(),
        },
    };
    let err = invalid(tx.create_exception(off, &by).await.unwrap_err());
    assert!(err.for_field("end").is_some());
    drop(tx);

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let entry = WaitlistEntry {
        id: String::new(),
        patient_id: "nobody".into(),
        appointment_type_id: c.visit.clone(),
        preferences: Preferences {
            weekdays: vec![8],
            ..Preferences::default()
        },
        added_at: now(),
        current_appointment_start: None,
    };
    let err = invalid(
        tx.add_to_waitlist(entry.clone(), &by, now())
            .await
            .unwrap_err(),
    );
    assert!(err.for_field("preferences.weekdays[0]").is_some(), "{err}");
    drop(tx);
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let entry = WaitlistEntry {
        preferences: Preferences::default(),
        ..entry
    };
    let err = invalid(tx.add_to_waitlist(entry, &by, now()).await.unwrap_err());
    assert!(err.for_field("patient_id").is_some(), "{err}");
    drop(tx);
    assert!(c.db.waitlist(&c.org, None, None).await.unwrap().is_empty());

    // A booking with notes too long books nothing, claims nothing.
    let mut booking = c.booking(&c.visit, 0, monday(9, 0));
    booking.details.notes = Some("x".repeat(4001));
    match c.db.book(&c.org, &booking, &by, now()).await {
        Err(BookError::Store(StoreError::Invalid(e))) => assert!(e.for_field("notes").is_some()),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(c.appointment_count().await, 0);
    assert!(starts(&c.slots(&c.visit, &c.dr_a, now()).await).contains(&monday(9, 0)));

    // Outside the template needs a lead's override, with a reason.
    let mut evening = c.booking(&c.visit, 0, monday(18, 0));
    assert!(matches!(
        c.db.book(&c.org, &evening, &by, now()).await,
        Err(BookError::Refused(Refusal::NeedsOverride(_)))
    ));
    evening.lead_override = Some(Override {
        role: Role::Lead,
        reason: "only time the patient can come".into(),
    });
    let booked = c.db.book(&c.org, &evening, &by, now()).await.unwrap();
    assert_eq!(
        booked
            .appointment
            .value
            .appointment
            .override_reason
            .as_deref(),
        Some("only time the patient can come")
    );
    c.consistent().await;
}

#[tokio::test]
async fn every_change_of_an_appointment_keeps_history() {
    let c = clinic().await;
    let start = monday(13, 30);
    let a = c.book(4, start).await.appointment;
    let by = actor();
    let step = |to, at| {
        let db = c.db.clone();
        let org = c.org.clone();
        let id = a.id.clone();
        let by = by.clone();
        async move {
            let mut tx = db.begin(&org).await.unwrap();
            let r = tx
                .set_appointment_status(&id, to, None, None, &by, at)
                .await;
            if r.is_ok() {
                tx.commit().await.unwrap();
            }
            r
        }
    };
    // Not yet: a no-show before the start, an arrival days early.
    let err = step(AppointmentStatus::NoShow, now()).await.unwrap_err();
    assert!(
        invalid(err)
            .for_field("status")
            .unwrap()
            .contains("not started")
    );
    assert!(step(AppointmentStatus::Arrived, now()).await.is_err());

    // A no-show gives the time back; arriving late takes it again.
    let late = start + SignedDuration::from_mins(10);
    step(AppointmentStatus::NoShow, late).await.unwrap();
    assert!(c.db.claims_of(&c.org, &a.id).await.unwrap().is_empty());
    let arrived = step(
        AppointmentStatus::Arrived,
        late + SignedDuration::from_mins(5),
    )
    .await
    .unwrap();
    assert_eq!(
        arrived.appointment.value.appointment.arrived_at,
        Some(late + SignedDuration::from_mins(5))
    );
    assert_eq!(c.db.claims_of(&c.org, &a.id).await.unwrap().len(), 12);
    step(
        AppointmentStatus::CheckedIn,
        late + SignedDuration::from_mins(6),
    )
    .await
    .unwrap();
    step(
        AppointmentStatus::Fulfilled,
        late + SignedDuration::from_mins(40),
    )
    .await
    .unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let details = AppointmentDetails {
        reason_for_visit: Some("cough, better".into()),
        notes: Some("came by bus".into()),
    };
    tx.update_appointment_details(&a.id, details, Some(5), &by)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A stale version is refused.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    assert!(matches!(
        tx.update_appointment_details(&a.id, AppointmentDetails::default(), Some(3), &by)
            .await,
        Err(StoreError::VersionConflict { current: 6 })
    ));
    drop(tx);

    let history =
        c.db.history::<AppointmentRecord>(&c.org, &a.id)
            .await
            .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| (h.version, h.value.appointment.status))
            .collect::<Vec<_>>(),
        [
            (6, AppointmentStatus::Fulfilled),
            (5, AppointmentStatus::Fulfilled),
            (4, AppointmentStatus::CheckedIn),
            (3, AppointmentStatus::Arrived),
            (2, AppointmentStatus::NoShow),
            (1, AppointmentStatus::Booked),
        ]
    );
    assert_eq!(history[0].value.notes.as_deref(), Some("came by bus"));
    assert!(history.iter().all(|h| h.changed_by == "desk"));
    c.consistent().await;
}

#[tokio::test]
async fn a_patient_merge_moves_appointments_and_waitlist_entries() {
    let c = clinic().await;
    let (survivor, duplicate) = (c.patients[0].clone(), c.patients[1].clone());
    let a = c.book(1, monday(9, 0)).await.appointment;
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let entry = WaitlistEntry {
        id: String::new(),
        patient_id: duplicate.clone(),
        appointment_type_id: c.visit.clone(),
        preferences: Preferences::default(),
        added_at: now(),
        current_appointment_start: Some(monday(9, 0)),
    };
    let w = tx.add_to_waitlist(entry, &actor(), now()).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let merge = tx
        .merge_patients(&new_id(), &survivor, None, &duplicate, None, "lead", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        merge
            .snapshot
            .moved
            .iter()
            .map(|m| m.kind.as_str())
            .collect::<Vec<_>>(),
        ["Appointment", "WaitlistEntry"]
    );
    let moved = c.db.get::<AppointmentRecord>(&c.org, &a.id).await.unwrap();
    assert_eq!(moved.value.appointment.patient_id, survivor);
    assert_eq!(
        c.db.waitlist(&c.org, None, Some(&survivor)).await.unwrap()[0].id,
        w.id
    );
    // The merged record can no longer book.
    match c
        .db
        .book(
            &c.org,
            &c.booking(&c.visit, 1, monday(10, 0)),
            &actor(),
            now(),
        )
        .await
    {
        Err(BookError::Store(StoreError::Invalid(e))) => {
            assert!(e.for_field("patient_id").unwrap().contains("merged"))
        }
        other => panic!("expected a validation error, got {other:?}"),
    }

    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.unmerge_patients(&merge.id, "lead").await.unwrap();
    tx.commit().await.unwrap();
    let back = c.db.get::<AppointmentRecord>(&c.org, &a.id).await.unwrap();
    assert_eq!(back.value.appointment.patient_id, duplicate);
    c.consistent().await;
}

#[tokio::test]
async fn exceptions_and_directory_rooms_shape_the_slots() {
    let c = clinic().await;
    let by = actor();
    // Provider A is at a meeting 9–10; the clinic closes early on Monday.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let meeting = ScheduleException {
        id: String::new(),
        start: date(2026, 3, 9).at(9, 0, 0, 0),
        end: date(2026, 3, 9).at(10, 0, 0, 0),
        kind: ExceptionKind::Blocked {
            reason: "staff meeting".into(),
            practitioner_id: Some(c.dr_a.clone()),
            resource_id: None,
        },
    };
    tx.create_exception(meeting, &by).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let short = (1..=7)
        .map(|w| OpeningHours {
            weekday: w,
            open: t("07:00"),
            close: if w == 1 { t("15:00") } else { t("19:00") },
        })
        .collect();
    tx.set_location_hours(&c.location, short, &by)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let slots = c.slots(&c.visit, &c.dr_a, now()).await;
    assert_eq!(slots.first().map(|s| s.start), Some(monday(10, 0)));
    assert_eq!(slots.last().map(|s| s.start), Some(monday(14, 30)));
    assert_eq!(
        c.db.schedule_exceptions(
            &c.org,
            date(2026, 3, 9).at(0, 0, 0, 0),
            date(2026, 3, 10).at(0, 0, 0, 0)
        )
        .await
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        c.db.history::<carefront_store::LocationOpeningHours>(&c.org, &c.location)
            .await
            .unwrap()
            .len(),
        2
    );
    // The room resource is the directory room.
    let resources =
        c.db.schedule_resources(&c.org, Some(&c.location))
            .await
            .unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].id, c.room);
    assert_eq!(resources[0].value.kind, ResourceKind::ExamRoom);
    c.consistent().await;
}

impl Clinic {
    async fn audit_count(&self) -> i64 {
        self.db
            .verify_audit_chain(&self.org, |_| {})
            .await
            .unwrap()
            .unwrap()
            .verified
    }
}

#[tokio::test]
async fn a_template_naming_an_unknown_type_is_refused_and_nothing_written() {
    let c = clinic().await;
    let by = actor();
    let before = (
        c.db.templates(&c.org, None).await.unwrap(),
        c.audit_count().await,
    );
    // Dates of its own, so only the type is wrong.
    let mut later = template(&c.dr_a, &c.location, 0);
    later.effective_from = date(2030, 1, 1);
    later.blocks.truncate(2);
    later.blocks[1].appointment_type_ids = vec![c.visit.clone(), "no-such-type".into()];

    // Even a caller that commits after the refusal writes nothing.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = invalid(tx.create_template(later.clone(), &by).await.unwrap_err());
    tx.commit().await.unwrap();
    let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields.len(), 1, "{err}");
    assert!(
        fields[0].starts_with("blocks[1].appointment_type_ids["),
        "{err}"
    );
    assert_eq!(err.errors()[0].message, "no such record: no-such-type");

    // An update is checked the same way.
    let current = &before
        .0
        .iter()
        .find(|t| t.value.practitioner_id == c.dr_a)
        .unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let renamed = Template {
        id: current.id.clone(),
        ..later
    };
    let err = invalid(
        tx.update_template(renamed, Some(current.version), &by)
            .await
            .unwrap_err(),
    );
    tx.commit().await.unwrap();
    assert!(
        err.errors()
            .iter()
            .all(|e| e.field.starts_with("blocks[1].appointment_type_ids[")),
        "{err}"
    );

    assert_eq!(c.db.templates(&c.org, None).await.unwrap(), before.0);
    assert_eq!(c.audit_count().await, before.1, "no audit event");
    c.consistent().await;
}

#[tokio::test]
async fn opening_hours_edited_from_a_stale_version_are_refused() {
    let c = clinic().await;
    let by = actor();
    let current =
        c.db.get::<carefront_store::LocationOpeningHours>(&c.org, &c.location)
            .await
            .unwrap();
    let monday_only = vec![OpeningHours {
        weekday: 1,
        open: t("08:00"),
        close: t("12:00"),
    }];
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.update_location_hours(&c.location, monday_only.clone(), Some(current.version), &by)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for stale in [current.version, 0] {
        let mut tx = c.db.begin(&c.org).await.unwrap();
        let err = tx
            .update_location_hours(&c.location, vec![], Some(stale), &by)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::VersionConflict { current: v } if v == current.version + 1),
            "{err:?}"
        );
    }
    let stored = c.db.location_hours(&c.org, &c.location).await.unwrap();
    assert_eq!(stored.opening_hours, monday_only);

    // A location without hours yet: version 0 creates them, any other is stale.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let second = tx.create(&new_id(), &location(), "t").await.unwrap().id;
    tx.commit().await.unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .update_location_hours(&second, monday_only.clone(), Some(3), &by)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { current: 0 }));
    drop(tx);
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.update_location_hours(&second, monday_only.clone(), Some(0), &by)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        c.db.location_hours(&c.org, &second)
            .await
            .unwrap()
            .opening_hours,
        monday_only
    );
    c.consistent().await;
}

// ------------------------------------------------ new or established patient

/// A type like "visit" for new or established patients only.
async fn type_for(c: &Clinic, name: &str, eligibility: PatientEligibility) -> String {
    let kind = AppointmentType {
        name: name.into(),
        eligibility,
        ..visit_type("")
    };
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let id = tx.create_appointment_type(kind, &actor()).await.unwrap().id;
    tx.commit().await.unwrap();
    id
}

/// A past (or stale) video visit of `patient` with provider B, stored as it
/// stands (history, as the demo stores it).
async fn visit_on_record(c: &Clinic, patient: usize, start: Timestamp, status: AppointmentStatus) {
    let end = start + SignedDuration::from_mins(20);
    let visit = Appointment {
        id: new_id(),
        patient_id: c.patients[patient].clone(),
        practitioner_id: c.dr_b.clone(),
        location_id: c.location.clone(),
        appointment_type_id: c.tele.clone(),
        resource_ids: vec![],
        start,
        end,
        status,
        status_changed_at: end,
        max_seat: 0,
        cancel_reason: (status == AppointmentStatus::Cancelled).then_some(CancelReason::Patient),
        override_reason: None,
        series_id: None,
        rescheduled_from: None,
        arrived_at: None,
    };
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.record_appointment(visit, "history").await.unwrap();
    tx.commit().await.unwrap();
}

fn refusal<T: std::fmt::Debug>(r: Result<T, BookError>) -> Refusal {
    match r {
        Err(BookError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Books `booking` every week, three times.
async fn weekly(c: &Clinic, booking: &BookAppointment) -> Result<Vec<Booked>, BookError> {
    let planned =
        c.db.book_series(&c.org, booking, 1, 3, &Default::default(), &actor(), now())
            .await?;
    Ok(planned.unwrap_or_else(|plan| panic!("not booked: {plan:#?}")))
}

async fn audit_count(c: &Clinic) -> i64 {
    c.db.audit_events(&c.org, &Default::default(), 0, 1)
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn patients_seen_in_the_last_three_years_are_established() {
    use AppointmentStatus::{Booked, Cancelled, Fulfilled, NoShow};
    let c = clinic().await;
    // Patient 0 was seen a year ago, 1 never, 2 four years ago; 3 only
    // missed, cancelled or never came in; 4 exactly three years ago (now
    // is 2 March 2026, noon UTC), 5 half an hour before that.
    visit_on_record(&c, 0, ts("2025-03-03T15:00:00Z"), Fulfilled).await;
    visit_on_record(&c, 2, ts("2022-03-01T15:00:00Z"), Fulfilled).await;
    visit_on_record(&c, 3, ts("2025-06-02T15:00:00Z"), NoShow).await;
    visit_on_record(&c, 3, ts("2025-09-01T15:00:00Z"), Cancelled).await;
    visit_on_record(&c, 3, ts("2026-03-01T15:00:00Z"), Booked).await;
    visit_on_record(&c, 4, ts("2023-03-02T12:00:00Z"), Fulfilled).await;
    visit_on_record(&c, 5, ts("2023-03-02T11:30:00Z"), Fulfilled).await;
    let mut established = Vec::new();
    for p in &c.patients {
        established.push(c.db.patient_established(&c.org, p, now()).await.unwrap());
    }
    assert_eq!(established, [true, false, false, false, true, false]);
    // A visit under way counts from its start; a future one does not yet.
    assert!(
        !c.db
            .patient_established(&c.org, &c.patients[4], ts("2023-03-02T12:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        c.db.patient_established(&c.org, &c.patients[4], ts("2023-03-02T12:00:01Z"))
            .await
            .unwrap()
    );
    // Three years after the visit, to the second, patient 4 is new again.
    assert!(
        !c.db
            .patient_established(&c.org, &c.patients[4], ts("2026-03-02T12:00:01Z"))
            .await
            .unwrap()
    );
    c.consistent().await;
}

#[tokio::test]
async fn bookings_holds_series_and_moves_check_new_or_established() {
    let c = clinic().await;
    let new_visit = type_for(&c, "New patient visit", PatientEligibility::New).await;
    let follow_up = type_for(
        &c,
        "Established patient visit",
        PatientEligibility::Established,
    )
    .await;
    // Patient 0 was seen a year ago; patient 1 never; patient 2 four years ago.
    visit_on_record(
        &c,
        0,
        ts("2025-03-03T15:00:00Z"),
        AppointmentStatus::Fulfilled,
    )
    .await;
    visit_on_record(
        &c,
        2,
        ts("2022-03-01T15:00:00Z"),
        AppointmentStatus::Fulfilled,
    )
    .await;
    let (count, audited) = (c.appointment_count().await, audit_count(&c).await);

    // Refused, with a reason the desk can act on, and nothing written: no
    // appointment, no hold, no claim, no idempotency key, no audit event.
    let mut seen_as_new = c.booking(&new_visit, 0, monday(9, 0));
    seen_as_new.idempotency_key = Some("first-try".into());
    let r = refusal(c.db.book(&c.org, &seen_as_new, &actor(), now()).await);
    assert_eq!(r, Refusal::WrongPatientKind("new"));
    assert_eq!(
        r.to_string(),
        "this appointment type is for new patients; this patient has been seen here in the \
         last 3 years: choose a type for established patients"
    );
    let never_seen = c.booking(&follow_up, 1, monday(9, 0));
    let r = refusal(c.db.book(&c.org, &never_seen, &actor(), now()).await);
    assert_eq!(r, Refusal::WrongPatientKind("established"));
    assert!(
        r.to_string()
            .contains("has not been seen here in the last 3 years")
    );
    // Seen four years ago: new again.
    assert_eq!(
        refusal(
            c.db.book(
                &c.org,
                &c.booking(&follow_up, 2, monday(9, 0)),
                &actor(),
                now()
            )
            .await
        ),
        Refusal::WrongPatientKind("established")
    );
    let hold = PlaceHold {
        appointment_type_id: follow_up.clone(),
        request: c.request(&c.dr_a, monday(9, 0)),
        patient_id: c.patients[1].clone(),
        ttl: None,
    };
    assert_eq!(
        refusal(c.db.place_hold(&c.org, &hold, &actor(), now()).await),
        Refusal::WrongPatientKind("established")
    );
    // A series is refused as a whole, not planned with alternatives.
    assert_eq!(
        refusal(weekly(&c, &never_seen).await),
        Refusal::WrongPatientKind("established")
    );
    assert_eq!(c.appointment_count().await, count);
    assert_eq!(audit_count(&c).await, audited);
    assert!(starts(&c.slots(&new_visit, &c.dr_a, now()).await).contains(&monday(9, 0)));

    // Each books the types for their kind (the key was not kept).
    seen_as_new.appointment_type_id = follow_up.clone();
    let follow =
        c.db.book(&c.org, &seen_as_new, &actor(), now())
            .await
            .unwrap();
    assert!(!follow.replayed);
    let first =
        c.db.book(
            &c.org,
            &c.booking(&new_visit, 1, monday(9, 30)),
            &actor(),
            now(),
        )
        .await
        .unwrap()
        .appointment;
    c.db.book(
        &c.org,
        &c.booking(&new_visit, 2, monday(10, 0)),
        &actor(),
        now(),
    )
    .await
    .unwrap();
    let series = weekly(&c, &c.booking(&follow_up, 0, monday(11, 0)))
        .await
        .unwrap();
    assert_eq!(series.len(), 3);
    let hold = PlaceHold {
        patient_id: c.patients[0].clone(),
        request: c.request(&c.dr_a, monday(13, 0)),
        ..hold
    };
    c.db.place_hold(&c.org, &hold, &actor(), now())
        .await
        .unwrap();
    // A booked visit does not make patient 1 established.
    assert!(
        !c.db
            .patient_established(&c.org, &c.patients[1], now())
            .await
            .unwrap()
    );

    // Patient 1 was seen this morning (a same-day visit) before the
    // new-patient visit: it can no longer be moved as a new-patient visit.
    visit_on_record(
        &c,
        1,
        ts("2026-03-02T11:00:00Z"),
        AppointmentStatus::Fulfilled,
    )
    .await;
    let to = RescheduleTo {
        start: monday(14, 0),
        practitioner_id: None,
        location_id: None,
        resource_id: None,
        lead_override: None,
        idempotency_key: None,
    };
    let count = c.appointment_count().await;
    assert_eq!(
        refusal(
            c.db.reschedule(&c.org, &first.id, &to, Some(first.version), &actor(), now())
                .await
        ),
        Refusal::WrongPatientKind("new")
    );
    assert_eq!(c.appointment_count().await, count);
    let kept =
        c.db.get::<AppointmentRecord>(&c.org, &first.id)
            .await
            .unwrap();
    assert_eq!(kept.value.appointment.status, AppointmentStatus::Booked);
    // Patient 0's follow-up moves.
    let moved =
        c.db.reschedule(
            &c.org,
            &follow.appointment.id,
            &to,
            Some(follow.appointment.version),
            &actor(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(moved.new.value.appointment.start, monday(14, 0));
    c.consistent().await;
}

/// Single bookings through two servers' `BookingWriter`s, which share one
/// commit among the bookings queued together: each still wins or loses on
/// its own, and a retried request in the same crowd books once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_sharing_a_commit_win_or_lose_each_on_its_own() {
    let c = clinic().await;
    let other = Db::connect(&c.url).await.unwrap();
    let writers = [
        BookingWriter::start(c.db.clone()),
        BookingWriter::start(other.clone()),
    ];
    let before = audit_count(&c).await;
    let slots = [monday(9, 0), monday(10, 0), monday(11, 0), monday(14, 0)];
    let mut handles = Vec::new();
    for i in 0..40 {
        let writer = writers[i % 2].clone();
        let mut booking = c.booking(&c.visit, i % c.patients.len(), slots[i % 4]);
        // Requests 0 and 4 are one client's request and its retry.
        if i == 4 {
            booking.patient_id = c.patients[0].clone();
        }
        if i % 4 == 0 && i <= 4 {
            booking.idempotency_key = Some("desk-7-retry".into());
        }
        let org = c.org.clone();
        handles.push(tokio::spawn(async move {
            (i, writer.book(&org, &booking, &actor(), now()).await)
        }));
    }
    let mut won: Vec<BTreeSet<String>> = vec![BTreeSet::new(); slots.len()];
    let mut retried = Vec::new();
    for h in handles {
        let (i, result) = h.await.unwrap();
        match result {
            Ok(booked) => {
                if i == 0 || i == 4 {
                    retried.push(booked.appointment.id.clone());
                }
                won[i % 4].insert(booked.appointment.id);
            }
            Err(BookError::Store(StoreError::Conflict(m))) => {
                assert!(m.contains("the slot"), "{m}")
            }
            // Evaluated after the winner committed: refused before writing.
            Err(BookError::Refused(_)) => {}
            Err(e) => panic!("a loser must see a conflict, not {e:?}"),
        }
    }
    for (slot, winners) in won.iter().enumerate() {
        assert_eq!(winners.len(), 1, "slot {slot}: {winners:?}");
    }
    // The request and its retry both answered, with one appointment, unless
    // the retry came after the slot was taken by someone else.
    assert!(retried.windows(2).all(|w| w[0] == w[1]), "{retried:?}");
    assert_eq!(c.appointment_count().await, 4);
    assert_eq!(audit_count(&c).await, before + 4, "one event per booking");
    c.consistent().await;
    other.close().await;
}

/// Bookings queued together are written in one transaction of a few
/// statements: seats are chosen in turn (provider B takes three per slot,
/// so of five at one time exactly three are written, each on a seat of its
/// own), and a booking refused inside the group (an unknown patient) is
/// refused by name while the rest of the group commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_of_bookings_fills_seats_in_turn_and_refuses_each_on_its_own() {
    let c = clinic().await;
    let writer = BookingWriter::start(c.db.clone());
    let before = audit_count(&c).await;
    let mut bookings = Vec::new();
    for i in 0..5 {
        let mut b = c.booking(&c.tele, i % c.patients.len(), monday(9, 0));
        b.request = c.request(&c.dr_b, monday(9, 0));
        bookings.push(b);
    }
    let mut unknown = c.booking(&c.visit, 0, monday(10, 0));
    unknown.patient_id = "no-such-patient".into();
    bookings.push(unknown);
    bookings.push(c.booking(&c.visit, 1, monday(11, 0)));
    let handles: Vec<_> = bookings
        .into_iter()
        .map(|b| {
            let (writer, org) = (writer.clone(), c.org.clone());
            tokio::spawn(async move { writer.book(&org, &b, &actor(), now()).await })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    let overbooked: Vec<String> = results[..5]
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|b| b.appointment.id.clone()))
        .collect();
    assert_eq!(overbooked.len(), 3, "{results:?}");
    let mut seats = BTreeSet::new();
    for id in &overbooked {
        for h in c.db.claims_of(&c.org, id).await.unwrap() {
            assert!(seats.insert((h.granule_us, h.seat)), "a seat taken twice");
        }
    }
    assert_eq!(
        seats.iter().map(|(_, s)| *s).collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2])
    );
    for lost in &results[..5] {
        if let Err(e) = lost {
            assert!(
                matches!(
                    e,
                    BookError::Refused(_) | BookError::Store(StoreError::Conflict(_))
                ),
                "{e:?}"
            );
        }
    }
    match &results[5] {
        Err(BookError::Store(StoreError::Invalid(e))) => {
            assert_eq!(e.for_field("patient_id"), Some("unknown patient"))
        }
        other => panic!("an unknown patient must be refused by name, not {other:?}"),
    }
    let kept = results[6].as_ref().expect("the 11:00 booking commits");
    assert_eq!(kept.appointment.value.appointment.start, monday(11, 0));
    assert_eq!(c.appointment_count().await, 4);
    assert_eq!(audit_count(&c).await, before + 4, "one event per booking");
    c.consistent().await;
}

/// A server's booking and read-audit writers (on SQLite, one task that
/// commits each round's read audits with its bookings): every read audit
/// lands whole, every booking wins or loses on its own, and the chain
/// holds both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_audits_and_bookings_written_together_each_land_whole() {
    let c = clinic().await;
    let (bookings, audits) = BookingWriter::start_with_audit(c.db.clone());
    let before = audit_count(&c).await;
    let slots = [monday(9, 0), monday(10, 0), monday(11, 0)];
    let mut booked = Vec::new();
    let mut read = Vec::new();
    for i in 0..30 {
        let org = c.org.clone();
        if i % 2 == 0 {
            let writer = bookings.clone();
            let booking = c.booking(&c.visit, i % c.patients.len(), slots[i % 3]);
            booked.push(tokio::spawn(async move {
                writer.book(&org, &booking, &actor(), now()).await
            }));
        } else {
            let writer = audits.clone();
            read.push(tokio::spawn(async move {
                let entries = (0..2)
                    .map(|k| {
                        AuditEntry::new(format!("reader{i}"), Action::Read, Outcome::Success)
                            .resource("Patient", Some(&k.to_string()))
                    })
                    .collect();
                writer.append(&org, entries).await
            }));
        }
    }
    let mut won = 0;
    for h in booked {
        match h.await.unwrap() {
            Ok(_) => won += 1,
            Err(BookError::Store(StoreError::Conflict(_)) | BookError::Refused(_)) => {}
            Err(e) => panic!("a loser must see a conflict, not {e:?}"),
        }
    }
    for h in read {
        h.await.unwrap().expect("every read audit is committed");
    }
    assert_eq!(won, slots.len(), "one booking per slot");
    assert_eq!(c.appointment_count().await, 3);
    assert_eq!(
        audit_count(&c).await,
        before + 3 + 15 * 2,
        "one event per booking, every read's two"
    );
    let (events, _) =
        c.db.audit_events(&c.org, &Default::default(), 0, 1_000)
            .await
            .unwrap();
    let mut readers: Vec<&str> = events
        .iter()
        .filter(|e| e.entry.actor_name.starts_with("reader"))
        .map(|e| e.entry.actor_name.as_str())
        .collect();
    readers.sort_unstable();
    readers.dedup();
    assert_eq!(readers.len(), 15, "{readers:?}");
    c.consistent().await;
}

/// Whoever is told a change was made is told once it is durable: on
/// SQLite the writer commits without waiting for the disk and a thread
/// syncs the WAL beside it, so an answer given early would show here as a
/// commit still unsynced. (PostgreSQL's commits are durable when they
/// return: nothing is ever unsynced there.)
#[tokio::test]
async fn answers_wait_until_their_commit_is_durable() {
    let c = clinic().await;
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.audit(AuditEntry::new("desk", Action::Read, Outcome::Success))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(c.db.unsynced_commits(), 0, "a transaction's commit");
    let (bookings, audits) = BookingWriter::start_with_audit(c.db.clone());
    for (i, start) in [monday(9, 0), monday(10, 0)].into_iter().enumerate() {
        let booking = c.booking(&c.visit, i, start);
        bookings
            .book(&c.org, &booking, &actor(), now())
            .await
            .unwrap();
        assert_eq!(c.db.unsynced_commits(), 0, "a group-written booking");
        let read = AuditEntry::new("desk", Action::Read, Outcome::Success);
        audits.append(&c.org, vec![read]).await.unwrap();
        assert_eq!(c.db.unsynced_commits(), 0, "a group-written read audit");
    }
    c.consistent().await;
}

/// A server keeps the schedule set-up between computations; a change made
/// through another server reaches it at its next computation.
#[tokio::test]
async fn a_kept_schedule_set_up_follows_changes_made_on_another_server() {
    let c = clinic().await;
    assert!(starts(&c.slots(&c.visit, &c.dr_a, now()).await).contains(&monday(10, 0)));
    let other = Db::connect(&c.url).await.unwrap();
    let mut tx = other.begin(&c.org).await.unwrap();
    let morning_off = ScheduleException {
        id: String::new(),
        start: date(2026, 3, 9).at(8, 0, 0, 0),
        end: date(2026, 3, 9).at(12, 0, 0, 0),
        kind: ExceptionKind::TimeOff {
            practitioner_id: c.dr_a.clone(),
        },
    };
    tx.create_exception(morning_off, &actor()).await.unwrap();
    tx.commit().await.unwrap();
    other.close().await;

    let after = starts(&c.slots(&c.visit, &c.dr_a, now()).await);
    assert!(!after.contains(&monday(10, 0)));
    assert!(after.contains(&monday(14, 0)));
    let booking = c.booking(&c.visit, 0, monday(10, 0));
    assert!(matches!(
        c.db.book(&c.org, &booking, &actor(), now()).await,
        Err(BookError::Refused(_))
    ));
    assert_eq!(c.appointment_count().await, 0);
}
