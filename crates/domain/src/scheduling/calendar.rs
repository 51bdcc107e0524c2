//! The indexed view of a [`SlotInput`] that slot search, booking checks and
//! series planning share: time zones parsed once, each provider's load and
//! each resource's busy time as sorted interval lists, and templates and
//! exceptions grouped by provider. Built once per call in O(n log n); every
//! question after that is a binary search, never a per-minute walk.

use super::model::{
    AppointmentType, ExceptionKind, LocationHours, Modality, Resource, ResourceKind,
    ScheduleException, Template, overlaps,
};
use super::slots::{Provider, ScheduleError, SlotInput};
use super::time::{DayClock, at_minute, boundary_instant, iso_weekday, minute_of_day};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
// Keys are the input's own ids and a calendar is built per request (some
// 10,000 bookings for a slot search): the fast hash matters, flooding does not.
use rustc_hash::FxHashMap as HashMap;

pub(crate) type Interval = (Timestamp, Timestamp);

/// Sorted, disjoint spans of time (each with what holds it).
trait Spans {
    type Item;
    fn span(item: &Self::Item) -> Interval;
}

/// The items of sorted, disjoint `items` that meet `[a, b)`.
fn meeting<S: Spans>(items: &[S::Item], a: Timestamp, b: Timestamp) -> &[S::Item] {
    let first = items.partition_point(|s| S::span(s).1 <= a);
    let rest = &items[first..];
    &rest[..rest.partition_point(|s| S::span(s).0 < b)]
}

pub(crate) type Segment = (Timestamp, Timestamp, u32);

/// How many bookings hold a provider at each moment, as disjoint segments.
/// `Load<&[Segment]>` is a stretch of one ([`Load::during`]): a day's
/// slots ask of their session's few segments, not of the whole range's.
#[derive(Debug, Default)]
pub(crate) struct Load<S = Vec<Segment>>(S);

impl<S> Spans for Load<S> {
    type Item = Segment;
    fn span(s: &Segment) -> Interval {
        (s.0, s.1)
    }
}

impl Load {
    /// `intervals` come mostly in order of start (each provider's bookings
    /// as stored), so starts and ends sort in about one pass and merge.
    fn build(intervals: &[Interval]) -> Load {
        let held = || intervals.iter().filter(|(s, e)| s < e);
        let mut starts: Vec<Timestamp> = held().map(|iv| iv.0).collect();
        let mut ends: Vec<Timestamp> = held().map(|iv| iv.1).collect();
        starts.sort();
        ends.sort();
        let mut segments = Vec::new();
        let (mut next_start, mut next_end) = (0, 0);
        let mut load: u32 = 0;
        let mut prev = Timestamp::MIN;
        while let Some(&end) = ends.get(next_end) {
            // Ends come before starts at the same instant: intervals are
            // half-open. Every start is before its own end, so starts run
            // out first.
            let (t, starting) = match starts.get(next_start) {
                Some(&start) if start < end => {
                    next_start += 1;
                    (start, true)
                }
                _ => {
                    next_end += 1;
                    (end, false)
                }
            };
            if load > 0 && t > prev {
                segments.push((prev, t, load));
            }
            if starting {
                load += 1;
            } else {
                load -= 1;
            }
            prev = t;
        }
        Load(segments)
    }
}

impl<S: AsRef<[Segment]>> Load<S> {
    /// The most bookings holding the provider at any moment of `[a, b)`.
    pub(crate) fn max_over(&self, a: Timestamp, b: Timestamp) -> u32 {
        meeting::<Self>(self.0.as_ref(), a, b)
            .iter()
            .map(|s| s.2)
            .max()
            .unwrap_or(0)
    }

    /// The load during `[a, b)`, to ask of times within it.
    pub(crate) fn during(&self, a: Timestamp, b: Timestamp) -> Load<&[Segment]> {
        Load(meeting::<Self>(self.0.as_ref(), a, b))
    }
}

/// Disjoint, sorted busy intervals (`Busy<&[Interval]>`: a stretch of
/// them, see [`Busy::during`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Busy<S = Vec<Interval>>(S);

impl<S> Spans for Busy<S> {
    type Item = Interval;
    fn span(iv: &Interval) -> Interval {
        *iv
    }
}

impl Busy {
    pub(crate) fn build(mut v: Vec<Interval>) -> Busy {
        v.retain(|(s, e)| s < e);
        v.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Busy(merged)
    }
}

