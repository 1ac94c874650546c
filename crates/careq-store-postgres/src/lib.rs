//! careq's PostgreSQL engine. Units are synchronous closures, so they run on threads of this
//! engine's own, each owning one connection: writers (each unit one READ COMMITTED
//! transaction, run again when PostgreSQL aborted it for concurrency alone) and readers (on
//! sessions that are read-only by default). Jobs wait in two bounded queues; a full queue
//! answers `Busy` at once. Several careq processes may share one database: PostgreSQL's own
//! locks keep their units apart, and migrations run under an advisory lock.
//!
//! The database URL is libpq's: several hosts (`postgres://h1:5432,h2:5433/db?
//! target_session_attrs=read-write`) are tried in order, so a connection opened after a
//! failover finds the new primary.
#![forbid(unsafe_code)]

mod error;
mod migrate;
mod queue;
mod session;
mod values;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use careq_store::{Dialect, Engine, ReadJob, StoreError, WriteJob};
use postgres::{Config, NoTls};
use tokio::sync::oneshot;

pub use migrate::Migration;
use worker::{Link, ReadTask, Shared};

/// How the engine is opened. Its `Debug` shows no password.
#[derive(Clone)]
pub struct PgOptions {
    /// A libpq URL (or key=value string); several hosts allowed.
    pub url: String,
    /// Writer threads (connections); 0: two per core, between 4 and 16.
    pub writers: usize,
    /// Reader threads (connections); 0: as for writers.
    pub readers: usize,
    /// Write units that may wait; beyond it writes answer `Busy` at once.
    pub write_queue: usize,
    /// Read units that may wait; beyond it reads answer `Busy` at once.
    pub read_queue: usize,
    /// How long a unit waits for a row or table lock before `Busy` (`lock_timeout`).
    pub busy_timeout: Duration,
    /// Units that store data are refused with `Full` once the database is this large.
    pub max_bytes: Option<u64>,
    /// Applied in order of version at open, each once.
    pub migrations: &'static [Migration],
}

impl PgOptions {
    /// The defaults careq runs with, for `url`.
    pub fn new(url: &str) -> PgOptions {
        PgOptions {
            url: url.to_string(),
            writers: 0,
            readers: 0,
            write_queue: 4096,
            read_queue: 4096,
            busy_timeout: Duration::from_secs(5),
            max_bytes: None,
            migrations: &[],
        }
    }
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("writers", &self.writers)
            .field("readers", &self.readers)
            .field("write_queue", &self.write_queue)
            .field("read_queue", &self.read_queue)
            .field("busy_timeout", &self.busy_timeout)
            .field("max_bytes", &self.max_bytes)
            .field("migrations", &self.migrations.len())
            .finish()
    }
}

