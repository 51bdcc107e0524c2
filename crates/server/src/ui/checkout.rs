//! Checkout of a visit (`/today/visits/{id}/checkout`), reached from the
//! board's "Checkout…" link, and the post-visit instructions it hands out.
//!
//! * The follow-up: the appointment type's suggested interval
//!   (`visit::FollowUp`) and a link opening the slot finder with the
//!   patient, the provider and the type, from the visit's day plus the
//!   interval.
//! * The instructions: the type's template (`visit::InstructionsTemplate`,
//!   the default when it has none) filled in with the patient and the visit,
//!   shown on the page and served as a PDF (`instructions_pdf`) to download
//!   or open for printing; each PDF is audited as an export of patient data.
//! * Completing the visit: the board's own store call (`visit_step`), so the
//!   room and the appointment follow as they do from the board.
//!
//! The page serves a visit with the provider or at checkout, and after it
//! is completed only to hand the instructions out again.
//!
//! Administrators write the templates at `/admin/instructions`: one per
//! appointment type, kept in the organization setting
//! `PostVisitInstructions`. A template naming an unknown placeholder is
//! refused at its field and nothing is saved; a preview fills it in with an
//! example patient.

use super::board::{capitalized, refusal_text, since_text};
use super::instructions_pdf::{self, InstructionsDoc};
use super::patient_summary::{alerts, us_date};
use super::registration::input_id;
use super::schedule::{
    Directory, actor, href, labelled_error_summary, labelled_inline_error, long_day, time_range,
    today_in,
};
use super::slot_finder::FinderParams;
use super::visit_page::OpenVisit;
use super::{CsrfForm, csrf_field, error_page, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::Organization;
use carefront_domain::visit::{
    FollowUp, InstructionFacts, InstructionsTemplate, IntervalUnit, MAX_BODY_CHARS,
    MAX_TITLE_CHARS, Placeholder, PostVisitInstructions, VisitStatus, VisitStep,
    VisitTransitionError,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{FlowActor, StoreError};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Everything the checkout of one visit shows.
struct Loaded {
    open: OpenVisit,
    /// The organization's name, for the printed header.
    clinic: String,
    /// The visit type's template, or the default.
    template: InstructionsTemplate,
    /// The type has a template of its own.
    own_template: bool,
}

impl std::ops::Deref for Loaded {
    type Target = OpenVisit;

    fn deref(&self) -> &OpenVisit {
        &self.open
    }
}

impl Loaded {
    fn facts(&self) -> InstructionFacts {
        let a = &self.appointment.value.appointment;
        let p = &self.patient.value;
        InstructionFacts {
            patient_given: p.given.clone(),
            patient_family: p.family.clone(),
            patient_birth_date: us_date(p.birth_date),
            visit_date: us_date(self.day()),
            provider: self.dir.provider_name(&a.practitioner_id),
            visit_type: self.dir.type_name(&a.appointment_type_id),
            location: self.dir.location_name(&a.location_id),
        }
    }

    /// The slot finder with the patient, the provider and the type, from
    /// the day the suggested interval ends (from today without one).
    fn follow_up_href(&self) -> String {
        let a = &self.appointment.value.appointment;
        FinderParams {
            kind: a.appointment_type_id.clone(),
            provider: a.practitioner_id.clone(),
            patient: self.patient.id.clone(),
            from: self
                .template
                .followup
                .map(|f| f.after(self.day()).to_string())
                .unwrap_or_default(),
            ..FinderParams::default()
        }
        .href()
    }

    /// `post-visit-instructions-<MRN>-<day>.pdf`, in characters any file
    /// system and header accept.
    fn file_name(&self) -> String {
        let mrn: String = self
            .patient
            .value
            .mrn
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        format!("post-visit-instructions-{mrn}-{}.pdf", self.day())
    }
}

async fn load(state: &AppState, p: &Principal, id: &str) -> Result<Loaded, Response> {
    let open = OpenVisit::load(state, p, id).await?;
    let org_id = p.org_id.as_str();
    let rest = async {
        let templates: PostVisitInstructions = state.db.setting(org_id).await?;
        let clinic = match state.db.get::<Organization>(org_id, org_id).await {
            Ok(o) => Some(o.value.name),
            Err(StoreError::NotFound | StoreError::Gone) => None,
            Err(e) => return Err(e),
        };
        Ok::<_, StoreError>((templates, clinic))
    };
    let (templates, clinic) = rest.await.map_err(ops::internal_error)?;
    let type_id = &open.appointment.value.appointment.appointment_type_id;
    let location = open.dir.location_name(open.location_id());
    Ok(Loaded {
        own_template: templates.own(type_id).is_some(),
        template: templates.for_type(type_id),
        clinic: clinic.unwrap_or(location),
        open,
    })
}

/// Where the visit stands for checkout: `Ok(true)` when it may be completed
/// now, `Ok(false)` once completed (the instructions can be handed out
/// again), otherwise the status machine's reason.
fn checkout_state(status: VisitStatus) -> Result<bool, VisitTransitionError> {
    match status {
        VisitStatus::Completed => Ok(false),
        s => s.check_transition(VisitStatus::Completed).map(|()| true),
    }
}

/// The checkout of a visit that is not there yet or ended otherwise.
fn cannot_check_out(
    state: &AppState,
    p: &Principal,
    l: &Loaded,
    refused: &VisitTransitionError,
) -> Response {
    let content = html! {
        div.error #checkout-error role="alert" tabindex="-1" autofocus {
            p { (capitalized(refused.from.label())) ": this visit cannot be checked out (" (refused.reason) ")." }
        }
        p { a href=(l.board(&[])) { "Back to the board" } }
    };
    let title = format!("Checkout: {}", l.patient.value.display_name());
    l.respond(
        state,
        p,
        StatusCode::CONFLICT,
        &title,
        content,
        format!("checkout of Appointment/{} refused", l.appointment.id),
    )
}

/// `GET /today/visits/{id}/checkout`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let l = match load(&state, &p, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    match checkout_state(l.visit.status) {
        Ok(_) => render(&state, &p, &l, None, StatusCode::OK),
        Err(refused) => cannot_check_out(&state, &p, &l, &refused),
    }
}

