//! A visit moving through the clinic: each step is checked by the status
//! machine, timestamped with who took it, and moves the rooms it touches
//! in the same breath (rooming occupies a room, leaving it needs cleaning).

use super::room::{RoomError, RoomState};
use super::status::{VisitStatus, VisitTransitionError};
use crate::ValidationErrors;
use crate::scheduling::{AppointmentStatus, CancelReason};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who took a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangedBy {
    /// A staff member; without an id when only the name is known (a change
    /// taken over from the appointment's history).
    User { id: Option<String>, name: String },
    /// A self check-in kiosk: the board shows "arrived (kiosk)".
    Kiosk { device_id: String },
}

/// A step a visit is asked to take: the status it goes to, the room when
/// that status is roomed (a second rooming moves the patient), and why when
/// it is a cancellation (kept on the appointment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitStep {
    to: VisitStatus,
    room_id: Option<String>,
    cancel_reason: Option<CancelReason>,
}

impl VisitStep {
    /// A room is named for rooming and only then (errors name `room_id`).
    pub fn new(to: VisitStatus, room_id: Option<&str>) -> Result<Self, ValidationErrors> {
        let room_id = room_id.map(str::trim).filter(|r| !r.is_empty());
        match (to, room_id) {
            (VisitStatus::Roomed, Some(room)) => Ok(Self::room(room)),
            (VisitStatus::Roomed, None) => {
                Err(ValidationErrors::single("room_id", "choose a room"))
            }
            (_, Some(_)) => Err(ValidationErrors::single(
                "room_id",
                "only rooming a patient names a room",
            )),
            (to, None) => Ok(Self {
                to,
                room_id: None,
                cancel_reason: None,
            }),
        }
    }

    /// Rooming in `room_id`.
    pub fn room(room_id: &str) -> Self {
        Self {
            to: VisitStatus::Roomed,
            room_id: Some(room_id.to_string()),
            cancel_reason: None,
        }
    }

    pub fn cancel(reason: CancelReason) -> Self {
        Self {
            to: VisitStatus::Cancelled,
            room_id: None,
            cancel_reason: Some(reason),
        }
    }

    pub fn to(&self) -> VisitStatus {
        self.to
    }

    pub fn room_id(&self) -> Option<&str> {
        self.room_id.as_deref()
    }

    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancel_reason
    }
}

/// One change of a visit's status, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitEvent {
    pub from: VisitStatus,
    pub to: VisitStatus,
    pub at: Timestamp,
    pub by: ChangedBy,
    /// The room entered; set exactly when `to` is roomed.
    pub room_id: Option<String>,
    /// The visit followed its appointment, whose status was changed outside
    /// the visit flow (the schedule, FHIR): see [`Visit::follow`]. Such a
    /// change need not be a step the status machine allows.
    pub followed_appointment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisitError {
    #[error(transparent)]
    Transition(#[from] VisitTransitionError),
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("a kiosk can only record an arrival")]
    KioskStep,
    #[error("the patient is already in this room")]
    SameRoom,
    #[error("no such room: {room_id}")]
    UnknownRoom { room_id: String },
}

/// A visit: the flow of one appointment on its day, named by the
/// appointment (one visit per appointment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub appointment_id: String,
    pub status: VisitStatus,
    /// When the current status began.
    pub since: Timestamp,
    /// Who set the current status; `None` while it is the appointment's own.
    pub by: Option<ChangedBy>,
    /// The room the patient is in; set exactly while the status occupies one.
    pub room_id: Option<String>,
}

impl Visit {
    /// The visit of an appointment nobody has moved through the flow yet:
    /// the status its appointment stands for, since the appointment's last
    /// change. `None` when the appointment is not on the board.
    pub fn for_appointment(
        appointment_id: &str,
        status: AppointmentStatus,
        changed_at: Timestamp,
    ) -> Option<Self> {
        Some(Self {
            appointment_id: appointment_id.to_string(),
            status: VisitStatus::from_appointment(status)?,
            since: changed_at,
            by: None,
            room_id: None,
        })
    }

