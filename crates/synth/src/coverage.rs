//! Synthetic insurance for the demo patients: which of the common payers,
//! plan, member ID and group, and who the subscriber is.

use crate::names::person_name;
use crate::patients::REFERENCE_DATE;
use crate::rng::{Draw, Purpose};
use carefront_domain::coverage::{
    COMMON_PAYERS, Coverage, CoverageOrder, Subscriber, SubscriberRelationship,
};
use carefront_domain::directory::AdministrativeGender;
use carefront_domain::patient::Patient;
use jiff::civil::date;

/// One generated coverage of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCoverage {
    /// Index into [`COMMON_PAYERS`].
    pub payer: usize,
    /// `patient_id` and `payer_ref` are left empty: storage assigns the ids.
    pub coverage: Coverage,
}

/// Payer IDs with their share among patients under 65 and from 65 on
/// (Medicare Advantage plans).
const PAYER_WEIGHTS: [(&str, u32, u32); 8] = [
    ("60054", 15, 10),
    ("84980", 20, 5),
    ("62308", 12, 3),
    ("61101", 6, 40),
    ("94135", 8, 4),
    ("94134", 8, 4),
    ("87726", 25, 20),
    ("14163", 6, 14),
];

const PLANS: [(&str, &[&str]); 8] = [
    (
        "60054",
        &[
            "Choice POS II",
            "Open Access Managed Choice",
            "Medicare Advantage PPO",
        ],
    ),
    (
        "84980",
        &["Blue Choice PPO", "Blue Advantage HMO", "Blue Essentials"],
    ),
    ("62308", &["Open Access Plus", "LocalPlus", "Connect"]),
    (
        "61101",
        &["Gold Plus HMO", "ChoiceCare PPO", "Medicare Advantage PPO"],
    ),
    ("94135", &["Traditional HMO", "Senior Advantage"]),
    ("94134", &["Traditional HMO", "Senior Advantage"]),
    (
        "87726",
        &["Choice Plus", "Navigate HMO", "AARP Medicare Advantage"],
    ),
    ("14163", &["Wellcare Value", "Wellcare Giveback"]),
];

fn digits(draw: &mut Draw, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + draw.below(10) as u8))
        .collect()
}

/// A member ID shaped the way the payer's cards print them.
fn member_id(draw: &mut Draw, payer_id: &str) -> String {
    match payer_id {
        "60054" => format!("W{}", digits(draw, 9)),
        "84980" => format!("{}{}", draw.pick(&["XOD", "ZGP", "YID"]), digits(draw, 9)),
        "62308" => format!("U{}", digits(draw, 8)),
        "61101" => format!("H{}", digits(draw, 8)),
        "14163" => digits(draw, 8),
        _ => digits(draw, 9),
    }
}

fn pick_payer(draw: &mut Draw, senior: bool, not: Option<usize>) -> usize {
    let choices: Vec<(usize, u32)> = PAYER_WEIGHTS
        .iter()
        .map(|&(id, young, old)| {
            let index = COMMON_PAYERS
                .iter()
                .position(|(_, p)| *p == id)
                .expect("weighted payers are common payers");
            (index, if senior { old } else { young })
        })
        .filter(|&(index, _)| Some(index) != not)
        .collect();
    draw.weighted(&choices)
}

fn one(
    draw: &mut Draw,
    patient: &Patient,
    age: i16,
    payer: usize,
    order: CoverageOrder,
) -> DemoCoverage {
    let payer_id = COMMON_PAYERS[payer].1;
    let plans = PLANS
        .iter()
        .find(|(id, _)| *id == payer_id)
        .map_or(&[][..], |(_, plans)| plans);
    let plan_name = (!plans.is_empty()).then(|| draw.pick(plans).to_string());
    let senior = age >= 65;
    // Employer plans carry a group number; individual and Medicare plans often not.
    let group_number = (!senior && draw.chance(850)).then(|| digits(draw, 7));
    let (relationship, subscriber) = if age < 18 {
        let parent_sex = if draw.chance(550) {
            AdministrativeGender::Female
        } else {
            AdministrativeGender::Male
        };
        let parent = person_name(draw, parent_sex, 38);
        let born = 1975 + draw.below(20) as i16;
        let birth_date = date(born, 1 + draw.below(12) as i8, 1 + draw.below(28) as i8);
        (
            SubscriberRelationship::Child,
            Some(Subscriber {
                given: parent.given,
                family: patient.family.clone(),
                birth_date: Some(birth_date),
            }),
        )
    } else if !senior && draw.chance(200) {
        let spouse_sex = if patient.sex == AdministrativeGender::Female {
            AdministrativeGender::Male
        } else {
            AdministrativeGender::Female
        };
        let spouse = person_name(draw, spouse_sex, u32::try_from(age).unwrap_or(40));
        (
            SubscriberRelationship::Spouse,
            Some(Subscriber {
                given: spouse.given,
                family: patient.family.clone(),
                birth_date: None,
            }),
        )
    } else {
        (SubscriberRelationship::Itself, None)
    };
    let start = date(2022 + draw.below(5) as i16, 1, 1);
    // A few plans ended last year and were not replaced: the desk sees them
    // as not in force.
    let end = draw
        .chance(60)
        .then(|| date(2025, 12, 31))
        .filter(|e| *e > start);
    DemoCoverage {
        payer,
        coverage: Coverage {
            patient_id: String::new(),
            payer_ref: String::new(),
            plan_name,
            member_id: member_id(draw, payer_id),
            group_number,
            relationship,
            subscriber,
            order,
            start: Some(start),
            end,
            active: true,
        },
    }
}

/// The coverages of patient `index` of the stream for `seed` (pass the
/// patient generated for that index): about four in five have a primary
/// coverage, and some of those a secondary one with another payer. The
/// same seed and index always give the same coverages.
pub fn demo_coverages(seed: u64, index: u64, patient: &Patient) -> Vec<DemoCoverage> {
    let mut draw = Draw::new(seed, Purpose::Coverage, index);
    let age = REFERENCE_DATE
        .since((jiff::Unit::Year, patient.birth_date))
        .map_or(0, |s| s.get_years());
    let senior = age >= 65;
    let mut out = Vec::new();
    if !draw.chance(800) {
        return out;
    }
    let primary = pick_payer(&mut draw, senior, None);
    out.push(one(
        &mut draw,
        patient,
        age,
        primary,
        CoverageOrder::Primary,
    ));
    if draw.chance(if senior { 300 } else { 120 }) {
        let secondary = pick_payer(&mut draw, senior, Some(primary));
        out.push(one(
            &mut draw,
            patient,
            age,
            secondary,
            CoverageOrder::Secondary,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PatientGenerator;

    #[test]
    fn coverages_are_deterministic_valid_and_common() {
        let generator = PatientGenerator::new(1);
        let mut with = 0;
        let mut secondary = 0;
        for i in 0..500 {
            let patient = generator.patient(i);
            let list = demo_coverages(1, i, &patient);
            assert_eq!(list, demo_coverages(1, i, &patient));
            if !list.is_empty() {
                with += 1;
            }
            if list.len() == 2 {
                secondary += 1;
                assert_ne!(list[0].payer, list[1].payer);
            }
            for c in list {
                let mut coverage = c.coverage.clone();
                coverage.patient_id = "p".into();
                coverage.payer_ref = "x".into();
                assert!(coverage.clone().validate().is_ok(), "{coverage:?}");
            }
        }
        assert!((350..450).contains(&with), "{with}");
        assert!(secondary > 20, "{secondary}");
    }
}
