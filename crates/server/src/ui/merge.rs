//! Merging duplicate patient records, and undoing a merge (leads only).
//!
//! From a patient's summary the lead finds the other record (the likely
//! duplicates are offered, or any patient by the search box's rules),
//! compares both side by side, chooses which one survives and merges; the
//! store does the merge in one transaction (`carefront_store` `merge`) and
//! this module audits it there, once for each patient.

use super::patient_summary::{header, language_label, load, sex_label, us_date};
use super::registration::comparison_table;
use super::{CsrfForm, csrf_field, error_page, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::ui::patients::today;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use carefront_domain::Area;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::contact::display_phone;
use carefront_domain::directory::Versioned;
use carefront_domain::matching::{MatchGrade, MatchRecord, MatchScore, Thresholds};
use carefront_domain::patient::Patient;
use carefront_domain::patient_search::parse;
use carefront_store::{PatientMerge, StoreError, new_id};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct MergeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    other: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    other: String,
    #[serde(default)]
    survivor: String,
    #[serde(default)]
    this_version: String,
    #[serde(default)]
    other_version: String,
    #[serde(default)]
    reason: String,
}

const LIST_SHOWN: usize = 10;

fn grade_words(grade: MatchGrade) -> &'static str {
    match grade {
        MatchGrade::Certain => "almost certainly the same person",
        MatchGrade::Probable => "probably the same person",
        MatchGrade::Possible => "possibly the same person",
        MatchGrade::CertainlyNot => "unlikely to be the same person",
    }
}

