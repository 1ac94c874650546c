//! careq's schema, one list of migrations per engine (the files under `migrations/`), in the
//! form both engines' migrators take: (version, description, SQL). Recorded as sqlx records them,
//! so databases migrated by earlier versions of careq are recognised.

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
