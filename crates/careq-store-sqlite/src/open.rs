//! Options, and opening the file and its connections as careq runs them: created owner-only,
//! WAL with `synchronous=FULL` (a commit is on disk before anyone hears of it), foreign keys
//! on, a busy timeout; a size cap enforced by SQLite itself a little above the configured one.
use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use careq_store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::classify;

/// How the engine opens and runs the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created (0600) when missing.
    pub path: PathBuf,
    /// How long a connection waits for a lock held by another process before `Busy`.
    pub busy_timeout: Duration,
    /// Write units that may wait for the writer; one more is refused with `Busy` at once.
    pub write_queue: usize,
    /// Read units that may wait for a reader; one more is refused with `Busy` at once.
    pub read_queue: usize,
    /// Reader threads, each with its own read-only connection.
    pub readers: usize,
    /// Read-only connections kept for key lookups run on the caller's thread.
    pub readers_here: usize,
    /// Data units are refused with `Full` once the data reaches this many bytes.
    pub max_bytes: Option<u64>,
}

impl SqliteOptions {
    /// careq's defaults for `path`: readers twice the cores (at least 4).
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SqliteOptions {
            path: path.into(),
            busy_timeout: Duration::from_secs(5),
            write_queue: 4096,
            read_queue: 4096,
            readers: (cores * 2).max(4),
            readers_here: cores.max(2),
            max_bytes: None,
        }
    }
}

/// Creates `path` empty and owner-only unless it exists. SQLite gives the `-wal` and `-shm`
/// files it makes beside it the database file's mode, so they are private too.
pub fn create_private(path: &Path) -> Result<bool, StoreError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // The umask can only take bits away; setting the mode again makes it exact.
        Ok(f) => f
            .set_permissions(Permissions::from_mode(0o600))
            .map(|()| true)
            .map_err(|e| StoreError::Other(format!("making the database file private: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::Other(format!(
            "creating the database file: {e}"
        ))),
    }
}

/// The writer's connection. Without `SQLITE_OPEN_CREATE`: the file was made owner-only first,
/// and if it vanished since, SQLite must not create it again under the umask.
pub fn writer(o: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&o.path, flags).map_err(classify)?;
    conn.busy_timeout(o.busy_timeout).map_err(classify)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Other(format!("the journal mode stayed {mode}")));
    }
    // The writer touches index pages all over the big tables' indexes: 32 MiB of page cache
    // keeps them from being read again on every group.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(classify)?;
    conn.set_prepared_statement_cache_capacity(256);
    if let Some(max) = o.max_bytes {
        cap_size(&conn, max)?;
    }
    Ok(conn)
}

/// The checkpointer's connection: it writes only the database file, from the log.
pub fn checkpointer(o: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&o.path, flags).map_err(classify)?;
    conn.busy_timeout(o.busy_timeout).map_err(classify)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")
        .map_err(classify)?;
    Ok(conn)
}

/// A reader's connection: SQLite itself refuses any write on it.
pub fn reader(o: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&o.path, flags).map_err(classify)?;
    conn.busy_timeout(o.busy_timeout).map_err(classify)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Caps the file a little above `max` bytes: data units stop at `max` itself ([`room_left`]);
/// the reserve above it keeps units that store no data (access-log rows of reads) possible
/// when the data is full. Past the hard cap SQLite fails writes with SQLITE_FULL.
fn cap_size(conn: &Connection, max: u64) -> Result<(), StoreError> {
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(classify)?;
    let page = page.max(1) as u64;
    let hard = max + (max / 10).max(64 * page);
    let pages = (hard / page).max(1);
    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        .map_err(classify)
}

/// `Full` when the pages in use (free pages are reused first) reach `max` bytes.
pub fn room_left(conn: &Connection, max: u64) -> Result<(), StoreError> {
    let used: i64 = conn
        .prepare_cached(
            "SELECT (p.page_count - f.freelist_count) * s.page_size
             FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(classify)?;
    if used as u64 >= max {
        return Err(StoreError::Full);
    }
    Ok(())
}
