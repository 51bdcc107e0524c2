//! Deterministic datasets, built once per (backend, seed, size) and reused.
//!
//! Patient `i` of the dataset is patient `i` of `PatientGenerator::new(seed)`
//! and gets MRN `i + 1` and a record id made from `i` (patients are stored in
//! order through the store's bulk path), so scenarios can derive what to
//! type from the generator alone.

use crate::Args;
use crate::load;
use anyhow::{Context, Result, bail};
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{PractitionerRole, Room};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{Appointment, AppointmentStatus, AppointmentType, Template};
use carefront_server::auth::hash_password;
use carefront_server::demo;
use carefront_store::{Actor, AppointmentQuery, AppointmentRecord, Db, NewUser, Page, StoreError};
use carefront_synth::schedule::{
    AppointmentParams, BENCHMARK_PATIENTS, BENCHMARK_PROVIDERS, DemoSchedule, ScheduleIds,
    appointment_types, scaled_clinic,
};
use carefront_synth::{
    DemoClinic, DemoPractitionerRole, PatientGenerator, REFERENCE_DATE, demo_clinic,
};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;

/// Patients per bulk write while generating, and per transaction.
const BATCH: u64 = 10_000;
const PER_TRANSACTION: u64 = 200_000;

pub struct Dataset {
    pub url: String,
    /// Where it lives, without credentials.
    pub display: String,
    pub backend: &'static str,
    pub org_id: String,
}

pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        })
}

/// The environment variable naming the directory for cached datasets, CSV
/// files and the import's database instead of `target/bench-data` (the
/// harness's own tests point it at a directory of their own).
pub const DATA_DIR_VAR: &str = "CAREFRONT_BENCH_DATA";

/// `$CAREFRONT_BENCH_DATA` if set, else `target/bench-data`; created if
/// missing.
pub fn data_dir() -> Result<std::path::PathBuf> {
    let dir = match std::env::var_os(DATA_DIR_VAR) {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => target_dir().join("bench-data"),
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The database URL for a dataset called `name`: a SQLite file under
/// `target/bench-data`, the SQLite URL given, or a database of that name on
/// the PostgreSQL server whose admin URL is given (created if missing).
pub async fn database_for(
    database: Option<&str>,
    name: &str,
) -> Result<(String, String, &'static str)> {
    Ok(match database {
        Some(admin) if admin.starts_with("postgres") => {
            let admin_db = Db::connect(admin)
                .await
                .context("cannot reach PostgreSQL")?;
            admin_db.create_database_if_missing(name).await?;
            admin_db.close().await;
            (
                format!("{}/{name}", postgres_base(admin)),
                format!("PostgreSQL database {name}"),
                "postgres",
            )
        }
        Some(sqlite) => (sqlite.to_string(), sqlite.to_string(), "sqlite"),
        None => {
            let path = data_dir()?.join(format!("{name}.db"));
            (
                format!("sqlite://{}", path.display()),
                path.display().to_string(),
                "sqlite",
            )
        }
    })
}

/// `postgres://user@host:port` of an admin URL (without the database).
pub fn postgres_base(admin: &str) -> &str {
    admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin)
}

pub async fn prepare(args: &Args) -> Result<Dataset> {
    prepare_named(
        args,
        &format!("cf_bench_s{}_n{}", args.seed, args.size),
        None,
    )
    .await
}

/// From this many patients on, the scheduling scenarios run on the issue's
/// benchmark clinic; below, on the demo clinic, because storing the
/// benchmark schedule takes minutes whatever the patient count.
pub const SCALED_FROM: u64 = 100_000;

/// Appointments stored per transaction while generating.
const APPOINTMENTS_PER_TRANSACTION: usize = 2_000;

/// The scheduling scenarios' dataset and what it holds, for the table.
pub struct Schedule {
    pub data: Dataset,
    pub description: String,
}

/// The scheduling dataset: the patients of [`prepare`] (in a database of
/// its own, so bookings never touch the patient-search datasets) and an
/// appointment book around the day it was built. From [`SCALED_FROM`]
/// patients on, the benchmark clinic ([`prepare_scaled`]); below,
/// the demo clinic's schedule from `demo::seed_schedule` (12 practitioners).
pub async fn prepare_schedule(args: &Args) -> Result<Schedule> {
    if args.size >= SCALED_FROM {
        return prepare_scaled(args).await;
    }
    let name = format!("cf_bench_sched_s{}_n{}", args.seed, args.size);
    let data = prepare_named(args, &name, None).await?;
    let db = Db::connect(&data.url).await?;
    let mut appointments = stored_appointments(&db, &data.org_id).await?;
    if appointments == 0 {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "seeding the demo schedule [{bar:40}] {pos}/{len} appointments ({eta} left)",
            )?
            .progress_chars("=> "),
        );
        let seeded = demo::seed_schedule(
            &db,
            &data.org_id,
            args.seed,
            Timestamp::now(),
            |n, total| {
                bar.set_length(total);
                bar.set_position(n);
            },
        )
        .await?;
        appointments = i64::try_from(seeded)?;
        bar.finish();
    }
    db.close().await;
    Ok(Schedule {
        description: describe("demo clinic", &demo_clinic(args.seed), appointments),
        data,
    })
}

