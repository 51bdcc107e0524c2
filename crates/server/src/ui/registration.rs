//! Registering and editing a patient: one form for both.
//!
//! Input names are the domain's field names (`given`, `birth_date`,
//! `phones[0].number`, `addresses[0].postal_code`, `contacts[1].name`), so
//! an error from `Patient::validate` lands on its input; blank rows are left
//! out before validating and the error's row number is put back.
//!
//! Addresses: `addresses[0]` is the home address, always shown (as the
//! single address was before). Each further address is a block of its own
//! with its use (home, work, temporary, billing, old), its type (mailing
//! only, physical only, both) and optionally the days it is used; a
//! mailing address is a home address of type mailing-only. Below them,
//! "Add another address" (a `<details>` disclosure: no script, reached and
//! opened with the keyboard) holds one blank block; whenever the form comes
//! back (an error, the duplicate check) or is opened again, the blocks
//! typed in are shown and a new blank one waits under the disclosure.
//! Blank blocks are dropped when the form is read, so block numbers are
//! those of the blocks shown.
//!
//! Registration checks for duplicates before saving (see
//! `carefront_domain::matching::Thresholds`): existing patients scoring at
//! or above the lower threshold are shown with the fields that agree and
//! disagree, and nothing is saved on that submit. The form then carries the
//! ids it showed (`reviewed`); submitted again with the same candidates it
//! saves, except that a candidate at or above the upper threshold needs a
//! reason (`override_reason`), which goes into the audit event. Edits carry
//! the version they started from and never overwrite a newer one.

