//! Moving a clinic's data from SQLite to PostgreSQL (`careq migrate-data`): every row of every
//! table, in one PostgreSQL transaction, into a database that holds no data yet. Both schemas
//! have the same tables and column names, and PostgreSQL's columns mirror SQLite's storage
//! classes, so rows are copied generically: each value converted to the target column's type.
//! Parents are copied before the tables that refer to them (SQLite's foreign-key list), and
//! identity sequences are moved past the copied keys at the end. The target's triggers are off
//! while rows are copied (the rows already carry what they would derive).
//!
//! The copy is synchronous (rusqlite reads the source, the `postgres` client writes the
//! target); the async entry point runs it on a blocking thread of the runtime.
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use postgres::types::ToSql;
use postgres::{NoTls, Statement};
use rusqlite::types::ValueRef;
use rusqlite::{OpenFlags, TransactionBehavior};

/// How many rows went into each table.
#[derive(Debug)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

/// The bind-parameter budget of one INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// How long a read of the source waits for a writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies every row of the SQLite database at `from` into the PostgreSQL database at `to`.
/// Both must already be migrated to this version's schema (`Store::open` does it); the target
/// must hold no rows in any table careq copies.
pub async fn sqlite_to_postgres(from: &str, to: &str) -> anyhow::Result<CopyReport> {
    let (from, to) = (from.to_string(), to.to_string());
    match tokio::task::spawn_blocking(move || copy(&from, &to)).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(anyhow::anyhow!("the copy was stopped: {e}")),
    }
}

/// The whole copy, on the calling thread.
fn copy(from: &str, to: &str) -> anyhow::Result<CopyReport> {
    let path = sqlite_path(from);
    if path.is_empty() {
        bail!("reading the source URL {from}: it names no database file");
    }
    let mut src = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("opening the SQLite source")?;
    src.busy_timeout(BUSY_TIMEOUT)
        .context("opening the SQLite source")?;
    let mut dst = postgres::Config::from_str(to)
        .with_context(|| format!("reading the target URL {to}"))?
        .connect(NoTls)
        .context("connecting to the PostgreSQL target")?;

    let order = tables_in_dependency_order(&src)?;
    let target = target_columns(&mut dst)?;
    for t in &order {
        if !target.contains_key(t) {
            bail!("the target has no table `{t}`: is it migrated by this version of careq?");
        }
    }

    // Reads see one snapshot of the source; writes become visible all at once, or not at all.
    let read = src.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let mut tx = dst.transaction()?;
    for t in &order {
        let has_rows: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", ident(t)), &[])?
            .try_get(0)?;
        if has_rows {
            bail!(
                "the target already holds rows in `{t}`; migrate-data copies into a database \
                 with no data (create a new one and point --to at it)"
            );
        }
    }
    // The source's rows already hold what the target's triggers would derive from them (the
    // waiting counts of each queue, say): they stay off while rows arrive, and are on again
    // before the commit, so no other session ever sees them off.
    let triggers = triggers_to_hold(&mut tx, &order)?;
    for (t, name) in &triggers {
        tx.batch_execute(&format!(
            "ALTER TABLE {} DISABLE TRIGGER {}",
            ident(t),
            ident(name)
        ))
        .with_context(|| format!("turning off the trigger `{name}` of `{t}` for the copy"))?;
    }
    let mut report = CopyReport { tables: Vec::new() };
    for t in &order {
        let columns = source_columns(&read, t)?;
        let kinds = columns
            .iter()
            .map(|c| {
                target[t]
                    .get(c)
                    .map(|k| (c.clone(), *k))
                    .with_context(|| format!("the target's `{t}` has no column `{c}`"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let copied = copy_table(&read, &mut tx, t, &kinds)?;
        report.tables.push((t.clone(), copied));
    }
    move_sequences(&mut tx)?;
    for (t, name) in &triggers {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ENABLE TRIGGER {}",
            ident(t),
            ident(name)
        ))
        .with_context(|| format!("turning the trigger `{name}` of `{t}` on again"))?;
    }
    // The counts must agree before anything becomes visible.
    for (t, copied) in &report.tables {
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", ident(t)), &[])?
            .try_get(0)?;
        if n as u64 != *copied {
            bail!("`{t}`: {copied} rows read but {n} in the target; nothing was committed");
        }
    }
    tx.commit().context("committing the copy")?;
    read.rollback().ok();
    // Fresh tables have no statistics: without them the planner guesses, and the first hours
    // of serving would pay for it (a list page sorted in full instead of read off its index).
    dst.batch_execute("ANALYZE")
        .context("analyzing the copied tables")?;
    Ok(report)
}

/// The file a `sqlite:` URL names (`sqlite://PATH` or `sqlite:PATH`; options after `?` are
/// not needed for reading).
fn sqlite_path(url: &str) -> &str {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or(rest)
}

/// A name as a quoted SQL identifier (the same text in both engines).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a target column holds, as far as copying needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Text,
    Bytes,
    Bool,
}

impl Kind {
    /// The type a parameter of this kind is sent as; PostgreSQL converts it to the column's
    /// own type on assignment (an `integer` column takes a `bigint`, a `numeric` a `float8`).
    fn param_type(self) -> &'static str {
        match self {
            Kind::Int => "int8",
            Kind::Float => "float8",
            Kind::Text => "text",
            Kind::Bytes => "bytea",
            Kind::Bool => "bool",
        }
    }
}

