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
use crate::audit_writer::{self, AuditQueue};
use crate::db::by_org;
use crate::wal_sync::Durable;
use crate::{AuditWriter, Backend, Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::AuditEntry;
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
                    write_round(&writer_db, group, Vec::new()).await;
                }
            });
        }
        BookingWriter { db, queue }
    }

    /// The booking writer and the read-audit writer a server runs. On
    /// SQLite one task writes both: each round's read audits (a refused
    /// booking's among them) go in its bookings' transaction, one commit
    /// where there were two on the one writer, and one writing thread. On
    /// PostgreSQL they write side by side, as [`BookingWriter::start`] and
    /// [`AuditWriter::start`] do.
    pub fn start_with_audit(db: Db) -> (BookingWriter, AuditWriter) {
        if db.backend() == Backend::Postgres {
            return (BookingWriter::start(db.clone()), AuditWriter::start(db));
        }
        let (audit, audits) = AuditWriter::queued();
        let (queue, bookings) = mpsc::unbounded_channel::<Pending>();
        let writer_db = db.clone();
        db.spawn_writing(
            "carefront-writer",
            write_rounds(writer_db, bookings, audits),
        );
        (BookingWriter { db, queue }, audit)
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
    let first = incoming.recv().await?;
    Some(take_group(first, &mut incoming))
}

/// `first` and what queued behind it, up to [`MAX_GROUP`].
fn take_group(first: Pending, incoming: &mut mpsc::UnboundedReceiver<Pending>) -> Vec<Pending> {
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        let Ok(next) = incoming.try_recv() else { break };
        group.push(next);
    }
    group
}

/// The one writing task of [`BookingWriter::start_with_audit`]: whichever
/// queue wakes it, a round takes what both hold. It ends once every handle
/// of both is dropped.
async fn write_rounds(
    db: Db,
    mut bookings: mpsc::UnboundedReceiver<Pending>,
    mut audits: AuditQueue,
) {
    let (mut bookings_open, mut audits_open) = (true, true);
    while bookings_open || audits_open {
        let (mut group, mut reads) = (Vec::new(), Vec::new());
        tokio::select! {
            next = bookings.recv(), if bookings_open => match next {
                Some(first) => group = take_group(first, &mut bookings),
                None => bookings_open = false,
            },
            next = audits.recv(), if audits_open => match next {
                Some(first) => reads = audit_writer::take_group(first, &mut audits),
                None => audits_open = false,
            },
        }
        if group.is_empty()
            && let Ok(first) = bookings.try_recv()
        {
            group = take_group(first, &mut bookings);
        }
        if reads.is_empty()
            && let Ok(first) = audits.try_recv()
        {
            reads = audit_writer::take_group(first, &mut audits);
        }
        write_round(&db, group, reads).await;
    }
}

/// One transaction per organization in the round, its bookings and its
/// read audits together.
async fn write_round(db: &Db, group: Vec<Pending>, reads: Vec<audit_writer::Pending>) {
    let mut bookings = by_org(group, |p| &p.org_id);
    for (org_id, reads) in by_org(reads, audit_writer::Pending::org_id) {
        let pendings = match bookings.iter().position(|(org, _)| *org == org_id) {
            Some(at) => bookings.remove(at).1,
            None => Vec::new(),
        };
        write_org(db, &org_id, pendings, reads).await;
    }
    for (org_id, pendings) in bookings {
        write_org(db, &org_id, pendings, Vec::new()).await;
    }
}

/// Should the transaction itself fail (not a booking in it), each booking
/// is written alone, and so are the read audits, so one caller's problem is
/// not another's; so is each booking the group left for a transaction of
/// its own. The group's callers are answered once its commit is durable,
/// while the writer goes on to the next round.
async fn write_org(
    db: &Db,
    org_id: &str,
    pendings: Vec<Pending>,
    reads: Vec<audit_writer::Pending>,
) {
    let mut alone = Vec::new();
    match write_together(db, org_id, &pendings, audit_writer::entries_of(&reads)).await {
        Ok((answers, durable)) => {
            let mut answered = Vec::with_capacity(pendings.len());
            for (p, answer) in pendings.into_iter().zip(answers) {
                match answer {
                    Some(result) => answered.push((p.done, result)),
                    None => alone.push(p),
                }
            }
            durable.then(move |made| match made {
                Ok(()) => {
                    audit_writer::committed(reads);
                    for (done, result) in answered {
                        let _ = done.send(result);
                    }
                }
                Err(lost) => {
                    audit_writer::lost(reads, &lost);
                    for (done, _) in answered {
                        let _ = done.send(Err(lost.clone().into()));
                    }
                }
            });
        }
        Err(_) => {
            audit_writer::append_each(db, reads).await;
            alone = pendings;
        }
    }
    for p in alone {
        let result = book_alone(db, org_id, &p).await;
        let _ = p.done.send(result);
    }
}

/// The bookings' and read audits' transaction, committed. Per booking, its
/// answer, or `None` to book it alone; and when they may be given. The
/// outer error is the transaction's own.
async fn write_together(
    db: &Db,
    org_id: &str,
    pendings: &[Pending],
    reads: Vec<AuditEntry>,
) -> Result<(Vec<Option<Result<Booked>>>, Durable)> {
    let mut tx = db.begin(org_id).await?;
    let (answers, mut entries) = if pendings.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        book_together(&mut tx, pendings).await?
    };
    entries.extend(reads);
    tx.audit_many(entries).await?;
    Ok((answers, tx.commit_before_durable().await?))
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

/// The group's bookings in a handful of statements whatever their number:
/// their idempotency keys, their patients' checks, their claims (seats
/// chosen in order, [`WriteTx::take_claims_together`]), their appointments
/// and history. Per booking, its answer (sent once the transaction
/// commits), or `None` to book it alone; and the audit events of those
/// written, for the transaction to append.
async fn book_together(
    tx: &mut WriteTx,
    pendings: &[Pending],
) -> Result<(Vec<Option<Result<Booked>>>, Vec<AuditEntry>)> {
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
    Ok((answers, entries))
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
