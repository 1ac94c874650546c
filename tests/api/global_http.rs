//! Global HTTP behaviour seen through an HTTP client: routing misses, methods, negotiation,
//! bodies, redirects, panics and request ids.
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use reqwest::Method;

#[tokio::test]
async fn unknown_route_returns_404_problem() {
    let app = spawn_app().await;
    let res = app.get("/v1/nothing-here").await;
    let body = assert_problem(res, 404).await;
    assert_eq!(body["instance"], "/v1/nothing-here");
}

#[tokio::test]
async fn wrong_method_on_known_path_returns_405_with_allow_and_problem() {
    let app = spawn_app().await;
    for method in ["DELETE", "POST", "PUT", "PATCH", "TRACE", "QUERY"] {
        let res = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/v1/status-codes"),
            )
            .send()
            .await
            .unwrap();
        let allow = res.headers()["allow"].to_str().unwrap().to_string();
        assert!(
            allow.contains("GET") && allow.contains("HEAD"),
            "{method}: {allow}"
        );
        assert_problem(res, 405).await;
    }
}

#[tokio::test]
async fn unknown_method_returns_501_problem() {
    let app = spawn_app().await;
    for method in ["PROPFIND", "FOO"] {
        let res = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/v1/status-codes"),
            )
            .send()
            .await
            .unwrap();
        assert_problem(res, 501).await;
    }
}

