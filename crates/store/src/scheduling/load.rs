//! Reads: what one slot computation needs ([`Db::slot_input`]), booking
//! evaluation, appointment lists and holds.

use super::kept_bookings::{BookingScope, BookingSource};
use super::records::AppointmentRecord;
use super::schedule_config::ScheduleSetup;
use super::{bind_vals, corrupt, in_list, int, json_col, ts_col, us};
use crate::db::sql;
use crate::records::{Page, Val, select_columns, versioned};
use crate::{Db, Result, StoreError};
use carefront_domain::audit::Action;
use carefront_domain::directory::Versioned;
use carefront_domain::scheduling::{
    AppointmentStatus, AppointmentType, BookingRequest, Evaluation, ExceptionKind, Hold,
    LocationHours, OpeningHours, Placement, Provider, Refusal, ScheduleException, SlotInput,
    Template, evaluate_booking,
};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Narrows a slot search. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFilter {
    /// Only these providers' slots (their bookings at every location still
    /// count against them).
    pub practitioner_ids: Vec<String>,
    /// Only slots at these locations.
    pub location_ids: Vec<String>,
}

/// What a booking request names, as the kept schedule set-up has it: a
/// request's practitioner and location are checked here before any of
/// them is read on its own (a booking arrives many times a second; the
/// set-up changes when an admin edits it).
#[derive(Debug, Clone)]
pub struct BookingParties(Arc<ScheduleSetup>);

impl BookingParties {
    pub(super) fn setup(&self) -> &ScheduleSetup {
        &self.0
    }

    /// Every live appointment type, active or not, by name.
    pub fn appointment_types(&self) -> Vec<AppointmentType> {
        let mut types: Vec<AppointmentType> = self.0.types.values().cloned().collect();
        types.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        types
    }

    /// An active practitioner (false: inactive, deleted or unknown).
    pub fn is_active_provider(&self, practitioner_id: &str) -> bool {
        self.0.providers.contains_key(practitioner_id)
    }

    /// A live location, active or not (false: deleted or unknown).
    pub fn is_live_location(&self, location_id: &str) -> bool {
        self.0
            .locations
            .iter()
            .any(|(hours, _)| hours.location_id == location_id)
    }
}

/// Filters of [`Db::appointments`]; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentQuery {
    pub patient_id: Option<String>,
    pub practitioner_id: Option<String>,
    pub location_id: Option<String>,
    /// Appointments starting at or after this.
    pub from: Option<Timestamp>,
    /// Appointments starting before this.
    pub until: Option<Timestamp>,
    /// Any of these statuses (empty: every status).
    pub statuses: Vec<AppointmentStatus>,
}

