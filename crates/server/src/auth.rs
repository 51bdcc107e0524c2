//! Who is asking: staff sessions (cookie) and API bearer tokens.
//!
//! Secrets handed out (session cookies, API tokens) carry the organization
//! id before a random part; only a SHA-256 of the random part is stored, so a
//! copy of the database cannot be replayed as credentials.

use crate::{AppState, ops};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::security::session_expired;
use carefront_store::{Session, StoreError, User, new_id, now_us};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "cf_session";
pub const TOKEN_PREFIX: &str = "cft_";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org_id: String,
    pub actor_id: String,
    pub actor_name: String,
    pub display_name: String,
    pub role: Role,
    pub via: Via,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session { token_hash: String, csrf: String },
    Token,
}

impl Principal {
    /// An audit entry with who, role and where already filled in.
    pub fn entry(&self, action: Action, outcome: Outcome) -> AuditEntry {
        let mut e = AuditEntry::new(self.actor_name.clone(), action, outcome);
        e.actor_id = Some(self.actor_id.clone());
        e.role = Some(self.role.code().to_string());
        e.client_addr = self.client_addr.clone();
        if matches!(self.via, Via::Token) {
            e.detail = Some("api token".into());
        }
        e
    }

    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing with default parameters cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Verifying against this when the username is unknown keeps the response
/// time the same, so timing does not reveal which usernames exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password for unknown users"))
}

pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time comparison for secrets.
pub fn secrets_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) fn split_credential(value: &str) -> Option<(&str, &str)> {
    let (org, secret) = value.split_once('.')?;
    (!org.is_empty() && secret.len() == 64).then_some((org, secret))
}

pub fn client_addr(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Deliberately silent about which of username or password was wrong.
    #[error("The username or password is not correct.")]
    BadCredentials,
    #[error(
        "This account is locked after repeated failed sign-ins. Try again later or ask an administrator."
    )]
    Locked,
    #[error("Choose your organization.")]
    OrganizationRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The organization a sign-in is for: the only one on this database, or the
/// one the form named.
pub async fn resolve_org(state: &AppState, chosen: Option<&str>) -> Result<String, SignInError> {
    let orgs = state.db.organizations().await?;
    match (orgs.as_slice(), chosen.filter(|c| !c.is_empty())) {
        ([(only, _)], _) => Ok(only.clone()),
        (_, Some(c)) => orgs
            .iter()
            .find(|(id, _)| id == c)
            .map(|(id, _)| id.clone())
            .ok_or(SignInError::OrganizationRequired),
        _ => Err(SignInError::OrganizationRequired),
    }
}

/// Checks credentials, applies the lockout policy, audits the attempt and on
/// success opens a session. Returns the cookie value.
pub async fn sign_in(
    state: &AppState,
    org_id: &str,
    username: &str,
    password: &str,
    client_addr: Option<String>,
) -> Result<String, SignInError> {
    let username = username.trim().to_lowercase();
    let policy = state.config.lockout;
    let user = state.db.user_by_username(org_id, &username).await?;
    let now = now_us();
    let mut attempt = AuditEntry::new(username.clone(), Action::SignIn, Outcome::Success);
    attempt.client_addr = client_addr.clone();
    let Some(user) = user.filter(|u| u.active) else {
        verify_password(password, decoy_hash());
        attempt.action = Action::SignInFailed;
        attempt.outcome = Outcome::Denied;
        state
            .db
            .audit(org_id, attempt.detail("unknown or inactive user"))
            .await?;
        return Err(SignInError::BadCredentials);
    };
    attempt.actor_id = Some(user.id.clone());
    attempt.role = Some(user.role.code().to_string());
    if policy.is_locked(user.locked_until_us, now) {
        attempt.action = Action::SignInFailed;
        attempt.outcome = Outcome::Denied;
        state
            .db
            .audit(org_id, attempt.detail("account locked"))
            .await?;
        return Err(SignInError::Locked);
    }
    if !verify_password(password, &user.password_hash) {
        let mut tx = state.db.begin(org_id).await?;
        let previous = tx.count_sign_in_failure(&user.id).await?;
        let after = policy.after_failure(previous, now);
        tx.set_sign_in_failures(&user.id, after).await?;
        let mut failed = attempt.clone();
        failed.action = Action::SignInFailed;
        failed.outcome = Outcome::Denied;
        tx.audit(failed.detail("wrong password")).await?;
        if after.locked_until_us.is_some() {
            let mut locked = attempt;
            locked.action = Action::AccountLocked;
            tx.audit(locked.detail(format!(
                "locked for {} s after {} failures",
                policy.lock_seconds, policy.max_failures
            )))
            .await?;
        }
        tx.commit().await?;
        return Err(if after.locked_until_us.is_some() {
            SignInError::Locked
        } else {
            SignInError::BadCredentials
        });
    }
    let secret = random_secret();
    let session = Session {
        org_id: org_id.to_string(),
        token_hash: sha256_hex(&secret),
        user_id: user.id.clone(),
        csrf_token: random_secret(),
        created_at_us: now,
        last_seen_us: now,
    };
    let mut tx = state.db.begin(org_id).await?;
    tx.set_sign_in_failures(
        &user.id,
        carefront_domain::security::FailureOutcome {
            failed_count: 0,
            locked_until_us: None,
        },
    )
    .await?;
    tx.create_session(&session, client_addr.as_deref()).await?;
    tx.audit(attempt).await?;
    tx.commit().await?;
    Ok(format!("{org_id}.{secret}"))
}

