//! FHIR Patient search: keyset paging, total, absolute next links, each parameter, strict and lenient handling.
use reqwest::Method;
use serde_json::json;

use super::{amy, create, fhir, world};
use crate::helpers::spawn_app;

#[tokio::test]
async fn patient_search_pages_by_keyset_with_total_and_absolute_next_links() {
    let app = spawn_app().await;
    let w = world(&app).await;
    for (i, given) in ["Ana", "Bea", "Cai"].iter().enumerate() {
        let mut p = amy("Núñez", given, Some(&format!("N-{i}")));
        p["birthDate"] = json!(format!("1990-01-0{}", i + 1));
        assert_eq!(create(&app, &w.nurse, &p).await.status, 201);
    }
    create(&app, &w.nurse, &amy("Pond", "Amy", Some("P-1"))).await;
    let first = fhir(
        &app,
        Method::GET,
        "/Patient?name=NUNEZ&_count=2",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["type"], "searchset");
    assert_eq!(first.body["total"], 3);
    assert_eq!(first.body["entry"].as_array().unwrap().len(), 2);
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next.starts_with(&app.url("/fhir/r4/Patient?")), "{next}");
    let second = fhir(&app, Method::GET, &next, Some(&w.nurse), None, &[]).await;
    assert_eq!(second.body["entry"].as_array().unwrap().len(), 1);
    assert_eq!(
        second.body["entry"][0]["resource"]["name"][0]["given"][0],
        "Cai"
    );
    assert!(second.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["relation"] != "next"));

    let count = |path: &'static str| {
        let app = &app;
        let token = w.nurse.clone();
        async move {
            let a = fhir(app, Method::GET, path, Some(&token), None, &[]).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            a.body["total"].as_i64().unwrap()
        }
    };
    assert_eq!(count("/Patient?family=nun").await, 3);
    assert_eq!(count("/Patient?given=be").await, 1);
    assert_eq!(count("/Patient?family=nun&given=ca").await, 1);
    assert_eq!(count("/Patient?birthdate=1990-01-02").await, 1);
    assert_eq!(count("/Patient?birthdate=eq1990-01-02").await, 1);
    assert_eq!(count("/Patient?identifier=urn:careq:mrn|N-0").await, 1);
    assert_eq!(count("/Patient?identifier=N-1").await, 1);
    assert_eq!(count("/Patient?identifier=urn:other|N-1").await, 0);
    assert_eq!(count("/Patient?phone=%2B43%20664%201234567").await, 4);
    assert_eq!(count("/Patient?telecom=phone|%2B436641234567").await, 4);
    assert_eq!(count("/Patient").await, 4);

    let unknown = fhir(
        &app,
        Method::GET,
        "/Patient?name=pond&colour=red",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    let body = unknown.assert_outcome(400);
    assert!(body.to_string().contains("colour"));
    let lenient = fhir(
        &app,
        Method::GET,
        "/Patient?name=pond&colour=red",
        Some(&w.nurse),
        None,
        &[("prefer", "handling=lenient")],
    )
    .await;
    assert_eq!(lenient.status, 200);
    assert_eq!(lenient.body["total"], 1);
    assert_eq!(
        lenient.body["link"][0]["url"],
        app.url("/fhir/r4/Patient?name=pond")
    );
    let id = lenient.body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = fhir(
        &app,
        Method::GET,
        &format!("/Patient?_id={id}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(by_id.body["total"], 1);
    fhir(
        &app,
        Method::GET,
        "/Patient?_count=0",
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(400);
    fhir(
        &app,
        Method::GET,
        "/Patient?birthdate=gt1990-01-01",
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(400);
}

#[tokio::test]
async fn a_patient_search_is_one_access_log_entry_naming_every_patient_it_returned() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let mut created = Vec::new();
    for given in ["Ana", "Bea", "Cai", "Dov"] {
        let a = create(&app, &w.nurse, &amy("Lister", given, None)).await;
        assert_eq!(a.status, 201);
        created.push(super::native(a.body["id"].as_str().unwrap()));
    }
    created.sort();
    let found = fhir(
        &app,
        Method::GET,
        "/Patient?family=lister",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["total"], 4);
    let request = found.header("x-request-id").to_string();

    let log: serde_json::Value = app
        .authed(Method::GET, "/v1/access-log?limit=200", &w.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries: Vec<&serde_json::Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request_id"] == request.as_str())
        .collect();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["action"], "search");
    assert_eq!(entries[0]["resource_id"], "several");
    assert_eq!(entries[0]["patients"], json!(created));
    for p in &created {
        let own: serde_json::Value = app
            .authed(
                Method::GET,
                &format!("/v1/patients/{p}/access-log"),
                &w.admin,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let search: Vec<&serde_json::Value> = own["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["request_id"] == request.as_str())
            .collect();
        assert_eq!(search.len(), 1, "{p}: {own}");
        assert_eq!(search[0]["action"], "search");
        assert_eq!(search[0]["resource_id"], p.as_str());
        assert_eq!(search[0]["patient_id"], p.as_str());
    }
}
