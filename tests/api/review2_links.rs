//! Issue 24, points 13 and 14: every absolute link careq writes starts with its public origin
//! (`CAREQ_PUBLIC_URL`, or the bound address), never with the `Host` a client sent; and patient
//! cursors are sealed with an AEAD, so a changed, cut or foreign cursor is 400.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{json, Value};

use careq::config::PublicUrl;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_pki, TestApp};
use crate::patients::{admin_and_clinic, create_patient, new_patient_json};

const FHIR_JSON: &str = "application/fhir+json";
const EVIL: &str = "evil.example";

/// A client that sends every request for `evil.example` to the app, so `Host` (and, over
/// HTTP/2, `:authority`) names a host careq was never told about. Over TLS, `http1` keeps it
/// to HTTP/1.1; otherwise ALPN picks HTTP/2.
fn evil_client(app: &TestApp, http1: bool) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(EVIL, app.addr)
        .danger_accept_invalid_certs(true);
    let b = if http1 { b.http1_only() } else { b };
    b.build().unwrap()
}

fn fhir_patient(family: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1989-04-01",
    })
}

/// Every `url` of a Bundle's `link` and every entry's `fullUrl`.
fn bundle_urls(bundle: &Value) -> Vec<String> {
    let links = bundle["link"].as_array().cloned().unwrap_or_default();
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    links
        .iter()
        .map(|l| &l["url"])
        .chain(entries.iter().map(|e| &e["fullUrl"]))
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_string())
}

/// What a client sees after asking for the FHIR and native resources that carry links, with
/// `origin` as the URL it sends to: every absolute link, every `Location`, every `Link`, and
/// every body as text.
struct Seen {
    links: Vec<String>,
    texts: Vec<String>,
}

/// A clinic with three patients and a receptionist of it; returns the receptionist's token.
async fn three_patients(app: &TestApp) -> String {
    let (admin, clinic) = admin_and_clinic(app).await;
    for (given, family) in [("Ana", "Abbot"), ("Bea", "Bishop"), ("Cai", "Crane")] {
        create_patient(app, &admin, &new_patient_json(&clinic, given, family)).await;
    }
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    desk
}

