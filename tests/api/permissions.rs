//! The permission table over HTTP: every role × every protected operation built so far.
use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, STAFF_PASSWORD};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<(&'static str, String)>,
    /// Expected status for admin, clinician, receptionist.
    expect: [u16; 3],
}

#[tokio::test]
async fn every_role_gets_exactly_the_operations_the_permission_table_allows() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Shared").await;
    let (_, clinician) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let (_, receptionist) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let tokens = [admin.clone(), clinician, receptionist];

    for (i, token) in tokens.iter().enumerate() {
        let (target, _) = app
            .create_staff(&admin, &format!("target{i}"), "receptionist", &[])
            .await;
        let (doomed, _) = app
            .create_staff(&admin, &format!("doomed{i}"), "receptionist", &[])
            .await;
        let cases = [
            Case { name: "list users", method: Method::GET, path: "/v1/users".into(), body: None, expect: [200, 403, 403] },
            Case {
                name: "create user",
                method: Method::POST,
                path: "/v1/users".into(),
                body: Some(("application/json", json!({"username": format!("new{i}"), "password": STAFF_PASSWORD, "role": "clinician"}).to_string())),
                expect: [201, 403, 403],
            },
            Case { name: "read user", method: Method::GET, path: format!("/v1/users/{target}"), body: None, expect: [200, 403, 403] },
            Case {
                name: "update user",
                method: Method::PATCH,
                path: format!("/v1/users/{target}"),
                body: Some(("application/merge-patch+json", r#"{"active":true}"#.into())),
                expect: [200, 403, 403],
            },
            Case { name: "delete user", method: Method::DELETE, path: format!("/v1/users/{doomed}"), body: None, expect: [204, 403, 403] },
            Case {
                name: "create clinic",
                method: Method::POST,
                path: "/v1/clinics".into(),
                body: Some(("application/json", json!({"name": "New", "timezone": "UTC", "ticket_prefix": "N"}).to_string())),
                expect: [201, 403, 403],
            },
            Case {
                name: "update clinic",
                method: Method::PATCH,
                path: format!("/v1/clinics/{clinic}"),
                body: Some(("application/merge-patch+json", r#"{"name":"Shared"}"#.into())),
                expect: [200, 403, 403],
            },
            Case { name: "list clinics", method: Method::GET, path: "/v1/clinics".into(), body: None, expect: [200, 200, 200] },
            Case { name: "read own clinic", method: Method::GET, path: format!("/v1/clinics/{clinic}"), body: None, expect: [200, 200, 200] },
        ];
        for case in cases {
            let mut req = app
                .authed(case.method.clone(), &case.path, token)
                .header("if-match", "*");
            if let Some((ct, body)) = case.body {
                req = req.header("content-type", ct).body(body);
            }
            let res = req.send().await.unwrap();
            let want = case.expect[i];
            if want == 403 {
                let body = assert_problem(res, 403).await;
                assert!(
                    body["detail"].as_str().unwrap().contains("role"),
                    "{}",
                    case.name
                );
            } else {
                assert_eq!(res.status().as_u16(), want, "role #{i}: {}", case.name);
            }
        }
    }
}
