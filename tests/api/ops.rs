//! Operations endpoints: health, readiness, metrics, the spec and the docs page.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_200_when_all_is_well() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn readyz_answers_503_with_retry_after_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    app.state.db.close().await;
    let res = app.get("/readyz").await;
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_problem(res, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_method_and_status() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.get("/v1/status-codes/404").await;
    app.get("/v1/status-codes/999").await;
    let clinic = app.create_clinic(&admin, "North").await;
    for _ in 0..2 {
        let res = app
            .authed(
                reqwest::Method::POST,
                &format!("/v1/clinics/{clinic}/queue/tickets"),
                &admin,
            )
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = app
        .authed(reqwest::Method::GET, "/metrics", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(text.contains(
        r#"careq_http_requests_total{route="/v1/status-codes/{code}",method="GET",status="200"} 1"#
    ));
    assert!(text.contains(
        r#"careq_http_requests_total{route="/v1/status-codes/{code}",method="GET",status="404"} 1"#
    ));
    // The latency histogram keeps route, method and status as labels too.
    assert!(text.contains(
        r#"careq_http_request_duration_seconds_count{route="/v1/status-codes/{code}",method="GET",status="404"} 1"#
    ));
    assert!(text.contains("# TYPE careq_http_request_duration_seconds histogram"));
    // Gauges describe the moment of the scrape: this request is in flight, the clinic has two
    // waiting tickets, nothing waits for the writer.
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("careq_http_requests_in_flight ") >= 1.0);
    assert_eq!(
        value(&format!(
            "careq_queue_waiting_tickets{{clinic=\"{clinic}\"}} "
        )),
        2.0
    );
    assert_eq!(value("careq_storage_write_queue_depth "), 0.0);
    assert_eq!(value("careq_websockets_open "), 0.0);
    assert_eq!(
        value(&format!(
            "careq_build_info{{version=\"{}\"}} ",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(value("process_resident_memory_bytes ") > 1e6);
    assert!(value("process_open_fds ") > 0.0);
    assert!(value("process_start_time_seconds ") > 1.7e9);
    assert!(
        !text.contains("/v1/status-codes/999"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn openapi_is_3_1_and_lists_every_status_an_operation_returns() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("etag").is_some());
    let spec: serde_json::Value = res.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let op = &spec["paths"]["/v1/status-codes/{code}"]["get"];
    for code in ["200", "304", "400", "404", "406", "500", "503"] {
        assert!(op["responses"].get(code).is_some(), "missing {code}");
    }
    assert!(op["responses"]["404"]["content"]
        .get("application/problem+json")
        .is_some());
}

#[tokio::test]
async fn the_docs_page_is_a_reference_ui_served_from_the_binary_with_a_strict_csp() {
    let app = spawn_app().await;
    let res = app.get("/docs").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(
        !csp.contains("unsafe-eval") && csp.contains("font-src 'none'"),
        "{csp}"
    );
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    assert!(html.contains(r#"<rapi-doc spec-url="/openapi.json" load-fonts="false""#));
    let bundle = "/docs/rapidoc-9.3.8.min.js";
    assert!(html.contains(bundle));
    // The vendored bundle: its own content type, a year's cache (its path names its version)
    // and a strong ETag that answers 304.
    let js = app.get(bundle).await;
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = js.headers()["etag"].to_str().unwrap().to_string();
    assert!(js.text().await.unwrap().contains("rapi-doc"));
    let again = app
        .client
        .get(app.url(bundle))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.headers().get("content-type").is_none());
}

#[tokio::test]
async fn the_specs_request_examples_are_accepted_by_the_server_they_describe() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Examples").await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let example = |method: &str, path: &str, media: &str| -> Value {
        spec["paths"][path][method]["requestBody"]["content"][media]["examples"]["typical"]["value"]
            .clone()
    };
    // The create example, as the docs page sends it, with the id of a clinic that exists.
    let mut body = example("post", "/v1/patients", "application/json");
    body["clinic_id"] = json!(clinic);
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["given_name"], body["given_name"]);
    // The merge-patch example applies to it as it stands.
    let patch = example("patch", "/v1/patients/{id}", "application/merge-patch+json");
    let res = app
        .authed(
            Method::PATCH,
            &format!("/v1/patients/{}", created["id"].as_str().unwrap()),
            &admin,
        )
        .header("content-type", "application/merge-patch+json")
        .header("if-match", etag)
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["phone"], "+436647654321");
    assert!(patched["email"].is_null(), "null removed the email");
    // A merge-patch schema lists each member with its type; no bare object.
    let schema = &spec["components"]["schemas"]["PatientPatch"];
    assert_eq!(schema["additionalProperties"], false);
    // An optional member admits its own shape or "" (not given, as a blank form field sends).
    let email = &schema["properties"]["email"]["anyOf"];
    assert!(email[0]["type"]
        .as_array()
        .unwrap()
        .contains(&json!("null")));
    assert_eq!(email[1], json!({"type": "string", "maxLength": 0}));
}

/// Runs only as the child of the next test, with `CAREQ_*` variables in its environment.
#[test]
#[ignore = "run by the_test_configuration_ignores_the_shells_careq_variables"]
fn defaults_in_a_child_with_careq_variables_set() {
    let c = careq::config::Config::default();
    assert_eq!(c.db_max_bytes, None);
    assert_eq!(c.log, "info");
    assert_eq!(c.database_url, "sqlite://careq.db");
}

/// A developer's exported `CAREQ_*` must not change what the suite tests: the defaults the
/// tests start from are the attributes', whatever the shell holds. (`careq serve` itself still
/// reads the environment and flags: `start_binary` sets `CAREQ_DATABASE_URL` and `--listen`.)
#[test]
fn the_test_configuration_ignores_the_shells_careq_variables() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "ops::defaults_in_a_child_with_careq_variables_set",
        ])
        .env("CAREQ_DB_MAX_BYTES", "1")
        .env("CAREQ_LOG", "trace")
        .env("CAREQ_DATABASE_URL", "sqlite:///elsewhere.db")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}
