//! Patient search as people type: name words in any order, punctuation ignored, phones as
//! typed, email, the three orders with exact keyset paging, and unknown parameters refused.
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::{assert_problem, spawn_app, TestApp};

struct Desk {
    admin: String,
    clinic: String,
}

async fn desk(app: &TestApp) -> Desk {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Search").await;
    Desk { admin, clinic }
}

async fn create(app: &TestApp, d: &Desk, body: Value) -> String {
    let mut body = body;
    body["clinic_id"] = json!(d.clinic);
    let res = app
        .authed(Method::POST, "/v1/patients", &d.admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{body}");
    let p: Value = res.json().await.unwrap();
    p["id"].as_str().unwrap().to_string()
}

fn person(given: &str, family: &str, dob: &str) -> Value {
    json!({"given_name": given, "family_name": family, "date_of_birth": dob, "sex": "unknown"})
}

/// The family names a search answers, in its order.
async fn families(app: &TestApp, d: &Desk, query: &str) -> Vec<String> {
    let res = app
        .authed(Method::GET, &format!("/v1/patients?{query}"), &d.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["family_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_word_is_a_prefix_of_the_given_or_family_name_in_any_order() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    create(&app, &d, person("John", "Smith", "1970-01-01")).await;
    create(&app, &d, person("Joan", "Smythe", "1971-01-01")).await;
    create(&app, &d, person("Sean", "O'Brien", "1972-01-01")).await;
    create(&app, &d, person("Anna", "van der Berg", "1973-01-01")).await;
    create(&app, &d, person("Jana", "Smith-Jones", "1974-01-01")).await;
    let cases: &[(&str, &[&str])] = &[
        ("q=john%20smith", &["Smith"]),
        ("q=smith,%20john", &["Smith"]),
        ("q=smith,john", &["Smith"]),
        ("q=JOHN+SMITH", &["Smith"]),
        ("q=jo%20sm", &["Smith", "Smythe"]),
        ("q=sm", &["Smith", "Smith-Jones", "Smythe"]),
        ("q=obrien", &["O'Brien"]),
        ("q=o'brien", &["O'Brien"]),
        ("q=O%E2%80%99Brien", &["O'Brien"]),
        ("q=o%20brien", &["O'Brien"]),
        ("q=van%20der%20berg", &["van der Berg"]),
        ("q=anna%20vand", &["van der Berg"]),
        ("q=smithjones", &["Smith-Jones"]),
        ("q=smith-jones%20jana", &["Smith-Jones"]),
        ("q=john%20smythe", &[]),
        ("q=jones", &[]),
    ];
    for (query, want) in cases {
        assert_eq!(&families(&app, &d, query).await, want, "{query}");
    }
    // Only punctuation is no name filter at all: the whole list.
    assert_eq!(families(&app, &d, "q=%27,").await.len(), 5);
}

#[tokio::test]
async fn a_patch_and_a_put_keep_the_search_keys_up_to_date() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let id = create(&app, &d, person("Mary", "Oconnor", "1980-01-01")).await;
    let res = app
        .authed(Method::PATCH, &format!("/v1/patients/{id}"), &d.admin)
        .header("Content-Type", "application/merge-patch+json")
        .header("If-Match", "\"1\"")
        .body(r#"{"family_name": "O'Neil"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(families(&app, &d, "q=oneil%20mary").await, ["O'Neil"]);
    assert!(families(&app, &d, "q=oconnor").await.is_empty());
    let body = person("Mary-Kate", "D'Arcy", "1980-01-01");
    let res = app
        .authed(Method::PUT, &format!("/v1/patients/{id}"), &d.admin)
        .header("If-Match", "\"2\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(families(&app, &d, "q=marykate%20darcy").await, ["D'Arcy"]);
    assert!(families(&app, &d, "q=oneil").await.is_empty());
}

#[tokio::test]
async fn a_phone_typed_with_an_unencoded_plus_finds_the_patient() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let mut p = person("Ida", "Phone", "1990-01-01");
    p["phone"] = json!("+43 664 1234567");
    let id = create(&app, &d, p).await;
    // `+` unencoded in a query string decodes as a space.
    for query in [
        "phone=+43%20664%201234567",
        "phone=+43+664+1234567",
        "phone=%2B436641234567",
        "phone=0043%20664%201234567",
    ] {
        assert_eq!(families(&app, &d, query).await, ["Phone"], "{query}");
    }
    let res = app
        .authed(
            Method::GET,
            "/v1/patients/lookup?phone=+43+664+1234567",
            &d.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(res.headers()["location"], format!("/v1/patients/{id}"));
}

#[tokio::test]
async fn the_email_filter_is_exact_and_ignores_case() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let mut p = person("Eve", "Mail", "1990-01-01");
    p["email"] = json!("Eve.Mail@Example.org");
    create(&app, &d, p).await;
    create(&app, &d, person("Eva", "Other", "1990-01-01")).await;
    assert_eq!(
        families(&app, &d, "email=eve.mail%40example.org").await,
        ["Mail"]
    );
    assert_eq!(
        families(&app, &d, "email=EVE.MAIL@EXAMPLE.ORG").await,
        ["Mail"]
    );
    assert!(families(&app, &d, "email=eve.mail@example.or")
        .await
        .is_empty());
    assert!(families(&app, &d, "email=eve").await.is_empty());
}

/// Every page of a search with `limit`, following `next_cursor`, as (id, patient) pairs.
async fn all_pages(app: &TestApp, d: &Desk, query: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/patients?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let res = app
            .authed(Method::GET, &path, &d.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let page: Value = res.json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
        assert!(out.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn each_sort_pages_exactly_with_ties_broken_by_id() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    // Ties on purpose: same names (allowed as duplicates), same dates of birth.
    for (given, family, dob) in [
        ("Zoe", "Adams", "1990-05-05"),
        ("Al", "Brown", "1980-01-01"),
        ("Al", "Brown", "1985-01-01"),
        ("Bo", "O'Hara", "1990-05-05"),
        ("Cy", "Ohara", "1990-05-05"),
        ("Di", "Young", "1970-12-31"),
        ("Ed", "Young", "1980-01-01"),
    ] {
        let mut p = person(given, family, dob);
        p["allow_duplicate"] = json!(true);
        create(&app, &d, p).await;
    }
    let key = |p: &Value, sort: &str| -> (String, String) {
        let id = p["id"].as_str().unwrap().to_string();
        let fold = |s: &str| -> String {
            s.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect()
        };
        let first = match sort {
            "name" => format!(
                "{}\u{1f}{}",
                fold(p["family_name"].as_str().unwrap()),
                fold(p["given_name"].as_str().unwrap())
            ),
            "created" => p["created_at"].as_str().unwrap().to_string(),
            _ => p["date_of_birth"].as_str().unwrap().to_string(),
        };
        (first, id)
    };
    for sort in ["name", "created", "birth_date"] {
        let whole = all_pages(&app, &d, &format!("sort={sort}"), 200).await;
        assert_eq!(whole.len(), 7);
        let keys: Vec<_> = whole.iter().map(|p| key(p, sort)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "sort={sort} is in its order, ties by id");
        for limit in [1, 2, 3] {
            let paged = all_pages(&app, &d, &format!("sort={sort}"), limit).await;
            assert_eq!(paged, whole, "sort={sort} limit={limit}");
        }
        // With a name filter too (the words run together are a prefix of both).
        let filtered = all_pages(&app, &d, &format!("sort={sort}&q=o%20hara"), 1).await;
        assert_eq!(filtered.len(), 2, "O'Hara and Ohara, sort={sort}");
        let filtered = all_pages(&app, &d, &format!("sort={sort}&q=ohara"), 1).await;
        assert_eq!(filtered.len(), 2, "O'Hara and Ohara, sort={sort}");
    }
    // The default order is by name.
    assert_eq!(
        all_pages(&app, &d, "q=", 200).await,
        all_pages(&app, &d, "sort=name", 200).await
    );
}

#[tokio::test]
async fn a_cursor_made_for_one_sort_is_refused_under_another_with_400() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    create(&app, &d, person("A", "One", "1990-01-01")).await;
    create(&app, &d, person("B", "Two", "1991-01-01")).await;
    let res = app
        .authed(Method::GET, "/v1/patients?sort=created&limit=1", &d.admin)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    for other in ["name", "birth_date"] {
        let res = app
            .authed(
                Method::GET,
                &format!("/v1/patients?sort={other}&limit=1&cursor={cursor}"),
                &d.admin,
            )
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 400).await;
        assert_eq!(problem["errors"][0]["pointer"], "query/cursor");
        assert!(problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sort=created"));
    }
    // And a name cursor under another order.
    let res = app
        .authed(Method::GET, "/v1/patients?limit=1", &d.admin)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/patients?sort=birth_date&limit=1&cursor={cursor}"),
            &d.admin,
        )
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("sort=name"));
    let res = app
        .authed(Method::GET, "/v1/patients?sort=age", &d.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 400).await["errors"][0]["pointer"],
        "query/sort"
    );
}

#[tokio::test]
async fn unknown_query_parameters_answer_400_naming_them_on_every_endpoint_with_a_query() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    create(&app, &d, person("Sam", "Smith", "1990-01-01")).await;
    let cases: &[(&str, &[&str])] = &[
        ("/v1/patients?family_name=Smith", &["family_name"]),
        ("/v1/patients?q=smith&Q=x&limt=2", &["Q", "limt"]),
        ("/v1/patients?x=1&q=smith&x=2", &["x"]),
        ("/v1/patients/lookup?phone=%2B436641234567&x=1", &["x"]),
        ("/v1/appointments?day=2030-01-01&clinic=1", &["clinic"]),
        ("/v1/users?page=2", &["page"]),
        ("/v1/clinics?name=x", &["name"]),
        ("/v1/access-log?who=me", &["who"]),
        (
            &format!("/v1/clinics/{}/queue/report?when=2030-01-01", d.clinic),
            &["when"],
        ),
        ("/v1/status-codes?klass=4xx", &["klass"]),
    ];
    for (path, names) in cases {
        let res = app
            .authed(Method::GET, path, &d.admin)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 400).await;
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        let want: Vec<String> = names.iter().map(|n| format!("query/{n}")).collect();
        assert_eq!(pointers, want, "{path}");
        for n in *names {
            assert!(problem["detail"].as_str().unwrap().contains(n), "{path}");
        }
    }
    // The parameters each endpoint does take still work.
    assert_eq!(families(&app, &d, "q=smith&limit=5").await, ["Smith"]);
    let res = app.get("/v1/status-codes?class=4xx&limit=2").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn names_stored_before_search_keys_existed_get_them_when_careq_starts() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let id = create(&app, &d, person("Liam", "O'Reilly", "1990-01-01")).await;
    // A row as an earlier version stored it: no keys, the old sort key.
    let mut w = app.writable().await;
    sqlx::query(
        "UPDATE patients SET given_key = NULL, family_key = NULL, sort_key = $1 WHERE id = $2",
    )
    .bind(format!("o'reilly\u{1f}liam\u{1f}{id}"))
    .bind(&id)
    .execute(&mut w)
    .await
    .unwrap();
    drop(w);
    assert!(families(&app, &d, "q=oreilly").await.is_empty());
    // Opening the database again (a restart) gives the row its keys before serving.
    let store =
        careq::store::Store::open(careq::store::Options::cli(&app.state.config.database_url))
            .await
            .unwrap();
    careq::startup::backfill(&store).await.unwrap();
    store.close().await;
    assert_eq!(families(&app, &d, "q=oreilly%20li").await, ["O'Reilly"]);
    assert_eq!(families(&app, &d, "q=o'rei").await, ["O'Reilly"]);
}

