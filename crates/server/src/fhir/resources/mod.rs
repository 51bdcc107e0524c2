//! The resource types served, each mapping a domain type to and from FHIR.

pub mod audit_event;
pub mod coverage;
pub mod location;
pub mod organization;
pub mod patient;
pub mod payer;
pub mod practitioner;
pub mod practitioner_role;
pub mod related_person;
