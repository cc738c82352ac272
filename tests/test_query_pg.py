"""`crawler query` on a PostgreSQL crawl: the same output as on SQLite for the same rows,
read-only, a statement timeout, one-line errors. A `Twin` is one crawl written twice through the
storage contract, once into an SQLite file and once into a PostgreSQL database (pgserver.py).

The tests are plain functions: the PostgreSQL reader runs its own event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest
from backends import BODY, Twin, make_twin
from kit import run_in_process
from pgserver import PgServer, free_port

from crawler.cli import _queued
from crawler.commands.query import FORMATS, run_query
from crawler.errors import StoreError, UsageError
from crawler.storage import postgres_reads
from crawler.storage.postgres_names import sqlite_names

README = Path(__file__).parent.parent / "README.md"
PUBLIC_PAGES = (
    "url, status, content_type, title, body, bytes, truncated, depth, fetched_at, elapsed_ms,"
    " error, location"
)

# The README's "Queries a user runs", as written there (a test checks they still are), with
# how many columns each has: run as written, and with ORDER BY every column.
README_QUERIES = [
    ("SELECT status, count(*) FROM pages GROUP BY status ORDER BY 2 DESC", 2),
    (
        "SELECT l.src_url, l.dst_url FROM links l\n"
        "                        JOIN pages p ON p.url = l.dst_url WHERE p.status = 404",
        2,
    ),
    ("SELECT src_url FROM links WHERE dst_url = 'https://example.org/about'", 1),
    ("SELECT url, reason, discovered_from FROM urls WHERE state = 'skipped'", 3),
    ("SELECT host, delay, delay_reason, requests, errors, min_gap_ms FROM hosts", 6),
    ("SELECT url, error FROM pages WHERE status IS NULL", 2),
]


# -- one crawl, on both backends ------------------------------------------------------------


@pytest.fixture(scope="module")
def twin(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """One crawl for the module's read-only tests (they check that they change nothing)."""
    name = "query_pg_twin"
    url = pg_server.create_database(name)
    try:
        yield make_twin(tmp_path_factory.mktemp("twin"), url)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def fresh_twin(pg_url: str, tmp_path: Path) -> Twin:
    """A crawl of this test's own, for tests that try to change it."""
    return make_twin(tmp_path, pg_url)


def query(db: str | Path, sql: str, fmt: str, **options: float) -> str:
    out = io.StringIO()
    run_query(db, sql, fmt, out, **options)
    return out.getvalue()


# -- the same output ------------------------------------------------------------------------


def test_readme_queries_are_the_readmes() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    for sql, _ in README_QUERIES:
        assert " ".join(sql.split()) in text


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("sql", "columns"), [pytest.param(*q, id=f"readme-{i}") for i, q in enumerate(README_QUERIES)]
)
def test_readme_queries_give_the_same_output(twin: Twin, sql: str, columns: int, fmt: str) -> None:
    every_column = ", ".join(str(n) for n in range(1, columns + 1))
    ordered = sql if "ORDER BY" in sql else f"{sql} ORDER BY {every_column}"
    expected = query(twin.path, ordered, fmt)
    assert query(twin.url, ordered, fmt) == expected
    assert run_query(twin.path, sql, "csv", io.StringIO()) > 0  # rows, not just a header
    # As written, without ORDER BY: the same rows, in an order the SQL leaves open.
    assert unordered(query(twin.url, sql, fmt), fmt) == unordered(query(twin.path, sql, fmt), fmt)


