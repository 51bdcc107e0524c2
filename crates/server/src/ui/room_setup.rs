//! Rooms and supplies (`/admin/rooms`): for each kind of room the cleaning
//! checklist the rooms board ticks before a room is ready again and the
//! supplies counted in it with their par levels (`visit::RoomChecklist`,
//! one versioned record per kind), and how long a patient may wait before
//! today's board flags them, per location (`visit::WaitThresholds`, an
//! organization setting).
//!
//! Lists are typed one entry per line ("Gloves (box): 4" for a supply);
//! an error names its line and nothing is saved. A checklist saved by
//! someone else since the form was shown is refused, keeping what was typed.

use super::registration::input_id;
use super::schedule::{Directory, actor, href, labelled_error_summary, labelled_inline_error};
use super::{CsrfForm, csrf_field, error_page, shell};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::{RoomKind, Versioned};
use carefront_domain::visit::{
    MAX_WAIT_THRESHOLD_MINUTES, RoomChecklist, SupplyPar, WaitThresholds,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::StoreError;
use maud::{Markup, html};
use serde::Deserialize;

const PAGE: &str = "/admin/rooms";

/// The kinds of room, with their codes as stored and posted.
const KINDS: [(RoomKind, &str); 4] = [
    (RoomKind::Exam, "exam"),
    (RoomKind::Procedure, "procedure"),
    (RoomKind::Consult, "consult"),
    (RoomKind::Ultrasound, "ultrasound"),
];

/// The `saved` of the wait thresholds' form (the checklists' is their kind).
const WAIT: &str = "wait";

#[derive(Debug, Default, Deserialize)]
pub struct SetupQuery {
    /// The form just saved: a room kind's code, or `wait`.
    #[serde(default)]
    saved: String,
}

/// One kind's checklist as the form shows and posts it.
#[derive(Debug, Default, Deserialize)]
pub struct ChecklistForm {
    #[serde(default)]
    kind: String,
    /// The stored version the form was shown with; 0 when none was saved.
    #[serde(default)]
    version: String,
    /// One item per line.
    #[serde(default)]
    cleaning: String,
    /// One "item: par" per line.
    #[serde(default)]
    supplies: String,
}

impl ChecklistForm {
    fn of(code: &str, stored: Option<&Versioned<RoomChecklist>>) -> Self {
        let lists = stored.map(|s| &s.value);
        ChecklistForm {
            kind: code.to_string(),
            version: stored.map_or(0, |s| s.version).to_string(),
            cleaning: lists.map(|c| c.cleaning.join("\n")).unwrap_or_default(),
            supplies: lists.map(supplies_text).unwrap_or_default(),
        }
    }
}

fn supplies_text(checklist: &RoomChecklist) -> String {
    let lines: Vec<String> = checklist
        .supplies
        .iter()
        .map(|s| format!("{}: {}", s.item, s.par))
        .collect();
    lines.join("\n")
}

/// The non-blank lines of a list, trimmed, with their (1-based) numbers.
fn lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

/// `supplies[2].par` as ("supplies", 2, "par").
fn entry(field: &str) -> Option<(&str, usize, &str)> {
    let (list, rest) = field.split_once('[')?;
    let (index, rest) = rest.split_once(']')?;
    Some((list, index.parse().ok()?, rest.trim_start_matches('.')))
}

/// The checklist as typed, checked by the domain's rules. Every error is
/// at its list (`<kind>.cleaning`, `<kind>.supplies`) and names its line.
fn read_checklist(
    kind: RoomKind,
    code: &str,
    form: &ChecklistForm,
) -> Result<RoomChecklist, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let field = |list: &str| format!("{code}.{list}");
    let at = |(n, line): (usize, &str)| format!("line {n} (“{line}”)");
    let cleaning_lines = lines(&form.cleaning);
    // The line of each supply read, by its index in the checklist.
    let mut supply_lines = Vec::new();
    let mut supplies = Vec::new();
    for (n, line) in lines(&form.supplies) {
        let Some((item, par)) = line.rsplit_once(':') else {
            let message = format!(
                "{}: the par level is missing; write it after a colon, as “Gloves (box): 4”",
                at((n, line))
            );
            errors.add(field("supplies"), message);
            continue;
        };
        match par.trim().parse() {
            Ok(par) => {
                supply_lines.push((n, line));
                supplies.push(SupplyPar {
                    item: item.to_string(),
                    par,
                });
            }
            Err(_) => errors.add(
                field("supplies"),
                format!("{}: the par level must be a whole number", at((n, line))),
            ),
        }
    }
    let typed = RoomChecklist {
        kind,
        cleaning: cleaning_lines.iter().map(|(_, l)| l.to_string()).collect(),
        supplies,
    };
    let checked = typed.validate().map_err(|e| {
        for fe in e.errors() {
            let message = match entry(&fe.field) {
                Some(("cleaning", i, _)) => format!("{} {}", at(cleaning_lines[i]), fe.message),
                Some(("supplies", i, part)) => {
                    let part = if part == "par" { "par level" } else { "item" };
                    format!("{}: the {part} {}", at(supply_lines[i]), fe.message)
                }
                // A whole list ("at most 100 items").
                _ => format!("may have {}", fe.message),
            };
            let list = fe.field.split('[').next().unwrap_or_default();
            errors.add(field(list), message);
        }
    });
    match (checked, errors.is_empty()) {
        (Ok(c), true) => Ok(c),
        _ => Err(errors),
    }
}