/// Statuses whose appointments keep their time, as SQL text (constants).
pub(crate) fn holding_statuses() -> String {
    AppointmentStatus::ALL
        .into_iter()
        .filter(|s| s.holds_time())
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Local wall-clock times are within a day of UTC anywhere.
const ZONE_SLACK: SignedDuration = SignedDuration::from_hours(48);

pub(crate) fn hold_from_row(row: &AnyRow) -> Result<Hold> {
    let id: String = row.try_get("id")?;
    let slot: Placement = json_col(row, "slot_json")?;
    Ok(Hold {
        patient_id: row.try_get("patient_id")?,
        slot,
        created_at: ts_col(row, "created_at_us")?,
        expires_at: ts_col(row, "expires_at_us")?,
        id,
    })
}

/// A hold's columns but its id (which a read of holds beside appointments
/// shares with theirs: `kept_bookings`), as one literal for both constants.
macro_rules! hold_fields {
    () => {
        "patient_id, slot_json, created_at_us, expires_at_us"
    };
}
pub(crate) const HOLD_FIELDS: &str = hold_fields!();
pub(crate) const HOLD_COLUMNS: &str = concat!("id, ", hold_fields!());

/// Audit actions that come with no change to anything a schedule is
/// computed from (reads, sign-ins, token uses), as SQL text (constants).
fn unchanging_actions() -> String {
    [
        Action::Read,
        Action::Search,
        Action::Export,
        Action::SignIn,
        Action::SignInFailed,
        Action::SignOut,
        Action::SessionExpired,
        Action::AccountLocked,
        Action::TokenUse,
        Action::AuditVerify,
    ]
    .map(|a| format!("'{}'", a.code()))
    .join(", ")
}

impl Db {
    /// Where the organization's audit chain ends: (sequence number, hash)
    /// of its newest event, `None` before the first. Every committed write
    /// appends its audit event in its own transaction, and appenders take
    /// turns on the chain head, so this dates everything committed so far.
    pub async fn schedule_mark(&self, org_id: &str) -> Result<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE org_id = $1")
                .bind(org_id)
                .fetch_optional(&mut *self.reader().await?)
                .await?,
        )
    }

    /// The chain's newest point when, since `mark` (from
    /// [`Db::schedule_mark`]), only reads, sign-ins and the like were
    /// audited: nothing a schedule is computed from changed. `None` when
    /// something else was audited, or `mark` is not on this chain.
    pub async fn schedule_unchanged_since(
        &self,
        org_id: &str,
        mark: &(i64, String),
    ) -> Result<Option<(i64, String)>> {
        // One statement, so the head and the events are read together.
        let row: Option<(i64, String, Option<String>, i64)> = sqlx::query_as(sql(format!(
            "SELECT h.seq, h.hash, \
             (SELECT e.hash FROM audit_events e WHERE e.org_id = $1 AND e.seq = $2), \
             (SELECT COUNT(*) FROM audit_events e WHERE e.org_id = $1 AND e.seq > $2 \
              AND e.seq <= h.seq AND e.action NOT IN ({})) \
             FROM audit_head h WHERE h.org_id = $1",
            unchanging_actions()
        )))
        .bind(org_id)
        .bind(mark.0)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(row.and_then(|(seq, hash, at_mark, changes)| {
            (at_mark.as_ref() == Some(&mark.1) && changes == 0).then_some((seq, hash))
        }))
    }

    /// A location's zone and opening hours (no hours stored: closed every
    /// day to in-person visits outside extra sessions).
    pub async fn location_hours(&self, org_id: &str, location_id: &str) -> Result<LocationHours> {
        let row = sqlx::query(
            "SELECT l.id, l.timezone, h.hours_json FROM locations l \
             LEFT JOIN location_hours h ON h.org_id = l.org_id AND h.id = l.id AND h.deleted = 0 \
             WHERE l.org_id = $1 AND l.id = $2 AND l.deleted = 0",
        )
        .bind(org_id)
        .bind(location_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        location_hours_from_row(&row)
    }

    /// Every live (not deleted) appointment type, active or not, by name,
    /// from the kept schedule set-up.
    pub async fn live_appointment_types(&self, org_id: &str) -> Result<Vec<AppointmentType>> {
        Ok(self.booking_parties(org_id).await?.appointment_types())
    }

    /// The kept schedule set-up's types, providers and locations, which a
    /// booking request names.
    pub async fn booking_parties(&self, org_id: &str) -> Result<BookingParties> {
        Ok(BookingParties(self.schedule_setup(org_id).await?))
    }

    /// [`Db::booking_parties`] as of `generation` of the set-up
    /// ([`Db::schedule_setup_at`]).
    pub(super) async fn booking_parties_at(
        &self,
        org_id: &str,
        generation: i64,
    ) -> Result<BookingParties> {
        Ok(BookingParties(
            self.schedule_setup_at(org_id, generation).await?,
        ))
    }

    /// A live appointment type, from `setup`; one it does not hold is read,
    /// to tell a deleted type from an unknown one.
    async fn appointment_type(
        &self,
        setup: &ScheduleSetup,
        org_id: &str,
        appointment_type_id: &str,
    ) -> Result<AppointmentType> {
        match setup.types.get(appointment_type_id) {
            Some(kind) => Ok(kind.clone()),
            None => Ok(self
                .get::<AppointmentType>(org_id, appointment_type_id)
                .await?
                .value),
        }
    }

    /// Exactly what the domain needs to compute slots of one appointment
    /// type in `[from, until)` at `now` (see `SlotInput`): the type, every
    /// live location's zone and hours, the active providers (narrowed by
    /// `filter`) with the specialties of their active PractitionerRoles,
    /// their templates and the exceptions in range, active resources, the
    /// bookings (appointments keeping time) and live holds that overlap the
    /// range for those providers or for any resource.
    pub async fn slot_input(
        &self,
        org_id: &str,
        appointment_type_id: &str,
        filter: &SlotFilter,
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<SlotInput> {
        let setup = self.schedule_setup(org_id).await?;
        let appointment_type = self
            .appointment_type(&setup, org_id, appointment_type_id)
            .await?;
        let needs_resources = appointment_type.resource_kind.is_some();
        self.load_slot_input(
            &setup,
            org_id,
            appointment_type,
            needs_resources,
            filter,
            &[],
            from,
            until,
            now,
            BookingSource::Kept,
        )
        .await
    }

    /// One [`Db::slot_input`] for several types at once, for
    /// `free_slots_by_type` (its own type is `kinds[0]`; `None` without
    /// types), with the providers further narrowed to those holding one of
    /// `specialties` (when any).
    #[allow(clippy::too_many_arguments)]
    pub async fn slot_input_for_types(
        &self,
        org_id: &str,
        kinds: &[AppointmentType],
        filter: &SlotFilter,
        specialties: &[String],
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<SlotInput>> {
        let Some(first) = kinds.first() else {
            return Ok(None);
        };
        let needs_resources = kinds.iter().any(|k| k.resource_kind.is_some());
        let setup = self.schedule_setup(org_id).await?;
        self.load_slot_input(
            &setup,
            org_id,
            first.clone(),
            needs_resources,
            filter,
            specialties,
            from,
            until,
            now,
            BookingSource::Kept,
        )
        .await
        .map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_slot_input(
        &self,
        setup: &ScheduleSetup,
        org_id: &str,
        appointment_type: AppointmentType,
        needs_resources: bool,
        filter: &SlotFilter,
        specialties: &[String],
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
        source: BookingSource,
    ) -> Result<SlotInput> {
        let mut locations = Vec::with_capacity(setup.locations.len());
        let mut open_locations = BTreeSet::new();
        for (hours, active) in &setup.locations {
            let wanted =
                filter.location_ids.is_empty() || filter.location_ids.contains(&hours.location_id);
            // Slots elsewhere need no other location's zone or hours (a
            // provider's bookings there count all the same).
            if !wanted {
                continue;
            }
            if *active {
                open_locations.insert(hours.location_id.clone());
            }
            locations.push(hours.clone());
        }

        let providers: Vec<Provider> = setup
            .providers
            .iter()
            .filter(|(id, _)| {
                filter.practitioner_ids.is_empty() || filter.practitioner_ids.contains(id)
            })
            .filter(|(_, held)| {
                specialties.is_empty() || specialties.iter().any(|s| held.contains(s))
            })
            .map(|(id, held)| Provider {
                practitioner_id: id.clone(),
                specialties: held.iter().cloned().collect(),
            })
            .collect();
        let provider_ids: Vec<String> = providers
            .iter()
            .map(|p| p.practitioner_id.clone())
            .collect();

        let utc = TimeZone::UTC;
        let local_from = utc.to_datetime(from.saturating_sub(ZONE_SLACK).unwrap_or(from));
        let local_until = utc.to_datetime(until.saturating_add(ZONE_SLACK).unwrap_or(until));
        let (first_day, last_day) = (local_from.date(), local_until.date());

        let loaded: BTreeSet<&str> = provider_ids.iter().map(String::as_str).collect();
        // The set-up keeps each kind in id order.
        let templates: Vec<Template> = setup
            .templates
            .iter()
            .filter(|t| {
                loaded.contains(t.practitioner_id.as_str())
                    && open_locations.contains(&t.location_id)
                    && t.effective_from <= last_day
                    && t.effective_until.is_none_or(|u| u >= first_day)
            })
            .cloned()
            .collect();

        let exceptions: Vec<ScheduleException> = setup
            .exceptions
            .iter()
            .filter(|e| e.start < local_until && e.end > local_from)
            .filter(|e| match &e.kind {
                // Sessions only where slots are wanted; the rest concerns
                // anyone who may be loaded.
                ExceptionKind::ExtraSession { location_id, .. } => {
                    open_locations.contains(location_id)
                }
                _ => true,
            })
            .cloned()
            .collect();

        // Rooms elsewhere cannot serve slots at the wanted locations.
        let resources = setup
            .resources
            .iter()
            .filter(|r| {
                filter.location_ids.is_empty() || filter.location_ids.contains(&r.location_id)
            })
            .cloned()
            .collect();

        // Bookings: the loaded providers' (everywhere) and, when the type
        // needs a room or device, those using one at the wanted locations (a
        // resource is booked only at its own location). Holds likewise.
        let wanted: Vec<String> = locations.iter().map(|l| l.location_id.clone()).collect();
        let scope = BookingScope {
            providers: &provider_ids,
            rooms_at: needs_resources.then_some(wanted.as_slice()),
        };
        let (bookings, holds) = self
            .bookings_in(org_id, scope, from, until, now, source)
            .await?;

        Ok(SlotInput {
            appointment_type,
            locations,
            providers,
            templates,
            exceptions,
            resources,
            bookings,
            holds,
            from,
            until,
            now,
        })
    }

    /// Checks a requested booking of a type against the schedule as stored
    /// (the request's `ignore` ids not counted). The outer `Result` is the
    /// database's; the inner one the domain's answer.
    pub async fn evaluate_booking(
        &self,
        org_id: &str,
        appointment_type_id: &str,
        request: &BookingRequest,
        now: Timestamp,
    ) -> Result<std::result::Result<Evaluation, Refusal>> {
        let setup = self.schedule_setup(org_id).await?;
        self.evaluate_booking_in(&setup, org_id, appointment_type_id, request, now)
            .await
    }

    /// [`Db::evaluate_booking`] against a set-up the caller read for this
    /// request (no second look at whether it changed).
    pub(super) async fn evaluate_booking_in(
        &self,
        setup: &ScheduleSetup,
        org_id: &str,
        appointment_type_id: &str,
        request: &BookingRequest,
        now: Timestamp,
    ) -> Result<std::result::Result<Evaluation, Refusal>> {
        let kind = self
            .appointment_type(setup, org_id, appointment_type_id)
            .await?;
        let end = request
            .start
            .saturating_add(kind.duration())
            .unwrap_or(Timestamp::MAX);
        let filter = SlotFilter {
            practitioner_ids: vec![request.practitioner_id.clone()],
            location_ids: vec![request.location_id.clone()],
        };
        let needs_resources = kind.resource_kind.is_some();
        let mut input = self
            .load_slot_input(
                setup,
                org_id,
                kind,
                needs_resources,
                &filter,
                &[],
                request.start,
                end,
                now,
                // Many bookings are evaluated at once: each reads its own
                // hour rather than wait for the kept bookings' turn.
                BookingSource::Database,
            )
            .await?;
        // A room asked for by id is judged even when it is elsewhere, so
        // that the refusal says where it is.
        if let Some(id) = &request.resource_id
            && !input.resources.iter().any(|r| &r.id == id)
        {
            input
                .resources
                .extend(setup.resources.iter().find(|r| &r.id == id).cloned());
        }
        Ok(evaluate_booking(&input, request))
    }

    /// Appointments matching every filter, by start time, with the total
    /// number of matches.
    pub async fn appointments(
        &self,
        org_id: &str,
        query: &AppointmentQuery,
        page: Page,
    ) -> Result<(Vec<Versioned<AppointmentRecord>>, i64)> {
        let mut binds = vec![Val::from(org_id)];
        let mut clauses = vec!["org_id = $1".to_string(), "deleted = 0".to_string()];
        for (col, v) in [
            ("patient_id", &query.patient_id),
            ("practitioner_id", &query.practitioner_id),
            ("location_id", &query.location_id),
        ] {
            if let Some(v) = v {
                binds.push(Val::from(v.as_str()));
                clauses.push(format!("{col} = ${}", binds.len()));
            }
        }
        if let Some(from) = query.from {
            binds.push(int(us(from)));
            clauses.push(format!("start_us >= ${}", binds.len()));
        }
        if let Some(until) = query.until {
            binds.push(int(us(until)));
            clauses.push(format!("start_us < ${}", binds.len()));
        }
        if !query.statuses.is_empty() {
            let codes: Vec<String> = query
                .statuses
                .iter()
                .map(|s| s.code().to_string())
                .collect();
            clauses.push(format!("status IN ({})", in_list(&mut binds, &codes)));
        }
        let where_sql = clauses.join(" AND ");
        let total: i64 = bind_vals(
            sqlx::query(sql(format!(
                "SELECT COUNT(*) AS n FROM appointments WHERE {where_sql}"
            ))),
            &binds,
        )
        .fetch_one(&mut *self.reader().await?)
        .await?
        .try_get("n")?;
        if page.count <= 0 {
            return Ok((Vec::new(), total));
        }
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "SELECT {} FROM appointments WHERE {where_sql} ORDER BY start_us, id \
                 LIMIT {} OFFSET {}",
                select_columns::<AppointmentRecord>(),
                page.count.clamp(0, 1000),
                page.offset.max(0)
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let found = rows.iter().map(versioned).collect::<Result<_>>()?;
        Ok((found, total))
    }

    /// One hold, live or expired (until purged).
    pub async fn get_hold(&self, org_id: &str, hold_id: &str) -> Result<Hold> {
        let row = sqlx::query(sql(format!(
            "SELECT {HOLD_COLUMNS} FROM appointment_holds WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(hold_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        hold_from_row(&row)
    }

    /// Live holds starting in `[from, until)`, by start.
    pub async fn live_holds(
        &self,
        org_id: &str,
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Hold>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {HOLD_COLUMNS} FROM appointment_holds WHERE org_id = $1 \
             AND start_us >= $2 AND start_us < $3 AND expires_at_us > $4 ORDER BY start_us, id"
        )))
        .bind(org_id)
        .bind(us(from))
        .bind(us(until))
        .bind(us(now))
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(hold_from_row).collect()
    }
}

fn location_hours_from_row(row: &AnyRow) -> Result<LocationHours> {
    let location_id: String = row.try_get("id")?;
    let hours: Option<String> = row.try_get("hours_json")?;
    let opening_hours: Vec<OpeningHours> = match hours {
        Some(h) => serde_json::from_str(&h)
            .map_err(|e| corrupt(&format!("opening hours of location {location_id}"), e))?,
        None => Vec::new(),
    };
    Ok(LocationHours {
        timezone: row.try_get("timezone")?,
        location_id,
        opening_hours,
    })
}
