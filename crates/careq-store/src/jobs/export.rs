//! An export's reads: which rows a scope takes, counted and paged by id. The scope's clinics
//! and dated windows go in as JSON text, unpacked by each engine's JSON table function (the one
//! place the SQL differs: `json_each` on SQLite, `json_array_elements` on PostgreSQL, both
//! yielding a `value` column, so the rest of the text is shared).
use super::json;
use crate::{Dialect, Read, ReadExt, Row, StoreError, Value};

/// Which rows an export takes: one kind, the clinics in scope, sealed records or not, a range
/// of days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportScope {
    /// `patients`, `appointments` or `queue`.
    pub kind: String,
    /// `None`: every clinic.
    pub clinic_ids: Option<Vec<String>>,
    /// Whether sealed patients' records are included (admins only).
    pub sealed: bool,
    /// Inclusive `YYYY-MM-DD` bounds on the row's day on its clinic's clock.
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    /// What those days are on each clinic's clock (not stored: the runner works them out from
    /// the clinics' zones, and the app turns them into the windows' JSON for [`count`] and
    /// [`page`]).
    pub windows: Vec<ClinicWindow>,
}

/// A dated export's instants for one clinic: `[from, to)` in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicWindow {
    pub clinic_id: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One value of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One exported row: its id (the paging key) and its cells in the kind's column order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub id: String,
    pub cells: Vec<Cell>,
    /// The patient the row names and the version of their record in the export's snapshot.
    pub patient: Option<(String, i64)>,
}

/// The type of an exported column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    Real,
}

