//! Labelled evaluation sets for patient matching: synthetic patients, some
//! registered twice with the slips real registrations make, and relatives
//! who must not be taken for one another.
//!
//! [`evaluation_set`] builds, for a seed and a size `n`:
//!
//! - `n` base patients, patients `0..n` of [`PatientGenerator`]`::new(seed)`;
//! - for about 20% of them a duplicate record (and for a tenth of those a
//!   second one), each with one to three corruptions (see [`Corruption`]):
//!   typos, nicknames, dropped accents, a shortened compound family name, a
//!   new family name after marriage (often with a new address and phone), day
//!   and month swapped or a wrong digit in the birth date, a new phone or
//!   address, a dropped phone, email or middle name, given and family name
//!   swapped, different capitals and spacing;
//! - hard negatives, each a new person: twins (same birth date, family name,
//!   address and phone, another given name), a son or father with the same
//!   name at the same address (Jr/Sr), spouses and siblings. Pairs with the
//!   same family name and birth year, and shared phones, occur naturally.
//!
//! Every record carries the identity of the person it describes, so every
//! pair is labelled. [`evaluate`] measures a matcher on it.
//!
//! # Measured quality
//!
//! `cargo run --release -p carefront-synth --example match_quality [-- SEED
//! N]` prints the current figures (`cargo run --release -p carefront-bench
//! -- match-quality --size N` the headline ones);
//! `crates/synth/tests/match_quality.rs` asserts recall ≥ 0.95 and
//! precision ≥ 0.98 on 5,000 base patients of a seed that the weights were
//! not fitted on. Names are weighed by their frequency among the set's
//! records, as `Db::match_candidates` weighs them by their frequency among
//! the organization's patients ([`EvaluationSet::prepared`]). With the
//! default thresholds (lower 13, upper 22):
//!
//! | seed | base patients | true pairs | compared | precision | recall | F1 | different people graded certain |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 1 (tuning) | 5,000 | 1,181 | 5,977 | 0.9966 | 0.9924 | 0.9945 | 0 |
//! | 1 (tuning) | 20,000 | 4,701 | 78,880 | 0.9949 | 0.9928 | 0.9938 | 0 |
//! | 1 (tuning) | 100,000 | 24,016 | 1,860,984 | 0.9876 | 0.9924 | 0.9900 | 4 |
//! | 20261101 (held out) | 5,000 | 1,302 | 6,301 | 0.9992 | 0.9885 | 0.9938 | 0 |
//! | 20261101 (held out) | 10,000 | 2,439 | 21,445 | 0.9983 | 0.9885 | 0.9934 | 0 |
//! | 20261101 (held out) | 100,000 | 24,004 | 1,865,368 | 0.9879 | 0.9910 | 0.9894 | 3 |
//! | 424242 (unseen) | 20,000 | 4,748 | 78,519 | 0.9977 | 0.9945 | 0.9961 | 0 |
//! | 424242 (unseen) | 100,000 | 24,037 | 1,863,439 | 0.9884 | 0.9911 | 0.9897 | 3 |
//! | 99 (unseen) | 5,000 | 1,252 | 5,967 | 1.0000 | 0.9960 | 0.9980 | 0 |
//! | 99 (unseen) | 100,000 | 24,064 | 1,864,295 | 0.9877 | 0.9911 | 0.9894 | 2 |
//! | 31337 (unseen) | 10,000 | 2,392 | 20,674 | 0.9958 | 0.9933 | 0.9946 | 1 |
//! | 31337 (unseen) | 100,000 | 23,972 | 1,858,439 | 0.9870 | 0.9913 | 0.9891 | 9 |
//!
//! Before, with the table's average name weights and the sex counted
//! apart from the given name, precision at 100,000 base patients was below
//! the goal on every seed (0.9790, 0.9797, 0.9792, 0.9802 and 0.9789 for
//! seeds 20261101, 1, 424242, 99 and 31337; recall 0.9911–0.9924) with 8,
//! 10, 9, 5 and 19 pairs of different people graded certain; the other
//! rows were within 0.0005 of now except 1 at 20,000 (precision 0.9932)
//! and 424242 at 20,000 (0.9954, one pair certain). Counting a shared
//! given name and the sex it implies once (`matching::weights`) and the
//! name frequencies (`matching::frequency`) each remove about a third of
//! the false matches at 100,000 (511 to 340 and to 337 on the held-out
//! seed), together 43% (to 292), at the cost of 3 of 24,004 true pairs.
//! Evaluating 100,000 base patients (126,000 records, 1.9 million
//! comparisons, the name counts included) takes about 9 s on one core.
//!
//! Most misses combine two slips in one field (a typo in a nickname,
//! swapped day and month plus a wrong digit). False matches grow with the
//! square of the panel: at 100,000 patients most are strangers with the
//! same given name and birth date under another family name (read as a
//! new name after marriage), a given name one letter from theirs (Terry
//! and Jerry) with the same birth date, or the same given and family name
//! with a birth date one digit apart; the small synthetic name lists make
//! all of them far commoner than in life. The strangers graded certain
//! share given, family and often middle name and a near birth date, or an
//! email address that the generator gave both. Relatives graded certain,
//! as before: twins of seed 31337 whose names the generator drew as a name
//! and its nickname (John and Jack, Joseph and Joe) or a letter apart
//! (Lloyd and Floyd) with everything else shared, and one junior of seed
//! 424242 at 100,000 born thirty years to the day after his father (1960
//! and 1990: one digit apart, read as a slip); no spouse or sibling was.

