//! Synthetic scheduling data: valid, deterministic, and alive around today.

use carefront_domain::directory::{RoomKind, is_valid_npi};
use carefront_domain::scheduling::time::local;
use carefront_domain::scheduling::{
    AppointmentStatus, BookingRequest, ExceptionKind, Modality, ScheduleException, SlotInput,
    Template, established_since, evaluate_booking, free_slots, is_established,
};
use carefront_synth::schedule::{
    AppointmentParams, BENCHMARK_APPOINTMENTS, BENCHMARK_PROVIDERS, DemoSchedule,
    PlannedAppointment, ScheduleIds, appointment_types, exceptions, scaled_clinic, templates,
};
use carefront_synth::{PatientGenerator, demo_clinic};
use jiff::civil::{Date, date, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// 10:30 in New York on the Tuesday before Thanksgiving 2026.
fn now() -> Timestamp {
    "2026-11-24T15:30:00Z".parse().unwrap()
}

fn around() -> Date {
    date(2026, 11, 24)
}

fn demo(seed: u64) -> (carefront_synth::DemoClinic, DemoSchedule) {
    let clinic = demo_clinic(seed);
    let ids = ScheduleIds::placeholders(&clinic);
    let schedule = DemoSchedule::new(&clinic, ids, seed, around());
    (clinic, schedule)
}

fn zone(schedule: &DemoSchedule, location: usize) -> TimeZone {
    TimeZone::get(&schedule.location_hours[location].timezone).unwrap()
}

/// WCAG relative luminance of `#rrggbb`.
fn luminance(color: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&color[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

#[test]
fn appointment_types_are_valid_readable_and_cover_the_clinic() {
    let clinic = demo_clinic(1);
    let types = appointment_types(&clinic);
    let ids: HashSet<&str> = types.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), types.len(), "unique ids");
    for t in &types {
        let checked = t.clone().validate().unwrap();
        assert_eq!(&checked, t, "already normalized: {}", t.id);
        let contrast = 1.05 / (luminance(&t.color) + 0.05);
        assert!(
            contrast >= 4.5,
            "{} {} has contrast {contrast:.2} with white text",
            t.id,
            t.color
        );
        assert!(t.instructions.is_some(), "{}", t.id);
    }
    // Every specialty of the demo has new and established visits.
    for role in &clinic.practitioner_roles {
        let offered: Vec<_> = types
            .iter()
            .filter(|t| t.specialties.iter().any(|s| s == role.specialty))
            .collect();
        assert!(offered.len() >= 3, "{}", role.specialty);
        assert!(
            offered.iter().any(|t| t.accepts_patient(false)),
            "{}",
            role.specialty
        );
        assert!(offered.iter().any(|t| t.accepts_patient(true)));
    }
    let by_id = |id: &str| types.iter().find(|t| t.id == id).unwrap();
    assert_eq!(by_id("pc-new").duration_minutes, 40);
    assert_eq!(by_id("pc-established").duration_minutes, 20);
    assert_eq!(by_id("pc-physical").duration_minutes, 30);
    assert_eq!(by_id("pc-telehealth").modality, Modality::Telehealth);
    assert_eq!(
        by_id("derm-biopsy").resource_kind.unwrap(),
        RoomKind::Procedure.into()
    );
    assert_eq!(
        by_id("cardio-echo").resource_kind.unwrap(),
        RoomKind::Ultrasound.into()
    );
}

#[test]
fn schedule_parts_validate() {
    for seed in 0..20 {
        let (clinic, schedule) = demo(seed);
        assert_eq!(schedule.resources.len(), clinic.rooms.len());
        for r in &schedule.resources {
            r.clone().validate().unwrap();
        }
        for h in &schedule.location_hours {
            h.clone().validate().unwrap();
        }
        for t in &schedule.templates {
            t.clone()
                .validate_with_others(&schedule.templates)
                .unwrap_or_else(|e| panic!("seed {seed} {}: {e}", t.id));
            assert!(t.effective_from <= around() - 60.days());
            assert!(t.overbook_limit <= 1);
        }
        for e in &schedule.exceptions {
            e.clone()
                .validate()
                .unwrap_or_else(|err| panic!("seed {seed} {}: {err}", e.id));
        }
        let ids: HashSet<&str> = schedule.templates.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), schedule.templates.len());
        let ids: HashSet<&str> = schedule.exceptions.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), schedule.exceptions.len());
    }
}

