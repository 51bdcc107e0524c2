//! The guided check-in at the desk, as data: the checklist of a visit
//! (identity, demographics, coverage, forms and consents, amount due), each
//! step done, needing attention (with the reasons) or not available yet;
//! what is outstanding; and the rule for completing it.
//!
//! Identity is a gate: the date of birth the patient states must equal the
//! record's before anything else counts. Demographic changes are saved only
//! after the desk has seen them highlighted ([`DemographicsReview`]).
//! Everything else that is not done may be left outstanding, but only by
//! acknowledging exactly the list that was shown
//! ([`Checklist::acknowledgement`]); the list is then recorded with the
//! check-in, never skipped silently.

use super::flow::Visit;
use super::status::{VisitStatus, VisitTransitionError};
use crate::ValidationErrors;
use crate::coverage::Coverage;
use crate::mpi::changed_fields;
use crate::patient::Patient;
use crate::patient_search::parse_date;
use jiff::civil::Date;

/// The steps of a check-in, in the order the desk takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckInStep {
    Identity,
    Demographics,
    Coverage,
    FormsAndConsents,
    PaymentDue,
}

impl CheckInStep {
    pub const ALL: [CheckInStep; 5] = [
        Self::Identity,
        Self::Demographics,
        Self::Coverage,
        Self::FormsAndConsents,
        Self::PaymentDue,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Demographics => "demographics",
            Self::Coverage => "coverage",
            Self::FormsAndConsents => "forms",
            Self::PaymentDue => "payment",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Identity => "Identity",
            Self::Demographics => "Demographics",
            Self::Coverage => "Coverage",
            Self::FormsAndConsents => "Forms and consents",
            Self::PaymentDue => "Amount due",
        }
    }
}

/// Where one step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Done,
    /// Missing or wrong: each reason in the desk's words.
    NeedsAttention(Vec<String>),
    /// Carefront cannot check this yet: why.
    NotAvailableYet(String),
}

impl StepState {
    /// Names the kind of state in an acknowledgement, so that a step that
    /// went from "not available" to "needs attention" is acknowledged anew.
    fn code(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::NeedsAttention(_) => "attention",
            Self::NotAvailableYet(_) => "later",
        }
    }

    /// The reasons the step is not done (none when it is).
    pub fn reasons(&self) -> Vec<&str> {
        match self {
            Self::Done => Vec::new(),
            Self::NeedsAttention(reasons) => reasons.iter().map(String::as_str).collect(),
            Self::NotAvailableYet(why) => vec![why.as_str()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    pub step: CheckInStep,
    pub state: StepState,
}

/// The parts of the record the desk reviews with the patient at check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Demographic {
    Address,
    Phones,
    Email,
    PreferredContact,
    /// The preferred language and whether an interpreter is needed.
    Language,
}

impl Demographic {
    pub const ALL: [Demographic; 5] = [
        Self::Address,
        Self::Phones,
        Self::Email,
        Self::PreferredContact,
        Self::Language,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Phones => "phones",
            Self::Email => "email",
            Self::PreferredContact => "preferred_contact",
            Self::Language => "language",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Address => "Address",
            Self::Phones => "Phones",
            Self::Email => "Email",
            Self::PreferredContact => "Preferred contact",
            Self::Language => "Language",
        }
    }

    /// The parts of a comma-separated list of codes that are codes.
    pub fn parse_list(codes: &str) -> Vec<Demographic> {
        Self::ALL
            .into_iter()
            .filter(|d| codes.split(',').any(|c| c.trim() == d.code()))
            .collect()
    }

    /// The codes of `list`, comma-separated: what [`Demographic::parse_list`] reads.
    pub fn list_codes(list: &[Demographic]) -> String {
        let codes: Vec<&str> = list.iter().map(|d| d.code()).collect();
        codes.join(",")
    }

    /// How the patient's history names the fields (`mpi::FIELD_LABELS`):
    /// the comparison is the history's, so check-in and the history agree on
    /// what changed.
    fn history_labels(self) -> &'static [&'static str] {
        match self {
            Self::Address => &["Addresses"],
            Self::Phones => &["Phones"],
            Self::Email => &["Email"],
            Self::PreferredContact => &["Preferred contact"],
            Self::Language => &["Language", "Interpreter"],
        }
    }
}