/// How the summary and the inline messages name a field of the page.
fn label(field: &str) -> String {
    if field == "default_minutes" {
        return "Default wait threshold".into();
    }
    if field.starts_with("by_location.") {
        return "Wait threshold".into();
    }
    match field.rsplit_once('.').map(|(_, f)| f) {
        Some("cleaning") => "Cleaning checklist",
        Some("supplies") => "Supplies",
        _ => "This checklist",
    }
    .to_string()
}

/// The input an error is shown at; none for a stale version.
fn anchor(field: &str) -> String {
    match field.ends_with(".version") {
        true => String::new(),
        false => field.to_string(),
    }
}

/// A hint's id and an error's, for `aria-describedby`.
fn described(hint: &str, error: Option<String>) -> String {
    let mut ids = hint.to_string();
    if let Some(e) = error {
        ids.push(' ');
        ids.push_str(&e);
    }
    ids
}

/// A form that came back refused: what was typed and why.
enum Back {
    Checklist(ChecklistForm, ValidationErrors),
    /// The wait thresholds' fields as posted.
    Wait(Vec<(String, String)>, ValidationErrors),
}

/// `GET /admin/rooms` (`?saved=` names the form just saved).
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SetupQuery>,
) -> Response {
    render(&state, &p, StatusCode::OK, &q.saved, None).await
}

async fn render(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    saved: &str,
    back: Option<Back>,
) -> Response {
    let loaded = async {
        let dir = Directory::load(state, &p.org_id).await?;
        let thresholds: WaitThresholds = state.db.setting(&p.org_id).await?;
        let mut checklists = Vec::new();
        for (kind, _) in KINDS {
            checklists.push(state.db.room_checklist(&p.org_id, kind).await?);
        }
        Ok::<_, StoreError>((dir, thresholds, checklists))
    };
    let (dir, thresholds, checklists) = match loaded.await {
        Ok(l) => l,
        Err(e) => return ops::internal_error(e),
    };
    let typed_checklist = match &back {
        Some(Back::Checklist(form, errors)) => Some((form, errors)),
        _ => None,
    };
    let typed_wait = match &back {
        Some(Back::Wait(fields, errors)) => Some((fields.as_slice(), errors)),
        _ => None,
    };
    let content = html! {
        p.lede { "What the rooms board asks for each kind of room: the cleaning checklist ticked before a room is ready again, and the supplies counted in it with their par levels (a count below par opens a restock task). And how long a patient may wait before today's board flags them." }
        @for ((kind, code), stored) in KINDS.iter().zip(&checklists) {
            @let typed = typed_checklist.filter(|(form, _)| form.kind == *code);
            (checklist_section(p, *kind, code, stored.as_ref(), typed, saved == *code))
        }
        (wait_section(p, &dir, &thresholds, typed_wait, saved == WAIT))
    };
    (
        status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Admin,
            "Rooms and supplies",
            content,
        ),
    )
        .into_response()
}

