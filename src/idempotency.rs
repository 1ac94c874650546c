//! `Idempotency-Key` for creating POSTs. While a request runs, its key is claimed in memory (a
//! second request with the key answers 409); the claim ends with the request, however it ends,
//! so a client that hangs up never holds a key. The outcome is stored durably per caller and key
//! in the same transaction as the change it reports (`record_in`), so there is never a change
//! without its outcome or an outcome without its change. The same key and body then replays the
//! first answer (`Idempotent-Replayed: true`) once the feature's check says the caller may still
//! see what it names; another body answers 422. Outcomes are kept 24 hours.
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::StatusCode;
use sha2::{Digest, Sha256};

use crate::access::records;
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::http::extract::read_body;
use crate::state::AppState;
use crate::store::{Outcome, Write};

const KEEP_SECONDS: i64 = 24 * 60 * 60;
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Headers of the first response that a replay repeats.
const KEPT: [HeaderName; 4] = [
    header::LOCATION,
    header::ETAG,
    header::CONTENT_TYPE,
    header::LAST_MODIFIED,
];

/// A stored answer about to be replayed, as the feature's check sees it.
pub struct Replayed {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// The feature's say on a replay: `Ok` to replay, or the error to answer instead (the record
/// was sealed, deleted or moved out of the caller's clinics since). It may also log the access.
pub type ReplayCheck = Arc<
    dyn Fn(AppState, Caller, Replayed) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send>>
        + Send
        + Sync,
>;

/// The layer's state: the app, the keys in flight, and the feature's replay check.
#[derive(Clone)]
pub struct Idempotency {
    app: AppState,
    in_flight: Arc<Mutex<HashSet<(String, String)>>>,
    check: ReplayCheck,
}

impl Idempotency {
    pub fn new(app: AppState, check: ReplayCheck) -> Self {
        Self {
            app,
            in_flight: Arc::default(),
            check,
        }
    }
}

/// A key claimed by a running request; dropping it releases the key.
struct InFlight {
    set: Arc<Mutex<HashSet<(String, String)>>>,
    key: (String, String),
}

impl InFlight {
    fn claim(set: &Arc<Mutex<HashSet<(String, String)>>>, key: (String, String)) -> Option<Self> {
        let mut held = set.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(key.clone()).then(|| InFlight {
            set: set.clone(),
            key,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut held = self.set.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.key);
    }
}

/// What a handler needs to store its outcome: put in the request's extensions by the layer.
#[derive(Debug, Clone)]
pub struct Claim {
    caller_id: String,
    key: String,
    request_hash: String,
}

/// The request's claim, if it came with an `Idempotency-Key`.
#[derive(Clone)]
pub struct Claimed(pub Option<Claim>);

impl<S: Send + Sync> FromRequestParts<S> for Claimed {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Claimed(parts.extensions.get::<Claim>().cloned()))
    }
}

/// Marks a response whose outcome a handler already stored.
#[derive(Clone, Copy)]
struct Recorded;

fn bad_key() -> ApiError {
    ApiError::BadRequest {
        detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        errors: vec![FieldError::new(
            "header/Idempotency-Key",
            "1 to 255 visible ASCII characters",
        )],
    }
}

pub async fn idempotency(State(st): State<Idempotency>, req: Request, next: Next) -> Response {
    match run(st, req, next).await {
        Ok(res) | Err(res) => res,
    }
}

