//! Insurance in the staff application: the coverage section of the patient
//! summary, the add and edit forms, card images (upload and view) and the
//! payer directory of the admin page.
//!
//! Card images are served only to roles that may use
//! [`Area::CoverageCards`] (front desk, lead, billing), with every view
//! audited under the patient; the coverage details themselves are part of
//! the patient record ([`Area::Patients`]).

use super::{csrf_field, error_page, same_origin, shell};
use crate::audit::{AuditNote, note};
use crate::auth::{Principal, secrets_match};
use crate::ui::CsrfForm;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::coverage::{
    CardSide, Coverage, CoverageOrder, MAX_CARD_IMAGE_BYTES, Payer, Subscriber,
    SubscriberRelationship, card_image_type,
};
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{CardImage, StoreError, new_id};
use jiff::civil::Date;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The body limit of the card upload route: one image at its largest plus
/// the form's other fields and multipart framing. Every other route keeps
/// [`crate::MAX_BODY_BYTES`].
pub const UPLOAD_BODY_BYTES: usize = MAX_CARD_IMAGE_BYTES + 64 * 1024;

/// A date the way US clinics write it.
fn us_date(d: Date) -> String {
    d.strftime("%m/%d/%Y").to_string()
}

fn today() -> Date {
    crate::ui::patients::today()
}

fn relationship_label(r: SubscriberRelationship) -> &'static str {
    match r {
        SubscriberRelationship::Itself => "Self",
        SubscriberRelationship::Spouse => "Spouse",
        SubscriberRelationship::Child => "Child",
        SubscriberRelationship::Parent => "Parent",
        SubscriberRelationship::Common => "Common-law spouse",
        SubscriberRelationship::Other => "Other",
        SubscriberRelationship::Injured => "Injured party",
    }
}

/// Whether the coverage pays today, in words.
fn standing(c: &Coverage, day: Date) -> (bool, String) {
    if !c.active {
        return (false, "Inactive".into());
    }
    match (c.start, c.end) {
        (Some(s), _) if day < s => (false, format!("Not in force: starts {}", us_date(s))),
        (_, Some(e)) if e < day => (false, format!("Not in force: ended {}", us_date(e))),
        _ => (true, "In force".into()),
    }
}

fn period(c: &Coverage) -> String {
    match (c.start, c.end) {
        (None, None) => "Not given".into(),
        (Some(s), None) => format!("From {}", us_date(s)),
        (None, Some(e)) => format!("Until {}", us_date(e)),
        (Some(s), Some(e)) => format!("{} – {}", us_date(s), us_date(e)),
    }
}

fn subscriber_text(c: &Coverage) -> String {
    match &c.subscriber {
        None => "Patient (self)".into(),
        Some(s) => {
            let born = s
                .birth_date
                .map(|d| format!(", born {}", us_date(d)))
                .unwrap_or_default();
            format!(
                "{} {} ({}{born})",
                s.given,
                s.family,
                relationship_label(c.relationship).to_lowercase()
            )
        }
    }
}

fn card_links(p: &Principal, cards: &[CardImage]) -> Markup {
    html! {
        @if cards.is_empty() {
            span.muted { "None" }
        } @else if p.role.may(Area::CoverageCards) {
            @for (i, card) in cards.iter().enumerate() {
                @if i > 0 { " · " }
                a href=(format!("/coverage-cards/{}", card.id)) { (card.side.label()) }
            }
        } @else {
            span.muted { "On file" }
        }
    }
}

