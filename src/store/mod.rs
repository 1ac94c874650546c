//! The storage seam. Features reach the database only through what this module declares:
//!
//! - [`Store`]: the handle the app holds — reads, units of work, the access-log fast path,
//!   health — over an [`Engine`] chosen by the database URL;
//! - [`Tx`]: the operations a unit of work or a read composes (find a patient, take the next
//!   ticket number, append access-log rows…), each one statement or a few;
//! - [`StoreError`]: how an operation fails, which `error.rs` maps to an `ApiError`.
//!
//! The rules (who may see what, what counts as a duplicate, the queue's order) live in the
//! features' services, written once against `Tx`; an engine only stores and finds. All SQL is in
//! the engines' modules (`sqlite/`, `postgres/`), each an implementation of `Engine` and `Tx`
//! chosen by the database URL's scheme.
pub mod copy;
pub mod postgres;
pub mod sqlite;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::appointments::domain::{Appointment, AppointmentStatus, Filters as AppointmentFilters};
use crate::appointments::domain::{AppointmentRow, Slot};
use crate::auth::Role;
use crate::clinics::domain::{Clinic, ValidClinic};
use crate::error::ApiError;
use crate::patients::domain::{Patient, SearchFilters, StoredPatient, ValidPatient};
use crate::queue::domain::{NewTicket, Priority, Status, Ticket};
use crate::users::domain::{StoredUser, User, Username};

/// How an operation of the store fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A row the operation needs is not there.
    NotFound,
    /// A unique key is taken (a duplicate).
    Conflict,
    /// The database has no room left.
    Full,
    /// The database could not be reached in time (locked, pool exhausted, shutting down).
    Busy,
    /// Anything else: a broken connection, corrupt data. Not for clients' eyes.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no such row"),
            StoreError::Conflict => f.write_str("a unique key is taken"),
            StoreError::Full => f.write_str("the database is full"),
            StoreError::Busy => f.write_str("the database is busy"),
            StoreError::Other(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a 503 caused by the database tells clients to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

/// One access-log entry, as an engine appends it.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub at: String,
    pub actor_id: String,
    pub action: &'static str,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub request_id: String,
    pub patient_id: Option<String>,
    pub client_request_id: Option<String>,
}

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
}

/// Which access-log entries a listing wants (all given filters hold).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    /// Entries at or after this time (RFC 3339, as stored).
    pub from: Option<String>,
    /// Entries before this time (RFC 3339, as stored).
    pub before: Option<String>,
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub caller_id: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    /// The kept response headers, as a JSON list of `[name, value]` pairs.
    pub headers: String,
    pub body: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Who a live bearer token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// Sorted.
    pub clinic_ids: Vec<String>,
}

/// A lifecycle change of a patient record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientMark {
    /// Tombstoned at the given time.
    Deleted,
    /// Merged into the given patient.
    Merged,
    /// Sealed under a legal hold, with the given reason.
    Sealed,
    /// Seal lifted, with the given reason.
    Unsealed,
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

