//! The guided check-in of a visit (`/today/visits/{id}/checkin`), reached
//! from the board's "Check in…" link: one page, the steps in order, each
//! with where it stands (`carefront_domain::visit::Checklist`).
//!
//! 1. Identity: the date of birth the patient says must match the record.
//!    Until it does (checked again on every post), the other inputs are
//!    disabled and nothing typed into them is read.
//! 2. Demographics (address, phones, email, preferred contact, language):
//!    the registration form's inputs, read and validated by
//!    `registration::PatientForm` under the organization's rules. What
//!    differs from the record is marked "Changed" once the page has been
//!    posted; the form carries the changes it marked (`reviewed`) and check-in
//!    saves only changes the desk has seen marked.
//! 3. Coverage on file, "not verified" until eligibility checks exist.
//! 4. Forms and consents and 5. the amount due say they are not available.
//!
//! What is left outstanding is listed; checking in with it needs the box
//! under the list ticked, and the list goes into the audit event of the
//! check-in (`visit_step` keeps no note). Demographic changes are saved as
//! any edit of the patient (history, `Update` audit event) in the same
//! transaction as the step to checked in, which is the board's store call.

use super::board::{capitalized, since_text};
use super::patient_summary::alerts;
use super::registration::{
    Fields, LANGUAGES, PatientForm, home_address_inputs, input_id, sentence as patient_sentence,
    spec,
};
use super::schedule::{actor, clock, time_range, today_in};
use super::visit_page::OpenVisit;
use super::{CsrfForm, error_page};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::coverage::{Coverage, Payer};
use carefront_domain::patient::Patient;
use carefront_domain::patient::{ContactMethod, PhoneKind, RegistrationRules};
use carefront_domain::visit::Signature;
use carefront_domain::visit::{
    CheckInFacts, CheckInStep, Checklist, Demographic, DemographicsReview, StepState, VisitStatus,
    VisitStep, VisitTransitionError, confirm_identity,
};
use carefront_store::{FlowActor, KioskCheckIn, StoreError};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{Markup, html};
use std::collections::HashMap;

/// Everything the page is computed from.
struct Loaded {
    open: OpenVisit,
    coverages: Vec<Coverage>,
    payers: HashMap<String, Payer>,
    rules: RegistrationRules,
    /// What the patient did at a self check-in kiosk for this visit.
    kiosk: Option<KioskCheckIn>,
}

impl std::ops::Deref for Loaded {
    type Target = OpenVisit;

    fn deref(&self) -> &OpenVisit {
        &self.open
    }
}

async fn load(state: &AppState, p: &Principal, id: &str) -> Result<Loaded, Response> {
    let open = OpenVisit::load(state, p, id).await?;
    let org_id = p.org_id.as_str();
    let rest = async {
        let coverages = state.db.coverages_of(org_id, &open.patient.id).await?;
        let payers = state.db.payers(org_id).await?;
        let rules = state.db.setting::<RegistrationRules>(org_id).await?;
        let kiosk = state.db.kiosk_check_in_of(org_id, id).await?;
        Ok::<_, StoreError>((coverages, payers, rules, kiosk))
    };
    let (coverages, payers, rules, kiosk) = rest.await.map_err(ops::internal_error)?;
    Ok(Loaded {
        open,
        coverages: coverages.into_iter().map(|c| c.value).collect(),
        payers: payers.into_iter().map(|v| (v.id, v.value)).collect(),
        rules,
        kiosk,
    })
}

/// What the desk posted; `None` on the first showing.
struct Input {
    birth_date: String,
    /// The registration form's fields as posted.
    typed: PatientForm,
    /// The demographics section was open, so its inputs were posted.
    demographics_posted: bool,
    /// The changes the page had marked.
    shown: Vec<Demographic>,
    acknowledged: Option<String>,
    complete: bool,
}