/// The coverage section of the patient summary: every coverage with payer,
/// plan, member ID, group, subscriber, order, dates and whether it is in
/// force today, links to the card images for roles that may see them, and
/// the add and edit links. The caller's read of the patient covers the
/// audit of what is shown here (card images are audited when opened).
pub async fn coverage_section(
    state: &AppState,
    p: &Principal,
    patient_id: &str,
) -> Result<Markup, StoreError> {
    let coverages = state.db.coverages_of(&p.org_id, patient_id).await?;
    let payers: HashMap<String, Payer> = state
        .db
        .payers(&p.org_id)
        .await?
        .into_iter()
        .map(|v| (v.id, v.value))
        .collect();
    let mut cards = Vec::with_capacity(coverages.len());
    for c in &coverages {
        cards.push(state.db.coverage_cards(&p.org_id, &c.id).await?);
    }
    let day = today();
    Ok(html! {
        section.card #coverage aria-labelledby="s-coverage" {
            h2 #s-coverage { "Coverage" }
            @if coverages.is_empty() {
                p.muted { "No insurance on file." }
            } @else {
                table.dense.coverage {
                    caption.visually-hidden { "Insurance coverages" }
                    thead {
                        tr {
                            th scope="col" { "Order" }
                            th scope="col" { "Payer" }
                            th scope="col" { "Plan" }
                            th scope="col" { "Member ID" }
                            th scope="col" { "Group" }
                            th scope="col" { "Subscriber" }
                            th scope="col" { "Effective" }
                            th scope="col" { "Today" }
                            th scope="col" { "Card" }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody {
                        @for (c, cards) in coverages.iter().zip(&cards) {
                            @let v = &c.value;
                            @let (in_force, status) = standing(v, day);
                            tr {
                                th scope="row" { (v.order.label()) }
                                td {
                                    @match payers.get(&v.payer_ref) {
                                        Some(payer) => { (payer.name) " " span.muted { "(" (payer.payer_id) ")" } }
                                        None => span.muted { "Unknown payer" },
                                    }
                                }
                                td { (v.plan_name.as_deref().unwrap_or("—")) }
                                td { (v.member_id) }
                                td { (v.group_number.as_deref().unwrap_or("—")) }
                                td { (subscriber_text(v)) }
                                td { (period(v)) }
                                td {
                                    @if in_force { span.tag.on { (status) } }
                                    @else { span.tag.off { (status) } }
                                }
                                td { (card_links(p, cards)) }
                                td {
                                    a href=(format!("/coverages/{}/edit", c.id)) {
                                        "Edit" span.visually-hidden { " " (v.order.label().to_lowercase()) " coverage" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p { a.button href=(format!("/patients/{patient_id}/coverages/new")) { "Add coverage" } }
        }
    })
}

/// The add and edit form, as submitted.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CoverageForm {
    #[serde(default)]
    payer: String,
    #[serde(default)]
    plan_name: String,
    #[serde(default)]
    member_id: String,
    #[serde(default)]
    group_number: String,
    #[serde(default)]
    relationship: String,
    #[serde(default)]
    subscriber_given: String,
    #[serde(default)]
    subscriber_family: String,
    #[serde(default)]
    subscriber_birth_date: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    active: Option<String>,
    /// The version the form was loaded at (edit only).
    #[serde(default)]
    version: String,
}

impl CoverageForm {
    fn blank() -> Self {
        CoverageForm {
            relationship: "self".into(),
            order: "1".into(),
            active: Some("on".into()),
            ..Default::default()
        }
    }

    fn of(c: &Versioned<Coverage>) -> Self {
        let v = &c.value;
        let s = v.subscriber.as_ref();
        CoverageForm {
            payer: v.payer_ref.clone(),
            plan_name: v.plan_name.clone().unwrap_or_default(),
            member_id: v.member_id.clone(),
            group_number: v.group_number.clone().unwrap_or_default(),
            relationship: v.relationship.code().into(),
            subscriber_given: s.map(|s| s.given.clone()).unwrap_or_default(),
            subscriber_family: s.map(|s| s.family.clone()).unwrap_or_default(),
            subscriber_birth_date: s
                .and_then(|s| s.birth_date)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            order: v.order.rank().to_string(),
            start: v.start.map(|d| d.to_string()).unwrap_or_default(),
            end: v.end.map(|d| d.to_string()).unwrap_or_default(),
            active: v.active.then(|| "on".into()),
            version: c.version.to_string(),
        }
    }
}

/// A date typed as 2026-01-31 (what date inputs send) or 01/31/2026.
fn form_date(errors: &mut ValidationErrors, field: &str, text: &str) -> Option<Date> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let parsed = if text.contains('/') {
        Date::strptime("%m/%d/%Y", text).ok()
    } else {
        text.parse::<Date>().ok().filter(|_| text.len() == 10)
    };
    if parsed.is_none() {
        errors.add(field, "must be a date such as 01/31/2026");
    }
    parsed
}

/// Reads the form into a validated coverage of `patient_id`; every problem
/// names its field. `payers` is the directory the payer must be chosen from.
pub fn parse_form(
    form: &CoverageForm,
    patient_id: &str,
    payers: &[Versioned<Payer>],
) -> Result<Coverage, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if !payers.iter().any(|p| p.id == form.payer) {
        errors.add("payer", "choose a payer from the directory");
    }
    let relationship = SubscriberRelationship::from_code(&form.relationship).unwrap_or_else(|| {
        errors.add(
            "relationship",
            "choose the patient's relationship to the subscriber",
        );
        SubscriberRelationship::Itself
    });
    let order = form
        .order
        .parse::<u8>()
        .ok()
        .and_then(CoverageOrder::from_rank)
        .unwrap_or_else(|| {
            errors.add("order", "choose primary, secondary or tertiary");
            CoverageOrder::Primary
        });
    let birth_date = form_date(
        &mut errors,
        "subscriber.birth_date",
        &form.subscriber_birth_date,
    );
    let named = [&form.subscriber_given, &form.subscriber_family]
        .iter()
        .any(|s| !s.trim().is_empty());
    let subscriber = (relationship != SubscriberRelationship::Itself
        && (named || birth_date.is_some()))
    .then(|| Subscriber {
        given: form.subscriber_given.clone(),
        family: form.subscriber_family.clone(),
        birth_date,
    });
    let start = form_date(&mut errors, "start", &form.start);
    let end = form_date(&mut errors, "end", &form.end);
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
    let coverage = Coverage {
        patient_id: patient_id.to_string(),
        payer_ref: form.payer.clone(),
        plan_name: text(&form.plan_name),
        member_id: form.member_id.clone(),
        group_number: text(&form.group_number),
        relationship,
        subscriber,
        order,
        start,
        end,
        active: form.active.is_some(),
    };
    match coverage.validate() {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(errors),
        Err(domain) => {
            for e in domain.errors() {
                if errors.for_field(&e.field).is_none() {
                    errors.add(e.field.clone(), e.message.clone());
                }
            }
            Err(errors)
        }
    }
}

/// The id of the input a validation field belongs to.
fn input_id(field: &str) -> String {
    match field {
        "subscriber" => "cov-subscriber_given".into(),
        "patient" => "cov-payer".into(),
        other => format!("cov-{}", other.replace('.', "_")),
    }
}

fn label(field: &str) -> &str {
    match field {
        "payer" => "Payer",
        "plan_name" => "Plan",
        "member_id" => "Member ID",
        "group_number" => "Group number",
        "relationship" => "Patient's relationship to subscriber",
        "subscriber" => "Subscriber",
        "subscriber.given" => "Subscriber's given name",
        "subscriber.family" => "Subscriber's family name",
        "subscriber.birth_date" => "Subscriber's date of birth",
        "order" => "Order",
        "start" => "Effective from",
        "end" => "Effective until",
        "active" => "Active",
        "side" => "Side",
        "file" => "Image",
        "form" => "This form",
        other => other,
    }
}

/// The hint shown under a field's label, if it has one.
fn hint(field: &str) -> Option<&'static str> {
    match field {
        "member_id" => Some("As printed on the card: letters, digits and dashes."),
        "end" => Some("Leave empty while the plan continues."),
        "file" => Some("A photo or scan: JPEG, PNG or WebP, up to 5 MiB."),
        _ => None,
    }
}

/// One labelled input with its hint and inline error.
fn field(errors: &ValidationErrors, name: &str, input: Markup) -> Markup {
    let error = errors.for_field(name).or(match name {
        "subscriber.given" => errors.for_field("subscriber"),
        _ => None,
    });
    let id = input_id(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label(name)) }
            @if let Some(h) = hint(name) { p.muted id=(format!("{id}-hint")) { (h) } }
            (input)
            @if let Some(e) = error {
                p.field-error id=(format!("{id}-error")) { (label(name)) " " (e) "." }
            }
        }
    }
}

/// `aria-invalid` and `aria-describedby` (hint and error) for an input.
fn aria(errors: &ValidationErrors, name: &str) -> (Option<&'static str>, Option<String>) {
    let error = errors.for_field(name).is_some()
        || (name == "subscriber.given" && errors.for_field("subscriber").is_some());
    let id = input_id(name);
    let described: Vec<String> = [
        hint(name).map(|_| format!("{id}-hint")),
        error.then(|| format!("{id}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (
        error.then_some("true"),
        (!described.is_empty()).then(|| described.join(" ")),
    )
}

fn error_summary(errors: &ValidationErrors, what: &str) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error #form-errors role="alert" tabindex="-1" autofocus {
                p { (what) " Please correct:" }
                ul {
                    @for e in errors.errors() {
                        li { a href=(format!("#{}", input_id(&e.field))) { (label(&e.field)) " " (e.message) } }
                    }
                }
            }
        }
    }
}

