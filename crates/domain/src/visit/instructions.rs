//! Post-visit instructions handed to the patient at checkout: one template
//! per appointment type (a title, a body with placeholders such as
//! `{patient.given}`, and the follow-up interval the type suggests), filled
//! in from the visit's facts.
//!
//! A placeholder is `{name}` on one line. A template that names a
//! placeholder not in [`Placeholder::ALL`] is refused when it is saved,
//! naming the field it is in, so a typo never reaches a patient as
//! `{patient.givn}`. Braces that do not close on their line are ordinary
//! text. Types without a template of their own use
//! [`InstructionsTemplate::default`].

use crate::ValidationErrors;
use crate::validation::required_text;
use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_BODY_CHARS: usize = 8000;
/// Two years: a longer interval is a recall, not a follow-up.
pub const MAX_FOLLOW_UP_DAYS: i64 = 730;

/// A value a template can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    PatientGiven,
    PatientFamily,
    PatientBirthDate,
    VisitDate,
    VisitProvider,
    VisitType,
    VisitLocation,
    FollowUpInterval,
}

impl Placeholder {
    pub const ALL: [Placeholder; 8] = [
        Self::PatientGiven,
        Self::PatientFamily,
        Self::PatientBirthDate,
        Self::VisitDate,
        Self::VisitProvider,
        Self::VisitType,
        Self::VisitLocation,
        Self::FollowUpInterval,
    ];

    /// As written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::PatientGiven => "patient.given",
            Self::PatientFamily => "patient.family",
            Self::PatientBirthDate => "patient.birth_date",
            Self::VisitDate => "visit.date",
            Self::VisitProvider => "visit.provider",
            Self::VisitType => "visit.type",
            Self::VisitLocation => "visit.location",
            Self::FollowUpInterval => "followup.interval",
        }
    }

    /// What it prints, for the template editor.
    pub fn description(self) -> &'static str {
        match self {
            Self::PatientGiven => "the patient's first name",
            Self::PatientFamily => "the patient's last name",
            Self::PatientBirthDate => "the patient's date of birth",
            Self::VisitDate => "the day of the visit",
            Self::VisitProvider => "the provider who saw the patient",
            Self::VisitType => "the appointment type",
            Self::VisitLocation => "the clinic location of the visit",
            Self::FollowUpInterval => {
                "when to come back: “in 2 weeks”, or “as needed” when the type suggests no interval"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// `{name}`.
    pub fn token(self) -> String {
        format!("{{{}}}", self.name())
    }
}

/// The unit a follow-up interval is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    Days,
    Weeks,
}

impl IntervalUnit {
    pub const ALL: [IntervalUnit; 2] = [Self::Days, Self::Weeks];

    pub fn code(self) -> &'static str {
        match self {
            Self::Days => "days",
            Self::Weeks => "weeks",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == code)
    }

    fn days(self) -> i64 {
        match self {
            Self::Days => 1,
            Self::Weeks => 7,
        }
    }
}

/// When the patient should be seen again: a count of days or weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub count: u16,
    pub unit: IntervalUnit,
}

impl FollowUp {
    /// Reads the editor's inputs: an empty count is no follow-up; otherwise
    /// 1 to two years (errors name `followup.count` or `followup.unit`).
    pub fn parse(count: &str, unit: &str) -> Result<Option<Self>, ValidationErrors> {
        let count = count.trim();
        if count.is_empty() {
            return Ok(None);
        }
        let mut errors = ValidationErrors::new();
        let unit = IntervalUnit::from_code(unit.trim()).unwrap_or_else(|| {
            errors.add("followup.unit", "must be days or weeks");
            IntervalUnit::Days
        });
        let max = MAX_FOLLOW_UP_DAYS / unit.days();
        let count = match count.parse::<u16>() {
            Ok(n) if (1..=max).contains(&i64::from(n)) => n,
            _ => {
                errors.add(
                    "followup.count",
                    format!("must be a whole number from 1 to {max} {}", unit.code()),
                );
                1
            }
        };
        errors.into_result(Some(Self { count, unit }))
    }

