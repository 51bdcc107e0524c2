use super::*;
use jiff::civil::date;
use proptest::prelude::*;

fn person(given: &str, family: &str, birth: jiff::civil::Date) -> MatchRecord {
    MatchRecord {
        given: given.into(),
        family: family.into(),
        birth_date: Some(birth),
        ..MatchRecord::default()
    }
}

/// A fully recorded adult at a household, for variations.
fn robert() -> MatchRecord {
    MatchRecord {
        given: "Robert".into(),
        middle: Some("James".into()),
        family: "Smith".into(),
        birth_date: Some(date(1980, 3, 12)),
        sex: Some(AdministrativeGender::Male),
        phones: vec!["+12125550123".into()],
        email: Some("rsmith80@example.com".into()),
        addresses: at("123 Main St", "10001"),
    }
}

/// One address: street line and postal code.
fn at(line: &str, postal: &str) -> Vec<MatchAddress> {
    vec![MatchAddress {
        line: Some(line.into()).filter(|l: &String| !l.is_empty()),
        postal_code: Some(postal.into()).filter(|p: &String| !p.is_empty()),
    }]
}

fn outcome(s: &MatchScore, f: MatchField) -> Outcome {
    s.field(f).outcome
}

#[test]
fn nickname_is_partial_and_still_certain() {
    let bob = MatchRecord {
        given: "Bob".into(),
        ..robert()
    };
    let s = compare(&robert(), &bob);
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenNickname);
    assert_eq!(s.field(MatchField::Given).agreement, Agreement::Partial);
    assert_eq!(s.field(MatchField::Given).note, "nickname");
    assert_eq!(s.grade, MatchGrade::Certain, "{s:?}");
    for (a, b) in [
        ("Peggy", "Margaret"),
        ("Bill", "William"),
        ("Pepe", "José"),
        ("Lupe", "Guadalupe"),
        ("Chuy", "Jesús"),
    ] {
        let s = compare(
            &person(a, "Ruiz", date(1970, 1, 2)),
            &person(b, "Ruiz", date(1970, 1, 2)),
        );
        assert_eq!(
            outcome(&s, MatchField::Given),
            Outcome::GivenNickname,
            "{a}/{b}"
        );
        assert!(s.total >= Thresholds::DEFAULT.lower, "{a}/{b}: {}", s.total);
    }
}

#[test]
fn swapped_day_and_month() {
    let swapped = MatchRecord {
        birth_date: Some(date(1980, 12, 3)),
        ..robert()
    };
    let s = compare(&robert(), &swapped);
    assert_eq!(
        outcome(&s, MatchField::BirthDate),
        Outcome::BirthDateSwapped
    );
    assert_eq!(s.field(MatchField::BirthDate).note, "day and month swapped");
    assert_eq!(s.grade, MatchGrade::Certain);
    // The same with only name and date: still shown.
    let s = compare(
        &person("Ana", "Rivera", date(1990, 4, 7)),
        &person("Ana", "Rivera", date(1990, 7, 4)),
    );
    assert!(s.total >= Thresholds::DEFAULT.lower, "{}", s.total);
    // One digit off and two digits transposed are typos.
    for other in [
        date(1980, 3, 13),
        date(1980, 3, 21),
        date(1908, 3, 12),
        date(1980, 8, 12),
    ] {
        let s = compare(
            &robert(),
            &MatchRecord {
                birth_date: Some(other),
                ..robert()
            },
        );
        assert_eq!(
            outcome(&s, MatchField::BirthDate),
            Outcome::BirthDateTypo,
            "{other}"
        );
    }
    let s = compare(
        &robert(),
        &MatchRecord {
            birth_date: Some(date(1980, 7, 30)),
            ..robert()
        },
    );
    assert_eq!(
        outcome(&s, MatchField::BirthDate),
        Outcome::BirthDateSameYear
    );
}

