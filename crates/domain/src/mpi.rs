//! Master patient index operations on whole records: what changed between
//! two versions of a patient (the history shown at the front desk), and how
//! a duplicate record is folded into the record that survives a merge, and
//! taken out of it again when the merge is undone.
//!
//! # Merge rules
//!
//! The survivor keeps its own demographics (name, birth date, sex, phones,
//! email, address, language): the lead compares both records before merging
//! and corrects the survivor afterwards when the duplicate was more recent.
//! What would otherwise be lost is appended to the survivor:
//!
//! - the duplicate's contacts, unless the survivor already has the same
//!   person (same name, ignoring case and spacing, and no conflicting
//!   phone); a second guarantor is added as a plain contact, because a
//!   record has at most one guarantor;
//! - the duplicate's external identifiers, and its MRN as an identifier of
//!   the system [`MRN_SYSTEM`], so the old number still names the patient;
//! - the duplicate's alerts ("needs wheelchair" must not vanish), up to
//!   [`MAX_ALERTS`](crate::patient::MAX_ALERTS);
//! - the duplicate's addresses that the survivor does not have (compared
//!   ignoring case and spacing, whatever their use), each as an `old`
//!   address with its type and period, up to
//!   [`MAX_ADDRESSES`](crate::patient::MAX_ADDRESSES): the survivor's own
//!   addresses stay as they are (its home address stays the home address),
//!   and the duplicate's still match and find the patient.
//!
//! The duplicate becomes inactive and `replaced_by` the survivor (FHIR
//! `Patient.link` of type `replaced-by`). [`MergeAdditions`] lists exactly
//! what was appended, so that [`undo_additions`] removes it again and
//! nothing else, even when the survivor was edited after the merge.

use crate::directory::Address;
use crate::patient::{
    AddressUse, Identifier, MAX_ADDRESSES, MAX_ALERTS, Patient, PatientAddress, PatientContact,
};
use serde::{Deserialize, Serialize};

/// The identifier system of the organization's own medical record numbers,
/// used when an MRN is kept as an identifier (a merged duplicate's MRN).
pub const MRN_SYSTEM: &str = "http://carefront.example/fhir/sid/mrn";

/// What a merge appended to the survivor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeAdditions {
    pub contacts: Vec<PatientContact>,
    pub identifiers: Vec<Identifier>,
    pub alerts: Vec<String>,
    /// Absent from merges stored before patients had several addresses.
    #[serde(default)]
    pub addresses: Vec<PatientAddress>,
}

impl MergeAdditions {
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
            && self.identifiers.is_empty()
            && self.alerts.is_empty()
            && self.addresses.is_empty()
    }
}

/// The two records after merging `duplicate` into `survivor` (whose id is
/// `survivor_id`), and what was appended to the survivor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub survivor: Patient,
    pub duplicate: Patient,
    pub additions: MergeAdditions,
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The same postal address, ignoring case and spacing.
fn same_address(a: &Address, b: &Address) -> bool {
    let key = |a: &Address| {
        [
            fold(&a.line1),
            a.line2.as_deref().map(fold).unwrap_or_default(),
            fold(&a.city),
            fold(&a.state),
            fold(&a.postal_code),
            fold(&a.country),
        ]
    };
    key(a) == key(b)
}

