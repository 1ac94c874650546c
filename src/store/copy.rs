//! Moving a clinic's data from SQLite to PostgreSQL (`careq migrate-data`): every row of every
//! table, in one PostgreSQL transaction, into a database that holds no data yet. Both schemas
//! have the same tables and column names, and PostgreSQL's columns mirror SQLite's storage
//! classes, so rows are copied generically: each value converted to the target column's type.
//! Parents are copied before the tables that refer to them (SQLite's foreign-key list), and
//! identity sequences are moved past the copied keys at the end.
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use anyhow::{bail, Context};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder, Row, TypeInfo, ValueRef};

/// How many rows went into each table.
#[derive(Debug)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

/// The bind-parameter budget of one INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// Copies every row of the SQLite database at `from` into the PostgreSQL database at `to`.
/// Both must already be migrated to this version's schema (`Store::open` does it); the target
/// must hold no rows in any table careq copies.
pub async fn sqlite_to_postgres(from: &str, to: &str) -> anyhow::Result<CopyReport> {
    let mut src = SqliteConnectOptions::from_str(from)
        .with_context(|| format!("reading the source URL {from}"))?
        .read_only(true)
        .connect()
        .await
        .context("opening the SQLite source")?;
    let mut dst = PgConnectOptions::from_str(to)
        .with_context(|| format!("reading the target URL {to}"))?
        .connect()
        .await
        .context("connecting to the PostgreSQL target")?;

    let order = tables_in_dependency_order(&mut src).await?;
    let target = target_columns(&mut dst).await?;
    for t in &order {
        if !target.contains_key(t) {
            bail!("the target has no table `{t}`: is it migrated by this version of careq?");
        }
    }

    // Reads see one snapshot of the source; writes become visible all at once, or not at all.
    let mut read = src.begin().await?;
    let mut tx = dst.begin().await?;
    for t in &order {
        let has_rows: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {t})"))
            .fetch_one(&mut *tx)
            .await?;
        if has_rows {
            bail!(
                "the target already holds rows in `{t}`; migrate-data copies into a database \
                 with no data (create a new one and point --to at it)"
            );
        }
    }
    let mut report = CopyReport { tables: Vec::new() };
    for t in &order {
        let columns = source_columns(&mut read, t).await?;
        let kinds = columns
            .iter()
            .map(|c| {
                target[t]
                    .get(c)
                    .map(|k| (c.clone(), *k))
                    .with_context(|| format!("the target's `{t}` has no column `{c}`"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let copied = copy_table(&mut read, &mut tx, t, &kinds).await?;
        report.tables.push((t.clone(), copied));
    }
    move_sequences(&mut tx).await?;
    // The counts must agree before anything becomes visible.
    for (t, copied) in &report.tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&mut *tx)
            .await?;
        if n as u64 != *copied {
            bail!("`{t}`: {copied} rows read but {n} in the target; nothing was committed");
        }
    }
    tx.commit().await.context("committing the copy")?;
    read.rollback().await.ok();
    // Fresh tables have no statistics: without them the planner guesses, and the first hours
    // of serving would pay for it (a list page sorted in full instead of read off its index).
    sqlx::query("ANALYZE")
        .execute(&mut dst)
        .await
        .context("analyzing the copied tables")?;
    Ok(report)
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

/// One value ready to bind, typed for its target column (a NULL keeps its type too).
enum Val {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

/// careq's tables, each after those it refers to.
async fn tables_in_dependency_order(src: &mut SqliteConnection) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *src)
    .await?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &names {
        let refs: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)")
                .bind(n)
                .fetch_all(&mut *src)
                .await?;
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

async fn source_columns(src: &mut SqliteConnection, table: &str) -> anyhow::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *src)
            .await?,
    )
}