impl Input {
    fn read(pairs: &[(String, String)]) -> Self {
        let text = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Input {
            birth_date: text("birth_date").unwrap_or_default(),
            typed: PatientForm::from_pairs(pairs),
            demographics_posted: text("demographics_shown").is_some(),
            shown: Demographic::parse_list(&text("reviewed").unwrap_or_default()),
            acknowledged: text("acknowledge"),
            complete: text("action").as_deref() == Some("complete"),
        }
    }
}

/// The record's registration form with the check-in's inputs as typed;
/// everything else stays as recorded.
fn overlay(mut form: PatientForm, typed: &PatientForm) -> PatientForm {
    // The home address; the other addresses stay as recorded.
    if let (Some(home), Some(typed)) = (form.addresses.first_mut(), typed.addresses.first()) {
        home.clone_from(typed);
    }
    form.phones.clone_from(&typed.phones);
    form.email.clone_from(&typed.email);
    form.preferred_contact.clone_from(&typed.preferred_contact);
    form.language.clone_from(&typed.language);
    form.language_other.clone_from(&typed.language_other);
    form.interpreter_needed = typed.interpreter_needed;
    form.version = typed.version;
    form
}

/// The page's state computed from the record and what was posted.
struct Prepared {
    l: Loaded,
    birth_date: String,
    identity_confirmed: bool,
    form: PatientForm,
    review: DemographicsReview,
    /// The parts marked "Changed" (and posted back as `reviewed`).
    marked: Vec<Demographic>,
    checklist: Checklist,
    errors: ValidationErrors,
}

/// Reads `input` against the record: identity first; the demographics only
/// once it is confirmed. `Err` is the page to answer instead (the visit is
/// not there, or cannot be checked in).
async fn prepare(
    state: &AppState,
    p: &Principal,
    id: &str,
    input: Option<&Input>,
) -> Result<Prepared, Response> {
    let l = load(state, p, id).await?;
    let today = today_in(&l.dir.tz(l.location_id()));
    let cur = &l.patient;
    let mut errors = ValidationErrors::new();
    let identity = input.map(|i| confirm_identity(&cur.value, &i.birth_date, today));
    if let Some(Err(e)) = &identity {
        errors = e.clone();
    }
    let identity_confirmed = matches!(identity, Some(Ok(())));
    let record_form = PatientForm::from_patient(&cur.value, cur.version);
    // Inputs of a locked section are not posted: the record stands.
    let posted = input.filter(|i| identity_confirmed && i.demographics_posted);
    let (form, edited) = match posted {
        Some(i) => {
            let form = overlay(record_form, &i.typed);
            let edited = match form.to_patient(Some(&cur.value), &l.rules, today) {
                Ok(edited) => Some(edited),
                Err(e) => {
                    errors = e;
                    None
                }
            };
            if form.version.is_none() {
                errors.add("version", "is missing: open the check-in page again");
            }
            (form, edited)
        }
        None => (record_form, None),
    };
    let shown = input.map(|i| i.shown.as_slice()).unwrap_or_default();
    let review = DemographicsReview::new(&cur.value, edited.as_ref().unwrap_or(&cur.value), shown);
    // Input that does not validate cannot be compared: the marks the desk
    // has seen stay until it does.
    let marked = match (posted, &edited) {
        (Some(i), None) => i.shown.clone(),
        _ => review.changed().to_vec(),
    };
    let a = &l.appointment.value.appointment;
    let facts = CheckInFacts {
        patient: review.confirmed(),
        coverages: &l.coverages,
        day: l.day(),
        intake_form: l
            .dir
            .kind(&a.appointment_type_id)
            .and_then(|t| t.intake_form.as_deref()),
        identity_confirmed,
        consent_signed: l.kiosk.is_some(),
    };
    let checklist = match Checklist::new(&l.visit, &facts) {
        Ok(c) => c,
        Err(refused) => return Err(cannot_check_in(state, p, &l, &refused)),
    };
    Ok(Prepared {
        birth_date: input.map(|i| i.birth_date.clone()).unwrap_or_default(),
        marked,
        l,
        identity_confirmed,
        form,
        review,
        checklist,
        errors,
    })
}

