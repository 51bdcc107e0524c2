//! Synthetic scheduling data: appointment types for the specialties a clinic
//! has, bookable rooms, opening hours, weekly provider templates, holidays
//! and other exceptions, and a plan of booked appointments that fits them.
//!
//! Everything is a pure function of the clinic, the seed and the dates it is
//! given (the planner also takes "now", which decides which visits are over);
//! nothing reads the clock. Records point at the clinic by id through
//! [`ScheduleIds`], so a seeder passes the ids storage assigned and stores
//! templates and exceptions as they are; planned appointments point at the
//! clinic by index, like the rest of this crate.
//!
//! Every planned appointment of the window was accepted by the domain's
//! [`evaluate_booking`] when it was placed: at its `booked_at` instant,
//! against the templates, exceptions, opening hours, rooms and every planned
//! appointment that held time then. The planner works one provider and one
//! day at a time and only shows the domain the few bookings that overlap a
//! candidate, so the benchmark scale (200 providers, 500,000 appointments)
//! takes seconds. The plan agrees with the new-or-established rule
//! ([`is_established`](carefront_domain::scheduling::is_established)):
//! every patient it books as established has an
//! earlier, fulfilled first visit ([`PlannedAppointment::history`]) 2 to 30
//! months back, and a patient it books as new has none.

use crate::places::{CITIES, City, address_in, fictional_phone};
use crate::rng::{Draw, Purpose};
use crate::{
    DemoClinic, DemoPractitionerRole, DemoRoom, PatientGenerator, REFERENCE_DATE, demo_clinic,
};
use carefront_domain::directory::{
    AdministrativeGender, Location, Practitioner, Room, RoomKind, npi_check_digit,
};
use carefront_domain::scheduling::time::{local, slot_start_instant};
use carefront_domain::scheduling::{
    Appointment, AppointmentStatus, AppointmentType, AvailabilityBlock, Booking, BookingRequest,
    CancelReason, ExceptionKind, LocationHours, Modality, OpeningHours, PatientEligibility,
    Provider, Resource, ResourceKind, ScheduleException, SlotInput, Template, evaluate_booking,
};
use jiff::civil::{Date, DateTime, Time, Weekday, date, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

// ---------------------------------------------------------------- public API

/// Providers in the benchmark clinic ([`scaled_clinic`]).
pub const BENCHMARK_PROVIDERS: usize = 200;
/// Patients the benchmark's appointments are drawn from.
pub const BENCHMARK_PATIENTS: u64 = 1_000_000;
/// Appointments the benchmark plan holds ([`AppointmentParams::benchmark`]).
pub const BENCHMARK_APPOINTMENTS: u64 = 500_000;

/// The ids of a clinic's records, by index: storage assigns them, and
/// [`ScheduleIds::placeholders`] stands in when nothing is stored. The
/// functions taking ids panic when a list's length differs from the
/// clinic's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleIds {
    /// One per [`DemoClinic::locations`].
    pub locations: Vec<String>,
    /// One per [`DemoClinic::rooms`].
    pub rooms: Vec<String>,
    /// One per [`DemoClinic::practitioners`].
    pub practitioners: Vec<String>,
}

impl ScheduleIds {
    /// `location-0`, `room-0`, `practitioner-0`, …
    pub fn placeholders(clinic: &DemoClinic) -> Self {
        let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect();
        Self {
            locations: ids("location", clinic.locations.len()),
            rooms: ids("room", clinic.rooms.len()),
            practitioners: ids("practitioner", clinic.practitioners.len()),
        }
    }

    fn check(&self, clinic: &DemoClinic) {
        assert_eq!(self.locations.len(), clinic.locations.len(), "location ids");
        assert_eq!(self.rooms.len(), clinic.rooms.len(), "room ids");
        assert_eq!(
            self.practitioners.len(),
            clinic.practitioners.len(),
            "practitioner ids"
        );
    }
}

/// Everything slot search and booking need besides appointments, for one
/// clinic. Built by [`DemoSchedule::new`]; each part also has its own
/// function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSchedule {
    pub ids: ScheduleIds,
    /// [`appointment_types`].
    pub appointment_types: Vec<AppointmentType>,
    /// [`schedule_resources`]: one per room, in [`DemoClinic::rooms`] order.
    pub resources: Vec<Resource>,
    /// [`location_hours`]: one per location, in order.
    pub location_hours: Vec<LocationHours>,
    /// [`providers`]: one per practitioner, in order.
    pub providers: Vec<Provider>,
    /// [`templates`].
    pub templates: Vec<Template>,
    /// [`exceptions`].
    pub exceptions: Vec<ScheduleException>,
}

impl DemoSchedule {
    /// The clinic's schedule for `seed`, with templates effective from some
    /// months before `around` and exceptions within about a year of it.
    pub fn new(clinic: &DemoClinic, ids: ScheduleIds, seed: u64, around: Date) -> Self {
        ids.check(clinic);
        let templates = templates(clinic, &ids, seed, around);
        let exceptions = exceptions_for(clinic, &ids, &templates, seed, around);
        Self {
            appointment_types: appointment_types(clinic),
            resources: schedule_resources(clinic, &ids),
            location_hours: location_hours(clinic, &ids),
            providers: providers(clinic, &ids),
            templates,
            exceptions,
            ids,
        }
    }

    /// A [`SlotInput`] for the type at `type_index` over `[from, until)`,
    /// with every provider, template, exception and resource and no
    /// bookings: what slot search sees before anything is booked.
    pub fn slot_input(
        &self,
        type_index: usize,
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> SlotInput {
        SlotInput {
            appointment_type: self.appointment_types[type_index].clone(),
            locations: self.location_hours.clone(),
            providers: self.providers.clone(),
            templates: self.templates.clone(),
            exceptions: self.exceptions.clone(),
            resources: self.resources.clone(),
            bookings: vec![],
            holds: vec![],
            from,
            until,
            now,
        }
    }

    /// The planned appointments: see [`appointments`].
    pub fn appointments(&self, params: &AppointmentParams) -> Vec<PlannedAppointment> {
        appointments(self, params)
    }
}

/// What [`appointments`] plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentParams {
    /// Drives every choice of the plan (independent of the schedule's seed).
    pub seed: u64,
    /// Patients come from `PatientGenerator::new(patient_seed)`, indexes
    /// `0..patients` (ages are read from it: pediatricians see children).
    pub patient_seed: u64,
    pub patients: u64,
    /// Visits that ended by now are over (fulfilled, no-show or cancelled);
    /// today's visits are in progress, arrived or booked; later ones are
    /// booked (a few already cancelled). Nothing is booked after `now`.
    pub now: Timestamp,
    /// Local days before and after each location's today (today included).
    pub days_before: u32,
    pub days_after: u32,
    /// When set, fill is scaled so the plan holds about this many
    /// appointments, then trimmed to exactly this many if it holds more.
    /// The established patients' earlier visits
    /// ([`PlannedAppointment::history`]) count towards it.
    pub target: Option<u64>,
}

impl AppointmentParams {
    /// The demo: the past 30 and next 30 days around `now`, patients from
    /// the same seed as the clinic.
    pub fn demo(seed: u64, patients: u64, now: Timestamp) -> Self {
        Self {
            seed,
            patient_seed: seed,
            patients,
            now,
            days_before: 30,
            days_after: 30,
            target: None,
        }
    }

    /// The benchmark: exactly [`BENCHMARK_APPOINTMENTS`] over
    /// [`BENCHMARK_PATIENTS`], 210 days back and 90 days ahead, the
    /// established patients' earlier visits included. A realistic
    /// clinic day holds about 14 visits per provider (most of them 15 to 45
    /// minutes, some time left open), so 200 providers need about 180
    /// working days for half a million at the demo's fill; the 90 days
    /// ahead are the booking horizon slot search looks at.
    pub fn benchmark(seed: u64, now: Timestamp) -> Self {
        Self {
            seed,
            patient_seed: seed,
            patients: BENCHMARK_PATIENTS,
            now,
            days_before: 210,
            days_after: 90,
            target: Some(BENCHMARK_APPOINTMENTS),
        }
    }
}

/// One appointment of the plan. Indexes point into the clinic and the
/// schedule; [`PlannedAppointment::to_appointment`] makes the domain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAppointment {
    /// Index into the patient stream (`0..AppointmentParams::patients`).
    pub patient: u64,
    /// Whether this is the patient's first visit with the practice (their
    /// index is never used before it in the plan), booked as a new patient.
    pub new_patient: bool,
    /// An established patient's first visit, before the window: fulfilled,
    /// 2 to 30 months before `now` and before the patient's first booking in
    /// the window, so the patient counts as established (seen in the last
    /// three years) whenever the window books them. It follows the
    /// provider's weekly pattern (weekday, location, block hours, a
    /// first-visit type the block offers, a room of its kind) but not the
    /// templates' effective dates, and holds its time: no two of these
    /// share a provider or a room. `new_patient` is set.
    pub history: bool,
    /// Index into [`DemoClinic::practitioners`].
    pub practitioner: usize,
    /// Index into [`DemoClinic::locations`].
    pub location: usize,
    /// Index into [`DemoSchedule::appointment_types`].
    pub appointment_type: usize,
    /// Index into [`DemoClinic::rooms`] when the type needs one.
    pub room: Option<usize>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Wall-clock start at the location.
    pub local_start: DateTime,
    /// When it was booked; the booking was evaluated at this instant.
    pub booked_at: Timestamp,
    pub status: AppointmentStatus,
    /// `booked_at` for booked visits, else when the status last changed.
    pub status_changed_at: Timestamp,
    pub cancel_reason: Option<CancelReason>,
    pub arrived_at: Option<Timestamp>,
    /// The covering block's overbooking limit (the claim seats it may use).
    pub max_seat: u8,
}

impl PlannedAppointment {
    /// Whether the appointment keeps its time (everything but cancelled
    /// ones: a no-show held its time until the visit was missed).
    pub fn holds_time(&self) -> bool {
        self.status != AppointmentStatus::Cancelled
    }

    /// The domain appointment, with storage's ids.
    pub fn to_appointment(
        &self,
        id: impl Into<String>,
        patient_id: impl Into<String>,
        schedule: &DemoSchedule,
    ) -> Appointment {
        Appointment {
            id: id.into(),
            patient_id: patient_id.into(),
            practitioner_id: schedule.ids.practitioners[self.practitioner].clone(),
            location_id: schedule.ids.locations[self.location].clone(),
            appointment_type_id: schedule.appointment_types[self.appointment_type].id.clone(),
            resource_ids: self
                .room
                .map(|r| vec![schedule.ids.rooms[r].clone()])
                .unwrap_or_default(),
            start: self.start,
            end: self.end,
            status: self.status,
            status_changed_at: self.status_changed_at,
            max_seat: self.max_seat,
            cancel_reason: self.cancel_reason,
            override_reason: None,
            series_id: None,
            rescheduled_from: None,
            arrived_at: self.arrived_at,
        }
    }
}

// ---------------------------------------------------------------- appointment types

const FAMILY: &str = "207Q00000X";
const INTERNAL: &str = "207R00000X";
const FAMILY_NP: &str = "363LF0000X";
const PEDIATRICS: &str = "208000000X";
const DERMATOLOGY: &str = "207N00000X";
const CARDIOLOGY: &str = "207RC0000X";
const PSYCHIATRY: &str = "2084P0800X";
const PSYCHOLOGIST: &str = "103TC0700X";
const SOCIAL_WORKER: &str = "1041C0700X";

const PRIMARY_CARE: &[&str] = &[FAMILY, INTERNAL, FAMILY_NP];
const THERAPY: &[&str] = &[PSYCHOLOGIST, SOCIAL_WORKER];
const BEHAVIORAL: &[&str] = &[PSYCHIATRY, PSYCHOLOGIST, SOCIAL_WORKER];

/// Which template blocks a type is offered in.
const AM: u8 = 1;
const PM: u8 = 2;
const EVENING: u8 = 4;
const SATURDAY: u8 = 8;

const HOUR: u32 = 60;
const DAY: u32 = 24 * HOUR;