#[test]
fn married_name_with_a_move_is_shown() {
    let maria = MatchRecord {
        given: "María".into(),
        middle: None,
        family: "Hernández".into(),
        birth_date: Some(date(1988, 5, 20)),
        sex: Some(AdministrativeGender::Female),
        phones: vec!["+13055550111".into()],
        email: None,
        addresses: at("77 Palm Ave", "33125"),
    };
    let married = MatchRecord {
        family: "Okafor".into(),
        phones: vec!["+14045550177".into()],
        addresses: at("9 Peachtree Rd", "30303"),
        ..maria.clone()
    };
    let s = compare(&maria, &married);
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyDisagree);
    assert!(
        s.total >= Thresholds::DEFAULT.lower && s.grade != MatchGrade::Certain,
        "shown, for the specialist to decide: {s:?}"
    );
    // Hyphenated with the old name: one family name matches.
    let hyphenated = MatchRecord {
        family: "Hernández-Okafor".into(),
        ..maria.clone()
    };
    let s = compare(&maria, &hyphenated);
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyToken);
    assert_eq!(s.grade, MatchGrade::Certain);
    // The blocking keys bring them together through the birth date.
    let keys = blocking_keys(&married);
    assert!(blocking_keys(&maria).iter().any(|k| keys.contains(k)));
}

#[test]
fn twins_are_never_certain() {
    let twin = MatchRecord {
        given: "Michael".into(),
        middle: Some("Paul".into()),
        email: None,
        ..robert()
    };
    let s = compare(&robert(), &twin);
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenDisagree);
    assert!(s.total < Thresholds::DEFAULT.lower, "not even shown: {s:?}");
    assert!(s.relatives_adjustment < -20.0);
    // Without middle names or email, and of either sex.
    for sex in [AdministrativeGender::Male, AdministrativeGender::Female] {
        let a = MatchRecord {
            middle: None,
            email: None,
            ..robert()
        };
        let b = MatchRecord {
            given: "Olivia".into(),
            sex: Some(sex),
            ..a.clone()
        };
        let s = compare(&a, &b);
        assert!(s.total < Thresholds::DEFAULT.lower, "{sex:?}: {}", s.total);
        assert_ne!(s.grade, MatchGrade::Certain);
    }
    // Twins with names a letter apart (Ella and Emma) are not certain.
    let ella = MatchRecord {
        given: "Ella".into(),
        middle: None,
        email: None,
        sex: Some(AdministrativeGender::Female),
        ..robert()
    };
    let emma = MatchRecord {
        given: "Emma".into(),
        ..ella.clone()
    };
    assert_ne!(compare(&ella, &emma).grade, MatchGrade::Certain);
}

#[test]
fn junior_and_senior_are_not_shown() {
    let junior = MatchRecord {
        birth_date: Some(date(2008, 9, 30)),
        email: Some("bobby.smith@example.org".into()),
        ..robert()
    };
    let s = compare(&robert(), &junior);
    assert_eq!(
        outcome(&s, MatchField::BirthDate),
        Outcome::BirthDateDisagree
    );
    assert!(s.total < Thresholds::DEFAULT.lower, "{s:?}");
}

#[test]
fn accents_case_punctuation_and_compound_names() {
    let s = compare(
        &person("José", "García-López", date(1975, 6, 1)),
        &person("JOSE", "garcia lopez", date(1975, 6, 1)),
    );
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenExact);
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyExact);
    let s = compare(
        &person("Ana", "De la Cruz", date(1975, 6, 1)),
        &person("Ana", "Delacruz", date(1975, 6, 1)),
    );
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyExact);
    let s = compare(
        &person("Ana", "De la Cruz", date(1975, 6, 1)),
        &person("Ana", "Cruz", date(1975, 6, 1)),
    );
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyToken);
    let s = compare(
        &person("Ana", "García-López", date(1975, 6, 1)),
        &person("Ana", "Garcia", date(1975, 6, 1)),
    );
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyToken);
    assert_eq!(s.grade, MatchGrade::Certain, "{s:?}");
    let s = compare(
        &person("Sean", "O'Brien", date(1975, 6, 1)),
        &person("Seán", "OBRIEN", date(1975, 6, 1)),
    );
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenExact);
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyExact);
}

