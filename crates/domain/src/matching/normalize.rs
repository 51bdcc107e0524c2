//! Normalized forms of the fields the matcher compares, computed once per
//! record so that a comparison only looks at small prepared values.

use super::nicknames::{self, Groups};
use rphonetic::DoubleMetaphone;

/// Family-name particles that do not identify a family on their own: "De la
/// Cruz" and "Cruz", "Van Buren" and "Buren" share their significant part.
const PARTICLES: &[&str] = &[
    "al", "bin", "da", "das", "de", "del", "della", "dela", "delos", "den", "der", "di", "do",
    "dos", "du", "e", "el", "ibn", "la", "las", "le", "les", "los", "san", "santa", "st", "saint",
    "ter", "van", "von", "y",
];

/// A name folded for comparison: lower-case ASCII letters, accents folded
/// (José → jose), punctuation and spaces removed ("De la Cruz" → delacruz),
/// with its tokens, phonetic codes and nickname rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Name {
    /// All letters of the name, in order, with nothing between the words.
    pub joined: String,
    /// The words of the name (split at spaces, hyphens and other
    /// punctuation; apostrophes join: O'Brien is one word), without family
    /// particles when `family` was set and other words remain.
    pub tokens: Vec<String>,
    /// Double Metaphone primary and alternate codes of `joined`, four
    /// characters packed big-endian, 0 when there is none.
    pub phonetic: [u32; 2],
    /// Rows of the nickname table (given and middle names only).
    pub nick: Groups,
    /// How often each letter a–z occurs in `joined`: bounds Jaro–Winkler
    /// cheaply (see [`Name::may_be_similar`]).
    pub letters: [u8; 26],
    /// Hashes of `joined` and of each token, so that comparing two names
    /// that differ costs a few integer comparisons.
    pub hash: u64,
    pub token_hashes: Vec<u64>,
}

impl Name {
    pub fn new(raw: &str, family: bool) -> Option<Self> {
        let ascii = deunicode::deunicode(raw);
        let mut tokens: Vec<String> = Vec::new();
        let mut current = String::new();
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                current.push(c.to_ascii_lowercase());
            } else if c == '\'' || c == '`' || c == '\u{2019}' {
                // O'Brien, D'Angelo: one word.
            } else if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
        // Digits are not part of names ("John Smith 2" is a data entry slip).
        for t in &mut tokens {
            t.retain(|c| c.is_ascii_alphabetic());
        }
        tokens.retain(|t| !t.is_empty());
        if tokens.is_empty() {
            return None;
        }
        let joined: String = tokens.concat();
        if family && tokens.len() > 1 {
            let significant: Vec<String> = tokens
                .iter()
                .filter(|t| t.len() > 1 && !PARTICLES.contains(&t.as_str()))
                .cloned()
                .collect();
            if !significant.is_empty() {
                tokens = significant;
            }
        }
        let phonetic = phonetic_codes(&joined);
        let nick = if family {
            nicknames::NO_GROUPS
        } else {
            nicknames::groups(&joined)
        };
        let mut letters = [0u8; 26];
        for b in joined.bytes() {
            if b.is_ascii_lowercase() {
                let slot = &mut letters[usize::from(b - b'a')];
                *slot = slot.saturating_add(1);
            }
        }
        let token_hashes = tokens.iter().map(|t| hash(t)).collect();
        Some(Name {
            hash: hash(&joined),
            joined,
            tokens,
            phonetic,
            nick,
            letters,
            token_hashes,
        })
    }

    /// Whether `self` and `other` can have a Jaro–Winkler similarity of 0.9
    /// or more. Jaro counts at most as many matching characters as the two
    /// names have letters in common, so `(c/|a| + c/|b| + 1) / 3` bounds it,
    /// and the prefix bonus adds at most `0.4 × (1 − Jaro)`.
    pub fn may_be_similar(&self, other: &Name) -> bool {
        let common: u32 = self
            .letters
            .iter()
            .zip(&other.letters)
            .map(|(a, b)| u32::from(*a.min(b)))
            .sum();
        let (a, b) = (self.joined.len() as f64, other.joined.len() as f64);
        let c = f64::from(common);
        let jaro = (c / a + c / b + 1.0) / 3.0;
        0.6 * jaro + 0.4 >= 0.9 - 1e-9
    }

    /// The first letter, for initials.
    pub fn initial(&self) -> u8 {
        self.joined.as_bytes()[0]
    }

    pub fn is_initial(&self) -> bool {
        self.joined.len() == 1
    }
}