async fn look_around(client: &reqwest::Client, origin: &str, token: &str) -> Seen {
    let mut seen = Seen {
        links: Vec::new(),
        texts: Vec::new(),
    };
    let metadata = client
        .get(format!("{origin}/fhir/r4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    let body: Value = metadata.json().await.unwrap();
    seen.links
        .push(body["implementation"]["url"].as_str().unwrap().into());
    seen.texts.push(body.to_string());

    let search = client
        .get(format!("{origin}/fhir/r4/Patient?_count=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    let bundle: Value = search.json().await.unwrap();
    assert!(next_link(&bundle).is_some(), "{bundle}");
    seen.links.extend(bundle_urls(&bundle));
    seen.texts.push(bundle.to_string());

    let appointments = client
        .get(format!("{origin}/fhir/r4/Appointment"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(appointments.status(), 200);
    let bundle: Value = appointments.json().await.unwrap();
    seen.links.extend(bundle_urls(&bundle));
    seen.texts.push(bundle.to_string());

    let made = client
        .post(format!("{origin}/fhir/r4/Patient"))
        .bearer_auth(token)
        .header("content-type", FHIR_JSON)
        .body(fhir_patient("Drake", "Dee").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let location = made.headers()["location"].to_str().unwrap().to_string();
    let id = made.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        location.ends_with(&format!("/Patient/{id}/_history/1")),
        "{location}"
    );
    seen.links.push(location);

    // The native API writes paths, which a client resolves against its own URL.
    let list = client
        .get(format!("{origin}/v1/patients?limit=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let link = list.headers()["link"].to_str().unwrap().to_string();
    assert!(link.starts_with("</v1/patients?"), "{link}");
    seen.texts.push(link);
    seen.texts.push(list.text().await.unwrap());
    seen
}

#[tokio::test]
async fn a_host_a_client_sends_never_reaches_a_link_or_location() {
    let app = spawn_app().await;
    let desk = three_patients(&app).await;
    let origin = format!("http://{EVIL}:{}", app.addr.port());
    let seen = look_around(&evil_client(&app, true), &origin, &desk).await;
    // Unset, the public origin is the bound address, with the port port 0 was given.
    let public = format!("http://{}", app.addr);
    assert!(!public.ends_with(":0"));
    for link in &seen.links {
        assert!(!link.contains(EVIL), "{link}");
        assert!(link.starts_with(&format!("{public}/fhir/r4")), "{link}");
    }
    for text in &seen.texts {
        assert!(!text.contains(EVIL), "{text}");
    }
}

#[tokio::test]
async fn over_tls_the_default_origin_is_https_on_the_bound_port_whatever_the_host() {
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let app = spawn_app_with(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    for (http1, version) in [
        (true, reqwest::Version::HTTP_11),
        (false, reqwest::Version::HTTP_2),
    ] {
        let res = evil_client(&app, http1)
            .get(format!(
                "https://{EVIL}:{}/fhir/r4/metadata",
                app.addr.port()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), version);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["implementation"]["url"],
            format!("https://{}/fhir/r4", app.addr).as_str()
        );
    }
}

#[tokio::test]
async fn a_configured_public_url_starts_every_link_and_its_next_links_page_through() {
    let public = "https://clinic.example:8443";
    let app = spawn_app_with(|c| c.public_url = Some(PublicUrl::parse(public).unwrap())).await;
    let desk = three_patients(&app).await;
    let origin = format!("http://{EVIL}:{}", app.addr.port());
    let seen = look_around(&evil_client(&app, true), &origin, &desk).await;
    for link in &seen.links {
        assert!(link.starts_with(&format!("{public}/fhir/r4")), "{link}");
    }
    for text in seen.texts.iter() {
        assert!(!text.contains(EVIL), "{text}");
    }
    // Following `next` (with the public origin swapped for the test's address, as a proxy
    // would) walks the whole list once.
    let mut url = app.url("/fhir/r4/Patient?_count=2");
    let mut names = Vec::new();
    loop {
        let res = app
            .client
            .get(&url)
            .bearer_auth(&desk)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let bundle: Value = res.json().await.unwrap();
        for e in bundle["entry"].as_array().unwrap() {
            assert!(e["fullUrl"].as_str().unwrap().starts_with(public));
            names.push(
                e["resource"]["name"][0]["family"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        match next_link(&bundle) {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{public}/fhir/r4/Patient?")),
                    "{next}"
                );
                url = next.replacen(public, &app.url(""), 1);
            }
            None => break,
        }
    }
    assert_eq!(names, ["Abbot", "Bishop", "Crane", "Drake"]);
}

/// Starts `careq serve` with `public_url` and reads its output until it either listens (then
/// it is stopped) or exits. Returns (exit code, stderr); `None` as the code when it listened.
fn start_with_public_url(public_url: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("c.db").display()),
        )
        .env("CAREQ_ADMIN_PASSWORD", "public-url-test-pw")
        .env("CAREQ_PUBLIC_URL", public_url)
        .env("CAREQ_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let listened = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("careq listening"));
    if listened {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let code = (!listened).then(|| out.status.code().unwrap_or(-1));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_public_url_that_is_no_origin_stops_the_start_with_a_message() {
    for (bad, says) in [
        ("https://clinic.example/careq", "path"),
        ("https://clinic.example:8443/?x=1", "query"),
        ("ftp://clinic.example", "scheme"),
        ("clinic.example:8443", "scheme"),
        ("https://user:pw@clinic.example", "user info"),
        ("not a url", "not an absolute URL"),
    ] {
        let (code, stderr) = start_with_public_url(bad);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("public-url") || stderr.contains("CAREQ_PUBLIC_URL"),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
    let (code, stderr) = start_with_public_url("https://Clinic.Example:8443/");
    assert_eq!(code, None, "a trailing slash is still an origin: {stderr}");
}

/// The patient list's `next_cursor` after one patient, made by `app`.
async fn first_cursor(app: &TestApp, token: &str) -> String {
    let res = app
        .authed(Method::GET, "/v1/patients?limit=1", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["next_cursor"].as_str().unwrap().to_string()
}

/// `cursor` with its character at `i` replaced by another of the same alphabet.
fn changed_at(cursor: &str, i: usize) -> String {
    let mut b = cursor.as_bytes().to_vec();
    b[i] = match b[i] {
        b'0' => b'1',
        b'A' => b'B',
        _ => b'0',
    };
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn a_changed_cut_or_foreign_patient_cursor_is_400_at_query_cursor() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    for (given, family) in [("Ana", "Abbot"), ("Bea", "Bishop")] {
        create_patient(&app, &admin, &new_patient_json(&clinic, given, family)).await;
    }
    let cursor = first_cursor(&app, &admin).await;
    let get = |c: String| {
        app.authed(Method::GET, "/v1/patients", &admin)
            .query(&[("limit", "1".to_string()), ("cursor", c)])
            .send()
    };
    let good = get(cursor.clone()).await.unwrap();
    assert_eq!(good.status(), 200);
    let page: Value = good.json().await.unwrap();
    assert_eq!(page["items"][0]["family_name"], "Bishop");

    let other = spawn_app().await;
    let (other_admin, other_clinic) = admin_and_clinic(&other).await;
    for (given, family) in [("Ana", "Abbot"), ("Bea", "Bishop")] {
        create_patient(
            &other,
            &other_admin,
            &new_patient_json(&other_clinic, given, family),
        )
        .await;
    }
    let foreign = first_cursor(&other, &other_admin).await;
    assert_ne!(foreign, cursor, "another database, another secret");

    let mut bad = vec![
        changed_at(&cursor, cursor.len() / 2),
        changed_at(&cursor, 1),
        changed_at(&cursor, cursor.len() - 2),
        cursor[..cursor.len() - 4].to_string(),
        cursor[..cursor.len() / 2].to_string(),
        foreign,
    ];
    bad.dedup();
    for c in bad {
        let problem = assert_problem(get(c.clone()).await.unwrap(), 400).await;
        assert_eq!(problem["errors"][0]["pointer"], "query/cursor", "{c}");
    }
}

#[tokio::test]
async fn a_changed_fhir_cursor_or_a_native_one_is_400_and_the_real_one_pages_on() {
    let app = spawn_app().await;
    let desk = three_patients(&app).await;
    let res = app
        .client
        .get(app.url("/fhir/r4/Patient?_count=1"))
        .bearer_auth(&desk)
        .send()
        .await
        .unwrap();
    let bundle: Value = res.json().await.unwrap();
    let next = next_link(&bundle).unwrap();
    let cursor = url_param(&next, "_cursor");
    let native = first_cursor(&app, &desk).await;
    let search = |c: &str| {
        app.client
            .get(app.url("/fhir/r4/Patient"))
            .query(&[("_count", "1"), ("_cursor", c)])
            .bearer_auth(&desk)
            .send()
    };
    let ok = search(&cursor).await.unwrap();
    assert_eq!(ok.status(), 200);
    let page: Value = ok.json().await.unwrap();
    assert_eq!(page["entry"][0]["resource"]["name"][0]["family"], "Bishop");
    for c in [changed_at(&cursor, cursor.len() / 2), native] {
        let res = search(&c).await.unwrap();
        assert_eq!(res.status(), 400, "{c}");
        assert_eq!(res.headers()["content-type"], FHIR_JSON);
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(
            outcome["issue"][1]["location"][0], "query/_cursor",
            "{outcome}"
        );
    }
    // And a FHIR cursor is not one of the native list's.
    let res = app
        .authed(Method::GET, "/v1/patients", &desk)
        .query(&[("cursor", cursor.as_str())])
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert_eq!(problem["errors"][0]["pointer"], "query/cursor");
}

fn url_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}
