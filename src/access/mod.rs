//! The access log: a durable, append-only record of who read or changed which record, when, from
//! which IP, under which request id. Writes go into the same transaction as the change they
//! describe; reads are recorded before the response is sent. Triggers refuse UPDATE and DELETE.
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::context;
use crate::http::resource::now_rfc3339;

/// What was done to the record.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Read,
    Search,
    Create,
    Update,
    Delete,
    Merge,
    Seal,
    Unseal,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Search => "search",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Merge => "merge",
            Action::Seal => "seal",
            Action::Unseal => "unseal",
        }
    }
}

/// One access-log entry as served.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub actor_id: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub request_id: String,
}

/// Appends an entry on `conn` (inside the caller's transaction when there is one).
pub async fn record(
    conn: &mut SqliteConnection,
    caller: &Caller,
    action: Action,
    resource_type: &str,
    resource_id: &str,
) -> Result<(), ApiError> {
    let request_id = context::current()
        .map(|c| c.request_id)
        .unwrap_or_else(|| "none".into());
    sqlx::query(
        "INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_rfc3339())
    .bind(&caller.user_id)
    .bind(action.as_str())
    .bind(resource_type)
    .bind(resource_id)
    .bind(caller.ip.to_string())
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of entries for one record, oldest first, after sequence number `after`.
pub async fn list(
    conn: &mut SqliteConnection,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<Entry>, ApiError> {
    Ok(sqlx::query_as::<_, Entry>(
        "SELECT seq, at, actor_id, action, resource_type, resource_id, ip, request_id
         FROM access_log WHERE resource_type = $1 AND resource_id = $2 AND seq > $3
         ORDER BY seq LIMIT $4",
    )
    .bind(resource_type)
    .bind(resource_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(conn)
    .await?)
}
