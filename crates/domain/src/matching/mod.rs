//! Probabilistic patient matching: the engine of the master patient index.
//!
//! Before a registration is saved, the front desk sees the existing patients
//! that may be the same person, each with a score and the fields that agree
//! or disagree; `Patient/$match` returns the same candidates with a FHIR
//! match grade. This module is that engine, and nothing else: it compares
//! two [`MatchRecord`]s and says which keys storage should index a record
//! under so that candidates are found without scanning ([`blocking_keys`]).
//!
//! # The model
//!
//! Fellegi–Sunter record linkage. Each field of the pair is compared and
//! ends in one [`Outcome`] (exact, a kind of partial agreement, a
//! disagreement, or missing). Each outcome has a probability `m` among
//! records of the same person and `u` among records of unrelated people;
//! the field's weight is `log2(m / u)` and the weights add up. The
//! probabilities, and where they come from, are in [`weights`].
//!
//! Names are folded before they are compared (case, accents, punctuation and
//! spaces: José = JOSE, De la Cruz = Delacruz, O'Brien = OBrien) and agree
//! partially through a nickname table (Bob = Robert, Pepe = José), a shared
//! part of a compound name (García-López and García), one typing slip or a
//! Jaro–Winkler similarity of at least 0.92 (Jonh = John), the same Double
//! Metaphone code (Schmidt = Smith), a matching initial, the middle name used
//! as given name, or given and family name swapped. Birth dates agree
//! partially when day and month are swapped or one digit differs. Phones
//! agree when any number is shared, emails when equal (or, partially, the
//! same name at another provider), addresses when the normalized street
//! line is equal (or, partially, the same house number on a similarly
//! spelled street); the postal code counts separately only when the street
//! lines do not agree. Records with several addresses (home, mailing, work,
//! old) are compared address by address: the pair of addresses that agrees
//! best (the highest street and postal code weight together) decides both
//! fields, so a duplicate registered at its old address still agrees.
//!
//! ## Relatives
//!
//! Plain Fellegi–Sunter assumes fields agree independently. They do not
//! among relatives: twins share family name, birth date, address and phone;
//! a father and his junior share given and family name, address and phone.
//! Added up independently, such a pair would look like the same person with
//! near certainty. So a non-match is modelled as either a stranger (`u`) or,
//! with prior probability `2^-`[`RELATIVE_PRIOR_LOG2`], a close relative
//! (`u_relative`), and the score is the log-likelihood ratio against that
//! mixture:
//!
//! ```text
//! total = -log2( 2^-S + 2^-(R + RELATIVE_PRIOR_LOG2) )
//!   S = Σ log2(m / u)            (the field weights shown to the user)
//!   R = Σ log2(m / u_relative)
//! ```
//!
//! That is a smooth minimum of "how unlike strangers" and "how unlike
//! relatives" the pair is. Within relatives, given name and birth date are
//! not independent either: no two relatives share a given name *and* a
//! birth date (twins get different names, a junior is born years after his
//! father). So when both agree (the given name exactly, as a nickname or a
//! part of it; the birth date exactly, with day and month swapped or one
//! digit off), the relatives term is dropped and `total = S`. A pair that
//! agrees on everything relatives share but differs in given name (twins)
//! or birth date (Jr/Sr) therefore stays low, while a duplicate with a
//! nickname at the same address is not pulled down.
//! The difference from the plain sum `S` is reported as
//! [`MatchScore::relatives_adjustment`] (never positive).
//!
//! Every disagreement has `m <= u` and `m <= u_relative`, so turning a
//! missing field into a disagreeing one never raises a score.
//!
//! ## Rare and common names
//!
//! Agreeing on a rare name says more than agreeing on a common one. When
//! the caller gives each prepared record the organization's name counts
//! ([`PreparedRecord::set_name_counts`], from the keys
//! [`PreparedRecord::name_keys`] that storage counts), the weights of the
//! given, middle and family name against strangers follow the name's share
//! of the organization's patients instead of the table's average; see
//! [`frequency`]. `Db::match_candidates` does this for registration and
//! `Patient/$match`; [`compare`] uses the table.
//!
//! Most given names belong to one sex, so strangers who share a given name
//! are mostly of the same sex: then a sex agreement adds almost nothing
//! and a disagreement takes less away
//! ([`weights::sex_given_name_adjustment`]). Both changes show in
//! [`FieldComparison::adjustment`].
//!
//! # What the scores mean at the front desk
//!
//! See [`Thresholds`]: at or above `upper` ([`MatchGrade::Certain`]) the
//! specialist must pick the existing patient or give a reason to register a
//! new one; between `lower` and `upper` the candidates are shown
//! ([`MatchGrade::Probable`] above the midpoint, [`MatchGrade::Possible`]
//! below it); below `lower` nothing is shown
//! ([`MatchGrade::CertainlyNot`]).
//!
//! # Speed
//!
//! [`PreparedRecord`] holds the normalized forms of a record (folded names,
//! phonetic codes, nickname rows, date digits, phone numbers as integers);
//! [`compare_prepared`] then allocates nothing. Prepare each stored record
//! once per search.

