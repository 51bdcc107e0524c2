//! Carefront storage: one code path over SQLite (embedded default) and
//! PostgreSQL, through sqlx's `Any` driver with `$n` placeholders.
//!
//! Invariants: every table leads its keys with `org_id`; instants are BIGINT
//! microseconds (UTC); integrity rules live in the schema (unique keys,
//! foreign keys, checks), so a racing second server cannot break them.

mod audit;
mod audit_writer;
mod bulk;
mod coverage;
mod db;
mod directory;
mod identity;
mod kiosk;
mod merge;
mod patients;
mod records;
mod reindex;
mod scheduling;
mod settings;
pub mod testing;
mod visits;
mod wal_sync;

pub use audit::{AuditFilter, AuditStats};
pub use audit_writer::AuditWriter;
pub use coverage::CardImage;
pub use db::{Backend, Db, WriteTx, new_id, now_us};
pub use identity::{ApiToken, NewUser, Session, User};
pub use kiosk::{KioskArrival, KioskCheckIn, KioskDevice, KioskSession};
pub use merge::{MergeSnapshot, MovedRecord, PatientMerge, PatientOwned};
pub use patients::{PatientHits, format_mrn};
pub use records::{Filter, HistoryEntry, Page, Record, Val};
pub use scheduling::{
    Actor, AppointmentDetails, AppointmentQuery, AppointmentRecord, BookAppointment, BookError,
    Booked, BookingParties, BookingWriter, HeldClaim, IdempotencyKey, LocationOpeningHours,
    NewAppointment, PatientStanding, PlaceHold, RescheduleTo, Rescheduled, SlotFilter,
    StatusChange, Task, TaskKind, TaskStatus, WaitlistOffer,
};
pub use settings::Setting;
pub use visits::{
    BoardChange, BoardEvent, BoardPatient, BoardRoom, BoardVisit, DayBoard, FlowActor, RestockTask,
    RoomBoard, VisitChange,
};

use carefront_domain::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("gone: the record was deleted")]
    Gone,
    #[error("version conflict: the record is at version {current}")]
    VersionConflict { current: i64 },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Maps a unique or foreign-key violation to a [`StoreError::Conflict`]
    /// naming what collided, and passes other errors through.
    pub(crate) fn from_write(err: sqlx::Error, what: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &err
            && (db.is_unique_violation() || db.is_foreign_key_violation())
        {
            return StoreError::Conflict(what.to_string());
        }
        StoreError::Database(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