/// `POST /today/visits/{id}/checkout`: completes the visit through the
/// board's store call, then back to the board with its notice. A refusal
/// shows the page with the reason and writes nothing.
pub async fn complete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let l = match load(&state, &p, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let result = async {
        let step = VisitStep::new(VisitStatus::Completed, None)?;
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.visit_step(&id, &step, &FlowActor::Staff(actor(&p)), Timestamp::now())
            .await?;
        tx.commit().await
    }
    .await;
    let (status, message) = match result {
        Ok(()) => {
            let done = [("done", VisitStatus::Completed.code()), ("a", id.as_str())];
            return Redirect::to(&l.board(&done)).into_response();
        }
        Err(StoreError::Invalid(e)) => (StatusCode::UNPROCESSABLE_ENTITY, refusal_text(&e)),
        Err(StoreError::Conflict(m)) => (StatusCode::CONFLICT, capitalized(&m)),
        Err(StoreError::NotFound | StoreError::Gone) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Visit not found",
                "There is no appointment at this address. Go back to today's board.",
            );
        }
        Err(e) => return ops::internal_error(e),
    };
    // Shown as it is now: someone may have moved the visit meanwhile.
    match load(&state, &p, &id).await {
        Ok(now) => render(&state, &p, &now, Some(&message), status),
        Err(r) => r,
    }
}

/// The filled-in text as the page shows it: paragraphs keep their lines.
fn instructions_text(title: &str, body: &str) -> Markup {
    html! {
        h3 { (title) }
        @for paragraph in body.split("\n\n").filter(|p| !p.trim().is_empty()) {
            p.instructions-text { (paragraph.trim_matches('\n')) }
        }
    }
}

