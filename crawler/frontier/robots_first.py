"""robots.txt first: before the first request to an origin, and after its rules expire, the
host's next task is the origin's robots.txt (`robots.RobotsLife` follows each file through its
life); a URL whose rules are not known yet waits for them, and the answer's Crawl-delay paces
the host. The answer is recorded with the sitemaps its `Sitemap:` lines name.
"""

from __future__ import annotations

from collections.abc import Callable

from yarl import URL

from ..config import Config
from ..fetch import Response
from ..records import Discovered, QueuedURL, RobotsRecord, utc_at
from ..robots.origins import RobotsFetch, RobotsLife, RobotsParser, RobotsRules
from ..urls import host_key, normalize, origin
from .clock import Clock
from .hosts import Host, RobotsTask
from .politeness import HostSlot
from .skips import Scope

ALLOW_ALL = RobotsRules(status="allow-all")
ORIGINS_CACHED = 10_000  # origins remembered by what precedes the path; then forgotten at once


class RobotsFirst:
    """Which origin's rules a host's URL waits for, the robots.txt tasks that fetch them, and
    what each answer puts in force. `scope` says which sitemaps an answer names are ours;
    `host` gives the Host of a name (held or not), `ready` schedules a host that may have
    work, `changed` notes a host whose state is to be saved."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        parse: RobotsParser,
        scope: Scope,
        *,
        host: Callable[[str], Host],
        ready: Callable[[Host], None],
        changed: Callable[[str], None],
    ) -> None:
        politeness = config.politeness
        self._config = config
        self._clock = clock
        retries = config.fetch.retries
        self._life = RobotsLife(politeness.robots_token, politeness.robots_ttl, retries, parse)
        self._scope = scope
        self._host = host
        self._ready = ready
        self._changed = changed
        self._started = clock.now()
        self._origins: dict[str, str] = {}  # what precedes a URL's path: its origin

    def rules_for(self, host: Host, queued: QueuedURL) -> RobotsRules | None:
        """The robots rules for the URL's origin, or None after asking for its robots.txt."""
        if not self._config.politeness.obey_robots:
            return ALLOW_ALL
        key = self._origin_of(queued.url)
        rules = self._life.rules(key, self._clock.now())
        if rules is not None:
            return rules
        fetch = self._life.ask(key, host.name)
        if fetch is not None:
            self._add_task(fetch)
        host.wait_for_robots()
        return None

    def _origin_of(self, url: str) -> str:
        """The URL's origin, cached by what precedes its path: parsing every page's URL again
        took ~2% of the crawl's main thread."""
        head = url[: url.find("/", url.find("//") + 2) % (len(url) + 1)]  # -1: no path
        found = self._origins.get(head)
        if found is None:
            if len(self._origins) >= ORIGINS_CACHED:
                self._origins.clear()
            found = self._origins[head] = origin(URL(head))
        return found

    def forget(self, name: str) -> None:
        """The host is no longer this run's: it waits for no origin's rules any more."""
        self._life.forget(name)

    async def restore(self, saved: list[RobotsRecord]) -> None:
        """Answers fetched before (an earlier run, another process) stay in force until
        robots_ttl after their fetch; their Crawl-delay too."""
        now, wall = self._clock.now(), self._clock.wall()
        for record, rules in await self._life.restore(saved, now, wall):
            self._apply_crawl_delay(self._host(record.host).slot, rules, self._started)

    async def answered(
        self, task: RobotsTask, response: Response, *, may_retry: bool
    ) -> RobotsRecord | None:
        """A robots.txt request ended: follow its redirect or retry it (None), or put its rules
        in force and return the record of the answer."""
        now = self._clock.now()
        step = await self._life.answered(task.fetch, response, now, may_retry=may_retry)
        if isinstance(step, RobotsFetch):
            self._add_task(step)
            return None
        return self._settle(task.fetch.origin, step, response)

    def _add_task(self, fetch: RobotsFetch) -> None:
        target = self._host(host_key(URL(fetch.url)))
        if not target.held:
            # A redirect to a host this run does not hold: the hop goes out on the origin's
            # host and its pacing (a host named only by a robots redirect has no URLs to claim).
            target = self._host(host_key(URL(fetch.origin)))
        target.add_robots_task(RobotsTask(fetch, target.slot))
        self._ready(target)

    def _settle(self, key: str, rules: RobotsRules, response: Response) -> RobotsRecord:
        name = host_key(URL(key))
        slot = self._host(name).slot
        fetched_at = utc_at(self._clock.wall())
        slot.robots_answered(f"{rules.status} ({response.status or response.error})", fetched_at)
        self._changed(name)
        self._apply_crawl_delay(slot, rules, response.answered_at)
        for waiting in self._life.settle(key, rules):
            host = self._host(waiting)
            host.wait_for_robots(False)
            self._ready(host)
        body = response.body if rules.status == "ok" else None
        named = named_sitemaps(key, rules, self._scope, self._config.crawl.robots_sitemaps)
        return RobotsRecord(key, name, response.status, body, response.error, fetched_at, named)

    def _apply_crawl_delay(self, slot: HostSlot, rules: RobotsRules, answered_at: float) -> None:
        # Above max_crawl_delay the host's URLs are skipped (see SkipRules.at_dequeue), not slowed.
        delay = rules.crawl_delay
        if delay is not None and delay <= self._config.politeness.max_crawl_delay:
            slot.apply_crawl_delay(delay, answered_at)


def named_sitemaps(
    key: str, rules: RobotsRules, scope: Scope, wanted: bool
) -> tuple[Discovered, ...]:
    """The sitemaps the robots.txt of origin `key` names (`Sitemap:` lines) on allowed
    domains, if `wanted` (crawl.robots_sitemaps)."""
    if not wanted:
        return ()
    found = []
    for text in rules.sitemaps:
        url = normalize(text)
        if url is not None and scope.allows_host(host := host_key(url)):
            source = f"{key}/robots.txt"
            found.append(Discovered(str(url), host, 0, "queued", None, source, sitemap=0))
    return tuple(found)
