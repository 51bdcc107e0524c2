//! Booking, holds, rescheduling and status changes, each in one
//! transaction: idempotency key first (so a retried request waits for, then
//! returns, the first one's result), claims, the appointment row and its
//! history, a waitlist task when a future slot is freed, and the audit event
//! last.

use super::load::{BookingParties, HOLD_COLUMNS, hold_from_row};
use super::records::AppointmentRecord;
use super::{Actor, corrupt, int, us};
use crate::bulk::{placeholders, shaped_chunks};
use crate::db::{Shape, sql};
use crate::records::Val;
use crate::{Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, AuditEntry};
use carefront_domain::directory::Versioned;
use carefront_domain::scheduling::{
    AcceptedBooking, Appointment, AppointmentStatus, BookingRequest, CancelReason, Hold, Override,
    Placement, Refusal,
};
use carefront_domain::validation::optional_text;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// What the desk writes on an appointment beside its time and place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentDetails {
    pub reason_for_visit: Option<String>,
    pub notes: Option<String>,
}

impl AppointmentDetails {
    pub fn validate(mut self) -> std::result::Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.reason_for_visit = optional_text(
            &mut errors,
            "reason_for_visit",
            self.reason_for_visit.as_deref(),
            500,
        );
        self.notes = optional_text(&mut errors, "notes", self.notes.as_deref(), 4000);
        errors.into_result(self)
    }
}

/// A booking the domain accepted, for one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppointment {
    pub patient_id: String,
    pub accepted: AcceptedBooking,
    pub details: AppointmentDetails,
    /// Set when the appointment is an occurrence of a recurring series.
    pub series_id: Option<String>,
}

/// A client's retry key with a hash of the request it came with: the same
/// key with the same request returns the first result; with another request
/// it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

impl IdempotencyKey {
    /// `operation` names what the request does (`book`, `reschedule`, ...);
    /// `request` is everything that identifies it.
    pub fn new(
        key: &str,
        operation: &str,
        request: &impl Serialize,
    ) -> std::result::Result<Self, ValidationErrors> {
        let key = key.trim();
        if key.is_empty() || key.chars().count() > 200 {
            return Err(ValidationErrors::single(
                "idempotency_key",
                "must be 1 to 200 characters",
            ));
        }
        let body = serde_json::to_string(request).map_err(|e| {
            ValidationErrors::single("idempotency_key", format!("request cannot be hashed: {e}"))
        })?;
        let mut h = Sha256::new();
        h.update(operation.as_bytes());
        h.update([0]);
        h.update(body.as_bytes());
        Ok(Self {
            key: key.to_string(),
            request_hash: hex::encode(h.finalize()),
        })
    }
}

/// An appointment written, or found already written for the same
/// idempotency key (`replayed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Booked {
    pub appointment: Versioned<AppointmentRecord>,
    pub replayed: bool,
}

/// A status change, and the worklist task it created when it freed a
/// future slot that patients on the waitlist could take.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub appointment: Versioned<AppointmentRecord>,
    pub waitlist_task: Option<super::Task>,
}

/// A moved appointment: the old one (cancelled as `rescheduled`) and the new
/// one linked back to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescheduled {
    pub old: Versioned<AppointmentRecord>,
    pub new: Versioned<AppointmentRecord>,
    pub waitlist_task: Option<super::Task>,
    pub replayed: bool,
}

/// Why a booking through [`Db::book`], [`Db::place_hold`] or
/// [`Db::reschedule`] was not made: the schedule refuses it, or storage
/// does (a [`StoreError::Conflict`] when the slot was taken meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ValidationErrors> for BookError {
    fn from(e: ValidationErrors) -> Self {
        BookError::Store(StoreError::Invalid(e))
    }
}

/// A booking request as a client sends it, for [`Db::book`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookAppointment {
    pub appointment_type_id: String,
    pub request: BookingRequest,
    pub patient_id: String,
    pub details: AppointmentDetails,
    pub series_id: Option<String>,
    /// A lead's decision to book past the schedule's rules.
    pub lead_override: Option<Override>,
    /// The client's retry key, if it sent one.
    pub idempotency_key: Option<String>,
}