/// A 64-bit hash (SipHash with fixed keys). Two different names sharing
/// one is as likely as a cosmic ray; equal names always share it.
fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn phonetic_codes(joined: &str) -> [u32; 2] {
    // The encoder is a port of Apache commons-codec's Double Metaphone; it
    // only sees ASCII letters here, which it handles throughout.
    let result = DoubleMetaphone::default().double_metaphone(joined);
    [pack(&result.primary()), pack(&result.alternate())]
}

/// Up to four ASCII bytes, big-endian, so codes compare as integers.
fn pack(code: &str) -> u32 {
    let mut bytes = [0u8; 4];
    for (slot, b) in bytes.iter_mut().zip(code.bytes()) {
        *slot = b;
    }
    u32::from_be_bytes(bytes)
}

/// The letters of a packed code, for blocking keys.
pub(crate) fn unpack(code: u32) -> String {
    code.to_be_bytes()
        .iter()
        .filter(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect()
}

/// A birth date as numbers and as the eight digits of `YYYYMMDD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dob {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub digits: [u8; 8],
}

impl Dob {
    pub fn new(date: jiff::civil::Date) -> Self {
        let (year, month, day) = (date.year(), date.month(), date.day());
        let mut digits = [0u8; 8];
        let y = u32::try_from(year.max(0)).unwrap_or(0);
        let all =
            y * 10_000 + u32::try_from(month).unwrap_or(0) * 100 + u32::try_from(day).unwrap_or(0);
        for (i, d) in digits.iter_mut().enumerate() {
            *d = u8::try_from(all / 10u32.pow(7 - i as u32) % 10).unwrap_or(0);
        }
        Dob {
            year,
            month,
            day,
            digits,
        }
    }

    /// `YYYY-MM-DD`, as patient search keys dates.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYYDDMM` when that is another real date, for a record whose day
    /// and month were entered the wrong way round.
    pub fn swapped_key(&self) -> Option<String> {
        (self.day != self.month && self.day <= 12)
            .then(|| jiff::civil::Date::new(self.year, self.day, self.month).ok())
            .flatten()
            .map(|_| format!("{:04}{:02}{:02}", self.year, self.day, self.month))
    }
}

/// A street address line: lower-case ASCII words with the usual USPS
/// abbreviations ("123 North Main Street" → "123 n main st").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreetLine {
    pub normalized: String,
    /// Byte length of the house number at the start of `normalized`, 0 if
    /// the line does not start with one.
    pub number_len: usize,
}

const STREET_WORDS: &[(&str, &str)] = &[
    ("street", "st"),
    ("str", "st"),
    ("avenue", "ave"),
    ("av", "ave"),
    ("road", "rd"),
    ("drive", "dr"),
    ("lane", "ln"),
    ("boulevard", "blvd"),
    ("court", "ct"),
    ("place", "pl"),
    ("terrace", "ter"),
    ("parkway", "pkwy"),
    ("circle", "cir"),
    ("highway", "hwy"),
    ("square", "sq"),
    ("north", "n"),
    ("south", "s"),
    ("east", "e"),
    ("west", "w"),
    ("northeast", "ne"),
    ("northwest", "nw"),
    ("southeast", "se"),
    ("southwest", "sw"),
    ("apartment", "apt"),
    ("suite", "ste"),
];

