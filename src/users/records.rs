//! Staff accounts and bearer tokens as the store keeps them: each function runs one query of
//! `careq_store::users` on a unit's connection and turns its rows into the users feature's
//! types. The app decides here what the shared queries leave to it: account times (the clock),
//! the one spelling of a username, a role's text, and that a taken key is a conflict.
use careq_store::users::{self as q, NewUser, UserChange, UserRow};

use super::domain::{normalize_username, StoredUser, User, Username};
use crate::auth::role::Role;
use crate::clock::now_rfc3339;
use crate::store::{Read, StoreError, Write};

/// A stored role as the app knows it; anything else is a schema mismatch.
fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Other("unknown role in database".into()))
}

/// A live account as served.
fn user_of(row: UserRow) -> Result<User, StoreError> {
    Ok(User {
        role: role_of(&row.role)?,
        id: row.id,
        username: row.username,
        clinic_ids: row.clinic_ids,
        active: row.active,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The account with this id: live, a tombstone, or none.
pub fn find_user(conn: &mut dyn Read, id: &str) -> Result<Option<StoredUser>, StoreError> {
    match q::find(conn, id)? {
        None => Ok(None),
        Some(row) if row.deleted_at.is_some() => Ok(Some(StoredUser::Deleted)),
        Some(row) => Ok(Some(StoredUser::Live(user_of(row)?))),
    }
}

/// Live users after `after` by id, at most `limit + 1`.
pub fn list_users(conn: &mut dyn Read, after: &str, limit: u32) -> Result<Vec<User>, StoreError> {
    q::list(conn, after, limit)?
        .into_iter()
        .map(user_of)
        .collect()
}

/// Every account ever stored, deleted ones included.
pub fn count_users(conn: &mut dyn Read) -> Result<i64, StoreError> {
    q::count(conn)
}

/// The id of the live user with this username, in any spelling that normalizes to it.
pub fn user_id_by_name(conn: &mut dyn Read, username: &str) -> Result<Option<String>, StoreError> {
    q::id_by_name(conn, &normalize_username(username))
}

/// The id and password hash of an active user with this username (in any spelling).
pub fn credentials(
    conn: &mut dyn Read,
    username: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(q::credentials(conn, &normalize_username(username))?.map(|c| (c.user_id, c.password_hash)))
}

/// Stores a new active account created now; `Conflict` when the id or the username is taken
/// (by a deleted account too).
pub fn insert_user(
    conn: &mut dyn Write,
    id: &str,
    username: &Username,
    password_hash: &str,
    role: Role,
) -> Result<(), StoreError> {
    let new = NewUser {
        username: username.as_str(),
        password_hash,
        role: role.as_str(),
    };
    if q::insert(conn, id, &new, &now_rfc3339())? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Applies the changes if the user is still at `version`; false when it moved on (the unit
/// then lost a race: on PostgreSQL a refusal that follows runs it again).
pub fn update_user(
    conn: &mut dyn Write,
    id: &str,
    version: i64,
    role: Role,
    active: bool,
    password_hash: Option<&str>,
) -> Result<bool, StoreError> {
    let change = UserChange {
        role: role.as_str(),
        active,
        password_hash,
    };
    let applied = q::update(conn, id, version, &change, &now_rfc3339())?;
    if !applied {
        conn.lost_race();
    }
    Ok(applied)
}

/// Tombstones a user now; true if it was live.
pub fn delete_user(conn: &mut dyn Write, id: &str) -> Result<bool, StoreError> {
    q::delete(conn, id, &now_rfc3339())
}

/// Replaces the password of `id` if its hash is still `was`; false when another change came
/// first.
pub fn set_password_of(
    conn: &mut dyn Write,
    id: &str,
    was: &str,
    hash: &str,
) -> Result<bool, StoreError> {
    q::set_password_of(conn, id, was, hash, &now_rfc3339())
}

/// Sets the password of the live user with this username (in any spelling); their id, if any.
pub fn set_password_by_name(
    conn: &mut dyn Write,
    username: &str,
    hash: &str,
) -> Result<Option<String>, StoreError> {
    q::set_password_by_name(conn, &normalize_username(username), hash, &now_rfc3339())
}

/// The position of the first id in `ids` that names no clinic.
pub fn first_unknown_clinic(
    conn: &mut dyn Read,
    ids: &[String],
) -> Result<Option<usize>, StoreError> {
    q::first_unknown_clinic(conn, ids)
}

/// Makes `ids` the user's clinics.
pub fn set_user_clinics(
    conn: &mut dyn Write,
    user_id: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    q::set_clinics(conn, user_id, ids)
}

/// Stores a token by its hash; `Conflict` when that hash is stored already.
pub fn insert_token(
    conn: &mut dyn Write,
    hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    if q::insert_token(conn, hash, user_id, now, expires_at)? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Revokes a token at `now` (one revoked before keeps its time).
pub fn revoke_token(conn: &mut dyn Write, hash: &str, now: i64) -> Result<(), StoreError> {
    q::revoke_token(conn, hash, now)?;
    Ok(())
}

/// Revokes every live token of a user.
pub fn revoke_tokens_of(conn: &mut dyn Write, user_id: &str, now: i64) -> Result<(), StoreError> {
    q::revoke_tokens_of(conn, user_id, now)?;
    Ok(())
}

/// The live, active owner of a token hash at `now` (Unix seconds).
pub fn token_owner(
    conn: &mut dyn Read,
    hash: &str,
    now: i64,
) -> Result<Option<TokenOwner>, StoreError> {
    let Some(owner) = q::token_owner(conn, hash, now)? else {
        return Ok(None);
    };
    Ok(Some(TokenOwner {
        role: role_of(&owner.role)?,
        user_id: owner.user_id,
        username: owner.username,
        clinic_ids: owner.clinic_ids,
    }))
}

/// Who a live bearer token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// Sorted.
    pub clinic_ids: Vec<String>,
}
