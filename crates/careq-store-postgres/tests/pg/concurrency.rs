//! Units side by side: held rows, deadlocks run again, callers that went away, many at once,
//! a full queue, closing.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use careq_store::{ReadExt, StoreError};

use crate::helpers::{open, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_read_modify_write_increments_never_lose_an_update() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    o.writers = 8;
    let (store, _) = open(o).await;

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(|w| {
                        w.hold("counters", "c")?;
                        let n = w
                            .int("SELECT n FROM counters WHERE id = 'c'", &[])?
                            .unwrap_or(0);
                        w.execute(
                            "UPDATE counters SET n = $1 WHERE id = 'c'",
                            &[(n + 1).into()],
                        )
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    assert_eq!(db.sql("SELECT n FROM counters"), ["100"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_between_two_units_is_run_again_and_both_commit() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;
    db.sql("INSERT INTO counters VALUES ('x', 0), ('y', 0)");
    // Each unit locks its first row, waits (first attempt only) until the other has locked its
    // own, then reaches for the other's: PostgreSQL picks one to abort with 40P01.
    let barrier = Arc::new(Barrier::new(2));
    let attempts = Arc::new(AtomicUsize::new(0));
    let unit = |first: &'static str, second: &'static str| {
        let (store, barrier, attempts) = (store.clone(), barrier.clone(), attempts.clone());
        let tried = AtomicUsize::new(0);
        tokio::spawn(async move {
            store
                .write(move |w| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    w.execute(
                        "UPDATE counters SET n = n + 1 WHERE id = $1",
                        &[first.into()],
                    )?;
                    if tried.fetch_add(1, Ordering::SeqCst) == 0 {
                        barrier.wait();
                    }
                    w.execute(
                        "UPDATE counters SET n = n + 1 WHERE id = $1",
                        &[second.into()],
                    )
                })
                .await
        })
    };
    let (a, b) = (unit("x", "y"), unit("y", "x"));

    assert_eq!(a.await.unwrap(), Ok(1));
    assert_eq!(b.await.unwrap(), Ok(1));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one of the two ran again"
    );
    assert_eq!(
        db.sql("SELECT string_agg(n::text, ',' ORDER BY id) FROM counters WHERE id <> 'c'"),
        ["2,2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_caller_went_away_still_commits() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let started = Mutex::new(Some(started));
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = Mutex::new(wait);

    let caller = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(move |w| {
                    // Held until this unit commits: the check below waits for it.
                    w.execute("SELECT pg_advisory_xact_lock(42)", &[])?;
                    if let Some(s) = started.lock().unwrap().take() {
                        let _ = s.send(());
                    }
                    let _ = wait.lock().unwrap().recv();
                    w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[])
                })
                .await
        }
    });
    running.await.unwrap();
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    go.send(()).unwrap();

    let seen = store
        .write(|w| {
            w.execute("SELECT pg_advisory_xact_lock(42)", &[])?;
            w.int("SELECT count(*) FROM items", &[])
        })
        .await;
    assert_eq!(seen, Ok(Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_units_are_all_answered() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let tasks: Vec<_> = (0..200)
        .map(|i: i64| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("i{i}");
                if i % 2 == 0 {
                    store
                        .write(move |w| {
                            w.execute(
                                "INSERT INTO items (id, name, n) VALUES ($1, $1, $2)",
                                &[(&id).into(), i.into()],
                            )
                        })
                        .await
                        .map(|_| ())
                } else {
                    store
                        .read(|r| r.int("SELECT count(*) FROM items", &[]))
                        .await
                        .map(|_| ())
                }
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    assert_eq!(db.sql("SELECT count(*) FROM items"), ["100"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once_and_close_still_answers_what_was_queued() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    o.writers = 1;
    o.write_queue = 1;
    let (store, _) = open(o).await;
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let started = Mutex::new(Some(started));
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = Mutex::new(wait);

    // The one writer is busy with this unit; the queue then holds one more, and no third.
    let blocking = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(move |w| {
                    if let Some(s) = started.lock().unwrap().take() {
                        let _ = s.send(());
                    }
                    let _ = wait.lock().unwrap().recv();
                    w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[])
                })
                .await
        }
    });
    running.await.unwrap();
    let queued = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(|w| w.execute("INSERT INTO items (id, name) VALUES ('b', 'Bo')", &[]))
                .await
        }
    });
    while store.queue_depth() < 2 {
        tokio::task::yield_now().await;
    }
    let refused = store
        .write(|w| w.execute("INSERT INTO items (id, name) VALUES ('c', 'Cy')", &[]))
        .await;
    assert_eq!(refused, Err(StoreError::Busy));

    store.close();
    let after = store
        .write(|w| w.execute("UPDATE counters SET n = 1", &[]))
        .await;
    assert_eq!(after, Err(StoreError::Busy));
    go.send(()).unwrap();
    assert_eq!(blocking.await.unwrap(), Ok(1));
    assert_eq!(queued.await.unwrap(), Ok(1));
    assert_eq!(
        db.sql("SELECT string_agg(id, ',' ORDER BY id) FROM items"),
        ["a,b"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_held_longer_than_the_busy_timeout_answers_busy() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    o.busy_timeout = std::time::Duration::from_millis(50);
    let (store, _) = open(o).await;
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let started = Mutex::new(Some(started));
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = Mutex::new(wait);

    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(move |w| {
                    w.hold("counters", "c")?;
                    if let Some(s) = started.lock().unwrap().take() {
                        let _ = s.send(());
                    }
                    let _ = wait.lock().unwrap().recv();
                    Ok::<_, StoreError>(())
                })
                .await
        }
    });
    running.await.unwrap();

    let waited = store.write(|w| w.hold("counters", "c")).await;
    assert_eq!(waited, Err(StoreError::Busy));
    go.send(()).unwrap();
    assert_eq!(holder.await.unwrap(), Ok(()));
}