impl<S: AsRef<[Interval]>> Busy<S> {
    pub(crate) fn overlaps(&self, a: Timestamp, b: Timestamp) -> bool {
        !meeting::<Self>(self.0.as_ref(), a, b).is_empty()
    }

    pub(crate) fn contains(&self, a: Timestamp, b: Timestamp) -> bool {
        let v = self.0.as_ref();
        let i = v.partition_point(|iv| iv.1 < b);
        i < v.len() && v[i].0 <= a
    }

    /// The busy time during `[a, b)`, to ask of times within it.
    pub(crate) fn during(&self, a: Timestamp, b: Timestamp) -> Busy<&[Interval]> {
        Busy(meeting::<Self>(self.0.as_ref(), a, b))
    }
}

/// A bookable resource with its place in `SlotInput::resources` and its
/// busy time.
#[derive(Debug)]
pub(crate) struct Room<'a> {
    pub index: u32,
    pub resource: &'a Resource,
    busy: Busy,
}

impl Room<'_> {
    pub(crate) fn free(&self, a: Timestamp, b: Timestamp) -> bool {
        !self.busy.overlaps(a, b)
    }

    /// When the room is busy during `[a, b)`.
    pub(crate) fn busy_during(&self, a: Timestamp, b: Timestamp) -> Busy<&[Interval]> {
        self.busy.during(a, b)
    }
}

pub(crate) struct Zone<'a> {
    pub tz: TimeZone,
    pub hours: &'a LocationHours,
    /// Its place in `SlotInput::locations`.
    pub index: u32,
}

/// A stretch of availability on one local date: a template block or an
/// extra session.
#[derive(Debug, Clone)]
pub(crate) struct Session<'a> {
    pub date: Date,
    pub start_min: i32,
    pub end_min: i32,
    pub allowed_types: &'a [String],
    pub overbook_limit: u8,
    /// Extra sessions open the location for in-person visits.
    pub extra: bool,
}

impl Session<'_> {
    pub(crate) fn allows(&self, type_id: &str) -> bool {
        self.allowed_types.is_empty() || self.allowed_types.iter().any(|t| t == type_id)
    }

    /// Its start and end, read on `clock` (its date's).
    pub(crate) fn instants(&self, clock: &DayClock) -> Interval {
        debug_assert_eq!(clock.date, self.date);
        (
            clock.boundary(at_minute(self.date, self.start_min)),
            clock.boundary(at_minute(self.date, self.end_min)),
        )
    }
}

/// An exception that takes a provider's time away, as instants.
#[derive(Debug, Clone)]
pub(crate) struct Removal<'a> {
    pub interval: Interval,
    pub exception: &'a ScheduleException,
}

pub(crate) struct Calendar<'a> {
    pub input: &'a SlotInput,
    pub kind: &'a AppointmentType,
    zones: HashMap<&'a str, Zone<'a>>,
    load: HashMap<&'a str, Load>,
    resource_busy: HashMap<&'a str, Busy>,
    /// Active resources by location and kind, by id.
    rooms: HashMap<(&'a str, ResourceKind), Vec<Room<'a>>>,
    resources: HashMap<&'a str, &'a Resource>,
    templates: HashMap<&'a str, Vec<&'a Template>>,
    extras: HashMap<&'a str, Vec<&'a ScheduleException>>,
    personal: HashMap<&'a str, Vec<&'a ScheduleException>>,
    holidays: Vec<&'a ScheduleException>,
    empty_load: Load,
}