    pub fn days(self) -> i64 {
        i64::from(self.count) * self.unit.days()
    }

    /// "1 day", "2 weeks".
    pub fn length_text(self) -> String {
        let unit = self.unit.code();
        match self.count {
            1 => format!("1 {}", unit.trim_end_matches('s')),
            n => format!("{n} {unit}"),
        }
    }

    /// The day the interval ends when it starts on `visit`.
    pub fn after(self, visit: Date) -> Date {
        visit.checked_add(self.days().days()).unwrap_or(Date::MAX)
    }
}

/// What a template is filled with, each value as it is to be printed (the
/// edge formats names and dates its own way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstructionFacts {
    pub patient_given: String,
    pub patient_family: String,
    pub patient_birth_date: String,
    pub visit_date: String,
    pub provider: String,
    pub visit_type: String,
    pub location: String,
}

/// A template filled in for one visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilledInstructions {
    pub title: String,
    /// Lines as written; an empty line separates paragraphs.
    pub body: String,
}

/// The post-visit instructions of an appointment type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructionsTemplate {
    pub title: String,
    pub body: String,
    /// The follow-up the type suggests; `None` when it suggests none.
    pub followup: Option<FollowUp>,
}

impl Default for InstructionsTemplate {
    /// Safe for any visit: it names nothing clinical the provider did not
    /// say, and suggests no follow-up interval.
    fn default() -> Self {
        Self {
            title: "After your visit".into(),
            body: "Dear {patient.given} {patient.family},\n\
                \n\
                Thank you for your {visit.type} at {visit.location} on {visit.date} with {visit.provider}.\n\
                \n\
                - Follow the care plan your provider discussed with you today.\n\
                - Take medicines only as prescribed, and tell us about any new medicine.\n\
                - Call us if your symptoms get worse or you have new concerns. In an emergency, call 911.\n\
                \n\
                Please book a follow-up visit {followup.interval}."
                .into(),
            followup: None,
        }
    }
}

/// A part of a template's text.
enum Piece<'a> {
    Text(&'a str),
    /// `{…}`: the name between the braces, trimmed.
    Reference(&'a str),
}

/// Splits `text` at its `{…}` references; a brace that does not close on
/// its line is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find(['}', '{', '\n'])
            .filter(|&i| after.as_bytes()[i] == b'}');
        match close {
            Some(close) => {
                out.push(Piece::Text(&rest[..open]));
                out.push(Piece::Reference(after[..close].trim()));
                rest = &after[close + 1..];
            }
            None => {
                out.push(Piece::Text(&rest[..=open]));
                rest = after;
            }
        }
    }
    out.push(Piece::Text(rest));
    out
}

