"""Many processes, one crawl in PostgreSQL: politeness holds across all of them, proved from the
server's own request log, through a kill -9 and a SIGSTOP past the lease.

Each process is a real `crawler crawl` subprocess with its own User-Agent (same robots token),
so the log tells who sent what; the site is one aiohttp server serving many host names.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from backends import pg_rows
from conftest import ConfigFactory, crawl, rows
from kit import (
    SITE,
    HostPlan,
    Request,
    Site,
    make_site,
    max_in_flight,
    min_gap,
    run_cli_async,
    start_cli,
    write_config,
)

HOSTS = [f"h{n}.test" for n in range(24)]
DELAY = 0.2
LEASE = 5.0  # short, so that a dead process's hosts are taken over soon; long enough that a
# live process on a loaded machine renews its leases in time (at 3 s, one on a machine with load
# near 8 let a host lapse: robots.txt went out twice, from two live processes)
WAKE_SENDS = 1.0  # seconds after SIGCONT in which a stopped process sends what it had under way
TIMEOUT = 2.0  # fetch.timeout: a lease must outlast it; a busy machine still answers in time


def _plans() -> dict[str, HostPlan]:
    return {host: HostPlan(pages=12, page_sleep=0.02) for host in HOSTS}


def _write_config(
    path: Path, port: int, pg_url: str, agent: str, retries: int = 1, **crawl: Any
) -> Path:
    return write_config(
        path,
        [f"http://{h}:{port}/p/0" for h in HOSTS],
        hosts=HOSTS,
        pg_url=pg_url,
        crawl=crawl,
        politeness={"delay": DELAY, "per_host_concurrency": 1, "user_agent": agent},
        fetch={"timeout": TIMEOUT, "retries": retries, "connect_timeout": None},
        # No text helpers: these tests are about sharing the frontier, and three processes'
        # helpers on a 2-core machine would slow starts enough to decide who gets which hosts.
        storage={"lease": LEASE, "store_text": False},
    )


async def _start(config: Path) -> asyncio.subprocess.Process:
    return await start_cli("crawl", str(config), "--quiet")


async def _finish(procs: list[asyncio.subprocess.Process]) -> list[tuple[int, str]]:
    """Each process's exit code and stderr, waiting at most 60 s for all (a hang guard: then
    they are stopped with SIGINT, and the failure shows what each said)."""
    waits = [asyncio.ensure_future(proc.communicate()) for proc in procs]
    _, pending = await asyncio.wait(waits, timeout=60)
    if pending:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        await asyncio.wait(pending, timeout=10)
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        said = [w.result()[1].decode() if w.done() else "?" for w in waits]
        pytest.fail("a crawler process hung:\n" + "\n---\n".join(said))
    outputs = [w.result() for w in waits]
    return [
        (proc.returncode or 0, err.decode()) for proc, (_, err) in zip(procs, outputs, strict=True)
    ]


async def _single_process_pages(aiohttp_server: Any, make_config: ConfigFactory) -> set[str]:
    """The page paths per host that one process on SQLite fetches from the same site."""
    server = await aiohttp_server(make_site(_plans()))
    config = make_config(
        [f"http://{h}:{server.port}/p/0" for h in HOSTS], hosts=tuple(HOSTS), db="single.db"
    )
    await crawl(config)
    return {
        url.replace(f":{server.port}/", "/") for (url,) in rows(config, "SELECT url FROM pages")
    }


async def _pages_stored(pg_url: str, port: int) -> set[str]:
    """The URLs of the PostgreSQL crawl's `pages` rows, without the port."""
    urls = [row[0] for row in await pg_rows(pg_url, "SELECT url FROM pages")]
    assert len(urls) == len(set(urls))
    return {url.replace(f":{port}/", "/") for url in urls}


def _assert_polite(site: Site, leave_out: Sequence[Request] = ()) -> None:
    """Across every process: gaps never below the delay (but for `leave_out`'s requests),
    never two requests open at once."""
    for host, hits in site.by_host().items():
        timed = [h for h in hits if not any(h is out for out in leave_out)]
        assert min_gap(timed) >= DELAY, (host, [(h.user_agent, h.path, h.start) for h in hits])
        assert max_in_flight(hits) == 1, host
        assert hits[0].path == "/robots.txt", host


def _twice(site: Site) -> dict[tuple[str, str], list[Request]]:
    counts = Counter((h.host, h.path) for h in site.log)
    return {
        key: [h for h in site.log if (h.host, h.path) == key] for key, n in counts.items() if n > 1
    }


