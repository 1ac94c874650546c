//! Export jobs, each query written once for both engines: the job rows, their hand-over to a
//! runner, the list of patients a file names (so a file naming a patient sealed, deleted or
//! merged since is withdrawn), and the export's own reads ([`export`]). Times and the moment
//! from which patients' changes concern a file come from the caller (the store reads no clock).
mod export;
mod json;

pub use export::{
    count, export_columns, page, Cell, ClinicWindow, ColumnType, ExportRow, ExportScope,
};

use crate::{Dialect, Read, ReadExt, Row, StoreError, Write};

/// An export job as stored.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Why the file was withdrawn (`sealed`, `deleted`, `merged`, `unlisted`), if it was.
    pub withdrawn: Option<String>,
}

/// How a running job is doing, with its renewed lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    pub rows_written: i64,
    pub rows_total: Option<i64>,
    pub lease_until: i64,
    pub at: String,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A job's stored columns but `withdrawn`, which `find` works out and `claim` returns as stored.
const STORED: &str = "id, owner_id, kind, format, clinic_ids, sealed, from_day, to_day, state,
     rows_written, rows_total, size_bytes, error, runs, ip, request_id, client_request_id,
     created_at, updated_at, finished_at, expires_at, removed_at";

/// Why the file of job `j` is withdrawn, if it is: the first patient it names whose record was
/// sealed, deleted or merged (each bumps the version) after the export read it. Driven by the
/// few retired patients changed since the job's claim (`patients_retired`), each looked up in
/// the job's list by key, so its cost follows recent seals, not the file's size or the
/// tombstones of years. SQLite's planner is told so (`INDEXED BY`, `CROSS JOIN` fixes the
/// order); PostgreSQL's finds it from its statistics.
fn withdrawn_by(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "(SELECT CASE WHEN p.merged_into IS NOT NULL THEN 'merged'
                          WHEN p.deleted_at IS NOT NULL THEN 'deleted' ELSE 'sealed' END
              FROM patients p INDEXED BY patients_retired CROSS JOIN export_patients e
              WHERE (p.sealed_at IS NOT NULL OR p.deleted_at IS NOT NULL OR p.merged_into IS NOT NULL)
                AND p.updated_at >= j.changes_since
                AND e.job_id = j.id AND e.patient_id = p.id AND e.version < p.version
              LIMIT 1)"
        }
        Dialect::Postgres => {
            "(SELECT CASE WHEN p.merged_into IS NOT NULL THEN 'merged'
                          WHEN p.deleted_at IS NOT NULL THEN 'deleted' ELSE 'sealed' END
              FROM patients p JOIN export_patients e ON e.job_id = j.id AND e.patient_id = p.id
              WHERE (p.sealed_at IS NOT NULL OR p.deleted_at IS NOT NULL OR p.merged_into IS NOT NULL)
                AND p.updated_at >= j.changes_since AND e.version < p.version
              LIMIT 1)"
        }
    }
}

fn job(r: &dyn Row) -> Result<JobRecord, StoreError> {
    let kind = r.text(2)?;
    let clinic_ids = r
        .opt_text(4)?
        .map(|j| json::parse_strings(&j))
        .transpose()?;
    Ok(JobRecord {
        id: r.text(0)?,
        owner_id: r.text(1)?,
        format: r.text(3)?,
        scope: ExportScope {
            kind: kind.clone(),
            clinic_ids,
            sealed: r.flag(5)?,
            from_day: r.opt_text(6)?,
            to_day: r.opt_text(7)?,
            windows: Vec::new(),
        },
        kind,
        state: r.text(8)?,
        rows_written: r.int(9)?,
        rows_total: r.opt_int(10)?,
        size_bytes: r.opt_int(11)?,
        error: r.opt_text(12)?,
        runs: r.int(13)?,
        ip: r.text(14)?,
        request_id: r.text(15)?,
        client_request_id: r.opt_text(16)?,
        created_at: r.text(17)?,
        updated_at: r.text(18)?,
        finished_at: r.opt_text(19)?,
        expires_at: r.opt_int(20)?,
        removed_at: r.opt_text(21)?,
        withdrawn: r.opt_text(22)?,
    })
}