fn same_contact(a: &PatientContact, b: &PatientContact) -> bool {
    fold(&a.name) == fold(&b.name)
        && match (&a.phone, &b.phone) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// Folds `duplicate` into `survivor` by the rules of the module
/// documentation.
pub fn merge_into(survivor: &Patient, duplicate: &Patient, survivor_id: &str) -> Merged {
    let mut s = survivor.clone();
    let mut additions = MergeAdditions::default();

    for c in &duplicate.contacts {
        if s.contacts.iter().any(|have| same_contact(have, c)) {
            continue;
        }
        let mut c = c.clone();
        if c.guarantor && s.contacts.iter().any(|have| have.guarantor) {
            c.guarantor = false;
        }
        s.contacts.push(c.clone());
        additions.contacts.push(c);
    }

    let old_mrn = (!duplicate.mrn.is_empty()).then(|| Identifier {
        system: MRN_SYSTEM.to_string(),
        value: duplicate.mrn.clone(),
    });
    for id in duplicate.identifiers.iter().chain(old_mrn.iter()) {
        let own_mrn = id.system == MRN_SYSTEM && id.value == s.mrn;
        if own_mrn || s.identifiers.contains(id) {
            continue;
        }
        s.identifiers.push(id.clone());
        additions.identifiers.push(id.clone());
    }

    for a in &duplicate.alerts {
        if s.alerts.len() >= MAX_ALERTS {
            break;
        }
        if s.alerts.iter().any(|have| fold(have) == fold(a)) {
            continue;
        }
        s.alerts.push(a.clone());
        additions.alerts.push(a.clone());
    }

    for a in &duplicate.addresses {
        if s.addresses.len() >= MAX_ADDRESSES {
            break;
        }
        if s.addresses
            .iter()
            .any(|have| same_address(&have.address, &a.address))
        {
            continue;
        }
        let old = PatientAddress {
            use_: AddressUse::Old,
            ..a.clone()
        };
        s.addresses.push(old.clone());
        additions.addresses.push(old);
    }

    let mut d = duplicate.clone();
    d.active = false;
    d.replaced_by = Some(survivor_id.to_string());
    Merged {
        survivor: s,
        duplicate: d,
        additions,
    }
}

fn remove_first<T: PartialEq>(list: &mut Vec<T>, item: &T) {
    if let Some(i) = list.iter().position(|x| x == item) {
        list.remove(i);
    }
}

/// The survivor without what a merge appended (what the staff removed or
/// changed since is left as it is).
pub fn undo_additions(survivor: &Patient, additions: &MergeAdditions) -> Patient {
    let mut s = survivor.clone();
    for c in &additions.contacts {
        remove_first(&mut s.contacts, c);
    }
    for id in &additions.identifiers {
        remove_first(&mut s.identifiers, id);
    }
    for a in &additions.alerts {
        remove_first(&mut s.alerts, a);
    }
    for a in &additions.addresses {
        remove_first(&mut s.addresses, a);
    }
    s
}

/// The parts of a patient record, as the history names them.
pub const FIELD_LABELS: [&str; 21] = [
    "MRN",
    "Given name",
    "Middle name",
    "Family name",
    "Suffix",
    "Preferred name",
    "Date of birth",
    "Sex",
    "Gender identity",
    "Pronouns",
    "Addresses",
    "Phones",
    "Email",
    "Language",
    "Interpreter",
    "Preferred contact",
    "Contacts",
    "Alerts",
    "Identifiers",
    "Active",
    "Merged into",
];

/// The labels (from [`FIELD_LABELS`]) of the parts that differ between two
/// versions of a record, in form order.
pub fn changed_fields(before: &Patient, after: &Patient) -> Vec<&'static str> {
    let differs = [
        before.mrn != after.mrn,
        before.given != after.given,
        before.middle != after.middle,
        before.family != after.family,
        before.suffix != after.suffix,
        before.preferred_name != after.preferred_name,
        before.birth_date != after.birth_date,
        before.sex != after.sex,
        before.gender_identity != after.gender_identity,
        before.pronouns != after.pronouns,
        before.addresses != after.addresses,
        before.phones != after.phones,
        before.email != after.email,
        before.language != after.language,
        before.interpreter_needed != after.interpreter_needed,
        before.preferred_contact != after.preferred_contact,
        before.contacts != after.contacts,
        before.alerts != after.alerts,
        before.identifiers != after.identifiers,
        before.active != after.active,
        before.replaced_by != after.replaced_by,
    ];
    FIELD_LABELS
        .iter()
        .zip(differs)
        .filter(|(_, d)| *d)
        .map(|(label, _)| *label)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::AdministrativeGender;
    use crate::patient::{Phone, PhoneKind};
    use jiff::civil::date;

    fn contact(name: &str, phone: Option<&str>, guarantor: bool) -> PatientContact {
        PatientContact {
            name: name.into(),
            relationship: "SPS".into(),
            phone: phone.map(str::to_string),
            emergency: true,
            guarantor,
        }
    }

    fn patient(mrn: &str) -> Patient {
        Patient {
            mrn: mrn.into(),
            given: "Ana".into(),
            middle: None,
            family: "Reyes".into(),
            suffix: None,
            preferred_name: None,
            birth_date: date(1962, 3, 14),
            sex: AdministrativeGender::Female,
            gender_identity: None,
            pronouns: None,
            addresses: vec![],
            phones: vec![Phone {
                number: "+15125550142".into(),
                kind: PhoneKind::Mobile,
                sms_consent: false,
            }],
            email: None,
            language: None,
            interpreter_needed: false,
            preferred_contact: None,
            contacts: vec![],
            alerts: vec![],
            identifiers: vec![],
            active: true,
            replaced_by: None,
        }
    }

    #[test]
    fn a_merge_appends_what_would_be_lost_once() {
        let mut s = patient("00000001");
        s.contacts = vec![contact("Luis Reyes", Some("+15125550100"), true)];
        s.alerts = vec!["Hard of hearing".into()];
        let mut d = patient("00000007");
        d.contacts = vec![
            contact("luis  reyes", None, false),
            contact("Marta Reyes", Some("+15125550101"), true),
        ];
        d.alerts = vec!["hard of hearing".into(), "Needs wheelchair".into()];
        d.identifiers = vec![Identifier {
            system: "urn:oid:2.16.840.1.113883.4.3.48".into(),
            value: "TX123".into(),
        }];
        let m = merge_into(&s, &d, "survivor-id");
        assert_eq!(m.survivor.contacts.len(), 2);
        assert_eq!(m.survivor.contacts[1].name, "Marta Reyes");
        assert!(
            !m.survivor.contacts[1].guarantor,
            "one guarantor per record"
        );
        assert_eq!(m.survivor.alerts, ["Hard of hearing", "Needs wheelchair"]);
        assert_eq!(
            m.survivor.identifiers.last(),
            Some(&Identifier {
                system: MRN_SYSTEM.into(),
                value: "00000007".into()
            })
        );
        assert_eq!(m.survivor.identifiers.len(), 2);
        assert_eq!(m.survivor.mrn, "00000001", "the survivor keeps its MRN");
        assert!(!m.duplicate.active);
        assert_eq!(m.duplicate.replaced_by.as_deref(), Some("survivor-id"));
        assert_eq!(m.additions.contacts.len(), 1);
        assert_eq!(m.additions.alerts, ["Needs wheelchair"]);

        // Merging the same duplicate again adds nothing more.
        let again = merge_into(&m.survivor, &d, "survivor-id");
        assert!(again.additions.is_empty());
    }

    #[test]
    fn the_duplicates_other_addresses_are_appended_as_old() {
        let street = |line1: &str, use_: AddressUse| PatientAddress {
            use_,
            type_: None,
            start: None,
            end: None,
            address: Address {
                line1: line1.into(),
                line2: None,
                city: "Austin".into(),
                state: "TX".into(),
                postal_code: "78701".into(),
                country: "US".into(),
            },
        };
        let mut s = patient("00000001");
        s.addresses = vec![street("12 Oak St", AddressUse::Home)];
        let mut d = patient("00000002");
        let mut mailing = street("PO Box 9", AddressUse::Home);
        mailing.type_ = Some(crate::patient::AddressType::Postal);
        d.addresses = vec![
            street("12  OAK st", AddressUse::Home),
            street("4 Pine Rd", AddressUse::Work),
            mailing,
        ];
        let m = merge_into(&s, &d, "s");
        let kept: Vec<(&str, AddressUse)> = m
            .survivor
            .addresses
            .iter()
            .map(|a| (a.address.line1.as_str(), a.use_))
            .collect();
        assert_eq!(
            kept,
            [
                ("12 Oak St", AddressUse::Home),
                ("4 Pine Rd", AddressUse::Old),
                ("PO Box 9", AddressUse::Old)
            ]
        );
        assert_eq!(
            m.survivor.addresses[2].type_,
            Some(crate::patient::AddressType::Postal),
            "the type stays"
        );
        assert_eq!(m.additions.addresses.len(), 2);
        assert_eq!(m.survivor.home_address(), s.home_address());
        assert_eq!(undo_additions(&m.survivor, &m.additions), s);
        assert!(merge_into(&m.survivor, &d, "s").additions.is_empty());
    }

    #[test]
    fn undoing_removes_exactly_the_additions() {
        let s = patient("00000001");
        let mut d = patient("00000002");
        d.contacts = vec![contact("Marta Reyes", None, false)];
        d.alerts = vec!["Latex allergy".into()];
        let m = merge_into(&s, &d, "s");
        assert_eq!(undo_additions(&m.survivor, &m.additions), s);

        // Staff edits after the merge stay.
        let mut edited = m.survivor.clone();
        edited.alerts.push("Prefers mornings".into());
        edited.email = Some("ana@example.com".into());
        let undone = undo_additions(&edited, &m.additions);
        assert_eq!(undone.alerts, ["Prefers mornings"]);
        assert_eq!(undone.email.as_deref(), Some("ana@example.com"));
        assert!(undone.contacts.is_empty());
        assert!(undone.identifiers.is_empty());
    }

    #[test]
    fn changed_fields_name_what_differs() {
        let a = patient("1");
        let mut b = a.clone();
        assert!(changed_fields(&a, &b).is_empty());
        b.phones[0].sms_consent = true;
        b.family = "Reyes-Ortiz".into();
        b.replaced_by = Some("x".into());
        assert_eq!(
            changed_fields(&a, &b),
            ["Family name", "Phones", "Merged into"]
        );
    }
}
