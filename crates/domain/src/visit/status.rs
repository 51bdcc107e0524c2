//! The visit's status machine and how it maps onto the FHIR Appointment
//! status of the visit's appointment (`scheduling::AppointmentStatus`).

use crate::scheduling::AppointmentStatus;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a patient is in today's visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VisitStatus {
    Scheduled,
    Arrived,
    CheckedIn,
    Roomed,
    WithProvider,
    Checkout,
    Completed,
    NoShow,
    LeftWithoutBeingSeen,
    Cancelled,
}

impl VisitStatus {
    pub const ALL: [VisitStatus; 10] = [
        Self::Scheduled,
        Self::Arrived,
        Self::CheckedIn,
        Self::Roomed,
        Self::WithProvider,
        Self::Checkout,
        Self::Completed,
        Self::NoShow,
        Self::LeftWithoutBeingSeen,
        Self::Cancelled,
    ];

    /// The stored code (the serde name).
    pub fn code(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Arrived => "arrived",
            Self::CheckedIn => "checked-in",
            Self::Roomed => "roomed",
            Self::WithProvider => "with-provider",
            Self::Checkout => "checkout",
            Self::Completed => "completed",
            Self::NoShow => "no-show",
            Self::LeftWithoutBeingSeen => "left-without-being-seen",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// In words, lower case: "checked in", "with provider".
    pub fn label(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Arrived => "arrived",
            Self::CheckedIn => "checked in",
            Self::Roomed => "roomed",
            Self::WithProvider => "with provider",
            Self::Checkout => "at checkout",
            Self::Completed => "completed",
            Self::NoShow => "no-show",
            Self::LeftWithoutBeingSeen => "left without being seen",
            Self::Cancelled => "cancelled",
        }
    }

    /// Nothing follows: the visit is over one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::LeftWithoutBeingSeen | Self::Cancelled
        )
    }

    /// The patient is in a room.
    pub fn occupies_room(self) -> bool {
        matches!(self, Self::Roomed | Self::WithProvider)
    }

    /// The patient is waiting for the next person: the desk (arrived), a
    /// room (checked in) or the provider (roomed). The board's wait clock
    /// is the time in one of these.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Arrived | Self::CheckedIn | Self::Roomed)
    }

    /// The appointment status this visit status means. `None` for left
    /// without being seen: FHIR has no such appointment status, and the
    /// appointment (arrived or checked in) stays as it was.
    pub fn appointment_status(self) -> Option<AppointmentStatus> {
        Some(match self {
            Self::Scheduled => AppointmentStatus::Booked,
            Self::Arrived => AppointmentStatus::Arrived,
            Self::CheckedIn | Self::Roomed | Self::WithProvider | Self::Checkout => {
                AppointmentStatus::CheckedIn
            }
            Self::Completed => AppointmentStatus::Fulfilled,
            Self::NoShow => AppointmentStatus::NoShow,
            Self::Cancelled => AppointmentStatus::Cancelled,
            Self::LeftWithoutBeingSeen => return None,
        })
    }

    /// The visit status an appointment's status stands for, when the
    /// appointment belongs on the board (not a proposal, an unconfirmed
    /// request, a waitlist entry or an error).
    pub fn from_appointment(status: AppointmentStatus) -> Option<Self> {
        use AppointmentStatus as A;
        match status {
            A::Booked => Some(Self::Scheduled),
            A::Arrived => Some(Self::Arrived),
            A::CheckedIn => Some(Self::CheckedIn),
            A::Fulfilled => Some(Self::Completed),
            A::NoShow => Some(Self::NoShow),
            A::Cancelled => Some(Self::Cancelled),
            A::Proposed | A::Pending | A::Waitlist | A::EnteredInError => None,
        }
    }

    /// `Ok` when `self → to` is allowed, otherwise the reason in the desk's
    /// words. `Roomed → Roomed` is a move to another room. Every allowed
    /// change is also allowed for the appointment (see the tests), so the
    /// two never disagree.
    pub fn check_transition(self, to: VisitStatus) -> Result<(), VisitTransitionError> {
        use VisitStatus::*;
        let refuse = |reason: &'static str| {
            Err(VisitTransitionError {
                from: self,
                to,
                reason,
            })
        };
        match (self, to) {
            (Scheduled, Arrived | CheckedIn | NoShow | Cancelled)
            | (Arrived, CheckedIn | LeftWithoutBeingSeen)
            | (CheckedIn, Roomed | LeftWithoutBeingSeen)
            | (Roomed, Roomed | WithProvider | LeftWithoutBeingSeen)
            | (WithProvider, Checkout | Completed)
            | (Checkout, Completed)
            // A patient marked no-show who turns up late is still seen.
            | (NoShow, Arrived) => Ok(()),
            (Completed, _) => refuse("the visit is completed"),
            (Cancelled, _) => refuse("a cancelled visit cannot change; book a new appointment"),
            (LeftWithoutBeingSeen, _) => refuse("the patient left; book a new appointment"),
            (NoShow, _) => refuse("a no-show can only be corrected to arrived"),
            (_, _) if self == to => refuse("the visit already has this status"),
            (_, Scheduled) => refuse("a visit cannot go back to scheduled"),
            (_, Arrived) => refuse("the patient has already arrived"),
            (_, CheckedIn) => refuse("the patient is already checked in"),
            (Scheduled | Arrived, Roomed) => refuse("check the patient in before rooming"),
            (_, Roomed) => refuse("the provider has already seen the patient"),
            (Scheduled | Arrived | CheckedIn, WithProvider) => {
                refuse("room the patient before the provider sees them")
            }
            (_, WithProvider) => refuse("the patient is already at checkout"),
            (_, Checkout | Completed) => refuse("the provider has not seen the patient yet"),
            (Scheduled, LeftWithoutBeingSeen) => {
                refuse("the patient has not arrived; mark a no-show instead")
            }
            (_, LeftWithoutBeingSeen) => refuse("the patient has been seen; complete the visit"),
            (WithProvider | Checkout, Cancelled | NoShow) => {
                refuse("the patient has been seen; complete the visit")
            }
            (_, Cancelled | NoShow) => {
                refuse("the patient is here; mark them left without being seen if they leave")
            }
        }
    }
}

