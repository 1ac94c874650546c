//! Issue 24 (second security review), points 5 and 7: one address cannot stop every sign-in, and
//! password hashing runs on a fixed set of threads that keep their memory. (How fast and how much
//! memory is measured by `bench/signin.py`, which prints figures; nothing here is timed.)
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::{
    assert_problem, spawn_app_with, start_binary_url, ADMIN_PASSWORD, STAFF_PASSWORD,
};

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_sign_ins_from_one_address_gets_429_while_another_address_signs_in() {
    // One slot and four waiting places; an address may hold two of the five.
    let app = spawn_app_with(|c| c.password_hash_slots = Some(1)).await;
    let base = format!("http://{}", app.addr);
    let flooder = client_from("127.0.0.2");
    let visitor = client_from("127.0.0.3");

    let stop = Arc::new(AtomicBool::new(false));
    let first_refusal = Arc::new(tokio::sync::Notify::new());
    // Every answer the flood got: (status, Retry-After).
    let seen = Arc::new(Mutex::new(Vec::<(u16, Option<String>)>::new()));
    let mut flood = Vec::new();
    for thread in 0..40 {
        let (client, base, stop, first_refusal, seen) = (
            flooder.clone(),
            base.clone(),
            stop.clone(),
            first_refusal.clone(),
            seen.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let name = format!("nobody-{thread}-{n}");
                let res = sign_in(&client, &base, &name, "a wrong password").await;
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                if status == 429 {
                    assert_problem(res, 429).await;
                }
                if status == 429 || status == 503 {
                    first_refusal.notify_one();
                }
                seen.lock().unwrap().push((status, retry_after));
            }
        }));
    }
    // The flood has filled its share (or, before the fix, the whole gate).
    first_refusal.notified().await;
    // Meanwhile, from elsewhere, the right password signs in, again and again.
    let mut visitor_answers = Vec::new();
    for _ in 0..5 {
        let res = sign_in(&visitor, &base, "admin", ADMIN_PASSWORD).await;
        let status = res.status().as_u16();
        if status == 200 {
            let grant: serde_json::Value = res.json().await.unwrap();
            assert!(grant["access_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()));
        }
        visitor_answers.push(status);
    }
    stop.store(true, Ordering::SeqCst);
    for task in flood {
        task.await.unwrap();
    }

    assert_eq!(
        visitor_answers, [200; 5],
        "the other address was turned away"
    );
    let seen = seen.lock().unwrap();
    let refused: Vec<_> = seen.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!refused.is_empty(), "the flood never got a 429: {seen:?}");
    for (_, retry_after) in &refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
    }
    // Only its own share is refused: the flood never sees the gate full (503), and whatever
    // it was let through was checked (401).
    for (status, _) in seen.iter() {
        assert!(matches!(status, 401 | 429), "the flood got {status}");
    }
    assert!(seen.iter().any(|(s, _)| *s == 401));
    // Once the flood has stopped nothing of it is held.
    assert_eq!(app.state.hashing.held_by("127.0.0.2".parse().unwrap()), 0);
}

#[tokio::test]
async fn password_changes_from_one_address_share_its_part_of_the_gate() {
    let app = spawn_app_with(|c| {
        c.password_hash_slots = Some(1);
        c.password_hash_per_address = Some(1);
        c.login_attempts = 1000;
    })
    .await;
    let base = format!("http://{}", app.addr);
    let admin = app.admin_token().await;
    let (_, token) = app
        .create_staff(&admin, "nurse.rory", "clinician", &[])
        .await;
    // A share of one place: of eight changes sent at once from one address, those that come
    // while another is being checked are refused with 429 before anything is hashed. (Rounds
    // are repeated until one such meeting happens.)
    let client = client_from("127.0.0.4");
    let mut refused = Vec::new();
    while refused.is_empty() {
        let changes = (0..8).map(|_| {
            client
                .post(format!("{base}/v1/me/password"))
                .bearer_auth(&token)
                .json(&json!({"current": "not the current one", "new": "another password 1"}))
                .send()
        });
        for res in futures_util::future::join_all(changes).await {
            let res = res.unwrap();
            match res.status().as_u16() {
                // Checked: the current password is wrong.
                422 => {}
                429 => {
                    assert_eq!(res.headers()["retry-after"], "1");
                    refused.push(assert_problem(res, 429).await);
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    for body in refused {
        assert!(
            body["detail"].as_str().unwrap().contains("at once"),
            "{body}"
        );
    }
    // The account's password is unchanged.
    app.login("nurse.rory", STAFF_PASSWORD).await;
}

/// The hashing threads of the gate (`careq-hash-0`, `careq-hash-1`, …; not the one for new
/// accounts) of process `pid`, as (thread id, name).
fn gate_threads(pid: u32) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue; // the thread ended meanwhile
        };
        let name = name.trim_end();
        let slot = name.strip_prefix("careq-hash-").unwrap_or("");
        if !slot.is_empty() && slot.bytes().all(|b| b.is_ascii_digit()) {
            found.insert((
                task.file_name().to_string_lossy().into_owned(),
                name.to_string(),
            ));
        }
    }
    found
}

#[tokio::test]
async fn sign_ins_are_hashed_on_one_kept_thread_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("careq.db").display());
    let server = start_binary_url(
        &url,
        &[
            ("CAREQ_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("CAREQ_PASSWORD_HASH_SLOTS", "2"),
        ],
    );
    let pid = server.child.id();
    let base = format!("http://{}", server.addr);
    let mut threads = Vec::new();
    for burst in 0..3 {
        // 32 sign-ins at once, each from an address of its own.
        let attempts = (0..32).map(|i| {
            let base = base.clone();
            async move {
                let client = client_from(&format!("127.0.{}.{}", 10 + burst, 1 + i));
                let (user, pw) = if i == 0 {
                    ("admin", ADMIN_PASSWORD)
                } else {
                    ("nobody", "a wrong password")
                };
                sign_in(&client, &base, user, pw).await.status().as_u16()
            }
        });
        let answers = futures_util::future::join_all(attempts).await;
        assert!(answers.iter().all(|s| matches!(s, 200 | 401 | 503)));
        assert!(answers.contains(&401));
        threads.push(gate_threads(pid));
    }
    server.stop();
    // One hashing thread per slot, and the very same ones after every burst.
    let mut names: Vec<_> = threads[0].iter().map(|(_, name)| name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["careq-hash-0", "careq-hash-1"]);
    assert_eq!(threads[1], threads[0]);
    assert_eq!(threads[2], threads[0]);
}
