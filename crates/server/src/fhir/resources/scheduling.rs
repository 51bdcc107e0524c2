//! What the scheduling resources and operations share: the code systems and
//! extensions, the ids of derived resources (Schedule, Slot, and the
//! proposed and held Appointments, none stored one row each), the slots on
//! offer, and how the schedule's refusals become OperationOutcomes.
//!
//! # Derived ids
//!
//! FHIR ids are at most 64 characters of `[A-Za-z0-9-.]`. A record id is
//! written compactly ([`compact`]): a UUID as `u` + 22 base-62 digits, a
//! short plain id (letters, digits, `-`, up to 22) as `r` + the id, anything
//! else as a digest ([`digest`]: `h` + 8 base-62 digits of its SHA-256) that
//! is resolved by comparing with the organization's records. A start is
//! minutes since 1970 in 6 base-62 digits.
//!
//! * Schedule: `compact(practitioner).compact(location)`.
//! * Slot: `compact(practitioner).compact(location).digest(type).start`.
//! * Proposed Appointment (from `$find`):
//!   `digest(practitioner).digest(location).digest(type).start[.compact(patient)]`.
//! * Held Appointment (from `$hold`): `hold-` + the hold's id.

use crate::fhir::outcome::{FhirError, Issue};
use carefront_domain::ValidationErrors;
use carefront_domain::directory::{NUCC_TAXONOMY_SYSTEM, Specialty, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, FitIssue, FreeSlots, Refusal, ScheduleError, Slot, SlotInput,
    free_slots_by_type,
};
use carefront_store::{BookError, Db, Page, Record, SlotFilter, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Appointment types (served as HealthcareService) as codes: the code is
/// the type's id. `Appointment.serviceType`, `Slot.serviceType`,
/// `Schedule.serviceType` and `HealthcareService.type` use it.
pub const APPOINTMENT_TYPE_SYSTEM: &str =
    "http://carefront.example/fhir/CodeSystem/appointment-type";
/// Rooms and equipment an appointment uses, as `participant.actor.identifier`.
pub const RESOURCE_SYSTEM: &str = "http://carefront.example/fhir/sid/schedule-resource";
/// On an Appointment: why a lead booked it past the schedule's rules
/// (valueString). Sent on create, `$book` or a rescheduling update, it asks
/// for the override; only the lead role may.
pub const OVERRIDE_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-override-reason";
/// On a held (pending) Appointment: when the hold lapses (valueInstant).
pub const HOLD_EXPIRES_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-hold-expires";
/// On a rescheduled Appointment: the one it replaced (valueReference).
pub const RESCHEDULED_FROM_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/appointment-rescheduled-from";
pub const CANCEL_REASON_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";
/// The prefix of held Appointments' ids.
pub const HOLD_PREFIX: &str = "hold-";
/// Longest range a slot search or `$find` covers.
pub const MAX_RANGE_DAYS: i64 = 31;
/// The range covered when no end is given.
pub const DEFAULT_RANGE_DAYS: i64 = 7;

pub fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

// ---------------------------------------------------------------------------
// Ids

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: u128, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn unbase62(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |n, b| {
        let d = DIGITS.iter().position(|&x| x == b)? as u128;
        n.checked_mul(62)?.checked_add(d)
    })
}

/// The value of a lower-case hyphenated UUID (as `new_id` writes them).
fn uuid_value(id: &str) -> Option<u128> {
    let b = id.as_bytes();
    let shaped = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        });
    if !shaped {
        return None;
    }
    u128::from_str_radix(&id.replace('-', ""), 16).ok()
}

fn uuid_text(n: u128) -> String {
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `h` + 8 base-62 digits of the id's SHA-256 (47 bits).
pub fn digest(id: &str) -> String {
    let hash = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    let n = u128::from(u64::from_be_bytes(first)) % 62u128.pow(8);
    format!("h{}", base62(n, 8))
}

/// A record id in at most 23 characters without `.` (see the module docs).
pub fn compact(id: &str) -> String {
    if let Some(n) = uuid_value(id) {
        return format!("u{}", base62(n, 22));
    }
    if (1..=22).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return format!("r{id}");
    }
    digest(id)
}

