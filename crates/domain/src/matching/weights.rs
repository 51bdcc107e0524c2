//! The Fellegi–Sunter probabilities behind every field weight.
//!
//! Each comparison of one field ends in one [`Outcome`]. For each outcome
//! the table gives three probabilities:
//!
//! - `m`: how often two records **of the same person** end in this outcome;
//! - `u`: how often two records of **unrelated people** do;
//! - `u_relative`: how often two records of **close relatives** do (twins,
//!   parent and child with the same name, spouses, siblings; most share a
//!   family name, an address and a phone).
//!
//! The weight shown for a field is `log2(m / u)`: positive when the outcome
//! is more typical of the same person than of strangers. See
//! [`super`] for how the two kinds of non-match are combined.
//!
//! # Where the numbers come from
//!
//! `m` and `u` were estimated on the labelled synthetic set of
//! `carefront_synth::duplicates` (tuning seed 1, 20,000 patients; `m` over
//! all true duplicate pairs, `u` over 20 million random pairs of different
//! people) by `cargo run --release -p carefront-synth --example
//! match_quality -- --estimate`, then rounded and adjusted by hand where the
//! synthetic data cannot know better:
//!
//! - outcomes that the generator never produces for true duplicates (a birth
//!   date that is wholly different, an unrelated given name) keep a small
//!   floor for `m` taken from published MPI audits, where 0.5–2% of true
//!   duplicates differ in such a field; a zero would make them impossible;
//! - phones in the synthetic set use only the 100 fictional lines of each
//!   area code, so strangers share phones far more often than in life; the
//!   estimate is kept (it makes phone agreement count for less, which is the
//!   safe direction).
//!
//! `u_relative` is set by hand from demography, since the synthetic set only
//! contains the relatives it was told to: about 3% of births are twins (same
//! birth date), about 4% of relatives sharing a household carry the same
//! given name (Jr/Sr), about 85% of them the same family name (exactly or
//! misspelled: typos belong to records, not to relationships, so relatives
//! show them about as often as duplicates do), 50–60% the same phone and
//! street address, 30% one email address. Every `u_relative` of a
//! disagreement is at least its `m`, so that a disagreeing field can never
//! raise a score.
//!
//! Two refinements apply on top of the table when records are compared:
//! the name rows' `u` follow the name's frequency among the organization's
//! patients when the caller knows it ([`super::frequency`]), and the sex
//! rows' `u` are conditional on the given names agreeing
//! ([`sex_given_name_adjustment`]).
//!
//! The quality measured with these numbers is in the module documentation
//! of `carefront_synth::duplicates`, on a seed the numbers were not fitted
//! on.

use super::{Agreement, MatchField};
use serde::Serialize;
use std::sync::LazyLock;

/// How the comparison of one field came out. The variant names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Either record lacks the field: no evidence either way (weight 0).
    Missing,
    GivenExact,
    GivenNickname,
    GivenMiddle,
    GivenToken,
    GivenTypo,
    GivenPhonetic,
    GivenInitial,
    GivenSwapped,
    GivenDisagree,
    MiddleExact,
    MiddleInitial,
    MiddleSimilar,
    MiddleDisagree,
    FamilyExact,
    FamilyToken,
    FamilyTypo,
    FamilyPhonetic,
    FamilySwapped,
    FamilyDisagree,
    BirthDateExact,
    BirthDateSwapped,
    BirthDateTypo,
    BirthDateSameYear,
    BirthDateDisagree,
    SexExact,
    SexDisagree,
    PhoneExact,
    PhoneDisagree,
    EmailExact,
    EmailLocalPart,
    EmailDisagree,
    AddressExact,
    AddressSimilar,
    AddressDisagree,
    PostalCodeWithAddress,
    PostalCodeConflict,
    PostalCodeExact,
    PostalCodeDisagree,
}

/// One row of the table: the outcome's meaning and its probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeInfo {
    pub outcome: Outcome,
    /// `None` for [`Outcome::Missing`], which any field can have.
    pub field: Option<MatchField>,
    pub agreement: Agreement,
    /// What the front desk reads next to the two values.
    pub note: &'static str,
    pub m: f64,
    pub u: f64,
    pub u_relative: f64,
}

