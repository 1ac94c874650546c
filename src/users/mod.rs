//! Staff accounts: `/v1/users` (admin only), plus the operations the CLI and first start share.
pub mod domain;
pub mod first_admin;
pub mod records;
pub mod routes;

use crate::access::{self, Action};
use crate::auth::{password, Caller};
use crate::error::{ApiError, FieldError};
use crate::store::{Read, Store, StoreError, Write};
use domain::{NewUser, StoredUser, User, Username};

pub use routes::router;

/// Validates and stores a new account (and, when an API caller made it, logs the access).
pub async fn create(db: &Store, new: NewUser, actor: Option<&Caller>) -> Result<User, ApiError> {
    let broken = crate::http::extract::BodyRules::rule_errors(&new);
    if !broken.is_empty() {
        return Err(ApiError::invalid(broken));
    }
    let username = Username::parse(&new.username).map_err(|e| ApiError::invalid(vec![e]))?;
    let hash = password::hash(new.password).await?;
    let id = crate::ids::new_id("usr");
    let (actor, role, clinic_ids) = (actor.cloned(), new.role, new.clinic_ids);
    db.write_data(move |conn| {
        check_clinics(conn, &clinic_ids)?;
        match records::insert_user(conn, &id, &username, &hash, role) {
            Err(StoreError::Conflict) => {
                return Err(ApiError::Conflict {
                    detail: "a user with this username already exists".into(),
                    existing: None,
                })
            }
            other => other?,
        }
        records::set_user_clinics(conn, &id, &clinic_ids)?;
        if let Some(actor) = &actor {
            access::record(conn, actor, Action::Create, "user", &id)?;
        }
        get(conn, &id)
    })
    .await
}

/// The live user, or 404 (never existed) / 410 (deleted).
pub fn get(conn: &mut dyn Read, id: &str) -> Result<User, ApiError> {
    match records::find_user(conn, id)? {
        Some(StoredUser::Live(u)) => Ok(u),
        Some(StoredUser::Deleted) => Err(ApiError::Gone("this user was deleted".into())),
        None => Err(ApiError::NotFound("no user with this id".into())),
    }
}

/// 422 unless every clinic id names an existing clinic.
pub fn check_clinics(conn: &mut dyn Read, ids: &[String]) -> Result<(), ApiError> {
    match records::first_unknown_clinic(conn, ids)? {
        Some(i) => Err(ApiError::invalid(vec![FieldError::new(
            format!("/clinic_ids/{i}"),
            "no clinic with this id",
        )])),
        None => Ok(()),
    }
}

/// Ends every session of a user (a password change, deactivation, deletion): sessions opened
/// under the old state end with it.
pub fn revoke_tokens(conn: &mut dyn Write, user_id: &str) -> Result<(), ApiError> {
    Ok(records::revoke_tokens_of(
        conn,
        user_id,
        crate::auth::tokens::now_unix(),
    )?)
}

/// The id and password hash of an active user, for sign-in; `username` in any spelling that
/// normalizes to the stored one.
pub async fn credentials(db: &Store, username: &str) -> Result<Option<(String, String)>, ApiError> {
    let name = domain::normalize_username(username);
    db.read(move |conn| Ok(records::credentials(conn, &name)?))
        .await
}

/// Live users after `after` by id, at most `limit + 1`.
pub async fn list(db: &Store, after: &str, limit: u32) -> Result<Vec<User>, ApiError> {
    let after = after.to_string();
    db.read(move |conn| Ok(records::list_users(conn, &after, limit)?))
        .await
}

/// Sets a user's password (the CLI) and ends their sessions; false if there is no such user.
pub async fn set_password(db: &Store, username: &str, hash: &str) -> Result<bool, ApiError> {
    let (username, hash) = (domain::normalize_username(username), hash.to_string());
    db.write(move |conn| {
        let Some(id) = records::set_password_by_name(conn, &username, &hash)? else {
            return Ok(false);
        };
        revoke_tokens(conn, &id)?;
        Ok(true)
    })
    .await
}

/// Deactivates a user by name (the CLI) and ends their sessions; false if there is no such user.
pub async fn deactivate(db: &Store, username: &str) -> Result<bool, ApiError> {
    let username = domain::normalize_username(username);
    db.write(move |conn| {
        let Some(id) = records::user_id_by_name(conn, &username)? else {
            return Ok(false);
        };
        let user = get(conn, &id)?;
        if !records::update_user(conn, &id, user.version, user.role, false, None)? {
            return Err(ApiError::internal("the user changed under the write lock"));
        }
        revoke_tokens(conn, &id)?;
        Ok(true)
    })
    .await
}
