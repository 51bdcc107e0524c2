//! Storage of the visit flow (`carefront_domain::visit`): visits and their
//! history, the rooms board, room checklists, restock tasks and the board
//! event stream.
//!
//! * Every write runs the domain's rules on rows it has locked, always in
//!   one order: the appointment, the visit, its rooms by id, the location's
//!   board counter, then the audit head (appended last). Servers racing for
//!   a room or a visit wait for each other instead of deadlocking, and the
//!   loser is refused by the domain as if it had come second.
//! * A step moves the appointment with it (`VisitStatus::appointment_status`)
//!   through [`WriteTx::set_appointment_status`], in the same transaction.
//! * Every change of a visit or room appends a `board_events` row holding
//!   the new state of what it touched ([`BoardChange`]) under the location's
//!   next number: boards read [`Db::board_events_since`] from the `seq` their
//!   [`DayBoard`] or [`RoomBoard`] was read at.

use crate::db::sql;
use crate::directory::decode_err;
use crate::records::{Page, Record, Val, versioned};
use crate::scheduling::{
    Actor, AppointmentQuery, AppointmentRecord, Task, TaskStatus, bind_vals, code, code_col,
    corrupt, in_list, int, json, json_col, opt_ts_col, ts_col, us,
};
use crate::{Db, Result, Setting, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, AuditEntry};
use carefront_domain::directory::{Room, RoomKind, Versioned};
use carefront_domain::scheduling::{Appointment, AppointmentStatus};
use carefront_domain::visit::{
    ChangedBy, RoomChange, RoomChecklist, RoomError, RoomState, RoomStatus, Shortfall, SupplyCount,
    Visit, VisitError, VisitEvent, VisitStatus, VisitStep, WaitThresholds,
};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::fmt::Display;

impl Setting for WaitThresholds {
    const NAME: &'static str = "wait_thresholds";
}

/// Who takes a visit step: staff, audited as themselves, or a self check-in
/// kiosk (which may only record an arrival).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowActor {
    Staff(Actor),
    Kiosk {
        device_id: String,
        client_addr: Option<String>,
    },
}

impl FlowActor {
    fn changed_by(&self) -> ChangedBy {
        match self {
            Self::Staff(a) => ChangedBy::User {
                id: a.actor_id.clone(),
                name: a.actor_name.clone(),
            },
            Self::Kiosk { device_id, .. } => ChangedBy::Kiosk {
                device_id: device_id.clone(),
            },
        }
    }

    pub(crate) fn actor(&self) -> Actor {
        match self {
            Self::Staff(a) => a.clone(),
            Self::Kiosk {
                device_id,
                client_addr,
            } => Actor {
                actor_id: None,
                actor_name: format!("kiosk {device_id}"),
                role: None,
                client_addr: client_addr.clone(),
            },
        }
    }
}

/// A visit change as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitChange {
    pub visit: Visit,
    /// The events recorded: the visit catching up with its appointment
    /// first when that was changed elsewhere (`Visit::follow`), then the step.
    pub events: Vec<VisitEvent>,
    /// The rooms that changed, as they are now.
    pub rooms: Vec<RoomState>,
    /// The number of the board event at the appointment's location.
    pub board_seq: i64,
    /// A worklist task when a cancellation or no-show freed a future slot.
    pub waitlist_task: Option<Task>,
}

/// A board event's payload: the new state of every visit and room one
/// change touched. Boards replace their rows with it, so applying an event
/// twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardChange {
    pub visits: Vec<Visit>,
    pub rooms: Vec<RoomState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub change: BoardChange,
}

/// What a board shows of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardPatient {
    pub id: String,
    pub mrn: String,
    pub given: String,
    pub middle: Option<String>,
    pub family: String,
    pub suffix: Option<String>,
    pub preferred_name: Option<String>,
    pub birth_date: Date,
}

/// One appointment of the day with its visit as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardVisit {
    pub patient: BoardPatient,
    pub practitioner_id: String,
    pub appointment_type_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub appointment_status: AppointmentStatus,
    /// The visit (named by the appointment's id): status, since when, who
    /// set it (a kiosk: "arrived (kiosk)") and the room.
    pub visit: Visit,
    /// The patient signed the consent for this visit (at the kiosk).
    pub consent_signed: bool,
}

/// A location's appointments of one local day, by start time. Board events
/// after `seq` may already be reflected here.
#[derive(Debug, Clone, PartialEq)]
pub struct DayBoard {
    pub timezone: TimeZone,
    pub seq: i64,
    pub visits: Vec<BoardVisit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRoom {
    pub room_id: String,
    pub name: String,
    pub kind: RoomKind,
    pub state: RoomState,
    /// The patient in the room while it is occupied.
    pub patient: Option<BoardPatient>,
}

/// A location's rooms by name. Board events after `seq` may already be
/// reflected here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomBoard {
    pub seq: i64,
    pub rooms: Vec<BoardRoom>,
}

/// Supplies to bring back to par in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestockTask {
    pub id: String,
    pub room_id: String,
    pub shortfall: Vec<Shortfall>,
    pub status: TaskStatus,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<String>,
}

/// A room checklist is stored under its room kind's code.
impl Record for RoomChecklist {
    const KIND: &'static str = "RoomChecklist";
    const TABLE: &'static str = "room_checklists";
    const COLUMNS: &'static [&'static str] = &["cleaning_json", "supplies_json"];
    const SORT: &'static str = "id";

    fn values(&self) -> Vec<Val> {
        vec![json(&self.cleaning), json(&self.supplies)]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(RoomChecklist {
            kind: code_col(row, "id")?,
            cleaning: json_col(row, "cleaning_json")?,
            supplies: json_col(row, "supplies_json")?,
        })
    }
}

fn invalid(field: &str, e: impl Display) -> StoreError {
    ValidationErrors::single(field, e.to_string()).into()
}

fn flow_error(e: VisitError) -> StoreError {
    let field = match e {
        VisitError::Transition(_) | VisitError::KioskStep => "status",
        VisitError::Room(_) | VisitError::SameRoom | VisitError::UnknownRoom { .. } => "room_id",
    };
    invalid(field, e)
}

fn room_error(e: RoomError) -> StoreError {
    let field = match e {
        RoomError::Status { .. } => "status",
        RoomError::ChecklistIncomplete { .. } => "done",
        RoomError::ReasonRequired => "reason",
    };
    invalid(field, e)
}

