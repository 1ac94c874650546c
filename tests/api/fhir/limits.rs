//! FHIR writes under concurrency and a client reset, and the rate limit.
use super::{amy, create, fhir, world, FHIR_JSON};
use crate::helpers::{spawn_app, spawn_app_with};
use reqwest::Method;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn concurrent_fhir_creates_and_a_reset_client_leave_the_server_reading_and_writing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url("/fhir/r4/Patient");
        let token = w.nurse.clone();
        // Half ask for the same MRN conditionally: exactly one of them may create it.
        let (mrn, cond) = if i % 2 == 0 {
            ("SAME".to_string(), Some("identifier=SAME"))
        } else {
            (format!("C-{i}"), None)
        };
        tasks.push(tokio::spawn(async move {
            let mut req = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", FHIR_JSON)
                .json(&amy(&format!("Crowd{i}"), "Ann", Some(&mrn)));
            if let Some(c) = cond {
                req = req.header("if-none-exist", c);
            }
            req.send().await.unwrap().status().as_u16()
        }));
    }
    // A client that sends half a create and resets the connection.
    let mut s = app.connect().await;
    let body = serde_json::to_vec(&amy("Reset", "R", None)).unwrap();
    let head = format!(
        "POST /fhir/r4/Patient HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: {FHIR_JSON}\r\ncontent-length: {}\r\n\r\n",
        w.nurse,
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..body.len() / 2]).await.unwrap();
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(std::time::Duration::ZERO));
    drop(s);
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(created, 7, "{statuses:?}");
    let same = fhir(
        &app,
        Method::GET,
        "/Patient?identifier=SAME",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(same.body["total"], 1);
    let reset = fhir(
        &app,
        Method::GET,
        "/Patient?family=reset",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(reset.body["total"], 0);
    let after = create(&app, &w.nurse, &amy("After", "A", None)).await;
    assert_eq!(after.status, 201);
    app.assert_no_transaction_left_open().await;
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_as_an_outcome_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    })
    .await;
    let token = app.admin_token().await;
    for _ in 0..3 {
        let ok = fhir(&app, Method::GET, "/Patient", Some(&token), None, &[]).await;
        assert_eq!(ok.status, 200);
    }
    let limited = fhir(&app, Method::GET, "/Patient", Some(&token), None, &[]).await;
    limited.assert_outcome(429);
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(limited.header("ratelimit-remaining"), "0");
    assert_eq!(limited.body["issue"][0]["code"], "throttled");
}
