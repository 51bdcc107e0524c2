//! New or established patient: the domain's rule
//! ([`is_established`](carefront_domain::scheduling::is_established)) as one
//! indexed query, and the booking request it completes.

use super::load::BookingParties;
use super::schedule_config::setup_generation_sql;
use super::{int, us};
use crate::db::sql;
use crate::records::Val;
use crate::{Db, Result};
use carefront_domain::scheduling::{BookingRequest, VISIT_HAPPENED, established_since};
use jiff::Timestamp;
use sqlx::FromRow;

/// `VISIT_HAPPENED` as SQL text (constants).
fn visit_happened_statuses() -> String {
    VISIT_HAPPENED
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A patient as a booking sees them ([`Db::booking_context`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientStanding {
    /// The record this one was merged into: book for that one.
    pub replaced_by: Option<String>,
    pub established: bool,
}

/// Appointments showing the patient (`$2`, of organization `$1`) was seen
/// between `$3` and `$4`: the domain's rule on the `appointments_patient`
/// index `(org_id, patient_id, start_us)`.
fn established_condition() -> String {
    format!(
        "org_id = $1 AND patient_id = $2 AND start_us >= $3 AND start_us < $4 \
         AND deleted = 0 AND status IN ({})",
        visit_happened_statuses()
    )
}

fn established_binds(org_id: &str, patient_id: Val, now: Timestamp) -> [Val; 4] {
    [
        Val::from(org_id),
        patient_id,
        int(us(established_since(now))),
        int(us(now)),
    ]
}

impl Db {
    /// Whether the patient is established with the organization at `now`:
    /// an appointment whose status shows the visit happened (arrived,
    /// checked in, fulfilled) started in the last
    /// [`ESTABLISHED_LOOKBACK_YEARS`](carefront_domain::scheduling::ESTABLISHED_LOOKBACK_YEARS)
    /// years, before `now`. One look-up on the `appointments_patient` index
    /// `(org_id, patient_id, start_us)`; a merged duplicate's appointments
    /// already belong to the survivor.
    pub async fn patient_established(
        &self,
        org_id: &str,
        patient_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let found = super::bind_vals(
            sqlx::query(sql(format!(
                "SELECT id FROM appointments WHERE {} LIMIT 1",
                established_condition()
            ))),
            &established_binds(org_id, Val::from(patient_id), now),
        )
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(found.is_some())
    }

    /// What a booking reads first, in one look-up: the schedule set-up to
    /// check it against ([`Db::booking_parties`]) and the patient's
    /// standing: `None` for an unknown or deleted patient, or none named;
    /// else the record it was merged into, if any, and whether the patient
    /// is established ([`Db::patient_established`]).
    pub async fn booking_context(
        &self,
        org_id: &str,
        patient_id: Option<&str>,
        now: Timestamp,
    ) -> Result<(BookingParties, Option<PatientStanding>)> {
        let row = super::bind_vals(
            sqlx::query(sql(format!(
                "SELECT {} AS setup_generation, p.id AS patient_id, p.replaced_by, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM appointments WHERE {}) \
                 THEN 1 ELSE 0 END AS BIGINT) AS established \
                 FROM (SELECT 1 AS here) AS here LEFT JOIN patients p \
                 ON p.org_id = $1 AND p.id = $2 AND p.deleted = 0",
                setup_generation_sql(),
                established_condition()
            ))),
            &established_binds(org_id, Val::from(patient_id.map(str::to_string)), now),
        )
        .fetch_one(&mut *self.reader().await?)
        .await?;
        let (generation, found, replaced_by, established): (
            i64,
            Option<String>,
            Option<String>,
            i64,
        ) = FromRow::from_row(&row)?;
        let standing = found.map(|_| PatientStanding {
            replaced_by,
            established: established == 1,
        });
        Ok((self.booking_parties_at(org_id, generation).await?, standing))
    }

    /// `request` for `patient_id`, with `patient_established` filled in from
    /// [`Db::patient_established`] when the caller left it unset, so that
    /// evaluating it checks the type's new/established rule.
    pub async fn with_patient_established(
        &self,
        org_id: &str,
        patient_id: &str,
        request: &BookingRequest,
        now: Timestamp,
    ) -> Result<BookingRequest> {
        let mut request = request.clone();
        if request.patient_established.is_none() {
            request.patient_established =
                Some(self.patient_established(org_id, patient_id, now).await?);
        }
        Ok(request)
    }
}
