//! Export jobs in PostgreSQL: the job rows, their hand-over to a runner (`FOR UPDATE SKIP
//! LOCKED`: of several processes claiming at once, each gets a different job or none), and the
//! export's reads, paged by id inside one `REPEATABLE READ READ ONLY` transaction.
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::store::{
    export_columns, Cell, ColumnType, ExportRow, ExportScope, JobEnd, JobProgress, JobRecord,
    CHANGES_MARGIN_MS,
};

/// A job's columns but `withdrawn`, which `find` works out.
macro_rules! stored_columns {
    () => {
        "id, owner_id, kind, format, clinic_ids, sealed, from_day, to_day, state, rows_written,
         rows_total, size_bytes, error, runs, ip, request_id, client_request_id, created_at,
         updated_at, finished_at, expires_at, removed_at"
    };
}
const COLUMNS: &str = concat!(stored_columns!(), ", withdrawn");

/// Why the file of job `j` is withdrawn, if it is: the first patient it names whose record was
/// sealed, deleted or merged (each bumps the version) after the export read it. The retired
/// patients changed since the job's claim (`patients_retired`) are few; each is looked up in
/// the job's list by key.
const WITHDRAWN_BY: &str = "(SELECT CASE WHEN p.merged_into IS NOT NULL THEN 'merged'
                         WHEN p.deleted_at IS NOT NULL THEN 'deleted' ELSE 'sealed' END
        FROM patients p JOIN export_patients e ON e.job_id = j.id AND e.patient_id = p.id
        WHERE (p.sealed_at IS NOT NULL OR p.deleted_at IS NOT NULL OR p.merged_into IS NOT NULL)
          AND p.updated_at >= j.changes_since AND e.version < p.version
        LIMIT 1)";

fn job_of(r: &PgRow) -> Result<JobRecord, sqlx::Error> {
    let clinic_ids: Option<String> = r.try_get("clinic_ids")?;
    let kind: String = r.try_get("kind")?;
    Ok(JobRecord {
        id: r.try_get("id")?,
        owner_id: r.try_get("owner_id")?,
        format: r.try_get("format")?,
        scope: ExportScope {
            kind: kind.clone(),
            clinic_ids: clinic_ids.and_then(|j| serde_json::from_str(&j).ok()),
            sealed: r.try_get::<i64, _>("sealed")? != 0,
            from_day: r.try_get("from_day")?,
            to_day: r.try_get("to_day")?,
            windows: Vec::new(),
        },
        kind,
        state: r.try_get("state")?,
        rows_written: r.try_get("rows_written")?,
        rows_total: r.try_get("rows_total")?,
        size_bytes: r.try_get("size_bytes")?,
        error: r.try_get("error")?,
        runs: r.try_get("runs")?,
        ip: r.try_get("ip")?,
        request_id: r.try_get("request_id")?,
        client_request_id: r.try_get("client_request_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        expires_at: r.try_get("expires_at")?,
        removed_at: r.try_get("removed_at")?,
        withdrawn: r.try_get("withdrawn")?,
    })
}

/// Whether it was stored (false: the owner has an active job).
pub async fn insert(conn: &mut PgConnection, j: &JobRecord) -> Result<bool, sqlx::Error> {
    let clinics = j
        .scope
        .clinic_ids
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_default());
    let done = sqlx::query(
        "INSERT INTO jobs (id, owner_id, kind, format, clinic_ids, sealed, from_day, to_day,
             state, ip, request_id, client_request_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $12, $12)
         ON CONFLICT DO NOTHING",
    )
    .bind(&j.id)
    .bind(&j.owner_id)
    .bind(&j.kind)
    .bind(&j.format)
    .bind(clinics)
    .bind(i64::from(j.scope.sealed))
    .bind(&j.scope.from_day)
    .bind(&j.scope.to_day)
    .bind(&j.ip)
    .bind(&j.request_id)
    .bind(&j.client_request_id)
    .bind(&j.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<JobRecord>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {}, COALESCE(j.withdrawn, {WITHDRAWN_BY}) AS withdrawn FROM jobs j WHERE j.id = $1",
        stored_columns!()
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(job_of).transpose()
}

