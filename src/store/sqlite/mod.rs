//! The SQLite engine: the one writer and the pool of read-only connections over one file,
//! migrations, and the classification of SQLite's failures. Every SQL statement careq runs is in
//! this module and its children, one per feature.
mod access;
mod appointments;
mod clinics;
mod jobs;
mod patients;
mod queue;
pub mod seed;
mod settings;
mod tokens;
mod users;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};

use super::{Engine, LogRow, Options, StoreError, Tx, Unit};
use crate::error::ApiError;
use writer::Writer;

/// Opens the SQLite engine (what `Store::open` does for a `sqlite:` URL).
pub async fn open(o: Options) -> anyhow::Result<std::sync::Arc<dyn Engine>> {
    Ok(std::sync::Arc::new(SqliteEngine::open(o).await?))
}

/// SQLite as careq runs it: reads on a pool of read-only connections (they never take the write
/// lock), writes as units of work on the one writer (group commit).
pub struct SqliteEngine {
    read: SqlitePool,
    writer: Writer,
    max_bytes: Option<u64>,
}

impl SqliteEngine {
    /// Opens (creating if missing) the SQLite file, migrates it on the writer's connection, and
    /// starts the writer and the read pool. WAL with `synchronous=FULL`: a commit is durable
    /// before any unit in it is answered.
    pub async fn open(o: Options) -> anyhow::Result<SqliteEngine> {
        use anyhow::Context;
        let base = SqliteConnectOptions::from_str(&o.url)
            .with_context(|| format!("reading the database URL {}", o.url))?
            .busy_timeout(o.busy_timeout)
            .foreign_keys(true);
        let write_opts = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // The writer touches index pages all over the access log's and patients' indexes:
            // 32 MiB of page cache keeps them from being re-read on every group.
            .pragma("cache_size", "-32768");
        if !(o.url.contains(":memory:") || o.url.contains("mode=memory")) {
            private_file(write_opts.get_filename());
        }
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
        let mut conn = open_writer().await.map_err(|e| open_error(&o.url, e))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut conn)
            .await
            .context("migrating the database")?;
        patients::backfill_search_keys(&mut conn)
            .await
            .context("giving stored patients their search keys")?;
        patients::rekey_identities(&mut conn)
            .await
            .context("giving stored patients their duplicate keys")?;
        let readers = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .max(4);
        let read = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            // A read-only connection to a local file does not go stale; a test query on every
            // acquire would cost each request one more hand-off to the connection's thread.
            .test_before_acquire(false)
            .acquire_timeout(o.busy_timeout + Duration::from_secs(1))
            .connect_with(base.read_only(true))
            .await
            .context("opening the read pool")?;
        Ok(SqliteEngine {
            read,
            writer: Writer::start(conn, o.write_queue, Box::new(open_writer)),
            max_bytes: o.max_bytes,
        })
    }
}

/// Creates the database file owner-only (0600) before SQLite opens it: SQLite gives the
/// `-wal` and `-shm` files it makes beside it the database file's mode. An existing file that
/// others may read is reported (its path and mode; never its contents). Any other failure is
/// left for SQLite's own open to report.
fn private_file(path: &std::path::Path) {
    match crate::private_files::create_new(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_file() => {
            if let Ok(Some(mode)) = crate::private_files::open_to_others(path) {
                tracing::warn!(
                    path = %path.display(),
                    mode = %format!("{mode:04o}"),
                    "the database file is readable by other users of this machine; \
                     `chmod 600` it (careq creates new ones 0600)"
                );
            }
        }
        Err(_) => {}
    }
}

/// Says which file could not be opened and, where it can tell, why.
fn open_error(url: &str, e: sqlx::Error) -> anyhow::Error {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    if std::path::Path::new(path).is_dir() {
        return anyhow::anyhow!(
            "cannot open the database file {path}: it is a directory; name a file in it, such \
             as sqlite://{}/careq.db",
            path.trim_end_matches('/')
        );
    }
    match dir {
        Some(d) if !d.is_dir() => anyhow::anyhow!(
            "cannot open the database file {path}: the directory {} does not exist",
            d.display()
        ),
        _ => anyhow::anyhow!("cannot open the database file {path}: {e}"),
    }
}

