//! The request context (request id, path) that error bodies and logs need, kept in a task-local
//! for the duration of one request so `ApiError` can fill `request_id` and `instance` itself.
use rand::Rng;

#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// careq's own id for this request: what it logs, returns and writes to the access log.
    pub request_id: String,
    /// The client's `X-Request-Id`, when it sent a plain one: kept beside careq's for
    /// correlation, never in its place (a client must not be able to make audit rows collide).
    pub client_request_id: Option<String>,
    pub path: String,
}

tokio::task_local! {
    static CURRENT: RequestCtx;
}

/// The context of the request being served on this task, if any.
pub fn current() -> Option<RequestCtx> {
    CURRENT.try_with(|c| c.clone()).ok()
}

/// Runs `fut` with `ctx` as the current request context.
pub async fn scope<F: std::future::Future>(ctx: RequestCtx, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// A client-supplied request id is recorded beside careq's own when it is short and plain.
pub fn sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new random request id: 16 bytes as hex.
pub fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_for_shape() {
        assert!(sane_request_id("abc-123_x.y"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert!(sane_request_id(&new_request_id()));
    }
}
