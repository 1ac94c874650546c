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

use super::access::append_rows;
use crate::error::ApiError;
use crate::store::{LogRow, StoreError, RETRY_AFTER_SECS};

/// What a unit of work returns: a boxed future borrowing the writer's connection.
pub type UnitFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'c>>;

type AnyUnit =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> UnitFuture<'c, Box<dyn Any + Send>> + Send>;

enum Work {
    Unit(AnyUnit),
    /// Access-log rows of reads: appended together, after the group's units.
    Log(Vec<LogRow>),
}

struct Job {
    work: Work,
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
        let unit: AnyUnit = Box::new(move |conn| {
            Box::pin(unit(conn).map(|r| r.map(|v| Box::new(v) as Box<dyn Any + Send>)))
        });
        let out = self.submit(Work::Unit(unit)).await?;
        out.downcast::<T>()
            .map(|v| *v)
            .map_err(|_| ApiError::internal("a unit of work answered the wrong type"))
    }

    /// Appends access-log rows with the next group commit; answered once they are durable.
    pub async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        self.submit(Work::Log(rows)).await.map(|_| ())
    }

    async fn submit(&self, work: Work) -> Result<Box<dyn Any + Send>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(Job { work, reply }).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => ApiError::ServiceUnavailable {
                    detail: "too many writes are waiting; try again shortly".into(),
                    retry_after: 1,
                },
                mpsc::error::TrySendError::Closed(_) => ApiError::ServiceUnavailable {
                    detail: "the database writer has stopped".into(),
                    retry_after: RETRY_AFTER_SECS,
                },
            }
        })?;
        answer
            .await
            .map_err(|_| ApiError::internal("the writer dropped a unit of work"))?
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

/// Runs the units of one group, committing them together. Access-log rows of reads are
/// appended after the units in a few multi-row statements. If the transaction breaks under a
/// unit (SQLite rolls a transaction back by itself after some errors, e.g. a full disk), what
/// ran is answered with that error and what did not is refused with 503, and the caller gets a
/// fresh connection. Returns whether the connection is still in a known state.
async fn commit_group(conn: &mut SqliteConnection, group: VecDeque<Job>) -> bool {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for job in group {
                let _ = job.reply.send(Err(ApiError::from(e.clone())));
            }
            return false;
        }
    };
    let mut ran = Vec::new();
    let mut logs = Vec::new();
    let mut left = Vec::new();
    let mut broken = None;
    for job in group {
        if broken.is_some() {
            left.push(job.reply);
            continue;
        }
        let unit = match job.work {
            Work::Log(rows) => {
                logs.push((rows, job.reply));
                continue;
            }
            Work::Unit(unit) => unit,
        };
        let mut savepoint = match Connection::begin(&mut *tx).await {
            Ok(sp) => sp,
            Err(e) => {
                left.push(job.reply);
                broken = Some(e);
                continue;
            }
        };
        let out = AssertUnwindSafe(unit(&mut savepoint))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("a unit of work panicked")));
        let end = if out.is_ok() {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        ran.push((job.reply, out));
        if let Err(e) = end {
            broken = Some(e);
        }
    }
    if broken.is_none() && !logs.is_empty() {
        let rows: Vec<&LogRow> = logs.iter().flat_map(|(rows, _)| rows.iter()).collect();
        if let Err(e) = append_rows(&mut tx, &rows).await {
            broken = Some(e);
        }
    }
    for (_, reply) in logs {
        ran.push((reply, Ok(Box::new(()) as Box<dyn Any + Send>)));
    }
    let healthy = broken.is_none();
    let committed = match broken {
        None => tx.commit().await.map_err(StoreError::from),
        Some(e) => {
            let _ = tx.rollback().await;
            Err(StoreError::from(e))
        }
    };
    for (reply, out) in ran {
        let answer = match (&committed, out) {
            (Ok(()), out) => out,
            (Err(e), Ok(_)) => Err(ApiError::from(e.clone())),
            (Err(_), Err(own)) => Err(own),
        };
        let _ = reply.send(answer);
    }
    for reply in left {
        // Not run on a connection in doubt; the client may retry at once.
        let _ = reply.send(Err(ApiError::ServiceUnavailable {
            detail: "the database is recovering from a failed write; try again".into(),
            retry_after: 1,
        }));
    }
    healthy && committed.is_ok()
}
