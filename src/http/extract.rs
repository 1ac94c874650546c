//! Extractors whose rejections are `ApiError`s: JSON bodies (415, 413, 408, 400, 422 with JSON
//! Pointers) and query strings (400 with `query/NAME` pointers).
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{header, Method};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use super::shape::{self, Shape};
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
    T: DeserializeOwned + BodyRules,
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
pub fn parse_json<T: DeserializeOwned + BodyRules>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
            detail: format!("the body is not valid JSON: {}", syntax_position(&e)),
            errors: Vec::new(),
        })?;
    parse_value(value)
}

/// Rules a request body's fields must meet that need nothing but the body: run on a body that
/// also has shape errors, so one 422 lists the broken rules with the wrong shapes. (A body of the
/// right shape meets its rules in the feature's `parse`, which reports every rule at once.)
pub trait BodyRules {
    fn rule_errors(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

impl BodyRules for serde_json::Map<String, serde_json::Value> {}
impl BodyRules for serde_json::Value {}

/// Well-formed JSON of the wrong shape answers 422 listing every field error at once, each with
/// its JSON Pointer and a message in plain words; with them, the rules the other fields break.
pub fn parse_value<T: DeserializeOwned + BodyRules>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    match shape::check::<T>(value) {
        Shape::Fits(v) => Ok(v),
        Shape::Broken {
            mut errors,
            repaired,
            stand_ins,
        } => {
            for e in repaired.map(|r| r.rule_errors()).unwrap_or_default() {
                let ours = stand_ins.iter().any(|s| shape::under(&e.pointer, s));
                if !ours && !errors.iter().any(|x| x.pointer == e.pointer) {
                    errors.push(e);
                }
            }
            Err(ApiError::invalid(errors))
        }
    }
}

fn syntax_position(e: &serde_json::Error) -> String {
    if e.line() == 0 {
        "the body is empty".into()
    } else {
        format!("syntax error at line {} column {}", e.line(), e.column())
    }
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
    impl BodyRules for Item {}

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Colour {
        Red,
        Green,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Form {
        ticket_prefix: String,
        colour: Colour,
        height: Option<f64>,
        count: u32,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        a: String,
        b: bool,
    }
    impl BodyRules for Form {
        fn rule_errors(&self) -> Vec<FieldError> {
            match &self.note {
                Some(n) if n.len() > 3 => vec![FieldError::new("/note", "at most 3 letters")],
                _ => Vec::new(),
            }
        }
    }

    fn errors_of(body: &str) -> Vec<(String, String)> {
        match parse_json::<Form>(body.as_bytes()).unwrap_err() {
            ApiError::Unprocessable { errors, .. } => {
                errors.into_iter().map(|e| (e.pointer, e.message)).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect()
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

    #[test]
    fn every_shape_error_and_the_rules_of_the_rest_come_at_once_in_plain_words() {
        let got = errors_of(
            r#"{"colour":"blue","height":"tall","count":-1,"note":"long","extra":1,
                "inner":{"a":5}}"#,
        );
        let want = pairs(&[
            ("/colour", "must be one of: red, green"),
            ("/count", "must be a whole number, 0 or more"),
            ("/extra", "is not a field of this request"),
            ("/height", "must be a number"),
            ("/inner/a", "must be a string"),
            ("/inner/b", "is required"),
            ("/ticket_prefix", "is required"),
            ("/note", "at most 3 letters"),
        ]);
        let mut sorted = got.clone();
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(sorted, want_sorted, "{got:?}");
    }

    #[test]
    fn an_empty_optional_field_is_not_given_and_an_empty_required_one_is_reported() {
        let ok: Form = parse_json(
            br#"{"ticket_prefix":"A","colour":"red","height":"","count":1,"note":"","inner":""}"#,
        )
        .unwrap();
        assert!(ok.height.is_none() && ok.note.is_none() && ok.inner.is_none());
        let got = errors_of(r#"{"ticket_prefix":"","colour":"","height":null,"count":""}"#);
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(
            got_sorted,
            pairs(&[
                ("/colour", "must not be empty"),
                ("/count", "must not be empty"),
                ("/ticket_prefix", "must not be empty"),
            ]),
            "{got:?}"
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_or_names_a_wrong_enum_type_says_so_plainly() {
        assert_eq!(errors_of("[1]"), pairs(&[("", "must be an object")]));
        let got = errors_of(r#"{"ticket_prefix":"A","colour":7,"count":1,"height":null}"#);
        assert_eq!(got, pairs(&[("/colour", "must be one of: red, green")]));
        let got = errors_of(
            "{\"ticket_prefix\":\"A\\u0000\",\"colour\":\"red\",\"count\":1,\"height\":null}",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "/ticket_prefix");
    }
}
