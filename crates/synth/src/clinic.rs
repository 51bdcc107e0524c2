//! The demo clinic: one organization with three locations, its rooms,
//! practitioners and one staff account per role.

use crate::names::{person_name, push_slug};
use crate::places::{CITIES, City, address_in, fictional_phone};
use crate::rng::{Draw, Purpose};
use crate::{DemoClinic, DemoPractitionerRole, DemoRoom, DemoStaff};
use carefront_domain::Role;
use carefront_domain::directory::{
    AdministrativeGender, Location, Organization, Practitioner, RoomKind, npi_check_digit,
};

/// Invented practice names; the first column is also the email domain's
/// label.
const BRANDS: &[(&str, &str)] = &[
    ("Riverbend Family Health", "riverbend"),
    ("Maple Grove Medical Group", "maplegrove"),
    ("Harborview Community Clinic", "harborview"),
    ("Cedar Ridge Health Partners", "cedarridge"),
    ("Lakeshore Primary & Specialty Care", "lakeshore"),
    ("Brightwater Medical Associates", "brightwater"),
    ("Northgate Family Practice", "northgate"),
    ("Willow Creek Health", "willowcreek"),
    ("Summit Valley Clinic", "summitvalley"),
    ("Bluestem Medical Group", "bluestem"),
];

const NEIGHBORHOODS: &[&str] = &[
    "Northside",
    "Eastgate",
    "Westfield",
    "Midtown",
    "Uptown",
    "Southpoint",
    "Parkside",
    "Hillcrest",
    "Riverside",
    "Lakeview",
];

/// Individual NPIs are issued starting with 1 or 2 only, so a synthetic NPI
/// starting with 9 passes the check-digit rule yet can never be a real
/// provider's number.
const NPI_LEADING_DIGIT: u32 = 9;

/// One practitioner slot: what they practise and where.
struct Slot {
    specialty: &'static str,
    credential: &'static str,
    /// Indexes into the clinic's locations: a home location and optionally
    /// a second one they also cover.
    locations: &'static [usize],
}

/// The staffing plan. Fixed so that every seed has primary care at every
/// location and every specialty family the product demos (primary care,
/// pediatrics, dermatology, cardiology, behavioral health).
const PLAN: [Slot; 12] = [
    slot("207Q00000X", "MD", &[0]),
    slot("207Q00000X", "DO", &[1]),
    slot("207Q00000X", "MD", &[2]),
    slot("207R00000X", "MD", &[0, 1]),
    slot("363LF0000X", "NP", &[2]),
    slot("208000000X", "MD", &[1, 0]),
    slot("208000000X", "DO", &[2]),
    slot("207N00000X", "MD", &[0, 1]),
    slot("207RC0000X", "MD", &[0, 2]),
    slot("2084P0800X", "MD", &[1, 2]),
    slot("103TC0700X", "PhD", &[0]),
    slot("1041C0700X", "LCSW", &[1, 2]),
];

const fn slot(
    specialty: &'static str,
    credential: &'static str,
    locations: &'static [usize],
) -> Slot {
    Slot {
        specialty,
        credential,
        locations,
    }
}

/// Short, unambiguous words for memorable demo passwords.
const PASSWORD_WORDS: &[&str] = &[
    "amber", "anchor", "aspen", "basil", "birch", "breeze", "canyon", "cedar", "clover", "comet",
    "coral", "cotton", "delta", "ember", "falcon", "fern", "fjord", "garnet", "ginger", "harbor",
    "hazel", "heron", "indigo", "island", "jasper", "juniper", "kettle", "lagoon", "lantern",
    "lemon", "linen", "maple", "marble", "meadow", "mesa", "nectar", "nutmeg", "ocean", "olive",
    "orchid", "otter", "pebble", "pepper", "pine", "prairie", "quartz", "quill", "raven", "river",
    "saffron", "sage", "sparrow", "spruce", "summit", "thistle", "tide", "tulip", "velvet",
    "violet", "walnut", "willow", "wren", "yarrow", "zephyr",
];