#[test]
fn typos_sounds_initials_and_swaps() {
    let born = date(1966, 2, 2);
    let level = |a: &str, b: &str| {
        outcome(
            &compare(&person(a, "Lee", born), &person(b, "Lee", born)),
            MatchField::Given,
        )
    };
    assert_eq!(level("Jonathan", "Jonathon"), Outcome::GivenTypo);
    assert_eq!(level("Jonathan", "Jnoathan"), Outcome::GivenTypo);
    assert_eq!(level("Catherine", "Kathryn"), Outcome::GivenPhonetic);
    assert_eq!(level("J", "John"), Outcome::GivenInitial);
    assert_eq!(level("Mary Ann", "Mary"), Outcome::GivenToken);
    assert_eq!(level("Oliver", "Henry"), Outcome::GivenDisagree);
    assert_eq!(
        level("Irina", "Journee"),
        Outcome::GivenDisagree,
        "alternate codes alone"
    );
    let s = compare(
        &person("Anna", "Schmidt", born),
        &person("Anna", "Smith", born),
    );
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyPhonetic);

    let s = compare(
        &person("Thanh", "Nguyen", born),
        &person("Nguyen", "Thanh", born),
    );
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenSwapped);
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilySwapped);
    assert!(s.total >= Thresholds::DEFAULT.lower);

    let s = compare(
        &person("Smith", "Smyth", born),
        &person("Smith", "Smith", born),
    );
    assert_eq!(outcome(&s, MatchField::Family), Outcome::FamilyTypo);

    // Someone who goes by the middle name.
    let formal = MatchRecord {
        given: "J".into(),
        middle: Some("Robert".into()),
        ..person("", "Smith", born)
    };
    let s = compare(&formal, &person("Bob", "Smith", born));
    assert_eq!(outcome(&s, MatchField::Given), Outcome::GivenMiddle);

    let a = MatchRecord {
        middle: Some("Anne".into()),
        ..person("Kate", "Lee", born)
    };
    let b = MatchRecord {
        middle: Some("A.".into()),
        ..person("Kate", "Lee", born)
    };
    assert_eq!(
        outcome(&compare(&a, &b), MatchField::Middle),
        Outcome::MiddleInitial
    );
}

#[test]
fn contact_fields() {
    let a = robert();
    let b = MatchRecord {
        phones: vec!["(212) 555-0123".into(), "+17185550100".into()],
        email: Some(" RSmith80@Example.com".into()),
        addresses: at("123 MAIN STREET", "10001"),
        ..robert()
    };
    let s = compare(&a, &b);
    assert_eq!(outcome(&s, MatchField::Phone), Outcome::PhoneExact);
    assert_eq!(outcome(&s, MatchField::Email), Outcome::EmailExact);
    assert_eq!(outcome(&s, MatchField::Address), Outcome::AddressExact);
    assert_eq!(
        outcome(&s, MatchField::PostalCode),
        Outcome::PostalCodeWithAddress
    );

    let b = MatchRecord {
        email: Some("rsmith80@example.org".into()),
        addresses: at("123 Mian St", "60601"),
        ..robert()
    };
    let s = compare(&a, &b);
    assert_eq!(outcome(&s, MatchField::Email), Outcome::EmailLocalPart);
    assert_eq!(outcome(&s, MatchField::Address), Outcome::AddressSimilar);
    assert_eq!(
        outcome(&s, MatchField::PostalCode),
        Outcome::PostalCodeConflict
    );

    let b = MatchRecord {
        addresses: at("5 Oak Rd", "10001"),
        ..robert()
    };
    let s = compare(&a, &b);
    assert_eq!(outcome(&s, MatchField::Address), Outcome::AddressDisagree);
    assert_eq!(
        outcome(&s, MatchField::PostalCode),
        Outcome::PostalCodeExact
    );

    // Unknown sex is not recorded.
    let b = MatchRecord {
        sex: Some(AdministrativeGender::Unknown),
        ..robert()
    };
    assert_eq!(outcome(&compare(&a, &b), MatchField::Sex), Outcome::Missing);
}

