//! careq-store's connection traits over a rusqlite connection: statements prepared once per
//! connection (keyed by their translated text), values bound by number, rows read by position.
use careq_store::{Dialect, EachRow, Read, Row, StoreError, Value, Write};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::error::classify;
use crate::params::numbered;

/// A unit's view of a connection: a reader's (inside its read transaction) or the writer's
/// (inside the unit's savepoint of the group transaction).
pub struct Conn<'c> {
    conn: &'c Connection,
    /// Savepoints of `Write::savepoint` open now, naming the next one.
    depth: u32,
    /// The last failure of a statement, which tells the writer why a group broke (a full disk
    /// ends SQLite's transaction under the unit that hit it).
    pub last_error: Option<StoreError>,
}

impl<'c> Conn<'c> {
    pub fn new(conn: &'c Connection) -> Conn<'c> {
        Conn {
            conn,
            depth: 0,
            last_error: None,
        }
    }

    fn note<T>(&mut self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| {
            let e = classify(e);
            self.last_error = Some(e.clone());
            e
        })
    }

    /// Runs a statement without parameters or rows (transaction control).
    pub fn run(&mut self, sql: &str) -> Result<(), StoreError> {
        let r = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([]));
        self.note(r).map(drop)
    }
}

/// A `Value` as rusqlite binds it, borrowed.
struct Bind<'a, 'v>(&'a Value<'v>);

impl ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(v),
            Value::Real(v) => ValueRef::Real(v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn binds<'a, 'v>(params: &'a [Value<'v>]) -> impl Iterator<Item = Bind<'a, 'v>> {
    params.iter().map(Bind)
}

impl Read for Conn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, p: &[Value<'_>], each: EachRow<'_>) -> Result<(), StoreError> {
        let conn = self.conn;
        // Translating again each time costs one scan of the text, about what looking the
        // translation up in a cache would; the statement cache keys by the translated text.
        let mut stmt = self.note(conn.prepare_cached(&numbered(sql)))?;
        let mut rows = self.note(stmt.query(rusqlite::params_from_iter(binds(p))))?;
        loop {
            match rows.next() {
                Ok(Some(row)) => each(&SqliteRow(row))?,
                Ok(None) => return Ok(()),
                Err(e) => return self.note(Err(e)),
            }
        }
    }
}

impl Write for Conn<'_> {
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let conn = self.conn;
        let mut stmt = self.note(conn.prepare_cached(&numbered(sql)))?;
        let n = self.note(stmt.execute(rusqlite::params_from_iter(binds(params))))?;
        Ok(n as u64)
    }

    /// The one writer already holds the whole database for the unit.
    fn hold(&mut self, _table: &'static str, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// No other unit runs between this unit's statements, so a race cannot be lost here: the
    /// unit's refusal stands.
    fn lost_race(&mut self) {}

    fn savepoint(
        &mut self,
        part: &mut dyn FnMut(&mut dyn Write) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let name = format!("part{}", self.depth);
        self.run(&format!("SAVEPOINT {name}"))?;
        self.depth += 1;
        let out = part(self);
        self.depth -= 1;
        if matches!(out, Ok(true)) {
            self.run(&format!("RELEASE {name}"))?;
        } else {
            self.run(&format!("ROLLBACK TO {name}"))?;
            self.run(&format!("RELEASE {name}"))?;
        }
        out
    }
}

/// One row of a result.
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl SqliteRow<'_, '_> {
    fn get(&self, i: usize) -> Result<ValueRef<'_>, StoreError> {
        self.0.get_ref(i).map_err(classify)
    }

    fn mismatch(&self, i: usize, want: &str, got: ValueRef<'_>) -> StoreError {
        let name = self.0.as_ref().column_name(i).unwrap_or("?");
        StoreError::Other(format!(
            "column {i} ({name}) holds {} where {want} is required",
            got.data_type()
        ))
    }
}

impl Row for SqliteRow<'_, '_> {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(self.mismatch(i, "an integer", other)),
        }
    }

    fn opt_real(&self, i: usize) -> Result<Option<f64>, StoreError> {
        match self.get(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(v) => Ok(Some(v)),
            // An expression over REAL columns may come back as an integer (`SUM`, `0`).
            ValueRef::Integer(v) => Ok(Some(v as f64)),
            other => Err(self.mismatch(i, "a real", other)),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| StoreError::Other(format!("column {i} is not UTF-8 text"))),
            other => Err(self.mismatch(i, "text", other)),
        }
    }

    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(v) => Ok(Some(v.to_vec())),
            other => Err(self.mismatch(i, "bytes", other)),
        }
    }
}