use super::patient_summary::{header, load, sex_label, us_date};
use super::{CsrfForm, csrf_field, local_time, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::ui::patients::today;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::Area;
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::contact::display_phone;
use carefront_domain::directory::{Address, AdministrativeGender, Versioned};
use carefront_domain::matching::{
    Agreement, MatchField, MatchGrade, MatchRecord, MatchScore, Thresholds,
};
use carefront_domain::mpi::changed_fields;
use carefront_domain::patient::{
    AddressType, AddressUse, ContactMethod, Identifier, MAX_ADDRESSES, Patient, PatientAddress,
    PatientContact, Phone, PhoneKind, RegistrationRules,
};
use carefront_store::{StoreError, new_id};
use jiff::civil::Date;
use maud::{Markup, html};
use std::collections::HashMap;

/// Common preferred languages (BCP-47), offered first; any other tag can
/// be typed.
pub const LANGUAGES: [(&str, &str); 19] = [
    ("en", "English"),
    ("es", "Spanish"),
    ("zh", "Chinese"),
    ("zh-Hant", "Chinese, Traditional"),
    ("vi", "Vietnamese"),
    ("tl", "Tagalog"),
    ("ar", "Arabic"),
    ("ko", "Korean"),
    ("ru", "Russian"),
    ("fr", "French"),
    ("ht", "Haitian Creole"),
    ("pt", "Portuguese"),
    ("de", "German"),
    ("hi", "Hindi"),
    ("pl", "Polish"),
    ("ja", "Japanese"),
    ("fa", "Persian"),
    ("so", "Somali"),
    ("ase", "American Sign Language"),
];

/// Relationships of a contact: HL7 v3 RoleCode values, and `Other`.
pub const CONTACT_RELATIONSHIPS: [(&str, &str); 12] = [
    ("SPS", "Spouse"),
    ("DOMPART", "Domestic partner"),
    ("MTH", "Mother"),
    ("FTH", "Father"),
    ("PRN", "Parent"),
    ("CHILD", "Child"),
    ("SIB", "Sibling"),
    ("GRPRN", "Grandparent"),
    ("GUARD", "Guardian"),
    ("FRND", "Friend"),
    ("NBOR", "Neighbor"),
    ("Other", "Other"),
];

const SEXES: [AdministrativeGender; 4] = [
    AdministrativeGender::Female,
    AdministrativeGender::Male,
    AdministrativeGender::Other,
    AdministrativeGender::Unknown,
];

/// Rows the form offers at least; a record with more shows them all.
const PHONE_ROWS: usize = 3;
const CONTACT_ROWS: usize = 2;
const IDENTIFIER_ROWS: usize = 2;
/// Rows read from a submitted form, at most.
const MAX_ROWS: usize = 25;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneRow {
    pub number: String,
    pub kind: String,
    pub sms_consent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRow {
    pub name: String,
    pub relationship: String,
    pub phone: String,
    pub emergency: bool,
    pub guarantor: bool,
}

/// One address block as typed. Block 0 is the home address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRow {
    /// FHIR `Address.use` code; `home` for block 0.
    pub use_: String,
    /// FHIR `Address.type` code, empty when not said.
    pub type_: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    /// Kept as recorded (a hidden input): empty or `US` for US addresses.
    pub country: String,
    /// First and last day at the address, as typed (empty: open).
    pub start: String,
    pub end: String,
}

impl AddressRow {
    fn home() -> Self {
        AddressRow {
            use_: AddressUse::Home.code().into(),
            ..Self::default()
        }
    }

    fn from_address(a: &PatientAddress) -> Self {
        let date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        AddressRow {
            use_: a.use_.code().into(),
            type_: a.type_.map(|t| t.code().to_string()).unwrap_or_default(),
            line1: a.address.line1.clone(),
            line2: a.address.line2.clone().unwrap_or_default(),
            city: a.address.city.clone(),
            state: a.address.state.clone(),
            postal_code: a.address.postal_code.clone(),
            country: a.address.country.clone(),
            start: date(a.start),
            end: date(a.end),
        }
    }

    /// The address this block describes, unchecked (an unknown use reads
    /// as home).
    pub fn to_address(&self) -> PatientAddress {
        PatientAddress {
            use_: AddressUse::from_code(&self.use_).unwrap_or(AddressUse::Home),
            type_: AddressType::from_code(&self.type_),
            start: self.start.parse().ok(),
            end: self.end.parse().ok(),
            address: Address {
                line1: self.line1.clone(),
                line2: Some(self.line2.clone()).filter(|l| !l.is_empty()),
                city: self.city.clone(),
                state: self.state.clone(),
                postal_code: self.postal_code.clone(),
                country: self.country.clone(),
            },
        }
    }

    /// Something was typed into it (the selects do not count).
    fn is_typed(&self) -> bool {
        [
            &self.line1,
            &self.line2,
            &self.city,
            &self.state,
            &self.postal_code,
            &self.start,
            &self.end,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifierRow {
    pub system: String,
    pub value: String,
}

/// The form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientForm {
    pub given: String,
    pub middle: String,
    pub family: String,
    pub suffix: String,
    pub preferred_name: String,
    pub birth_date: String,
    pub sex: String,
    pub gender_identity: String,
    pub pronouns: String,
    /// The home address first, then the other addresses typed in.
    pub addresses: Vec<AddressRow>,
    pub phones: Vec<PhoneRow>,
    pub email: String,
    pub preferred_contact: String,
    pub language: String,
    pub language_other: String,
    pub interpreter_needed: bool,
    pub contacts: Vec<ContactRow>,
    pub alerts: String,
    pub identifiers: Vec<IdentifierRow>,
    /// The version an edit started from.
    pub version: Option<i64>,
    /// Ids of the duplicate candidates already shown, comma-separated.
    pub reviewed: String,
    pub override_reason: String,
}

fn pad<T: Default>(mut rows: Vec<T>, at_least: usize) -> Vec<T> {
    while rows.len() < at_least {
        rows.push(T::default());
    }
    rows
}

impl PatientForm {
    pub fn blank() -> Self {
        PatientForm {
            addresses: vec![AddressRow::home()],
            phones: pad(Vec::new(), PHONE_ROWS),
            contacts: pad(Vec::new(), CONTACT_ROWS),
            identifiers: pad(Vec::new(), IDENTIFIER_ROWS),
            ..Self::default()
        }
    }

    pub fn from_patient(p: &Patient, version: i64) -> Self {
        let home = p.home_address_index();
        let mut addresses = vec![
            home.map(|i| AddressRow::from_address(&p.addresses[i]))
                .unwrap_or_else(AddressRow::home),
        ];
        addresses.extend(
            p.addresses
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != home)
                .map(|(_, a)| AddressRow::from_address(a)),
        );
        let (language, language_other) = match &p.language {
            None => (String::new(), String::new()),
            Some(l) if LANGUAGES.iter().any(|(t, _)| t == l) => (l.clone(), String::new()),
            Some(l) => ("other".to_string(), l.clone()),
        };
        PatientForm {
            given: p.given.clone(),
            middle: p.middle.clone().unwrap_or_default(),
            family: p.family.clone(),
            suffix: p.suffix.clone().unwrap_or_default(),
            preferred_name: p.preferred_name.clone().unwrap_or_default(),
            birth_date: p.birth_date.to_string(),
            sex: p.sex.code().to_string(),
            gender_identity: p.gender_identity.clone().unwrap_or_default(),
            pronouns: p.pronouns.clone().unwrap_or_default(),
            addresses,
            phones: pad(
                p.phones
                    .iter()
                    .map(|ph| PhoneRow {
                        number: display_phone(&ph.number),
                        kind: ph.kind.code().to_string(),
                        sms_consent: ph.sms_consent,
                    })
                    .collect(),
                PHONE_ROWS,
            ),
            email: p.email.clone().unwrap_or_default(),
            preferred_contact: p
                .preferred_contact
                .map(|m| m.code().to_string())
                .unwrap_or_default(),
            language,
            language_other,
            interpreter_needed: p.interpreter_needed,
            contacts: pad(
                p.contacts
                    .iter()
                    .map(|c| ContactRow {
                        name: c.name.clone(),
                        relationship: c.relationship.clone(),
                        phone: c.phone.as_deref().map(display_phone).unwrap_or_default(),
                        emergency: c.emergency,
                        guarantor: c.guarantor,
                    })
                    .collect(),
                CONTACT_ROWS,
            ),
            alerts: p.alerts.join("\n"),
            identifiers: pad(
                p.identifiers
                    .iter()
                    .map(|i| IdentifierRow {
                        system: i.system.clone(),
                        value: i.value.clone(),
                    })
                    .collect(),
                IDENTIFIER_ROWS,
            ),
            version: Some(version),
            reviewed: String::new(),
            override_reason: String::new(),
        }
    }

    /// Reads a submitted form (a checkbox is on when present).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let map: HashMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let text = |k: &str| map.get(k).copied().unwrap_or_default().to_string();
        let on = |k: &str| map.contains_key(k);
        let rows = |prefix: &str, first: &str| {
            (0..MAX_ROWS)
                .take_while(|i| map.contains_key(format!("{prefix}[{i}].{first}").as_str()))
                .count()
        };
        let phones = (0..rows("phones", "number"))
            .map(|i| PhoneRow {
                number: text(&format!("phones[{i}].number")),
                kind: text(&format!("phones[{i}].kind")),
                sms_consent: on(&format!("phones[{i}].sms_consent")),
            })
            .collect();
        let contacts = (0..rows("contacts", "name"))
            .map(|i| ContactRow {
                name: text(&format!("contacts[{i}].name")),
                relationship: text(&format!("contacts[{i}].relationship")),
                phone: text(&format!("contacts[{i}].phone")),
                emergency: on(&format!("contacts[{i}].emergency")),
                guarantor: on(&format!("contacts[{i}].guarantor")),
            })
            .collect();
        // Block 0 (home) always; other blocks only when typed in. Blocks are
        // numbered as shown, which a blank one in between would break.
        let address = |i: usize| AddressRow {
            use_: text(&format!("addresses[{i}].use")),
            type_: text(&format!("addresses[{i}].type")),
            line1: text(&format!("addresses[{i}].line1")),
            line2: text(&format!("addresses[{i}].line2")),
            city: text(&format!("addresses[{i}].city")),
            state: text(&format!("addresses[{i}].state")),
            postal_code: text(&format!("addresses[{i}].postal_code")),
            country: text(&format!("addresses[{i}].country")),
            start: text(&format!("addresses[{i}].start")),
            end: text(&format!("addresses[{i}].end")),
        };
        let mut addresses = vec![AddressRow {
            use_: AddressUse::Home.code().into(),
            ..address(0)
        }];
        addresses.extend(
            (1..MAX_ROWS)
                .filter(|i| map.contains_key(format!("addresses[{i}].line1").as_str()))
                .map(address)
                .filter(AddressRow::is_typed),
        );
        let identifiers = (0..rows("identifiers", "system"))
            .map(|i| IdentifierRow {
                system: text(&format!("identifiers[{i}].system")),
                value: text(&format!("identifiers[{i}].value")),
            })
            .collect();
        PatientForm {
            given: text("given"),
            middle: text("middle"),
            family: text("family"),
            suffix: text("suffix"),
            preferred_name: text("preferred_name"),
            birth_date: text("birth_date"),
            sex: text("sex"),
            gender_identity: text("gender_identity"),
            pronouns: text("pronouns"),
            addresses,
            phones: pad(phones, PHONE_ROWS),
            email: text("email"),
            preferred_contact: text("preferred_contact"),
            language: text("language"),
            language_other: text("language_other"),
            interpreter_needed: on("interpreter_needed"),
            contacts: pad(contacts, CONTACT_ROWS),
            alerts: text("alerts"),
            identifiers: pad(identifiers, IDENTIFIER_ROWS),
            version: map.get("version").and_then(|v| v.trim().parse().ok()),
            reviewed: text("reviewed"),
            override_reason: text("override_reason"),
        }
    }

    /// The patient the form describes, validated by the organization's
    /// rules; errors are keyed by input name. An edit keeps the MRN, status
    /// and merge link of `base`.
    pub fn to_patient(
        &self,
        base: Option<&Patient>,
        rules: &RegistrationRules,
        today: Date,
    ) -> Result<Patient, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let birth_date = match parse_date(&self.birth_date) {
            Ok(d) => d,
            Err(message) => {
                errors.add("birth_date", message);
                today
            }
        };
        let sex = AdministrativeGender::from_code(&self.sex).unwrap_or_else(|| {
            errors.add("sex", "is required");
            AdministrativeGender::Unknown
        });
        let preferred_contact = match self.preferred_contact.as_str() {
            "" => None,
            code => ContactMethod::from_code(code).or_else(|| {
                errors.add("preferred_contact", "choose one of the listed methods");
                None
            }),
        };
        let address_rows: Vec<usize> = (0..self.addresses.len())
            .filter(|&i| self.addresses[i].is_typed())
            .collect();
        let addresses: Vec<PatientAddress> = address_rows
            .iter()
            .map(|&i| {
                let row = &self.addresses[i];
                let field = |name: &str| format!("addresses[{i}].{name}");
                let use_ = if i == 0 {
                    AddressUse::Home
                } else {
                    AddressUse::from_code(&row.use_).unwrap_or_else(|| {
                        let message = if row.use_.is_empty() {
                            "is required: home (a mailing address is a home address of kind \
                             mailing only), work, temporary, billing or old"
                        } else {
                            "choose one of the listed uses"
                        };
                        errors.add(field("use"), message);
                        AddressUse::Home
                    })
                };
                let type_ = match row.type_.as_str() {
                    "" => None,
                    code => AddressType::from_code(code).or_else(|| {
                        errors.add(field("type"), "choose one of the listed kinds");
                        None
                    }),
                };
                let mut date = |name: &str, text: &str| match text.trim() {
                    "" => None,
                    _ => match parse_date(text) {
                        Ok(d) => Some(d),
                        Err(message) => {
                            errors.add(field(name), message);
                            None
                        }
                    },
                };
                let start = date("start", &row.start);
                let end = date("end", &row.end);
                PatientAddress {
                    use_,
                    type_,
                    start,
                    end,
                    address: Address {
                        line1: row.line1.clone(),
                        line2: Some(row.line2.clone()).filter(|l| !l.trim().is_empty()),
                        city: row.city.clone(),
                        state: row.state.clone(),
                        postal_code: row.postal_code.clone(),
                        country: row.country.clone(),
                    },
                }
            })
            .collect();
        let language = match self.language.as_str() {
            "other" => self.language_other.clone(),
            l => l.to_string(),
        };

        let phone_rows: Vec<usize> = (0..self.phones.len())
            .filter(|&i| !self.phones[i].number.trim().is_empty())
            .collect();
        let contact_rows: Vec<usize> = (0..self.contacts.len())
            .filter(|&i| {
                let c = &self.contacts[i];
                !(c.name.trim().is_empty()
                    && c.phone.trim().is_empty()
                    && c.relationship.is_empty())
            })
            .collect();
        let identifier_rows: Vec<usize> = (0..self.identifiers.len())
            .filter(|&i| {
                let id = &self.identifiers[i];
                !(id.system.trim().is_empty() && id.value.trim().is_empty())
            })
            .collect();

        let patient = Patient {
            mrn: base.map(|b| b.mrn.clone()).unwrap_or_default(),
            given: self.given.clone(),
            middle: Some(self.middle.clone()),
            family: self.family.clone(),
            suffix: Some(self.suffix.clone()),
            preferred_name: Some(self.preferred_name.clone()),
            birth_date,
            sex,
            gender_identity: Some(self.gender_identity.clone()),
            pronouns: Some(self.pronouns.clone()),
            addresses,
            phones: phone_rows
                .iter()
                .map(|&i| {
                    let row = &self.phones[i];
                    Phone {
                        number: row.number.clone(),
                        kind: PhoneKind::from_code(&row.kind).unwrap_or(PhoneKind::Mobile),
                        sms_consent: row.sms_consent,
                    }
                })
                .collect(),
            email: Some(self.email.clone()),
            language: Some(language),
            interpreter_needed: self.interpreter_needed,
            preferred_contact,
            contacts: contact_rows
                .iter()
                .map(|&i| {
                    let c = &self.contacts[i];
                    PatientContact {
                        name: c.name.clone(),
                        relationship: c.relationship.clone(),
                        phone: Some(c.phone.clone()),
                        emergency: c.emergency,
                        guarantor: c.guarantor,
                    }
                })
                .collect(),
            alerts: self.alerts.lines().map(str::to_string).collect(),
            identifiers: identifier_rows
                .iter()
                .map(|&i| Identifier {
                    system: self.identifiers[i].system.clone(),
                    value: self.identifiers[i].value.clone(),
                })
                .collect(),
            active: base.is_none_or(|b| b.active),
            replaced_by: base.and_then(|b| b.replaced_by.clone()),
        };
        match patient.validate(rules, today) {
            Ok(p) if errors.is_empty() => Ok(p),
            Ok(_) => Err(errors),
            Err(found) => {
                for e in found.errors() {
                    let field = row_field(&e.field, "phones", &phone_rows)
                        .or_else(|| row_field(&e.field, "addresses", &address_rows))
                        .or_else(|| row_field(&e.field, "contacts", &contact_rows))
                        .or_else(|| row_field(&e.field, "identifiers", &identifier_rows))
                        .unwrap_or_else(|| e.field.clone());
                    if errors.for_field(&field).is_none() || field != "birth_date" {
                        errors.add(field, e.message.clone());
                    }
                }
                Err(errors)
            }
        }
    }
}

