//! The global rules (Host, 413, 414, 431, 408) hold on HTTP/2 as on HTTP/1.1. careq speaks
//! HTTP/2 only over TLS (negotiated by ALPN; cleartext h2c is refused with 505, see raw_http), so
//! each test runs one TLS server and asks it the same question over both protocols.
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;

use crate::helpers::*;

const PROTOCOLS: [(bool, reqwest::Version); 2] = [
    (false, reqwest::Version::HTTP_2),
    (true, reqwest::Version::HTTP_11),
];

/// A TLS app (certificate for 127.0.0.1 and localhost) with extra settings.
async fn tls_app(customise: impl FnOnce(&mut careq::config::Config) + Send) -> TestApp {
    tls_app_and_ca(customise).await.0
}

/// `tls_app`, and the PEM of the CA that signed its certificate.
async fn tls_app_and_ca(
    customise: impl FnOnce(&mut careq::config::Config) + Send,
) -> (TestApp, String) {
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let app = spawn_app_with(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
        customise(c);
    })
    .await;
    // The files were read at start; the directory may go.
    drop(dir);
    (app, pki.ca_pem)
}

/// A client for one protocol that resolves every name below to the app, and trusts any
/// certificate (these tests are about HTTP, not about names in certificates).
fn client(http1: bool, addr: SocketAddr) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .resolve("localhost", addr)
        .resolve("wrong.example", addr);
    let b = if http1 { b.http1_only() } else { b };
    b.build().unwrap()
}

/// The admin's token, signed in over HTTP/1.1 through TLS.
async fn admin_token(app: &TestApp, base: &str) -> String {
    let res = client(true, app.addr)
        .post(format!("{base}/v1/auth/token"))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_host_rules_hold_on_http2_through_the_authority() {
    let app = tls_app(|c| c.allowed_hosts = vec!["localhost".into()]).await;
    let port = app.addr.port();
    for (http1, version) in PROTOCOLS {
        let c = client(http1, app.addr);
        let res = c
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!((res.status().as_u16(), res.version()), (200, version));
        // A name careq does not serve: 421, which tells a client to try another connection.
        let res = c
            .get(format!("https://wrong.example:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        assert!(res.headers().contains_key("strict-transport-security"));
        let body = assert_problem(res, 421).await;
        assert_eq!(body["status"], 421);
    }
    // On HTTP/2 a Host header that names another host than `:authority` makes the request
    // malformed (RFC 9113 §8.3.1): 400, whichever of the two is the allowed one.
    let c = client(false, app.addr);
    for (url, host) in [
        (format!("https://localhost:{port}/healthz"), "wrong.example"),
        (format!("https://wrong.example:{port}/healthz"), "localhost"),
    ] {
        let res = c.get(url).header("host", host).send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        let body = assert_problem(res, 400).await;
        assert!(body["detail"].as_str().unwrap().contains(":authority"));
    }
    // The same Host as `:authority` is fine.
    let res = c
        .get(format!("https://localhost:{port}/healthz"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_long_target_is_414_and_large_header_fields_431_on_both_protocols() {
    let app = tls_app(|c| c.uri_max_bytes = 1024).await;
    let base = format!("https://localhost:{}", app.addr.port());
    let token = admin_token(&app, &base).await;
    for (http1, version) in PROTOCOLS {
        let c = client(http1, app.addr);
        let long = format!("{base}/v1/patients?q={}", "a".repeat(1100));
        let res = c.get(&long).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.version(), version);
        let body = assert_problem(res, 414).await;
        assert!(body["detail"].as_str().unwrap().contains("1024"));
        // Just under the limit is served.
        let fits = format!("{base}/v1/patients?q={}", "a".repeat(900));
        let res = c.get(&fits).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);

        // Header fields over careq's 32 KiB: 431 as a problem, the same on both protocols.
        let res = c
            .get(format!("{base}/healthz"))
            .header("x-padding", "p".repeat(40 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        let body = assert_problem(res, 431).await;
        assert!(body["detail"].as_str().unwrap().contains("32768"));
        // Just under it is served.
        let res = c
            .get(format!("{base}/healthz"))
            .header("x-padding", "p".repeat(30 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // The connection (or, on HTTP/2, the other streams) still serves.
        let res = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!((res.status().as_u16(), res.version()), (200, version));
    }
}

#[tokio::test]
async fn a_body_that_stalls_is_408_on_both_protocols() {
    let app = tls_app(|c| c.client_timeout_ms = 600).await;
    let base = format!("https://localhost:{}", app.addr.port());
    let token = admin_token(&app, &base).await;
    for (http1, version) in PROTOCOLS {
        let c = client(http1, app.addr);
        // The first bytes of a body, then nothing for longer than the client timeout.
        let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(
            "{\"given_name\":",
        ))])
        .chain(futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(bytes::Bytes::from("\"Ann\"}"))
        }));
        let res = c
            .post(format!("{base}/v1/patients"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("content-length", "20")
            .body(reqwest::Body::wrap_stream(stalled))
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        // HTTP/1.1 closes the connection (the rest of the body would be read as a request);
        // HTTP/2 has no `Connection` header (RFC 9113 §8.2.2): the server resets the stream.
        match version {
            reqwest::Version::HTTP_11 => assert_eq!(res.headers()["connection"], "close"),
            _ => assert!(!res.headers().contains_key("connection")),
        }
        let body = assert_problem(res, 408).await;
        assert!(body["detail"].as_str().unwrap().contains("in time"));
        // Nothing was stored, and the server goes on serving.
        let res = c
            .get(format!("{base}/v1/patients"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page: serde_json::Value = res.json().await.unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    }
}

/// Opens a TLS connection that negotiates HTTP/2, trusting `ca_pem`.
async fn h2_socket(
    addr: SocketAddr,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    tls
}

#[tokio::test]
async fn an_http2_connection_that_sends_nothing_gets_goaway_and_is_closed() {
    let (app, ca) = tls_app_and_ca(|c| c.client_timeout_ms = 400).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The client preface and an empty SETTINGS frame, then silence (no request).
    let mut s = h2_socket(app.addr, &ca).await;
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the silent connection was still open after 20 s"
    );
    // The frames the server sent: each a 9-byte header (length, type, flags, stream) and its
    // payload. One of them is GOAWAY (type 7).
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= got.len() {
        let len =
            usize::from(got[at]) << 16 | usize::from(got[at + 1]) << 8 | usize::from(got[at + 2]);
        types.push(got[at + 3]);
        at += 9 + len;
    }
    assert!(types.contains(&7), "no GOAWAY among frame types {types:?}");

    // A client that keeps using its connection is not cut off, and one that comes back after
    // an idle spell is served (its client opens a new connection after the GOAWAY).
    let base = format!("https://localhost:{}", app.addr.port());
    let c = client(false, app.addr);
    for pause in [100, 100, 900] {
        let res = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(
            (res.status().as_u16(), res.version()),
            (200, reqwest::Version::HTTP_2)
        );
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let res = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
