//! The waitlist and the front desk's worklist. When a future slot is freed
//! (cancellation, reschedule), the entries for its appointment type are
//! ranked by the domain's `rank_waitlist` and the ranked list becomes a
//! [`Task`] for the desk to call patients from.

use super::{Actor, corrupt};
use crate::records::{Filter, Page, Val};
use crate::{Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::Action;
use carefront_domain::directory::Versioned;
use carefront_domain::scheduling::{Appointment, RankedEntry, Slot, WaitlistEntry, rank_waitlist};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A freed slot and the waitlist ranked for it ([`WaitlistOffer`]).
    WaitlistOffer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Dismissed,
}

/// An item of the front desk's worklist.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub kind: TaskKind,
    pub status: TaskStatus,
    /// What the task is about; for [`TaskKind::WaitlistOffer`] a
    /// [`WaitlistOffer`] (see [`Task::waitlist_offer`]).
    pub payload: serde_json::Value,
    pub created_at_us: i64,
    pub created_by: String,
    pub closed_at_us: Option<i64>,
    pub closed_by: Option<String>,
}

impl Task {
    pub fn waitlist_offer(&self) -> Option<WaitlistOffer> {
        match self.kind {
            TaskKind::WaitlistOffer => serde_json::from_value(self.payload.clone()).ok(),
        }
    }
}

/// A freed slot and who on the waitlist could take it, best first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistOffer {
    /// The appointment that gave the time back.
    pub freed_by: String,
    pub slot: Slot,
    pub candidates: Vec<RankedEntry>,
}

const TASK_COLUMNS: &str =
    "id, kind, status, payload_json, created_at_us, created_by, closed_at_us, closed_by";

fn task_from_row(row: &AnyRow) -> Result<Task> {
    let id: String = row.try_get("id")?;
    let payload: String = row.try_get("payload_json")?;
    Ok(Task {
        kind: super::code_col(row, "kind")?,
        status: super::code_col(row, "status")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(&format!("task {id}"), e))?,
        created_at_us: row.try_get("created_at_us")?,
        created_by: row.try_get("created_by")?,
        closed_at_us: row.try_get("closed_at_us")?,
        closed_by: row.try_get("closed_by")?,
        id,
    })
}

impl WriteTx {
    async fn check_waitlist_refs(&mut self, entry: &WaitlistEntry) -> Result<()> {
        let mut errors = ValidationErrors::new();
        for (field, table, id) in [
            ("patient_id", "patients", &entry.patient_id),
            (
                "appointment_type_id",
                "appointment_types",
                &entry.appointment_type_id,
            ),
        ] {
            if !self.live(table, id).await? {
                errors.add(field, format!("no such record: {id}"));
            }
        }
        errors.into_result(()).map_err(Into::into)
    }