#[test]
fn scores_add_up_and_grades_follow_thresholds() {
    let s = compare(
        &robert(),
        &MatchRecord {
            given: "Rob".into(),
            ..robert()
        },
    );
    let sum: f64 = s.fields.iter().map(|f| f.weight).sum();
    assert!((sum + s.relatives_adjustment - s.total).abs() < 1e-9);
    for (f, field) in s.fields.iter().zip(MatchField::ALL) {
        assert_eq!(f.field, field);
        assert!((f.weight - f.outcome.weight() - f.adjustment).abs() < 1e-12);
        // Without name counts only the sex is adjusted: Rob is a nickname
        // of Robert, and strangers sharing a given name share their sex.
        if field == MatchField::Sex {
            assert!(f.adjustment < -0.9 && f.weight > 0.0, "{f:?}");
        } else {
            assert_eq!(f.adjustment, 0.0);
        }
    }
    let t = Thresholds::DEFAULT;
    assert_eq!(t.grade(t.upper), MatchGrade::Certain);
    assert_eq!(t.grade(t.upper - 0.1), MatchGrade::Probable);
    assert_eq!(t.grade(t.lower), MatchGrade::Possible);
    assert_eq!(t.grade(t.lower - 0.1), MatchGrade::CertainlyNot);
    let empty = compare(&MatchRecord::default(), &MatchRecord::default());
    assert!(empty.total.abs() < 0.01 && empty.grade == MatchGrade::CertainlyNot);
    assert!(
        empty
            .fields
            .iter()
            .all(|f| f.agreement == Agreement::Missing)
    );
    assert_eq!(MatchGrade::CertainlyNot.fhir_code(), "certainly-not");
    assert_eq!(
        [
            MatchGrade::Certain,
            MatchGrade::Probable,
            MatchGrade::Possible
        ]
        .map(MatchGrade::fhir_code),
        ["certain", "probable", "possible"]
    );
    let at_lower = MatchScore {
        total: t.lower,
        ..s
    };
    assert!((at_lower.search_score(&t) - 0.5).abs() < 1e-12);
    assert!(s.search_score(&t) > 0.99);
}

#[test]
fn blocking_keys_are_few_stable_and_bring_duplicates_together() {
    let keys = blocking_keys(&robert());
    assert_eq!(
        keys,
        [
            "d:1980-03-12",
            "bd:19801203",
            "fy:SM0:1980",
            "nm:RPRT:SM0",
            "ad:10001:123 main st",
            "p:2125550123",
            "e:rsmith80@example.com",
        ]
    );
    let many_phones = MatchRecord {
        phones: vec![
            "+12125550100".into(),
            "+12125550101".into(),
            "+12125550102".into(),
        ],
        ..robert()
    };
    assert!(blocking_keys(&many_phones).len() <= 8);
    let shares = |a: &MatchRecord, b: &MatchRecord| {
        let kb = blocking_keys(b);
        blocking_keys(a).iter().any(|k| kb.contains(k))
    };
    let bare = person("Robert", "Smith", date(1980, 3, 12));
    // Swapped day and month, a typo in the year, swapped names.
    assert!(shares(&bare, &person("Robert", "Smith", date(1980, 12, 3))));
    assert!(shares(&bare, &person("Robert", "Smith", date(1908, 3, 12))));
    assert!(shares(&bare, &person("Smith", "Robert", date(1908, 3, 12))));
    assert!(shares(&bare, &person("Robert", "Smyth", date(1980, 3, 14))));
    assert!(!shares(
        &bare,
        &person("Robert", "Jones", date(1981, 3, 12))
    ));
    assert!(blocking_keys(&MatchRecord::default()).is_empty());
}

/// Name counts of an organization with `patients` patients.
fn counts(patients: u64, names: &[(&str, u64)]) -> NameCounts {
    NameCounts {
        patients,
        counts: names.iter().map(|(k, n)| (format!("n:{k}"), *n)).collect(),
    }
}

fn compare_counted(a: &MatchRecord, b: &MatchRecord, counts: &NameCounts) -> MatchScore {
    let (mut x, mut y) = (PreparedRecord::new(a), PreparedRecord::new(b));
    x.set_name_counts(counts);
    y.set_name_counts(counts);
    compare_with(&x, &y, &Thresholds::DEFAULT)
}

