//! Staff accounts, their clinics and their bearer tokens, each query written once for both
//! engines (issue 25). The store knows a role only as its text (the app maps it to `Role`),
//! compares usernames exactly as given (the app folds them first: `normalize_username`), and
//! reads no clock: account times (RFC 3339 text) and token times (Unix seconds) come from the
//! caller.
//!
//! A user's clinic ids come with the user in the same statement: a LEFT JOIN on `user_clinics`
//! gives one row per clinic (one with a NULL clinic for none), ordered by clinic id, so both
//! engines sort them the same way (byte order: SQLite's BINARY, PostgreSQL's `COLLATE "C"`)
//! and no aggregate (`group_concat` / `string_agg`) has to be written twice.
use crate::{Read, ReadExt, Row, StoreError, Value, Write};

/// An account as stored (never its password hash), with its clinics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    /// `admin`, `clinician` or `receptionist` (the schema's CHECK).
    pub role: String,
    pub active: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Set when the account was deleted (a tombstone: the row and its history stay).
    pub deleted_at: Option<String>,
    /// Sorted.
    pub clinic_ids: Vec<String>,
}

/// A new account's fields.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Already normalized by the app.
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
}

/// What an update of an account replaces.
#[derive(Debug, Clone, Copy)]
pub struct UserChange<'a> {
    pub role: &'a str,
    pub active: bool,
    /// `None` keeps the password.
    pub password_hash: Option<&'a str>,
}

/// What sign-in checks a password against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: String,
    pub password_hash: String,
}

/// Who a live bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: String,
    pub username: String,
    pub role: String,
    /// Sorted.
    pub clinic_ids: Vec<String>,
}

/// The user's columns, then the clinic of the joined `user_clinics` row (NULL for none).
const COLUMNS: &str = "u.id, u.username, u.role, u.active, u.version, u.created_at, \
                       u.updated_at, u.deleted_at, c.clinic_id";

