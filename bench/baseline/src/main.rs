//! A bare hyper 1 server answering fixed JSON, the ceiling `bench/run.sh` compares careq with:
//! GET answers 200 with a patient-sized body; POST reads the whole body and answers 201.
//! Usage: `baseline 127.0.0.1:9000`.
#![forbid(unsafe_code)]
use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// About the size and shape of a patient as careq serves it.
const PATIENT: &str = r#"{"id":"pat_3f9a1c2b7d8e4f6a0b1c","clinic_id":"cln_0a1b2c3d4e5f60718293","mrn":"M0004711","given_name":"Lorena","family_name":"Vasquelin","date_of_birth":"1984-03-17","sex":"female","phone":"+436641234567","email":null,"address":null,"height_cm":null,"weight_kg":null,"bmi":null,"version":1,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = if req.method() == Method::POST {
        // Read the body to the end, as a real create would, then drop it.
        let _ = req.into_body().collect().await;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut res = Response::new(Full::new(Bytes::from_static(PATIENT.as_bytes())));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ETAG, HeaderValue::from_static("\"1\""));
    if status == StatusCode::CREATED {
        h.insert(
            LOCATION,
            HeaderValue::from_static("/v1/patients/pat_3f9a1c2b7d8e4f6a0b1c"),
        );
    }
    Ok(res)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_string());
    let listener = TcpListener::bind(&addr).await?;
    println!("baseline listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
