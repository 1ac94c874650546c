//! Two `careq serve` processes on one PostgreSQL database, as behind a load balancer: numbers,
//! calls, lost updates, idempotent replays and live boards hold across them; rate limits are per
//! process (the README gives the arithmetic, and this shows it).
use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

const PASSWORD: &str = "two-process-admin-pw";

struct Pair {
    a: Server,
    b: Server,
    client: Client,
    token: String,
    clinic: String,
    _db: PgTestDb,
}

impl Pair {
    fn url(&self, which: usize, path: &str) -> String {
        let s = if which == 0 { &self.a } else { &self.b };
        format!("http://{}{path}", s.addr)
    }

    fn req(&self, which: usize, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(which, path))
            .bearer_auth(&self.token)
    }
}

async fn two_processes(extra: &[(&str, &str)]) -> Pair {
    let db = fresh_postgres_database().await;
    let mut env = vec![("CAREQ_ADMIN_PASSWORD", PASSWORD)];
    env.extend_from_slice(extra);
    // One after the other: the first migrates the database and creates the admin.
    let a = start_binary_url(&db.url, &env);
    let b = start_binary_url(&db.url, &env);
    let client = Client::new();
    let res = client
        .post(format!("http://{}/v1/auth/token", a.addr))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = client
        .post(format!("http://{}/v1/clinics", b.addr))
        .bearer_auth(&token)
        .json(&json!({"name": "Shared", "timezone": "UTC", "ticket_prefix": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let clinic = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    Pair {
        a,
        b,
        client,
        token,
        clinic,
        _db: db,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_event(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn seq_of(number: &str) -> u32 {
    number.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn two_processes_share_numbers_calls_updates_replays_and_boards() {
    let p = two_processes(&[("CAREQ_RATE_BURST", "100000")]).await;
    let clinic = p.clinic.clone();

    // A board on process A, keyed by a key made on process B.
    let res = p
        .req(1, Method::POST, &format!("/v1/clinics/{clinic}/board"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let key_url = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = key_url.split("key=").nth(1).unwrap().to_string();
    // The board key goes in a subprotocol (as a browser offers it), never in the URL.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/clinics/{clinic}/queue/live", p.a.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("careq, careq.board.{key}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_event(&mut ws).await["kind"], "snapshot");

    // Tickets issued in parallel through both processes: distinct, consecutive numbers.
    let mut issued = Vec::new();
    for i in 0..40 {
        let req = p
            .req(
                i % 2,
                Method::POST,
                &format!("/v1/clinics/{clinic}/queue/tickets"),
            )
            .json(&json!({"priority": "normal"}));
        issued.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let mut seqs = Vec::new();
    for h in issued {
        let res = h.await.unwrap();
        assert_eq!(res.status(), 201);
        let t: Value = res.json().await.unwrap();
        seqs.push(seq_of(t["number"].as_str().unwrap()));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u32>>());

    // The board on A heard every ticket, including those issued through B.
    let mut heard = HashSet::new();
    while heard.len() < 40 {
        let e = next_event(&mut ws).await;
        if e["kind"] == "issued" {
            heard.insert(seq_of(e["ticket"]["number"].as_str().unwrap()));
        }
    }

    // Two counters calling next through different processes never get the same ticket.
    let mut calls = Vec::new();
    for i in 0..30 {
        let req = p
            .req(
                i % 2,
                Method::POST,
                &format!("/v1/clinics/{clinic}/queue/call-next"),
            )
            .json(&json!({"counter": format!("Desk {}", i % 2)}));
        calls.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let mut called = HashSet::new();
    for h in calls {
        let res = h.await.unwrap();
        assert_eq!(res.status(), 200);
        let t: Value = res.json().await.unwrap();
        assert!(
            called.insert(t["number"].as_str().unwrap().to_string()),
            "called twice: {t}"
        );
    }
    assert_eq!(called.len(), 30);

    // An If-Match race across processes: one 200, one 412 with the current ETag.
    let res = p
        .req(0, Method::POST, "/v1/patients")
        .json(&json!({"clinic_id": clinic, "given_name": "Ria", "family_name": "Racewood", "date_of_birth": "1980-02-03", "sex": "female"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = |which: usize, name: &str| {
        p.req(which, Method::PATCH, &format!("/v1/patients/{id}"))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "\"1\"")
            .body(json!({"given_name": name}).to_string())
            .send()
    };
    let (x, y) = tokio::join!(patch(0, "Ria-A"), patch(1, "Ria-B"));
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut codes = [x.status().as_u16(), y.status().as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [200, 412]);
    let loser = if x.status() == 412 { x } else { y };
    assert_eq!(loser.headers()["etag"], "\"2\"");
    assert_problem(loser, 412).await;

    // An Idempotency-Key used on A and replayed on B replays A's answer.
    let body = json!({"clinic_id": clinic, "given_name": "Ida", "family_name": "Oncewell", "date_of_birth": "1970-01-02", "sex": "female"});
    let first = p
        .req(0, Method::POST, "/v1/patients")
        .header("idempotency-key", "two-process-key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first_location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();
    let again = p
        .req(1, Method::POST, "/v1/patients")
        .header("idempotency-key", "two-process-key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);

    let (log_a, _) = p.a.stop();
    let (log_b, _) = p.b.stop();
    for log in [log_a, log_b] {
        for name in ["Ria", "Ida", "Racewood", "Oncewell"] {
            assert!(
                !log.contains(name),
                "patient data in the log: {}",
                log.lines()
                    .filter(|l| l.contains(name))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[tokio::test]
async fn rate_limits_and_login_throttling_are_per_process_as_the_readme_computes() {
    // Each process allows `burst` requests per token and `attempts` failed sign-ins per
    // (account, address): behind N processes a client gets at most N times as many.
    let p = two_processes(&[
        ("CAREQ_RATE_BURST", "5"),
        ("CAREQ_RATE_PER_SECOND", "1"),
        ("CAREQ_LOGIN_ATTEMPTS", "3"),
    ])
    .await;
    let mut refused = [0u32; 2];
    let mut allowed = [0u32; 2];
    for i in 0..20 {
        let which = i % 2;
        let res = p.req(which, Method::GET, "/v1/me").send().await.unwrap();
        match res.status().as_u16() {
            200 => allowed[which] += 1,
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                refused[which] += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // Each process: its burst (less the requests of the setup it served), never more.
    assert!(allowed[0] <= 5 && allowed[1] <= 5, "{allowed:?}");
    assert!(refused[0] > 0 && refused[1] > 0, "{refused:?}");

    let mut failures = [0u32; 2];
    for which in [0usize, 1] {
        loop {
            let res = p
                .client
                .post(p.url(which, "/v1/auth/token"))
                .json(&json!({"username": "admin", "password": "wrong-password-x"}))
                .send()
                .await
                .unwrap();
            if res.status() == 429 {
                assert!(res.headers().contains_key("retry-after"));
                break;
            }
            assert_eq!(res.status(), 401);
            failures[which] += 1;
            assert!(
                failures[which] <= 3,
                "process {which} allowed more than 3 failures"
            );
        }
    }
    assert_eq!(failures, [3, 3], "each process: exactly its own 3 attempts");
}

#[tokio::test]
async fn two_processes_starting_at_once_on_a_new_database_both_serve_one_admin() {
    let db = fresh_postgres_database().await;
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                start_binary_url(&url, &[("CAREQ_ADMIN_PASSWORD", PASSWORD)])
            })
        })
        .collect();
    let servers: Vec<Server> = starts.into_iter().map(|h| h.join().unwrap()).collect();
    let client = Client::new();
    for s in &servers {
        let res = client
            .post(format!("http://{}/v1/auth/token", s.addr))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let users: Value = client
            .get(format!("http://{}/v1/users", s.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(users["items"].as_array().unwrap().len(), 1, "{users}");
    }
    for s in servers {
        s.stop();
    }
}