/// `GET /today/visits/{id}/checkin`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match prepare(&state, &p, &id, None).await {
        Ok(prepared) => render(&state, &p, &prepared, None, StatusCode::OK),
        Err(r) => r,
    }
}

/// `POST /today/visits/{id}/checkin`: `action=review` shows the page again
/// with the identity checked and the changes marked; `action=complete`
/// saves the changes, records the outstanding items and checks the patient
/// in, then goes back to the board. A refusal writes nothing and names the
/// field.
pub async fn submit(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let mut input = Input::read(&pairs);
    let mut prepared = match prepare(&state, &p, &id, Some(&input)).await {
        Ok(prepared) => prepared,
        Err(r) => return r,
    };
    if !input.complete || !prepared.errors.is_empty() {
        let status = match prepared.errors.is_empty() {
            true => StatusCode::OK,
            false => StatusCode::UNPROCESSABLE_ENTITY,
        };
        return render(&state, &p, &prepared, Some(&input), status);
    }
    if let Err(e) = prepared
        .checklist
        .complete(&prepared.review, input.acknowledged.as_deref())
    {
        prepared.errors = e;
        return render(
            &state,
            &p,
            &prepared,
            Some(&input),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let (status, message) = match save(&state, &p, &id, &prepared).await {
        Ok(()) => {
            let done = [("done", VisitStatus::CheckedIn.code()), ("a", id.as_str())];
            return Redirect::to(&prepared.l.board(&done)).into_response();
        }
        Err(StoreError::VersionConflict { current }) => {
            // Compared again with the newer record: the desk sees what
            // differs from it now before anything is saved.
            input.typed.version = Some(current);
            prepared = match prepare(&state, &p, &id, Some(&input)).await {
                Ok(prepared) => prepared,
                Err(r) => return r,
            };
            let message = "someone else changed this patient's record meanwhile; the marks now compare with their version: check them and check in again";
            (StatusCode::CONFLICT, message.to_string())
        }
        Err(StoreError::Invalid(e)) => {
            let reasons: Vec<&str> = e.errors().iter().map(|e| e.message.as_str()).collect();
            (StatusCode::UNPROCESSABLE_ENTITY, reasons.join("; "))
        }
        Err(StoreError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(StoreError::NotFound | StoreError::Gone) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Visit not found",
                "The visit or the patient's record is no longer there. Go back to today's board.",
            );
        }
        Err(e) => return ops::internal_error(e),
    };
    prepared.errors.add("visit", message);
    render(&state, &p, &prepared, Some(&input), status)
}

/// One transaction: the patient's changes as any edit of the record, the
/// board's step to checked in, then the audit events (data rows first).
async fn save(
    state: &AppState,
    p: &Principal,
    id: &str,
    prepared: &Prepared,
) -> Result<(), StoreError> {
    let patient_id = prepared.l.patient.id.as_str();
    let changed = prepared.review.changed();
    let mut tx = state.db.begin(&p.org_id).await?;
    let mut entries = Vec::new();
    if !changed.is_empty() {
        tx.update(
            patient_id,
            prepared.review.confirmed(),
            prepared.form.version,
            &p.actor_name,
        )
        .await?;
        let labels: Vec<&str> = changed.iter().map(|d| d.label()).collect();
        entries.push(
            p.entry(Action::Update, Outcome::Success)
                .resource("Patient", Some(patient_id))
                .patient(patient_id)
                .detail(format!("changed at check-in: {}", labels.join(", "))),
        );
    }
    let step = VisitStep::new(VisitStatus::CheckedIn, None)?;
    tx.visit_step(id, &step, &FlowActor::Staff(actor(p)), Timestamp::now())
        .await?;
    entries.push(
        p.entry(Action::Update, Outcome::Success)
            .resource("Visit", Some(id))
            .patient(patient_id)
            .detail(format!(
                "guided check-in: date of birth confirmed; outstanding, acknowledged: {}",
                prepared.checklist.outstanding_text()
            )),
    );
    tx.audit_many(entries).await?;
    tx.commit().await
}

/// The check-in of a visit that is past it or over.
fn cannot_check_in(
    state: &AppState,
    p: &Principal,
    l: &Loaded,
    refused: &VisitTransitionError,
) -> Response {
    let patient = &l.patient;
    let content = html! {
        div.error #checkin-error role="alert" tabindex="-1" autofocus {
            p { (capitalized(refused.from.label())) ": this visit cannot be checked in (" (refused.reason) ")." }
        }
        p { a href=(l.board(&[])) { "Back to the board" } }
    };
    l.respond(
        state,
        p,
        StatusCode::CONFLICT,
        &format!("Check-in: {}", patient.value.display_name()),
        content,
        format!("check-in of Appointment/{} refused", l.appointment.id),
    )
}

