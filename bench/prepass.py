"""The parse's pre-pass on a documentation corpus (default the PostgreSQL 15 HTML docs): today's
pattern (`flatten.token_pattern()`) against the same pattern with simpler ways of reading a
dropped tag (without its path for the commonest names; without `PLAIN_TAG` either, TAG_ATTRS
alone) and with the dropped-tag alternative last (as it was before issue 22), in one process,
rounds interleaved; CPU time (process_time) per page of `flatten` and of the whole `parse_html`,
best and median of the rounds. The patterns' output is compared on every page first.

    .venv/bin/python bench/prepass.py [--docs DIR] [--rounds 15]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from crawler.extract import flatten, html, names

DOCS = Path("/usr/share/doc/postgresql-doc-15/html")

TAG_LAST = re.compile(
    r"<(?:"
    rf"(/?(?:a|area|base|meta|link|h1){names.NAME_END}{names.TAG_ATTRS}"
    rf"|{names.element_pattern('title')})"
    r"|!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
    r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
    rf"|{'|'.join(names.element_pattern(name) for name in flatten._RAW_TEXT)}"
    rf"|plaintext{names.NAME_END}[\s\S]*"
    rf"|/?{names.TAG_NAME}{names.TAG_ATTRS})",
    re.IGNORECASE | re.ASCII,
)


def dropped_as(dropped: str) -> re.Pattern[str]:
    """Today's pattern with another alternative for a tag dropped whole."""
    return re.compile(
        flatten.token_pattern().pattern.replace(flatten._DROPPED, dropped, 1),
        re.IGNORECASE | re.ASCII,
    )


ANY_NAME = f"/?(?!{flatten._SPECIAL})"
TAG_ATTRS_ALONE = dropped_as(f"{ANY_NAME}{names.TAG_NAME}{names.TAG_ATTRS}")
PLAIN_TAG_FIRST = dropped_as(f"{ANY_NAME}(?:{flatten.PLAIN_TAG}|{names.TAG_NAME}{names.TAG_ATTRS})")


def per_page(work: Callable[[], object], pages: int) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / pages * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    bodies = [path.read_bytes() for path in sorted(args.docs.rglob("*.html"))]
    if not bodies:
        print(f"prepass: no HTML files in {args.docs} (make bench-deps)", file=sys.stderr)
        return 2
    texts = [html.decode_html(body, "utf-8") for body in bodies]
    if TAG_ATTRS_ALONE.pattern == flatten.token_pattern().pattern:
        print("prepass: _DROPPED is not where this script expects it", file=sys.stderr)
        return 1
    patterns = {
        "tag dropped last (before issue 22)": TAG_LAST,
        "tag dropped first, TAG_ATTRS alone": TAG_ATTRS_ALONE,
        "tag dropped first, PLAIN_TAG first": PLAIN_TAG_FIRST,
        "the commonest names first, then PLAIN_TAG (now)": flatten.token_pattern(),
    }
    outputs = [[pattern.split(text) for text in texts] for pattern in patterns.values()]
    if any(output != outputs[0] for output in outputs):
        print("prepass: the patterns flatten some page differently", file=sys.stderr)
        return 1
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in patterns}
    real_token = flatten.token_pattern
    try:
        for _ in range(args.rounds):
            for name, pattern in patterns.items():
                flatten.token_pattern = lambda pattern=pattern: pattern  # type: ignore[assignment]
                flat, parse = times[name]
                flat.append(per_page(lambda: [flatten.flatten(t) for t in texts], len(texts)))
                parse.append(
                    per_page(
                        lambda: [html.parse_html(b, "utf-8", "c") for b in bodies], len(bodies)
                    )
                )
    finally:
        flatten.token_pattern = real_token
    print(f"{len(bodies)} pages of {args.docs}, {args.rounds} interleaved rounds, ms CPU a page")
    print("| pattern | flatten best | median | parse_html best | median |")
    print("|---|---:|---:|---:|---:|")
    for name, (flat, parse) in times.items():
        print(
            f"| {name} | {min(flat):.3f} | {statistics.median(flat):.3f}"
            f" | {min(parse):.3f} | {statistics.median(parse):.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
