"""[auth] with many processes on one PostgreSQL crawl: each process logs in for the login host
whenever it holds that host (from the start, or taking it over from a process that died), and
sends only sessions that its own logins were given.

Two real `crawler crawl` processes share the crawl, each with its own User-Agent (the same
robots token), so the auth site's session bookkeeping (`Secrets.issued`: which User-Agent's
login got a session, and when) tells which process a session belongs to.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from auth_site import (
    HOSTS,
    Secrets,
    auth_section,
    auth_site,
    credential_of,
    pg_dump,
    session_of,
)
from backends import pg_rows
from kit import SITE, Request, RequestLog, start_cli, write_config
from pgserver import PgServer

AGENTS = ("crawler/0.1 (+first)", "crawler/0.1 (+second)")
LOGIN_HOST = "login.site.test"
MEMBER_PAGES = 24  # enough that the login host is still being crawled when its holder dies
LEASE = 3.0  # short, so that the dead process's hosts are taken over quickly


def _write_config(path: Path, port: int, pg_url: str, agent: str) -> Path:
    seeds = [
        f"http://{host}:{port}/" for host in ("basic.site.test", "header.site.test", LOGIN_HOST)
    ]
    return write_config(
        path,
        seeds,
        hosts=HOSTS,
        pg_url=pg_url,
        crawl={"allowed_domains": ["site.test", "other.test", "evil-site.test"], "concurrency": 4},
        politeness={"delay": 0.1, "per_host_concurrency": 1, "user_agent": agent},
        fetch={"timeout": 2.0, "retries": 1, "connect_timeout": None},
        storage={"lease": LEASE, "store_text": False},
        auth=auth_section(port),
    )


async def _finish(procs: list[asyncio.subprocess.Process]) -> list[tuple[int, str]]:
    """Each process's exit code and stderr (a hang guard: at most 90 s, then they are killed
    and the failure shows what each said)."""
    waits = [asyncio.ensure_future(proc.communicate()) for proc in procs]
    _, pending = await asyncio.wait(waits, timeout=90)
    if pending:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        await asyncio.wait(pending, timeout=10)
        said = [w.result()[1].decode() if w.done() else "?" for w in waits]
        pytest.fail("a crawler process hung:\n" + "\n---\n".join(said))
    return [
        (proc.returncode or 0, wait.result()[1].decode())
        for proc, wait in zip(procs, waits, strict=True)
    ]


def _member_pages_answered(log: RequestLog) -> int:
    return sum(1 for r in log.hits(LOGIN_HOST) if r.method == "GET" and r.status == 200)


def _first_login_agent(log: RequestLog) -> str:
    return next(r.user_agent for r in log.hits(LOGIN_HOST) if r.method == "POST")


def _assert_own_sessions(hits: list[Request], secrets: Secrets) -> None:
    """Every request of the login host but robots.txt (asked before any login) and the logins
    carries a session the server issued, to a login of the same process, before it."""
    for hit in hits:
        if hit.method == "POST" or hit.path == "/robots.txt":
            continue
        issued = secrets.issued.get(session_of(hit))
        assert issued is not None, hit
        assert issued.user_agent == hit.user_agent, hit
        assert issued.at < hit.start, hit


@pytest.mark.timeout(150)
async def test_each_process_logs_in_for_the_login_host_it_holds(
    aiohttp_server: Any,
    pg_server: PgServer,
    pg_url: str,
    tmp_path: Path,
    secrets: Secrets,
) -> None:
    server = await aiohttp_server(auth_site(secrets, member_pages=MEMBER_PAGES))
    log: RequestLog = server.app[SITE].log
    port = server.port
    configs = [
        _write_config(tmp_path / f"p{n}.toml", port, pg_url, agent)
        for n, agent in enumerate(AGENTS)
    ]
    procs = [await start_cli("crawl", str(config), "--quiet") for config in configs]

    # The process holding the login host dies a few pages in: the other takes the host over.
    await log.wait_for(lambda seen: _member_pages_answered(seen) >= 4, seconds=60)
    holder = AGENTS.index(_first_login_agent(log))
    procs[holder].send_signal(signal.SIGKILL)
    results = await _finish(procs)

    assert results[holder][0] == -signal.SIGKILL
    survivor = 1 - holder
    assert results[survivor][0] == 0, results[survivor][1]

    # Every page of every host was fetched, and answered 200 in the end.
    pages = dict(await pg_rows(pg_url, "SELECT url, status FROM pages"))
    member = [f"http://{LOGIN_HOST}:{port}/m/{n}" for n in range(1, MEMBER_PAGES + 1)]
    for url in [f"http://{LOGIN_HOST}:{port}/", *member]:
        assert pages.get(url) == 200, url
    for host in ("basic.site.test", "header.site.test"):
        for path in ("/", "/b/1", "/b/2"):
            assert pages.get(f"http://{host}:{port}{path}") == 200, (host, path)

    # Both processes fetched pages of the login host, each logged in before its first, and
    # each sent only sessions its own logins were given.
    hits = log.hits(LOGIN_HOST)
    _assert_own_sessions(hits, secrets)
    by_agent = {agent: [r for r in hits if r.user_agent == agent] for agent in AGENTS}
    for agent, requests in by_agent.items():
        asked = [(r.method, r.path) for r in requests if r.path != "/robots.txt"]
        assert asked, agent
        assert asked[0] == ("POST", "/login"), (agent, asked[:3])
    # (The survivor's first login may come before the kill: hosts also move between live runs
    # to share them out. Either way each process logged in for the login host while it held
    # it, which is what the checks above assert.)
    issued_to = {issued.user_agent for issued in secrets.issued.values()}
    assert issued_to == set(AGENTS)
    # Credentials still go to auth hosts only.
    assert all(credential_of(r) == "" for r in log if r.host in ("other.test", "evil-site.test"))

    # No secret is written: not in the database, not in either process's output.
    outputs = {"pg_dump": pg_dump(pg_server, pg_url)}
    outputs.update({f"stderr {AGENTS[n]}": err for n, (_, err) in enumerate(results)})
    assert f"{LOGIN_HOST}:{port}/m/{MEMBER_PAGES}" in outputs["pg_dump"]
    for where, text in outputs.items():
        for secret in secrets.all():
            assert secret not in text, (where, secret)
