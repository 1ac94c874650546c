//! `GET /v1/access-log`: the whole access log for admins, filtered by actor, kind of record and
//! time, oldest first, with each actor's username beside the id. A request that returned
//! several patients (a search, a list) is one entry here, `resource_id` `several`, listing them
//! in `patients`; each patient's own log shows it as an entry about that patient. Entries are
//! never changed or removed through the API; `careq audit archive` is the one way old entries
//! leave.
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::AccessLogPage;
use crate::auth::{perm, Require};
use crate::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::http::paging::{numeric_after, Page, PageParams};
use crate::state::AppState;
use crate::store::LogFilter;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/access-log", get(list))
}

/// The kinds of record the access log speaks about.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Patient,
    Appointment,
    Ticket,
    User,
    /// An export job (its writing and each download of its file).
    Export,
}

impl ResourceType {
    fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "patient",
            ResourceType::Appointment => "appointment",
            ResourceType::Ticket => "ticket",
            ResourceType::User => "user",
            ResourceType::Export => "export",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only what this user did (a user id).
    #[param(pattern = "^usr_[0-9a-f]{20}$")]
    pub actor: Option<String>,
    /// Only entries about this kind of record.
    #[param(inline)]
    pub resource_type: Option<ResourceType>,
    /// From this instant (RFC 3339) or the start of this UTC day (`YYYY-MM-DD`), inclusive.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Before this instant (RFC 3339), or through the end of this UTC day (`YYYY-MM-DD`). A
    /// window that ends before it starts holds nothing.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Items per page, 1–200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(pattern = "^(c(3[0-9])+)?$")]
    pub cursor: Option<String>,
}

/// The whole access log, filtered (admin)
#[utoipa::path(get, path = "/v1/access-log", tag = "access log", params(LogParams),
    responses((status = 200, description = "A page of entries, oldest first; a request that returned several patients is one entry listing them (`patients`)", body = AccessLogPage,
            headers(("Link" = String, description = "`rel=\"next\"` when there is more"))),
        (status = 400, description = "A filter is not valid (a malformed id or time)"),
        (status = 403, description = "Not an admin")))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Require<perm::ReadAccessLog>,
    ApiQuery(p): ApiQuery<LogParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let actor = p.actor;
    if let Some(actor) = &actor {
        if !crate::ids::is_id(actor, "usr") {
            return Err(ApiError::bad_param("actor", "a user id (usr_…)"));
        }
    }
    let from = p
        .from
        .map(|v| super::instant("from", &v, false))
        .transpose()?;
    let before = p.to.map(|v| super::instant("to", &v, true)).transpose()?;
    let filter = LogFilter {
        actor_id: actor,
        resource_type: p.resource_type.map(|r| r.as_str().to_string()),
        from,
        before,
    };
    let paging = PageParams {
        limit: p.limit,
        cursor: p.cursor,
    };
    let limit = paging.limit()?;
    let after = i64::try_from(numeric_after(paging.after()?)?).unwrap_or(i64::MAX);
    let empty_window = matches!((&filter.from, &filter.before), (Some(f), Some(b)) if f >= b);
    let rows = if empty_window {
        Vec::new()
    } else {
        st.db
            .read(move |conn| Ok(super::records::access_log(conn, &filter, after, limit)?))
            .await?
    };
    let page = Page::from_rows(rows, limit, |e| e.seq.to_string());
    Ok(page.respond(&uri))
}
