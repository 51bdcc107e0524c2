//! AuditEvent: the audit trail, read-only, for auditors. The id is the
//! event's sequence number in the organization's chain.

use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::capability;
use crate::fhir::json::{compact, instant};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::search::{self, SearchParam, date_bounds, reference, token};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::{Action, AuditEvent};
use carefront_store::{AuditFilter, Db, Page, StoreError};
use serde_json::{Value, json};

const KIND: &str = "AuditEvent";
/// Carefront's own action codes (`sign_in`, `read`, ...), in `subtype`.
pub const ACTION_SYSTEM: &str = "http://carefront.example/fhir/CodeSystem/audit-action";
const ROLE_SYSTEM: &str = "http://carefront.example/fhir/CodeSystem/staff-role";
/// Resource types an event can point to with a FHIR reference.
const FHIR_TYPES: &[&str] = &[
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "RelatedPerson",
    "AuditEvent",
];

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type))
        .route(&format!("/{KIND}/{{id}}"), get(read))
}

/// An audit search: the store's filter, plus the set of actions when a
/// FHIR action code stands for several of Carefront's.
#[derive(Default)]
struct AuditQuery {
    filter: AuditFilter,
    actions: Option<Vec<Action>>,
}

impl AuditQuery {
    fn only(&mut self, allowed: impl Fn(Action) -> bool) {
        let current = self.actions.take().unwrap_or_else(|| Action::ALL.to_vec());
        self.actions = Some(current.into_iter().filter(|a| allowed(*a)).collect());
    }
}

const SEARCH: &[SearchParam<AuditQuery>] = &[
    SearchParam {
        name: "date",
        kind: "date",
        doc: "When the event was recorded; prefixes eq, ge, gt, le, lt.",
        apply: |q, v| {
            let (from, until) = date_bounds(v)?;
            let f = &mut q.filter;
            f.from_us = from.into_iter().chain(f.from_us).max();
            f.until_us = until.into_iter().chain(f.until_us).min();
            Ok(())
        },
    },
    SearchParam {
        name: "agent",
        kind: "reference",
        doc: "Who acted: a username, or token:NAME for an API token (exact match).",
        apply: |q, v| {
            q.filter.actor_name = Some(v.to_string());
            Ok(())
        },
    },
    SearchParam {
        name: "patient",
        kind: "reference",
        doc: "The patient whose data was involved: Patient/id or the bare id.",
        apply: |q, v| {
            q.filter.patient_id = Some(reference(v, "Patient")?.to_string());
            Ok(())
        },
    },
    SearchParam {
        name: "action",
        kind: "token",
        doc: "C, R, U, D or E (AuditEvent.action).",
        apply: |q, v| {
            let code = token(v, "http://hl7.org/fhir/audit-event-action").unwrap_or_default();
            if !["C", "R", "U", "D", "E"].contains(&code) && !code.is_empty() {
                return Err("must be one of C, R, U, D, E".into());
            }
            q.only(|a| a.fhir_code() == code);
            Ok(())
        },
    },
    SearchParam {
        name: "subtype",
        kind: "token",
        doc: "Carefront's action code, e.g. sign_in_failed \
              (system http://carefront.example/fhir/CodeSystem/audit-action).",
        apply: |q, v| {
            let code = token(v, ACTION_SYSTEM).unwrap_or_default().to_string();
            q.only(|a| a.code() == code);
            Ok(())
        },
    },
];

pub fn capability_entry() -> Value {
    capability::entry(
        KIND,
        "The tamper-evident audit trail, newest first; id is the event's sequence number. \
         Auditor role only. Every FHIR request is recorded in it, refusals included.",
        &["read", "search-type"],
        false,
        &[SEARCH],
    )
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(Area::Audit)?;
        let missing = || FhirError::NotFound(format!("{KIND}/{id} is not known."));
        let seq = id.parse::<i64>().map_err(|_| missing())?;
        let event = ctx
            .state
            .db
            .audit_event(ctx.org(), seq)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => missing(),
                other => other.into(),
            })?;
        Ok(json_response(StatusCode::OK, to_fhir(&event)))
    };
    finish(note, result.await)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::Audit)?;
        let mut aq = AuditQuery::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut aq)?;
        let (events, total) = find(&ctx.state.db, ctx.org(), aq, query.page).await?;
        let entries = events
            .iter()
            .take(usize::try_from(query.page.count).unwrap_or(0))
            .map(|e| match_entry(format!("{}/{KIND}/{}", ctx.base, e.seq), to_fhir(e)))
            .collect();
        let url = format!("{}/{KIND}", ctx.base);
        let bundle = bundle("searchset", &url, &query, total, entries);
        Ok(json_response(StatusCode::OK, bundle))
    };
    finish(note, result.await)
}