/// Folds the joined rows (ordered by user, then clinic) into one `UserRow` per user.
fn users_with_clinics(
    r: &mut dyn Read,
    sql: &str,
    params: &[Value<'_>],
) -> Result<Vec<UserRow>, StoreError> {
    let mut out: Vec<UserRow> = Vec::new();
    r.query(sql, params, &mut |row: &dyn Row| {
        let id = row.text(0)?;
        if out.last().is_none_or(|u| u.id != id) {
            out.push(UserRow {
                id,
                username: row.text(1)?,
                role: row.text(2)?,
                active: row.flag(3)?,
                version: row.int(4)?,
                created_at: row.text(5)?,
                updated_at: row.text(6)?,
                deleted_at: row.opt_text(7)?,
                clinic_ids: Vec::new(),
            });
        }
        if let (Some(clinic), Some(user)) = (row.opt_text(8)?, out.last_mut()) {
            user.clinic_ids.push(clinic);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The account with this id, deleted or not (the app tells a tombstone by `deleted_at`).
pub fn find(r: &mut dyn Read, id: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users u LEFT JOIN user_clinics c ON c.user_id = u.id
         WHERE u.id = $1 ORDER BY c.clinic_id"
    );
    Ok(users_with_clinics(r, &sql, &[id.into()])?.pop())
}

/// The live account with this (normalized) username.
pub fn find_by_name(r: &mut dyn Read, username: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users u LEFT JOIN user_clinics c ON c.user_id = u.id
         WHERE u.username = $1 AND u.deleted_at IS NULL ORDER BY c.clinic_id"
    );
    Ok(users_with_clinics(r, &sql, &[username.into()])?.pop())
}

/// Live accounts after `after` in id order, at most `limit + 1` (the extra one says there is
/// more). The page is cut before the join, so a user's clinics never count against it.
pub fn list(r: &mut dyn Read, after: &str, limit: u32) -> Result<Vec<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM
             (SELECT id, username, role, active, version, created_at, updated_at, deleted_at
              FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2) u
         LEFT JOIN user_clinics c ON c.user_id = u.id
         ORDER BY u.id, c.clinic_id"
    );
    let take = i64::from(limit) + 1;
    users_with_clinics(r, &sql, &[after.into(), take.into()])
}

/// Every account ever stored, deleted ones included (the first start asks whether there are
/// any).
pub fn count(r: &mut dyn Read) -> Result<i64, StoreError> {
    Ok(r.int("SELECT COUNT(*) FROM users", &[])?.unwrap_or(0))
}

/// Whether a live, active account has this role (the first start: is there an active admin?).
pub fn any_active_with_role(r: &mut dyn Read, role: &str) -> Result<bool, StoreError> {
    let sql = "SELECT 1 FROM users WHERE role = $1 AND active = 1 AND deleted_at IS NULL LIMIT 1";
    Ok(r.int(sql, &[role.into()])?.is_some())
}

/// The id of the live account with this (normalized) username.
pub fn id_by_name(r: &mut dyn Read, username: &str) -> Result<Option<String>, StoreError> {
    r.first(
        "SELECT id FROM users WHERE username = $1 AND deleted_at IS NULL",
        &[username.into()],
        |row| row.text(0),
    )
}

/// The id and password hash of the live, active account with this (normalized) username.
pub fn credentials(r: &mut dyn Read, username: &str) -> Result<Option<Credentials>, StoreError> {
    r.first(
        "SELECT id, password_hash FROM users
         WHERE username = $1 AND active = 1 AND deleted_at IS NULL",
        &[username.into()],
        |row| {
            Ok(Credentials {
                user_id: row.text(0)?,
                password_hash: row.text(1)?,
            })
        },
    )
}

/// Stores a new active account at version 1; false when the id or the username is taken, by
/// a deleted account too (nothing stored, and the unit goes on: on PostgreSQL a failed
/// statement would end the whole transaction).
pub fn insert(w: &mut dyn Write, id: &str, u: &NewUser<'_>, now: &str) -> Result<bool, StoreError> {
    let n = w.execute(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
        &[
            id.into(),
            u.username.into(),
            u.password_hash.into(),
            u.role.into(),
            now.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Applies the change if the live account is still at `version`; false when it moved on or
/// was deleted. A unit that read the version holds the row first (`Write::hold`), so a miss is
/// a change that came before the unit, not a race (the old PostgreSQL store ran the unit again
/// on a miss instead).
pub fn update(
    w: &mut dyn Write,
    id: &str,
    version: i64,
    c: &UserChange<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE users SET role = $1, active = $2, password_hash = COALESCE($3, password_hash),
             version = version + 1, updated_at = $4
         WHERE id = $5 AND version = $6 AND deleted_at IS NULL",
        &[
            c.role.into(),
            c.active.into(),
            c.password_hash.into(),
            now.into(),
            id.into(),
            version.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Tombstones the account (inactive, `deleted_at` set, version moved on); true if it was live.
pub fn delete(w: &mut dyn Write, id: &str, now: &str) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE users SET active = 0, deleted_at = $1, version = version + 1, updated_at = $1
         WHERE id = $2 AND deleted_at IS NULL",
        &[now.into(), id.into()],
    )?;
    Ok(n == 1)
}

/// Replaces the password of the live account `id` if its hash is still `was` (the one its
/// owner just proved they know); false when another change came first.
pub fn set_password_of(
    w: &mut dyn Write,
    id: &str,
    was: &str,
    hash: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE users SET password_hash = $1, version = version + 1, updated_at = $2
         WHERE id = $3 AND password_hash = $4 AND deleted_at IS NULL",
        &[hash.into(), now.into(), id.into(), was.into()],
    )?;
    Ok(n == 1)
}

/// Sets the password of the live account with this (normalized) username, active or not (the
/// operator's reset); its id, if there is one.
pub fn set_password_by_name(
    w: &mut dyn Write,
    username: &str,
    hash: &str,
    now: &str,
) -> Result<Option<String>, StoreError> {
    w.first(
        "UPDATE users SET password_hash = $1, version = version + 1, updated_at = $2
         WHERE username = $3 AND deleted_at IS NULL RETURNING id",
        &[hash.into(), now.into(), username.into()],
        |row| row.text(0),
    )
}

/// The position of the first id in `ids` that names no clinic (so the app can point at it).
pub fn first_unknown_clinic(r: &mut dyn Read, ids: &[String]) -> Result<Option<usize>, StoreError> {
    for (i, id) in ids.iter().enumerate() {
        if r.int("SELECT 1 FROM clinics WHERE id = $1", &[id.into()])?
            .is_none()
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Makes `ids` the account's clinics (a repeated id counts once). Every id must name a clinic
/// (`first_unknown_clinic`): the foreign key refuses others.
pub fn set_clinics(w: &mut dyn Write, user_id: &str, ids: &[String]) -> Result<(), StoreError> {
    w.execute(
        "DELETE FROM user_clinics WHERE user_id = $1",
        &[user_id.into()],
    )?;
    for id in ids {
        w.execute(
            "INSERT INTO user_clinics (user_id, clinic_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[user_id.into(), id.into()],
        )?;
    }
    Ok(())
}

/// Stores a token by its hash (SHA-256, made by the app); false when the hash is stored
/// already (nothing stored, the unit goes on).
pub fn insert_token(
    w: &mut dyn Write,
    hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &[hash.into(), user_id.into(), now.into(), expires_at.into()],
    )?;
    Ok(n == 1)
}

/// Revokes a token at `now`; true if it was not revoked before (an earlier revocation keeps
/// its time).
pub fn revoke_token(w: &mut dyn Write, hash: &str, now: i64) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
        &[now.into(), hash.into()],
    )?;
    Ok(n == 1)
}

/// Revokes every token of the account not revoked yet; how many.
pub fn revoke_tokens_of(w: &mut dyn Write, user_id: &str, now: i64) -> Result<u64, StoreError> {
    w.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        &[now.into(), user_id.into()],
    )
}

/// The live, active owner of an unrevoked token that has not expired at `now` (Unix seconds),
/// with their clinics. One statement: every authenticated request pays for it.
pub fn token_owner(
    r: &mut dyn Read,
    hash: &str,
    now: i64,
) -> Result<Option<TokenOwner>, StoreError> {
    let mut owner: Option<TokenOwner> = None;
    r.query(
        "SELECT u.id, u.username, u.role, c.clinic_id
         FROM tokens t JOIN users u ON u.id = t.user_id
         LEFT JOIN user_clinics c ON c.user_id = u.id
         WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
           AND u.active = 1 AND u.deleted_at IS NULL
         ORDER BY c.clinic_id",
        &[hash.into(), now.into()],
        &mut |row: &dyn Row| {
            if owner.is_none() {
                owner = Some(TokenOwner {
                    user_id: row.text(0)?,
                    username: row.text(1)?,
                    role: row.text(2)?,
                    clinic_ids: Vec::new(),
                });
            }
            if let (Some(clinic), Some(o)) = (row.opt_text(3)?, owner.as_mut()) {
                o.clinic_ids.push(clinic);
            }
            Ok(())
        },
    )?;
    Ok(owner)
}