pub mod frequency;
mod nicknames;
mod normalize;
pub mod weights;

#[cfg(test)]
mod tests;

use crate::directory::AdministrativeGender;
use crate::patient::Patient;
use crate::patient_search::national_digits;
pub use frequency::NameCounts;
use normalize::{Dob, Name, StreetLine, jaro_winkler, within_one_edit};
use serde::Serialize;
pub use weights::{OUTCOMES, Outcome, OutcomeInfo};

/// What the matcher looks at in a patient record. Build one from a stored
/// [`Patient`] with `From`, or from a registration form or a `$match`
/// request's Patient resource field by field; any field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchRecord {
    pub given: String,
    pub middle: Option<String>,
    pub family: String,
    pub birth_date: Option<jiff::civil::Date>,
    /// [`AdministrativeGender::Unknown`] is treated as not recorded.
    pub sex: Option<AdministrativeGender>,
    /// E.164 (other formats work: digits are compared, ten-digit numbers
    /// read as NANP).
    pub phones: Vec<String>,
    pub email: Option<String>,
    /// Every address on the record, in any order.
    pub addresses: Vec<MatchAddress>,
}

/// An address as the matcher compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchAddress {
    /// The street line (house number and street; without apartment).
    pub line: Option<String>,
    pub postal_code: Option<String>,
}

impl From<&crate::directory::Address> for MatchAddress {
    fn from(a: &crate::directory::Address) -> Self {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        MatchAddress {
            line: text(&a.line1),
            postal_code: text(&a.postal_code),
        }
    }
}

impl From<&Patient> for MatchRecord {
    fn from(p: &Patient) -> Self {
        MatchRecord {
            given: p.given.clone(),
            middle: p.middle.clone(),
            family: p.family.clone(),
            birth_date: Some(p.birth_date),
            sex: Some(p.sex),
            phones: p.phones.iter().map(|ph| ph.number.clone()).collect(),
            email: p.email.clone(),
            addresses: p
                .addresses
                .iter()
                .map(|a| MatchAddress::from(&a.address))
                .collect(),
        }
    }
}

/// The fields compared, in the order of [`MatchScore::fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchField {
    Given,
    Middle,
    Family,
    BirthDate,
    Sex,
    Phone,
    Email,
    Address,
    PostalCode,
}

impl MatchField {
    pub const ALL: [MatchField; 9] = [
        MatchField::Given,
        MatchField::Middle,
        MatchField::Family,
        MatchField::BirthDate,
        MatchField::Sex,
        MatchField::Phone,
        MatchField::Email,
        MatchField::Address,
        MatchField::PostalCode,
    ];

