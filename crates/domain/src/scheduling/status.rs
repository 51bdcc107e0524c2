//! Appointments and their FHIR R4 status life cycle. Every change of status
//! goes through [`AppointmentStatus::check_transition`], so a cancelled visit
//! cannot quietly become "arrived" and reports stay truthful.

use super::booking::{AcceptedBooking, Placement};
use super::claims::{self, Claim};
use super::slots::Booking;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// FHIR R4 `AppointmentStatus` (http://hl7.org/fhir/appointmentstatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppointmentStatus {
    Proposed,
    Pending,
    Booked,
    Arrived,
    Fulfilled,
    Cancelled,
    #[serde(rename = "noshow")]
    NoShow,
    EnteredInError,
    CheckedIn,
    Waitlist,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 10] = [
        Self::Proposed,
        Self::Pending,
        Self::Booked,
        Self::Arrived,
        Self::Fulfilled,
        Self::Cancelled,
        Self::NoShow,
        Self::EnteredInError,
        Self::CheckedIn,
        Self::Waitlist,
    ];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Pending => "pending",
            Self::Booked => "booked",
            Self::Arrived => "arrived",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::NoShow => "noshow",
            Self::EnteredInError => "entered-in-error",
            Self::CheckedIn => "checked-in",
            Self::Waitlist => "waitlist",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether an appointment in this status keeps its time (and claims):
    /// pending and booked visits, and patients who are here. Proposals and
    /// waitlist entries have no time yet; cancelled, no-show and erroneous
    /// appointments give theirs back.
    pub fn holds_time(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Booked | Self::Arrived | Self::CheckedIn | Self::Fulfilled
        )
    }

    /// No further change is possible except marking it entered-in-error.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Fulfilled | Self::Cancelled | Self::EnteredInError
        )
    }

    /// The state machine: `Ok` when `self → to` is allowed, otherwise the
    /// reason in words the front desk understands.
    pub fn check_transition(self, to: AppointmentStatus) -> Result<(), TransitionError> {
        use AppointmentStatus::*;
        let refuse = |reason: &'static str| {
            Err(TransitionError {
                from: self,
                to,
                reason,
            })
        };
        if self == to {
            return refuse("the appointment already has this status");
        }
        match (self, to) {
            (EnteredInError, _) => refuse("an appointment entered in error cannot change"),
            (_, EnteredInError) => Ok(()),
            (Proposed, Pending | Booked | Waitlist | Cancelled) => Ok(()),
            (Waitlist, Proposed | Pending | Booked | Cancelled) => Ok(()),
            (Pending, Booked | Cancelled) => Ok(()),
            (Booked, Arrived | CheckedIn | Cancelled | NoShow) => Ok(()),
            (Arrived, CheckedIn | Fulfilled) => Ok(()),
            (CheckedIn, Fulfilled) => Ok(()),
            // A patient marked no-show who turns up late is still seen.
            (NoShow, Arrived) => Ok(()),
            (Fulfilled, _) => refuse("the visit is over; only entered-in-error is possible"),
            (Cancelled, _) => refuse("a cancelled appointment cannot be revived; book a new one"),
            (NoShow, _) => refuse("a no-show can only be corrected to arrived"),
            (Arrived | CheckedIn, Cancelled | NoShow) => {
                refuse("the patient is already here; complete the visit instead")
            }
            (_, Proposed | Pending | Waitlist) => {
                refuse("an appointment cannot go back to an earlier stage")
            }
            (_, NoShow) => refuse("only a booked appointment can be a no-show"),
            (_, Arrived | CheckedIn) => refuse("only a booked appointment can arrive or check in"),
            (_, Fulfilled) => refuse("the patient must arrive before the visit is fulfilled"),
            (_, Booked) => refuse("the patient is already here"),
        }
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot change an appointment from {from} to {to}: {reason}")]
pub struct TransitionError {
    pub from: AppointmentStatus,
    pub to: AppointmentStatus,
    pub reason: &'static str,
}

