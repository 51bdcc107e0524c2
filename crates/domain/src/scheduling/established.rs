//! New or established patient (issue 4): appointment types may be for one
//! or the other ([`PatientEligibility`](super::PatientEligibility)), and a
//! booking for a known patient is checked against the type
//! ([`BookingRequest::patient_established`](super::BookingRequest)).
//!
//! The rule is CMS's (Medicare Claims Processing Manual, ch. 12, §30.6.7):
//! an established patient received professional services from the practice
//! within the past three years. Here "received services" means an
//! appointment whose status shows the visit happened ([`VISIT_HAPPENED`]:
//! arrived, checked in, fulfilled) starting in
//! `[established_since(now), now)`. Booked, cancelled, no-show and
//! entered-in-error appointments do not count, nor do future ones.

use super::status::AppointmentStatus;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How far back a visit makes a patient established, in calendar years.
pub const ESTABLISHED_LOOKBACK_YEARS: i16 = 3;

/// Statuses that show a visit took place.
pub const VISIT_HAPPENED: [AppointmentStatus; 3] = [
    AppointmentStatus::Arrived,
    AppointmentStatus::CheckedIn,
    AppointmentStatus::Fulfilled,
];

/// Whether an appointment in `status` shows the patient was seen.
pub fn visit_happened(status: AppointmentStatus) -> bool {
    VISIT_HAPPENED.contains(&status)
}

/// The first instant a visit still counts at `now`: the same UTC wall time
/// [`ESTABLISHED_LOOKBACK_YEARS`] years earlier (29 February goes back to
/// 28 February), inclusive.
pub fn established_since(now: Timestamp) -> Timestamp {
    now.to_zoned(TimeZone::UTC)
        .checked_sub(i64::from(ESTABLISHED_LOOKBACK_YEARS).years())
        .map_or(Timestamp::MIN, |z| z.timestamp())
}

/// Whether a patient with these appointments (start, status) is established
/// at `now`: one of them shows a visit that happened and starts in
/// `[established_since(now), now)`.
pub fn is_established(
    visits: impl IntoIterator<Item = (Timestamp, AppointmentStatus)>,
    now: Timestamp,
) -> bool {
    let since = established_since(now);
    visits
        .into_iter()
        .any(|(start, status)| visit_happened(status) && since <= start && start < now)
}

/// Why a type for `type_is_for` patients (`"new"` or `"established"`, as
/// [`Refusal::WrongPatientKind`](super::Refusal::WrongPatientKind) carries
/// it) does not suit this patient, in the front desk's words.
pub fn wrong_patient_kind_reason(type_is_for: &str) -> String {
    let years = ESTABLISHED_LOOKBACK_YEARS;
    if type_is_for == "new" {
        format!(
            "this patient has been seen here in the last {years} years: choose a type for \
             established patients"
        )
    } else {
        format!(
            "this patient has not been seen here in the last {years} years: choose a type for \
             new patients"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentStatus::*;
    use jiff::SignedDuration;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-03-02T12:00:00Z";

    fn established(visits: &[(&str, AppointmentStatus)]) -> bool {
        is_established(visits.iter().map(|&(t, s)| (ts(t), s)), ts(NOW))
    }

    #[test]
    fn the_lookback_is_three_calendar_years() {
        assert_eq!(established_since(ts(NOW)), ts("2023-03-02T12:00:00Z"));
        // 29 February has no match three years earlier: the 28th.
        assert_eq!(
            established_since(ts("2028-02-29T08:30:00Z")),
            ts("2025-02-28T08:30:00Z")
        );
        assert_eq!(established_since(Timestamp::MIN), Timestamp::MIN);
    }

    #[test]
    fn a_visit_exactly_three_years_ago_still_counts() {
        assert!(established(&[("2023-03-02T12:00:00Z", Fulfilled)]));
        assert!(!established(&[("2023-03-02T11:59:59Z", Fulfilled)]));
        let just_before = ts("2023-03-02T12:00:00Z") - SignedDuration::from_nanos(1);
        assert!(!is_established([(just_before, Fulfilled)], ts(NOW)));
    }

    #[test]
    fn only_visits_that_happened_count() {
        let year_ago = "2025-03-02T14:00:00Z";
        for status in [Fulfilled, Arrived, CheckedIn] {
            assert!(established(&[(year_ago, status)]), "{status:?}");
        }
        for status in [
            Proposed,
            Pending,
            Booked,
            Cancelled,
            NoShow,
            EnteredInError,
            Waitlist,
        ] {
            assert!(!established(&[(year_ago, status)]), "{status:?}");
        }
        assert_eq!(
            AppointmentStatus::ALL
                .into_iter()
                .filter(|s| visit_happened(*s))
                .count(),
            VISIT_HAPPENED.len()
        );
        // Cancelled and missed visits do not hide one that happened.
        assert!(established(&[
            ("2025-01-10T14:00:00Z", Cancelled),
            ("2025-06-10T14:00:00Z", NoShow),
            ("2024-06-10T14:00:00Z", Fulfilled),
        ]));
    }

    #[test]
    fn future_and_old_visits_do_not_count() {
        assert!(!established(&[]));
        // Starting now or later: not yet a past visit.
        assert!(!established(&[(NOW, Arrived)]));
        assert!(!established(&[("2026-03-09T14:00:00Z", Booked)]));
        assert!(!established(&[("2026-03-02T12:10:00Z", CheckedIn)]));
        // Under way since a minute ago: seen.
        assert!(established(&[("2026-03-02T11:59:00Z", CheckedIn)]));
        // Four years ago: new again.
        assert!(!established(&[("2022-03-02T12:00:00Z", Fulfilled)]));
    }

    #[test]
    fn the_reason_names_the_lookback() {
        assert_eq!(
            wrong_patient_kind_reason("new"),
            "this patient has been seen here in the last 3 years: choose a type for established \
             patients"
        );
        assert!(wrong_patient_kind_reason("established").contains("has not been seen"));
        assert_eq!(
            super::super::Refusal::WrongPatientKind("new").to_string(),
            "this appointment type is for new patients; this patient has been seen here in the \
             last 3 years: choose a type for established patients"
        );
    }
}
