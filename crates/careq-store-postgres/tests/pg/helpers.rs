//! A fresh database per test, created and dropped (WITH (FORCE)) on the local server, and an
//! engine opened on it with the test schema.
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use careq_store::Store;
use careq_store_postgres::{Migration, PgEngine, PgOptions};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub static SCHEMA: &[Migration] = &[
    (
        1,
        "items",
        "CREATE TABLE items (
            id    TEXT PRIMARY KEY,
            name  TEXT NOT NULL UNIQUE,
            n     BIGINT NOT NULL DEFAULT 0,
            score DOUBLE PRECISION,
            data  BYTEA,
            note  TEXT
        );
        CREATE INDEX items_n ON items (n);",
    ),
    (
        2,
        "counters",
        "CREATE TABLE counters (id TEXT PRIMARY KEY, n BIGINT NOT NULL);
        INSERT INTO counters VALUES ('c', 0);",
    ),
];

/// Runs blocking client code off the async runtime (the sync client has a runtime of its own).
pub fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("blocking code panicked"))
}

/// Runs `sql` on the server's `test` database.
pub fn admin(sql: &str) {
    blocking(|| {
        let mut c = postgres::Client::connect(&format!("{SERVER}/test"), postgres::NoTls)
            .expect("the test server at 127.0.0.1:5432 is reachable");
        c.batch_execute(sql).expect("an admin statement");
    })
}

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = format!("careq_e_{:016x}", RandomState::new().hash_one(0u8));
        admin(&format!("CREATE DATABASE {name}"));
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    pub fn options(&self) -> PgOptions {
        let mut o = PgOptions::new(&self.url());
        o.writers = 4;
        o.readers = 2;
        o.migrations = SCHEMA;
        o
    }

    /// Runs `sql` on this database, outside any engine; the rows of the last statement's
    /// first column as text.
    pub fn sql(&self, sql: &str) -> Vec<String> {
        let url = self.url();
        blocking(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let rows = c.simple_query(sql).expect("a statement of the test");
            rows.iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .collect()
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// An engine on `db` with `o`, as a store and as itself.
pub async fn open(o: PgOptions) -> (Store, Arc<PgEngine>) {
    let engine = Arc::new(PgEngine::open(o).await.expect("the engine opens"));
    (Store::new(engine.clone()), engine)
}
