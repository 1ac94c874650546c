//! The database: pool set-up from the URL, migrations, and the one place where storage errors
//! are classified into `ApiError`s.
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::ApiError;

pub type Pool = SqlitePool;

/// How long a write waits for SQLite's lock before the request answers 503.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// What a 503 caused by the database tells clients to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Opens (creating if missing) the SQLite database at `url`, in WAL mode with
/// `synchronous=FULL` so a commit is durable before it is acknowledged.
pub async fn connect(url: &str, max_bytes: Option<u64>) -> Result<Pool, sqlx::Error> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(BUSY_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if let Some(max) = max_bytes {
                    cap_size(conn, max).await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}

/// Caps the file at `max` bytes: SQLite then fails writes that would grow it with SQLITE_FULL,
/// which `classify` turns into 507.
async fn cap_size(conn: &mut sqlx::SqliteConnection, max: u64) -> Result<(), sqlx::Error> {
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let pages = (max / page.max(1) as u64).max(1);
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A write transaction. `BEGIN IMMEDIATE` takes SQLite's write lock up front, so concurrent
/// writers queue on the busy timeout instead of failing with a stale snapshot, and a
/// read-check-write (If-Match, duplicate checks) inside it cannot race.
pub async fn write_tx(
    pool: &Pool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Runs the embedded migrations.
pub async fn migrate(pool: &Pool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await
}

/// Whether the database answers a trivial query quickly.
pub async fn ping(pool: &Pool) -> bool {
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

    #[tokio::test]
    async fn storage_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = connect(&url, None).await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&pool)
            .await
            .unwrap();
        let dup = sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&pool)
            .await
            .unwrap_err();
        assert_eq!(failure(&dup), DbFailure::Unique);
        assert_eq!(ApiError::from(dup).status().code, 409);
        let none = sqlx::query_scalar::<_, String>("SELECT k FROM t WHERE k = 'z'")
            .fetch_one(&pool)
            .await
            .unwrap_err();
        assert_eq!(ApiError::from(none).status().code, 404);
    }

    #[tokio::test]
    async fn a_size_cap_turns_growth_into_507() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = connect(&url, Some(64 * 1024)).await.unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        let mut last = Ok(());
        for _ in 0..100 {
            last = sqlx::query("INSERT INTO t VALUES (zeroblob(8192))")
                .execute(&pool)
                .await
                .map(|_| ());
            if last.is_err() {
                break;
            }
        }
        let err = last.unwrap_err();
        assert_eq!(failure(&err), DbFailure::Full, "{err}");
        assert_eq!(ApiError::from(err).status().code, 507);
    }
}