    /// A label for the front desk.
    pub fn label(self) -> &'static str {
        match self {
            MatchField::Given => "Given name",
            MatchField::Middle => "Middle name",
            MatchField::Family => "Family name",
            MatchField::BirthDate => "Date of birth",
            MatchField::Sex => "Sex",
            MatchField::Phone => "Phone",
            MatchField::Email => "Email",
            MatchField::Address => "Address",
            MatchField::PostalCode => "Postal code",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agreement {
    Exact,
    /// Nickname, typo, same sound, one part of a compound name, swapped day
    /// and month, one digit of the date: see the note.
    Partial,
    Disagree,
    /// Not recorded on one side or both.
    Missing,
}

/// How one field compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FieldComparison {
    pub field: MatchField,
    pub agreement: Agreement,
    pub outcome: Outcome,
    /// `log2(m / u)`: this field's contribution, before the relatives
    /// adjustment. The table's weight of `outcome` plus `adjustment`.
    pub weight: f64,
    /// How much `weight` differs from the table's weight of `outcome`: for
    /// names, because the name is rarer (positive) or commoner (negative)
    /// than average among the organization's patients (see [`frequency`]);
    /// for sex, because strangers with the same given name are mostly of
    /// the same sex anyway (see [`weights::sex_given_name_adjustment`]).
    pub adjustment: f64,
    /// Why, in a few words ("nickname", "day and month swapped"); the
    /// screen shows it beside the two values.
    pub note: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MatchScore {
    /// Log2 likelihood ratio, same person against not (see the module
    /// documentation). `fields` weights plus `relatives_adjustment`.
    pub total: f64,
    pub grade: MatchGrade,
    /// One comparison per field, in [`MatchField::ALL`] order.
    pub fields: [FieldComparison; 9],
    /// How much the total is lowered because the agreement could also be
    /// that of close relatives (twins, Jr/Sr, one household). Never positive.
    pub relatives_adjustment: f64,
}

impl MatchScore {
    pub fn field(&self, field: MatchField) -> &FieldComparison {
        &self.fields[field as usize]
    }

    /// A score in `0..=1` for a FHIR `Bundle.entry.search.score`: the
    /// probability that the pair is one person when the prior odds put it at
    /// one half exactly at [`Thresholds::lower`] (so `lower` ↦ 0.5, each
    /// further bit doubles the odds).
    pub fn search_score(&self, thresholds: &Thresholds) -> f64 {
        1.0 / (1.0 + (thresholds.lower - self.total).exp2())
    }
}

/// The FHIR match grade (`http://hl7.org/fhir/StructureDefinition/match-grade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchGrade {
    Certain,
    Probable,
    Possible,
    CertainlyNot,
}

impl MatchGrade {
    /// The extension that carries the grade on a `$match` result entry.
    pub const EXTENSION_URL: &'static str = "http://hl7.org/fhir/StructureDefinition/match-grade";

    /// The code from the `match-grade` value set.
    pub fn fhir_code(self) -> &'static str {
        match self {
            MatchGrade::Certain => "certain",
            MatchGrade::Probable => "probable",
            MatchGrade::Possible => "possible",
            MatchGrade::CertainlyNot => "certainly-not",
        }
    }
}

/// Where the front desk's behaviour changes, in bits of total score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// At or above: [`MatchGrade::Certain`]. Registration stops: the
    /// specialist must choose the existing patient, or give a reason to
    /// create a new record anyway (the reason is audited).
    pub upper: f64,
    /// At or above (and below `upper`): the candidate is shown beside the
    /// form, [`MatchGrade::Probable`] from the midpoint up and
    /// [`MatchGrade::Possible`] below it; the specialist may go on. Below:
    /// [`MatchGrade::CertainlyNot`], not shown (and not returned by
    /// `$match`).
    pub lower: f64,
}

impl Thresholds {
    /// Chosen on the tuning seed of the synthetic evaluation set
    /// (`carefront_synth::duplicates`, seed 1) and checked on another seed:
    ///
    /// - `upper` = 22: on the tuning seed no pair of different people reached
    ///   it — twins, Jr/Sr, spouses and siblings included (the highest was
    ///   16.4 with 5,000 base patients and 21.7 with 20,000, names weighed
    ///   by their frequency in the set as `Db::match_candidates` weighs
    ///   them), while 94% of true duplicate pairs did. A duplicate with a
    ///   typo, a nickname or swapped day and month at the same address
    ///   scores well above it; a bare name and birth date against an exact
    ///   copy score about 32. With 100,000 patients a few pairs of strangers
    ///   reach it (2 to 6 per seed, 5 to 16 with the table's name weights
    ///   and the sex counted apart from the given name): the same given and
    ///   family name with a birth date a digit off and a shared middle name
    ///   or email, which the small synthetic name lists make far commoner
    ///   than in life.
    /// - `lower` = 13: the F1 optimum of the tuning seed (precision 0.997,
    ///   recall 0.992 with 5,000 base patients); recall falls quickly above
    ///   15, precision below 11. It is also about where the odds are even
    ///   that a candidate found by blocking is a duplicate: a duplicate rate
    ///   of one in ten registrations against a panel of some thousands of
    ///   patients gives prior odds near 2^-13 per pair.
    pub const DEFAULT: Thresholds = Thresholds {
        upper: 22.0,
        lower: 13.0,
    };

