//! Free slots: templates and extra sessions, minus exceptions, minus what
//! existing bookings, live holds and resources leave, within minimum notice
//! and maximum days ahead, all in each location's local time.
//!
//! Slots of a session start at its start and step by the appointment type's
//! duration in wall-clock time, so the grid is the same on every day of the
//! year. On a day clocks change the rules of [`super::time`] apply: a start in
//! the spring-forward gap is skipped, a start in the fall-back fold is offered
//! once (first occurrence), every slot lasts exactly the type's duration in
//! real time, and a slot that would overlap the previous one (possible right
//! after a gap) is dropped.

use super::booking::Hold;
use super::calendar::{Busy, Calendar, Interval, Load, Removal, Segment, Session, removed};
use super::model::{
    AppointmentType, LocationHours, Modality, Preferences, Resource, ResourceKind,
    ScheduleException, Template,
};
use super::time::{DayClock, at_minute, days_between, local};
use jiff::civil::{Date, DateTime};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// A provider who may be scheduled, with the specialties (NUCC codes) of
/// their practitioner roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub practitioner_id: String,
    pub specialties: Vec<String>,
}

/// Time already taken: an appointment whose status holds time (see
/// [`super::AppointmentStatus::holds_time`]). Bookings at any location count
/// against the provider, who cannot be in two places at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// The appointment id. Ids are shared, not copied: a slot search over a
    /// specialty meets tens of thousands of bookings a server keeps.
    pub id: Arc<str>,
    pub practitioner_id: Arc<str>,
    pub resource_ids: Arc<[String]>,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Everything one slot computation needs, so the store loads exactly this
/// and calls [`free_slots`] (or the other searches) with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInput {
    pub appointment_type: AppointmentType,
    /// Every location the templates, exceptions and resources refer to.
    pub locations: Vec<LocationHours>,
    pub providers: Vec<Provider>,
    pub templates: Vec<Template>,
    pub exceptions: Vec<ScheduleException>,
    pub resources: Vec<Resource>,
    pub bookings: Vec<Booking>,
    /// Holds; those not live at `now` are ignored.
    pub holds: Vec<Hold>,
    /// Slots starting in `[from, until)` are returned.
    pub from: Timestamp,
    pub until: Timestamp,
    pub now: Timestamp,
}

/// One bookable slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub practitioner_id: String,
    pub location_id: String,
    pub appointment_type_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Wall-clock times at the location, for display.
    pub local_start: DateTime,
    pub local_end: DateTime,
    /// A free room or device of the kind the type needs (the first by id).
    pub resource_id: Option<String>,
    /// Bookings already holding the provider during the slot.
    pub booked: u32,
    /// 1 + the block's overbooking limit.
    pub capacity: u32,
}

impl Slot {
    /// Taking this slot would double-book the provider (allowed by the
    /// overbooking policy, but not a regular opening).
    pub fn is_overbook(&self) -> bool {
        self.booked > 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("location {0} is referenced but its hours and time zone were not loaded")]
    UnknownLocation(String),
    #[error("location {location_id} has an unknown time zone '{timezone}'")]
    UnknownTimeZone {
        location_id: String,
        timezone: String,
    },
}

/// All free slots of the input's appointment type, sorted by start, then
/// provider, then location.
pub fn free_slots(input: &SlotInput) -> Result<Vec<Slot>, ScheduleError> {
    let cal = Calendar::new(input, &[])?;
    generate(&cal, input.from, input.until, |_| true, |_| true)
}

/// A free slot as places in its input and in the types asked about: cheap
/// to compute, order, count and keep; [`FreeSlots::slot`] writes it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAt {
    /// Index into `SlotInput::providers`.
    pub provider: u32,
    /// Index into `SlotInput::locations`.
    pub location: u32,
    /// Index into the types asked about.
    pub kind: u32,
    /// Index into `SlotInput::resources`.
    pub resource: Option<u32>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub local_start: DateTime,
    pub local_end: DateTime,
    pub booked: u32,
    pub capacity: u32,
}

