//! `careq status [CODE|CLASS]`: print catalogue entries. Exit 1 for something not in it.
use std::io::Write;

use careq_status::{Class, Status, ALL};

fn print(out: &mut impl Write, s: &Status) {
    let _ = writeln!(
        out,
        "{} {}  ({}, {})\n    {}\n    careq: {} — {}",
        s.code,
        s.reason,
        s.name,
        s.class(),
        s.meaning,
        s.usage.kind(),
        s.usage.text()
    );
}

/// Returns the exit code.
pub fn run(query: Option<&str>, out: &mut impl Write) -> i32 {
    let entries: Vec<&Status> = match query {
        None => ALL.iter().collect(),
        Some(q) => {
            if let Ok(class) = q.parse::<Class>() {
                class.members().collect()
            } else if let Some(s) = q.parse::<u16>().ok().and_then(careq_status::lookup) {
                vec![s]
            } else {
                eprintln!("careq: {q} is not a status code or class in the catalogue");
                return 1;
            }
        }
    };
    for s in entries {
        print(out, s);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_print_and_unknown_exit_1() {
        let mut out = Vec::new();
        assert_eq!(run(Some("404"), &mut out), 0);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("404 Not Found  (HTTP_404_NOT_FOUND, 4xx)"));
        let mut out = Vec::new();
        assert_eq!(run(Some("4xx"), &mut out), 0);
        assert_eq!(
            String::from_utf8(out).unwrap().matches("careq: ").count(),
            28
        );
        assert_eq!(run(Some("418"), &mut Vec::new()), 1);
        assert_eq!(run(Some("abc"), &mut Vec::new()), 1);
    }
}
