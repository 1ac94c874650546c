//! Staff accounts: `/v1/users` (admin only), plus the operations the CLI and first start share.
pub mod domain;
pub mod first_admin;
pub mod routes;

use crate::access::{self, Action};
use crate::auth::{password, Caller};
use crate::error::{ApiError, FieldError};
use crate::store::{Store, StoreError, Tx};
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
    let (actor, role) = (actor.cloned(), new.role);
    db.write_data(move |conn| {
        let (clinic_ids, id, username, hash, actor) = (
            new.clinic_ids.clone(),
            id.clone(),
            username.clone(),
            hash.clone(),
            actor.clone(),
        );
        Box::pin(async move {
            check_clinics(conn, &clinic_ids).await?;
            match conn.insert_user(&id, &username, &hash, role).await {
                Err(StoreError::Conflict) => {
                    return Err(ApiError::Conflict {
                        detail: "a user with this username already exists".into(),
                        existing: None,
                    })
                }
                other => other?,
            }
            conn.set_user_clinics(&id, &clinic_ids).await?;
            if let Some(actor) = &actor {
                access::record(conn, actor, Action::Create, "user", &id).await?;
            }
            get(conn, &id).await
        })
    })
    .await
}

/// The live user, or 404 (never existed) / 410 (deleted).
pub async fn get(tx: &mut dyn Tx, id: &str) -> Result<User, ApiError> {
    match tx.find_user(id).await? {
        Some(StoredUser::Live(u)) => Ok(u),
        Some(StoredUser::Deleted) => Err(ApiError::Gone("this user was deleted".into())),
        None => Err(ApiError::NotFound("no user with this id".into())),
    }
}

/// 422 unless every clinic id names an existing clinic.
pub async fn check_clinics(tx: &mut dyn Tx, ids: &[String]) -> Result<(), ApiError> {
    match tx.first_unknown_clinic(ids).await? {
        Some(i) => Err(ApiError::invalid(vec![FieldError::new(
            format!("/clinic_ids/{i}"),
            "no clinic with this id",
        )])),
        None => Ok(()),
    }
}

/// Ends every session of a user (a password change, deactivation, deletion): sessions opened
/// under the old state end with it.
pub async fn revoke_tokens(tx: &mut dyn Tx, user_id: &str) -> Result<(), ApiError> {
    Ok(tx
        .revoke_tokens_of(user_id, crate::auth::tokens::now_unix())
        .await?)
}

/// The id and password hash of an active user, for sign-in; `username` in any spelling that
/// normalizes to the stored one.
pub async fn credentials(db: &Store, username: &str) -> Result<Option<(String, String)>, ApiError> {
    let name = domain::normalize_username(username);
    Ok(db.read().await?.credentials(&name).await?)
}

/// Live users after `after` by id, at most `limit + 1`.
pub async fn list(db: &Store, after: &str, limit: u32) -> Result<Vec<User>, ApiError> {
    Ok(db.read().await?.list_users(after, limit).await?)
}

/// Sets a user's password (the CLI) and ends their sessions; false if there is no such user.
pub async fn set_password(db: &Store, username: &str, hash: &str) -> Result<bool, ApiError> {
    let (username, hash) = (domain::normalize_username(username), hash.to_string());
    db.write(move |tx| {
        let (username, hash) = (username.clone(), hash.clone());
        Box::pin(async move {
            let Some(id) = tx.set_password_by_name(&username, &hash).await? else {
                return Ok(false);
            };
            revoke_tokens(tx, &id).await?;
            Ok(true)
        })
    })
    .await
}

/// Deactivates a user by name (the CLI) and ends their sessions; false if there is no such user.
pub async fn deactivate(db: &Store, username: &str) -> Result<bool, ApiError> {
    let username = domain::normalize_username(username);
    db.write(move |tx| {
        let username = username.clone();
        Box::pin(async move {
            let Some(id) = tx.user_id_by_name(&username).await? else {
                return Ok(false);
            };
            let user = get(tx, &id).await?;
            if !tx
                .update_user(&id, user.version, user.role, false, None)
                .await?
            {
                return Err(ApiError::internal("the user changed under the write lock"));
            }
            revoke_tokens(tx, &id).await?;
            Ok(true)
        })
    })
    .await
}
