//! Recurring series: every occurrence booked in one transaction, each through
//! the single booking's writes (claims, appointment, history) and linked by
//! the appointments' `series_id`, or nothing written and the domain's plan
//! (each occurrence, whether it fits, alternatives for conflicts) returned.

use super::booking::{BookAppointment, BookError, Booked, IdempotencyKey, NewAppointment};
use super::records::AppointmentRecord;
use super::{Actor, AppointmentDetails, SlotFilter};
use crate::db::sql;
use crate::records::{select_columns, versioned};
use crate::{Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::directory::Versioned;
use carefront_domain::scheduling::{
    AcceptedBooking, Evaluation, OccurrenceOutcome, PlannedOccurrence, Refusal, ScheduleError,
    SeriesConflict, SeriesRequest, SeriesRule, time::local,
};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// Alternatives to a conflicting occurrence are looked for this many days
/// either side of it.
const ALTERNATIVES_WINDOW_DAYS: u16 = 7;
/// Alternatives offered per conflicting occurrence.
const ALTERNATIVES: usize = 3;

/// The occurrences a series was booked with, by start: occurrences moved
/// since are listed as they stand (cancelled as rescheduled), their
/// replacements are not.
fn series_sql() -> sqlx::AssertSqlSafe<String> {
    sql(format!(
        "SELECT {} FROM appointments WHERE org_id = $1 AND series_id = $2 \
         AND rescheduled_from IS NULL AND deleted = 0 ORDER BY start_us, id",
        select_columns::<AppointmentRecord>()
    ))
}

fn replayed(rows: Vec<Versioned<AppointmentRecord>>) -> Vec<Booked> {
    rows.into_iter()
        .map(|appointment| Booked {
            appointment,
            replayed: true,
        })
        .collect()
}

impl WriteTx {
    /// Books accepted occurrences for a patient as one series (a new
    /// `series_id` on each): for each the claims, the appointment and its
    /// history as [`WriteTx::book`] writes them, then one audit event per
    /// appointment, last. A claim taken meanwhile is a
    /// [`StoreError::Conflict`] and the caller drops the transaction:
    /// nothing of the series is kept. With an idempotency key already used
    /// for the same request, returns that series and writes nothing.
    pub async fn book_series(
        &mut self,
        patient_id: &str,
        mut occurrences: Vec<AcceptedBooking>,
        details: AppointmentDetails,
        idempotency: Option<&IdempotencyKey>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<Booked>> {
        let details = details.validate()?;
        if occurrences.is_empty() {
            return Err(ValidationErrors::single("count", "must be at least 1").into());
        }
        if let Some(idem) = idempotency
            && let Some(first) = self.claim_idempotency(idem).await?
        {
            let series_id = self
                .read_current::<AppointmentRecord>(&first)
                .await?
                .value
                .appointment
                .series_id
                .ok_or_else(|| super::corrupt("idempotency key", "result is not a series"))?;
            let rows = sqlx::query(series_sql())
                .bind(&self.org_id)
                .bind(&series_id)
                .fetch_all(&mut *self.tx)
                .await?;
            return Ok(replayed(rows.iter().map(versioned).collect::<Result<_>>()?));
        }
        self.check_patient(patient_id).await?;
        // Claims in time order, as every booking takes them, so that racing
        // series wait for each other instead of deadlocking.
        occurrences.sort_by_key(|a| a.placement.start);
        let series_id = new_id();
        let mut booked = Vec::with_capacity(occurrences.len());
        let mut entries = Vec::with_capacity(occurrences.len());
        for accepted in occurrences {
            let new = NewAppointment {
                patient_id: patient_id.to_string(),
                accepted,
                details: details.clone(),
                series_id: Some(series_id.clone()),
            };
            let (stored, entry) = self.insert_appointment(new, actor, now).await?;
            booked.push(Booked {
                appointment: stored,
                replayed: false,
            });
            entries.push(entry);
        }
        self.finish_idempotency(idempotency, &booked[0].appointment.id)
            .await?;
        self.audit_many(entries).await?;
        Ok(booked)
    }
}

impl Db {
    /// The occurrences series `series_id` was booked with, by start
    /// (see [`WriteTx::book_series`]); empty for an unknown series.
    pub async fn series_appointments(
        &self,
        org_id: &str,
        series_id: &str,
    ) -> Result<Vec<Versioned<AppointmentRecord>>> {
        let rows = sqlx::query(series_sql())
            .bind(org_id)
            .bind(series_id)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(versioned).collect()
    }

    async fn replayed_series(
        &self,
        org_id: &str,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Option<Vec<Booked>>> {
        let Some(idem) = idem else {
            return Ok(None);
        };
        let Some(first) = self.replay(org_id, idem).await? else {
            return Ok(None);
        };
        let series_id = self
            .get::<AppointmentRecord>(org_id, &first)
            .await?
            .value
            .appointment
            .series_id
            .ok_or_else(|| super::corrupt("idempotency key", "result is not a series"))?;
        Ok(Some(replayed(
            self.series_appointments(org_id, &series_id).await?,
        )))
    }

    /// Plans a weekly series whose first occurrence is `booking`'s request:
    /// every `every_weeks` weeks at the same local time, `count` times,
    /// occurrences in `moved` (by index, 0 = the first) at another start.
    async fn plan_series(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        every_weeks: u8,
        count: u16,
        moved: &BTreeMap<u16, Timestamp>,
        now: Timestamp,
    ) -> std::result::Result<Vec<PlannedOccurrence>, BookError> {
        let r = &booking.request;
        let zone = self
            .location_hours(org_id, &r.location_id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => BookError::Refused(Refusal::Schedule(
                    ScheduleError::UnknownLocation(r.location_id.clone()),
                )),
                e => e.into(),
            })?;
        let tz = TimeZone::get(&zone.timezone).map_err(|_| {
            Refusal::Schedule(ScheduleError::UnknownTimeZone {
                location_id: r.location_id.clone(),
                timezone: zone.timezone.clone(),
            })
        })?;
        let request = SeriesRequest {
            practitioner_id: r.practitioner_id.clone(),
            location_id: r.location_id.clone(),
            rule: SeriesRule {
                first_local_start: local(&tz, r.start),
                every_weeks,
                count,
            }
            .validate()?,
            resource_id: r.resource_id.clone(),
            patient_established: r.patient_established,
            window_days: ALTERNATIVES_WINDOW_DAYS,
            max_alternatives: ALTERNATIVES,
        };
        // Weeks in instants drift by at most the zone's DST shift; two days
        // of slack cover it and the longest visit.
        let reach = SignedDuration::from_hours(24 * (i64::from(ALTERNATIVES_WINDOW_DAYS) + 2));
        let span = SignedDuration::from_hours(
            24 * 7 * i64::from(every_weeks) * i64::from(count.saturating_sub(1)),
        );
        let from = r.start.saturating_sub(reach).unwrap_or(r.start);
        let until = r
            .start
            .saturating_add(span + reach)
            .unwrap_or(Timestamp::MAX);
        let mut errors = ValidationErrors::new();
        for (&i, t) in moved {
            if i >= count || !(from..until).contains(t) {
                errors.add(
                    "moved",
                    format!(
                        "occurrence {} is not one of the series or is moved too far from it",
                        u32::from(i) + 1
                    ),
                );
            }
        }
        errors.into_result(())?;
        let filter = SlotFilter {
            practitioner_ids: vec![r.practitioner_id.clone()],
            location_ids: vec![],
        };
        let input = self
            .slot_input(
                org_id,
                &booking.appointment_type_id,
                &filter,
                from,
                until,
                now,
            )
            .await?;
        let plan = request
            .plan(&input, moved)
            .map_err(|e| BookError::from(Refusal::Schedule(e)))?;
        // The patient is the wrong kind for the type at every time alike:
        // refuse the request rather than offer alternatives of the type.
        let wrong_kind = plan.iter().find_map(|o| match &o.outcome {
            OccurrenceOutcome::Conflict {
                conflict: SeriesConflict::Refused(r @ Refusal::WrongPatientKind(_)),
                ..
            } => Some(r.clone()),
            _ => None,
        });
        match wrong_kind {
            Some(r) => Err(r.into()),
            None => Ok(plan),
        }
    }

    /// Books a weekly series as a client asks: `booking` is the first
    /// occurrence (its patient, type, details and the lead's override go to
    /// every occurrence), repeated every `every_weeks` weeks at the same
    /// local time, `count` times in all; `moved` puts occurrences (by index,
    /// 0 = the first) at another start, such as an alternative offered for
    /// a conflict. The outer `Result` refuses the request itself (also a
    /// patient who is not the type's kind, new or established, see
    /// [`Db::patient_established`]); the inner
    /// one is the series booked in one transaction ([`WriteTx::book_series`])
    /// or, when an occurrence does not fit (even with the override) or was
    /// taken meanwhile, nothing booked and the plan: every occurrence,
    /// conflicts with their alternatives. A retried request (same
    /// idempotency key) returns the first result.
    #[allow(clippy::too_many_arguments)]
    pub async fn book_series(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        every_weeks: u8,
        count: u16,
        moved: &BTreeMap<u16, Timestamp>,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<std::result::Result<Vec<Booked>, Vec<PlannedOccurrence>>, BookError>
    {
        if booking.series_id.is_some() {
            return Err(ValidationErrors::single(
                "series_id",
                "is given when the series is booked",
            )
            .into());
        }
        let idem = booking
            .idempotency_key
            .as_deref()
            .map(|k| IdempotencyKey::new(k, "book-series", &(booking, every_weeks, count, moved)))
            .transpose()?;
        // The key hashes the request as sent; planned, it knows whether the
        // patient is established.
        let booking = &BookAppointment {
            request: self
                .with_patient_established(org_id, &booking.patient_id, &booking.request, now)
                .await?,
            ..booking.clone()
        };
        if let Some(done) = self.replayed_series(org_id, idem.as_ref()).await? {
            return Ok(Ok(done));
        }
        let plan = self
            .plan_series(org_id, booking, every_weeks, count, moved, now)
            .await?;
        let accepted = match accept(&plan, booking)? {
            Some(a) => a,
            None => {
                // The first request with this key may have just booked them.
                if let Some(done) = self.replayed_series(org_id, idem.as_ref()).await? {
                    return Ok(Ok(done));
                }
                return Ok(Err(plan));
            }
        };
        let mut tx = self.begin(org_id).await?;
        let written = tx
            .book_series(
                &booking.patient_id,
                accepted,
                booking.details.clone(),
                idem.as_ref(),
                actor,
                now,
            )
            .await;
        match written {
            Ok(booked) => {
                tx.commit().await?;
                Ok(Ok(booked))
            }
            Err(StoreError::Conflict(m)) => {
                drop(tx);
                if let Some(done) = self.replayed_series(org_id, idem.as_ref()).await? {
                    return Ok(Ok(done));
                }
                // Taken meanwhile: say which occurrences, with alternatives.
                let plan = self
                    .plan_series(org_id, booking, every_weeks, count, moved, now)
                    .await?;
                if accept(&plan, booking)?.is_none() {
                    return Ok(Err(plan));
                }
                Err(StoreError::Conflict(m).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Every occurrence of `plan` accepted (one needing an override with the
/// booking's override), or `None` when one cannot be. A refused override
/// (not a lead, no reason) refuses the request.
fn accept(
    plan: &[PlannedOccurrence],
    booking: &BookAppointment,
) -> std::result::Result<Option<Vec<AcceptedBooking>>, Refusal> {
    let mut accepted = Vec::with_capacity(plan.len());
    for occ in plan {
        let evaluation = match &occ.outcome {
            OccurrenceOutcome::Fits(placement) => Evaluation {
                placement: placement.clone(),
                issues: vec![],
            },
            OccurrenceOutcome::Conflict {
                conflict: SeriesConflict::NeedsOverride(ev),
                ..
            } if booking.lead_override.is_some() => ev.clone(),
            OccurrenceOutcome::Conflict { .. } => return Ok(None),
        };
        accepted.push(evaluation.accept(booking.lead_override.as_ref())?);
    }
    Ok(Some(accepted))
}
