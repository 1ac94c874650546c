//! Staff accounts, their clinics and their tokens through the store's one set of queries, on
//! each engine.
mod engines;

use careq_store::clinics::{self, ClinicFields};
use careq_store::users::{self, Credentials, NewUser, TokenOwner, UserChange};
use careq_store::{Store, StoreError};

const NOW: &str = "2030-03-01T08:00:00.000Z";
const LATER: &str = "2030-03-01T09:00:00.000Z";
/// Token times are Unix seconds.
const T0: i64 = 1_900_000_000;

fn account(username: &'static str, role: &'static str) -> NewUser<'static> {
    NewUser {
        username,
        password_hash: "hash-0",
        role,
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Clinics `cln_a`, `cln_b`, `cln_c`, and accounts `usr_1` (ann, clinician, in `cln_c` and
/// `cln_a`, given in that order) and `usr_2` (bob, receptionist, in no clinic).
async fn seed(s: &Store) {
    s.write(|w| {
        for id in ["cln_a", "cln_b", "cln_c"] {
            let c = ClinicFields {
                name: "North",
                timezone: "Europe/Vienna",
                ticket_prefix: "A",
                country: None,
            };
            clinics::insert(w, id, &c, NOW)?;
        }
        assert!(users::insert(
            w,
            "usr_1",
            &account("ann", "clinician"),
            NOW
        )?);
        assert!(users::insert(
            w,
            "usr_2",
            &account("bob", "receptionist"),
            NOW
        )?);
        users::set_clinics(w, "usr_1", &ids(&["cln_c", "cln_a"]))?;
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_id_or_a_username_is_stored_once_even_after_its_account_was_deleted() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let again = s
            .write(|w| users::insert(w, "usr_1", &account("other", "admin"), NOW))
            .await;
        assert_eq!(again, Ok(false), "{}: the id is taken", e.name);
        let same_name = s
            .write(|w| users::insert(w, "usr_9", &account("ann", "admin"), NOW))
            .await;
        assert_eq!(same_name, Ok(false), "{}: the username is taken", e.name);

        assert_eq!(
            s.write(|w| users::delete(w, "usr_1", LATER)).await,
            Ok(true)
        );
        assert_eq!(
            s.write(|w| users::delete(w, "usr_1", LATER)).await,
            Ok(false),
            "{}: only a live account is deleted",
            e.name
        );
        let reused = s
            .write(|w| users::insert(w, "usr_9", &account("ann", "admin"), NOW))
            .await;
        assert_eq!(reused, Ok(false), "{}: a deleted name stays taken", e.name);
        // Deleted accounts count: the first start asks whether any account was ever made.
        assert_eq!(s.read(users::count).await, Ok(2), "{}", e.name);
    }
}

#[tokio::test]
async fn an_account_is_found_with_its_clinics_sorted_and_a_deleted_one_as_a_tombstone() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert_eq!(ann.clinic_ids, ["cln_a", "cln_c"], "{}", e.name);
        assert_eq!(
            (ann.username.as_str(), ann.role.as_str(), ann.active),
            ("ann", "clinician", true)
        );
        assert_eq!((ann.version, ann.deleted_at), (1, None), "{}", e.name);
        assert_eq!(
            (ann.created_at.as_str(), ann.updated_at.as_str()),
            (NOW, NOW)
        );

        let bob = s.read(|r| users::find(r, "usr_2")).await.unwrap().unwrap();
        assert!(bob.clinic_ids.is_empty(), "{}: no clinic, no id", e.name);

        s.write(|w| users::delete(w, "usr_2", LATER)).await.unwrap();
        let gone = s.read(|r| users::find(r, "usr_2")).await.unwrap().unwrap();
        assert_eq!(gone.deleted_at.as_deref(), Some(LATER), "{}", e.name);
        assert_eq!((gone.active, gone.version), (false, 2), "{}", e.name);
        assert_eq!(s.read(|r| users::find(r, "usr_x")).await, Ok(None));
    }
}

#[tokio::test]
async fn live_accounts_page_by_id_whatever_their_clinics_and_deleted_ones_are_left_out() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        s.write(|w| {
            users::insert(w, "usr_3", &account("cid", "admin"), NOW)?;
            users::insert(w, "usr_4", &account("dee", "admin"), NOW)?;
            users::delete(w, "usr_3", LATER)
        })
        .await
        .unwrap();
        let page = |after: &'static str| s.read(move |r| users::list(r, after, 1));
        let first = page("").await.unwrap();
        // One per page plus the one that says there is more; ann's two clinics are not two.
        let names: Vec<_> = first.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["ann", "bob"], "{}", e.name);
        assert_eq!(first[0].clinic_ids, ["cln_a", "cln_c"], "{}", e.name);
        assert!(first[1].clinic_ids.is_empty(), "{}", e.name);
        let next: Vec<_> = page("usr_2")
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(next, ["usr_4"], "{}: the deleted usr_3 is skipped", e.name);
        assert_eq!(page("usr_4").await, Ok(vec![]), "{}", e.name);
    }
}