/// How deep a search merging several actions may page.
const MERGE_DEPTH: i64 = 10_000;

/// Events matching `q`, newest first, and their total. A FHIR action code
/// standing for several of Carefront's actions takes one query per action,
/// merged.
async fn find(
    db: &Db,
    org_id: &str,
    q: AuditQuery,
    page: Page,
) -> Result<(Vec<AuditEvent>, i64), FhirError> {
    let Some(actions) = q.actions else {
        return Ok(db
            .audit_events(org_id, &q.filter, page.offset, page.count)
            .await?);
    };
    let depth = page.offset + page.count;
    if depth > MERGE_DEPTH {
        return Err(FhirError::Invalid(vec![Issue::new(
            "too-costly",
            format!("_offset + _count may not exceed {MERGE_DEPTH} with action; narrow by date."),
        )]));
    }
    let (mut all, mut total) = (Vec::new(), 0);
    for action in actions {
        let filter = AuditFilter {
            action: Some(action),
            ..q.filter.clone()
        };
        let (events, n) = db.audit_events(org_id, &filter, 0, depth).await?;
        all.extend(events);
        total += n;
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.seq));
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    Ok((all.into_iter().skip(skip).collect(), total))
}

fn event_type(action: Action) -> Value {
    let (system, code, display) = match action {
        Action::Read | Action::Search | Action::Create | Action::Update | Action::Delete => (
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "rest",
            "RESTful Operation",
        ),
        Action::Export => (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110106",
            "Export",
        ),
        Action::SignIn
        | Action::SignInFailed
        | Action::SignOut
        | Action::SessionExpired
        | Action::AccountLocked
        | Action::TokenUse => (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110114",
            "User Authentication",
        ),
        Action::TokenCreate | Action::TokenRevoke | Action::UserCreate | Action::UserChange => (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110137",
            "User Security Attributes Changed",
        ),
        Action::AuditVerify => (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110100",
            "Application Activity",
        ),
        Action::Merge | Action::Unmerge => (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110110",
            "Patient Record",
        ),
    };
    json!({ "system": system, "code": code, "display": display })
}

fn to_fhir(event: &AuditEvent) -> Value {
    let e = &event.entry;
    let what = |kind: &str, id: Option<&str>| match id {
        Some(id) if FHIR_TYPES.contains(&kind) => json!({ "reference": format!("{kind}/{id}") }),
        Some(id) => json!({ "display": format!("{kind}/{id}") }),
        None => json!({ "display": kind }),
    };
    let resource = e
        .resource_type
        .as_deref()
        .map(|kind| json!({ "what": what(kind, e.resource_id.as_deref()) }));
    let patient = e.patient_id.as_deref().map(|p| {
        json!({
            "what": what("Patient", Some(p)),
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "1",
                "display": "Patient",
            },
        })
    });
    let role = e
        .role
        .as_ref()
        .map(|r| json!({ "coding": [{ "system": ROLE_SYSTEM, "code": r }] }));
    compact(json!({
        "resourceType": KIND,
        "id": event.seq.to_string(),
        "meta": { "lastUpdated": instant(event.at_us) },
        "type": event_type(e.action),
        "subtype": [{ "system": ACTION_SYSTEM, "code": e.action.code() }],
        "action": e.action.fhir_code(),
        "recorded": instant(event.at_us),
        "outcome": e.outcome.fhir_code(),
        "outcomeDesc": e.detail,
        "agent": [{
            "who": {
                "identifier": e.actor_id.as_ref().map(|id| json!({ "value": id })),
                "display": e.actor_name,
            },
            "name": e.actor_name,
            "role": [role],
            "requestor": true,
            "network": e.client_addr.as_ref().map(|a| json!({ "address": a, "type": "2" })),
        }],
        "source": { "observer": { "display": "Carefront" } },
        "entity": [resource, patient],
    }))
}
