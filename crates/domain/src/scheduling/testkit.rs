//! Fixtures for the scheduling tests: one clinic, one family-medicine
//! provider, one exam room, a 30-minute in-person visit type.

use super::*;
use jiff::Timestamp;
use jiff::civil::{Date, Time, date};
use jiff::tz::TimeZone;

pub(crate) const FM: &str = "207Q00000X";
pub(crate) const DERM: &str = "207N00000X";

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn t(s: &str) -> Time {
    s.parse().unwrap()
}

pub(crate) fn visit_type() -> AppointmentType {
    AppointmentType {
        id: "visit".into(),
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

pub(crate) fn telehealth_type(minutes: u32) -> AppointmentType {
    AppointmentType {
        id: "tele".into(),
        name: "Video visit".into(),
        duration_minutes: minutes,
        resource_kind: None,
        modality: Modality::Telehealth,
        ..visit_type()
    }
}

pub(crate) fn block(weekday: u8, start: &str, end: &str) -> AvailabilityBlock {
    AvailabilityBlock {
        weekday,
        start: t(start),
        end: t(end),
        appointment_type_ids: vec![],
        overbook_limit: None,
    }
}

/// 09:00–12:00 and 13:00–17:00 on the given weekdays.
pub(crate) fn clinic_blocks(weekdays: &[u8]) -> Vec<AvailabilityBlock> {
    weekdays
        .iter()
        .flat_map(|&w| [block(w, "09:00", "12:00"), block(w, "13:00", "17:00")])
        .collect()
}

pub(crate) fn template(
    practitioner: &str,
    location: &str,
    blocks: Vec<AvailabilityBlock>,
) -> Template {
    Template {
        id: format!("tpl-{practitioner}-{location}"),
        practitioner_id: practitioner.into(),
        location_id: location.into(),
        effective_from: date(2026, 1, 1),
        effective_until: None,
        overbook_limit: 0,
        blocks,
    }
}

pub(crate) fn hours(location: &str, tz: &str, weekdays: &[u8]) -> LocationHours {
    LocationHours {
        location_id: location.into(),
        timezone: tz.into(),
        opening_hours: weekdays
            .iter()
            .map(|&w| OpeningHours {
                weekday: w,
                open: t("07:00"),
                close: t("19:00"),
            })
            .collect(),
    }
}

pub(crate) fn room(id: &str, location: &str) -> Resource {
    Resource {
        id: id.into(),
        location_id: location.into(),
        name: id.into(),
        kind: ResourceKind::ExamRoom,
        active: true,
    }
}

pub(crate) fn provider(id: &str, specialty: &str) -> Provider {
    Provider {
        practitioner_id: id.into(),
        specialties: vec![specialty.into()],
    }
}

pub(crate) const ALL_DAYS: [u8; 7] = [1, 2, 3, 4, 5, 6, 7];
pub(crate) const WEEKDAYS: [u8; 5] = [1, 2, 3, 4, 5];

/// One location "loc" in `tz`, open every day 07–19; provider "dr-a" works
/// the clinic blocks every day there; one exam room; now is New Year 2026.
pub(crate) fn clinic(tz: &str) -> SlotInput {
    SlotInput {
        appointment_type: visit_type(),
        locations: vec![hours("loc", tz, &ALL_DAYS)],
        providers: vec![provider("dr-a", FM)],
        templates: vec![template("dr-a", "loc", clinic_blocks(&ALL_DAYS))],
        exceptions: vec![],
        resources: vec![room("room-1", "loc")],
        bookings: vec![],
        holds: vec![],
        from: ts("2026-01-01T00:00:00Z"),
        until: ts("2027-01-01T00:00:00Z"),
        now: ts("2026-01-01T00:00:00Z"),
    }
}

/// Restricts the input's range to one local day at the first location.
pub(crate) fn on_day(mut input: SlotInput, day: Date) -> SlotInput {
    let tz = TimeZone::get(&input.locations[0].timezone).unwrap();
    input.from = tz.to_timestamp(day.at(0, 0, 0, 0)).unwrap();
    input.until = tz
        .to_timestamp(day.tomorrow().unwrap().at(0, 0, 0, 0))
        .unwrap();
    input
}

pub(crate) fn booking(
    id: &str,
    practitioner: &str,
    rooms: &[&str],
    start: Timestamp,
    minutes: i64,
) -> Booking {
    Booking {
        id: id.into(),
        practitioner_id: practitioner.into(),
        resource_ids: rooms.iter().map(|r| r.to_string()).collect(),
        start,
        end: start + jiff::SignedDuration::from_mins(minutes),
    }
}

pub(crate) fn local_times(slots: &[Slot]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s.local_start.time().strftime("%H:%M").to_string())
        .collect()
}

pub(crate) fn at(tz: &str, d: Date, hh: i8, mm: i8) -> Timestamp {
    TimeZone::get(tz)
        .unwrap()
        .to_timestamp(d.at(hh, mm, 0, 0))
        .unwrap()
}