#[test]
fn rare_names_weigh_more_than_common_ones() {
    let born = date(1970, 5, 6);
    let org = counts(
        100_000,
        &[
            ("maria", 1_500),
            ("garcia", 2_000),
            ("wojciech", 3),
            ("przybylski", 2),
        ],
    );
    let common = compare_counted(
        &person("María", "García", born),
        &person("Maria", "Garcia", born),
        &org,
    );
    let rare = compare_counted(
        &person("Wojciech", "Przybylski", born),
        &person("Wojciech", "Przybylski", born),
        &org,
    );
    for field in [MatchField::Given, MatchField::Family] {
        let (c, r) = (common.field(field), rare.field(field));
        let table = c.outcome.weight();
        assert_eq!(c.outcome, r.outcome);
        assert!(c.weight < table - 3.0, "{field:?} common {c:?}");
        assert!(r.weight >= table && r.weight <= table + frequency::MAX_RARE_BITS + 1e-9);
        assert!((c.weight - table - c.adjustment).abs() < 1e-12);
    }
    assert!(rare.total > common.total + 7.0);
    // Still certain: a name and an exact birth date are plenty.
    assert_eq!(common.grade, MatchGrade::Certain, "{common:?}");

    // A partial agreement moves with the commoner name, as far as an exact
    // agreement on it.
    let typo = compare_counted(
        &person("Maria", "Garcia", born),
        &person("Maria", "Garcai", born),
        &org,
    );
    let f = typo.field(MatchField::Family);
    assert_eq!(f.outcome, Outcome::FamilyTypo);
    let exact = common.field(MatchField::Family).adjustment;
    assert!(exact < -3.0 && (f.adjustment - exact).abs() < 1e-9, "{f:?}");
}

#[test]
fn name_counts_of_a_small_clinic_barely_move_the_weights() {
    let born = date(1970, 5, 6);
    // Fifty patients, two of them Garcías: common here by chance.
    let org = counts(50, &[("maria", 1), ("garcia", 2)]);
    let s = compare_counted(
        &person("Maria", "Garcia", born),
        &person("Maria", "Garcia", born),
        &org,
    );
    for f in [MatchField::Given, MatchField::Family] {
        assert!(s.field(f).adjustment.abs() < 1.0, "{:?}", s.field(f));
    }
    // Without patients, nothing is known.
    let s = compare_counted(
        &person("Maria", "Garcia", born),
        &person("Maria", "Garcia", born),
        &counts(0, &[]),
    );
    assert_eq!(s.field(MatchField::Family).adjustment, 0.0);
}

#[test]
fn a_very_common_name_never_counts_against_a_match() {
    let born = date(1990, 1, 2);
    // A community clinic where most patients are Nguyens.
    let org = counts(5_000, &[("nguyen", 4_000), ("thanh", 300)]);
    let s = compare_counted(
        &person("Thanh", "Nguyen", born),
        &person("Thanh", "Nguyen", born),
        &org,
    );
    let f = s.field(MatchField::Family);
    assert!(f.weight >= 0.0 && f.weight < 1.0, "{f:?}");
    assert!(s.total >= Thresholds::DEFAULT.lower, "{s:?}");
    // With the rest of the record, still certain.
    let thanh = MatchRecord {
        given: "Thanh".into(),
        family: "Nguyen".into(),
        ..robert()
    };
    let s = compare_counted(&thanh, &thanh, &org);
    assert_eq!(s.grade, MatchGrade::Certain, "{s:?}");
}

#[test]
fn rare_names_do_not_make_relatives_certain() {
    let org = counts(100_000, &[("przybylski", 3), ("wojciech", 2), ("jan", 40)]);
    let father = MatchRecord {
        given: "Wojciech".into(),
        family: "Przybylski".into(),
        ..robert()
    };
    // Jr/Sr: same names, address and phone; born 28 years apart.
    let son = MatchRecord {
        birth_date: Some(date(2008, 9, 30)),
        email: None,
        ..father.clone()
    };
    let s = compare_counted(&father, &son, &org);
    assert!(s.total < Thresholds::DEFAULT.lower, "{s:?}");
    // Twins: another given name, everything else shared.
    let twin = MatchRecord {
        given: "Jan".into(),
        middle: None,
        email: None,
        ..father.clone()
    };
    let s = compare_counted(&father, &twin, &org);
    assert!(s.total < Thresholds::DEFAULT.lower, "{s:?}");
}

