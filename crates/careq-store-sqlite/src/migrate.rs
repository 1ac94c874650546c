//! Migrations, recorded as sqlx records them (`_sqlx_migrations`, the SQL's SHA-384 as the
//! checksum), so a database that careq migrated through sqlx is recognised as it is, and sqlx
//! would recognise one migrated here. Like sqlx: a failed (dirty) version, a changed migration
//! or an applied version this build does not know stops the open.
use std::time::Instant;

use careq_store::schema::{checksum, Applied};
use careq_store::StoreError;
use rusqlite::{params, Connection};

use crate::error::classify;

/// One migration: its version, its description and its SQL.
pub type Migration<'a> = (i64, &'a str, &'a str);

/// Applies the migrations not yet applied, in version order, each in its own transaction.
/// Answers the versions it applied.
pub fn run(conn: &Connection, migrations: &[Migration<'_>]) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .map_err(classify)?;
    let todo = careq_store::schema::pending(&applied(conn)?, migrations)?;
    let mut done = Vec::new();
    for (version, description, sql) in todo {
        apply(conn, version, description, sql).map_err(|e| {
            StoreError::Other(format!(
                "migration {version} ({description}) failed: {}",
                classify(e)
            ))
        })?;
        done.push(version);
    }
    Ok(done)
}

fn applied(conn: &Connection) -> Result<Vec<Applied>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
        .map_err(classify)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(classify)?;
    rows.collect::<Result<_, _>>().map_err(classify)
}

/// As sqlx does: the SQL and its record in one transaction (execution time -1), the time
/// filled in after the commit — losing it to a crash is harmless.
fn apply(conn: &Connection, version: i64, description: &str, sql: &str) -> rusqlite::Result<()> {
    let start = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let inside = conn.execute_batch(sql).and_then(|()| {
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, TRUE, ?3, -1)",
            params![version, description, checksum(sql)],
        )
    });
    if let Err(e) = inside.and_then(|_| conn.execute_batch("COMMIT")) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(e);
    }
    let nanos = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
    conn.execute(
        "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
        params![nanos, version],
    )?;
    Ok(())
}