/// Stores a queued job (`j.created_at` is also its `updated_at`); false when the owner already
/// has a queued or running job (the unique index `jobs_one_active`, on both engines, whatever
/// the concurrency) or the id is taken: the caller answers `Conflict`.
pub fn insert(w: &mut dyn Write, j: &JobRecord) -> Result<bool, StoreError> {
    let clinics = j.scope.clinic_ids.as_deref().map(json::strings);
    let n = w.execute(
        "INSERT INTO jobs (id, owner_id, kind, format, clinic_ids, sealed, from_day, to_day,
             state, ip, request_id, client_request_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $12, $12)
         ON CONFLICT DO NOTHING",
        &[
            j.id.as_str().into(),
            j.owner_id.as_str().into(),
            j.kind.as_str().into(),
            j.format.as_str().into(),
            clinics.as_ref().into(),
            j.scope.sealed.into(),
            j.scope.from_day.as_deref().into(),
            j.scope.to_day.as_deref().into(),
            j.ip.as_str().into(),
            j.request_id.as_str().into(),
            j.client_request_id.as_deref().into(),
            j.created_at.as_str().into(),
        ],
    )?;
    Ok(n == 1)
}

/// A job, with `withdrawn` set when its file is withdrawn: marked so, or naming a patient whose
/// record was sealed, deleted or merged after the export read it (worked out in this query).
pub fn find(r: &mut dyn Read, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!(
        "SELECT {STORED}, COALESCE(j.withdrawn, {}) FROM jobs j WHERE j.id = $1",
        withdrawn_by(r.dialect())
    );
    r.first(&sql, &[id.into()], job)
}

/// Takes the oldest job that is queued, or running under a lease that ran out before `now_ms`,
/// for `runner` until `lease_until`; each job is handed to one runner at a time (SQLite's one
/// writer serializes claims; on PostgreSQL `FOR UPDATE SKIP LOCKED` gives concurrent claimers
/// different jobs or none). `now` is its `updated_at`; `changes_since` the moment from which
/// patients' changes may concern its file (the app's margin before `now_ms`, for clocks of
/// several processes). The patients an earlier run listed are forgotten.
pub fn claim(
    w: &mut dyn Write,
    runner: &str,
    now_ms: i64,
    lease_until: i64,
    now: &str,
    changes_since: &str,
) -> Result<Option<JobRecord>, StoreError> {
    let lock = match w.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', runner = $1, lease_until = $2, runs = runs + 1,
             rows_written = 0, updated_at = $4, changes_since = $5
         WHERE id = (SELECT id FROM jobs
                     WHERE state = 'queued' OR (state = 'running' AND lease_until < $3)
                     ORDER BY created_at, id LIMIT 1 {lock})
         RETURNING {STORED}, withdrawn"
    );
    let found = w.first(
        &sql,
        &[
            runner.into(),
            lease_until.into(),
            now_ms.into(),
            now.into(),
            changes_since.into(),
        ],
        job,
    )?;
    if let Some(j) = &found {
        // A run starts from nothing: what an earlier run read is in no file any more.
        forget_patients(w, &j.id)?;
    }
    Ok(found)
}

fn forget_patients(w: &mut dyn Write, id: &str) -> Result<(), StoreError> {
    w.execute(
        "DELETE FROM export_patients WHERE job_id = $1",
        &[id.into()],
    )?;
    Ok(())
}

/// Records progress and renews the lease; false when `runner` no longer holds the job.
pub fn progress(
    w: &mut dyn Write,
    id: &str,
    runner: &str,
    p: &JobProgress,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE jobs SET rows_written = $3, rows_total = $4, lease_until = $5, updated_at = $6
         WHERE id = $1 AND runner = $2 AND state = 'running'",
        &[
            id.into(),
            runner.into(),
            p.rows_written.into(),
            p.rows_total.into(),
            p.lease_until.into(),
            p.at.as_str().into(),
        ],
    )?;
    Ok(n == 1)
}

/// Adds a batch to the patients a job's file names (patient id, the version of the record the
/// export read); a patient already listed keeps the version first recorded. The batch goes in
/// as one JSON parameter (no limit on parameters), unpacked by each engine's JSON function.
pub fn add_patients(
    w: &mut dyn Write,
    job_id: &str,
    patients: &[(String, i64)],
) -> Result<(), StoreError> {
    if patients.is_empty() {
        return Ok(());
    }
    // `WHERE true`: SQLite would read `ON CONFLICT` as a join constraint of the FROM.
    let sql = format!(
        "INSERT INTO export_patients (job_id, patient_id, version)
         SELECT $1, p.value ->> 0, CAST(p.value ->> 1 AS BIGINT) FROM {} p WHERE true
         ON CONFLICT DO NOTHING",
        export::elements(w.dialect(), "$2")
    );
    w.execute(
        &sql,
        &[job_id.into(), json::pairs(patients).as_str().into()],
    )?;
    Ok(())
}

