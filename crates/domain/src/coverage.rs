//! Insurance: the payer directory and a patient's coverages.

use crate::ValidationErrors;
use crate::validation::{optional_text, required_text};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// A payer as clearinghouses know it: `payer_id` is the electronic payer ID
/// used in X12 270/271 and 837 transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub name: String,
    pub payer_id: String,
    pub active: bool,
}

/// Common US national payers and their widely published electronic payer
/// IDs, seeded into every new organization. Payer IDs differ between
/// clearinghouses for some payers: admins check them against their
/// clearinghouse's list and add their region's plans (Medicare contractors,
/// Medicaid, Blue plans).
pub const COMMON_PAYERS: [(&str, &str); 8] = [
    ("Aetna", "60054"),
    ("Blue Cross Blue Shield of Texas", "84980"),
    ("Cigna", "62308"),
    ("Humana", "61101"),
    ("Kaiser Permanente Northern California", "94135"),
    ("Kaiser Permanente Southern California", "94134"),
    ("UnitedHealthcare", "87726"),
    ("Wellcare", "14163"),
];

impl Payer {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.name = required_text(&mut errors, "name", &self.name, 200);
        self.payer_id = required_text(&mut errors, "payer_id", &self.payer_id, 20).to_uppercase();
        if !self.payer_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.add("payer_id", "must be letters and digits only");
        }
        errors.into_result(self)
    }
}

/// The order in which coverages pay (coordination of benefits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageOrder {
    Primary,
    Secondary,
    Tertiary,
}

impl CoverageOrder {
    pub const ALL: [CoverageOrder; 3] = [Self::Primary, Self::Secondary, Self::Tertiary];

    /// FHIR `Coverage.order`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Primary => 1,
            Self::Secondary => 2,
            Self::Tertiary => 3,
        }
    }

    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.rank() == rank)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Primary => "Primary",
            Self::Secondary => "Secondary",
            Self::Tertiary => "Tertiary",
        }
    }
}

/// The patient's relationship to the subscriber, as FHIR's
/// `subscriber-relationship` code system names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberRelationship {
    #[serde(rename = "self")]
    Itself,
    Spouse,
    Child,
    Parent,
    Common,
    Other,
    Injured,
}

impl SubscriberRelationship {
    pub const ALL: [SubscriberRelationship; 7] = [
        Self::Itself,
        Self::Spouse,
        Self::Child,
        Self::Parent,
        Self::Common,
        Self::Other,
        Self::Injured,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Itself => "self",
            Self::Spouse => "spouse",
            Self::Child => "child",
            Self::Parent => "parent",
            Self::Common => "common",
            Self::Other => "other",
            Self::Injured => "injured",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Who holds the policy when it is not the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    pub given: String,
    pub family: String,
    pub birth_date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub patient_id: String,
    /// Id of the payer in the organization's payer directory.
    pub payer_ref: String,
    pub plan_name: Option<String>,
    pub member_id: String,
    pub group_number: Option<String>,
    pub relationship: SubscriberRelationship,
    /// Required unless the relationship is `self`.
    pub subscriber: Option<Subscriber>,
    pub order: CoverageOrder,
    pub start: Option<Date>,
    pub end: Option<Date>,
    pub active: bool,
}

impl Coverage {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.patient_id = required_text(&mut errors, "patient", &self.patient_id, 64);
        self.payer_ref = required_text(&mut errors, "payer", &self.payer_ref, 64);
        self.plan_name = optional_text(&mut errors, "plan_name", self.plan_name.as_deref(), 120);
        self.member_id = required_text(&mut errors, "member_id", &self.member_id, 40);
        if !self
            .member_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.add("member_id", "must be letters, digits or '-'");
        }
        self.group_number = optional_text(
            &mut errors,
            "group_number",
            self.group_number.as_deref(),
            40,
        );
        match (&mut self.subscriber, self.relationship) {
            (_, SubscriberRelationship::Itself) => self.subscriber = None,
            (None, _) => errors.add(
                "subscriber",
                "is required when the patient is not the subscriber",
            ),
            (Some(s), _) => {
                s.given = required_text(&mut errors, "subscriber.given", &s.given, 100);
                s.family = required_text(&mut errors, "subscriber.family", &s.family, 100);
            }
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && end < start
        {
            errors.add("end", "must not be before the start date");
        }
        errors.into_result(self)
    }

