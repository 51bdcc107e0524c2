//! The rooms board of a location (`/today/rooms`): each room's state, since
//! when, the patient in it, and what the staff do with it: mark it cleaned
//! (every item of its kind's cleaning checklist ticked), take it out of
//! service with a reason, bring it back (it then needs cleaning). The
//! domain decides (`RoomState::apply`); a refusal shows its reason and
//! keeps what was ticked or typed.
//!
//! Below the table: the location's open restock tasks, each closed as done
//! or dismissed, and a supply count per room whose kind has par levels
//! (`visit::RoomChecklist`, set up at `/admin/rooms`). A count below par
//! opens or updates the room's restock task, a count at par closes it
//! (`WriteTx::count_supplies`). Neither is a board event: they sit outside
//! the live section, so a reload never drops a count being typed.

use super::board::{
    board_location, capitalized, elapsed, no_location, patient_name, refusal_text, since_text,
};
use super::schedule::{Directory, actor, href, location_field, patients_by_id};
use super::{CsrfForm, error_page, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::Action;
use carefront_domain::directory::Room;
use carefront_domain::visit::{RoomChange, RoomChecklist, RoomStatus, Shortfall, SupplyCount};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{BoardRoom, RestockTask, StoreError, TaskStatus};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

/// "ready", "needs cleaning", "out of service: exam light broken".
pub fn room_state_text(status: &RoomStatus) -> String {
    match status {
        RoomStatus::Ready => "ready".into(),
        RoomStatus::Occupied { .. } => "occupied".into(),
        RoomStatus::NeedsCleaning => "needs cleaning".into(),
        RoomStatus::OutOfService { reason } => format!("out of service: {reason}"),
    }
}

/// The board and rooms tabs of Today, at a location.
pub fn today_nav(current: &str, location_id: &str) -> Markup {
    let at = [("location", location_id)];
    let items = [
        ("board", "Board", href("/today", &at)),
        ("rooms", "Rooms", href("/today/rooms", &at)),
    ];
    html! {
        nav.subnav aria-label="Today views" {
            ul {
                @for (key, label, link) in items {
                    li {
                        @if key == current {
                            a href=(link) aria-current="page" { (label) }
                        } @else {
                            a href=(link) { (label) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RoomsQuery {
    #[serde(default)]
    location: String,
    /// The room just changed.
    #[serde(default)]
    room: String,
    /// What was done to it when not a change of state: `counted` (its
    /// supplies), `done` or `dismissed` (its restock task).
    #[serde(default)]
    done: String,
}

/// A refused change: the room, why, and what was ticked or typed.
#[derive(Default)]
struct Trouble {
    room_id: String,
    message: String,
    done: Vec<String>,
    reason: String,
    /// A refused supply count as typed: (item, on hand).
    counts: Vec<(String, String)>,
    /// The count's errors, at their inputs (`counts.<item>`).
    errors: ValidationErrors,
}

/// `GET /today/rooms`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<RoomsQuery>,
) -> Response {
    let changed = Some(q.room.as_str()).filter(|r| !r.is_empty());
    render(&state, &p, &q.location, changed, &q.done, None).await
}

/// The notice after a change to `r`: its new state, or what `done` says.
fn notice_text(r: &BoardRoom, done: &str, tasks: &[RestockTask]) -> String {
    let name = &r.name;
    match done {
        "counted" => match tasks.iter().find(|t| t.room_id == r.room_id) {
            Some(t) => format!(
                "{name}: supplies counted. Short: {}. The restock task is open.",
                shortfall_text(&t.shortfall)
            ),
            None => format!("{name}: supplies counted, all at par."),
        },
        "done" => format!("{name}: restocked."),
        "dismissed" => format!("{name}: restock task dismissed."),
        _ => format!("{name}: {}.", room_state_text(&r.state.status)),
    }
}

/// "2 Gloves (box), 15 Gauze": what brings the room back to par.
fn shortfall_text(shortfall: &[Shortfall]) -> String {
    let items: Vec<String> = shortfall
        .iter()
        .map(|s| format!("{} {}", s.needed, s.item))
        .collect();
    items.join(", ")
}

async fn render(
    state: &AppState,
    p: &Principal,
    location: &str,
    changed: Option<&str>,
    done: &str,
    trouble: Option<Trouble>,
) -> Response {
    let dir = match Directory::load(state, &p.org_id).await {
        Ok(d) => d,
        Err(e) => return ops::internal_error(e),
    };
    let Some(location) = board_location(&dir, location) else {
        return no_location(state, p, "Rooms");
    };
    let location_id = location.id.as_str();
    let tz = dir.tz(location_id);
    let loaded = async {
        let board = state.db.room_board(&p.org_id, location_id).await?;
        let tasks = state
            .db
            .restock_tasks(&p.org_id, location_id, TaskStatus::Open)
            .await?;
        Ok::<_, StoreError>((board, tasks))
    };
    let (board, tasks) = match loaded.await {
        Ok(l) => l,
        Err(e) => return ops::internal_error(e),
    };
    let occupants = board.rooms.iter().filter_map(|r| r.patient.as_ref());
    let patients = match patients_by_id(state, &p.org_id, occupants.map(|pt| pt.id.clone())).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut checklists: Vec<RoomChecklist> = Vec::new();
    for r in &board.rooms {
        if checklists.iter().all(|c| c.kind != r.kind) {
            match state.db.room_checklist(&p.org_id, r.kind).await {
                Ok(c) => {
                    checklists.push(c.map_or_else(|| RoomChecklist::empty(r.kind), |c| c.value))
                }
                Err(e) => return ops::internal_error(e),
            }
        }
    }
    let now = Timestamp::now();
    let can_change = p.role.may(Area::VisitFlow);
    let name_of = |id: &str| {
        board
            .rooms
            .iter()
            .find(|r| r.room_id == id)
            .map(|r| r.name.clone())
    };
    let notice = changed.and_then(|id| board.rooms.iter().find(|r| r.room_id == id));
    let counted: Vec<(&BoardRoom, &RoomChecklist)> = board
        .rooms
        .iter()
        .filter_map(|r| checklists.iter().find(|c| c.kind == r.kind).map(|c| (r, c)))
        .filter(|(_, c)| !c.supplies.is_empty())
        .collect();
    let status = if trouble.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let src = href("/today/rooms", &[("location", location_id)]);
    let events = href("/today/events", &[("location", location_id)]);
    let content = html! {
        (today_nav("rooms", location_id))
        form.filters.toolbar method="get" action="/today/rooms" {
            (location_field("rooms", &dir, location_id))
            button type="submit" { "Show" }
        }
        h2 #rooms-title { "Rooms at " (location.value.name) }
        @if let Some(t) = &trouble {
            div.error #rooms-error role="alert" tabindex="-1" autofocus {
                p { "Nothing was changed for " (name_of(&t.room_id).unwrap_or_default()) ". " (t.message) }
            }
        } @else if let Some(r) = notice {
            p.notice.done #rooms-notice role="status" tabindex="-1" autofocus {
                (notice_text(r, done, &tasks))
            }
        }
        p #board-live .visually-hidden aria-live="polite" {}
        div #board-section data-live="rooms" data-src=(src) data-events=(events) data-seq=(board.seq)
            data-now=(now.as_millisecond()) {
            @if board.rooms.is_empty() {
                p.empty { "No rooms are set up at " (location.value.name) ". An administrator adds them under Admin › Schedule." }
            } @else {
                div.grid-scroll {
                    table.board.rooms aria-labelledby="rooms-title" {
                        thead { tr {
                            th scope="col" { "Room" } th scope="col" { "Kind" } th scope="col" { "State" }
                            th scope="col" { "Since" } th scope="col" { "Patient" }
                            @if can_change { th scope="col" { "Action" } }
                        } }
                        tbody {
                            @for r in &board.rooms {
                                @let checklist = checklists.iter().find(|c| c.kind == r.kind);
                                @let kept = trouble.as_ref().filter(|t| t.room_id == r.room_id);
                                tr id=(format!("room-{}", r.room_id)) class=[(changed == Some(r.room_id.as_str())).then_some("changed")] {
                                    th scope="row" { (r.name) }
                                    td { (r.kind.label()) }
                                    td { (capitalized(&room_state_text(&r.state.status))) }
                                    td {
                                        span.timer data-since=(r.state.since.as_millisecond()) data-timed="1" { (elapsed(now.duration_since(r.state.since))) }
                                        span.sub { (since_text(&tz, r.state.since, now)) }
                                    }
                                    td {
                                        @if let (Some(pt), RoomStatus::Occupied { appointment_id }) = (&r.patient, &r.state.status) {
                                            a href=(format!("/patients/{}", pt.id)) { (patient_name(pt, &patients)) }
                                            " " a.sub href=(format!("/appointments/{appointment_id}")) { "appointment" }
                                        }
                                    }
                                    @if can_change {
                                        td.c-actions { (actions(p.csrf(), r, checklist, kept)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #restock aria-labelledby="restock-title" {
            h2 #restock-title { "Open restock tasks" }
            @if tasks.is_empty() {
                p.empty { "No supplies are waiting to be restocked at " (location.value.name) "." }
            } @else {
                table {
                    caption.visually-hidden { "Open restock tasks at " (location.value.name) }
                    thead { tr {
                        th scope="col" { "Room" } th scope="col" { "Short" } th scope="col" { "Since" }
                        th scope="col" { "Counted by" }
                        @if can_change { th scope="col" { "Action" } }
                    } }
                    tbody {
                        @for t in &tasks {
                            @let room = name_of(&t.room_id).unwrap_or_else(|| "A removed room".into());
                            tr id=(format!("restock-{}", t.id)) {
                                th scope="row" { (room) }
                                td { ul.plain { @for s in &t.shortfall {
                                    li { strong { (s.needed) } " " (s.item) " " span.hint { "(" (s.on_hand) " of " (s.par) " on hand)" } }
                                } } }
                                td { (since_text(&tz, t.created_at, now)) }
                                td { (t.created_by) }
                                @if can_change {
                                    td { (restock_actions(p.csrf(), location_id, t, &room)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_change && !counted.is_empty() {
            section #counts aria-labelledby="counts-title" {
                h2 #counts-title { "Count supplies" }
                p.hint { "Count what is in the room: supplies below their par level open the room's restock task, a count with everything at par closes it." }
                @for (r, checklist) in &counted {
                    @let kept = trouble.as_ref().filter(|t| t.room_id == r.room_id);
                    (count_form(p.csrf(), r, checklist, kept))
                }
            }
        }
    };
    let mut response = (
        status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Today,
            "Rooms",
            content,
        ),
    )
        .into_response();
    for pt in board.rooms.iter().filter_map(|r| r.patient.as_ref()) {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&pt.id))
                .patient(&pt.id)
                .detail("shown on the rooms board")
                .once_per_window(),
        );
    }
    response
}

/// What can be done with a room in its state.
fn actions(
    csrf: &str,
    r: &BoardRoom,
    checklist: Option<&RoomChecklist>,
    kept: Option<&Trouble>,
) -> Markup {
    let id = &r.room_id;
    let action = format!("/today/rooms/{id}");
    let items = checklist.map(|c| c.cleaning.as_slice()).unwrap_or_default();
    let clean = r.state.status == RoomStatus::NeedsCleaning;
    let out = matches!(
        r.state.status,
        RoomStatus::Ready | RoomStatus::NeedsCleaning
    );
    let reason_id = format!("reason-{id}");
    html! {
        @if clean {
            form.room-clean method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="change" value="cleaned";
                @if items.is_empty() {
                    p.sub { "No cleaning checklist is set up for this kind of room." }
                } @else {
                    fieldset.checks {
                        legend { "Cleaning checklist" span.visually-hidden { " for " (r.name) } }
                        @for (i, item) in items.iter().enumerate() {
                            @let box_id = format!("clean-{id}-{i}");
                            div.tick {
                                input type="checkbox" id=(box_id) name="done" value=(item)
                                    checked[kept.is_some_and(|k| k.done.contains(item))];
                                label for=(box_id) { (item) }
                            }
                        }
                    }
                }
                button id=(format!("cleaned-{id}")) type="submit" { "Mark cleaned" span.visually-hidden { ": " (r.name) } }
            }
        }
        @if out {
            form.room-out method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="change" value="out_of_service";
                label for=(reason_id) { "Reason" span.visually-hidden { " " (r.name) " is out of service" } }
                input id=(reason_id) type="text" name="reason" required maxlength="200"
                    value=(kept.map(|k| k.reason.as_str()).unwrap_or_default());
                button.secondary type="submit" { "Out of service" span.visually-hidden { ": " (r.name) } }
            }
        }
        @if matches!(r.state.status, RoomStatus::OutOfService { .. }) {
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="change" value="back_in_service";
                button id=(format!("back-{id}")) type="submit" { "Back in service" span.visually-hidden { ": " (r.name) } }
            }
        }
    }
}

/// The restock task's buttons: both post to `/today/restock/{id}`.
fn restock_actions(csrf: &str, location_id: &str, t: &RestockTask, room: &str) -> Markup {
    html! {
        form.inline-action method="post" action=(format!("/today/restock/{}", t.id)) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="location" value=(location_id);
            input type="hidden" name="room" value=(t.room_id);
            button type="submit" name="status" value="done" { "Done" span.visually-hidden { ": " (room) " restocked" } }
            " "
            button.secondary type="submit" name="status" value="dismissed" { "Dismiss" span.visually-hidden { " the restock task of " (room) } }
        }
    }
}

/// A room's supply count: a number per supply of its kind, labelled with
/// its par level. Open, with what was typed, when it came back refused.
fn count_form(
    csrf: &str,
    r: &BoardRoom,
    checklist: &RoomChecklist,
    kept: Option<&Trouble>,
) -> Markup {
    let id = &r.room_id;
    html! {
        details id=(format!("count-{id}")) open[kept.is_some()] {
            summary { (r.name) " " span.hint { "(" (r.kind.label()) ")" } }
            form.stack method="post" action=(format!("/today/rooms/{id}")) novalidate {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="change" value="count";
                fieldset {
                    legend { "On hand in " (r.name) }
                    div.row {
                        @for (i, s) in checklist.supplies.iter().enumerate() {
                            @let input = format!("count-{id}-{i}");
                            @let error_id = format!("{input}-error");
                            @let typed = kept.and_then(|k| k.counts.iter().find(|(item, _)| item == &s.item));
                            @let error = kept.and_then(|k| k.errors.for_field(&format!("counts.{}", s.item)));
                            div.field.w-s.invalid[error.is_some()] {
                                label for=(input) { (s.item) " " span.hint { "(par " (s.par) ")" } }
                                input type="hidden" name="item" value=(s.item);
                                input id=(input) type="number" name="on_hand" min="0" step="1" inputmode="numeric" required
                                    value=[typed.map(|(_, v)| v)]
                                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| &error_id)];
                                @if let Some(e) = error {
                                    p.field-error id=(error_id) { (e) "." }
                                }
                            }
                        }
                    }
                }
                button type="submit" { "Save count" span.visually-hidden { " of " (r.name) } }
            }
        }
    }
}

/// `POST /today/rooms/{id}`: `change` is `cleaned` (with the ticked
/// `done` items), `out_of_service` (with a `reason`), `back_in_service`,
/// or `count` (each supply's `item` with its `on_hand`).
pub async fn change(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let room = match state.db.get::<Room>(&p.org_id, &id).await {
        Ok(r) => r.value,
        Err(StoreError::NotFound | StoreError::Gone) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Room not found",
                "There is no room at this address. Go back to the rooms board.",
            );
        }
        Err(e) => return ops::internal_error(e),
    };
    let text = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if text("change") == "count" {
        return count(&state, &p, &room, id, &fields).await;
    }
    let done: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "done")
        .map(|(_, v)| v.clone())
        .collect();
    let reason = text("reason");
    let change = match text("change").as_str() {
        "cleaned" => Some(RoomChange::Cleaned { done: done.clone() }),
        "out_of_service" => Some(RoomChange::OutOfService {
            reason: reason.clone(),
        }),
        "back_in_service" => Some(RoomChange::BackInService),
        _ => None,
    };
    let result = match &change {
        Some(change) => {
            async {
                let mut tx = state.db.begin(&p.org_id).await?;
                tx.change_room(&id, change, &actor(&p), Timestamp::now())
                    .await?;
                tx.commit().await
            }
            .await
        }
        None => Err(StoreError::Invalid(ValidationErrors::single(
            "change",
            "choose one of the room's buttons",
        ))),
    };
    let message = match result {
        Ok(()) => {
            let back = href(
                "/today/rooms",
                &[("location", &room.location_id), ("room", &id)],
            );
            return Redirect::to(&back).into_response();
        }
        Err(StoreError::Invalid(e)) => refusal_text(&e),
        Err(e) => return ops::internal_error(e),
    };
    let trouble = Trouble {
        room_id: id,
        message,
        done,
        reason,
        ..Trouble::default()
    };
    render(&state, &p, &room.location_id, None, "", Some(trouble)).await
}

/// A supply count posted from the board: every supply's `on_hand` is a
/// whole number (an error names its item), then the store compares them
/// with the par levels.
async fn count(
    state: &AppState,
    p: &Principal,
    room: &Room,
    id: String,
    fields: &[(String, String)],
) -> Response {
    let items = fields.iter().filter(|(k, _)| k == "item");
    let on_hand = fields.iter().filter(|(k, _)| k == "on_hand");
    let typed: Vec<(String, String)> = items
        .zip(on_hand)
        .map(|((_, item), (_, n))| (item.clone(), n.trim().to_string()))
        .collect();
    let mut errors = ValidationErrors::new();
    let mut counts = Vec::new();
    for (item, on_hand) in &typed {
        let field = format!("counts.{item}");
        match on_hand.parse() {
            Ok(on_hand) => counts.push(SupplyCount {
                item: item.clone(),
                on_hand,
            }),
            Err(_) if on_hand.is_empty() => errors.add(
                field,
                format!("{item}: enter how many are there (0 if none)"),
            ),
            Err(_) => errors.add(field, format!("{item}: “{on_hand}” is not a whole number")),
        }
    }
    let result = match errors.is_empty() {
        true => {
            async {
                let mut tx = state.db.begin(&p.org_id).await?;
                tx.count_supplies(&id, &counts, &actor(p), Timestamp::now())
                    .await?;
                tx.commit().await
            }
            .await
        }
        false => Err(StoreError::Invalid(errors)),
    };
    let errors = match result {
        Ok(()) => {
            let back = href(
                "/today/rooms",
                &[
                    ("location", &room.location_id),
                    ("room", &id),
                    ("done", "counted"),
                ],
            );
            return Redirect::to(&back).into_response();
        }
        Err(StoreError::Invalid(e)) => e,
        Err(e) => return ops::internal_error(e),
    };
    let trouble = Trouble {
        room_id: id,
        message: refusal_text(&errors),
        counts: typed,
        errors,
        ..Trouble::default()
    };
    render(state, p, &room.location_id, None, "", Some(trouble)).await
}

#[derive(Debug, Default, Deserialize)]
pub struct RestockForm {
    /// `done` or `dismissed`.
    #[serde(default)]
    status: String,
    /// The board to go back to, and the task's room (for a refusal).
    #[serde(default)]
    location: String,
    #[serde(default)]
    room: String,
}

/// `POST /today/restock/{id}`: closes an open restock task as done or
/// dismissed (audited by the store); one closed meanwhile is refused.
pub async fn close_restock(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RestockForm>,
) -> Response {
    let status = match form.status.as_str() {
        "done" => Some(TaskStatus::Done),
        "dismissed" => Some(TaskStatus::Dismissed),
        _ => None,
    };
    let result = match status {
        Some(status) => {
            async {
                let mut tx = state.db.begin(&p.org_id).await?;
                let task = tx
                    .close_restock_task(&id, status, &actor(&p), Timestamp::now())
                    .await?;
                tx.commit().await?;
                Ok(task)
            }
            .await
        }
        None => Err(StoreError::Invalid(ValidationErrors::single(
            "status",
            "choose Done or Dismiss",
        ))),
    };
    let message = match result {
        Ok(task) => {
            let back = href(
                "/today/rooms",
                &[
                    ("location", &form.location),
                    ("room", &task.room_id),
                    ("done", &form.status),
                ],
            );
            return Redirect::to(&back).into_response();
        }
        Err(StoreError::Invalid(e)) => refusal_text(&e),
        Err(StoreError::Conflict(m)) => format!("{}.", capitalized(&m)),
        Err(StoreError::NotFound) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Restock task not found",
                "There is no restock task at this address. Go back to the rooms board.",
            );
        }
        Err(e) => return ops::internal_error(e),
    };
    let trouble = Trouble {
        room_id: form.room,
        message,
        ..Trouble::default()
    };
    render(&state, &p, &form.location, None, "", Some(trouble)).await
}