#[test]
fn templates_look_like_a_real_clinic() {
    let mut four_day = 0;
    let mut evening = 0;
    let mut overbooking = HashSet::new();
    for seed in 0..20 {
        let (clinic, schedule) = demo(seed);
        let ids = &schedule.ids;
        for (p, pid) in ids.practitioners.iter().enumerate() {
            let mine: Vec<&Template> = schedule
                .templates
                .iter()
                .filter(|t| &t.practitioner_id == pid)
                .collect();
            assert!(
                !mine.is_empty(),
                "seed {seed}: practitioner {p} has no template"
            );
            let provider = &schedule.providers[p];
            let mut days = HashSet::new();
            for t in &mine {
                let location = ids
                    .locations
                    .iter()
                    .position(|l| l == &t.location_id)
                    .unwrap();
                assert!(
                    clinic
                        .practitioner_roles
                        .iter()
                        .any(|r| r.practitioner == p && r.location == location),
                    "templates only where the provider has a role"
                );
                for b in &t.blocks {
                    days.insert(b.weekday);
                    assert!((1..=5).contains(&b.weekday));
                    assert!(b.start >= time(7, 30, 0, 0) && b.end <= time(20, 0, 0, 0));
                    assert!(!b.appointment_type_ids.is_empty());
                    for type_id in &b.appointment_type_ids {
                        let kind = schedule
                            .appointment_types
                            .iter()
                            .find(|k| &k.id == type_id)
                            .unwrap();
                        assert!(kind.offered_by(pid, &provider.specialties), "{type_id}");
                        if let Some(rk) = kind.resource_kind {
                            assert!(
                                schedule
                                    .resources
                                    .iter()
                                    .any(|r| r.location_id == t.location_id && r.kind == rk),
                                "{type_id} needs a room the location has"
                            );
                        }
                    }
                    if b.end > time(18, 0, 0, 0) {
                        evening += 1;
                    }
                }
                // A lunch gap between every two blocks of a day.
                for a in &t.blocks {
                    for b in &t.blocks {
                        if a.weekday == b.weekday && a.end <= b.start {
                            assert!(b.start.duration_since(a.end) >= SignedDuration::from_mins(30));
                        }
                    }
                }
                if t.overbook_limit > 0 {
                    overbooking.insert((seed, p));
                }
            }
            if days.len() == 4 {
                four_day += 1;
            }
        }
        // Rooms: on no weekday do more providers need an exam (or consult)
        // room at a location than it has.
        let mut need: HashMap<(String, u8, bool), HashSet<&str>> = HashMap::new();
        for t in &schedule.templates {
            let p = ids
                .practitioners
                .iter()
                .position(|x| x == &t.practitioner_id)
                .unwrap();
            let specialty = clinic
                .practitioner_roles
                .iter()
                .find(|r| r.practitioner == p)
                .unwrap()
                .specialty;
            let consult = ["2084P0800X", "103TC0700X", "1041C0700X"].contains(&specialty);
            for b in &t.blocks {
                need.entry((t.location_id.clone(), b.weekday, consult))
                    .or_default()
                    .insert(&t.practitioner_id);
            }
        }
        for ((location, weekday, consult), who) in &need {
            let kind = if *consult {
                RoomKind::Consult
            } else {
                RoomKind::Exam
            };
            let rooms = schedule
                .resources
                .iter()
                .filter(|r| &r.location_id == location && r.kind == kind.into())
                .count();
            assert!(
                who.len() <= rooms,
                "seed {seed}: {location} weekday {weekday}: {} providers, {rooms} {kind:?} rooms",
                who.len()
            );
        }
        let overbookers = overbooking.iter().filter(|(s, _)| *s == seed).count();
        assert!((1..=2).contains(&overbookers), "seed {seed}: {overbookers}");
    }
    assert!(four_day >= 20, "{four_day} four-day weeks in 20 clinics");
    assert!(evening >= 20, "one evening session per clinic: {evening}");
}

