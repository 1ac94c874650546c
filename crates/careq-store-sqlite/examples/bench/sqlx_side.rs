//! The same work through sqlx as careq runs it today: one tokio task owns the write
//! connection and commits groups (a savepoint per unit, one commit), reads go to a pool of
//! read-only connections.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::{body, drive, pick, BUMP_COUNTER, INSERT_EVENT, READ_COUNTER, READ_EVENT, SCHEMA};

struct Job {
    clinic: String,
    body: String,
    reply: oneshot::Sender<Result<(), sqlx::Error>>,
}

/// One unit: the counter read and bumped, one row inserted.
async fn unit(conn: &mut SqliteConnection, job: &Job) -> Result<(), sqlx::Error> {
    let n: i64 = sqlx::query_scalar(READ_COUNTER)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(BUMP_COUNTER)
        .bind(n + 1)
        .execute(&mut *conn)
        .await?;
    sqlx::query(INSERT_EVENT)
        .bind(&job.clinic)
        .bind(n + 1)
        .bind(&job.body)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < 512 {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let mut outs = Vec::with_capacity(group.len());
        for job in &group {
            let mut sp = Connection::begin(&mut *tx).await.unwrap();
            let out = unit(&mut sp, job).await;
            if out.is_ok() {
                sp.commit().await.unwrap();
            } else {
                sp.rollback().await.unwrap();
            }
            outs.push(out);
        }
        tx.commit().await.unwrap();
        for (job, out) in group.into_iter().zip(outs) {
            let _ = job.reply.send(out);
        }
    }
}

pub async fn run(dir: &Path, secs: u64) -> Result<(), sqlx::Error> {
    let base =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.join("sqlx.db").display()))?
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
    let mut conn = base
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("cache_size", "-32768")
        .connect()
        .await?;
    conn.execute(SCHEMA).await?;
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(writer(conn, rx));

    let figures = drive(secs, move |t, i| {
        let tx = tx.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                clinic: format!("clinic-{}", t % 8),
                body: body(t, i),
                reply,
            };
            tx.try_send(job).is_ok() && matches!(answer.await, Ok(Ok(())))
        }
    })
    .await;
    figures.print("sqlx on a tokio task writer: durable inserts");

    let readers = std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .max(4);
    let pool = SqlitePoolOptions::new()
        .max_connections(readers as u32)
        .test_before_acquire(false)
        .connect_with(base.read_only(true))
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let figures = drive(secs, move |t, i| {
        let pool = pool.clone();
        async move {
            let row: Result<Option<(String, i64, String)>, _> = sqlx::query_as(READ_EVENT)
                .bind(pick(t, i, rows))
                .fetch_optional(&pool)
                .await;
            matches!(row, Ok(Some(_)))
        }
    })
    .await;
    figures.print("sqlx read-only pool: point reads");
    Ok(())
}