impl fmt::Display for VisitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A refused change of a visit's status; the message names the status the
/// visit is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot change a visit that is {from} to {to}: {reason}")]
pub struct VisitTransitionError {
    pub from: VisitStatus,
    pub to: VisitStatus,
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use VisitStatus::*;

    #[test]
    fn codes_round_trip_through_serde() {
        for s in VisitStatus::ALL {
            assert_eq!(VisitStatus::from_code(s.code()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.code()));
        }
    }

    #[test]
    fn refusals_name_the_current_status_and_why() {
        let cases = [
            (CheckedIn, Completed, "that is checked in", "not seen"),
            (
                Scheduled,
                Roomed,
                "that is scheduled",
                "check the patient in",
            ),
            (
                Arrived,
                Cancelled,
                "that is arrived",
                "left without being seen",
            ),
            (Completed, Arrived, "that is completed", "completed"),
            (NoShow, CheckedIn, "that is no-show", "corrected to arrived"),
            (
                Checkout,
                LeftWithoutBeingSeen,
                "at checkout",
                "has been seen",
            ),
            (Arrived, Arrived, "that is arrived", "already"),
        ];
        for (from, to, status, reason) in cases {
            let err = from.check_transition(to).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(status), "{text}");
            assert!(err.reason.contains(reason), "{from}->{to}: {text}");
        }
    }

    #[test]
    fn the_main_path_is_allowed() {
        let path = [
            Scheduled,
            Arrived,
            CheckedIn,
            Roomed,
            WithProvider,
            Checkout,
            Completed,
        ];
        for w in path.windows(2) {
            assert!(w[0].check_transition(w[1]).is_ok(), "{} -> {}", w[0], w[1]);
        }
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for from in VisitStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in VisitStatus::ALL {
                assert!(from.check_transition(to).is_err(), "{from}->{to}");
            }
        }
    }

    /// The visit and its appointment never disagree: every allowed visit
    /// change is no change for the appointment or one its own state
    /// machine allows, and each appointment status maps back to itself.
    #[test]
    fn every_allowed_change_is_allowed_for_the_appointment() {
        for from in VisitStatus::ALL {
            for to in VisitStatus::ALL {
                if from.check_transition(to).is_err() {
                    continue;
                }
                let (Some(a), b) = (from.appointment_status(), to.appointment_status()) else {
                    panic!("{from} has no appointment status but allows {to}");
                };
                if let Some(b) = b
                    && a != b
                {
                    assert!(a.check_transition(b).is_ok(), "{from}->{to}: {a}->{b}");
                }
            }
        }
        for s in VisitStatus::ALL {
            if let Some(a) = s.appointment_status() {
                let back = VisitStatus::from_appointment(a).unwrap();
                assert_eq!(back.appointment_status(), Some(a), "{s}");
            }
        }
        assert_eq!(
            Arrived.appointment_status(),
            Some(AppointmentStatus::Arrived)
        );
        assert_eq!(
            Completed.appointment_status(),
            Some(AppointmentStatus::Fulfilled)
        );
        assert_eq!(NoShow.appointment_status(), Some(AppointmentStatus::NoShow));
    }

    #[test]
    fn waiting_and_rooms() {
        let waiting: Vec<_> = VisitStatus::ALL
            .into_iter()
            .filter(|s| s.is_waiting())
            .collect();
        assert_eq!(waiting, [Arrived, CheckedIn, Roomed]);
        let in_room: Vec<_> = VisitStatus::ALL
            .into_iter()
            .filter(|s| s.occupies_room())
            .collect();
        assert_eq!(in_room, [Roomed, WithProvider]);
    }
}
