//! Self check-in at a kiosk in the entrance, as rules: how a patient finds
//! their appointment (name and date of birth, matched strictly so that a
//! near miss sends them to the desk rather than to someone else's visit),
//! what the kiosk may show back (contact details masked: whoever stands at
//! the kiosk may not be the patient), the contact changes the patient may
//! propose (the desk reviews them at check-in), the consent signature, and
//! how many lookups that find nothing a kiosk allows before it stops looking
//! (so that nobody at the entrance can try names and dates of birth until
//! one shows who has an appointment).

use crate::ValidationErrors;
use crate::contact::{normalize_email, normalize_phone};
use crate::directory::Address;
use crate::patient::Patient;
use crate::patient_search::parse_date;
use crate::security::LockoutPolicy;
use crate::text::fold;
use crate::validation::required_text;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Seconds without a touch after which a kiosk returns to its start screen
/// and forgets what was entered.
pub const DEFAULT_KIOSK_IDLE_SECONDS: i64 = 90;

/// The longest drawn signature accepted, in characters of its path.
pub const MAX_SIGNATURE_CHARS: usize = 60_000;

/// What the patient types on the start screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskLookup {
    family: String,
    given: String,
    pub birth_date: Date,
}

/// A name as the kiosk compares it: folded, without spaces, hyphens or
/// apostrophes, so "García-López" and "garcia lopez" meet but "Garcia" and
/// "Garza" do not.
fn compact(name: &str) -> String {
    fold(name)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

impl KioskLookup {
    /// A kiosk refuses lookups for `lock_seconds` after `max_failures`
    /// consecutive lookups that found no appointment (invalid input is not
    /// one); a self check-in completed at the kiosk resets the count, and
    /// when the lock expires the count starts afresh. The same rule as
    /// staff sign-in ([`LockoutPolicy`]), counted per kiosk device.
    pub const LOCKOUT: LockoutPolicy = LockoutPolicy {
        max_failures: 5,
        lock_seconds: 5 * 60,
    };

    /// Reads the start screen; errors name `family`, `given` or `birth_date`.
    pub fn parse(
        family: &str,
        given: &str,
        birth_date: &str,
        today: Date,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let family = required_text(&mut errors, "family", family, 100);
        let given = required_text(&mut errors, "given", given, 100);
        let typed = birth_date.trim();
        let birth_date = match parse_date(typed, today) {
            _ if typed.is_empty() => {
                errors.add("birth_date", "is required");
                None
            }
            None => {
                errors.add("birth_date", "must be a date such as 04/27/1985");
                None
            }
            Some(d) if d > today => {
                errors.add("birth_date", "cannot be in the future");
                None
            }
            Some(d) => Some(d),
        };
        match birth_date {
            Some(birth_date) if errors.is_empty() => Ok(KioskLookup {
                family: compact(&family),
                given: compact(&given),
                birth_date,
            }),
            _ => Err(errors),
        }
    }

    /// The patient is the one typed: same date of birth, same family name,
    /// and the given name is the legal one or the name they go by.
    pub fn matches(&self, patient: &Patient) -> bool {
        patient.birth_date == self.birth_date
            && compact(&patient.family) == self.family
            && std::iter::once(patient.given.as_str())
                .chain(patient.preferred_name.as_deref())
                .any(|g| compact(g) == self.given)
    }
}

/// A phone number as the kiosk shows it: only its last four digits.
pub fn mask_phone(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("ending in {last}")
}

/// An email address as the kiosk shows it: the first letter and the domain.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".into(),
    }
}

/// The patient's addresses as the kiosk shows them: only whether there are
/// any, never a street, city or ZIP code. "on file" (the home address),
/// "on file, and 2 other addresses", "none on file".
pub fn mask_addresses(patient: &Patient) -> String {
    let home = patient.home_address().is_some();
    let others = patient.addresses.len() - usize::from(home);
    let other = |n: usize| match n {
        1 => "1 other address".to_string(),
        n => format!("{n} other addresses"),
    };
    match (home, others) {
        (true, 0) => "on file".into(),
        (true, n) => format!("on file, and {}", other(n)),
        (false, 0) => "none on file".into(),
        (false, n) => format!("none on file ({} on file)", other(n)),
    }
}

/// Contact details the patient changed at the kiosk. They are not written
/// to the record there: the desk sees them at check-in and confirms them
/// with the patient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdate {
    /// E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A new home address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// The contact inputs of the kiosk, as typed (empty: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ContactInput<'a> {
    pub phone: &'a str,
    pub email: &'a str,
    pub line1: &'a str,
    pub city: &'a str,
    pub state: &'a str,
    pub postal_code: &'a str,
}

