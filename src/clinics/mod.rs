//! Clinics: `/v1/clinics`. Admins write; members read; others get 404 as if it did not exist.
pub mod domain;
pub mod records;
pub mod routes;

pub use routes::router;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{Read, Store};
use domain::Clinic;

/// The clinic, or 404 when it does not exist or the caller is not a member (the same answer, so
/// membership does not leak existence).
pub fn visible(conn: &mut dyn Read, caller: &Caller, id: &str) -> Result<Clinic, ApiError> {
    match records::find_clinic(conn, id)? {
        Some(c) if caller.sees_clinic(&c.id) => Ok(c),
        _ => Err(ApiError::NotFound("no clinic with this id".into())),
    }
}

/// The clinics of `ids` that exist, in the order given, or every clinic when `ids` is `None`
/// (one read unit).
pub async fn among(db: &Store, ids: Option<&[String]>) -> Result<Vec<Clinic>, ApiError> {
    let ids = ids.map(<[String]>::to_vec);
    db.read(move |conn| {
        let mut clinics = Vec::new();
        match &ids {
            Some(ids) => {
                for id in ids {
                    clinics.extend(records::find_clinic(conn, id)?);
                }
            }
            None => {
                let mut after = String::new();
                loop {
                    let page = records::list_clinics(conn, None, &after, 200)?;
                    let more = page.len() > 200;
                    clinics.extend(page.into_iter().take(200));
                    match clinics.last() {
                        Some(last) if more => after = last.id.clone(),
                        _ => break,
                    }
                }
            }
        }
        Ok(clinics)
    })
    .await
}

/// Clinics after `after` by id, at most `limit + 1`; `member` limits them to one user's.
pub async fn list(
    db: &Store,
    member: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<Clinic>, ApiError> {
    let (member, after) = (member.map(str::to_string), after.to_string());
    db.read(move |conn| {
        Ok(records::list_clinics(
            conn,
            member.as_deref(),
            &after,
            limit,
        )?)
    })
    .await
}
