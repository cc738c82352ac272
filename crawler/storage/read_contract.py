"""The read contract: what `stats`, `query`, `search`, `export`, `report` and `serve` read from a
crawl database, whatever the backend.

Two backends keep it: SQLite (sqlite_reads.SQLiteReader) and PostgreSQL
(postgres_reads.PgReader); `storage.open_reader(db)` picks one from the DB argument. Callers ask
by name (`counts`, `hosts`, `runs`, `pages`, `search`, …) and never write SQL, the user's own
for `crawler query` aside (`user_sql`). tests/test_storage_reads.py checks every rule below
against both backends, on the same rows written through each backend's `Storage.save`.

  1. Read-only. A reader cannot change the database: the user's SQL that writes (or creates,
     attaches, sets a pragma or runs COPY/DO) is refused with StoreError exit code 2
     ("query refused: …"), and nothing is changed.
  2. One snapshot. Every read of one reader sees the database as it was at the first read,
     however a crawl writes meanwhile, so counts agree with each other.
  3. Values as SQLite gives them, on both backends: booleans as 0/1, times as ISO-8601 text,
     bodies as bytes, numbers as int or float; the user's columns named as SQLite names them
     (`count(*)`, not `count`).
  4. Counts. `counts()` gives pages by status class (`2xx`…`5xx`, `1xx` and `other` when
     present, `no response`), URLs by state (every state of SPEC, 0 when none), skipped URLs by
     reason, pages by content type, hosts, bytes and errors; `progress()` the crawl-wide figures
     a progress line shows.
  5. Streams in fetch order. `pages(columns)` yields the chosen columns of `pages` in the order
     the pages were first fetched, read as they are consumed (a batch at a time: bodies are
     big), NULL for a column an older database lacks.
  6. Search. `search(terms, limit)` gives (url, title, snippet) rows, best first, from the
     database's own index (rule 15 of the write contract); a malformed query or a database
     without the index is a UsageError.
  7. Columns. `columns(table)` names a table's columns in order; [] for a missing table.
  8. Runs in order. `runs()` gives every run, oldest first, with its pass and the event
     loop's lag (NULL where an older database did not record it).
  9. Passes. `passes()` counts each pass's fetches by change (`new`, `changed`, `unchanged`,
     `gone`, and no answer), in pass order; () for a database older than recrawls.
 10. Hosts. `hosts()` gives each host seen (in `hosts` or `pages`) with its politeness record
     and its pages, most pages first, then by name.

The report's reads (storage/report_reads.py; `crawler report`, SPEC "Reports and the live
view"). Each list is a `Listed`: `count`, the total, computed on its own, and `items`, the
first `limit`, worst first, ties in `pages.id` order; a group's members (`urls`, `sources`)
are cut at report_reads.MEMBERS. Nothing is loaded whole into Python.
 11. Broken links. `broken_links(limit)`: the fetched pages that answered 4xx/5xx or nothing
     and that some page links to: url, status, error, inlinks (linking pages), sources (those
     pages, in fetch order); most inlinks first.
 12. Redirect chains. `redirect_chains(limit)`: along `pages.location`, every chain of 2+
     hops from a redirect no other redirect points at, and every loop that no such chain
     enters, once (from its first-fetched member): urls (first to last; a loop's last is the
     URL seen again), statuses (one per URL, None for one never fetched), hops, loop,
     inlinks of the first; loops first, then the longest.
 13. Page texts. `page_texts(column, too_long, limit)` for `title` or `description`: 2xx
     HTML pages without one (missing), groups sharing one (duplicate: text, count, urls;
     the biggest first) and those longer than `too_long` characters (too_long: the longest
     first). `duplicate_bodies(limit)`: groups of 2xx pages with one SHA-256 (sha256, count,
     urls).
 14. What R1's data feeds, each empty ({count 0, items []}) on a database without its
     column or table: `canonicals(limit)` (canonicalised: url, canonical other than the url;
     broken: url, canonical, status of a canonical not answered 2xx), `noindex(limit)` (url,
     robots), `hreflang_without_return(limit)` (url, hreflang, target whose alternates do not
     name url), `sitemap_gaps(limit)` (orphans: entries no other page links to; not_200:
     entries fetched and answered other than 200; not_in_sitemap: 2xx HTML pages no entry
     lists, once any sitemap was read).
 15. Shapes. `depths()`: per depth, pages by status class (`2xx`…`5xx`, `none`, `other`),
     shallowest first; `fetch_timeline()`: the bucket unit and (ISO-8601 prefix, pages) per
     bucket of `fetched_at`, oldest first, at most report_reads.MAX_BUCKETS; `response_times()`:
     pages per bucket of `elapsed_ms` (report_reads.RESPONSE_BUCKETS_MS, the last open).
 16. Slowest. `slowest(limit)`: url, elapsed_ms, bytes, the slowest first; count: the pages
     with a time.

The live view (`crawler serve`: the live page, /live.json, /metrics; storage/live_reads.py).
"Now" is the database's clock (PostgreSQL's; the serving machine's for an SQLite file), and
a run is live as the write contract's rule 12 says: `running`, and its process not gone (on
this machine its pid is alive; on any, it renewed within its lease).
 17. Live runs. `live_runs()` gives the live runs, oldest first: machine, pid, start, last
     heartbeat, pages, pass, and the event loop's lag so far (written with each heartbeat,
     every lease / 3 seconds at most; NULL until the first).
 18. Hosts held now. `held_hosts()` gives the hosts a live run holds (its lease has not
     lapsed), by name: the holding run, delay and its reason, requests, errors, pages.
 19. Pages over time. `timeline(bucket, buckets)` counts the pages fetched in each of the
     last `buckets` spans of `bucket` seconds (1, 10 or 60, on the clock's round numbers)
     up to now while a run is live, else up to the last page's fetch: oldest first, every
     span present (0 when empty).
 20. The whole view. `live()` gives rules 4, 17-19 and the crawl's state in one snapshot:
     `running` (a live run), `finished` (no live run, nothing queued, or the last run ended
     `finished` or `limit`), `stopped` (resumable: the last run was interrupted, failed or
     crashed, with URLs queued), `empty` (no run yet).

Resource handling: a reader is only valid inside `with open_reader(db) as reader:`; streams
too (a stream read after the block fails). Synchronous on purpose: `serve` calls it in a
thread, the CLI straight.
Error handling: driver errors become StoreError in the backend's `translated` (exit 1 for our
reads, 2 for a database that cannot be opened and for the user's SQL); a missing file, a folder
or a database without the crawl's tables is a UsageError (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
CLASS_ORDER = ("1xx", *STATUS_CLASSES, "other", "no response")
URL_STATES = ("done", "failed", "queued", "skipped")
CHANGES = ("new", "changed", "unchanged", "gone")


@dataclass(frozen=True, slots=True)
class Counts:
    """What a crawl holds, counted (rule 4)."""

    pages: int
    status_classes: dict[str, int]  # CLASS_ORDER's, 1xx and other only when present
    url_states: dict[str, int]  # URL_STATES, in that order
    skip_reasons: dict[str, int]  # most frequent first, then by name
    content_types: dict[str | None, int]  # most frequent first
    hosts: int
    bytes: int
    errors: int


@dataclass(frozen=True, slots=True)
class Progress:
    """The crawl-wide figures of a progress line (rule 4)."""

    pages: int  # fetched by every run
    queued: int
    errors: int  # failed requests counted on the hosts
    hosts: int


@dataclass(frozen=True, slots=True)
class Run:
    """One row of `runs` (rule 8)."""

    id: int
    started_at: str
    ended_at: str | None
    outcome: str
    pages: int
    pass_number: int = 1
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Pass:
    """What the page fetches of one pass found (`fetches.change`, rule 9)."""

    number: int
    new: int
    changed: int
    unchanged: int
    gone: int
    no_answer: int


@dataclass(frozen=True, slots=True)
class Host:
    """One host's politeness record and pages (rule 10)."""

    host: str
    robots_status: str | None
    robots_fetched_at: str | None
    delay: float | None
    delay_reason: str | None
    crawl_delay: float | None
    requests: int
    errors: int
    min_gap_ms: float | None
    pages: int


