//! The synthetic patient stream.

use crate::names::{CULTURES, Name, person_name, push_slug};
use crate::places::{CITIES, address_in, fictional_phone};
use crate::rng::{Draw, Purpose};
use carefront_domain::directory::AdministrativeGender;
use carefront_domain::patient::{
    ContactMethod, Patient, PatientAddress, PatientContact, Phone, PhoneKind,
};
use jiff::Span;
use jiff::civil::Date;
use std::fmt::Write;
use std::ops::Range;

/// The "today" that generated ages are measured from. Fixed rather than
/// read from the clock so that the same seed gives the same patients on any
/// day; demo scenarios are set around this date.
pub const REFERENCE_DATE: Date = jiff::civil::date(2026, 11, 1);

/// The oldest generated patient is this many whole years old on
/// [`REFERENCE_DATE`].
pub const MAX_AGE: i16 = 95;

/// Ages (inclusive) with their share per mille of a US primary-care panel:
/// many young children (well-child visits), a broad adult middle and a
/// thinning tail past 75.
const AGE_BANDS: [(i16, i16, u32); 12] = [
    (0, 1, 25),
    (2, 4, 35),
    (5, 11, 80),
    (12, 17, 75),
    (18, 24, 80),
    (25, 34, 125),
    (35, 44, 125),
    (45, 54, 120),
    (55, 64, 130),
    (65, 74, 115),
    (75, 84, 65),
    (85, MAX_AGE, 25),
];

const SEXES: &[(AdministrativeGender, u32)] = &[
    (AdministrativeGender::Female, 505),
    (AdministrativeGender::Male, 485),
    (AdministrativeGender::Other, 6),
    (AdministrativeGender::Unknown, 4),
];

/// Reserved for documentation by RFC 2606, so no mail can reach anyone.
const EMAIL_DOMAINS: &[(&str, u32)] = &[("example.com", 5), ("example.org", 3), ("example.net", 2)];

/// An age band as a range of days before [`REFERENCE_DATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BirthBand {
    first_day_back: i32,
    day_count: u32,
    weight: u32,
}

/// An endless, deterministic stream of synthetic patients.
///
/// Patient `n` is a pure function of `(seed, n)`: it is generated from its
/// own ChaCha8 stream, so any slice of the stream (for example patients
/// 1,000,000..1,000,100 for a benchmark) is produced without generating
/// what comes before it, and two runs with one seed agree everywhere.
/// MRNs are left empty because storage assigns them.
///
/// As an [`Iterator`] it yields patients 0, 1, 2, … (or from
/// [`PatientGenerator::starting_at`]); [`PatientGenerator::iter`] yields a
/// bounded range without moving that cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientGenerator {
    seed: u64,
    next: Option<u64>,
    bands: [BirthBand; AGE_BANDS.len()],
}

impl PatientGenerator {
    pub fn new(seed: u64) -> Self {
        let days_before = |years: i16| -> i32 {
            let date = REFERENCE_DATE
                .checked_sub(Span::new().years(years))
                .expect("within jiff's range");
            REFERENCE_DATE
                .since(date)
                .expect("dates in range")
                .get_days()
        };
        let bands = AGE_BANDS.map(|(youngest, oldest, weight)| {
            // Age `a` means born in (REF - (a + 1) years, REF - a years].
            let first_day_back = days_before(youngest);
            let last_day_back = days_before(oldest + 1) - 1;
            BirthBand {
                first_day_back,
                day_count: u32::try_from(last_day_back - first_day_back + 1)
                    .expect("bands are ordered"),
                weight,
            }
        });
        PatientGenerator {
            seed,
            next: Some(0),
            bands,
        }
    }