/// Ends a job `runner` holds; false when it no longer holds it. A failed job's list goes (it
/// has no file).
pub fn finish(w: &mut dyn Write, id: &str, runner: &str, end: &JobEnd) -> Result<bool, StoreError> {
    let n = match end {
        JobEnd::Succeeded {
            rows,
            size_bytes,
            at,
            expires_at,
        } => w.execute(
            "UPDATE jobs SET state = 'succeeded', rows_written = $3, rows_total = $3,
                 size_bytes = $4, finished_at = $5, updated_at = $5, expires_at = $6,
                 lease_until = NULL
             WHERE id = $1 AND runner = $2 AND state = 'running'",
            &[
                id.into(),
                runner.into(),
                (*rows).into(),
                (*size_bytes).into(),
                at.into(),
                (*expires_at).into(),
            ],
        )?,
        JobEnd::Failed { error, at } => w.execute(
            "UPDATE jobs SET state = 'failed', error = $3, finished_at = $4, updated_at = $4,
                 lease_until = NULL
             WHERE id = $1 AND runner = $2 AND state = 'running'",
            &[id.into(), runner.into(), error.into(), at.into()],
        )?,
    };
    let held = n == 1;
    if held && matches!(end, JobEnd::Failed { .. }) {
        forget_patients(w, id)?;
    }
    Ok(held)
}

/// Jobs whose file expired at or before `now_s` and is not yet removed, soonest first:
/// (id, format).
pub fn expired(
    r: &mut dyn Read,
    now_s: i64,
    limit: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    r.all(
        "SELECT id, format FROM jobs
         WHERE removed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
        &[now_s.into(), i64::from(limit).into()],
        |row| Ok((row.text(0)?, row.text(1)?)),
    )
}

/// Succeeded jobs whose file is still on disk but withdrawn: (id, format, why).
pub fn withdrawn(
    r: &mut dyn Read,
    limit: u32,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let sql = format!(
        "SELECT id, format, why FROM (
             SELECT j.id, j.format, COALESCE(j.withdrawn, {}) AS why
             FROM jobs j
             WHERE j.state = 'succeeded' AND j.removed_at IS NULL AND j.expires_at IS NOT NULL
         ) w
         WHERE why IS NOT NULL LIMIT $1",
        withdrawn_by(r.dialect())
    );
    r.all(&sql, &[i64::from(limit).into()], |row| {
        Ok((row.text(0)?, row.text(1)?, row.text(2)?))
    })
}

/// Records that a job's file is gone: after its retention (`why` absent), or withdrawn (`why`
/// says why). The first removal's time and reason stay. The job's patient list goes with it.
pub fn mark_removed(
    w: &mut dyn Write,
    id: &str,
    at: &str,
    why: Option<&str>,
) -> Result<(), StoreError> {
    w.execute(
        "UPDATE jobs SET removed_at = COALESCE(removed_at, $2),
             withdrawn = COALESCE(withdrawn, $3)
         WHERE id = $1",
        &[id.into(), at.into(), why.into()],
    )?;
    forget_patients(w, id)
}

/// Whether some job is claimable at `now_ms` (a read: lets an idle runner skip the write).
pub fn waiting(r: &mut dyn Read, now_ms: i64) -> Result<bool, StoreError> {
    let found = r.first(
        "SELECT EXISTS (SELECT 1 FROM jobs
                        WHERE state = 'queued' OR (state = 'running' AND lease_until < $1))",
        &[now_ms.into()],
        |row| row.flag(0),
    )?;
    Ok(found.unwrap_or(false))
}

/// Runs `f`, the reads of one export, on one snapshot of the database, in a read unit (never a
/// write unit). SQLite's readers already run each read unit in one read transaction. The
/// PostgreSQL engine's readers run statements one by one (autocommit): each would see what was
/// committed before it, so the export's count and pages are made one REPEATABLE READ
/// transaction here, ended however `f` ends (a panic included).
pub fn snapshot<T, E: From<StoreError>>(
    r: &mut dyn Read,
    f: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<T, E> {
    if r.dialect() == Dialect::Sqlite {
        return f(r);
    }
    // A write unit is a transaction already: a COMMIT here would end it midway.
    let reader = r.first(
        "SELECT current_setting('transaction_read_only') = 'on'",
        &[],
        |row| row.flag(0),
    )?;
    if reader != Some(true) {
        return Err(StoreError::other("a snapshot is taken on a read unit").into());
    }
    r.query(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        &[],
        &mut |_| Ok(()),
    )?;
    let held = Held { r };
    let out = f(&mut *held.r);
    drop(held);
    out
}

/// An open PostgreSQL transaction on a reader, ended when dropped.
struct Held<'a> {
    r: &'a mut dyn Read,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Only reads happened: COMMIT ends it either way (after a failed statement it rolls back).
        let _ = self.r.query("COMMIT", &[], &mut |_| Ok(()));
    }
}