fn render(
    state: &AppState,
    p: &Principal,
    l: &Loaded,
    refused: Option<&str>,
    status: StatusCode,
) -> Response {
    let a = &l.appointment.value.appointment;
    let patient = &l.patient;
    let tz = l.dir.tz(&a.location_id);
    let id = &l.appointment.id;
    let open = checkout_state(l.visit.status).unwrap_or(false);
    let type_name = l.dir.type_name(&a.appointment_type_id);
    let filled = l.template.render(&l.facts());
    let pdf = format!("/today/visits/{id}/instructions.pdf");
    let title = format!("Checkout: {}", patient.value.display_name());
    let content = html! {
        p.patient-line {
            span { "MRN " strong { (patient.value.mrn) } }
            span { (time_range(&tz, a.start, a.end)) " · " (type_name) " with " (l.dir.provider_name(&a.practitioner_id)) }
            span { (l.dir.location_name(&a.location_id)) }
            span { (capitalized(l.visit.status.label())) " " (since_text(&tz, l.visit.since, Timestamp::now())) }
        }
        (alerts(&patient.value))
        @if let Some(reason) = refused {
            div.error #checkout-error role="alert" tabindex="-1" autofocus {
                p { "The visit was not completed. " (reason) }
            }
        }
        section.card #checkout-followup aria-labelledby="checkout-followup-title" {
            h2 #checkout-followup-title { "Follow-up" }
            @match l.template.followup {
                Some(f) => p {
                    "Suggested for " (type_name) ": " strong { (l.template.followup_text()) }
                    " (from " (long_day(f.after(l.day()))) ")."
                },
                None => p { "No follow-up interval is suggested for " (type_name) "." },
            }
            p {
                a.button #book-followup href=(l.follow_up_href()) { "Book follow-up" }
                " " span.hint { "Opens the slot finder with this patient, provider and type." }
            }
        }
        section.card #checkout-instructions aria-labelledby="checkout-instructions-title" {
            h2 #checkout-instructions-title { "Post-visit instructions" }
            p.hint {
                @if l.own_template { "The template for " (type_name) ", filled in for this visit." }
                @else { "The default template (" (type_name) " has none of its own yet; an administrator can write one)." }
            }
            p.actions {
                a.button #instructions-download href=(pdf) download=(l.file_name()) { "Download instructions (PDF)" }
                a.button.secondary #instructions-print href=(href(&pdf, &[("print", "1")])) target="_blank" rel="noopener" {
                    "Print" span.visually-hidden { " the instructions (opens the PDF in a new tab)" }
                }
            }
            details {
                summary { "Read the instructions" }
                (instructions_text(&filled.title, &filled.body))
            }
        }
        @if open {
            form #checkout-form method="post" action=(format!("/today/visits/{id}/checkout")) {
                (csrf_field(p))
                div.form-actions {
                    button type="submit" { "Complete visit" }
                    a href=(l.board(&[])) { "Back to the board" }
                }
            }
        } @else {
            p.notice.done #checkout-notice { "This visit is completed. The instructions can still be handed out again." }
            p { a href=(l.board(&[])) { "Back to the board" } }
        }
    };
    l.respond(
        state,
        p,
        status,
        &title,
        content,
        format!("checkout (Appointment/{id})"),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PdfQuery {
    /// Open in the browser to print, rather than download.
    #[serde(default)]
    print: String,
}

/// `GET /today/visits/{id}/instructions.pdf` (`?print=1` to open it in the
/// browser): audited as an export of the patient's data.
pub async fn instructions(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<PdfQuery>,
) -> Response {
    let l = match load(&state, &p, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if let Err(refused) = checkout_state(l.visit.status) {
        return cannot_check_out(&state, &p, &l, &refused);
    }
    let a = &l.appointment.value.appointment;
    let facts = l.facts();
    let filled = l.template.render(&facts);
    let name = l.patient.value.display_name();
    let bytes = instructions_pdf::pdf(&InstructionsDoc {
        clinic: &l.clinic,
        location: &facts.location,
        patient: &name,
        birth_date: &facts.patient_birth_date,
        visit_date: &facts.visit_date,
        visit_type: &facts.visit_type,
        provider: &facts.provider,
        filled: &filled,
    });
    let printing = !q.print.is_empty();
    let disposition = format!(
        "{}; filename=\"{}\"",
        if printing { "inline" } else { "attachment" },
        l.file_name()
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response();
    note(
        &mut response,
        AuditNote::new(Action::Export, "Patient", Some(&l.patient.id))
            .patient(&l.patient.id)
            .detail(format!(
                "post-visit instructions PDF {} (Appointment/{}, type {})",
                if printing {
                    "opened to print"
                } else {
                    "downloaded"
                },
                id,
                a.appointment_type_id
            )),
    );
    response
}

// ---------------------------------------------------------------- templates

/// A stored template's fingerprint, carried by the editor's form: a save
/// over someone else's newer one is refused instead of silently replacing it.
fn version_of(template: Option<&InstructionsTemplate>) -> String {
    let json = serde_json::to_string(&template).unwrap_or_default();
    hex::encode(&Sha256::digest(json.as_bytes())[..8])
}

#[derive(Debug, Default, Deserialize)]
pub struct EditorQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    saved: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct TemplateForm {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default, rename = "followup.count")]
    followup_count: String,
    #[serde(default, rename = "followup.unit")]
    followup_unit: String,
    /// `save`, or `preview` to see it filled in without saving.
    #[serde(default)]
    action: String,
}

impl TemplateForm {
    fn of(kind: &str, template: &InstructionsTemplate, version: String) -> Self {
        TemplateForm {
            kind: kind.to_string(),
            version,
            title: template.title.clone(),
            body: template.body.clone(),
            followup_count: template
                .followup
                .map(|f| f.count.to_string())
                .unwrap_or_default(),
            followup_unit: template
                .followup
                .map_or(IntervalUnit::Weeks, |f| f.unit)
                .code()
                .to_string(),
            action: String::new(),
        }
    }

    /// The template as typed, checked by the domain's rules.
    fn template(&self) -> (InstructionsTemplate, ValidationErrors) {
        let mut errors = ValidationErrors::new();
        let followup =
            FollowUp::parse(&self.followup_count, &self.followup_unit).unwrap_or_else(|e| {
                errors = e;
                None
            });
        let typed = InstructionsTemplate {
            title: self.title.clone(),
            body: self.body.clone(),
            followup,
        };
        match typed.clone().validate() {
            Ok(valid) => (valid, errors),
            Err(e) => {
                for fe in e.errors() {
                    errors.add(fe.field.clone(), fe.message.clone());
                }
                (typed, errors)
            }
        }
    }
}

fn template_label(field: &str) -> String {
    match field {
        "title" => "Title",
        "body" => "Instructions",
        "followup.count" => "Follow-up interval",
        "followup.unit" => "Follow-up unit",
        "version" => "This template",
        other => other,
    }
    .to_string()
}

/// The input an error is shown at; none for the whole form.
fn template_anchor(field: &str) -> String {
    match field {
        "version" => String::new(),
        f => f.to_string(),
    }
}

/// The people and places of the clinic, with a made-up patient: what the
/// preview fills a template with.
fn example_facts(dir: &Directory, type_name: &str) -> InstructionFacts {
    let location = dir.active_locations().next();
    let provider = dir.practitioners.iter().find(|p| p.value.active);
    let today = today_in(&location.map_or(jiff::tz::TimeZone::UTC, |l| dir.tz(&l.id)));
    InstructionFacts {
        patient_given: "Jordan".into(),
        patient_family: "Example".into(),
        patient_birth_date: "01/31/1980".into(),
        visit_date: us_date(today),
        provider: provider.map_or_else(|| "Dr. Example".into(), |p| dir.provider_name(&p.id)),
        visit_type: type_name.to_string(),
        location: location.map_or_else(|| "Main clinic".into(), |l| l.value.name.clone()),
    }
}

/// `GET /admin/instructions` (`?type=` opens one type's template).
pub async fn templates_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EditorQuery>,
) -> Response {
    let (dir, templates) = match load_templates(&state, &p).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let kind = q.kind.trim();
    if kind.is_empty() {
        return render_templates(&state, &p, &dir, &templates, None, StatusCode::OK);
    }
    if dir.kind(kind).is_none() {
        return unknown_type();
    }
    let own = templates.own(kind);
    let form = TemplateForm::of(kind, &templates.for_type(kind), version_of(own));
    let editor = Editor {
        form: &form,
        errors: &ValidationErrors::new(),
        saved: q.saved == "1",
        preview: None,
    };
    render_templates(&state, &p, &dir, &templates, Some(editor), StatusCode::OK)
}

