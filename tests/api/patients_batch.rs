//! Patients in bulk and under pressure: `POST /v1/patients/batch` (207, 424, 413, 411),
//! `Idempotency-Key` replays, racing writers, and paging through a long list.
use std::collections::HashSet;

use futures_util::future::join_all;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};
use crate::patients::{
    admin_and_clinic, create_patient, header, ids_of, new_patient_json, path_of, post_patient,
    stored_patients,
};

async fn post_batch(app: &TestApp, token: &str, atomic: bool, items: &[Value]) -> Response {
    app.authed(Method::POST, "/v1/patients/batch", token)
        .json(&json!({"atomic": atomic, "items": items}))
        .send()
        .await
        .unwrap()
}

/// Insists on a 207 and returns the per-item results.
async fn results_of(res: Response, items: usize) -> Vec<Value> {
    assert_eq!(res.status(), 207);
    assert!(header(&res, "content-type").starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    let results = body["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), items, "one result per item: {body}");
    results
}

/// A failed item: its status, and a problem document of that status.
fn assert_item_problem(result: &Value, status: u16) -> Value {
    assert_eq!(result["status"], status, "{result}");
    let problem = &result["problem"];
    assert_eq!(problem["status"], status, "{result}");
    assert_eq!(problem["type"], format!("/v1/status-codes/{status}"));
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(problem["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(result.get("location").is_none_or(Value::is_null));
    problem.clone()
}

fn numbered(clinic: &str, i: usize) -> Value {
    new_patient_json(clinic, &format!("Person{i:03}"), "Batch")
}

#[tokio::test]
async fn a_batch_answers_207_with_one_result_per_item_in_order() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut first = new_patient_json(&clinic, "Ida", "Roth");
    first["mrn"] = json!("B-1");
    let mut bad = new_patient_json(&clinic, "Eva", "Klein");
    bad["sex"] = json!("robot");
    let mut same_mrn = new_patient_json(&clinic, "Olga", "Fink");
    same_mrn["mrn"] = json!("B-1");
    let last = new_patient_json(&clinic, "Max", "Brunner");
    let items = [first, bad, same_mrn, last];

    let results = results_of(post_batch(&app, &admin, false, &items).await, 4).await;
    assert_eq!(results[0]["status"], 201);
    let problem = assert_item_problem(&results[1], 422);
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.iter().any(|p| p.ends_with("/sex")), "{problem}");
    let problem = assert_item_problem(&results[2], 409);
    assert_eq!(problem["related"], results[0]["location"]);
    assert_eq!(results[3]["status"], 201);

    for (result, given) in [(&results[0], "Ida"), (&results[3], "Max")] {
        let location = result["location"].as_str().unwrap();
        assert!(location.starts_with("/v1/patients/"));
        let res = app
            .authed(Method::GET, location, &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["given_name"], given);
    }
    assert_eq!(stored_patients(&app).await, 2);
}

#[tokio::test]
async fn an_atomic_batch_with_a_failing_item_stores_nothing_and_marks_the_rest_424() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut bad = new_patient_json(&clinic, "Eva", "Klein");
    bad["date_of_birth"] = json!("2999-01-01");
    let items = [numbered(&clinic, 1), numbered(&clinic, 2), bad];
    let results = results_of(post_batch(&app, &admin, true, &items).await, 3).await;
    assert_eq!(results[0]["status"], 424, "{results:?}");
    assert_eq!(results[1]["status"], 424);
    assert!(results[..2]
        .iter()
        .all(|r| r.get("location").is_none_or(Value::is_null)));
    assert_item_problem(&results[2], 422);
    assert_eq!(stored_patients(&app).await, 0);

    // A clash with a stored patient fails the item 409, and again nothing else is kept.
    let mut existing = new_patient_json(&clinic, "Ida", "Roth");
    existing["mrn"] = json!("B-9");
    let (existing_id, _) = create_patient(&app, &admin, &existing).await;
    let mut clash = new_patient_json(&clinic, "Olga", "Fink");
    clash["mrn"] = json!("B-9");
    let items = [clash, numbered(&clinic, 3)];
    let results = results_of(post_batch(&app, &admin, true, &items).await, 2).await;
    let problem = assert_item_problem(&results[0], 409);
    assert_eq!(problem["related"], path_of(&existing_id));
    assert_eq!(results[1]["status"], 424);
    assert_eq!(stored_patients(&app).await, 1);

    // Fixed, the same batch goes through whole.
    let items = [numbered(&clinic, 4), numbered(&clinic, 5)];
    let results = results_of(post_batch(&app, &admin, true, &items).await, 2).await;
    assert!(results.iter().all(|r| r["status"] == 201), "{results:?}");
    assert_eq!(stored_patients(&app).await, 3);
}

#[tokio::test]
async fn a_batch_over_the_item_limit_is_413_and_stores_nothing() {
    let app = spawn_app_with(|c| c.batch_max_items = 3).await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let items: Vec<Value> = (0..4).map(|i| numbered(&clinic, i)).collect();
    assert_problem(post_batch(&app, &admin, false, &items).await, 413).await;
    assert_eq!(stored_patients(&app).await, 0);
    results_of(post_batch(&app, &admin, false, &items[..3]).await, 3).await;
    assert_eq!(stored_patients(&app).await, 3);
}

#[tokio::test]
async fn a_chunked_batch_without_content_length_is_411() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let body = json!({"atomic": false, "items": [numbered(&clinic, 1)]}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(head.as_bytes().to_vec()), Ok(tail.as_bytes().to_vec())];
    let res = app
        .authed(Method::POST, "/v1/patients/batch", &admin)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_problem(res, 411).await;
    assert_eq!(stored_patients(&app).await, 0);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_creates_no_second_patient() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let body = new_patient_json(&clinic, "Ida", "Roth");
    let post = |token: &str, body: &Value| {
        app.authed(Method::POST, "/v1/patients", token)
            .header("idempotency-key", "register-ida-1")
            .json(body)
            .send()
    };

    let first = post(&admin, &body).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = header(&first, "location");
    let etag = header(&first, "etag");

    let again = post(&admin, &body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "location"), location);
    assert_eq!(header(&again, "etag"), etag);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(stored_patients(&app).await, 1);

    let other_body = new_patient_json(&clinic, "Eva", "Klein");
    assert_problem(post(&admin, &other_body).await.unwrap(), 422).await;
    assert_eq!(stored_patients(&app).await, 1);

    // Keys belong to their caller: someone else's identical key is a fresh request.
    let theirs = post(&doc, &other_body).await.unwrap();
    assert_eq!(theirs.status(), 201);
    assert!(theirs.headers().get("idempotent-replayed").is_none());
    assert_ne!(header(&theirs, "location"), location);
    assert_eq!(stored_patients(&app).await, 2);
}