/// Why an appointment was cancelled. Codes follow FHIR R4's
/// `appointment-cancellation-reason` where it has one; `rescheduled` is ours
/// (FHIR adapters send it as `other` with that text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    #[serde(rename = "pat")]
    Patient,
    #[serde(rename = "pat-cpp")]
    PatientPortal,
    #[serde(rename = "pat-crs")]
    PatientReminder,
    #[serde(rename = "pat-fb")]
    PatientFeelingBetter,
    #[serde(rename = "pat-lt")]
    PatientTransportation,
    #[serde(rename = "pat-mv")]
    PatientMoved,
    #[serde(rename = "pat-dec")]
    PatientDeceased,
    #[serde(rename = "prov")]
    Provider,
    #[serde(rename = "prov-pers")]
    ProviderPersonal,
    #[serde(rename = "prov-edu")]
    ProviderMeeting,
    #[serde(rename = "prov-hosp")]
    ProviderHospitalized,
    #[serde(rename = "maint")]
    EquipmentMaintenance,
    #[serde(rename = "oth-weath")]
    Weather,
    #[serde(rename = "oth-fin")]
    Financial,
    #[serde(rename = "oth-err")]
    Error,
    #[serde(rename = "rescheduled")]
    Rescheduled,
    #[serde(rename = "other")]
    Other,
}

impl CancelReason {
    pub const ALL: [CancelReason; 17] = [
        Self::Patient,
        Self::PatientPortal,
        Self::PatientReminder,
        Self::PatientFeelingBetter,
        Self::PatientTransportation,
        Self::PatientMoved,
        Self::PatientDeceased,
        Self::Provider,
        Self::ProviderPersonal,
        Self::ProviderMeeting,
        Self::ProviderHospitalized,
        Self::EquipmentMaintenance,
        Self::Weather,
        Self::Financial,
        Self::Error,
        Self::Rescheduled,
        Self::Other,
    ];

    /// The stored code (the FHIR code where one exists).
    pub fn code(self) -> &'static str {
        match self {
            Self::Patient => "pat",
            Self::PatientPortal => "pat-cpp",
            Self::PatientReminder => "pat-crs",
            Self::PatientFeelingBetter => "pat-fb",
            Self::PatientTransportation => "pat-lt",
            Self::PatientMoved => "pat-mv",
            Self::PatientDeceased => "pat-dec",
            Self::Provider => "prov",
            Self::ProviderPersonal => "prov-pers",
            Self::ProviderMeeting => "prov-edu",
            Self::ProviderHospitalized => "prov-hosp",
            Self::EquipmentMaintenance => "maint",
            Self::Weather => "oth-weath",
            Self::Financial => "oth-fin",
            Self::Error => "oth-err",
            Self::Rescheduled => "rescheduled",
            Self::Other => "other",
        }
    }

    /// The code in `http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason`.
    pub fn fhir_code(self) -> &'static str {
        match self {
            Self::Rescheduled => "other",
            other => other.code(),
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::PatientPortal => "Patient: cancelled via portal",
            Self::PatientReminder => "Patient: cancelled via reminder",
            Self::PatientFeelingBetter => "Patient: feeling better",
            Self::PatientTransportation => "Patient: lack of transportation",
            Self::PatientMoved => "Patient: moved",
            Self::PatientDeceased => "Patient: deceased",
            Self::Provider => "Provider",
            Self::ProviderPersonal => "Provider: personal",
            Self::ProviderMeeting => "Provider: education or meeting",
            Self::ProviderHospitalized => "Provider: hospitalized",
            Self::EquipmentMaintenance => "Equipment maintenance or repair",
            Self::Weather => "Weather",
            Self::Financial => "Financial",
            Self::Error => "Entered in error",
            Self::Rescheduled => "Rescheduled",
            Self::Other => "Other",
        }
    }
}

/// How early before its start a patient can be marked arrived: the desk
/// may see someone early, but not "arrive" next week's visit by mistake.
pub const EARLIEST_ARRIVAL: SignedDuration = SignedDuration::from_hours(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub patient_id: String,
    pub practitioner_id: String,
    pub location_id: String,
    pub appointment_type_id: String,
    pub resource_ids: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub status: AppointmentStatus,
    pub status_changed_at: Timestamp,
    /// Highest claim seat the provider's claims may take (0 without
    /// overbooking); kept so claims can be recomputed.
    pub max_seat: u8,
    pub cancel_reason: Option<CancelReason>,
    /// Why a lead booked past the schedule, when they did.
    pub override_reason: Option<String>,
    pub series_id: Option<String>,
    /// The appointment this one replaced when rescheduled.
    pub rescheduled_from: Option<String>,
    pub arrived_at: Option<Timestamp>,
}

