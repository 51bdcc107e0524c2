//! Behaviour of the scheduling core as a whole: slots on ordinary and DST
//! days, exceptions, bookings and resources, searches, booking checks,
//! series, the waitlist, and property tests over random schedules.

use super::testkit::*;
use super::time::boundary_instant;
use super::*;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const NY: &str = "America/New_York";
const LA: &str = "America/Los_Angeles";
const PHX: &str = "America/Phoenix";

fn slots_on(tz: &str, day: Date) -> Vec<Slot> {
    free_slots(&on_day(clinic(tz), day)).unwrap()
}

fn utc_of_first(slots: &[Slot]) -> Timestamp {
    slots[0].start
}

const CLINIC_DAY: [&str; 14] = [
    "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30",
    "15:00", "15:30", "16:00", "16:30",
];

// ------------------------------------------------------------ DST and zones

#[test]
fn ordinary_day_follows_the_template() {
    let slots = slots_on(NY, date(2026, 3, 9));
    assert_eq!(local_times(&slots), CLINIC_DAY);
    assert_eq!(utc_of_first(&slots), ts("2026-03-09T13:00:00Z"));
    assert!(
        slots
            .iter()
            .all(|s| s.resource_id.as_deref() == Some("room-1"))
    );
    assert!(slots.iter().all(|s| s.booked == 0 && s.capacity == 1));
}

/// The free slots of `kinds` computed together, written out in order,
/// after checking that each type's among them are the ones it has alone.
fn each_types_own(input: &SlotInput, kinds: &[AppointmentType]) -> (FreeSlots, Vec<Slot>) {
    let free = free_slots_by_type(input, kinds).unwrap();
    let written: Vec<Slot> = free
        .in_order()
        .map(|s| FreeSlots::slot(s, input, kinds))
        .collect();
    for kind in kinds {
        let mut alone = input.clone();
        alone.appointment_type = kind.clone();
        let own: Vec<Slot> = written
            .iter()
            .filter(|s| s.appointment_type_id == kind.id)
            .cloned()
            .collect();
        assert_eq!(own, free_slots(&alone).unwrap(), "{}", kind.id);
    }
    (free, written)
}