/// One record id read back from a derived id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Exact(String),
    /// A [`digest`], matched against the organization's records.
    Digest(String),
}

impl Part {
    pub fn parse(s: &str) -> Option<Part> {
        let (tag, rest) = (s.get(..1)?, &s[1..]);
        match tag {
            "u" if rest.len() == 22 => {
                let n = unbase62(rest)?;
                let text = uuid_text(n);
                (compact(&text) == s).then_some(Part::Exact(text))
            }
            "r" if (1..=22).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Some(Part::Exact(rest.to_string()))
            }
            "h" if rest.len() == 8 && unbase62(rest).is_some() => Some(Part::Digest(s.into())),
            _ => None,
        }
    }

    pub fn matches(&self, id: &str) -> bool {
        match self {
            Part::Exact(x) => x == id,
            Part::Digest(d) => digest(id) == *d,
        }
    }

    /// The id among `candidates` this part names.
    pub fn pick<'a>(&self, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
        match self {
            Part::Exact(x) => Some(x.clone()),
            Part::Digest(_) => candidates
                .into_iter()
                .find(|c| self.matches(c))
                .map(str::to_string),
        }
    }
}

fn minutes(t: Timestamp) -> Option<String> {
    let s = t.as_second();
    (s >= 0 && s % 60 == 0 && t.subsec_nanosecond() == 0)
        .then(|| base62(u128::try_from(s / 60).unwrap_or(0), 6))
}

fn from_minutes(s: &str) -> Option<Timestamp> {
    if s.len() != 6 {
        return None;
    }
    let m = i64::try_from(unbase62(s)?).ok()?;
    Timestamp::from_second(m.checked_mul(60)?).ok()
}

/// Where and when a slot is, as its id holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotKey<P> {
    pub practitioner: P,
    pub location: P,
    pub appointment_type: P,
    pub start: Timestamp,
}

pub fn schedule_id(practitioner_id: &str, location_id: &str) -> String {
    format!("{}.{}", compact(practitioner_id), compact(location_id))
}

pub fn parse_schedule_id(id: &str) -> Option<(Part, Part)> {
    let (p, l) = id.split_once('.')?;
    Some((Part::parse(p)?, Part::parse(l)?))
}

pub fn slot_id(s: &Slot) -> String {
    slot_id_of(
        &s.practitioner_id,
        &s.location_id,
        &s.appointment_type_id,
        s.start,
    )
}

/// The id of the slot of `appointment_type` at `start` on the schedule of
/// practitioner and location (the slot an appointment or hold takes).
pub fn slot_id_of(
    practitioner_id: &str,
    location_id: &str,
    appointment_type_id: &str,
    start: Timestamp,
) -> String {
    format!(
        "{}.{}.{}",
        schedule_id(practitioner_id, location_id),
        digest(appointment_type_id),
        minutes(start).unwrap_or_default()
    )
}

pub fn parse_slot_id(id: &str) -> Option<SlotKey<Part>> {
    let parts: Vec<&str> = id.split('.').collect();
    let [p, l, t, m] = parts[..] else {
        return None;
    };
    let appointment_type = Part::parse(t).filter(|t| matches!(t, Part::Digest(_)))?;
    Some(SlotKey {
        practitioner: Part::parse(p)?,
        location: Part::parse(l)?,
        appointment_type,
        start: from_minutes(m)?,
    })
}