@dataclass(frozen=True, slots=True)
class LiveRun:
    """A run crawling now (rule 17)."""

    id: int
    machine: str | None
    pid: int | None
    started_at: str
    renewed_at: str | None
    pages: int
    pass_number: int
    lag_p99_ms: float | None
    lag_max_ms: float | None


@dataclass(frozen=True, slots=True)
class HeldHost:
    """A host a live run holds now (rule 18)."""

    host: str
    run_id: int
    delay: float | None
    delay_reason: str | None
    requests: int
    errors: int
    pages: int


@dataclass(frozen=True, slots=True)
class Span:
    """Pages fetched from `start` (ISO-8601 UTC), for the timeline's bucket (rule 19)."""

    start: str
    pages: int


CrawlState = Literal["running", "finished", "stopped", "empty"]


@dataclass(frozen=True, slots=True)
class Live:
    """What the live view shows, in one snapshot (rule 20)."""

    now: str  # the database's clock, ISO-8601 UTC
    state: CrawlState
    counts: Counts
    runs: tuple[LiveRun, ...]
    hosts: tuple[HeldHost, ...]
    bucket: int  # seconds a timeline span lasts
    timeline: tuple[Span, ...]


Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Listed:
    """A report list (rules 11-16): the total, and the first items, JSON-ready."""

    count: int
    items: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "items": self.items}