use crate::names::fold_accents;
use crate::patients::{PatientGenerator, REFERENCE_DATE};
use carefront_domain::directory::AdministrativeGender;
use carefront_domain::matching::{
    MatchField, MatchGrade, MatchRecord, NameCounts, OUTCOMES, Outcome, PreparedRecord, Thresholds,
    compare_with,
};
use carefront_domain::patient::Patient;
use carefront_domain::patient_search::index_keys;
use jiff::civil::Date;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};

/// What was done to a base record to make a duplicate of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    /// One letter of the given name inserted, deleted, replaced by a
    /// neighbouring key, or two letters transposed.
    GivenTypo,
    FamilyTypo,
    /// A common short form of the given name (Robert → Bob, José → Pepe).
    Nickname,
    /// Accented letters typed plain (García → Garcia).
    AccentsDropped,
    /// One part of a compound family name only (García-López → García).
    CompoundShortened,
    /// A new family name after marriage, sometimes hyphenated with the old
    /// one; usually with [`Corruption::NewAddress`] or
    /// [`Corruption::NewPhone`] too.
    MarriedName,
    SwappedDayMonth,
    /// One digit of the birth date wrong, or two adjacent digits swapped.
    DateTypo,
    NewPhone,
    PhoneDropped,
    EmailDropped,
    NewAddress,
    /// Middle name dropped, cut to its initial, or added.
    MiddleChanged,
    /// Given name in the family name field and the other way round.
    NamesSwapped,
    /// Upper case, or spaces, hyphens and apostrophes left out.
    CaseAndSpacing,
}

/// A hard negative: a different person related to a base patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// Same birth date, family name, address and phone; another given name
    /// (and sex half of the time).
    Twin,
    /// Father or son with the same given, family and often middle name, at
    /// the same address with the same phone; born 22–38 years apart.
    JuniorSenior,
    /// Usually the same family name, same address, often the same phone.
    Spouse,
    /// Same family name, born a few years apart, often at the same address.
    Sibling,
}

/// How a record came to be in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Base,
    /// A second registration of `records[of]`.
    Duplicate {
        of: usize,
        corruptions: Vec<Corruption>,
    },
    /// A different person, related to `records[of]`.
    Relative {
        of: usize,
        relation: Relation,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledRecord {
    pub patient: Patient,
    /// Records with the same `person` describe the same person.
    pub person: u32,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationSet {
    pub seed: u64,
    pub base: usize,
    pub records: Vec<LabeledRecord>,
}

impl EvaluationSet {
    /// Every pair of records of the same person, `(i, j)` with `i < j`.
    pub fn true_pairs(&self) -> Vec<(usize, usize)> {
        let mut by_person: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            by_person.entry(r.person).or_default().push(i);
        }
        let mut pairs = Vec::new();
        for records in by_person.values() {
            for (k, &i) in records.iter().enumerate() {
                for &j in &records[k + 1..] {
                    pairs.push((i.min(j), i.max(j)));
                }
            }
        }
        pairs.sort_unstable();
        pairs
    }

    pub fn match_records(&self) -> Vec<MatchRecord> {
        self.records
            .iter()
            .map(|r| MatchRecord::from(&r.patient))
            .collect()
    }

    /// How many records carry each name, counted as storage counts them
    /// for `Db::match_candidates`: the `n:` keys of
    /// [`index_keys`], one per record, over every record of the set (as if
    /// all were registered in one organization).
    pub fn name_counts(&self) -> NameCounts {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for r in &self.records {
            for key in index_keys(&r.patient) {
                if key.starts_with("n:") {
                    *counts.entry(key).or_default() += 1;
                }
            }
        }
        NameCounts {
            patients: self.records.len() as u64,
            counts,
        }
    }

    /// Every record prepared for matching, with the set's
    /// [`name_counts`](Self::name_counts) as the organization's, as
    /// `Db::match_candidates` prepares them.
    pub fn prepared(&self) -> Vec<PreparedRecord> {
        let counts = self.name_counts();
        self.match_records()
            .iter()
            .map(|r| {
                let mut p = PreparedRecord::new(r);
                p.set_name_counts(&counts);
                p
            })
            .collect()
    }
}

/// Share of base patients, per mille, that get a duplicate.
const DUPLICATE_PER_MILLE: u32 = 200;
/// Of those, how many get a second one.
const SECOND_DUPLICATE_PER_MILLE: u32 = 100;
const TWIN_PER_MILLE: u32 = 8;
const JUNIOR_PER_MILLE: u32 = 5;
const SPOUSE_PER_MILLE: u32 = 20;
const SIBLING_PER_MILLE: u32 = 15;

/// Patients past this index of the generator's stream lend names, phones
/// and addresses to corruptions and relatives (the stream is endless and
/// any index is generated directly).
const DONOR_OFFSET: u64 = 1 << 40;

/// The labelled set for `seed` with `n` base patients. The same arguments
/// always give the same set.
pub fn evaluation_set(seed: u64, n: usize) -> EvaluationSet {
    let generator = PatientGenerator::new(seed);
    let mut records: Vec<LabeledRecord> = generator
        .iter(0..n as u64)
        .enumerate()
        .map(|(i, patient)| LabeledRecord {
            patient,
            person: u32::try_from(i).expect("fewer than 2^32 patients"),
            origin: Origin::Base,
        })
        .collect();
    let mut next_person = u32::try_from(n).expect("fewer than 2^32 patients");
    for i in 0..n {
        let mut rng = Rng::new(seed, i as u64);
        let mut donors = Donors {
            generator: &generator,
            next: DONOR_OFFSET + (i as u64) * 64,
        };
        let base = records[i].patient.clone();
        if rng.chance(DUPLICATE_PER_MILLE) {
            let copies = if rng.chance(SECOND_DUPLICATE_PER_MILLE) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let (patient, corruptions) = duplicate(&base, &mut rng, &mut donors);
                records.push(LabeledRecord {
                    patient,
                    person: records[i].person,
                    origin: Origin::Duplicate { of: i, corruptions },
                });
            }
        }
        for (relation, per_mille) in [
            (Relation::Twin, TWIN_PER_MILLE),
            (Relation::JuniorSenior, JUNIOR_PER_MILLE),
            (Relation::Spouse, SPOUSE_PER_MILLE),
            (Relation::Sibling, SIBLING_PER_MILLE),
        ] {
            if rng.chance(per_mille)
                && let Some(patient) = relative(&base, relation, &mut rng, &mut donors)
            {
                records.push(LabeledRecord {
                    patient,
                    person: next_person,
                    origin: Origin::Relative { of: i, relation },
                });
                next_person += 1;
            }
        }
    }
    EvaluationSet {
        seed,
        base: n,
        records,
    }
}

