//! careq's SQLite engine for [`careq_store::Engine`]. One writer thread owns the one
//! read-write connection and commits units in groups (one fsync per group); a fixed set of
//! reader threads each own a read-only connection, so a read unit cannot write even by
//! mistake. Units run next to their connection: a statement is a function call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), careq_store::StoreError> {
//! use careq_store::{ReadExt, Store};
//! use careq_store_sqlite::{SqliteEngine, SqliteOptions};
//! let migrations = [(1, "base", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")];
//! let engine = SqliteEngine::open(SqliteOptions::new("careq.db"), &migrations)?;
//! let store = Store::new(std::sync::Arc::new(engine));
//! store.write(|w| w.execute("INSERT INTO t (v) VALUES ($1)", &["a".into()])).await?;
//! let n = store.read(|r| r.int("SELECT count(*) FROM t", &[])).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod access;
mod error;
mod migrate;
mod open;
mod params;
mod readers;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use careq_store::{Dialect, Engine, ReadJob, StoreError, WriteJob};
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use error::classify;
pub use migrate::Migration;
pub use open::SqliteOptions;

/// SQLite as careq runs it. Dropping it stops taking units, lets the queued ones finish and
/// waits for its threads (so the file is closed when the drop returns).
pub struct SqliteEngine {
    /// Read-only connections for units run on the caller's thread ([`Engine::read_here`]).
    here: Mutex<Vec<Connection>>,
    write_tx: RwLock<Option<SyncSender<Box<dyn WriteJob>>>>,
    read_tx: RwLock<Option<SyncSender<readers::Job>>>,
    depth: Arc<AtomicUsize>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl SqliteEngine {
    /// Opens the database at `o.path` (creating it 0600 when missing), applies the
    /// `migrations` not yet applied, and starts the writer and the readers.
    pub fn open(o: SqliteOptions, migrations: &[Migration<'_>]) -> Result<Self, StoreError> {
        open::create_private(&o.path)?;
        let conn = open::writer(&o)?;
        migrate::run(&conn, migrations)?;
        // Readers open after the writer made the file WAL (and its `-shm`), as they cannot.
        let readers = (0..o.readers.max(1))
            .map(|_| open::reader(&o))
            .collect::<Result<Vec<_>, _>>()?;
        let here = (0..o.readers_here)
            .map(|_| open::reader(&o))
            .collect::<Result<Vec<_>, _>>()?;

        let (write_tx, write_rx) = mpsc::sync_channel(o.write_queue.max(1));
        let (read_tx, read_rx) = mpsc::sync_channel(o.read_queue.max(1));
        let read_rx = Arc::new(Mutex::new(read_rx));
        let depth = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::with_capacity(readers.len() + 1);
        for (i, conn) in readers.into_iter().enumerate() {
            let rx = read_rx.clone();
            threads.push(spawn(format!("sqlite-read-{i}"), move || {
                readers::run(conn, rx)
            })?);
        }
        // The checkpointer copies the log into the database file beside the writer, so a
        // commit never waits for a checkpoint (the writer's own automatic ones are off).
        let (wrote, written) = mpsc::sync_channel(1);
        let checkpoints = open::checkpointer(&o)?;
        threads.push(spawn("sqlite-checkpoint".into(), move || {
            writer::checkpoint(checkpoints, written)
        })?);
        let d = depth.clone();
        threads.push(spawn("sqlite-writer".into(), move || {
            writer::run(conn, write_rx, d, wrote, o)
        })?);
        Ok(SqliteEngine {
            here: Mutex::new(here),
            write_tx: RwLock::new(Some(write_tx)),
            read_tx: RwLock::new(Some(read_tx)),
            depth,
            threads: Mutex::new(threads),
        })
    }

    /// Whether a reader answers `SELECT 1`.
    pub async fn ping(&self) -> bool {
        let answer = self.raw(|conn| conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)));
        matches!(answer.await, Ok(Ok(1)))
    }

    /// Copies the database into `to`, a new file made owner-only first: `VACUUM INTO` on a
    /// reader, so the copy is the database as of one moment, compacted, while writes go on.
    /// The file is removed again if the copy fails.
    pub async fn backup(&self, to: &Path) -> Result<(), StoreError> {
        let name = to
            .to_str()
            .ok_or_else(|| StoreError::other("the backup path is not UTF-8"))?
            .to_owned();
        if !open::create_private(to)? {
            return Err(StoreError::other("the backup file exists already"));
        }
        let copied = self
            .raw(move |conn| {
                conn.execute("VACUUM INTO ?1", [name])
                    .map(drop)
                    .map_err(classify)
            })
            .await
            .unwrap_or_else(Err);
        if copied.is_err() {
            let _ = std::fs::remove_file(to);
        }
        copied
    }

    /// Runs `f` on a reader's bare connection.
    fn raw<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> {
        let (reply, answer) = oneshot::channel();
        self.send_read(readers::Job::Raw(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        })));
        async move {
            answer
                .await
                .map_err(|_| StoreError::other("the engine dropped a job"))
        }
    }

    fn send_read(&self, job: readers::Job) {
        let tx = self.read_tx.read().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) => {
                if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
                    tx.try_send(job)
                {
                    readers::refuse(job);
                }
            }
            None => readers::refuse(job),
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| StoreError::Other(format!("starting a database thread: {e}")))
}

impl Engine for SqliteEngine {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn read(&self, job: ReadJob) {
        self.send_read(readers::Job::Unit(job));
    }

    /// On the caller's thread when one of the connections kept for that is free, else as
    /// [`Engine::read`] (a closed engine refuses either way).
    fn read_here(&self, job: ReadJob) {
        let open = self
            .read_tx
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        let conn = if open {
            self.here.lock().unwrap_or_else(|p| p.into_inner()).pop()
        } else {
            None
        };
        match conn {
            Some(conn) => {
                readers::run_here(&conn, job);
                self.here
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
            }
            None => self.read(job),
        }
    }

    fn write(&self, job: Box<dyn WriteJob>) {
        let tx = self.write_tx.read().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = tx.as_ref() else {
            return job.finish(Err(StoreError::Busy));
        };
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = tx.try_send(job) {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            job.finish(Err(StoreError::Busy));
        }
    }

    fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Closing the queues ends each thread once it has run what was queued before.
    fn close(&self) {
        self.here.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.write_tx
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.read_tx
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Drop for SqliteEngine {
    fn drop(&mut self) {
        self.close();
        let me = std::thread::current().id();
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            // The last handle may be dropped by a unit on one of the engine's own threads.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}