// ---------------------------------------------------------------- errors

/// The input an error is shown at: errors about a whole list sit at its
/// first input. Empty for a field this page does not show.
fn anchor(field: &str) -> String {
    match field {
        "phones" => "phones[0].number".into(),
        "addresses" => "addresses[0].line1".into(),
        "addresses[0].use" | "addresses[0].type" | "addresses[0].country" => {
            "addresses[0].line1".into()
        }
        "birth_date" | "email" | "preferred_contact" | "language" | "language_other"
        | "acknowledge" | "demographics" => field.into(),
        f if f.starts_with("addresses[0].") || f.starts_with("phones[") => f.into(),
        _ => String::new(),
    }
}

/// An error as a sentence naming its field; refusals of the step and
/// version conflicts read on their own.
fn sentence(field: &str, message: &str) -> String {
    match field {
        "visit" => format!("{}.", capitalized(message)),
        "acknowledge" => format!("The acknowledgement {message}."),
        "demographics" => format!("Demographics {message}."),
        f => format!("{}.", patient_sentence(f, message)),
    }
}

fn error_summary(errors: &ValidationErrors, patient_id: &str) -> Markup {
    // Fields of the record this page does not show (a contact's phone
    // stored before today's rules) are corrected on the edit page.
    let elsewhere = errors
        .errors()
        .iter()
        .any(|e| anchor(&e.field).is_empty() && !matches!(e.field.as_str(), "visit" | "version"));
    html! {
        div.error #checkin-errors role="alert" tabindex="-1" autofocus {
            p { "Nothing was saved and the patient is not checked in yet. Please correct:" }
            ul {
                @for e in errors.errors() {
                    @let text = sentence(&e.field, &e.message);
                    @let to = anchor(&e.field);
                    li { @if to.is_empty() { (text) } @else { a href=(format!("#{}", input_id(&to))) { (text) } } }
                }
            }
            @if elsewhere {
                p { "Some of these are not on this page: correct them on "
                    a href=(format!("/patients/{patient_id}/edit")) { "the patient's edit page" } "." }
            }
        }
    }
}

// ---------------------------------------------------------------- page

/// A step's state in words ("Not verified" for coverage on file).
fn state_tag(step: CheckInStep, state: &StepState) -> Markup {
    html! {
        @match (step, state) {
            (CheckInStep::Identity, StepState::Done) => span.tag { "Confirmed" },
            (_, StepState::Done) => span.tag { "Nothing missing" },
            (CheckInStep::Identity, StepState::NeedsAttention(_)) => span.tag.attention { "Not confirmed" },
            (_, StepState::NeedsAttention(_)) => span.tag.attention { "Needs attention" },
            (CheckInStep::Coverage, StepState::NotAvailableYet(_)) => span.tag.off { "Not verified" },
            (_, StepState::NotAvailableYet(_)) => span.tag.off { "Not available yet" },
        }
    }
}

fn reasons(state: &StepState) -> Markup {
    let reasons = state.reasons();
    html! {
        @if !reasons.is_empty() {
            ul.reasons { @for r in reasons { li { (capitalized(r)) "." } } }
        }
    }
}

/// A section's heading: number, name and state.
fn heading(list: &Checklist, step: CheckInStep) -> Markup {
    let n = CheckInStep::ALL
        .iter()
        .position(|s| *s == step)
        .unwrap_or(0)
        + 1;
    html! { (n) ". " (step.label()) " " (state_tag(step, list.state(step))) }
}

