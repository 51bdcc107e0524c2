//! Whether a requested booking fits, and what may make it acceptable.
//!
//! [`evaluate_booking`] answers in two layers. Hard refusals are facts an
//! override cannot change: the provider does not offer the type, the visit is
//! already over, the room is taken, the start is off the 5-minute grid.
//! [`FitIssue`]s are calendar rules (template, exceptions, opening hours,
//! overbooking limit, notice, booking window): a lead may book past them with
//! a reason, which is recorded on the appointment. [`Evaluation::accept`]
//! turns an evaluation plus an optional [`Override`] into an
//! [`AcceptedBooking`], which also says how many claim seats the store may use.

use super::calendar::{Calendar, Session};
use super::claims::{self, Claim};
use super::established::wrong_patient_kind_reason;
use super::model::{ExceptionKind, ResourceKind};
use super::slots::{Booking, ScheduleError, SlotInput};
use super::time::{DayClock, days_between, local};
use super::{GRANULE_MINUTES, OVERRIDE_MAX_SEAT};
use crate::Role;
use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    pub practitioner_id: String,
    pub location_id: String,
    pub start: Timestamp,
    /// A specific room or device; `None` lets the domain pick a free one of
    /// the kind the type needs.
    pub resource_id: Option<String>,
    /// Whether the patient is established with the practice, when known;
    /// checked against the type's new/established rule.
    pub patient_established: Option<bool>,
    /// Booking and hold ids not to count: the hold being confirmed, the
    /// appointment being rescheduled.
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// A calendar rule the booking breaks; a lead may override each of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum FitIssue {
    /// No template block or extra session covers the time (off-hours).
    OutsideTemplate,
    /// A block covers the time but does not allow this appointment type.
    TypeNotInBlock,
    /// An in-person visit outside the location's opening hours.
    LocationClosed,
    TimeOff,
    Holiday {
        name: String,
    },
    Blocked {
        reason: String,
    },
    /// The provider already has `booked` bookings then; the block allows
    /// `limit` extra.
    OverCapacity {
        booked: u32,
        limit: u8,
    },
    TooSoon {
        min_notice_minutes: u32,
    },
    TooFarAhead {
        max_days_ahead: u32,
    },
}

impl fmt::Display for FitIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitIssue::OutsideTemplate => f.write_str("outside the provider's template hours"),
            FitIssue::TypeNotInBlock => {
                f.write_str("the provider's template does not offer this type at that time")
            }
            FitIssue::LocationClosed => f.write_str("the location is closed then"),
            FitIssue::TimeOff => f.write_str("the provider is on time off"),
            FitIssue::Holiday { name } => write!(f, "holiday: {name}"),
            FitIssue::Blocked { reason } => write!(f, "the provider's time is blocked: {reason}"),
            FitIssue::OverCapacity { booked, limit } => write!(
                f,
                "the provider already has {booked} booking(s) then and the overbooking limit is {limit}"
            ),
            FitIssue::TooSoon { min_notice_minutes } => {
                write!(f, "needs {min_notice_minutes} minutes' notice")
            }
            FitIssue::TooFarAhead { max_days_ahead } => {
                write!(f, "can be booked at most {max_days_ahead} days ahead")
            }
        }
    }
}

