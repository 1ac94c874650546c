//! careq writes parameters `$1`, `$2`… for both engines. SQLite reads `$1` as a *named*
//! parameter numbered by first appearance, so `… $2 … $1` would bind backwards; `?1` is
//! numbered by its digits. The translation skips string literals, quoted identifiers and
//! comments, where a `$` is just a character.
use std::borrow::Cow;

/// `sql` with each `$N` outside literals, identifiers and comments written `?N`.
pub fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_past(b, i + 1, q),
            b'[' => i = skip_past(b, i + 1, b']'),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_past(b, i + 2, b'\n'),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |at| i + 2 + at + 2);
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push_str(&sql[copied..i]);
                out.push('?');
                copied = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

/// The index just past the next `end` at or after `from` (a doubled quote inside a literal
/// closes and reopens it, which comes to the same).
fn skip_past(b: &[u8], from: usize, end: u8) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == end)
        .map_or(b.len(), |at| from + at + 1)
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn dollar_numbers_become_question_numbers_outside_quotes_and_comments() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            ("SELECT $2, $1", "SELECT ?2, ?1"),
            ("WHERE a = $10 AND b=$1", "WHERE a = ?10 AND b=?1"),
            ("SELECT '$1', $1", "SELECT '$1', ?1"),
            ("SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"),
            (
                "SELECT \"$1\" FROM [x$2] WHERE `$3` = $4",
                "SELECT \"$1\" FROM [x$2] WHERE `$3` = ?4",
            ),
            ("SELECT $1 -- $2\n, $3", "SELECT ?1 -- $2\n, ?3"),
            ("SELECT /* $1 */ $2", "SELECT /* $1 */ ?2"),
            ("SELECT $name, $", "SELECT $name, $"),
            ("SELECT 'unterminated $1", "SELECT 'unterminated $1"),
        ];
        for (sql, want) in cases {
            assert_eq!(numbered(sql), want, "{sql}");
        }
    }
}
