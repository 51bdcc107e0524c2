//! Storage for scheduling (`carefront_domain::scheduling`): the schedule's
//! configuration as versioned [`Record`]s, appointments with history, and the
//! hot paths (claims, holds, slot loading, booking) as hand-written SQL.
//!
//! * **Configuration**: appointment types, resources (directory rooms and
//!   equipment), opening hours, templates and exceptions are `Record`s
//!   validated by the domain (errors name the field); see `config.rs`.
//! * **Slots**: [`Db::slot_input`] loads exactly the domain's
//!   [`SlotInput`](carefront_domain::scheduling::SlotInput) (the type,
//!   every location's zone and hours, providers with the specialties of their
//!   PractitionerRoles, templates, exceptions, resources, bookings and live
//!   holds in range); the domain computes slots and evaluates bookings.
//! * **Claims** (`claims.rs`): the database's no-double-booking rule. A
//!   booking inserts one `appointment_claims` row per (provider or resource,
//!   5-minute granule, seat); the primary key refuses a second owner of a
//!   seat on both databases, whatever several servers race to do, and a
//!   booking that finds no free seat fails with [`StoreError::Conflict`]
//!   naming the slot.
//! * **Booking** (`booking.rs`): book, hold, confirm, reschedule, cancel and
//!   every status change run in one transaction each (idempotency key,
//!   claims, appointment row and history, waitlist task, audit event last).
//!   Each `WriteTx` method here appends its own audit event as its last
//!   statement: call one of them per transaction, then commit.
//! * **New or established patient** (`established.rs`):
//!   [`Db::patient_established`] applies the domain's rule (a visit that
//!   happened in the last 3 years) in one indexed query, and
//!   [`Db::booking_context`] with the patient's own look-up and the
//!   schedule set-up's generation (a booking's first read); [`Db::book`],
//!   [`Db::place_hold`], [`Db::reschedule`] and [`Db::book_series`] fill a
//!   request's unset `patient_established` with it, so the type's
//!   new/established rule is checked.
//! * **Waitlist and tasks** (`waitlist.rs`): a freed future slot ranks the
//!   waitlist with the domain's `rank_waitlist` and puts the ranked list on
//!   the front desk's worklist as a [`Task`].

mod booking;
mod claims;
mod config;
mod established;
mod group_booking;
mod kept_bookings;
mod load;
mod records;
mod schedule_config;
mod series;
mod upcoming;
mod waitlist;

pub use booking::{
    AppointmentDetails, BookAppointment, BookError, Booked, IdempotencyKey, NewAppointment,
    PlaceHold, RescheduleTo, Rescheduled, StatusChange,
};
pub use claims::HeldClaim;
pub use established::PatientStanding;
pub use group_booking::BookingWriter;
pub(crate) use kept_bookings::{KeptBookings, ScheduleChanges};
pub use load::{AppointmentQuery, BookingParties, SlotFilter};
pub use records::{AppointmentRecord, LocationOpeningHours};
pub(crate) use schedule_config::KeptSetups;
pub use waitlist::{Task, TaskKind, TaskStatus, WaitlistOffer};

use crate::StoreError;
use crate::directory::decode_err;
use crate::records::Val;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Who makes a scheduling change: the audit event's who, role and where
/// (the action, resource and patient are filled in by each write). The
/// history's `changed_by` is `actor_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub role: Option<String>,
    pub client_addr: Option<String>,
}

impl Actor {
    /// Background work and the CLI.
    pub fn system(name: &str) -> Self {
        Self {
            actor_id: None,
            actor_name: name.to_string(),
            role: None,
            client_addr: None,
        }
    }

    /// An audit entry for `action` on `resource_type/id` by this actor.
    pub fn entry(&self, action: Action, resource_type: &str, id: &str) -> AuditEntry {
        let mut e = AuditEntry::new(self.actor_name.clone(), action, Outcome::Success)
            .resource(resource_type, Some(id));
        e.actor_id = self.actor_id.clone();
        e.role = self.role.clone();
        e.client_addr = self.client_addr.clone();
        e
    }
}

/// Takes who, role and where from an entry (such as the server's
/// `Principal::entry` gives).
impl From<AuditEntry> for Actor {
    fn from(e: AuditEntry) -> Self {
        Self {
            actor_id: e.actor_id,
            actor_name: e.actor_name,
            role: e.role,
            client_addr: e.client_addr,
        }
    }
}

pub(crate) fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn ts_of(col: &str, micros: i64) -> Result<Timestamp, sqlx::Error> {
    Timestamp::from_microsecond(micros).map_err(|e| decode_err(col, e.to_string()))
}

pub(crate) fn ts_col(row: &AnyRow, col: &str) -> Result<Timestamp, sqlx::Error> {
    ts_of(col, row.try_get(col)?)
}

pub(crate) fn opt_ts_col(row: &AnyRow, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| ts_of(col, v)).transpose()
}

pub(crate) fn int(v: impl Into<i64>) -> Val {
    Val::Int(Some(v.into()))
}

pub(crate) fn int_col<T: TryFrom<i64>>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let v: i64 = row.try_get(col)?;
    T::try_from(v).map_err(|_| decode_err(col, format!("{v} is out of range")))
}

/// The serde name of a unit enum variant (`exam_room`, `booked`, ...).
pub(crate) fn code<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(crate) fn from_code<T: DeserializeOwned>(col: &str, code: &str) -> Result<T, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(code.to_string()))
        .map_err(|e| decode_err(col, e.to_string()))
}

pub(crate) fn code_col<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    from_code(col, &text)
}

pub(crate) fn json<T: Serialize>(v: &T) -> Val {
    Val::from(serde_json::to_string(v).expect("scheduling values always serialize"))
}

pub(crate) fn json_col<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| decode_err(col, e.to_string()))
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

pub(crate) fn bind_vals<'q>(mut q: AnyQuery<'q>, vals: &[Val]) -> AnyQuery<'q> {
    for v in vals {
        q = match v {
            Val::Text(t) => q.bind(t.clone()),
            Val::Int(i) => q.bind(*i),
        };
    }
    q
}

/// Pushes `values` onto `binds` and returns their placeholders
/// (`$n, $n+1, ...`), for an `IN (...)` list.
pub(crate) fn in_list(binds: &mut Vec<Val>, values: &[String]) -> String {
    let mut parts = Vec::with_capacity(values.len());
    for v in values {
        binds.push(Val::from(v.as_str()));
        parts.push(format!("${}", binds.len()));
    }
    parts.join(", ")
}