    pub fn grade(&self, total: f64) -> MatchGrade {
        if total >= self.upper {
            MatchGrade::Certain
        } else if total >= (self.upper + self.lower) / 2.0 {
            MatchGrade::Probable
        } else if total >= self.lower {
            MatchGrade::Possible
        } else {
            MatchGrade::CertainlyNot
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// Prior probability, as `-log2`, that a non-matching pair is one of close
/// relatives rather than strangers: about two relatives per patient in a
/// panel of about 8,000 gives `2^-12`. Larger panels make relatives rarer
/// among random pairs, so this is conservative for them.
pub const RELATIVE_PRIOR_LOG2: f64 = 12.0;

/// A [`MatchRecord`] with its normalized forms computed, for comparing one
/// record with many.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRecord {
    given: Option<Name>,
    middle: Option<Name>,
    family: Option<Name>,
    dob: Option<Dob>,
    sex: Option<AdministrativeGender>,
    phones: Vec<u64>,
    /// Lower-cased address and the position of its `@`.
    email: Option<(String, usize)>,
    /// Normalized street line and postal code of each address (distinct,
    /// in the record's order; addresses with neither are left out).
    addresses: Vec<(Option<StreetLine>, Option<String>)>,
    /// Shares of the organization's patients carrying the given, middle
    /// and family name, when known ([`PreparedRecord::set_name_counts`]).
    shares: [Option<f64>; 3],
}

impl PreparedRecord {
    pub fn new(r: &MatchRecord) -> Self {
        let mut phones: Vec<u64> = r
            .phones
            .iter()
            .filter_map(|p| normalize::phone(p))
            .collect();
        phones.sort_unstable();
        phones.dedup();
        let mut addresses: Vec<(Option<StreetLine>, Option<String>)> =
            Vec::with_capacity(r.addresses.len());
        for a in &r.addresses {
            let prepared = (
                a.line.as_deref().and_then(StreetLine::new),
                a.postal_code.as_deref().and_then(normalize::postal),
            );
            if (prepared.0.is_some() || prepared.1.is_some()) && !addresses.contains(&prepared) {
                addresses.push(prepared);
            }
        }
        PreparedRecord {
            given: Name::new(&r.given, false),
            middle: r.middle.as_deref().and_then(|m| Name::new(m, false)),
            family: Name::new(&r.family, true),
            dob: r.birth_date.map(Dob::new),
            sex: r.sex.filter(|s| *s != AdministrativeGender::Unknown),
            phones,
            email: r.email.as_deref().and_then(normalize::email),
            addresses,
            shares: [None; 3],
        }
    }

    /// The keys whose counts make the name weights value-specific: `n:` and
    /// the folded given, middle (unless an initial) and family name, in that
    /// order. They are among the keys `patient_search::index_keys` stores
    /// every patient under (a name's parts run together are one of its
    /// tokens), so storage counts them with an index range count.
    pub fn name_keys(&self) -> [Option<String>; 3] {
        let key = |n: &Option<Name>| {
            n.as_ref()
                .filter(|n| !n.is_initial())
                .map(|n| format!("n:{}", n.joined))
        };
        [key(&self.given), key(&self.middle), key(&self.family)]
    }

    /// Makes the name weights of this record's comparisons value-specific
    /// (see [`frequency`]), from how many of the organization's patients
    /// carry each of its [`name_keys`](Self::name_keys).
    pub fn set_name_counts(&mut self, counts: &NameCounts) {
        let exact = [
            Outcome::GivenExact,
            Outcome::MiddleExact,
            Outcome::FamilyExact,
        ];
        let keys = self.name_keys();
        self.shares = std::array::from_fn(|i| {
            keys[i]
                .as_deref()
                .and_then(|k| counts.share(k, exact[i].info().u))
        });
    }

    /// See [`blocking_keys`].
    pub fn blocking_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(10);
        if let Some(d) = &self.dob {
            keys.push(format!("d:{}", d.iso()));
            if let Some(swapped) = d.swapped_key() {
                keys.push(format!("bd:{swapped}"));
            }
            if let Some(f) = self.family.as_ref().filter(|f| f.phonetic[0] != 0) {
                keys.push(format!(
                    "fy:{}:{}",
                    normalize::unpack(f.phonetic[0]),
                    d.year
                ));
            }
        }
        if let (Some(g), Some(f)) = (&self.given, &self.family)
            && g.phonetic[0] != 0
            && f.phonetic[0] != 0
        {
            let (lo, hi) = if g.phonetic[0] <= f.phonetic[0] {
                (g.phonetic[0], f.phonetic[0])
            } else {
                (f.phonetic[0], g.phonetic[0])
            };
            keys.push(format!(
                "nm:{}:{}",
                normalize::unpack(lo),
                normalize::unpack(hi)
            ));
        }
        for (street, postal) in self
            .addresses
            .iter()
            .filter_map(|(s, p)| s.as_ref().zip(p.as_ref()))
            .take(MAX_ADDRESS_KEYS)
        {
            keys.push(format!("ad:{postal}:{}", street.normalized));
        }
        for p in self.phones.iter().take(2) {
            keys.push(format!("p:{}", national_digits(&p.to_string())));
        }
        if let Some((e, _)) = &self.email {
            keys.push(format!("e:{e}"));
        }
        keys
    }
}

/// Compares two records. For many comparisons against one record, prepare
/// them once and use [`compare_prepared`].
pub fn compare(a: &MatchRecord, b: &MatchRecord) -> MatchScore {
    compare_prepared(&PreparedRecord::new(a), &PreparedRecord::new(b))
}

/// Compares two prepared records, graded with [`Thresholds::DEFAULT`].
pub fn compare_prepared(a: &PreparedRecord, b: &PreparedRecord) -> MatchScore {
    compare_with(a, b, &Thresholds::DEFAULT)
}

/// Compares two prepared records, graded with `thresholds`.
pub fn compare_with(a: &PreparedRecord, b: &PreparedRecord, thresholds: &Thresholds) -> MatchScore {
    let outcomes = outcomes(a, b);
    let mut adjustments = dependence_adjustments(&outcomes);
    for (slot, field, exact) in [
        (0, MatchField::Given, Outcome::GivenExact),
        (1, MatchField::Middle, Outcome::MiddleExact),
        (2, MatchField::Family, Outcome::FamilyExact),
    ] {
        let i = field as usize;
        adjustments[i] = frequency::adjustment(outcomes[i], exact, a.shares[slot], b.shares[slot]);
    }
    score_adjusted(outcomes, adjustments, thresholds)
}

/// The changes of the table's weights against strangers that do not depend
/// on the organization: sex given the given name.
fn dependence_adjustments(outcomes: &[Outcome; 9]) -> [f64; 9] {
    let mut adjustments = [0.0; 9];
    adjustments[MatchField::Sex as usize] = weights::sex_given_name_adjustment(
        outcomes[MatchField::Given as usize],
        outcomes[MatchField::Sex as usize],
    );
    adjustments
}

/// The keys under which storage indexes a record so that its candidates are
/// found without scanning (blocking). Two records are candidates when they
/// share a key. Each key is a short, stable string with a prefix naming its
/// kind; a record has at most ten. The birth date, phone and email keys
/// are those patient search stores them under (`d:`, `p:`, `e:`:
/// [`index_keys`](crate::patient_search::index_keys)), so a patient's index
/// holds each once:
///
/// - `d:YYYY-MM-DD`, the birth date, and `bd:YYYYMMDD`, the same date with
///   day and month swapped when that is a real date (catches new family
///   names after marriage, nicknames and typos in names);
/// - `fy:<Double Metaphone of the family name>:<birth year>` (catches typos
///   in the day or month);
/// - `nm:<codes of given and family name, sorted>` (catches typos in the
///   birth year, and given and family name swapped);
/// - `ad:<postal code>:<street line>`, the household, for each of the first
///   [`MAX_ADDRESS_KEYS`] addresses with both (catches a wrong year and a
///   misspelled name together, and a record kept at a former address);
/// - `p:<national digits>` for up to two phones, and `e:<address>` (catch a wrong
///   date and a changed name together).
pub fn blocking_keys(r: &MatchRecord) -> Vec<String> {
    PreparedRecord::new(r).blocking_keys()
}

/// Household keys (`ad:`) of one record, at most: its first addresses with
/// a street line and a postal code (the home address is first).
pub const MAX_ADDRESS_KEYS: usize = 3;

/// How close two names are, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NameLevel {
    Disagree,
    Initial,
    Phonetic,
    Typo,
    Token,
    Nickname,
    Exact,
}

