//! FHIR R4 (4.0.1) API at `/fhir/R4`, JSON only.
//!
//! Request flow: `check_format` (`_format`, 406) → `authenticate` (bearer
//! token → [`Principal`], 401) → `audit::record` → handler. Every handler
//! runs through [`finish`]: reads, searches and every failure or refusal are
//! audited from the note it attaches; successful writes append their audit
//! event in the transaction that writes the data, and mark their response
//! so they are not audited twice. `GET /metadata` needs no token.
//!
//! Adding a resource type: implement [`resource::FhirResource`] for its
//! store record and add it to [`routes`]; routes, search and the
//! CapabilityStatement follow.

mod bundle;
mod capability;
mod json;
pub(crate) mod operations;
mod outcome;
mod resource;
mod resources;
mod search;

use crate::AppState;
use crate::audit::{self, AuditNote};
use crate::auth::{BearerError, Principal, authenticate_bearer, client_addr};
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Practitioner, PractitionerRole};
use outcome::FhirError;
use serde_json::Value;

pub use outcome::Issue;
pub use resources::location::TIMEZONE_EXTENSION;
/// The one reading of a FHIR Patient (create, update, `carefront import`).
pub use resources::patient::{FhirPatient, patient_from_fhir};

pub const BASE_PATH: &str = "/fhir/R4";
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Routes and CapabilityStatement entries, registered together so the
/// statement lists exactly what is served.
struct Api {
    router: Router<AppState>,
    resources: Vec<Value>,
}

impl Api {
    fn resource<R: resource::FhirResource>(mut self) -> Self {
        self.router = resource::register::<R>(self.router);
        self.resources.push(capability::record_entry::<R>());
        self
    }

    /// The tenant and the payer directory, both served as Organization.
    fn organizations(mut self) -> Self {
        self.router = resources::payer::register(self.router);
        self.resources.push(resources::payer::capability_entry());
        self
    }

    /// Clinic sites and, read-only, their rooms.
    fn locations(mut self) -> Self {
        self.router = resources::location::register(self.router);
        self.resources.push(resources::location::capability_entry());
        self
    }

    /// Patient (with its own create and update, and `$match`) and the
    /// RelatedPerson view of its contacts.
    fn patients(mut self) -> Self {
        self.router = resources::patient::register(self.router);
        self.resources.push(resources::patient::capability_entry());
        self.router = resources::related_person::register(self.router);
        self.resources
            .push(resources::related_person::capability_entry());
        self
    }

    /// Scheduling (IHE ITI Scheduling): appointment types as
    /// HealthcareService, the derived Schedule and Slot, and Appointment
    /// with `$find`, `$hold` and `$book`.
    fn scheduling(mut self) -> Self {
        self.router = resources::healthcare_service::register(self.router);
        self.resources
            .push(resources::healthcare_service::capability_entry());
        self.router = resources::schedule::register(self.router);
        self.resources.push(resources::schedule::capability_entry());
        self.router = resources::slot::register(self.router);
        self.resources.push(resources::slot::capability_entry());
        self.router = resources::appointment::register(self.router);
        self.resources
            .push(resources::appointment::capability_entry());
        self
    }

    /// The visit flow: each appointment's visit as a read-only Encounter.
    fn visits(mut self) -> Self {
        self.router = resources::encounter::register(self.router);
        self.resources
            .push(resources::encounter::capability_entry());
        self
    }

    fn audit_events(mut self) -> Self {
        self.router = resources::audit_event::register(self.router);
        self.resources
            .push(resources::audit_event::capability_entry());
        self
    }
}

pub fn routes(state: AppState) -> Router<AppState> {
    let api = Api {
        router: Router::new(),
        resources: Vec::new(),
    }
    .organizations()
    .locations()
    .resource::<Practitioner>()
    .resource::<PractitionerRole>()
    .patients()
    .resource::<carefront_domain::coverage::Coverage>()
    .scheduling()
    .visits()
    .audit_events();
    let statement = std::sync::Arc::new(capability::statement(api.resources));
    let protected = api
        .router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), audit::record))
        .layer(from_fn_with_state(state, authenticate));
    let open = Router::new()
        .route(
            "/metadata",
            get(move |base: Base| async move { capability::respond(&statement, &base.0) }),
        )
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest(
        BASE_PATH,
        open.merge(protected).layer(from_fn(check_format)),
    )
}

