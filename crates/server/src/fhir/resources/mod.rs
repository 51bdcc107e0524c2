//! The resource types served, each mapping a domain type to and from FHIR.

pub mod audit_event;
pub mod location;
pub mod organization;
pub mod practitioner;
pub mod practitioner_role;
