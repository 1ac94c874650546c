#!/usr/bin/env python3
"""Parses every FHIR JSON body careq emitted in the tests (captured by tests/api/fhir.rs into
CAREQ_FHIR_CAPTURE_DIR) with the R4B models of `fhir.resources`. Exits 1 on any body that is not
a valid resource, and on an empty directory (a capture that did not happen proves nothing).

Usage: scripts/fhir_validate.py DIR
"""
import collections
import json
import pathlib
import sys

from fhir.resources.R4B import get_fhir_model_class


def main(directory: str) -> int:
    files = sorted(pathlib.Path(directory).glob("*.json"))
    if not files:
        print(f"no captured FHIR bodies in {directory}", file=sys.stderr)
        return 1
    kinds = collections.Counter()
    failures = 0
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            kind = doc["resourceType"]
            get_fhir_model_class(kind).model_validate(doc)
            kinds[kind] += 1
        except Exception as e:  # every failure is reported, then the run fails
            failures += 1
            print(f"INVALID {path.name}: {e}", file=sys.stderr)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{len(files) - failures} of {len(files)} bodies valid R4B ({summary})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
