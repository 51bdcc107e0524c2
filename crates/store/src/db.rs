use crate::records::Val;
use crate::scheduling::{KeptBookings, KeptSetups, ScheduleChanges};
use crate::wal_sync::{Durable, WalSync};
use crate::{Result, StoreError};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database. SQLite gets one writer connection (SQLite allows one writer
/// at a time; queueing in the pool beats spinning on SQLITE_BUSY) and
/// readers of its own (`Readers`); PostgreSQL uses one pool for both.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    read: Readers,
    pub(crate) write: AnyPool,
    /// SQLite: tells the checkpointer a commit added to the WAL.
    checkpoints: Option<mpsc::Sender<()>>,
    /// SQLite on a file: makes the writer's commits durable.
    wal: Option<Arc<WalSync>>,
    setups: Arc<KeptSetups>,
    bookings: Arc<KeptBookings>,
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Time-ordered ids keep recent rows together in B-tree indexes.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// SQLite connections reading beside the writer.
const READERS: usize = 4;
/// How long a query waits for a connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages each SQLite connection keeps (the default is 2 MiB): a booking's
/// writes touch pages all over the claims', appointments' and history's
/// indexes, and a group of them more than 2 MiB; each page not kept is
/// read again from the operating system. Taken only as pages are used.
const WRITER_CACHE_KIB: u32 = 64 * 1024;
const READER_CACHE_KIB: u32 = 16 * 1024;
/// The checkpointer only copies pages along: it keeps few.
const CHECKPOINTER_CACHE_KIB: u32 = 1024;
/// How long the checkpointer lets commits gather before it copies them
/// into the database file: one sync of the file for all of them.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);
/// WAL frames past which a commit checkpoints on the writer itself, should
/// the checkpointer fall behind (SQLite's default is 1,000).
const WRITER_CHECKPOINT_FRAMES: u32 = 10_000;

impl Db {
    /// Opens `sqlite://path` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Db> {
        install_default_drivers();
        if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            let write = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // A local file does not drop connections: no round trip
                // to the connection's worker thread before every query.
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(prepare_sqlite(conn, WRITER_CACHE_KIB, Synchronous::Normal))
                })
                .connect(&url)
                .await?;
            let wal = match database_file(&write).await? {
                Some(file) => Some(Arc::new(WalSync::start(&file).map_err(sqlx::Error::Io)?)),
                None => None,
            };
            let readers =
                deadpool::unmanaged::Pool::from_config(&deadpool::unmanaged::PoolConfig {
                    max_size: READERS,
                    timeout: Some(ACQUIRE_TIMEOUT),
                    runtime: Some(deadpool::Runtime::Tokio1),
                });
            for _ in 0..READERS {
                let mut conn = AnyConnection::connect(&url).await?;
                prepare_sqlite(&mut conn, READER_CACHE_KIB, Synchronous::Full).await?;
                readers
                    .try_add(conn)
                    .map_err(|(_, e)| reader_unavailable(e))?;
            }
            let mut checkpointer = AnyConnection::connect(&url).await?;
            prepare_sqlite(&mut checkpointer, CHECKPOINTER_CACHE_KIB, Synchronous::Full).await?;
            let (checkpoints, wanted) = mpsc::channel(1);
            tokio::spawn(checkpoint_behind(checkpointer, wanted, write.clone()));
            Ok(Db {
                backend: Backend::Sqlite,
                read: Readers::Own(readers),
                write,
                checkpoints: Some(checkpoints),
                wal,
                setups: Arc::default(),
                bookings: Arc::default(),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            Ok(Db {
                backend: Backend::Postgres,
                read: Readers::Pool(pool.clone()),
                write: pool,
                checkpoints: None,
                wal: None,
                setups: Arc::default(),
                bookings: Arc::default(),
            })
        } else {
            Err(StoreError::Conflict(format!(
                "unsupported database URL '{url}': use sqlite://FILE or postgres://..."
            )))
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a task that writes through this database's writer: a group
    /// commit's loop. SQLite's one writer connection is the whole server's
    /// bottleneck, and each of its statements is a hand-off between the
    /// task and the connection's thread; on the shared runtime the task
    /// waits behind every request's tasks to take an answer and send the
    /// next statement, and the connection idles meanwhile (book-race: a
    /// group's statements took 0.53 ms per booking there, 0.32 ms on a
    /// thread of its own). So on SQLite such a task gets a thread of its
    /// own. PostgreSQL's writers run side by side and wait on the network,
    /// so they stay on the shared runtime. Should the thread not start,
    /// the task runs on the shared runtime: slower, never lost.
    pub(crate) fn spawn_writing<F>(&self, name: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = match self.backend {
            Backend::Sqlite => tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok(),
            Backend::Postgres => None,
        };
        let Some(runtime) = runtime else {
            tokio::spawn(task);
            return;
        };
        let (hand_over, take) = std::sync::mpsc::channel::<F>();
        let started = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                if let Ok(task) = take.recv() {
                    runtime.block_on(task);
                }
            });
        let task = match started {
            Ok(_) => match hand_over.send(task) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(task)) => task,
            },
            Err(_) => task,
        };
        tokio::spawn(task);
    }

    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATE_SQLITE,
            Backend::Postgres => &MIGRATE_POSTGRES,
        };
        migrator.run(&self.write).await?;
        // Migrations commit on the writer like any other change.
        Durable::after_commit(self.wal.as_deref()).wait().await?;
        Ok(())
    }

    /// True when the database answers a query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.reader().await?)
            .await?;
        Ok(())
    }

    /// A connection to read with (committed data only), back with the
    /// readers when dropped.
    pub(crate) async fn reader(&self) -> Result<Reader> {
        Ok(match &self.read {
            Readers::Pool(pool) => Reader::Pooled(pool.acquire().await?),
            Readers::Own(pool) => Reader::Own(pool.get().await.map_err(reader_unavailable)?),
        })
    }

    /// The schedule set-ups this server keeps (`scheduling::schedule_config`).
    pub(crate) fn kept_setups(&self) -> &KeptSetups {
        &self.setups
    }

    /// A per-organization counter's last value handed out (0 before the
    /// first), as committed.
    pub(crate) async fn counter_value(&self, org_id: &str, name: &str) -> Result<i64> {
        let (value,): (i64,) = sqlx::query_as(sql(format!("SELECT {}", counter_value_sql("$2"))))
            .bind(org_id)
            .bind(name)
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok(value)
    }

    /// The bookings this server keeps (`scheduling::kept_bookings`).
    pub(crate) fn kept_bookings(&self) -> &KeptBookings {
        &self.bookings
    }

    /// A write transaction for one organization. On SQLite it takes the write
    /// lock at BEGIN, so it never fails half-way on a lock upgrade.
    pub async fn begin(&self, org_id: &str) -> Result<WriteTx> {
        let tx = match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(WriteTx {
            org_id: org_id.to_string(),
            backend: self.backend,
            tx,
            checkpoints: self.checkpoints.clone(),
            wal: self.wal.clone(),
            schedule_changes: ScheduleChanges::default(),
        })
    }

    /// On a PostgreSQL server, creates database `name` (lower-case letters,
    /// digits and `_`) unless it exists. Returns whether it was created.
    pub async fn create_database_if_missing(&self, name: &str) -> Result<bool> {
        if self.backend != Backend::Postgres
            || name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Conflict(format!(
                "'{name}' cannot be created as a PostgreSQL database"
            )));
        }
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        if exists.is_some() {
            return Ok(false);
        }
        sqlx::query(sql(format!("CREATE DATABASE {name}")))
            .execute(&self.write)
            .await?;
        Ok(true)
    }

    /// Lets this process's SQLite writer keep up to `mib` MiB of database
    /// pages in memory (the default is 2 MiB). A long bulk load into a large
    /// database otherwise spends most of its time moving index pages between
    /// SQLite and the operating system. Memory is taken only as pages are
    /// used. PostgreSQL manages its own buffers: nothing to do.
    pub async fn use_bulk_memory(&self, mib: u32) -> Result<()> {
        if self.backend() == Backend::Sqlite {
            let kib = i64::from(mib) * 1024;
            sqlx::query(sql(format!("PRAGMA cache_size = -{kib}")))
                .execute(&self.write)
                .await?;
            // Statement journals (kept while a multi-row statement may still
            // fail half-way) in memory rather than in a temporary file.
            sqlx::query("PRAGMA temp_store = MEMORY")
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// Refreshes the query planner's statistics of `R`'s table, the search
    /// keys and the history after a bulk load. PostgreSQL plans by them and
    /// has none for freshly loaded rows until autovacuum gets there (a
    /// search of a million freshly loaded patients took seconds instead of
    /// milliseconds); it samples, so this takes seconds at most. SQLite's
    /// planner finds the index lookups used here without statistics, and its
    /// ANALYZE reads whole indexes: nothing to do.
    pub async fn refresh_statistics<R: crate::Record>(&self) -> Result<()> {
        if self.backend() == Backend::Postgres {
            let mut tables = vec![R::TABLE, "record_history"];
            if R::KEYED {
                tables.push("search_keys");
            }
            for table in tables {
                sqlx::query(sql(format!("ANALYZE {table}")))
                    .execute(&self.write)
                    .await?;
            }
        }
        Ok(())
    }

    /// Commits made but not yet known to be durable (SQLite's writer;
    /// always 0 elsewhere): no one has been told of them.
    pub fn unsynced_commits(&self) -> u64 {
        self.wal.as_deref().map_or(0, WalSync::unsynced)
    }

    pub async fn close(&self) {
        self.write.close().await;
        if let Some(checkpoints) = &self.checkpoints {
            // Wakes the checkpointer to see the writer closed and end.
            let _ = checkpoints.try_send(());
        }
        match &self.read {
            Readers::Pool(pool) => pool.close().await,
            Readers::Own(pool) => {
                // Each connection as it comes back, then no more takers.
                for _ in 0..pool.status().size {
                    let Ok(conn) = pool.timeout_remove(Some(ACQUIRE_TIMEOUT)).await else {
                        break;
                    };
                    let _ = conn.close().await;
                }
                pool.close();
            }
        }
    }
}

/// Connections to read with. PostgreSQL's come from its pool. SQLite's are
/// handed out by a pool of their own: sqlx's pool pings a connection's
/// worker thread whenever one comes back, a second hand-off between
/// threads for every query, which on a local file checks nothing.
#[derive(Clone, Debug)]
enum Readers {
    Pool(AnyPool),
    Own(deadpool::unmanaged::Pool<AnyConnection>),
}

/// A connection to read with ([`Db::reader`]).
pub(crate) enum Reader {
    Pooled(PoolConnection<Any>),
    Own(deadpool::unmanaged::Object<AnyConnection>),
}

impl Deref for Reader {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Reader::Pooled(conn) => conn,
            Reader::Own(conn) => conn,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Reader::Pooled(conn) => conn,
            Reader::Own(conn) => conn,
        }
    }
}

