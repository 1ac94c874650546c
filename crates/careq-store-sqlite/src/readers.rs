//! The readers: a fixed set of OS threads, each owning one read-only connection, taking jobs
//! from one shared queue. A read unit runs inside one read transaction, so everything it reads
//! is the database as of one moment while the writer goes on (WAL).
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use careq_store::{ReadJob, StoreError};
use rusqlite::Connection;

use crate::access::Conn;

/// What a reader runs.
pub enum Job {
    /// A read unit, in a read transaction.
    Unit(ReadJob),
    /// Engine work on the bare connection, outside any transaction (`VACUUM INTO` must be).
    Raw(Box<dyn FnOnce(&Connection) + Send>),
}

/// A reader thread's body: runs jobs until the queue is closed and empty.
pub fn run(conn: Connection, queue: Arc<Mutex<Receiver<Job>>>) {
    loop {
        // The lock is held only while waiting: the reader that holds it takes the next job.
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        match job {
            Job::Unit(unit) => run_unit(&conn, unit),
            Job::Raw(f) => {
                let _ = catch_unwind(AssertUnwindSafe(|| f(&conn)));
            }
        }
        end(&conn);
    }
}

/// Runs a read unit on `conn` on the calling thread.
pub fn run_here(conn: &Connection, unit: ReadJob) {
    run_unit(conn, unit);
    end(conn);
}

/// Whatever a unit left open is ended before the connection's next unit.
fn end(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn run_unit(conn: &Connection, unit: ReadJob) {
    let mut c = Conn::new(conn);
    match c.run("BEGIN") {
        // A panicking unit drops its answer channel: its caller hears the unit was dropped.
        Ok(()) => {
            let _ = catch_unwind(AssertUnwindSafe(|| unit(Ok(&mut c))));
            // Only reads happened: ending the transaction either way is the same.
            let _ = c.run("COMMIT");
        }
        Err(e) => unit(Err(e)),
    }
}

/// The answer for a read refused before it reached a reader.
pub fn refuse(job: Job) {
    if let Job::Unit(unit) = job {
        unit(Err(StoreError::Busy));
    }
}