/// `Ok` when the date of birth typed (any format the patient search reads:
/// `03/14/1962`, `3/14/62`, `1962-03-14`) is the patient's. Errors name
/// `birth_date`; `today` resolves two-digit years into the past.
pub fn confirm_identity(
    patient: &Patient,
    typed: &str,
    today: Date,
) -> Result<(), ValidationErrors> {
    let typed = typed.trim();
    let refuse = |message: String| Err(ValidationErrors::single("birth_date", message));
    if typed.is_empty() {
        return refuse("is required: ask the patient to say their date of birth".into());
    }
    match parse_date(typed, today) {
        None => refuse(format!("'{typed}' is not a date (use MM/DD/YYYY)")),
        // The record's date is not repeated: the patient states it.
        Some(d) if d != patient.birth_date => refuse(
            "does not match the record: ask again, and make sure this is the right patient".into(),
        ),
        Some(_) => Ok(()),
    }
}

/// The record the desk confirms at check-in, compared with the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemographicsReview {
    confirmed: Patient,
    changed: Vec<Demographic>,
    reviewed: bool,
}

impl DemographicsReview {
    /// `edited` is the record as the desk submitted it; only the
    /// [`Demographic`] parts are taken from it, so check-in never changes a
    /// name or a date of birth. `shown` are the changes the page had
    /// highlighted when the desk submitted it: the changes are reviewed
    /// when they are exactly those.
    pub fn new(current: &Patient, edited: &Patient, shown: &[Demographic]) -> Self {
        let mut confirmed = current.clone();
        confirmed.addresses = edited.addresses.clone();
        confirmed.phones = edited.phones.clone();
        confirmed.email = edited.email.clone();
        confirmed.preferred_contact = edited.preferred_contact;
        confirmed.language = edited.language.clone();
        confirmed.interpreter_needed = edited.interpreter_needed;
        let differs = changed_fields(current, &confirmed);
        let changed: Vec<Demographic> = Demographic::ALL
            .into_iter()
            .filter(|d| d.history_labels().iter().any(|l| differs.contains(l)))
            .collect();
        let mut shown = shown.to_vec();
        shown.sort();
        shown.dedup();
        let reviewed = shown == changed;
        Self {
            confirmed,
            changed,
            reviewed,
        }
    }

    /// The record as check-in leaves it.
    pub fn confirmed(&self) -> &Patient {
        &self.confirmed
    }

    /// What differs from the stored record, in form order.
    pub fn changed(&self) -> &[Demographic] {
        &self.changed
    }

    /// Every change was highlighted on the page the desk submitted.
    pub fn is_reviewed(&self) -> bool {
        self.reviewed
    }
}

/// What the checklist is computed from besides the visit.
#[derive(Debug, Clone, Copy)]
pub struct CheckInFacts<'a> {
    /// The record as check-in will leave it ([`DemographicsReview::confirmed`]).
    pub patient: &'a Patient,
    /// The patient's coverages on file.
    pub coverages: &'a [Coverage],
    /// The visit's local day: coverage must be in force on it.
    pub day: Date,
    /// The intake questionnaire the appointment type asks for, if any.
    pub intake_form: Option<&'a str>,
    /// The date of birth stated matched ([`confirm_identity`]).
    pub identity_confirmed: bool,
    /// The patient signed the consent to treatment for this visit (at the kiosk).
    pub consent_signed: bool,
}

/// The check-in checklist of one visit, its steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checklist {
    items: Vec<ChecklistItem>,
}

