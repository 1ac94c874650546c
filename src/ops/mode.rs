//! Whether maintenance is on, below every handler (the app's state holds it).
use std::sync::Mutex;

use crate::error::ApiError;

/// Seconds to tell clients to wait, when maintenance is on.
#[derive(Default)]
pub struct Maintenance(Mutex<Option<u64>>);

impl Maintenance {
    pub fn retry_after(&self) -> Option<u64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, retry_after: Option<u64>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = retry_after;
    }

    /// The 503 answered while maintenance is on.
    pub fn error(retry_after: u64) -> ApiError {
        ApiError::ServiceUnavailable {
            detail: "careq is in maintenance; try again later".into(),
            retry_after,
        }
    }
}