impl InstructionsTemplate {
    /// A title is required; both fields hold only known placeholders.
    /// Errors name `title` or `body` (and the placeholder). Line ends are
    /// stored as `\n`.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.title = required_text(&mut errors, "title", &self.title, MAX_TITLE_CHARS);
        if self.title.contains(['\n', '\r']) {
            errors.add("title", "must be one line");
        }
        self.body = self.body.replace("\r\n", "\n").trim_end().to_string();
        if self.body.trim().is_empty() {
            errors.add("body", "is required");
        } else if self.body.chars().count() > MAX_BODY_CHARS {
            errors.add(
                "body",
                format!("must be at most {MAX_BODY_CHARS} characters"),
            );
        }
        for (field, text) in [("title", &self.title), ("body", &self.body)] {
            let mut unknown: Vec<String> = Vec::new();
            for piece in pieces(text) {
                if let Piece::Reference(name) = piece
                    && Placeholder::from_name(name).is_none()
                {
                    let token = format!("{{{name}}}");
                    if !unknown.contains(&token) {
                        unknown.push(token);
                    }
                }
            }
            match unknown.as_slice() {
                [] => {}
                [one] => errors.add(field, format!("uses the unknown placeholder {one}")),
                many => errors.add(
                    field,
                    format!("uses the unknown placeholders {}", many.join(", ")),
                ),
            }
        }
        errors.into_result(self)
    }

    /// "in 2 weeks", or "as needed" without an interval.
    pub fn followup_text(&self) -> String {
        match self.followup {
            Some(f) => format!("in {}", f.length_text()),
            None => "as needed".into(),
        }
    }

    /// The template with `facts` in its placeholders. A reference that is
    /// not a placeholder (a template stored before the rules) stays as
    /// written.
    pub fn render(&self, facts: &InstructionFacts) -> FilledInstructions {
        let followup = self.followup_text();
        let fill = |text: &str| {
            let mut out = String::with_capacity(text.len());
            for piece in pieces(text) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Reference(name) => match Placeholder::from_name(name) {
                        Some(p) => out.push_str(match p {
                            Placeholder::PatientGiven => &facts.patient_given,
                            Placeholder::PatientFamily => &facts.patient_family,
                            Placeholder::PatientBirthDate => &facts.patient_birth_date,
                            Placeholder::VisitDate => &facts.visit_date,
                            Placeholder::VisitProvider => &facts.provider,
                            Placeholder::VisitType => &facts.visit_type,
                            Placeholder::VisitLocation => &facts.location,
                            Placeholder::FollowUpInterval => &followup,
                        }),
                        None => {
                            out.push('{');
                            out.push_str(name);
                            out.push('}');
                        }
                    },
                }
            }
            out
        };
        FilledInstructions {
            title: fill(&self.title),
            body: fill(&self.body),
        }
    }
}

/// The organization's templates by appointment type id (a setting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostVisitInstructions {
    pub by_type: BTreeMap<String, InstructionsTemplate>,
}

impl PostVisitInstructions {
    /// The type's own template, if it has one.
    pub fn own(&self, type_id: &str) -> Option<&InstructionsTemplate> {
        self.by_type.get(type_id)
    }