    /// Puts a patient on the waitlist for an appointment type (`added_at`
    /// is set to `now`; a blank id gets a new one).
    pub async fn add_to_waitlist(
        &mut self,
        mut entry: WaitlistEntry,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Versioned<WaitlistEntry>> {
        if entry.id.trim().is_empty() {
            entry.id = new_id();
        }
        entry.added_at = now;
        let entry = entry.validate()?;
        self.check_waitlist_refs(&entry).await?;
        let stored = self.create(&entry.id, &entry, &actor.actor_name).await?;
        self.audit(
            actor
                .entry(Action::Create, "WaitlistEntry", &entry.id)
                .patient(&entry.patient_id),
        )
        .await?;
        Ok(stored)
    }

    /// Changes an entry's preferences or current appointment (its place in
    /// line, `added_at`, stays).
    pub async fn update_waitlist_entry(
        &mut self,
        entry: WaitlistEntry,
        if_version: Option<i64>,
        actor: &Actor,
    ) -> Result<Versioned<WaitlistEntry>> {
        let current = self.read_current::<WaitlistEntry>(&entry.id).await?;
        let mut entry = entry.validate()?;
        entry.added_at = current.value.added_at;
        self.check_waitlist_refs(&entry).await?;
        let stored = self
            .update(&entry.id, &entry, if_version, &actor.actor_name)
            .await?;
        self.audit(
            actor
                .entry(Action::Update, "WaitlistEntry", &entry.id)
                .patient(&entry.patient_id),
        )
        .await?;
        Ok(stored)
    }

    /// Takes an entry off the waitlist (its history stays).
    pub async fn remove_from_waitlist(&mut self, id: &str, actor: &Actor) -> Result<i64> {
        let current = self.read_current::<WaitlistEntry>(id).await?;
        let version = self.delete::<WaitlistEntry>(id, &actor.actor_name).await?;
        self.audit(
            actor
                .entry(Action::Delete, "WaitlistEntry", id)
                .patient(&current.value.patient_id),
        )
        .await?;
        Ok(version)
    }

    /// Adds a task to the worklist. Not audited by itself: tasks are made
    /// by writes that audit (a cancellation), or audited by the caller.
    pub async fn create_task(
        &mut self,
        kind: TaskKind,
        payload: &impl Serialize,
        actor: &Actor,
    ) -> Result<Task> {
        let payload = serde_json::to_value(payload).map_err(|e| corrupt("task payload", e))?;
        let task = Task {
            id: new_id(),
            kind,
            status: TaskStatus::Open,
            payload,
            created_at_us: crate::now_us(),
            created_by: actor.actor_name.clone(),
            closed_at_us: None,
            closed_by: None,
        };
        sqlx::query(
            "INSERT INTO tasks (org_id, id, kind, status, payload_json, created_at_us, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.org_id)
        .bind(&task.id)
        .bind(super::code(&task.kind))
        .bind(super::code(&task.status))
        .bind(task.payload.to_string())
        .bind(task.created_at_us)
        .bind(&task.created_by)
        .execute(&mut *self.tx)
        .await?;
        Ok(task)
    }

    /// Closes an open task as done or dismissed.
    pub async fn close_task(
        &mut self,
        id: &str,
        status: TaskStatus,
        actor: &Actor,
    ) -> Result<Task> {
        if status == TaskStatus::Open {
            return Err(
                ValidationErrors::single("status", "close a task as done or dismissed").into(),
            );
        }
        let closed = sqlx::query(
            "UPDATE tasks SET status = $3, closed_at_us = $4, closed_by = $5 \
             WHERE org_id = $1 AND id = $2 AND status = 'open'",
        )
        .bind(&self.org_id)
        .bind(id)
        .bind(super::code(&status))
        .bind(crate::now_us())
        .bind(&actor.actor_name)
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(crate::db::sql(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE org_id = $1 AND id = $2"
        )))
        .bind(&self.org_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if closed.rows_affected() != 1 {
            return Err(StoreError::Conflict("the task is already closed".into()));
        }
        let task = task_from_row(&row)?;
        self.audit(
            actor
                .entry(Action::Update, "Task", id)
                .detail(format!("closed as {}", super::code(&status))),
        )
        .await?;
        Ok(task)
    }

    /// When `a`'s time (just given back) is still ahead, ranks the waitlist
    /// for its type (leaving out its own patient) and, if anyone could take
    /// it, puts the ranked list on the worklist.
    pub(crate) async fn offer_freed_slot(
        &mut self,
        a: &Appointment,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<Task>> {
        if a.start <= now {
            return Ok(None);
        }
        let rows = sqlx::query(crate::db::sql(format!(
            "SELECT {} FROM waitlist_entries WHERE org_id = $1 AND appointment_type_id = $2 \
             AND patient_id <> $3 AND deleted = 0 ORDER BY added_at_us, id",
            crate::records::select_columns::<WaitlistEntry>()
        )))
        .bind(&self.org_id)
        .bind(&a.appointment_type_id)
        .bind(&a.patient_id)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let entries: Vec<WaitlistEntry> = rows
            .iter()
            .map(|r| crate::records::versioned::<WaitlistEntry>(r).map(|v| v.value))
            .collect::<Result<_>>()?;
        let (zone,): (String,) =
            sqlx::query_as("SELECT timezone FROM locations WHERE org_id = $1 AND id = $2")
                .bind(&self.org_id)
                .bind(&a.location_id)
                .fetch_one(&mut *self.tx)
                .await?;
        let tz = TimeZone::get(&zone)
            .map_err(|e| corrupt(&format!("time zone of location {}", a.location_id), e))?;
        let slot = Slot {
            practitioner_id: a.practitioner_id.clone(),
            location_id: a.location_id.clone(),
            appointment_type_id: a.appointment_type_id.clone(),
            start: a.start,
            end: a.end,
            local_start: tz.to_datetime(a.start),
            local_end: tz.to_datetime(a.end),
            resource_id: a.resource_ids.first().cloned(),
            booked: 0,
            capacity: 1 + u32::from(a.max_seat),
        };
        let candidates = rank_waitlist(&entries, &slot, now);
        if candidates.is_empty() {
            return Ok(None);
        }
        let offer = WaitlistOffer {
            freed_by: a.id.clone(),
            slot,
            candidates,
        };
        Ok(Some(
            self.create_task(TaskKind::WaitlistOffer, &offer, actor)
                .await?,
        ))
    }

    /// Whether a live record with this id exists in `table` (a name written
    /// in this crate).
    pub(crate) async fn live(&mut self, table: &str, id: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(crate::db::sql(format!(
            "SELECT deleted FROM {table} WHERE org_id = $1 AND id = $2"
        )))
        .bind(&self.org_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(matches!(row, Some((0,))))
    }
}

impl Db {
    /// Live waitlist entries, longest waiting first, for one type and/or
    /// one patient when given.
    pub async fn waitlist(
        &self,
        org_id: &str,
        appointment_type_id: Option<&str>,
        patient_id: Option<&str>,
    ) -> Result<Vec<Versioned<WaitlistEntry>>> {
        let mut filters = Vec::new();
        if let Some(t) = appointment_type_id {
            filters.push(Filter::Eq("appointment_type_id", Val::from(t)));
        }
        if let Some(p) = patient_id {
            filters.push(Filter::Eq("patient_id", Val::from(p)));
        }
        let page = Page {
            offset: 0,
            count: 1000,
        };
        Ok(self
            .search::<WaitlistEntry>(org_id, &filters, page)
            .await?
            .0)
    }

    /// Worklist tasks, newest first (open ones only unless `status` says).
    pub async fn tasks(
        &self,
        org_id: &str,
        status: Option<TaskStatus>,
        limit: i64,
    ) -> Result<Vec<Task>> {
        let status = super::code(&status.unwrap_or(TaskStatus::Open));
        let rows = sqlx::query(crate::db::sql(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE org_id = $1 AND status = $2 \
             ORDER BY created_at_us DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(org_id)
        .bind(status)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    pub async fn task(&self, org_id: &str, id: &str) -> Result<Task> {
        let row = sqlx::query(crate::db::sql(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        task_from_row(&row)
    }
}
