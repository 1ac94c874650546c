//! The access log, idempotency outcomes and settings as the store keeps them: each function
//! runs one query of `careq_store::access` on a unit's connection. Entries read back become the
//! app's `LogEntry` (with its serde and OpenAPI derives); an outcome whose key is taken is a
//! conflict.
use careq_store::access as q;

/// The `resource_id` of the one entry of a request that returned several patients.
pub use careq_store::access::SEVERAL;

use crate::store::{LogEntry, LogFilter, LogRow, Outcome, Read, StoreError, Write};

/// Appends entries inside the unit.
pub fn append_access(conn: &mut dyn Write, rows: &[&LogRow]) -> Result<(), StoreError> {
    q::append(conn, rows)
}

/// Entries about one record, oldest first after `after`, at most `limit + 1`; for a patient
/// also those about resources carrying the patient's data.
pub fn access_entries(
    conn: &mut dyn Read,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    Ok(q::entries(conn, resource_type, resource_id, after, limit)?
        .into_iter()
        .map(LogEntry::from)
        .collect())
}

/// Entries matching `f`, oldest first after sequence number `after`, at most `limit + 1`.
pub fn access_log(
    conn: &mut dyn Read,
    f: &LogFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    Ok(q::log(conn, f, after, limit)?
        .into_iter()
        .map(LogEntry::from)
        .collect())
}

/// Removes the entries before `before` up to sequence number `through` (an archive written
/// first); how many.
pub fn purge_access_log(
    conn: &mut dyn Write,
    before: &str,
    through: i64,
) -> Result<u64, StoreError> {
    q::purge(conn, before, through)
}

/// Stores an outcome, first dropping those created before `expired_before`; `Conflict` when one
/// is stored under the caller's key already.
pub fn save_outcome(
    conn: &mut dyn Write,
    o: &Outcome,
    expired_before: i64,
) -> Result<(), StoreError> {
    if q::save_outcome(conn, o, expired_before)? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// The completed outcome stored under the caller's key at or after `since` (Unix seconds).
pub fn find_outcome(
    conn: &mut dyn Read,
    caller_id: &str,
    key: &str,
    since: i64,
) -> Result<Option<Outcome>, StoreError> {
    q::find_outcome(conn, caller_id, key, since)
}

/// The value of a setting, storing `value` first if there is none (the first writer wins).
pub fn setting_or_insert(
    conn: &mut dyn Write,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    q::setting_or_insert(conn, key, value)
}