def unordered(text: str, fmt: str) -> list[str]:
    """The output's lines (json: its objects), sorted."""
    if fmt == "json":
        return sorted(json.dumps(row) for row in json.loads(text))
    return sorted(text.splitlines())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(f"SELECT {PUBLIC_PAGES} FROM pages ORDER BY url", id="pages"),
        pytest.param(
            "SELECT host, robots_status, robots_fetched_at, crawl_delay, delay, delay_reason,"
            " requests, errors, min_gap_ms FROM hosts ORDER BY host",
            id="hosts",
        ),
        pytest.param("SELECT * FROM links ORDER BY src_url, dst_url", id="links"),
        pytest.param(
            "SELECT url, depth, state, reason, discovered_from FROM urls ORDER BY url", id="urls"
        ),
        pytest.param(
            "SELECT status, count(*), count( * ) AS N, max(depth) Deepest, sum(bytes),"
            " avg(elapsed_ms), status IS NULL, status / 100, 1.5, 2.0, -3, NULL,"
            " coalesce(title, 'none'), upper(url) || '?' FROM pages GROUP BY status, title, url"
            " ORDER BY status NULLS FIRST, url",  # the default: first in SQLite, last in PG
            id="expressions",
        ),
        pytest.param(
            "WITH fetched AS (SELECT host, count(*) AS n FROM pages GROUP BY host)"
            " SELECT h.host, n, n * 1.0 / 4, CASE WHEN n > 5 THEN 'many' ELSE 'few' END"
            " FROM hosts h JOIN fetched f ON f.host = h.host ORDER BY 1",
            id="with",
        ),
        pytest.param(
            "SELECT p.url, u.url, p.status FROM pages p JOIN urls u ON u.url = p.url"
            " WHERE p.status = 200 ORDER BY 1",
            id="repeated-names",
        ),
        pytest.param("SELECT url FROM pages WHERE 1 = 0", id="no-rows"),
    ],
)
def test_values_and_names_render_as_on_sqlite(twin: Twin, sql: str, fmt: str) -> None:
    assert query(twin.url, sql, fmt) == query(twin.path, sql, fmt)


def test_bytea_is_decoded_like_a_blob(twin: Twin) -> None:
    sql = "SELECT body FROM pages WHERE url = 'https://example.org/'"
    line = query(twin.url, sql, "jsonl")
    assert json.loads(line) == {"body": BODY.decode("utf-8", errors="replace")}
    assert f"<{len(BODY)} bytes>" in query(twin.url, sql, "table")


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        pytest.param("SELECT count(*) FROM t", ["count(*)"], id="function"),
        pytest.param('SELECT a, T.b, "a" FROM t', ["a", "b", "a"], id="columns"),
        pytest.param(
            'SELECT a AS Total, b total2, a + 1 AS "X y" FROM t',
            ["Total", "total2", "X y"],
            id="aliases",
        ),
        pytest.param(
            "SELECT a  +  1, -- why\n  max(b) FROM t GROUP BY a",
            ["a  +  1", "max(b)"],
            id="spacing",
        ),
        pytest.param("SELECT DISTINCT a || 'x, y' FROM t", ["a || 'x, y'"], id="distinct-string"),
        pytest.param(
            "SELECT CASE WHEN a > 0 THEN 'p' END, NULL, 1 FROM t",
            ["CASE WHEN a > 0 THEN 'p' END", "NULL", "1"],
            id="case",
        ),
        pytest.param(
            "SELECT a IS NOT DISTINCT FROM b, (SELECT count(*) FROM t) FROM t",
            ["a IS NOT DISTINCT FROM b", "(SELECT count(*) FROM t)"],
            id="subquery",
        ),
        pytest.param(
            "SELECT a, count(*) FROM t GROUP BY a UNION SELECT 1, 2", ["a", "count(*)"], id="union"
        ),
        pytest.param("SELECT *, count(*) FROM t GROUP BY a, b", None, id="star"),
    ],
)
def test_column_names_are_sqlites(pg_url: str, sql: str, names: list[str] | None) -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
        sqlite = [d[0] for d in db.execute(sql).description]

    async def postgres() -> list[str]:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
            return [a.name for a in (await conn.prepare(sql)).get_attributes()]
        finally:
            await conn.close()

    given = asyncio.run(postgres())
    if names is None:  # a `*`: PostgreSQL's names, whatever they are
        assert sqlite_names(sql, given) == given
    else:
        assert sqlite_names(sql, given) == sqlite == names


# -- read-only ------------------------------------------------------------------------------


