//! The patient summary: one screen with everything the front desk needs
//! about a patient, and the pieces every patient screen shares (the header
//! with the alerts, loading a record by id).

use super::coverage::coverage_section;
use super::registration::{CONTACT_RELATIONSHIPS, LANGUAGES};
use super::schedule::{Directory, status_text, when};
use super::{csrf_field, error_page, local_time, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::ui::patients::today;
use crate::{AppState, ops};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::contact::display_phone;
use carefront_domain::directory::{AdministrativeGender, Versioned};
use carefront_domain::mpi::{MRN_SYSTEM, changed_fields};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::AppointmentStatus;
use carefront_store::{
    AppointmentQuery, AppointmentRecord, HistoryEntry, Page, PatientMerge, StoreError, User,
};
use jiff::civil::Date;
use maud::{Markup, html};
use std::collections::{HashMap, HashSet};

/// A patient by id, or the page to answer instead.
pub async fn load(
    state: &AppState,
    org_id: &str,
    id: &str,
) -> Result<Versioned<Patient>, Response> {
    match state.db.get::<Patient>(org_id, id).await {
        Ok(p) => Ok(p),
        Err(StoreError::NotFound) => Err(error_page(
            StatusCode::NOT_FOUND,
            "Patient not found",
            "There is no patient with this address. Search for the patient instead.",
        )),
        Err(StoreError::Gone) => Err(error_page(
            StatusCode::GONE,
            "Patient record deleted",
            "This patient record was deleted. Its history is kept for the audit trail.",
        )),
        Err(e) => Err(ops::internal_error(e)),
    }
}

pub fn sex_label(sex: AdministrativeGender) -> &'static str {
    match sex {
        AdministrativeGender::Female => "Female",
        AdministrativeGender::Male => "Male",
        AdministrativeGender::Other => "Other",
        AdministrativeGender::Unknown => "Unknown",
    }
}

/// A date the way US clinics write it.
pub fn us_date(d: Date) -> String {
    d.strftime("%m/%d/%Y").to_string()
}

pub fn language_label(tag: &str) -> String {
    match LANGUAGES.iter().find(|(t, _)| *t == tag) {
        Some((_, name)) => format!("{name} ({tag})"),
        None => tag.to_string(),
    }
}

pub fn relationship_label(code: &str) -> &str {
    CONTACT_RELATIONSHIPS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, label)| label)
}

/// The alerts of a patient, shown at the top of every patient screen.
pub fn alerts(p: &Patient) -> Markup {
    html! {
        @if !p.alerts.is_empty() {
            div.alerts role="note" aria-label="Patient alerts" {
                strong { "Alerts" }
                ul { @for a in &p.alerts { li { (a) } } }
            }
        }
    }
}

/// Who the patient is, in one line under the page's heading (the name),
/// then the alerts. Shared by every patient screen.
pub fn header(p: &Versioned<Patient>, today: Date) -> Markup {
    let v = &p.value;
    html! {
        p.patient-line {
            @if let Some(pref) = &v.preferred_name { span { "Goes by " strong { (pref) } } }
            span { "DOB " strong { (us_date(v.birth_date)) } " (" (v.age_on(today)) " y)" }
            span { (sex_label(v.sex)) }
            span { "MRN " strong { (v.mrn) } }
            @if let Some(pr) = &v.pronouns { span { (pr) } }
            @if let Some(l) = &v.language { span { (language_label(l)) @if v.interpreter_needed { ", " strong { "interpreter needed" } } } }
        }
        (alerts(v))
    }
}

fn who(users: &HashMap<String, String>, username: &str) -> String {
    users.get(username).map_or_else(
        || username.to_string(),
        |name| format!("{name} ({username})"),
    )
}

