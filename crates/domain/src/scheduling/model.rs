//! What schedules are made of: locations' hours, bookable resources,
//! appointment types, provider templates and their exceptions, and patient
//! preferences. Each input type validates itself field by field so every
//! adapter reports the same field names.

use super::time::{iso_weekday, minute_of_day, on_grid};
use super::{GRANULE_MINUTES, MAX_OVERBOOK_LIMIT};
use crate::ValidationErrors;
use crate::directory::{Location, Room, RoomKind, Specialty};
use crate::validation::{optional_text, required_text};
use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Longest appointment type: a full clinic day.
pub const MAX_DURATION_MINUTES: u32 = 8 * 60;
/// Furthest a type may be booked ahead (two years).
pub const MAX_DAYS_AHEAD_LIMIT: u32 = 730;

fn check_weekday(errors: &mut ValidationErrors, field: &str, weekday: u8) {
    if !(1..=7).contains(&weekday) {
        errors.add(
            field,
            format!("unknown weekday {weekday}: use 1 (Monday) to 7 (Sunday)"),
        );
    }
}

fn check_grid_time(errors: &mut ValidationErrors, field: &str, t: Time) {
    if !on_grid(t) {
        errors.add(
            field,
            format!("must be on a {GRANULE_MINUTES}-minute mark (e.g. 09:00, 09:05)"),
        );
    }
}

fn check_ids(errors: &mut ValidationErrors, field: &str, ids: &mut Vec<String>) {
    for (i, id) in ids.iter_mut().enumerate() {
        *id = id.trim().to_string();
        if id.is_empty() || id.len() > 64 {
            errors.add(
                format!("{field}[{i}]"),
                "must be an id of 1 to 64 characters",
            );
        }
    }
    ids.sort();
    ids.dedup();
}

// ---------------------------------------------------------------- locations

/// A location's weekly opening hours, in its local time. In-person visits
/// are only offered while the location is open (or during an extra session
/// there); telehealth is not bound to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    pub open: Time,
    pub close: Time,
}

/// What slot computation needs to know about a location: its IANA zone
/// (the directory `Location::timezone` string) and its opening hours. A
/// weekday without an entry is a closed day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationHours {
    pub location_id: String,
    pub timezone: String,
    pub opening_hours: Vec<OpeningHours>,
}

impl LocationHours {
    /// Takes the zone from the directory location so there is one source
    /// of truth for it.
    pub fn for_location(
        location_id: impl Into<String>,
        location: &Location,
        opening_hours: Vec<OpeningHours>,
    ) -> Self {
        Self {
            location_id: location_id.into(),
            timezone: location.timezone.clone(),
            opening_hours,
        }
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.location_id = required_text(&mut errors, "location_id", &self.location_id, 64);
        self.timezone = self.timezone.trim().to_string();
        if jiff::tz::TimeZone::get(&self.timezone).is_err() || !self.timezone.contains('/') {
            errors.add(
                "timezone",
                format!(
                    "'{}' is not an IANA time zone such as America/New_York",
                    self.timezone
                ),
            );
        }
        for (i, h) in self.opening_hours.iter().enumerate() {
            check_weekday(
                &mut errors,
                &format!("opening_hours[{i}].weekday"),
                h.weekday,
            );
            if h.close <= h.open {
                errors.add(
                    format!("opening_hours[{i}].close"),
                    "must be after the opening time",
                );
            }
        }
        for (i, a) in self.opening_hours.iter().enumerate() {
            let clash = self.opening_hours[..i]
                .iter()
                .any(|b| a.weekday == b.weekday && a.open < b.close && b.open < a.close);
            if clash {
                errors.add(
                    format!("opening_hours[{i}].open"),
                    "overlaps other opening hours on the same day",
                );
            }
        }
        errors.into_result(self)
    }

    /// Opening intervals on `date`, as local minutes of the day.
    pub(crate) fn minutes_on(&self, date: Date) -> impl Iterator<Item = (i32, i32)> + '_ {
        let wd = iso_weekday(date);
        self.opening_hours
            .iter()
            .filter(move |h| h.weekday == wd)
            .map(|h| (minute_of_day(h.open), minute_of_day(h.close)))
    }
}

