//! The app's hold on the database: which engine a URL names, and the [`Store`] handle features
//! run their units on. The queries themselves are written once, in the `careq-store` crate;
//! each feature maps the records it reads into its own domain types (its `records.rs`).
//!
//! A read unit is a closure over a read-only connection (`&mut dyn Read`), a write unit a
//! closure over the unit's transaction (`&mut dyn Write`); both run on an engine's own thread
//! next to its connection and answer their own `Result<T, ApiError>`.
pub mod copy;
mod notify;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use careq_store_postgres::{PgEngine, PgOptions};
use careq_store_sqlite::{SqliteEngine, SqliteOptions};

use crate::error::ApiError;

pub use careq_store::access::{LogFilter, LogRow, Outcome};
pub use careq_store::jobs::{
    export_columns, Cell, ClinicWindow, ColumnType, ExportRow, ExportScope, JobEnd, JobProgress,
    JobRecord,
};
pub use careq_store::patients::PatientMark;
pub use careq_store::{Dialect, Read, ReadExt, Row, StoreError, Value, Write};

pub use crate::error::RETRY_AFTER_SECS;

/// How long before a job's claim a patient's change may still postdate the export's snapshot:
/// room for the clocks of several processes on one PostgreSQL database to disagree.
pub const CHANGES_MARGIN_MS: i64 = 10 * 60 * 1000;

/// One access-log entry as read back.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    pub seq: i64,
    pub at: String,
    pub actor_id: String,
    /// The actor's username, for people reading the log (absent if the account is gone).
    pub actor_username: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    /// careq's id of the request (also in its logs and its `X-Request-Id`).
    pub request_id: String,
    /// The patient whose data the access touched, when the resource is not the patient itself
    /// (an appointment, a ticket, a notification).
    pub patient_id: Option<String>,
    /// The `X-Request-Id` the client sent, if any: for correlation only.
    pub client_request_id: Option<String>,
    /// In the whole log, on an entry for a request that returned several patients (a search or
    /// a list; `resource_id` is then `several`): the patients it returned, in id order. Each
    /// patient's own log shows such a request as an entry about that patient. Absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub patients: Vec<String>,
}

/// A kind of record a read-modify-write unit holds while it works (`Tx::hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Patient,
    Clinic,
    User,
    Appointment,
    Ticket,
}

impl Held {
    pub fn table(self) -> &'static str {
        match self {
            Held::Patient => "patients",
            Held::Clinic => "clinics",
            Held::User => "users",
            Held::Appointment => "appointments",
            Held::Ticket => "tickets",
        }
    }
}

impl From<careq_store::access::LogEntry> for LogEntry {
    fn from(e: careq_store::access::LogEntry) -> LogEntry {
        LogEntry {
            seq: e.seq,
            at: e.at,
            actor_id: e.actor_id,
            actor_username: e.actor_username,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            ip: e.ip,
            request_id: e.request_id,
            patient_id: e.patient_id,
            client_request_id: e.client_request_id,
            patients: e.patients,
        }
    }
}

/// How the database is opened.
pub struct Options {
    pub url: String,
    pub max_bytes: Option<u64>,
    pub busy_timeout: Duration,
    /// Units of work that may wait before writes answer 503.
    pub write_queue: usize,
}

impl Options {
    /// How the CLI opens the database: no size cap, a short queue.
    pub fn cli(url: &str) -> Options {
        Options {
            url: url.to_string(),
            max_bytes: None,
            busy_timeout: Duration::from_secs(5),
            write_queue: 64,
        }
    }
}

/// The database as the app holds it. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    units: careq_store::Store,
    engine: Engine,
}

/// What only one engine offers (backups; announcements between processes).
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<SqliteEngine>),
    Postgres(Arc<notify::Fanout>),
}

impl Store {
    /// Opens the database the URL names, creating and migrating it.
    pub async fn open(o: Options) -> anyhow::Result<Store> {
        match o.url.split_once(':').map(|(s, _)| s) {
            Some("sqlite") => open_sqlite(o).await,
            Some("postgres") | Some("postgresql") => open_postgres(o).await,
            Some(other) => anyhow::bail!(
                "the database URL scheme `{other}:` is not supported; use sqlite://PATH or postgres://…"
            ),
            None => anyhow::bail!(
                "the database URL has no scheme; use sqlite://PATH or postgres://…"
            ),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.units.dialect()
    }

    /// Runs `unit` on a read-only connection.
    pub async fn read<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Read) -> Result<T, ApiError> + Send + 'static,
    {
        self.units.read(unit).await
    }