/// `POST /admin/instructions`: `action=preview` fills the typed template
/// in; `action=save` stores it for the type. A refusal names the field and
/// saves nothing.
pub async fn save_template(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<TemplateForm>,
) -> Response {
    let (dir, templates) = match load_templates(&state, &p).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let kind = form.kind.trim().to_string();
    let Some(type_name) = dir.kind(&kind).map(|t| t.name.clone()) else {
        return unknown_type();
    };
    let (template, mut errors) = form.template();
    if form.action != "save" {
        let status = match errors.is_empty() {
            true => StatusCode::OK,
            false => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let editor = Editor {
            form: &form,
            errors: &errors,
            saved: false,
            preview: Some(&template),
        };
        return render_templates(&state, &p, &dir, &templates, Some(editor), status);
    }
    if !errors.is_empty() {
        let editor = Editor {
            form: &form,
            errors: &errors,
            saved: false,
            preview: None,
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render_templates(&state, &p, &dir, &templates, Some(editor), status);
    }
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        // Read again, locked, once the write has begun, so the other
        // types' templates are kept as they are now, not as they were when
        // the form was shown, and no other save comes between.
        let mut current: PostVisitInstructions = tx.setting_for_update().await?;
        let now = version_of(current.own(&kind));
        if now != form.version {
            return Ok(Some(now));
        }
        current.by_type.insert(kind.clone(), template.clone());
        tx.set_setting(&current, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Update, Outcome::Success)
                .resource("OrganizationSetting", Some("post_visit_instructions"))
                .detail(format!(
                    "post-visit instructions for {type_name} ({kind}): “{}”, follow-up {}",
                    template.title,
                    template.followup_text()
                )),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(None)
    }
    .await;
    match saved {
        Ok(None) => Redirect::to(&href(
            "/admin/instructions",
            &[("type", &kind), ("saved", "1")],
        ))
        .into_response(),
        Ok(Some(now)) => {
            // Saving again replaces theirs on purpose: the form now
            // carries the newer version.
            errors.add(
                "version",
                "was saved by someone else meanwhile: check it, then save again to replace it with yours",
            );
            let form = TemplateForm {
                version: now,
                ..form
            };
            let editor = Editor {
                form: &form,
                errors: &errors,
                saved: false,
                preview: None,
            };
            render_templates(
                &state,
                &p,
                &dir,
                &templates,
                Some(editor),
                StatusCode::CONFLICT,
            )
        }
        Err(e) => ops::internal_error(e),
    }
}

async fn load_templates(
    state: &AppState,
    p: &Principal,
) -> Result<(Directory, PostVisitInstructions), StoreError> {
    let dir = Directory::load(state, &p.org_id).await?;
    let templates = state.db.setting(&p.org_id).await?;
    Ok((dir, templates))
}

fn unknown_type() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Appointment type not found",
        "There is no such appointment type. Go back to the post-visit instructions.",
    )
}