fn reader_unavailable(e: deadpool::unmanaged::PoolError) -> StoreError {
    match e {
        deadpool::unmanaged::PoolError::Closed => sqlx::Error::PoolClosed,
        _ => sqlx::Error::PoolTimedOut,
    }
    .into()
}

/// A writing task's queue split by organization, each in the order it
/// queued: a transaction writes one organization's rows.
pub(crate) fn by_org<T>(items: Vec<T>, org_of: impl Fn(&T) -> &str) -> Vec<(String, Vec<T>)> {
    let mut split: Vec<(String, Vec<T>)> = Vec::new();
    for item in items {
        match split.iter_mut().find(|(org, _)| org == org_of(&item)) {
            Some((_, same)) => same.push(item),
            None => split.push((org_of(&item).to_string(), vec![item])),
        }
    }
    split
}

/// [`Db::counter_value`] as an SQL expression of organization `$1`'s
/// counter named by `name` (a parameter or a literal), for reading it in
/// the same look-up as something else.
pub(crate) fn counter_value_sql(name: &str) -> String {
    format!("COALESCE((SELECT value FROM org_counters WHERE org_id = $1 AND name = {name}), 0)")
}

/// SQLite's checkpoints, off the writer. By default the commit that takes
/// the WAL past 1,000 frames copies them into the database file and syncs
/// it before it returns: under a stream of bookings a fifth of the
/// writer's commits took 15-27 ms instead of 2-5, and every booking queued
/// behind them. Here a connection of its own copies what commits added,
/// beside the writer (a passive checkpoint takes no lock a writer or
/// reader waits on); the writer checkpoints itself only past
/// [`WRITER_CHECKPOINT_FRAMES`], should this fall behind. Ends, closing
/// its connection, once the database is closed or every handle dropped.
async fn checkpoint_behind(
    mut conn: AnyConnection,
    mut wanted: mpsc::Receiver<()>,
    write: AnyPool,
) {
    use sqlx::Executor;
    while wanted.recv().await.is_some() && !write.is_closed() {
        tokio::time::sleep(CHECKPOINT_DELAY).await;
        let _ = wanted.try_recv();
        // A failed checkpoint loses nothing: the frames stay in the WAL
        // for the next one, or for the writer's own.
        let _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await;
    }
    let _ = conn.close().await;
}

