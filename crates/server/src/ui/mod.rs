//! The staff web application: server-rendered HTML (maud escapes every
//! interpolated value), one stylesheet and one small script served from the
//! binary, forms that work without JavaScript.

pub mod admin;
pub mod appointment;
pub mod audit;
pub mod board;
pub mod booking;
pub mod checkin;
pub mod checkout;
pub mod coverage;
pub mod instructions_pdf;
pub mod kiosk;
pub mod kiosk_admin;
pub mod login;
pub mod merge;
pub mod pages;
pub mod patient_summary;
pub mod patients;
pub mod registration;
pub mod room_setup;
pub mod rooms;
pub mod schedule;
pub mod schedule_setup;
pub mod settings;
pub mod slot_finder;
pub mod visit_page;

use crate::AppState;
use crate::auth::{Principal, secrets_match};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use carefront_domain::Area;
use carefront_store::KioskSession;
use maud::{DOCTYPE, Markup, html};
use serde::de::DeserializeOwned;

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::page).post(login::submit))
        .route("/assets/app.css", get(|| asset("text/css", APP_CSS)))
        .route("/assets/app.js", get(|| asset("text/javascript", APP_JS)))
        .route(
            "/assets/kiosk.js",
            get(|| asset("text/javascript", kiosk::KIOSK_JS)),
        )
        .route(
            "/assets/favicon.svg",
            get(|| asset("image/svg+xml", FAVICON)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

fn head(title: &str, stylesheets: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Carefront" }
            link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
            link rel="stylesheet" href="/assets/app.css";
            @for href in stylesheets { link rel="stylesheet" href=(href); }
            script src="/assets/app.js" defer {}
        }
    }
}

/// A page for people who are not signed in.
pub fn bare_page(title: &str, content: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, &[]))
                body.bare {
                    main #main { (content) }
                }
            }
        }
        .into_string(),
    )
}

/// A page inside the staff shell: top bar with the patient search, the
/// navigation this role may use, and the content.
pub fn shell(
    principal: &Principal,
    idle_seconds: i64,
    current: Area,
    title: &str,
    content: Markup,
) -> Html<String> {
    shell_with_styles(principal, idle_seconds, current, title, &[], content)
}

/// [`shell`] with more stylesheets of our own (such as the appointment
/// types' colours, `/schedule/types.css`): the CSP allows no inline style.
pub fn shell_with_styles(
    principal: &Principal,
    idle_seconds: i64,
    current: Area,
    title: &str,
    stylesheets: &[&str],
    content: Markup,
) -> Html<String> {
    let can_search = principal.role.may(Area::Patients);
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, stylesheets))
                body data-idle-seconds=(idle_seconds) {
                    a.skip href="#main" { "Skip to main content" }
                    header.topbar {
                        a.brand href="/" { "Carefront" }
                        @if can_search {
                            form.search role="search" action="/patients" method="get" {
                                label for="global-search" { "Find patient" }
                                input #global-search type="search" name="q" autocomplete="off"
                                    placeholder="Name, date of birth, phone or MRN" aria-keyshortcuts="/";
                                button type="submit" { "Search" }
                            }
                        }
                        div.who {
                            span { (principal.display_name) } " "
                            span.role { (principal.role.label()) }
                        }
                        form #logout-form method="post" action="/logout" {
                            (csrf_field(principal))
                            input type="hidden" name="reason" value="";
                            button type="submit" { "Sign out" }
                        }
                    }
                    nav aria-label="Main" {
                        ul {
                            @for (area, label, href) in Area::NAVIGATION {
                                @if principal.role.may(area) {
                                    li {
                                        @if area == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    main #main tabindex="-1" {
                        h1 { (title) }
                        (content)
                    }
                }
            }
        }
        .into_string(),
    )
}

pub fn csrf_field(principal: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(principal.csrf()); }
}

/// A section that is not built yet says what will be there.
pub fn coming(what: &str, arrives_with: &str) -> Markup {
    html! {
        section.empty aria-label="Not yet available" {
            p { (what) }
            p.muted { "This arrives with " (arrives_with) "." }
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        bare_page(
            title,
            html! {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Go to the start page" } }
            },
        ),
    )
        .into_response()
}

pub fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not permitted",
        "Your role does not give access to this page. The attempt was recorded.",
    )
}

pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

/// The request came from one of our own pages: no cross-site Origin and no
/// cross-site fetch metadata.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|v| v == "cross-site" || v == "same-site") {
        return false;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (None, _) => true,
        // Our pages are served with `Referrer-Policy: no-referrer`, so
        // browsers send `Origin: null` on every form post; the fetch metadata
        // then says where it came from.
        (Some("null"), _) => fetch_site == Some("same-origin"),
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            origin_host == host
        }
        (Some(_), None) => false,
    }
}

/// A form body from a signed-in page (staff, or a kiosk device), accepted
/// only with the session's CSRF token and from our own origin.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let rejected = || {
            error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form could not be accepted (it is from another site or an earlier session). Go back, reload the page and try again.",
            )
        };
        let expected = match (
            parts.extensions.get::<Principal>(),
            parts.extensions.get::<KioskSession>(),
        ) {
            (Some(p), _) => p.csrf().to_string(),
            (None, Some(k)) => k.csrf_token.clone(),
            (None, None) => return Err(rejected()),
        };
        if !same_origin(&parts.headers) {
            return Err(rejected());
        }
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !secrets_match(&token, &expected) {
            return Err(rejected());
        }
        let axum::Form(value) =
            axum::Form::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state)
                .await
                .map_err(|e| {
                    error_page(
                        StatusCode::BAD_REQUEST,
                        "The form could not be read",
                        &e.body_text(),
                    )
                })?;
        Ok(CsrfForm(value))
    }
}

/// Renders a local date and time the way US clinics read them.
pub fn local_time(at_us: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_microsecond(at_us)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%m/%d/%Y %I:%M:%S %p %Z")
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn form_posts_from_our_pages_are_same_origin() {
        let host = ("host", "clinic.example:8080");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://clinic.example:8080")
        ])));
        // What Chromium sends under `Referrer-Policy: no-referrer`.
        assert!(same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn other_sites_and_opaque_origins_are_not() {
        let host = ("host", "clinic.example:8080");
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
    }
}
