//! Units of work end to end on a real file: typed answers, group commit with units undone
//! alone, read-only readers, parameters by number, and how failures are classified.
mod common;

use careq_store::{ReadExt, Row, StoreError, Value, Write};
use common::{gate, insert, names, poll_now, queued, TestDb};

#[derive(Debug, PartialEq)]
enum MyError {
    Store(StoreError),
    TooShort(usize),
}

impl From<StoreError> for MyError {
    fn from(e: StoreError) -> Self {
        MyError::Store(e)
    }
}

#[tokio::test]
async fn units_answer_their_own_types_and_errors() {
    let db = TestDb::new();
    let store = db.open();
    let id: Result<(i64, String), MyError> = store
        .write(|w| {
            w.execute("INSERT INTO items (name) VALUES ($1)", &["apple".into()])?;
            let id = w.int("SELECT id FROM items WHERE name = $1", &["apple".into()])?;
            Ok((id.unwrap(), "apple".to_owned()))
        })
        .await;
    assert_eq!(id, Ok((1, "apple".to_owned())));
    let refused: Result<(), MyError> = store
        .write(|w| {
            w.execute("INSERT INTO items (name) VALUES ('x')", &[])?;
            Err(MyError::TooShort(1))
        })
        .await;
    assert_eq!(refused, Err(MyError::TooShort(1)));
    let read: Result<usize, MyError> = store
        .read(|r| {
            Ok(r.all("SELECT name FROM items", &[], |row| row.text(0))?
                .len())
        })
        .await;
    assert_eq!(read, Ok(1), "the refused unit's insert was undone");
}

#[tokio::test]
async fn a_refused_or_panicking_unit_is_undone_while_the_rest_of_its_group_is_kept() {
    let db = TestDb::new();
    let store = db.open();
    let (release, held) = gate(&store);
    let held = queued(held);
    let kept_a = queued(insert(&store, "a"));
    let s = store.clone();
    let refused = queued(async move {
        s.write(|w| {
            w.execute("INSERT INTO items (name) VALUES ('refused')", &[])?;
            Err::<(), _>(StoreError::other("changed my mind"))
        })
        .await
    });
    let s = store.clone();
    let panicked = queued(async move {
        s.write(|w| {
            w.execute("INSERT INTO items (name) VALUES ('panicked')", &[])?;
            if w.dialect() == careq_store::Dialect::Sqlite {
                panic!("a unit panicked on purpose");
            }
            Ok::<(), StoreError>(())
        })
        .await
    });
    let kept_b = queued(insert(&store, "b"));
    assert_eq!(store.queue_depth(), 5);
    release.send(()).unwrap();

    held.await.unwrap();
    assert_eq!(kept_a.await, Ok(1));
    assert_eq!(refused.await, Err(StoreError::other("changed my mind")));
    assert!(matches!(panicked.await, Err(StoreError::Other(_))));
    assert_eq!(kept_b.await, Ok(1));
    assert_eq!(names(&store).await, ["a", "b"]);
    assert_eq!(store.queue_depth(), 0);
}