    /// Takes `step` at `at` (never before the current status began: a clock
    /// behind is read as the same instant). `rooms` must hold the room the
    /// patient is in and the room named by the step; they change only when
    /// the step is taken. A refusal changes nothing.
    pub fn apply(
        &mut self,
        step: &VisitStep,
        at: Timestamp,
        by: ChangedBy,
        rooms: &mut [RoomState],
    ) -> Result<VisitEvent, VisitError> {
        if matches!(by, ChangedBy::Kiosk { .. }) && step.to != VisitStatus::Arrived {
            return Err(VisitError::KioskStep);
        }
        self.status.check_transition(step.to)?;
        if step.room_id.is_some() && step.room_id == self.room_id {
            return Err(VisitError::SameRoom);
        }
        self.move_to(step.to, step.room_id.clone(), at, by, false, rooms)
    }

    /// The status the visit must take because its appointment's status was
    /// changed outside the visit flow, if any: the one the appointment
    /// stands for (an appointment entered in error ends the visit as
    /// cancelled). A visit that is over stays as it is.
    pub fn status_following(&self, appointment: AppointmentStatus) -> Option<VisitStatus> {
        if self.status.is_final() || self.status.appointment_status() == Some(appointment) {
            return None;
        }
        Some(VisitStatus::from_appointment(appointment).unwrap_or(VisitStatus::Cancelled))
    }

    /// Brings the visit in line with its appointment (see
    /// [`Visit::status_following`]), leaving its room if it must; `at` and
    /// `by` are when and by whom the appointment was changed.
    pub fn follow(
        &mut self,
        appointment: AppointmentStatus,
        at: Timestamp,
        by: ChangedBy,
        rooms: &mut [RoomState],
    ) -> Result<Option<VisitEvent>, VisitError> {
        match self.status_following(appointment) {
            Some(to) => self.move_to(to, None, at, by, true, rooms).map(Some),
            None => Ok(None),
        }
    }

    /// The visit as a board shows it before a write has caught it up with
    /// its appointment (see [`Visit::follow`]): who made that change is not
    /// known here.
    pub fn as_board_shows(mut self, appointment: AppointmentStatus, changed_at: Timestamp) -> Self {
        if let Some(to) = self.status_following(appointment) {
            self.status = to;
            self.since = changed_at.max(self.since);
            self.by = None;
            self.room_id = None;
        }
        self
    }

    fn move_to(
        &mut self,
        to: VisitStatus,
        room_id: Option<String>,
        at: Timestamp,
        by: ChangedBy,
        followed_appointment: bool,
        rooms: &mut [RoomState],
    ) -> Result<VisitEvent, VisitError> {
        let at = at.max(self.since);
        let next_room = match to.occupies_room() {
            true => room_id.clone().or_else(|| self.room_id.clone()),
            false => None,
        };
        // Rooms change on copies first, so a refusal leaves them as they were.
        let mut changed = Vec::new();
        if next_room != self.room_id {
            if let Some(old) = &self.room_id {
                let (i, mut room) = find(rooms, old)?;
                room.vacate(&self.appointment_id, at)?;
                changed.push((i, room));
            }
            if let Some(new) = &next_room {
                let (i, mut room) = find(rooms, new)?;
                room.occupy(&self.appointment_id, at)?;
                changed.push((i, room));
            }
        }
        for (i, room) in changed {
            rooms[i] = room;
        }
        let event = VisitEvent {
            from: self.status,
            to,
            at,
            by: by.clone(),
            room_id: room_id.filter(|_| to == VisitStatus::Roomed),
            followed_appointment,
        };
        self.status = to;
        self.since = at;
        self.by = Some(by);
        self.room_id = next_room;
        Ok(event)
    }

    /// How long the visit has been in its status (zero if `now` is behind).
    pub fn time_in_status(&self, now: Timestamp) -> SignedDuration {
        now.duration_since(self.since).max(SignedDuration::ZERO)
    }

