//! `POST /v1/patients/batch`: many creates, one 207 answer with a result per item. With
//! `atomic: true` nothing is stored unless every item succeeds; the failing items keep their own
//! status and every other item answers 424.
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::domain::NewPatient;
use crate::auth::{perm, Caller, Require};
use crate::error::{ApiError, Problem};
use crate::http::extract::{parse_value, JsonBody};
use crate::idempotency::{record_in, Claimed};
use crate::state::AppState;
use crate::store::Write;

#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// All or nothing.
    #[serde(default)]
    pub atomic: bool,
    /// Create bodies as for `POST /v1/patients` (`NewPatient`); each object is checked on its
    /// own and a broken one fails only its own item (422 in its result).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchResults {
    pub results: Vec<ItemResult>,
}

/// Prefixes a problem's pointers with the item's place in the request body.
fn item_error(i: usize, mut err: ApiError) -> ApiError {
    if let ApiError::Unprocessable { errors, .. } | ApiError::BadRequest { errors, .. } = &mut err {
        for e in errors.iter_mut() {
            e.pointer = format!("/items/{i}{}", e.pointer);
        }
    }
    err
}

fn one(
    conn: &mut dyn Write,
    caller: &Caller,
    i: usize,
    item: serde_json::Value,
) -> Result<String, ApiError> {
    let new: NewPatient = parse_value(item).map_err(|e| item_error(i, e))?;
    let patient = super::create(conn, caller, &new).map_err(|e| item_error(i, e))?;
    Ok(patient.id)
}

fn result_of(outcome: &Result<String, ApiError>) -> ItemResult {
    match outcome {
        Ok(id) => ItemResult {
            status: 201,
            location: Some(super::location(id)),
            id: Some(id.clone()),
            problem: None,
        },
        Err(e) => ItemResult {
            status: e.status().code,
            id: None,
            location: None,
            problem: Some(e.problem()),
        },
    }
}

/// Create many patients (accepts Idempotency-Key)
#[utoipa::path(post, path = "/v1/patients/batch", tag = "patients", request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the first response for the same key and body")),
    responses((status = 207, description = "One result per item, in order", body = BatchResults),
        (status = 411, description = "Sent without Content-Length"),
        (status = 409, description = "The Idempotency-Key is in flight"),
        (status = 404, description = "A replayed key's patient is no longer yours to see"),
        (status = 410, description = "A replayed key's patient was deleted since"),
        (status = 451, description = "A replayed key's patient is sealed")))]
pub async fn batch(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    headers: HeaderMap,
    claimed: Claimed,
    JsonBody(req): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    if !headers.contains_key(header::CONTENT_LENGTH) {
        return Err(ApiError::LengthRequired(
            "a batch must be sent with Content-Length so its size is known up front".into(),
        ));
    }
    let max = st.config.batch_max_items;
    if req.items.len() > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {max} items"
        )));
    }
    let caller = caller.0;
    // One unit holds the whole batch and the key's outcome, so a retry after a hang-up or a
    // crash finds either everything (and replays it) or nothing.
    st.db
        .write_data(move |conn| {
            let outcomes = if req.atomic {
                atomic(conn, &caller, &req.items)?
            } else {
                one_by_one(conn, &caller, &req.items)?
            };
            let results = outcomes.iter().map(result_of).collect();
            let res = (StatusCode::MULTI_STATUS, Json(BatchResults { results })).into_response();
            record_in(conn, &claimed, res)
        })
        .await
}

type Items = [serde_json::Map<String, serde_json::Value>];

/// All items in one savepoint: kept only if every item succeeds; otherwise the good ones
/// answer 424.
fn atomic(
    conn: &mut dyn Write,
    caller: &Caller,
    items: &Items,
) -> Result<Vec<Result<String, ApiError>>, ApiError> {
    let mut outcomes = Vec::with_capacity(items.len());
    let kept = conn.savepoint(&mut |w| {
        for (i, item) in items.iter().enumerate() {
            outcomes.push(one(w, caller, i, serde_json::Value::Object(item.clone())));
        }
        Ok(outcomes.iter().all(Result::is_ok))
    })?;
    if !kept {
        if outcomes.iter().all(Result::is_ok) {
            return Err(ApiError::internal("an atomic batch was not kept"));
        }
        for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
            *o = Err(ApiError::FailedDependency(
                "not stored: another item of this atomic batch failed".into(),
            ));
        }
    }
    Ok(outcomes)
}

/// Each item in its own savepoint: a failure is that item's result and rolls back that item.
fn one_by_one(
    conn: &mut dyn Write,
    caller: &Caller,
    items: &Items,
) -> Result<Vec<Result<String, ApiError>>, ApiError> {
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut outcome = None;
        let kept = conn.savepoint(&mut |w| {
            let o = one(w, caller, i, serde_json::Value::Object(item.clone()));
            let keep = o.is_ok();
            outcome = Some(o);
            Ok(keep)
        });
        outcomes.push(match (kept, outcome) {
            (Ok(true), Some(o)) | (Ok(false), Some(o @ Err(_))) => o,
            // The item succeeded but could not be kept: that is its result.
            (Err(e), Some(Ok(_))) => Err(ApiError::from(e)),
            (Ok(false), Some(Ok(_))) => Err(ApiError::internal("a batch item was not kept")),
            // The savepoint could not be opened, or the failed item not undone.
            (Err(e), _) => return Err(ApiError::from(e)),
            (Ok(_), None) => return Err(ApiError::internal("a batch item was not run")),
        });
    }
    Ok(outcomes)
}

impl crate::http::extract::BodyRules for BatchRequest {}
