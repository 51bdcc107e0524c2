//! Seeding the demo clinic and adding generated patients (synthetic only).

use crate::auth::hash_password;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{Location, Practitioner, PractitionerRole, Room};
use carefront_domain::patient::Patient;
use carefront_store::{Actor, Db, NewUser, Record, StoreError, new_id};
use carefront_synth::schedule::{AppointmentParams, DemoSchedule, ScheduleIds};
use carefront_synth::{DemoClinic, DemoStaff, PatientGenerator, demo_clinic};
use jiff::Timestamp;

pub const DEFAULT_SEED: u64 = 1;
pub const DEFAULT_PATIENTS: u64 = 2_000;
const BATCH: u64 = 500;
/// Patients read per search while seeding the schedule (the store's most).
const PATIENT_PAGE: i64 = 1_000;

/// Creates the demo organization with its locations, rooms, practitioners
/// and one staff user per role. Returns the organization id and the staff
/// sign-ins to print.
pub async fn seed_clinic(db: &Db, seed: u64) -> Result<(String, Vec<DemoStaff>), StoreError> {
    let clinic = demo_clinic(seed);
    let org_id = new_id();
    let mut tx = db.begin(&org_id).await?;
    tx.create(&org_id, &clinic.organization.clone().validate()?, "demo")
        .await?;
    let mut location_ids = Vec::new();
    for location in &clinic.locations {
        let id = new_id();
        tx.create(&id, &location.clone().validate()?, "demo")
            .await?;
        location_ids.push(id);
    }
    for room in &clinic.rooms {
        let room = Room {
            location_id: location_ids[room.location].clone(),
            name: room.name.clone(),
            kind: room.kind,
        };
        tx.create(&new_id(), &room, "demo").await?;
    }
    let mut practitioner_ids = Vec::new();
    for p in &clinic.practitioners {
        let id = new_id();
        tx.create(&id, &p.clone().validate()?, "demo").await?;
        practitioner_ids.push(id);
    }
    for r in &clinic.practitioner_roles {
        let role = PractitionerRole {
            practitioner_id: practitioner_ids[r.practitioner].clone(),
            location_id: location_ids[r.location].clone(),
            specialty: r.specialty.to_string(),
            active: true,
        }
        .validate()?;
        tx.create(&new_id(), &role, "demo").await?;
    }
    for s in &clinic.staff {
        let user = NewUser {
            username: s.username.clone(),
            display_name: s.display_name.clone(),
            role: s.role,
            password_hash: hash_password(&s.password),
        };
        tx.create_user(&new_id(), &user).await?;
    }
    let payers = tx.seed_payers("demo").await?;
    tx.audit(
        AuditEntry::new("system", Action::Create, Outcome::Success)
            .resource("Organization", Some(&org_id))
            .detail(format!(
                "demo clinic seeded from seed {seed}, with {payers} common payers"
            )),
    )
    .await?;
    tx.commit().await?;
    Ok((org_id, clinic.staff))
}

/// Adds `count` generated patients after the ones already stored, so that
/// repeated runs add new people. Calls `progress` with the number added.
pub async fn add_patients(
    db: &Db,
    org_id: &str,
    seed: u64,
    count: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let existing = db
        .search::<Patient>(
            org_id,
            &[],
            carefront_store::Page {
                offset: 0,
                count: 0,
            },
        )
        .await?
        .1;
    let start = u64::try_from(existing).unwrap_or(0);
    let generator = PatientGenerator::new(seed);
    // Payer record ids by index into COMMON_PAYERS (none when the
    // organization has no such payer: then no coverage is generated).
    let directory = db.payers(org_id).await?;
    let payer_ids: Vec<Option<String>> = carefront_domain::coverage::COMMON_PAYERS
        .iter()
        .map(|(_, code)| {
            directory
                .iter()
                .find(|p| p.value.payer_id == *code && p.value.active)
                .map(|p| p.id.clone())
        })
        .collect();
    let mut added = 0;
    while added < count {
        let n = BATCH.min(count - added);
        let mut patients = Vec::with_capacity(n as usize);
        let mut coverages = Vec::new();
        for (index, patient) in
            (start + added..).zip(generator.iter(start + added..start + added + n))
        {
            let patient_id = new_id();
            for c in carefront_synth::demo_coverages(seed, index, &patient) {
                let Some(payer_ref) = payer_ids[c.payer].clone() else {
                    continue;
                };
                let coverage = carefront_domain::coverage::Coverage {
                    patient_id: patient_id.clone(),
                    payer_ref,
                    ..c.coverage
                };
                coverages.push((new_id(), coverage));
            }
            patients.push((patient_id, patient));
        }
        let mut tx = db.begin(org_id).await?;
        tx.create_patients(patients, "demo").await?;
        tx.create_many(coverages, "demo").await?;
        tx.commit().await?;
        added += n;
        progress(added);
    }
    db.refresh_statistics::<Patient>().await?;
    db.audit(
        org_id,
        AuditEntry::new("system", Action::Create, Outcome::Success)
            .resource(Patient::KIND, None)
            .detail(format!(
                "{count} synthetic demo patients generated from seed {seed}"
            )),
    )
    .await?;
    Ok(added)
}