impl Appointment {
    /// A booked appointment from an accepted booking.
    pub fn book(
        id: impl Into<String>,
        patient_id: impl Into<String>,
        accepted: AcceptedBooking,
        now: Timestamp,
    ) -> Self {
        let p: Placement = accepted.placement;
        Self {
            id: id.into(),
            patient_id: patient_id.into(),
            practitioner_id: p.practitioner_id,
            location_id: p.location_id,
            appointment_type_id: p.appointment_type_id,
            resource_ids: p.resource_ids,
            start: p.start,
            end: p.end,
            status: AppointmentStatus::Booked,
            status_changed_at: now,
            max_seat: accepted.max_seat,
            cancel_reason: None,
            override_reason: accepted.override_reason,
            series_id: None,
            rescheduled_from: None,
            arrived_at: None,
        }
    }

    /// Any allowed status change.
    pub fn transition(
        &mut self,
        to: AppointmentStatus,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.status.check_transition(to)?;
        self.status = to;
        self.status_changed_at = now;
        Ok(())
    }

    pub fn cancel(&mut self, reason: CancelReason, now: Timestamp) -> Result<(), TransitionError> {
        self.transition(AppointmentStatus::Cancelled, now)?;
        self.cancel_reason = Some(reason);
        Ok(())
    }

    /// A no-show can only be recorded once the visit should have started.
    pub fn mark_no_show(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        if now < self.start {
            return Err(TransitionError {
                from: self.status,
                to: AppointmentStatus::NoShow,
                reason: "the appointment has not started yet",
            });
        }
        self.transition(AppointmentStatus::NoShow, now)
    }

    pub fn mark_arrived(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        if now
            < self
                .start
                .saturating_sub(EARLIEST_ARRIVAL)
                .unwrap_or(Timestamp::MIN)
        {
            return Err(TransitionError {
                from: self.status,
                to: AppointmentStatus::Arrived,
                reason: "it is too early to arrive for this appointment",
            });
        }
        self.transition(AppointmentStatus::Arrived, now)?;
        self.arrived_at = Some(now);
        Ok(())
    }

    /// Moves the appointment: this one is cancelled as `rescheduled` and the
    /// returned one is booked at the new placement, linked back to it. The
    /// new time must be evaluated with this appointment's id in
    /// `BookingRequest::ignore`, so it does not collide with itself.
    pub fn reschedule(
        &mut self,
        new_id: impl Into<String>,
        accepted: AcceptedBooking,
        now: Timestamp,
    ) -> Result<Appointment, TransitionError> {
        if !matches!(
            self.status,
            AppointmentStatus::Booked | AppointmentStatus::Pending | AppointmentStatus::Proposed
        ) {
            return Err(TransitionError {
                from: self.status,
                to: AppointmentStatus::Cancelled,
                reason: "only an appointment not yet started can be rescheduled",
            });
        }
        self.cancel(CancelReason::Rescheduled, now)?;
        let mut next = Appointment::book(new_id, self.patient_id.clone(), accepted, now);
        next.rescheduled_from = Some(self.id.clone());
        next.series_id = self.series_id.clone();
        Ok(next)
    }

    /// The time this appointment keeps, when its status keeps any.
    pub fn booking(&self) -> Option<Booking> {
        self.status.holds_time().then(|| Booking {
            id: self.id.as_str().into(),
            practitioner_id: self.practitioner_id.as_str().into(),
            resource_ids: self.resource_ids.as_slice().into(),
            start: self.start,
            end: self.end,
        })
    }