/// `phones[1].number` of the validated list, as the form's row.
fn row_field(field: &str, list: &str, rows: &[usize]) -> Option<String> {
    let rest = field.strip_prefix(list)?.strip_prefix('[')?;
    let (index, tail) = rest.split_once(']')?;
    let row = rows.get(index.parse::<usize>().ok()?)?;
    Some(format!("{list}[{row}]{tail}"))
}

/// A date as `<input type=date>` sends it, or typed as 03/14/1962.
fn parse_date(text: &str) -> Result<Date, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is required".into());
    }
    if let Ok(d) = t.parse::<Date>() {
        return Ok(d);
    }
    let parts: Vec<&str> = t.split(['/', '-', '.']).collect();
    if let [m, d, y] = parts[..]
        && y.len() == 4
        && let (Ok(m), Ok(d), Ok(y)) = (m.parse::<i8>(), d.parse::<i8>(), y.parse::<i16>())
        && let Ok(date) = Date::new(y, m, d)
    {
        return Ok(date);
    }
    Err(format!("'{t}' is not a date (use MM/DD/YYYY)"))
}

/// The input an error is shown at: errors about a whole list sit at its
/// first input.
fn anchor(field: &str) -> String {
    match field {
        "phones" => "phones[0].number".into(),
        "addresses" => "addresses[0].line1".into(),
        "contacts" => "contacts[0].name".into(),
        "identifiers" => "identifiers[0].system".into(),
        f if f.starts_with("alerts") => "alerts".into(),
        // Inputs the page keeps hidden (the home block's use and type, a
        // recorded country): at the block's street address.
        f if (f.starts_with("addresses[") && f.ends_with(".country"))
            || matches!(f, "addresses[0].use" | "addresses[0].type") =>
        {
            format!("{}.line1", f.split_once('.').map_or(f, |(row, _)| row))
        }
        f => f.into(),
    }
}

pub fn input_id(name: &str) -> String {
    let mut id = String::from("f-");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_end_matches('-').to_string()
}

/// An error as a sentence naming its field ("Phone 2 '12' is not a phone
/// number"); errors about a whole list read on their own.
pub fn sentence(field: &str, message: &str) -> String {
    match field {
        "phones" | "contacts" | "identifiers" => {
            let mut m = message.to_string();
            if let Some(first) = m.get(..1) {
                let upper = first.to_uppercase();
                m.replace_range(..1, &upper);
            }
            m
        }
        _ => format!("{} {message}", label(field)),
    }
}

/// Where a field sits in the form, so that the error summary follows it.
fn form_order(field: &str) -> usize {
    const ORDER: [&str; 18] = [
        "given",
        "middle",
        "family",
        "suffix",
        "preferred_name",
        "birth_date",
        "sex",
        "gender_identity",
        "pronouns",
        "addresses",
        "phones",
        "email",
        "preferred_contact",
        "language",
        "alerts",
        "contacts",
        "identifiers",
        "version",
    ];
    ORDER
        .iter()
        .position(|f| field.starts_with(f))
        .unwrap_or(ORDER.len())
}

/// How the error summary and the inline messages name a field.
pub fn label(field: &str) -> String {
    let row = |list: &str| -> Option<(usize, String)> {
        let rest = field.strip_prefix(list)?.strip_prefix('[')?;
        let (i, tail) = rest.split_once(']')?;
        Some((
            i.parse::<usize>().ok()? + 1,
            tail.trim_start_matches('.').to_string(),
        ))
    };
    if let Some((n, tail)) = row("phones") {
        return match tail.as_str() {
            "number" => format!("Phone {n}"),
            t => format!("Phone {n} {t}"),
        };
    }
    if let Some((n, tail)) = row("addresses") {
        let (home, other) = match tail.as_str() {
            "line1" => ("Street address", "street address"),
            "line2" => ("Apartment, suite", "apartment, suite"),
            "city" => ("City", "city"),
            "state" => ("State", "state"),
            "postal_code" => ("ZIP code", "ZIP code"),
            "country" => ("Country", "country"),
            "use" => ("Use", "use"),
            "type" => ("Kind", "kind"),
            "start" => ("From", "from"),
            "end" => ("Until", "until"),
            other => (other, other),
        };
        // The home block reads as the single address did.
        return match n {
            1 => home.to_string(),
            n => format!("Address {n} {other}"),
        };
    }
    if let Some((n, tail)) = row("contacts") {
        return format!("Contact {n} {}", tail.replace('_', " "));
    }
    if let Some((n, tail)) = row("identifiers") {
        return format!("Identifier {n} {tail}");
    }
    if let Some((n, _)) = row("alerts") {
        return format!("Alert {n}");
    }
    match field {
        "given" => "Given name",
        "middle" => "Middle names",
        "family" => "Family name",
        "suffix" => "Suffix",
        "preferred_name" => "Preferred name",
        "birth_date" => "Date of birth",
        "sex" => "Sex",
        "gender_identity" => "Gender identity",
        "pronouns" => "Pronouns",
        "addresses" => "Home address",
        "phones" => "Phone numbers",
        "email" => "Email",
        "preferred_contact" => "Preferred contact",
        "language" => "Language",
        "contacts" => "Contacts",
        "alerts" => "Alerts",
        "identifiers" => "Identifiers",
        "override_reason" => "Reason",
        "version" => "Version",
        other => other,
    }
    .to_string()
}

