//! The resource types served, each mapping a domain type to and from FHIR.

pub mod appointment;
pub mod audit_event;
pub mod coverage;
pub mod encounter;
pub mod healthcare_service;
pub mod location;
pub mod organization;
pub mod patient;
pub mod payer;
pub mod practitioner;
pub mod practitioner_role;
pub mod related_person;
pub mod schedule;
pub mod scheduling;
pub mod slot;
