//! Bearer tokens: 256 random bits handed out once; only their SHA-256 is stored.
use std::net::IpAddr;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Caller, Role};
use crate::db::{Db, Pool};
use crate::error::ApiError;

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub async fn issue(db: &Db, user_id: &str, ttl_seconds: i64) -> Result<String, ApiError> {
    let token = new_token();
    let (hash, user_id) = (hash_token(&token), user_id.to_string());
    db.write(move |conn| {
        Box::pin(async move {
            let now = now_unix();
            sqlx::query(
                "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&hash)
            .bind(&user_id)
            .bind(now)
            .bind(now + ttl_seconds)
            .execute(conn)
            .await?;
            Ok(())
        })
    })
    .await?;
    Ok(token)
}

pub async fn revoke(db: &Db, token_hash: &str) -> Result<(), ApiError> {
    let token_hash = token_hash.to_string();
    db.write(move |conn| {
        Box::pin(async move {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
                .bind(now_unix())
                .bind(&token_hash)
                .execute(conn)
                .await?;
            Ok(())
        })
    })
    .await
}

/// The caller a live token belongs to; `None` for unknown, expired or revoked tokens and for
/// deactivated users.
pub async fn authenticate(db: &Pool, token: &str, ip: IpAddr) -> Result<Option<Caller>, ApiError> {
    caller_of(db, hash_token(token), ip).await
}

/// The caller a stored token hash still belongs to (a live socket re-checking its token).
pub async fn caller_of(db: &Pool, hash: String, ip: IpAddr) -> Result<Option<Caller>, ApiError> {
    // One statement: every request pays for it.
    let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.id, u.username, u.role,
             (SELECT group_concat(c.clinic_id, ',') FROM user_clinics c WHERE c.user_id = u.id)
         FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
           AND u.active = 1 AND u.deleted_at IS NULL",
    )
    .bind(&hash)
    .bind(now_unix())
    .fetch_optional(db)
    .await?;
    let Some((user_id, username, role, clinics)) = row else {
        return Ok(None);
    };
    let mut clinic_ids: Vec<String> = clinics
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    clinic_ids.sort();
    let ctx = crate::http::context::current();
    Ok(Some(Caller {
        request_id: ctx
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.request_id.clone()),
        client_request_id: ctx.and_then(|c| c.client_request_id),
        user_id,
        username,
        role: Role::parse(&role).ok_or_else(|| ApiError::internal("unknown role in database"))?,
        clinic_ids,
        token_hash: hash,
        ip,
    }))
}