/// "demo clinic: 12 practitioners (3 in family medicine 207Q00000X), 3
/// locations, 507 appointments".
fn describe(what: &str, clinic: &DemoClinic, appointments: i64) -> String {
    let in_specialty: HashSet<usize> = clinic
        .practitioner_roles
        .iter()
        .filter(|r| r.specialty == load::SPECIALTY)
        .map(|r| r.practitioner)
        .collect();
    format!(
        "{what}: {} practitioners ({} in {}), {} locations, {appointments} appointments",
        clinic.practitioners.len(),
        in_specialty.len(),
        load::SPECIALTY,
        clinic.locations.len()
    )
}

async fn stored_appointments(db: &Db, org_id: &str) -> Result<i64> {
    let everything = AppointmentQuery::default();
    let none = Page {
        offset: 0,
        count: 0,
    };
    Ok(db.appointments(org_id, &everything, none).await?.1)
}

/// The record id of generated data by kind and index, shaped like
/// `new_id`'s UUIDs (so FHIR ids take the production path): appointments
/// name their patients by index alone, and a resumed generation finds what
/// an interrupted one stored.
fn fixed_id(kind: u32, index: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{index:012x}")
}

const ORGANIZATION: u32 = 0xbe0c_0001;
const LOCATION: u32 = 0xbe0c_0002;
const ROOM: u32 = 0xbe0c_0003;
const PRACTITIONER: u32 = 0xbe0c_0004;
const ROLE: u32 = 0xbe0c_0005;
const PATIENT: u32 = 0xbe0c_0006;
const APPOINTMENT: u32 = 0xbe0c_0007;
const USER: u32 = 0xbe0c_0008;

fn fixed_ids(kind: u32, n: usize) -> Vec<String> {
    (0..n).map(|i| fixed_id(kind, i)).collect()
}