fn text_input(errors: &ValidationErrors, name: &str, value: &str, id_like: bool) -> Markup {
    let (invalid, described) = aria(errors, name);
    let input_name = name.replace("subscriber.", "subscriber_");
    html! {
        input id=(input_id(name)) name=(input_name) type="text" value=(value) autocomplete="off"
            spellcheck=[id_like.then_some("false")]
            aria-invalid=[invalid] aria-describedby=[described];
    }
}

fn date_input(errors: &ValidationErrors, name: &str, value: &str) -> Markup {
    let (invalid, described) = aria(errors, name);
    let input_name = name.replace("subscriber.", "subscriber_");
    html! {
        input id=(input_id(name)) name=(input_name) type="date" value=(value)
            aria-invalid=[invalid] aria-describedby=[described];
    }
}

fn coverage_fields(
    form: &CoverageForm,
    errors: &ValidationErrors,
    payers: &[Versioned<Payer>],
) -> Markup {
    let (payer_invalid, payer_described) = aria(errors, "payer");
    let (rel_invalid, rel_described) = aria(errors, "relationship");
    let (order_invalid, order_described) = aria(errors, "order");
    html! {
        (field(errors, "payer", html! {
            select #cov-payer name="payer" required aria-invalid=[payer_invalid] aria-describedby=[payer_described] {
                option value="" { "Choose…" }
                @for p in payers {
                    @if p.value.active || p.id == form.payer {
                        option value=(p.id) selected[p.id == form.payer] {
                            (p.value.name) " (" (p.value.payer_id) ")"
                            @if !p.value.active { " — inactive" }
                        }
                    }
                }
            }
        }))
        (field(errors, "plan_name", text_input(errors, "plan_name", &form.plan_name, false)))
        (field(errors, "member_id",
            text_input(errors, "member_id", &form.member_id, true)))
        (field(errors, "group_number", text_input(errors, "group_number", &form.group_number, true)))
        (field(errors, "order", html! {
            select #cov-order name="order" aria-invalid=[order_invalid] aria-describedby=[order_described] {
                @for o in CoverageOrder::ALL {
                    option value=(o.rank()) selected[form.order == o.rank().to_string()] { (o.label()) }
                }
            }
        }))
        fieldset {
            legend { "Subscriber (policy holder)" }
            (field(errors, "relationship", html! {
                select #cov-relationship name="relationship" aria-invalid=[rel_invalid] aria-describedby=[rel_described] {
                    @for r in SubscriberRelationship::ALL {
                        option value=(r.code()) selected[form.relationship == r.code()] {
                            (relationship_label(r))
                            @if r == SubscriberRelationship::Itself { " — the patient holds the policy" }
                        }
                    }
                }
            }))
            p.muted { "When the patient is not the subscriber, name the subscriber as on the card." }
            (field(errors, "subscriber.given", text_input(errors, "subscriber.given", &form.subscriber_given, false)))
            (field(errors, "subscriber.family", text_input(errors, "subscriber.family", &form.subscriber_family, false)))
            (field(errors, "subscriber.birth_date", date_input(errors, "subscriber.birth_date", &form.subscriber_birth_date)))
        }
        (field(errors, "start", date_input(errors, "start", &form.start)))
        (field(errors, "end", date_input(errors, "end", &form.end)))
        div.field {
            label {
                input type="checkbox" name="active" checked[form.active.is_some()];
                " Active (uncheck when the plan is cancelled or replaced)"
            }
        }
    }
}

