//! `/v1/users`: thin handlers over the users service; every one needs `ManageUsers` (admins).
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::domain::{NewUser, User, UserPatch};
use super::records;
use crate::access::{self, Action};
use crate::auth::throttle::LoginKey;
use crate::auth::{password, perm, Caller, Require};
use crate::error::{ApiError, FieldError};
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::paging::{Page, PageParams};
use crate::http::precondition::{stale, IfMatch};
use crate::http::resource;
use crate::state::AppState;
use crate::store::Held;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list).post(create))
        .route("/v1/users/{id}", get(read).patch(update).delete(remove))
        .route("/v1/me", get(me))
        .route("/v1/me/password", axum::routing::post(change_password))
}

/// A page of users.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

/// The signed-in user's own account
#[utoipa::path(get, path = "/v1/me", tag = "users",
    responses((status = 200, description = "Your account", body = User,
        headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified")))]
pub async fn me(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = caller.user_id;
    let user = st.db.lookup(move |conn| super::get(conn, &id)).await?;
    Ok(resource::read(&user, &headers))
}

/// `POST /v1/me/password`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    #[schema(min_length = 1, max_length = 256)]
    pub current: String,
    /// The new password, 12 to 256 characters.
    #[schema(min_length = 12, max_length = 256)]
    pub new: String,
}

/// Change your own password: every session of yours ends, this one too
#[utoipa::path(post, path = "/v1/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204, description = "Changed; sign in again with the new password"),
        (status = 401, description = "Not signed in, or another change of your password came first and ended this session"),
        (status = 422, description = "The current password is wrong, or the new one breaks the rules"),
        (status = 429, description = "Too many wrong current passwords from this address, or too many passwords from this address being checked at once"),
        (status = 503, description = "Too many passwords being checked at once")))]
pub async fn change_password(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    password::validate(&req.new, "/new")?;
    // Guessing the current password through this door is throttled as sign-in is.
    let key = LoginKey::Account(caller.user_id.clone());
    st.throttle.check(&key, caller.ip)?;
    let stored = super::credentials(&st.db, &caller.username).await?;
    let hash = stored.map(|(_, h)| h);
    if !st
        .hashing
        .verify(caller.ip, req.current, hash.clone())
        .await?
    {
        st.throttle.record_failure(&key, caller.ip);
        return Err(ApiError::invalid(vec![FieldError::new(
            "/current",
            "this is not your current password",
        )]));
    }
    let new_hash = st.hashing.hash(caller.ip, req.new).await?;
    let was = hash.unwrap_or_default();
    st.db
        .write(move |conn| {
            // Two changes at once (two tabs): the first wins; the other's proof of the
            // current password is out of date, and its token was just revoked.
            if !records::set_password_of(conn, &caller.user_id, &was, &new_hash)? {
                return Err(ApiError::Unauthorized {
                    detail: "your password was changed by another request meanwhile, which \
                             ended this session; sign in again"
                        .into(),
                    invalid_token: true,
                });
            }
            super::revoke_tokens(conn, &caller.user_id)?;
            access::record(conn, &caller, Action::Update, "user", &caller.user_id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a staff account
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, description = "Created", body = User), (status = 403, description = "Not an admin"),
              (status = 409, description = "Username taken")))]
pub async fn create(
    State(st): State<AppState>,
    admin: Require<perm::ManageUsers>,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let user = super::create(&st.db, new, Some(&admin)).await?;
    Ok(resource::created(&user, &format!("/v1/users/{}", user.id)))
}

/// List staff accounts
#[utoipa::path(get, path = "/v1/users", tag = "users", params(PageParams),
    responses((status = 200, description = "A page of users (CSV when asked: `Accept: text/csv`, `bom=1` for a byte order mark)", body = UserPage,
        content((UserPage = "application/json"), (String = "text/csv")),
        headers(("Link" = String, description = "`rel=\"next\"` when there is more"))),
        (status = 403, description = "Not an admin")))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Require<perm::ManageUsers>,
    ApiQuery(paging): ApiQuery<PageParams>,
    axum::Extension(pref): axum::Extension<crate::http::negotiate::Preference>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let limit = paging.limit()?;
    let after = paging.after()?.unwrap_or_default();
    let rows = super::list(&st.db, &after, limit).await?;
    let page = Page::from_rows(rows, limit, |u| u.id.clone());
    Ok(crate::http::csv_out::page(page, pref, &uri, &headers))
}

/// Read a staff account
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^usr_[0-9a-f]{20}$")),
    responses((status = 200, description = "The user", body = User,
        headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"), (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user"), (status = 410, description = "Deleted")))]
pub async fn read(
    State(st): State<AppState>,
    _admin: Require<perm::ManageUsers>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = st.db.lookup(move |conn| super::get(conn, &id)).await?;
    Ok(resource::read(&user, &headers))
}

/// Update a staff account (merge patch; needs If-Match)
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^usr_[0-9a-f]{20}$")),
    request_body(content = UserPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = User, headers(("ETag" = String))),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such user"),
        (status = 410, description = "Deleted"), (status = 412, description = "Stale If-Match"),
        (status = 428, description = "No If-Match")))]
