//! Representations with validators: strong `ETag`, `Last-Modified`, and the conditional-GET rules
//! (`If-None-Match` before `If-Modified-Since`, RFC 9110 §13.2.2) answered with 304 in one place.
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

/// A strong entity tag for some bytes.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// What a gzip-encoded response's strong tag carries after the opaque part: an encoded body is a
/// different representation, so it gets its own strong tag (`"3"` → `"3-gzip"`), and a tag sent
/// back with that suffix names the same version of the resource.
pub const GZIP_SUFFIX: &str = "-gzip";

/// The opaque part of an entity tag, without `W/`, quotes and an encoding suffix.
fn opaque(tag: &str) -> &str {
    let o = tag.trim().trim_start_matches("W/").trim_matches('"');
    o.strip_suffix(GZIP_SUFFIX).unwrap_or(o)
}

/// Gives gzip-encoded responses their own strong `ETag` (`"x"` → `"x-gzip"`): compression
/// leaves a strong tag untouched, which would claim the encoded bytes equal the identity ones.
/// A 304 answering an `If-None-Match` that held a suffixed tag gets the suffixed tag too, so a
/// cache can match it to the encoded response it stored. Weak tags are left as they are.
pub async fn encoded_etags(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let suffixed = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|s| s.contains(&format!("{GZIP_SUFFIX}\"")))
        });
    let mut res = next.run(req).await;
    let gzipped = res
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v == "gzip");
    if gzipped || (res.status() == StatusCode::NOT_MODIFIED && suffixed) {
        let tag = res
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|t| t.len() >= 2 && t.starts_with('"') && t.ends_with('"'))
            .filter(|t| !t.ends_with(&format!("{GZIP_SUFFIX}\"")))
            .map(|t| format!("{}{GZIP_SUFFIX}\"", &t[..t.len() - 1]));
        if let Some(v) = tag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            res.headers_mut().insert(header::ETAG, v);
        }
    }
    res
}

/// `If-None-Match` matches when any listed tag weakly equals `etag`, or it is `*`.
pub fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let values: Vec<&str> = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(values.iter().flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || opaque(t) == opaque(etag)
    }))
}

/// `If-Match` uses the strong comparison: a weak tag never matches.
pub fn if_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let v = headers.get(header::IF_MATCH)?.to_str().ok()?;
    Some(v.split(',').any(|t| {
        let t = t.trim();
        t == "*" || (!t.starts_with("W/") && (t == etag || opaque(t) == opaque(etag)))
    }))
}

/// A representation of a resource ready to be served conditionally.
pub struct Representation {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub etag: String,
    /// Seconds since the Unix epoch, for `Last-Modified`.
    pub last_modified: Option<i64>,
    pub cache_control: &'static str,
    pub status: StatusCode,
    pub extra: HeaderMap,
}

impl Representation {
    pub fn json<T: serde::Serialize>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serializable");
        Self::new(body, "application/json")
    }

    pub fn new(body: Vec<u8>, content_type: &'static str) -> Self {
        let etag = etag_of(&body);
        Self {
            body,
            content_type,
            etag,
            last_modified: None,
            cache_control: "no-store",
            status: StatusCode::OK,
            extra: HeaderMap::new(),
        }
    }

    pub fn cache(mut self, cache_control: &'static str) -> Self {
        self.cache_control = cache_control;
        self
    }

    pub fn modified(mut self, unix_seconds: i64) -> Self {
        self.last_modified = Some(unix_seconds);
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Answers 304 (validators and caching headers, no body) when the request's preconditions
    /// say the client's copy is current, else the full representation.
    pub fn respond(self, req_headers: &HeaderMap) -> Response {
        let fresh = match none_match(req_headers, &self.etag) {
            Some(m) => m,
            None => match (
                self.last_modified,
                req_headers.get(header::IF_MODIFIED_SINCE),
            ) {
                (Some(lm), Some(ims)) => ims
                    .to_str()
                    .ok()
                    .and_then(parse_http_date)
                    .is_some_and(|since| lm <= since),
                _ => false,
            },
        };
        let mut res = if fresh && self.status == StatusCode::OK {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = (self.status, self.body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            r
        };
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(lm) = self.last_modified {
            if let Ok(v) = HeaderValue::from_str(&http_date(lm)) {
                h.insert(header::LAST_MODIFIED, v);
            }
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.cache_control),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        h.extend(self.extra);
        res
    }
}

impl IntoResponse for Representation {
    fn into_response(self) -> Response {
        self.respond(&HeaderMap::new())
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7) for Unix seconds.
pub fn http_date(unix_seconds: i64) -> String {
    jiff::Timestamp::from_second(unix_seconds)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

/// Parses an IMF-fixdate into Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim().strip_suffix(" GMT")?;
    let dt = jiff::civil::DateTime::strptime("%a, %d %b %Y %H:%M:%S", s).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let s = http_date(784_111_777);
        assert_eq!(s, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date(&s), Some(784_111_777));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn entity_tags_compare_as_rfc_9110_says() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "W/\"abc\", \"x\"".parse().unwrap());
        assert_eq!(none_match(&h, "\"abc\""), Some(true));
        h.insert(header::IF_MATCH, "W/\"abc\"".parse().unwrap());
        assert_eq!(if_match(&h, "\"abc\""), Some(false));
        h.insert(header::IF_MATCH, "\"abc\"".parse().unwrap());
        assert_eq!(if_match(&h, "\"abc\""), Some(true));
    }
}
