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

use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::scheduling::{AppointmentStatus, Claim};
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
        let mut by_key: BTreeMap<&str, BTreeMap<i64, i64>> = BTreeMap::new();
        for c in claims {
            let max = by_key
                .entry(c.key.resource.as_str())
                .or_default()
                .entry(c.key.granule_us())
                .or_insert(0);
            *max = (*max).max(i64::from(c.max_seat));
        }
        for (key, granules) in by_key {
            let (Some(first), Some(last)) = (granules.keys().next(), granules.keys().last()) else {
                continue;
            };
            let rows: Vec<(i64, i64, String, Option<i64>)> = sqlx::query_as(
                "SELECT granule_us, seat, owner_id, expires_at_us FROM appointment_claims \
                 WHERE org_id = $1 AND claim_key = $2 AND granule_us >= $3 AND granule_us <= $4",
            )
            .bind(&self.org_id)
            .bind(key)
            .bind(*first)
            .bind(*last)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(|e| claim_error(e, slot))?;
            let mut held: BTreeMap<i64, Vec<(i64, String, Option<i64>)>> = BTreeMap::new();
            for (g, seat, owner, expires) in rows {
                held.entry(g).or_default().push((seat, owner, expires));
            }
            // Each granule's lowest free seat, as read; inserted together.
            let mut wanted: Vec<(i64, i64, i64, BTreeSet<i64>)> = Vec::new();
            for (&granule, &max_seat) in &granules {
                let here = held.remove(&granule).unwrap_or_default();
                if let Some(from) = reuse_from
                    && let Some((seat, _, _)) = here
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
                let expired = here.iter().any(|(_, _, e)| e.is_some_and(|e| e <= now_us));
                if expired {
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
                }
                let taken: BTreeSet<i64> = here
                    .iter()
                    .filter(|(_, _, e)| e.is_none_or(|e| e > now_us))
                    .map(|(seat, _, _)| *seat)
                    .collect();
                let Some(seat) = (0..=max_seat).find(|s| !taken.contains(s)) else {
                    return Err(full(key, granule, slot));
                };
                wanted.push((granule, seat, max_seat, taken));
            }
            let seats: Vec<(i64, i64)> = wanted.iter().map(|(g, seat, _, _)| (*g, *seat)).collect();
            let inserted = self
                .insert_claims(key, &seats, owner_id, expires_at_us, slot)
                .await?;
            // A seat taken meanwhile (another server's booking): the next ones.
            for (granule, seat, max_seat, mut taken) in wanted {
                if inserted.contains(&granule) {
                    continue;
                }
                taken.insert(seat);
                loop {
                    let Some(seat) = (0..=max_seat).find(|s| !taken.contains(s)) else {
                        return Err(full(key, granule, slot));
                    };
                    if !self
                        .insert_claims(key, &[(granule, seat)], owner_id, expires_at_us, slot)
                        .await?
                        .is_empty()
                    {
                        break;
                    }
                    taken.insert(seat);
                }
            }
        }
        Ok(())
    }

    /// Inserts the `(granule, seat)` claims of one key in one statement,
    /// skipping seats already taken; returns the granules inserted.
    async fn insert_claims(
        &mut self,
        key: &str,
        claims: &[(i64, i64)],
        owner_id: &str,
        expires_at_us: Option<i64>,
        slot: &str,
    ) -> Result<BTreeSet<i64>> {
        if claims.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<String> = (0..claims.len())
            .map(|i| format!("($1, $2, ${}, ${}, $3, $4)", 5 + 2 * i, 6 + 2 * i))
            .collect();
        let text = format!(
            "INSERT INTO appointment_claims \
             (org_id, claim_key, granule_us, seat, owner_id, expires_at_us) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING granule_us",
            rows.join(", ")
        );
        let mut q = sqlx::query_as::<_, (i64,)>(crate::db::sql(text))
            .bind(&self.org_id)
            .bind(key)
            .bind(owner_id)
            .bind(expires_at_us);
        for (granule, seat) in claims {
            q = q.bind(*granule).bind(*seat);
        }
        let inserted = q
            .fetch_all(&mut *self.tx)
            .await
            .map_err(|e| claim_error(e, slot))?;
        Ok(inserted.into_iter().map(|(g,)| g).collect())
    }

    /// Gives back every seat `owner_id` holds; returns how many.
    pub(crate) async fn release_claims(&mut self, owner_id: &str) -> Result<u64> {
        self.schedule_changes.touch(owner_id);
        let done =
            sqlx::query("DELETE FROM appointment_claims WHERE org_id = $1 AND owner_id = $2")
                .bind(&self.org_id)
                .bind(owner_id)
                .execute(&mut *self.tx)
                .await?;
        Ok(done.rows_affected())
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
        .fetch_all(self.reader())
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
            .fetch_all(self.reader())
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
        .fetch_all(self.reader())
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
                .fetch_all(self.reader())
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