/// Each version with what changed from the one before, newest first; the
/// versions written by a merge or its undoing say so.
fn history_rows<'a>(
    patient_id: &str,
    history: &'a [HistoryEntry<Patient>],
    merges: &[PatientMerge],
) -> Vec<(&'a HistoryEntry<Patient>, String)> {
    history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut what = match history.get(i + 1) {
                _ if h.deleted => "Deleted".to_string(),
                None => "Registered".to_string(),
                Some(older) => {
                    let fields = changed_fields(&older.value, &h.value);
                    if fields.is_empty() {
                        "Saved without changes".to_string()
                    } else {
                        fields.join(", ")
                    }
                }
            };
            for m in merges {
                let (version_before, other_mrn, verb) = if m.survivor_id == patient_id {
                    (
                        m.snapshot.survivor_version_before,
                        &m.snapshot.duplicate_before.mrn,
                        "merge of MRN",
                    )
                } else {
                    (
                        m.snapshot.duplicate_version_before,
                        &m.snapshot.survivor_before.mrn,
                        "merged into MRN",
                    )
                };
                if h.version == version_before + 1 && h.changed_by == m.merged_by {
                    what = format!("{what} ({verb} {other_mrn})");
                }
                let undone_here = m
                    .undone_at_us
                    .is_some_and(|at| (h.changed_at_us - at).abs() < 1_000_000)
                    && m.undone_by.as_deref() == Some(h.changed_by.as_str());
                if undone_here {
                    what = format!("{what} (merge with MRN {other_mrn} undone)");
                }
            }
            (h, what)
        })
        .collect()
}

/// A record merged into the one shown (by a merge in effect, or into such
/// a record in turn): its history is the shown record's history too.
struct Absorbed {
    id: String,
    mrn: String,
    history: Vec<HistoryEntry<Patient>>,
    merges: Vec<PatientMerge>,
}

/// The records merged into `patient_id` by merges in effect (undone ones
/// name nothing), and those merged into them in turn, each once.
async fn absorbed(
    state: &AppState,
    org_id: &str,
    patient_id: &str,
    merges: &[PatientMerge],
) -> Result<Vec<Absorbed>, StoreError> {
    let into = |id: &str, merges: &[PatientMerge]| -> Vec<(String, String)> {
        merges
            .iter()
            .filter(|m| m.is_active() && m.survivor_id == id)
            .map(|m| {
                (
                    m.duplicate_id.clone(),
                    m.snapshot.duplicate_before.mrn.clone(),
                )
            })
            .collect()
    };
    let mut seen = HashSet::from([patient_id.to_string()]);
    let mut waiting = into(patient_id, merges);
    let mut found = Vec::new();
    while let Some((id, mrn)) = waiting.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let history = state.db.history::<Patient>(org_id, &id).await?;
        let merges = state.db.patient_merges(org_id, &id).await?;
        waiting.extend(into(&id, &merges));
        found.push(Absorbed {
            id,
            mrn,
            history,
            merges,
        });
    }
    Ok(found)
}

/// One line of the History section: a version of the record shown or, with
/// the MRN it came from, of a record merged into it.
struct HistoryRow<'a> {
    entry: &'a HistoryEntry<Patient>,
    what: String,
    from_mrn: Option<&'a str>,
}

/// The record's own [`history_rows`] and those of the records merged into
/// it, interleaved by time, newest first.
fn all_history_rows<'a>(
    patient_id: &str,
    history: &'a [HistoryEntry<Patient>],
    merges: &[PatientMerge],
    absorbed: &'a [Absorbed],
) -> Vec<HistoryRow<'a>> {
    let own = history_rows(patient_id, history, merges)
        .into_iter()
        .map(|(entry, what)| HistoryRow {
            entry,
            what,
            from_mrn: None,
        });
    let merged = absorbed.iter().flat_map(|a| {
        history_rows(&a.id, &a.history, &a.merges)
            .into_iter()
            .map(|(entry, what)| HistoryRow {
                entry,
                what,
                from_mrn: Some(a.mrn.as_str()),
            })
    });
    let mut rows: Vec<HistoryRow<'a>> = own.chain(merged).collect();
    // Stable: each record's versions keep their order, its own first on a tie.
    rows.sort_by_key(|r| std::cmp::Reverse(r.entry.changed_at_us));
    rows
}

