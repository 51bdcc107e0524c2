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
/// Addresses a patient record keeps, at most (home, mailing, work, old...).
pub const MAX_ADDRESSES: usize = 10;

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
    /// FHIR `Patient.address` (0..*): home, mailing, work, temporary,
    /// billing and old addresses. Once validated, the home address (see
    /// [`Patient::home_address`]) is first. Records stored before patients
    /// had several addresses carry one `address` (or `null`): it is read as
    /// their home address.
    #[serde(
        default,
        alias = "address",
        deserialize_with = "addresses_or_one_address"
    )]
    pub addresses: Vec<PatientAddress>,
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

/// What an address is for: FHIR `Address.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressUse {
    /// Where the patient lives (or, with type `postal`, gets their mail).
    Home,
    Work,
    /// Where the patient stays for a while (with relatives, in rehab).
    Temp,
    /// Where the bills go.
    Billing,
    /// No longer used; kept because old records and duplicates carry it.
    Old,
}

impl AddressUse {
    pub const ALL: [AddressUse; 5] = [Self::Home, Self::Work, Self::Temp, Self::Billing, Self::Old];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Work => "work",
            Self::Temp => "temp",
            Self::Billing => "billing",
            Self::Old => "old",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Home => "Home",
            Self::Work => "Work",
            Self::Temp => "Temporary",
            Self::Billing => "Billing",
            Self::Old => "Old",
        }
    }
}

/// Whether mail, visits or both reach an address: FHIR `Address.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressType {
    /// Mail only: a PO box, a care-of address. A mailing address is a
    /// `home` address of this type.
    Postal,
    /// Can be visited; mail goes elsewhere.
    Physical,
    Both,
}

impl AddressType {
    pub const ALL: [AddressType; 3] = [Self::Postal, Self::Physical, Self::Both];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Postal => "postal",
            Self::Physical => "physical",
            Self::Both => "both",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Postal => "Mailing only",
            Self::Physical => "Physical only",
            Self::Both => "Mailing and physical",
        }
    }
}

/// One of a patient's addresses: the postal address, what it is for, and
/// optionally the days it is (or was) used.
///
/// At most one address is *the home address* at any time: two `home`
/// addresses that are not mailing-only (`type` postal) must not have
/// overlapping periods, and neither may two home addresses that take mail
/// (`postal` or `both`). A home address without a type is where the
/// patient lives; a mailing-only home address beside it is where their mail
/// goes (a PO box). A move is recorded by marking the former home address
/// `old` (or ending its period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientAddress {
    #[serde(rename = "use")]
    pub use_: AddressUse,
    /// Not said when `None`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<AddressType>,
    /// First day at the address (FHIR `period.start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Date>,
    /// Last day at the address (FHIR `period.end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Date>,
    pub address: Address,
}

impl PatientAddress {
    /// A home address without type or period.
    pub fn home(address: Address) -> Self {
        Self::new(AddressUse::Home, address)
    }

    pub fn new(use_: AddressUse, address: Address) -> Self {
        PatientAddress {
            use_,
            type_: None,
            start: None,
            end: None,
            address,
        }
    }

    /// A home address where the patient lives (not a mailing-only one).
    pub fn is_residence(&self) -> bool {
        self.use_ == AddressUse::Home && self.type_ != Some(AddressType::Postal)
    }

    /// A home address the patient's mail goes to, said so by its type.
    pub fn is_mailing(&self) -> bool {
        self.use_ == AddressUse::Home
            && matches!(self.type_, Some(AddressType::Postal | AddressType::Both))
    }

    /// Whether the address is used on `day` (no period: always).
    pub fn in_force(&self, day: Date) -> bool {
        self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| day <= e)
    }

    /// Whether the two periods share a day (an open end runs for ever).
    pub fn overlaps(&self, other: &PatientAddress) -> bool {
        let starts_before_other_ends = match (self.start, other.end) {
            (Some(s), Some(e)) => s <= e,
            _ => true,
        };
        let other_starts_before_end = match (other.start, self.end) {
            (Some(s), Some(e)) => s <= e,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_end
    }

    /// How the desk names it: "Home address", "Mailing address" (a
    /// mailing-only home address), "Work address", "Old address".
    pub fn label(&self) -> String {
        match (self.use_, self.type_) {
            (AddressUse::Home, Some(AddressType::Postal)) => "Mailing address".into(),
            (u, Some(AddressType::Postal)) => format!("{} mailing address", u.label()),
            (u, _) => format!("{} address", u.label()),
        }
    }
}