#[async_trait]
impl Engine for SqliteEngine {
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(SqliteTx::Pooled(self.read.acquire().await?)))
    }

    async fn run(&self, unit: Unit, data: bool) -> Result<Box<dyn std::any::Any + Send>, ApiError> {
        let max = self.max_bytes.filter(|_| data);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(max) = max {
                        check_room(conn, max).await?;
                    }
                    // SQLite's one writer never fails a unit for concurrency: it runs once.
                    let mut tx = SqliteTx::Borrowed(conn);
                    unit(&mut tx).await
                })
            })
            .await
    }

    async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        self.writer.append_log(rows).await
    }

    async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.read)
            )
            .await,
            Ok(Ok(1))
        )
    }

    fn queue_depth(&self) -> usize {
        self.writer.depth()
    }

    /// `VACUUM INTO` on a read connection: one read transaction, so the copy is the database as
    /// of one moment, compacted, while writers go on (WAL); the copy has no WAL of its own.
    /// The copy goes into an empty file made owner-only first (`VACUUM INTO` accepts an
    /// empty file and keeps its mode); it is removed again if the copy fails.
    async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError> {
        let name = to
            .to_str()
            .ok_or_else(|| StoreError::Other("the backup path is not UTF-8".into()))?;
        crate::private_files::create_new(to)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", to.display())))?;
        let mut conn = self.read.acquire().await?;
        let copied = settings::vacuum_into(&mut conn, name).await;
        if copied.is_err() {
            let _ = std::fs::remove_file(to);
        }
        copied
    }

    async fn close(&self) {
        self.read.close().await;
    }
}

/// A connection as the operations see it: the writer's (inside a unit's savepoint) or one
/// borrowed from the read pool.
pub(crate) enum SqliteTx<'c> {
    Borrowed(&'c mut SqliteConnection),
    Pooled(PoolConnection<Sqlite>),
}

impl SqliteTx<'_> {
    fn c(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteTx::Borrowed(c) => c,
            SqliteTx::Pooled(c) => c,
        }
    }
}

use crate::appointments::domain::{Appointment, AppointmentStatus, Filters as AppointmentFilters};
use crate::appointments::domain::{AppointmentRow, Slot};
use crate::auth::Role;
use crate::clinics::domain::{Clinic, ValidClinic};
use crate::patients::domain::{Patient, SearchFilters, StoredPatient, ValidPatient};
use crate::queue::domain::{NewTicket, Priority, Status, Ticket};
use crate::store::{ExportRow, ExportScope, JobEnd, JobProgress, JobRecord};
use crate::store::{LogEntry, LogFilter, Outcome, PatientMark, TokenOwner};
use crate::users::domain::{StoredUser, User, Username};