/// The benchmark dataset: `scaled_clinic` with
/// [`BENCHMARK_PROVIDERS`], its schedule and the appointments of
/// `AppointmentParams::benchmark` (drawn from the dataset's patients, at
/// most [`BENCHMARK_PATIENTS`]), stored through the booking path (claims
/// included). Resumable: the plan's "now" is when the appointment types
/// were stored, and appointments already stored are skipped.
async fn prepare_scaled(args: &Args) -> Result<Schedule> {
    let clinic = scaled_clinic(args.seed, BENCHMARK_PROVIDERS);
    let name = format!(
        "cf_bench_sched{BENCHMARK_PROVIDERS}_s{}_n{}",
        args.seed, args.size
    );
    let data = prepare_named(args, &name, Some(&clinic)).await?;
    let db = Db::connect(&data.url).await?;
    let org_id = data.org_id.as_str();
    let ids = ScheduleIds {
        locations: fixed_ids(LOCATION, clinic.locations.len()),
        rooms: fixed_ids(ROOM, clinic.rooms.len()),
        practitioners: fixed_ids(PRACTITIONER, clinic.practitioners.len()),
    };
    let actor = Actor::system("bench");
    let types = appointment_types(&clinic);
    let first_type = match db.get::<AppointmentType>(org_id, &types[0].id).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => {
            let mut tx = db.begin(org_id).await?;
            for t in types {
                tx.create_appointment_type(t, &actor).await?;
            }
            tx.commit().await?;
            db.get::<AppointmentType>(org_id, &appointment_types(&clinic)[0].id)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let now = Timestamp::from_microsecond(first_type.updated_at_us)?;
    let around = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let schedule = DemoSchedule::new(&clinic, ids, args.seed, around);
    let none = Page {
        offset: 0,
        count: 0,
    };
    if db.search::<Template>(org_id, &[], none).await?.1 == 0 {
        let mut tx = db.begin(org_id).await?;
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
    }
    let params = AppointmentParams {
        patients: args.size.min(BENCHMARK_PATIENTS),
        ..AppointmentParams::benchmark(args.seed, now)
    };
    let mut stored = stored_appointments(&db, org_id).await?;
    if stored < i64::try_from(params.target.unwrap_or(0))? {
        eprintln!("planning the benchmark appointments...");
        let plan = schedule.appointments(&params);
        let bar = ProgressBar::new(plan.len() as u64).with_style(
            ProgressStyle::with_template(
                "storing the benchmark schedule [{bar:40}] {pos}/{len} appointments \
                 ({per_sec}, {eta} left)",
            )?
            .progress_chars("=> "),
        );
        let done = usize::try_from(stored)?.min(plan.len());
        bar.set_position(done as u64);
        db.use_bulk_memory(1024).await?;
        for (n, chunk) in plan[done..]
            .chunks(APPOINTMENTS_PER_TRANSACTION)
            .enumerate()
        {
            let first = done + n * APPOINTMENTS_PER_TRANSACTION;
            let mut tx = db.begin(org_id).await?;
            for (index, planned) in (first..).zip(chunk) {
                let patient = fixed_id(PATIENT, usize::try_from(planned.patient)?);
                let appointment =
                    planned.to_appointment(fixed_id(APPOINTMENT, index), patient, &schedule);
                tx.record_appointment(appointment, "bench").await?;
            }
            tx.audit(
                AuditEntry::new("system", Action::Create, Outcome::Success)
                    .resource("Appointment", None)
                    .detail(format!(
                        "benchmark appointments {first} to {}",
                        first + chunk.len() - 1
                    )),
            )
            .await?;
            tx.commit().await?;
            bar.inc(chunk.len() as u64);
        }
        db.refresh_statistics::<AppointmentRecord>().await?;
        bar.finish();
        stored = stored_appointments(&db, org_id).await?;
    }
    db.close().await;
    Ok(Schedule {
        description: describe(
            &format!(
                "benchmark clinic (scaled_clinic, {} templates, {} patients booked from)",
                schedule.templates.len(),
                params.patients
            ),
            &clinic,
            stored,
        ),
        data,
    })
}

/// Creates the organization of `clinic` with its locations, rooms,
/// practitioners and their roles under [`fixed_id`]s (no staff: the
/// scenarios use API tokens). Returns the organization id.
async fn seed_directory(db: &Db, clinic: &DemoClinic) -> Result<String> {
    let org_id = fixed_id(ORGANIZATION, 0);
    let mut tx = db.begin(&org_id).await?;
    tx.create(&org_id, &clinic.organization.clone().validate()?, "bench")
        .await?;
    for (i, location) in clinic.locations.iter().enumerate() {
        tx.create(
            &fixed_id(LOCATION, i),
            &location.clone().validate()?,
            "bench",
        )
        .await?;
    }
    for (i, room) in clinic.rooms.iter().enumerate() {
        let room = Room {
            location_id: fixed_id(LOCATION, room.location),
            name: room.name.clone(),
            kind: room.kind,
        };
        tx.create(&fixed_id(ROOM, i), &room, "bench").await?;
    }
    for (i, p) in clinic.practitioners.iter().enumerate() {
        tx.create(&fixed_id(PRACTITIONER, i), &p.clone().validate()?, "bench")
            .await?;
    }
    for (i, r) in clinic.practitioner_roles.iter().enumerate() {
        let role = PractitionerRole {
            practitioner_id: fixed_id(PRACTITIONER, r.practitioner),
            location_id: fixed_id(LOCATION, r.location),
            specialty: r.specialty.to_string(),
            active: true,
        }
        .validate()?;
        tx.create(&fixed_id(ROLE, i), &role, "bench").await?;
    }
    tx.audit(
        AuditEntry::new("system", Action::Create, Outcome::Success)
            .resource("Organization", Some(&org_id))
            .detail(format!(
                "benchmark clinic: {} practitioners",
                clinic.practitioners.len()
            )),
    )
    .await?;
    tx.commit().await?;
    Ok(org_id)
}

/// The patients of a dataset, in the organization of `clinic` (seeded by
/// [`seed_directory`]) or else of the demo clinic.
async fn prepare_named(args: &Args, name: &str, clinic: Option<&DemoClinic>) -> Result<Dataset> {
    let (url, display, backend) = database_for(args.database.as_deref(), name).await?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    // A dataset cached by an older build is re-keyed for this one's rules.
    db.rebuild_stale_keys(|_, _| {}).await?;
    let org_id = match db.organizations().await?.first() {
        Some((id, _)) => id.clone(),
        None => match clinic {
            Some(clinic) => seed_directory(&db, clinic).await?,
            None => demo::seed_clinic(&db, args.seed).await?.0,
        },
    };
    let (_, have) = db
        .search::<Patient>(
            &org_id,
            &[],
            Page {
                offset: 0,
                count: 0,
            },
        )
        .await?;
    let have = u64::try_from(have)?;
    if have > args.size {
        bail!(
            "{display} holds {have} patients, more than --size {}; pass another --database",
            args.size
        );
    }
    if have < args.size {
        let bar = ProgressBar::new(args.size).with_style(
            ProgressStyle::with_template(
                "generating dataset [{bar:40}] {pos}/{len} patients ({per_sec}, {eta} left)",
            )?
            .progress_chars("=> "),
        );
        bar.set_position(have);
        let generator = PatientGenerator::new(args.seed);
        let mut next = have;
        while next < args.size {
            let end = (next + PER_TRANSACTION).min(args.size);
            let mut tx = db.begin(&org_id).await?;
            while next < end {
                let until = (next + BATCH).min(end);
                let rows: Vec<(String, Patient)> = (next..until)
                    .zip(generator.iter(next..until))
                    .map(|(i, p)| Ok((fixed_id(PATIENT, usize::try_from(i)?), p)))
                    .collect::<Result<_>>()?;
                tx.create_patients(rows, "bench").await?;
                next = until;
                bar.set_position(next);
            }
            tx.commit().await?;
        }
        db.refresh_statistics::<Patient>().await?;
        bar.finish();
    }
    db.close().await;
    Ok(Dataset {
        url,
        display,
        backend,
        org_id,
    })
}

/// Visits on the board day: the busy board.
pub const BOARD_VISITS: usize = 300;
/// The location of the board day: the demo clinic's first.
const BOARD_LOCATION: usize = 0;
/// Visits a provider of the board day sees at once at most: the location's
/// six providers share 300 visits, so each keeps three going (overbooked)
/// to be done by the afternoon.
const BOARD_LANES: usize = 3;

/// The board scenarios' dataset and where its board is.
pub struct Board {
    pub data: Dataset,
    pub location_id: String,
    pub date: Date,
    /// The board's last row (visits are numbered in start order), which
    /// shows the whole board was rendered.
    pub last_visit_id: String,
    pub description: String,
}

/// The board day: the first Monday after the synthetic data's reference
/// date, so the dataset is the same whenever it is built, and in the past,
/// so the domain lets every visit arrive (it refuses arrivals more than two
/// hours early) and be marked a no-show.
pub fn board_day() -> Result<Date> {
    Ok(REFERENCE_DATE.nth_weekday(1, Weekday::Monday)?)
}

/// The board scenarios' dataset: the patients of [`prepare`] in the demo
/// clinic's directory (under [`fixed_id`]s), its appointment types, its
/// front desk account, and [`BOARD_VISITS`] booked appointments at its
/// first location on [`board_day`], spread over the location's providers
/// from 7 AM, each provider up to [`BOARD_LANES`] at once. A database of
/// its own: `board-fanout` moves visits along.
pub async fn prepare_board(args: &Args) -> Result<Board> {
    if args.size < BOARD_VISITS as u64 {
        bail!("the board scenarios need --size {BOARD_VISITS} or more: one patient per visit");
    }
    let clinic = demo_clinic(args.seed);
    let name = format!("cf_bench_board_s{}_n{}", args.seed, args.size);
    let data = prepare_named(args, &name, Some(&clinic)).await?;
    let db = Db::connect(&data.url).await?;
    let providers = if stored_appointments(&db, &data.org_id).await? == 0 {
        store_board_day(&db, &data.org_id, &clinic, args).await?
    } else {
        board_roles(&clinic).len()
    };
    db.close().await;
    let location = &clinic.locations[BOARD_LOCATION];
    let date = board_day()?;
    Ok(Board {
        description: format!(
            "{} ({}): {BOARD_VISITS} visits on {date} across its {providers} providers",
            location.name, location.timezone
        ),
        data,
        location_id: fixed_id(LOCATION, BOARD_LOCATION),
        date,
        last_visit_id: fixed_id(APPOINTMENT, BOARD_VISITS - 1),
    })
}

/// The practitioner roles at the board's location.
fn board_roles(clinic: &DemoClinic) -> Vec<&DemoPractitionerRole> {
    clinic
        .practitioner_roles
        .iter()
        .filter(|r| r.location == BOARD_LOCATION)
        .collect()
}

/// Stores what [`prepare_board`] adds to the directory, in one transaction
/// (so an interrupted build leaves nothing half done); returns how many
/// providers the visits are spread over.
async fn store_board_day(db: &Db, org_id: &str, clinic: &DemoClinic, args: &Args) -> Result<usize> {
    let roles = board_roles(clinic);
    let types = appointment_types(clinic);
    let desk = clinic
        .staff
        .iter()
        .find(|s| s.role == Role::FrontDesk)
        .context("the demo clinic has no front desk account")?;
    let tz = TimeZone::get(&clinic.locations[BOARD_LOCATION].timezone)?;
    let day = board_day()?;
    let opens = day.at(7, 0, 0, 0).to_zoned(tz)?.timestamp();
    let booked_at = opens - SignedDuration::from_hours(7 * 24);
    // When each provider's lanes are free next.
    let mut lanes = vec![[opens; BOARD_LANES]; roles.len()];
    let actor = Actor::system("bench");
    let mut tx = db.begin(org_id).await?;
    for t in &types {
        tx.create_appointment_type(t.clone(), &actor).await?;
    }
    let user = NewUser {
        username: desk.username.clone(),
        display_name: desk.display_name.clone(),
        role: desk.role,
        password_hash: hash_password(&desk.password),
    };
    tx.create_user(&fixed_id(USER, 0), &user).await?;
    for i in 0..BOARD_VISITS {
        let role = roles[i % roles.len()];
        let offered: Vec<&AppointmentType> = types
            .iter()
            .filter(|t| t.specialties.iter().any(|s| s == role.specialty))
            .collect();
        if offered.is_empty() {
            bail!("no appointment type for specialty {}", role.specialty);
        }
        let kind = offered[(i / roles.len() + args.seed as usize) % offered.len()];
        let lane = lanes[i % roles.len()]
            .iter_mut()
            .min()
            .expect("BOARD_LANES is not zero");
        let start = *lane;
        *lane = start + SignedDuration::from_mins(kind.duration_minutes.into());
        let patient = usize::try_from(i as u64 * args.size / BOARD_VISITS as u64)?;
        let appointment = Appointment {
            id: fixed_id(APPOINTMENT, i),
            patient_id: fixed_id(PATIENT, patient),
            practitioner_id: fixed_id(PRACTITIONER, role.practitioner),
            location_id: fixed_id(LOCATION, BOARD_LOCATION),
            appointment_type_id: kind.id.clone(),
            resource_ids: vec![],
            start,
            end: *lane,
            status: AppointmentStatus::Booked,
            status_changed_at: booked_at,
            max_seat: u8::try_from(BOARD_LANES - 1)?,
            cancel_reason: None,
            override_reason: None,
            series_id: None,
            rescheduled_from: None,
            arrived_at: None,
        };
        tx.record_appointment(appointment, "bench").await?;
    }
    tx.audit(
        AuditEntry::new("system", Action::Create, Outcome::Success)
            .resource("Appointment", None)
            .detail(format!(
                "benchmark board: {BOARD_VISITS} appointments on {day}"
            )),
    )
    .await?;
    tx.commit().await?;
    db.refresh_statistics::<AppointmentRecord>().await?;
    Ok(roles.len())
}
