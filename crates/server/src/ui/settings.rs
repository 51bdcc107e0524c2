//! Organization settings edited by administrators: registration rules.

use super::{CsrfForm, csrf_field, shell};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::patient::RegistrationRules;
use carefront_domain::{Area, ValidationErrors};
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RulesForm {
    #[serde(default)]
    phone_region: String,
    #[serde(default)]
    require_phone: Option<String>,
    #[serde(default)]
    require_email: Option<String>,
    #[serde(default)]
    require_address: Option<String>,
}

fn render(
    state: &AppState,
    p: &Principal,
    status: StatusCode,
    rules: &RegistrationRules,
    errors: &ValidationErrors,
) -> Response {
    let region_error = errors.for_field("phone_region");
    let page = shell(
        p,
        state.config.idle_timeout_secs,
        Area::Admin,
        "Registration rules",
        html! {
            p { "What the front desk must enter to register a patient, and how phone numbers typed without a country code are read." }
            @if let Some(e) = region_error {
                div.error role="alert" { p { "The rules were not saved: phone region " (e) "." } }
            }
            form.stack method="post" action="/admin/registration" {
                (csrf_field(p))
                div.field.invalid[region_error.is_some()] {
                    label for="phone_region" { "Phone region (ISO country code)" }
                    input #phone_region name="phone_region" value=(rules.phone_region) maxlength="2" required
                        aria-invalid=[region_error.map(|_| "true")];
                }
                fieldset {
                    legend { "Required at registration" }
                    @for (name, label, on) in [("require_phone", "At least one phone number", rules.require_phone), ("require_email", "Email address", rules.require_email), ("require_address", "Home address", rules.require_address)] {
                        div.check {
                            input type="checkbox" id=(name) name=(name) value="on" checked[on];
                            label for=(name) { (label) }
                        }
                    }
                    p.muted { "Legal name, date of birth and sex are always required." }
                }
                button type="submit" { "Save rules" }
            }
        },
    );
    (status, page).into_response()
}

pub async fn page(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    match state.db.setting::<RegistrationRules>(&p.org_id).await {
        Ok(rules) => render(&state, &p, StatusCode::OK, &rules, &ValidationErrors::new()),
        Err(e) => ops::internal_error(e),
    }
}

pub async fn save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    CsrfForm(form): CsrfForm<RulesForm>,
) -> Response {
    let typed = RegistrationRules {
        phone_region: form.phone_region,
        require_phone: form.require_phone.is_some(),
        require_email: form.require_email.is_some(),
        require_address: form.require_address.is_some(),
    };
    let rules = match typed.clone().validate() {
        Ok(r) => r,
        Err(errors) => {
            return render(
                &state,
                &p,
                StatusCode::UNPROCESSABLE_ENTITY,
                &typed,
                &errors,
            );
        }
    };
    let saved = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        tx.set_setting(&rules, &p.actor_name).await?;
        tx.audit(
            p.entry(Action::Update, Outcome::Success)
                .resource("OrganizationSetting", Some("registration"))
                .detail(format!(
                    "registration rules: region {}, phone {}, email {}, address {}",
                    rules.phone_region,
                    rules.require_phone,
                    rules.require_email,
                    rules.require_address
                )),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => Redirect::to("/admin/registration").into_response(),
        Err(e) => ops::internal_error(e),
    }
}
