//! The clinic's directory: its organization, locations (each with an IANA
//! time zone), rooms, practitioners and the roles they hold at locations.

use crate::ValidationErrors;
use crate::validation::{optional_text, required_text};
use serde::{Deserialize, Serialize};

/// A stored record with the metadata every versioned record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub id: String,
    pub version: i64,
    pub updated_at_us: i64,
    pub value: T,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// Two-letter USPS state code.
    pub state: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

pub const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "PR", "GU", "VI", "AS", "MP",
];

impl Address {
    pub fn is_empty(&self) -> bool {
        self.line1.is_empty() && self.city.is_empty() && self.postal_code.is_empty()
    }

    /// On one line: `12 Oak St Apt 4, Austin, TX 78701` (the country when
    /// not the US).
    pub fn one_line(&self) -> String {
        let mut text = self.line1.clone();
        if let Some(l2) = self.line2.as_deref().filter(|l| !l.is_empty()) {
            text.push(' ');
            text.push_str(l2);
        }
        text.push_str(&format!(
            ", {}, {} {}",
            self.city, self.state, self.postal_code
        ));
        if !self.country.is_empty() && self.country != "US" {
            text.push_str(&format!(", {}", self.country));
        }
        text
    }

    pub(crate) fn validate(&mut self, errors: &mut ValidationErrors, prefix: &str) {
        let f = |name: &str| format!("{prefix}.{name}");
        self.line1 = required_text(errors, &f("line1"), &self.line1, 120);
        self.line2 = optional_text(errors, &f("line2"), self.line2.as_deref(), 120);
        self.city = required_text(errors, &f("city"), &self.city, 80);
        self.country = self.country.trim().to_uppercase();
        if self.country.is_empty() {
            self.country = "US".into();
        }
        self.state = self.state.trim().to_uppercase();
        self.postal_code = self.postal_code.trim().to_string();
        if self.country == "US" {
            if !US_STATES.contains(&self.state.as_str()) {
                errors.add(f("state"), "must be a two-letter US state code");
            }
            if !is_us_zip(&self.postal_code) {
                errors.add(
                    f("postal_code"),
                    "must be a US ZIP code (12345 or 12345-6789)",
                );
            }
        }
    }
}

pub fn is_us_zip(zip: &str) -> bool {
    let b = zip.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => digits(b),
        10 => digits(&b[..5]) && b[5] == b'-' && digits(&b[6..]),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub active: bool,
}