    /// The same generator with its iteration cursor at `index`.
    pub fn starting_at(mut self, index: u64) -> Self {
        self.next = Some(index);
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Patient number `index` of this seed's stream.
    pub fn patient(&self, index: u64) -> Patient {
        let mut draw = Draw::new(self.seed, Purpose::Patient, index);
        let sex = draw.weighted(SEXES);
        let band = self.bands[draw.weighted_index(&self.bands, |b| b.weight)];
        let days_back = band.first_day_back + draw.below(u64::from(band.day_count)) as i32;
        let birth_date = REFERENCE_DATE
            .checked_sub(Span::new().days(days_back))
            .expect("birth dates stay within jiff's range");
        // Whole years, close enough to steer names and email habits.
        let age = u32::try_from(days_back).unwrap_or(0) * 4 / 1461;

        let name = person_name(&mut draw, sex, age);
        let city = &CITIES[draw.weighted_index(CITIES, |c| c.weight)];
        let address = draw.chance(970).then(|| address_in(&mut draw, city));
        let phone = draw.chance(930).then(|| fictional_phone(&mut draw, city));
        let email_per_mille = match age {
            0..13 => 150,
            13..18 => 500,
            18..65 => 850,
            65..80 => 650,
            _ => 350,
        };
        let email = draw
            .chance(email_per_mille)
            .then(|| email(&mut draw, &name, birth_date));
        let language = match draw.weighted(CULTURES[name.culture].languages) {
            "" => None,
            tag => Some(tag.to_string()),
        };
        // Drawn after the fields above, so adding them left those unchanged.
        let mut phones: Vec<Phone> = phone
            .into_iter()
            .map(|number| Phone {
                number,
                kind: PhoneKind::Mobile,
                sms_consent: draw.chance(750),
            })
            .collect();
        if draw.chance(120) {
            phones.push(Phone {
                number: fictional_phone(&mut draw, city),
                kind: PhoneKind::Home,
                sms_consent: false,
            });
        }
        let interpreter_needed = language.as_deref().is_some_and(|l| l != "en") && draw.chance(450);
        let preferred_contact = match draw.below(10) {
            0..=3 if phones.iter().any(|p| p.sms_consent) => Some(ContactMethod::Sms),
            4..=5 if email.is_some() => Some(ContactMethod::Email),
            6..=8 if !phones.is_empty() => Some(ContactMethod::Phone),
            _ => None,
        };
        let alerts = if draw.chance(40) {
            vec![draw.pick(ALERTS).to_string()]
        } else {
            Vec::new()
        };
        let mut contacts = Vec::new();
        if draw.chance(600) {
            let relative_sex = draw_sex(&mut draw);
            let relative = person_name(&mut draw, relative_sex, age);
            let relationship = if age < 18 {
                draw.pick(&["MTH", "FTH", "GUARD"])
            } else {
                draw.pick(&["SPS", "CHILD", "SIS", "BRO", "FRND"])
            };
            contacts.push(PatientContact {
                name: format!(
                    "{} {}",
                    relative.given,
                    if relationship == "FRND" {
                        relative.family
                    } else {
                        name.family.clone()
                    }
                ),
                relationship: relationship.to_string(),
                phone: Some(fictional_phone(&mut draw, city)),
                emergency: true,
                guarantor: age < 18,
            });
        }
        Patient {
            mrn: String::new(),
            given: name.given,
            middle: name.middle,
            family: name.family,
            suffix: None,
            preferred_name: None,
            birth_date,
            sex,
            gender_identity: None,
            pronouns: None,
            // One home address, or none.
            addresses: address.map(PatientAddress::home).into_iter().collect(),
            phones,
            email,
            language,
            interpreter_needed,
            preferred_contact,
            contacts,
            alerts,
            identifiers: Vec::new(),
            active: true,
            replaced_by: None,
        }
    }

    /// Patients `range.start..range.end`, in order.
    pub fn iter(&self, range: Range<u64>) -> Patients<'_> {
        Patients {
            generator: self,
            range,
        }
    }
}

impl Iterator for PatientGenerator {
    type Item = Patient;

    fn next(&mut self) -> Option<Patient> {
        let index = self.next?;
        self.next = index.checked_add(1);
        Some(self.patient(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.next {
            Some(_) => (usize::MAX, None),
            None => (0, Some(0)),
        }
    }

    /// Skips without generating the skipped patients.
    fn nth(&mut self, n: usize) -> Option<Patient> {
        self.next = self.next.and_then(|i| i.checked_add(n as u64));
        self.next()
    }
}

/// A bounded range of a [`PatientGenerator`]'s stream.
#[derive(Debug, Clone)]
pub struct Patients<'a> {
    generator: &'a PatientGenerator,
    range: Range<u64>,
}

impl Iterator for Patients<'_> {
    type Item = Patient;

    fn next(&mut self) -> Option<Patient> {
        self.range.next().map(|i| self.generator.patient(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<Patient> {
        self.range.nth(n).map(|i| self.generator.patient(i))
    }
}

impl DoubleEndedIterator for Patients<'_> {
    fn next_back(&mut self) -> Option<Patient> {
        self.range.next_back().map(|i| self.generator.patient(i))
    }
}

impl std::iter::FusedIterator for Patients<'_> {}

/// An address the way people pick them: name parts in a few common
/// layouts, sometimes with a number (often the birth year) appended.
fn email(draw: &mut Draw, name: &Name, birth_date: Date) -> String {
    let mut local = String::with_capacity(40);
    match draw.below(6) {
        0 | 1 => {
            push_slug(&mut local, &name.given);
            local.push('.');
            push_slug(&mut local, &name.family);
        }
        2 => {
            push_slug(&mut local, &name.given);
            push_slug(&mut local, &name.family);
        }
        3 => {
            let mut given = String::new();
            push_slug(&mut given, &name.given);
            local.push_str(&given[..1]);
            push_slug(&mut local, &name.family);
        }
        4 => {
            push_slug(&mut local, &name.family);
            local.push('.');
            push_slug(&mut local, &name.given);
        }
        _ => {
            push_slug(&mut local, &name.given);
            local.push('_');
            push_slug(&mut local, &name.family);
        }
    }
    match draw.below(10) {
        0..3 => {
            let _ = write!(local, "{:02}", birth_date.year() % 100);
        }
        3..5 => {
            let _ = write!(local, "{}", draw.between(1, 999));
        }
        _ => {}
    }
    local.push('@');
    local.push_str(draw.weighted(EMAIL_DOMAINS));
    local
}

/// Alerts a front desk records, so that the demo shows them.
const ALERTS: &[&str] = &[
    "Needs wheelchair assistance",
    "Hard of hearing: face the patient when speaking",
    "Latex allergy",
    "Service animal",
    "Prefers a female provider",
    "Low vision: offer large-print forms",
];

fn draw_sex(draw: &mut Draw) -> AdministrativeGender {
    if draw.chance(500) {
        AdministrativeGender::Female
    } else {
        AdministrativeGender::Male
    }
}