impl Checklist {
    /// The checklist of `visit`, or the status machine's reason when the
    /// visit cannot be checked in (already checked in, cancelled, ...).
    pub fn new(visit: &Visit, facts: &CheckInFacts) -> Result<Self, VisitTransitionError> {
        visit.status.check_transition(VisitStatus::CheckedIn)?;
        let items = CheckInStep::ALL
            .into_iter()
            .map(|step| ChecklistItem {
                step,
                state: state_of(step, facts),
            })
            .collect();
        Ok(Self { items })
    }

    pub fn state(&self, step: CheckInStep) -> &StepState {
        &self
            .items
            .iter()
            .find(|i| i.step == step)
            .expect("every step is on the checklist")
            .state
    }

    /// The steps check-in would leave undone, in order. Identity is never
    /// among them: it is a gate, not something to acknowledge.
    pub fn outstanding(&self) -> impl Iterator<Item = &ChecklistItem> {
        self.items
            .iter()
            .filter(|i| i.step != CheckInStep::Identity && i.state != StepState::Done)
    }

    /// What the desk acknowledges by ticking the box under the list shown:
    /// each outstanding step and the kind of its state (empty when nothing
    /// is outstanding). A list that changed meanwhile gives another value.
    pub fn acknowledgement(&self) -> String {
        let parts: Vec<String> = self
            .outstanding()
            .map(|i| format!("{}:{}", i.step.code(), i.state.code()))
            .collect();
        parts.join(",")
    }

    /// The outstanding steps and their reasons in one line, as recorded
    /// with the check-in ("none" when nothing is outstanding).
    pub fn outstanding_text(&self) -> String {
        let parts: Vec<String> = self
            .outstanding()
            .map(|i| format!("{} ({})", i.step.label(), i.state.reasons().join("; ")))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join("; ")
        }
    }

    /// Whether the desk may mark the patient checked in now: identity
    /// confirmed, every demographic change reviewed, and the outstanding
    /// steps acknowledged as shown (`acknowledged` is the value of the box
    /// the desk ticked, if any). Errors name `birth_date`, `demographics`
    /// or `acknowledge`.
    pub fn complete(
        &self,
        review: &DemographicsReview,
        acknowledged: Option<&str>,
    ) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if *self.state(CheckInStep::Identity) != StepState::Done {
            errors.add("birth_date", "must match the record before checking in");
        }
        if !review.is_reviewed() {
            errors.add(
                "demographics",
                "changed since the page was shown: check the changes with the patient, then check in",
            );
        }
        let expected = self.acknowledgement();
        match acknowledged.map(str::trim) {
            _ if expected.is_empty() => {}
            Some(a) if a == expected => {}
            None | Some("") => errors.add(
                "acknowledge",
                format!(
                    "must be ticked to check in with {} outstanding",
                    count(self.outstanding().count(), "item")
                ),
            ),
            Some(_) => errors.add(
                "acknowledge",
                "no longer matches: the outstanding items changed, read them again and tick the box",
            ),
        }
        errors.into_result(())
    }
}