fn checklist_section(
    p: &Principal,
    kind: RoomKind,
    code: &str,
    stored: Option<&Versioned<RoomChecklist>>,
    typed: Option<(&ChecklistForm, &ValidationErrors)>,
    saved: bool,
) -> Markup {
    let shown;
    let none = ValidationErrors::new();
    let (form, errors) = match typed {
        Some(t) => t,
        None => {
            shown = ChecklistForm::of(code, stored);
            (&shown, &none)
        }
    };
    let stale = errors.for_field(&format!("{code}.version")).is_some();
    let title = format!("{}s", kind.label());
    let section = format!("checklist-{code}");
    let field = |list: &str| {
        let name = format!("{code}.{list}");
        let (invalid, error, block) = labelled_inline_error(errors, &name, anchor, label);
        (input_id(&name), invalid, error, block)
    };
    let (cleaning_id, cleaning_invalid, cleaning_error, cleaning_block) = field("cleaning");
    let (supplies_id, supplies_invalid, supplies_error, supplies_block) = field("supplies");
    let cleaning_hint = format!("{cleaning_id}-hint");
    let supplies_hint = format!("{supplies_id}-hint");
    html! {
        section.card id=(section) aria-labelledby=(format!("{section}-title")) {
            h2 id=(format!("{section}-title")) { (title) }
            @if saved {
                p.notice.done id=(format!("{section}-notice")) role="status" tabindex="-1" autofocus {
                    "Saved. " (title) " now use this checklist and these par levels."
                }
            }
            (labelled_error_summary(&format!("{section}-errors"), errors, anchor, label))
            @if stale {
                @let now = stored.map(|s| &s.value);
                div.notice.warn {
                    p { "Saved meanwhile (yours is below, not saved):" }
                    p { "Cleaning checklist: " (now.map(|c| c.cleaning.join(", ")).filter(|t| !t.is_empty()).unwrap_or_else(|| "none".into())) }
                    p { "Supplies: " (now.map(|c| supplies_text(c).replace('\n', ", ")).filter(|t| !t.is_empty()).unwrap_or_else(|| "none".into())) }
                }
            }
            form.stack method="post" action=(PAGE) novalidate {
                (csrf_field(p))
                input type="hidden" name="kind" value=(code);
                input type="hidden" name="version" value=(form.version);
                div.field.invalid[cleaning_invalid.is_some()] {
                    label for=(cleaning_id) { "Cleaning checklist" }
                    textarea id=(cleaning_id) name="cleaning" rows="6"
                        aria-invalid=[cleaning_invalid] aria-describedby=(described(&cleaning_hint, cleaning_error)) { (form.cleaning) }
                    p.hint id=(cleaning_hint) { "One item per line; every item is ticked before a room of this kind is ready again." }
                    (cleaning_block)
                }
                div.field.invalid[supplies_invalid.is_some()] {
                    label for=(supplies_id) { "Supplies and par levels" }
                    textarea id=(supplies_id) name="supplies" rows="6"
                        aria-invalid=[supplies_invalid] aria-describedby=(described(&supplies_hint, supplies_error)) { (form.supplies) }
                    p.hint id=(supplies_hint) { "One supply per line with how many should be in the room after a colon, as “Gloves (box): 4”. Leave empty when nothing is counted." }
                    (supplies_block)
                }
                div.form-actions {
                    button type="submit" { "Save" span.visually-hidden { " the " (title.to_lowercase()) "' checklist and supplies" } }
                }
            }
        }
    }
}

/// `POST /admin/rooms`: saves one kind's checklist, unless it was saved by
/// someone else since the form was shown.
pub async fn save_checklist(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<ChecklistForm>,
) -> Response {
    let Some(&(kind, code)) = KINDS.iter().find(|(_, c)| *c == form.kind.trim()) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Room kind not found",
            "There is no such kind of room. Go back to rooms and supplies.",
        );
    };
    let checklist = match read_checklist(kind, code, &form) {
        Ok(c) => c,
        Err(errors) => {
            let back = Back::Checklist(form, errors);
            return render(&state, &p, StatusCode::UNPROCESSABLE_ENTITY, "", Some(back)).await;
        }
    };
    // An unreadable version counts as "none saved", so that it is refused
    // rather than replacing whatever is saved.
    let if_version = form.version.trim().parse().unwrap_or(0);
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.save_room_checklist(checklist, Some(if_version), &actor(&p))
            .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => Redirect::to(&href(PAGE, &[("saved", code)])).into_response(),
        // A conflict: two first saves of a kind at once.
        Err(StoreError::VersionConflict { .. } | StoreError::Conflict(_)) => {
            let now = match state.db.room_checklist(&p.org_id, kind).await {
                Ok(now) => now.map_or(0, |c| c.version),
                Err(e) => return ops::internal_error(e),
            };
            // Saving again replaces theirs on purpose: the form now carries
            // the newer version.
            let errors = ValidationErrors::single(
                format!("{code}.version"),
                "was saved by someone else meanwhile: check it, then save again to replace it with yours",
            );
            let form = ChecklistForm {
                version: now.to_string(),
                ..form
            };
            render(
                &state,
                &p,
                StatusCode::CONFLICT,
                "",
                Some(Back::Checklist(form, errors)),
            )
            .await
        }
        Err(e) => ops::internal_error(e),
    }
}

