//! Extractors whose rejections are `ApiError`s: JSON bodies (415, 413, 408, 400, 422 with JSON
//! Pointers) and query strings (400 with `query/NAME` pointers).
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{header, Method};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::{ApiError, BodyMethod, FieldError};
use std::sync::Arc;

pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A JSON request body, read within the client timeout and the size limit, then deserialized.
/// PATCH requests must send `application/merge-patch+json`; everything else `application/json`.
pub struct JsonBody<T>(pub T);

fn media_type(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<Config>::from_ref(state);
        let (parts, body) = req.into_parts();
        let method = match parts.method {
            Method::PATCH => BodyMethod::Patch,
            Method::PUT => BodyMethod::Put,
            _ => BodyMethod::Post,
        };
        let wanted = if method == BodyMethod::Patch {
            MERGE_PATCH
        } else {
            "application/json"
        };
        if media_type(&parts).as_deref() != Some(wanted) {
            return Err(ApiError::UnsupportedMediaType {
                accept: wanted,
                method,
            });
        }
        let bytes = read_body(body, &config).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a whole body within `CAREQ_CLIENT_TIMEOUT_MS` and `CAREQ_BODY_LIMIT_BYTES`.
pub async fn read_body(body: axum::body::Body, config: &Config) -> Result<bytes::Bytes, ApiError> {
    let limit = config.body_limit_bytes;
    let collected =
        tokio::time::timeout(config.client_timeout(), Limited::new(body, limit).collect())
            .await
            .map_err(|_| ApiError::RequestTimeout)?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge(
            format!("the body is over the limit of {limit} bytes"),
        )),
        Err(_) => Err(ApiError::bad_request("the request body could not be read")),
    }
}

/// Syntax errors answer 400; well-formed JSON of the wrong shape answers 422 with a pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
            detail: format!("the body is not valid JSON: {}", syntax_position(&e)),
            errors: Vec::new(),
        })?;
    parse_value(value)
}

/// Well-formed JSON of the wrong shape answers 422 with a JSON Pointer to the field.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if let Some(pointer) = nul_at(&value, String::new()) {
        return Err(ApiError::invalid(vec![FieldError::new(
            pointer,
            "holds a NUL character (\\u0000), which no field takes",
        )]));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = pointer_of(e.path());
        ApiError::invalid(vec![FieldError::new(pointer, clean_message(e.inner()))])
    })
}

/// The JSON Pointer of the first string (or key) holding NUL: no field careq takes can, and
/// PostgreSQL's text cannot store or compare one, so it is refused alike on both engines.
fn nul_at(v: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::String(s) if s.contains('\0') => Some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{at}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let here = format!("{at}/{}", escape(k));
            if k.contains('\0') {
                Some(here)
            } else {
                nul_at(item, here)
            }
        }),
        _ => None,
    }
}

fn syntax_position(e: &serde_json::Error) -> String {
    if e.line() == 0 {
        "the body is empty".into()
    } else {
        format!("syntax error at line {} column {}", e.line(), e.column())
    }
}

/// serde's message without echoing the offending value (it may be patient data).
fn clean_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let expected = rest.split(", expected ").nth(1).unwrap_or("another type");
        return format!("wrong type, expected {expected}");
    }
    if msg.starts_with("unknown variant") {
        let expected = msg.split("expected ").nth(1).unwrap_or("a known value");
        return format!("unknown value, expected {expected}");
    }
    if msg.starts_with("invalid value") {
        return "invalid value".into();
    }
    msg
}

/// JSON Pointer (RFC 6901) of a serde path.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('-'),
        }
    }
    out
}

/// A `YYYY-MM-DD` query parameter (any real date); 400 at `query/NAME` otherwise.
pub fn query_date(name: &str, value: &str) -> Result<jiff::civil::Date, ApiError> {
    value
        .parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| value.len() == 10)
        .ok_or_else(|| ApiError::bad_param(name, "a date as YYYY-MM-DD"))
}

/// A query string deserialized into `T`; errors answer 400 pointing at `query/NAME`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        // A NUL in a value becomes U+0001: neither is in any stored value (text fields refuse
        // control characters), so the value still finds nothing — as on SQLite — and never
        // reaches PostgreSQL, whose text cannot hold NUL.
        let pairs: Vec<(String, String)> = form_urlencoded_parse(query)
            .map(|(k, v)| (k.into_owned(), v.replace('\0', "\u{1}")))
            .collect();
        // A parameter the endpoint does not take is a mistake to report, not to ignore: a
        // misspelt filter (`family_name=`) would otherwise answer the unfiltered list.
        let known = fields_of::<T>();
        let mut unknown: Vec<&str> = Vec::new();
        for (k, _) in &pairs {
            if !known.contains(&k.as_str()) && !unknown.contains(&k.as_str()) {
                unknown.push(k);
            }
        }
        if !unknown.is_empty() {
            let takes = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(ApiError::BadRequest {
                detail: format!(
                    "unknown query parameter{}: {}; this endpoint takes {takes}",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join(", ")
                ),
                errors: unknown
                    .iter()
                    .map(|k| {
                        FieldError::new(
                            format!("query/{k}"),
                            format!("not a parameter of this endpoint (it takes {takes})"),
                        )
                    })
                    .collect(),
            });
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(&query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let name = e.path().to_string();
                let message = e.inner().to_string();
                let name = if name == "." {
                    first_field(&message)
                } else {
                    name
                };
                ApiError::BadRequest {
                    detail: "a query parameter is not valid; see errors".into(),
                    errors: vec![FieldError::new(format!("query/{name}"), message)],
                }
            })
    }
}

/// The field names a query struct declares (after serde renames), read from its derived
/// `Deserialize`: it hands them to `deserialize_struct`, where this deserializer stops.
fn fields_of<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut f = Fields(None);
    let _ = T::deserialize(&mut f);
    f.0.unwrap_or(&[])
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// serde names a missing or unknown field only in its message ("missing field `x`").
fn first_field(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        tags: Vec<u8>,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Params {
        q: Option<String>,
        #[serde(rename = "page-size")]
        limit: Option<u32>,
    }

    #[test]
    fn a_query_struct_names_its_fields() {
        assert_eq!(fields_of::<Params>(), ["q", "page-size"]);
    }

    #[test]
    fn json_errors_split_into_400_and_422_with_pointers() {
        assert_eq!(parse_json::<Item>(b"{").unwrap_err().status().code, 400);
        assert_eq!(parse_json::<Item>(b"").unwrap_err().status().code, 400);
        let err = parse_json::<Item>(br#"{"name":"a","tags":[1,"x"]}"#).unwrap_err();
        assert_eq!(err.status().code, 422);
        match err {
            ApiError::Unprocessable { errors, .. } => assert_eq!(errors[0].pointer, "/tags/1"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
