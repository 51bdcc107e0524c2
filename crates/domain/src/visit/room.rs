//! Exam rooms on the board: ready, occupied by a visit, needing cleaning or
//! out of service; the cleaning and supply checklists of each room kind.

use super::Visit;
use crate::ValidationErrors;
use crate::directory::RoomKind;
use crate::validation::required_text;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RoomStatus {
    Ready,
    /// By the visit of this appointment.
    Occupied {
        appointment_id: String,
    },
    NeedsCleaning,
    OutOfService {
        reason: String,
    },
}

impl RoomStatus {
    /// The stored code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Occupied { .. } => "occupied",
            Self::NeedsCleaning => "needs_cleaning",
            Self::OutOfService { .. } => "out_of_service",
        }
    }
}

impl fmt::Display for RoomStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready => f.write_str("ready"),
            Self::Occupied { appointment_id } => {
                write!(f, "occupied by the visit of appointment {appointment_id}")
            }
            Self::NeedsCleaning => f.write_str("waiting to be cleaned"),
            Self::OutOfService { reason } => write!(f, "out of service ({reason})"),
        }
    }
}

/// A room's current status and since when it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub room_id: String,
    #[serde(flatten)]
    pub status: RoomStatus,
    pub since: Timestamp,
}

/// A change the staff make to a room (rooming and leaving are visit steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RoomChange {
    /// Cleaned: `done` lists the checklist items ticked off.
    Cleaned {
        done: Vec<String>,
    },
    OutOfService {
        reason: String,
    },
    BackInService,
}

/// Why a room cannot change as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("the room is {status} since {since}")]
    Status {
        status: RoomStatus,
        since: Timestamp,
    },
    #[error("the cleaning checklist is not complete: {}", missing.join(", "))]
    ChecklistIncomplete { missing: Vec<String> },
    #[error("a reason is required to take a room out of service")]
    ReasonRequired,
}

impl RoomState {
    pub fn ready(room_id: impl Into<String>, since: Timestamp) -> Self {
        Self {
            room_id: room_id.into(),
            status: RoomStatus::Ready,
            since,
        }
    }

    fn refuse(&self) -> RoomError {
        RoomError::Status {
            status: self.status.clone(),
            since: self.since,
        }
    }

    fn set(&mut self, status: RoomStatus, at: Timestamp) {
        self.status = status;
        self.since = at.max(self.since);
    }

    /// A patient enters: only a ready room takes one.
    pub fn occupy(&mut self, appointment_id: &str, at: Timestamp) -> Result<(), RoomError> {
        if self.status != RoomStatus::Ready {
            return Err(self.refuse());
        }
        let appointment_id = appointment_id.to_string();
        self.set(RoomStatus::Occupied { appointment_id }, at);
        Ok(())
    }

    /// The patient of `appointment_id` leaves: the room needs cleaning.
    pub fn vacate(&mut self, appointment_id: &str, at: Timestamp) -> Result<(), RoomError> {
        match &self.status {
            RoomStatus::Occupied { appointment_id: a } if a == appointment_id => {
                self.set(RoomStatus::NeedsCleaning, at);
                Ok(())
            }
            _ => Err(self.refuse()),
        }
    }

    /// The room as a board shows it when the visit occupying it has moved
    /// on without it (`occupant` as [`Visit::as_board_shows`] gives it):
    /// waiting to be cleaned since then.
    pub fn as_board_shows(mut self, occupant: &Visit) -> Self {
        let left = matches!(&self.status, RoomStatus::Occupied { appointment_id }
            if *appointment_id == occupant.appointment_id
                && occupant.room_id.as_deref() != Some(self.room_id.as_str()));
        if left {
            self.set(RoomStatus::NeedsCleaning, occupant.since);
        }
        self
    }

    /// Applies a staff change. Cleaning readies a room that needs it once
    /// every item of `checklist` is done; a room goes out of service unless
    /// a patient is in it, and comes back needing cleaning.
    pub fn apply(
        &mut self,
        change: &RoomChange,
        checklist: &RoomChecklist,
        at: Timestamp,
    ) -> Result<(), RoomError> {
        match (change, &self.status) {
            (RoomChange::Cleaned { done }, RoomStatus::NeedsCleaning) => {
                let missing = checklist.missing_cleaning(done);
                if !missing.is_empty() {
                    return Err(RoomError::ChecklistIncomplete { missing });
                }
                self.set(RoomStatus::Ready, at);
            }
            (
                RoomChange::OutOfService { reason },
                RoomStatus::Ready | RoomStatus::NeedsCleaning,
            ) => {
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(RoomError::ReasonRequired);
                }
                let reason = reason.to_string();
                self.set(RoomStatus::OutOfService { reason }, at);
            }
            (RoomChange::BackInService, RoomStatus::OutOfService { .. }) => {
                self.set(RoomStatus::NeedsCleaning, at);
            }
            _ => return Err(self.refuse()),
        }
        Ok(())
    }
}

