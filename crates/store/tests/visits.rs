//! Visit flow storage: the full path of a visit with its appointment, rooms
//! and board stream; refusals that write nothing; two servers racing for a
//! room; gap-free board numbers per location; the day's board; visits that
//! follow appointments changed elsewhere; checklists and restock tasks. Run
//! on SQLite and (with CAREFRONT_TEST_POSTGRES) on PostgreSQL.

use carefront_domain::ValidationErrors;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Address, Location, Organization, Practitioner, Room, RoomKind};
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, CancelReason, Modality, PatientEligibility,
};
use carefront_domain::visit::{
    ChangedBy, RoomChange, RoomChecklist, RoomState, RoomStatus, SupplyCount, SupplyPar, Visit,
    VisitStatus, VisitStep, WaitThresholds,
};
use carefront_store::testing::fresh_database;
use carefront_store::{
    Actor, AppointmentRecord, AuditFilter, BoardEvent, Db, FlowActor, StoreError, TaskStatus,
    VisitChange, new_id,
};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const ZONE: &str = "America/New_York";

/// Monday 9 March 2026 at a New York wall time (EDT, UTC-4).
fn monday(hh: i8, mm: i8) -> Timestamp {
    jiff::tz::TimeZone::get(ZONE)
        .unwrap()
        .to_timestamp(date(2026, 3, 9).at(hh, mm, 0, 0))
        .unwrap()
}

fn desk_actor() -> Actor {
    Actor {
        actor_id: Some("u1".into()),
        actor_name: "desk".into(),
        role: Some("front_desk".into()),
        client_addr: None,
    }
}

fn desk() -> FlowActor {
    FlowActor::Staff(desk_actor())
}

fn kiosk() -> FlowActor {
    FlowActor::Kiosk {
        device_id: "lobby-1".into(),
        client_addr: None,
    }
}

fn to(status: VisitStatus) -> VisitStep {
    VisitStep::new(status, None).unwrap()
}

