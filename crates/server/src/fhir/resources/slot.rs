//! Slot: the openings the schedule offers, computed from templates,
//! exceptions, opening hours, appointments and holds on every request (the
//! domain's `free_slots`); nothing is stored per slot. The id encodes
//! practitioner, location, appointment type and start (see
//! [`super::scheduling`]), so a slot can be read back (404 once the
//! schedule no longer has it).
//!
//! Status: `free` while it can be booked (`overbooked` when that would
//! double-book the provider within the overbooking limit), `busy-tentative`
//! while a live hold keeps it, `busy` when appointments (or its room) take
//! it. Searches cover at most [`MAX_RANGE_DAYS`] days.

use super::scheduling::{
    APPOINTMENT_TYPE_SYSTEM, DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, Offered, Part, Scope, SlotStatus,
    days, every, offered, offered_at, parse_schedule_id, parse_slot_id, resolve_key, schedule_id,
    slot_id, specialty_coding, type_coding,
};
use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resources::schedule::actor;
use crate::fhir::search::{self, SearchParam, date_bounds, token};
use crate::fhir::{Ctx, capability, finish, json_response, note};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::NUCC_TAXONOMY_SYSTEM;
use carefront_domain::scheduling::AppointmentType;
use carefront_store::SlotFilter;
use jiff::Timestamp;
use serde_json::{Value, json};

const KIND: &str = "Slot";

const DOC: &str = "An opening on a practitioner's schedule for one appointment type, computed \
    from templates, exceptions, opening hours, appointments and live holds on every request \
    (not stored); read and search only, for every role except auditor. The id encodes \
    practitioner, location, appointment type and start, so it stays the same and can be read \
    back (404 once the schedule no longer has it). schedule = Schedule (practitioner and \
    location); serviceType = the appointment type \
    (http://carefront.example/fhir/CodeSystem/appointment-type, see HealthcareService); \
    specialty = the provider's NUCC specialties; status free (bookable; overbooked = true when \
    booking it would use the provider's overbooking allowance), busy-tentative (a live hold \
    keeps it) or busy (appointments take it); comment = local time at the location. Searches \
    cover at most 31 days (default: 7 days from the start given, or from now): a wider start \
    range is refused with 400 naming start. Book it with Appointment create (slot reference or \
    start and participants) or Appointment/$hold and $book.";

#[derive(Debug, Default)]
pub struct SlotSearch {
    from: Option<i64>,
    until: Option<i64>,
    practitioners: Vec<String>,
    locations: Vec<String>,
    /// Bare actor ids: practitioner or location.
    either: Vec<String>,
    schedules: Vec<(Part, Part)>,
    statuses: Option<SlotStatus>,
    types: Vec<String>,
    specialty: Option<String>,
    nothing: bool,
}

impl SlotSearch {
    fn keeps(&self, o: &Offered) -> bool {
        let s = &o.slot;
        !self.nothing
            && self.practitioners.iter().all(|p| *p == s.practitioner_id)
            && self.locations.iter().all(|l| *l == s.location_id)
            && self
                .either
                .iter()
                .all(|x| *x == s.practitioner_id || *x == s.location_id)
            && self
                .schedules
                .iter()
                .all(|(p, l)| p.matches(&s.practitioner_id) && l.matches(&s.location_id))
            && self.types.iter().all(|t| *t == s.appointment_type_id)
    }

    /// The one value every constraint of a kind agrees on, to narrow what
    /// is loaded.
    fn only(values: &[String]) -> Vec<String> {
        match values.first() {
            Some(first) if values.iter().all(|v| v == first) => vec![first.clone()],
            _ => Vec::new(),
        }
    }
}