impl SlotAt {
    /// See [`Slot::is_overbook`].
    pub fn is_overbook(&self) -> bool {
        self.booked > 0
    }
}

/// Free slots of several types, kept as runs: each run is one provider's
/// slots of one type, by start (a provider offers a start once per type,
/// at the first of its locations by id). Runs are merged in order on
/// demand, so a search that wants the first few of many thousand slots
/// and their number never sorts or writes out the rest.
#[derive(Debug, Clone)]
pub struct FreeSlots {
    pub runs: Vec<Vec<SlotAt>>,
    /// Order of each provider, location and type by id (by index).
    provider_rank: Vec<u32>,
    location_rank: Vec<u32>,
    kind_rank: Vec<u32>,
}

fn ranks<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<u32> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| id(&items[a]).cmp(id(&items[b])));
    let mut rank = vec![0; items.len()];
    for (r, i) in (0..).zip(order) {
        rank[i] = r;
    }
    rank
}

impl FreeSlots {
    /// No slots yet, of `kinds` over `input`.
    fn new(input: &SlotInput, kinds: &[AppointmentType]) -> FreeSlots {
        FreeSlots {
            runs: Vec::new(),
            provider_rank: ranks(&input.providers, |p| &p.practitioner_id),
            location_rank: ranks(&input.locations, |l| &l.location_id),
            kind_rank: ranks(kinds, |k| &k.id),
        }
    }

    /// The order of slots: by start, then provider, location and type id.
    fn key(&self, s: &SlotAt) -> (Timestamp, u32, u32, u32) {
        (
            s.start,
            self.provider_rank[s.provider as usize],
            self.location_rank[s.location as usize],
            self.kind_rank[s.kind as usize],
        )
    }

    /// Every slot, by start, then provider, location and type id.
    pub fn in_order(&self) -> impl Iterator<Item = &SlotAt> {
        self.merged(vec![0; self.runs.len()])
    }

    /// The slots starting at or after their type's `earliest` (`None`:
    /// none of that type), in order, with how many there are.
    pub fn starting_from<'s>(
        &'s self,
        earliest: &[Option<Timestamp>],
    ) -> (usize, impl Iterator<Item = &'s SlotAt> + use<'s>) {
        let firsts: Vec<usize> = self
            .runs
            .iter()
            .map(
                |run| match run.first().and_then(|s| earliest[s.kind as usize]) {
                    Some(t) => run.partition_point(|s| s.start < t),
                    None => run.len(),
                },
            )
            .collect();
        let total = self
            .runs
            .iter()
            .zip(&firsts)
            .map(|(run, first)| run.len() - first)
            .sum();
        (total, self.merged(firsts))
    }

    /// The runs merged in order, each from its index in `firsts`.
    fn merged(&self, firsts: Vec<usize>) -> impl Iterator<Item = &SlotAt> {
        type Next = Reverse<((Timestamp, u32, u32, u32), usize, usize)>;
        let mut heap: BinaryHeap<Next> = self
            .runs
            .iter()
            .zip(firsts)
            .enumerate()
            .filter_map(|(r, (run, first))| {
                run.get(first).map(|s| Reverse((self.key(s), r, first)))
            })
            .collect();
        std::iter::from_fn(move || {
            let Reverse((_, r, i)) = heap.pop()?;
            let run = &self.runs[r];
            if let Some(next) = run.get(i + 1) {
                heap.push(Reverse((self.key(next), r, i + 1)));
            }
            Some(&run[i])
        })
    }

    /// Keeps the slots `keep` selects.
    pub fn retain(&mut self, keep: impl Fn(&SlotAt) -> bool) {
        for run in &mut self.runs {
            run.retain(&keep);
        }
        self.runs.retain(|run| !run.is_empty());
    }

    /// The slot written out, from the input and types it was computed from.
    pub fn slot(at: &SlotAt, input: &SlotInput, kinds: &[AppointmentType]) -> Slot {
        Slot {
            practitioner_id: input.providers[at.provider as usize]
                .practitioner_id
                .clone(),
            location_id: input.locations[at.location as usize].location_id.clone(),
            appointment_type_id: kinds[at.kind as usize].id.clone(),
            start: at.start,
            end: at.end,
            local_start: at.local_start,
            local_end: at.local_end,
            resource_id: at.resource.map(|r| input.resources[r as usize].id.clone()),
            booked: at.booked,
            capacity: at.capacity,
        }
    }
}

