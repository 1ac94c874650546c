//! The engine's own tests, run when `CAREQ_TEST_DATABASE_URL` names a PostgreSQL server (each on
//! a database of its own, dropped afterwards); without it they say so and pass.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;

use super::*;
use crate::clinics::domain::ValidClinic;
use crate::patients::domain::{SearchFilters, Sort};
use crate::store::Store;

/// A database of the test's own on the test server, dropped when this is.
struct TestDb {
    server: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> Option<TestDb> {
        let Some(server) = std::env::var("CAREQ_TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
        else {
            eprintln!("CAREQ_TEST_DATABASE_URL is not set: PostgreSQL engine test skipped");
            return None;
        };
        let name = format!("careq_u_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = server.split('?').next().unwrap_or(&server);
        let host_end = base[base.find("://").unwrap() + 3..]
            .find('/')
            .map_or(base.len(), |i| base.find("://").unwrap() + 3 + i);
        let url = format!("{}/{name}", &base[..host_end]);
        Some(TestDb { server, name, url })
    }

    fn options(&self) -> Options {
        Options {
            url: self.url.clone(),
            max_bytes: None,
            busy_timeout: Duration::from_secs(5),
            write_queue: 4096,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await
                })
        })
        .join();
    }
}

async fn clinic(db: &Store, id: &'static str) {
    db.write(move |tx| {
        Box::pin(async move {
            let c = ValidClinic::parse(id, "Europe/Vienna", "A", None).unwrap();
            tx.insert_clinic(id, &c).await?;
            Ok(())
        })
    })
    .await
    .unwrap();
}

/// The plan of each search shape, with sequential scans priced out of reach: if any filter had
/// no index that could serve it, PostgreSQL would still have to walk the table.
#[tokio::test]
async fn every_search_filter_is_served_by_an_index() {
    let Some(tdb) = TestDb::create().await else {
        return;
    };
    let engine = PgEngine::open(tdb.options()).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let text = |v: &str| Some(v.to_string());
    let shapes = [
        (
            "name prefix",
            SearchFilters {
                q: text("lovel"),
                ..SearchFilters::default()
            },
        ),
        (
            "mrn",
            SearchFilters {
                mrn: text("M0500000"),
                ..SearchFilters::default()
            },
        ),
        (
            "phone",
            SearchFilters {
                phone: text("+436641234567"),
                ..SearchFilters::default()
            },
        ),
        (
            "date of birth",
            SearchFilters {
                date_of_birth: text("1980-01-01"),
                ..SearchFilters::default()
            },
        ),
        (
            "clinic",
            SearchFilters {
                clinic_id: text("cln_1"),
                ..SearchFilters::default()
            },
        ),
        (
            "name and clinic",
            SearchFilters {
                q: text("lovel"),
                clinic_id: text("cln_1"),
                ..SearchFilters::default()
            },
        ),
        (
            "name and date of birth",
            SearchFilters {
                q: text("lovel"),
                date_of_birth: text("1980-01-01"),
                ..SearchFilters::default()
            },
        ),
        (
            "two words, any order",
            SearchFilters {
                q: text("smith, jo"),
                ..SearchFilters::default()
            },
        ),
        (
            "email",
            SearchFilters {
                email: text("jo@example.org"),
                ..SearchFilters::default()
            },
        ),
        (
            "name, by registration",
            SearchFilters {
                q: text("o'bri"),
                sort: Sort::Created,
                ..SearchFilters::default()
            },
        ),
        (
            "name, by birth date",
            SearchFilters {
                q: text("jo sm"),
                sort: Sort::BirthDate,
                ..SearchFilters::default()
            },
        ),
        (
            "clinic, by registration",
            SearchFilters {
                clinic_id: text("cln_1"),
                sort: Sort::Created,
                ..SearchFilters::default()
            },
        ),
        ("nothing", SearchFilters::default()),
        (
            "nothing, by registration",
            SearchFilters {
                sort: Sort::Created,
                ..SearchFilters::default()
            },
        ),
        (
            "nothing, by birth date",
            SearchFilters {
                sort: Sort::BirthDate,
                ..SearchFilters::default()
            },
        ),
    ];
    let one = ["cln_1".to_string()];
    let two = ["cln_1".to_string(), "cln_2".to_string()];
    for member in [None, Some(&one[..]), Some(&two[..])] {
        for (name, f) in &shapes {
            let (sql, binds) = patients::search_sql(member, f, "", 50);
            let explain = format!("EXPLAIN {sql}");
            let mut q = sqlx::query_scalar::<_, String>(&explain);
            for b in binds {
                q = match b {
                    patients::Bind::Text(t) => q.bind(t),
                    patients::Bind::Texts(t) => q.bind(t),
                    patients::Bind::Int(n) => q.bind(n),
                };
            }
            let plan = q.fetch_all(&mut conn).await.unwrap();
            assert!(
                !plan
                    .iter()
                    .any(|step| step.contains("Seq Scan on patients")),
                "{name} ({member:?}) walks the table: {plan:#?}"
            );
            assert!(
                plan.iter().any(|s| s.contains("Index")),
                "{name} ({member:?}): {plan:#?}"
            );
        }
    }
    engine.close().await;
}