impl StreetLine {
    pub fn new(raw: &str) -> Option<Self> {
        let ascii = deunicode::deunicode(raw).to_ascii_lowercase();
        let mut normalized = String::with_capacity(ascii.len());
        for word in ascii
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let word = STREET_WORDS
                .iter()
                .find(|(long, _)| *long == word)
                .map_or(word, |(_, short)| short);
            if !normalized.is_empty() {
                normalized.push(' ');
            }
            normalized.push_str(word);
        }
        if normalized.is_empty() {
            return None;
        }
        let first = normalized.split(' ').next().unwrap_or("");
        let number_len = if first.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            first.len()
        } else {
            0
        };
        Some(StreetLine {
            normalized,
            number_len,
        })
    }

    pub fn number(&self) -> &str {
        &self.normalized[..self.number_len]
    }

    pub fn street(&self) -> &str {
        self.normalized[self.number_len..].trim_start()
    }
}

/// Digits of a phone number as an integer. Ten-digit numbers are read as
/// NANP numbers (`+1` added), so "(212) 555-0123" and "+12125550123" agree.
pub(crate) fn phone(raw: &str) -> Option<u64> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let digits = if digits.len() == 10 {
        format!("1{digits}")
    } else {
        digits
    };
    if digits.len() < 7 || digits.len() > 15 {
        return None;
    }
    digits.parse().ok()
}

/// A trimmed, lower-cased email address (providers treat the local part
/// case-insensitively in practice) and the position of its `@`.
pub(crate) fn email(raw: &str) -> Option<(String, usize)> {
    let e = raw.trim().to_lowercase();
    let at = e.rfind('@')?;
    (at > 0 && at + 1 < e.len()).then_some((e, at))
}

/// Lower-case letters and digits; US ZIP+4 is cut to its five-digit ZIP.
pub(crate) fn postal(raw: &str) -> Option<String> {
    let mut p: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if p.len() == 9 && p.bytes().all(|b| b.is_ascii_digit()) {
        p.truncate(5);
    }
    (!p.is_empty()).then_some(p)
}

/// Whether `a` and `b` are at most one edit apart: one letter inserted,
/// deleted, substituted, or two adjacent letters transposed.
pub(crate) fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let Some(first) = short.iter().zip(long).position(|(x, y)| x != y) else {
                return true;
            };
            // Substitution at `first`, or transposition of `first, first + 1`.
            short[first + 1..] == long[first + 1..]
                || (first + 1 < short.len()
                    && short[first] == long[first + 1]
                    && short[first + 1] == long[first]
                    && short[first + 2..] == long[first + 2..])
        }
        1 => {
            let first = short
                .iter()
                .zip(long)
                .position(|(x, y)| x != y)
                .unwrap_or(short.len());
            short[first..] == long[first + 1..]
        }
        _ => false,
    }
}