    /// The patient has waited for the next person (see
    /// [`VisitStatus::is_waiting`]) longer than `threshold`.
    pub fn waiting_too_long(&self, now: Timestamp, threshold: SignedDuration) -> bool {
        self.status.is_waiting() && self.time_in_status(now) > threshold
    }
}

fn find(rooms: &[RoomState], room_id: &str) -> Result<(usize, RoomState), VisitError> {
    rooms
        .iter()
        .position(|r| r.room_id == room_id)
        .map(|i| (i, rooms[i].clone()))
        .ok_or_else(|| VisitError::UnknownRoom {
            room_id: room_id.to_string(),
        })
}

pub const DEFAULT_WAIT_THRESHOLD_MINUTES: u16 = 15;
pub const MAX_WAIT_THRESHOLD_MINUTES: u16 = 240;

/// How long a patient may wait before the board highlights them: per
/// location, else the organization's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitThresholds {
    pub default_minutes: u16,
    pub by_location: BTreeMap<String, u16>,
}

impl Default for WaitThresholds {
    fn default() -> Self {
        Self {
            default_minutes: DEFAULT_WAIT_THRESHOLD_MINUTES,
            by_location: BTreeMap::new(),
        }
    }
}

impl WaitThresholds {
    pub fn for_location(&self, location_id: &str) -> SignedDuration {
        let minutes = self
            .by_location
            .get(location_id)
            .copied()
            .unwrap_or(self.default_minutes);
        SignedDuration::from_mins(i64::from(minutes))
    }

    /// Each threshold is 1 to 240 minutes (errors name `default_minutes`
    /// or `by_location.<location id>`).
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let range = 1..=MAX_WAIT_THRESHOLD_MINUTES;
        let message = format!("must be 1 to {MAX_WAIT_THRESHOLD_MINUTES} minutes");
        if !range.contains(&self.default_minutes) {
            errors.add("default_minutes", message.clone());
        }
        for (location, minutes) in &self.by_location {
            if !range.contains(minutes) {
                errors.add(format!("by_location.{location}"), message.clone());
            }
        }
        errors.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visit::RoomStatus;
    use VisitStatus::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn desk() -> ChangedBy {
        ChangedBy::User {
            id: Some("u1".into()),
            name: "desk".into(),
        }
    }

    fn step(to: VisitStatus) -> VisitStep {
        VisitStep::new(to, None).unwrap()
    }

    fn visit() -> Visit {
        Visit::for_appointment("a1", AppointmentStatus::Booked, ts("2026-03-01T00:00:00Z")).unwrap()
    }

    fn rooms() -> Vec<RoomState> {
        let t0 = ts("2026-03-09T07:00:00Z");
        vec![RoomState::ready("r1", t0), RoomState::ready("r2", t0)]
    }

    #[test]
    fn steps_name_a_room_exactly_when_rooming() {
        assert!(
            VisitStep::new(Roomed, None)
                .unwrap_err()
                .for_field("room_id")
                .is_some()
        );
        assert!(VisitStep::new(Arrived, Some("r1")).is_err());
        assert_eq!(
            VisitStep::new(Roomed, Some(" r1 ")).unwrap(),
            VisitStep::room("r1")
        );
        assert_eq!(VisitStep::new(Checkout, Some(" ")).unwrap().to(), Checkout);
        let cancel = VisitStep::cancel(CancelReason::Weather);
        assert_eq!(
            (cancel.to(), cancel.cancel_reason()),
            (Cancelled, Some(CancelReason::Weather))
        );
        assert_eq!(
            VisitStep::new(Cancelled, None).unwrap().cancel_reason(),
            None
        );
    }