#[test]
fn exceptions_cover_holidays_time_off_blocks_and_an_extra_saturday() {
    let clinic = demo_clinic(1);
    let ids = ScheduleIds::placeholders(&clinic);
    let list = exceptions(&clinic, &ids, 1, around());
    assert_eq!(list, demo(1).1.exceptions, "same as the bundle's");
    let holiday = |d: Date| {
        list.iter()
            .any(|e| matches!(e.kind, ExceptionKind::Holiday { .. }) && e.start == d.at(0, 0, 0, 0))
    };
    assert!(holiday(date(2026, 11, 26)), "Thanksgiving");
    assert!(holiday(date(2026, 11, 27)), "day after Thanksgiving");
    assert!(holiday(date(2026, 12, 25)), "Christmas");
    assert!(holiday(date(2027, 1, 1)), "New Year's Day");
    assert!(holiday(date(2026, 7, 3)), "July 4th 2026 is a Saturday");
    assert!(holiday(date(2026, 9, 7)), "Labor Day");
    assert!(
        list.iter()
            .any(|e| matches!(e.kind, ExceptionKind::TimeOff { .. }))
    );
    let blocked: Vec<&ScheduleException> = list
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                ExceptionKind::Blocked {
                    practitioner_id: Some(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(blocked.len(), 2);
    assert!(
        blocked
            .iter()
            .all(|e| e.end.duration_since(e.start) == SignedDuration::from_hours(1))
    );
    let extra: Vec<&ScheduleException> = list
        .iter()
        .filter(|e| matches!(e.kind, ExceptionKind::ExtraSession { .. }))
        .collect();
    assert_eq!(extra.len(), 1);
    assert_eq!(
        extra[0].start.date().weekday(),
        jiff::civil::Weekday::Saturday
    );
    assert!(extra[0].start.date() > around());
    assert_ne!(exceptions(&clinic, &ids, 2, around()), list);
}

#[test]
fn same_seed_same_schedule_and_plan() {
    let (_, a) = demo(5);
    let (_, b) = demo(5);
    assert_eq!(a, b);
    let (_, c) = demo(6);
    assert_ne!(a.templates, c.templates);
    let params = AppointmentParams {
        days_before: 7,
        days_after: 7,
        ..AppointmentParams::demo(5, 3000, now())
    };
    let plan = a.appointments(&params);
    assert!(!plan.is_empty());
    assert_eq!(plan, b.appointments(&params));
    let other = AppointmentParams { seed: 6, ..params };
    assert_ne!(plan, a.appointments(&other));
}

/// Everything a plan promises, checked with the domain's own rules; the
/// booking replay runs for every `replay_every`-th appointment.
fn check_plan(
    schedule: &DemoSchedule,
    plan: &[PlannedAppointment],
    params: &AppointmentParams,
    replay_every: usize,
) {
    let ids = &schedule.ids;
    let now = params.now;
    let established_end = params.patients - params.patients / 5;
    let generator = PatientGenerator::new(params.patient_seed);

    // Entries by (practitioner, local date) and (location, local date).
    let day = |e: &PlannedAppointment| e.local_start.date();
    let mut by_provider: HashMap<(usize, Date), Vec<usize>> = HashMap::new();
    let mut by_location: HashMap<(usize, Date), Vec<usize>> = HashMap::new();
    for (i, e) in plan.iter().enumerate() {
        by_provider
            .entry((e.practitioner, day(e)))
            .or_default()
            .push(i);
        by_location.entry((e.location, day(e))).or_default().push(i);
    }

    // Every patient's visits (start, final status): the three-year rule
    // over them decides who is established when.
    let mut visits: HashMap<u64, Vec<(Timestamp, AppointmentStatus)>> = HashMap::new();
    for e in plan {
        visits
            .entry(e.patient)
            .or_default()
            .push((e.start, e.status));
    }
    // The earlier visits come first, and end before the window's first day.
    let earlier = plan.iter().take_while(|e| e.history).count();
    assert!(plan[earlier..].iter().all(|e| !e.history));
    let window_start = plan[earlier..].iter().map(|e| e.start).min();
    let mut history_of: HashMap<u64, usize> = HashMap::new();

    let mut inputs: Vec<SlotInput> = (0..schedule.appointment_types.len())
        .map(|t| schedule.slot_input(t, now, now, now))
        .collect();
    let mut patients_by_day: HashSet<(u64, Date)> = HashSet::new();
    let mut new_patients = HashSet::new();
    for (i, e) in plan.iter().enumerate() {
        let kind = &schedule.appointment_types[e.appointment_type];
        let tz = zone(schedule, e.location);
        assert_eq!(local(&tz, e.start), e.local_start);
        assert_eq!(e.end.duration_since(e.start), kind.duration());
        assert!(e.booked_at <= now && e.status_changed_at <= now, "{e:?}");
        assert!(e.booked_at <= e.start);
        assert!(e.status_changed_at >= e.booked_at);

        // New or established, as the domain's three-year rule sees the
        // plan's own visits at the booking instant: exactly as booked.
        let established = is_established(visits[&e.patient].iter().copied(), e.booked_at);
        assert_eq!(established, !e.new_patient, "{e:?}");
        assert!(kind.accepts_patient(established), "{e:?}");

        // Replay the booking at its own instant against what held time then.
        if !e.history && i % replay_every == 0 {
            let tau = e.booked_at;
            let input = &mut inputs[e.appointment_type];
            input.now = tau;
            input.bookings.clear();
            let neighbours = by_provider[&(e.practitioner, day(e))]
                .iter()
                .chain(&by_location[&(e.location, day(e))]);
            let mut seen = HashSet::new();
            for &j in neighbours {
                let f = &plan[j];
                if j == i || !seen.insert(j) {
                    continue;
                }
                let active = f.booked_at <= tau
                    && (f.status != AppointmentStatus::Cancelled || f.status_changed_at > tau);
                if active {
                    let mut a = f.to_appointment(format!("a{j}"), "p", schedule);
                    a.status = AppointmentStatus::Booked;
                    input.bookings.push(a.booking().unwrap());
                }
            }
            let request = BookingRequest {
                practitioner_id: ids.practitioners[e.practitioner].clone(),
                location_id: ids.locations[e.location].clone(),
                start: e.start,
                resource_id: e.room.map(|r| ids.rooms[r].clone()),
                patient_established: Some(!e.new_patient),
                ignore: vec![],
            };
            let evaluation = evaluate_booking(input, &request)
                .unwrap_or_else(|err| panic!("{e:?}: refused: {err}"));
            assert!(evaluation.fits(), "{e:?}: {:?}", evaluation.issues);
            assert_eq!(evaluation.placement.overbook_limit, e.max_seat);
        }
        assert_eq!(kind.resource_kind.is_some(), e.room.is_some());

        // Inside a template block (or the extra session) that offers the type.
        let weekday = e.local_start.date().weekday().to_monday_one_offset() as u8;
        let local_end = local(&tz, e.end);
        let in_block = schedule.templates.iter().any(|t| {
            t.practitioner_id == ids.practitioners[e.practitioner]
                && t.location_id == ids.locations[e.location]
                && t.is_effective_on(e.local_start.date())
                && t.blocks.iter().any(|b| {
                    b.weekday == weekday
                        && b.start <= e.local_start.time()
                        && local_end.time() <= b.end
                        && local_end.date() == e.local_start.date()
                        && b.allows(&kind.id)
                })
        });
        let in_extra = schedule.exceptions.iter().any(|x| match &x.kind {
            ExceptionKind::ExtraSession {
                practitioner_id,
                location_id,
                appointment_type_ids,
                ..
            } => {
                practitioner_id == &ids.practitioners[e.practitioner]
                    && location_id == &ids.locations[e.location]
                    && x.start <= e.local_start
                    && local_end <= x.end
                    && appointment_type_ids.contains(&kind.id)
            }
            _ => false,
        });
        if e.history {
            // Earlier visits follow the provider's weekly pattern (the
            // templates' dates aside), months back and before the window.
            let in_pattern = schedule.templates.iter().any(|t| {
                t.practitioner_id == ids.practitioners[e.practitioner]
                    && t.location_id == ids.locations[e.location]
                    && t.blocks.iter().any(|b| {
                        b.weekday == weekday
                            && b.start <= e.local_start.time()
                            && local_end.time() <= b.end
                            && b.allows(&kind.id)
                    })
            });
            assert!(in_pattern, "{e:?}");
            assert_eq!(e.status, AppointmentStatus::Fulfilled);
            assert!(kind.accepts_patient(false), "a first visit: {e:?}");
            assert!(e.start > established_since(now), "{e:?}");
            assert!(
                e.start <= now - SignedDuration::from_hours(24 * 59),
                "{e:?}"
            );
            assert!(window_start.is_none_or(|w| e.end <= w), "{e:?}");
        } else {
            assert!(in_block || in_extra, "{e:?}");
        }

        // Nobody on a holiday.
        for x in &schedule.exceptions {
            if matches!(x.kind, ExceptionKind::Holiday { .. }) {
                assert!(
                    !(x.start < local_end && e.local_start < x.end),
                    "{e:?} on {}",
                    x.id
                );
            }
        }

        // Statuses follow the clock.
        match e.status {
            AppointmentStatus::Fulfilled => {
                assert!(e.end <= now);
                let arrived = e.arrived_at.unwrap();
                assert!(arrived <= e.start && arrived >= e.booked_at);
            }
            AppointmentStatus::NoShow => assert!(e.end <= now && e.status_changed_at >= e.start),
            AppointmentStatus::CheckedIn => assert!(e.start <= now && now < e.end),
            AppointmentStatus::Arrived => {
                assert!(now < e.start && e.arrived_at.is_some());
            }
            AppointmentStatus::Booked => assert!(now < e.start),
            AppointmentStatus::Cancelled => {
                assert!(e.cancel_reason.is_some());
                assert!(e.status_changed_at < e.start);
            }
            other => panic!("unexpected status {other}"),
        }
        assert_eq!(
            e.cancel_reason.is_some(),
            e.status == AppointmentStatus::Cancelled
        );

        // Patients: once a day, new ones once ever and from the new range.
        assert!(e.patient < params.patients);
        assert!(
            patients_by_day.insert((e.patient, day(e))),
            "patient {} twice on {}",
            e.patient,
            day(e)
        );
        if e.history {
            assert!(e.patient < established_end);
            assert!(
                history_of.insert(e.patient, i).is_none(),
                "patient {} has two earlier visits",
                e.patient
            );
        } else if e.new_patient {
            assert!(e.patient >= established_end);
            assert!(
                new_patients.insert(e.patient),
                "new patient {} twice",
                e.patient
            );
        } else {
            assert!(e.patient < established_end);
        }
        if !e.new_patient {
            // Their earlier visit came before this booking.
            let h = &plan[history_of[&e.patient]];
            assert!(h.end <= e.booked_at, "{h:?} then {e:?}");
        }
        let birth = generator.patient(e.patient).birth_date;
        assert!(
            birth <= day(e),
            "patient {} born {birth}, seen {}",
            e.patient,
            day(e)
        );
    }

    // An earlier visit only for a patient the window books as established.
    let booked: HashSet<u64> = plan
        .iter()
        .filter(|e| !e.new_patient)
        .map(|e| e.patient)
        .collect();
    assert_eq!(history_of.len(), booked.len());

    // Capacity, directly: at no moment do more time-holding visits hold a
    // provider than the block allows, and no room is shared.
    for list in by_provider.values() {
        let mut events: Vec<(Timestamp, i32, u8)> = Vec::new();
        for &i in list {
            let e = &plan[i];
            if e.holds_time() {
                events.push((e.start, 1, e.max_seat));
                events.push((e.end, -1, e.max_seat));
            }
        }
        // Ends before starts at the same instant.
        events.sort();
        let mut load = 0;
        for (at, delta, seat) in events {
            load += delta;
            assert!(load <= 1 + i32::from(seat), "{load} visits at {at}");
        }
    }
    for list in by_location.values() {
        for &i in list {
            for &j in list {
                let (e, f) = (&plan[i], &plan[j]);
                if i < j && e.holds_time() && f.holds_time() && e.room.is_some() && e.room == f.room
                {
                    assert!(!(f.start < e.end && e.start < f.end), "{e:?} and {f:?}");
                }
            }
        }
    }
}

#[test]
fn demo_plan_fits_the_schedule() {
    let (clinic, schedule) = demo(1);
    let params = AppointmentParams::demo(1, 20_000, now());
    let started = Instant::now();
    let plan = schedule.appointments(&params);
    eprintln!(
        "demo plan: {} appointments in {:?}",
        plan.len(),
        started.elapsed()
    );
    check_plan(&schedule, &plan, &params, 1);

    // The demo is alive: visits today in every state the day has reached,
    // on each of the 30 days either side that are working days.
    let today = |e: &PlannedAppointment| {
        e.local_start.date() == local(&zone(&schedule, e.location), now()).date()
    };
    let statuses: HashSet<AppointmentStatus> =
        plan.iter().filter(|e| today(e)).map(|e| e.status).collect();
    for s in [
        AppointmentStatus::Fulfilled,
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
    ] {
        assert!(statuses.contains(&s), "{s} today: {statuses:?}");
    }
    let first = plan.iter().map(|e| e.local_start.date()).min().unwrap();
    let last = plan.iter().map(|e| e.local_start.date()).max().unwrap();
    assert!(first <= around() - 29.days(), "{first}");
    assert!(last >= around() + 28.days(), "{last}");
    let statuses: HashSet<AppointmentStatus> = plan.iter().map(|e| e.status).collect();
    for s in [AppointmentStatus::NoShow, AppointmentStatus::Cancelled] {
        assert!(statuses.contains(&s));
    }
    // Every provider has visits, and the special sessions are used.
    for p in 0..clinic.practitioners.len() {
        assert!(
            plan.iter().filter(|e| e.practitioner == p).count() > 50,
            "{p}"
        );
    }
    assert!(
        plan.iter()
            .any(|e| e.local_start.time() >= time(17, 0, 0, 0)),
        "evening"
    );
    assert!(
        plan.iter()
            .any(|e| e.local_start.date().weekday() == jiff::civil::Weekday::Saturday),
        "extra Saturday"
    );
    assert!(
        plan.iter().any(|e| e.max_seat > 0 && {
            plan.iter()
                .filter(|f| {
                    f.practitioner == e.practitioner && f.start == e.start && f.holds_time()
                })
                .count()
                == 2
        }),
        "an overbooked slot"
    );
    for d in [date(2026, 11, 26), date(2026, 11, 27)] {
        assert!(plan.iter().all(|e| e.local_start.date() != d), "{d}");
    }
    assert!(plan.iter().any(|e| e.new_patient && !e.history));
    // Established patients' earlier visits: about one per established
    // patient booked, spread over the months before the window.
    let earlier: Vec<&PlannedAppointment> = plan.iter().filter(|e| e.history).collect();
    let booked: HashSet<u64> = plan
        .iter()
        .filter(|e| !e.new_patient)
        .map(|e| e.patient)
        .collect();
    assert_eq!(earlier.len(), booked.len());
    let oldest = earlier.iter().map(|e| e.local_start.date()).min().unwrap();
    let latest = earlier.iter().map(|e| e.local_start.date()).max().unwrap();
    eprintln!("{} earlier visits from {oldest} to {latest}", earlier.len());
    assert!(oldest <= around() - 24.months(), "{oldest}");
    assert!(latest >= around() - 4.months(), "{latest}");
    assert!(
        earlier
            .iter()
            .map(|e| e.practitioner)
            .collect::<HashSet<_>>()
            .len()
            == clinic.practitioners.len()
    );
    assert!(
        plan.iter()
            .any(|e| schedule.appointment_types[e.appointment_type].id == "cardio-echo")
    );
    assert!(
        plan.iter()
            .any(|e| schedule.appointment_types[e.appointment_type].id == "derm-biopsy")
    );

    // Utilization of past template time (excluding holidays and whole days
    // off) is in the 60–80% range.
    let mut open = 0i64;
    let mut booked = 0i64;
    for (p, pid) in schedule.ids.practitioners.iter().enumerate() {
        let mut d = around() - 30.days();
        while d < around() {
            let off = schedule.exceptions.iter().any(|x| match &x.kind {
                ExceptionKind::Holiday { .. } => x.start.date() == d,
                ExceptionKind::TimeOff { practitioner_id } => {
                    practitioner_id == pid
                        && x.start <= d.at(8, 0, 0, 0)
                        && d.at(17, 0, 0, 0) <= x.end
                }
                _ => false,
            });
            let weekday = d.weekday().to_monday_one_offset() as u8;
            if !off {
                for t in schedule
                    .templates
                    .iter()
                    .filter(|t| &t.practitioner_id == pid)
                {
                    for b in t.blocks.iter().filter(|b| b.weekday == weekday) {
                        open += b.end.duration_since(b.start).as_mins();
                    }
                }
            }
            d = d.tomorrow().unwrap();
        }
        booked += plan
            .iter()
            .filter(|e| {
                e.practitioner == p
                    && e.holds_time()
                    && e.local_start.date() < around()
                    && e.local_start.date() >= around() - 30.days()
            })
            .map(|e| e.end.duration_since(e.start).as_mins())
            .sum::<i64>();
    }
    let utilization = booked as f64 / open as f64;
    eprintln!("past utilization {utilization:.2}");
    assert!((0.6..=0.85).contains(&utilization), "{utilization}");

    // Slot search still finds openings next week with everything booked.
    let week = now() + SignedDuration::from_hours(24 * 7);
    let established = schedule
        .appointment_types
        .iter()
        .position(|t| t.id == "pc-established")
        .unwrap();
    let mut input = schedule.slot_input(
        established,
        week,
        week + SignedDuration::from_hours(24 * 5),
        now(),
    );
    input.bookings = plan
        .iter()
        .enumerate()
        .filter(|(_, e)| e.holds_time())
        .filter_map(|(i, e)| e.to_appointment(format!("a{i}"), "p", &schedule).booking())
        .collect();
    let slots = free_slots(&input).unwrap();
    assert!(!slots.is_empty());
    // …and none of them collides with a planned visit.
    for s in slots.iter().filter(|s| !s.is_overbook()) {
        assert!(!input.bookings.iter().any(|b| {
            *b.practitioner_id == *s.practitioner_id && b.start < s.end && s.start < b.end
        }));
    }
}

/// The plan agrees with the new-or-established rule as the database will
/// apply it: at `now`, every future booking's type accepts its patient,
/// judged by the domain's three-year rule over the plan's own past visits
/// (so patients booked as established were seen in the last three years,
/// and patients booked as new were not).
#[test]
fn future_bookings_accept_their_patients_under_the_three_year_rule() {
    // The demo's patient count, the CLI test's, and a small pool.
    for (seed, patients) in [(1, 2_000), (7, 30), (2, 800)] {
        let (_, schedule) = demo(seed);
        let params = AppointmentParams::demo(seed, patients, now());
        let plan = schedule.appointments(&params);
        let mut visits: HashMap<u64, Vec<(Timestamp, AppointmentStatus)>> = HashMap::new();
        for e in &plan {
            visits
                .entry(e.patient)
                .or_default()
                .push((e.start, e.status));
        }
        let mut by_kind = HashMap::new();
        for e in plan.iter().filter(|e| {
            e.start > now()
                && matches!(
                    e.status,
                    AppointmentStatus::Booked | AppointmentStatus::Arrived
                )
        }) {
            let established = is_established(visits[&e.patient].iter().copied(), now());
            let kind = &schedule.appointment_types[e.appointment_type];
            assert!(
                kind.accepts_patient(established),
                "seed {seed}: {} for patient {} (established: {established}): {e:?}",
                kind.id,
                e.patient
            );
            assert_eq!(established, !e.new_patient, "{e:?}");
            *by_kind.entry(established).or_insert(0) += 1;
        }
        let earlier = plan.iter().filter(|e| e.history).count();
        eprintln!(
            "seed {seed}, {patients} patients: {} appointments, {earlier} earlier visits; \
             future bookings by established: {by_kind:?}",
            plan.len()
        );
        assert!(by_kind[&true] > 0, "seed {seed}: {by_kind:?}");
        if patients >= 2_000 {
            // Smaller pools have used up their new patients by now.
            assert!(by_kind[&false] > 0, "seed {seed}: {by_kind:?}");
        }
        check_plan(&schedule, &plan, &params, 7);
    }
}

#[test]
fn other_seeds_and_small_patient_pools_are_valid_too() {
    for (seed, patients) in [(2, 800), (3, 50_000)] {
        let (_, schedule) = demo(seed);
        let params = AppointmentParams {
            days_before: 10,
            days_after: 10,
            ..AppointmentParams::demo(seed, patients, now())
        };
        let plan = schedule.appointments(&params);
        assert!(plan.len() > 1000, "{}", plan.len());
        check_plan(&schedule, &plan, &params, 1);
    }
}

#[test]
fn scaled_clinic_is_valid_and_hits_its_target() {
    let clinic = scaled_clinic(4, 30);
    assert_eq!(clinic.practitioners.len(), 30);
    assert_eq!(clinic.locations.len(), 9);
    let npis: HashSet<&str> = clinic
        .practitioners
        .iter()
        .map(|p| p.npi.as_deref().unwrap())
        .collect();
    assert_eq!(npis.len(), 30);
    for p in &clinic.practitioners {
        p.clone().validate().unwrap();
        assert!(is_valid_npi(p.npi.as_deref().unwrap()));
    }
    for l in &clinic.locations {
        l.clone().validate().unwrap();
    }
    for r in &clinic.practitioner_roles {
        assert!(r.practitioner < 30 && r.location < 9);
    }
    let ids = ScheduleIds::placeholders(&clinic);
    assert!(templates(&clinic, &ids, 4, around()).len() >= 30);
    let schedule = DemoSchedule::new(&clinic, ids, 4, around());
    for t in &schedule.templates {
        t.clone().validate_with_others(&schedule.templates).unwrap();
    }
    let params = AppointmentParams {
        days_before: 10,
        days_after: 10,
        target: Some(4_000),
        ..AppointmentParams::demo(4, 100_000, now())
    };
    let plan = schedule.appointments(&params);
    assert_eq!(plan.len(), 4_000);
    check_plan(&schedule, &plan, &params, 1);
    assert_eq!(scaled_clinic(4, 30), clinic);
    assert_eq!(scaled_clinic(4, 5).practitioners.len(), 5);
}

/// `cargo test --release -p carefront-synth --test schedule -- --ignored --nocapture`
#[test]
#[ignore = "benchmark scale: run in release"]
fn benchmark_scale() {
    let started = Instant::now();
    let clinic = scaled_clinic(1, BENCHMARK_PROVIDERS);
    let schedule = DemoSchedule::new(&clinic, ScheduleIds::placeholders(&clinic), 1, around());
    let built = started.elapsed();
    let params = AppointmentParams::benchmark(1, now());
    let plan = schedule.appointments(&params);
    let total = started.elapsed();
    eprintln!(
        "benchmark: {} providers, {} locations, {} templates, {} appointments; \
         clinic and schedule {built:?}, total {total:?}",
        clinic.practitioners.len(),
        clinic.locations.len(),
        schedule.templates.len(),
        plan.len()
    );
    assert_eq!(plan.len() as u64, BENCHMARK_APPOINTMENTS);
    let npis: HashSet<&str> = clinic
        .practitioners
        .iter()
        .map(|p| p.npi.as_deref().unwrap())
        .collect();
    assert_eq!(npis.len(), BENCHMARK_PROVIDERS);
    let patients: HashSet<u64> = plan.iter().map(|e| e.patient).collect();
    eprintln!(
        "distinct patients: {}, earlier visits of established patients: {}",
        patients.len(),
        plan.iter().filter(|e| e.history).count()
    );
    let started = Instant::now();
    check_plan(&schedule, &plan, &params, 25);
    eprintln!(
        "check (every 25th booking replayed): {:?}",
        started.elapsed()
    );
}
