"""[auth]: credentials go to auth.hosts only, are written nowhere, the form login runs in its
host's turns (again when the session expires), and excluded URLs are never requested.

The crawls are real `crawler crawl` processes against tests/auth_site.py on loopback; the
outputs searched for the secrets are the SQLite file, a PostgreSQL dump, a JSONL and a WARC
export, and the crawl's stderr.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from auth_site import (
    HOSTS,
    SESSION_PAGES,
    USER,
    Secrets,
    auth_section,
    auth_site,
    credential_of,
    pg_dump,
    request_table,
    session_of,
)
from backends import Backend
from kit import SITE, run_cli_async, write_config
from pgserver import PgServer, free_port

from crawler.auth.credentials import Credentials
from crawler.auth.login import LOGINS_PER_PAGE
from crawler.config import Config


def _config(
    tmp_path: Path,
    port: int,
    backend: Backend,
    *,
    auth: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Path:
    """The auth site's config: `auth` keys over auth_section's, `sections` over the kit's."""
    seeds = [
        f"http://{host}:{port}/"
        for host in ("basic.site.test", "header.site.test", "login.site.test")
    ]
    return write_config(
        tmp_path / "config.toml",
        seeds,
        hosts=HOSTS,
        **backend.where,
        crawl={"allowed_domains": ["site.test", "other.test", "evil-site.test"], "concurrency": 4},
        auth={**auth_section(port), **(auth or {})},
        **sections,
    )


def _text_of(path: Path) -> str:
    """A file's bytes as text, a gzipped one (WARC) decompressed."""
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".warc" else data).decode("latin-1")


def _database_files(folder: Path) -> dict[str, str]:
    """The SQLite database's files (the WAL too, if left) as text."""
    return {path.name: _text_of(path) for path in folder.glob("crawl.db*")}


async def test_a_logged_in_crawl_keeps_credentials_to_their_hosts_and_writes_none(
    aiohttp_server: Any,
    backend: Backend,
    tmp_path: Path,
    secrets: Secrets,
    request: pytest.FixtureRequest,
) -> None:
    server = await aiohttp_server(auth_site(secrets))
    log = server.app[SITE].log
    config = _config(tmp_path, server.port, backend)

    ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err

    # Every page is fetched, logged in: nothing answered 401 or 403 in the end.
    pages = dict(await backend.rows("SELECT url, status FROM pages"))
    port = server.port
    for n in range(1, 7):
        assert pages[f"http://login.site.test:{port}/m/{n}"] == 200
    for host in ("basic.site.test", "header.site.test"):
        assert pages[f"http://{host}:{port}/b/2"] == 200
    assert pages[f"http://other.test:{port}/landing"] == 200
    assert pages[f"http://evil-site.test:{port}/landing"] == 200

    # Credentials go to auth.hosts only: the look-alike and the other host got none, though
    # auth hosts redirected to them.
    for request_ in log:
        carried = credential_of(request_)
        if request_.host in ("other.test", "evil-site.test"):
            assert carried == "", request_
        else:
            assert {"basic", "header"} <= set(carried.split("+")), request_
    # robots.txt of auth hosts is asked with them.
    robots = [r for r in log if r.path == "/robots.txt" and r.host.endswith(".site.test")]
    assert len(robots) == 3
    assert all(credential_of(r) for r in robots)

    # Only GET and HEAD, but the logins; excluded URLs never requested, recorded as skipped.
    assert {(r.method, r.path) for r in log if r.method not in ("GET", "HEAD")} == {
        ("POST", "/login")
    }
    assert not [r for r in log if "logout" in r.path or "delete" in r.path or "admin" in r.path]
    skipped = await backend.rows("SELECT url FROM urls WHERE reason = 'auth-exclude' ORDER BY url")
    assert [u for (u,) in skipped] == [
        f"http://basic.site.test:{port}/admin/users",
        f"http://header.site.test:{port}/admin/users",
        f"http://login.site.test:{port}/logout",
        f"http://login.site.test:{port}/m/1/delete",
    ]

    # The login: after robots.txt, before any page of its host; again when the session
    # expired (a page redirected to /login), and that page fetched again after it.
    login_host = [(r.method, r.path, r.status) for r in log.hits("login.site.test")]
    assert login_host[:2] == [("GET", "/robots.txt", 200), ("POST", "/login", 302)]
    logins = [i for i, (method, _, _) in enumerate(login_host) if method == "POST"]
    member = [r for r in login_host if r[0] == "GET" and r[1] != "/robots.txt"]
    assert len(logins) == len(secrets.sessions) >= 3  # 7 pages at most 3 a session
    for before in logins[1:]:
        _, path, status = login_host[before - 1]
        assert status == 302, login_host  # the expired session's answer
        assert login_host[before + 1] == ("GET", path, 200), login_host  # that page again
    assert sum(1 for r in member if r[2] == 200) == 7
    assert SESSION_PAGES == 3
    # The session cookie goes back to its host only.
    assert all("Cookie" not in r.headers for r in log if r.host != "login.site.test")

    # The secrets are nowhere: database, exports, the crawl's output.
    outputs = {"stderr": ran.err + ran.out}
    for kind in ("jsonl", "warc"):
        target = tmp_path / f"export.{kind}"
        exported = await run_cli_async(
            "export", backend.location, "--format", kind, "-o", str(target)
        )
        assert exported.code == 0, exported.err
        outputs[kind] = _text_of(target)
    assert "[redacted]" in outputs["warc"]
    if backend.kind == "sqlite":
        outputs.update(_database_files(tmp_path))
    else:
        pg_server: PgServer = request.getfixturevalue("pg_server")
        outputs["pg_dump"] = pg_dump(pg_server, backend.location)
        assert f"login.site.test:{port}/m/6" in outputs["pg_dump"]  # the dump has the crawl
    heads = await backend.rows("SELECT request_head, response_head FROM pages")
    assert any("Authorization: [redacted]" in (req or "") for req, _ in heads)
    assert any("Set-Cookie: [redacted]" in (resp or "") for _, resp in heads)
    for where, text in outputs.items():
        for secret in secrets.all():
            assert secret not in text, (where, secret)

    table = request_table(list(log))
    print("\nhost                requests  with credential  without")
    for host, requests, carrying, without in table:
        print(f"{host:<20}{requests:>8}{carrying:>17}{without:>9}")
    assert [row[0] for row in table if row[3]] == ["other.test", "evil-site.test"]