/// The wait thresholds as typed: the default, and each active location's
/// (empty: the default). Locations not listed keep theirs.
fn read_thresholds(
    dir: &Directory,
    mut thresholds: WaitThresholds,
    fields: &[(String, String)],
) -> Result<WaitThresholds, ValidationErrors> {
    let text = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    };
    let mut errors = ValidationErrors::new();
    let not_minutes = |place: &str| {
        format!("{place}must be a whole number of minutes, 1 to {MAX_WAIT_THRESHOLD_MINUTES}")
    };
    match text("default_minutes") {
        "" => errors.add("default_minutes", "is required"),
        typed => match typed.parse() {
            Ok(m) => thresholds.default_minutes = m,
            Err(_) => errors.add("default_minutes", not_minutes("")),
        },
    }
    for l in dir.active_locations() {
        let name = format!("by_location.{}", l.id);
        match text(&name) {
            "" => {
                thresholds.by_location.remove(&l.id);
            }
            typed => match typed.parse() {
                Ok(m) => {
                    thresholds.by_location.insert(l.id.clone(), m);
                }
                Err(_) => errors.add(name, not_minutes(&format!("at {} ", l.value.name))),
            },
        }
    }
    let checked = thresholds.validate().map_err(|e| {
        for fe in e.errors() {
            let place = fe
                .field
                .strip_prefix("by_location.")
                .map(|id| format!("at {} ", dir.location_name(id)))
                .unwrap_or_default();
            errors.add(fe.field.clone(), format!("{place}{}", fe.message));
        }
    });
    match (checked, errors.is_empty()) {
        (Ok(t), true) => Ok(t),
        _ => Err(errors),
    }
}

fn wait_section(
    p: &Principal,
    dir: &Directory,
    stored: &WaitThresholds,
    typed: Option<(&[(String, String)], &ValidationErrors)>,
    saved: bool,
) -> Markup {
    let none = ValidationErrors::new();
    let errors = typed.map_or(&none, |(_, e)| e);
    // What was typed when the form came back, else what is saved.
    let value = |name: &str, saved: Option<u16>| match typed {
        Some((fields, _)) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        None => saved.map(|m| m.to_string()).unwrap_or_default(),
    };
    let minutes_field = |name: &str, text: Markup, value: String, hint: &str| {
        let id = input_id(name);
        let hint_id = format!("{id}-hint");
        let (invalid, error, block) = labelled_inline_error(errors, name, anchor, label);
        html! {
            div.field.invalid[invalid.is_some()] {
                label for=(id) { (text) }
                input id=(id) name=(name) type="number" min="1" max=(MAX_WAIT_THRESHOLD_MINUTES) step="1" inputmode="numeric"
                    value=(value) aria-invalid=[invalid] aria-describedby=(described(&hint_id, error));
                p.hint id=(hint_id) { (hint) }
                (block)
            }
        }
    };
    html! {
        section.card #wait aria-labelledby="wait-title" {
            h2 #wait-title { "Wait thresholds" }
            p { "A patient who has arrived, checked in or been roomed and waits longer than this is marked “Waiting too long” on today's board." }
            @if saved {
                p.notice.done #wait-notice role="status" tabindex="-1" autofocus { "Saved. Today's boards now use these thresholds." }
            }
            (labelled_error_summary("wait-errors", errors, anchor, label))
            form.stack method="post" action=(format!("{PAGE}/wait")) novalidate {
                (csrf_field(p))
                (minutes_field(
                    "default_minutes",
                    html! { "Default (minutes)" },
                    value("default_minutes", Some(stored.default_minutes)),
                    "For every location without its own.",
                ))
                fieldset {
                    legend { "By location" }
                    @for l in dir.active_locations() {
                        @let name = format!("by_location.{}", l.id);
                        (minutes_field(
                            &name,
                            html! { (l.value.name) " (minutes)" },
                            value(&name, stored.by_location.get(&l.id).copied()),
                            "Leave empty to use the default.",
                        ))
                    }
                }
                div.form-actions {
                    button type="submit" { "Save wait thresholds" }
                }
            }
        }
    }
}

/// `POST /admin/rooms/wait`: saves the wait thresholds.
pub async fn save_wait(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let loaded = async {
        let dir = Directory::load(&state, &p.org_id).await?;
        let current: WaitThresholds = state.db.setting(&p.org_id).await?;
        Ok::<_, StoreError>((dir, current))
    };
    let (dir, current) = match loaded.await {
        Ok(l) => l,
        Err(e) => return ops::internal_error(e),
    };
    let thresholds = match read_thresholds(&dir, current, &fields) {
        Ok(t) => t,
        Err(errors) => {
            let back = Back::Wait(fields, errors);
            return render(&state, &p, StatusCode::UNPROCESSABLE_ENTITY, "", Some(back)).await;
        }
    };
    let by_location: Vec<String> = thresholds
        .by_location
        .iter()
        .map(|(id, m)| format!(", {} {m}", dir.location_name(id)))
        .collect();
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.set_setting(&thresholds, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Update, Outcome::Success)
                .resource("OrganizationSetting", Some("wait_thresholds"))
                .detail(format!(
                    "wait thresholds in minutes: default {}{}",
                    thresholds.default_minutes,
                    by_location.concat()
                )),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => Redirect::to(&href(PAGE, &[("saved", WAIT)])).into_response(),
        Err(e) => ops::internal_error(e),
    }
}
