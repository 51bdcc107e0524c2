//! Understanding what the front desk types in the one search box: names in
//! any order ("smi jo", "Smith, John"), dates of birth in common formats,
//! phones in any format, MRNs and emails; and ranking the patients found.

use crate::matching::{MatchRecord, blocking_keys};
use crate::patient::Patient;
use crate::text::{fold, name_tokens};
use jiff::civil::Date;

/// MRNs are stored zero-padded to this width.
pub const MRN_WIDTH: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientQuery {
    /// Folded name fragments in the order typed; each must begin some part
    /// of the patient's name.
    pub names: Vec<String>,
    /// "Family, Given": the first fragment is the family name.
    pub family_first: bool,
    pub birth_date: Option<Date>,
    /// National significant digits (10 for US numbers).
    pub phone: Option<String>,
    pub mrn: Option<String>,
    pub email: Option<String>,
}

impl PatientQuery {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.birth_date.is_none()
            && self.phone.is_none()
            && self.mrn.is_none()
            && self.email.is_none()
    }
}

/// Reads a search. `today` resolves two-digit years: a date of birth is never
/// in the future, so `3-14-62` is 1962 and `3-14-19` is 2019.
pub fn parse(input: &str, today: Date) -> PatientQuery {
    let mut q = PatientQuery::default();
    let mut phone_digits = String::new();
    let mut phone_punctuated = false;
    let comma = input.find(',');
    let mut before_comma_names = 0;
    for (start, raw) in split_with_offsets(input) {
        let token = raw.trim_matches(|c: char| c == ',' || c == ';');
        if token.is_empty() {
            continue;
        }
        if token.contains('@') {
            q.email = Some(token.to_lowercase());
        } else if let Some(date) = parse_date(token, today) {
            q.birth_date = Some(date);
        } else if token
            .chars()
            .all(|c| c.is_ascii_digit() || "()+-.".contains(c))
        {
            phone_punctuated |= token.chars().any(|c| !c.is_ascii_digit());
            phone_digits.extend(token.chars().filter(char::is_ascii_digit));
        } else {
            // A compound name typed whole searches by its run-together form.
            let term = fold_term(token);
            if !term.is_empty() {
                if comma.is_some_and(|c| start < c) {
                    before_comma_names += 1;
                }
                q.names.push(term);
            }
        }
    }
    q.family_first = comma.is_some() && before_comma_names > 0;
    if !phone_digits.is_empty() {
        let digits = match phone_digits.len() {
            11 if phone_digits.starts_with('1') => phone_digits[1..].to_string(),
            _ => phone_digits.clone(),
        };
        if digits.len() >= 7 {
            q.phone = Some(digits);
        }
        if !phone_punctuated && phone_digits.len() <= MRN_WIDTH {
            q.mrn = Some(format!("{phone_digits:0>MRN_WIDTH$}"));
        }
    }
    q
}

fn split_with_offsets(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split_whitespace()
        .map(move |t| (t.as_ptr() as usize - s.as_ptr() as usize, t))
}

/// `03/14/1962`, `3/14/62`, `3-14-62`, `03.14.1962`, `1962-03-14`.
pub fn parse_date(token: &str, today: Date) -> Option<Date> {
    let parts: Vec<&str> = token.split(['/', '-', '.']).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let num = |s: &str| s.parse::<i32>().ok();
    let (year, month, day) = if parts[0].len() == 4 {
        (num(parts[0])?, num(parts[1])?, num(parts[2])?)
    } else {
        let y = num(parts[2])?;
        let year = match parts[2].len() {
            4 => y,
            2 => {
                let century = i32::from(today.year()) / 100 * 100;
                if century + y > i32::from(today.year()) {
                    century - 100 + y
                } else {
                    century + y
                }
            }
            _ => return None,
        };
        (year, num(parts[0])?, num(parts[1])?)
    };
    Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()
}