/// Jaro–Winkler similarity of two normalized strings, computed in a fixed
/// argument order so that it is exactly symmetric.
///
/// Normalized values are ASCII, so this works on bytes with bit sets on the
/// stack instead of allocating per call as `strsim` does; the result is the
/// same as `strsim::jaro_winkler` (checked by a property test), which is
/// still used for values longer than 64 bytes.
pub(crate) fn jaro_winkler(a: &str, b: &str) -> f64 {
    // Jaro–Winkler cannot reach 0.9 when one string is less than half as
    // long as the other (Jaro ≤ (2 + short/long) / 3 < 5/6, and the prefix
    // bonus adds at most 0.4 × (1 − Jaro)), so skip the work. Callers only
    // ask whether it reaches 0.9 or more.
    let (short, long) = (a.len().min(b.len()), a.len().max(b.len()));
    if short * 2 < long {
        return 0.0;
    }
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    if long > 64 || !x.is_ascii() || !y.is_ascii() {
        return strsim::jaro_winkler(x, y);
    }
    let sim = jaro_ascii(x.as_bytes(), y.as_bytes());
    if sim > 0.7 {
        let prefix = x
            .bytes()
            .zip(y.bytes())
            .take(4)
            .take_while(|(p, q)| p == q)
            .count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

/// Jaro similarity of two byte strings of at most 64 bytes.
fn jaro_ascii(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let range = (a.len().max(b.len()) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = (i + range + 1).min(b.len());
        for (j, &d) in b.iter().enumerate().take(hi).skip(lo) {
            if c == d && b_flags & (1 << j) == 0 {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, &c) in a.iter().enumerate() {
        if a_flags & (1 << i) == 0 {
            continue;
        }
        while b_flags & (1 << j) == 0 {
            j += 1;
        }
        if c != b[j] {
            transpositions += 1;
        }
        j += 1;
    }
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (matches - transpositions / 2) as f64 / m) / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold() {
        let n = Name::new("José", false).unwrap();
        assert_eq!(n.joined, "jose");
        let n = Name::new("De la Cruz", true).unwrap();
        assert_eq!(n.joined, "delacruz");
        assert_eq!(n.tokens, ["cruz"]);
        let n = Name::new("García-López", true).unwrap();
        assert_eq!(n.joined, "garcialopez");
        assert_eq!(n.tokens, ["garcia", "lopez"]);
        let n = Name::new("O'Brien", true).unwrap();
        assert_eq!(n.joined, "obrien");
        assert_eq!(n.tokens, ["obrien"]);
        assert_eq!(Name::new("MÜLLER", true).unwrap().joined, "muller");
        assert_eq!(Name::new("Søren", false).unwrap().joined, "soren");
        assert_eq!(Name::new("Małgorzata", false).unwrap().joined, "malgorzata");
        assert!(Name::new(" - ", false).is_none());
        // Non-Latin scripts are transliterated rather than dropped.
        assert!(!Name::new("李", true).unwrap().joined.is_empty());
    }

    #[test]
    fn phonetic_codes_match_sounds() {
        let code = |s: &str| Name::new(s, true).unwrap().phonetic;
        assert_eq!(code("Smith")[0], code("Smyth")[0]);
        assert_eq!(unpack(code("Smith")[0]), "SM0");
        assert_ne!(code("Smith")[0], code("Jones")[0]);
    }

    #[test]
    fn one_edit() {
        let e = |a: &str, b: &str| within_one_edit(a.as_bytes(), b.as_bytes());
        assert!(e("robert", "robert"));
        assert!(e("robert", "robbert"), "insert");
        assert!(e("robert", "rober"), "delete");
        assert!(e("robert", "rovert"), "substitute");
        assert!(e("robert", "orbert"), "transpose");
        assert!(e("robert", "robetr"), "transpose at the end");
        assert!(!e("robert", "rboetr"));
        assert!(!e("robert", "bob"));
        assert!(!e("ab", "ba c"));
    }

    #[test]
    fn dates_streets_contacts() {
        let d = Dob::new(jiff::civil::date(1985, 3, 12));
        assert_eq!(d.digits, [1, 9, 8, 5, 0, 3, 1, 2]);
        assert_eq!(d.iso(), "1985-03-12");
        assert_eq!(d.swapped_key().as_deref(), Some("19851203"));
        assert_eq!(Dob::new(jiff::civil::date(1985, 3, 13)).swapped_key(), None);
        assert_eq!(Dob::new(jiff::civil::date(1985, 3, 3)).swapped_key(), None);

        let s = StreetLine::new("123 North Main Street.").unwrap();
        assert_eq!(s.normalized, "123 n main st");
        assert_eq!(s.number(), "123");
        assert_eq!(s.street(), "n main st");
        assert_eq!(StreetLine::new("PO Box 7").unwrap().number(), "");

        assert_eq!(phone("(212) 555-0123"), phone("+1 212 555 0123"));
        assert_eq!(phone("12"), None);
        assert_eq!(
            email(" Ana@Example.COM ").unwrap(),
            ("ana@example.com".into(), 3)
        );
        assert_eq!(email("nope"), None);
        assert_eq!(postal("10001-2345").as_deref(), Some("10001"));
        assert_eq!(postal("SW1A 1AA").as_deref(), Some("sw1a1aa"));
    }
}