fn name_level(a: &Name, b: &Name) -> NameLevel {
    if a.hash == b.hash && a.joined == b.joined {
        return NameLevel::Exact;
    }
    if nicknames::related(&a.nick, &b.nick) {
        return NameLevel::Nickname;
    }
    if a.token_hashes.iter().any(|t| b.token_hashes.contains(t)) {
        return NameLevel::Token;
    }
    let (x, y) = (a.joined.as_bytes(), b.joined.as_bytes());
    if (x.len().min(y.len()) >= 4 && within_one_edit(x, y))
        || (a.may_be_similar(b) && jaro_winkler(&a.joined, &b.joined) >= 0.92)
    {
        return NameLevel::Typo;
    }
    // Primary codes agree (Catherine = Kathryn), or an alternate code meets
    // the other name's codes and the names start alike (Smith = Schmidt).
    // Alternates alone cross too far (Irina and Journee share one).
    let [ap, aa] = a.phonetic;
    let [bp, ba] = b.phonetic;
    let codes_meet = (ap != 0 && ap == bp)
        || (a.initial() == b.initial()
            && ((aa != 0 && (aa == bp || aa == ba)) || (ba != 0 && ba == ap)));
    if codes_meet {
        return NameLevel::Phonetic;
    }
    if (a.is_initial() || b.is_initial()) && a.initial() == b.initial() {
        return NameLevel::Initial;
    }
    NameLevel::Disagree
}