/// What the ranking needs to know about one patient.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub given: &'a str,
    pub middle: Option<&'a str>,
    pub family: &'a str,
    pub preferred: Option<&'a str>,
    pub birth_date: Date,
    /// E.164.
    pub phones: &'a [String],
    pub mrn: &'a str,
    /// MRNs of records merged into this one.
    pub former_mrns: &'a [String],
    pub email: Option<&'a str>,
}

/// How well a patient fits a query, higher is better; `None` when some part
/// of the query does not fit at all. Every name fragment must begin a part of
/// the name; a date of birth, phone or email typed must agree; digits that
/// could be an MRN or a phone need to agree with either.
pub fn rank(q: &PatientQuery, c: &Candidate<'_>) -> Option<u32> {
    let mut score = 0u32;
    let family = name_tokens(c.family);
    let given = name_tokens(c.given);
    let others: Vec<String> = c
        .middle
        .into_iter()
        .chain(c.preferred)
        .flat_map(name_tokens)
        .collect();
    for (i, fragment) in q.names.iter().enumerate() {
        let fit = |tokens: &[String], exact: u32, prefix: u32| {
            if tokens.iter().any(|t| t == fragment) {
                Some(exact)
            } else if tokens.iter().any(|t| t.starts_with(fragment.as_str())) {
                Some(prefix)
            } else {
                None
            }
        };
        let as_family = fit(&family, 30, 20);
        let as_given = fit(&given, 25, 15);
        let best = as_family.max(as_given).or_else(|| fit(&others, 10, 5))?;
        // "Family, Given": reward the fragment typed as the family name.
        let order_bonus = if q.family_first && i == 0 && as_family.is_some() {
            10
        } else {
            0
        };
        score += best + order_bonus;
    }
    if let Some(d) = q.birth_date {
        if d != c.birth_date {
            return None;
        }
        score += 40;
    }
    if let Some(email) = &q.email {
        if !c.email.is_some_and(|e| e.eq_ignore_ascii_case(email)) {
            return None;
        }
        score += 60;
    }
    let mrn_fits = q
        .mrn
        .as_deref()
        .is_some_and(|m| m == c.mrn || c.former_mrns.iter().any(|f| f == m));
    let phone_fits = q
        .phone
        .as_deref()
        .is_some_and(|digits| c.phones.iter().any(|p| p.ends_with(digits)));
    match (q.mrn.is_some(), q.phone.is_some()) {
        (false, false) => {}
        _ if mrn_fits => score += 100,
        _ if phone_fits => score += 40,
        _ => return None,
    }
    Some(score)
}

/// The version of the rules in [`index_keys`] (and the matching engine's
/// blocking keys it includes): raise it whenever they change, so stored keys
/// are rebuilt. 2: pair keys carry the whole family and given name. 3: the
/// blocking keys for birth date, phone and email are the search keys. 4: a
/// household key (`ad:`) for each of a patient's first three addresses.
pub const INDEX_KEYS_VERSION: i64 = 4;

