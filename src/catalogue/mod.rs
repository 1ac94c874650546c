//! The status-code catalogue over HTTP: `GET /v1/status-codes` and `GET /v1/status-codes/{code}`.
//! Public and cacheable; everything is read from the `careq-status` registry.
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use careq_status::{Class, Status};
use http::{HeaderMap, Uri};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};
use crate::http::conditional::Representation;
use crate::http::extract::ApiQuery;
use crate::http::negotiate::Preference;
use crate::http::paging::{with_next_link, Page, PageParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/status-codes", get(list))
        .route("/v1/status-codes/{code}", get(read))
}

/// Cache lifetime for the catalogue: it changes only with a new careq release.
const CACHE: &str = "public, max-age=3600";

/// One catalogue entry as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusEntry {
    /// The number.
    pub code: u16,
    /// Constant name, e.g. `HTTP_404_NOT_FOUND`.
    pub name: &'static str,
    /// Reason phrase.
    pub reason: &'static str,
    /// `1xx` … `5xx`.
    pub class: &'static str,
    /// What the code means.
    pub meaning: &'static str,
    /// `produced`, `stack` or `never`.
    pub usage: &'static str,
    /// When careq (or its stack) sends it, or why it never does.
    pub usage_detail: &'static str,
}

impl From<&'static Status> for StatusEntry {
    fn from(s: &'static Status) -> Self {
        StatusEntry {
            code: s.code,
            name: s.name,
            reason: s.reason,
            class: s.class().label(),
            meaning: s.meaning,
            usage: s.usage.kind(),
            usage_detail: s.usage.text(),
        }
    }
}

/// A page of catalogue entries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusPage {
    pub items: Vec<StatusEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only codes of this class: `1xx`, `2xx`, `3xx`, `4xx` or `5xx`.
    #[param(pattern = "^[1-5][xX][xX]$")]
    pub class: Option<String>,
    /// Items per page, 1–200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(pattern = "^(c(3[0-9])+)?$")]
    pub cursor: Option<String>,
}

/// List the catalogue
#[utoipa::path(get, path = "/v1/status-codes", tag = "catalogue",
    params(ListParams),
    responses(
        (status = 200, description = "A page of entries", body = StatusPage,
            content((StatusPage = "application/json"), (String = "text/csv")),
            headers(("ETag" = String, description = "Strong validator"),
                    ("Link" = String, description = "`rel=\"next\"` when there is a next page"))),
        (status = 304, description = "Not modified"),
    ),
    security(()))]
pub async fn list(
    ApiQuery(q): ApiQuery<ListParams>,
    Extension(pref): Extension<Preference>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let class: Option<Class> = q
        .class
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::bad_param("class", "one of 1xx, 2xx, 3xx, 4xx, 5xx"))
        })
        .transpose()?;
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let after = crate::http::paging::numeric_after(paging.after()?)?;
    let rows: Vec<StatusEntry> = careq_status::ALL
        .iter()
        .filter(|s| class.is_none_or(|c| s.class() == c) && u64::from(s.code) > after)
        .take(limit as usize + 1)
        .map(StatusEntry::from)
        .collect();
    let page = Page::from_rows(rows, limit, |e| e.code.to_string());
    let rep = if pref.wants_csv() {
        crate::http::csv_out::representation(&page.items, &headers)
    } else {
        Representation::json(&page)
    };
    let res = rep.cache(CACHE).respond(&headers);
    Ok(with_next_link(res, &uri, page.next_cursor.as_deref()))
}

impl crate::http::csv_out::CsvRow for StatusEntry {
    fn columns() -> &'static [&'static str] {
        &[
            "code",
            "name",
            "reason",
            "class",
            "meaning",
            "usage",
            "usage_detail",
        ]
    }
    fn cells(&self) -> Vec<crate::http::csv_out::Cell> {
        use crate::http::csv_out::Cell;
        vec![
            Cell::number(self.code),
            Cell::text(self.name),
            Cell::text(self.reason),
            Cell::text(self.class),
            Cell::text(self.meaning),
            Cell::text(self.usage),
            Cell::text(self.usage_detail),
        ]
    }
}

/// Read one catalogue entry
#[utoipa::path(get, path = "/v1/status-codes/{code}", tag = "catalogue",
    params(("code" = u16, Path, minimum = 100, maximum = 599, description = "A status code number, e.g. 404")),
    responses(
        (status = 200, description = "The entry", body = StatusEntry,
            headers(("ETag" = String, description = "Strong validator"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "Not in the catalogue"),
    ),
    security(()))]
pub async fn read(
    Path(code): Path<String>,
    State(_): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let number: u16 = code.parse().map_err(|_| ApiError::BadRequest {
        detail: "a status code is a number such as 404".into(),
        errors: vec![FieldError::new("path/code", "must be a number")],
    })?;
    let entry = careq_status::lookup(number)
        .ok_or_else(|| ApiError::NotFound(format!("{number} is not in the catalogue")))?;
    Ok(Representation::json(&StatusEntry::from(entry))
        .cache(CACHE)
        .respond(&headers)
        .into_response())
}
