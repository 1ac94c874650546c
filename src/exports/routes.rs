//! `/v1/exports` and `/v1/jobs/{id}` handlers: extract, parse, call the service, answer.
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::domain::{Job, NewExport, ValidExport};
use super::{file_location, job_location, POLL_SECONDS};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require};
use crate::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::range::{self, FileMeta};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/exports", post(create))
        .route("/v1/jobs/{id}", get(read))
        .route("/v1/exports/{id}/file", get(file))
}

/// A job answer with `Location` and the headers every job answer carries.
fn job_response(status: StatusCode, job: &Job, location: Option<String>) -> Response {
    let mut res = (status, Json(job)).into_response();
    let h = res.headers_mut();
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, l);
    }
    if matches!(job.state.as_str(), "queued" | "running") {
        h.insert(header::RETRY_AFTER, HeaderValue::from(POLL_SECONDS));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Start an export
///
/// The job is accepted and runs in the background; follow `Location` (the job) until it
/// answers 303 to the file. One export per user at a time: a second while one is queued or
/// running gets 429.
#[utoipa::path(post, path = "/v1/exports", tag = "exports", request_body = NewExport,
    responses((status = 202, description = "Accepted: the job, queued", body = Job),
        (status = 403, description = "Your role may not export"),
        (status = 429, description = "You have an export queued or running")))]
pub async fn create(
    State(st): State<AppState>,
    caller: Require<perm::Export>,
    JsonBody(new): JsonBody<NewExport>,
) -> Result<Response, ApiError> {
    let valid = ValidExport::parse(&new).map_err(ApiError::invalid)?;
    let job = super::start(&st.db, &caller, valid).await?;
    st.jobs.notify_one();
    let location = job_location(&job.id);
    Ok(job_response(StatusCode::ACCEPTED, &job, Some(location)))
}

/// Follow an export job
///
/// 200 with `Retry-After` while queued or running; 303 to the file once it succeeded; 200 with
/// a problem in `error` once it failed. Only admins and the job's owner see it, the owner only
/// while their role and clinics today still cover what it exports.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "exports",
    params(("id" = String, Path, pattern = "^job_[0-9a-f]{20}$")),
    responses((status = 200, description = "Queued, running (with `Retry-After`) or failed", body = Job,
            headers(("Retry-After" = String, description = "While queued or running: seconds until it is worth asking again"))),
        (status = 303, description = "Succeeded: `Location` is the file", body = Job),
        (status = 403, description = "Your role may not export"),
        (status = 404, description = "No such job, not yours, or covering clinics or sealed records you may no longer see")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::Export>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = Job::of(&super::find(&st.db, &caller, &id).await?);
    Ok(match job.state.as_str() {
        "succeeded" => job_response(StatusCode::SEE_OTHER, &job, Some(file_location(&id))),
        _ => job_response(StatusCode::OK, &job, None),
    })
}

/// Download an export's file
///
/// Streamed with `Accept-Ranges: bytes`: one `Range` gets 206 (with `If-Range`, only while the
/// validator is current; a stale one gets the whole file), a range outside the file 416, and
/// several ranges the whole file with 200. After the retention period the file is gone (410),
/// and so is a file naming a patient who has since been sealed, deleted or merged (410, the
/// problem says which). Its owner gets it only while their role and clinics today still cover
/// what it exports (404 otherwise).
#[utoipa::path(get, path = "/v1/exports/{id}/file", tag = "exports",
    params(("id" = String, Path, pattern = "^job_[0-9a-f]{20}$"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-99`"),
        ("If-Range" = Option<String>, Header, description = "The file's ETag (or Last-Modified): the range only if it is still current")),
    responses((status = 200, description = "The whole file", content((String = "text/csv"), (String = "application/x-ndjson")),
            headers(("ETag" = String), ("Accept-Ranges" = String), ("Content-Disposition" = String), ("Last-Modified" = String))),
        (status = 206, description = "The range asked for", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 304, description = "Not modified"),
        (status = 403, description = "Your role may not export"),
        (status = 404, description = "No such job, not yours, not finished, or covering clinics or sealed records you may no longer see"),
        (status = 410, description = "Removed after the retention period, or withdrawn because a patient it names was sealed, deleted or merged since"),
        (status = 416, description = "The range lies outside the file")))]
pub async fn file(
    State(st): State<AppState>,
    caller: Require<perm::Export>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job, format, path) = super::finished_file(&st.db, &st.config, &caller, &id).await?;
    let meta = FileMeta {
        path: &path,
        content_type: format.media_type(),
        etag: format!("\"{}-{}\"", job.id, job.size_bytes.unwrap_or(0)),
        modified: job.finished_at.as_deref().map(crate::clock::unix_of),
        filename: format!("careq-{}-{}.{}", job.kind, job.id, job.format),
    };
    let res = range::serve(&headers, meta)
        .await?
        .ok_or_else(super::gone)?;
    if matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        let touched = [Touch {
            resource_type: "export",
            resource_id: &job.id,
            patient: None,
        }];
        access::record_now(&st.db, &caller, Action::Read, &touched).await?;
    }
    Ok(res)
}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;
    use crate::error::FieldError;

    /// The export rules, for a body that also has shape errors.
    impl crate::http::extract::BodyRules for NewExport {
        fn rule_errors(&self) -> Vec<FieldError> {
            ValidExport::parse(self).err().unwrap_or_default()
        }
    }
}
