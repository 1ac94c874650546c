//! Migrations: applied once whoever opens first, recorded as sqlx records them, and refused
//! when the record says a migration failed halfway or was changed since.
use careq_store::schema::checksum;
use careq_store_postgres::{Migration, PgEngine};

use crate::helpers::{blocking, TestDb, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_opening_a_new_database_at_once_apply_each_migration_once() {
    let Some(db) = TestDb::new() else { return };

    let (a, b) = blocking(|| {
        std::thread::scope(|s| {
            let a = s.spawn(|| PgEngine::open_blocking(db.options()).map(|_| ()));
            let b = s.spawn(|| PgEngine::open_blocking(db.options()).map(|_| ()));
            (a.join().unwrap(), b.join().unwrap())
        })
    });
    assert_eq!((a, b), (Ok(()), Ok(())));

    // Migration 2 inserts a row: twice applied, it would have failed on the primary key.
    assert_eq!(db.sql("SELECT count(*) FROM counters"), ["1"]);
    let recorded = db.sql(
        "SELECT string_agg(concat_ws(' ', version, description, success, encode(checksum, 'hex'), \
         execution_time >= 0, installed_on <= now()), ';' ORDER BY version) FROM _sqlx_migrations",
    );
    let want: Vec<String> = SCHEMA
        .iter()
        .map(|(v, d, sql)| format!("{v} {d} t {} t t", hex(&checksum(sql))))
        .collect();
    assert_eq!(recorded, [want.join(";")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_skips_applied_migrations_and_refuses_a_dirty_or_changed_one() {
    let Some(db) = TestDb::new() else { return };
    PgEngine::open(db.options()).await.expect("first open");
    PgEngine::open(db.options())
        .await
        .expect("an open with nothing to apply");

    static CHANGED: &[Migration] = &[(1, "items", "CREATE TABLE items (id TEXT)"), SCHEMA[1]];
    let mut o = db.options();
    o.migrations = CHANGED;
    let changed = PgEngine::open(o)
        .await
        .err()
        .expect("a changed migration is refused");
    assert!(
        changed.to_string().contains("migration 1 was changed"),
        "{changed}"
    );

    db.sql("UPDATE _sqlx_migrations SET success = false WHERE version = 2");
    let dirty = PgEngine::open(db.options())
        .await
        .err()
        .expect("a dirty database is refused");
    assert!(
        dirty.to_string().contains("migration 2 failed part-way"),
        "{dirty}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