@pytest.mark.timeout(150)
async def test_three_processes_and_a_kill(
    aiohttp_server: Any, make_config: ConfigFactory, pg_url: str, tmp_path: Path
) -> None:
    server = await aiohttp_server(make_site(_plans()))
    site: Site = server.app[SITE]
    agents = [f"crawler/0.1 (+p{n})" for n in range(3)]
    configs = [
        _write_config(tmp_path / f"p{n}.toml", server.port, pg_url, agent)
        for n, agent in enumerate(agents)
    ]
    total = len(HOSTS) * 13  # robots.txt and 12 pages per host
    # The one to be killed must hold hosts then: it starts alone and the others once it fetches
    # (started together on a busy machine, the other two could claim and finish every host
    # before it sends its first request).
    procs = [await _start(configs[0])]
    await site.log.wait_for(lambda log: any(hit.user_agent == agents[0] for hit in log), 60)
    procs += [await _start(config) for config in configs[1:]]

    await site.log.seen(total // 4, seconds=60)
    procs[0].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    results = await _finish(procs)

    assert results[0][0] == -signal.SIGKILL
    for code, err in results[1:]:
        assert code == 0, err
    _assert_polite(site)
    # The killed process's hosts were taken over: every page was fetched, as by one process.
    single = await _single_process_pages(aiohttp_server, make_config)
    assert await _pages_stored(pg_url, server.port) == single
    # A URL went out twice only if the killed process had it under way when it died, and went
    # out again from another process after the kill. (The server's log says when it began to
    # serve a request: one the process sent just before its kill may begin just after it.)
    twice = _twice(site)
    for (host, path), hits in twice.items():
        assert len(hits) == 2, (host, path)
        assert hits[0].user_agent == agents[0] != hits[1].user_agent, (host, path)
        assert killed_at < hits[1].start, (host, path)
    # ... and whatever the server served the dead process late was never stored by it.
    late = [h for h in site.log if h.user_agent == agents[0] and h.start > killed_at]
    assert all((h.host, h.path) in twice for h in late)
    # Each process worked: the crawl was shared, not done by one of them.
    assert {h.user_agent for h in site.log} == set(agents)


@pytest.mark.timeout(150)
async def test_a_stalled_process_loses_its_hosts_and_commits_nothing_for_them(
    aiohttp_server: Any, pg_url: str, tmp_path: Path
) -> None:
    # Slow pages: whenever it is stopped, the process has requests under way.
    plans = {host: HostPlan(pages=12, page_sleep=0.3) for host in HOSTS}
    server = await aiohttp_server(make_site(plans))
    site: Site = server.app[SITE]
    agents = ["crawler/0.1 (+stalled)", "crawler/0.1 (+live)"]
    # No retries: the requests under way at the stop time out when it wakes (its clock ran on)
    # and end as failed outcomes, which the stalled process then tries to save.
    configs = [
        _write_config(tmp_path / f"p{n}.toml", server.port, pg_url, agent, retries=0)
        for n, agent in enumerate(agents)
    ]
    stalled = await _start(configs[0])
    await site.log.seen(30, seconds=60)  # it holds hosts and has requests under way
    stalled.send_signal(signal.SIGSTOP)
    held = {h.host for h in site.log if h.user_agent == agents[0]}
    live = await _start(configs[1])
    try:
        # The live process takes the stalled one's hosts over once their leases lapse.
        async with asyncio.timeout(60):
            while not {h.host for h in site.log if h.user_agent == agents[1]} & held:
                if live.returncode is not None:
                    break  # it ended: the assertions below say how
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"no host taken over in 60 s: {await _takeover_state(pg_url, held)}")
    finally:
        woke = time.monotonic()  # the clock of the site's log
        stalled.send_signal(signal.SIGCONT)
        results = await _finish([stalled, live])

    for code, err in results:
        assert code == 0, err
    # A stop can fall between the check just before sending (`Frontier.confirm`) and the
    # sending, and there are awaits between them (a connection to take): what the stalled
    # process had past that check goes out as it wakes, whoever holds the host by then. No
    # process can close that gap; those requests, one a host at most, are left out of the gaps.
    at_wake = [h for h in site.log if h.user_agent == agents[0] and h.start >= woke]
    sent_at_wake = [h for h in at_wake if h.start < woke + WAKE_SENDS]
    assert len({h.host for h in sent_at_wake}) == len(sent_at_wake)
    _assert_polite(site, leave_out=sent_at_wake)
    # When it woke, its leases had lapsed: it says so, and left out the outcomes it had under
    # way, whose URLs were fetched again by the host's next owner (the live process, or the
    # stalled one under a new claim) and committed once (one `fetches` row a URL).
    assert "lost" in results[0][1]
    assert "left out" in results[0][1]
    twice = _twice(site)
    assert twice
    for (host, path), hits in twice.items():
        assert len(hits) == 2, (host, path)
        # The stalled process had it: sent before the stop (and fetched again by the next
        # owner), or taken before it and sent when it woke: a stop can fall between the check
        # just before sending (`Frontier.confirm`) and the sending itself, and no process can
        # close that gap. Either way, it was committed once (below).
        assert agents[0] in {h.user_agent for h in hits}, (host, path)
    # The crawl is whole: nothing left queued, one page row for each URL fetched. (Without
    # retries, a page that timed out at the stop may have been committed as failed by the
    # stalled process, if no one had claimed its host meanwhile: its links are then unknown.)
    states = dict(await pg_rows(pg_url, "SELECT state, count(*) FROM urls GROUP BY state"))
    assert "queued" not in states
    committed = await pg_rows(pg_url, "SELECT url, count(*) FROM fetches GROUP BY url")
    assert {row[1] for row in committed} == {1}
    stored = await _pages_stored(pg_url, server.port)
    assert len(stored) == states.get("done", 0) + states.get("failed", 0)
    assert {url for url in stored if url.endswith("/p/0")} == {f"http://{h}/p/0" for h in HOSTS}


