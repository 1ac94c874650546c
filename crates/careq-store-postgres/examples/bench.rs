//! Figures for the PostgreSQL engine on a database of its own (created, then dropped):
//! (a) durable inserts — each unit inserts one row into a table with two secondary indexes and
//! reads a counter — and (b) point reads by primary key, each from 64 concurrent tasks.
//!
//! `cargo run --release -p careq-store-postgres --example bench -- [SECONDS] [SERVER_URL]`
//! (defaults: 5, postgres://postgres@127.0.0.1:5432).
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use careq_store::{ReadExt, Store, StoreError};
use careq_store_postgres::{Migration, PgEngine, PgOptions};

const TASKS: usize = 64;

static SCHEMA: &[Migration] = &[(
    1,
    "bench",
    "CREATE TABLE events (
        id     TEXT PRIMARY KEY,
        clinic TEXT NOT NULL,
        at     BIGINT NOT NULL,
        body   TEXT NOT NULL
    );
    CREATE INDEX events_clinic ON events (clinic, at);
    CREATE INDEX events_at ON events (at);
    CREATE TABLE counters (id TEXT PRIMARY KEY, n BIGINT NOT NULL);
    INSERT INTO counters VALUES ('c', 41);",
)];

fn admin(server: &str, sql: &str) {
    let (server, sql) = (server.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
            .expect("the server is reachable");
        c.batch_execute(&sql).expect("an admin statement");
    })
    .join()
    .expect("admin thread");
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let server = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("careq_bench_{:x}", RandomState::new().hash_one(0u8));
    admin(&server, &format!("CREATE DATABASE {name}"));

    let mut o = PgOptions::new(&format!("{server}/{name}"));
    o.migrations = SCHEMA;
    let engine = Arc::new(PgEngine::open(o).await.expect("the engine opens"));
    let store = Store::new(engine.clone());
    let run = Duration::from_secs(secs);
    println!("PostgreSQL engine, {TASKS} tasks, {secs} s each, default pools");

    let s = store.clone();
    let inserts = drive(run, move |task, i| {
        let store = s.clone();
        async move {
            store
                .write_data(move |w| {
                    let id = format!("t{task}-{i}");
                    let clinic = format!("clinic-{}", i % 16);
                    w.execute(
                        "INSERT INTO events (id, clinic, at, body) VALUES ($1, $2, $3, $4)",
                        &[
                            (&id).into(),
                            (&clinic).into(),
                            (i as i64).into(),
                            "an event".into(),
                        ],
                    )?;
                    w.int("SELECT n FROM counters WHERE id = $1", &["c".into()])
                })
                .await
                .map(|_| ())
        }
    })
    .await;
    report("(a) durable inserts", &inserts, run);

    let written = inserts.ok as u64;
    let s = store.clone();
    let reads = drive(run, move |task, i| {
        let store = s.clone();
        async move {
            // A row the inserts wrote: task t's i-th, spread over what exists.
            let id = format!("t{}-{}", task, i % (written / TASKS as u64).max(1));
            store
                .read(move |r| {
                    r.first(
                        "SELECT body, at FROM events WHERE id = $1",
                        &[(&id).into()],
                        |row| Ok((row.text(0)?, row.int(1)?)),
                    )
                })
                .await
                .map(|_| ())
        }
    })
    .await;
    report("(b) point reads by primary key", &reads, run);

    drop(store);
    drop(engine);
    admin(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

struct Figures {
    ok: usize,
    failed: usize,
    latencies: Vec<Duration>,
}

/// Runs `unit(task, i)` from `TASKS` tasks, each one after another, until `run` has passed.
async fn drive<F, Fut>(run: Duration, unit: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send,
{
    let end = Instant::now() + run;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let unit = unit.clone();
            tokio::spawn(async move {
                let (mut lat, mut failed, mut i) = (Vec::new(), 0, 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    match unit(task, i).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => failed += 1,
                    }
                    i += 1;
                }
                (lat, failed)
            })
        })
        .collect();
    let mut f = Figures {
        ok: 0,
        failed: 0,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (lat, failed) = t.await.expect("a bench task");
        f.ok += lat.len();
        f.failed += failed;
        f.latencies.extend(lat);
    }
    f.latencies.sort();
    f
}

fn report(what: &str, f: &Figures, run: Duration) {
    let at = |q: f64| {
        f.latencies
            .get(((f.latencies.len() as f64 * q) as usize).min(f.latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{what}: {:.0} units/s ({} ok, {} failed), p50 {:.2} ms, p99 {:.2} ms",
        f.ok as f64 / run.as_secs_f64(),
        f.ok,
        f.failed,
        at(0.50),
        at(0.99)
    );
}
