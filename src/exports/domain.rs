//! Export values: what an export request may ask for (parsed, never merely checked), the job as
//! clients see it, and the two file formats (RFC 4180 CSV, NDJSON) written row by row.
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::http::csv_out;
use crate::store::{export_columns, Cell, ExportRow, ExportScope, JobRecord};

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Patients,
    Appointments,
    Queue,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "patients" => Some(Kind::Patients),
            "appointments" => Some(Kind::Appointments),
            "queue" => Some(Kind::Queue),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Patients => "patients",
            Kind::Appointments => "appointments",
            Kind::Queue => "queue",
        }
    }
}

/// How the file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "ndjson" => Some(Format::Ndjson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// The body of `POST /v1/exports`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewExport {
    /// `patients`, `appointments` or `queue` (tickets).
    #[schema(example = "patients")]
    pub kind: String,
    /// `csv` (RFC 4180, header row, UTF-8) or `ndjson` (one JSON object per line).
    #[schema(example = "csv")]
    pub format: String,
    /// Only this clinic (one you belong to); absent: every clinic you see.
    pub clinic_id: Option<String>,
    /// First day included (`YYYY-MM-DD`) on each clinic's clock: patients by creation,
    /// appointments by start, tickets by queue day.
    #[schema(format = Date)]
    pub from: Option<String>,
    /// Last day included (`YYYY-MM-DD`) on each clinic's clock.
    #[schema(format = Date)]
    pub to: Option<String>,
}

/// A request that passed every rule but the clinic check (which needs the store).
#[derive(Debug, Clone)]
pub struct ValidExport {
    pub kind: Kind,
    pub format: Format,
    pub clinic_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

fn day(pointer: &str, v: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = v.as_ref()?;
    match v.parse::<jiff::civil::Date>() {
        Ok(d) if v.len() == 10 => Some(d.to_string()),
        _ => {
            errors.push(FieldError::new(pointer, "a date as YYYY-MM-DD"));
            None
        }
    }
}

impl ValidExport {
    /// Every broken rule at once, each with its pointer.
    pub fn parse(n: &NewExport) -> Result<ValidExport, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = Kind::parse(&n.kind);
        if kind.is_none() {
            errors.push(FieldError::new(
                "/kind",
                "one of patients, appointments, queue",
            ));
        }
        let format = Format::parse(&n.format);
        if format.is_none() {
            errors.push(FieldError::new("/format", "one of csv, ndjson"));
        }
        let from = day("/from", &n.from, &mut errors);
        let to = day("/to", &n.to, &mut errors);
        if let (Some(f), Some(t)) = (&from, &to) {
            if f > t {
                errors.push(FieldError::new("/to", "on or after from"));
            }
        }
        if n.clinic_id.as_ref().is_some_and(|c| c.trim().is_empty()) {
            errors.push(FieldError::new("/clinic_id", "a clinic id"));
        }
        match (kind, format) {
            (Some(kind), Some(format)) if errors.is_empty() => Ok(ValidExport {
                kind,
                format,
                clinic_id: n.clinic_id.clone(),
                from,
                to,
            }),
            _ => Err(errors),
        }
    }
}

/// How far a job got.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub rows_written: i64,
    /// Known once the job has counted its rows.
    pub rows_total: Option<i64>,
}

/// An export job, as `POST /v1/exports` and `GET /v1/jobs/{id}` show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    #[schema(example = "patients")]
    pub kind: String,
    #[schema(example = "csv")]
    pub format: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    #[schema(example = "queued")]
    pub state: String,
    pub progress: Progress,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// The user who asked for the export.
    pub owner: String,
    /// Once succeeded: where the file is.
    pub file: Option<String>,
    /// Once succeeded: the file's size in bytes.
    pub size_bytes: Option<i64>,
    /// Once succeeded: when the file is removed (then its URL answers 410).
    pub expires_at: Option<String>,
    /// Once failed: why, as a problem document.
    #[schema(value_type = Option<crate::error::Problem>)]
    pub error: Option<serde_json::Value>,
}

impl Job {
    pub fn of(r: &JobRecord) -> Job {
        let succeeded = r.state == "succeeded";
        Job {
            id: r.id.clone(),
            kind: r.kind.clone(),
            format: r.format.clone(),
            state: r.state.clone(),
            progress: Progress {
                rows_written: r.rows_written,
                rows_total: r.rows_total,
            },
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            finished_at: r.finished_at.clone(),
            owner: r.owner_id.clone(),
            file: succeeded.then(|| file_location(&r.id)),
            size_bytes: r.size_bytes.filter(|_| succeeded),
            expires_at: r.expires_at.filter(|_| succeeded).and_then(|s| {
                jiff::Timestamp::from_second(s)
                    .ok()
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            }),
            error: r
                .error
                .as_ref()
                .map(|e| serde_json::from_str(e).unwrap_or(serde_json::Value::Null)),
        }
    }
}

