//! Scheduling: templates, slots, bookings, holds, series and the waitlist,
//! as pure functions over plain data. Storage, HTTP and FHIR are adapters
//! that load a [`SlotInput`] (exactly what one computation needs), call these
//! functions and persist what they return; the database's claims
//! ([`claims`]) make the final no-double-booking decision under races.
//!
//! Time: templates, exceptions, opening hours and series are wall-clock
//! (civil) times in the location's IANA zone; slots and appointments are
//! instants (`jiff::Timestamp`) with the local time alongside for display.
//! The DST rules are in [`time`].

mod booking;
mod calendar;
pub mod claims;
mod established;
mod model;
mod series;
mod slots;
mod status;
pub mod time;
mod waitlist;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use booking::{
    AcceptedBooking, BookingRequest, DEFAULT_HOLD_TTL, Evaluation, FitIssue, Hold, Override,
    Placement, Refusal, evaluate_booking, may_override,
};
pub use claims::{Claim, ClaimKey, GRANULE, GRANULE_MINUTES, claim_keys};
pub use established::{
    ESTABLISHED_LOOKBACK_YEARS, VISIT_HAPPENED, established_since, is_established, visit_happened,
    wrong_patient_kind_reason,
};
pub use model::{
    AppointmentType, AvailabilityBlock, ExceptionKind, LocationHours, MAX_DAYS_AHEAD_LIMIT,
    MAX_DURATION_MINUTES, Modality, OpeningHours, PartOfDay, PatientEligibility, Preferences,
    Resource, ResourceKind, ScheduleException, Template,
};
pub use series::{
    MAX_SERIES_COUNT, MAX_SERIES_INTERVAL_WEEKS, Occurrence, OccurrenceOutcome, PlannedOccurrence,
    SeriesConflict, SeriesRequest, SeriesRule, plan_series,
};
pub use slots::{
    Booking, FreeSlots, Provider, ScheduleError, Slot, SlotAt, SlotInput, SlotSearch,
    ThirdNextAvailable, free_slots, free_slots_by_type, next_available, third_next_available,
};
pub use status::{Appointment, AppointmentStatus, CancelReason, EARLIEST_ARRIVAL, TransitionError};
pub use waitlist::{RankedEntry, WaitlistEntry, rank_waitlist};

/// Most extra bookings a template block may allow per slot.
pub const MAX_OVERBOOK_LIMIT: u8 = 10;

/// Highest provider claim seat a lead's over-capacity override may take:
/// overrides are deliberate, but still bounded so a runaway client cannot
/// stack a provider's day indefinitely.
pub const OVERRIDE_MAX_SEAT: u8 = 20;
