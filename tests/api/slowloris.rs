//! Many connections dribbling a byte at a time cannot stop others from being served.
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_crowd_does_not_starve_normal_clients() {
    let app = spawn_app_with(|c| c.client_timeout_ms = 1500).await;
    let addr = app.addr;
    let mut crowd = Vec::new();
    for _ in 0..200 {
        crowd.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            for b in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " {
                if s.write_all(&[*b]).await.is_err() {
                    return; // the server closed us: exactly what it should do
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let started = Instant::now();
    for _ in 0..40 {
        let res = app.get("/v1/status-codes/200").await;
        assert_eq!(res.status(), 200);
    }
    let took = started.elapsed();
    println!("slowloris: 200 slow connections, 40 normal requests served in {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "normal clients were starved: {took:?}"
    );
    for c in crowd {
        c.abort();
    }
}