/// A dated scope's windows as the one JSON array the store's export reads take (`None` when the
/// scope has no dates: every day counts). One element per clinic in `scope.windows`, so a dated
/// scope finds rows of the clinics listed there only:
/// - `c`: the clinic's id;
/// - `f`, `t`: the window `[from, to)` in Unix seconds (an appointment's start is compared);
/// - `fs`, `ts`: those two instants written `YYYY-MM-DDTHH:MM:SS`, a prefix of the stored
///   `…SS.mmmZ` creation times, so text order is time order (`>= fs` holds from that second
///   on, `< ts` until it);
/// - `fd`, `td`: the inclusive days asked for (a ticket's queue day is already the clinic's).
///
/// An open side of the range is `null` in each.
pub fn windows_json(scope: &ExportScope) -> Option<String> {
    if scope.from_day.is_none() && scope.to_day.is_none() {
        return None;
    }
    let as_text = |second: Option<i64>| {
        second
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
    };
    let windows = scope
        .windows
        .iter()
        .map(|w| {
            serde_json::json!({
                "c": w.clinic_id,
                "f": w.from,
                "t": w.to,
                "fs": as_text(w.from),
                "ts": as_text(w.to),
                "fd": scope.from_day,
                "td": scope.to_day,
            })
        })
        .collect();
    Some(serde_json::Value::Array(windows).to_string())
}

/// Writes rows of one kind in one format into a buffer, a page at a time.
pub struct Encoder {
    format: Format,
    columns: Vec<&'static str>,
}

impl Encoder {
    pub fn new(kind: &str, format: Format) -> Encoder {
        Encoder {
            format,
            columns: export_columns(kind).iter().map(|(c, _)| *c).collect(),
        }
    }

    /// The CSV header row (NDJSON has none).
    pub fn header(&self, out: &mut Vec<u8>) {
        if self.format == Format::Csv {
            csv_out::header(out, &self.columns);
        }
    }

    pub fn row(&self, row: &ExportRow, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv => {
                let cells: Vec<csv_out::Cell> = row
                    .cells
                    .iter()
                    .map(|cell| match cell {
                        Cell::Null => csv_out::Cell::Empty,
                        Cell::Int(n) => csv_out::Cell::number(n),
                        Cell::Real(x) => csv_out::Cell::number(x),
                        Cell::Text(s) => csv_out::Cell::text(s.as_str()),
                    })
                    .collect();
                csv_out::record(out, &cells);
            }
            Format::Ndjson => {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .columns
                    .iter()
                    .zip(&row.cells)
                    .map(|(c, cell)| {
                        let v = match cell {
                            Cell::Null => serde_json::Value::Null,
                            Cell::Int(n) => (*n).into(),
                            Cell::Real(x) => serde_json::Number::from_f64(*x)
                                .map_or(serde_json::Value::Null, serde_json::Value::Number),
                            Cell::Text(s) => s.clone().into(),
                        };
                        (c.to_string(), v)
                    })
                    .collect();
                // A JSON text never holds a raw newline: one object per line.
                serde_json::to_writer(&mut *out, &object).expect("a map serializes");
                out.push(b'\n');
            }
        }
    }
}

/// Where a finished export's file is served.
pub fn file_location(id: &str) -> String {
    format!("/v1/exports/{id}/file")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(s: &str) -> String {
        let mut out = Vec::new();
        csv_out::record(&mut out, &[csv_out::Cell::text(s)]);
        let text = String::from_utf8(out).unwrap();
        text.strip_suffix("\r\n").unwrap().to_string()
    }

    #[test]
    fn csv_fields_are_quoted_when_rfc_4180_needs_it_and_formulas_neutralised() {
        let cases = [
            ("plain", "plain"),
            ("Müller", "Müller"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
            // A record of one empty field is written quoted, or it would be an empty line.
            ("", "\"\""),
            ("=1+1", "'=1+1"),
            ("+436641234567", "'+436641234567"),
        ];
        for (raw, want) in cases {
            assert_eq!(csv(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn a_request_with_every_field_wrong_gets_every_pointer() {
        let n = NewExport {
            kind: "people".into(),
            format: "xml".into(),
            clinic_id: Some(" ".into()),
            from: Some("2026-13-01".into()),
            to: Some("tomorrow".into()),
        };
        let errors = ValidExport::parse(&n).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/kind", "/format", "/from", "/to", "/clinic_id"]);
    }

    #[test]
    fn a_dated_scope_gives_each_clinic_its_window_and_an_undated_one_none() {
        let mut scope = ExportScope {
            kind: "patients".into(),
            clinic_ids: Some(vec!["cln_a".into()]),
            ..ExportScope::default()
        };
        assert_eq!(windows_json(&scope), None);
        scope.from_day = Some("2026-03-01".into());
        scope.windows = vec![crate::store::ClinicWindow {
            clinic_id: "cln_a".into(),
            from: Some(1_772_319_600),
            to: None,
        }];
        let json: serde_json::Value = serde_json::from_str(&windows_json(&scope).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{
                "c": "cln_a", "f": 1_772_319_600_i64, "t": null,
                "fs": "2026-02-28T23:00:00", "ts": null,
                "fd": "2026-03-01", "td": null,
            }])
        );
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_refused() {
        let n = NewExport {
            kind: "queue".into(),
            format: "ndjson".into(),
            clinic_id: None,
            from: Some("2026-11-28".into()),
            to: Some("2026-11-01".into()),
        };
        assert_eq!(ValidExport::parse(&n).unwrap_err()[0].pointer, "/to");
    }
}
