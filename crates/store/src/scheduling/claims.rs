//! Claim rows: taking, moving and releasing them, race-safe on both
//! databases.
//!
//! For each (key, granule) of a booking the lowest free seat up to the
//! claim's `max_seat` is taken, per granule (a provider overbooked at 9:00
//! may have seat 0 free again at 9:10). The seats in use are read first,
//! then the chosen seat is inserted with `ON CONFLICT DO NOTHING`; a row not
//! inserted means another transaction took that seat meanwhile, and the next
//! seat is tried. On SQLite the writer is serialized (`BEGIN IMMEDIATE`), so
//! the read is exact. On PostgreSQL an insert meeting a racing uncommitted
//! insert of the same seat waits for it and then inserts (it rolled back) or
//! does nothing (it committed), so the primary key, never the read, decides,
//! and no error aborts the transaction. Claims are taken in one global order
//! (key, granule, seat), so two bookings waiting on each other cannot
//! deadlock.
//!
//! Expired hold claims stop counting: a booking that meets one deletes it
//! (in its own transaction, in claim order) before taking the seat.

use super::int;
use crate::bulk::{placeholders, shaped_chunks};
use crate::db::Shape;
use crate::records::Val;
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::scheduling::{AppointmentStatus, Claim};
use sqlx::FromRow;
use std::collections::{BTreeMap, BTreeSet};

/// A claim row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    /// `practitioner:<id>` or `resource:<id>`.
    pub claim_key: String,
    pub granule_us: i64,
    pub seat: i64,
    /// The appointment or hold holding the seat.
    pub owner_id: String,
    /// A hold's expiry; `None` for appointments.
    pub expires_at_us: Option<i64>,
}

/// The words a conflict names a claim key with.
fn holder(claim_key: &str) -> String {
    match claim_key.split_once(':') {
        Some(("practitioner", id)) => format!("provider {id}"),
        Some(("resource", id)) => format!("resource {id}"),
        _ => claim_key.to_string(),
    }
}

/// The conflict of a claim with no seat left.
fn full(key: &str, granule_us: i64, slot: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{slot} is no longer free: {} is taken at {}",
        holder(key),
        granule_text(granule_us)
    ))
}

fn granule_text(granule_us: i64) -> String {
    jiff::Timestamp::from_microsecond(granule_us)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| granule_us.to_string())
}

/// PostgreSQL's deadlock and serialization failures (and SQLite's busy
/// answer) mean another booking is in the way right now: a conflict the
/// caller may retry, not a broken database.
pub(crate) fn claim_error(err: sqlx::Error, slot: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && let Some(code) = db.code()
        && matches!(code.as_ref(), "40P01" | "40001" | "5" | "517")
    {
        return StoreError::Conflict(format!(
            "{slot} is being booked by someone else at this moment; try again"
        ));
    }
    StoreError::Database(err)
}

/// The seats in use at one key and granule, as read. An expired hold's
/// seat is free again (its row is deleted before the seat is taken).
#[derive(Debug, Default)]
struct Seats {
    held: Vec<(i64, String, Option<i64>)>,
    taken: BTreeSet<i64>,
    expired: bool,
}

impl Seats {
    fn hold(&mut self, seat: i64, owner: String, expires_at_us: Option<i64>, now_us: i64) {
        if expires_at_us.is_some_and(|e| e <= now_us) {
            self.expired = true;
        } else {
            self.taken.insert(seat);
        }
        self.held.push((seat, owner, expires_at_us));
    }

    /// The lowest seat in `0..=max_seat` nobody holds.
    fn lowest_free(&self, max_seat: i64) -> Option<i64> {
        (0..=max_seat).find(|s| !self.taken.contains(s))
    }
}

/// Each claim key's granules with the highest seat the claims may take.
fn seat_limits(claims: &[Claim]) -> BTreeMap<&str, BTreeMap<i64, i64>> {
    let mut by_key: BTreeMap<&str, BTreeMap<i64, i64>> = BTreeMap::new();
    for c in claims {
        let max = by_key
            .entry(c.key.resource.as_str())
            .or_default()
            .entry(c.key.granule_us())
            .or_insert(0);
        *max = (*max).max(i64::from(c.max_seat));
    }
    by_key
}

