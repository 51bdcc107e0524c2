//! Sign-in and sign-out.

use super::{CsrfForm, bare_page, same_origin};
use crate::auth::{
    Principal, SignInError, clear_session_cookie, client_addr, end_session, random_secret,
    resolve_org, secrets_match, session_cookie, sign_in,
};
use crate::{AppState, ops};
use axum::Extension;
use axum::Form;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use carefront_domain::audit::Action;
use maud::html;
use serde::Deserialize;

/// Double-submit token for the sign-in form, which has no session yet.
const LOGIN_CSRF_COOKIE: &str = "cf_login_csrf";

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    signed_out: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    next: Option<String>,
    csrf: String,
}

/// Only same-site pages, so the sign-in page cannot redirect elsewhere. The
/// sign-out address is not a page: an idle tab's sign-out that reaches an
/// already expired session comes back here with `next=/logout`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.starts_with("/logout") =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// "3 seconds", "1 minute", "15 minutes".
fn idle_duration(seconds: i64) -> String {
    let (n, unit) = if seconds < 60 {
        (seconds, "second")
    } else {
        ((seconds + 59) / 60, "minute")
    };
    if n == 1 {
        format!("{n} {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    next: &str,
    username: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let orgs = match state.db.organizations().await {
        Ok(o) => o,
        Err(e) => return ops::internal_error(e),
    };
    let token = random_secret();
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/login")
        .build();
    let page = bare_page(
        "Sign in",
        html! {
            div.signin {
                p.brand-large { "Carefront" }
                h1 { "Sign in" }
                @if let Some(n) = notice {
                    p.notice role="status" { (n) }
                }
                @if let Some(e) = error {
                    p.error #signin-error role="alert" { (e) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    @if orgs.len() > 1 {
                        label for="organization" { "Organization" }
                        select #organization name="organization" required {
                            @for (id, name) in &orgs {
                                option value=(id) { (name) }
                            }
                        }
                    }
                    label for="username" { "Username" }
                    // After a failed attempt the username is kept and the
                    // cursor waits where the retyping starts.
                    input #username name="username" type="text" autocomplete="username"
                        autocapitalize="none" spellcheck="false" required autofocus[username.is_empty()] value=(username)
                        aria-describedby=[error.map(|_| "signin-error")];
                    label for="password" { "Password" }
                    input #password name="password" type="password" autocomplete="current-password" required
                        autofocus[!username.is_empty()] aria-describedby=[error.map(|_| "signin-error")];
                    button type="submit" { "Sign in" }
                }
                @if orgs.is_empty() {
                    p.muted { "No organization exists yet. Run " code { "carefront demo" } " or create one with the CLI." }
                }
            }
        },
    );
    (status, jar.add(cookie), page).into_response()
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    let notice = if q.expired.is_some() {
        Some(format!(
            "You were signed out after {} without activity.",
            idle_duration(state.config.idle_timeout_secs)
        ))
    } else if q.signed_out.is_some() {
        Some("You are signed out.".to_string())
    } else {
        None
    };
    let next = safe_next(q.next.as_deref());
    render(
        &state,
        jar,
        StatusCode::OK,
        &next,
        "",
        notice.as_deref(),
        None,
    )
    .await
}

pub async fn submit(State(state): State<AppState>, jar: CookieJar, req: Request) -> Response {
    let addr = client_addr(&req);
    let same = same_origin(req.headers());
    let Ok(Form(form)) = Form::<LoginForm>::from_request(req, &state).await else {
        return render(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            "/",
            "",
            None,
            Some("Enter your username and password."),
        )
        .await;
    };
    let next = safe_next(form.next.as_deref());
    let cookie_token = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if !same || cookie_token.is_empty() || !secrets_match(&cookie_token, &form.csrf) {
        return render(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &next,
            &form.username,
            None,
            Some("The sign-in form expired. Please try again."),
        )
        .await;
    }
    let result = match resolve_org(&state, form.organization.as_deref()).await {
        Ok(org_id) => sign_in(&state, &org_id, &form.username, &form.password, addr).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(cookie_value) => {
            let jar = jar
                .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/login"))
                .add(session_cookie(&state, cookie_value));
            (jar, Redirect::to(&next)).into_response()
        }
        Err(SignInError::Store(e)) => ops::internal_error(e),
        Err(e) => {
            render(
                &state,
                jar,
                StatusCode::UNAUTHORIZED,
                &next,
                &form.username,
                None,
                Some(&e.to_string()),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    reason: String,
}

/// Ends the session on the server. The idle timer in the page posts
/// `reason=idle`, recorded as an expiry rather than a sign-out.
pub async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<LogoutForm>,
) -> Response {
    let idle = form.reason == "idle";
    let action = if idle {
        Action::SessionExpired
    } else {
        Action::SignOut
    };
    if let Err(e) = end_session(&state, &principal, action).await {
        return ops::internal_error(e);
    }
    let target = if idle {
        "/login?expired=1"
    } else {
        "/login?signed_out=1"
    };
    (clear_session_cookie(jar), Redirect::to(target)).into_response()
}

#[cfg(test)]
mod tests {
    use super::{idle_duration, safe_next};

    #[test]
    fn idle_time_reads_naturally() {
        assert_eq!(idle_duration(3), "3 seconds");
        assert_eq!(idle_duration(1), "1 second");
        assert_eq!(idle_duration(60), "1 minute");
        assert_eq!(idle_duration(15 * 60), "15 minutes");
        assert_eq!(idle_duration(61), "2 minutes");
    }

    #[test]
    fn next_is_a_page_of_ours() {
        assert_eq!(safe_next(Some("/today")), "/today");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/logout")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