#[tokio::test]
async fn an_idempotency_key_on_a_batch_replays_its_results() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let body = json!({"atomic": false, "items": [numbered(&clinic, 1), numbered(&clinic, 2)]});
    let post = |body: &Value| {
        app.authed(Method::POST, "/v1/patients/batch", &admin)
            .header("idempotency-key", "import-2024-06")
            .json(body)
            .send()
    };
    let first = post(&body).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = results_of(first, 2).await;
    let again = post(&body).await.unwrap();
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(results_of(again, 2).await, first);
    assert_eq!(stored_patients(&app).await, 2);

    let changed = json!({"atomic": false, "items": [numbered(&clinic, 3)]});
    assert_problem(post(&changed).await.unwrap(), 422).await;
    assert_eq!(stored_patients(&app).await, 2);
}

#[tokio::test]
async fn two_patches_racing_with_the_same_if_match_give_one_200_and_one_412() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (id, etag) = create_patient(&app, &admin, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let patch = |address: &str| {
        app.authed(Method::PATCH, &path_of(&id), &admin)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", &etag)
            .body(json!({ "address": address }).to_string())
            .send()
    };
    let (a, b) = tokio::join!(patch("Hauptplatz 1"), patch("Ringstraße 2"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412]);
    let (winner, loser) = if a.status() == 200 { (a, b) } else { (b, a) };
    assert_eq!(header(&winner, "etag"), "\"2\"");
    assert_eq!(header(&loser, "etag"), "\"2\"");
    let winning_address = winner.json::<Value>().await.unwrap()["address"].clone();
    assert_problem(loser, 412).await;

    let res = app
        .authed(Method::GET, &path_of(&id), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "etag"), "\"2\"");
    assert_eq!(
        res.json::<Value>().await.unwrap()["address"],
        winning_address
    );
}

#[tokio::test]
async fn ten_creates_racing_for_one_mrn_give_one_201_and_nine_409() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let bodies: Vec<Value> = (0..10)
        .map(|i| {
            let mut b = numbered(&clinic, i);
            b["mrn"] = json!("RACE-1");
            b
        })
        .collect();
    let responses = join_all(bodies.iter().map(|b| post_patient(&app, &admin, b))).await;
    let (created, refused): (Vec<Response>, Vec<Response>) =
        responses.into_iter().partition(|r| r.status() == 201);
    assert_eq!(created.len(), 1, "exactly one wins");
    let winner = header(&created[0], "location");
    assert_eq!(refused.len(), 9);
    for res in refused {
        let problem = assert_problem(res, 409).await;
        assert_eq!(problem["related"], winner.as_str());
    }
    assert_eq!(stored_patients(&app).await, 1);
}

#[tokio::test]
async fn paging_through_120_patients_seven_at_a_time_sees_each_exactly_once() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let items: Vec<Value> = (0..120).map(|i| numbered(&clinic, i)).collect();
    let results = results_of(post_batch(&app, &admin, false, &items).await, 120).await;
    let created: HashSet<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 201, "{r}");
            let location = r["location"].as_str().unwrap();
            location.strip_prefix("/v1/patients/").unwrap().to_string()
        })
        .collect();
    assert_eq!(created.len(), 120);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "7".to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let res = app
            .authed(Method::GET, "/v1/patients", &admin)
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let page: Value = res.json().await.unwrap();
        let ids = ids_of(&page);
        pages += 1;
        assert!(pages <= 18, "paging does not end");
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(ids.len(), 7);
                let link = link.expect("a Link header while there is more");
                assert!(link.contains("rel=\"next\""), "{link}");
                assert!(link.contains(next), "{link} names the cursor");
                cursor = Some(next.to_string());
                seen.extend(ids);
            }
            None => {
                assert!(link.is_none_or(|l| !l.contains("rel=\"next\"")));
                seen.extend(ids);
                break;
            }
        }
    }
    assert_eq!(pages, 18, "17 full pages and one of 1");
    assert_eq!(seen.len(), 120, "no patient twice");
    let seen: HashSet<String> = seen.into_iter().collect();
    assert_eq!(seen, created, "no gaps");
}