/// The randomness of this module: a ChaCha8 stream per base patient, keyed
/// apart from the patient and clinic streams of the same seed.
struct Rng(ChaCha8Rng);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(b"dupes\0\0\0");
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stream);
        Rng(rng)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

struct Donors<'a> {
    generator: &'a PatientGenerator,
    next: u64,
}

impl Donors<'_> {
    fn any(&mut self) -> Patient {
        self.next += 1;
        self.generator.patient(self.next)
    }

    fn of_sex(&mut self, sex: AdministrativeGender) -> Patient {
        for _ in 0..20 {
            let p = self.any();
            if p.sex == sex {
                return p;
            }
        }
        self.any()
    }
}

/// Corruptions with their relative frequency among duplicate registrations.
const CORRUPTIONS: &[(Corruption, u64)] = &[
    (Corruption::GivenTypo, 14),
    (Corruption::FamilyTypo, 12),
    (Corruption::Nickname, 18),
    (Corruption::AccentsDropped, 6),
    (Corruption::CompoundShortened, 4),
    (Corruption::MarriedName, 12),
    (Corruption::SwappedDayMonth, 6),
    (Corruption::DateTypo, 6),
    (Corruption::NewPhone, 10),
    (Corruption::PhoneDropped, 4),
    (Corruption::EmailDropped, 8),
    (Corruption::NewAddress, 10),
    (Corruption::MiddleChanged, 8),
    (Corruption::NamesSwapped, 2),
    (Corruption::CaseAndSpacing, 6),
];

fn duplicate(base: &Patient, rng: &mut Rng, donors: &mut Donors) -> (Patient, Vec<Corruption>) {
    let mut p = base.clone();
    let wanted = match rng.below(10) {
        0..6 => 1,
        6..9 => 2,
        _ => 3,
    };
    let mut done: Vec<Corruption> = Vec::new();
    let total: u64 = CORRUPTIONS.iter().map(|(_, w)| w).sum();
    let mut attempts = 0;
    while done.len() < wanted && attempts < 50 {
        attempts += 1;
        let mut x = rng.below(total);
        let mut chosen = CORRUPTIONS[0].0;
        for &(c, w) in CORRUPTIONS {
            if x < w {
                chosen = c;
                break;
            }
            x -= w;
        }
        if done.contains(&chosen) {
            continue;
        }
        if apply(chosen, &mut p, rng, donors, &mut done) {
            done.push(chosen);
        }
    }
    done.sort_unstable();
    done.dedup();
    (p, done)
}