const fn row(
    outcome: Outcome,
    field: MatchField,
    agreement: Agreement,
    note: &'static str,
    m: f64,
    u: f64,
    u_relative: f64,
) -> OutcomeInfo {
    OutcomeInfo {
        outcome,
        field: Some(field),
        agreement,
        note,
        m,
        u,
        u_relative,
    }
}

use Agreement::{Disagree, Exact, Partial};
use MatchField as F;
use Outcome as O;

/// Every outcome, in [`Outcome`] order.
#[rustfmt::skip]
pub const OUTCOMES: [OutcomeInfo; 39] = [
    OutcomeInfo {
        outcome: O::Missing,
        field: None,
        agreement: Agreement::Missing,
        note: "not recorded on both",
        m: 1.0,
        u: 1.0,
        u_relative: 1.0,
    },
    // Given name. Observed (tuning seed): m 0.654 / 0.046 / 0.0002 / 0.004 /
    // 0.237 / 0.002 / 0 / 0.044 / 0.012; u 0.0012 / 0.0003 / 0.0015 /
    // 0.00002 / 0.0008 / 0.0021 / 0 / 0.000001 / 0.994. Going by the middle
    // name, sounding alike and initials are rare in the synthetic set and
    // keep small hand-set m; swapped names are over-represented there (2 in
    // 140 corruptions) and get 0.01.
    row(O::GivenExact, F::Given, Exact, "same", 0.654, 0.0012, 0.04),
    row(O::GivenNickname, F::Given, Partial, "nickname", 0.046, 0.0003, 0.005),
    row(O::GivenMiddle, F::Given, Partial, "goes by the middle name", 0.003, 0.0015, 0.005),
    row(O::GivenToken, F::Given, Partial, "one part of a compound name", 0.004, 0.00002, 0.005),
    row(O::GivenTypo, F::Given, Partial, "spelled slightly differently", 0.237, 0.0008, 0.02),
    row(O::GivenPhonetic, F::Given, Partial, "sounds alike", 0.005, 0.0021, 0.01),
    row(O::GivenInitial, F::Given, Partial, "initial matches", 0.003, 0.0005, 0.005),
    // Swapped given and family names always come together; each side's u is
    // set so that the two weigh what the joint event does (m 0.01, u 2e-6).
    row(O::GivenSwapped, F::Given, Partial, "given and family names swapped", 0.01, 0.00014, 0.0001),
    row(O::GivenDisagree, F::Given, Disagree, "different", 0.012, 0.994, 0.9),
    // Middle name, when both records have one. Observed: m 0.837 / 0.163 /
    // 0 / 0 (the generator drops or shortens middle names but never changes
    // them; 4% of real duplicates do, e.g. a maiden name as middle name);
    // u 0.0011 / 0.012 / 0.0025 / 0.984.
    row(O::MiddleExact, F::Middle, Exact, "same", 0.8, 0.0012, 0.1),
    row(O::MiddleInitial, F::Middle, Partial, "initial matches", 0.15, 0.012, 0.05),
    row(O::MiddleSimilar, F::Middle, Partial, "similar spelling, sound or nickname", 0.01, 0.0025, 0.02),
    row(O::MiddleDisagree, F::Middle, Disagree, "different", 0.04, 0.984, 0.83),
    // Family name. Observed: m 0.651 / 0.024 / 0.204 / 0.001 / 0.044 /
    // 0.076; u 0.0016 / 0.0003 / 0.00045 / 0.001 / 0.000001 / 0.997. Typos
    // are noise of a record, not of a relationship, so relatives show them
    // about as often as duplicates do (u_relative 0.15).
    row(O::FamilyExact, F::Family, Exact, "same", 0.65, 0.0016, 0.65),
    row(O::FamilyToken, F::Family, Partial, "one of the family names matches", 0.024, 0.0003, 0.03),
    row(O::FamilyTypo, F::Family, Partial, "spelled slightly differently", 0.2, 0.00044, 0.15),
    row(O::FamilyPhonetic, F::Family, Partial, "sounds alike", 0.003, 0.001, 0.01),
    row(O::FamilySwapped, F::Family, Partial, "given and family names swapped", 0.01, 0.00014, 0.0001),
    row(O::FamilyDisagree, F::Family, Disagree, "different (a new family name after marriage?)", 0.076, 0.997, 0.16),
    // Birth date. Observed: m 0.836 / 0.042 / 0.118 / 0.003 / 0.0015;
    // u 0.000032 / 0.000012 / 0.00098 / 0.011 / 0.988. A wholly different
    // date keeps m 0.003 (audits find such errors in under 1% of duplicates).
    row(O::BirthDateExact, F::BirthDate, Exact, "same", 0.83, 0.000031, 0.03),
    row(O::BirthDateSwapped, F::BirthDate, Partial, "day and month swapped", 0.04, 0.000012, 0.001),
    row(O::BirthDateTypo, F::BirthDate, Partial, "one digit differs", 0.12, 0.00098, 0.01),
    row(O::BirthDateSameYear, F::BirthDate, Disagree, "same year, different day", 0.005, 0.011, 0.02),
    row(O::BirthDateDisagree, F::BirthDate, Disagree, "different", 0.003, 0.988, 0.94),
    // Sex. Observed: m 1 / 0 (the generator never changes it); u 0.494 /
    // 0.506. One percent of true pairs differ (entry slips, updates).
    row(O::SexExact, F::Sex, Exact, "same", 0.99, 0.494, 0.5),
    row(O::SexDisagree, F::Sex, Disagree, "different", 0.01, 0.506, 0.5),
    // Phone. Observed: m 0.799 / 0.201; u 0.00016 / 0.99984 (high for
    // strangers: 100 fictional lines per area code; kept, see above).
    row(O::PhoneExact, F::Phone, Exact, "same number", 0.8, 0.00016, 0.5),
    row(O::PhoneDisagree, F::Phone, Disagree, "different", 0.2, 0.99984, 0.5),
    // Email. Observed: m 1 / 0 / 0 (the generator drops emails but never
    // changes them); u 0.0000007 / 0.0000005 / 0.999999. People do change
    // addresses, and strangers share placeholder ones ("none@…"), so m and
    // u are set by hand. The same local part at another provider is mostly
    // the same *name* (yesenia.ortiz@ at two providers are often two
    // Yesenia Ortizes): it adds little beyond the name fields, u 0.01.
    row(O::EmailExact, F::Email, Exact, "same", 0.8, 0.00001, 0.3),
    row(O::EmailLocalPart, F::Email, Partial, "same name, other provider", 0.03, 0.01, 0.01),
    row(O::EmailDisagree, F::Email, Disagree, "different", 0.17, 0.98999, 0.69),
    // Street line. Observed: m 0.770 / 0 / 0.230; u 0.000003 / 0.000002 /
    // 0.999995. The line leaves out the apartment, and unrelated people
    // share buildings and care homes, so u is raised to 1e-4 by hand.
    row(O::AddressExact, F::Address, Exact, "same", 0.77, 0.0001, 0.6),
    row(O::AddressSimilar, F::Address, Partial, "same number, street spelled differently", 0.03, 0.00001, 0.02),
    row(O::AddressDisagree, F::Address, Disagree, "different (moved?)", 0.2, 0.9999, 0.38),
    // Postal code when the street lines agree. Observed: m 1 / 0; u 0.43 /
    // 0.57 from only ~100 such stranger pairs (the same street address in
    // another city), taken as one half each.
    row(O::PostalCodeWithAddress, F::PostalCode, Exact, "same, counted with the address", 0.99, 0.5, 0.98),
    row(O::PostalCodeConflict, F::PostalCode, Disagree, "same street address in another postal code", 0.01, 0.5, 0.02),
    // Postal code when the street lines differ or one is missing. Observed:
    // m 0.003 / 0.997 (synthetic moves go to random cities; in life many
    // stay in their ZIP, hence 0.3), u 0.0007 / 0.9993.
    row(O::PostalCodeExact, F::PostalCode, Exact, "same", 0.3, 0.0007, 0.25),
    row(O::PostalCodeDisagree, F::PostalCode, Disagree, "different", 0.7, 0.9993, 0.75),
];

