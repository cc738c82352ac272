"""The read contract (crawler/storage/read_contract.py), rule by rule, on both backends: one
crawl written through each backend's own `Storage.save` (backends.fill: pages of every status
class, links, skips, hosts, one run), then read through `open_reader`; every test expects the
same answer from SQLite and PostgreSQL. Then the PostgreSQL read-only role of docs/roles.md,
on the real server.

The tests are plain functions: the PostgreSQL reader runs its own event loop.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import ENDED, HOME, STARTED, fill, page, save, take
from kit import run_in_process
from pgserver import PgServer

from crawler.config import DEFAULT_LEASE
from crawler.errors import StoreError, UsageError
from crawler.records import Discovered, Outcome
from crawler.storage import Batch, Storage, open_reader
from crawler.storage.postgres import PostgresStore
from crawler.storage.read_contract import Counts, Host, Pass, Progress, Run
from crawler.storage.sqlite import SQLiteStore

ROLES_DOC = Path(__file__).parent.parent / "docs" / "roles.md"
TEXTS = {  # a third host's pages, with readable text, for search
    "https://text.test/fox": ("Cats and dogs", "The quick brown fox jumps over the lazy dog."),
    "https://text.test/fox-title": ("Fox", "A page about a red animal."),
    "https://text.test/mail": ("Mailing lists", "Join the list or read the archive."),
}


async def add_texts(store: Storage) -> None:
    """A second run that fetches TEXTS' pages (no time stamps of its own: see `write`)."""
    seeds = [Discovered(url, "text.test", 0, "queued", None, None) for url in TEXTS]
    run = await store.start_run(seeds, 3, DEFAULT_LEASE)
    claims = {h.host: h for h in await store.claim_hosts(10)}
    outcomes = []
    for n, (url, (title, text)) in enumerate(TEXTS.items(), 20):
        q = await take(store, url, claims)
        outcomes.append(Outcome(q, "done", page=page(q, 200, n, title=title, text=text)))
    await save(store, Batch(outcomes))
    await store.end_run(run.run_id, "finished", None)


async def write(kind: str, where: str) -> None:
    opening = SQLiteStore.open(Path(where)) if kind == "sqlite" else PostgresStore.open(where)
    async with opening as store:
        await fill(store)
        await add_texts(store)
    # Run times are the clock's when written: the same on both, so that runs agree.
    sql = "UPDATE runs SET started_at = {0}1, ended_at = {0}2 WHERE id = {0}3"
    if kind == "sqlite":
        with closing(sqlite3.connect(where)) as db, db:
            db.execute(sql.format("?"), (STARTED, ENDED, 1))
            db.execute(sql.format("?"), (STARTED, None, 2))
        return
    conn = await asyncpg.connect(where)
    try:
        await conn.execute(sql.format("$"), STARTED, ENDED, 1)
        await conn.execute(sql.format("$"), STARTED, None, 2)
    finally:
        await conn.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One crawl per backend, for the module's tests that only read."""
    if request.param == "sqlite":
        where = str(tmp_path_factory.mktemp("reads") / "crawl.db")
        asyncio.run(write("sqlite", where))
        yield where
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = "storage_reads"
    where = server.create_database(name)
    try:
        asyncio.run(write("postgres", where))
        yield where
    finally:
        server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A crawl of this test's own, for tests that try to change it."""
    if request.param == "sqlite":
        where = str(tmp_path / "crawl.db")
    else:
        where = request.getfixturevalue("make_pg_url")()
    asyncio.run(write(request.param, where))
    return where


def direct(where: str, sql: str) -> list[tuple[Any, ...]]:
    """`sql` on a connection of its own, apart from the reader (writes commit)."""
    if not where.startswith("postgresql://"):
        with closing(sqlite3.connect(where)) as db, db:
            return db.execute(sql).fetchall()

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(where)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def dump(where: str) -> list[tuple[Any, ...]]:
    return direct(where, "SELECT url, status, title FROM pages ORDER BY url") + direct(
        where, "SELECT id, outcome, pages FROM runs ORDER BY id"
    )


