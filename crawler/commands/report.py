"""`crawler report DB [-o FILE] [--format html|json] [--limit N]`: what is broken, duplicated,
orphaned and slow in a crawl, as one self-contained HTML file or as JSON (SPEC "Reports and
the live view").

`build_report(reader, limit)` gathers the figures through the read contract's report reads
(storage/read_contract.py rules 11-16), all in the reader's one snapshot; `crawler serve`
calls it too. The HTML (report_html.render_report) is made from that dict alone. Each list
section is {"count": total, "items": first `limit`, worst first}; sections that need data an
older crawler did not keep are empty, not errors.

Resource handling: one reader, opened and closed here; a file named by `-o` is written beside
it under a temporary name and renamed once complete (output.destination, as export does).
Error handling: a missing file or a database that is not a crawl's is a UsageError (exit 2)
before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..storage import open_reader
from .durations import crawl_duration
from .output import destination

if TYPE_CHECKING:
    from ..storage.read_contract import Reader

FORMATS = ("html", "json")
DEFAULT_LIMIT = 1000
TITLE_MAX = 60  # characters; longer titles are cut in search results
DESCRIPTION_MAX = 160
SUMMARY_CLASSES = {"2xx": "2xx", "3xx": "3xx", "4xx": "4xx", "5xx": "5xx", "no response": "none"}


def report(db: str | Path, fmt: str, output: str | None, limit: int = DEFAULT_LIMIT) -> None:
    """Write the report of the crawl in `db` as `fmt` to the file `output` (None or "-":
    standard output)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {limit}")
    with open_reader(db) as reader:
        built = build_report(reader, limit)
    if fmt == "json":
        text = json.dumps(built, ensure_ascii=False, indent=1) + "\n"
    else:
        from .report_html import render_report  # only the HTML needs it

        text = render_report(built)
    with destination(output) as out:
        out.write(text.encode("utf-8"))


def build_report(reader: Reader, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The report of the crawl `reader` reads: SPEC's sections (JSON keys), plus `database`
    and `charts` (pages fetched over time, response times)."""
    titles = reader.page_texts("title", TITLE_MAX, limit)
    descriptions = reader.page_texts("description", DESCRIPTION_MAX, limit)
    canonicals = reader.canonicals(limit)
    sitemaps = reader.sitemap_gaps(limit)
    return {
        "database": reader.name,
        "limit": limit,
        "summary": _summary(reader),
        "broken_links": reader.broken_links(limit).as_json(),
        "redirect_chains": reader.redirect_chains(limit).as_json(),
        "titles": {name: listed.as_json() for name, listed in titles.items()},
        "descriptions": {name: listed.as_json() for name, listed in descriptions.items()},
        "canonicals": {name: listed.as_json() for name, listed in canonicals.items()},
        "noindex": reader.noindex(limit).as_json(),
        "hreflang": {"no_return": reader.hreflang_without_return(limit).as_json()},
        "depth": reader.depths(),
        "sitemaps": {name: listed.as_json() for name, listed in sitemaps.items()},
        "duplicates": reader.duplicate_bodies(limit).as_json(),
        "hosts": _hosts(reader, limit),
        "slowest": reader.slowest(limit).as_json(),
        "changes": _changes(reader),
        "charts": _charts(reader),
    }


def _summary(reader: Reader) -> dict[str, Any]:
    counts = reader.counts()
    runs = tuple(reader.runs())
    duration = crawl_duration(reader, runs)
    return {
        "pages": counts.pages,
        "by_status": {
            key: counts.status_classes.get(name, 0) for name, key in SUMMARY_CLASSES.items()
        },
        "by_content_type": [
            {"content_type": kind, "pages": n} for kind, n in counts.content_types.items()
        ],
        "urls": counts.url_states,
        "skipped": counts.skip_reasons,
        "hosts": counts.hosts,
        "bytes": counts.bytes,
        "duration_s": round(duration, 3),
        "pages_per_s": round(counts.pages / duration, 3) if duration > 0 else None,
        "runs": len(runs),
    }


def _hosts(reader: Reader, limit: int) -> dict[str, Any]:
    found = reader.hosts()  # one row per host: a crawl's hosts are few next to its pages
    worst = sorted(found, key=lambda h: (-h.errors, -h.pages, h.host))[:limit]
    items = [
        {
            "host": h.host,
            "requests": h.requests,
            "errors": h.errors,
            "delay": h.delay,
            "delay_reason": h.delay_reason,
            "min_gap_ms": None if h.min_gap_ms is None else round(h.min_gap_ms, 1),
            "robots_status": h.robots_status,
            "crawl_delay": h.crawl_delay,
            "pages": h.pages,
        }
        for h in worst
    ]
    return {"count": len(found), "items": items}


def _changes(reader: Reader) -> dict[str, Any]:
    items = [
        {"pass": p.number, "new": p.new, "changed": p.changed, "unchanged": p.unchanged,
         "gone": p.gone}
        for p in reader.passes()
    ]  # fmt: skip
    return {"count": len(items), "items": items}


def _charts(reader: Reader) -> dict[str, Any]:
    # Here, not at the top: the crawl imports this module for its constants (cli) and needs
    # none of the read side before its first request.
    from ..storage.report_reads import RESPONSE_BUCKETS_MS

    unit, buckets = reader.fetch_timeline()
    edges: list[int | None] = [*RESPONSE_BUCKETS_MS, None]
    return {
        "fetched_over_time": {
            "unit": unit,
            "buckets": [{"t": t, "pages": n} for t, n in buckets],
        },
        "response_times": [
            {"under_ms": edge, "pages": n}
            for edge, (_, n) in zip(edges, reader.response_times(), strict=True)
        ],
    }


def findings(reader: Reader) -> dict[str, int]:
    """How many of what a site's owner looks at first the crawl found: `crawler report`'s
    totals (read rules 11-14), counted only."""
    return {
        "broken links": reader.broken_links(0).count,
        "redirect chains": reader.redirect_chains(0).count,
        "orphans": reader.sitemap_gaps(0)["orphans"].count,
        "duplicate bodies": reader.duplicate_bodies(0).count,
        "duplicate titles": reader.page_texts("title", TITLE_MAX, 0)["duplicate"].count,
    }
