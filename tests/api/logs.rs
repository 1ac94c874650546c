//! The real binary's log output never holds passwords or tokens, and a generated admin password
//! goes to a file of its own, not to the terminal or the log.
use crate::helpers::{start_binary as start, test_database, STAFF_PASSWORD};

#[tokio::test]
async fn passwords_tokens_and_patient_data_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let admin_pw = "log-test-admin-password";
    let db = test_database(&dir.path().join("c.db")).await;
    let server = start(&db.url, Some(admin_pw));
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let login = |u: &'static str, p: &'static str| {
        client
            .post(format!("{base}/v1/auth/token"))
            .json(&serde_json::json!({"username": u, "password": p}))
            .send()
    };
    let admin: serde_json::Value = login("admin", admin_pw)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{base}/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": "logged", "password": STAFF_PASSWORD, "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: serde_json::Value = res.json().await.unwrap();
    let staff: serde_json::Value = login("logged", STAFF_PASSWORD)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff = staff["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        login("logged", "a-wrong-password").await.unwrap().status(),
        401
    );
    let read = client
        .get(format!("{base}/v1/users/{}", user["id"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [STAFF_PASSWORD, "argon2", &staff, &admin] {
        assert!(
            !read.contains(secret),
            "a response after issue holds a secret"
        );
    }
    // Patient data: create, search by name and phone, look up, read; none of it may be logged.
    let clinic: serde_json::Value = client
        .post(format!("{base}/v1/clinics"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Logclinic", "timezone": "UTC", "ticket_prefix": "L"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let patient = client
        .post(format!("{base}/v1/patients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({
            "clinic_id": clinic["id"], "given_name": "Zebulon", "family_name": "Quartermaine",
            "date_of_birth": "1961-07-19", "sex": "male", "phone": "+4319876543210"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(patient.status(), 201);
    let location = patient.headers()["location"].to_str().unwrap().to_string();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/v1/patients?q=Zebul".to_string(),
        "/v1/patients?phone=%2B4319876543210".to_string(),
        "/v1/patients/lookup?phone=%2B4319876543210".to_string(),
        "/v1/patients?date_of_birth=1961-07-19".to_string(),
        location,
    ] {
        let res = no_redirects
            .get(format!("{base}{path}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{path}"
        );
    }
    client
        .delete(format!("{base}/v1/auth/token"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    let (log, stderr) = server.stop();
    assert!(
        log.contains("\"route\":\"/v1/auth/token\""),
        "the log was captured: {log}"
    );
    for patient_data in [
        "Zebulon",
        "Zebul",
        "Quartermaine",
        "9876543210",
        "1961-07-19",
    ] {
        assert!(
            !log.contains(patient_data) && !stderr.contains(patient_data),
            "patient data {patient_data} reached the log"
        );
    }
    for secret in [
        admin_pw,
        STAFF_PASSWORD,
        "a-wrong-password",
        &admin,
        &staff,
        "$argon2",
    ] {
        assert!(
            !log.contains(secret) && !stderr.contains(secret),
            "{secret} leaked into the output"
        );
    }
}

#[tokio::test]
async fn a_generated_admin_password_goes_to_its_file_never_to_the_terminal_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("g.db")).await;
    let file = dir.path().join("admin-password");
    let out = [("CAREQ_ADMIN_PASSWORD_OUT", file.to_str().unwrap())];
    // The file is written before the server listens; stop to collect the output.
    let (log, stderr) = crate::helpers::start_binary_url(&db.url, &out).stop();
    let pw = std::fs::read_to_string(&file)
        .unwrap()
        .trim_end()
        .to_string();
    assert!(pw.len() >= 16);
    assert!(!log.contains(&pw), "the password is not in the log");
    assert!(!stderr.contains(&pw), "nor on the terminal");
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    // Restart on the same database: the password works, and nothing is generated again.
    let server = crate::helpers::start_binary_url(&db.url, &out);
    let base = format!("http://{}", server.addr);
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .json(&serde_json::json!({"username": "admin", "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, stderr) = server.stop();
    assert!(!stderr.contains("admin-password"), "{stderr}");
}

#[test]
fn log_lines_are_plain_text_for_people_when_asked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("CAREQ_LOG_FORMAT", "text")
        .env("CAREQ_ADMIN_PASSWORD", "a-long-admin-password")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut found = None;
    for line in stdout.lines().map_while(Result::ok) {
        if line.contains("careq listening") {
            found = Some(line);
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let line = found.expect("the listening line");
    assert!(!line.trim_start().starts_with('{'), "{line}");
    assert!(serde_json::from_str::<serde_json::Value>(&line).is_err());
    assert!(
        line.contains("INFO") && line.contains("address=127.0.0.1:"),
        "{line}"
    );
}
