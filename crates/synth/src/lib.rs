//! Deterministic synthetic data for demos, tests and benchmarks.
//!
//! Everything here is invented: names are drawn from embedded lists and
//! combined at random, street addresses are made up (in real cities, so
//! validation and look-ups behave as in production), phone numbers use the
//! 555-01XX lines reserved for fiction, email addresses use the reserved
//! `example.*` domains and NPIs use a leading digit that is never issued.
//! No output describes a real person.
//!
//! Output depends only on the seed (and, for patients, the index), is
//! stable across platforms, and never reads the clock.

mod clinic;
mod coverage;
pub mod duplicates;
mod names;
mod patients;
mod places;
mod rng;
pub mod schedule;

pub use coverage::{DemoCoverage, demo_coverages};
pub use patients::{MAX_AGE, PatientGenerator, Patients, REFERENCE_DATE};

use carefront_domain::Role;
use carefront_domain::directory::{Location, Organization, Practitioner, RoomKind};

/// A complete small practice to start a demo or a benchmark from.
///
/// Records refer to each other by index, because ids are assigned when the
/// clinic is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoClinic {
    pub organization: Organization,
    /// Three locations: two in one Eastern-time metro and one in Central or
    /// Mountain time.
    pub locations: Vec<Location>,
    pub rooms: Vec<DemoRoom>,
    /// Twelve practitioners with valid (never issued) NPIs.
    pub practitioners: Vec<Practitioner>,
    /// Each practitioner at one or two locations, covering primary care,
    /// pediatrics, dermatology, cardiology and behavioral health.
    pub practitioner_roles: Vec<DemoPractitionerRole>,
    /// One account per [`Role`], in [`Role::ALL`] order.
    pub staff: Vec<DemoStaff>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRoom {
    /// Index into [`DemoClinic::locations`].
    pub location: usize,
    pub name: String,
    pub kind: RoomKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPractitionerRole {
    /// Index into [`DemoClinic::practitioners`].
    pub practitioner: usize,
    /// Index into [`DemoClinic::locations`].
    pub location: usize,
    /// NUCC taxonomy code from [`carefront_domain::directory::SPECIALTIES`].
    pub specialty: &'static str,
}

/// A staff sign-in for the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoStaff {
    /// The role's code without underscores, e.g. `frontdesk`, so demo
    /// instructions can name it without looking it up.
    pub username: String,
    /// For [`Role::Clinician`], the name of `practitioners[0]`, so the
    /// clinician account has a schedule of its own.
    pub display_name: String,
    pub role: Role,
    /// `<username>-<word>-<word>-<two digits>`: printable, at least 12
    /// characters, derived from the seed. For demos only.
    pub password: String,
}

/// The demo clinic for `seed`. The same seed always gives the same clinic.
pub fn demo_clinic(seed: u64) -> DemoClinic {
    clinic::demo_clinic(seed)
}