/// One type's template open in the editor.
struct Editor<'a> {
    form: &'a TemplateForm,
    errors: &'a ValidationErrors,
    /// Just saved.
    saved: bool,
    /// The template to show filled in with the example patient.
    preview: Option<&'a InstructionsTemplate>,
}

fn render_templates(
    state: &AppState,
    p: &Principal,
    dir: &Directory,
    templates: &PostVisitInstructions,
    editor: Option<Editor>,
    status: StatusCode,
) -> Response {
    let content = html! {
        p { "What the patient takes home after a visit: one template per appointment type, filled in with the patient and the visit and printed at checkout. A type without its own template gets the default." }
        table {
            caption.visually-hidden { "Post-visit instructions by appointment type" }
            thead { tr {
                th scope="col" { "Appointment type" } th scope="col" { "Template" }
                th scope="col" { "Suggested follow-up" } th scope="col" { span.visually-hidden { "Edit" } }
            } }
            tbody {
                @for t in &dir.types {
                    @let own = templates.own(&t.id);
                    tr {
                        th scope="row" { (t.value.name) @if !t.value.active { " " span.tag.off { "Inactive" } } }
                        td { @match own { Some(o) => { (o.title) }, None => span.muted { "Default" } } }
                        td { (templates.for_type(&t.id).followup_text()) }
                        td { a href=(href("/admin/instructions", &[("type", &t.id)])) {
                            "Edit" span.visually-hidden { " the template for " (t.value.name) }
                        } }
                    }
                }
            }
        }
        @if let Some(e) = editor {
            (editor_section(p, dir, &e))
        }
    };
    (
        status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Admin,
            "Post-visit instructions",
            content,
        ),
    )
        .into_response()
}