/// What kind of text input, how wide (`w-xs` to `w-l`), whether required,
/// and a hint shown under it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec<'a> {
    kind: &'a str,
    size: &'a str,
    required: bool,
    hint: Option<&'a str>,
    autofocus: bool,
}

pub(super) fn spec<'a>(kind: &'a str, size: &'a str) -> Spec<'a> {
    Spec {
        kind,
        size,
        required: false,
        hint: None,
        autofocus: false,
    }
}

impl<'a> Spec<'a> {
    pub(super) fn req(self, required: bool) -> Self {
        Spec { required, ..self }
    }

    pub(super) fn focus(self, autofocus: bool) -> Self {
        Spec { autofocus, ..self }
    }

    pub(super) fn hint(self, hint: &'a str) -> Self {
        Spec {
            hint: Some(hint),
            ..self
        }
    }
}

/// Renders inputs with their label, inline errors and ARIA links.
pub(super) struct Fields<'a> {
    pub(super) errors: &'a ValidationErrors,
    /// An error as the sentence shown at its input.
    pub(super) sentence: fn(&str, &str) -> String,
}

/// The registration form's sentences for its inputs.
fn inline_sentence(field: &str, message: &str) -> String {
    format!("{}.", sentence(field, message))
}

impl Fields<'_> {
    fn messages(&self, name: &str) -> Vec<String> {
        self.errors
            .errors()
            .iter()
            .filter(|e| anchor(&e.field) == name)
            .map(|e| (self.sentence)(&e.field, &e.message))
            .collect()
    }

    /// (aria-invalid, the message's id, the message) of the input `name`.
    pub(super) fn error_block(&self, name: &str) -> (Option<&'static str>, Option<String>, Markup) {
        let messages = self.messages(name);
        if messages.is_empty() {
            return (None, None, html! {});
        }
        let id = format!("{}-error", input_id(name));
        let block = html! { p.field-error id=(id) { @for m in &messages { (m) " " } } };
        (Some("true"), Some(id), block)
    }

    fn described(error: Option<String>, hint: Option<String>) -> Option<String> {
        let ids: Vec<String> = error.into_iter().chain(hint).collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    /// A text input of the kind, width and requiredness of `spec`.
    pub(super) fn text(&self, name: &str, caption: &str, value: &str, spec: Spec) -> Markup {
        let Spec {
            kind,
            size,
            required,
            hint,
            autofocus,
        } = spec;
        let id = input_id(name);
        let (invalid, error_id, block) = self.error_block(name);
        let hint_id = hint.map(|_| format!("{id}-hint"));
        html! {
            div.field.(size).invalid[invalid.is_some()] {
                label for=(id) { (caption) @if required { " " span.req { "required" } } }
                input id=(id) name=(name) type=(kind) value=(value) autocomplete="off" required[required]
                    autofocus[autofocus] aria-invalid=[invalid] aria-describedby=[Self::described(error_id, hint_id.clone())];
                @if let (Some(h), Some(hid)) = (hint, &hint_id) { span.hint id=(hid) { (h) } }
                (block)
            }
        }
    }

    pub(super) fn select(
        &self,
        name: &str,
        caption: &str,
        value: &str,
        options: &[(String, String)],
        required: bool,
        size: &str,
    ) -> Markup {
        let id = input_id(name);
        let (invalid, error_id, block) = self.error_block(name);
        html! {
            div.field.(size).invalid[invalid.is_some()] {
                label for=(id) { (caption) @if required { " " span.req { "required" } } }
                select id=(id) name=(name) required[required] aria-invalid=[invalid] aria-describedby=[error_id] {
                    @for (v, l) in options { option value=(v) selected[v == value] { (l) } }
                }
                (block)
            }
        }
    }

    /// A checkbox; `context` completes its label for screen readers
    /// ("Texts OK" on which phone).
    pub(super) fn check(&self, name: &str, caption: &str, context: &str, on: bool) -> Markup {
        let id = input_id(name);
        html! {
            div.tick {
                input type="checkbox" id=(id) name=(name) value="on" checked[on];
                label for=(id) { (caption) @if !context.is_empty() { span.visually-hidden { " " (context) } } }
            }
        }
    }
}

fn options(
    pairs: impl IntoIterator<Item = (String, String)>,
    none: Option<&str>,
) -> Vec<(String, String)> {
    none.map(|n| (String::new(), n.to_string()))
        .into_iter()
        .chain(pairs)
        .collect()
}

fn grade_label(grade: MatchGrade) -> &'static str {
    match grade {
        MatchGrade::Certain => "Almost certainly the same person",
        MatchGrade::Probable => "Probably the same person",
        MatchGrade::Possible => "Possibly the same person",
        MatchGrade::CertainlyNot => "Not the same person",
    }
}