impl<'a> Calendar<'a> {
    /// Indexes `input`, leaving out bookings and holds whose id is in
    /// `ignore` (the hold being confirmed, the appointment being moved).
    pub(crate) fn new(input: &'a SlotInput, ignore: &[String]) -> Result<Self, ScheduleError> {
        let mut zones = HashMap::default();
        for (index, hours) in (0..).zip(&input.locations) {
            let tz =
                TimeZone::get(&hours.timezone).map_err(|_| ScheduleError::UnknownTimeZone {
                    location_id: hours.location_id.clone(),
                    timezone: hours.timezone.clone(),
                })?;
            zones.insert(hours.location_id.as_str(), Zone { tz, hours, index });
        }

        let occupied = input
            .bookings
            .iter()
            .filter(|b| !ignore.iter().any(|i| **i == *b.id))
            .map(|b| (&*b.practitioner_id, &*b.resource_ids, b.start, b.end))
            .chain(
                input
                    .holds
                    .iter()
                    .filter(|h| h.is_live(input.now) && !ignore.contains(&h.id))
                    .map(|h| {
                        (
                            h.slot.practitioner_id.as_str(),
                            h.slot.resource_ids.as_slice(),
                            h.slot.start,
                            h.slot.end,
                        )
                    }),
            );
        // Loads are only asked of the input's providers; other bookings can
        // only matter through their resources. Bookings come grouped by
        // provider: the provider is looked up when it changes.
        let mut by_practitioner: Vec<(&str, Vec<Interval>)> = input
            .providers
            .iter()
            .map(|p| (p.practitioner_id.as_str(), Vec::new()))
            .collect();
        let place: HashMap<&str, usize> = (0..)
            .zip(&by_practitioner)
            .map(|(i, (p, _))| (*p, i))
            .collect();
        let mut last: Option<(&str, Option<usize>)> = None;
        let mut by_resource: HashMap<&str, Vec<Interval>> = HashMap::default();
        for (p, rs, s, e) in occupied {
            let at = match last {
                // The store shares one id per provider: most are the same
                // pointer.
                Some((same, at)) if std::ptr::eq(same, p) || same == p => at,
                _ => {
                    let at = place.get(p).copied();
                    last = Some((p, at));
                    at
                }
            };
            if let Some(at) = at {
                by_practitioner[at].1.push((s, e));
            }
            for r in rs.iter() {
                by_resource.entry(r.as_str()).or_default().push((s, e));
            }
        }

        let mut rooms: HashMap<(&str, ResourceKind), Vec<(u32, &Resource)>> = HashMap::default();
        let mut resources = HashMap::default();
        for (index, r) in (0..).zip(&input.resources).filter(|(_, r)| r.active) {
            rooms
                .entry((r.location_id.as_str(), r.kind))
                .or_default()
                .push((index, r));
            resources.insert(r.id.as_str(), r);
        }
        for list in rooms.values_mut() {
            list.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        }

        let mut templates: HashMap<&str, Vec<&Template>> = HashMap::default();
        for t in &input.templates {
            templates
                .entry(t.practitioner_id.as_str())
                .or_default()
                .push(t);
        }
        let mut extras: HashMap<&str, Vec<&ScheduleException>> = HashMap::default();
        let mut personal: HashMap<&str, Vec<&ScheduleException>> = HashMap::default();
        let mut holidays = Vec::new();
        for e in &input.exceptions {
            match &e.kind {
                ExceptionKind::ExtraSession {
                    practitioner_id, ..
                } => extras.entry(practitioner_id.as_str()).or_default().push(e),
                ExceptionKind::Holiday { .. } => holidays.push(e),
                ExceptionKind::Blocked {
                    resource_id: Some(r),
                    ..
                } => {
                    // A blocked room is busy in its own location's time.
                    if let Some(zone) = resources
                        .get(r.as_str())
                        .and_then(|res: &&Resource| zones.get(res.location_id.as_str()))
                    {
                        let iv = (
                            boundary_instant(&zone.tz, e.start),
                            boundary_instant(&zone.tz, e.end),
                        );
                        by_resource.entry(r.as_str()).or_default().push(iv);
                    }
                }
                _ => {
                    if let Some(p) = e.practitioner() {
                        personal.entry(p).or_default().push(e);
                    }
                }
            }
        }

        let resource_busy: HashMap<&str, Busy> = by_resource
            .into_iter()
            .map(|(k, v)| (k, Busy::build(v)))
            .collect();
        let rooms = rooms
            .into_iter()
            .map(|(key, list)| {
                let list = list
                    .into_iter()
                    .map(|(index, resource)| Room {
                        index,
                        resource,
                        busy: resource_busy
                            .get(resource.id.as_str())
                            .cloned()
                            .unwrap_or_default(),
                    })
                    .collect();
                (key, list)
            })
            .collect();
        Ok(Calendar {
            input,
            kind: &input.appointment_type,
            zones,
            load: by_practitioner
                .into_iter()
                .map(|(k, v)| (k, Load::build(&v)))
                .collect(),
            resource_busy,
            rooms,
            resources,
            templates,
            extras,
            personal,
            holidays,
            empty_load: Load::default(),
        })
    }