/// One value ready to bind, typed for its target column (a NULL keeps its type too).
enum Val {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Val {
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::Int(v) => v,
            Val::Float(v) => v,
            Val::Text(v) => v,
            Val::Bytes(v) => v,
            Val::Bool(v) => v,
        }
    }
}

/// careq's tables, each after those it refers to.
fn tables_in_dependency_order(src: &rusqlite::Connection) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = src
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refs_of = src.prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?;
    for n in &names {
        let refs: Vec<String> = refs_of
            .query_map([n], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        parents.insert(n.clone(), refs.into_iter().filter(|r| r != n).collect());
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < names.len() {
        let ready: Vec<String> = names
            .iter()
            .filter(|n| !order.contains(n))
            .filter(|n| parents[*n].iter().all(|p| order.contains(p)))
            .cloned()
            .collect();
        if ready.is_empty() {
            bail!("the source's foreign keys form a cycle; cannot order the copy");
        }
        order.extend(ready);
    }
    Ok(order)
}

fn source_columns(src: &rusqlite::Connection, table: &str) -> anyhow::Result<Vec<String>> {
    Ok(src
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Every table of the target's schema with its columns' kinds.
fn target_columns(
    dst: &mut postgres::Client,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, Kind>>> {
    let rows = dst.query(
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = current_schema()",
        &[],
    )?;
    let mut out: BTreeMap<String, BTreeMap<String, Kind>> = BTreeMap::new();
    for row in rows {
        let (table, column, ty): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let kind = match ty.as_str() {
            "bigint" | "integer" | "smallint" => Kind::Int,
            "double precision" | "real" | "numeric" => Kind::Float,
            "bytea" => Kind::Bytes,
            "boolean" => Kind::Bool,
            _ => Kind::Text,
        };
        out.entry(table).or_default().insert(column, kind);
    }
    Ok(out)
}

fn copy_table(
    src: &rusqlite::Connection,
    dst: &mut postgres::Transaction<'_>,
    table: &str,
    columns: &[(String, Kind)],
) -> anyhow::Result<u64> {
    let list = columns
        .iter()
        .map(|(c, _)| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let per_insert = (MAX_PARAMS / columns.len().max(1)).max(1);
    let mut select = src.prepare(&format!("SELECT {list} FROM {}", ident(table)))?;
    let mut rows = select.query([])?;
    // Every full batch has the same shape: prepared once per table.
    let mut full: Option<Statement> = None;
    let mut batch: Vec<Vec<Val>> = Vec::with_capacity(per_insert);
    let mut copied = 0u64;
    while let Some(row) = rows.next()? {
        batch.push(convert(row, table, columns)?);
        if batch.len() == per_insert {
            let statement = match &full {
                Some(s) => s.clone(),
                None => {
                    let s = prepare_insert(dst, table, &list, columns, per_insert)?;
                    full = Some(s.clone());
                    s
                }
            };
            copied += insert(dst, &statement, table, &batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let statement = prepare_insert(dst, table, &list, columns, batch.len())?;
        copied += insert(dst, &statement, table, &batch)?;
    }
    Ok(copied)
}

/// `INSERT … VALUES (…), (…)` for `rows` rows, each parameter typed by its column's kind.
fn prepare_insert(
    dst: &mut postgres::Transaction<'_>,
    table: &str,
    list: &str,
    columns: &[(String, Kind)],
    rows: usize,
) -> anyhow::Result<Statement> {
    // Keys keep their values, identity columns included.
    let mut sql = format!(
        "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE VALUES ",
        ident(table)
    );
    let mut n = 0usize;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, (_, kind)) in columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}::{}", kind.param_type()));
        }
        sql.push(')');
    }
    dst.prepare(&sql)
        .with_context(|| format!("inserting into `{table}`"))
}

fn insert(
    dst: &mut postgres::Transaction<'_>,
    statement: &Statement,
    table: &str,
    batch: &[Vec<Val>],
) -> anyhow::Result<u64> {
    let params: Vec<&(dyn ToSql + Sync)> = batch.iter().flatten().map(Val::param).collect();
    dst.execute(statement, &params)
        .with_context(|| format!("inserting into `{table}`"))
}

/// One source row as values for the target's columns.
fn convert(
    row: &rusqlite::Row<'_>,
    table: &str,
    columns: &[(String, Kind)],
) -> anyhow::Result<Vec<Val>> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, (name, kind)) in columns.iter().enumerate() {
        let raw = row.get_ref(i)?;
        let stored = match raw {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "INTEGER",
            ValueRef::Real(_) => "REAL",
            ValueRef::Text(_) => "TEXT",
            ValueRef::Blob(_) => "BLOB",
        };
        let wrong = || anyhow::anyhow!("`{table}.{name}`: a {stored} value for a {kind:?} column");
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| anyhow::anyhow!("`{table}.{name}`: a TEXT value that is not UTF-8"))
        };
        let v = match (kind, raw) {
            (Kind::Int, ValueRef::Null) => Val::Int(None),
            (Kind::Float, ValueRef::Null) => Val::Float(None),
            (Kind::Text, ValueRef::Null) => Val::Text(None),
            (Kind::Bytes, ValueRef::Null) => Val::Bytes(None),
            (Kind::Bool, ValueRef::Null) => Val::Bool(None),
            (Kind::Int, ValueRef::Integer(n)) => Val::Int(Some(n)),
            (Kind::Bool, ValueRef::Integer(n)) => Val::Bool(Some(n != 0)),
            (Kind::Float, ValueRef::Integer(n)) => Val::Float(Some(n as f64)),
            (Kind::Float, ValueRef::Real(f)) => Val::Float(Some(f)),
            (Kind::Text, ValueRef::Text(s)) => Val::Text(Some(text(s)?)),
            (Kind::Text, ValueRef::Integer(n)) => Val::Text(Some(n.to_string())),
            (Kind::Text, ValueRef::Real(f)) => Val::Text(Some(f.to_string())),
            (Kind::Bytes, ValueRef::Blob(b) | ValueRef::Text(b)) => Val::Bytes(Some(b.to_vec())),
            (Kind::Int, ValueRef::Text(s)) => {
                let s = text(s)?;
                Val::Int(Some(s.trim().parse().map_err(|_| wrong())?))
            }
            _ => return Err(wrong()),
        };
        out.push(v);
    }
    Ok(out)
}

