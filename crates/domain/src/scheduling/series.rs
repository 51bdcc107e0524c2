//! Recurring series (weekly physical therapy × 8): occurrences keep the same
//! wall-clock time in the location's zone across DST changes; each is checked
//! like a single booking, and each conflict comes with the nearest free slots
//! of the same type with the same provider at the same location.

use super::booking::{BookingRequest, Evaluation, Placement, Refusal, evaluate_with};
use super::calendar::Calendar;
use super::slots::{ScheduleError, Slot, SlotInput, generate};
use super::time::{boundary_instant, local, on_grid, slot_start_instant};
use crate::ValidationErrors;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const MAX_SERIES_COUNT: u16 = 52;
pub const MAX_SERIES_INTERVAL_WEEKS: u8 = 12;

/// Every `every_weeks` weeks at the same local time, `count` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRule {
    pub first_local_start: DateTime,
    pub every_weeks: u8,
    pub count: u16,
}

impl SeriesRule {
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !(1..=MAX_SERIES_INTERVAL_WEEKS).contains(&self.every_weeks) {
            errors.add(
                "every_weeks",
                format!("must be between 1 and {MAX_SERIES_INTERVAL_WEEKS}"),
            );
        }
        if !(1..=MAX_SERIES_COUNT).contains(&self.count) {
            errors.add("count", format!("must be between 1 and {MAX_SERIES_COUNT}"));
        }
        if !on_grid(self.first_local_start.time()) {
            errors.add("first_local_start", "must be on a 5-minute mark");
        }
        errors.into_result(self)
    }

    /// The occurrences in `tz`. `start` is `None` when the wall time does
    /// not exist that day (spring-forward gap); a repeated wall time
    /// (fall-back) is its first occurrence.
    pub fn occurrences(&self, tz: &TimeZone) -> Vec<Occurrence> {
        (0..self.count)
            .map_while(|i| {
                let weeks = i64::from(i) * i64::from(self.every_weeks);
                let local_start = self.first_local_start.checked_add(weeks.weeks()).ok()?;
                Some(Occurrence {
                    index: i,
                    local_start,
                    start: slot_start_instant(tz, local_start),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub index: u16,
    pub local_start: DateTime,
    pub start: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRequest {
    pub practitioner_id: String,
    pub location_id: String,
    pub rule: SeriesRule,
    pub resource_id: Option<String>,
    pub patient_established: Option<bool>,
    /// Alternatives are looked for this many days either side of a
    /// conflicting occurrence (0 means 7).
    pub window_days: u16,
    /// At most this many alternatives per conflict (0 means 3).
    pub max_alternatives: usize,
}

/// Why an occurrence cannot be booked as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesConflict {
    /// The local time does not exist that day (clocks spring forward).
    TimeDoesNotExist,
    /// It breaks calendar rules; a lead may still accept the evaluation
    /// with an override.
    NeedsOverride(Evaluation),
    /// It cannot be booked at all.
    Refused(Refusal),
    /// Moved to a time that overlaps this other occurrence of the series.
    OverlapsOccurrence(u16),
}

impl fmt::Display for SeriesConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesConflict::TimeDoesNotExist => {
                f.write_str("this local time does not exist that day (the clocks spring forward)")
            }
            SeriesConflict::NeedsOverride(ev) => Refusal::NeedsOverride(ev.issues.clone()).fmt(f),
            SeriesConflict::Refused(r) => r.fmt(f),
            SeriesConflict::OverlapsOccurrence(i) => {
                write!(f, "it overlaps occurrence {} of the series", i + 1)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OccurrenceOutcome {
    Fits(Placement),
    Conflict {
        conflict: SeriesConflict,
        /// Nearest regular openings first; none overlaps an occurrence that
        /// fits or the first alternative of an earlier conflict, so those
        /// can be booked together.
        alternatives: Vec<Slot>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOccurrence {
    pub index: u16,
    pub local_start: DateTime,
    pub start: Option<Timestamp>,
    pub outcome: OccurrenceOutcome,
}

impl PlannedOccurrence {
    pub fn fits(&self) -> bool {
        matches!(self.outcome, OccurrenceOutcome::Fits(_))
    }
}

/// Plans a series of the input's appointment type: occurrences in the
/// location's local time, each checked against the schedule, conflicts with
/// alternatives. Occurrences are at least a week apart, so they are checked
/// independently of each other.
pub fn plan_series(
    input: &SlotInput,
    request: &SeriesRequest,
) -> Result<Vec<PlannedOccurrence>, ScheduleError> {
    plan(input, request, &BTreeMap::new())
}

impl SeriesRequest {
    /// [`plan_series`] with some occurrences (by index) moved to another
    /// start, typically an alternative the desk chose for a conflict. A moved
    /// occurrence may come near another, so it is also checked against the
    /// other occurrences.
    pub fn plan(
        &self,
        input: &SlotInput,
        moved: &BTreeMap<u16, Timestamp>,
    ) -> Result<Vec<PlannedOccurrence>, ScheduleError> {
        plan(input, self, moved)
    }
}

fn plan(
    input: &SlotInput,
    request: &SeriesRequest,
    moved: &BTreeMap<u16, Timestamp>,
) -> Result<Vec<PlannedOccurrence>, ScheduleError> {
    let cal = Calendar::new(input, &[])?;
    let tz = cal.zone(&request.location_id)?.tz.clone();
    let window = SignedDuration::from_hours(
        24 * i64::from(if request.window_days == 0 {
            7
        } else {
            request.window_days
        }),
    );
    let max_alternatives = if request.max_alternatives == 0 {
        3
    } else {
        request.max_alternatives
    };

    let occurrences = request.rule.occurrences(&tz);
    let mut checked = Vec::with_capacity(occurrences.len());
    for occ in occurrences {
        let occ = match moved.get(&occ.index) {
            Some(&start) => Occurrence {
                local_start: local(&tz, start),
                start: Some(start),
                ..occ
            },
            None => occ,
        };
        let result = match occ.start {
            None => Err(SeriesConflict::TimeDoesNotExist),
            Some(start) => {
                let req = BookingRequest {
                    practitioner_id: request.practitioner_id.clone(),
                    location_id: request.location_id.clone(),
                    start,
                    resource_id: request.resource_id.clone(),
                    patient_established: request.patient_established,
                    ignore: vec![],
                };
                match evaluate_with(&cal, &req) {
                    Ok(ev) if ev.fits() => Ok(ev.placement),
                    Ok(ev) => Err(SeriesConflict::NeedsOverride(ev)),
                    Err(Refusal::Schedule(e)) => return Err(e),
                    Err(r) => Err(SeriesConflict::Refused(r)),
                }
            }
        };
        checked.push((occ, result));
    }
    let overlaps: Vec<(usize, u16)> = checked
        .iter()
        .enumerate()
        .filter(|(_, (o, _))| moved.contains_key(&o.index))
        .filter_map(|(i, (o, r))| {
            let p = r.as_ref().ok()?;
            checked
                .iter()
                .find(|(other, q)| {
                    other.index != o.index
                        && q.as_ref().is_ok_and(|q| p.start < q.end && q.start < p.end)
                })
                .map(|(other, _)| (i, other.index))
        })
        .collect();
    for (i, other) in overlaps {
        checked[i].1 = Err(SeriesConflict::OverlapsOccurrence(other));
    }
    let mut taken: Vec<(Timestamp, Timestamp)> = checked
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|p| (p.start, p.end)))
        .collect();

    let anchor = |o: &Occurrence| {
        o.start
            .unwrap_or_else(|| boundary_instant(&tz, o.local_start))
    };
    let conflicts: Vec<Timestamp> = checked
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(o, _)| anchor(o))
        .collect();
    let slots = match (conflicts.iter().min(), conflicts.iter().max()) {
        (Some(&lo), Some(&hi)) => generate(
            &cal,
            lo.saturating_sub(window).unwrap_or(Timestamp::MIN),
            hi.saturating_add(window + SignedDuration::from_secs(1))
                .unwrap_or(Timestamp::MAX),
            |p| p.practitioner_id == request.practitioner_id,
            |l| l == request.location_id,
        )?,
        _ => vec![],
    };

    let mut planned = Vec::with_capacity(checked.len());
    for (occ, result) in checked {
        let outcome = match result {
            Ok(p) => OccurrenceOutcome::Fits(p),
            Err(conflict) => {
                let at = anchor(&occ);
                let mut near: Vec<&Slot> = slots
                    .iter()
                    .filter(|s| !s.is_overbook())
                    .filter(|s| s.start.duration_since(at).abs() <= window)
                    .filter(|s| !taken.iter().any(|&(a, b)| s.start < b && a < s.end))
                    .collect();
                near.sort_by_key(|s| (s.start.duration_since(at).abs(), s.start));
                near.truncate(max_alternatives);
                if let Some(first) = near.first() {
                    taken.push((first.start, first.end));
                }
                OccurrenceOutcome::Conflict {
                    conflict,
                    alternatives: near.into_iter().cloned().collect(),
                }
            }
        };
        planned.push(PlannedOccurrence {
            index: occ.index,
            local_start: occ.local_start,
            start: occ.start,
            outcome,
        });
    }
    Ok(planned)
}
