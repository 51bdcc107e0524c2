//! The shell's sections. Sections whose capability is not built yet say what
//! will be there; none shows invented data.

use super::{coming, shell};
use crate::AppState;
use crate::auth::Principal;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use maud::html;

/// Today's board (`ui::board`).
pub use super::board::page as today;

pub async fn home(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    let sections = [
        (
            Area::Today,
            "Today",
            "/today",
            "Today's board: arrivals, check-in, rooms and wait times.",
        ),
        (
            Area::Schedule,
            "Schedule",
            "/schedule",
            "Providers, their locations and the appointment book.",
        ),
        (
            Area::Patients,
            "Patients",
            "/patients",
            "Find, register and review patients.",
        ),
        (
            Area::Worklists,
            "Worklists",
            "/worklists",
            "Tasks, calls to return, forms and coverage to fix.",
        ),
        (
            Area::Reports,
            "Reports",
            "/reports",
            "Wait times, no-shows, utilization and exports.",
        ),
        (
            Area::Admin,
            "Admin",
            "/admin",
            "Staff users, API tokens and the clinic's set-up.",
        ),
        (
            Area::Audit,
            "Audit log",
            "/audit",
            "Who accessed which record, when, and from where.",
        ),
    ];
    shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Home,
        &format!("Welcome, {}", p.display_name),
        html! {
            ul.cards {
                @for (area, label, href, text) in sections {
                    @if p.role.may(area) {
                        li { a href=(href) { strong { (label) } span { (text) } } }
                    }
                }
            }
        },
    )
    .into_response()
}

pub async fn worklists(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Worklists,
        "Worklists",
        coming(
            "Worklists will gather tasks routed to you or your team: calls to return, missing forms and consents, coverage to verify, referrals to schedule and restock requests.",
            "the communications capability",
        ),
    )
    .into_response()
}

pub async fn reports(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Reports,
        "Reports",
        coming(
            "Reports will show wait times, no-show rate, utilization, third-next-available, call volume and satisfaction, with CSV and Excel exports.",
            "the insights capability",
        ),
    )
    .into_response()
}
