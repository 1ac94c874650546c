//! Bad input never hurts: arbitrary bytes and arbitrary JSON into the body parsers and the
//! domain `parse` functions must give a value or an error, never a panic; arbitrary bytes on a
//! socket leave the server serving.
use careq::clinics::domain::ValidClinic;
use careq::http::extract::parse_json;
use careq::patients::domain::{date_of_birth, phone, NewPatient, PatientFields, ValidPatient};
use careq::users::domain::{NewUser, Username};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::spawn_app_with;

/// Arbitrary JSON values, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_default()),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("given_name".to_string()),
                    Just("date_of_birth".to_string()),
                    Just("sex".to_string()),
                    Just("phone".to_string()),
                    Just("height_cm".to_string()),
                    ".{0,12}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn body_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_json::<NewPatient>(&bytes);
        let _ = parse_json::<NewUser>(&bytes);
        let _ = parse_json::<serde_json::Value>(&bytes);
    }

    #[test]
    fn body_parsers_never_panic_on_arbitrary_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = parse_json::<NewPatient>(&bytes);
        if let Ok(fields) = parse_json::<PatientFields>(&bytes) {
            let _ = ValidPatient::parse(&fields);
        }
    }

    #[test]
    fn domain_parsers_never_panic(s in "\\PC{0,64}", t in ".{0,64}") {
        let _ = date_of_birth(&s, jiff::civil::date(2026, 3, 1));
        let _ = phone(&s, None);
        let _ = phone(&s, Some("AT"));
        let _ = Username::parse(&t);
        let _ = ValidClinic::parse(&s, &t, &s, Some(&t));
        let fields = PatientFields {
            given_name: s.clone(), family_name: t.clone(), date_of_birth: t.clone(),
            sex: careq::patients::domain::Sex::Other, mrn: Some(s.clone()), phone: Some(t.clone()),
            email: Some(s.clone()), address: Some(t.clone()), height_cm: Some(f64::NAN), weight_kg: Some(-1.0),
        };
        prop_assert!(ValidPatient::parse(&fields).is_err());
    }
}

#[tokio::test]
async fn arbitrary_bytes_on_the_socket_leave_the_server_serving() {
    let app = spawn_app_with(|c| c.client_timeout_ms = 500).await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(any::<u8>(), 1..2048);
    for _ in 0..64 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        let mut s = app.connect().await;
        let _ = s.write_all(&bytes).await;
        let _ = s.write_all(b"\r\n\r\n").await;
        let mut sink = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut sink)).await;
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}
