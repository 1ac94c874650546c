//! A unit that lost a race (a row it read changed under it) is run again where units can
//! interleave, and its refusal stands on SQLite's one writer, where they cannot.
mod engines;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use careq_store::{Dialect, StoreError};

#[tokio::test]
async fn a_unit_that_lost_a_race_runs_again_on_postgresql_and_its_refusal_stands_on_sqlite() {
    for e in engines::engines().await {
        let attempts = Arc::new(AtomicU32::new(0));
        let seen = attempts.clone();
        let out = e
            .store
            .write(move |w| {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                w.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, 'x')",
                    &[format!("attempt-{n}").as_str().into()],
                )?;
                if n == 1 {
                    w.lost_race();
                    return Err(StoreError::other("the version moved on"));
                }
                Ok(n)
            })
            .await;
        let kept = e
            .store
            .read(|r| {
                use careq_store::ReadExt;
                r.all(
                    "SELECT key FROM meta WHERE key LIKE 'attempt-%' ORDER BY key",
                    &[],
                    |row| row.text(0),
                )
            })
            .await
            .unwrap();
        match e.store.dialect() {
            Dialect::Postgres => {
                assert_eq!(out, Ok(2), "{}: run again once", e.name);
                assert_eq!(kept, ["attempt-2"], "the lost attempt was undone");
            }
            Dialect::Sqlite => {
                assert!(out.is_err(), "the refusal stands");
                assert!(kept.is_empty(), "the refused unit was undone");
                assert_eq!(attempts.load(Ordering::SeqCst), 1);
            }
        }
    }
}