fn both<'a, T>(a: &'a Option<T>, b: &'a Option<T>) -> Option<(&'a T, &'a T)> {
    a.as_ref().zip(b.as_ref())
}

/// The outcome of every field, in [`MatchField::ALL`] order.
fn outcomes(a: &PreparedRecord, b: &PreparedRecord) -> [Outcome; 9] {
    let (address, postal) = address_outcomes(a, b);
    let given = both(&a.given, &b.given).map(|(x, y)| name_level(x, y));
    let family = both(&a.family, &b.family).map(|(x, y)| name_level(x, y));
    let swapped = match (given, family, &a.given, &a.family, &b.given, &b.family) {
        (Some(g), Some(f), Some(ag), Some(af), Some(bg), Some(bf))
            if g.max(f) < NameLevel::Typo =>
        {
            name_level(ag, bf) >= NameLevel::Typo && name_level(af, bg) >= NameLevel::Typo
        }
        _ => false,
    };
    let (given, family) = if swapped {
        (Outcome::GivenSwapped, Outcome::FamilySwapped)
    } else {
        (given_outcome(a, b, given), family_outcome(family))
    };
    [
        given,
        middle_outcome(a, b),
        family,
        date_outcome(a, b),
        match both(&a.sex, &b.sex) {
            None => Outcome::Missing,
            Some((x, y)) if x == y => Outcome::SexExact,
            Some(_) => Outcome::SexDisagree,
        },
        if a.phones.is_empty() || b.phones.is_empty() {
            Outcome::Missing
        } else if a.phones.iter().any(|p| b.phones.contains(p)) {
            Outcome::PhoneExact
        } else {
            Outcome::PhoneDisagree
        },
        match both(&a.email, &b.email) {
            None => Outcome::Missing,
            Some((x, y)) if x.0 == y.0 => Outcome::EmailExact,
            Some(((x, xa), (y, ya))) if x[..*xa] == y[..*ya] => Outcome::EmailLocalPart,
            Some(_) => Outcome::EmailDisagree,
        },
        address,
        postal,
    ]
}