/// The file behind a SQLite pool's main database; `None` in memory.
async fn database_file(pool: &AnyPool) -> sqlx::Result<Option<std::path::PathBuf>> {
    let rows = sqlx::query("PRAGMA database_list").fetch_all(pool).await?;
    for row in rows {
        use sqlx::Row;
        let (name, file): (String, String) = (row.try_get("name")?, row.try_get("file")?);
        if name == "main" && !file.is_empty() {
            return Ok(Some(file.into()));
        }
    }
    Ok(None)
}

/// How a SQLite connection's commits reach the disk.
enum Synchronous {
    /// The commit returns once the WAL is synced.
    Full,
    /// The commit returns once its frames are written; [`WalSync`] syncs
    /// them before anyone is told (the writer's).
    Normal,
}

/// Every SQLite connection's settings.
async fn prepare_sqlite(
    conn: &mut AnyConnection,
    cache_kib: u32,
    synchronous: Synchronous,
) -> sqlx::Result<()> {
    use sqlx::Executor;
    // WAL lets readers run beside the writer.
    for pragma in [
        "PRAGMA journal_mode = WAL",
        match synchronous {
            Synchronous::Full => "PRAGMA synchronous = FULL",
            Synchronous::Normal => "PRAGMA synchronous = NORMAL",
        },
        "PRAGMA foreign_keys = ON",
        "PRAGMA busy_timeout = 10000",
    ] {
        conn.execute(pragma).await?;
    }
    conn.execute(sql(format!("PRAGMA cache_size = -{cache_kib}")))
        .await?;
    conn.execute(sql(format!(
        "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_FRAMES}"
    )))
    .await?;
    Ok(())
}

