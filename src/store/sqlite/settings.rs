//! Settings (`meta`), idempotency outcomes and savepoints in SQLite.
use sqlx::SqliteConnection;

use crate::store::{Outcome, StoreError};

/// Copies the database into a new file (`VACUUM INTO`).
pub async fn vacuum_into(conn: &mut SqliteConnection, to: &str) -> Result<(), StoreError> {
    sqlx::query("VACUUM INTO $1")
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Runs statements that take no parameters (savepoints), in order.
pub async fn execute(conn: &mut SqliteConnection, sql: &[String]) -> Result<(), StoreError> {
    for statement in sql {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn get_or_insert(
    conn: &mut SqliteConnection,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ($1, $2)")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?)
}

pub async fn save_outcome(
    conn: &mut SqliteConnection,
    o: &Outcome,
    expired_before: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(expired_before)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (caller_id, key, request_hash, completed, status, headers, body, created_at)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7)",
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
    Ok(())
}

pub async fn find_outcome(
    conn: &mut SqliteConnection,
    caller_id: &str,
    key: &str,
    since: i64,
) -> Result<Option<Outcome>, StoreError> {
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