/// Gives the demo organization its appointment book: appointment types,
/// bookable rooms, opening hours, every provider's templates, holidays and
/// time off, and appointments among its patients over the past and next 30
/// days around `now` (`carefront_synth::schedule`), so the clinic is alive
/// when it opens. Every patient those book as established also gets their
/// first visit, fulfilled 2 to 30 months earlier, so the new-or-established
/// rule (`Db::patient_established`) agrees with the book: rescheduling or
/// booking a follow-up for them is allowed, and a new-patient visit is not.
/// Calls `progress(done, total)` as appointments are stored; returns how
/// many were.
pub async fn seed_schedule(
    db: &Db,
    org_id: &str,
    seed: u64,
    now: Timestamp,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, StoreError> {
    let clinic = demo_clinic(seed);
    let ids = stored_ids(db, org_id, &clinic).await?;
    let around = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let schedule = DemoSchedule::new(&clinic, ids, seed, around);
    let actor = Actor::system("demo");
    let mut tx = db.begin(org_id).await?;
    for t in &schedule.appointment_types {
        tx.create_appointment_type(t.clone(), &actor).await?;
    }
    for room in &schedule.ids.rooms {
        tx.add_room_resource(room, &actor).await?;
    }
    for hours in &schedule.location_hours {
        tx.set_location_hours(&hours.location_id, hours.opening_hours.clone(), &actor)
            .await?;
    }
    for t in &schedule.templates {
        tx.create_template(t.clone(), &actor).await?;
    }
    for e in &schedule.exceptions {
        tx.create_exception(e.clone(), &actor).await?;
    }
    tx.commit().await?;

    // Patient i of the generator has MRN i + 1 (see `add_patients`). Every
    // patient, a page at a time (a search answers at most 1,000).
    let mut by_mrn: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut offset = 0;
    loop {
        let (page, _) = db
            .search::<Patient>(
                org_id,
                &[],
                carefront_store::Page {
                    offset,
                    count: PATIENT_PAGE,
                },
            )
            .await?;
        let n = page.len() as i64;
        by_mrn.extend(page.into_iter().map(|p| (p.value.mrn, p.id)));
        offset += n;
        if n < PATIENT_PAGE {
            break;
        }
    }
    let plan = schedule.appointments(&AppointmentParams::demo(seed, offset as u64, now));
    let total = plan.len() as u64;
    let mut stored = 0;
    for chunk in plan.chunks(BATCH as usize) {
        let mut tx = db.begin(org_id).await?;
        for planned in chunk {
            let mrn = carefront_store::format_mrn(planned.patient as i64 + 1);
            let Some(patient_id) = by_mrn.get(mrn.as_str()) else {
                continue;
            };
            tx.record_appointment(
                planned.to_appointment(new_id(), patient_id.as_str(), &schedule),
                "demo",
            )
            .await?;
            stored += 1;
        }
        tx.commit().await?;
        progress(stored, total);
    }
    db.audit(
        org_id,
        AuditEntry::new("system", Action::Create, Outcome::Success)
            .resource("Appointment", None)
            .detail(format!(
                "demo schedule from seed {seed}: {} appointment types, {} templates, \
                 {stored} appointments around {around} ({} of them established patients' \
                 earlier visits)",
                schedule.appointment_types.len(),
                schedule.templates.len(),
                plan.iter().filter(|a| a.history).count()
            )),
    )
    .await?;
    Ok(stored)
}

/// The store's ids of the demo clinic's locations, rooms and practitioners,
/// in the clinic's order (found by name, and by NPI for practitioners).
async fn stored_ids(db: &Db, org_id: &str, clinic: &DemoClinic) -> Result<ScheduleIds, StoreError> {
    let all = carefront_store::Page {
        offset: 0,
        count: 10_000,
    };
    let (locations, _) = db.search::<Location>(org_id, &[], all).await?;
    let (rooms, _) = db.search::<Room>(org_id, &[], all).await?;
    let (practitioners, _) = db.search::<Practitioner>(org_id, &[], all).await?;
    let missing = |what: &str| StoreError::Corrupt(format!("the demo clinic has no {what}"));
    let location_ids = clinic
        .locations
        .iter()
        .map(|l| {
            locations
                .iter()
                .find(|s| s.value.name == l.name)
                .map(|s| s.id.clone())
                .ok_or_else(|| missing(&l.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let room_ids = clinic
        .rooms
        .iter()
        .map(|r| {
            rooms
                .iter()
                .find(|s| s.value.name == r.name && s.value.location_id == location_ids[r.location])
                .map(|s| s.id.clone())
                .ok_or_else(|| missing(&r.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let practitioner_ids = clinic
        .practitioners
        .iter()
        .map(|p| {
            practitioners
                .iter()
                .find(|s| s.value.npi == p.npi)
                .map(|s| s.id.clone())
                .ok_or_else(|| missing(&p.display_name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ScheduleIds {
        locations: location_ids,
        rooms: room_ids,
        practitioners: practitioner_ids,
    })
}
