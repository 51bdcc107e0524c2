//! Group commit of read audits. Every search and every patient page appends
//! audit events before its answer leaves. Appended one transaction each,
//! concurrent requests queue on the chain head and each pays a durable
//! commit (an fsync) in turn: at eight busy desks that queue, not the
//! search, set the slowest answers. Here one task appends whatever has
//! queued while the previous commit ran in one transaction, so a burst of
//! requests shares one commit, and every caller still waits until its
//! events are durable.

use crate::{Db, Result};
use carefront_domain::audit::AuditEntry;
use tokio::sync::{mpsc, oneshot};

/// Events per group transaction; a longer queue is taken in the next one.
const MAX_GROUP_EVENTS: usize = 2_000;

struct Pending {
    org_id: String,
    entries: Vec<AuditEntry>,
    done: oneshot::Sender<Result<()>>,
}

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
        let (queue, mut incoming) = mpsc::unbounded_channel::<Pending>();
        db.clone().spawn_writing("carefront-audit", async move {
            while let Some(first) = incoming.recv().await {
                let mut events = first.entries.len();
                let mut group = vec![first];
                while events < MAX_GROUP_EVENTS {
                    let Ok(next) = incoming.try_recv() else { break };
                    events += next.entries.len();
                    group.push(next);
                }
                append_group(&db, group).await;
            }
        });
        AuditWriter { queue }
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

/// One transaction per organization in the group. Should it fail, each
/// caller's events are tried alone, so one caller's problem is not another's.
async fn append_group(db: &Db, group: Vec<Pending>) {
    let mut by_org: Vec<(String, Vec<Pending>)> = Vec::new();
    for pending in group {
        match by_org.iter_mut().find(|(org, _)| *org == pending.org_id) {
            Some((_, same)) => same.push(pending),
            None => by_org.push((pending.org_id.clone(), vec![pending])),
        }
    }
    for (org_id, pendings) in by_org {
        if pendings.len() > 1 {
            let all = pendings
                .iter()
                .flat_map(|p| p.entries.iter().cloned())
                .collect();
            if append_now(db, &org_id, all).await.is_ok() {
                for p in pendings {
                    let _ = p.done.send(Ok(()));
                }
                continue;
            }
        }
        for p in pendings {
            let result = append_now(db, &p.org_id, p.entries).await;
            let _ = p.done.send(result);
        }
    }
}

async fn append_now(db: &Db, org_id: &str, entries: Vec<AuditEntry>) -> Result<()> {
    let mut tx = db.begin(org_id).await?;
    tx.audit_many(entries).await?;
    tx.commit().await
}
