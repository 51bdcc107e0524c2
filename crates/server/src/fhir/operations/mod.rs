//! FHIR operations (`$name`), each registered with the resource it works on.

pub mod appointment_book;
pub mod appointment_find;
pub mod appointment_hold;
pub mod patient_match;
