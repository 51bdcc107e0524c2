//! The patient record: registration data and its validation. Search,
//! matching and merge build on this.

use crate::ValidationErrors;
use crate::contact::{normalize_email, normalize_phone};
use crate::directory::{Address, AdministrativeGender};
use crate::validation::{optional_text, required_text};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Oldest date of birth accepted, in years before today.
pub const MAX_AGE_YEARS: i16 = 130;
pub const MAX_ALERTS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// Medical record number, unique in the organization and never reused.
    pub mrn: String,
    pub given: String,
    /// Further given names.
    pub middle: Option<String>,
    pub family: String,
    /// `Jr`, `III`.
    pub suffix: Option<String>,
    /// The name the patient goes by, shown beside the legal name.
    pub preferred_name: Option<String>,
    pub birth_date: Date,
    /// Administrative sex, FHIR `administrative-gender`.
    pub sex: AdministrativeGender,
    pub gender_identity: Option<String>,
    pub pronouns: Option<String>,
    pub address: Option<Address>,
    pub phones: Vec<Phone>,
    pub email: Option<String>,
    /// BCP-47 tag, e.g. `es` or `zh-Hant`.
    pub language: Option<String>,
    pub interpreter_needed: bool,
    pub preferred_contact: Option<ContactMethod>,
    /// Emergency contacts, guarantor and other related people.
    pub contacts: Vec<PatientContact>,
    /// Shown on every screen: "needs wheelchair", "hard of hearing".
    pub alerts: Vec<String>,
    /// External identifiers (other systems' MRNs, driver's licence...).
    pub identifiers: Vec<Identifier>,
    pub active: bool,
    /// When this record was merged into another: the survivor's id
    /// (FHIR `Patient.link` of type `replaced-by`).
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Mobile,
    Home,
    Work,
}

impl PhoneKind {
    pub const ALL: [PhoneKind; 3] = [Self::Mobile, Self::Home, Self::Work];

    /// FHIR `ContactPoint.use`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Home => "home",
            Self::Work => "work",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Mobile => "Mobile",
            Self::Home => "Home",
            Self::Work => "Work",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    /// E.164 once validated.
    pub number: String,
    pub kind: PhoneKind,
    /// The patient agreed to text messages on this number.
    pub sms_consent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMethod {
    Phone,
    Sms,
    Email,
    Mail,
    Portal,
}

impl ContactMethod {
    pub const ALL: [ContactMethod; 5] = [
        Self::Phone,
        Self::Sms,
        Self::Email,
        Self::Mail,
        Self::Portal,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Mail => "mail",
            Self::Portal => "portal",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Phone => "Phone call",
            Self::Sms => "Text message",
            Self::Email => "Email",
            Self::Mail => "Mail",
            Self::Portal => "Patient portal",
        }
    }
}

/// A related person: emergency contact, guarantor, parent, caregiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientContact {
    pub name: String,
    /// HL7 v3 RoleCode where one fits (`SPS` spouse, `MTH` mother, `FTH`
    /// father, `CHILD`, `FRND` friend, `GUARD` guardian) or free text.
    pub relationship: String,
    pub phone: Option<String>,
    pub emergency: bool,
    /// Financially responsible for the patient's bills.
    pub guarantor: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// A URI naming the issuing system.
    pub system: String,
    pub value: String,
}

/// What an organization requires at registration, and how it reads phones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistrationRules {
    pub phone_region: String,
    pub require_phone: bool,
    pub require_email: bool,
    pub require_address: bool,
}

impl RegistrationRules {
    /// Checks the rules themselves (an admin edits them).
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        self.phone_region = self.phone_region.trim().to_uppercase();
        match normalize_phone("2015550123", &self.phone_region) {
            Err(e) if e.contains("region") => Err(ValidationErrors::single(
                "phone_region",
                "must be a two-letter country code such as US or CA",
            )),
            _ => Ok(self),
        }
    }
}

impl Default for RegistrationRules {
    fn default() -> Self {
        Self {
            phone_region: crate::contact::DEFAULT_PHONE_REGION.into(),
            require_phone: true,
            require_email: false,
            require_address: true,
        }
    }
}