/// One part of the demographics, marked when it differs from the record.
fn group(d: Demographic, changed: bool, body: Markup) -> Markup {
    html! {
        fieldset.group.changed[changed] id=(format!("group-{}", d.code())) {
            legend { (d.label()) @if changed { " " span.tag.attention { "Changed" } } }
            (body)
        }
    }
}

fn options<'a>(
    pairs: impl IntoIterator<Item = (&'a str, String)>,
    none: &str,
) -> Vec<(String, String)> {
    [(String::new(), none.to_string())]
        .into_iter()
        .chain(pairs.into_iter().map(|(v, l)| (v.to_string(), l)))
        .collect()
}

fn demographics(f: &Fields, form: &PatientForm, changed: &[Demographic]) -> Markup {
    let marked = |d: Demographic| changed.contains(&d);
    let kinds: Vec<(String, String)> = PhoneKind::ALL
        .iter()
        .map(|k| (k.code().to_string(), k.label().to_string()))
        .collect();
    let methods = options(
        ContactMethod::ALL.map(|m| (m.code(), m.label().to_string())),
        "No preference",
    );
    let languages = options(
        LANGUAGES
            .iter()
            .map(|(t, l)| (*t, format!("{l} ({t})")))
            .chain([("other", "Other: type the tag".to_string())]),
        "Not recorded",
    );
    html! {
        (group(Demographic::Address, marked(Demographic::Address), html! {
            @let home = form.addresses.first().cloned().unwrap_or_default();
            (home_address_inputs(f, &home, false))
            @let others = form.addresses.get(1..).unwrap_or_default();
            @if !others.is_empty() {
                p.muted #other-addresses {
                    "Also on file (changed on the patient's edit page): "
                    @for (i, a) in others.iter().enumerate() {
                        @let a = a.to_address();
                        @if i > 0 { "; " }
                        (a.label()) ": " (a.address.one_line())
                    }
                }
            }
        }))
        (group(Demographic::Phones, marked(Demographic::Phones), html! {
            @for (i, ph) in form.phones.iter().enumerate() {
                div.row {
                    (f.text(&format!("phones[{i}].number"), &format!("Phone {}", i + 1), &ph.number, spec("tel", "w-m")))
                    (f.select(&format!("phones[{i}].kind"), &format!("Phone {} kind", i + 1), &ph.kind, &kinds, false, "w-kind"))
                    (f.check(&format!("phones[{i}].sms_consent"), "Texts OK", &format!("on phone {}", i + 1), ph.sms_consent))
                }
            }
        }))
        (group(Demographic::Email, marked(Demographic::Email), html! {
            div.row { (f.text("email", "Email address", &form.email, spec("email", "w-l"))) }
        }))
        (group(Demographic::PreferredContact, marked(Demographic::PreferredContact), html! {
            div.row { (f.select("preferred_contact", "Contact the patient by", &form.preferred_contact, &methods, false, "w-m")) }
        }))
        (group(Demographic::Language, marked(Demographic::Language), html! {
            div.row {
                (f.select("language", "Preferred language", &form.language, &languages, false, "w-m"))
                (f.text("language_other", "Other language tag", &form.language_other, spec("text", "w-s")))
                (f.check("interpreter_needed", "Interpreter needed", "", form.interpreter_needed))
            }
        }))
    }
}