#[tokio::test]
async fn an_update_applies_only_at_the_current_version_and_keeps_the_password_unless_given() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let keep = UserChange {
            role: "admin",
            active: true,
            password_hash: None,
        };
        let stale = s
            .write(move |w| users::update(w, "usr_1", 2, &keep, LATER))
            .await;
        assert_eq!(
            stale,
            Ok(false),
            "{}: a stale version changes nothing",
            e.name
        );
        let done = s
            .write(move |w| users::update(w, "usr_1", 1, &keep, LATER))
            .await;
        assert_eq!(done, Ok(true), "{}", e.name);
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert_eq!((ann.role.as_str(), ann.version), ("admin", 2), "{}", e.name);
        assert_eq!(ann.updated_at, LATER, "{}", e.name);
        let creds = s
            .read(|r| users::credentials(r, "ann"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(creds.password_hash, "hash-0", "{}: no new password", e.name);

        let off = UserChange {
            role: "clinician",
            active: false,
            password_hash: Some("hash-1"),
        };
        let done = s
            .write(move |w| users::update(w, "usr_1", 2, &off, LATER))
            .await;
        assert_eq!(done, Ok(true), "{}", e.name);
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert_eq!((ann.active, ann.version), (false, 3), "{}", e.name);

        s.write(|w| users::delete(w, "usr_2", LATER)).await.unwrap();
        let gone = s
            .write(move |w| users::update(w, "usr_2", 2, &keep, LATER))
            .await;
        assert_eq!(
            gone,
            Ok(false),
            "{}: a deleted account is not updated",
            e.name
        );
    }
}

#[tokio::test]
async fn sign_in_finds_only_active_live_accounts_and_names_find_live_ones_active_or_not() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let ann = s.read(|r| users::credentials(r, "ann")).await;
        let want = Credentials {
            user_id: "usr_1".into(),
            password_hash: "hash-0".into(),
        };
        assert_eq!(ann, Ok(Some(want)), "{}", e.name);
        // The app folds names before asking: the store compares them exactly.
        assert_eq!(s.read(|r| users::credentials(r, "ANN")).await, Ok(None));

        let off = UserChange {
            role: "clinician",
            active: false,
            password_hash: None,
        };
        s.write(move |w| users::update(w, "usr_1", 1, &off, LATER))
            .await
            .unwrap();
        let inactive = s.read(|r| users::credentials(r, "ann")).await;
        assert_eq!(
            inactive,
            Ok(None),
            "{}: an inactive account signs in not",
            e.name
        );
        let id = s.read(|r| users::id_by_name(r, "ann")).await;
        assert_eq!(id, Ok(Some("usr_1".into())), "{}", e.name);
        let named = s.read(|r| users::find_by_name(r, "ann")).await.unwrap();
        assert_eq!(named.map(|u| u.clinic_ids), Some(ids(&["cln_a", "cln_c"])));

        s.write(|w| users::delete(w, "usr_2", LATER)).await.unwrap();
        assert_eq!(s.read(|r| users::id_by_name(r, "bob")).await, Ok(None));
        assert_eq!(s.read(|r| users::find_by_name(r, "bob")).await, Ok(None));
        assert_eq!(s.read(|r| users::credentials(r, "bob")).await, Ok(None));
    }
}