/// The id of the Appointment `$find` proposes for `slot` (and `patient`).
/// The patient is left out when its id cannot be written exactly.
pub fn proposed_id(slot: &Slot, patient_id: Option<&str>) -> String {
    let mut id = format!(
        "{}.{}.{}.{}",
        digest(&slot.practitioner_id),
        digest(&slot.location_id),
        digest(&slot.appointment_type_id),
        minutes(slot.start).unwrap_or_default()
    );
    if let Some(p) = patient_id.map(compact).filter(|c| !c.starts_with('h')) {
        id.push('.');
        id.push_str(&p);
    }
    id
}

/// A proposed appointment's slot and patient (exact when present).
pub fn parse_proposed_id(id: &str) -> Option<(SlotKey<Part>, Option<String>)> {
    let parts: Vec<&str> = id.split('.').collect();
    let (key, patient) = match parts[..] {
        [p, l, t, m] => ([p, l, t, m], None),
        [p, l, t, m, patient] => ([p, l, t, m], Some(patient)),
        _ => return None,
    };
    let digest_part = |s: &str| Part::parse(s).filter(|p| matches!(p, Part::Digest(_)));
    let patient = match patient.map(Part::parse) {
        None => None,
        Some(Some(Part::Exact(p))) => Some(p),
        Some(_) => return None,
    };
    Some((
        SlotKey {
            practitioner: digest_part(key[0])?,
            location: digest_part(key[1])?,
            appointment_type: digest_part(key[2])?,
            start: from_minutes(key[3])?,
        },
        patient,
    ))
}

/// Every live record of `R` (read in pages).
pub async fn every<R: Record>(db: &Db, org_id: &str) -> Result<Vec<Versioned<R>>, StoreError> {
    let mut all = Vec::new();
    loop {
        let page = Page {
            offset: i64::try_from(all.len()).unwrap_or(i64::MAX),
            count: 1000,
        };
        let (rows, total) = db.search::<R>(org_id, &[], page).await?;
        let done = rows.is_empty() || i64::try_from(all.len() + rows.len()).unwrap_or(0) >= total;
        all.extend(rows);
        if done {
            return Ok(all);
        }
    }
}

