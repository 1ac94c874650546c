//! SQLite's failures classified once, by their (extended) result codes. Messages keep
//! SQLite's own words but never the SQL text or a file's path (they may reach logs).
use careq_store::StoreError;
use rusqlite::ErrorCode;

/// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE.
const CONSTRAINT_PRIMARYKEY: i32 = 1555;
const CONSTRAINT_UNIQUE: i32 = 2067;

/// How a failure of SQLite looks to the store.
pub fn classify(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, msg) => match (f.extended_code, f.code) {
            (CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY, _) => StoreError::Conflict,
            (_, ErrorCode::DiskFull) => StoreError::Full,
            (_, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Other(msg.unwrap_or_else(|| f.to_string())),
        },
        // Its Display quotes the whole statement; the message alone says what is wrong.
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            StoreError::Other(format!("{msg} (at offset {offset} of the statement)"))
        }
        rusqlite::Error::InvalidPath(_) => StoreError::other("the database path is not valid"),
        other => StoreError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(extended: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(extended), Some("m".into()))
    }

    #[test]
    fn each_result_code_maps_to_its_store_error() {
        let cases = [
            (failure(2067), StoreError::Conflict),
            (failure(1555), StoreError::Conflict),
            (failure(13), StoreError::Full),
            (failure(5), StoreError::Busy),
            (failure(517), StoreError::Busy), // SQLITE_BUSY_SNAPSHOT
            (failure(6), StoreError::Busy),
            (failure(787), StoreError::Other("m".into())), // a foreign key
            (rusqlite::Error::QueryReturnedNoRows, StoreError::NotFound),
        ];
        for (e, want) in cases {
            assert_eq!(classify(e), want);
        }
    }

    #[test]
    fn a_syntax_error_does_not_repeat_the_statement() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = classify(conn.prepare("SELEC secret_column").unwrap_err());
        assert!(!e.to_string().contains("secret_column"), "{e}");
    }
}
