//! The little JSON the job queries pass as text (a list of clinic ids, a list of patients and
//! their versions): written and read here, so the store needs no JSON library.
use crate::StoreError;

/// `s` as a JSON string literal.
fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `["a","b"]`.
pub fn strings(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(s, &mut out);
    }
    out.push(']');
    out
}

/// `[["id",3],["id2",1]]`.
pub fn pairs(items: &[(String, i64)]) -> String {
    let mut out = String::from("[");
    for (i, (s, n)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        string(s, &mut out);
        out.push_str(&format!(",{n}]"));
    }
    out.push(']');
    out
}

/// A JSON array of strings, as `strings` writes it (and serde_json wrote it before), or an
/// error: a stored value that does not read is a schema mismatch, never "every clinic".
pub fn parse_strings(text: &str) -> Result<Vec<String>, StoreError> {
    let bad = || StoreError::Other(format!("not a JSON list of strings: {text}"));
    let mut chars = text.trim().chars().peekable();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while c.peek().is_some_and(|x| x.is_whitespace()) {
            c.next();
        }
    };
    if chars.next() != Some('[') {
        return Err(bad());
    }
    let mut out = Vec::new();
    skip_ws(&mut chars);
    if chars.peek() == Some(&']') {
        chars.next();
        return if chars.next().is_none() {
            Ok(out)
        } else {
            Err(bad())
        };
    }
    loop {
        skip_ws(&mut chars);
        if chars.next() != Some('"') {
            return Err(bad());
        }
        let mut s = String::new();
        loop {
            match chars.next().ok_or_else(bad)? {
                '"' => break,
                '\\' => match chars.next().ok_or_else(bad)? {
                    '"' => s.push('"'),
                    '\\' => s.push('\\'),
                    '/' => s.push('/'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let unit = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                            let hex: String = c.by_ref().take(4).collect();
                            u32::from_str_radix(&hex, 16).map_err(|_| bad())
                        };
                        let hi = unit(&mut chars)?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            if chars.next() != Some('\\') || chars.next() != Some('u') {
                                return Err(bad());
                            }
                            let lo = unit(&mut chars)?;
                            0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                        } else {
                            hi
                        };
                        s.push(char::from_u32(code).ok_or_else(bad)?);
                    }
                    _ => return Err(bad()),
                },
                c => s.push(c),
            }
        }
        out.push(s);
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => continue,
            Some(']') if chars.next().is_none() => return Ok(out),
            _ => return Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_strings_read_back_as_written_escapes_included() {
        let items = vec![
            "cln_1".to_string(),
            "a\"b\\c\nd\u{1}".to_string(),
            "é😀".to_string(),
        ];
        assert_eq!(parse_strings(&strings(&items)), Ok(items));
        assert_eq!(parse_strings("[]"), Ok(vec![]));
        assert_eq!(
            parse_strings(r#" [ "x" , "\u00e9\ud83d\ude00\/" ] "#),
            Ok(vec!["x".to_string(), "é😀/".to_string()])
        );
        for bad in ["", "[", "[\"a\"", "[\"a\",]", "[1]", "{}", "[\"a\"]x"] {
            assert!(parse_strings(bad).is_err(), "{bad}");
        }
        assert_eq!(
            pairs(&[("p\"1".to_string(), 3), ("p2".to_string(), 1)]),
            r#"[["p\"1",3],["p2",1]]"#
        );
    }
}