// ---------------------------------------------------------------- resources

/// Kinds of bookable rooms and equipment. Room kinds mirror the directory's
/// [`RoomKind`] so a directory room is a resource without translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    ExamRoom,
    ProcedureRoom,
    ConsultRoom,
    UltrasoundRoom,
    UltrasoundMachine,
    EcgMachine,
}

impl ResourceKind {
    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::ExamRoom => "Exam room",
            ResourceKind::ProcedureRoom => "Procedure room",
            ResourceKind::ConsultRoom => "Consult room",
            ResourceKind::UltrasoundRoom => "Ultrasound room",
            ResourceKind::UltrasoundMachine => "Ultrasound machine",
            ResourceKind::EcgMachine => "ECG machine",
        }
    }
}

impl From<RoomKind> for ResourceKind {
    fn from(kind: RoomKind) -> Self {
        match kind {
            RoomKind::Exam => ResourceKind::ExamRoom,
            RoomKind::Procedure => ResourceKind::ProcedureRoom,
            RoomKind::Consult => ResourceKind::ConsultRoom,
            RoomKind::Ultrasound => ResourceKind::UltrasoundRoom,
        }
    }
}

/// A room or piece of equipment that holds one patient at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    pub location_id: String,
    pub name: String,
    pub kind: ResourceKind,
    pub active: bool,
}

impl Resource {
    /// A directory room as a bookable resource.
    pub fn from_room(id: impl Into<String>, room: &Room) -> Self {
        Self {
            id: id.into(),
            location_id: room.location_id.clone(),
            name: room.name.clone(),
            kind: room.kind.into(),
            active: true,
        }
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.id = required_text(&mut errors, "id", &self.id, 64);
        self.location_id = required_text(&mut errors, "location_id", &self.location_id, 64);
        self.name = required_text(&mut errors, "name", &self.name, 120);
        errors.into_result(self)
    }
}

// ---------------------------------------------------------------- appointment types

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    InPerson,
    Telehealth,
}

/// Which patients a type is for (new-patient visits are longer and billed
/// differently from established-patient ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientEligibility {
    New,
    Established,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentType {
    pub id: String,
    pub name: String,
    /// A positive multiple of 5 so visits fit the claim granules.
    pub duration_minutes: u32,
    /// `#rrggbb`, shown on the calendar.
    pub color: String,
    /// NUCC taxonomy codes whose providers offer this type.
    pub specialties: Vec<String>,
    /// Providers who offer it regardless of specialty.
    pub practitioner_ids: Vec<String>,
    /// The room or equipment kind each visit needs, if any.
    pub resource_kind: Option<ResourceKind>,
    pub modality: Modality,
    pub eligibility: PatientEligibility,
    /// Slots starting sooner than this after "now" are not offered.
    pub min_notice_minutes: u32,
    /// Slots on local dates more than this many days after today are not offered.
    pub max_days_ahead: u32,
    pub instructions: Option<String>,
    /// Reference to the intake questionnaire sent before the visit.
    pub intake_form: Option<String>,
    pub active: bool,
}

