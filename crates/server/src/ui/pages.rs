//! The shell's sections. Sections whose capability is not built yet say what
//! will be there; none shows invented data.

use super::{coming, local_time, shell};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use carefront_domain::directory::Location;
use carefront_store::{Page, now_us};
use maud::html;

const ALL: Page = Page {
    offset: 0,
    count: 1000,
};

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

pub async fn today(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    let locations = match state.db.search::<Location>(&p.org_id, &[], ALL).await {
        Ok((l, _)) => l,
        Err(e) => return ops::internal_error(e),
    };
    let now = now_us();
    shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Today,
        "Today",
        html! {
            h2 { "Locations" }
            table {
                caption.visually-hidden { "Locations and their local time" }
                thead { tr { th scope="col" { "Location" } th scope="col" { "Local time now" } th scope="col" { "Time zone" } th scope="col" { "Address" } } }
                tbody {
                    @for l in &locations {
                        @let tz = jiff::tz::TimeZone::get(&l.value.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
                        tr {
                            td { (l.value.name) }
                            td { (local_time(now, &tz)) }
                            td { (l.value.timezone) }
                            td { (l.value.address.line1) ", " (l.value.address.city) ", " (l.value.address.state) " " (l.value.address.postal_code) }
                        }
                    }
                }
            }
            (coming(
                "Today's board will list every appointment of the day with its patient, provider, status and time waiting, and the rooms board.",
                "the visit-flow capability"
            ))
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
