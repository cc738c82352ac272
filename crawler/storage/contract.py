"""The storage contract: what the engine relies on, whatever the backend.

Two backends keep it: SQLite (`storage.path`, the embedded default, one crawling process at a
time) and PostgreSQL (`storage.url`, any number of processes on any number of machines).
tests/test_storage_contract.py checks every rule below against both.

The data
  1. Depth only goes down. A URL found again at a smaller depth takes it (and the new
     `discovered_from`); found again no nearer, it keeps what it has.
  2. Depth skips come back. A URL skipped with reason `depth` that is found again at a depth
     within `max_depth` is queued again.
  3. A fetched page follows its URL. When the depth of a URL whose page was fetched drops, the
     page's depth drops with it, and the URLs its followed links (nofollow = 0) lead to are
     found again at that depth + 1, so rules 1 and 2 apply to them, and on, recursively.
  4. The last outcome of a URL wins: the state and reason saved last are the URL's, within one
     batch as across batches.
  5. A link is nofollow only if every sighting of it was (nofollow is the minimum).
  6. All or nothing: a batch (pages, links, URLs found, URL states, robots, hosts) commits in
     one transaction or not at all.
  7. A URL taken for fetching stays `queued` until its outcome commits: `next_queued` leaves
     out the ids the caller says it holds.

The owners (the frontier's hosts, shared by processes)
  8. One owner per host. `claim_hosts` hands a host that has queued URLs to one run at a
     time, for `lease` seconds from the claim or from the last `renew_hosts`; a host whose
     lease lapsed (its run died or stalled) may be claimed by another run. A claim never
     waits for another claimer (rows being claimed elsewhere are skipped).
  9. The check is in the write. `save` commits a URL's outcome only if the saving run holds
     the URL's host at commit time, in the same transaction; outcomes of hosts it lost are
     left out (their URLs stay queued for the new owner) and returned.
 10. Pacing outlives its owner. A host's pacing state (Retry-After, back-off, Crawl-delay, the
     earliest next start) is saved with the host's record and handed to the next claimer
     (`HostRecord`); a claimer of a host that had another owner waits at least one delay:
     `claim_hosts` puts `next_start_at` at least the saved delay after the claim when the
     host is taken from a run that still held it (one that died or stalled).
 11. Budgets are global. `reserve_pages` grants pages of `max_pages` so that the runs of one
     crawl together fetch at most `max_pages`, counting the pages of earlier runs and the
     pages live runs hold reserved; a run on this machine holds them while its process lives,
     even stalled past its lease (it may spend them when it wakes).
 12. Runs know each other. `start_run` records a run with its machine and process id and
     marks as crashed only runs whose process is gone (same machine: the pid is dead; any
     machine: no renewal for `lease` seconds), and ends the database sessions of runs it
     finds gone, as `live_runs` does (a process stopped mid-statement keeps its locks
     otherwise). `end_run` releases what the run held.

The sitemaps
 13. Sitemaps are URLs. Whether a URL is a sitemap document, and its `sitemap` level (how deep
     in sitemap indexes), come with its depth (rule 1: the nearest sighting, the first of
     equals), and `next_queued` hands them back; a URL
     found with a `lastmod` (a sitemap's entry) takes that `lastmod`, however it was found
     first. The sitemap records of a batch's outcomes, and the URLs its robots records
     name, commit with it (rule 6).

The passes
 14. A recrawl is a pass. Every run belongs to a pass (1: the first crawl). A run started with
     `new_pass` after the crawl's earlier runs begins the next pass, queueing again every URL
     fetched before, only when the current pass is complete; otherwise it works on the
     current pass: it joins it when a live run works on it, and continues it when it is
     unfinished. The current pass is unfinished when URLs are still queued and none of its
     runs ended 'finished' or 'limit' (all were interrupted, failed or crashed: killed,
     stopped); a continued pass keeps its queue and its `fetches` rows, so that it ends with
     every URL fetched once in it. `ResumeState.pass_start` says which happened. Each saved
     page outcome adds a `fetches` row (url, pass, status, validators, sha256, change);
     `change` is `new` for a URL with no page stored before, `unchanged` for a 304 or the same
     status and hash, `gone` for 404/410 after a 2xx, `changed` otherwise, NULL for no answer.
     `pages` keeps each URL's latest version: a 304 or a failed request leaves it as it was.
     The page budgets (rules 11, `pages` of claims) count the current pass's fetches.

Search
 15. The index follows the pages. A saved page's `title` and `text` are searchable at once,
     in the same transaction, and a newer version replaces the older in the index (SQLite:
     `pages_fts`, written by the save itself, and by triggers for other tools' writes;
     PostgreSQL: the `pages_search` expression index). Migrating an older database builds its
     index. (tests/test_take_anywhere.py, on both backends, through `crawler search`.)

The report's data
 16. What the report reads is kept with the page, in the same transaction (rule 6). A saved
     page's `canonical` (absolute, normalized like links; NULL: none), `description` (the
     meta description) and `h1` (the first h1's text), whitespace collapsed, NULL for none and
     for pages not parsed (not 2xx HTML), and `robots` (the meta robots and our token's
     directives, then the `X-Robots-Tag` ones that apply to us, lower-cased, each once,
     joined with ", "; NULL: none) are the latest version's, as every page column is (rule 14).
     A link's `text` is its anchor text ("" for none): a later sighting's non-empty text
     replaces it, an empty one keeps it. `alternates` holds each distinct (src_url, hreflang,
     dst_url) of a page's `<link rel="alternate" hreflang>`; `sitemap_entries` each distinct
     (sitemap, url) of the pages a sitemap read lists in scope, whether or not the URL was
     found first elsewhere (not an index's child sitemaps). Both only grow, as `links` does.
     A database from an older version gets these columns NULL and these tables empty.

Fields
 17. A saved page's `fields` is its `[fields]` values as a JSON object (text, one key per
     field, in the config's order), the latest version's as every page column is (rule 14),
     stored as given (PostgreSQL's column is text too, so both backends give back the same
     string); NULL when the crawl has no `[fields]` or the page was not parsed (not 2xx HTML).
     A database from an older version gets the column NULL.

Errors: each backend translates its driver's exceptions into StoreError at its own boundary
(`sqlite.translated`, `postgres.translated`); nothing above storage sees a driver exception.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..records import Discovered, HostRecord, Outcome, QueuedURL, RobotsRecord


@dataclass(slots=True)
class Batch:
    """What the writer commits in one transaction."""

    outcomes: list[Outcome] = field(default_factory=list)
    robots: list[RobotsRecord] = field(default_factory=list)
    hosts: list[HostRecord] = field(default_factory=list)


# What a starting run did with the passes (rule 14): began a pass (the crawl's first, or a
# recrawl's next), joined the pass a live run works on, or continued an unfinished one.
PassStart = Literal["started", "joined", "continued"]


@dataclass(frozen=True, slots=True)
class ResumeState:
    """What a starting run learns from the runs before it and beside it."""

    run_id: int
    resumed: bool  # earlier runs wrote this crawl
    pages: int  # pages fetched so far by every run
    pages_by_host: dict[str, int]
    robots: list[RobotsRecord]
    started_at: float  # POSIX seconds the crawl's current session began (max_duration)
    pass_number: int = 1  # the pass the run works on (1: the first crawl; then recrawls)
    pass_start: PassStart = "started"


class Storage(Protocol):
    """The engine's view of storage. Only the writer task calls `save`."""

    async def start_run(
        self,
        seeds: Sequence[Discovered],
        max_depth: int,
        lease: float,
        new_pass: bool = False,
    ) -> ResumeState:
        """Record a new run (rule 12), add the seeds. `lease`: seconds the run holds what it
        claims without renewing it (storage.lease). `new_pass`: start a new pass (rule 14)
        unless a live run works on the current one (then join it) or it is unfinished (then
        continue it)."""
        ...

    async def end_run(self, run_id: int, outcome: str, lag: tuple[float, float] | None) -> None:
        """Record how the run ended (finished, limit, interrupted, failed) and the event loop's
        lag (p99, max, seconds) if measured; release its hosts and unused pages."""
        ...

    async def claim_hosts(self, limit: int) -> list[HostRecord]:
        """Claim up to `limit` hosts with queued URLs and no live owner, soonest ready first
        (rule 8); their saved state comes back (rule 10)."""
        ...

    async def renew_hosts(
        self, hosts: Collection[str], lag: tuple[float, float] | None = None
    ) -> set[str]:
        """Extend the run's lease on these hosts; returns those it still held. Also the run's
        heartbeat (rule 12): call it every lease / 3 or so, with no hosts if it holds none.
        `lag`: the event loop's lag so far (p99, max, seconds), written into the run's row
        (`lag_p99_ms`, `lag_max_ms`) so that `crawler serve` shows it while the run runs."""
        ...

    async def release_hosts(self, hosts: Sequence[HostRecord]) -> None:
        """Give hosts up, saving their state (a host with no queued URL left, or a share
        handed back so that a newly joined run gets hosts too)."""
        ...

    async def live_runs(self) -> int:
        """How many runs are crawling now, this one included."""
        ...

    async def hosts_with_work(self) -> int:
        """How many hosts have queued URLs, held or not (for each run's fair share)."""
        ...

    async def robots_of(self, hosts: Collection[str]) -> list[RobotsRecord]:
        """The robots.txt answers saved for these hosts' origins, by whichever run fetched
        them, so that a run claiming a host need not fetch its robots.txt again."""
        ...

    async def next_queued(self, host: str, limit: int, taken: Collection[int]) -> list[QueuedURL]:
        """Up to `limit` queued URLs of `host`, shallowest first, then in discovery order,
        leaving out ids in `taken` (rule 7)."""
        ...

    async def count_queued(self) -> int:
        """How many URLs are queued (for progress; may lag the writer a little)."""
        ...

    async def reserve_pages(self, wanted: int, max_pages: int) -> int:
        """Grant up to `wanted` pages of the crawl's `max_pages` (rule 11); 0 when spent."""
        ...

    async def save(self, batch: Batch) -> list[Outcome]:
        """Commit a batch (rules 1-6, 9); returns the outcomes left out because their host is
        no longer this run's."""
        ...
