//! The README's status-code table must agree with the registry, and name tests that exist.
use std::path::Path;

fn test_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut all = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api"),
        &mut all,
    );
    all
}

#[test]
fn readme_table_matches_the_registry() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme
        .split("<!-- status-table:start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- status-table:end -->").next())
        .expect("the README has a status table between its markers");
    let sources = test_sources();
    let mut seen = Vec::new();
    for row in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
    {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let code: u16 = cells[0].parse().unwrap();
        let entry = careq_status::lookup(code).unwrap_or_else(|| panic!("{code} not in registry"));
        assert!(cells[1].starts_with(entry.reason), "{code}: reason");
        assert!(cells[1].contains(entry.name), "{code}: name");
        assert_eq!(cells[2], entry.usage.kind(), "{code}: usage");
        assert_eq!(
            cells[3].replace("\\|", "|"),
            entry.usage.text(),
            "{code}: text"
        );
        let shown = cells[4].trim_matches('`');
        if entry.usage.is_sent() {
            assert!(
                sources.contains(&format!("fn {shown}(")),
                "{code}: no test named {shown}"
            );
        }
        seen.push(code);
    }
    let all: Vec<u16> = careq_status::ALL.iter().map(|s| s.code).collect();
    assert_eq!(seen, all, "the table lists every code once, in order");
}