impl AppointmentType {
    pub fn duration(&self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.duration_minutes))
    }

    pub fn min_notice(&self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.min_notice_minutes))
    }

    /// A provider offers a type when named on it or holding one of its
    /// specialties.
    pub fn offered_by(&self, practitioner_id: &str, specialties: &[String]) -> bool {
        self.practitioner_ids.iter().any(|p| p == practitioner_id)
            || self.specialties.iter().any(|s| specialties.contains(s))
    }

    /// Whether a patient who is (or is not) established may book this type.
    pub fn accepts_patient(&self, established: bool) -> bool {
        match self.eligibility {
            PatientEligibility::Any => true,
            PatientEligibility::New => !established,
            PatientEligibility::Established => established,
        }
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.id = required_text(&mut errors, "id", &self.id, 64);
        self.name = required_text(&mut errors, "name", &self.name, 120);
        let d = self.duration_minutes;
        if d == 0 || !d.is_multiple_of(GRANULE_MINUTES as u32) || d > MAX_DURATION_MINUTES {
            errors.add(
                "duration_minutes",
                format!(
                    "must be a positive multiple of {GRANULE_MINUTES} minutes, at most {MAX_DURATION_MINUTES}"
                ),
            );
        }
        self.color = self.color.trim().to_ascii_lowercase();
        let c = self.color.as_bytes();
        if c.len() != 7 || c[0] != b'#' || !c[1..].iter().all(u8::is_ascii_hexdigit) {
            errors.add("color", "must be a hex colour such as #2a7ab0");
        }
        for (i, s) in self.specialties.iter_mut().enumerate() {
            *s = s.trim().to_string();
            if Specialty::by_code(s).is_none() {
                errors.add(
                    format!("specialties[{i}]"),
                    format!("'{s}' is not a supported NUCC taxonomy code"),
                );
            }
        }
        self.specialties.sort();
        self.specialties.dedup();
        check_ids(&mut errors, "practitioner_ids", &mut self.practitioner_ids);
        if self.specialties.is_empty() && self.practitioner_ids.is_empty() {
            errors.add(
                "specialties",
                "name at least one specialty or provider who offers this type",
            );
        }
        if self.modality == Modality::Telehealth && self.resource_kind.is_some() {
            errors.add(
                "resource_kind",
                "a telehealth visit needs no room or equipment",
            );
        }
        if self.max_days_ahead == 0 || self.max_days_ahead > MAX_DAYS_AHEAD_LIMIT {
            errors.add(
                "max_days_ahead",
                format!("must be between 1 and {MAX_DAYS_AHEAD_LIMIT} days"),
            );
        } else if u64::from(self.min_notice_minutes) >= u64::from(self.max_days_ahead) * 1440 {
            errors.add(
                "min_notice_minutes",
                "must be shorter than the furthest a visit can be booked ahead",
            );
        }
        self.instructions = optional_text(
            &mut errors,
            "instructions",
            self.instructions.as_deref(),
            4000,
        );
        self.intake_form =
            optional_text(&mut errors, "intake_form", self.intake_form.as_deref(), 200);
        errors.into_result(self)
    }
}

// ---------------------------------------------------------------- templates

/// One weekly recurring stretch of availability, in the location's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityBlock {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    pub start: Time,
    pub end: Time,
    /// Types bookable in this block; empty means every type the provider offers.
    pub appointment_type_ids: Vec<String>,
    /// Extra bookings each slot in this block may take; `None` uses the
    /// template's limit.
    pub overbook_limit: Option<u8>,
}

impl AvailabilityBlock {
    pub fn allows(&self, appointment_type_id: &str) -> bool {
        self.appointment_type_ids.is_empty()
            || self
                .appointment_type_ids
                .iter()
                .any(|t| t == appointment_type_id)
    }

    fn overlaps(&self, other: &AvailabilityBlock) -> bool {
        self.weekday == other.weekday && self.start < other.end && other.start < self.end
    }
}

/// A provider's weekly availability at one location for a range of dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub practitioner_id: String,
    pub location_id: String,
    pub effective_from: Date,
    /// Last day the template applies (inclusive); `None` means open-ended.
    pub effective_until: Option<Date>,
    /// The provider's overbooking policy for these blocks: how many extra
    /// bookings a slot may take beyond the first. Zero by default.
    #[serde(default)]
    pub overbook_limit: u8,
    pub blocks: Vec<AvailabilityBlock>,
}

impl Template {
    pub fn is_effective_on(&self, date: Date) -> bool {
        self.effective_from <= date && self.effective_until.is_none_or(|u| date <= u)
    }

    pub fn block_overbook_limit(&self, block: &AvailabilityBlock) -> u8 {
        block.overbook_limit.unwrap_or(self.overbook_limit)
    }