/// One row of the type catalogue.
struct TypeSpec {
    id: &'static str,
    name: &'static str,
    minutes: u32,
    /// Dark enough for white text (contrast at least 4.5:1, WCAG AA); the
    /// tests check every colour.
    color: &'static str,
    specialties: &'static [&'static str],
    resource: Option<ResourceKind>,
    modality: Modality,
    eligibility: PatientEligibility,
    min_notice_minutes: u32,
    max_days_ahead: u32,
    instructions: &'static str,
    intake_form: Option<&'static str>,
    /// Relative share among the types a block offers.
    weight: u32,
    /// How long before the visit it is usually booked, in minutes.
    lead: (u32, u32),
    /// Blocks it is offered in ([`AM`], [`PM`], …).
    blocks: u8,
    /// Patient ages (whole years, inclusive).
    ages: (i16, i16),
}

const ANY_AGE: (i16, i16) = (0, 130);
const ADULT: (i16, i16) = (18, 130);
const CHILD: (i16, i16) = (0, 17);

const TYPES: &[TypeSpec] = &[
    TypeSpec {
        id: "pc-new",
        name: "New patient visit",
        minutes: 40,
        color: "#1f5f8b",
        specialties: PRIMARY_CARE,
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: DAY,
        max_days_ahead: 120,
        instructions: "Please arrive 15 minutes early to finish registration. Bring a photo ID, \
            your insurance card, a list of your current medications and any records from your \
            previous doctor.",
        intake_form: Some("new-patient-history"),
        weight: 8,
        lead: (7 * DAY, 60 * DAY),
        blocks: AM | PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "pc-established",
        name: "Established patient visit",
        minutes: 20,
        color: "#2e6b30",
        specialties: PRIMARY_CARE,
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 90,
        instructions: "Bring your medications or an up-to-date list of them.",
        intake_form: None,
        weight: 40,
        lead: (DAY, 30 * DAY),
        blocks: AM | PM | EVENING | SATURDAY,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "pc-physical",
        name: "Annual physical",
        minutes: 30,
        color: "#00695c",
        specialties: PRIMARY_CARE,
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 365,
        instructions: "If your doctor ordered fasting blood work, do not eat for 8 hours before \
            the visit; water and your usual medications are fine.",
        intake_form: Some("annual-wellness-questionnaire"),
        weight: 14,
        lead: (14 * DAY, 120 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "pc-sick",
        name: "Same-day sick visit",
        minutes: 15,
        color: "#b3261e",
        specialties: PRIMARY_CARE,
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: 30,
        max_days_ahead: 2,
        instructions: "If you have a fever, cough or rash, tell the front desk when you arrive \
            so we can room you right away.",
        intake_form: None,
        weight: 14,
        lead: (30, DAY),
        blocks: AM | PM | EVENING | SATURDAY,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "pc-telehealth",
        name: "Telehealth follow-up",
        minutes: 15,
        color: "#4527a0",
        specialties: PRIMARY_CARE,
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: 30,
        max_days_ahead: 30,
        instructions: "You will get a video link by text and email 15 minutes before the \
            visit. Join from a quiet, private place with your medications at hand.",
        intake_form: None,
        weight: 10,
        lead: (DAY, 14 * DAY),
        blocks: AM | PM | EVENING,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "pc-procedure",
        name: "Minor procedure",
        minutes: 30,
        color: "#6d4c41",
        specialties: &[FAMILY, FAMILY_NP],
        resource: Some(ResourceKind::ProcedureRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 60,
        instructions: "Joint injections, skin tag and wart removal. Tell us beforehand if you \
            take blood thinners, and wear clothing that gives easy access to the area.",
        intake_form: None,
        weight: 4,
        lead: (3 * DAY, 30 * DAY),
        blocks: PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "peds-new",
        name: "Pediatric new patient visit",
        minutes: 30,
        color: "#1565c0",
        specialties: &[PEDIATRICS],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: DAY,
        max_days_ahead: 90,
        instructions: "Please bring your child's immunization record and any records from \
            the previous pediatrician.",
        intake_form: Some("pediatric-history"),
        weight: 8,
        lead: (7 * DAY, 45 * DAY),
        blocks: AM | PM,
        ages: CHILD,
    },
    TypeSpec {
        id: "peds-well-child",
        name: "Well-child visit",
        minutes: 30,
        color: "#2e7d32",
        specialties: &[PEDIATRICS],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 365,
        instructions: "Bring your child's immunization record. For babies, bring a spare \
            diaper and a bottle or snack.",
        intake_form: Some("well-child-questionnaire"),
        weight: 30,
        lead: (14 * DAY, 120 * DAY),
        blocks: AM | PM,
        ages: CHILD,
    },
    TypeSpec {
        id: "peds-sick",
        name: "Pediatric sick visit",
        minutes: 15,
        color: "#c62828",
        specialties: &[PEDIATRICS],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: 15,
        max_days_ahead: 2,
        instructions: "If your child has a fever or rash, tell the front desk when you arrive.",
        intake_form: None,
        weight: 30,
        lead: (20, DAY),
        blocks: AM | PM | SATURDAY,
        ages: CHILD,
    },
    TypeSpec {
        id: "peds-follow-up",
        name: "Pediatric follow-up",
        minutes: 15,
        color: "#00838f",
        specialties: &[PEDIATRICS],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 90,
        instructions: "Bring any medications your child is taking.",
        intake_form: None,
        weight: 15,
        lead: (2 * DAY, 21 * DAY),
        blocks: AM | PM,
        ages: CHILD,
    },
    TypeSpec {
        id: "peds-telehealth",
        name: "Pediatric telehealth visit",
        minutes: 15,
        color: "#5e35b1",
        specialties: &[PEDIATRICS],
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: 30,
        max_days_ahead: 14,
        instructions: "A parent or guardian must join the video visit with the child.",
        intake_form: None,
        weight: 6,
        lead: (DAY, 7 * DAY),
        blocks: PM,
        ages: CHILD,
    },
    TypeSpec {
        id: "derm-new",
        name: "Dermatology new patient visit",
        minutes: 30,
        color: "#ad1457",
        specialties: &[DERMATOLOGY],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: DAY,
        max_days_ahead: 180,
        instructions: "Bring your referral if your plan needs one and a list of products you \
            use on your skin.",
        intake_form: Some("dermatology-history"),
        weight: 12,
        lead: (14 * DAY, 90 * DAY),
        blocks: AM | PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "derm-skin-check",
        name: "Full-body skin check",
        minutes: 20,
        color: "#880e4f",
        specialties: &[DERMATOLOGY],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 365,
        instructions: "Please come without nail polish or makeup so all of your skin can be \
            examined.",
        intake_form: None,
        weight: 22,
        lead: (14 * DAY, 120 * DAY),
        blocks: AM | PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "derm-biopsy",
        name: "Skin biopsy",
        minutes: 30,
        color: "#8e24aa",
        specialties: &[DERMATOLOGY],
        resource: Some(ResourceKind::ProcedureRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 60,
        instructions: "Eat normally. Tell us if you take blood thinners, but do not stop them \
            unless your doctor says so. The site is covered by a small bandage afterwards.",
        intake_form: None,
        weight: 10,
        lead: (2 * DAY, 21 * DAY),
        blocks: PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "derm-follow-up",
        name: "Dermatology follow-up",
        minutes: 15,
        color: "#6a1b9a",
        specialties: &[DERMATOLOGY],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: 2 * HOUR,
        max_days_ahead: 90,
        instructions: "Bring the creams or medicines you were prescribed.",
        intake_form: None,
        weight: 18,
        lead: (3 * DAY, 45 * DAY),
        blocks: AM | PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "derm-telehealth",
        name: "Teledermatology follow-up",
        minutes: 15,
        color: "#4a148c",
        specialties: &[DERMATOLOGY],
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 30,
        instructions: "Before the visit, upload clear photos of the area through the patient \
            portal.",
        intake_form: None,
        weight: 6,
        lead: (DAY, 14 * DAY),
        blocks: PM,
        ages: ANY_AGE,
    },
    TypeSpec {
        id: "cardio-new",
        name: "Cardiology consultation",
        minutes: 40,
        color: "#8b1a1a",
        specialties: &[CARDIOLOGY],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: DAY,
        max_days_ahead: 120,
        instructions: "Bring your referral, recent test results and all your medication \
            bottles. Wear comfortable clothing: you may have an ECG.",
        intake_form: Some("cardiology-history"),
        weight: 10,
        lead: (7 * DAY, 60 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "cardio-follow-up",
        name: "Cardiology follow-up",
        minutes: 20,
        color: "#a52714",
        specialties: &[CARDIOLOGY],
        resource: Some(ResourceKind::ExamRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: 2 * HOUR,
        max_days_ahead: 180,
        instructions: "Bring your blood pressure log if you keep one.",
        intake_form: None,
        weight: 30,
        lead: (7 * DAY, 90 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "cardio-echo",
        name: "Echocardiogram",
        minutes: 45,
        color: "#0d47a1",
        specialties: &[CARDIOLOGY],
        resource: Some(ResourceKind::UltrasoundRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Any,
        min_notice_minutes: DAY,
        max_days_ahead: 90,
        instructions: "Wear a two-piece outfit: you will undress from the waist up. No other \
            preparation is needed; eat and take your medications as usual.",
        intake_form: None,
        weight: 16,
        lead: (3 * DAY, 30 * DAY),
        blocks: PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "cardio-telehealth",
        name: "Cardiology telehealth follow-up",
        minutes: 20,
        color: "#311b92",
        specialties: &[CARDIOLOGY],
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 60,
        instructions: "Have your recent blood pressure and weight readings at hand.",
        intake_form: None,
        weight: 6,
        lead: (2 * DAY, 21 * DAY),
        blocks: AM,
        ages: ADULT,
    },
    TypeSpec {
        id: "psych-eval",
        name: "Psychiatric evaluation",
        minutes: 60,
        color: "#37474f",
        specialties: &[PSYCHIATRY],
        resource: Some(ResourceKind::ConsultRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: 2 * DAY,
        max_days_ahead: 120,
        instructions: "Plan for about an hour. Bring a list of current and past psychiatric \
            medications and any earlier evaluations.",
        intake_form: Some("phq9-gad7"),
        weight: 8,
        lead: (10 * DAY, 60 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "psych-med",
        name: "Medication management",
        minutes: 20,
        color: "#455a64",
        specialties: &[PSYCHIATRY],
        resource: Some(ResourceKind::ConsultRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: 4 * HOUR,
        max_days_ahead: 90,
        instructions: "Bring your medications and note any side effects you have noticed.",
        intake_form: None,
        weight: 30,
        lead: (7 * DAY, 60 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "psych-telehealth",
        name: "Telepsychiatry follow-up",
        minutes: 20,
        color: "#283593",
        specialties: &[PSYCHIATRY],
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 60,
        instructions: "Join from a private place where you can speak freely.",
        intake_form: None,
        weight: 18,
        lead: (3 * DAY, 30 * DAY),
        blocks: AM | PM,
        ages: ADULT,
    },
    TypeSpec {
        id: "therapy-intake",
        name: "Therapy intake",
        minutes: 60,
        color: "#3e2723",
        specialties: THERAPY,
        resource: Some(ResourceKind::ConsultRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::New,
        min_notice_minutes: DAY,
        max_days_ahead: 90,
        instructions: "Plan for about an hour. Please complete the questionnaire in the portal \
            before you come.",
        intake_form: Some("phq9-gad7"),
        weight: 8,
        lead: (5 * DAY, 30 * DAY),
        blocks: AM | PM,
        ages: (6, 130),
    },
    TypeSpec {
        id: "therapy",
        name: "Psychotherapy session",
        minutes: 45,
        color: "#4e342e",
        specialties: THERAPY,
        resource: Some(ResourceKind::ConsultRoom),
        modality: Modality::InPerson,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: DAY,
        max_days_ahead: 90,
        instructions: "Sessions start on time and last 45 minutes.",
        intake_form: None,
        weight: 45,
        lead: (6 * DAY, 14 * DAY),
        blocks: AM | PM | EVENING,
        ages: (6, 130),
    },
    TypeSpec {
        id: "therapy-telehealth",
        name: "Telehealth therapy session",
        minutes: 45,
        color: "#1a237e",
        specialties: BEHAVIORAL,
        resource: None,
        modality: Modality::Telehealth,
        eligibility: PatientEligibility::Established,
        min_notice_minutes: HOUR,
        max_days_ahead: 90,
        instructions: "Join from a private place where you can speak freely; headphones help.",
        intake_form: None,
        weight: 25,
        lead: (6 * DAY, 14 * DAY),
        blocks: AM | PM | EVENING,
        ages: (12, 130),
    },
];

/// The catalogue row for a type id, when the type is one of ours.
fn spec(id: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.id == id)
}

/// Ages a specialty sees (whole years, inclusive).
fn specialty_ages(code: &str) -> (i16, i16) {
    match code {
        PEDIATRICS => CHILD,
        INTERNAL | CARDIOLOGY | PSYCHIATRY => ADULT,
        PSYCHOLOGIST => (6, 130),
        SOCIAL_WORKER => (12, 130),
        _ => ANY_AGE,
    }
}

/// The room kind a specialty's in-person visits mostly use.
fn main_room(code: &str) -> RoomKind {
    if BEHAVIORAL.contains(&code) {
        RoomKind::Consult
    } else {
        RoomKind::Exam
    }
}

fn is_primary_care(code: &str) -> bool {
    PRIMARY_CARE.contains(&code)
}

/// Appointment types for the specialties the clinic's providers hold, in
/// catalogue order. Ids are stable slugs (`pc-new`, `derm-biopsy`, …),
/// unique within an organization.
pub fn appointment_types(clinic: &DemoClinic) -> Vec<AppointmentType> {
    let present: HashSet<&str> = clinic
        .practitioner_roles
        .iter()
        .map(|r| r.specialty)
        .collect();
    TYPES
        .iter()
        .filter(|t| t.specialties.iter().any(|s| present.contains(s)))
        .map(|t| AppointmentType {
            specialties: {
                let mut codes: Vec<String> = t.specialties.iter().map(|s| s.to_string()).collect();
                codes.sort();
                codes
            },
            id: t.id.to_string(),
            name: t.name.to_string(),
            duration_minutes: t.minutes,
            color: t.color.to_string(),
            practitioner_ids: vec![],
            resource_kind: t.resource,
            modality: t.modality,
            eligibility: t.eligibility,
            min_notice_minutes: t.min_notice_minutes,
            max_days_ahead: t.max_days_ahead,
            instructions: Some(
                t.instructions
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            intake_form: t.intake_form.map(str::to_string),
            active: true,
        })
        .collect()
}

// ---------------------------------------------------------------- rooms, hours, providers

/// Every room of the clinic as a bookable resource, in room order.
pub fn schedule_resources(clinic: &DemoClinic, ids: &ScheduleIds) -> Vec<Resource> {
    ids.check(clinic);
    clinic
        .rooms
        .iter()
        .zip(&ids.rooms)
        .map(|(room, id)| {
            Resource::from_room(
                id.clone(),
                &Room {
                    location_id: ids.locations[room.location].clone(),
                    name: room.name.clone(),
                    kind: room.kind,
                },
            )
        })
        .collect()
}

/// Weekdays when a location with evening hours stays open late.
const LATE_DAYS: [u8; 2] = [2, 4];

/// Whether a location has evening hours: the first of each group of three
/// (the demo's flagship, and the same one in each group of
/// [`scaled_clinic`]).
fn has_evening_hours(location: usize) -> bool {
    location.is_multiple_of(3)
}

fn opening_close(location: usize, weekday: u8) -> Time {
    if has_evening_hours(location) && LATE_DAYS.contains(&weekday) {
        time(20, 30, 0, 0)
    } else {
        time(18, 0, 0, 0)
    }
}

/// Opening hours, in location order: weekdays 07:30–18:00, and at the
/// first location of each group of three until 20:30 on Tuesdays and
/// Thursdays. Closed at weekends (an extra session opens a location).
pub fn location_hours(clinic: &DemoClinic, ids: &ScheduleIds) -> Vec<LocationHours> {
    ids.check(clinic);
    clinic
        .locations
        .iter()
        .enumerate()
        .map(|(i, location)| {
            let opening_hours = (1..=5)
                .map(|weekday| OpeningHours {
                    weekday,
                    open: time(7, 30, 0, 0),
                    close: opening_close(i, weekday),
                })
                .collect();
            LocationHours::for_location(ids.locations[i].clone(), location, opening_hours)
        })
        .collect()
}

/// Every practitioner with the specialties of their roles, in order.
pub fn providers(clinic: &DemoClinic, ids: &ScheduleIds) -> Vec<Provider> {
    ids.check(clinic);
    (0..clinic.practitioners.len())
        .map(|p| {
            let mut specialties: Vec<String> = clinic
                .practitioner_roles
                .iter()
                .filter(|r| r.practitioner == p)
                .map(|r| r.specialty.to_string())
                .collect();
            specialties.sort();
            specialties.dedup();
            Provider {
                practitioner_id: ids.practitioners[p].clone(),
                specialties,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- random streams

/// Separate streams of the clinic key for each part of the schedule, far
/// from stream 0 (the demo clinic itself).
#[derive(Clone, Copy)]
enum Stream {
    Templates = 1,
    Exceptions = 2,
    ScaledClinic = 3,
    Plan = 4,
    Trim = 5,
    History = 6,
}

fn draw(seed: u64, stream: Stream, a: u64, b: u64) -> Draw {
    debug_assert!(a < 1 << 24 && b < 1 << 24);
    let stream = (0x5C << 56) | ((stream as u64) << 48) | (a << 24) | b;
    Draw::new(seed, Purpose::Clinic, stream)
}

/// A number per date, distinct for every date jiff supports.
fn day_number(d: Date) -> u64 {
    let n = (i64::from(d.year()) + 10_000) * 372 + i64::from(d.month()) * 31 + i64::from(d.day());
    n as u64
}

// ---------------------------------------------------------------- templates

/// A day's shape: morning block, lunch, afternoon block (local times).
#[derive(Debug, Clone, Copy)]
struct Shape {
    am: (Time, Time),
    pm: (Time, Time),
}

const fn shape(a: (i8, i8), b: (i8, i8), c: (i8, i8), d: (i8, i8)) -> Shape {
    Shape {
        am: (time(a.0, a.1, 0, 0), time(b.0, b.1, 0, 0)),
        pm: (time(c.0, c.1, 0, 0), time(d.0, d.1, 0, 0)),
    }
}

const MEDICAL_SHAPES: [Shape; 5] = [
    shape((8, 0), (12, 0), (13, 0), (17, 0)),
    shape((8, 30), (12, 0), (13, 0), (17, 0)),
    shape((8, 0), (11, 30), (12, 30), (16, 30)),
    shape((9, 0), (12, 30), (13, 30), (17, 30)),
    shape((8, 30), (12, 30), (13, 15), (17, 0)),
];

const BEHAVIORAL_SHAPES: [Shape; 2] = [
    shape((9, 0), (12, 0), (13, 0), (18, 0)),
    shape((8, 0), (12, 0), (13, 0), (17, 0)),
];

/// The evening provider's late day: a midday block, a break, then the
/// evening session until 20:00.
const EVENING_SHAPE: Shape = shape((12, 0), (15, 0), (16, 0), (20, 0));

/// What one provider does on one weekday.
#[derive(Debug, Clone, Copy)]
struct Day {
    weekday: u8,
    location: usize,
    shape: Shape,
    afternoon: Afternoon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Afternoon {
    Clinic,
    /// Administrative time: no afternoon block.
    Off,
    /// Video visits only.
    Telehealth,
    /// The evening session (a late day at a location with evening hours).
    Evening,
}

struct ProviderPlan {
    specialty: &'static str,
    locations: Vec<usize>,
    days: Vec<Day>,
    overbook: u8,
}

/// Per-provider weekly plans, shared by [`templates`] and [`exceptions`].
fn weekly_plans(clinic: &DemoClinic, seed: u64) -> Vec<ProviderPlan> {
    let n = clinic.practitioners.len();
    let mut plans: Vec<ProviderPlan> = (0..n)
        .map(|p| {
            let roles: Vec<&DemoPractitionerRole> = clinic
                .practitioner_roles
                .iter()
                .filter(|r| r.practitioner == p)
                .collect();
            let mut locations: Vec<usize> = Vec::new();
            for r in &roles {
                if !locations.contains(&r.location) {
                    locations.push(r.location);
                }
            }
            ProviderPlan {
                specialty: roles.first().map_or("", |r| r.specialty),
                locations,
                days: Vec::new(),
                overbook: 0,
            }
        })
        .collect();

    // Rooms of each kind per location, and how many providers need one in
    // each half day (location, weekday, afternoon).
    let rooms = |location: usize, kind: RoomKind| {
        clinic
            .rooms
            .iter()
            .filter(|r| r.location == location && r.kind == kind)
            .count()
    };
    let mut taken: HashMap<(usize, u8, bool), usize> = HashMap::new();

    // Per group of twelve providers (the demo clinic's size): who overbooks
    // and who has the evening session.
    let mut overbookers = HashSet::new();
    let mut evening = HashSet::new();
    for group in 0..n.div_ceil(12) {
        let mut d = draw(seed, Stream::Templates, 0, group as u64);
        let members: Vec<usize> = (group * 12..n.min(group * 12 + 12)).collect();
        let eligible: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&p| is_primary_care(plans[p].specialty) || plans[p].specialty == PEDIATRICS)
            .collect();
        let count = 1 + d.below(2) as usize;
        for _ in 0..count.min(eligible.len()) {
            let mut p = d.pick(&eligible);
            while overbookers.contains(&p) {
                p = d.pick(&eligible);
            }
            overbookers.insert(p);
        }
        let late: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&p| {
                is_primary_care(plans[p].specialty)
                    && plans[p]
                        .locations
                        .first()
                        .is_some_and(|&l| has_evening_hours(l))
            })
            .collect();
        if !late.is_empty() {
            evening.insert(d.pick(&late));
        }
    }

    for (p, plan) in plans.iter_mut().enumerate() {
        if plan.locations.is_empty() {
            continue;
        }
        let mut d = draw(seed, Stream::Templates, 1 + p as u64, 0);
        let behavioral = BEHAVIORAL.contains(&plan.specialty);
        let shape = if behavioral {
            d.pick(&BEHAVIORAL_SHAPES)
        } else {
            d.pick(&MEDICAL_SHAPES)
        };
        let mut weekdays: Vec<u8> = vec![1, 2, 3, 4, 5];
        if d.chance(if behavioral { 400 } else { 300 }) {
            let off = d.pick(&[1, 3, 5]);
            weekdays.retain(|&w| w != off);
        }
        let admin_afternoon = d.chance(250).then(|| d.pick(&weekdays));
        let telehealth_afternoon =
            (behavioral && d.chance(500)).then(|| *weekdays.last().expect("days"));
        let is_evening = evening.contains(&p);
        let room = main_room(plan.specialty);

        // Days per location: about 60% at the home location, the rest
        // shared by the others; each day goes to a location whose rooms
        // are not all taken then, when there is one.
        let mut quota: Vec<usize> = vec![0; plan.locations.len()];
        let home = if plan.locations.len() == 1 {
            weekdays.len()
        } else {
            weekdays.len().div_ceil(2) + usize::from(weekdays.len() == 5 && d.chance(400))
        };
        quota[0] = home.min(weekdays.len());
        for i in 0..weekdays.len() - quota[0] {
            let others = quota.len() - 1;
            quota[1 + i % others] += 1;
        }
        // The evening day is spent at home.
        let order: Vec<u8> = if is_evening {
            let mut o: Vec<u8> = weekdays.iter().copied().filter(|&w| w == 2).collect();
            o.extend(weekdays.iter().copied().filter(|&w| w != 2));
            o
        } else {
            // Spread second-location days out: start the walk somewhere.
            let start = d.below(weekdays.len() as u64) as usize;
            (0..weekdays.len())
                .map(|i| weekdays[(start + i) % weekdays.len()])
                .collect()
        };
        for weekday in order {
            let evening_day = is_evening && weekday == 2;
            let mut candidates: Vec<usize> = (0..plan.locations.len()).collect();
            if evening_day {
                candidates.retain(|&i| i == 0);
            }
            // Most remaining quota first, home first among equals.
            candidates.sort_by_key(|&i| (std::cmp::Reverse(quota[i]), i));
            let fits = |i: usize| {
                let l = plan.locations[i];
                taken
                    .get(&(l, weekday, room == RoomKind::Consult))
                    .copied()
                    .unwrap_or(0)
                    < rooms(l, room)
            };
            // A location with rooms free and days left, else one with rooms
            // free (the split is a preference), else the preferred one.
            let Some(&choice) = candidates
                .iter()
                .find(|&&i| quota[i] > 0 && fits(i))
                .or_else(|| candidates.iter().find(|&&i| fits(i)))
                .or(candidates.first())
            else {
                continue;
            };
            quota[choice] = quota[choice].saturating_sub(1);
            let location = plan.locations[choice];
            *taken
                .entry((location, weekday, room == RoomKind::Consult))
                .or_default() += 1;
            let afternoon = if evening_day && LATE_DAYS.contains(&weekday) {
                Afternoon::Evening
            } else if admin_afternoon == Some(weekday) {
                Afternoon::Off
            } else if telehealth_afternoon == Some(weekday) {
                Afternoon::Telehealth
            } else {
                Afternoon::Clinic
            };
            plan.days.push(Day {
                weekday,
                location,
                shape: if afternoon == Afternoon::Evening {
                    EVENING_SHAPE
                } else {
                    shape
                },
                afternoon,
            });
        }
        plan.days.sort_by_key(|day| day.weekday);
        plan.overbook = u8::from(overbookers.contains(&p));
    }
    plans
}

/// Type ids a provider of `specialty` may see in a block of kind `tag` at a
/// location with `rooms`.
fn block_types(specialty: &str, tag: u8, telehealth_only: bool, rooms: &[RoomKind]) -> Vec<String> {
    TYPES
        .iter()
        .filter(|t| t.specialties.contains(&specialty))
        .filter(|t| {
            let (lo, hi) = specialty_ages(specialty);
            lo.max(t.ages.0) <= hi.min(t.ages.1)
        })
        .filter(|t| {
            if telehealth_only {
                t.modality == Modality::Telehealth
            } else {
                t.blocks & tag != 0
            }
        })
        .filter(|t| {
            t.resource
                .is_none_or(|kind| rooms.iter().any(|&r| ResourceKind::from(r) == kind))
        })
        .map(|t| t.id.to_string())
        .collect()
}

/// The first day of the month a year before `around`: templates start
/// there, so a plan may reach about a year back.
pub fn templates_effective_from(around: Date) -> Date {
    around
        .first_of_month()
        .checked_sub(12.months())
        .unwrap_or(around)
}

/// Weekly templates, one per provider and location they work at: mornings
/// and afternoons with a lunch gap (several day shapes), some providers on
/// four days, an administrative afternoon here and there, behavioral health
/// video-only afternoons, one provider per twelve with a Tuesday evening
/// session, and one or two per twelve allowed one extra booking per slot.
/// Each block lists the types it offers (specialty, part of day, and the
/// rooms the location has: echocardiograms only where there is an
/// ultrasound room). Effective from [`templates_effective_from`], open-ended.
pub fn templates(clinic: &DemoClinic, ids: &ScheduleIds, seed: u64, around: Date) -> Vec<Template> {
    ids.check(clinic);
    let from = templates_effective_from(around);
    let mut out = Vec::new();
    for (p, plan) in weekly_plans(clinic, seed).into_iter().enumerate() {
        for &location in &plan.locations {
            let room_kinds: Vec<RoomKind> = clinic
                .rooms
                .iter()
                .filter(|r| r.location == location)
                .map(|r| r.kind)
                .collect();
            let mut blocks = Vec::new();
            for day in plan.days.iter().filter(|d| d.location == location) {
                let mut add = |(start, end): (Time, Time), tag: u8, telehealth: bool| {
                    let types = block_types(plan.specialty, tag, telehealth, &room_kinds);
                    if !types.is_empty() {
                        blocks.push(AvailabilityBlock {
                            weekday: day.weekday,
                            start,
                            end,
                            appointment_type_ids: types,
                            overbook_limit: None,
                        });
                    }
                };
                let evening = day.afternoon == Afternoon::Evening;
                add(day.shape.am, if evening { PM } else { AM }, false);
                match day.afternoon {
                    Afternoon::Clinic => add(day.shape.pm, PM, false),
                    Afternoon::Off => {}
                    Afternoon::Telehealth => add(day.shape.pm, PM, true),
                    Afternoon::Evening => add(day.shape.pm, EVENING, false),
                }
            }
            if blocks.is_empty() {
                continue;
            }
            out.push(Template {
                id: format!("template-{p}-{location}"),
                practitioner_id: ids.practitioners[p].clone(),
                location_id: ids.locations[location].clone(),
                effective_from: from,
                effective_until: None,
                overbook_limit: plan.overbook,
                blocks,
            });
        }
    }
    out
}

// ---------------------------------------------------------------- exceptions

/// The day a holiday is observed: Saturday's on Friday, Sunday's on Monday.
fn observed(d: Date) -> Date {
    match d.weekday() {
        Weekday::Saturday => d.yesterday().unwrap_or(d),
        Weekday::Sunday => d.tomorrow().unwrap_or(d),
        _ => d,
    }
}

/// US federal holidays a clinic closes for, and Christmas Eve afternoon,
/// within a year of `around`.
fn holidays(around: Date) -> Vec<ScheduleException> {
    let mut out = Vec::new();
    let nth = |year: i16, month: i8, n: i8, w: Weekday| {
        date(year, month, 1)
            .nth_weekday_of_month(n, w)
            .expect("every month has a first and last weekday")
    };
    for year in around.year() - 1..=around.year() + 1 {
        let thanksgiving = nth(year, 11, 4, Weekday::Thursday);
        let days = [
            ("New Year's Day", observed(date(year, 1, 1))),
            ("Memorial Day", nth(year, 5, -1, Weekday::Monday)),
            ("Independence Day", observed(date(year, 7, 4))),
            ("Labor Day", nth(year, 9, 1, Weekday::Monday)),
            ("Thanksgiving Day", thanksgiving),
            (
                "Day after Thanksgiving",
                thanksgiving.tomorrow().expect("in range"),
            ),
            ("Christmas Day", observed(date(year, 12, 25))),
        ];
        for (name, day) in days {
            out.push(ScheduleException::holiday(
                format!("holiday-{day}"),
                name,
                day,
                None,
            ));
        }
        let eve = date(year, 12, 24);
        if !matches!(eve.weekday(), Weekday::Saturday | Weekday::Sunday)
            && observed(date(year, 12, 25)) != eve
        {
            out.push(ScheduleException {
                id: format!("holiday-{eve}-afternoon"),
                start: eve.at(12, 0, 0, 0),
                end: eve.tomorrow().expect("in range").at(0, 0, 0, 0),
                kind: ExceptionKind::Holiday {
                    name: "Christmas Eve (closed from noon)".into(),
                    location_id: None,
                },
            });
        }
    }
    let window = |d: Date| (around.duration_since(d).as_hours() / 24).abs() <= 366;
    out.retain(|e| window(e.start.date()));
    out.sort_by_key(|e| e.start);
    out
}

const BLOCK_REASONS: &[&str] = &[
    "Quality committee meeting",
    "Peer chart review",
    "EHR training",
    "Provider meeting",
    "Vaccine storage audit",
];

/// Whether `day` is an organization holiday (any part of it).
fn is_holiday(holidays: &[ScheduleException], day: Date) -> bool {
    holidays.iter().any(|h| h.start.date() == day)
}

/// Exceptions within about a year of `around`: the organization's holidays
/// (federal holidays a clinic closes for, the day after Thanksgiving,
/// Christmas Eve afternoon), and per group of twelve providers: one or two
/// week-long vacations, a day off and an afternoon off within six weeks of
/// `around`, two blocked hours with a reason (one before and one after
/// `around`), two hours of ultrasound maintenance where there is an
/// ultrasound room, and one extra Saturday-morning session in the week
/// after `around`.
pub fn exceptions(
    clinic: &DemoClinic,
    ids: &ScheduleIds,
    seed: u64,
    around: Date,
) -> Vec<ScheduleException> {
    let templates = templates(clinic, ids, seed, around);
    exceptions_for(clinic, ids, &templates, seed, around)
}

fn exceptions_for(
    clinic: &DemoClinic,
    ids: &ScheduleIds,
    templates: &[Template],
    seed: u64,
    around: Date,
) -> Vec<ScheduleException> {
    ids.check(clinic);
    let holidays = holidays(around);
    let mut out = holidays.clone();
    let plans = weekly_plans(clinic, seed);
    let n = clinic.practitioners.len();
    let add_days = |d: Date, days: i64| d.checked_add(days.days()).expect("dates in range");
    let monday = add_days(around, -i64::from(around.weekday().to_monday_zero_offset()));
    // A working day of provider `p` (at its location) within `lo..=hi`
    // days of `around` whose blocks cover `from..to`, not a holiday.
    let working_day = |d: &mut Draw, p: usize, lo: i64, hi: i64, from: Time, to: Time| {
        for _ in 0..40 {
            let day = add_days(around, lo + d.below((hi - lo + 1) as u64) as i64);
            let weekday = day.weekday().to_monday_one_offset() as u8;
            if is_holiday(&holidays, day) {
                continue;
            }
            let covering = templates.iter().find(|t| {
                t.practitioner_id == ids.practitioners[p]
                    && t.blocks
                        .iter()
                        .any(|b| b.weekday == weekday && b.start <= from && to <= b.end)
            });
            if let Some(t) = covering {
                return Some((day, t.location_id.clone()));
            }
        }
        None
    };
    for group in 0..n.div_ceil(12) {
        let mut d = draw(seed, Stream::Exceptions, 0, group as u64);
        let members: Vec<usize> = (group * 12..n.min(group * 12 + 12))
            .filter(|&p| !plans[p].days.is_empty())
            .collect();
        if members.is_empty() {
            continue;
        }
        let pick_distinct = |d: &mut Draw, used: &mut Vec<usize>| {
            let free: Vec<usize> = members
                .iter()
                .copied()
                .filter(|p| !used.contains(p))
                .collect();
            let p = if free.is_empty() {
                d.pick(&members)
            } else {
                d.pick(&free)
            };
            used.push(p);
            p
        };
        let mut used = Vec::new();

        // Vacations: Monday to Friday, within six weeks either side.
        for _ in 0..1 + d.below(2) {
            let p = pick_distinct(&mut d, &mut used);
            let start = add_days(monday, 7 * (d.below(13) as i64 - 6));
            let end = add_days(start, 5);
            out.push(ScheduleException {
                id: format!("timeoff-{p}-{start}"),
                start: start.at(0, 0, 0, 0),
                end: end.at(0, 0, 0, 0),
                kind: ExceptionKind::TimeOff {
                    practitioner_id: ids.practitioners[p].clone(),
                },
            });
        }
        // A day off and an afternoon off.
        let p = pick_distinct(&mut d, &mut used);
        if let Some((day, _)) = working_day(&mut d, p, -28, 28, time(9, 0, 0, 0), time(10, 0, 0, 0))
        {
            out.push(ScheduleException {
                id: format!("timeoff-{p}-{day}"),
                start: day.at(0, 0, 0, 0),
                end: add_days(day, 1).at(0, 0, 0, 0),
                kind: ExceptionKind::TimeOff {
                    practitioner_id: ids.practitioners[p].clone(),
                },
            });
        }
        let p = pick_distinct(&mut d, &mut used);
        if let Some((day, _)) =
            working_day(&mut d, p, -28, 28, time(14, 0, 0, 0), time(16, 0, 0, 0))
        {
            out.push(ScheduleException {
                id: format!("timeoff-{p}-{day}-afternoon"),
                start: day.at(12, 0, 0, 0),
                end: add_days(day, 1).at(0, 0, 0, 0),
                kind: ExceptionKind::TimeOff {
                    practitioner_id: ids.practitioners[p].clone(),
                },
            });
        }
        // Blocked hours, one in the past weeks and one in the coming ones.
        for (lo, hi) in [(-21, -1), (1, 21)] {
            let p = pick_distinct(&mut d, &mut used);
            let (from, to) = (time(15, 0, 0, 0), time(16, 0, 0, 0));
            if let Some((day, _)) = working_day(&mut d, p, lo, hi, from, to) {
                out.push(ScheduleException {
                    id: format!("blocked-{p}-{day}"),
                    start: day.to_datetime(from),
                    end: day.to_datetime(to),
                    kind: ExceptionKind::Blocked {
                        reason: d.pick(BLOCK_REASONS).to_string(),
                        practitioner_id: Some(ids.practitioners[p].clone()),
                        resource_id: None,
                    },
                });
            }
        }
        // Ultrasound maintenance.
        let ultrasound = clinic.rooms.iter().position(|r| {
            r.kind == RoomKind::Ultrasound && (group * 3..group * 3 + 3).contains(&r.location)
        });
        if let Some(r) = ultrasound {
            let mut day = add_days(around, d.between(3, 14) as i64);
            while matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
                || is_holiday(&holidays, day)
            {
                day = add_days(day, 1);
            }
            out.push(ScheduleException {
                id: format!("blocked-room-{r}-{day}"),
                start: day.at(13, 0, 0, 0),
                end: day.at(15, 0, 0, 0),
                kind: ExceptionKind::Blocked {
                    reason: "Ultrasound machine preventive maintenance".into(),
                    practitioner_id: None,
                    resource_id: Some(ids.rooms[r].clone()),
                },
            });
        }
        // An extra Saturday morning (sick visits and follow-ups), next week.
        let primary: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&p| is_primary_care(plans[p].specialty))
            .collect();
        if !primary.is_empty() {
            let p = d.pick(&primary);
            let location = plans[p].locations[0];
            let saturday = add_days(monday, 5 + 7);
            let types = block_types(
                plans[p].specialty,
                SATURDAY,
                false,
                &clinic
                    .rooms
                    .iter()
                    .filter(|r| r.location == location)
                    .map(|r| r.kind)
                    .collect::<Vec<_>>(),
            );
            out.push(ScheduleException {
                id: format!("extra-{p}-{saturday}"),
                start: saturday.at(8, 0, 0, 0),
                end: saturday.at(12, 0, 0, 0),
                kind: ExceptionKind::ExtraSession {
                    practitioner_id: ids.practitioners[p].clone(),
                    location_id: ids.locations[location].clone(),
                    appointment_type_ids: types,
                    overbook_limit: 0,
                },
            });
        }
    }
    out
}

// ---------------------------------------------------------------- scaled clinic

const SITE_NAMES: &[&str] = &[
    "North", "South", "East", "West", "Central", "Downtown", "Uptown", "Midtown",
];

/// A clinic with `providers` practitioners for benchmarks: the demo clinic
/// of `seed` (organization, staff, its first three locations and rooms,
/// its first twelve providers), then further groups of three locations
/// (two in one Eastern-time city, one in Central or Mountain time) with the
/// same rooms and twelve providers each, following the demo's staffing
/// (specialty, credential, which of the group's locations). Names are
/// drawn like the demo's (family names unique while the name lists allow);
/// NPIs start with 9 and pass the check digit, so none is a real provider.
pub fn scaled_clinic(seed: u64, providers: usize) -> DemoClinic {
    let base = demo_clinic(seed);
    let per = base.practitioners.len();
    let mut clinic = base.clone();
    clinic.practitioners.truncate(providers);
    clinic
        .practitioner_roles
        .retain(|r| r.practitioner < providers);
    let domain = base.practitioners[0]
        .email
        .as_deref()
        .and_then(|e| e.split_once('@'))
        .map_or("example.org", |(_, d)| d)
        .to_string();
    let mut families: HashSet<String> = base
        .practitioners
        .iter()
        .map(|p| p.family.clone())
        .collect();
    let mut npis: HashSet<String> = base
        .practitioners
        .iter()
        .filter_map(|p| p.npi.clone())
        .collect();
    for group in 1..providers.div_ceil(per) {
        let mut d = draw(seed, Stream::ScaledClinic, group as u64, 0);
        let offset = clinic.locations.len();
        let east = pick_city(&mut d, |c| c.timezone == "America/New_York");
        let west = pick_city(&mut d, |c| {
            matches!(c.timezone, "America/Chicago" | "America/Denver")
        });
        let first = d.below(SITE_NAMES.len() as u64) as usize;
        let second = (first + 1 + d.below(SITE_NAMES.len() as u64 - 1) as usize) % SITE_NAMES.len();
        let names = [
            format!(
                "{} {} {}",
                base.organization.name, east.name, SITE_NAMES[first]
            ),
            format!(
                "{} {} {}",
                base.organization.name, east.name, SITE_NAMES[second]
            ),
            format!("{} {}", base.organization.name, west.name),
        ];
        for (city, name) in [east, east, west].into_iter().zip(names) {
            clinic.locations.push(Location {
                name,
                timezone: city.timezone.to_string(),
                address: address_in(&mut d, city),
                phone: Some(fictional_phone(&mut d, city)),
                active: true,
            });
        }
        for room in base.rooms.iter().filter(|r| r.location < 3) {
            clinic.rooms.push(DemoRoom {
                location: offset + room.location,
                name: room.name.clone(),
                kind: room.kind,
            });
        }
        let cities = [east, east, west];
        for j in 0..per.min(providers - group * per) {
            let pattern = &base.practitioners[j];
            let index = clinic.practitioners.len();
            let gender = if d.chance(520) {
                AdministrativeGender::Female
            } else {
                AdministrativeGender::Male
            };
            let mut name = crate::names::person_name(&mut d, gender, 40);
            for _ in 0..50 {
                if !families.contains(&name.family) {
                    break;
                }
                name = crate::names::person_name(&mut d, gender, 40);
            }
            families.insert(name.family.clone());
            let mut email = String::new();
            crate::names::push_slug(&mut email, &name.given);
            email.push('.');
            crate::names::push_slug(&mut email, &name.family);
            let _ = write!(email, ".{index}@{domain}");
            let roles: Vec<&DemoPractitionerRole> = base
                .practitioner_roles
                .iter()
                .filter(|r| r.practitioner == j)
                .collect();
            let home = roles.first().map_or(0, |r| r.location.min(2));
            clinic.practitioners.push(Practitioner {
                npi: Some(unique_npi(&mut d, &mut npis)),
                prefix: pattern.prefix.clone(),
                given: name.given,
                family: name.family,
                suffix: pattern.suffix.clone(),
                gender: Some(gender),
                phone: Some(fictional_phone(&mut d, cities[home])),
                email: Some(email),
                active: true,
            });
            for r in roles {
                clinic.practitioner_roles.push(DemoPractitionerRole {
                    practitioner: index,
                    location: offset + r.location,
                    specialty: r.specialty,
                });
            }
        }
    }
    clinic
}

fn pick_city(d: &mut Draw, keep: impl Fn(&City) -> bool) -> &'static City {
    let candidates: Vec<&'static City> = CITIES.iter().filter(|c| keep(c)).collect();
    candidates[d.weighted_index(&candidates, |c| c.weight)]
}

fn unique_npi(d: &mut Draw, used: &mut HashSet<String>) -> String {
    loop {
        let mut digits = vec![9];
        digits.extend((0..8).map(|_| d.below(10) as u32));
        digits.push(npi_check_digit(&digits));
        let npi: String = digits.iter().map(|&x| char::from(b'0' + x as u8)).collect();
        if used.insert(npi.clone()) {
            return npi;
        }
    }
}

// ---------------------------------------------------------------- the appointment plan

/// Why appointments are cancelled, with their share.
const CANCEL_REASONS: &[(CancelReason, u32)] = &[
    (CancelReason::Patient, 30),
    (CancelReason::PatientPortal, 20),
    (CancelReason::PatientReminder, 15),
    (CancelReason::PatientFeelingBetter, 10),
    (CancelReason::PatientTransportation, 5),
    (CancelReason::Weather, 3),
    (CancelReason::ProviderPersonal, 4),
    (CancelReason::ProviderMeeting, 2),
    (CancelReason::Financial, 2),
    (CancelReason::Other, 4),
];

/// The plan: booked appointments over the days around `params.now` that fit
/// the schedule, about 80% of the available time on past days and today,
/// thinning to about 50% at the end of the window (people book closer
/// visits), in generation order (by day, provider, time).
///
/// Per provider and day, a walk through each session offers the next time
/// to a type the block allows (weighted by how common it is, limited to
/// what can have been booked by now: a same-day sick visit is never booked
/// a month ahead), draws whether someone booked it, a patient (an
/// established patient of a fitting age not seen elsewhere that day, or a
/// first-time patient for new-patient types), when it was booked, and its
/// fate; then [`evaluate_booking`] checks it at its booking instant against
/// the schedule and the appointments that held time then, and only a
/// booking that fits without override is kept. Providers who may overbook
/// sometimes take a second patient at the same time; a cancelled visit's
/// time is often rebooked after the cancellation.
///
/// Over (ended by `now`): 88% fulfilled, 5% no-show, 7% cancelled with a
/// reason. Under way: checked in. Later today: booked, or arrived when due
/// within 20 minutes. Future: booked, 3.5% already cancelled.
///
/// Patients: indexes below 80% of `params.patients` are the practice's
/// established patients, new patients are taken from the top down, each
/// once, so the plan runs out of new patients with a small patient count
/// (their slots stay open). Every established patient the window books
/// was born a week before, and has one earlier visit
/// ([`PlannedAppointment::history`]): their first, with a first-visit type
/// (`pc-new`, `derm-new`, …), fulfilled 2 to 30 months before `now` and
/// before their first booking in the window, mostly with the provider the
/// window books them with (another one when that provider's first-visit
/// types do not suit their age then). So at every booking instant of the
/// plan, and at `now`, the domain's three-year rule calls a patient
/// established exactly when the plan booked them as such. The earlier
/// visits come first in the result (by start), then the window in
/// generation order; with a `target`, they count towards it.
pub fn appointments(
    schedule: &DemoSchedule,
    params: &AppointmentParams,
) -> Vec<PlannedAppointment> {
    let mut planner = Planner::new(schedule, params);
    let scale = match params.target {
        Some(target) => {
            let (expected, established) = planner.expected();
            if expected > 0.0 {
                let window =
                    window_for(target, established / expected, planner.patients.established);
                (window * 1.06 / expected).clamp(0.05, 1.25)
            } else {
                1.0
            }
        }
        None => 1.0,
    };
    planner.scale = scale;
    planner.run();
    planner.finish()
}

/// How many window appointments, `share` of them booked as established
/// among `pool` established patients drawn evenly, make `target` together
/// with one earlier visit per distinct established patient (expected
/// distinct draws: `pool * (1 - e^(-draws / pool))`).
fn window_for(target: u64, share: f64, pool: u64) -> f64 {
    let target = target as f64;
    if pool == 0 {
        return target;
    }
    let pool = pool as f64;
    let total = |w: f64| w + pool * (1.0 - (-share * w / pool).exp());
    let (mut lo, mut hi) = (0.0, target);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if total(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Keeps a deterministic, evenly spread subset of the window so that it and
/// the earlier visits of the established patients it still books make
/// exactly `target` (when there are enough): window appointments are taken
/// in a random order, each costing one, plus one for an established
/// patient's earlier visit the first time they are kept; near the end,
/// those that would overshoot are passed over. Dropping appointments never
/// makes another one invalid. Returns whether each is kept.
fn trim(out: &[PlannedAppointment], target: u64, seed: u64) -> Vec<bool> {
    let mut keep = vec![false; out.len()];
    let mut d = draw(seed, Stream::Trim, 0, 0);
    let mut keys: Vec<(u64, usize)> = (0..out.len()).map(|i| (d.below(u64::MAX), i)).collect();
    keys.sort_unstable();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut total = 0u64;
    for (_, i) in keys {
        if total >= target {
            break;
        }
        let e = &out[i];
        let first_visit = !e.new_patient && !seen.contains(&e.patient);
        let cost = 1 + u64::from(first_visit);
        if total + cost > target {
            continue;
        }
        if first_visit {
            seen.insert(e.patient);
        }
        keep[i] = true;
        total += cost;
    }
    keep
}

/// A session of one provider at one location on one date.
#[derive(Debug, Clone)]
struct Session {
    start: i32,
    end: i32,
    /// Type indexes the session offers this provider.
    types: Vec<usize>,
    overbook: u8,
}

/// A template block or extra session, before dates.
#[derive(Debug, Clone)]
struct SessionSource {
    location: usize,
    weekday: u8,
    /// Extra sessions happen on one date.
    on: Option<Date>,
    from: Date,
    until: Option<Date>,
    session: Session,
}

/// Local minutes `[start, end)` of a date taken away from a provider.
type Removal = (i32, i32);

struct ProviderContext {
    input: SlotInput,
    request: BookingRequest,
    sources: Vec<SessionSource>,
    /// Exceptions that can take this provider's time.
    removals: Vec<ScheduleException>,
    ages: (i16, i16),
}

struct TypeInfo {
    minutes: i32,
    weight: u32,
    lead: (i64, i64),
    min_notice: i64,
    /// Longest lead (minutes) that stays within the type's booking window.
    max_lead: i64,
    ages: (i16, i16),
    eligibility: PatientEligibility,
}

struct Planner<'a> {
    schedule: &'a DemoSchedule,
    params: &'a AppointmentParams,
    zones: Vec<TimeZone>,
    /// Today at each location.
    today: Vec<Date>,
    types: Vec<AppointmentType>,
    info: Vec<TypeInfo>,
    contexts: Vec<ProviderContext>,
    rooms: HashMap<&'a str, usize>,
    /// `[room id]` per room, to copy into bookings.
    room_ids: Vec<Arc<[String]>>,
    patients: PatientPool,
    scale: f64,
    out: Vec<PlannedAppointment>,
    /// Today's plan entries by location and by provider.
    by_location: Vec<Vec<usize>>,
    by_provider: Vec<Vec<usize>>,
    history: HistoryBook,
}

/// Where the established patients' earlier visits may go, and the time they
/// already hold.
struct HistoryBook {
    /// The earliest day (UTC) of an earlier visit: 30 months before now.
    from: Date,
    /// Earlier visits start before this: the window's first day and two
    /// months before now, whichever comes first.
    before: Timestamp,
    /// Holidays (any part of the day) over the years the visits span.
    closed: HashSet<Date>,
    /// Rooms by location: (room index, kind).
    rooms: Vec<Vec<(usize, ResourceKind)>>,
    /// Time held by earlier visits, by (provider, local date) and (room,
    /// local date).
    provider_busy: HashMap<(usize, Date), Vec<(Timestamp, Timestamp)>>,
    room_busy: HashMap<(usize, Date), Vec<(Timestamp, Timestamp)>>,
}

/// How far back the established patients' earlier visits go, in months
/// (well within the three-year look-back).
const HISTORY_MONTHS_BACK: i64 = 30;
/// The most recent an earlier visit may be, in months before now.
const HISTORY_MONTHS_RECENT: i64 = 2;

impl HistoryBook {
    /// The last day (UTC) an earlier visit may fall on for a patient booked
    /// at `booked_at`: two days before it or [`HistoryBook::before`], so
    /// that the visit, at any local time of that day, ends first.
    fn until(&self, booked_at: Timestamp) -> Date {
        let instant = booked_at.min(self.before);
        instant
            .to_zoned(TimeZone::UTC)
            .date()
            .checked_sub(2.days())
            .unwrap_or(Date::MIN)
    }

    fn overlaps(
        list: Option<&Vec<(Timestamp, Timestamp)>>,
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        list.is_some_and(|l| l.iter().any(|&(a, b)| a < end && start < b))
    }
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn at_minute(day: Date, minute: i32) -> DateTime {
    day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
}

fn minute_of(t: Time) -> i32 {
    i32::from(t.hour()) * 60 + i32::from(t.minute())
}

impl<'a> Planner<'a> {
    fn new(schedule: &'a DemoSchedule, params: &'a AppointmentParams) -> Self {
        let ids = &schedule.ids;
        let location_index: HashMap<&str, usize> = ids
            .locations
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let zones: Vec<TimeZone> = ids
            .locations
            .iter()
            .map(|id| {
                let hours = schedule
                    .location_hours
                    .iter()
                    .find(|h| &h.location_id == id)
                    .expect("hours for every location");
                TimeZone::get(&hours.timezone).expect("a known time zone")
            })
            .collect();
        let today: Vec<Date> = zones
            .iter()
            .map(|tz| local(tz, params.now).date())
            .collect();
        let types = schedule.appointment_types.clone();
        let info: Vec<TypeInfo> = types
            .iter()
            .map(|t| {
                let s = spec(&t.id);
                let lead = s.map_or((DAY, 30 * DAY), |s| s.lead);
                TypeInfo {
                    minutes: t.duration_minutes as i32,
                    weight: s.map_or(10, |s| s.weight),
                    lead: (i64::from(lead.0), i64::from(lead.1)),
                    min_notice: i64::from(t.min_notice_minutes),
                    max_lead: (i64::from(t.max_days_ahead) - 1).max(0) * i64::from(DAY),
                    ages: s.map_or(ANY_AGE, |s| s.ages),
                    eligibility: t.eligibility,
                }
            })
            .collect();
        let window = {
            let first = today.iter().min().copied().unwrap_or(Date::MIN);
            let last = today.iter().max().copied().unwrap_or(Date::MAX);
            (
                first
                    .checked_sub(i64::from(params.days_before + 2).days())
                    .unwrap_or(Date::MIN)
                    .at(0, 0, 0, 0),
                last.checked_add(i64::from(params.days_after + 2).days())
                    .unwrap_or(Date::MAX)
                    .at(0, 0, 0, 0),
            )
        };
        let type_index: HashMap<&str, usize> = types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();

        let contexts = ids
            .practitioners
            .iter()
            .map(|pid| {
                let provider = schedule
                    .providers
                    .iter()
                    .find(|p| &p.practitioner_id == pid)
                    .cloned()
                    .unwrap_or(Provider {
                        practitioner_id: pid.clone(),
                        specialties: vec![],
                    });
                let offered: Vec<usize> = types
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.active && t.offered_by(pid, &provider.specialties))
                    .map(|(i, _)| i)
                    .collect();
                let ages = provider
                    .specialties
                    .iter()
                    .map(|s| specialty_ages(s))
                    .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
                    .unwrap_or(ANY_AGE);
                let allowed = |list: &[String]| -> Vec<usize> {
                    if list.is_empty() {
                        offered.clone()
                    } else {
                        list.iter()
                            .filter_map(|id| type_index.get(id.as_str()).copied())
                            .filter(|i| offered.contains(i))
                            .collect()
                    }
                };
                let templates: Vec<Template> = schedule
                    .templates
                    .iter()
                    .filter(|t| &t.practitioner_id == pid)
                    .cloned()
                    .collect();
                let mut sources = Vec::new();
                for t in &templates {
                    let Some(&location) = location_index.get(t.location_id.as_str()) else {
                        continue;
                    };
                    for b in &t.blocks {
                        sources.push(SessionSource {
                            location,
                            weekday: b.weekday,
                            on: None,
                            from: t.effective_from,
                            until: t.effective_until,
                            session: Session {
                                start: minute_of(b.start),
                                end: minute_of(b.end),
                                types: allowed(&b.appointment_type_ids),
                                overbook: t.block_overbook_limit(b),
                            },
                        });
                    }
                }
                let mut exceptions = Vec::new();
                let mut removals = Vec::new();
                // Only exceptions near the window matter (holidays span years).
                let near = |e: &&ScheduleException| e.end >= window.0 && e.start <= window.1;
                for e in schedule.exceptions.iter().filter(near) {
                    match &e.kind {
                        ExceptionKind::Holiday { .. } => {
                            exceptions.push(e.clone());
                            removals.push(e.clone());
                        }
                        ExceptionKind::TimeOff { practitioner_id }
                        | ExceptionKind::Blocked {
                            practitioner_id: Some(practitioner_id),
                            ..
                        } if practitioner_id == pid => {
                            exceptions.push(e.clone());
                            removals.push(e.clone());
                        }
                        ExceptionKind::Blocked {
                            resource_id: Some(_),
                            ..
                        } => exceptions.push(e.clone()),
                        ExceptionKind::ExtraSession {
                            practitioner_id,
                            location_id,
                            appointment_type_ids,
                            overbook_limit,
                        } if practitioner_id == pid => {
                            exceptions.push(e.clone());
                            if let Some(&location) = location_index.get(location_id.as_str())
                                && e.start.date() == e.end.date()
                            {
                                sources.push(SessionSource {
                                    location,
                                    weekday: 0,
                                    on: Some(e.start.date()),
                                    from: e.start.date(),
                                    until: Some(e.start.date()),
                                    session: Session {
                                        start: minute_of(e.start.time()),
                                        end: minute_of(e.end.time()),
                                        types: allowed(appointment_type_ids),
                                        overbook: *overbook_limit,
                                    },
                                });
                            }
                        }
                        _ => {}
                    }
                }
                let mut locations: Vec<usize> = sources.iter().map(|s| s.location).collect();
                locations.sort_unstable();
                locations.dedup();
                let location_ids: Vec<&String> =
                    locations.iter().map(|&l| &ids.locations[l]).collect();
                let input = SlotInput {
                    appointment_type: types.first().cloned().unwrap_or_else(|| {
                        // No types: nothing will be evaluated.
                        AppointmentType {
                            id: String::new(),
                            name: String::new(),
                            duration_minutes: 5,
                            color: String::new(),
                            specialties: vec![],
                            practitioner_ids: vec![],
                            resource_kind: None,
                            modality: Modality::Telehealth,
                            eligibility: PatientEligibility::Any,
                            min_notice_minutes: 0,
                            max_days_ahead: 1,
                            instructions: None,
                            intake_form: None,
                            active: false,
                        }
                    }),
                    locations: schedule
                        .location_hours
                        .iter()
                        .filter(|h| location_ids.contains(&&h.location_id))
                        .cloned()
                        .collect(),
                    providers: vec![provider],
                    templates,
                    exceptions,
                    resources: schedule
                        .resources
                        .iter()
                        .filter(|r| location_ids.contains(&&r.location_id))
                        .cloned()
                        .collect(),
                    bookings: vec![],
                    holds: vec![],
                    from: params.now,
                    until: params.now,
                    now: params.now,
                };
                ProviderContext {
                    input,
                    request: BookingRequest {
                        practitioner_id: pid.clone(),
                        location_id: String::new(),
                        start: params.now,
                        resource_id: None,
                        patient_established: None,
                        ignore: vec![],
                    },
                    sources,
                    removals,
                    ages,
                }
            })
            .collect();

        let history = {
            let now_day = params.now.to_zoned(TimeZone::UTC).date();
            let months_ago = |n: i64| now_day.checked_sub(n.months()).unwrap_or(Date::MIN);
            let window_start = window
                .0
                .to_zoned(TimeZone::UTC)
                .map_or(Timestamp::MIN, |z| z.timestamp());
            let recent = months_ago(HISTORY_MONTHS_RECENT)
                .to_zoned(TimeZone::UTC)
                .map_or(Timestamp::MIN, |z| z.timestamp());
            let from = months_ago(HISTORY_MONTHS_BACK);
            let mut closed = HashSet::new();
            let mut year = from;
            while year <= now_day {
                closed.extend(holidays(year).iter().map(|h| h.start.date()));
                year = year.checked_add(1.years()).unwrap_or(Date::MAX);
            }
            let mut rooms = vec![Vec::new(); ids.locations.len()];
            for (i, r) in schedule.resources.iter().enumerate() {
                if let Some(&l) = location_index.get(r.location_id.as_str()) {
                    rooms[l].push((i, r.kind));
                }
            }
            HistoryBook {
                from,
                before: window_start.min(recent),
                closed,
                rooms,
                provider_busy: HashMap::new(),
                room_busy: HashMap::new(),
            }
        };

        Planner {
            schedule,
            params,
            zones,
            today,
            types,
            info,
            contexts,
            rooms: ids
                .rooms
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect(),
            room_ids: ids.rooms.iter().map(|r| Arc::from([r.clone()])).collect(),
            patients: PatientPool::new(params.patient_seed, params.patients),
            scale: 1.0,
            out: Vec::new(),
            by_location: vec![Vec::new(); ids.locations.len()],
            by_provider: vec![Vec::new(); ids.practitioners.len()],
            history,
        }
    }

    /// The dates the window covers at some location.
    fn dates(&self) -> Vec<Date> {
        let first = self
            .today
            .iter()
            .map(|d| d.checked_sub(i64::from(self.params.days_before).days()))
            .filter_map(Result::ok)
            .min();
        let last = self
            .today
            .iter()
            .map(|d| d.checked_add(i64::from(self.params.days_after).days()))
            .filter_map(Result::ok)
            .max();
        let (Some(mut day), Some(last)) = (first, last) else {
            return vec![];
        };
        let mut out = Vec::new();
        while day <= last {
            out.push(day);
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        out
    }

    /// Days from the location's today to `day`, when inside the window.
    fn offset(&self, location: usize, day: Date) -> Option<i64> {
        let days =
            (day.duration_since(self.today[location]).as_hours() as f64 / 24.0).round() as i64;
        (-i64::from(self.params.days_before)..=i64::from(self.params.days_after))
            .contains(&days)
            .then_some(days)
    }

    /// Per mille of open time that gets booked, `offset` days from today.
    fn fill(&self, offset: i64) -> u32 {
        let base = if offset <= 0 {
            800.0
        } else {
            800.0 - 300.0 * offset as f64 / f64::from(self.params.days_after.max(1))
        };
        (base * self.scale).clamp(0.0, 970.0) as u32
    }

    /// The provider's sessions at each location on `day`, sorted.
    fn sessions(&self, p: usize, day: Date) -> Vec<(usize, Session)> {
        let weekday = day.weekday().to_monday_one_offset() as u8;
        let mut out: Vec<(usize, Session)> = self.contexts[p]
            .sources
            .iter()
            .filter(|s| match s.on {
                Some(on) => on == day,
                None => {
                    s.weekday == weekday
                        && s.from <= day
                        && s.until.is_none_or(|until| day <= until)
                }
            })
            .map(|s| (s.location, s.session.clone()))
            .collect();
        out.sort_by_key(|(l, s)| (*l, s.start, s.end));
        out
    }

    /// Local minutes of `day` the provider is away at `location`.
    fn removals(&self, p: usize, location: usize, day: Date) -> Vec<Removal> {
        let lo = day.at(0, 0, 0, 0);
        let hi = day.tomorrow().unwrap_or(day).at(0, 0, 0, 0);
        let location_id = &self.schedule.ids.locations[location];
        let mut out: Vec<Removal> = self.contexts[p]
            .removals
            .iter()
            .filter(|e| match &e.kind {
                ExceptionKind::Holiday {
                    location_id: Some(l),
                    ..
                } => l == location_id,
                _ => true,
            })
            .filter(|e| e.start < hi && lo < e.end)
            .map(|e| {
                let start = if e.start <= lo {
                    0
                } else {
                    minute_of(e.start.time())
                };
                let end = if e.end >= hi {
                    24 * 60
                } else {
                    // Round partial minutes up.
                    minute_of(e.end.time()) + i32::from(e.end.second() > 0)
                };
                (start, end)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// About how many appointments the window holds at scale 1, and how
    /// many of them are booked as established.
    fn expected(&self) -> (f64, f64) {
        let mut total = 0.0;
        let mut established = 0.0;
        for day in self.dates() {
            for p in 0..self.contexts.len() {
                for (location, session) in self.sessions(p, day) {
                    let Some(offset) = self.offset(location, day) else {
                        continue;
                    };
                    if session.types.is_empty() {
                        continue;
                    }
                    let removed: i32 = self
                        .removals(p, location, day)
                        .iter()
                        .map(|&(a, b)| (b.min(session.end) - a.max(session.start)).max(0))
                        .sum();
                    let open = f64::from((session.end - session.start - removed).max(0));
                    let weight: f64 = session
                        .types
                        .iter()
                        .map(|&t| f64::from(self.info[t].weight))
                        .sum();
                    let mean = session
                        .types
                        .iter()
                        .map(|&t| f64::from(self.info[t].weight) * f64::from(self.info[t].minutes))
                        .sum::<f64>()
                        / weight.max(1.0);
                    let visits = open / mean.max(5.0) * f64::from(self.fill(offset)) / 1000.0;
                    let new: f64 = session
                        .types
                        .iter()
                        .filter(|&&t| self.info[t].eligibility == PatientEligibility::New)
                        .map(|&t| f64::from(self.info[t].weight))
                        .sum();
                    total += visits;
                    established += visits * (1.0 - new / weight.max(1.0));
                }
            }
        }
        (total, established)
    }

    /// The result: every established patient the window books gets an
    /// earlier visit (one the planner cannot place drops the patient's
    /// window appointments), the window is trimmed to the target, and the
    /// earlier visits of the patients it still books come first.
    fn finish(mut self) -> Vec<PlannedAppointment> {
        // Established patients in order of their first booking in the plan,
        // with that booking and the earliest instant one was made.
        let mut first: HashMap<u64, (usize, Timestamp)> = HashMap::new();
        let mut order = Vec::new();
        for (i, e) in self.out.iter().enumerate() {
            if e.new_patient {
                continue;
            }
            first
                .entry(e.patient)
                .and_modify(|f| f.1 = f.1.min(e.booked_at))
                .or_insert_with(|| {
                    order.push(e.patient);
                    (i, e.booked_at)
                });
        }
        let mut history: HashMap<u64, PlannedAppointment> = HashMap::with_capacity(order.len());
        for patient in order {
            let (i, booked_at) = first[&patient];
            let until = self.history.until(booked_at);
            if let Some(visit) = self.place_history(patient, self.out[i].practitioner, until) {
                history.insert(patient, visit);
            }
        }
        let mut window = std::mem::take(&mut self.out);
        window.retain(|e| e.new_patient || history.contains_key(&e.patient));
        if let Some(target) = self.params.target {
            let keep = trim(&window, target, self.params.seed);
            let mut i = 0;
            window.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        let booked: HashSet<u64> = window
            .iter()
            .filter(|e| !e.new_patient)
            .map(|e| e.patient)
            .collect();
        let mut out: Vec<PlannedAppointment> = history
            .into_values()
            .filter(|h| booked.contains(&h.patient))
            .collect();
        out.sort_by_key(|h| (h.start, h.practitioner, h.patient));
        out.extend(window);
        out
    }

    /// The earlier visit of an established patient, on a day from
    /// [`HistoryBook::from`] (or a week after their birth) to `until`:
    /// with `provider` when their first-visit types suit the patient then,
    /// else with another provider.
    fn place_history(
        &mut self,
        patient: u64,
        provider: usize,
        until: Date,
    ) -> Option<PlannedAppointment> {
        let born = self.patients.birth(patient).checked_add(7.days()).ok()?;
        let from = self.history.from.max(born);
        if from > until {
            return None;
        }
        let span = (until.duration_since(from).as_hours() / 24) as u64 + 1;
        let mut d = draw(
            self.params.seed,
            Stream::History,
            patient >> 24,
            patient & 0xFF_FFFF,
        );
        let providers = self.contexts.len();
        let offset = d.below(providers as u64) as usize;
        let others = (0..providers)
            .map(|i| (offset + i) % providers)
            .filter(|&p| p != provider);
        for (k, p) in std::iter::once(provider).chain(others).enumerate() {
            for _ in 0..if k == 0 { 24 } else { 3 } {
                let day = from
                    .checked_add((d.below(span) as i64).days())
                    .unwrap_or(until);
                if self.history.closed.contains(&day) {
                    continue;
                }
                if let Some(visit) = self.place_history_on(patient, p, day, &mut d) {
                    return Some(visit);
                }
            }
        }
        None
    }

    /// A first visit for `patient` with provider `p` on `day` in one of
    /// their weekly blocks that offers a first-visit type suiting the
    /// patient's age then (an any-patient type when the blocks have no
    /// first-visit type), at the first time from a random quarter hour on
    /// where the provider and a room of the type's kind are free.
    fn place_history_on(
        &mut self,
        patient: u64,
        p: usize,
        day: Date,
        d: &mut Draw,
    ) -> Option<PlannedAppointment> {
        let weekday = day.weekday().to_monday_one_offset() as u8;
        let provider_ages = self.contexts[p].ages;
        // (source, type) pairs.
        let mut options: Vec<(usize, usize)> = Vec::new();
        for eligibility in [PatientEligibility::New, PatientEligibility::Any] {
            for (i, source) in self.contexts[p].sources.iter().enumerate() {
                if source.on.is_some() || source.weekday != weekday {
                    continue;
                }
                for &t in &source.session.types {
                    if self.info[t].eligibility == eligibility {
                        options.push((i, t));
                    }
                }
            }
            options.retain(|&(_, t)| {
                let ages = (
                    self.info[t].ages.0.max(provider_ages.0),
                    self.info[t].ages.1.min(provider_ages.1),
                );
                self.patients.age_fits(patient, day, ages)
            });
            if !options.is_empty() {
                break;
            }
        }
        if options.is_empty() {
            return None;
        }
        let (source, t) = options[d.weighted_index(&options, |o| self.info[o.1].weight)];
        let source = &self.contexts[p].sources[source];
        let (location, session_start, session_end, overbook) = (
            source.location,
            source.session.start,
            source.session.end,
            source.session.overbook,
        );
        let info = &self.info[t];
        let length = minutes(i64::from(info.minutes));
        let kind = self.types[t].resource_kind;
        let tz = &self.zones[location];
        let steps = (session_end - session_start - info.minutes) / 5 + 1;
        if steps <= 0 {
            return None;
        }
        let first = d.below(steps as u64) as i32 / 3 * 3;
        let mut found = None;
        for step in (first..steps).chain(0..first) {
            let local_start = at_minute(day, session_start + step * 5);
            let Some(start) = slot_start_instant(tz, local_start) else {
                continue;
            };
            let end = start + length;
            if HistoryBook::overlaps(self.history.provider_busy.get(&(p, day)), start, end) {
                continue;
            }
            let room = match kind {
                None => None,
                Some(kind) => {
                    let free = self.history.rooms[location].iter().find(|&&(r, k)| {
                        k == kind
                            && !HistoryBook::overlaps(
                                self.history.room_busy.get(&(r, day)),
                                start,
                                end,
                            )
                    });
                    match free {
                        Some(&(r, _)) => Some(r),
                        None => continue,
                    }
                }
            };
            found = Some((local_start, start, end, room));
            break;
        }
        let (local_start, start, end, room) = found?;
        self.history
            .provider_busy
            .entry((p, day))
            .or_default()
            .push((start, end));
        if let Some(r) = room {
            self.history
                .room_busy
                .entry((r, day))
                .or_default()
                .push((start, end));
        }
        let lead_min = info.min_notice.max(1);
        let lead_max = info.max_lead.max(lead_min);
        let (lo, hi) = (
            info.lead.0.clamp(lead_min, lead_max),
            info.lead.1.clamp(lead_min, lead_max),
        );
        let booked_at = start - minutes(lo + d.below((hi - lo + 1) as u64) as i64);
        let arrived_at = (start - minutes(d.below(21) as i64)).max(booked_at);
        Some(PlannedAppointment {
            patient,
            new_patient: true,
            history: true,
            practitioner: p,
            location,
            appointment_type: t,
            room,
            start,
            end,
            local_start,
            booked_at,
            status: AppointmentStatus::Fulfilled,
            status_changed_at: end + minutes(d.below(16) as i64),
            cancel_reason: None,
            arrived_at: Some(arrived_at),
            max_seat: overbook,
        })
    }

    fn run(&mut self) {
        for day in self.dates() {
            for list in self
                .by_location
                .iter_mut()
                .chain(self.by_provider.iter_mut())
            {
                list.clear();
            }
            self.patients.new_day();
            for p in 0..self.contexts.len() {
                let sessions = self.sessions(p, day);
                if sessions.is_empty() {
                    continue;
                }
                let mut d = draw(self.params.seed, Stream::Plan, p as u64, day_number(day));
                for (location, session) in sessions {
                    let Some(offset) = self.offset(location, day) else {
                        continue;
                    };
                    let removals = self.removals(p, location, day);
                    if removals
                        .iter()
                        .any(|&(a, b)| a <= session.start && session.end <= b)
                    {
                        continue;
                    }
                    self.contexts[p]
                        .request
                        .location_id
                        .clone_from(&self.schedule.ids.locations[location]);
                    let fill = self.fill(offset);
                    self.walk(p, location, day, &session, &removals, fill, &mut d);
                }
            }
        }
    }

    /// Books through one session, earliest time first.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        p: usize,
        location: usize,
        day: Date,
        session: &Session,
        removals: &[Removal],
        fill: u32,
        d: &mut Draw,
    ) {
        let now = self.params.now;
        let tz = self.zones[location].clone();
        let mut cursor = session.start;
        // After a cancellation, the same time may be booked again, but only
        // after the cancellation.
        let mut not_before: Option<Timestamp> = None;
        let mut stays = 0;
        let mut candidates: Vec<usize> = Vec::with_capacity(session.types.len());
        while cursor < session.end {
            if let Some(&(_, end)) = removals.iter().find(|&&(a, b)| a <= cursor && cursor < b) {
                cursor = (end + 4) / 5 * 5;
                not_before = None;
                continue;
            }
            let limit = removals
                .iter()
                .filter(|&&(a, _)| a > cursor)
                .map(|&(a, _)| a)
                .min()
                .unwrap_or(session.end)
                .min(session.end);
            let local_start = at_minute(day, cursor);
            let Some(start) = slot_start_instant(&tz, local_start) else {
                cursor += 5;
                continue;
            };
            candidates.clear();
            candidates.extend(session.types.iter().copied().filter(|&t| {
                let info = &self.info[t];
                cursor + info.minutes <= limit && {
                    // Bookable by now: far-future visits of short-window
                    // types do not exist yet.
                    let need = (start.as_second() - now.as_second()).div_euclid(60);
                    need <= info.max_lead.max(info.min_notice)
                }
            }));
            if candidates.is_empty() {
                if limit < session.end {
                    cursor = limit;
                    continue;
                }
                break;
            }
            let t = candidates[d.weighted_index(&candidates, |&t| self.info[t].weight)];
            let step = self.info[t].minutes;
            if not_before.is_none() && !d.chance(fill) {
                cursor += step;
                stays = 0;
                continue;
            }
            let booked = self.try_book(p, location, day, t, start, local_start, not_before, d);
            match booked {
                Some(entry) => {
                    let cancelled = entry.status == AppointmentStatus::Cancelled;
                    let changed = entry.status_changed_at;
                    let overbook = session.overbook > 0 && entry.max_seat > 0;
                    self.push(p, location, entry);
                    if stays < 2 && cancelled && d.chance(500) {
                        // Someone else takes the freed time.
                        stays += 1;
                        not_before = Some(changed + minutes(1 + d.below(120) as i64));
                    } else if stays < 1 && overbook && d.chance(70) {
                        stays += 1;
                        not_before = None;
                    } else {
                        cursor += step;
                        stays = 0;
                        not_before = None;
                    }
                }
                None => {
                    cursor += 5;
                    stays = 0;
                    not_before = None;
                }
            }
        }
    }

    fn push(&mut self, p: usize, location: usize, entry: PlannedAppointment) {
        let i = self.out.len();
        self.out.push(entry);
        self.by_location[location].push(i);
        self.by_provider[p].push(i);
    }

    /// Draws the patient, booking time and fate of a visit and keeps it if
    /// the domain accepts the booking.
    #[allow(clippy::too_many_arguments)]
    fn try_book(
        &mut self,
        p: usize,
        location: usize,
        day: Date,
        t: usize,
        start: Timestamp,
        local_start: DateTime,
        not_before: Option<Timestamp>,
        d: &mut Draw,
    ) -> Option<PlannedAppointment> {
        let now = self.params.now;
        let info = &self.info[t];
        let end = start + minutes(i64::from(info.minutes));
        let ages = (
            info.ages.0.max(self.contexts[p].ages.0),
            info.ages.1.min(self.contexts[p].ages.1),
        );
        let new_patient = info.eligibility == PatientEligibility::New;

        // When it was booked (whole minutes before the start).
        let lead_min = info.min_notice.max(1);
        let lead_max = info.max_lead.max(lead_min);
        let until_start = (start.as_second() - now.as_second()).div_euclid(60) + 1;
        let booked_at = match not_before {
            Some(after) => {
                let latest = now.min(start - minutes(lead_min));
                let earliest = after.max(start - minutes(lead_max));
                if earliest > latest {
                    return None;
                }
                let span = (latest.as_second() - earliest.as_second()) / 60;
                earliest + minutes(d.below(span.min(3 * 24 * 60) as u64 + 1) as i64)
            }
            None => {
                let (lo, hi) = (
                    info.lead.0.clamp(lead_min, lead_max),
                    info.lead.1.clamp(lead_min, lead_max),
                );
                let mut lead = lo + d.below((hi - lo + 1) as u64) as i64;
                if lead < until_start {
                    // Booked before now: between now and a few days earlier.
                    if until_start > lead_max {
                        return None;
                    }
                    let room = (lead_max - until_start).min(3 * 24 * 60);
                    lead = until_start + d.below(room as u64 + 1) as i64;
                }
                start - minutes(lead)
            }
        };
        if booked_at > now {
            return None;
        }

        // Fate.
        let mut status = AppointmentStatus::Booked;
        let mut changed = booked_at;
        let mut cancel_reason = None;
        let mut arrived_at = None;
        let span_to_start = (start.as_second() - booked_at.as_second()) / 60;
        if end <= now {
            let roll = d.below(1000);
            if roll < 70 && span_to_start >= 2 {
                status = AppointmentStatus::Cancelled;
                changed = booked_at + minutes(1 + d.below(span_to_start as u64 - 1) as i64);
                cancel_reason = Some(d.weighted(CANCEL_REASONS));
            } else if roll < 120 {
                status = AppointmentStatus::NoShow;
                changed = end.min(start + minutes(15));
            } else {
                status = AppointmentStatus::Fulfilled;
                let arrived = (start - minutes(d.below(21) as i64)).max(booked_at);
                arrived_at = Some(arrived);
                changed = (end + minutes(d.below(16) as i64)).min(now);
            }
        } else if start <= now {
            status = AppointmentStatus::CheckedIn;
            let arrived = (start - minutes(d.below(16) as i64))
                .max(booked_at)
                .min(now);
            arrived_at = Some(arrived);
            changed = (arrived + minutes(d.below(6) as i64)).min(now);
        } else {
            let since_booking = (now.as_second() - booked_at.as_second()) / 60;
            if d.chance(35) && since_booking >= 2 {
                status = AppointmentStatus::Cancelled;
                changed = booked_at + minutes(1 + d.below(since_booking as u64 - 1) as i64);
                cancel_reason = Some(d.weighted(CANCEL_REASONS));
            } else if start.duration_since(now) <= minutes(20) && d.chance(500) {
                status = AppointmentStatus::Arrived;
                let arrived = (now - minutes(d.below(11) as i64)).max(booked_at);
                arrived_at = Some(arrived);
                changed = arrived;
            }
        }

        let patient = if new_patient {
            self.patients.new_patient(day, ages)?
        } else {
            // Established: their earlier visit must fit between their birth
            // (a week after it) and this booking.
            let until = self.history.until(booked_at);
            if until < self.history.from {
                return None;
            }
            let born_by = until.checked_sub(7.days()).ok()?;
            self.patients.established(day, ages, born_by, d)?
        };

        match self.evaluate(p, location, t, start, end, booked_at, !new_patient) {
            Some((room, max_seat)) => {
                self.patients.take(patient);
                Some(PlannedAppointment {
                    patient,
                    new_patient,
                    history: false,
                    practitioner: p,
                    location,
                    appointment_type: t,
                    room,
                    start,
                    end,
                    local_start,
                    booked_at,
                    status,
                    status_changed_at: changed,
                    cancel_reason,
                    arrived_at,
                    max_seat,
                })
            }
            None => {
                self.patients.release(patient, new_patient);
                None
            }
        }
    }

    /// Asks the domain whether the booking fits at `booked_at`, showing it
    /// the appointments that overlap the visit and held time then. Returns
    /// the room and the block's overbooking limit.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &mut self,
        p: usize,
        location: usize,
        t: usize,
        start: Timestamp,
        end: Timestamp,
        booked_at: Timestamp,
        established: bool,
    ) -> Option<(Option<usize>, u8)> {
        let ctx = &mut self.contexts[p];
        let holds = |e: &PlannedAppointment| {
            e.start < end
                && start < e.end
                && (e.status != AppointmentStatus::Cancelled || booked_at < e.status_changed_at)
        };
        let here = self.by_location[location].iter();
        let elsewhere = self.by_provider[p]
            .iter()
            .filter(|&&i| self.out[i].location != location);
        // Reuses the bookings' buffers: this runs once per candidate.
        let bookings = &mut ctx.input.bookings;
        let mut n = 0;
        for &i in here.chain(elsewhere) {
            let e = &self.out[i];
            if !holds(e) {
                continue;
            }
            if n == bookings.len() {
                bookings.push(Booking {
                    id: "".into(),
                    practitioner_id: "".into(),
                    resource_ids: Arc::from([]),
                    start: e.start,
                    end: e.end,
                });
            }
            let b = &mut bookings[n];
            if *b.practitioner_id != *self.schedule.ids.practitioners[e.practitioner] {
                b.practitioner_id = self.schedule.ids.practitioners[e.practitioner]
                    .as_str()
                    .into();
            }
            match e.room {
                Some(r) => b.resource_ids.clone_from(&self.room_ids[r]),
                None if b.resource_ids.is_empty() => {}
                None => b.resource_ids = Arc::from([]),
            }
            b.start = e.start;
            b.end = e.end;
            n += 1;
        }
        bookings.truncate(n);
        ctx.input.now = booked_at;
        ctx.request.start = start;
        ctx.request.patient_established = Some(established);
        std::mem::swap(&mut ctx.input.appointment_type, &mut self.types[t]);
        let result = evaluate_booking(&ctx.input, &ctx.request);
        std::mem::swap(&mut ctx.input.appointment_type, &mut self.types[t]);

        let evaluation = result.ok().filter(|e| e.fits())?;
        let placement = evaluation.placement;
        let room = match placement.resource_ids.first() {
            Some(id) => Some(*self.rooms.get(id.as_str())?),
            None => None,
        };
        Some((room, placement.overbook_limit))
    }
}

/// Which patients may be booked: established ones drawn at random, new ones
/// each used once, nobody twice on one day.
struct PatientPool {
    generator: PatientGenerator,
    /// Patients `0..established` are established with the practice.
    established: u64,
    /// The next never-used new patient (counting down), if any are left.
    next_new: Option<u64>,
    /// New patients passed over for not fitting an age range.
    spare: Vec<u64>,
    births: Births,
    today: HashSet<u64>,
}

/// Birth dates read from the patient stream, generated at most once each.
enum Births {
    /// One slot per patient (up to [`Births::DENSE_LIMIT`] patients).
    Dense(Vec<Option<Date>>),
    Sparse(HashMap<u64, Date>),
}

impl Births {
    const DENSE_LIMIT: u64 = 20_000_000;

    fn get(&mut self, generator: &PatientGenerator, patient: u64) -> Date {
        match self {
            Births::Dense(v) => {
                *v[patient as usize].get_or_insert_with(|| generator.patient(patient).birth_date)
            }
            Births::Sparse(m) => *m
                .entry(patient)
                .or_insert_with(|| generator.patient(patient).birth_date),
        }
    }
}

impl PatientPool {
    fn new(seed: u64, patients: u64) -> Self {
        let established = patients - patients / 5;
        PatientPool {
            generator: PatientGenerator::new(seed),
            established,
            next_new: (patients > established).then(|| patients - 1),
            spare: Vec::new(),
            births: if patients <= Births::DENSE_LIMIT {
                Births::Dense(vec![None; patients as usize])
            } else {
                Births::Sparse(HashMap::new())
            },
            today: HashSet::new(),
        }
    }

    fn new_day(&mut self) {
        self.today.clear();
    }

    fn age_fits(&mut self, patient: u64, day: Date, (lo, hi): (i16, i16)) -> bool {
        if lo <= 0 && hi >= ANY_AGE.1 && day >= REFERENCE_DATE {
            // Anyone fits (everyone is born by the reference date): no need
            // to read the patient.
            return true;
        }
        let birth = self.births.get(&self.generator, patient);
        let mut age = day.year() - birth.year();
        if (day.month(), day.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        lo <= age && age <= hi
    }

    fn birth(&mut self, patient: u64) -> Date {
        self.births.get(&self.generator, patient)
    }

    /// An established patient of a fitting age on `day`, born by `born_by`,
    /// not yet seen that day.
    fn established(
        &mut self,
        day: Date,
        ages: (i16, i16),
        born_by: Date,
        d: &mut Draw,
    ) -> Option<u64> {
        if self.established == 0 {
            return None;
        }
        for _ in 0..16 {
            let patient = d.below(self.established);
            if !self.today.contains(&patient)
                && self.birth(patient) <= born_by
                && self.age_fits(patient, day, ages)
            {
                return Some(patient);
            }
        }
        None
    }

    fn new_patient(&mut self, day: Date, ages: (i16, i16)) -> Option<u64> {
        for i in 0..self.spare.len() {
            let patient = self.spare[i];
            if self.age_fits(patient, day, ages) {
                self.spare.swap_remove(i);
                return Some(patient);
            }
        }
        for _ in 0..32 {
            let patient = self.next_new?;
            self.next_new = (patient > self.established).then(|| patient - 1);
            if self.age_fits(patient, day, ages) {
                return Some(patient);
            }
            self.spare.push(patient);
        }
        None
    }

    fn take(&mut self, patient: u64) {
        self.today.insert(patient);
    }

    fn release(&mut self, patient: u64, new: bool) {
        if new {
            self.spare.push(patient);
        }
    }
}
