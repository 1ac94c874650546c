//! Compressed responses: gzip when the client asks, a strong `ETag` of their own
//! (`"x"` → `"x-gzip"`), revalidation and `If-Match` with that tag, and nothing changed for
//! clients that do not ask.
use std::io::Read;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::patients::{create_patient, header, new_patient_json};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn json_is_gzipped_when_asked_with_its_own_strong_etag() {
    let app = spawn_app().await;
    let plain = app.get("/openapi.json").await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_tag = header(&plain, "etag");
    let plain_body = plain.bytes().await.unwrap();

    let res = app
        .client
        .get(app.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-encoding"), "gzip");
    let vary: Vec<String> = res
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_lowercase())
        .collect();
    assert!(
        vary.iter().any(|v| v.contains("accept-encoding")),
        "{vary:?}"
    );
    let tag = header(&res, "etag");
    assert_eq!(tag, format!("{}-gzip\"", &plain_tag[..plain_tag.len() - 1]));
    let zipped = res.bytes().await.unwrap();
    assert!(
        zipped.len() * 5 < plain_body.len(),
        "{} bytes gzipped from {}",
        zipped.len(),
        plain_body.len()
    );
    let spec: Value = serde_json::from_slice(&gunzip(&zipped)).unwrap();
    assert_eq!(spec, serde_json::from_slice::<Value>(&plain_body).unwrap());

    // Revalidating the encoded representation with its tag: 304 with that tag, no body.
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag"), tag);
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_gzipped_patients_tag_revalidates_and_guards_updates() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let (id, plain_tag) =
        create_patient(&app, &admin, &new_patient_json(&clinic, "Ada", "Byron")).await;
    let path = format!("/v1/patients/{id}");
    let res = app
        .authed(Method::GET, &path, &admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-encoding"), "gzip");
    let tag = header(&res, "etag");
    assert_eq!(tag, "\"1-gzip\"");
    assert_eq!(plain_tag, "\"1\"");
    let patient: Value = serde_json::from_slice(&gunzip(&res.bytes().await.unwrap())).unwrap();
    assert_eq!(patient["id"], id.as_str());

    let res = app
        .authed(Method::GET, &path, &admin)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag"), tag);

    // The encoded representation's tag names the same version for a write.
    let res = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &tag)
        .body(json!({"given_name": "Augusta"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "\"2\"");
    // …and a stale one still loses.
    let res = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &tag)
        .body(json!({"given_name": "Ada"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "etag"), "\"2\"");
    assert_problem(res, 412).await;

    // A client that does not ask gets what it always got.
    let res = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(header(&res, "etag"), "\"2\"");
}