#[tokio::test]
async fn a_password_changes_only_while_the_hash_its_owner_proved_is_still_current() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let set = |was: &'static str, hash: &'static str| {
            s.write(move |w| users::set_password_of(w, "usr_1", was, hash, LATER))
        };
        assert_eq!(set("hash-x", "hash-1").await, Ok(false), "{}", e.name);
        assert_eq!(set("hash-0", "hash-1").await, Ok(true), "{}", e.name);
        assert_eq!(
            set("hash-0", "hash-2").await,
            Ok(false),
            "{}: the first change wins",
            e.name
        );
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert_eq!((ann.version, ann.updated_at.as_str()), (2, LATER));
        let creds = s
            .read(|r| users::credentials(r, "ann"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(creds.password_hash, "hash-1", "{}", e.name);

        s.write(|w| users::delete(w, "usr_1", LATER)).await.unwrap();
        assert_eq!(
            set("hash-1", "hash-3").await,
            Ok(false),
            "{}: deleted",
            e.name
        );
    }
}

#[tokio::test]
async fn the_operator_sets_a_password_by_username_of_a_live_account_active_or_not() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let off = UserChange {
            role: "receptionist",
            active: false,
            password_hash: None,
        };
        s.write(move |w| users::update(w, "usr_2", 1, &off, NOW))
            .await
            .unwrap();
        let by_name = |name: &'static str| {
            s.write(move |w| users::set_password_by_name(w, name, "hash-9", LATER))
        };
        assert_eq!(by_name("bob").await, Ok(Some("usr_2".into())), "{}", e.name);
        let bob = s.read(|r| users::find(r, "usr_2")).await.unwrap().unwrap();
        assert_eq!((bob.version, bob.active), (3, false), "{}", e.name);
        assert_eq!(by_name("nobody").await, Ok(None), "{}", e.name);

        s.write(|w| users::delete(w, "usr_2", LATER)).await.unwrap();
        assert_eq!(by_name("bob").await, Ok(None), "{}: deleted", e.name);
    }
}

#[tokio::test]
async fn the_first_unknown_clinic_is_named_by_position_and_clinics_are_replaced_whole() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let unknown = |v: Vec<String>| s.read(move |r| users::first_unknown_clinic(r, &v));
        assert_eq!(
            unknown(ids(&["cln_a", "cln_x", "cln_y"])).await,
            Ok(Some(1))
        );
        assert_eq!(
            unknown(ids(&["cln_c", "cln_b"])).await,
            Ok(None),
            "{}",
            e.name
        );
        assert_eq!(unknown(vec![]).await, Ok(None), "{}", e.name);

        // A repeated id counts once and the old clinics go.
        s.write(|w| users::set_clinics(w, "usr_1", &ids(&["cln_b", "cln_b"])))
            .await
            .unwrap();
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert_eq!(ann.clinic_ids, ["cln_b"], "{}", e.name);
        s.write(|w| users::set_clinics(w, "usr_1", &[]))
            .await
            .unwrap();
        let ann = s.read(|r| users::find(r, "usr_1")).await.unwrap().unwrap();
        assert!(ann.clinic_ids.is_empty(), "{}", e.name);
    }
}

#[tokio::test]
async fn the_first_start_sees_an_active_admin_only_in_a_live_active_admin_account() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let any = || s.read(|r| users::any_active_with_role(r, "admin"));
        assert_eq!(
            any().await,
            Ok(false),
            "{}: clinicians are not admins",
            e.name
        );

        s.write(|w| users::insert(w, "usr_a", &account("admin", "admin"), NOW))
            .await
            .unwrap();
        assert_eq!(any().await, Ok(true), "{}", e.name);
        let off = UserChange {
            role: "admin",
            active: false,
            password_hash: None,
        };
        s.write(move |w| users::update(w, "usr_a", 1, &off, LATER))
            .await
            .unwrap();
        assert_eq!(any().await, Ok(false), "{}: deactivated", e.name);
        // What start-up then reactivates: the `admin` account, its role and version.
        let admin = s.read(|r| users::find_by_name(r, "admin")).await.unwrap();
        let admin = admin.unwrap();
        assert_eq!(
            (
                admin.id.as_str(),
                admin.role.as_str(),
                admin.active,
                admin.version
            ),
            ("usr_a", "admin", false, 2)
        );

        s.write(|w| {
            users::insert(w, "usr_b", &account("boss", "admin"), NOW)?;
            users::delete(w, "usr_b", LATER)
        })
        .await
        .unwrap();
        assert_eq!(any().await, Ok(false), "{}: deleted", e.name);
    }
}