# -- rule 1: read-only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("UPDATE pages SET status = 500", id="update"),
        pytest.param("DELETE FROM pages RETURNING url", id="delete-returning"),
        pytest.param(
            "INSERT INTO runs (started_at, seeds) VALUES ('x', '') RETURNING id", id="insert"
        ),
        pytest.param("DROP TABLE links", id="drop"),
    ],
)
def test_1_a_write_is_refused_and_changes_nothing(fresh: str, sql: str) -> None:
    before = dump(fresh)
    with open_reader(fresh) as reader, pytest.raises(StoreError) as caught:
        reader.user_sql(sql)  # refused before it returns: no output may have begun
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("query refused: the database is opened read-only (")
    assert dump(fresh) == before


# -- rule 2: one snapshot ---------------------------------------------------------------------


def test_2_every_read_sees_the_first_reads_snapshot(fresh: str) -> None:
    with open_reader(fresh) as reader:
        first = reader.counts()
        direct(fresh, "UPDATE urls SET state = 'done' WHERE state = 'queued'")
        direct(fresh, "DELETE FROM links")
        assert reader.counts() == first
        assert reader.queued() == first.url_states["queued"] > 0
        result = reader.user_sql("SELECT count(*) FROM links")
        assert result is not None
        assert next(result[1])[0] > 0
    with open_reader(fresh) as after:
        assert after.queued() == 0  # the writes did commit


# -- rule 3: values as SQLite gives them ------------------------------------------------------


def test_3_values_and_names_are_sqlites(db: str) -> None:
    sql = "SELECT truncated, fetched_at, body, count(*), 1.5 AS x FROM pages WHERE url = '%s'"
    with open_reader(db) as reader:
        result = reader.user_sql(sql.replace("%s", HOME) + " GROUP BY truncated, fetched_at, body")
        assert result is not None
        columns, rows = result
        assert columns == ["truncated", "fetched_at", "body", "count(*)", "x"]
        ((truncated, fetched_at, body, count, x),) = list(rows)
        links = reader.user_sql("SELECT min(nofollow) FROM links")
        assert links is not None
        ((nofollow,),) = list(links[1])
    assert (truncated, count, x, nofollow) == (1, 1, 1.5, 0)
    assert type(truncated) is int
    assert fetched_at == "2026-11-25T00:00:01.500Z"
    assert isinstance(body, bytes)


# -- rule 4: counts ---------------------------------------------------------------------------


def test_4_counts(db: str) -> None:
    with open_reader(db) as reader:
        counts = reader.counts()
        progress = reader.progress()
    assert counts == Counts(
        pages=13,
        status_classes={"2xx": 7, "3xx": 1, "4xx": 2, "5xx": 0, "no response": 3},
        url_states={"done": 10, "failed": 3, "queued": 1, "skipped": 3},
        skip_reasons={"depth": 1, "robots": 1, "trap": 1},
        content_types={"text/html": 10, None: 3},
        hosts=3,
        bytes=sum(n for (n,) in direct(db, "SELECT bytes FROM pages")),
        errors=3,
    )
    ((pages,),) = direct(db, "SELECT sum(pages) FROM runs")  # what the runs counted
    assert progress == Progress(pages=pages, queued=1, errors=3, hosts=3)


# -- rule 5: streams --------------------------------------------------------------------------


def test_5_pages_stream_in_fetch_order_with_null_for_missing_columns(db: str) -> None:
    with open_reader(db) as reader:
        rows = list(reader.pages(["url", "no_such_column", "status"], batch=2))
    assert [url for url, _, _ in rows][:2] == [HOME, HOME + "about"]
    assert [url for url, _, _ in rows][-3:] == list(TEXTS)
    assert {missing for _, missing, _ in rows} == {None}
    assert len(rows) == 13