/// What the matcher compared, shown beside each other.
pub fn match_value(p: &Patient, field: MatchField) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match field {
        MatchField::Given => p.given.clone(),
        MatchField::Middle => opt(&p.middle),
        MatchField::Family => p.family.clone(),
        MatchField::BirthDate => us_date(p.birth_date),
        MatchField::Sex => sex_label(p.sex).to_string(),
        MatchField::Phone => p
            .phones
            .iter()
            .map(|ph| display_phone(&ph.number))
            .collect::<Vec<_>>()
            .join(", "),
        MatchField::Email => opt(&p.email),
        MatchField::Address => p
            .addresses
            .iter()
            .map(|a| a.address.line1.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        MatchField::PostalCode => p
            .addresses
            .iter()
            .map(|a| a.address.postal_code.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The comparison of two records, field by field.
pub fn comparison_table(
    caption: &str,
    left_title: &str,
    left: &Patient,
    right_title: &str,
    right: &Patient,
    score: &MatchScore,
) -> Markup {
    html! {
        table.dense.compare {
            caption.visually-hidden { (caption) }
            thead { tr {
                th scope="col" { "Field" } th scope="col" { (left_title) } th scope="col" { (right_title) }
                th scope="col" { "Comparison" } th scope="col".num { "Weight" }
            } }
            tbody {
                @for f in MatchField::ALL {
                    @let c = score.field(f);
                    tr {
                        th scope="row" { (f.label()) }
                        td { (match_value(left, f)) }
                        td { (match_value(right, f)) }
                        @match c.agreement {
                            Agreement::Exact => td.agree { "Same" },
                            Agreement::Partial => td.partial { "Similar" @if !c.note.is_empty() { ": " (c.note) } },
                            Agreement::Disagree => td.disagree { "Different" @if !c.note.is_empty() { ": " (c.note) } },
                            Agreement::Missing => td.muted { "Not on both" },
                        }
                        td.num { (format!("{:+.1}", c.weight)) }
                    }
                }
            }
        }
    }
}

/// The duplicate-candidate panel shown before a registration is saved.
fn duplicate_panel(
    f: &Fields,
    entered: &Patient,
    candidates: &[(Versioned<Patient>, MatchScore)],
    reason: &str,
    today: Date,
) -> Markup {
    let t = Thresholds::DEFAULT;
    let certain = candidates
        .iter()
        .filter(|(_, s)| s.grade == MatchGrade::Certain)
        .count();
    let (invalid, error_id, block) = f.error_block("override_reason");
    html! {
        section.duplicates #duplicates role="region" aria-labelledby="duplicates-title" tabindex="-1" autofocus {
            h2 #duplicates-title {
                @if certain > 0 {
                    "Stop: this patient is probably registered already"
                } @else {
                    "Check: possible existing patients"
                }
            }
            p {
                "Nothing was saved yet. "
                @match candidates.len() {
                    1 => { "1 existing patient resembles this registration." }
                    n => { (n) " existing patients resemble this registration, most alike first." }
                }
                " A score of " (t.upper) " or more means almost certainly the same person; from "
                (t.lower) " to " (t.upper) ", possibly."
            }
            @for (c, score) in candidates {
                article.candidate.(grade_class(score.grade)) {
                    h3 {
                        a href=(format!("/patients/{}", c.id)) { (c.value.display_name()) }
                        span.score { "Score " (format!("{:.1}", score.total)) " · " (grade_label(score.grade)) }
                    }
                    p.patient-line {
                        span { "DOB " (us_date(c.value.birth_date)) " (" (c.value.age_on(today)) " y)" }
                        span { "MRN " (c.value.mrn) }
                        @if let Some(ph) = c.value.phones.first() { span { (display_phone(&ph.number)) } }
                        a.button.secondary href=(format!("/patients/{}", c.id)) { "Use this patient" }
                    }
                    (comparison_table(
                        &format!("This registration compared with {}", c.value.display_name()),
                        "This registration", entered,
                        &format!("MRN {}", c.value.mrn), &c.value,
                        score,
                    ))
                }
            }
            div.decision {
                @if certain > 0 {
                    div.field.wide.invalid[invalid.is_some()] {
                        label for="f-override_reason" { "Reason to register a new patient anyway" " " span.req { "required" } }
                        input #f-override_reason name="override_reason" type="text" value=(reason) autocomplete="off"
                            aria-invalid=[invalid] aria-describedby=[Fields::described(error_id, Some("f-override_reason-hint".into()))];
                        span.hint #f-override_reason-hint { "For example: “twin sibling, different person”. The reason is kept in the audit log." }
                        (block)
                    }
                    button type="submit" { "Register new patient anyway" }
                } @else {
                    button type="submit" { "None of these: register new patient" }
                }
            }
        }
    }
}

fn grade_class(grade: MatchGrade) -> &'static str {
    match grade {
        MatchGrade::Certain => "certain",
        MatchGrade::Probable => "probable",
        _ => "possible",
    }
}

/// The inputs of address block `i`: the street lines, city, state and ZIP
/// code, and (other blocks, or a home address recorded with them) the days
/// it is used. The home block's own inputs keep the names and captions the
/// single address had, under `addresses[0]`.
fn address_inputs(f: &Fields, i: usize, row: &AddressRow, required: bool) -> Markup {
    let name = |part: &str| format!("addresses[{i}].{part}");
    // Short captions: the block's legend says which address they are of.
    let caption = |part: &str| label(&format!("addresses[0].{part}"));
    let dates = i > 0 || !row.start.is_empty() || !row.end.is_empty();
    html! {
        div.row {
            (f.text(&name("line1"), &caption("line1"), &row.line1, spec("text", "w-l").req(required)))
            (f.text(&name("line2"), &caption("line2"), &row.line2, spec("text", "w-s")))
        }
        div.row {
            (f.text(&name("city"), &caption("city"), &row.city, spec("text", "w-m").req(required)))
            (f.text(&name("state"), &caption("state"), &row.state, spec("text", "w-s").req(required)))
            (f.text(&name("postal_code"), &caption("postal_code"), &row.postal_code, spec("text", "w-s").req(required)))
        }
        @if !row.country.is_empty() { input type="hidden" name=(name("country")) value=(row.country); }
        @if dates {
            div.row {
                (f.text(&name("start"), &caption("start"), &row.start, spec("date", "w-s").hint("Optional: the first day at this address.")))
                (f.text(&name("end"), &caption("end"), &row.end, spec("date", "w-s").hint("Optional: the last day, once the patient has left.")))
            }
        }
    }
}

/// The inputs of the home address block (`addresses[0]`), its use and
/// type hidden.
pub(super) fn home_address_inputs(f: &Fields, home: &AddressRow, required: bool) -> Markup {
    html! {
        input type="hidden" name="addresses[0].use" value="home";
        @if !home.type_.is_empty() { input type="hidden" name="addresses[0].type" value=(home.type_); }
        (address_inputs(f, 0, home, required))
    }
}

/// The home address block, one block per other address, and a blank block
/// under "Add another address" (see the module documentation).
fn address_blocks(f: &Fields, rows: &[AddressRow], need_address: bool) -> Markup {
    let uses = options(
        AddressUse::ALL
            .iter()
            .map(|u| (u.code().to_string(), u.label().to_string())),
        Some("Choose…"),
    );
    let kinds = options(
        [
            (AddressType::Both, "Mailing and physical"),
            (AddressType::Postal, "Mailing only (PO box, care of)"),
            (AddressType::Physical, "Physical only (no mail)"),
        ]
        .iter()
        .map(|(t, l)| (t.code().to_string(), l.to_string())),
        Some("Not said"),
    );
    let home = rows.first().cloned().unwrap_or_else(AddressRow::home);
    let other = |i: usize, row: &AddressRow| {
        html! {
            div.row {
                (f.select(&format!("addresses[{i}].use"), "Use", &row.use_, &uses, false, "w-s"))
                (f.select(&format!("addresses[{i}].type"), "Kind", &row.type_, &kinds, false, "w-m"))
            }
            (address_inputs(f, i, row, false))
        }
    };
    // The blank block's number: after every block shown.
    let next = rows.len().max(1);
    html! {
        fieldset #home-address {
            legend { "Home address" }
            (home_address_inputs(f, &home, need_address))
        }
        @for (i, row) in rows.iter().enumerate().skip(1) {
            fieldset.address id=(format!("address-{}", i + 1)) {
                legend { "Address " (i + 1) }
                (other(i, row))
            }
        }
        @if next < MAX_ADDRESSES.min(MAX_ROWS) {
            details.add-address #add-address {
                summary { "Add another address" }
                fieldset.address {
                    legend { "Address " (next + 1) " (optional: a mailing, work, temporary, billing or old address)" }
                    (other(next, &AddressRow::default()))
                }
            }
        }
    }
}

type Candidates<'a> = &'a [(Versioned<Patient>, MatchScore)];

enum Mode<'a> {
    Create,
    Edit(&'a Versioned<Patient>),
}

struct View<'a> {
    mode: Mode<'a>,
    status: StatusCode,
    form: &'a PatientForm,
    errors: &'a ValidationErrors,
    rules: &'a RegistrationRules,
    /// The validated registration and its candidates, when found.
    duplicates: Option<(&'a Patient, Candidates<'a>)>,
    /// Shown above the form when an edit met a newer version.
    conflict: Option<Markup>,
}

