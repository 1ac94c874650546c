//! What the engine's tests share: a fresh database file in a temp directory, with one table.
#![allow(dead_code)]
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use careq_store::{Store, StoreError};
use careq_store_sqlite::{Migration, SqliteEngine, SqliteOptions};

pub const SCHEMA: &[Migration<'static>] = &[(
    1,
    "items",
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT);",
)];

pub struct TestDb {
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn options(&self) -> SqliteOptions {
        SqliteOptions::new(self.dir.path().join("careq.db"))
    }

    pub fn open_with(&self, o: SqliteOptions) -> (Store, Arc<SqliteEngine>) {
        let engine = Arc::new(SqliteEngine::open(o, SCHEMA).unwrap());
        (Store::new(engine.clone()), engine)
    }

    pub fn open(&self) -> Store {
        self.open_with(self.options()).0
    }
}

/// A write unit inserting one item.
pub fn insert(
    store: &Store,
    name: &str,
) -> impl Future<Output = Result<u64, StoreError>> + 'static {
    let (store, name) = (store.clone(), name.to_owned());
    async move {
        store
            .write_data(move |w| {
                w.execute("INSERT INTO items (name) VALUES ($1)", &[(&name).into()])
            })
            .await
    }
}

pub async fn names(store: &Store) -> Vec<String> {
    store
        .read(|r| {
            careq_store::ReadExt::all(r, "SELECT name FROM items ORDER BY name", &[], |row| {
                row.text(0)
            })
        })
        .await
        .unwrap()
}

/// A unit that holds the writer until `release` is dropped or sent to, so the units queued
/// meanwhile run together in the next group. No sleeps: the test decides when it opens.
pub fn gate(
    store: &Store,
) -> (
    std::sync::mpsc::Sender<()>,
    impl Future<Output = Result<(), StoreError>> + 'static,
) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let store = store.clone();
    let held = async move {
        store
            .write(move |_w| {
                let _ = wait.lock().unwrap().recv();
                Ok::<_, StoreError>(())
            })
            .await
    };
    (release, held)
}

/// Polls `fut` once, which queues its unit on the engine, and hands back what answers it.
pub fn queued<F>(fut: F) -> BoxFuture<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut fut: BoxFuture<F::Output> = Box::pin(fut);
    match poll_now(&mut fut) {
        Some(out) => Box::pin(std::future::ready(out)),
        None => fut,
    }
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The answer of `fut` if it is ready now (a unit refused at once).
pub fn poll_now<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}