fn board_counter(location_id: &str) -> String {
    format!("board:{location_id}")
}

/// `(by_kind, by_id, by_name)`.
fn by_columns(by: Option<&ChangedBy>) -> (Option<&'static str>, Option<String>, Option<String>) {
    match by {
        None => (None, None, None),
        Some(ChangedBy::User { id, name }) => (Some("user"), id.clone(), Some(name.clone())),
        Some(ChangedBy::Kiosk { device_id }) => (Some("kiosk"), Some(device_id.clone()), None),
    }
}

fn by_from_row(row: &AnyRow) -> Result<Option<ChangedBy>, sqlx::Error> {
    let kind: Option<String> = row.try_get("by_kind")?;
    let id: Option<String> = row.try_get("by_id")?;
    let name: Option<String> = row.try_get("by_name")?;
    match (kind.as_deref(), id, name) {
        (None, _, _) => Ok(None),
        (Some("user"), id, Some(name)) => Ok(Some(ChangedBy::User { id, name })),
        (Some("kiosk"), Some(device_id), _) => Ok(Some(ChangedBy::Kiosk { device_id })),
        (Some(other), _, _) => Err(decode_err("by_kind", format!("bad actor '{other}'"))),
    }
}

fn visit_status_col(row: &AnyRow, col: &str) -> Result<VisitStatus, sqlx::Error> {
    let text: String = row.try_get(col)?;
    VisitStatus::from_code(&text).ok_or_else(|| decode_err(col, format!("bad status '{text}'")))
}

fn appointment_status_col(row: &AnyRow, col: &str) -> Result<AppointmentStatus, sqlx::Error> {
    let text: String = row.try_get(col)?;
    AppointmentStatus::from_code(&text)
        .ok_or_else(|| decode_err(col, format!("bad status '{text}'")))
}

/// The stored visit in a row selecting `visit_status`, `visit_since_us`,
/// `by_*` and the visit's `room_id`; `None` when the appointment has none.
fn visit_from_row(row: &AnyRow, appointment_id: &str) -> Result<Option<Visit>, sqlx::Error> {
    if row.try_get::<Option<String>, _>("visit_status")?.is_none() {
        return Ok(None);
    }
    Ok(Some(Visit {
        appointment_id: appointment_id.to_string(),
        status: visit_status_col(row, "visit_status")?,
        since: ts_col(row, "visit_since_us")?,
        by: by_from_row(row)?,
        room_id: row.try_get("room_id")?,
    }))
}

/// The columns [`visit_from_row`] reads, from `visits v` and `room_states s`.
const VISIT_COLUMNS: &str = "v.status AS visit_status, v.since_us AS visit_since_us, \
    v.by_kind, v.by_id, v.by_name, s.room_id";

/// `(status, appointment_id, reason)`.
fn room_columns(status: &RoomStatus) -> (&'static str, Option<String>, Option<String>) {
    match status {
        RoomStatus::Occupied { appointment_id } => ("occupied", Some(appointment_id.clone()), None),
        RoomStatus::OutOfService { reason } => ("out_of_service", None, Some(reason.clone())),
        other => (other.code(), None, None),
    }
}

/// A room state from `room_status`, `occupant_id`, `reason`, `room_since_us`.
fn room_state_from_row(room_id: &str, row: &AnyRow) -> Result<RoomState, sqlx::Error> {
    let text: String = row.try_get("room_status")?;
    let occupant: Option<String> = row.try_get("occupant_id")?;
    let reason: Option<String> = row.try_get("reason")?;
    let status = match (text.as_str(), occupant, reason) {
        ("ready", None, None) => RoomStatus::Ready,
        ("occupied", Some(appointment_id), None) => RoomStatus::Occupied { appointment_id },
        ("needs_cleaning", None, None) => RoomStatus::NeedsCleaning,
        ("out_of_service", None, Some(reason)) => RoomStatus::OutOfService { reason },
        _ => return Err(decode_err("status", format!("bad room status '{text}'"))),
    };
    Ok(RoomState {
        room_id: room_id.to_string(),
        status,
        since: ts_col(row, "room_since_us")?,
    })
}

const ROOM_STATE_COLUMNS: &str = "s.status AS room_status, s.appointment_id AS occupant_id, \
    s.reason, s.since_us AS room_since_us";

/// The patient columns of `patients p` a board shows.
const PATIENT_COLUMNS: &str = "p.id AS patient_id, p.mrn, p.given, p.middle, p.family, \
    p.suffix, p.preferred_name, p.birth_date";

fn patient_from_row(row: &AnyRow) -> Result<BoardPatient, sqlx::Error> {
    let birth_date: String = row.try_get("birth_date")?;
    Ok(BoardPatient {
        id: row.try_get("patient_id")?,
        mrn: row.try_get("mrn")?,
        given: row.try_get("given")?,
        middle: row.try_get("middle")?,
        family: row.try_get("family")?,
        suffix: row.try_get("suffix")?,
        preferred_name: row.try_get("preferred_name")?,
        birth_date: birth_date
            .parse()
            .map_err(|e: jiff::Error| decode_err("birth_date", e.to_string()))?,
    })
}

fn event_from_row(row: &AnyRow) -> Result<VisitEvent, sqlx::Error> {
    Ok(VisitEvent {
        from: visit_status_col(row, "from_status")?,
        to: visit_status_col(row, "to_status")?,
        at: ts_col(row, "at_us")?,
        by: by_from_row(row)?.ok_or_else(|| decode_err("by_kind", "missing".into()))?,
        room_id: row.try_get("room_id")?,
        followed_appointment: row.try_get::<i64, _>("followed_appointment")? == 1,
    })
}

const RESTOCK_COLUMNS: &str = "t.id, t.room_id, t.shortfall_json, t.status, t.created_at_us, \
    t.created_by, t.updated_at_us, t.closed_at_us, t.closed_by";

fn restock_from_row(row: &AnyRow) -> Result<RestockTask, sqlx::Error> {
    Ok(RestockTask {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        shortfall: json_col(row, "shortfall_json")?,
        status: code_col(row, "status")?,
        created_at: ts_col(row, "created_at_us")?,
        created_by: row.try_get("created_by")?,
        updated_at: ts_col(row, "updated_at_us")?,
        closed_at: opt_ts_col(row, "closed_at_us")?,
        closed_by: row.try_get("closed_by")?,
    })
}