#[tokio::test]
async fn a_savepoint_part_that_refuses_is_undone_alone() {
    let db = TestDb::new();
    let store = db.open();
    store
        .write(|w| {
            w.execute("INSERT INTO items (name) VALUES ('outer')", &[])?;
            for (name, keep) in [("kept", true), ("dropped", false)] {
                let done = w.savepoint(&mut |w: &mut dyn Write| {
                    w.execute("INSERT INTO items (name) VALUES ($1)", &[name.into()])?;
                    Ok(keep)
                })?;
                assert_eq!(done, keep);
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    assert_eq!(names(&store).await, ["kept", "outer"]);
}

#[tokio::test]
async fn a_read_unit_cannot_write_through_its_read_only_connection() {
    let db = TestDb::new();
    let store = db.open();
    let sneaky = "INSERT INTO items (name) VALUES ('sneaky') RETURNING id";
    let out = store.read(move |r| r.int(sneaky, &[])).await;
    assert!(
        matches!(out, Err(StoreError::Other(ref m)) if m.contains("readonly")),
        "{out:?}"
    );
    assert!(names(&store).await.is_empty());
}

#[tokio::test]
async fn parameters_bind_by_their_numbers_whatever_their_order_in_the_sql() {
    let db = TestDb::new();
    let store = db.open();
    let insert = "INSERT INTO items (note, name) VALUES ($2 || ' $1', $1)";
    let values = [Value::Text("first"), Value::Text("second")];
    store
        .write(move |w| w.execute(insert, &values))
        .await
        .unwrap();
    let select = "SELECT name, note FROM items WHERE name = $1";
    let both = |row: &dyn Row| Ok((row.text(0)?, row.text(1)?));
    let row = store
        .read(move |r| r.first(select, &[Value::Text("first")], both))
        .await
        .unwrap();
    assert_eq!(row, Some(("first".to_owned(), "second $1".to_owned())));
}

#[tokio::test]
async fn a_unique_violation_is_a_conflict() {
    let db = TestDb::new();
    let store = db.open();
    insert(&store, "twin").await.unwrap();
    assert_eq!(insert(&store, "twin").await, Err(StoreError::Conflict));
    let pk = store
        .write(|w| w.execute("INSERT INTO items (id, name) VALUES (1, 'other')", &[]))
        .await;
    assert_eq!(pk, Err(StoreError::Conflict));
}

#[tokio::test]
async fn a_value_of_the_wrong_type_names_its_column() {
    let db = TestDb::new();
    let store = db.open();
    insert(&store, "x").await.unwrap();
    let out = store
        .read(|r| r.first("SELECT id, name FROM items", &[], |row| row.int(1)))
        .await;
    assert!(
        matches!(out, Err(StoreError::Other(ref m)) if m.contains("name")),
        "{out:?}"
    );
    let null = store
        .read(|r| r.first("SELECT note FROM items", &[], |row| row.text(0)))
        .await;
    assert!(matches!(null, Err(StoreError::Other(_))), "{null:?}");
}

#[tokio::test]
async fn the_size_cap_refuses_data_units_but_lets_other_units_through() {
    let db = TestDb::new();
    let mut o = db.options();
    o.max_bytes = Some(1);
    let (store, _engine) = db.open_with(o);
    assert_eq!(insert(&store, "data").await, Err(StoreError::Full));
    let log = store
        .write(|w| w.execute("INSERT INTO items (name) VALUES ('access log')", &[]))
        .await;
    assert_eq!(log, Ok(1));
    assert_eq!(names(&store).await, ["access log"]);
}

#[tokio::test]
async fn a_unit_whose_caller_went_away_still_runs_and_commits() {
    let db = TestDb::new();
    let store = db.open();
    drop(queued(insert(&store, "orphan")));
    // The writer runs units in order: once this one is answered, the orphan is committed.
    insert(&store, "after").await.unwrap();
    assert_eq!(names(&store).await, ["after", "orphan"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_writers_are_all_answered_and_all_kept() {
    let db = TestDb::new();
    let store = db.open();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { insert(&store, &format!("n{i:03}")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    let count = store
        .read(|r| r.int("SELECT count(*) FROM items", &[]))
        .await;
    assert_eq!(count, Ok(Some(200)));
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_and_a_closed_engine_after_its_queue_is_done() {
    let db = TestDb::new();
    let mut o = db.options();
    o.write_queue = 1;
    let (store, _engine) = db.open_with(o);
    let (release, held) = gate(&store);
    let held = queued(held);
    // The gate is taken by the writer or still queued: at most one more fits.
    let mut waiting = Vec::new();
    let mut refused = 0;
    for i in 0..3 {
        let mut fut = Box::pin(insert(&store, &format!("q{i}")));
        match poll_now(&mut fut) {
            Some(out) => {
                assert_eq!(out, Err(StoreError::Busy));
                refused += 1;
            }
            None => waiting.push(fut),
        }
    }
    assert!(refused >= 2, "{refused}");
    store.close();
    release.send(()).unwrap();
    held.await.unwrap();
    for fut in waiting {
        assert_eq!(fut.await, Ok(1), "a unit queued before close is still run");
    }
    assert_eq!(insert(&store, "late").await, Err(StoreError::Busy));
    assert_eq!(
        store.read(|r| r.int("SELECT 1", &[])).await,
        Err(StoreError::Busy)
    );
}

#[tokio::test]
async fn a_full_disk_in_the_middle_of_a_group_fails_that_unit_and_the_writer_goes_on() {
    let db = TestDb::new();
    let mut o = db.options();
    o.max_bytes = Some(1); // SQLite itself stops the file at 64 pages
    let (store, _engine) = db.open_with(o);
    let (release, held) = gate(&store);
    let held = queued(held);
    let s = store.clone();
    let before = queued(async move {
        s.write(|w| w.execute("INSERT INTO items (name) VALUES ('before')", &[]))
            .await
    });
    let s = store.clone();
    let huge = queued(async move {
        s.write(|w| {
            let sql = "INSERT INTO items (name, note) VALUES ('huge', zeroblob(4000000))";
            w.execute(sql, &[])
        })
        .await
    });
    let s = store.clone();
    let after = queued(async move {
        s.write(|w| w.execute("INSERT INTO items (name) VALUES ('after')", &[]))
            .await
    });
    release.send(()).unwrap();
    let held = held.await;
    assert_eq!(huge.await, Err(StoreError::Full));
    let (before, after) = (before.await, after.await);
    // SQLite undoes the statement alone (the group goes on) or the whole transaction (the
    // unit before answers the failure, the one after is refused as busy): never a false Ok.
    let kept = names(&store).await;
    // The gate ran alone or in the same group as the others.
    assert!(matches!(held, Ok(()) | Err(StoreError::Full)), "{held:?}");
    match &before {
        Ok(1) => assert!(kept.contains(&"before".to_owned())),
        Err(e) => assert_eq!(
            (e, kept.contains(&"before".to_owned())),
            (&StoreError::Full, false)
        ),
        other => panic!("{other:?}"),
    }
    match &after {
        Ok(1) => assert!(kept.contains(&"after".to_owned())),
        Err(e) => assert_eq!(e, &StoreError::Busy),
        other => panic!("{other:?}"),
    }
    assert!(!kept.contains(&"huge".to_owned()));
    let next = store
        .write(|w| w.execute("INSERT INTO items (name) VALUES ('next')", &[]))
        .await;
    assert_eq!(next, Ok(1), "the writer is working again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_unit_sees_the_database_as_of_one_moment() {
    let db = TestDb::new();
    let store = db.open();
    insert(&store, "one").await.unwrap();
    let (first_done, first_read) = tokio::sync::oneshot::channel();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (wait, first_done) = (
        std::sync::Mutex::new(wait),
        std::sync::Mutex::new(Some(first_done)),
    );
    let s = store.clone();
    let reading = tokio::spawn(async move {
        s.read(move |r| {
            let before = r.int("SELECT count(*) FROM items", &[])?;
            let _ = first_done.lock().unwrap().take().unwrap().send(());
            let _ = wait.lock().unwrap().recv();
            let after = r.int("SELECT count(*) FROM items", &[])?;
            Ok::<_, StoreError>((before, after))
        })
        .await
    });
    first_read.await.unwrap();
    insert(&store, "two").await.unwrap();
    go.send(()).unwrap();
    assert_eq!(reading.await.unwrap(), Ok((Some(1), Some(1))));
    let now = store
        .read(|r| r.int("SELECT count(*) FROM items", &[]))
        .await;
    assert_eq!(now, Ok(Some(2)));
}

#[tokio::test]
async fn a_writer_that_cannot_reopen_its_file_refuses_units_as_busy_and_still_closes() {
    let db = TestDb::new();
    let mut o = db.options();
    o.max_bytes = Some(1);
    let (store, engine) = db.open_with(o.clone());
    // The writer never creates the file itself (it would not be owner-only): gone, it stays gone.
    std::fs::remove_file(&o.path).unwrap();
    let huge_row = "INSERT INTO items (name, note) VALUES ('huge', zeroblob(4000000))";
    let huge = store.write(move |w| w.execute(huge_row, &[])).await;
    assert_eq!(huge, Err(StoreError::Full));
    assert_eq!(insert(&store, "next").await, Err(StoreError::Busy));
    drop((store, engine)); // returns: the writer thread ended
    assert!(!o.path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_run_on_the_callers_thread_read_only_and_fall_back_to_the_readers_when_all_are_taken(
) {
    let db = TestDb::new();
    let mut o = db.options();
    o.readers_here = 1;
    let (store, _engine) = db.open_with(o);
    assert_eq!(insert(&store, "ann").await, Ok(1));
    let here = std::thread::current().id();
    let (id, ran_on) = store
        .lookup(|r| {
            let id = r.int("SELECT id FROM items WHERE name = 'ann'", &[])?;
            Ok::<_, StoreError>((id, std::thread::current().id()))
        })
        .await
        .unwrap();
    assert_eq!(id, Some(1), "sees what was committed before it");
    assert_eq!(ran_on, here, "no hand-off while a connection is free");

    let sneaky = "INSERT INTO items (name) VALUES ('sneaky') RETURNING id";
    let out = store.lookup(move |r| r.int(sneaky, &[])).await;
    assert!(
        matches!(out, Err(StoreError::Other(ref m)) if m.contains("readonly")),
        "{out:?}"
    );

    // A lookup started inside another holds the one kept connection's turn: it goes to a
    // reader thread, and both answer.
    let inner_store = store.clone();
    let (outer, inner_thread) = store
        .lookup(move |r| {
            let outer = r.int("SELECT count(*) FROM items", &[])?;
            let inner = futures_executor(inner_store.lookup(|r| {
                r.int("SELECT count(*) FROM items", &[])?;
                Ok::<_, StoreError>(std::thread::current().id())
            }))?;
            Ok::<_, StoreError>((outer, inner))
        })
        .await
        .unwrap();
    assert_eq!(outer, Some(1));
    assert_ne!(inner_thread, here, "handed to a reader");
    assert_eq!(
        names(&store).await,
        ["ann"],
        "the refused write left nothing"
    );

    store.close();
    assert_eq!(
        store.lookup(|r| r.int("SELECT 1", &[])).await,
        Err(StoreError::Busy),
        "a closed engine refuses lookups too"
    );
}

/// Waits for `fut` on this thread (the test's lookups run on the caller's thread, so a nested
/// one cannot be awaited through the runtime from inside a unit).
fn futures_executor<T>(fut: impl std::future::Future<Output = T>) -> T {
    let mut fut = Box::pin(fut);
    loop {
        if let Some(out) = poll_now(&mut fut) {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[tokio::test]
async fn the_checkpointer_copies_committed_frames_into_the_database_file() {
    let db = TestDb::new();
    let store = db.open();
    for i in 0..50 {
        assert!(insert(&store, &format!("n{i}")).await.is_ok());
    }
    // The writer's own automatic checkpoints are off; the checkpointer thread copies the log
    // back. The database file alone (copied without its log) shows when it has.
    let path = db.dir.path().join("careq.db");
    let alone = db.dir.path().join("alone.db");
    let mut in_file = 0;
    for _ in 0..1000 {
        std::fs::copy(&path, &alone).unwrap();
        let conn = rusqlite::Connection::open(&alone).unwrap();
        in_file = conn
            .query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0);
        drop(conn);
        if in_file == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(in_file, 50, "every committed row reached the database file");
    assert_eq!(names(&store).await.len(), 50);
}
