//! A fresh database per test, created and dropped (WITH (FORCE)) on the local server, and an
//! engine opened on it with the test schema.
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use careq_store::Store;
use careq_store_postgres::{Migration, PgEngine, PgOptions};

/// The server the tests run on: `CAREQ_TEST_DATABASE_URL` (as careq's own suite), its path
/// dropped. Unset, every test here says it was skipped and passes, so `cargo test --workspace`
/// needs no PostgreSQL; CI sets it.
pub fn server() -> Option<String> {
    let url = std::env::var("CAREQ_TEST_DATABASE_URL").ok()?;
    let url = url.split('?').next().unwrap_or(&url);
    let host_start = url.find("://").map_or(0, |i| i + 3);
    Some(match url[host_start..].find('/') {
        Some(i) => url[..host_start + i].to_string(),
        None => url.to_string(),
    })
}

fn server_or_panic() -> String {
    server().expect("CAREQ_TEST_DATABASE_URL is set")
}

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
        let url = format!("{}/test", server_or_panic());
        let mut c = postgres::Client::connect(&url, postgres::NoTls)
            .expect("the test server of CAREQ_TEST_DATABASE_URL is reachable");
        c.batch_execute(sql).expect("an admin statement");
    })
}

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// A new database, or `None` (saying so) when no test server is configured.
    pub fn new() -> Option<TestDb> {
        if server().is_none() {
            eprintln!("skipped: CAREQ_TEST_DATABASE_URL names no PostgreSQL server");
            return None;
        }
        let name = format!("careq_e_{:016x}", RandomState::new().hash_one(0u8));
        admin(&format!("CREATE DATABASE {name}"));
        Some(TestDb { name })
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server_or_panic(), self.name)
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
