//! Table mappings of the scheduling records. Each domain type carries its
//! own id, which is the record's id (the `id` column).

use super::{code, code_col, from_code, int, int_col, json, json_col, opt_ts_col, ts_col, us};
use crate::directory::{decode_err, flag};
use crate::merge::PatientOwned;
use crate::records::{Record, Val};
use carefront_domain::scheduling::{
    Appointment, AppointmentType, ExceptionKind, OpeningHours, Resource, ScheduleException,
    Template, WaitlistEntry,
};
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

fn date_col(row: &AnyRow, col: &str) -> Result<Option<Date>, sqlx::Error> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: jiff::Error| decode_err(col, e.to_string()))
    })
    .transpose()
}

fn datetime_col(row: &AnyRow, col: &str) -> Result<DateTime, sqlx::Error> {
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: jiff::Error| decode_err(col, e.to_string()))
}

impl Record for AppointmentType {
    const KIND: &'static str = "AppointmentType";
    const TABLE: &'static str = "appointment_types";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "duration_minutes",
        "color",
        "specialties_json",
        "practitioner_ids_json",
        "resource_kind",
        "modality",
        "eligibility",
        "min_notice_minutes",
        "max_days_ahead",
        "instructions",
        "intake_form",
        "active",
    ];
    const SORT: &'static str = "name";

    fn values(&self) -> Vec<Val> {
        vec![
            self.name.clone().into(),
            int(self.duration_minutes),
            self.color.clone().into(),
            json(&self.specialties),
            json(&self.practitioner_ids),
            Val::Text(self.resource_kind.as_ref().map(code)),
            code(&self.modality).into(),
            code(&self.eligibility).into(),
            int(self.min_notice_minutes),
            int(self.max_days_ahead),
            self.instructions.clone().into(),
            self.intake_form.clone().into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let resource_kind: Option<String> = row.try_get("resource_kind")?;
        Ok(AppointmentType {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            duration_minutes: int_col(row, "duration_minutes")?,
            color: row.try_get("color")?,
            specialties: json_col(row, "specialties_json")?,
            practitioner_ids: json_col(row, "practitioner_ids_json")?,
            resource_kind: resource_kind
                .map(|k| from_code("resource_kind", &k))
                .transpose()?,
            modality: code_col(row, "modality")?,
            eligibility: code_col(row, "eligibility")?,
            min_notice_minutes: int_col(row, "min_notice_minutes")?,
            max_days_ahead: int_col(row, "max_days_ahead")?,
            instructions: row.try_get("instructions")?,
            intake_form: row.try_get("intake_form")?,
            active: flag(row, "active")?,
        })
    }
}

/// Rooms and equipment. A directory room's resource has the room's id and
/// `room_id` set (see `WriteTx::add_room_resource`); the column is not part
/// of the domain type and is kept by updates.
impl Record for Resource {
    const KIND: &'static str = "ScheduleResource";
    const TABLE: &'static str = "schedule_resources";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &["location_id", "name", "kind", "active"];
    const SORT: &'static str = "location_id, name";

    fn values(&self) -> Vec<Val> {
        vec![
            self.location_id.clone().into(),
            self.name.clone().into(),
            code(&self.kind).into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Resource {
            id: row.try_get("id")?,
            location_id: row.try_get("location_id")?,
            name: row.try_get("name")?,
            kind: code_col(row, "kind")?,
            active: flag(row, "active")?,
        })
    }
}

/// A location's weekly opening hours, stored under the location's id. The
/// zone stays on the location (one source of truth); `Db::location_hours`
/// joins the two into the domain's `LocationHours`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationOpeningHours {
    pub opening_hours: Vec<OpeningHours>,
}

impl Record for LocationOpeningHours {
    const KIND: &'static str = "LocationHours";
    const TABLE: &'static str = "location_hours";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &["hours_json"];
    const SORT: &'static str = "id";

    fn values(&self) -> Vec<Val> {
        vec![json(&self.opening_hours)]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(LocationOpeningHours {
            opening_hours: json_col(row, "hours_json")?,
        })
    }
}

