"""The form login's state: whether the login host's next turn goes to the login, and whether
an answer says the session expired.

The login is one POST sent in a turn of its host's pacing slot, like any request there: the
first turn after robots.txt (so before any page of that host), and again after a page of that
host answered 401 or redirected to the login URL with the latest session. That page is then
fetched again (a page whose answers called for LOGINS_PER_PAGE logins keeps its next such
answer); a page whose request carried an older session is fetched again too, with no new
login (see `LoginGate.expired`).
Each run starts logged out, so a resumed crawl, and each process of a PostgreSQL crawl that
holds the login host, logs in again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from yarl import URL

from ..errors import CrawlerError
from ..fetch import Fetcher, Response
from ..frontier.hosts import PageTask
from ..frontier.scheduler import Frontier
from ..robots.origins import RobotsRules
from .credentials import Credentials
from .hosts import url_host

logger = logging.getLogger(__name__)

LOGINS_PER_PAGE = 3  # logins one page's expired answers may call for


class LoginError(CrawlerError):
    """The login failed: the crawl cannot go on logged in (exit 2)."""

    exit_code = 2


class LoginGate:
    """When the login is due, and what an answer means for it."""

    def __init__(self, credentials: Credentials, retries: int = 0) -> None:
        auth = credentials.auth
        self.retries = retries
        self._failed = 0  # attempts in a row that got no usable answer
        self.url = auth.login.url if auth is not None else ""
        self.fields = dict(auth.login.fields) if auth is not None else {}
        self.host = url_host(self.url) if self.url else ""
        self._credentials = credentials
        self._due = bool(self.url)
        self._running = asyncio.Event()
        self._running.set()  # set: no login is under way
        self._again: Counter[str] = Counter()  # the logins each page's answers called for
        self.logins = 0

    def due(self, host: str) -> bool:
        """True when this turn of `host` is to be the login (and it is taken: call `done`)."""
        if not self._due or host != self.host:
            return False
        # A login under way holds its host's pages back; one whose attempt failed stays under
        # way until a later turn (after the host's back-off) sends it again: that turn may.
        if not self._running.is_set() and not self._failed:
            return False
        self._due = False
        self._running.clear()
        return True

    async def settled(self, host: str) -> None:
        """Wait while a login of `host` is under way (another worker's turn sent it)."""
        if host == self.host:
            await self._running.wait()

    def again(self, response: Response) -> bool:
        """True when the login's `response` is a fault retried like a page's (no answer, 429,
        some 5xx) and attempts remain: the login is due again, in a later turn."""
        if not response.retryable or self._failed >= self.retries:
            return False
        self._failed += 1
        self._due = True
        return True

    def done(self, response: Response, kept_cookie: bool) -> None:
        """The login's answer: 2xx or 3xx setting a cookie, or LoginError."""
        self._running.set()
        self.logins += 1
        self._failed = 0
        if response.status is None:
            raise LoginError(f"login at {self.url!r} failed: {response.error}")
        if not 200 <= response.status < 400:
            raise LoginError(f"login at {self.url!r} failed: it answered {response.status}")
        if not kept_cookie:
            raise LoginError(f"login at {self.url!r} failed: it answered {response.status} "
                             "but set no cookie")  # fmt: skip

    def done_without_request(self) -> None:
        """The login could not be sent at all (robots.txt forbids it)."""
        self._running.set()

    def not_sent(self) -> None:
        """The login's turn was called off (its host's lease ran short): due again."""
        self._due = True
        self._running.set()

    def expired(self, url: str, response: Response, session: int) -> bool:
        """True when `response` for the page `url` says the session expired (401, or a
        redirect to the login URL) and the page is to be fetched again after a new login.

        `session` is `logins` when its request went out. Only the latest session's expiry
        calls for a new login. An older session's (the other requests that carried it come
        back expired too, while the new login is under way or after it) calls for none, and
        its page is fetched again with the new session. A page that called for
        LOGINS_PER_PAGE logins keeps its next such answer: the login does not give what it
        asks for. (Not one: with several requests at once, the session a login brings can
        run out before the page's turn comes again.)"""
        if not self.url or url_host(url) != self.host:
            return False
        if response.status != 401 and not _to_login(url, response, self.url):
            return False
        if session != self.logins or not self._running.is_set():
            return True  # an older session's answer: a newer login is done or under way
        if self._again[url] >= LOGINS_PER_PAGE:
            return False
        self._again[url] += 1
        self._credentials.forget_cookies(self.host)
        self._due = True
        return True


def _to_login(url: str, response: Response, login_url: str) -> bool:
    """True when `response` redirects to the login URL (its query aside)."""
    if response.status is None or not 300 <= response.status < 400 or not response.location:
        return False
    try:
        target, login = URL(url).join(URL(response.location)), URL(login_url)
    except ValueError:
        return False
    return (target.scheme, target.raw_host, target.port, target.raw_path) == (
        login.scheme, login.raw_host, login.port, login.raw_path,
    )  # fmt: skip


async def take_login_turn(
    gate: LoginGate,
    task: PageTask,
    frontier: Frontier,
    fetcher: Fetcher,
    still_held: Callable[[], bool],
) -> bool:
    """If the login is due on the task's host, send it in this turn (robots.txt asked first,
    the page given back for a later turn) and return True; else wait for a login under way
    and return False: the page goes out now."""
    host = task.url.host
    if not gate.due(host):
        await gate.settled(host)
        return False
    rules = frontier.robots_rules(task, gate.url)
    if rules is None:  # the login URL's origin waits for its robots.txt: the task went back
        gate.not_sent()
        return True
    if not rules.allows(gate.url):
        gate.done_without_request()
        raise LoginError(f"login at {gate.url!r}: {_refusal(rules)}")
    response, kept_cookie = await fetcher.post_form(gate.url, gate.fields, before_send=still_held)
    if not response.sent:  # the host's lease ran short: the task was given back
        gate.not_sent()
        return True
    if gate.again(response):  # the page goes back; the answer counts for back-off
        frontier.page_again(task, response)
        failure = response.error or f"it answered {response.status}"
        logger.warning("login at %s failed (%s): trying again", gate.url, failure)
        return True
    gate.done(response, kept_cookie)  # first: a failed login gives no page back to go out
    frontier.page_again(task, response)
    logger.info("logged in at %s (answered %s)", gate.url, response.status)
    return True


def _refusal(rules: RobotsRules) -> str:
    """Why robots.txt keeps the login from going out: its rules, or no robots.txt to be had
    (RFC 9309: an unreachable robots.txt disallows everything; most often the origin itself
    does not answer)."""
    if rules.status == "unreachable":
        return "its origin's robots.txt could not be fetched, which disallows everything"
    return "robots.txt disallows it"
