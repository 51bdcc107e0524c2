//! Value-specific name weights: agreeing on a rare name is worth more than
//! agreeing on a common one.
//!
//! The table in [`super::weights`] gives one `u` per outcome: how often two
//! strangers agree on, say, the family name, averaged over all names. But
//! two strangers called Nguyen are far likelier in a clinic where every
//! tenth patient is a Nguyen than two strangers called Wojciechowski, and
//! what is common depends on the organization's patients. So when the
//! caller says how many of the organization's patients carry a name
//! ([`NameCounts`]: storage counts the `n:<folded name>` keys it indexes
//! every patient under), the `u` of an agreement on that name becomes the
//! name's share of those patients (frequency-based matching, as in Winkler's
//! and most master patient indexes' weight generation):
//!
//! ```text
//! share  = (count + PRIOR_PATIENTS × u) / (patients + PRIOR_PATIENTS)
//! weight = table weight + min(log2(u / share), MAX_RARE_BITS), at least 0
//! ```
//!
//! where `u` is the table's `u` of an exact agreement on that field.
//!
//! - The share is blended with the table's `u` as if [`PRIOR_PATIENTS`]
//!   more patients with names of average frequency had been seen: in a
//!   small clinic every name is rare or common by chance, and the table's
//!   weights stay.
//! - A common name lowers the weight without bound, but an agreement never
//!   counts against a match. A name rarer than the table's average raises
//!   it by at most [`MAX_RARE_BITS`], now 0: rare names keep the table's
//!   weight. Rarity in one organization is weak evidence: a count of one or
//!   two says little (a rare spelling is often a slip), and rare names
//!   cluster, so that a given name rare in the organization usually comes
//!   with a family name of the same origin, as rare, and the two fields
//!   would count one rarity twice (Hyun-woo Kang, Chukwuemeka Appiah). On
//!   the synthetic set, letting rare names raise weights by 2 bits found no
//!   more duplicates and added false matches, some graded certain (see
//!   `carefront_synth::duplicates`).
//! - Partial agreements (a typo, a nickname, one part of a compound name,
//!   the same sound, a similar middle name) use the share of the commoner
//!   of the two names (how easily a stranger comes that close) and move by
//!   as many bits as an exact agreement on that name. They need both
//!   names' counts; with one, the table's weight applies.
//! - A count includes the patients who carry the name as another part of
//!   theirs (a given name as a middle name, a family name as a given name):
//!   shares lean high and weights low, the safe direction.
//! - Only the comparison with strangers is value-specific: relatives share
//!   a family name whatever its frequency (see [`super`]), so twins and
//!   Jr/Sr stay as far from certain as before.
//!
//! This is what keeps precision as a panel grows: among 100,000 patients
//! the common names of a community are carried by dozens of strangers, and
//! an exact name with a birth date one digit off, or the same given name
//! and birth date under another family name, is then often a coincidence.
//! The figures are in `carefront_synth::duplicates`.
//!
//! Without counts (as in [`super::compare`]) the table's weights apply.

use super::Outcome;
use std::collections::HashMap;

/// Patients the table's average is worth, blended into an organization's own
/// name counts: below some thousands of patients the counts of one
/// organization are too few to say whether a name is rare.
pub const PRIOR_PATIENTS: f64 = 2_000.0;

/// The most a rare name raises a weight above the table's, in bits (see
/// the module documentation for why none).
pub const MAX_RARE_BITS: f64 = 0.0;

/// The most name counts can raise a total (three names, each by at most
/// [`MAX_RARE_BITS`]): a pair scoring below `lower - MAX_RAISE_BITS`
/// without counts cannot reach `lower` with them, so storage only counts
/// the names of candidates above that.
pub const MAX_RAISE_BITS: f64 = 3.0 * MAX_RARE_BITS;

/// How many of an organization's patients carry each name, for
/// value-specific weights. Fill `counts` for the keys of
/// [`PreparedRecord::name_keys`](super::PreparedRecord::name_keys) of the
/// records compared; a key that is absent counts 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameCounts {
    /// The organization's patients (the denominator of every share).
    pub patients: u64,
    /// Patients indexed under each `n:<folded name>` key.
    pub counts: HashMap<String, u64>,
}

impl NameCounts {
    /// The smoothed share of patients carrying the name indexed under `key`
    /// (see the module documentation), `u` being the table's probability
    /// that two strangers agree exactly on that field.
    pub(crate) fn share(&self, key: &str, u: f64) -> Option<f64> {
        if self.patients == 0 {
            return None;
        }
        let count = self.counts.get(key).copied().unwrap_or(0) as f64;
        Some((count + PRIOR_PATIENTS * u) / (self.patients as f64 + PRIOR_PATIENTS))
    }
}

/// The value-specific change of the weight of `outcome` (of the given,
/// middle or family name), in bits, for names whose shares are `a` and `b`
/// (`None`: not known); 0 when the outcome is not an agreement that depends
/// on the name's frequency.
pub(crate) fn adjustment(outcome: Outcome, exact: Outcome, a: Option<f64>, b: Option<f64>) -> f64 {
    use Outcome as O;
    let share = match outcome {
        // The same name: either side's count is its count.
        O::GivenExact | O::MiddleExact | O::FamilyExact => match (a, b) {
            (Some(x), Some(y)) => x.max(y),
            (x, y) => match x.or(y) {
                Some(s) => s,
                None => return 0.0,
            },
        },
        // Two names: the commoner one says how easily strangers agree.
        O::GivenNickname
        | O::GivenToken
        | O::GivenTypo
        | O::GivenPhonetic
        | O::MiddleSimilar
        | O::FamilyToken
        | O::FamilyTypo
        | O::FamilyPhonetic => match (a, b) {
            (Some(x), Some(y)) => x.max(y),
            _ => return 0.0,
        },
        _ => return 0.0,
    };
    let u = exact.info().u;
    (u / share).log2().min(MAX_RARE_BITS)
}