fn coverage_section(l: &Loaded, list: &Checklist) -> Markup {
    let day = l.day();
    let in_force: Vec<&Coverage> = l.coverages.iter().filter(|c| c.in_force(day)).collect();
    let others = l.coverages.len() - in_force.len();
    let step = CheckInStep::Coverage;
    html! {
        section.card #step-coverage aria-labelledby="step-coverage-title" {
            h2 #step-coverage-title { (heading(list, step)) }
            @if !in_force.is_empty() {
                table.dense {
                    caption.visually-hidden { "Coverage in force on the visit's day" }
                    thead { tr {
                        th scope="col" { "Order" } th scope="col" { "Payer" } th scope="col" { "Plan" }
                        th scope="col" { "Member ID" } th scope="col" { "Group" } th scope="col" { "Eligibility" }
                    } }
                    tbody {
                        @for c in &in_force {
                            tr {
                                th scope="row" { (c.order.label()) }
                                td { (l.payers.get(&c.payer_ref).map_or("Unknown payer", |p| p.name.as_str())) }
                                td { (c.plan_name.as_deref().unwrap_or("—")) }
                                td { (c.member_id) }
                                td { (c.group_number.as_deref().unwrap_or("—")) }
                                td { "Not verified" }
                            }
                        }
                    }
                }
            }
            @if others > 0 {
                p.muted { (others) " more on file, not in force on this day." }
            }
            (reasons(list.state(step)))
            p {
                a href=(format!("/patients/{}/coverages/new", l.patient.id)) { "Add coverage" }
                " · "
                a href=(format!("/patients/{}#coverage", l.patient.id)) { "All coverage on file" }
            }
        }
    }
}

fn pending_section(list: &Checklist, step: CheckInStep) -> Markup {
    let id = format!("step-{}", step.code());
    let title = format!("{id}-title");
    html! {
        section.card.pending id=(id) aria-labelledby=(title) {
            h2 id=(title) { (heading(list, step)) }
            (reasons(list.state(step)))
        }
    }
}

/// What the patient did at the kiosk, for the desk to go over with them.
fn kiosk_notice(k: &KioskCheckIn, patient: &Patient, tz: &TimeZone) -> Markup {
    let changes = k.contact.describe(patient);
    let how = match k.signature {
        Signature::Drawn(_) => "signed on the screen",
        Signature::Typed(_) => "signed by typing their name",
    };
    html! {
        div.notice #kiosk-checkin {
            p { "Arrived at the kiosk " (Timestamp::from_microsecond(k.at_us).map(|t| clock(t.to_zoned(tz.clone()).datetime())).unwrap_or_default()) ": consent to treatment " (how) "." }
            @if !changes.is_empty() {
                p { "At the kiosk the patient asked to change their " (changes.join("; ")) ". Confirm with the patient and enter it under Demographics." }
            }
        }
    }
}