#[test]
fn a_shared_given_name_is_not_counted_twice_with_the_sex() {
    let a = person("Robert", "Smith", date(1980, 3, 12));
    let male = |r: &MatchRecord| MatchRecord {
        sex: Some(AdministrativeGender::Male),
        ..r.clone()
    };
    let s = compare(&male(&a), &male(&a));
    let sex = s.field(MatchField::Sex);
    assert_eq!(sex.outcome, Outcome::SexExact);
    assert!(sex.weight.abs() < 0.1 && sex.adjustment < -0.9, "{sex:?}");
    // Another given name: the sex is independent evidence again.
    let b = person("Oliver", "Smith", date(1980, 3, 12));
    let s = compare(&male(&a), &male(&b));
    assert_eq!(s.field(MatchField::Sex).adjustment, 0.0);
    // The same given name with another sex weighs less against a match than
    // the sex alone would, and still against it.
    let female = MatchRecord {
        sex: Some(AdministrativeGender::Female),
        ..a.clone()
    };
    let sex = *compare(&male(&a), &female).field(MatchField::Sex);
    assert!(
        sex.weight < 0.0 && sex.weight > Outcome::SexDisagree.weight(),
        "{sex:?}"
    );
}

#[test]
fn the_best_agreeing_pair_of_addresses_decides() {
    let a = robert();
    // Registered again after a move: the new home address first, the old
    // one (the first record's home) after it.
    let mut moved = MatchRecord {
        addresses: at("9 Elm Ave", "10002"),
        ..robert()
    };
    moved.addresses.extend(at("123 Main Street", "10001"));
    let s = compare(&a, &moved);
    assert_eq!(outcome(&s, MatchField::Address), Outcome::AddressExact);
    assert_eq!(
        outcome(&s, MatchField::PostalCode),
        Outcome::PostalCodeWithAddress
    );
    assert_eq!(compare(&moved, &a).total, s.total, "symmetric");
    // The same as comparing the agreeing addresses alone.
    assert_eq!(s.total, compare(&a, &robert()).total);

    // Only a postal code in common: that pair is the best there is.
    let elsewhere = MatchRecord {
        addresses: [at("9 Elm Ave", "10002"), at("5 Oak Rd", "10001")].concat(),
        ..robert()
    };
    let s = compare(&a, &elsewhere);
    assert_eq!(outcome(&s, MatchField::Address), Outcome::AddressDisagree);
    assert_eq!(
        outcome(&s, MatchField::PostalCode),
        Outcome::PostalCodeExact
    );

    // No address on one side: missing, as before.
    let none = MatchRecord {
        addresses: Vec::new(),
        ..robert()
    };
    assert_eq!(
        outcome(&compare(&a, &none), MatchField::Address),
        Outcome::Missing
    );

    // Each address is a household key, the first three at most.
    let keys = blocking_keys(&moved);
    for k in ["ad:10002:9 elm ave", "ad:10001:123 main st"] {
        assert!(keys.contains(&k.to_string()), "{k} not in {keys:?}");
    }
    let many = MatchRecord {
        addresses: (1..=5)
            .flat_map(|n| at(&format!("{n} Main St"), "10001"))
            .collect(),
        ..robert()
    };
    let households = blocking_keys(&many)
        .into_iter()
        .filter(|k| k.starts_with("ad:"))
        .count();
    assert_eq!(households, MAX_ADDRESS_KEYS);
}

#[test]
fn name_keys_are_index_keys() {
    let p = crate::patient::Patient {
        mrn: String::new(),
        given: "María José".into(),
        middle: Some("Ann".into()),
        family: "De la Cruz-O'Brien".into(),
        suffix: None,
        preferred_name: None,
        birth_date: date(1962, 3, 14),
        sex: AdministrativeGender::Female,
        gender_identity: None,
        pronouns: None,
        addresses: vec![],
        phones: vec![],
        email: None,
        language: None,
        interpreter_needed: false,
        preferred_contact: None,
        contacts: vec![],
        alerts: vec![],
        identifiers: vec![],
        active: true,
        replaced_by: None,
    };
    let index = crate::patient_search::index_keys(&p);
    let keys = PreparedRecord::new(&MatchRecord::from(&p)).name_keys();
    assert_eq!(
        keys,
        [
            Some("n:mariajose".to_string()),
            Some("n:ann".to_string()),
            Some("n:delacruzobrien".to_string())
        ]
    );
    for k in keys.iter().flatten() {
        assert!(index.contains(k), "{k} not in {index:?}");
    }
    // An initial is no name to count.
    let initial = MatchRecord {
        middle: Some("J.".into()),
        ..robert()
    };
    assert_eq!(PreparedRecord::new(&initial).name_keys()[1], None);
}

// Property tests.