/// Applies one corruption; false when it does not apply to this record.
/// Corruptions implied by this one are added to `done`.
fn apply(
    c: Corruption,
    p: &mut Patient,
    rng: &mut Rng,
    donors: &mut Donors,
    done: &mut Vec<Corruption>,
) -> bool {
    match c {
        Corruption::GivenTypo => typo(&mut p.given, rng),
        Corruption::FamilyTypo => typo(&mut p.family, rng),
        Corruption::Nickname => {
            let key = fold_accents(&p.given).to_lowercase();
            match SHORT_FORMS.iter().find(|(formal, _)| *formal == key) {
                Some((_, short)) => {
                    let options: Vec<&str> = short.split(' ').collect();
                    p.given = rng.pick(&options).to_string();
                    true
                }
                None => false,
            }
        }
        Corruption::AccentsDropped => {
            let given = fold_accents(&p.given);
            let family = fold_accents(&p.family);
            let changed = given != p.given || family != p.family;
            p.given = given;
            p.family = family;
            p.middle = p.middle.as_deref().map(fold_accents);
            changed
        }
        Corruption::CompoundShortened => {
            let parts: Vec<&str> = p.family.split(['-', ' ']).collect();
            let significant: Vec<&str> = parts.iter().copied().filter(|s| s.len() > 3).collect();
            if parts.len() < 2 || significant.is_empty() {
                return false;
            }
            p.family = rng.pick(&significant).to_string();
            true
        }
        Corruption::MarriedName => {
            if p.sex != AdministrativeGender::Female || age(p.birth_date) < 18 {
                return false;
            }
            let spouse_family = donors.any().family;
            if fold_accents(&spouse_family) == fold_accents(&p.family) {
                return false;
            }
            p.family = if rng.chance(200) {
                format!("{}-{}", p.family, spouse_family)
            } else {
                spouse_family
            };
            if rng.chance(500) && !p.addresses.is_empty() {
                p.addresses = donors.any().addresses;
                done.push(Corruption::NewAddress);
            }
            if rng.chance(400) && !p.phones.is_empty() {
                p.phones = donors.any().phones;
                done.push(Corruption::NewPhone);
            }
            if rng.chance(400) && p.email.take().is_some() {
                done.push(Corruption::EmailDropped);
            }
            true
        }
        Corruption::SwappedDayMonth => {
            let d = p.birth_date;
            if d.day() > 12 || d.day() == d.month() {
                return false;
            }
            match Date::new(d.year(), d.day(), d.month()) {
                Ok(swapped) if swapped <= REFERENCE_DATE => {
                    p.birth_date = swapped;
                    true
                }
                _ => false,
            }
        }
        Corruption::DateTypo => date_typo(p, rng),
        Corruption::NewPhone => {
            let Some(new) = donors.any().phones.into_iter().next() else {
                return false;
            };
            match p.phones.first_mut() {
                Some(old) if old.number != new.number => {
                    old.number = new.number;
                    true
                }
                _ => false,
            }
        }
        Corruption::PhoneDropped => {
            let had = !p.phones.is_empty();
            p.phones.clear();
            had
        }
        Corruption::EmailDropped => p.email.take().is_some(),
        Corruption::NewAddress => {
            let new = donors.any().addresses;
            if p.addresses.is_empty() || new.is_empty() {
                return false;
            }
            p.addresses = new;
            true
        }
        Corruption::MiddleChanged => match p.middle.take() {
            Some(m) if m.chars().count() > 1 && rng.chance(500) => {
                p.middle = m.chars().next().map(String::from);
                true
            }
            Some(_) => true,
            None => {
                p.middle = donors.of_sex(p.sex).middle;
                p.middle.is_some()
            }
        },
        Corruption::NamesSwapped => {
            std::mem::swap(&mut p.given, &mut p.family);
            true
        }
        Corruption::CaseAndSpacing => {
            if rng.chance(500) {
                p.family = p.family.to_uppercase();
                p.given = p.given.to_uppercase();
                true
            } else {
                let squeezed: String = p
                    .family
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '\''))
                    .collect();
                let changed = squeezed != p.family;
                p.family = squeezed;
                changed
            }
        }
    }
}

fn age(birth: Date) -> i16 {
    REFERENCE_DATE.year() - birth.year()
}

/// Keys next to each other on a US keyboard, for realistic substitutions.
const KEYBOARD: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

fn neighbour(c: char, rng: &mut Rng) -> char {
    let lower = c.to_ascii_lowercase();
    for row in KEYBOARD {
        if let Some(i) = row.find(lower) {
            let row = row.as_bytes();
            let j = if i == 0 {
                1
            } else if i + 1 == row.len() || rng.chance(500) {
                i - 1
            } else {
                i + 1
            };
            let n = char::from(row[j]);
            return if c.is_uppercase() {
                n.to_ascii_uppercase()
            } else {
                n
            };
        }
    }
    char::from(b'a' + rng.below(26) as u8)
}

/// One typing slip, rarely in the first letter (people check that one).
fn typo(name: &mut String, rng: &mut Rng) -> bool {
    let mut chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.len() < 3 {
        return false;
    }
    let from = if rng.chance(100) { 0 } else { 1 };
    let i = letters[from + rng.below((letters.len() - from) as u64) as usize];
    match rng.below(4) {
        0 => {
            let c = neighbour(chars[i], rng).to_ascii_lowercase();
            chars.insert(i + 1, c);
        }
        1 if letters.len() > 3 => {
            chars.remove(i);
        }
        2 if i + 1 < chars.len() && chars[i + 1].is_alphabetic() && chars[i] != chars[i + 1] => {
            chars.swap(i, i + 1);
        }
        _ => {
            chars[i] = neighbour(chars[i], rng);
        }
    }
    let typed: String = chars.into_iter().collect();
    let changed = typed != *name;
    *name = typed;
    changed
}