fn invalid(err: StoreError) -> ValidationErrors {
    match err {
        StoreError::Invalid(e) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn location(name: &str) -> Location {
    Location {
        name: name.into(),
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

/// Two locations in New York, "Main" with exam rooms 1 and 2 and "North"
/// with exam room 3; one provider, one type, patients.
struct Clinic {
    db: Db,
    url: String,
    org: String,
    main: String,
    north: String,
    rooms: Vec<String>,
    practitioner: String,
    kind: String,
    patients: Vec<String>,
}

async fn clinic() -> Clinic {
    let (db, url) = fresh_database().await.unwrap();
    let org = new_id();
    let mut tx = db.begin(&org).await.unwrap();
    let organization = Organization {
        name: "Clinic".into(),
        phone: None,
        address: None,
        active: true,
    };
    tx.create(&org, &organization, "t").await.unwrap();
    let main = tx
        .create(&new_id(), &location("Main"), "t")
        .await
        .unwrap()
        .id;
    let north = tx
        .create(&new_id(), &location("North"), "t")
        .await
        .unwrap()
        .id;
    let mut rooms = Vec::new();
    for (name, at) in [("Exam 1", &main), ("Exam 2", &main), ("Exam 3", &north)] {
        let room = Room {
            location_id: at.clone(),
            name: name.into(),
            kind: RoomKind::Exam,
        };
        rooms.push(tx.create(&new_id(), &room, "t").await.unwrap().id);
    }
    let practitioner = Practitioner {
        npi: None,
        prefix: None,
        given: "Ana".into(),
        family: "Reyes".into(),
        suffix: Some("MD".into()),
        gender: None,
        phone: None,
        email: None,
        active: true,
    };
    let practitioner = tx.create(&new_id(), &practitioner, "t").await.unwrap().id;
    let kind = AppointmentType {
        id: new_id(),
        name: "Office visit".into(),
        duration_minutes: 20,
        color: "#2a7ab0".into(),
        specialties: vec![],
        practitioner_ids: vec![],
        resource_kind: None,
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: 0,
        max_days_ahead: 365,
        instructions: None,
        intake_form: None,
        active: true,
    };
    let kind = tx.create(&kind.id.clone(), &kind, "t").await.unwrap().id;
    let mut patients = Vec::new();
    for p in carefront_synth::PatientGenerator::new(29).iter(0..8) {
        patients.push(tx.create_patient(&new_id(), p, "t").await.unwrap().id);
    }
    tx.commit().await.unwrap();
    Clinic {
        db,
        url,
        org,
        main,
        north,
        rooms,
        practitioner,
        kind,
        patients,
    }
}

impl Clinic {
    /// A booked 20-minute appointment of patient `patient` at `location`.
    async fn appointment(&self, patient: usize, location: &str, start: Timestamp) -> String {
        self.appointment_with(patient, location, start, AppointmentStatus::Booked)
            .await
    }

    async fn appointment_with(
        &self,
        patient: usize,
        location: &str,
        start: Timestamp,
        status: AppointmentStatus,
    ) -> String {
        let a = Appointment {
            id: new_id(),
            patient_id: self.patients[patient].clone(),
            practitioner_id: self.practitioner.clone(),
            location_id: location.into(),
            appointment_type_id: self.kind.clone(),
            resource_ids: vec![],
            start,
            end: start + SignedDuration::from_mins(20),
            status,
            status_changed_at: monday(6, 0),
            // Overlapping visits in tests do not compete for the provider.
            max_seat: 20,
            cancel_reason: (status == AppointmentStatus::Cancelled).then_some(CancelReason::Other),
            override_reason: None,
            series_id: None,
            rescheduled_from: None,
            arrived_at: None,
        };
        let id = a.id.clone();
        let mut tx = self.db.begin(&self.org).await.unwrap();
        tx.record_appointment(a, "scheduler").await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn step_on(
        &self,
        db: &Db,
        appointment: &str,
        step: &VisitStep,
        by: &FlowActor,
        now: Timestamp,
    ) -> Result<VisitChange, StoreError> {
        let mut tx = db.begin(&self.org).await?;
        let change = tx.visit_step(appointment, step, by, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn step(
        &self,
        appointment: &str,
        step: &VisitStep,
        by: &FlowActor,
        now: Timestamp,
    ) -> Result<VisitChange, StoreError> {
        self.step_on(&self.db, appointment, step, by, now).await
    }

    async fn room(
        &self,
        room: &str,
        change: RoomChange,
        now: Timestamp,
    ) -> Result<RoomState, StoreError> {
        let mut tx = self.db.begin(&self.org).await?;
        let state = tx.change_room(room, &change, &desk_actor(), now).await?;
        tx.commit().await?;
        Ok(state)
    }

    async fn appointment_status(&self, id: &str) -> AppointmentStatus {
        self.db
            .get::<AppointmentRecord>(&self.org, id)
            .await
            .unwrap()
            .value
            .appointment
            .status
    }

    async fn room_state(&self, room: &str) -> RoomState {
        let location = if room == self.rooms[2] {
            &self.north
        } else {
            &self.main
        };
        let board = self.db.room_board(&self.org, location).await.unwrap();
        board
            .rooms
            .into_iter()
            .find(|r| r.room_id == room)
            .unwrap()
            .state
    }

    async fn board_visit(&self, appointment: &str) -> Visit {
        let board = self
            .db
            .day_board(&self.org, &self.main, date(2026, 3, 9))
            .await
            .unwrap();
        board
            .visits
            .into_iter()
            .find(|v| v.visit.appointment_id == appointment)
            .unwrap()
            .visit
    }

    async fn events(&self, location: &str) -> Vec<BoardEvent> {
        self.db
            .board_events_since(&self.org, location, 0, 1000)
            .await
            .unwrap()
    }

    async fn audit_count(&self) -> i64 {
        self.db
            .audit_events(&self.org, &AuditFilter::default(), 0, 1)
            .await
            .unwrap()
            .1
    }

    async fn consistent(&self) {
        self.db
            .verify_audit_chain(&self.org, |_| {})
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn a_visit_runs_its_whole_path_with_appointment_rooms_board_and_audit() {
    let c = clinic().await;
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    let room = c.rooms[0].clone();

    // The kiosk records the arrival; the board says so.
    let arrived = c
        .step(&a, &to(VisitStatus::Arrived), &kiosk(), monday(8, 50))
        .await
        .unwrap();
    assert_eq!(arrived.board_seq, 1);
    let on_board = c.board_visit(&a).await;
    assert_eq!(on_board.status, VisitStatus::Arrived);
    assert_eq!(
        on_board.by,
        Some(ChangedBy::Kiosk {
            device_id: "lobby-1".into()
        })
    );
    assert_eq!(c.appointment_status(&a).await, AppointmentStatus::Arrived);
    let err = invalid(
        c.step(&a, &to(VisitStatus::CheckedIn), &kiosk(), monday(8, 51))
            .await
            .unwrap_err(),
    );
    assert!(err.for_field("status").unwrap().contains("kiosk"));

    c.step(&a, &to(VisitStatus::CheckedIn), &desk(), monday(8, 55))
        .await
        .unwrap();
    assert_eq!(c.appointment_status(&a).await, AppointmentStatus::CheckedIn);
    let roomed = c
        .step(&a, &VisitStep::room(&room), &desk(), monday(9, 5))
        .await
        .unwrap();
    assert_eq!(roomed.rooms.len(), 1);
    let rooms = c.db.room_board(&c.org, &c.main).await.unwrap();
    assert_eq!(rooms.seq, 3);
    let exam1 = &rooms.rooms[0];
    assert_eq!(
        (exam1.name.as_str(), exam1.kind),
        ("Exam 1", RoomKind::Exam)
    );
    assert_eq!(
        exam1.state.status,
        RoomStatus::Occupied {
            appointment_id: a.clone()
        }
    );
    assert_eq!(exam1.state.since, monday(9, 5));
    assert_eq!(exam1.patient.as_ref().unwrap().id, c.patients[0]);
    assert_eq!(rooms.rooms[1].state.status, RoomStatus::Ready);
    assert!(rooms.rooms[1].patient.is_none());

    c.step(&a, &to(VisitStatus::WithProvider), &desk(), monday(9, 10))
        .await
        .unwrap();
    let out = c
        .step(&a, &to(VisitStatus::Checkout), &desk(), monday(9, 30))
        .await
        .unwrap();
    assert_eq!(out.rooms[0].status, RoomStatus::NeedsCleaning);
    let done = c
        .step(&a, &to(VisitStatus::Completed), &desk(), monday(9, 35))
        .await
        .unwrap();
    assert_eq!(done.visit.status, VisitStatus::Completed);
    assert_eq!(c.appointment_status(&a).await, AppointmentStatus::Fulfilled);

    let history = c.db.visit_history(&c.org, &a).await.unwrap();
    let path: Vec<_> = history.iter().map(|e| (e.from, e.to)).collect();
    use VisitStatus::*;
    assert_eq!(
        path,
        [
            (Scheduled, Arrived),
            (Arrived, CheckedIn),
            (CheckedIn, Roomed),
            (Roomed, WithProvider),
            (WithProvider, Checkout),
            (Checkout, Completed)
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(history[2].room_id.as_deref(), Some(room.as_str()));
    assert!(matches!(history[0].by, ChangedBy::Kiosk { .. }));
    assert_eq!(
        history[1].by,
        ChangedBy::User {
            id: Some("u1".into()),
            name: "desk".into()
        }
    );

    // Six board events, each with the visit, the room where it moved.
    let events = c.events(&c.main).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(events.iter().all(|e| e.change.visits.len() == 1));
    let room_changes: Vec<usize> = events.iter().map(|e| e.change.rooms.len()).collect();
    assert_eq!(room_changes, [0, 0, 1, 0, 1, 0]);
    assert_eq!(events[5].change.visits[0].status, Completed);

    // Every step is audited as a change of the visit, kiosk included.
    let filter = AuditFilter {
        resource_type: Some("Visit".into()),
        resource_id: Some(a.clone()),
        ..AuditFilter::default()
    };
    let (audited, total) = c.db.audit_events(&c.org, &filter, 0, 10).await.unwrap();
    assert_eq!(total, 6);
    assert!(audited.iter().all(|e| e.entry.action == Action::Update
        && e.entry.patient_id.as_deref() == Some(c.patients[0].as_str())));
    assert_eq!(audited.last().unwrap().entry.actor_name, "kiosk lobby-1");

    // Cleaning: the checklist of exam rooms must be complete.
    let checklist = RoomChecklist {
        kind: RoomKind::Exam,
        cleaning: vec!["Wipe table".into(), "Replace paper".into()],
        supplies: vec![],
    };
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.save_room_checklist(checklist, None, &desk_actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let half = RoomChange::Cleaned {
        done: vec!["Wipe table".into()],
    };
    let err = invalid(c.room(&room, half, monday(9, 40)).await.unwrap_err());
    assert!(err.for_field("done").unwrap().contains("Replace paper"));
    let full = RoomChange::Cleaned {
        done: vec!["Wipe table".into(), "Replace paper".into()],
    };
    let ready = c.room(&room, full, monday(9, 45)).await.unwrap();
    assert_eq!(
        (ready.status, ready.since),
        (RoomStatus::Ready, monday(9, 45))
    );
    let last = c.events(&c.main).await.pop().unwrap();
    assert_eq!((last.seq, last.change.visits.len()), (7, 0));
    assert_eq!(last.change.rooms[0].status, RoomStatus::Ready);
    c.consistent().await;
}

#[tokio::test]
async fn a_refused_step_writes_nothing() {
    let c = clinic().await;
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    let audits = c.audit_count().await;
    let version =
        c.db.get::<AppointmentRecord>(&c.org, &a)
            .await
            .unwrap()
            .version;

    // The visit machine refuses, naming the status the visit is in.
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .visit_step(&a, &VisitStep::room(&c.rooms[0]), &desk(), monday(8, 55))
        .await
        .unwrap_err();
    drop(tx);
    let message = invalid(err).for_field("status").unwrap().to_string();
    assert!(message.contains("that is scheduled"), "{message}");
    assert!(message.contains("check the patient in"), "{message}");

    // The appointment's own rules refuse a no-show before the start.
    let err = c
        .step(&a, &to(VisitStatus::NoShow), &desk(), monday(8, 55))
        .await
        .unwrap_err();
    assert!(
        invalid(err)
            .for_field("status")
            .unwrap()
            .contains("not started")
    );
    // A room at another location, and no room at all.
    c.step(&a, &to(VisitStatus::CheckedIn), &desk(), monday(8, 55))
        .await
        .unwrap();
    let before = c.events(&c.main).await.len();
    let audits_before = c.audit_count().await;
    for room in [c.rooms[2].as_str(), "nope"] {
        let err = c
            .step(&a, &VisitStep::room(room), &desk(), monday(9, 0))
            .await
            .unwrap_err();
        assert!(invalid(err).for_field("room_id").is_some());
    }
    assert_eq!(c.events(&c.main).await.len(), before);
    assert_eq!(c.audit_count().await, audits_before);
    assert_eq!(c.room_state(&c.rooms[2]).await.status, RoomStatus::Ready);

    // Nothing of the two refused steps before check-in was kept.
    let history = c.db.visit_history(&c.org, &a).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        audits_before,
        audits + 2,
        "check-in: the appointment and the visit"
    );
    assert_eq!(
        c.db.get::<AppointmentRecord>(&c.org, &a)
            .await
            .unwrap()
            .version,
        version + 1
    );
    assert_eq!(c.room_state(&c.rooms[0]).await.status, RoomStatus::Ready);

    // An appointment that is not on the board has no visit.
    let proposed = c
        .appointment_with(1, &c.main, monday(10, 0), AppointmentStatus::Proposed)
        .await;
    let err = c
        .step(&proposed, &to(VisitStatus::Arrived), &desk(), monday(9, 50))
        .await
        .unwrap_err();
    assert!(
        invalid(err)
            .for_field("status")
            .unwrap()
            .contains("not on the board")
    );
    assert!(matches!(
        c.step(&new_id(), &to(VisitStatus::Arrived), &desk(), monday(9, 50))
            .await,
        Err(StoreError::NotFound)
    ));
    c.consistent().await;
}

#[tokio::test]
async fn the_database_keeps_one_visit_per_appointment_and_one_visit_per_room() {
    let c = clinic().await;
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    c.step(&a, &to(VisitStatus::CheckedIn), &desk(), monday(8, 55))
        .await
        .unwrap();
    c.step(&a, &VisitStep::room(&c.rooms[0]), &desk(), monday(9, 0))
        .await
        .unwrap();
    let org = &c.org;
    let second_visit = format!(
        "INSERT INTO visits (org_id, appointment_id, status, since_us, version) \
         VALUES ('{org}', '{a}', 'scheduled', 0, 0)"
    );
    assert!(c.db.execute_unchecked(&second_visit).await.is_err());
    let second_room = format!(
        "INSERT INTO room_states (org_id, room_id, status, appointment_id, since_us) \
         VALUES ('{org}', '{}', 'occupied', '{a}', 0)",
        c.rooms[1]
    );
    assert!(c.db.execute_unchecked(&second_room).await.is_err());
    let occupied_without_visit = format!(
        "UPDATE room_states SET appointment_id = NULL WHERE org_id = '{org}' AND room_id = '{}'",
        c.rooms[0]
    );
    assert!(
        c.db.execute_unchecked(&occupied_without_visit)
            .await
            .is_err()
    );
}

/// Checked-in visits at Main, from a fresh patient each.
async fn checked_in(
    c: &Clinic,
    count: usize,
    first_patient: usize,
    start: Timestamp,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let a = c
            .appointment((first_patient + i) % c.patients.len(), &c.main, start)
            .await;
        c.step(&a, &to(VisitStatus::CheckedIn), &desk(), start)
            .await
            .unwrap();
        ids.push(a);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_rooming_patients_into_one_room_exactly_one_wins() {
    let c = clinic().await;
    let other = Db::connect(&c.url).await.unwrap();
    let room = c.rooms[0].clone();
    for round in 0..4i8 {
        let start = monday(9 + round, 0);
        let visits = checked_in(&c, 2, usize::from(round as u8) * 2, start).await;
        let mut handles = Vec::new();
        for (i, a) in visits.iter().enumerate() {
            let db = if i == 0 { c.db.clone() } else { other.clone() };
            let org = c.org.clone();
            let (a, room) = (a.clone(), room.clone());
            handles.push(tokio::spawn(async move {
                let mut tx = db.begin(&org).await?;
                let change = tx
                    .visit_step(&a, &VisitStep::room(&room), &desk(), start)
                    .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(change)
            }));
        }
        let mut won = Vec::new();
        for (h, a) in handles.into_iter().zip(&visits) {
            match h.await.unwrap() {
                Ok(_) => won.push(a.clone()),
                Err(StoreError::Invalid(e)) => {
                    assert!(e.for_field("room_id").unwrap().contains("occupied"), "{e}")
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}");
        let winner = &won[0];
        assert_eq!(
            c.room_state(&room).await.status,
            RoomStatus::Occupied {
                appointment_id: winner.clone()
            }
        );
        let loser = visits.iter().find(|a| *a != winner).unwrap();
        assert_eq!(c.board_visit(loser).await.status, VisitStatus::CheckedIn);
        // The winner moves on; the room is cleaned for the next round.
        let later = start + SignedDuration::from_mins(30);
        for status in [VisitStatus::WithProvider, VisitStatus::Checkout] {
            c.step(winner, &to(status), &desk(), later).await.unwrap();
        }
        c.room(&room, RoomChange::Cleaned { done: vec![] }, later)
            .await
            .unwrap();
    }
    let seqs: Vec<i64> = c.events(&c.main).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    other.close().await;
    c.consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn board_numbers_are_gap_free_and_ordered_per_location() {
    let c = clinic().await;
    let other = Db::connect(&c.url).await.unwrap();
    let start = monday(9, 0);
    let mut visits = Vec::new();
    for i in 0..6 {
        let at = if i % 2 == 0 { &c.main } else { &c.north };
        visits.push(c.appointment(i, at, start).await);
    }
    // A board on the second server follows Main while it changes: it
    // never sees a number before the ones below it.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (db, org, location, stop) =
            (other.clone(), c.org.clone(), c.main.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                for e in db
                    .board_events_since(&org, &location, last, 1000)
                    .await
                    .unwrap()
                {
                    assert_eq!(e.seq, last + 1, "a reader never sees a gap");
                    last = e.seq;
                }
                if stopping {
                    return last;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    // Many writers on two servers at both locations at once; some steps
    // are refused (a second arrival), which must leave no gap.
    let mut handles = Vec::new();
    for (i, a) in visits.iter().enumerate() {
        for (j, status) in [
            VisitStatus::Arrived,
            VisitStatus::Arrived,
            VisitStatus::CheckedIn,
        ]
        .into_iter()
        .enumerate()
        {
            let db = if (i + j) % 2 == 0 {
                c.db.clone()
            } else {
                other.clone()
            };
            let (org, a) = (c.org.clone(), a.clone());
            handles.push(tokio::spawn(async move {
                let mut tx = db.begin(&org).await?;
                let change = tx.visit_step(&a, &to(status), &desk(), start).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(change)
            }));
        }
    }
    let mut done = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => done += 1,
            Err(StoreError::Invalid(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let seen = poller.await.unwrap();
    assert_eq!(seen, c.events(&c.main).await.len() as i64);
    let mut total = 0;
    for location in [&c.main, &c.north] {
        let events = c.events(location).await;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
        total += events.len();
        // Reading on from any number gives exactly the rest.
        let rest =
            c.db.board_events_since(&c.org, location, 2, 1000)
                .await
                .unwrap();
        assert_eq!(rest.first().map(|e| e.seq), Some(3));
        assert_eq!(rest.len(), events.len() - 2);
        // Replaying the stream in order ends where the visits are.
        let mut last: BTreeMap<String, Visit> = BTreeMap::new();
        for e in &events {
            for v in &e.change.visits {
                last.insert(v.appointment_id.clone(), v.clone());
            }
        }
        for (id, v) in last {
            let history = c.db.visit_history(&c.org, &id).await.unwrap();
            assert_eq!(history.last().unwrap().to, v.status);
        }
    }
    assert_eq!(total, done);
    other.close().await;
    c.consistent().await;
}

#[tokio::test]
async fn the_day_board_lists_the_local_day_with_status_and_wait() {
    let c = clinic().await;
    let tz = jiff::tz::TimeZone::get(ZONE).unwrap();
    let local = |d: i8, hh: i8, mm: i8| tz.to_timestamp(date(2026, 3, d).at(hh, mm, 0, 0)).unwrap();
    let late_sunday = c.appointment(0, &c.main, local(8, 23, 50)).await;
    let early = c.appointment(1, &c.main, local(9, 0, 10)).await;
    let nine = c.appointment(2, &c.main, monday(9, 0)).await;
    let cancelled = c
        .appointment_with(3, &c.main, monday(10, 0), AppointmentStatus::Cancelled)
        .await;
    c.appointment_with(4, &c.main, monday(11, 0), AppointmentStatus::EnteredInError)
        .await;
    c.appointment_with(5, &c.main, monday(11, 0), AppointmentStatus::Proposed)
        .await;
    let late = c.appointment(6, &c.main, local(9, 23, 55)).await;
    c.appointment(7, &c.main, local(10, 0, 5)).await;
    c.appointment(7, &c.north, monday(9, 0)).await;

    c.step(&nine, &to(VisitStatus::CheckedIn), &desk(), monday(8, 40))
        .await
        .unwrap();
    let board =
        c.db.day_board(&c.org, &c.main, date(2026, 3, 9))
            .await
            .unwrap();
    assert_eq!(board.timezone, tz);
    assert_eq!(board.seq, 1);
    let ids: Vec<&str> = board
        .visits
        .iter()
        .map(|v| v.visit.appointment_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            early.as_str(),
            nine.as_str(),
            cancelled.as_str(),
            late.as_str()
        ]
    );
    assert!(!ids.contains(&late_sunday.as_str()));
    let row = &board.visits[1];
    assert_eq!(row.patient.id, c.patients[2]);
    assert!(!row.patient.family.is_empty());
    assert_eq!(
        (row.start, row.appointment_status),
        (monday(9, 0), AppointmentStatus::CheckedIn)
    );
    assert_eq!(row.practitioner_id, c.practitioner);
    assert_eq!(
        (row.visit.status, row.visit.since),
        (VisitStatus::CheckedIn, monday(8, 40))
    );
    assert_eq!(board.visits[2].visit.status, VisitStatus::Cancelled);
    assert_eq!(board.visits[0].visit.status, VisitStatus::Scheduled);
    assert_eq!(board.visits[0].visit.by, None);

    // The location's threshold (default 15 minutes) decides who is highlighted.
    let thresholds: WaitThresholds = c.db.setting(&c.org).await.unwrap();
    let threshold = thresholds.for_location(&c.main);
    assert_eq!(threshold, SignedDuration::from_mins(15));
    assert!(!row.visit.waiting_too_long(monday(8, 55), threshold));
    assert!(row.visit.waiting_too_long(monday(8, 56), threshold));
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let mut custom = WaitThresholds::default();
    custom.by_location.insert(c.main.clone(), 5);
    tx.set_setting(&custom.validate().unwrap(), "lead")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let thresholds: WaitThresholds = c.db.setting(&c.org).await.unwrap();
    assert!(
        row.visit
            .waiting_too_long(monday(8, 46), thresholds.for_location(&c.main))
    );

    assert!(matches!(
        c.db.day_board(&c.org, &new_id(), date(2026, 3, 9)).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn a_visit_follows_its_appointment_changed_elsewhere_and_frees_its_room() {
    let c = clinic().await;
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    let room = c.rooms[0].clone();
    c.step(&a, &to(VisitStatus::CheckedIn), &desk(), monday(8, 50))
        .await
        .unwrap();
    c.step(&a, &VisitStep::room(&room), &desk(), monday(8, 55))
        .await
        .unwrap();

    // The schedule marks the appointment fulfilled without the visit flow:
    // the visit follows in the same transaction.
    let scheduler = Actor::system("scheduler");
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.set_appointment_status(
        &a,
        AppointmentStatus::Fulfilled,
        None,
        None,
        &scheduler,
        monday(9, 20),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Boards show it at once.
    let shown = c.board_visit(&a).await;
    assert_eq!(
        (shown.status, shown.room_id),
        (VisitStatus::Completed, None)
    );
    let state = c.room_state(&room).await;
    assert_eq!(state.status, RoomStatus::NeedsCleaning);

    // The room waits for cleaning, then is ready.
    let ready = c
        .room(&room, RoomChange::Cleaned { done: vec![] }, monday(9, 30))
        .await
        .unwrap();
    assert_eq!(ready.status, RoomStatus::Ready);
    let history = c.db.visit_history(&c.org, &a).await.unwrap();
    let last = history.last().unwrap();
    assert!(last.followed_appointment);
    assert_eq!(
        (last.from, last.to),
        (VisitStatus::Roomed, VisitStatus::Completed)
    );
    assert_eq!(
        last.by,
        ChangedBy::User {
            id: None,
            name: "scheduler".into()
        }
    );
    let events = c.events(&c.main).await;
    let rooms_in_last_two: Vec<RoomStatus> = events[events.len() - 2..]
        .iter()
        .flat_map(|e| e.change.rooms.iter().map(|r| r.status.clone()))
        .collect();
    assert_eq!(
        rooms_in_last_two,
        [RoomStatus::NeedsCleaning, RoomStatus::Ready]
    );

    // The schedule's own writes have already followed: a second call
    // finds nothing to do.
    let b = c.appointment(1, &c.main, monday(10, 0)).await;
    c.step(&b, &to(VisitStatus::Arrived), &kiosk(), monday(9, 50))
        .await
        .unwrap();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.set_appointment_status(
        &b,
        AppointmentStatus::CheckedIn,
        None,
        None,
        &scheduler,
        monday(9, 52),
    )
    .await
    .unwrap();
    assert!(
        tx.follow_appointment(&b, &scheduler, monday(9, 52))
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
    assert_eq!(c.board_visit(&b).await.status, VisitStatus::CheckedIn);
    // The next step starts from there.
    c.step(&b, &VisitStep::room(&room), &desk(), monday(9, 55))
        .await
        .unwrap();
    // An appointment without a visit has nothing to follow.
    let d = c.appointment(2, &c.main, monday(11, 0)).await;
    let mut tx = c.db.begin(&c.org).await.unwrap();
    assert!(
        tx.follow_appointment(&d, &scheduler, monday(9, 52))
            .await
            .unwrap()
            .is_none()
    );
    drop(tx);
    c.consistent().await;
}

/// The schedule (or FHIR) changing an appointment moves its visit in the
/// same transaction: rooms are freed and boards get the event at once.
#[tokio::test]
async fn appointments_changed_through_the_schedule_move_their_visits_and_free_rooms() {
    use VisitStatus::*;
    let c = clinic().await;
    let scheduler = Actor::system("scheduler");
    let set_status = |id: String, status: AppointmentStatus, at: Timestamp| {
        let (db, org, scheduler) = (c.db.clone(), c.org.clone(), scheduler.clone());
        async move {
            let mut tx = db.begin(&org).await?;
            tx.set_appointment_status(&id, status, None, None, &scheduler, at)
                .await?;
            tx.commit().await
        }
    };
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    let room = c.rooms[0].clone();
    c.step(&a, &to(CheckedIn), &desk(), monday(8, 50))
        .await
        .unwrap();
    c.step(&a, &VisitStep::room(&room), &desk(), monday(8, 55))
        .await
        .unwrap();
    let seen = c.events(&c.main).await.len();

    // Booked in error: the roomed visit is cancelled and its room freed.
    set_status(a.clone(), AppointmentStatus::EnteredInError, monday(9, 5))
        .await
        .unwrap();
    let last = c.db.visit_history(&c.org, &a).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.from, last.to, last.followed_appointment),
        (Roomed, Cancelled, true)
    );
    let freed = c.room_state(&room).await;
    assert_eq!(
        (freed.status, freed.since),
        (RoomStatus::NeedsCleaning, monday(9, 5))
    );
    let events = c.events(&c.main).await;
    assert_eq!(events.len(), seen + 1, "one event for the board");
    let change = &events[seen].change;
    assert_eq!(
        (change.visits[0].status, change.visits[0].room_id.as_deref()),
        (Cancelled, None)
    );
    assert_eq!(change.rooms[0].room_id, room);
    assert_eq!(change.rooms[0].status, RoomStatus::NeedsCleaning);
    let filter = AuditFilter {
        resource_type: Some("Visit".into()),
        resource_id: Some(a.clone()),
        ..AuditFilter::default()
    };
    let (audited, _) = c.db.audit_events(&c.org, &filter, 0, 1).await.unwrap();
    let entry = &audited[0].entry;
    assert_eq!(entry.actor_name, "scheduler");
    assert!(
        entry
            .detail
            .as_deref()
            .unwrap()
            .ends_with("(following the appointment)")
    );

    // A no-show marked on the board who turns up late is arrived through
    // the schedule: the board hears of it.
    let b = c.appointment(1, &c.main, monday(10, 0)).await;
    c.step(&b, &to(NoShow), &desk(), monday(10, 20))
        .await
        .unwrap();
    set_status(b.clone(), AppointmentStatus::Arrived, monday(10, 30))
        .await
        .unwrap();
    let last = c.events(&c.main).await.pop().unwrap();
    assert_eq!(
        (
            last.change.visits[0].appointment_id.as_str(),
            last.change.visits[0].status
        ),
        (b.as_str(), Arrived)
    );

    // Cancelling an appointment nobody has moved through the flow touches
    // no visit and no board stream; the board shows it cancelled.
    let d = c.appointment(2, &c.main, monday(11, 0)).await;
    let before = c.events(&c.main).await.len();
    let mut tx = c.db.begin(&c.org).await.unwrap();
    tx.cancel_appointment(&d, CancelReason::Patient, None, &scheduler, monday(9, 10))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(c.events(&c.main).await.len(), before);
    assert_eq!(c.board_visit(&d).await.status, Cancelled);
    c.consistent().await;
}

#[tokio::test]
async fn cancellations_and_no_shows_move_the_appointment_with_their_reason() {
    let c = clinic().await;
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    let cancelled = c
        .step(
            &a,
            &VisitStep::cancel(CancelReason::Weather),
            &desk(),
            monday(8, 0),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.visit.status, VisitStatus::Cancelled);
    let record =
        c.db.get::<AppointmentRecord>(&c.org, &a)
            .await
            .unwrap()
            .value;
    assert_eq!(record.appointment.status, AppointmentStatus::Cancelled);
    assert_eq!(
        record.appointment.cancel_reason,
        Some(CancelReason::Weather)
    );

    let b = c.appointment(1, &c.main, monday(9, 0)).await;
    c.step(&b, &to(VisitStatus::NoShow), &desk(), monday(9, 30))
        .await
        .unwrap();
    assert_eq!(c.appointment_status(&b).await, AppointmentStatus::NoShow);
    // A late arrival is still seen.
    c.step(&b, &to(VisitStatus::Arrived), &desk(), monday(9, 40))
        .await
        .unwrap();
    assert_eq!(c.appointment_status(&b).await, AppointmentStatus::Arrived);
    // Leaving unseen keeps the appointment as it was (FHIR has no status for it).
    c.step(
        &b,
        &to(VisitStatus::LeftWithoutBeingSeen),
        &desk(),
        monday(10, 30),
    )
    .await
    .unwrap();
    assert_eq!(c.appointment_status(&b).await, AppointmentStatus::Arrived);
    assert_eq!(
        c.board_visit(&b).await.status,
        VisitStatus::LeftWithoutBeingSeen
    );
    c.consistent().await;
}

#[tokio::test]
async fn rooms_go_out_of_service_and_supplies_below_par_open_one_restock_task() {
    let c = clinic().await;
    let room = c.rooms[1].clone();
    let broken = RoomChange::OutOfService {
        reason: "exam light broken".into(),
    };
    let state = c.room(&room, broken, monday(8, 0)).await.unwrap();
    assert_eq!(
        state.status,
        RoomStatus::OutOfService {
            reason: "exam light broken".into()
        }
    );
    let a = c.appointment(0, &c.main, monday(9, 0)).await;
    c.step(&a, &to(VisitStatus::CheckedIn), &desk(), monday(8, 50))
        .await
        .unwrap();
    let err = c
        .step(&a, &VisitStep::room(&room), &desk(), monday(8, 55))
        .await
        .unwrap_err();
    assert!(
        invalid(err)
            .for_field("room_id")
            .unwrap()
            .contains("out of service")
    );
    let back = c
        .room(&room, RoomChange::BackInService, monday(9, 0))
        .await
        .unwrap();
    assert_eq!(back.status, RoomStatus::NeedsCleaning);

    let mut tx = c.db.begin(&c.org).await.unwrap();
    let bad = RoomChecklist {
        kind: RoomKind::Exam,
        cleaning: vec![],
        supplies: vec![SupplyPar {
            item: "Gloves".into(),
            par: 0,
        }],
    };
    let err = tx
        .save_room_checklist(bad, None, &desk_actor())
        .await
        .unwrap_err();
    assert!(invalid(err).for_field("supplies[0].par").is_some());
    drop(tx);
    let list = RoomChecklist {
        kind: RoomKind::Exam,
        cleaning: vec![],
        supplies: vec![
            SupplyPar {
                item: "Gloves".into(),
                par: 4,
            },
            SupplyPar {
                item: "Gauze".into(),
                par: 20,
            },
        ],
    };
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let saved = tx
        .save_room_checklist(list.clone(), None, &desk_actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stored =
        c.db.room_checklist(&c.org, RoomKind::Exam)
            .await
            .unwrap()
            .unwrap();
    assert_eq!((stored.version, &stored.value), (saved.version, &list));
    assert!(
        c.db.room_checklist(&c.org, RoomKind::Consult)
            .await
            .unwrap()
            .is_none()
    );

    let count = |gloves: u32, gauze: u32| {
        vec![
            SupplyCount {
                item: "Gloves".into(),
                on_hand: gloves,
            },
            SupplyCount {
                item: "Gauze".into(),
                on_hand: gauze,
            },
        ]
    };
    let counted = |counts: Vec<SupplyCount>, at: Timestamp| {
        let (db, org, room) = (c.db.clone(), c.org.clone(), room.clone());
        async move {
            let mut tx = db.begin(&org).await?;
            let task = tx.count_supplies(&room, &counts, &desk_actor(), at).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(task)
        }
    };
    assert!(counted(count(4, 20), monday(9, 0)).await.unwrap().is_none());
    let err = counted(count(1, 1)[..1].to_vec(), monday(9, 0))
        .await
        .unwrap_err();
    assert!(invalid(err).for_field("counts").unwrap().contains("Gauze"));
    let task = counted(count(1, 25), monday(9, 5)).await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Open);
    assert_eq!((task.shortfall.len(), task.shortfall[0].needed), (1, 3));
    let again = counted(count(1, 5), monday(9, 10)).await.unwrap().unwrap();
    assert_eq!(again.id, task.id, "one open task per room");
    assert_eq!(again.shortfall.len(), 2);
    let open =
        c.db.restock_tasks(&c.org, &c.main, TaskStatus::Open)
            .await
            .unwrap();
    assert_eq!(open, [again]);
    assert!(
        c.db.restock_tasks(&c.org, &c.north, TaskStatus::Open)
            .await
            .unwrap()
            .is_empty()
    );
    let restocked = counted(count(4, 20), monday(9, 30)).await.unwrap().unwrap();
    assert_eq!(
        (restocked.status, restocked.closed_at),
        (TaskStatus::Done, Some(monday(9, 30)))
    );
    assert!(
        c.db.restock_tasks(&c.org, &c.main, TaskStatus::Open)
            .await
            .unwrap()
            .is_empty()
    );
    let filter = AuditFilter {
        resource_type: Some("RestockTask".into()),
        resource_id: Some(task.id.clone()),
        ..AuditFilter::default()
    };
    let (audited, _) = c.db.audit_events(&c.org, &filter, 0, 10).await.unwrap();
    let details: Vec<&str> = audited
        .iter()
        .rev()
        .map(|e| e.entry.detail.as_deref().unwrap())
        .collect();
    assert_eq!(details.len(), 3);
    assert!(details[0].ends_with("short 3 Gloves"), "{details:?}");
    assert!(
        details[1].ends_with("short 3 Gloves, 15 Gauze"),
        "{details:?}"
    );
    assert!(details[2].ends_with("all supplies at par"), "{details:?}");

    let short = counted(count(0, 20), monday(10, 0)).await.unwrap().unwrap();
    assert_ne!(short.id, task.id);
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let closed = tx
        .close_restock_task(
            &short.id,
            TaskStatus::Dismissed,
            &desk_actor(),
            monday(10, 5),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(closed.status, TaskStatus::Dismissed);
    let mut tx = c.db.begin(&c.org).await.unwrap();
    let err = tx
        .close_restock_task(&short.id, TaskStatus::Done, &desk_actor(), monday(10, 6))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    c.consistent().await;
}
