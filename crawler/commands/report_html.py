"""The report as one self-contained HTML file, made from report.build_report's dict alone.

Inline CSS, a small inline script (sorting and filtering tables: it reads and moves existing
rows and sets `hidden`, it never writes markup), charts as inline SVG (report_charts). Nothing
is fetched from anywhere: no src or href names a URL, crawled URLs are shown as text, and a
Content-Security-Policy lets only this file's own script (by its SHA-256) run, so even markup
that slipped through could load and run nothing. Every value is escaped by report_charts.text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .report_charts import charts, text

SHOWN_MEMBERS = 5  # URLs shown in one cell; the rest are counted
Cell = Callable[[Any], str]

STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:12px}
h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}
.db{color:#555;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px}
.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px}
.card b{display:block;font-size:1.35em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
.chart{background:#fff;border:1px solid #dde;border-radius:6px;margin:0;padding:6px}
.chart svg{width:100%;height:auto;display:block}.tick{font-size:11px;fill:#444}
figcaption{font-size:.85em;color:#555}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px;margin:10px 0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f0f2f6;white-space:nowrap;user-select:none}
td{overflow-wrap:anywhere;min-width:4em}
ul{margin:0;padding-left:1.1em}
input.filter{width:100%;max-width:320px;padding:4px;margin:4px 0}
.total,.more{color:#555;font-size:.85em}
"""

SCRIPT = """
"use strict";
function cellValue(row, i) { return row.cells[i].textContent.trim(); }
function compare(a, b) {
  const x = Number(a), y = Number(b);
  if (a !== "" && b !== "" && !Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return a.localeCompare(b);
}
for (const table of document.querySelectorAll("table.sortable")) {
  const body = table.tBodies[0];
  table.querySelectorAll("th").forEach((th, i) => {
    th.addEventListener("click", () => {
      const down = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach((other) => { delete other.dataset.order; });
      th.dataset.order = down ? "asc" : "desc";
      const rows = Array.from(body.rows);
      rows.sort((a, b) => compare(cellValue(a, i), cellValue(b, i)) * (down ? 1 : -1));
      for (const row of rows) body.appendChild(row);
    });
  });
}
for (const input of document.querySelectorAll("input.filter")) {
  const table = document.getElementById(input.dataset.table);
  input.addEventListener("input", () => {
    const wanted = input.value.toLowerCase();
    for (const row of table.tBodies[0].rows) {
      row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
    }
  });
}
"""