fn render(state: &AppState, p: &Principal, v: View) -> Response {
    let today = today();
    let form = v.form;
    let f = Fields {
        errors: v.errors,
        sentence: inline_sentence,
    };
    let (title, action, submit) = match v.mode {
        Mode::Create => (
            "Register a patient".to_string(),
            "/patients/new".to_string(),
            "Register patient",
        ),
        Mode::Edit(cur) => (
            format!("Edit {}", cur.value.display_name()),
            format!("/patients/{}/edit", cur.id),
            "Save changes",
        ),
    };
    let cancel = match v.mode {
        Mode::Create => "/patients".to_string(),
        Mode::Edit(cur) => format!("/patients/{}", cur.id),
    };
    let mut shown_errors: Vec<_> = v
        .errors
        .errors()
        .iter()
        .filter(|e| e.field != "override_reason" || v.duplicates.is_none())
        .collect();
    shown_errors.sort_by_key(|e| form_order(&e.field));
    let sexes = options(
        SEXES
            .iter()
            .map(|s| (s.code().to_string(), sex_label(*s).to_string())),
        Some("Choose…"),
    );
    let kinds = options(
        PhoneKind::ALL
            .iter()
            .map(|k| (k.code().to_string(), k.label().to_string())),
        None,
    );
    let methods = options(
        ContactMethod::ALL
            .iter()
            .map(|m| (m.code().to_string(), m.label().to_string())),
        Some("No preference"),
    );
    let languages = options(
        LANGUAGES
            .iter()
            .map(|(t, l)| (t.to_string(), format!("{l} ({t})")))
            .chain([("other".to_string(), "Other: type the tag".to_string())]),
        Some("Not recorded"),
    );
    let relationships = options(
        CONTACT_RELATIONSHIPS
            .iter()
            .map(|(c, l)| (c.to_string(), l.to_string())),
        Some("Choose…"),
    );
    let known_relationship =
        |r: &str| r.is_empty() || CONTACT_RELATIONSHIPS.iter().any(|(c, _)| *c == r);
    let need_address = v.rules.require_address;
    // The cursor starts in the first field unless something needs reading.
    let start_here = shown_errors.is_empty() && v.duplicates.is_none() && v.conflict.is_none();
    let content = html! {
        @if let Mode::Edit(cur) = v.mode { (header(cur, today)) }
        @if let Some(c) = &v.conflict { (c) }
        @if !shown_errors.is_empty() {
            div.error #form-errors role="alert" tabindex="-1" autofocus[v.duplicates.is_none()] {
                p { "Nothing was saved. Please correct:" }
                ul { @for e in &shown_errors {
                    li { a href=(format!("#{}", input_id(&anchor(&e.field)))) { (sentence(&e.field, &e.message)) } }
                } }
            }
        }
        form #patient-form.patient-form method="post" action=(action) novalidate {
            (csrf_field(p))
            @if let Some(version) = form.version { input type="hidden" name="version" value=(version); }
            @if let Some((entered, candidates)) = v.duplicates {
                input type="hidden" name="reviewed" value=(candidates.iter().map(|(c, _)| c.id.as_str()).collect::<Vec<_>>().join(","));
                (duplicate_panel(&f, entered, candidates, &form.override_reason, today))
            }
            fieldset {
                legend { "Legal name" }
                div.row {
                    (f.text("given", "Given name", &form.given, spec("text", "w-m").req(true).focus(start_here)))
                    (f.text("middle", "Middle names", &form.middle, spec("text", "w-m")))
                    (f.text("family", "Family name", &form.family, spec("text", "w-m").req(true)))
                    (f.text("suffix", "Suffix", &form.suffix, spec("text", "w-xs")))
                }
                div.row {
                    (f.text("preferred_name", "Preferred name", &form.preferred_name, spec("text", "w-m").hint("What the patient likes to be called.")))
                }
            }
            fieldset {
                legend { "Birth, sex and identity" }
                div.row {
                    (f.text("birth_date", "Date of birth", &form.birth_date, spec("date", "w-s").req(true)))
                    (f.select("sex", "Sex (administrative)", &form.sex, &sexes, true, "w-s"))
                }
                div.row {
                    (f.text("gender_identity", "Gender identity", &form.gender_identity, spec("text", "w-m")))
                    (f.text("pronouns", "Pronouns", &form.pronouns, spec("text", "w-s")))
                }
            }
            (address_blocks(&f, &form.addresses, need_address))
            fieldset {
                legend { "Phones" }
                @for (i, ph) in form.phones.iter().enumerate() {
                    div.row {
                        (f.text(&format!("phones[{i}].number"), &format!("Phone {}", i + 1), &ph.number, spec("tel", "w-m").req(i == 0 && v.rules.require_phone)))
                        (f.select(&format!("phones[{i}].kind"), &format!("Phone {} kind", i + 1), if ph.kind.is_empty() { ["mobile", "home", "work"].get(i).copied().unwrap_or("mobile") } else { &ph.kind }, &kinds, false, "w-kind"))
                        (f.check(&format!("phones[{i}].sms_consent"), "Texts OK", &format!("on phone {}", i + 1), ph.sms_consent))
                    }
                }
            }
            fieldset {
                legend { "Email, language and contact preference" }
                div.row {
                    (f.text("email", "Email", &form.email, spec("email", "w-l").req(v.rules.require_email)))
                    (f.select("preferred_contact", "Preferred contact", &form.preferred_contact, &methods, false, "w-s"))
                }
                div.row {
                    (f.select("language", "Preferred language", &form.language, &languages, false, "w-m"))
                    (f.text("language_other", "Other language tag", &form.language_other, spec("text", "w-m").hint("BCP-47, e.g. hmn or es-MX")))
                    (f.check("interpreter_needed", "Interpreter needed", "", form.interpreter_needed))
                }
            }
            fieldset {
                legend { "Alerts" }
                @let (invalid, error_id, block) = f.error_block("alerts");
                div.field.w-l.invalid[invalid.is_some()] {
                    label for="f-alerts" { "Alerts, one per line" }
                    textarea #f-alerts name="alerts" rows="3" aria-invalid=[invalid]
                        aria-describedby=[Fields::described(error_id, Some("f-alerts-hint".into()))] { (form.alerts) }
                    span.hint #f-alerts-hint { "Shown at the top of every screen about this patient, e.g. “needs wheelchair”, “hard of hearing”." }
                    (block)
                }
            }
            fieldset.wide {
                legend { "Emergency contacts and guarantor" }
                @for (i, c) in form.contacts.iter().enumerate() {
                    @let rels = if known_relationship(&c.relationship) { relationships.clone() } else {
                        let mut r = relationships.clone();
                        r.push((c.relationship.clone(), c.relationship.clone()));
                        r
                    };
                    div.row {
                        (f.text(&format!("contacts[{i}].name"), &format!("Contact {} name", i + 1), &c.name, spec("text", "w-m")))
                        (f.select(&format!("contacts[{i}].relationship"), "Relationship", &c.relationship, &rels, false, "w-s"))
                        (f.text(&format!("contacts[{i}].phone"), "Phone", &c.phone, spec("tel", "w-s")))
                        (f.check(&format!("contacts[{i}].emergency"), "Emergency contact", &format!("(contact {})", i + 1), c.emergency))
                        (f.check(&format!("contacts[{i}].guarantor"), "Guarantor", &format!("(contact {})", i + 1), c.guarantor))
                    }
                }
            }
            fieldset {
                legend { "Other identifiers (optional)" }
                @for (i, id) in form.identifiers.iter().enumerate() {
                    div.row {
                        (f.text(&format!("identifiers[{i}].system"), &format!("Identifier {} system", i + 1), &id.system, spec("text", "w-m")))
                        (f.text(&format!("identifiers[{i}].value"), "Value", &id.value, spec("text", "w-s")))
                    }
                }
                p.hint { "Another system's number for this patient, e.g. system urn:oid:2.16.840.1.113883.4.3.48 (Texas driver's licence)." }
            }
            div.form-actions {
                button type="submit" { (submit) }
                a href=(cancel) { "Cancel" }
            }
        }
    };
    (
        v.status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Patients,
            &title,
            content,
        ),
    )
        .into_response()
}