/// Sends a write and resets the connection without reading the answer.
async fn vanish(app: &TestApp, token: &str, head: &str, body: &str) {
    let mut s = app.connect().await;
    let head = format!(
        "{head} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 10)).await;
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

#[tokio::test]
async fn concurrent_creates_with_resetting_clients_are_all_findable_by_their_words() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let mut tasks = Vec::new();
    for n in 0..24u32 {
        let (client, url, token, clinic) = (
            app.client.clone(),
            app.url("/v1/patients"),
            d.admin.clone(),
            d.clinic.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"clinic_id": clinic, "given_name": format!("Kim{n}"),
                "family_name": format!("O'Day-{n}"), "date_of_birth": "1990-01-01", "sex": "unknown"});
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }));
    }
    for n in 0..8u32 {
        let body = json!({"clinic_id": d.clinic, "given_name": format!("Gone{n}"),
            "family_name": "Vanish", "date_of_birth": "1990-01-01", "sex": "unknown"})
        .to_string();
        vanish(&app, &d.admin, "POST /v1/patients", &body).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    for n in [0u32, 7, 23] {
        assert_eq!(
            families(&app, &d, &format!("q=oday{n}%20kim{n}")).await,
            [format!("O'Day-{n}")]
        );
    }
    let all = all_pages(&app, &d, "q=oday", 50).await;
    assert_eq!(all.len(), 24);
    // A vanished create stored all of itself or nothing: whatever it stored is findable.
    let vanished = families(&app, &d, "q=vanish").await.len();
    assert!(vanished <= 8);
    // The server still writes and reads.
    create(&app, &d, person("After", "Reset", "1990-01-01")).await;
    assert_eq!(families(&app, &d, "q=reset%20after").await, ["Reset"]);
    app.assert_no_transaction_left_open().await;
}
