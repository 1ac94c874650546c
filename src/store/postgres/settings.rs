//! Settings (`meta`) and idempotency outcomes in PostgreSQL.
use sqlx::PgConnection;

use crate::store::Outcome;

/// The stored value of `key`, storing `value` first if there is none: the first writer wins
/// (a concurrent insert of the same key waits for the other to commit, then stores nothing).
pub async fn get_or_insert(
    conn: &mut PgConnection,
    key: &str,
    value: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
}

/// Stores an outcome; false when one is already stored under the caller's key.
pub async fn save_outcome(
    conn: &mut PgConnection,
    o: &Outcome,
    expired_before: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(expired_before)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (caller_id, key, request_hash, completed, status, headers, body, created_at)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&o.caller_id)
    .bind(&o.key)
    .bind(&o.request_hash)
    .bind(o.status as i64)
    .bind(&o.headers)
    .bind(&o.body)
    .bind(o.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_outcome(
    conn: &mut PgConnection,
    caller_id: &str,
    key: &str,
    since: i64,
) -> Result<Option<Outcome>, sqlx::Error> {
    let row: Option<(String, i64, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT request_hash, status, headers, body, created_at FROM idempotency_keys
         WHERE caller_id = $1 AND key = $2 AND completed = 1 AND created_at >= $3",
    )
    .bind(caller_id)
    .bind(key)
    .bind(since)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(request_hash, status, headers, body, created_at)| Outcome {
            caller_id: caller_id.to_string(),
            key: key.to_string(),
            request_hash,
            status: status as u16,
            headers,
            body,
            created_at,
        },
    ))
}