fn given_outcome(a: &PreparedRecord, b: &PreparedRecord, level: Option<NameLevel>) -> Outcome {
    let Some(level) = level else {
        return Outcome::Missing;
    };
    if level < NameLevel::Typo {
        // Someone who goes by the middle name: "J. Robert Smith" is "Robert
        // Smith", and "Robert" may be "Bob".
        let goes_by_middle = |x: &PreparedRecord, y: &PreparedRecord| {
            both(&x.middle, &y.given).is_some_and(|(m, g)| {
                !m.is_initial()
                    && ((m.hash == g.hash && m.joined == g.joined)
                        || nicknames::related(&m.nick, &g.nick))
            })
        };
        if goes_by_middle(a, b) || goes_by_middle(b, a) {
            return Outcome::GivenMiddle;
        }
    }
    match level {
        NameLevel::Exact => Outcome::GivenExact,
        NameLevel::Nickname => Outcome::GivenNickname,
        NameLevel::Token => Outcome::GivenToken,
        NameLevel::Typo => Outcome::GivenTypo,
        NameLevel::Phonetic => Outcome::GivenPhonetic,
        NameLevel::Initial => Outcome::GivenInitial,
        NameLevel::Disagree => Outcome::GivenDisagree,
    }
}

fn family_outcome(level: Option<NameLevel>) -> Outcome {
    match level {
        None => Outcome::Missing,
        Some(NameLevel::Exact) => Outcome::FamilyExact,
        // Family names carry no nickname rows, so Nickname cannot occur.
        Some(NameLevel::Token | NameLevel::Nickname) => Outcome::FamilyToken,
        Some(NameLevel::Typo) => Outcome::FamilyTypo,
        Some(NameLevel::Phonetic) => Outcome::FamilyPhonetic,
        Some(NameLevel::Initial | NameLevel::Disagree) => Outcome::FamilyDisagree,
    }
}

fn middle_outcome(a: &PreparedRecord, b: &PreparedRecord) -> Outcome {
    let Some((x, y)) = both(&a.middle, &b.middle) else {
        return Outcome::Missing;
    };
    if x.is_initial() || y.is_initial() {
        return if x.initial() == y.initial() {
            Outcome::MiddleInitial
        } else {
            Outcome::MiddleDisagree
        };
    }
    match name_level(x, y) {
        NameLevel::Exact => Outcome::MiddleExact,
        NameLevel::Disagree | NameLevel::Initial => Outcome::MiddleDisagree,
        _ => Outcome::MiddleSimilar,
    }
}

fn date_outcome(a: &PreparedRecord, b: &PreparedRecord) -> Outcome {
    let Some((x, y)) = both(&a.dob, &b.dob) else {
        return Outcome::Missing;
    };
    if x == y {
        return Outcome::BirthDateExact;
    }
    if x.year == y.year && x.day == y.month && x.month == y.day {
        return Outcome::BirthDateSwapped;
    }
    let mut first = None;
    let mut count = 0;
    for i in 0..8 {
        if x.digits[i] != y.digits[i] {
            count += 1;
            first.get_or_insert(i);
        }
    }
    let typo = match (count, first) {
        (1, _) => true,
        (2, Some(i)) => {
            i + 1 < 8 && x.digits[i] == y.digits[i + 1] && x.digits[i + 1] == y.digits[i]
        }
        _ => false,
    };
    if typo {
        Outcome::BirthDateTypo
    } else if x.year == y.year {
        Outcome::BirthDateSameYear
    } else {
        Outcome::BirthDateDisagree
    }
}

type PreparedAddress = (Option<StreetLine>, Option<String>);

fn street_agrees(a: &PreparedAddress, b: &PreparedAddress) -> Option<Outcome> {
    let (x, y) = both(&a.0, &b.0)?;
    Some(if x.normalized == y.normalized {
        Outcome::AddressExact
    } else if x.number_len > 0
        && x.number() == y.number()
        && jaro_winkler(x.street(), y.street()) >= 0.9
    {
        Outcome::AddressSimilar
    } else {
        Outcome::AddressDisagree
    })
}