fn date_typo(p: &mut Patient, rng: &mut Rng) -> bool {
    let d = p.birth_date;
    let digits: Vec<u8> = format!("{:04}{:02}{:02}", d.year(), d.month(), d.day()).into_bytes();
    for _ in 0..20 {
        let mut t = digits.clone();
        // Year digits are mistyped less often than day and month.
        let i = if rng.chance(300) {
            2 + rng.below(2) as usize
        } else {
            4 + rng.below(4) as usize
        };
        if rng.chance(300) && i + 1 < 8 {
            t.swap(i, i + 1);
        } else {
            t[i] = b'0' + rng.below(10) as u8;
        }
        if t == digits {
            continue;
        }
        let s = String::from_utf8(t).expect("digits");
        let parse = |r: std::ops::Range<usize>| s[r].parse::<i16>().ok();
        let (Some(y), Some(m), Some(day)) = (parse(0..4), parse(4..6), parse(6..8)) else {
            continue;
        };
        let (Ok(m), Ok(day)) = (i8::try_from(m), i8::try_from(day)) else {
            continue;
        };
        if let Ok(date) = Date::new(y, m, day)
            && date <= REFERENCE_DATE
        {
            p.birth_date = date;
            return true;
        }
    }
    false
}

/// Shifts a date by whole years and some days, staying before the
/// reference date.
fn shifted(d: Date, years: i64, days: i64) -> Option<Date> {
    let span = jiff::Span::new().years(years).days(days);
    d.checked_add(span).ok().filter(|x| *x <= REFERENCE_DATE)
}

fn relative(
    base: &Patient,
    relation: Relation,
    rng: &mut Rng,
    donors: &mut Donors,
) -> Option<Patient> {
    let mut p = base.clone();
    let other_given = |p: &mut Patient, donor: &Patient| {
        if fold_accents(&donor.given).eq_ignore_ascii_case(&fold_accents(&base.given)) {
            return false;
        }
        p.given = donor.given.clone();
        p.middle = donor.middle.clone();
        p.email = donor.email.clone();
        true
    };
    match relation {
        Relation::Twin => {
            let sex = if rng.chance(500) {
                base.sex
            } else if base.sex == AdministrativeGender::Male {
                AdministrativeGender::Female
            } else {
                AdministrativeGender::Male
            };
            let donor = donors.of_sex(sex);
            p.sex = donor.sex;
            if !other_given(&mut p, &donor) {
                return None;
            }
            if age(base.birth_date) < 16 {
                p.email = None;
            }
        }
        Relation::JuniorSenior => {
            if base.sex != AdministrativeGender::Male {
                return None;
            }
            let gap = rng.between(22, 38);
            let days = rng.between(-180, 180);
            p.birth_date = if age(base.birth_date) >= 45 {
                shifted(base.birth_date, gap, days)?
            } else {
                shifted(base.birth_date, -gap, days)?
            };
            if rng.chance(300) {
                p.middle = donors.of_sex(AdministrativeGender::Male).middle;
            }
            p.email = donors.any().email;
            if rng.chance(300) {
                p.phones = donors.any().phones;
            }
        }
        Relation::Spouse => {
            if age(base.birth_date) < 20 {
                return None;
            }
            let sex = match base.sex {
                AdministrativeGender::Male => AdministrativeGender::Female,
                _ => AdministrativeGender::Male,
            };
            let donor = donors.of_sex(sex);
            p.sex = donor.sex;
            if !other_given(&mut p, &donor) {
                return None;
            }
            p.birth_date = shifted(base.birth_date, rng.between(-6, 6), rng.between(-180, 180))?;
            if rng.chance(250) {
                p.family = donor.family.clone();
            }
            if rng.chance(400) {
                p.phones = donor.phones.clone();
            }
        }
        Relation::Sibling => {
            let donor = donors.any();
            p.sex = donor.sex;
            if !other_given(&mut p, &donor) {
                return None;
            }
            let mut years = rng.between(-8, 8);
            if years == 0 {
                years = 1;
            }
            p.birth_date = shifted(base.birth_date, years, rng.between(-180, 180))?;
            if rng.chance(400) {
                p.addresses = donor.addresses.clone();
                p.phones = donor.phones.clone();
            } else if rng.chance(500) {
                p.phones = donor.phones.clone();
            }
        }
    }
    Some(p)
}

