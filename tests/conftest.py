"""Shared fixtures: the demo site on a real loopback server, configs aimed at it, crawls.

Sites, configs and CLI runs come from the test kit (tests/kit); these fixtures wrap it."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from auth_site import Secrets
from backends import Backend
from kit import build_config, record_requests

from crawler.config import Config
from crawler.demo_site import DEMO_HOSTS, make_app
from crawler.engine.crawl import Crawler, RunResult

ConfigFactory = Callable[..., Config]
pytest_plugins = ["pgserver"]  # the throwaway PostgreSQL server: pg_server, pg_url


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a non-interactive shell (`make test &` in a
    # script) inherits SIGINT ignored, and so would every crawler process it starts: Python
    # leaves an ignored SIGINT ignored, and the tests that stop a crawl or an export with
    # SIGINT would find it running on. A handler here is reset to the default by exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class DemoServer(TestServer):
    port: int  # set once the server is started, as it always is when a test receives it


@pytest.fixture
async def demo_server(aiohttp_server: Any) -> DemoServer:
    """The demo site, served on a free loopback port, logging into the kit's RequestLog:
    `demo_server.app[kit.LOG]`."""
    app = make_app()
    record_requests(app)
    server: DemoServer = await aiohttp_server(app)
    return server


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The test runs once with an SQLite file and once with a PostgreSQL database."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "crawl.db"))
    make_pg_url: Callable[[], str] = request.getfixturevalue("make_pg_url")
    return Backend("postgres", make_pg_url())


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """kit.build_config on the test's tmp_path, `hosts` defaulting to the demo site's:
    make_config(seeds, hosts=..., db=..., crawl={...}, fetch={...}, ...)."""

    def factory(seeds: list[str], *, hosts: tuple[str, ...] = DEMO_HOSTS, **options: Any) -> Config:
        return build_config(tmp_path, seeds, hosts=hosts, **options)

    return factory


async def crawl(config: Config) -> RunResult:
    return await Crawler(config).run()


def rows(config: Config, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Query the crawl's database file directly."""
    with closing(sqlite3.connect(config.storage.path)) as db:
        return db.execute(sql, params).fetchall()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    """Fresh secrets for the auth site, in the environment where the config's env:NAME reads
    them."""
    made = Secrets()
    for name, value in made.environment().items():
        monkeypatch.setenv(name, value)
    return made
