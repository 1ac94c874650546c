//! What a statement sends and reads back, and the connections units get. Both engines' schemas
//! use the same four storage classes (integers — 0/1 flags included —, reals, text, bytes), so
//! one value type serves both, and one SQL text serves both wherever the SQL agrees: parameters
//! are written `$1`, `$2`… (each engine binds them by number).

use crate::StoreError;

/// Which SQL a connection speaks, for the few statements the engines write differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One parameter of a statement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value<'_> {
    /// Flags are stored as 0/1 integers on both engines.
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(v)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One row of a result, read by column position. A NULL or a value of another storage class
/// where one is required is `StoreError::Other` (a schema mismatch, never the client's fault).
pub trait Row {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn opt_real(&self, i: usize) -> Result<Option<f64>, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| null_at(i))
    }
    fn real(&self, i: usize) -> Result<f64, StoreError> {
        self.opt_real(i)?.ok_or_else(|| null_at(i))
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| null_at(i))
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(i)?.ok_or_else(|| null_at(i))
    }
    /// A 0/1 flag.
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}

fn null_at(i: usize) -> StoreError {
    StoreError::Other(format!("column {i} is NULL where a value is required"))
}

/// A connection a unit reads through. On a read unit it is a read-only connection; in a write
/// unit, the unit's own transaction (so the unit reads its own writes).
pub trait Read {
    fn dialect(&self) -> Dialect;
    /// Runs `sql` with `params`, handing each row to `each` in order. Statements are prepared
    /// once per connection and kept (keyed by their text).
    fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        each: EachRow<'_>,
    ) -> Result<(), StoreError>;
}

/// What [`Read::query`] hands each row to, in order; an error stops the query.
pub type EachRow<'a> = &'a mut dyn FnMut(&dyn Row) -> Result<(), StoreError>;

/// Shorthands over [`Read::query`] (for `dyn Read` and `dyn Write` alike).
pub trait ReadExt: Read {
    /// Every row, each turned into a `T`.
    fn all<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        f: impl Fn(&dyn Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.query(sql, params, &mut |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row, if any, turned into a `T`.
    fn first<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        f: impl Fn(&dyn Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut out = None;
        self.query(sql, params, &mut |r| {
            if out.is_none() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The integer in the first column of the first row (a count, an id), if any.
    fn int(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Option<i64>, StoreError> {
        Ok(self.first(sql, params, |r| r.opt_int(0))?.flatten())
    }
}

impl<R: Read + ?Sized> ReadExt for R {}

/// The connection of a write unit: one transaction (on SQLite, the unit's savepoint inside the
/// writer's group transaction). Everything a unit does is kept or undone together.
pub trait Write: Read {
    /// Runs a statement that changes rows; how many it changed.
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError>;
    /// Holds one row of `table` against other writers until the unit ends, so what the unit
    /// reads of it next is still so when it writes. SQLite's one writer holds everything
    /// already; PostgreSQL locks the row (`FOR NO KEY UPDATE`). `table` is a name from code.
    fn hold(&mut self, table: &'static str, id: &str) -> Result<(), StoreError>;
    /// Says the unit lost a race: a row it read changed under it (a versioned update matched
    /// nothing), so its answer would be stale. When the unit then refuses (returns `Err`), an
    /// engine whose units can interleave (PostgreSQL) undoes it and runs it again from the
    /// start in a fresh transaction, as after a serialization failure; on SQLite's one writer
    /// nothing changes between a unit's statements, and the refusal stands.
    fn lost_race(&mut self);
    /// Runs `part` inside a savepoint: kept when it returns true, undone alone when it returns
    /// false (a batch item that failed, say), while the rest of the unit goes on.
    fn savepoint(
        &mut self,
        part: &mut dyn FnMut(&mut dyn Write) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_flags_become_the_values_both_schemas_store() {
        assert_eq!(Value::from(None::<&str>), Value::Null);
        assert_eq!(Value::from(Some(3_i64)), Value::Int(3));
        assert_eq!(Value::from(true), Value::Int(1));
        assert_eq!(Value::from("a"), Value::Text("a"));
    }
}