/// The operations units of work and reads are made of. On a read (`Store::read`) only the
/// finding ones may be used; the engine refuses writes there.
#[async_trait]
pub trait Tx: Send {
    /// Holds one record against other writers until the unit ends, so what the unit reads of
    /// it next is still so when it writes (two changes of one record queue instead of racing).
    /// A unit that reads a record in order to change it calls this first. On SQLite the one
    /// writer already holds everything, and on a read nothing is held: both do nothing.
    async fn hold(&mut self, _what: Held, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Opens a savepoint inside the unit of work, so part of a unit can be undone alone
    /// (`rollback_to`) or kept (`release`). `name` is a plain identifier chosen in code.
    async fn savepoint(&mut self, name: &'static str) -> Result<(), StoreError>;
    /// Keeps what was done since the savepoint and closes it.
    async fn release(&mut self, name: &'static str) -> Result<(), StoreError>;
    /// Undoes what was done since the savepoint and closes it.
    async fn rollback_to(&mut self, name: &'static str) -> Result<(), StoreError>;

    // Patients.
    async fn find_patient(&mut self, id: &str) -> Result<Option<StoredPatient>, StoreError>;
    /// The next free assigned MRN of a clinic (`PREFIX-000042`).
    async fn next_mrn(&mut self, clinic_id: &str, prefix: &str) -> Result<String, StoreError>;
    async fn patient_by_mrn(
        &mut self,
        clinic_id: &str,
        mrn: &str,
    ) -> Result<Option<String>, StoreError>;
    /// A live patient of the clinic (other than `except`) with the same names by
    /// `identity_key` (look-alikes included) and the same date of birth.
    async fn same_person(
        &mut self,
        clinic_id: &str,
        v: &ValidPatient,
        except: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn insert_patient(
        &mut self,
        id: &str,
        clinic_id: &str,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<(), StoreError>;
    /// Replaces the fields if the patient is still at `version`; false when it moved on.
    async fn update_patient(
        &mut self,
        id: &str,
        version: i64,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<bool, StoreError>;
    /// Sets a lifecycle state and bumps the version; `value` as each `PatientMark` says.
    async fn mark_patient(
        &mut self,
        id: &str,
        mark: PatientMark,
        value: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Live patients in name order after the sort key `after`, at most `limit + 1`, each with
    /// its stored sort key. `member_of`: the clinics a non-admin belongs to (sealed records
    /// left out); `None` for an admin.
    async fn search_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Patient)>, StoreError>;
    /// How many patients `search_patients` would find from the start, counting at most `cap`.
    async fn count_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        cap: u32,
    ) -> Result<i64, StoreError>;
    /// Moves a merged patient's appointments and tickets to the survivor.
    async fn move_patient_records(&mut self, from: &str, to: &str) -> Result<(), StoreError>;

    // Clinics.
    async fn find_clinic(&mut self, id: &str) -> Result<Option<Clinic>, StoreError>;
    /// Clinics after `after` by id, at most `limit + 1`; `member` limits them to one user's.
    async fn list_clinics(
        &mut self,
        member: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Clinic>, StoreError>;
    async fn insert_clinic(&mut self, id: &str, c: &ValidClinic) -> Result<(), StoreError>;
    async fn update_clinic(
        &mut self,
        id: &str,
        version: i64,
        c: &ValidClinic,
    ) -> Result<bool, StoreError>;
    async fn set_board_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError>;
    async fn board_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError>;
    async fn set_kiosk_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError>;
    async fn kiosk_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError>;

    // Staff accounts and tokens.
    async fn find_user(&mut self, id: &str) -> Result<Option<StoredUser>, StoreError>;
    /// Live users after `after` by id, at most `limit + 1`.
    async fn list_users(&mut self, after: &str, limit: u32) -> Result<Vec<User>, StoreError>;
    async fn count_users(&mut self) -> Result<i64, StoreError>;
    /// The id of the live user with this (normalized) username.
    async fn user_id_by_name(&mut self, username: &str) -> Result<Option<String>, StoreError>;
    /// The id and password hash of an active user with this (normalized) username.
    async fn credentials(&mut self, username: &str)
        -> Result<Option<(String, String)>, StoreError>;
    /// `Conflict` when the username is taken.
    async fn insert_user(
        &mut self,
        id: &str,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<(), StoreError>;
    /// Applies changes if the user is still at `version`; false when it moved on.
    async fn update_user(
        &mut self,
        id: &str,
        version: i64,
        role: Role,
        active: bool,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Tombstones a user; true if it was live.
    async fn delete_user(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Replaces the password of `id` if its hash is still `was` (the one its owner just proved
    /// they know); false when another change came first.
    async fn set_password_of(
        &mut self,
        id: &str,
        was: &str,
        hash: &str,
    ) -> Result<bool, StoreError>;
    /// Sets the password of the live user with this (normalized) username; their id, if any.
    async fn set_password_by_name(
        &mut self,
        username: &str,
        hash: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The position of the first id in `ids` that names no clinic.
    async fn first_unknown_clinic(&mut self, ids: &[String]) -> Result<Option<usize>, StoreError>;
    async fn set_user_clinics(&mut self, user_id: &str, ids: &[String]) -> Result<(), StoreError>;
    async fn insert_token(
        &mut self,
        hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    async fn revoke_token(&mut self, hash: &str, now: i64) -> Result<(), StoreError>;
    /// Revokes every live token of a user.
    async fn revoke_tokens_of(&mut self, user_id: &str, now: i64) -> Result<(), StoreError>;
    /// The live, active owner of a token hash at `now`.
    async fn token_owner(&mut self, hash: &str, now: i64)
        -> Result<Option<TokenOwner>, StoreError>;

    // Appointments.
    /// The appointment and whether it was deleted.
    async fn find_appointment(
        &mut self,
        id: &str,
    ) -> Result<Option<(Appointment, bool)>, StoreError>;
    /// A live appointment of the clinician overlapping `slot` (other than `except`): its id
    /// and start.
    async fn overlapping(
        &mut self,
        clinician_id: &str,
        slot: &Slot,
        except: &str,
    ) -> Result<Option<(String, String)>, StoreError>;
    async fn insert_appointment(&mut self, a: &AppointmentRow<'_>) -> Result<(), StoreError>;
    #[allow(clippy::too_many_arguments)]
    async fn update_appointment(
        &mut self,
        id: &str,
        version: i64,
        slot: &Slot,
        reason: Option<&str>,
        status: AppointmentStatus,
        ticket_id: Option<&str>,
    ) -> Result<bool, StoreError>;
    async fn delete_appointment(&mut self, id: &str) -> Result<(), StoreError>;
    /// Live appointments in start order after the (start, id) key, at most `limit + 1`, scoped
    /// to `member`'s clinics with sealed patients' left out (`None`: an admin, who sees all).
    async fn list_appointments(
        &mut self,
        member: Option<&str>,
        f: &AppointmentFilters,
        after: (i64, &str),
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError>;

    // The queue.
    async fn find_ticket(&mut self, id: &str) -> Result<Option<Ticket>, StoreError>;
    /// Bumps the day's counter; `None` when the day is closed (roll the unit back).
    async fn next_ticket_seq(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<i64>, StoreError>;
    async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<(), StoreError>;
    /// The earliest waiting ticket of each priority.
    async fn head_of_each_priority(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<Ticket>, StoreError>;
    /// Waiting tickets of a priority issued before `issued_ms` (all when `None`), capped.
    async fn count_waiting(
        &mut self,
        clinic_id: &str,
        day: &str,
        priority: Priority,
        issued_ms: Option<i64>,
    ) -> Result<u64, StoreError>;
    /// Waiting and called tickets of a day (capped as a safety bound).
    async fn open_tickets(&mut self, clinic_id: &str, day: &str)
        -> Result<Vec<Ticket>, StoreError>;
    /// Moves a ticket if it is still at `version`; false when it moved on.
    async fn set_ticket_status(
        &mut self,
        id: &str,
        version: i64,
        to: Status,
        counter: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// The number of the ticket called last on a day.
    async fn last_called(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The recent average seconds from call to finish (a default when there is no history).
    async fn service_seconds(&mut self, clinic_id: &str) -> Result<u64, StoreError>;
    async fn set_day_closed(
        &mut self,
        clinic_id: &str,
        day: &str,
        closed: bool,
    ) -> Result<(), StoreError>;
    async fn is_day_closed(&mut self, clinic_id: &str, day: &str) -> Result<bool, StoreError>;
    /// Each ticket of a day: its status and, once called, the seconds it waited.
    async fn day_tickets(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<(String, Option<f64>)>, StoreError>;

    // The access log, idempotency outcomes, settings.
    async fn append_access(&mut self, rows: &[&LogRow]) -> Result<(), StoreError>;
    /// Entries about one record, oldest first after `after`, at most `limit + 1`; for a patient
    /// also those about resources carrying the patient's data.
    async fn access_entries(
        &mut self,
        resource_type: &str,
        resource_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError>;
    /// Entries matching `f`, oldest first after sequence number `after`, at most `limit + 1`.
    async fn access_log(
        &mut self,
        f: &LogFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError>;
    /// Removes the entries before `before` up to sequence number `through` (an archive that was
    /// written first): the one way entries leave the log, never reached through the API.
    async fn purge_access_log(&mut self, before: &str, through: i64) -> Result<u64, StoreError>;
    /// Stores an outcome, first dropping those created before `expired_before`.
    async fn save_outcome(&mut self, o: &Outcome, expired_before: i64) -> Result<(), StoreError>;
    async fn find_outcome(
        &mut self,
        caller_id: &str,
        key: &str,
        since: i64,
    ) -> Result<Option<Outcome>, StoreError>;
    /// The value of a setting, storing `value` first if there is none (the first writer wins).
    async fn setting_or_insert(&mut self, key: &str, value: &str) -> Result<String, StoreError>;

    // Export jobs (`jobs.rs` of each engine).
    /// `Conflict` when the owner already has a queued or running job.
    async fn insert_job(&mut self, job: &JobRecord) -> Result<(), StoreError>;
    /// A job, with `withdrawn` set when its file is withdrawn: marked so, or naming a patient
    /// whose record was sealed, deleted or merged after the export read it (one query).
    async fn find_job(&mut self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Takes the oldest job that is queued, or running under a lease that ran out before
    /// `now_ms`, for `runner` until `lease_until`; each job is handed to one runner at a time.
    /// The patients an earlier run of the job listed are forgotten, and the job notes from when
    /// patients' changes may concern its file (`CHANGES_MARGIN_MS` before `now_ms`).
    async fn claim_job(
        &mut self,
        runner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError>;
    /// Records progress and renews the lease; false when `runner` no longer holds the job.
    async fn job_progress(
        &mut self,
        id: &str,
        runner: &str,
        progress: &JobProgress,
    ) -> Result<bool, StoreError>;
    /// Ends a job `runner` holds (succeeded with its size, or failed with `error`); false when
    /// it no longer holds it.
    async fn finish_job(
        &mut self,
        id: &str,
        runner: &str,
        end: &JobEnd,
    ) -> Result<bool, StoreError>;
    /// Succeeded jobs whose file expired before `now_s` and is not yet removed: (id, format).
    async fn expired_jobs(
        &mut self,
        now_s: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Records that a job's file is gone from disk: after its retention (`why` absent), or
    /// withdrawn because a patient it names was sealed, deleted or merged (`why` says which).
    /// The job's patient list goes with it.
    async fn mark_job_removed(
        &mut self,
        id: &str,
        at: &str,
        why: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Adds to the patients a job's file names (patient id, the version of the record the
    /// export read); a patient already listed keeps the version first recorded.
    async fn add_export_patients(
        &mut self,
        job_id: &str,
        patients: &[(String, i64)],
    ) -> Result<(), StoreError>;
    /// Succeeded jobs whose file is still on disk but withdrawn: (id, format, why).
    async fn withdrawn_jobs(
        &mut self,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Whether some job is claimable at `now_ms` (a read: lets an idle runner skip the write).
    async fn job_waiting(&mut self, now_ms: i64) -> Result<bool, StoreError>;
    /// Turns a read into one consistent snapshot for the reads that follow (an export's), held
    /// until the read is dropped; the connection is then closed rather than reused.
    async fn begin_snapshot(&mut self) -> Result<(), StoreError>;
    /// How many rows an export will write.
    async fn export_count(&mut self, scope: &ExportScope) -> Result<i64, StoreError>;
    /// The export's rows after id `after` in id order (keyset), at most `limit`.
    async fn export_page(
        &mut self,
        scope: &ExportScope,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError>;
}

/// An export job as stored.
#[derive(Debug, Clone, Default)]
pub struct JobRecord {
    pub id: String,
    pub owner_id: String,
    pub kind: String,
    pub format: String,
    pub scope: ExportScope,
    pub state: String,
    pub rows_written: i64,
    pub rows_total: Option<i64>,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
    pub runs: i64,
    pub ip: String,
    pub request_id: String,
    pub client_request_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// Unix seconds after which the file is removed.
    pub expires_at: Option<i64>,
    pub removed_at: Option<String>,
    /// Why the file was withdrawn (`sealed`, `deleted`, `merged`: what became of a patient it
    /// names), if it was.
    pub withdrawn: Option<String>,
}

/// How long before a job's claim a patient's change may still postdate the export's snapshot:
/// room for the clocks of several processes on one PostgreSQL database to disagree.
pub const CHANGES_MARGIN_MS: i64 = 10 * 60 * 1000;

/// Which rows an export takes: one kind, the clinics in scope, sealed records or not, a range
/// of days.
#[derive(Debug, Clone, Default)]
pub struct ExportScope {
    /// `patients`, `appointments` or `queue`.
    pub kind: String,
    /// `None`: every clinic (an admin without `clinic_id`).
    pub clinic_ids: Option<Vec<String>>,
    /// Whether sealed patients' records are included (admins only).
    pub sealed: bool,
    /// Inclusive `YYYY-MM-DD` bounds on the row's day on its clinic's clock: a patient's
    /// creation, an appointment's start, a ticket's queue day.
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    /// What those days are on each clinic's clock (not stored: the runner works them out from
    /// the clinics' zones when it runs the job). A dated scope matches rows of these clinics
    /// only, so it must list every clinic in scope.
    pub windows: Vec<ClinicWindow>,
}

/// A dated export's instants for one clinic: `[from, to)` in Unix seconds, from the start of
/// `from_day` to the end of `to_day` on the clinic's clock; `None` leaves that side open.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicWindow {
    pub clinic_id: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl ExportScope {
    /// The scope's date bounds as one JSON array for the engines' queries, or `None` when the
    /// export is not dated. Each element is one clinic: `c` its id; `f`/`t` the window in Unix
    /// seconds (appointment starts); `fs`/`ts` the same instants as `YYYY-MM-DDTHH:MM:SS`, which
    /// compare as text with the stored `…SS.mmmZ` creation times (`>= fs` from that second on,
    /// `< ts` before it); `fd`/`td` the inclusive days themselves (tickets' queue days, which
    /// are already on the clinic's clock).
    pub fn windows_json(&self) -> Option<String> {
        if self.from_day.is_none() && self.to_day.is_none() {
            return None;
        }
        let text = |s: Option<i64>| {
            s.and_then(|s| jiff::Timestamp::from_second(s).ok())
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        };
        let all: Vec<serde_json::Value> = self
            .windows
            .iter()
            .map(|w| {
                serde_json::json!({
                    "c": w.clinic_id,
                    "f": w.from,
                    "t": w.to,
                    "fs": text(w.from),
                    "ts": text(w.to),
                    "fd": self.from_day,
                    "td": self.to_day,
                })
            })
            .collect();
        Some(serde_json::Value::Array(all).to_string())
    }
}

/// One value of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One exported row: its id (the paging key) and its cells in the kind's column order.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: String,
    pub cells: Vec<Cell>,
    /// The patient the row names and the version of their record in the export's snapshot.
    pub patient: Option<(String, i64)>,
}

/// How a running job is doing, with its renewed lease.
#[derive(Debug, Clone)]
pub struct JobProgress {
    pub rows_written: i64,
    pub rows_total: Option<i64>,
    pub lease_until: i64,
    pub at: String,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum JobEnd {
    Succeeded {
        rows: i64,
        size_bytes: i64,
        at: String,
        expires_at: i64,
    },
    Failed {
        error: String,
        at: String,
    },
}

/// The column type of an exported column, as engines decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    Real,
}

/// The columns each kind of export writes, in order; engines select exactly these (`id`
/// first, the paging key).
pub fn export_columns(kind: &str) -> &'static [(&'static str, ColumnType)] {
    use ColumnType::*;
    match kind {
        "patients" => &[
            ("id", Text),
            ("clinic_id", Text),
            ("mrn", Text),
            ("given_name", Text),
            ("family_name", Text),
            ("date_of_birth", Text),
            ("sex", Text),
            ("phone", Text),
            ("email", Text),
            ("address", Text),
            ("height_cm", Real),
            ("weight_kg", Real),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        "appointments" => &[
            ("id", Text),
            ("clinic_id", Text),
            ("patient_id", Text),
            ("clinician_id", Text),
            ("start_at", Text),
            ("duration_minutes", Int),
            ("reason", Text),
            ("status", Text),
            ("ticket_id", Text),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        _ => &[
            ("id", Text),
            ("clinic_id", Text),
            ("day", Text),
            ("number", Text),
            ("patient_id", Text),
            ("priority", Text),
            ("status", Text),
            ("counter", Text),
            ("issued_ms", Int),
            ("called_ms", Int),
            ("finished_ms", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
    }
}

/// What a unit of work returns: a boxed future borrowing the unit's `Tx`.
pub type UnitFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 't>>;

/// A unit of work with its answer's type erased, as engines run it. A unit can be run again
/// from the start (`Fn`): an engine whose transactions may fail for reasons of concurrency
/// alone (PostgreSQL's serialization failures and deadlocks) rolls back and re-runs it; SQLite's
/// one writer runs each unit once.
pub type Unit =
    Arc<dyn for<'t> Fn(&'t mut dyn Tx) -> UnitFuture<'t, Box<dyn Any + Send>> + Send + Sync>;

/// A database careq can run on.
#[async_trait]
pub trait Engine: Send + Sync {
    /// A connection for reads; it never takes a write lock.
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Runs a unit of work atomically and answers once it is durable. A unit runs to its end
    /// whether or not anyone still awaits it. An engine may roll a unit back and run it again
    /// when the database aborted it for concurrency alone (never after the unit's own refusal).
    /// `data`: the unit stores data, so a database at its size cap refuses it (507).
    async fn run(&self, unit: Unit, data: bool) -> Result<Box<dyn Any + Send>, ApiError>;
    /// Appends access-log rows durably (reads' entries).
    async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError>;
    /// Whether the database answers a trivial query quickly.
    async fn ping(&self) -> bool;
    /// Units of work waiting now.
    fn queue_depth(&self) -> usize;
    /// Writes a consistent copy of the whole database to a new file at `to`, while serving.
    async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError>;
    async fn close(&self);
    /// Tells the other careq processes on this database about a change (`payload`: a small
    /// JSON text), in the order announced, without waiting. An engine that serves one process
    /// per database (SQLite) has no one to tell.
    fn announce(&self, _payload: String) {}
    /// What other processes announce, as it arrives (`None`: no other process can exist).
    fn announcements(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
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
    engine: Arc<dyn Engine>,
}

impl Store {
    /// Opens the database the URL names (creating and migrating it as the engine does).
    pub async fn open(o: Options) -> anyhow::Result<Store> {
        let engine: Arc<dyn Engine> = match o.url.split_once(':').map(|(s, _)| s) {
            Some("sqlite") => sqlite::open(o).await?,
            Some("postgres") | Some("postgresql") => postgres::open(o).await?,
            Some(other) => anyhow::bail!(
                "the database URL scheme `{other}:` is not supported; use sqlite://PATH or postgres://…"
            ),
            None => anyhow::bail!(
                "the database URL has no scheme; use sqlite://PATH or postgres://…"
            ),
        };
        Ok(Store { engine })
    }

    /// A connection for reads.
    pub async fn read(&self) -> Result<Box<dyn Tx>, ApiError> {
        Ok(self.engine.read().await?)
    }

    /// Runs a unit of work; answered once it is durably committed. The unit may be run more
    /// than once (each time in a fresh transaction, the earlier ones rolled back), so it clones
    /// what it captures rather than moving it out.
    pub async fn write<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut dyn Tx) -> UnitFuture<'t, T> + Send + Sync + 'static,
    {
        self.run(unit, false).await
    }

    /// A unit that stores data: refused with 507 once the data reaches the size cap (reads'
    /// access-log entries use `write`, which may use the reserve above the cap).
    pub async fn write_data<T, F>(&self, unit: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut dyn Tx) -> UnitFuture<'t, T> + Send + Sync + 'static,
    {
        self.run(unit, true).await
    }

    async fn run<T, F>(&self, unit: F, data: bool) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut dyn Tx) -> UnitFuture<'t, T> + Send + Sync + 'static,
    {
        let unit: Unit = Arc::new(move |tx| {
            let run = unit(tx);
            Box::pin(async move { run.await.map(|v| Box::new(v) as Box<dyn Any + Send>) })
        });
        let out = self.engine.run(unit, data).await?;
        out.downcast::<T>()
            .map(|v| *v)
            .map_err(|_| ApiError::internal("a unit of work answered the wrong type"))
    }

    /// Appends access-log rows with the next commit; answered once they are durable.
    pub async fn append_log(&self, rows: Vec<LogRow>) -> Result<(), ApiError> {
        self.engine.append_log(rows).await
    }

    pub async fn ping(&self) -> bool {
        self.engine.ping().await
    }

    /// Units of work waiting now.
    pub fn write_queue_depth(&self) -> usize {
        self.engine.queue_depth()
    }

    /// Writes a consistent copy of the whole database to a new file at `to`, while serving.
    pub async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError> {
        self.engine.backup(to).await
    }

    pub async fn close(&self) {
        self.engine.close().await
    }

    /// Tells the other careq processes on this database about a change, without waiting.
    pub fn announce(&self, payload: String) {
        self.engine.announce(payload)
    }

    /// What other careq processes on this database announce.
    pub fn announcements(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.engine.announcements()
    }
}