fn names() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Robert",
        "Bob",
        "Rob",
        "José",
        "Jose",
        "Maria",
        "Mary",
        "Ann",
        "Anne",
        "Catherine",
        "Kathryn",
        "J",
        "Lee",
        "Kim",
        "Thanh",
        "Nguyen",
        "Smith",
        "Smyth",
        "García-López",
        "Garcia",
        "De la Cruz",
        "Cruz",
        "O'Brien",
        "Ella",
        "Emma",
        "",
    ])
    .prop_map(String::from)
}

fn dates() -> impl Strategy<Value = jiff::civil::Date> {
    prop::sample::select(vec![
        date(1980, 3, 12),
        date(1980, 12, 3),
        date(1980, 3, 13),
        date(1908, 3, 12),
        date(1980, 7, 1),
        date(2001, 1, 1),
        date(1955, 11, 30),
    ])
}

fn records() -> impl Strategy<Value = MatchRecord> {
    let contact = (
        prop::option::of(prop::sample::select(vec![
            "+12125550123",
            "+12125550124",
            "2125550123",
        ])),
        prop::option::of(prop::sample::select(vec![
            "a@example.com",
            "A@example.org",
            "b@example.com",
        ])),
        prop::option::of(prop::sample::select(vec![
            "1 Main St",
            "1 Main Street",
            "1 Mian St",
            "2 Oak Rd",
        ])),
        prop::option::of(prop::sample::select(vec!["10001", "10002"])),
    );
    (
        names(),
        prop::option::of(names()),
        names(),
        prop::option::of(dates()),
        prop::option::of(prop::sample::select(vec![
            AdministrativeGender::Male,
            AdministrativeGender::Female,
            AdministrativeGender::Unknown,
        ])),
        contact,
    )
        .prop_map(
            |(given, middle, family, birth_date, sex, (phone, email, line, postal))| MatchRecord {
                given,
                middle,
                family,
                birth_date,
                sex,
                phones: phone.into_iter().map(String::from).collect(),
                email: email.map(String::from),
                addresses: if line.is_none() && postal.is_none() {
                    Vec::new()
                } else {
                    vec![MatchAddress {
                        line: line.map(String::from),
                        postal_code: postal.map(String::from),
                    }]
                },
            },
        )
}