#[test]
fn slots_of_several_types_are_each_types_own_in_one_order() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input
        .bookings
        .push(booking("b1", "dr-a", &["room-1"], at(NY, day, 10, 0), 45));
    let kinds = [
        visit_type(),
        telehealth_type(20),
        AppointmentType {
            id: "tele-long".into(),
            ..telehealth_type(60)
        },
    ];
    let (free, written) = each_types_own(&input, &kinds);
    // One order across the types: by start, then type id.
    let order: Vec<(Timestamp, &str)> = written
        .iter()
        .map(|s| (s.start, s.appointment_type_id.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // From noon for visits, none of the short video visits, every long one.
    let noon = at(NY, day, 12, 0);
    let earliest = [Some(noon), None, Some(input.from)];
    let (total, first) = free.starting_from(&earliest);
    let expected: Vec<Slot> = written
        .iter()
        .filter(|s| match s.appointment_type_id.as_str() {
            "tele" => false,
            "tele-long" => true,
            _ => s.start >= noon,
        })
        .cloned()
        .collect();
    assert!(expected.len() > 10);
    assert_eq!(total, expected.len());
    let first: Vec<Slot> = first.map(|s| FreeSlots::slot(s, &input, &kinds)).collect();
    assert_eq!(first, expected);
}

/// Types with their own notice, horizon, specialty, room and modality, over
/// two weeks across the spring-forward day, for providers in two zones:
/// each type's slots among all of them are the ones it has alone.
#[test]
fn slots_of_several_types_keep_each_types_notice_and_horizon() {
    let mut input = practice();
    input.locations[1].timezone = LA.into();
    input.now = at(NY, date(2026, 3, 4), 9, 10);
    input.from = input.now;
    input.until = input.now + SignedDuration::from_hours(24 * 14);
    input.bookings = vec![
        booking(
            "b1",
            "dr-a",
            &["room-1"],
            at(NY, date(2026, 3, 5), 10, 0),
            45,
        ),
        booking("b2", "dr-b", &[], at(LA, date(2026, 3, 9), 8, 0), 90),
    ];
    let kinds = [
        AppointmentType {
            min_notice_minutes: 24 * 60,
            max_days_ahead: 3,
            ..visit_type()
        },
        AppointmentType {
            max_days_ahead: 10,
            ..telehealth_type(20)
        },
        AppointmentType {
            id: "derm".into(),
            specialties: vec![DERM.into()],
            min_notice_minutes: 90,
            ..visit_type()
        },
        AppointmentType {
            id: "inactive".into(),
            active: false,
            ..telehealth_type(15)
        },
    ];
    let (_, written) = each_types_own(&input, &kinds);
    for kind in &kinds {
        let offered = written.iter().any(|s| s.appointment_type_id == kind.id);
        assert_eq!(offered, kind.active, "{}", kind.id);
    }
}

#[test]
fn spring_forward_day_keeps_local_times() {
    for (tz, before, after) in [
        (NY, "2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z"),
        (LA, "2026-03-07T17:00:00Z", "2026-03-08T16:00:00Z"),
    ] {
        let sat = slots_on(tz, date(2026, 3, 7));
        let sun = slots_on(tz, date(2026, 3, 8));
        assert_eq!(local_times(&sat), CLINIC_DAY, "{tz}");
        assert_eq!(local_times(&sun), CLINIC_DAY, "{tz}");
        assert_eq!(utc_of_first(&sat), ts(before), "{tz}");
        assert_eq!(utc_of_first(&sun), ts(after), "{tz}");
        assert!(
            sun.iter()
                .all(|s| s.end.duration_since(s.start) == SignedDuration::from_mins(30))
        );
        assert_eq!(sun.last().unwrap().local_end.time(), t("17:00"));
    }
}

#[test]
fn fall_back_day_keeps_local_times() {
    for (tz, before, after) in [
        (NY, "2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z"),
        (LA, "2026-10-31T16:00:00Z", "2026-11-01T17:00:00Z"),
    ] {
        let sat = slots_on(tz, date(2026, 10, 31));
        let sun = slots_on(tz, date(2026, 11, 1));
        assert_eq!(local_times(&sun), CLINIC_DAY, "{tz}");
        assert_eq!(utc_of_first(&sat), ts(before), "{tz}");
        assert_eq!(utc_of_first(&sun), ts(after), "{tz}");
    }
}

#[test]
fn phoenix_has_no_dst() {
    for day in [
        date(2026, 3, 7),
        date(2026, 3, 8),
        date(2026, 11, 1),
        date(2026, 7, 1),
    ] {
        let slots = slots_on(PHX, day);
        assert_eq!(local_times(&slots), CLINIC_DAY);
        let nine_mst = day
            .at(16, 0, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp();
        assert_eq!(utc_of_first(&slots), nine_mst, "{day}");
    }
}

/// A night session across 02:00 (telehealth, so opening hours do not apply).
fn night(tz: &str, minutes: u32, day: Date) -> Vec<Slot> {
    let mut input = clinic(tz);
    input.appointment_type = telehealth_type(minutes);
    input.templates = vec![template("dr-a", "loc", vec![block(7, "00:00", "04:00")])];
    free_slots(&on_day(input, day)).unwrap()
}

fn assert_sound(slots: &[Slot], minutes: i64) {
    for s in slots {
        assert_eq!(
            s.end.duration_since(s.start),
            SignedDuration::from_mins(minutes)
        );
    }
    for w in slots.windows(2) {
        assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
    }
}

#[test]
fn spring_forward_gap_is_skipped() {
    for tz in [NY, LA] {
        let slots = night(tz, 30, date(2026, 3, 8));
        assert_eq!(
            local_times(&slots),
            ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30"],
            "{tz}"
        );
        // The 01:30 visit lasts 30 real minutes and ends when clocks read 03:00.
        assert_eq!(slots[3].local_end.time(), t("03:00"));
        assert_sound(&slots, 30);
        let hourly = night(tz, 60, date(2026, 3, 8));
        assert_eq!(local_times(&hourly), ["00:00", "01:00", "03:00"], "{tz}");
        assert_sound(&hourly, 60);
    }
}

#[test]
fn fall_back_repeated_hour_is_offered_once() {
    for tz in [NY, LA] {
        let slots = night(tz, 30, date(2026, 11, 1));
        assert_eq!(
            local_times(&slots),
            [
                "00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30"
            ],
            "{tz}"
        );
        assert_sound(&slots, 30);
        // 01:00 is the first (daylight-time) occurrence.
        let zone = TimeZone::get(tz).unwrap();
        assert_eq!(
            zone.to_offset(slots[2].start),
            zone.to_offset(slots[0].start)
        );
        assert_ne!(
            zone.to_offset(slots[4].start),
            zone.to_offset(slots[0].start)
        );
    }
    let phx = night(PHX, 30, date(2026, 11, 1));
    assert_eq!(phx.len(), 8);
}

// ------------------------------------------------------------ notice and window

#[test]
fn minimum_notice_and_maximum_days_ahead() {
    let mut input = clinic(NY);
    input.appointment_type.min_notice_minutes = 120;
    input.appointment_type.max_days_ahead = 2;
    input.now = at(NY, date(2026, 3, 9), 10, 5);
    input.from = input.now;
    input.until = at(NY, date(2026, 3, 20), 0, 0);
    let slots = free_slots(&input).unwrap();
    assert_eq!(slots[0].local_start, date(2026, 3, 9).at(13, 0, 0, 0));
    let last_day = slots.last().unwrap().local_start.date();
    assert_eq!(last_day, date(2026, 3, 11), "today + 2 days");
}

#[test]
fn inactive_or_invalid_type_offers_nothing() {
    let mut input = on_day(clinic(NY), date(2026, 3, 9));
    input.appointment_type.active = false;
    assert!(free_slots(&input).unwrap().is_empty());
    input.appointment_type.active = true;
    input.appointment_type.duration_minutes = 0;
    assert!(free_slots(&input).unwrap().is_empty());
}

#[test]
fn effective_dates_choose_the_template() {
    let mut input = clinic(NY);
    input.templates[0].effective_until = Some(date(2026, 3, 9));
    let mut later = template("dr-a", "loc", vec![block(2, "14:00", "15:00")]);
    later.id = "later".into();
    later.effective_from = date(2026, 3, 10);
    input.templates.push(later);
    assert_eq!(
        free_slots(&on_day(input.clone(), date(2026, 3, 9)))
            .unwrap()
            .len(),
        14
    );
    let tuesday = free_slots(&on_day(input.clone(), date(2026, 3, 10))).unwrap();
    assert_eq!(local_times(&tuesday), ["14:00", "14:30"]);
    assert!(
        free_slots(&on_day(input, date(2026, 3, 11)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn types_offered_by_named_providers_and_directory_reuse() {
    let mut input = on_day(clinic(NY), date(2026, 3, 9));
    input.appointment_type.specialties = vec![];
    input.appointment_type.practitioner_ids = vec!["dr-a".into()];
    assert_eq!(free_slots(&input).unwrap().len(), 14);

    let location = crate::directory::Location {
        name: "Main".into(),
        timezone: PHX.into(),
        address: Default::default(),
        phone: None,
        active: true,
    };
    let hours = LocationHours::for_location("loc", &location, vec![]);
    assert_eq!(hours.timezone, PHX);
    let room = crate::directory::Room {
        location_id: "loc".into(),
        name: "Sono 1".into(),
        kind: crate::directory::RoomKind::Ultrasound,
    };
    let r = Resource::from_room("r1", &room).validate().unwrap();
    assert_eq!(r.kind, ResourceKind::UltrasoundRoom);
}

// ------------------------------------------------------------ exceptions

#[test]
fn holiday_removes_the_day_at_its_locations() {
    let mut input = clinic(NY);
    input.exceptions = vec![ScheduleException::holiday(
        "h",
        "Founders' day",
        date(2026, 3, 10),
        None,
    )];
    assert!(
        free_slots(&on_day(input.clone(), date(2026, 3, 10)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        free_slots(&on_day(input.clone(), date(2026, 3, 11)))
            .unwrap()
            .len(),
        14
    );
    // A holiday at another location does not close this one.
    input.exceptions = vec![ScheduleException::holiday(
        "h",
        "Local fair",
        date(2026, 3, 10),
        Some("elsewhere".into()),
    )];
    assert_eq!(
        free_slots(&on_day(input, date(2026, 3, 10))).unwrap().len(),
        14
    );
}

#[test]
fn extra_session_adds_a_day_even_when_the_location_is_closed() {
    let mut input = clinic(NY);
    input.locations = vec![hours("loc", NY, &WEEKDAYS)];
    input.templates = vec![template("dr-a", "loc", clinic_blocks(&WEEKDAYS))];
    let saturday = date(2026, 3, 14);
    assert!(
        free_slots(&on_day(input.clone(), saturday))
            .unwrap()
            .is_empty()
    );
    input.exceptions = vec![ScheduleException {
        id: "x".into(),
        start: saturday.at(10, 0, 0, 0),
        end: saturday.at(12, 0, 0, 0),
        kind: ExceptionKind::ExtraSession {
            practitioner_id: "dr-a".into(),
            location_id: "loc".into(),
            appointment_type_ids: vec![],
            overbook_limit: 0,
        },
    }];
    let slots = free_slots(&on_day(input, saturday)).unwrap();
    assert_eq!(local_times(&slots), ["10:00", "10:30", "11:00", "11:30"]);
}

#[test]
fn blocked_time_and_time_off_remove_slots() {
    let day = date(2026, 3, 9);
    let mut input = clinic(NY);
    input.exceptions = vec![ScheduleException {
        id: "b".into(),
        start: day.at(10, 0, 0, 0),
        end: day.at(11, 0, 0, 0),
        kind: ExceptionKind::Blocked {
            reason: "Staff meeting".into(),
            practitioner_id: Some("dr-a".into()),
            resource_id: None,
        },
    }];
    let slots = free_slots(&on_day(input.clone(), day)).unwrap();
    assert!(!local_times(&slots).contains(&"10:00".to_string()));
    assert!(!local_times(&slots).contains(&"10:30".to_string()));
    assert_eq!(slots.len(), 12);

    input.exceptions = vec![ScheduleException {
        id: "v".into(),
        start: day.at(0, 0, 0, 0),
        end: date(2026, 3, 11).at(0, 0, 0, 0),
        kind: ExceptionKind::TimeOff {
            practitioner_id: "dr-a".into(),
        },
    }];
    assert!(free_slots(&on_day(input.clone(), day)).unwrap().is_empty());
    assert!(
        free_slots(&on_day(input.clone(), date(2026, 3, 10)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        free_slots(&on_day(input, date(2026, 3, 11))).unwrap().len(),
        14
    );
}

#[test]
fn block_type_restriction_applies() {
    let mut input = clinic(NY);
    // Block 0 is Monday morning; it now takes procedures only.
    input.templates[0].blocks[0].appointment_type_ids = vec!["procedure".into()];
    let monday = free_slots(&on_day(input.clone(), date(2026, 3, 9))).unwrap();
    assert_eq!(local_times(&monday), CLINIC_DAY[6..]);
    let tuesday = free_slots(&on_day(input, date(2026, 3, 10))).unwrap();
    assert_eq!(tuesday.len(), 14);
}

// ------------------------------------------------------------ bookings and capacity

#[test]
fn bookings_remove_slots_unless_overbooking_allows() {
    let day = date(2026, 3, 9);
    let nine = at(NY, day, 9, 0);
    let mut input = on_day(clinic(NY), day);
    input.resources.push(room("room-2", "loc"));
    input.resources.push(room("room-3", "loc"));
    input.bookings = vec![booking("b1", "dr-a", &["room-1"], nine, 30)];
    let slots = free_slots(&input).unwrap();
    assert_eq!(slots[0].local_start.time(), t("09:30"));

    input.templates[0].overbook_limit = 1;
    let slots = free_slots(&input).unwrap();
    assert_eq!(slots[0].start, nine);
    assert!(slots[0].is_overbook());
    assert_eq!((slots[0].booked, slots[0].capacity), (1, 2));
    assert_eq!(
        slots[0].resource_id.as_deref(),
        Some("room-2"),
        "room-1 is taken"
    );

    input
        .bookings
        .push(booking("b2", "dr-a", &["room-2"], nine, 30));
    assert_eq!(
        free_slots(&input).unwrap()[0].local_start.time(),
        t("09:30")
    );

    // Block-level policy wins over the template's.
    input.templates[0].blocks[0].overbook_limit = Some(2);
    assert_eq!(free_slots(&input).unwrap()[0].start, nine);
}

#[test]
fn off_grid_booking_blocks_every_slot_it_touches() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input.bookings = vec![booking("b", "dr-a", &[], at(NY, day, 9, 15), 30)];
    let times = local_times(&free_slots(&input).unwrap());
    assert_eq!(times[0], "10:00");
}

#[test]
fn bookings_elsewhere_still_hold_the_provider() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input.appointment_type = telehealth_type(30);
    input.bookings = vec![booking("b", "dr-a", &[], at(NY, day, 9, 0), 60)];
    assert_eq!(local_times(&free_slots(&input).unwrap())[0], "10:00");
}

#[test]
fn the_needed_resource_must_be_free() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input.providers.push(provider("dr-b", FM));
    // Another provider's visit holds the only exam room at 09:00.
    input.bookings = vec![booking("b", "dr-b", &["room-1"], at(NY, day, 9, 0), 30)];
    let slots = free_slots(&input).unwrap();
    assert_eq!(slots[0].local_start.time(), t("09:30"));

    input.resources.push(room("room-2", "loc"));
    let slots = free_slots(&input).unwrap();
    assert_eq!(slots[0].resource_id.as_deref(), Some("room-2"));

    // A room of another kind or location does not help.
    input.resources[1].kind = ResourceKind::ProcedureRoom;
    assert_eq!(
        free_slots(&input).unwrap()[0].local_start.time(),
        t("09:30")
    );
    input.resources[1].kind = ResourceKind::ExamRoom;
    input.resources[1].location_id = "other".into();
    assert_eq!(
        free_slots(&input).unwrap()[0].local_start.time(),
        t("09:30")
    );

    // Maintenance on the room removes it.
    input.bookings.clear();
    input.exceptions = vec![ScheduleException {
        id: "m".into(),
        start: day.at(0, 0, 0, 0),
        end: day.at(12, 0, 0, 0),
        kind: ExceptionKind::Blocked {
            reason: "Repainting".into(),
            practitioner_id: None,
            resource_id: Some("room-1".into()),
        },
    }];
    assert_eq!(
        free_slots(&input).unwrap()[0].local_start.time(),
        t("13:00")
    );
    // A telehealth type needs no room.
    input.appointment_type = telehealth_type(30);
    assert_eq!(
        free_slots(&input).unwrap()[0].local_start.time(),
        t("09:00")
    );
}

#[test]
fn in_person_slots_respect_opening_hours_but_telehealth_does_not() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input.locations[0].opening_hours = vec![OpeningHours {
        weekday: 1,
        open: t("10:00"),
        close: t("16:00"),
    }];
    let times = local_times(&free_slots(&input).unwrap());
    assert_eq!(times.first().unwrap(), "10:00");
    assert_eq!(times.last().unwrap(), "15:30");
    input.appointment_type = telehealth_type(30);
    assert_eq!(free_slots(&input).unwrap().len(), 14);
}

#[test]
fn live_holds_take_slots_and_expired_holds_do_not() {
    let day = date(2026, 3, 9);
    let mut input = on_day(clinic(NY), day);
    input.now = at(NY, day, 8, 0);
    let first = free_slots(&input).unwrap().remove(0);
    let placement = evaluate_booking(
        &input,
        &BookingRequest {
            practitioner_id: "dr-a".into(),
            location_id: "loc".into(),
            start: first.start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        },
    )
    .unwrap()
    .placement;
    let hold = Hold::new("h1", "pat", placement, input.now, None);
    assert_eq!(hold.expires_at, input.now + DEFAULT_HOLD_TTL);
    assert!(hold.is_live(input.now + SignedDuration::from_mins(4)));
    assert!(!hold.is_live(input.now + SignedDuration::from_mins(5)));
    assert_eq!(hold.claims().len(), 12);
    input.holds = vec![hold];
    assert_eq!(local_times(&free_slots(&input).unwrap())[0], "09:30");
    input.now += SignedDuration::from_mins(5);
    assert_eq!(local_times(&free_slots(&input).unwrap())[0], "09:00");
    let short = Hold::new(
        "h2",
        "pat",
        input.holds[0].slot.clone(),
        input.now,
        Some(SignedDuration::from_secs(90)),
    );
    assert_eq!(
        short.expires_at.duration_since(short.created_at),
        SignedDuration::from_secs(90)
    );
}

// ------------------------------------------------------------ searches

/// Two family-medicine providers at two locations and a dermatologist.
fn practice() -> SlotInput {
    let mut input = clinic(NY);
    input.locations = vec![hours("loc", NY, &WEEKDAYS), hours("loc2", NY, &WEEKDAYS)];
    input.providers = vec![
        provider("dr-a", FM),
        provider("dr-b", FM),
        provider("dr-c", DERM),
    ];
    input.templates = vec![
        template("dr-a", "loc", clinic_blocks(&WEEKDAYS)),
        template("dr-b", "loc2", clinic_blocks(&WEEKDAYS)),
        template("dr-c", "loc", clinic_blocks(&WEEKDAYS)),
    ];
    input.resources = vec![
        room("room-1", "loc"),
        room("room-9", "loc"),
        room("room-2", "loc2"),
    ];
    input.now = at(NY, date(2026, 3, 9), 8, 0);
    input.from = input.now;
    input.until = input.now + SignedDuration::from_hours(24 * 14);
    input
}

fn who(slots: &[Slot]) -> Vec<(String, String)> {
    slots
        .iter()
        .map(|s| {
            (
                s.practitioner_id.clone(),
                s.local_start.strftime("%a %H:%M").to_string(),
            )
        })
        .collect()
}

#[test]
fn next_available_across_providers() {
    let input = practice();
    let search = SlotSearch {
        limit: 3,
        ..SlotSearch::default()
    };
    let slots = next_available(&input, &search).unwrap();
    assert_eq!(
        who(&slots),
        [
            ("dr-a".into(), "Mon 09:00".into()),
            ("dr-b".into(), "Mon 09:00".into()),
            ("dr-a".into(), "Mon 09:30".into())
        ],
        "the dermatologist does not offer the visit"
    );
}

#[test]
fn next_available_with_preferences() {
    let input = practice();
    let search = SlotSearch {
        specialty: Some(FM.into()),
        preferences: Preferences {
            weekdays: vec![2, 4],
            part_of_day: Some(PartOfDay::Afternoon),
            location_ids: vec!["loc2".into()],
            practitioner_ids: vec![],
        },
        include_overbook: false,
        limit: 2,
    };
    let slots = next_available(&input, &search).unwrap();
    assert_eq!(
        who(&slots),
        [
            ("dr-b".into(), "Tue 13:00".into()),
            ("dr-b".into(), "Tue 13:30".into())
        ]
    );

    let search = SlotSearch {
        preferences: Preferences {
            practitioner_ids: vec!["dr-a".into()],
            part_of_day: Some(PartOfDay::Morning),
            ..Preferences::default()
        },
        limit: 20,
        ..SlotSearch::default()
    };
    let slots = next_available(&input, &search).unwrap();
    assert_eq!(slots.len(), 20);
    assert!(
        slots
            .iter()
            .all(|s| s.practitioner_id == "dr-a" && s.local_start.hour() < 12)
    );

    let derm = SlotSearch {
        specialty: Some(DERM.into()),
        ..SlotSearch::default()
    };
    assert!(next_available(&input, &derm).unwrap().is_empty());
}

#[test]
fn next_available_leaves_out_overbooks_unless_asked() {
    let mut input = practice();
    input.templates[0].overbook_limit = 1;
    input.bookings = vec![booking(
        "b",
        "dr-a",
        &["room-1"],
        at(NY, date(2026, 3, 9), 9, 0),
        30,
    )];
    let mut search = SlotSearch {
        preferences: Preferences {
            practitioner_ids: vec!["dr-a".into()],
            ..Preferences::default()
        },
        limit: 1,
        ..SlotSearch::default()
    };
    assert_eq!(
        who(&next_available(&input, &search).unwrap())[0].1,
        "Mon 09:30"
    );
    search.include_overbook = true;
    let slots = next_available(&input, &search).unwrap();
    assert_eq!(who(&slots)[0].1, "Mon 09:00");
    assert!(slots[0].is_overbook());
}

#[test]
fn third_next_available_per_provider() {
    let mut input = practice();
    let monday = date(2026, 3, 9);
    input.bookings = vec![booking("b", "dr-a", &[], at(NY, monday, 9, 0), 180)];
    input.exceptions = vec![ScheduleException {
        id: "v".into(),
        start: monday.at(0, 0, 0, 0),
        end: date(2026, 3, 11).at(0, 0, 0, 0),
        kind: ExceptionKind::TimeOff {
            practitioner_id: "dr-b".into(),
        },
    }];
    let tna = third_next_available(&input).unwrap();
    assert_eq!(tna.len(), 2, "only providers offering the type");
    assert_eq!(tna[0].practitioner_id, "dr-a");
    assert_eq!(
        tna[0].slot.as_ref().unwrap().local_start,
        monday.at(14, 0, 0, 0)
    );
    assert_eq!(tna[0].days_out, Some(0));
    assert_eq!(tna[1].practitioner_id, "dr-b");
    assert_eq!(
        tna[1].slot.as_ref().unwrap().local_start,
        date(2026, 3, 11).at(10, 0, 0, 0)
    );
    assert_eq!(tna[1].days_out, Some(2));

    input.until = input.now + SignedDuration::from_hours(1);
    let none = third_next_available(&input).unwrap();
    assert!(
        none.iter()
            .all(|t| t.slot.is_none() && t.days_out.is_none())
    );
}

// ------------------------------------------------------------ booking checks and overrides

fn request(start: Timestamp) -> BookingRequest {
    BookingRequest {
        practitioner_id: "dr-a".into(),
        location_id: "loc".into(),
        start,
        resource_id: None,
        patient_established: None,
        ignore: vec![],
    }
}

fn booking_clinic() -> SlotInput {
    let mut input = clinic(NY);
    input.now = ts("2026-03-01T12:00:00Z");
    input
}

fn lead(reason: &str) -> Override {
    Override {
        role: Role::Lead,
        reason: reason.into(),
    }
}

use crate::Role;

#[test]
fn a_slot_in_the_template_fits_and_books() {
    let input = booking_clinic();
    let start = at(NY, date(2026, 3, 9), 9, 0);
    let ev = evaluate_booking(&input, &request(start)).unwrap();
    assert!(ev.fits(), "{:?}", ev.issues);
    assert_eq!(ev.placement.resource_ids, ["room-1"]);
    assert_eq!(ev.placement.local_start, date(2026, 3, 9).at(9, 0, 0, 0));
    let accepted = ev.accept(None).unwrap();
    assert_eq!(accepted.max_seat, 0);
    assert_eq!(accepted.override_reason, None);
    assert_eq!(accepted.claims().len(), 12);
    let appt = Appointment::book("a1", "pat", accepted, input.now);
    assert_eq!(appt.status, AppointmentStatus::Booked);
    assert_eq!(
        appt.end.duration_since(appt.start),
        SignedDuration::from_mins(30)
    );
}

#[test]
fn off_hours_needs_a_leads_override_with_a_reason() {
    let input = booking_clinic();
    let seven = at(NY, date(2026, 3, 9), 7, 30);
    let ev = evaluate_booking(&input, &request(seven)).unwrap();
    assert_eq!(ev.issues, [FitIssue::OutsideTemplate]);
    let err = ev.clone().accept(None).unwrap_err();
    assert!(
        err.to_string().contains("outside the provider's template"),
        "{err}"
    );
    let front_desk = Override {
        role: Role::FrontDesk,
        reason: "asked nicely".into(),
    };
    assert_eq!(
        ev.clone().accept(Some(&front_desk)),
        Err(Refusal::OverrideNotPermitted(Role::FrontDesk))
    );
    assert_eq!(
        ev.clone().accept(Some(&lead("  "))),
        Err(Refusal::OverrideReasonRequired)
    );
    let ok = ev
        .accept(Some(&lead("Post-op check before surgery day")))
        .unwrap();
    assert_eq!(
        ok.override_reason.as_deref(),
        Some("Post-op check before surgery day")
    );
    assert_eq!(ok.overridden, [FitIssue::OutsideTemplate]);
    assert_eq!(
        ok.max_seat, 0,
        "off-hours is not overbooking: still one seat"
    );

    // Before opening hours too: the location is closed.
    let six = at(NY, date(2026, 3, 9), 6, 0);
    let ev = evaluate_booking(&input, &request(six)).unwrap();
    assert!(ev.issues.contains(&FitIssue::LocationClosed));
}

#[test]
fn past_the_overbooking_limit_needs_an_override_and_gets_override_seats() {
    let mut input = booking_clinic();
    input.resources.push(room("room-2", "loc"));
    let nine = at(NY, date(2026, 3, 9), 9, 0);
    input.bookings = vec![booking("b1", "dr-a", &["room-1"], nine, 30)];
    let ev = evaluate_booking(&input, &request(nine)).unwrap();
    assert_eq!(
        ev.issues,
        [FitIssue::OverCapacity {
            booked: 1,
            limit: 0
        }]
    );
    let accepted = ev.accept(Some(&lead("Urgent: chest pain"))).unwrap();
    assert_eq!(accepted.max_seat, OVERRIDE_MAX_SEAT);
    assert_eq!(accepted.placement.resource_ids, ["room-2"]);

    input.templates[0].overbook_limit = 1;
    let ev = evaluate_booking(&input, &request(nine)).unwrap();
    assert!(ev.fits());
    let accepted = ev.accept(None).unwrap();
    assert_eq!(accepted.max_seat, 1);
    assert_eq!(accepted.claims()[0].max_seat, 1);
}

#[test]
fn hard_refusals_cannot_be_overridden() {
    let mut input = booking_clinic();
    let nine = at(NY, date(2026, 3, 9), 9, 0);

    let mut r = request(nine + SignedDuration::from_mins(2));
    assert_eq!(evaluate_booking(&input, &r), Err(Refusal::OffGrid));
    r = request(ts("2026-02-27T14:00:00Z"));
    assert_eq!(evaluate_booking(&input, &r), Err(Refusal::AlreadyOver));
    r = request(
        Timestamp::MAX
            .checked_sub(SignedDuration::from_mins(9))
            .unwrap(),
    );
    let max_on_grid = Timestamp::from_second(r.start.as_second() / 300 * 300).unwrap();
    r.start = max_on_grid;
    assert_eq!(evaluate_booking(&input, &r), Err(Refusal::OutOfRange));
    r = request(nine);
    r.practitioner_id = "nobody".into();
    assert!(matches!(
        evaluate_booking(&input, &r),
        Err(Refusal::UnknownPractitioner(_))
    ));
    r = request(nine);
    r.location_id = "nowhere".into();
    assert!(matches!(
        evaluate_booking(&input, &r),
        Err(Refusal::Schedule(ScheduleError::UnknownLocation(_)))
    ));

    input.appointment_type.eligibility = PatientEligibility::New;
    r = request(nine);
    r.patient_established = Some(true);
    assert_eq!(
        evaluate_booking(&input, &r),
        Err(Refusal::WrongPatientKind("new"))
    );

    input.appointment_type = visit_type();
    input.appointment_type.specialties = vec![DERM.into()];
    assert_eq!(
        evaluate_booking(&input, &request(nine)),
        Err(Refusal::NotOffered)
    );

    input.appointment_type = visit_type();
    input.bookings = vec![booking("other", "dr-z", &["room-1"], nine, 30)];
    assert_eq!(
        evaluate_booking(&input, &request(nine)),
        Err(Refusal::NoResourceFree(ResourceKind::ExamRoom))
    );
    r = request(nine);
    r.resource_id = Some("room-1".into());
    assert!(matches!(
        evaluate_booking(&input, &r),
        Err(Refusal::ResourceUnavailable {
            why: "it is taken then",
            ..
        })
    ));
}

#[test]
fn calendar_rules_become_issues() {
    let mut input = booking_clinic();
    input.appointment_type.min_notice_minutes = 48 * 60;
    input.appointment_type.max_days_ahead = 30;
    let day = date(2026, 3, 2);
    input.exceptions = vec![
        ScheduleException::holiday("h", "Clinic retreat", day, None),
        ScheduleException {
            id: "b".into(),
            start: day.at(9, 0, 0, 0),
            end: day.at(10, 0, 0, 0),
            kind: ExceptionKind::Blocked {
                reason: "Huddle".into(),
                practitioner_id: Some("dr-a".into()),
                resource_id: None,
            },
        },
    ];
    let ev = evaluate_booking(&input, &request(at(NY, day, 9, 0))).unwrap();
    assert!(ev.issues.contains(&FitIssue::Holiday {
        name: "Clinic retreat".into()
    }));
    assert!(ev.issues.contains(&FitIssue::Blocked {
        reason: "Huddle".into()
    }));
    assert!(ev.issues.contains(&FitIssue::TooSoon {
        min_notice_minutes: 2880
    }));

    let far = evaluate_booking(&input, &request(at(NY, date(2026, 4, 6), 9, 0))).unwrap();
    assert_eq!(far.issues, [FitIssue::TooFarAhead { max_days_ahead: 30 }]);

    input.templates[0].blocks = vec![AvailabilityBlock {
        appointment_type_ids: vec!["procedure".into()],
        ..block(1, "09:00", "12:00")
    }];
    let ev = evaluate_booking(&input, &request(at(NY, date(2026, 3, 9), 9, 0))).unwrap();
    assert_eq!(ev.issues, [FitIssue::TypeNotInBlock]);
}

#[test]
fn reschedule_moves_without_colliding_with_itself() {
    let input = booking_clinic();
    let nine = at(NY, date(2026, 3, 9), 9, 0);
    let accepted = evaluate_booking(&input, &request(nine))
        .unwrap()
        .accept(None)
        .unwrap();
    let mut old = Appointment::book("a1", "pat", accepted, input.now);
    let mut after = input.clone();
    after.bookings = vec![old.booking().unwrap()];

    let quarter_past = nine + SignedDuration::from_mins(15);
    let clash = evaluate_booking(&after, &request(quarter_past)).unwrap_err();
    assert_eq!(clash, Refusal::NoResourceFree(ResourceKind::ExamRoom));
    let mut moving = request(quarter_past);
    moving.ignore = vec![old.id.clone()];
    let accepted = evaluate_booking(&after, &moving)
        .unwrap()
        .accept(None)
        .unwrap();
    let new = old.reschedule("a2", accepted, input.now).unwrap();
    assert_eq!(old.status, AppointmentStatus::Cancelled);
    assert_eq!(old.cancel_reason, Some(CancelReason::Rescheduled));
    assert_eq!(new.rescheduled_from.as_deref(), Some("a1"));
    assert_eq!(new.start, quarter_past);
    assert!(
        old.reschedule(
            "a3",
            evaluate_booking(&after, &moving)
                .unwrap()
                .accept(None)
                .unwrap(),
            input.now
        )
        .is_err()
    );
}

// ------------------------------------------------------------ series

fn series_clinic() -> SlotInput {
    let mut input = clinic(NY);
    input.locations = vec![hours("loc", NY, &WEEKDAYS)];
    input.templates = vec![template("dr-a", "loc", clinic_blocks(&WEEKDAYS))];
    input.now = ts("2026-02-01T12:00:00Z");
    input
}

fn series(first: jiff::civil::DateTime, every_weeks: u8, count: u16) -> SeriesRequest {
    SeriesRequest {
        practitioner_id: "dr-a".into(),
        location_id: "loc".into(),
        rule: SeriesRule {
            first_local_start: first,
            every_weeks,
            count,
        }
        .validate()
        .unwrap(),
        resource_id: None,
        patient_established: None,
        window_days: 0,
        max_alternatives: 0,
    }
}

#[test]
fn weekly_series_keeps_local_time_across_dst() {
    let input = series_clinic();
    let plan = plan_series(&input, &series(date(2026, 2, 23).at(9, 0, 0, 0), 1, 8)).unwrap();
    assert_eq!(plan.len(), 8);
    assert!(plan.iter().all(PlannedOccurrence::fits));
    assert!(plan.iter().all(|o| o.local_start.time() == t("09:00")));
    assert_eq!(plan[1].start, Some(ts("2026-03-02T14:00:00Z")));
    assert_eq!(plan[2].start, Some(ts("2026-03-09T13:00:00Z")));
    assert_eq!(plan[7].local_start.date(), date(2026, 4, 13));

    let fortnightly = plan_series(&input, &series(date(2026, 2, 23).at(9, 0, 0, 0), 2, 3)).unwrap();
    let dates: Vec<Date> = fortnightly.iter().map(|o| o.local_start.date()).collect();
    assert_eq!(
        dates,
        [date(2026, 2, 23), date(2026, 3, 9), date(2026, 3, 23)]
    );
}

#[test]
fn series_conflicts_come_with_alternatives() {
    let mut input = series_clinic();
    input.exceptions = vec![ScheduleException::holiday(
        "h",
        "Spring holiday",
        date(2026, 3, 16),
        None,
    )];
    // A telehealth visit already holds the provider (not the room) then.
    input.bookings = vec![booking(
        "taken",
        "dr-a",
        &[],
        at(NY, date(2026, 3, 30), 9, 0),
        30,
    )];
    let plan = plan_series(&input, &series(date(2026, 2, 23).at(9, 0, 0, 0), 1, 8)).unwrap();
    let conflicts: Vec<usize> = (0..8).filter(|&i| !plan[i].fits()).collect();
    assert_eq!(conflicts, [3, 5]);

    let OccurrenceOutcome::Conflict {
        conflict,
        alternatives,
    } = &plan[3].outcome
    else {
        unreachable!()
    };
    let SeriesConflict::NeedsOverride(ev) = conflict else {
        panic!("{conflict:?}")
    };
    assert_eq!(
        ev.issues,
        [FitIssue::Holiday {
            name: "Spring holiday".into()
        }]
    );
    let alt: Vec<String> = alternatives
        .iter()
        .map(|s| s.local_start.to_string())
        .collect();
    assert_eq!(
        alt,
        [
            "2026-03-17T09:00:00",
            "2026-03-17T09:30:00",
            "2026-03-17T10:00:00"
        ]
    );

    let OccurrenceOutcome::Conflict {
        conflict,
        alternatives,
    } = &plan[5].outcome
    else {
        unreachable!()
    };
    assert!(matches!(
        conflict,
        SeriesConflict::NeedsOverride(ev) if ev.issues == [FitIssue::OverCapacity { booked: 1, limit: 0 }]
    ));
    let alt: Vec<String> = alternatives
        .iter()
        .map(|s| s.local_start.to_string())
        .collect();
    assert_eq!(
        alt,
        [
            "2026-03-30T09:30:00",
            "2026-03-30T10:00:00",
            "2026-03-30T10:30:00"
        ]
    );
    for a in alternatives {
        assert_eq!(a.practitioner_id, "dr-a");
        assert_eq!(a.appointment_type_id, "visit");
    }
}

#[test]
fn series_occurrence_in_the_gap_is_a_conflict_with_the_next_opening() {
    let mut input = series_clinic();
    input.appointment_type = telehealth_type(30);
    input.templates = vec![template("dr-a", "loc", vec![block(7, "00:00", "04:00")])];
    let plan = plan_series(&input, &series(date(2026, 3, 1).at(2, 30, 0, 0), 1, 3)).unwrap();
    assert!(plan[0].fits() && plan[2].fits());
    let OccurrenceOutcome::Conflict {
        conflict,
        alternatives,
    } = &plan[1].outcome
    else {
        panic!("{:?}", plan[1])
    };
    assert_eq!(*conflict, SeriesConflict::TimeDoesNotExist);
    assert_eq!(alternatives[0].local_start, date(2026, 3, 8).at(3, 0, 0, 0));
}

#[test]
fn series_rule_validation() {
    let bad = SeriesRule {
        first_local_start: date(2026, 3, 2).at(9, 3, 0, 0),
        every_weeks: 0,
        count: 60,
    };
    let err = bad.validate().unwrap_err();
    for f in ["first_local_start", "every_weeks", "count"] {
        assert!(err.for_field(f).is_some(), "{f}");
    }
}

// ------------------------------------------------------------ waitlist

#[test]
fn waitlist_ranks_by_fit_then_wait_plus_gain() {
    let now = ts("2026-03-09T12:00:00Z");
    let slot_start = at(NY, date(2026, 3, 10), 13, 0);
    let slot = Slot {
        practitioner_id: "dr-a".into(),
        location_id: "loc".into(),
        appointment_type_id: "visit".into(),
        start: slot_start,
        end: slot_start + SignedDuration::from_mins(30),
        local_start: date(2026, 3, 10).at(13, 0, 0, 0),
        local_end: date(2026, 3, 10).at(13, 30, 0, 0),
        resource_id: Some("room-1".into()),
        booked: 0,
        capacity: 1,
    };
    let days = |n: i64| SignedDuration::from_hours(24 * n);
    let entry =
        |id: &str, prefs: Preferences, waited: i64, current: Option<Timestamp>| WaitlistEntry {
            id: id.into(),
            patient_id: format!("p-{id}"),
            appointment_type_id: "visit".into(),
            preferences: prefs,
            added_at: now - days(waited),
            current_appointment_start: current,
        };
    let tuesday_afternoon = Preferences {
        weekdays: vec![2],
        part_of_day: Some(PartOfDay::Afternoon),
        ..Preferences::default()
    };
    let monday_morning = Preferences {
        weekdays: vec![1],
        part_of_day: Some(PartOfDay::Morning),
        ..Preferences::default()
    };
    let here_mornings = Preferences {
        location_ids: vec!["loc".into()],
        part_of_day: Some(PartOfDay::Morning),
        ..Preferences::default()
    };
    let mut other_type = entry("E", Preferences::default(), 50, None);
    other_type.appointment_type_id = "physical".into();
    let entries = vec![
        entry("A", tuesday_afternoon, 10, None),
        entry("B", Preferences::default(), 2, Some(slot_start + days(20))),
        entry("C", monday_morning, 30, None),
        entry("D", Preferences::default(), 40, Some(slot_start - days(1))),
        other_type,
        entry("F", here_mornings, 100, None),
    ];
    let ranked = rank_waitlist(&entries, &slot, now);
    let order: Vec<&str> = ranked.iter().map(|r| r.entry_id.as_str()).collect();
    assert_eq!(order, ["B", "A", "F", "C"]);
    assert_eq!(ranked[0].gained, days(20));
    assert_eq!(ranked[1].waited, days(10));
    assert_eq!(ranked[2].fit_percent, 50);
    assert_eq!(ranked[3].fit_percent, 0);
}

#[test]
fn waitlist_entry_validation_names_preference_fields() {
    let e = WaitlistEntry {
        id: "w".into(),
        patient_id: "".into(),
        appointment_type_id: "visit".into(),
        preferences: Preferences {
            weekdays: vec![0],
            ..Preferences::default()
        },
        added_at: ts("2026-03-01T00:00:00Z"),
        current_appointment_start: None,
    };
    let err = e.validate().unwrap_err();
    assert!(err.for_field("patient_id").is_some());
    assert!(err.for_field("preferences.weekdays[0]").is_some());
}

// ------------------------------------------------------------ adapters' view

#[test]
fn slot_input_round_trips_through_serde() {
    let mut input = practice();
    input.bookings = vec![booking("b", "dr-a", &["room-1"], input.now, 30)];
    let json = serde_json::to_string(&input).unwrap();
    let back: SlotInput = serde_json::from_str(&json).unwrap();
    assert_eq!(back, input);
    let slots = free_slots(&input).unwrap();
    let json = serde_json::to_string(&slots[0]).unwrap();
    assert_eq!(serde_json::from_str::<Slot>(&json).unwrap(), slots[0]);
}

#[test]
fn unknown_zone_or_location_is_an_error() {
    let mut input = clinic(NY);
    input.locations[0].timezone = "Mars/Base".into();
    assert!(matches!(
        free_slots(&input),
        Err(ScheduleError::UnknownTimeZone { .. })
    ));
    let mut input = clinic(NY);
    input.templates[0].location_id = "ghost".into();
    assert_eq!(
        free_slots(&input),
        Err(ScheduleError::UnknownLocation("ghost".into()))
    );
}

/// 200 providers × 14 days with bookings: the slot computation must stay
/// around a millisecond per provider or less (the bound is generous for
/// unoptimized builds on a busy machine).
#[test]
fn two_hundred_providers_for_two_weeks_is_fast() {
    let mut input = clinic(NY);
    input.providers = (0..200)
        .map(|i| provider(&format!("dr-{i:03}"), FM))
        .collect();
    input.templates = input
        .providers
        .iter()
        .map(|p| template(&p.practitioner_id, "loc", clinic_blocks(&WEEKDAYS)))
        .collect();
    input.resources = (0..40)
        .map(|i| room(&format!("room-{i:02}"), "loc"))
        .collect();
    input.now = at(NY, date(2026, 3, 2), 7, 0);
    input.from = input.now;
    input.until = input.now + SignedDuration::from_hours(24 * 14);
    input.bookings = input
        .providers
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            (0..10).map(move |k| {
                let day = date(2026, 3, 2 + (k % 5) as i8 + 7 * (k / 5) as i8);
                booking(
                    &format!("b-{i}-{k}"),
                    &p.practitioner_id,
                    &[],
                    at(NY, day, 9 + (k % 3) as i8, 0),
                    30,
                )
            })
        })
        .collect();
    // Best of three, so other tests sharing the CPU do not make it flaky.
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let slots = free_slots(&input).unwrap();
        best = best.min(started.elapsed());
        assert_eq!(slots.len(), 200 * 10 * 14 - 2000);
    }
    // About 0.1 s unoptimized on one core; a per-minute walk would take many seconds.
    let limit = if cfg!(debug_assertions) { 3000 } else { 200 };
    assert!(best.as_millis() < limit, "took {best:?}");
}

// ------------------------------------------------------------ properties

fn zone_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(NY),
        Just(LA),
        Just(PHX),
        Just("Europe/London"),
        Just("Australia/Lord_Howe"),
    ]
}

/// Distinct weekdays, each with one block on the 5-minute grid.
fn blocks() -> impl Strategy<Value = Vec<AvailabilityBlock>> {
    prop::collection::btree_map(1u8..=7, (0i32..280, 1i32..100), 1..6).prop_map(|m| {
        m.into_iter()
            .map(|(weekday, (start, len))| {
                let s = start * 5;
                let e = (s + len * 5).min(287 * 5);
                let hm = |m: i32| jiff::civil::time((m / 60) as i8, (m % 60) as i8, 0, 0);
                AvailabilityBlock {
                    weekday,
                    start: hm(s.min(e - 5)),
                    end: hm(e),
                    appointment_type_ids: vec![],
                    overbook_limit: None,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_slot_lies_inside_a_template_block_in_local_time(
        tz_name in zone_name(),
        blocks in blocks(),
        minutes in prop::sample::select(vec![15u32, 20, 30, 45, 60, 90]),
        first_day in 0i64..400,
        span in 1i64..10,
    ) {
        let tz = TimeZone::get(tz_name).unwrap();
        let mut input = clinic(tz_name);
        input.appointment_type = telehealth_type(minutes);
        input.templates = vec![template("dr-a", "loc", blocks.clone())];
        let day0 = date(2026, 1, 1).checked_add(jiff::ToSpan::days(first_day)).unwrap();
        input.from = tz.to_timestamp(day0.at(0, 0, 0, 0)).unwrap();
        input.until = input.from + SignedDuration::from_hours(24 * span);
        let slots = free_slots(&input).unwrap();
        for s in &slots {
            prop_assert_eq!(s.end.duration_since(s.start), SignedDuration::from_mins(i64::from(minutes)));
            prop_assert_eq!(s.local_start, tz.to_datetime(s.start));
            prop_assert!(input.from <= s.start && s.start < input.until);
            let d = s.local_start.date();
            let wd = d.weekday().to_monday_one_offset() as u8;
            let inside = blocks.iter().any(|b| {
                b.weekday == wd
                    && b.start <= s.local_start.time()
                    && boundary_instant(&tz, d.at(b.start.hour(), b.start.minute(), 0, 0)) <= s.start
                    && s.end <= boundary_instant(&tz, d.at(b.end.hour(), b.end.minute(), 0, 0))
            });
            prop_assert!(inside, "{:?} outside {:?}", s, blocks);
        }
        for w in slots.windows(2) {
            prop_assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn no_returned_slot_overlaps_bookings_beyond_capacity(
        limit in 0u8..=2,
        raw in prop::collection::vec((0i64..(3 * 288), 1i64..24), 0..40),
    ) {
        let mut input = clinic(NY);
        input.templates[0].overbook_limit = limit;
        input.resources = (0..4).map(|i| room(&format!("room-{i}"), "loc")).collect();
        let base = at(NY, date(2026, 3, 7), 0, 0);
        input.from = base;
        input.until = base + SignedDuration::from_hours(72);
        input.bookings = raw
            .iter()
            .enumerate()
            .map(|(i, &(start, len))| {
                booking(&format!("b{i}"), "dr-a", &[], base + SignedDuration::from_mins(start * 5), len * 5)
            })
            .collect();
        let slots = free_slots(&input).unwrap();
        for s in &slots {
            // Brute force, granule by granule.
            let mut worst = 0;
            let mut g = s.start;
            while g < s.end {
                let here = input.bookings.iter().filter(|b| b.start <= g && g < b.end).count() as u32;
                worst = worst.max(here);
                g += GRANULE;
            }
            prop_assert!(worst <= u32::from(limit), "{:?} has {} bookings", s, worst);
            prop_assert_eq!(worst, s.booked);
            // Every offered slot is accepted as it is by the booking check.
            let ev = evaluate_booking(&input, &BookingRequest {
                practitioner_id: s.practitioner_id.clone(),
                location_id: s.location_id.clone(),
                start: s.start,
                resource_id: None,
                patient_established: None,
                ignore: vec![],
            }).unwrap();
            prop_assert!(ev.fits(), "{:?}: {:?}", s, ev.issues);
            prop_assert_eq!(ev.placement.booked, s.booked);
        }
    }
}
