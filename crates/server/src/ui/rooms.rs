//! The rooms board of a location (`/today/rooms`): each room's state, since
//! when, the patient in it, and what the staff do with it: mark it cleaned
//! (every item of its kind's cleaning checklist ticked), take it out of
//! service with a reason, bring it back (it then needs cleaning). The
//! domain decides (`RoomState::apply`); a refusal shows its reason and
//! keeps what was ticked or typed.

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
use carefront_domain::visit::{RoomChange, RoomChecklist, RoomStatus};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{BoardRoom, StoreError};
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
}

/// A refused change: the room, why, and what was ticked or typed.
struct Trouble {
    room_id: String,
    message: String,
    done: Vec<String>,
    reason: String,
}

/// `GET /today/rooms`.
pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<RoomsQuery>,
) -> Response {
    let changed = Some(q.room.as_str()).filter(|r| !r.is_empty());
    render(&state, &p, &q.location, changed, None).await
}

async fn render(
    state: &AppState,
    p: &Principal,
    location: &str,
    changed: Option<&str>,
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
    let board = match state.db.room_board(&p.org_id, location_id).await {
        Ok(b) => b,
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
                (r.name) ": " (room_state_text(&r.state.status)) "."
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
                .detail("shown on the rooms board"),
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

/// `POST /today/rooms/{id}`: `change` is `cleaned` (with the ticked
/// `done` items), `out_of_service` (with a `reason`) or `back_in_service`.
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
    };
    render(&state, &p, &room.location_id, None, Some(trouble)).await
}