async def test_a_failed_login_is_one_line_and_exit_2(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: Secrets
) -> None:
    monkeypatch.setenv("A23_LOGIN_PASSWORD", "wrong-password-77")
    server = await aiohttp_server(auth_site(secrets))
    config = _config(tmp_path, server.port, Backend("sqlite", "crawl.db"))

    ran = await run_cli_async("crawl", str(config))

    assert ran.code == 2, ran.err
    assert ran.err.strip().splitlines()[-1] == (
        f"crawler: error: login at 'http://login.site.test:{server.port}/login' failed: "
        "it answered 403"
    )
    assert "Traceback" not in ran.err
    assert "wrong-password-77" not in ran.err + ran.out
    hits = server.app[SITE].log.hits("login.site.test")
    assert [(r.method, r.path) for r in hits] == [("GET", "/robots.txt"), ("POST", "/login")]


LOGIN_FIELDS = {"user": USER, "password": "env:A23_LOGIN_PASSWORD"}


def _dead_login(tmp_path: Path, port: int, **sections: dict[str, Any]) -> tuple[Path, str]:
    """The site's config with its login URL on a port where nothing listens, and that URL."""
    login_url = f"http://login.site.test:{free_port()}/login"
    config = _config(
        tmp_path,
        port,
        Backend("sqlite", str(tmp_path / "crawl.db")),
        auth={"login": {"url": login_url, "fields": LOGIN_FIELDS}},
        **sections,
    )
    return config, login_url