    pub(crate) fn zone(&self, location_id: &str) -> Result<&Zone<'a>, ScheduleError> {
        self.zones
            .get(location_id)
            .ok_or_else(|| ScheduleError::UnknownLocation(location_id.to_string()))
    }

    pub(crate) fn provider(&self, practitioner_id: &str) -> Option<&'a Provider> {
        self.input
            .providers
            .iter()
            .find(|p| p.practitioner_id == practitioner_id)
    }

    pub(crate) fn offers(&self, provider: &Provider) -> bool {
        self.kind
            .offered_by(&provider.practitioner_id, &provider.specialties)
    }

    pub(crate) fn load(&self, practitioner_id: &str) -> &Load {
        self.load.get(practitioner_id).unwrap_or(&self.empty_load)
    }

    pub(crate) fn resource(&self, id: &str) -> Option<&'a Resource> {
        self.resources.get(id).copied()
    }

    pub(crate) fn resource_free(&self, id: &str, a: Timestamp, b: Timestamp) -> bool {
        self.resource_busy
            .get(id)
            .is_none_or(|busy| !busy.overlaps(a, b))
    }

    /// The first free resource (by id) of `kind` at the location, with its
    /// place in `SlotInput::resources`.
    pub(crate) fn free_resource(
        &self,
        location_id: &str,
        kind: ResourceKind,
        a: Timestamp,
        b: Timestamp,
    ) -> Option<&Room<'a>> {
        // The zone's key is the input's own id, which the rooms are keyed by.
        let (&location_id, _) = self.zones.get_key_value(location_id)?;
        self.rooms(location_id, kind).iter().find(|r| r.free(a, b))
    }

    /// The active resources of `kind` at the location, by id.
    pub(crate) fn rooms(&self, location_id: &'a str, kind: ResourceKind) -> &[Room<'a>] {
        self.rooms
            .get(&(location_id, kind))
            .map_or(&[], Vec::as_slice)
    }

    /// Locations where the provider has templates or extra sessions.
    pub(crate) fn provider_locations(&self, practitioner_id: &str) -> Vec<&'a str> {
        let mut locs: Vec<&str> = self
            .templates
            .get(practitioner_id)
            .into_iter()
            .flatten()
            .map(|t| t.location_id.as_str())
            .chain(
                self.extras
                    .get(practitioner_id)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| match &e.kind {
                        ExceptionKind::ExtraSession { location_id, .. } => {
                            Some(location_id.as_str())
                        }
                        _ => None,
                    }),
            )
            .collect();
        locs.sort_unstable();
        locs.dedup();
        locs
    }

    /// The provider's sessions at a location on one local date.
    pub(crate) fn sessions(
        &self,
        practitioner_id: &str,
        location_id: &str,
        date: Date,
    ) -> Vec<Session<'a>> {
        let weekday = iso_weekday(date);
        let mut out = Vec::new();
        for t in self.templates.get(practitioner_id).into_iter().flatten() {
            if t.location_id != location_id || !t.is_effective_on(date) {
                continue;
            }
            for b in t.blocks.iter().filter(|b| b.weekday == weekday) {
                out.push(Session {
                    date,
                    start_min: minute_of_day(b.start),
                    end_min: minute_of_day(b.end),
                    allowed_types: &b.appointment_type_ids,
                    overbook_limit: t.block_overbook_limit(b),
                    extra: false,
                });
            }
        }
        for e in self.extras.get(practitioner_id).into_iter().flatten() {
            if let ExceptionKind::ExtraSession {
                location_id: l,
                appointment_type_ids,
                overbook_limit,
                ..
            } = &e.kind
                && l == location_id
                && e.start.date() == date
                && e.end.date() == date
            {
                out.push(Session {
                    date,
                    start_min: minute_of_day(e.start.time()),
                    end_min: minute_of_day(e.end.time()),
                    allowed_types: appointment_type_ids,
                    overbook_limit: *overbook_limit,
                    extra: true,
                });
            }
        }
        out.sort_by_key(|s| (s.start_min, s.end_min));
        out
    }

    /// Time the provider is away at this location between two local dates
    /// (inclusive): time off, blocked time and holidays, sorted by start.
    pub(crate) fn removals(
        &self,
        practitioner_id: &str,
        location_id: &str,
        tz: &TimeZone,
        first: Date,
        last: Date,
    ) -> Vec<Removal<'a>> {
        let lo: DateTime = first.at(0, 0, 0, 0);
        let hi: DateTime = last.checked_add(1.days()).unwrap_or(last).at(0, 0, 0, 0);
        let holidays = self.holidays.iter().filter(|e| match &e.kind {
            ExceptionKind::Holiday {
                location_id: Some(l),
                ..
            } => l == location_id,
            _ => true,
        });
        let mut out: Vec<Removal> = self
            .personal
            .get(practitioner_id)
            .into_iter()
            .flatten()
            .chain(holidays)
            .filter(|e| e.start < hi && lo < e.end)
            .map(|e| Removal {
                interval: (boundary_instant(tz, e.start), boundary_instant(tz, e.end)),
                exception: e,
            })
            .collect();
        out.sort_by_key(|r| r.interval.0);
        out
    }

    /// Opening hours of a location on `clock`'s date (read on the
    /// location's clock), as instants.
    pub(crate) fn opening(&self, zone: &Zone, clock: &DayClock) -> Busy {
        let date = clock.date;
        Busy::build(
            zone.hours
                .minutes_on(date)
                .map(|(o, c)| {
                    (
                        clock.boundary(at_minute(date, o)),
                        clock.boundary(at_minute(date, c)),
                    )
                })
                .collect(),
        )
    }

    pub(crate) fn in_person(&self) -> bool {
        self.kind.modality == Modality::InPerson
    }
}