    #[test]
    fn a_visit_moves_through_rooms_and_leaves_them_to_be_cleaned() {
        let mut v = visit();
        let mut rooms = rooms();
        let kiosk = ChangedBy::Kiosk {
            device_id: "lobby".into(),
        };
        let e = v
            .apply(
                &step(Arrived),
                ts("2026-03-09T13:50:00Z"),
                kiosk.clone(),
                &mut rooms,
            )
            .unwrap();
        assert_eq!((e.from, e.to, e.by), (Scheduled, Arrived, kiosk.clone()));
        assert_eq!(
            v.apply(
                &step(CheckedIn),
                ts("2026-03-09T13:51:00Z"),
                kiosk,
                &mut rooms
            ),
            Err(VisitError::KioskStep)
        );
        v.apply(
            &step(CheckedIn),
            ts("2026-03-09T13:52:00Z"),
            desk(),
            &mut rooms,
        )
        .unwrap();
        let e = v
            .apply(
                &VisitStep::room("r1"),
                ts("2026-03-09T14:00:00Z"),
                desk(),
                &mut rooms,
            )
            .unwrap();
        assert_eq!(e.room_id.as_deref(), Some("r1"));
        assert_eq!(v.room_id.as_deref(), Some("r1"));
        assert_eq!(
            rooms[0].status,
            RoomStatus::Occupied {
                appointment_id: "a1".into()
            }
        );
        assert_eq!(
            v.apply(
                &VisitStep::room("r1"),
                ts("2026-03-09T14:01:00Z"),
                desk(),
                &mut rooms
            ),
            Err(VisitError::SameRoom)
        );
        // Moved to another room: the first needs cleaning.
        v.apply(
            &VisitStep::room("r2"),
            ts("2026-03-09T14:02:00Z"),
            desk(),
            &mut rooms,
        )
        .unwrap();
        assert_eq!(rooms[0].status, RoomStatus::NeedsCleaning);
        let e = v
            .apply(
                &step(WithProvider),
                ts("2026-03-09T14:05:00Z"),
                desk(),
                &mut rooms,
            )
            .unwrap();
        assert_eq!(e.room_id, None, "the patient stays in the room");
        assert_eq!(v.room_id.as_deref(), Some("r2"));
        v.apply(
            &step(Checkout),
            ts("2026-03-09T14:20:00Z"),
            desk(),
            &mut rooms,
        )
        .unwrap();
        assert_eq!(v.room_id, None);
        assert_eq!(rooms[1].status, RoomStatus::NeedsCleaning);
        assert_eq!(rooms[1].since, ts("2026-03-09T14:20:00Z"));
        v.apply(
            &step(Completed),
            ts("2026-03-09T14:25:00Z"),
            desk(),
            &mut rooms,
        )
        .unwrap();
        assert_eq!((v.status, v.since), (Completed, ts("2026-03-09T14:25:00Z")));
    }

    #[test]
    fn a_taken_room_refuses_and_nothing_changes() {
        let mut rooms = rooms();
        let mut a = visit();
        let mut b = Visit {
            appointment_id: "a2".into(),
            ..visit()
        };
        let t = ts("2026-03-09T14:00:00Z");
        for v in [&mut a, &mut b] {
            v.apply(&step(CheckedIn), t, desk(), &mut rooms).unwrap();
        }
        a.apply(&VisitStep::room("r1"), t, desk(), &mut rooms)
            .unwrap();
        let before = (b.clone(), rooms.clone());
        let err = b
            .apply(&VisitStep::room("r1"), t, desk(), &mut rooms)
            .unwrap_err();
        assert!(err.to_string().contains("occupied"), "{err}");
        assert_eq!((b.clone(), rooms.clone()), before);
        assert_eq!(
            b.apply(&VisitStep::room("r9"), t, desk(), &mut rooms),
            Err(VisitError::UnknownRoom {
                room_id: "r9".into()
            })
        );
    }

    #[test]
    fn a_clock_behind_never_moves_time_backwards() {
        let mut v = visit();
        let mut rooms = rooms();
        v.apply(
            &step(Arrived),
            ts("2026-03-09T14:00:00Z"),
            desk(),
            &mut rooms,
        )
        .unwrap();
        let e = v
            .apply(
                &step(CheckedIn),
                ts("2026-03-09T13:59:59Z"),
                desk(),
                &mut rooms,
            )
            .unwrap();
        assert_eq!(e.at, ts("2026-03-09T14:00:00Z"));
    }

