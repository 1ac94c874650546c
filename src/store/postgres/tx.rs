//! A connection as the operations see it — inside a unit's transaction, or a pooled read-only
//! one — and the `Tx` operations over it. Every failure passes through `done`, which classifies
//! it (`classify`) and remembers whether PostgreSQL aborted the transaction for concurrency alone,
//! so the engine can tell such a unit's failure (run it again) from a refusal (answer it).
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};

use super::{
    access, appointments, classify, clinics, is_race, jobs, patients, queue, settings, tokens,
    users,
};
use crate::appointments::domain::{Appointment, AppointmentStatus, Filters as AppointmentFilters};
use crate::appointments::domain::{AppointmentRow, Slot};
use crate::auth::Role;
use crate::clinics::domain::{Clinic, ValidClinic};
use crate::patients::domain::{Patient, SearchFilters, StoredPatient, ValidPatient};
use crate::queue::domain::{NewTicket, Priority, Status, Ticket};
use crate::store::{ExportRow, ExportScope, JobEnd, JobProgress, JobRecord};
use crate::store::{
    Held, LogEntry, LogFilter, LogRow, Outcome, PatientMark, StoreError, TokenOwner, Tx,
};
use crate::users::domain::{StoredUser, User, Username};

enum Conn<'c> {
    Borrowed(&'c mut PgConnection),
    Pooled(PoolConnection<Postgres>),
}

pub(crate) struct PgTx<'c> {
    conn: Conn<'c>,
    /// Inside a unit's transaction (locks may be taken); false on a read.
    write: bool,
    /// A statement failed with a serialization failure or a deadlock.
    race: bool,
}

impl<'c> PgTx<'c> {
    pub fn in_transaction(conn: &'c mut PgConnection) -> Self {
        PgTx {
            conn: Conn::Borrowed(conn),
            write: true,
            race: false,
        }
    }

    /// Whether PostgreSQL aborted this transaction for concurrency alone.
    pub fn lost_race(&self) -> bool {
        self.race
    }

    fn c(&mut self) -> &mut PgConnection {
        match &mut self.conn {
            Conn::Borrowed(c) => c,
            Conn::Pooled(c) => c,
        }
    }

    /// `done` for an update conditional on the version the unit just read: a miss means another
    /// transaction committed a change in between (units run side by side here, at READ
    /// COMMITTED), which is a lost race like a serialization failure, so the unit runs again
    /// and judges If-Match against the new version; `If-Match: *` then applies, as it would
    /// have one moment later.
    fn versioned(&mut self, r: Result<bool, sqlx::Error>) -> Result<bool, StoreError> {
        let applied = self.done(r)?;
        self.race |= !applied;
        Ok(applied)
    }

    fn done<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        r.map_err(|e| {
            self.race |= is_race(&e);
            classify(e)
        })
    }

    async fn execute(&mut self, sql: String) -> Result<(), StoreError> {
        let r = sqlx::query(&sql).execute(self.c()).await;
        self.done(r).map(|_| ())
    }
}

impl PgTx<'static> {
    pub fn pooled(conn: PoolConnection<Postgres>) -> Self {
        PgTx {
            conn: Conn::Pooled(conn),
            write: false,
            race: false,
        }
    }
}

