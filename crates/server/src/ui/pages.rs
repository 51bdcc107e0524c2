//! The shell's sections. Sections whose capability is not built yet say what
//! will be there; none shows invented data.

use super::{coming, local_time, shell};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use carefront_domain::directory::{Location, Practitioner, PractitionerRole, Specialty, Versioned};
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

pub async fn schedule(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let loaded = async {
        let (practitioners, _) = state.db.search::<Practitioner>(&p.org_id, &[], ALL).await?;
        let (roles, _) = state
            .db
            .search::<PractitionerRole>(&p.org_id, &[], ALL)
            .await?;
        let (locations, _) = state.db.search::<Location>(&p.org_id, &[], ALL).await?;
        Ok::<_, carefront_store::StoreError>((practitioners, roles, locations))
    }
    .await;
    let (practitioners, roles, locations) = match loaded {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let location_name = |id: &str| {
        locations
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.value.name.clone())
            .unwrap_or_default()
    };
    shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Schedule,
        "Schedule",
        html! {
            h2 { "Providers" }
            table {
                caption.visually-hidden { "Providers, specialties and locations" }
                thead { tr { th scope="col" { "Provider" } th scope="col" { "Specialty" } th scope="col" { "Locations" } th scope="col" { "NPI" } } }
                tbody {
                    @for pr in &practitioners {
                        @let mine: Vec<_> = roles.iter().filter(|r| r.value.practitioner_id == pr.id).collect();
                        tr {
                            td { (pr.value.display_name()) }
                            td { (specialties(&mine)) }
                            td { (mine.iter().map(|r| location_name(&r.value.location_id)).collect::<Vec<_>>().join(", ")) }
                            td { (pr.value.npi.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
            (coming(
                "The appointment book will show each provider's day and week with free slots, booking, rescheduling and the waitlist.",
                "the scheduling capability"
            ))
        },
    )
    .into_response()
}

/// The distinct specialties a provider practices, for display.
fn specialties(roles: &[&Versioned<PractitionerRole>]) -> String {
    let mut names: Vec<&str> = roles
        .iter()
        .filter_map(|r| Specialty::by_code(&r.value.specialty))
        .map(|s| s.display)
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
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