impl Organization {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.name = required_text(&mut errors, "name", &self.name, 200);
        self.phone = optional_text(&mut errors, "phone", self.phone.as_deref(), 40);
        if let Some(a) = self.address.as_mut() {
            a.validate(&mut errors, "address");
        }
        errors.into_result(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub name: String,
    /// IANA time zone name, e.g. `America/New_York`. Every local time at the
    /// location (slots, opening hours, the day of "today") is read in it.
    pub timezone: String,
    pub address: Address,
    pub phone: Option<String>,
    pub active: bool,
}

impl Location {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.name = required_text(&mut errors, "name", &self.name, 200);
        self.timezone = self.timezone.trim().to_string();
        if jiff::tz::TimeZone::get(&self.timezone).is_err() || !self.timezone.contains('/') {
            errors.add(
                "timezone",
                format!(
                    "'{}' is not an IANA time zone such as America/New_York",
                    self.timezone
                ),
            );
        }
        self.address.validate(&mut errors, "address");
        self.phone = optional_text(&mut errors, "phone", self.phone.as_deref(), 40);
        errors.into_result(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Exam,
    Procedure,
    Consult,
    Ultrasound,
}

impl RoomKind {
    pub fn label(self) -> &'static str {
        match self {
            RoomKind::Exam => "Exam room",
            RoomKind::Procedure => "Procedure room",
            RoomKind::Consult => "Consult room",
            RoomKind::Ultrasound => "Ultrasound room",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub location_id: String,
    pub name: String,
    pub kind: RoomKind,
}

/// A clinical specialty as a NUCC Health Care Provider Taxonomy code, the
/// code system US payers and FHIR US Core use for PractitionerRole.specialty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specialty {
    pub code: &'static str,
    pub display: &'static str,
}

pub const NUCC_TAXONOMY_SYSTEM: &str = "http://nucc.org/provider-taxonomy";

pub const SPECIALTIES: [Specialty; 9] = [
    Specialty {
        code: "207Q00000X",
        display: "Family Medicine",
    },
    Specialty {
        code: "207R00000X",
        display: "Internal Medicine",
    },
    Specialty {
        code: "208000000X",
        display: "Pediatrics",
    },
    Specialty {
        code: "207N00000X",
        display: "Dermatology",
    },
    Specialty {
        code: "207RC0000X",
        display: "Cardiovascular Disease",
    },
    Specialty {
        code: "2084P0800X",
        display: "Psychiatry",
    },
    Specialty {
        code: "103TC0700X",
        display: "Clinical Psychologist",
    },
    Specialty {
        code: "1041C0700X",
        display: "Clinical Social Worker",
    },
    Specialty {
        code: "363LF0000X",
        display: "Family Nurse Practitioner",
    },
];

impl Specialty {
    pub fn by_code(code: &str) -> Option<Specialty> {
        SPECIALTIES.iter().copied().find(|s| s.code == code)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdministrativeGender {
    Male,
    Female,
    Other,
    Unknown,
}

impl AdministrativeGender {
    /// The FHIR `administrative-gender` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "male" => Some(Self::Male),
            "female" => Some(Self::Female),
            "other" => Some(Self::Other),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Practitioner {
    /// US National Provider Identifier.
    pub npi: Option<String>,
    pub prefix: Option<String>,
    pub given: String,
    pub family: String,
    /// Credentials such as `MD`, `DO`, `NP`, `PhD`.
    pub suffix: Option<String>,
    pub gender: Option<AdministrativeGender>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

impl Practitioner {
    pub fn display_name(&self) -> String {
        let mut name = format!("{} {}", self.given, self.family);
        if let Some(s) = &self.suffix {
            name.push_str(", ");
            name.push_str(s);
        }
        name
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.given = required_text(&mut errors, "given", &self.given, 100);
        self.family = required_text(&mut errors, "family", &self.family, 100);
        self.prefix = optional_text(&mut errors, "prefix", self.prefix.as_deref(), 20);
        self.suffix = optional_text(&mut errors, "suffix", self.suffix.as_deref(), 40);
        self.phone = optional_text(&mut errors, "phone", self.phone.as_deref(), 40);
        self.email = optional_text(&mut errors, "email", self.email.as_deref(), 254);
        self.npi = self
            .npi
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        if let Some(npi) = &self.npi
            && !is_valid_npi(npi)
        {
            errors.add("npi", "must be a 10-digit NPI with a valid check digit");
        }
        errors.into_result(self)
    }
}

/// NPI check digit: Luhn over the number prefixed with the 80840 issuer code.
pub fn is_valid_npi(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = npi.bytes().map(|b| u32::from(b - b'0')).collect();
    npi_check_digit(&digits[..9]) == digits[9]
}

/// The check digit that completes the first nine digits of an NPI.
pub fn npi_check_digit(first_nine: &[u32]) -> u32 {
    // Luhn doubles every second digit from the right of the payload; the
    // constant 24 accounts for the 80840 prefix.
    let mut sum = 24;
    for (i, d) in first_nine.iter().rev().enumerate() {
        if i % 2 == 0 {
            let x = d * 2;
            sum += x / 10 + x % 10;
        } else {
            sum += d;
        }
    }
    (10 - sum % 10) % 10
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PractitionerRole {
    pub practitioner_id: String,
    pub location_id: String,
    /// NUCC taxonomy code; see [`SPECIALTIES`].
    pub specialty: String,
    pub active: bool,
}

impl PractitionerRole {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.practitioner_id =
            required_text(&mut errors, "practitioner", &self.practitioner_id, 64);
        self.location_id = required_text(&mut errors, "location", &self.location_id, 64);
        self.specialty = self.specialty.trim().to_string();
        if Specialty::by_code(&self.specialty).is_none() {
            errors.add(
                "specialty",
                format!("'{}' is not a supported NUCC taxonomy code", self.specialty),
            );
        }
        errors.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(tz: &str) -> Location {
        Location {
            name: "Main St".into(),
            timezone: tz.into(),
            address: Address {
                line1: "1 Main St".into(),
                line2: None,
                city: "Springfield".into(),
                state: "il".into(),
                postal_code: "62701".into(),
                country: String::new(),
            },
            phone: None,
            active: true,
        }
    }

    #[test]
    fn location_needs_a_real_iana_zone() {
        assert!(location("America/Chicago").validate().is_ok());
        let err = location("Mars/Olympus").validate().unwrap_err();
        assert!(err.for_field("timezone").is_some());
        assert!(location("EST").validate().is_err());
    }

    #[test]
    fn address_is_normalized_and_checked() {
        let loc = location("America/Chicago").validate().unwrap();
        assert_eq!(loc.address.state, "IL");
        assert_eq!(loc.address.country, "US");
        let mut bad = location("America/Chicago");
        bad.address.postal_code = "6270".into();
        bad.address.state = "XX".into();
        let err = bad.validate().unwrap_err();
        assert!(err.for_field("address.postal_code").is_some());
        assert!(err.for_field("address.state").is_some());
    }

    #[test]
    fn npi_check_digit_matches_published_example() {
        // CMS's worked example: 123456789 has check digit 3.
        assert!(is_valid_npi("1234567893"));
        assert!(!is_valid_npi("1234567890"));
        assert!(!is_valid_npi("12345"));
    }

    #[test]
    fn practitioner_role_requires_known_specialty() {
        let role = PractitionerRole {
            practitioner_id: "p".into(),
            location_id: "l".into(),
            specialty: "nope".into(),
            active: true,
        };
        assert!(
            role.validate()
                .unwrap_err()
                .for_field("specialty")
                .is_some()
        );
    }
}