/// A URL's password replaced by `***` (a key=value string's `password=` too).
fn redact(url: &str) -> String {
    if let (Some(s), Some(at)) = (url.find("://"), url.rfind('@')) {
        if let Some((user, _)) = url[s + 3..at.max(s + 3)].split_once(':') {
            return format!("{}{user}:***{}", &url[..s + 3], &url[at..]);
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// PostgreSQL as careq runs it.
pub struct PgEngine {
    shared: Arc<Shared>,
}

impl PgEngine {
    /// Connects, migrates, and starts the threads; from async code (it waits on a thread of
    /// its own, so no runtime is blocked).
    pub async fn open(o: PgOptions) -> Result<PgEngine, StoreError> {
        let (reply, answer) = oneshot::channel();
        std::thread::Builder::new()
            .name("careq-pg-open".into())
            .spawn(move || {
                let _ = reply.send(PgEngine::open_blocking(o));
            })
            .map_err(|e| StoreError::Other(format!("starting a thread: {e}")))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::other("opening the database panicked")))
    }

    /// `open` for a thread that may block (never one of an async runtime's).
    pub fn open_blocking(o: PgOptions) -> Result<PgEngine, StoreError> {
        let base = base_config(&o.url)?;
        let mut client = base
            .connect(NoTls)
            .map_err(|e| StoreError::Other(format!("cannot connect to {}: {e}", redact(&o.url))))?;
        migrate::run(&mut client, o.migrations)?;
        let _ = client.close();

        // Waiting for a lock longer than the busy timeout is "busy", as on SQLite.
        let lock_timeout = format!("-c lock_timeout={}", o.busy_timeout.as_millis().max(1));
        let write = with_option(&base, &lock_timeout);
        // Readers are read-only by a setting made once connected, not at startup: with it at
        // startup, `target_session_attrs=read-write` would take every server for a standby.
        // Readers then follow the primary as writers do (a unit reads what was committed).
        let read = base.clone();
        let shared = Arc::new(Shared::new(o.write_queue, o.read_queue, o.max_bytes));
        let engine = PgEngine {
            shared: shared.clone(),
        };
        let pool = |n: usize| if n == 0 { default_threads() } else { n };
        for i in 0..pool(o.writers) {
            let (shared, link) = (shared.clone(), Link::new(write.clone(), None));
            spawn(format!("careq-pg-w{i}"), move || {
                worker::writer(&shared, link)
            })?;
        }
        for i in 0..pool(o.readers) {
            let (shared, link) = (shared.clone(), Link::new(read.clone(), Some(READ_ONLY)));
            spawn(format!("careq-pg-r{i}"), move || {
                worker::reader(&shared, link)
            })?;
        }
        Ok(engine)
    }

    /// Whether a reader reaches the server (within two seconds).
    pub async fn ping(&self) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.shared.reads.push(ReadTask::Ping(reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

const READ_ONLY: &str = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY";

/// Two threads per core, between 4 and 16: a unit holds its thread while PostgreSQL works.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .clamp(4, 16)
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| StoreError::Other(format!("starting a thread: {e}")))
}

/// The URL's settings, with careq's defaults where the URL says nothing.
fn base_config(url: &str) -> Result<Config, StoreError> {
    let mut c: Config = url
        .parse()
        .map_err(|e| StoreError::Other(format!("reading the database URL: {e}")))?;
    if c.get_application_name().is_none() {
        c.application_name("careq");
    }
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(Duration::from_secs(5));
    }
    // A server that vanished without closing the socket (a dead host, a partition) fails the
    // statement in flight within this, rather than leaving the unit waiting for hours.
    if c.get_tcp_user_timeout().is_none() {
        c.tcp_user_timeout(Duration::from_secs(30));
    }
    Ok(c)
}

/// `c` with one more server setting, after any the URL gives.
fn with_option(c: &Config, option: &str) -> Config {
    let mut c = c.clone();
    let options = match c.get_options() {
        Some(given) => format!("{given} {option}"),
        None => option.to_string(),
    };
    c.options(&options);
    c
}

impl Engine for PgEngine {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn read(&self, job: ReadJob) {
        if let Err(ReadTask::Unit(job)) = self.shared.reads.push(ReadTask::Unit(job)) {
            job(Err(StoreError::Busy));
        }
    }

    fn write(&self, job: Box<dyn WriteJob>) {
        self.shared.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(job) = self.shared.writes.push(job) {
            self.shared.depth.fetch_sub(1, Ordering::Relaxed);
            job.finish(Err(StoreError::Busy));
        }
    }

    fn queue_depth(&self) -> usize {
        self.shared.depth.load(Ordering::Relaxed)
    }

    fn close(&self) {
        self.shared.writes.close();
        self.shared.reads.close();
    }
}

impl Drop for PgEngine {
    /// The threads finish what is queued, then end, closing their connections.
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres::config::{Host, TargetSessionAttrs};

    #[test]
    fn a_url_may_name_several_hosts_and_ask_for_the_read_write_one() {
        let c =
            base_config("postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write").unwrap();
        let hosts: Vec<_> = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.as_str(),
                _ => "a socket",
            })
            .collect();
        assert_eq!(hosts, ["h1", "h2"]);
        assert_eq!(c.get_ports(), [5432, 5433]);
        assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(c.get_application_name(), Some("careq"));
    }

    #[test]
    fn options_show_no_password() {
        let cases = [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h1:1,h2:2/db", "postgres://u@h1:1,h2:2/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "host=h password=secret user=u",
                "host=h password=*** user=u",
            ),
        ];
        for (url, shown) in cases {
            let debug = format!("{:?}", PgOptions::new(url));
            assert!(
                debug.contains(shown) && !debug.contains("secret"),
                "{debug}"
            );
        }
    }

    #[test]
    fn a_server_setting_is_added_after_those_the_url_gives() {
        let c = base_config("postgres://u@h/db?options=-c%20search_path%3Dx").unwrap();
        let c = with_option(&c, "-c lock_timeout=5000");
        assert_eq!(
            c.get_options(),
            Some("-c search_path=x -c lock_timeout=5000")
        );
    }
}