/// A hold request, for [`Db::place_hold`]. Holds never need an override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceHold {
    pub appointment_type_id: String,
    pub request: BookingRequest,
    pub patient_id: String,
    /// Default `DEFAULT_HOLD_TTL`; clamped to 1 second ... 1 hour.
    pub ttl: Option<SignedDuration>,
}

/// Where to move an appointment, for [`Db::reschedule`]. Unset fields keep
/// the appointment's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RescheduleTo {
    pub start: Timestamp,
    pub practitioner_id: Option<String>,
    pub location_id: Option<String>,
    pub resource_id: Option<String>,
    pub lead_override: Option<Override>,
    pub idempotency_key: Option<String>,
}

/// "2026-03-09T14:00:00Z to 2026-03-09T14:30:00Z with provider dr-a".
fn slot_label(p: &Placement) -> String {
    format!(
        "the slot {} to {} with provider {}",
        p.start, p.end, p.practitioner_id
    )
}

pub(super) fn appointment_label(a: &Appointment) -> String {
    format!(
        "the slot {} to {} with provider {}",
        a.start, a.end, a.practitioner_id
    )
}

/// The appointment an accepted booking becomes, and the audit entry of
/// its booking.
pub(super) fn booked_record(
    id: String,
    new: NewAppointment,
    actor: &Actor,
    now: Timestamp,
) -> (AppointmentRecord, AuditEntry) {
    let mut appointment = Appointment::book(id, &new.patient_id, new.accepted, now);
    appointment.series_id = new.series_id;
    let detail: Vec<String> = [
        appointment
            .series_id
            .as_ref()
            .map(|s| format!("series {s}")),
        appointment
            .override_reason
            .as_ref()
            .map(|r| format!("override: {r}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut entry = actor
        .entry(Action::Create, "Appointment", &appointment.id)
        .patient(&appointment.patient_id);
    if !detail.is_empty() {
        entry = entry.detail(detail.join("; "));
    }
    let record = AppointmentRecord {
        appointment,
        reason_for_visit: new.details.reason_for_visit,
        notes: new.details.notes,
    };
    (record, entry)
}

fn status_error(e: carefront_domain::scheduling::TransitionError) -> StoreError {
    StoreError::Invalid(ValidationErrors::single("status", e.to_string()))
}

impl WriteTx {
    /// Takes the idempotency key for this transaction. `Some(resource id)`
    /// when an earlier request with the same key (and the same request)
    /// already succeeded: the caller returns that result and writes nothing.
    /// A concurrent request with the key waits here for the first to finish.
    pub(super) async fn claim_idempotency(
        &mut self,
        idem: &IdempotencyKey,
    ) -> Result<Option<String>> {
        if !self
            .insert_idempotency_keys(&[(idem, None)])
            .await?
            .is_empty()
        {
            return Ok(None);
        }
        let (hash, resource_id): (String, Option<String>) = sqlx::query_as(
            "SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = $1 AND key = $2",
        )
        .bind(&self.org_id)
        .bind(&idem.key)
        .fetch_one(&mut *self.tx)
        .await?;
        if hash != idem.request_hash {
            return Err(StoreError::Conflict(format!(
                "idempotency key '{}' was already used for a different request",
                idem.key
            )));
        }
        resource_id.map(Some).ok_or_else(|| {
            StoreError::Conflict(format!(
                "the request with idempotency key '{}' is still in progress",
                idem.key
            ))
        })
    }

    /// Inserts idempotency keys not yet used, each with the resource it
    /// will name when known; returns the keys inserted. A key another
    /// transaction is inserting makes this one wait for it.
    pub(super) async fn insert_idempotency_keys(
        &mut self,
        keys: &[(&IdempotencyKey, Option<&str>)],
    ) -> Result<BTreeSet<String>> {
        let mut inserted = BTreeSet::new();
        for chunk in shaped_chunks(keys, self.backend, 2, 4) {
            let mut next = 2;
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let mut row = String::from("($1, ");
                    placeholders(&mut next, 2, &mut row);
                    row.push_str(", $2, ");
                    placeholders(&mut next, 2, &mut row);
                    row.push(')');
                    row
                })
                .collect();
            let text = format!(
                "INSERT INTO idempotency_keys \
                 (org_id, key, request_hash, created_at_us, resource_type, resource_id) \
                 VALUES {} ON CONFLICT DO NOTHING RETURNING key",
                rows.join(", ")
            );
            let mut values = vec![Val::from(self.org_id.as_str()), int(crate::now_us())];
            for (idem, resource_id) in chunk {
                values.extend([
                    Val::from(idem.key.as_str()),
                    Val::from(idem.request_hash.as_str()),
                    Val::Text(resource_id.map(|_| "Appointment".to_string())),
                    Val::Text(resource_id.map(str::to_string)),
                ]);
            }
            let rows = Shape::new(self.backend, text)
                .bind(values)
                .fetch_all(&mut *self.tx)
                .await?;
            for row in &rows {
                inserted.insert(row.try_get::<String, _>("key")?);
            }
        }
        Ok(inserted)
    }

    /// Gives back keys this transaction inserted for bookings it then did
    /// not write.
    pub(super) async fn delete_idempotency_keys(&mut self, keys: &[&str]) -> Result<()> {
        self.execute_for_ids(
            |list| format!("DELETE FROM idempotency_keys WHERE org_id = $1 AND key IN ({list})"),
            keys,
        )
        .await?;
        Ok(())
    }

    pub(super) async fn finish_idempotency(
        &mut self,
        idem: Option<&IdempotencyKey>,
        resource_id: &str,
    ) -> Result<()> {
        if let Some(idem) = idem {
            sqlx::query(
                "UPDATE idempotency_keys SET resource_type = 'Appointment', resource_id = $3 \
                 WHERE org_id = $1 AND key = $2",
            )
            .bind(&self.org_id)
            .bind(&idem.key)
            .bind(resource_id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Refuses unknown, deleted and merged patients, naming `patient_id`.
    pub(super) async fn check_patient(&mut self, patient_id: &str) -> Result<()> {
        match self
            .unbookable_patients(&[patient_id])
            .await?
            .remove(patient_id)
        {
            Some(problem) => Err(ValidationErrors::single("patient_id", problem).into()),
            None => Ok(()),
        }
    }

    /// Of these patients, those no appointment may be booked for (unknown,
    /// deleted, merged into another record), with the reason; one query.
    pub(super) async fn unbookable_patients(
        &mut self,
        patient_ids: &[&str],
    ) -> Result<BTreeMap<String, String>> {
        let found: BTreeMap<String, (i64, Option<String>)> = self
            .fetch_for_ids::<(String, i64, Option<String>)>(
                |list| {
                    format!(
                        "SELECT id, deleted, replaced_by FROM patients \
                         WHERE org_id = $1 AND id IN ({list})"
                    )
                },
                patient_ids,
            )
            .await?
            .into_iter()
            .map(|(id, deleted, replaced_by)| (id, (deleted, replaced_by)))
            .collect();
        Ok(patient_ids
            .iter()
            .filter_map(|id| {
                let problem = match found.get(*id) {
                    None | Some((1, _)) => "unknown patient".to_string(),
                    Some((_, Some(survivor))) => format!(
                        "this record was merged into patient {survivor}: book for that record"
                    ),
                    Some(_) => return None,
                };
                Some((id.to_string(), problem))
            })
            .collect())
    }

    /// Books an accepted booking for a patient: claims (a
    /// [`StoreError::Conflict`] naming the slot when it was taken meanwhile),
    /// the appointment with history, the audit event. With an idempotency
    /// key already used for the same request, returns that appointment and
    /// writes nothing.
    pub async fn book(
        &mut self,
        new: NewAppointment,
        idempotency: Option<&IdempotencyKey>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Booked> {
        let (booked, entry) = self.book_unaudited(new, idempotency, actor, now).await?;
        if let Some(entry) = entry {
            self.audit(entry).await?;
        }
        Ok(booked)
    }

    /// [`WriteTx::book`] without its audit event, which it returns for the
    /// caller to append (`None` for a replayed request: nothing written).
    pub(super) async fn book_unaudited(
        &mut self,
        new: NewAppointment,
        idempotency: Option<&IdempotencyKey>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Booked, Option<AuditEntry>)> {
        let details = new.details.validate()?;
        if let Some(idem) = idempotency
            && let Some(id) = self.claim_idempotency(idem).await?
        {
            let replayed = Booked {
                appointment: self.read_current::<AppointmentRecord>(&id).await?,
                replayed: true,
            };
            return Ok((replayed, None));
        }
        self.check_patient(&new.patient_id).await?;
        let (stored, entry) = self
            .insert_appointment(NewAppointment { details, ..new }, actor, now)
            .await?;
        self.finish_idempotency(idempotency, &stored.id).await?;
        let booked = Booked {
            appointment: stored,
            replayed: false,
        };
        Ok((booked, Some(entry)))
    }

    /// The writes of one booking after its checks (validated details, a
    /// bookable patient): claims, the appointment with history. Returns its
    /// audit entry for the caller to append last, after every other write.
    pub(super) async fn insert_appointment(
        &mut self,
        new: NewAppointment,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Versioned<AppointmentRecord>, AuditEntry)> {
        let (record, entry) = booked_record(new_id(), new, actor, now);
        let a = &record.appointment;
        self.take_claims(
            &a.id,
            &a.claims(),
            None,
            None,
            us(now),
            &appointment_label(a),
        )
        .await?;
        let id = a.id.clone();
        let stored = self.create(&id, &record, &actor.actor_name).await?;
        Ok((stored, entry))
    }

    /// Stores an appointment as it already stands, status and all: a
    /// generated history (demo and benchmark data). It takes its claims
    /// while its status holds time, so the database's no-double-booking
    /// rule binds it as it binds bookings. Not audited one by one: the
    /// caller audits the batch.
    pub async fn record_appointment(
        &mut self,
        appointment: Appointment,
        changed_by: &str,
    ) -> Result<()> {
        self.check_patient(&appointment.patient_id).await?;
        let slot = appointment_label(&appointment);
        self.take_claims(
            &appointment.id,
            &appointment.claims(),
            None,
            None,
            us(appointment.status_changed_at),
            &slot,
        )
        .await?;
        let id = appointment.id.clone();
        let record = AppointmentRecord {
            appointment,
            reason_for_visit: None,
            notes: None,
        };
        self.create(&id, &record, changed_by).await?;
        Ok(())
    }

    /// Keeps `slot` for a patient until `now + ttl` (see `Hold::new`): its
    /// claims carry the expiry, so it stops blocking by itself.
    pub async fn place_hold(
        &mut self,
        patient_id: &str,
        appointment_type_id: &str,
        slot: Placement,
        ttl: Option<SignedDuration>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Hold> {
        if slot.appointment_type_id != appointment_type_id {
            return Err(ValidationErrors::single(
                "appointment_type_id",
                "does not match the slot's appointment type",
            )
            .into());
        }
        self.check_patient(patient_id).await?;
        let hold = Hold::new(new_id(), patient_id, slot, now, ttl);
        let label = slot_label(&hold.slot);
        self.take_claims(
            &hold.id,
            &hold.claims(),
            Some(us(hold.expires_at)),
            None,
            us(now),
            &label,
        )
        .await?;
        let slot_json = serde_json::to_string(&hold.slot).map_err(|e| corrupt("hold", e))?;
        sqlx::query(
            "INSERT INTO appointment_holds (org_id, id, patient_id, practitioner_id, location_id, \
             appointment_type_id, start_us, end_us, slot_json, created_at_us, expires_at_us, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&self.org_id)
        .bind(&hold.id)
        .bind(&hold.patient_id)
        .bind(&hold.slot.practitioner_id)
        .bind(&hold.slot.location_id)
        .bind(&hold.slot.appointment_type_id)
        .bind(us(hold.slot.start))
        .bind(us(hold.slot.end))
        .bind(slot_json)
        .bind(us(hold.created_at))
        .bind(us(hold.expires_at))
        .bind(&actor.actor_name)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::from_write(e, "the hold refers to an unknown record"))?;
        self.audit(
            actor
                .entry(Action::Create, "AppointmentHold", &hold.id)
                .patient(patient_id),
        )
        .await?;
        Ok(hold)
    }

    async fn read_hold(&mut self, hold_id: &str) -> Result<Hold> {
        let row = sqlx::query(sql(format!(
            "SELECT {HOLD_COLUMNS} FROM appointment_holds WHERE org_id = $1 AND id = $2"
        )))
        .bind(&self.org_id)
        .bind(hold_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        hold_from_row(&row)
    }

    /// Turns a live hold into a booked appointment for the held patient: the
    /// hold's seats pass to the appointment (none is given up and taken
    /// again), the hold goes. An expired hold is a
    /// [`StoreError::Conflict`]: search for a slot again.
    pub async fn confirm_hold(
        &mut self,
        hold_id: &str,
        details: AppointmentDetails,
        idempotency: Option<&IdempotencyKey>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Booked> {
        let details = details.validate()?;
        if let Some(idem) = idempotency
            && let Some(id) = self.claim_idempotency(idem).await?
        {
            return Ok(Booked {
                appointment: self.read_current::<AppointmentRecord>(&id).await?,
                replayed: true,
            });
        }
        let hold = self.read_hold(hold_id).await?;
        if !hold.is_live(now) {
            return Err(StoreError::Conflict(format!(
                "the hold on {} expired at {}: look for a slot again",
                slot_label(&hold.slot),
                hold.expires_at
            )));
        }
        self.check_patient(&hold.patient_id).await?;
        let accepted = AcceptedBooking {
            max_seat: hold.slot.overbook_limit,
            placement: hold.slot.clone(),
            override_reason: None,
            overridden: vec![],
        };
        let appointment = Appointment::book(new_id(), &hold.patient_id, accepted, now);
        self.take_claims(
            &appointment.id,
            &appointment.claims(),
            None,
            Some(&hold.id),
            us(now),
            &slot_label(&hold.slot),
        )
        .await?;
        self.delete_hold(&hold.id).await?;
        let record = AppointmentRecord {
            appointment,
            reason_for_visit: details.reason_for_visit,
            notes: details.notes,
        };
        let id = record.appointment.id.clone();
        let stored = self.create(&id, &record, &actor.actor_name).await?;
        self.finish_idempotency(idempotency, &id).await?;
        self.audit(
            actor
                .entry(Action::Create, "Appointment", &id)
                .patient(&hold.patient_id)
                .detail(format!("from hold {}", hold.id)),
        )
        .await?;
        Ok(Booked {
            appointment: stored,
            replayed: false,
        })
    }

    async fn delete_hold(&mut self, hold_id: &str) -> Result<()> {
        self.release_claims(hold_id).await?;
        sqlx::query("DELETE FROM appointment_holds WHERE org_id = $1 AND id = $2")
            .bind(&self.org_id)
            .bind(hold_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Gives a held slot back before its expiry (the patient chose another).
    pub async fn release_hold(&mut self, hold_id: &str, actor: &Actor) -> Result<()> {
        let hold = self.read_hold(hold_id).await?;
        self.delete_hold(hold_id).await?;
        self.audit(
            actor
                .entry(Action::Delete, "AppointmentHold", hold_id)
                .patient(&hold.patient_id),
        )
        .await?;
        Ok(())
    }

    async fn current_appointment(
        &mut self,
        id: &str,
        if_version: Option<i64>,
    ) -> Result<Versioned<AppointmentRecord>> {
        let current = self.read_current::<AppointmentRecord>(id).await?;
        if let Some(v) = if_version
            && v != current.version
        {
            return Err(StoreError::VersionConflict {
                current: current.version,
            });
        }
        Ok(current)
    }

    /// Changes an appointment's status through the domain's state machine
    /// (`mark_arrived`, `mark_no_show`, `cancel` with `cancel_reason`, else
    /// `transition`); a refused change is [`StoreError::Invalid`] naming
    /// `status`. Leaving a status that keeps time releases the claims (and
    /// offers a future slot to the waitlist); entering one takes them again
    /// (a no-show who turns up late), which is a [`StoreError::Conflict`]
    /// if the time was given away meanwhile.
    pub async fn set_appointment_status(
        &mut self,
        id: &str,
        to: AppointmentStatus,
        cancel_reason: Option<CancelReason>,
        if_version: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StatusChange> {
        if cancel_reason.is_some() && to != AppointmentStatus::Cancelled {
            return Err(ValidationErrors::single(
                "cancel_reason",
                "only a cancellation has a reason",
            )
            .into());
        }
        let current = self.current_appointment(id, if_version).await?;
        let mut record = current.value;
        let a = &mut record.appointment;
        let before = a.status;
        match to {
            AppointmentStatus::Cancelled => {
                a.cancel(cancel_reason.unwrap_or(CancelReason::Other), now)
            }
            AppointmentStatus::NoShow => a.mark_no_show(now),
            AppointmentStatus::Arrived => a.mark_arrived(now),
            other => a.transition(other, now),
        }
        .map_err(status_error)?;
        let freed = before.holds_time() && !a.status.holds_time();
        if freed {
            self.release_claims(id).await?;
        } else if !before.holds_time() && a.status.holds_time() {
            let label = appointment_label(a);
            self.take_claims(id, &a.claims(), None, None, us(now), &label)
                .await?;
        }
        let stored = self
            .update(id, &record, Some(current.version), &actor.actor_name)
            .await?;
        let waitlist_task = if freed {
            self.offer_freed_slot(&record.appointment, actor, now)
                .await?
        } else {
            None
        };
        let mut detail = format!("status {} -> {}", before.code(), to.code());
        if let Some(r) = record.appointment.cancel_reason
            && to == AppointmentStatus::Cancelled
        {
            detail.push_str(&format!(" ({})", r.code()));
        }
        // Boards see the change at once (a step of the visit itself is
        // already in line, and this does nothing).
        self.follow_appointment(id, actor, now).await?;
        self.audit(
            actor
                .entry(Action::Update, "Appointment", id)
                .patient(&record.appointment.patient_id)
                .detail(detail),
        )
        .await?;
        Ok(StatusChange {
            appointment: stored,
            waitlist_task,
        })
    }

    /// Cancels an appointment with a reason (see
    /// [`WriteTx::set_appointment_status`]).
    pub async fn cancel_appointment(
        &mut self,
        id: &str,
        reason: CancelReason,
        if_version: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<StatusChange> {
        self.set_appointment_status(
            id,
            AppointmentStatus::Cancelled,
            Some(reason),
            if_version,
            actor,
            now,
        )
        .await
    }

    /// Rewrites the reason for visit and the notes.
    pub async fn update_appointment_details(
        &mut self,
        id: &str,
        details: AppointmentDetails,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<AppointmentRecord>> {
        let details = details.validate()?;
        let current = self.current_appointment(id, if_version).await?;
        let mut record = current.value;
        record.reason_for_visit = details.reason_for_visit;
        record.notes = details.notes;
        let stored = self
            .update(id, &record, Some(current.version), &actor.actor_name)
            .await?;
        self.audit(
            actor
                .entry(Action::Update, "Appointment", id)
                .patient(&record.appointment.patient_id)
                .detail("details"),
        )
        .await?;
        Ok(stored)
    }

    /// Moves an appointment to an accepted new placement (evaluated with the
    /// appointment's id in `BookingRequest::ignore`): the new appointment's
    /// claims are taken first (seats the old one holds at the same times are
    /// handed over), then the old one's are released and it is cancelled as
    /// `rescheduled`; both keep history. The time given up is offered to the
    /// waitlist when it is in the future.
    pub async fn reschedule(
        &mut self,
        id: &str,
        accepted: AcceptedBooking,
        if_version: Option<i64>,
        idempotency: Option<&IdempotencyKey>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Rescheduled> {
        if let Some(idem) = idempotency
            && let Some(new_id) = self.claim_idempotency(idem).await?
        {
            let new = self.read_current::<AppointmentRecord>(&new_id).await?;
            let old_id = new
                .value
                .appointment
                .rescheduled_from
                .clone()
                .ok_or_else(|| {
                    corrupt(
                        "idempotency key",
                        "stored result is not a rescheduled appointment",
                    )
                })?;
            return Ok(Rescheduled {
                old: self.read_current::<AppointmentRecord>(&old_id).await?,
                new,
                waitlist_task: None,
                replayed: true,
            });
        }
        let current = self.current_appointment(id, if_version).await?;
        let mut old = current.value;
        let placement_type = accepted.placement.appointment_type_id.clone();
        if placement_type != old.appointment.appointment_type_id {
            return Err(ValidationErrors::single(
                "appointment_type_id",
                "a rescheduled appointment keeps its type",
            )
            .into());
        }
        self.check_patient(&old.appointment.patient_id).await?;
        let next = old
            .appointment
            .reschedule(new_id(), accepted, now)
            .map_err(status_error)?;
        self.take_claims(
            &next.id,
            &next.claims(),
            None,
            Some(id),
            us(now),
            &appointment_label(&next),
        )
        .await?;
        self.release_claims(id).await?;
        let old_stored = self
            .update(id, &old, Some(current.version), &actor.actor_name)
            .await?;
        let new_record = AppointmentRecord {
            appointment: next,
            reason_for_visit: old.reason_for_visit.clone(),
            notes: old.notes.clone(),
        };
        let new_id = new_record.appointment.id.clone();
        let new_stored = self.create(&new_id, &new_record, &actor.actor_name).await?;
        self.finish_idempotency(idempotency, &new_id).await?;
        let a = &old.appointment;
        let n = &new_record.appointment;
        let still_held =
            a.practitioner_id == n.practitioner_id && a.start < n.end && n.start < a.end;
        let waitlist_task = if still_held {
            None
        } else {
            self.offer_freed_slot(a, actor, now).await?
        };
        let patient = a.patient_id.clone();
        self.follow_appointment(id, actor, now).await?;
        self.audit_many(vec![
            actor
                .entry(Action::Update, "Appointment", id)
                .patient(&patient)
                .detail(format!("rescheduled to {new_id}")),
            actor
                .entry(Action::Create, "Appointment", &new_id)
                .patient(&patient)
                .detail(format!("rescheduled from {id}")),
        ])
        .await?;
        Ok(Rescheduled {
            old: old_stored,
            new: new_stored,
            waitlist_task,
            replayed: false,
        })
    }
}

impl Db {
    /// The stored result of an idempotency key used for the same request.
    pub(super) async fn replay(
        &self,
        org_id: &str,
        idem: &IdempotencyKey,
    ) -> Result<Option<String>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = $1 AND key = $2",
        )
        .bind(org_id)
        .bind(&idem.key)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        match row {
            Some((hash, _)) if hash != idem.request_hash => Err(StoreError::Conflict(format!(
                "idempotency key '{}' was already used for a different request",
                idem.key
            ))),
            Some((_, id)) => Ok(id),
            None => Ok(None),
        }
    }

    async fn replayed_reschedule(
        &self,
        org_id: &str,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Option<Rescheduled>> {
        let Some(idem) = idem else {
            return Ok(None);
        };
        let Some(new_id) = self.replay(org_id, idem).await? else {
            return Ok(None);
        };
        let new = self.get::<AppointmentRecord>(org_id, &new_id).await?;
        let old_id = new
            .value
            .appointment
            .rescheduled_from
            .clone()
            .ok_or_else(|| corrupt("idempotency key", "result is not a rescheduled appointment"))?;
        Ok(Some(Rescheduled {
            old: self.get::<AppointmentRecord>(org_id, &old_id).await?,
            new,
            waitlist_task: None,
            replayed: true,
        }))
    }

    /// Books as a client asks: [`Db::accept_booking`], then the booking's
    /// writes in one transaction ([`WriteTx::book`]). A server booking for
    /// many desks at once shares the writes' commit instead
    /// ([`BookingWriter`](super::BookingWriter)).
    pub async fn book(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<Booked, BookError> {
        let (new, idem) = match self.accept_booking(org_id, booking, None, now).await? {
            Ok(replayed) => return Ok(replayed),
            Err(accepted) => accepted,
        };
        let mut tx = self.begin(org_id).await?;
        let booked = tx.book(new, idem.as_ref(), actor, now).await?;
        tx.commit().await?;
        Ok(booked)
    }

    /// A booking's checks before any write: the request is evaluated
    /// against the stored schedule (a refusal is [`BookError::Refused`])
    /// and accepted with the lead's override, if any (`Err`: the booking to
    /// write, and its key). A retried request (same idempotency key) whose
    /// first attempt took the slot is refused by the schedule and answered
    /// with the first result (`Ok`); any other retry is recognized when its
    /// key is written. The database still decides, when it is written,
    /// whether the slot is free.
    pub(super) async fn accept_booking(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        parties: Option<&BookingParties>,
        now: Timestamp,
    ) -> std::result::Result<
        std::result::Result<Booked, (NewAppointment, Option<IdempotencyKey>)>,
        BookError,
    > {
        // The key hashes the request as the client asked it; whether the
        // patient is established is the schedule's to find out (and may have
        // been, by the caller).
        let idem = booking
            .idempotency_key
            .as_deref()
            .map(|k| {
                let asked = BookAppointment {
                    request: BookingRequest {
                        patient_established: None,
                        ..booking.request.clone()
                    },
                    ..booking.clone()
                };
                IdempotencyKey::new(k, "book", &asked)
            })
            .transpose()?;
        // Evaluated, the request knows whether the patient is established.
        let booking = &BookAppointment {
            request: self
                .with_patient_established(org_id, &booking.patient_id, &booking.request, now)
                .await?,
            ..booking.clone()
        };
        let replayed = |appointment| Booked {
            appointment,
            replayed: true,
        };
        // No look at the key first: that would cost every booking a read.
        let (kind, request) = (&booking.appointment_type_id, &booking.request);
        let evaluated = match parties {
            Some(read) => {
                self.evaluate_booking_in(read.setup(), org_id, kind, request, now)
                    .await?
            }
            None => self.evaluate_booking(org_id, kind, request, now).await?,
        }
        .and_then(|e| e.accept(booking.lead_override.as_ref()));
        let accepted = match evaluated {
            Ok(a) => a,
            Err(refusal) => {
                // The first request with this key may have just taken the slot.
                if let Some(idem) = &idem
                    && let Some(id) = self.replay(org_id, idem).await?
                {
                    return Ok(Ok(replayed(
                        self.get::<AppointmentRecord>(org_id, &id).await?,
                    )));
                }
                return Err(refusal.into());
            }
        };
        Ok(Err((
            NewAppointment {
                patient_id: booking.patient_id.clone(),
                accepted,
                details: booking.details.clone(),
                series_id: booking.series_id.clone(),
            },
            idem,
        )))
    }

    /// Holds a slot for a patient: evaluated like a booking, but it must fit
    /// the schedule as it is (no override), and it expires by itself.
    pub async fn place_hold(
        &self,
        org_id: &str,
        hold: &PlaceHold,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<Hold, BookError> {
        let hold = &PlaceHold {
            request: self
                .with_patient_established(org_id, &hold.patient_id, &hold.request, now)
                .await?,
            ..hold.clone()
        };
        let accepted = self
            .evaluate_booking(org_id, &hold.appointment_type_id, &hold.request, now)
            .await?
            .and_then(|e| e.accept(None))?;
        let mut tx = self.begin(org_id).await?;
        let placed = tx
            .place_hold(
                &hold.patient_id,
                &hold.appointment_type_id,
                accepted.placement,
                hold.ttl,
                actor,
                now,
            )
            .await?;
        tx.commit().await?;
        Ok(placed)
    }

    /// Moves an appointment as a client asks: evaluated at the new time
    /// with the appointment itself ignored, then [`WriteTx::reschedule`].
    pub async fn reschedule(
        &self,
        org_id: &str,
        appointment_id: &str,
        to: &RescheduleTo,
        if_version: Option<i64>,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<Rescheduled, BookError> {
        let idem = to
            .idempotency_key
            .as_deref()
            .map(|k| IdempotencyKey::new(k, "reschedule", &(appointment_id, to)))
            .transpose()?;
        if let Some(done) = self.replayed_reschedule(org_id, idem.as_ref()).await? {
            return Ok(done);
        }
        let old = self
            .get::<AppointmentRecord>(org_id, appointment_id)
            .await?
            .value
            .appointment;
        let request = BookingRequest {
            practitioner_id: to
                .practitioner_id
                .clone()
                .unwrap_or(old.practitioner_id.clone()),
            location_id: to.location_id.clone().unwrap_or(old.location_id.clone()),
            start: to.start,
            resource_id: to.resource_id.clone(),
            patient_established: Some(
                self.patient_established(org_id, &old.patient_id, now)
                    .await?,
            ),
            ignore: vec![old.id.clone()],
        };
        let evaluated = self
            .evaluate_booking(org_id, &old.appointment_type_id, &request, now)
            .await?
            .and_then(|e| e.accept(to.lead_override.as_ref()));
        let accepted = match evaluated {
            Ok(a) => a,
            Err(refusal) => {
                if let Some(done) = self.replayed_reschedule(org_id, idem.as_ref()).await? {
                    return Ok(done);
                }
                return Err(refusal.into());
            }
        };
        let mut tx = self.begin(org_id).await?;
        let done = tx
            .reschedule(
                appointment_id,
                accepted,
                if_version,
                idem.as_ref(),
                actor,
                now,
            )
            .await?;
        tx.commit().await?;
        Ok(done)
    }
}