struct Loaded {
    history: Vec<HistoryEntry<Patient>>,
    merges: Vec<PatientMerge>,
    /// The records merged into this one, whose history is shown with its own.
    absorbed: Vec<Absorbed>,
    users: HashMap<String, String>,
    /// The other patients named by the merges and the survivor link.
    linked: HashMap<String, Versioned<Patient>>,
    /// The coverage section (`ui::coverage`).
    coverage: Markup,
    appointments: Markup,
}

async fn load_rest(
    state: &AppState,
    principal: &Principal,
    p: &Versioned<Patient>,
) -> Result<Loaded, StoreError> {
    let org_id = principal.org_id.as_str();
    let history = state.db.history::<Patient>(org_id, &p.id).await?;
    let merges = state.db.patient_merges(org_id, &p.id).await?;
    let absorbed = absorbed(state, org_id, &p.id, &merges).await?;
    let users = state
        .db
        .users(org_id)
        .await?
        .into_iter()
        .map(|u: User| (u.username, u.display_name))
        .collect();
    let mut ids: Vec<String> = merges
        .iter()
        .flat_map(|m| [m.survivor_id.clone(), m.duplicate_id.clone()])
        .chain(p.value.replaced_by.clone())
        .filter(|id| *id != p.id)
        .collect();
    ids.sort();
    ids.dedup();
    let linked = state
        .db
        .get_many::<Patient>(org_id, &ids)
        .await?
        .into_iter()
        .map(|l| (l.id.clone(), l))
        .collect();
    let coverage = coverage_section(state, principal, &p.id).await?;
    let appointments = appointments_section(state, principal, p).await?;
    Ok(Loaded {
        history,
        merges,
        absorbed,
        users,
        linked,
        coverage,
        appointments,
    })
}

