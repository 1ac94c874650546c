//! A connection as a unit sees it: statements prepared once per connection and kept by their
//! text, parameters bound by the statement's own types, rows streamed to the unit. Every
//! failure passes through `fail`, which classifies it and remembers what the worker must know
//! afterwards: the database aborted the transaction for concurrency alone (run the unit
//! again), the connection is lost (open another), or the transaction is aborted (a COMMIT now
//! would silently roll back).
use std::collections::HashMap;

use careq_store::{Dialect, EachRow, Read, StoreError, Value, Write};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Statement};

use crate::error::{classify, is_lost, is_race, Side};
use crate::values::{Bind, PgRow};

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    pub client: Client,
    stmts: HashMap<String, Statement>,
}

impl Conn {
    pub fn new(client: Client) -> Conn {
        Conn {
            client,
            stmts: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// One unit's use of a connection: on a reader, autocommit statements on a read-only session;
/// on a writer, the unit's transaction.
pub(crate) struct Session<'c> {
    conn: &'c mut Conn,
    side: Side,
    /// A statement failed with a serialization failure or a deadlock.
    pub race: bool,
    /// The connection is of no further use.
    pub lost: bool,
    /// A statement failed outside any savepoint rolled back since: the transaction is aborted.
    pub aborted: bool,
    savepoints: u32,
}

impl<'c> Session<'c> {
    pub fn new(conn: &'c mut Conn, side: Side) -> Session<'c> {
        Session {
            conn,
            side,
            race: false,
            lost: false,
            aborted: false,
            savepoints: 0,
        }
    }

    fn fail(&mut self, e: postgres::Error) -> StoreError {
        self.race |= is_race(&e);
        self.lost |= is_lost(&e, self.side);
        self.aborted = true;
        classify(&e, self.side)
    }

    /// A statement of our own, through the simple protocol (nothing to bind).
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let r = self.conn.client.batch_execute(sql);
        r.map_err(|e| self.fail(e))
    }

    /// Runs `sql`, handing each row to `each`; how many rows it changed, if it says.
    fn run(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        each: EachRow<'_>,
    ) -> Result<u64, StoreError> {
        let stmt = match self.conn.statement(sql) {
            Ok(s) => s,
            Err(e) => return Err(self.fail(e)),
        };
        match stream(&mut self.conn.client, &stmt, params, each) {
            Ok(n) => Ok(n),
            Err(Stop::Db(e)) => {
                // "cached plan must not change result type": the table changed under the
                // statement (another process migrated); prepare it afresh next time.
                if e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) {
                    self.conn.stmts.remove(sql);
                }
                Err(self.fail(e))
            }
            Err(Stop::Unit(e)) => Err(e),
        }
    }
}

/// Why streaming rows stopped early.
enum Stop {
    Db(postgres::Error),
    /// The unit's own `each` refused a row.
    Unit(StoreError),
}

fn stream(
    client: &mut Client,
    stmt: &Statement,
    params: &[Value<'_>],
    each: EachRow<'_>,
) -> Result<u64, Stop> {
    let binds = params.iter().map(|v| Bind(*v));
    let mut rows = client.query_raw(stmt, binds).map_err(Stop::Db)?;
    while let Some(row) = rows.next().map_err(Stop::Db)? {
        each(&PgRow(&row)).map_err(Stop::Unit)?;
    }
    Ok(rows.rows_affected().unwrap_or(0))
}

impl Read for Session<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, p: &[Value<'_>], each: EachRow<'_>) -> Result<(), StoreError> {
        self.run(sql, p, each).map(|_| ())
    }
}

impl Write for Session<'_> {
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        self.run(sql, params, &mut |_| Ok(()))
    }

    /// Treated as a serialization failure: a refusal after it runs the unit again.
    fn lost_race(&mut self) {
        self.race = true;
    }

    fn hold(&mut self, table: &'static str, id: &str) -> Result<(), StoreError> {
        if !is_identifier(table) {
            return Err(StoreError::Other(format!("`{table}` is not a table name")));
        }
        // NO KEY UPDATE: blocks other writers of the row, not inserts referencing it.
        let sql = format!("SELECT 1 FROM {table} WHERE id = $1 FOR NO KEY UPDATE");
        self.run(&sql, &[Value::Text(id)], &mut |_| Ok(()))
            .map(|_| ())
    }

    fn savepoint(
        &mut self,
        part: &mut dyn FnMut(&mut dyn Write) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let name = format!("careq_{}", self.savepoints + 1);
        self.batch(&format!("SAVEPOINT {name}"))?;
        self.savepoints += 1;
        let out = part(self);
        self.savepoints -= 1;
        // A part that went on after a failed statement cannot be kept: PostgreSQL has aborted
        // everything since the savepoint.
        if matches!(out, Ok(true)) && !self.aborted {
            self.batch(&format!("RELEASE SAVEPOINT {name}"))?;
            return Ok(true);
        }
        self.batch(&format!(
            "ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        ))?;
        // The savepoint was taken in a healthy transaction, which it is again.
        self.aborted = false;
        out.map(|_| false)
    }
}

/// A plain SQL identifier: what `hold` accepts as a table name.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn only_plain_identifiers_are_table_names() {
        for ok in ["patients", "_x", "t1"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1t", "a b", "a;drop", "s.t", "\"t\"", "tä"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