async fn rules(state: &AppState, org_id: &str) -> Result<RegistrationRules, Response> {
    state
        .db
        .setting::<RegistrationRules>(org_id)
        .await
        .map_err(ops::internal_error)
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let rules = match rules(&state, &p.org_id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    render(
        &state,
        &p,
        View {
            mode: Mode::Create,
            status: StatusCode::OK,
            form: &PatientForm::blank(),
            errors: &ValidationErrors::new(),
            rules: &rules,
            duplicates: None,
            conflict: None,
        },
    )
}

pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let form = PatientForm::from_pairs(&pairs);
    let rules = match rules(&state, &p.org_id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let view = |status, errors| View {
        mode: Mode::Create,
        status,
        form: &form,
        errors,
        rules: &rules,
        duplicates: None,
        conflict: None,
    };
    let patient = match form.to_patient(None, &rules, today()) {
        Ok(v) => v,
        Err(errors) => return render(&state, &p, view(StatusCode::UNPROCESSABLE_ENTITY, &errors)),
    };
    let thresholds = Thresholds::DEFAULT;
    let candidates = match state
        .db
        .match_candidates(&p.org_id, &MatchRecord::from(&patient), &thresholds)
        .await
    {
        Ok(c) => c,
        Err(e) => return ops::internal_error(e),
    };
    let reviewed: Vec<&str> = form.reviewed.split(',').map(str::trim).collect();
    let unreviewed = candidates
        .iter()
        .any(|(c, _)| !reviewed.contains(&c.id.as_str()));
    let certain = candidates
        .iter()
        .any(|(_, s)| s.grade == MatchGrade::Certain);
    let reason = form.override_reason.trim();
    if unreviewed || (certain && reason.is_empty()) {
        let mut errors = ValidationErrors::new();
        let status = if unreviewed {
            StatusCode::CONFLICT
        } else {
            errors.add(
                "override_reason",
                "is required: an existing patient is almost certainly this person",
            );
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let mut response = render(
            &state,
            &p,
            View {
                duplicates: Some((&patient, &candidates)),
                ..view(status, &errors)
            },
        );
        for (c, score) in &candidates {
            note(
                &mut response,
                AuditNote::new(Action::Search, "Patient", Some(&c.id))
                    .patient(&c.id)
                    .detail(format!(
                        "shown as a possible duplicate at registration (score {:.1})",
                        score.total
                    )),
            );
        }
        return response;
    }

    let id = new_id();
    let detail = match candidates.first() {
        None => "registered; duplicate check found no candidates".to_string(),
        Some((_, best)) => {
            let mut d = format!(
                "registered after reviewing {} possible duplicate(s) ({}; best score {:.1})",
                candidates.len(),
                candidates
                    .iter()
                    .map(|(c, _)| format!("Patient/{}", c.id))
                    .collect::<Vec<_>>()
                    .join(", "),
                best.total
            );
            if !reason.is_empty() {
                d.push_str(&format!("; override reason: {reason}"));
            }
            d
        }
    };
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.create_patient(&id, patient, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Create, Outcome::Success)
                .resource("Patient", Some(&id))
                .patient(&id)
                .detail(detail),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/patients/{id}")).into_response(),
        Err(e) => ops::internal_error(e),
    }
}

/// A merged record is not edited: its survivor is.
fn merged_refusal(state: &AppState, p: &Principal, cur: &Versioned<Patient>) -> Response {
    let survivor = cur.value.replaced_by.clone().unwrap_or_default();
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Patients,
        &format!("Edit {}", cur.value.display_name()),
        html! {
            (header(cur, today()))
            div.error role="alert" {
                p { "This record was merged into another one and can no longer be changed. "
                    a href=(format!("/patients/{survivor}")) { "Open the surviving record" } "." }
            }
        },
    );
    (StatusCode::CONFLICT, page).into_response()
}

pub async fn edit_form(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let cur = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut response = if cur.value.replaced_by.is_some() {
        merged_refusal(&state, &p, &cur)
    } else {
        let rules = match rules(&state, &p.org_id).await {
            Ok(r) => r,
            Err(r) => return r,
        };
        render(
            &state,
            &p,
            View {
                mode: Mode::Edit(&cur),
                status: StatusCode::OK,
                form: &PatientForm::from_patient(&cur.value, cur.version),
                errors: &ValidationErrors::new(),
                rules: &rules,
                duplicates: None,
                conflict: None,
            },
        )
    };
    note(
        &mut response,
        AuditNote::new(Action::Read, "Patient", Some(&id))
            .patient(&id)
            .detail("edit form"),
    );
    response
}

pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let cur = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let read = AuditNote::new(Action::Read, "Patient", Some(&id))
        .patient(&id)
        .detail("edit form");
    if cur.value.replaced_by.is_some() {
        let mut r = merged_refusal(&state, &p, &cur);
        note(&mut r, read);
        return r;
    }
    let mut form = PatientForm::from_pairs(&pairs);
    let rules = match rules(&state, &p.org_id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let checked = form.to_patient(Some(&cur.value), &rules, today());
    let version = form.version;
    let (patient, version) = match (checked, version) {
        (Ok(patient), Some(version)) => (patient, version),
        (result, version) => {
            let mut errors = result.err().unwrap_or_default();
            if version.is_none() {
                errors.add("version", "is missing: open the record and edit it again");
            }
            let mut r = render(
                &state,
                &p,
                View {
                    mode: Mode::Edit(&cur),
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    form: &form,
                    errors: &errors,
                    rules: &rules,
                    duplicates: None,
                    conflict: None,
                },
            );
            note(&mut r, read);
            return r;
        }
    };
    if version == cur.version && patient == cur.value {
        return Redirect::to(&format!("/patients/{id}")).into_response();
    }
    let changed = changed_fields(&cur.value, &patient);
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.update(&id, &patient, Some(version), &p.actor_name)
            .await?;
        tx.audit(
            p.entry(Action::Update, Outcome::Success)
                .resource("Patient", Some(&id))
                .patient(&id)
                .detail(format!("changed: {}", changed.join(", "))),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/patients/{id}")).into_response(),
        Err(StoreError::VersionConflict { current }) => {
            let conflict = match conflict_notice(&state, &p.org_id, &id, version).await {
                Ok(c) => c,
                Err(e) => return ops::internal_error(e),
            };
            // Saving again now replaces the newer version, knowingly.
            form.version = Some(current);
            let latest = match load(&state, &p.org_id, &id).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let mut r = render(
                &state,
                &p,
                View {
                    mode: Mode::Edit(&latest),
                    status: StatusCode::CONFLICT,
                    form: &form,
                    errors: &ValidationErrors::new(),
                    rules: &rules,
                    duplicates: None,
                    conflict: Some(conflict),
                },
            );
            note(&mut r, read);
            r
        }
        Err(StoreError::Gone | StoreError::NotFound) => match load(&state, &p.org_id, &id).await {
            Ok(_) => ops::internal_error("patient vanished during an edit"),
            Err(r) => r,
        },
        Err(e) => ops::internal_error(e),
    }
}