fn visit_entry(actor: &Actor, appointment: &Appointment, e: &VisitEvent) -> AuditEntry {
    let mut detail = format!("status {} -> {}", e.from.code(), e.to.code());
    if let Some(room) = &e.room_id {
        detail.push_str(&format!(" (room {room})"));
    }
    if e.followed_appointment {
        detail.push_str(" (following the appointment)");
    }
    actor
        .entry(Action::Update, "Visit", &appointment.id)
        .patient(&appointment.patient_id)
        .detail(detail)
}

/// A visit with its appointment and the rooms it touches, all locked.
struct Loaded {
    appointment: Appointment,
    visit: Visit,
    /// Events in the stored history.
    version: i64,
    /// Sorted by id.
    rooms: Vec<RoomState>,
}

impl WriteTx {
    /// A live directory room, else an error naming `room_id`.
    async fn live_room(&mut self, room_id: &str) -> Result<Room> {
        match self.read_current::<Room>(room_id).await {
            Ok(room) => Ok(room.value),
            Err(StoreError::NotFound | StoreError::Gone) => {
                Err(invalid("room_id", format!("no such room: {room_id}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Locks a room's state row and reads it. On first use the row is
    /// created ready since the room was last changed (or `now`, if the
    /// server that changed it had a clock ahead of ours).
    async fn lock_room(&mut self, room_id: &str, now: Timestamp) -> Result<RoomState> {
        sqlx::query(
            "INSERT INTO room_states (org_id, room_id, status, since_us) \
             SELECT org_id, id, 'ready', CASE WHEN updated_at_us < $3 THEN updated_at_us ELSE $3 END \
             FROM rooms WHERE org_id = $1 AND id = $2 \
             ON CONFLICT (org_id, room_id) DO UPDATE SET since_us = room_states.since_us",
        )
        .bind(&self.org_id)
        .bind(room_id)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(sql(format!(
            "SELECT {ROOM_STATE_COLUMNS} FROM room_states s WHERE s.org_id = $1 AND s.room_id = $2"
        )))
        .bind(&self.org_id)
        .bind(room_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| invalid("room_id", format!("no such room: {room_id}")))?;
        Ok(room_state_from_row(room_id, &row)?)
    }

    /// Locks and reads the visit of `appointment_id` with the rooms it is
    /// in and asks for (`room`, which must be at the appointment's
    /// location). A visit is created from its appointment when `create`
    /// says so; otherwise an appointment without one gives `None`.
    async fn load_visit(
        &mut self,
        appointment_id: &str,
        room: Option<&str>,
        create: bool,
        now: Timestamp,
    ) -> Result<Option<Loaded>> {
        let locked = sqlx::query(
            "UPDATE appointments SET version = version WHERE org_id = $1 AND id = $2 AND deleted = 0",
        )
        .bind(&self.org_id)
        .bind(appointment_id)
        .execute(&mut *self.tx)
        .await?;
        if locked.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        let appointment = self
            .read_current::<AppointmentRecord>(appointment_id)
            .await?
            .value
            .appointment;
        if create
            && let Some(v) = Visit::for_appointment(
                appointment_id,
                appointment.status,
                appointment.status_changed_at,
            )
        {
            sqlx::query(
                "INSERT INTO visits (org_id, appointment_id, status, since_us, version) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (org_id, appointment_id) DO NOTHING",
            )
            .bind(&self.org_id)
            .bind(appointment_id)
            .bind(v.status.code())
            .bind(us(v.since))
            .execute(&mut *self.tx)
            .await?;
        }
        let locked = sqlx::query(
            "UPDATE visits SET version = version WHERE org_id = $1 AND appointment_id = $2",
        )
        .bind(&self.org_id)
        .bind(appointment_id)
        .execute(&mut *self.tx)
        .await?;
        if locked.rows_affected() != 1 {
            return match create {
                true => Err(invalid(
                    "status",
                    format!(
                        "the appointment is {}: it is not on the board",
                        appointment.status
                    ),
                )),
                false => Ok(None),
            };
        }
        let row = sqlx::query(sql(format!(
            "SELECT {VISIT_COLUMNS}, v.version FROM visits v \
             LEFT JOIN room_states s ON s.org_id = v.org_id AND s.appointment_id = v.appointment_id \
             WHERE v.org_id = $1 AND v.appointment_id = $2"
        )))
        .bind(&self.org_id)
        .bind(appointment_id)
        .fetch_one(&mut *self.tx)
        .await?;
        let visit =
            visit_from_row(&row, appointment_id)?.ok_or_else(|| corrupt("visit", "no status"))?;
        let version: i64 = row.try_get("version")?;
        if let Some(id) = room {
            let wanted = self.live_room(id).await?;
            if wanted.location_id != appointment.location_id {
                return Err(invalid("room_id", "the room is at another location"));
            }
        }
        let mut ids: Vec<&str> = visit.room_id.as_deref().into_iter().chain(room).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rooms = Vec::with_capacity(ids.len());
        for id in ids {
            rooms.push(self.lock_room(id, now).await?);
        }
        Ok(Some(Loaded {
            appointment,
            visit,
            version,
            rooms,
        }))
    }

    /// Catches the loaded visit up with its appointment (`Visit::follow`),
    /// naming who changed the appointment as its history does.
    async fn follow_loaded(&mut self, l: &mut Loaded) -> Result<Option<VisitEvent>> {
        if l.visit.status_following(l.appointment.status).is_none() {
            return Ok(None);
        }
        let (name,): (String,) = sqlx::query_as(
            "SELECT changed_by FROM record_history WHERE org_id = $1 AND record_type = $2 \
             AND record_id = $3 ORDER BY version DESC LIMIT 1",
        )
        .bind(&self.org_id)
        .bind(AppointmentRecord::KIND)
        .bind(&l.appointment.id)
        .fetch_one(&mut *self.tx)
        .await?;
        let by = ChangedBy::User { id: None, name };
        let (status, at) = (l.appointment.status, l.appointment.status_changed_at);
        l.visit
            .follow(status, at, by, &mut l.rooms)
            .map_err(flow_error)
    }

    /// Writes the rooms whose state changed and returns them.
    async fn write_rooms(
        &mut self,
        before: &[RoomState],
        after: &[RoomState],
    ) -> Result<Vec<RoomState>> {
        let mut changed: Vec<RoomState> = after
            .iter()
            .filter(|r| !before.contains(r))
            .cloned()
            .collect();
        // Leave before entering: the index lets a visit hold one room at a time.
        changed.sort_by_key(|r| matches!(r.status, RoomStatus::Occupied { .. }));
        for r in &changed {
            let (status, appointment_id, reason) = room_columns(&r.status);
            sqlx::query(
                "UPDATE room_states SET status = $3, appointment_id = $4, reason = $5, since_us = $6 \
                 WHERE org_id = $1 AND room_id = $2",
            )
            .bind(&self.org_id)
            .bind(&r.room_id)
            .bind(status)
            .bind(appointment_id)
            .bind(reason)
            .bind(us(r.since))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(changed)
    }

    /// Appends a change to its location's board stream under the next
    /// number; the counter row stays locked until commit, so numbers
    /// become visible in order and without gaps.
    async fn append_board_event(
        &mut self,
        location_id: &str,
        change: &BoardChange,
        at: Timestamp,
    ) -> Result<i64> {
        let seq = self.next_counter(&board_counter(location_id)).await?;
        let payload = serde_json::to_string(change).map_err(|e| corrupt("board event", e))?;
        sqlx::query(
            "INSERT INTO board_events (org_id, location_id, seq, at_us, payload) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&self.org_id)
        .bind(location_id)
        .bind(seq)
        .bind(us(at))
        .bind(payload)
        .execute(&mut *self.tx)
        .await?;
        Ok(seq)
    }

    /// Stores the loaded visit after `events` (its state, history, the rooms
    /// that changed since `before`) and appends the board event. Returns
    /// the event's number and the changed rooms.
    async fn save_visit(
        &mut self,
        l: &Loaded,
        before: &[RoomState],
        events: &[VisitEvent],
        now: Timestamp,
    ) -> Result<(i64, Vec<RoomState>)> {
        let v = &l.visit;
        let (kind, id, name) = by_columns(v.by.as_ref());
        sqlx::query(
            "UPDATE visits SET status = $3, since_us = $4, by_kind = $5, by_id = $6, by_name = $7, \
             version = $8 WHERE org_id = $1 AND appointment_id = $2",
        )
        .bind(&self.org_id)
        .bind(&v.appointment_id)
        .bind(v.status.code())
        .bind(us(v.since))
        .bind(kind)
        .bind(id)
        .bind(name)
        .bind(l.version + events.len() as i64)
        .execute(&mut *self.tx)
        .await?;
        for (seq, e) in (l.version + 1..).zip(events) {
            let (kind, id, name) = by_columns(Some(&e.by));
            sqlx::query(
                "INSERT INTO visit_events (org_id, appointment_id, seq, at_us, from_status, \
                 to_status, room_id, by_kind, by_id, by_name, followed_appointment) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&self.org_id)
            .bind(&v.appointment_id)
            .bind(seq)
            .bind(us(e.at))
            .bind(e.from.code())
            .bind(e.to.code())
            .bind(e.room_id.clone())
            .bind(kind)
            .bind(id)
            .bind(name)
            .bind(i64::from(e.followed_appointment))
            .execute(&mut *self.tx)
            .await?;
        }
        let rooms = self.write_rooms(before, &l.rooms).await?;
        let change = BoardChange {
            visits: vec![v.clone()],
            rooms: rooms.clone(),
        };
        let seq = self
            .append_board_event(&l.appointment.location_id, &change, now)
            .await?;
        Ok((seq, rooms))
    }

    /// Takes a step of the visit of `appointment_id` (created from its
    /// appointment on the first step): the domain's rules decide (a refusal
    /// is [`StoreError::Invalid`] naming `status` or `room_id`); the history,
    /// the rooms, the board event, the appointment's status (with its own
    /// checks, claims and waitlist offer) and the audit events are written
    /// in this transaction.
    pub async fn visit_step(
        &mut self,
        appointment_id: &str,
        step: &VisitStep,
        by: &FlowActor,
        now: Timestamp,
    ) -> Result<VisitChange> {
        let mut l = self
            .load_visit(appointment_id, step.room_id(), true, now)
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = l.rooms.clone();
        let mut events: Vec<VisitEvent> = self.follow_loaded(&mut l).await?.into_iter().collect();
        let event = l
            .visit
            .apply(step, now, by.changed_by(), &mut l.rooms)
            .map_err(flow_error)?;
        events.push(event);
        let (board_seq, rooms) = self.save_visit(&l, &before, &events, now).await?;
        let actor = by.actor();
        let mut waitlist_task = None;
        if let Some(to) = l.visit.status.appointment_status()
            && to != l.appointment.status
        {
            let change = self
                .set_appointment_status(appointment_id, to, step.cancel_reason(), None, &actor, now)
                .await?;
            waitlist_task = change.waitlist_task;
        }
        let entries = events
            .iter()
            .map(|e| visit_entry(&actor, &l.appointment, e))
            .collect();
        self.audit_many(entries).await?;
        Ok(VisitChange {
            visit: l.visit,
            events,
            rooms,
            board_seq,
            waitlist_task,
        })
    }

    /// [`WriteTx::follow_appointment`] without its audit entry, which it
    /// returns for the caller to append last.
    async fn catch_up(
        &mut self,
        appointment_id: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<(VisitChange, AuditEntry)>> {
        let Some(mut l) = self.load_visit(appointment_id, None, false, now).await? else {
            return Ok(None);
        };
        let before = l.rooms.clone();
        let Some(event) = self.follow_loaded(&mut l).await? else {
            return Ok(None);
        };
        let (board_seq, rooms) = self
            .save_visit(&l, &before, std::slice::from_ref(&event), now)
            .await?;
        let entry = visit_entry(actor, &l.appointment, &event);
        let change = VisitChange {
            visit: l.visit,
            events: vec![event],
            rooms,
            board_seq,
            waitlist_task: None,
        };
        Ok(Some((change, entry)))
    }

    /// Brings the visit of `appointment_id` in line with its appointment
    /// after the appointment's status was changed outside the visit flow
    /// (the schedule, FHIR), freeing its room. Nothing happens when the
    /// appointment has no visit or they agree. Call it in the
    /// transaction that changed the appointment, so boards see it at once;
    /// otherwise the visit catches up at its next step.
    pub async fn follow_appointment(
        &mut self,
        appointment_id: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<VisitChange>> {
        let Some((change, entry)) = self.catch_up(appointment_id, actor, now).await? else {
            return Ok(None);
        };
        self.audit(entry).await?;
        Ok(Some(change))
    }

    /// The checklist of a room kind (empty when none is configured).
    async fn checklist(&mut self, kind: RoomKind) -> Result<RoomChecklist> {
        match self.read_current::<RoomChecklist>(&code(&kind)).await {
            Ok(c) => Ok(c.value),
            Err(StoreError::NotFound | StoreError::Gone) => Ok(RoomChecklist::empty(kind)),
            Err(e) => Err(e),
        }
    }

    /// Cleans a room, or takes it out of or back into service (see
    /// `RoomState::apply`; a refusal is [`StoreError::Invalid`] naming
    /// `status`, `done` or `reason`). A room still held by a visit that
    /// moved on without it (its appointment changed elsewhere) is freed
    /// first.
    pub async fn change_room(
        &mut self,
        room_id: &str,
        change: &RoomChange,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<RoomState> {
        let room = self.live_room(room_id).await?;
        let occupant: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT appointment_id FROM room_states WHERE org_id = $1 AND room_id = $2",
        )
        .bind(&self.org_id)
        .bind(room_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let mut entries = Vec::new();
        if let Some((Some(appointment_id),)) = occupant
            && let Some((_, entry)) = self.catch_up(&appointment_id, actor, now).await?
        {
            entries.push(entry);
        }
        let mut state = self.lock_room(room_id, now).await?;
        let before = state.clone();
        let checklist = self.checklist(room.kind).await?;
        state.apply(change, &checklist, now).map_err(room_error)?;
        let rooms = self
            .write_rooms(std::slice::from_ref(&before), std::slice::from_ref(&state))
            .await?;
        let board = BoardChange {
            visits: vec![],
            rooms,
        };
        self.append_board_event(&room.location_id, &board, now)
            .await?;
        let mut detail = format!("{} -> {}", before.status.code(), state.status.code());
        match change {
            RoomChange::Cleaned { done } if !done.is_empty() => {
                detail.push_str(&format!(" (cleaned: {})", done.join(", ")));
            }
            RoomChange::OutOfService { reason } => detail.push_str(&format!(" ({reason})")),
            _ => {}
        }
        entries.push(actor.entry(Action::Update, "Room", room_id).detail(detail));
        self.audit_many(entries).await?;
        Ok(state)
    }

    /// Records a count of a room's supplies against its kind's par levels
    /// (every listed supply counted, errors name `counts`). Supplies below
    /// par open the room's restock task, or update the open one; a count
    /// with everything at par closes it as done. `None` when everything is
    /// at par and no task was open.
    pub async fn count_supplies(
        &mut self,
        room_id: &str,
        counts: &[SupplyCount],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<RestockTask>> {
        let room = self.live_room(room_id).await?;
        // Counts of one room take turns, so it never has two open tasks.
        let state = self.lock_room(room_id, now).await?;
        let shortfall = self.checklist(room.kind).await?.shortfall(counts)?;
        let open: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM restock_tasks WHERE org_id = $1 AND room_id = $2 AND status = 'open'",
        )
        .bind(&self.org_id)
        .bind(room_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let json_text = serde_json::to_string(&shortfall).map_err(|e| corrupt("shortfall", e))?;
        let (id, action) = match (open, shortfall.is_empty()) {
            (None, true) => return Ok(None),
            (None, false) => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO restock_tasks (org_id, id, room_id, shortfall_json, status, \
                     created_at_us, created_by, updated_at_us) \
                     VALUES ($1, $2, $3, $4, 'open', $5, $6, $5)",
                )
                .bind(&self.org_id)
                .bind(&id)
                .bind(room_id)
                .bind(json_text)
                .bind(us(now))
                .bind(&actor.actor_name)
                .execute(&mut *self.tx)
                .await?;
                (id, Action::Create)
            }
            (Some((id,)), false) => {
                sqlx::query(
                    "UPDATE restock_tasks SET shortfall_json = $3, updated_at_us = $4 \
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(&self.org_id)
                .bind(&id)
                .bind(json_text)
                .bind(us(now))
                .execute(&mut *self.tx)
                .await?;
                (id, Action::Update)
            }
            (Some((id,)), true) => {
                self.close_task_row(&id, TaskStatus::Done, &actor.actor_name, now)
                    .await?;
                (id, Action::Update)
            }
        };
        let short: Vec<String> = shortfall
            .iter()
            .map(|s| format!("{} {}", s.needed, s.item))
            .collect();
        let detail = match short.is_empty() {
            true => format!("room {room_id}: all supplies at par"),
            false => format!("room {room_id}: short {}", short.join(", ")),
        };
        self.restock_changed(&room.location_id, state, now).await?;
        self.audit(actor.entry(action, "RestockTask", &id).detail(detail))
            .await?;
        Ok(Some(self.restock_task(&id).await?))
    }

    /// A room's restock task opened, changed or closed: open rooms boards
    /// of its location learn it from the board stream (the room's state,
    /// unchanged, in the event), as they do a room's other changes.
    async fn restock_changed(
        &mut self,
        location_id: &str,
        room: RoomState,
        now: Timestamp,
    ) -> Result<()> {
        let change = BoardChange {
            visits: vec![],
            rooms: vec![room],
        };
        self.append_board_event(location_id, &change, now).await?;
        Ok(())
    }

    async fn restock_task(&mut self, id: &str) -> Result<RestockTask> {
        let row = sqlx::query(sql(format!(
            "SELECT {RESTOCK_COLUMNS} FROM restock_tasks t WHERE t.org_id = $1 AND t.id = $2"
        )))
        .bind(&self.org_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(restock_from_row(&row)?)
    }

    async fn close_task_row(
        &mut self,
        id: &str,
        status: TaskStatus,
        by: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE restock_tasks SET status = $3, closed_at_us = $4, closed_by = $5, \
             updated_at_us = $4 WHERE org_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind(&self.org_id)
        .bind(id)
        .bind(code(&status))
        .bind(us(now))
        .bind(by)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Closes an open restock task as done or dismissed.
    pub async fn close_restock_task(
        &mut self,
        id: &str,
        status: TaskStatus,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<RestockTask> {
        if status == TaskStatus::Open {
            return Err(invalid("status", "a task is closed as done or dismissed"));
        }
        if !self
            .close_task_row(id, status, &actor.actor_name, now)
            .await?
        {
            let task = self.restock_task(id).await?;
            return Err(StoreError::Conflict(format!(
                "the restock task is already {}",
                code(&task.status)
            )));
        }
        let task = self.restock_task(id).await?;
        // A room taken out of the directory is on no board.
        match self.read_current::<Room>(&task.room_id).await {
            Ok(room) => {
                let state = self.lock_room(&task.room_id, now).await?;
                self.restock_changed(&room.value.location_id, state, now)
                    .await?;
            }
            Err(StoreError::NotFound | StoreError::Gone) => {}
            Err(e) => return Err(e),
        }
        self.audit(
            actor
                .entry(Action::Update, "RestockTask", id)
                .detail(code(&status)),
        )
        .await?;
        Ok(task)
    }

    /// Saves the checklist of its room kind (validated, errors name the
    /// entry), with history; `if_version` guards an update.
    pub async fn save_room_checklist(
        &mut self,
        checklist: RoomChecklist,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<RoomChecklist>> {
        let checklist = checklist.validate()?;
        let id = code(&checklist.kind);
        let stored = match self.read_current::<RoomChecklist>(&id).await {
            Ok(_) => {
                self.update(&id, &checklist, if_version, &actor.actor_name)
                    .await?
            }
            Err(StoreError::NotFound) => self.create(&id, &checklist, &actor.actor_name).await?,
            Err(e) => return Err(e),
        };
        self.audit(actor.entry(Action::Update, RoomChecklist::KIND, &id))
            .await?;
        Ok(stored)
    }
}

/// The board's appointment statuses (those with a visit status).
fn board_statuses() -> String {
    let codes: Vec<String> = AppointmentStatus::ALL
        .into_iter()
        .filter(|s| VisitStatus::from_appointment(*s).is_some())
        .map(|s| format!("'{}'", s.code()))
        .collect();
    codes.join(", ")
}

impl Db {
    /// A live location's time zone and the last number of its board stream.
    async fn board_head(&self, org_id: &str, location_id: &str) -> Result<(TimeZone, i64)> {
        let (zone, seq): (String, i64) = sqlx::query_as(
            "SELECT l.timezone, COALESCE((SELECT c.value FROM org_counters c \
             WHERE c.org_id = l.org_id AND c.name = $3), 0) \
             FROM locations l WHERE l.org_id = $1 AND l.id = $2 AND l.deleted = 0",
        )
        .bind(org_id)
        .bind(location_id)
        .bind(board_counter(location_id))
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        let tz = TimeZone::get(&zone).map_err(|e| corrupt("location time zone", e))?;
        Ok((tz, seq))
    }

    /// The last number of a live location's board stream.
    pub async fn board_seq(&self, org_id: &str, location_id: &str) -> Result<i64> {
        Ok(self.board_head(org_id, location_id).await?.1)
    }

    /// Today's board: every appointment of a location starting on `date`
    /// (local), with its patient and its visit as it stands (a visit not
    /// started yet is its appointment's status; one whose appointment was
    /// changed elsewhere shows the appointment's, see `Visit::as_board_shows`).
    pub async fn day_board(&self, org_id: &str, location_id: &str, date: Date) -> Result<DayBoard> {
        let (tz, seq) = self.board_head(org_id, location_id).await?;
        let bad_date = |e: jiff::Error| invalid("date", e);
        let start = date.to_zoned(tz.clone()).map_err(bad_date)?.timestamp();
        let end = date
            .tomorrow()
            .and_then(|d| d.to_zoned(tz.clone()))
            .map_err(bad_date)?
            .timestamp();
        let rows = sqlx::query(sql(format!(
            "SELECT a.id, a.practitioner_id, a.appointment_type_id, a.start_us, a.end_us, \
             a.status, a.status_changed_at_us, {PATIENT_COLUMNS}, {VISIT_COLUMNS}, \
             CASE WHEN k.appointment_id IS NULL THEN 0 ELSE 1 END AS consent_signed \
             FROM appointments a \
             JOIN patients p ON p.org_id = a.org_id AND p.id = a.patient_id \
             LEFT JOIN visits v ON v.org_id = a.org_id AND v.appointment_id = a.id \
             LEFT JOIN room_states s ON s.org_id = a.org_id AND s.appointment_id = a.id \
             LEFT JOIN kiosk_checkins k ON k.org_id = a.org_id AND k.appointment_id = a.id \
             WHERE a.org_id = $1 AND a.location_id = $2 AND a.deleted = 0 \
             AND a.start_us >= $3 AND a.start_us < $4 AND a.status IN ({}) \
             ORDER BY a.start_us, a.id",
            board_statuses()
        )))
        .bind(org_id)
        .bind(location_id)
        .bind(us(start))
        .bind(us(end))
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let visits = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let status = appointment_status_col(row, "status")?;
                let changed_at = ts_col(row, "status_changed_at_us")?;
                let visit = match visit_from_row(row, &id)? {
                    Some(v) => v.as_board_shows(status, changed_at),
                    None => Visit::for_appointment(&id, status, changed_at)
                        .ok_or_else(|| corrupt("board", "appointment not on the board"))?,
                };
                Ok(BoardVisit {
                    patient: patient_from_row(row)?,
                    practitioner_id: row.try_get("practitioner_id")?,
                    appointment_type_id: row.try_get("appointment_type_id")?,
                    start: ts_col(row, "start_us")?,
                    end: ts_col(row, "end_us")?,
                    appointment_status: status,
                    visit,
                    consent_signed: row.try_get::<i64, _>("consent_signed")? == 1,
                })
            })
            .collect::<Result<_>>()?;
        Ok(DayBoard {
            timezone: tz,
            seq,
            visits,
        })
    }

    /// The rooms board of a location: each live room's state (a room never
    /// used is ready since it was set up) and the patient in it.
    pub async fn room_board(&self, org_id: &str, location_id: &str) -> Result<RoomBoard> {
        let (_, seq) = self.board_head(org_id, location_id).await?;
        let rows = sqlx::query(sql(format!(
            "SELECT r.id, r.name, r.kind, r.updated_at_us, {ROOM_STATE_COLUMNS}, \
             a.status, a.status_changed_at_us, {PATIENT_COLUMNS}, {VISIT_COLUMNS} \
             FROM rooms r \
             LEFT JOIN room_states s ON s.org_id = r.org_id AND s.room_id = r.id \
             LEFT JOIN visits v ON v.org_id = s.org_id AND v.appointment_id = s.appointment_id \
             LEFT JOIN appointments a ON a.org_id = s.org_id AND a.id = s.appointment_id \
             LEFT JOIN patients p ON p.org_id = a.org_id AND p.id = a.patient_id \
             WHERE r.org_id = $1 AND r.location_id = $2 AND r.deleted = 0 \
             ORDER BY r.name, r.id"
        )))
        .bind(org_id)
        .bind(location_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let rooms = rows
            .iter()
            .map(|row| {
                let room_id: String = row.try_get("id")?;
                let mut state = match row.try_get::<Option<String>, _>("room_status")? {
                    None => RoomState::ready(&room_id, ts_col(row, "updated_at_us")?),
                    Some(_) => room_state_from_row(&room_id, row)?,
                };
                let mut patient = None;
                if let RoomStatus::Occupied { appointment_id } = &state.status {
                    let occupant = visit_from_row(row, appointment_id)?
                        .ok_or_else(|| corrupt("room", "occupied without a visit"))?
                        .as_board_shows(
                            appointment_status_col(row, "status")?,
                            ts_col(row, "status_changed_at_us")?,
                        );
                    state = state.as_board_shows(&occupant);
                    if occupant.room_id.is_some() {
                        patient = Some(patient_from_row(row)?);
                    }
                }
                Ok(BoardRoom {
                    name: row.try_get("name")?,
                    kind: code_col(row, "kind")?,
                    room_id,
                    state,
                    patient,
                })
            })
            .collect::<Result<_>>()?;
        Ok(RoomBoard { seq, rooms })
    }

    /// The board events of a location numbered after `after`, in order, at
    /// most `limit`.
    pub async fn board_events_since(
        &self,
        org_id: &str,
        location_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<BoardEvent>> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, at_us, payload FROM board_events \
             WHERE org_id = $1 AND location_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(org_id)
        .bind(location_id)
        .bind(after)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.into_iter()
            .map(|(seq, at, payload)| {
                Ok(BoardEvent {
                    seq,
                    at: Timestamp::from_microsecond(at).map_err(|e| corrupt("board event", e))?,
                    change: serde_json::from_str(&payload)
                        .map_err(|e| corrupt("board event", e))?,
                })
            })
            .collect()
    }

    /// The history of a visit, oldest first (empty when it has none).
    pub async fn visit_history(
        &self,
        org_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<VisitEvent>> {
        let rows = sqlx::query(
            "SELECT from_status, to_status, at_us, room_id, by_kind, by_id, by_name, \
             followed_appointment FROM visit_events \
             WHERE org_id = $1 AND appointment_id = $2 ORDER BY seq",
        )
        .bind(org_id)
        .bind(appointment_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    /// The stored checklist of a room kind, if one was saved.
    pub async fn room_checklist(
        &self,
        org_id: &str,
        kind: RoomKind,
    ) -> Result<Option<Versioned<RoomChecklist>>> {
        match self.get::<RoomChecklist>(org_id, &code(&kind)).await {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Restock tasks of a location's rooms with `status`, oldest first.
    pub async fn restock_tasks(
        &self,
        org_id: &str,
        location_id: &str,
        status: TaskStatus,
    ) -> Result<Vec<RestockTask>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {RESTOCK_COLUMNS} FROM restock_tasks t \
             JOIN rooms r ON r.org_id = t.org_id AND r.id = t.room_id \
             WHERE t.org_id = $1 AND r.location_id = $2 AND t.status = $3 \
             ORDER BY t.created_at_us, t.id LIMIT 1000"
        )))
        .bind(org_id)
        .bind(location_id)
        .bind(code(&status))
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .iter()
            .map(restock_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Visits, by their appointment's start, and the number of matches:
    /// every appointment on the board (see [`Db::day_board`]) with its
    /// visit as boards show it and its history, oldest first (empty while
    /// nobody moved it through the flow). `query` filters the appointments
    /// (its statuses are appointment statuses), `appointment_id` names one,
    /// `statuses` keeps visits whose status as boards show it is one of
    /// these (empty: any), `room_id` those that were roomed there.
    pub async fn visits(
        &self,
        org_id: &str,
        query: &AppointmentQuery,
        appointment_id: Option<&str>,
        statuses: &[VisitStatus],
        room_id: Option<&str>,
        page: Page,
    ) -> Result<(
        Vec<(Versioned<AppointmentRecord>, Visit, Vec<VisitEvent>)>,
        i64,
    )> {
        let mut binds = vec![Val::from(org_id)];
        let mut clauses = vec![
            "a.org_id = $1".to_string(),
            "a.deleted = 0".to_string(),
            format!("a.status IN ({})", board_statuses()),
        ];
        for (col, v) in [
            ("a.id", appointment_id),
            ("a.patient_id", query.patient_id.as_deref()),
            ("a.practitioner_id", query.practitioner_id.as_deref()),
            ("a.location_id", query.location_id.as_deref()),
        ] {
            if let Some(v) = v {
                binds.push(Val::from(v));
                clauses.push(format!("{col} = ${}", binds.len()));
            }
        }
        for (op, at) in [(">=", query.from), ("<", query.until)] {
            if let Some(at) = at {
                binds.push(int(us(at)));
                clauses.push(format!("a.start_us {op} ${}", binds.len()));
            }
        }
        if !query.statuses.is_empty() {
            let codes: Vec<String> = query.statuses.iter().map(|s| s.code().into()).collect();
            clauses.push(format!("a.status IN ({})", in_list(&mut binds, &codes)));
        }
        if !statuses.is_empty() {
            let codes: Vec<String> = statuses.iter().map(|s| s.code().into()).collect();
            let list = in_list(&mut binds, &codes);
            clauses.push(format!("({}) IN ({list})", shown_status_sql()));
        }
        if let Some(room) = room_id {
            binds.push(Val::from(room));
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM visit_events e WHERE e.org_id = a.org_id \
                 AND e.appointment_id = a.id AND e.room_id = ${})",
                binds.len()
            ));
        }
        let where_sql = clauses.join(" AND ");
        let joined = "appointments a \
            LEFT JOIN visits v ON v.org_id = a.org_id AND v.appointment_id = a.id";
        let total: i64 = bind_vals(
            sqlx::query(sql(format!(
                "SELECT COUNT(*) AS n FROM {joined} WHERE {where_sql}"
            ))),
            &binds,
        )
        .fetch_one(&mut *self.reader().await?)
        .await?
        .try_get("n")?;
        if page.count <= 0 {
            return Ok((Vec::new(), total));
        }
        // Qualified: the visit's columns share some names.
        let columns: Vec<String> = ["id", "version", "updated_at_us"]
            .iter()
            .chain(AppointmentRecord::COLUMNS)
            .map(|c| format!("a.{c}"))
            .collect();
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "SELECT {}, {VISIT_COLUMNS} FROM {joined} \
                 LEFT JOIN room_states s ON s.org_id = a.org_id AND s.appointment_id = a.id \
                 WHERE {where_sql} ORDER BY a.start_us, a.id LIMIT {} OFFSET {}",
                columns.join(", "),
                page.count.clamp(0, 1000),
                page.offset.max(0)
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = versioned::<AppointmentRecord>(row)?;
            let a = &record.value.appointment;
            let visit = match visit_from_row(row, &a.id)? {
                Some(v) => v.as_board_shows(a.status, a.status_changed_at),
                None => Visit::for_appointment(&a.id, a.status, a.status_changed_at)
                    .ok_or_else(|| corrupt("visit", "appointment not on the board"))?,
            };
            found.push((record, visit, Vec::new()));
        }
        if found.is_empty() {
            return Ok((found, total));
        }
        // The page's histories in one statement.
        let mut binds = vec![Val::from(org_id)];
        let ids: Vec<String> = found.iter().map(|(r, _, _)| r.id.clone()).collect();
        let list = in_list(&mut binds, &ids);
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "SELECT appointment_id, from_status, to_status, at_us, room_id, by_kind, by_id, \
                 by_name, followed_appointment FROM visit_events \
                 WHERE org_id = $1 AND appointment_id IN ({list}) ORDER BY appointment_id, seq"
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        for row in &rows {
            let id: String = row.try_get("appointment_id")?;
            if let Some((_, _, events)) = found.iter_mut().find(|(r, _, _)| r.id == id) {
                events.push(event_from_row(row)?);
            }
        }
        Ok((found, total))
    }

    /// Live rooms with their state as boards show it (a room never used is
    /// ready since it was set up), by name: every room of the organization,
    /// or of one location, or one room.
    pub async fn rooms_with_states(
        &self,
        org_id: &str,
        location_id: Option<&str>,
        room_id: Option<&str>,
    ) -> Result<Vec<(Versioned<Room>, RoomState)>> {
        let mut binds = vec![Val::from(org_id)];
        let mut clauses = vec!["r.org_id = $1".to_string(), "r.deleted = 0".to_string()];
        for (col, v) in [("r.location_id", location_id), ("r.id", room_id)] {
            if let Some(v) = v {
                binds.push(Val::from(v));
                clauses.push(format!("{col} = ${}", binds.len()));
            }
        }
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "SELECT r.id, r.version, r.updated_at_us, r.location_id, r.name, r.kind, \
                 {ROOM_STATE_COLUMNS}, a.status, a.status_changed_at_us, {VISIT_COLUMNS} \
                 FROM rooms r \
                 LEFT JOIN room_states s ON s.org_id = r.org_id AND s.room_id = r.id \
                 LEFT JOIN visits v ON v.org_id = s.org_id AND v.appointment_id = s.appointment_id \
                 LEFT JOIN appointments a ON a.org_id = s.org_id AND a.id = s.appointment_id \
                 WHERE {} ORDER BY r.name, r.id",
                clauses.join(" AND ")
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter()
            .map(|row| {
                let room = versioned::<Room>(row)?;
                let mut state = match row.try_get::<Option<String>, _>("room_status")? {
                    None => RoomState::ready(&room.id, ts_col(row, "updated_at_us")?),
                    Some(_) => room_state_from_row(&room.id, row)?,
                };
                if let RoomStatus::Occupied { appointment_id } = &state.status {
                    let occupant = visit_from_row(row, appointment_id)?
                        .ok_or_else(|| corrupt("room", "occupied without a visit"))?
                        .as_board_shows(
                            appointment_status_col(row, "status")?,
                            ts_col(row, "status_changed_at_us")?,
                        );
                    state = state.as_board_shows(&occupant);
                }
                Ok((room, state))
            })
            .collect()
    }
}

/// SQL for the status a board shows for the visit of `appointments a`
/// (with `visits v` joined), as `Visit::as_board_shows` decides it: the
/// appointment's own while no visit was started, else the visit's, unless
/// the visit is not over and its appointment was changed elsewhere since.
/// Written out from the domain's mappings, so the two cannot drift.
fn shown_status_sql() -> String {
    let case = |col: &str, pairs: Vec<(&str, &str)>, otherwise: &str| {
        let arms: Vec<String> = pairs
            .iter()
            .map(|(from, to)| format!("WHEN '{from}' THEN '{to}'"))
            .collect();
        format!("CASE {col} {} ELSE {otherwise} END", arms.join(" "))
    };
    let of_appointment = case(
        "a.status",
        AppointmentStatus::ALL
            .into_iter()
            .filter_map(|a| Some((a.code(), VisitStatus::from_appointment(a)?.code())))
            .collect(),
        &format!("'{}'", VisitStatus::Cancelled.code()),
    );
    let appointment_of_visit = case(
        "v.status",
        VisitStatus::ALL
            .into_iter()
            .filter_map(|s| Some((s.code(), s.appointment_status()?.code())))
            .collect(),
        "NULL",
    );
    let finals: Vec<String> = VisitStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{}'", s.code()))
        .collect();
    format!(
        "CASE WHEN v.status IS NULL OR (v.status NOT IN ({}) AND {appointment_of_visit} <> a.status) \
         THEN {of_appointment} ELSE v.status END",
        finals.join(", ")
    )
}
