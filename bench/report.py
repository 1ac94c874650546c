#!/usr/bin/env python3
"""Reads bench/run.sh's wrk outputs and prints one table; also writes it as markdown.

Usage: report.py WORK_DIR MARKDOWN_OUT [NOTE]

WORK_DIR holds manifest.tsv (scenario, label, server, ratio basis, RSS in kB after the scenario)
and out/<scenario>.<run>.txt (wrk --latency output). Per scenario: req/s is the median over the
runs; p50 and p99 come from the run with the median req/s; errors add up wrk's "Non-2xx or 3xx
responses" and its socket errors over all runs; the ratio divides req/s by the baseline's.
"""
import glob
import os
import re
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def millis(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError("not a wrk duration: %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(path):
    """One wrk run: req/s, p50 and p99 (ms), errors, and status counts if collected."""
    with open(path) as f:
        text = f.read()
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not rps:
        raise ValueError("%s: no Requests/sec line (wrk output was:\n%s)" % (path, text))
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", text, re.M))
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    statuses = re.search(r"^Statuses: (.*)$", text, re.M)
    done = re.search(r"^\s*(\d+) requests in", text, re.M)
    return {
        "done": int(done.group(1)) if done else 0,
        "rps": float(rps.group(1)),
        "p50": millis(pct["50"]),
        "p99": millis(pct["99"]),
        "errors": errors,
        "statuses": statuses.group(1).strip() if statuses else "",
    }


def fmt_ms(ms, done):
    if not done:
        return "-"  # nothing completed: wrk prints zeros, which would read as fast
    if ms < 1:
        return "%.0f us" % (ms * 1000)
    if ms < 100:
        return "%.2f ms" % ms
    return "%.0f ms" % ms


def rows(work):
    results = {}
    table = []
    with open(os.path.join(work, "manifest.tsv")) as f:
        manifest = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for name, label, server, basis, rss in manifest:
        runs = sorted(
            (parse(p) for p in glob.glob(os.path.join(work, "out", name + ".*.txt"))),
            key=lambda r: r["rps"],
        )
        if not runs:
            raise ValueError("no wrk output for " + name)
        mid = runs[(len(runs) - 1) // 2]
        rps = statistics.median(r["rps"] for r in runs)
        results[name] = rps
        base = results.get(basis)
        table.append({
            "scenario": label,
            "req/s": "%.0f" % rps,
            "p50": fmt_ms(mid["p50"], mid["done"]),
            "p99": fmt_ms(mid["p99"], mid["done"]),
            "errors": str(sum(r["errors"] for r in runs)),
            "RSS": "%.0f MiB" % (int(rss or 0) / 1024),
            "vs baseline": "%.3f" % (rps / base) if base else "-",
            "statuses": " ".join(r["statuses"] for r in runs if r["statuses"]),
        })
    return table


COLUMNS = [
    ("scenario", "scenario", "<"),
    ("req/s", "req/s (median)", ">"),
    ("p50", "p50", ">"),
    ("p99", "p99", ">"),
    ("errors", "non-2xx/3xx + socket errors", ">"),
    ("RSS", "server RSS after", ">"),
    ("vs baseline", "req/s vs baseline", ">"),
]


def main():
    work, md_out = sys.argv[1:3]
    note = sys.argv[3] if len(sys.argv) > 3 else ""
    table = rows(work)
    cols = list(COLUMNS)
    if any(r["statuses"] for r in table):
        cols.append(("statuses", "statuses (per run)", "<"))
    widths = [max(len(title), *(len(r[key]) for r in table)) for key, title, _ in cols]

    def line(values):
        cells = [v.ljust(w) if a == "<" else v.rjust(w) for v, w, (_, _, a) in zip(values, widths, cols)]
        return "  ".join(cells).rstrip()

    print()
    if note:
        print(note)
    print(line([title for _, title, _ in cols]))
    print(line(["-" * w for w in widths]))
    for r in table:
        print(line([r[key] for key, _, _ in cols]))

    os.makedirs(os.path.dirname(md_out) or ".", exist_ok=True)
    with open(md_out, "w") as f:
        f.write("# careq benchmark\n\n")
        if note:
            f.write(note + "\n\n")
        f.write("| " + " | ".join(title for _, title, _ in cols) + " |\n")
        f.write("|" + "|".join("---" if a == "<" else "---:" for _, _, a in cols) + "|\n")
        for r in table:
            f.write("| " + " | ".join(r[key] for key, _, _ in cols) + " |\n")
    print("\n(markdown: %s)" % md_out)


if __name__ == "__main__":
    main()