pub async fn update(
    State(st): State<AppState>,
    admin: Require<perm::ManageUsers>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Response, ApiError> {
    // An admin cannot lock themselves out: no self-deactivation, self-demotion or new password.
    if id == admin.user_id {
        if patch.active == Some(false) {
            return Err(ApiError::invalid(vec![FieldError::new(
                "/active",
                "you cannot deactivate your own account",
            )]));
        }
        if patch.role.is_some_and(|r| r != crate::auth::Role::Admin) {
            return Err(ApiError::invalid(vec![FieldError::new(
                "/role",
                "you cannot give up your own admin role",
            )]));
        }
        // Here a password changes without the current one: a stolen session must not be
        // able to take the account over for good (and lock its owner out).
        if patch.password.is_some() {
            return Err(ApiError::invalid(vec![FieldError::new(
                "/password",
                "change your own password at /v1/me/password, which asks for the current one",
            )]));
        }
    }
    if let Some(pw) = &patch.password {
        password::validate(pw, "/password")?;
    }
    let hash = match patch.password.clone() {
        Some(pw) => Some(st.hashing.hash(admin.0.ip, pw).await?),
        None => None,
    };
    let admin = admin.0;
    let user = st
        .db
        .write_data(move |conn| {
            conn.hold(Held::User.table(), &id)?;
            let current = super::get(conn, &id)?;
            if_match.check(current.version)?;
            if let Some(ids) = &patch.clinic_ids {
                super::check_clinics(conn, ids)?;
                records::set_user_clinics(conn, &id, ids)?;
            }
            let role = patch.role.unwrap_or(current.role);
            let active = patch.active.unwrap_or(current.active);
            if !records::update_user(conn, &id, current.version, role, active, hash.as_deref())? {
                return Err(stale(super::get(conn, &id)?.version));
            }
            // A new password or a deactivation ends every session opened before it;
            // reactivating the account later must not bring those sessions back.
            if hash.is_some() || !active {
                super::revoke_tokens(conn, &id)?;
            }
            access::record(conn, &admin, Action::Update, "user", &id)?;
            super::get(conn, &id)
        })
        .await?;
    Ok(resource::updated(&user))
}

/// Deactivate and delete a staff account (its tokens are revoked)
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^usr_[0-9a-f]{20}$")),
    responses((status = 204, description = "Deleted (also when it already was)"),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such user")))]
pub async fn remove(
    State(st): State<AppState>,
    admin: Require<perm::ManageUsers>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id == admin.user_id {
        return Err(ApiError::Forbidden(
            "you cannot delete your own account".into(),
        ));
    }
    let admin = admin.0;
    st.db
        .write_data(move |conn| {
            if records::find_user(conn, &id)?.is_none() {
                return Err(ApiError::NotFound("no user with this id".into()));
            }
            if records::delete_user(conn, &id)? {
                super::revoke_tokens(conn, &id)?;
                access::record(conn, &admin, Action::Delete, "user", &id)?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

impl crate::http::extract::BodyRules for PasswordChange {}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;
    use crate::error::FieldError;

    impl crate::http::csv_out::CsvRow for User {
        fn columns() -> &'static [&'static str] {
            &[
                "id",
                "username",
                "role",
                "clinic_ids",
                "active",
                "version",
                "created_at",
                "updated_at",
            ]
        }
        fn cells(&self) -> Vec<crate::http::csv_out::Cell> {
            use crate::http::csv_out::Cell;
            vec![
                Cell::text(&self.id),
                Cell::text(&self.username),
                Cell::text(self.role.as_str()),
                // Several clinics in one cell, space-separated (ids never hold a space).
                Cell::text(self.clinic_ids.join(" ")),
                Cell::text(self.active.to_string()),
                Cell::number(self.version),
                Cell::text(&self.created_at),
                Cell::text(&self.updated_at),
            ]
        }
    }

    /// Every rule of a new account at once (username, password).
    impl crate::http::extract::BodyRules for NewUser {
        fn rule_errors(&self) -> Vec<FieldError> {
            let mut errors: Vec<FieldError> =
                Username::parse(&self.username).err().into_iter().collect();
            if let Err(crate::error::ApiError::Unprocessable { errors: e, .. }) =
                crate::auth::password::validate(&self.password, "/password")
            {
                errors.extend(e);
            }
            errors
        }
    }

    /// The one rule a user patch's fields carry on their own (a new password's length), so a patch
    /// with a wrong type elsewhere reports it too.
    impl crate::http::extract::BodyRules for UserPatch {
        fn rule_errors(&self) -> Vec<FieldError> {
            match self
                .password
                .as_deref()
                .map(|p| crate::auth::password::validate(p, "/password"))
            {
                Some(Err(crate::error::ApiError::Unprocessable { errors, .. })) => errors,
                _ => Vec::new(),
            }
        }
    }
}