/// Why a booking cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("provider {0} is not on this schedule")]
    UnknownPractitioner(String),
    #[error("the provider does not offer this appointment type")]
    NotOffered,
    /// The type is for new or established patients (`"new"` or
    /// `"established"`) and this patient is the other kind (see
    /// [`is_established`](super::is_established)).
    #[error("this appointment type is for {0} patients; {why}", why = wrong_patient_kind_reason(.0))]
    WrongPatientKind(&'static str),
    #[error("appointments start on {GRANULE_MINUTES}-minute marks")]
    OffGrid,
    #[error("that time is already over")]
    AlreadyOver,
    #[error("that time is outside the supported range")]
    OutOfRange,
    #[error("resource {resource_id} cannot be used: {why}")]
    ResourceUnavailable {
        resource_id: String,
        why: &'static str,
    },
    #[error("no {} is free then", .0.label())]
    NoResourceFree(ResourceKind),
    #[error("needs an override: {}", join(.0))]
    NeedsOverride(Vec<FitIssue>),
    #[error("only a lead may override the schedule (not {0})")]
    OverrideNotPermitted(Role),
    #[error("an override needs a reason")]
    OverrideReasonRequired,
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

fn join(issues: &[FitIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where and when a booking would go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub practitioner_id: String,
    pub location_id: String,
    pub appointment_type_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub local_start: DateTime,
    pub local_end: DateTime,
    pub resource_ids: Vec<String>,
    /// The covering block's overbooking limit (0 outside the template).
    pub overbook_limit: u8,
    /// Bookings already holding the provider then.
    pub booked: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub placement: Placement,
    /// Empty when the booking fits the schedule as it is.
    pub issues: Vec<FitIssue>,
}

/// A lead's decision to book past the schedule's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub role: Role,
    pub reason: String,
}

/// Only leads: they own the day's flow and answer for the overbooked clinic.
pub fn may_override(role: Role) -> bool {
    role == Role::Lead
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedBooking {
    pub placement: Placement,
    /// Highest claim seat the provider's claims may take (see [`claims`]).
    pub max_seat: u8,
    /// Set when the booking needed an override.
    pub override_reason: Option<String>,
    pub overridden: Vec<FitIssue>,
}

impl AcceptedBooking {
    /// The claim rows the store inserts for this booking.
    pub fn claims(&self) -> Vec<Claim> {
        let p = &self.placement;
        claims::claims(
            &p.practitioner_id,
            self.max_seat,
            &p.resource_ids,
            p.start,
            p.end,
        )
    }
}

impl Evaluation {
    pub fn fits(&self) -> bool {
        self.issues.is_empty()
    }

    /// Accepts a booking that fits, or one that does not when a lead
    /// overrides with a reason. An override on a booking that fits is not
    /// needed and not recorded.
    pub fn accept(self, over: Option<&Override>) -> Result<AcceptedBooking, Refusal> {
        if self.fits() {
            return Ok(AcceptedBooking {
                max_seat: self.placement.overbook_limit,
                placement: self.placement,
                override_reason: None,
                overridden: vec![],
            });
        }
        let Some(over) = over else {
            return Err(Refusal::NeedsOverride(self.issues));
        };
        if !may_override(over.role) {
            return Err(Refusal::OverrideNotPermitted(over.role));
        }
        let reason = over.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Refusal::OverrideReasonRequired);
        }
        // Past the limit the provider's claims may use the override seats; the
        // database still serializes them so two overrides never share a seat.
        let over_capacity = self
            .issues
            .iter()
            .any(|i| matches!(i, FitIssue::OverCapacity { .. }));
        Ok(AcceptedBooking {
            max_seat: if over_capacity {
                OVERRIDE_MAX_SEAT
            } else {
                self.placement.overbook_limit
            },
            placement: self.placement,
            override_reason: Some(reason.to_string()),
            overridden: self.issues,
        })
    }
}

/// Checks a requested booking of the input's appointment type against the
/// schedule at `input.now`.
pub fn evaluate_booking(input: &SlotInput, req: &BookingRequest) -> Result<Evaluation, Refusal> {
    let cal = Calendar::new(input, &req.ignore)?;
    evaluate_with(&cal, req)
}