/// Key ranges read per statement, at most (one select each: SQLite takes
/// up to 500 in one compound select).
const RANGES_PER_READ: usize = 256;

/// One booking's claims for [`WriteTx::take_claims_together`].
pub(crate) struct ClaimRequest<'a> {
    pub owner_id: &'a str,
    pub claims: &'a [Claim],
    /// Names the slot in a conflict.
    pub slot: &'a str,
}

/// A claim row to insert: key, granule, seat, owner, hold expiry.
type NewClaim<'a> = (&'a str, i64, i64, &'a str, Option<i64>);

/// Each key's first and last granule.
fn ranges<'a>(limits: &BTreeMap<&'a str, BTreeMap<i64, i64>>) -> Vec<(&'a str, i64, i64)> {
    limits
        .iter()
        .filter_map(|(key, granules)| {
            Some((*key, *granules.keys().next()?, *granules.keys().last()?))
        })
        .collect()
}

impl WriteTx {
    /// Takes `claims` for `owner_id`. With `reuse_from`, a seat that owner
    /// (the hold being confirmed, the appointment being moved) already holds
    /// at the same key and granule is handed over instead, so an
    /// appointment never collides with the time it is moving from.
    /// `expires_at_us` marks hold claims. `slot` names the slot in a
    /// [`StoreError::Conflict`].
    pub(crate) async fn take_claims(
        &mut self,
        owner_id: &str,
        claims: &[Claim],
        expires_at_us: Option<i64>,
        reuse_from: Option<&str>,
        now_us: i64,
        slot: &str,
    ) -> Result<()> {
        self.schedule_changes.touch(owner_id);
        let limits = seat_limits(claims);
        let mut seats = self.seats_in(&ranges(&limits), now_us, slot).await?;
        // Each granule's lowest free seat, as read; inserted together.
        let mut wanted: Vec<(&str, i64, i64, i64)> = Vec::new();
        for (&key, granules) in &limits {
            for (&granule, &max_seat) in granules {
                let here = seats.entry((key.to_string(), granule)).or_default();
                if let Some(from) = reuse_from
                    && let Some((seat, _, _)) = here
                        .held
                        .iter()
                        .find(|(seat, owner, _)| owner == from && *seat <= max_seat)
                {
                    let moved = sqlx::query(
                        "UPDATE appointment_claims SET owner_id = $5, expires_at_us = $6 \
                         WHERE org_id = $1 AND claim_key = $2 AND granule_us = $3 AND seat = $4 \
                         AND owner_id = $7",
                    )
                    .bind(&self.org_id)
                    .bind(key)
                    .bind(granule)
                    .bind(*seat)
                    .bind(owner_id)
                    .bind(expires_at_us)
                    .bind(from)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| claim_error(e, slot))?;
                    if moved.rows_affected() == 1 {
                        continue;
                    }
                }
                if here.expired {
                    self.delete_expired_claims(key, granule, now_us, slot)
                        .await?;
                }
                let Some(seat) = here.lowest_free(max_seat) else {
                    return Err(full(key, granule, slot));
                };
                wanted.push((key, granule, seat, max_seat));
            }
        }
        let rows: Vec<NewClaim> = wanted
            .iter()
            .map(|&(key, granule, seat, _)| (key, granule, seat, owner_id, expires_at_us))
            .collect();
        let missed = self.insert_claims(&rows, slot).await?;
        // A seat taken meanwhile (another server's booking): the next ones.
        for (key, granule, seat, max_seat) in missed.into_iter().map(|i| wanted[i]) {
            let here = seats.entry((key.to_string(), granule)).or_default();
            here.taken.insert(seat);
            loop {
                let Some(seat) = here.lowest_free(max_seat) else {
                    return Err(full(key, granule, slot));
                };
                let row = [(key, granule, seat, owner_id, expires_at_us)];
                if self.insert_claims(&row, slot).await?.is_empty() {
                    break;
                }
                here.taken.insert(seat);
            }
        }
        Ok(())
    }

    /// Takes the claims of several bookings (appointments, not holds) in
    /// a few statements: the seats of every key and granule they need are
    /// read at once, each booking in turn gets the lowest free seats
    /// (after those of the bookings before it), and all are inserted
    /// together. Per booking: `Some(Ok)` taken, `Some(Err)` a conflict
    /// naming its slot (nothing of it written), `None` when another
    /// transaction took one of its seats meanwhile (PostgreSQL): its seats
    /// are given back for the caller to book it alone.
    pub(crate) async fn take_claims_together(
        &mut self,
        requests: &[ClaimRequest<'_>],
        now_us: i64,
    ) -> Result<Vec<Option<Result<()>>>> {
        let limits: Vec<_> = requests.iter().map(|r| seat_limits(r.claims)).collect();
        let wanted_ranges: Vec<_> = limits.iter().flat_map(ranges).collect();
        let slot = "the slots booked together";
        let mut seats = self.seats_in(&wanted_ranges, now_us, slot).await?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut rows: Vec<NewClaim> = Vec::new();
        for (request, limits) in requests.iter().zip(&limits) {
            let mut planned = Vec::new();
            let mut refused = None;
            'keys: for (&key, granules) in limits {
                for (&granule, &max_seat) in granules {
                    let here = seats.entry((key.to_string(), granule)).or_default();
                    match here.lowest_free(max_seat) {
                        Some(seat) => planned.push((key, granule, seat)),
                        None => {
                            refused = Some(full(key, granule, request.slot));
                            break 'keys;
                        }
                    }
                }
            }
            if let Some(conflict) = refused {
                outcomes.push(Some(Err(conflict)));
                continue;
            }
            for &(key, granule, seat) in &planned {
                if let Some(here) = seats.get_mut(&(key.to_string(), granule)) {
                    if here.expired {
                        self.delete_expired_claims(key, granule, now_us, slot)
                            .await?;
                        here.expired = false;
                    }
                    here.taken.insert(seat);
                }
                rows.push((key, granule, seat, request.owner_id, None));
            }
            outcomes.push(Some(Ok(())));
        }
        // One global order (key, granule, seat), as for single bookings.
        rows.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let missed: BTreeSet<&str> = self
            .insert_claims(&rows, slot)
            .await?
            .into_iter()
            .map(|i| rows[i].3)
            .collect();
        if !missed.is_empty() {
            self.release_claims_of(&missed).await?;
        }
        for (request, outcome) in requests.iter().zip(outcomes.iter_mut()) {
            if missed.contains(request.owner_id) {
                *outcome = None;
            } else if matches!(outcome, Some(Ok(()))) {
                self.schedule_changes.touch(request.owner_id);
            }
        }
        Ok(outcomes)
    }

    /// The seats in use at every granule of the `(key, first, last)`
    /// ranges, by key and granule.
    async fn seats_in(
        &mut self,
        ranges: &[(&str, i64, i64)],
        now_us: i64,
        slot: &str,
    ) -> Result<BTreeMap<(String, i64), Seats>> {
        let mut seats: BTreeMap<(String, i64), Seats> = BTreeMap::new();
        let parts = ranges.chunks(RANGES_PER_READ);
        for chunk in parts.flat_map(|part| shaped_chunks(part, self.backend, 1, 3)) {
            // One select per range, each a seek on the claims' primary key
            // (with the ranges OR-ed, SQLite scans the organization's claims).
            let selects: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "SELECT claim_key, granule_us, seat, owner_id, expires_at_us \
                         FROM appointment_claims WHERE org_id = $1 AND claim_key = ${} \
                         AND granule_us >= ${} AND granule_us <= ${}",
                        3 * i + 2,
                        3 * i + 3,
                        3 * i + 4
                    )
                })
                .collect();
            let mut values = vec![Val::from(self.org_id.as_str())];
            for (key, first, last) in chunk {
                values.extend([Val::from(*key), int(*first), int(*last)]);
            }
            let rows = Shape::new(self.backend, selects.join(" UNION ALL "))
                .bind(values)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(|e| claim_error(e, slot))?;
            for row in &rows {
                let (key, granule, seat, owner, expires) =
                    <(String, i64, i64, String, Option<i64>)>::from_row(row)?;
                seats
                    .entry((key, granule))
                    .or_default()
                    .hold(seat, owner, expires, now_us);
            }
        }
        Ok(seats)
    }

    /// Deletes the expired hold claims at one key and granule.
    async fn delete_expired_claims(
        &mut self,
        key: &str,
        granule: i64,
        now_us: i64,
        slot: &str,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM appointment_claims WHERE org_id = $1 AND claim_key = $2 \
             AND granule_us = $3 AND expires_at_us IS NOT NULL AND expires_at_us <= $4",
        )
        .bind(&self.org_id)
        .bind(key)
        .bind(granule)
        .bind(now_us)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| claim_error(e, slot))?;
        Ok(())
    }

    /// Inserts claim rows, skipping seats already taken; returns the
    /// indexes of the rows not inserted. Without a conflict (always on
    /// SQLite, whose writer read the seats itself) there are none, known
    /// from the count alone: rows handed back one by one cost more than
    /// the insert.
    async fn insert_claims(&mut self, claims: &[NewClaim<'_>], slot: &str) -> Result<Vec<usize>> {
        let mut missed = Vec::new();
        let mut first = 0;
        for chunk in shaped_chunks(claims, self.backend, 1, 5) {
            let mut next = 1;
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let mut row = String::from("($1, ");
                    placeholders(&mut next, 5, &mut row);
                    row.push(')');
                    row
                })
                .collect();
            let text = format!(
                "INSERT INTO appointment_claims \
                 (org_id, claim_key, granule_us, seat, owner_id, expires_at_us) VALUES {} \
                 ON CONFLICT DO NOTHING",
                rows.join(", ")
            );
            let mut values = vec![Val::from(self.org_id.as_str())];
            for &(key, granule, seat, owner, expires) in chunk {
                values.extend([
                    Val::from(key),
                    int(granule),
                    int(seat),
                    Val::from(owner),
                    Val::Int(expires),
                ]);
            }
            let done = Shape::new(self.backend, text)
                .bind(values)
                .execute(&mut *self.tx)
                .await
                .map_err(|e| claim_error(e, slot))?;
            if done.rows_affected() != chunk.len() as u64 {
                let owners: BTreeSet<&str> = chunk.iter().map(|c| c.3).collect();
                let held = self.claims_held_by(&owners).await?;
                missed.extend(
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| !held.contains(&(c.0.to_string(), c.1, c.2)))
                        .map(|(i, _)| first + i),
                );
            }
            first += chunk.len();
        }
        Ok(missed)
    }

    /// The `(key, granule, seat)` these owners hold, as this transaction
    /// sees them.
    async fn claims_held_by(
        &mut self,
        owners: &BTreeSet<&str>,
    ) -> Result<BTreeSet<(String, i64, i64)>> {
        let owners: Vec<&str> = owners.iter().copied().collect();
        let held: Vec<(String, i64, i64)> = self
            .fetch_for_ids(
                |list| {
                    format!(
                        "SELECT claim_key, granule_us, seat FROM appointment_claims \
                         WHERE org_id = $1 AND owner_id IN ({list})"
                    )
                },
                &owners,
            )
            .await?;
        Ok(held.into_iter().collect())
    }

    /// Gives back every seat `owner_id` holds; returns how many.
    pub(crate) async fn release_claims(&mut self, owner_id: &str) -> Result<u64> {
        self.schedule_changes.touch(owner_id);
        self.release_claims_of(&BTreeSet::from([owner_id])).await
    }

    async fn release_claims_of(&mut self, owners: &BTreeSet<&str>) -> Result<u64> {
        let owners: Vec<&str> = owners.iter().copied().collect();
        self.execute_for_ids(
            |list| {
                format!("DELETE FROM appointment_claims WHERE org_id = $1 AND owner_id IN ({list})")
            },
            &owners,
        )
        .await
    }

    /// Deletes the organization's expired holds and their claims (they
    /// already block nothing; this only tidies). Returns the holds removed.
    /// Not audited: nothing a person did.
    pub async fn purge_expired_holds(&mut self, now: jiff::Timestamp) -> Result<u64> {
        let now_us = now.as_microsecond();
        sqlx::query(
            "DELETE FROM appointment_claims WHERE org_id = $1 \
             AND expires_at_us IS NOT NULL AND expires_at_us <= $2",
        )
        .bind(&self.org_id)
        .bind(now_us)
        .execute(&mut *self.tx)
        .await?;
        let done =
            sqlx::query("DELETE FROM appointment_holds WHERE org_id = $1 AND expires_at_us <= $2")
                .bind(&self.org_id)
                .bind(now_us)
                .execute(&mut *self.tx)
                .await?;
        Ok(done.rows_affected())
    }
}