/// Whose coverage the form is, with the patient's alerts (shown on every
/// patient screen, as on the summary).
fn patient_heading(patient: &Versioned<Patient>) -> Markup {
    let v = &patient.value;
    html! {
        p {
            "Patient: "
            a href=(format!("/patients/{}", patient.id)) { (v.given) " " (v.family) }
            " · MRN " (v.mrn) " · born " (us_date(v.birth_date))
        }
        (super::patient_summary::alerts(v))
    }
}

async fn load_coverage(
    state: &AppState,
    org_id: &str,
    id: &str,
) -> Result<Versioned<Coverage>, Response> {
    match state.db.get::<Coverage>(org_id, id).await {
        Ok(c) => Ok(c),
        Err(StoreError::NotFound | StoreError::Gone) => Err(error_page(
            StatusCode::NOT_FOUND,
            "Coverage not found",
            "There is no coverage with this address. Open the patient's summary instead.",
        )),
        Err(e) => Err(ops::internal_error(e)),
    }
}

/// The other active coverage holding the order `c` asks for, as an error on
/// the order field.
async fn order_taken(
    state: &AppState,
    org_id: &str,
    c: &Coverage,
    own_id: Option<&str>,
    payers: &[Versioned<Payer>],
) -> Result<Option<ValidationErrors>, StoreError> {
    if !c.active {
        return Ok(None);
    }
    let Some(other) = state.db.coverage_at(org_id, &c.patient_id, c.order).await? else {
        return Ok(None);
    };
    if Some(other.id.as_str()) == own_id {
        return Ok(None);
    }
    let payer = payers
        .iter()
        .find(|p| p.id == other.value.payer_ref)
        .map_or("another payer", |p| p.value.name.as_str());
    Ok(Some(ValidationErrors::single(
        "order",
        format!(
            "is taken: the {} coverage with {payer} (member {}) is active; make it inactive first \
             or choose another order",
            c.order.label().to_lowercase(),
            other.value.member_id
        ),
    )))
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    title: &str,
    action: &str,
    patient: &Versioned<Patient>,
    form: &CoverageForm,
    errors: &ValidationErrors,
    payers: &[Versioned<Payer>],
    cards: Option<(&str, &[CardImage], &ValidationErrors)>,
) -> Response {
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Patients,
        title,
        html! {
            (patient_heading(patient))
            (error_summary(errors, "The coverage was not saved."))
            form.stack method="post" action=(action) novalidate {
                (csrf_field(p))
                @if !form.version.is_empty() { input type="hidden" name="version" value=(form.version); }
                (coverage_fields(form, errors, payers))
                button type="submit" { "Save coverage" }
                " "
                a href=(format!("/patients/{}#coverage", patient.id)) { "Cancel" }
            }
            @if let Some((coverage_id, cards, card_errors)) = cards {
                (cards_section(p, coverage_id, cards, card_errors))
            }
        },
    );
    (status, page).into_response()
}

