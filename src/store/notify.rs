//! Announcements between careq processes on one database: each is a `NOTIFY` on one channel,
//! sent in order by one thread over a connection of its own; each process `LISTEN`s on another
//! connection, on a thread of its own, and hands what it hears to the app through a broadcast
//! channel. PostgreSQL delivers a notification to every listener of the database once the
//! sending transaction commits (a lone `pg_notify` commits at once).
//!
//! Both threads use the synchronous `postgres` client and need no async runtime: sending on a
//! broadcast channel never waits. Their connections are made when first needed.
use std::str::FromStr;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls, Statement};
use tokio::sync::broadcast;

/// The channel careq's processes announce on.
const CHANNEL: &str = "careq_queue";

/// Announcements waiting to be sent; when PostgreSQL is slower than the queue changes, the
/// newest are dropped (boards catch up on the next change: every event carries the state).
const PENDING: usize = 1024;

/// How long connecting may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the listener wakes while nothing is heard, to see whether anyone still listens.
const WAKE: Duration = Duration::from_secs(5);

/// After this long without a notification the listener checks that its connection still
/// answers (a silently dropped connection would otherwise look like a quiet one).
const CHECK_AFTER: Duration = Duration::from_secs(30);

/// The pause before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Who hears the announcements: the sender the listening thread feeds, while it runs.
type Heard = Arc<Mutex<Option<broadcast::Sender<String>>>>;

pub struct Fanout {
    config: Config,
    outgoing: OnceLock<SyncSender<String>>,
    heard: Heard,
}

impl Fanout {
    /// A fan-out over connections of its own to `url` (made when first used).
    pub fn new(url: &str) -> anyhow::Result<Fanout> {
        let mut config =
            Config::from_str(url).map_err(|e| anyhow::anyhow!("reading the database URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(Fanout {
            config,
            outgoing: OnceLock::new(),
            heard: Arc::new(Mutex::new(None)),
        })
    }

    /// Queues a payload for the other processes; never waits.
    pub fn announce(&self, payload: String) {
        let tx = self.outgoing.get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(PENDING);
            let config = self.config.clone();
            let started = std::thread::Builder::new()
                .name("careq-announce".into())
                .spawn(move || send_in_order(config, rx));
            if let Err(e) = started {
                tracing::warn!(error = %e, "cannot start announcing queue changes");
            }
            tx
        });
        match tx.try_send(payload) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("announcement dropped: PostgreSQL is not keeping up");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("announcement dropped: the announcing thread has stopped");
            }
        }
    }

    /// What the processes announce (this one's own included: the caller tells them apart).
    /// The first call starts listening; listening stops once no receiver is left, and a later
    /// call starts it again.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        let mut slot = lock(&self.heard);
        if let Some(tx) = slot.as_ref() {
            return tx.subscribe();
        }
        // The receiver exists before the thread starts, so it never sees an empty audience
        // before the caller has had its receiver.
        let (tx, rx) = broadcast::channel(PENDING);
        let (config, heard, slot_of_thread) = (self.config.clone(), tx.clone(), self.heard.clone());
        let started = std::thread::Builder::new()
            .name("careq-listen".into())
            .spawn(move || listen(config, heard, slot_of_thread));
        match started {
            Ok(_) => *slot = Some(tx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start listening for other processes' changes")
            }
        }
        rx
    }
}

fn lock(heard: &Heard) -> MutexGuard<'_, Option<broadcast::Sender<String>>> {
    heard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends each queued payload, in order, until the fan-out is dropped. A payload that cannot be
/// sent is dropped with a warning; the connection is made again for the next one if it was
/// lost.
fn send_in_order(config: Config, rx: Receiver<String>) {
    let mut conn: Option<(Client, Statement)> = None;
    for payload in rx {
        if conn.is_none() {
            match connect_sender(&config) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "announcing a queue change failed");
                    continue;
                }
            }
        }
        let Some((client, notify)) = conn.as_mut() else {
            continue;
        };
        if let Err(e) = client.execute(&*notify, &[&CHANNEL, &payload]) {
            tracing::warn!(error = %e, "announcing a queue change failed");
            // The server answered with an error: the connection is still good.
            if client.is_closed() || e.as_db_error().is_none() {
                conn = None;
            }
        }
    }
}

fn connect_sender(config: &Config) -> Result<(Client, Statement), postgres::Error> {
    let mut client = config.connect(NoTls)?;
    let notify = client.prepare("SELECT pg_notify($1, $2)")?;
    Ok((client, notify))
}

/// Listens for as long as anyone subscribes. A lost connection is made again (what was sent
/// meanwhile is missed, and said so in the log).
fn listen(config: Config, heard: broadcast::Sender<String>, slot: Heard) {
    let mut lost = false;
    loop {
        if nobody_listens(&heard, &slot) {
            return;
        }
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other processes' changes; retrying");
                std::thread::sleep(RETRY);
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            std::thread::sleep(RETRY);
            continue;
        }
        if lost {
            tracing::warn!(
                "the listening connection was lost; changes made meanwhile by other processes were missed"
            );
        }
        lost = true;
        let mut last_heard = Instant::now();
        loop {
            let next = client.notifications().timeout_iter(WAKE).next();
            match next {
                Ok(Some(n)) => {
                    last_heard = Instant::now();
                    if heard.send(n.payload().to_string()).is_err() && nobody_listens(&heard, &slot)
                    {
                        // Nobody subscribes any more: the app has gone.
                        return;
                    }
                }
                Ok(None) => {
                    if client.is_closed() {
                        tracing::warn!("the listening connection was closed");
                        break;
                    }
                    if nobody_listens(&heard, &slot) {
                        return;
                    }
                    if last_heard.elapsed() >= CHECK_AFTER {
                        if let Err(e) = client.is_valid(WAKE) {
                            tracing::warn!(error = %e, "the listening connection stopped answering");
                            break;
                        }
                        last_heard = Instant::now();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other processes' changes failed");
                    break;
                }
            }
        }
    }
}

/// Whether no receiver is left; if so, the fan-out forgets this listener (under its lock, so a
/// new subscriber either is counted here or starts a listener of its own).
fn nobody_listens(heard: &broadcast::Sender<String>, slot: &Heard) -> bool {
    let mut slot = lock(slot);
    if heard.receiver_count() > 0 {
        return false;
    }
    if slot.as_ref().is_some_and(|s| s.same_channel(heard)) {
        *slot = None;
    }
    true
}