def snapshot(url: str) -> dict[str, str]:
    """Every table of the database and a digest of its rows."""

    async def read() -> dict[str, str]:
        conn = await asyncpg.connect(url)
        try:
            tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            names = [row[0] for row in await conn.fetch(tables)]
            found = {}
            for name in names:
                rows = await conn.fetch(f"SELECT * FROM {name}")
                found[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
            objects = await conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata")
            found["large objects"] = str(objects)
            return found
        finally:
            await conn.close()

    return asyncio.run(read())


WRITES = [
    pytest.param("INSERT INTO runs (started_at, seeds) VALUES ('now', '')", id="insert"),
    pytest.param("INSERT INTO settings VALUES ('k', 'v') RETURNING key", id="insert-returning"),
    pytest.param("UPDATE pages SET status = 500", id="update"),
    pytest.param("DELETE FROM pages", id="delete"),
    pytest.param(
        "WITH d AS (DELETE FROM links RETURNING 1) SELECT count(*) FROM d", id="with-delete"
    ),
    pytest.param("EXPLAIN ANALYZE DELETE FROM urls", id="explain-analyze"),
    pytest.param("TRUNCATE links", id="truncate"),
    pytest.param("DROP TABLE pages", id="drop-table"),
    pytest.param("CREATE TABLE t (x int)", id="create-table"),
    pytest.param("CREATE INDEX pages_title ON pages (title)", id="create-index"),
    pytest.param("ALTER TABLE pages ADD COLUMN x int", id="alter"),
    pytest.param("SELECT url INTO copied FROM pages", id="select-into"),
    pytest.param("COPY (SELECT 1) TO PROGRAM 'touch {marker}'", id="copy-to-program"),
    pytest.param("COPY pages TO '{marker}'", id="copy-to-file"),
    pytest.param("COPY pages FROM STDIN", id="copy-from"),
    pytest.param("DO $$ BEGIN EXECUTE 'DELETE FROM pages'; END $$", id="do"),
    pytest.param("SELECT * FROM hosts FOR UPDATE", id="for-update"),
    pytest.param("SELECT nextval('urls_id_seq')", id="nextval"),
    pytest.param("LOCK TABLE pages", id="lock"),
    pytest.param("VACUUM", id="vacuum"),
    pytest.param("SET TRANSACTION READ WRITE", id="read-write"),
    pytest.param("GRANT SELECT ON pages TO PUBLIC", id="grant"),
]


@pytest.mark.parametrize("sql", WRITES)
def test_a_write_is_refused_and_changes_nothing(
    fresh_twin: Twin, capsys: pytest.CaptureFixture[str], tmp_path: Path, sql: str
) -> None:
    marker = Path("/tmp") / f"crawler-query-{tmp_path.name}"  # the server's /tmp
    before = snapshot(fresh_twin.url)
    sql = sql.format(marker=marker)
    code, out, err = run_in_process(capsys, "query", fresh_twin.url, sql, "--format", "csv")
    assert code == 2
    assert out == ""
    assert err.startswith("crawler: error: query refused: the database is opened read-only (")
    assert err.count("\n") == 1
    assert snapshot(fresh_twin.url) == before
    assert not marker.exists()


def test_what_a_function_writes_is_rolled_back(fresh_twin: Twin) -> None:
    before = snapshot(fresh_twin.url)
    sql = "SELECT lo_from_bytea(0, 'written') > 0 AS made"
    assert query(fresh_twin.url, sql, "csv") == "made\n1\n"  # made, then rolled back
    assert snapshot(fresh_twin.url) == before
    with pytest.raises(StoreError, match="read-write mode") as info:
        query(fresh_twin.url, "SELECT set_config('transaction_read_only', 'off', true)", "csv")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("SELEC 1", 'query failed: syntax error at or near "SELEC"', id="syntax"),
        pytest.param("SELECT * FROM x", 'query failed: relation "x" does not exist', id="no-table"),
        pytest.param(
            "SELECT nope FROM pages", 'query failed: column "nope" does not exist', id="column"
        ),
        pytest.param(
            "SELECT 1; DELETE FROM pages",
            "query failed: cannot insert multiple commands into a prepared statement",
            id="two-statements",
        ),
        pytest.param(
            "SELECT 1 / (depth - depth) FROM pages", "query failed: division by zero", id="division"
        ),
    ],
)
def test_bad_sql_is_one_line(
    twin: Twin, capsys: pytest.CaptureFixture[str], sql: str, expected: str
) -> None:
    code, out, err = run_in_process(capsys, "query", twin.url, sql, "--format", "jsonl")
    assert (code, out) == (2, "")
    assert err == f"crawler: error: {expected}\n"