#[tokio::test]
async fn units_that_deadlock_are_run_again_and_both_commit() {
    let Some(tdb) = TestDb::create().await else {
        return;
    };
    let db = Store::open(tdb.options()).await.unwrap();
    clinic(&db, "cln_a").await;
    clinic(&db, "cln_b").await;
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    // Each unit locks one clinic's row, waits for the other to lock the other row (only on
    // the first run of each), then wants the other's: a deadlock PostgreSQL breaks by aborting
    // one of them, which the engine runs again.
    let unit = |first: &'static str, second: &'static str| {
        let (db, runs, barrier) = (db.clone(), runs.clone(), barrier.clone());
        tokio::spawn(async move {
            db.write(move |tx| {
                let (runs, barrier) = (runs.clone(), barrier.clone());
                Box::pin(async move {
                    let first_run = runs.fetch_add(1, Ordering::SeqCst) < 2;
                    tx.set_board_key_hash(first, "h1").await?;
                    if first_run {
                        barrier.wait().await;
                    }
                    tx.set_board_key_hash(second, "h2").await?;
                    Ok(())
                })
            })
            .await
        })
    };
    let (a, b) = (unit("cln_a", "cln_b"), unit("cln_b", "cln_a"));
    assert!(a.await.unwrap().is_ok());
    assert!(b.await.unwrap().is_ok());
    assert_eq!(runs.load(Ordering::SeqCst), 3, "the loser ran once more");
    db.close().await;
}

#[tokio::test]
async fn a_refusal_is_answered_not_retried_and_errors_are_classified() {
    let Some(tdb) = TestDb::create().await else {
        return;
    };
    let db = Store::open(tdb.options()).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let refused = db
        .write(move |tx| {
            let runs = counted.clone();
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tx.setting_or_insert("k", "v").await?;
                Err::<(), _>(ApiError::Conflict {
                    detail: "refused".into(),
                    existing: None,
                })
            })
        })
        .await;
    assert_eq!(refused.unwrap_err().status().code, 409);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The refused unit's write was rolled back: the first writer is the next one.
    let v = db
        .write(|tx| Box::pin(async move { Ok(tx.setting_or_insert("k", "w").await?) }))
        .await
        .unwrap();
    assert_eq!(v, "w");
    // A taken unique key is a 409, and the unit can go on after it.
    clinic(&db, "cln_same").await;
    let again = db
        .write(|tx| {
            Box::pin(async move {
                let c = ValidClinic::parse("Same", "UTC", "S", None).unwrap();
                let taken = tx.insert_clinic("cln_same", &c).await;
                assert_eq!(taken, Err(StoreError::Conflict));
                Ok(tx.find_clinic("cln_same").await?.is_some())
            })
        })
        .await
        .unwrap();
    assert!(again);
    // Reads cannot write.
    let mut reader = db.read().await.unwrap();
    let err = reader.setting_or_insert("r", "x").await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    drop(reader);
    // Backups are pg_dump's.
    let err = db.backup(std::path::Path::new("/tmp/x")).await.unwrap_err();
    assert!(err.to_string().contains("pg_dump"), "{err}");
    assert!(db.ping().await);
    db.close().await;
}

#[tokio::test]
async fn a_unit_whose_caller_goes_away_still_commits_and_leaves_no_transaction_open() {
    let Some(tdb) = TestDb::create().await else {
        return;
    };
    let db = Store::open(tdb.options()).await.unwrap();
    let waiting = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(|tx| {
                Box::pin(async move {
                    tx.setting_or_insert("slow", "1").await?;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    tx.setting_or_insert("slow2", "1").await?;
                    Ok(())
                })
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    waiting.abort();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut conn = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM meta WHERE key LIKE 'slow%'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 2, "the unit ran to its end");
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
         AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(open, 0);
    assert_eq!(db.write_queue_depth(), 0);
    db.close().await;
}

#[tokio::test]
async fn connections_the_server_ended_are_replaced_and_writes_go_on() {
    let Some(tdb) = TestDb::create().await else {
        return;
    };
    let db = Store::open(tdb.options()).await.unwrap();
    let write = |key: &'static str| {
        db.write(move |tx| Box::pin(async move { Ok(tx.setting_or_insert(key, "v").await?) }))
    };
    for key in ["a", "b", "c"] {
        write(key).await.unwrap();
    }
    drop(db.read().await.unwrap());
    // The server ends every session of careq's (what a restart or a failover does).
    let mut admin = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = 'careq'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A unit starts again on a fresh connection: the write succeeds.
    assert_eq!(write("d").await.unwrap(), "v");
    // A read on a dead pooled connection answers 503 (Busy) once; the next one works.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = async { db.read().await?.count_users().await.map_err(ApiError::from) }.await;
        answers.push(r.map_err(|e| e.status().code));
    }
    assert!(
        answers.iter().all(|a| matches!(a, Ok(0) | Err(503))),
        "{answers:?}"
    );
    assert_eq!(answers.last(), Some(&Ok(0)), "{answers:?}");
    db.close().await;
}
