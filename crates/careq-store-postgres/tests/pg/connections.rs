//! Connections: several hosts in the URL, and connections the server closed.
use careq_store::{ReadExt, StoreError};

use crate::helpers::{open, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_skips_a_dead_first_host_for_the_read_write_one() {
    let db = TestDb::new();
    let mut o = db.options();
    // Port 1 refuses at once; libpq's rules say: try the next host.
    o.url = format!(
        "postgres://postgres@127.0.0.1:1,127.0.0.1:5432/{}?target_session_attrs=read-write",
        db.name
    );
    let (store, engine) = open(o).await;

    let wrote = store
        .write(|w| w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[]))
        .await;
    assert_eq!(wrote, Ok(1));
    assert!(engine.ping().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closed_are_opened_again() {
    let db = TestDb::new();
    let mut o = db.options();
    o.writers = 1;
    o.readers = 1;
    let (store, engine) = open(o).await;
    let count = || store.read(|r| r.int("SELECT count(*) FROM items", &[]));
    assert_eq!(count().await, Ok(Some(0)));

    // As a server restart would: every session of the database ends.
    db.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );

    // A unit's BEGIN finds the connection gone before anything of the unit ran: it starts
    // again on a new one.
    let wrote = store
        .write(|w| w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[]))
        .await;
    assert_eq!(wrote, Ok(1));
    // A read unit runs once: the first may meet the dead connection (Busy), the next a new one.
    let first = count().await;
    assert!(
        matches!(first, Ok(Some(1)) | Err(StoreError::Busy)),
        "{first:?}"
    );
    assert_eq!(count().await, Ok(Some(1)));
    assert!(engine.ping().await);
}