    /// The claim rows this appointment holds while its status keeps time.
    pub fn claims(&self) -> Vec<Claim> {
        if !self.status.holds_time() {
            return vec![];
        }
        claims::claims(
            &self.practitioner_id,
            self.max_seat,
            &self.resource_ids,
            self.start,
            self.end,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentStatus::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn appointment() -> Appointment {
        let start = ts("2026-03-09T14:00:00Z");
        Appointment {
            id: "a1".into(),
            patient_id: "pat".into(),
            practitioner_id: "dr".into(),
            location_id: "loc".into(),
            appointment_type_id: "t".into(),
            resource_ids: vec!["room1".into()],
            start,
            end: start + SignedDuration::from_mins(20),
            status: Booked,
            status_changed_at: ts("2026-03-01T00:00:00Z"),
            max_seat: 0,
            cancel_reason: None,
            override_reason: None,
            series_id: None,
            rescheduled_from: None,
            arrived_at: None,
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::from_code(s.code()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.code()));
        }
        for r in CancelReason::ALL {
            assert_eq!(CancelReason::from_code(r.code()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
        assert_eq!(CancelReason::Rescheduled.fhir_code(), "other");
    }

    #[test]
    fn happy_path_of_a_visit() {
        let mut a = appointment();
        a.mark_arrived(ts("2026-03-09T13:50:00Z")).unwrap();
        assert_eq!(a.arrived_at, Some(ts("2026-03-09T13:50:00Z")));
        a.transition(CheckedIn, ts("2026-03-09T13:55:00Z")).unwrap();
        a.transition(Fulfilled, ts("2026-03-09T14:30:00Z")).unwrap();
        let err = a
            .transition(Cancelled, ts("2026-03-09T15:00:00Z"))
            .unwrap_err();
        assert!(err.to_string().contains("fulfilled to cancelled"), "{err}");
        a.transition(EnteredInError, ts("2026-03-09T15:00:00Z"))
            .unwrap();
        assert!(a.transition(Booked, ts("2026-03-09T15:00:00Z")).is_err());
    }

    #[test]
    fn invalid_transitions_give_a_reason() {
        let cases = [
            (Cancelled, Booked, "book a new one"),
            (Booked, Fulfilled, "must arrive"),
            (Booked, Booked, "already"),
            (Arrived, Cancelled, "already here"),
            (Booked, Pending, "earlier stage"),
            (Pending, NoShow, "only a booked"),
            (Proposed, Arrived, "only a booked"),
            (NoShow, Booked, "corrected to arrived"),
        ];
        for (from, to, words) in cases {
            let err = from.check_transition(to).unwrap_err();
            assert!(err.reason.contains(words), "{from}->{to}: {err}");
        }
    }

    #[test]
    fn every_pair_is_decided_and_entered_in_error_is_terminal() {
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                let r = from.check_transition(to);
                if from == EnteredInError || from == to {
                    assert!(r.is_err());
                } else if to == EnteredInError {
                    assert!(r.is_ok());
                }
                if from.is_final() && to != EnteredInError {
                    assert!(r.is_err(), "{from}->{to}");
                }
            }
        }
    }

    #[test]
    fn no_show_only_after_start_and_late_arrival_recovers() {
        let mut a = appointment();
        let err = a.mark_no_show(ts("2026-03-09T13:59:00Z")).unwrap_err();
        assert!(err.reason.contains("not started"));
        a.mark_no_show(ts("2026-03-09T14:15:00Z")).unwrap();
        assert!(a.booking().is_none(), "a no-show gives its time back");
        assert!(a.claims().is_empty());
        a.mark_arrived(ts("2026-03-09T14:25:00Z")).unwrap();
        assert_eq!(a.status, Arrived);
    }

    #[test]
    fn arrival_too_early_is_refused() {
        let mut a = appointment();
        assert!(a.mark_arrived(ts("2026-03-02T14:00:00Z")).is_err());
    }

    #[test]
    fn cancel_records_reason_and_frees_time() {
        let mut a = appointment();
        assert!(a.booking().is_some());
        assert_eq!(
            a.claims().len(),
            8,
            "20 minutes: 4 granules for the provider and 4 for the room"
        );
        a.cancel(
            CancelReason::PatientFeelingBetter,
            ts("2026-03-08T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(a.cancel_reason, Some(CancelReason::PatientFeelingBetter));
        assert!(a.booking().is_none());
        assert!(
            a.cancel(CancelReason::Patient, ts("2026-03-08T10:00:00Z"))
                .is_err()
        );
    }
}