/// A JSON body with the FHIR content type.
pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        json::compact(body).to_string(),
    )
        .into_response()
}

/// Marks a response whose audit event was committed with its data.
#[derive(Debug, Clone, Copy)]
struct AuditedInTx;

fn audited(mut response: Response) -> Response {
    response.extensions_mut().insert(AuditedInTx);
    response
}

fn note(action: Action, kind: &str, id: Option<&str>, what: &str) -> AuditNote {
    AuditNote::new(action, kind, id).detail(format!("FHIR {what}"))
}

/// Turns a handler's result into its response and attaches its audit note
/// (with the failure, if any), unless the write audited itself.
fn finish(mut note: AuditNote, result: Result<Response, FhirError>) -> Response {
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            note.detail = Some(format!(
                "{} failed: {}",
                note.detail.unwrap_or_default(),
                e.summary()
            ));
            e.into_response()
        }
    };
    if response.extensions().get::<AuditedInTx>().is_none() {
        audit::note(&mut response, note);
    }
    response
}

/// The absolute base URL of the API as the client reached it, for links
/// and `fullUrl`s.
pub(crate) struct Base(String);

impl FromRequestParts<AppState> for Base {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, FhirError> {
        Ok(Base(base_url(&parts.headers, state)))
    }
}

fn base_url(headers: &HeaderMap, state: &AppState) -> String {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = match value("x-forwarded-proto") {
        Some(p @ ("http" | "https")) => p,
        _ if state.config.secure_cookies => "https",
        _ => "http",
    };
    let host = value(header::HOST.as_str())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}{BASE_PATH}")
}

/// What every authenticated handler needs: the store, the caller and the
/// base URL.
pub(crate) struct Ctx {
    pub state: AppState,
    pub principal: Principal,
    pub base: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, FhirError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| FhirError::Unauthorized(BearerError::Missing.to_string()))?;
        Ok(Ctx {
            state: state.clone(),
            principal,
            base: base_url(&parts.headers, state),
        })
    }
}

impl Ctx {
    pub fn org(&self) -> &str {
        &self.principal.org_id
    }

    /// Refuses the interaction unless the caller's role may use `area`; the
    /// refusal is audited as denied from the 403 status.
    pub fn require(&self, area: Area) -> Result<(), FhirError> {
        if self.principal.role.may(area) {
            Ok(())
        } else {
            Err(FhirError::Forbidden(format!(
                "The {} role is not permitted this interaction.",
                self.principal.role
            )))
        }
    }
}

/// Resolves the bearer token into the request's [`Principal`].
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let addr = client_addr(&req);
    match authenticate_bearer(&state, req.headers(), addr).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(BearerError::Store(e)) => FhirError::Internal(e.to_string()).into_response(),
        Err(e) => FhirError::Unauthorized(e.to_string()).into_response(),
    }
}

/// Only JSON is served: `_format` may ask for it and nothing else.
async fn check_format(req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or_default().to_string();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let essence = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if name == "_format"
            && !["json", "application/json", "application/fhir+json"].contains(&essence.as_str())
        {
            return FhirError::NotAcceptable(format!(
                "_format '{value}' is not supported; this server speaks application/fhir+json."
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// The action an unrouted request would have been, and the type it named.
fn unrouted(method: &Method, uri: &OriginalUri, what: &str) -> AuditNote {
    let action = match *method {
        Method::POST => Action::Create,
        Method::PUT | Method::PATCH => Action::Update,
        Method::DELETE => Action::Delete,
        _ => Action::Read,
    };
    let path = uri.path().strip_prefix(BASE_PATH).unwrap_or(uri.path());
    let kind: String = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    note(
        action,
        &kind,
        None,
        &format!("{what} {method} {}", uri.path()),
    )
}

async fn unknown_route(method: Method, uri: OriginalUri) -> Response {
    let message = format!(
        "{method} {} is not part of this FHIR API; see {BASE_PATH}/metadata.",
        uri.path()
    );
    finish(
        unrouted(&method, &uri, "unknown route"),
        Err(FhirError::NotFound(message)),
    )
}

async fn method_not_allowed(method: Method, uri: OriginalUri) -> Response {
    let message = format!(
        "{method} is not supported on {}; see {BASE_PATH}/metadata.",
        uri.path()
    );
    finish(
        unrouted(&method, &uri, "unsupported"),
        Err(FhirError::MethodNotAllowed(message)),
    )
}
