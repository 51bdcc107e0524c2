//! Property tests of the visit flow: whatever the desk, the kiosk and the
//! schedule try, in any order and with clocks that disagree, histories stay
//! valid, the appointment agrees with the visit and no room ever holds two
//! patients.

use carefront_domain::directory::RoomKind;
use carefront_domain::scheduling::AppointmentStatus;
use carefront_domain::visit::{
    ChangedBy, RoomChange, RoomChecklist, RoomState, RoomStatus, SupplyCount, SupplyPar, Visit,
    VisitEvent, VisitStatus, VisitStep,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const ROOMS: [&str; 3] = ["r1", "r2", "r3"];

#[derive(Debug, Clone)]
enum Op {
    /// Visit `visit` tries to go to `VisitStatus::ALL[to]`, naming
    /// `ROOMS[room]` when that is roomed.
    Step {
        visit: usize,
        to: usize,
        room: usize,
        kiosk: bool,
    },
    /// The schedule changes the appointment to `AppointmentStatus::ALL[to]`
    /// (when its own state machine allows), then the visit follows.
    Schedule { visit: usize, to: usize },
}

fn op() -> impl Strategy<Value = (Op, i64)> {
    let step = (0..4usize, 0..10usize, 0..3usize, prop::bool::weighted(0.1)).prop_map(
        |(visit, to, room, kiosk)| Op::Step {
            visit,
            to,
            room,
            kiosk,
        },
    );
    let schedule = (0..4usize, 0..10usize).prop_map(|(visit, to)| Op::Schedule { visit, to });
    // Clocks of several servers: mostly forward, sometimes behind.
    (prop_oneof![6 => step, 1 => schedule], -120i64..900)
}

fn desk() -> ChangedBy {
    ChangedBy::User {
        id: Some("u1".into()),
        name: "desk".into(),
    }
}

/// Rooms and visits agree: a room is occupied by a visit exactly when that
/// visit is in it, so no room holds two patients and no patient is in two
/// rooms.
fn check_rooms(visits: &[Visit], rooms: &[RoomState]) {
    for v in visits {
        assert_eq!(v.room_id.is_some(), v.status.occupies_room(), "{v:?}");
    }
    for r in rooms {
        let inside: Vec<_> = visits
            .iter()
            .filter(|v| v.room_id.as_deref() == Some(r.room_id.as_str()))
            .collect();
        assert!(inside.len() <= 1, "{} holds {inside:?}", r.room_id);
        match &r.status {
            RoomStatus::Occupied { appointment_id } => {
                assert_eq!(inside.len(), 1, "{r:?}");
                assert_eq!(&inside[0].appointment_id, appointment_id);
            }
            _ => assert!(inside.is_empty(), "{r:?} with {inside:?}"),
        }
    }
}

/// A history starts at the first status, chains, never goes back in time,
/// takes only allowed steps (unless following the appointment), names a
/// room exactly when rooming and ends where the visit is.
fn check_history(start: VisitStatus, events: &[VisitEvent], visit: &Visit) {
    let mut status = start;
    let mut last: Option<Timestamp> = None;
    for e in events {
        assert_eq!(e.from, status, "{events:#?}");
        if !e.followed_appointment {
            assert!(e.from.check_transition(e.to).is_ok(), "{e:?}");
        }
        assert_eq!(e.room_id.is_some(), e.to == VisitStatus::Roomed, "{e:?}");
        if matches!(e.by, ChangedBy::Kiosk { .. }) {
            assert_eq!(e.to, VisitStatus::Arrived);
        }
        assert!(last.is_none_or(|t| t <= e.at), "{events:#?}");
        last = Some(e.at);
        status = e.to;
    }
    assert_eq!(status, visit.status);
    if let Some(t) = last {
        assert_eq!(visit.since, t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_sequence_of_attempts_keeps_flow_rooms_and_appointments_consistent(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let t0: Timestamp = "2026-03-09T13:00:00Z".parse().unwrap();
        let mut now = t0;
        let mut appointments = [AppointmentStatus::Booked; 4];
        let mut visits: Vec<Visit> = (0..4)
            .map(|i| Visit::for_appointment(&format!("a{i}"), AppointmentStatus::Booked, t0).unwrap())
            .collect();
        let mut rooms: Vec<RoomState> = ROOMS.iter().map(|r| RoomState::ready(*r, t0)).collect();
        let mut histories: Vec<Vec<VisitEvent>> = vec![Vec::new(); 4];

        for (op, delta) in ops {
            now += SignedDuration::from_secs(delta);
            match op {
                Op::Step { visit, to, room, kiosk } => {
                    let to = VisitStatus::ALL[to];
                    let step = match to {
                        VisitStatus::Roomed => VisitStep::room(ROOMS[room]),
                        _ => VisitStep::new(to, None).unwrap(),
                    };
                    let by = match kiosk {
                        true => ChangedBy::Kiosk { device_id: "lobby".into() },
                        false => desk(),
                    };
                    let before = (visits[visit].clone(), rooms.clone());
                    match visits[visit].apply(&step, now, by, &mut rooms) {
                        Ok(event) => {
                            // The appointment takes the matching step, which
                            // its own state machine always allows.
                            if let Some(a) = to.appointment_status()
                                && a != appointments[visit]
                            {
                                prop_assert!(appointments[visit].check_transition(a).is_ok());
                                appointments[visit] = a;
                            }
                            histories[visit].push(event);
                        }
                        Err(_) => prop_assert_eq!((visits[visit].clone(), rooms.clone()), before),
                    }
                }
                Op::Schedule { visit, to } => {
                    let to = AppointmentStatus::ALL[to];
                    if appointments[visit].check_transition(to).is_err() {
                        continue;
                    }
                    appointments[visit] = to;
                    let scheduler = ChangedBy::User { id: None, name: "scheduler".into() };
                    let v = &mut visits[visit];
                    if let Some(event) = v.follow(to, now, scheduler, &mut rooms).unwrap() {
                        histories[visit].push(event);
                    }
                    prop_assert_eq!(v.status_following(to), None);
                }
            }
            check_rooms(&visits, &rooms);
        }
        for (v, h) in visits.iter().zip(&histories) {
            check_history(VisitStatus::Scheduled, h, v);
        }
    }

    #[test]
    fn a_room_is_ready_again_only_after_its_whole_checklist(
        ops in prop::collection::vec((0..5u8, prop::collection::vec(0..3usize, 0..4)), 1..40)
    ) {
        let list = RoomChecklist {
            kind: RoomKind::Exam,
            cleaning: vec!["wipe".into(), "paper".into(), "sharps".into()],
            supplies: vec![],
        };
        let t0: Timestamp = "2026-03-09T13:00:00Z".parse().unwrap();
        let mut room = RoomState::ready("r1", t0);
        for (i, (kind, ticked)) in ops.into_iter().enumerate() {
            let at = t0 + SignedDuration::from_mins(i as i64 % 7);
            let before = room.clone();
            let done: Vec<String> = ticked.iter().map(|&k| list.cleaning[k].clone()).collect();
            let result = match kind {
                0 => room.occupy("a1", at),
                1 => room.vacate("a1", at),
                2 => room.apply(&RoomChange::Cleaned { done: done.clone() }, &list, at),
                3 => room.apply(&RoomChange::OutOfService { reason: "leak".into() }, &list, at),
                _ => room.apply(&RoomChange::BackInService, &list, at),
            };
            match result {
                Ok(()) => {
                    prop_assert!(room.since >= before.since);
                    if room.status == RoomStatus::Ready {
                        prop_assert_eq!(&before.status, &RoomStatus::NeedsCleaning);
                        prop_assert!(list.cleaning.iter().all(|c| done.contains(c)));
                    }
                    if matches!(room.status, RoomStatus::Occupied { .. }) {
                        prop_assert_eq!(&before.status, &RoomStatus::Ready);
                    }
                }
                Err(_) => prop_assert_eq!(&room, &before),
            }
        }
    }

    #[test]
    fn shortfalls_are_exactly_the_supplies_below_par(
        levels in prop::collection::vec((1..50u32, 0..60u32), 1..8)
    ) {
        let list = RoomChecklist {
            kind: RoomKind::Procedure,
            cleaning: vec![],
            supplies: levels
                .iter()
                .enumerate()
                .map(|(i, (par, _))| SupplyPar { item: format!("item {i}"), par: *par })
                .collect(),
        };
        let counts: Vec<SupplyCount> = levels
            .iter()
            .enumerate()
            .rev()
            .map(|(i, (_, on_hand))| SupplyCount { item: format!("item {i}"), on_hand: *on_hand })
            .collect();
        let short = list.shortfall(&counts).unwrap();
        let expected: Vec<String> = levels
            .iter()
            .enumerate()
            .filter(|(_, (par, on_hand))| on_hand < par)
            .map(|(i, _)| format!("item {i}"))
            .collect();
        prop_assert_eq!(short.iter().map(|s| s.item.clone()).collect::<Vec<_>>(), expected);
        for s in short {
            prop_assert_eq!(s.on_hand + s.needed, s.par);
        }
    }
}