/// Short forms people give at the front desk, for the given names of the
/// synthetic lists: `(formal name, accents folded and lower-cased; short
/// forms, as typed)`. Kept apart from the matcher's own table on purpose,
/// so that the evaluation also counts the nicknames the matcher does not
/// know.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("james", "Jim Jimmy Jamie"),
    ("robert", "Bob Bobby Rob Robbie"),
    ("john", "Johnny Jack"),
    ("michael", "Mike Mikey Mick"),
    ("david", "Dave Davey"),
    ("william", "Bill Billy Will Willie Liam"),
    ("richard", "Rick Rich Dick Ricky Richie"),
    ("joseph", "Joe Joey"),
    ("thomas", "Tom Tommy"),
    ("christopher", "Chris Kit"),
    ("charles", "Charlie Chuck Chas"),
    ("daniel", "Dan Danny"),
    ("matthew", "Matt"),
    ("anthony", "Tony"),
    ("donald", "Don Donnie"),
    ("steven", "Steve"),
    ("stephen", "Steve"),
    ("andrew", "Andy Drew"),
    ("joshua", "Josh"),
    ("kenneth", "Ken Kenny"),
    ("timothy", "Tim Timmy"),
    ("ronald", "Ron Ronnie"),
    ("edward", "Ed Eddie Ted Ned"),
    ("jeffrey", "Jeff"),
    ("jacob", "Jake"),
    ("nicholas", "Nick Nicky"),
    ("jonathan", "Jon Jonny"),
    ("samuel", "Sam Sammy"),
    ("gregory", "Greg"),
    ("alexander", "Alex Xander Sasha"),
    ("benjamin", "Ben Benny Benji"),
    ("patrick", "Pat Paddy"),
    ("raymond", "Ray"),
    ("douglas", "Doug"),
    ("nathan", "Nate"),
    ("peter", "Pete"),
    ("zachary", "Zach Zack"),
    ("walter", "Walt Wally"),
    ("gerald", "Jerry Gerry"),
    ("harold", "Harry Hal"),
    ("lawrence", "Larry"),
    ("theodore", "Ted Teddy Theo"),
    ("leonard", "Len Lenny Leo"),
    ("phillip", "Phil"),
    ("francis", "Frank Frankie"),
    ("victor", "Vic"),
    ("vincent", "Vince Vinnie"),
    ("eugene", "Gene"),
    ("herbert", "Herb Bert"),
    ("albert", "Al Bert"),
    ("stanley", "Stan"),
    ("russell", "Russ Rusty"),
    ("frederick", "Fred Freddy"),
    ("elizabeth", "Liz Beth Betty Lizzie Eliza Betsy"),
    ("margaret", "Peggy Maggie Meg Margie"),
    ("patricia", "Pat Patty Trish Tricia"),
    ("jennifer", "Jen Jenny"),
    ("susan", "Sue Susie Suzy"),
    ("deborah", "Deb Debbie"),
    ("debra", "Debbie"),
    ("rebecca", "Becky Becca"),
    ("katherine", "Kate Kathy Katie"),
    ("catherine", "Cathy Kate Cat"),
    ("kathleen", "Kathy Kate"),
    ("kathryn", "Kathy Katie"),
    ("christine", "Chris Tina Chrissy"),
    ("christina", "Tina Chrissy"),
    ("kimberly", "Kim Kimmy"),
    ("pamela", "Pam"),
    ("cynthia", "Cindy"),
    ("judith", "Judy"),
    ("victoria", "Vicky Tori"),
    ("dorothy", "Dot Dottie"),
    ("barbara", "Barb Barbie"),
    ("samantha", "Sam Sammie"),
    ("jacqueline", "Jackie"),
    ("abigail", "Abby"),
    ("stephanie", "Steph"),
    ("theresa", "Terry Tess"),
    ("teresa", "Terry Tere"),
    ("frances", "Fran Frannie"),
    ("virginia", "Ginny Ginger"),
    ("amanda", "Mandy"),
    ("melissa", "Missy Mel"),
    ("angela", "Angie"),
    ("jessica", "Jess Jessie"),
    ("madison", "Maddie"),
    ("josephine", "Jo Josie"),
    ("eleanor", "Ellie Nell"),
    ("penelope", "Penny"),
    ("beverly", "Bev"),
    ("marjorie", "Margie Marge"),
    ("mildred", "Millie"),
    ("jose", "Pepe Joe Chepe"),
    ("guadalupe", "Lupe Lupita"),
    ("jesus", "Chuy Chucho"),
    ("francisco", "Paco Pancho Frank"),
    ("ignacio", "Nacho"),
    ("guillermo", "Memo Willy"),
    ("eduardo", "Lalo Eddie"),
    ("alberto", "Beto"),
    ("roberto", "Beto Bob"),
    ("antonio", "Toño Tony"),
    ("enrique", "Quique Henry"),
    ("rafael", "Rafa"),
    ("dolores", "Lola Lolita"),
    ("alejandro", "Alex Ale"),
    ("alejandra", "Ale Alex"),
    ("manuel", "Manny Manolo"),
    ("gabriela", "Gaby"),
    ("daniela", "Dani"),
    ("fernando", "Nando Fer"),
    ("josefina", "Pepa Fina"),
    ("salvador", "Chava"),
    ("santiago", "Santi"),
    ("consuelo", "Chelo"),
    ("graciela", "Chela"),
    ("ricardo", "Ricky"),
    ("gustavo", "Tavo Gus"),
    ("dmitri", "Dima"),
    ("ekaterina", "Katya"),
    ("vladimir", "Vova Vlad"),
    ("mikhail", "Misha"),
    ("tatiana", "Tanya"),
    ("svetlana", "Sveta"),
    ("anastasia", "Nastya Stacy"),
    ("natalia", "Natasha"),
    ("katarzyna", "Kasia"),
    ("malgorzata", "Gosia"),
    ("wojciech", "Wojtek"),
    ("giuseppe", "Joe Beppe"),
    ("nikolaos", "Nikos Nick"),
    ("konstantinos", "Kostas Gus"),
];