@pytest.mark.parametrize("sql", ["", "  -- nothing\n", ";", "/* a comment */"])
def test_an_empty_statement_writes_nothing(twin: Twin, sql: str) -> None:
    assert query(twin.url, sql, "json") == query(twin.path, sql, "json") == ""
    assert query(twin.url, "/* PostgreSQL's /* nest */ */", "csv") == ""


def test_trailing_semicolon_and_comment_are_fine(twin: Twin) -> None:
    sql = "SELECT count(*) AS n FROM pages; -- all"
    assert query(twin.url, sql, "jsonl") == query(twin.path, sql, "jsonl") == '{"n": 10}\n'


def test_statement_timeout(twin: Twin) -> None:
    with pytest.raises(StoreError) as info:
        query(twin.url, "SELECT pg_sleep(30)", "csv", timeout=0.05)
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "query failed: canceling statement due to statement timeout (the limit is 0.05 s)"
    )
    assert query(twin.url, "SELECT 1 AS slept FROM pg_sleep(0)", "csv") == "slept\n1\n"


def test_rows_are_streamed(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows come from a cursor a few at a time: those before a failing row are written."""
    monkeypatch.setattr(postgres_reads, "FETCH_ROWS", 3)
    sql = "SELECT i, 10 / (7 - i) AS q FROM generate_series(1, 20) AS i"
    out = io.StringIO()
    with pytest.raises(StoreError, match="division by zero"):
        run_query(twin.url, sql, "csv", out)
    assert out.getvalue() == "i,q\n1,1\n2,2\n3,2\n4,3\n5,5\n6,10\n"
    sql = "SELECT i FROM generate_series(1, 10) AS i"
    assert query(twin.url, sql, "csv") == "i\n" + "".join(f"{i}\n" for i in range(1, 11))


# -- bad URLs -------------------------------------------------------------------------------


def bad_urls(server: PgServer) -> list[tuple[str, str]]:
    base = f"postgresql://postgres@127.0.0.1:{server.port}"
    return [
        (f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x", "Connect call failed"),
        (f"{base}/no_such_database", 'database "no_such_database" does not exist'),
        (
            f"postgres://nobody:s3cret@127.0.0.1:{server.port}/postgres",
            'role "nobody" does not exist',
        ),
        ("postgresql://127.0.0.1:notaport/x", "invalid"),
        (f"{base}/postgres", "is not a crawl database (no table 'pages')"),
    ]


@pytest.mark.parametrize("command", [["query", "SELECT 1"], ["stats"], ["stats", "--hosts"]])
def test_a_bad_url_is_one_line(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    for url, reason in bad_urls(pg_server):
        args = [command[0], url, *command[1:]]
        code, out, err = run_in_process(capsys, *args)
        assert (code, out) == (2, ""), args
        assert err.count("\n") == 1, err
        assert reason in err
        assert "s3cret" not in err
        assert re.sub(r":s3cret@", "@", url) in err


def test_asyncpg_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg fails
    monkeypatch.delitem(sys.modules, "crawler.storage.postgres_reads")
    code, _, err = run_in_process(capsys, "query", "postgresql://u:pw@localhost/db", "SELECT 1")
    assert code == 2
    assert err == (
        "crawler: error: postgresql://u@localhost/db: PostgreSQL needs asyncpg:"
        " pip install 'crawler[postgres]'\n"
    )


# -- resume's check -------------------------------------------------------------------------


def test_queued_on_both_backends(twin: Twin, pg_url: str) -> None:
    assert _queued(twin.url) == _queued(twin.path) == _queued(str(twin.path)) == 1
    with pytest.raises(UsageError, match="not a crawl database") as info:
        _queued(pg_url)
    assert info.value.exit_code == 2


def test_the_twin_is_unchanged(twin: Twin) -> None:
    """Last in the module: the read-only tests above left the shared crawl as it was."""
    counts = (
        "SELECT (SELECT count(*) FROM pages), (SELECT count(*) FROM links),"
        " (SELECT count(*) FROM urls)"
    )
    assert query(twin.url, counts, "csv").splitlines()[1] == "10,17,14"
    assert query(twin.path, counts, "csv") == query(twin.url, counts, "csv")
