//! Administration: staff users and API tokens, with links to the
//! organization's settings and scheduling setup.

use super::{CsrfForm, csrf_field, local_time, shell};
use crate::auth::{Principal, hash_password};
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::security::{check_password, check_username};
use carefront_domain::validation::required_text;
use carefront_domain::{Area, Role, ValidationErrors};
use carefront_store::{NewUser, StoreError, new_id};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// Parses and checks a new user; every problem names its field.
pub fn validate_new_user(form: &NewUserForm) -> Result<(NewUser, String), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let username = check_username(&form.username).unwrap_or_else(|e| {
        errors.add("username", e.for_field("username").unwrap_or_default());
        String::new()
    });
    let display_name = required_text(&mut errors, "display_name", &form.display_name, 100);
    let role = form.role.parse::<Role>().ok();
    if role.is_none() {
        errors.add("role", "choose a role");
    }
    if let Err(e) = check_password(&form.password) {
        errors.add("password", e.for_field("password").unwrap_or_default());
    }
    let role = role.unwrap_or(Role::FrontDesk);
    errors.into_result((
        NewUser {
            username,
            display_name,
            role,
            password_hash: String::new(),
        },
        form.password.clone(),
    ))
}

/// The label of a field of the new-user form.
fn label(name: &str) -> &str {
    match name {
        "username" => "Username",
        "display_name" => "Full name",
        "role" => "Role",
        "password" => "Initial password",
        other => other,
    }
}

fn field(errors: &ValidationErrors, name: &str, input: Markup) -> Markup {
    let label = label(name);
    let error = errors.for_field(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(format!("new-{name}")) { (label) }
            (input)
            @if let Some(e) = error {
                p.field-error id=(format!("new-{name}-error")) { (label) " " (e) "." }
            }
        }
    }
}

async fn render(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    form: &NewUserForm,
    errors: &ValidationErrors,
) -> Response {
    let loaded = async {
        Ok::<_, StoreError>((
            state.db.users(&p.org_id).await?,
            state.db.tokens(&p.org_id).await?,
        ))
    }
    .await;
    let (users, tokens) = match loaded {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let payers = match super::coverage::payer_directory(state, p).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let tz = jiff::tz::TimeZone::system();
    let described = |name: &str| errors.for_field(name).map(|_| format!("new-{name}-error"));
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Admin,
        "Admin",
        html! {
            p { a href="/admin/registration" { "Registration rules" } ": what the front desk must enter to register a patient." }
            p { a href="/admin/kiosks" { "Kiosks" } ": self check-in tablets at each location's entrance." }
            p { a href="/admin/instructions" { "Post-visit instructions" } ": what patients take home after each appointment type, and the follow-up it suggests." }
            p { a href="/admin/rooms" { "Rooms and supplies" } ": cleaning checklists and supply par levels for each kind of room, and how long patients may wait before the board flags them." }
            p { a href="/admin/schedule" { "Scheduling setup" } ": providers' weekly templates, time off, holidays, blocked time, extra sessions and appointment types." }
            h2 { "Staff users" }
            table {
                caption.visually-hidden { "Staff users" }
                thead { tr { th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Status" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.username) }
                            td { (u.display_name) }
                            td { (u.role.label()) }
                            td {
                                @if !u.active { "Inactive" }
                                @else if state.config.lockout.is_locked(u.locked_until_us, carefront_store::now_us()) { "Locked" }
                                @else { "Active" }
                            }
                        }
                    }
                }
            }
            h2 #add-user { "Add a staff user" }
            @if !errors.is_empty() {
                // Focused on load, so the reason the form came back is seen
                // (and read out) even though the form is below the fold.
                div.error #add-user-errors role="alert" tabindex="-1" autofocus {
                    p { "The user was not added. Please correct:" }
                    ul { @for e in errors.errors() { li { a href=(format!("#new-{}", e.field)) { (label(&e.field)) " " (e.message) } } } }
                }
            }
            form.stack method="post" action="/admin/users" novalidate {
                (csrf_field(p))
                (field(errors, "username", html! {
                    input #new-username name="username" type="text" autocomplete="off" required value=(form.username)
                        aria-invalid=[errors.for_field("username").map(|_| "true")] aria-describedby=[described("username")];
                }))
                (field(errors, "display_name", html! {
                    input #new-display_name name="display_name" type="text" required value=(form.display_name)
                        aria-invalid=[errors.for_field("display_name").map(|_| "true")] aria-describedby=[described("display_name")];
                }))
                (field(errors, "role", html! {
                    select #new-role name="role" required
                        aria-invalid=[errors.for_field("role").map(|_| "true")] aria-describedby=[described("role")] {
                        option value="" { "Choose…" }
                        @for r in Role::ALL {
                            option value=(r.code()) selected[form.role == r.code()] { (r.label()) }
                        }
                    }
                }))
                (field(errors, "password", html! {
                    input #new-password name="password" type="password" autocomplete="new-password" required
                        aria-invalid=[errors.for_field("password").map(|_| "true")] aria-describedby=[described("password")];
                }))
                button type="submit" { "Add user" }
            }
            h2 { "API tokens" }
            p.muted { "Create and revoke tokens with " code { "carefront token create" } " and " code { "carefront token revoke" } "." }
            table {
                caption.visually-hidden { "API tokens" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "Status" } } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { (t.name) }
                            td { (t.role.label()) }
                            td { (local_time(t.created_at_us, &tz)) }
                            td { @if t.revoked_at_us.is_some() { "Revoked" } @else { "Active" } }
                        }
                    }
                }
            }
            (payers)
        },
    );
    (status, page).into_response()
}

pub async fn page(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    render(
        &state,
        &p,
        StatusCode::OK,
        &NewUserForm::default(),
        &ValidationErrors::new(),
    )
    .await
}

pub async fn add_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> Response {
    let (mut new, password) = match validate_new_user(&form) {
        Ok(v) => v,
        Err(errors) => {
            return render(&state, &p, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await;
        }
    };
    new.password_hash = hash_password(&password);
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let user = tx.create_user(&new_id(), &new).await?;
        tx.audit(
            p.entry(Action::UserCreate, Outcome::Success)
                .resource("User", Some(&user.id))
                .detail(format!("added {} as {}", user.username, user.role)),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(StoreError::Conflict(_)) => {
            let errors = ValidationErrors::single("username", "is already taken");
            render(&state, &p, StatusCode::CONFLICT, &form, &errors).await
        }
        Err(e) => ops::internal_error(e),
    }
}
