"""The report's reads (read_contract.py rules 11-16): what `crawler report` finds, computed by
the database.

Each list is read twice: its first `limit` items, worst first (ORDER BY … LIMIT, ties broken
by `pages.id`, never by the database's collation), and its total (`count(*)`) on its own, so
memory stays bounded however big the crawl. Members of a group (the pages sharing a title, the
sources of a broken link) come in the same query, numbered with row_number() and cut at
MEMBERS. The SQL is portable, but for one function that finds text in text: `_FIND`, which
each backend names (SQLite's `instr`, PostgreSQL's `strpos`).

What R1's columns and tables feed (`pages.description`, `canonical`, `robots`, `alternates`,
`sitemap_entries`) is read only when the database has them: an older database gets empty
sections, found through `columns()` and `tables()`, never an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .read_contract import Listed, Row

MEMBERS = 100  # URLs shown per group (sources of a broken link, pages sharing a title)
MAX_HOPS = 64  # a redirect walk stops here, a loop or not
HTML_2XX = "status BETWEEN 200 AND 299 AND content_type IN ('text/html', 'application/xhtml+xml')"
HTML_2XX_P = HTML_2XX.replace("status", "p.status").replace("content_type", "p.content_type")
RESPONSE_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000)  # upper edges; the last is open

_BROKEN = """
broken AS (
    SELECT p.id, p.url, p.status, p.error,
           (SELECT count(*) FROM links AS l WHERE l.dst_url = p.url) AS inlinks
    FROM pages AS p
    WHERE (p.status IS NULL OR p.status >= 400)
      AND EXISTS (SELECT 1 FROM links AS l WHERE l.dst_url = p.url)
)"""
BROKEN_COUNT = f"WITH {_BROKEN} SELECT count(*) FROM broken"
BROKEN_ITEMS = f"""
WITH {_BROKEN},
top AS (SELECT * FROM broken ORDER BY inlinks DESC, id LIMIT ?1),
members AS (
    SELECT t.id AS tid, s.url, s.id AS sid,
           row_number() OVER (PARTITION BY t.id ORDER BY s.id) AS k
    FROM top AS t JOIN links AS l ON l.dst_url = t.url JOIN pages AS s ON s.url = l.src_url
)
SELECT t.url, t.status, t.error, t.inlinks, m.url
FROM top AS t LEFT JOIN members AS m ON m.tid = t.id AND m.k <= {MEMBERS}
ORDER BY t.inlinks DESC, t.id, m.sid
"""

# Every redirect page starts a walk along `location`; `path` holds the URLs seen, each between
# spaces (a normalized URL has none), so a URL seen again ends the walk as a loop. A chain is a
# walk from a head (a redirect no other redirect points at); a loop that no head runs into is
# listed once, from its member with the smallest id.
_WALKS = f"""
WITH RECURSIVE hops AS (
    SELECT id, url, status, location FROM pages
    WHERE status BETWEEN 300 AND 399 AND location IS NOT NULL
),
walk (start, start_id, url, n, path, statuses, looped, lowest) AS (
    SELECT url, id, url, 0, ' ' || url || ' ', CAST('' AS TEXT), 0, id FROM hops
    UNION ALL
    SELECT w.start, w.start_id, h.location, w.n + 1, w.path || h.location || ' ',
           w.statuses || h.status || ' ',
           CASE WHEN {{find}}(w.path, ' ' || h.location || ' ') > 0 THEN 1 ELSE 0 END,
           CASE WHEN h.id < w.lowest THEN h.id ELSE w.lowest END
    FROM walk AS w JOIN hops AS h ON h.url = w.url
    WHERE w.looped = 0 AND w.n < {MAX_HOPS}
),
ends AS (
    SELECT * FROM walk AS w
    WHERE w.n > 0 AND (w.looped = 1 OR w.n = {MAX_HOPS}
                       OR NOT EXISTS (SELECT 1 FROM hops AS h WHERE h.url = w.url))
),
found AS (
    SELECT * FROM ends AS e
    WHERE (e.n >= 2 OR e.looped = 1)
      AND NOT EXISTS (SELECT 1 FROM hops AS h WHERE h.location = e.start)
    UNION ALL
    SELECT * FROM ends AS e
    WHERE e.looped = 1 AND e.url = e.start AND e.start_id = e.lowest
)"""
CHAINS_COUNT = _WALKS + " SELECT count(*) FROM found"
CHAINS_ITEMS = (
    _WALKS
    + """
