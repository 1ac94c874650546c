#!/usr/bin/env python3
"""Prints the README's status-code table from the registry (crates/careq-status) and the map of
tests that show each code (scripts/status_tests.txt). tests/readme.rs checks the README agrees."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "crates/careq-status/src/catalogue.rs").read_text()
shown = {}
for line in (root / "scripts/status_tests.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        code, test = line.split(maxsplit=1)
        shown[int(code)] = test.strip()

entry = re.compile(
    r'(HTTP_\d+_\w+) = (\d+), "([^"]*)",\s*"(?:[^"\\]|\\.)*",\s*(NEVER_WEBDAV|(Produced|Stack|Never)\("((?:[^"\\]|\\.)*)"\))',
    re.S,
)
webdav = "WebDAV semantics careq does not implement."
print("| code | name | careq | when careq returns it, or why it never does | shown by |")
print("|---|---|---|---|---|")
for m in entry.finditer(src):
    name, code, reason = m.group(1), int(m.group(2)), m.group(3)
    if m.group(4) == "NEVER_WEBDAV":
        kind, text = "never", webdav
    else:
        kind, text = m.group(5).lower(), m.group(6).replace('\\"', '"')
    test = shown.get(code, "—" if kind == "never" else None)
    if test is None:
        raise SystemExit(f"{code} is sent by careq but scripts/status_tests.txt names no test for it")
    if test != "—":
        test = f"`{test}`"
    text = text.replace("|", "\\|")
    print(f"| {code} | {reason} (`{name}`) | {kind} | {text} | {test} |")
