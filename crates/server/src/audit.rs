//! Auditing of reads. A handler that shows patient data (or any audited
//! resource) attaches [`AuditNote`]s to its response; [`record`] appends them
//! to the chain before the response leaves, and withholds the response if
//! the audit cannot be written. Writes audit inside their own transaction.

use crate::AppState;
use crate::auth::Principal;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use carefront_domain::audit::{Action, AuditEntry, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub action: Action,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub detail: Option<String>,
    /// A repeat of this read within the window is not logged again
    /// (`RepeatedReads`): for lists a desk keeps open and reloads.
    pub once_per_window: bool,
}

impl AuditNote {
    pub fn new(action: Action, resource_type: &str, resource_id: Option<&str>) -> Self {
        Self {
            action,
            resource_type: resource_type.to_string(),
            resource_id: resource_id.map(str::to_string),
            patient_id: None,
            detail: None,
            once_per_window: false,
        }
    }

    /// Logs this read only if the same actor's same read was not logged
    /// within `RepeatedReads::WINDOW_US`.
    pub fn once_per_window(mut self) -> Self {
        self.once_per_window = true;
        self
    }

    pub fn patient(mut self, patient_id: &str) -> Self {
        self.patient_id = Some(patient_id.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The chain entry for this note: `principal` did it, with `outcome`.
    /// Also used by writes that audit inside their own transaction.
    pub fn entry(&self, principal: &Principal, outcome: Outcome) -> AuditEntry {
        let mut entry = principal
            .entry(self.action, outcome)
            .resource(&self.resource_type, self.resource_id.as_deref());
        entry.patient_id = self.patient_id.clone();
        if let Some(d) = &self.detail {
            entry.detail = Some(match entry.detail {
                Some(via) => format!("{d} ({via})"),
                None => d.clone(),
            });
        }
        entry
    }
}

#[derive(Debug, Clone, Default)]
struct Notes(Vec<AuditNote>);

/// Attaches a note to a response for [`record`] to append.
pub fn note(response: &mut Response, note: AuditNote) {
    let notes = response.extensions_mut().get_or_insert_default::<Notes>();
    notes.0.push(note);
}

fn outcome_of(status: axum::http::StatusCode) -> Outcome {
    if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else if matches!(status.as_u16(), 401 | 403) {
        Outcome::Denied
    } else {
        Outcome::Failed
    }
}

/// Middleware: appends the notes of the response, durably, before it leaves.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let principal = req.extensions().get::<Principal>().cloned();
    let mut response = next.run(req).await;
    let Some(Notes(notes)) = response.extensions_mut().remove::<Notes>() else {
        return response;
    };
    let Some(principal) = principal else {
        return response;
    };
    let outcome = outcome_of(response.status());
    let org_id = principal.org_id.as_str();
    let now_us = jiff::Timestamp::now().as_microsecond();
    let mut entries = Vec::with_capacity(notes.len());
    let mut repeatable = Vec::new();
    {
        let reads = state
            .repeated_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for n in &notes {
            let entry = n.entry(&principal, outcome);
            if !n.once_per_window {
                entries.push(entry);
            } else if reads.must_log(org_id, &entry, now_us) {
                repeatable.push(entry.clone());
                entries.push(entry);
            }
        }
    }
    match state.audit.append(org_id, entries).await {
        Ok(()) => {
            let mut reads = state
                .repeated_reads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            reads.logged(org_id, &repeatable, now_us);
            response
        }
        Err(e) => crate::ops::internal_error(e),
    }
}