/// Reads `addresses` (a list), or the one `address` (an object, or null)
/// of records stored before patients had several addresses, as their home
/// address.
fn addresses_or_one_address<'de, D>(deserializer: D) -> Result<Vec<PatientAddress>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::{MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};

    struct Addresses;

    impl<'de> Visitor<'de> for Addresses {
        type Value = Vec<PatientAddress>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of addresses, or one address, or null")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(MAX_ADDRESSES));
            while let Some(a) = seq.next_element()? {
                list.push(a);
            }
            Ok(list)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let address = Address::deserialize(MapAccessDeserializer::new(map))?;
            Ok(vec![PatientAddress::home(address)])
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: serde::Deserializer<'de>>(
            self,
            deserializer: D2,
        ) -> Result<Self::Value, D2::Error> {
            deserializer.deserialize_any(Addresses)
        }
    }

    deserializer.deserialize_any(Addresses)
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

    /// Where [`Patient::home_address`] is in `addresses`: the first home
    /// address that is not mailing-only and has no end date, else the first
    /// such address with one.
    pub fn home_address_index(&self) -> Option<usize> {
        let residence = |open: bool| {
            self.addresses
                .iter()
                .position(|a| a.is_residence() && (!open || a.end.is_none()))
        };
        residence(true).or_else(|| residence(false))
    }

    /// The home address: where the patient lives. Mailing-only, work and
    /// other addresses are not it.
    pub fn home_address(&self) -> Option<&Address> {
        self.home_address_index()
            .map(|i| &self.addresses[i].address)
    }

    /// Where the patient's mail goes: a home address of type postal or
    /// both, else the home address.
    pub fn mailing_address(&self) -> Option<&Address> {
        self.addresses
            .iter()
            .find(|a| a.is_mailing() && a.end.is_none())
            .map(|a| &a.address)
            .or_else(|| self.home_address())
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
    /// (`birth_date`, `phones[1].number`, `addresses[1].postal_code`, ...).
    /// Each address is checked on its own (`addresses[i].…`); at most one
    /// home address may be in use at a time (see [`PatientAddress`]); with
    /// `require_address`, a home address is required. A valid record's home
    /// address is moved first, the others keep their order.
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
        self.validate_addresses(&mut errors, rules);
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
        if errors.is_empty()
            && let Some(i) = self.home_address_index()
            && i > 0
        {
            let home = self.addresses.remove(i);
            self.addresses.insert(0, home);
        }
        errors.into_result(self)
    }

    fn validate_addresses(&mut self, errors: &mut ValidationErrors, rules: &RegistrationRules) {
        if self.addresses.len() > MAX_ADDRESSES {
            errors.add(
                "addresses",
                format!("at most {MAX_ADDRESSES} addresses are kept"),
            );
        }
        for (i, a) in self.addresses.iter_mut().enumerate() {
            a.address.validate(errors, &format!("addresses[{i}]"));
            if let (Some(start), Some(end)) = (a.start, a.end)
                && end < start
            {
                errors.add(
                    format!("addresses[{i}].end"),
                    format!("cannot be before the start ({start})"),
                );
            }
        }
        // One home address at a time, and one mailing address: the later of
        // two clashing addresses is named.
        for (j, b) in self.addresses.iter().enumerate() {
            let clash = self.addresses[..j].iter().position(|a| {
                a.overlaps(b)
                    && ((a.is_residence() && b.is_residence())
                        || (a.is_mailing() && b.is_mailing()))
            });
            if let Some(i) = clash {
                let what = if b.is_residence() && self.addresses[i].is_residence() {
                    "home address"
                } else {
                    "mailing address"
                };
                errors.add(
                    format!("addresses[{j}].use"),
                    format!(
                        "makes a second {what} in use at the same time: mark the former one \
                         old, or give it an end date"
                    ),
                );
            }
        }
        if rules.require_address && self.home_address_index().is_none() {
            if self.addresses.is_empty() {
                errors.add("addresses", "is required");
            } else {
                errors.add(
                    "addresses",
                    "is required: none of the addresses is where the patient lives",
                );
            }
        }
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
            addresses: vec![PatientAddress::home(oak_st())],
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

    fn oak_st() -> Address {
        Address {
            line1: "12 Oak St".into(),
            line2: None,
            city: "Austin".into(),
            state: "tx".into(),
            postal_code: "78701".into(),
            country: String::new(),
        }
    }

    fn po_box() -> Address {
        Address {
            line1: "PO Box 88".into(),
            line2: None,
            city: "Austin".into(),
            state: "TX".into(),
            postal_code: "78767".into(),
            country: "US".into(),
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
        assert_eq!(p.home_address().unwrap().state, "TX");
        assert_eq!(p.addresses[0].address.country, "US");
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
        p.addresses[0].address.postal_code = "7870".into();
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
            "addresses[0].postal_code",
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
        p.addresses.clear();
        p.preferred_contact = None;
        let err = p
            .clone()
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        assert!(err.for_field("phones").is_some());
        assert!(err.for_field("addresses").is_some());
        // A work address alone is not the home address the rules ask for.
        let mut work_only = p.clone();
        work_only.addresses = vec![PatientAddress::new(AddressUse::Work, oak_st())];
        let err = work_only
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        assert!(
            err.for_field("addresses")
                .is_some_and(|m| m.contains("where the patient lives")),
            "{err}"
        );
        let relaxed = RegistrationRules {
            require_phone: false,
            require_address: false,
            ..RegistrationRules::default()
        };
        assert!(p.validate(&relaxed, today()).is_ok());
    }

    #[test]
    fn each_address_is_checked_and_errors_name_it() {
        let mut p = patient();
        let mut mailing = PatientAddress::home(po_box());
        mailing.type_ = Some(AddressType::Postal);
        mailing.address.postal_code = "787".into();
        let mut work = PatientAddress::new(AddressUse::Work, oak_st());
        work.address.state = "Texas".into();
        work.address.city = " ".into();
        p.addresses.extend([mailing, work]);
        let err = p
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "addresses[1].postal_code",
                "addresses[2].city",
                "addresses[2].state"
            ],
            "{err}"
        );
        assert!(err.for_field("addresses[0].postal_code").is_none());
    }

    #[test]
    fn a_home_and_a_mailing_address_are_kept_with_the_home_first() {
        let mut p = patient();
        let mut mailing = PatientAddress::home(po_box());
        mailing.type_ = Some(AddressType::Postal);
        let mut old = PatientAddress::new(AddressUse::Old, oak_st());
        old.address.line1 = "3 Elm St".into();
        // Given mailing first, as a FHIR client may.
        p.addresses = vec![mailing.clone(), old, PatientAddress::home(oak_st())];
        let p = p.validate(&RegistrationRules::default(), today()).unwrap();
        let uses: Vec<String> = p.addresses.iter().map(PatientAddress::label).collect();
        assert_eq!(uses, ["Home address", "Mailing address", "Old address"]);
        assert_eq!(p.home_address().unwrap().line1, "12 Oak St");
        assert_eq!(p.mailing_address().unwrap().line1, "PO Box 88");
        // Validating again changes nothing.
        assert_eq!(
            p.clone()
                .validate(&RegistrationRules::default(), today())
                .unwrap(),
            p
        );
    }

    #[test]
    fn one_home_address_at_a_time() {
        let mut p = patient();
        let mut second = PatientAddress::home(po_box());
        second.address.line1 = "4 Pine Rd".into();
        p.addresses.push(second.clone());
        let err = p
            .clone()
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        let m = err.for_field("addresses[1].use").unwrap();
        assert!(m.contains("second home address in use"), "{m}");
        assert_eq!(err.errors().len(), 1, "{err}");

        // A move: the former home address ended the day before.
        let mut moved = p.clone();
        moved.addresses[0].end = Some(date(2026, 5, 31));
        moved.addresses[1].start = Some(date(2026, 6, 1));
        let moved = moved
            .validate(&RegistrationRules::default(), today())
            .unwrap();
        assert_eq!(moved.home_address().unwrap().line1, "4 Pine Rd");
        // ...or marked old.
        let mut old = p.clone();
        old.addresses[0].use_ = AddressUse::Old;
        assert!(old.validate(&RegistrationRules::default(), today()).is_ok());

        // Two mailing addresses clash as well; a mailing address that is
        // also visited (both) clashes with either.
        let mut mailing = p.clone();
        mailing.addresses[1].type_ = Some(AddressType::Postal);
        let ok = mailing
            .clone()
            .validate(&RegistrationRules::default(), today());
        assert!(ok.is_ok(), "{ok:?}");
        mailing.addresses[0].type_ = Some(AddressType::Both);
        let err = mailing
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        assert!(
            err.for_field("addresses[1].use")
                .is_some_and(|m| m.contains("second mailing address")),
            "{err}"
        );

        // Periods must run forwards.
        let mut backwards = patient();
        backwards.addresses[0].start = Some(date(2026, 6, 1));
        backwards.addresses[0].end = Some(date(2026, 5, 1));
        let err = backwards
            .validate(&RegistrationRules::default(), today())
            .unwrap_err();
        assert!(err.for_field("addresses[0].end").is_some(), "{err}");
    }

    #[test]
    fn stored_records_with_one_address_read_as_a_home_address() {
        let p = patient()
            .validate(&RegistrationRules::default(), today())
            .unwrap();
        let mut json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["addresses"][0]["use"], "home");
        assert!(json["addresses"][0].get("type").is_none());
        // As records were stored before: one `address`, or null.
        let obj = json.as_object_mut().unwrap();
        let list = obj.remove("addresses").unwrap();
        obj.insert("address".into(), list[0]["address"].clone());
        let old: Patient = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(old, p);
        json["address"] = serde_json::Value::Null;
        let none: Patient = serde_json::from_value(json.clone()).unwrap();
        assert!(none.addresses.is_empty());
        json.as_object_mut().unwrap().remove("address");
        let absent: Patient = serde_json::from_value(json).unwrap();
        assert!(absent.addresses.is_empty());
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