pub(crate) fn evaluate_with(cal: &Calendar, req: &BookingRequest) -> Result<Evaluation, Refusal> {
    let kind = cal.kind;
    let now = cal.input.now;
    let provider = cal
        .provider(&req.practitioner_id)
        .ok_or_else(|| Refusal::UnknownPractitioner(req.practitioner_id.clone()))?;
    if !cal.offers(provider) || !kind.active {
        return Err(Refusal::NotOffered);
    }
    if let Some(established) = req.patient_established
        && !kind.accepts_patient(established)
    {
        return Err(Refusal::WrongPatientKind(if established {
            "new"
        } else {
            "established"
        }));
    }
    let zone = cal.zone(&req.location_id)?;
    let tz = &zone.tz;
    let start = req.start;
    if start.as_second().rem_euclid(GRANULE_MINUTES * 60) != 0 || start.subsec_nanosecond() != 0 {
        return Err(Refusal::OffGrid);
    }
    let end = start
        .checked_add(kind.duration())
        .map_err(|_| Refusal::OutOfRange)?;
    if end <= now {
        return Err(Refusal::AlreadyOver);
    }
    let local_start = local(tz, start);
    let date = local_start.date();
    let mut issues = Vec::new();

    // Template: the covering session that allows the type, else any covering one.
    let sessions = cal.sessions(&req.practitioner_id, &req.location_id, date);
    let clock = DayClock::new(tz, date);
    let covers = |s: &&Session| {
        let (a, b) = s.instants(&clock);
        a <= start && end <= b
    };
    let session = sessions
        .iter()
        .filter(covers)
        .find(|s| s.allows(&kind.id))
        .or_else(|| sessions.iter().find(covers));
    let overbook_limit = match session {
        Some(s) if s.allows(&kind.id) => s.overbook_limit,
        Some(_) => {
            issues.push(FitIssue::TypeNotInBlock);
            0
        }
        None => {
            issues.push(FitIssue::OutsideTemplate);
            0
        }
    };

    for r in cal.removals(&req.practitioner_id, &req.location_id, tz, date, date) {
        if r.interval.0 < end && start < r.interval.1 {
            let issue = match &r.exception.kind {
                ExceptionKind::Holiday { name, .. } => FitIssue::Holiday { name: name.clone() },
                ExceptionKind::Blocked { reason, .. } => FitIssue::Blocked {
                    reason: reason.clone(),
                },
                _ => FitIssue::TimeOff,
            };
            if !issues.contains(&issue) {
                issues.push(issue);
            }
        }
    }

    if cal.in_person()
        && !session.is_some_and(|s| s.extra)
        && !cal.opening(zone, &clock).contains(start, end)
    {
        issues.push(FitIssue::LocationClosed);
    }

    let booked = cal.load(&req.practitioner_id).max_over(start, end);
    if booked > u32::from(overbook_limit) {
        issues.push(FitIssue::OverCapacity {
            booked,
            limit: overbook_limit,
        });
    }

    if start
        < now
            .saturating_add(kind.min_notice())
            .unwrap_or(Timestamp::MAX)
    {
        issues.push(FitIssue::TooSoon {
            min_notice_minutes: kind.min_notice_minutes,
        });
    }
    if days_between(local(tz, now).date(), date) > i64::from(kind.max_days_ahead) {
        issues.push(FitIssue::TooFarAhead {
            max_days_ahead: kind.max_days_ahead,
        });
    }

    let resource_ids = match (kind.resource_kind, &req.resource_id) {
        (None, None) => vec![],
        (None, Some(id)) | (Some(_), Some(id)) => {
            let unavailable = |why| Refusal::ResourceUnavailable {
                resource_id: id.clone(),
                why,
            };
            let r = cal
                .resource(id)
                .ok_or_else(|| unavailable("unknown or inactive"))?;
            if r.location_id != req.location_id {
                return Err(unavailable("it is at another location"));
            }
            if kind.resource_kind.is_some_and(|k| k != r.kind) {
                return Err(unavailable("it is not of the kind this type needs"));
            }
            if !cal.resource_free(id, start, end) {
                return Err(unavailable("it is taken then"));
            }
            vec![id.clone()]
        }
        (Some(k), None) => vec![
            cal.free_resource(&req.location_id, k, start, end)
                .ok_or(Refusal::NoResourceFree(k))?
                .resource
                .id
                .clone(),
        ],
    };

    Ok(Evaluation {
        placement: Placement {
            practitioner_id: req.practitioner_id.clone(),
            location_id: req.location_id.clone(),
            appointment_type_id: kind.id.clone(),
            start,
            end,
            local_start,
            local_end: local(tz, end),
            resource_ids,
            overbook_limit,
            booked,
        },
        issues,
    })
}

// ---------------------------------------------------------------- holds

/// How long a hold keeps a slot while the patient finishes booking.
pub const DEFAULT_HOLD_TTL: SignedDuration = SignedDuration::from_mins(5);

/// A slot kept for one patient for a short time. Holds expire by themselves:
/// nothing has to delete them for the slot to come back, because every
/// reader asks [`Hold::is_live`] (the store's claims carry the same expiry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub patient_id: String,
    pub slot: Placement,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Hold {
    /// A hold from `now` for `ttl` (default [`DEFAULT_HOLD_TTL`]; at least a
    /// second, at most an hour).
    pub fn new(
        id: impl Into<String>,
        patient_id: impl Into<String>,
        slot: Placement,
        now: Timestamp,
        ttl: Option<SignedDuration>,
    ) -> Self {
        let ttl = ttl
            .unwrap_or(DEFAULT_HOLD_TTL)
            .clamp(SignedDuration::from_secs(1), SignedDuration::from_hours(1));
        Self {
            id: id.into(),
            patient_id: patient_id.into(),
            slot,
            created_at: now,
            expires_at: now.saturating_add(ttl).unwrap_or(Timestamp::MAX),
        }
    }

    /// Live until `expires_at`, exclusive.
    pub fn is_live(&self, at: Timestamp) -> bool {
        at < self.expires_at
    }

    /// The claim rows the store inserts while the hold is live (holds never
    /// overbook past the block's limit).
    pub fn claims(&self) -> Vec<Claim> {
        let s = &self.slot;
        claims::claims(
            &s.practitioner_id,
            s.overbook_limit,
            &s.resource_ids,
            s.start,
            s.end,
        )
    }

    /// The time the hold keeps, as a booking.
    pub fn booking(&self) -> Booking {
        Booking {
            id: self.id.as_str().into(),
            practitioner_id: self.slot.practitioner_id.as_str().into(),
            resource_ids: self.slot.resource_ids.as_slice().into(),
            start: self.slot.start,
            end: self.slot.end,
        }
    }
}
