//! Exports: `POST /v1/exports` accepts a job (202), `GET /v1/jobs/{id}` follows it (200, then
//! 303 to the file), `GET /v1/exports/{id}/file` serves the finished file with byte ranges. The
//! rules (who may export what, one active export per user, who sees a job) live here; the
//! runner (`runner.rs`) writes the files; `records.rs` reads and writes the job rows;
//! `routes.rs` holds thin handlers.
pub mod domain;
pub mod records;
pub mod routes;
pub mod runner;

use std::path::PathBuf;

use crate::auth::{Caller, Role};
use crate::config::Config;
use crate::error::{ApiError, FieldError, RateInfo};
use crate::store::{ClinicWindow, ExportScope, JobRecord, Store, StoreError};
use domain::{Format, Job, ValidExport};

pub use routes::router;

/// Seconds a client is told to wait before asking about a job again.
pub const POLL_SECONDS: u64 = 1;

pub fn job_location(id: &str) -> String {
    format!("/v1/jobs/{id}")
}

pub use domain::file_location;

/// The scope with its days worked out on each clinic's clock (`ExportScope::windows`, which
/// `domain::windows_json` hands to the store's export reads): the start of `from` to the end
/// of `to` in each clinic's zone, so a 00:30 appointment in Vienna falls on the Vienna day, as
/// the lists' `day=` has it.
pub async fn on_clinic_clocks(db: &Store, scope: &ExportScope) -> Result<ExportScope, ApiError> {
    let mut scope = scope.clone();
    scope.windows.clear();
    if scope.from_day.is_none() && scope.to_day.is_none() {
        return Ok(scope);
    }
    let day = |d: &Option<String>| {
        d.as_deref()
            .map(str::parse::<jiff::civil::Date>)
            .transpose()
            .map_err(ApiError::internal)
    };
    let (from, to) = (day(&scope.from_day)?, day(&scope.to_day)?);
    for clinic in crate::clinics::among(db, scope.clinic_ids.as_deref()).await? {
        let bounds = |d: Option<jiff::civil::Date>| {
            d.map(|d| crate::clock::day_bounds(d, &clinic.timezone))
                .transpose()
                .map_err(ApiError::internal)
        };
        scope.windows.push(ClinicWindow {
            from: bounds(from)?.map(|(start, _)| start),
            to: bounds(to)?.map(|(_, end)| end),
            clinic_id: clinic.id,
        });
    }
    Ok(scope)
}

/// Where a finished job's file lives.
pub fn file_path(config: &Config, id: &str, format: &str) -> PathBuf {
    config.export_dir().join(format!("{id}.{format}"))
}

/// Where a running job writes, renamed to `file_path` once complete.
pub fn part_path(config: &Config, id: &str) -> PathBuf {
    config.export_dir().join(format!("{id}.part"))
}

/// Accepts an export: the scope is fixed now (the caller's clinics, sealed records for admins
/// only), and the job is stored queued for a runner. A caller with an active export gets 429.
pub async fn start(db: &Store, caller: &Caller, v: ValidExport) -> Result<Job, ApiError> {
    let clinic_ids = match &v.clinic_id {
        Some(id) => {
            let wanted = id.clone();
            let found = db
                .read(move |conn| Ok(crate::clinics::records::find_clinic(conn, &wanted)?))
                .await?;
            if !found.is_some_and(|c| caller.sees_clinic(&c.id)) {
                return Err(ApiError::invalid(vec![FieldError::new(
                    "/clinic_id",
                    "no clinic with this id that you belong to",
                )]));
            }
            Some(vec![id.clone()])
        }
        None if caller.role == Role::Admin => None,
        None => Some(caller.clinic_ids.clone()),
    };
    let now = crate::clock::now_rfc3339();
    let record = JobRecord {
        id: crate::ids::new_id("job"),
        owner_id: caller.user_id.clone(),
        kind: v.kind.as_str().into(),
        format: v.format.as_str().into(),
        scope: ExportScope {
            kind: v.kind.as_str().into(),
            clinic_ids,
            sealed: caller.role == Role::Admin,
            from_day: v.from.clone(),
            to_day: v.to.clone(),
            windows: Vec::new(),
        },
        state: "queued".into(),
        ip: caller.ip.to_string(),
        request_id: caller.request_id.clone(),
        client_request_id: caller.client_request_id.clone(),
        created_at: now.clone(),
        updated_at: now,
        ..JobRecord::default()
    };
    let stored = db
        .write_data(move |conn| match records::insert_job(conn, &record) {
            Ok(()) => Ok(record.clone()),
            Err(StoreError::Conflict) => Err(busy()),
            Err(e) => Err(e.into()),
        })
        .await?;
    Ok(Job::of(&stored))
}