/// The target's own triggers (not the ones PostgreSQL makes for foreign keys, which keep
/// checking) that are on and belong to a copied table, as (table, trigger).
fn triggers_to_hold(
    dst: &mut postgres::Transaction<'_>,
    tables: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let rows = dst.query(
        "SELECT c.relname::text, g.tgname::text FROM pg_trigger g \
         JOIN pg_class c ON c.oid = g.tgrelid \
         JOIN pg_namespace s ON s.oid = c.relnamespace \
         WHERE s.nspname = current_schema() AND NOT g.tgisinternal AND g.tgenabled = 'O' \
         ORDER BY 1, 2",
        &[],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (table, name): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if tables.contains(&table) {
            out.push((table, name));
        }
    }
    Ok(out)
}

/// Moves every sequence behind an identity or serial column past the largest copied key, so
/// the next row PostgreSQL numbers does not collide with a copied one.
fn move_sequences(dst: &mut postgres::Transaction<'_>) -> anyhow::Result<()> {
    let owned = dst.query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() \
         AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
        &[],
    )?;
    for row in owned {
        let (table, column): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        dst.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max(\"{column}\")) \
                 FROM {table} HAVING max(\"{column}\") IS NOT NULL"
            ),
            &[],
        )
        .with_context(|| format!("moving the sequence of `{table}.{column}`"))?;
    }
    Ok(())
}
