//! The schedule's configuration: appointment types, resources, opening
//! hours, templates and exceptions. Each write validates with the domain
//! (errors name the field), checks that what it refers to exists (naming
//! the field too), keeps history and appends its audit event last.

use super::Actor;
use super::records::LocationOpeningHours;
use crate::records::{Filter, Page, Record, Val};
use crate::{Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Room, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, ExceptionKind, LocationHours, OpeningHours, Resource, ScheduleException,
    Template,
};
use jiff::civil::DateTime;
use std::collections::BTreeSet;

const ALL: Page = Page {
    offset: 0,
    count: 1000,
};

fn fill_id(id: &mut String) {
    if id.trim().is_empty() {
        *id = new_id();
    }
}

impl WriteTx {
    async fn create_audited<R: Record>(
        &mut self,
        id: &str,
        value: &R,
        actor: &Actor,
    ) -> Result<Versioned<R>> {
        let stored = self.create(id, value, &actor.actor_name).await?;
        self.audit(actor.entry(Action::Create, R::KIND, id)).await?;
        Ok(stored)
    }

    async fn update_audited<R: Record>(
        &mut self,
        id: &str,
        value: &R,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<R>> {
        let stored = self
            .update(id, value, if_version, &actor.actor_name)
            .await?;
        self.audit(actor.entry(Action::Update, R::KIND, id)).await?;
        Ok(stored)
    }

    async fn delete_audited<R: Record>(&mut self, id: &str, actor: &Actor) -> Result<i64> {
        let version = self.delete::<R>(id, &actor.actor_name).await?;
        self.audit(actor.entry(Action::Delete, R::KIND, id)).await?;
        Ok(version)
    }

    /// Adds an error on `field` unless `id` is a live record of `table`.
    async fn require(
        &mut self,
        errors: &mut ValidationErrors,
        field: &str,
        table: &str,
        id: &str,
    ) -> Result<()> {
        if !self.live(table, id).await? {
            errors.add(field, format!("no such record: {id}"));
        }
        Ok(())
    }

    async fn check_type_refs(&mut self, t: &AppointmentType) -> Result<()> {
        let mut errors = ValidationErrors::new();
        for (i, p) in t.practitioner_ids.iter().enumerate() {
            self.require(
                &mut errors,
                &format!("practitioner_ids[{i}]"),
                "practitioners",
                p,
            )
            .await?;
        }
        errors.into_result(()).map_err(Into::into)
    }

    /// A blank id gets a new one.
    pub async fn create_appointment_type(
        &mut self,
        mut t: AppointmentType,
        actor: &Actor,
    ) -> Result<Versioned<AppointmentType>> {
        fill_id(&mut t.id);
        let t = t.validate()?;
        self.check_type_refs(&t).await?;
        self.create_audited(&t.id.clone(), &t, actor).await
    }

    /// Updates the type with `t.id`.
    pub async fn update_appointment_type(
        &mut self,
        t: AppointmentType,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<AppointmentType>> {
        let t = t.validate()?;
        self.check_type_refs(&t).await?;
        self.update_audited(&t.id.clone(), &t, if_version, actor)
            .await
    }

    /// Tombstones a type; its appointments keep referring to it.
    pub async fn delete_appointment_type(&mut self, id: &str, actor: &Actor) -> Result<i64> {
        self.delete_audited::<AppointmentType>(id, actor).await
    }

    async fn check_resource_refs(&mut self, r: &Resource) -> Result<()> {
        let mut errors = ValidationErrors::new();
        self.require(&mut errors, "location_id", "locations", &r.location_id)
            .await?;
        errors.into_result(()).map_err(Into::into)
    }

    /// A piece of equipment (or a room not in the directory). A blank id
    /// gets a new one.
    pub async fn create_resource(
        &mut self,
        mut r: Resource,
        actor: &Actor,
    ) -> Result<Versioned<Resource>> {
        fill_id(&mut r.id);
        let r = r.validate()?;
        self.check_resource_refs(&r).await?;
        self.create_audited(&r.id.clone(), &r, actor).await
    }

    /// Makes a directory room bookable: a resource under the room's own id,
    /// linked to it (`room_id`), of the room's kind.
    pub async fn add_room_resource(
        &mut self,
        room_id: &str,
        actor: &Actor,
    ) -> Result<Versioned<Resource>> {
        let room = match self.read_current::<Room>(room_id).await {
            Ok(r) => r.value,
            Err(StoreError::NotFound | StoreError::Gone) => {
                return Err(ValidationErrors::single(
                    "room_id",
                    format!("no such room: {room_id}"),
                )
                .into());
            }
            Err(e) => return Err(e),
        };
        let r = Resource::from_room(room_id, &room).validate()?;
        let stored = self.create(room_id, &r, &actor.actor_name).await?;
        sqlx::query("UPDATE schedule_resources SET room_id = id WHERE org_id = $1 AND id = $2")
            .bind(&self.org_id)
            .bind(room_id)
            .execute(&mut *self.tx)
            .await?;
        self.audit(actor.entry(Action::Create, Resource::KIND, room_id))
            .await?;
        Ok(stored)
    }

    /// Updates the resource with `r.id` (deactivate it with `active: false`).
    pub async fn update_resource(
        &mut self,
        r: Resource,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<Resource>> {
        let r = r.validate()?;
        self.check_resource_refs(&r).await?;
        self.update_audited(&r.id.clone(), &r, if_version, actor)
            .await
    }

    /// Validates a template against the provider's other templates. The
    /// provider's row is locked first (an UPDATE that changes nothing), so
    /// two servers saving templates of one provider check one after the
    /// other.
    async fn checked_template(&mut self, t: Template) -> Result<Template> {
        let t = t.validate()?;
        let mut errors = ValidationErrors::new();
        let locked = sqlx::query(
            "UPDATE practitioners SET version = version \
             WHERE org_id = $1 AND id = $2 AND deleted = 0",
        )
        .bind(&self.org_id)
        .bind(&t.practitioner_id)
        .execute(&mut *self.tx)
        .await?;
        if locked.rows_affected() != 1 {
            errors.add(
                "practitioner_id",
                format!("no such record: {}", t.practitioner_id),
            );
        }
        self.require(&mut errors, "location_id", "locations", &t.location_id)
            .await?;
        // Each type once, however many blocks name it.
        let named: BTreeSet<&String> = t
            .blocks
            .iter()
            .flat_map(|b| &b.appointment_type_ids)
            .collect();
        let mut unknown = BTreeSet::new();
        for id in named {
            if !self.live("appointment_types", id).await? {
                unknown.insert(id);
            }
        }
        for (i, b) in t.blocks.iter().enumerate() {
            for (j, id) in b.appointment_type_ids.iter().enumerate() {
                if unknown.contains(id) {
                    errors.add(
                        format!("blocks[{i}].appointment_type_ids[{j}]"),
                        format!("no such record: {id}"),
                    );
                }
            }
        }
        errors.into_result(())?;
        let rows = sqlx::query(crate::db::sql(format!(
            "SELECT {} FROM schedule_templates WHERE org_id = $1 AND practitioner_id = $2 \
             AND deleted = 0 AND id <> $3",
            crate::records::select_columns::<Template>()
        )))
        .bind(&self.org_id)
        .bind(&t.practitioner_id)
        .bind(&t.id)
        .fetch_all(&mut *self.tx)
        .await?;
        let others: Vec<Template> = rows
            .iter()
            .map(|r| crate::records::versioned::<Template>(r).map(|v| v.value))
            .collect::<Result<_>>()?;
        Ok(t.validate_with_others(&others)?)
    }

    /// A blank id gets a new one. Blocks overlapping the provider's other
    /// templates are refused, naming the block.
    pub async fn create_template(
        &mut self,
        mut t: Template,
        actor: &Actor,
    ) -> Result<Versioned<Template>> {
        fill_id(&mut t.id);
        let t = self.checked_template(t).await?;
        self.create_audited(&t.id.clone(), &t, actor).await
    }

    pub async fn update_template(
        &mut self,
        t: Template,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<Template>> {
        let t = self.checked_template(t).await?;
        self.update_audited(&t.id.clone(), &t, if_version, actor)
            .await
    }

    pub async fn delete_template(&mut self, id: &str, actor: &Actor) -> Result<i64> {
        self.delete_audited::<Template>(id, actor).await
    }

    async fn checked_exception(&mut self, e: ScheduleException) -> Result<ScheduleException> {
        let e = e.validate()?;
        let mut errors = ValidationErrors::new();
        match &e.kind {
            ExceptionKind::TimeOff { practitioner_id } => {
                self.require(
                    &mut errors,
                    "practitioner_id",
                    "practitioners",
                    practitioner_id,
                )
                .await?;
            }
            ExceptionKind::Holiday { location_id, .. } => {
                if let Some(l) = location_id {
                    self.require(&mut errors, "location_id", "locations", l)
                        .await?;
                }
            }
            ExceptionKind::Blocked {
                practitioner_id,
                resource_id,
                ..
            } => {
                if let Some(p) = practitioner_id {
                    self.require(&mut errors, "practitioner_id", "practitioners", p)
                        .await?;
                }
                if let Some(r) = resource_id {
                    self.require(&mut errors, "resource_id", "schedule_resources", r)
                        .await?;
                }
            }
            ExceptionKind::ExtraSession {
                practitioner_id,
                location_id,
                appointment_type_ids,
                ..
            } => {
                self.require(
                    &mut errors,
                    "practitioner_id",
                    "practitioners",
                    practitioner_id,
                )
                .await?;
                self.require(&mut errors, "location_id", "locations", location_id)
                    .await?;
                for (i, t) in appointment_type_ids.iter().enumerate() {
                    self.require(
                        &mut errors,
                        &format!("appointment_type_ids[{i}]"),
                        "appointment_types",
                        t,
                    )
                    .await?;
                }
            }
        }
        errors.into_result(e).map_err(Into::into)
    }

    /// Time off, a holiday, blocked time or an extra session. A blank id
    /// gets a new one.
    pub async fn create_exception(
        &mut self,
        mut e: ScheduleException,
        actor: &Actor,
    ) -> Result<Versioned<ScheduleException>> {
        fill_id(&mut e.id);
        let e = self.checked_exception(e).await?;
        self.create_audited(&e.id.clone(), &e, actor).await
    }

    pub async fn update_exception(
        &mut self,
        e: ScheduleException,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<ScheduleException>> {
        let e = self.checked_exception(e).await?;
        self.update_audited(&e.id.clone(), &e, if_version, actor)
            .await
    }

    pub async fn delete_exception(&mut self, id: &str, actor: &Actor) -> Result<i64> {
        self.delete_audited::<ScheduleException>(id, actor).await
    }

    /// Sets a location's weekly opening hours (replacing what was there),
    /// validated in the location's zone; errors name `opening_hours[i]...`.
    pub async fn set_location_hours(
        &mut self,
        location_id: &str,
        opening_hours: Vec<OpeningHours>,
        actor: &Actor,
    ) -> Result<LocationHours> {
        self.update_location_hours(location_id, opening_hours, None, actor)
            .await
    }

    /// [`WriteTx::set_location_hours`], refused with `VersionConflict`
    /// unless the stored hours are at `if_version` (0: none stored yet).
    pub async fn update_location_hours(
        &mut self,
        location_id: &str,
        opening_hours: Vec<OpeningHours>,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<LocationHours> {
        let zone: Option<(String, i64)> =
            sqlx::query_as("SELECT timezone, deleted FROM locations WHERE org_id = $1 AND id = $2")
                .bind(&self.org_id)
                .bind(location_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        let Some((timezone, 0)) = zone else {
            return Err(ValidationErrors::single(
                "location_id",
                format!("no such record: {location_id}"),
            )
            .into());
        };
        let hours = LocationHours {
            location_id: location_id.to_string(),
            timezone,
            opening_hours,
        }
        .validate()?;
        let value = LocationOpeningHours {
            opening_hours: hours.opening_hours.clone(),
        };
        match self.read_current::<LocationOpeningHours>(location_id).await {
            Ok(current) => {
                let expected = if_version.unwrap_or(current.version);
                self.update_audited(location_id, &value, Some(expected), actor)
                    .await?;
            }
            Err(StoreError::NotFound) => match if_version {
                None | Some(0) => {
                    self.create_audited(location_id, &value, actor).await?;
                }
                Some(_) => return Err(StoreError::VersionConflict { current: 0 }),
            },
            Err(e) => return Err(e),
        }
        Ok(hours)
    }
}

impl Db {
    /// Appointment types by name (inactive ones only when asked).
    pub async fn appointment_types(
        &self,
        org_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<Versioned<AppointmentType>>> {
        let active = [Filter::Eq("active", true.into())];
        let filters: &[Filter] = if include_inactive { &[] } else { &active };
        Ok(self
            .search::<AppointmentType>(org_id, filters, ALL)
            .await?
            .0)
    }

    /// Resources (inactive included), by location and name; at one location
    /// when given.
    pub async fn schedule_resources(
        &self,
        org_id: &str,
        location_id: Option<&str>,
    ) -> Result<Vec<Versioned<Resource>>> {
        let filters: Vec<Filter> = location_id
            .map(|l| Filter::Eq("location_id", Val::from(l)))
            .into_iter()
            .collect();
        Ok(self.search::<Resource>(org_id, &filters, ALL).await?.0)
    }

    /// Templates, of one provider when given.
    pub async fn templates(
        &self,
        org_id: &str,
        practitioner_id: Option<&str>,
    ) -> Result<Vec<Versioned<Template>>> {
        let filters: Vec<Filter> = practitioner_id
            .map(|p| Filter::Eq("practitioner_id", Val::from(p)))
            .into_iter()
            .collect();
        Ok(self.search::<Template>(org_id, &filters, ALL).await?.0)
    }

    /// Exceptions overlapping the local times `[from, until)` (compared as
    /// wall-clock times, whatever the location), by start.
    pub async fn schedule_exceptions(
        &self,
        org_id: &str,
        from: DateTime,
        until: DateTime,
    ) -> Result<Vec<Versioned<ScheduleException>>> {
        let filters = [
            Filter::Below("start_local", Val::from(until.to_string())),
            Filter::AtLeast("end_local", Val::from(from.to_string())),
        ];
        let found = self
            .search::<ScheduleException>(org_id, &filters, ALL)
            .await?
            .0;
        // `end_local >= from` in SQL; an exception ending exactly at `from`
        // does not overlap.
        let from = from.to_string();
        Ok(found
            .into_iter()
            .filter(|e| e.value.end.to_string() > from)
            .collect())
    }
}
