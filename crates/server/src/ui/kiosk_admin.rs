//! Admin → Kiosks: turning a tablet into a location's self check-in kiosk,
//! and signing kiosks out.
//!
//! A kiosk is set up on the device itself: an administrator signs in on the
//! tablet and starts the kiosk there. The tablet gets the kiosk's own
//! credential (the `cf_kiosk` cookie, sent only to `/kiosk`) and the
//! administrator's session ends, so nothing of theirs stays on a screen in
//! the entrance.

use super::kiosk::kiosk_cookie;
use super::schedule::{Directory, actor};
use super::{CsrfForm, csrf_field, error_page, shell};
use crate::auth::{Principal, clear_session_cookie, end_session, random_secret, sha256_hex};
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use carefront_domain::audit::Action;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{KioskDevice, StoreError};
use jiff::Timestamp;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewKiosk {
    name: String,
    location_id: String,
}

fn when(at_us: Option<i64>, dir: &Directory, location_id: &str) -> String {
    at_us
        .map(|us| super::local_time(us, &dir.tz(location_id)))
        .unwrap_or_else(|| "never".into())
}

async fn render(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    typed: &NewKiosk,
    errors: &ValidationErrors,
) -> Response {
    let loaded = async {
        let dir = Directory::load(state, &p.org_id).await?;
        let kiosks = state.db.kiosks(&p.org_id).await?;
        Ok::<_, StoreError>((dir, kiosks))
    };
    let (dir, kiosks) = match loaded.await {
        Ok(l) => l,
        Err(e) => return ops::internal_error(e),
    };
    let name_error = errors.for_field("name");
    let location_error = errors.for_field("location_id");
    let live: Vec<&KioskDevice> = kiosks
        .iter()
        .filter(|k| k.revoked_at_us.is_none())
        .collect();
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Admin,
        "Kiosks",
        html! {
            p { "A kiosk lets patients check themselves in at a location's entrance: they find their appointment with their name and date of birth, confirm their contact details and sign the consent, and the board shows them as arrived (kiosk). A kiosk sees no staff pages." }
            section aria-labelledby="kiosks-live" {
                h2 #kiosks-live { "Signed-in kiosks" }
                @if live.is_empty() {
                    p.muted { "No kiosk is signed in." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Kiosk" } th scope="col" { "Location" } th scope="col" { "Started" } th scope="col" { "Last check-in" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for k in &live {
                                tr {
                                    td { (k.name) }
                                    td { (dir.location_name(&k.location_id)) }
                                    td { (when(Some(k.created_at_us), &dir, &k.location_id)) " by " (k.created_by) }
                                    td { (when(k.last_used_us, &dir, &k.location_id)) }
                                    td {
                                        form method="post" action=(format!("/admin/kiosks/{}/revoke", k.id)) {
                                            (csrf_field(p))
                                            button.secondary type="submit" { "Sign out" span.visually-hidden { " kiosk " (k.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="kiosk-new" {
                h2 #kiosk-new { "Start a kiosk on this device" }
                p { "Do this on the tablet that will stand in the entrance. You will be signed out, and this browser becomes the kiosk until it is signed out here." }
                @if !errors.is_empty() {
                    div.error role="alert" { p { "The kiosk was not started: see the marked fields." } }
                }
                form.stack method="post" action="/admin/kiosks" novalidate {
                    (csrf_field(p))
                    div.field.invalid[name_error.is_some()] {
                        label for="kiosk-name" { "Name " span.req { "required" } }
                        input #kiosk-name name="name" value=(typed.name) maxlength="60" required
                            placeholder="Main entrance" aria-invalid=[name_error.map(|_| "true")]
                            aria-describedby=[name_error.map(|_| "kiosk-name-error")];
                        @if let Some(e) = name_error { p.field-error #kiosk-name-error { "Name " (e) "." } }
                    }
                    div.field.invalid[location_error.is_some()] {
                        label for="kiosk-location" { "Location" }
                        select #kiosk-location name="location_id" aria-invalid=[location_error.map(|_| "true")]
                            aria-describedby=[location_error.map(|_| "kiosk-location-error")] {
                            @for l in dir.active_locations() {
                                option value=(l.id) selected[l.id == typed.location_id] { (l.value.name) }
                            }
                        }
                        @if let Some(e) = location_error { p.field-error #kiosk-location-error { "Location " (e) "." } }
                    }
                    button type="submit" { "Start the kiosk on this device" }
                }
            }
        },
    );
    (status, page).into_response()
}

/// `GET /admin/kiosks`.
pub async fn page(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    render(
        &state,
        &p,
        StatusCode::OK,
        &NewKiosk::default(),
        &ValidationErrors::new(),
    )
    .await
}

/// `POST /admin/kiosks`: registers a kiosk, hands this browser its
/// credential and ends the administrator's session here.
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<NewKiosk>,
) -> Response {
    let secret = random_secret();
    let created = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.create_kiosk(
            &form.name,
            &form.location_id,
            &sha256_hex(&secret),
            &random_secret(),
            &actor(&p),
            Timestamp::now(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match created {
        Ok(()) => {}
        Err(StoreError::Invalid(errors)) => {
            return render(&state, &p, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await;
        }
        Err(e) => return ops::internal_error(e),
    }
    if let Err(e) = end_session(&state, &p, Action::SignOut).await {
        return ops::internal_error(e);
    }
    let jar = clear_session_cookie(jar).add(kiosk_cookie(&state, format!("{}.{secret}", p.org_id)));
    (jar, Redirect::to("/kiosk")).into_response()
}

/// `POST /admin/kiosks/{id}/revoke`: the kiosk's credential stops working.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let revoked = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.revoke_kiosk(&id, &actor(&p), Timestamp::now()).await?;
        tx.commit().await
    }
    .await;
    match revoked {
        // Already signed out: the list shows it gone either way.
        Ok(()) | Err(StoreError::Conflict(_)) => Redirect::to("/admin/kiosks").into_response(),
        Err(StoreError::NotFound) => error_page(
            StatusCode::NOT_FOUND,
            "Kiosk not found",
            "There is no kiosk at this address. Go back to Admin → Kiosks.",
        ),
        Err(e) => ops::internal_error(e),
    }
}