    /// A read of a few rows by key (a token, one record by id), which the engine may run on the
    /// calling thread; never a search or a list (see `careq_store::Store::lookup`).
    pub async fn lookup<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Read) -> Result<T, ApiError> + Send + 'static,
    {
        self.units.lookup(unit).await
    }

    /// Runs a unit of work atomically; answered once it is durably committed. The unit may be
    /// run more than once (each time in a fresh transaction, the earlier ones undone), hence `Fn`.
    pub async fn write<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Write) -> Result<T, ApiError> + Send + 'static,
    {
        self.units.write(unit).await
    }

    /// A unit that stores data: refused with 507 once the data reaches the size cap (reads'
    /// access-log entries use `write`, which may use the reserve above the cap).
    pub async fn write_data<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Write) -> Result<T, ApiError> + Send + 'static,
    {
        self.units.write_data(unit).await
    }

    /// Appends access-log rows with the next commit; answered once they are durable.
    pub async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        self.write(move |w| {
            let rows: Vec<&LogRow> = rows.iter().collect();
            Ok(careq_store::access::append(w, &rows)?)
        })
        .await
    }

    /// Whether the database answers a trivial query quickly.
    pub async fn ping(&self) -> bool {
        let answer = self.units.read(|r| r.int("SELECT 1", &[]));
        matches!(
            tokio::time::timeout(Duration::from_secs(2), answer).await,
            Ok(Ok(Some(1)))
        )
    }

    /// Units of work waiting now.
    pub fn write_queue_depth(&self) -> usize {
        self.units.queue_depth()
    }

    /// Writes a consistent copy of the whole database to a new file at `to`, while serving.
    pub async fn backup(&self, to: &Path) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(e) => e.backup(to).await,
            Engine::Postgres(_) => Err(StoreError::Other(
                "careq backup copies SQLite files only; back up PostgreSQL with pg_dump \
                 (e.g. `pg_dump --format=custom --file=careq.dump DATABASE_URL`)"
                    .into(),
            )),
        }
    }

    /// Stops taking units; those already queued still run and are answered.
    pub async fn close(&self) {
        self.units.close()
    }

    /// Tells the other careq processes on this database about a change, without waiting.
    pub fn announce(&self, payload: String) {
        if let Engine::Postgres(f) = &self.engine {
            f.announce(payload)
        }
    }

    /// What other careq processes on this database announce (`None`: there can be none).
    pub fn announcements(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        match &self.engine {
            Engine::Postgres(f) => Some(f.subscribe()),
            Engine::Sqlite(_) => None,
        }
    }
}

/// The file a `sqlite:` URL names (`sqlite://PATH`, `sqlite:PATH`, options after `?` ignored).
fn sqlite_path(url: &str) -> &str {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or(path)
}

async fn open_sqlite(o: Options) -> anyhow::Result<Store> {
    let path = sqlite_path(&o.url).to_string();
    warn_if_open_to_others(Path::new(&path));
    let mut options = SqliteOptions::new(&path);
    options.busy_timeout = o.busy_timeout;
    options.write_queue = o.write_queue;
    options.max_bytes = o.max_bytes;
    let opened = tokio::task::spawn_blocking(move || {
        SqliteEngine::open(options, careq_store::schema::SQLITE)
    })
    .await
    .context("opening the database")?;
    let engine = Arc::new(opened.map_err(|e| open_error(&path, e))?);
    Ok(Store {
        units: careq_store::Store::new(engine.clone()),
        engine: Engine::Sqlite(engine),
    })
}

async fn open_postgres(o: Options) -> anyhow::Result<Store> {
    let mut options = PgOptions::new(&o.url);
    options.busy_timeout = o.busy_timeout;
    options.write_queue = o.write_queue;
    options.max_bytes = o.max_bytes;
    options.migrations = careq_store::schema::POSTGRES;
    let engine = PgEngine::open(options).await.map_err(|e| match e {
        StoreError::Other(why) => anyhow::anyhow!(why),
        e => anyhow::anyhow!("opening the database: {e}"),
    })?;
    Ok(Store {
        units: careq_store::Store::new(Arc::new(engine)),
        engine: Engine::Postgres(Arc::new(notify::Fanout::new(&o.url)?)),
    })
}

/// An existing database file that others may read is reported (its path and mode; never its
/// contents). careq creates new ones 0600.
fn warn_if_open_to_others(path: &Path) {
    if let Ok(Some(mode)) = crate::private_files::open_to_others(path) {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:04o}"),
            "the database file is readable by other users of this machine; \
             `chmod 600` it (careq creates new ones 0600)"
        );
    }
}

/// Says which file could not be opened and, where it can tell, why.
fn open_error(path: &str, e: StoreError) -> anyhow::Error {
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    if Path::new(path).is_dir() {
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