/// How well a matcher finds the duplicates of an [`EvaluationSet`].
///
/// Definitions: a *candidate pair* is a pair of records sharing at least one
/// [`blocking key`](carefront_domain::matching::blocking_keys); every
/// candidate pair is compared once. A *predicted match* is a candidate pair
/// whose total is at least [`Thresholds::lower`] (it would be shown to the
/// front desk). A *true pair* is any pair of records of the same person,
/// blocked or not. Then `precision = TP / (TP + FP)` over predicted
/// matches and `recall = TP / true pairs` (a true pair that blocking never
/// proposed counts as missed).
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    pub records: usize,
    pub true_pairs: usize,
    /// Distinct pairs sharing a blocking key: the comparisons made.
    pub pairs_compared: usize,
    /// True pairs that share a blocking key.
    pub true_pairs_blocked: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// True pairs graded [`MatchGrade::Certain`].
    pub certain_true: usize,
    /// Pairs of different people graded [`MatchGrade::Certain`].
    pub certain_false: usize,
    /// The highest total of a compared pair of different people (how far
    /// below [`Thresholds::upper`] the non-matches stay).
    pub highest_false: f64,
    /// Per corruption: (base–duplicate pairs found, such pairs).
    pub by_corruption: BTreeMap<Corruption, (usize, usize)>,
    /// Per relation, the relative against the base patient: (pairs, shown
    /// to the front desk, graded certain).
    pub by_relation: BTreeMap<Relation, (usize, usize, usize)>,
    /// Up to 20 missed true pairs and the 20 highest-scoring false matches,
    /// with totals, for looking into.
    pub missed: Vec<(usize, usize, f64)>,
    pub false_matches: Vec<(usize, usize, f64)>,
}

/// [`evaluate_set`] on [`evaluation_set`]`(seed, n)`.
pub fn evaluate(seed: u64, n: usize, thresholds: Thresholds) -> Quality {
    evaluate_set(&evaluation_set(seed, n), &thresholds)
}

