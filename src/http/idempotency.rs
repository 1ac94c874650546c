//! `Idempotency-Key` for creating POSTs: the first response is stored durably per caller and key;
//! the same key and body replays it (`Idempotent-Replayed: true`), another body answers 422, and a
//! key whose first request is still running answers 409. Keys are kept 24 hours.
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use sha2::{Digest, Sha256};

use super::extract::read_body;
use super::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};

const KEEP_SECONDS: i64 = 24 * 60 * 60;
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Headers of the first response that a replay repeats.
const KEPT: [HeaderName; 4] = [
    header::LOCATION,
    header::ETAG,
    header::CONTENT_TYPE,
    header::LAST_MODIFIED,
];

fn bad_key() -> ApiError {
    ApiError::BadRequest {
        detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        errors: vec![FieldError::new(
            "header/Idempotency-Key",
            "1 to 255 visible ASCII characters",
        )],
    }
}

pub async fn idempotency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match run(st, req, next).await {
        Ok(res) | Err(res) => res,
    }
}

async fn run(st: AppState, req: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return Ok(next.run(req).await);
    };
    let (mut parts, body) = req.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &st)
        .await
        .map_err(IntoResponse::into_response)?;
    // Authentication comes first: a request without credentials is a 401 whatever its key.
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| bad_key().into_response())?
        .to_string();
    let now = crate::auth::tokens::now_unix();
    let db_err = |e: sqlx::Error| ApiError::from(e).into_response();

    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now - KEEP_SECONDS)
        .execute(&st.db)
        .await
        .map_err(db_err)?;
    // The key is claimed before the body is read: from here on the request is in flight, and a
    // second request with the same key answers 409 until this one has its answer stored.
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (caller_id, key, request_hash, created_at) VALUES ($1, $2, '', $3)
         ON CONFLICT (caller_id, key) DO NOTHING",
    )
    .bind(&caller.user_id)
    .bind(&key)
    .bind(now)
    .execute(&st.db)
    .await
    .map_err(db_err)?
    .rows_affected()
        == 1;
    let bytes = match read_body(body, &st).await {
        Ok(b) => b,
        Err(e) => {
            if claimed {
                release(&st, &caller.user_id, &key).await;
            }
            return Err(e.into_response());
        }
    };
    let hash = request_hash(&parts, &bytes);
    if !claimed {
        return Err(replay(&st, &caller.user_id, &key, &hash).await);
    }
    sqlx::query("UPDATE idempotency_keys SET request_hash = $1 WHERE caller_id = $2 AND key = $3")
        .bind(&hash)
        .bind(&caller.user_id)
        .bind(&key)
        .execute(&st.db)
        .await
        .map_err(db_err)?;

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if res.status().is_server_error() {
        // Nothing was done that needs protecting: let the client retry with the same key.
        release(&st, &caller.user_id, &key).await;
        return Ok(res);
    }
    let (res_parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(e).into_response())?;
    let kept: Vec<(String, String)> = KEPT
        .iter()
        .filter_map(|n| {
            Some((
                n.to_string(),
                res_parts.headers.get(n)?.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    sqlx::query(
        "UPDATE idempotency_keys SET completed = 1, status = $1, headers = $2, body = $3
         WHERE caller_id = $4 AND key = $5",
    )
    .bind(res_parts.status.as_u16() as i64)
    .bind(serde_json::to_string(&kept).unwrap_or_default())
    .bind(body.to_vec())
    .bind(&caller.user_id)
    .bind(&key)
    .execute(&st.db)
    .await
    .map_err(db_err)?;
    Ok(Response::from_parts(res_parts, Body::from(body)))
}

/// Forgets a claimed key whose request produced nothing worth replaying.
async fn release(st: &AppState, caller_id: &str, key: &str) {
    let _ = sqlx::query("DELETE FROM idempotency_keys WHERE caller_id = $1 AND key = $2")
        .bind(caller_id)
        .bind(key)
        .execute(&st.db)
        .await;
}

fn request_hash(parts: &http::request::Parts, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

async fn replay(st: &AppState, caller_id: &str, key: &str, hash: &str) -> Response {
    type Stored = (String, i64, Option<i64>, Option<String>, Option<Vec<u8>>);
    let row: Result<Option<Stored>, _> = sqlx::query_as(
        "SELECT request_hash, completed, status, headers, body FROM idempotency_keys
         WHERE caller_id = $1 AND key = $2",
    )
    .bind(caller_id)
    .bind(key)
    .fetch_optional(&st.db)
    .await;
    let (stored_hash, completed, status, headers, body) = match row {
        Ok(Some(r)) => r,
        Ok(None) => {
            return ApiError::Conflict {
                detail: "this Idempotency-Key was just released; send the request again".into(),
                existing: None,
            }
            .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if completed == 0 {
        return ApiError::Conflict {
            detail: "a request with this Idempotency-Key is still being processed".into(),
            existing: None,
        }
        .into_response();
    }
    if stored_hash != hash {
        return ApiError::Unprocessable {
            detail: "this Idempotency-Key was already used with a different request".into(),
            errors: vec![FieldError::new(
                "header/Idempotency-Key",
                "reused with another body",
            )],
        }
        .into_response();
    }
    let status = status
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = (status, body.unwrap_or_default()).into_response();
    let kept: Vec<(String, String)> = headers
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    for (name, value) in kept {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            res.headers_mut().insert(n, v);
        }
    }
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}