/// The keys a patient is stored under (the store keeps them in its
/// `search_keys` index): name parts (`n:`), family/given pairs (`fg:`, led
/// by short prefixes so "smi jo" needs no scan of every "jo…", then the
/// whole names so "smith john" reads only John Smiths), date of birth (`d:`),
/// phone digits (`p:` ten digits, `p7:` the last seven), email (`e:`),
/// external identifiers (`i:`) and the duplicate-detection blocking keys.
pub fn index_keys(p: &Patient) -> Vec<String> {
    let given: Vec<String> = name_tokens(&p.given)
        .into_iter()
        .chain(p.preferred_name.iter().flat_map(|n| name_tokens(n)))
        .collect();
    let family = name_tokens(&p.family);
    let mut keys: Vec<String> = given
        .iter()
        .chain(&family)
        .chain(
            &p.middle
                .iter()
                .flat_map(|m| name_tokens(m))
                .collect::<Vec<_>>(),
        )
        .map(|t| format!("n:{t}"))
        .collect();
    for f in family.iter().filter(|f| f.len() >= PAIR_FAMILY) {
        for g in given.iter().filter(|g| g.len() >= PAIR_GIVEN) {
            keys.push(pair_key(f, g));
        }
    }
    keys.push(format!("d:{}", p.birth_date));
    if !p.mrn.is_empty() {
        keys.push(format!("m:{}", p.mrn));
    }
    for phone in &p.phones {
        let digits: String = phone.number.chars().filter(char::is_ascii_digit).collect();
        let national = national_digits(&digits);
        keys.push(format!("p:{national}"));
        if national.len() >= 7 {
            keys.push(format!("p7:{}", &national[national.len() - 7..]));
        }
    }
    if let Some(e) = &p.email {
        keys.push(format!("e:{}", e.to_lowercase()));
    }
    for id in &p.identifiers {
        keys.push(format!("i:{}|{}", id.system, id.value));
        // A merged-in record's MRN still finds the survivor.
        if id.system == crate::mpi::MRN_SYSTEM {
            keys.push(format!("m:{}", id.value));
        }
    }
    keys.extend(blocking_keys(&MatchRecord::from(p)));
    keys.sort();
    keys.dedup();
    keys
}

const PAIR_FAMILY: usize = 3;
const PAIR_GIVEN: usize = 2;

/// `fg:smi|jo|smith|john`: every query of a family fragment (3 letters or
/// more) and a given fragment (2 or more) reads one contiguous range.
fn pair_key(family: &str, given: &str) -> String {
    format!(
        "fg:{}|{}|{family}|{given}",
        &family[..PAIR_FAMILY],
        &given[..PAIR_GIVEN]
    )
}

/// The range of pair keys of family names starting with `family` and given
/// names starting with `given`; `exact_family` closes the family name.
fn pair_prefix(family: &str, given: &str, exact_family: bool) -> String {
    let head = format!(
        "fg:{}|{}|{family}",
        &family[..PAIR_FAMILY],
        &given[..PAIR_GIVEN]
    );
    if exact_family {
        format!("{head}|{given}")
    } else {
        head
    }
}

/// US numbers without the leading country code 1.
pub(crate) fn national_digits(digits: &str) -> &str {
    match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        _ => digits,
    }
}

/// How to find a query's candidates in the key index: the most selective
/// lookups the query allows, the narrowest first (the store reads them in
/// order until it has enough candidates). Candidates are then ranked with
/// [`rank`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Records having any of these keys.
    Keys(Vec<String>),
    /// Records having a key that starts with this.
    Prefix(String),
}

pub fn lookups(q: &PatientQuery) -> Vec<Lookup> {
    let mut found = Vec::new();
    if let Some(m) = &q.mrn {
        found.push(Lookup::Keys(vec![format!("m:{m}")]));
    }
    if let Some(e) = &q.email {
        found.push(Lookup::Keys(vec![format!("e:{e}")]));
    } else if let Some(d) = q.birth_date {
        found.push(Lookup::Keys(vec![format!("d:{d}")]));
    } else if let Some(p) = &q.phone {
        let key = if p.len() == 7 {
            format!("p7:{p}")
        } else {
            format!("p:{p}")
        };
        found.push(Lookup::Keys(vec![key]));
    } else if let Some(pairs) = pair_lookups(&q.names, q.family_first) {
        found.extend(pairs);
    } else if let Some(longest) = q.names.iter().max_by_key(|n| n.len()) {
        found.push(Lookup::Prefix(format!("n:{longest}")));
    }
    found
}

