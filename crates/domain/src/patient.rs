//! The patient record. Registration, matching and merge build on this.

use crate::directory::{Address, AdministrativeGender};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// Medical record number, unique in the organization and never reused.
    pub mrn: String,
    pub given: String,
    pub middle: Option<String>,
    pub family: String,
    pub birth_date: jiff::civil::Date,
    pub sex: AdministrativeGender,
    /// E.164.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<Address>,
    /// BCP-47 language tag.
    pub language: Option<String>,
}

impl Patient {
    pub fn display_name(&self) -> String {
        format!("{}, {}", self.family, self.given)
    }
}