fn cards_section(
    p: &Principal,
    coverage_id: &str,
    cards: &[CardImage],
    errors: &ValidationErrors,
) -> Markup {
    let (side_invalid, side_described) = aria(errors, "side");
    let (file_invalid, file_described) = aria(errors, "file");
    html! {
        section #cards aria-labelledby="s-cards" {
            h2 #s-cards { "Insurance card" }
            @if !p.role.may(Area::CoverageCards) {
                p.muted {
                    @if cards.is_empty() { "No card images on file." }
                    @else { "Card images are on file; they are not shown to your role." }
                }
            } @else {
                @if cards.is_empty() {
                    p.muted { "No card images on file yet." }
                }
                div.cards {
                    @for card in cards {
                        figure {
                            img src=(format!("/coverage-cards/{}", card.id))
                                alt=(format!("{} of the insurance card", card.side.label()));
                            figcaption {
                                (card.side.label()) " · uploaded by " (card.uploaded_by) " · "
                                a href=(format!("/coverage-cards/{}", card.id)) { "Open full size" }
                            }
                        }
                    }
                }
                (error_summary(errors, "The image was not uploaded."))
                form.stack method="post" action=(format!("/coverages/{coverage_id}/cards"))
                    enctype="multipart/form-data" novalidate {
                    (csrf_field(p))
                    (field(errors, "side", html! {
                        select #cov-side name="side" aria-invalid=[side_invalid] aria-describedby=[side_described] {
                            @for s in CardSide::ALL { option value=(s.code()) { (s.label()) } }
                        }
                    }))
                    (field(errors, "file", html! {
                        input #cov-file name="file" type="file" accept="image/jpeg,image/png,image/webp"
                            aria-invalid=[file_invalid] aria-describedby=[file_described];
                    }))
                    button type="submit" { "Upload image" }
                }
            }
        }
    }
}