/// The columns each kind of export writes, in order (`id` first, the paging key).
pub fn export_columns(kind: &str) -> &'static [(&'static str, ColumnType)] {
    use ColumnType::*;
    match kind {
        "patients" => &[
            ("id", Text),
            ("clinic_id", Text),
            ("mrn", Text),
            ("given_name", Text),
            ("family_name", Text),
            ("date_of_birth", Text),
            ("sex", Text),
            ("phone", Text),
            ("email", Text),
            ("address", Text),
            ("height_cm", Real),
            ("weight_kg", Real),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        "appointments" => &[
            ("id", Text),
            ("clinic_id", Text),
            ("patient_id", Text),
            ("clinician_id", Text),
            ("start_at", Text),
            ("duration_minutes", Int),
            ("reason", Text),
            ("status", Text),
            ("ticket_id", Text),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        _ => &[
            ("id", Text),
            ("clinic_id", Text),
            ("day", Text),
            ("number", Text),
            ("patient_id", Text),
            ("priority", Text),
            ("status", Text),
            ("counter", Text),
            ("issued_ms", Int),
            ("called_ms", Int),
            ("finished_ms", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
    }
}

/// The rows of the JSON array in parameter `p`, each in a column `value`. PostgreSQL infers a
/// parameter's type from its use, so it is read as text first, then as JSON.
pub(super) fn elements(d: Dialect, p: &str) -> String {
    match d {
        Dialect::Sqlite => format!("json_each({p})"),
        Dialect::Postgres => format!("json_array_elements(CAST({p} AS TEXT)::json)"),
    }
}

/// The scope's rule for the kind: table `x`, sealed records (`$2`), dated windows (`$3`, the
/// JSON array of `ExportScope::windows_json` in the app: `c` the clinic, `f`/`t` Unix seconds,
/// `fs`/`ts` the same instants as text, `fd`/`td` the inclusive days).
fn source(d: Dialect, kind: &str) -> (&'static str, String) {
    let w = elements(d, "$3");
    match kind {
        "patients" => (
            "patients x",
            format!(
                "x.deleted_at IS NULL AND x.merged_into IS NULL
                 AND (CAST($2 AS BIGINT) = 1 OR x.sealed_at IS NULL)
                 AND (CAST($3 AS TEXT) IS NULL OR EXISTS (
                     SELECT 1 FROM {w} w
                     WHERE w.value ->> 'c' = x.clinic_id
                       AND (w.value ->> 'fs' IS NULL OR x.created_at >= w.value ->> 'fs')
                       AND (w.value ->> 'ts' IS NULL OR x.created_at < w.value ->> 'ts')))"
            ),
        ),
        "appointments" => (
            "appointments x",
            format!(
                "x.deleted_at IS NULL
                 AND (CAST($2 AS BIGINT) = 1 OR NOT EXISTS (
                     SELECT 1 FROM patients s WHERE s.id = x.patient_id AND s.sealed_at IS NOT NULL))
                 AND (CAST($3 AS TEXT) IS NULL OR EXISTS (
                     SELECT 1 FROM {w} w
                     WHERE w.value ->> 'c' = x.clinic_id
                       AND (w.value ->> 'f' IS NULL
                            OR x.start_unix >= CAST(w.value ->> 'f' AS BIGINT))
                       AND (w.value ->> 't' IS NULL
                            OR x.start_unix < CAST(w.value ->> 't' AS BIGINT))))"
            ),
        ),
        _ => (
            "tickets x",
            format!(
                "(CAST($2 AS BIGINT) = 1 OR x.patient_id IS NULL OR NOT EXISTS (
                     SELECT 1 FROM patients s WHERE s.id = x.patient_id AND s.sealed_at IS NOT NULL))
                 AND (CAST($3 AS TEXT) IS NULL OR EXISTS (
                     SELECT 1 FROM {w} w
                     WHERE w.value ->> 'c' = x.clinic_id
                       AND (w.value ->> 'fd' IS NULL OR x.day >= w.value ->> 'fd')
                       AND (w.value ->> 'td' IS NULL OR x.day <= w.value ->> 'td')))"
            ),
        ),
    }
}

/// The patient a row names and the version of their record, as the export reads them.
fn named_patient(kind: &str) -> &'static str {
    match kind {
        "patients" => "x.id, x.version",
        _ => "x.patient_id, (SELECT n.version FROM patients n WHERE n.id = x.patient_id)",
    }
}

fn filtered(d: Dialect, scope: &ExportScope, select: &str, tail: &str) -> String {
    let (table, rule) = source(d, &scope.kind);
    let clinics = match d {
        Dialect::Sqlite => "json_each($1)".to_string(),
        Dialect::Postgres => "json_array_elements_text(CAST($1 AS TEXT)::json)".to_string(),
    };
    format!(
        "SELECT {select} FROM {table}
         WHERE (CAST($1 AS TEXT) IS NULL OR x.clinic_id IN (SELECT value FROM {clinics}))
           AND {rule} {tail}"
    )
}

/// How many rows an export of `scope` writes; `windows`: the scope's windows as JSON (`None`
/// when it is not dated).
pub fn count(
    r: &mut dyn Read,
    scope: &ExportScope,
    windows: Option<&str>,
) -> Result<i64, StoreError> {
    let sql = filtered(r.dialect(), scope, "COUNT(*)", "");
    let clinics = scope.clinic_ids.as_deref().map(json::strings);
    let params = [
        clinics.as_deref().into(),
        scope.sealed.into(),
        windows.into(),
    ];
    Ok(r.int(&sql, &params)?.unwrap_or(0))
}

/// The export's rows after id `after` in id order (keyset), at most `limit`.
pub fn page(
    r: &mut dyn Read,
    scope: &ExportScope,
    windows: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<ExportRow>, StoreError> {
    let columns = export_columns(&scope.kind);
    let select = columns
        .iter()
        .map(|(c, _)| format!("x.{c}"))
        .chain([named_patient(&scope.kind).to_string()])
        .collect::<Vec<_>>()
        .join(", ");
    let sql = filtered(
        r.dialect(),
        scope,
        &select,
        "AND x.id > $4 ORDER BY x.id LIMIT $5",
    );
    let clinics = scope.clinic_ids.as_deref().map(json::strings);
    let params: [Value<'_>; 5] = [
        clinics.as_deref().into(),
        scope.sealed.into(),
        windows.into(),
        after.into(),
        i64::from(limit).into(),
    ];
    r.all(&sql, &params, |row: &dyn Row| {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, (_, ty)) in columns.iter().enumerate() {
            cells.push(match ty {
                ColumnType::Text => row.opt_text(i)?.map_or(Cell::Null, Cell::Text),
                ColumnType::Int => row.opt_int(i)?.map_or(Cell::Null, Cell::Int),
                ColumnType::Real => row.opt_real(i)?.map_or(Cell::Null, Cell::Real),
            });
        }
        let n = columns.len();
        Ok(ExportRow {
            id: row.text(0)?,
            cells,
            patient: row.opt_text(n)?.zip(row.opt_int(n + 1)?),
        })
    })
}
