//! The one writer: an OS thread owning SQLite's one read-write connection. It takes the first
//! unit waiting and every unit queued behind it (up to [`MAX_GROUP`]), runs each inside its own
//! savepoint of one `BEGIN IMMEDIATE` transaction (a unit that refuses is undone alone),
//! commits once — one fsync for the whole group — and only then answers every unit. A unit
//! runs to its end whether or not its caller still waits, so no transaction is left open.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use careq_store::{StoreError, WriteJob};
use rusqlite::Connection;

use crate::access::Conn;
use crate::open::{self, SqliteOptions};

/// Most units committed together; more wait for the next commit.
pub const MAX_GROUP: usize = 512;

/// The writer thread's body: runs groups until every sender is gone and the queue is empty.
pub fn run(
    conn: Connection,
    rx: Receiver<Box<dyn WriteJob>>,
    depth: Arc<AtomicUsize>,
    wrote: SyncSender<()>,
    o: SqliteOptions,
) {
    let mut conn = Some(conn);
    let mut wait = FIRST_WAIT;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let n = group.len();
        if conn.is_none() {
            conn = open::writer(&o).ok();
        }
        let (answers, healthy) = match &conn {
            Some(c) => commit_group(c, group, o.max_bytes),
            // Without a connection the group is refused rather than held: callers may retry,
            // and the thread still ends when the engine closes.
            None => (
                group
                    .into_iter()
                    .map(|j| (j, Err(StoreError::Busy)))
                    .collect(),
                true,
            ),
        };
        // Answered units are no longer waiting or running: count them out first.
        depth.fetch_sub(n, Ordering::Relaxed);
        for (job, outcome) in answers {
            job.finish(outcome);
        }
        if conn.is_none() {
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(2));
        } else if !healthy {
            // SQLite may have ended the transaction by itself (a full disk, an I/O error):
            // the connection's state can no longer be trusted.
            drop(conn.take());
            conn = open::writer(&o).ok();
        } else {
            wait = FIRST_WAIT;
            // A full channel means a checkpoint is asked for already.
            let _ = wrote.try_send(());
        }
    }
}

/// Least time between two checkpoints: under a steady stream of commits the log is copied
/// back in batches rather than after every group.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The checkpointer thread's body: after commits, copies what the log holds into the database
/// file (`PASSIVE`: never waits for readers or the writer), until the writer is gone.
pub fn checkpoint(conn: Connection, wrote: Receiver<()>) {
    if wrote.recv().is_err() {
        return;
    }
    loop {
        // An error (an I/O error, a lock held by another process) leaves the frames in the log
        // for the next round; the log stays correct, only longer.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        let next = Instant::now() + CHECKPOINT_EVERY;
        let mut asked = false;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            match wrote.recv_timeout(left) {
                Ok(()) => asked = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if !asked && wrote.recv().is_err() {
            return;
        }
    }
}

/// The first pause before opening the write connection again after a failed attempt.
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// What became of one unit before the commit decides.
enum Ran {
    /// It ran; kept or undone by its own choice. The commit's outcome is its answer.
    Attempted,
    /// It did not get to run, or it panicked: this is its answer whatever the commit does.
    Refused(StoreError),
}

/// A unit and its answer.
type Answer = (Box<dyn WriteJob>, Result<(), StoreError>);

/// Runs one group. Returns each unit's answer, and whether the connection is in a known state.
fn commit_group(
    conn: &Connection,
    group: Vec<Box<dyn WriteJob>>,
    max: Option<u64>,
) -> (Vec<Answer>, bool) {
    let mut c = Conn::new(conn);
    if let Err(e) = c.run("BEGIN IMMEDIATE") {
        let answers = group.into_iter().map(|j| (j, Err(e.clone()))).collect();
        return (answers, false);
    }
    let mut ran: Vec<(Box<dyn WriteJob>, Ran)> = Vec::with_capacity(group.len());
    let mut left = Vec::new();
    let mut broken: Option<StoreError> = None;
    for mut job in group {
        if broken.is_some() {
            left.push(job);
            continue;
        }
        if let Some(max) = max.filter(|_| job.stores_data()) {
            match open::room_left(conn, max) {
                Ok(()) => {}
                Err(StoreError::Full) => {
                    ran.push((job, Ran::Refused(StoreError::Full)));
                    continue;
                }
                Err(e) => {
                    broken = Some(e);
                    left.push(job);
                    continue;
                }
            }
        }
        if let Err(e) = c.run("SAVEPOINT unit") {
            broken = Some(e);
            left.push(job);
            continue;
        }
        let mut unit = Conn::new(conn);
        let kept = catch_unwind(AssertUnwindSafe(|| job.attempt(&mut unit)));
        let end = match kept {
            Ok(true) => c.run("RELEASE unit"),
            _ => c
                .run("ROLLBACK TO unit")
                .and_then(|()| c.run("RELEASE unit")),
        };
        let outcome = match kept {
            Ok(_) => Ran::Attempted,
            Err(_) => Ran::Refused(StoreError::other("a write unit panicked")),
        };
        ran.push((job, outcome));
        if let Err(e) = end {
            // Why the transaction went is best told by the unit's statement that ended it.
            broken = Some(unit.last_error.unwrap_or(e));
        } else if conn.is_autocommit() {
            broken = Some(
                unit.last_error
                    .unwrap_or_else(|| StoreError::other("the group transaction ended early")),
            );
        }
    }
    let healthy = broken.is_none();
    let committed = match broken {
        None => c.run("COMMIT"),
        Some(e) => Err(e),
    };
    if committed.is_err() && !conn.is_autocommit() {
        let _ = c.run("ROLLBACK");
    }
    let mut answers: Vec<Answer> = ran
        .into_iter()
        .map(|(job, ran)| match ran {
            Ran::Attempted => (job, committed.clone()),
            Ran::Refused(e) => (job, Err(e)),
        })
        .collect();
    // Not run on a connection in doubt; the caller may try again at once.
    answers.extend(left.into_iter().map(|job| (job, Err(StoreError::Busy))));
    (answers, healthy && committed.is_ok())
}
