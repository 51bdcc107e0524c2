//! The promises other crates rely on: determinism, validity and variety.

use carefront_domain::Role;
use carefront_domain::directory::{
    AdministrativeGender, PractitionerRole, SPECIALTIES, Specialty, US_STATES, is_us_zip,
    is_valid_npi,
};
use carefront_synth::{MAX_AGE, PatientGenerator, REFERENCE_DATE, demo_clinic};
use jiff::Span;
use std::collections::HashSet;

#[test]
fn same_seed_same_clinic() {
    assert_eq!(demo_clinic(7), demo_clinic(7));
    assert_ne!(demo_clinic(7), demo_clinic(8));
}

#[test]
fn every_demo_entity_validates() {
    for seed in 0..50 {
        let clinic = demo_clinic(seed);
        clinic.organization.clone().validate().unwrap();
        for location in &clinic.locations {
            let checked = location.clone().validate().unwrap();
            assert_eq!(&checked, location, "already normalized");
        }
        for p in &clinic.practitioners {
            p.clone().validate().unwrap();
            assert!(is_valid_npi(p.npi.as_deref().unwrap()));
            assert!(p.suffix.is_some());
        }
        for role in &clinic.practitioner_roles {
            PractitionerRole {
                practitioner_id: "x".into(),
                location_id: "x".into(),
                specialty: role.specialty.into(),
                active: true,
            }
            .validate()
            .unwrap();
            assert!(role.practitioner < clinic.practitioners.len());
            assert!(role.location < clinic.locations.len());
        }
        for room in &clinic.rooms {
            assert!(room.location < clinic.locations.len());
        }
    }
}

#[test]
fn clinic_shape() {
    for seed in 0..50 {
        let clinic = demo_clinic(seed);
        assert_eq!(clinic.locations.len(), 3);
        let zones: HashSet<&str> = clinic
            .locations
            .iter()
            .map(|l| l.timezone.as_str())
            .collect();
        assert_eq!(zones.len(), 2, "{zones:?}");

        for l in 0..3 {
            let rooms: Vec<_> = clinic.rooms.iter().filter(|r| r.location == l).collect();
            assert!(rooms.len() >= 4, "location {l} has {} rooms", rooms.len());
            let names: HashSet<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(
                names.len(),
                rooms.len(),
                "room names are unique per location"
            );
        }

        let n = clinic.practitioners.len();
        assert!((10..=14).contains(&n));
        let npis: HashSet<_> = clinic.practitioners.iter().map(|p| p.npi.clone()).collect();
        let emails: HashSet<_> = clinic
            .practitioners
            .iter()
            .map(|p| p.email.clone())
            .collect();
        assert_eq!((npis.len(), emails.len()), (n, n));
        for p in &clinic.practitioners {
            let email = p.email.as_deref().unwrap();
            assert!(
                email.ends_with(".example") && email.contains('@'),
                "{email}"
            );
        }
        for i in 0..n {
            let places = clinic
                .practitioner_roles
                .iter()
                .filter(|r| r.practitioner == i)
                .count();
            assert!(
                (1..=2).contains(&places),
                "practitioner {i} at {places} locations"
            );
        }

        let specialties: HashSet<&str> = clinic
            .practitioner_roles
            .iter()
            .map(|r| Specialty::by_code(r.specialty).unwrap().display)
            .collect();
        let covered = |any: &[&str]| any.iter().any(|s| specialties.contains(s));
        assert!(covered(&["Family Medicine", "Internal Medicine"]));
        assert!(covered(&["Pediatrics"]));
        assert!(covered(&["Dermatology"]));
        assert!(covered(&["Cardiovascular Disease"]));
        assert!(covered(&[
            "Psychiatry",
            "Clinical Psychologist",
            "Clinical Social Worker"
        ]));
        assert_eq!(SPECIALTIES.len(), 9);
        // Primary care is offered everywhere.
        for l in 0..3 {
            assert!(clinic.practitioner_roles.iter().any(|r| r.location == l
                && matches!(r.specialty, "207Q00000X" | "207R00000X" | "363LF0000X")));
        }
    }
}

#[test]
fn one_staff_account_per_role() {
    let clinic = demo_clinic(1);
    let roles: Vec<Role> = clinic.staff.iter().map(|s| s.role).collect();
    assert_eq!(roles, Role::ALL);
    let usernames: HashSet<&str> = clinic.staff.iter().map(|s| s.username.as_str()).collect();
    assert_eq!(usernames.len(), Role::ALL.len());
    for s in &clinic.staff {
        assert!(s.password.len() >= 12, "{}", s.password);
        assert!(s.password.bytes().all(|b| b.is_ascii_graphic()));
        assert!(!s.display_name.trim().is_empty());
    }
    assert_eq!(clinic.staff[0].username, "frontdesk");
    assert_ne!(demo_clinic(2).staff[0].password, clinic.staff[0].password);
}

