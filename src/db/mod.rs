//! The database: the one writer and the pool of read-only connections, opened from the URL,
//! migrations, and the one place where storage errors are classified into `ApiError`s.
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};

use crate::error::ApiError;
use writer::Writer;
pub use writer::{LogRow, UnitFuture};

/// The database as handlers see it: reads on a pool of read-only connections (they never take
/// the write lock), writes as units of work on the one writer (group commit).
#[derive(Clone)]
pub struct Db {
    read: SqlitePool,
    writer: Writer,
    max_bytes: Option<u64>,
}

/// How the database is opened.
pub struct Options {
    pub url: String,
    pub max_bytes: Option<u64>,
    pub busy_timeout: Duration,
    /// Units of work that may wait for the writer before writes answer 503.
    pub write_queue: usize,
}

impl Db {
    /// Opens (creating if missing) the SQLite file, migrates it on the writer's connection, and
    /// starts the writer and the read pool. WAL with `synchronous=FULL`: a commit is durable
    /// before any unit in it is answered.
    pub async fn open(o: Options) -> anyhow::Result<Db> {
        use anyhow::Context;
        let base = SqliteConnectOptions::from_str(&o.url)
            .with_context(|| format!("reading the database URL {}", o.url))?
            .busy_timeout(o.busy_timeout)
            .foreign_keys(true);
        let write_opts = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let max_bytes = o.max_bytes;
        let open_writer = move || {
            let opts = write_opts.clone();
            Box::pin(async move {
                let mut conn = opts.connect().await?;
                if let Some(max) = max_bytes {
                    cap_size(&mut conn, max).await?;
                }
                Ok(conn)
            }) as writer::ReopenFuture
        };
        let mut conn = open_writer()
            .await
            .with_context(|| format!("opening {}", o.url))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut conn)
            .await
            .context("migrating the database")?;
        let readers = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .max(4);
        let read = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            .acquire_timeout(o.busy_timeout + Duration::from_secs(1))
            .connect_with(base.read_only(true))
            .await
            .context("opening the read pool")?;
        Ok(Db {
            read,
            writer: Writer::start(conn, o.write_queue, Box::new(open_writer)),
            max_bytes: o.max_bytes,
        })
    }

    /// A read-only connection.
    pub async fn read(&self) -> Result<PoolConnection<Sqlite>, ApiError> {
        Ok(self.read.acquire().await?)
    }

    /// The read-only pool, for single queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.read
    }

    /// Runs a unit of work on the writer; answered once it is durably committed.
    pub async fn write<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> UnitFuture<'c, T> + Send + 'static,
    {
        self.writer.write(unit).await
    }

    /// A unit that stores data: refused with 507 once the live data reaches the size cap
    /// (access-log entries of reads use `write`, which keeps the reserve above the cap).
    pub async fn write_data<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> UnitFuture<'c, T> + Send + 'static,
    {
        let max = self.max_bytes;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(max) = max {
                        check_room(conn, max).await?;
                    }
                    unit(conn).await
                })
            })
            .await
    }

    /// Appends access-log rows with the next group commit (the fast path for reads' entries).
    pub async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        self.writer.append_log(rows).await
    }

    /// Units waiting for the writer now.
    pub fn write_queue_depth(&self) -> usize {
        self.writer.depth()
    }

    pub async fn close(&self) {
        self.read.close().await;
    }
}

/// How the CLI opens the database: no size cap, a short queue.
pub fn cli_options(url: &str) -> Options {
    Options {
        url: url.to_string(),
        max_bytes: None,
        busy_timeout: Duration::from_secs(5),
        write_queue: 64,
    }
}

/// 507 once the live data (pages in use, not counting free pages a deletion left) reaches `max`.
async fn check_room(conn: &mut SqliteConnection, max: u64) -> Result<(), ApiError> {
    let used: i64 = sqlx::query_scalar(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
    )
    .fetch_one(conn)
    .await?;
    if used as u64 >= max {
        return Err(ApiError::InsufficientStorage);
    }
    Ok(())
}

/// The read-only pool (`Db::pool`): what read queries take.
pub type Pool = SqlitePool;

/// What a 503 caused by the database tells clients to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Caps the file a little above `max` bytes: data writes stop at `max` itself (`check_room`),
/// and the reserve above it keeps access-log entries for reads possible when the data is full.
/// Past the hard cap SQLite fails writes with SQLITE_FULL, which `failure` turns into 507.
async fn cap_size(conn: &mut sqlx::SqliteConnection, max: u64) -> Result<(), sqlx::Error> {
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let max = max + (max / 10).max(64 * page.max(1) as u64);
    let pages = (max / page.max(1) as u64).max(1);
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the database answers a trivial query quickly.
pub async fn ping(pool: &SqlitePool) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(pool)
        )
        .await,
        Ok(Ok(1))
    )
}