/// Who changed the record since `since`, and what, for the conflict notice.
async fn conflict_notice(
    state: &AppState,
    org_id: &str,
    id: &str,
    since: i64,
) -> Result<Markup, StoreError> {
    let history = state.db.history::<Patient>(org_id, id).await?;
    let users: HashMap<String, String> = state
        .db
        .users(org_id)
        .await?
        .into_iter()
        .map(|u| (u.username, u.display_name))
        .collect();
    let tz = jiff::tz::TimeZone::system();
    let newer: Vec<_> = history
        .iter()
        .enumerate()
        .filter(|(_, h)| h.version > since)
        .map(|(i, h)| {
            let fields = history
                .get(i + 1)
                .map(|older| changed_fields(&older.value, &h.value).join(", "))
                .unwrap_or_default();
            let name = users
                .get(&h.changed_by)
                .cloned()
                .unwrap_or(h.changed_by.clone());
            (name, local_time(h.changed_at_us, &tz), fields)
        })
        .collect();
    Ok(html! {
        div.error.conflict #conflict role="alert" tabindex="-1" autofocus {
            p { strong { "Nothing was saved: someone else changed this record after you opened it." } }
            ul {
                @for (who, when, fields) in &newer {
                    li { (who) " at " (when) @if !fields.is_empty() { " changed " (fields) } "." }
                }
            }
            p { "Your entries are still in the form below. Compare them with the header above (the current record); "
                "saving again replaces the current record with what the form holds." }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> Vec<(String, String)> {
        pairs(&[
            ("given", "Ana"),
            ("family", "Reyes"),
            ("birth_date", "1962-03-14"),
            ("sex", "female"),
            ("addresses[0].use", "home"),
            ("addresses[0].line1", "12 Oak St"),
            ("addresses[0].city", "Austin"),
            ("addresses[0].state", "tx"),
            ("addresses[0].postal_code", "78701"),
            ("phones[0].number", ""),
            ("phones[0].kind", "mobile"),
            ("phones[1].number", "(512) 555-0142"),
            ("phones[1].kind", "home"),
            ("phones[1].sms_consent", "on"),
            ("phones[2].number", ""),
            ("contacts[0].name", ""),
            ("contacts[0].relationship", ""),
            ("contacts[0].phone", ""),
            ("contacts[1].name", "Luis Reyes"),
            ("contacts[1].relationship", "SPS"),
            ("contacts[1].phone", "512 555 0100"),
            ("contacts[1].guarantor", "on"),
            ("language", "other"),
            ("language_other", "hmn"),
            ("alerts", "needs wheelchair\r\n\r\nhard of hearing"),
        ])
    }

    #[test]
    fn a_typed_form_becomes_a_normalized_patient() {
        let form = PatientForm::from_pairs(&good());
        let p = form
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap();
        assert_eq!(p.phones.len(), 1);
        assert_eq!(p.phones[0].number, "+15125550142");
        assert_eq!(p.phones[0].kind, PhoneKind::Home);
        assert!(p.phones[0].sms_consent);
        assert_eq!(p.contacts.len(), 1);
        assert!(p.contacts[0].guarantor);
        assert_eq!(p.language.as_deref(), Some("hmn"));
        assert_eq!(p.alerts, ["needs wheelchair", "hard of hearing"]);
        assert_eq!(p.home_address().unwrap().state, "TX");
        assert_eq!(p.addresses.len(), 1);
        assert!(p.middle.is_none());
        // And back: the edit form shows what was stored.
        let back = PatientForm::from_patient(
            &form
                .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
                .unwrap(),
            3,
        );
        assert_eq!(back.phones[0].number, "(512) 555-0142");
        assert_eq!(back.language, "other");
        assert_eq!(back.version, Some(3));
    }

    #[test]
    fn errors_name_the_row_the_desk_typed_in() {
        let mut typed = good();
        for (k, v) in typed.iter_mut() {
            match k.as_str() {
                "phones[1].number" => *v = "12".into(),
                "contacts[1].name" => *v = " ".into(),
                "birth_date" => *v = "14/03/1962".into(),
                "sex" => *v = String::new(),
                _ => {}
            }
        }
        let errors = PatientForm::from_pairs(&typed)
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap_err();
        for field in ["phones[1].number", "contacts[1].name", "birth_date", "sex"] {
            assert!(errors.for_field(field).is_some(), "{field}: {errors}");
        }
        assert!(errors.for_field("phones[0].number").is_none());
    }

    #[test]
    fn other_addresses_are_read_block_by_block_and_blank_blocks_dropped() {
        let mut typed = good();
        typed.extend(pairs(&[
            // A block emptied by the desk, then a mailing address.
            ("addresses[1].use", "work"),
            ("addresses[1].line1", ""),
            ("addresses[1].city", ""),
            ("addresses[2].use", "home"),
            ("addresses[2].type", "postal"),
            ("addresses[2].line1", "PO Box 9"),
            ("addresses[2].city", "Austin"),
            ("addresses[2].state", "TX"),
            ("addresses[2].postal_code", "7876"),
            ("addresses[2].start", "2024-01-31"),
            // The blank block under "Add another address".
            ("addresses[3].use", "home"),
            ("addresses[3].type", ""),
            ("addresses[3].line1", ""),
        ]));
        let form = PatientForm::from_pairs(&typed);
        assert_eq!(form.addresses.len(), 2, "{:?}", form.addresses);
        assert_eq!(form.addresses[1].line1, "PO Box 9");
        // Errors name the block as shown again (the second).
        let errors = form
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap_err();
        assert!(
            errors.for_field("addresses[1].postal_code").is_some(),
            "{errors}"
        );
        let mut fixed = form.clone();
        fixed.addresses[1].postal_code = "78767".into();
        let p = fixed
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap();
        assert_eq!(p.addresses.len(), 2);
        assert_eq!(p.addresses[1].label(), "Mailing address");
        assert_eq!(p.addresses[1].start, Some(date(2024, 1, 31)));
        // And back: the edit form shows the home block first, then the rest.
        let back = PatientForm::from_patient(&p, 1);
        assert_eq!(back.addresses[0].line1, "12 Oak St");
        assert_eq!(back.addresses[1].type_, "postal");
        assert_eq!(back.addresses[1].start, "2024-01-31");
        // An unknown use or kind, or a bad date, is named at its input.
        let mut odd = fixed.clone();
        odd.addresses[1].use_ = "holiday".into();
        odd.addresses[1].end = "soon".into();
        let errors = odd
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap_err();
        for field in ["addresses[1].use", "addresses[1].end"] {
            assert!(errors.for_field(field).is_some(), "{field}: {errors}");
        }
        // A block typed in without choosing its use says so.
        let mut unchosen = fixed.clone();
        unchosen.addresses[1].use_ = String::new();
        let errors = unchosen
            .to_patient(None, &RegistrationRules::default(), date(2026, 1, 1))
            .unwrap_err();
        assert!(
            errors
                .for_field("addresses[1].use")
                .is_some_and(|m| m.starts_with("is required")),
            "{errors}"
        );
    }

    #[test]
    fn dates_ids_and_labels() {
        assert_eq!(parse_date("03/14/1962"), Ok(date(1962, 3, 14)));
        assert_eq!(parse_date("1962-03-14"), Ok(date(1962, 3, 14)));
        assert!(parse_date("1962-02-30").is_err());
        assert_eq!(input_id("phones[0].number"), "f-phones-0-number");
        assert_eq!(
            input_id("addresses[0].postal_code"),
            "f-addresses-0-postal_code"
        );
        assert_eq!(label("addresses[0].postal_code"), "ZIP code");
        assert_eq!(label("addresses[2].postal_code"), "Address 3 ZIP code");
        assert_eq!(label("addresses[1].use"), "Address 2 use");
        assert_eq!(anchor("addresses"), "addresses[0].line1");
        assert_eq!(anchor("addresses[0].use"), "addresses[0].line1");
        assert_eq!(anchor("addresses[1].use"), "addresses[1].use");
        assert_eq!(anchor("addresses[2].country"), "addresses[2].line1");
        assert_eq!(
            sentence("addresses", "is required"),
            "Home address is required"
        );
        assert_eq!(label("contacts[1].name"), "Contact 2 name");
        assert_eq!(label("phones[0].number"), "Phone 1");
        assert_eq!(anchor("phones"), "phones[0].number");
        assert_eq!(anchor("alerts[3]"), "alerts");
        assert_eq!(
            sentence("phones", "at least one phone number is required"),
            "At least one phone number is required"
        );
        assert_eq!(
            sentence("birth_date", "is required"),
            "Date of birth is required"
        );
        assert!(form_order("given") < form_order("birth_date"));
        assert!(form_order("addresses[1].city") < form_order("phones[0].number"));
        assert!(form_order("pronouns") < form_order("addresses"));
    }
}