/// A unit of work in one organization: data changes and their audit events
/// commit together or not at all.
pub struct WriteTx {
    pub(crate) org_id: String,
    pub(crate) backend: Backend,
    pub(crate) tx: Transaction<'static, Any>,
    checkpoints: Option<mpsc::Sender<()>>,
    wal: Option<Arc<WalSync>>,
    /// Appointments and holds whose time this transaction took or gave
    /// back, logged when it commits.
    pub(crate) schedule_changes: ScheduleChanges,
}

impl WriteTx {
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// Commits; returns once the changes are durable.
    pub async fn commit(self) -> Result<()> {
        Ok(self.commit_before_durable().await?.wait().await?)
    }

    /// Commits, and frees the writer for the next transaction before the
    /// changes are durable: tell no one they were made until the answer
    /// says so (`wal_sync`).
    pub(crate) async fn commit_before_durable(mut self) -> Result<Durable> {
        self.log_schedule_changes().await?;
        self.tx.commit().await?;
        if let Some(checkpoints) = &self.checkpoints {
            // One waiting wake-up is enough: the checkpointer takes all.
            let _ = checkpoints.try_send(());
        }
        Ok(Durable::after_commit(self.wal.as_deref()))
    }

    /// Makes other transactions that lock the same `key` in this
    /// organization wait until this one ends: for check-then-write rules
    /// that no unique index expresses (FHIR conditional create). SQLite
    /// has one writer, already serialized at BEGIN; PostgreSQL takes a
    /// transaction-scoped advisory lock.
    pub async fn lock(&mut self, key: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("{}|{key}", self.org_id))
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Hands out the next value of a per-organization counter (MRNs).
    pub async fn next_counter(&mut self, name: &str) -> Result<i64> {
        self.reserve_counter(name, 1).await
    }
}