    /// The template a visit of the type gets: its own, else the default.
    pub fn for_type(&self, type_id: &str) -> InstructionsTemplate {
        self.own(type_id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts() -> InstructionFacts {
        InstructionFacts {
            patient_given: "Ana".into(),
            patient_family: "Reyes".into(),
            patient_birth_date: "03/14/1962".into(),
            visit_date: "03/10/2026".into(),
            provider: "Dr. Lee Park, MD".into(),
            visit_type: "Dermatology visit".into(),
            location: "Riverside Clinic".into(),
        }
    }

    fn template(title: &str, body: &str) -> InstructionsTemplate {
        InstructionsTemplate {
            title: title.into(),
            body: body.into(),
            followup: None,
        }
    }

    #[test]
    fn every_placeholder_is_filled_from_the_facts() {
        let body: Vec<String> = Placeholder::ALL.iter().map(|p| p.token()).collect();
        let mut t = template("For {patient.given}", &body.join("|"));
        t.followup = Some(FollowUp {
            count: 2,
            unit: IntervalUnit::Weeks,
        });
        let t = t.validate().unwrap();
        let filled = t.render(&facts());
        assert_eq!(filled.title, "For Ana");
        assert_eq!(
            filled.body,
            "Ana|Reyes|03/14/1962|03/10/2026|Dr. Lee Park, MD|Dermatology visit|Riverside Clinic|in 2 weeks"
        );
    }

    #[test]
    fn spaces_inside_the_braces_are_allowed_and_lone_braces_are_text() {
        let t = template("Hi", "{ patient.given }, see {here and {\n}, or {")
            .validate()
            .unwrap();
        assert_eq!(t.render(&facts()).body, "Ana, see {here and {\n}, or {");
    }

    #[test]
    fn unknown_placeholders_are_refused_naming_the_field_and_the_placeholder() {
        let err = template(
            "For {patient.nickname}",
            "{patient.givn} {patient.givn} {ssn}",
        )
        .validate()
        .unwrap_err();
        assert_eq!(
            err.for_field("title"),
            Some("uses the unknown placeholder {patient.nickname}")
        );
        assert_eq!(
            err.for_field("body"),
            Some("uses the unknown placeholders {patient.givn}, {ssn}")
        );
    }

    #[test]
    fn a_title_and_a_body_are_required() {
        let err = template("  ", "\r\n ").validate().unwrap_err();
        assert_eq!(err.for_field("title"), Some("is required"));
        assert_eq!(err.for_field("body"), Some("is required"));
        let long = "x".repeat(MAX_BODY_CHARS + 1);
        let err = template("A\nB", &long).validate().unwrap_err();
        assert_eq!(err.for_field("title"), Some("must be one line"));
        assert!(
            err.for_field("body")
                .unwrap()
                .starts_with("must be at most")
        );
    }

    #[test]
    fn line_ends_are_stored_as_newlines_and_the_title_trimmed() {
        let t = template(" After ", "One\r\n\r\nTwo\r\n\r\n")
            .validate()
            .unwrap();
        assert_eq!(t.title, "After");
        assert_eq!(t.body, "One\n\nTwo");
    }

    #[test]
    fn follow_up_intervals_are_read_and_bounded() {
        assert_eq!(FollowUp::parse("", "weeks"), Ok(None));
        let two_weeks = FollowUp::parse(" 2 ", "weeks").unwrap().unwrap();
        assert_eq!(two_weeks.days(), 14);
        assert_eq!(two_weeks.length_text(), "2 weeks");
        assert_eq!(
            two_weeks.after(Date::constant(2026, 2, 20)),
            Date::constant(2026, 3, 6)
        );
        let one_day = FollowUp::parse("1", "days").unwrap().unwrap();
        assert_eq!(one_day.length_text(), "1 day");
        assert!(FollowUp::parse("104", "weeks").unwrap().is_some());
        let err = FollowUp::parse("105", "weeks").unwrap_err();
        assert_eq!(
            err.for_field("followup.count"),
            Some("must be a whole number from 1 to 104 weeks")
        );
        assert!(FollowUp::parse("0", "days").is_err());
        assert!(FollowUp::parse("two", "days").is_err());
        let err = FollowUp::parse("3", "months").unwrap_err();
        assert_eq!(
            err.for_field("followup.unit"),
            Some("must be days or weeks")
        );
    }

    #[test]
    fn without_an_interval_the_follow_up_reads_as_needed() {
        let t = template("T", "Come back {followup.interval}.");
        assert_eq!(t.render(&facts()).body, "Come back as needed.");
    }

    #[test]
    fn types_without_a_template_get_the_default_which_is_valid() {
        let mut set = PostVisitInstructions::default();
        let default = set.for_type("derm");
        assert_eq!(default, InstructionsTemplate::default());
        assert_eq!(default.clone().validate(), Ok(default.clone()));
        let filled = default.render(&facts());
        assert!(
            filled.body.starts_with("Dear Ana Reyes,"),
            "{}",
            filled.body
        );
        assert!(filled.body.ends_with("follow-up visit as needed."));
        let own = template("Mole check", "Keep the site dry.");
        set.by_type.insert("derm".into(), own.clone());
        assert_eq!(set.for_type("derm"), own);
        assert_eq!(set.own("other"), None);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(
            serde_json::from_str::<PostVisitInstructions>(&json).unwrap(),
            set
        );
        assert_eq!(
            serde_json::from_str::<PostVisitInstructions>("{}").unwrap(),
            PostVisitInstructions::default()
        );
    }

    proptest! {
        /// Text without braces is printed as written, and a validated
        /// template leaves no placeholder unfilled.
        #[test]
        fn rendering_keeps_plain_text_and_fills_every_placeholder(
            plain in "[^{}]{0,200}",
            picks in proptest::collection::vec(0..Placeholder::ALL.len(), 0..6),
        ) {
            let t = template("T", &plain);
            prop_assert_eq!(t.render(&facts()).body, plain.clone());
            let mut body = plain.clone();
            for i in picks {
                body.push_str(&Placeholder::ALL[i].token());
            }
            if let Ok(valid) = template("T", &body).validate() {
                let filled = valid.render(&facts()).body;
                for p in Placeholder::ALL {
                    prop_assert!(!filled.contains(&p.token()));
                }
            }
        }
    }
}
