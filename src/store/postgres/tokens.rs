//! Bearer tokens in PostgreSQL (only their SHA-256 is stored).
use sqlx::PgConnection;

use crate::auth::Role;
use crate::store::TokenOwner;

pub async fn insert(
    conn: &mut PgConnection,
    hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke(conn: &mut PgConnection, hash: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn revoke_all_of(
    conn: &mut PgConnection,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One statement: every authenticated request pays for it.
pub async fn owner(
    conn: &mut PgConnection,
    hash: &str,
    now: i64,
) -> Result<Option<TokenOwner>, sqlx::Error> {
    let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.id, u.username, u.role,
             (SELECT string_agg(c.clinic_id, ',') FROM user_clinics c WHERE c.user_id = u.id)
         FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
           AND u.active = 1 AND u.deleted_at IS NULL",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(conn)
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
    Ok(Some(TokenOwner {
        user_id,
        username,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode("unknown role in database".into()))?,
        clinic_ids,
    }))
}