/// Each operation is one of the feature modules' functions on this connection.
#[async_trait]
impl Tx for SqliteTx<'_> {
    async fn savepoint(&mut self, name: &'static str) -> Result<(), StoreError> {
        settings::execute(self.c(), &[format!("SAVEPOINT {name}")]).await
    }
    async fn release(&mut self, name: &'static str) -> Result<(), StoreError> {
        settings::execute(self.c(), &[format!("RELEASE {name}")]).await
    }
    async fn rollback_to(&mut self, name: &'static str) -> Result<(), StoreError> {
        let sql = [format!("ROLLBACK TO {name}"), format!("RELEASE {name}")];
        settings::execute(self.c(), &sql).await
    }
    async fn find_patient(&mut self, id: &str) -> Result<Option<StoredPatient>, StoreError> {
        patients::find(self.c(), id).await
    }
    async fn next_mrn(&mut self, clinic_id: &str, prefix: &str) -> Result<String, StoreError> {
        patients::next_mrn(self.c(), clinic_id, prefix).await
    }
    async fn patient_by_mrn(
        &mut self,
        clinic_id: &str,
        mrn: &str,
    ) -> Result<Option<String>, StoreError> {
        patients::id_by_mrn(self.c(), clinic_id, mrn).await
    }
    async fn same_person(
        &mut self,
        clinic_id: &str,
        v: &ValidPatient,
        except: &str,
    ) -> Result<Option<String>, StoreError> {
        patients::same_person(self.c(), clinic_id, v, except).await
    }
    async fn insert_patient(
        &mut self,
        id: &str,
        clinic_id: &str,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<(), StoreError> {
        patients::insert(self.c(), id, clinic_id, mrn, v).await
    }
    async fn update_patient(
        &mut self,
        id: &str,
        version: i64,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<bool, StoreError> {
        patients::update(self.c(), id, version, mrn, v).await
    }
    async fn mark_patient(
        &mut self,
        id: &str,
        mark: PatientMark,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        patients::mark(self.c(), id, mark, value).await
    }
    async fn search_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Patient)>, StoreError> {
        patients::search(self.c(), member_of, f, after, limit).await
    }
    async fn count_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        cap: u32,
    ) -> Result<i64, StoreError> {
        patients::count(self.c(), member_of, f, cap).await
    }
    async fn move_patient_records(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        appointments::move_patient(self.c(), from, to).await
    }

    async fn find_clinic(&mut self, id: &str) -> Result<Option<Clinic>, StoreError> {
        clinics::find(self.c(), id).await
    }
    async fn list_clinics(
        &mut self,
        member: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Clinic>, StoreError> {
        clinics::list(self.c(), member, after, limit).await
    }
    async fn insert_clinic(&mut self, id: &str, c: &ValidClinic) -> Result<(), StoreError> {
        clinics::insert(self.c(), id, c).await
    }
    async fn update_clinic(
        &mut self,
        id: &str,
        version: i64,
        c: &ValidClinic,
    ) -> Result<bool, StoreError> {
        clinics::update(self.c(), id, version, c).await
    }
    async fn set_board_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError> {
        clinics::set_board_key_hash(self.c(), id, hash).await
    }
    async fn board_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        clinics::board_key_hash(self.c(), id).await
    }
    async fn set_kiosk_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError> {
        clinics::set_kiosk_key_hash(self.c(), id, hash).await
    }
    async fn kiosk_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        clinics::kiosk_key_hash(self.c(), id).await
    }

    async fn find_user(&mut self, id: &str) -> Result<Option<StoredUser>, StoreError> {
        users::find(self.c(), id).await
    }
    async fn list_users(&mut self, after: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        users::list(self.c(), after, limit).await
    }
    async fn count_users(&mut self) -> Result<i64, StoreError> {
        users::count(self.c()).await
    }
    async fn user_id_by_name(&mut self, username: &str) -> Result<Option<String>, StoreError> {
        users::id_by_name(self.c(), username).await
    }
    async fn credentials(
        &mut self,
        username: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        users::credentials(self.c(), username).await
    }
    async fn insert_user(
        &mut self,
        id: &str,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        users::insert(self.c(), id, username, password_hash, role).await
    }
    async fn update_user(
        &mut self,
        id: &str,
        version: i64,
        role: Role,
        active: bool,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        users::update(self.c(), id, version, role, active, password_hash).await
    }
    async fn delete_user(&mut self, id: &str) -> Result<bool, StoreError> {
        users::delete(self.c(), id).await
    }
    async fn set_password_of(
        &mut self,
        id: &str,
        was: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        users::set_password_of(self.c(), id, was, hash).await
    }
    async fn set_password_by_name(
        &mut self,
        username: &str,
        hash: &str,
    ) -> Result<Option<String>, StoreError> {
        users::set_password_by_name(self.c(), username, hash).await
    }
    async fn first_unknown_clinic(&mut self, ids: &[String]) -> Result<Option<usize>, StoreError> {
        users::first_unknown_clinic(self.c(), ids).await
    }
    async fn set_user_clinics(&mut self, user_id: &str, ids: &[String]) -> Result<(), StoreError> {
        users::set_clinics(self.c(), user_id, ids).await
    }
    async fn insert_token(
        &mut self,
        hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        tokens::insert(self.c(), hash, user_id, now, expires_at).await
    }
    async fn revoke_token(&mut self, hash: &str, now: i64) -> Result<(), StoreError> {
        tokens::revoke(self.c(), hash, now).await
    }
    async fn revoke_tokens_of(&mut self, user_id: &str, now: i64) -> Result<(), StoreError> {
        tokens::revoke_all_of(self.c(), user_id, now).await
    }
    async fn token_owner(
        &mut self,
        hash: &str,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        tokens::owner(self.c(), hash, now).await
    }

    async fn find_appointment(
        &mut self,
        id: &str,
    ) -> Result<Option<(Appointment, bool)>, StoreError> {
        appointments::find(self.c(), id).await
    }
    async fn overlapping(
        &mut self,
        clinician_id: &str,
        slot: &Slot,
        except: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        appointments::overlapping(self.c(), clinician_id, slot, except).await
    }
    async fn insert_appointment(&mut self, a: &AppointmentRow<'_>) -> Result<(), StoreError> {
        appointments::insert(self.c(), a).await
    }
    async fn update_appointment(
        &mut self,
        id: &str,
        version: i64,
        slot: &Slot,
        reason: Option<&str>,
        status: AppointmentStatus,
        ticket_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        appointments::update(self.c(), id, version, slot, reason, status, ticket_id).await
    }
    async fn delete_appointment(&mut self, id: &str) -> Result<(), StoreError> {
        appointments::delete(self.c(), id).await
    }
    async fn list_appointments(
        &mut self,
        member: Option<&str>,
        f: &AppointmentFilters,
        after: (i64, &str),
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError> {
        appointments::list(self.c(), member, f, after, limit).await
    }

    async fn find_ticket(&mut self, id: &str) -> Result<Option<Ticket>, StoreError> {
        queue::find(self.c(), id).await
    }
    async fn next_ticket_seq(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<i64>, StoreError> {
        queue::next_seq(self.c(), clinic_id, day).await
    }
    async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<(), StoreError> {
        queue::insert(self.c(), t).await
    }
    async fn head_of_each_priority(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        queue::head_of_each_priority(self.c(), clinic_id, day).await
    }
    async fn count_waiting(
        &mut self,
        clinic_id: &str,
        day: &str,
        priority: Priority,
        issued_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        queue::count_waiting(self.c(), clinic_id, day, priority, issued_ms).await
    }
    async fn open_tickets(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        queue::open_tickets(self.c(), clinic_id, day).await
    }
    async fn set_ticket_status(
        &mut self,
        id: &str,
        version: i64,
        to: Status,
        counter: Option<&str>,
    ) -> Result<bool, StoreError> {
        queue::set_status(self.c(), id, version, to, counter).await
    }
    async fn last_called(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<String>, StoreError> {
        queue::last_called(self.c(), clinic_id, day).await
    }
    async fn service_seconds(&mut self, clinic_id: &str) -> Result<u64, StoreError> {
        queue::service_seconds(self.c(), clinic_id).await
    }
    async fn set_day_closed(
        &mut self,
        clinic_id: &str,
        day: &str,
        closed: bool,
    ) -> Result<(), StoreError> {
        queue::set_closed(self.c(), clinic_id, day, closed).await
    }
    async fn is_day_closed(&mut self, clinic_id: &str, day: &str) -> Result<bool, StoreError> {
        queue::is_closed(self.c(), clinic_id, day).await
    }
    async fn day_tickets(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<(String, Option<f64>)>, StoreError> {
        queue::day_tickets(self.c(), clinic_id, day).await
    }

    async fn append_access(&mut self, rows: &[&LogRow]) -> Result<(), StoreError> {
        Ok(access::append_rows(self.c(), rows).await?)
    }
    async fn access_entries(
        &mut self,
        resource_type: &str,
        resource_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        access::entries(self.c(), resource_type, resource_id, after, limit).await
    }
    async fn access_log(
        &mut self,
        f: &LogFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        access::filtered(self.c(), f, after, limit).await
    }
    async fn purge_access_log(&mut self, before: &str, through: i64) -> Result<u64, StoreError> {
        access::purge(self.c(), before, through).await
    }
    async fn save_outcome(&mut self, o: &Outcome, expired_before: i64) -> Result<(), StoreError> {
        settings::save_outcome(self.c(), o, expired_before).await
    }
    async fn find_outcome(
        &mut self,
        caller_id: &str,
        key: &str,
        since: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        settings::find_outcome(self.c(), caller_id, key, since).await
    }
    async fn setting_or_insert(&mut self, key: &str, value: &str) -> Result<String, StoreError> {
        settings::get_or_insert(self.c(), key, value).await
    }

    async fn insert_job(&mut self, job: &JobRecord) -> Result<(), StoreError> {
        jobs::insert(self.c(), job).await
    }
    async fn find_job(&mut self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        jobs::find(self.c(), id).await
    }
    async fn claim_job(
        &mut self,
        runner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        jobs::claim(self.c(), runner, now_ms, lease_until).await
    }
    async fn job_progress(
        &mut self,
        id: &str,
        runner: &str,
        progress: &JobProgress,
    ) -> Result<bool, StoreError> {
        jobs::progress(self.c(), id, runner, progress).await
    }
    async fn finish_job(
        &mut self,
        id: &str,
        runner: &str,
        end: &JobEnd,
    ) -> Result<bool, StoreError> {
        jobs::finish(self.c(), id, runner, end).await
    }
    async fn expired_jobs(
        &mut self,
        now_s: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        jobs::expired(self.c(), now_s, limit).await
    }
    async fn mark_job_removed(
        &mut self,
        id: &str,
        at: &str,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        jobs::mark_removed(self.c(), id, at, why).await
    }
    async fn add_export_patients(
        &mut self,
        job_id: &str,
        patients: &[(String, i64)],
    ) -> Result<(), StoreError> {
        jobs::add_patients(self.c(), job_id, patients).await
    }
    async fn withdrawn_jobs(
        &mut self,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        jobs::withdrawn(self.c(), limit).await
    }
    async fn job_waiting(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        jobs::waiting(self.c(), now_ms).await
    }
    async fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        match self {
            // The snapshot lasts until the connection is closed: it never goes back to the pool
            // with a transaction open.
            SqliteTx::Pooled(c) => c.close_on_drop(),
            SqliteTx::Borrowed(_) => {
                return Err(StoreError::Other("a snapshot is taken on a read".into()))
            }
        }
        jobs::begin_snapshot(self.c()).await
    }
    async fn export_count(&mut self, scope: &ExportScope) -> Result<i64, StoreError> {
        jobs::count(self.c(), scope).await
    }
    async fn export_page(
        &mut self,
        scope: &ExportScope,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        jobs::page(self.c(), scope, after, limit).await
    }
}

/// 507 once the live data (pages in use, not counting free pages a deletion left) reaches `max`.
async fn check_room(conn: &mut SqliteConnection, max: u64) -> Result<(), ApiError> {
    let used: i64 = sqlx::query_scalar(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
    )
    .fetch_one(conn)
    .await
    .map_err(StoreError::from)?;
    if used as u64 >= max {
        return Err(ApiError::InsufficientStorage);
    }
    Ok(())
}

/// Caps the file a little above `max` bytes: data writes stop at `max` itself (`check_room`),
/// and the reserve above it keeps access-log entries for reads possible when the data is full.
/// Past the hard cap SQLite fails writes with SQLITE_FULL, which becomes 507.
async fn cap_size(conn: &mut SqliteConnection, max: u64) -> Result<(), sqlx::Error> {
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

/// Classifies SQLite's failures by their (extended) result codes.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Busy,
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
                Some("2067") | Some("1555") => StoreError::Conflict,
                // SQLITE_FULL
                Some("13") => StoreError::Full,
                // SQLITE_BUSY, SQLITE_LOCKED and their extended forms
                Some(c) if matches!(c.parse::<i32>().map(|n| n & 0xff), Ok(5) | Ok(6)) => {
                    StoreError::Busy
                }
                _ => StoreError::Other(err.to_string()),
            },
            sqlx::Error::Io(e) if e.raw_os_error() == Some(28) => StoreError::Full,
            _ => StoreError::Other(err.to_string()),
        }
    }
}

