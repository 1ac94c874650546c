//! Clinics: `/v1/clinics`. Admins write; members read; others get 404 as if it did not exist.
pub mod domain;
pub mod routes;
pub mod store;

pub use routes::router;

use sqlx::SqliteConnection;

use crate::auth::Caller;
use crate::error::ApiError;
use domain::Clinic;

/// The clinic, or 404 when it does not exist or the caller is not a member (the same answer, so
/// membership does not leak existence).
pub async fn visible(
    conn: &mut SqliteConnection,
    caller: &Caller,
    id: &str,
) -> Result<Clinic, ApiError> {
    match store::find(conn, id).await? {
        Some(c) if caller.sees_clinic(&c.id) => Ok(c),
        _ => Err(ApiError::NotFound("no clinic with this id".into())),
    }
}