/// Clears field `i` of a record, or sets it to a value unlike any that
/// [`records`] produces.
fn with_field(r: &MatchRecord, i: usize, foreign: bool) -> MatchRecord {
    let mut r = r.clone();
    let text = |s: &str| {
        if foreign {
            s.to_string()
        } else {
            String::new()
        }
    };
    match MatchField::ALL[i] {
        MatchField::Given => r.given = text("Zebulon"),
        MatchField::Middle => r.middle = foreign.then(|| "Quentin".into()),
        MatchField::Family => r.family = text("Wojciechowski"),
        MatchField::BirthDate => r.birth_date = foreign.then(|| date(1931, 8, 27)),
        MatchField::Sex => r.sex = foreign.then_some(AdministrativeGender::Other),
        MatchField::Phone => {
            r.phones = if foreign {
                vec!["+13125550199".into()]
            } else {
                Vec::new()
            }
        }
        MatchField::Email => r.email = foreign.then(|| "zz@example.net".into()),
        MatchField::Address | MatchField::PostalCode => {
            if r.addresses.is_empty() {
                r.addresses.push(MatchAddress::default());
            }
            let a = &mut r.addresses[0];
            if MatchField::ALL[i] == MatchField::Address {
                a.line = foreign.then(|| "9876 Zigzag Pkwy".into());
            } else {
                a.postal_code = foreign.then(|| "99999".into());
            }
        }
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compare_is_symmetric(a in records(), b in records()) {
        let ab = compare(&a, &b);
        let ba = compare(&b, &a);
        prop_assert_eq!(ab.total.to_bits(), ba.total.to_bits());
        prop_assert_eq!(ab.fields.map(|f| f.outcome), ba.fields.map(|f| f.outcome));
        // With name counts too.
        let org = counts(20_000, &[("robert", 300), ("smith", 400), ("bob", 5), ("garcia", 90)]);
        let ab = compare_counted(&a, &b, &org);
        let ba = compare_counted(&b, &a, &org);
        prop_assert_eq!(ab.total.to_bits(), ba.total.to_bits());
    }

    #[test]
    fn name_counts_never_make_an_agreement_count_against(a in records(), b in records(), scale in 0u64..6) {
        let org = counts(10u64.pow(scale as u32), &[("robert", 10u64.pow(scale as u32) / 2), ("smith", 7), ("cruz", 1)]);
        let s = compare_counted(&a, &b, &org);
        for f in s.fields {
            if matches!(f.agreement, Agreement::Exact | Agreement::Partial) {
                prop_assert!(f.weight >= 0.0, "{:?}", f);
            }
            if matches!(f.field, MatchField::Given | MatchField::Middle | MatchField::Family) {
                prop_assert!(f.adjustment <= frequency::MAX_RARE_BITS + 1e-9, "{:?}", f);
            }
        }
        prop_assert!(s.total <= compare(&a, &b).total + frequency::MAX_RAISE_BITS + 1e-9);
    }

    #[test]
    fn a_record_is_certainly_itself(mut a in records(), given in "[A-Z][a-z]{1,8}", family in "[A-Z][a-z]{1,10}", birth in dates()) {
        // With a name and a birth date, which registration requires.
        a.given = given;
        a.family = family;
        a.birth_date = Some(birth);
        let s = compare(&a, &a);
        prop_assert_eq!(s.grade, MatchGrade::Certain, "{:?}", s);
    }

    #[test]
    fn a_disagreeing_field_never_raises_the_score(a in records(), b in records(), i in 0usize..9) {
        let without = compare(&with_field(&a, i, false), &b);
        let with = compare(&with_field(&a, i, true), &b);
        let others_same = (0..9).all(|k| k == i || without.fields[k].outcome == with.fields[k].outcome);
        if with.fields[i].agreement == Agreement::Disagree && others_same {
            prop_assert!(with.total <= without.total + 1e-9, "{} > {}", with.total, without.total);
        }
    }

    #[test]
    fn turning_missing_into_disagreement_never_raises_the_score(
        picks in prop::collection::vec(0usize..64, 9),
        field in 0usize..9,
    ) {
        // Any combination of outcomes, one per field.
        let per_field: Vec<Vec<Outcome>> = MatchField::ALL
            .iter()
            .map(|f| OUTCOMES.iter().filter(|o| o.field == Some(*f)).map(|o| o.outcome).collect())
            .collect();
        let mut outcomes: [Outcome; 9] = std::array::from_fn(|k| {
            let options = &per_field[k];
            if picks[k] % 4 == 0 { Outcome::Missing } else { options[picks[k] % options.len()] }
        });
        outcomes[field] = Outcome::Missing;
        let before = score(outcomes, &Thresholds::DEFAULT).total;
        for o in &per_field[field] {
            if o.agreement() == Agreement::Disagree {
                outcomes[field] = *o;
                let after = score(outcomes, &Thresholds::DEFAULT).total;
                prop_assert!(after <= before + 1e-9, "{:?}: {} > {}", o, after, before);
            }
        }
    }

    #[test]
    fn jaro_winkler_is_strsim_without_allocation(a in "[a-e]{0,12}", b in "[a-e]{0,12}") {
        let ours = normalize::jaro_winkler(&a, &b);
        let (x, y) = if a <= b { (&a, &b) } else { (&b, &a) };
        let theirs = strsim::jaro_winkler(x, y);
        // Ours returns 0 early when the lengths alone rule out 0.9.
        if ours != 0.0 || theirs >= 0.9 {
            prop_assert!((ours - theirs).abs() < 1e-12, "{} {}: {} vs {}", a, b, ours, theirs);
        }
    }

    #[test]
    fn one_edit_is_osa_distance_one(a in "[a-d]{0,7}", b in "[a-d]{0,7}") {
        prop_assert_eq!(
            normalize::within_one_edit(a.as_bytes(), b.as_bytes()),
            strsim::osa_distance(&a, &b) <= 1
        );
    }
}

proptest! {
    #[test]
    fn the_letter_bound_never_hides_a_similar_name(a in "[a-f]{1,10}", b in "[a-f]{1,10}") {
        let (x, y) = (normalize::Name::new(&a, false).unwrap(), normalize::Name::new(&b, false).unwrap());
        if strsim::jaro_winkler(&a, &b) >= 0.9 {
            prop_assert!(x.may_be_similar(&y));
        }
    }
}