async def test_a_login_that_gets_no_answer_is_retried_then_one_line_and_exit_2(
    aiohttp_server: Any, tmp_path: Path, secrets: Secrets
) -> None:
    server = await aiohttp_server(auth_site(secrets))
    config, login_url = _dead_login(
        tmp_path,
        server.port,
        fetch={"retries": 2},
        # robots.txt not obeyed: the dead origin's would be unreachable, which disallows all
        # (RFC 9309), and the login would stop there without a request.
        politeness={"obey_robots": False},
    )

    ran = await run_cli_async("crawl", str(config))

    assert ran.code == 2, ran.err
    lines = ran.err.strip().splitlines()
    assert lines[-1].startswith(f"crawler: error: login at {login_url!r} failed: connection failed")
    assert "Traceback" not in ran.err
    # Tried three times: twice again (fetch.retries), each after the host's back-off.
    again = [line for line in lines if "trying again" in line]
    assert len(again) == 2, ran.err
    assert all(login_url in line and "connection failed" in line for line in again)
    # No page of the login host went out logged out; the other hosts may have had turns.
    assert not server.app[SITE].log.hits("login.site.test")
    for secret in secrets.all():
        assert secret not in ran.err + ran.out


async def test_a_login_whose_origin_does_not_answer_says_so(
    aiohttp_server: Any, tmp_path: Path, secrets: Secrets
) -> None:
    # robots.txt obeyed: the dead origin's robots.txt is unreachable, which disallows all (RFC
    # 9309), so the login never goes out; the line says why, not that a rule forbids it.
    server = await aiohttp_server(auth_site(secrets))
    config, login_url = _dead_login(tmp_path, server.port, fetch={"retries": 0})

    ran = await run_cli_async("crawl", str(config))

    assert ran.code == 2, ran.err
    assert ran.err.strip().splitlines()[-1] == (
        f"crawler: error: login at {login_url!r}: its origin's robots.txt could not be fetched, "
        "which disallows everything"
    )
    # No page of the login host went out logged out (the live origin's robots.txt may have).
    hits = server.app[SITE].log.hits("login.site.test")
    assert [r.path for r in hits if r.path != "/robots.txt"] == []


async def test_a_resumed_crawl_logs_in_again(
    aiohttp_server: Any, tmp_path: Path, secrets: Secrets
) -> None:
    server = await aiohttp_server(auth_site(secrets))
    log = server.app[SITE].log
    config = _config(tmp_path, server.port, Backend("sqlite", "crawl.db"))
    # The first run starts at the login host alone, so its budget is spent there whichever
    # host a busy machine would have given the first turns.
    full = config.read_text()
    seeds = next(line for line in full.splitlines() if line.startswith("seeds = "))
    login_seed = f'seeds = ["http://login.site.test:{server.port}/"]'
    text = full.replace(seeds, login_seed).replace(
        "concurrency = 4", "concurrency = 4\nmax_pages = 2"
    )
    config.write_text(text)

    first = await run_cli_async("crawl", str(config))
    assert first.code == 0, first.err
    assert [r.method for r in log].count("POST") == 1
    first_run = len(log)
    config.write_text(full.replace("concurrency = 4", "concurrency = 4\nmax_pages = 0"))
    second = await run_cli_async("crawl", str(config))
    assert second.code == 0, second.err

    # The second run's session is its own: it logs in before any page of the login host.
    second_run = [r for r in log[first_run:] if r.host == "login.site.test"]
    assert next((r.method, r.path) for r in second_run if r.path != "/robots.txt") == (
        "POST",
        "/login",
    )
    assert len(secrets.sessions) >= 2


AUTH_ERRORS = [
    pytest.param({"exclude": ["(unclosed"]}, "auth.exclude: bad regex", id="bad-exclude"),
    pytest.param(
        {"basic": {"user": "u", "password": "p"}},
        "auth.hosts: empty while credentials are set",
        id="no-hosts",
    ),
    pytest.param(
        {"hosts": ["site.test"], "login": {"url": "http://elsewhere.test/login"}},
        "auth.login.url: 'http://elsewhere.test/login' is not on a host of auth.hosts",
        id="login-elsewhere",
    ),
    pytest.param(
        {"hosts": ["site.test"], "headers": {"X-Key": "env:A23_NOT_SET_ANYWHERE"}},
        "auth.headers.X-Key: environment variable 'A23_NOT_SET_ANYWHERE' is not set",
        id="env-missing",
    ),
    pytest.param({"hosts": ["site.test"], "user": "u"}, "auth.user: unknown key", id="unknown"),
]