/// The kinds of storage failure the API distinguishes.
#[derive(Debug, PartialEq, Eq)]
pub enum DbFailure {
    NotFound,
    Unique,
    Full,
    Busy,
    Other,
}

/// Classifies a storage error by SQLite's (extended) result codes.
pub fn failure(err: &sqlx::Error) -> DbFailure {
    match err {
        sqlx::Error::RowNotFound => DbFailure::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => DbFailure::Busy,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            Some("2067") | Some("1555") => DbFailure::Unique,
            // SQLITE_FULL
            Some("13") => DbFailure::Full,
            // SQLITE_BUSY, SQLITE_LOCKED and their extended forms
            Some(c) if matches!(c.parse::<i32>().map(|n| n & 0xff), Ok(5) | Ok(6)) => {
                DbFailure::Busy
            }
            _ => DbFailure::Other,
        },
        sqlx::Error::Io(e) if e.raw_os_error() == Some(28) => DbFailure::Full,
        _ => DbFailure::Other,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match failure(&err) {
            DbFailure::NotFound => ApiError::NotFound("no such resource".into()),
            DbFailure::Unique => ApiError::Conflict {
                detail: "a resource with the same unique key already exists".into(),
                existing: None,
            },
            DbFailure::Full => ApiError::InsufficientStorage,
            DbFailure::Busy => ApiError::ServiceUnavailable {
                detail: "the database is busy; try again shortly".into(),
                retry_after: RETRY_AFTER_SECS,
            },
            DbFailure::Other => ApiError::internal(format!("database: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_temp(dir: &tempfile::TempDir) -> Db {
        Db::open(Options {
            url: format!("sqlite://{}", dir.path().join("w.db").display()),
            max_bytes: None,
            busy_timeout: Duration::from_secs(5),
            write_queue: 4096,
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_failing_unit_rolls_back_alone_and_the_rest_of_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_temp(&dir).await;
        let writes = (0..200i64).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, 'x')")
                            .bind(format!("k{i}"))
                            .execute(&mut *conn)
                            .await?;
                        if i % 10 == 0 {
                            return Err(ApiError::Conflict {
                                detail: "refused".into(),
                                existing: None,
                            });
                        }
                        if i == 7 {
                            panic!("a unit that panics");
                        }
                        Ok(i)
                    })
                })
                .await
            })
        });
        let outcomes: Vec<_> = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(ok, 179);
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(stored, 179, "exactly the units that succeeded are stored");
        // The writer still works after a panic and refusals.
        assert_eq!(db.write(|_| Box::pin(async { Ok(1) })).await.unwrap(), 1);
        assert_eq!(db.write_queue_depth(), 0);
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_temp(&dir).await;
        let err = sqlx::query("INSERT INTO meta (key, value) VALUES ('r', 'x')")
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }
    #[tokio::test]
    async fn storage_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_temp(&dir).await;
        let insert = |db: Db| async move {
            db.write(|conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO meta (key, value) VALUES ('a', 'x')")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
        };
        insert(db.clone()).await.unwrap();
        assert_eq!(insert(db.clone()).await.unwrap_err().status().code, 409);
        let none = sqlx::query_scalar::<_, String>("SELECT key FROM meta WHERE key = 'z'")
            .fetch_one(db.pool())
            .await
            .unwrap_err();
        assert_eq!(failure(&none), DbFailure::NotFound);
        assert_eq!(ApiError::from(none).status().code, 404);
    }

    #[tokio::test]
    async fn a_size_cap_turns_growth_into_507() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(Options {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            max_bytes: Some(256 * 1024),
            busy_timeout: Duration::from_secs(5),
            write_queue: 16,
        })
        .await
        .unwrap();
        let mut last = Ok(());
        for _ in 0..200 {
            last = db
                .write(|conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO meta (key, value) VALUES (hex(randomblob(16)), zeroblob(8192))")
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                })
                .await;
            if last.is_err() {
                break;
            }
        }
        let err = last.unwrap_err();
        assert_eq!(err.status().code, 507, "{err:?}");
        // Data writes stop at the cap itself, before the reserve above it is used up.
        let data = db.write_data(|_| Box::pin(async { Ok(()) })).await;
        let err = data.unwrap_err();
        assert_eq!(err.status().code, 507, "{err:?}");
    }
}