    /// In force on `day`: active and within its period.
    pub fn in_force(&self, day: Date) -> bool {
        self.active && self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| day <= e)
    }
}

/// Which side of an insurance card an image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardSide {
    Front,
    Back,
}

impl CardSide {
    pub const ALL: [CardSide; 2] = [Self::Front, Self::Back];

    pub fn code(self) -> &'static str {
        match self {
            Self::Front => "front",
            Self::Back => "back",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Front => "Front",
            Self::Back => "Back",
        }
    }
}

/// Largest card image kept: a phone photo or a 300 dpi scan fits easily.
pub const MAX_CARD_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The image types accepted for cards, as served back.
pub const CARD_IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// The media type of a card image, read from its first bytes rather than
/// trusted from the upload (a file named `.jpg` may be anything). Refuses
/// empty, oversized and non-image files, naming the `file` field.
pub fn card_image_type(bytes: &[u8]) -> Result<&'static str, ValidationErrors> {
    if bytes.is_empty() {
        return Err(ValidationErrors::single("file", "choose an image file"));
    }
    if bytes.len() > MAX_CARD_IMAGE_BYTES {
        return Err(ValidationErrors::single(
            "file",
            format!(
                "is larger than {} MiB",
                MAX_CARD_IMAGE_BYTES / (1024 * 1024)
            ),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok("image/webp")
    } else {
        Err(ValidationErrors::single(
            "file",
            "must be a JPEG, PNG or WebP image",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn coverage() -> Coverage {
        Coverage {
            patient_id: "p1".into(),
            payer_ref: "payer1".into(),
            plan_name: Some("Choice POS II".into()),
            member_id: "W123456789".into(),
            group_number: Some("0012345".into()),
            relationship: SubscriberRelationship::Itself,
            subscriber: None,
            order: CoverageOrder::Primary,
            start: Some(date(2026, 1, 1)),
            end: Some(date(2026, 12, 31)),
            active: true,
        }
    }

    #[test]
    fn a_dependent_needs_the_subscriber_named() {
        let mut c = coverage();
        c.relationship = SubscriberRelationship::Child;
        assert!(
            c.clone()
                .validate()
                .unwrap_err()
                .for_field("subscriber")
                .is_some()
        );
        c.subscriber = Some(Subscriber {
            given: "Ana".into(),
            family: "Reyes".into(),
            birth_date: None,
        });
        assert!(c.validate().is_ok());
    }

    #[test]
    fn periods_and_member_ids_are_checked() {
        let mut c = coverage();
        c.end = Some(date(2025, 1, 1));
        c.member_id = "W12 34".into();
        let err = c.validate().unwrap_err();
        assert!(err.for_field("end").is_some());
        assert!(err.for_field("member_id").is_some());
    }

    #[test]
    fn in_force_follows_the_period() {
        let c = coverage();
        assert!(c.in_force(date(2026, 6, 1)));
        assert!(!c.in_force(date(2027, 1, 1)));
    }

    #[test]
    fn seeded_payers_validate() {
        for (name, id) in COMMON_PAYERS {
            assert!(
                Payer {
                    name: name.into(),
                    payer_id: id.into(),
                    active: true
                }
                .validate()
                .is_ok()
            );
        }
    }

    #[test]
    fn card_images_are_recognised_by_their_bytes() {
        assert_eq!(
            card_image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0]),
            Ok("image/jpeg")
        );
        assert_eq!(card_image_type(b"\x89PNG\r\n\x1a\n...."), Ok("image/png"));
        assert_eq!(card_image_type(b"RIFF\0\0\0\0WEBPVP8 "), Ok("image/webp"));
        for bad in [&b""[..], b"GIF89a", b"<svg onload=alert(1)>"] {
            assert!(
                card_image_type(bad)
                    .unwrap_err()
                    .for_field("file")
                    .is_some()
            );
        }
        let big = vec![0xFF; MAX_CARD_IMAGE_BYTES + 1];
        assert!(card_image_type(&big).is_err());
        for side in CardSide::ALL {
            assert_eq!(CardSide::from_code(side.code()), Some(side));
        }
    }
}
