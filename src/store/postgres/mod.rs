//! The PostgreSQL engine: pooled connections, one transaction per unit of work, migrations, and
//! the one place PostgreSQL's failures are classified. Every SQL statement careq runs on
//! PostgreSQL is in this module and its children, one per feature.
//!
//! Writes rely on PostgreSQL's own concurrency, not on a single writer: counters are bumped with
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING` (the row stays locked until commit, so numbers
//! are gap-free), versioned updates re-check their `WHERE` after waiting for a row lock, and the
//! few checks that have no unique key to lean on (a duplicate person, an overlapping
//! appointment, the next ticket to call) take a transaction-scoped lock first. Several careq
//! processes can therefore share one database.
mod access;
mod appointments;
mod clinics;
mod jobs;
mod notify;
mod patients;
mod queue;
mod settings;
mod tokens;
mod tx;
mod users;

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use super::{Engine, LogRow, Options, StoreError, Tx, Unit};
use crate::error::ApiError;
use tx::PgTx;

/// How often a unit that lost a serialization race or a deadlock is run again before 503.
const RETRIES: u32 = 3;

/// Opens the PostgreSQL engine (what `Store::open` does for a `postgres:` URL).
pub async fn open(o: Options) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(Arc::new(PgEngine::open(o).await?))
}

/// PostgreSQL as careq runs it: a pool of read-only connections for reads and a pool for units
/// of work, each unit one transaction on one pooled connection.
pub struct PgEngine {
    inner: Arc<Inner>,
    fanout: notify::Fanout,
}

struct Inner {
    read: PgPool,
    write: PgPool,
    /// Units of work waiting for a connection or running now.
    depth: AtomicUsize,
    /// Units that may wait before writes answer 503.
    write_queue: usize,
    max_bytes: Option<u64>,
    /// `pg_database_size` as last measured, and when (ms since `started`).
    size: AtomicI64,
    size_at: AtomicI64,
    started: Instant,
}

impl PgEngine {
    /// Connects, migrates, and opens the two pools. `synchronous_commit` stays at the server's
    /// setting (on by default): a unit is answered only once its commit is durable.
    pub async fn open(o: Options) -> anyhow::Result<PgEngine> {
        use anyhow::Context;
        let base = PgConnectOptions::from_str(&o.url)
            .with_context(|| format!("reading the database URL {}", redact(&o.url)))?
            .application_name("careq");
        // Waiting for a lock longer than the busy timeout is "busy" (503), as on SQLite.
        let lock_timeout = format!("{}ms", o.busy_timeout.as_millis().max(1));
        let write_opts = base
            .clone()
            .options([("lock_timeout", lock_timeout.as_str())]);
        let read_opts = base
            .clone()
            .options([("default_transaction_read_only", "on")]);
        let mut conn = sqlx::PgConnection::connect_with(&write_opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", redact(&o.url)))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await
            .context("migrating the database")?;
        patients::backfill_search_keys(&mut conn)
            .await
            .context("giving stored patients their search keys")?;
        patients::rekey_identities(&mut conn)
            .await
            .context("giving stored patients their duplicate keys")?;
        let _ = conn.close().await;
        let size = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 4)
            .clamp(8, 32) as u32;
        let acquire = o.busy_timeout + Duration::from_secs(1);
        // No test query on every acquire (one more round trip per request): sqlx already tests
        // a connection when it is released. A connection the server dropped meanwhile fails
        // its first statement: a unit then starts again on another (see run_unit); a read
        // answers 503 once, and the connection is not reused.
        let write = PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(acquire)
            .test_before_acquire(false)
            .connect_lazy_with(write_opts);
        let read = PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(acquire)
            .test_before_acquire(false)
            .connect_lazy_with(read_opts);
        Ok(PgEngine {
            fanout: notify::Fanout::new(write.clone()),
            inner: Arc::new(Inner {
                read,
                write,
                depth: AtomicUsize::new(0),
                write_queue: o.write_queue.max(1),
                max_bytes: o.max_bytes,
                size: AtomicI64::new(0),
                size_at: AtomicI64::new(i64::MIN),
                started: Instant::now(),
            }),
        })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Counts a unit in `depth` for as long as it lives (also if its task panics).
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.depth.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inner {
    /// Runs a unit in its own transaction, again from the start (after a short, jittered pause)
    /// when PostgreSQL aborted it for a serialization failure or a deadlock — never when the
    /// unit itself refused (its `ApiError` is the answer).
    async fn run_unit(&self, unit: Unit, data: bool) -> Result<Box<dyn Any + Send>, ApiError> {
        if let Some(max) = self.max_bytes.filter(|_| data) {
            self.check_room(max).await?;
        }
        let mut attempt = 0;
        loop {
            let mut conn = self.write.acquire().await.map_err(classify)?;
            let mut tx = match conn.begin().await {
                Ok(tx) => tx,
                // A pooled connection the server dropped meanwhile (a restart, a failover, an
                // idle timeout) fails at BEGIN, before anything of the unit was sent: the unit
                // starts again on another connection (sqlx tests this one as it goes back to
                // the pool, and closes it).
                Err(e) if attempt < RETRIES && is_lost(&e) => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(classify(e).into()),
            };
            let mut ptx = PgTx::in_transaction(&mut tx);
            let out = AssertUnwindSafe(unit(&mut ptx))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(ApiError::internal("a unit of work panicked")));
            let lost_race = ptx.lost_race();
            match out {
                Ok(v) => match tx.commit().await {
                    Ok(()) => return Ok(v),
                    Err(e) if is_race(&e) => {}
                    Err(e) => return Err(classify(e).into()),
                },
                Err(refusal) => {
                    // A failed rollback leaves the connection in doubt: it is closed, not
                    // returned (sqlx tests it on release).
                    let _ = tx.rollback().await;
                    if !lost_race {
                        return Err(refusal);
                    }
                }
            }
            // PostgreSQL aborted the unit for concurrency alone: run it again.
            drop(conn);
            if attempt < RETRIES {
                attempt += 1;
                let jitter = rand::random::<u64>() % (10 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
                continue;
            }
            return Err(StoreError::Busy.into());
        }
    }

    /// 507 once the database's size reaches `max`. `pg_database_size` walks the database's
    /// files, so it is measured at most once a second and shared by every unit meanwhile.
    async fn check_room(&self, max: u64) -> Result<(), ApiError> {
        let now = self.started.elapsed().as_millis() as i64;
        let at = self.size_at.load(Ordering::Relaxed);
        let size = if now.saturating_sub(at) < 1000 {
            self.size.load(Ordering::Relaxed)
        } else {
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&self.read)
                .await
                .map_err(classify)?;
            self.size.store(size, Ordering::Relaxed);
            self.size_at.store(now, Ordering::Relaxed);
            size
        };
        if size.max(0) as u64 >= max {
            return Err(ApiError::InsufficientStorage);
        }
        Ok(())
    }
}

#[async_trait]
impl Engine for PgEngine {
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        // Autocommit on a read-only connection: no transaction is ever open on it, so a read
        // dropped halfway (its client gone) cannot hand a connection back mid-transaction.
        let conn = self.inner.read.acquire().await.map_err(classify)?;
        Ok(Box::new(PgTx::pooled(conn)))
    }

    async fn run(&self, unit: Unit, data: bool) -> Result<Box<dyn Any + Send>, ApiError> {
        let inner = self.inner.clone();
        if inner.depth.fetch_add(1, Ordering::Relaxed) >= inner.write_queue {
            inner.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::ServiceUnavailable {
                detail: "too many writes are waiting; try again shortly".into(),
                retry_after: 1,
            });
        }
        // The unit runs on its own task: it commits or rolls back whole even when the request
        // that started it is dropped (a client hanging up), so no connection goes back to the
        // pool inside a transaction.
        let counted = InFlight(inner.clone());
        let task = tokio::spawn(async move {
            let _counted = counted;
            inner.run_unit(unit, data).await
        });
        task.await
            .unwrap_or_else(|_| Err(ApiError::internal("a unit of work panicked")))
    }

    async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let mut conn = inner.write.acquire().await.map_err(classify)?;
            let rows: Vec<&LogRow> = rows.iter().collect();
            // One multi-row INSERT per hundred rows, each its own (atomic) statement.
            access::append_rows(&mut conn, &rows)
                .await
                .map_err(classify)?;
            Ok::<_, StoreError>(())
        });
        match task.await {
            Ok(r) => r.map_err(ApiError::from),
            Err(_) => Err(ApiError::internal("appending the access log panicked")),
        }
    }

    async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.inner.read)
            )
            .await,
            Ok(Ok(1))
        )
    }

    /// Units of work waiting for a connection or running now.
    fn queue_depth(&self) -> usize {
        self.inner.depth.load(Ordering::Relaxed)
    }

    /// careq does not copy a PostgreSQL database itself: `pg_dump` (or the server's own
    /// backups and replicas) does, consistently and while careq serves.
    async fn backup(&self, _to: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Other(
            "careq backup copies SQLite files only; back up PostgreSQL with pg_dump \
             (e.g. `pg_dump --format=custom --file=careq.dump DATABASE_URL`)"
                .into(),
        ))
    }

    fn announce(&self, payload: String) {
        self.fanout.announce(payload)
    }

    fn announcements(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.fanout.subscribe())
    }

    async fn close(&self) {
        self.inner.read.close().await;
        self.inner.write.close().await;
    }
}

/// Whether PostgreSQL aborted the transaction for concurrency alone (serialization failure,
/// deadlock): running the unit again may well succeed.
fn is_race(err: &sqlx::Error) -> bool {
    matches!(sqlstate(err).as_deref(), Some("40001") | Some("40P01"))
}

/// Whether the connection itself is gone (broken socket, or the server ended the session).
fn is_lost(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_))
        || matches!(sqlstate(err).as_deref(), Some("57P01" | "57P02" | "57P03"))
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The one place PostgreSQL's failures get their storage class (SQLSTATE codes).
pub(crate) fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Busy,
        // The server went away or the connection broke.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => StoreError::Busy,
        sqlx::Error::Database(_) => match sqlstate(&err).as_deref() {
            Some("23505") => StoreError::Conflict,
            // serialization_failure, deadlock_detected (retried first), lock_not_available
            // (lock_timeout: held past the busy timeout), too_many_connections,
            // cannot_connect_now, admin/crash shutdown.
            Some("40001" | "40P01" | "55P03" | "53300" | "57P03" | "57P01" | "57P02") => {
                StoreError::Busy
            }
            // disk_full
            Some("53100") => StoreError::Full,
            _ => StoreError::Other(err.to_string()),
        },
        _ => StoreError::Other(err.to_string()),
    }
}

#[cfg(test)]
mod tests;
