//! FHIR operations (`$name`), each registered with the resource it works on.

pub mod patient_match;
