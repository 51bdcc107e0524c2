//! The organization's schedule set-up, kept per server between slot
//! computations. Every booking is evaluated against its provider's
//! templates, the exceptions, the locations' zones and hours and the
//! bookable resources; read from the database each time, those reads cost
//! more than the booking's own writes. They change rarely (an admin edits a
//! template), bookings change all the time, so the set-up is kept and only
//! bookings and holds are read per computation.
//!
//! It stays right across servers sharing a database: every write of a
//! record that is part of it ([`Record::SCHEDULE_SETUP`]) advances the
//! organization's `schedule_setup` counter in its own transaction, and each
//! use reads that counter first (one indexed row). The counter is read
//! before the set-up is loaded, so a set-up loaded while a change commits is
//! kept under the older number and replaced at the next use.

use super::records::LocationOpeningHours;
use crate::records::{Record, Val, select_columns, versioned};
use crate::{Db, Result, WriteTx};
use carefront_domain::directory::{Location, Practitioner, PractitionerRole, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, LocationHours, Resource, ScheduleException, Template,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

/// The `org_counters` row the set-up's writes advance.
const COUNTER: &str = "schedule_setup";

/// The set-up's generation ([`Db::schedule_setup_at`]) as an SQL
/// expression of organization `$1`.
pub(crate) fn setup_generation_sql() -> String {
    crate::db::counter_value_sql(&format!("'{COUNTER}'"))
}

/// Everything but bookings and holds that a slot computation reads.
#[derive(Debug)]
pub(crate) struct ScheduleSetup {
    generation: i64,
    /// Every live location's zone and hours, with whether it is active.
    pub locations: Vec<(LocationHours, bool)>,
    /// Active providers and the specialties of their active roles.
    pub providers: BTreeMap<String, BTreeSet<String>>,
    pub templates: Vec<Template>,
    pub exceptions: Vec<ScheduleException>,
    /// Active resources.
    pub resources: Vec<Resource>,
    pub types: BTreeMap<String, AppointmentType>,
}

/// One server's kept set-ups, one per organization it has served.
#[derive(Debug, Default)]
pub(crate) struct KeptSetups(Mutex<Vec<(String, Arc<ScheduleSetup>)>>);

impl KeptSetups {
    fn kept(&self, org_id: &str, generation: i64) -> Option<Arc<ScheduleSetup>> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .find(|(org, s)| org == org_id && s.generation == generation)
            .map(|(_, s)| s.clone())
    }

    fn keep(&self, org_id: &str, setup: Arc<ScheduleSetup>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|(org, _)| org != org_id);
        kept.push((org_id.to_string(), setup));
    }
}

impl WriteTx {
    /// Tells every server that the organization's schedule set-up changed
    /// (called with each write of a [`Record::SCHEDULE_SETUP`] record).
    pub(crate) async fn schedule_setup_changed(&mut self) -> Result<()> {
        self.reserve_counter(COUNTER, 1).await?;
        Ok(())
    }
}

impl Db {
    /// The organization's schedule set-up as it stands: kept, or read now.
    pub(crate) async fn schedule_setup(&self, org_id: &str) -> Result<Arc<ScheduleSetup>> {
        let generation = self.counter_value(org_id, COUNTER).await?;
        self.schedule_setup_at(org_id, generation).await
    }

    /// The set-up as of `generation` of its counter, which the caller read
    /// ([`setup_generation_sql`]) in a look-up of its own.
    pub(crate) async fn schedule_setup_at(
        &self,
        org_id: &str,
        generation: i64,
    ) -> Result<Arc<ScheduleSetup>> {
        if let Some(setup) = self.kept_setups().kept(org_id, generation) {
            return Ok(setup);
        }
        let setup = Arc::new(self.read_schedule_setup(org_id, generation).await?);
        self.kept_setups().keep(org_id, setup.clone());
        Ok(setup)
    }

    async fn read_schedule_setup(&self, org_id: &str, generation: i64) -> Result<ScheduleSetup> {
        let live = [Val::from(org_id)];
        let hours: BTreeMap<String, LocationOpeningHours> =
            self.live_records::<LocationOpeningHours>(&live).await?;
        let locations = self
            .live_records::<Location>(&live)
            .await?
            .into_iter()
            .map(|(id, l)| {
                let opening_hours = hours
                    .get(&id)
                    .map(|h| h.opening_hours.clone())
                    .unwrap_or_default();
                (
                    LocationHours {
                        location_id: id,
                        timezone: l.timezone,
                        opening_hours,
                    },
                    l.active,
                )
            })
            .collect();
        let mut providers: BTreeMap<String, BTreeSet<String>> = self
            .live_records::<Practitioner>(&live)
            .await?
            .into_iter()
            .filter(|(_, p)| p.active)
            .map(|(id, _)| (id, BTreeSet::new()))
            .collect();
        for (_, role) in self.live_records::<PractitionerRole>(&live).await? {
            if role.active
                && let Some(specialties) = providers.get_mut(&role.practitioner_id)
            {
                specialties.insert(role.specialty);
            }
        }
        Ok(ScheduleSetup {
            generation,
            locations,
            providers,
            templates: self
                .live_records::<Template>(&live)
                .await?
                .into_values()
                .collect(),
            exceptions: self
                .live_records::<ScheduleException>(&live)
                .await?
                .into_values()
                .collect(),
            resources: self
                .live_records::<Resource>(&live)
                .await?
                .into_values()
                .filter(|r| r.active)
                .collect(),
            types: self.live_records::<AppointmentType>(&live).await?,
        })
    }

    /// Every live (not deleted) record of a kind in the organization, by id.
    async fn live_records<R: Record>(&self, org: &[Val]) -> Result<BTreeMap<String, R>> {
        let q = sqlx::query(crate::db::sql(format!(
            "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0",
            select_columns::<R>(),
            R::TABLE
        )));
        let rows = super::bind_vals(q, org)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter()
            .map(|row| versioned::<R>(row).map(|v: Versioned<R>| (v.id, v.value)))
            .collect()
    }
}
