//! What lasts on disk: answered units survive a reopen, migrations are recorded as sqlx
//! records them and applied once, backups are whole.
mod common;

use careq_store::{ReadExt, StoreError};
use careq_store_sqlite::{Migration, SqliteEngine};
use common::{insert, names, TestDb};
use sha2::{Digest, Sha384};

#[tokio::test]
async fn a_unit_answered_ok_is_there_after_the_engine_is_dropped_and_the_file_reopened() {
    let db = TestDb::new();
    let store = db.open();
    insert(&store, "durable").await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(db.options().path).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM items WHERE name = 'durable'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    assert_eq!(names(&db.open()).await, ["durable"]);
}

const MIGRATIONS: &[Migration<'static>] = &[
    (
        1,
        "items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    ),
    // Not idempotent: applying it twice would fail on the primary key.
    (
        2,
        "first item",
        "INSERT INTO items (id, name) VALUES (1, 'seed');",
    ),
];

fn recorded(db: &TestDb) -> Vec<(i64, String, bool, Vec<u8>, i64)> {
    let conn = rusqlite::Connection::open(db.options().path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT version, description, success, checksum, execution_time
             FROM _sqlx_migrations ORDER BY version",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn migrations_are_applied_once_and_recorded_as_sqlx_records_them() {
    let db = TestDb::new();
    drop(SqliteEngine::open(db.options(), MIGRATIONS).unwrap());
    let first = recorded(&db);
    assert_eq!(first.len(), 2);
    for ((version, description, success, checksum, nanos), (v, d, sql)) in
        first.iter().zip(MIGRATIONS)
    {
        assert_eq!((version, description.as_str(), success), (v, *d, &true));
        assert_eq!(checksum, &Sha384::digest(sql.as_bytes()).to_vec());
        assert!(*nanos >= 0);
    }
    let engine = SqliteEngine::open(db.options(), MIGRATIONS).unwrap();
    assert_eq!(recorded(&db), first, "the second open applied nothing");
    let store = careq_store::Store::new(std::sync::Arc::new(engine));
    assert_eq!(names(&store).await, ["seed"]);
}

#[tokio::test]
async fn a_later_migration_is_applied_to_a_database_that_has_the_earlier_ones() {
    let db = TestDb::new();
    drop(SqliteEngine::open(db.options(), &MIGRATIONS[..1]).unwrap());
    drop(SqliteEngine::open(db.options(), MIGRATIONS).unwrap());
    let versions: Vec<i64> = recorded(&db).iter().map(|r| r.0).collect();
    assert_eq!(versions, [1, 2]);
}

#[test]
fn a_database_in_doubt_is_refused() {
    let cases: [(&str, &str); 3] = [
        (
            "a failed migration",
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2",
        ),
        (
            "a changed migration",
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
        ),
        (
            "a migration this build does not know",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (3, 'future', TRUE, x'00', 0)",
        ),
    ];
    for (case, tamper) in cases {
        let db = TestDb::new();
        drop(SqliteEngine::open(db.options(), MIGRATIONS).unwrap());
        let conn = rusqlite::Connection::open(db.options().path).unwrap();
        conn.execute(tamper, []).unwrap();
        drop(conn);
        let out = SqliteEngine::open(db.options(), MIGRATIONS).err();
        assert!(matches!(out, Some(StoreError::Other(_))), "{case}: {out:?}");
    }
}

#[test]
fn a_failing_migration_leaves_nothing_behind() {
    let db = TestDb::new();
    let broken: &[Migration<'_>] = &[(1, "broken", "CREATE TABLE a (x); SELEC oops;")];
    assert!(SqliteEngine::open(db.options(), broken).is_err());
    let conn = rusqlite::Connection::open(db.options().path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    assert!(recorded(&db).is_empty());
}

#[tokio::test]
async fn a_backup_is_the_whole_database_and_answers_ping() {
    let db = TestDb::new();
    let (store, engine) = db.open_with(db.options());
    insert(&store, "kept").await.unwrap();
    assert!(engine.ping().await);
    let to = db.dir.path().join("copy.db");
    engine.backup(&to).await.unwrap();
    assert!(
        engine.backup(&to).await.is_err(),
        "an existing file is not overwritten"
    );
    let copy = rusqlite::Connection::open(&to).unwrap();
    let n: i64 = copy
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let one = store.read(|r| r.int("SELECT 1", &[])).await;
    assert_eq!(one, Ok(Some(1)));
}