/// Inside the engine, units' SQL errors reach `ApiError` through their storage class.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::from(StoreError::from(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn options(dir: &tempfile::TempDir, max_bytes: Option<u64>) -> Options {
        Options {
            url: format!("sqlite://{}", dir.path().join("w.db").display()),
            max_bytes,
            busy_timeout: Duration::from_secs(5),
            write_queue: 4096,
        }
    }

    async fn count_settings(dir: &tempfile::TempDir, prefix: &str) -> i64 {
        let engine = SqliteEngine::open(options(dir, None)).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE key LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(&engine.read)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_unit_rolls_back_alone_and_the_rest_of_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Store::open(options(&dir, None)).await.unwrap();
        let writes = (0..200i64).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    Box::pin(async move {
                        tx.setting_or_insert(&format!("k{i}"), "x").await?;
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
        assert_eq!(
            count_settings(&dir, "k").await,
            179,
            "exactly the units that succeeded are stored"
        );
        // The writer still works after a panic and refusals.
        assert_eq!(db.write(|_| Box::pin(async { Ok(1) })).await.unwrap(), 1);
        assert_eq!(db.write_queue_depth(), 0);
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Store::open(options(&dir, None)).await.unwrap();
        let mut reader = db.read().await.unwrap();
        let err = reader.setting_or_insert("r", "x").await.unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[tokio::test]
    async fn storage_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let db = Store::open(options(&dir, None)).await.unwrap();
        let insert = |db: Store| async move {
            db.write(|tx| {
                Box::pin(async move {
                    let clinic = crate::clinics::domain::ValidClinic::parse(
                        "North",
                        "Europe/Vienna",
                        "N",
                        None,
                    )
                    .unwrap();
                    tx.insert_clinic("cln_same", &clinic).await?;
                    Ok(())
                })
            })
            .await
        };
        insert(db.clone()).await.unwrap();
        assert_eq!(insert(db.clone()).await.unwrap_err().status().code, 409);
        assert_eq!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound
        );
        assert_eq!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Busy
        );
        assert_eq!(ApiError::from(StoreError::NotFound).status().code, 404);
        assert_eq!(ApiError::from(StoreError::Busy).status().code, 503);
        assert_eq!(ApiError::from(StoreError::Full).status().code, 507);
    }

    #[tokio::test]
    async fn a_size_cap_turns_growth_into_507() {
        let dir = tempfile::tempdir().unwrap();
        let db = Store::open(options(&dir, Some(256 * 1024))).await.unwrap();
        let mut last = Ok(());
        let big = "x".repeat(8192);
        for i in 0..200 {
            let (key, big) = (format!("big{i}"), big.clone());
            last = db
                .write(move |tx| {
                    let (key, big) = (key.clone(), big.clone());
                    Box::pin(async move {
                        tx.setting_or_insert(&key, &big).await?;
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

    #[tokio::test]
    async fn an_unopenable_url_names_the_path_or_the_scheme() {
        let err = Store::open(Options::cli("sqlite:///no/such/dir/careq.db"))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
        let err = Store::open(Options::cli("mysql://localhost/careq"))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("`mysql:`"), "{err}");
    }
}
