"""A site for logged-in crawls: a host behind basic auth, one behind a form login whose
session expires after a few pages, one that needs a header, and two hosts outside `auth.hosts`
(one a look-alike) that auth hosts redirect to; each request's credentials are in the log.

`auth_site()` returns the app and the `Secrets` the crawl's config and environment hold; the
session ids the login handed out are added to them as it runs, with the User-Agent of the
login that got each and when (`Secrets.issued`). `pg_dump` gives a PostgreSQL crawl's dump, to
search for the secrets.
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import time
from dataclasses import dataclass, field

from aiohttp import web
from kit import HostPlan, Page, Request, html, links, make_site
from kit.site import Handler
from pgserver import SUPERUSER, PgServer

USER = "auditor"
ROBOTS = Page("User-agent: *\nAllow: /\n", content_type="text/plain")
SESSION_PAGES = 3  # a session answers this many pages, then it has expired
MEMBER_PAGES = 6  # /m/1 ... /m/6 on the login host (and its /)


@dataclass(frozen=True)
class Issued:
    """A session the login handed out: to which User-Agent, at which time.monotonic()."""

    user_agent: str
    at: float


@dataclass
class Secrets:
    password: str = "pw-basic-s3cret-41"
    api_key: str = "key-h3ader-s3cret-42"
    login_password: str = "pw-login-s3cret-43"
    sessions: list[str] = field(default_factory=list)  # ids the login handed out
    issued: dict[str, Issued] = field(default_factory=dict)  # the same, with who and when

    @property
    def basic(self) -> str:
        return base64.b64encode(f"{USER}:{self.password}".encode()).decode()

    def all(self) -> list[str]:
        return [self.password, self.api_key, self.login_password, self.basic, *self.sessions]

    def environment(self) -> dict[str, str]:
        """What the crawl's environment holds ("env:NAME" in its config)."""
        return {
            "A23_PASSWORD": self.password,
            "A23_API_KEY": self.api_key,
            "A23_LOGIN_PASSWORD": self.login_password,
        }


def auth_section(port: int) -> dict[str, object]:
    """The `[auth]` section for this site."""
    return {
        "hosts": [".site.test"],
        "basic": {"user": USER, "password": "env:A23_PASSWORD"},
        "headers": {"X-Api-Key": "env:A23_API_KEY"},
        "login": {
            "url": f"http://login.site.test:{port}/login",
            "fields": {"user": USER, "password": "env:A23_LOGIN_PASSWORD"},
        },
    }


def credential_of(request: Request) -> str:
    """Which credentials a request carried, "" for none: basic, header, cookie."""
    carried = []
    if request.headers.get("Authorization", "").startswith("Basic "):
        carried.append("basic")
    if "X-Api-Key" in request.headers:
        carried.append("header")
    if "Cookie" in request.headers:
        carried.append("cookie")
    return "+".join(carried)


def session_of(request: Request) -> str:
    """The session id a request's Cookie header carried, "" for none."""
    for pair in request.headers.get("Cookie", "").split(";"):
        name, _, value = pair.strip().partition("=")
        if name == "sid":
            return value
    return ""


def auth_site(
    secrets: Secrets, member_pages: int = MEMBER_PAGES, *, gated: bool = False
) -> web.Application:
    """The app; hosts basic.site.test, login.site.test (with `member_pages` pages /m/{n}, and
    with `gated` a linked /gated that redirects to the login whatever the session),
    header.site.test, other.test and evil-site.test."""
    remaining: dict[str, int] = {}  # session id -> pages it may still see
    numbers = itertools.count(1)

    async def login(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return html("<form method=post action=/login></form>")
        form = await request.post()
        if form.get("user") != USER or form.get("password") != secrets.login_password:
            return web.Response(status=403, text="bad login")
        session = f"sess-{next(numbers)}-9f3c2a"
        secrets.sessions.append(session)
        secrets.issued[session] = Issued(request.headers.get("User-Agent", ""), time.monotonic())
        remaining[session] = SESSION_PAGES
        response = web.Response(status=302, headers={"Location": "/"})
        response.set_cookie("sid", session, httponly=True)
        return response

    async def member_page(request: web.Request) -> web.StreamResponse:
        session = request.cookies.get("sid", "")
        if remaining.get(session, 0) <= 0:
            return web.Response(status=302, headers={"Location": "/login"})  # expired
        remaining[session] -= 1
        found = [f"/m/{n}" for n in range(1, member_pages + 1)] + ["/logout", "/m/1/delete"]
        found += ["/gated"] if gated else []
        page = html(f"<title>{request.path}</title>" + links(found))
        page.set_cookie("seen", session)  # a cookie an auth host sets: a credential too
        return page

    async def to_login(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/login"})

    def needs(header: str, value: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            if request.headers.get(header) != value:
                return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
            found = ["/b/1", "/b/2", "/admin/users", "/go-other", "/go-evil"]
            return html(f"<title>{request.path}</title>" + links(found))

        return handler

    basic = needs("Authorization", "Basic " + secrets.basic)
    return make_site(
        {
            "basic.site.test": HostPlan(
                pages=0,
                routes={
                    "/go-other": away("other.test"),
                    "/go-evil": away("evil-site.test"),
                    "/robots.txt": ROBOTS,
                    "/*": basic,
                },
            ),
            "header.site.test": HostPlan(
                pages=0,
                routes={"/robots.txt": ROBOTS, "/*": needs("X-Api-Key", secrets.api_key)},
            ),
            "login.site.test": HostPlan(
                pages=0,
                routes={
                    "/robots.txt": ROBOTS,
                    "/login": login,
                    "/gated": to_login,
                    "/*": member_page,
                },
            ),
            "other.test": HostPlan(pages=0, routes={"/*": html_page}),
            "evil-site.test": HostPlan(pages=0, routes={"/*": html_page}),
        }
    )


def away(host: str) -> Handler:
    """A 302 to `host`'s /landing on the port the request came to."""

    async def handler(request: web.Request) -> web.StreamResponse:
        port = request.host.rsplit(":", 1)[-1]
        return web.Response(status=302, headers={"Location": f"http://{host}:{port}/landing"})

    return handler


async def html_page(request: web.Request) -> web.StreamResponse:
    return html(f"<title>{request.path}</title>")


HOSTS = ("basic.site.test", "login.site.test", "header.site.test", "other.test", "evil-site.test")


def request_table(requests: list[Request]) -> list[tuple[str, int, int, int]]:
    """Per host: requests, with a credential, without one."""
    table = []
    for host in HOSTS:
        hits = [r for r in requests if r.host == host]
        carrying = sum(1 for r in hits if credential_of(r))
        table.append((host, len(hits), carrying, len(hits) - carrying))
    return table


def pg_dump(pg_server: PgServer, url: str) -> str:
    """The dump of the database at `url`, made by pg_dump as the postgres user."""
    dbname = url.rsplit("/", 1)[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [str(pg_server.bindir / "pg_dump"), f"--host={pg_server.socket_dir}",
         f"--port={pg_server.port}", f"--username={SUPERUSER}", dbname],
        capture_output=True, text=True, check=True, env=env, timeout=120,
        cwd=pg_server.socket_dir,
    ).stdout  # fmt: skip
