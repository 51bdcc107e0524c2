//! The auditor's view of the audit trail, with filters and CSV export.

use super::{local_time, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use carefront_domain::audit::{Action, AuditEvent};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::AuditFilter;
use maud::html;
use serde::Deserialize;

const PAGE_SIZE: i64 = 50;
const EXPORT_LIMIT: i64 = 100_000;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    patient: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<i64>,
}

/// Turns the form into a store filter; dates are whole days in the server's
/// time zone, `to` inclusive.
pub fn parse_filter(
    q: &AuditQuery,
    tz: &jiff::tz::TimeZone,
) -> Result<AuditFilter, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let day_start = |field: &str, s: &str, plus_days: i64, errors: &mut ValidationErrors| {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        match s.parse::<jiff::civil::Date>() {
            Ok(d) => d
                .checked_add(jiff::Span::new().days(plus_days))
                .ok()
                .and_then(|d| d.to_zoned(tz.clone()).ok())
                .map(|z| z.timestamp().as_microsecond()),
            Err(_) => {
                errors.add(field, "must be a date like 2026-11-23");
                None
            }
        }
    };
    let action = match q.action.trim() {
        "" => None,
        a => match a.parse::<Action>() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.add("action", "is not a known action");
                None
            }
        },
    };
    let filter = AuditFilter {
        actor_name: text(&q.user).map(|u| u.to_lowercase()),
        patient_id: text(&q.patient),
        action,
        resource_type: None,
        resource_id: None,
        from_us: day_start("from", &q.from, 0, &mut errors),
        until_us: day_start("to", &q.to, 1, &mut errors),
    };
    errors.into_result(filter)
}

fn query_string(q: &AuditQuery) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("user", &q.user)
        .append_pair("patient", &q.patient)
        .append_pair("action", &q.action)
        .append_pair("from", &q.from)
        .append_pair("to", &q.to)
        .finish()
}

pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let tz = jiff::tz::TimeZone::system();
    let page = q.page.unwrap_or(1).max(1);
    let (filter, errors) = match parse_filter(&q, &tz) {
        Ok(f) => (f, ValidationErrors::new()),
        Err(e) => (AuditFilter::default(), e),
    };
    let (events, total) = if errors.is_empty() {
        match state
            .db
            .audit_events(&p.org_id, &filter, (page - 1) * PAGE_SIZE, PAGE_SIZE)
            .await
        {
            Ok(v) => v,
            Err(e) => return ops::internal_error(e),
        }
    } else {
        (Vec::new(), 0)
    };
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    let qs = query_string(&q);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let invalid = |f: &str| errors.for_field(f).map(|_| "true");
    let mut response = shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Audit,
        "Audit log",
        html! {
            form.filters method="get" action="/audit" {
                div.field { label for="f-user" { "User" } input #f-user name="user" value=(q.user); }
                div.field { label for="f-patient" { "Patient id" } input #f-patient name="patient" value=(q.patient); }
                div.field {
                    label for="f-action" { "Action" }
                    select #f-action name="action" aria-invalid=[invalid("action")] {
                        option value="" { "Any" }
                        @for a in Action::ALL { option value=(a.code()) selected[q.action == a.code()] { (a.code().replace('_', " ")) } }
                    }
                }
                div.field { label for="f-from" { "From" } input #f-from name="from" type="date" value=(q.from) aria-invalid=[invalid("from")]; }
                div.field { label for="f-to" { "To" } input #f-to name="to" type="date" value=(q.to) aria-invalid=[invalid("to")]; }
                button type="submit" { "Filter" }
                a.button href=(format!("/audit/export.csv?{qs}")) download { "Export CSV" }
            }
            @if !errors.is_empty() {
                div.error role="alert" { ul { @for e in errors.errors() { li { (e.field) ": " (e.message) } } } }
            }
            p role="status" { (total) " event(s)." @if pages > 1 { " Page " (page) " of " (pages) "." } }
            table.dense {
                caption.visually-hidden { "Audit events, newest first" }
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "User" } th scope="col" { "Role" }
                    th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "Patient" }
                    th scope="col" { "Address" } th scope="col" { "Outcome" } th scope="col" { "Detail" }
                } }
                tbody {
                    @for e in &events {
                        tr.(e.entry.outcome.code()) {
                            td { (e.seq) }
                            td { (local_time(e.at_us, &tz)) }
                            td { (e.entry.actor_name) }
                            td { (e.entry.role.clone().unwrap_or_default()) }
                            td { (e.entry.action.code().replace('_', " ")) }
                            td { (e.entry.resource_type.clone().unwrap_or_default()) " " (e.entry.resource_id.clone().unwrap_or_default()) }
                            td { (e.entry.patient_id.clone().unwrap_or_default()) }
                            td { (e.entry.client_addr.clone().unwrap_or_default()) }
                            td { (e.entry.outcome.code()) }
                            td { (e.entry.detail.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(format!("/audit?{qs}&page={}", page - 1)) rel="prev" { "← Newer" } }
                @if page < pages { a href=(format!("/audit?{qs}&page={}", page + 1)) rel="next" { "Older →" } }
            }
        },
    )
    .into_response();
    *response.status_mut() = status;
    note(
        &mut response,
        AuditNote::new(Action::Read, "AuditEvent", None)
            .detail(format!("viewed audit log page {page}")),
    );
    response
}

/// CSV columns, in order.
pub const CSV_HEADER: [&str; 13] = [
    "seq",
    "time_utc",
    "user",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "client_address",
    "outcome",
    "detail",
    "prev_hash",
    "hash",
];

fn csv_row(e: &AuditEvent) -> [String; 13] {
    let time = jiff::Timestamp::from_microsecond(e.at_us)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        e.seq.to_string(),
        time,
        e.entry.actor_name.clone(),
        o(&e.entry.role),
        e.entry.action.code().to_string(),
        o(&e.entry.resource_type),
        o(&e.entry.resource_id),
        o(&e.entry.patient_id),
        o(&e.entry.client_addr),
        e.entry.outcome.code().to_string(),
        o(&e.entry.detail),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}

/// Cells that a spreadsheet would run as a formula are prefixed with a quote.
fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

pub async fn export(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let tz = jiff::tz::TimeZone::system();
    let filter = match parse_filter(&q, &tz) {
        Ok(f) => f,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    let (events, total) = match state
        .db
        .audit_events(&p.org_id, &filter, 0, EXPORT_LIMIT)
        .await
    {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = writer
        .write_record(CSV_HEADER)
        .and_then(|()| {
            events
                .iter()
                .try_for_each(|e| writer.write_record(csv_row(e).map(spreadsheet_safe)))
        })
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()));
    let body = match written {
        Ok(b) => b,
        Err(e) => return ops::internal_error(e),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"carefront-audit.csv\"",
            ),
        ],
        body,
    )
        .into_response();
    note(
        &mut response,
        AuditNote::new(Action::Export, "AuditEvent", None).detail(format!(
            "exported {} of {total} events as CSV",
            events.len()
        )),
    );
    response
}
