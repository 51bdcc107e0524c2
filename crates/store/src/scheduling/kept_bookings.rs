//! Bookings and live holds, kept per server between slot computations.
//!
//! A slot search over one specialty for two weeks meets some 20,000
//! bookings at benchmark scale; reading and decoding them cost far more
//! than computing the slots. Bookings change one at a time, so the server
//! keeps them and reads only what changed.
//!
//! Every write that takes or gives back an appointment's or a hold's time
//! (claims: `WriteTx::take_claims`, `release_claims`) notes its id; the
//! transaction logs the ids in `schedule_changes` under the next number of
//! the organization's `schedule_changes` counter, just before it commits.
//! On PostgreSQL the counter's row stays locked until then, so numbers
//! become visible in order, as on SQLite's single writer. A use reads the
//! counter, then the ids logged after the number the kept bookings are
//! right at, then those appointments and holds as they now stand: servers
//! sharing a database see each other's bookings at once.
//!
//! A provider's bookings (and a location's bookings of rooms) are read
//! whole, from the kept floor on, the first time a computation needs them;
//! changes to others are left for that first read. Ranges reaching before
//! the floor (yesterday and earlier) are read from the database, and so
//! are a booking evaluation's ([`BookingSource::Database`]): bookings
//! arrive many at once, each needs one provider's hour, and the kept
//! bookings catch up one request at a time.

use super::load::{HOLD_COLUMNS, HOLD_FIELDS, hold_from_row, holding_statuses};
use super::{bind_vals, in_list, int, json_col, ts_col, us};
use crate::db::sql;
use crate::records::Val;
use crate::{Db, Result, WriteTx};
use carefront_domain::scheduling::{Booking, Hold, MAX_DURATION_MINUTES};
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashSet;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// A hold's fields as NULLs, for appointments' rows in a read of both
/// ([`Db::bookings_read`]); made once, not per booking's evaluation.
static HOLD_FIELDS_OF_BOOKINGS: LazyLock<String> = LazyLock::new(|| {
    HOLD_FIELDS
        .split(", ")
        .map(|field| format!(", NULL AS {field}"))
        .collect()
});

/// The `org_counters` row numbering logged changes.
const COUNTER: &str = "schedule_changes";
/// Rows per insert of logged ids (three parameters each).
const IDS_PER_INSERT: usize = 200;
/// Ids per re-read of changed appointments and holds.
const IDS_PER_READ: usize = 500;
/// Logged transactions kept for servers catching up; one further behind
/// reads its bookings again.
const LOG_KEPT: i64 = 20_000;
/// The longest an appointment lasts: bookings starting this much before a
/// range may still reach into it.
const LONGEST: SignedDuration = SignedDuration::from_mins(MAX_DURATION_MINUTES as i64);
/// How far before now the kept bookings reach (today's searches, in any
/// zone, start after it), and how old the floor may get before everything
/// is read again (so days of past bookings do not pile up).
const FLOOR_BEFORE_NOW: SignedDuration = SignedDuration::from_hours(48);
const FLOOR_RENEWED_AFTER: SignedDuration = SignedDuration::from_hours(24 * 7);

/// Ids of appointments and holds whose time one transaction took or gave
/// back.
#[derive(Debug, Default)]
pub(crate) struct ScheduleChanges {
    ids: Vec<String>,
}

impl ScheduleChanges {
    pub(crate) fn touch(&mut self, id: &str) {
        self.ids.push(id.to_string());
    }
}

impl WriteTx {
    /// Logs what this transaction changed of the schedule (called by
    /// `commit`, last, so the counter's row is held only until then).
    pub(crate) async fn log_schedule_changes(&mut self) -> Result<()> {
        let mut ids = std::mem::take(&mut self.schedule_changes.ids);
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        let seq = self.reserve_counter(COUNTER, 1).await?;
        for chunk in ids.chunks(IDS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| format!("(${}, ${}, ${})", r * 3 + 1, r * 3 + 2, r * 3 + 3))
                .collect();
            let mut q = sqlx::query(sql(format!(
                "INSERT INTO schedule_changes (org_id, seq, item_id) VALUES {}",
                rows.join(", ")
            )));
            for id in chunk {
                q = q.bind(self.org_id.clone()).bind(seq).bind(id.clone());
            }
            q.execute(&mut *self.tx).await?;
        }
        if seq % 1024 == 0 {
            sqlx::query("DELETE FROM schedule_changes WHERE org_id = $1 AND seq <= $2")
                .bind(&self.org_id)
                .bind(seq - LOG_KEPT)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}

/// The bookings a computation meets: those of `providers` (wherever they
/// are) and, with `rooms_at`, those using a room or device at one of those
/// locations; and the holds likewise (every live hold when rooms count).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BookingScope<'a> {
    pub providers: &'a [String],
    pub rooms_at: Option<&'a [String]>,
}