SELECT f.path, f.statuses, last.status, f.n, f.looped,
       (SELECT count(*) FROM links AS l WHERE l.dst_url = f.start) AS inlinks
FROM found AS f LEFT JOIN pages AS last ON last.url = f.url
ORDER BY f.looped DESC, f.n DESC, inlinks DESC, f.start_id
LIMIT ?1
"""
)

# {column}: title or description; its groups of 2+ 2xx HTML pages, most pages first.
_SHARED = f"""
WITH shared AS (
    SELECT {{column}} AS text, count(*) AS n, min(id) AS first FROM pages
    WHERE {HTML_2XX} AND {{column}} <> ''
    GROUP BY {{column}} HAVING count(*) > 1
)"""
SHARED_COUNT = _SHARED + " SELECT count(*) FROM shared"
SHARED_ITEMS = (
    _SHARED
    + f""",
top AS (SELECT * FROM shared ORDER BY n DESC, first LIMIT ?1),
members AS (
    SELECT p.{{column}} AS text, p.url, p.id,
           row_number() OVER (PARTITION BY p.{{column}} ORDER BY p.id) AS k
    FROM pages AS p JOIN top AS t ON t.text = p.{{column}}
    WHERE {HTML_2XX_P}
)
SELECT t.text, t.n, m.url FROM top AS t JOIN members AS m ON m.text = t.text AND m.k <= {MEMBERS}
ORDER BY t.n DESC, t.first, m.id
"""
)
MISSING_WHERE = f"{HTML_2XX} AND ({{column}} IS NULL OR {{column}} = '')"
TOO_LONG_WHERE = f"{HTML_2XX} AND length({{column}}) > ?{{n}}"

# Pages with the same body: two 2xx pages with one SHA-256 and some bytes.
_SAME_BODY = """
WITH same AS (
    SELECT sha256, count(*) AS n, min(id) AS first FROM pages
    WHERE status BETWEEN 200 AND 299 AND sha256 IS NOT NULL AND bytes > 0
    GROUP BY sha256 HAVING count(*) > 1
)"""
SAME_BODY_COUNT = _SAME_BODY + " SELECT count(*) FROM same"
SAME_BODY_ITEMS = (
    _SAME_BODY
    + f""",
top AS (SELECT * FROM same ORDER BY n DESC, first LIMIT ?1),
members AS (
    SELECT p.sha256, p.url, p.id, row_number() OVER (PARTITION BY p.sha256 ORDER BY p.id) AS k
    FROM pages AS p JOIN top AS t ON t.sha256 = p.sha256
    WHERE p.status BETWEEN 200 AND 299 AND p.bytes > 0
)
SELECT t.sha256, t.n, m.url FROM top AS t JOIN members AS m ON m.sha256 = t.sha256
WHERE m.k <= {MEMBERS}
ORDER BY t.n DESC, t.first, m.id
"""
)

CANONICALISED_WHERE = f"{HTML_2XX} AND canonical IS NOT NULL AND canonical <> url"
_BROKEN_CANONICAL = f"""
FROM pages AS p LEFT JOIN pages AS t ON t.url = p.canonical
WHERE {HTML_2XX_P}
  AND p.canonical IS NOT NULL AND (t.status IS NULL OR t.status NOT BETWEEN 200 AND 299)"""
NOINDEX_WHERE = "robots LIKE '%noindex%'"
_NO_RETURN = """
FROM alternates AS a
WHERE a.dst_url <> a.src_url AND NOT EXISTS (
    SELECT 1 FROM alternates AS b WHERE b.src_url = a.dst_url AND b.dst_url = a.src_url
)"""
_ORPHANS = """
FROM (SELECT DISTINCT url FROM sitemap_entries) AS e LEFT JOIN pages AS p ON p.url = e.url
WHERE NOT EXISTS (SELECT 1 FROM links AS l WHERE l.dst_url = e.url AND l.src_url <> e.url)"""
_NOT_200 = """
FROM (SELECT DISTINCT url FROM sitemap_entries) AS e JOIN pages AS p ON p.url = e.url
WHERE p.status IS NULL OR p.status <> 200"""
NOT_IN_SITEMAP_WHERE = (
    f"{HTML_2XX} AND EXISTS (SELECT 1 FROM sitemap_entries)"
    " AND NOT EXISTS (SELECT 1 FROM sitemap_entries AS e WHERE e.url = pages.url)"
)

DEPTHS = """
SELECT depth, CASE WHEN status IS NULL THEN 'none'
                   WHEN status BETWEEN 200 AND 599 THEN (status / 100) || 'xx' ELSE 'other' END,
       count(*)