/// Every table of the target's schema with its columns' kinds.
async fn target_columns(
    dst: &mut PgConnection,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, Kind>>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut *dst)
    .await?;
    let mut out: BTreeMap<String, BTreeMap<String, Kind>> = BTreeMap::new();
    for (table, column, ty) in rows {
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

async fn copy_table(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    table: &str,
    columns: &[(String, Kind)],
) -> anyhow::Result<u64> {
    let list = columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let per_insert = (MAX_PARAMS / columns.len().max(1)).max(1);
    let select = format!("SELECT {list} FROM {table}");
    let mut rows = sqlx::query(&select).fetch(&mut *src);
    let mut batch: Vec<Vec<Val>> = Vec::with_capacity(per_insert);
    let mut copied = 0u64;
    while let Some(row) = rows.try_next().await? {
        batch.push(convert(&row, table, columns)?);
        if batch.len() == per_insert {
            copied += insert(dst, table, &list, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        copied += insert(dst, table, &list, batch).await?;
    }
    Ok(copied)
}

async fn insert(
    dst: &mut PgConnection,
    table: &str,
    list: &str,
    batch: Vec<Vec<Val>>,
) -> anyhow::Result<u64> {
    // Keys keep their values, identity columns included.
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE "
    ));
    q.push_values(batch, |mut b, row| {
        for v in row {
            match v {
                Val::Int(v) => b.push_bind(v),
                Val::Float(v) => b.push_bind(v),
                Val::Text(v) => b.push_bind(v),
                Val::Bytes(v) => b.push_bind(v),
                Val::Bool(v) => b.push_bind(v),
            };
        }
    });
    let done = q
        .build()
        .execute(&mut *dst)
        .await
        .with_context(|| format!("inserting into `{table}`"))?;
    Ok(done.rows_affected())
}

/// One source row as values for the target's columns.
fn convert(row: &SqliteRow, table: &str, columns: &[(String, Kind)]) -> anyhow::Result<Vec<Val>> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, (name, kind)) in columns.iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let stored = if raw.is_null() {
            "NULL".to_string()
        } else {
            raw.type_info().name().to_string()
        };
        let wrong = || anyhow::anyhow!("`{table}.{name}`: a {stored} value for a {kind:?} column");
        let v = match (kind, stored.as_str()) {
            (Kind::Int, "NULL") => Val::Int(None),
            (Kind::Float, "NULL") => Val::Float(None),
            (Kind::Text, "NULL") => Val::Text(None),
            (Kind::Bytes, "NULL") => Val::Bytes(None),
            (Kind::Bool, "NULL") => Val::Bool(None),
            (Kind::Int, "INTEGER") => Val::Int(Some(row.try_get(i)?)),
            (Kind::Bool, "INTEGER") => Val::Bool(Some(row.try_get::<i64, _>(i)? != 0)),
            (Kind::Float, "INTEGER" | "REAL") => Val::Float(Some(row.try_get(i)?)),
            (Kind::Text, "TEXT") => Val::Text(Some(row.try_get(i)?)),
            (Kind::Text, "INTEGER") => Val::Text(Some(row.try_get::<i64, _>(i)?.to_string())),
            (Kind::Text, "REAL") => Val::Text(Some(row.try_get::<f64, _>(i)?.to_string())),
            (Kind::Bytes, "BLOB" | "TEXT") => Val::Bytes(Some(row.try_get(i)?)),
            (Kind::Int, "TEXT") => {
                let s: String = row.try_get(i)?;
                Val::Int(Some(s.trim().parse().map_err(|_| wrong())?))
            }
            _ => return Err(wrong()),
        };
        out.push(v);
    }
    Ok(out)
}

/// Moves every sequence behind an identity or serial column past the largest copied key, so
/// the next row PostgreSQL numbers does not collide with a copied one.
async fn move_sequences(dst: &mut PgConnection) -> anyhow::Result<()> {
    let owned: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() \
         AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
    )
    .fetch_all(&mut *dst)
    .await?;
    for (table, column) in owned {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max(\"{column}\")) \
             FROM {table} HAVING max(\"{column}\") IS NOT NULL"
        ))
        .execute(&mut *dst)
        .await
        .with_context(|| format!("moving the sequence of `{table}.{column}`"))?;
    }
    Ok(())
}
