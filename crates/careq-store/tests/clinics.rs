//! Clinics through the store's one set of queries, on each engine.
mod engines;

use careq_store::clinics::{self, ClinicFields, Key};
use careq_store::StoreError;

const NOW: &str = "2030-03-01T08:00:00.000Z";
const LATER: &str = "2030-03-01T09:00:00.000Z";

fn north() -> ClinicFields<'static> {
    ClinicFields {
        name: "North",
        timezone: "Europe/Vienna",
        ticket_prefix: "A",
        country: Some("AT"),
    }
}

#[tokio::test]
async fn a_clinic_is_stored_once_found_and_updated_only_at_its_version_on_every_engine() {
    for e in engines::engines().await {
        let s = &e.store;
        let first = s
            .write(|w| clinics::insert(w, "cln_1", &north(), NOW))
            .await;
        assert_eq!(first, Ok(true), "{}", e.name);
        // The same id again stores nothing and the unit still commits.
        let again = s
            .write(|w| clinics::insert(w, "cln_1", &north(), NOW))
            .await;
        assert_eq!(again, Ok(false), "{}", e.name);

        let found = s
            .read(|r| clinics::find(r, "cln_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.name, "North", "{}", e.name);
        assert_eq!(found.country.as_deref(), Some("AT"));
        assert_eq!(found.version, 1);
        assert_eq!(found.created_at, NOW);

        let south = ClinicFields {
            name: "South",
            country: None,
            ..north()
        };
        let stale = s
            .write(move |w| clinics::update(w, "cln_1", 2, &south, LATER))
            .await;
        assert_eq!(
            stale,
            Ok(false),
            "{}: a stale version changes nothing",
            e.name
        );
        let done = s
            .write(move |w| clinics::update(w, "cln_1", 1, &south, LATER))
            .await;
        assert_eq!(done, Ok(true), "{}", e.name);
        let now = s
            .read(|r| clinics::find(r, "cln_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (now.name.as_str(), now.country, now.version),
            ("South", None, 2)
        );
        assert_eq!(now.updated_at, LATER);
        assert_eq!(s.read(|r| clinics::find(r, "cln_x")).await, Ok(None));
    }
}

#[tokio::test]
async fn clinics_page_by_id_and_a_member_sees_only_their_own() {
    for e in engines::engines().await {
        let s = &e.store;
        s.write(|w| {
            for id in ["cln_a", "cln_b", "cln_c"] {
                clinics::insert(w, id, &north(), NOW)?;
            }
            w.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
                 VALUES ('usr_1', 'ann', 'x', 'clinician', $1, $1)",
                &[NOW.into()],
            )?;
            w.execute(
                "INSERT INTO user_clinics (user_id, clinic_id) VALUES ('usr_1', 'cln_b')",
                &[],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let page = |member: Option<&'static str>, after: &'static str| {
            s.read(move |r| clinics::list(r, member, after, 1))
        };
        let ids = |v: Vec<clinics::ClinicRow>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        // One per page plus the one that says there is more.
        assert_eq!(
            ids(page(None, "").await.unwrap()),
            ["cln_a", "cln_b"],
            "{}",
            e.name
        );
        assert_eq!(
            ids(page(None, "cln_b").await.unwrap()),
            ["cln_c"],
            "{}",
            e.name
        );
        assert_eq!(
            ids(page(Some("usr_1"), "").await.unwrap()),
            ["cln_b"],
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn a_new_key_hash_replaces_the_old_one_and_each_key_is_its_own() {
    for e in engines::engines().await {
        let s = &e.store;
        s.write(|w| clinics::insert(w, "cln_1", &north(), NOW))
            .await
            .unwrap();
        assert_eq!(
            s.read(|r| clinics::key_hash(r, "cln_1", Key::Board)).await,
            Ok(None)
        );
        for hash in ["h1", "h2"] {
            let set = s
                .write(move |w| clinics::set_key_hash(w, "cln_1", Key::Board, hash))
                .await;
            assert_eq!(set, Ok(true), "{}", e.name);
        }
        let board = s.read(|r| clinics::key_hash(r, "cln_1", Key::Board)).await;
        assert_eq!(board, Ok(Some("h2".to_string())), "{}", e.name);
        let kiosk = s.read(|r| clinics::key_hash(r, "cln_1", Key::Kiosk)).await;
        assert_eq!(kiosk, Ok(None), "{}", e.name);
        let none = s
            .write(|w| clinics::set_key_hash(w, "cln_x", Key::Kiosk, "h"))
            .await;
        assert_eq!(none, Ok(false), "{}: no such clinic", e.name);
    }
}