    fn dates_overlap(&self, other: &Template) -> bool {
        let ends_after = |t: &Template, d: Date| t.effective_until.is_none_or(|u| u >= d);
        ends_after(self, other.effective_from) && ends_after(other, self.effective_from)
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.id = required_text(&mut errors, "id", &self.id, 64);
        self.practitioner_id =
            required_text(&mut errors, "practitioner_id", &self.practitioner_id, 64);
        self.location_id = required_text(&mut errors, "location_id", &self.location_id, 64);
        if let Some(until) = self.effective_until
            && until < self.effective_from
        {
            errors.add("effective_until", "must not be before effective_from");
        }
        if self.overbook_limit > MAX_OVERBOOK_LIMIT {
            errors.add(
                "overbook_limit",
                format!("must be at most {MAX_OVERBOOK_LIMIT}"),
            );
        }
        if self.blocks.is_empty() {
            errors.add("blocks", "add at least one block of availability");
        }
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let f = |name: &str| format!("blocks[{i}].{name}");
            check_weekday(&mut errors, &f("weekday"), b.weekday);
            check_grid_time(&mut errors, &f("start"), b.start);
            check_grid_time(&mut errors, &f("end"), b.end);
            if b.end <= b.start {
                errors.add(f("end"), "must be after the start");
            }
            if b.overbook_limit.is_some_and(|l| l > MAX_OVERBOOK_LIMIT) {
                errors.add(
                    f("overbook_limit"),
                    format!("must be at most {MAX_OVERBOOK_LIMIT}"),
                );
            }
            check_ids(
                &mut errors,
                &f("appointment_type_ids"),
                &mut b.appointment_type_ids,
            );
        }
        for i in 0..self.blocks.len() {
            if let Some(j) = (0..i).find(|&j| self.blocks[i].overlaps(&self.blocks[j])) {
                errors.add(
                    format!("blocks[{i}].start"),
                    format!("overlaps block {} on the same weekday", j + 1),
                );
            }
        }
        errors.into_result(self)
    }

    /// Like [`Template::validate`], and also refuses blocks that overlap the
    /// same provider's other templates on overlapping dates (a provider
    /// cannot be in two places, or twice in one place, at once).
    pub fn validate_with_others(self, others: &[Template]) -> Result<Self, ValidationErrors> {
        let template = self.validate()?;
        let mut errors = ValidationErrors::new();
        for other in others.iter().filter(|o| {
            o.id != template.id
                && o.practitioner_id == template.practitioner_id
                && o.dates_overlap(&template)
        }) {
            for (i, b) in template.blocks.iter().enumerate() {
                if other.blocks.iter().any(|ob| ob.overlaps(b)) {
                    errors.add(
                        format!("blocks[{i}].start"),
                        format!("overlaps the provider's template {}", other.id),
                    );
                }
            }
        }
        errors.into_result(template)
    }
}

// ---------------------------------------------------------------- exceptions

