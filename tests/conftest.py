"""Shared fixtures: the demo site on a real loopback server, configs aimed at it, crawls."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from backends import Backend

from crawler.config import Config
from crawler.demo_site import DEMO_HOSTS, REQUEST_LOG, RequestRecord, make_app
from crawler.engine.crawl import Crawler, RunResult

ConfigFactory = Callable[..., Config]
pytest_plugins = ["pgserver"]  # the throwaway PostgreSQL server: pg_server, pg_url


class DemoServer(TestServer):
    port: int  # set once the server is started, as it always is when a test receives it


@pytest.fixture
async def demo_server(aiohttp_server: Any) -> DemoServer:
    """The demo site, served on a free loopback port."""
    server: DemoServer = await aiohttp_server(make_app())
    return server


async def requests_seen(server: TestServer, count: int) -> None:
    """Wait (30 s at most) until the demo server has seen `count` requests."""
    log = request_log(server)
    async with asyncio.timeout(30):
        while len(log) < count:  # noqa: ASYNC110 (the log is a plain list: poll it)
            await asyncio.sleep(0.01)


def request_log(server: TestServer) -> list[RequestRecord]:
    """Every request the server saw, in arrival order."""
    assert server.app is not None
    return server.app[REQUEST_LOG]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The test runs once with an SQLite file and once with a PostgreSQL database."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "crawl.db"))
    make_pg_url: Callable[[], str] = request.getfixturevalue("make_pg_url")
    return Backend("postgres", make_pg_url())


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Build a Config from TOML-shaped sections; hosts in `hosts` are pinned to 127.0.0.1.

    Defaults suit tests: no delay, a short timeout, the database in tmp_path.
    """

    def factory(
        seeds: list[str],
        *,
        hosts: tuple[str, ...] = DEMO_HOSTS,
        db: str = "crawl.db",
        **sections: dict[str, Any],
    ) -> Config:
        raw: dict[str, dict[str, Any]] = {
            "crawl": {"seeds": seeds, "concurrency": 8},
            "politeness": {"delay": 0},
            "fetch": {"timeout": 5, "connect_timeout": 2, "retries": 0},
            "storage": {"path": db},
        }
        raw["fetch"]["resolve"] = dict.fromkeys(hosts, "127.0.0.1")
        for name, values in sections.items():
            raw.setdefault(name, {}).update(values)
        return Config.from_dict(raw, source=tmp_path / "config.toml")

    return factory


async def crawl(config: Config) -> RunResult:
    return await Crawler(config).run()


def rows(config: Config, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Query the crawl's database file directly."""
    with closing(sqlite3.connect(config.storage.path)) as db:
        return db.execute(sql, params).fetchall()