/// The street and postal code outcomes of one pair of addresses.
fn address_pair(a: &PreparedAddress, b: &PreparedAddress) -> (Outcome, Outcome) {
    let street = street_agrees(a, b);
    let postal = match both(&a.1, &b.1) {
        None => Outcome::Missing,
        Some((x, y)) => {
            let street_agrees = matches!(
                street,
                Some(Outcome::AddressExact | Outcome::AddressSimilar)
            );
            match (street_agrees, x == y) {
                (true, true) => Outcome::PostalCodeWithAddress,
                (true, false) => Outcome::PostalCodeConflict,
                (false, true) => Outcome::PostalCodeExact,
                (false, false) => Outcome::PostalCodeDisagree,
            }
        }
    };
    (street.unwrap_or(Outcome::Missing), postal)
}

/// The street and postal code outcomes of the pair of addresses, one of
/// each record, that agrees best (the highest weight of the two together;
/// the first such pair in the records' order).
fn address_outcomes(a: &PreparedRecord, b: &PreparedRecord) -> (Outcome, Outcome) {
    let mut best = (Outcome::Missing, Outcome::Missing);
    let mut best_weight = f64::NEG_INFINITY;
    for x in &a.addresses {
        for y in &b.addresses {
            let pair = address_pair(x, y);
            if pair == (Outcome::Missing, Outcome::Missing) {
                continue;
            }
            let weight = pair.0.weight() + pair.1.weight();
            if weight > best_weight {
                best = pair;
                best_weight = weight;
            }
        }
    }
    best
}

/// Whether the outcome of the given name and of the birth date together
/// rule out close relatives: no two relatives have the same given name (or
/// its nickname) *and* the same (or a digit away) birth date — twins are
/// given different names and a junior is born years after his father. A
/// given name a typo away does not rule them out: twins may be Ella and
/// Emma.
fn rules_out_relatives(given: Outcome, birth_date: Outcome) -> bool {
    matches!(
        given,
        Outcome::GivenExact | Outcome::GivenNickname | Outcome::GivenToken | Outcome::GivenSwapped
    ) && matches!(
        birth_date,
        Outcome::BirthDateExact | Outcome::BirthDateSwapped | Outcome::BirthDateTypo
    )
}

/// Combines field outcomes, in [`MatchField::ALL`] order, into a score
/// (see the module documentation), without value-specific name weights.
pub fn score(outcomes: [Outcome; 9], thresholds: &Thresholds) -> MatchScore {
    score_adjusted(outcomes, dependence_adjustments(&outcomes), thresholds)
}

/// [`score`] with the table's weights against strangers changed by
/// `adjustments` (bits, per field); an agreement never weighs less than 0.
fn score_adjusted(
    outcomes: [Outcome; 9],
    adjustments: [f64; 9],
    thresholds: &Thresholds,
) -> MatchScore {
    let mut strangers = 0.0;
    let mut relatives = 0.0;
    let fields = std::array::from_fn(|i| {
        let outcome = outcomes[i];
        let table = outcome.weight();
        let weight = match outcome.agreement() {
            _ if adjustments[i] == 0.0 => table,
            Agreement::Exact | Agreement::Partial => (table + adjustments[i]).max(0.0),
            Agreement::Disagree | Agreement::Missing => table + adjustments[i],
        };
        strangers += weight;
        relatives += outcome.weight_relative();
        FieldComparison {
            field: MatchField::ALL[i],
            agreement: outcome.agreement(),
            outcome,
            weight,
            adjustment: weight - table,
            note: outcome.note(),
        }
    });
    let given = outcomes[MatchField::Given as usize];
    let birth_date = outcomes[MatchField::BirthDate as usize];
    let total = if rules_out_relatives(given, birth_date) {
        strangers
    } else {
        // -log2(2^-S + 2^-(R + prior)), computed without overflow.
        let against_relatives = relatives + RELATIVE_PRIOR_LOG2;
        let low = f64::min(strangers, against_relatives);
        let gap = (strangers - against_relatives).abs();
        if gap > 60.0 {
            low
        } else {
            low - (-gap).exp2().ln_1p() / std::f64::consts::LN_2
        }
    };
    MatchScore {
        total,
        grade: thresholds.grade(total),
        fields,
        relatives_adjustment: total - strangers,
    }
}