#[test]
fn same_seed_same_patients_and_random_access_matches_iteration() {
    let a = PatientGenerator::new(42);
    let b = PatientGenerator::new(42);
    let from_iter: Vec<_> = a.clone().take(200).collect();
    for (i, p) in from_iter.iter().enumerate() {
        assert_eq!(p, &b.patient(i as u64));
        assert!(p.mrn.is_empty());
    }
    assert_eq!(a.iter(100..200).collect::<Vec<_>>(), from_iter[100..]);
    assert_eq!(a.iter(0..10).next_back(), Some(b.patient(9)));
    assert_eq!(a.clone().nth(150), Some(b.patient(150)));
    let far: Vec<_> = a.clone().starting_at(1_000_000).take(3).collect();
    assert_eq!(far, a.iter(1_000_000..1_000_003).collect::<Vec<_>>());

    let c = PatientGenerator::new(43);
    let differing = (0..100).filter(|&i| a.patient(i) != c.patient(i)).count();
    assert_eq!(differing, 100);
}

/// Pinned output: a change here changes every stored demo and benchmark.
#[test]
fn output_is_stable() {
    let p = PatientGenerator::new(1).patient(0);
    let fingerprint = format!("{} {} {}", p.given, p.family, p.birth_date);
    assert_eq!(fingerprint, include_str!("stable_patient.txt").trim());
}

#[test]
fn ten_thousand_patients_are_valid_and_varied() {
    let generator = PatientGenerator::new(2026);
    let oldest = REFERENCE_DATE
        .checked_sub(Span::new().years(MAX_AGE + 1))
        .unwrap()
        .tomorrow()
        .unwrap();
    let mut families = HashSet::new();
    let mut givens = HashSet::new();
    let (mut accented, mut compound, mut spanish, mut children, mut seniors) = (0, 0, 0, 0, 0);
    let mut sexes = [0usize; 4];
    for p in generator.iter(0..10_000) {
        assert!(
            p.birth_date >= oldest && p.birth_date <= REFERENCE_DATE,
            "{}",
            p.birth_date
        );
        let years = REFERENCE_DATE.year() - p.birth_date.year();
        if years < 18 {
            children += 1;
        }
        if years >= 65 {
            seniors += 1;
        }
        assert!(!p.given.is_empty() && !p.family.is_empty());
        assert!(p.addresses.len() <= 1, "one home address, or none");
        if let Some(a) = p.home_address() {
            assert!(US_STATES.contains(&a.state.as_str()), "{}", a.state);
            assert!(
                is_us_zip(&a.postal_code) && a.postal_code.len() == 5,
                "{}",
                a.postal_code
            );
            assert_eq!(a.country, "US");
            assert!(!a.line1.is_empty() && !a.city.is_empty());
        }
        for phone in p
            .phones
            .iter()
            .map(|ph| &ph.number)
            .chain(p.contacts.iter().filter_map(|c| c.phone.as_ref()))
        {
            let b = phone.as_bytes();
            assert!(
                b.len() == 12
                    && phone.starts_with("+1")
                    && b[2..].iter().all(u8::is_ascii_digit)
                    && (b'2'..=b'9').contains(&b[2])
                    && &phone[5..10] == "55501",
                "{phone}"
            );
        }
        if let Some(email) = &p.email {
            let (local, domain) = email.split_once('@').unwrap();
            assert!(!local.is_empty() && local.is_ascii(), "{email}");
            assert!(
                ["example.com", "example.org", "example.net"].contains(&domain),
                "{email}"
            );
        }
        if p.language.as_deref() == Some("es") {
            spanish += 1;
        }
        if !p.family.is_ascii() || !p.given.is_ascii() {
            accented += 1;
        }
        if p.family.contains(['-', ' ']) {
            compound += 1;
        }
        sexes[match p.sex {
            AdministrativeGender::Female => 0,
            AdministrativeGender::Male => 1,
            AdministrativeGender::Other => 2,
            AdministrativeGender::Unknown => 3,
        }] += 1;
        families.insert(p.family);
        givens.insert(p.given);
    }
    assert!(families.len() >= 400, "{} family names", families.len());
    assert!(givens.len() >= 500, "{} given names", givens.len());
    assert!(
        accented > 100 && compound > 100 && spanish > 300,
        "{accented} {compound} {spanish}"
    );
    assert!(children > 1000 && seniors > 1000, "{children} {seniors}");
    assert!(sexes[0] > 4000 && sexes[1] > 4000, "{sexes:?}");
    assert!(
        sexes[2] + sexes[3] > 20 && sexes[2] + sexes[3] < 300,
        "{sexes:?}"
    );
}
