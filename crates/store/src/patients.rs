//! Patient rows. Registration, search and matching extend this module.

use crate::directory::{address_from_row, address_values, decode_err};
use crate::records::{Record, Val};
use crate::{Result, WriteTx};
use carefront_domain::directory::AdministrativeGender;
use carefront_domain::patient::Patient;
use sqlx::Row;
use sqlx::any::AnyRow;

impl Record for Patient {
    const KIND: &'static str = "Patient";
    const TABLE: &'static str = "patients";
    const COLUMNS: &'static [&'static str] = &[
        "mrn",
        "given",
        "middle",
        "family",
        "birth_date",
        "sex",
        "phone",
        "email",
        "line1",
        "line2",
        "city",
        "state",
        "postal_code",
        "country",
        "language",
    ];
    const SORT: &'static str = "family, given";

    fn values(&self) -> Vec<Val> {
        let mut v = vec![
            self.mrn.clone().into(),
            self.given.clone().into(),
            self.middle.clone().into(),
            self.family.clone().into(),
            self.birth_date.to_string().into(),
            self.sex.code().into(),
            self.phone.clone().into(),
            self.email.clone().into(),
        ];
        match &self.address {
            Some(a) => v.extend(address_values(a)),
            None => v.extend((0..6).map(|_| Val::Text(None))),
        }
        v.push(self.language.clone().into());
        v
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let birth_date: String = row.try_get("birth_date")?;
        let sex: String = row.try_get("sex")?;
        let has_address = row.try_get::<Option<String>, _>("line1")?.is_some();
        Ok(Patient {
            mrn: row.try_get("mrn")?,
            given: row.try_get("given")?,
            middle: row.try_get("middle")?,
            family: row.try_get("family")?,
            birth_date: birth_date
                .parse()
                .map_err(|e: jiff::Error| decode_err("birth_date", e.to_string()))?,
            sex: AdministrativeGender::from_code(&sex)
                .ok_or_else(|| decode_err("sex", format!("unknown code '{sex}'")))?,
            phone: row.try_get("phone")?,
            email: row.try_get("email")?,
            address: if has_address {
                Some(address_from_row(row)?)
            } else {
                None
            },
            language: row.try_get("language")?,
        })
    }
}

/// MRNs are per-organization sequence numbers, zero-padded, never reused.
pub fn format_mrn(n: i64) -> String {
    format!("{n:08}")
}

impl WriteTx {
    /// Registers a patient, assigning the next MRN when none is given.
    pub async fn create_patient(
        &mut self,
        id: &str,
        mut patient: Patient,
        changed_by: &str,
    ) -> Result<carefront_domain::directory::Versioned<Patient>> {
        if patient.mrn.is_empty() {
            patient.mrn = format_mrn(self.next_counter("mrn").await?);
        }
        self.create(id, &patient, changed_by).await
    }
}