fn linked_name(linked: &HashMap<String, Versioned<Patient>>, id: &str) -> Markup {
    html! {
        @match linked.get(id) {
            Some(l) => a href=(format!("/patients/{id}")) { (l.value.display_name()) " (MRN " (l.value.mrn) ")" },
            None => a href=(format!("/patients/{id}")) { "another record" },
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let patient = match load(&state, &p.org_id, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let rest = match load_rest(&state, &p, &patient).await {
        Ok(v) => v,
        Err(e) => return ops::internal_error(e),
    };
    let today = today();
    let tz = jiff::tz::TimeZone::system();
    let v = &patient.value;
    let may_merge = p.role.may(Area::PatientMerge);
    let merged_into = v.replaced_by.as_deref();
    let contact_methods = v.preferred_contact.map(|m| m.label());
    let content = html! {
        (header(&patient, today))
        @if let Some(survivor) = merged_into {
            div.notice.merged role="status" {
                p {
                    strong { "This record was merged into " (linked_name(&rest.linked, survivor)) "." }
                    " It is kept for its history and is no longer used: open the surviving record to book, check in or change details."
                }
            }
        }
        div.actions {
            @if merged_into.is_none() {
                a.button href=(format!("/patients/{}/edit", patient.id)) { "Edit details" }
                @if may_merge {
                    a.button.secondary href=(format!("/patients/{}/merge", patient.id)) { "Merge with another record…" }
                }
            }
            a href="/patients" { "Back to patient search" }
        }
        div.summary-grid {
            section.card aria-labelledby="s-demo" {
                h2 #s-demo { "Demographics" }
                dl.kv {
                    dt { "Legal name" } dd { (v.given) @if let Some(m) = &v.middle { " " (m) } " " (v.family) @if let Some(s) = &v.suffix { " " (s) } }
                    dt { "Preferred name" } dd { (v.preferred_name.as_deref().unwrap_or("—")) }
                    dt { "Date of birth" } dd { (us_date(v.birth_date)) " (age " (v.age_on(today)) ")" }
                    dt { "Sex" } dd { (sex_label(v.sex)) }
                    dt { "Gender identity" } dd { (v.gender_identity.as_deref().unwrap_or("—")) }
                    dt { "Pronouns" } dd { (v.pronouns.as_deref().unwrap_or("—")) }
                    dt { "Language" } dd {
                        @match &v.language { Some(l) => (language_label(l)), None => "—" }
                        @if v.interpreter_needed { br; strong { "Interpreter needed" } }
                    }
                    dt { "Status" } dd { @if v.active { "Active" } @else { "Inactive" } }
                    @if !v.identifiers.is_empty() {
                        dt { "Other identifiers" }
                        dd {
                            ul.plain {
                                @for i in &v.identifiers {
                                    li {
                                        @if i.system == MRN_SYSTEM { "Former MRN " (i.value) }
                                        @else { (i.value) " " span.muted.small { (i.system) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="s-reach" {
                h2 #s-reach { "Phone, email, address" }
                dl.kv {
                    @for ph in &v.phones {
                        dt { (ph.kind.label()) }
                        dd { span.nowrap { (display_phone(&ph.number)) } @if ph.sms_consent { " " span.tag { "texts OK" } } @else { " " span.tag.off { "no texts" } } }
                    }
                    @if v.phones.is_empty() { dt { "Phone" } dd { "—" } }
                    dt { "Email" } dd { (v.email.as_deref().unwrap_or("—")) }
                    // Each address with its use, the home address first.
                    @for pa in &v.addresses {
                        @let a = &pa.address;
                        dt { (pa.label()) }
                        dd {
                            (a.line1) @if let Some(l2) = &a.line2 { br; (l2) }
                            br; (a.city) ", " (a.state) " " (a.postal_code)
                            @if a.country != "US" { br; (a.country) }
                            @match (pa.start, pa.end) {
                                (None, None) => {}
                                (Some(s), None) => { br; span.muted.small { "since " (us_date(s)) } }
                                (None, Some(e)) => { br; span.muted.small { "until " (us_date(e)) } }
                                (Some(s), Some(e)) => { br; span.muted.small { (us_date(s)) " to " (us_date(e)) } }
                            }
                        }
                    }
                    @if v.addresses.is_empty() { dt { "Address" } dd { "—" } }
                    dt { "Contact by" } dd { (contact_methods.unwrap_or("No preference")) }
                }
            }
            section.card aria-labelledby="s-contacts" {
                h2 #s-contacts { "Contacts" }
                @if v.contacts.is_empty() {
                    p.muted { "No emergency contact or guarantor recorded." }
                } @else {
                    ul.plain {
                        @for c in &v.contacts {
                            li {
                                strong { (c.name) } " · " (relationship_label(&c.relationship))
                                @if let Some(ph) = &c.phone { " · " span.nowrap { (display_phone(ph)) } }
                                @if c.emergency { " " span.tag { "Emergency" } }
                                @if c.guarantor { " " span.tag { "Guarantor" } }
                            }
                        }
                    }
                }
            }
            @if merged_into.is_some() {
                section.card #coverage aria-labelledby="s-coverage" {
                    h2 #s-coverage { "Coverage" }
                    p.muted { "Coverages of a merged record move to the surviving record." }
                }
            } @else {
                (rest.coverage)
            }
            (rest.appointments)
        }
        div.pending-grid {
            (pending("s-balance", "Balance", "What the patient owes, the last payment and the copay due today.", "the money capability"))
            (pending("s-messages", "Messages and calls", "The latest calls, secure messages and reminders, with their outcome.", "the communications capability"))
            (pending("s-tasks", "Tasks", "Open tasks about this patient (calls to return, forms or coverage to fix) and who has them.", "the communications capability"))
        }
        @if !rest.merges.is_empty() {
            section aria-labelledby="s-merges" {
                h2 #s-merges { "Merged records" }
                table.dense {
                    caption.visually-hidden { "Merges this record took part in" }
                    thead { tr { th scope="col" { "Merge" } th scope="col" { "When" } th scope="col" { "By" } th scope="col" { "Reason" } th scope="col" { "Status" } } }
                    tbody {
                        @for m in &rest.merges {
                            tr {
                                td {
                                    @if m.survivor_id == patient.id {
                                        (linked_name(&rest.linked, &m.duplicate_id)) " was merged into this record"
                                    } @else {
                                        "This record was merged into " (linked_name(&rest.linked, &m.survivor_id))
                                    }
                                }
                                td { (local_time(m.merged_at_us, &tz)) }
                                td { (who(&rest.users, &m.merged_by)) }
                                td { (m.reason.as_deref().unwrap_or("—")) }
                                td {
                                    @match (m.undone_at_us, &m.undone_by) {
                                        (Some(at), by) => { "Undone " (local_time(at, &tz)) @if let Some(by) = by { " by " (who(&rest.users, by)) } }
                                        (None, _) if may_merge => {
                                            form.inline-action method="post" action=(format!("/patient-merges/{}/undo", m.id)) {
                                                (csrf_field(&p))
                                                button.secondary type="submit" { "Undo merge" }
                                            }
                                        }
                                        (None, _) => "In effect",
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted { "While a merge is in effect, the history below includes the merged record's history, each of its lines marked with the MRN it came from; undoing the merge takes them back." }
            }
        }
        section aria-labelledby="s-history" {
            h2 #s-history { "History" }
            table.dense {
                caption.visually-hidden {
                    @if rest.absorbed.is_empty() { "Versions of this record, newest first" }
                    @else { "Versions of this record and of the records merged into it, newest first" }
                }
                thead { tr { th scope="col" { "Version" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What changed" } } }
                tbody {
                    @for row in all_history_rows(&patient.id, &rest.history, &rest.merges, &rest.absorbed) {
                        tr {
                            td { (row.entry.version) }
                            td { (local_time(row.entry.changed_at_us, &tz)) }
                            td { (who(&rest.users, &row.entry.changed_by)) }
                            td {
                                (row.what)
                                @if let Some(mrn) = row.from_mrn { " " span.tag.off { "from MRN " (mrn) } }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response = shell(
        &p,
        state.config.idle_timeout_secs,
        Area::Patients,
        &v.display_name(),
        content,
    )
    .into_response();
    note(
        &mut response,
        AuditNote::new(Action::Read, "Patient", Some(&patient.id))
            .patient(&patient.id)
            .detail("patient summary"),
    );
    // Showing a merged record's history reads that record.
    for a in &rest.absorbed {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&a.id))
                .patient(&a.id)
                .detail(format!(
                    "history shown on the summary of Patient/{}, into which it is merged",
                    patient.id
                )),
        );
    }
    for l in rest
        .linked
        .values()
        .filter(|l| !rest.absorbed.iter().any(|a| a.id == l.id))
    {
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&l.id))
                .patient(&l.id)
                .detail(format!("named as merged with Patient/{}", patient.id)),
        );
    }
    response
}

/// A section whose capability is not built yet: what will be there.
/// Upcoming appointments shown on the summary; more are on the schedule.
const UPCOMING_SHOWN: i64 = 10;
/// The most recent past appointments shown.
const PAST_SHOWN: i64 = 5;

/// Upcoming and recent visits with provider, location and status; booking,
/// rescheduling and cancelling (on the appointment's page, which asks for
/// the reason) for roles that schedule.
async fn appointments_section(
    state: &AppState,
    principal: &Principal,
    p: &Versioned<Patient>,
) -> Result<Markup, StoreError> {
    let org_id = principal.org_id.as_str();
    let now = jiff::Timestamp::now();
    let upcoming_query = AppointmentQuery {
        patient_id: Some(p.id.clone()),
        from: Some(now),
        statuses: AppointmentStatus::ALL
            .into_iter()
            .filter(|s| s.holds_time())
            .collect(),
        ..AppointmentQuery::default()
    };
    let (upcoming, more_upcoming) = state
        .db
        .appointments(
            org_id,
            &upcoming_query,
            Page {
                offset: 0,
                count: UPCOMING_SHOWN,
            },
        )
        .await?;
    let past_query = AppointmentQuery {
        patient_id: Some(p.id.clone()),
        until: Some(now),
        ..AppointmentQuery::default()
    };
    let (_, past_total) = state
        .db
        .appointments(
            org_id,
            &past_query,
            Page {
                offset: 0,
                count: 0,
            },
        )
        .await?;
    let (mut past, _) = state
        .db
        .appointments(
            org_id,
            &past_query,
            Page {
                offset: (past_total - PAST_SHOWN).max(0),
                count: PAST_SHOWN,
            },
        )
        .await?;
    past.reverse();
    let directory = if upcoming.is_empty() && past.is_empty() {
        None
    } else {
        Some(Directory::load(state, org_id).await?)
    };
    let may_book = principal.role.may(Area::Scheduling) && p.value.replaced_by.is_none();
    let rows = |list: &[Versioned<AppointmentRecord>], caption: &str, upcoming: bool| {
        let Some(dir) = &directory else {
            return html! {};
        };
        html! {
            table.dense {
                caption { (caption) }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Provider" }
                    th scope="col" { "Location" } th scope="col" { "Status" }
                    @if upcoming && may_book { th scope="col" { span.visually-hidden { "Actions" } } }
                } }
                tbody {
                    @for r in list {
                        @let a = &r.value.appointment;
                        tr {
                            td { a href=(format!("/appointments/{}", r.id)) { (when(&dir.tz(&a.location_id), a.start, a.end)) } }
                            td { (dir.type_name(&a.appointment_type_id)) }
                            td { (dir.provider_name(&a.practitioner_id)) }
                            td { (dir.location_name(&a.location_id)) }
                            td { (status_text(a, &dir.tz(&a.location_id))) }
                            @if upcoming && may_book {
                                td.nowrap {
                                    a href=(format!("/appointments/{}/reschedule", r.id)) { "Reschedule" }
                                    " · "
                                    a href=(format!("/appointments/{}#f-cancel_reason", r.id)) { "Cancel…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html! {
        section.card #appointments aria-labelledby="s-appts" {
            h2 #s-appts { "Appointments" }
            @if may_book {
                p { a.button href=(format!("/schedule/find?patient={}", p.id)) { "Book an appointment" } }
            }
            @if upcoming.is_empty() {
                p.muted { "No upcoming appointment." }
            } @else {
                (rows(&upcoming, "Upcoming", true))
                @if more_upcoming > UPCOMING_SHOWN {
                    p.muted { (more_upcoming - UPCOMING_SHOWN) " more upcoming appointments are on the schedule." }
                }
            }
            @if !past.is_empty() {
                (rows(&past, "Recent visits", false))
            }
        }
    })
}

fn pending(id: &str, title: &str, what: &str, arrives_with: &str) -> Markup {
    html! {
        section.card.pending aria-labelledby=(id) {
            h2 id=(id) { (title) }
            p { (what) }
            p.muted { "Arrives with " (arrives_with) "." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_and_relationships_read_as_words() {
        assert_eq!(language_label("es"), "Spanish (es)");
        assert_eq!(language_label("x-klingon"), "x-klingon");
        assert_eq!(relationship_label("SPS"), "Spouse");
        assert_eq!(relationship_label("Neighbour"), "Neighbour");
    }
}
