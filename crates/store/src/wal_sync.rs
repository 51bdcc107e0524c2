//! SQLite commits made durable beside the writer, not inside it. With
//! `synchronous = FULL` each commit syncs the WAL while it still holds the
//! write lock: under book-race that sync was 3.4 ms of the writer's 9 ms
//! round, and nothing could be written meanwhile. The writer commits with
//! `synchronous = NORMAL` instead (the commit writes its WAL frames and
//! releases the lock) and a thread of this module syncs the WAL beside it.
//! A commit counts as made only once a sync that began after it has ended:
//! [`WriteTx::commit`](crate::WriteTx::commit) waits for that, and the group
//! writer answers its callers then, while it writes the next group. One
//! sync covers every commit made while the previous one ran.
//!
//! Readers may see a commit a few milliseconds before it is durable. A power
//! loss in that window undoes it, and no caller was told it was made (a
//! rival refused its slot finds the slot free again). WAL frames carry
//! running checksums and recovery replays them up to the first one missing,
//! so what survives is always every commit up to some point: consistent,
//! and every acknowledged one among them.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Told once a commit is durable, or why it may not be.
type Then = Box<dyn FnOnce(Result<(), SyncFailed>) + Send>;

/// A sync of the WAL failed. Nothing committed after the last good sync is
/// acknowledged from then on: after a failed `fsync` the kernel may have
/// dropped the unwritten pages, so a later sync that succeeds proves
/// nothing about them (PostgreSQL stops for the same reason).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncFailed(String);

impl From<SyncFailed> for crate::StoreError {
    fn from(e: SyncFailed) -> Self {
        sqlx::Error::Io(io::Error::other(format!(
            "the database's write-ahead log could not be synced to disk: {}",
            e.0
        )))
        .into()
    }
}

#[derive(Default)]
struct State {
    /// Commits counted so far; the n-th commit's ticket is n.
    committed: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    failed: Option<SyncFailed>,
    waiting: Vec<(u64, Then)>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the syncing thread: a commit to sync, or the handle dropped.
    wake: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A callback that panicked under the lock leaves the counters
        // themselves sound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The syncing thread's handle; it ends the thread once dropped, after the
/// commits already counted are synced.
pub(crate) struct WalSync {
    shared: Arc<Shared>,
}

impl WalSync {
    /// Syncs the WAL beside the database file at `database`.
    pub(crate) fn start(database: &Path) -> io::Result<WalSync> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        WalSync::with(move || sync_file(&wal))
    }

    /// Calls `sync` on a thread of its own whenever commits wait for it.
    fn with(mut sync: impl FnMut() -> io::Result<()> + Send + 'static) -> io::Result<WalSync> {
        let shared = Arc::new(Shared::default());
        let syncing = shared.clone();
        std::thread::Builder::new()
            .name("carefront-wal-sync".into())
            .spawn(move || {
                while let Some(target) = next_target(&syncing) {
                    let result = sync().map_err(|e| SyncFailed(e.to_string()));
                    synced(&syncing, target, result);
                }
            })?;
        Ok(WalSync { shared })
    }

    /// Counts a commit that has just returned: its frames are in the WAL.
    pub(crate) fn committed(&self) -> Durable {
        let mut state = self.shared.state();
        state.committed += 1;
        let ticket = state.committed;
        drop(state);
        self.shared.wake.notify_one();
        Durable(Some((ticket, self.shared.clone())))
    }

    pub(crate) fn unsynced(&self) -> u64 {
        let state = self.shared.state();
        state.committed - state.synced
    }
}

impl std::fmt::Debug for WalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalSync")
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// What the next sync must cover (every commit counted before it starts),
/// once there is one; `None` once the handle is dropped and all is synced.
fn next_target(shared: &Shared) -> Option<u64> {
    let mut state = shared.state();
    loop {
        if state.committed > state.synced && state.failed.is_none() {
            return Some(state.committed);
        }
        if state.closed {
            return None;
        }
        state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
    }
}

/// Records a sync's outcome and tells those it settles.
fn synced(shared: &Shared, target: u64, result: Result<(), SyncFailed>) {
    let mut state = shared.state();
    let settled: Vec<(u64, Then)> = match &result {
        Ok(()) => {
            state.synced = target;
            let (settled, waiting) = std::mem::take(&mut state.waiting)
                .into_iter()
                .partition(|(ticket, _)| *ticket <= target);
            state.waiting = waiting;
            settled
        }
        Err(e) => {
            state.failed = Some(e.clone());
            std::mem::take(&mut state.waiting)
        }
    };
    drop(state);
    for (_, then) in settled {
        then(result.clone());
    }
}