fn editor_section(p: &Principal, dir: &Directory, e: &Editor) -> Markup {
    let f = e.form;
    let type_name = dir.type_name(&f.kind);
    let field = |name: &str| labelled_inline_error(e.errors, name, template_anchor, template_label);
    let (title_invalid, title_error, title_block) = field("title");
    let (body_invalid, body_error, body_block) = field("body");
    let (count_invalid, count_error, count_block) = field("followup.count");
    let (unit_invalid, unit_error, unit_block) = field("followup.unit");
    let body_described = [body_error, Some("placeholders-hint".to_string())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let count_described = [count_error, Some("f-followup-count-hint".to_string())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let preview = e.preview.map(|t| t.render(&example_facts(dir, &type_name)));
    html! {
        section #template-editor aria-labelledby="template-editor-title" {
            h2 #template-editor-title { "Template for " (type_name) }
            @if e.saved {
                p.notice.done #template-notice role="status" tabindex="-1" autofocus { "Saved. Checkouts of " (type_name) " now print this template." }
            }
            (labelled_error_summary("template-errors", e.errors, template_anchor, template_label))
            form.stack.instructions-editor method="post" action="/admin/instructions" novalidate {
                (csrf_field(p))
                input type="hidden" name="type" value=(f.kind);
                input type="hidden" name="version" value=(f.version);
                div.field.invalid[title_invalid.is_some()] {
                    label for=(input_id("title")) { "Title " span.req { "required" } }
                    input id=(input_id("title")) name="title" type="text" value=(f.title) maxlength=(MAX_TITLE_CHARS)
                        required aria-invalid=[title_invalid] aria-describedby=[title_error];
                    (title_block)
                }
                div.field.invalid[body_invalid.is_some()] {
                    label for=(input_id("body")) { "Instructions " span.req { "required" } }
                    textarea id=(input_id("body")) name="body" rows="16" maxlength=(MAX_BODY_CHARS) required
                        aria-invalid=[body_invalid] aria-describedby=(body_described) { (f.body) }
                    (body_block)
                }
                div.hint {
                    p #placeholders-hint { "An empty line starts a new paragraph; a line starting with “- ” is a bullet. These placeholders are filled in for each visit:" }
                    dl.kv {
                        @for ph in Placeholder::ALL {
                            dt { code { (ph.token()) } }
                            dd { (ph.description()) }
                        }
                    }
                }
                fieldset {
                    legend { "Suggested follow-up" }
                    div.row {
                        div.field.w-xs.invalid[count_invalid.is_some()] {
                            label for=(input_id("followup.count")) { "Come back in" }
                            input id=(input_id("followup.count")) name="followup.count" type="text" inputmode="numeric"
                                value=(f.followup_count) aria-invalid=[count_invalid] aria-describedby=(count_described);
                            (count_block)
                        }
                        div.field.w-s.invalid[unit_invalid.is_some()] {
                            label for=(input_id("followup.unit")) { "Unit" }
                            select id=(input_id("followup.unit")) name="followup.unit" aria-invalid=[unit_invalid] aria-describedby=[unit_error] {
                                @for u in IntervalUnit::ALL {
                                    option value=(u.code()) selected[u.code() == f.followup_unit] { (capitalized(u.code())) }
                                }
                            }
                            (unit_block)
                        }
                    }
                    p.hint #f-followup-count-hint { "Leave empty when the type suggests no follow-up; the checkout page then offers the slot finder from today." }
                }
                div.form-actions {
                    button type="submit" name="action" value="save" { "Save template" }
                    button.secondary type="submit" name="action" value="preview" { "Preview" }
                    a href="/admin/instructions" { "Back to all types" }
                }
            }
            @if let Some(filled) = &preview {
                section.card #template-preview aria-labelledby="template-preview-title" {
                    h2 #template-preview-title { "Preview (not saved) with an example patient" }
                    (instructions_text(&filled.title, &filled.body))
                }
            }
        }
    }
}