pub fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/")
        .build()
}

pub fn clear_session_cookie(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(SESSION_COOKIE).path("/"))
}

fn principal_for(user: &User, via: Via, client_addr: Option<String>) -> Principal {
    Principal {
        org_id: user.org_id.clone(),
        actor_id: user.id.clone(),
        actor_name: user.username.clone(),
        display_name: user.display_name.clone(),
        role: user.role,
        via,
        client_addr,
    }
}

/// Ends the session behind a cookie, auditing why.
pub async fn end_session(
    state: &AppState,
    principal: &Principal,
    action: Action,
) -> Result<(), StoreError> {
    if let Via::Session { token_hash, .. } = &principal.via {
        let mut tx = state.db.begin(&principal.org_id).await?;
        tx.delete_session(token_hash).await?;
        tx.audit(principal.entry(action, Outcome::Success)).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Middleware for staff pages: resolves the session cookie into a
/// [`Principal`], ends idle sessions, and sends everyone else to sign-in.
pub async fn require_session(
    State(state): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let addr = client_addr(&req);
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let to_sign_in = |reason: &str| {
        let next_param: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        let location = format!("/login?{reason}next={next_param}");
        (clear_session_cookie(jar.clone()), Redirect::to(&location)).into_response()
    };
    let Some((org_id, secret)) = jar
        .get(SESSION_COOKIE)
        .and_then(|c| split_credential(c.value()).map(|(o, s)| (o.to_string(), s.to_string())))
    else {
        return to_sign_in("");
    };
    let token_hash = sha256_hex(&secret);
    let found = match state.db.session(&org_id, &token_hash).await {
        Ok(found) => found,
        Err(e) => return ops::internal_error(e),
    };
    let Some((session, user)) = found else {
        return to_sign_in("");
    };
    let principal = principal_for(
        &user,
        Via::Session {
            token_hash: token_hash.clone(),
            csrf: session.csrf_token.clone(),
        },
        addr,
    );
    let now = now_us();
    if session_expired(session.last_seen_us, now, state.config.idle_timeout_secs) {
        if let Err(e) = end_session(&state, &principal, Action::SessionExpired).await {
            return ops::internal_error(e);
        }
        return to_sign_in("expired=1&");
    }
    // Refresh the idle clock at most every few seconds to spare the writer.
    let refresh_every_us = (state.config.idle_timeout_secs * 1_000_000 / 10).min(15_000_000);
    if now - session.last_seen_us >= refresh_every_us
        && let Err(e) = state.db.touch_session(&org_id, &token_hash, now).await
    {
        return ops::internal_error(e);
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("the request needs an 'Authorization: Bearer' API token")]
    Missing,
    #[error("the API token is not valid or was revoked")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves an `Authorization: Bearer cft_...` header. Failed attempts that
/// name a real organization are audited there.
pub async fn authenticate_bearer(
    state: &AppState,
    headers: &HeaderMap,
    client_addr: Option<String>,
) -> Result<Principal, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(BearerError::Missing)?;
    let (org_id, secret) = value
        .trim()
        .strip_prefix(TOKEN_PREFIX)
        .and_then(split_credential)
        .ok_or(BearerError::Invalid)?;
    match state.db.token_by_hash(org_id, &sha256_hex(secret)).await? {
        Some(token) => Ok(Principal {
            org_id: token.org_id,
            actor_id: token.id,
            actor_name: format!("token:{}", token.name),
            display_name: token.name,
            role: token.role,
            via: Via::Token,
            client_addr,
        }),
        None => {
            let orgs = state.db.organizations().await?;
            if orgs.iter().any(|(id, _)| id == org_id) {
                let mut e = AuditEntry::new("token:unknown", Action::TokenUse, Outcome::Denied);
                e.client_addr = client_addr;
                state
                    .db
                    .audit(org_id, e.detail("invalid or revoked token"))
                    .await?;
            }
            Err(BearerError::Invalid)
        }
    }
}

/// Creates an API token for a role; returns the secret to hand out once.
pub async fn issue_token(
    db: &carefront_store::Db,
    org_id: &str,
    name: &str,
    role: Role,
    actor: AuditEntry,
) -> Result<(carefront_store::ApiToken, String), StoreError> {
    let secret = random_secret();
    let mut tx = db.begin(org_id).await?;
    let token = tx
        .create_token(&new_id(), name, role, &sha256_hex(&secret))
        .await?;
    tx.audit(
        actor
            .resource("ApiToken", Some(&token.id))
            .detail(format!("token '{name}' for role {role}")),
    )
    .await?;
    tx.commit().await?;
    Ok((token, format!("{TOKEN_PREFIX}{org_id}.{secret}")))
}
