//! Every FHIR failure as one enum, mapped once to an HTTP status and an
//! OperationOutcome.

use super::FHIR_JSON;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use carefront_domain::ValidationErrors;
use carefront_store::StoreError;
use serde_json::{Value, json};

/// One OperationOutcome.issue: an `issue-type` code, what went wrong and,
/// when an element is to blame, its FHIRPath (`Location.address.postalCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: &'static str,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn new(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// A problem with one element of the submitted resource.
    pub fn at(
        code: &'static str,
        expression: impl Into<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: Some(expression.into()),
        }
    }

    /// Domain validation errors, their field names translated to FHIRPath.
    pub fn from_validation(
        errors: &ValidationErrors,
        expression: impl Fn(&str) -> String,
    ) -> Vec<Issue> {
        errors
            .errors()
            .iter()
            .map(|e| {
                let path = expression(&e.field);
                Issue::at("value", path.clone(), format!("{path} {}", e.message))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    /// 400: unparseable or invalid content, or a bad search parameter.
    #[error("invalid request")]
    Invalid(Vec<Issue>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// 409: a unique key or a reference would be broken.
    #[error("{0}")]
    Conflict(Issue),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    TooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed and valid, but against the clinic's rules.
    #[error("business rule violated")]
    BusinessRule(Vec<Issue>),
    /// 500: logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diagnostics)
    }
}

impl FhirError {
    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        FhirError::Invalid(vec![Issue::new("invalid", diagnostics)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            FhirError::Invalid(_) => StatusCode::BAD_REQUEST,
            FhirError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            FhirError::Forbidden(_) => StatusCode::FORBIDDEN,
            FhirError::NotFound(_) => StatusCode::NOT_FOUND,
            FhirError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            FhirError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            FhirError::Conflict(_) => StatusCode::CONFLICT,
            FhirError::Gone(_) => StatusCode::GONE,
            FhirError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            FhirError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FhirError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FhirError::BusinessRule(_) => StatusCode::UNPROCESSABLE_ENTITY,
            FhirError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn issues(&self) -> Vec<Issue> {
        let one = |code, text: &str| vec![Issue::new(code, text)];
        match self {
            FhirError::Invalid(issues) | FhirError::BusinessRule(issues) => issues.clone(),
            FhirError::Conflict(issue) => vec![issue.clone()],
            FhirError::Unauthorized(m) => one("login", m),
            FhirError::Forbidden(m) => one("forbidden", m),
            FhirError::NotFound(m) => one("not-found", m),
            FhirError::MethodNotAllowed(m) | FhirError::NotAcceptable(m) => one("not-supported", m),
            FhirError::UnsupportedMediaType(m) => one("not-supported", m),
            FhirError::Gone(m) => one("deleted", m),
            FhirError::PreconditionFailed(m) => one("conflict", m),
            FhirError::TooLarge => one("too-long", &self.to_string()),
            FhirError::Internal(_) => one(
                "exception",
                "Something went wrong on the server. The error was logged.",
            ),
        }
    }

    /// A one-line summary for the audit trail.
    pub fn summary(&self) -> String {
        let text: Vec<String> = self
            .issues()
            .iter()
            .map(|i| i.diagnostics.clone())
            .collect();
        format!("{} {}", self.status().as_u16(), text.join("; "))
    }
}

pub fn operation_outcome(issues: &[Issue], severity: &str) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({
                "severity": severity,
                "code": i.code,
                "diagnostics": i.diagnostics,
            });
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        if let FhirError::Internal(e) = &self {
            tracing::error!(error = %e, "FHIR request failed");
        }
        let body = operation_outcome(&self.issues(), "error");
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, FHIR_JSON)],
            body.to_string(),
        )
            .into_response();
        if matches!(self, FhirError::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"carefront\""),
            );
        }
        response
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => FhirError::NotFound("The resource is not known.".into()),
            StoreError::Gone => FhirError::Gone("The resource was deleted.".into()),
            StoreError::VersionConflict { current } => FhirError::PreconditionFailed(format!(
                "The resource is at version {current}; read it again and reapply the change."
            )),
            StoreError::Conflict(what) => FhirError::Conflict(Issue::new("duplicate", what)),
            StoreError::Invalid(errors) => {
                FhirError::Invalid(Issue::from_validation(&errors, str::to_string))
            }
            other => FhirError::Internal(other.to_string()),
        }
    }
}