pub(crate) fn demo_clinic(seed: u64) -> DemoClinic {
    let mut draw = Draw::new(seed, Purpose::Clinic, 0);
    let (brand, label) = draw.pick(BRANDS);
    let domain = format!("{label}.example");

    // Two locations in one Eastern-time metro, one in Central or Mountain
    // time, so scheduling has to get time zones right.
    let east = pick_city(&mut draw, |c| c.timezone == "America/New_York");
    let west = pick_city(&mut draw, |c| {
        matches!(c.timezone, "America/Chicago" | "America/Denver")
    });
    let first = draw.below(NEIGHBORHOODS.len() as u64) as usize;
    let second =
        (first + 1 + draw.below(NEIGHBORHOODS.len() as u64 - 1) as usize) % NEIGHBORHOODS.len();
    let cities = [east, east, west];
    let names = [
        format!("{brand} {}", NEIGHBORHOODS[first]),
        format!("{brand} {}", NEIGHBORHOODS[second]),
        format!("{brand} {}", west.name),
    ];
    let mut phones: Vec<String> = Vec::new();
    let locations: Vec<Location> = cities
        .into_iter()
        .zip(names)
        .map(|(city, name)| {
            let mut address = address_in(&mut draw, city);
            address.line2 = draw
                .chance(500)
                .then(|| format!("Suite {}", draw.between(1, 4) * 100 + draw.between(0, 20)));
            let phone = unique_phone(&mut draw, city, &mut phones);
            Location {
                name,
                timezone: city.timezone.to_string(),
                address,
                phone: Some(phone),
                active: true,
            }
        })
        .collect();

    let organization = Organization {
        name: brand.to_string(),
        phone: locations[0].phone.clone(),
        address: Some(locations[0].address.clone()),
        active: true,
    };

    let mut rooms = Vec::new();
    for (location, exam_rooms) in [
        (0, 4 + draw.below(3)),
        (1, 3 + draw.below(2)),
        (2, 4 + draw.below(2)),
    ] {
        let mut add = |name: String, kind| {
            rooms.push(DemoRoom {
                location,
                name,
                kind,
            })
        };
        for n in 1..=exam_rooms {
            add(format!("Exam {n}"), RoomKind::Exam);
        }
        add("Procedure".into(), RoomKind::Procedure);
        add("Consult".into(), RoomKind::Consult);
        if location == 0 {
            // Echocardiography for the cardiologist based here.
            add("Ultrasound".into(), RoomKind::Ultrasound);
        }
    }

    let mut used_family: Vec<String> = Vec::new();
    let mut npis: Vec<String> = Vec::new();
    let mut practitioners = Vec::with_capacity(PLAN.len());
    let mut practitioner_roles = Vec::new();
    for (index, slot) in PLAN.iter().enumerate() {
        let gender = if draw.chance(520) {
            AdministrativeGender::Female
        } else {
            AdministrativeGender::Male
        };
        let (given, family) = unique_name(&mut draw, gender, &mut used_family);
        let mut email = String::new();
        push_slug(&mut email, &given);
        email.push('.');
        push_slug(&mut email, &family);
        email.push('@');
        email.push_str(&domain);
        let doctor = matches!(slot.credential, "MD" | "DO" | "PhD");
        let home = cities[slot.locations[0]];
        practitioners.push(Practitioner {
            npi: Some(unique_npi(&mut draw, &mut npis)),
            prefix: doctor.then(|| "Dr.".to_string()),
            given,
            family,
            suffix: Some(slot.credential.to_string()),
            gender: Some(gender),
            phone: Some(fictional_phone(&mut draw, home)),
            email: Some(email),
            active: true,
        });
        practitioner_roles.extend(slot.locations.iter().map(|&location| DemoPractitionerRole {
            practitioner: index,
            location,
            specialty: slot.specialty,
        }));
    }

    let staff = Role::ALL
        .into_iter()
        .map(|role| {
            let username = role.code().replace('_', "");
            // The clinician account belongs to the first practitioner, so a
            // demo can sign in and see "my schedule".
            let display_name = if role == Role::Clinician {
                let p = &practitioners[0];
                format!("{} {}", p.given, p.family)
            } else {
                let gender = if draw.chance(600) {
                    AdministrativeGender::Female
                } else {
                    AdministrativeGender::Male
                };
                let (given, family) = unique_name(&mut draw, gender, &mut used_family);
                format!("{given} {family}")
            };
            let password = format!(
                "{username}-{}-{}-{:02}",
                draw.pick(PASSWORD_WORDS),
                draw.pick(PASSWORD_WORDS),
                draw.below(100)
            );
            DemoStaff {
                username,
                display_name,
                role,
                password,
            }
        })
        .collect();

    DemoClinic {
        organization,
        locations,
        rooms,
        practitioners,
        practitioner_roles,
        staff,
    }
}

fn pick_city(draw: &mut Draw, keep: impl Fn(&City) -> bool) -> &'static City {
    let candidates: Vec<&'static City> = CITIES.iter().filter(|c| keep(c)).collect();
    candidates[draw.weighted_index(&candidates, |c| c.weight)]
}

fn unique_phone(draw: &mut Draw, city: &City, used: &mut Vec<String>) -> String {
    loop {
        let phone = fictional_phone(draw, city);
        if !used.contains(&phone) {
            used.push(phone.clone());
            return phone;
        }
    }
}

/// A name whose family name nobody else in the clinic has, so that "Dr.
/// Nguyen" is unambiguous on schedules and emails are unique.
fn unique_name(
    draw: &mut Draw,
    gender: AdministrativeGender,
    used: &mut Vec<String>,
) -> (String, String) {
    loop {
        let name = person_name(draw, gender, 40);
        if !used.contains(&name.family) {
            used.push(name.family.clone());
            return (name.given, name.family);
        }
    }
}

fn unique_npi(draw: &mut Draw, used: &mut Vec<String>) -> String {
    loop {
        let mut digits = vec![NPI_LEADING_DIGIT];
        digits.extend((0..8).map(|_| draw.below(10) as u32));
        digits.push(npi_check_digit(&digits));
        let npi: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
        if !used.contains(&npi) {
            used.push(npi.clone());
            return npi;
        }
    }
}