def render_report(report: Mapping[str, Any]) -> str:
    """The report dict (report.build_report) as one self-contained HTML page."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    database = report.get("database", "")
    return "".join(
        [
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{text(policy)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Crawl report: {text(database)}</title><style>{STYLE}</style></head>",
            "<body><main><h1>Crawl report</h1>",
            f'<p class="db">{text(database)}</p>',
            _cards(report),
            f'<h2>Charts</h2><div class="charts">{charts(report)}</div>',
            _sections(report),
            f"</main><script>{SCRIPT}</script></body></html>\n",
        ]
    )


def _cards(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    rate = summary["pages_per_s"]
    figures = [
        ("pages", "Pages", summary["pages"]),
        ("broken-count", "Broken links", report["broken_links"]["count"]),
        ("redirect-count", "Redirect chains", report["redirect_chains"]["count"]),
        ("duplicate-count", "Duplicate bodies", report["duplicates"]["count"]),
        ("hosts-count", "Hosts", summary["hosts"]),
        ("bytes", "Bytes", summary["bytes"]),
        ("duration", "Duration (s)", summary["duration_s"]),
        ("rate", "Pages/s", "-" if rate is None else rate),
    ]
    cards = "".join(
        f'<div class="card" id="{text(key)}"><b>{text(value)}</b>{text(label)}</div>'
        for key, label, value in figures
    )
    return f'<div class="cards">{cards}</div>'


def _sections(report: Mapping[str, Any]) -> str:
    num, plain, listed = _number, _plain, _members
    parts = [
        ("broken", "Broken links", report["broken_links"],
         [("URL", "url", plain), ("status", "status", num), ("error", "error", plain),
          ("inlinks", "inlinks", num), ("linked from", "sources", listed)]),
        ("redirects", "Redirect chains", report["redirect_chains"],
         [("URLs", "urls", listed), ("statuses", "statuses", _codes), ("hops", "hops", num),
          ("loop", "loop", _yes), ("inlinks", "inlinks", num)]),
    ]  # fmt: skip
    for key, name, limit in (("titles", "Titles", 60), ("descriptions", "Descriptions", 160)):
        single = name[:-1].lower()
        section = report[key]
        parts += [
            (f"{key}-missing", f"{name}: missing", section["missing"], [("URL", "url", plain)]),
            (f"{key}-duplicate", f"{name}: duplicate", section["duplicate"],
             [(single, "text", plain), ("pages", "count", num), ("URLs", "urls", listed)]),
            (f"{key}-too-long", f"{name}: over {limit} characters", section["too_long"],
             [("URL", "url", plain), (single, single, plain), ("length", "length", num)]),
        ]  # fmt: skip
    canon, maps = report["canonicals"], report["sitemaps"]
    parts += [
        ("canonicalised", "Canonicalised pages", canon["canonicalised"],
         [("URL", "url", plain), ("canonical", "canonical", plain)]),
        ("canonical-broken", "Broken canonicals", canon["broken"],
         [("URL", "url", plain), ("canonical", "canonical", plain), ("status", "status", num)]),
        ("noindex", "Noindex pages", report["noindex"],
         [("URL", "url", plain), ("robots", "robots", plain)]),
        ("hreflang", "hreflang without a return link", report["hreflang"]["no_return"],
         [("URL", "url", plain), ("hreflang", "hreflang", plain), ("target", "target", plain)]),
        ("orphans", "Sitemap orphans", maps["orphans"],
         [("URL", "url", plain), ("status", "status", num)]),
        ("sitemap-not-200", "Sitemap entries not answering 200", maps["not_200"],
         [("URL", "url", plain), ("status", "status", num)]),
        ("not-in-sitemap", "Pages no sitemap lists", maps["not_in_sitemap"],
         [("URL", "url", plain)]),
        ("duplicates", "Pages with the same body", report["duplicates"],
         [("SHA-256", "sha256", plain), ("pages", "count", num), ("URLs", "urls", listed)]),
        ("hosts", "Hosts", report["hosts"],
         [("host", "host", plain), ("requests", "requests", num), ("errors", "errors", num),
          ("delay (s)", "delay", num), ("why", "delay_reason", plain),
          ("crawl-delay", "crawl_delay", num), ("min gap (ms)", "min_gap_ms", num),
          ("robots", "robots_status", plain), ("pages", "pages", num)]),
        ("slowest", "Slowest pages", report["slowest"],
         [("URL", "url", plain), ("ms", "elapsed_ms", num), ("bytes", "bytes", num)]),
        ("changes", "Changes per pass", report["changes"],
         [("pass", "pass", num), ("new", "new", num), ("changed", "changed", num),
          ("unchanged", "unchanged", num), ("gone", "gone", num)]),
    ]  # fmt: skip
    return "".join(_table(*part) for part in parts)


def _table(
    key: str, title: str, listed: Mapping[str, Any], columns: Sequence[tuple[str, str, Cell]]
) -> str:
    items: Sequence[Mapping[str, Any]] = listed["items"]
    count = int(listed["count"])
    shown = f"{len(items)} of {count}" if len(items) < count else f"{count}"
    head = f'<h2 id="{text(key)}">{text(title)} <span class="total">({text(shown)})</span></h2>'
    if not items:
        return f"<section>{head}<p>None found.</p></section>"
    table_id = f"table-{key}"
    headers = "".join(f"<th>{text(name)}</th>" for name, _, _ in columns)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{cell(item.get(field))}</td>" for _, field, cell in columns)
        + "</tr>"
        for item in items
    )
    return (
        f"<section>{head}"
        '<input class="filter" type="search" placeholder="filter"'
        f' aria-label="filter {text(title)}" data-table="{text(table_id)}">'
        f'<div class="scroll"><table class="sortable" id="{text(table_id)}">'
        f"<thead><tr>{headers}</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _plain(value: Any) -> str:
    return text(value)


def _number(value: Any) -> str:
    return text(f"{value:g}" if isinstance(value, float) else value)


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _codes(value: Any) -> str:
    return text(" → ".join("-" if code is None else str(code) for code in value or ()))


def _members(value: Any) -> str:
    members = list(value or ())
    shown = "".join(f"<li>{text(member)}</li>" for member in members[:SHOWN_MEMBERS])
    more = len(members) - SHOWN_MEMBERS
    rest = f'<li class="more">and {text(more)} more</li>' if more > 0 else ""
    return f"<ul>{shown}{rest}</ul>"
