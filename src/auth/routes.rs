//! `POST /v1/auth/token` (sign in) and `DELETE /v1/auth/token` (sign out).
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::throttle::LoginKey;
use super::{client_ip, tokens, Caller};
use crate::error::{ApiError, FieldError};
use crate::http::extract::JsonBody;
use crate::state::AppState;
use crate::users::domain::{normalize_username, MAX_USERNAME_BYTES};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/token", post(sign_in).delete(sign_out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenGrant {
    /// Send as `Authorization: Bearer <access_token>`. Shown once; careq keeps only its hash.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// The client's IP address.
pub struct ClientIp(pub std::net::IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = <AppState as axum::extract::FromRef<S>>::from_ref(state);
        Ok(ClientIp(client_ip(parts, &app.config)))
    }
}

/// Sign in: exchange a username and password for a bearer token
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = Credentials,
    responses((status = 200, description = "Signed in", body = TokenGrant),
        (status = 401, description = "Wrong username or password"),
        (status = 422, description = "A username longer than any account's (over 64 characters)"),
        (status = 429, description = "Too many failed sign-ins for this user from this address, or too many sign-ins from this address being checked at once"),
        (status = 503, description = "Too many sign-ins (from many addresses) being checked at once")),
    security(()))]
pub async fn sign_in(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(creds): JsonBody<Credentials>,
) -> Result<Json<TokenGrant>, ApiError> {
    // Bounded before anything is done with it: no hashing, lookup or throttle entry for a name
    // no account could have.
    let name = normalize_username(&creds.username);
    if creds.username.len() > MAX_USERNAME_BYTES || name.chars().count() > 64 {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/username",
            "at most 64 characters",
        )]));
    }
    let found = crate::users::credentials(&st.db, &name).await?;
    let key = match &found {
        Some((id, _)) => LoginKey::Account(id.clone()),
        None => LoginKey::Name(name),
    };
    st.throttle.check(&key, ip)?;
    let (user_id, hash) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    // Unknown users are verified against a dummy hash: same answer, about the same time.
    let ok = st.hashing.verify(ip, creds.password, hash).await?;
    let Some(user_id) = user_id.filter(|_| ok) else {
        st.throttle.record_failure(&key, ip);
        return Err(ApiError::Unauthorized {
            detail: "wrong username or password".into(),
            invalid_token: false,
        });
    };
    let ttl = st.config.token_ttl_seconds as i64;
    let token = tokens::issue(&st.db, &user_id, ttl).await?;
    Ok(Json(TokenGrant {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
    }))
}

/// Sign out: revoke the token this request carries
#[utoipa::path(delete, path = "/v1/auth/token", tag = "auth",
    responses((status = 204, description = "Revoked")))]
pub async fn sign_out(State(st): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    tokens::revoke(&st.db, &caller.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl crate::http::extract::BodyRules for Credentials {}