impl ContactUpdate {
    /// Reads what the patient typed; errors name `phone`, `email` or
    /// `address.*`. An address is all or nothing.
    pub fn parse(input: &ContactInput, phone_region: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
        let phone = given(input.phone).and_then(|p| match normalize_phone(&p, phone_region) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.add("phone", e);
                None
            }
        });
        let email = given(input.email).and_then(|e| match normalize_email(&e) {
            Ok(e) => Some(e),
            Err(m) => {
                errors.add("email", m);
                None
            }
        });
        let parts = [input.line1, input.city, input.state, input.postal_code];
        let address = parts.iter().any(|p| !p.trim().is_empty()).then(|| {
            let mut a = Address {
                line1: input.line1.into(),
                line2: None,
                city: input.city.into(),
                state: input.state.into(),
                postal_code: input.postal_code.into(),
                country: "US".into(),
            };
            a.validate(&mut errors, "address");
            a
        });
        errors.into_result(ContactUpdate {
            phone,
            email,
            address,
        })
    }

    pub fn is_empty(&self) -> bool {
        self == &ContactUpdate::default()
    }

    /// What changed, in the desk's words, against the record.
    pub fn describe(&self, patient: &Patient) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(p) = &self.phone
            && patient.phones.first().map(|f| &f.number) != Some(p)
        {
            lines.push(format!("phone {}", crate::contact::display_phone(p)));
        }
        // The part before the @ may be case-sensitive, but nobody means that.
        if let Some(e) = &self.email
            && !patient
                .email
                .as_ref()
                .is_some_and(|old| old.eq_ignore_ascii_case(e))
        {
            lines.push(format!("email {e}"));
        }
        if let Some(a) = &self.address
            && patient.home_address() != Some(a)
        {
            lines.push(format!(
                "home address {}, {}, {} {}",
                a.line1, a.city, a.state, a.postal_code
            ));
        }
        lines
    }
}

/// The consent the kiosk asks for, with the version its text is known by.
#[derive(Debug)]
pub struct Consent {
    pub id: &'static str,
    pub title: &'static str,
    pub text: &'static str,
}

pub const CONSENT_TO_TREAT: Consent = Consent {
    id: "consent-to-treat-v1",
    title: "Consent to treatment and acknowledgement of privacy practices",
    text: "I consent to examination and treatment by the clinic's providers. I acknowledge that \
           I have been offered the clinic's Notice of Privacy Practices, which explains how my \
           health information is used and shared and my rights under HIPAA. I authorize the \
           clinic to bill my insurance for the services I receive and understand that I am \
           responsible for any amount my insurance does not pay.",
};

/// How the patient signed: drawn on the screen (an SVG path of straight
/// segments, as the kiosk's script records strokes) or typed, for patients
/// who cannot draw on a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Signature {
    Drawn(String),
    Typed(String),
}

