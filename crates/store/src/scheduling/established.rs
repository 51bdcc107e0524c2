//! New or established patient: the domain's rule
//! ([`is_established`](carefront_domain::scheduling::is_established)) as one
//! indexed query, and the booking request it completes.

use super::{int, us};
use crate::db::sql;
use crate::records::Val;
use crate::{Db, Result};
use carefront_domain::scheduling::{BookingRequest, VISIT_HAPPENED, established_since};
use jiff::Timestamp;

/// `VISIT_HAPPENED` as SQL text (constants).
fn visit_happened_statuses() -> String {
    VISIT_HAPPENED
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
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
        let binds = [
            Val::from(org_id),
            Val::from(patient_id),
            int(us(established_since(now))),
            int(us(now)),
        ];
        let found = super::bind_vals(
            sqlx::query(sql(format!(
                "SELECT id FROM appointments WHERE org_id = $1 AND patient_id = $2 \
                 AND start_us >= $3 AND start_us < $4 AND deleted = 0 AND status IN ({}) \
                 LIMIT 1",
                visit_happened_statuses()
            ))),
            &binds,
        )
        .fetch_optional(self.reader())
        .await?;
        Ok(found.is_some())
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