/// A sync of the WAL's file. No WAL means the last connection closed, after
/// checkpointing it into the database file and syncing that.
fn sync_file(wal: &Path) -> io::Result<()> {
    match OpenOptions::new().read(true).write(true).open(wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A commit on its way to disk: made once [`Durable::then`] or
/// [`Durable::wait`] says so. Backends whose commit is durable when it
/// returns (PostgreSQL, SQLite in memory) hold nothing to wait for.
#[must_use = "a commit is not made until it is durable"]
pub(crate) struct Durable(Option<(u64, Arc<Shared>)>);

impl Durable {
    pub(crate) fn already() -> Durable {
        Durable(None)
    }

    /// The commit that has just returned, synced by `wal` if there is one.
    pub(crate) fn after_commit(wal: Option<&WalSync>) -> Durable {
        wal.map_or_else(Durable::already, WalSync::committed)
    }

    /// Calls `then` once the commit is durable (or cannot be), on the
    /// syncing thread or, if that is settled already, here.
    pub(crate) fn then(self, then: impl FnOnce(Result<(), SyncFailed>) + Send + 'static) {
        let Some((ticket, shared)) = self.0 else {
            return then(Ok(()));
        };
        let mut state = shared.state();
        let settled = match &state.failed {
            Some(e) => Err(e.clone()),
            None if ticket <= state.synced => Ok(()),
            None => {
                state.waiting.push((ticket, Box::new(then)));
                return;
            }
        };
        drop(state);
        then(settled);
    }

    pub(crate) async fn wait(self) -> Result<(), SyncFailed> {
        let (tell, told) = tokio::sync::oneshot::channel();
        self.then(move |result| {
            let _ = tell.send(result);
        });
        told.await
            .unwrap_or_else(|_| Err(SyncFailed("the syncing thread ended".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A sync that reports when it starts and ends only when the test
    /// releases it with an outcome.
    fn controlled() -> (WalSync, mpsc::Receiver<()>, mpsc::Sender<io::Result<()>>) {
        let (started, starts) = mpsc::channel();
        let (release, outcomes) = mpsc::channel::<io::Result<()>>();
        let sync = WalSync::with(move || {
            started.send(()).unwrap();
            outcomes.recv().unwrap()
        })
        .unwrap();
        (sync, starts, release)
    }

    fn watch(durable: Durable) -> mpsc::Receiver<Result<(), SyncFailed>> {
        let (tell, told) = mpsc::channel();
        durable.then(move |r| tell.send(r).unwrap());
        told
    }

    const SOON: Duration = Duration::from_millis(100);

    #[test]
    fn a_commit_is_durable_only_after_a_sync_that_began_after_it() {
        let (wal, starts, release) = controlled();
        let first = watch(wal.committed());
        starts.recv().unwrap();
        // Committed while the first commit's sync runs: that sync may have
        // missed its frames.
        let second = watch(wal.committed());
        assert!(
            first.recv_timeout(SOON).is_err(),
            "told before its sync ended"
        );
        release.send(Ok(())).unwrap();
        assert_eq!(first.recv().unwrap(), Ok(()));
        assert!(
            second.recv_timeout(SOON).is_err(),
            "covered by an earlier sync"
        );
        starts.recv().unwrap();
        release.send(Ok(())).unwrap();
        assert_eq!(second.recv().unwrap(), Ok(()));
    }

    #[test]
    fn one_sync_settles_every_commit_made_before_it_began() {
        let (wal, starts, release) = controlled();
        let blocker = watch(wal.committed());
        starts.recv().unwrap();
        let waiting: Vec<_> = (0..5).map(|_| watch(wal.committed())).collect();
        release.send(Ok(())).unwrap();
        assert_eq!(blocker.recv().unwrap(), Ok(()));
        starts.recv().unwrap();
        release.send(Ok(())).unwrap();
        for w in waiting {
            assert_eq!(w.recv().unwrap(), Ok(()));
        }
        assert!(
            starts.recv_timeout(SOON).is_err(),
            "synced again with nothing to sync"
        );
        let after = watch(wal.committed());
        starts.recv().unwrap();
        release.send(Ok(())).unwrap();
        assert_eq!(after.recv().unwrap(), Ok(()));
    }

    #[test]
    fn a_failed_sync_refuses_every_commit_after_it() {
        let (wal, starts, release) = controlled();
        let lost = watch(wal.committed());
        starts.recv().unwrap();
        release.send(Err(io::Error::other("disk on fire"))).unwrap();
        let failed = lost.recv().unwrap().unwrap_err();
        assert!(failed.0.contains("disk on fire"));
        // Later commits are never acknowledged, and no sync is tried for them.
        assert_eq!(watch(wal.committed()).recv().unwrap(), Err(failed));
        assert!(starts.recv_timeout(SOON).is_err());
    }

    #[tokio::test]
    async fn waiting_resolves_with_the_sync() {
        let (wal, starts, release) = controlled();
        let durable = wal.committed();
        let waiter = tokio::spawn(durable.wait());
        tokio::task::spawn_blocking(move || {
            starts.recv().unwrap();
            release.send(Ok(())).unwrap();
        })
        .await
        .unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(Durable::already().wait().await, Ok(()));
    }

    #[test]
    fn syncs_the_file_beside_the_database() {
        let dir = std::env::temp_dir().join(format!("cf_wal_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("clinic.db");
        let wal_path = dir.join("clinic.db-wal");
        assert!(sync_file(&wal_path).is_ok(), "no WAL is nothing to sync");
        // A directory where the WAL should be cannot be opened to sync.
        std::fs::create_dir(&wal_path).unwrap();
        let broken = WalSync::start(&db).unwrap();
        assert!(watch(broken.committed()).recv().unwrap().is_err());
        std::fs::remove_dir(&wal_path).unwrap();
        std::fs::write(&wal_path, b"frames").unwrap();
        let wal = WalSync::start(&db).unwrap();
        assert_eq!(watch(wal.committed()).recv().unwrap(), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