def test_5_a_stream_is_read_as_it_is_consumed(db: str) -> None:
    with open_reader(db) as reader:
        stream = reader.pages(["url"], batch=1)
        assert next(stream) == (HOME,)
        assert reader.queued() == 1  # other reads in between
        assert len(list(stream)) == 12


# -- rule 6: search ---------------------------------------------------------------------------


def test_6_search_best_first_on_the_real_index(db: str) -> None:
    with open_reader(db) as reader:
        found = list(reader.search("fox", 10))
        assert list(reader.search("crawl* OR nothing", 10)) == []
        with pytest.raises(UsageError, match="unbalanced quote"):
            reader.search('"fox', 10)
    assert [url for url, _, _ in found] == ["https://text.test/fox-title", "https://text.test/fox"]
    assert "**fox**" in found[1][2]


def test_6_a_database_without_the_index_is_a_usage_error(fresh: str) -> None:
    if fresh.startswith("postgresql://"):
        direct(fresh, "DROP INDEX pages_search")
    else:
        direct(fresh, "DROP TABLE pages_fts")
    with open_reader(fresh) as reader, pytest.raises(UsageError, match="has no search index"):
        reader.search("fox", 10)


# -- rule 7: columns --------------------------------------------------------------------------


def test_7_columns_in_order(db: str) -> None:
    with open_reader(db) as reader:
        assert reader.columns("links")[:3] == ["src_url", "dst_url", "nofollow"]
        assert reader.columns("pages")[:3] == ["id", "url", "host"]
        assert reader.columns("no_such_table") == []


# -- rule 8: runs -----------------------------------------------------------------------------


def test_8_runs_oldest_first_with_their_lag(db: str) -> None:
    with open_reader(db) as reader:
        runs = reader.runs()
    assert [replace(r, lag_p99_ms=round(r.lag_p99_ms or 0, 1)) for r in runs] == [
        Run(1, STARTED, ENDED, "limit", runs[0].pages, 1, 12.3, runs[0].lag_max_ms),
        Run(2, STARTED, None, "finished", runs[1].pages, 1, 0, None),
    ]
    assert round(runs[0].lag_max_ms or 0, 1) == 45.6


# -- rule 9: passes ---------------------------------------------------------------------------


def test_9_passes_count_fetches_by_change(db: str) -> None:
    with open_reader(db) as reader:
        assert reader.passes() == (Pass(1, new=13, changed=0, unchanged=0, gone=0, no_answer=0),)


# -- rule 10: hosts ---------------------------------------------------------------------------


def test_10_hosts_most_pages_first(db: str) -> None:
    with open_reader(db) as reader:
        hosts = reader.hosts()
    assert [(h.host, h.pages) for h in hosts] == [
        ("example.org", 7), ("other.example", 3), ("text.test", 3),
    ]  # fmt: skip
    assert hosts[1] == Host(
        "other.example", "allow-all", "2026-11-25T00:00:00.125Z", 2.5, "backoff", 5.0, 3, 3,
        None, 3,
    )  # fmt: skip


# -- the read-only role (docs/roles.md) -------------------------------------------------------


