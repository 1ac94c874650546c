//! Announcements between careq processes on one database: each is a `NOTIFY` on one channel,
//! sent in order by one task; each process `LISTEN`s on a connection of its own and hands what
//! it hears to the app. PostgreSQL delivers a notification to every listener of the database
//! once the sending transaction commits (a lone `pg_notify` commits at once).
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};

/// The channel careq's processes announce on.
const CHANNEL: &str = "careq_queue";

/// Announcements waiting to be sent; when PostgreSQL is slower than the queue changes, the
/// newest are dropped (boards catch up on the next change: every event carries the state).
const PENDING: usize = 1024;

pub struct Fanout {
    pool: PgPool,
    outgoing: OnceLock<mpsc::Sender<String>>,
    heard: OnceLock<broadcast::Sender<String>>,
}

impl Fanout {
    pub fn new(pool: PgPool) -> Fanout {
        Fanout {
            pool,
            outgoing: OnceLock::new(),
            heard: OnceLock::new(),
        }
    }

    /// Queues a payload for the other processes; never waits.
    pub fn announce(&self, payload: String) {
        let tx = self.outgoing.get_or_init(|| {
            let (tx, rx) = mpsc::channel(PENDING);
            tokio::spawn(send_in_order(self.pool.clone(), rx));
            tx
        });
        if tx.try_send(payload).is_err() {
            tracing::warn!("announcement dropped: PostgreSQL is not keeping up");
        }
    }

    /// What the processes announce (this one's own included: the caller tells them apart).
    /// The first call starts listening.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.heard
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(PENDING);
                tokio::spawn(listen(self.pool.clone(), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn send_in_order(pool: PgPool, mut rx: mpsc::Receiver<String>) {
    while let Some(payload) = rx.recv().await {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "announcing a queue change failed");
        }
    }
}

/// Listens for as long as anyone subscribes. A lost connection is re-opened (what was sent
/// meanwhile is missed, and said so in the log).
async fn listen(pool: PgPool, heard: broadcast::Sender<String>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other processes' changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if heard.send(n.payload().to_string()).is_err() {
                        // Nobody subscribes any more: the app has gone.
                        return;
                    }
                }
                Ok(None) => {
                    tracing::warn!("the listening connection was lost; changes made meanwhile by other processes were missed");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other processes' changes failed");
                    break;
                }
            }
        }
    }
}
