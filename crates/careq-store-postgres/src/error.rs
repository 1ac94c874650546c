//! The one place PostgreSQL's failures get their storage class, by SQLSTATE. Messages of
//! `Other` carry the code, the server's one-line message with every quoted part elided (where
//! PostgreSQL quotes a value, a name or a piece of the SQL) and the table, column or
//! constraint the server names: never a value, the SQL or a host name.
use careq_store::StoreError;
use postgres::error::SqlState;

/// Where a statement ran: the same code means something else on a reader than on a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Reader,
    Writer,
}

/// The storage class of a failure.
pub(crate) fn classify(err: &postgres::Error, side: Side) -> StoreError {
    if let Some(db) = err.as_db_error() {
        return by_code(db.code().code(), side).unwrap_or_else(|| {
            StoreError::Other(format!("{}: {}", db.code().code(), db.message()))
        });
    }
    if is_lost(err, side) {
        // The server went away or the connection broke: a moment later another may serve.
        return StoreError::Busy;
    }
    // Our own conversions (parameters, columns): their text is ours.
    StoreError::Other(err.to_string())
}

/// A server error as `Other` says it.
pub(crate) fn describe(db: &postgres::error::DbError) -> String {
    let mut out = format!("{}: {}", db.code().code(), elide_quoted(db.message()));
    let named = [
        ("table", db.table()),
        ("column", db.column()),
        ("constraint", db.constraint()),
    ];
    for (what, name) in named {
        if let Some(name) = name {
            out.push_str(&format!(", {what} {name}"));
        }
    }
    out
}

/// `message` with each double-quoted part replaced by `"…"`.
fn elide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('"').enumerate() {
        match i {
            0 => out.push_str(part),
            _ if i % 2 == 1 => out.push_str("\"…"),
            _ => {
                out.push('"');
                out.push_str(part);
            }
        }
    }
    if message.matches('"').count() % 2 == 1 {
        out.push('"');
    }
    out
}

fn by_code(code: &str, side: Side) -> Option<StoreError> {
    Some(match code {
        "23505" => StoreError::Conflict,
        // disk_full
        "53100" => StoreError::Full,
        // no_data_found (PL/pgSQL STRICT)
        "P0002" => StoreError::NotFound,
        // serialization_failure and deadlock_detected (retried first), lock_not_available
        // (lock_timeout: held past the busy timeout), too_many_connections, admin and crash
        // shutdown, cannot_connect_now (starting up or in recovery).
        "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03" => StoreError::Busy,
        // A writer on a server that is read-only now: a primary demoted by a failover. The
        // connection is dropped (see `is_lost`) and the next one finds the new primary.
        "25006" if side == Side::Writer => StoreError::Busy,
        c if c.starts_with("08") => StoreError::Busy,
        _ => return None,
    })
}

/// Whether the database aborted the transaction for concurrency alone (a serialization
/// failure, a deadlock): running the unit again, in a fresh transaction, may well succeed.
pub(crate) fn is_race(err: &postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether the connection is of no further use: broken, closed by the server, or (for a
/// writer) on a server that no longer takes writes.
pub(crate) fn is_lost(err: &postgres::Error, side: Side) -> bool {
    if err.is_closed() {
        return true;
    }
    if let Some(code) = err.code() {
        let c = code.code();
        return c.starts_with("08")
            || matches!(c, "57P01" | "57P02" | "57P03")
            || (c == "25006" && side == Side::Writer);
    }
    // An I/O error is the socket's; a statement's own failures are database errors above.
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_parts_of_a_message_are_elided() {
        let cases = [
            (
                r#"invalid input syntax for type bigint: "0771 234 567""#,
                r#"invalid input syntax for type bigint: "…""#,
            ),
            (
                r#"relation "x" does not exist"#,
                r#"relation "…" does not exist"#,
            ),
            (r#"a "b" c "d" e"#, r#"a "…" c "…" e"#),
            ("no quotes", "no quotes"),
            (r#"unterminated "secret"#, r#"unterminated "…""#),
        ];
        for (message, want) in cases {
            assert_eq!(elide_quoted(message), want);
        }
    }

    #[test]
    fn each_sqlstate_gets_its_storage_class() {
        let cases = [
            ("23505", Side::Writer, Some(StoreError::Conflict)),
            ("53100", Side::Writer, Some(StoreError::Full)),
            ("P0002", Side::Reader, Some(StoreError::NotFound)),
            ("40001", Side::Writer, Some(StoreError::Busy)),
            ("40P01", Side::Writer, Some(StoreError::Busy)),
            ("55P03", Side::Writer, Some(StoreError::Busy)),
            ("57P01", Side::Reader, Some(StoreError::Busy)),
            ("57P03", Side::Writer, Some(StoreError::Busy)),
            ("08006", Side::Reader, Some(StoreError::Busy)),
            ("25006", Side::Writer, Some(StoreError::Busy)),
            ("25006", Side::Reader, None),
            ("42P01", Side::Writer, None),
        ];
        for (code, side, want) in cases {
            assert_eq!(by_code(code, side), want, "{code} on {side:?}");
        }
    }
}
