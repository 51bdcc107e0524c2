//! Each patient's next appointment, for lists of patients (the search
//! results) where one query per patient would be too many.

use super::load::holding_statuses;
use super::records::AppointmentRecord;
use super::{bind_vals, int, us};
use crate::db::sql;
use crate::records::{Record, Val, select_columns, versioned};
use crate::{Db, Result};
use carefront_domain::directory::Versioned;
use jiff::Timestamp;
use std::collections::HashMap;

/// Patients asked about per statement; always this many bound (the last
/// repeated), so the statement has one shape and stays prepared.
const PATIENTS_PER_QUERY: usize = 25;

impl Db {
    /// The first appointment still keeping its time that starts at or after
    /// `from`, for each of `patient_ids` that has one.
    pub async fn next_appointments(
        &self,
        org_id: &str,
        patient_ids: &[&str],
        from: Timestamp,
    ) -> Result<HashMap<String, Versioned<AppointmentRecord>>> {
        let mut next: HashMap<String, Versioned<AppointmentRecord>> = HashMap::new();
        for chunk in patient_ids.chunks(PATIENTS_PER_QUERY) {
            let mut binds = vec![Val::from(org_id), int(us(from))];
            let placeholders: Vec<String> = (0..PATIENTS_PER_QUERY)
                .map(|i| {
                    binds.push(Val::from(chunk[i.min(chunk.len() - 1)]));
                    format!("${}", binds.len())
                })
                .collect();
            let rows = bind_vals(
                sqlx::query(sql(format!(
                    "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0 AND start_us >= $2 \
                     AND status IN ({}) AND patient_id IN ({}) ORDER BY start_us, id",
                    select_columns::<AppointmentRecord>(),
                    AppointmentRecord::TABLE,
                    holding_statuses(),
                    placeholders.join(", ")
                ))),
                &binds,
            )
            .fetch_all(&mut *self.reader().await?)
            .await?;
            for row in &rows {
                let appointment: Versioned<AppointmentRecord> = versioned(row)?;
                next.entry(appointment.value.appointment.patient_id.clone())
                    .or_insert(appointment);
            }
        }
        Ok(next)
    }
}
