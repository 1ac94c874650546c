//! Files served with byte ranges (RFC 9110 §14): `Accept-Ranges: bytes`, one `Range` → 206 with
//! `Content-Range`, an unsatisfiable one → 416, `If-Range` honoured (a stale validator gets the
//! whole file), several ranges → the whole file with 200 (allowed by §14.2; careq sends no
//! `multipart/byteranges`). The body is streamed from disk in chunks, never held whole.
use std::path::Path;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::conditional::{http_date, none_match, parse_http_date};
use crate::error::ApiError;

/// What a `Range` request asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// How `Range` (and `If-Range`) apply to a representation with these validators.
pub fn requested(headers: &HeaderMap, len: u64, etag: &str, modified: Option<i64>) -> Ranged {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ranged::Whole;
    };
    if let Some(cond) = headers.get(header::IF_RANGE) {
        let cond = cond.to_str().unwrap_or("").trim();
        // An entity tag must match strongly; a date must be the exact Last-Modified.
        let current = if cond.starts_with('"') {
            cond == etag
        } else if cond.starts_with("W/") {
            false
        } else {
            parse_http_date(cond).is_some_and(|d| Some(d) == modified)
        };
        if !current {
            return Ranged::Whole;
        }
    }
    parse(range, len)
}

/// A syntactically wrong `Range` is ignored (whole file), as §14.2 allows.
fn parse(range: &str, len: u64) -> Ranged {
    let Some((unit, set)) = range.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), number(first), number(last)) {
        // A suffix: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(a), end) if last.is_empty() || end.is_some() => {
            if end.is_some_and(|b| b < a) {
                return Ranged::Whole;
            }
            if a >= len {
                return Ranged::Unsatisfiable;
            }
            Ranged::Part(a, end.map_or(len - 1, |b| b.min(len - 1)))
        }
        _ => Ranged::Whole,
    }
}

/// A file on disk and how to describe it.
pub struct FileMeta<'a> {
    pub path: &'a Path,
    pub content_type: &'static str,
    /// A strong tag, quoted.
    pub etag: String,
    pub modified: Option<i64>,
    /// `Content-Disposition: attachment; filename=…` (plain ASCII).
    pub filename: String,
}

/// Serves the file: 304 for a matching `If-None-Match`, 206 / 416 / 200 as the range asks.
/// `None` when the file is not there.
pub async fn serve(req: &HeaderMap, f: FileMeta<'_>) -> Result<Option<Response>, ApiError> {
    let mut file = match tokio::fs::File::open(f.path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let mut res = if none_match(req, &f.etag) == Some(true) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (status, start, count) = match requested(req, len, &f.etag, f.modified) {
            Ranged::Whole => (StatusCode::OK, 0, len),
            Ranged::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
            Ranged::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { length: len }),
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(ApiError::internal)?;
        let mut res = Response::new(Body::from_stream(chunks(file, count)));
        *res.status_mut() = status;
        let h = res.headers_mut();
        put(h, header::CONTENT_TYPE, f.content_type);
        put(h, header::CONTENT_LENGTH, &count.to_string());
        put(
            h,
            header::CONTENT_DISPOSITION,
            &format!("attachment; filename=\"{}\"", f.filename),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            let range = format!("bytes {start}-{}/{len}", start + count - 1);
            put(h, header::CONTENT_RANGE, &range);
        }
        res
    };
    let h = res.headers_mut();
    put(h, header::ACCEPT_RANGES, "bytes");
    put(h, header::ETAG, &f.etag);
    if let Some(m) = f.modified {
        put(h, header::LAST_MODIFIED, &http_date(m));
    }
    put(h, header::CACHE_CONTROL, "private, no-store");
    Ok(Some(res))
}

fn put(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `count` bytes from the file's position, 64 KiB at a time.
fn chunks(
    file: tokio::fs::File,
    count: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    const CHUNK: u64 = 64 * 1024;
    stream::try_unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; CHUNK.min(left) as usize];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than it was",
            ));
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), (file, left - n as u64))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        let cases = [
            ("bytes=0-99", Ranged::Part(0, 99)),
            ("bytes=100-", Ranged::Part(100, 999)),
            ("bytes=-10", Ranged::Part(990, 999)),
            ("bytes=-5000", Ranged::Part(0, 999)),
            ("bytes=900-5000", Ranged::Part(900, 999)),
            ("BYTES=1-1", Ranged::Part(1, 1)),
            ("bytes=1000-", Ranged::Unsatisfiable),
            ("bytes=5000-6000", Ranged::Unsatisfiable),
            ("bytes=-0", Ranged::Unsatisfiable),
            ("bytes=0-1,5-6", Ranged::Whole),
            ("bytes=9-1", Ranged::Whole),
            ("bytes=x-1", Ranged::Whole),
            ("items=0-1", Ranged::Whole),
            ("bytes=-", Ranged::Whole),
        ];
        for (header, want) in cases {
            assert_eq!(parse(header, 1000), want, "{header}");
        }
        assert_eq!(parse("bytes=0-", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn if_range_with_a_stale_or_weak_validator_asks_for_the_whole_file() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, "bytes=0-9".parse().unwrap());
        assert_eq!(requested(&h, 100, "\"a\"", Some(5)), Ranged::Part(0, 9));
        h.insert(header::IF_RANGE, "\"a\"".parse().unwrap());
        assert_eq!(requested(&h, 100, "\"a\"", Some(5)), Ranged::Part(0, 9));
        for stale in ["\"b\"", "W/\"a\"", "Sun, 06 Nov 1994 08:49:37 GMT"] {
            h.insert(header::IF_RANGE, stale.parse().unwrap());
            assert_eq!(
                requested(&h, 100, "\"a\"", Some(5)),
                Ranged::Whole,
                "{stale}"
            );
        }
        h.insert(header::IF_RANGE, http_date(5).parse().unwrap());
        assert_eq!(requested(&h, 100, "\"a\"", Some(5)), Ranged::Part(0, 9));
    }
}