#[tokio::test]
async fn a_token_names_its_owner_with_sorted_clinics_until_it_expires_or_is_revoked() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        let stored = s
            .write(|w| {
                users::insert_token(w, "tok_2", "usr_1", T0, T0 + 60)?;
                users::insert_token(w, "tok_1", "usr_1", T0, T0 + 60)
            })
            .await;
        assert_eq!(stored, Ok(true), "{}", e.name);
        let twice = s
            .write(|w| users::insert_token(w, "tok_1", "usr_2", T0, T0 + 60))
            .await;
        assert_eq!(twice, Ok(false), "{}: one hash, one token", e.name);

        let owner = |at: i64| s.read(move |r| users::token_owner(r, "tok_1", at));
        let ann = TokenOwner {
            user_id: "usr_1".into(),
            username: "ann".into(),
            role: "clinician".into(),
            clinic_ids: ids(&["cln_a", "cln_c"]),
        };
        assert_eq!(owner(T0 + 59).await, Ok(Some(ann)), "{}", e.name);
        assert_eq!(owner(T0 + 60).await, Ok(None), "{}: expired at", e.name);
        assert_eq!(
            s.read(|r| users::token_owner(r, "tok_x", T0)).await,
            Ok(None)
        );

        let revoke = || s.write(|w| users::revoke_token(w, "tok_1", T0 + 1));
        assert_eq!(revoke().await, Ok(true), "{}", e.name);
        assert_eq!(revoke().await, Ok(false), "{}: revoked already", e.name);
        assert_eq!(owner(T0 + 2).await, Ok(None), "{}: revoked", e.name);
        let other = s.read(|r| users::token_owner(r, "tok_2", T0 + 2)).await;
        assert_eq!(
            other.unwrap().map(|o| o.user_id).as_deref(),
            Some("usr_1"),
            "{}: the owner's other token lives on",
            e.name
        );
    }
}

#[tokio::test]
async fn a_token_of_an_inactive_or_deleted_account_names_nobody_and_revoking_all_ends_each() {
    for e in engines::engines().await {
        let s = &e.store;
        seed(s).await;
        s.write(|w| {
            users::insert_token(w, "tok_b1", "usr_2", T0, T0 + 60)?;
            users::insert_token(w, "tok_b2", "usr_2", T0, T0 + 60)?;
            users::insert_token(w, "tok_a", "usr_1", T0, T0 + 60)
        })
        .await
        .unwrap();
        let owner = |hash: &'static str| s.read(move |r| users::token_owner(r, hash, T0));
        let bob = owner("tok_b1").await.unwrap().unwrap();
        assert!(bob.clinic_ids.is_empty(), "{}: no clinic, no id", e.name);
        assert_eq!(bob.role, "receptionist", "{}", e.name);

        let off = UserChange {
            role: "receptionist",
            active: false,
            password_hash: None,
        };
        s.write(move |w| users::update(w, "usr_2", 1, &off, LATER))
            .await
            .unwrap();
        assert_eq!(owner("tok_b1").await, Ok(None), "{}: inactive", e.name);
        s.write(|w| users::delete(w, "usr_1", LATER)).await.unwrap();
        assert_eq!(owner("tok_a").await, Ok(None), "{}: deleted", e.name);

        let n = s
            .write(|w| users::revoke_tokens_of(w, "usr_2", T0 + 1))
            .await;
        assert_eq!(n, Ok(2), "{}", e.name);
        let again = s
            .write(|w| users::revoke_tokens_of(w, "usr_2", T0 + 2))
            .await;
        assert_eq!(again, Ok(0), "{}: revoked already", e.name);
        // Made active again, the account's old sessions stay ended.
        let on = UserChange {
            active: true,
            ..off
        };
        s.write(move |w| users::update(w, "usr_2", 2, &on, LATER))
            .await
            .unwrap();
        assert_eq!(owner("tok_b2").await, Ok(None), "{}", e.name);
    }
}
