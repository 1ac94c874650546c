//! What one unit sees: values of every class in and out, refusals undone, read units that
//! cannot write, parameters by number, classified failures, savepoints.
use careq_store::{ReadExt, StoreError, Value};

use crate::helpers::{open, TestDb};

#[tokio::test]
async fn units_are_typed_end_to_end_and_every_storage_class_reads_back() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let inserted: u64 = store
        .write(|w| {
            w.execute(
                "INSERT INTO items (id, name, n, score, data, note) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    "a".into(),
                    "Ada".into(),
                    7_i64.into(),
                    1.5_f64.into(),
                    Value::Blob(&[0, 255]),
                    Value::Null,
                ],
            )
        })
        .await
        .unwrap();
    assert_eq!(inserted, 1);

    type Item = (String, i64, f64, Vec<u8>, Option<String>);
    let item: Option<Item> = store
        .read(|r| {
            r.first(
                "SELECT name, n, score, data, note FROM items WHERE id = $1",
                &["a".into()],
                |row| {
                    Ok((
                        row.text(0)?,
                        row.int(1)?,
                        row.real(2)?,
                        row.blob(3)?,
                        row.opt_text(4)?,
                    ))
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(item, Some(("Ada".into(), 7, 1.5, vec![0, 255], None)));

    // sum(bigint) is NUMERIC on PostgreSQL: it still reads as an integer; a flag as 0/1.
    let (sum, flag) = store
        .read(|r| {
            r.first("SELECT sum(n), n > 0 FROM items GROUP BY n", &[], |row| {
                Ok((row.int(0)?, row.flag(1)?))
            })
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sum, flag), (7, true));
}

#[tokio::test]
async fn a_refused_units_writes_are_undone_and_its_own_error_comes_back() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    #[derive(Debug, PartialEq)]
    enum Refusal {
        NotToday,
        Store(StoreError),
    }
    impl From<StoreError> for Refusal {
        fn from(e: StoreError) -> Self {
            Refusal::Store(e)
        }
    }
    let out: Result<(), Refusal> = store
        .write(|w| {
            w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[])?;
            Err(Refusal::NotToday)
        })
        .await;
    assert_eq!(out, Err(Refusal::NotToday));
    assert_eq!(db.sql("SELECT count(*) FROM items"), ["0"]);
}

#[tokio::test]
async fn a_read_unit_cannot_write_even_through_a_query() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let out = store
        .read(|r| {
            r.int(
                "INSERT INTO items (id, name) VALUES ('a', 'Ada') RETURNING n",
                &[],
            )
        })
        .await;
    match out {
        Err(StoreError::Other(e)) => assert!(e.starts_with("25006"), "{e}"),
        other => panic!("a read unit wrote: {other:?}"),
    }
    assert_eq!(db.sql("SELECT count(*) FROM items"), ["0"]);
}

#[tokio::test]
async fn parameters_bind_by_number_so_2_may_come_before_1() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    store
        .write(|w| {
            w.execute(
                "INSERT INTO items (name, id, n) VALUES ($2, $1, $3)",
                &["id-1".into(), "Name".into(), Value::Int(3)],
            )
        })
        .await
        .unwrap();
    let name = store
        .read(|r| {
            r.first(
                "SELECT name FROM items WHERE n = $2 AND id = $1",
                &["id-1".into(), 3_i64.into()],
                |row| row.text(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Name"));
}

#[tokio::test]
async fn a_taken_unique_key_is_a_conflict() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;
    let insert = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |w| {
                    w.execute(
                        "INSERT INTO items (id, name) VALUES ($1, 'same')",
                        &[id.into()],
                    )
                })
                .await
        }
    };

    assert_eq!(insert("a").await, Ok(1));
    assert_eq!(insert("b").await, Err(StoreError::Conflict));
}

#[tokio::test]
async fn a_column_of_another_class_is_an_error_naming_the_column() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let out = store
        .read(|r| r.first("SELECT 'x'::text AS label", &[], |row| row.int(0)))
        .await;
    match out {
        Err(StoreError::Other(e)) => assert!(e.contains("label"), "{e}"),
        other => panic!("text read as an integer: {other:?}"),
    }
    // A parameter of the wrong class for its column is refused too, without the SQL.
    let out = store
        .write(|w| w.execute("UPDATE items SET n = $1", &["seven".into()]))
        .await;
    assert!(
        matches!(out, Err(StoreError::Other(ref e)) if !e.contains("UPDATE")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_savepoint_undoes_its_part_alone_and_the_rest_is_kept() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let kept = store
        .write(|w| {
            w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[])?;
            // The duplicate fails inside its savepoint; the unit goes on.
            let dup = w.savepoint(&mut |w| {
                Ok(
                    w.execute("INSERT INTO items (id, name) VALUES ('b', 'Ada')", &[])
                        .is_ok(),
                )
            })?;
            let refused = w.savepoint(&mut |w| {
                w.execute("INSERT INTO items (id, name) VALUES ('c', 'Cy')", &[])?;
                Ok(false)
            })?;
            let ok = w.savepoint(&mut |w| {
                w.execute("INSERT INTO items (id, name) VALUES ('d', 'Di')", &[])?;
                Ok(true)
            })?;
            Ok::<_, StoreError>((dup, refused, ok))
        })
        .await
        .unwrap();
    assert_eq!(kept, (false, false, true));
    assert_eq!(
        db.sql("SELECT string_agg(id, ',' ORDER BY id) FROM items"),
        ["a,d"]
    );
}

#[tokio::test]
async fn a_unit_that_succeeds_after_a_failed_statement_keeps_nothing_and_says_so() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let out = store
        .write(|w| {
            w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[])?;
            let _ = w.execute("INSERT INTO items (id, name) VALUES ('b', 'Ada')", &[]);
            Ok::<_, StoreError>(())
        })
        .await;
    assert!(matches!(out, Err(StoreError::Other(_))), "{out:?}");
    assert_eq!(db.sql("SELECT count(*) FROM items"), ["0"]);
}

#[tokio::test]
async fn hold_takes_only_a_plain_table_name() {
    let Some(db) = TestDb::new() else { return };
    let (store, _) = open(db.options()).await;

    let ok = store.write(|w| w.hold("counters", "c")).await;
    assert_eq!(ok, Ok(()));
    let bad = store
        .write(|w| w.hold("counters; DROP TABLE items", "c"))
        .await;
    assert!(matches!(bad, Err(StoreError::Other(_))), "{bad:?}");
}

#[tokio::test]
async fn a_database_at_its_size_cap_refuses_units_that_store_data_only() {
    let Some(db) = TestDb::new() else { return };
    let mut o = db.options();
    o.max_bytes = Some(1);
    let (store, _) = open(o).await;

    let data = store
        .write_data(|w| w.execute("INSERT INTO items (id, name) VALUES ('a', 'Ada')", &[]))
        .await;
    assert_eq!(data, Err(StoreError::Full));
    let other = store
        .write(|w| w.execute("UPDATE counters SET n = n + 1", &[]))
        .await;
    assert_eq!(other, Ok(1));
}