/// Marks SQL assembled from column and table names written in this crate.
/// Values never enter SQL text: they are always bound as parameters.
pub(crate) fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

/// A statement being built, owning its values.
pub(crate) type Query = sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>;

pub(crate) fn bind_owned(q: Query, v: Val) -> Query {
    match v {
        Val::Text(t) => q.bind(t),
        Val::Int(i) => q.bind(i),
    }
}

/// A statement's text as the backend takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    pub(crate) text: String,
    /// SQLite: the value (0-based) each `?` takes, in order.
    order: Option<Vec<usize>>,
}

impl Shape {
    /// SQLite finds each numbered parameter (`$n`) by a linear walk of the
    /// statement's parameter list when binding, so a wide statement binds
    /// in quadratic time: a sixth of a million-row import's writer time.
    /// Anonymous `?` parameters bind by position with no walk, so for
    /// SQLite the text takes those and shared values are bound once per use.
    pub(crate) fn new(backend: Backend, text: String) -> Shape {
        if backend == Backend::Postgres {
            return Shape { text, order: None };
        }
        let mut out = String::with_capacity(text.len());
        let mut order = Vec::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len() - at - 1, |n| n);
            match rest[at + 1..at + 1 + digits].parse::<usize>() {
                Ok(n) if n > 0 => {
                    out.push('?');
                    order.push(n - 1);
                }
                _ => out.push_str(&rest[at..at + 1 + digits]),
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        Shape {
            text: out,
            order: Some(order),
        }
    }

    /// The statement with `values` bound (`values[n - 1]` for `$n`).
    pub(crate) fn bind(&self, values: Vec<Val>) -> Query {
        let q = sqlx::query(sql(self.text.clone()));
        match &self.order {
            None => values.into_iter().fold(q, bind_owned),
            Some(order) => order
                .iter()
                .fold(q, |q, &i| bind_owned(q, values[i].clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "INSERT INTO search_keys (org_id, record_type, key, record_id) VALUES \
                        ($1, $2, $3, $4), ($1, $2, $5, $6) ON CONFLICT DO NOTHING";

    #[test]
    fn sqlite_statements_take_positional_parameters_with_shared_values_repeated() {
        let shape = Shape::new(Backend::Sqlite, KEYS.to_string());
        assert_eq!(
            shape.text,
            "INSERT INTO search_keys (org_id, record_type, key, record_id) VALUES \
             (?, ?, ?, ?), (?, ?, ?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(shape.order, Some(vec![0, 1, 2, 3, 0, 1, 4, 5]));
        let pg = Shape::new(Backend::Postgres, KEYS.to_string());
        assert_eq!((pg.text, pg.order), (KEYS.to_string(), None));
        // Two-digit numbers and text around them survive.
        let shape = Shape::new(Backend::Sqlite, "a = $12 AND b = $3)".into());
        assert_eq!(shape.text, "a = ? AND b = ?)");
        assert_eq!(shape.order, Some(vec![11, 2]));
    }
}