FROM pages GROUP BY 1, 2
"""
FETCH_SPAN = "SELECT min(fetched_at), max(fetched_at) FROM pages"
FETCH_BUCKETS = "SELECT substr(fetched_at, 1, ?1) AS t, count(*) FROM pages GROUP BY t"
SLOWEST_COUNT = "SELECT count(*) FROM pages WHERE elapsed_ms IS NOT NULL"
SLOWEST_ITEMS = (
    "SELECT url, elapsed_ms, bytes FROM pages WHERE elapsed_ms IS NOT NULL"
    " ORDER BY elapsed_ms DESC, id LIMIT ?1"
)


def _response_buckets() -> str:
    edges = RESPONSE_BUCKETS_MS
    cases = " ".join(f"WHEN elapsed_ms < {edge} THEN {i}" for i, edge in enumerate(edges))
    return (
        f"SELECT CASE {cases} ELSE {len(edges)} END AS b, count(*) FROM pages"
        " WHERE elapsed_ms IS NOT NULL GROUP BY b"
    )


RESPONSE_BUCKETS = _response_buckets()
EMPTY = Listed(0, [])


class ReportReads(ABC):
    """The report's named reads (read_contract.Reader, rules 11-16) over a backend's primitives."""

    _FIND = "instr"  # the position of text in text, 0 when absent: each backend names its own

    @abstractmethod
    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    @abstractmethod
    def tables(self) -> set[str]: ...

    @abstractmethod
    def columns(self, table: str) -> list[str]: ...

    def _count(self, sql: str, params: Sequence[object] = ()) -> int:
        ((n,),) = self._all(sql, params)
        return int(n)

    def _listed(self, columns: Sequence[str], tail: str, order: str, limit: int) -> Listed:
        """`columns` (SQL AS key) of the rows `tail` (FROM … WHERE …) selects, `order`ed."""
        names = [c.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1] for c in columns]
        sql = f"SELECT {', '.join(columns)} {tail} ORDER BY {order} LIMIT ?1"
        items = [dict(zip(names, row, strict=True)) for row in self._all(sql, (limit,))]
        return Listed(self._count(f"SELECT count(*) {tail}"), items)

    def broken_links(self, limit: int) -> Listed:
        items: dict[str, dict[str, Any]] = {}
        for url, status, error, inlinks, source in self._all(BROKEN_ITEMS, (limit,)):
            item = items.setdefault(
                url, {"url": url, "status": status, "error": error, "inlinks": inlinks}
            )
            item.setdefault("sources", [])
            if source is not None:
                item["sources"].append(source)
        return Listed(self._count(BROKEN_COUNT), list(items.values()))

    def redirect_chains(self, limit: int) -> Listed:
        items = []
        sql = CHAINS_ITEMS.format(find=self._FIND)
        for path, statuses, last, hops, looped, inlinks in self._all(sql, (limit,)):
            codes: list[int | None] = [int(s) for s in statuses.split()]
            items.append(
                {
                    "urls": path.split(),
                    "statuses": [*codes, last],
                    "hops": hops,
                    "loop": bool(looped),
                    "inlinks": inlinks,
                }
            )
        return Listed(self._count(CHAINS_COUNT.format(find=self._FIND)), items)

    def page_texts(self, column: str, too_long: int, limit: int) -> dict[str, Listed]:
        if column not in ("title", "description"):
            raise ValueError(f"not a text column: {column!r}")
        if column not in self.columns("pages"):
            return {"missing": EMPTY, "duplicate": EMPTY, "too_long": EMPTY}
        tail = f"FROM pages WHERE {MISSING_WHERE.format(column=column)}"
        missing = self._listed(["url"], tail, "id", limit)
        groups: dict[str, dict[str, Any]] = {}
        for text, n, url in self._all(SHARED_ITEMS.format(column=column), (limit,)):
            groups.setdefault(text, {"text": text, "count": n, "urls": []})["urls"].append(url)
        shared = Listed(self._count(SHARED_COUNT.format(column=column)), list(groups.values()))
        where = f"FROM pages WHERE {TOO_LONG_WHERE}"
        sql = f"SELECT url, {column}, length({column}) {where} ORDER BY 3 DESC, id LIMIT ?1"
        rows = self._all(sql.format(column=column, n=2), (limit, too_long))
        counted = f"SELECT count(*) {where}".format(column=column, n=1)
        long = Listed(
            self._count(counted, (too_long,)),
            [{"url": u, column: t, "length": n} for u, t, n in rows],
        )
        return {
            "missing": missing,
            "duplicate": shared,
            "too_long": long,
        }

    def duplicate_bodies(self, limit: int) -> Listed:
        if "sha256" not in self.columns("pages"):
            return EMPTY
        groups: dict[str, dict[str, Any]] = {}
        for sha256, n, url in self._all(SAME_BODY_ITEMS, (limit,)):
            groups.setdefault(sha256, {"sha256": sha256, "count": n, "urls": []})["urls"].append(
                url
            )
        return Listed(self._count(SAME_BODY_COUNT), list(groups.values()))

    def canonicals(self, limit: int) -> dict[str, Listed]:
        if "canonical" not in self.columns("pages"):
            return {"canonicalised": EMPTY, "broken": EMPTY}
        where = f"FROM pages WHERE {CANONICALISED_WHERE}"
        columns = ["p.url", "p.canonical", "t.status"]
        return {
            "canonicalised": self._listed(["url", "canonical"], where, "id", limit),
            "broken": self._listed(columns, _BROKEN_CANONICAL, "p.id", limit),
        }

    def noindex(self, limit: int) -> Listed:
        if "robots" not in self.columns("pages"):
            return EMPTY
        return self._listed(["url", "robots"], f"FROM pages WHERE {NOINDEX_WHERE}", "id", limit)

    def hreflang_without_return(self, limit: int) -> Listed:
        if "alternates" not in self.tables():
            return EMPTY
        columns = ["a.src_url AS url", "a.hreflang", "a.dst_url AS target"]
        found = self._listed(columns, _NO_RETURN, "a.src_url, a.hreflang, a.dst_url", limit)
        return _in_text_order(found, ("url", "hreflang", "target"))

    def sitemap_gaps(self, limit: int) -> dict[str, Listed]:
        if "sitemap_entries" not in self.tables():
            return {"orphans": EMPTY, "not_200": EMPTY, "not_in_sitemap": EMPTY}
        where = f"FROM pages WHERE {NOT_IN_SITEMAP_WHERE}"
        return {
            "orphans": _in_text_order(
                self._listed(["e.url", "p.status"], _ORPHANS, "e.url", limit), ("url",)
            ),
            "not_200": self._listed(["e.url", "p.status"], _NOT_200, "p.id", limit),
            "not_in_sitemap": self._listed(["url"], where, "id", limit),
        }

    def depths(self) -> list[dict[str, int]]:
        rows: dict[int, dict[str, int]] = {}
        for depth, status_class, n in self._all(DEPTHS):
            row = rows.setdefault(depth, {"depth": depth})
            row[status_class] = n
        return [rows[d] for d in sorted(rows)]

    def slowest(self, limit: int) -> Listed:
        rows = self._all(SLOWEST_ITEMS, (limit,))
        items = [{"url": u, "elapsed_ms": ms, "bytes": b} for u, ms, b in rows]
        return Listed(self._count(SLOWEST_COUNT), items)

    def fetch_timeline(self) -> tuple[str, list[tuple[str, int]]]:
        ((first, last),) = self._all(FETCH_SPAN)
        if first is None:
            return "second", []
        unit, width = _bucket_width(str(first), str(last))
        return unit, sorted(self._all(FETCH_BUCKETS, (width,)))

    def response_times(self) -> list[tuple[int, int]]:
        found: dict[int, int] = dict(self._all(RESPONSE_BUCKETS))
        return [(i, int(found.get(i, 0))) for i in range(len(RESPONSE_BUCKETS_MS) + 1)]


def _in_text_order(found: Listed, keys: Sequence[str]) -> Listed:
    """Items ordered by text in Python: the databases' collations differ."""
    return Listed(found.count, sorted(found.items, key=lambda i: [str(i[k]) for k in keys]))


BUCKET_WIDTHS = (("second", 19, 1), ("minute", 16, 60), ("hour", 13, 3600), ("day", 10, 86400))
MAX_BUCKETS = 240


def _bucket_width(first: str, last: str) -> tuple[str, int]:
    """The finest ISO-8601 prefix that cuts first…last into at most MAX_BUCKETS buckets."""
    try:
        span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    except ValueError:
        return "day", 10
    for unit, width, seconds in BUCKET_WIDTHS:
        if span / seconds < MAX_BUCKETS:
            return unit, width
    return "day", 10