pub const SEARCH: &[SearchParam<SlotSearch>] = &[
    SearchParam {
        name: "schedule",
        kind: "reference",
        doc: "Schedule/id or the bare id.",
        apply: |s, v| {
            let id = v.strip_prefix("Schedule/").unwrap_or(v);
            match parse_schedule_id(id) {
                Some((p, l)) => {
                    if let Part::Exact(p) = &p {
                        s.practitioners.push(p.clone());
                    }
                    if let Part::Exact(l) = &l {
                        s.locations.push(l.clone());
                    }
                    s.schedules.push((p, l));
                }
                None => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "schedule.actor",
        kind: "reference",
        doc: "The schedule's Practitioner/id or Location/id (a bare id matches either).",
        apply: |s, v| {
            match actor(v)? {
                ("Practitioner", id) => s.practitioners.push(id),
                ("Location", id) => s.locations.push(id),
                (_, id) => s.either.push(id),
            }
            Ok(())
        },
    },
    SearchParam {
        name: "start",
        kind: "date",
        doc: "When the slot starts; prefixes eq, ge, gt, le, lt (ge2026-03-09&lt2026-03-16). \
              At most 31 days; without an upper bound 7 days are searched.",
        apply: |s, v| {
            let (from, until) = date_bounds(v)?;
            if let Some(f) = from {
                s.from = Some(s.from.map_or(f, |x| x.max(f)));
            }
            if let Some(u) = until {
                s.until = Some(s.until.map_or(u, |x| x.min(u)));
            }
            Ok(())
        },
    },
    SearchParam {
        name: "status",
        kind: "token",
        doc: "free | busy-tentative | busy (default: all three).",
        apply: |s, v| {
            match (SlotStatus::from_code(v), s.statuses) {
                (Some(new), None) => s.statuses = Some(new),
                (Some(new), Some(old)) if new == old => {}
                _ => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "service-type",
        kind: "token",
        doc: "The appointment type: http://carefront.example/fhir/CodeSystem/appointment-type|ID \
              or the bare id (see HealthcareService).",
        apply: |s, v| {
            match token(v, APPOINTMENT_TYPE_SYSTEM) {
                Some(id) => s.types.push(id.to_string()),
                None => s.nothing = true,
            }
            Ok(())
        },
    },
    SearchParam {
        name: "specialty",
        kind: "token",
        doc: "Providers with this NUCC specialty: http://nucc.org/provider-taxonomy|CODE or the \
              bare code.",
        apply: |s, v| {
            match token(v, NUCC_TAXONOMY_SYSTEM) {
                Some(code) if s.specialty.as_deref().is_none_or(|c| c == code) => {
                    s.specialty = Some(code.to_string());
                }
                _ => s.nothing = true,
            }
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

pub fn slot_json(o: &Offered) -> Value {
    let s = &o.slot;
    json!({
        "resourceType": KIND,
        "id": slot_id(s),
        "serviceType": [type_coding(&s.appointment_type_id, Some(&o.type_name))],
        "specialty": o.specialties.iter().map(|c| specialty_coding(c)).collect::<Vec<_>>(),
        "schedule": { "reference": format!("Schedule/{}", schedule_id(&s.practitioner_id, &s.location_id)) },
        "status": o.status.code(),
        "start": s.start.to_string(),
        "end": s.end.to_string(),
        "overbooked": (s.booked > 0).then_some(true),
        "comment": format!(
            "{} to {} local time at the location",
            s.local_start.strftime("%Y-%m-%d %H:%M"),
            s.local_end.strftime("%H:%M")
        ),
    })
}

/// The `[from, until)` a slot search covers: from the later of its lower
/// bound and now, to its upper bound or [`DEFAULT_RANGE_DAYS`] later.
pub fn window(
    from: Option<i64>,
    until: Option<i64>,
    now: Timestamp,
    param: &str,
    expression: &str,
) -> Result<(Timestamp, Timestamp), FhirError> {
    let ts =
        |us: i64| Timestamp::from_microsecond(us).map_err(|e| FhirError::invalid(e.to_string()));
    let from = from.map(ts).transpose()?.map_or(now, |f| f.max(now));
    let until = match until.map(ts).transpose()? {
        Some(u) => u,
        None => from
            .checked_add(days(DEFAULT_RANGE_DAYS))
            .map_err(|e| FhirError::invalid(e.to_string()))?,
    };
    if until.duration_since(from) > days(MAX_RANGE_DAYS) {
        return Err(FhirError::Invalid(vec![Issue::at(
            "too-costly",
            expression,
            format!(
                "{param}: the range from {from} to {until} covers more than {MAX_RANGE_DAYS} \
                 days; search at most {MAX_RANGE_DAYS} days at a time"
            ),
        )]));
    }
    Ok((from, until.max(from)))
}

async fn types(ctx: &Ctx) -> Result<Vec<AppointmentType>, FhirError> {
    Ok(every::<AppointmentType>(&ctx.state.db, ctx.org())
        .await?
        .into_iter()
        .map(|v| v.value)
        .collect())
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Read, KIND, Some(&id), "read");
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let gone = || {
            FhirError::NotFound(format!(
                "{KIND}/{id} is not on the schedule (it may have passed or the schedule changed)."
            ))
        };
        let key = parse_slot_id(&id).ok_or_else(gone)?;
        let types = types(&ctx).await?;
        let db = &ctx.state.db;
        let key = resolve_key(db, ctx.org(), &key, &types)
            .await?
            .ok_or_else(gone)?;
        let found = offered_at(db, ctx.org(), &key, &types, Timestamp::now())
            .await?
            .ok_or_else(gone)?;
        Ok(json_response(StatusCode::OK, slot_json(&found)))
    }
    .await;
    finish(note, result)
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let mut filter = SlotSearch::default();
        let query = search::parse(q.as_deref(), &[SEARCH], &mut filter)?;
        let now = Timestamp::now();
        let (from, until) = window(
            filter.from,
            filter.until,
            now,
            "search parameter 'start'",
            "Slot.start",
        )?;
        let mut all = types(&ctx).await?;
        if !filter.types.is_empty() {
            all.retain(|t| filter.types.contains(&t.id));
        }
        let found = if filter.nothing || from >= until {
            Vec::new()
        } else {
            let scope = Scope {
                filter: SlotFilter {
                    practitioner_ids: SlotSearch::only(&filter.practitioners),
                    location_ids: SlotSearch::only(&filter.locations),
                },
                from,
                until,
                now,
                specialty: filter.specialty.clone(),
                statuses: filter.statuses.into_iter().collect(),
            };
            offered(&ctx.state.db, ctx.org(), &all, &scope).await?
        };
        let matches: Vec<&Offered> = found.iter().filter(|o| filter.keeps(o)).collect();
        let entries = matches
            .iter()
            .skip(usize::try_from(query.page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.page.count).unwrap_or(0))
            .map(|o| {
                match_entry(
                    format!("{}/{KIND}/{}", ctx.base, slot_id(&o.slot)),
                    slot_json(o),
                )
            })
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