/// The free slots of each of `kinds` (the input's own type is not looked
/// at), indexing the input once for all of them.
pub fn free_slots_by_type<'a>(
    input: &'a SlotInput,
    kinds: &'a [AppointmentType],
) -> Result<FreeSlots, ScheduleError> {
    let cal = Calendar::new(input, &[])?;
    let mut free = FreeSlots::new(input, kinds);
    generate_runs(
        &cal,
        kinds,
        input.from,
        input.until,
        |_| true,
        |_| true,
        &mut free.runs,
    )?;
    Ok(free)
}

/// Slot generation over `[from, until)` for the providers `keep` selects and
/// the locations `keep_location` selects, written out in order.
pub(crate) fn generate(
    cal: &Calendar,
    from: Timestamp,
    until: Timestamp,
    keep: impl Fn(&Provider) -> bool,
    keep_location: impl Fn(&str) -> bool,
) -> Result<Vec<Slot>, ScheduleError> {
    let input = cal.input;
    let kinds = std::slice::from_ref(cal.kind);
    let mut free = FreeSlots::new(input, kinds);
    generate_runs(cal, kinds, from, until, keep, keep_location, &mut free.runs)?;
    Ok(free
        .in_order()
        .map(|s| FreeSlots::slot(s, input, kinds))
        .collect())
}

/// One type's part in slot generation.
struct Wanted<'a> {
    /// Its index among the types asked about.
    index: u32,
    kind: &'a AppointmentType,
    /// Minimum notice and the range's start, whichever is later.
    earliest: Timestamp,
    step: i32,
}