/// A supply kept in every room of a kind, and how many should be there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyPar {
    pub item: String,
    pub par: u32,
}

/// What was found in a room when its supplies were counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyCount {
    pub item: String,
    pub on_hand: u32,
}

/// A supply below its par level, and how many bring it back up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    pub item: String,
    pub par: u32,
    pub on_hand: u32,
    pub needed: u32,
}

pub const MAX_CHECKLIST_ITEMS: usize = 100;
pub const MAX_PAR_LEVEL: u32 = 10_000;

/// The cleaning checklist and the supplies (with par levels) of one kind
/// of room. A kind without a configured checklist has empty lists: cleaning
/// needs no ticks and nothing is counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomChecklist {
    pub kind: RoomKind,
    pub cleaning: Vec<String>,
    pub supplies: Vec<SupplyPar>,
}

impl RoomChecklist {
    pub fn empty(kind: RoomKind) -> Self {
        Self {
            kind,
            cleaning: Vec::new(),
            supplies: Vec::new(),
        }
    }

    /// Trims items; refuses blank, overlong or repeated items (each error
    /// names its entry, as `cleaning[2]` or `supplies[0].par`).
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (list, len) in [
            ("cleaning", self.cleaning.len()),
            ("supplies", self.supplies.len()),
        ] {
            if len > MAX_CHECKLIST_ITEMS {
                errors.add(list, format!("at most {MAX_CHECKLIST_ITEMS} items"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, item) in self.cleaning.iter_mut().enumerate() {
            let field = format!("cleaning[{i}]");
            *item = required_text(&mut errors, &field, item, 120);
            if !item.is_empty() && !seen.insert(item.to_lowercase()) {
                errors.add(field, "is listed twice");
            }
        }
        seen.clear();
        for (i, s) in self.supplies.iter_mut().enumerate() {
            let field = format!("supplies[{i}].item");
            s.item = required_text(&mut errors, &field, &s.item, 120);
            if !s.item.is_empty() && !seen.insert(s.item.to_lowercase()) {
                errors.add(field, "is listed twice");
            }
            if !(1..=MAX_PAR_LEVEL).contains(&s.par) {
                errors.add(
                    format!("supplies[{i}].par"),
                    format!("must be 1 to {MAX_PAR_LEVEL}"),
                );
            }
        }
        errors.into_result(self)
    }

    /// Checklist items not in `done`, in checklist order.
    pub fn missing_cleaning(&self, done: &[String]) -> Vec<String> {
        self.cleaning
            .iter()
            .filter(|item| !done.contains(item))
            .cloned()
            .collect()
    }

    /// The supplies below par. Every listed supply must be counted, and
    /// only those (a partial count would hide shortfalls).
    pub fn shortfall(&self, counts: &[SupplyCount]) -> Result<Vec<Shortfall>, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (i, c) in counts.iter().enumerate() {
            if !self.supplies.iter().any(|s| s.item == c.item) {
                errors.add(
                    format!("counts[{i}].item"),
                    format!("'{}' is not on the supply list", c.item),
                );
            } else if counts[..i].iter().any(|o| o.item == c.item) {
                errors.add(format!("counts[{i}].item"), "is counted twice");
            }
        }
        let mut short = Vec::new();
        for s in &self.supplies {
            match counts.iter().find(|c| c.item == s.item) {
                None => errors.add("counts", format!("'{}' was not counted", s.item)),
                Some(c) if c.on_hand < s.par => short.push(Shortfall {
                    item: s.item.clone(),
                    par: s.par,
                    on_hand: c.on_hand,
                    needed: s.par - c.on_hand,
                }),
                Some(_) => {}
            }
        }
        errors.into_result(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn checklist() -> RoomChecklist {
        RoomChecklist {
            kind: RoomKind::Exam,
            cleaning: vec!["Wipe table".into(), "Replace paper".into()],
            supplies: vec![
                SupplyPar {
                    item: "Gloves (box)".into(),
                    par: 4,
                },
                SupplyPar {
                    item: "Gauze".into(),
                    par: 20,
                },
            ],
        }
    }

    #[test]
    fn a_room_turns_over_through_cleaning() {
        let t0 = ts("2026-03-09T14:00:00Z");
        let mut room = RoomState::ready("r1", t0);
        room.occupy("a1", ts("2026-03-09T14:05:00Z")).unwrap();
        let err = room.occupy("a2", ts("2026-03-09T14:06:00Z")).unwrap_err();
        assert!(err.to_string().contains("appointment a1"), "{err}");
        assert!(room.vacate("a2", ts("2026-03-09T14:07:00Z")).is_err());
        room.vacate("a1", ts("2026-03-09T14:30:00Z")).unwrap();
        assert_eq!(room.status, RoomStatus::NeedsCleaning);
        assert_eq!(room.since, ts("2026-03-09T14:30:00Z"));
        assert!(room.occupy("a2", ts("2026-03-09T14:31:00Z")).is_err());

        let list = checklist();
        let half = RoomChange::Cleaned {
            done: vec!["Wipe table".into()],
        };
        let err = room.apply(&half, &list, t0).unwrap_err();
        assert_eq!(
            err,
            RoomError::ChecklistIncomplete {
                missing: vec!["Replace paper".into()]
            }
        );
        let all = RoomChange::Cleaned {
            done: list.cleaning.clone(),
        };
        // A clock behind the room's own does not move it back in time.
        room.apply(&all, &list, t0).unwrap();
        assert_eq!(room.status, RoomStatus::Ready);
        assert_eq!(room.since, ts("2026-03-09T14:30:00Z"));
        assert!(room.apply(&all, &list, t0).is_err(), "already ready");
    }

    #[test]
    fn out_of_service_never_with_a_patient_and_back_via_cleaning() {
        let t0 = ts("2026-03-09T14:00:00Z");
        let list = RoomChecklist::empty(RoomKind::Exam);
        let mut room = RoomState::ready("r1", t0);
        let blank = RoomChange::OutOfService { reason: " ".into() };
        assert_eq!(
            room.apply(&blank, &list, t0),
            Err(RoomError::ReasonRequired)
        );
        room.occupy("a1", t0).unwrap();
        let broken = RoomChange::OutOfService {
            reason: "light broken".into(),
        };
        assert!(room.apply(&broken, &list, t0).is_err());
        room.vacate("a1", t0).unwrap();
        room.apply(&broken, &list, t0).unwrap();
        assert!(room.occupy("a2", t0).is_err());
        room.apply(&RoomChange::BackInService, &list, t0).unwrap();
        assert_eq!(room.status, RoomStatus::NeedsCleaning);
        // An empty checklist needs no ticks.
        room.apply(&RoomChange::Cleaned { done: vec![] }, &list, t0)
            .unwrap();
        assert_eq!(room.status, RoomStatus::Ready);
    }

    #[test]
    fn shortfalls_need_a_full_count() {
        let list = checklist();
        let counts = vec![
            SupplyCount {
                item: "Gloves (box)".into(),
                on_hand: 1,
            },
            SupplyCount {
                item: "Gauze".into(),
                on_hand: 25,
            },
        ];
        assert_eq!(
            list.shortfall(&counts).unwrap(),
            [Shortfall {
                item: "Gloves (box)".into(),
                par: 4,
                on_hand: 1,
                needed: 3
            }]
        );
        let err = list.shortfall(&counts[..1]).unwrap_err();
        assert!(err.for_field("counts").unwrap().contains("Gauze"));
        let mut extra = counts.clone();
        extra.push(SupplyCount {
            item: "Masks".into(),
            on_hand: 0,
        });
        extra.push(counts[0].clone());
        let err = list.shortfall(&extra).unwrap_err();
        assert!(err.for_field("counts[2].item").is_some());
        assert!(err.for_field("counts[3].item").unwrap().contains("twice"));
    }

    #[test]
    fn checklists_are_validated_per_entry() {
        let mut list = checklist();
        list.cleaning.push(" wipe TABLE ".into());
        list.cleaning.push("  ".into());
        list.supplies[1].par = 0;
        let err = list.validate().unwrap_err();
        assert!(err.for_field("cleaning[2]").unwrap().contains("twice"));
        assert!(err.for_field("cleaning[3]").is_some());
        assert!(err.for_field("supplies[1].par").is_some());
        let ok = RoomChecklist {
            cleaning: vec!["  Wipe table ".into()],
            ..checklist()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.cleaning, ["Wipe table"]);
    }
}
