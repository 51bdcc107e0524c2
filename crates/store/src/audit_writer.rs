//! Group commit of read audits. Every search and every patient page appends
//! audit events before its answer leaves. Appended one transaction each,
//! concurrent requests queue on the chain head and each pays a durable
//! commit (an fsync) in turn: at eight busy desks that queue, not the
//! search, set the slowest answers. Here one task appends whatever has
//! queued while the previous commit ran in one transaction, so a burst of
//! requests shares one commit, and every caller still waits until its
//! events are durable.

use crate::wal_sync::SyncFailed;
use crate::{Db, Result};
use carefront_domain::audit::AuditEntry;
use tokio::sync::{mpsc, oneshot};

/// Events per group transaction; a longer queue is taken in the next one.
const MAX_GROUP_EVENTS: usize = 2_000;

pub(crate) struct Pending {
    org_id: String,
    entries: Vec<AuditEntry>,
    done: oneshot::Sender<Result<()>>,
}

/// What an [`AuditWriter`] queues for its writing task.
pub(crate) type AuditQueue = mpsc::UnboundedReceiver<Pending>;

/// A handle on the appending task; cheap to clone. The task ends when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

impl AuditWriter {
    /// Starts the appending task ([`Db::spawn_writing`]); call inside a
    /// Tokio runtime.
    pub fn start(db: Db) -> AuditWriter {
        let (writer, mut incoming) = AuditWriter::queued();
        db.clone().spawn_writing("carefront-audit", async move {
            while let Some(first) = incoming.recv().await {
                append_group(&db, take_group(first, &mut incoming)).await;
            }
        });
        writer
    }

    /// A handle whose queue another writing task takes
    /// (`BookingWriter::start_with_audit`).
    pub(crate) fn queued() -> (AuditWriter, AuditQueue) {
        let (queue, incoming) = mpsc::unbounded_channel();
        (AuditWriter { queue }, incoming)
    }

    /// Appends `entries` to `org_id`'s chain; returns once they are committed.
    pub async fn append(&self, org_id: &str, entries: Vec<AuditEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending {
                org_id: org_id.to_string(),
                entries,
                done,
            })
            .map_err(|_| sqlx::Error::PoolClosed)?;
        committed.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

impl Pending {
    pub(crate) fn org_id(&self) -> &str {
        &self.org_id
    }
}

/// `first` and what queued behind it, up to [`MAX_GROUP_EVENTS`].
pub(crate) fn take_group(first: Pending, incoming: &mut AuditQueue) -> Vec<Pending> {
    let mut events = first.entries.len();
    let mut group = vec![first];
    while events < MAX_GROUP_EVENTS {
        let Ok(next) = incoming.try_recv() else { break };
        events += next.entries.len();
        group.push(next);
    }
    group
}

/// One transaction per organization in the group. Should it fail, each
/// caller's events are tried alone, so one caller's problem is not another's.
async fn append_group(db: &Db, group: Vec<Pending>) {
    for (org_id, pendings) in crate::db::by_org(group, Pending::org_id) {
        if pendings.len() > 1 && append_now(db, &org_id, entries_of(&pendings)).await.is_ok() {
            committed(pendings);
            continue;
        }
        append_each(db, pendings).await;
    }
}

/// All the group's events, in the order they queued.
pub(crate) fn entries_of(pendings: &[Pending]) -> Vec<AuditEntry> {
    pendings
        .iter()
        .flat_map(|p| p.entries.iter().cloned())
        .collect()
}

/// Tells each caller its events are durable.
pub(crate) fn committed(pendings: Vec<Pending>) {
    for p in pendings {
        let _ = p.done.send(Ok(()));
    }
}

/// Tells each caller its events, committed, may not be durable.
pub(crate) fn lost(pendings: Vec<Pending>, why: &SyncFailed) {
    for p in pendings {
        let _ = p.done.send(Err(why.clone().into()));
    }
}

/// Each caller's events in a transaction of their own, after their group's
/// failed.
pub(crate) async fn append_each(db: &Db, pendings: Vec<Pending>) {
    for p in pendings {
        let result = append_now(db, &p.org_id, p.entries).await;
        let _ = p.done.send(result);
    }
}

async fn append_now(db: &Db, org_id: &str, entries: Vec<AuditEntry>) -> Result<()> {
    let mut tx = db.begin(org_id).await?;
    tx.audit_many(entries).await?;
    tx.commit().await
}