impl Outcome {
    pub fn info(self) -> &'static OutcomeInfo {
        &OUTCOMES[self as usize]
    }

    /// `log2(m / u)`: the weight against strangers, as shown to the user.
    pub fn weight(self) -> f64 {
        WEIGHTS[self as usize].0
    }

    /// `log2(m / u_relative)`: the weight against close relatives.
    pub fn weight_relative(self) -> f64 {
        WEIGHTS[self as usize].1
    }

    pub fn agreement(self) -> Agreement {
        self.info().agreement
    }

    pub fn note(self) -> &'static str {
        self.info().note
    }
}

/// Among strangers whose given names agree (the same name, a nickname of
/// it, one part of it, or the middle name used as given name), how often
/// the sex agrees. The table's `u` of [`Outcome::SexExact`] (one half) is
/// over all pairs of strangers; but most given names belong to one sex, so
/// among strangers who share one, the sex agreement is nearly certain and
/// adds almost nothing (observed 0.993 on the tuning seed; 0.97 allows for
/// the unisex names commoner in life than in the synthetic lists).
pub const SEX_AGREES_WITH_GIVEN_NAME: f64 = 0.97;

/// The same for given names spelled or sounding alike, which are more
/// often of the other sex (Mario and Maria, Julio and Julia, Mark and
/// Mary): observed 0.75 on the tuning seed.
pub const SEX_AGREES_WITH_SIMILAR_GIVEN_NAME: f64 = 0.75;