/// Well-formed BCP-47 shape: a 2–3 letter language, then 2–8 character subtags.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    lang_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Patient {
    pub fn display_name(&self) -> String {
        let mut name = format!("{}, {}", self.family, self.given);
        if let Some(m) = &self.middle {
            name.push(' ');
            name.push_str(m);
        }
        if let Some(s) = &self.suffix {
            name.push_str(", ");
            name.push_str(s);
        }
        name
    }

    /// Age in whole years on `day`.
    pub fn age_on(&self, day: Date) -> i16 {
        let mut years = day.year() - self.birth_date.year();
        if (day.month(), day.day()) < (self.birth_date.month(), self.birth_date.day()) {
            years -= 1;
        }
        years
    }

    /// Normalizes and checks a registration; each problem names its field
    /// (`birth_date`, `phones[1].number`, `address.postal_code`, ...).
    pub fn validate(
        mut self,
        rules: &RegistrationRules,
        today: Date,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.given = required_text(&mut errors, "given", &self.given, 100);
        self.family = required_text(&mut errors, "family", &self.family, 100);
        self.middle = optional_text(&mut errors, "middle", self.middle.as_deref(), 100);
        self.suffix = optional_text(&mut errors, "suffix", self.suffix.as_deref(), 20);
        self.preferred_name = optional_text(
            &mut errors,
            "preferred_name",
            self.preferred_name.as_deref(),
            100,
        );
        self.gender_identity = optional_text(
            &mut errors,
            "gender_identity",
            self.gender_identity.as_deref(),
            60,
        );
        self.pronouns = optional_text(&mut errors, "pronouns", self.pronouns.as_deref(), 40);
        if self.birth_date > today {
            errors.add("birth_date", "cannot be in the future");
        } else if self.age_on(today) > MAX_AGE_YEARS {
            errors.add(
                "birth_date",
                format!("cannot be more than {MAX_AGE_YEARS} years ago"),
            );
        }
        for (i, phone) in self.phones.iter_mut().enumerate() {
            match normalize_phone(&phone.number, &rules.phone_region) {
                Ok(n) => phone.number = n,
                Err(e) => errors.add(format!("phones[{i}].number"), e),
            }
        }
        if rules.require_phone && self.phones.is_empty() {
            errors.add("phones", "at least one phone number is required");
        }
        self.email = match self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => None,
            Some(e) => match normalize_email(e) {
                Ok(e) => Some(e),
                Err(m) => {
                    errors.add("email", m);
                    None
                }
            },
        };
        if rules.require_email && self.email.is_none() && errors.for_field("email").is_none() {
            errors.add("email", "is required");
        }
        if let Some(a) = self.address.as_mut() {
            a.validate(&mut errors, "address");
        } else if rules.require_address {
            errors.add("address", "is required");
        }
        self.language = self
            .language
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
        if let Some(l) = &self.language
            && !is_language_tag(l)
        {
            errors.add(
                "language",
                format!("'{l}' is not a BCP-47 language tag such as en or es-MX"),
            );
        }
        if self.interpreter_needed && self.language.is_none() {
            errors.add("language", "is required when an interpreter is needed");
        }
        if self.preferred_contact == Some(ContactMethod::Email) && self.email.is_none() {
            errors.add("preferred_contact", "email needs an email address");
        }
        if self.preferred_contact == Some(ContactMethod::Sms)
            && !self.phones.iter().any(|p| p.sms_consent)
        {
            errors.add(
                "preferred_contact",
                "text messages need a phone with SMS consent",
            );
        }
        for (i, c) in self.contacts.iter_mut().enumerate() {
            c.name = required_text(&mut errors, &format!("contacts[{i}].name"), &c.name, 200);
            c.relationship = required_text(
                &mut errors,
                &format!("contacts[{i}].relationship"),
                &c.relationship,
                40,
            );
            if let Some(p) = c.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                match normalize_phone(p, &rules.phone_region) {
                    Ok(n) => c.phone = Some(n),
                    Err(e) => errors.add(format!("contacts[{i}].phone"), e),
                }
            } else {
                c.phone = None;
            }
        }
        if self.contacts.iter().filter(|c| c.guarantor).count() > 1 {
            errors.add("contacts", "only one contact can be the guarantor");
        }
        self.alerts = self
            .alerts
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        if self.alerts.len() > MAX_ALERTS {
            errors.add("alerts", format!("at most {MAX_ALERTS} alerts"));
        }
        for (i, a) in self.alerts.iter().enumerate() {
            if a.chars().count() > 200 {
                errors.add(format!("alerts[{i}]"), "must be at most 200 characters");
            }
        }
        for (i, id) in self.identifiers.iter_mut().enumerate() {
            id.system = required_text(
                &mut errors,
                &format!("identifiers[{i}].system"),
                &id.system,
                200,
            );
            id.value = required_text(
                &mut errors,
                &format!("identifiers[{i}].value"),
                &id.value,
                100,
            );
        }
        errors.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn patient() -> Patient {
        Patient {
            mrn: String::new(),
            given: " Ana ".into(),
            middle: None,
            family: "Reyes".into(),
            suffix: None,
            preferred_name: None,
            birth_date: date(1962, 3, 14),
            sex: AdministrativeGender::Female,
            gender_identity: None,
            pronouns: None,
            address: Some(Address {
                line1: "12 Oak St".into(),
                line2: None,
                city: "Austin".into(),
                state: "tx".into(),
                postal_code: "78701".into(),
                country: String::new(),
            }),
            phones: vec![Phone {
                number: "(512) 555-0142".into(),
                kind: PhoneKind::Mobile,
                sms_consent: true,
            }],
            email: Some("Ana@Example.com".into()),
            language: Some("es".into()),
            interpreter_needed: true,
            preferred_contact: Some(ContactMethod::Sms),
            contacts: vec![],
            alerts: vec![" needs wheelchair ".into(), " ".into()],
            identifiers: vec![],
            active: true,
            replaced_by: None,
        }
    }

    fn today() -> Date {
        date(2026, 11, 23)
    }

    #[test]
    fn a_good_registration_is_normalized() {
        let p = patient()
            .validate(&RegistrationRules::default(), today())
            .unwrap();
        assert_eq!(p.given, "Ana");
        assert_eq!(p.phones[0].number, "+15125550142");
        assert_eq!(p.email.as_deref(), Some("Ana@example.com"));
        assert_eq!(p.address.unwrap().state, "TX");
        assert_eq!(p.alerts, vec!["needs wheelchair"]);
    }

    #[test]
    fn birth_dates_in_the_future_or_too_old_are_refused() {
        let mut p = patient();
        p.birth_date = date(2026, 11, 24);
        assert!(
            p.validate(&RegistrationRules::default(), today())
                .unwrap_err()
                .for_field("birth_date")
                .is_some()
        );
        let mut p = patient();
        p.birth_date = date(1895, 1, 1);
        assert!(
            p.validate(&RegistrationRules::default(), today())
                .unwrap_err()
                .for_field("birth_date")
                .is_some()
        );
        let mut p = patient();
        p.birth_date = date(1896, 11, 23);
        assert!(p.validate(&RegistrationRules::default(), today()).is_ok());
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut p = patient();
        p.given = String::new();
        p.phones.push(Phone {
            number: "12".into(),
            kind: PhoneKind::Home,
            sms_consent: false,
        });
        p.email = Some("ana@".into());
        p.language = Some("spanish language".into());
        p.contacts.push(PatientContact {
            name: String::new(),
            relationship: "SPS".into(),
            phone: Some("x".into()),
            emergency: true,
            guarantor: false,
        });
        if let Some(a) = p.address.as_mut() {
            a.postal_code = "7870".into();
        }
        let err = p
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        for field in [
            "given",
            "phones[1].number",
            "email",
            "language",
            "contacts[0].name",
            "contacts[0].phone",
            "address.postal_code",
        ] {
            assert!(
                err.for_field(field).is_some(),
                "no error for {field}: {err}"
            );
        }
    }

    #[test]
    fn organization_rules_decide_what_is_required() {
        let mut p = patient();
        p.phones.clear();
        p.address = None;
        p.preferred_contact = None;
        let err = p
            .clone()
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        assert!(err.for_field("phones").is_some());
        assert!(err.for_field("address").is_some());
        let relaxed = RegistrationRules {
            require_phone: false,
            require_address: false,
            ..RegistrationRules::default()
        };
        assert!(p.validate(&relaxed, today()).is_ok());
    }

    #[test]
    fn ages_count_birthdays() {
        let p = patient();
        assert_eq!(p.age_on(date(2026, 3, 13)), 63);
        assert_eq!(p.age_on(date(2026, 3, 14)), 64);
    }

    #[test]
    fn language_tags() {
        assert!(is_language_tag("en"));
        assert!(is_language_tag("zh-Hant"));
        assert!(is_language_tag("es-419"));
        assert!(!is_language_tag("english!"));
        assert!(!is_language_tag("e"));
    }
}