/// What an exception does. Times of every kind are local wall-clock times,
/// read in the zone of the location the affected slot is at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExceptionKind {
    /// The provider is away (vacation, leave).
    TimeOff { practitioner_id: String },
    /// The organization (or one location) is closed.
    Holiday {
        name: String,
        location_id: Option<String>,
    },
    /// A provider's time, or a room or device, is taken for something other
    /// than visits (meeting, maintenance).
    Blocked {
        reason: String,
        practitioner_id: Option<String>,
        resource_id: Option<String>,
    },
    /// A one-off session outside the template; it also opens the location
    /// for in-person visits.
    ExtraSession {
        practitioner_id: String,
        location_id: String,
        /// Empty means every type the provider offers.
        appointment_type_ids: Vec<String>,
        #[serde(default)]
        overbook_limit: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleException {
    pub id: String,
    pub start: DateTime,
    pub end: DateTime,
    pub kind: ExceptionKind,
}

impl ScheduleException {
    /// An organization-wide (or one location's) holiday covering whole local days.
    pub fn holiday(
        id: impl Into<String>,
        name: impl Into<String>,
        date: Date,
        location_id: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            start: date.at(0, 0, 0, 0),
            end: super::time::next_day(date).at(0, 0, 0, 0),
            kind: ExceptionKind::Holiday {
                name: name.into(),
                location_id,
            },
        }
    }

    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.id = required_text(&mut errors, "id", &self.id, 64);
        if self.end <= self.start {
            errors.add("end", "must be after the start");
        }
        match &mut self.kind {
            ExceptionKind::TimeOff { practitioner_id } => {
                *practitioner_id =
                    required_text(&mut errors, "practitioner_id", practitioner_id, 64);
            }
            ExceptionKind::Holiday { name, location_id } => {
                *name = required_text(&mut errors, "name", name, 120);
                *location_id =
                    optional_text(&mut errors, "location_id", location_id.as_deref(), 64);
            }
            ExceptionKind::Blocked {
                reason,
                practitioner_id,
                resource_id,
            } => {
                *reason = required_text(&mut errors, "reason", reason, 200);
                *practitioner_id = optional_text(
                    &mut errors,
                    "practitioner_id",
                    practitioner_id.as_deref(),
                    64,
                );
                *resource_id =
                    optional_text(&mut errors, "resource_id", resource_id.as_deref(), 64);
                if practitioner_id.is_some() == resource_id.is_some() {
                    errors.add(
                        "practitioner_id",
                        "block either a provider's time or a resource, not both or neither",
                    );
                }
            }
            ExceptionKind::ExtraSession {
                practitioner_id,
                location_id,
                appointment_type_ids,
                overbook_limit,
            } => {
                *practitioner_id =
                    required_text(&mut errors, "practitioner_id", practitioner_id, 64);
                *location_id = required_text(&mut errors, "location_id", location_id, 64);
                check_ids(&mut errors, "appointment_type_ids", appointment_type_ids);
                if *overbook_limit > MAX_OVERBOOK_LIMIT {
                    errors.add(
                        "overbook_limit",
                        format!("must be at most {MAX_OVERBOOK_LIMIT}"),
                    );
                }
                if self.start.date() != self.end.date() {
                    errors.add("end", "an extra session starts and ends on the same day");
                }
                check_grid_time(&mut errors, "start", self.start.time());
                check_grid_time(&mut errors, "end", self.end.time());
            }
        }
        errors.into_result(self)
    }

    /// The exception's practitioner, if it concerns one provider.
    pub(crate) fn practitioner(&self) -> Option<&str> {
        match &self.kind {
            ExceptionKind::TimeOff { practitioner_id }
            | ExceptionKind::ExtraSession {
                practitioner_id, ..
            } => Some(practitioner_id),
            ExceptionKind::Blocked {
                practitioner_id, ..
            } => practitioner_id.as_deref(),
            ExceptionKind::Holiday { .. } => None,
        }
    }
}

// ---------------------------------------------------------------- preferences

/// Morning is a local start before noon; afternoon from noon on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartOfDay {
    Morning,
    Afternoon,
}

impl PartOfDay {
    pub fn of(t: Time) -> Self {
        if t.hour() < 12 {
            PartOfDay::Morning
        } else {
            PartOfDay::Afternoon
        }
    }
}

/// A patient's wishes for a visit. Every empty list means "no preference".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// ISO weekdays, 1 = Monday … 7 = Sunday.
    #[serde(default)]
    pub weekdays: Vec<u8>,
    #[serde(default)]
    pub part_of_day: Option<PartOfDay>,
    #[serde(default)]
    pub location_ids: Vec<String>,
    #[serde(default)]
    pub practitioner_ids: Vec<String>,
}

impl Preferences {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (i, w) in self.weekdays.iter().enumerate() {
            check_weekday(&mut errors, &format!("weekdays[{i}]"), *w);
        }
        self.weekdays.sort_unstable();
        self.weekdays.dedup();
        check_ids(&mut errors, "location_ids", &mut self.location_ids);
        check_ids(&mut errors, "practitioner_ids", &mut self.practitioner_ids);
        errors.into_result(self)
    }

    /// (preferences met, preferences stated) for a visit at `local_start`.
    pub fn fit(
        &self,
        practitioner_id: &str,
        location_id: &str,
        local_start: DateTime,
    ) -> (u32, u32) {
        let mut met = 0;
        let mut stated = 0;
        let mut check = |stated_here: bool, ok: bool| {
            if stated_here {
                stated += 1;
                met += u32::from(ok);
            }
        };
        check(
            !self.weekdays.is_empty(),
            self.weekdays.contains(&iso_weekday(local_start.date())),
        );
        check(
            self.part_of_day.is_some(),
            self.part_of_day == Some(PartOfDay::of(local_start.time())),
        );
        check(
            !self.location_ids.is_empty(),
            self.location_ids.iter().any(|l| l == location_id),
        );
        check(
            !self.practitioner_ids.is_empty(),
            self.practitioner_ids.iter().any(|p| p == practitioner_id),
        );
        (met, stated)
    }

    pub fn accepts(&self, practitioner_id: &str, location_id: &str, local_start: DateTime) -> bool {
        let (met, stated) = self.fit(practitioner_id, location_id, local_start);
        met == stated
    }
}