impl Record for Template {
    const KIND: &'static str = "ScheduleTemplate";
    const TABLE: &'static str = "schedule_templates";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "practitioner_id",
        "location_id",
        "effective_from",
        "effective_until",
        "overbook_limit",
        "blocks_json",
    ];
    const SORT: &'static str = "practitioner_id, effective_from";

    fn values(&self) -> Vec<Val> {
        vec![
            self.practitioner_id.clone().into(),
            self.location_id.clone().into(),
            self.effective_from.to_string().into(),
            Val::Text(self.effective_until.map(|d| d.to_string())),
            int(self.overbook_limit),
            json(&self.blocks),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Template {
            id: row.try_get("id")?,
            practitioner_id: row.try_get("practitioner_id")?,
            location_id: row.try_get("location_id")?,
            effective_from: date_col(row, "effective_from")?
                .ok_or_else(|| decode_err("effective_from", "missing".into()))?,
            effective_until: date_col(row, "effective_until")?,
            overbook_limit: int_col(row, "overbook_limit")?,
            blocks: json_col(row, "blocks_json")?,
        })
    }
}

/// The columns an exception is filtered and referenced by:
/// (practitioner, location, resource).
fn exception_refs(kind: &ExceptionKind) -> (Option<String>, Option<String>, Option<String>) {
    match kind {
        ExceptionKind::TimeOff { practitioner_id } => (Some(practitioner_id.clone()), None, None),
        ExceptionKind::Holiday { location_id, .. } => (None, location_id.clone(), None),
        ExceptionKind::Blocked {
            practitioner_id,
            resource_id,
            ..
        } => (practitioner_id.clone(), None, resource_id.clone()),
        ExceptionKind::ExtraSession {
            practitioner_id,
            location_id,
            ..
        } => (
            Some(practitioner_id.clone()),
            Some(location_id.clone()),
            None,
        ),
    }
}

fn exception_kind_code(kind: &ExceptionKind) -> &'static str {
    match kind {
        ExceptionKind::TimeOff { .. } => "time_off",
        ExceptionKind::Holiday { .. } => "holiday",
        ExceptionKind::Blocked { .. } => "blocked",
        ExceptionKind::ExtraSession { .. } => "extra_session",
    }
}

impl Record for ScheduleException {
    const KIND: &'static str = "ScheduleException";
    const TABLE: &'static str = "schedule_exceptions";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "kind",
        "practitioner_id",
        "location_id",
        "resource_id",
        "start_local",
        "end_local",
        "kind_json",
    ];
    const SORT: &'static str = "start_local";

    fn values(&self) -> Vec<Val> {
        let (practitioner, location, resource) = exception_refs(&self.kind);
        vec![
            exception_kind_code(&self.kind).into(),
            practitioner.into(),
            location.into(),
            resource.into(),
            self.start.to_string().into(),
            self.end.to_string().into(),
            json(&self.kind),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(ScheduleException {
            id: row.try_get("id")?,
            start: datetime_col(row, "start_local")?,
            end: datetime_col(row, "end_local")?,
            kind: json_col(row, "kind_json")?,
        })
    }
}

/// An appointment as stored: the domain's appointment and what the desk
/// wrote on it. Every change is a new version with history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentRecord {
    #[serde(flatten)]
    pub appointment: Appointment,
    /// Why the patient is coming, in their words or the desk's.
    pub reason_for_visit: Option<String>,
    /// Front-desk notes.
    pub notes: Option<String>,
}