fn count(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

fn state_of(step: CheckInStep, facts: &CheckInFacts) -> StepState {
    match step {
        CheckInStep::Identity if facts.identity_confirmed => StepState::Done,
        CheckInStep::Identity => {
            StepState::NeedsAttention(vec!["the date of birth is not confirmed yet".into()])
        }
        CheckInStep::Demographics => {
            let p = facts.patient;
            let mut gaps = Vec::new();
            if p.phones.is_empty() {
                gaps.push("no phone number on file".to_string());
            }
            if p.home_address().is_none() {
                gaps.push("no home address on file".to_string());
            }
            if gaps.is_empty() {
                StepState::Done
            } else {
                StepState::NeedsAttention(gaps)
            }
        }
        CheckInStep::Coverage => {
            if facts.coverages.iter().any(|c| c.in_force(facts.day)) {
                StepState::NotAvailableYet(
                    "not verified: eligibility checks (X12 270/271) are not available yet".into(),
                )
            } else {
                StepState::NeedsAttention(vec![
                    "no coverage in force today: add the patient's insurance, or the visit is self-pay"
                        .into(),
                ])
            }
        }
        CheckInStep::FormsAndConsents => {
            let form = facts.intake_form.map(|form| {
                format!(
                    "the visit asks for intake form “{form}”, but intake forms are not tracked yet"
                )
            });
            match (facts.consent_signed, form) {
                (true, None) => StepState::Done,
                (true, Some(form)) => StepState::NotAvailableYet(form),
                (false, form) => StepState::NeedsAttention(
                    std::iter::once(
                        "consent to treatment not signed: the kiosk asks for it, or sign it on paper"
                            .to_string(),
                    )
                    .chain(form)
                    .collect(),
                ),
            }
        }
        CheckInStep::PaymentDue => StepState::NotAvailableYet(
            "shown when billing arrives: copays and balances are not recorded yet".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::{CoverageOrder, SubscriberRelationship};
    use crate::directory::{Address, AdministrativeGender};
    use crate::patient::{
        AddressType, AddressUse, ContactMethod, PatientAddress, Phone, PhoneKind,
    };
    use crate::scheduling::AppointmentStatus;
    use jiff::civil::date;

    fn patient() -> Patient {
        Patient {
            mrn: "00000042".into(),
            given: "Ana".into(),
            middle: None,
            family: "Reyes".into(),
            suffix: None,
            preferred_name: None,
            birth_date: date(1962, 3, 14),
            sex: AdministrativeGender::Female,
            gender_identity: None,
            pronouns: None,
            addresses: vec![PatientAddress::home(Address {
                line1: "12 Oak St".into(),
                line2: None,
                city: "Austin".into(),
                state: "TX".into(),
                postal_code: "78701".into(),
                country: "US".into(),
            })],
            phones: vec![Phone {
                number: "+15125550142".into(),
                kind: PhoneKind::Mobile,
                sms_consent: true,
            }],
            email: None,
            language: Some("es".into()),
            interpreter_needed: false,
            preferred_contact: Some(ContactMethod::Sms),
            contacts: vec![],
            alerts: vec![],
            identifiers: vec![],
            active: true,
            replaced_by: None,
        }
    }

    fn coverage(active: bool, end: Option<Date>) -> Coverage {
        Coverage {
            patient_id: "p1".into(),
            payer_ref: "payer".into(),
            plan_name: None,
            member_id: "M1".into(),
            group_number: None,
            relationship: SubscriberRelationship::Itself,
            subscriber: None,
            order: CoverageOrder::Primary,
            start: None,
            end,
            active,
        }
    }

    fn today() -> Date {
        date(2026, 3, 9)
    }

    fn arrived() -> Visit {
        let at = "2026-03-09T14:00:00Z".parse().unwrap();
        Visit::for_appointment("a1", AppointmentStatus::Arrived, at).unwrap()
    }

    fn facts<'a>(p: &'a Patient, coverages: &'a [Coverage]) -> CheckInFacts<'a> {
        CheckInFacts {
            patient: p,
            coverages,
            day: today(),
            intake_form: None,
            identity_confirmed: true,
            consent_signed: false,
        }
    }

    #[test]
    fn identity_takes_the_formats_the_search_reads_and_nothing_else() {
        let p = patient();
        for typed in [
            "03/14/1962",
            "3/14/62",
            "3-14-62",
            "1962-03-14",
            " 03.14.1962 ",
        ] {
            assert_eq!(confirm_identity(&p, typed, today()), Ok(()), "{typed}");
        }
        for (typed, says) in [
            ("", "is required"),
            ("3/15/62", "does not match the record"),
            // A four-digit year is taken as typed.
            ("3/14/2062", "does not match"),
            ("March 14", "is not a date"),
            ("14/03/1962", "is not a date"),
        ] {
            let err = confirm_identity(&p, typed, today()).unwrap_err();
            let message = err.for_field("birth_date").unwrap();
            assert!(message.contains(says), "{typed}: {message}");
            for shown in ["03/14/1962", "1962-03-14"] {
                assert!(!message.contains(shown), "the record's date is not told");
            }
        }
    }

    #[test]
    fn the_review_takes_only_demographics_and_names_what_changed() {
        let current = patient();
        let mut edited = current.clone();
        edited.phones[0].number = "+15125550199".into();
        edited.interpreter_needed = true;
        // Not a check-in field: ignored.
        edited.family = "Ortiz".into();
        edited.birth_date = date(1970, 1, 1);
        let review = DemographicsReview::new(&current, &edited, &[]);
        assert_eq!(
            review.changed(),
            [Demographic::Phones, Demographic::Language]
        );
        assert!(!review.is_reviewed(), "the page did not show them yet");
        assert_eq!(review.confirmed().family, "Reyes");
        assert_eq!(review.confirmed().birth_date, current.birth_date);
        assert_eq!(review.confirmed().phones[0].number, "+15125550199");

        let shown = Demographic::parse_list(" language,phones,bogus");
        let review = DemographicsReview::new(&current, &edited, &shown);
        assert!(review.is_reviewed());
        assert_eq!(Demographic::list_codes(review.changed()), "phones,language");
        // Nothing changed and nothing shown: reviewed as it stands.
        assert!(DemographicsReview::new(&current, &current, &[]).is_reviewed());
        // Shown as changed but since typed back: the page is stale.
        assert!(!DemographicsReview::new(&current, &current, &shown).is_reviewed());
    }

    #[test]
    fn the_checklist_lists_what_is_missing_and_what_cannot_be_checked_yet() {
        let mut p = patient();
        let list = Checklist::new(&arrived(), &facts(&p, &[])).unwrap();
        let steps: Vec<CheckInStep> = list.items.iter().map(|i| i.step).collect();
        assert_eq!(steps, CheckInStep::ALL);
        assert_eq!(*list.state(CheckInStep::Identity), StepState::Done);
        assert_eq!(*list.state(CheckInStep::Demographics), StepState::Done);
        assert!(matches!(
            list.state(CheckInStep::Coverage),
            StepState::NeedsAttention(r) if r[0].contains("no coverage in force")
        ));
        assert!(matches!(
            list.state(CheckInStep::FormsAndConsents),
            StepState::NeedsAttention(r) if r[0].contains("consent to treatment not signed")
        ));
        assert!(matches!(
            list.state(CheckInStep::PaymentDue),
            StepState::NotAvailableYet(r) if r.contains("when billing arrives")
        ));
        assert_eq!(
            list.acknowledgement(),
            "coverage:attention,forms:attention,payment:later"
        );

        // In force on the day: on file but not verified.
        let coverages = [coverage(true, None)];
        p.phones.clear();
        // A mailing address alone is not where the patient lives.
        p.addresses[0].type_ = Some(AddressType::Postal);
        p.addresses.push(PatientAddress {
            use_: AddressUse::Work,
            ..p.addresses[0].clone()
        });
        let f = CheckInFacts {
            intake_form: Some("Skin history"),
            ..facts(&p, &coverages)
        };
        let list = Checklist::new(&arrived(), &f).unwrap();
        assert!(matches!(
            list.state(CheckInStep::Coverage),
            StepState::NotAvailableYet(r) if r.starts_with("not verified")
        ));
        assert_eq!(
            list.state(CheckInStep::Demographics).reasons(),
            ["no phone number on file", "no home address on file"]
        );
        assert!(list.state(CheckInStep::FormsAndConsents).reasons()[1].contains("“Skin history”"));
        // Signed at the kiosk: only the intake form is left, and it cannot be checked yet.
        let signed = CheckInFacts {
            consent_signed: true,
            ..f
        };
        let list = Checklist::new(&arrived(), &signed).unwrap();
        assert!(matches!(
            list.state(CheckInStep::FormsAndConsents),
            StepState::NotAvailableYet(r) if r.contains("“Skin history”")
        ));
        let without_form = CheckInFacts {
            intake_form: None,
            ..signed
        };
        let list = Checklist::new(&arrived(), &without_form).unwrap();
        assert_eq!(*list.state(CheckInStep::FormsAndConsents), StepState::Done);
        let text = list.outstanding_text();
        assert!(
            text.starts_with("Demographics (no phone number on file; no home address"),
            "{text}"
        );
        assert!(text.contains("Coverage (not verified"), "{text}");
        // Ended yesterday, or inactive: not in force.
        for c in [
            coverage(true, today().yesterday().ok()),
            coverage(false, None),
        ] {
            let coverages = [c];
            let list = Checklist::new(&arrived(), &facts(&p, &coverages)).unwrap();
            assert!(matches!(
                list.state(CheckInStep::Coverage),
                StepState::NeedsAttention(_)
            ));
        }
    }

    #[test]
    fn a_visit_past_check_in_has_no_checklist() {
        let p = patient();
        let mut v = arrived();
        v.status = VisitStatus::Roomed;
        let err = Checklist::new(&v, &facts(&p, &[])).unwrap_err();
        assert!(err.reason.contains("already checked in"), "{err}");
        v.status = VisitStatus::Cancelled;
        assert!(Checklist::new(&v, &facts(&p, &[])).is_err());
        v.status = VisitStatus::Scheduled;
        assert!(
            Checklist::new(&v, &facts(&p, &[])).is_ok(),
            "walk-up check-in"
        );
    }

    #[test]
    fn completing_needs_identity_reviewed_changes_and_the_list_acknowledged() {
        let p = patient();
        let coverages = [coverage(true, None)];
        let reviewed = DemographicsReview::new(&p, &p, &[]);
        let list = Checklist::new(&arrived(), &facts(&p, &coverages)).unwrap();
        let ack = list.acknowledgement();
        assert_eq!(ack, "coverage:later,forms:attention,payment:later");
        assert_eq!(list.complete(&reviewed, Some(&ack)), Ok(()));

        let err = list.complete(&reviewed, None).unwrap_err();
        assert_eq!(
            err.for_field("acknowledge"),
            Some("must be ticked to check in with 3 items outstanding")
        );
        // A list acknowledged before the coverage ended is not this list.
        let stale = "coverage:later,forms:later,payment:later";
        let ended = Checklist::new(&arrived(), &facts(&p, &[])).unwrap();
        let err = ended.complete(&reviewed, Some(stale)).unwrap_err();
        assert!(err.for_field("acknowledge").unwrap().contains("changed"));

        let unconfirmed = CheckInFacts {
            identity_confirmed: false,
            ..facts(&p, &coverages)
        };
        let list = Checklist::new(&arrived(), &unconfirmed).unwrap();
        assert_eq!(
            list.acknowledgement(),
            ack,
            "identity is a gate, not an item"
        );
        let mut edited = p.clone();
        edited.email = Some("ana@example.com".into());
        let unreviewed = DemographicsReview::new(&p, &edited, &[]);
        let err = list.complete(&unreviewed, Some(&ack)).unwrap_err();
        assert!(err.for_field("birth_date").is_some());
        assert!(err.for_field("demographics").is_some());
        assert!(err.for_field("acknowledge").is_none());
    }

    #[test]
    fn nothing_outstanding_needs_no_acknowledgement() {
        // Every step done cannot happen until eligibility, forms and billing
        // exist; the rule still holds for a list without outstanding items.
        let list = Checklist {
            items: CheckInStep::ALL
                .into_iter()
                .map(|step| ChecklistItem {
                    step,
                    state: StepState::Done,
                })
                .collect(),
        };
        let p = patient();
        let review = DemographicsReview::new(&p, &p, &[]);
        assert_eq!(list.acknowledgement(), "");
        assert_eq!(list.outstanding_text(), "none");
        assert_eq!(list.complete(&review, None), Ok(()));
    }
}