/// Every distinct pair of `records` sharing a blocking key, `(i, j)` with
/// `i < j`, in order.
pub fn candidate_pairs(prepared: &[PreparedRecord]) -> Vec<(usize, usize)> {
    let mut index: HashMap<String, Vec<u32>> = HashMap::new();
    for (i, r) in prepared.iter().enumerate() {
        for key in r.blocking_keys() {
            index
                .entry(key)
                .or_default()
                .push(u32::try_from(i).expect("fewer than 2^32 records"));
        }
    }
    let mut pairs: Vec<u64> = Vec::new();
    for ids in index.values() {
        for (k, &i) in ids.iter().enumerate() {
            for &j in &ids[k + 1..] {
                if i != j {
                    let (a, b) = (i.min(j), i.max(j));
                    pairs.push((u64::from(a) << 32) | u64::from(b));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|p| ((p >> 32) as usize, (p & 0xffff_ffff) as usize))
        .collect()
}

/// Measures the matcher on `set` as `Db::match_candidates` scores: with
/// the set's name counts (see [`EvaluationSet::prepared`]).
pub fn evaluate_set(set: &EvaluationSet, thresholds: &Thresholds) -> Quality {
    evaluate_prepared(set, &set.prepared(), thresholds)
}

/// Measures the matcher on `set`, its records prepared by the caller (one
/// per record, in order): for instance without name counts, to see what
/// the value-specific name weights change.
pub fn evaluate_prepared(
    set: &EvaluationSet,
    prepared: &[PreparedRecord],
    thresholds: &Thresholds,
) -> Quality {
    assert_eq!(prepared.len(), set.records.len(), "one per record");
    let candidates = candidate_pairs(prepared);
    let true_pairs = set.true_pairs();
    let same = |i: usize, j: usize| set.records[i].person == set.records[j].person;

    let mut scored: HashMap<(usize, usize), f64> = HashMap::with_capacity(candidates.len());
    let (mut tp, mut fp, mut certain_true, mut certain_false) = (0, 0, 0, 0);
    let mut highest_false = f64::NEG_INFINITY;
    let mut false_matches = Vec::new();
    for &(i, j) in &candidates {
        let s = compare_with(&prepared[i], &prepared[j], thresholds);
        scored.insert((i, j), s.total);
        let certain = s.grade == MatchGrade::Certain;
        if !same(i, j) {
            highest_false = highest_false.max(s.total);
        }
        if s.total >= thresholds.lower {
            if same(i, j) {
                tp += 1;
                certain_true += usize::from(certain);
            } else {
                fp += 1;
                certain_false += usize::from(certain);
                false_matches.push((i, j, s.total));
            }
        }
    }
    false_matches.sort_by(|a, b| b.2.total_cmp(&a.2));
    false_matches.truncate(20);
    let mut missed = Vec::new();
    let mut blocked = 0;
    for &(i, j) in &true_pairs {
        match scored.get(&(i, j)) {
            Some(&t) => {
                blocked += 1;
                if t < thresholds.lower && missed.len() < 20 {
                    missed.push((i, j, t));
                }
            }
            None => {
                if missed.len() < 20 {
                    missed.push((i, j, f64::NEG_INFINITY));
                }
            }
        }
    }
    let found = |i: usize, j: usize| {
        let key = (i.min(j), i.max(j));
        scored.get(&key).is_some_and(|t| *t >= thresholds.lower)
    };
    let mut by_corruption: BTreeMap<Corruption, (usize, usize)> = BTreeMap::new();
    let mut by_relation: BTreeMap<Relation, (usize, usize, usize)> = BTreeMap::new();
    for (j, r) in set.records.iter().enumerate() {
        match &r.origin {
            Origin::Base => {}
            Origin::Duplicate { of, corruptions } => {
                for c in corruptions {
                    let e = by_corruption.entry(*c).or_default();
                    e.0 += usize::from(found(*of, j));
                    e.1 += 1;
                }
            }
            Origin::Relative { of, relation } => {
                let s = compare_with(&prepared[*of], &prepared[j], thresholds);
                let e = by_relation.entry(*relation).or_default();
                e.0 += 1;
                e.1 += usize::from(s.total >= thresholds.lower);
                e.2 += usize::from(s.grade == MatchGrade::Certain);
            }
        }
    }
    let fn_ = true_pairs.len() - tp;
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if true_pairs.is_empty() {
        1.0
    } else {
        tp as f64 / true_pairs.len() as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Quality {
        records: set.records.len(),
        true_pairs: true_pairs.len(),
        pairs_compared: candidates.len(),
        true_pairs_blocked: blocked,
        true_positives: tp,
        false_positives: fp,
        false_negatives: fn_,
        precision,
        recall,
        f1,
        certain_true,
        certain_false,
        highest_false,
        by_corruption,
        by_relation,
        missed,
        false_matches,
    }
}

/// The observed frequency of one [`Outcome`] in each kind of pair, among
/// the pairs where the field is recorded on both sides (the probabilities
/// of a Fellegi–Sunter table: a missing field weighs nothing). The postal
/// code outcomes are conditional on whether the street lines agree
/// ([`Outcome::PostalCodeWithAddress`] and [`Outcome::PostalCodeConflict`]
/// when they do, the other two when they do not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeEstimate {
    pub outcome: Outcome,
    /// Among true pairs (`m`).
    pub m: f64,
    /// Among random pairs of different people (`u`).
    pub u: f64,
    /// Among relatives paired with their base patient (`u_relative`).
    pub u_relative: f64,
}

/// Which outcomes share a denominator: the field, with the postal code
/// split by whether the street lines agree.
fn outcome_group(o: Outcome) -> usize {
    match o {
        Outcome::Missing => usize::MAX,
        Outcome::PostalCodeWithAddress | Outcome::PostalCodeConflict => MatchField::ALL.len(),
        _ => o.info().field.map_or(usize::MAX, |f| f as usize),
    }
}

/// Estimates the Fellegi–Sunter probabilities of every outcome on `set`:
/// `m` over all true pairs, `u` over `random_pairs` pairs of different
/// people drawn uniformly, `u_relative` over the relatives in the set.
/// This is how the constants in `carefront_domain::matching::weights` were
/// obtained (then rounded and floored; see there).
pub fn estimate_outcomes(set: &EvaluationSet, random_pairs: u64) -> Vec<OutcomeEstimate> {
    let prepared: Vec<PreparedRecord> = set
        .match_records()
        .iter()
        .map(PreparedRecord::new)
        .collect();
    let n = OUTCOMES.len();
    let groups = MatchField::ALL.len() + 1;
    let mut m = vec![0u64; n];
    let mut u = vec![0u64; n];
    let mut r = vec![0u64; n];
    let mut m_groups = vec![0u64; groups];
    let mut u_groups = vec![0u64; groups];
    let mut r_groups = vec![0u64; groups];
    let thresholds = Thresholds::DEFAULT;
    let tally = |counts: &mut Vec<u64>, totals: &mut Vec<u64>, i: usize, j: usize| {
        for f in compare_with(&prepared[i], &prepared[j], &thresholds).fields {
            let g = outcome_group(f.outcome);
            if g != usize::MAX {
                counts[f.outcome as usize] += 1;
                totals[g] += 1;
            }
        }
    };
    for (i, j) in set.true_pairs() {
        tally(&mut m, &mut m_groups, i, j);
    }
    for (j, rec) in set.records.iter().enumerate() {
        if let Origin::Relative { of, .. } = rec.origin {
            tally(&mut r, &mut r_groups, of, j);
        }
    }
    let mut rng = Rng::new(set.seed, u64::MAX);
    let len = prepared.len() as u64;
    let mut drawn = 0;
    while drawn < random_pairs && len > 1 {
        let i = rng.below(len) as usize;
        let j = rng.below(len) as usize;
        if set.records[i].person == set.records[j].person {
            continue;
        }
        tally(&mut u, &mut u_groups, i, j);
        drawn += 1;
    }
    let share = |count: u64, totals: &[u64], o: Outcome| {
        let g = outcome_group(o);
        match totals.get(g) {
            Some(&t) if t > 0 => count as f64 / t as f64,
            _ => 0.0,
        }
    };
    OUTCOMES
        .iter()
        .map(|info| {
            let k = info.outcome as usize;
            OutcomeEstimate {
                outcome: info.outcome,
                m: share(m[k], &m_groups, info.outcome),
                u: share(u[k], &u_groups, info.outcome),
                u_relative: share(r[k], &r_groups, info.outcome),
            }
        })
        .collect()
}