/// An instant interval `[start, end)`, used for anything that occupies time.
pub(crate) fn overlaps(a: (Timestamp, Timestamp), b: (Timestamp, Timestamp)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    pub(crate) fn visit_type() -> AppointmentType {
        AppointmentType {
            id: "t".into(),
            name: "Follow-up".into(),
            duration_minutes: 20,
            color: "#2A7AB0".into(),
            specialties: vec!["207Q00000X".into()],
            practitioner_ids: vec![],
            resource_kind: Some(ResourceKind::ExamRoom),
            modality: Modality::InPerson,
            eligibility: PatientEligibility::Established,
            min_notice_minutes: 60,
            max_days_ahead: 90,
            instructions: Some("  Bring your medications. ".into()),
            intake_form: None,
            active: true,
        }
    }

    fn template() -> Template {
        Template {
            id: "tpl".into(),
            practitioner_id: "dr".into(),
            location_id: "loc".into(),
            effective_from: date(2026, 1, 1),
            effective_until: None,
            overbook_limit: 0,
            blocks: vec![AvailabilityBlock {
                weekday: 1,
                start: time(9, 0, 0, 0),
                end: time(12, 0, 0, 0),
                appointment_type_ids: vec![],
                overbook_limit: None,
            }],
        }
    }

    #[test]
    fn appointment_type_is_normalized() {
        let t = visit_type().validate().unwrap();
        assert_eq!(t.color, "#2a7ab0");
        assert_eq!(t.instructions.as_deref(), Some("Bring your medications."));
    }

    #[test]
    fn appointment_type_errors_name_the_field() {
        let mut t = visit_type();
        t.duration_minutes = 12;
        t.color = "blue".into();
        t.specialties = vec![];
        t.modality = Modality::Telehealth;
        t.max_days_ahead = 0;
        let err = t.validate().unwrap_err();
        for field in [
            "duration_minutes",
            "color",
            "specialties",
            "resource_kind",
            "max_days_ahead",
        ] {
            assert!(err.for_field(field).is_some(), "{field}: {err}");
        }
        let mut t = visit_type();
        t.duration_minutes = 0;
        t.specialties = vec!["nope".into()];
        t.min_notice_minutes = 90 * 1440;
        let err = t.validate().unwrap_err();
        assert!(err.for_field("duration_minutes").is_some());
        assert!(err.for_field("specialties[0]").is_some());
        assert!(err.for_field("min_notice_minutes").is_some());
    }

    #[test]
    fn eligibility_and_offering() {
        let t = visit_type();
        assert!(t.accepts_patient(true));
        assert!(!t.accepts_patient(false));
        assert!(t.offered_by("anyone", &["207Q00000X".into()]));
        assert!(!t.offered_by("anyone", &["207N00000X".into()]));
    }

    #[test]
    fn template_errors_name_the_field() {
        let mut t = template();
        t.effective_until = Some(date(2025, 12, 31));
        t.blocks[0].weekday = 8;
        t.blocks[0].end = time(8, 0, 0, 0);
        t.blocks.push(AvailabilityBlock {
            weekday: 2,
            start: time(9, 7, 0, 0),
            end: time(10, 0, 0, 0),
            appointment_type_ids: vec![],
            overbook_limit: Some(50),
        });
        let err = t.validate().unwrap_err();
        assert!(err.for_field("effective_until").is_some());
        assert!(
            err.for_field("blocks[0].weekday")
                .unwrap()
                .contains("unknown weekday")
        );
        assert!(err.for_field("blocks[0].end").is_some());
        assert!(err.for_field("blocks[1].start").is_some());
        assert!(err.for_field("blocks[1].overbook_limit").is_some());
    }

    #[test]
    fn overlapping_blocks_are_refused_within_and_across_templates() {
        let mut t = template();
        let mut b = t.blocks[0].clone();
        b.start = time(11, 0, 0, 0);
        b.end = time(13, 0, 0, 0);
        t.blocks.push(b.clone());
        assert!(
            t.validate()
                .unwrap_err()
                .for_field("blocks[1].start")
                .is_some()
        );

        let other = template();
        let mut mine = template();
        mine.id = "tpl2".into();
        mine.location_id = "elsewhere".into();
        mine.blocks = vec![b];
        let err = mine
            .clone()
            .validate_with_others(std::slice::from_ref(&other))
            .unwrap_err();
        assert!(err.for_field("blocks[0].start").unwrap().contains("tpl"));
        // Not overlapping in dates: fine.
        mine.effective_from = date(2027, 1, 1);
        let mut earlier = other;
        earlier.effective_until = Some(date(2026, 12, 31));
        assert!(mine.validate_with_others(&[earlier]).is_ok());
    }

    #[test]
    fn exception_errors_name_the_field() {
        let e = ScheduleException {
            id: "x".into(),
            start: date(2026, 3, 2).at(10, 0, 0, 0),
            end: date(2026, 3, 2).at(9, 0, 0, 0),
            kind: ExceptionKind::Blocked {
                reason: " ".into(),
                practitioner_id: None,
                resource_id: None,
            },
        };
        let err = e.validate().unwrap_err();
        assert!(err.for_field("end").is_some());
        assert!(err.for_field("reason").is_some());
        assert!(err.for_field("practitioner_id").is_some());

        let extra = ScheduleException {
            id: "x".into(),
            start: date(2026, 3, 7).at(9, 0, 0, 0),
            end: date(2026, 3, 8).at(1, 0, 0, 0),
            kind: ExceptionKind::ExtraSession {
                practitioner_id: "dr".into(),
                location_id: "loc".into(),
                appointment_type_ids: vec![],
                overbook_limit: 0,
            },
        };
        assert!(extra.validate().unwrap_err().for_field("end").is_some());
        let h = ScheduleException::holiday("h", "New Year", date(2026, 1, 1), None);
        assert!(h.validate().is_ok());
    }

    #[test]
    fn location_hours_validate() {
        let hours = LocationHours {
            location_id: "loc".into(),
            timezone: "Mars/Base".into(),
            opening_hours: vec![
                OpeningHours {
                    weekday: 0,
                    open: time(9, 0, 0, 0),
                    close: time(8, 0, 0, 0),
                },
                OpeningHours {
                    weekday: 0,
                    open: time(7, 0, 0, 0),
                    close: time(10, 0, 0, 0),
                },
            ],
        };
        let err = hours.validate().unwrap_err();
        assert!(err.for_field("timezone").is_some());
        assert!(err.for_field("opening_hours[0].weekday").is_some());
        assert!(err.for_field("opening_hours[0].close").is_some());
    }

    #[test]
    fn preferences_fit() {
        let p = Preferences {
            weekdays: vec![1, 3],
            part_of_day: Some(PartOfDay::Morning),
            location_ids: vec!["loc".into()],
            practitioner_ids: vec![],
        };
        let monday_9 = date(2026, 3, 9).at(9, 0, 0, 0);
        assert_eq!(p.fit("dr", "loc", monday_9), (3, 3));
        assert!(p.accepts("dr", "loc", monday_9));
        let tuesday_13 = date(2026, 3, 10).at(13, 0, 0, 0);
        assert_eq!(p.fit("dr", "loc", tuesday_13), (1, 3));
        let bad = Preferences {
            weekdays: vec![9],
            ..Preferences::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .for_field("weekdays[0]")
                .is_some()
        );
    }

    #[test]
    fn types_round_trip_through_serde() {
        let t = template();
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"09:00:00\""));
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
        let e = ScheduleException::holiday("h", "July 4th", date(2026, 7, 4), None);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"type\":\"holiday\""));
        assert_eq!(serde_json::from_str::<ScheduleException>(&json).unwrap(), e);
    }
}
