//! The threads units run on. Each owns one connection (opened again, with back-off, after it
//! broke) and takes jobs from its pool's queue: a writer runs each unit in a transaction of its
//! own, again from the start when PostgreSQL aborted it for concurrency alone; a reader runs
//! read units on its read-only session.
use std::hash::{BuildHasher, RandomState};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use careq_store::{ReadExt, ReadJob, StoreError, WriteJob};
use postgres::{Config, NoTls};
use tokio::sync::oneshot;

use crate::error::Side;
use crate::queue::{Popped, Queue};
use crate::session::{Conn, Session};

/// How often a unit that lost a serialization race or a deadlock runs again before `Busy`.
const RETRIES: u32 = 3;
/// How long `ping` waits for the server.
const PING: Duration = Duration::from_secs(2);

/// What the engine and its threads share.
pub(crate) struct Shared {
    pub writes: Queue<Box<dyn WriteJob>>,
    pub reads: Queue<ReadTask>,
    /// Write units waiting or running now.
    pub depth: AtomicUsize,
    pub max_bytes: Option<u64>,
    /// `pg_database_size` as last measured, and when (ms since `started`).
    size: AtomicI64,
    size_at: AtomicI64,
    started: Instant,
}

impl Shared {
    pub fn new(write_queue: usize, read_queue: usize, max_bytes: Option<u64>) -> Shared {
        Shared {
            writes: Queue::new(write_queue),
            reads: Queue::new(read_queue),
            depth: AtomicUsize::new(0),
            max_bytes,
            size: AtomicI64::new(0),
            size_at: AtomicI64::new(i64::MIN),
            started: Instant::now(),
        }
    }
}

/// What a reader is asked to do.
pub(crate) enum ReadTask {
    Unit(ReadJob),
    Ping(oneshot::Sender<bool>),
}

/// A thread's connection: opened on demand, and after a failure not before its back-off
/// elapsed (units meanwhile get `Busy` at once rather than wait).
pub(crate) struct Link {
    config: Config,
    /// Run on each new connection before its first unit.
    init: Option<&'static str>,
    conn: Option<Conn>,
    retry_at: Instant,
    backoff: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(5);

impl Link {
    pub fn new(config: Config, init: Option<&'static str>) -> Link {
        Link {
            config,
            init,
            conn: None,
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
        }
    }