    #[test]
    fn the_visit_follows_its_appointment_changed_elsewhere() {
        let mut v = visit();
        let mut rooms = rooms();
        let t = ts("2026-03-09T14:00:00Z");
        v.apply(&step(CheckedIn), t, desk(), &mut rooms).unwrap();
        v.apply(&VisitStep::room("r1"), t, desk(), &mut rooms)
            .unwrap();
        assert_eq!(v.status_following(AppointmentStatus::CheckedIn), None);
        let shown = v
            .clone()
            .as_board_shows(AppointmentStatus::Fulfilled, ts("2026-03-09T14:30:00Z"));
        assert_eq!(
            (shown.status, shown.room_id.as_deref(), shown.by.as_ref()),
            (Completed, None, None)
        );
        let room = rooms[0].clone().as_board_shows(&shown);
        assert_eq!(
            (room.status, room.since),
            (RoomStatus::NeedsCleaning, ts("2026-03-09T14:30:00Z"))
        );
        assert_eq!(rooms[0].clone().as_board_shows(&v), rooms[0]);

        let scheduler = ChangedBy::User {
            id: None,
            name: "scheduler".into(),
        };
        let e = v
            .follow(
                AppointmentStatus::Fulfilled,
                ts("2026-03-09T14:30:00Z"),
                scheduler.clone(),
                &mut rooms,
            )
            .unwrap()
            .unwrap();
        assert!(e.followed_appointment);
        assert_eq!((e.from, e.to), (Roomed, Completed));
        assert_eq!(rooms[0].status, RoomStatus::NeedsCleaning);
        assert_eq!(v.by, Some(scheduler));
        assert_eq!(
            (v.status, v.since, v.room_id.as_deref()),
            (shown.status, shown.since, None)
        );
        // Over: an appointment entered in error later changes nothing.
        let mut rooms_after = rooms.clone();
        assert_eq!(
            v.follow(
                AppointmentStatus::EnteredInError,
                t,
                desk(),
                &mut rooms_after
            ),
            Ok(None)
        );

        let mut w = visit();
        assert_eq!(
            w.status_following(AppointmentStatus::EnteredInError),
            Some(Cancelled)
        );
        assert_eq!(
            w.status_following(AppointmentStatus::Arrived),
            Some(Arrived)
        );
        w.follow(AppointmentStatus::NoShow, t, desk(), &mut rooms)
            .unwrap();
        assert_eq!(w.status, NoShow);
    }

    #[test]
    fn waiting_is_the_time_in_a_waiting_status() {
        let mut v = visit();
        let mut rooms = rooms();
        let t = ts("2026-03-09T14:00:00Z");
        let fifteen = SignedDuration::from_mins(15);
        assert!(!v.waiting_too_long(t, fifteen), "scheduled is not waiting");
        v.apply(&step(CheckedIn), t, desk(), &mut rooms).unwrap();
        assert!(
            !v.waiting_too_long(t + fifteen, fifteen),
            "exactly the threshold"
        );
        assert!(v.waiting_too_long(t + fifteen + SignedDuration::from_secs(1), fifteen));
        assert_eq!(v.time_in_status(t - fifteen), SignedDuration::ZERO);
        v.apply(&VisitStep::room("r1"), t + fifteen, desk(), &mut rooms)
            .unwrap();
        assert!(!v.waiting_too_long(t + fifteen + fifteen, fifteen));
    }

    #[test]
    fn thresholds_default_to_fifteen_minutes_per_location() {
        let mut w = WaitThresholds::default();
        assert_eq!(w.for_location("l1"), SignedDuration::from_mins(15));
        w.by_location.insert("l1".into(), 5);
        assert_eq!(w.for_location("l1"), SignedDuration::from_mins(5));
        assert_eq!(w.for_location("l2"), SignedDuration::from_mins(15));
        let parsed: WaitThresholds = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, WaitThresholds::default());
        w.by_location.insert("l2".into(), 0);
        w.default_minutes = 500;
        let err = w.validate().unwrap_err();
        assert!(err.for_field("by_location.l2").is_some());
        assert!(err.for_field("default_minutes").is_some());
    }
}
