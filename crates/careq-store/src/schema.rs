//! careq's schema, one list of migrations per engine (the files under `migrations/`), in the
//! form both engines' migrators take: (version, description, SQL). Recorded as sqlx records them,
//! so databases migrated by earlier versions of careq are recognised.

use crate::StoreError;

/// One migration: its version, its description (from the file name) and its SQL.
pub type Migration = (i64, &'static str, &'static str);

/// Every migration of the SQLite schema, in order.
pub static SQLITE: &[Migration] = &[
    (
        1,
        "base",
        include_str!("../../../migrations/sqlite/0001_base.sql"),
    ),
    (
        2,
        "staff",
        include_str!("../../../migrations/sqlite/0002_staff.sql"),
    ),
    (
        3,
        "patients",
        include_str!("../../../migrations/sqlite/0003_patients.sql"),
    ),
    (
        4,
        "queue",
        include_str!("../../../migrations/sqlite/0004_queue.sql"),
    ),
    (
        5,
        "appointments",
        include_str!("../../../migrations/sqlite/0005_appointments.sql"),
    ),
    (
        6,
        "board keys",
        include_str!("../../../migrations/sqlite/0006_board_keys.sql"),
    ),
    (
        7,
        "board key hashes",
        include_str!("../../../migrations/sqlite/0007_board_key_hashes.sql"),
    ),
    (
        8,
        "audit and idempotency",
        include_str!("../../../migrations/sqlite/0008_audit_and_idempotency.sql"),
    ),
    (
        9,
        "queue order",
        include_str!("../../../migrations/sqlite/0009_queue_order.sql"),
    ),
    (
        10,
        "search indexes",
        include_str!("../../../migrations/sqlite/0010_search_indexes.sql"),
    ),
    (
        11,
        "access log views",
        include_str!("../../../migrations/sqlite/0011_access_log_views.sql"),
    ),
    (
        12,
        "clinic country",
        include_str!("../../../migrations/sqlite/0012_clinic_country.sql"),
    ),
    (
        13,
        "jobs",
        include_str!("../../../migrations/sqlite/0013_jobs.sql"),
    ),
    (
        14,
        "name search keys",
        include_str!("../../../migrations/sqlite/0014_name_search_keys.sql"),
    ),
    (
        15,
        "kiosk keys",
        include_str!("../../../migrations/sqlite/0015_kiosk_keys.sql"),
    ),
    (
        16,
        "export patients",
        include_str!("../../../migrations/sqlite/0016_export_patients.sql"),
    ),
    (
        17,
        "name identity keys",
        include_str!("../../../migrations/sqlite/0017_name_identity_keys.sql"),
    ),
    (
        18,
        "queue counts",
        include_str!("../../../migrations/sqlite/0018_queue_counts.sql"),
    ),
    (
        19,
        "access log patients",
        include_str!("../../../migrations/sqlite/0019_access_log_patients.sql"),
    ),
];

/// Every migration of the PostgreSQL schema, in order.
pub static POSTGRES: &[Migration] = &[
    (
        1,
        "schema",
        include_str!("../../../migrations/postgres/0001_schema.sql"),
    ),
    (
        13,
        "jobs",
        include_str!("../../../migrations/postgres/0013_jobs.sql"),
    ),
    (
        14,
        "name search keys",
        include_str!("../../../migrations/postgres/0014_name_search_keys.sql"),
    ),
    (
        15,
        "kiosk keys",
        include_str!("../../../migrations/postgres/0015_kiosk_keys.sql"),
    ),
    (
        16,
        "export patients",
        include_str!("../../../migrations/postgres/0016_export_patients.sql"),
    ),
    (
        17,
        "name identity keys",
        include_str!("../../../migrations/postgres/0017_name_identity_keys.sql"),
    ),
    (
        18,
        "queue counts",
        include_str!("../../../migrations/postgres/0018_queue_counts.sql"),
    ),
    (
        19,
        "access log patients",
        include_str!("../../../migrations/postgres/0019_access_log_patients.sql"),
    ),
];

/// A migration as a database records it (`_sqlx_migrations`): version, checksum, success.
pub type Applied = (i64, Vec<u8>, bool);

/// A migration's checksum as sqlx records it: the SHA-384 of its SQL.
pub fn checksum(sql: &str) -> Vec<u8> {
    use sha2::{Digest, Sha384};
    Sha384::digest(sql.as_bytes()).to_vec()
}

/// What an engine must apply, in order of version, given what the database records; as sqlx
/// judges it, a migration that failed part-way, one changed since it was applied, or an
/// applied version this build does not know stops the open.
pub fn pending<'m>(
    applied: &[Applied],
    migrations: &[(i64, &'m str, &'m str)],
) -> Result<Vec<(i64, &'m str, &'m str)>, StoreError> {
    let all = migrations.to_vec();
    if let Some((v, ..)) = applied.iter().find(|(.., ok)| !ok) {
        return Err(StoreError::Other(format!(
            "migration {v} failed part-way (it is marked unsuccessful in _sqlx_migrations): \
             repair the database by hand, then delete that row"
        )));
    }
    for (version, sum, _) in applied {
        match all.iter().find(|(v, ..)| v == version) {
            None => {
                return Err(StoreError::Other(format!(
                    "the database has migration {version}, which this build does not know \
                     (a newer one migrated it)"
                )))
            }
            Some((.., sql)) if checksum(sql) != *sum => {
                return Err(StoreError::Other(format!(
                    "migration {version} was changed after it was applied"
                )))
            }
            Some(_) => {}
        }
    }
    let mut todo: Vec<_> = all
        .into_iter()
        .filter(|(v, ..)| !applied.iter().any(|(a, ..)| a == v))
        .collect();
    todo.sort_by_key(|(v, ..)| *v);
    Ok(todo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[Migration] = &[(2, "two", "SELECT 2"), (1, "one", "SELECT 1")];

    #[test]
    fn what_is_not_applied_comes_in_order_of_version() {
        let todo = pending(&[], M).unwrap();
        assert_eq!(todo.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2]);
        let todo = pending(&[(1, checksum("SELECT 1"), true)], M).unwrap();
        assert_eq!(todo.iter().map(|m| m.0).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_failed_changed_or_unknown_migration_stops_the_open() {
        let refused = |applied: &[Applied]| match pending(applied, M) {
            Err(StoreError::Other(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(&[(1, checksum("SELECT 1"), false)]).contains("failed part-way"));
        assert!(refused(&[(1, checksum("SELECT 9"), true)]).contains("was changed"));
        assert!(refused(&[(7, checksum("x"), true)]).contains("does not know"));
    }
}