def roles_sql(crawl: str, read: str) -> tuple[list[str], list[str]]:
    """The two SQL blocks of docs/roles.md, statement by statement, for these role names (the
    database is named after the crawl role, as there)."""
    blocks = re.findall(r"```sql\n(.*?)```", ROLES_DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    named = [re.sub(r"\bcrawl\b", crawl, b.replace("crawl_read", read)) for b in blocks]
    first, second = ([s.strip() for s in b.split(";") if s.strip()] for b in named)
    return first, second


@pytest.fixture
def roles(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """The crawl database of docs/roles.md with its two roles: (crawl URL, read URL)."""
    suffix = uuid.uuid4().hex[:8]
    crawl, read = f"crawl_{suffix}", f"crawl_{suffix}_read"
    as_superuser, as_crawl = roles_sql(crawl, read)
    for statement in as_superuser:
        pg_server.psql(statement)
    url = pg_server.url(crawl)
    crawl_url, read_url = (url.replace("postgres@", f"{role}@", 1) for role in (crawl, read))
    try:
        for statement in as_crawl:  # before the first crawl: the default privileges apply
            direct(crawl_url, statement)
        asyncio.run(write("postgres", crawl_url))
        yield crawl_url, read_url
    finally:
        pg_server.drop_database(crawl)
        pg_server.psql(f"DROP ROLE {read}")
        pg_server.psql(f"DROP ROLE {crawl}")


def test_the_read_role_runs_the_read_commands(
    roles: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, read_url = roles
    code, out, _ = run_in_process(
        capsys, "query", read_url, "SELECT count(*) FROM pages", "--format", "csv"
    )
    assert (code, out) == (0, "count(*)\n13\n")
    code, out, _ = run_in_process(capsys, "stats", read_url)
    assert code == 0
    assert "pages      13" in out
    assert run_in_process(capsys, "stats", read_url, "--hosts")[0] == 0
    code, out, _ = run_in_process(capsys, "search", read_url, "fox", "--format", "csv")
    assert code == 0
    assert "https://text.test/fox" in out
    exported = tmp_path / "pages.jsonl"
    assert (
        run_in_process(capsys, "export", read_url, "--format", "jsonl", "-o", str(exported))[0] == 0
    )
    assert len(exported.read_text().splitlines()) == 13


def test_the_read_role_can_neither_write_nor_end_a_crawl_session(
    roles: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    crawl_url, read_url = roles
    before = dump(crawl_url)
    with asyncio.Runner() as runner:
        crawl_session = runner.run(asyncpg.connect(crawl_url))
        try:
            for sql in (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE usename = '{crawl_url.split('//')[1].split('@')[0]}'",
            ):
                code, _, err = run_in_process(capsys, "query", read_url, sql)
                assert code != 0
                assert err.startswith("crawler: error: query failed: ")
                assert runner.run(crawl_session.fetchval("SELECT 1")) == 1  # still alive
            for write_sql in (
                "INSERT INTO runs (started_at, seeds) VALUES ('x', '')",
                "UPDATE pages SET status = 500",
                "CREATE TABLE mine (x int)",
            ):  # on a session of its own that is not read-only: the role alone refuses
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    direct(read_url, write_sql)
            # The control: the crawl role itself may end its own sessions.
            ended = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            ended += " WHERE usename = current_user AND pid <> pg_backend_pid()"
            assert run_in_process(capsys, "query", crawl_url, ended, "--format", "csv")[0] == 0
            with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)):
                runner.run(crawl_session.fetchval("SELECT 1"))
        finally:
            crawl_session.terminate()
    assert dump(crawl_url) == before


# -- rules 11-16: the report's reads ----------------------------------------------------------


def test_11_broken_links_most_inlinks_first_with_their_sources(db: str) -> None:
    with open_reader(db) as reader:
        broken = reader.broken_links(10)
        cut = reader.broken_links(1)
    assert [(i["url"], i["status"], i["inlinks"]) for i in broken.items] == [
        (HOME + "missing", 404, 6), (HOME + "gone", 404, 1),
    ]  # fmt: skip
    assert broken.items[0]["sources"][:2] == [HOME, HOME + "about"]  # in fetch order
    assert broken.items[1]["sources"] == [HOME]
    assert (cut.count, cut.items) == (2, broken.items[:1])


def test_12_one_redirect_hop_is_no_chain(db: str) -> None:
    with open_reader(db) as reader:
        assert reader.redirect_chains(10).as_json() == {"count": 0, "items": []}


def test_15_depths_and_response_times(db: str) -> None:
    with open_reader(db) as reader:
        depths = reader.depths()
        times = reader.response_times()
        slowest = reader.slowest(2)
    assert sum(n for row in depths for k, n in row.items() if k != "depth") == 13
    assert sum(n for _, n in times) == 13
    assert slowest.count == 13
    assert [i["elapsed_ms"] for i in slowest.items] == [220, 210]
