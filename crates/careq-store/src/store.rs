//! The [`Store`] handle and the [`Engine`] seam. A unit's closure travels to the engine's thread
//! inside a job that also carries the channel its typed answer comes back on, so the engine
//! sees only `dyn ReadJob` / `dyn WriteJob` and the caller gets its own `Result<T, E>`.
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::{Dialect, Read, StoreError, Write};

/// A read unit as an engine runs it: called once with a read-only connection, or with the
/// error that kept the engine from getting one.
pub type ReadJob = Box<dyn FnOnce(Result<&mut dyn Read, StoreError>) + Send>;

/// A write unit as an engine runs it.
pub trait WriteJob: Send {
    /// Whether the unit stores data, so that a database at its size cap refuses it (reads'
    /// access-log rows do not, and may use the reserve above the cap).
    fn stores_data(&self) -> bool;
    /// Runs the unit once: true when it succeeded (keep what it did), false when it refused
    /// (undo what it did). An engine may call it again, in a fresh transaction, after the
    /// database aborted an attempt for concurrency alone — never after the unit's own refusal.
    fn attempt(&mut self, w: &mut dyn Write) -> bool;
    /// Called once at the end: `Ok` once what the last attempt kept is durably committed, or
    /// the error that kept it from being so (the unit may not have run at all: a full queue).
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// A database careq can run on: where units run. Engine crates implement it; each also offers
/// what only it has (backups, notifications between processes) on its own type.
pub trait Engine: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// Runs `job` on a read-only connection, or calls it with the error that prevented that.
    fn read(&self, job: ReadJob);
    /// Like [`Engine::read`], for a unit that reads a few rows by key: an engine may run it on
    /// the calling thread (no hand-off) when a connection is free there. The default hands it
    /// to [`Engine::read`].
    fn read_here(&self, job: ReadJob) {
        self.read(job)
    }
    /// Queues `job` for the writer(s). It runs to its end whether or not anyone still awaits
    /// its answer. A full queue or a stopped engine finishes it at once with `Busy`.
    fn write(&self, job: Box<dyn WriteJob>);
    /// Write units waiting or running now.
    fn queue_depth(&self) -> usize;
    /// Stops taking units; those already queued still run and are answered.
    fn close(&self);
}

/// The database as the app holds it. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
}

impl Store {
    pub fn new(engine: Arc<dyn Engine>) -> Store {
        Store { engine }
    }

    pub fn dialect(&self) -> Dialect {
        self.engine.dialect()
    }

    /// Runs `unit` on a read-only connection and answers what it returns.
    pub async fn read<T, E, F>(&self, unit: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Read) -> Result<T, E> + Send + 'static,
    {
        self.read_on(unit, false).await
    }

    /// A read of a few rows by key (a token, one record): may run on the caller's own thread,
    /// sparing two thread hand-offs. Not for searches, lists or anything that may take long:
    /// on the caller's thread it holds up that thread's other tasks while it runs.
    pub async fn lookup<T, E, F>(&self, unit: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Read) -> Result<T, E> + Send + 'static,
    {
        self.read_on(unit, true).await
    }

    async fn read_on<T, E, F>(&self, unit: F, here: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Read) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let out = match conn {
                Ok(conn) => unit(conn),
                Err(e) => Err(e.into()),
            };
            let _ = reply.send(out);
        });
        if here {
            self.engine.read_here(job);
        } else {
            self.engine.read(job);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::other("the engine dropped a read unit").into()))
    }

    /// Runs `unit` atomically and answers once it is durable. The unit may run more than once
    /// (each time in a fresh transaction, the earlier ones undone), hence `Fn`.
    pub async fn write<T, E, F>(&self, unit: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut dyn Write) -> Result<T, E> + Send + 'static,
    {
        self.run(unit, false).await
    }

    /// A unit that stores data: refused with `Full` once the database is at its size cap.
    pub async fn write_data<T, E, F>(&self, unit: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut dyn Write) -> Result<T, E> + Send + 'static,
    {
        self.run(unit, true).await
    }

    async fn run<T, E, F>(&self, unit: F, data: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut dyn Write) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.engine.write(Box::new(Unit {
            unit,
            data,
            last: None,
            reply,
        }));
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::other("the engine dropped a write unit").into()))
    }

    pub fn queue_depth(&self) -> usize {
        self.engine.queue_depth()
    }

    pub fn close(&self) {
        self.engine.close()
    }
}

/// A typed write unit with the answer of its last attempt, kept until the commit decides.
struct Unit<F, T, E> {
    unit: F,
    data: bool,
    last: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> WriteJob for Unit<F, T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: Fn(&mut dyn Write) -> Result<T, E> + Send + 'static,
{
    fn stores_data(&self) -> bool {
        self.data
    }

    fn attempt(&mut self, w: &mut dyn Write) -> bool {
        let out = (self.unit)(w);
        let ok = out.is_ok();
        self.last = Some(out);
        ok
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let answer = match (outcome, self.last) {
            (Ok(()), Some(out)) => out,
            // Its own refusal stands whatever became of the commit.
            (_, Some(Err(own))) => Err(own),
            (Err(e), _) => Err(e.into()),
            (Ok(()), None) => Err(StoreError::other("a unit was finished without running").into()),
        };
        let _ = self.reply.send(answer);
    }
}
