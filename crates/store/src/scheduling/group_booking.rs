//! Group commit of bookings. A booking's checks (the idempotency key, the
//! schedule's evaluation) run on the request's own task against a reader;
//! its writes are a dozen short statements and a durable commit. Committed
//! one transaction each, concurrent bookings queue on the single writer
//! (on SQLite) and each pays BEGIN, COMMIT and an fsync in turn. Here a
//! task (on PostgreSQL, a few side by side) writes whatever bookings
//! queued while its previous group committed in one transaction: each booking inside its own savepoint, so
//! a conflict undoes that booking alone and the others still commit, and
//! their audit events appended together at the end. Every caller still
//! gets its own answer only once its booking is durable.
//!
//! The database still decides every race: claims are rows under a primary
//! key, so bookings in the same group, in other groups or on other servers
//! cannot take the same seat.

use super::Actor;
use super::booking::{BookAppointment, BookError, Booked, IdempotencyKey, NewAppointment};
use crate::{Backend, Db, Result, StoreError, WriteTx};
use carefront_domain::audit::AuditEntry;
use jiff::Timestamp;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Bookings per group transaction; a longer queue waits for the next one.
const MAX_GROUP: usize = 128;

/// Groups written at once. SQLite has one writer, so one task. On
/// PostgreSQL each of a booking's dozen statements is a round trip, so one
/// task holding one connection caps a server's bookings whatever the
/// database could take; several tasks write groups side by side, as
/// several servers on one database do (the same order, the same claims).
fn writing_tasks(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }
}

struct Pending {
    org_id: String,
    new: NewAppointment,
    idempotency: Option<IdempotencyKey>,
    actor: Actor,
    now: Timestamp,
    done: oneshot::Sender<Result<Booked>>,
}

/// A handle on the booking tasks; cheap to clone. The tasks end when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct BookingWriter {
    db: Db,
    queue: mpsc::UnboundedSender<Pending>,
}

impl BookingWriter {
    /// Starts the writing tasks on the current Tokio runtime.
    pub fn start(db: Db) -> BookingWriter {
        let (queue, incoming) = mpsc::unbounded_channel::<Pending>();
        let incoming = Arc::new(Mutex::new(incoming));
        for _ in 0..writing_tasks(db.backend()) {
            let writer_db = db.clone();
            let incoming = incoming.clone();
            tokio::spawn(async move {
                while let Some(group) = next_group(&incoming).await {
                    write_group(&writer_db, group).await;
                }
            });
        }
        BookingWriter { db, queue }
    }

    /// [`Db::book`], with the writes shared with concurrent bookings' in
    /// one transaction: the same checks, the same answers.
    pub async fn book(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<Booked, BookError> {
        let (new, idempotency) = match self.db.accept_booking(org_id, booking, now).await? {
            Ok(replayed) => return Ok(replayed),
            Err(accepted) => accepted,
        };
        let (done, written) = oneshot::channel();
        self.queue
            .send(Pending {
                org_id: org_id.to_string(),
                new,
                idempotency,
                actor: actor.clone(),
                now,
                done,
            })
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?;
        Ok(written
            .await
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))??)
    }
}

/// What queued while the previous group was written (at least one
/// booking; `None` once every handle is dropped). The queue is held only
/// while taking, so another task takes the next group meanwhile.
async fn next_group(incoming: &Mutex<mpsc::UnboundedReceiver<Pending>>) -> Option<Vec<Pending>> {
    let mut incoming = incoming.lock().await;
    let mut group = vec![incoming.recv().await?];
    while group.len() < MAX_GROUP {
        let Ok(next) = incoming.try_recv() else { break };
        group.push(next);
    }
    Some(group)
}

/// One transaction per organization in the group. Should the transaction
/// itself fail (not a booking in it), each booking is written alone, so one
/// caller's problem is not another's.
async fn write_group(db: &Db, group: Vec<Pending>) {
    let mut by_org: Vec<(String, Vec<Pending>)> = Vec::new();
    for pending in group {
        match by_org.iter_mut().find(|(org, _)| *org == pending.org_id) {
            Some((_, same)) => same.push(pending),
            None => by_org.push((pending.org_id.clone(), vec![pending])),
        }
    }
    for (org_id, mut pendings) in by_org {
        // The same order on every server makes groups that meet on
        // PostgreSQL wait for each other rather than deadlock.
        pendings.sort_by(|a, b| {
            let (a, b) = (&a.new.accepted.placement, &b.new.accepted.placement);
            (&a.practitioner_id, a.start).cmp(&(&b.practitioner_id, b.start))
        });
        if pendings.len() > 1
            && let Ok(results) = book_together(db, &org_id, &pendings).await
        {
            for (p, result) in pendings.into_iter().zip(results) {
                let _ = p.done.send(result);
            }
            continue;
        }
        for p in pendings {
            let result = book_alone(db, &org_id, &p).await;
            let _ = p.done.send(result);
        }
    }
}

/// Every pending booking in its own savepoint of one transaction; their
/// audit events last. The outer error is the transaction's own.
async fn book_together(db: &Db, org_id: &str, pendings: &[Pending]) -> Result<Vec<Result<Booked>>> {
    let mut tx = db.begin(org_id).await?;
    let mut results = Vec::with_capacity(pendings.len());
    let mut entries = Vec::new();
    for p in pendings {
        tx.savepoint().await?;
        match book_one(&mut tx, p).await {
            Ok((booked, entry)) => {
                tx.release_savepoint().await?;
                entries.extend(entry);
                results.push(Ok(booked));
            }
            Err(e) => {
                tx.rollback_to_savepoint().await?;
                results.push(Err(e));
            }
        }
    }
    tx.audit_many(entries).await?;
    tx.commit().await?;
    Ok(results)
}

async fn book_alone(db: &Db, org_id: &str, p: &Pending) -> Result<Booked> {
    let mut tx = db.begin(org_id).await?;
    let (booked, entry) = book_one(&mut tx, p).await?;
    tx.audit_many(entry.into_iter().collect()).await?;
    tx.commit().await?;
    Ok(booked)
}

async fn book_one(tx: &mut WriteTx, p: &Pending) -> Result<(Booked, Option<AuditEntry>)> {
    tx.book_unaudited(p.new.clone(), p.idempotency.as_ref(), &p.actor, p.now)
        .await
}