/// The rows of the side-by-side comparison: label and both values.
fn side_by_side(a: &Patient, b: &Patient) -> Vec<(&'static str, String, String)> {
    let name = |p: &Patient| p.display_name();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let phones = |p: &Patient| {
        p.phones
            .iter()
            .map(|ph| format!("{} {}", ph.kind.label(), display_phone(&ph.number)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let address = |p: &Patient| {
        p.addresses
            .iter()
            .map(|a| format!("{}: {}", a.label(), a.address.one_line()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let contacts = |p: &Patient| {
        p.contacts
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let ids = |p: &Patient| {
        p.identifiers
            .iter()
            .map(|i| i.value.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let language = |p: &Patient| {
        p.language
            .as_deref()
            .map(language_label)
            .map(|l| {
                if p.interpreter_needed {
                    format!("{l}, interpreter")
                } else {
                    l
                }
            })
            .unwrap_or_default()
    };
    vec![
        ("MRN", a.mrn.clone(), b.mrn.clone()),
        ("Name", name(a), name(b)),
        (
            "Preferred name",
            opt(&a.preferred_name),
            opt(&b.preferred_name),
        ),
        (
            "Date of birth",
            us_date(a.birth_date),
            us_date(b.birth_date),
        ),
        ("Sex", sex_label(a.sex).into(), sex_label(b.sex).into()),
        ("Phones", phones(a), phones(b)),
        ("Email", opt(&a.email), opt(&b.email)),
        ("Addresses", address(a), address(b)),
        ("Language", language(a), language(b)),
        ("Contacts", contacts(a), contacts(b)),
        ("Alerts", a.alerts.join("; "), b.alerts.join("; ")),
        ("Identifiers", ids(a), ids(b)),
    ]
}

fn patient_rows(list: &[(Versioned<Patient>, Option<f64>)], this_id: &str, q: &str) -> Markup {
    let today = today();
    html! {
        table.dense {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Date of birth" } th scope="col" { "MRN" }
                th scope="col" { "Phone" } th scope="col" { "Score" } th scope="col" { span.visually-hidden { "Action" } }
            } }
            tbody {
                @for (c, score) in list {
                    tr {
                        td { a href=(format!("/patients/{}", c.id)) { (c.value.display_name()) } }
                        td { (us_date(c.value.birth_date)) " (" (c.value.age_on(today)) " y)" }
                        td { (c.value.mrn) }
                        td { (c.value.phones.first().map(|ph| display_phone(&ph.number)).unwrap_or_default()) }
                        td { @if let Some(s) = score { (format!("{s:.1}")) } @else { "—" } }
                        td { a href=(format!("/patients/{this_id}/merge?q={}&other={}", urlencode(q), c.id)) { "Compare" } }
                    }
                }
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct Problem {
    status: StatusCode,
    message: String,
}

async fn render(
    state: &AppState,
    p: &Principal,
    this: &Versioned<Patient>,
    q: &str,
    other_id: &str,
    problem: Option<Problem>,
) -> Response {
    let today = today();
    let mut notes = vec![
        AuditNote::new(Action::Read, "Patient", Some(&this.id))
            .patient(&this.id)
            .detail("merge page"),
    ];
    let merged = this.value.replaced_by.is_some();
    let thresholds = Thresholds::DEFAULT;
    let found = async {
        let likely = if merged {
            Vec::new()
        } else {
            state
                .db
                .match_candidates(&p.org_id, &MatchRecord::from(&this.value), &thresholds)
                .await?
                .into_iter()
                .filter(|(c, _)| c.id != this.id)
                .take(LIST_SHOWN)
                .map(|(c, s)| (c, Some(s.total)))
                .collect()
        };
        let query = parse(q, today);
        let results: Vec<_> = if q.trim().is_empty() || query.is_empty() {
            Vec::new()
        } else {
            state
                .db
                .search_patients(&p.org_id, &query, LIST_SHOWN + 1)
                .await?
                .hits
                .into_iter()
                .filter(|(c, _)| c.id != this.id)
                .take(LIST_SHOWN)
                .map(|(c, _)| (c, None))
                .collect()
        };
        let other = if other_id.is_empty() {
            None
        } else {
            match state.db.get::<Patient>(&p.org_id, other_id).await {
                Ok(o) => {
                    let score = state
                        .db
                        .compare_patients(&p.org_id, &this.value, &o.value)
                        .await?;
                    Some((o, score))
                }
                Err(StoreError::NotFound | StoreError::Gone) => None,
                Err(e) => return Err(e),
            }
        };
        Ok::<_, StoreError>((likely, results, other))
    }
    .await;
    let (likely, results, other) = match found {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    for (c, _) in likely.iter().chain(&results) {
        notes.push(
            AuditNote::new(Action::Search, "Patient", Some(&c.id))
                .patient(&c.id)
                .detail("listed on the merge page"),
        );
    }
    if let Some((o, _)) = &other {
        notes.push(
            AuditNote::new(Action::Read, "Patient", Some(&o.id))
                .patient(&o.id)
                .detail(format!("compared for a merge with Patient/{}", this.id)),
        );
    }
    let status = problem.as_ref().map_or(StatusCode::OK, |pr| pr.status);
    let content = html! {
        (header(this, today))
        @if let Some(pr) = &problem {
            div.error #merge-problem role="alert" tabindex="-1" autofocus { p { "The records were not merged: " (pr.message) } }
        }
        @if merged {
            div.notice.merged role="status" {
                p { "This record is already merged into "
                    a href=(format!("/patients/{}", this.value.replaced_by.clone().unwrap_or_default())) { "another record" }
                    ". Undo that merge from the surviving record's page first." }
            }
        } @else {
            p.lede {
                "Find the other record of this patient, compare the two, and choose the one that survives. "
                "The survivor keeps its MRN and demographics; the other record becomes a link to it. "
                "Contacts, identifiers (with the other MRN), alerts and coverages move to the survivor. "
                "The merge is audited and a lead can undo it."
            }
            @if other.is_none() {
                section aria-labelledby="m-likely" {
                    h2 #m-likely { "Likely duplicates of this record" }
                    @if likely.is_empty() {
                        p.muted { "The duplicate check finds no record resembling this one. Search below." }
                    } @else {
                        (patient_rows(&likely, &this.id, q))
                    }
                }
                section aria-labelledby="m-search" {
                    h2 #m-search { "Find the other record" }
                    form.inline role="search" method="get" action=(format!("/patients/{}/merge", this.id)) {
                        div.field {
                            label for="merge-q" { "Name, date of birth, phone or MRN" }
                            input #merge-q type="search" name="q" value=(q) autocomplete="off";
                        }
                        button type="submit" { "Search" }
                    }
                    @if !q.trim().is_empty() {
                        @if results.is_empty() { p role="status" { "No other patient matches “" (q) "”." } }
                        @else { (patient_rows(&results, &this.id, q)) }
                    }
                }
            }
            @if !other_id.is_empty() && other.is_none() {
                p.error role="alert" { "The other record was not found." }
            }
            @if let Some((o, score)) = &other {
                (compare_section(p, this, o, score, q))
            }
        }
    };
    let mut response = (
        status,
        shell(
            p,
            state.config.idle_timeout_secs,
            Area::Patients,
            &format!("Merge {}", this.value.display_name()),
            content,
        ),
    )
        .into_response();
    for n in notes {
        note(&mut response, n);
    }
    response
}

fn compare_section(
    p: &Principal,
    this: &Versioned<Patient>,
    o: &Versioned<Patient>,
    score: &MatchScore,
    q: &str,
) -> Markup {
    let grade = Thresholds::DEFAULT.grade(score.total);
    let merged_other = o.value.replaced_by.is_some();
    // The older record (lower MRN) usually survives.
    let this_survives = this.value.mrn <= o.value.mrn;
    html! {
        section aria-labelledby="m-compare" {
            h2 #m-compare { "Compare MRN " (this.value.mrn) " with MRN " (o.value.mrn) }
            p { "Match score " strong { (format!("{:.1}", score.total)) } ": " (grade_words(grade)) "." }
            table.dense.side-by-side {
                caption.visually-hidden { "Both records side by side; rows that differ are marked" }
                thead { tr {
                    th scope="col" { "Field" }
                    th scope="col" { "This record (MRN " (this.value.mrn) ")" }
                    th scope="col" { "Other record (MRN " (o.value.mrn) ")" }
                } }
                tbody {
                    @for (label, a, b) in side_by_side(&this.value, &o.value) {
                        tr.differs[a != b] {
                            th scope="row" { (label) @if a != b { span.visually-hidden { " (differs)" } } }
                            td { (a) } td { (b) }
                        }
                    }
                }
            }
            details {
                summary { "How the duplicate check compared them" }
                (comparison_table("Field weights of the match score", "This record", &this.value, "Other record", &o.value, score))
            }
            @if merged_other {
                p.error role="alert" { "The other record is itself merged into another record and cannot take part in a merge." }
            } @else {
                form.merge-form method="post" action=(format!("/patients/{}/merge", this.id)) {
                    (csrf_field(p))
                    input type="hidden" name="other" value=(o.id);
                    input type="hidden" name="this_version" value=(this.version);
                    input type="hidden" name="other_version" value=(o.version);
                    fieldset {
                        legend { "Which record survives?" }
                        div.tick {
                            input #survivor-this type="radio" name="survivor" value=(this.id) checked[this_survives];
                            label for="survivor-this" { "Keep MRN " (this.value.mrn) " (this record); MRN " (o.value.mrn) " becomes a link to it" }
                        }
                        div.tick {
                            input #survivor-other type="radio" name="survivor" value=(o.id) checked[!this_survives];
                            label for="survivor-other" { "Keep MRN " (o.value.mrn) " (the other record); MRN " (this.value.mrn) " becomes a link to it" }
                        }
                    }
                    div.field.w-l {
                        label for="merge-reason" { "Reason (optional)" }
                        input #merge-reason type="text" name="reason" autocomplete="off" aria-describedby="merge-reason-hint";
                        span.hint #merge-reason-hint { "Kept with the merge and in the audit log, e.g. “registered twice, typo in family name”." }
                    }
                    div.form-actions {
                        button type="submit" { "Merge records" }
                        a href=(format!("/patients/{}/merge?q={}", this.id, urlencode(q))) { "Choose another record" }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(query): Query<MergeQuery>,
) -> Response {
    let this = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    render(&state, &p, &this, query.q.trim(), query.other.trim(), None).await
}

pub async fn merge(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<MergeForm>,
) -> Response {
    let this = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let other_id = form.other.trim();
    let refuse = |status, message: &str| Problem {
        status,
        message: message.to_string(),
    };
    let versions = (
        form.this_version.trim().parse::<i64>().ok(),
        form.other_version.trim().parse::<i64>().ok(),
    );
    let checked = if other_id.is_empty() {
        Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose the other record first.",
        ))
    } else if versions.0.is_none() || versions.1.is_none() {
        Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "compare the two records first.",
        ))
    } else if form.survivor != this.id && form.survivor != other_id {
        Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose which record survives.",
        ))
    } else {
        Ok(())
    };
    if let Err(problem) = checked {
        return render(&state, &p, &this, "", other_id, Some(problem)).await;
    }
    let (survivor, duplicate, sv, dv) = if form.survivor == this.id {
        (this.id.as_str(), other_id, versions.0, versions.1)
    } else {
        (other_id, this.id.as_str(), versions.1, versions.0)
    };
    let merge_id = new_id();
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let m = tx
            .merge_patients(
                &merge_id,
                survivor,
                sv,
                duplicate,
                dv,
                &p.actor_name,
                Some(form.reason.as_str()),
            )
            .await?;
        tx.audit_many(merge_audit(&p, &m, Action::Merge)).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(m)
    }
    .await;
    let problem = match result {
        Ok(m) => return Redirect::to(&format!("/patients/{}", m.survivor_id)).into_response(),
        Err(StoreError::VersionConflict { .. }) => refuse(
            StatusCode::CONFLICT,
            "one of the records changed since you compared them. Compare them again below.",
        ),
        Err(StoreError::Conflict(m)) => refuse(StatusCode::CONFLICT, &format!("{m}.")),
        Err(StoreError::Invalid(e)) => refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.errors()
                .first()
                .map_or("invalid choice", |e| e.message.as_str()),
        ),
        Err(StoreError::NotFound | StoreError::Gone) => {
            refuse(StatusCode::NOT_FOUND, "the other record was not found.")
        }
        Err(e) => return ops::internal_error(e),
    };
    // Show the current state of both records again.
    let this = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    render(&state, &p, &this, "", other_id, Some(problem)).await
}

/// One audit event per patient, each naming the other.
fn merge_audit(
    p: &Principal,
    m: &PatientMerge,
    action: Action,
) -> Vec<carefront_domain::audit::AuditEntry> {
    let s_mrn = &m.snapshot.survivor_before.mrn;
    let d_mrn = &m.snapshot.duplicate_before.mrn;
    let verb = if action == Action::Merge {
        "merged"
    } else {
        "merge undone"
    };
    let reason = m
        .reason
        .as_deref()
        .map(|r| format!("; reason: {r}"))
        .unwrap_or_default();
    let moved = if action == Action::Merge {
        format!(
            "; moved {} contact(s), {} identifier(s), {} alert(s), {} record(s)",
            m.snapshot.additions.contacts.len(),
            m.snapshot.additions.identifiers.len(),
            m.snapshot.additions.alerts.len(),
            m.snapshot.moved.len()
        )
    } else {
        String::new()
    };
    vec![
        p.entry(action, Outcome::Success)
            .resource("Patient", Some(&m.duplicate_id))
            .patient(&m.duplicate_id)
            .detail(format!(
                "{verb}: duplicate MRN {d_mrn} into Patient/{} (MRN {s_mrn}); merge {}{moved}{reason}",
                m.survivor_id, m.id
            )),
        p.entry(action, Outcome::Success)
            .resource("Patient", Some(&m.survivor_id))
            .patient(&m.survivor_id)
            .detail(format!(
                "{verb}: survivor MRN {s_mrn} of Patient/{} (MRN {d_mrn}); merge {}",
                m.duplicate_id, m.id
            )),
    ]
}

pub async fn undo(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    CsrfForm(_form): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let mut tx = state.db.begin(&p.org_id).await?;
        let m = tx.unmerge_patients(&id, &p.actor_name).await?;
        tx.audit_many(merge_audit(&p, &m, Action::Unmerge)).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(m)
    }
    .await;
    match result {
        Ok(m) => Redirect::to(&format!("/patients/{}", m.survivor_id)).into_response(),
        Err(StoreError::NotFound) => error_page(
            StatusCode::NOT_FOUND,
            "Merge not found",
            "There is no merge with this address.",
        ),
        Err(StoreError::Conflict(message)) => {
            let back = state
                .db
                .patient_merge(&p.org_id, &id)
                .await
                .map(|m| format!("/patients/{}", m.survivor_id))
                .unwrap_or_else(|_| "/patients".into());
            let page = shell(
                &p,
                state.config.idle_timeout_secs,
                Area::Patients,
                "Merge not undone",
                html! {
                    div.error role="alert" { p { "The merge was not undone: " (message) "." } }
                    p { a href=(back) { "Back to the patient" } }
                },
            );
            (StatusCode::CONFLICT, page).into_response()
        }
        Err(e) => ops::internal_error(e),
    }
}
