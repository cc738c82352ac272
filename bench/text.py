"""Text extractors on real documentation pages on disk: CPU time, and how much of each page's
main text they keep and how much navigation they let through.

    apt-get install -y postgresql-doc-15 mkdocs-doc python-django-doc  (make bench-deps)
    .venv/bin/python bench/text.py [--pages N] [--sites postgresql,mkdocs,django]

Pages: the PostgreSQL 15 docs (every `*.html`, 1,169), MkDocs' own docs (every `*.html`
with a `div[role=main]`, 19 of 23: Debian builds them without directory URLs, and 404.html
and three redirect stubs have none) and Django's docs (Debian's python-django-doc: every
`*.html` of 50 KB or more outside `_modules/` with a `div#yui-main`, the big pages).
`--pages N` takes a fixed sample of N of each. No network.

Extractors: resiliparse's `extract_plain_text` as `crawler.text.readable.main_text` calls it
(plain text without `BOILERPLATE`), the same with resiliparse's `main_content=True` instead,
`crawler.text.readable.page_text` (what the crawl stores: main_text, else the visible text)
and `crawler.text.readable.visible_text` (the whole page's visible text); and, when
trafilatura is installed (no dependency any more: `pip install trafilatura` to compare),
trafilatura `fast=True` as the crawl called it up to issue 22 (plain text, tables, no
comments, links, images or metadata) and with its defaults.

Reference, from the page's known markup: a PostgreSQL page's <body> without its
`div.navheader` and `div.navfooter` (DocBook's Prev/Up/Home/Next tables); an MkDocs page's
`div[role=main]` (bootstrap theme: `div.col-md-9[role=main]`, beside the navbar, the table of
contents and the footer); a Django page's `div#yui-main` (beside the header's global
navigation and previous/up/next links, the sidebar's table of contents, and the footer).
Words are `\\w+` tokens, lowercased, counted as a multiset: recall is the share of the
reference's words found in the output, precision the share of the output's words found in the
reference, each averaged over pages (an empty output: recall 0, precision not counted). "nav
leaked" is the share of pages whose output holds the navigation: on PostgreSQL pages the
navheader's or navfooter's "Prev Up" or "Home Next" runs, on MkDocs pages the top menu ("Home
Getting Started User Guide"), on Django pages the global navigation ("Home | Table of contents
| Index | Modules") or the previous/up/next links. ms/page is CPU time (time.process_time) of
the call alone, on the file's bytes, median and mean over the pages.
"""

from __future__ import annotations

import argparse
import importlib
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text
from selectolax.lexbor import LexborHTMLParser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.extract.html import decode_html  # noqa: E402
from crawler.text.readable import main_text, page_text, visible_text  # noqa: E402

PGDOCS = Path("/usr/share/doc/postgresql-doc-15/html")
MKDOCS = Path("/usr/share/doc/mkdocs/html")
DJANGO = Path("/usr/share/doc/python-django-doc/html")
BIG = 50_000  # bytes: a Django page this big or more is in the corpus
WORD = re.compile(r"\w+")
NAV = {
    "postgresql": re.compile(r"\bPrev Up\b|\bHome Next\b"),
    "mkdocs": re.compile(r"\bHome Getting Started User Guide\b"),
    "django": re.compile(r"\bHome Table of contents Index Modules\b|\bprevious up next\b"),
}
SITES = {  # site: (folder, glob, Debian package)
    "postgresql": (PGDOCS, "*.html", "postgresql-doc-15"),
    "mkdocs": (MKDOCS, "**/*.html", "mkdocs-doc"),
    "django": (DJANGO, "**/*.html", "python-django-doc"),
}


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
    elif site == "django":
        main = tree.css_first("div#yui-main")
    else:
        main = tree.css_first("div[role=main]")
    return main.text(separator=" ") if main is not None else None


def load(site: str, sample: int | None) -> list[Page]:
    root, pattern, package = SITES[site]
    if not root.is_dir():
        sys.exit(f"{root} not found: apt-get install -y {package}")
    pages = []
    for path in sorted(root.glob(pattern)):
        body = path.read_bytes()
        if site == "django" and (len(body) < BIG or "_modules" in path.parts):
            continue
        ref = reference(site, decode_html(body, None))
        if ref is not None and words(ref):
            pages.append(Page(site, path, body, words(ref)))
    if sample is not None and sample < len(pages):
        pages = sorted(random.Random(5).sample(pages, sample), key=lambda page: page.path)
    return pages


def trafilatura_with(fast: bool) -> Extractor:
    """trafilatura as page_text called it up to issue 22 (no dependency: imported if there)."""
    trafilatura = importlib.import_module("trafilatura")

    def extract(body: bytes) -> str | None:
        text: str | None = trafilatura.extract(
            decode_html(body, None), output_format="txt", include_comments=False,
            include_tables=True, include_links=False, include_images=False,
            include_formatting=False, with_metadata=False, fast=fast,
        )  # fmt: skip
        return text

    return extract


def extractors() -> dict[str, Extractor]:
    found: dict[str, Extractor] = {
        "resiliparse, BOILERPLATE skipped": lambda body: main_text(decode_html(body, None)),
        "resiliparse main_content=True": lambda body: extract_plain_text(
            decode_html(body, None),
            main_content=True,
            preserve_formatting=True,
            list_bullets=False,
            alt_texts=False,
            comments=False,
        ),
        "page_text (what pages.text holds)": lambda body: page_text(body, None),
        "visible text (selectolax, whole body)": lambda body: visible_text(decode_html(body, None)),
    }
    try:
        found["trafilatura fast=True"] = trafilatura_with(fast=True)
        found["trafilatura default"] = trafilatura_with(fast=False)
    except ImportError:
        print("(trafilatura not installed: its rows left out)", file=sys.stderr)
    return found


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
    if NAV[page.site].search(" ".join(WORD.findall(out or ""))):
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
    parser.add_argument("--sites", default=",".join(SITES), help="which, comma-separated")
    args = parser.parse_args(argv)
    sites = {site: load(site, args.pages) for site in args.sites.split(",")}
    named = extractors()
    print("| site | extractor | ms/page median | ms/page mean | recall | precision "
          "| nav leaked | empty |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for site, pages in sites.items():
        for name, extract in named.items():
            score = Score()
            extract(pages[0].body)  # warm-up: imports, caches
            for page in pages:
                measure(extract, page, score)
            print(row(f"{site} ({len(pages)})", name, score, len(pages)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