/// GET /patients/{id}/coverages/new
pub async fn new_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(patient_id): Path<String>,
) -> Response {
    let patient = match super::patient_summary::load(&state, &p.org_id, &patient_id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let payers = match state.db.payers(&p.org_id).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let mut form = CoverageForm::blank();
    // The next free order is the likely one.
    if let Ok(existing) = state.db.coverages_of(&p.org_id, &patient_id).await
        && let Some(free) = CoverageOrder::ALL.into_iter().find(|o| {
            !existing
                .iter()
                .any(|c| c.value.active && c.value.order == *o)
        })
    {
        form.order = free.rank().to_string();
    }
    let mut response = form_page(
        &state,
        &p,
        StatusCode::OK,
        "Add coverage",
        &format!("/patients/{patient_id}/coverages/new"),
        &patient,
        &form,
        &ValidationErrors::new(),
        &payers,
        None,
    );
    note(
        &mut response,
        AuditNote::new(Action::Read, "Patient", Some(&patient_id))
            .patient(&patient_id)
            .detail("add coverage form"),
    );
    response
}

/// POST /patients/{id}/coverages/new
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(patient_id): Path<String>,
    CsrfForm(form): CsrfForm<CoverageForm>,
) -> Response {
    let patient = match super::patient_summary::load(&state, &p.org_id, &patient_id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let payers = match state.db.payers(&p.org_id).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let action = format!("/patients/{patient_id}/coverages/new");
    let again = |status, errors: &ValidationErrors| {
        form_page(
            &state,
            &p,
            status,
            "Add coverage",
            &action,
            &patient,
            &form,
            errors,
            &payers,
            None,
        )
    };
    let coverage = match parse_form(&form, &patient_id, &payers) {
        Ok(c) => c,
        Err(errors) => return again(StatusCode::UNPROCESSABLE_ENTITY, &errors),
    };
    match order_taken(&state, &p.org_id, &coverage, None, &payers).await {
        Ok(None) => {}
        Ok(Some(errors)) => return again(StatusCode::CONFLICT, &errors),
        Err(e) => return ops::internal_error(e),
    }
    let id = new_id();
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.create(&id, &coverage, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Create, Outcome::Success)
                .resource("Coverage", Some(&id))
                .patient(&patient_id)
                .detail(format!(
                    "added {} coverage",
                    coverage.order.label().to_lowercase()
                )),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/patients/{patient_id}#coverage")).into_response(),
        // Another desk saved the same order in the meantime.
        Err(StoreError::Conflict(_)) => {
            let errors = match order_taken(&state, &p.org_id, &coverage, None, &payers).await {
                Ok(Some(e)) => e,
                _ => ValidationErrors::single(
                    "form",
                    "conflicts with a coverage saved meanwhile; review and save again",
                ),
            };
            again(StatusCode::CONFLICT, &errors)
        }
        Err(e) => ops::internal_error(e),
    }
}

async fn edit_page_with(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    coverage: &Versioned<Coverage>,
    form: &CoverageForm,
    errors: &ValidationErrors,
    card_errors: &ValidationErrors,
) -> Response {
    let loaded = async {
        Ok::<_, StoreError>((
            state
                .db
                .get::<Patient>(&p.org_id, &coverage.value.patient_id)
                .await?,
            state.db.payers(&p.org_id).await?,
            state.db.coverage_cards(&p.org_id, &coverage.id).await?,
        ))
    }
    .await;
    let (patient, payers, cards) = match loaded {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let title = format!(
        "Edit {} coverage",
        coverage.value.order.label().to_lowercase()
    );
    let mut response = form_page(
        state,
        p,
        status,
        &title,
        &format!("/coverages/{}/edit", coverage.id),
        &patient,
        form,
        errors,
        &payers,
        Some((&coverage.id, &cards, card_errors)),
    );
    note(
        &mut response,
        AuditNote::new(Action::Read, "Coverage", Some(&coverage.id))
            .patient(&coverage.value.patient_id)
            .detail("coverage edit form"),
    );
    response
}

/// GET /coverages/{id}/edit
pub async fn edit_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let coverage = match load_coverage(&state, &p.org_id, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let none = ValidationErrors::new();
    edit_page_with(
        &state,
        &p,
        StatusCode::OK,
        &coverage,
        &CoverageForm::of(&coverage),
        &none,
        &none,
    )
    .await
}

/// POST /coverages/{id}/edit
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CoverageForm>,
) -> Response {
    let current = match load_coverage(&state, &p.org_id, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let none = ValidationErrors::new();
    let payers = match state.db.payers(&p.org_id).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let patient_id = current.value.patient_id.clone();
    let coverage = match parse_form(&form, &patient_id, &payers) {
        Ok(c) => c,
        Err(errors) => {
            return edit_page_with(
                &state,
                &p,
                StatusCode::UNPROCESSABLE_ENTITY,
                &current,
                &form,
                &errors,
                &none,
            )
            .await;
        }
    };
    match order_taken(&state, &p.org_id, &coverage, Some(&id), &payers).await {
        Ok(None) => {}
        Ok(Some(errors)) => {
            return edit_page_with(
                &state,
                &p,
                StatusCode::CONFLICT,
                &current,
                &form,
                &errors,
                &none,
            )
            .await;
        }
        Err(e) => return ops::internal_error(e),
    }
    let if_version = form.version.parse::<i64>().ok();
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.update(&id, &coverage, if_version, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Update, Outcome::Success)
                .resource("Coverage", Some(&id))
                .patient(&patient_id)
                .detail(format!(
                    "changed {} coverage",
                    coverage.order.label().to_lowercase()
                )),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/patients/{patient_id}#coverage")).into_response(),
        Err(StoreError::VersionConflict { .. }) => {
            let errors = ValidationErrors::single(
                "form",
                "was changed by someone else meanwhile: the form now shows their version; \
                 make your change again",
            );
            let fresh = match load_coverage(&state, &p.org_id, &id).await {
                Ok(c) => c,
                Err(r) => return r,
            };
            edit_page_with(
                &state,
                &p,
                StatusCode::CONFLICT,
                &fresh,
                &CoverageForm::of(&fresh),
                &errors,
                &none,
            )
            .await
        }
        Err(StoreError::Conflict(_)) => {
            let errors = match order_taken(&state, &p.org_id, &coverage, Some(&id), &payers).await {
                Ok(Some(e)) => e,
                _ => ValidationErrors::single(
                    "form",
                    "conflicts with a coverage saved meanwhile; review and save again",
                ),
            };
            edit_page_with(
                &state,
                &p,
                StatusCode::CONFLICT,
                &current,
                &form,
                &errors,
                &none,
            )
            .await
        }
        Err(e) => ops::internal_error(e),
    }
}

