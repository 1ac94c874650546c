//! careq's own migrations, applied by sqlx as careq applies them today, are recognised by the
//! engine; and a database the engine migrated satisfies sqlx's migrator.
mod common;

use std::path::PathBuf;

use careq_store_sqlite::SqliteEngine;
use common::TestDb;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn careq_migrations() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite")
}

/// `NNNN_some_words.sql` files as (version, description, SQL), as sqlx reads them.
fn read_migrations() -> Vec<(i64, String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(careq_migrations())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
            let (version, words) = stem.split_once('_').unwrap();
            let sql = std::fs::read_to_string(&p).unwrap();
            (version.parse().unwrap(), words.replace('_', " "), sql)
        })
        .collect();
    out.sort();
    out
}

async fn sqlx_migrate(db: &TestDb) -> usize {
    let mut conn = SqliteConnectOptions::new()
        .filename(db.options().path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    Migrator::new(careq_migrations())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n as usize
}

#[tokio::test]
async fn a_database_that_sqlx_migrated_is_recognised_and_left_as_it_is() {
    let owned = read_migrations();
    let migrations: Vec<_> = owned
        .iter()
        .map(|(v, d, s)| (*v, d.as_str(), s.as_str()))
        .collect();
    let db = TestDb::new();
    assert_eq!(sqlx_migrate(&db).await, migrations.len());
    drop(SqliteEngine::open(db.options(), &migrations).unwrap());
    assert_eq!(sqlx_migrate(&db).await, migrations.len());
}

#[tokio::test]
async fn a_database_the_engine_migrated_satisfies_sqlx() {
    let owned = read_migrations();
    let migrations: Vec<_> = owned
        .iter()
        .map(|(v, d, s)| (*v, d.as_str(), s.as_str()))
        .collect();
    let db = TestDb::new();
    drop(SqliteEngine::open(db.options(), &migrations).unwrap());
    // sqlx refuses a changed or unknown migration: running clean means it found them its own.
    assert_eq!(sqlx_migrate(&db).await, migrations.len());
}