/// 429: one export per user at a time.
fn busy() -> ApiError {
    ApiError::TooManyRequests {
        detail: "you have an export queued or running; follow it at /v1/jobs/{id} and try again \
                 once it has finished"
            .into(),
        retry_after: POLL_SECONDS * 5,
        rate: Some(RateInfo {
            limit: 1,
            remaining: 0,
            reset_seconds: POLL_SECONDS * 5,
        }),
    }
}

/// A job the caller may see: any for an admin; their own for others, while what it exported is
/// still theirs to see (the role and clinics they have now, not those they had when they asked
/// for it). Others get 404, as if it were absent.
pub async fn find(db: &Store, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    let id = id.to_string();
    db.lookup(move |conn| Ok(records::find_job(conn, &id)?))
        .await?
        .filter(|j| {
            caller.role == Role::Admin
                || (j.owner_id == caller.user_id && still_sees(caller, &j.scope))
        })
        .ok_or_else(|| ApiError::NotFound("no export job with this id".into()))
}

/// Whether a non-admin may see everything a scope covers now: no sealed records, and only
/// clinics they belong to today.
fn still_sees(caller: &Caller, scope: &ExportScope) -> bool {
    !scope.sealed
        && scope
            .clinic_ids
            .as_ref()
            .is_some_and(|ids| ids.iter().all(|c| caller.sees_clinic(c)))
}

/// The finished file of a job the caller may see: 404 while it is not finished, 410 once the
/// retention period removed it or once a patient it names was sealed, deleted or merged (the
/// file is then removed at once, if the sweep has not done so yet).
pub async fn finished_file(
    db: &Store,
    config: &Config,
    caller: &Caller,
    id: &str,
) -> Result<(JobRecord, Format, PathBuf), ApiError> {
    let job = find(db, caller, id).await?;
    if job.state != "succeeded" {
        return Err(ApiError::NotFound(format!(
            "this export has no file: it is {}; see {}",
            job.state,
            job_location(id)
        )));
    }
    if let Some(why) = &job.withdrawn {
        if job.removed_at.is_none() {
            // The answer is 410 either way; a file that stays is removed by the next sweep.
            if let Err(e) = discard(db, config, &job.id, &job.format, Some(why)).await {
                tracing::warn!(job = %job.id, error = ?e, "removing a withdrawn export failed");
            }
        }
        return Err(withdrawn(why));
    }
    let expired = job
        .expires_at
        .is_some_and(|at| at <= crate::clock::now_unix());
    if job.removed_at.is_some() || expired {
        return Err(gone());
    }
    let format = Format::parse(&job.format).ok_or_else(|| ApiError::internal("bad format"))?;
    let path = file_path(config, &job.id, &job.format);
    Ok((job, format, path))
}

pub fn gone() -> ApiError {
    ApiError::Gone("this export's file was removed after its retention period; export again".into())
}

/// 410 for a file taken back because a patient it names is sealed, deleted or merged now.
fn withdrawn(why: &str) -> ApiError {
    if why == "unlisted" {
        return ApiError::Gone(
            "this export's file was withdrawn and removed: it was made before careq recorded \
             which patients a file names, so it could outlive a seal; export again"
                .into(),
        );
    }
    let what = match why {
        "merged" => "merged into another record",
        "deleted" => "deleted",
        _ => "sealed",
    };
    ApiError::Gone(format!(
        "this export's file was withdrawn and removed: a patient it names has been {what} since \
         it was made; export again for what you may see now"
    ))
}

/// Removes a job's file from disk and records it removed (`why`: withdrawn, and why; `None`:
/// its retention ran out). A file already gone is fine.
pub async fn discard(
    db: &Store,
    config: &Config,
    id: &str,
    format: &str,
    why: Option<&str>,
) -> Result<(), ApiError> {
    let path = file_path(config, id, format);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    let (id, at, why) = (
        id.to_string(),
        crate::clock::now_rfc3339(),
        why.map(str::to_string),
    );
    db.write(move |conn| Ok(records::mark_job_removed(conn, &id, &at, why.as_deref())?))
        .await
}
