//! Clinics in SQLite.
use sqlx::{Row, SqliteConnection};

use crate::clinics::domain::{Clinic, ValidClinic};
use crate::clock::now_rfc3339;
use crate::store::StoreError;

const COLUMNS: &str = "id, name, timezone, ticket_prefix, country, version, created_at, updated_at";

fn clinic_of(r: &sqlx::sqlite::SqliteRow) -> Clinic {
    Clinic {
        id: r.get("id"),
        name: r.get("name"),
        timezone: r.get("timezone"),
        ticket_prefix: r.get("ticket_prefix"),
        country: r.get("country"),
        version: r.get("version"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub async fn find(conn: &mut SqliteConnection, id: &str) -> Result<Option<Clinic>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clinics WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(clinic_of))
}

/// Clinics after `after` by id; `member` limits them to one user's clinics (None: all).
pub async fn list(
    conn: &mut SqliteConnection,
    member: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<Clinic>, StoreError> {
    let sql = match member {
        None => format!(
            "SELECT {COLUMNS} FROM clinics WHERE id > $1 AND $2 IS NULL ORDER BY id LIMIT $3"
        ),
        Some(_) => format!(
            "SELECT {COLUMNS} FROM clinics WHERE id > $1
               AND id IN (SELECT clinic_id FROM user_clinics WHERE user_id = $2)
             ORDER BY id LIMIT $3"
        ),
    };
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(member)
        .bind(limit as i64 + 1)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(clinic_of).collect())
}

pub async fn insert(
    conn: &mut SqliteConnection,
    id: &str,
    c: &ValidClinic,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO clinics (id, name, timezone, ticket_prefix, country, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(c.name.as_str())
    .bind(c.timezone.as_str())
    .bind(c.ticket_prefix.as_str())
    .bind(c.country.as_ref().map(|c| c.as_str()))
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the hash of a clinic's new board key (the old one stops working).
pub async fn set_board_key_hash(
    conn: &mut SqliteConnection,
    id: &str,
    hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE clinics SET board_key_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The hash of a clinic's board key, if it has one.
pub async fn board_key_hash(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT board_key_hash FROM clinics WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(hash.flatten())
}

/// Applies the fields if the clinic is still at `version`; false when it moved on meanwhile.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    c: &ValidClinic,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE clinics SET name = $1, timezone = $2, ticket_prefix = $3, country = $4,
             version = version + 1, updated_at = $5
         WHERE id = $6 AND version = $7",
    )
    .bind(c.name.as_str())
    .bind(c.timezone.as_str())
    .bind(c.ticket_prefix.as_str())
    .bind(c.country.as_ref().map(|c| c.as_str()))
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the hash of a clinic's new kiosk key (the old one stops working).
pub async fn set_kiosk_key_hash(
    conn: &mut SqliteConnection,
    id: &str,
    hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE clinics SET kiosk_key_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The hash of a clinic's kiosk key, if it has one.
pub async fn kiosk_key_hash(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT kiosk_key_hash FROM clinics WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(hash.flatten())
}
