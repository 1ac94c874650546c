//! The status-code catalogue endpoints.
use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_catalogued_code_is_served_with_a_strong_etag_and_cache_headers() {
    let app = spawn_app().await;
    let res = app.get("/v1/status-codes/451").await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"));
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("public"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], 451);
    assert_eq!(body["name"], "HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS");
    assert_eq!(body["reason"], "Unavailable For Legal Reasons");
    assert_eq!(body["class"], "4xx");
    assert_eq!(body["usage"], "produced");
    assert!(body["usage_detail"]
        .as_str()
        .unwrap()
        .contains("blocked-by"));
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_returns_304_without_a_body() {
    let app = spawn_app().await;
    let first = app.get("/v1/status-codes/404").await;
    let etag = first.headers()["etag"].clone();
    let res = app
        .client
        .get(app.url("/v1/status-codes/404"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"], etag);
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert!(res.headers().get("content-type").is_none());
    assert!(res.headers().get("content-length").is_none());
    assert!(res.bytes().await.unwrap().is_empty());

    let other = app
        .client
        .get(app.url("/v1/status-codes/404"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_number_not_in_the_catalogue_is_404_and_a_non_number_is_400() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/status-codes/418").await, 404).await;
    let body = assert_problem(app.get("/v1/status-codes/teapot").await, 400).await;
    assert_eq!(body["errors"][0]["pointer"], "path/code");
}

#[tokio::test]
async fn the_list_filters_by_class_and_pages_with_a_next_link() {
    let app = spawn_app().await;
    let res = app.get("/v1/status-codes?class=4xx&limit=20").await;
    assert_eq!(res.status(), 200);
    let link = res.headers()["link"].to_str().unwrap().to_string();
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let page: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(next.contains("class=4xx"));
    let res = app.get(&next).await;
    assert!(res.headers().get("link").is_none());
    let page2: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 8);
    assert!(page2["next_cursor"].is_null());
    let all: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|e| e["code"].as_u64().unwrap())
        .collect();
    assert_eq!(all.len(), 28);
    assert!(all.iter().all(|c| (400..500).contains(c)));
    assert!(all.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn the_default_list_holds_every_catalogued_code_over_two_pages() {
    let app = spawn_app().await;
    let page: serde_json::Value = app.get("/v1/status-codes").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: serde_json::Value = app
        .get(&format!("/v1/status-codes?cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        50 + rest["items"].as_array().unwrap().len(),
        careq_status::ALL.len()
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_problems_pointing_at_the_parameter() {
    let app = spawn_app().await;
    for (query, pointer) in [
        ("class=9xx", "query/class"),
        ("limit=0", "query/limit"),
        ("limit=201", "query/limit"),
        ("limit=ten", "query/limit"),
        ("cursor=nonsense", "query/cursor"),
    ] {
        let body = assert_problem(app.get(&format!("/v1/status-codes?{query}")).await, 400).await;
        assert_eq!(body["errors"][0]["pointer"], pointer, "{query}");
    }
}