/// Adds to `runs` one run per provider and type of `kinds` (`SlotAt::kind`
/// indexes them). Each provider's days are walked once for every type:
/// sessions, time off, opening hours and the day's clock are worked out
/// once, and each type's grid is laid over them.
fn generate_runs(
    cal: &Calendar,
    kinds: &[AppointmentType],
    from: Timestamp,
    until: Timestamp,
    keep: impl Fn(&Provider) -> bool,
    keep_location: impl Fn(&str) -> bool,
    runs: &mut Vec<Vec<SlotAt>>,
) -> Result<(), ScheduleError> {
    let input = cal.input;
    let wanted: Vec<Wanted> = (0..)
        .zip(kinds)
        .filter_map(|(index, kind)| {
            let earliest = from.max(
                input
                    .now
                    .saturating_add(kind.min_notice())
                    .unwrap_or(Timestamp::MAX),
            );
            let step = kind.duration_minutes as i32;
            // A zero duration (invalid, but possible in unvalidated input) would never advance.
            (earliest < until && kind.active && step > 0).then_some(Wanted {
                index,
                kind,
                earliest,
                step,
            })
        })
        .collect();
    let Some(first_earliest) = wanted.iter().map(|w| w.earliest).min() else {
        return Ok(());
    };
    for (provider_index, provider) in (0..).zip(&input.providers) {
        if !keep(provider) {
            continue;
        }
        let p = provider.practitioner_id.as_str();
        let offered: Vec<&Wanted> = wanted
            .iter()
            .filter(|w| w.kind.offered_by(p, &provider.specialties))
            .collect();
        if offered.is_empty() {
            continue;
        }
        let load = cal.load(p);
        let mut mine: Vec<Vec<SlotAt>> = vec![Vec::new(); offered.len()];
        for location_id in cal.provider_locations(p) {
            if !keep_location(location_id) {
                continue;
            }
            let zone = cal.zone(location_id)?;
            let tz = &zone.tz;
            let today = local(tz, input.now).date();
            let last_bookable: Vec<Date> = offered
                .iter()
                .map(|w| {
                    today
                        .checked_add(i64::from(w.kind.max_days_ahead).days())
                        .unwrap_or(Date::MAX)
                })
                .collect();
            let first = local(tz, first_earliest).date();
            let last = local(tz, until)
                .date()
                .min(last_bookable.iter().copied().max().unwrap_or(Date::MIN));
            if first > last {
                continue;
            }
            let removals = cal.removals(p, location_id, tz, first, last);
            let mut date = first;
            while date <= last {
                let sessions = cal.sessions(p, location_id, date);
                if !sessions.is_empty() {
                    let clock = DayClock::new(tz, date);
                    let opening = cal.opening(zone, &clock);
                    for s in &sessions {
                        let (session_start, session_end) = s.instants(&clock);
                        let grid = Grid {
                            session: s,
                            clock: &clock,
                            end: session_end,
                            load: load.during(session_start, session_end),
                            capacity: 1 + u32::from(s.overbook_limit),
                            removals: &removals,
                            until,
                            place: (provider_index, zone.index),
                        };
                        // Each kind of room's busy time during the session,
                        // once for every type needing that kind.
                        let mut rooms_during: Vec<(ResourceKind, Vec<RoomDuring>)> = Vec::new();
                        for (k, w) in offered.iter().enumerate() {
                            if date > last_bookable[k] || !s.allows(&w.kind.id) {
                                continue;
                            }
                            let open = (w.kind.modality == Modality::InPerson && !s.extra)
                                .then_some(&opening);
                            let rooms = w.kind.resource_kind.map(|rk| {
                                match rooms_during.iter().position(|(kind, _)| *kind == rk) {
                                    Some(at) => at,
                                    None => {
                                        let during = cal
                                            .rooms(location_id, rk)
                                            .iter()
                                            .map(|r| {
                                                (r.index, r.busy_during(session_start, session_end))
                                            })
                                            .collect();
                                        rooms_during.push((rk, during));
                                        rooms_during.len() - 1
                                    }
                                }
                            });
                            let rooms = rooms.map(|at| rooms_during[at].1.as_slice());
                            grid.lay(w, open, rooms, &mut mine[k]);
                        }
                    }
                }
                date = match date.tomorrow() {
                    Ok(d) => d,
                    Err(_) => break,
                };
            }
        }
        for mut run in mine {
            // Overlapping sessions (an extra session over a template block)
            // must not offer the same start twice; locations come by id, and
            // the stable sort keeps the first location's.
            run.sort_by_key(|s| s.start);
            run.dedup_by_key(|s| s.start);
            if !run.is_empty() {
                runs.push(run);
            }
        }
    }
    Ok(())
}

/// A room's place in the input, with its busy time during a session.
type RoomDuring<'g> = (u32, Busy<&'g [Interval]>);

/// One session of a provider's day at one location, with what it leaves
/// for slots: its load, time off and the day's clock.
struct Grid<'g, 'a> {
    session: &'g Session<'a>,
    clock: &'g DayClock<'g>,
    end: Timestamp,
    load: Load<&'g [Segment]>,
    capacity: u32,
    removals: &'g [Removal<'a>],
    until: Timestamp,
    /// The provider's and location's places in the input.
    place: (u32, u32),
}

impl Grid<'_, '_> {
    /// The free slots of one type on the session's grid, added to `out`:
    /// within opening hours `open` (if any), each with the first free of
    /// `rooms` (when the type needs one).
    fn lay(
        &self,
        w: &Wanted,
        open: Option<&Busy>,
        rooms: Option<&[RoomDuring]>,
        out: &mut Vec<SlotAt>,
    ) {
        let s = self.session;
        let duration = w.kind.duration();
        let mut previous_end = Timestamp::MIN;
        let mut m = s.start_min;
        while m + w.step <= s.end_min {
            let local_start = at_minute(s.date, m);
            m += w.step;
            let Some(start) = self.clock.slot_start(local_start) else {
                continue;
            };
            let Ok(end) = start.checked_add(duration) else {
                continue;
            };
            if end > self.end || start < previous_end {
                continue;
            }
            previous_end = end;
            if start < w.earliest || start >= self.until || removed(self.removals, (start, end)) {
                continue;
            }
            if open.is_some_and(|open| !open.contains(start, end)) {
                continue;
            }
            let booked = self.load.max_over(start, end);
            if booked >= self.capacity {
                continue;
            }
            let resource = match rooms {
                None => None,
                Some(rooms) => match rooms.iter().find(|(_, busy)| !busy.overlaps(start, end)) {
                    Some((index, _)) => Some(*index),
                    None => continue,
                },
            };
            out.push(SlotAt {
                provider: self.place.0,
                location: self.place.1,
                kind: w.index,
                resource,
                start,
                end,
                local_start,
                local_end: self.clock.local(end),
                booked,
                capacity: self.capacity,
            });
        }
    }
}

