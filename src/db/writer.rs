//! The one writer. A single task owns SQLite's one write connection; handlers hand it units of
//! work (everything one request writes) and await the outcome. The writer takes the units queued
//! at that moment, runs each inside its own savepoint of one `BEGIN IMMEDIATE` transaction (a
//! unit that fails is rolled back alone), commits once — one fsync for the whole group — and only
//! then answers every unit. A unit always runs to its end on the writer, whether or not anyone is
//! still waiting for its answer, so a client that hangs up can never leave a transaction open.
use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// What a unit of work returns: a boxed future borrowing the writer's connection.
pub type UnitFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'c>>;

type AnyUnit =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> UnitFuture<'c, Box<dyn Any + Send>> + Send>;

struct Job {
    unit: AnyUnit,
    reply: oneshot::Sender<Result<Box<dyn Any + Send>, ApiError>>,
}

/// Most units committed together; more wait for the next commit.
const MAX_GROUP: usize = 512;

/// The handle handlers use to reach the writer. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    depth: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the writer task on `conn`; at most `capacity` units may wait for it. `reopen`
    /// makes a fresh connection when a failure leaves this one in an unknown state.
    pub fn start(conn: SqliteConnection, capacity: usize, reopen: Reopen) -> Self {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(conn, rx, depth.clone(), reopen));
        Writer { queue, depth }
    }

    /// Units waiting or running now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Runs `unit` on the writer and answers once its group is durably committed. A full queue
    /// answers 503 at once rather than letting latency grow without bound.
    pub async fn write<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> UnitFuture<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let unit: AnyUnit = Box::new(move |conn| {
            Box::pin(unit(conn).map(|r| r.map(|v| Box::new(v) as Box<dyn Any + Send>)))
        });
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(Job { unit, reply }).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => ApiError::ServiceUnavailable {
                    detail: "too many writes are waiting; try again shortly".into(),
                    retry_after: 1,
                },
                mpsc::error::TrySendError::Closed(_) => ApiError::ServiceUnavailable {
                    detail: "the database writer has stopped".into(),
                    retry_after: super::RETRY_AFTER_SECS,
                },
            }
        })?;
        let out = answer
            .await
            .map_err(|_| ApiError::internal("the writer dropped a unit of work"))??;
        out.downcast::<T>()
            .map(|v| *v)
            .map_err(|_| ApiError::internal("a unit of work answered the wrong type"))
    }
}

/// A write connection being opened.
pub type ReopenFuture = Pin<Box<dyn Future<Output = Result<SqliteConnection, sqlx::Error>> + Send>>;

/// Opens a new write connection, set up as the first one was.
pub type Reopen = Box<dyn Fn() -> ReopenFuture + Send + Sync>;

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    depth: Arc<AtomicUsize>,
    reopen: Reopen,
) {
    while let Some(first) = rx.recv().await {
        let mut group = VecDeque::from([first]);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push_back(job),
                Err(_) => break,
            }
        }
        let n = group.len();
        let healthy = commit_group(&mut conn, group).await;
        depth.fetch_sub(n, Ordering::Relaxed);
        if !healthy {
            // SQLite may have ended the transaction by itself (a full disk, an I/O error); the
            // connection's idea of its transaction state can no longer be trusted.
            conn = reconnect(&reopen).await;
        }
    }
    let _ = conn.close().await;
}

async fn reconnect(reopen: &Reopen) -> SqliteConnection {
    let mut wait = std::time::Duration::from_millis(10);
    loop {
        match reopen().await {
            Ok(conn) => return conn,
            Err(e) => {
                tracing::error!(error = %e, "reopening the write connection failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
}

/// Runs the units of one group, committing them together. If the transaction breaks under a
/// unit (SQLite rolls a transaction back by itself after some errors, e.g. a full disk), the
/// units already run are answered with that error and the rest wait for the next group, on a
/// fresh connection. Returns whether the connection is still in a known state.
async fn commit_group(conn: &mut SqliteConnection, mut group: VecDeque<Job>) -> bool {
    while !group.is_empty() {
        let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => {
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(ApiError::from(clone_error(&e))));
                }
                return false;
            }
        };
        let mut ran = Vec::new();
        let mut broken = None;
        while let Some(job) = group.pop_front() {
            let mut savepoint = match Connection::begin(&mut *tx).await {
                Ok(sp) => sp,
                Err(e) => {
                    group.push_front(job);
                    broken = Some(e);
                    break;
                }
            };
            let Job { unit, reply } = job;
            let out = AssertUnwindSafe(unit(&mut savepoint))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(ApiError::internal("a unit of work panicked")));
            let end = if out.is_ok() {
                savepoint.commit().await
            } else {
                savepoint.rollback().await
            };
            ran.push((reply, out));
            if let Err(e) = end {
                broken = Some(e);
                break;
            }
        }
        let healthy = broken.is_none();
        let committed = match broken {
            None => tx.commit().await,
            Some(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        };
        for (reply, out) in ran {
            let answer = match (&committed, out) {
                (Ok(()), out) => out,
                (Err(e), Ok(_)) => Err(ApiError::from(clone_error(e))),
                (Err(_), Err(own)) => Err(own),
            };
            let _ = reply.send(answer);
        }
        if !healthy || committed.is_err() {
            // What was not run yet fails too rather than run on a connection in doubt; its
            // clients may retry at once.
            for job in group.drain(..) {
                let _ = job.reply.send(Err(ApiError::ServiceUnavailable {
                    detail: "the database is recovering from a failed write; try again".into(),
                    retry_after: 1,
                }));
            }
            return false;
        }
    }
    true
}

/// `sqlx::Error` is not `Clone`; what the API distinguishes about it (its class) survives.
fn clone_error(e: &sqlx::Error) -> sqlx::Error {
    match super::failure(e) {
        super::DbFailure::Full => {
            sqlx::Error::Io(std::io::Error::from_raw_os_error(28 /* ENOSPC */))
        }
        super::DbFailure::Busy => sqlx::Error::PoolTimedOut,
        _ => sqlx::Error::Protocol(format!("the group commit failed: {e}")),
    }
}
