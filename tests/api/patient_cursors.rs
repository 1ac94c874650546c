//! Patient search cursors are sealed: they name a position in name order without revealing the
//! names, survive a restart (the secret lives in the database), and are authenticated: only a
//! cursor careq made for the list opens; any other is 400 at `query/cursor`.
use reqwest::Method;
use serde_json::Value;

use careq::http::cursor_seal::{CursorSeal, Scope};

use crate::helpers::{assert_problem, spawn_app};
use crate::patients::{admin_and_clinic, create_patient, ids_of, new_patient_json};

/// Long names, so that finding their hex inside a random-looking cursor cannot be chance.
const NAMES: [(&str, &str); 5] = [
    ("Wilhelmina", "Abernathy"),
    ("Bartholomew", "Featherstone"),
    ("Genoveva", "Oppenheimer"),
    ("Maximilian", "Quackenbush"),
    ("Evangeline", "Wolfeschlegel"),
];

#[tokio::test]
async fn search_cursors_and_links_hide_the_names_on_the_page_and_paging_stays_exact() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut created = Vec::new();
    for (given, family) in NAMES {
        let (id, _) = create_patient(&app, &admin, &new_patient_json(&clinic, given, family)).await;
        created.push(id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2".to_string())];
        query.extend(cursor.clone().map(|c| ("cursor", c)));
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
            .map(|v| v.to_str().unwrap().to_lowercase());
        let page: Value = res.json().await.unwrap();
        seen.extend(ids_of(&page));
        let Some(next) = page["next_cursor"].as_str().map(str::to_string) else {
            break;
        };
        let link = link.expect("a Link header while there is more");
        for item in page["items"].as_array().unwrap() {
            for field in ["given_name", "family_name"] {
                let name = item[field].as_str().unwrap().to_lowercase();
                for shown in [&next.to_lowercase(), &link] {
                    assert!(!shown.contains(&name), "{name} in {shown}");
                    assert!(
                        !shown.contains(&hex::encode(&name)),
                        "hex of {name} in {shown}"
                    );
                }
            }
        }
        cursor = Some(next);
    }
    // Name order: the family names above are alphabetical.
    assert_eq!(seen, created, "every patient once, in order");
}

#[tokio::test]
async fn a_forged_short_or_old_style_cursor_is_400_at_query_cursor() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_clinic(&app).await;
    for bad in [
        // Well-formed by the spec's pattern, but sealed by nobody.
        format!("a{}", "7f".repeat(40)),
        // The form of earlier versions' sealed cursors.
        format!("s{}", "7f".repeat(40)),
        format!("s{}", "7f".repeat(15)),
        format!("c{}", hex::encode("smith\u{1f}anna\u{1f}pat_x")),
    ] {
        let res = app
            .authed(Method::GET, "/v1/patients", &admin)
            .query(&[("cursor", bad.clone())])
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 400).await;
        assert_eq!(problem["errors"][0]["pointer"], "query/cursor", "{bad}");
    }
}

#[tokio::test]
async fn the_cursor_secret_is_made_once_and_kept_in_the_database() {
    let app = spawn_app().await;
    let again = CursorSeal::load(&app.state.db).await.unwrap();
    let key = "abernathy\u{1f}wilhelmina\u{1f}pat_0";
    assert_eq!(
        again.seal(Scope::Patients, key),
        app.state.cursor_seal.seal(Scope::Patients, key)
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE key LIKE '%cursor%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}
