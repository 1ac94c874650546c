//! The one CSV writer behind every CSV answer (lists, the queue report, export files): RFC 4180
//! by the `csv` crate, CRLF line ends, a header row, and text cells that a spreadsheet would run
//! as a formula neutralised (OWASP "CSV injection"): a text cell starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'`. That includes E.164 phone numbers
//! (`'+436641234567`): a spreadsheet then shows them as text, which is what a phone number is.
//! Number cells are written as they are (a number is never a formula). A UTF-8 byte order mark
//! comes first when the client asks for it (`Accept: text/csv; bom=1`), so Excel reads UTF-8.
use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, Uri};
use serde::Serialize;

use super::conditional::Representation;
use super::negotiate::Preference;
use super::paging::{with_next_link, Page};

/// The media type of every CSV answer.
pub const MEDIA: &str = "text/csv; charset=utf-8";
/// UTF-8's byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One cell: text (neutralised when it could be a formula), a number, or nothing.
pub enum Cell {
    Text(String),
    Number(String),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    pub fn opt_text(s: Option<impl Into<String>>) -> Cell {
        s.map_or(Cell::Empty, |s| Cell::Text(s.into()))
    }
    pub fn number(n: impl ToString) -> Cell {
        Cell::Number(n.to_string())
    }
    pub fn opt_number(n: Option<impl ToString>) -> Cell {
        n.map_or(Cell::Empty, |n| Cell::Number(n.to_string()))
    }
}

/// A row type with a CSV form: its column names and its cells in that order.
pub trait CsvRow {
    fn columns() -> &'static [&'static str];
    fn cells(&self) -> Vec<Cell>;
}

/// A text cell as a spreadsheet will take it as text: a leading `'` before a formula's first
/// character.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Appends one record (RFC 4180 quoting, CRLF) to `out`.
pub fn record(out: &mut Vec<u8>, cells: &[Cell]) {
    let fields = cells.iter().map(|c| match c {
        Cell::Text(s) => neutralise(s),
        Cell::Number(n) => Cow::Borrowed(n.as_str()),
        Cell::Empty => Cow::Borrowed(""),
    });
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .buffer_capacity(512)
        .from_writer(out);
    // Writing into a Vec cannot fail.
    w.write_record(fields.map(|f| f.into_owned()))
        .and_then(|_| w.flush().map_err(csv::Error::from))
        .expect("writing CSV into memory");
}

/// The header row of `columns`.
pub fn header(out: &mut Vec<u8>, columns: &[&str]) {
    let cells: Vec<Cell> = columns.iter().map(|c| Cell::text(*c)).collect();
    record(out, &cells);
}

/// A whole table: BOM if asked, header row, one record per item.
pub fn table<T: CsvRow>(items: &[T], bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(BOM);
    }
    header(&mut out, T::columns());
    for item in items {
        record(&mut out, &item.cells());
    }
    out
}

/// Whether the request asked for a byte order mark: a `text/csv` range in `Accept` with the
/// parameter `bom=1`.
pub fn wants_bom(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(super::negotiate::CSV)
                && parts.any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("bom") && v.trim().trim_matches('"') == "1"
                    })
                })
        })
}

/// The CSV representation of `items`, for the request's `Accept`.
pub fn representation<T: CsvRow>(items: &[T], headers: &HeaderMap) -> Representation {
    Representation::new(table(items, wants_bom(headers)), MEDIA)
}

/// A list page as JSON or CSV, as negotiated, with its `Link: rel="next"`.
pub fn page<T: Serialize + CsvRow>(
    page: Page<T>,
    pref: Preference,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    if !pref.wants_csv() {
        return page.respond(uri);
    }
    let res = representation(&page.items, headers).into_response();
    with_next_link(res, uri, page.next_cursor.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(&'static str, f64);
    impl CsvRow for Row {
        fn columns() -> &'static [&'static str] {
            &["name", "n"]
        }
        fn cells(&self) -> Vec<Cell> {
            vec![Cell::text(self.0), Cell::number(self.1)]
        }
    }

    #[test]
    fn formulas_are_neutralised_numbers_kept_and_quoting_follows_rfc_4180() {
        let rows = [
            Row("=cmd|' /C calc'!A0", -1.5),
            Row("+436641234567", 2.0),
            Row("José \"Pepe\", Jr", 3.0),
            Row("two\r\nlines", 4.0),
            Row("@SUM(A1)", 5.0),
            Row("\tx", 6.0),
            Row("-2+3", 7.0),
            Row("plain", 8.0),
        ];
        let text = String::from_utf8(table(&rows, false)).unwrap();
        let mut read = csv::Reader::from_reader(text.as_bytes());
        let got: Vec<(String, String)> = read
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].to_string())
            })
            .collect();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "'=cmd|' /C calc'!A0",
                "'+436641234567",
                "José \"Pepe\", Jr",
                "two\r\nlines",
                "'@SUM(A1)",
                "'\tx",
                "'-2+3",
                "plain"
            ]
        );
        assert_eq!(got[0].1, "-1.5");
        assert!(text.starts_with("name,n\r\n"));
        assert!(table(&rows, true).starts_with(BOM));
    }

    #[test]
    fn a_bom_is_asked_for_only_by_a_csv_range_with_bom_1() {
        let bom = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            wants_bom(&h)
        };
        assert!(bom("text/csv; bom=1"));
        assert!(bom("application/json;q=0.5, text/csv;charset=utf-8;BOM=1"));
        assert!(!bom("text/csv"));
        assert!(!bom("text/csv; bom=0"));
        assert!(!bom("application/json; bom=1"));
        assert!(!wants_bom(&HeaderMap::new()));
    }
}