#[tokio::test]
async fn options_returns_204_with_allow_and_no_body() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/v1/status-codes/404"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let allow = res.headers()["allow"].to_str().unwrap().to_string();
    for m in ["GET", "HEAD", "OPTIONS"] {
        assert!(allow.contains(m), "{allow}");
    }
    assert!(res.headers().get("content-length").is_none());
    assert!(res.headers().get("content-type").is_none());
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn options_on_an_unknown_path_is_404() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn head_works_wherever_get_does_with_the_same_headers_and_no_body() {
    let app = spawn_app().await;
    for path in [
        "/v1/status-codes/404",
        "/v1/status-codes",
        "/healthz",
        "/openapi.json",
    ] {
        let get = app.get(path).await;
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert_eq!(
            head.headers().get("etag"),
            get.headers().get("etag"),
            "{path}"
        );
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type")
        );
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn unsatisfiable_accept_returns_406_listing_available_types() {
    let app = spawn_app().await;
    for (path, offered) in [
        ("/v1/status-codes/404", vec!["application/json"]),
        ("/v1/status-codes", vec!["application/json", "text/csv"]),
    ] {
        let res = app
            .client
            .get(app.url(path))
            .header("accept", "application/xml")
            .send()
            .await
            .unwrap();
        let body = assert_problem(res, 406).await;
        assert_eq!(body["available"], serde_json::json!(offered), "{path}");
    }
}

#[tokio::test]
async fn csv_only_accept_on_a_single_resource_is_406_but_lists_answer_csv() {
    let app = spawn_app().await;
    let single = app
        .client
        .get(app.url("/v1/status-codes/404"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_problem(single, 406).await;
    let list = app
        .client
        .get(app.url("/v1/status-codes?class=5xx"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(list.headers()["content-type"], "text/csv; charset=utf-8");
    let text = list.text().await.unwrap();
    assert!(text.starts_with("code,name,reason,class,meaning,usage,usage_detail\r\n"));
    assert!(text.contains("\r\n507,HTTP_507_INSUFFICIENT_STORAGE,Insufficient Storage,5xx,"));
}

#[tokio::test]
async fn a_body_of_the_wrong_media_type_returns_415_naming_what_it_takes() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/v1/_test/echo"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["accept-post"], "application/json");
    assert!(
        res.headers().get("accept").is_none(),
        "Accept is a request header"
    );
    assert_problem(res, 415).await;

    let res = app
        .client
        .patch(app.url("/v1/_test/echo"))
        .header("content-type", "application/json")
        .body(r#"{"name":"x","count":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["accept-patch"],
        "application/merge-patch+json"
    );
    assert_problem(res, 415).await;

    // PUT has no header of its own for this: the problem's detail says what it takes.
    let res = app
        .client
        .put(app.url("/v1/_test/echo"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("accept").is_none());
    assert!(res.headers().get("accept-post").is_none());
    let body = assert_problem(res, 415).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("application/json"));
}

#[tokio::test]
async fn malformed_json_returns_400_and_invalid_json_returns_422_with_pointers() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/v1/_test/echo"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let body = assert_problem(post(r#"{"name": "x", "#).await.unwrap(), 400).await;
    assert!(body["detail"].as_str().unwrap().contains("not valid JSON"));

    let body = assert_problem(post(r#"{"name":"x","count":"many"}"#).await.unwrap(), 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/count");
    assert!(!body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("many"));

    let ok = post(r#"{"name":"x","count":2}"#).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_body_over_the_limit_returns_413() {
    let app = spawn_app_with(|c| c.body_limit_bytes = 1024).await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(2000));
    let res = app
        .client
        .post(app.url("/v1/_test/echo"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 413).await;

    // Without Content-Length (chunked), the limit applies while reading.
    let stream = futures_stream(big.into_bytes());
    let res = app
        .client
        .post(app.url("/v1/_test/echo"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_problem(res, 413).await;
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn an_expectation_other_than_100_continue_returns_417() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("expect", "something-else")
        .send()
        .await
        .unwrap();
    assert_problem(res, 417).await;
}

#[tokio::test]
async fn a_long_target_returns_414_problem() {
    let app = spawn_app_with(|c| c.uri_max_bytes = 1000).await;
    let res = app
        .get(&format!("/v1/status-codes?class={}", "x".repeat(1200)))
        .await;
    assert_problem(res, 414).await;
}

#[tokio::test]
async fn a_host_outside_the_allowed_list_returns_421() {
    let app = spawn_app_with(|c| c.allowed_hosts = vec!["careq.test".into()]).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_problem(res, 421).await;
    let ok = app
        .client
        .get(app.url("/healthz"))
        .header("host", "careq.test:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_panic_becomes_a_500_problem_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let res = app.get("/v1/_test/panic").await;
    let body = assert_problem(res, 500).await;
    assert!(!body["detail"].as_str().unwrap().contains("deliberate"));
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_trailing_slash_redirects_301_to_the_canonical_path() {
    let app = spawn_app().await;
    let res = app.get("/v1/status-codes/?class=2xx").await;
    assert_eq!(res.status(), 301);
    assert_eq!(res.headers()["location"], "/v1/status-codes?class=2xx");
}

#[tokio::test]
async fn unversioned_api_paths_redirect_308_to_v1_keeping_the_method() {
    let app = spawn_app().await;
    let cases = [
        ("GET", "/patients/abc?x=1", "/v1/patients/abc?x=1"),
        ("GET", "/patient/abc", "/v1/patients/abc"),
        ("POST", "/appointments", "/v1/appointments"),
        ("GET", "/status-codes/404", "/v1/status-codes/404"),
    ];
    for (method, from, to) in cases {
        let res = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(from),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 308, "{from}");
        assert_eq!(res.headers()["location"], to);
    }
}

#[tokio::test]
async fn every_response_carries_careqs_own_request_id_and_the_clients_beside_it() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    // careq's id is its own (a client cannot choose the id audit rows carry); a plain client id
    // comes back beside it for correlation.
    let own = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(own.len(), 32);
    assert_ne!(own, "trace-42");
    assert_eq!(res.headers()["x-client-request-id"], "trace-42");
    let res = app
        .client
        .get(app.url("/v1/missing"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert!(res.headers().get("x-client-request-id").is_none());
    let body = assert_problem(res, 404).await;
    assert_eq!(body["request_id"], id.as_str());
    assert_eq!(
        app.get("/healthz").await.headers()["x-content-type-options"],
        "nosniff"
    );
}

#[tokio::test]
async fn a_nul_anywhere_in_a_request_is_answered_alike_on_either_engine() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // In a path: nothing is named so.
    let res = app
        .authed(Method::GET, "/v1/patients/pat_%00", &admin)
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("NUL"));
    // In a query value: it finds nothing.
    for path in [
        "/v1/patients?mrn=A%00B",
        "/v1/appointments?patient_id=pat_%00",
    ] {
        let res = app.authed(Method::GET, path, &admin).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let page: serde_json::Value = res.json().await.unwrap();
        assert!(
            page["items"].as_array().unwrap().is_empty(),
            "{path}: {page}"
        );
    }
    // In a body: 422 at the field.
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&serde_json::json!({"name": "A\u{0}B", "timezone": "UTC", "ticket_prefix": "N"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/name");
    // The server goes on serving.
    let res = app
        .authed(Method::GET, "/v1/patients?mrn=A-1", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