pub async fn claim(
    conn: &mut PgConnection,
    runner: &str,
    now_ms: i64,
    lease_until: i64,
) -> Result<Option<JobRecord>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET state = 'running', runner = $1, lease_until = $2, runs = runs + 1,
             rows_written = 0, updated_at = $4, changes_since = $5
         WHERE id = (SELECT id FROM jobs
                     WHERE state = 'queued' OR (state = 'running' AND lease_until < $3)
                     ORDER BY created_at, id LIMIT 1
                     FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(runner)
    .bind(lease_until)
    .bind(now_ms)
    .bind(crate::clock::now_rfc3339())
    .bind(crate::clock::rfc3339_of_ms(now_ms - CHANGES_MARGIN_MS))
    .fetch_optional(&mut *conn)
    .await?;
    let job = row.as_ref().map(job_of).transpose()?;
    if let Some(job) = &job {
        // A run starts from nothing: what an earlier run read is no longer in any file.
        forget_patients(conn, &job.id).await?;
    }
    Ok(job)
}

async fn forget_patients(conn: &mut PgConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM export_patients WHERE job_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The list goes in as two arrays, ids and versions (one statement, no parameter limit).
pub async fn add_patients(
    conn: &mut PgConnection,
    id: &str,
    patients: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    if patients.is_empty() {
        return Ok(());
    }
    let (ids, versions): (Vec<&str>, Vec<i64>) =
        patients.iter().map(|(p, v)| (p.as_str(), *v)).unzip();
    sqlx::query(
        "INSERT INTO export_patients (job_id, patient_id, version)
         SELECT $1, p, v FROM UNNEST($2::text[], $3::bigint[]) AS t (p, v)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(ids)
    .bind(versions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn withdrawn(
    conn: &mut PgConnection,
    limit: u32,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT id, format, why FROM (
             SELECT j.id, j.format, COALESCE(j.withdrawn, {WITHDRAWN_BY}) AS why
             FROM jobs j
             WHERE j.state = 'succeeded' AND j.removed_at IS NULL AND j.expires_at IS NOT NULL
         ) w
         WHERE why IS NOT NULL LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("id"), r.get("format"), r.get("why")))
        .collect())
}

pub async fn progress(
    conn: &mut PgConnection,
    id: &str,
    runner: &str,
    p: &JobProgress,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET rows_written = $3, rows_total = $4, lease_until = $5, updated_at = $6
         WHERE id = $1 AND runner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(runner)
    .bind(p.rows_written)
    .bind(p.rows_total)
    .bind(p.lease_until)
    .bind(&p.at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish(
    conn: &mut PgConnection,
    id: &str,
    runner: &str,
    end: &JobEnd,
) -> Result<bool, sqlx::Error> {
    let q = match end {
        JobEnd::Succeeded {
            rows,
            size_bytes,
            at,
            expires_at,
        } => sqlx::query(
            "UPDATE jobs SET state = 'succeeded', rows_written = $3, rows_total = $3,
                 size_bytes = $4, finished_at = $5, updated_at = $5, expires_at = $6,
                 lease_until = NULL
             WHERE id = $1 AND runner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(runner)
        .bind(rows)
        .bind(size_bytes)
        .bind(at)
        .bind(expires_at),
        JobEnd::Failed { error, at } => sqlx::query(
            "UPDATE jobs SET state = 'failed', error = $3, finished_at = $4, updated_at = $4,
                 lease_until = NULL
             WHERE id = $1 AND runner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(runner)
        .bind(error)
        .bind(at),
    };
    let held = q.execute(&mut *conn).await?.rows_affected() == 1;
    if held && matches!(end, JobEnd::Failed { .. }) {
        forget_patients(conn, id).await?;
    }
    Ok(held)
}

pub async fn expired(
    conn: &mut PgConnection,
    now_s: i64,
    limit: u32,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, format FROM jobs
         WHERE removed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now_s)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("id"), r.get("format")))
        .collect())
}

pub async fn waiting(conn: &mut PgConnection, now_ms: i64) -> Result<bool, sqlx::Error> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM jobs
                        WHERE state = 'queued' OR (state = 'running' AND lease_until < $1))",
    )
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    Ok(found)
}

pub async fn mark_removed(
    conn: &mut PgConnection,
    id: &str,
    at: &str,
    why: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET removed_at = COALESCE(removed_at, $2),
             withdrawn = COALESCE(withdrawn, $3)
         WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(why)
    .execute(&mut *conn)
    .await?;
    forget_patients(conn, id).await
}

