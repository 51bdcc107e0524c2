//! Phone numbers and email addresses as patients and staff type them.

use phonenumber::{Mode, country};

/// Default region for numbers typed without a country code.
pub const DEFAULT_PHONE_REGION: &str = "US";

/// Normalizes a phone number to E.164 (`+12125550123`), reading numbers
/// without a country code as numbers of `region` (ISO 3166-1 alpha-2).
/// Returns the reason when the input cannot be a phone number there.
pub fn normalize_phone(input: &str, region: &str) -> Result<String, String> {
    let region_id: country::Id = region
        .trim()
        .to_uppercase()
        .parse()
        .map_err(|_| format!("'{region}' is not a known phone region"))?;
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    let number = phonenumber::parse(Some(region_id), trimmed)
        .map_err(|_| format!("'{trimmed}' is not a phone number"))?;
    // NANP fiction numbers (555-0100..0199) are not "valid" to libphonenumber
    // but are what demos and tests use; accept them as possible numbers.
    if !phonenumber::is_valid(&number) && !is_nanp_fiction(&number) {
        return Err(format!(
            "'{trimmed}' is not a valid phone number for {region}"
        ));
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

fn is_nanp_fiction(number: &phonenumber::PhoneNumber) -> bool {
    let national = number.national().value().to_string();
    number.code().value() == 1 && national.len() == 10 && national[3..].starts_with("55501")
}

/// Checks an email address's syntax (RFC 5322 addr-spec) and lower-cases its
/// domain, which is case-insensitive; the local part is kept as typed.
pub fn normalize_email(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    let parsed: email_address::EmailAddress = trimmed
        .parse()
        .map_err(|_| format!("'{trimmed}' is not an email address"))?;
    let domain = parsed.domain();
    if !domain.contains('.') {
        return Err(format!(
            "'{trimmed}' needs a full domain such as example.com"
        ));
    }
    Ok(format!("{}@{}", parsed.local_part(), domain.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_numbers_in_any_format_become_e164() {
        for typed in [
            "(212) 555-0123",
            "212.555.0123",
            "212-555-0123",
            "+1 212 555 0123",
            "1-212-555-0123",
            "2125550123",
        ] {
            assert_eq!(
                normalize_phone(typed, "US").unwrap(),
                "+12125550123",
                "{typed}"
            );
        }
        assert_eq!(
            normalize_phone("(617) 253-1000", "US").unwrap(),
            "+16172531000"
        );
    }

    #[test]
    fn other_regions_and_bad_numbers() {
        assert_eq!(
            normalize_phone("020 7946 0958", "GB").unwrap(),
            "+442079460958"
        );
        assert!(normalize_phone("12345", "US").is_err());
        assert!(normalize_phone("call me", "US").is_err());
        assert!(normalize_phone("2125550123", "ZZ").is_err());
    }

    #[test]
    fn emails_are_checked_and_domains_lowercased() {
        assert_eq!(
            normalize_email(" Ana.Reyes@Example.COM ").unwrap(),
            "Ana.Reyes@example.com"
        );
        assert!(normalize_email("ana@").is_err());
        assert!(normalize_email("not an email").is_err());
        assert!(normalize_email("ana@localhost").is_err());
    }
}

/// How a stored E.164 number is shown: US numbers as `(212) 555-0123`,
/// others as stored.
pub fn display_phone(e164: &str) -> String {
    match e164.strip_prefix("+1") {
        Some(n) if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])
        }
        _ => e164.to_string(),
    }
}

#[cfg(test)]
mod display_tests {
    #[test]
    fn us_numbers_display_the_us_way() {
        assert_eq!(super::display_phone("+12125550123"), "(212) 555-0123");
        assert_eq!(super::display_phone("+442079460958"), "+442079460958");
    }
}
