//! The store's queries run against each engine careq has, on careq's real schema: SQLite on a
//! temporary file always, PostgreSQL too when `CAREQ_TEST_DATABASE_URL` names a server (a
//! database created for the test and dropped after it), as careq's own suite does.
use std::sync::Arc;

use careq_store::{schema, Store};

/// One engine under test, with what keeps its database alive.
pub struct Under {
    pub name: &'static str,
    pub store: Store,
    _keep: Keep,
}

/// Held only to be dropped last: the temporary directory, or the PostgreSQL database.
#[allow(dead_code)]
enum Keep {
    Dir(tempfile::TempDir),
    Pg(PgDb),
}

/// Every engine there is here, each on a fresh database with careq's schema.
pub async fn engines() -> Vec<Under> {
    let mut all = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = careq_store_sqlite::SqliteOptions::new(dir.path().join("careq.db"));
    let sqlite = careq_store_sqlite::SqliteEngine::open(opts, schema::SQLITE).unwrap();
    all.push(Under {
        name: "sqlite",
        store: Store::new(Arc::new(sqlite)),
        _keep: Keep::Dir(dir),
    });
    match PgDb::create() {
        Some(db) => {
            let mut opts = careq_store_postgres::PgOptions::new(&db.url);
            opts.writers = 4;
            opts.readers = 2;
            opts.migrations = schema::POSTGRES;
            let pg = careq_store_postgres::PgEngine::open(opts).await.unwrap();
            all.push(Under {
                name: "postgres",
                store: Store::new(Arc::new(pg)),
                _keep: Keep::Pg(db),
            });
        }
        None => eprintln!("PostgreSQL skipped: CAREQ_TEST_DATABASE_URL names no server"),
    }
    all
}

/// A database of its own on the test server, dropped (with its connections) at the end.
struct PgDb {
    server: String,
    name: String,
    url: String,
}

impl PgDb {
    fn create() -> Option<PgDb> {
        let url = std::env::var("CAREQ_TEST_DATABASE_URL").ok()?;
        let base = url.split('?').next().unwrap_or(&url);
        let host_start = base.find("://").map_or(0, |i| i + 3);
        let server = match base[host_start..].find('/') {
            Some(i) => base[..host_start + i].to_string(),
            None => base.to_string(),
        };
        let name = format!("careq_s_{:016x}", rand_u64());
        admin(&server, &format!("CREATE DATABASE {name}"));
        Some(PgDb {
            url: format!("{server}/{name}"),
            server,
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the server's `test` database, off the async runtime (the blocking
/// client has a runtime of its own).
fn admin(server: &str, sql: &str) {
    let url = format!("{server}/test");
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the test server");
        c.batch_execute(&sql).expect("an admin statement");
    })
    .join()
    .unwrap();
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