impl Signature {
    /// A drawn signature wins over a typed one; a typed one must be the
    /// patient's name. Errors name `signature`.
    pub fn parse(drawn: &str, typed: &str, patient: &Patient) -> Result<Self, ValidationErrors> {
        let refuse = |m: &str| Err(ValidationErrors::single("signature", m));
        let drawn = drawn.trim();
        if !drawn.is_empty() {
            let points = drawn.split(['M', 'L']).filter(|s| !s.trim().is_empty());
            return if drawn.len() > MAX_SIGNATURE_CHARS {
                refuse("is too long: clear it and sign again")
            } else if !drawn
                .chars()
                .all(|c| matches!(c, 'M' | 'L' | ' ' | '.' | '-' | '0'..='9'))
                || !drawn.starts_with('M')
            {
                refuse("could not be read: clear it and sign again")
            } else if points.count() < 2 {
                refuse("is only a dot: sign with your finger in the box")
            } else {
                Ok(Signature::Drawn(drawn.to_string()))
            };
        }
        let typed = typed.trim();
        if typed.is_empty() {
            return refuse("is required: sign in the box, or type your full name");
        }
        let words = compact(typed);
        if !words.contains(&compact(&patient.family)) || !words.contains(&compact(&patient.given)) {
            return refuse("must be your first and last name as on your appointment");
        }
        Ok(Signature::Typed(typed.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::AdministrativeGender;
    use crate::patient::{Phone, PhoneKind};
    use jiff::civil::date;

    fn patient() -> Patient {
        Patient {
            mrn: "00000042".into(),
            given: "José".into(),
            middle: None,
            family: "García-López".into(),
            suffix: None,
            preferred_name: Some("Pepe".into()),
            birth_date: date(1985, 4, 27),
            sex: AdministrativeGender::Male,
            gender_identity: None,
            pronouns: None,
            addresses: vec![],
            phones: vec![Phone {
                number: "+15125550123".into(),
                kind: PhoneKind::Mobile,
                sms_consent: false,
            }],
            email: Some("jose@example.com".into()),
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

    const TODAY: Date = date(2026, 12, 3);

    #[test]
    fn the_patient_is_found_however_the_name_is_typed() {
        let p = patient();
        for (family, given) in [
            ("garcia lopez", "jose"),
            ("GARCIA-LOPEZ", "José"),
            ("García López", "pepe"),
        ] {
            let l = KioskLookup::parse(family, given, "4/27/85", TODAY).unwrap();
            assert!(l.matches(&p), "{family}, {given}");
        }
    }

    #[test]
    fn a_near_miss_is_not_a_match() {
        let p = patient();
        let miss = |family: &str, given: &str, dob: &str| {
            !KioskLookup::parse(family, given, dob, TODAY)
                .unwrap()
                .matches(&p)
        };
        assert!(miss("Garcia", "Jose", "04/27/1985"));
        assert!(miss("Garcia-Lopez", "Josefa", "04/27/1985"));
        assert!(miss("Garcia-Lopez", "Jose", "04/28/1985"));
    }

    #[test]
    fn the_start_screen_names_each_missing_or_wrong_field() {
        let e = KioskLookup::parse(" ", "", "31/31/1985", TODAY).unwrap_err();
        assert_eq!(e.for_field("family"), Some("is required"));
        assert_eq!(e.for_field("given"), Some("is required"));
        assert!(e.for_field("birth_date").unwrap().contains("date"));
        let e = KioskLookup::parse("Doe", "Jo", "12/04/2026", TODAY).unwrap_err();
        assert_eq!(e.for_field("birth_date"), Some("cannot be in the future"));
    }

    #[test]
    fn a_kiosk_stops_looking_for_five_minutes_after_five_misses() {
        let policy = KioskLookup::LOCKOUT;
        let minute = 60 * 1_000_000;
        let mut count = 0;
        for _ in 0..4 {
            let o = policy.after_failure(count, 0);
            assert_eq!(o.locked_until_us, None);
            count = o.failed_count;
        }
        assert_eq!(count, 4);
        let fifth = policy.after_failure(count, 0);
        assert_eq!(fifth.locked_until_us, Some(5 * minute));
        assert!(policy.is_locked(fifth.locked_until_us, 5 * minute - 1));
        assert!(!policy.is_locked(fifth.locked_until_us, 5 * minute));
        // Afresh after the lock: one miss is one miss.
        assert_eq!(fifth.failed_count, 0);
        let next = policy.after_failure(fifth.failed_count, 5 * minute);
        assert_eq!((next.failed_count, next.locked_until_us), (1, None));
    }

    #[test]
    fn contact_details_are_shown_masked() {
        assert_eq!(mask_phone("+15125550123"), "ending in 0123");
        assert_eq!(mask_email("jose@example.com"), "j•••@example.com");
        let mut p = patient();
        assert_eq!(mask_addresses(&p), "none on file");
        let street = Address {
            line1: "1 Main St".into(),
            line2: None,
            city: "Austin".into(),
            state: "TX".into(),
            postal_code: "78701".into(),
            country: "US".into(),
        };
        p.addresses = vec![crate::patient::PatientAddress::new(
            crate::patient::AddressUse::Work,
            street.clone(),
        )];
        assert_eq!(mask_addresses(&p), "none on file (1 other address on file)");
        p.addresses
            .insert(0, crate::patient::PatientAddress::home(street.clone()));
        p.addresses.push(crate::patient::PatientAddress::new(
            crate::patient::AddressUse::Old,
            street,
        ));
        let shown = mask_addresses(&p);
        assert_eq!(shown, "on file, and 2 other addresses");
        assert!(!shown.contains("Main") && !shown.contains("787"));
    }

    #[test]
    fn contact_changes_are_validated_and_described() {
        let p = patient();
        let none = ContactUpdate::parse(&ContactInput::default(), "US").unwrap();
        assert!(none.is_empty());
        let u = ContactUpdate::parse(
            &ContactInput {
                phone: "(512) 555-0199",
                email: "JOSE@example.com",
                ..Default::default()
            },
            "US",
        )
        .unwrap();
        assert_eq!(u.phone.as_deref(), Some("+15125550199"));
        assert_eq!(u.describe(&p), vec!["phone (512) 555-0199"]);
        let e = ContactUpdate::parse(
            &ContactInput {
                phone: "555",
                email: "not an email",
                line1: "1 Main St",
                ..Default::default()
            },
            "US",
        )
        .unwrap_err();
        assert!(e.for_field("phone").is_some());
        assert!(e.for_field("email").is_some());
        assert!(e.for_field("address.city").is_some());
        assert!(e.for_field("address.postal_code").is_some());
    }

    #[test]
    fn a_signature_is_drawn_or_the_typed_full_name() {
        let p = patient();
        assert!(matches!(
            Signature::parse("M10 10 L20 12 L30 15", "", &p),
            Ok(Signature::Drawn(_))
        ));
        let e = Signature::parse("M10 10", "", &p).unwrap_err();
        assert!(e.for_field("signature").unwrap().contains("dot"));
        assert!(Signature::parse("M1 1 L2 2\"><script>", "", &p).is_err());
        assert!(matches!(
            Signature::parse("", "Jose Garcia-Lopez", &p),
            Ok(Signature::Typed(_))
        ));
        assert!(Signature::parse("", "Jose", &p).is_err());
        let e = Signature::parse("", "", &p).unwrap_err();
        assert!(e.for_field("signature").unwrap().contains("required"));
    }
}
