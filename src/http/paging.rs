//! Cursor paging for every list: `limit` (1–200, default 50) and an opaque `cursor`; the answer
//! carries `{items, next_cursor}` and a `Link: <…>; rel="next"` header when there is more.
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::Uri;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The paging part of a list's query string.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(pattern = "^(c([0-9a-f]{2})*)?$")]
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_param("limit", "must be between 1 and 200")),
        }
    }

    /// The position after which the page starts, decoded from the cursor.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        self.after_by(decode_cursor)
    }

    /// The position after which the page starts, from a cursor opened by `open`.
    pub fn after_by(
        &self,
        open: impl FnOnce(&str) -> Result<String, ApiError>,
    ) -> Result<Option<String>, ApiError> {
        // An empty `cursor=` is the same as none: the first page.
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(open)
            .transpose()
    }
}

/// Cursors are the hex of the last key seen, behind a version letter, so they stay opaque.
pub fn encode_cursor(key: &str) -> String {
    format!("c{}", hex::encode(key))
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    cursor
        .strip_prefix('c')
        .and_then(|h| hex::decode(h).ok())
        // Any decodable key is a valid position in a keyset order, so a cursor need not have
        // been issued by this server to be answered; only malformed ones are refused.
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .ok_or_else(bad_cursor)
}

pub fn bad_cursor() -> ApiError {
    ApiError::bad_param("cursor", "not a valid cursor")
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_rows(rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        Self::from_rows_by(rows, limit, |r| encode_cursor(&key(r)))
    }

    /// Like `from_rows`, with the whole cursor made by `cursor` (e.g. a sealed one).
    pub fn from_rows_by(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(cursor) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with each item turned into what is served.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// A numeric key from a cursor (status codes, sequence numbers); oversized numbers saturate.
pub fn numeric_after(after: Option<String>) -> Result<u64, ApiError> {
    match after {
        None => Ok(0),
        Some(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(k.parse::<u64>().unwrap_or(u64::MAX))
        }
        Some(_) => Err(bad_cursor()),
    }
}

/// Paging parameters for lists ordered by a number (cursors are hex-encoded digits).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NumericPageParams {
    /// Items per page, 1–200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(pattern = "^(c(3[0-9])+)?$")]
    pub cursor: Option<String>,
}

impl NumericPageParams {
    pub fn paging(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// Adds `Link: <uri-with-next-cursor>; rel="next"` when the page has a successor.
pub fn with_next_link(mut res: Response, uri: &Uri, next_cursor: Option<&str>) -> Response {
    if let Some(cursor) = next_cursor {
        let kept: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .filter(|(k, _)| k != "cursor")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("cursor", cursor);
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), q.finish());
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().append(header::LINK, v);
        }
    }
    res
}

impl<T: Serialize> Page<T> {
    /// The page as JSON, with its `Link: rel="next"` header when there is more.
    pub fn respond(self, uri: &Uri) -> Response {
        let next = self.next_cursor.clone();
        with_next_link(self.into_response(), uri, next.as_deref())
    }
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor("404")).unwrap(), "404");
        assert_eq!(decode_cursor("zz").unwrap_err().status().code, 400);
    }

    #[test]
    fn pages_know_whether_there_is_more() {
        let p = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(
            p.next_cursor.as_deref().map(|c| decode_cursor(c).unwrap()),
            Some("2".into())
        );
        let q = Page::from_rows(vec![1], 2, |n| n.to_string());
        assert!(q.next_cursor.is_none());
    }
}