/// A "next available" search across providers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSearch {
    /// Only providers with this specialty (NUCC code).
    pub specialty: Option<String>,
    /// Hard filters: days of week, morning/afternoon, locations, providers.
    pub preferences: Preferences,
    /// Also offer slots that would overbook a provider.
    pub include_overbook: bool,
    /// How many slots to return (0 means 10).
    pub limit: usize,
}

/// The earliest slots across every provider who offers the type (and holds
/// the specialty, if one is asked for) that meet the patient's preferences.
pub fn next_available(input: &SlotInput, search: &SlotSearch) -> Result<Vec<Slot>, ScheduleError> {
    let cal = Calendar::new(input, &[])?;
    let prefs = &search.preferences;
    let limit = if search.limit == 0 { 10 } else { search.limit };
    let slots = generate(
        &cal,
        input.from,
        input.until,
        |p| {
            search
                .specialty
                .as_ref()
                .is_none_or(|s| p.specialties.contains(s))
                && (prefs.practitioner_ids.is_empty()
                    || prefs.practitioner_ids.contains(&p.practitioner_id))
        },
        |l| prefs.location_ids.is_empty() || prefs.location_ids.iter().any(|x| x == l),
    )?;
    Ok(slots
        .into_iter()
        .filter(|s| search.include_overbook || !s.is_overbook())
        .filter(|s| prefs.accepts(&s.practitioner_id, &s.location_id, s.local_start))
        .take(limit)
        .collect())
}

/// Third-next-available for one provider and the input's type: the access
/// metric clinics report, because the first two openings are often
/// last-minute cancellations that say little about real access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThirdNextAvailable {
    pub practitioner_id: String,
    /// `None` when the provider has fewer than three openings in the range.
    pub slot: Option<Slot>,
    /// Calendar days from today (at the slot's location) to the slot's date.
    pub days_out: Option<i64>,
}

/// Third-next-available per provider offering the type, counting regular
/// openings only (overbook capacity is not access). Sorted by provider id.
pub fn third_next_available(input: &SlotInput) -> Result<Vec<ThirdNextAvailable>, ScheduleError> {
    let cal = Calendar::new(input, &[])?;
    let slots = generate(&cal, input.from, input.until, |_| true, |_| true)?;
    // One pass over the sorted slots: each provider's third regular opening.
    let mut seen: HashMap<&str, (u32, Option<&Slot>)> = HashMap::new();
    for s in slots.iter().filter(|s| !s.is_overbook()) {
        let entry = seen.entry(s.practitioner_id.as_str()).or_default();
        entry.0 += 1;
        if entry.0 == 3 {
            entry.1 = Some(s);
        }
    }
    let mut providers: Vec<&Provider> = input.providers.iter().filter(|p| cal.offers(p)).collect();
    providers.sort_by(|a, b| a.practitioner_id.cmp(&b.practitioner_id));
    providers
        .into_iter()
        .map(|p| {
            let slot = seen
                .get(p.practitioner_id.as_str())
                .and_then(|(_, s)| s.cloned());
            let days_out = match &slot {
                Some(s) => {
                    let tz = &cal.zone(&s.location_id)?.tz;
                    Some(days_between(
                        local(tz, input.now).date(),
                        s.local_start.date(),
                    ))
                }
                None => None,
            };
            Ok(ThirdNextAvailable {
                practitioner_id: p.practitioner_id.clone(),
                slot,
                days_out,
            })
        })
        .collect()
}