pub async fn begin_snapshot(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The table, its alias and day column, and the sealed-record rule of each kind.
fn source(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "patients" => (
            "patients x",
            "x.deleted_at IS NULL AND x.merged_into IS NULL
             AND ($2::bigint = 1 OR x.sealed_at IS NULL)
             AND ($3::json IS NULL OR EXISTS (
                 SELECT 1 FROM json_array_elements($3::json) w
                 WHERE w ->> 'c' = x.clinic_id
                   AND (w ->> 'fs' IS NULL OR x.created_at >= w ->> 'fs')
                   AND (w ->> 'ts' IS NULL OR x.created_at < w ->> 'ts')))",
        ),
        "appointments" => (
            "appointments x",
            "x.deleted_at IS NULL
             AND ($2::bigint = 1 OR NOT EXISTS (SELECT 1 FROM patients s
                                        WHERE s.id = x.patient_id AND s.sealed_at IS NOT NULL))
             AND ($3::json IS NULL OR EXISTS (
                 SELECT 1 FROM json_array_elements($3::json) w
                 WHERE w ->> 'c' = x.clinic_id
                   AND (w ->> 'f' IS NULL OR x.start_unix >= (w ->> 'f')::bigint)
                   AND (w ->> 't' IS NULL OR x.start_unix < (w ->> 't')::bigint)))",
        ),
        _ => (
            "tickets x",
            "($2::bigint = 1 OR x.patient_id IS NULL
                     OR NOT EXISTS (SELECT 1 FROM patients s
                                    WHERE s.id = x.patient_id AND s.sealed_at IS NOT NULL))
             AND ($3::json IS NULL OR EXISTS (
                 SELECT 1 FROM json_array_elements($3::json) w
                 WHERE w ->> 'c' = x.clinic_id
                   AND (w ->> 'fd' IS NULL OR x.day >= w ->> 'fd')
                   AND (w ->> 'td' IS NULL OR x.day <= w ->> 'td')))",
        ),
    }
}

/// The patient a row names and the version of their record, as the export reads them.
fn named_patient(kind: &str) -> &'static str {
    match kind {
        "patients" => "x.id, x.version",
        _ => "x.patient_id, (SELECT n.version FROM patients n WHERE n.id = x.patient_id)",
    }
}

fn filtered(scope: &ExportScope, select: &str, tail: &str) -> String {
    let (table, rule) = source(&scope.kind);
    format!(
        "SELECT {select} FROM {table}
         WHERE ($1::text IS NULL OR x.clinic_id IN (SELECT json_array_elements_text($1::json)))
           AND {rule} {tail}"
    )
}

fn scoped<'q>(
    sql: &'q str,
    scope: &'q ExportScope,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(
            scope
                .clinic_ids
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default()),
        )
        .bind(i64::from(scope.sealed))
        .bind(scope.windows_json())
}

pub async fn count(conn: &mut PgConnection, scope: &ExportScope) -> Result<i64, sqlx::Error> {
    let sql = filtered(scope, "COUNT(*)", "");
    let row = scoped(&sql, scope).fetch_one(&mut *conn).await?;
    row.try_get(0)
}

pub async fn page(
    conn: &mut PgConnection,
    scope: &ExportScope,
    after: &str,
    limit: u32,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    let columns = export_columns(&scope.kind);
    let select = columns
        .iter()
        .map(|(c, _)| format!("x.{c}"))
        .chain([named_patient(&scope.kind).to_string()])
        .collect::<Vec<_>>()
        .join(", ");
    let sql = filtered(scope, &select, "AND x.id > $4 ORDER BY x.id LIMIT $5");
    let rows = scoped(&sql, scope)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, (_, ty)) in columns.iter().enumerate() {
            cells.push(match ty {
                ColumnType::Text => r
                    .try_get::<Option<String>, _>(i)?
                    .map_or(Cell::Null, Cell::Text),
                ColumnType::Int => r
                    .try_get::<Option<i64>, _>(i)?
                    .map_or(Cell::Null, Cell::Int),
                ColumnType::Real => r
                    .try_get::<Option<f64>, _>(i)?
                    .map_or(Cell::Null, Cell::Real),
            });
        }
        let n = columns.len();
        let patient: Option<String> = r.try_get(n)?;
        let version: Option<i64> = r.try_get(n + 1)?;
        out.push(ExportRow {
            id: r.try_get(0)?,
            cells,
            patient: patient.zip(version),
        });
    }
    Ok(out)
}
