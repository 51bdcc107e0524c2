//! Schedule: one per practitioner and location, derived from the
//! practitioner's templates there (and extra sessions from today on); read
//! and searched, never stored or written. Its id encodes both
//! (see [`super::scheduling`]), so slots name their schedule without a
//! lookup.
//!
//! # Mapping
//!
//! | derived from | FHIR |
//! | --- | --- |
//! | practitioner and location | `actor` = [Practitioner/p, Location/l] |
//! | a template in effect today or later, or an extra session to come | `active` |
//! | the templates' (and sessions') dates | `planningHorizon` (no end while a template is open-ended) |
//! | appointment types the provider offers in those hours | `serviceType` ([`APPOINTMENT_TYPE_SYSTEM`](super::scheduling::APPOINTMENT_TYPE_SYSTEM)) |
//! | the provider's PractitionerRole specialties | `specialty` (NUCC) |
//! | the weekly blocks | `comment` |

use super::scheduling::{every, schedule_id, specialty_coding, type_coding};
use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::outcome::FhirError;
use crate::fhir::search::{self, SearchParam, reference};
use crate::fhir::{Ctx, capability, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::PractitionerRole;
use carefront_domain::scheduling::{
    AppointmentType, ExceptionKind, MAX_DAYS_AHEAD_LIMIT, ScheduleException, Template,
};
use carefront_store::Db;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const KIND: &str = "Schedule";

const DOC: &str = "A practitioner's availability at one location, derived from their weekly \
    templates (and extra sessions to come): read and search only, for every role except \
    auditor. actor = [Practitioner, Location]; active when a template is in effect today or \
    later; planningHorizon = the templates' dates (no end while one is open-ended); serviceType \
    = the appointment types (http://carefront.example/fhir/CodeSystem/appointment-type, see \
    HealthcareService) the provider offers in those hours; specialty = the provider's NUCC \
    specialties; comment = the weekly hours in the location's local time. The id encodes \
    practitioner and location; Slot.schedule refers to it. Not versioned.";

/// One derived schedule.
#[derive(Debug, Clone)]
pub struct View {
    pub id: String,
    pub practitioner_id: String,
    pub location_id: String,
    pub active: bool,
    pub from: Option<Date>,
    /// `None`: open-ended.
    pub until: Option<Date>,
    pub service_types: Vec<(String, String)>,
    pub specialties: Vec<String>,
    pub comment: String,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hours(t: &Template) -> String {
    let blocks: Vec<String> = t
        .blocks
        .iter()
        .map(|b| {
            let day = WEEKDAYS
                .get(usize::from(b.weekday).saturating_sub(1))
                .unwrap_or(&"?");
            format!(
                "{day} {}-{}",
                b.start.strftime("%H:%M"),
                b.end.strftime("%H:%M")
            )
        })
        .collect();
    let until = t
        .effective_until
        .map_or("open-ended".to_string(), |u| format!("until {u}"));
    format!("from {} {until}: {}", t.effective_from, blocks.join(", "))
}

#[derive(Default)]
struct Pair {
    templates: Vec<Template>,
    sessions: Vec<ScheduleException>,
}

/// Every schedule of the organization, by practitioner and location.
pub async fn derive(db: &Db, org_id: &str) -> Result<Vec<View>, FhirError> {
    let today = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
    let templates = db.templates(org_id, None).await?;
    let from = today.yesterday().unwrap_or(today).at(0, 0, 0, 0);
    let until = today
        .checked_add(jiff::Span::new().days(i64::from(MAX_DAYS_AHEAD_LIMIT) + 2))
        .unwrap_or(today)
        .at(0, 0, 0, 0);
    let sessions = db.schedule_exceptions(org_id, from, until).await?;
    let roles = every::<PractitionerRole>(db, org_id).await?;
    let types = every::<AppointmentType>(db, org_id).await?;

    let mut pairs: BTreeMap<(String, String), Pair> = BTreeMap::new();
    for t in templates.into_iter().map(|t| t.value) {
        let key = (t.practitioner_id.clone(), t.location_id.clone());
        pairs.entry(key).or_default().templates.push(t);
    }
    for e in sessions.into_iter().map(|e| e.value) {
        if let ExceptionKind::ExtraSession {
            practitioner_id,
            location_id,
            ..
        } = &e.kind
        {
            let key = (practitioner_id.clone(), location_id.clone());
            pairs.entry(key).or_default().sessions.push(e);
        }
    }
    let views = pairs
        .into_iter()
        .map(|((practitioner_id, location_id), pair)| {
            let mut specialties: Vec<String> = roles
                .iter()
                .filter(|r| r.value.active && r.value.practitioner_id == practitioner_id)
                .map(|r| r.value.specialty.clone())
                .collect();
            specialties.sort();
            specialties.dedup();
            let allows = |type_id: &str| {
                pair.templates
                    .iter()
                    .any(|t| t.blocks.iter().any(|b| b.allows(type_id)))
                    || pair.sessions.iter().any(|s| match &s.kind {
                        ExceptionKind::ExtraSession {
                            appointment_type_ids,
                            ..
                        } => {
                            appointment_type_ids.is_empty()
                                || appointment_type_ids.iter().any(|t| t == type_id)
                        }
                        _ => false,
                    })
            };
            let service_types = types
                .iter()
                .map(|t| &t.value)
                .filter(|t| {
                    t.active && t.offered_by(&practitioner_id, &specialties) && allows(&t.id)
                })
                .map(|t| (t.id.clone(), t.name.clone()))
                .collect();
            let active = pair
                .templates
                .iter()
                .any(|t| t.effective_until.is_none_or(|u| u >= today))
                || pair.sessions.iter().any(|s| s.end.date() >= today);
            let starts = pair
                .templates
                .iter()
                .map(|t| t.effective_from)
                .chain(pair.sessions.iter().map(|s| s.start.date()));
            let open_ended = pair.templates.iter().any(|t| t.effective_until.is_none());
            let ends = pair
                .templates
                .iter()
                .filter_map(|t| t.effective_until)
                .chain(pair.sessions.iter().map(|s| s.end.date()));
            let mut comment: Vec<String> = pair.templates.iter().map(hours).collect();
            comment.extend(pair.sessions.iter().map(|s| {
                format!(
                    "extra session {} to {}",
                    s.start.strftime("%Y-%m-%d %H:%M"),
                    s.end.strftime("%H:%M")
                )
            }));
            View {
                id: schedule_id(&practitioner_id, &location_id),
                practitioner_id,
                location_id,
                active,
                from: starts.min(),
                until: if open_ended { None } else { ends.max() },
                service_types,
                specialties,
                comment: format!("Local time at the location. {}", comment.join("; ")),
            }
        })
        .collect();
    Ok(views)
}

pub fn schedule_json(v: &View) -> Value {
    json!({
        "resourceType": KIND,
        "id": v.id,
        "active": v.active,
        "serviceType": v
            .service_types
            .iter()
            .map(|(id, name)| type_coding(id, Some(name)))
            .collect::<Vec<_>>(),
        "specialty": v.specialties.iter().map(|s| specialty_coding(s)).collect::<Vec<_>>(),
        "actor": [
            { "reference": format!("Practitioner/{}", v.practitioner_id) },
            { "reference": format!("Location/{}", v.location_id) },
        ],
        "planningHorizon": {
            "start": v.from.map(|d| d.to_string()),
            "end": v.until.map(|d| d.to_string()),
        },
        "comment": v.comment,
    })
}

#[derive(Debug, Default)]
pub struct ScheduleSearch {
    /// (kind, id): `Practitioner`, `Location`, or "" for either.
    actors: Vec<(&'static str, String)>,
    active: Option<bool>,
    id: Option<String>,
    nothing: bool,
}

impl ScheduleSearch {
    fn keeps(&self, v: &View) -> bool {
        !self.nothing
            && self.active.is_none_or(|a| a == v.active)
            && self.id.as_ref().is_none_or(|id| *id == v.id)
            && self.actors.iter().all(|(kind, id)| match *kind {
                "Practitioner" => v.practitioner_id == *id,
                "Location" => v.location_id == *id,
                _ => v.practitioner_id == *id || v.location_id == *id,
            })
    }
}

/// A reference search value naming a practitioner or a location.
pub fn actor(value: &str) -> Result<(&'static str, String), String> {
    match value.split_once('/') {
        None if !value.is_empty() => Ok(("", value.to_string())),
        Some(("Practitioner", _)) => Ok(("Practitioner", reference(value, "Practitioner")?.into())),
        Some(("Location", _)) => Ok(("Location", reference(value, "Location")?.into())),
        _ => Err("must be Practitioner/id, Location/id or a bare id".into()),
    }
}

pub const SEARCH: &[SearchParam<ScheduleSearch>] = &[
    SearchParam {
        name: "actor",
        kind: "reference",
        doc: "Practitioner/id or Location/id (a bare id matches either).",
        apply: |s, v| {
            s.actors.push(actor(v)?);
            Ok(())
        },
    },
    SearchParam {
        name: "active",
        kind: "token",
        doc: "true or false (any other value matches nothing).",
        apply: |s, v| {
            match v {
                "true" => s.active = Some(true),
                "false" => s.active = Some(false),
                _ => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id.",
        apply: |s, v| {
            s.id = Some(v.to_string());
            Ok(())
        },
    },
];

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(&format!("/{KIND}"), get(search_type))
        .route(&format!("/{KIND}/{{id}}"), get(read))
}

pub fn capability_entry() -> Value {
    capability::entry(KIND, DOC, &["read", "search-type"], false, &[SEARCH])
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let views = derive(&ctx.state.db, ctx.org()).await?;
        let v = views
            .iter()
            .find(|v| v.id == id)
            .ok_or_else(|| FhirError::NotFound(format!("{KIND}/{id} is not known.")))?;
        Ok(json_response(StatusCode::OK, schedule_json(v)))
    }
    .await;
    finish(note, result)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let mut filter = ScheduleSearch::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut filter)?;
        let views = derive(&ctx.state.db, ctx.org()).await?;
        let matches: Vec<&View> = views.iter().filter(|v| filter.keeps(v)).collect();
        let entries = matches
            .iter()
            .skip(usize::try_from(query.page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.page.count).unwrap_or(0))
            .map(|v| match_entry(format!("{}/{KIND}/{}", ctx.base, v.id), schedule_json(v)))
            .collect();
        let total = i64::try_from(matches.len()).unwrap_or(i64::MAX);
        let url = format!("{}/{KIND}", ctx.base);
        Ok(json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        ))
    }
    .await;
    finish(note, result)
}
