//! Connections: several hosts in the URL, and connections the server closed.
use careq_store::{ReadExt, StoreError};

use crate::helpers::{admin, open, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_skips_a_dead_first_host_for_the_read_write_one() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    // Port 1 refuses at once; libpq's rules say: try the next host.
    let server = crate::helpers::server().unwrap();
    let (scheme, rest) = server.split_once("://").unwrap();
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h.to_string()),
        None => (String::new(), rest.to_string()),
    };
    o.url = format!(
        "{scheme}://{user}127.0.0.1:1,{host}/{}?target_session_attrs=read-write",
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
    let Some(db) = TestDb::new() else { return };
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_on_a_server_that_turned_read_only_answers_busy_then_reconnects() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    o.writers = 1;
    let (store, _) = open(o).await;
    let insert = |id: &'static str| {
        store
            .write(move |w| w.execute("INSERT INTO items (id, name) VALUES ($1, $1)", &[id.into()]))
    };
    assert_eq!(insert("a").await, Ok(1));

    // As a demoted primary: every new session is read-only, and the old ones are gone.
    admin(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name
    ));
    db.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_eq!(insert("b").await, Err(StoreError::Busy));

    // The writer dropped that connection: once a writable server is back, the next unit
    // opens a connection to it.
    admin(&format!(
        "ALTER DATABASE {} RESET default_transaction_read_only",
        db.name
    ));
    assert_eq!(insert("c").await, Ok(1));
    assert_eq!(
        db.sql("SELECT string_agg(id, ',' ORDER BY id) FROM items"),
        ["a,c"]
    );
}