/// Resolves the parts of a slot key to record ids (`None` when a digest
/// names no record).
pub async fn resolve_key(
    db: &Db,
    org_id: &str,
    key: &SlotKey<Part>,
    types: &[AppointmentType],
) -> Result<Option<SlotKey<String>>, StoreError> {
    use carefront_domain::directory::{Location, Practitioner};
    let practitioner = match &key.practitioner {
        Part::Exact(p) => Some(p.clone()),
        part => {
            let all = every::<Practitioner>(db, org_id).await?;
            part.pick(all.iter().map(|v| v.id.as_str()))
        }
    };
    let location = match &key.location {
        Part::Exact(l) => Some(l.clone()),
        part => {
            let all = every::<Location>(db, org_id).await?;
            part.pick(all.iter().map(|v| v.id.as_str()))
        }
    };
    let kind = key
        .appointment_type
        .pick(types.iter().map(|t| t.id.as_str()));
    Ok(match (practitioner, location, kind) {
        (Some(practitioner), Some(location), Some(appointment_type)) => Some(SlotKey {
            practitioner,
            location,
            appointment_type,
            start: key.start,
        }),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Codings

pub fn type_coding(id: &str, name: Option<&str>) -> Value {
    json!({ "coding": [{ "system": APPOINTMENT_TYPE_SYSTEM, "code": id, "display": name }] })
}

pub fn specialty_coding(code: &str) -> Value {
    json!({ "coding": [{
        "system": NUCC_TAXONOMY_SYSTEM,
        "code": code,
        "display": Specialty::by_code(code).map(|s| s.display),
    }] })
}

// ---------------------------------------------------------------------------
// Slots on offer

/// FHIR `slotstatus` codes this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStatus {
    Free,
    /// Kept by a live hold.
    BusyTentative,
    /// Taken by appointments (or its room is).
    Busy,
}

impl SlotStatus {
    pub const ALL: [SlotStatus; 3] = [Self::Free, Self::BusyTentative, Self::Busy];

    pub fn code(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::BusyTentative => "busy-tentative",
            Self::Busy => "busy",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A slot and what it is now.
#[derive(Debug, Clone)]
pub struct Offered {
    pub slot: Slot,
    pub status: SlotStatus,
    pub type_name: String,
    /// The provider's specialties (NUCC codes).
    pub specialties: Vec<String>,
}

/// Which slots to compute.
#[derive(Debug, Clone)]
pub struct Scope {
    pub filter: SlotFilter,
    pub from: Timestamp,
    pub until: Timestamp,
    pub now: Timestamp,
    /// Only providers with this specialty.
    pub specialty: Option<String>,
    /// Empty: every status.
    pub statuses: Vec<SlotStatus>,
}

/// The free slots of each of `kinds` over one loaded input.
fn computed(input: &SlotInput, kinds: &[AppointmentType]) -> Result<Vec<Vec<Slot>>, FhirError> {
    let free = free_slots_by_type(input, kinds).map_err(|e| FhirError::Internal(e.to_string()))?;
    let mut by_kind = vec![Vec::new(); kinds.len()];
    for at in free.in_order() {
        by_kind[at.kind as usize].push(FreeSlots::slot(at, input, kinds));
    }
    Ok(by_kind)
}

/// The free slots of `kinds` in the scope, with the input they were
/// computed from (`None` without kinds), as [`find_slots`] loads them: for
/// searches that want the first few of many.
pub async fn free_slots_in(
    db: &Db,
    org_id: &str,
    kinds: &[AppointmentType],
    scope: &Scope,
    specialties: &[String],
) -> Result<Option<(SlotInput, FreeSlots)>, FhirError> {
    let Some(input) = load_input(db, org_id, kinds, scope, specialties).await? else {
        return Ok(None);
    };
    let free = free_slots_by_type(&input, kinds).map_err(|e| FhirError::Internal(e.to_string()))?;
    Ok(Some((input, free)))
}

async fn load_input(
    db: &Db,
    org_id: &str,
    kinds: &[AppointmentType],
    scope: &Scope,
    specialties: &[String],
) -> Result<Option<SlotInput>, FhirError> {
    Ok(db
        .slot_input_for_types(
            org_id,
            kinds,
            &scope.filter,
            specialties,
            scope.from,
            scope.until,
            scope.now,
        )
        .await?)
}

type SlotAt<'a> = (&'a str, &'a str, Timestamp);

fn at(s: &Slot) -> SlotAt<'_> {
    (&s.practitioner_id, &s.location_id, s.start)
}

/// A slot of one of the types asked about (`kind` indexes them).
#[derive(Debug, Clone)]
pub struct Found {
    pub slot: Slot,
    pub status: SlotStatus,
    pub kind: usize,
}

/// The slots of `kinds` in the scope, by start, provider, location and
/// type, with the input they were computed from (`None` without kinds; its
/// type is one of them).
/// Free slots are what the schedule offers now; busy-tentative ones are
/// offered but for live holds; busy ones but for appointments. One load
/// serves every type; providers are narrowed to those holding
/// one of `specialties` (when any); `scope.specialty` is not looked at.
pub async fn find_slots(
    db: &Db,
    org_id: &str,
    kinds: &[AppointmentType],
    scope: &Scope,
    specialties: &[String],
) -> Result<Option<(SlotInput, Vec<Found>)>, FhirError> {
    let wants = |s: SlotStatus| scope.statuses.is_empty() || scope.statuses.contains(&s);
    let Some(input) = load_input(db, org_id, kinds, scope, specialties).await? else {
        return Ok(None);
    };
    let free = computed(&input, kinds)?;
    let (unheld, open) = if wants(SlotStatus::BusyTentative) || wants(SlotStatus::Busy) {
        let mut unheld = input.clone();
        unheld.holds.clear();
        let open = if wants(SlotStatus::Busy) {
            let mut open = unheld.clone();
            open.bookings.clear();
            computed(&open, kinds)?
        } else {
            Vec::new()
        };
        (computed(&unheld, kinds)?, open)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut out = Vec::new();
    for (kind, free) in free.into_iter().enumerate() {
        let mut seen: HashSet<SlotAt> = free.iter().map(at).collect();
        let mut later: Vec<(&Slot, SlotStatus)> = Vec::new();
        for s in unheld.get(kind).into_iter().flatten() {
            if seen.insert(at(s)) && wants(SlotStatus::BusyTentative) {
                later.push((s, SlotStatus::BusyTentative));
            }
        }
        for s in open.get(kind).into_iter().flatten() {
            if seen.insert(at(s)) {
                later.push((s, SlotStatus::Busy));
            }
        }
        let later: Vec<Found> = later
            .into_iter()
            .map(|(s, status)| Found {
                slot: s.clone(),
                status,
                kind,
            })
            .collect();
        if wants(SlotStatus::Free) {
            out.extend(free.into_iter().map(|slot| Found {
                slot,
                status: SlotStatus::Free,
                kind,
            }));
        }
        out.extend(later);
    }
    out.sort_by(|a, b| {
        (a.slot.start, at(&a.slot))
            .cmp(&(b.slot.start, at(&b.slot)))
            .then_with(|| kinds[a.kind].id.cmp(&kinds[b.kind].id))
    });
    Ok(Some((input, out)))
}

/// The slots of `types` in the scope, by start, provider, location and type
/// (see [`find_slots`]).
pub async fn offered(
    db: &Db,
    org_id: &str,
    types: &[AppointmentType],
    scope: &Scope,
) -> Result<Vec<Offered>, FhirError> {
    let kinds: Vec<AppointmentType> = types.iter().filter(|t| t.active).cloned().collect();
    let Some((input, found)) =
        find_slots(db, org_id, &kinds, scope, scope.specialty.as_slice()).await?
    else {
        return Ok(Vec::new());
    };
    let specialties: HashMap<&str, &Vec<String>> = input
        .providers
        .iter()
        .map(|p| (p.practitioner_id.as_str(), &p.specialties))
        .collect();
    Ok(found
        .into_iter()
        .map(|f| Offered {
            specialties: specialties
                .get(f.slot.practitioner_id.as_str())
                .map(|s| s.to_vec())
                .unwrap_or_default(),
            type_name: kinds[f.kind].name.clone(),
            status: f.status,
            slot: f.slot,
        })
        .collect())
}

/// The one slot a key names, if the schedule still has it.
pub async fn offered_at(
    db: &Db,
    org_id: &str,
    key: &SlotKey<String>,
    types: &[AppointmentType],
    now: Timestamp,
) -> Result<Option<Offered>, FhirError> {
    let Some(kind) = types.iter().find(|t| t.id == key.appointment_type) else {
        return Ok(None);
    };
    let until = key
        .start
        .checked_add(SignedDuration::from_mins(1))
        .map_err(|e| FhirError::Internal(e.to_string()))?;
    let scope = Scope {
        filter: SlotFilter {
            practitioner_ids: vec![key.practitioner.clone()],
            location_ids: vec![key.location.clone()],
        },
        from: key.start,
        until,
        now,
        specialty: None,
        statuses: Vec::new(),
    };
    let found = offered(db, org_id, std::slice::from_ref(kind), &scope).await?;
    Ok(found.into_iter().find(|o| {
        o.slot.start == key.start
            && o.slot.practitioner_id == key.practitioner
            && o.slot.location_id == key.location
    }))
}

// ---------------------------------------------------------------------------
// Refusals and store errors as OperationOutcomes

/// The elements a booking's problems are reported at.
#[derive(Debug, Clone)]
pub struct At {
    pub start: String,
    pub end: String,
    pub patient: String,
    pub practitioner: String,
    pub location: String,
    pub resource: String,
    pub service_type: String,
    pub override_reason: String,
    pub status: String,
    pub cancel_reason: String,
    pub reason: String,
    pub comment: String,
}

impl At {
    /// Every problem at one element (an operation's reference parameter).
    pub fn all(path: &str) -> Self {
        let p = path.to_string();
        Self {
            start: p.clone(),
            end: p.clone(),
            patient: p.clone(),
            practitioner: p.clone(),
            location: p.clone(),
            resource: p.clone(),
            service_type: p.clone(),
            override_reason: p.clone(),
            status: p.clone(),
            cancel_reason: p.clone(),
            reason: p.clone(),
            comment: p,
        }
    }
}

pub fn rule(path: &str, message: impl std::fmt::Display) -> Issue {
    Issue::at("business-rule", path, format!("{path}: {message}"))
}

pub fn conflict(message: impl Into<String>) -> FhirError {
    FhirError::Conflict(Issue::new("conflict", message))
}

/// A refusal of the schedule: the slot taken is a conflict (409), any other
/// rule a business-rule failure (422) at the element to blame.
pub fn refused(r: Refusal, at: &At) -> FhirError {
    let one = |path: &str, code: &'static str, text: String| {
        FhirError::BusinessRule(vec![Issue::at(code, path, format!("{path}: {text}"))])
    };
    match r {
        Refusal::NeedsOverride(issues)
            if issues
                .iter()
                .all(|i| matches!(i, FitIssue::OverCapacity { .. })) =>
        {
            let why: Vec<String> = issues.iter().map(ToString::to_string).collect();
            conflict(format!(
                "The slot is taken: {}. Look for another slot.",
                why.join("; ")
            ))
        }
        Refusal::NoResourceFree(kind) => conflict(format!(
            "The slot is taken: no {} is free then. Look for another slot.",
            kind.label()
        )),
        Refusal::ResourceUnavailable {
            ref resource_id,
            why: "it is taken then",
        } => conflict(format!(
            "The slot is taken: resource {resource_id} is in use then."
        )),
        Refusal::NeedsOverride(issues) => FhirError::BusinessRule(
            issues
                .iter()
                .map(|i| {
                    let path = match i {
                        FitIssue::LocationClosed => &at.location,
                        _ => &at.start,
                    };
                    rule(
                        path,
                        format!(
                            "{i}; a lead may book it anyway with the extension \
                             {OVERRIDE_EXTENSION} giving the reason"
                        ),
                    )
                })
                .collect(),
        ),
        Refusal::UnknownPractitioner(_) => one(
            &at.practitioner,
            "business-rule",
            format!("{r}: the practitioner is unknown, inactive or has no schedule"),
        ),
        Refusal::NotOffered => one(&at.service_type, "business-rule", r.to_string()),
        Refusal::WrongPatientKind(_) => one(&at.patient, "business-rule", r.to_string()),
        Refusal::OffGrid | Refusal::AlreadyOver | Refusal::OutOfRange => {
            one(&at.start, "business-rule", r.to_string())
        }
        Refusal::ResourceUnavailable { .. } => one(&at.resource, "business-rule", r.to_string()),
        Refusal::OverrideNotPermitted(_) => one(&at.override_reason, "forbidden", r.to_string()),
        Refusal::OverrideReasonRequired => one(&at.override_reason, "business-rule", r.to_string()),
        Refusal::Schedule(ScheduleError::UnknownLocation(_)) => one(
            &at.location,
            "business-rule",
            "the location is unknown or deleted".into(),
        ),
        Refusal::Schedule(e) => FhirError::Internal(e.to_string()),
    }
}

/// Validation errors of a scheduling write, at the elements they concern.
fn invalid(errors: &ValidationErrors, at: &At) -> FhirError {
    let mut rules = Vec::new();
    let mut input = Vec::new();
    for e in errors.errors() {
        let (path, business) = match e.field.as_str() {
            "patient_id" => (Some(&at.patient), true),
            "status" => (Some(&at.status), true),
            "cancel_reason" => (Some(&at.cancel_reason), true),
            "appointment_type_id" => (Some(&at.service_type), true),
            "reason_for_visit" => (Some(&at.reason), false),
            "notes" => (Some(&at.comment), false),
            _ => (None, false),
        };
        let issue = match (path, e.field.as_str()) {
            (Some(p), _) if business => rule(p, &e.message),
            (Some(p), _) => Issue::at("value", p, format!("{p} {}", e.message)),
            (None, "idempotency_key") => {
                Issue::new("value", format!("The Idempotency-Key header {}", e.message))
            }
            (None, field) => Issue::new("value", format!("{field} {}", e.message)),
        };
        if business {
            rules.push(issue);
        } else {
            input.push(issue);
        }
    }
    if input.is_empty() {
        FhirError::BusinessRule(rules)
    } else {
        input.extend(rules);
        FhirError::Invalid(input)
    }
}

/// A store error of a scheduling write: a slot taken meanwhile or a reused
/// idempotency key is a conflict (409).
pub fn stored(e: StoreError, at: &At) -> FhirError {
    match e {
        StoreError::Conflict(message) => conflict(message),
        StoreError::Invalid(errors) => invalid(&errors, at),
        other => other.into(),
    }
}

pub fn booking_failed(e: BookError, at: &At) -> FhirError {
    match e {
        BookError::Refused(r) => refused(r, at),
        BookError::Store(e) => stored(e, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_fit_fhir() {
        let uuid = "01968f2a-7b3c-7def-8a12-3456789abcde";
        let c = compact(uuid);
        assert_eq!(c.len(), 23);
        assert_eq!(Part::parse(&c), Some(Part::Exact(uuid.into())));
        assert_eq!(compact("dr-a"), "rdr-a");
        assert_eq!(Part::parse("rdr-a"), Some(Part::Exact("dr-a".into())));
        let odd = "an id with spaces";
        let d = compact(odd);
        assert!(d.starts_with('h') && d.len() == 9);
        assert!(Part::parse(&d).unwrap().matches(odd));
        assert!(Part::parse("u123").is_none());
        // Upper-case UUIDs are not written as UUIDs (they would not round-trip).
        assert!(compact(&uuid.to_uppercase()).starts_with('h'));

        let start: Timestamp = "2026-03-09T14:05:00Z".parse().unwrap();
        let slot = Slot {
            practitioner_id: uuid.into(),
            location_id: "01968f2a-7b3c-7def-8a12-3456789abcdf".into(),
            appointment_type_id: "01968f2a-7b3c-7def-8a12-3456789abce0".into(),
            start,
            end: start,
            local_start: start.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
            local_end: start.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
            resource_id: None,
            booked: 0,
            capacity: 1,
        };
        let id = slot_id(&slot);
        assert!(id.len() <= 64, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        );
        let key = parse_slot_id(&id).unwrap();
        assert_eq!(key.practitioner, Part::Exact(slot.practitioner_id.clone()));
        assert_eq!(key.location, Part::Exact(slot.location_id.clone()));
        assert!(key.appointment_type.matches(&slot.appointment_type_id));
        assert_eq!(key.start, start);

        let proposed = proposed_id(&slot, Some(uuid));
        assert!(proposed.len() <= 64, "{proposed}");
        let (key, patient) = parse_proposed_id(&proposed).unwrap();
        assert_eq!(patient.as_deref(), Some(uuid));
        assert!(key.practitioner.matches(uuid));
        assert_eq!(key.start, start);
        let (_, none) = parse_proposed_id(&proposed_id(&slot, None)).unwrap();
        assert_eq!(none, None);
        assert!(parse_slot_id(&proposed).is_none());
        assert!(parse_proposed_id(&id).is_none());
    }
}
