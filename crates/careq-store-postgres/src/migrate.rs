//! Migrations, recorded as sqlx records them (`_sqlx_migrations`, SHA-384 checksums) and under
//! the same advisory lock sqlx takes, so a database migrated by the careq of before is carried
//! on here, and several processes starting at once apply each migration exactly once.
use std::time::Instant;

use careq_store::schema::{checksum, pending, Applied};
use careq_store::StoreError;
use postgres::Client;

/// A migration: its version, a description, and its SQL (one or more statements).
pub type Migration = (i64, &'static str, &'static str);

const TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Applies what `migrations` has that the database lacks, in order of version.
pub(crate) fn run(client: &mut Client, migrations: &[Migration]) -> Result<(), StoreError> {
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .map_err(|e| failed("reading the database's name", e))?
        .get(0);
    let key = lock_key(&name);
    // Session-level, so it also covers the transactions each migration runs in; waits for as
    // long as another process takes to migrate.
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .map_err(|e| failed("waiting for the migration lock", e))?;
    let out = apply(client, migrations);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
    out?;
    unlocked.map_err(|e| failed("releasing the migration lock", e))?;
    Ok(())
}

fn apply(client: &mut Client, migrations: &[Migration]) -> Result<(), StoreError> {
    client
        .batch_execute(TABLE)
        .map_err(|e| failed("creating _sqlx_migrations", e))?;
    let applied: Vec<Applied> = client
        .query(
            "SELECT version, checksum, success FROM _sqlx_migrations",
            &[],
        )
        .map_err(|e| failed("reading _sqlx_migrations", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (version, description, sql) in pending(&applied, migrations)? {
        let checksum = checksum(sql);
        let started = Instant::now();
        let mut tx = client
            .transaction()
            .map_err(|e| failed("starting a migration", e))?;
        tx.batch_execute(sql)
            .map_err(|e| failed(&format!("applying migration {version} ({description})"), e))?;
        let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
            &[&version, &description, &checksum, &nanos],
        )
        .map_err(|e| failed("recording a migration", e))?;
        tx.commit()
            .map_err(|e| failed(&format!("committing migration {version}"), e))?;
    }
    Ok(())
}

fn failed(doing: &str, e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Other(format!("{doing}: {}", crate::error::describe(db))),
        None => StoreError::Other(format!("{doing}: {e}")),
    }
}

/// sqlx's key for the migration lock: a fixed factor times the CRC-32 of the database's name.
fn lock_key(database: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database.as_bytes()))
}

/// CRC-32 (IEEE 802.3, as zlib and sqlx's `crc` compute it), bit by bit: names are short.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_the_one_sqlx_computes() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(lock_key("123456789"), 0x3d32_ad9e * 0xCBF4_3926);
    }
}