/// Pair ranges for the first two name fragments, in both orders unless the
/// query said which is the family name: first with the family fragment as
/// the whole family name ("smith john" is John Smith before John Smithers),
/// then as its beginning.
fn pair_lookups(names: &[String], family_first: bool) -> Option<Vec<Lookup>> {
    let [a, b, ..] = names else { return None };
    let mut orders = Vec::new();
    if a.len() >= PAIR_FAMILY && b.len() >= PAIR_GIVEN {
        orders.push((a, b));
    }
    if !family_first && b.len() >= PAIR_FAMILY && a.len() >= PAIR_GIVEN {
        orders.push((b, a));
    }
    let found: Vec<Lookup> = [true, false]
        .into_iter()
        .flat_map(|exact| {
            orders
                .iter()
                .map(move |(f, g)| Lookup::Prefix(pair_prefix(f, g, exact)))
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// Folds free text the way names are indexed.
pub fn fold_term(s: &str) -> String {
    fold(s).replace(['\'', ' ', '-'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn today() -> Date {
        date(2026, 11, 23)
    }

    #[test]
    fn names_in_any_order_and_family_comma_given() {
        let q = parse("smi jo", today());
        assert_eq!(q.names, vec!["smi", "jo"]);
        assert!(!q.family_first);
        let q = parse("Smith, John", today());
        assert_eq!(q.names, vec!["smith", "john"]);
        assert!(q.family_first);
        let q = parse("García-López", today());
        assert_eq!(q.names, vec!["garcialopez"]);
    }

    #[test]
    fn dates_of_birth_in_common_formats() {
        for typed in [
            "03/14/1962",
            "1962-03-14",
            "3-14-62",
            "3/14/62",
            "03.14.1962",
        ] {
            assert_eq!(
                parse(typed, today()).birth_date,
                Some(date(1962, 3, 14)),
                "{typed}"
            );
        }
        assert_eq!(
            parse("3/14/19", today()).birth_date,
            Some(date(2019, 3, 14))
        );
        assert_eq!(parse("2/30/1962", today()).birth_date, None);
    }

    #[test]
    fn phones_in_any_format_and_mrns() {
        for typed in [
            "(212) 555-0123",
            "212-555-0123",
            "+1 212 555 0123",
            "2125550123",
            "212.555.0123",
        ] {
            let q = parse(typed, today());
            assert_eq!(q.phone.as_deref(), Some("2125550123"), "{typed}");
        }
        let q = parse("1234", today());
        assert_eq!(q.mrn.as_deref(), Some("00001234"));
        assert_eq!(q.phone, None);
        let q = parse("5550123", today());
        assert_eq!(q.mrn.as_deref(), Some("05550123"));
        assert_eq!(q.phone.as_deref(), Some("5550123"));
        assert_eq!(
            parse("Ana@Example.com", today()).email.as_deref(),
            Some("ana@example.com")
        );
    }

    fn candidate<'a>(phones: &'a [String]) -> Candidate<'a> {
        Candidate {
            given: "John",
            middle: Some("Paul"),
            family: "Smith",
            preferred: Some("Jack"),
            birth_date: date(1962, 3, 14),
            phones,
            mrn: "00000042",
            former_mrns: &[],
            email: Some("jsmith@example.com"),
        }
    }

    #[test]
    fn lookups_pick_the_most_selective_key() {
        let prefixes = |q: &str| -> Vec<String> {
            lookups(&parse(q, today()))
                .into_iter()
                .map(|l| match l {
                    Lookup::Prefix(p) => p,
                    Lookup::Keys(k) => panic!("{q}: keys {k:?}"),
                })
                .collect()
        };
        assert_eq!(prefixes("smi jo"), ["fg:smi|jo|smi|jo", "fg:smi|jo|smi"]);
        assert_eq!(
            prefixes("Smith, John"),
            ["fg:smi|jo|smith|john", "fg:smi|jo|smith"]
        );
        assert_eq!(
            prefixes("john smith"),
            [
                "fg:joh|sm|john|smith",
                "fg:smi|jo|smith|john",
                "fg:joh|sm|john",
                "fg:smi|jo|smith"
            ]
        );
        assert_eq!(
            prefixes("jo smith"),
            ["fg:smi|jo|smith|jo", "fg:smi|jo|smith"]
        );
        assert_eq!(
            lookups(&parse("smith 3/14/62", today())),
            vec![Lookup::Keys(vec!["d:1962-03-14".into()])]
        );
        assert_eq!(
            lookups(&parse("smith", today())),
            vec![Lookup::Prefix("n:smith".into())]
        );
        assert_eq!(
            lookups(&parse("5550123", today())),
            vec![
                Lookup::Keys(vec!["m:05550123".into()]),
                Lookup::Keys(vec!["p7:5550123".into()])
            ]
        );
    }

    #[test]
    fn a_patient_is_indexed_under_what_the_desk_types() {
        use crate::directory::AdministrativeGender;
        use crate::patient::{Phone, PhoneKind};
        let p = Patient {
            mrn: "00000042".into(),
            given: "John".into(),
            middle: None,
            family: "Smith-Jones".into(),
            suffix: None,
            preferred_name: Some("Jack".into()),
            birth_date: date(1962, 3, 14),
            sex: AdministrativeGender::Male,
            gender_identity: None,
            pronouns: None,
            addresses: vec![],
            phones: vec![Phone {
                number: "+12125550123".into(),
                kind: PhoneKind::Mobile,
                sms_consent: false,
            }],
            email: Some("js@example.com".into()),
            language: None,
            interpreter_needed: false,
            preferred_contact: None,
            contacts: vec![],
            alerts: vec![],
            identifiers: vec![],
            active: true,
            replaced_by: None,
        };
        let keys = index_keys(&p);
        for k in [
            "n:john",
            "n:jack",
            "n:smith",
            "n:jones",
            "n:smithjones",
            "fg:smi|jo|smith|john",
            "fg:jon|ja|jones|jack",
            "d:1962-03-14",
            "m:00000042",
            "p:2125550123",
            "p7:5550123",
            "e:js@example.com",
        ] {
            assert!(keys.contains(&k.to_string()), "missing {k} in {keys:?}");
        }
        // Duplicate detection's blocking keys reuse the search keys: each
        // phone, email and birth date is stored once.
        for value in ["2125550123", "js@example.com", "1962-03-14"] {
            let holding: Vec<_> = keys.iter().filter(|k| k.contains(value)).collect();
            assert_eq!(holding.len(), 1, "{value} in {holding:?}");
        }
        for query in [
            "smi jo",
            "Jones, Jack",
            "(212) 555-0123",
            "3/14/1962",
            "42",
            "js@example.com",
        ] {
            let q = parse(query, today());
            let reachable = lookups(&q).iter().any(|l| match l {
                Lookup::Keys(ks) => ks.iter().any(|k| keys.contains(k)),
                Lookup::Prefix(pre) => keys.iter().any(|k| k.starts_with(pre.as_str())),
            });
            assert!(reachable, "{query} cannot reach the patient");
        }
    }

    #[test]
    fn ranking_requires_every_part_and_prefers_exact_names() {
        let phones = vec!["+12125550123".to_string()];
        let c = candidate(&phones);
        let exact = rank(&parse("smith john", today()), &c).unwrap();
        let prefix = rank(&parse("smi jo", today()), &c).unwrap();
        assert!(exact > prefix);
        assert!(rank(&parse("jo smi", today()), &c).is_some());
        assert!(rank(&parse("jack", today()), &c).is_some());
        assert!(rank(&parse("smith mary", today()), &c).is_none());
        assert!(rank(&parse("smith 1/1/1970", today()), &c).is_none());
        assert!(rank(&parse("smith 3/14/62", today()), &c).is_some());
        assert!(rank(&parse("(212) 555-0123", today()), &c).is_some());
        assert!(rank(&parse("42", today()), &c).is_some());
        assert!(rank(&parse("43", today()), &c).is_none());
    }
}