async def _takeover_state(pg_url: str, held: set[str]) -> str:
    """What a takeover that did not happen was waiting for: the held hosts' rows, and what each
    session of the database was doing."""
    hosts = await pg_rows(
        pg_url,
        "SELECT host, owner, lease_until - extract(epoch FROM clock_timestamp()),"
        " (SELECT count(*) FROM urls u WHERE u.host = h.host AND u.state = 'queued')"
        " FROM hosts h WHERE host = ANY($1::text[]) ORDER BY host",
        sorted(held),
    )
    sessions = await pg_rows(
        pg_url,
        "SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    runs = await pg_rows(pg_url, "SELECT id, outcome, pid, renewed_at, pass FROM runs")
    return f"hosts {hosts}; sessions {sessions}; runs {runs}"


async def _run_cli(*args: str) -> tuple[int, str]:
    ran = await run_cli_async(*args, seconds=60)
    return ran.code, ran.err


@pytest.mark.timeout(150)
async def test_processes_flag_shares_one_crawl_and_its_page_budget(
    aiohttp_server: Any, pg_url: str, tmp_path: Path
) -> None:
    server = await aiohttp_server(make_site(_plans()))
    site: Site = server.app[SITE]
    config = _write_config(
        tmp_path / "c.toml", server.port, pg_url, "crawler/0.1 (+x)", max_pages=100
    )

    code, err = await _run_cli("crawl", "--processes", "3", str(config))

    assert code == 0, err
    _assert_polite(site)
    # max_pages holds for the crawl as a whole, not per process.
    assert await pg_rows(pg_url, "SELECT count(*) FROM pages") == [(100,)]
    runs = await pg_rows(pg_url, "SELECT outcome, pages FROM runs ORDER BY id")
    assert [outcome for outcome, _ in runs] == ["limit"] * 3
    assert sum(pages for _, pages in runs) == 100
    # One progress line for the three: the last one counts the whole crawl's pages.
    assert "processes 0/3  pages 100  " in err.splitlines()[-1]


@pytest.mark.timeout(150)
async def test_ctrl_c_stops_every_process_and_resume_finishes_the_crawl(
    aiohttp_server: Any, pg_url: str, tmp_path: Path
) -> None:
    server = await aiohttp_server(make_site(_plans()))
    site: Site = server.app[SITE]
    config = _write_config(tmp_path / "c.toml", server.port, pg_url, "crawler/0.1 (+x)")
    parent = await start_cli("crawl", "--processes", "2", str(config), "--quiet")
    await site.log.seen(40, seconds=60)
    parent.send_signal(signal.SIGINT)
    ((code, err),) = await _finish([parent])

    assert code == 130, err
    assert await pg_rows(pg_url, "SELECT outcome FROM runs") == [("interrupted",)] * 2
    assert (await pg_rows(pg_url, "SELECT count(*) FROM urls WHERE state = 'queued'"))[0][0]

    code, err = await _run_cli("resume", str(config), "--quiet")

    assert code == 0, err
    _assert_polite(site)
    assert await _pages_stored(pg_url, server.port) == {
        f"http://{h}/p/{n}" for h in HOSTS for n in range(12)
    }
    twice = _twice(site)
    assert all(len(hits) == 2 for hits in twice.values())  # at most the ones under way


@pytest.mark.timeout(150)
async def test_resume_after_every_process_was_killed(
    aiohttp_server: Any, pg_url: str, tmp_path: Path
) -> None:
    server = await aiohttp_server(make_site(_plans()))
    site: Site = server.app[SITE]
    agents = [f"crawler/0.1 (+p{n})" for n in range(2)]
    configs = [
        _write_config(tmp_path / f"p{n}.toml", server.port, pg_url, agent)
        for n, agent in enumerate(agents)
    ]
    procs = [await _start(config) for config in configs]
    # Both under way (each has its run by its first request), whichever started faster.
    await site.log.wait_for(
        lambda log: len(log) >= 60 and {hit.user_agent for hit in log} >= set(agents), 60
    )
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    await _finish(procs)

    # On this machine their pids are dead: the resumed run takes their hosts at once, without
    # waiting for the leases (3 s) to lapse; it waits one delay before each host all the same.
    resumed_at = time.monotonic()
    code, err = await _run_cli("resume", str(configs[0]), "--quiet")

    assert code == 0, err
    _assert_polite(site)
    assert await _pages_stored(pg_url, server.port) == {
        f"http://{h}/p/{n}" for h in HOSTS for n in range(12)
    }
    for (host, path), hits in _twice(site).items():
        assert len(hits) == 2, (host, path)
        assert hits[0].start < resumed_at < hits[1].start, (host, path)
    outcomes = await pg_rows(pg_url, "SELECT outcome FROM runs ORDER BY id")
    assert outcomes == [("crashed",), ("crashed",), ("finished",)]
