//! An Idempotency-Key whose first request is still in flight answers 409.
use tokio::io::AsyncWriteExt;

use crate::helpers::{assert_problem, read_head, read_to_close, spawn_app};

#[tokio::test]
async fn a_key_whose_first_request_is_still_sending_its_body_gets_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Inflight").await;
    let body = serde_json::json!({
        "clinic_id": clinic, "given_name": "Ida", "family_name": "Slow",
        "date_of_birth": "1970-05-05", "sex": "female"
    })
    .to_string();

    // The first request claims the key, then is slow to send its body.
    let mut first = app.connect().await;
    let head = format!(
        "POST /v1/patients HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {admin}\r\nIdempotency-Key: visit-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut first).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    let second = |b: String| {
        app.client
            .post(app.url("/v1/patients"))
            .bearer_auth(&admin)
            .header("idempotency-key", "visit-1")
            .header("content-type", "application/json")
            .body(b)
            .send()
    };
    let res = second(body.clone()).await.unwrap();
    let problem = assert_problem(res, 409).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("still being processed"));

    first.write_all(body.as_bytes()).await.unwrap();
    let done = read_to_close(&mut first).await;
    assert_eq!(done.status, 201, "{}", done.raw);
    let location = done.header("location").unwrap().to_string();

    let replay = second(body.clone()).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["location"], location.as_str());
    let other = second(body.replace("Ida", "Ada")).await.unwrap();
    assert_problem(other, 422).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM patients")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
