//! Bearer tokens: 256 random bits handed out once; only their SHA-256 is stored.
use std::net::IpAddr;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Caller;
use crate::error::ApiError;
use crate::store::Store;
use crate::users::records;

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub use crate::clock::now_unix;

pub async fn issue(db: &Store, user_id: &str, ttl_seconds: i64) -> Result<String, ApiError> {
    let token = new_token();
    let (hash, user_id) = (hash_token(&token), user_id.to_string());
    db.write(move |conn| {
        let now = now_unix();
        Ok(records::insert_token(
            conn,
            &hash,
            &user_id,
            now,
            now + ttl_seconds,
        )?)
    })
    .await?;
    Ok(token)
}

pub async fn revoke(db: &Store, token_hash: &str) -> Result<(), ApiError> {
    let token_hash = token_hash.to_string();
    db.write(move |conn| Ok(records::revoke_token(conn, &token_hash, now_unix())?))
        .await
}

/// The caller a live token belongs to; `None` for unknown, expired or revoked tokens and for
/// deactivated users.
pub async fn authenticate(db: &Store, token: &str, ip: IpAddr) -> Result<Option<Caller>, ApiError> {
    caller_of(db, hash_token(token), ip).await
}

/// The caller a stored token hash still belongs to (a live socket re-checking its token). The
/// request's ids come from the request's context here, in its own task, never across the store.
pub async fn caller_of(db: &Store, hash: String, ip: IpAddr) -> Result<Option<Caller>, ApiError> {
    let looked_up = hash.clone();
    let owner = db
        .lookup(move |conn| Ok(records::token_owner(conn, &looked_up, now_unix())?))
        .await?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    let ctx = crate::http::context::current();
    Ok(Some(Caller {
        request_id: ctx
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.request_id.clone()),
        client_request_id: ctx.and_then(|c| c.client_request_id),
        user_id: owner.user_id,
        username: owner.username,
        role: owner.role,
        clinic_ids: owner.clinic_ids,
        token_hash: hash,
        ip,
        now: jiff::Timestamp::now(),
    }))
}
