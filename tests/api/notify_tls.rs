//! The notifier over HTTPS: a local receiver with a certificate from a CA made in the test, the
//! delivery's HMAC signature checked independently, and what happens without the CA or with a
//! CA file that cannot be used.
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::Sha256;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::helpers::*;
use crate::live::{send_notify, ticket};

type Seen = Arc<Mutex<Vec<(http::HeaderMap, bytes::Bytes)>>>;

struct Pki {
    ca_pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let made = test_pki();
    let leaf = rustls::pki_types::CertificateDer::from_pem_slice(made.cert_pem.as_bytes()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(made.key_pem.as_bytes()).unwrap();
    Pki {
        ca_pem: made.ca_pem,
        leaf,
        key,
    }
}

/// An HTTPS receiver on 127.0.0.1 answering 202 and keeping what it received.
async fn receiver(pki: &Pki) -> (String, Seen) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, kept) = (acceptor.clone(), kept.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            kept.lock().unwrap().push((parts.headers, body));
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(202)
                                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                        b"{}",
                                    )))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}/hook", addr.port()), seen)
}

/// The signature as a receiver checks it, written here from the documented recipe.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let now = jiff::Timestamp::now().as_second();
    let fresh = t.parse::<i64>().is_ok_and(|t| (now - t).abs() < 300);
    fresh && mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

#[tokio::test]
async fn a_signed_delivery_reaches_an_https_receiver_trusted_through_the_ca_file() {
    let pki = pki();
    let (url, seen) = receiver(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let app = spawn_app_with(move |c| {
        c.notify_url = Some(url);
        c.notify_secret = Some("s3cret-for-the-hook".into());
        c.notify_ca_file = Some(ca_file);
    })
    .await;
    let (admin, id) = ticket(&app).await;
    for _ in 0..2 {
        let res = send_notify(&app, &admin, &id).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["delivered"], true);
        assert_eq!(body["upstream_status"], 202);
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (headers, body) in &seen {
        assert_eq!(headers["content-type"], "application/json");
        let sig = headers["x-careq-signature"].to_str().unwrap();
        assert!(verify("s3cret-for-the-hook", sig, body), "{sig}");
        assert!(!verify("another-secret", sig, body));
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert!(!verify("s3cret-for-the-hook", sig, &tampered));
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["ticket_id"], id.as_str());
    }
}

#[tokio::test]
async fn without_the_receivers_ca_the_handshake_fails_and_notify_is_502() {
    let pki = pki();
    let (url, seen) = receiver(&pki).await;
    let app = spawn_app_with(move |c| c.notify_url = Some(url)).await;
    let (admin, id) = ticket(&app).await;
    let body = assert_problem(send_notify(&app, &admin, &id).await, 502).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("could not be reached"));
    assert!(seen.lock().unwrap().is_empty(), "nothing was delivered");
    // The server still works.
    let res = send_notify(&app, &admin, &id).await;
    assert_eq!(res.status(), 502);
}

#[tokio::test]
async fn an_unusable_ca_file_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let mut config = test_config(dir.path());
    config.notify_ca_file = Some(missing.clone());
    let err = careq::startup::Application::build(config)
        .await
        .err()
        .expect("a missing CA file is an error");
    assert!(format!("{err:#}").contains("nope.pem"), "{err:#}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let mut config = test_config(dir.path());
    config.notify_ca_file = Some(garbage);
    let err = careq::startup::Application::build(config)
        .await
        .err()
        .expect("a file without certificates is an error");
    assert!(format!("{err:#}").contains("garbage.pem"), "{err:#}");
}

#[test]
fn the_readmes_signature_example_is_what_careq_computes() {
    assert_eq!(
        careq::queue::notify::signature("s", 1_700_000_000, b"{}"),
        "t=1700000000,v1=e9232c9945da8456c2dea6b39da7786c07b00bca7a64d5dd1283674713a7b72a"
    );
}