/// Where a computation's bookings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BookingSource {
    /// The server's kept bookings, brought up to date first.
    Kept,
    /// The database, for this range alone.
    Database,
}

/// A booking with where it is (a room booking counts only there).
#[derive(Debug, Clone)]
struct Stored {
    booking: Booking,
    location_id: String,
}

/// One organization's kept bookings.
#[derive(Debug, Default)]
struct OrgBookings {
    /// The logged change number everything kept is right at; `None` until
    /// the first use (or after the log ran past it).
    seq: Option<i64>,
    /// Bookings ending at or before this are not kept.
    floor: Timestamp,
    /// When the last catching up started: a request that waited for it
    /// needs no other.
    caught_up_at: Option<std::time::Instant>,
    /// By provider, bookings by (start, id), for every provider read whole.
    providers: HashMap<String, BTreeMap<(Timestamp, Arc<str>), Booking>>,
    /// By location, bookings using a room there, for every location read.
    rooms: HashMap<String, BTreeMap<(Timestamp, Arc<str>), Booking>>,
    /// Where each kept booking is filed.
    filed: HashMap<Arc<str>, (Arc<str>, String, Timestamp)>,
    /// Every live hold (they are few and short-lived).
    holds: HashMap<String, Hold>,
    /// One copy of each provider's id and of each set of resources, which
    /// the kept bookings share: a search copies and indexes 10,000 to 20,000
    /// bookings, and shared copies stay in cache where one per booking
    /// would each be a memory read.
    shared_ids: HashSet<Arc<str>>,
    shared_resources: HashSet<Arc<[String]>>,
}

/// `item`, or the equal one `shared` already holds (which then holds it).
fn share<T: ?Sized + Eq + std::hash::Hash>(shared: &mut HashSet<Arc<T>>, item: Arc<T>) -> Arc<T> {
    match shared.get(&item) {
        Some(kept) => kept.clone(),
        None => {
            shared.insert(item.clone());
            item
        }
    }
}

/// One server's kept bookings, one entry per organization it has served.
#[derive(Debug, Default)]
pub(crate) struct KeptBookings(Mutex<Vec<(String, Arc<tokio::sync::Mutex<OrgBookings>>)>>);

impl KeptBookings {
    fn of(&self, org_id: &str) -> Arc<tokio::sync::Mutex<OrgBookings>> {
        let mut orgs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match orgs.iter().find(|(org, _)| org == org_id) {
            Some((_, kept)) => kept.clone(),
            None => {
                let kept = Arc::new(tokio::sync::Mutex::default());
                orgs.push((org_id.to_string(), kept.clone()));
                kept
            }
        }
    }
}

impl OrgBookings {
    fn forget(&mut self, id: &str) {
        if let Some((practitioner_id, location_id, start)) = self.filed.remove(id) {
            let key = (start, Arc::from(id));
            if let Some(list) = self.providers.get_mut(&*practitioner_id) {
                list.remove(&key);
            }
            if let Some(list) = self.rooms.get_mut(&location_id) {
                list.remove(&key);
            }
        }
    }

    /// Files a booking where it is wanted (a provider or room location read
    /// whole); others wait for their first read.
    fn file(&mut self, stored: Stored) {
        let Stored {
            mut booking,
            location_id,
        } = stored;
        if booking.end <= self.floor {
            return;
        }
        booking.practitioner_id = share(&mut self.shared_ids, booking.practitioner_id);
        booking.resource_ids = share(&mut self.shared_resources, booking.resource_ids);
        let key = (booking.start, booking.id.clone());
        let mut filed = false;
        if !booking.resource_ids.is_empty()
            && let Some(list) = self.rooms.get_mut(&location_id)
        {
            list.insert(key.clone(), booking.clone());
            filed = true;
        }
        let practitioner_id = booking.practitioner_id.clone();
        if let Some(list) = self.providers.get_mut(&*practitioner_id) {
            list.insert(key, booking.clone());
            filed = true;
        }
        if filed {
            self.filed
                .insert(booking.id, (practitioner_id, location_id, booking.start));
        }
    }

