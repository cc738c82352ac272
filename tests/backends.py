"""A test crawl's database on either backend: its config, and its tables read back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
from kit import build_config

from crawler.config import Config


class Backend:
    """Where a test's crawl is stored (an SQLite file or a PostgreSQL database), and how its
    tables are read."""

    def __init__(self, kind: str, location: str) -> None:
        self.kind, self.location = kind, location

    @property
    def where(self) -> dict[str, str]:
        """The kit.build_config / kit.write_config option naming this database."""
        return {"db": self.location} if self.kind == "sqlite" else {"pg_url": self.location}

    def config(
        self,
        tmp_path: Path,
        seeds: list[str],
        *,
        hosts: tuple[str, ...],
        storage: dict[str, Any] | None = None,
        fetch: dict[str, Any] | None = None,
        **crawl: Any,
    ) -> Config:
        """kit.build_config with four workers and the crawler's connect timeout; `crawl`: more
        crawl keys; `storage`, `fetch`: more keys of those sections."""
        return build_config(
            tmp_path,
            seeds,
            hosts=hosts,
            **self.where,
            crawl={"concurrency": 4, **crawl},
            fetch={"connect_timeout": None, **(fetch or {})},
            storage=storage or {},
        )

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.location)) as db:
                return db.execute(sql).fetchall()
        return await pg_rows(self.location, sql)


async def pg_rows(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of `sql` on the PostgreSQL database at `url`, on a connection of their own."""
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def pg_database_before(url: str, step: str, *statements: str) -> None:
    """Make the database at `url` as a crawler from before the migration `step` left it, then
    run `statements` on it."""
    from crawler.storage.postgres_schema import MIGRATIONS

    before = [name for name, _ in MIGRATIONS].index(step)
    conn = await asyncpg.connect(url)
    try:
        for _name, script in MIGRATIONS[:before]:
            await conn.execute(script)
        await conn.execute("CREATE TABLE crawler_schema (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO crawler_schema VALUES ($1)", before)
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