@pytest.mark.parametrize(("auth", "message"), AUTH_ERRORS)
async def test_a_bad_auth_section_is_one_line_and_exit_2(
    tmp_path: Path, auth: dict[str, Any], message: str
) -> None:
    config = write_config(
        tmp_path / "config.toml", ["http://site.test/"], hosts=["site.test"], auth=auth
    )
    ran = await run_cli_async("crawl", str(config))
    assert ran.code == 2
    assert ran.err == f"crawler: error: {config}: {message}" + ran.err.split(message, 1)[1]
    assert len(ran.err.strip().splitlines()) == 1
    assert not (tmp_path / "crawl.db").exists()


@pytest.mark.parametrize(
    ("host", "listed"),
    [
        pytest.param("staging.example.com", True, id="exact"),
        pytest.param("example.com", True, id="dot-entry-itself"),
        pytest.param("a.b.example.com", True, id="subdomain"),
        pytest.param("evil-example.com", False, id="look-alike"),
        pytest.param("example.com.evil.test", False, id="prefix"),
        pytest.param("other.staging.example.org", False, id="other"),
    ],
)
def test_which_hosts_get_credentials(host: str, listed: bool) -> None:
    raw = {
        "crawl": {"seeds": ["http://x.test/"]},
        "auth": {"hosts": ["staging.example.com", ".Example.COM"]},
    }
    credentials = Credentials(Config.from_dict(raw, source=Path("c.toml")).auth)
    assert credentials.for_host(host) is listed


async def test_answers_of_an_old_session_start_no_new_login(
    aiohttp_server: Any, tmp_path: Path, secrets: Secrets
) -> None:
    # Four requests of the login host at once: when a session expires, the others sent with it
    # come back expired too, some while the new login is under way or after it. Only an answer
    # to the latest session may start a login: each session but the last serves its
    # SESSION_PAGES pages before the next login, none is handed out for nothing.
    server = await aiohttp_server(auth_site(secrets, member_pages=30))
    config = _config(
        tmp_path,
        server.port,
        Backend("sqlite", str(tmp_path / "crawl.db")),
        politeness={"per_host_concurrency": 4, "delay": 0},
    )

    ran = await run_cli_async("crawl", str(config))

    assert ran.code == 0, ran.err
    member = [
        r
        for r in server.app[SITE].log.hits("login.site.test")
        if r.method == "GET" and r.path not in ("/robots.txt", "/login")
    ]
    served = Counter(session_of(r) for r in member if r.status == 200)
    assert len(served) == len(secrets.sessions), served  # every session served pages
    assert [served[s] for s in secrets.sessions[:-1]] == [SESSION_PAGES] * (len(served) - 1)
    assert sum(served.values()) == 1 + 30  # / and /m/1 ... /m/30 (/m/1/delete is excluded)
    assert all(r.status in (200, 302) for r in member)


async def test_a_page_the_login_does_not_open_keeps_its_answer(
    aiohttp_server: Any, tmp_path: Path, secrets: Secrets
) -> None:
    # /gated redirects to the login whatever the session: it calls for LOGINS_PER_PAGE logins,
    # then its next such answer is its own, and the crawl goes on.
    server = await aiohttp_server(auth_site(secrets, gated=True))
    db = tmp_path / "crawl.db"
    config = _config(
        tmp_path, server.port, Backend("sqlite", str(db)), politeness={"per_host_concurrency": 1}
    )

    ran = await run_cli_async("crawl", str(config))

    assert ran.code == 0, ran.err
    hits = server.app[SITE].log.hits("login.site.test")
    gated = [i for i, r in enumerate(hits) if r.path == "/gated"]
    assert len(gated) == 1 + LOGINS_PER_PAGE
    for i in gated[:-1]:  # each of the first answers called for a login, next in line
        assert (hits[i + 1].method, hits[i + 1].path) == ("POST", "/login")
    assert all(r.method == "GET" for r in hits[gated[-1] :])  # no login for its last answer
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT status FROM pages WHERE url LIKE '%/gated'").fetchall()
    assert row == [(302,)]
