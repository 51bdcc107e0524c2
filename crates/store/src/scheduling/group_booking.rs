//! Group commit of bookings. A booking's checks (the idempotency key, the
//! schedule's evaluation) run on the request's own task against a reader;
//! its writes are a dozen short statements and a durable commit. Committed
//! one transaction each, concurrent bookings queue on the single writer
//! (on SQLite) and each pays its statements, BEGIN, COMMIT and an fsync in
//! turn. Here a task (on PostgreSQL, a few side by side) writes whatever
//! bookings queued while its previous group committed in one transaction
//! of a handful of statements whatever their number: all keys in one
//! insert, all patients in one read, all claims read and inserted at once
//! (seats chosen in order, so a conflict refuses that booking alone and
//! the others still commit), all appointments, history rows and audit
//! events in one insert each. Every caller still gets its own answer only
//! once its booking is durable.
//!
//! The database still decides every race: claims are rows under a primary
//! key, so bookings in the same group, in other groups or on other servers
//! cannot take the same seat.

use super::booking::{
    BookAppointment, BookError, Booked, IdempotencyKey, NewAppointment, appointment_label,
    booked_record,
};
use super::claims::ClaimRequest;
use super::load::BookingParties;
use super::records::AppointmentRecord;
use super::{Actor, us};
use crate::{Backend, Db, Result, StoreError, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::directory::Versioned;
use carefront_domain::scheduling::Claim;
use jiff::Timestamp;
use std::collections::BTreeMap;
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
    /// Starts the writing tasks ([`Db::spawn_writing`]); call inside a
    /// Tokio runtime.
    pub fn start(db: Db) -> BookingWriter {
        let (queue, incoming) = mpsc::unbounded_channel::<Pending>();
        let incoming = Arc::new(Mutex::new(incoming));
        for _ in 0..writing_tasks(db.backend()) {
            let writer_db = db.clone();
            let incoming = incoming.clone();
            db.spawn_writing("carefront-bookings", async move {
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
        self.book_as_read(org_id, booking, None, actor, now).await
    }

    /// [`BookingWriter::book`] evaluated against the booking parties the
    /// caller read for this request (`Db::booking_parties`), so the
    /// request is checked against one set-up and reads it once.
    pub async fn book_as_read(
        &self,
        org_id: &str,
        booking: &BookAppointment,
        parties: Option<&BookingParties>,
        actor: &Actor,
        now: Timestamp,
    ) -> std::result::Result<Booked, BookError> {
        let accepted = self
            .db
            .accept_booking(org_id, booking, parties, now)
            .await?;
        let (new, idempotency) = match accepted {
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
/// caller's problem is not another's; so is each booking the group left
/// for a transaction of its own.
async fn write_group(db: &Db, group: Vec<Pending>) {
    let mut by_org: Vec<(String, Vec<Pending>)> = Vec::new();
    for pending in group {
        match by_org.iter_mut().find(|(org, _)| *org == pending.org_id) {
            Some((_, same)) => same.push(pending),
            None => by_org.push((pending.org_id.clone(), vec![pending])),
        }
    }
    for (org_id, pendings) in by_org {
        let answers = match book_together(db, &org_id, &pendings).await {
            Ok(answers) => answers,
            Err(_) => pendings.iter().map(|_| None).collect(),
        };
        for (p, answer) in pendings.into_iter().zip(answers) {
            let result = match answer {
                Some(result) => result,
                None => book_alone(db, &org_id, &p).await,
            };
            let _ = p.done.send(result);
        }
    }
}

/// Where one pending booking stands in its group's transaction.
enum Fate {
    /// Written with the group.
    Going,
    /// Refused: its answer, nothing of it written.
    Refused(StoreError),
    /// Left for a transaction of its own: its idempotency key is already
    /// in use (a retry: answered from the key), or another transaction took
    /// one of its seats meanwhile.
    Alone,
}

/// The group's bookings in one transaction and a handful of statements
/// whatever their number: their idempotency keys, their patients' checks,
/// their claims (seats chosen in order, [`WriteTx::take_claims_together`]),
/// their appointments and history, their audit events. Per booking, its
/// answer, or `None` to book it alone. The outer error is the
/// transaction's own.
async fn book_together(
    db: &Db,
    org_id: &str,
    pendings: &[Pending],
) -> Result<Vec<Option<Result<Booked>>>> {
    let mut tx = db.begin(org_id).await?;
    let mut fates = Vec::with_capacity(pendings.len());
    let mut drafts = Vec::with_capacity(pendings.len());
    for p in pendings {
        match p.new.details.clone().validate() {
            Ok(details) => {
                let new = NewAppointment {
                    details,
                    ..p.new.clone()
                };
                drafts.push(Some(booked_record(new_id(), new, &p.actor, p.now)));
                fates.push(Fate::Going);
            }
            Err(e) => {
                drafts.push(None);
                fates.push(Fate::Refused(e.into()));
            }
        }
    }
    let ids: Vec<String> = drafts
        .iter()
        .map(|d| {
            d.as_ref()
                .map(|(r, _)| r.appointment.id.clone())
                .unwrap_or_default()
        })
        .collect();
    let going = |fates: &[Fate]| -> Vec<usize> {
        (0..fates.len())
            .filter(|&i| matches!(fates[i], Fate::Going))
            .collect()
    };
    let record = |i: usize| drafts[i].as_ref().map(|(r, _)| r);

    // Keys first: a key used twice in the group books once, then answers
    // its retry alone.
    let mut keyed: Vec<(usize, &IdempotencyKey)> = Vec::new();
    for i in going(&fates) {
        if let Some(idem) = &pendings[i].idempotency {
            if keyed.iter().any(|(_, k)| k.key == idem.key) {
                fates[i] = Fate::Alone;
            } else {
                keyed.push((i, idem));
            }
        }
    }
    let rows: Vec<(&IdempotencyKey, Option<&str>)> = keyed
        .iter()
        .map(|&(i, idem)| (idem, record(i).map(|r| r.appointment.id.as_str())))
        .collect();
    let inserted = tx.insert_idempotency_keys(&rows).await?;
    keyed.retain(|(i, idem)| {
        let ours = inserted.contains(&idem.key);
        if !ours {
            fates[*i] = Fate::Alone;
        }
        ours
    });

    let mut patients: Vec<&str> = going(&fates)
        .into_iter()
        .map(|i| pendings[i].new.patient_id.as_str())
        .collect();
    patients.sort_unstable();
    patients.dedup();
    let unbookable = tx.unbookable_patients(&patients).await?;
    for i in going(&fates) {
        if let Some(problem) = unbookable.get(&pendings[i].new.patient_id) {
            fates[i] =
                Fate::Refused(ValidationErrors::single("patient_id", problem.clone()).into());
        }
    }

    let claiming = going(&fates);
    let claims: Vec<(Vec<Claim>, String)> = claiming
        .iter()
        .filter_map(|&i| record(i))
        .map(|r| (r.appointment.claims(), appointment_label(&r.appointment)))
        .collect();
    let requests: Vec<ClaimRequest> = claiming
        .iter()
        .zip(&claims)
        .filter_map(|(&i, (claims, slot))| {
            Some(ClaimRequest {
                owner_id: record(i)?.appointment.id.as_str(),
                claims,
                slot,
            })
        })
        .collect();
    let earliest_now = pendings.iter().map(|p| p.now).min().unwrap_or_default();
    let taken = tx.take_claims_together(&requests, us(earliest_now)).await?;
    for (&i, outcome) in claiming.iter().zip(taken) {
        match outcome {
            Some(Ok(())) => {}
            Some(Err(conflict)) => fates[i] = Fate::Refused(conflict),
            None => fates[i] = Fate::Alone,
        }
    }
    let unused: Vec<&str> = keyed
        .iter()
        .filter(|(i, _)| !matches!(fates[*i], Fate::Going))
        .map(|(_, idem)| idem.key.as_str())
        .collect();
    tx.delete_idempotency_keys(&unused).await?;

    // Appointments by who booked them (one actor, as a rule).
    let mut stored: BTreeMap<String, Versioned<AppointmentRecord>> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut by_actor: BTreeMap<&str, Vec<(String, AppointmentRecord)>> = BTreeMap::new();
    for i in going(&fates) {
        if let Some((record, entry)) = drafts[i].take() {
            entries.push(entry);
            by_actor
                .entry(pendings[i].actor.actor_name.as_str())
                .or_default()
                .push((record.appointment.id.clone(), record));
        }
    }
    for (actor, rows) in by_actor {
        for created in tx.create_versioned(rows, actor).await? {
            stored.insert(created.id.clone(), created);
        }
    }
    tx.audit_many(entries).await?;
    tx.commit().await?;

    let mut answers = Vec::with_capacity(pendings.len());
    for (i, fate) in fates.into_iter().enumerate() {
        answers.push(match fate {
            Fate::Going => Some(
                stored
                    .remove(&ids[i])
                    .map(|appointment| Booked {
                        appointment,
                        replayed: false,
                    })
                    .ok_or(StoreError::NotFound),
            ),
            Fate::Refused(e) => Some(Err(e)),
            Fate::Alone => None,
        });
    }
    Ok(answers)
}

async fn book_alone(db: &Db, org_id: &str, p: &Pending) -> Result<Booked> {
    let mut tx = db.begin(org_id).await?;
    let (booked, entry) = tx
        .book_unaudited(p.new.clone(), p.idempotency.as_ref(), &p.actor, p.now)
        .await?;
    tx.audit_many(entry.into_iter().collect()).await?;
    tx.commit().await?;
    Ok(booked)
}
