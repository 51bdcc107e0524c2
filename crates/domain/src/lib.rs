//! Carefront's domain core: the rules of the front office as plain Rust.
//!
//! Nothing here performs I/O. Storage, HTTP, HTML and the healthcare wire
//! formats are adapters around these types (see ARCHITECTURE.md).

pub mod access;
pub mod audit;
pub mod contact;
pub mod coverage;
pub mod directory;
pub mod matching;
pub mod mpi;
pub mod patient;
pub mod patient_search;
pub mod scheduling;
pub mod security;
pub mod text;
pub mod validation;
pub mod visit;

pub use access::{Area, Role};
pub use validation::{FieldError, ValidationErrors};