fn render(
    state: &AppState,
    p: &Principal,
    v: &Prepared,
    input: Option<&Input>,
    status: StatusCode,
) -> Response {
    let l = &v.l;
    let a = &l.appointment.value.appointment;
    let patient = &l.patient;
    let tz = l.dir.tz(&a.location_id);
    let list = &v.checklist;
    let changed = v.marked.as_slice();
    let confirmed = v.identity_confirmed;
    let f = Fields {
        errors: &v.errors,
        sentence,
    };
    let (dob_invalid, dob_error_id, dob_error) = f.error_block("birth_date");
    let dob_described = [dob_error_id, Some("f-birth_date-hint".to_string())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let outstanding: Vec<_> = list.outstanding().collect();
    let key = list.acknowledgement();
    let ticked = input.and_then(|i| i.acknowledged.as_deref()) == Some(key.as_str());
    let (ack_invalid, ack_error_id, ack_error) = f.error_block("acknowledge");
    let (_, demo_error_id, demo_error) = f.error_block("demographics");
    let title = format!("Check-in: {}", patient.value.display_name());
    let content = html! {
        p.patient-line {
            span { "MRN " strong { (patient.value.mrn) } }
            span { (time_range(&tz, a.start, a.end)) " · " (l.dir.type_name(&a.appointment_type_id)) " with " (l.dir.provider_name(&a.practitioner_id)) }
            span { (l.dir.location_name(&a.location_id)) }
            span { (capitalized(l.visit.status.label())) " " (since_text(&tz, l.visit.since, Timestamp::now())) }
        }
        (alerts(&patient.value))
        @if let Some(k) = &l.kiosk {
            (kiosk_notice(k, &patient.value, &tz))
        }
        @if !v.errors.is_empty() {
            (error_summary(&v.errors, &patient.id))
        } @else if input.is_some() {
            p.notice.done #checkin-notice role="status" tabindex="-1" autofocus {
                "Date of birth confirmed. "
                @if changed.is_empty() { "No changes to the demographics." }
                @else {
                    "Changed: " (changed.iter().map(|d| d.label()).collect::<Vec<_>>().join(", "))
                    ". Check the marked parts with the patient; they are saved when you check in."
                }
            }
        }
        form #checkin-form .patient-form.checkin method="post" action=(format!("/today/visits/{}/checkin", l.appointment.id)) novalidate {
            input type="hidden" name="csrf" value=(p.csrf());
            @if let Some(version) = v.form.version { input type="hidden" name="version" value=(version); }
            input type="hidden" name="reviewed" value=(Demographic::list_codes(changed));
            fieldset.wide #step-identity {
                legend { (heading(list, CheckInStep::Identity)) }
                p { "Ask the patient to say their date of birth, and type it as they say it." }
                div.row {
                    div.field.w-s.invalid[dob_invalid.is_some()] {
                        label for="f-birth_date" { "Date of birth" " " span.req { "required" } }
                        input #f-birth_date name="birth_date" type="text" inputmode="numeric" autocomplete="off"
                            value=(v.birth_date) required aria-invalid=[dob_invalid] aria-describedby=(dob_described)
                            autofocus[input.is_none()];
                        span.hint #f-birth_date-hint { "MM/DD/YYYY; 3/14/62 and 1962-03-14 work too." }
                        (dob_error)
                    }
                    button type="submit" name="action" value="review" { "Confirm date of birth" }
                }
            }
            fieldset.wide #step-demographics disabled[!confirmed] aria-describedby=[demo_error_id] {
                legend #f-demographics {
                    (heading(list, CheckInStep::Demographics))
                    @if !changed.is_empty() { " " span.tag.attention { (changed.len()) " changed" } }
                }
                // Posted only while the section is open (a disabled
                // fieldset posts none of its inputs).
                input type="hidden" name="demographics_shown" value="1";
                @if !confirmed {
                    p.notice { "Confirm the date of birth first: the rest of check-in opens when it matches the record." }
                }
                p.hint { "Check each part with the patient and correct it here. Parts that differ from the record are marked “Changed” when the page comes back; they are saved when you check in." }
                (demo_error)
                (reasons(list.state(CheckInStep::Demographics)))
                (demographics(&f, &v.form, changed))
            }
            (coverage_section(l, list))
            (pending_section(list, CheckInStep::FormsAndConsents))
            (pending_section(list, CheckInStep::PaymentDue))
            section.wide #outstanding aria-labelledby="outstanding-title" {
                h2 #outstanding-title { "Before checking in" }
                @if outstanding.is_empty() {
                    p { "Nothing is outstanding." }
                } @else {
                    p { "Checking in now leaves these outstanding; they are recorded with the check-in:" }
                    ul {
                        @for i in &outstanding {
                            li { strong { (i.step.label()) } " — " (i.state.reasons().join("; ")) "." }
                        }
                    }
                    div.tick.invalid[ack_invalid.is_some()] {
                        input #f-acknowledge type="checkbox" name="acknowledge" value=(key) checked[ticked]
                            disabled[!confirmed] aria-invalid=[ack_invalid] aria-describedby=[ack_error_id];
                        label for="f-acknowledge" { "Check in with " (outstanding.len()) " item" @if outstanding.len() != 1 { "s" } " outstanding" }
                    }
                    (ack_error)
                }
            }
            div.form-actions.wide {
                button type="submit" name="action" value="complete" disabled[!confirmed] { "Check in" }
                button.secondary type="submit" name="action" value="review" disabled[!confirmed] { "Review changes" }
                a href=(l.board(&[])) { "Back to the board" }
            }
        }
    };
    let detail = match (input, confirmed) {
        (Some(_), false) => "check-in: the date of birth was not confirmed",
        _ => "check-in",
    };
    l.respond(
        state,
        p,
        status,
        &title,
        content,
        format!("{detail} (Appointment/{})", l.appointment.id),
    )
}
