//! The local-time rules every scheduling calculation shares, written once so
//! that slots, exceptions, opening hours and series agree on what a wall-clock
//! time means on the days clocks change.
//!
//! * A slot **start** that does not exist (the spring-forward gap) is skipped.
//! * A slot start that happens twice (the fall-back fold) is offered **once**,
//!   at its first occurrence, so the same "1:30 AM" is never shown twice.
//! * A **boundary** (block end, exception edge, opening hours) that falls in a
//!   gap means the moment the clocks jump: that is when the wall clock first
//!   reads that time or later. In a fold it is the first occurrence too.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The instant a slot starting at local `dt` begins, or `None` when that wall
/// time does not exist that day.
pub fn slot_start_instant(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(dt).ok()
        }
        AmbiguousOffset::Gap { .. } => None,
    }
}

/// The instant a local boundary time refers to (see the module rules).
pub fn boundary_instant(tz: &TimeZone, dt: DateTime) -> Timestamp {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(dt).unwrap_or(Timestamp::MAX)
        }
        AmbiguousOffset::Gap { before, after } => {
            // Read with the later offset, the gap time lands just before the
            // transition; the next transition is the jump itself.
            let probe = after
                .to_timestamp(dt)
                .or_else(|_| before.to_timestamp(dt))
                .unwrap_or(Timestamp::MAX);
            tz.following(probe)
                .next()
                .map(|t| t.timestamp())
                .unwrap_or(probe)
        }
    }
}

/// The wall-clock reading of `ts` at the location.
pub fn local(tz: &TimeZone, ts: Timestamp) -> DateTime {
    tz.to_datetime(ts)
}

/// A location's clock over one local date. On the days no transition falls
/// in, one offset converts every time of the day, which spares slot search
/// its time-zone lookups (two per slot); on the days clocks change, the zone
/// is asked, by the rules above.
pub(crate) struct DayClock<'a> {
    tz: &'a TimeZone,
    pub date: Date,
    fixed: Option<Offset>,
}

impl<'a> DayClock<'a> {
    pub(crate) fn new(tz: &'a TimeZone, date: Date) -> Self {
        let midnight = date.to_datetime(Time::midnight());
        let fixed = match tz.to_ambiguous_timestamp(midnight).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                offset.to_timestamp(midnight).ok().and_then(|start| {
                    let day_end = start.checked_add(SignedDuration::from_hours(24)).ok()?;
                    tz.following(start)
                        .next()
                        .is_none_or(|t| t.timestamp() > day_end)
                        .then_some(offset)
                })
            }
            _ => None,
        };
        DayClock { tz, date, fixed }
    }

    /// [`slot_start_instant`] of a time on this clock's date.
    pub(crate) fn slot_start(&self, dt: DateTime) -> Option<Timestamp> {
        match self.fixed {
            Some(offset) => offset.to_timestamp(dt).ok(),
            None => slot_start_instant(self.tz, dt),
        }
    }

    /// [`boundary_instant`] of a time on this clock's date.
    pub(crate) fn boundary(&self, dt: DateTime) -> Timestamp {
        match self.fixed {
            Some(offset) => offset.to_timestamp(dt).unwrap_or(Timestamp::MAX),
            None => boundary_instant(self.tz, dt),
        }
    }

    /// [`local`] of an instant within this clock's date.
    pub(crate) fn local(&self, ts: Timestamp) -> DateTime {
        match self.fixed {
            Some(offset) => offset.to_datetime(ts),
            None => local(self.tz, ts),
        }
    }
}

/// Minutes since local midnight (seconds are ignored: templates are whole
/// minutes).
pub(crate) fn minute_of_day(t: Time) -> i32 {
    i32::from(t.hour()) * 60 + i32::from(t.minute())
}

pub(crate) fn at_minute(date: Date, minute: i32) -> DateTime {
    // Callers only pass minutes within one day (0..1440).
    date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
}

/// ISO weekday number, 1 = Monday … 7 = Sunday.
pub(crate) fn iso_weekday(date: Date) -> u8 {
    date.weekday().to_monday_one_offset() as u8
}

/// Whole calendar days from `a` to `b` (negative when `b` is earlier).
pub(crate) fn days_between(a: Date, b: Date) -> i64 {
    b.duration_since(a).as_secs().div_euclid(86_400)
}

pub(crate) fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(d)
}

/// Whether a civil time is on the scheduling grid (whole 5-minute marks).
pub(crate) fn on_grid(t: Time) -> bool {
    t.second() == 0
        && t.subsec_nanosecond() == 0
        && i64::from(t.minute()) % super::GRANULE_MINUTES == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn gap_start_is_skipped_and_gap_boundary_is_the_jump() {
        let tz = ny();
        let gap = date(2026, 3, 8).at(2, 30, 0, 0);
        assert_eq!(slot_start_instant(&tz, gap), None);
        // Clocks jump 02:00 EST -> 03:00 EDT at 07:00 UTC.
        assert_eq!(
            boundary_instant(&tz, gap),
            "2026-03-08T07:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn fold_resolves_to_first_occurrence() {
        let tz = ny();
        let fold = date(2026, 11, 1).at(1, 30, 0, 0);
        let first = "2026-11-01T05:30:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(slot_start_instant(&tz, fold), Some(first));
        assert_eq!(boundary_instant(&tz, fold), first);
    }

    /// A day's clock converts as the zone does on every day of two years:
    /// the days clocks change (by an hour or half an hour, at midnight or in
    /// the small hours, or by a whole day) and all the others.
    #[test]
    fn day_clock_converts_as_the_zone_does() {
        let zones = [
            "America/New_York",
            "America/Los_Angeles",
            "America/Phoenix",
            "America/Havana",
            "Australia/Lord_Howe",
            "Europe/London",
            "Pacific/Apia",
            "UTC",
        ];
        for zone in zones {
            let tz = TimeZone::get(zone).unwrap();
            let mut date = date(2026, 1, 1);
            while date.year() < 2028 {
                let clock = DayClock::new(&tz, date);
                for m in (0..1440).step_by(15).chain([7, 1439]) {
                    let dt = at_minute(date, m);
                    let start = slot_start_instant(&tz, dt);
                    assert_eq!(clock.slot_start(dt), start, "{zone} {dt}");
                    assert_eq!(clock.boundary(dt), boundary_instant(&tz, dt), "{zone} {dt}");
                    if let Some(start) = start {
                        assert_eq!(clock.local(start), local(&tz, start), "{zone} {dt}");
                    }
                }
                date = next_day(date);
            }
        }
    }

    #[test]
    fn day_clock_asks_the_zone_on_the_days_clocks_change() {
        let tz = ny();
        assert!(DayClock::new(&tz, date(2026, 3, 8)).fixed.is_none());
        assert!(DayClock::new(&tz, date(2026, 11, 1)).fixed.is_none());
        assert!(DayClock::new(&tz, date(2026, 3, 9)).fixed.is_some());
    }

    #[test]
    fn weekday_and_day_counts() {
        assert_eq!(iso_weekday(date(2026, 3, 9)), 1);
        assert_eq!(iso_weekday(date(2026, 3, 8)), 7);
        assert_eq!(days_between(date(2026, 3, 7), date(2026, 3, 9)), 2);
        assert_eq!(days_between(date(2026, 3, 9), date(2026, 3, 7)), -2);
    }
}
