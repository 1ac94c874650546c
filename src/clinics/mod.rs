//! Clinics: `/v1/clinics`. Admins write; members read; others get 404 as if it did not exist.
pub mod domain;
pub mod routes;

pub use routes::router;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{Store, Tx};
use domain::Clinic;

/// The clinic, or 404 when it does not exist or the caller is not a member (the same answer, so
/// membership does not leak existence).
pub async fn visible(tx: &mut dyn Tx, caller: &Caller, id: &str) -> Result<Clinic, ApiError> {
    match tx.find_clinic(id).await? {
        Some(c) if caller.sees_clinic(&c.id) => Ok(c),
        _ => Err(ApiError::NotFound("no clinic with this id".into())),
    }
}

/// Clinics after `after` by id, at most `limit + 1`; `member` limits them to one user's.
pub async fn list(
    db: &Store,
    member: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<Clinic>, ApiError> {
    Ok(db.read().await?.list_clinics(member, after, limit).await?)
}