/// Whether `iv` overlaps any removal; removals are sorted by start.
pub(crate) fn removed(removals: &[Removal], iv: Interval) -> bool {
    // Removals may overlap each other, so scan those starting before the end.
    removals
        .iter()
        .take_while(|r| r.interval.0 < iv.1)
        .any(|r| overlaps(r.interval, iv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn load_counts_concurrent_bookings() {
        let a = ts("2026-03-09T14:00:00Z");
        let b = ts("2026-03-09T14:30:00Z");
        let c = ts("2026-03-09T15:00:00Z");
        let load = Load::build(&[(a, c), (a, b), (b, c)]);
        assert_eq!(load.max_over(a, b), 2);
        assert_eq!(load.max_over(a, c), 2);
        assert_eq!(load.max_over(c, ts("2026-03-09T16:00:00Z")), 0);
        // Touching intervals do not overlap.
        let load = Load::build(&[(a, b), (b, c)]);
        assert_eq!(load.max_over(a, c), 1);
    }

    proptest::proptest! {
        /// The load at every minute is the number of intervals holding
        /// it, whatever order the intervals come in.
        #[test]
        fn load_counts_each_minute(raw in proptest::collection::vec((0i64..120, 0i64..60), 0..40)) {
            let t = |m: i64| ts("2026-03-09T14:00:00Z") + jiff::SignedDuration::from_mins(m);
            let intervals: Vec<Interval> = raw.iter().map(|&(s, len)| (t(s), t(s + len))).collect();
            let load = Load::build(&intervals);
            for m in 0..180 {
                let held = raw.iter().filter(|&&(s, len)| s <= m && m < s + len).count() as u32;
                proptest::prop_assert_eq!(load.max_over(t(m), t(m + 1)), held, "minute {}", m);
            }
        }
    }

    #[test]
    fn busy_merges_and_answers_overlap_and_containment() {
        let t = |m: i64| ts("2026-03-09T14:00:00Z") + jiff::SignedDuration::from_mins(m);
        let busy = Busy::build(vec![(t(30), t(60)), (t(0), t(30)), (t(90), t(120))]);
        assert!(busy.overlaps(t(10), t(20)));
        assert!(!busy.overlaps(t(60), t(90)));
        assert!(busy.contains(t(0), t(60)));
        assert!(!busy.contains(t(50), t(100)));
    }

    /// A stretch answers every question inside it as the whole does.
    #[test]
    fn stretches_answer_as_the_whole_within_them() {
        let t = |m: i64| ts("2026-03-09T14:00:00Z") + jiff::SignedDuration::from_mins(m);
        let booked: Vec<Interval> = [(0, 45), (30, 60), (50, 90), (120, 150), (200, 260)]
            .map(|(a, b)| (t(a), t(b)))
            .to_vec();
        let load = Load::build(&booked);
        let busy = Busy::build(booked);
        let (from, until) = (t(40), t(180));
        let (load_during, busy_during) = (load.during(from, until), busy.during(from, until));
        assert!(load_during.0.len() < load.0.len() && busy_during.0.len() < busy.0.len());
        for start in (40..180).step_by(5) {
            for minutes in [5, 15, 30] {
                let (a, b) = (t(start), t((start + minutes).min(180)));
                assert_eq!(
                    load_during.max_over(a, b),
                    load.max_over(a, b),
                    "{start}+{minutes}"
                );
                assert_eq!(
                    busy_during.overlaps(a, b),
                    busy.overlaps(a, b),
                    "{start}+{minutes}"
                );
            }
        }
    }
}