class Reader(Protocol):
    """Read access to one crawl database, in one read-only snapshot (the rules above)."""

    @property
    def name(self) -> str:
        """The database as messages show it (a URL without its password)."""
        ...

    def tables(self) -> set[str]:
        """The tables the database's unqualified names reach."""
        ...

    def columns(self, table: str) -> list[str]:
        """`table`'s columns in order; [] if there is no such table (rule 7)."""
        ...

    def counts(self) -> Counts:
        """Pages, URLs, hosts, bytes and errors, counted (rule 4)."""
        ...

    def progress(self) -> Progress:
        """Pages fetched by every run, URLs queued, errors and hosts (rule 4)."""
        ...

    def queued(self) -> int:
        """How many URLs are queued."""
        ...

    def has_pages(self) -> bool:
        """Whether any page was fetched."""
        ...

    def stored_bodies(self) -> tuple[int, int]:
        """Pages answered with a non-empty body, and how many of those kept it."""
        ...

    def runs(self) -> list[Run]:
        """Every run, oldest first (rule 8)."""
        ...

    def last_fetched_at(self, since: str, before: str | None = None) -> str | None:
        """The latest `fetched_at` at or after `since` (and before `before`), if any."""
        ...

    def passes(self) -> tuple[Pass, ...]:
        """Each pass's fetches by change, in pass order (rule 9)."""
        ...

    def hosts(self) -> list[Host]:
        """Every host seen, most pages first, then by name (rule 10)."""
        ...

    def pages(self, columns: Sequence[str], batch: int = 100) -> Iterator[Row]:
        """`columns` of each page in fetch order, `batch` rows per read (rule 5)."""
        ...

    def search(self, terms: str, limit: int) -> Iterator[Row]:
        """The best `limit` (url, title, snippet) matches of `terms` (rule 6)."""
        ...

    # -- the report's reads (rules 11-16) --------------------------------------------------

    def broken_links(self, limit: int) -> Listed:
        """Linked pages that answered 4xx/5xx or nothing, most inlinks first (rule 11)."""
        ...

    def redirect_chains(self, limit: int) -> Listed:
        """Redirect chains of 2+ hops and loops (rule 12)."""
        ...

    def page_texts(self, column: str, too_long: int, limit: int) -> dict[str, Listed]:
        """Missing, duplicate and too long titles or descriptions (rule 13)."""
        ...

    def duplicate_bodies(self, limit: int) -> Listed:
        """Groups of 2xx pages with the same body (rule 13)."""
        ...

    def canonicals(self, limit: int) -> dict[str, Listed]:
        """Canonicalised pages and broken canonicals (rule 14)."""
        ...

    def noindex(self, limit: int) -> Listed:
        """Pages that said noindex (rule 14)."""
        ...

    def hreflang_without_return(self, limit: int) -> Listed:
        """hreflang alternates whose target does not name the page back (rule 14)."""
        ...

    def sitemap_gaps(self, limit: int) -> dict[str, Listed]:
        """Orphans, non-200 entries and pages no sitemap lists (rule 14)."""
        ...

    def depths(self) -> list[dict[str, int]]:
        """Pages per depth and status class (rule 15)."""
        ...

    def fetch_timeline(self) -> tuple[str, list[tuple[str, int]]]:
        """Pages fetched per time bucket (rule 15)."""
        ...

    def response_times(self) -> list[tuple[int, int]]:
        """Pages per response-time bucket (rule 15)."""
        ...

    def slowest(self, limit: int) -> Listed:
        """The slowest pages (rule 16)."""
        ...

    # -- the user's SQL ------------------------------------------------------------------------

    def user_sql(self, sql: str) -> tuple[list[str], Iterator[Row]] | None:
        """The user's `sql`, run read-only (rule 1): its column names and its rows, read as
        they are consumed; None for a statement without result columns. StoreError (exit 2)
        if it fails or would write."""
        ...

    # -- the live view (rules 17-20) --

    def live_runs(self) -> list[LiveRun]:
        """The runs crawling now, oldest first (rule 17)."""
        ...

    def held_hosts(self) -> list[HeldHost]:
        """The hosts live runs hold now, by name (rule 18)."""
        ...

    def timeline(self, bucket: int, buckets: int) -> list[Span]:
        """Pages fetched per `bucket` seconds, the last `buckets` spans (rule 19)."""
        ...

    def live(self, bucket: int = 10, buckets: int = 60) -> Live:
        """Everything the live view shows, in one snapshot (rule 20)."""
        ...
