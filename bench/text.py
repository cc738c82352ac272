"""Text extractors on real documentation pages on disk: CPU time, and how much of each page's
main text they keep and how much navigation they let through.

    apt-get install -y postgresql-doc-15 mkdocs-doc      (make bench-deps has the first)
    .venv/bin/python bench/text.py [--pages N]

Pages: the PostgreSQL 15 docs (every `*.html`, 1,169) and MkDocs' own docs (every `*.html`
with a `div[role=main]`, 19 of 23: Debian builds them without directory URLs, and 404.html
and three redirect stubs have none). `--pages N` takes a fixed
sample of N of each. No network.

Extractors: trafilatura with its defaults (readability and jusText as fallbacks when its own
pass finds little), trafilatura `fast=True` (its own pass only), trafilatura
`favor_recall=True` without and with `fast=True`, `crawler.text.readable.page_text` (what
the crawl stores) and `crawler.text.readable.visible_text` (the whole page's visible text,
page_text's fallback).
trafilatura is called as page_text calls it (plain text, tables, no comments, links, images
or metadata).

Reference, from the page's known markup: a PostgreSQL page's <body> without its
`div.navheader` and `div.navfooter` (DocBook's Prev/Up/Home/Next tables); an MkDocs page's
`div[role=main]` (bootstrap theme: `div.col-md-9[role=main]`, beside the navbar, the table of
contents and the footer). Words are `\\w+` tokens, lowercased, counted as a multiset: recall is
the share of the reference's words found in the output, precision the share of the output's
words found in the reference, each averaged over pages (an empty output: recall 0, precision
not counted). "nav leaked" is the share of pages whose output holds the navigation: on
PostgreSQL pages the navheader's or navfooter's "Prev Up" or "Home Next" runs, on MkDocs
pages the top menu ("Home Getting Started User Guide"). ms/page is CPU time
(time.process_time) of the call alone, on the file's bytes, median and mean over the pages.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.extract.html import decode_html  # noqa: E402
from crawler.text.readable import main_text, page_text, visible_text  # noqa: E402

PGDOCS = Path("/usr/share/doc/postgresql-doc-15/html")
MKDOCS = Path("/usr/share/doc/mkdocs/html")
WORD = re.compile(r"\w+")
PG_NAV = re.compile(r"\bPrev Up\b|\bHome Next\b")
MK_NAV = re.compile(r"\bHome Getting Started User Guide\b")


@dataclass(frozen=True)
class Page:
    site: str
    path: Path
    body: bytes
    reference: Counter[str]


@dataclass
class Score:
    ms: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)
    leaked: int = 0
    empty: int = 0


Extractor = Callable[[bytes], str | None]


def words(text: str) -> Counter[str]:
    return Counter(WORD.findall(text.lower()))


def reference(site: str, html: str) -> str | None:
    """The page's main text, from the markup its generator is known to write."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "noscript", "template"])
    if site == "postgresql":
        for node in tree.css("div.navheader, div.navfooter"):
            node.decompose()
        main = tree.body
    else:
        main = tree.css_first("div[role=main]")
    return main.text(separator=" ") if main is not None else None


def load(root: Path, site: str, pattern: str, sample: int | None) -> list[Page]:
    if not root.is_dir():
        package = "postgresql-doc-15" if site == "postgresql" else "mkdocs-doc"
        sys.exit(f"{root} not found: apt-get install -y {package}")
    pages = []
    for path in sorted(root.glob(pattern)):
        body = path.read_bytes()
        ref = reference(site, decode_html(body, None))
        if ref is not None and words(ref):
            pages.append(Page(site, path, body, words(ref)))
    if sample is not None and sample < len(pages):
        pages = sorted(random.Random(5).sample(pages, sample), key=lambda page: page.path)
    return pages


def trafilatura_with(fast: bool = False, favor_recall: bool = False) -> Extractor:
    def extract(body: bytes) -> str | None:
        return main_text(decode_html(body, None), fast=fast, favor_recall=favor_recall)

    return extract


EXTRACTORS: dict[str, Extractor] = {
    "trafilatura default": trafilatura_with(),
    "trafilatura fast=True": trafilatura_with(fast=True),
    "trafilatura favor_recall=True": trafilatura_with(favor_recall=True),
    "trafilatura fast=True favor_recall=True": trafilatura_with(fast=True, favor_recall=True),
    "page_text (fast=True, fallback)": lambda body: page_text(body, None),
    "visible text (selectolax, whole body)": lambda body: visible_text(decode_html(body, None)),
}


def measure(extract: Extractor, page: Page, score: Score) -> None:
    started = time.process_time()
    out = extract(page.body)
    score.ms.append((time.process_time() - started) * 1000)
    got = words(out or "")
    if not got:
        score.empty += 1
        score.recall.append(0.0)
        return
    common = sum((got & page.reference).values())
    score.recall.append(common / sum(page.reference.values()))
    score.precision.append(common / sum(got.values()))
    nav = PG_NAV if page.site == "postgresql" else MK_NAV
    if nav.search(" ".join(WORD.findall(out or ""))):
        score.leaked += 1


def row(site: str, name: str, score: Score, pages: int) -> str:
    precision = statistics.fmean(score.precision) if score.precision else 0.0
    return (
        f"| {site} | {name} | {statistics.median(score.ms):.2f} | {statistics.fmean(score.ms):.2f}"
        f" | {statistics.fmean(score.recall):.3f} | {precision:.3f}"
        f" | {score.leaked / pages:.1%} | {score.empty} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, help="a sample of N pages of each site")
    args = parser.parse_args(argv)
    sites = {
        "postgresql": load(PGDOCS, "postgresql", "*.html", args.pages),
        "mkdocs": load(MKDOCS, "mkdocs", "**/*.html", args.pages),
    }
    print("| site | extractor | ms/page median | ms/page mean | recall | precision "
          "| nav leaked | empty |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for site, pages in sites.items():
        for name, extract in EXTRACTORS.items():
            score = Score()
            extract(pages[0].body)  # warm-up: imports, caches
            for page in pages:
                measure(extract, page, score)
            print(row(f"{site} ({len(pages)})", name, score, len(pages)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
