"""What `[fields]` cost per page on the PostgreSQL 15 HTML docs: no fields against ten
realistic ones, median of 3 rounds each way.

    .venv/bin/python bench/fields.py [--docs DIR] [--rounds 3] [--crawl]

Two measurements:

1. parse: every HTML file of the docs through `parse_html` (what the crawler runs on each
   page, in its own process), CPU time (process_time) per page, without and with TEN_FIELDS;
   the with-fields round also counts the pages where every field found something, so a
   selector that silently matched nothing would show;
2. --crawl: `bench/pgdocs.py --no-store-text` (the crawl on nginx; text extraction off, as it
   is ~85% of the crawl's CPU and would hide the difference) without and with
   `--fields`, rounds alternating; CPU seconds (user+sys, /usr/bin/time) per page.

Needs the docs (`make bench-deps`); --crawl needs nginx and time too.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from crawler.extract.fields import Field, parse_field
from crawler.extract.html import parse_html

DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
HERE = Path(__file__).resolve().parent

# Ten fields a user collecting the PostgreSQL docs might ask for.
TEN_FIELDS = {
    "title": "h1, h2",  # the page's heading (chapter pages use h2)
    "summary": ".refnamediv p",  # a reference page's one-line purpose
    "breadcrumbs": ".navheader a []",  # Prev, Up, Home, Next
    "up": ".navheader a[accesskey=u] @href",
    "next": ".navheader a[accesskey=n] @href",
    "links": "a @href []",
    "code_blocks": "pre.programlisting []",
    "synopsis": "pre.synopsis",
    "sections": ".sect1 > .titlepage h2 []",
    "commands": "code.command []",
}


def fields() -> tuple[Field, ...]:
    return tuple(parse_field(name, spec) for name, spec in TEN_FIELDS.items())


def parse_round(bodies: list[bytes], chosen: tuple[Field, ...]) -> tuple[float, int]:
    """CPU seconds to parse every body once, and the pages where every field found a value."""
    full = 0
    start = time.process_time()
    for body in bodies:
        parsed = parse_html(body, "utf-8", "crawler", chosen)
        if parsed.fields is not None and all(v for v in parsed.fields.values()):
            full += 1
    return time.process_time() - start, full


def parse_bench(docs: Path, rounds: int) -> None:
    bodies = [path.read_bytes() for path in sorted(docs.glob("*.html"))]
    print(f"parse: {len(bodies)} pages of {docs}, {sum(map(len, bodies)) / 1e6:.1f} MB")
    ten = fields()
    tangled = sum(parse_html(b, "utf-8", "crawler", ten).tangled for b in bodies)
    found: dict[str, int] = dict.fromkeys(TEN_FIELDS, 0)
    for body in bodies:
        values = parse_html(body, "utf-8", "crawler", ten).fields or {}
        for name, value in values.items():
            found[name] += bool(value)
    print(f"  pages too tangled for fields: {tangled}")
    print(
        "  pages where each field found something: "
        + ", ".join(f"{k} {v}" for k, v in found.items())
    )
    for label, chosen in (("no fields", ()), ("ten fields", ten)):
        times = [parse_round(bodies, chosen)[0] for _ in range(rounds)]
        per_page = statistics.median(times) / len(bodies) * 1000
        print(
            f"  {label:<10}  {per_page:.3f} ms CPU/page (median of {rounds}: "
            + ", ".join(f"{t:.2f}" for t in times)
            + " s)"
        )


def crawl_bench(rounds: int) -> None:
    results: dict[str, list[float]] = {"no fields": [], "ten fields": []}
    for _ in range(rounds):
        for label, extra in (("no fields", []), ("ten fields", ["--fields"])):
            done = subprocess.run(
                [sys.executable, str(HERE / "pgdocs.py"), "--no-store-text", *extra],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            pages = int(re.search(r"pages \(crawler\)\s+(\d+)", done.stdout)[1])  # type: ignore[index]
            cpu = float(re.search(r"CPU seconds \(user\+sys\)\s+([\d.]+)", done.stdout)[1])  # type: ignore[index]
            if done.returncode != 0:
                print(done.stdout, done.stderr)
                raise SystemExit(f"pgdocs.py {' '.join(extra)} exited {done.returncode}")
            results[label].append(cpu / pages * 1000)
    print(f"crawl (pgdocs.py --no-store-text, {pages} pages, rounds alternating):")
    for label, per_page in results.items():
        print(
            f"  {label:<10}  {statistics.median(per_page):.2f} ms CPU/page (median of "
            + ", ".join(f"{p:.2f}" for p in per_page)
            + ")"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crawl", action="store_true", help="also crawl with pgdocs.py")
    args = parser.parse_args()
    parse_bench(args.docs, args.rounds)
    if args.crawl:
        crawl_bench(args.rounds)


if __name__ == "__main__":
    main()