fn form_expired() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form could not be accepted (it is from another site or an earlier session). Go back, reload the page and try again.",
    )
}

fn too_large() -> Response {
    error_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Image too large",
        "Card images can be up to 5 MiB. Take the photo at a lower resolution or scan at 300 dpi, then try again.",
    )
}

/// The upload form's fields.
#[derive(Default)]
struct Upload {
    csrf: String,
    side: String,
    file: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, MultipartError> {
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some("csrf") => upload.csrf = field.text().await?,
            Some("side") => upload.side = field.text().await?,
            Some("file") => upload.file = field.bytes().await?.to_vec(),
            _ => {}
        }
    }
    Ok(upload)
}

/// POST /coverages/{id}/cards (multipart: csrf, side, file)
pub async fn upload_card(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    if !same_origin(&headers) {
        return form_expired();
    }
    let upload = match read_upload(multipart).await {
        Ok(u) => u,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The upload could not be read",
                &e.body_text(),
            );
        }
    };
    if upload.csrf.is_empty() || !secrets_match(&upload.csrf, p.csrf()) {
        return form_expired();
    }
    let coverage = match load_coverage(&state, &p.org_id, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = ValidationErrors::new();
    let side = CardSide::from_code(&upload.side);
    if side.is_none() {
        errors.add("side", "choose front or back");
    }
    let content_type = match card_image_type(&upload.file) {
        Ok(t) => Some(t),
        Err(e) => {
            for f in e.errors() {
                errors.add(f.field.clone(), f.message.clone());
            }
            None
        }
    };
    let (Some(side), Some(content_type)) = (side, content_type) else {
        let form = CoverageForm::of(&coverage);
        let none = ValidationErrors::new();
        return edit_page_with(
            &state,
            &p,
            StatusCode::UNPROCESSABLE_ENTITY,
            &coverage,
            &form,
            &none,
            &errors,
        )
        .await;
    };
    let patient_id = &coverage.value.patient_id;
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let card = tx
            .add_coverage_card(&id, side, content_type, &upload.file, &p.actor_name)
            .await?;
        tx.audit(
            p.entry(Action::Create, Outcome::Success)
                .resource("CoverageCard", Some(&card.id))
                .patient(patient_id)
                .detail(format!(
                    "uploaded {} of the card of coverage {id} ({content_type}, {} bytes)",
                    side.code(),
                    upload.file.len()
                )),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/coverages/{id}/edit#cards")).into_response(),
        Err(e) => ops::internal_error(e),
    }
}

