//! Who is asking and what they may do: bearer-token authentication (`Caller`), the permission
//! table (`allows`), and the `Require<P>` extractor that enforces it, so handlers never check
//! roles themselves.
pub mod client_ip;
pub mod password;
pub mod role;
pub mod routes;
pub mod throttle;
pub mod tokens;

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use http::header;
use http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;
pub use role::Role;

/// Every operation that not every signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ManageUsers,
    ManageClinics,
    ReadClinics,
    ReadPatients,
    WritePatients,
    DeletePatients,
    MergePatients,
    SealPatients,
    ReadAccessLog,
    ReadMetrics,
    Export,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::ManageUsers,
        Permission::ManageClinics,
        Permission::ReadClinics,
        Permission::ReadPatients,
        Permission::WritePatients,
        Permission::DeletePatients,
        Permission::MergePatients,
        Permission::SealPatients,
        Permission::ReadAccessLog,
        Permission::ReadMetrics,
        Permission::Export,
    ];
}

/// The permission table: the one place that says which role may do what.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Clinician => matches!(
            permission,
            ReadClinics | ReadPatients | WritePatients | DeletePatients | MergePatients | Export
        ),
        Role::Receptionist => matches!(permission, ReadClinics | ReadPatients | WritePatients),
    }
}

/// An authenticated staff member, and the request they made: the explicit context every write
/// and access-log entry carries (the writer runs on its own task and cannot see the request's
/// task-local context).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub clinic_ids: Vec<String>,
    pub token_hash: String,
    pub ip: IpAddr,
    /// careq's id of the request being served.
    pub request_id: String,
    /// The client's own `X-Request-Id`, when it sent a plain one.
    pub client_request_id: Option<String>,
    /// The moment the request is judged at: "today" and "in the future" for day-based rules
    /// (the app's clock, which tests may move).
    pub now: jiff::Timestamp,
}

impl Caller {
    /// Admins see every clinic; others only their own.
    pub fn sees_clinic(&self, clinic_id: &str) -> bool {
        self.role == Role::Admin || self.clinic_ids.iter().any(|c| c == clinic_id)
    }
}

/// The client's IP: the socket peer the accept loop recorded, or, when that peer is a trusted
/// proxy, the address it forwarded in the header careq reads (see `client_ip::resolve`).
pub fn client_ip(parts: &Parts, config: &crate::config::Config) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    client_ip::resolve(
        peer,
        &parts.headers,
        &config.trusted_proxies,
        config.client_ip_header,
    )
}

/// The subprotocol prefix a browser offers its token under when opening a WebSocket: browsers
/// cannot set `Authorization` there, and a token must never travel in a URL.
pub const WS_BEARER_PREFIX: &str = "careq.bearer.";

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(websocket_bearer(&parts.headers));
    }
    bearer_in(&parts.headers)
}

/// The token offered as a `Sec-WebSocket-Protocol` entry `careq.bearer.<token>`, on an upgrade.
fn websocket_bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    websocket_credential(headers, WS_BEARER_PREFIX)
}

/// A credential offered as a `Sec-WebSocket-Protocol` entry `<prefix><credential>` on a
/// WebSocket upgrade (a browser can set no other header there, and a URL is logged and leaks
/// through `Referer`).
pub fn websocket_credential<'h>(
    headers: &'h axum::http::HeaderMap,
    prefix: &str,
) -> Option<&'h str> {
    if !headers.contains_key(header::SEC_WEBSOCKET_KEY) {
        return None;
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(prefix))
        .filter(|t| !t.is_empty())
}

/// The credential of an `Authorization: Bearer …` header, if one was sent.
pub fn bearer_in(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| invalid_token())?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized {
            detail: "use `Authorization: Bearer <token>`".into(),
            invalid_token: false,
        }),
    }
}

pub fn invalid_token() -> ApiError {
    ApiError::Unauthorized {
        detail: "the token is unknown, expired or revoked".into(),
        invalid_token: true,
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let app = AppState::from_ref(state);
        let token = bearer(parts)?.ok_or_else(|| ApiError::Unauthorized {
            detail: "this endpoint needs a bearer token from POST /v1/auth/token".into(),
            invalid_token: false,
        })?;
        let ip = client_ip(parts, &app.config);
        let mut caller = tokens::authenticate(&app.db, token, ip)
            .await?
            .ok_or_else(invalid_token)?;
        caller.now = app.config.clock.now();
        app.limiter.check(&caller.token_hash)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A permission as a type, so a handler states what it needs in its signature.
pub trait Needs: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($name:ident),*) => {$(
        #[doc = concat!("Type-level `Permission::", stringify!($name), "`.")]
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}

/// Marker types for `Require<P>`.
pub mod perm {
    use super::{Needs, Permission};
    needs!(
        ManageUsers,
        ManageClinics,
        ReadClinics,
        ReadPatients,
        WritePatients,
        DeletePatients,
        MergePatients,
        SealPatients,
        ReadAccessLog,
        ReadMetrics,
        Export
    );
}

/// An authenticated caller whose role allows `P`; otherwise 401 or 403.
pub struct Require<P: Needs>(pub Caller, PhantomData<P>);

impl<P: Needs> std::ops::Deref for Require<P> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S, P> FromRequestParts<S> for Require<P>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    P: Needs,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !allows(caller.role, P::PERMISSION) {
            return Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                caller.role.as_str()
            )));
        }
        Ok(Require(caller, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn the_permission_table_is_as_the_contract_says() {
        let expected = |role: Role, p: Permission| match role {
            Role::Admin => true,
            Role::Receptionist => !matches!(
                p,
                ManageUsers
                    | ManageClinics
                    | DeletePatients
                    | MergePatients
                    | SealPatients
                    | ReadAccessLog
                    | ReadMetrics
                    | Export
            ),
            Role::Clinician => !matches!(
                p,
                ManageUsers | ManageClinics | SealPatients | ReadAccessLog | ReadMetrics
            ),
        };
        for role in Role::ALL {
            for p in Permission::ALL {
                assert_eq!(allows(role, p), expected(role, p), "{role:?} × {p:?}");
            }
        }
    }
}