    /// The kept bookings `scope` meets in `[from, until)`: each provider's
    /// by start and id, then the other providers' room bookings.
    fn bookings<'a>(
        &'a self,
        scope: BookingScope,
        from: Timestamp,
        until: Timestamp,
    ) -> Vec<Booking> {
        let earliest: (Timestamp, Arc<str>) =
            (from.saturating_sub(LONGEST).unwrap_or(from), Arc::from(""));
        let in_range = |list: &'a BTreeMap<(Timestamp, Arc<str>), Booking>| {
            list.range(earliest.clone()..)
                .map(|(_, b)| b)
                .take_while(move |b| b.start < until)
                .filter(move |b| b.end > from)
        };
        let mut found = Vec::new();
        for list in scope.providers.iter().filter_map(|p| self.providers.get(p)) {
            found.extend(in_range(list).cloned());
        }
        if let Some(locations) = scope.rooms_at {
            // A scoped provider's room bookings are among theirs already;
            // the others' are skipped before they are copied (a location's
            // room bookings are mostly other providers').
            let theirs: FxHashSet<&str> = scope.providers.iter().map(String::as_str).collect();
            for list in locations.iter().filter_map(|l| self.rooms.get(l)) {
                found.extend(
                    in_range(list)
                        .filter(|b| !theirs.contains(&*b.practitioner_id))
                        .cloned(),
                );
            }
        }
        found
    }
}

/// The holds among `holds` that `scope` meets in `[from, until)`, live at
/// `now`, by start and id.
fn holds_met<'a>(
    holds: impl Iterator<Item = &'a Hold>,
    scope: BookingScope,
    from: Timestamp,
    until: Timestamp,
    now: Timestamp,
) -> Vec<Hold> {
    let earliest = from.saturating_sub(LONGEST).unwrap_or(from);
    let mut found: Vec<Hold> = holds
        .filter(|h| {
            h.slot.start < until
                && h.slot.end > from
                && h.slot.start >= earliest
                && h.is_live(now)
                && (scope.rooms_at.is_some() || scope.providers.contains(&h.slot.practitioner_id))
        })
        .cloned()
        .collect();
    found.sort_by(|a, b| (a.slot.start, &a.id).cmp(&(b.slot.start, &b.id)));
    found
}

impl Db {
    /// The bookings and live holds `scope` meets in `[from, until)` at
    /// `now` (see [`BookingScope`]): kept (each provider's by start, then
    /// other providers' room bookings), or read from the database for
    /// ranges before the kept floor and with [`BookingSource::Database`].
    pub(crate) async fn bookings_in(
        &self,
        org_id: &str,
        scope: BookingScope<'_>,
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
        source: BookingSource,
    ) -> Result<(Vec<Booking>, Vec<Hold>)> {
        if source == BookingSource::Database {
            return self.bookings_read(org_id, scope, from, until, now).await;
        }
        let asked_at = std::time::Instant::now();
        let kept = self.kept_bookings().of(org_id);
        let mut kept = kept.lock().await;
        let renew_before = now.saturating_sub(FLOOR_RENEWED_AFTER).unwrap_or(now);
        if kept.seq.is_none() || kept.floor < renew_before {
            *kept = OrgBookings::default();
        }
        if kept.caught_up_at.is_none_or(|at| at < asked_at) {
            self.catch_up(org_id, &mut kept, now).await?;
        }
        if from.saturating_sub(LONGEST).unwrap_or(from) < kept.floor {
            drop(kept);
            return self.bookings_read(org_id, scope, from, until, now).await;
        }
        let providers: Vec<String> = scope
            .providers
            .iter()
            .filter(|p| !kept.providers.contains_key(*p))
            .cloned()
            .collect();
        let locations: Vec<String> = scope
            .rooms_at
            .into_iter()
            .flatten()
            .filter(|l| !kept.rooms.contains_key(*l))
            .cloned()
            .collect();
        if !providers.is_empty() || !locations.is_empty() {
            let missing = BookingScope {
                providers: &providers,
                rooms_at: (!locations.is_empty()).then_some(&locations),
            };
            let read = self
                .read_bookings(org_id, missing, kept.floor, Timestamp::MAX)
                .await?;
            for p in providers {
                kept.providers.insert(p, BTreeMap::new());
            }
            for l in locations {
                kept.rooms.insert(l, BTreeMap::new());
            }
            for stored in read {
                let id = stored.booking.id.clone();
                kept.forget(&id);
                kept.file(stored);
            }
        }
        Ok((
            kept.bookings(scope, from, until),
            holds_met(kept.holds.values(), scope, from, until, now),
        ))
    }

