//! Staff accounts in PostgreSQL.
use sqlx::{PgConnection, Row};

use crate::auth::Role;
use crate::clock::now_rfc3339;
use crate::users::domain::{normalize_username, StoredUser, User, Username};

async fn clinics_of(conn: &mut PgConnection, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT clinic_id FROM user_clinics WHERE user_id = $1 ORDER BY clinic_id")
        .bind(user_id)
        .fetch_all(conn)
        .await
}

fn user_of(row: &sqlx::postgres::PgRow, clinic_ids: Vec<String>) -> Result<User, sqlx::Error> {
    let role: String = row.get("role");
    Ok(User {
        id: row.get("id"),
        username: row.get("username"),
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode("unknown role in database".into()))?,
        clinic_ids,
        active: row.get::<i64, _>("active") == 1,
        version: row.get("version"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

const COLUMNS: &str = "id, username, role, active, version, created_at, updated_at, deleted_at";

pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<StoredUser>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    if row.get::<Option<String>, _>("deleted_at").is_some() {
        return Ok(Some(StoredUser::Deleted));
    }
    let clinics = clinics_of(conn, id).await?;
    Ok(Some(StoredUser::Live(user_of(&row, clinics)?)))
}

pub async fn list(
    conn: &mut PgConnection,
    after: &str,
    limit: u32,
) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get("id");
        let clinics = clinics_of(conn, &id).await?;
        out.push(user_of(&row, clinics)?);
    }
    Ok(out)
}

/// The id and password hash of an active user, for sign-in; `username` in any spelling that
/// normalizes to the stored one.
pub async fn credentials(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, password_hash FROM users WHERE username = $1 AND active = 1 AND deleted_at IS NULL",
    )
    .bind(normalize_username(username))
    .fetch_optional(conn)
    .await
}

/// The position of the first id that names no clinic.
pub async fn first_unknown_clinic(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Option<usize>, sqlx::Error> {
    for (i, id) in ids.iter().enumerate() {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinics WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        if n == 0 {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

pub async fn set_clinics(
    conn: &mut PgConnection,
    user_id: &str,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_clinics WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for id in ids {
        sqlx::query(
            "INSERT INTO user_clinics (user_id, clinic_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    username: &Username,
    password_hash: &str,
    role: Role,
) -> Result<bool, sqlx::Error> {
    let now = now_rfc3339();
    let done = sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(username.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Applies changes if the user is still at `version`; false when it moved on meanwhile.
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    role: Role,
    active: bool,
    password_hash: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET role = $1, active = $2, password_hash = COALESCE($3, password_hash),
             version = version + 1, updated_at = $4
         WHERE id = $5 AND version = $6 AND deleted_at IS NULL",
    )
    .bind(role.as_str())
    .bind(active as i64)
    .bind(password_hash)
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Tombstones the user; true if it was live.
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let now = now_rfc3339();
    let done = sqlx::query(
        "UPDATE users SET active = 0, deleted_at = $1, version = version + 1, updated_at = $1
         WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await
}

/// Sets the password of the user with `id` if it is still `was` (the caller's own change).
pub async fn set_password_of(
    conn: &mut PgConnection,
    id: &str,
    was: &str,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1, version = version + 1, updated_at = $2
         WHERE id = $3 AND password_hash = $4 AND deleted_at IS NULL",
    )
    .bind(hash)
    .bind(now_rfc3339())
    .bind(id)
    .bind(was)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the password of the live user with this username (in any spelling); their id.
pub async fn set_password_by_name(
    conn: &mut PgConnection,
    username: &str,
    hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $1, version = version + 1, updated_at = $2
         WHERE username = $3 AND deleted_at IS NULL RETURNING id",
    )
    .bind(hash)
    .bind(now_rfc3339())
    .bind(normalize_username(username))
    .fetch_optional(conn)
    .await
}

/// The id of the live user with this username (in any spelling).
pub async fn id_by_name(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1 AND deleted_at IS NULL")
        .bind(normalize_username(username))
        .fetch_optional(conn)
        .await
}