impl Record for AppointmentRecord {
    const KIND: &'static str = "Appointment";
    const TABLE: &'static str = "appointments";
    const COLUMNS: &'static [&'static str] = &[
        "patient_id",
        "practitioner_id",
        "location_id",
        "appointment_type_id",
        "resource_ids_json",
        "start_us",
        "end_us",
        "status",
        "status_changed_at_us",
        "max_seat",
        "cancel_reason",
        "override_reason",
        "series_id",
        "rescheduled_from",
        "arrived_at_us",
        "reason_for_visit",
        "notes",
    ];
    const SORT: &'static str = "start_us";

    fn values(&self) -> Vec<Val> {
        let a = &self.appointment;
        vec![
            a.patient_id.clone().into(),
            a.practitioner_id.clone().into(),
            a.location_id.clone().into(),
            a.appointment_type_id.clone().into(),
            json(&a.resource_ids),
            int(us(a.start)),
            int(us(a.end)),
            a.status.code().into(),
            int(us(a.status_changed_at)),
            int(a.max_seat),
            Val::Text(a.cancel_reason.map(|r| r.code().to_string())),
            a.override_reason.clone().into(),
            a.series_id.clone().into(),
            a.rescheduled_from.clone().into(),
            Val::Int(a.arrived_at.map(us)),
            self.reason_for_visit.clone().into(),
            self.notes.clone().into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let cancel: Option<String> = row.try_get("cancel_reason")?;
        Ok(AppointmentRecord {
            appointment: Appointment {
                id: row.try_get("id")?,
                patient_id: row.try_get("patient_id")?,
                practitioner_id: row.try_get("practitioner_id")?,
                location_id: row.try_get("location_id")?,
                appointment_type_id: row.try_get("appointment_type_id")?,
                resource_ids: json_col(row, "resource_ids_json")?,
                start: ts_col(row, "start_us")?,
                end: ts_col(row, "end_us")?,
                status: carefront_domain::scheduling::AppointmentStatus::from_code(&status)
                    .ok_or_else(|| decode_err("status", format!("unknown status '{status}'")))?,
                status_changed_at: ts_col(row, "status_changed_at_us")?,
                max_seat: int_col(row, "max_seat")?,
                cancel_reason: cancel
                    .map(|c| {
                        carefront_domain::scheduling::CancelReason::from_code(&c).ok_or_else(|| {
                            decode_err("cancel_reason", format!("unknown reason '{c}'"))
                        })
                    })
                    .transpose()?,
                override_reason: row.try_get("override_reason")?,
                series_id: row.try_get("series_id")?,
                rescheduled_from: row.try_get("rescheduled_from")?,
                arrived_at: opt_ts_col(row, "arrived_at_us")?,
            },
            reason_for_visit: row.try_get("reason_for_visit")?,
            notes: row.try_get("notes")?,
        })
    }
}

/// Appointments follow the survivor of a patient merge.
impl PatientOwned for AppointmentRecord {
    const PATIENT_COLUMN: &'static str = "patient_id";

    fn set_patient_id(&mut self, patient_id: &str) {
        self.appointment.patient_id = patient_id.to_string();
    }
}

impl Record for WaitlistEntry {
    const KIND: &'static str = "WaitlistEntry";
    const TABLE: &'static str = "waitlist_entries";
    const COLUMNS: &'static [&'static str] = &[
        "patient_id",
        "appointment_type_id",
        "preferences_json",
        "added_at_us",
        "current_appointment_start_us",
    ];
    const SORT: &'static str = "added_at_us";

    fn values(&self) -> Vec<Val> {
        vec![
            self.patient_id.clone().into(),
            self.appointment_type_id.clone().into(),
            json(&self.preferences),
            int(us(self.added_at)),
            Val::Int(self.current_appointment_start.map(us)),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(WaitlistEntry {
            id: row.try_get("id")?,
            patient_id: row.try_get("patient_id")?,
            appointment_type_id: row.try_get("appointment_type_id")?,
            preferences: json_col(row, "preferences_json")?,
            added_at: ts_col(row, "added_at_us")?,
            current_appointment_start: opt_ts_col(row, "current_appointment_start_us")?,
        })
    }
}

/// Waitlist entries follow the survivor of a patient merge.
impl PatientOwned for WaitlistEntry {
    const PATIENT_COLUMN: &'static str = "patient_id";

    fn set_patient_id(&mut self, patient_id: &str) {
        self.patient_id = patient_id.to_string();
    }
}
