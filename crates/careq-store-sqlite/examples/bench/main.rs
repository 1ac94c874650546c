//! Throughput and latency of the SQLite engine, and of the same work through sqlx on a tokio
//! task writer (today's engine), on one temp file each:
//! (a) durable inserts: each unit reads and bumps a counter and inserts one row with two
//!     indexes, 64 concurrent tasks; (b) point reads by primary key, 64 concurrent tasks.
//!
//! `cargo run --release -p careq-store-sqlite --example bench [seconds]` (default 5).
mod sqlx_side;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use careq_store::{ReadExt, Store, StoreError, Value};
use careq_store_sqlite::{Migration, SqliteEngine, SqliteOptions};

const TASKS: u64 = 64;

pub const SCHEMA: &str = "
    CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO counter (id, n) VALUES (1, 0);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        clinic TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX events_by_clinic ON events (clinic, seq);
    CREATE INDEX events_by_body ON events (body);";

pub const READ_COUNTER: &str = "SELECT n FROM counter WHERE id = 1";
pub const BUMP_COUNTER: &str = "UPDATE counter SET n = $1 WHERE id = 1";
pub const INSERT_EVENT: &str = "INSERT INTO events (clinic, seq, body) VALUES ($1, $2, $3)";
pub const READ_EVENT: &str = "SELECT clinic, seq, body FROM events WHERE id = $1";

/// What one scenario measured.
pub struct Figures {
    units: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Figures {
    fn print(mut self, name: &str) {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
            self.latencies[i].as_secs_f64() * 1e3
        };
        println!(
            "{name:<44} {:>9.0} units/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} units, {} errors)",
            self.units as f64 / self.elapsed.as_secs_f64(),
            at(0.50),
            at(0.99),
            self.units,
            self.errors,
        );
    }
}

/// Runs `unit(task, i)` from `TASKS` concurrent tasks until `secs` have passed.
pub async fn drive<F, Fut>(secs: u64, unit: F) -> Figures
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let unit = Arc::new(unit);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let unit = unit.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0);
                let mut i = 0;
                while Instant::now() < end {
                    let began = Instant::now();
                    if !unit(t, i).await {
                        errors += 1;
                    }
                    lat.push(began.elapsed());
                    i += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut figures = Figures {
        units: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
    };
    for t in tasks {
        let (lat, errors) = t.await.unwrap();
        figures.latencies.extend(lat);
        figures.errors += errors;
    }
    figures.elapsed = start.elapsed();
    figures.units = figures.latencies.len();
    figures
}

/// A cheap spread of ids over `1..=max`, different per task.
pub fn pick(task: u64, i: u64, max: i64) -> i64 {
    let mut x = (task << 32 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x >> 29;
    (x % max.max(1) as u64) as i64 + 1
}

pub fn body(task: u64, i: u64) -> String {
    format!("event {task}-{i} {}", "x".repeat(64))
}

async fn engine(dir: &std::path::Path, secs: u64) -> Result<(), StoreError> {
    let migrations: [Migration<'_>; 1] = [(1, "bench", SCHEMA)];
    let engine = SqliteEngine::open(SqliteOptions::new(dir.join("engine.db")), &migrations)?;
    let store = Store::new(Arc::new(engine));

    let s = store.clone();
    let figures = drive(secs, move |t, i| {
        let s = s.clone();
        async move {
            let body = body(t, i);
            s.write_data(move |w| {
                let n = w.int(READ_COUNTER, &[])?.unwrap_or(0) + 1;
                w.execute(BUMP_COUNTER, &[n.into()])?;
                let clinic = format!("clinic-{}", t % 8);
                let params = [Value::Text(&clinic), n.into(), Value::Text(&body)];
                w.execute(INSERT_EVENT, &params)
            })
            .await
            .is_ok()
        }
    })
    .await;
    figures.print("careq-store-sqlite: durable inserts");

    let rows = store
        .read(|r| r.int("SELECT count(*) FROM events", &[]))
        .await?;
    let rows = rows.unwrap_or(0);
    let s = store.clone();
    let figures = drive(secs, move |t, i| {
        let s = s.clone();
        async move {
            let id = pick(t, i, rows);
            s.read(move |r| r.first(READ_EVENT, &[id.into()], |row| row.text(2)))
                .await
                .is_ok_and(|b| b.is_some())
        }
    })
    .await;
    figures.print("careq-store-sqlite: point reads");
    Ok(())
}

fn main() {
    let secs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{TASKS} tasks, {secs} s per scenario, {} cores, files in {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        dir.path().display()
    );
    rt.block_on(async {
        engine(dir.path(), secs).await.unwrap();
        sqlx_side::run(dir.path(), secs).await.unwrap();
    });
}
