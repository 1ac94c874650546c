//! No acknowledged write is lost: creates under concurrent load, SIGKILL at different points,
//! restart on the same file, every 201 still there and nothing partial.
use std::sync::{Arc, Mutex};

use crate::helpers::start_binary;

const ADMIN: &str = "durability-admin-pw";
const WRITERS: usize = 8;

async fn token(client: &reqwest::Client, base: &str) -> String {
    let v: serde_json::Value = client
        .post(format!("{base}/v1/auth/token"))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_creates_survive_sigkill_at_different_kill_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::test_database(&dir.path().join("durable.db")).await;
    let client = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut clinic = String::new();
    let mut fired = 0usize;

    for (round, kill_after) in [20usize, 80, 200].into_iter().enumerate() {
        let server = start_binary(&db.url, Some(ADMIN));
        let base = format!("http://{}", server.addr);
        let tok = token(&client, &base).await;
        if clinic.is_empty() {
            let v: serde_json::Value = client
                .post(format!("{base}/v1/clinics"))
                .bearer_auth(&tok)
                .json(&serde_json::json!({"name": "Durable", "timezone": "UTC", "ticket_prefix": "D"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            clinic = v["id"].as_str().unwrap().to_string();
        }
        let before = acked.lock().unwrap().len();
        let (tx, mut rx) = tokio::sync::watch::channel(0usize);
        let tx = Arc::new(tx);
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (client, base, tok, clinic, acked, tx) = (
                client.clone(),
                base.clone(),
                tok.clone(),
                clinic.clone(),
                acked.clone(),
                tx.clone(),
            );
            writers.push(tokio::spawn(async move {
                let mut sent = 0usize;
                // Even writers register patients; odd ones issue queue tickets.
                let tickets = w % 2 == 1;
                for n in 0.. {
                    let given = format!("R{round}W{w}N{n}");
                    let req =
                        if tickets {
                            client
                                .post(format!("{base}/v1/clinics/{clinic}/queue/tickets"))
                                .json(&serde_json::json!({"priority": "normal"}))
                        } else {
                            client.post(format!("{base}/v1/patients")).json(&serde_json::json!({
                            "clinic_id": clinic, "given_name": given, "family_name": "Durable",
                            "date_of_birth": "1975-03-04", "sex": "unknown"
                        }))
                        };
                    let res = req.bearer_auth(&tok).send().await;
                    sent += 1;
                    let Ok(res) = res else { break };
                    if res.status() != 201 {
                        break;
                    }
                    let Ok(body) = res.json::<serde_json::Value>().await else {
                        break;
                    };
                    let check = if tickets {
                        body["number"].as_str().unwrap_or("").to_string()
                    } else {
                        given
                    };
                    let mut list = acked.lock().unwrap();
                    list.push((body["id"].as_str().unwrap().to_string(), check));
                    tx.send_replace(list.len());
                }
                sent
            }));
        }
        rx.wait_for(|n| *n >= before + kill_after).await.unwrap();
        server.stop(); // SIGKILL, mid-load
        for w in writers {
            fired += w.await.unwrap();
        }
    }

    // Restart on the same file: every acknowledged patient is there, intact.
    let server = start_binary(&db.url, Some(ADMIN));
    let base = format!("http://{}", server.addr);
    let tok = token(&client, &base).await;
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    let (mut patients, mut tickets) = (0, 0);
    for (id, check) in &acked {
        let path = if id.starts_with("tkt_") {
            format!("/v1/tickets/{id}")
        } else {
            format!("/v1/patients/{id}")
        };
        let res = client
            .get(format!("{base}{path}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged record {id} lost");
        let body: serde_json::Value = res.json().await.unwrap();
        if id.starts_with("tkt_") {
            tickets += 1;
            assert_eq!(body["number"], check.as_str());
        } else {
            patients += 1;
            assert_eq!(body["given_name"], check.as_str());
            assert_eq!(body["family_name"], "Durable");
        }
    }
    assert!(patients > 0 && tickets > 0);
    server.stop();
    // Nothing partial: every stored patient has its creation in the access log (same transaction).
    let pool = db.pool().await;
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM patients p WHERE NOT EXISTS
           (SELECT 1 FROM access_log a WHERE a.resource_id = p.id AND a.action = 'create')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    // Ticket numbers stay gap-free through the kills: a number is used only by a commit.
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM tickets ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let stored: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM patients) + (SELECT COUNT(*) FROM tickets)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(stored as usize >= acked.len());
    println!(
        "durability: {fired} creates fired, 3 SIGKILLs survived, {} acknowledged records checked ({patients} patients, {tickets} tickets), {stored} stored",
        acked.len()
    );
}