/// GET /coverage-cards/{id}: the image, never cached, audited as a view of
/// the patient's record.
pub async fn card_image(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let mut audit = AuditNote::new(Action::Read, "CoverageCard", Some(&id));
    let found = match state.db.coverage_card(&p.org_id, &id).await {
        Ok((card, bytes)) => {
            match state
                .db
                .history::<Coverage>(&p.org_id, &card.coverage_id)
                .await
            {
                Ok(versions) => versions
                    .first()
                    .map(|v| (card, bytes, v.value.patient_id.clone())),
                Err(e) => return ops::internal_error(e),
            }
        }
        Err(StoreError::NotFound) => None,
        Err(e) => return ops::internal_error(e),
    };
    let mut response = match found {
        None => error_page(
            StatusCode::NOT_FOUND,
            "Image not found",
            "There is no card image at this address.",
        ),
        Some((card, bytes, patient_id)) => {
            audit = audit.patient(&patient_id).detail(format!(
                "viewed {} of the insurance card of coverage {}",
                card.side.code(),
                card.coverage_id
            ));
            (
                [
                    (header::CONTENT_TYPE, card.content_type),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("inline; filename=\"card-{}\"", card.side.code()),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
    };
    note(&mut response, audit);
    response
}

/// The admin page's payer directory form, as submitted.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PayerForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    payer_id: String,
}

fn payer_label(field: &str) -> &str {
    match field {
        "name" => "Payer name",
        "payer_id" => "Payer ID",
        other => other,
    }
}

/// The payer directory: every payer with its payer ID and status, and the
/// form to add one (posting to `/admin/payers`).
pub fn payer_section(
    p: &Principal,
    payers: &[Versioned<Payer>],
    form: &PayerForm,
    errors: &ValidationErrors,
) -> Markup {
    let described = |name: &str| {
        errors
            .for_field(name)
            .map(|_| format!("payer-{name}-error"))
    };
    let invalid = |name: &str| errors.for_field(name).map(|_| "true");
    let field = |name: &str, input: Markup| {
        let error = errors.for_field(name);
        html! {
            div.field.invalid[error.is_some()] {
                label for=(format!("payer-{name}")) { (payer_label(name)) }
                (input)
                @if let Some(e) = error {
                    p.field-error id=(format!("payer-{name}-error")) { (payer_label(name)) " " (e) "." }
                }
            }
        }
    };
    html! {
        section #payers aria-labelledby="s-payers" {
            h2 #s-payers { "Payer directory" }
            p.muted {
                "The insurers patients' coverage is chosen from. Payer IDs are the electronic IDs used for eligibility and claims; check them against your clearinghouse's list."
            }
            table {
                caption.visually-hidden { "Payers" }
                thead { tr { th scope="col" { "Payer" } th scope="col" { "Payer ID" } th scope="col" { "Status" } } }
                tbody {
                    @for payer in payers {
                        tr {
                            td { (payer.value.name) }
                            td { (payer.value.payer_id) }
                            td { @if payer.value.active { "Active" } @else { "Inactive" } }
                        }
                    }
                }
            }
            h3 #add-payer { "Add a payer" }
            @if !errors.is_empty() {
                div.error #add-payer-errors role="alert" tabindex="-1" autofocus {
                    p { "The payer was not added. Please correct:" }
                    ul { @for e in errors.errors() { li { a href=(format!("#payer-{}", e.field)) { (payer_label(&e.field)) " " (e.message) } } } }
                }
            }
            form.stack method="post" action="/admin/payers" novalidate {
                (csrf_field(p))
                (field("name", html! {
                    input #payer-name name="name" type="text" required value=(form.name)
                        aria-invalid=[invalid("name")] aria-describedby=[described("name")];
                }))
                (field("payer_id", html! {
                    input #payer-payer_id name="payer_id" type="text" required value=(form.payer_id)
                        autocomplete="off" spellcheck="false"
                        aria-invalid=[invalid("payer_id")] aria-describedby=[described("payer_id")];
                }))
                button type="submit" { "Add payer" }
            }
        }
    }
}

/// The payer directory section of the admin page, with an empty form.
pub async fn payer_directory(state: &AppState, p: &Principal) -> Result<Markup, StoreError> {
    let payers = state.db.payers(&p.org_id).await?;
    Ok(payer_section(
        p,
        &payers,
        &PayerForm::default(),
        &ValidationErrors::new(),
    ))
}

async fn payers_page_with(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    form: &PayerForm,
    errors: &ValidationErrors,
) -> Response {
    let payers = match state.db.payers(&p.org_id).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Admin,
        "Payer directory",
        html! {
            p { a href="/admin" { "Back to Admin" } }
            (payer_section(p, &payers, form, errors))
        },
    );
    (status, page).into_response()
}

/// GET /admin/payers
pub async fn payers_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    payers_page_with(
        &state,
        &p,
        StatusCode::OK,
        &PayerForm::default(),
        &ValidationErrors::new(),
    )
    .await
}

/// POST /admin/payers
pub async fn add_payer(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<PayerForm>,
) -> Response {
    let payer = match (Payer {
        name: form.name.clone(),
        payer_id: form.payer_id.clone(),
        active: true,
    })
    .validate()
    {
        Ok(v) => v,
        Err(errors) => {
            return payers_page_with(&state, &p, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors)
                .await;
        }
    };
    let id = new_id();
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.create(&id, &payer, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Create, Outcome::Success)
                .resource("Organization", Some(&id))
                .detail(format!("added payer {} ({})", payer.name, payer.payer_id)),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin#payers").into_response(),
        Err(StoreError::Conflict(_)) => {
            let errors = ValidationErrors::single("payer_id", "is already in the directory");
            payers_page_with(&state, &p, StatusCode::CONFLICT, &form, &errors).await
        }
        Err(e) => ops::internal_error(e),
    }
}