fn claim_rows(rows: Vec<(String, i64, i64, String, Option<i64>)>) -> Vec<HeldClaim> {
    rows.into_iter()
        .map(
            |(claim_key, granule_us, seat, owner_id, expires_at_us)| HeldClaim {
                claim_key,
                granule_us,
                seat,
                owner_id,
                expires_at_us,
            },
        )
        .collect()
}

impl Db {
    /// The claim rows an appointment or hold holds, in key and time order.
    pub async fn claims_of(&self, org_id: &str, owner_id: &str) -> Result<Vec<HeldClaim>> {
        let rows = sqlx::query_as(
            "SELECT claim_key, granule_us, seat, owner_id, expires_at_us FROM appointment_claims \
             WHERE org_id = $1 AND owner_id = $2 ORDER BY claim_key, granule_us, seat",
        )
        .bind(org_id)
        .bind(owner_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(claim_rows(rows))
    }

    /// Checks the organization's claims against its appointments and holds
    /// and describes every disagreement (empty when consistent): each
    /// appointment whose status keeps time holds exactly its claims within
    /// its seat limit, other appointments hold none, and no claim belongs
    /// to nobody. Reads everything: for tests and maintenance.
    pub async fn check_claims(&self, org_id: &str) -> Result<Vec<String>> {
        let claims: Vec<HeldClaim> = claim_rows(
            sqlx::query_as(
                "SELECT claim_key, granule_us, seat, owner_id, expires_at_us \
                 FROM appointment_claims WHERE org_id = $1",
            )
            .bind(org_id)
            .fetch_all(&mut *self.reader().await?)
            .await?,
        );
        let mut by_owner: BTreeMap<String, Vec<HeldClaim>> = BTreeMap::new();
        for c in claims {
            by_owner.entry(c.owner_id.clone()).or_default().push(c);
        }
        let mut problems = Vec::new();
        let rows = sqlx::query(crate::db::sql(format!(
            "SELECT {} FROM appointments WHERE org_id = $1 AND deleted = 0",
            crate::records::select_columns::<super::AppointmentRecord>()
        )))
        .bind(org_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        let all = rows
            .iter()
            .map(crate::records::versioned::<super::AppointmentRecord>)
            .collect::<Result<Vec<_>>>()?;
        for a in &all {
            let a = &a.value.appointment;
            let held = by_owner.remove(&a.id).unwrap_or_default();
            let expected: BTreeSet<(String, i64)> = a
                .claims()
                .into_iter()
                .map(|c| (c.key.resource.clone(), c.key.granule_us()))
                .collect();
            let got: BTreeSet<(String, i64)> = held
                .iter()
                .map(|c| (c.claim_key.clone(), c.granule_us))
                .collect();
            if expected != got || got.len() != held.len() {
                problems.push(format!(
                    "appointment {} ({}) holds {} claims, expected {}",
                    a.id,
                    AppointmentStatus::code(a.status),
                    held.len(),
                    expected.len()
                ));
            }
            for c in &held {
                let limit = if c.claim_key.starts_with("practitioner:") {
                    i64::from(a.max_seat)
                } else {
                    0
                };
                if c.seat > limit || c.expires_at_us.is_some() {
                    problems.push(format!(
                        "appointment {} holds seat {} of {} at {}",
                        a.id, c.seat, c.claim_key, c.granule_us
                    ));
                }
            }
        }
        let holds: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM appointment_holds WHERE org_id = $1")
                .bind(org_id)
                .fetch_all(&mut *self.reader().await?)
                .await?;
        for (id,) in holds {
            if let Some(held) = by_owner.remove(&id)
                && held.iter().any(|c| c.expires_at_us.is_none())
            {
                problems.push(format!("hold {id} holds claims without an expiry"));
            }
        }
        for (owner, held) in by_owner {
            problems.push(format!(
                "{} claims belong to {owner}, which is neither an appointment nor a hold",
                held.len()
            ));
        }
        Ok(problems)
    }
}