/// An insert that found its unique key taken (`ON CONFLICT DO NOTHING` stored nothing) is a
/// conflict; the transaction stays usable, as SQLite's does after a refused statement.
fn inserted(stored: bool) -> Result<(), StoreError> {
    if stored {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

#[async_trait]
impl Tx for PgTx<'_> {
    async fn savepoint(&mut self, name: &'static str) -> Result<(), StoreError> {
        self.execute(format!("SAVEPOINT {name}")).await
    }
    async fn release(&mut self, name: &'static str) -> Result<(), StoreError> {
        self.execute(format!("RELEASE SAVEPOINT {name}")).await
    }
    async fn rollback_to(&mut self, name: &'static str) -> Result<(), StoreError> {
        self.execute(format!("ROLLBACK TO SAVEPOINT {name}"))
            .await?;
        self.execute(format!("RELEASE SAVEPOINT {name}")).await
    }
    async fn find_patient(&mut self, id: &str) -> Result<Option<StoredPatient>, StoreError> {
        let r = patients::find(self.c(), id).await;
        self.done(r)
    }
    async fn next_mrn(&mut self, clinic_id: &str, prefix: &str) -> Result<String, StoreError> {
        let r = patients::next_mrn(self.c(), clinic_id, prefix).await;
        self.done(r)
    }
    async fn patient_by_mrn(
        &mut self,
        clinic_id: &str,
        mrn: &str,
    ) -> Result<Option<String>, StoreError> {
        let r = patients::id_by_mrn(self.c(), clinic_id, mrn).await;
        self.done(r)
    }
    async fn same_person(
        &mut self,
        clinic_id: &str,
        v: &ValidPatient,
        except: &str,
    ) -> Result<Option<String>, StoreError> {
        let write = self.write;
        let r = patients::same_person(self.c(), clinic_id, v, except, write).await;
        self.done(r)
    }
    async fn insert_patient(
        &mut self,
        id: &str,
        clinic_id: &str,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<(), StoreError> {
        let r = patients::insert(self.c(), id, clinic_id, mrn, v).await;
        inserted(self.done(r)?)
    }
    async fn hold(&mut self, what: Held, id: &str) -> Result<(), StoreError> {
        if !self.write {
            return Ok(());
        }
        // NO KEY UPDATE: the unit may change the row but not its id, so rows that refer to it
        // (tickets of a patient, say) can still be written meanwhile.
        let sql = format!(
            "SELECT 1 FROM {} WHERE id = $1 FOR NO KEY UPDATE",
            what.table()
        );
        let r = sqlx::query(&sql)
            .bind(id)
            .execute(self.c())
            .await
            .map(|_| ());
        self.done(r)
    }
    async fn update_patient(
        &mut self,
        id: &str,
        version: i64,
        mrn: &str,
        v: &ValidPatient,
    ) -> Result<bool, StoreError> {
        let r = patients::update(self.c(), id, version, mrn, v).await;
        self.versioned(r)
    }
    async fn mark_patient(
        &mut self,
        id: &str,
        mark: PatientMark,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = patients::mark(self.c(), id, mark, value).await;
        self.done(r)
    }
    async fn search_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Patient)>, StoreError> {
        let r = patients::search(self.c(), member_of, f, after, limit).await;
        self.done(r)
    }
    async fn count_patients(
        &mut self,
        member_of: Option<&[String]>,
        f: &SearchFilters,
        cap: u32,
    ) -> Result<i64, StoreError> {
        let r = patients::count(self.c(), member_of, f, cap).await;
        self.done(r)
    }
    async fn move_patient_records(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        let r = appointments::move_patient(self.c(), from, to).await;
        self.done(r)
    }
    async fn find_clinic(&mut self, id: &str) -> Result<Option<Clinic>, StoreError> {
        let r = clinics::find(self.c(), id).await;
        self.done(r)
    }
    async fn list_clinics(
        &mut self,
        member: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Clinic>, StoreError> {
        let r = clinics::list(self.c(), member, after, limit).await;
        self.done(r)
    }
    async fn insert_clinic(&mut self, id: &str, c: &ValidClinic) -> Result<(), StoreError> {
        let r = clinics::insert(self.c(), id, c).await;
        inserted(self.done(r)?)
    }
    async fn update_clinic(
        &mut self,
        id: &str,
        version: i64,
        c: &ValidClinic,
    ) -> Result<bool, StoreError> {
        let r = clinics::update(self.c(), id, version, c).await;
        self.versioned(r)
    }
    async fn set_board_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError> {
        let r = clinics::set_board_key_hash(self.c(), id, hash).await;
        self.done(r)
    }
    async fn board_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        let r = clinics::board_key_hash(self.c(), id).await;
        self.done(r)
    }
    async fn set_kiosk_key_hash(&mut self, id: &str, hash: &str) -> Result<(), StoreError> {
        let r = clinics::set_kiosk_key_hash(self.c(), id, hash).await;
        self.done(r)
    }
    async fn kiosk_key_hash(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        let r = clinics::kiosk_key_hash(self.c(), id).await;
        self.done(r)
    }
    async fn find_user(&mut self, id: &str) -> Result<Option<StoredUser>, StoreError> {
        let r = users::find(self.c(), id).await;
        self.done(r)
    }
    async fn list_users(&mut self, after: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        let r = users::list(self.c(), after, limit).await;
        self.done(r)
    }
    async fn count_users(&mut self) -> Result<i64, StoreError> {
        let r = users::count(self.c()).await;
        self.done(r)
    }
    async fn user_id_by_name(&mut self, username: &str) -> Result<Option<String>, StoreError> {
        let r = users::id_by_name(self.c(), username).await;
        self.done(r)
    }
    async fn credentials(
        &mut self,
        username: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let r = users::credentials(self.c(), username).await;
        self.done(r)
    }
    async fn insert_user(
        &mut self,
        id: &str,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let r = users::insert(self.c(), id, username, password_hash, role).await;
        inserted(self.done(r)?)
    }
    async fn update_user(
        &mut self,
        id: &str,
        version: i64,
        role: Role,
        active: bool,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let r = users::update(self.c(), id, version, role, active, password_hash).await;
        self.versioned(r)
    }
    async fn delete_user(&mut self, id: &str) -> Result<bool, StoreError> {
        let r = users::delete(self.c(), id).await;
        self.done(r)
    }
    async fn set_password_of(
        &mut self,
        id: &str,
        was: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let r = users::set_password_of(self.c(), id, was, hash).await;
        self.done(r)
    }
    async fn set_password_by_name(
        &mut self,
        username: &str,
        hash: &str,
    ) -> Result<Option<String>, StoreError> {
        let r = users::set_password_by_name(self.c(), username, hash).await;
        self.done(r)
    }
    async fn first_unknown_clinic(&mut self, ids: &[String]) -> Result<Option<usize>, StoreError> {
        let r = users::first_unknown_clinic(self.c(), ids).await;
        self.done(r)
    }
    async fn set_user_clinics(&mut self, user_id: &str, ids: &[String]) -> Result<(), StoreError> {
        let r = users::set_clinics(self.c(), user_id, ids).await;
        self.done(r)
    }
    async fn insert_token(
        &mut self,
        hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let r = tokens::insert(self.c(), hash, user_id, now, expires_at).await;
        inserted(self.done(r)?)
    }
    async fn revoke_token(&mut self, hash: &str, now: i64) -> Result<(), StoreError> {
        let r = tokens::revoke(self.c(), hash, now).await;
        self.done(r)
    }
    async fn revoke_tokens_of(&mut self, user_id: &str, now: i64) -> Result<(), StoreError> {
        let r = tokens::revoke_all_of(self.c(), user_id, now).await;
        self.done(r)
    }
    async fn token_owner(
        &mut self,
        hash: &str,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let r = tokens::owner(self.c(), hash, now).await;
        self.done(r)
    }
    async fn find_appointment(
        &mut self,
        id: &str,
    ) -> Result<Option<(Appointment, bool)>, StoreError> {
        let r = appointments::find(self.c(), id).await;
        self.done(r)
    }
    async fn overlapping(
        &mut self,
        clinician_id: &str,
        slot: &Slot,
        except: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let write = self.write;
        let r = appointments::overlapping(self.c(), clinician_id, slot, except, write).await;
        self.done(r)
    }
    async fn insert_appointment(&mut self, a: &AppointmentRow<'_>) -> Result<(), StoreError> {
        let r = appointments::insert(self.c(), a).await;
        self.done(r)
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
        let r = appointments::update(self.c(), id, version, slot, reason, status, ticket_id).await;
        self.versioned(r)
    }
    async fn delete_appointment(&mut self, id: &str) -> Result<(), StoreError> {
        let r = appointments::delete(self.c(), id).await;
        self.done(r)
    }
    async fn list_appointments(
        &mut self,
        member: Option<&str>,
        f: &AppointmentFilters,
        after: (i64, &str),
        limit: u32,
    ) -> Result<Vec<Appointment>, StoreError> {
        let r = appointments::list(self.c(), member, f, after, limit).await;
        self.done(r)
    }
    async fn find_ticket(&mut self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let r = queue::find(self.c(), id).await;
        self.done(r)
    }
    async fn next_ticket_seq(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<i64>, StoreError> {
        let r = queue::next_seq(self.c(), clinic_id, day).await;
        self.done(r)
    }
    async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<(), StoreError> {
        let r = queue::insert(self.c(), t).await;
        self.done(r)
    }
    async fn head_of_each_priority(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        let write = self.write;
        let r = queue::head_of_each_priority(self.c(), clinic_id, day, write).await;
        self.done(r)
    }
    async fn count_waiting(
        &mut self,
        clinic_id: &str,
        day: &str,
        priority: Priority,
        issued_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        let r = queue::count_waiting(self.c(), clinic_id, day, priority, issued_ms).await;
        self.done(r)
    }
    async fn open_tickets(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        let r = queue::open_tickets(self.c(), clinic_id, day).await;
        self.done(r)
    }
    async fn set_ticket_status(
        &mut self,
        id: &str,
        version: i64,
        to: Status,
        counter: Option<&str>,
    ) -> Result<bool, StoreError> {
        let r = queue::set_status(self.c(), id, version, to, counter).await;
        self.versioned(r)
    }
    async fn last_called(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Option<String>, StoreError> {
        let r = queue::last_called(self.c(), clinic_id, day).await;
        self.done(r)
    }
    async fn service_seconds(&mut self, clinic_id: &str) -> Result<u64, StoreError> {
        let r = queue::service_seconds(self.c(), clinic_id).await;
        self.done(r)
    }
    async fn set_day_closed(
        &mut self,
        clinic_id: &str,
        day: &str,
        closed: bool,
    ) -> Result<(), StoreError> {
        let r = queue::set_closed(self.c(), clinic_id, day, closed).await;
        self.done(r)
    }
    async fn is_day_closed(&mut self, clinic_id: &str, day: &str) -> Result<bool, StoreError> {
        let r = queue::is_closed(self.c(), clinic_id, day).await;
        self.done(r)
    }
    async fn day_tickets(
        &mut self,
        clinic_id: &str,
        day: &str,
    ) -> Result<Vec<(String, Option<f64>)>, StoreError> {
        let r = queue::day_tickets(self.c(), clinic_id, day).await;
        self.done(r)
    }
    async fn append_access(&mut self, rows: &[&LogRow]) -> Result<(), StoreError> {
        let r = access::append_rows(self.c(), rows).await;
        self.done(r)
    }
    async fn access_entries(
        &mut self,
        resource_type: &str,
        resource_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let r = access::entries(self.c(), resource_type, resource_id, after, limit).await;
        self.done(r)
    }
    async fn access_log(
        &mut self,
        f: &LogFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let r = access::filtered(self.c(), f, after, limit).await;
        self.done(r)
    }
    async fn purge_access_log(&mut self, before: &str, through: i64) -> Result<u64, StoreError> {
        let r = access::purge(self.c(), before, through).await;
        self.done(r)
    }
    async fn save_outcome(&mut self, o: &Outcome, expired_before: i64) -> Result<(), StoreError> {
        let r = settings::save_outcome(self.c(), o, expired_before).await;
        inserted(self.done(r)?)
    }
    async fn find_outcome(
        &mut self,
        caller_id: &str,
        key: &str,
        since: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let r = settings::find_outcome(self.c(), caller_id, key, since).await;
        self.done(r)
    }
    async fn setting_or_insert(&mut self, key: &str, value: &str) -> Result<String, StoreError> {
        let r = settings::get_or_insert(self.c(), key, value).await;
        self.done(r)
    }

    async fn insert_job(&mut self, job: &JobRecord) -> Result<(), StoreError> {
        let r = jobs::insert(self.c(), job).await;
        inserted(self.done(r)?)
    }
    async fn find_job(&mut self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let r = jobs::find(self.c(), id).await;
        self.done(r)
    }
    async fn claim_job(
        &mut self,
        runner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let r = jobs::claim(self.c(), runner, now_ms, lease_until).await;
        self.done(r)
    }
    async fn job_progress(
        &mut self,
        id: &str,
        runner: &str,
        progress: &JobProgress,
    ) -> Result<bool, StoreError> {
        let r = jobs::progress(self.c(), id, runner, progress).await;
        self.done(r)
    }
    async fn finish_job(
        &mut self,
        id: &str,
        runner: &str,
        end: &JobEnd,
    ) -> Result<bool, StoreError> {
        let r = jobs::finish(self.c(), id, runner, end).await;
        self.done(r)
    }
    async fn expired_jobs(
        &mut self,
        now_s: i64,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let r = jobs::expired(self.c(), now_s, limit).await;
        self.done(r)
    }
    async fn mark_job_removed(
        &mut self,
        id: &str,
        at: &str,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = jobs::mark_removed(self.c(), id, at, why).await;
        self.done(r)
    }
    async fn add_export_patients(
        &mut self,
        job_id: &str,
        patients: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let r = jobs::add_patients(self.c(), job_id, patients).await;
        self.done(r)
    }
    async fn withdrawn_jobs(
        &mut self,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let r = jobs::withdrawn(self.c(), limit).await;
        self.done(r)
    }
    async fn job_waiting(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        let r = jobs::waiting(self.c(), now_ms).await;
        self.done(r)
    }
    async fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        match &mut self.conn {
            // The snapshot lasts until the connection is closed: it never goes back to the pool
            // with a transaction open.
            Conn::Pooled(c) => c.close_on_drop(),
            Conn::Borrowed(_) => {
                return Err(StoreError::Other("a snapshot is taken on a read".into()))
            }
        }
        let r = jobs::begin_snapshot(self.c()).await;
        self.done(r)
    }
    async fn export_count(&mut self, scope: &ExportScope) -> Result<i64, StoreError> {
        let r = jobs::count(self.c(), scope).await;
        self.done(r)
    }
    async fn export_page(
        &mut self,
        scope: &ExportScope,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let r = jobs::page(self.c(), scope, after, limit).await;
        self.done(r)
    }
}