    fn get(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.is_none() {
            if Instant::now() < self.retry_at {
                return Err(StoreError::Busy);
            }
            let connected = self.config.connect(NoTls).and_then(|mut client| {
                if let Some(init) = self.init {
                    client.batch_execute(init)?;
                }
                Ok(client)
            });
            match connected {
                Ok(client) => {
                    self.conn = Some(Conn::new(client));
                    self.backoff = FIRST_BACKOFF;
                }
                Err(_) => {
                    self.retry_at = Instant::now() + jitter(self.backoff);
                    self.backoff = (self.backoff * 2).min(LAST_BACKOFF);
                    return Err(StoreError::Busy);
                }
            }
        }
        self.conn.as_mut().ok_or(StoreError::Busy)
    }
}

/// `d` plus up to half again, so threads that lost their connections together spread out.
fn jitter(d: Duration) -> Duration {
    let r = RandomState::new().hash_one(Instant::now());
    d + d.mul_f64((r % 1000) as f64 / 2000.0)
}

/// How long a thread keeps its connection without a unit to run: a process that is quiet
/// holds none of the server's connections.
const IDLE: Duration = Duration::from_secs(5);

/// A writer connects when a unit arrives, not before, and lets go of its connection after
/// [`IDLE`] without one.
pub(crate) fn writer(shared: &Shared, mut link: Link) {
    loop {
        match shared.writes.pop(IDLE) {
            Popped::Job(job) => {
                run_write(shared, &mut link, job);
                shared.depth.fetch_sub(1, Ordering::Relaxed);
            }
            Popped::Idle => link.conn = None,
            Popped::Closed => return,
        }
    }
}

/// A reader connects when a unit arrives and lets go when idle, as a writer does.
pub(crate) fn reader(shared: &Shared, mut link: Link) {
    loop {
        let task = match shared.reads.pop(IDLE) {
            Popped::Job(task) => task,
            Popped::Idle => {
                link.conn = None;
                continue;
            }
            Popped::Closed => return,
        };
        match task {
            ReadTask::Unit(job) => {
                let conn = match link.get() {
                    Ok(conn) => conn,
                    Err(e) => {
                        job(Err(e));
                        continue;
                    }
                };
                let mut s = Session::new(conn, Side::Reader);
                // Autocommit on a read-only session: a unit that panicked left no transaction
                // open, so the connection stays in use.
                let _ = catch_unwind(AssertUnwindSafe(|| job(Ok(&mut s))));
                if s.lost {
                    link.conn = None;
                }
            }
            ReadTask::Ping(reply) => {
                let ok = link.get().is_ok_and(|c| c.client.is_valid(PING).is_ok());
                if !ok {
                    link.conn = None;
                }
                let _ = reply.send(ok);
            }
        }
    }
}

/// What came of one attempt.
enum Step {
    Done(Result<(), StoreError>),
    Again,
}

fn run_write(shared: &Shared, link: &mut Link, mut job: Box<dyn WriteJob>) {
    if let Some(max) = shared.max_bytes.filter(|_| job.stores_data()) {
        if let Err(e) = room(shared, link, max) {
            return job.finish(Err(e));
        }
    }
    let mut tries = 0;
    loop {
        let conn = match link.get() {
            Ok(conn) => conn,
            Err(e) => return job.finish(Err(e)),
        };
        let mut s = Session::new(conn, Side::Writer);
        // READ COMMITTED whatever the server's default: careq's units are written for it
        // (rows they must keep as read are held; versioned updates re-check their WHERE).
        if let Err(e) = s.batch("BEGIN ISOLATION LEVEL READ COMMITTED") {
            // A connection the server dropped while it was idle (a restart, a failover) fails
            // here, before anything of the unit ran: the unit starts again on a new one.
            let lost = s.lost;
            if lost {
                link.conn = None;
            }
            if lost && tries < RETRIES {
                tries += 1;
                continue;
            }
            return job.finish(Err(e));
        }
        let step = attempt(&mut s, job.as_mut());
        if s.lost {
            link.conn = None;
        }
        match step {
            Step::Done(outcome) => return job.finish(outcome),
            Step::Again if tries < RETRIES => {
                tries += 1;
                std::thread::sleep(jitter(Duration::from_millis(5 * u64::from(tries))));
            }
            Step::Again => return job.finish(Err(StoreError::Busy)),
        }
    }
}

/// One attempt of a unit in the transaction `s` has begun, ended by COMMIT or ROLLBACK.
fn attempt(s: &mut Session<'_>, job: &mut dyn WriteJob) -> Step {
    let kept = catch_unwind(AssertUnwindSafe(|| job.attempt(s)));
    match kept {
        Ok(true) if !s.aborted => match s.batch("COMMIT") {
            Ok(()) => Step::Done(Ok(())),
            Err(_) if s.race => Step::Again,
            // Whether a COMMIT that lost its connection took effect is unknown: `Busy`.
            Err(e) => Step::Done(Err(e)),
        },
        Ok(kept) => {
            let undone = s.batch("ROLLBACK");
            if s.race {
                // PostgreSQL aborted the unit for concurrency alone: never its own refusal.
                return Step::Again;
            }
            if kept {
                // The unit went on after a statement failed; PostgreSQL had aborted the
                // transaction, so nothing of it could be kept.
                return Step::Done(Err(StoreError::Other(
                    "a unit succeeded after one of its statements failed; nothing was kept \
                     (undo a part that may fail with a savepoint)"
                        .into(),
                )));
            }
            Step::Done(undone)
        }
        Err(_) => {
            let _ = s.batch("ROLLBACK");
            Step::Done(Err(StoreError::other("a unit of work panicked")))
        }
    }
}

/// `Full` once the database's size reaches `max`. `pg_database_size` walks the database's
/// files, so it is measured at most once a second and shared by every unit meanwhile.
fn room(shared: &Shared, link: &mut Link, max: u64) -> Result<(), StoreError> {
    let now = i64::try_from(shared.started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let size = if now.saturating_sub(shared.size_at.load(Ordering::Relaxed)) < 1000 {
        shared.size.load(Ordering::Relaxed)
    } else {
        let mut s = Session::new(link.get()?, Side::Writer);
        let size = s.int("SELECT pg_database_size(current_database())", &[]);
        if s.lost {
            link.conn = None;
        }
        let size = size?.unwrap_or(0);
        shared.size.store(size, Ordering::Relaxed);
        shared.size_at.store(now, Ordering::Relaxed);
        size
    };
    if u64::try_from(size).unwrap_or(0) >= max {
        return Err(StoreError::Full);
    }
    Ok(())
}
