//! The export jobs' records: each function runs one query of `careq_store::jobs`. The store
//! reads no clock and writes no JSON of the app's, so what it is handed is worked out here: the
//! moments a claim stamps, and a dated scope's windows (`domain::windows_json`).
//!
//! An export's count and pages are read from one snapshot: run them inside
//! `careq_store::jobs::snapshot` in one read unit.
use careq_store::jobs as store;

use super::domain::windows_json;
use crate::store::{
    ExportRow, ExportScope, JobEnd, JobProgress, JobRecord, Read, StoreError, Write,
    CHANGES_MARGIN_MS,
};

/// Stores a queued job. `Conflict` when the owner already has a queued or running job (or, by
/// a bug, the id is taken).
pub fn insert_job(conn: &mut dyn Write, job: &JobRecord) -> Result<(), StoreError> {
    if store::insert(conn, job)? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// A job, with `withdrawn` set when its file is withdrawn: marked so, or naming a patient whose
/// record was sealed, deleted or merged after the export read it.
pub fn find_job(conn: &mut dyn Read, id: &str) -> Result<Option<JobRecord>, StoreError> {
    store::find(conn, id)
}

/// Takes the oldest job that is queued, or running under a lease that ran out before `now_ms`,
/// for `runner` until `lease_until`; each job is handed to one runner at a time. The patients
/// an earlier run listed are forgotten, and the job notes from when patients' changes may
/// concern its file: `CHANGES_MARGIN_MS` before `now_ms`.
pub fn claim_job(
    conn: &mut dyn Write,
    runner: &str,
    now_ms: i64,
    lease_until: i64,
) -> Result<Option<JobRecord>, StoreError> {
    let now = crate::clock::now_rfc3339();
    let changes_since = crate::clock::rfc3339_of_ms(now_ms - CHANGES_MARGIN_MS);
    store::claim(conn, runner, now_ms, lease_until, &now, &changes_since)
}

/// Records progress and renews the lease; false when `runner` no longer holds the job.
pub fn job_progress(
    conn: &mut dyn Write,
    id: &str,
    runner: &str,
    progress: &JobProgress,
) -> Result<bool, StoreError> {
    store::progress(conn, id, runner, progress)
}

/// Ends a job `runner` holds (succeeded with its size, or failed with its error); false when it
/// no longer holds it.
pub fn finish_job(
    conn: &mut dyn Write,
    id: &str,
    runner: &str,
    end: &JobEnd,
) -> Result<bool, StoreError> {
    store::finish(conn, id, runner, end)
}

/// Jobs whose file expired at or before `now_s` and is not yet removed: (id, format).
pub fn expired_jobs(
    conn: &mut dyn Read,
    now_s: i64,
    limit: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    store::expired(conn, now_s, limit)
}

/// Records that a job's file is gone from disk: after its retention (`why` absent), or
/// withdrawn (`why` says why). The job's patient list goes with it.
pub fn mark_job_removed(
    conn: &mut dyn Write,
    id: &str,
    at: &str,
    why: Option<&str>,
) -> Result<(), StoreError> {
    store::mark_removed(conn, id, at, why)
}

/// Adds to the patients a job's file names (patient id, the version of the record the export
/// read); a patient already listed keeps the version first recorded.
pub fn add_export_patients(
    conn: &mut dyn Write,
    job_id: &str,
    patients: &[(String, i64)],
) -> Result<(), StoreError> {
    store::add_patients(conn, job_id, patients)
}

/// Succeeded jobs whose file is still on disk but withdrawn: (id, format, why).
pub fn withdrawn_jobs(
    conn: &mut dyn Read,
    limit: u32,
) -> Result<Vec<(String, String, String)>, StoreError> {
    store::withdrawn(conn, limit)
}

/// Whether some job is claimable at `now_ms` (a read: lets an idle runner skip the write).
pub fn job_waiting(conn: &mut dyn Read, now_ms: i64) -> Result<bool, StoreError> {
    store::waiting(conn, now_ms)
}

/// How many rows an export of `scope` writes.
pub fn export_count(conn: &mut dyn Read, scope: &ExportScope) -> Result<i64, StoreError> {
    store::count(conn, scope, windows_json(scope).as_deref())
}

/// The export's rows after id `after` in id order (keyset), at most `limit`.
pub fn export_page(
    conn: &mut dyn Read,
    scope: &ExportScope,
    after: &str,
    limit: u32,
) -> Result<Vec<ExportRow>, StoreError> {
    store::page(conn, scope, windows_json(scope).as_deref(), after, limit)
}