/// How much the weight of the sex outcome `sex` changes, in bits, when the
/// given names compared as `given`: with [`SEX_AGREES_WITH_GIVEN_NAME`] in
/// place of the table's `u`, so that a shared given name and the sex it
/// implies are not counted twice. 0 when the given names do not agree.
pub fn sex_given_name_adjustment(given: Outcome, sex: Outcome) -> f64 {
    let agrees = match given {
        Outcome::GivenExact
        | Outcome::GivenNickname
        | Outcome::GivenToken
        | Outcome::GivenMiddle => SEX_AGREES_WITH_GIVEN_NAME,
        Outcome::GivenTypo | Outcome::GivenPhonetic => SEX_AGREES_WITH_SIMILAR_GIVEN_NAME,
        _ => return 0.0,
    };
    let u = match sex {
        Outcome::SexExact => agrees,
        Outcome::SexDisagree => 1.0 - agrees,
        _ => return 0.0,
    };
    (sex.info().u / u).log2()
}

static WEIGHTS: LazyLock<[(f64, f64); OUTCOMES.len()]> =
    LazyLock::new(|| OUTCOMES.map(|o| ((o.m / o.u).log2(), (o.m / o.u_relative).log2())));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_consistent() {
        for (i, info) in OUTCOMES.iter().enumerate() {
            assert_eq!(info.outcome as usize, i, "{:?}", info.outcome);
            for p in [info.m, info.u, info.u_relative] {
                assert!(p > 0.0 && p <= 1.0, "{:?}", info.outcome);
            }
            let w = info.outcome.weight();
            let wr = info.outcome.weight_relative();
            match info.agreement {
                // A disagreement is never evidence *for* a match, against
                // either kind of non-match: adding one never raises a score.
                Agreement::Disagree => assert!(w <= 0.0 && wr <= 0.0, "{:?}", info.outcome),
                Agreement::Missing => assert!(w == 0.0 && wr == 0.0),
                _ => {}
            }
        }
        // Each field's m (without Missing) sums to about 1, and so does u.
        for field in MatchField::ALL {
            let rows: Vec<_> = OUTCOMES.iter().filter(|o| o.field == Some(field)).collect();
            let m: f64 = rows.iter().map(|o| o.m).sum();
            let u: f64 = rows.iter().map(|o| o.u).sum();
            if field == MatchField::PostalCode {
                continue; // Conditional on the address; see the rows.
            }
            assert!((m - 1.0).abs() < 0.06, "{field:?} m sums to {m}");
            assert!((u - 1.0).abs() < 0.06, "{field:?} u sums to {u}");
        }
    }
}