async fn run(st: Idempotency, req: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return Ok(next.run(req).await);
    };
    let app = &st.app;
    let (mut parts, body) = req.into_parts();
    // Authentication comes first: a request without credentials is a 401 whatever its key.
    let caller = Caller::from_request_parts(&mut parts, app)
        .await
        .map_err(IntoResponse::into_response)?;
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| bad_key().into_response())?
        .to_string();
    // Claimed before the body is read: from here on the request is in flight.
    let Some(_claim) = InFlight::claim(&st.in_flight, (caller.user_id.clone(), key.clone())) else {
        return Err(ApiError::Conflict {
            detail: "a request with this Idempotency-Key is still being processed".into(),
            existing: None,
        }
        .into_response());
    };
    let bytes = read_body(body, &app.config)
        .await
        .map_err(IntoResponse::into_response)?;
    let hash = request_hash(&parts, &bytes);
    // Looked up only under the claim, so an outcome stored by a request that just finished is
    // always seen here.
    if let Some(stored) = find(app, &caller.user_id, &key)
        .await
        .map_err(IntoResponse::into_response)?
    {
        return Err(replay(&st, caller, stored, &hash).await);
    }

    let claim = Claim {
        caller_id: caller.user_id.clone(),
        key,
        request_hash: hash,
    };
    parts.extensions.insert(claim.clone());
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if res.extensions().get::<Recorded>().is_some() || !res.status().is_client_error() {
        // Stored with its change, or a 5xx: nothing was done, so a retry may run afresh.
        return Ok(res);
    }
    // A refusal changed nothing; it is stored on its own so a retry hears the same answer.
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(e).into_response())?;
    let (outcome, res) = outcome_of(&claim, parts, body).map_err(IntoResponse::into_response)?;
    app.db
        .write(move |conn| {
            records::save_outcome(conn, &outcome, outcome.created_at - KEEP_SECONDS)?;
            Ok(())
        })
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(res)
}

/// Stores `res` as the outcome of the claimed key inside the caller's unit of work, and hands
/// it back. Without a claim it is returned untouched. A unit runs where nothing can be awaited,
/// so `res` must carry its whole body already (a handler's in-memory answer); one that would
/// have to wait for its body is an internal error.
pub fn record_in(
    conn: &mut dyn Write,
    claimed: &Claimed,
    res: Response,
) -> Result<Response, ApiError> {
    use futures_util::FutureExt;
    let Some(claim) = &claimed.0 else {
        return Ok(res);
    };
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .now_or_never()
        .ok_or_else(|| ApiError::internal("a recorded response's body was not in memory"))?
        .map_err(ApiError::internal)?;
    let (outcome, res) = outcome_of(claim, parts, body)?;
    records::save_outcome(conn, &outcome, outcome.created_at - KEEP_SECONDS)?;
    Ok(res)
}

/// The outcome to store under the claim for the response made of `parts` and `body`, and that
/// response rebuilt (marked as recorded) around the buffered body.
fn outcome_of(
    claim: &Claim,
    mut parts: http::response::Parts,
    body: bytes::Bytes,
) -> Result<(Outcome, Response), ApiError> {
    let kept: Vec<(String, String)> = KEPT
        .iter()
        .filter_map(|n| {
            Some((
                n.to_string(),
                parts.headers.get(n)?.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let outcome = Outcome {
        caller_id: claim.caller_id.clone(),
        key: claim.key.clone(),
        request_hash: claim.request_hash.clone(),
        status: parts.status.as_u16(),
        headers: serde_json::to_string(&kept).map_err(ApiError::internal)?,
        body: body.to_vec(),
        created_at: crate::clock::now_unix(),
    };
    parts.extensions.insert(Recorded);
    Ok((outcome, Response::from_parts(parts, Body::from(body))))
}

async fn find(app: &AppState, caller_id: &str, key: &str) -> Result<Option<Outcome>, ApiError> {
    let since = crate::clock::now_unix() - KEEP_SECONDS;
    let (caller_id, key) = (caller_id.to_string(), key.to_string());
    app.db
        .lookup(move |conn| Ok(records::find_outcome(conn, &caller_id, &key, since)?))
        .await
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

async fn replay(st: &Idempotency, caller: Caller, stored: Outcome, hash: &str) -> Response {
    if stored.request_hash != hash {
        return ApiError::Unprocessable {
            detail: "this Idempotency-Key was already used with a different request".into(),
            errors: vec![FieldError::new(
                "header/Idempotency-Key",
                "reused with another body",
            )],
        }
        .into_response();
    }
    let kept: Vec<(String, String)> = serde_json::from_str(&stored.headers).unwrap_or_default();
    let location = kept
        .iter()
        .find(|(n, _)| n == header::LOCATION.as_str())
        .map(|(_, v)| v.clone());
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    if status.is_success() {
        let seen = Replayed {
            status: status.as_u16(),
            location,
            body: stored.body.clone(),
        };
        if let Err(e) = (st.check)(st.app.clone(), caller, seen).await {
            return e.into_response();
        }
    }
    let mut res = (status, stored.body).into_response();
    for (name, value) in kept {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            res.headers_mut().insert(n, v);
        }
    }
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}
