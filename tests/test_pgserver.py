"""The throwaway PostgreSQL server the PostgreSQL tests run against (tests/pgserver.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pgserver
import pytest
from pgserver import PgNotFoundError, PgServer

pytest_plugins = ["pgserver"]  # the fixtures; harmless once tests/conftest.py registers them too


def test_server_is_up(pg_server: PgServer) -> None:
    assert (pg_server.socket_dir / f".s.PGSQL.{pg_server.port}").is_socket()
    assert pg_server.psql("SELECT current_user").strip() == "postgres"
    assert pg_server.psql("SHOW fsync").strip() == "off"
    assert pg_server.psql("SHOW listen_addresses").strip() == "127.0.0.1"


async def test_tcp_url_with_asyncpg(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://postgres@127.0.0.1:")
    conn = await asyncpg.connect(pg_url)
    try:
        version = await conn.fetchval("SELECT version()")
        dbname = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    assert version.startswith("PostgreSQL 15")
    assert pg_url.endswith(f"/{dbname}")


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_a_fresh_database(pg_url: str, run: int) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        # Whichever run comes second would see the first one's table in a shared database.
        assert await conn.fetchval("SELECT to_regclass('marker')") is None
        await conn.execute("CREATE TABLE marker (run integer)")
        await conn.execute("INSERT INTO marker VALUES ($1)", run)
    finally:
        await conn.close()


def test_factory_databases_are_distinct(
    pg_server: PgServer,
    make_pg_url: Callable[[], str],
) -> None:
    first, second = make_pg_url(), make_pg_url()
    assert first != second
    names = pg_server.psql("SELECT datname FROM pg_database").split()
    assert {first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]} <= set(names)


def test_create_and_drop_database(pg_server: PgServer) -> None:
    url = pg_server.create_database("scratch")
    assert url == pg_server.url("scratch")
    pg_server.psql("CREATE TABLE t (x integer)", dbname="scratch")
    pg_server.drop_database("scratch")
    pg_server.drop_database("scratch")  # already gone: no error
    assert "scratch" not in pg_server.psql("SELECT datname FROM pg_database").split()
    with pytest.raises(ValueError, match="database name"):
        pg_server.create_database("Robert'); DROP TABLE students;--")


def test_stopped_and_removed_even_on_error() -> None:
    seen: list[tuple[Path, int]] = []

    def fail_inside() -> None:
        with PgServer() as server:
            seen.append((server.socket_dir, server.port))
            assert server.socket_dir.is_dir()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    [(folder, port)] = seen
    assert not folder.exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pgserver, "VERSIONED_BINDIRS", "/nonexistent/*/bin")
    with pytest.raises(PgNotFoundError, match="make pg-deps"):
        pgserver.find_bindir()