    /// The bookings and live holds `scope` meets, from the database, in one
    /// read: a booking's evaluation is one round trip to a reader, not two.
    async fn bookings_read(
        &self,
        org_id: &str,
        scope: BookingScope<'_>,
        from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(Vec<Booking>, Vec<Hold>)> {
        let Some((condition, mut binds)) = booking_condition(org_id, scope, from, until) else {
            let starting_from = from.saturating_sub(LONGEST).unwrap_or(from);
            let holds = self.live_holds(org_id, starting_from, until, now).await?;
            return Ok((Vec::new(), holds_met(holds.iter(), scope, from, until, now)));
        };
        binds.push(int(us(now)));
        // Holds starting from `$4` (the longest appointment before `from`)
        // until `$2`, live after now; their rows carry a `slot_json`.
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "{} UNION ALL SELECT id, NULL, NULL, NULL, start_us, NULL, {HOLD_FIELDS} \
                 FROM appointment_holds \
                 WHERE org_id = $1 AND start_us >= $4 AND start_us < $2 AND expires_at_us > ${}",
                bookings_select(&condition, &HOLD_FIELDS_OF_BOOKINGS),
                binds.len()
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let (mut bookings, mut holds) = (Vec::new(), Vec::new());
        for row in &rows {
            if row.try_get::<Option<String>, _>("slot_json")?.is_some() {
                holds.push(hold_from_row(row)?);
            } else {
                bookings.push(stored_from_row(row)?.booking);
            }
        }
        bookings.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        Ok((bookings, holds_met(holds.iter(), scope, from, until, now)))
    }

    /// Brings `kept` up to the newest logged change (or starts it).
    async fn catch_up(&self, org_id: &str, kept: &mut OrgBookings, now: Timestamp) -> Result<()> {
        let started = std::time::Instant::now();
        let head = self.counter_value(org_id, COUNTER).await?;
        let Some(seq) = kept.seq.filter(|s| *s <= head) else {
            // Start (or start over): what is read from here on is at least
            // as new as `head`.
            *kept = OrgBookings {
                seq: Some(head),
                floor: now.saturating_sub(FLOOR_BEFORE_NOW).unwrap_or(now),
                caught_up_at: Some(started),
                ..OrgBookings::default()
            };
            let holds = self.read_items(org_id, None, kept.floor).await?.1;
            kept.holds = holds.into_iter().map(|h| (h.id.clone(), h)).collect();
            return Ok(());
        };
        if seq < head {
            let logged: Vec<(i64, String)> = sqlx::query_as(
                "SELECT seq, item_id FROM schedule_changes \
                 WHERE org_id = $1 AND seq > $2 AND seq <= $3",
            )
            .bind(org_id)
            .bind(seq)
            .bind(head)
            .fetch_all(&mut *self.reader().await?)
            .await?;
            let numbers: HashSet<i64> = logged.iter().map(|(s, _)| *s).collect();
            if i64::try_from(numbers.len()).unwrap_or(i64::MAX) != head - seq {
                // The log no longer reaches back to `seq`: read again.
                kept.seq = None;
                return Box::pin(self.catch_up(org_id, kept, now)).await;
            }
            let mut ids: Vec<String> = logged.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(IDS_PER_READ) {
                let (appointments, holds) =
                    self.read_items(org_id, Some(chunk), kept.floor).await?;
                for id in chunk {
                    kept.forget(id);
                    kept.holds.remove(id);
                }
                for stored in appointments {
                    kept.file(stored);
                }
                kept.holds
                    .extend(holds.into_iter().map(|h| (h.id.clone(), h)));
            }
        }
        let floor = kept.floor;
        kept.holds.retain(|_, h| h.expires_at > floor);
        kept.seq = Some(head);
        kept.caught_up_at = Some(started);
        Ok(())
    }

    /// The appointments keeping time among `ids` and the holds among them
    /// live after `lapsed` (every such hold without `ids`).
    async fn read_items(
        &self,
        org_id: &str,
        ids: Option<&[String]>,
        lapsed: Timestamp,
    ) -> Result<(Vec<Stored>, Vec<Hold>)> {
        let mut binds = vec![Val::from(org_id), int(us(lapsed))];
        let among = match ids {
            Some(ids) => format!(" AND id IN ({})", in_list(&mut binds, ids)),
            None => String::new(),
        };
        let rows = bind_vals(
            sqlx::query(sql(format!(
                "SELECT {HOLD_COLUMNS} FROM appointment_holds \
                 WHERE org_id = $1 AND expires_at_us > $2{among}"
            ))),
            &binds,
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let holds = rows.iter().map(hold_from_row).collect::<Result<_>>()?;
        let Some(ids) = ids else {
            return Ok((Vec::new(), holds));
        };
        let mut binds = vec![Val::from(org_id)];
        let list = in_list(&mut binds, ids);
        let appointments = self
            .stored_bookings(&format!("id IN ({list})"), &binds)
            .await?;
        Ok((appointments, holds))
    }

    /// The bookings `scope` meets in `[from, until)`, from the database.
    async fn read_bookings(
        &self,
        org_id: &str,
        scope: BookingScope<'_>,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Stored>> {
        match booking_condition(org_id, scope, from, until) {
            Some((condition, binds)) => self.stored_bookings(&condition, &binds).await,
            None => Ok(Vec::new()),
        }
    }

    /// Appointments keeping time that also meet `condition`
    /// ([`bookings_select`]), by start and id.
    async fn stored_bookings(&self, condition: &str, binds: &[Val]) -> Result<Vec<Stored>> {
        let select = format!("{} ORDER BY start_us, id", bookings_select(condition, ""));
        let rows = bind_vals(sqlx::query(sql(select)), binds)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(stored_from_row).collect()
    }
}

/// The condition on appointments that `scope` meets in `[from, until)`
/// (see [`bookings_select`]) and its parameters: `$2` the end of the
/// range, `$3` its start, `$4` the longest appointment before it; `None`
/// when the scope names no provider and no room.
fn booking_condition(
    org_id: &str,
    scope: BookingScope<'_>,
    from: Timestamp,
    until: Timestamp,
) -> Option<(String, Vec<Val>)> {
    let mut binds = vec![
        Val::from(org_id),
        int(us(until)),
        int(us(from)),
        int(us(from.saturating_sub(LONGEST).unwrap_or(from))),
    ];
    let mut whose = Vec::new();
    if !scope.providers.is_empty() {
        whose.push(format!(
            "practitioner_id IN ({})",
            in_list(&mut binds, scope.providers)
        ));
    }
    if let Some(locations) = scope.rooms_at.filter(|l| !l.is_empty()) {
        whose.push(format!(
            "(resource_ids_json <> '[]' AND location_id IN ({}))",
            in_list(&mut binds, locations)
        ));
    }
    if whose.is_empty() {
        return None;
    }
    let condition = format!(
        "start_us < $2 AND end_us > $3 AND start_us >= $4 AND ({})",
        whose.join(" OR ")
    );
    Some((condition, binds))
}

/// Appointments keeping time that also meet `condition` (its parameters
/// from `$2`; `$1` is the organization), with `more` columns. Only what a
/// `Booking` holds: decoding whole appointments cost more than the rest of
/// a slot search. SQLite tests the conditions in the order written: the
/// range first drops most rows of an index range at an integer compare
/// each.
fn bookings_select(condition: &str, more: &str) -> String {
    format!(
        "SELECT id, practitioner_id, location_id, resource_ids_json, start_us, end_us{more} \
         FROM appointments WHERE org_id = $1 AND {condition} AND deleted = 0 \
         AND status IN ({})",
        holding_statuses()
    )
}

fn stored_from_row(row: &sqlx::any::AnyRow) -> Result<Stored> {
    Ok(Stored {
        booking: Booking {
            id: row.try_get::<String, _>("id")?.into(),
            practitioner_id: row.try_get::<String, _>("practitioner_id")?.into(),
            resource_ids: json_col(row, "resource_ids_json")?,
            start: ts_col(row, "start_us")?,
            end: ts_col(row, "end_us")?,
        },
        location_id: row.try_get("location_id")?,
    })
}
